/*
 * backup.h - session persistence for wagate: each session's libwa state is snapshotted,
 * compressed, optionally encrypted, checksummed (format.h) and kept as N generations in an
 * object store (objstore.h: a local directory, any S3-compatible store, or Google Cloud
 * Storage); at boot the newest valid generation of every session is imported before the
 * sessions connect. Configured from the environment (wg_backup_env_load; docs/backup.md).
 *
 * When a backup is made, per session:
 *   - every SESSION_BACKUP_INTERVAL ms (a periodic pass over the tracked sessions),
 *   - at once on wg_backup_request (the daemon calls it after a pairing and after prekey
 *     uploads: losing those would cost a re-pairing or undecryptable messages),
 *   - on wg_backup_flush (SIGTERM, after the sessions stopped).
 * A backup is uploaded only when the snapshot differs from the last one uploaded (SHA-256 of
 * the plaintext), and only for paired accounts. Objects are named
 *   PREFIX/SESSION/GGGGGGGGGGGG-YYYYMMDDTHHMMSSZ.wgb
 * (G: generation number, 12 digits, so names sort by generation); after an upload the oldest
 * beyond N are deleted.
 *
 * Snapshots and restores use a wa_store connection of our own on the same file (libwa.db,
 * WAL), used on libuv's thread pool one job at a time: the loop never waits for SQLite, zlib
 * or AES. Uploads and downloads use libcurl multi on the loop (src/curluv).
 *
 * Restore (wg_backup_restore): list the store, group objects by session, skip sessions that
 * exist locally (the local state is never older than its backup), then for each other one
 * download generations newest first until one decodes, checks out and imports
 * (wa_store_restore); an unusable object is logged by name with the reason, and the previous
 * generation is tried.
 *
 * Loop thread only, except where said.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_BACKUP_H
#define WG_BACKUP_BACKUP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "backup/format.h"
#include "backup/objstore.h"
#include "config.h"
#include "core/buf.h"

#define WG_BACKUP_DEFAULT_GENERATIONS 5
#define WG_BACKUP_GENERATIONS_MAX     100
#define WG_BACKUP_SESSION_MAX         64 /* WG_SESSION_NAME_MAX */
#define WG_BACKUP_SUFFIX              ".wgb"
/* SIGTERM flush: default time allowed (Cloud Run kills 10 s after SIGTERM). */
#define WG_BACKUP_FLUSH_TIMEOUT_MS 6000
/* Tracked sessions, at most (WG_SESSIONS_MAX). */
#define WG_BACKUP_SESSIONS_MAX 100000

/* ---- configuration from the environment ---- */

enum wg_backup_gcs_auth {
    WG_GCS_AUTH_METADATA = 0, /* default: the metadata server (Cloud Run) */
    WG_GCS_AUTH_KEYFILE,      /* GOOGLE_APPLICATION_CREDENTIALS */
    WG_GCS_AUTH_HMAC          /* GCS_HMAC_ACCESS_ID / GCS_HMAC_SECRET */
};

#define WG_BACKUP_ENV_STR 1024

typedef struct wg_backup_env {
    int storage;                    /* SESSION_STORAGE_TYPE (enum wg_storage_type) */
    unsigned interval_ms;           /* SESSION_BACKUP_INTERVAL */
    unsigned generations;           /* SESSION_BACKUP_GENERATIONS */
    char local_dir[PATH_MAX];       /* SESSION_BACKUP_DIR, default DATA_DIR/backups */
    char tmp_dir[PATH_MAX];         /* DATA_DIR/.backup-tmp (scratch for snapshot files) */
    char store_path[PATH_MAX];      /* DATA_DIR/libwa.db */
    uint8_t key[WG_BACKUP_KEY_LEN]; /* SESSION_ENCRYPTION_KEY (when key_set) */
    int key_set;
    /* s3 and cloud */
    char endpoint[256]; /* S3_ENDPOINT / GCS_ENDPOINT */
    char bucket[WG_OBJ_BUCKET_MAX + 1];
    char prefix[WG_OBJ_PREFIX_MAX + 1];
    char region[64];
    char access_key[256];                     /* S3_ACCESS_KEY_ID / GCS_HMAC_ACCESS_ID */
    char secret_key[256];                     /* S3_SECRET_ACCESS_KEY / GCS_HMAC_SECRET (secret) */
    char session_token[WG_BACKUP_ENV_STR];    /* S3_SESSION_TOKEN (secret) */
    int gcs_auth;                             /* enum wg_backup_gcs_auth */
    char credentials_file[WG_BACKUP_ENV_STR]; /* GOOGLE_APPLICATION_CREDENTIALS */
    char metadata_host[256];                  /* GCE_METADATA_HOST */
    char ca_file[WG_BACKUP_ENV_STR];          /* SESSION_BACKUP_CA_FILE */
} wg_backup_env;

/*
 * Read the backup variables (docs/backup.md). storage_type and interval_ms come from the
 * already-parsed wg_config (SESSION_STORAGE_TYPE, SESSION_BACKUP_INTERVAL); data_dir is
 * DATA_DIR. get NULL: getenv. Strict like wg_config_load: 0, or WA_EINVAL with a message
 * naming the variable in err (secrets never quoted). On failure *e is wiped.
 */
int wg_backup_env_load(wg_backup_env *e, int storage_type, unsigned interval_ms,
                       const char *data_dir, wg_getenv_cb get, void *user_data, char *err,
                       size_t errlen);
void wg_backup_env_wipe(wg_backup_env *e);

/* ---- the engine ---- */

typedef struct wg_backup wg_backup;

typedef struct wg_backup_options {
    /* Tests: the clock for object names and headers (NULL: real time), in Unix ms. */
    int64_t (*now_ms)(void *user_data);
    void *user_data;
} wg_backup_options;

/* Build the configured object store (and its token source) and the engine, and start the
 * periodic timer. env is copied (secrets wiped on close). opts may be NULL.
 * 0 and *out; WA_EINVAL (bad configuration; logged), WA_EIO (service-account key unreadable,
 * directories), WA_ENOMEM. */
int wg_backup_open(uv_loop_t *loop, const wg_backup_env *env, const wg_backup_options *opts,
                   wg_backup **out);

/* Include a session in the periodic passes (idempotent). 0, WA_EINVAL (bad name),
 * WA_ELIMIT, WA_ENOMEM. */
int wg_backup_track(wg_backup *b, const char *session);
/* Set the metadata stored with the session's backups (the daemon's session row as JSON, so
 * that a restore into an empty DATA_DIR can recreate it) and track the session. Copied (at
 * most WG_BACKUP_META_MAX bytes); a change makes the next pass upload. Pushed rather than
 * asked for, so that the SIGTERM flush needs nothing from the daemon's (closing) registry.
 * 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM, WA_ESTATE. */
int wg_backup_set_meta(wg_backup *b, const char *session, const void *meta, size_t len);
/* Stop backing the session up. purge != 0 also deletes all its objects (after a logout or a
 * delete: a restore must not bring the device back). 0 or WA_EINVAL. */
int wg_backup_untrack(wg_backup *b, const char *session, int purge);
/* Back the session up now (tracking it if needed): after a pairing, after prekey uploads.
 * Coalesced with a backup of it already queued; one running is followed by another.
 * 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM, WA_ESTATE (closing). */
int wg_backup_request(wg_backup *b, const char *session);

/* Back up every tracked session that changed, then call done(uploaded_all, user_data):
 * uploaded_all = 1 if everything finished within timeout_ms (0: WG_BACKUP_FLUSH_TIMEOUT_MS)
 * without failure. For SIGTERM, after the sessions stopped and before wg_backup_close.
 * 0 or WA_ESTATE (a flush is running, or closing). */
int wg_backup_flush(wg_backup *b, unsigned timeout_ms, void (*done)(int ok, void *user_data),
                    void *user_data);

typedef struct wg_backup_restore_report {
    unsigned sessions;  /* sessions found in the store (or asked for) */
    unsigned restored;  /* imported */
    unsigned skipped;   /* present locally already */
    unsigned failed;    /* no usable generation, or the import failed */
    unsigned fallbacks; /* unusable objects passed over for an older generation */
    double seconds;
} wg_backup_restore_report;

typedef struct wg_backup_restore_options {
    /* Sessions to restore; NULL: every session found in the store. */
    const char *const *sessions;
    size_t n_sessions;
    /* One session imported: its name, the metadata stored with it (the daemon recreates its
     * session row from it), the object used. Optional. */
    void (*restored)(const char *session, const uint8_t *meta, size_t meta_len, const char *object,
                     void *user_data);
    /* Everything done (always called once, unless the engine is closed first). */
    void (*done)(const wg_backup_restore_report *rep, void *user_data);
    void *user_data;
} wg_backup_restore_options;

/* Restore at boot, before the sessions start. 0 (done will be called) or WA_ESTATE (another
 * restore or a backup is running: call it first thing after wg_backup_open), WA_EINVAL. */
int wg_backup_restore(wg_backup *b, const wg_backup_restore_options *o);

typedef struct wg_backup_stats {
    uint64_t backups_ok;       /* objects uploaded */
    uint64_t backups_failed;   /* backups that failed (snapshot, encode or upload) */
    uint64_t unchanged;        /* passes that found a session unchanged (nothing uploaded) */
    uint64_t skipped;          /* sessions not paired (nothing to back up) */
    uint64_t bytes_uploaded;   /* object bytes, total */
    uint64_t last_bytes;       /* size of the last object uploaded */
    uint64_t last_plain_bytes; /* its plaintext size (snapshot + meta) */
    int64_t last_success_ms;   /* Unix ms of the last upload, 0 = never */
    double last_duration_s;    /* snapshot to upload done, last success */
    double duration_sum_s;     /* sum over successes */
    uint64_t deleted;          /* old generations deleted */
    uint64_t delete_failed;
    uint64_t restored;          /* sessions restored */
    uint64_t restore_failed;    /* sessions with no usable generation */
    uint64_t restore_fallbacks; /* unusable objects skipped in favour of an older one */
    uint64_t token_fetches;     /* OAuth2 tokens fetched (cloud) */
    uint64_t token_failures;
    unsigned sessions; /* tracked */
    unsigned queued;   /* waiting for a backup */
    unsigned running;  /* 1 while a job (backup, purge, restore) is in progress */
} wg_backup_stats;

void wg_backup_get_stats(const wg_backup *b, wg_backup_stats *out);
/* The store: "local", "s3" or "cloud", and where (for logs, /ready). */
const char *wg_backup_store_name(const wg_backup *b);
const char *wg_backup_store_where(const wg_backup *b);

/* Stop timers, abort transfers, close the store connection; closed(user_data) runs once
 * everything is released (possibly before this returns). A job running on the thread pool
 * finishes first; its result is dropped. NULL allowed. */
void wg_backup_close(wg_backup *b, void (*closed)(void *user_data), void *user_data);

/* ---- object names (exposed for tests) ---- */

/* "SESSION/GGGGGGGGGGGG-YYYYMMDDTHHMMSSZ.wgb" into out (cap bytes). 0 or WA_ELIMIT. */
int wg_backup_object_name(char *out, size_t cap, const char *session, uint64_t gen,
                          int64_t time_ms);
/* Parse a relative key: 0 and session (cap bytes) and *gen; WA_EINVAL if not one of ours. */
int wg_backup_object_parse(const char *key, char *session, size_t cap, uint64_t *gen);

#endif
