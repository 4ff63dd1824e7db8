/* test_messaging.c - the sans-I/O parts of libwa's messaging: Message protobufs built and read
 * (content.c), message ids, the pkmsg identity reader and the device-identity check (e2e.c),
 * and the Signal store adapter over SQLite (sigstore.c) driving real 1:1 sessions and sender
 * keys between two accounts of one store, across a reopen of the store.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/client_int.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "proto/adv.pb-c.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "signal/memstore.h"
#include "wa/error.h"

/* ---- content -------------------------------------------------------------------------------- */

static void test_message_ids(void **state)
{
    char a[WA_CLIENT_MSG_ID_MAX], b[WA_CLIENT_MSG_ID_MAX];
    size_t i;

    (void)state;
    wa__content_new_id(a);
    wa__content_new_id(b);
    assert_int_equal(strlen(a), 4 + WA__MSG_ID_HEX);
    assert_memory_equal(a, "3EB0", 4);
    for (i = 4; a[i]; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'F'));
    assert_string_not_equal(a, b);
}

static void test_text_roundtrip(void **state)
{
    wa__outgoing o;
    wa__incoming in;
    const char *mentions[2] = {"111@s.whatsapp.net", "222@s.whatsapp.net"};
    wa_client_send_opts opts;
    Wa__Message *m = NULL;

    (void)state;
    /* plain text: Message.conversation */
    assert_int_equal(wa__content_text(&o, "hello", NULL, "9@s.whatsapp.net"), 0);
    assert_string_equal(o.type, "text");
    assert_null(o.edit);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, o.plain.data, o.plain.len, &m), 0);
    assert_string_equal(m->conversation, "hello");
    assert_null(m->extendedtextmessage);
    wa_proto_free(m);
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_TEXT);
    assert_string_equal(in.text, "hello");
    assert_string_equal(in.quoted_id, "");
    assert_true(in.has_content);
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);

    /* reply with mentions: extendedTextMessage with contextInfo */
    memset(&opts, 0, sizeof opts);
    opts.quoted_id = "3EB0AAAA";
    opts.quoted_text = "original";
    opts.mentions = mentions;
    opts.n_mentions = 2;
    assert_int_equal(wa__content_text(&o, "reply @111", &opts, "9@s.whatsapp.net"), 0);
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_TEXT);
    assert_string_equal(in.text, "reply @111");
    assert_string_equal(in.quoted_id, "3EB0AAAA");
    assert_string_equal(in.quoted_sender, "9@s.whatsapp.net"); /* default: the chat */
    assert_string_equal(in.quoted_text, "original");
    assert_int_equal(in.n_mentions, 2);
    assert_string_equal(in.mentions[1], "222@s.whatsapp.net");
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);

    /* bad arguments */
    assert_int_equal(wa__content_text(&o, "", NULL, "9@s.whatsapp.net"), WA_EINVAL);
    opts.n_mentions = WA_CLIENT_MENTIONS_MAX + 1;
    assert_int_equal(wa__content_text(&o, "x", &opts, "9@s.whatsapp.net"), WA_EINVAL);
}

static void test_reaction_edit_revoke(void **state)
{
    wa__outgoing o;
    wa__incoming in;

    (void)state;
    assert_int_equal(
        wa__content_reaction(&o, "g1@g.us", "3EB01", "5:2@s.whatsapp.net", 0, "x", 1700000000000),
        0);
    assert_string_equal(o.type, "reaction");
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_REACTION);
    assert_string_equal(in.text, "x");
    assert_string_equal(in.target_id, "3EB01");
    assert_string_equal(in.target_sender, "5:2@s.whatsapp.net"); /* participant in groups */
    assert_false(in.target_from_me);
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);

    assert_int_equal(wa__content_edit(&o, "9@s.whatsapp.net", "3EB02", "new text", 1), 0);
    assert_string_equal(o.edit, "1");
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_EDIT);
    assert_string_equal(in.text, "new text");
    assert_string_equal(in.target_id, "3EB02");
    assert_true(in.target_from_me);
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);

    assert_int_equal(wa__content_revoke(&o, "9@s.whatsapp.net", "3EB03"), 0);
    assert_string_equal(o.edit, "7");
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_REVOKE);
    assert_string_equal(in.target_id, "3EB03");
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);

    assert_int_equal(wa__content_revoke(&o, "9@s.whatsapp.net", ""), WA_EINVAL);
    assert_int_equal(wa__content_reaction(&o, "not a jid", "3EB0", NULL, 0, "x", 0), WA_EINVAL);
}

static void test_location_contact(void **state)
{
    wa__outgoing o;
    wa__incoming in;
    wa_client_location loc = {-33.856784, 151.215297, "Opera House", "Bennelong Point"};
    wa_client_send_opts opts;
    Wa__Message *m = NULL;
    const char *vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nEND:VCARD";

    (void)state;
    /* location: type text, no media type (Baileys 7 / whatsmeow) */
    assert_int_equal(wa__content_location(&o, &loc, NULL, "9@s.whatsapp.net"), 0);
    assert_string_equal(o.type, "text");
    assert_null(o.mediatype);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, o.plain.data, o.plain.len, &m), 0);
    assert_non_null(m->locationmessage);
    assert_true(m->locationmessage->has_degreeslatitude);
    assert_true(m->locationmessage->degreeslatitude == -33.856784);
    assert_string_equal(m->locationmessage->address, "Bennelong Point");
    wa_proto_free(m);
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_LOCATION);
    assert_true(in.latitude == -33.856784 && in.longitude == 151.215297);
    assert_string_equal(in.location_name, "Opera House");
    assert_string_equal(in.location_address, "Bennelong Point");
    assert_string_equal(in.vcard, "");
    assert_true(in.has_content);
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);
    /* no name or address: absent fields, "" when read */
    loc.name = NULL;
    loc.address = "";
    assert_int_equal(wa__content_location(&o, &loc, NULL, "9@s.whatsapp.net"), 0);
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_string_equal(in.location_name, "");
    assert_string_equal(in.location_address, "");
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);
    /* out of range */
    loc.latitude = 90.5;
    assert_int_equal(wa__content_location(&o, &loc, NULL, "9@s.whatsapp.net"), WA_EINVAL);
    loc.latitude = 0;
    loc.longitude = -180.01;
    assert_int_equal(wa__content_location(&o, &loc, NULL, "9@s.whatsapp.net"), WA_EINVAL);

    /* contact, as a reply: type media, <enc mediatype='vcard'> */
    memset(&opts, 0, sizeof opts);
    opts.quoted_id = "3EB0QQ";
    assert_int_equal(wa__content_contact(&o, "Ada", vcard, &opts, "9@s.whatsapp.net"), 0);
    assert_string_equal(o.type, "media");
    assert_string_equal(o.mediatype, "vcard");
    assert_int_equal(wa__content_read(o.plain.data, o.plain.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_CONTACT);
    assert_string_equal(in.contact_name, "Ada");
    assert_string_equal(in.vcard, vcard);
    assert_string_equal(in.quoted_id, "3EB0QQ");
    wa__content_free(&in);
    wa_buf_cleanup(&o.plain);
    assert_int_equal(wa__content_contact(&o, "", vcard, NULL, "9@s.whatsapp.net"), WA_EINVAL);
    assert_int_equal(wa__content_contact(&o, "Ada", "", NULL, "9@s.whatsapp.net"), WA_EINVAL);
}

static void test_dsm_and_wrappers(void **state)
{
    wa__outgoing o;
    wa__incoming in;
    wa_buf dsm, wrapped;
    Wa__Message top = WA__MESSAGE__INIT, inner = WA__MESSAGE__INIT;
    Wa__Message__FutureProofMessage fp = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT;
    Wa__Message *m = NULL;

    (void)state;
    assert_int_equal(wa__content_text(&o, "to my other device", NULL, "9@s.whatsapp.net"), 0);
    wa_buf_init(&dsm, 4096);
    assert_int_equal(wa__content_dsm(o.plain.data, o.plain.len, "9@s.whatsapp.net", &dsm), 0);
    /* the hand-made encoding is what protobuf-c decodes */
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, dsm.data, dsm.len, &m), 0);
    assert_non_null(m->devicesentmessage);
    assert_string_equal(m->devicesentmessage->destinationjid, "9@s.whatsapp.net");
    assert_string_equal(m->devicesentmessage->message->conversation, "to my other device");
    wa_proto_free(m);
    assert_int_equal(wa__content_read(dsm.data, dsm.len, &in), 0);
    assert_string_equal(in.dsm_destination, "9@s.whatsapp.net");
    assert_string_equal(in.text, "to my other device");
    wa__content_free(&in);

    /* ephemeral wrapper around a text */
    inner.conversation = "wrapped";
    fp.message = &inner;
    top.ephemeralmessage = &fp;
    wa_buf_init(&wrapped, 4096);
    assert_int_equal(wa_proto_pack(&top, &wrapped), 0);
    assert_int_equal(wa__content_read(wrapped.data, wrapped.len, &in), 0);
    assert_int_equal(in.kind, WA_MSG_TEXT);
    assert_string_equal(in.text, "wrapped");
    wa__content_free(&in);
    wa_buf_cleanup(&wrapped);
    wa_buf_cleanup(&dsm);
    wa_buf_cleanup(&o.plain);
}

static void test_protocol_only_and_bad(void **state)
{
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__SenderKeyDistributionMessage sk =
        WA__MESSAGE__SENDER_KEY_DISTRIBUTION_MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    uint8_t skdm[3] = {0x33, 1, 2}, junk[4] = {0xff, 0xff, 0xff, 0xff};
    wa__incoming in;
    wa_buf b;

    (void)state;
    wa_buf_init(&b, 4096);
    sk.groupid = "g@g.us";
    sk.has_axolotlsenderkeydistributionmessage = 1;
    sk.axolotlsenderkeydistributionmessage.data = skdm;
    sk.axolotlsenderkeydistributionmessage.len = sizeof skdm;
    m.senderkeydistributionmessage = &sk;
    assert_int_equal(wa_proto_pack(&m, &b), 0);
    assert_int_equal(wa__content_read(b.data, b.len, &in), 0);
    assert_false(in.has_content); /* a bare sender key distribution */
    assert_int_equal(in.skdm_len, 3);
    assert_string_equal(in.skdm_group, "g@g.us");
    wa__content_free(&in);

    /* a key share: protocol data, nothing for the application */
    memset(&m, 0, sizeof m);
    wa__message__init(&m);
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__APP_STATE_SYNC_KEY_SHARE;
    m.protocolmessage = &pm;
    wa_buf_reset(&b);
    assert_int_equal(wa_proto_pack(&m, &b), 0);
    assert_int_equal(wa__content_read(b.data, b.len, &in), 0);
    assert_false(in.has_content);
    wa__content_free(&in);

    assert_int_equal(wa__content_read(junk, sizeof junk, &in), WA_EPROTOBUF);
    assert_int_equal(wa__content_read(junk, WA__PLAIN_MAX + 1, &in), WA_ELIMIT);
    wa_buf_cleanup(&b);
}

/* ---- e2e helpers ---------------------------------------------------------------------------- */

static void test_device_identity_check(void **state)
{
    Wa__ADVSignedDeviceIdentity id = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    uint8_t acc_priv[32], acc_pub[32], dev_priv[32], dev_pub[32], other[32], sig[64];
    uint8_t details[5] = {8, 1, 16, 2, 24}, msg[2 + 5 + 32];
    wa_buf b;

    (void)state;
    assert_int_equal(wa_x25519_keygen(acc_priv, acc_pub), 0);
    assert_int_equal(wa_x25519_keygen(dev_priv, dev_pub), 0);
    assert_int_equal(wa_x25519_keygen(dev_priv, other), 0);
    msg[0] = 6;
    msg[1] = 0;
    memcpy(msg + 2, details, 5);
    memcpy(msg + 7, dev_pub, 32);
    assert_int_equal(wa_xeddsa_sign(sig, acc_priv, msg, sizeof msg), 0);
    id.has_details = id.has_accountsignaturekey = id.has_accountsignature = 1;
    id.details.data = details;
    id.details.len = sizeof details;
    id.accountsignaturekey.data = acc_pub;
    id.accountsignaturekey.len = 32;
    id.accountsignature.data = sig;
    id.accountsignature.len = 64;
    wa_buf_init(&b, 1024);
    assert_int_equal(wa_proto_pack(&id, &b), 0);
    assert_int_equal(wa__e2e_check_device_identity(b.data, b.len, dev_pub), 0);
    assert_int_equal(wa__e2e_check_device_identity(b.data, b.len, other), WA_ECRYPTO);
    /* hosted accounts: prefix 06 05 */
    msg[1] = 5;
    assert_int_equal(wa_xeddsa_sign(sig, acc_priv, msg, sizeof msg), 0);
    wa_buf_reset(&b);
    assert_int_equal(wa_proto_pack(&id, &b), 0);
    assert_int_equal(wa__e2e_check_device_identity(b.data, b.len, dev_pub), 0);
    /* without the account key */
    id.has_accountsignaturekey = 0;
    wa_buf_reset(&b);
    assert_int_equal(wa_proto_pack(&id, &b), 0);
    assert_int_equal(wa__e2e_check_device_identity(b.data, b.len, dev_pub), WA_EPROTOBUF);
    assert_int_equal(wa__e2e_check_device_identity((const uint8_t *)"\xff\xff", 2, dev_pub),
                     WA_EPROTOBUF);
    wa_buf_cleanup(&b);
}

/* A party of the memstore-backed sessions (for the pkmsg reader test). */
typedef struct party {
    wa_signal_keypair id;
    uint32_t reg;
    wa_signal_memstore *mem;
    wa_signal *sig;
    wa_signal_signed_prekey spk;
    wa_signal_prekey pk;
} party;

static void party_init(party *p)
{
    wa_signal_store st;

    assert_int_equal(wa_signal_gen_keypair(&p->id), 0);
    assert_int_equal(wa_signal_gen_registration_id(&p->reg), 0);
    assert_int_equal(wa_signal_memstore_new(&p->mem, &p->id, p->reg, 0), 0);
    wa_signal_memstore_bind(p->mem, &st);
    assert_int_equal(wa_signal_new(&p->sig, &st), 0);
    assert_int_equal(wa_signal_gen_signed_prekey(&p->id, 1, &p->spk), 0);
    assert_int_equal(wa_signal_gen_prekeys(7, 1, &p->pk), 0);
    assert_int_equal(wa_signal_save_signed_prekey(p->sig, &p->spk), 0);
    assert_int_equal(wa_signal_save_prekeys(p->sig, &p->pk, 1), 0);
}

static void party_free(party *p)
{
    wa_signal_free(p->sig);
    wa_signal_memstore_free(p->mem);
}

static void test_pkmsg_identity(void **state)
{
    party a, b;
    wa_signal_bundle bundle;
    wa_signal_addr ab;
    uint8_t plain[5] = {1, 2, 3, 4, 1}, idk[32];
    wa_buf ct;
    size_t cut;
    int type = 0;

    (void)state;
    party_init(&a);
    party_init(&b);
    wa_signal_addr_make(&ab, "222", WA_SIGNAL_PN, 1);
    wa_signal_make_bundle(&bundle, b.reg, b.id.pub, &b.spk, &b.pk);
    assert_int_equal(wa_signal_process_bundle(a.sig, &ab, &bundle), 0);
    wa_buf_init(&ct, 4096);
    assert_int_equal(wa_signal_encrypt(a.sig, &ab, plain, sizeof plain, &type, &ct), 0);
    assert_int_equal(type, WA_SIGNAL_PKMSG);
    assert_int_equal(wa__e2e_pkmsg_identity(ct.data, ct.len, idk), 0);
    assert_memory_equal(idk, a.id.pub, 32);
    /* every truncation either still finds the key (it comes early) or fails cleanly */
    for (cut = 0; cut < ct.len; cut++) {
        int rc = wa__e2e_pkmsg_identity(ct.data, cut, idk);
        assert_true(rc == 0 || rc == WA_EPROTO);
        if (rc == 0)
            assert_memory_equal(idk, a.id.pub, 32);
    }
    assert_int_equal(wa__e2e_pkmsg_identity((const uint8_t *)"\x33\x1a\x05", 3, idk), WA_EPROTO);
    wa_buf_cleanup(&ct);
    party_free(&a);
    party_free(&b);
}

/* ---- the SQLite adapter --------------------------------------------------------------------- */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wa_msg_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    wa_signal_ctx_shutdown();
    return 0;
}

typedef struct tacct {
    int64_t id;
    wa__sigstore ss;
    wa_signal *sig;
    wa_store_creds cr;
} tacct;

static void acct_open(wa_store *s, const char *name, tacct *a, int fresh)
{
    wa_signal_store st;
    wa_store_prekey pk[3];
    size_t n = 0;

    assert_int_equal(wa_store_account(s, name, 1, &a->id), 0);
    if (fresh) {
        assert_int_equal(wa__keys_new_creds(&a->cr), 0);
        assert_int_equal(wa_store_creds_save(s, a->id, &a->cr, 0), 0);
        assert_int_equal(wa_store_creds_load(s, a->id, &a->cr), 0);
        assert_int_equal(wa__keys_pending_prekeys(s, a->id, &a->cr, 3, pk, &n), 0);
        assert_int_equal(n, 3);
    } else {
        assert_int_equal(wa_store_creds_load(s, a->id, &a->cr), 0);
    }
    a->ss.store = s;
    a->ss.account = a->id;
    wa__sigstore_bind(&a->ss, &st);
    assert_int_equal(wa_signal_new(&a->sig, &st), 0);
}

static void acct_close(tacct *a)
{
    wa_signal_free(a->sig);
    wa_store_creds_wipe(&a->cr);
}

/* b's bundle as the server would hand it out: its signed prekey and one-time prekey `pk`. */
static void bundle_of(wa_store *s, const tacct *b, uint32_t pk_id, wa_signal_bundle *out)
{
    wa_store_prekey pk;

    assert_int_equal(wa_store_prekey_get(s, b->id, pk_id, &pk), 0);
    memset(out, 0, sizeof *out);
    out->reg_id = b->cr.registration_id;
    memcpy(out->identity_pub, b->cr.identity_pub, 32);
    out->spk_id = b->cr.spk_id;
    memcpy(out->spk_pub, b->cr.spk_pub, 32);
    memcpy(out->spk_sig, b->cr.spk_sig, 64);
    out->has_prekey = 1;
    out->prekey_id = pk_id;
    memcpy(out->prekey_pub, pk.pub, 32);
}

static void roundtrip(tacct *from, const wa_signal_addr *to_addr, tacct *to,
                      const wa_signal_addr *from_addr, const char *text, int want_type)
{
    wa_buf ct, pt;
    int type = 0;

    wa_buf_init(&ct, 4096);
    wa_buf_init(&pt, 4096);
    assert_int_equal(
        wa_signal_encrypt(from->sig, to_addr, (const uint8_t *)text, strlen(text), &type, &ct), 0);
    assert_int_equal(type, want_type);
    assert_int_equal(wa_signal_decrypt(to->sig, from_addr, type, ct.data, ct.len, &pt), 0);
    assert_int_equal(pt.len, strlen(text));
    assert_memory_equal(pt.data, text, pt.len);
    /* a replay is a duplicate, not a failure that wants a retry */
    wa_buf_reset(&pt);
    assert_int_equal(wa_signal_decrypt(to->sig, from_addr, type, ct.data, ct.len, &pt), WA_EEXIST);
    wa_buf_cleanup(&ct);
    wa_buf_cleanup(&pt);
}

static void test_sqlite_adapter(void **state)
{
    char path[128];
    wa_store *s;
    tacct a, b;
    wa_signal_addr a_at_b, b_at_a, addrs[3];
    wa_signal_bundle bundle;
    wa_signal_encrypted res[3];
    wa_store_prekey left;
    uint8_t has[3];
    wa_buf skdm, gct, gpt;
    size_t i;

    (void)state;
    snprintf(path, sizeof path, "%s/adapter.db", dir);
    assert_int_equal(wa_store_open(path, NULL, &s), 0);
    acct_open(s, "a", &a, 1);
    acct_open(s, "b", &b, 1);
    /* a knows b by LID, b knows a by phone number: the names are local to each store side */
    wa_signal_addr_make(&b_at_a, "999888", WA_SIGNAL_LID, 1);
    wa_signal_addr_make(&a_at_b, "15550001", WA_SIGNAL_PN, 1);

    assert_int_equal(wa_signal_has_session(a.sig, &b_at_a), 0);
    bundle_of(s, &b, 2, &bundle);
    assert_int_equal(wa_signal_process_bundle(a.sig, &b_at_a, &bundle), 0);
    assert_int_equal(wa_signal_has_session(a.sig, &b_at_a), 1);
    roundtrip(&a, &b_at_a, &b, &a_at_b, "first, a pkmsg", WA_SIGNAL_PKMSG);
    /* b's one-time prekey 2 was used up (removed only after the decryption went through) */
    assert_int_equal(wa_store_prekey_get(s, b.id, 2, &left), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekey_get(s, b.id, 1, &left), 0);
    roundtrip(&b, &a_at_b, &a, &b_at_a, "b answers", WA_SIGNAL_MSG);
    roundtrip(&a, &b_at_a, &b, &a_at_b, "now a msg", WA_SIGNAL_MSG);

    /* the batch load of a fan-out: one known device, one unknown, the known one again */
    addrs[0] = b_at_a;
    wa_signal_addr_make(&addrs[1], "777", WA_SIGNAL_PN, 0);
    addrs[2] = b_at_a;
    assert_int_equal(wa_signal_has_sessions(a.sig, addrs, 3, has), 0);
    assert_int_equal(has[0], 1);
    assert_int_equal(has[1], 0);
    for (i = 0; i < 3; i++)
        wa_buf_init(&res[i].ct, 4096);
    assert_int_equal(wa_signal_encrypt_many(a.sig, addrs, 3, (const uint8_t *)"fan", 3, res), 0);
    assert_int_equal(res[0].err, 0);
    assert_int_equal(res[1].err, WA_ENOTFOUND);
    assert_int_equal(res[2].err, 0);
    for (i = 0; i < 3; i++)
        wa_buf_cleanup(&res[i].ct);
    /* two plaintexts in one batch: each device gets the one `which` picks */
    {
        const uint8_t *pl[2] = {(const uint8_t *)"for peers", (const uint8_t *)"for me"};
        size_t len[2] = {9, 6};
        uint8_t which[2] = {1, 0};
        wa_buf pt;
        for (i = 0; i < 2; i++)
            wa_buf_init(&res[i].ct, 4096);
        assert_int_equal(wa_signal_encrypt_fanout(a.sig, addrs, 2, pl, len, which, res), 0);
        assert_int_equal(res[0].err, 0);
        assert_int_equal(res[1].err, WA_ENOTFOUND);
        wa_buf_init(&pt, 4096);
        assert_int_equal(
            wa_signal_decrypt(b.sig, &a_at_b, res[0].type, res[0].ct.data, res[0].ct.len, &pt), 0);
        assert_int_equal(pt.len, 6);
        assert_memory_equal(pt.data, "for me", 6);
        which[0] = 2;
        assert_int_equal(wa_signal_encrypt_fanout(a.sig, addrs, 1, pl, len, which, res), WA_EINVAL);
        wa_buf_cleanup(&pt);
        for (i = 0; i < 2; i++)
            wa_buf_cleanup(&res[i].ct);
    }

    /* sender keys through the adapter */
    wa_buf_init(&skdm, 1024);
    wa_buf_init(&gct, 4096);
    wa_buf_init(&gpt, 4096);
    assert_int_equal(wa_signal_group_create_skdm(a.sig, "g1@g.us", &a_at_b, &skdm), 0);
    assert_int_equal(wa_signal_group_process_skdm(b.sig, "g1@g.us", &a_at_b, skdm.data, skdm.len),
                     0);
    assert_int_equal(
        wa_signal_group_encrypt(a.sig, "g1@g.us", &a_at_b, (const uint8_t *)"group", 5, &gct), 0);
    assert_int_equal(wa_signal_group_decrypt(b.sig, "g1@g.us", &a_at_b, gct.data, gct.len, &gpt),
                     0);
    assert_memory_equal(gpt.data, "group", 5);

    /* everything is in the file: reopen and carry on */
    acct_close(&a);
    acct_close(&b);
    wa_store_close(s);
    assert_int_equal(wa_store_open(path, NULL, &s), 0);
    acct_open(s, "a", &a, 0);
    acct_open(s, "b", &b, 0);
    roundtrip(&b, &a_at_b, &a, &b_at_a, "after a reopen", WA_SIGNAL_MSG);
    wa_buf_reset(&gct);
    wa_buf_reset(&gpt);
    assert_int_equal(
        wa_signal_group_encrypt(a.sig, "g1@g.us", &a_at_b, (const uint8_t *)"again", 5, &gct), 0);
    assert_int_equal(wa_signal_group_decrypt(b.sig, "g1@g.us", &a_at_b, gct.data, gct.len, &gpt),
                     0);
    assert_memory_equal(gpt.data, "again", 5);

    /* a lost session: decryption fails without changing anything */
    assert_int_equal(wa_signal_delete_session(b.sig, &a_at_b), 0);
    {
        wa_buf ct, pt;
        int type = 0;
        wa_buf_init(&ct, 4096);
        wa_buf_init(&pt, 4096);
        assert_int_equal(wa_signal_encrypt(a.sig, &b_at_a, (const uint8_t *)"x", 1, &type, &ct), 0);
        assert_int_equal(wa_signal_decrypt(b.sig, &a_at_b, type, ct.data, ct.len, &pt),
                         WA_ENOTFOUND);
        assert_int_equal(pt.len, 0);
        wa_buf_cleanup(&ct);
        wa_buf_cleanup(&pt);
    }
    wa_buf_cleanup(&skdm);
    wa_buf_cleanup(&gct);
    wa_buf_cleanup(&gpt);
    acct_close(&a);
    acct_close(&b);
    wa_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_ids),           cmocka_unit_test(test_text_roundtrip),
        cmocka_unit_test(test_reaction_edit_revoke),  cmocka_unit_test(test_dsm_and_wrappers),
        cmocka_unit_test(test_protocol_only_and_bad), cmocka_unit_test(test_device_identity_check),
        cmocka_unit_test(test_pkmsg_identity),        cmocka_unit_test(test_sqlite_adapter),
        cmocka_unit_test(test_location_contact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
