/*
 * wa-cli - a command-line client over libwa (include/wa/client.h), for people and tests.
 *
 *   wa-cli --store FILE [options] pair [--phone NUMBER]
 *       Pairs the account: prints `QR <text>` as refs rotate (or `CODE <code>` with --phone),
 *       then `PAIRED <jid>` once the credentials are durable, waits for the first login and
 *       exits 0. A terminal failure prints `FAILED <reason> <text>` and exits 1.
 *   wa-cli --store FILE [options] listen
 *       Logs in from the store and prints one JSON line per event until SIGINT/SIGTERM (exit 0)
 *       or a disconnect that will not be retried (exit 1):
 *         {"event":"connected","jid":"..."}
 *         {"event":"disconnected","reason":"restart","code":515,"text":"...","will_retry":true,
 *          "retry_ms":0}
 *         {"event":"logged_out"}
 *
 * Options: --account NAME (default "default"), --url URL (default the real WhatsApp),
 * --root-key HEX (trusted Noise root), --ca FILE (extra TLS CA), --proxy URL,
 * --keepalive MS, --reconnect-base MS, --reconnect-max MS, --version A.B.C, --push-name NAME,
 * --log-level LEVEL (stderr; default warn), --rotate-signed-prekey (listen: rotate once after
 * the first login and print {"event":"signed_prekey_rotated","ok":true}).
 *
 * stdout is line-buffered so scripts see each line as it happens.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"

typedef struct cli {
    uv_loop_t *loop;
    wa_client *client;
    wa_store *store;
    uv_signal_t sigint, sigterm;
    uv_timer_t quit_timer;
    int listen;
    int rotate; /* --rotate-signed-prekey: once, after the first login */
    int exit_code;
    int quitting;
} cli;

static void usage(FILE *f)
{
    fprintf(f, "usage: wa-cli --store FILE [--account NAME] [--url URL] [--root-key HEX]\n"
               "              [--ca FILE] [--proxy URL] [--keepalive MS] [--reconnect-base MS]\n"
               "              [--reconnect-max MS] [--version A.B.C] [--push-name NAME]\n"
               "              [--log-level LEVEL] (pair [--phone NUMBER] |\n"
               "              listen [--rotate-signed-prekey])\n");
}

/* JSON string body (without quotes) of s. */
static void json_str(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

static void on_quit_timer(uv_timer_t *t)
{
    cli *k = t->data;

    wa_client_free(k->client);
    k->client = NULL;
    uv_close((uv_handle_t *)&k->sigint, NULL);
    uv_close((uv_handle_t *)&k->sigterm, NULL);
    uv_close((uv_handle_t *)&k->quit_timer, NULL);
}

/* Tear down outside the current callback. */
static void quit(cli *k, int code)
{
    if (k->quitting)
        return;
    k->quitting = 1;
    k->exit_code = code;
    uv_timer_start(&k->quit_timer, on_quit_timer, 0, 0);
}

static void on_qr(wa_client *c, const char *text, void *ud)
{
    (void)c;
    (void)ud;
    printf("QR %s\n", text);
}

static void on_pair_code(wa_client *c, const char *code, void *ud)
{
    (void)c;
    (void)ud;
    printf("CODE %s\n", code);
}

static void on_paired(wa_client *c, const char *jid, const char *lid, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->listen) {
        printf("{\"event\":\"paired\",\"jid\":\"");
        json_str(stdout, jid);
        printf("\",\"lid\":\"");
        json_str(stdout, lid);
        printf("\"}\n");
    } else {
        printf("PAIRED %s\n", jid);
    }
}

static void on_connected(wa_client *c, void *ud)
{
    cli *k = ud;

    if (!k->listen) {
        quit(k, 0); /* paired and logged in once: prekeys are on the server */
        return;
    }
    printf("{\"event\":\"connected\",\"jid\":\"");
    json_str(stdout, wa_client_jid(c));
    printf("\"}\n");
    if (k->rotate) {
        int rc = wa_client_rotate_signed_prekey(c);
        k->rotate = 0;
        printf("{\"event\":\"signed_prekey_rotated\",\"ok\":%s}\n", rc ? "false" : "true");
    }
}

static void on_disconnected(wa_client *c, const wa_client_disconnect_info *info, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->listen) {
        printf("{\"event\":\"disconnected\",\"reason\":\"%s\",\"code\":%d,\"text\":\"",
               wa_disconnect_reason_name(info->reason), info->code);
        json_str(stdout, info->text);
        printf("\",\"will_retry\":%s,\"retry_ms\":%u}\n", info->will_retry ? "true" : "false",
               info->retry_ms);
    } else if (!info->will_retry && info->reason != WA_DISC_STOPPED) {
        printf("FAILED %s %s\n", wa_disconnect_reason_name(info->reason), info->text);
    }
    if (!info->will_retry && info->reason != WA_DISC_LOGGED_OUT)
        quit(k, info->reason == WA_DISC_STOPPED ? k->exit_code : 1);
}

static void on_logged_out(wa_client *c, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->listen)
        printf("{\"event\":\"logged_out\"}\n");
    quit(k, 1);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cli *k = s->data;

    (void)signum;
    if (k->quitting)
        return;
    k->exit_code = 0;
    /* a connection that was up reports disconnected{stopped}, which quits */
    if (!wa_client_stop(k->client))
        quit(k, 0);
}

int main(int argc, char **argv)
{
    static const wa_client_callbacks cbs = {on_qr,           on_pair_code,  on_paired, on_connected,
                                            on_disconnected, on_logged_out, NULL};
    wa_client_config cfg;
    uv_loop_t loop;
    cli k;
    const char *store_path = NULL, *cmd = NULL, *phone = NULL, *root_hex = NULL;
    uint8_t root[32];
    int i, rc, level;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    wa_log_set_level(WA_LOG_WARN);
    memset(&cfg, 0, sizeof cfg);
    memset(&k, 0, sizeof k);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "pair") || !strcmp(a, "listen")) {
            cmd = a;
            continue;
        }
        if (!strcmp(a, "--rotate-signed-prekey")) {
            k.rotate = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--store"))
            store_path = v;
        else if (!strcmp(a, "--account"))
            cfg.account = v;
        else if (!strcmp(a, "--url"))
            cfg.ws_url = v;
        else if (!strcmp(a, "--root-key"))
            root_hex = v;
        else if (!strcmp(a, "--ca"))
            cfg.ca_file = v;
        else if (!strcmp(a, "--proxy"))
            cfg.proxy = v;
        else if (!strcmp(a, "--keepalive"))
            cfg.keepalive_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reconnect-base"))
            cfg.reconnect_base_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reconnect-max"))
            cfg.reconnect_max_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--version"))
            cfg.version = v;
        else if (!strcmp(a, "--push-name"))
            cfg.push_name = v;
        else if (!strcmp(a, "--phone"))
            phone = v;
        else if (!strcmp(a, "--log-level")) {
            if (wa_log_level_parse(v, &level) != 0) {
                fprintf(stderr, "wa-cli: bad log level %s\n", v);
                return 2;
            }
            wa_log_set_level(level);
        } else {
            fprintf(stderr, "wa-cli: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!store_path || !cmd) {
        usage(stderr);
        return 2;
    }
    if (root_hex) {
        if (wa_hex_decode(root, sizeof root, root_hex, strlen(root_hex)) != 0) {
            fprintf(stderr, "wa-cli: --root-key needs 64 hex digits\n");
            return 2;
        }
        cfg.root_key = root;
    }
    k.listen = !strcmp(cmd, "listen");
    if (phone && k.listen) {
        fprintf(stderr, "wa-cli: --phone goes with pair\n");
        return 2;
    }
    rc = wa_store_open(store_path, NULL, &k.store);
    if (rc) {
        fprintf(stderr, "wa-cli: cannot open store %s: %s\n", store_path, wa_strerror(rc));
        return 1;
    }
    uv_loop_init(&loop);
    k.loop = &loop;
    rc = wa_client_new(&loop, k.store, &cfg, &cbs, &k, &k.client);
    if (rc) {
        fprintf(stderr, "wa-cli: %s\n", wa_strerror(rc));
        wa_store_close(k.store);
        uv_loop_close(&loop);
        return rc == WA_EINVAL ? 2 : 1;
    }
    if (!k.listen && wa_client_jid(k.client)[0]) {
        printf("PAIRED %s\n", wa_client_jid(k.client));
        fprintf(stderr, "wa-cli: the account is already paired\n");
        k.quitting = 1; /* nothing to do */
    } else if (k.listen && !wa_client_jid(k.client)[0]) {
        fprintf(stderr, "wa-cli: the account is not paired (run pair first)\n");
        k.quitting = 1;
        k.exit_code = 1;
    }
    if (k.quitting) {
        wa_client_free(k.client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        wa_store_close(k.store);
        return k.exit_code;
    }
    if (phone && (rc = wa_client_pair_phone(k.client, phone)) != 0) {
        fprintf(stderr, "wa-cli: bad phone number: %s\n", wa_strerror(rc));
        wa_client_free(k.client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        wa_store_close(k.store);
        return 2;
    }
    uv_signal_init(&loop, &k.sigint);
    uv_signal_init(&loop, &k.sigterm);
    k.sigint.data = k.sigterm.data = &k;
    uv_signal_start(&k.sigint, on_signal, SIGINT);
    uv_signal_start(&k.sigterm, on_signal, SIGTERM);
    uv_timer_init(&loop, &k.quit_timer);
    k.quit_timer.data = &k;
    wa_client_start(k.client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    wa_store_close(k.store);
    return k.exit_code;
}
