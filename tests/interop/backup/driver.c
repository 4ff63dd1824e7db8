/*
 * driver.c - src/backup driven from the command line for backup.test.mjs (no daemon): the
 * configuration comes from the environment exactly as wagate reads it (DATA_DIR,
 * SESSION_STORAGE_TYPE, SESSION_BACKUP_INTERVAL, then wg_backup_env_load), commands arrive one
 * per line on stdin, each answered by one JSON line on stdout. Logs go to stderr.
 *
 *   make NAME SEED PREKEYS   create a paired libwa account in DATA_DIR/libwa.db
 *   touch NAME               use up one prekey (the account changes)
 *   request NAME             wg_backup_request, wait until idle  -> {"stats":{...}}
 *   flush                    wg_backup_flush                      -> {"ok":1,"stats":{...}}
 *   restore [NAME...]        wg_backup_restore                    ->
 * {"report":{...},"restored":[...]} check NAME SEED          the account's rows ->
 * {"paired":1,"prekeys":N,...} stats                                                         ->
 * {"stats":{...}} quit                     wg_backup_close, exit 0 A start-up failure prints
 * {"error": "..."} and exits 1.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "backup/backup.h"
#include "core/log.h"
#include "store/store.h"
#include "wa/error.h"
#include "wa/store.h"

static uv_loop_t loop;
static wg_backup *bk;
static char data_dir[1024];
static char restored_json[65536];
static size_t restored_len;
static int restore_done, flush_ok = -1, closed;
static wg_backup_restore_report report;

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

static void run_until(int *flag)
{
    while (!*flag)
        uv_run(&loop, UV_RUN_ONCE);
}

static int idle(void)
{
    wg_backup_stats st;

    wg_backup_get_stats(bk, &st);
    return st.queued == 0 && !st.running;
}

static void print_stats(const char *prefix)
{
    wg_backup_stats st;

    wg_backup_get_stats(bk, &st);
    printf("{%s\"stats\":{\"backups_ok\":%" PRIu64 ",\"backups_failed\":%" PRIu64
           ",\"unchanged\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"bytes_uploaded\":%" PRIu64
           ",\"last_bytes\":%" PRIu64 ",\"last_plain_bytes\":%" PRIu64
           ",\"last_success_ms\":%" PRId64 ",\"last_duration_s\":%.6f,\"duration_sum_s\":%.6f"
           ",\"deleted\":%" PRIu64 ",\"delete_failed\":%" PRIu64 ",\"restored\":%" PRIu64
           ",\"restore_failed\":%" PRIu64 ",\"restore_fallbacks\":%" PRIu64
           ",\"token_fetches\":%" PRIu64 ",\"token_failures\":%" PRIu64
           ",\"sessions\":%u,\"queued\":%u,\"where\":\"%s\"}}\n",
           prefix, st.backups_ok, st.backups_failed, st.unchanged, st.skipped, st.bytes_uploaded,
           st.last_bytes, st.last_plain_bytes, st.last_success_ms, st.last_duration_s,
           st.duration_sum_s, st.deleted, st.delete_failed, st.restored, st.restore_failed,
           st.restore_fallbacks, st.token_fetches, st.token_failures, st.sessions, st.queued,
           wg_backup_store_where(bk));
    fflush(stdout);
}

static int set_meta(const char *session)
{
    char m[256];

    snprintf(m, sizeof m, "{\"name\":\"%s\",\"want_running\":1,\"config\":{\"note\":\"x\"}}",
             session);
    return wg_backup_set_meta(bk, session, m, strlen(m));
}

static wa_store *open_store(void)
{
    char p[1100];
    wa_store *s = NULL;

    mkdir(data_dir, 0700);
    snprintf(p, sizeof p, "%s/libwa.db", data_dir);
    if (wa_store_open(p, NULL, &s))
        return NULL;
    return s;
}

static int make_account(const char *name, unsigned seed, unsigned prekeys)
{
    wa_store *s = open_store();
    wa_store_creds c;
    wa_store_prekey *pk;
    uint8_t rec[1200];
    int64_t id;
    unsigned i;
    int rc;

    if (!s)
        return WA_ESTORE;
    if ((rc = wa_store_account(s, name, 1, &id)))
        goto out;
    memset(&c, 0, sizeof c);
    /* keys look random (they are, in life): zlib must not get an easy ride */
    for (i = 0; i < 32; i++) {
        c.noise_priv[i] = (uint8_t)(seed * 31 + i * 7);
        c.noise_pub[i] = (uint8_t)(seed * 17 + i * 13);
        c.identity_priv[i] = (uint8_t)(seed * 5 + i * 11);
        c.identity_pub[i] = (uint8_t)(seed * 3 + i * 29);
        c.spk_priv[i] = (uint8_t)(seed + i * 37);
        c.spk_pub[i] = (uint8_t)(seed + i * 41);
        c.adv_secret[i] = (uint8_t)(seed + i * 43);
    }
    memset(c.spk_sig, (int)seed, 64);
    c.registration_id = 1000 + seed;
    c.spk_id = 1;
    c.spk_created = 1700000000;
    c.next_prekey_id = prekeys + 1;
    snprintf(c.me_jid, sizeof c.me_jid, "1555%07u:2@s.whatsapp.net", seed);
    snprintf(c.me_lid, sizeof c.me_lid, "9%08u:2@lid", seed);
    snprintf(c.platform, sizeof c.platform, "smba");
    snprintf(c.push_name, sizeof c.push_name, "Tester %u", seed);
    c.adv_identity_len = 400;
    for (i = 0; i < c.adv_identity_len; i++)
        c.adv_identity[i] = (uint8_t)(i * 7 + seed);
    if ((rc = wa_store_creds_save(s, id, &c, 0)))
        goto out;
    pk = calloc(prekeys ? prekeys : 1, sizeof *pk);
    for (i = 0; i < prekeys; i++) {
        unsigned k;
        pk[i].id = i + 1;
        for (k = 0; k < 32; k++) {
            uint32_t x = (i + 1) * 2654435761u ^ (k * 40503u) ^ seed;
            pk[i].priv[k] = (uint8_t)(x >> 8);
            pk[i].pub[k] = (uint8_t)(x >> 16);
        }
    }
    rc = prekeys ? wa_store_prekeys_add(s, id, pk, prekeys, prekeys + 1) : 0;
    free(pk);
    if (rc)
        goto out;
    /* three Signal sessions with peers, as after a few messages */
    for (i = 0; i < 3; i++) {
        char peer[32];
        wa_store_addr a = {peer, (uint16_t)i};
        unsigned k;
        snprintf(peer, sizeof peer, "1555999%04u", i);
        for (k = 0; k < sizeof rec; k++)
            rec[k] = (uint8_t)((k * 2654435761u) >> (k % 24)) ^ (uint8_t)seed;
        if ((rc = wa_store_session_put(s, id, &a, rec, sizeof rec)))
            goto out;
    }
out:
    wa_store_close(s);
    return rc;
}

static int touch_account(const char *name)
{
    wa_store *s = open_store();
    wa_store_prekey pk;
    size_t n = 0;
    int64_t id;
    int rc;

    if (!s)
        return WA_ESTORE;
    rc = wa_store_account(s, name, 0, &id);
    if (rc == 0)
        rc = wa_store_prekeys_pending(s, id, &pk, 1, &n);
    if (rc == 0 && n == 1)
        rc = wa_store_prekey_remove(s, id, pk.id);
    wa_store_close(s);
    return rc;
}

static void check_account(const char *name, unsigned seed)
{
    wa_store *s = open_store();
    wa_store_creds c;
    size_t n = 0;
    int64_t id;
    int paired = 0, creds_ok = 0;

    if (s && wa_store_account(s, name, 0, &id) == 0) {
        paired = wa_store_account_paired(s, id);
        if (wa_store_creds_load(s, id, &c) == 0) {
            creds_ok = c.registration_id == 1000 + seed &&
                       c.noise_priv[1] == (uint8_t)(seed * 31 + 7) && c.adv_identity_len == 400;
            wa_store_creds_wipe(&c);
        }
        wa_store_prekeys_count(s, id, 0, &n);
        printf("{\"found\":1,\"paired\":%d,\"creds_ok\":%d,\"prekeys\":%zu}\n", paired, creds_ok,
               n);
    } else {
        printf("{\"found\":0}\n");
    }
    fflush(stdout);
    wa_store_close(s);
}

static void on_restored(const char *session, const uint8_t *meta, size_t len, const char *object,
                        void *ud)
{
    int n;

    (void)ud;
    n = snprintf(restored_json + restored_len, sizeof restored_json - restored_len,
                 "%s{\"session\":\"%s\",\"object\":\"%s\",\"meta\":%.*s}", restored_len ? "," : "",
                 session, object, (int)len, (const char *)meta);
    if (n > 0 && (size_t)n < sizeof restored_json - restored_len)
        restored_len += (size_t)n;
}

static void on_restore_done(const wg_backup_restore_report *rep, void *ud)
{
    (void)ud;
    report = *rep;
    restore_done = 1;
}

static void on_flushed(int ok, void *ud)
{
    (void)ud;
    flush_ok = ok;
}

static void on_closed(void *ud)
{
    (void)ud;
    closed = 1;
}

static void wait_idle(void)
{
    while (!idle())
        uv_run(&loop, UV_RUN_ONCE);
}

int main(void)
{
    wg_backup_env env;
    const char *dd = getenv("DATA_DIR"), *type = getenv("SESSION_STORAGE_TYPE");
    const char *iv = getenv("SESSION_BACKUP_INTERVAL");
    char err[512], line[4096];
    uv_timer_t guard;
    int storage = WG_STORAGE_LOCAL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("LOG_LEVEL")) {
        int lv;
        if (wa_log_level_parse(getenv("LOG_LEVEL"), &lv) == 0)
            wa_log_set_level(lv);
    }
    snprintf(data_dir, sizeof data_dir, "%s", dd ? dd : "./data");
    if (type && !strcmp(type, "s3"))
        storage = WG_STORAGE_S3;
    else if (type && !strcmp(type, "cloud"))
        storage = WG_STORAGE_CLOUD;
    mkdir(data_dir, 0700);
    if (wg_backup_env_load(&env, storage, iv ? (unsigned)atoi(iv) : 3600000, data_dir, NULL, NULL,
                           err, sizeof err)) {
        printf("{\"error\":\"%s\"}\n", err);
        return 1;
    }
    uv_loop_init(&loop);
    if (wg_backup_open(&loop, &env, NULL, &bk)) {
        printf("{\"error\":\"wg_backup_open failed\"}\n");
        return 1;
    }
    wg_backup_env_wipe(&env);
    /* a repeating timer so that UV_RUN_ONCE never blocks for long */
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 20, 20);
    printf("{\"ready\":1,\"where\":\"%s\",\"store\":\"%s\"}\n", wg_backup_store_where(bk),
           wg_backup_store_name(bk));
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "", a[128] = "", b[128] = "", c[128] = "";
        int n = sscanf(line, "%31s %127s %127s %127s", cmd, a, b, c);
        if (n < 1)
            continue;
        if (!strcmp(cmd, "make")) {
            int rc = make_account(a, (unsigned)atoi(b), (unsigned)atoi(c));
            if (rc == 0)
                rc = set_meta(a);
            printf("{\"rc\":%d}\n", rc);
        } else if (!strcmp(cmd, "touch")) {
            printf("{\"rc\":%d}\n", touch_account(a));
        } else if (!strcmp(cmd, "request")) {
            int rc = wg_backup_request(bk, a);
            if (rc) {
                printf("{\"rc\":%d}\n", rc);
                continue;
            }
            uv_run(&loop, UV_RUN_NOWAIT);
            wait_idle();
            print_stats("");
        } else if (!strcmp(cmd, "track")) {
            printf("{\"rc\":%d}\n", wg_backup_track(bk, a));
        } else if (!strcmp(cmd, "purge")) {
            int rc = wg_backup_untrack(bk, a, 1);
            uv_run(&loop, UV_RUN_NOWAIT);
            wait_idle();
            printf("{\"rc\":%d}\n", rc);
        } else if (!strcmp(cmd, "flush")) {
            flush_ok = -1;
            if (wg_backup_flush(bk, 0, on_flushed, NULL) == 0)
                while (flush_ok < 0)
                    uv_run(&loop, UV_RUN_ONCE);
            print_stats(flush_ok == 1 ? "\"ok\":1," : "\"ok\":0,");
        } else if (!strcmp(cmd, "restore")) {
            const char *names[3];
            size_t nn = 0;
            wg_backup_restore_options o;
            int rc;
            if (n >= 2)
                names[nn++] = a;
            if (n >= 3)
                names[nn++] = b;
            if (n >= 4)
                names[nn++] = c;
            memset(&o, 0, sizeof o);
            o.sessions = nn ? names : NULL;
            o.n_sessions = nn;
            o.restored = on_restored;
            o.done = on_restore_done;
            restored_len = 0;
            restored_json[0] = '\0';
            restore_done = 0;
            rc = wg_backup_restore(bk, &o);
            if (rc) {
                printf("{\"rc\":%d}\n", rc);
                continue;
            }
            run_until(&restore_done);
            printf("{\"report\":{\"sessions\":%u,\"restored\":%u,\"skipped\":%u,\"failed\":%u,"
                   "\"fallbacks\":%u,\"seconds\":%.6f},\"restored\":[%s]}\n",
                   report.sessions, report.restored, report.skipped, report.failed,
                   report.fallbacks, report.seconds, restored_json);
        } else if (!strcmp(cmd, "check")) {
            check_account(a, (unsigned)atoi(b));
        } else if (!strcmp(cmd, "stats")) {
            print_stats("");
        } else if (!strcmp(cmd, "sleep")) {
            uint64_t end = uv_hrtime() + (uint64_t)atoi(a) * 1000000ull;
            while (uv_hrtime() < end)
                uv_run(&loop, UV_RUN_ONCE);
            printf("{\"rc\":0}\n");
        } else if (!strcmp(cmd, "quit")) {
            break;
        } else {
            printf("{\"error\":\"unknown command\"}\n");
        }
        fflush(stdout);
    }
    wg_backup_close(bk, on_closed, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    run_until(&closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "driver: handles left open\n");
        return 3;
    }
    return 0;
}
