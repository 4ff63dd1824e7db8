/*
 * curluv.h - libcurl's multi interface driven by a libuv loop, shared by the gateway's HTTP
 * clients (webhook delivery in src/events, backup uploads in src/backup).
 *
 * Transport: curl's "multi_socket" API (https://curl.se/libcurl/c/libcurl-multi.html): curl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one uv_poll each) and when to
 * call it back (CURLMOPT_TIMERFUNCTION -> one uv_timer); we call curl_multi_socket_action on
 * readiness or timeout and read finished transfers with curl_multi_info_read. No thread of our
 * own; the multi handle keeps connections alive between requests to the same host.
 *
 * A caller owns its easy handles and a wg_curluv_xfer per transfer (usually embedded in its own
 * request struct). Everything runs on the loop thread.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_CURLUV_H
#define WG_CURLUV_H

#include <curl/curl.h>
#include <uv.h>

typedef struct wg_curluv wg_curluv;
typedef struct wg_curluv_xfer wg_curluv_xfer;

/* A transfer finished (result CURLE_OK or the failure). The easy handle has already been
 * removed from the multi handle: the callback may clean it up, free x, add new transfers, and
 * even call wg_curluv_close. */
typedef void (*wg_curluv_done_cb)(wg_curluv_xfer *x, CURLcode result);

struct wg_curluv_xfer {
    CURL *easy;             /* set by the caller, configured, before wg_curluv_add */
    wg_curluv_done_cb done; /* required */
    void *user_data;        /* the caller's */
    int added;              /* private: 1 while in the multi handle */
};

/* A multi handle on `loop` (borrowed; it must outlive the wg_curluv's close). Calls
 * curl_global_init (reference-counted by libcurl). 0 and *out; WA_EIO, WA_ENOMEM. */
int wg_curluv_new(uv_loop_t *loop, wg_curluv **out);

/* Start x. Sets CURLOPT_PRIVATE and CURLOPT_NOSIGNAL on x->easy (the caller must not use
 * CURLOPT_PRIVATE itself). x must stay valid until its done callback or wg_curluv_remove.
 * 0 or WA_EIO (curl refused the handle; no callback follows). */
int wg_curluv_add(wg_curluv *m, wg_curluv_xfer *x);

/* Abort x if it is running; its done callback is not called. The easy handle stays the
 * caller's. No-op if x is not running. */
void wg_curluv_remove(wg_curluv *m, wg_curluv_xfer *x);

/* Number of transfers running. */
unsigned wg_curluv_running(const wg_curluv *m);

/* Release curl and close the uv handles; `closed(user_data)` (may be NULL) runs once the last
 * handle is closed, after m was freed. Transfers still running are removed without callback:
 * remove (and free) them first. NULL m allowed (then closed is not called). */
void wg_curluv_close(wg_curluv *m, void (*closed)(void *user_data), void *user_data);

#endif
