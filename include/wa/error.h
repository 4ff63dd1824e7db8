/*
 * wa/error.h - error codes of libwa.
 *
 * Every fallible function returns int: 0 on success, a negative WA_E* code on failure.
 * The codes come from one X-macro list, which also produces wa_strerror() and wa_err_name().
 * New codes are appended at the end of the list (values are stable).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_ERROR_H
#define WA_ERROR_H

#define WA_ERRNO_MAP(X)                                                                            \
    X(EAGAIN, -1, "need more input")                                                               \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(ELIMIT, -4, "size or count limit exceeded")                                                  \
    X(EPROTO, -5, "protocol violation")                                                            \
    X(ETRUNC, -6, "truncated input")                                                               \
    X(EDEPTH, -7, "nesting too deep")                                                              \
    X(ECRYPTO, -8, "decryption or authentication failed")                                          \
    X(ECERT, -9, "server certificate chain rejected")                                              \
    X(ESTATE, -10, "operation not valid in this state")                                            \
    X(ECLOSED, -11, "connection closed")                                                           \
    X(EIO, -12, "input/output error")                                                              \
    X(ETLS, -13, "TLS failure")                                                                    \
    X(ENOTFOUND, -14, "not found")                                                                 \
    X(ETIMEDOUT, -15, "timed out")                                                                 \
    X(EPROTOBUF, -16, "malformed protobuf")                                                        \
    X(ETOKEN, -17, "unknown token")                                                                \
    X(EJID, -18, "malformed JID")                                                                  \
    X(EZLIB, -19, "decompression failed")                                                          \
    X(EHTTP, -20, "bad HTTP upgrade")                                                              \
    X(ECONNREFUSED, -21, "connection refused")                                                     \
    X(EDNS, -22, "name resolution failed")                                                         \
    X(ESTORE, -23, "storage failure")                                                              \
    X(EEXIST, -24, "already exists")                                                               \
    X(EUNSUPPORTED, -25, "not supported")                                                          \
    X(EPROXY, -26, "proxy refused or failed the connection")                                       \
    X(EPROXYAUTH, -27, "proxy authentication failed")

typedef enum wa_err {
    WA_OK = 0,
#define WA__ERR_ENUM(name, value, text) WA_##name = (value),
    WA_ERRNO_MAP(WA__ERR_ENUM)
#undef WA__ERR_ENUM
} wa_err;

/* Human-readable text for a code; never NULL (unknown codes give "unknown error"). */
const char *wa_strerror(int err);

/* Symbolic name ("WA_EPROTO"); never NULL. */
const char *wa_err_name(int err);

#endif
