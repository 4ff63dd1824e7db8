/*
 * objstore_local.c - the "local" object store: one file per key under a directory (the
 * default SESSION_STORAGE_TYPE, DATA_DIR/backups). Keys' '/' become subdirectories.
 *
 * The file work runs on libuv's thread pool (uv_queue_work), its result is delivered on the
 * loop. A put writes "<key>.tmp-XXXXXX", fsyncs it, renames it over the key and fsyncs the
 * directory: a crash leaves the old object or the new one, never half of one. Listing skips
 * those temporaries.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/objstore.h"
#include "core/alloc.h"
#include "wa/error.h"

#define TMP_MARK ".tmp-"
/* Directory depth walked by a listing (keys are "SESSION/FILE": 2). */
#define LIST_DEPTH_MAX 8

typedef struct local_store {
    wg_objstore base;
    uv_loop_t *loop;
    char dir[PATH_MAX];
    unsigned pending;
    void (*closed)(void *);
    void *closed_ud;
} local_store;

enum { OP_PUT, OP_GET, OP_LIST, OP_DEL, OP_NOOP };

typedef struct local_op {
    uv_work_t work;
    local_store *st;
    int op;
    char path[PATH_MAX];
    char prefix[WG_OBJ_KEY_MAX + 1];
    const uint8_t *data;
    size_t len, max;
    wa_buf out;
    wg_obj_entry *entries;
    size_t n_entries;
    wg_obj_cb cb;
    void *ud;
    int rc;
    char error[WG_OBJ_ERROR_MAX];
    uint64_t start_ns;
} local_op;

static void set_err(local_op *o, int rc, const char *what)
{
    o->rc = rc;
    snprintf(o->error, sizeof o->error, "%s: %s", what, strerror(errno));
}

static int mkdirs_for(const char *path)
{
    char tmp[PATH_MAX];
    size_t i, n = strlen(path);

    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (i = 1; i < n; i++) {
        if (tmp[i] != '/')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        tmp[i] = '/';
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char tmp[PATH_MAX];
    char *slash;
    int fd, rc;

    snprintf(tmp, sizeof tmp, "%s", path);
    slash = strrchr(tmp, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    fd = open(tmp[0] ? tmp : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static void do_put(local_op *o)
{
    char tmp[PATH_MAX + 16];
    size_t off = 0;
    int fd;

    if (mkdirs_for(o->path) != 0) {
        set_err(o, WA_EIO, "mkdir");
        return;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s" TMP_MARK "XXXXXX", o->path) >= sizeof tmp) {
        o->rc = WA_EINVAL;
        snprintf(o->error, sizeof o->error, "path too long");
        return;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        set_err(o, WA_EIO, "create");
        return;
    }
    fchmod(fd, 0600);
    while (off < o->len) {
        ssize_t n = write(fd, o->data + off, o->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            set_err(o, WA_EIO, "write");
            goto fail;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        set_err(o, WA_EIO, "fsync");
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, o->path) != 0) {
        set_err(o, WA_EIO, "rename");
        goto fail;
    }
    if (fsync_dir_of(o->path) != 0) {
        set_err(o, WA_EIO, "fsync directory");
        return;
    }
    o->rc = 0;
    return;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
}

static void do_get(local_op *o)
{
    struct stat st;
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT) {
            o->rc = WA_ENOTFOUND;
            snprintf(o->error, sizeof o->error, "no such object");
        } else {
            set_err(o, WA_EIO, "open");
        }
        return;
    }
    if (fstat(fd, &st) != 0) {
        set_err(o, WA_EIO, "stat");
        goto out;
    }
    if ((uint64_t)st.st_size > o->max) {
        o->rc = WA_ELIMIT;
        snprintf(o->error, sizeof o->error, "object of %lld bytes above the limit",
                 (long long)st.st_size);
        goto out;
    }
    wa_buf_init(&o->out, o->max);
    if (st.st_size > 0 && wa_buf_reserve(&o->out, (size_t)st.st_size) != 0) {
        o->rc = WA_ENOMEM;
        snprintf(o->error, sizeof o->error, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n;
        if (o->out.len == o->max) { /* grew while we read: re-check the limit */
            char c;
            if (read(fd, &c, 1) > 0) {
                o->rc = WA_ELIMIT;
                snprintf(o->error, sizeof o->error, "object above the limit");
                goto out;
            }
            break;
        }
        if (wa_buf_reserve(&o->out, 1) != 0) {
            o->rc = WA_ENOMEM;
            goto out;
        }
        n = read(fd, o->out.data + o->out.len, o->out.cap - o->out.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(o, WA_EIO, "read");
            goto out;
        }
        if (n == 0)
            break;
        o->out.len += (size_t)n;
    }
    o->rc = 0;
out:
    close(fd);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const wg_obj_entry *)a)->key, ((const wg_obj_entry *)b)->key);
}

/* Walk dir/rel recursively; collect keys starting with o->prefix. */
static int walk(local_op *o, const char *rel, int depth)
{
    char path[PATH_MAX], key[WG_OBJ_KEY_MAX + 1];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (depth > LIST_DEPTH_MAX)
        return 0;
    if ((size_t)snprintf(path, sizeof path, "%s%s%s", o->st->dir, rel[0] ? "/" : "", rel) >=
        sizeof path)
        return 0;
    d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : WA_EIO;
    while (rc == 0 && (de = readdir(d))) {
        struct stat st;
        char full[PATH_MAX];
        size_t pl;
        if (de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(key, sizeof key, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            sizeof key)
            continue;
        if ((size_t)snprintf(full, sizeof full, "%s/%s", o->st->dir, key) >= sizeof full)
            continue;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            /* descend only where the prefix may still match */
            pl = strlen(key);
            if (strncmp(key, o->prefix, pl < strlen(o->prefix) ? pl : strlen(o->prefix)) == 0)
                rc = walk(o, key, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode) || strstr(de->d_name, TMP_MARK))
            continue;
        if (strncmp(key, o->prefix, strlen(o->prefix)) != 0 || !wg_obj_key_valid(key))
            continue;
        {
            wg_obj_entry *nv;
            char *k;
            if (o->n_entries >= WG_OBJ_LIST_MAX) {
                rc = WA_ELIMIT;
                break;
            }
            nv = wa_realloc(o->entries, (o->n_entries + 1) * sizeof *nv);
            k = wa_malloc(strlen(key) + 1);
            if (!nv || !k) {
                if (nv)
                    o->entries = nv;
                wa_free(k);
                rc = WA_ENOMEM;
                break;
            }
            o->entries = nv;
            memcpy(k, key, strlen(key) + 1);
            nv[o->n_entries].key = k;
            nv[o->n_entries].size = (uint64_t)st.st_size;
            o->n_entries++;
        }
    }
    closedir(d);
    return rc;
}

static void do_list(local_op *o)
{
    o->rc = walk(o, "", 0);
    if (o->rc) {
        snprintf(o->error, sizeof o->error, "listing %.200s failed: %s", o->st->dir,
                 o->rc == WA_ELIMIT ? "too many objects" : "cannot read a directory");
        return;
    }
    if (o->n_entries)
        qsort(o->entries, o->n_entries, sizeof *o->entries, entry_cmp);
}

static void do_del(local_op *o)
{
    if (unlink(o->path) != 0 && errno != ENOENT) {
        set_err(o, WA_EIO, "unlink");
        return;
    }
    o->rc = 0;
}

static void on_work(uv_work_t *w)
{
    local_op *o = w->data;

    switch (o->op) {
    case OP_PUT:
        do_put(o);
        break;
    case OP_GET:
        do_get(o);
        break;
    case OP_LIST:
        do_list(o);
        break;
    case OP_DEL:
        do_del(o);
        break;
    default:
        break;
    }
}

static void op_free(local_op *o)
{
    wa_buf_cleanup(&o->out);
    wg_obj_entries_free(o->entries, o->n_entries);
    wa_free(o);
}

static void store_release(local_store *st)
{
    void (*closed)(void *) = st->closed;
    void *ud = st->closed_ud;

    if (--st->pending > 0 || !st->base.closing)
        return;
    wa_free(st);
    if (closed)
        closed(ud);
}

static void on_after(uv_work_t *w, int status)
{
    local_op *o = w->data;
    local_store *st = o->st;
    wg_obj_result r;

    if (!st->base.closing && o->op != OP_NOOP) {
        memset(&r, 0, sizeof r);
        r.rc = status == UV_ECANCELED ? WA_ESTATE : o->rc;
        r.error = r.rc ? o->error : "";
        r.data = o->op == OP_GET && r.rc == 0 ? &o->out : NULL;
        r.entries = o->entries;
        r.n_entries = o->n_entries;
        r.seconds = (double)(uv_hrtime() - o->start_ns) / 1e9;
        o->cb(&r, o->ud);
    }
    op_free(o);
    store_release(st);
}

static int submit(local_store *st, int op, const char *key, wg_obj_cb cb, void *ud, local_op **out)
{
    local_op *o = wa_calloc(1, sizeof *o);

    if (!o)
        return WA_ENOMEM;
    o->st = st;
    o->op = op;
    o->cb = cb;
    o->ud = ud;
    o->work.data = o;
    o->start_ns = uv_hrtime();
    o->rc = WA_EIO;
    wa_buf_init(&o->out, 1);
    if (key && (size_t)snprintf(o->path, sizeof o->path, "%s/%s", st->dir, key) >= sizeof o->path) {
        wa_free(o);
        return WA_EINVAL;
    }
    *out = o;
    return 0;
}

static int queue(local_store *st, local_op *o)
{
    if (uv_queue_work(st->loop, &o->work, on_work, on_after) != 0) {
        op_free(o);
        return WA_EIO;
    }
    st->pending++;
    return 0;
}

static int l_put(wg_objstore *s, const char *key, const uint8_t *data, size_t len, wg_obj_cb cb,
                 void *ud)
{
    local_store *st = (local_store *)s;
    local_op *o;
    int rc = submit(st, OP_PUT, key, cb, ud, &o);

    if (rc)
        return rc;
    o->data = data;
    o->len = len;
    return queue(st, o);
}

static int l_get(wg_objstore *s, const char *key, size_t max, wg_obj_cb cb, void *ud)
{
    local_store *st = (local_store *)s;
    local_op *o;
    int rc = submit(st, OP_GET, key, cb, ud, &o);

    if (rc)
        return rc;
    o->max = max;
    return queue(st, o);
}

static int l_list(wg_objstore *s, const char *prefix, wg_obj_cb cb, void *ud)
{
    local_store *st = (local_store *)s;
    local_op *o;
    int rc = submit(st, OP_LIST, NULL, cb, ud, &o);

    if (rc)
        return rc;
    snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
    return queue(st, o);
}

static int l_del(wg_objstore *s, const char *key, wg_obj_cb cb, void *ud)
{
    local_store *st = (local_store *)s;
    local_op *o;
    int rc = submit(st, OP_DEL, key, cb, ud, &o);

    if (rc)
        return rc;
    return queue(st, o);
}

static void noop_cb(const wg_obj_result *r, void *ud)
{
    (void)r;
    (void)ud;
}

static void l_close(wg_objstore *s, void (*closed)(void *), void *ud)
{
    local_store *st = (local_store *)s;
    local_op *o;

    st->closed = closed;
    st->closed_ud = ud;
    /* one more trip through the pool, so that `closed` never runs inside this call */
    if (submit(st, OP_NOOP, NULL, noop_cb, NULL, &o) == 0 && queue(st, o) == 0)
        return;
    if (st->pending == 0) {
        wa_free(st);
        if (closed)
            closed(ud);
    }
}

static const wg_objstore_ops local_ops = {l_put, l_get, l_list, l_del, l_close};

int wg_objstore_local_new(uv_loop_t *loop, const char *dir, wg_objstore **out)
{
    local_store *st;
    char probe[PATH_MAX + 2];
    size_t n;

    if (!loop || !dir || !*dir || !out)
        return WA_EINVAL;
    n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n + WG_OBJ_KEY_MAX + 32 >= PATH_MAX)
        return WA_EINVAL;
    snprintf(probe, sizeof probe, "%.*s/", (int)n, dir);
    if (mkdirs_for(probe) != 0)
        return WA_EIO;
    st = wa_calloc(1, sizeof *st);
    if (!st)
        return WA_ENOMEM;
    st->base.ops = &local_ops;
    st->base.name = "local";
    memcpy(st->dir, dir, n);
    st->dir[n] = '\0';
    n = n < sizeof st->base.where - 1 ? n : sizeof st->base.where - 1;
    memcpy(st->base.where, st->dir, n);
    st->base.where[n] = '\0';
    st->loop = loop;
    *out = &st->base;
    return 0;
}
