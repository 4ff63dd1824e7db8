/*
 * group.c - group messages with sender keys over libsignal-protocol-c (group_session_builder,
 * group_cipher): our SenderKeyDistributionMessage, installing other members' ones, and
 * SenderKeyMessages (0x33 || protobuf || 64-byte XEdDSA signature, <enc type='skmsg'>).
 *
 * A sender key is named (group id, sender address); the group id is the group JID string, as
 * in Baileys 7 (SenderKeyName(group, jidToSignalProtocolAddress(author))). Baileys' sender uses
 * iterations 0, 2, 4, ...; libsignal's skipped-key store absorbs the gaps on our side, and
 * Baileys accepts our consecutive iterations.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include <signal/group_cipher.h>
#include <signal/group_session_builder.h>
#include <signal/protocol.h>

#include "signal/signal_int.h"
#include "wa/error.h"

static const uint8_t empty_msg[1];

/* A libsignal message's serialized form (borrowed from msg), or a failure. */
static int serialized(wa_signal *s, ciphertext_message *msg, signal_buffer **ser)
{
    *ser = ciphertext_message_get_serialized(msg);
    return *ser ? 0 : wa__signal_fail(s, WA_ECRYPTO, "no serialized message");
}

int wa_signal_group_create_skdm(wa_signal *s, const char *group, const wa_signal_addr *own,
                                wa_buf *skdm)
{
    group_session_builder *gb = NULL;
    sender_key_distribution_message *dm = NULL;
    signal_buffer *ser = NULL;
    wa__sg_skname sk;
    int rc;

    if (!s || !own || !skdm)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    rc = wa__signal_sg_skname(&sk, group, own);
    if (rc) {
        rc = wa__signal_fail(s, rc, "invalid group id or address");
        goto out;
    }
    rc = wa_buf_reserve(skdm, WA_SIGNAL_CT_OVERHEAD);
    if (rc) {
        rc = wa__signal_fail(s, rc, "output buffer too small");
        goto out;
    }
    rc = group_session_builder_create(&gb, s->sctx, s->ctx);
    if (rc >= 0)
        rc = group_session_builder_create_session(gb, &dm, &sk.n);
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 'g');
        goto out;
    }
    rc = serialized(s, (ciphertext_message *)dm, &ser);
out:
    rc = wa__signal_op_end_append(s, rc, skdm, rc == 0 ? ser : NULL);
    SIGNAL_UNREF(dm);
    group_session_builder_free(gb);
    return rc;
}

int wa_signal_group_process_skdm(wa_signal *s, const char *group, const wa_signal_addr *sender,
                                 const uint8_t *skdm, size_t len)
{
    group_session_builder *gb = NULL;
    sender_key_distribution_message *dm = NULL;
    wa__sg_skname sk;
    int rc;

    if (!s || !sender || !skdm)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    rc = wa__signal_sg_skname(&sk, group, sender);
    if (rc) {
        rc = wa__signal_fail(s, rc, "invalid group id or address");
        goto out;
    }
    if (len > WA_SIGNAL_SKDM_MAX) {
        rc = wa__signal_fail(s, WA_ELIMIT, "sender key distribution message too large");
        goto out;
    }
    rc = sender_key_distribution_message_deserialize(&dm, skdm, len, s->ctx);
    if (rc < 0) {
        rc = wa__signal_fail(s, rc == SG_ERR_NOMEM ? WA_ENOMEM : WA_EPROTO,
                             "malformed sender key distribution message");
        goto out;
    }
    rc = group_session_builder_create(&gb, s->sctx, s->ctx);
    if (rc >= 0)
        rc = group_session_builder_process_session(gb, &sk.n, dm);
    if (rc < 0)
        rc = wa__signal_map_err(s, rc, 'g');
out:
    SIGNAL_UNREF(dm);
    group_session_builder_free(gb);
    return wa__signal_op_end(s, rc < 0 ? rc : 0);
}

int wa_signal_group_encrypt(wa_signal *s, const char *group, const wa_signal_addr *own,
                            const uint8_t *plain, size_t len, wa_buf *out)
{
    group_cipher *gc = NULL;
    ciphertext_message *msg = NULL;
    signal_buffer *ser = NULL;
    wa__sg_skname sk;
    int rc;

    if (!s || !own || (!plain && len) || !out)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    rc = wa__signal_sg_skname(&sk, group, own);
    if (rc) {
        rc = wa__signal_fail(s, rc, "invalid group id or address");
        goto out;
    }
    if (len > WA_SIGNAL_MSG_MAX) {
        rc = wa__signal_fail(s, WA_ELIMIT, "message too large");
        goto out;
    }
    /* an empty record would make libsignal log an error before saying "no session" */
    rc = wa_signal_group_has_sender_key(s, group, own);
    if (rc <= 0) {
        rc = rc < 0 ? wa__signal_fail(s, rc, "store failure")
                    : wa__signal_fail(s, WA_ENOTFOUND, "no sender key");
        goto out;
    }
    rc = wa_buf_reserve(out, len + WA_SIGNAL_CT_OVERHEAD);
    if (rc) {
        rc = wa__signal_fail(s, rc, "output buffer too small");
        goto out;
    }
    rc = group_cipher_create(&gc, s->sctx, &sk.n, s->ctx);
    if (rc >= 0)
        rc = group_cipher_encrypt(gc, len ? plain : empty_msg, len, &msg);
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 'g');
        goto out;
    }
    rc = serialized(s, msg, &ser);
out:
    rc = wa__signal_op_end_append(s, rc, out, rc == 0 ? ser : NULL);
    SIGNAL_UNREF(msg);
    group_cipher_free(gc);
    return rc;
}

int wa_signal_group_decrypt(wa_signal *s, const char *group, const wa_signal_addr *sender,
                            const uint8_t *ct, size_t len, wa_buf *out)
{
    group_cipher *gc = NULL;
    sender_key_message *m = NULL;
    signal_buffer *plain = NULL;
    wa__sg_skname sk;
    int rc;

    if (!s || !sender || !ct || !out)
        return WA_EINVAL;
    wa__signal_op_begin(s);
    rc = wa__signal_sg_skname(&sk, group, sender);
    if (rc) {
        rc = wa__signal_fail(s, rc, "invalid group id or address");
        goto out;
    }
    if (len > WA_SIGNAL_MSG_MAX + WA_SIGNAL_CT_OVERHEAD) {
        rc = wa__signal_fail(s, WA_ELIMIT, "message too large");
        goto out;
    }
    if (len > 0 && ct[0] >> 4 != WA__SIGNAL_VERSION) {
        rc = wa__signal_fail(s, WA_EUNSUPPORTED, "unsupported message version");
        goto out;
    }
    rc = wa_buf_reserve(out, len);
    if (rc) {
        rc = wa__signal_fail(s, rc, "output buffer too small");
        goto out;
    }
    rc = sender_key_message_deserialize(&m, ct, len, s->ctx);
    if (rc < 0) {
        rc = wa__signal_fail(s, rc == SG_ERR_NOMEM ? WA_ENOMEM : WA_EPROTO,
                             "malformed sender key message");
        goto out;
    }
    rc = group_cipher_create(&gc, s->sctx, &sk.n, s->ctx);
    if (rc >= 0)
        rc = group_cipher_decrypt(gc, m, NULL, &plain);
    if (rc < 0) {
        rc = wa__signal_map_err(s, rc, 'g');
        goto out;
    }
    if (!plain)
        rc = wa__signal_fail(s, WA_ECRYPTO, "no plaintext");
out:
    rc = wa__signal_op_end_append(s, rc, out, rc == 0 ? plain : NULL);
    if (plain)
        signal_buffer_bzero_free(plain);
    group_cipher_free(gc);
    SIGNAL_UNREF(m);
    return rc;
}

int wa_signal_group_has_sender_key(wa_signal *s, const char *group, const wa_signal_addr *sender)
{
    wa__sg_skname sk;
    wa_buf b;
    int rc;

    if (!s || !sender || wa__signal_sg_skname(&sk, group, sender))
        return WA_EINVAL;
    wa_buf_init(&b, WA_SIGNAL_RECORD_MAX);
    rc = s->store.load_sender_key_cb(group, sender, &b, s->store.user_data);
    wa_buf_wipe_cleanup(&b);
    if (rc < 0)
        return rc;
    return rc ? 1 : 0;
}

int wa_signal_group_delete_sender_key(wa_signal *s, const char *group, const wa_signal_addr *sender)
{
    wa__sg_skname sk;
    int rc;

    if (!s || !sender || wa__signal_sg_skname(&sk, group, sender))
        return WA_EINVAL;
    rc = s->store.delete_sender_key_cb(group, sender, s->store.user_data);
    return rc < 0 ? rc : 0;
}
