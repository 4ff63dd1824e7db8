/*
 * handshake.c - WhatsApp's Noise_XX_25519_AESGCM_SHA256 handshake state machine, both roles
 * (PROTOCOL.md section 2; checked byte for byte against Baileys 6.17's noise-handler.js by the
 * known-answer test built from tests/vectors/noise_xx.txt).
 *
 * Pattern XX:  -> e   <- e, ee, s, es   -> s, se
 * WhatsApp specifics: the 32-byte protocol name is used raw as h and ck; the prologue is the
 * 4-byte WA intro; the serverHello payload is the CertChain, the clientFinish payload the
 * ClientPayload; one nonce counter serves both directions during the handshake.
 *
 * Writes compute the exact protobuf size and reserve room in the caller's buffer BEFORE the
 * transcript changes, so a full output buffer is a retryable error, not a broken handshake.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "noise/noise.h"

#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "crypto/curve25519.h"
#include "noise/cert.h"
#include "proto/handshake.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

/* 28 characters, zero-padded to 32: "Noise_XX_25519_AESGCM_SHA256\0\0\0\0" */
static const uint8_t noise_name[WA_NOISE_HASH_LEN] = "Noise_XX_25519_AESGCM_SHA256";

#define STATIC_CT_LEN (WA_NOISE_KEY_LEN + WA_NOISE_TAG_LEN)

/* internal steps */
enum {
    STEP_0 = 0, /* initiator: write hello;  responder: read hello */
    STEP_1,     /* initiator: read server hello; responder: write server hello */
    STEP_2,     /* initiator: write finish; responder: read finish */
    STEP_DONE,
    STEP_SPLIT,
};

/* ---- symmetric state ---- */

static void make_iv(uint8_t iv[WA_AES_GCM_IV_LEN], uint32_t n)
{
    memset(iv, 0, WA_AES_GCM_IV_LEN - 4);
    wa_store_be32(iv + WA_AES_GCM_IV_LEN - 4, n);
}

static int mix_hash(wa_noise_sym *s, const uint8_t *data, size_t len)
{
    return wa_sha256_2(s->h, s->h, sizeof s->h, data, len);
}

static int mix_key(wa_noise_sym *s, const uint8_t dh[WA_X25519_KEY_LEN])
{
    uint8_t out[2 * WA_NOISE_KEY_LEN];
    int rc;

    rc = wa_hkdf_sha256(out, sizeof out, s->ck, sizeof s->ck, dh, WA_X25519_KEY_LEN, NULL, 0);
    if (!rc) {
        memcpy(s->ck, out, WA_NOISE_KEY_LEN);
        memcpy(s->k, out + WA_NOISE_KEY_LEN, WA_NOISE_KEY_LEN);
        s->n = 0;
        s->has_k = 1;
    }
    wa_wipe(out, sizeof out);
    return rc;
}

/* MixKey(DH(priv, pub)) */
static int mix_dh(wa_noise_sym *s, const uint8_t *priv, const uint8_t *pub)
{
    uint8_t dh[WA_X25519_KEY_LEN];
    int rc;

    rc = wa_x25519(dh, priv, pub);
    if (!rc)
        rc = mix_key(s, dh);
    wa_wipe(dh, sizeof dh);
    return rc;
}

/* ct (len + 16 bytes) = AES-GCM(k, n, aad = h, pt); n++; MixHash(ct) */
static int encrypt_and_hash(wa_noise_sym *s, const uint8_t *pt, size_t len, uint8_t *ct)
{
    uint8_t iv[WA_AES_GCM_IV_LEN];
    int rc;

    if (!s->has_k)
        return WA_ESTATE;
    make_iv(iv, s->n);
    rc = wa_aes_gcm_encrypt(ct, s->k, iv, s->h, sizeof s->h, pt, len);
    if (rc)
        return rc;
    s->n++;
    return mix_hash(s, ct, len + WA_NOISE_TAG_LEN);
}

/* pt (len - 16 bytes) = AES-GCM-open(k, n, aad = h, ct); n++; MixHash(ct) */
static int decrypt_and_hash(wa_noise_sym *s, const uint8_t *ct, size_t len, uint8_t *pt)
{
    uint8_t iv[WA_AES_GCM_IV_LEN];
    int rc;

    if (!s->has_k)
        return WA_ESTATE;
    make_iv(iv, s->n);
    rc = wa_aes_gcm_decrypt(pt, s->k, iv, s->h, sizeof s->h, ct, len);
    if (rc)
        return rc;
    s->n++;
    return mix_hash(s, ct, len);
}

/* ---- helpers ---- */

static void wipe_secrets(wa_noise_hs *hs)
{
    wa_wipe(&hs->sym, sizeof hs->sym);
    wa_wipe(hs->s_priv, sizeof hs->s_priv);
    wa_wipe(hs->e_priv, sizeof hs->e_priv);
}

/* Record a sticky failure; returns err. */
static int fail(wa_noise_hs *hs, int err, const char *reason)
{
    hs->err = err;
    hs->reason = reason;
    wipe_secrets(hs);
    wa_buf_wipe_cleanup(&hs->payload);
    return err;
}

static int ensure_ephemeral(wa_noise_hs *hs)
{
    int rc;

    if (hs->has_e)
        return 0;
    rc = wa_x25519_keygen(hs->e_priv, hs->e_pub);
    if (!rc)
        hs->has_e = 1;
    return rc;
}

/* Reserve room for msg in out, then pack it there (cannot fail afterwards). */
static int reserve_for(const ProtobufCMessage *msg, wa_buf *out, size_t *size)
{
    *size = protobuf_c_message_get_packed_size(msg);
    return wa_buf_reserve(out, *size);
}

static void pack_into(const ProtobufCMessage *msg, wa_buf *out, size_t size)
{
    size_t n = protobuf_c_message_pack(msg, out->data + out->len);

    /* sizes are computed from the same message: n == size */
    out->len += n < size ? n : size;
}

/* ---- public API ---- */

int wa_noise_hs_init(wa_noise_hs *hs, const wa_noise_config *cfg)
{
    int rc;

    memset(hs, 0, sizeof *hs);
    wa_buf_init(&hs->payload, WA_NOISE_HS_MAX_PAYLOAD);
    hs->reason = "";
    if (!cfg || (cfg->role != WA_NOISE_INITIATOR && cfg->role != WA_NOISE_RESPONDER) ||
        !cfg->static_priv)
        return WA_EINVAL;
    hs->role = cfg->role;
    memcpy(hs->s_priv, cfg->static_priv, sizeof hs->s_priv);
    wa_x25519_clamp(hs->s_priv);
    rc = wa_x25519_public(hs->s_pub, hs->s_priv);
    if (rc)
        goto out;
    memcpy(hs->root_pub, cfg->root_pub ? cfg->root_pub : WA_NOISE_WA_ROOT_PUB, sizeof hs->root_pub);
    hs->now = cfg->now;
    /* h = ck = protocol name (exactly 32 bytes, so not hashed); MixHash(prologue) */
    memcpy(hs->sym.h, noise_name, sizeof noise_name);
    memcpy(hs->sym.ck, noise_name, sizeof noise_name);
    rc = mix_hash(&hs->sym, cfg->prologue, WA_NOISE_PROLOGUE_LEN);
out:
    if (rc)
        wipe_secrets(hs);
    return rc;
}

void wa_noise_hs_cleanup(wa_noise_hs *hs)
{
    wipe_secrets(hs);
    wa_wipe(hs->rs, sizeof hs->rs);
    wa_wipe(hs->re, sizeof hs->re);
    wa_buf_wipe_cleanup(&hs->payload);
}

int wa_noise_hs_state(const wa_noise_hs *hs)
{
    if (hs->err)
        return WA_NOISE_HS_FAILED;
    if (hs->step >= STEP_DONE)
        return WA_NOISE_HS_DONE;
    if (hs->role == WA_NOISE_INITIATOR)
        return hs->step == STEP_1 ? WA_NOISE_HS_READ : WA_NOISE_HS_WRITE;
    return hs->step == STEP_1 ? WA_NOISE_HS_WRITE : WA_NOISE_HS_READ;
}

const char *wa_noise_hs_reason(const wa_noise_hs *hs)
{
    return hs->reason ? hs->reason : "";
}

const uint8_t *wa_noise_hs_remote_static(const wa_noise_hs *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

wa_slice wa_noise_hs_remote_payload(const wa_noise_hs *hs)
{
    return wa_slice_make(hs->payload.data, hs->payload.len);
}

const uint8_t *wa_noise_hs_hash(const wa_noise_hs *hs)
{
    return hs->sym.h;
}

int wa__noise_hs_set_ephemeral(wa_noise_hs *hs, const uint8_t priv[WA_NOISE_KEY_LEN])
{
    int rc;

    if (hs->err || hs->has_e || hs->step > STEP_1)
        return WA_ESTATE;
    memcpy(hs->e_priv, priv, sizeof hs->e_priv);
    wa_x25519_clamp(hs->e_priv);
    rc = wa_x25519_public(hs->e_pub, hs->e_priv);
    if (rc) {
        wa_wipe(hs->e_priv, sizeof hs->e_priv);
        return rc;
    }
    hs->has_e = 1;
    return 0;
}

/* initiator, STEP_0: -> e */
static int write_client_hello(wa_noise_hs *hs, wa_buf *out)
{
    Wa__HandshakeMessage msg = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ClientHello hello = WA__HANDSHAKE_MESSAGE__CLIENT_HELLO__INIT;
    size_t size;
    int rc;

    rc = ensure_ephemeral(hs);
    if (rc)
        return fail(hs, rc, "cannot generate the ephemeral key");
    hello.has_ephemeral = 1;
    hello.ephemeral.data = hs->e_pub;
    hello.ephemeral.len = WA_NOISE_KEY_LEN;
    msg.clienthello = &hello;
    rc = reserve_for(&msg.base, out, &size);
    if (rc)
        return rc;
    rc = mix_hash(&hs->sym, hs->e_pub, WA_NOISE_KEY_LEN);
    if (rc)
        return fail(hs, rc, "hash failure");
    pack_into(&msg.base, out, size);
    hs->step = STEP_1;
    return 0;
}

/* responder, STEP_1: <- e, ee, s, es, payload = CertChain */
static int write_server_hello(wa_noise_hs *hs, const uint8_t *payload, size_t len, wa_buf *out)
{
    Wa__HandshakeMessage msg = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ServerHello hello = WA__HANDSHAKE_MESSAGE__SERVER_HELLO__INIT;
    uint8_t static_ct[STATIC_CT_LEN];
    uint8_t *payload_ct;
    size_t size;
    int rc;

    payload_ct = wa_malloc(len + WA_NOISE_TAG_LEN);
    if (!payload_ct)
        return WA_ENOMEM;
    rc = ensure_ephemeral(hs);
    if (rc) {
        rc = fail(hs, rc, "cannot generate the ephemeral key");
        goto out;
    }
    hello.has_ephemeral = 1;
    hello.ephemeral.data = hs->e_pub;
    hello.ephemeral.len = WA_NOISE_KEY_LEN;
    hello.has_static_ = 1;
    hello.static_.data = static_ct;
    hello.static_.len = sizeof static_ct;
    hello.has_payload = 1;
    hello.payload.data = payload_ct;
    hello.payload.len = len + WA_NOISE_TAG_LEN;
    msg.serverhello = &hello;
    rc = reserve_for(&msg.base, out, &size);
    if (rc)
        goto out;
    if ((rc = mix_hash(&hs->sym, hs->e_pub, WA_NOISE_KEY_LEN)) != 0 ||
        (rc = mix_dh(&hs->sym, hs->e_priv, hs->re)) != 0 ||
        (rc = encrypt_and_hash(&hs->sym, hs->s_pub, WA_NOISE_KEY_LEN, static_ct)) != 0 ||
        (rc = mix_dh(&hs->sym, hs->s_priv, hs->re)) != 0 ||
        (rc = encrypt_and_hash(&hs->sym, payload, len, payload_ct)) != 0) {
        rc = fail(hs, rc, "server hello key agreement or encryption failed");
        goto out;
    }
    pack_into(&msg.base, out, size);
    hs->step = STEP_2;
out:
    wa_free(payload_ct);
    return rc;
}

/* initiator, STEP_2: -> s, se, payload = ClientPayload */
static int write_client_finish(wa_noise_hs *hs, const uint8_t *payload, size_t len, wa_buf *out)
{
    Wa__HandshakeMessage msg = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ClientFinish fin = WA__HANDSHAKE_MESSAGE__CLIENT_FINISH__INIT;
    uint8_t static_ct[STATIC_CT_LEN];
    uint8_t *payload_ct;
    size_t size;
    int rc;

    payload_ct = wa_malloc(len + WA_NOISE_TAG_LEN);
    if (!payload_ct)
        return WA_ENOMEM;
    fin.has_static_ = 1;
    fin.static_.data = static_ct;
    fin.static_.len = sizeof static_ct;
    fin.has_payload = 1;
    fin.payload.data = payload_ct;
    fin.payload.len = len + WA_NOISE_TAG_LEN;
    msg.clientfinish = &fin;
    rc = reserve_for(&msg.base, out, &size);
    if (rc)
        goto out;
    if ((rc = encrypt_and_hash(&hs->sym, hs->s_pub, WA_NOISE_KEY_LEN, static_ct)) != 0 ||
        (rc = mix_dh(&hs->sym, hs->s_priv, hs->re)) != 0 ||
        (rc = encrypt_and_hash(&hs->sym, payload, len, payload_ct)) != 0) {
        rc = fail(hs, rc, "client finish key agreement or encryption failed");
        goto out;
    }
    pack_into(&msg.base, out, size);
    hs->step = STEP_DONE;
out:
    wa_free(payload_ct);
    return rc;
}

int wa_noise_hs_write(wa_noise_hs *hs, const uint8_t *payload, size_t len, wa_buf *out)
{
    if (hs->err)
        return hs->err;
    if (wa_noise_hs_state(hs) != WA_NOISE_HS_WRITE)
        return WA_ESTATE;
    if (!out || (len && !payload))
        return WA_EINVAL;
    if (len > WA_NOISE_HS_MAX_PAYLOAD)
        return WA_ELIMIT;
    if (hs->role == WA_NOISE_INITIATOR) {
        if (hs->step == STEP_0)
            return len ? WA_EINVAL : write_client_hello(hs, out);
        return write_client_finish(hs, payload, len, out);
    }
    return write_server_hello(hs, payload, len, out);
}

/* Decrypt a handshake payload into hs->payload. */
static int read_payload(wa_noise_hs *hs, const ProtobufCBinaryData *ct)
{
    int rc;

    if (ct->len < WA_NOISE_TAG_LEN)
        return WA_EPROTO;
    wa_buf_wipe_cleanup(&hs->payload);
    rc = wa_buf_reserve(&hs->payload, ct->len - WA_NOISE_TAG_LEN);
    if (rc)
        return rc;
    rc = decrypt_and_hash(&hs->sym, ct->data, ct->len, hs->payload.data);
    if (rc)
        return rc;
    hs->payload.len = ct->len - WA_NOISE_TAG_LEN;
    return 0;
}

/* responder, STEP_0: -> e */
static int read_client_hello(wa_noise_hs *hs, const Wa__HandshakeMessage *m)
{
    const Wa__HandshakeMessage__ClientHello *h = m->clienthello;
    int rc;

    if (!h)
        return fail(hs, WA_EPROTO, "expected a client hello");
    if (!h->has_ephemeral || h->ephemeral.len != WA_NOISE_KEY_LEN)
        return fail(hs, WA_EPROTO, "client hello without a 32-byte ephemeral key");
    memcpy(hs->re, h->ephemeral.data, WA_NOISE_KEY_LEN);
    rc = mix_hash(&hs->sym, hs->re, WA_NOISE_KEY_LEN);
    if (rc)
        return fail(hs, rc, "hash failure");
    hs->step = STEP_1;
    return 0;
}

/* initiator, STEP_1: <- e, ee, s, es, payload = CertChain (verified) */
static int read_server_hello(wa_noise_hs *hs, const Wa__HandshakeMessage *m)
{
    const Wa__HandshakeMessage__ServerHello *h = m->serverhello;
    const char *why = NULL;
    uint64_t now;
    int rc;

    if (!h)
        return fail(hs, WA_EPROTO, "expected a server hello");
    /* whatsmeow: len(ephemeral) == 32, static and payload present; decrypted static 32 bytes */
    if (!h->has_ephemeral || h->ephemeral.len != WA_NOISE_KEY_LEN || !h->has_static_ ||
        !h->has_payload)
        return fail(hs, WA_EPROTO, "missing parts of the server hello");
    if (h->static_.len != STATIC_CT_LEN)
        return fail(hs, WA_EPROTO, "unexpected length of the server static key");
    if (h->payload.len < WA_NOISE_TAG_LEN)
        return fail(hs, WA_EPROTO, "server hello payload too short");
    memcpy(hs->re, h->ephemeral.data, WA_NOISE_KEY_LEN);
    if ((rc = mix_hash(&hs->sym, hs->re, WA_NOISE_KEY_LEN)) != 0 ||
        (rc = mix_dh(&hs->sym, hs->e_priv, hs->re)) != 0)
        return fail(hs, rc, "cannot mix in the server ephemeral key");
    rc = decrypt_and_hash(&hs->sym, h->static_.data, h->static_.len, hs->rs);
    if (rc)
        return fail(hs, rc, "cannot decrypt the server static key");
    hs->has_rs = 1;
    rc = mix_dh(&hs->sym, hs->e_priv, hs->rs);
    if (rc)
        return fail(hs, rc, "cannot mix in the server static key");
    rc = read_payload(hs, &h->payload);
    if (rc)
        return fail(hs, rc, "cannot decrypt the certificate chain");
    now = hs->now ? hs->now : (uint64_t)time(NULL);
    rc = wa_noise_cert_verify(hs->payload.data, hs->payload.len, hs->root_pub, hs->rs, now, &why);
    if (rc)
        return fail(hs, rc, why);
    hs->step = STEP_2;
    return 0;
}

/* responder, STEP_2: -> s, se, payload = ClientPayload */
static int read_client_finish(wa_noise_hs *hs, const Wa__HandshakeMessage *m)
{
    const Wa__HandshakeMessage__ClientFinish *f = m->clientfinish;
    int rc;

    if (!f)
        return fail(hs, WA_EPROTO, "expected a client finish");
    if (!f->has_static_ || f->static_.len != STATIC_CT_LEN)
        return fail(hs, WA_EPROTO, "client finish without a 48-byte encrypted static key");
    if (!f->has_payload || f->payload.len < WA_NOISE_TAG_LEN)
        return fail(hs, WA_EPROTO, "client finish without a payload");
    rc = decrypt_and_hash(&hs->sym, f->static_.data, f->static_.len, hs->rs);
    if (rc)
        return fail(hs, rc, "cannot decrypt the client static key");
    hs->has_rs = 1;
    rc = mix_dh(&hs->sym, hs->e_priv, hs->rs);
    if (rc)
        return fail(hs, rc, "cannot mix in the client static key");
    rc = read_payload(hs, &f->payload);
    if (rc)
        return fail(hs, rc, "cannot decrypt the client payload");
    hs->step = STEP_DONE;
    return 0;
}

int wa_noise_hs_read(wa_noise_hs *hs, const uint8_t *msg, size_t len)
{
    Wa__HandshakeMessage *m = NULL;
    int rc;

    if (hs->err)
        return hs->err;
    if (wa_noise_hs_state(hs) != WA_NOISE_HS_READ)
        return WA_ESTATE;
    if (len > WA_NOISE_HS_MAX_MSG)
        return fail(hs, WA_ELIMIT, "handshake message too large");
    if (!msg && len)
        return WA_EINVAL;
    rc = wa_proto_unpack(&wa__handshake_message__descriptor, msg ? msg : noise_name, len, &m);
    if (rc)
        return fail(hs, WA_EPROTOBUF, "malformed handshake message");
    if (hs->role == WA_NOISE_RESPONDER)
        rc = hs->step == STEP_0 ? read_client_hello(hs, m) : read_client_finish(hs, m);
    else
        rc = read_server_hello(hs, m);
    wa_proto_free(m);
    return rc;
}

int wa_noise_hs_split(wa_noise_hs *hs, wa_noise_transport *t)
{
    uint8_t out[2 * WA_NOISE_KEY_LEN];
    int rc;

    if (hs->err || hs->step != STEP_DONE)
        return WA_ESTATE;
    rc = wa_hkdf_sha256(out, sizeof out, hs->sym.ck, sizeof hs->sym.ck, NULL, 0, NULL, 0);
    if (rc)
        return fail(hs, rc, "split failed");
    memset(t, 0, sizeof *t);
    /* initiator writes with [0:32] and reads with [32:64]; the responder the other way round */
    if (hs->role == WA_NOISE_INITIATOR) {
        memcpy(t->wkey, out, WA_NOISE_KEY_LEN);
        memcpy(t->rkey, out + WA_NOISE_KEY_LEN, WA_NOISE_KEY_LEN);
    } else {
        memcpy(t->rkey, out, WA_NOISE_KEY_LEN);
        memcpy(t->wkey, out + WA_NOISE_KEY_LEN, WA_NOISE_KEY_LEN);
    }
    wa_wipe(out, sizeof out);
    /* keep h for wa_noise_hs_hash; everything secret goes */
    wa_wipe(hs->sym.ck, sizeof hs->sym.ck);
    wa_wipe(hs->sym.k, sizeof hs->sym.k);
    wa_wipe(hs->s_priv, sizeof hs->s_priv);
    wa_wipe(hs->e_priv, sizeof hs->e_priv);
    hs->step = STEP_SPLIT;
    return 0;
}
