/*
 * node.h - the binary node model of WhatsApp's stanzas ("binary XML").
 *
 * A node is a tag, attributes (key/value strings, in order) and content, which is one of:
 *   WA_NODE_NONE    no content                         <ping/>
 *   WA_NODE_BYTES   raw bytes (BINARY_8/20/32 on the wire)  <enc>..</enc>
 *   WA_NODE_STRING  a string written in a string form (token, nibble/hex-packed, JID, or raw
 *                   when built by a caller): Baileys' decoder returns such content as a JS
 *                   string and raw BINARY content as a Buffer, and so do we (STRING vs BYTES),
 *                   so that a relayed tree re-encodes the way Baileys would write it.
 *   WA_NODE_LIST    child nodes (possibly none: an explicit empty list, LIST_EMPTY on the wire)
 *
 * All memory of a tree lives in one wa_arena (one per stanza): the decoder allocates into the
 * arena it is given, and the builders below copy every string and byte array into the arena
 * they are given. A tree is freed by wa_arena_cleanup. Nothing in a tree is ever freed alone.
 * One exception: strings of a decoded tree that are dictionary tokens (and one-byte packed
 * strings such as "0" or "12") point into the decoder's static tables instead of the arena.
 * Those live as long as the program, so they outlive every tree; like every string of a tree
 * they are const and must never be written through (nor freed).
 *
 * Strings (tag, attribute keys and values) are NUL-terminated and never contain a NUL (the
 * decoder refuses stanzas that would produce one). STRING/BYTES content carries its length and
 * may contain any byte; a NUL is always stored after it for convenience.
 *
 * Repeated attribute keys: a decoded tree keeps every pair in wire order, and wa_node_attr
 * returns the LAST value, as Baileys and whatsmeow (both decode attributes into a map) see it.
 * wa_node_set_attr replaces an existing key's value in place (JS object semantics).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_BNODE_NODE_H
#define WA_BNODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "jid/jid.h"

enum wa_node_content { WA_NODE_NONE = 0, WA_NODE_BYTES, WA_NODE_STRING, WA_NODE_LIST };

typedef struct wa_node_kv {
    const char *key;
    const char *value;
    size_t key_len;
    size_t value_len;
} wa_node_kv;

typedef struct wa_node wa_node;
struct wa_node {
    const char *tag; /* never NULL or empty in a valid node */
    size_t tag_len;
    wa_node_kv *attrs;
    size_t nattrs;
    size_t attrs_cap;     /* builder's capacity of attrs */
    int content;          /* enum wa_node_content */
    const uint8_t *bytes; /* BYTES/STRING content (NUL stored after it) */
    size_t len;           /* BYTES/STRING: byte length; LIST: number of children */
    wa_node *first;       /* LIST: first child */
    wa_node *last;        /* LIST: last child */
    wa_node *next;        /* next sibling */
};

/* ---- building (every function copies its strings/bytes into `a`) ---------------------- */

/* A new node with a copy of `tag` (non-empty). NULL on arena exhaustion or bad arguments. */
wa_node *wa_node_new(wa_arena *a, const char *tag);
/* Set key=value (copied); an existing key gets the new value in place. 0, WA_EINVAL (NULL or
 * empty key), WA_ENOMEM/WA_ELIMIT (arena). */
int wa_node_set_attr(wa_arena *a, wa_node *n, const char *key, const char *value);
/* Same with value[0..len) (no NUL may occur in it: WA_EINVAL). */
int wa_node_set_attr_n(wa_arena *a, wa_node *n, const char *key, const char *value, size_t len);
/* Decimal unsigned value. */
int wa_node_set_attr_u64(wa_arena *a, wa_node *n, const char *key, uint64_t v);
/* Canonical JID string (wa_jid_format). WA_EJID for an invalid JID. */
int wa_node_set_attr_jid(wa_arena *a, wa_node *n, const char *key, const wa_jid *j);
/* Content = copy of p[0..len) as BYTES. Replaces any previous content (children are dropped). */
int wa_node_set_bytes(wa_arena *a, wa_node *n, const void *p, size_t len);
/* Content = p[0..len) as BYTES WITHOUT copying: p must outlive every use of the tree. */
void wa_node_set_bytes_ref(wa_node *n, const void *p, size_t len);
/* Content = copy of s as STRING (written as token/packed/JID/raw like an attribute value). */
int wa_node_set_string(wa_arena *a, wa_node *n, const char *s);
/* Same with s[0..len) (may contain any byte). */
int wa_node_set_string_n(wa_arena *a, wa_node *n, const char *s, size_t len);
/* Content = an empty child list (LIST_EMPTY on the wire; differs from no content). */
void wa_node_set_list(wa_node *n);
/* Append child (which must not already be in a list) to n's children. Switches n's content
 * to LIST. 0 or WA_EINVAL. */
int wa_node_add_child(wa_node *n, wa_node *child);
/* wa_node_new + wa_node_add_child. NULL on failure. */
wa_node *wa_node_new_child(wa_arena *a, wa_node *parent, const char *tag);

/* ---- reading ---------------------------------------------------------------------------- */

/* The value of attribute `key` (the last one if repeated), or NULL. */
const char *wa_node_attr(const wa_node *n, const char *key);
/* Unsigned decimal attribute (digits only, no sign, fits in uint64). 0, WA_ENOTFOUND,
 * WA_EPROTO (not a number / overflow). *out written only on success. */
int wa_node_attr_u64(const wa_node *n, const char *key, uint64_t *out);
/* Signed decimal attribute ('-' allowed), must fit in int64_t. */
int wa_node_attr_i64(const wa_node *n, const char *key, int64_t *out);
/* Signed decimal attribute that must fit in int. */
int wa_node_attr_int(const wa_node *n, const char *key, int *out);
/* JID attribute parsed with wa_jid_parse. 0, WA_ENOTFOUND, WA_EJID. */
int wa_node_attr_jid(const wa_node *n, const char *key, wa_jid *out);
/* 1 if n's tag is `tag`. */
int wa_node_is(const wa_node *n, const char *tag);

/* First child with the given tag, or NULL (also when n has no list content). */
const wa_node *wa_node_child(const wa_node *n, const char *tag);
/* First child (NULL if none); iterate with child->next, or with WA_NODE_FOREACH. */
const wa_node *wa_node_children(const wa_node *n);
/* Next sibling after c with the given tag, or NULL. */
const wa_node *wa_node_next_tag(const wa_node *c, const char *tag);
/* Number of children (0 when content is not a list). */
size_t wa_node_child_count(const wa_node *n);
#define WA_NODE_FOREACH(c, n) for (const wa_node *c = wa_node_children(n); c; c = c->next)

/* BYTES or STRING content as {*p, *len}. 0, or WA_ENOTFOUND when the content is none/list. */
int wa_node_content_bytes(const wa_node *n, const uint8_t **p, size_t *len);

/* ---- debug printing ----------------------------------------------------------------------- */

#define WA_NODE_XML_HEX    0x01 /* print BYTES content as hex (may reveal key material) */
#define WA_NODE_XML_INDENT 0x02 /* one element per line, two spaces per level */

/* Append an XML-like rendering to out: <iq id="1" type="result"><ping/></iq>. BYTES content is
 * shown as "[N bytes]" unless WA_NODE_XML_HEX is set (the default never prints key material);
 * STRING content is printed escaped. Non-printable bytes in strings are written \xNN. 0,
 * WA_ELIMIT when out's cap is reached (out then holds a truncated rendering), WA_EDEPTH past
 * WA_BNODE_MAX_DEPTH levels, WA_ENOMEM. */
int wa_node_to_xml(const wa_node *n, wa_buf *out, int flags);

/* Deep structural equality: tags, attributes (in order), content kind and bytes. 1 or 0. */
int wa_node_equal(const wa_node *a, const wa_node *b);

#endif
