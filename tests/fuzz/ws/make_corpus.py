#!/usr/bin/env python3
# make_corpus.py - writes the seed corpus of the "ws" fuzz target (see fuzz.c for the layout:
# byte 0 mode, byte 1 chunk seed, then the stream). Re-run after changing the layout.
# SPDX-License-Identifier: GPL-3.0-or-later
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def frame(op, payload, fin=True, mask=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    m = 0x80 if mask is not None else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n <= 0xFFFF:
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return hdr + payload
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


M = bytes([0x37, 0xFA, 0x21, 0x3D])
REQ = (b"GET /ws/chat?x=1 HTTP/1.1\r\nHost: web.whatsapp.com\r\nUpgrade: websocket\r\n"
       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       b"Sec-WebSocket-Version: 13\r\nOrigin: https://web.whatsapp.com\r\n"
       b"User-Agent: fuzz\r\n\r\n")


def client_frames(m=M):
    return (frame(1, b"Hello", mask=m) + frame(9, b"p", mask=m) +
            frame(2, b"Hel", fin=False, mask=m) + frame(10, b"", mask=m) +
            frame(0, b"lo", mask=m) + frame(2, bytes(range(256)) * 2, mask=m) +
            frame(8, b"\x03\xe8bye", mask=m))


def server_frames():
    return (frame(1, b"Hello") + frame(1, b"Hel", fin=False) + frame(0, b"lo") +
            frame(9, b"Hello") + frame(2, bytes(256)) + frame(10, b"") +
            frame(8, b"\x03\xe8"))


SEEDS = {
    "server_raw_session": bytes([0, 7]) + REQ + client_frames(),
    "server_raw_reject": bytes([8, 3]) + REQ + client_frames(),
    "server_raw_bad_version": bytes([0, 1]) + REQ.replace(b"13", b"8"),
    "server_frames": bytes([1, 5]) + client_frames(),
    "server_frames_close_on_ping": bytes([17, 9]) + client_frames(),
    "server_unmasked": bytes([1, 1]) + frame(1, b"Hello"),
    "server_rsv": bytes([1, 1]) + bytes([0xC1, 0x80]) + M,
    "server_small_max": bytes([5, 11]) + frame(2, bytes(65), mask=M),
    "server_fragment_too_big": bytes([5, 2]) + frame(2, bytes(40), fin=False, mask=M)
    + frame(0, bytes(40), mask=M),
    "client_raw_101_bad_accept": bytes([2, 3]) + (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") + server_frames(),
    "client_raw_404": bytes([2, 1]) + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "client_frames": bytes([3, 13]) + server_frames(),
    "client_masked": bytes([3, 1]) + frame(1, b"Hello", mask=M),
    "client_bad_utf8": bytes([3, 1]) + frame(1, b"\xed\xa0\x80"),
    "client_close_bad_code": bytes([3, 1]) + frame(8, b"\x03\xed"),
    # a 64-bit length (corpus files stay under the runner's -max_len of 64 KiB)
    "client_64bit_partial": bytes([3, 200]) + frame(2, bytes(65536))[:2000],
    "client_ping_126": bytes([3, 1]) + bytes([0x89, 0x7E, 0x00, 0x7E]) + bytes(126),
}

os.makedirs(HERE, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
