/*
 * tls_int.h - internals shared by the files of lib/tls (not for other layers).
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_TLS_TLS_INT_H
#define WA_TLS_TLS_INT_H

#include <openssl/ssl.h>

#include "tls/tls.h"

struct wa_tls_ctx {
    SSL_CTX *ssl_ctx; /* owned (one reference); every SSL made from it holds another */
    int is_server;
    int verify; /* client: certificate and host name verification on */
};

/* Log component name. */
#define WA__TLS_LOG "tls"

/* Most recent OpenSSL error's reason as static text ("" if none), for messages. Does not
 * clear the queue. */
const char *wa__tls_openssl_reason(void);

/* 1 if s is an IPv4 or IPv6 literal. */
int wa__tls_is_ip_literal(const char *s);

#endif
