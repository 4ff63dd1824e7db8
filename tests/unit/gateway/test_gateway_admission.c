/*
 * test_gateway_admission.c - the login admission ramp of src/session.c: at most 200 sessions
 * (LOGIN_ADMIT_MAX) log in at once, the others wait STARTING and start, in order, as logins
 * finish (any status but STARTING); stopped or deleted waiting sessions never start; nothing
 * starts during shutdown. Through a recording backend (no network).
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
#include <unistd.h>

#include <cmocka.h>

#include "db.h"
#include "session.h"
#include "wa/error.h"

#define ADMIT_MAX 200 /* session.c LOGIN_ADMIT_MAX (documented there) */
#define N_STORED  450

typedef struct rec {
    wg_sessions *ss;
    unsigned starts, max_inflight;
    int fail_name_suffix; /* start of a session whose name ends in "-fail" fails */
    char started[N_STORED + 300][WG_SESSION_NAME_MAX + 1];
} rec;

static rec R;

/* Sessions started and still logging in (STARTING with an open handle). */
static unsigned inflight(void)
{
    unsigned n = 0;
    size_t i;

    for (i = 0; i < wg_sessions_count(R.ss); i++) {
        wg_session *s = wg_sessions_at(R.ss, i);
        n += s->backend && s->status == WG_STATUS_STARTING;
    }
    return n;
}

static int r_open(void *ctx, wg_session *s, void **handle)
{
    (void)ctx;
    *handle = s;
    return 0;
}

static int r_start(void *ctx, void *handle)
{
    wg_session *s = handle;
    unsigned i;

    (void)ctx;
    for (i = 0; i < R.starts; i++) /* every session starts at most once here */
        assert_string_not_equal(R.started[i], s->name);
    snprintf(R.started[R.starts++], sizeof R.started[0], "%s", s->name);
    if (strstr(s->name, "-fail"))
        return WA_EIO;
    wg_session_report_status(s, WG_STATUS_STARTING, NULL);
    if (inflight() > R.max_inflight)
        R.max_inflight = inflight();
    return 0;
}

static void r_stop(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static int r_logout(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
    return 0;
}

static void r_close(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static int r_purge(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return 0;
}

static const wg_backend_ops rec_ops = {
    .name = "recording",
    .open = r_open,
    .start = r_start,
    .stop = r_stop,
    .logout = r_logout,
    .close = r_close,
    .purge = r_purge,
};

static int was_started(const char *name)
{
    unsigned i;

    for (i = 0; i < R.starts; i++)
        if (!strcmp(R.started[i], name))
            return 1;
    return 0;
}

/* Finish the login of the first started session still STARTING with status st. */
static int finish_one(int st)
{
    size_t i;

    for (i = 0; i < wg_sessions_count(R.ss); i++) {
        wg_session *s = wg_sessions_at(R.ss, i);
        if (s->backend && s->status == WG_STATUS_STARTING) {
            wg_session_report_status(s, st, NULL);
            return 1;
        }
    }
    return 0;
}

static void test_ramp(void **state)
{
    char dir[] = "/tmp/wg-admission-XXXXXX", path[256], name[32];
    wg_backend be = {&rec_ops, NULL};
    wg_db *db;
    wg_session *s, *w1, *w2, *created;
    size_t i, waiting = 0;
    unsigned starts_before;

    (void)state;
    memset(&R, 0, sizeof R);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/wagate.db", dir);
    assert_int_equal(wg_db_open(path, &db), 0);
    for (i = 0; i < N_STORED; i++) {
        snprintf(name, sizeof name, "s%04zu%s", i, i == 300 ? "-fail" : "");
        assert_int_equal(wg_db_session_insert(db, name, 1, 1, "{}"), 0);
    }
    assert_int_equal(wg_sessions_new(db, &be, &R.ss), 0);

    /* boot: the first 200 (in name order) start, the others wait, STARTING */
    assert_int_equal(wg_sessions_load(R.ss), 0);
    assert_int_equal(R.starts, ADMIT_MAX);
    assert_int_equal(inflight(), ADMIT_MAX);
    for (i = 0; i < wg_sessions_count(R.ss); i++) {
        s = wg_sessions_at(R.ss, i);
        assert_int_equal(s->status, WG_STATUS_STARTING);
        assert_int_equal(was_started(s->name), i < ADMIT_MAX);
        if (!s->backend) {
            assert_non_null(strstr(s->reason, "waiting to log in"));
            waiting++;
        }
    }
    assert_int_equal(waiting, N_STORED - ADMIT_MAX);

    /* a session created now waits behind the others, even with its own start */
    assert_int_equal(wg_sessions_create(R.ss, "zz-late", "{}", 1, &created), 0);
    assert_int_equal(created->status, WG_STATUS_STARTING);
    assert_false(was_started("zz-late"));

    /* every finished login (whatever its outcome) lets exactly one more in */
    assert_true(finish_one(WG_STATUS_WORKING));
    assert_int_equal(R.starts, ADMIT_MAX + 1);
    assert_true(wg_sessions_find(R.ss, "s0200")->backend != NULL);
    assert_true(finish_one(WG_STATUS_SCAN_QR));
    assert_true(finish_one(WG_STATUS_DISCONNECTED));
    assert_true(finish_one(WG_STATUS_FAILED));
    assert_int_equal(R.starts, ADMIT_MAX + 4);
    assert_int_equal(inflight(), ADMIT_MAX);

    /* waiting sessions stopped or deleted never start */
    w1 = wg_sessions_find(R.ss, "s0440");
    w2 = wg_sessions_find(R.ss, "s0441");
    assert_null(w1->backend);
    assert_int_equal(wg_sessions_stop(R.ss, w1), 0);
    assert_int_equal(w1->status, WG_STATUS_STOPPED);
    assert_int_equal(wg_sessions_delete(R.ss, w2), 0);
    /* a started session stopped while logging in frees its slot */
    starts_before = R.starts;
    assert_int_equal(wg_sessions_stop(R.ss, wg_sessions_find(R.ss, "s0010")), 0);
    assert_int_equal(R.starts, starts_before + 1);

    /* drain: logins finish one by one until nobody waits */
    while (finish_one(WG_STATUS_WORKING))
        ;
    assert_int_equal(R.max_inflight, ADMIT_MAX);
    assert_false(was_started("s0440"));
    assert_false(was_started("s0441"));
    assert_true(was_started("zz-late"));
    /* 450 stored + zz-late, less the stopped and the deleted waiting ones */
    assert_int_equal(R.starts, N_STORED + 1 - 2);
    s = wg_sessions_find(R.ss, "s0300-fail");
    assert_int_equal(s->status, WG_STATUS_FAILED);
    for (i = 0; i < wg_sessions_count(R.ss); i++)
        assert_int_not_equal(wg_sessions_at(R.ss, i)->status, WG_STATUS_STARTING);

    /* with free slots a start is immediate */
    assert_int_equal(wg_sessions_start(R.ss, w1), 0);
    assert_true(was_started("s0440"));

    /* shutdown with sessions waiting: stopping the logged-in ones admits nobody */
    for (i = 0; i < ADMIT_MAX + 20; i++) {
        snprintf(name, sizeof name, "t%04zu", i);
        assert_int_equal(wg_sessions_create(R.ss, name, "{}", 1, &created), 0);
    }
    starts_before = R.starts;
    wg_sessions_stop_all(R.ss);
    assert_int_equal(R.starts, starts_before);

    wg_sessions_free(R.ss);
    wg_db_close(db);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ramp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
