/*
 * fuzz.c - fuzz target `proto`: arbitrary bytes into the generated protobuf-c decoders of
 * lib/proto. The first input byte selects the message type, the rest is the encoding.
 * Each input that passes wa_proto_check (framing and nesting depth; protobuf-c alone would
 * overflow the stack on deep nesting) goes through the typed generated unpack (freed with
 * the matching free_unpacked); a decoded message is then packed again, and that encoding
 * must pass wa_proto_unpack and re-pack to the same bytes (pack(unpack(y)) == y).
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "proto/adv.pb-c.h"
#include "proto/client_payload.pb-c.h"
#include "proto/handshake.pb-c.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Selector values (first byte modulo N_TYPES), also used by the seed corpus. */
enum {
    T_MESSAGE,
    T_CLIENT_PAYLOAD,
    T_HANDSHAKE,
    T_CERT_CHAIN,
    T_CERT_DETAILS,
    T_DEVICE_PROPS,
    T_ADV_HMAC,
    T_ADV_SIGNED_IDENTITY,
    T_ADV_IDENTITY,
    T_ADV_KEY_INDEX_LIST,
    T_ADV_SIGNED_KEY_INDEX_LIST,
    N_TYPES
};

/* Typed unpack; returns the message as ProtobufCMessage (NULL if malformed). */
static const ProtobufCMessageDescriptor *const descriptors[N_TYPES] = {
    [T_MESSAGE] = &wa__message__descriptor,
    [T_CLIENT_PAYLOAD] = &wa__client_payload__descriptor,
    [T_HANDSHAKE] = &wa__handshake_message__descriptor,
    [T_CERT_CHAIN] = &wa__cert_chain__descriptor,
    [T_CERT_DETAILS] = &wa__cert_chain__noise_certificate__details__descriptor,
    [T_DEVICE_PROPS] = &wa__device_props__descriptor,
    [T_ADV_HMAC] = &wa__advsigned_device_identity_hmac__descriptor,
    [T_ADV_SIGNED_IDENTITY] = &wa__advsigned_device_identity__descriptor,
    [T_ADV_IDENTITY] = &wa__advdevice_identity__descriptor,
    [T_ADV_KEY_INDEX_LIST] = &wa__advkey_index_list__descriptor,
    [T_ADV_SIGNED_KEY_INDEX_LIST] = &wa__advsigned_key_index_list__descriptor,
};

static ProtobufCMessage *typed_unpack(unsigned t, const uint8_t *p, size_t n)
{
    switch (t) {
    case T_MESSAGE:
        return (ProtobufCMessage *)wa__message__unpack(NULL, n, p);
    case T_CLIENT_PAYLOAD:
        return (ProtobufCMessage *)wa__client_payload__unpack(NULL, n, p);
    case T_HANDSHAKE:
        return (ProtobufCMessage *)wa__handshake_message__unpack(NULL, n, p);
    case T_CERT_CHAIN:
        return (ProtobufCMessage *)wa__cert_chain__unpack(NULL, n, p);
    case T_CERT_DETAILS:
        /* nested type: protoc-c emits typed helpers only for top-level messages */
        return protobuf_c_message_unpack(&wa__cert_chain__noise_certificate__details__descriptor,
                                         NULL, n, p);
    case T_DEVICE_PROPS:
        return (ProtobufCMessage *)wa__device_props__unpack(NULL, n, p);
    case T_ADV_HMAC:
        return (ProtobufCMessage *)wa__advsigned_device_identity_hmac__unpack(NULL, n, p);
    case T_ADV_SIGNED_IDENTITY:
        return (ProtobufCMessage *)wa__advsigned_device_identity__unpack(NULL, n, p);
    case T_ADV_IDENTITY:
        return (ProtobufCMessage *)wa__advdevice_identity__unpack(NULL, n, p);
    case T_ADV_KEY_INDEX_LIST:
        return (ProtobufCMessage *)wa__advkey_index_list__unpack(NULL, n, p);
    default:
        return (ProtobufCMessage *)wa__advsigned_key_index_list__unpack(NULL, n, p);
    }
}

static void typed_free(unsigned t, ProtobufCMessage *m)
{
    switch (t) {
    case T_MESSAGE:
        wa__message__free_unpacked((Wa__Message *)m, NULL);
        break;
    case T_CLIENT_PAYLOAD:
        wa__client_payload__free_unpacked((Wa__ClientPayload *)m, NULL);
        break;
    case T_HANDSHAKE:
        wa__handshake_message__free_unpacked((Wa__HandshakeMessage *)m, NULL);
        break;
    case T_CERT_CHAIN:
        wa__cert_chain__free_unpacked((Wa__CertChain *)m, NULL);
        break;
    case T_CERT_DETAILS:
        protobuf_c_message_free_unpacked(m, NULL);
        break;
    case T_DEVICE_PROPS:
        wa__device_props__free_unpacked((Wa__DeviceProps *)m, NULL);
        break;
    case T_ADV_HMAC:
        wa__advsigned_device_identity_hmac__free_unpacked((Wa__ADVSignedDeviceIdentityHMAC *)m,
                                                          NULL);
        break;
    case T_ADV_SIGNED_IDENTITY:
        wa__advsigned_device_identity__free_unpacked((Wa__ADVSignedDeviceIdentity *)m, NULL);
        break;
    case T_ADV_IDENTITY:
        wa__advdevice_identity__free_unpacked((Wa__ADVDeviceIdentity *)m, NULL);
        break;
    case T_ADV_KEY_INDEX_LIST:
        wa__advkey_index_list__free_unpacked((Wa__ADVKeyIndexList *)m, NULL);
        break;
    default:
        wa__advsigned_key_index_list__free_unpacked((Wa__ADVSignedKeyIndexList *)m, NULL);
        break;
    }
}

static void repack(const ProtobufCMessage *m, wa_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);

    wa_buf_init(out, n ? n : 1);
    if (wa_proto_pack(m, out) != 0 || out->len != n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ProtobufCMessage *m, *m2 = NULL;
    wa_buf y, z;
    unsigned t;

    if (size < 1)
        return 0;
    t = data[0] % N_TYPES;
    if (wa_proto_check(descriptors[t], data + 1, size - 1) != 0)
        return 0;
    m = typed_unpack(t, data + 1, size - 1);
    if (!m)
        return 0;
    if (m->descriptor != descriptors[t])
        abort();
    repack(m, &y);
    /* the canonical encoding decodes (through libwa's allocator) and re-packs identically */
    if (wa_proto_unpack(m->descriptor, y.data, y.len, &m2) != 0)
        abort();
    repack(m2, &z);
    if (z.len != y.len || (y.len && memcmp(y.data, z.data, y.len) != 0))
        abort();
    wa_proto_free(m2);
    wa_buf_cleanup(&z);
    wa_buf_cleanup(&y);
    typed_free(t, m);
    return 0;
}
