/*
 * keys.c - the account's Signal keys (PROTOCOL.md §3, §5): identity key pair, registration id,
 * the signed prekey (XEdDSA over 0x05 || pub, as libsignal signs a serialized public key),
 * and one-time prekeys, whose ids are 24-bit, start at 1 and never take the value 0.
 *
 * Prekeys are generated in the store before they are uploaded, so that a key the server hands
 * out always has its private half on disk; an upload that failed is retried with the same
 * keys (wa_store_prekeys_pending) rather than burning ids.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "wa/error.h"

int wa__keys_sign_prekey(const uint8_t identity_priv[32], const uint8_t pub[32], uint8_t sig[64])
{
    uint8_t msg[33];

    msg[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(msg + 1, pub, 32);
    return wa_xeddsa_sign(sig, identity_priv, msg, sizeof msg);
}

int wa__keys_new_creds(wa_store_creds *out)
{
    wa_store_creds c;
    uint16_t r = 0;
    int rc;

    memset(&c, 0, sizeof c);
    rc = wa_x25519_keygen(c.noise_priv, c.noise_pub);
    if (rc == 0)
        rc = wa_x25519_keygen(c.identity_priv, c.identity_pub);
    if (rc == 0)
        rc = wa_x25519_keygen(c.spk_priv, c.spk_pub);
    if (rc == 0)
        rc = wa__keys_sign_prekey(c.identity_priv, c.spk_pub, c.spk_sig);
    if (rc == 0)
        rc = wa_random(c.adv_secret, sizeof c.adv_secret);
    if (rc == 0)
        rc = wa_random(&r, sizeof r);
    if (rc == 0) {
        /* 14 bits as Baileys and WhatsApp Web; 0 is avoided */
        c.registration_id = (uint32_t)(r & 0x3FFF);
        if (c.registration_id == 0)
            c.registration_id = 1;
        c.spk_id = 1;
        c.spk_created = (int64_t)time(NULL);
        c.next_prekey_id = 1;
        memcpy(out, &c, sizeof c);
    }
    wa_wipe(&c, sizeof c);
    return rc;
}

uint32_t wa__keys_next_id(uint32_t id)
{
    return id >= WA_STORE_PREKEY_ID_MAX ? 1 : id + 1;
}

int wa__keys_generate(wa_store_prekey *keys, size_t n)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        keys[i].id = 0;
        rc = wa_x25519_keygen(keys[i].priv, keys[i].pub);
    }
    return rc;
}

int wa__keys_store_new(wa_store *s, int64_t account, const wa_store_creds *creds,
                       wa_store_prekey *keys, size_t n)
{
    uint32_t next = creds->next_prekey_id;
    size_t i;

    for (i = 0; i < n; i++) {
        keys[i].id = next;
        next = wa__keys_next_id(next);
    }
    /* one transaction: the ids, the keys and next_prekey_id together */
    return wa_store_prekeys_add(s, account, keys, n, next);
}

int wa__keys_pending_prekeys(wa_store *s, int64_t account, const wa_store_creds *creds, size_t want,
                             wa_store_prekey *out, size_t *n)
{
    wa_store_prekey *fresh = NULL;
    size_t have = 0, missing;
    int rc;

    rc = wa_store_prekeys_pending(s, account, out, want, &have);
    if (rc)
        return rc;
    missing = want - have;
    if (missing) {
        fresh = wa_calloc(missing, sizeof *fresh);
        if (!fresh)
            return WA_ENOMEM;
        rc = wa__keys_generate(fresh, missing);
        if (rc == 0)
            rc = wa__keys_store_new(s, account, creds, fresh, missing);
        if (rc == 0) {
            memcpy(out + have, fresh, missing * sizeof *fresh);
            have += missing;
        }
        wa_wipe(fresh, missing * sizeof *fresh);
        wa_free(fresh);
    }
    if (rc == 0)
        *n = have;
    return rc;
}

int wa__keys_rotate_signed_prekey(wa_store_creds *c, int64_t now)
{
    uint8_t priv[32], pub[32], sig[64];
    int rc;

    rc = wa_x25519_keygen(priv, pub);
    if (rc == 0)
        rc = wa__keys_sign_prekey(c->identity_priv, pub, sig);
    if (rc == 0) {
        c->spk_id = wa__keys_next_id(c->spk_id);
        memcpy(c->spk_priv, priv, 32);
        memcpy(c->spk_pub, pub, 32);
        memcpy(c->spk_sig, sig, 64);
        c->spk_created = now;
    }
    wa_wipe(priv, sizeof priv);
    return rc;
}

int wa__keys_adopt_server_prekeys(wa_store *s, int64_t account, const uint32_t *ids, size_t n,
                                  size_t max, size_t *unknown, size_t *replaced)
{
    wa_store_creds *cr = wa_malloc(sizeof *cr);
    wa_store_prekey *fresh = wa_calloc(max ? max : 1, sizeof *fresh);
    wa_store_prekey have;
    uint32_t top = 0, next;
    size_t k = 0, miss = 0, i;
    int rc = cr && fresh ? 0 : WA_ENOMEM;

    if (rc == 0)
        rc = wa_store_creds_load(s, account, cr);
    for (i = 0; rc == 0 && i < n; i++) {
        if (ids[i] == 0 || ids[i] > WA_STORE_PREKEY_ID_MAX)
            continue;
        rc = wa_store_prekey_get(s, account, ids[i], &have);
        wa_wipe(&have, sizeof have);
        if (rc == 0)
            continue; /* ours */
        if (rc != WA_ENOTFOUND)
            break;
        rc = 0;
        miss++;
        if (ids[i] > top)
            top = ids[i];
        if (k < max) {
            fresh[k].id = ids[i];
            rc = wa_x25519_keygen(fresh[k].priv, fresh[k].pub);
            k++;
        }
    }
    if (rc == 0 && miss) {
        /* ids are handed out in sequence from next_prekey_id: the unknown ones were made after
         * this state (ids at or past next); never hand them out again. Below next only after
         * the 24-bit wrap: next stays. */
        next = cr->next_prekey_id;
        if (top >= next)
            next = wa__keys_next_id(top);
        rc = wa_store_prekeys_add(s, account, fresh, k, next);
    }
    if (rc == 0) {
        *unknown = miss;
        *replaced = miss ? k : 0;
    }
    if (fresh) {
        wa_wipe(fresh, (max ? max : 1) * sizeof *fresh);
        wa_free(fresh);
    }
    if (cr) {
        wa_store_creds_wipe(cr);
        wa_free(cr);
    }
    return rc;
}
