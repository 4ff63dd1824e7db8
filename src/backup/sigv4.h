/*
 * sigv4.h - AWS Signature Version 4 for header-signed requests, pure (no clock, no I/O).
 *
 * Follows "Create a signed AWS API request" (IAM user guide) and S3's "Signature Calculations
 * for the Authorization Header": canonical request = METHOD \n URI \n QUERY \n HEADERS \n
 * SIGNED-HEADERS \n PAYLOAD-HASH; string to sign = "AWS4-HMAC-SHA256" \n DATE \n SCOPE \n
 * hex(SHA-256(canonical request)); the signing key is the HMAC chain "AWS4"+secret -> date ->
 * region -> service -> "aws4_request".
 *
 * Why our own: libcurl 7.88's CURLOPT_AWS_SIGV4 neither sorts nor re-encodes the query string,
 * so S3 rejects any request with two query parameters out of order (e.g. a listing page).
 *
 * Canonical forms used here (S3 semantics; also what GCS's interoperability API expects):
 *   - URI: the raw path, every byte outside RFC 3986's unreserved set and '/' percent-encoded
 *     once (upper-case hex); no dot-segment normalisation, no double encoding.
 *   - Query: the query string as sent is split on '&', each name and value percent-decoded and
 *     encoded again strictly, then sorted by name, then value (byte order); "a" and "a=" both
 *     become "a=". A '+' is taken literally (encoded %2B), never as a space.
 *   - Headers: names lower-cased, values trimmed with inner runs of spaces collapsed, sorted by
 *     name; repeated names joined with ','.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_SIGV4_H
#define WG_BACKUP_SIGV4_H

#include <stddef.h>

#include "core/buf.h"

#define WG_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* x-amz-date: "YYYYMMDDTHHMMSSZ" */
#define WG_SIGV4_DATE_LEN 16
/* Largest canonical request / authorization header built (bounds every wa_buf here). */
#define WG_SIGV4_CANON_MAX (64 * 1024)
#define WG_SIGV4_AUTH_MAX  2048
/* Headers signed per request, at most. */
#define WG_SIGV4_HEADERS_MAX 16
/* SHA-256 of the empty string, the payload hash of a request without a body. */
#define WG_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct wg_sigv4_key {
    const char *access_key; /* access key id (GCS: HMAC access id) */
    const char *secret_key; /* secret access key (never logged) */
    const char *region;     /* "us-east-1"; GCS interoperability: "auto" */
    const char *service;    /* "s3" */
} wg_sigv4_key;

typedef struct wg_sigv4_header {
    const char *name;
    const char *value;
} wg_sigv4_header;

typedef struct wg_sigv4_request {
    const char *method;             /* "GET", "PUT", ... */
    const char *path;               /* raw (not encoded) absolute path, e.g. "/bucket/a b" */
    const char *query;              /* query string as sent, without '?'; NULL or "" for none */
    const wg_sigv4_header *headers; /* the headers to sign (host and x-amz-date among them) */
    size_t n_headers;
    const char *payload_hash; /* lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
} wg_sigv4_request;

/* Append s[0..n) percent-encoded (RFC 3986 unreserved kept; '/' kept when keep_slash) to out.
 * 0, WA_ELIMIT, WA_ENOMEM. The same encoding builds request URLs, so that what is sent is what
 * is signed. */
int wg_sigv4_uri_encode(wa_buf *out, const char *s, size_t n, int keep_slash);

/* The canonical request (no trailing newline) into out (reset first), and the signed-headers
 * list ("host;x-amz-date") into signed_headers (cap bytes, NUL-terminated).
 * 0, WA_EINVAL (bad input: no headers, malformed percent-escape, too many headers),
 * WA_ELIMIT (past WG_SIGV4_CANON_MAX or cap), WA_ENOMEM. */
int wg_sigv4_canonical_request(const wg_sigv4_request *r, wa_buf *out, char *signed_headers,
                               size_t cap);

/* The Authorization header value:
 *   "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, SignedHeaders=...,
 *    Signature=<64 hex>"
 * amz_date: the x-amz-date value of the request (WG_SIGV4_DATE_LEN characters); it must also
 * be among the signed headers. out: cap bytes, NUL-terminated. signature (may be NULL): the
 * 64 hex digits alone, 65 bytes. 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM, WA_ECRYPTO. */
int wg_sigv4_authorization(const wg_sigv4_key *k, const char *amz_date, const wg_sigv4_request *r,
                           char *out, size_t cap, char *signature);

/* x-amz-date for Unix time t (UTC): out needs WG_SIGV4_DATE_LEN + 1 bytes. */
void wg_sigv4_date(char *out, long long t);

#endif
