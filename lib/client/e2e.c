/*
 * e2e.c - what the client's messaging files share about end-to-end encryption: the Signal
 * handle over the account's store, the Signal address of a device, the PN<->LID map, our own
 * identity, and the checks of a sender's <device-identity>.
 *
 * ONE SIGNAL STATE PER REMOTE DEVICE. WhatsApp names a user two ways, by phone number
 * (NUMBER@s.whatsapp.net) and by LID (NUMBER@lid), and a peer may address us either way (Baileys
 * 7 switches to the LID once it learns it). A Signal session belongs to the device, not to the
 * name, so the client keys sessions, identities and sender keys by the LID whenever the LID of
 * a phone number is known, and by the phone number otherwise. When a pair becomes known (a
 * stanza's sender_lid / participant_pn, a usync <lid/>, our own <success lid/>) the state kept
 * under the phone number moves to the LID (wa_store_e2e_rename), as Baileys 7 migrates its
 * sessions. Events still report both names.
 *
 * DEVICE IDENTITY (PROTOCOL.md §4): a pkmsg from a companion carries the companion's
 * ADVSignedDeviceIdentity, whose account signature (by the primary's identity key) covers
 * 06 00 || details || the companion's identity key (06 05 for hosted accounts). The identity
 * key is the one the pkmsg itself names; a <device-identity> whose signature does not cover it
 * means the sender is not the device it claims to be, and the message is refused.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "proto/adv.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define LOG "client"

wa_signal *wa__e2e_signal(wa_client *c)
{
    wa_signal_store st;
    int rc;

    c->sig_used = wa__client_now(c);
    if (c->sig)
        return c->sig;
    c->sigstore.store = c->store;
    c->sigstore.account = c->account;
    wa__sigstore_bind(&c->sigstore, &st);
    rc = wa_signal_new(&c->sig, &st);
    if (rc) {
        wa_log_error(LOG, "[%s] cannot create the Signal handle: %s", c->account_name,
                     wa_strerror(rc));
        c->sig = NULL;
    } else {
        wa_signal_set_identity_changed_cb(c->sig, wa__identity_changed_cb, c); /* presence.c */
    }
    return c->sig;
}

void wa__e2e_idle(wa_client *c, uint64_t now, uint64_t quiet_ms)
{
    if (c->sig && now - c->sig_used >= quiet_ms) {
        wa_signal_free(c->sig); /* 2.2 KiB an idle client does not need */
        c->sig = NULL;
        wa_log_debug(LOG, "[%s] Signal handle released (no messaging for %llu ms)", c->account_name,
                     (unsigned long long)(now - c->sig_used));
    }
}

void wa__e2e_release(wa_client *c)
{
    wa__recv_batch_flush(c); /* none open: a read flushes its own (recv.c) */
    wa__recv_marks_flush(c); /* deferred "handed over" marks (recv.c) */
    wa_free(c->marks);
    c->marks = NULL;
    wa_signal_free(c->sig);
    c->sig = NULL;
    wa__devices_clear(c);
    wa__group_clear(c);
    if (c->retries) {
        wa_wipe(c->retries, WA__RETRY_TRACK * sizeof *c->retries);
        wa_free(c->retries);
        c->retries = NULL;
    }
    wa_free(c->resends);
    c->resends = NULL;
    c->retries_next = c->resends_next = 0;
}

static int server_kind(const wa_jid *j)
{
    if (wa_jid_is_lid(j))
        return WA_SIGNAL_LID;
    if (!strcmp(j->server, WA_JID_SERVER_HOSTED))
        return WA_SIGNAL_HOSTED;
    if (!strcmp(j->server, WA_JID_SERVER_HOSTED_LID))
        return WA_SIGNAL_HOSTED_LID;
    if (wa_jid_is_user(j) && j->agent == 0)
        return WA_SIGNAL_PN;
    return -1;
}

int wa__e2e_addr(wa_client *c, const wa_jid *device, wa_signal_addr *out)
{
    char lid[WA_JID_USER_MAX + 1];
    int kind = server_kind(device);

    if (kind < 0 || !device->user[0])
        return WA_EINVAL;
    if (kind == WA_SIGNAL_PN &&
        wa_store_lid_for_pn(c->store, c->account, device->user, lid, sizeof lid) == 0)
        return wa_signal_addr_make(out, lid, WA_SIGNAL_LID, device->device);
    return wa_signal_addr_make(out, device->user, kind, device->device);
}

int wa__e2e_learn(wa_client *c, const char *pn_user, const char *lid_user)
{
    char known[WA_JID_USER_MAX + 1], from[WA_SIGNAL_NAME_MAX], to[WA_SIGNAL_NAME_MAX];
    wa_signal_addr pa, la;
    int rc;

    if (!pn_user || !lid_user || !pn_user[0] || !lid_user[0])
        return WA_EINVAL;
    if (wa_store_lid_for_pn(c->store, c->account, pn_user, known, sizeof known) == 0 &&
        !strcmp(known, lid_user))
        return 0;
    if (wa_signal_addr_make(&pa, pn_user, WA_SIGNAL_PN, 0) ||
        wa_signal_addr_make(&la, lid_user, WA_SIGNAL_LID, 0) ||
        wa_signal_addr_name(&pa, from, sizeof from) < 0 ||
        wa_signal_addr_name(&la, to, sizeof to) < 0)
        return WA_EINVAL;
    rc = wa_store_tx_begin(c->store);
    if (rc)
        return rc;
    rc = wa_store_lid_put(c->store, c->account, pn_user, lid_user);
    if (rc == 0)
        rc = wa_store_e2e_rename(c->store, c->account, from, to);
    rc = wa_store_tx_end(c->store, rc);
    if (rc == 0)
        wa_log_debug(LOG, "[%s] %s@s.whatsapp.net is %s@lid", c->account_name, pn_user, lid_user);
    else
        wa_log_warn(LOG, "[%s] cannot record the LID of %s: %s", c->account_name, pn_user,
                    wa_strerror(rc));
    return rc;
}

int wa__e2e_alt(wa_client *c, const wa_jid *user, wa_jid *out)
{
    char other[WA_JID_USER_MAX + 1];
    int rc;

    if (wa_jid_is_lid(user))
        rc = wa_store_pn_for_lid(c->store, c->account, user->user, other, sizeof other);
    else if (wa_jid_is_user(user))
        rc = wa_store_lid_for_pn(c->store, c->account, user->user, other, sizeof other);
    else
        return WA_ENOTFOUND;
    if (rc)
        return WA_ENOTFOUND;
    return wa_jid_make(out, other, wa_jid_is_lid(user) ? WA_JID_SERVER_USER : WA_JID_SERVER_LID,
                       0) == 0
               ? 0
               : WA_ENOTFOUND;
}

int wa__e2e_me(wa_client *c, int lid, wa_jid *out)
{
    wa_jid me, alt;

    if (wa_jid_parse(c->me_jid, &me) != 0)
        return WA_ENOTFOUND;
    wa_jid_to_non_ad(&me, &me);
    if (!lid) {
        *out = me;
        return 0;
    }
    if (c->me_lid[0] && wa_jid_parse(c->me_lid, &alt) == 0) {
        wa_jid_to_non_ad(&alt, out);
        return 0;
    }
    return wa__e2e_alt(c, &me, out);
}

uint16_t wa__e2e_my_device(const wa_client *c)
{
    wa_jid me;

    return wa_jid_parse(c->me_jid, &me) == 0 ? me.device : 0;
}

int wa__e2e_device_identity(wa_client *c, wa_buf *out)
{
    wa_store_creds *cr = wa_malloc(sizeof *cr);
    int rc;

    if (!cr)
        return WA_ENOMEM;
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == 0 && cr->adv_identity_len == 0)
        rc = WA_ENOTFOUND;
    if (rc == 0)
        rc = wa_buf_append(out, cr->adv_identity, cr->adv_identity_len);
    wa_store_creds_wipe(cr);
    wa_free(cr);
    return rc;
}

int wa__e2e_check_device_identity(const uint8_t *adv, size_t len,
                                  const uint8_t identity_pub[WA_SIGNAL_KEY_LEN])
{
    Wa__ADVSignedDeviceIdentity *id = NULL;
    uint8_t *msg = NULL;
    size_t n;
    int rc;

    rc = wa_proto_unpack(&wa__advsigned_device_identity__descriptor, adv, len, &id);
    if (rc)
        return rc;
    if (!id->has_details || !id->has_accountsignaturekey || !id->has_accountsignature ||
        id->accountsignaturekey.len != 32 || id->accountsignature.len != 64 ||
        id->details.len > WA_STORE_ADV_MAX) {
        rc = WA_EPROTOBUF;
        goto out;
    }
    n = 2 + id->details.len + WA_SIGNAL_KEY_LEN;
    msg = wa_malloc(n);
    if (!msg) {
        rc = WA_ENOMEM;
        goto out;
    }
    msg[0] = 6;
    msg[1] = 0;
    if (id->details.len) /* empty details: data may be NULL */
        memcpy(msg + 2, id->details.data, id->details.len);
    memcpy(msg + 2 + id->details.len, identity_pub, WA_SIGNAL_KEY_LEN);
    rc = wa_xeddsa_verify(id->accountsignaturekey.data, msg, n, id->accountsignature.data);
    if (rc) { /* hosted accounts sign with the prefix 06 05 */
        msg[1] = 5;
        rc = wa_xeddsa_verify(id->accountsignaturekey.data, msg, n, id->accountsignature.data);
    }
    rc = rc ? WA_ECRYPTO : 0;
out:
    wa_free(msg);
    wa_proto_free(id);
    return rc;
}

/* One protobuf varint at *p (advanced). 0 or -1. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (*p < end && shift < 64) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
        shift += 7;
    }
    return -1;
}

int wa__e2e_pkmsg_identity(const uint8_t *ct, size_t len, uint8_t out[WA_SIGNAL_KEY_LEN])
{
    /* version byte, then PreKeySignalMessage { ... identityKey = 3 (33 bytes) ... } */
    const uint8_t *p, *end;
    uint64_t key, n;

    if (!ct || len < 2)
        return WA_EPROTO;
    p = ct + 1;
    end = ct + len;
    while (p < end) {
        if (varint(&p, end, &key))
            return WA_EPROTO;
        switch (key & 7) {
        case 0:
            if (varint(&p, end, &n))
                return WA_EPROTO;
            break;
        case 1:
            if ((size_t)(end - p) < 8)
                return WA_EPROTO;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4)
                return WA_EPROTO;
            p += 4;
            break;
        case 2:
            if (varint(&p, end, &n) || n > (uint64_t)(end - p))
                return WA_EPROTO;
            if ((key >> 3) == 3) {
                if (n != WA_SIGNAL_PUBKEY_LEN || p[0] != WA_SIGNAL_KEY_TYPE)
                    return WA_EPROTO;
                memcpy(out, p + 1, WA_SIGNAL_KEY_LEN);
                return 0;
            }
            p += n;
            break;
        default:
            return WA_EPROTO;
        }
    }
    return WA_EPROTO;
}
