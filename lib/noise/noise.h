/*
 * noise.h - WhatsApp's Noise_XX_25519_AESGCM_SHA256 handshake and transport cipher, sans-I/O,
 * both roles (PROTOCOL.md section 2; Baileys lib/Utils/noise-handler.js, whatsmeow
 * handshake.go and socket/noisehandshake.go).
 *
 * Handshake (messages are protobuf HandshakeMessage bytes, each one WA frame payload):
 *     initiator (client)                         responder (server)
 *     wa_noise_hs_write(NULL)   -> clientHello{ephemeral}  -> wa_noise_hs_read
 *     wa_noise_hs_read          <- serverHello{ephemeral, static*, payload*} <-
 * wa_noise_hs_write(cert chain) (verifies the CertChain) wa_noise_hs_write(ClientPayload) ->
 * clientFinish{static*, payload*} -> wa_noise_hs_read wa_noise_hs_split wa_noise_hs_split
 * (* = AES-256-GCM under the handshake key, AAD = h.) wa_noise_hs_state() says what comes next.
 * The responder then has the client's static key and ClientPayload bytes
 * (wa_noise_hs_remote_static / wa_noise_hs_remote_payload).
 *
 * Symmetric state: h = ck = "Noise_XX_25519_AESGCM_SHA256\0\0\0\0" (32 bytes, used raw);
 * MixHash(prologue = the 4-byte WA intro); MixKey(dh): HKDF(salt=ck, ikm=dh, info="", 64) ->
 * ck = [0:32], k = [32:64], n = 0; IV = 8 zero bytes || n as big-endian uint32, one counter for
 * both directions; Split: HKDF(salt=ck, ikm="", 64) -> initiator write [0:32], read [32:64].
 *
 * Transport: AES-256-GCM, IV = 8 zero bytes || counter BE32, separate read/write counters from
 * 0, AAD empty. Plaintext = 1 flag byte + binary node; flag bit 0x02 = zlib-deflated node (the
 * inflation belongs to the node codec: wa_noise_open_node exposes the flag and the bytes).
 *
 * Errors are sticky: after a failure the handshake (or the transport's read side) refuses all
 * further input with the same code. Secrets are wiped on cleanup and on every failure path.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_NOISE_NOISE_H
#define WA_NOISE_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WA_NOISE_KEY_LEN      32
#define WA_NOISE_HASH_LEN     32
#define WA_NOISE_TAG_LEN      16
#define WA_NOISE_PROLOGUE_LEN 4 /* the WA intro 57 41 06 <dict> */
/* Largest handshake message accepted (a ClientPayload or certificate chain is a few hundred
 * bytes). */
#define WA_NOISE_HS_MAX_MSG (64 * 1024)
/* Largest payload carried by a handshake message (ClientPayload / CertChain). */
#define WA_NOISE_HS_MAX_PAYLOAD (WA_NOISE_HS_MAX_MSG - 256)
/* Transport plaintext flag bits */
#define WA_NOISE_FLAG_COMPRESSED 0x02

enum wa_noise_role {
    WA_NOISE_INITIATOR = 1, /* client */
    WA_NOISE_RESPONDER = 2, /* server */
};

/* What the handshake expects next. */
enum wa_noise_hs_state {
    WA_NOISE_HS_WRITE = 1,  /* call wa_noise_hs_write */
    WA_NOISE_HS_READ = 2,   /* call wa_noise_hs_read with the peer's next message */
    WA_NOISE_HS_DONE = 3,   /* call wa_noise_hs_split */
    WA_NOISE_HS_FAILED = 4, /* sticky error; see wa_noise_hs_reason */
};

typedef struct wa_noise_config {
    int role;                                /* enum wa_noise_role */
    uint8_t prologue[WA_NOISE_PROLOGUE_LEN]; /* the WA intro (see wa_frame_make_intro) */
    const uint8_t *static_priv; /* our 32-byte Noise static private key (client: its noise key;
                                 * server: the key the leaf certificate names). Copied. */
    /* initiator only */
    const uint8_t *root_pub; /* 32-byte trusted certificate root; NULL = WA_NOISE_WA_ROOT_PUB */
    uint64_t now;            /* unix seconds for certificate validity; 0 = the current time */
} wa_noise_config;

/* Symmetric state (internal; in the header so that wa_noise_hs can be embedded). */
typedef struct wa_noise_sym {
    uint8_t h[WA_NOISE_HASH_LEN];
    uint8_t ck[WA_NOISE_KEY_LEN];
    uint8_t k[WA_NOISE_KEY_LEN];
    uint32_t n;
    int has_k;
} wa_noise_sym;

typedef struct wa_noise_hs {
    int role;
    int step;           /* internal position in the pattern */
    int err;            /* sticky error */
    const char *reason; /* static text for err */
    wa_noise_sym sym;
    uint8_t s_priv[WA_NOISE_KEY_LEN], s_pub[WA_NOISE_KEY_LEN];
    uint8_t e_priv[WA_NOISE_KEY_LEN], e_pub[WA_NOISE_KEY_LEN];
    int has_e;
    uint8_t re[WA_NOISE_KEY_LEN]; /* remote ephemeral */
    uint8_t rs[WA_NOISE_KEY_LEN]; /* remote static */
    int has_rs;
    uint8_t root_pub[WA_NOISE_KEY_LEN];
    uint64_t now;
    wa_buf
        payload; /* decrypted remote payload: CertChain (initiator) / ClientPayload (responder) */
} wa_noise_hs;

typedef struct wa_noise_transport {
    uint8_t wkey[WA_NOISE_KEY_LEN];
    uint8_t rkey[WA_NOISE_KEY_LEN];
    uint64_t wn, rn; /* next counters; at most 2^32 messages per direction */
    int rerr;        /* sticky read-side error */
} wa_noise_transport;

/* ---- handshake ---- */

/* Set up a handshake: h/ck from the protocol name, MixHash(prologue), our static key pair.
 * Allocates nothing. 0, WA_EINVAL (bad role, missing static key), WA_ECRYPTO. */
int wa_noise_hs_init(wa_noise_hs *hs, const wa_noise_config *cfg);
/* Wipe all key material and free the payload buffer. */
void wa_noise_hs_cleanup(wa_noise_hs *hs);

/* One of enum wa_noise_hs_state. */
int wa_noise_hs_state(const wa_noise_hs *hs);

/* Produce our next handshake message (a HandshakeMessage) and append it to *out (unchanged on
 * failure). payload: initiator's first message: must be empty; initiator's second: the
 * serialized ClientPayload; responder: the serialized CertChain. Up to
 * WA_NOISE_HS_MAX_PAYLOAD bytes.
 * Returns 0; WA_ESTATE when it is not our turn; WA_EINVAL / WA_ELIMIT (bad arguments, payload
 * too big, *out full) and WA_ENOMEM (a temporary buffer) leave the handshake unchanged, so the
 * call can be retried; any other error (WA_ECRYPTO, ...) fails the handshake. Once failed,
 * every call returns the sticky error. */
int wa_noise_hs_write(wa_noise_hs *hs, const uint8_t *payload, size_t len, wa_buf *out);

/* Consume the peer's next handshake message. 0; WA_ESTATE when no message is expected (not
 * sticky: a caller error); otherwise failures are sticky: WA_ELIMIT (larger than
 * WA_NOISE_HS_MAX_MSG), WA_EPROTOBUF (undecodable), WA_EPROTO (wrong message type or field
 * sizes), WA_ECRYPTO (authentication failed, small-order key), WA_ECERT (initiator: certificate
 * chain rejected; see wa_noise_hs_reason), WA_ENOMEM. */
int wa_noise_hs_read(wa_noise_hs *hs, const uint8_t *msg, size_t len);

/* A static string saying why the handshake failed ("" while it has not). */
const char *wa_noise_hs_reason(const wa_noise_hs *hs);

/* The peer's static public key (32 bytes, owned by hs) once received, else NULL. */
const uint8_t *wa_noise_hs_remote_static(const wa_noise_hs *hs);

/* The peer's decrypted payload (responder: ClientPayload bytes; initiator: CertChain bytes),
 * a slice into hs valid until cleanup; {NULL, 0} before it arrived. */
wa_slice wa_noise_hs_remote_payload(const wa_noise_hs *hs);

/* Handshake hash h (channel binding, tests). */
const uint8_t *wa_noise_hs_hash(const wa_noise_hs *hs);

/* After WA_NOISE_HS_DONE: derive the transport keys (counters 0). The handshake's keys are wiped;
 * the remote static key and payload stay readable until cleanup. 0 or WA_ESTATE/WA_ECRYPTO. */
int wa_noise_hs_split(wa_noise_hs *hs, wa_noise_transport *t);

/* Test hook: use this ephemeral private key (clamped copy) instead of a random one. Only
 * before the ephemeral is generated (initiator: before its first write; responder: before
 * writing the server hello). 0 or WA_ESTATE. */
int wa__noise_hs_set_ephemeral(wa_noise_hs *hs, const uint8_t priv[WA_NOISE_KEY_LEN]);

/* ---- transport ---- */

/* Encrypt len bytes and append len + 16 bytes to *out (unchanged on failure). The write
 * counter advances. 0, WA_ELIMIT (counter exhausted, or *out's cap), WA_ENOMEM, WA_ECRYPTO. */
int wa_noise_encrypt(wa_noise_transport *t, const uint8_t *pt, size_t len, wa_buf *out);
/* Decrypt one transport frame and append len - 16 bytes to *out. The read counter advances on
 * success. WA_ECRYPTO (sticky) if authentication fails or len < 16; WA_ELIMIT (sticky) when the
 * counter is exhausted; WA_ELIMIT/WA_ENOMEM (not sticky, nothing consumed) for *out. */
int wa_noise_decrypt(wa_noise_transport *t, const uint8_t *ct, size_t len, wa_buf *out);

/* Seal a binary node: plaintext = 0x00 flag || node; appends 1 + len + 16 bytes to *out. */
int wa_noise_seal_node(wa_noise_transport *t, const uint8_t *node, size_t len, wa_buf *out);
/* Open a transport frame holding a node: decrypts into *out (appending 1 + node bytes), then
 * *flags = the flag byte and *node = the bytes after it (a slice into out->data: valid until
 * *out changes; still deflated when flags & WA_NOISE_FLAG_COMPRESSED). Errors as
 * wa_noise_decrypt, plus WA_EPROTO (sticky) for an empty plaintext. */
int wa_noise_open_node(wa_noise_transport *t, const uint8_t *ct, size_t len, wa_buf *out,
                       uint8_t *flags, wa_slice *node);

/* Wipe the keys. */
void wa_noise_transport_cleanup(wa_noise_transport *t);

#endif
