/*
 * proto.h - helpers around the protobuf-c code generated from the lib/proto .proto files.
 *
 * The generated types live in "proto/<file>.pb-c.h" (generated at build time into
 * <build>/gen/proto/): handshake (Wa__HandshakeMessage, Wa__CertChain), client_payload
 * (Wa__ClientPayload, Wa__DeviceProps), adv (Wa__ADVSignedDeviceIdentityHMAC, ...) and
 * message (Wa__Message, Wa__MessageKey, Wa__ContextInfo, ...).
 *
 * These helpers add what the raw protobuf-c calls lack for libwa: a size limit on input,
 * allocation through wa_malloc (so allocation failure can be injected in tests), wiping of
 * every block a decoded message owns when it is freed (decoded messages can carry key
 * material, e.g. Message.AppStateSyncKeyData.keyData), and packing into a capped wa_buf.
 *
 * Link order: wa_proto links PkgConfig::PROTOBUFC publicly; it must come before
 * PkgConfig::SIGNAL on every link line (libsignal-protocol-c exports an old protobuf-c runtime).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_PROTO_PROTO_H
#define WA_PROTO_PROTO_H
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "core/buf.h"

/* Largest serialized message accepted by wa_proto_unpack. A Noise frame carries at most
 * 2^24 - 1 bytes (3-byte length), so nothing larger can arrive in one frame. */
#define WA_PROTO_MAX_INPUT ((size_t)16 * 1024 * 1024)

/* Deepest nesting of declared sub-messages accepted (the top-level message is depth 0).
 * protobuf-c recurses once per level without a limit, so a small input nesting e.g.
 * Message.ephemeralMessage.message... 100000 times overflows the stack; real messages nest
 * about a dozen levels (deviceSent > ephemeral > viewOnce > image > contextInfo > quoted...). */
#define WA_PROTO_MAX_DEPTH 32

/* The allocator for every protobuf-c call in libwa: wa_malloc/wa_free, and every block is
 * wiped on free. Never NULL; the object is static and lives forever. */
ProtobufCAllocator *wa_proto_allocator(void);

/*
 * Check the wire framing of `len` bytes at `data` for a message of type `desc`, without
 * decoding or allocating: every tag, varint and length is well formed and in bounds, no
 * field number is 0, no group wire types, and sub-messages of declared message-typed fields
 * (recursively) nest at most WA_PROTO_MAX_DEPTH levels. Does not check field types against
 * wire types (protobuf-c's unpack does). Runs in O(len) time and O(WA_PROTO_MAX_DEPTH) stack.
 * Returns 0, WA_EINVAL (NULL desc, or NULL data with len > 0), WA_EPROTOBUF or WA_EDEPTH.
 */
int wa_proto_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len);

/*
 * Decode `len` bytes at `data` as a message of type `desc` (e.g. &wa__message__descriptor).
 * Use this, never the generated wa__*__unpack, on input from the network: it runs
 * wa_proto_check first (protobuf-c itself has no nesting limit and accepts field number 0
 * when its tag is encoded in more than one byte).
 * out: address of a pointer of the matching generated type (Wa__Message **); written only on
 *      success with a message owned by the caller, to be freed with wa_proto_free.
 * The input is not retained (protobuf-c copies strings and bytes).
 * Returns 0, WA_EINVAL (NULL arguments), WA_ELIMIT (len > WA_PROTO_MAX_INPUT), WA_EDEPTH (see
 * WA_PROTO_MAX_DEPTH) or WA_EPROTOBUF
 * (malformed input: truncated, wrong wire type, bad length, ... - protobuf-c does not tell
 * malformed input from allocation failure, so out-of-memory also reports WA_EPROTOBUF).
 */
int wa_proto_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    void *out);

/* Free a message from wa_proto_unpack (any generated type; NULL is a no-op), wiping it. */
void wa_proto_free(void *msg);

/*
 * Append the serialization of `msg` (a generated message, e.g. Wa__ClientPayload *) to `out`.
 * Returns 0, WA_EINVAL (msg fails protobuf_c_message_check: a repeated field with count > 0
 * and a NULL array, a NULL string in a repeated field, ...), WA_ELIMIT (past out->max) or
 * WA_ENOMEM. On error `out` is unchanged.
 */
int wa_proto_pack(const void *msg, wa_buf *out);

#endif
