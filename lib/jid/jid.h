/*
 * jid.h - WhatsApp JIDs ("Jabber IDs"): parse, format and classify.
 *
 * Forms accepted by wa_jid_parse (the union of what Baileys' jidDecode/jidEncode and whatsmeow's
 * ParseJID/JID.String produce, minus their lenient corners):
 *
 *   [user]@server                   "123@s.whatsapp.net", "@s.whatsapp.net", "1203..@g.us"
 *   user:device@server              "123:4@s.whatsapp.net", "999:1@lid"
 *   user.agent[:device]@server      whatsmeow's AD form for unknown AD_JID domain types
 *   user_agent[:device]@server      Baileys' jidEncode form of the same
 *   integrator-user:device@interop  Baileys 7's decoding of INTEROP_JID
 *
 * Exactly one '@'. user: up to WA_JID_USER_MAX bytes of printable ASCII without '@', ':', '.',
 * '_' or spaces (may be empty); server: 1..WA_JID_SERVER_MAX bytes of [A-Za-z0-9.-_]; agent
 * 0..255 and device 0..65535 as canonical decimals (no sign, no leading zeros). Anything else is
 * WA_EJID. Parsing is strict on purpose: JIDs decide whom a message goes to and which Signal
 * session is used, so a string that two parsers could read differently is refused.
 *
 * Formatting is canonical: "user@server", "user:device@server" when device != 0,
 * "user.agent:device@server" when agent != 0, and for msgr/interop the device is always written
 * ("user:0@msgr", "integrator-user:device@interop"), as the binary node decoder writes them.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_JID_JID_H
#define WA_JID_JID_H

#include <stddef.h>
#include <stdint.h>

#define WA_JID_USER_MAX   128 /* bytes, without the NUL */
#define WA_JID_SERVER_MAX 32
/* Longest formatted JID including the NUL: integrator(5) '-' user '.' agent(3) ':' device(5)
 * '@' server NUL. */
#define WA_JID_STR_MAX (5 + 1 + WA_JID_USER_MAX + 1 + 3 + 1 + 5 + 1 + WA_JID_SERVER_MAX + 1)

#define WA_JID_SERVER_USER        "s.whatsapp.net"
#define WA_JID_SERVER_LID         "lid"
#define WA_JID_SERVER_GROUP       "g.us"
#define WA_JID_SERVER_LEGACY_USER "c.us"
#define WA_JID_SERVER_BROADCAST   "broadcast"
#define WA_JID_SERVER_NEWSLETTER  "newsletter"
#define WA_JID_SERVER_HOSTED      "hosted"
#define WA_JID_SERVER_HOSTED_LID  "hosted.lid"
#define WA_JID_SERVER_MSGR        "msgr"
#define WA_JID_SERVER_INTEROP     "interop"
#define WA_JID_SERVER_CALL        "call"
#define WA_JID_SERVER_BOT         "bot"

/* AD_JID domain types (the byte after the AD_JID tag). Others are "agents" on s.whatsapp.net. */
enum wa_jid_domain {
    WA_JID_DOMAIN_WHATSAPP = 0,
    WA_JID_DOMAIN_LID = 1,
    WA_JID_DOMAIN_HOSTED = 128,
    WA_JID_DOMAIN_HOSTED_LID = 129
};

typedef struct wa_jid {
    char user[WA_JID_USER_MAX + 1];     /* NUL-terminated, may be empty */
    char server[WA_JID_SERVER_MAX + 1]; /* NUL-terminated, never empty in a parsed JID */
    uint16_t device;                    /* 0 = primary / no device */
    uint16_t integrator;                /* interop JIDs only */
    uint8_t agent;                      /* 0 = none */
} wa_jid;

/* Parse a NUL-terminated JID. 0, or WA_EJID (malformed) / WA_EINVAL (NULL). *out is written
 * only on success. */
int wa_jid_parse(const char *s, wa_jid *out);
/* Same for s[0..n) (need not be NUL-terminated; an embedded NUL is WA_EJID). */
int wa_jid_parse_n(const char *s, size_t n, wa_jid *out);

/* Write the canonical string form into buf (cap bytes, NUL-terminated). Returns the length
 * (without the NUL), or WA_ELIMIT if cap is too small, WA_EJID if j is not valid (empty server,
 * bad characters). WA_JID_STR_MAX is always enough. */
int wa_jid_format(const wa_jid *j, char *buf, size_t cap);

/* Build a JID from parts (copied). WA_EJID for bad characters or an empty server, WA_ELIMIT
 * for over-long parts. *out written only on success. */
int wa_jid_make(wa_jid *out, const char *user, const char *server, uint16_t device);

/* Copy without agent and device (whatsmeow ToNonAD). in and out may alias. */
void wa_jid_to_non_ad(const wa_jid *in, wa_jid *out);
/* Baileys jidNormalizedUser: non-AD, with c.us mapped to s.whatsapp.net. May alias. */
void wa_jid_normalized_user(const wa_jid *in, wa_jid *out);

/* The AD_JID domain type the server implies (lid 1, hosted 128, hosted.lid 129), else the
 * agent (0 for plain s.whatsapp.net users). */
uint8_t wa_jid_domain_type(const wa_jid *j);

/* Field-wise equality (1 equal, 0 not). */
int wa_jid_equal(const wa_jid *a, const wa_jid *b);
/* Same user and server, ignoring agent and device. */
int wa_jid_same_user(const wa_jid *a, const wa_jid *b);

int wa_jid_is_user(const wa_jid *j);   /* @s.whatsapp.net (phone-number user) */
int wa_jid_is_lid(const wa_jid *j);    /* @lid */
int wa_jid_is_hosted(const wa_jid *j); /* @hosted or @hosted.lid */
int wa_jid_is_group(const wa_jid *j);  /* @g.us */
int wa_jid_is_broadcast(const wa_jid *j);
int wa_jid_is_status_broadcast(const wa_jid *j); /* status@broadcast */
int wa_jid_is_newsletter(const wa_jid *j);
/* A server address: empty user ("@s.whatsapp.net", "@g.us"). */
int wa_jid_is_server(const wa_jid *j);
/* A device-specific JID (device != 0 or agent != 0). */
int wa_jid_is_ad(const wa_jid *j);

#endif
