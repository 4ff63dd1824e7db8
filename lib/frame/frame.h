/*
 * frame.h - WhatsApp Web framing (docs: /work/shared/PROTOCOL.md section 1), sans-I/O, both
 * roles.
 *
 * Byte layout:
 *   client's first bytes:  [45 44 00 01 <3-byte BE len> <routing info>]  57 41 06 <dict>
 *                          (the "ED" edge-routing header is present only when the client has
 *                          routing info; 57 41 06 <dict> is the 4-byte intro, "WA", magic 6,
 *                          dictionary version, and is also the Noise prologue)
 *   then, both directions: <3-byte BE length> <payload>, repeated. Zero-length frames are legal.
 * The server sends no intro.
 *
 * Reading: wa_frame_feed() buffers bytes as they arrive (split anywhere); wa_frame_next()
 * returns one complete frame at a time, or WA_EAGAIN. A server-role reader first consumes and
 * checks the ED header and intro (wa_frame_peer_intro() exposes them). Errors are sticky.
 * Writing: wa_frame_write() appends one framed payload to a caller buffer; a client's first
 * write carries the ED header and intro in front.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_FRAME_FRAME_H
#define WA_FRAME_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WA_FRAME_HDR_LEN 3 /* big-endian payload length */
#define WA_FRAME_MAX_LEN                                                                           \
    0xFFFFFF                      /* largest payload a 3-byte header can carry (16 MiB - 1);       \
                                   * whatsmeow's FrameMaxSize is 1 << 24 */
#define WA_FRAME_INTRO_LEN   4    /* 57 41 06 <dict> */
#define WA_FRAME_MAGIC       6    /* third intro byte */
#define WA_FRAME_ED_HDR_LEN  7    /* 45 44 00 01 <3-byte len> */
#define WA_FRAME_ROUTING_MAX 4096 /* cap on edge routing info (real ones are ~10 bytes) */
/* Cap on bytes buffered by a reader: a partial frame plus one more maximal frame; callers drain
 * with wa_frame_next() until WA_EAGAIN before feeding again. */
#define WA_FRAME_INBUF_MAX                                                                         \
    (2 * (WA_FRAME_HDR_LEN + (size_t)WA_FRAME_MAX_LEN) + WA_FRAME_ED_HDR_LEN +                     \
     WA_FRAME_ROUTING_MAX + WA_FRAME_INTRO_LEN)
/* After draining, a mostly empty input buffer larger than this is shrunk. */
#define WA_FRAME_SHRINK_ABOVE (64 * 1024)

enum wa_frame_role {
    WA_FRAME_CLIENT = 1, /* sends the intro, reads plain frames */
    WA_FRAME_SERVER = 2, /* reads the intro first, sends plain frames */
};

typedef struct wa_frame {
    int role;
    int err;          /* sticky error of the reader (0 = none) */
    size_t max_len;   /* largest incoming payload accepted (<= WA_FRAME_MAX_LEN) */
    wa_buf in;        /* buffered input; frames are returned as slices into it */
    size_t rpos;      /* read position in `in` */
    int intro_done;   /* server: intro received; client: intro written */
    int intro_set;    /* client: wa_frame_set_intro() called */
    uint8_t dict;     /* dictionary version (received, or to send) */
    uint8_t *routing; /* owned copy of the routing info (NULL if none) */
    size_t routing_len;
    int has_routing; /* an ED header was (or will be) present, possibly with empty info */
} wa_frame;

/* Initialise for a role (WA_FRAME_CLIENT or WA_FRAME_SERVER). Allocates nothing. */
void wa_frame_init(wa_frame *f, int role);
/* Free everything; the struct must be re-initialised before reuse. */
void wa_frame_cleanup(wa_frame *f);

/* Client: set the intro sent before the first frame: dictionary version and optional edge
 * routing info (copied; NULL/0 = no ED header). Must precede the first wa_frame_write().
 * 0, WA_ESTATE (server role, or already written), WA_ELIMIT (routing > WA_FRAME_ROUTING_MAX),
 * WA_ENOMEM. */
int wa_frame_set_intro(wa_frame *f, uint8_t dict_version, const uint8_t *routing,
                       size_t routing_len);

/* Lower the largest accepted incoming payload (1 ..= WA_FRAME_MAX_LEN). 0 or WA_EINVAL. */
int wa_frame_set_max_len(wa_frame *f, size_t max_len);

/* Buffer received bytes. A server-role reader checks the ED header and intro as soon as their
 * bytes arrive. 0, or (sticky) WA_EPROTO (bad magic), WA_ELIMIT (too much buffered, routing
 * info too long), WA_ENOMEM. */
int wa_frame_feed(wa_frame *f, const uint8_t *data, size_t len);

/* Next complete frame: 0 with *frame pointing into the reader's buffer (valid until the next
 * call of wa_frame_feed/next/cleanup), WA_EAGAIN when more input is needed (the buffer is then
 * compacted, and released when empty), or the sticky error: WA_ELIMIT for a frame longer than
 * the maximum, WA_EPROTO for a bad intro. */
int wa_frame_next(wa_frame *f, wa_slice *frame);

/* Server: the intro received from the client. 0 with *dict_version and *routing (slice owned
 * by f; {NULL,0} when no ED header was sent), WA_EAGAIN before the intro is complete.
 * Client: the configured values (WA_ESTATE if never set). Either pointer may be NULL. */
int wa_frame_peer_intro(const wa_frame *f, uint8_t *dict_version, wa_slice *routing);

/* The 4-byte intro 57 41 06 <dict>: the Noise prologue. */
void wa_frame_make_intro(uint8_t out[WA_FRAME_INTRO_LEN], uint8_t dict_version);

/* Append one frame (header + payload; on a client's first write the ED header and intro before
 * it) to *out. On failure *out is unchanged. 0, WA_ELIMIT (payload > WA_FRAME_MAX_LEN or *out
 * would pass its cap), WA_ESTATE (client without wa_frame_set_intro), WA_ENOMEM. */
int wa_frame_write(wa_frame *f, const uint8_t *payload, size_t len, wa_buf *out);

#endif
