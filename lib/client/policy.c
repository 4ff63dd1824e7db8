/*
 * policy.c - what a disconnect means and what the client does next (wa/client.h, RECONNECT
 * POLICY; PROTOCOL.md §5). Status codes follow Baileys' DisconnectReason so that logs and
 * events read the same: 428 connection closed, 408 lost/timed out, 440 replaced, 401 logged
 * out, 403 forbidden, 405 version, 411 multi-device mismatch, 500 bad session, 503
 * unavailable, 515 restart required. A proxy that refuses our credentials is 407 (HTTP's Proxy
 * Authentication Required) and stops.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "wa/error.h"

int wa__policy_reason_for_code(int code)
{
    switch (code) {
    case 515:
        return WA_DISC_RESTART;
    case 401:
        return WA_DISC_LOGGED_OUT;
    case 403:
        return WA_DISC_BANNED;
    case 405:
        return WA_DISC_BAD_VERSION;
    case 411:
        return WA_DISC_DOWNGRADE;
    case 440:
        return WA_DISC_REPLACED;
    case 408:
        return WA_DISC_TIMEOUT;
    case 428:
        return WA_DISC_NETWORK;
    default:
        return code >= 500 && code <= 599 ? WA_DISC_SERVER : WA_DISC_PROTOCOL;
    }
}

static const char *text_for_code(int code)
{
    switch (code) {
    case 515:
        return "restart required";
    case 401:
        return "logged out: the device was unlinked";
    case 403:
        return "forbidden: the account is banned or blocked";
    case 405:
        return "client version refused by the server: update the version setting";
    case 411:
        return "multi-device mismatch (downgrade_webclient)";
    case 440:
        return "replaced: another connection of this device took over";
    case 500:
        return "bad session";
    case 503:
        return "service unavailable";
    default:
        return code >= 500 && code <= 599 ? "server error" : "stream error";
    }
}

void wa__policy_classify_node(const wa_node *n, int *reason, int *code, const char **text)
{
    const char *attr = NULL;
    const wa_node *first = wa_node_children(n);
    int c = 0;

    if (wa_node_is(n, "failure"))
        attr = wa_node_attr(n, "reason");
    else
        attr = wa_node_attr(n, "code");
    if (attr) {
        char *end;
        long v = strtol(attr, &end, 10);
        if (*end == '\0' && v > 0 && v < 1000)
            c = (int)v;
    }
    if (!c && first && wa_node_is(first, "conflict"))
        c = 440; /* <conflict type='replaced'/> (Baileys CODE_MAP) */
    if (!c && wa_node_is(n, "xmlstreamend")) {
        *reason = WA_DISC_SERVER;
        *code = 428;
        *text = "the server closed the stream";
        return;
    }
    if (!c)
        c = 500; /* Baileys: badSession for an unknown stream error */
    *code = c;
    *reason = wa__policy_reason_for_code(c);
    *text = text_for_code(c);
}

int wa__policy_retry(int reason, unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd,
                     unsigned *delay_ms)
{
    uint64_t d;

    switch (reason) {
    case WA_DISC_RESTART:
        *delay_ms = 0;
        return 1;
    case WA_DISC_NETWORK:
    case WA_DISC_TIMEOUT:
    case WA_DISC_DEAD_LINK:
    case WA_DISC_SERVER:
    case WA_DISC_PROTOCOL:
        break;
    default: /* stopped, replaced, logged out, banned, version, downgrade, cert, pairing,
              * proxy authentication */
        return 0;
    }
    if (!base_ms)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    d = attempt >= 31 ? max_ms : (uint64_t)base_ms << attempt;
    if (d > max_ms)
        d = max_ms;
    /* "equal jitter": half fixed, half random, so clients that lost the same server do not
     * come back in lockstep, and the delay still grows */
    *delay_ms = (unsigned)(d / 2 + (d - d / 2 ? rnd % (d - d / 2 + 1) : 0));
    return 1;
}

int wa__policy_reason_for_error(int err)
{
    switch (err) {
    case WA_ECERT:
        return WA_DISC_CERT;
    case WA_ETIMEDOUT:
        return WA_DISC_TIMEOUT;
    case WA_EPROTO:
    case WA_EPROTOBUF:
    case WA_ETOKEN:
    case WA_EJID:
    case WA_EZLIB:
    case WA_EDEPTH:
    case WA_ETRUNC:
    case WA_ECRYPTO:
    case WA_EHTTP:
        return WA_DISC_PROTOCOL;
    case WA_ESTORE:
        return WA_DISC_STORE;
    case WA_EPROXYAUTH: /* retrying a wrong password only hammers the proxy */
        return WA_DISC_PROXY_AUTH;
    default: /* closed, refused, DNS, I/O, TLS, proxy, limits */
        return WA_DISC_NETWORK;
    }
}

int wa__policy_code_for_reason(int reason)
{
    switch (reason) {
    case WA_DISC_RESTART:
        return 515;
    case WA_DISC_TIMEOUT:
    case WA_DISC_DEAD_LINK:
    case WA_DISC_PAIR_EXPIRED:
        return 408;
    case WA_DISC_REPLACED:
        return 440;
    case WA_DISC_LOGGED_OUT:
        return 401;
    case WA_DISC_BANNED:
        return 403;
    case WA_DISC_BAD_VERSION:
        return 405;
    case WA_DISC_DOWNGRADE:
        return 411;
    case WA_DISC_SERVER:
    case WA_DISC_STORE:
    case WA_DISC_PAIR_FAILED:
        return 500;
    case WA_DISC_PROTOCOL:
    case WA_DISC_CERT:
        return 400;
    case WA_DISC_PROXY_AUTH: /* HTTP's Proxy Authentication Required */
        return 407;
    default: /* stopped, network */
        return 428;
    }
}

const char *wa_disconnect_reason_name(int reason)
{
    static const char *const names[] = {
        [WA_DISC_STOPPED] = "stopped",
        [WA_DISC_RESTART] = "restart",
        [WA_DISC_NETWORK] = "network",
        [WA_DISC_TIMEOUT] = "timeout",
        [WA_DISC_DEAD_LINK] = "dead_link",
        [WA_DISC_SERVER] = "server",
        [WA_DISC_REPLACED] = "replaced",
        [WA_DISC_LOGGED_OUT] = "logged_out",
        [WA_DISC_BANNED] = "banned",
        [WA_DISC_BAD_VERSION] = "bad_version",
        [WA_DISC_DOWNGRADE] = "downgrade",
        [WA_DISC_CERT] = "certificate",
        [WA_DISC_PROTOCOL] = "protocol",
        [WA_DISC_PAIR_EXPIRED] = "pairing_expired",
        [WA_DISC_PAIR_FAILED] = "pairing_failed",
        [WA_DISC_STORE] = "store",
        [WA_DISC_PROXY_AUTH] = "proxy_auth",
    };
    if (reason > 0 && (size_t)reason < sizeof names / sizeof names[0] && names[reason])
        return names[reason];
    return "unknown";
}
