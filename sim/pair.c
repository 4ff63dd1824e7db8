/*
 * pair.c - pairing a companion device to a virtual phone (PROTOCOL.md §4).
 *
 * QR: the client shows `ref,base64(noise_pub),base64(identity_pub),base64(adv_secret)[,..]`,
 * Baileys 7 behind "https://wa.me/settings/linked_devices#".
 * A scan (control API) finds the registering connection that was given `ref`, and does what the
 * phone and server do: allocate a device id, build ADVDeviceIdentity{rawId, timestamp,
 * keyIndex}, sign `06 00 || details || companion identity` with the phone's identity key,
 * wrap it in ADVSignedDeviceIdentity and HMAC it with the adv secret, send <pair-success>.
 * The client answers <pair-device-sign> with its device signature over
 * `06 01 || details || companion identity || phone identity`; when it verifies, the device
 * exists and the client is told to restart (stream:error 515).
 *
 * Phone-number code: see the block comment before sim_pair_link_code_iq below; it ends in the
 * same pair-success, with the adv secret derived from the code exchange instead of a QR.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "crypto/curve25519.h"
#include "jid/jid.h"
#include "proto/adv.pb-c.h"
#include "proto/proto.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define QR_MAX_FIELDS 6

static int b64_32(const char *s, size_t len, uint8_t out[32])
{
    size_t n;

    if (wa_base64_decode(out, 32, &n, s, len) != 0 || n != 32)
        return WA_EINVAL;
    return 0;
}

static sim_conn *find_registering(sim *s, const char *ref, size_t ref_len)
{
    sim_conn *c;
    int i;

    for (c = s->conns; c; c = c->next) {
        if (c->state != SIM_CONN_REGISTERING || c->pending_device)
            continue;
        for (i = 0; i < SIM_REFS; i++)
            if (strlen(c->refs[i]) == ref_len && memcmp(c->refs[i], ref, ref_len) == 0)
                return c;
    }
    return NULL;
}

/* Sign and send <pair-success> for device d on registering connection c, the adv secret known.
 * Shared by QR and phone-code pairing. */
int sim_pair_send_success(sim_conn *c, sim_device *d, const uint8_t adv_secret[32])
{
    sim_phone *p = d->phone;
    Wa__ADVDeviceIdentity ident = WA__ADVDEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentity signed_id = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentityHMAC hmac_id = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
    wa_buf details, signed_bytes, outer, msg;
    uint8_t sig[64], mac[32];
    uint32_t raw_id = 0;
    wa_arena a;
    wa_node *iq, *ps;
    char id[32], jid[SIM_JID_LEN], lid[SIM_JID_LEN], t[24];
    int rc;

    wa_buf_init(&details, 256);
    wa_buf_init(&signed_bytes, 1024);
    wa_buf_init(&outer, 2048);
    wa_buf_init(&msg, 512);
    wa_arena_init(&a, 16384);
    wa_random(&raw_id, sizeof raw_id);
    ident.has_rawid = 1;
    ident.rawid = raw_id;
    ident.has_timestamp = 1;
    ident.timestamp = (uint64_t)time(NULL);
    ident.has_keyindex = 1;
    ident.keyindex = d->key_index;
    rc = wa_proto_pack(&ident, &details);
    if (rc || details.len > sizeof c->pair_details)
        goto out;
    /* account signature: 06 00 || details || companion identity */
    rc = wa_buf_append(&msg, "\x06\x00", 2);
    if (!rc)
        rc = wa_buf_append(&msg, details.data, details.len);
    if (!rc)
        rc = wa_buf_append(&msg, d->keys.identity_pub, 32);
    if (!rc)
        rc = wa_xeddsa_sign(sig, p->identity_priv, msg.data, msg.len);
    if (rc)
        goto out;
    signed_id.has_details = 1;
    signed_id.details.data = details.data;
    signed_id.details.len = details.len;
    signed_id.has_accountsignaturekey = 1;
    signed_id.accountsignaturekey.data = p->identity_pub;
    signed_id.accountsignaturekey.len = 32;
    signed_id.has_accountsignature = 1;
    signed_id.accountsignature.data = sig;
    signed_id.accountsignature.len = 64;
    rc = wa_proto_pack(&signed_id, &signed_bytes);
    if (!rc)
        rc = wa_hmac_sha256(mac, adv_secret, 32, signed_bytes.data, signed_bytes.len);
    if (rc)
        goto out;
    hmac_id.has_details = 1;
    hmac_id.details.data = signed_bytes.data;
    hmac_id.details.len = signed_bytes.len;
    hmac_id.has_hmac = 1;
    hmac_id.hmac.data = mac;
    hmac_id.hmac.len = 32;
    rc = wa_proto_pack(&hmac_id, &outer);
    if (rc)
        goto out;

    memcpy(c->pair_details, details.data, details.len);
    c->pair_details_len = details.len;
    memcpy(c->pair_account_sig, sig, 64);
    c->pending_device = d;
    sim_make_id(c->sim, id, sizeof id);
    snprintf(c->pair_success_id, sizeof c->pair_success_id, "%s", id);
    snprintf(jid, sizeof jid, "%s:%u@s.whatsapp.net", p->number, (unsigned)d->id);
    snprintf(lid, sizeof lid, "%s:%u@lid", p->lid, (unsigned)d->id);
    sim_unix_str(t, sizeof t);
    iq = sim_node(&a, "iq", "from", "@s.whatsapp.net", "type", "set", "id", id, "xmlns", "md", "t",
                  t, NULL);
    ps = sim_child(&a, iq, "pair-success", NULL);
    sim_bytes(&a, sim_child(&a, ps, "device-identity", NULL), outer.data, outer.len);
    sim_child(&a, ps, "platform", "name", "android", NULL);
    sim_child(&a, ps, "device", "jid", jid, "lid", lid, NULL);
    rc = iq && ps ? sim_conn_send(c, iq) : WA_ENOMEM;
out:
    wa_buf_cleanup(&details);
    wa_buf_cleanup(&signed_bytes);
    wa_buf_cleanup(&outer);
    wa_buf_cleanup(&msg);
    wa_arena_cleanup(&a);
    wa_wipe(mac, sizeof mac);
    return rc;
}

/* A device slot for the registering connection c under phone p, holding c's keys. */
sim_device *sim_pair_new_device(sim_conn *c, sim_phone *p)
{
    sim_device *d = sim_device_new(p);

    if (!d)
        return NULL;
    d->present = 0; /* exists only once the client signed */
    d->keys = c->reg_keys;
    memset(&c->reg_keys, 0, sizeof c->reg_keys);
    memcpy(d->noise_pub, c->reg_noise_pub, 32);
    snprintf(d->push_name, sizeof d->push_name, "%s", c->push_name);
    return d;
}

int sim_pair_scan(sim *s, sim_phone *p, const char *qr, char *jid_out, size_t jid_cap)
{
    const char *f[QR_MAX_FIELDS];
    size_t flen[QR_MAX_FIELDS], nf = 0;
    const char *q = strchr(qr, '#');
    uint8_t noise[32], ident[32], adv[32];
    sim_conn *c;
    sim_device *d;
    int rc;

    /* Baileys 7 (like today's WhatsApp Web) wraps the fields in a link:
     * https://wa.me/settings/linked_devices#ref,noise,identity,adv,platform */
    q = q ? q + 1 : qr;
    while (nf < QR_MAX_FIELDS) {
        const char *comma = strchr(q, ',');
        f[nf] = q;
        flen[nf] = comma ? (size_t)(comma - q) : strlen(q);
        nf++;
        if (!comma)
            break;
        q = comma + 1;
    }
    if (nf < 4 || b64_32(f[1], flen[1], noise) || b64_32(f[2], flen[2], ident) ||
        b64_32(f[3], flen[3], adv))
        return WA_EINVAL;
    c = find_registering(s, f[0], flen[0]);
    if (!c || memcmp(c->reg_noise_pub, noise, 32) != 0 ||
        memcmp(c->reg_keys.identity_pub, ident, 32) != 0) {
        wa_wipe(adv, sizeof adv);
        return WA_ENOTFOUND;
    }
    d = sim_pair_new_device(c, p);
    if (!d) {
        wa_wipe(adv, sizeof adv);
        return WA_ELIMIT;
    }
    rc = sim_pair_send_success(c, d, adv);
    wa_wipe(adv, sizeof adv);
    if (rc) {
        sim_keys_cleanup(&d->keys);
        memset(d, 0, sizeof *d);
        c->pending_device = NULL;
        return rc;
    }
    snprintf(jid_out, jid_cap, "%s:%u@s.whatsapp.net", p->number, (unsigned)d->id);
    return 0;
}

static int lc_restart_later(sim_conn *c);

void sim_pair_device_signed(sim_conn *c, const wa_node *iq)
{
    sim_device *d = c->pending_device;
    const wa_node *di = wa_node_child(wa_node_child(iq, "pair-device-sign"), "device-identity");
    const char *id = wa_node_attr(iq, "id");
    Wa__ADVSignedDeviceIdentity *sd = NULL;
    const uint8_t *raw;
    size_t raw_len;
    wa_buf msg;
    int ok = 0;

    if (!d || !id || strcmp(id, c->pair_success_id) != 0)
        return;
    wa_buf_init(&msg, 1024);
    if (di && wa_node_content_bytes(di, &raw, &raw_len) == 0 &&
        wa_proto_unpack(&wa__advsigned_device_identity__descriptor, raw, raw_len, &sd) == 0 &&
        sd->has_details && sd->details.len == c->pair_details_len &&
        memcmp(sd->details.data, c->pair_details, c->pair_details_len) == 0 &&
        sd->has_devicesignature && sd->devicesignature.len == 64) {
        /* device signature: 06 01 || details || companion identity || phone identity */
        if (wa_buf_append(&msg, "\x06\x01", 2) == 0 &&
            wa_buf_append(&msg, c->pair_details, c->pair_details_len) == 0 &&
            wa_buf_append(&msg, d->keys.identity_pub, 32) == 0 &&
            wa_buf_append(&msg, d->phone->identity_pub, 32) == 0 &&
            wa_xeddsa_verify(d->keys.identity_pub, msg.data, msg.len, sd->devicesignature.data) ==
                0)
            ok = 1;
    }
    wa_proto_free(sd);
    wa_buf_cleanup(&msg);
    c->pending_device = NULL;
    if (!ok) {
        wa_log_warn("sim", "conn %llu: pair-device-sign did not verify; device dropped",
                    (unsigned long long)c->id);
        sim_keys_cleanup(&d->keys);
        memset(d, 0, sizeof *d);
        sim_send_stream_error(c, "401", NULL);
        return;
    }
    d->present = 1;
    sim_state_device_save(d); /* --state: a paired device survives a restart */
    c->sim->stats.pairings++;
    wa_log_info("sim", "paired %s:%u", d->phone->number, (unsigned)d->id);
    sim_device_linked(c->sim, d); /* devices notifications to the account's other devices */
    /* restart required: the client reconnects and logs in with its new credentials */
    if (lc_restart_later(c) != 0)
        sim_send_stream_error(c, "515", NULL);
}

/* ---- phone-number code pairing -------------------------------------------------------------
 *
 * The exchange (PROTOCOL.md §4; Baileys requestPairingCode and its link_code_companion_reg
 * notification handler; whatsmeow pair-code.go), with wasim playing both server and phone:
 *
 *   client: iq <link_code_companion_reg stage=companion_hello jid=PHONE@s.whatsapp.net> with
 *           the wrapped companion ephemeral key salt32 || iv16 || AES-256-CTR(k, iv, pub32),
 *           k = PBKDF2-HMAC-SHA256(code, salt, 131072, 32), and its Noise key
 *   wasim:  iq result <link_code_companion_reg><link_code_pairing_ref>REF</..></..>
 *   phone:  the user types the code (control API): unwrap the companion key with it, make the
 *           primary ephemeral pair, <notification type=link_code_companion_reg>
 *           <link_code_companion_reg stage=primary_hello> REF, primary identity pub, primary
 *           ephemeral pub wrapped the same way with the typed code
 *   client: iq companion_finish: salt32 || iv12 || AES-256-GCM(HKDF(DH(eph, eph), salt,
 *           "link_code_pairing_key_bundle_encryption_key"), companion identity || primary
 *           identity || random32), its identity, REF
 *   wasim:  decrypt, check both identities, adv_secret = HKDF(DH(eph, eph) || DH(primary
 *           identity, companion identity) || random32, no salt, "adv_secret"), then
 *           pair-success exactly as for QR (the client signs, 515, login).
 *
 * Nothing authenticates the typed code before companion_finish: a wrong code unwraps the
 * companion key into 32 unrelated bytes, both sides derive different bundle keys, and the GCM
 * tag of the key bundle fails. So the outcome of typing a code is known only once the client
 * has answered, and the control API reads it with sim_pair_link_code_state.
 *
 * The state of each pending exchange lives in a small table private to this file, one slot per
 * registering connection that asked for a code, keyed by connection id: a closed connection
 * simply stops matching and its slot expires.
 */
#define LC_SLOTS             32
#define LC_CODE_LEN          8
#define LC_PBKDF2_ITERATIONS 131072u /* Baileys: 2 << 16 */
#define LC_SALT_LEN          32
#define LC_CTR_IV_LEN        16
#define LC_KEY_LEN           32
#define LC_WRAPPED_LEN       (LC_SALT_LEN + LC_CTR_IV_LEN + LC_KEY_LEN)
#define LC_BUNDLE_PLAIN_LEN  (3 * 32) /* companion identity, primary identity, adv random */
#define LC_BUNDLE_LEN        (LC_SALT_LEN + WA_AES_GCM_IV_LEN + LC_BUNDLE_PLAIN_LEN + WA_AES_GCM_TAG_LEN)
#define LC_MAX_ATTEMPTS      3 /* wrong codes before the request is dropped */
#define LC_REF_RAW_LEN       18
#define LC_RESTART_DELAY_MS  200

static const char lc_bundle_info[] = "link_code_pairing_key_bundle_encryption_key";
static const char lc_adv_info[] = "adv_secret";

enum lc_state {
    LC_FREE = 0,
    LC_WAITING, /* companion_hello answered, no code typed yet */
    LC_SENT,    /* a code was typed, primary_hello sent, companion_finish awaited */
    LC_WRONG,   /* the last code typed was wrong; another may be typed */
    LC_PAIRED,  /* pair-success sent */
    LC_EXPIRED, /* over: see why */
};

typedef struct lc_slot {
    sim *sim;
    uint64_t conn_id;
    uint64_t seq; /* the newest request for a phone gets the typed code */
    int state;
    int wrong; /* wrong codes so far */
    const char *why;
    char phone[SIM_PHONE_LEN + 1];
    char ref[40];
    char device[SIM_JID_LEN];
    uint8_t wrapped[LC_WRAPPED_LEN]; /* the companion's wrapped ephemeral key */
    uint8_t companion_eph[32];       /* unwrapped with the code typed last */
    uint8_t primary_priv[32];        /* the phone's ephemeral key for this attempt */
} lc_slot;

static lc_slot lc_slots[LC_SLOTS];
static uint64_t lc_seq;

static int lc_live(const lc_slot *l)
{
    return l->state == LC_WAITING || l->state == LC_SENT || l->state == LC_WRONG;
}

static void lc_wipe_keys(lc_slot *l)
{
    wa_wipe(l->companion_eph, sizeof l->companion_eph);
    wa_wipe(l->primary_priv, sizeof l->primary_priv);
}

static void lc_end(lc_slot *l, int state, const char *why)
{
    lc_wipe_keys(l);
    l->state = state;
    l->why = why;
}

/* The registering connection of a live slot, or NULL (then the slot expires). */
static sim_conn *lc_conn(lc_slot *l)
{
    sim_conn *c;

    if (!lc_live(l))
        return NULL;
    for (c = l->sim->conns; c; c = c->next)
        if (c->id == l->conn_id)
            break;
    if (!c || c->state != SIM_CONN_REGISTERING) {
        lc_end(l, LC_EXPIRED, "the client disconnected");
        return NULL;
    }
    if (c->pending_device) {
        lc_end(l, LC_EXPIRED, "the client was paired another way (QR)");
        return NULL;
    }
    return c;
}

static lc_slot *lc_by_conn(sim *s, uint64_t conn_id)
{
    size_t i;

    for (i = 0; i < LC_SLOTS; i++)
        if (lc_slots[i].state != LC_FREE && lc_slots[i].sim == s && lc_slots[i].conn_id == conn_id)
            return &lc_slots[i];
    return NULL;
}

/* The newest live request for phone, else (if !live_only) the newest finished one. */
static lc_slot *lc_for_phone(sim *s, const char *phone, int live_only)
{
    lc_slot *live = NULL, *done = NULL;
    size_t i;

    for (i = 0; i < LC_SLOTS; i++) {
        lc_slot *l = &lc_slots[i];
        if (l->state == LC_FREE || l->sim != s || strcmp(l->phone, phone) != 0)
            continue;
        lc_conn(l); /* expires it if its client is gone */
        if (lc_live(l)) {
            if (!live || l->seq > live->seq)
                live = l;
        } else if (!done || l->seq > done->seq) {
            done = l;
        }
    }
    return live || live_only ? live : done;
}

/* A slot for a new request: a free one, else the oldest finished or abandoned one. */
static lc_slot *lc_alloc(sim *s)
{
    lc_slot *best = NULL;
    size_t i;

    for (i = 0; i < LC_SLOTS; i++) {
        lc_slot *l = &lc_slots[i];
        if (l->state == LC_FREE)
            return l;
        if (l->sim == s)
            lc_conn(l);
        if (!lc_live(l) && (!best || l->seq < best->seq))
            best = l;
    }
    return best;
}

/* out = AES-256-CTR(PBKDF2-HMAC-SHA256(code, salt, 131072, 32), iv, in) for one 32-byte key. */
static int lc_ctr(uint8_t out[32], const char *code, const uint8_t *salt, const uint8_t *iv,
                  const uint8_t *in)
{
    uint8_t key[LC_KEY_LEN];
    int rc;

    rc = wa_pbkdf2_sha256(key, sizeof key, code, LC_CODE_LEN, salt, LC_SALT_LEN,
                          LC_PBKDF2_ITERATIONS);
    if (!rc)
        rc = wa_aes_ctr(out, key, iv, in, 32);
    wa_wipe(key, sizeof key);
    return rc;
}

/* The code as the phone's keypad takes it: 8 letters or digits, one '-' or space allowed in
 * the middle ("ABCD-EFGH" as Baileys' docs print it), lower case read as upper case. Baileys and
 * whatsmeow draw codes from 123456789ABCDEFGHJKLMNPQRSTVWXYZ; Baileys 7 also takes a custom
 * 8-character code, hence any letter or digit. */
static int lc_normalize(const char *code, char out[LC_CODE_LEN + 1])
{
    size_t i, n = 0;

    for (i = 0; code[i]; i++) {
        char ch = code[i];
        if ((ch == '-' || ch == ' ') && n == LC_CODE_LEN / 2 && i == LC_CODE_LEN / 2)
            continue;
        if (n == LC_CODE_LEN)
            return WA_EINVAL;
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return WA_EINVAL;
        out[n++] = ch;
    }
    if (n != LC_CODE_LEN)
        return WA_EINVAL;
    out[n] = '\0';
    return 0;
}

static int lc_content(const wa_node *parent, const char *tag, size_t len, const uint8_t **p)
{
    const wa_node *n = wa_node_child(parent, tag);
    size_t l;

    return n && wa_node_content_bytes(n, p, &l) == 0 && l == len;
}

/* The phone a link_code_companion_reg names: jid='PHONE@s.whatsapp.net'. */
static sim_phone *lc_phone_of(sim *s, const wa_node *reg)
{
    wa_jid j;

    if (wa_node_attr_jid(reg, "jid", &j) != 0 || strcmp(j.server, WA_JID_SERVER_USER) != 0 ||
        j.device != 0 || j.agent != 0)
        return NULL;
    return sim_phone_get(s, j.user);
}

static wa_node *lc_hello(sim_conn *c, const wa_node *iq, const wa_node *reg, wa_arena *a)
{
    sim_phone *p = lc_phone_of(c->sim, reg);
    const uint8_t *wrapped, *noise;
    uint8_t raw[LC_REF_RAW_LEN];
    wa_node *res, *r;
    lc_slot *l;

    if (!p)
        return sim_iq_error(a, iq, 400, "bad-request");
    if (!lc_content(reg, "link_code_pairing_wrapped_companion_ephemeral_pub", LC_WRAPPED_LEN,
                    &wrapped) ||
        !lc_content(reg, "companion_server_auth_key_pub", 32, &noise))
        return sim_iq_error(a, iq, 400, "bad-request");
    /* the key the client will log in with must be the one it registered with */
    if (!wa_ct_equal(noise, c->reg_noise_pub, 32))
        return sim_iq_error(a, iq, 401, "not-authorized");
    l = lc_by_conn(c->sim, c->id);
    if (!l)
        l = lc_alloc(c->sim);
    if (!l)
        return sim_iq_error(a, iq, 429, "rate-overlimit");
    lc_wipe_keys(l);
    memset(l, 0, sizeof *l);
    l->sim = c->sim;
    l->conn_id = c->id;
    l->seq = ++lc_seq;
    l->state = LC_WAITING;
    snprintf(l->phone, sizeof l->phone, "%s", p->number);
    memcpy(l->wrapped, wrapped, LC_WRAPPED_LEN);
    wa_random(raw, sizeof raw);
    l->ref[0] = '2';
    l->ref[1] = '@';
    wa_base64_encode(l->ref + 2, raw, sizeof raw, 0);
    snprintf(c->link_code_phone, sizeof c->link_code_phone, "%s", p->number);
    wa_log_info("sim", "conn %llu: pairing code requested for %s", (unsigned long long)c->id,
                p->number);
    res = sim_iq_result(a, iq);
    r = sim_child(a, res, "link_code_companion_reg", NULL);
    if (!sim_bytes(a, sim_child(a, r, "link_code_pairing_ref", NULL), l->ref, strlen(l->ref)))
        return NULL;
    return res;
}

/* The client's companion_finish: the key bundle decides whether the typed code was right. */
static wa_node *lc_finish(sim_conn *c, const wa_node *iq, const wa_node *reg, wa_arena *a)
{
    lc_slot *l = lc_by_conn(c->sim, c->id);
    const uint8_t *bundle, *ident, *ref;
    const wa_node *ref_node = wa_node_child(reg, "link_code_pairing_ref");
    uint8_t shared[32], key[32], plain[LC_BUNDLE_PLAIN_LEN], ikm[96], adv[32];
    size_t ref_len = 0;
    wa_jid jid;
    sim_phone *p;
    sim_device *d;
    wa_node *res = NULL;
    int rc;

    if (!l || !lc_conn(l) || l->state != LC_SENT)
        return sim_iq_error(a, iq, 404, "item-not-found");
    if (wa_node_attr_jid(reg, "jid", &jid) != 0 || strcmp(jid.server, WA_JID_SERVER_USER) != 0 ||
        strcmp(jid.user, l->phone) != 0 || jid.device != 0)
        return sim_iq_error(a, iq, 400, "bad-request");
    if (!ref_node || wa_node_content_bytes(ref_node, &ref, &ref_len) != 0 ||
        ref_len != strlen(l->ref) || memcmp(ref, l->ref, ref_len) != 0)
        return sim_iq_error(a, iq, 404, "item-not-found");
    if (!lc_content(reg, "link_code_pairing_wrapped_key_bundle", LC_BUNDLE_LEN, &bundle) ||
        !lc_content(reg, "companion_identity_public", 32, &ident) ||
        !wa_ct_equal(ident, c->reg_keys.identity_pub, 32))
        return sim_iq_error(a, iq, 400, "bad-request");
    p = sim_phone_find(c->sim, l->phone);
    if (!p)
        return sim_iq_error(a, iq, 500, "internal-server-error");

    rc = wa_x25519(shared, l->primary_priv, l->companion_eph);
    if (!rc)
        rc = wa_hkdf_sha256(key, sizeof key, bundle, LC_SALT_LEN, shared, sizeof shared,
                            (const uint8_t *)lc_bundle_info, sizeof lc_bundle_info - 1);
    if (!rc)
        rc = wa_aes_gcm_decrypt(plain, key, bundle + LC_SALT_LEN, NULL, 0,
                                bundle + LC_SALT_LEN + WA_AES_GCM_IV_LEN,
                                LC_BUNDLE_PLAIN_LEN + WA_AES_GCM_TAG_LEN);
    if (rc) {
        /* the two sides unwrapped each other's ephemeral key with different codes */
        l->wrong++;
        wa_log_info("sim", "conn %llu: wrong pairing code typed for %s (%d of %d)",
                    (unsigned long long)c->id, l->phone, l->wrong, LC_MAX_ATTEMPTS);
        if (l->wrong >= LC_MAX_ATTEMPTS)
            lc_end(l, LC_EXPIRED, "too many wrong codes");
        else
            lc_end(l, LC_WRONG,
                   "the key bundle did not decrypt: the code typed is not the one "
                   "the client shows");
        res = sim_iq_error(a, iq, 400, "bad-request");
        goto out;
    }
    if (!wa_ct_equal(plain, c->reg_keys.identity_pub, 32) ||
        !wa_ct_equal(plain + 32, p->identity_pub, 32)) {
        lc_end(l, LC_EXPIRED, "the key bundle names other identity keys");
        res = sim_iq_error(a, iq, 400, "bad-request");
        goto out;
    }
    /* adv_secret = HKDF(ephemeral shared || DH(primary identity, companion identity) || random,
     * no salt, "adv_secret"): what the client computed before sending the bundle */
    memcpy(ikm, shared, 32);
    rc = wa_x25519(ikm + 32, p->identity_priv, c->reg_keys.identity_pub);
    memcpy(ikm + 64, plain + 64, 32);
    if (!rc)
        rc = wa_hkdf_sha256(adv, sizeof adv, NULL, 0, ikm, sizeof ikm, (const uint8_t *)lc_adv_info,
                            sizeof lc_adv_info - 1);
    d = rc ? NULL : sim_pair_new_device(c, p);
    if (!d) {
        lc_end(l, LC_EXPIRED, rc ? "key agreement failed" : "no free device slot");
        res = sim_iq_error(a, iq, 500, "internal-server-error");
        goto out;
    }
    /* pair-success goes out before this iq's result: the client handles both on their own */
    rc = sim_pair_send_success(c, d, adv);
    if (rc) {
        sim_keys_cleanup(&d->keys);
        memset(d, 0, sizeof *d);
        c->pending_device = NULL;
        lc_end(l, LC_EXPIRED, "cannot send pair-success");
        res = sim_iq_error(a, iq, 500, "internal-server-error");
        goto out;
    }
    snprintf(l->device, sizeof l->device, "%s:%u@s.whatsapp.net", p->number, (unsigned)d->id);
    lc_end(l, LC_PAIRED, NULL);
    wa_log_info("sim", "conn %llu: pairing code accepted, pair-success for %s",
                (unsigned long long)c->id, l->device);
    res = sim_iq_result(a, iq);
out:
    wa_wipe(shared, sizeof shared);
    wa_wipe(key, sizeof key);
    wa_wipe(plain, sizeof plain);
    wa_wipe(ikm, sizeof ikm);
    wa_wipe(adv, sizeof adv);
    return res;
}

/* The 515 after a code pairing waits LC_RESTART_DELAY_MS. By then the client has acked the
 * primary_hello notification and sent what it sends after pair-device-sign (Baileys 7: presence,
 * ib unified_session). Closing while those are in flight makes the kernel answer them with a
 * reset, and a reset can destroy the 515 the client has received but not read yet: Baileys then
 * sees "Connection Terminated" (428) instead of "restart required". The real fix is a lingering
 * close in lib/net (drain the peer's input after the shutdown); QR pairing, where the client
 * sends nothing the server has not read by then, has not shown the race. */
typedef struct lc_restart {
    uv_timer_t timer;
    sim *sim;
    uint64_t conn_id;
} lc_restart;

static void lc_restart_closed(uv_handle_t *h)
{
    free(h->data);
}

static void lc_restart_fire(uv_timer_t *t)
{
    lc_restart *r = t->data;
    sim_conn *c;

    for (c = r->sim->conns; c; c = c->next)
        if (c->id == r->conn_id)
            break;
    if (c && c->state != SIM_CONN_CLOSING)
        sim_send_stream_error(c, "515", NULL);
    uv_close((uv_handle_t *)t, lc_restart_closed);
}

/* 0 if the 515 for c was scheduled (c was paired with a code), else WA_ENOTFOUND / WA_ENOMEM:
 * the caller sends it at once. */
static int lc_restart_later(sim_conn *c)
{
    lc_slot *l = lc_by_conn(c->sim, c->id);
    lc_restart *r;

    if (!l || l->state != LC_PAIRED)
        return WA_ENOTFOUND;
    r = calloc(1, sizeof *r);
    if (!r)
        return WA_ENOMEM;
    r->sim = c->sim;
    r->conn_id = c->id;
    r->timer.data = r;
    if (uv_timer_init(c->sim->loop, &r->timer) != 0) {
        free(r);
        return WA_ENOMEM;
    }
    uv_timer_start(&r->timer, lc_restart_fire, LC_RESTART_DELAY_MS, 0);
    return 0;
}

wa_node *sim_pair_link_code_iq(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    const wa_node *reg = wa_node_child(iq, "link_code_companion_reg");
    const char *stage = wa_node_attr(reg, "stage"), *type = wa_node_attr(iq, "type");

    if (!reg || !stage || !type || strcmp(type, "set") != 0)
        return sim_iq_error(a, iq, 400, "bad-request");
    if (c->state != SIM_CONN_REGISTERING || c->pending_device)
        return sim_iq_error(a, iq, 405, "not-allowed");
    if (strcmp(stage, "companion_hello") == 0)
        return lc_hello(c, iq, reg, a);
    if (strcmp(stage, "companion_finish") == 0)
        return lc_finish(c, iq, reg, a);
    /* get_country_code, refresh_code: not simulated */
    return sim_iq_error(a, iq, 501, "feature-not-implemented");
}

int sim_pair_link_code(sim *s, sim_phone *p, const char *code)
{
    char typed[LC_CODE_LEN + 1];
    uint8_t primary_pub[32], wrapped[LC_WRAPPED_LEN];
    lc_slot *l;
    sim_conn *c;
    wa_arena a;
    wa_node *n, *r;
    char id[32], t[24];
    int rc;

    if (lc_normalize(code, typed) != 0)
        return WA_EINVAL;
    l = lc_for_phone(s, p->number, 1);
    if (!l)
        return WA_ENOTFOUND;
    if (l->state == LC_SENT)
        return WA_ESTATE; /* the client has not answered the last code yet */
    c = lc_conn(l);
    if (!c)
        return WA_ENOTFOUND;
    wa_arena_init(&a, 4096);
    /* the phone unwraps the companion's key with the code the user typed (right or not) */
    rc = lc_ctr(l->companion_eph, typed, l->wrapped, l->wrapped + LC_SALT_LEN,
                l->wrapped + LC_SALT_LEN + LC_CTR_IV_LEN);
    if (!rc)
        rc = wa_x25519_keygen(l->primary_priv, primary_pub);
    if (!rc)
        rc = wa_random(wrapped, LC_SALT_LEN + LC_CTR_IV_LEN);
    if (!rc)
        rc = lc_ctr(wrapped + LC_SALT_LEN + LC_CTR_IV_LEN, typed, wrapped, wrapped + LC_SALT_LEN,
                    primary_pub);
    if (rc)
        goto out;
    sim_make_id(s, id, sizeof id);
    sim_unix_str(t, sizeof t);
    n = sim_node(&a, "notification", "from", "@s.whatsapp.net", "type", "link_code_companion_reg",
                 "id", id, "t", t, NULL);
    r = sim_child(&a, n, "link_code_companion_reg", "stage", "primary_hello", NULL);
    if (!sim_bytes(&a, sim_child(&a, r, "link_code_pairing_ref", NULL), l->ref, strlen(l->ref)) ||
        !sim_bytes(&a, sim_child(&a, r, "primary_identity_pub", NULL), p->identity_pub, 32) ||
        !sim_bytes(&a, sim_child(&a, r, "link_code_pairing_wrapped_primary_ephemeral_pub", NULL),
                   wrapped, sizeof wrapped)) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = sim_conn_send(c, n);
    if (!rc) {
        l->state = LC_SENT;
        l->why = NULL;
    }
out:
    if (rc)
        lc_wipe_keys(l);
    wa_wipe(typed, sizeof typed);
    wa_arena_cleanup(&a);
    return rc;
}

/* The outcome of the newest pairing-code request for phone p, for the control API: *state one
 * of waiting_for_code, code_sent, wrong_code, paired, expired; *why a reason for wrong_code and
 * expired (else NULL); *attempts_left wrong codes still allowed; device the paired device JID
 * ("" before). 0, or WA_ENOTFOUND when no client asked for a code for p.
 * The prototype is repeated in control.c until it can move to sim.h. */
int sim_pair_link_code_state(sim *s, const sim_phone *p, const char **state, const char **why,
                             int *attempts_left, char *device, size_t device_cap);

int sim_pair_link_code_state(sim *s, const sim_phone *p, const char **state, const char **why,
                             int *attempts_left, char *device, size_t device_cap)
{
    static const char *const names[] = {"none",       "waiting_for_code", "code_sent",
                                        "wrong_code", "paired",           "expired"};
    lc_slot *l = lc_for_phone(s, p->number, 0);

    if (!l)
        return WA_ENOTFOUND;
    *state = names[l->state];
    *why = l->why;
    *attempts_left = LC_MAX_ATTEMPTS - l->wrong;
    snprintf(device, device_cap, "%s", l->device);
    return 0;
}
