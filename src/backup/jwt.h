/*
 * jwt.h - Google service-account credentials: the JSON key file, the signed JWT assertion
 * (RS256) exchanged for an OAuth2 access token, and the token response. Pure: no clock, no I/O
 * except reading the key file.
 *
 * References: RFC 7519 (JWT), RFC 7515 (JWS compact form, base64url without padding), RFC 7523
 * (JWT bearer grant: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer), Google's
 * "Using OAuth 2.0 for Server to Server Applications" (claims iss, scope, aud = token_uri,
 * iat, exp <= iat + 3600; header kid = private_key_id). RS256 = RSASSA-PKCS1-v1_5 with
 * SHA-256 (RFC 7518 3.3), deterministic: a fixed key and time give a fixed assertion.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_JWT_H
#define WG_BACKUP_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Largest key file read, and the bounds of its fields. */
#define WG_GSA_FILE_MAX  (64 * 1024)
#define WG_GSA_EMAIL_MAX 256
#define WG_GSA_URI_MAX   512
#define WG_GSA_KID_MAX   128
/* Lifetime asked for an assertion (Google's maximum). */
#define WG_JWT_LIFETIME_S 3600
/* Scope for object read/write in Cloud Storage. */
#define WG_GCS_SCOPE_RW "https://www.googleapis.com/auth/devstorage.read_write"
/* Default token endpoint when the key file has none. */
#define WG_GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
/* Access tokens and their JSON answers. */
#define WG_TOKEN_MAX      4096
#define WG_TOKEN_JSON_MAX (64 * 1024)

typedef struct wg_gsa_key wg_gsa_key;

/* Parse a service-account key (JSON with type "service_account", client_email, private_key
 * PEM, optional private_key_id and token_uri). 0 and *out; WA_EINVAL with a reason in why
 * (static text) for a malformed file, WA_ENOMEM. */
int wg_gsa_key_parse(const char *json, size_t len, wg_gsa_key **out, const char **why);
/* Read and parse the file at path. Also WA_EIO (unreadable; why says so). */
int wg_gsa_key_load(const char *path, wg_gsa_key **out, const char **why);
/* NULL allowed; the private key is freed by OpenSSL (which clears it). */
void wg_gsa_key_free(wg_gsa_key *k);
const char *wg_gsa_key_email(const wg_gsa_key *k);
const char *wg_gsa_key_token_uri(const wg_gsa_key *k);

/* The assertion "b64url(header).b64url(claims).b64url(RS256 signature)" into out (reset
 * first). header {"alg":"RS256","typ":"JWT"[,"kid":...]}, claims {"iss":email,"scope":scope,
 * "aud":token_uri,"iat":now,"exp":now+WG_JWT_LIFETIME_S}, serialised in that order without
 * spaces. 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM, WA_ECRYPTO. */
int wg_jwt_assertion(const wg_gsa_key *k, const char *scope, int64_t now, wa_buf *out);

/* The form body of the token request for an assertion:
 * "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=..." */
int wg_jwt_token_request_body(const char *assertion, wa_buf *out);

/* Parse {"access_token": "...", "expires_in": N, "token_type": "Bearer"} (the answer of both
 * the token endpoint and the metadata server). token: cap bytes. 0 and token, *expires_in
 * (seconds, > 0); WA_EINVAL (malformed, no token, not Bearer), WA_ELIMIT (token too long). */
int wg_token_response_parse(const char *json, size_t len, char *token, size_t cap,
                            int64_t *expires_in);

#endif
