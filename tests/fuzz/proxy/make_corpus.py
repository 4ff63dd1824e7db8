#!/usr/bin/env python3
# make_corpus.py - writes the seed corpus of fuzz target "proxy" (see fuzz.c for the layout).
# SPDX-License-Identifier: GPL-3.0-or-later
import os

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)
seeds = {
    "url_socks5h": b"\x00\x07socks5h://user:p%40ss@proxy.example:1080",
    "url_socks5_v6": b"\x00\x03socks5://[::1]:9050/",
    "url_http": b"\x00\x01http://u:p@127.0.0.1:3128",
    "url_bad_pct": b"\x00\x01socks5://u%zz:p@h:1",
    "url_https": b"\x00\x01https://h:443",
    "socks_auth_ok_v4": b"\x01\x07\x05\x02\x01\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x12\x34",
    "socks_auth_fail": b"\x01\x02\x05\x02\x01\x01",
    "socks_no_method": b"\x01\x02\x05\xff",
    "socks_refused": b"\x01\x05\x05\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00",
    "socks_domain_reply": b"\x01\x01\x05\x00\x05\x00\x00\x03\x04prox\x04\x38",
    "socks_v6_reply": b"\x02\x0d\x05\x00\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x50",
    "socks_bad_atyp": b"\x02\x01\x05\x00\x05\x00\x00\x07",
    "http_200": b"\x03\x07HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n\x16\x03",
    "http_407": b"\x03\x03HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
    "http_lf": b"\x03\x01HTTP/1.0 200\n\n",
    "http_bad": b"\x03\x02HTTP/2 200\r\n\r\n",
}
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
