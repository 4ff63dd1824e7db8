/*
 * token.h - OAuth2 access tokens for Cloud Storage, cached and refreshed before they expire.
 *
 * Two sources:
 *   metadata         GET http://HOST/computeMetadata/v1/instance/service-accounts/default/token
 *                    with "Metadata-Flavor: Google" (Cloud Run, GCE, GKE). HOST is
 *                    metadata.google.internal unless GCE_METADATA_HOST names another
 *                    (host[:port]; Google's client libraries read the same variable), which
 *                    the tests use to stand in a local endpoint.
 *   service account  a signed JWT (jwt.h) POSTed to the key file's token_uri (RFC 7523).
 *
 * Caching: a token is used until WG_TOKEN_MARGIN_S before its expiry (or half its lifetime,
 * if that is shorter), then fetched anew; a 401 from the store invalidates it at once. One
 * fetch at a time, for one consumer (the HTTP object store). Loop thread only.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_TOKEN_H
#define WG_BACKUP_TOKEN_H

#include <stdint.h>

#include "backup/jwt.h"
#include "curluv/curluv.h"

#define WG_METADATA_HOST_DEFAULT  "metadata.google.internal"
#define WG_METADATA_TOKEN_PATH    "/computeMetadata/v1/instance/service-accounts/default/token"
#define WG_TOKEN_MARGIN_S         300
#define WG_TOKEN_FETCH_TIMEOUT_MS 15000
#define WG_TOKEN_HOST_MAX         256

typedef struct wg_token_source wg_token_source;

/* Fetch finished: rc 0 (wg_token_current now answers) or WA_E* with a reason for the log. */
typedef void (*wg_token_cb)(int rc, const char *error, void *user_data);

/* Metadata-server source. host: "host[:port]" (NULL: WG_METADATA_HOST_DEFAULT). cu borrowed.
 * 0 and *out; WA_EINVAL, WA_ENOMEM. */
int wg_token_metadata_new(wg_curluv *cu, const char *host, wg_token_source **out);
/* Service-account source; takes ownership of key (also on failure). scope: NULL for
 * WG_GCS_SCOPE_RW. 0 and *out; WA_EINVAL, WA_ENOMEM. */
int wg_token_sa_new(wg_curluv *cu, wg_gsa_key *key, const char *scope, wg_token_source **out);

/* The cached token if it is still good at now_ms (Unix ms), else NULL. */
const char *wg_token_current(wg_token_source *ts, int64_t now_ms);
/* Start a fetch; cb runs on the loop when it ends. 0, WA_ESTATE (one is running),
 * WA_ENOMEM, WA_EIO. */
int wg_token_refresh(wg_token_source *ts, wg_token_cb cb, void *user_data);
/* Forget the cached token (after a 401). */
void wg_token_invalidate(wg_token_source *ts);
/* "metadata server" or "service account NAME@..." for logs. */
const char *wg_token_describe(const wg_token_source *ts);
/* Fetches done and failed so far. */
void wg_token_counts(const wg_token_source *ts, uint64_t *fetched, uint64_t *failed);
/* Abort a running fetch (no callback), wipe the token. NULL allowed. */
void wg_token_free(wg_token_source *ts);

#endif
