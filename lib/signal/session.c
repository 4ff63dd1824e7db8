/*
 * session.c - the wa_signal handle and 1:1 sessions over libsignal-protocol-c: storing our
 * prekeys, starting a session from a bundle (X3DH), encrypting and decrypting pkmsg / msg.
 *
 * Ownership (libsignal-protocol-c): messages, bundles, keys and ciphers are released with
 * SIGNAL_UNREF / *_free; ciphertext_message_get_serialized() is borrowed from its message;
 * plaintexts are signal_buffers freed here with signal_buffer_bzero_free.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>
#include <time.h>

#include <signal/session_builder.h>
#include <signal/session_cipher.h>
#include <signal/protocol.h>

#include "core/alloc.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "signal/signal_int.h"
#include "wa/error.h"

static const uint8_t empty_msg[1];

int wa_signal_new(wa_signal **out, const wa_signal_store *st)
{
    wa_signal *s;
    int rc;

    if (!out || !st || !st->get_identity_cb || !st->load_identity_cb || !st->save_identity_cb ||
        !st->load_session_cb || !st->store_session_cb || !st->delete_session_cb ||
        !st->load_prekey_cb || !st->store_prekey_cb || !st->remove_prekey_cb ||
        !st->load_signed_prekey_cb || !st->store_signed_prekey_cb || !st->remove_signed_prekey_cb ||
        !st->load_sender_key_cb || !st->store_sender_key_cb || !st->delete_sender_key_cb)
        return WA_EINVAL;
    s = wa_calloc(1, sizeof *s);
    if (!s)
        return WA_ENOMEM;
    s->store = *st;
    s->reason = "";
    wa__signal_op_init(s);
    /* the provider clears the HMAC context pointer on init (libsignal-protocol-c 2.3.3 cleans
     * up an uninitialised one after a failed init: see lib/crypto/provider.c) */
    rc = wa_signal_ctx_new(&s->ctx);
    if (rc)
        goto fail;
    if (signal_protocol_store_context_create(&s->sctx, s->ctx) < 0 || !s->sctx) {
        s->sctx = NULL;
        rc = WA_ENOMEM;
        goto fail;
    }
    rc = wa__signal_adapter_install(s);
    if (rc)
        goto fail;
    *out = s;
    return 0;
fail:
    wa_signal_free(s);
    return rc;
}

void wa_signal_free(wa_signal *s)
{
    if (!s)
        return;
    if (s->sctx)
        signal_protocol_store_context_destroy(s->sctx);
    wa_signal_ctx_free(s->ctx);
    wa__signal_op_cleanup(s);
    wa_wipe(s, sizeof *s);
    wa_free(s);
}

void wa_signal_set_identity_policy(wa_signal *s, int policy)
{
    s->policy =
        policy == WA_SIGNAL_IDENTITY_REJECT ? WA_SIGNAL_IDENTITY_REJECT : WA_SIGNAL_IDENTITY_ACCEPT;
}

void wa_signal_set_identity_changed_cb(wa_signal *s, wa_signal_identity_changed_cb cb,
                                       void *user_data)
{
    s->identity_cb = cb;
    s->identity_ud = user_data;
}

const char *wa_signal_last_error(const wa_signal *s)
{
    return s && s->reason ? s->reason : "";
}

/* ---- our keys ---- */

static int prekey_id_ok(uint32_t id)
{
    return id >= 1 && id <= WA_SIGNAL_PREKEY_ID_MAX;
}

int wa_signal_save_prekeys(wa_signal *s, const wa_signal_prekey *pk, size_t n)
{
    size_t i;
    int rc = 0;

    if (!s || (!pk && n))
        return WA_EINVAL;
    wa__signal_op_begin(s);
    for (i = 0; i < n && rc == 0; i++) {
        ec_key_pair *kp = NULL;
        session_pre_key *rec = NULL;
        signal_buffer *ser = NULL;

        if (!prekey_id_ok(pk[i].id)) {
            rc = wa__signal_fail(s, WA_EINVAL, "prekey id out of range");
            break;
        }
        rc = wa__signal_make_keypair(s->ctx, &kp, &pk[i].kp);
        if (rc >= 0)
            rc = session_pre_key_create(&rec, pk[i].id, kp);
        if (rc >= 0)
            rc = session_pre_key_serialize(&ser, rec);
        if (rc < 0) {
            rc = wa__signal_map_err(s, rc, 0);
        } else {
            rc = s->store.store_prekey_cb(pk[i].id, signal_buffer_data(ser), signal_buffer_len(ser),
                                          s->store.user_data);
            if (rc > 0)
                rc = 0;
        }
        if (ser)
            signal_buffer_bzero_free(ser);
        SIGNAL_UNREF(rec);
        SIGNAL_UNREF(kp);
    }
    return wa__signal_op_end(s, rc);
}

int wa_signal_save_signed_prekey(wa_signal *s, const wa_signal_signed_prekey *spk)
{
    ec_key_pair *kp = NULL;
    session_signed_pre_key *rec = NULL;
    signal_buffer *ser = NULL;
    int rc;

    if (!s || !spk)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    if (!prekey_id_ok(spk->id)) {
        rc = wa__signal_fail(s, WA_EINVAL, "signed prekey id out of range");
        goto out;
    }
    rc = wa__signal_make_keypair(s->ctx, &kp, &spk->kp);
    if (rc >= 0)
        rc = session_signed_pre_key_create(&rec, spk->id, (uint64_t)time(NULL) * 1000u, kp,
                                           spk->sig, sizeof spk->sig);
    if (rc >= 0)
        rc = session_signed_pre_key_serialize(&ser, rec);
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 0);
        goto out;
    }
    rc = s->store.store_signed_prekey_cb(spk->id, signal_buffer_data(ser), signal_buffer_len(ser),
                                         s->store.user_data);
    if (rc > 0)
        rc = 0;
out:
    if (ser)
        signal_buffer_bzero_free(ser);
    SIGNAL_UNREF(rec);
    SIGNAL_UNREF(kp);
    return wa__signal_op_end(s, rc);
}

int wa_signal_load_prekey_public(wa_signal *s, uint32_t id, uint8_t pub[WA_SIGNAL_KEY_LEN])
{
    session_pre_key *rec = NULL;
    signal_buffer *ser = NULL;
    wa_buf b;
    int rc;

    if (!s || !pub)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_prekey_cb(id, &b, s->store.user_data);
    if (rc < 0)
        goto out;
    if (rc == 0 || b.len == 0) {
        rc = wa__signal_fail(s, WA_ENOTFOUND, "unknown prekey id");
        goto out;
    }
    rc = session_pre_key_deserialize(&rec, b.data, b.len, s->ctx);
    if (rc >= 0)
        rc = ec_public_key_serialize(&ser,
                                     ec_key_pair_get_public(session_pre_key_get_key_pair(rec)));
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 0);
        goto out;
    }
    if (signal_buffer_len(ser) != WA_SIGNAL_PUBKEY_LEN) {
        rc = wa__signal_fail(s, WA_ESTORE, "bad prekey record");
        goto out;
    }
    memcpy(pub, signal_buffer_data(ser) + 1, WA_SIGNAL_KEY_LEN);
    rc = 0;
out:
    wa_buf_wipe_cleanup(&b);
    if (ser)
        signal_buffer_free(ser);
    SIGNAL_UNREF(rec);
    return wa__signal_op_end(s, rc);
}

/* ---- sessions ---- */

int wa_signal_process_bundle(wa_signal *s, const wa_signal_addr *addr, const wa_signal_bundle *b)
{
    ec_public_key *idk = NULL, *spk = NULL, *pk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    wa__sg_addr sa;
    int rc;

    if (!s || !addr || !b)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    if (wa__signal_sg_addr(&sa, addr)) {
        rc = wa__signal_fail(s, WA_EINVAL, "invalid address");
        goto out;
    }
    if (b->has_prekey && !prekey_id_ok(b->prekey_id)) {
        rc = wa__signal_fail(s, WA_EPROTO, "bundle prekey id out of range");
        goto out;
    }
    rc = wa__signal_decode_pub(s->ctx, &idk, b->identity_pub);
    if (rc >= 0)
        rc = wa__signal_decode_pub(s->ctx, &spk, b->spk_pub);
    if (rc >= 0 && b->has_prekey)
        rc = wa__signal_decode_pub(s->ctx, &pk, b->prekey_pub);
    if (rc >= 0)
        rc = session_pre_key_bundle_create(&bundle, b->reg_id, addr->device,
                                           b->has_prekey ? b->prekey_id : 0, pk, b->spk_id, spk,
                                           b->spk_sig, sizeof b->spk_sig, idk);
    if (rc >= 0)
        rc = session_builder_create(&builder, s->sctx, &sa.a, s->ctx);
    if (rc >= 0)
        rc = session_builder_process_pre_key_bundle(builder, bundle);
    if (rc < 0)
        rc = wa__signal_map_err(s, rc, 'b');
out:
    session_builder_free(builder);
    SIGNAL_UNREF(bundle);
    SIGNAL_UNREF(idk);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(pk);
    return wa__signal_op_end(s, rc < 0 ? rc : 0);
}

/* Encrypt for one address. When pre is given, it holds the session record loaded ahead (found
 * says whether there was one) and is consumed (its contents move into the handle). */
static int encrypt_one(wa_signal *s, const wa_signal_addr *addr, const uint8_t *plain, size_t len,
                       int *type, wa_buf *out, wa_buf *pre, int found)
{
    session_cipher *cipher = NULL;
    ciphertext_message *msg = NULL;
    signal_buffer *ser = NULL;
    wa__sg_addr sa;
    int rc, t = 0;

    wa__signal_op_begin(s);
    if (wa__signal_sg_addr(&sa, addr)) {
        rc = wa__signal_fail(s, WA_EINVAL, "invalid address");
        goto out;
    }
    if (pre) {
        /* hand the batch-loaded record to the load that session_cipher_encrypt makes */
        wa_buf_wipe_cleanup(&s->pre_rec);
        s->pre_rec = *pre;
        wa_buf_init(pre, pre->max);
        s->pre_valid = 1;
        s->pre_found = found ? 1 : 0;
        s->pre_addr = *addr;
        rc = s->pre_found;
    } else {
        rc = signal_protocol_session_contains_session(s->sctx, &sa.a);
    }
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 0);
        goto out;
    }
    if (rc == 0) {
        rc = wa__signal_fail(s, WA_ENOTFOUND, "no session");
        goto out;
    }
    /* room for the result first: a full output must not cost a message key */
    rc = wa_buf_reserve(out, len + WA_SIGNAL_CT_OVERHEAD);
    if (rc) {
        rc = wa__signal_fail(s, rc, "output buffer too small");
        goto out;
    }
    rc = session_cipher_create(&cipher, s->sctx, &sa.a, s->ctx);
    if (rc >= 0)
        rc = session_cipher_encrypt(cipher, len ? plain : empty_msg, len, &msg);
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 0);
        goto out;
    }
    t = ciphertext_message_get_type(msg);
    ser = ciphertext_message_get_serialized(msg); /* borrowed from msg */
    if ((t != WA_SIGNAL_MSG && t != WA_SIGNAL_PKMSG) || !ser)
        rc = wa__signal_fail(s, WA_ECRYPTO, "unexpected ciphertext type");
out:
    rc = wa__signal_op_end_append(s, rc, out, rc == 0 ? ser : NULL);
    if (rc == 0)
        *type = t;
    SIGNAL_UNREF(msg);
    session_cipher_free(cipher);
    return rc;
}

int wa_signal_encrypt(wa_signal *s, const wa_signal_addr *addr, const uint8_t *plain, size_t len,
                      int *type, wa_buf *out)
{
    if (!s || !addr || (!plain && len) || !type || !out)
        return WA_EINVAL;
    if (len > WA_SIGNAL_MSG_MAX) {
        s->reason = "message too large";
        return WA_ELIMIT;
    }
    return encrypt_one(s, addr, plain, len, type, out, NULL, 0);
}

/* Map a deserialization failure: the bytes are not a valid message. */
static int parse_err(wa_signal *s, int sg, const char *what)
{
    if (sg == SG_ERR_NOMEM)
        return wa__signal_fail(s, WA_ENOMEM, "out of memory");
    if (sg == SG_ERR_INVALID_VERSION || sg == SG_ERR_LEGACY_MESSAGE)
        return wa__signal_fail(s, WA_EUNSUPPORTED, "unsupported message version");
    return wa__signal_fail(s, WA_EPROTO, what);
}

int wa_signal_decrypt(wa_signal *s, const wa_signal_addr *addr, int type, const uint8_t *ct,
                      size_t len, wa_buf *out)
{
    pre_key_signal_message *pm = NULL;
    signal_message *m = NULL;
    session_cipher *cipher = NULL;
    signal_buffer *plain = NULL;
    wa__sg_addr sa;
    int rc;

    if (!s || !addr || !ct || !out || (type != WA_SIGNAL_MSG && type != WA_SIGNAL_PKMSG))
        return WA_EINVAL;
    wa__signal_op_begin(s);
    if (len > WA_SIGNAL_MSG_MAX + WA_SIGNAL_CT_OVERHEAD) {
        rc = wa__signal_fail(s, WA_ELIMIT, "message too large");
        goto out;
    }
    if (wa__signal_sg_addr(&sa, addr)) {
        rc = wa__signal_fail(s, WA_EINVAL, "invalid address");
        goto out;
    }
    /* libsignal accepts version 2 here and fails later with a misleading "bad MAC" */
    if (len > 0 && ct[0] >> 4 != WA__SIGNAL_VERSION) {
        rc = wa__signal_fail(s, WA_EUNSUPPORTED, "unsupported message version");
        goto out;
    }
    /* the plaintext is shorter than the ciphertext: reserve before any state changes */
    rc = wa_buf_reserve(out, len);
    if (rc) {
        rc = wa__signal_fail(s, rc, "output buffer too small");
        goto out;
    }
    if (type == WA_SIGNAL_PKMSG) {
        rc = pre_key_signal_message_deserialize(&pm, ct, len, s->ctx);
        if (rc < 0) {
            rc = parse_err(s, rc, "malformed pkmsg");
            goto out;
        }
    } else {
        rc = signal_message_deserialize(&m, ct, len, s->ctx);
        if (rc < 0) {
            rc = parse_err(s, rc, "malformed msg");
            goto out;
        }
    }
    rc = session_cipher_create(&cipher, s->sctx, &sa.a, s->ctx);
    if (rc >= 0) {
        if (pm)
            rc = session_cipher_decrypt_pre_key_signal_message(cipher, pm, NULL, &plain);
        else
            rc = session_cipher_decrypt_signal_message(cipher, m, NULL, &plain);
    }
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, pm ? 'p' : 0);
        goto out;
    }
    if (!plain)
        rc = wa__signal_fail(s, WA_ECRYPTO, "no plaintext");
out:
    rc = wa__signal_op_end_append(s, rc, out, rc == 0 ? plain : NULL);
    if (plain)
        signal_buffer_bzero_free(plain);
    session_cipher_free(cipher);
    SIGNAL_UNREF(pm);
    SIGNAL_UNREF(m);
    return rc;
}

int wa_signal_has_session(wa_signal *s, const wa_signal_addr *addr)
{
    wa__sg_addr sa;
    wa_buf b;
    int rc;

    if (!s || !addr || wa__signal_sg_addr(&sa, addr))
        return WA_EINVAL;
    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_session_cb(addr, &b, s->store.user_data);
    wa_buf_wipe_cleanup(&b);
    if (rc < 0)
        return rc;
    return rc ? 1 : 0;
}

/* Batch load into n fresh buffers; frees them on failure. */
static int batch_load(wa_signal *s, const wa_signal_addr *addrs, size_t n, wa_buf **recs_out,
                      uint8_t **found_out)
{
    wa_buf *recs;
    uint8_t *found;
    size_t i;
    int rc;

    recs = wa_calloc(n, sizeof *recs);
    found = wa_calloc(n, 1);
    if (!recs || !found) {
        wa_free(recs);
        wa_free(found);
        return WA_ENOMEM;
    }
    for (i = 0; i < n; i++)
        wa_buf_init(&recs[i], WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_sessions_cb(addrs, n, recs, found, s->store.user_data);
    if (rc < 0) {
        for (i = 0; i < n; i++)
            wa_buf_wipe_cleanup(&recs[i]);
        wa_free(recs);
        wa_free(found);
        return rc;
    }
    *recs_out = recs;
    *found_out = found;
    return 0;
}

static void batch_free(wa_buf *recs, uint8_t *found, size_t n)
{
    size_t i;

    if (recs)
        for (i = 0; i < n; i++)
            wa_buf_wipe_cleanup(&recs[i]);
    wa_free(recs);
    wa_free(found);
}

static int check_addrs(const wa_signal_addr *addrs, size_t n)
{
    wa__sg_addr sa;
    size_t i;

    if (n > WA_SIGNAL_BATCH_MAX)
        return WA_ELIMIT;
    if (n && !addrs)
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (wa__signal_sg_addr(&sa, &addrs[i]))
            return WA_EINVAL;
    return 0;
}

int wa_signal_has_sessions(wa_signal *s, const wa_signal_addr *addrs, size_t n, uint8_t *has)
{
    uint8_t tmp[WA_SIGNAL_BATCH_MAX];
    wa_buf *recs = NULL;
    uint8_t *found = NULL;
    size_t i;
    int rc;

    if (!s || (n && !has))
        return WA_EINVAL;
    rc = check_addrs(addrs, n);
    if (rc || n == 0)
        return rc;
    if (s->store.load_sessions_cb) {
        rc = batch_load(s, addrs, n, &recs, &found);
        if (rc)
            return rc;
        for (i = 0; i < n; i++)
            has[i] = found[i] ? 1 : 0;
        batch_free(recs, found, n);
        return 0;
    }
    for (i = 0; i < n; i++) {
        rc = wa_signal_has_session(s, &addrs[i]);
        if (rc < 0)
            return rc;
        tmp[i] = (uint8_t)rc;
    }
    memcpy(has, tmp, n);
    return 0;
}

int wa_signal_delete_session(wa_signal *s, const wa_signal_addr *addr)
{
    wa__sg_addr sa;
    int rc;

    if (!s || !addr || wa__signal_sg_addr(&sa, addr))
        return WA_EINVAL;
    rc = s->store.delete_session_cb(addr, s->store.user_data);
    return rc < 0 ? rc : 0;
}

/* Encrypt for n devices with one batch load; device i gets plaintext which ? which[i] : 0. */
static int encrypt_batch(wa_signal *s, const wa_signal_addr *addrs, size_t n,
                         const uint8_t *const plain[2], const size_t len[2], const uint8_t *which,
                         wa_signal_encrypted *res)
{
    wa_buf *recs = NULL;
    uint8_t *found = NULL;
    size_t i, j;
    int rc;

    rc = check_addrs(addrs, n);
    if (rc || n == 0)
        return rc;
    if (s->store.load_sessions_cb) {
        rc = batch_load(s, addrs, n, &recs, &found);
        if (rc)
            return rc;
    }
    for (i = 0; i < n; i++) {
        wa_buf *pre = recs ? &recs[i] : NULL;
        int t = 0, k = which && which[i] ? 1 : 0;

        /* an address listed twice: its preloaded record went stale with the first encrypt */
        for (j = 0; pre && j < i; j++)
            if (wa_signal_addr_equal(&addrs[j], &addrs[i]))
                pre = NULL;
        res[i].err =
            encrypt_one(s, &addrs[i], plain[k], len[k], &t, &res[i].ct, pre, pre ? found[i] : 0);
        res[i].type = res[i].err ? 0 : t;
    }
    batch_free(recs, found, n);
    return 0;
}

int wa_signal_encrypt_many(wa_signal *s, const wa_signal_addr *addrs, size_t n,
                           const uint8_t *plain, size_t len, wa_signal_encrypted *res)
{
    const uint8_t *p[2] = {plain, plain};
    size_t l[2] = {len, len};

    if (!s || (!plain && len) || (n && !res))
        return WA_EINVAL;
    if (len > WA_SIGNAL_MSG_MAX)
        return WA_ELIMIT;
    return encrypt_batch(s, addrs, n, p, l, NULL, res);
}

int wa_signal_encrypt_fanout(wa_signal *s, const wa_signal_addr *addrs, size_t n,
                             const uint8_t *const plain[2], const size_t len[2],
                             const uint8_t *which, wa_signal_encrypted *res)
{
    size_t i;

    if (!s || !plain || !len || (n && (!res || !which)))
        return WA_EINVAL;
    for (i = 0; i < 2; i++) {
        if (!plain[i] && len[i])
            return WA_EINVAL;
        if (len[i] > WA_SIGNAL_MSG_MAX)
            return WA_ELIMIT;
    }
    for (i = 0; i < n; i++)
        if (which[i] > 1)
            return WA_EINVAL;
    return encrypt_batch(s, addrs, n, plain, len, which, res);
}
