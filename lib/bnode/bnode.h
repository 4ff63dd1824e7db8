/*
 * bnode.h - encoder and decoder of WhatsApp's binary node format ("binary XML"), dictionary
 * versions 2 (Baileys 6.17) and 3 (Baileys 7, whatsmeow, current servers).
 *
 * Wire format (PROTOCOL.md §7): a node is a list of 2*nattrs + 1 (+1 with content) items: tag,
 * key/value strings, content. Strings are written, in order of preference, as a single-byte
 * token, a double-byte token (236 + dict, index), nibble-packed ([0-9.-], <= 127 chars),
 * hex-packed ([0-9A-F], <= 127 chars), a JID (JID_PAIR, or AD_JID when it has a device), or raw
 * (BINARY_8/20/32). Content is a list of nodes, raw bytes, or a string.
 *
 * The encoder is byte-identical to Baileys' encodeBinaryNode (6.17 for v2, 7 for v3; see
 * encode.c for the few documented exceptions, all for strings Baileys cannot round-trip). The
 * decoder accepts what Baileys' and whatsmeow's decoders accept, except where they disagree or
 * are lax (decode.c lists the choices), and it never reads out of bounds or allocates beyond
 * the arena's cap.
 *
 * Transport: a decrypted Noise frame is 1 flag byte + node bytes; flag bit 0x02 means the rest
 * is zlib-compressed. wa_bnode_encode/_decode handle node bytes WITHOUT the flag byte;
 * wa_bnode_encode_frame/_decode_frame handle the transport form.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_BNODE_BNODE_H
#define WA_BNODE_BNODE_H

#include <stddef.h>
#include <stdint.h>

#include "bnode/node.h"
#include "core/arena.h"
#include "core/buf.h"

/* Tags (single bytes that are not tokens). */
#define WA_BNODE_LIST_EMPTY   0
#define WA_BNODE_STREAM_END   2
#define WA_BNODE_DICTIONARY_0 236
#define WA_BNODE_DICTIONARY_3 239
#define WA_BNODE_INTEROP_JID  245 /* v3 */
#define WA_BNODE_FB_JID       246 /* v3 */
#define WA_BNODE_AD_JID       247
#define WA_BNODE_LIST_8       248
#define WA_BNODE_LIST_16      249
#define WA_BNODE_JID_PAIR     250
#define WA_BNODE_HEX_8        251
#define WA_BNODE_BINARY_8     252
#define WA_BNODE_BINARY_20    253
#define WA_BNODE_BINARY_32    254
#define WA_BNODE_NIBBLE_8     255
#define WA_BNODE_PACKED_MAX   127

/* Transport flag byte. */
#define WA_BNODE_FLAG_COMPRESSED 0x02

/* Limits. */
#define WA_BNODE_MAX_DEPTH    64          /* node nesting, root = 1 */
#define WA_BNODE_MAX_LIST     65535       /* children per node (LIST_16's maximum) */
#define WA_BNODE_MAX_ATTRS    1024        /* attributes per node */
#define WA_BNODE_MAX_BYTES    (16u << 20) /* one string or byte content */
#define WA_BNODE_MAX_INFLATED (32u << 20) /* inflated size of a compressed frame */
#define WA_BNODE_ARENA_MAX    (64u << 20) /* arena cap to use for one decoded stanza */

/* Encode the tree n with dictionary version 2 or 3, appending the node bytes (no flag byte) to
 * out. 0; WA_EINVAL (bad version, empty tag, NULL), WA_ELIMIT (out's cap, > 65535 list items,
 * >= 2^32-byte string), WA_EDEPTH (deeper than WA_BNODE_MAX_DEPTH), WA_ENOMEM. On failure out
 * is left as it was. */
int wa_bnode_encode(const wa_node *n, int dict_version, wa_buf *out);
/* Same, preceded by the transport flag byte 0x00 (uncompressed), as senders write it. */
int wa_bnode_encode_frame(const wa_node *n, int dict_version, wa_buf *out);

/* Decode node bytes (no flag byte) into a tree allocated in `arena` (initialised by the caller,
 * e.g. wa_arena_init(&a, WA_BNODE_ARENA_MAX)). The input must hold exactly one node.
 * 0 and *out set; or WA_ETRUNC (input ends early), WA_ETOKEN (unknown tag or token),
 * WA_EPROTO (malformed: bad list tag, empty tag, NUL in a string, bad JID, trailing bytes),
 * WA_ELIMIT (a WA_BNODE_MAX_* limit or the arena cap), WA_EDEPTH, WA_ENOMEM, WA_EINVAL.
 * On failure the arena may hold partial allocations: clean it up (or reuse it). The tree does
 * not reference `data`. */
int wa_bnode_decode(const uint8_t *data, size_t len, int dict_version, wa_arena *arena,
                    wa_node **out);
/* Decode a transport plaintext: flag byte, then node bytes, zlib-inflated first when
 * flag & 0x02 (at most WA_BNODE_MAX_INFLATED bytes, else WA_ELIMIT; bad zlib data WA_EZLIB).
 * Other flag bits are ignored, as Baileys and whatsmeow do. Errors as wa_bnode_decode. */
int wa_bnode_decode_frame(const uint8_t *data, size_t len, int dict_version, wa_arena *arena,
                          wa_node **out);

#endif
