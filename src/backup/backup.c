/*
 * backup.c - the backup engine (see backup.h for what is backed up when, and the names).
 *
 * One pipeline: at most one job at a time, whatever its kind (a session's backup, the purge of
 * a session's objects, the boot restore). A backup job is
 *   loop:  copy the session's meta -> thread pool: snapshot (own wa_store connection), read,
 * payload, hash, compare with the last upload, zlib + AES-GCM -> loop: list the session's objects
 *          if not known yet (to number the generation) -> put -> delete generations beyond N.
 * Bounded memory (one session's snapshot and object at a time), and no two jobs ever use the
 * wa_store connection together. The queue holds each session once; a request for a session
 * whose backup is running sets `again`, so the state after the request is always uploaded.
 *
 * Every callback into this file runs on the loop; API calls never call back inside themselves
 * (the pipeline is started from a 0 ms timer).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup/token.h"
#include "backup/sigv4.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"
#include "wa/store.h"

#define COMPONENT "backup"
/* Page cache of our own store connection (KiB): it only copies rows. */
#define STORE_CACHE_KIB 256
/* Longest object key we make: session (64) + '/' + 12+ digits + '-' + 16 + ".wgb". */
#define OBJ_NAME_MAX 128

typedef struct sess {
    struct sess *next;  /* all sessions */
    struct sess *qnext; /* run queue */
    char name[WG_BACKUP_SESSION_MAX + 1];
    int tracked;
    int queued;
    int busy;
    int again;
    int purge; /* delete every object of it (queued job) */
    uint8_t last_hash[WA_SHA256_LEN];
    int have_hash;
    int gens_known;
    uint64_t next_gen;
    char **objs; /* known object keys, oldest first */
    size_t n_objs;
    uint8_t *meta; /* wg_backup_set_meta (secret: may hold options) */
    size_t meta_len;
} sess;

enum { JOB_BACKUP = 1, JOB_PURGE, JOB_RESTORE_CHECK, JOB_RESTORE_IMPORT };
enum {
    OUT_ERROR = 0,
    OUT_NOACCOUNT,
    OUT_UNPAIRED,
    OUT_UNCHANGED,
    OUT_ENCODED,
    OUT_RESTORED,
    OUT_UNUSABLE,
    OUT_EXISTS
};

typedef struct rsess {
    char name[WG_BACKUP_SESSION_MAX + 1];
    char **objs; /* newest first */
    uint64_t *gens;
    size_t n;
    size_t tried;
    int exists;
} rsess;

typedef struct restore_state {
    wg_backup_restore_options o;
    char **want; /* copy of o.sessions */
    size_t n_want;
    rsess *rs;
    size_t n_rs, cur;
    wg_backup_restore_report rep;
    uint64_t start_ns;
} restore_state;

typedef struct job job;

struct wg_backup {
    uv_loop_t *loop;
    wg_backup_env env;
    wg_backup_options opts;
    wg_backup_key key;
    int has_key;
    wg_curluv *cu;
    wg_token_source *tokens;
    wg_objstore *store;
    wa_store *db; /* ours; touched by thread-pool jobs only, one at a time */
    uv_timer_t tick, kick, flush_timer;
    sess *sessions;
    unsigned n_sessions;
    sess *qhead, *qtail;
    unsigned queued;
    job *cur;
    restore_state *restore;
    int flushing;
    int flush_failed;
    void (*flush_done)(int, void *);
    void *flush_ud;
    wg_backup_stats st;
    int closing;
    unsigned pending; /* handles, pool jobs and closes still to come back before the free */
    void (*closed)(void *);
    void *closed_ud;
};

struct job {
    uv_work_t work;
    wg_backup *b;
    int kind;
    sess *s;
    char name[WG_BACKUP_SESSION_MAX + 1];
    /* backup */
    wa_buf meta;
    uint8_t prev_hash[WA_SHA256_LEN];
    int have_prev;
    int64_t now_ms;
    uint8_t hash[WA_SHA256_LEN];
    size_t plain_len;
    wa_buf object;
    char key[OBJ_NAME_MAX];
    size_t purge_i;
    char **purge_keys;
    size_t n_purge;
    /* restore: the downloaded object in, the meta out */
    wa_buf data;
    /* results */
    int outcome;
    int rc;
    const char *why;
    uint64_t start_ns;
    int in_pool; /* queued on the thread pool: after_work owns it */
};

static int64_t real_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(wg_backup *b)
{
    return b->opts.now_ms ? b->opts.now_ms(b->opts.user_data) : real_now_ms();
}

static void release(wg_backup *b);
static void schedule(wg_backup *b);

/* ---- names ---- */

static int session_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0, i;

    if (n == 0 || n > WG_BACKUP_SESSION_MAX || s[0] == '-' || s[0] == '_')
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

int wg_backup_object_name(char *out, size_t cap, const char *session, uint64_t gen, int64_t time_ms)
{
    char date[WG_SIGV4_DATE_LEN + 1];
    int n;

    wg_sigv4_date(date, time_ms / 1000);
    n = snprintf(out, cap, "%s/%012" PRIu64 "-%s" WG_BACKUP_SUFFIX, session, gen, date);
    return n < 0 || (size_t)n >= cap ? WA_ELIMIT : 0;
}

int wg_backup_object_parse(const char *key, char *session, size_t cap, uint64_t *gen)
{
    const char *slash = strchr(key, '/'), *p, *dash;
    size_t sl, i;
    uint64_t g = 0;

    if (!slash)
        return WA_EINVAL;
    sl = (size_t)(slash - key);
    if (sl == 0 || sl >= cap || sl > WG_BACKUP_SESSION_MAX)
        return WA_EINVAL;
    p = slash + 1;
    dash = strchr(p, '-');
    if (!dash || dash == p || dash - p > 19)
        return WA_EINVAL;
    for (i = 0; p + i < dash; i++) {
        if (p[i] < '0' || p[i] > '9')
            return WA_EINVAL;
        g = g * 10 + (uint64_t)(p[i] - '0');
    }
    /* "-YYYYMMDDTHHMMSSZ.wgb" and nothing after */
    if (strlen(dash + 1) != WG_SIGV4_DATE_LEN + strlen(WG_BACKUP_SUFFIX) ||
        strcmp(dash + 1 + WG_SIGV4_DATE_LEN, WG_BACKUP_SUFFIX) != 0 || dash[1 + 8] != 'T' ||
        dash[WG_SIGV4_DATE_LEN] != 'Z')
        return WA_EINVAL;
    memcpy(session, key, sl);
    session[sl] = '\0';
    if (!session_name_ok(session))
        return WA_EINVAL;
    *gen = g;
    return 0;
}

/* ---- sessions ---- */

static sess *sess_find(wg_backup *b, const char *name)
{
    sess *s;

    for (s = b->sessions; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static void objs_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        wa_free(v[i]);
    wa_free(v);
}

static void sess_free(sess *s)
{
    objs_free(s->objs, s->n_objs);
    if (s->meta) {
        wa_wipe(s->meta, s->meta_len);
        wa_free(s->meta);
    }
    wa_free(s);
}

static int sess_get(wg_backup *b, const char *name, sess **out)
{
    sess *s;

    if (!session_name_ok(name))
        return WA_EINVAL;
    s = sess_find(b, name);
    if (!s) {
        if (b->n_sessions >= WG_BACKUP_SESSIONS_MAX)
            return WA_ELIMIT;
        s = wa_calloc(1, sizeof *s);
        if (!s)
            return WA_ENOMEM;
        memcpy(s->name, name, strlen(name) + 1);
        s->next = b->sessions;
        b->sessions = s;
        b->n_sessions++;
    }
    *out = s;
    return 0;
}

static void sess_remove(wg_backup *b, sess *s)
{
    sess **pp;

    for (pp = &b->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            b->n_sessions--;
            sess_free(s);
            return;
        }
    }
}

static void enqueue(wg_backup *b, sess *s)
{
    if (s->busy) {
        s->again = 1;
        return;
    }
    if (s->queued)
        return;
    s->queued = 1;
    s->qnext = NULL;
    if (b->qtail)
        b->qtail->qnext = s;
    else
        b->qhead = s;
    b->qtail = s;
    b->queued++;
}

static sess *dequeue(wg_backup *b)
{
    sess *s = b->qhead;

    if (!s)
        return NULL;
    b->qhead = s->qnext;
    if (!b->qhead)
        b->qtail = NULL;
    s->qnext = NULL;
    s->queued = 0;
    b->queued--;
    return s;
}

/* Set what we know of a session's objects from a listing (keys relative, any order). */
static int sess_set_objs(sess *s, const wg_obj_entry *e, size_t n)
{
    char name[WG_BACKUP_SESSION_MAX + 1];
    uint64_t gen, maxgen = 0;
    char **v = NULL;
    size_t i, k = 0;

    for (i = 0; i < n; i++)
        if (wg_backup_object_parse(e[i].key, name, sizeof name, &gen) == 0 &&
            strcmp(name, s->name) == 0)
            k++;
    if (k) {
        v = wa_calloc(k, sizeof *v);
        if (!v)
            return WA_ENOMEM;
    }
    k = 0;
    for (i = 0; i < n; i++) {
        if (wg_backup_object_parse(e[i].key, name, sizeof name, &gen) != 0 ||
            strcmp(name, s->name) != 0)
            continue;
        v[k] = wa_malloc(strlen(e[i].key) + 1);
        if (!v[k]) {
            objs_free(v, k);
            return WA_ENOMEM;
        }
        memcpy(v[k], e[i].key, strlen(e[i].key) + 1);
        k++;
        if (gen > maxgen)
            maxgen = gen;
    }
    /* oldest first: by generation, which the 12-digit names give in byte order (and a
     * longer number is a larger one) */
    for (i = 1; i < k; i++) {
        char *x = v[i];
        size_t j = i;
        while (j > 0 && (strlen(v[j - 1]) > strlen(x) ||
                         (strlen(v[j - 1]) == strlen(x) && strcmp(v[j - 1], x) > 0))) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    objs_free(s->objs, s->n_objs);
    s->objs = v;
    s->n_objs = k;
    s->next_gen = maxgen + 1;
    s->gens_known = 1;
    return 0;
}

/* ---- thread-pool work ---- */

static int open_db(wg_backup *b)
{
    wa_store_options so = {STORE_CACHE_KIB};

    if (b->db)
        return 0;
    return wa_store_open(b->env.store_path, &so, &b->db);
}

static int read_file(const char *path, wa_buf *out)
{
    struct stat st;
    size_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = WA_EIO;

    if (fd < 0)
        return WA_EIO;
    if (fstat(fd, &st) != 0)
        goto out;
    if ((uint64_t)st.st_size > out->max) {
        rc = WA_ELIMIT;
        goto out;
    }
    if ((rc = wa_buf_reserve(out, (size_t)st.st_size + 1)))
        goto out;
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, out->data + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = WA_EIO;
            goto out;
        }
        off += (size_t)n;
    }
    out->len = off;
    rc = 0;
out:
    close(fd);
    return rc;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    size_t off = 0;
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return WA_EIO;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(path);
            return WA_EIO;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

static void unlink_snap(const char *path)
{
    char j[PATH_MAX + 16];

    unlink(path);
    snprintf(j, sizeof j, "%s-journal", path);
    unlink(j);
}

static void work_backup(job *j)
{
    wg_backup *b = j->b;
    char path[PATH_MAX];
    wa_buf snap, plain;
    int64_t id;
    int rc;

    wa_buf_init(&snap, WG_BACKUP_PLAIN_MAX);
    wa_buf_init(&plain, WG_BACKUP_PLAIN_MAX);
    j->outcome = OUT_ERROR;
    if ((rc = open_db(b))) {
        j->why = "cannot open the session store";
        goto out;
    }
    rc = wa_store_account(b->db, j->name, 0, &id);
    if (rc == WA_ENOTFOUND) {
        j->outcome = OUT_NOACCOUNT;
        rc = 0;
        goto out;
    }
    if (rc) {
        j->why = "store lookup failed";
        goto out;
    }
    if (!wa_store_account_paired(b->db, id)) {
        j->outcome = OUT_UNPAIRED;
        goto out;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s.snap", b->env.tmp_dir, j->name) >= sizeof path) {
        rc = WA_ELIMIT;
        j->why = "scratch path too long";
        goto out;
    }
    unlink_snap(path);
    if ((rc = wa_store_snapshot(b->db, id, path))) {
        j->why = "snapshot failed";
        goto out;
    }
    rc = read_file(path, &snap);
    unlink_snap(path);
    if (rc) {
        j->why = rc == WA_ELIMIT ? "snapshot above the size limit" : "cannot read the snapshot";
        goto out;
    }
    if ((rc = wg_backup_payload_build(&plain, j->meta.data, j->meta.len, snap.data, snap.len))) {
        j->why = "payload above the size limit";
        goto out;
    }
    j->plain_len = plain.len;
    if ((rc = wa_sha256(j->hash, plain.data, plain.len)))
        goto out;
    if (j->have_prev && wa_ct_equal(j->hash, j->prev_hash, WA_SHA256_LEN)) {
        j->outcome = OUT_UNCHANGED;
        goto out;
    }
    rc = wg_backup_encode(&j->object, b->has_key ? &b->key : NULL, j->now_ms, plain.data, plain.len,
                          NULL);
    if (rc) {
        j->why = "compression or encryption failed";
        goto out;
    }
    j->outcome = OUT_ENCODED;
out:
    j->rc = rc;
    wa_buf_wipe_cleanup(&snap);
    wa_buf_wipe_cleanup(&plain);
}

static void work_restore_check(job *j)
{
    wg_backup *b = j->b;
    restore_state *r = b->restore;
    size_t i;
    int64_t id;
    int rc;

    if ((j->rc = open_db(b))) {
        j->why = "cannot open the session store";
        return;
    }
    for (i = 0; i < r->n_rs; i++) {
        rc = wa_store_account(b->db, r->rs[i].name, 0, &id);
        r->rs[i].exists = rc == 0;
    }
}

static void work_restore_import(job *j)
{
    wg_backup *b = j->b;
    char path[PATH_MAX];
    wa_buf plain;
    wa_slice meta, dbs;
    int64_t id;
    int rc;

    wa_buf_init(&plain, WG_BACKUP_PLAIN_MAX);
    j->outcome = OUT_UNUSABLE;
    rc = wg_backup_decode(&plain, b->has_key ? &b->key : NULL, j->data.data, j->data.len, NULL,
                          &j->why);
    if (rc)
        goto out;
    if (wg_backup_payload_split(plain.data, plain.len, &meta, &dbs) != 0) {
        rc = WA_EPROTO;
        j->why = "malformed payload";
        goto out;
    }
    if ((rc = open_db(b))) {
        j->outcome = OUT_ERROR;
        j->why = "cannot open the session store";
        goto out;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s.restore", b->env.tmp_dir, j->name) >=
        sizeof path) {
        rc = WA_ELIMIT;
        j->outcome = OUT_ERROR;
        j->why = "scratch path too long";
        goto out;
    }
    unlink_snap(path);
    if ((rc = write_file(path, dbs.ptr, dbs.len))) {
        j->outcome = OUT_ERROR;
        j->why = "cannot write the snapshot file";
        goto out;
    }
    rc = wa_store_restore(b->db, path, j->name, &id);
    unlink_snap(path);
    if (rc == WA_EEXIST) {
        j->outcome = OUT_EXISTS;
        goto out;
    }
    if (rc == WA_EINVAL) {
        j->why = "the database inside is not a libwa snapshot";
        goto out;
    }
    if (rc) {
        j->outcome = OUT_ERROR;
        j->why = "import into the session store failed";
        goto out;
    }
    wa_buf_reset(&j->meta);
    if ((rc = wa_buf_append(&j->meta, meta.ptr, meta.len))) {
        j->outcome = OUT_ERROR;
        j->why = "out of memory";
        goto out;
    }
    j->outcome = OUT_RESTORED;
out:
    j->rc = rc;
    wa_buf_wipe_cleanup(&plain);
}

static void on_work(uv_work_t *w)
{
    job *j = w->data;

    switch (j->kind) {
    case JOB_BACKUP:
        work_backup(j);
        break;
    case JOB_RESTORE_CHECK:
        work_restore_check(j);
        break;
    case JOB_RESTORE_IMPORT:
        work_restore_import(j);
        break;
    default:
        break;
    }
}

/* ---- jobs ---- */

static job *job_new(wg_backup *b, int kind, sess *s, const char *name)
{
    job *j = wa_calloc(1, sizeof *j);

    if (!j)
        return NULL;
    j->b = b;
    j->kind = kind;
    j->s = s;
    if (name)
        snprintf(j->name, sizeof j->name, "%s", name);
    wa_buf_init(&j->meta, WG_BACKUP_META_MAX);
    wa_buf_init(&j->object, WG_BACKUP_OBJECT_MAX);
    wa_buf_init(&j->data, WG_BACKUP_OBJECT_MAX);
    j->work.data = j;
    j->start_ns = uv_hrtime();
    return j;
}

static void job_free(job *j)
{
    wa_buf_wipe_cleanup(&j->meta);
    wa_buf_cleanup(&j->object);
    wa_buf_cleanup(&j->data);
    objs_free(j->purge_keys, j->n_purge);
    wa_free(j);
}

static void after_work(uv_work_t *w, int status);

static int queue_work(wg_backup *b, job *j)
{
    if (uv_queue_work(b->loop, &j->work, on_work, after_work) != 0)
        return WA_EIO;
    j->in_pool = 1;
    b->pending++;
    return 0;
}

static void flush_check(wg_backup *b);

/* The running job is over: free it, let the next one start. */
static void job_end(wg_backup *b, job *j)
{
    sess *s = j->s;

    if (b->cur == j)
        b->cur = NULL;
    if (s) {
        s->busy = 0;
        if ((s->again && s->tracked) || s->purge)
            enqueue(b, s);
        s->again = 0;
        if (!s->tracked && !s->queued && !s->purge)
            sess_remove(b, s);
    }
    job_free(j);
    schedule(b);
    flush_check(b);
}

static void backup_failed(wg_backup *b, job *j, const char *what, const char *why)
{
    b->st.backups_failed++;
    if (b->flushing)
        b->flush_failed = 1;
    wa_log_warn(COMPONENT, "session %s: backup failed: %s%s%s", j->name, what, why ? ": " : "",
                why ? why : "");
    job_end(b, j);
}

/* -- retention -- */

static void retention_next(wg_backup *b, job *j);

static void on_deleted(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;
    sess *s = j->s;

    if (r->rc) {
        b->st.delete_failed++;
        wa_log_warn(COMPONENT, "session %s: cannot delete the old generation %s: %s", j->name,
                    s->objs[0], r->error);
        job_end(b, j); /* try again after the next upload */
        return;
    }
    b->st.deleted++;
    wa_free(s->objs[0]);
    memmove(s->objs, s->objs + 1, (s->n_objs - 1) * sizeof *s->objs);
    s->n_objs--;
    retention_next(b, j);
}

static void retention_next(wg_backup *b, job *j)
{
    sess *s = j->s;

    if (s->n_objs <= b->env.generations ||
        wg_objstore_del(b->store, s->objs[0], on_deleted, j) != 0) {
        job_end(b, j);
        return;
    }
}

/* -- upload -- */

static void on_put(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;
    sess *s = j->s;
    char **nv;
    double secs;

    if (r->rc) {
        backup_failed(b, j, "upload", r->error);
        return;
    }
    secs = (double)(uv_hrtime() - j->start_ns) / 1e9;
    memcpy(s->last_hash, j->hash, WA_SHA256_LEN);
    s->have_hash = 1;
    s->next_gen++;
    b->st.backups_ok++;
    b->st.bytes_uploaded += j->object.len;
    b->st.last_bytes = j->object.len;
    b->st.last_plain_bytes = j->plain_len;
    b->st.last_success_ms = real_now_ms();
    b->st.last_duration_s = secs;
    b->st.duration_sum_s += secs;
    wa_log_info(COMPONENT,
                "session %s: backed up to %s/%s (%zu bytes, %zu before compression%s, "
                "%.3f s)",
                j->name, wg_objstore_where(b->store), j->key, j->object.len, j->plain_len,
                b->has_key ? ", encrypted" : "", secs);
    nv = wa_realloc(s->objs, (s->n_objs + 1) * sizeof *nv);
    if (nv) {
        s->objs = nv;
        s->objs[s->n_objs] = wa_malloc(strlen(j->key) + 1);
        if (s->objs[s->n_objs]) {
            memcpy(s->objs[s->n_objs], j->key, strlen(j->key) + 1);
            s->n_objs++;
        }
    }
    /* the object is no longer needed while old generations are deleted */
    wa_buf_cleanup(&j->object);
    retention_next(b, j);
}

static void put_object(wg_backup *b, job *j)
{
    sess *s = j->s;
    int rc;

    if ((rc = wg_backup_object_name(j->key, sizeof j->key, s->name, s->next_gen, j->now_ms))) {
        backup_failed(b, j, "object name", wa_strerror(rc));
        return;
    }
    rc = wg_objstore_put(b->store, j->key, j->object.data, j->object.len, on_put, j);
    if (rc)
        backup_failed(b, j, "upload", wa_strerror(rc));
}

static void on_gens_listed(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;

    if (r->rc) {
        backup_failed(b, j, "listing the existing generations", r->error);
        return;
    }
    if (sess_set_objs(j->s, r->entries, r->n_entries)) {
        backup_failed(b, j, "listing the existing generations", "out of memory");
        return;
    }
    put_object(b, j);
}

static void backup_after(wg_backup *b, job *j)
{
    sess *s = j->s;
    char prefix[WG_BACKUP_SESSION_MAX + 2];
    int rc;

    switch (j->outcome) {
    case OUT_NOACCOUNT:
    case OUT_UNPAIRED:
        b->st.skipped++;
        wa_log_debug(COMPONENT, "session %s: not paired: nothing to back up", j->name);
        job_end(b, j);
        return;
    case OUT_UNCHANGED:
        b->st.unchanged++;
        wa_log_debug(COMPONENT, "session %s: unchanged since the last backup", j->name);
        job_end(b, j);
        return;
    case OUT_ENCODED:
        break;
    default:
        backup_failed(b, j, j->why ? j->why : "snapshot", wa_strerror(j->rc));
        return;
    }
    if (s->gens_known) {
        put_object(b, j);
        return;
    }
    snprintf(prefix, sizeof prefix, "%s/", s->name);
    rc = wg_objstore_list(b->store, prefix, on_gens_listed, j);
    if (rc)
        backup_failed(b, j, "listing the existing generations", wa_strerror(rc));
}

static void start_backup(wg_backup *b, sess *s)
{
    job *j = job_new(b, JOB_BACKUP, s, s->name);
    int rc;

    if (!j) {
        b->st.backups_failed++; /* the next pass tries again */
        return;
    }
    s->busy = 1;
    s->again = 0;
    b->cur = j;
    j->now_ms = now_ms(b);
    if (s->meta_len && (rc = wa_buf_append(&j->meta, s->meta, s->meta_len))) {
        backup_failed(b, j, "session metadata", wa_strerror(rc));
        return;
    }
    memcpy(j->prev_hash, s->last_hash, WA_SHA256_LEN);
    j->have_prev = s->have_hash;
    if ((rc = queue_work(b, j)))
        backup_failed(b, j, "thread pool", wa_strerror(rc));
}

/* -- purge -- */

static void purge_next(wg_backup *b, job *j);

static void on_purge_deleted(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;

    if (r->rc) {
        b->st.delete_failed++;
        wa_log_warn(COMPONENT, "session %s: cannot delete %s: %s", j->name,
                    j->purge_keys[j->purge_i], r->error);
    } else {
        b->st.deleted++;
    }
    j->purge_i++;
    purge_next(b, j);
}

static void purge_next(wg_backup *b, job *j)
{
    sess *s = j->s;

    if (j->purge_i >= j->n_purge ||
        wg_objstore_del(b->store, j->purge_keys[j->purge_i], on_purge_deleted, j) != 0) {
        if (j->purge_i >= j->n_purge)
            wa_log_info(COMPONENT, "session %s: %zu backup object(s) deleted", j->name, j->n_purge);
        objs_free(s->objs, s->n_objs);
        s->objs = NULL;
        s->n_objs = 0;
        s->gens_known = 0;
        s->have_hash = 0;
        job_end(b, j);
    }
}

static void on_purge_listed(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;
    char name[WG_BACKUP_SESSION_MAX + 1];
    uint64_t gen;
    size_t i;

    if (r->rc) {
        wa_log_warn(COMPONENT, "session %s: cannot list its backups to delete them: %s", j->name,
                    r->error);
        job_end(b, j);
        return;
    }
    j->purge_keys = r->n_entries ? wa_calloc(r->n_entries, sizeof *j->purge_keys) : NULL;
    for (i = 0; i < r->n_entries && (j->purge_keys || !r->n_entries); i++) {
        if (wg_backup_object_parse(r->entries[i].key, name, sizeof name, &gen) != 0 ||
            strcmp(name, j->name) != 0)
            continue;
        j->purge_keys[j->n_purge] = wa_malloc(strlen(r->entries[i].key) + 1);
        if (!j->purge_keys[j->n_purge])
            break;
        memcpy(j->purge_keys[j->n_purge], r->entries[i].key, strlen(r->entries[i].key) + 1);
        j->n_purge++;
    }
    purge_next(b, j);
}

static void start_purge(wg_backup *b, sess *s)
{
    char prefix[WG_BACKUP_SESSION_MAX + 2];
    job *j = job_new(b, JOB_PURGE, s, s->name);

    s->purge = 0;
    if (!j)
        return;
    s->busy = 1;
    b->cur = j;
    snprintf(prefix, sizeof prefix, "%s/", s->name);
    if (wg_objstore_list(b->store, prefix, on_purge_listed, j) != 0)
        job_end(b, j);
}

/* ---- restore ---- */

static void restore_next(wg_backup *b, job *j);

static void restore_free(restore_state *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n_rs; i++) {
        objs_free(r->rs[i].objs, r->rs[i].n);
        wa_free(r->rs[i].gens);
    }
    wa_free(r->rs);
    objs_free(r->want, r->n_want);
    wa_free(r);
}

static void restore_finish(wg_backup *b, job *j)
{
    restore_state *r = b->restore;
    wg_backup_restore_report rep = r->rep;

    rep.seconds = (double)(uv_hrtime() - r->start_ns) / 1e9;
    wa_log_info(COMPONENT,
                "restore from %s: %u session(s) found, %u restored, %u kept (present locally), "
                "%u failed, %u unusable object(s) passed over, %.3f s",
                wg_objstore_where(b->store), rep.sessions, rep.restored, rep.skipped, rep.failed,
                rep.fallbacks, rep.seconds);
    b->restore = NULL;
    if (r->o.done)
        r->o.done(&rep, r->o.user_data);
    restore_free(r);
    if (b->closing) /* closed inside done: j is the close's to free (on_store_closed) */
        return;
    job_end(b, j);
}

static void restore_import_after(wg_backup *b, job *j)
{
    restore_state *r = b->restore;
    rsess *rs = &r->rs[r->cur];
    const char *obj = rs->objs[rs->tried];
    sess *s;

    switch (j->outcome) {
    case OUT_RESTORED:
        r->rep.restored++;
        b->st.restored++;
        wa_log_info(COMPONENT, "session %s: restored from %s/%s (generation %" PRIu64 "%s)",
                    rs->name, wg_objstore_where(b->store), obj, rs->gens[rs->tried],
                    rs->tried ? ", an older one: see above" : ", the newest");
        if (r->o.restored) {
            r->o.restored(rs->name, j->meta.data, j->meta.len, obj, r->o.user_data);
            if (b->closing) /* closed inside the callback: j and r are the close's to free */
                return;
        }
        if (sess_get(b, rs->name, &s) == 0) {
            s->tracked = 1;
            /* the daemon replaces it with wg_backup_set_meta; until then the next backup
             * carries what was restored, not nothing */
            if (!s->meta && j->meta.len) {
                s->meta = wa_malloc(j->meta.len);
                if (s->meta) {
                    memcpy(s->meta, j->meta.data, j->meta.len);
                    s->meta_len = j->meta.len;
                }
            }
        }
        r->cur++;
        break;
    case OUT_EXISTS:
        r->rep.skipped++;
        r->cur++;
        break;
    case OUT_UNUSABLE:
        r->rep.fallbacks++;
        b->st.restore_fallbacks++;
        wa_log_warn(COMPONENT,
                    "session %s: backup object %s/%s is unusable (%s); falling back to the "
                    "previous generation",
                    rs->name, wg_objstore_where(b->store), obj, j->why ? j->why : "?");
        rs->tried++;
        break;
    default:
        r->rep.failed++;
        b->st.restore_failed++;
        wa_log_error(COMPONENT, "session %s: restore from %s/%s failed: %s", rs->name,
                     wg_objstore_where(b->store), obj, j->why ? j->why : wa_strerror(j->rc));
        r->cur++;
        break;
    }
    wa_buf_wipe_cleanup(&j->data);
    wa_buf_wipe_cleanup(&j->meta);
    restore_next(b, j);
}

static void on_restore_get(const wg_obj_result *r, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;
    restore_state *rst = b->restore;
    rsess *rs = &rst->rs[rst->cur];
    const char *obj = rs->objs[rs->tried];
    uint8_t *p;
    size_t n;
    int rc;

    if (r->rc == WA_ENOTFOUND || r->rc == WA_ELIMIT) {
        rst->rep.fallbacks++;
        b->st.restore_fallbacks++;
        wa_log_warn(COMPONENT,
                    "session %s: backup object %s/%s cannot be read (%s); falling back to the "
                    "previous generation",
                    rs->name, wg_objstore_where(b->store), obj, r->error);
        rs->tried++;
        restore_next(b, j);
        return;
    }
    if (r->rc) {
        /* a network or permission failure says nothing about the object: an older generation
         * would be a needlessly stale restore, so the session is reported, not rolled back */
        rst->rep.failed++;
        b->st.restore_failed++;
        wa_log_error(COMPONENT, "session %s: cannot download %s/%s: %s", rs->name,
                     wg_objstore_where(b->store), obj, r->error);
        rst->cur++;
        restore_next(b, j);
        return;
    }
    p = wa_buf_steal(r->data, &n);
    wa_buf_cleanup(&j->data);
    j->data.data = p;
    j->data.len = j->data.cap = n;
    j->kind = JOB_RESTORE_IMPORT;
    snprintf(j->name, sizeof j->name, "%s", rs->name);
    if ((rc = queue_work(b, j))) {
        rst->rep.failed++;
        rst->cur++;
        restore_next(b, j);
    }
}

static void restore_next(wg_backup *b, job *j)
{
    restore_state *r = b->restore;

    while (r->cur < r->n_rs) {
        rsess *rs = &r->rs[r->cur];
        if (rs->exists) {
            r->rep.skipped++;
            wa_log_info(COMPONENT, "session %s: present locally: its backup is not restored",
                        rs->name);
            r->cur++;
            continue;
        }
        if (rs->tried >= rs->n) {
            r->rep.failed++;
            b->st.restore_failed++;
            wa_log_error(COMPONENT,
                         "session %s: no usable backup among %zu object(s) in %s: it must be "
                         "paired again",
                         rs->name, rs->n, wg_objstore_where(b->store));
            r->cur++;
            continue;
        }
        if (wg_objstore_get(b->store, rs->objs[rs->tried], WG_BACKUP_OBJECT_MAX, on_restore_get,
                            j) == 0)
            return;
        r->rep.failed++;
        r->cur++;
    }
    restore_finish(b, j);
}

static int want_session(restore_state *r, const char *name)
{
    size_t i;

    if (!r->want)
        return 1;
    for (i = 0; i < r->n_want; i++)
        if (strcmp(r->want[i], name) == 0)
            return 1;
    return 0;
}

static rsess *rsess_get(restore_state *r, const char *name)
{
    size_t i;
    rsess *nv;

    for (i = 0; i < r->n_rs; i++)
        if (strcmp(r->rs[i].name, name) == 0)
            return &r->rs[i];
    nv = wa_realloc(r->rs, (r->n_rs + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    r->rs = nv;
    memset(&nv[r->n_rs], 0, sizeof *nv);
    snprintf(nv[r->n_rs].name, sizeof nv[r->n_rs].name, "%s", name);
    return &r->rs[r->n_rs++];
}

static int rsess_add(rsess *rs, const char *key, uint64_t gen)
{
    char **nk = wa_realloc(rs->objs, (rs->n + 1) * sizeof *nk);
    uint64_t *ng;
    size_t i;

    if (!nk)
        return WA_ENOMEM;
    rs->objs = nk;
    ng = wa_realloc(rs->gens, (rs->n + 1) * sizeof *ng);
    if (!ng)
        return WA_ENOMEM;
    rs->gens = ng;
    /* newest first */
    for (i = rs->n; i > 0 && rs->gens[i - 1] < gen; i--) {
        rs->objs[i] = rs->objs[i - 1];
        rs->gens[i] = rs->gens[i - 1];
    }
    rs->objs[i] = wa_malloc(strlen(key) + 1);
    if (!rs->objs[i]) {
        memmove(rs->objs + i, rs->objs + i + 1, (rs->n - i) * sizeof *rs->objs);
        memmove(rs->gens + i, rs->gens + i + 1, (rs->n - i) * sizeof *rs->gens);
        return WA_ENOMEM;
    }
    memcpy(rs->objs[i], key, strlen(key) + 1);
    rs->gens[i] = gen;
    rs->n++;
    return 0;
}

static int rsess_cmp(const void *a, const void *b)
{
    return strcmp(((const rsess *)a)->name, ((const rsess *)b)->name);
}

static void on_restore_listed(const wg_obj_result *res, void *ud)
{
    job *j = ud;
    wg_backup *b = j->b;
    restore_state *r = b->restore;
    char name[WG_BACKUP_SESSION_MAX + 1];
    uint64_t gen;
    size_t i;
    sess *s;
    int rc;

    if (res->rc) {
        wa_log_error(COMPONENT, "restore: cannot list %s: %s", wg_objstore_where(b->store),
                     res->error);
        r->rep.failed = r->want ? (unsigned)r->n_want : 1;
        b->st.restore_failed++;
        restore_finish(b, j);
        return;
    }
    for (i = 0; i < res->n_entries; i++) {
        rsess *rs;
        if (wg_backup_object_parse(res->entries[i].key, name, sizeof name, &gen) != 0) {
            wa_log_debug(COMPONENT, "restore: ignoring %s (not a backup object name)",
                         res->entries[i].key);
            continue;
        }
        if (!want_session(r, name))
            continue;
        rs = rsess_get(r, name);
        if (!rs || rsess_add(rs, res->entries[i].key, gen)) {
            wa_log_error(COMPONENT, "restore: out of memory");
            r->rep.failed++;
            restore_finish(b, j);
            return;
        }
    }
    /* what we learnt of each session's generations serves its next backup */
    for (i = 0; i < r->n_rs; i++)
        if (sess_get(b, r->rs[i].name, &s) == 0 && !s->busy)
            sess_set_objs(s, res->entries, res->n_entries);
    if (r->want)
        for (i = 0; i < r->n_want; i++) {
            size_t k;
            for (k = 0; k < r->n_rs && strcmp(r->rs[k].name, r->want[i]) != 0; k++)
                ;
            if (k == r->n_rs)
                wa_log_info(COMPONENT, "session %s: no backup in %s", r->want[i],
                            wg_objstore_where(b->store));
        }
    if (r->n_rs)
        qsort(r->rs, r->n_rs, sizeof *r->rs, rsess_cmp);
    r->rep.sessions = (unsigned)r->n_rs;
    if (r->n_rs == 0) {
        restore_finish(b, j);
        return;
    }
    j->kind = JOB_RESTORE_CHECK;
    if ((rc = queue_work(b, j))) {
        r->rep.failed = (unsigned)r->n_rs;
        restore_finish(b, j);
    }
}

static void restore_check_after(wg_backup *b, job *j)
{
    restore_state *r = b->restore;

    if (j->rc) {
        wa_log_error(COMPONENT, "restore: %s", j->why ? j->why : wa_strerror(j->rc));
        r->rep.failed = (unsigned)r->n_rs;
        restore_finish(b, j);
        return;
    }
    restore_next(b, j);
}

int wg_backup_restore(wg_backup *b, const wg_backup_restore_options *o)
{
    restore_state *r;
    job *j;
    size_t i;

    if (!b || !o)
        return WA_EINVAL;
    if (b->closing || b->restore || b->cur)
        return WA_ESTATE;
    for (i = 0; i < o->n_sessions; i++)
        if (!o->sessions || !session_name_ok(o->sessions[i]))
            return WA_EINVAL;
    r = wa_calloc(1, sizeof *r);
    j = job_new(b, JOB_RESTORE_CHECK, NULL, NULL);
    if (!r || !j)
        goto nomem;
    r->o = *o;
    r->start_ns = uv_hrtime();
    if (o->sessions) {
        r->want = wa_calloc(o->n_sessions ? o->n_sessions : 1, sizeof *r->want);
        if (!r->want)
            goto nomem;
        for (i = 0; i < o->n_sessions; i++) {
            r->want[i] = wa_malloc(strlen(o->sessions[i]) + 1);
            if (!r->want[i])
                goto nomem;
            memcpy(r->want[i], o->sessions[i], strlen(o->sessions[i]) + 1);
            r->n_want++;
        }
    }
    r->o.sessions = NULL;
    b->restore = r;
    b->cur = j;
    if (wg_objstore_list(b->store, "", on_restore_listed, j) != 0) {
        b->restore = NULL;
        b->cur = NULL;
        goto nomem;
    }
    return 0;
nomem:
    restore_free(r);
    if (j)
        job_free(j);
    return WA_ENOMEM;
}

/* ---- pool completion ---- */

static void after_work(uv_work_t *w, int status)
{
    job *j = w->data;
    wg_backup *b = j->b;

    (void)status;
    j->in_pool = 0;
    if (b->closing) {
        if (b->cur == j)
            b->cur = NULL;
        job_free(j);
        release(b);
        return;
    }
    b->pending--;
    switch (j->kind) {
    case JOB_BACKUP:
        backup_after(b, j);
        break;
    case JOB_RESTORE_CHECK:
        restore_check_after(b, j);
        break;
    case JOB_RESTORE_IMPORT:
        restore_import_after(b, j);
        break;
    default:
        job_end(b, j);
        break;
    }
}

/* ---- scheduling ---- */

static void on_kick(uv_timer_t *t)
{
    wg_backup *b = t->data;
    sess *s;

    while (!b->closing && !b->cur && !b->restore && (s = dequeue(b))) {
        if (s->purge) {
            start_purge(b, s);
            break;
        }
        if (!s->tracked) {
            sess_remove(b, s);
            continue;
        }
        start_backup(b, s);
        break;
    }
    flush_check(b);
}

static void schedule(wg_backup *b)
{
    if (!b->closing)
        uv_timer_start(&b->kick, on_kick, 0, 0);
}

static void on_tick(uv_timer_t *t)
{
    wg_backup *b = t->data;
    sess *s;

    for (s = b->sessions; s; s = s->next)
        if (s->tracked)
            enqueue(b, s);
    schedule(b);
}

/* ---- flush ---- */

static void flush_finish(wg_backup *b, int ok)
{
    void (*done)(int, void *) = b->flush_done;
    void *ud = b->flush_ud;

    b->flushing = 0;
    b->flush_done = NULL;
    uv_timer_stop(&b->flush_timer);
    if (done)
        done(ok, ud);
}

static void flush_check(wg_backup *b)
{
    if (b->flushing && !b->cur && !b->qhead && !b->restore)
        flush_finish(b, !b->flush_failed);
}

static void on_flush_deadline(uv_timer_t *t)
{
    wg_backup *b = t->data;

    if (!b->flushing)
        return;
    wa_log_warn(COMPONENT, "flush: deadline passed with %u session(s) still to back up",
                b->queued + (b->cur ? 1 : 0));
    flush_finish(b, 0);
}

int wg_backup_flush(wg_backup *b, unsigned timeout_ms, void (*done)(int ok, void *user_data),
                    void *user_data)
{
    sess *s;

    if (!b || b->closing || b->flushing)
        return WA_ESTATE;
    b->flushing = 1;
    b->flush_failed = 0;
    b->flush_done = done;
    b->flush_ud = user_data;
    for (s = b->sessions; s; s = s->next)
        if (s->tracked)
            enqueue(b, s);
    uv_timer_start(&b->flush_timer, on_flush_deadline,
                   timeout_ms ? timeout_ms : WG_BACKUP_FLUSH_TIMEOUT_MS, 0);
    schedule(b);
    return 0;
}

/* ---- API ---- */

int wg_backup_track(wg_backup *b, const char *session)
{
    sess *s;
    int rc;

    if (!b || b->closing)
        return WA_ESTATE;
    if ((rc = sess_get(b, session, &s)))
        return rc;
    s->tracked = 1;
    return 0;
}

int wg_backup_set_meta(wg_backup *b, const char *session, const void *meta, size_t len)
{
    uint8_t *copy = NULL;
    sess *s;
    int rc;

    if (!b || b->closing)
        return WA_ESTATE;
    if ((!meta && len) || len > WG_BACKUP_META_MAX)
        return len > WG_BACKUP_META_MAX ? WA_ELIMIT : WA_EINVAL;
    if ((rc = sess_get(b, session, &s)))
        return rc;
    if (len) {
        copy = wa_malloc(len);
        if (!copy)
            return WA_ENOMEM;
        memcpy(copy, meta, len);
    }
    if (s->meta) {
        wa_wipe(s->meta, s->meta_len);
        wa_free(s->meta);
    }
    s->meta = copy;
    s->meta_len = len;
    s->tracked = 1;
    return 0;
}

int wg_backup_untrack(wg_backup *b, const char *session, int purge)
{
    sess *s;
    int rc;

    if (!b || b->closing)
        return WA_ESTATE;
    if (!session_name_ok(session))
        return WA_EINVAL;
    s = sess_find(b, session);
    if (!s && !purge)
        return 0;
    if (!s && (rc = sess_get(b, session, &s)))
        return rc;
    s->tracked = 0;
    s->again = 0;
    if (purge) {
        /* queued now, or by job_end when the running job of the session is over */
        s->purge = 1;
        if (!s->busy)
            enqueue(b, s);
        schedule(b);
    } else if (!s->queued && !s->busy) {
        sess_remove(b, s);
    }
    return 0;
}

int wg_backup_request(wg_backup *b, const char *session)
{
    sess *s;
    int rc;

    if (!b || b->closing)
        return WA_ESTATE;
    if ((rc = sess_get(b, session, &s)))
        return rc;
    s->tracked = 1;
    enqueue(b, s);
    schedule(b);
    return 0;
}

void wg_backup_get_stats(const wg_backup *b, wg_backup_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!b)
        return;
    *out = b->st;
    out->sessions = 0;
    for (const sess *s = b->sessions; s; s = s->next)
        out->sessions += s->tracked ? 1 : 0;
    out->queued = b->queued;
    out->running = b->cur || b->restore ? 1 : 0;
    wg_token_counts(b->tokens, &out->token_fetches, &out->token_failures);
}

const char *wg_backup_store_name(const wg_backup *b)
{
    return b ? wg_objstore_name(b->store) : "none";
}

const char *wg_backup_store_where(const wg_backup *b)
{
    return b ? wg_objstore_where(b->store) : "";
}

/* ---- open / close ---- */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof tmp)
        return WA_EINVAL;
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return WA_EIO;
        tmp[i] = i < n ? '/' : '\0';
    }
    return 0;
}

static int make_store(wg_backup *b)
{
    const wg_backup_env *e = &b->env;
    wg_objstore_http_options o;
    wg_gsa_key *key = NULL;
    const char *why = NULL;
    int rc;

    if (e->storage == WG_STORAGE_LOCAL) {
        rc = wg_objstore_local_new(b->loop, e->local_dir, &b->store);
        if (rc)
            wa_log_error(COMPONENT, "cannot use %s for backups: %s", e->local_dir, wa_strerror(rc));
        return rc;
    }
    if ((rc = wg_curluv_new(b->loop, &b->cu)))
        return rc;
    memset(&o, 0, sizeof o);
    o.kind = e->storage == WG_STORAGE_CLOUD ? "cloud" : "s3";
    o.endpoint = e->endpoint;
    o.bucket = e->bucket;
    o.prefix = e->prefix;
    o.region = e->region;
    o.ca_file = e->ca_file[0] ? e->ca_file : NULL;
    if (e->storage == WG_STORAGE_S3 || e->gcs_auth == WG_GCS_AUTH_HMAC) {
        o.auth = WG_OBJ_AUTH_SIGV4;
        o.access_key = e->access_key;
        o.secret_key = e->secret_key;
        o.session_token = e->session_token[0] ? e->session_token : NULL;
    } else {
        o.auth = WG_OBJ_AUTH_BEARER;
        if (e->gcs_auth == WG_GCS_AUTH_KEYFILE) {
            rc = wg_gsa_key_load(e->credentials_file, &key, &why);
            if (rc) {
                wa_log_error(COMPONENT, "GOOGLE_APPLICATION_CREDENTIALS %s: %s",
                             e->credentials_file, why ? why : wa_strerror(rc));
                return rc;
            }
            rc = wg_token_sa_new(b->cu, key, NULL, &b->tokens);
        } else {
            rc = wg_token_metadata_new(b->cu, e->metadata_host[0] ? e->metadata_host : NULL,
                                       &b->tokens);
        }
        if (rc)
            return rc;
        o.tokens = b->tokens;
    }
    rc = wg_objstore_http_new(b->loop, b->cu, &o, &b->store);
    if (rc)
        wa_log_error(COMPONENT, "bad %s storage settings (endpoint %s, bucket %s)", o.kind,
                     e->endpoint, e->bucket);
    return rc;
}

static void free_now(wg_backup *b)
{
    void (*closed)(void *) = b->closed;
    void *ud = b->closed_ud;
    sess *s;

    wa_store_close(b->db);
    while ((s = b->sessions)) {
        b->sessions = s->next;
        sess_free(s);
    }
    restore_free(b->restore);
    wg_backup_env_wipe(&b->env);
    wa_wipe(&b->key, sizeof b->key);
    wa_free(b);
    if (closed)
        closed(ud);
}

static void release(wg_backup *b)
{
    if (--b->pending == 0)
        free_now(b);
}

static void on_released(void *ud)
{
    release(ud);
}

/* The store dropped the callback of the job waiting on it (if any): that job is ours to free,
 * now that the store no longer reads its buffers. A job on the thread pool frees itself. */
static void on_store_closed(void *ud)
{
    wg_backup *b = ud;

    if (b->cur && !b->cur->in_pool)
        job_free(b->cur);
    b->cur = NULL;
    release(b);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

int wg_backup_open(uv_loop_t *loop, const wg_backup_env *env, const wg_backup_options *opts,
                   wg_backup **out)
{
    wg_backup *b;
    int rc;

    if (!loop || !env || !out)
        return WA_EINVAL;
    b = wa_calloc(1, sizeof *b);
    if (!b)
        return WA_ENOMEM;
    b->loop = loop;
    b->env = *env;
    if (b->env.generations == 0)
        b->env.generations = WG_BACKUP_DEFAULT_GENERATIONS;
    if (b->env.interval_ms == 0)
        b->env.interval_ms = WG_DEFAULT_BACKUP_INTERVAL_MS;
    if (opts)
        b->opts = *opts;
    if (env->key_set) {
        if ((rc = wg_backup_key_derive(&b->key, env->key)))
            goto fail;
        b->has_key = 1;
    }
    if ((rc = mkdir_p(b->env.tmp_dir))) {
        wa_log_error(COMPONENT, "cannot create %s: %s", b->env.tmp_dir, strerror(errno));
        goto fail;
    }
    if ((rc = make_store(b)))
        goto fail;
    uv_timer_init(loop, &b->tick);
    uv_timer_init(loop, &b->kick);
    uv_timer_init(loop, &b->flush_timer);
    b->tick.data = b->kick.data = b->flush_timer.data = b;
    uv_timer_start(&b->tick, on_tick, b->env.interval_ms, b->env.interval_ms);
    wa_log_info(COMPONENT,
                "sessions backed up to %s (%s) every %u ms when changed, %u generation(s) kept, "
                "%s",
                wg_objstore_where(b->store), wg_objstore_name(b->store), b->env.interval_ms,
                b->env.generations, b->has_key ? "encrypted (AES-256-GCM)" : "NOT encrypted");
    *out = b;
    return 0;
fail:
    /* nothing of the store is in flight yet: close what was made synchronously */
    wg_token_free(b->tokens);
    if (b->store) {
        wg_objstore_close(b->store, NULL, NULL);
        b->store = NULL;
    }
    if (b->cu)
        wg_curluv_close(b->cu, NULL, NULL);
    wg_backup_env_wipe(&b->env);
    wa_wipe(&b->key, sizeof b->key);
    wa_free(b);
    return rc;
}

void wg_backup_close(wg_backup *b, void (*closed)(void *user_data), void *user_data)
{
    if (!b || b->closing)
        return;
    /* closing first: the flush's callback may call this again */
    b->closing = 1;
    if (b->flushing)
        flush_finish(b, 0);
    b->closed = closed;
    b->closed_ud = user_data;
    /* +1 for this call; pool jobs in flight already count */
    b->pending++;
    b->pending += 3;
    uv_close((uv_handle_t *)&b->tick, on_handle_closed);
    uv_close((uv_handle_t *)&b->kick, on_handle_closed);
    uv_close((uv_handle_t *)&b->flush_timer, on_handle_closed);
    b->pending++;
    wg_objstore_close(b->store, on_store_closed, b);
    b->store = NULL;
    wg_token_free(b->tokens);
    b->tokens = NULL;
    if (b->cu) {
        b->pending++;
        wg_curluv_close(b->cu, on_released, b);
        b->cu = NULL;
    }
    release(b);
}
