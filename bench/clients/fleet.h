/*
 * fleet.h - many libwa clients on one uv loop against one wasim, for bench/clients and the
 * interop test tests/interop/clients100: a small HTTP client for wasim's control API (libcurl
 * multi driven by the same loop, so pairing N accounts never blocks the clients), a fleet of
 * N wa_client slots that pair (QR text -> POST /phones/{phone}/scan) or log in from the store
 * and count their events, and the process figures the benchmark prints (RSS, peak RSS, heap,
 * CPU time).
 *
 * Everything here runs on the loop's thread. Strings given in fleet_opts are borrowed and must
 * outlive the fleet.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_BENCH_FLEET_H
#define WA_BENCH_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "wa/client.h"
#include "wa/store.h"

/* ---- process figures ------------------------------------------------------------------------ */

typedef struct fleet_mem {
    long rss_kib;      /* VmRSS of /proc/self/status */
    long hwm_kib;      /* VmHWM: peak RSS since start or since fleet_mem_reset_peak */
    size_t heap_used;  /* mallinfo2: bytes in use (uordblks + hblkhd) */
    size_t heap_arena; /* mallinfo2: bytes the allocator holds from the system (arena + hblkhd) */
} fleet_mem;

void fleet_mem_read(fleet_mem *m);
/* Reset VmHWM to the current RSS (writes "5" to /proc/self/clear_refs). 0 or -1. */
int fleet_mem_reset_peak(void);
/* User + system CPU seconds of this process (getrusage). */
double fleet_cpu_seconds(void);
/* Monotonic milliseconds. */
uint64_t fleet_now_ms(void);
/* Raise the soft open-file limit to the hard limit; *soft_out gets the new soft limit. 0 or -1. */
int fleet_raise_nofile(unsigned long *soft_out);

/* Run `loop` until done(ud) returns non-zero (checked after every loop iteration, and at
 * least every 10 ms) or timeout_ms passes. Returns 1 when done, 0 on timeout. */
int fleet_run_until(uv_loop_t *loop, int (*done)(void *ud), void *ud, unsigned timeout_ms);
/* Run `loop` for ms milliseconds (no periodic wake-up of our own: for idle measurements). */
void fleet_run_for(uv_loop_t *loop, unsigned ms);

/* ---- wasim's control API -------------------------------------------------------------------- */

typedef struct fleet_ctl fleet_ctl;

/* A finished request: status is the HTTP status, or -1 when the transfer failed (then body is
 * the libcurl error text). body is NUL-terminated and valid during the call only. */
typedef void (*fleet_ctl_cb)(int status, const char *body, size_t len, void *user_data);

#define FLEET_CTL_BODY_MAX   (1u << 20) /* longest reply kept */
#define FLEET_CTL_CONNS      8          /* concurrent connections to the control port */
#define FLEET_CTL_TIMEOUT_MS 30000
#define FLEET_JID_MAX        192 /* a device JID with its NUL */

/* base_url: "http://127.0.0.1:PORT" (copied). 0 or -1. */
int fleet_ctl_new(uv_loop_t *loop, const char *base_url, fleet_ctl **out);
/* Queue a request (method "GET" or "POST"; body JSON or NULL; both copied). cb may be NULL.
 * 0 or -1 (allocation or libcurl failure: cb is not called). */
int fleet_ctl_request(fleet_ctl *c, const char *method, const char *path, const char *body,
                      fleet_ctl_cb cb, void *user_data);
/* Requests not yet finished. */
size_t fleet_ctl_pending(const fleet_ctl *c);
/* A request, waited for by running the loop (call only outside loop callbacks). *body_out
 * (malloc'd, NUL-terminated; may be NULL) and the HTTP status, or -1. */
int fleet_ctl_call(fleet_ctl *c, const char *method, const char *path, const char *body,
                   char **body_out);
/* Cancel what is pending (no callbacks) and close; run the loop afterwards so the handles
 * close. NULL allowed. */
void fleet_ctl_free(fleet_ctl *c);

/* ---- the fleet ---------------------------------------------------------------------------------
 */

enum fleet_state {
    FLEET_NONE = 0,  /* no client */
    FLEET_STARTED,   /* client started, never connected yet */
    FLEET_CONNECTED, /* logged in */
    FLEET_RETRYING,  /* disconnected, the client reconnects by itself */
    FLEET_STOPPED,   /* disconnected for good (see last_reason) */
};

typedef struct fleet_opts {
    const char *ws_url;
    const uint8_t *root_key; /* 32 bytes: wasim's root */
    const char *ca_file;     /* wasim's certificate for wss:// (or NULL) */
    unsigned keepalive_ms, connect_timeout_ms, reconnect_base_ms, reconnect_max_ms; /* 0: dflt */
    const char *account_prefix; /* account i is "<prefix><i>" */
    uint64_t phone_base;        /* account i pairs as phone number phone_base + i */
    /* optional: wa_client_callbacks.stanza of every member (user_data: its fleet_member) */
    int (*stanza)(wa_client *c, const struct wa_node *node, void *member);
    /* optional: the message and sent callbacks of every member (user_data: its fleet_member) */
    void (*message)(wa_client *c, const wa_client_message *msg, void *member);
    void (*sent)(wa_client *c, const char *id, int err, void *member);
} fleet_opts;

typedef struct fleet fleet;

typedef struct fleet_member {
    fleet *fleet;
    wa_client *client;
    unsigned idx;
    int state;         /* enum fleet_state */
    int pairing;       /* started without credentials */
    int scan_inflight; /* a /scan request is out */
    int scanned;       /* wasim accepted a scan */
    int paired;        /* the paired callback came */
    int last_reason;   /* last disconnect reason (enum wa_disconnect_reason) */
    int last_code;
    uint64_t started_ms;   /* fleet_now_ms() of wa_client_start */
    uint64_t connected_ms; /* first connected event since the start */
    unsigned connects, disconnects;
    int settled; /* free for the program's use (bench_clients: logged in once or stopped) */
    char jid[FLEET_JID_MAX];
} fleet_member;

struct fleet {
    uv_loop_t *loop;
    wa_store *store;
    fleet_ctl *ctl; /* for pairing; may be NULL when only logging in */
    fleet_opts o;
    fleet_member *m;
    unsigned n;
    /* counters */
    unsigned n_active;    /* members with a client */
    unsigned n_connected; /* logged in now */
    unsigned n_ever;      /* members connected at least once since their start */
    unsigned n_paired;    /* paired callbacks */
    unsigned n_stopped;   /* members stopped for good by something else than us */
    unsigned n_scan_errors;
    uint64_t connect_events, disconnect_events, retry_disconnects;
    uint64_t first_start_ms, last_connected_ms;
    /* called after every event of a member (from inside the client's callback) */
    void (*on_change)(fleet *f, fleet_member *m, void *user_data);
    void *user_data;
};

/* n members, no clients yet. opts copied (its strings borrowed). 0 or -1. */
int fleet_new(uv_loop_t *loop, wa_store *store, fleet_ctl *ctl, const fleet_opts *opts, unsigned n,
              fleet **out);
/* Create member i's client (account "<prefix><i>") and start it: it logs in when the account
 * has credentials, else it pairs as phone phone_base + i (its first QR is scanned through the
 * control API; a refused scan is retried on the next QR). 0 or a WA_E* code. */
int fleet_start(fleet *f, unsigned i);
/* Free member i's client (no callback follows). */
void fleet_close(fleet *f, unsigned i);
/* Free every client, then the fleet; run the loop afterwards so the handles close. */
void fleet_free(fleet *f);

#endif
