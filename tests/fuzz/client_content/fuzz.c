/*
 * fuzz.c - fuzz target `client_content`: a decrypted, unpadded payload as a Message
 * (wa__content_read), as a PreKeySignalMessage (wa__e2e_pkmsg_identity), and as an
 * ADVSignedDeviceIdentity checked against the first 32 input bytes (wa__e2e_check_device_identity).
 * None may crash, read out of bounds or leak; results must be consistent (a text message has
 * a text string, a reaction a target, a location its coordinates, a contact its vCard). The
 * input also drives the location and contact builders: what they accept reads back the same.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Location from the first 16 bytes (two doubles) and the rest as name; contact with the rest
 * split at its first NUL into name and vCard. Accepted ones must read back unchanged. */
static void builders(const uint8_t *data, size_t size)
{
    wa_client_location loc;
    wa__outgoing o;
    wa__incoming in;
    char *rest;
    size_t n;

    if (size < 16 || size > 4096)
        return;
    n = size - 16;
    rest = malloc(n + 2);
    if (!rest)
        return;
    memcpy(rest, data + 16, n);
    rest[n] = rest[n + 1] = '\0';
    memset(&loc, 0, sizeof loc);
    memcpy(&loc.latitude, data, 8);
    memcpy(&loc.longitude, data + 8, 8);
    loc.name = rest;
    memset(&o, 0, sizeof o);
    if (wa__content_location(&o, &loc, NULL, "1@s.whatsapp.net") == 0) {
        if (wa__content_read(o.plain.data, o.plain.len, &in) != 0 || in.kind != WA_MSG_LOCATION ||
            in.latitude != loc.latitude || in.longitude != loc.longitude ||
            strcmp(in.location_name, rest) != 0)
            abort();
        wa__content_free(&in);
    }
    wa_buf_cleanup(&o.plain);
    memset(&o, 0, sizeof o);
    if (wa__content_contact(&o, rest, rest + strlen(rest) + 1, NULL, "1@s.whatsapp.net") == 0) {
        if (wa__content_read(o.plain.data, o.plain.len, &in) != 0 || in.kind != WA_MSG_CONTACT ||
            strcmp(in.contact_name, rest) != 0 || strcmp(in.vcard, rest + strlen(rest) + 1) != 0)
            abort();
        wa__content_free(&in);
    }
    wa_buf_cleanup(&o.plain);
    free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa__incoming in;
    uint8_t idk[WA_SIGNAL_KEY_LEN];
    size_t i;

    if (wa__content_read(data, size, &in) == 0) {
        /* every string the reader hands out is a readable, terminated string */
        if (!in.text || !in.quoted_id || !in.quoted_sender || !in.quoted_text || !in.target_id ||
            !in.target_sender)
            abort();
        if (strlen(in.text) > size || strlen(in.target_id) > size)
            abort();
        for (i = 0; i < in.n_mentions; i++)
            if (!in.mentions[i] || strlen(in.mentions[i]) > size)
                abort();
        if (in.skdm && (!in.skdm_group || in.skdm_len > size))
            abort();
        if (!in.location_name || !in.location_address || !in.contact_name || !in.vcard ||
            strlen(in.location_name) > size || strlen(in.vcard) > size)
            abort();
        if (in.kind != WA_MSG_LOCATION && (in.latitude != 0.0 || in.longitude != 0.0))
            abort();
        wa__content_free(&in);
    }
    builders(data, size);
    if (wa__e2e_pkmsg_identity(data, size, idk) == 0 && size < 1 + 2 + 33)
        abort(); /* a 33-byte key cannot fit */
    if (size >= WA_SIGNAL_KEY_LEN)
        (void)wa__e2e_check_device_identity(data + WA_SIGNAL_KEY_LEN, size - WA_SIGNAL_KEY_LEN,
                                            data);
    return 0;
}
