/*
 * api.h - wagate's HTTP routes: the table (also what docs/openapi.yaml must describe; the test
 * tests/unit/gateway/check_openapi.py compares the two through `wagate --routes`), routing,
 * authentication and the handlers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_API_H
#define WG_API_H

#include <stddef.h>

#include "gateway.h"
#include "http/httpd.h"

#define WG_ROUTE_PARAMS_MAX 4

enum {
    WG_ROUTE_PUBLIC = 1,  /* no X-Api-Key (health, readiness, metrics, dashboard) */
    WG_ROUTE_PLANNED = 2, /* in the API but not implemented yet: 501 not_implemented */
};

typedef void (*wg_route_fn)(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params);

typedef struct wg_route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* "/api/sessions/{name}/start": {x} matches one non-empty segment */
    wg_route_fn fn;      /* NULL for planned routes */
    unsigned flags;
} wg_route;

extern const wg_route wg_routes[];
extern const size_t wg_routes_count;

/* The HTTP handler (user_data: the wg_gateway). */
void wg_api_handle(wg_http_req *req, wg_http_resp *resp, void *user_data);

/* Match path against pattern; on success fill params (segment copies in buf) and return 1. */
int wg_route_match(const char *pattern, const char *path, char *buf, size_t bufsize,
                   const char **params, size_t *nparams);

/* Dashboard files embedded at build time (dashboard_assets.c, generated). */
typedef struct wg_asset {
    const char *name; /* "index.html", "app.js", "style.css" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} wg_asset;
extern const wg_asset wg_assets[];
extern const size_t wg_assets_count;

#endif
