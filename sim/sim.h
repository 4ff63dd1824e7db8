/*
 * sim.h - wasim, a WhatsApp server simulator: shared state of the one-loop server.
 *
 * wasim speaks the server side of WhatsApp Web's multi-device protocol on libwa's wire layers
 * (lib/wire in the server role), so that unmodified clients (Baileys 6.17 and 7, libwa) pair,
 * log in and exchange end-to-end encrypted messages through it. It never decrypts messages:
 * like the real server it routes opaque `enc` payloads between devices.
 *
 * Files: main.c (CLI, loop, signals), conn.c (one client connection: stream + wire, trace,
 * hold/delay), login.c (ClientPayload: registration and login), stanza.c (iq and stanza
 * handlers), control.c (control HTTP API), accounts.c (phones, devices, keys), state.c
 * (--state FILE: the state mirrored in SQLite across restarts).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WASIM_SIM_H
#define WASIM_SIM_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "bnode/node.h"
#include "core/buf.h"
#include "net/stream.h"
#include "tls/tls.h"
#include "wire/wire.h"

#define SIM_VERSION "0.1.0"
/* device slots per phone: slot 0 is the phone (id 0); 1..15 hold companions, whatever their
 * ids (sim_phone.next_device_id) */
#define SIM_MAX_DEVICES   16
#define SIM_DEVICE_ID_MAX 0xFFFF /* companion ids 1..65535 (uint16 in JIDs, Signal addresses) */
#define SIM_PHONE_LEN     20     /* digits of a phone number */
#define SIM_JID_LEN       96
#define SIM_REFS          6 /* pair-device refs sent at once */
/* wait after clientFinish before our first frame: Baileys 6.17 loses frames that come before its
 * key split (50 ms lost pair-device and success under load) */
#define SIM_HELLO_DELAY_MS 250
#define SIM_MAX_PREKEYS    2000 /* one-time prekeys stored per device */
/* routing (route.c, usync.c, group.c, queue.c) */
#define SIM_PHONE_PREKEY_BATCH 32   /* one-time prekeys the virtual phone makes at a time */
#define SIM_PHONE_PREKEY_MAX   1024 /* ... and keeps (handed-out ones recycled oldest first) */
#define SIM_QUEUE_MAX          5000 /* offline stanzas kept per device (oldest dropped) */
#define SIM_QUEUE_MAX_BYTES    (32u << 20)
#define SIM_UNACKED_MAX        1000  /* delivered stanzas awaiting the client's ack, per device */
#define SIM_REDELIVER_MAX      20    /* deliveries of one stanza before it is given up */
#define SIM_MSG_ID_MAX         128   /* longest message id we route */
#define SIM_ROUTE_MAP_SIZE     16384 /* message id -> sender device entries (ring) */
#define SIM_GROUP_MAX_MEMBERS  1024
#define SIM_MAX_GROUPS         10000
#define SIM_SUBJECT_MAX        256   /* bytes of a group subject */
#define SIM_MAX_SUBS           8192  /* presence subscriptions (ring) */
#define SIM_RECEIPT_MAX_ITEMS  512   /* message ids in one receipt */
#define SIM_USYNC_MAX_USERS    2000  /* users in one usync query */
#define SIM_BUNDLE_MAX_USERS   2000  /* devices in one prekey bundle query */
#define SIM_MAX_DEVSUBS        16384 /* device-list fetches remembered for notifications (ring) */
#define SIM_DEVSUB_BUCKETS     4096  /* ... in hash chains (user, fetcher, form) */

typedef struct sim sim;
typedef struct sim_conn sim_conn;
typedef struct sim_phone sim_phone;

typedef struct sim_prekey {
    uint32_t id;
    uint8_t pub[32];
} sim_prekey;

/* A one-time prekey of a virtual phone: the private half is kept for the phone's own Signal
 * sessions (handed_out: given to a client in a bundle, so a pkmsg may name it). */
typedef struct sim_phone_prekey {
    uint32_t id;
    uint8_t pub[32];
    uint8_t priv[32];
    int handed_out;
} sim_phone_prekey;

/* An encoded stanza (dictionary v3 node bytes) in a device's offline queue or unacked list. */
typedef struct sim_queued {
    struct sim_queued *next;
    char tag[16]; /* message, receipt, notification, ... */
    char id[SIM_MSG_ID_MAX + 1];
    unsigned attempts; /* deliveries so far */
    int64_t sid;       /* its row in the --state store (state.c); 0: not stored */
    size_t len;
    uint8_t data[];
} sim_queued;

/* The Signal identity a device published (companions upload it; the phone makes its own). */
typedef struct sim_keys {
    uint32_t reg_id;
    uint8_t identity_pub[32];
    uint32_t spk_id;
    uint8_t spk_pub[32];
    uint8_t spk_sig[64];
    sim_prekey *prekeys; /* heap array, handed out once each */
    size_t nprekeys, prekeys_cap;
} sim_keys;

typedef struct sim_device {
    sim_phone *phone;
    uint16_t id;           /* device number (not the slot: see sim_phone.next_device_id) */
    int present;           /* slot in use */
    uint8_t noise_pub[32]; /* companion's Noise static key: login proof */
    uint32_t key_index;
    sim_keys keys;
    char push_name[64];
    char platform[32];
    sim_conn *conn;     /* online connection, or NULL */
    int passive_active; /* sent <active/> */
    /* offline queue: encoded stanzas (dictionary v3 node bytes) awaiting delivery */
    struct sim_queued *queue_head, *queue_tail;
    size_t queue_len;
    /* routing state (queue.c, route.c) */
    size_t queue_bytes;
    struct sim_queued *unacked_head, *unacked_tail; /* delivered, not yet acked */
    size_t unacked_len;
    int keyshare_sent;       /* the phone's app-state key share went to this device */
    int available;           /* last <presence type='available'/> (cleared by 'unavailable') */
    uint64_t last_seen;      /* unix seconds of the last presence change */
    uint64_t route_mark;     /* route.c scratch: fan-out generation */
    const wa_node *route_to; /* route.c scratch: this device's <to> in the stanza */
} sim_device;

struct sim_phone {
    sim_phone *next;
    sim *sim; /* the simulator it belongs to (state.c writes through it) */
    char number[SIM_PHONE_LEN + 1];
    char lid[SIM_PHONE_LEN + 1]; /* LID user part */
    uint8_t identity_priv[32];   /* the primary phone's Signal identity */
    uint8_t identity_pub[32];
    uint32_t next_key_index;
    /* the next companion's device id: it only goes up, so an unlinked device's id (and JID,
     * for which other devices may still hold Signal sessions) never comes back; kept by
     * --state. devices[] are slots: find a companion by id with sim_phone_device. */
    uint32_t next_device_id;
    sim_device devices[SIM_MAX_DEVICES];
    char push_name[64];
    /* the account's "readreceipts" privacy setting: 0 "all" (default), 1 "none" (set by POST
     * /phones/{phone}/privacy or a client's privacy set; not kept by --state) */
    uint8_t readreceipts_none;
    /* the phone's own Signal keys (device 0); devices[0].keys holds the public halves */
    uint8_t spk_priv[32];
    sim_phone_prekey *opks; /* heap, SIM_PHONE_PREKEY_MAX at most */
    size_t nopks;
    uint32_t next_opk_id;
    /* the app-state sync key the phone shares with its companions */
    uint8_t appstate_key_id[6];
    uint8_t appstate_key[32];
    int64_t appstate_key_ts;         /* ms */
    struct sim_vphone *vphone;       /* phone.c: its Signal store, inbox and receipts (lazily) */
    struct sim_state_sig *state_sig; /* state.c: --state mirror of that Signal store */
};

/* A group (group.c). Members are phones (all their devices receive). */
typedef struct sim_group_member {
    sim_phone *phone;
    int admin; /* 0 member, 1 admin, 2 superadmin */
} sim_group_member;

typedef struct sim_group {
    struct sim_group *next;
    char id[32]; /* user part of ID@g.us */
    char subject[SIM_SUBJECT_MAX + 1];
    sim_phone *creator;
    sim_phone *subject_owner;
    int64_t creation, subject_t;
    sim_group_member *members; /* heap */
    size_t nmembers, members_cap;
} sim_group;

/* Where a routed message came from (for receipts): by id and sender phone. */
typedef struct sim_route_entry {
    char id[SIM_MSG_ID_MAX + 1];
    sim_phone *phone; /* NULL: free slot */
    uint16_t device;
    int lid;      /* the sender was addressed by LID */
    int32_t next; /* hash chain, -1 ends */
} sim_route_entry;

typedef struct sim_sub {
    sim_phone *subscriber; /* NULL: free slot */
    uint16_t device;
    int lid; /* subscribed by LID: presence comes from the LID */
    sim_phone *target;
} sim_sub;

/* A device that fetched a user's device list (usync devices): when that list changes, it gets a
 * <notification type='devices'> in the form it asked in (usync.c). */
typedef struct sim_devsub {
    sim_phone *fetcher; /* NULL: free slot */
    sim_phone *target;
    uint16_t device; /* the fetcher's device id */
    uint8_t lid;     /* asked by LID */
    int32_t next;    /* hash chain (devsub_buckets), -1 ends */
} sim_devsub;

/* Routing state of the simulator (route.c); allocated on first use. */
typedef struct sim_route {
    sim_route_entry map[SIM_ROUTE_MAP_SIZE];
    int32_t buckets[SIM_ROUTE_MAP_SIZE];
    size_t map_next;
    sim_group *groups;
    size_t ngroups;
    sim_sub subs[SIM_MAX_SUBS];
    size_t subs_next;
    uint64_t mark_gen;
    sim_devsub devsubs[SIM_MAX_DEVSUBS];
    int32_t devsub_buckets[SIM_DEVSUB_BUCKETS];
    size_t devsubs_next;
} sim_route;

enum sim_conn_state {
    SIM_CONN_HANDSHAKE = 1, /* WebSocket + Noise */
    SIM_CONN_REGISTERING,   /* unpaired client waiting for a scan / code */
    SIM_CONN_ONLINE,        /* logged in as conn->device */
    SIM_CONN_CLOSING,
};

struct sim_conn {
    sim_conn *next, *prev; /* sim->conns */
    sim *sim;
    uint64_t id; /* for the trace */
    wa_stream *stream;
    wa_wire wire;
    int state;
    sim_device *device; /* ONLINE */
    int hold;           /* output held back (hello delay, delay fault) */
    int stalled;        /* fault: read nothing, write nothing */
    unsigned delay_ms;  /* fault: delay every flush */
    uv_timer_t *timer;  /* hold timer (heap; closed with the conn) */
    /* registration */
    uint8_t reg_noise_pub[32];
    sim_keys reg_keys;
    char refs[SIM_REFS][40];
    char pair_iq_id[32];
    char link_code_phone[SIM_PHONE_LEN + 1];
    /* pairing in progress: pair-success sent, pair-device-sign awaited */
    sim_device *pending_device;
    char pair_success_id[32];
    uint8_t pair_details[128]; /* ADVDeviceIdentity bytes */
    size_t pair_details_len;
    uint8_t pair_account_sig[64];
    char push_name[64];
    uint64_t stanza_seq;
    /* routing (queue.c): a connection receives stanzas once it said <active/> (passive iq);
     * until then what comes for it is queued, and the offline delivery waits */
    int route_active;
    int offline_pending; /* <success/> sent, offline delivery not yet done */
};

typedef struct sim_stats {
    uint64_t connections_total, frames_in, frames_out, iqs, messages_routed, receipts_routed;
    uint64_t bad_input_closes, logins, registrations, pairings;
    uint64_t faults_dropped, faults_stalled, faults_delayed, faults_refused, faults_iq_errors,
        faults_stream_errors;
    uint64_t faults_injected; /* POST /devices/{jid}/inject */
} sim_stats;

/* An iq error fault: every iq with this xmlns gets <error code=.. text=../>. */
typedef struct sim_iq_fault {
    char xmlns[32];
    int code;
    int active;
} sim_iq_fault;

struct sim {
    uv_loop_t *loop;
    wa_listener *listener;
    wa_tls_ctx *tls;
    char *ca_pem; /* self-signed certificate served at /ca.pem (with --tls) */
    void *httpd;  /* wg_httpd */
    char ws_url[128], control_url[128];
    /* server identity */
    uint8_t root_priv[32], root_pub[32];
    uint8_t static_priv[32], static_pub[32];
    wa_buf cert_chain;
    /* state */
    sim_phone *phones;
    sim_conn *conns;
    size_t nconns;
    uint64_t next_conn_id;
    uint64_t next_msg_seq;
    uint64_t refuse_until_ms; /* fault: refuse new connections until then (uv_now) */
    sim_iq_fault iq_faults[8];
    sim_stats stats;
    sim_route *route;        /* route.c state (heap, lazily) */
    struct sim_state *state; /* --state FILE (state.c); NULL: everything in memory only */
    FILE *trace;
    uv_signal_t sigterm, sigint;
};

/* conn.c */
void sim_on_accept(wa_listener *l, wa_stream *s, void *user_data);
/* Encode and queue a stanza to a connection (traced). 0 or WA_E*. */
int sim_conn_send(sim_conn *c, const wa_node *n);
/* Send a stream:error-like node and close after it is flushed. */
void sim_conn_kick(sim_conn *c, const wa_node *n);
void sim_conn_close(sim_conn *c);
void sim_conn_flush(sim_conn *c);
void sim_conn_set_delay(sim_conn *c, unsigned ms);
void sim_trace_node(sim *s, const sim_conn *c, const char *dir, const wa_node *n);

/* login.c: after the Noise handshake. */
void sim_login(sim_conn *c);
void sim_send_success(sim_conn *c);
/* <stream:error code=CODE/> (code may be NULL) with an optional <conflict type=../>, then close. */
void sim_send_stream_error(sim_conn *c, const char *code, const char *conflict_type);

/* pair.c: QR and phone-code pairing. */
/* The phone scanned a QR text: find the registering connection, make the device, send
 * pair-success. 0, WA_ENOTFOUND (no such ref / connection), WA_EINVAL (malformed QR). */
int sim_pair_scan(sim *s, sim_phone *p, const char *qr, char *jid_out, size_t jid_cap);
void sim_pair_device_signed(sim_conn *c, const wa_node *iq);
sim_device *sim_pair_new_device(sim_conn *c, sim_phone *p);
int sim_pair_send_success(sim_conn *c, sim_device *d, const uint8_t adv_secret[32]);
wa_node *sim_pair_link_code_iq(sim_conn *c, const wa_node *iq, wa_arena *a);
/* The user typed `code` on phone p. 0, WA_ENOTFOUND, WA_EINVAL, WA_ECRYPTO. */
int sim_pair_link_code(sim *s, sim_phone *p, const char *code);

/* route.c: messages, receipts, presence, usync, prekey bundles, groups, the offline queue. */
wa_node *sim_route_prekey_bundles(sim_conn *c, const wa_node *iq, wa_arena *a);
wa_node *sim_route_usync(sim_conn *c, const wa_node *iq, wa_arena *a);
wa_node *sim_route_group_iq(sim_conn *c, const wa_node *iq, wa_arena *a);
void sim_route_message(sim_conn *c, const wa_node *n, wa_arena *a);
void sim_route_receipt(sim_conn *c, const wa_node *n, wa_arena *a);
void sim_route_presence(sim_conn *c, const wa_node *n, wa_arena *a);
void sim_route_chatstate(sim_conn *c, const wa_node *n, wa_arena *a);
/* After <success/>: queued stanzas, the app-state key share, <ib><offline count/></ib>, sent
 * when the connection is active (see sim_route_set_active). */
void sim_deliver_offline(sim_conn *c);
void sim_route_drop_queue(sim_device *d);
/* <iq xmlns='passive'><active/> (1) or <passive/> (0): whether the connection gets stanzas;
 * becoming active runs the offline delivery sim_deliver_offline deferred (queue.c). */
void sim_route_set_active(sim_conn *c, int active);
/* <ack/> from a client: the stanza it names is delivered (queue.c). */
void sim_route_ack(sim_conn *c, const wa_node *n);
/* <iq xmlns='w:sync:app:state'>: every collection asked for is up to date (queue.c). */
wa_node *sim_route_app_state(sim_conn *c, const wa_node *iq, wa_arena *a);
/* Free groups, the id map and subscriptions (called by sim_free_phones). */
void sim_route_cleanup(sim *s);

/* Routing internals shared by route.c, usync.c, group.c, queue.c. */
sim_route *sim_route_state(sim *s); /* NULL on allocation failure */
/* Deliver a stanza to one device: sent at once when online (and kept until acked), queued when
 * offline; the virtual phone (device 0) swallows it. n is not modified or retained. */
void sim_route_deliver(sim *s, sim_device *d, const wa_node *n);
/* Queue an encoded copy of n for d (offline='1' added to messages). 0 or WA_E*. */
int sim_queue_push(sim_device *d, const wa_node *n);
/* Put a stanza read back from --state at the tail of d's offline queue (unacked 0) or of its
 * unacknowledged list (1); d takes q (heap). Used by state.c at start only. */
void sim_queue_restore(sim_device *d, sim_queued *q, int unacked);
/* The client acknowledged stanza (tag, id): forget it. */
void sim_queue_acked(sim_device *d, const char *tag, const char *id);
/* JIDs of phones and devices, PN (lid 0) or LID (lid 1) form. */
void sim_user_jid(const sim_phone *p, int lid, char *out, size_t cap);
void sim_device_jid(const sim_device *d, int lid, char *out, size_t cap);
/* The phone or present device a JID names (s.whatsapp.net or lid server); *lid set to the form
 * when lid is not NULL. NULL when unknown. */
sim_phone *sim_phone_by_jid(sim *s, const char *jid, int *lid);
sim_device *sim_device_by_jid(sim *s, const char *jid, int *lid);
/* Remember who sent message id (for receipts). */
void sim_route_remember(sim *s, const char *id, const sim_device *sender, int lid);
/* usync.c: device-list change notifications, as the real server sends them (whatsmeow
 * notification.go handleDeviceNotification, Baileys 7 messages-recv.js
 * handleDevicesNotification):
 *   <notification from=USER type='devices' id t [lid=LID_USER]><add|remove device_hash
 *   [device_lid_hash]><device jid=USER:ID [key-index] [lid=LID:ID]/><key-index-list ts/>
 *   </add|remove></notification>
 * to every other companion of p and to every device that fetched p's device list (usync) in
 * the form it fetched it (PN or LID), queued for those offline. id is the device linked
 * (added 1) or unlinked (0), whose slot is already updated. */
void sim_devices_notify(sim *s, sim_phone *p, uint16_t id, uint32_t key_index, int added);
/* group.c */
sim_group *sim_group_find(sim *s, const char *gid_jid);
sim_group_member *sim_group_member_of(sim_group *g, const sim_phone *p);
/* Send a w:gp2 notification (child built by the caller) to every device of every member and
 * of the extra phones, except the device `except`. */
void sim_group_notify(sim *s, sim_group *g, const char *actor_jid, wa_node *child,
                      sim_phone *const *extra, size_t nextra, const sim_device *except);

/* stanza.c: one decoded stanza from an online or registering connection. */
void sim_handle_stanza(sim_conn *c, const wa_node *n);

/* accounts.c */
sim_phone *sim_phone_find(sim *s, const char *number);
sim_phone *sim_phone_find_lid(sim *s, const char *lid);
sim_phone *sim_phone_get(sim *s, const char *number); /* find or create */
sim_device *sim_device_find(sim *s, const char *user, unsigned device);
/* The present device of p with this id (0: the phone itself), or NULL. */
sim_device *sim_phone_device(sim_phone *p, unsigned id);
/* A free slot with the phone's next device id (never one used before), present; NULL when
 * every slot is taken or the ids are used up. */
sim_device *sim_device_new(sim_phone *p);
/* Pairing done (pair.c): d is present and saved; the phone's other devices and the devices
 * that fetched its device list are told (sim_devices_notify). */
void sim_device_linked(sim *s, sim_device *d);
/* Hand out d's next one-time prekey (sim_keys_take_prekey, the change written to --state).
 * 0 or WA_ENOTFOUND (none left). */
int sim_device_take_prekey(sim_device *d, sim_prekey *out);
/* The phone unlinks d: a connected client gets <stream:error code='401'><conflict
 * type='device_removed'/></stream:error> (whatsmeow: LoggedOut; Baileys: loggedOut 401), the
 * slot is freed (its id is not handed out again) and the phone's other devices and those that
 * fetched its device list are told (sim_devices_notify). */
void sim_device_remove(sim *s, sim_device *d);
void sim_keys_cleanup(sim_keys *k);
int sim_keys_add_prekey(sim_keys *k, uint32_t id, const uint8_t pub[32]);
int sim_keys_take_prekey(sim_keys *k, sim_prekey *out);
/* The virtual phone's next unused one-time prekey (made in batches); handed out once. NULL on
 * failure (no randomness / memory). */
const sim_phone_prekey *sim_phone_hand_out_prekey(sim_phone *p);
void sim_free_phones(sim *s);
/* The phone gets a new identity (reinstall); with notify, <notification type='encrypt'>
 * <identity/> goes to the devices that fetched its device list. POST
 * /phones/{phone}/reinstall. 0 or WA_E*. */
int sim_phone_reinstall(sim *s, sim_phone *p, int notify, size_t *told);

/* control.c */
int sim_control_start(sim *s, const char *host, int port);
int sim_control_port(const sim *s);
/* POST /phones/{phone}/send (phone.c): the virtual phone sends a real encrypted message. */
struct wg_http_req;
struct wg_http_resp;
void sim_control_phone_send(sim *s, sim_phone *p, struct wg_http_req *req,
                            struct wg_http_resp *resp);
void sim_control_stop(sim *s);

/* Milliseconds of the loop clock. */
static inline uint64_t sim_now_ms(const sim *s)
{
    return uv_now(s->loop);
}

/* ---- state.c: --state FILE, the simulator's state mirrored in SQLite -------------------------
 * Every function below does nothing when s->state is NULL (no --state), and write failures
 * are logged, never returned: the in-memory state stays the truth while wasim runs. */
struct wa_signal_store;
/* Open (create) the state file and its tables. 0, WA_ESTORE (cannot open, not a wasim state
 * file, or another wasim holds it), WA_ENOMEM. */
int sim_state_open(sim *s, const char *path);
/* Close it (after sim_free_phones). */
void sim_state_close(sim *s);
/* The server identity: 1 loaded into s (root, static key, cert chain), 0 none stored yet,
 * WA_ESTORE / WA_EPROTO (damaged). */
int sim_state_load_identity(sim *s);
int sim_state_save_identity(sim *s);
/* 1 if s->cert_chain verifies under s->root_pub for s->static_pub for a week more, else 0 (then
 * main.c issues a new chain under the same keys). */
int sim_state_chain_fresh(const sim *s);
/* Read phones, devices, prekeys, queues, groups and the receipt routing map back into s
 * (once, after the identity, before the loop runs). 0, WA_ESTORE, WA_EPROTO, WA_ENOMEM. */
int sim_state_load(sim *s);
/* Write-through hooks, called where the state changes. */
void sim_state_phone_save(sim_phone *p);    /* new phone: keys, LID, prekeys */
void sim_state_phone_prekeys(sim_phone *p); /* its one-time prekeys (a new batch) */
void sim_state_phone_prekey_handed(sim_phone *p, uint32_t id);
void sim_state_device_save(sim_device *d);   /* pairing done, keys uploaded/rotated */
void sim_state_device_update(sim_device *d); /* push name, key share sent */
void sim_state_device_prekey_taken(sim_device *d, uint32_t id);
void sim_state_device_removed(sim_device *d); /* with its prekeys and queue (d still intact) */
void sim_state_queue_put(sim_device *d, sim_queued *q, int unacked); /* added or moved */
void sim_state_queue_del(sim_device *d, sim_queued *q);
void sim_state_group_save(sim *s, const sim_group *g);
void sim_state_group_delete(sim *s, const sim_group *g);
void sim_state_route_remember(sim *s, size_t slot, const sim_route_entry *e);
/* Wrap the virtual phone's Signal store callbacks (after wa_signal_memstore_bind, before
 * wa_signal_new) so that identities, sessions and sender keys are mirrored, and load what the
 * last run stored into the memstore. 0 (also without --state: st unchanged) or WA_ENOMEM. */
int sim_state_phone_signal(sim *s, sim_phone *p, struct wa_signal_store *st);
/* Free p->state_sig (called when the phone is freed). */
void sim_state_phone_free(sim_phone *p);
/* ---- end of state.c -------------------------------------------------------------------------- */

/* ---- phone.c: the virtual phone (device 0) as a WhatsApp phone toward companions --------------
 * It has a Signal store (lib/signal memstore) with the keys accounts.c made for it, sends real
 * encrypted messages, decrypts what companions send it, and records receipts. */
#define SIM_VPHONE_TEXT_MAX     65536 /* bytes of text the phone sends or keeps per message */
#define SIM_VPHONE_SENT_MAX     64    /* sent messages kept for retry receipts */
#define SIM_VPHONE_INBOX_MAX    32    /* received messages kept (GET /phones/{p}/messages) */
#define SIM_VPHONE_RECEIPTS_MAX 256   /* receipts kept (GET /phones/{p}/receipts) */
#define SIM_VPHONE_RETRY_MAX    2     /* retry receipts the phone sends per undecryptable message */
typedef struct sim_vphone sim_vphone;
/* Phone p sends text to `to` (a phone number, a user JID in PN or LID form, or a group JID) as
 * a phone does: every companion of the recipient (and, as deviceSentMessage, of p) gets its own
 * pkmsg/msg; in a group the SKDM, then the skmsg. The message id is written to id_out and the
 * number of devices reached to *devices (may be NULL). 0, WA_EINVAL (bad or own `to`),
 * WA_ENOTFOUND (no such phone or group), WA_ESTATE (p is not in the group), WA_ELIMIT (text
 * longer than SIM_VPHONE_TEXT_MAX), WA_ENOMEM / WA_EIO. */
int sim_phone_send_text(sim *s, sim_phone *p, const char *to, const char *text, char *id_out,
                        size_t id_cap, int *devices);
/* Send d (a companion of its phone) a peer message from device 0: msg (a serialized Message,
 * borrowed) padded and encrypted with the phone's session to d, <message category='peer'>,
 * delivered by sim_route_deliver. 0, WA_ESTATE (d has no keys), WA_ENOMEM, WA_E* (encrypt). */
int sim_phone_send_peer(sim *s, sim_device *d, const uint8_t *msg, size_t len);
/* A stanza routed to device 0 of p (sim_route_deliver): messages are decrypted and answered
 * with a delivery (or retry) receipt, receipts recorded, retry receipts answered. n is
 * borrowed. */
void sim_phone_receive(sim *s, sim_phone *p, const wa_node *n);
/* GET /phones/{phone}/messages | receipts [?id=ID]: what = "messages" or "receipts". */
void sim_control_phone_inbox(sim *s, sim_phone *p, const char *what, struct wg_http_req *req,
                             struct wg_http_resp *resp);
/* The phone loses its 1:1 sessions (identity and prekeys kept), as after restoring a backup
 * without them: the next message from a companion fails and is retried. *count (may be NULL)
 * gets the number of sessions dropped. 0 or WA_ENOMEM. POST /phones/{phone}/forget-sessions. */
int sim_phone_forget_sessions(sim *s, sim_phone *p, int *count);
void sim_control_phone_forget(sim *s, sim_phone *p, struct wg_http_req *req,
                              struct wg_http_resp *resp);
/* Free p->vphone (called when the phone is freed). */
void sim_vphone_free(sim_phone *p);
/* ---- end of phone.c -------------------------------------------------------------------------- */

#endif
