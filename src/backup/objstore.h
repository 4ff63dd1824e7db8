/*
 * objstore.h - where backup objects live: a small asynchronous interface (put, get, list,
 * delete an object by key) with three implementations:
 *
 *   local  a directory (objstore_local.c; file work on libuv's thread pool, writes atomic:
 *          temporary file, fsync, rename)
 *   s3     any S3-compatible store over HTTP, path-style URLs, SigV4 (objstore_http.c)
 *   cloud  Google Cloud Storage's XML API (the same client: S3's wire format), authenticated
 *          by an OAuth2 bearer token (metadata server or service-account key, token.h) or by
 *          HMAC keys with SigV4 (GCS interoperability)
 *
 * Keys are relative to the store's prefix ("s1/000000000003-20250101T120000Z.wgb"); the store
 * adds "PREFIX/" in front. Every callback runs later on the loop thread, never inside the call
 * that started the operation. A call returning an error started nothing (no callback).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_OBJSTORE_H
#define WG_BACKUP_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "curluv/curluv.h"

/* Longest key (S3's limit is 1024 bytes, prefix included). */
#define WG_OBJ_KEY_MAX 1024
/* Longest bucket name and prefix. */
#define WG_OBJ_BUCKET_MAX 222
#define WG_OBJ_PREFIX_MAX 512
/* Entries one list may return (across pages). */
#define WG_OBJ_LIST_MAX 100000
/* Reason text attached to a failed operation. */
#define WG_OBJ_ERROR_MAX 256

typedef struct wg_objstore wg_objstore;

typedef struct wg_obj_entry {
    char *key; /* relative to the store's prefix */
    uint64_t size;
} wg_obj_entry;

typedef struct wg_obj_result {
    int rc;            /* 0, WA_ENOTFOUND (get of a missing key), WA_EIO, WA_ELIMIT, ... */
    long http_status;  /* last HTTP status (0: none, or the local store) */
    const char *error; /* "" on success; else a reason for the log (never holds a secret) */
    wa_buf *data;      /* get: the object (the callback may steal it with wa_buf_steal) */
    const wg_obj_entry *entries; /* list: sorted by key */
    size_t n_entries;
    double seconds; /* wall time of the operation, retries included */
} wg_obj_result;

typedef void (*wg_obj_cb)(const wg_obj_result *r, void *user_data);

/* Start an operation. key: relative, 1..WG_OBJ_KEY_MAX bytes, no leading '/', no "..".
 * put: data is borrowed until the callback. get: objects above max bytes fail with
 * WA_ELIMIT. list: every key starting with prefix ("" = all). del: a missing key is success.
 * 0 (the callback will run) or WA_EINVAL / WA_ENOMEM / WA_ESTATE (closing). */
int wg_objstore_put(wg_objstore *s, const char *key, const uint8_t *data, size_t len, wg_obj_cb cb,
                    void *user_data);
int wg_objstore_get(wg_objstore *s, const char *key, size_t max, wg_obj_cb cb, void *user_data);
int wg_objstore_list(wg_objstore *s, const char *prefix, wg_obj_cb cb, void *user_data);
int wg_objstore_del(wg_objstore *s, const char *key, wg_obj_cb cb, void *user_data);

/* "local", "s3" or "cloud". */
const char *wg_objstore_name(const wg_objstore *s);
/* Where objects go, for logs: "/data/backups", "s3://bucket/prefix", "gs://bucket/prefix". */
const char *wg_objstore_where(const wg_objstore *s);

/* Abort what is running (no callbacks follow), close the store's handles; closed(user_data)
 * (may be NULL) runs when everything is released (possibly before this returns). Local operations
 * already running on the thread pool finish first (their results are dropped). NULL allowed (closed
 * not called). */
void wg_objstore_close(wg_objstore *s, void (*closed)(void *user_data), void *user_data);

/* ---- implementations ---- */

/* A directory (created 0700 if missing). 0 and *out; WA_EINVAL, WA_EIO, WA_ENOMEM. */
int wg_objstore_local_new(uv_loop_t *loop, const char *dir, wg_objstore **out);

enum wg_obj_auth { WG_OBJ_AUTH_SIGV4 = 1, WG_OBJ_AUTH_BEARER = 2 };

struct wg_token_source;

typedef struct wg_objstore_http_options {
    const char *kind;     /* "s3" or "cloud" (names and logs only) */
    const char *endpoint; /* "https://host[:port]" (no path); required */
    const char *bucket;   /* required */
    const char *prefix;   /* "" or NULL: none; else without leading or trailing '/' */
    int auth;             /* enum wg_obj_auth */
    /* SigV4 */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL: none (else sent as x-amz-security-token) */
    const char *region;        /* "us-east-1"; GCS HMAC: "auto" */
    /* Bearer: borrowed, must outlive the store */
    struct wg_token_source *tokens;
    const char *ca_file;         /* NULL: system CAs */
    unsigned timeout_ms;         /* one HTTP attempt; 0: WG_OBJ_HTTP_TIMEOUT_MS */
    unsigned connect_timeout_ms; /* 0: WG_OBJ_HTTP_CONNECT_TIMEOUT_MS */
    unsigned retries;            /* extra attempts after a transient failure; 0: default */
    unsigned retry_base_ms;      /* first retry delay (x4 each time); 0: default */
} wg_objstore_http_options;

#define WG_OBJ_HTTP_TIMEOUT_MS         60000
#define WG_OBJ_HTTP_CONNECT_TIMEOUT_MS 10000
#define WG_OBJ_HTTP_RETRIES            2
#define WG_OBJ_HTTP_RETRY_BASE_MS      250
/* Largest answer body kept for listings and error documents. */
#define WG_OBJ_HTTP_DOC_MAX (4 * 1024 * 1024)

/* An S3-style HTTP store; cu (borrowed) carries its transfers. Strings are copied (secrets
 * wiped on close). 0 and *out; WA_EINVAL (bad endpoint/bucket/prefix/credentials),
 * WA_ENOMEM. */
int wg_objstore_http_new(uv_loop_t *loop, wg_curluv *cu, const wg_objstore_http_options *o,
                         wg_objstore **out);

/* ---- the S3 listing document (exposed for tests) ---- */

/* Parse one ListBucketResult page (ListObjects V1): append each <Contents>'s <Key> (XML
 * entities decoded) and <Size> to *v (*n entries, growing up to max), set *truncated from
 * <IsTruncated>, and copy <NextMarker> (or "" when absent) into next_marker (cap bytes).
 * 0, WA_EPROTO (not a ListBucketResult, malformed), WA_ELIMIT, WA_ENOMEM. */
int wg_obj_list_parse(const char *xml, size_t len, wg_obj_entry **v, size_t *n, size_t max,
                      int *truncated, char *next_marker, size_t cap);
void wg_obj_entries_free(wg_obj_entry *v, size_t n);
/* The <Code> and <Message> of an S3 error document, "Code: Message" into out ("" if none). */
void wg_obj_error_parse(const char *xml, size_t len, char *out, size_t cap);

/* ---- private: the implementations' vtable ---- */

typedef struct wg_objstore_ops {
    int (*put)(wg_objstore *s, const char *key, const uint8_t *data, size_t len, wg_obj_cb cb,
               void *ud);
    int (*get)(wg_objstore *s, const char *key, size_t max, wg_obj_cb cb, void *ud);
    int (*list)(wg_objstore *s, const char *prefix, wg_obj_cb cb, void *ud);
    int (*del)(wg_objstore *s, const char *key, wg_obj_cb cb, void *ud);
    void (*close)(wg_objstore *s, void (*closed)(void *), void *ud);
} wg_objstore_ops;

struct wg_objstore {
    const wg_objstore_ops *ops;
    const char *name;
    char where[WG_OBJ_BUCKET_MAX + WG_OBJ_PREFIX_MAX + 16];
    int closing;
};

/* 1 if key is acceptable (see wg_objstore_put). */
int wg_obj_key_valid(const char *key);

#endif
