/*
 * pair.c - pairing a companion device (PROTOCOL.md §4; Baileys 7 lib/Utils/validate-connection.js
 * configureSuccessfulPairing, lib/Socket/socket.js requestPairingCode, messages-recv.js
 * link_code_companion_reg; whatsmeow pair.go, pair-code.go):
 *
 *   QR text      WA__QR_PREFIX ref,b64(noise pub),b64(identity pub),b64(adv secret),platform
 *                (Baileys 7 / today's WhatsApp Web wrap the fields in a wa.me link and add the
 *                companion platform id).
 *   pair-success ADVSignedDeviceIdentityHMAC{details, hmac, accountType}: hmac must be
 *                HMAC-SHA256(adv secret, [06 05 if HOSTED] || details). details is
 *                ADVSignedDeviceIdentity{details (ADVDeviceIdentity), accountSignatureKey,
 *                accountSignature}; the account signature is XEdDSA over
 *                (06 00, or 06 05 for a HOSTED device) || details || our identity pub. Our
 *                device signature is XEdDSA over 06 01 || details || identity pub || account
 *                key. The reply carries the identity without the account key.
 *   phone code   companion_hello with the ephemeral key wrapped under PBKDF2(code); the
 *                primary's notification gives its wrapped ephemeral key and identity; the
 *                companion_finish carries our identity encrypted under an HKDF of the shared
 *                secret; the adv secret is an HKDF of both shared secrets and a random value.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/buf.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "crypto/curve25519.h"
#include "jid/jid.h"
#include "proto/adv.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define ADV_DETAILS_MAX 512 /* ADVDeviceIdentity / ADVSignedDeviceIdentity, generously */

static const uint8_t PREFIX_ACCOUNT[2] = {6, 0};
static const uint8_t PREFIX_DEVICE[2] = {6, 1};
static const uint8_t PREFIX_HOSTED_ACCOUNT[2] = {6, 5};

int wa__pair_qr_text(const char *ref, const wa_store_creds *c, char *out, size_t cap)
{
    char noise[48], ident[48], adv[48];
    int n;

    wa_base64_encode(noise, c->noise_pub, 32, 0);
    wa_base64_encode(ident, c->identity_pub, 32, 0);
    wa_base64_encode(adv, c->adv_secret, 32, 0);
    n = snprintf(out, cap, "%s%s,%s,%s,%s,%s", WA__QR_PREFIX, ref, noise, ident, adv,
                 WA__PLATFORM_ID);
    wa_wipe(adv, sizeof adv);
    if (n < 0 || (size_t)n >= cap) {
        wa_wipe(out, cap);
        return WA_ELIMIT;
    }
    return 0;
}

static int bytes_of(const wa_node *n, const uint8_t **p, size_t *len)
{
    return n && wa_node_content_bytes(n, p, len) == 0 ? 0 : WA_EPROTO;
}

/* Append parts into a capped buffer (all or error). */
static int cat(wa_buf *b, const void *p1, size_t n1, const void *p2, size_t n2, const void *p3,
               size_t n3, const void *p4, size_t n4)
{
    int rc = wa_buf_append(b, p1, n1);
    if (rc == 0)
        rc = wa_buf_append(b, p2, n2);
    if (rc == 0 && n3)
        rc = wa_buf_append(b, p3, n3);
    if (rc == 0 && n4)
        rc = wa_buf_append(b, p4, n4);
    return rc;
}

int wa__pair_success(const wa_node *iq, wa_store_creds *c, wa_arena *a, wa_node **reply,
                     wa__pair_result *res)
{
    const wa_node *ps = wa_node_child(iq, "pair-success");
    const wa_node *di = wa_node_child(ps, "device-identity");
    const wa_node *dev = wa_node_child(ps, "device");
    const wa_node *plat = wa_node_child(ps, "platform"), *biz = wa_node_child(ps, "biz");
    const char *id = wa_node_attr(iq, "id"), *jid = wa_node_attr(dev, "jid");
    const char *lid = wa_node_attr(dev, "lid");
    Wa__ADVSignedDeviceIdentityHMAC *outer = NULL;
    Wa__ADVSignedDeviceIdentity *acct = NULL;
    Wa__ADVDeviceIdentity *ident = NULL;
    wa_buf msg, full, bare;
    wa__pair_result r;
    uint8_t mac[32], devsig[64];
    const uint8_t *raw;
    size_t raw_len;
    wa_jid pj;
    wa_node *rep, *pds, *dnode;
    char kidx[16];
    int rc;

    memset(&r, 0, sizeof r);
    wa_buf_init(&msg, 2 * ADV_DETAILS_MAX);
    wa_buf_init(&full, WA_STORE_ADV_MAX);
    wa_buf_init(&bare, WA_STORE_ADV_MAX);
    if (!id || !jid || bytes_of(di, &raw, &raw_len) != 0 || wa_jid_parse(jid, &pj) != 0 ||
        !wa_jid_is_user(&pj) || pj.device == 0 || (lid && wa_jid_parse(lid, &pj) != 0) ||
        strlen(jid) >= sizeof r.jid || (lid && strlen(lid) >= sizeof r.lid)) {
        rc = WA_EPROTO;
        goto out;
    }
    rc = wa_proto_unpack(&wa__advsigned_device_identity_hmac__descriptor, raw, raw_len, &outer);
    if (rc)
        goto out;
    if (!outer->has_details || !outer->has_hmac || outer->hmac.len != 32) {
        rc = WA_EPROTO;
        goto out;
    }
    /* HMAC under the adv secret; a HOSTED account MACs 06 05 || details */
    if (outer->has_accounttype && outer->accounttype == WA__ADVENCRYPTION_TYPE__HOSTED)
        rc = cat(&msg, PREFIX_HOSTED_ACCOUNT, 2, outer->details.data, outer->details.len, NULL, 0,
                 NULL, 0);
    else
        rc = wa_buf_append(&msg, outer->details.data, outer->details.len);
    if (rc == 0)
        rc = wa_hmac_sha256(mac, c->adv_secret, 32, msg.data, msg.len);
    if (rc)
        goto out;
    if (!wa_ct_equal(mac, outer->hmac.data, 32)) {
        rc = WA_ECRYPTO;
        goto out;
    }
    rc = wa_proto_unpack(&wa__advsigned_device_identity__descriptor, outer->details.data,
                         outer->details.len, &acct);
    if (rc)
        goto out;
    if (!acct->has_details || !acct->has_accountsignaturekey ||
        acct->accountsignaturekey.len != 32 || !acct->has_accountsignature ||
        acct->accountsignature.len != 64 || acct->details.len > ADV_DETAILS_MAX) {
        rc = WA_EPROTO;
        goto out;
    }
    rc = wa_proto_unpack(&wa__advdevice_identity__descriptor, acct->details.data, acct->details.len,
                         &ident);
    if (rc)
        goto out;
    wa_buf_reset(&msg);
    rc = cat(&msg,
             ident->has_devicetype && ident->devicetype == WA__ADVENCRYPTION_TYPE__HOSTED
                 ? PREFIX_HOSTED_ACCOUNT
                 : PREFIX_ACCOUNT,
             2, acct->details.data, acct->details.len, c->identity_pub, 32, NULL, 0);
    if (rc)
        goto out;
    if (wa_xeddsa_verify(acct->accountsignaturekey.data, msg.data, msg.len,
                         acct->accountsignature.data) != 0) {
        rc = WA_ECRYPTO;
        goto out;
    }
    wa_buf_reset(&msg);
    rc = cat(&msg, PREFIX_DEVICE, 2, acct->details.data, acct->details.len, c->identity_pub, 32,
             acct->accountsignaturekey.data, 32);
    if (rc == 0)
        rc = wa_xeddsa_sign(devsig, c->identity_priv, msg.data, msg.len);
    if (rc)
        goto out;
    acct->has_devicesignature = 1;
    acct->devicesignature.data = devsig;
    acct->devicesignature.len = 64;
    rc = wa_proto_pack(acct, &full); /* kept: part 2 sends it with pkmsgs */
    if (rc)
        goto out;
    acct->has_accountsignaturekey = 0; /* the reply leaves the account key out */
    rc = wa_proto_pack(acct, &bare);
    acct->has_accountsignaturekey = 1;
    acct->devicesignature.data = NULL; /* not owned by the message */
    acct->has_devicesignature = 0;
    if (rc)
        goto out;

    snprintf(kidx, sizeof kidx, "%u", ident->has_keyindex ? (unsigned)ident->keyindex : 0u);
    {
        const char *kv_to = WA__SERVER_JID;
        rep = wa_node_new(a, "iq");
        if (!rep || wa_node_set_attr(a, rep, "to", kv_to) ||
            wa_node_set_attr(a, rep, "type", "result") || wa_node_set_attr(a, rep, "id", id)) {
            rc = WA_ENOMEM;
            goto out;
        }
    }
    pds = wa_node_new_child(a, rep, "pair-device-sign");
    dnode = pds ? wa_node_new_child(a, pds, "device-identity") : NULL;
    if (!dnode || wa_node_set_attr(a, dnode, "key-index", kidx) ||
        wa_node_set_bytes(a, dnode, bare.data, bare.len)) {
        rc = WA_ENOMEM;
        goto out;
    }

    snprintf(r.jid, sizeof r.jid, "%s", jid);
    snprintf(r.lid, sizeof r.lid, "%s", lid ? lid : "");
    snprintf(r.platform, sizeof r.platform, "%s",
             wa_node_attr(plat, "name") ? wa_node_attr(plat, "name") : "");
    snprintf(r.biz_name, sizeof r.biz_name, "%s",
             wa_node_attr(biz, "name") ? wa_node_attr(biz, "name") : "");
    r.key_index = ident->has_keyindex ? ident->keyindex : 0;
    /* commit to c only now: nothing changes on failure */
    snprintf(c->me_jid, sizeof c->me_jid, "%s", r.jid);
    snprintf(c->me_lid, sizeof c->me_lid, "%s", r.lid);
    snprintf(c->platform, sizeof c->platform, "%s", r.platform);
    memcpy(c->adv_identity, full.data, full.len);
    c->adv_identity_len = full.len;
    *reply = rep;
    if (res)
        *res = r;
    rc = 0;
out:
    wa_proto_free(outer);
    wa_proto_free(acct);
    wa_proto_free(ident);
    wa_buf_cleanup(&msg);
    wa_buf_cleanup(&full);
    wa_buf_cleanup(&bare);
    wa_wipe(mac, sizeof mac);
    return rc;
}

/* ---- phone-number code ---------------------------------------------------------------------- */

static const char CROCKFORD[] = "123456789ABCDEFGHJKLMNPQRSTVWXYZ";

void wa__link_code_from_bytes(const uint8_t b[5], char code[WA__PAIR_CODE_LEN + 1])
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 5; i++)
        v = (v << 8) | b[i];
    for (i = 0; i < WA__PAIR_CODE_LEN; i++)
        code[i] = CROCKFORD[(v >> (35 - 5 * i)) & 31];
    code[WA__PAIR_CODE_LEN] = '\0';
}

int wa__link_init(wa__link *l, const char *phone)
{
    uint8_t b[5];
    size_t i, n = phone ? strlen(phone) : 0;
    int rc;

    if (n < 5 || n > WA__PHONE_MAX || phone[0] == '0')
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (phone[i] < '0' || phone[i] > '9')
            return WA_EINVAL;
    memset(l, 0, sizeof *l);
    memcpy(l->phone, phone, n);
    rc = wa_random(b, sizeof b);
    if (rc == 0)
        rc = wa_x25519_keygen(l->eph_priv, l->eph_pub);
    if (rc)
        return rc;
    wa__link_code_from_bytes(b, l->code);
    wa_wipe(b, sizeof b);
    return 0;
}

int wa__link_wrap(const char *code, const uint8_t pub[32], uint8_t out[80])
{
    uint8_t key[32];
    int rc = wa_random(out, 48); /* salt 32 || iv 16 */

    if (rc == 0)
        rc = wa_pbkdf2_sha256(key, 32, code, strlen(code), out, 32, WA__PAIR_CODE_ITER);
    if (rc == 0)
        rc = wa_aes_ctr(out + 48, key, out + 32, pub, 32);
    wa_wipe(key, sizeof key);
    return rc;
}

int wa__link_unwrap(const char *code, const uint8_t in[80], uint8_t pub[32])
{
    uint8_t key[32];
    int rc = wa_pbkdf2_sha256(key, 32, code, strlen(code), in, 32, WA__PAIR_CODE_ITER);

    if (rc == 0)
        rc = wa_aes_ctr(pub, key, in + 32, in + 48, 32);
    wa_wipe(key, sizeof key);
    return rc;
}

static wa_node *md_iq(wa_arena *a, const char *id)
{
    wa_node *iq = wa_node_new(a, "iq");

    if (!iq || wa_node_set_attr(a, iq, "to", WA__SERVER_JID) ||
        wa_node_set_attr(a, iq, "type", "set") || wa_node_set_attr(a, iq, "id", id) ||
        wa_node_set_attr(a, iq, "xmlns", "md"))
        return NULL;
    return iq;
}

static wa_node *child_string(wa_arena *a, wa_node *parent, const char *tag, const char *s)
{
    wa_node *c = parent ? wa_node_new_child(a, parent, tag) : NULL;

    return c && wa_node_set_string(a, c, s) == 0 ? c : NULL;
}

wa_node *wa__link_hello(wa_arena *a, const char *id, const wa__link *l, const uint8_t noise_pub[32])
{
    wa_node *iq = md_iq(a, id), *reg;
    uint8_t wrapped[80];
    char jid[WA__PHONE_MAX + 32];

    snprintf(jid, sizeof jid, "%s@%s", l->phone, WA__SERVER);
    reg = iq ? wa_node_new_child(a, iq, "link_code_companion_reg") : NULL;
    if (!reg || wa_node_set_attr(a, reg, "jid", jid) ||
        wa_node_set_attr(a, reg, "stage", "companion_hello") ||
        wa_node_set_attr(a, reg, "should_show_push_notification", "true"))
        return NULL;
    if (wa__link_wrap(l->code, l->eph_pub, wrapped) != 0)
        return NULL;
    if (!wa__child_bytes(a, reg, "link_code_pairing_wrapped_companion_ephemeral_pub", wrapped,
                         sizeof wrapped) ||
        !wa__child_bytes(a, reg, "companion_server_auth_key_pub", noise_pub, 32) ||
        !child_string(a, reg, "companion_platform_id", WA__PLATFORM_ID) ||
        !child_string(a, reg, "companion_platform_display", WA__PLATFORM_DISPLAY) ||
        !child_string(a, reg, "link_code_pairing_nonce", "0"))
        return NULL;
    return iq;
}

int wa__link_finish(const wa_node *notification, const wa__link *l, wa_store_creds *c, wa_arena *a,
                    const char *id, wa_node **iq_out)
{
    static const char bundle_info[] = "link_code_pairing_key_bundle_encryption_key";
    static const char adv_info[] = "adv_secret";
    const wa_node *reg = wa_node_child(notification, "link_code_companion_reg");
    const uint8_t *ref, *prim_ident, *wrapped;
    size_t ref_len, ident_len, wrapped_len;
    uint8_t prim_eph[32], shared[32], ident_shared[32], rnd[32], key[32], adv[32];
    uint8_t plain[96], bundle[32 + 12 + 96 + 16], ikm[96];
    wa_node *iq, *r;
    char jid[WA__PHONE_MAX + 32];
    int rc;

    if (bytes_of(wa_node_child(reg, "link_code_pairing_ref"), &ref, &ref_len) ||
        bytes_of(wa_node_child(reg, "primary_identity_pub"), &prim_ident, &ident_len) ||
        bytes_of(wa_node_child(reg, "link_code_pairing_wrapped_primary_ephemeral_pub"), &wrapped,
                 &wrapped_len) ||
        ident_len != 32 || wrapped_len != 80 || ref_len == 0 || ref_len > WA__REF_MAX)
        return WA_EPROTO;
    rc = wa__link_unwrap(l->code, wrapped, prim_eph);
    if (rc == 0)
        rc = wa_x25519(shared, l->eph_priv, prim_eph);
    if (rc == 0)
        rc = wa_random(rnd, sizeof rnd);
    if (rc == 0)
        rc = wa_random(bundle, 32 + 12); /* salt || iv */
    if (rc == 0)
        rc = wa_hkdf_sha256(key, 32, bundle, 32, shared, 32, (const uint8_t *)bundle_info,
                            sizeof bundle_info - 1);
    if (rc)
        goto out;
    memcpy(plain, c->identity_pub, 32);
    memcpy(plain + 32, prim_ident, 32);
    memcpy(plain + 64, rnd, 32);
    rc = wa_aes_gcm_encrypt(bundle + 44, key, bundle + 32, NULL, 0, plain, sizeof plain);
    if (rc == 0)
        rc = wa_x25519(ident_shared, c->identity_priv, prim_ident);
    if (rc)
        goto out;
    memcpy(ikm, shared, 32);
    memcpy(ikm + 32, ident_shared, 32);
    memcpy(ikm + 64, rnd, 32);
    rc = wa_hkdf_sha256(adv, 32, NULL, 0, ikm, sizeof ikm, (const uint8_t *)adv_info,
                        sizeof adv_info - 1);
    if (rc)
        goto out;
    snprintf(jid, sizeof jid, "%s@%s", l->phone, WA__SERVER);
    iq = md_iq(a, id);
    r = iq ? wa_node_new_child(a, iq, "link_code_companion_reg") : NULL;
    if (!r || wa_node_set_attr(a, r, "jid", jid) ||
        wa_node_set_attr(a, r, "stage", "companion_finish") ||
        !wa__child_bytes(a, r, "link_code_pairing_wrapped_key_bundle", bundle, sizeof bundle) ||
        !wa__child_bytes(a, r, "companion_identity_public", c->identity_pub, 32) ||
        !wa__child_bytes(a, r, "link_code_pairing_ref", ref, ref_len)) {
        rc = WA_ENOMEM;
        goto out;
    }
    memcpy(c->adv_secret, adv, 32);
    *iq_out = iq;
out:
    wa_wipe(prim_eph, sizeof prim_eph);
    wa_wipe(shared, sizeof shared);
    wa_wipe(ident_shared, sizeof ident_shared);
    wa_wipe(rnd, sizeof rnd);
    wa_wipe(key, sizeof key);
    wa_wipe(adv, sizeof adv);
    wa_wipe(plain, sizeof plain);
    wa_wipe(ikm, sizeof ikm);
    return rc;
}
