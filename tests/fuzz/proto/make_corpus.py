#!/usr/bin/env python3
# Writes the seed corpus of fuzz target `proto` (tests/fuzz/proto/corpus/): the first byte
# selects the message type (see the enum in fuzz.c), the rest is an encoding - the Baileys
# vectors of tests/vectors/proto_*.hex, a few hand-made messages and malformed edge cases.
# Usage: python3 tests/fuzz/proto/make_corpus.py   (output is checked in)
# SPDX-License-Identifier: GPL-3.0-or-later
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(HERE, "corpus")

(T_MESSAGE, T_CLIENT_PAYLOAD, T_HANDSHAKE, T_CERT_CHAIN, T_CERT_DETAILS, T_DEVICE_PROPS,
 T_ADV_HMAC, T_ADV_SIGNED_IDENTITY, T_ADV_IDENTITY, T_ADV_KEY_INDEX_LIST,
 T_ADV_SIGNED_KEY_INDEX_LIST) = range(11)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint(num << 3 | wt)


def vi(num, v):
    return key(num, 0) + varint(v & 0xFFFFFFFFFFFFFFFF)


def ld(num, b):
    if isinstance(b, str):
        b = b.encode()
    return key(num, 2) + varint(len(b)) + b


def vector(name):
    with open(os.path.join(ROOT, "tests", "vectors", f"proto_{name}.hex")) as f:
        return bytes.fromhex(f.read().strip())


seeds = {
    "message_ext_text": (T_MESSAGE, vector("message_ext_text")),
    "message_protocol": (T_MESSAGE, vector("message_protocol")),
    "client_payload_reg": (T_CLIENT_PAYLOAD, vector("client_payload_reg")),
    "client_payload_login": (T_CLIENT_PAYLOAD, vector("client_payload_login")),
    "client_payload_full": (T_CLIENT_PAYLOAD, vector("client_payload_full")),
    "cert_chain": (T_CERT_CHAIN, vector("cert_chain")),
    "adv_hmac": (T_ADV_HMAC, vector("adv_hmac")),
    # hand-made
    "message_conversation": (T_MESSAGE, ld(1, "hello")),
    "message_ephemeral_image": (T_MESSAGE, ld(40, ld(1, ld(3, ld(1, "https://x") + ld(2, "image/jpeg")
                                                            + vi(5, 12345) + ld(8, b"\x01" * 32)
                                                            + ld(17, ld(1, "ID") + ld(15, "a@s.whatsapp.net")))))),
    "message_reaction": (T_MESSAGE, ld(46, ld(1, ld(1, "a@s.whatsapp.net") + vi(2, 1) + ld(3, "ID"))
                                       + ld(2, "+1") + vi(4, 1700000000000))),
    "message_location": (T_MESSAGE, ld(5, key(1, 1) + b"\x00" * 7 + b"\x40" + key(2, 1) + b"\x00" * 8
                                       + key(8, 5) + b"\x00\x00\xc0\x3f")),
    "message_unknown_fields": (T_MESSAGE, ld(1, "hi") + ld(49, ld(1, "q")) + vi(1000, 5)
                               + key(2000, 5) + b"\x01\x02\x03\x04" + key(3000, 1) + b"\x00" * 8),
    "handshake_client_hello": (T_HANDSHAKE, ld(2, ld(1, b"\xe1" * 32))),
    "handshake_server_hello": (T_HANDSHAKE, ld(3, ld(1, b"\x01" * 32) + ld(2, b"\x02" * 48)
                                               + ld(3, b"\x03" * 80))),
    "handshake_client_finish": (T_HANDSHAKE, ld(4, ld(1, b"\x04" * 48) + ld(2, b"\x05" * 60))),
    "cert_details": (T_CERT_DETAILS, vi(1, 2) + vi(2, 1) + ld(3, b"\x4c" * 32) + vi(4, 1700000000)
                     + vi(5, 1800000000)),
    "device_props": (T_DEVICE_PROPS, ld(1, "Ubuntu") + ld(2, vi(1, 10) + vi(2, 15) + vi(3, 7))
                     + vi(3, 1) + vi(4, 0) + ld(5, vi(3, 10240) + vi(4, 1))),
    "adv_signed_identity": (T_ADV_SIGNED_IDENTITY, ld(1, vi(1, 5) + vi(2, 1700000000) + vi(3, 1))
                            + ld(2, b"\xaa" * 32) + ld(3, b"\xbb" * 64)),
    "adv_identity": (T_ADV_IDENTITY, vi(1, 123456789) + vi(2, 1700000000) + vi(3, 3) + vi(4, 0)
                     + vi(5, 1)),
    "adv_key_index_list": (T_ADV_KEY_INDEX_LIST, vi(1, 42) + vi(2, 1700000000) + vi(3, 4)
                           + ld(4, varint(0) + varint(3) + varint(1000)) + vi(4, 7)),
    "adv_signed_key_index_list": (T_ADV_SIGNED_KEY_INDEX_LIST, ld(1, vi(1, 42)) + ld(2, b"\x01" * 64)
                                  + ld(3, b"\x02" * 32)),
    # edge cases
    "empty_client_payload": (T_CLIENT_PAYLOAD, b""),
    "huge_length": (T_HANDSHAKE, b"\x12\xff\xff\xff\xff\x0f\x0a\x00"),
    "truncated_inner": (T_HANDSHAKE, b"\x12\x03\x0a\x20\x00"),
    "wrong_wire_type": (T_CLIENT_PAYLOAD, b"\x0a\x01\x00"),
    "endless_varint": (T_MESSAGE, b"\x08" + b"\xff" * 11),
    "deep_nesting": (T_MESSAGE, None),
}

# quotedMessage inside contextInfo inside extendedTextMessage, 40 levels deep
inner = ld(1, "deep")
for _ in range(40):
    inner = ld(6, ld(17, ld(3, inner)))
seeds["deep_nesting"] = (T_MESSAGE, inner)

os.makedirs(OUT, exist_ok=True)
for name, (sel, body) in sorted(seeds.items()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([sel]) + body)
print(f"{len(seeds)} seeds in {os.path.relpath(OUT, ROOT)}")
