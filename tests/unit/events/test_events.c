/* test_events.c - src/events: ids (format, known vector, monotonic, clock going back, seeding),
 * envelopes, filters, the backoff schedule, outcome classes, the webhook signature (known
 * answers), the outbox (claims, retries, replay, pruning, crash recovery), and the hub end to end
 * on one loop with an in-process webhook receiver: durability across a crash (a child process
 * publishes and dies without delivering; the parent reopens and everything arrives once), 4xx
 * not retried, 5xx/429 retried, attempts exhausted, and the SIGTERM flush deadline.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "core/util.h"
#include "crypto/crypto.h"
#include "events/envelope.h"
#include "events/events.h"
#include "events/outbox.h"
#include "events/webhook.h"
#include "http/httpd.h"
#include "wa/error.h"

#include "harness.h"

/* ---- ids ---- */

static void test_id_vector(void **state)
{
    /* independently computed: time 0x0123456789AB, random bytes 00 01 .. 09 */
    wg_event_idgen g;
    char id[WG_EVENT_ID_LEN + 1];
    uint64_t ms = 0;

    (void)state;
    memset(&g, 0, sizeof g);
    assert_int_equal(wg_event_idgen_seed(&g, "014D2PF2DB000G40R40M30E209"), 0);
    assert_int_equal(g.last_ms, 0x0123456789ABull);
    assert_memory_equal(g.last_rand, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10);
    /* same millisecond: the random part is incremented by one */
    assert_int_equal(wg_event_id_next(&g, 0x0123456789ABull, id), 0);
    assert_string_equal(id, "014D2PF2DB000G40R40M30E20A");
    assert_int_equal(wg_event_id_time(id, &ms), 0);
    assert_int_equal(ms, 0x0123456789ABull);
    assert_true(wg_event_id_valid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_false(wg_event_id_valid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ")); /* over 128 bits */
    assert_false(wg_event_id_valid("014D2PF2DB000G40R40M30E20I")); /* I is not Crockford */
    assert_false(wg_event_id_valid("014d2pf2db000g40r40m30e209")); /* lower case refused */
    assert_false(wg_event_id_valid("014D2PF2DB000G40R40M30E20"));  /* 25 chars */
    assert_false(wg_event_id_valid(""));
    assert_int_equal(wg_event_idgen_seed(&g, "nope"), WA_EINVAL);
}

static void test_id_monotonic(void **state)
{
    wg_event_idgen g;
    char prev[WG_EVENT_ID_LEN + 1], id[WG_EVENT_ID_LEN + 1];
    uint64_t ms;
    int i;

    (void)state;
    memset(&g, 0, sizeof g);
    assert_int_equal(wg_event_id_next(&g, 1700000000000ull, prev), 0);
    assert_true(wg_event_id_valid(prev));
    for (i = 0; i < 5000; i++) {
        /* same ms, later ms, and the clock going back by a second */
        uint64_t now = i % 3 == 0   ? 1700000000000ull
                       : i % 3 == 1 ? 1700000000000ull + (uint64_t)i
                                    : 1699999999000ull;
        assert_int_equal(wg_event_id_next(&g, now, id), 0);
        assert_true(wg_event_id_valid(id));
        assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
    assert_int_equal(wg_event_id_time(id, &ms), 0);
    assert_true(ms >= 1700000000000ull);

    /* seeded with a stored id from the future: still after it */
    memset(&g, 0, sizeof g);
    memcpy(prev, "7ZZZZZZZZZ0000000000000000", sizeof prev);
    assert_int_equal(wg_event_idgen_seed(&g, prev), 0);
    assert_int_equal(wg_event_id_next(&g, 1700000000000ull, id), 0);
    assert_true(strcmp(prev, id) < 0);
    /* seeding with an older id does not move the generator back */
    assert_int_equal(wg_event_idgen_seed(&g, "00000000000000000000000000"), 0);
    assert_int_equal(wg_event_id_next(&g, 1700000000000ull, prev), 0);
    assert_true(strcmp(id, prev) < 0);
}

/* ---- envelope ---- */

static void test_envelope(void **state)
{
    wg_envelope env;
    json_t *payload = json_pack("{s:s, s:i}", "text", "héllo \"x\"\n", "n", 3), *back;
    json_error_t jerr;
    const char *key;
    json_t *v;
    const char *order[] = {"id", "timestamp", "session", "event", "payload"};
    int i = 0;

    (void)state;
    assert_non_null(payload);
    assert_int_equal(wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1712345678901, "s1",
                                       "message", payload),
                     0);
    assert_non_null(env.json);
    assert_int_equal(env.json_len, strlen(env.json));
    assert_null(strchr(env.json, '\n')); /* compact: one SSE data line */
    back = json_loads(env.json, 0, &jerr);
    assert_non_null(back);
    json_object_foreach(back, key, v)
    {
        assert_true(i < 5);
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(i, 5);
    assert_string_equal(json_string_value(json_object_get(back, "id")),
                        "014D2PF2DB000G40R40M30E209");
    assert_int_equal(json_integer_value(json_object_get(back, "timestamp")), 1712345678901);
    assert_string_equal(json_string_value(json_object_get(back, "session")), "s1");
    assert_string_equal(json_string_value(json_object_get(back, "event")), "message");
    assert_true(json_equal(json_object_get(back, "payload"), payload));
    assert_int_equal(payload->refcount, 1); /* borrowed, not kept */
    json_decref(back);
    wg_envelope_cleanup(&env);

    /* null session */
    assert_int_equal(
        wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, NULL, "session.status", payload),
        0);
    assert_non_null(strstr(env.json, "\"session\":null"));
    assert_string_equal(env.session, "");
    wg_envelope_cleanup(&env);

    /* refusals */
    assert_int_equal(
        wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, "s1", "nope", payload), WA_EINVAL);
    assert_int_equal(wg_envelope_build(&env, "bad", 1, "s1", "message", payload), WA_EINVAL);
    assert_int_equal(
        wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, "", "message", payload),
        WA_EINVAL);
    assert_int_equal(
        wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, "a\nb", "message", payload),
        WA_EINVAL);
    v = json_string("not an object");
    assert_int_equal(wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, "s1", "message", v),
                     WA_EINVAL);
    json_decref(v);
    {
        char *big = malloc(WG_EVENT_JSON_MAX + 1);
        json_t *p;
        memset(big, 'a', WG_EVENT_JSON_MAX);
        big[WG_EVENT_JSON_MAX] = '\0';
        p = json_pack("{s:s}", "t", big);
        assert_int_equal(
            wg_envelope_build(&env, "014D2PF2DB000G40R40M30E209", 1, "s1", "message", p),
            WA_ELIMIT);
        json_decref(p);
        free(big);
    }
    json_decref(payload);
    /* every registered name is accepted, and the list is the issue's */
    assert_true(wg_event_name_known("message.decrypt_failed"));
    assert_true(wg_event_name_known("presence.update"));
    assert_true(wg_event_name_known("contact.identity_changed"));
    assert_false(wg_event_name_known("message."));
    for (i = 0; wg_event_names()[i]; i++)
        ;
    assert_int_equal(i, 10); /* the nine and contact.identity_changed */
}

static void test_filter(void **state)
{
    wg_event_filter f;
    char bad[80];

    (void)state;
    wg_event_filter_init(&f);
    assert_true(wg_event_filter_match(&f, "s1", "message"));
    assert_true(wg_event_filter_match(&f, NULL, "session.status"));

    assert_int_equal(wg_event_filter_parse(&f, "s1,s2", "message.*,group.update", bad, sizeof bad),
                     0);
    assert_false(wg_event_filter_match(&f, "s1", "message")); /* message.* is not message */
    assert_true(wg_event_filter_match(&f, "s1", "message.ack"));
    assert_true(wg_event_filter_match(&f, "s2", "group.update"));
    assert_false(wg_event_filter_match(&f, "s3", "group.update"));
    assert_false(wg_event_filter_match(&f, NULL, "group.update"));

    wg_event_filter_init(&f);
    assert_int_equal(wg_event_filter_parse(&f, "", ",message,,", bad, sizeof bad), 0);
    assert_int_equal(f.nevents, 1);
    assert_true(wg_event_filter_match(&f, "any", "message"));
    assert_false(wg_event_filter_match(&f, "any", "message.ack"));

    wg_event_filter_init(&f);
    assert_int_equal(wg_event_filter_parse(&f, NULL, "*", bad, sizeof bad), 0);
    assert_true(wg_event_filter_match(&f, "x", "presence.update"));

    wg_event_filter_init(&f);
    assert_int_equal(wg_event_filter_parse(&f, NULL, "message,bogus.thing", bad, sizeof bad),
                     WA_EINVAL);
    assert_string_equal(bad, "bogus.thing");
    assert_int_equal(wg_event_filter_add_event(&f, "nothing.*"), WA_EINVAL);
    assert_int_equal(wg_event_filter_add_event(&f, "message*"), WA_EINVAL);
    assert_int_equal(wg_event_filter_add_event(&f, "presence.*"), 0);
    wg_event_filter_init(&f);
    {
        char list[2000] = "";
        int i;
        for (i = 0; i < WG_EVENT_FILTER_MAX + 1; i++)
            strcat(list, "message,");
        assert_int_equal(wg_event_filter_parse(&f, NULL, list, bad, sizeof bad), WA_ELIMIT);
    }
    wg_event_filter_init(&f);
    assert_int_equal(wg_event_filter_parse(
                         &f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         NULL, bad, sizeof bad),
                     WA_EINVAL); /* 65 bytes */
}

/* ---- backoff, classes, signature ---- */

static void test_backoff(void **state)
{
    wg_backoff b = {1000, 60000, 10};
    unsigned a;

    (void)state;
    /* rnd 0 gives the lower bound d/2, rnd UINT32_MAX something in range */
    assert_int_equal(wg_backoff_delay_ms(&b, 1, 0), 500);
    assert_int_equal(wg_backoff_delay_ms(&b, 0, 0), 500);
    assert_int_equal(wg_backoff_delay_ms(&b, 2, 0), 1000);
    assert_int_equal(wg_backoff_delay_ms(&b, 3, 0), 2000);
    assert_int_equal(wg_backoff_delay_ms(&b, 6, 0), 16000);
    assert_int_equal(wg_backoff_delay_ms(&b, 7, 0), 30000); /* d capped at 60000 */
    assert_int_equal(wg_backoff_delay_ms(&b, 60, 0), 30000);
    assert_int_equal(wg_backoff_delay_ms(&b, 1, 500), 1000); /* 500 + 500 % 501 */
    assert_int_equal(wg_backoff_delay_ms(&b, 1, 501), 500);
    assert_int_equal(wg_backoff_delay_ms(&b, 1000000, 30000), 60000);
    for (a = 1; a < 40; a++) {
        uint64_t d = 1000;
        unsigned i, k;
        for (i = 1; i < a && d < 60000; i++)
            d *= 2;
        if (d > 60000)
            d = 60000;
        for (k = 0; k < 200; k++) {
            uint64_t v = wg_backoff_delay_ms(&b, a, wa_random_below(UINT32_MAX));
            assert_true(v >= d / 2 && v <= d);
        }
    }
    /* spread: jitter really varies */
    {
        uint64_t lo = UINT64_MAX, hi = 0;
        unsigned k;
        for (k = 0; k < 200; k++) {
            uint64_t v = wg_backoff_delay_ms(&b, 5, wa_random_below(UINT32_MAX));
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        assert_true(hi - lo > 2000);
    }
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(wg_webhook_classify(1, 200), WG_WEBHOOK_DONE);
    assert_int_equal(wg_webhook_classify(1, 204), WG_WEBHOOK_DONE);
    assert_int_equal(wg_webhook_classify(1, 299), WG_WEBHOOK_DONE);
    assert_int_equal(wg_webhook_classify(1, 400), WG_WEBHOOK_FAILED);
    assert_int_equal(wg_webhook_classify(1, 401), WG_WEBHOOK_FAILED);
    assert_int_equal(wg_webhook_classify(1, 404), WG_WEBHOOK_FAILED);
    assert_int_equal(wg_webhook_classify(1, 410), WG_WEBHOOK_FAILED);
    assert_int_equal(wg_webhook_classify(1, 408), WG_WEBHOOK_RETRY);
    assert_int_equal(wg_webhook_classify(1, 429), WG_WEBHOOK_RETRY);
    assert_int_equal(wg_webhook_classify(1, 500), WG_WEBHOOK_RETRY);
    assert_int_equal(wg_webhook_classify(1, 503), WG_WEBHOOK_RETRY);
    assert_int_equal(wg_webhook_classify(1, 301), WG_WEBHOOK_RETRY);
    assert_int_equal(wg_webhook_classify(0, 200), WG_WEBHOOK_RETRY); /* no response */
    assert_string_equal(wg_webhook_outcome_name(WG_WEBHOOK_FAILED), "failed");
}

static void test_signature(void **state)
{
    static const char body[] = "{\"id\":\"01HGW2N7EHJVJ1NWXB3D8ZCA3X\",\"event\":\"message\"}";
    char sig[WG_WEBHOOK_SIG_LEN + 1];
    uint8_t mac[32];
    char hex[65];

    (void)state;
    /* RFC 4231 test case 2: the HMAC underneath */
    assert_int_equal(
        wa_hmac_sha256(mac, (const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28), 0);
    wa_hex_encode(hex, mac, 32);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* printf '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test_secret */
    assert_int_equal(
        wg_webhook_sign(sig, "whsec_test_secret", 17, "1700000000", body, strlen(body)), 0);
    assert_string_equal(sig,
                        "sha256=35db5c3e7cc89163a677ae1bcae008126fe991e77d3c264200114a05aa2722f2");
    assert_true(wg_webhook_verify(sig, "whsec_test_secret", 17, "1700000000", body, strlen(body)));
    assert_false(wg_webhook_verify(sig, "whsec_test_secreT", 17, "1700000000", body, strlen(body)));
    assert_false(wg_webhook_verify(sig, "whsec_test_secret", 17, "1700000001", body, strlen(body)));
    assert_false(
        wg_webhook_verify(sig, "whsec_test_secret", 17, "1700000000", body, strlen(body) - 1));
    sig[20] ^= 1;
    assert_false(wg_webhook_verify(sig, "whsec_test_secret", 17, "1700000000", body, strlen(body)));
    assert_false(wg_webhook_verify("sha256=00", "whsec_test_secret", 17, "1", body, 1));
    assert_false(wg_webhook_verify(NULL, "k", 1, "1", body, 1));
}

/* ---- outbox ---- */

static void make_env(wg_envelope *env, wg_event_idgen *g, int64_t ts, const char *session,
                     const char *event)
{
    char id[WG_EVENT_ID_LEN + 1];
    json_t *p = json_pack("{s:s}", "k", "v");

    assert_int_equal(wg_event_id_next(g, (uint64_t)ts, id), 0);
    assert_int_equal(wg_envelope_build(env, id, ts, session, event, p), 0);
    json_decref(p);
}

typedef struct collect {
    char ids[64][WG_EVENT_ID_LEN + 1];
    int n;
} collect;

static int on_row(const char *id, const char *session, const char *event, const char *body,
                  size_t len, void *ud)
{
    collect *c = ud;

    (void)session;
    (void)event;
    assert_int_equal(strlen(body), len);
    assert_non_null(strstr(body, id));
    memcpy(c->ids[c->n++], id, WG_EVENT_ID_LEN + 1);
    return 0;
}

static void test_outbox(void **state)
{
    char dir[] = "/tmp/wg_events_XXXXXX", path[256], last[WG_EVENT_ID_LEN + 1];
    wg_outbox *ob;
    wg_event_idgen g;
    wg_envelope env[5];
    const char *both[] = {"global", "s:s1"};
    wg_delivery rows[8];
    size_t n, i;
    int64_t cnt, at, seq;
    unsigned attempts;
    int st, status;
    collect c;

    (void)state;
    memset(&g, 0, sizeof g);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(wg_outbox_open(path, 0, &ob), 0);
    assert_int_equal(wg_outbox_last_id(ob, last), 0);
    assert_string_equal(last, "");
    for (i = 0; i < 5; i++) {
        make_env(&env[i], &g, 1000 + (int64_t)i, "s1", "message");
        assert_int_equal(wg_outbox_insert(ob, &env[i], both, i < 3 ? 2 : 1, 5000, &seq), 0);
    }
    assert_int_equal(wg_outbox_insert(ob, &env[0], both, 1, 5000, NULL), WA_EEXIST);
    assert_int_equal(wg_outbox_last_id(ob, last), 0);
    assert_string_equal(last, env[4].id);
    assert_int_equal(wg_outbox_count(ob, -1, NULL, &cnt), 0);
    assert_int_equal(cnt, 8);
    /* nothing is handed out for targets that are not live */
    assert_int_equal(wg_outbox_due(ob, 6000, 0, rows, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wg_outbox_next_due(ob, &at), WA_ENOTFOUND);
    assert_int_equal(wg_outbox_set_live(ob, "s:s1", 1), 0);
    assert_int_equal(wg_outbox_next_due(ob, &at), 0);
    assert_int_equal(at, 5000);
    /* not due yet */
    assert_int_equal(wg_outbox_due(ob, 4999, 0, rows, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wg_outbox_due(ob, 5000, 0, rows, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, env[0].id);
    assert_string_equal(rows[1].id, env[1].id);
    assert_string_equal(rows[0].target, "s:s1");
    assert_int_equal(rows[0].attempts, 1);
    assert_string_equal(rows[0].body, env[0].json);
    /* claimed rows are not handed out twice */
    assert_int_equal(wg_outbox_due(ob, 5000, 0, rows + 2, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[2].id, env[2].id);
    assert_int_equal(wg_outbox_count(ob, WG_DELIVERY_INFLIGHT, NULL, &cnt), 0);
    assert_int_equal(cnt, 3);
    /* outcomes */
    assert_int_equal(wg_outbox_delivered(ob, rows[0].seq, rows[0].target), 0);
    assert_int_equal(wg_outbox_retry(ob, rows[1].seq, rows[1].target, 9000, 503, "HTTP 503"), 0);
    assert_int_equal(wg_outbox_failed(ob, rows[2].seq, rows[2].target, 400, "HTTP 400"), 0);
    assert_int_equal(wg_outbox_delivery_info(ob, env[1].id, "s:s1", &attempts, &st, &status), 0);
    assert_int_equal(attempts, 1);
    assert_int_equal(st, WG_DELIVERY_PENDING);
    assert_int_equal(status, 503);
    assert_int_equal(wg_outbox_delivery_info(ob, env[2].id, "s:s1", &attempts, &st, &status), 0);
    assert_int_equal(st, WG_DELIVERY_FAILED);
    assert_int_equal(wg_outbox_delivery_info(ob, env[0].id, "s:s1", NULL, NULL, NULL),
                     WA_ENOTFOUND);
    for (i = 0; i < 3; i++)
        wg_delivery_cleanup(&rows[i]);
    assert_int_equal(wg_outbox_next_due(ob, &at), 0);
    assert_int_equal(at, 9000);
    /* flush: a row waiting for its retry is due once if last tried before the flush */
    assert_int_equal(wg_outbox_due(ob, 6000, 5001, rows, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, env[1].id);
    assert_int_equal(rows[0].attempts, 2);
    assert_int_equal(wg_outbox_retry(ob, rows[0].seq, rows[0].target, 9500, 0, NULL), 0);
    wg_delivery_cleanup(&rows[0]);
    assert_int_equal(wg_outbox_due(ob, 6000, 5001, rows, 8, &n), 0);
    assert_int_equal(n, 0); /* tried during this flush (last_try 6000) */
    /* a target that answered wakes its waiting rows */
    assert_int_equal(wg_outbox_wake_target(ob, "s:s1", 6100), 0);
    assert_int_equal(wg_outbox_due(ob, 6100, 0, rows, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].attempts, 3);
    /* unclaim gives the attempt back */
    assert_int_equal(wg_outbox_unclaim(ob, rows[0].seq, rows[0].target, 6200), 0);
    assert_int_equal(wg_outbox_delivery_info(ob, env[1].id, "s:s1", &attempts, &st, NULL), 0);
    assert_int_equal(attempts, 2);
    assert_int_equal(st, WG_DELIVERY_PENDING);
    wg_delivery_cleanup(&rows[0]);
    /* crash while in flight: claim, close without an outcome, reopen */
    assert_int_equal(wg_outbox_due(ob, 6300, 0, rows, 8, &n), 0);
    assert_int_equal(n, 1); /* env[1]; env[3] and env[4] were only for "global" */
    assert_int_equal(rows[0].attempts, 3);
    wg_delivery_cleanup(&rows[0]);
    wg_outbox_close(ob);
    assert_int_equal(wg_outbox_open(path, 1, &ob), 0);
    assert_int_equal(wg_outbox_count(ob, WG_DELIVERY_INFLIGHT, NULL, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(wg_outbox_count(ob, WG_DELIVERY_PENDING, "s:s1", &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(wg_outbox_count(ob, WG_DELIVERY_PENDING, "global", &cnt), 0);
    assert_int_equal(cnt, 5);
    assert_int_equal(wg_outbox_delivery_info(ob, env[1].id, "s:s1", &attempts, &st, NULL), 0);
    assert_int_equal(attempts, 3); /* the interrupted attempt counts */
    assert_int_equal(st, WG_DELIVERY_PENDING);
    /* live targets are per process */
    assert_int_equal(wg_outbox_due(ob, 99999, 0, rows, 8, &n), 0);
    assert_int_equal(n, 0);

    /* replay in id order after a cursor */
    memset(&c, 0, sizeof c);
    assert_int_equal(wg_outbox_replay(ob, "", 100, on_row, &c, &n), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(n, 5);
    for (i = 0; i < 5; i++)
        assert_string_equal(c.ids[i], env[i].id);
    memset(&c, 0, sizeof c);
    assert_int_equal(wg_outbox_replay(ob, env[1].id, 2, on_row, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c.ids[0], env[2].id);
    assert_string_equal(c.ids[1], env[3].id);

    /* drop a target's deliveries */
    assert_int_equal(wg_outbox_drop_target(ob, "global", &cnt), 0);
    assert_int_equal(cnt, 5);
    /* prune: pending s:s1 rows keep their events (target not live but events recent enough) */
    assert_int_equal(wg_outbox_prune(ob, 0, 1000, &cnt), 0);
    assert_int_equal(cnt, 0);
    /* old and not live: pending dropped, events pruned except the newest */
    assert_int_equal(wg_outbox_prune(ob, 100000, 1000, &cnt), 0);
    assert_int_equal(cnt, 4);
    assert_int_equal(wg_outbox_count(ob, -1, NULL, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(wg_outbox_last_id(ob, last), 0);
    assert_string_equal(last, env[4].id);
    wg_outbox_close(ob);
    for (i = 0; i < 5; i++)
        wg_envelope_cleanup(&env[i]);
    harness_rmdir(dir);
}

static void test_outbox_keep_max(void **state)
{
    char dir[] = "/tmp/wg_events_XXXXXX", path[256];
    wg_outbox *ob;
    wg_event_idgen g;
    wg_envelope env;
    const char *t[] = {"global"};
    int64_t cnt;
    size_t n;
    collect c;
    int i;

    (void)state;
    memset(&g, 0, sizeof g);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(wg_outbox_open(path, 0, &ob), 0);
    for (i = 0; i < 20; i++) {
        make_env(&env, &g, 1000 + i, "s", "message");
        /* event 2 has a pending delivery: it must survive pruning */
        assert_int_equal(wg_outbox_insert(ob, &env, t, i == 2 ? 1 : 0, 0, NULL), 0);
        wg_envelope_cleanup(&env);
    }
    assert_int_equal(wg_outbox_set_live(ob, "global", 1), 0);
    assert_int_equal(wg_outbox_prune(ob, 0, 5, &cnt), 0);
    assert_int_equal(cnt, 14); /* 20 - 5 newest - the pending one */
    memset(&c, 0, sizeof c);
    assert_int_equal(wg_outbox_replay(ob, NULL, 100, on_row, &c, &n), 0);
    assert_int_equal(c.n, 6);
    wg_outbox_close(ob);
    harness_rmdir(dir);
}

/* ---- the hub with a webhook receiver on the same loop ---- */

#define SECRET "s3cr3t-for-tests"

static int respond_ok(receiver *r, const char *id, const char *event, unsigned attempt)
{
    (void)r;
    (void)id;
    (void)event;
    (void)attempt;
    return 200;
}

typedef struct crash_child_out {
    char ids[5][WG_EVENT_ID_LEN + 1];
} crash_child_out;

static void test_crash_resume(void **state)
{
    char dir[] = "/tmp/wg_events_XXXXXX", path[256], url[128];
    int fds[2];
    pid_t pid;
    int wst, i;
    crash_child_out co;
    uv_loop_t loop;
    receiver rx;
    wg_events *ev;
    wg_events_options o;
    wg_events_stats stats;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the "previous process": stores five events for the global webhook, then dies before
         * its loop ever ran (no delivery attempted) */
        uv_loop_t cl;
        wg_events *cev = NULL;
        close(fds[0]);
        memset(&o, 0, sizeof o);
        o.db_path = path;
        if (uv_loop_init(&cl) || wg_events_open(&cl, &o, &cev) ||
            wg_events_set_webhook(cev, NULL, "http://127.0.0.1:9/hook", NULL, SECRET))
            _exit(2);
        for (i = 0; i < 5; i++)
            if (wg_events_publish(cev, i % 2 ? "s1" : "s2", "message", json_pack("{s:i}", "i", i),
                                  co.ids[i]))
                _exit(3);
        if (write(fds[1], &co, sizeof co) != (ssize_t)sizeof co)
            _exit(4);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &co, sizeof co), (ssize_t)sizeof co);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

    assert_int_equal(uv_loop_init(&loop), 0);
    receiver_start(&rx, &loop, SECRET, respond_ok);
    memset(&o, 0, sizeof o);
    o.db_path = path;
    o.backoff.base_ms = 50;
    o.backoff.cap_ms = 200;
    assert_int_equal(wg_events_open(&loop, &o, &ev), 0);
    wg_events_get_stats(ev, &stats);
    assert_int_equal(stats.pending, 5);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rx.port);
    assert_int_equal(wg_events_set_webhook(ev, NULL, url, NULL, SECRET), 0);
    rx.want = 6;
    /* one more, published by this process */
    assert_int_equal(wg_events_publish(ev, "s1", "message.ack", json_pack("{s:s}", "a", "b"), NULL),
                     0);
    assert_true(harness_run_until(&loop, receiver_has_n, &rx, 10000));
    harness_run_for(&loop, 300); /* nothing more arrives */
    assert_int_equal(rx.n, 6);
    assert_int_equal(rx.dups, 0);
    assert_int_equal(rx.bad, 0);
    for (i = 0; i < 5; i++)
        assert_true(receiver_seen(&rx, co.ids[i]));
    wg_events_get_stats(ev, &stats);
    assert_int_equal(stats.pending, 0);
    assert_int_equal(stats.delivered, 6);
    assert_int_equal(stats.attempts, 6);
    harness_close_events(&loop, ev);

    /* a third start re-sends nothing */
    rx.n = 0;
    assert_int_equal(wg_events_open(&loop, &o, &ev), 0);
    assert_int_equal(wg_events_set_webhook(ev, NULL, url, NULL, SECRET), 0);
    harness_run_for(&loop, 300);
    assert_int_equal(rx.n, 0);
    harness_close_events(&loop, ev);
    receiver_stop(&rx, &loop);
    assert_int_equal(uv_loop_close(&loop), 0);
    harness_rmdir(dir);
}

/* 400 for "message.revoked", 503 twice then 200 for "message.edited", 429 always for
 * "presence.update", 200 otherwise */
static int respond_script(receiver *r, const char *id, const char *event, unsigned attempt)
{
    (void)r;
    (void)id;
    if (strcmp(event, "message.revoked") == 0)
        return 400;
    if (strcmp(event, "message.edited") == 0)
        return attempt < 3 ? 503 : 200;
    if (strcmp(event, "presence.update") == 0)
        return 429;
    return 200;
}

typedef struct attempts_seen {
    int n, done, retry, failed;
    int last_presence_outcome;
} attempts_seen;

static void on_attempt(const wg_webhook_attempt *a, void *ud)
{
    attempts_seen *s = ud;

    s->n++;
    if (a->outcome == WG_WEBHOOK_DONE)
        s->done++;
    else if (a->outcome == WG_WEBHOOK_RETRY)
        s->retry++;
    else
        s->failed++;
    assert_true(a->seconds >= 0);
    assert_non_null(a->event_id);
    if (strcmp(a->event, "presence.update") == 0)
        s->last_presence_outcome = a->outcome;
}

static int outcomes_done(void *ud)
{
    attempts_seen *s = ud;
    /* 1 (400) + 3 (503, 503, 200) + 4 (429 x4, given up) + 1 (200) */
    return s->n >= 9;
}

static void test_outcomes(void **state)
{
    char dir[] = "/tmp/wg_events_XXXXXX", path[256], url[128];
    char id_revoked[WG_EVENT_ID_LEN + 1], id_edited[WG_EVENT_ID_LEN + 1];
    char id_presence[WG_EVENT_ID_LEN + 1];
    uv_loop_t loop;
    receiver rx;
    wg_events *ev;
    wg_events_options o;
    wg_events_stats stats;
    attempts_seen seen = {0};
    const char *only_s1_filter[] = {"message", "message.*", NULL};
    wg_outbox *ob;
    unsigned attempts;
    int st, status;
    uint64_t total;
    size_t i;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(uv_loop_init(&loop), 0);
    receiver_start(&rx, &loop, SECRET, respond_script);
    memset(&o, 0, sizeof o);
    o.db_path = path;
    o.backoff.base_ms = 20;
    o.backoff.cap_ms = 80;
    o.backoff.max_attempts = 4;
    o.on_attempt = on_attempt;
    o.user_data = &seen;
    assert_int_equal(wg_events_open(&loop, &o, &ev), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rx.port);
    /* per-session target with a filter; no global target */
    assert_int_equal(wg_events_set_webhook(ev, "s1", url, only_s1_filter, SECRET), 0);
    assert_int_equal(wg_events_set_webhook(ev, "s1", url, NULL, SECRET), 0); /* replaced */
    assert_int_equal(wg_events_publish(ev, "s1", "message.revoked", json_pack("{}"), id_revoked),
                     0);
    assert_int_equal(wg_events_publish(ev, "s1", "message.edited", json_pack("{}"), id_edited), 0);
    assert_int_equal(wg_events_publish(ev, "s1", "presence.update", json_pack("{}"), id_presence),
                     0);
    assert_int_equal(wg_events_publish(ev, "s1", "message", json_pack("{}"), NULL), 0);
    /* another session's events do not reach s1's target */
    assert_int_equal(wg_events_publish(ev, "s2", "message", json_pack("{}"), NULL), 0);
    assert_true(harness_run_until(&loop, outcomes_done, &seen, 10000));
    harness_run_for(&loop, 300);
    assert_int_equal(seen.n, 9);
    assert_int_equal(seen.done, 2);
    assert_int_equal(seen.failed, 2); /* the 400 and the exhausted 429 */
    assert_int_equal(seen.retry, 5);  /* 503 x2, 429 x3 */
    assert_int_equal(seen.last_presence_outcome, WG_WEBHOOK_FAILED);
    assert_int_equal(rx.n, 2); /* 2xx only */
    assert_int_equal(rx.calls, 9);
    assert_int_equal(rx.bad, 0);
    wg_events_get_stats(ev, &stats);
    assert_int_equal(stats.published, 5);
    assert_int_equal(stats.attempts, 9);
    assert_int_equal(stats.delivered, 2);
    assert_int_equal(stats.failed, 2);
    assert_int_equal(stats.retried, 5);
    assert_int_equal(stats.pending, 0);
    for (total = 0, i = 0; i <= WG_EVENTS_LATENCY_BUCKETS; i++)
        total += stats.latency_counts[i];
    assert_int_equal(total, 9);
    assert_true(stats.latency_sum > 0);
    /* bad arguments */
    assert_int_equal(wg_events_set_webhook(ev, NULL, "ftp://x/", NULL, NULL), WA_EINVAL);
    assert_int_equal(wg_events_set_webhook(ev, NULL, "http://a b/", NULL, NULL), WA_EINVAL);
    {
        const char *bad[] = {"message", "nope", NULL};
        assert_int_equal(wg_events_set_webhook(ev, NULL, url, bad, NULL), WA_EINVAL);
    }
    assert_int_equal(wg_events_publish(ev, "s1", "nope", json_pack("{}"), NULL), WA_EINVAL);
    assert_int_equal(wg_events_publish(ev, "s1", "message", NULL, NULL), WA_ENOMEM);
    assert_int_equal(wg_events_remove_webhook(ev, "s9", 0), WA_ENOTFOUND);
    assert_int_equal(wg_events_remove_webhook(ev, "s1", 1), 0);
    harness_close_events(&loop, ev);
    receiver_stop(&rx, &loop);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* what the outbox says */
    assert_int_equal(wg_outbox_open(path, 0, &ob), 0);
    assert_int_equal(wg_outbox_delivery_info(ob, id_revoked, "s:s1", &attempts, &st, &status), 0);
    assert_int_equal(attempts, 1); /* 4xx: not retried */
    assert_int_equal(st, WG_DELIVERY_FAILED);
    assert_int_equal(status, 400);
    assert_int_equal(wg_outbox_delivery_info(ob, id_presence, "s:s1", &attempts, &st, &status), 0);
    assert_int_equal(attempts, 4);
    assert_int_equal(st, WG_DELIVERY_FAILED);
    assert_int_equal(status, 429);
    assert_int_equal(wg_outbox_delivery_info(ob, id_edited, "s:s1", NULL, NULL, NULL),
                     WA_ENOTFOUND); /* delivered: row gone */
    wg_outbox_close(ob);
    harness_rmdir(dir);
}

static void on_flushed(void *ud)
{
    (*(int *)ud)++;
}

static int flag_set(void *ud)
{
    return *(int *)ud != 0;
}

static void test_flush(void **state)
{
    char dir[] = "/tmp/wg_events_XXXXXX", path[256], url[128];
    uv_loop_t loop;
    receiver rx;
    wg_events *ev;
    wg_events_options o;
    wg_events_stats stats;
    int flushed = 0, port, i;
    uint64_t t0, dt;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(uv_loop_init(&loop), 0);
    /* a port nobody listens on: take one and close it */
    receiver_start(&rx, &loop, SECRET, respond_ok);
    port = rx.port;
    receiver_stop(&rx, &loop);
    memset(&o, 0, sizeof o);
    o.db_path = path;
    o.backoff.base_ms = 60000; /* retries far away: only the flush tries again */
    o.backoff.cap_ms = 60000;
    assert_int_equal(wg_events_open(&loop, &o, &ev), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    assert_int_equal(wg_events_set_webhook(ev, NULL, url, NULL, SECRET), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(wg_events_publish(ev, "s", "message", json_pack("{}"), NULL), 0);
    harness_run_for(&loop, 200);
    wg_events_get_stats(ev, &stats);
    assert_int_equal(stats.attempts, 3);
    assert_int_equal(stats.pending, 3);
    /* the flush retries all three once (connection refused: fast), then reports */
    t0 = uv_now(&loop);
    wg_events_flush(ev, 2000, on_flushed, &flushed);
    assert_true(harness_run_until(&loop, flag_set, &flushed, 5000));
    dt = uv_now(&loop) - t0;
    assert_true(dt < 4000); /* well before the 2 s deadline unless the machine crawls */
    wg_events_get_stats(ev, &stats);
    assert_int_equal(stats.attempts, 6);
    assert_int_equal(stats.pending, 3);
    harness_close_events(&loop, ev);

    /* a receiver that never answers: the deadline aborts the requests, rows stay pending with
     * their attempt not counted */
    {
        int sfd = harness_black_hole(&port);
        flushed = 0;
        o.attempt_timeout_ms = 30000;
        assert_int_equal(wg_events_open(&loop, &o, &ev), 0);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
        assert_int_equal(wg_events_set_webhook(ev, NULL, url, NULL, SECRET), 0);
        harness_run_for(&loop, 100);
        wg_events_get_stats(ev, &stats);
        assert_int_equal(stats.inflight, 0); /* retries are 60 s away */
        t0 = uv_now(&loop);
        wg_events_flush(ev, 300, on_flushed, &flushed);
        assert_true(harness_run_until(&loop, flag_set, &flushed, 5000));
        dt = uv_now(&loop) - t0;
        assert_true(dt >= 250 && dt < 4000);
        wg_events_get_stats(ev, &stats);
        assert_int_equal(stats.inflight, 0);
        assert_int_equal(stats.pending, 3);
        harness_close_events(&loop, ev);
        close(sfd);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    harness_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_vector),       cmocka_unit_test(test_id_monotonic),
        cmocka_unit_test(test_envelope),        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_backoff),         cmocka_unit_test(test_classify),
        cmocka_unit_test(test_signature),       cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_outbox_keep_max), cmocka_unit_test(test_crash_resume),
        cmocka_unit_test(test_outcomes),        cmocka_unit_test(test_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
