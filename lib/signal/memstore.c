/*
 * memstore.c - in-memory wa_signal_store (see memstore.h).
 *
 * Five chained hash tables with byte-string keys: identities and sessions by address
 * (server, device, user), prekeys and signed prekeys by id, sender keys by (group, 0, address).
 * The hash is FNV-1a mixed with a random per-store seed, so that remote parties choosing
 * addresses cannot predict collisions; chains stay bounded anyway by the entry cap.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/alloc.h"
#include "core/util.h"
#include "signal/memstore.h"
#include "wa/error.h"

#define MT_MIN_SLOTS 16
/* key: server(1) device(2) user; sender key: group NUL address key */
#define ADDR_KEY_MAX (3 + WA_SIGNAL_USER_MAX)
#define SK_KEY_MAX   (WA_SIGNAL_GROUP_MAX + 1 + ADDR_KEY_MAX)

typedef struct mentry {
    struct mentry *next;
    uint64_t hash;
    uint8_t *val;
    size_t vlen;
    size_t klen;
    uint8_t key[]; /* klen bytes */
} mentry;

typedef struct mtable {
    mentry **slots;
    size_t nslots; /* power of two, 0 before the first insert */
    size_t count;
} mtable;

struct wa_signal_memstore {
    wa_signal_keypair identity;
    uint32_t reg_id;
    size_t max_entries;
    uint64_t seed;
    mtable t[WA_SIGNAL_MEM_NTABLES];
    long fail_after; /* < 0: never */
    int fail_code;
};

/* ---- hash table ---- */

static uint64_t mt_hash(const wa_signal_memstore *m, const uint8_t *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ m->seed;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= k[i];
        h *= 0x100000001b3ull;
    }
    /* final avalanche (splitmix64) so that the low bits used as index depend on every byte */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static mentry **mt_slot(mtable *t, uint64_t h, const uint8_t *k, size_t n)
{
    mentry **pp;

    if (!t->nslots)
        return NULL;
    for (pp = &t->slots[h & (t->nslots - 1)]; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == n && memcmp((*pp)->key, k, n) == 0)
            return pp;
    return NULL;
}

static void entry_free(mentry *e)
{
    if (e->val) {
        wa_wipe(e->val, e->vlen);
        wa_free(e->val);
    }
    wa_free(e);
}

static int mt_grow(mtable *t)
{
    size_t n = t->nslots ? t->nslots * 2 : MT_MIN_SLOTS, i;
    mentry **slots = wa_calloc(n, sizeof *slots);

    if (!slots)
        return WA_ENOMEM;
    for (i = 0; i < t->nslots; i++) {
        mentry *e = t->slots[i];

        while (e) {
            mentry *next = e->next;

            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    wa_free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

static int mt_get(wa_signal_memstore *m, int tab, const uint8_t *k, size_t n, wa_buf *out)
{
    mtable *t = &m->t[tab];
    mentry **pp = mt_slot(t, mt_hash(m, k, n), k, n);
    int rc;

    if (!pp)
        return 0;
    rc = wa_buf_append(out, (*pp)->val, (*pp)->vlen);
    return rc ? rc : 1;
}

static int mt_put(wa_signal_memstore *m, int tab, const uint8_t *k, size_t n, const uint8_t *v,
                  size_t vlen)
{
    mtable *t = &m->t[tab];
    uint64_t h = mt_hash(m, k, n);
    mentry **pp = mt_slot(t, h, k, n), *e;
    uint8_t *copy;

    if (vlen == 0 || vlen > WA_SIGNAL_RECORD_MAX)
        return WA_ELIMIT;
    copy = wa_malloc(vlen);
    if (!copy)
        return WA_ENOMEM;
    memcpy(copy, v, vlen);
    if (pp) {
        e = *pp;
        wa_wipe(e->val, e->vlen);
        wa_free(e->val);
        e->val = copy;
        e->vlen = vlen;
        return 0;
    }
    if (t->count >= m->max_entries) {
        wa_wipe(copy, vlen);
        wa_free(copy);
        return WA_ELIMIT;
    }
    if (t->count + 1 > t->nslots / 4 * 3 && mt_grow(t)) {
        wa_wipe(copy, vlen);
        wa_free(copy);
        return WA_ENOMEM;
    }
    e = wa_malloc(sizeof *e + n);
    if (!e) {
        wa_wipe(copy, vlen);
        wa_free(copy);
        return WA_ENOMEM;
    }
    e->hash = h;
    e->val = copy;
    e->vlen = vlen;
    e->klen = n;
    memcpy(e->key, k, n);
    e->next = t->slots[h & (t->nslots - 1)];
    t->slots[h & (t->nslots - 1)] = e;
    t->count++;
    return 0;
}

/* 1 deleted, 0 absent. */
static int mt_del(wa_signal_memstore *m, int tab, const uint8_t *k, size_t n)
{
    mtable *t = &m->t[tab];
    mentry **pp = mt_slot(t, mt_hash(m, k, n), k, n), *e;

    if (!pp)
        return 0;
    e = *pp;
    *pp = e->next;
    entry_free(e);
    t->count--;
    return 1;
}

static void mt_free(mtable *t)
{
    size_t i;

    for (i = 0; i < t->nslots; i++) {
        mentry *e = t->slots[i];

        while (e) {
            mentry *next = e->next;

            entry_free(e);
            e = next;
        }
    }
    wa_free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- keys ---- */

static size_t addr_key(uint8_t *k, const wa_signal_addr *a)
{
    size_t n = strnlen(a->user, WA_SIGNAL_USER_MAX);

    k[0] = a->server;
    wa_store_be16(k + 1, a->device);
    memcpy(k + 3, a->user, n);
    return 3 + n;
}

static size_t sk_key(uint8_t *k, const char *group, const wa_signal_addr *a)
{
    size_t n = strnlen(group, WA_SIGNAL_GROUP_MAX);

    memcpy(k, group, n);
    k[n] = 0;
    return n + 1 + addr_key(k + n + 1, a);
}

/* ---- failure injection ---- */

static int failing(wa_signal_memstore *m)
{
    if (m->fail_after < 0)
        return 0;
    if (m->fail_after == 0)
        return m->fail_code;
    m->fail_after--;
    return 0;
}

/* ---- callbacks ---- */

static int cb_get_identity(wa_signal_keypair *kp, uint32_t *reg_id, void *ud)
{
    wa_signal_memstore *m = ud;
    int rc = failing(m);

    if (rc)
        return rc;
    *kp = m->identity;
    *reg_id = m->reg_id;
    return 0;
}

static int cb_load_identity(const wa_signal_addr *addr, uint8_t key[WA_SIGNAL_KEY_LEN], void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    wa_buf b;
    int rc = failing(m);

    if (rc)
        return rc;
    wa_buf_init(&b, WA_SIGNAL_KEY_LEN);
    rc = mt_get(m, WA_SIGNAL_MEM_IDENTITIES, k, addr_key(k, addr), &b);
    if (rc == 1)
        memcpy(key, b.data, WA_SIGNAL_KEY_LEN);
    wa_buf_cleanup(&b);
    return rc;
}

static int cb_save_identity(const wa_signal_addr *addr, const uint8_t key[WA_SIGNAL_KEY_LEN],
                            void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_put(m, WA_SIGNAL_MEM_IDENTITIES, k, addr_key(k, addr), key, WA_SIGNAL_KEY_LEN);
}

static int cb_load_session(const wa_signal_addr *addr, wa_buf *out, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_get(m, WA_SIGNAL_MEM_SESSIONS, k, addr_key(k, addr), out);
}

static int cb_load_sessions(const wa_signal_addr *addrs, size_t n, wa_buf *outs, uint8_t *found,
                            void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    size_t i;
    int rc = failing(m);

    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        rc = mt_get(m, WA_SIGNAL_MEM_SESSIONS, k, addr_key(k, &addrs[i]), &outs[i]);
        if (rc < 0)
            return rc;
        found[i] = (uint8_t)rc;
    }
    return 0;
}

static int cb_store_session(const wa_signal_addr *addr, const uint8_t *rec, size_t len, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_put(m, WA_SIGNAL_MEM_SESSIONS, k, addr_key(k, addr), rec, len);
}

static int cb_delete_session(const wa_signal_addr *addr, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[ADDR_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_del(m, WA_SIGNAL_MEM_SESSIONS, k, addr_key(k, addr));
}

static int id_load(wa_signal_memstore *m, int tab, uint32_t id, wa_buf *out)
{
    uint8_t k[4];
    int rc = failing(m);

    if (rc)
        return rc;
    wa_store_be32(k, id);
    return mt_get(m, tab, k, sizeof k, out);
}

static int id_store(wa_signal_memstore *m, int tab, uint32_t id, const uint8_t *rec, size_t len)
{
    uint8_t k[4];
    int rc = failing(m);

    if (rc)
        return rc;
    wa_store_be32(k, id);
    return mt_put(m, tab, k, sizeof k, rec, len);
}

static int id_remove(wa_signal_memstore *m, int tab, uint32_t id)
{
    uint8_t k[4];
    int rc = failing(m);

    if (rc)
        return rc;
    wa_store_be32(k, id);
    mt_del(m, tab, k, sizeof k);
    return 0;
}

static int cb_load_prekey(uint32_t id, wa_buf *out, void *ud)
{
    return id_load(ud, WA_SIGNAL_MEM_PREKEYS, id, out);
}

static int cb_store_prekey(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    return id_store(ud, WA_SIGNAL_MEM_PREKEYS, id, rec, len);
}

static int cb_remove_prekey(uint32_t id, void *ud)
{
    return id_remove(ud, WA_SIGNAL_MEM_PREKEYS, id);
}

static int cb_load_spk(uint32_t id, wa_buf *out, void *ud)
{
    return id_load(ud, WA_SIGNAL_MEM_SIGNED_PREKEYS, id, out);
}

static int cb_store_spk(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    return id_store(ud, WA_SIGNAL_MEM_SIGNED_PREKEYS, id, rec, len);
}

static int cb_remove_spk(uint32_t id, void *ud)
{
    return id_remove(ud, WA_SIGNAL_MEM_SIGNED_PREKEYS, id);
}

static int cb_load_sk(const char *group, const wa_signal_addr *sender, wa_buf *out, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[SK_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_get(m, WA_SIGNAL_MEM_SENDER_KEYS, k, sk_key(k, group, sender), out);
}

static int cb_store_sk(const char *group, const wa_signal_addr *sender, const uint8_t *rec,
                       size_t len, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[SK_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_put(m, WA_SIGNAL_MEM_SENDER_KEYS, k, sk_key(k, group, sender), rec, len);
}

static int cb_delete_sk(const char *group, const wa_signal_addr *sender, void *ud)
{
    wa_signal_memstore *m = ud;
    uint8_t k[SK_KEY_MAX];
    int rc = failing(m);

    if (rc)
        return rc;
    return mt_del(m, WA_SIGNAL_MEM_SENDER_KEYS, k, sk_key(k, group, sender));
}

/* ---- public ---- */

int wa_signal_memstore_new(wa_signal_memstore **out, const wa_signal_keypair *identity,
                           uint32_t reg_id, size_t max_entries)
{
    wa_signal_memstore *m;
    int rc;

    if (!out || !identity)
        return WA_EINVAL;
    m = wa_calloc(1, sizeof *m);
    if (!m)
        return WA_ENOMEM;
    rc = wa_random(&m->seed, sizeof m->seed);
    if (rc) {
        wa_free(m);
        return rc;
    }
    m->identity = *identity;
    m->reg_id = reg_id;
    m->max_entries = max_entries ? max_entries : WA_SIGNAL_MEMSTORE_DEFAULT_MAX;
    m->fail_after = -1;
    *out = m;
    return 0;
}

void wa_signal_memstore_free(wa_signal_memstore *m)
{
    int i;

    if (!m)
        return;
    for (i = 0; i < WA_SIGNAL_MEM_NTABLES; i++)
        mt_free(&m->t[i]);
    wa_wipe(m, sizeof *m);
    wa_free(m);
}

void wa_signal_memstore_bind(wa_signal_memstore *m, wa_signal_store *st)
{
    memset(st, 0, sizeof *st);
    st->user_data = m;
    st->get_identity_cb = cb_get_identity;
    st->load_identity_cb = cb_load_identity;
    st->save_identity_cb = cb_save_identity;
    st->load_session_cb = cb_load_session;
    st->store_session_cb = cb_store_session;
    st->delete_session_cb = cb_delete_session;
    st->load_sessions_cb = cb_load_sessions;
    st->load_prekey_cb = cb_load_prekey;
    st->store_prekey_cb = cb_store_prekey;
    st->remove_prekey_cb = cb_remove_prekey;
    st->load_signed_prekey_cb = cb_load_spk;
    st->store_signed_prekey_cb = cb_store_spk;
    st->remove_signed_prekey_cb = cb_remove_spk;
    st->load_sender_key_cb = cb_load_sk;
    st->store_sender_key_cb = cb_store_sk;
    st->delete_sender_key_cb = cb_delete_sk;
}

size_t wa_signal_memstore_count(const wa_signal_memstore *m, int table)
{
    if (!m || table < 0 || table >= WA_SIGNAL_MEM_NTABLES)
        return 0;
    return m->t[table].count;
}

void wa_signal_memstore_fail_after(wa_signal_memstore *m, long n, int code)
{
    m->fail_after = n < 0 ? -1 : n;
    m->fail_code = code < 0 ? code : WA_ESTORE;
}
