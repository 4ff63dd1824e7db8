/*
 * test_backup_engine.c - the backup engine end to end with the local object store and a real
 * libwa store (lib/store): a paired account is backed up, an unchanged one is not uploaded
 * again, N generations are kept, the flush uploads what changed, a restore into an empty
 * DATA_DIR gives back the same rows and the session's metadata, a corrupt or truncated newest
 * object falls back to the previous generation with a log line naming it, encryption with the
 * right, a wrong and no key, purge, and sessions present locally are kept.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "backup/backup.h"
#include "core/log.h"
#include "store/store.h"
#include "wa/error.h"
#include "wa/store.h"

static char root[256];
static uv_loop_t loop;

/* ---- log capture ---- */

static char logbuf[65536];
static size_t loglen;

static void sink(int level, const char *component, const char *msg, void *ud)
{
    int n;

    (void)ud;
    n = snprintf(logbuf + loglen, sizeof logbuf - loglen, "%s %s: %s\n", wa_log_level_name(level),
                 component, msg);
    if (n > 0 && (size_t)n < sizeof logbuf - loglen)
        loglen += (size_t)n;
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "%s %s: %s\n", wa_log_level_name(level), component, msg);
}

static void log_reset(void)
{
    loglen = 0;
    logbuf[0] = '\0';
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/wg_backup_test.XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_int_equal(uv_loop_init(&loop), 0);
    wa_log_set_sink(sink, NULL);
    wa_log_set_level(WA_LOG_INFO);
    log_reset();
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    wa_log_set_sink(NULL, NULL);
    return 0;
}

static void path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", root, rel);
}

static void rm_rf(const char *rel)
{
    char cmd[400];

    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", root, rel);
    assert_int_equal(system(cmd), 0);
}

static wa_store *open_db(void)
{
    char p[300], d[300];
    wa_store *s = NULL;

    path(d, sizeof d, "data");
    mkdir(d, 0700);
    path(p, sizeof p, "data/libwa.db");
    assert_int_equal(wa_store_open(p, NULL, &s), 0);
    return s;
}

/* A paired account with some prekeys and a Signal session: a realistic-looking snapshot. */
static int64_t make_account(wa_store *s, const char *name, int paired, uint8_t seed)
{
    wa_store_creds c;
    wa_store_prekey pk[50];
    wa_store_addr a = {"15550001111", 0};
    uint8_t rec[600];
    int64_t id;
    size_t i;

    assert_int_equal(wa_store_account(s, name, 1, &id), 0);
    memset(&c, 0, sizeof c);
    memset(c.noise_priv, seed, 32);
    memset(c.noise_pub, seed + 1, 32);
    memset(c.identity_priv, seed + 2, 32);
    memset(c.identity_pub, seed + 3, 32);
    c.registration_id = 4242;
    c.spk_id = 1;
    memset(c.spk_priv, seed + 4, 32);
    memset(c.spk_pub, seed + 5, 32);
    memset(c.spk_sig, seed + 6, 64);
    c.spk_created = 1700000000;
    memset(c.adv_secret, seed + 7, 32);
    c.next_prekey_id = 51;
    if (paired) {
        snprintf(c.me_jid, sizeof c.me_jid, "1555000%04u:3@s.whatsapp.net", seed);
        snprintf(c.platform, sizeof c.platform, "smba");
    }
    assert_int_equal(wa_store_creds_save(s, id, &c, 0), 0);
    for (i = 0; i < 50; i++) {
        pk[i].id = (uint32_t)i + 1;
        memset(pk[i].priv, (int)(seed + i), 32);
        memset(pk[i].pub, (int)(seed + i + 1), 32);
    }
    assert_int_equal(wa_store_prekeys_add(s, id, pk, 50, 51), 0);
    for (i = 0; i < sizeof rec; i++)
        rec[i] = (uint8_t)(i * 7 + seed);
    assert_int_equal(wa_store_session_put(s, id, &a, rec, sizeof rec), 0);
    return id;
}

/* Change the account a little (a prekey used up). */
static void touch_account(wa_store *s, const char *name, uint32_t key_id)
{
    int64_t id;

    assert_int_equal(wa_store_account(s, name, 0, &id), 0);
    assert_int_equal(wa_store_prekey_remove(s, id, key_id), 0);
}

static void env_local(wg_backup_env *e, unsigned gens, const uint8_t *key)
{
    memset(e, 0, sizeof *e);
    e->storage = WG_STORAGE_LOCAL;
    e->interval_ms = 3600000; /* the tests drive backups by request and flush */
    e->generations = gens;
    path(e->local_dir, sizeof e->local_dir, "bk");
    path(e->tmp_dir, sizeof e->tmp_dir, "data/.backup-tmp");
    path(e->store_path, sizeof e->store_path, "data/libwa.db");
    if (key) {
        memcpy(e->key, key, 32);
        e->key_set = 1;
    }
}

static void set_meta(wg_backup *b, const char *session)
{
    char m[128];

    snprintf(m, sizeof m, "{\"name\":\"%s\",\"want_running\":true}", session);
    assert_int_equal(wg_backup_set_meta(b, session, m, strlen(m)), 0);
}

static wg_backup *open_backup(const wg_backup_env *e)
{
    wg_backup *b = NULL;

    assert_int_equal(wg_backup_open(&loop, e, NULL, &b), 0);
    return b;
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

/* Run the loop until cond holds (or fail after a while). */
typedef int (*cond_fn)(void *);

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

static void run_until(cond_fn cond, void *ud)
{
    uv_timer_t guard;
    uint64_t end = uv_hrtime() + 20ull * 1000000000ull;

    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 5, 5);
    while (!cond(ud)) {
        assert_true(uv_hrtime() < end);
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int is_set(void *ud)
{
    return *(int *)ud != 0;
}

static void close_backup(wg_backup *b)
{
    int closed = 0;

    wg_backup_close(b, on_closed, &closed);
    run_until(is_set, &closed);
    uv_run(&loop, UV_RUN_DEFAULT); /* every handle gone */
}

typedef struct stat_wait {
    wg_backup *b;
    uint64_t ok, unchanged, skipped, failed;
} stat_wait;

static int stats_reached(void *ud)
{
    stat_wait *w = ud;
    wg_backup_stats st;

    wg_backup_get_stats(w->b, &st);
    return st.backups_ok >= w->ok && st.unchanged >= w->unchanged && st.skipped >= w->skipped &&
           st.backups_failed >= w->failed && st.queued == 0 && !st.running;
}

static void wait_stats(wg_backup *b, uint64_t ok, uint64_t unchanged, uint64_t skipped,
                       uint64_t failed)
{
    stat_wait w = {b, ok, unchanged, skipped, failed};

    run_until(stats_reached, &w);
}

/* Object files of a session under bk/, sorted. */
static size_t list_objects(const char *session, char names[][128], size_t max)
{
    char cmd[400];
    FILE *f;
    size_t n = 0;

    snprintf(cmd, sizeof cmd, "ls '%s/bk/%s' 2>/dev/null | sort", root, session);
    f = popen(cmd, "r");
    assert_non_null(f);
    while (n < max && fgets(names[n], 128, f)) {
        names[n][strcspn(names[n], "\n")] = '\0';
        n++;
    }
    pclose(f);
    return n;
}

/* ---- restore helpers ---- */

typedef struct restore_result {
    int done;
    wg_backup_restore_report rep;
    char meta[256];
    char object[256];
    unsigned restored_calls;
} restore_result;

static void on_restored(const char *session, const uint8_t *meta, size_t len, const char *object,
                        void *ud)
{
    restore_result *r = ud;

    (void)session;
    r->restored_calls++;
    snprintf(r->meta, sizeof r->meta, "%.*s", (int)len, (const char *)meta);
    snprintf(r->object, sizeof r->object, "%s", object);
}

static void on_restore_done(const wg_backup_restore_report *rep, void *ud)
{
    restore_result *r = ud;

    r->rep = *rep;
    r->done = 1;
}

static void restore(wg_backup *b, const char *const *names, size_t n, restore_result *r)
{
    wg_backup_restore_options o;

    memset(r, 0, sizeof *r);
    memset(&o, 0, sizeof o);
    o.sessions = names;
    o.n_sessions = n;
    o.restored = on_restored;
    o.done = on_restore_done;
    o.user_data = r;
    assert_int_equal(wg_backup_restore(b, &o), 0);
    run_until(is_set, &r->done);
}

static void assert_restored_rows(const char *name, uint8_t seed, size_t prekeys)
{
    wa_store *s = open_db();
    wa_store_creds c;
    wa_store_addr a = {"15550001111", 0};
    int64_t id;
    size_t n = 0;
    wa_buf rec;

    assert_int_equal(wa_store_account(s, name, 0, &id), 0);
    assert_int_equal(wa_store_account_paired(s, id), 1);
    assert_int_equal(wa_store_creds_load(s, id, &c), 0);
    assert_int_equal(c.noise_priv[0], seed);
    assert_int_equal(c.registration_id, 4242);
    wa_store_creds_wipe(&c);
    assert_int_equal(wa_store_prekeys_count(s, id, 0, &n), 0);
    assert_int_equal(n, prekeys);
    wa_buf_init(&rec, 4096);
    assert_int_equal(wa_store_session_get(s, id, &a, &rec), 0);
    assert_int_equal(rec.len, 600);
    wa_buf_cleanup(&rec);
    wa_store_close(s);
}

/* ---- tests ---- */

static void test_backup_generations_restore(void **state)
{
    wg_backup_env e;
    wg_backup *b;
    wa_store *s;
    wg_backup_stats st;
    char names[16][128];
    restore_result r;
    size_t n;
    int i;

    (void)state;
    s = open_db();
    make_account(s, "s1", 1, 10);
    make_account(s, "s2", 0, 20); /* not paired: nothing to back up */
    env_local(&e, 3, NULL);
    b = open_backup(&e);
    set_meta(b, "s1");
    assert_int_equal(wg_backup_track(b, "s2"), 0);
    assert_int_equal(wg_backup_request(b, "s1"), 0);
    assert_int_equal(wg_backup_request(b, "s2"), 0);
    assert_int_equal(wg_backup_request(b, "bad/name"), WA_EINVAL);
    wait_stats(b, 1, 0, 1, 0);
    n = list_objects("s1", names, 16);
    assert_int_equal(n, 1);
    assert_non_null(strstr(names[0], "000000000001-"));
    assert_int_equal(list_objects("s2", names, 16), 0);
    wg_backup_get_stats(b, &st);
    assert_true(st.last_bytes > 100);
    assert_int_equal(st.bytes_uploaded, st.last_bytes);
    assert_true(st.last_plain_bytes > st.last_bytes); /* compressed */
    assert_true(st.last_success_ms > 0);
    assert_int_equal(st.sessions, 2);
    assert_non_null(strstr(logbuf, "session s1: backed up to"));

    /* unchanged: nothing uploaded */
    assert_int_equal(wg_backup_request(b, "s1"), 0);
    wait_stats(b, 1, 1, 1, 0);
    assert_int_equal(list_objects("s1", names, 16), 1);

    /* five changes: generations 2..6, only the newest three kept */
    for (i = 0; i < 5; i++) {
        touch_account(s, "s1", (uint32_t)i + 1);
        assert_int_equal(wg_backup_request(b, "s1"), 0);
        wait_stats(b, 2 + (uint64_t)i, 1, 1, 0);
    }
    n = list_objects("s1", names, 16);
    assert_int_equal(n, 3);
    assert_non_null(strstr(names[0], "000000000004-"));
    assert_non_null(strstr(names[2], "000000000006-"));
    wg_backup_get_stats(b, &st);
    assert_int_equal(st.deleted, 3);
    assert_int_equal(st.backups_ok, 6);

    /* a new meta is a change: uploaded even though the rows are the same */
    set_meta(b, "s1");
    assert_int_equal(wg_backup_set_meta(b, "s1", "{}", 2), 0);
    assert_int_equal(wg_backup_request(b, "s1"), 0);
    wait_stats(b, 7, 1, 1, 0);
    set_meta(b, "s1");
    assert_int_equal(wg_backup_request(b, "s1"), 0);
    wait_stats(b, 8, 1, 1, 0);
    /* a session without an account in the store: nothing to back up */
    assert_int_equal(wg_backup_request(b, "gone"), 0);
    wait_stats(b, 8, 1, 2, 0);
    close_backup(b);
    wa_store_close(s);

    /* DATA_DIR lost: restore into an empty store */
    rm_rf("data");
    b = open_backup(&e);
    restore(b, NULL, 0, &r);
    assert_int_equal(r.rep.sessions, 1);
    assert_int_equal(r.rep.restored, 1);
    assert_int_equal(r.rep.failed, 0);
    assert_int_equal(r.rep.fallbacks, 0);
    assert_int_equal(r.restored_calls, 1);
    assert_string_equal(r.meta, "{\"name\":\"s1\",\"want_running\":true}");
    assert_non_null(strstr(r.object, "s1/000000000008-"));
    assert_restored_rows("s1", 10, 45);
    wg_backup_get_stats(b, &st);
    assert_int_equal(st.restored, 1);

    /* the next backup continues the numbering (9) from what the restore listed */
    s = open_db();
    touch_account(s, "s1", 10);
    assert_int_equal(wg_backup_request(b, "s1"), 0);
    wait_stats(b, 1, 0, 0, 0);
    n = list_objects("s1", names, 16);
    assert_int_equal(n, 3);
    assert_non_null(strstr(names[2], "000000000009-"));
    close_backup(b);
    wa_store_close(s);

    /* a second restore keeps the local state */
    b = open_backup(&e);
    restore(b, NULL, 0, &r);
    assert_int_equal(r.rep.restored, 0);
    assert_int_equal(r.rep.skipped, 1);
    assert_int_equal(r.restored_calls, 0);
    close_backup(b);
}

static void corrupt_file(const char *session, const char *name, int truncate_it)
{
    char p[512];
    FILE *f;
    struct stat st;

    snprintf(p, sizeof p, "%s/bk/%s/%s", root, session, name);
    assert_int_equal(stat(p, &st), 0);
    if (truncate_it) {
        assert_int_equal(truncate(p, st.st_size / 2), 0);
        return;
    }
    f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, st.st_size - 40, SEEK_SET);
    fputc(0x5a, f);
    fputc(0xa5, f);
    fclose(f);
}

static void test_corruption_fallback(void **state)
{
    static const uint8_t key[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8};
    const char *const only[] = {"s1"};
    wg_backup_env e;
    wg_backup *b;
    wa_store *s;
    wg_backup_stats st;
    char names[16][128], line[512];
    restore_result r;
    int enc;

    (void)state;
    for (enc = 0; enc < 2; enc++) {
        rm_rf("data");
        rm_rf("bk");
        s = open_db();
        make_account(s, "s1", 1, 30);
        make_account(s, "s3", 1, 40);
        env_local(&e, 5, enc ? key : NULL);
        b = open_backup(&e);
        assert_int_equal(wg_backup_request(b, "s1"), 0);
        assert_int_equal(wg_backup_request(b, "s3"), 0);
        wait_stats(b, 2, 0, 0, 0);
        touch_account(s, "s1", 1);
        assert_int_equal(wg_backup_request(b, "s1"), 0);
        wait_stats(b, 3, 0, 0, 0);
        touch_account(s, "s1", 2);
        assert_int_equal(wg_backup_request(b, "s1"), 0);
        wait_stats(b, 4, 0, 0, 0);
        close_backup(b);
        wa_store_close(s);
        assert_int_equal(list_objects("s1", names, 16), 3);

        /* newest corrupted (bytes flipped), the one before truncated: the oldest is used */
        corrupt_file("s1", names[2], 0);
        corrupt_file("s1", names[1], 1);
        rm_rf("data");
        log_reset();
        b = open_backup(&e);
        restore(b, only, 1, &r);
        assert_int_equal(r.rep.sessions, 1); /* s3 not asked for */
        assert_int_equal(r.rep.restored, 1);
        assert_int_equal(r.rep.fallbacks, 2);
        assert_non_null(strstr(r.object, names[0]));
        snprintf(line, sizeof line,
                 "warn backup: session s1: backup object %s/bk/s1/%s is unusable (", root,
                 names[2]);
        assert_non_null(strstr(logbuf, line));
        assert_non_null(strstr(logbuf, enc ? "authentication failed" : "zlib stream corrupt"));
        snprintf(line, sizeof line, "%s/bk/s1/%s is unusable (truncated", root, names[1]);
        assert_non_null(strstr(logbuf, line));
        assert_non_null(strstr(logbuf, "falling back to the previous generation"));
        wg_backup_get_stats(b, &st);
        assert_int_equal(st.restore_fallbacks, 2);
        assert_int_equal(st.restored, 1);
        close_backup(b);
        assert_restored_rows("s1", 30, 50); /* generation 1: no prekey used yet */

        if (enc) {
            /* the wrong key: every object refused, the session reported */
            uint8_t wrong[32];
            memcpy(wrong, key, 32);
            wrong[0] ^= 0xff;
            rm_rf("data");
            log_reset();
            env_local(&e, 5, wrong);
            b = open_backup(&e);
            restore(b, NULL, 0, &r);
            assert_int_equal(r.rep.restored, 0);
            assert_int_equal(r.rep.failed, 2);
            assert_non_null(strstr(logbuf, "encrypted with another SESSION_ENCRYPTION_KEY"));
            assert_non_null(strstr(logbuf, "session s1: no usable backup among 3 object(s)"));
            close_backup(b);
            /* no key at all */
            rm_rf("data");
            log_reset();
            env_local(&e, 5, NULL);
            b = open_backup(&e);
            restore(b, only, 1, &r);
            assert_int_equal(r.rep.failed, 1);
            assert_non_null(strstr(logbuf, "encrypted, but SESSION_ENCRYPTION_KEY is not set"));
            close_backup(b);
        }
    }
}

static int flushed_ok = -1;

static void on_flushed(int ok, void *ud)
{
    (void)ud;
    flushed_ok = ok;
}

static int flush_done(void *ud)
{
    (void)ud;
    return flushed_ok >= 0;
}

static void test_flush_and_purge(void **state)
{
    wg_backup_env e;
    wg_backup *b;
    wa_store *s;
    wg_backup_stats st;
    char names[16][128];

    (void)state;
    rm_rf("data");
    rm_rf("bk");
    s = open_db();
    make_account(s, "a1", 1, 50);
    make_account(s, "a2", 1, 60);
    env_local(&e, 2, NULL);
    b = open_backup(&e);
    assert_int_equal(wg_backup_track(b, "a1"), 0);
    assert_int_equal(wg_backup_track(b, "a2"), 0);
    /* the flush backs up every tracked session */
    flushed_ok = -1;
    assert_int_equal(wg_backup_flush(b, 5000, on_flushed, NULL), 0);
    assert_int_equal(wg_backup_flush(b, 5000, on_flushed, NULL), WA_ESTATE);
    run_until(flush_done, NULL);
    assert_int_equal(flushed_ok, 1);
    wg_backup_get_stats(b, &st);
    assert_int_equal(st.backups_ok, 2);
    assert_int_equal(list_objects("a1", names, 16), 1);
    assert_int_equal(list_objects("a2", names, 16), 1);
    /* again, nothing changed: nothing uploaded, still ok */
    flushed_ok = -1;
    assert_int_equal(wg_backup_flush(b, 5000, on_flushed, NULL), 0);
    run_until(flush_done, NULL);
    assert_int_equal(flushed_ok, 1);
    wg_backup_get_stats(b, &st);
    assert_int_equal(st.backups_ok, 2);
    assert_int_equal(st.unchanged, 2);
    /* purge: a logged-out session's backups are deleted */
    assert_int_equal(wg_backup_untrack(b, "a2", 1), 0);
    flushed_ok = -1;
    assert_int_equal(wg_backup_flush(b, 5000, on_flushed, NULL), 0);
    run_until(flush_done, NULL);
    assert_int_equal(list_objects("a2", names, 16), 0);
    assert_int_equal(list_objects("a1", names, 16), 1);
    wg_backup_get_stats(b, &st);
    assert_int_equal(st.sessions, 1);
    assert_int_equal(st.deleted, 1);
    /* closing in the middle of a backup drops it cleanly */
    touch_account(s, "a1", 3);
    assert_int_equal(wg_backup_request(b, "a1"), 0);
    close_backup(b);
    wa_store_close(s);
}

/* Closing the engine from inside its own callbacks (the daemon closes it when the SIGTERM
 * flush is done, or could from a restore callback). */
static wg_backup *closing_b;
static int closed_in_cb;

static void close_in_flush(int ok, void *ud)
{
    (void)ok;
    (void)ud;
    wg_backup_close(closing_b, on_closed, &closed_in_cb);
}

static void close_in_restored(const char *session, const uint8_t *meta, size_t len,
                              const char *object, void *ud)
{
    (void)session;
    (void)meta;
    (void)len;
    (void)object;
    (void)ud;
    wg_backup_close(closing_b, on_closed, &closed_in_cb);
}

static void test_close_inside_callbacks(void **state)
{
    wg_backup_restore_options o;
    wg_backup_env e;
    wa_store *s;

    (void)state;
    s = open_db();
    make_account(s, "x1", 1, 70);
    make_account(s, "x2", 1, 80);
    wa_store_close(s);
    env_local(&e, 2, NULL);
    closing_b = open_backup(&e);
    assert_int_equal(wg_backup_track(closing_b, "x1"), 0);
    assert_int_equal(wg_backup_track(closing_b, "x2"), 0);
    closed_in_cb = 0;
    assert_int_equal(wg_backup_flush(closing_b, 5000, close_in_flush, NULL), 0);
    run_until(is_set, &closed_in_cb);
    uv_run(&loop, UV_RUN_DEFAULT);

    rm_rf("data");
    closing_b = open_backup(&e);
    memset(&o, 0, sizeof o);
    o.restored = close_in_restored; /* the first of two sessions: the second is abandoned */
    closed_in_cb = 0;
    assert_int_equal(wg_backup_restore(closing_b, &o), 0);
    run_until(is_set, &closed_in_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_generations_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_and_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_callbacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
