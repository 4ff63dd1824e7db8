/*
 * main.c - the wagate daemon: configuration from the environment, logging, one libuv loop
 * running the gateway, graceful shutdown on SIGTERM/SIGINT.
 *
 * The generated API key (API_KEY unset) is shown once, when it is generated, on stdout and
 * only in text log mode: in JSON mode (Cloud Run, K_SERVICE set) stdout goes to the log store,
 * where a credential must never land; there the key stays in DATA_DIR/api_key and the log says
 * so. See docs/configuration.md.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "api.h"
#include "backup/backup.h"
#include "config.h"
#include "core/log.h"
#include "core/util.h"
#include "gateway.h"
#include "logging.h"

#define COMPONENT "main"

static uv_signal_t sig_term, sig_int;
static wg_gateway *gateway;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wagate [--version] [--help] [--routes]\n"
            "\n"
            "WhatsApp Web gateway: sessions over a REST API, health, metrics and a dashboard.\n"
            "Configured by environment variables (PORT, DATA_DIR, API_KEY, LOG_FORMAT, ...;\n"
            "see docs/configuration.md).\n"
            "\n"
            "  --version  print the version and exit\n"
            "  --help     print this help and exit\n"
            "  --routes   print the HTTP route table (METHOD PATH [public] [planned]) and exit\n");
}

static void print_routes(void)
{
    size_t i;

    for (i = 0; i < wg_routes_count; i++)
        printf("%s %s%s%s\n", wg_routes[i].method, wg_routes[i].pattern,
               (wg_routes[i].flags & WG_ROUTE_PUBLIC) ? " public" : "",
               (wg_routes[i].flags & WG_ROUTE_PLANNED) ? " planned" : "");
}

/* SIGALRM after SIGTERM: the shutdown took too long. Async-signal-safe only. */
static void on_deadline(int sig)
{
    static const char msg[] = "wagate: shutdown deadline passed; exiting now\n";
    ssize_t n;

    (void)sig;
    n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sigaction sa;

    (void)h;
    wa_log_info(COMPONENT, "%s received: shutting down (deadline %d s)",
                signum == SIGTERM ? "SIGTERM" : "SIGINT", WG_SHUTDOWN_DEADLINE_S);
    /* a watchdog outside the loop: it fires even if the loop is stuck */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_deadline;
    sigaction(SIGALRM, &sa, NULL);
    alarm(WG_SHUTDOWN_DEADLINE_S);
    /* closing the signal handles restores the default action: a second Ctrl-C kills */
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    wg_gateway_shutdown(gateway);
}

static void announce(const wg_gateway *gw)
{
    const char *host = strcmp(gw->cfg.host, "0.0.0.0") == 0 ? "localhost" : gw->cfg.host;
    int port = wg_gateway_port(gw);

    if (gw->cfg.log_format == WG_LOG_FORMAT_JSON) {
        wa_log_info(COMPONENT, "dashboard at http://%s:%d/", host, port);
        if (gw->api_key_generated)
            wa_log_warn(COMPONENT,
                        "API_KEY is unset: a key was generated and stored in %s (mode 0600). It "
                        "is not printed in JSON log mode; set API_KEY (e.g. from Secret Manager) "
                        "to choose it",
                        gw->api_key_path);
        return;
    }
    printf("wagate %s: dashboard at http://%s:%d/\n", WG_VERSION, host, port);
    if (gw->api_key_generated) {
        /* the only time the key is ever shown */
        printf("API key (generated now, stored in %s, shown only this once):\n"
               "  %s\n"
               "open the dashboard with it: http://%s:%d/#key=%s\n",
               gw->api_key_path, gw->api_key, host, port, gw->api_key);
    } else if (gw->api_key_from_file) {
        printf("API key: the one generated earlier, in %s\n", gw->api_key_path);
    } else {
        printf("API key: from API_KEY\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    wg_config cfg;
    wg_backup_env benv;
    wg_gateway_options gopts;
    char err[512];
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("wagate %s\n", WG_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--routes")) {
            print_routes();
            return 0;
        }
        fprintf(stderr, "wagate: unknown argument: %s\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (wg_config_load(&cfg, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "wagate: invalid configuration: %s\n", err);
        return 2;
    }
    if (wg_backup_env_load(&benv, cfg.storage_type, cfg.backup_interval_ms, cfg.data_dir, NULL,
                           NULL, err, sizeof err)) {
        fprintf(stderr, "wagate: invalid configuration: %s\n", err);
        wg_config_wipe(&cfg);
        return 2;
    }
    wg_logging_init(cfg.log_format, cfg.log_level, stderr);
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop)) {
        wa_log_error(COMPONENT, "cannot create the event loop");
        return 1;
    }
    memset(&gopts, 0, sizeof gopts);
    /* local storage backs up only when given a directory (another volume): DATA_DIR alone
     * is the default, as before */
    if (cfg.storage_type != WG_STORAGE_LOCAL || getenv("SESSION_BACKUP_DIR"))
        gopts.backup = &benv; /* copied by the backup engine */
    rc = wg_gateway_start(&loop, &cfg, &gopts, &gateway);
    wg_config_wipe(&cfg);
    wg_backup_env_wipe(&benv);
    if (rc) {
        wa_log_error(COMPONENT, "start-up failed");
        if (gateway) {
            uv_run(&loop, UV_RUN_DEFAULT);
            wg_gateway_free(gateway);
        }
        uv_loop_close(&loop);
        wg_logging_cleanup();
        return 1;
    }
    uv_signal_init(&loop, &sig_term);
    uv_signal_init(&loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    announce(gateway);

    uv_run(&loop, UV_RUN_DEFAULT);

    wg_gateway_free(gateway);
    rc = uv_loop_close(&loop);
    if (rc)
        wa_log_warn(COMPONENT, "event loop closed with handles still open");
    wa_log_info(COMPONENT, "stopped");
    wg_logging_cleanup();
    return 0;
}
