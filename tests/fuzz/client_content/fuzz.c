/*
 * fuzz.c - fuzz target `client_content`: a decrypted, unpadded payload as a Message
 * (wa__content_read), as a PreKeySignalMessage (wa__e2e_pkmsg_identity), and as an
 * ADVSignedDeviceIdentity checked against the first 32 input bytes (wa__e2e_check_device_identity).
 * None may crash, read out of bounds or leak; results must be consistent (a text message has
 * a text string, a reaction a target).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        wa__content_free(&in);
    }
    if (wa__e2e_pkmsg_identity(data, size, idk) == 0 && size < 1 + 2 + 33)
        abort(); /* a 33-byte key cannot fit */
    if (size >= WA_SIGNAL_KEY_LEN)
        (void)wa__e2e_check_device_identity(data + WA_SIGNAL_KEY_LEN, size - WA_SIGNAL_KEY_LEN,
                                            data);
    return 0;
}
