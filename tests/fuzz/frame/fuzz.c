/*
 * fuzz.c (frame) - arbitrary bytes into a server-role WA frame reader (intro, ED header,
 * 3-byte length frames). Input: 1 control byte, then the stream. The stream is read twice,
 * once in one piece and once cut into pieces whose sizes come from the control byte, and both
 * runs must see exactly the same frames and the same final result (every-split-point property).
 * Control bit 0x80 lowers the frame size limit to 64 bytes to reach the WA_ELIMIT path.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame/frame.h"
#include "wa/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct summary {
    size_t frames, bytes;
    uint64_t hash;
    int rc;
    int intro;
    uint8_t dict;
    size_t routing_len;
} summary;

static void hash_bytes(uint64_t *h, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 1099511628211ULL;
    }
}

static void run(const uint8_t *data, size_t size, uint8_t ctl, int chunked, summary *s)
{
    wa_frame f;
    size_t pos = 0, step = 0;
    int rc = 0;

    memset(s, 0, sizeof *s);
    s->hash = 1469598103934665603ULL;
    wa_frame_init(&f, WA_FRAME_SERVER);
    if (ctl & 0x80)
        wa_frame_set_max_len(&f, 64);
    while (pos < size && !rc) {
        size_t n = size - pos;
        wa_slice fr;
        if (chunked) {
            size_t want = 1 + ((size_t)(ctl & 0x7f) * (step + 1) * 7) % 23;
            n = n < want ? n : want;
            step++;
        }
        rc = wa_frame_feed(&f, data + pos, n);
        pos += n;
        while (!rc && (rc = wa_frame_next(&f, &fr)) == 0) {
            uint8_t len[3] = {(uint8_t)(fr.len >> 16), (uint8_t)(fr.len >> 8), (uint8_t)fr.len};
            s->frames++;
            s->bytes += fr.len;
            hash_bytes(&s->hash, len, 3);
            hash_bytes(&s->hash, fr.ptr, fr.len);
        }
        if (rc == WA_EAGAIN)
            rc = 0;
    }
    s->rc = rc;
    {
        wa_slice r;
        if (wa_frame_peer_intro(&f, &s->dict, &r) == 0) {
            s->intro = 1;
            s->routing_len = r.len;
            hash_bytes(&s->hash, r.ptr ? r.ptr : (const uint8_t *)"", r.len);
        }
    }
    /* a reader with no error and nothing pending holds no memory */
    if (!rc && f.in.len == 0 && f.in.data)
        abort();
    wa_frame_cleanup(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    summary a, b;

    if (size < 1)
        return 0;
    run(data + 1, size - 1, data[0], 0, &a);
    run(data + 1, size - 1, data[0], 1, &b);
    if (a.frames != b.frames || a.bytes != b.bytes || a.hash != b.hash || a.rc != b.rc ||
        a.intro != b.intro || a.dict != b.dict || a.routing_len != b.routing_len)
        abort();
    return 0;
}
