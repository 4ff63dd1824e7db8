/*
 * keys.c - key material for the Signal layer: identity and prekey pairs (X25519, clamped),
 * registration ids, XEdDSA-signed prekeys, our own bundle.
 *
 * A signed prekey's signature covers the 33-byte libsignal form 0x05 || pub (libsignal-node
 * keyhelper.generateSignedPreKey and libsignal-protocol-c's session_builder both sign / verify
 * that form). Registration ids are in 1..16380 like libsignal's non-extended range (Baileys
 * draws 14 random bits and can produce 0; we never do).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include <signal/session_pre_key.h>

#include "core/util.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "signal/signal_int.h"
#include "wa/error.h"

int wa_signal_gen_keypair(wa_signal_keypair *out)
{
    wa_signal_keypair kp;
    int rc;

    if (!out)
        return WA_EINVAL;
    rc = wa_x25519_keygen(kp.priv, kp.pub);
    if (rc == 0)
        *out = kp;
    wa_wipe(&kp, sizeof kp);
    return rc;
}

int wa_signal_gen_registration_id(uint32_t *out)
{
    uint8_t r[4];
    int rc;

    if (!out)
        return WA_EINVAL;
    rc = wa_random(r, sizeof r);
    if (rc)
        return rc;
    *out = 1 + wa_load_be32(r) % WA_SIGNAL_REG_ID_MAX;
    return 0;
}

int wa_signal_gen_signed_prekey(const wa_signal_keypair *identity, uint32_t id,
                                wa_signal_signed_prekey *out)
{
    wa_signal_signed_prekey spk;
    uint8_t msg[WA_SIGNAL_PUBKEY_LEN];
    int rc;

    if (!identity || !out || id < 1 || id > WA_SIGNAL_PREKEY_ID_MAX)
        return WA_EINVAL;
    memset(&spk, 0, sizeof spk);
    spk.id = id;
    rc = wa_x25519_keygen(spk.kp.priv, spk.kp.pub);
    if (rc)
        goto out;
    msg[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(msg + 1, spk.kp.pub, WA_SIGNAL_KEY_LEN);
    rc = wa_xeddsa_sign(spk.sig, identity->priv, msg, sizeof msg);
    if (rc)
        goto out;
    *out = spk;
out:
    wa_wipe(&spk, sizeof spk);
    return rc;
}

uint32_t wa_signal_prekey_id_next(uint32_t id)
{
    return id >= WA_SIGNAL_PREKEY_ID_MAX ? 1 : id + 1;
}

int wa_signal_gen_prekeys(uint32_t first_id, size_t n, wa_signal_prekey *out)
{
    uint32_t id = first_id;
    size_t i;
    int rc;

    if ((!out && n) || first_id < 1 || first_id > WA_SIGNAL_PREKEY_ID_MAX)
        return WA_EINVAL;
    for (i = 0; i < n; i++) {
        out[i].id = id;
        rc = wa_x25519_keygen(out[i].kp.priv, out[i].kp.pub);
        if (rc) {
            wa_wipe(out, i * sizeof *out + sizeof *out);
            return rc;
        }
        id = wa_signal_prekey_id_next(id);
    }
    return 0;
}

void wa_signal_make_bundle(wa_signal_bundle *out, uint32_t reg_id,
                           const uint8_t identity_pub[WA_SIGNAL_KEY_LEN],
                           const wa_signal_signed_prekey *spk, const wa_signal_prekey *prekey)
{
    memset(out, 0, sizeof *out);
    out->reg_id = reg_id;
    memcpy(out->identity_pub, identity_pub, WA_SIGNAL_KEY_LEN);
    out->spk_id = spk->id;
    memcpy(out->spk_pub, spk->kp.pub, WA_SIGNAL_KEY_LEN);
    memcpy(out->spk_sig, spk->sig, WA_SIGNAL_SIG_LEN);
    if (prekey) {
        out->has_prekey = 1;
        out->prekey_id = prekey->id;
        memcpy(out->prekey_pub, prekey->kp.pub, WA_SIGNAL_KEY_LEN);
    }
}

/* Append a libsignal buffer to out (room reserved first: nothing is appended on failure). */
static int append_sg(wa_buf *out, signal_buffer *b)
{
    int rc = wa_buf_reserve(out, signal_buffer_len(b));

    if (rc == 0)
        rc = wa_buf_append(out, signal_buffer_data(b), signal_buffer_len(b));
    return rc;
}

int wa_signal_prekey_record(const wa_signal_prekey *pk, wa_buf *out)
{
    signal_context *ctx = wa_signal_ctx_get();
    ec_key_pair *kp = NULL;
    session_pre_key *rec = NULL;
    signal_buffer *ser = NULL;
    int rc;

    if (!pk || !out || pk->id < 1 || pk->id > WA_SIGNAL_PREKEY_ID_MAX)
        return WA_EINVAL;
    if (!ctx)
        return WA_ENOMEM;
    rc = wa__signal_make_keypair(ctx, &kp, &pk->kp);
    if (rc >= 0)
        rc = session_pre_key_create(&rec, pk->id, kp);
    if (rc >= 0)
        rc = session_pre_key_serialize(&ser, rec);
    rc = rc < 0 ? (rc == SG_ERR_NOMEM ? WA_ENOMEM : WA_ECRYPTO) : append_sg(out, ser);
    if (ser)
        signal_buffer_bzero_free(ser);
    SIGNAL_UNREF(rec);
    SIGNAL_UNREF(kp);
    return rc;
}

int wa_signal_signed_prekey_record(const wa_signal_signed_prekey *spk, uint64_t timestamp_ms,
                                   wa_buf *out)
{
    signal_context *ctx = wa_signal_ctx_get();
    ec_key_pair *kp = NULL;
    session_signed_pre_key *rec = NULL;
    signal_buffer *ser = NULL;
    int rc;

    if (!spk || !out || spk->id < 1 || spk->id > WA_SIGNAL_PREKEY_ID_MAX)
        return WA_EINVAL;
    if (!ctx)
        return WA_ENOMEM;
    rc = wa__signal_make_keypair(ctx, &kp, &spk->kp);
    if (rc >= 0)
        rc = session_signed_pre_key_create(&rec, spk->id, timestamp_ms, kp, spk->sig,
                                           sizeof spk->sig);
    if (rc >= 0)
        rc = session_signed_pre_key_serialize(&ser, rec);
    rc = rc < 0 ? (rc == SG_ERR_NOMEM ? WA_ENOMEM : WA_ECRYPTO) : append_sg(out, ser);
    if (ser)
        signal_buffer_bzero_free(ser);
    SIGNAL_UNREF(rec);
    SIGNAL_UNREF(kp);
    return rc;
}
