/*
 * cert.c - create and verify WhatsApp Noise certificate chains (see cert.h). The verification
 * mirrors whatsmeow handshake.go verifyServerCert: same checks, same order, one reason string
 * per check.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "noise/cert.h"

#include <string.h>

#include "core/util.h"
#include "crypto/curve25519.h"
#include "proto/handshake.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define CERT_DETAILS_MAX 256 /* a Details message is ~60 bytes */
#define CERT_CHAIN_MAX   1024

const uint8_t WA_NOISE_WA_ROOT_PUB[WA_NOISE_CERT_KEY_LEN] = {
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b};

static int pack_details(wa_buf *out, uint32_t serial, uint32_t issuer, const uint8_t *key,
                        uint64_t not_before, uint64_t not_after)
{
    Wa__CertChain__NoiseCertificate__Details d = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;

    d.has_serial = 1;
    d.serial = serial;
    d.has_issuerserial = 1;
    d.issuerserial = issuer;
    d.has_key = 1;
    d.key.data = (uint8_t *)key;
    d.key.len = WA_NOISE_CERT_KEY_LEN;
    d.has_notbefore = 1;
    d.notbefore = not_before;
    d.has_notafter = 1;
    d.notafter = not_after;
    return wa_proto_pack(&d, out);
}

int wa_noise_cert_create(const wa_noise_cert_params *p, wa_buf *out)
{
    Wa__CertChain chain = WA__CERT_CHAIN__INIT;
    Wa__CertChain__NoiseCertificate leaf = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    Wa__CertChain__NoiseCertificate inter = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    uint8_t inter_pub[WA_NOISE_CERT_KEY_LEN];
    uint8_t inter_sig[WA_NOISE_CERT_SIG_LEN], leaf_sig[WA_NOISE_CERT_SIG_LEN];
    wa_buf inter_details, leaf_details;
    int rc;

    if (!p || !p->root_priv || !p->intermediate_priv || !p->leaf_key || !out)
        return WA_EINVAL;
    wa_buf_init(&inter_details, CERT_DETAILS_MAX);
    wa_buf_init(&leaf_details, CERT_DETAILS_MAX);
    rc = wa_x25519_public(inter_pub, p->intermediate_priv);
    if (rc)
        goto out;
    rc = pack_details(&inter_details, p->intermediate_serial, WA_NOISE_CERT_ISSUER_SERIAL,
                      inter_pub, p->not_before, p->not_after);
    if (rc)
        goto out;
    rc = pack_details(&leaf_details, p->leaf_serial, p->intermediate_serial, p->leaf_key,
                      p->not_before, p->not_after);
    if (rc)
        goto out;
    rc = wa_xeddsa_sign(inter_sig, p->root_priv, inter_details.data, inter_details.len);
    if (rc)
        goto out;
    rc = wa_xeddsa_sign(leaf_sig, p->intermediate_priv, leaf_details.data, leaf_details.len);
    if (rc)
        goto out;
    inter.has_details = 1;
    inter.details.data = inter_details.data;
    inter.details.len = inter_details.len;
    inter.has_signature = 1;
    inter.signature.data = inter_sig;
    inter.signature.len = sizeof inter_sig;
    leaf.has_details = 1;
    leaf.details.data = leaf_details.data;
    leaf.details.len = leaf_details.len;
    leaf.has_signature = 1;
    leaf.signature.data = leaf_sig;
    leaf.signature.len = sizeof leaf_sig;
    chain.leaf = &leaf;
    chain.intermediate = &inter;
    rc = wa_proto_pack(&chain, out);
out:
    wa_buf_cleanup(&inter_details);
    wa_buf_cleanup(&leaf_details);
    return rc;
}

/* whatsmeow checkCertValidity: time.Unix(int64(notBefore)) etc. */
static const char *check_validity(const Wa__CertChain__NoiseCertificate__Details *d, uint64_t now,
                                  const char *not_yet, const char *expired)
{
    int64_t t = (int64_t)now;
    int64_t nb = (int64_t)(d->has_notbefore ? d->notbefore : 0);
    int64_t na = (int64_t)(d->has_notafter ? d->notafter : 0);

    if (t < nb)
        return not_yet;
    if (t > na)
        return expired;
    return NULL;
}

int wa_noise_cert_verify(const uint8_t *chain, size_t len,
                         const uint8_t root_pub[WA_NOISE_CERT_KEY_LEN],
                         const uint8_t server_static[WA_NOISE_CERT_KEY_LEN], uint64_t now,
                         const char **reason)
{
    Wa__CertChain *cc = NULL;
    Wa__CertChain__NoiseCertificate__Details *inter = NULL, *leaf = NULL;
    const Wa__CertChain__NoiseCertificate *ic, *lc;
    const char *why = NULL;

    if (!chain && len)
        len = 0;
    if (len > CERT_CHAIN_MAX) {
        why = "certificate chain too large";
        goto out;
    }
    if (wa_proto_unpack(&wa__cert_chain__descriptor, chain, len, &cc) != 0) {
        why = "malformed certificate chain";
        goto out;
    }
    ic = cc->intermediate;
    lc = cc->leaf;
    if (!ic || !lc || !ic->has_details || !ic->has_signature || !lc->has_details ||
        !lc->has_signature) {
        why = "missing parts of the certificate chain";
        goto out;
    }
    if (ic->signature.len != WA_NOISE_CERT_SIG_LEN) {
        why = "unexpected length of the intermediate certificate signature";
        goto out;
    }
    if (lc->signature.len != WA_NOISE_CERT_SIG_LEN) {
        why = "unexpected length of the leaf certificate signature";
        goto out;
    }
    if (wa_xeddsa_verify(root_pub, ic->details.data, ic->details.len, ic->signature.data) != 0) {
        why = "intermediate certificate not signed by the trusted root key";
        goto out;
    }
    if (wa_proto_unpack(&wa__cert_chain__noise_certificate__details__descriptor, ic->details.data,
                        ic->details.len, &inter) != 0) {
        why = "malformed intermediate certificate details";
        goto out;
    }
    if ((inter->has_issuerserial ? inter->issuerserial : 0) != WA_NOISE_CERT_ISSUER_SERIAL) {
        why = "intermediate certificate issuer serial is not 0";
        goto out;
    }
    if (!inter->has_key || inter->key.len != WA_NOISE_CERT_KEY_LEN) {
        why = "unexpected length of the intermediate certificate key";
        goto out;
    }
    if (wa_xeddsa_verify(inter->key.data, lc->details.data, lc->details.len, lc->signature.data) !=
        0) {
        why = "leaf certificate not signed by the intermediate key";
        goto out;
    }
    why = check_validity(inter, now, "intermediate certificate not valid yet",
                         "intermediate certificate expired");
    if (why)
        goto out;
    if (wa_proto_unpack(&wa__cert_chain__noise_certificate__details__descriptor, lc->details.data,
                        lc->details.len, &leaf) != 0) {
        why = "malformed leaf certificate details";
        goto out;
    }
    if ((leaf->has_issuerserial ? leaf->issuerserial : 0) !=
        (inter->has_serial ? inter->serial : 0)) {
        why = "leaf certificate issuer serial does not match the intermediate serial";
        goto out;
    }
    if (!leaf->has_key || leaf->key.len != WA_NOISE_CERT_KEY_LEN ||
        !wa_ct_equal(leaf->key.data, server_static, WA_NOISE_CERT_KEY_LEN)) {
        why = "leaf certificate key does not match the server static key";
        goto out;
    }
    why = check_validity(leaf, now, "leaf certificate not valid yet", "leaf certificate expired");
out:
    wa_proto_free(leaf);
    wa_proto_free(inter);
    wa_proto_free(cc);
    if (why) {
        if (reason)
            *reason = why;
        return WA_ECERT;
    }
    return 0;
}
