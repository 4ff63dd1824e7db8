/*
 * main.c - wasim: command line, event loop, signals.
 *
 *   wasim --listen 127.0.0.1:PORT --control 127.0.0.1:PORT [--tls] [--cert F --key F]
 *         [--state FILE] [--trace FILE] [--log-level LEVEL]
 *
 * Prints `wasim ready ws=<url> control=<url>` once it accepts connections; exits cleanly on
 * SIGTERM/SIGINT. --state FILE keeps the server identity, accounts, devices, queues and groups
 * in SQLite across restarts (state.c). See docs/wasim.md.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "noise/cert.h"
#include "sim.h"
#include "wa/error.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wasim --listen HOST:PORT --control HOST:PORT [--tls] [--cert FILE --key FILE]\n"
            "             [--state FILE] [--trace FILE] [--log-level LEVEL]\n");
}

static int split_hostport(const char *arg, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(arg, ':');
    char *end;
    long p;

    if (!colon || (size_t)(colon - arg) >= cap || colon == arg)
        return -1;
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || p < 0 || p > 65535 || end == colon + 1)
        return -1;
    *port = (int)p;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 20)) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A certificate chain for the static key under the root key, with a new intermediate. */
static int make_chain(sim *s)
{
    uint8_t inter_priv[32], inter_pub[32];
    wa_noise_cert_params cp;
    uint64_t now = (uint64_t)time(NULL);
    int rc;

    if ((rc = wa_x25519_keygen(inter_priv, inter_pub)) != 0)
        return rc;
    memset(&cp, 0, sizeof cp);
    cp.root_priv = s->root_priv;
    cp.intermediate_priv = inter_priv;
    cp.leaf_key = s->static_pub;
    cp.intermediate_serial = 1 + wa_random_below(1000);
    cp.leaf_serial = 1000 + wa_random_below(1000);
    cp.not_before = now - 3600;
    cp.not_after = now + 30 * 86400;
    wa_buf_reset(&s->cert_chain);
    rc = wa_noise_cert_create(&cp, &s->cert_chain);
    wa_wipe(inter_priv, sizeof inter_priv);
    return rc;
}

/* The server identity: read back from --state, else made (and stored). A stored chain about
 * to expire is issued again under the same root and static key, so clients that trust the root
 * key keep connecting. */
static int make_identity(sim *s)
{
    int rc = sim_state_load_identity(s);

    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (sim_state_chain_fresh(s))
            return 0;
        wa_log_info("sim", "state: the stored certificate chain expires soon: issued again");
    } else if ((rc = wa_x25519_keygen(s->root_priv, s->root_pub)) != 0 ||
               (rc = wa_x25519_keygen(s->static_priv, s->static_pub)) != 0) {
        return rc;
    }
    rc = make_chain(s);
    if (rc == 0)
        rc = sim_state_save_identity(s);
    return rc;
}

/* Every connection is a descriptor: raise the soft open-file limit to the hard one, so that
 * wasim holds its 10,000 connections (issue 3) where the default soft limit is 1024. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            wa_log_warn("sim", "cannot raise the open-file limit");
    }
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void shutdown_sim(sim *s)
{
    sim_conn *c;

    if (s->listener) {
        wa_listener_close(s->listener);
        s->listener = NULL;
    }
    for (c = s->conns; c; c = c->next)
        sim_conn_close(c);
    if (s->httpd)
        sim_control_stop(s);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sim *s = h->data;

    wa_log_info("sim", "signal %d: shutting down", signum);
    shutdown_sim(s);
}

int main(int argc, char **argv)
{
    sim s;
    uv_loop_t loop;
    char lhost[64] = "", chost[64] = "";
    int lport = -1, cport = -1, use_tls = 0, i, rc, lvl;
    const char *cert_file = NULL, *key_file = NULL, *trace_file = NULL, *state_file = NULL;
    wa_listener_opts lo;

    memset(&s, 0, sizeof s);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--listen") == 0 && v) {
            if (split_hostport(v, lhost, sizeof lhost, &lport)) {
                fprintf(stderr, "wasim: --listen wants HOST:PORT, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--control") == 0 && v) {
            if (split_hostport(v, chost, sizeof chost, &cport)) {
                fprintf(stderr, "wasim: --control wants HOST:PORT, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--tls") == 0) {
            use_tls = 1;
        } else if (strcmp(a, "--cert") == 0 && v) {
            cert_file = v;
            i++;
        } else if (strcmp(a, "--key") == 0 && v) {
            key_file = v;
            i++;
        } else if (strcmp(a, "--trace") == 0 && v) {
            trace_file = v;
            i++;
        } else if (strcmp(a, "--state") == 0 && v) {
            state_file = v;
            i++;
        } else if (strcmp(a, "--log-level") == 0 && v) {
            if (wa_log_level_parse(v, &lvl)) {
                fprintf(stderr, "wasim: bad --log-level '%s'\n", v);
                return 2;
            }
            wa_log_set_level(lvl);
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "wasim: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (lport < 0 || cport < 0) {
        usage(stderr);
        return 2;
    }
    if ((cert_file || key_file) && !(cert_file && key_file)) {
        fprintf(stderr, "wasim: --cert and --key go together\n");
        return 2;
    }
    wa_buf_init(&s.cert_chain, 4096);
    if (state_file && sim_state_open(&s, state_file) != 0) {
        fprintf(stderr, "wasim: cannot use the state file %s (see the log above)\n", state_file);
        return 1;
    }
    if (make_identity(&s) != 0 || sim_state_load(&s) != 0) {
        fprintf(stderr, "wasim: %s\n",
                state_file ? "cannot read the state file back, or make server keys there"
                           : "cannot make server keys");
        sim_free_phones(&s);
        sim_state_close(&s);
        wa_buf_cleanup(&s.cert_chain);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    uv_loop_init(&loop);
    s.loop = &loop;
    if (trace_file) {
        s.trace = fopen(trace_file, "w");
        if (!s.trace) {
            fprintf(stderr, "wasim: cannot open trace file %s: %s\n", trace_file, strerror(errno));
            return 1;
        }
    }
    if (use_tls || cert_file) {
        char *cert = NULL, *key = NULL;
        if (cert_file) {
            cert = read_file(cert_file);
            key = read_file(key_file);
            if (!cert || !key) {
                fprintf(stderr, "wasim: cannot read --cert/--key\n");
                return 1;
            }
        } else if (wa_tls_generate_self_signed(lhost, &cert, &key) != 0) {
            fprintf(stderr, "wasim: cannot generate a certificate\n");
            return 1;
        }
        rc = wa_tls_ctx_new_server(cert, key, &s.tls);
        if (rc) {
            fprintf(stderr, "wasim: TLS setup failed: %s\n", wa_strerror(rc));
            return 1;
        }
        s.ca_pem = strdup(cert);
        wa_wipe(key, strlen(key));
        free(cert);
        free(key);
    }
    memset(&lo, 0, sizeof lo);
    lo.host = lhost;
    lo.port = (uint16_t)lport;
    lo.tls = s.tls;
    lo.on_accept = sim_on_accept;
    lo.user_data = &s;
    lo.backlog = 4096;
    rc = wa_listener_start(&loop, &lo, &s.listener);
    if (rc) {
        fprintf(stderr, "wasim: cannot listen on %s:%d: %s\n", lhost, lport, wa_strerror(rc));
        return 1;
    }
    if (sim_control_start(&s, chost, cport) != 0) {
        fprintf(stderr, "wasim: cannot start the control API on %s:%d\n", chost, cport);
        return 1;
    }
    snprintf(s.ws_url, sizeof s.ws_url, "%s://%s:%d/ws/chat", s.tls ? "wss" : "ws", lhost,
             wa_listener_port(s.listener));
    snprintf(s.control_url, sizeof s.control_url, "http://%s:%d", chost, sim_control_port(&s));
    uv_signal_init(&loop, &s.sigterm);
    uv_signal_init(&loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    printf("wasim ready ws=%s control=%s\n", s.ws_url, s.control_url);
    fflush(stdout);

    uv_run(&loop, UV_RUN_DEFAULT);

    uv_walk(&loop, on_walk_close, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    sim_free_phones(&s);
    sim_state_close(&s);
    wa_buf_cleanup(&s.cert_chain);
    wa_wipe(s.root_priv, sizeof s.root_priv);
    wa_wipe(s.static_priv, sizeof s.static_priv);
    if (s.tls)
        wa_tls_ctx_free(s.tls);
    free(s.ca_pem);
    if (s.trace)
        fclose(s.trace);
    return rc == 0 ? 0 : 1;
}
