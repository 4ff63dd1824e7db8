/*
 * sigstore.c - the Signal layer's storage interface (lib/signal/signal.h wa_signal_store) over
 * the SQLite store, for one account: identities, sessions (with the batch load of a send),
 * sender keys in their own tables (store.h e2e), our own one-time and signed prekeys from the
 * tables pairing and prekey upload fill.
 *
 * Addresses are stored under libsignal's name (wa_signal_addr_name: "user" or "user_1" for a
 * LID) and the device id, the layout Baileys' key stores use.
 *
 * Our prekeys are kept as raw key pairs (the client generates, uploads and hands them out as
 * such); a load serializes them into libsignal's record format on the fly
 * (wa_signal_prekey_record). The Signal layer never stores prekeys in the client (the client
 * does not call wa_signal_save_prekeys): those store callbacks refuse with WA_EUNSUPPORTED.
 *
 * Transactions: the callbacks write row by row; the client wraps each decryption or send in
 * one store transaction (wa_store_tx_begin/end), so what one message changes commits at once.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

/* The store address of a Signal address (name written into buf). 0 or WA_EINVAL. */
static int saddr(const wa_signal_addr *a, char buf[WA_SIGNAL_NAME_MAX], wa_store_addr *out)
{
    if (wa_signal_addr_name(a, buf, WA_SIGNAL_NAME_MAX) < 0)
        return WA_EINVAL;
    out->name = buf;
    out->device = a->device;
    return 0;
}

/* store.h's 0 / WA_ENOTFOUND convention -> wa_signal_store's 1 found / 0 not found. */
static int found(int rc)
{
    return rc == 0 ? 1 : rc == WA_ENOTFOUND ? 0 : rc;
}

static int cb_get_identity(wa_signal_keypair *kp, uint32_t *reg_id, void *ud)
{
    wa__sigstore *ss = ud;

    return wa_store_own_identity(ss->store, ss->account, kp->priv, kp->pub, reg_id);
}

static int cb_load_identity(const wa_signal_addr *addr, uint8_t key[WA_SIGNAL_KEY_LEN], void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(addr, name, &a))
        return WA_EINVAL;
    return found(wa_store_identity_get(ss->store, ss->account, &a, key));
}

static int cb_save_identity(const wa_signal_addr *addr, const uint8_t key[WA_SIGNAL_KEY_LEN],
                            void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(addr, name, &a))
        return WA_EINVAL;
    return wa_store_identity_put(ss->store, ss->account, &a, key);
}

static int cb_load_session(const wa_signal_addr *addr, wa_buf *out, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(addr, name, &a))
        return WA_EINVAL;
    return found(wa_store_session_get(ss->store, ss->account, &a, out));
}

static int cb_load_sessions(const wa_signal_addr *addrs, size_t n, wa_buf *outs, uint8_t *fnd,
                            void *ud)
{
    wa__sigstore *ss = ud;
    wa_store_addr *a;
    char(*names)[WA_SIGNAL_NAME_MAX];
    size_t i;
    int rc = 0;

    if (n == 0)
        return 0;
    if (n > WA_SIGNAL_BATCH_MAX)
        return WA_ELIMIT;
    a = wa_calloc(n, sizeof *a);
    names = wa_calloc(n, sizeof *names);
    if (!a || !names) {
        rc = WA_ENOMEM;
        goto out;
    }
    for (i = 0; i < n && rc == 0; i++)
        rc = saddr(&addrs[i], names[i], &a[i]);
    if (rc == 0)
        rc = wa_store_sessions_get(ss->store, ss->account, a, n, outs, fnd);
out:
    wa_free(a);
    wa_free(names);
    return rc;
}

static int cb_store_session(const wa_signal_addr *addr, const uint8_t *rec, size_t len, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(addr, name, &a))
        return WA_EINVAL;
    return wa_store_session_put(ss->store, ss->account, &a, rec, len);
}

static int cb_delete_session(const wa_signal_addr *addr, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(addr, name, &a))
        return WA_EINVAL;
    return wa_store_session_delete(ss->store, ss->account, &a);
}

static int cb_load_prekey(uint32_t id, wa_buf *out, void *ud)
{
    wa__sigstore *ss = ud;
    wa_store_prekey k;
    wa_signal_prekey pk;
    int rc;

    rc = wa_store_prekey_get(ss->store, ss->account, id, &k);
    if (rc == 0) {
        pk.id = id;
        memcpy(pk.kp.priv, k.priv, sizeof pk.kp.priv);
        memcpy(pk.kp.pub, k.pub, sizeof pk.kp.pub);
        rc = wa_signal_prekey_record(&pk, out);
        wa_wipe(&pk, sizeof pk);
    }
    wa_wipe(&k, sizeof k);
    return found(rc);
}

static int cb_store_prekey(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    (void)id;
    (void)rec;
    (void)len;
    (void)ud;
    return WA_EUNSUPPORTED; /* the client stores raw keys itself (keys.c) */
}

static int cb_remove_prekey(uint32_t id, void *ud)
{
    wa__sigstore *ss = ud;

    return wa_store_prekey_remove(ss->store, ss->account, id);
}

static int cb_load_spk(uint32_t id, wa_buf *out, void *ud)
{
    wa__sigstore *ss = ud;
    wa_signal_signed_prekey spk;
    int rc;

    memset(&spk, 0, sizeof spk);
    spk.id = id;
    rc = wa_store_signed_prekey_get(ss->store, ss->account, id, spk.kp.priv, spk.kp.pub, spk.sig);
    if (rc == 0)
        rc = wa_signal_signed_prekey_record(&spk, 0, out);
    wa_wipe(&spk, sizeof spk);
    return found(rc);
}

static int cb_store_spk(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    (void)id;
    (void)rec;
    (void)len;
    (void)ud;
    return WA_EUNSUPPORTED; /* signed prekeys are kept with the credentials */
}

static int cb_remove_spk(uint32_t id, void *ud)
{
    (void)id;
    (void)ud;
    return 0; /* old signed prekeys stay readable for late pkmsgs */
}

static int cb_load_sk(const char *group, const wa_signal_addr *sender, wa_buf *out, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(sender, name, &a))
        return WA_EINVAL;
    return found(wa_store_sender_key_get(ss->store, ss->account, group, &a, out));
}

static int cb_store_sk(const char *group, const wa_signal_addr *sender, const uint8_t *rec,
                       size_t len, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(sender, name, &a))
        return WA_EINVAL;
    return wa_store_sender_key_put(ss->store, ss->account, group, &a, rec, len);
}

static int cb_delete_sk(const char *group, const wa_signal_addr *sender, void *ud)
{
    wa__sigstore *ss = ud;
    char name[WA_SIGNAL_NAME_MAX];
    wa_store_addr a;

    if (saddr(sender, name, &a))
        return WA_EINVAL;
    return wa_store_sender_key_delete(ss->store, ss->account, group, &a);
}

void wa__sigstore_bind(wa__sigstore *ss, wa_signal_store *st)
{
    memset(st, 0, sizeof *st);
    st->user_data = ss;
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
