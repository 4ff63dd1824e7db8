/*
 * adapter.c - libsignal-protocol-c's store callbacks (signal_protocol.h) implemented over the
 * application's wa_signal_store, and the per-operation bookkeeping around them.
 *
 * libsignal conventions honoured here (PROTOCOL.md section 6): session and sender-key loads
 * return 1 found / 0 not found; prekey and signed-prekey loads return SG_SUCCESS or
 * SG_ERR_INVALID_KEY_ID; loads hand back a fresh signal_buffer that the library frees; keys are
 * the 33-byte 0x05 form. A failing application callback is reported to libsignal as
 * WA__SG_STORE_ERR and its WA_E* code kept in s->op_err.
 *
 * Writes are held back: store_session, store_sender_key and remove_pre_key only record what
 * libsignal wants written (later loads in the same operation see it), and wa__signal_op_end
 * writes it once the whole operation succeeded. libsignal itself stores the session of a
 * decrypted message before it removes the prekey and before our identity bookkeeping runs; a
 * failure in between would lose the message (the retry would be a "duplicate").
 *
 * Identity (trust on first use, then accept-and-report): is_trusted_identity compares with the
 * stored key and notes a change; save_identity is deferred to wa__signal_op_end, which saves
 * and reports only when the whole operation succeeded. libsignal calls save_identity before it
 * has checked the message MAC, so saving there would let a forged pkmsg replace an identity.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "signal/signal_int.h"
#include "wa/error.h"

static int store_fail(wa_signal *s, int rc)
{
    if (!s->op_err)
        s->op_err = rc < 0 ? rc : WA_ESTORE;
    return WA__SG_STORE_ERR;
}

static int parse_addr(wa_signal *s, const signal_protocol_address *a, wa_signal_addr *out)
{
    if (!a || !a->name || wa_signal_addr_from_name(out, a->name, a->name_len, a->device_id))
        return store_fail(s, WA_EINVAL);
    return 0;
}

/* NUL-terminated copy of a sender key name's group id. */
static int parse_group(wa_signal *s, const signal_protocol_sender_key_name *n,
                       char g[WA_SIGNAL_GROUP_MAX + 1])
{
    if (!n || !n->group_id || n->group_id_len == 0 || n->group_id_len > WA_SIGNAL_GROUP_MAX ||
        memchr(n->group_id, 0, n->group_id_len))
        return store_fail(s, WA_EINVAL);
    memcpy(g, n->group_id, n->group_id_len);
    g[n->group_id_len] = 0;
    return 0;
}

/* Turn a load callback's result into libsignal's 1/0 convention plus a fresh buffer. */
static int finish_load(wa_signal *s, int rc, wa_buf *b, signal_buffer **record)
{
    int ret;

    if (rc < 0) {
        ret = store_fail(s, rc);
    } else if (rc == 0) {
        ret = 0;
    } else if (b->len == 0) {
        ret = store_fail(s, WA_ESTORE); /* "found" but empty: a broken store */
    } else {
        *record = signal_buffer_create(b->data, b->len);
        ret = *record ? 1 : store_fail(s, WA_ENOMEM);
    }
    wa_buf_wipe_cleanup(b);
    return ret;
}

/* ---- sessions ---- */

static void pre_drop(wa_signal *s)
{
    s->pre_valid = 0;
    s->pre_found = 0;
    wa_buf_wipe_cleanup(&s->pre_rec);
}

static wa__pending *pend_find(wa_signal *s, int kind, const wa_signal_addr *a, const char *group,
                              uint32_t id)
{
    int i;

    for (i = 0; i < s->npend; i++) {
        wa__pending *p = &s->pend[i];

        if (p->kind != kind)
            continue;
        if (kind == WA__PEND_PREKEY_REMOVE
                ? p->id == id
                : wa_signal_addr_equal(&p->addr, a) &&
                      (kind != WA__PEND_SENDER_KEY || strcmp(p->group, group) == 0))
            return p;
    }
    return NULL;
}

/* Hold back a write (rec NULL for a removal). */
static int pend_put(wa_signal *s, int kind, const wa_signal_addr *a, const char *group, uint32_t id,
                    const uint8_t *rec, size_t len)
{
    wa__pending *p = pend_find(s, kind, a, group, id);
    int rc, fresh = 0;

    if (!p) {
        if (s->npend == WA__PENDING_MAX)
            return store_fail(s, WA_ELIMIT);
        p = &s->pend[s->npend];
        fresh = 1;
    }
    if (p->rec.len)
        wa_wipe(p->rec.data, p->rec.len);
    wa_buf_reset(&p->rec);
    if (rec) {
        rc = wa_buf_append(&p->rec, rec, len);
        if (rc) {
            if (!fresh)
                p->kind = 0; /* a half-replaced record must not be written */
            return store_fail(s, rc);
        }
    }
    p->kind = kind;
    if (a)
        p->addr = *a;
    if (group)
        memcpy(p->group, group, strlen(group) + 1);
    p->id = id;
    if (fresh)
        s->npend++;
    return 0;
}

/* A held-back record as a fresh signal_buffer (1), or store failure. */
static int pend_serve(wa_signal *s, const wa__pending *p, signal_buffer **record)
{
    *record = signal_buffer_create(p->rec.data, p->rec.len);
    return *record ? 1 : store_fail(s, WA_ENOMEM);
}

static int sess_load(signal_buffer **record, signal_buffer **user_record,
                     const signal_protocol_address *address, void *user_data)
{
    wa_signal *s = user_data;
    wa__pending *p;
    wa_signal_addr a;
    wa_buf b;
    int rc;

    (void)user_record;
    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    p = pend_find(s, WA__PEND_SESSION, &a, NULL, 0);
    if (p)
        return pend_serve(s, p, record);
    if (s->pre_valid && wa_signal_addr_equal(&a, &s->pre_addr)) {
        /* consume the record loaded ahead: hand over its buffer, then forget it */
        b = s->pre_rec;
        rc = s->pre_found;
        wa_buf_init(&s->pre_rec, WA_SIGNAL_RECORD_MAX);
        s->pre_valid = 0;
        s->pre_found = 0;
        return finish_load(s, rc, &b, record);
    }
    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_session_cb(&a, &b, s->store.user_data);
    return finish_load(s, rc, &b, record);
}

static int sess_sub_devices(signal_int_list **sessions, const char *name, size_t name_len,
                            void *user_data)
{
    /* not used by the operations of this layer; WhatsApp lists devices through usync */
    (void)sessions;
    (void)name;
    (void)name_len;
    return store_fail(user_data, WA_EUNSUPPORTED);
}

static int sess_store(const signal_protocol_address *address, uint8_t *record, size_t record_len,
                      uint8_t *user_record, size_t user_record_len, void *user_data)
{
    wa_signal *s = user_data;
    wa_signal_addr a;

    (void)user_record;
    (void)user_record_len;
    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    if (s->pre_valid && wa_signal_addr_equal(&a, &s->pre_addr))
        pre_drop(s);
    if (record_len == 0 || record_len > WA_SIGNAL_RECORD_MAX)
        return store_fail(s, WA_ELIMIT);
    return pend_put(s, WA__PEND_SESSION, &a, NULL, 0, record, record_len);
}

static int sess_contains(const signal_protocol_address *address, void *user_data)
{
    wa_signal *s = user_data;
    wa_signal_addr a;
    int rc;

    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    if (pend_find(s, WA__PEND_SESSION, &a, NULL, 0))
        return 1;
    /* libsignal asks "contains" right before "load" when decrypting a msg: load once, keep
     * the record for the load that follows */
    pre_drop(s);
    rc = s->store.load_session_cb(&a, &s->pre_rec, s->store.user_data);
    if (rc < 0) {
        pre_drop(s);
        return store_fail(s, rc);
    }
    if (rc == 1 && s->pre_rec.len == 0) {
        pre_drop(s);
        return store_fail(s, WA_ESTORE);
    }
    s->pre_valid = 1;
    s->pre_found = rc ? 1 : 0;
    s->pre_addr = a;
    return s->pre_found;
}

static int sess_delete(const signal_protocol_address *address, void *user_data)
{
    wa_signal *s = user_data;
    wa__pending *p;
    wa_signal_addr a;
    int rc;

    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    if (s->pre_valid && wa_signal_addr_equal(&a, &s->pre_addr))
        pre_drop(s);
    p = pend_find(s, WA__PEND_SESSION, &a, NULL, 0);
    if (p)
        p->kind = 0;
    rc = s->store.delete_session_cb(&a, s->store.user_data);
    return rc < 0 ? store_fail(s, rc) : (rc ? 1 : 0);
}

static int sess_delete_all(const char *name, size_t name_len, void *user_data)
{
    (void)name;
    (void)name_len;
    return store_fail(user_data, WA_EUNSUPPORTED);
}

/* ---- prekeys and signed prekeys ---- */

static int key_load(wa_signal *s, int (*cb)(uint32_t, wa_buf *, void *), uint32_t id,
                    signal_buffer **record)
{
    wa_buf b;
    int rc;

    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = cb(id, &b, s->store.user_data);
    rc = finish_load(s, rc, &b, record);
    if (rc == 1)
        return SG_SUCCESS;
    return rc == 0 ? SG_ERR_INVALID_KEY_ID : rc;
}

static int key_contains(wa_signal *s, int (*cb)(uint32_t, wa_buf *, void *), uint32_t id)
{
    wa_buf b;
    int rc;

    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = cb(id, &b, s->store.user_data);
    wa_buf_wipe_cleanup(&b);
    if (rc < 0)
        return store_fail(s, rc);
    return rc ? 1 : 0;
}

static int key_store(wa_signal *s, int (*cb)(uint32_t, const uint8_t *, size_t, void *),
                     uint32_t id, const uint8_t *rec, size_t len)
{
    int rc;

    if (len == 0 || len > WA_SIGNAL_RECORD_MAX)
        return store_fail(s, WA_ELIMIT);
    rc = cb(id, rec, len, s->store.user_data);
    return rc < 0 ? store_fail(s, rc) : 0;
}

static int pk_load(signal_buffer **record, uint32_t id, void *user_data)
{
    wa_signal *s = user_data;

    if (pend_find(s, WA__PEND_PREKEY_REMOVE, NULL, NULL, id))
        return SG_ERR_INVALID_KEY_ID;
    return key_load(s, s->store.load_prekey_cb, id, record);
}

static int pk_store(uint32_t id, uint8_t *record, size_t len, void *user_data)
{
    wa_signal *s = user_data;

    return key_store(s, s->store.store_prekey_cb, id, record, len);
}

static int pk_contains(uint32_t id, void *user_data)
{
    wa_signal *s = user_data;

    return key_contains(s, s->store.load_prekey_cb, id);
}

static int pk_remove(uint32_t id, void *user_data)
{
    return pend_put(user_data, WA__PEND_PREKEY_REMOVE, NULL, NULL, id, NULL, 0);
}

static int spk_load(signal_buffer **record, uint32_t id, void *user_data)
{
    wa_signal *s = user_data;

    return key_load(s, s->store.load_signed_prekey_cb, id, record);
}

static int spk_store(uint32_t id, uint8_t *record, size_t len, void *user_data)
{
    wa_signal *s = user_data;

    return key_store(s, s->store.store_signed_prekey_cb, id, record, len);
}

static int spk_contains(uint32_t id, void *user_data)
{
    wa_signal *s = user_data;

    return key_contains(s, s->store.load_signed_prekey_cb, id);
}

static int spk_remove(uint32_t id, void *user_data)
{
    wa_signal *s = user_data;
    int rc = s->store.remove_signed_prekey_cb(id, s->store.user_data);

    return rc < 0 ? store_fail(s, rc) : 0;
}

/* ---- identity ---- */

static int id_get_pair(signal_buffer **public_data, signal_buffer **private_data, void *user_data)
{
    wa_signal *s = user_data;
    wa_signal_keypair kp;
    uint8_t pub[WA_SIGNAL_PUBKEY_LEN];
    uint32_t reg = 0;
    int rc;

    memset(&kp, 0, sizeof kp);
    rc = s->store.get_identity_cb(&kp, &reg, s->store.user_data);
    if (rc < 0) {
        rc = store_fail(s, rc);
        goto out;
    }
    pub[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(pub + 1, kp.pub, WA_SIGNAL_KEY_LEN);
    wa_x25519_clamp(kp.priv);
    *public_data = signal_buffer_create(pub, sizeof pub);
    /* libsignal frees this one with signal_buffer_free (no wipe): out of our hands */
    *private_data = signal_buffer_create(kp.priv, sizeof kp.priv);
    if (!*public_data || !*private_data) {
        signal_buffer_free(*public_data);
        signal_buffer_bzero_free(*private_data);
        *public_data = NULL;
        *private_data = NULL;
        rc = store_fail(s, WA_ENOMEM);
        goto out;
    }
    rc = 0;
out:
    wa_wipe(&kp, sizeof kp);
    return rc;
}

static int id_get_reg(void *user_data, uint32_t *registration_id)
{
    wa_signal *s = user_data;
    wa_signal_keypair kp;
    uint32_t reg = 0;
    int rc;

    rc = s->store.get_identity_cb(&kp, &reg, s->store.user_data);
    wa_wipe(&kp, sizeof kp);
    if (rc < 0)
        return store_fail(s, rc);
    *registration_id = reg;
    return 0;
}

static int check_key33(const uint8_t *key, size_t len)
{
    return key && len == WA_SIGNAL_PUBKEY_LEN && key[0] == WA_SIGNAL_KEY_TYPE;
}

static int id_save(const signal_protocol_address *address, uint8_t *key_data, size_t key_len,
                   void *user_data)
{
    wa_signal *s = user_data;
    wa_signal_addr a;

    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    if (!check_key33(key_data, key_len))
        return store_fail(s, WA_EINVAL);
    /* deferred to wa__signal_op_end (see the file comment) */
    s->id_pending = 1;
    s->id_addr = a;
    memcpy(s->id_key, key_data + 1, WA_SIGNAL_KEY_LEN);
    return 0;
}

static int id_trusted(const signal_protocol_address *address, uint8_t *key_data, size_t key_len,
                      void *user_data)
{
    wa_signal *s = user_data;
    uint8_t stored[WA_SIGNAL_KEY_LEN];
    wa_signal_addr a;
    int rc;

    if (parse_addr(s, address, &a))
        return WA__SG_STORE_ERR;
    if (!check_key33(key_data, key_len))
        return 0;
    rc = s->store.load_identity_cb(&a, stored, s->store.user_data);
    if (rc < 0)
        return store_fail(s, rc);
    if (rc == 0 || wa_ct_equal(stored, key_data + 1, WA_SIGNAL_KEY_LEN))
        return 1; /* first use, or the key we know */
    if (s->policy == WA_SIGNAL_IDENTITY_REJECT)
        return 0;
    s->id_changed = 1;
    memcpy(s->id_old, stored, WA_SIGNAL_KEY_LEN);
    return 1;
}

/* ---- sender keys ---- */

static int sk_store(const signal_protocol_sender_key_name *name, uint8_t *record, size_t record_len,
                    uint8_t *user_record, size_t user_record_len, void *user_data)
{
    wa_signal *s = user_data;
    char g[WA_SIGNAL_GROUP_MAX + 1];
    wa_signal_addr a;

    (void)user_record;
    (void)user_record_len;
    if (parse_group(s, name, g) || parse_addr(s, &name->sender, &a))
        return WA__SG_STORE_ERR;
    if (record_len == 0 || record_len > WA_SIGNAL_RECORD_MAX)
        return store_fail(s, WA_ELIMIT);
    return pend_put(s, WA__PEND_SENDER_KEY, &a, g, 0, record, record_len);
}

static int sk_load(signal_buffer **record, signal_buffer **user_record,
                   const signal_protocol_sender_key_name *name, void *user_data)
{
    wa_signal *s = user_data;
    char g[WA_SIGNAL_GROUP_MAX + 1];
    wa__pending *p;
    wa_signal_addr a;
    wa_buf b;
    int rc;

    (void)user_record;
    if (parse_group(s, name, g) || parse_addr(s, &name->sender, &a))
        return WA__SG_STORE_ERR;
    p = pend_find(s, WA__PEND_SENDER_KEY, &a, g, 0);
    if (p)
        return pend_serve(s, p, record);
    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_sender_key_cb(g, &a, &b, s->store.user_data);
    return finish_load(s, rc, &b, record);
}

/* ---- installation and operations ---- */

int wa__signal_adapter_install(wa_signal *s)
{
    signal_protocol_session_store ss;
    signal_protocol_pre_key_store ps;
    signal_protocol_signed_pre_key_store sps;
    signal_protocol_identity_key_store is;
    signal_protocol_sender_key_store sks;

    memset(&ss, 0, sizeof ss);
    ss.load_session_func = sess_load;
    ss.get_sub_device_sessions_func = sess_sub_devices;
    ss.store_session_func = sess_store;
    ss.contains_session_func = sess_contains;
    ss.delete_session_func = sess_delete;
    ss.delete_all_sessions_func = sess_delete_all;
    ss.user_data = s;

    memset(&ps, 0, sizeof ps);
    ps.load_pre_key = pk_load;
    ps.store_pre_key = pk_store;
    ps.contains_pre_key = pk_contains;
    ps.remove_pre_key = pk_remove;
    ps.user_data = s;

    memset(&sps, 0, sizeof sps);
    sps.load_signed_pre_key = spk_load;
    sps.store_signed_pre_key = spk_store;
    sps.contains_signed_pre_key = spk_contains;
    sps.remove_signed_pre_key = spk_remove;
    sps.user_data = s;

    memset(&is, 0, sizeof is);
    is.get_identity_key_pair = id_get_pair;
    is.get_local_registration_id = id_get_reg;
    is.save_identity = id_save;
    is.is_trusted_identity = id_trusted;
    is.user_data = s;

    memset(&sks, 0, sizeof sks);
    sks.store_sender_key = sk_store;
    sks.load_sender_key = sk_load;
    sks.user_data = s;

    if (signal_protocol_store_context_set_session_store(s->sctx, &ss) < 0 ||
        signal_protocol_store_context_set_pre_key_store(s->sctx, &ps) < 0 ||
        signal_protocol_store_context_set_signed_pre_key_store(s->sctx, &sps) < 0 ||
        signal_protocol_store_context_set_identity_key_store(s->sctx, &is) < 0 ||
        signal_protocol_store_context_set_sender_key_store(s->sctx, &sks) < 0)
        return WA_ENOMEM;
    return 0;
}

static void op_clear(wa_signal *s)
{
    int i;

    for (i = 0; i < WA__PENDING_MAX; i++) {
        s->pend[i].kind = 0;
        wa_buf_wipe_cleanup(&s->pend[i].rec);
    }
    s->npend = 0;
    s->op_err = 0;
    s->id_pending = 0;
    s->id_changed = 0;
    wa_wipe(s->id_key, sizeof s->id_key);
    wa_wipe(s->id_old, sizeof s->id_old);
    pre_drop(s);
}

void wa__signal_op_init(wa_signal *s)
{
    int i;

    wa_buf_init(&s->pre_rec, WA_SIGNAL_RECORD_MAX);
    for (i = 0; i < WA__PENDING_MAX; i++)
        wa_buf_init(&s->pend[i].rec, WA_SIGNAL_RECORD_MAX);
    s->npend = 0;
}

void wa__signal_op_cleanup(wa_signal *s)
{
    op_clear(s);
}

/* Write what the operation held back. 0 or the first failing callback's code. */
static int flush(wa_signal *s)
{
    int i, rc = 0;

    if (s->id_pending) {
        rc = s->store.save_identity_cb(&s->id_addr, s->id_key, s->store.user_data);
        if (rc < 0)
            return rc;
    }
    for (i = 0; i < s->npend; i++) {
        wa__pending *p = &s->pend[i];

        switch (p->kind) {
        case WA__PEND_SESSION:
            rc = s->store.store_session_cb(&p->addr, p->rec.data, p->rec.len, s->store.user_data);
            break;
        case WA__PEND_SENDER_KEY:
            rc = s->store.store_sender_key_cb(p->group, &p->addr, p->rec.data, p->rec.len,
                                              s->store.user_data);
            break;
        case WA__PEND_PREKEY_REMOVE:
            rc = s->store.remove_prekey_cb(p->id, s->store.user_data);
            break;
        default:
            rc = 0;
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

void wa__signal_op_begin(wa_signal *s)
{
    op_clear(s);
    s->reason = "";
}

int wa__signal_fail(wa_signal *s, int code, const char *reason)
{
    s->reason = reason;
    return code;
}

int wa__signal_op_end(wa_signal *s, int err)
{
    wa_signal_addr a;
    uint8_t oldk[WA_SIGNAL_KEY_LEN], newk[WA_SIGNAL_KEY_LEN];
    int report = 0;

    memset(&a, 0, sizeof a);
    if (err >= 0 && s->op_err) /* a store failure libsignal did not pass on */
        err = wa__signal_fail(s, s->op_err, "store failure");
    if (err < 0) {
        if (!*s->reason)
            s->reason = wa_strerror(err);
        op_clear(s);
        return err;
    }
    err = flush(s);
    if (err < 0) {
        s->reason = "store failure";
    } else {
        err = 0;
        report = s->id_pending && s->id_changed;
        a = s->id_addr;
        memcpy(oldk, s->id_old, sizeof oldk);
        memcpy(newk, s->id_key, sizeof newk);
    }
    op_clear(s);
    if (report) {
        /* after op_clear: the callback may call back into this handle */
        wa_log_info("signal", "identity of %s (server %u, device %u) changed", a.user,
                    (unsigned)a.server, (unsigned)a.device);
        if (s->identity_cb)
            s->identity_cb(&a, oldk, newk, s->identity_ud);
        wa_wipe(oldk, sizeof oldk);
        wa_wipe(newk, sizeof newk);
    }
    return err;
}

int wa__signal_op_end_append(wa_signal *s, int err, wa_buf *out, signal_buffer *data)
{
    err = wa__signal_op_end(s, err);
    if (err == 0 && data) {
        err = wa_buf_append(out, signal_buffer_data(data), signal_buffer_len(data));
        if (err)
            s->reason = "output buffer too small";
    }
    return err;
}

int wa__signal_map_err(wa_signal *s, int sg, char what)
{
    /* a store callback failed: its code wins over whatever libsignal made of it */
    if (s->op_err || sg < SG_ERR_MINIMUM) {
        int code = s->op_err ? s->op_err : WA_ESTORE;
        return wa__signal_fail(s, code, code == WA_ESTORE ? "store failure" : wa_strerror(code));
    }
    switch (sg) {
    case SG_ERR_NOMEM:
        return wa__signal_fail(s, WA_ENOMEM, "out of memory");
    case SG_ERR_INVAL:
        return wa__signal_fail(s, WA_EINVAL, "invalid argument");
    case SG_ERR_DUPLICATE_MESSAGE:
        return wa__signal_fail(s, WA_EEXIST, "duplicate message");
    case SG_ERR_INVALID_KEY:
        if (what == 'b')
            return wa__signal_fail(s, WA_ECRYPTO, "invalid signed prekey signature or key");
        return wa__signal_fail(s, WA_ECRYPTO, "invalid key");
    case SG_ERR_INVALID_KEY_ID:
        if (what == 'p')
            return wa__signal_fail(s, WA_ENOTFOUND, "unknown prekey or signed prekey id");
        return wa__signal_fail(s, WA_ENOTFOUND, "unknown key id");
    case SG_ERR_INVALID_MAC:
        return wa__signal_fail(s, WA_ECRYPTO, "invalid MAC");
    case SG_ERR_INVALID_MESSAGE:
        if (what == 'g')
            return wa__signal_fail(s, WA_ECRYPTO,
                                   "invalid group message (unknown key id, bad signature or "
                                   "ciphertext, or too far ahead)");
        return wa__signal_fail(s, WA_ECRYPTO,
                               "invalid MAC or no matching session state (or too far ahead)");
    case SG_ERR_INVALID_VERSION:
    case SG_ERR_LEGACY_MESSAGE:
        return wa__signal_fail(s, WA_EUNSUPPORTED, "unsupported message version");
    case SG_ERR_NO_SESSION:
        if (what == 'g')
            return wa__signal_fail(s, WA_ENOTFOUND, "no sender key");
        return wa__signal_fail(s, WA_ENOTFOUND, "no session");
    case SG_ERR_STALE_KEY_EXCHANGE:
        return wa__signal_fail(s, WA_EPROTO, "stale key exchange");
    case SG_ERR_UNTRUSTED_IDENTITY:
        return wa__signal_fail(s, WA_ECRYPTO, "untrusted identity");
    case SG_ERR_VRF_SIG_VERIF_FAILED:
        return wa__signal_fail(s, WA_ECRYPTO, "signature verification failed");
    case SG_ERR_INVALID_PROTO_BUF:
        return wa__signal_fail(s, WA_EPROTOBUF, "malformed protobuf in message or record");
    default:
        return wa__signal_fail(s, WA_ECRYPTO, "signal protocol error");
    }
}

int wa__signal_decode_pub(signal_context *ctx, ec_public_key **out,
                          const uint8_t key[WA_SIGNAL_KEY_LEN])
{
    uint8_t k[WA_SIGNAL_PUBKEY_LEN];

    k[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(k + 1, key, WA_SIGNAL_KEY_LEN);
    return curve_decode_point(out, k, sizeof k, ctx);
}

int wa__signal_make_keypair(signal_context *ctx, ec_key_pair **out, const wa_signal_keypair *kp)
{
    ec_public_key *pub = NULL;
    ec_private_key *priv = NULL;
    uint8_t k[WA_SIGNAL_KEY_LEN];
    int rc;

    memcpy(k, kp->priv, sizeof k);
    wa_x25519_clamp(k);
    rc = wa__signal_decode_pub(ctx, &pub, kp->pub);
    if (rc < 0)
        goto out;
    rc = curve_decode_private_point(&priv, k, sizeof k, ctx);
    if (rc < 0)
        goto out;
    rc = ec_key_pair_create(out, pub, priv);
out:
    wa_wipe(k, sizeof k);
    SIGNAL_UNREF(pub);
    SIGNAL_UNREF(priv);
    return rc;
}
