/* test_proto.c - lib/proto: known-answer vectors encoded by Baileys' own WAProto encoder
 * (tests/vectors/proto_*.hex, made by gen_vectors.js), round trips of every top-level type,
 * unknown-field preservation, malformed input, allocation failure, pack limits.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "proto/adv.pb-c.h"
#include "proto/client_payload.pb-c.h"
#include "proto/handshake.pb-c.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define VECTOR_MAX (64 * 1024)
#define PACK_MAX   (1024 * 1024)

/* ---- helpers ---- */

/* Read tests/vectors/proto_<name>.hex (hex digits, whitespace ignored). Caller frees. */
static uint8_t *load_vector(const char *name, size_t *len)
{
    const char *src = getenv("WA_SOURCE_DIR");
    char path[4096];
    char *hex;
    uint8_t *out;
    size_t n = 0;
    FILE *f;
    int c;

    if (!src)
        src = WA_TEST_SOURCE_DIR;
    snprintf(path, sizeof path, "%s/tests/vectors/proto_%s.hex", src, name);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    hex = malloc(2 * VECTOR_MAX);
    assert_non_null(hex);
    while ((c = fgetc(f)) != EOF) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        assert_true(n < 2 * VECTOR_MAX);
        hex[n++] = (char)c;
    }
    fclose(f);
    assert_true(n > 0 && n % 2 == 0);
    out = malloc(n / 2);
    assert_non_null(out);
    assert_int_equal(wa_hex_decode(out, n / 2, hex, n), 0);
    free(hex);
    *len = n / 2;
    return out;
}

static void assert_bytes(ProtobufCBinaryData b, const void *want, size_t n)
{
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
}

static void assert_bytes_fill(ProtobufCBinaryData b, uint8_t v, size_t n)
{
    assert_int_equal(b.len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b.data[i], v);
}

/* Pack `msg` with wa_proto_pack and return the bytes (wa_free). */
static uint8_t *pack(const void *msg, size_t *len)
{
    wa_buf b;

    wa_buf_init(&b, PACK_MAX);
    assert_int_equal(wa_proto_pack(msg, &b), 0);
    assert_int_equal(b.len, protobuf_c_message_get_packed_size(msg));
    return wa_buf_steal(&b, len);
}

/* Re-encoding a decoded vector gives the same bytes (field order, varint widths, packing). */
static void assert_repack_equal(const void *msg, const uint8_t *want, size_t n)
{
    size_t len;
    uint8_t *got = pack(msg, &len);

    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    wa_free(got);
}

/* ---- known-answer vectors from Baileys ---- */

static void test_vector_cert_chain(void **state)
{
    Wa__CertChain *cc = NULL;
    Wa__CertChain__NoiseCertificate__Details *d = NULL;
    size_t n;
    uint8_t *v = load_vector("cert_chain", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__cert_chain__descriptor, v, n, &cc), 0);
    assert_non_null(cc->leaf);
    assert_non_null(cc->intermediate);
    assert_bytes_fill(cc->leaf->signature, 0x51, 64);
    assert_bytes_fill(cc->intermediate->signature, 0x52, 64);
    assert_true(cc->leaf->has_details);
    assert_int_equal(wa_proto_unpack(&wa__cert_chain__noise_certificate__details__descriptor,
                                     cc->leaf->details.data, cc->leaf->details.len, &d),
                     0);
    assert_true(d->has_serial && d->has_issuerserial && d->has_key);
    assert_int_equal(d->serial, 2);
    assert_int_equal(d->issuerserial, 1);
    assert_bytes_fill(d->key, 0x4c, 32);
    assert_true(d->has_notbefore && d->has_notafter);
    assert_int_equal(d->notbefore, 1700000000u);
    assert_int_equal(d->notafter, 1800000000u);
    wa_proto_free(d);
    assert_int_equal(wa_proto_unpack(&wa__cert_chain__noise_certificate__details__descriptor,
                                     cc->intermediate->details.data, cc->intermediate->details.len,
                                     &d),
                     0);
    assert_int_equal(d->serial, 1);
    /* issuerSerial = 0 was set explicitly, so it is present */
    assert_true(d->has_issuerserial);
    assert_int_equal(d->issuerserial, 0);
    assert_bytes_fill(d->key, 0x49, 32);
    wa_proto_free(d);
    assert_repack_equal(cc, v, n);
    wa_proto_free(cc);
    free(v);
}

static void check_user_agent_baileys(const Wa__ClientPayload__UserAgent *ua)
{
    assert_non_null(ua);
    assert_true(ua->has_platform);
    assert_int_equal(ua->platform, WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB);
    assert_int_equal(ua->platform, 14);
    assert_non_null(ua->appversion);
    assert_int_equal(ua->appversion->primary, 2);
    assert_int_equal(ua->appversion->secondary, 3000);
    assert_int_equal(ua->appversion->tertiary, 1029496320u);
    assert_false(ua->appversion->has_quaternary);
    assert_string_equal(ua->mcc, "000");
    assert_string_equal(ua->mnc, "000");
    assert_string_equal(ua->osversion, "0.1");
    assert_string_equal(ua->device, "Desktop");
    assert_string_equal(ua->osbuildnumber, "0.1");
    assert_true(ua->has_releasechannel);
    assert_int_equal(ua->releasechannel, WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__RELEASE);
    assert_string_equal(ua->localelanguageiso6391, "en");
    assert_string_equal(ua->localecountryiso31661alpha2, "US");
    assert_null(ua->manufacturer);
    assert_null(ua->phoneid);
}

static void test_vector_client_payload_reg(void **state)
{
    static const uint8_t regid[] = {0x00, 0x00, 0x2b, 0xcd};
    static const uint8_t keytype[] = {0x05};
    static const uint8_t skeyid[] = {0x0a, 0x0b, 0x0c};
    /* md5("2.3000.1029496320") */
    static const uint8_t build_hash[] = {0xce, 0xd1, 0x1f, 0xa8, 0xf9, 0xfd, 0xab, 0xc0,
                                         0xce, 0xd5, 0x5b, 0x2a, 0xb8, 0xc3, 0xc3, 0xce};
    Wa__ClientPayload *cp = NULL;
    Wa__DeviceProps *dp = NULL;
    const Wa__ClientPayload__DevicePairingRegistrationData *pd;
    const Wa__DeviceProps__HistorySyncConfig *hs;
    size_t n;
    uint8_t *v = load_vector("client_payload_reg", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, v, n, &cp), 0);
    assert_false(cp->has_username);
    assert_true(cp->has_passive);
    assert_false(cp->passive);
    assert_true(cp->has_pull);
    assert_false(cp->pull);
    assert_true(cp->has_connecttype);
    assert_int_equal(cp->connecttype, WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN);
    assert_true(cp->has_connectreason);
    assert_int_equal(cp->connectreason, WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED);
    assert_null(cp->pushname);
    check_user_agent_baileys(cp->useragent);
    assert_non_null(cp->webinfo);
    assert_true(cp->webinfo->has_websubplatform);
    assert_int_equal(cp->webinfo->websubplatform,
                     WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WEB_BROWSER);
    pd = cp->devicepairingdata;
    assert_non_null(pd);
    assert_bytes(pd->eregid, regid, sizeof regid);
    assert_bytes(pd->ekeytype, keytype, sizeof keytype);
    assert_bytes_fill(pd->eident, 0x33, 32);
    assert_bytes(pd->eskeyid, skeyid, sizeof skeyid);
    assert_bytes_fill(pd->eskeyval, 0x11, 32);
    assert_bytes_fill(pd->eskeysig, 0x22, 64);
    assert_bytes(pd->buildhash, build_hash, sizeof build_hash);
    assert_true(pd->has_deviceprops);

    assert_int_equal(wa_proto_unpack(&wa__device_props__descriptor, pd->deviceprops.data,
                                     pd->deviceprops.len, &dp),
                     0);
    assert_string_equal(dp->os, "Ubuntu");
    assert_true(dp->has_platformtype);
    assert_int_equal(dp->platformtype, WA__DEVICE_PROPS__PLATFORM_TYPE__CHROME);
    assert_true(dp->has_requirefullsync);
    assert_false(dp->requirefullsync);
    assert_non_null(dp->version);
    assert_int_equal(dp->version->primary, 10);
    assert_int_equal(dp->version->secondary, 15);
    assert_int_equal(dp->version->tertiary, 7);
    hs = dp->historysyncconfig;
    assert_non_null(hs);
    assert_true(hs->has_storagequotamb);
    assert_int_equal(hs->storagequotamb, 10240);
    assert_true(hs->has_inlineinitialpayloadine2eemsg && hs->inlineinitialpayloadine2eemsg);
    assert_true(hs->has_supportcallloghistory && !hs->supportcallloghistory);
    assert_true(hs->has_supportbotuseragentchathistory && hs->supportbotuseragentchathistory);
    assert_true(hs->has_supportcagreactionsandpolls && hs->supportcagreactionsandpolls);
    assert_true(hs->has_supportbizhostedmsg && hs->supportbizhostedmsg);
    assert_true(hs->has_supportrecentsyncchunkmessagecounttuning);
    assert_true(hs->has_supporthostedgroupmsg && hs->supporthostedgroupmsg);
    assert_true(hs->has_supportfbidbotchathistory && hs->supportfbidbotchathistory);
    assert_true(hs->has_supportmessageassociation && hs->supportmessageassociation);
    assert_true(hs->has_supportgrouphistory && !hs->supportgrouphistory);
    /* undefined in Baileys: absent */
    assert_false(hs->has_recentsyncdayslimit);
    assert_false(hs->has_ondemandready);
    assert_false(hs->has_supportguestchat);
    assert_false(hs->has_fullsyncdayslimit);
    assert_repack_equal(dp, pd->deviceprops.data, pd->deviceprops.len);
    wa_proto_free(dp);

    assert_repack_equal(cp, v, n);
    wa_proto_free(cp);
    free(v);
}

static void test_vector_client_payload_login(void **state)
{
    Wa__ClientPayload *cp = NULL;
    size_t n;
    uint8_t *v = load_vector("client_payload_login", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, v, n, &cp), 0);
    assert_true(cp->has_username);
    assert_int_equal(cp->username, 15551234567ull);
    assert_true(cp->has_device);
    assert_int_equal(cp->device, 7);
    assert_true(cp->has_passive && cp->passive);
    assert_true(cp->has_pull && cp->pull);
    assert_true(cp->has_liddbmigrated);
    assert_false(cp->liddbmigrated);
    assert_string_equal(cp->pushname, "wagate");
    assert_null(cp->devicepairingdata);
    check_user_agent_baileys(cp->useragent);
    assert_repack_equal(cp, v, n);
    wa_proto_free(cp);
    free(v);
}

static void check_client_payload_full(const Wa__ClientPayload *cp)
{
    const Wa__ClientPayload__UserAgent *ua = cp->useragent;
    const Wa__ClientPayload__WebInfo *wi = cp->webinfo;

    assert_true(cp->has_username);
    assert_true(cp->username == UINT64_MAX);
    assert_true(cp->has_passive && cp->passive);
    assert_non_null(ua);
    assert_int_equal(ua->platform, WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB);
    assert_int_equal(ua->appversion->primary, 2);
    assert_int_equal(ua->appversion->tertiary, 1029496320u);
    assert_int_equal(ua->appversion->quaternary, 4);
    assert_int_equal(ua->appversion->quinary, 5);
    assert_string_equal(ua->mcc, "310");
    assert_string_equal(ua->mnc, "260");
    assert_string_equal(ua->osversion, "6.1");
    assert_string_equal(ua->manufacturer, "maker");
    assert_string_equal(ua->device, "dev");
    assert_string_equal(ua->osbuildnumber, "build-1");
    assert_string_equal(ua->phoneid, "phone-id");
    assert_int_equal(ua->releasechannel, WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__BETA);
    assert_string_equal(ua->localelanguageiso6391, "de");
    assert_string_equal(ua->localecountryiso31661alpha2, "AT");
    assert_string_equal(ua->deviceboard, "board");
    assert_string_equal(ua->deviceexpid, "exp");
    assert_true(ua->has_devicetype);
    assert_int_equal(ua->devicetype, WA__CLIENT_PAYLOAD__USER_AGENT__DEVICE_TYPE__DESKTOP);
    assert_string_equal(ua->devicemodeltype, "model");
    assert_non_null(wi);
    assert_string_equal(wi->reftoken, "ref");
    assert_string_equal(wi->version, "2.3000.1");
    assert_int_equal(wi->websubplatform, WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__DARWIN);
    assert_non_null(wi->webdpayload);
    assert_true(wi->webdpayload->has_usesparticipantinkey && wi->webdpayload->usesparticipantinkey);
    assert_true(wi->webdpayload->has_supportse2eimage && wi->webdpayload->supportse2eimage);
    assert_false(wi->webdpayload->has_supportse2evideo);
    assert_string_equal(wi->webdpayload->documenttypes, "pdf");
    assert_bytes_fill(wi->webdpayload->features, 0x7f, 3);
    assert_string_equal(cp->pushname, "Gr\xc3\xbc\xc3\x9f"
                                      "e \xe2\x9c\x93");
    assert_true(cp->has_sessionid);
    assert_int_equal(cp->sessionid, -123456);
    assert_true(cp->has_shortconnect && cp->shortconnect);
    assert_int_equal(cp->connecttype, WA__CLIENT_PAYLOAD__CONNECT_TYPE__CELLULAR_LTE);
    assert_int_equal(cp->connectreason, WA__CLIENT_PAYLOAD__CONNECT_REASON__ERROR_RECONNECT);
    assert_int_equal(cp->n_shards, 3);
    assert_int_equal(cp->shards[0], 1);
    assert_int_equal(cp->shards[1], 300);
    assert_int_equal(cp->shards[2], -5);
    assert_non_null(cp->dnssource);
    assert_int_equal(cp->dnssource->dnsmethod,
                     WA__CLIENT_PAYLOAD__DNSSOURCE__DNSRESOLUTION_METHOD__HARDCODED);
    assert_true(cp->dnssource->has_appcached && cp->dnssource->appcached);
    assert_int_equal(cp->connectattemptcount, 3);
    assert_int_equal(cp->device, 12);
    assert_int_equal(cp->product, WA__CLIENT_PAYLOAD__PRODUCT__MESSENGER);
    assert_bytes_fill(cp->fbcat, 0xfc, 4);
    assert_bytes(cp->fbuseragent, "fbua", 4);
    assert_true(cp->has_oc && cp->oc);
    assert_true(cp->has_lc);
    assert_int_equal(cp->lc, -1);
    assert_int_equal(cp->iosappextension, WA__CLIENT_PAYLOAD__IOSAPP_EXTENSION__INTENTS_EXTENSION);
    assert_true(cp->fbappid == 1234567890123ull);
    assert_bytes_fill(cp->fbdeviceid, 0xdd, 16);
    assert_true(cp->has_pull && cp->pull);
    assert_true(cp->has_paddingbytes);
    assert_bytes_fill(cp->paddingbytes, 0x00, 5);
    assert_int_equal(cp->yearclass, 2016);
    assert_int_equal(cp->memclass, 512);
    assert_non_null(cp->interopdata);
    assert_true(cp->interopdata->accountid == 99);
    assert_bytes_fill(cp->interopdata->token, 0xee, 2);
    assert_true(cp->interopdata->enablereadreceipts);
    assert_int_equal(cp->trafficanonymization, WA__CLIENT_PAYLOAD__TRAFFIC_ANONYMIZATION__STANDARD);
    assert_true(cp->has_liddbmigrated && cp->liddbmigrated);
    assert_int_equal(cp->accounttype, WA__CLIENT_PAYLOAD__ACCOUNT_TYPE__GUEST);
    assert_true(cp->has_connectionsequenceinfo);
    assert_int_equal(cp->connectionsequenceinfo, -1);
    assert_true(cp->has_paalink && cp->paalink);
    assert_int_equal(cp->preackscount, 7);
    assert_int_equal(cp->processingqueuesize, 8);
    assert_null(cp->devicepairingdata);
}

static void test_vector_client_payload_full(void **state)
{
    /* shards: tag 14, wire type 0 (unpacked, as WhatsApp's proto2 schema declares it) */
    static const uint8_t shard_unpacked[] = {0x70, 0x01, 0x70, 0xac, 0x02, 0x70};
    /* Baileys 7 (a proto3 rendering of the schema) sends them packed: tag 14, wire type 2 */
    static const uint8_t shard_packed[] = {0x72, 0x0d, 0x01, 0xac, 0x02};
    Wa__ClientPayload *cp = NULL, *cp2 = NULL;
    uint8_t *v, *again;
    size_t n, len;

    (void)state;
    v = load_vector("client_payload_full", &n);
    assert_non_null(memmem(v, n, shard_packed, sizeof shard_packed));
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, v, n, &cp), 0);
    check_client_payload_full(cp);

    /* our encoding differs from Baileys 7 only in the packing of shards: same length minus
     * the packed header plus two more tags, and it decodes to the same values */
    again = pack(cp, &len);
    assert_non_null(memmem(again, len, shard_unpacked, sizeof shard_unpacked));
    assert_null(memmem(again, len, shard_packed, sizeof shard_packed));
    assert_int_equal(len, n - 2 + 3);
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, again, len, &cp2), 0);
    check_client_payload_full(cp2);
    wa_proto_free(cp2);
    wa_free(again);
    wa_proto_free(cp);
    free(v);
}

static void test_vector_adv(void **state)
{
    Wa__ADVSignedDeviceIdentityHMAC *h = NULL;
    Wa__ADVSignedDeviceIdentity *s = NULL;
    Wa__ADVDeviceIdentity *id = NULL;
    size_t n;
    uint8_t *v = load_vector("adv_hmac", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__advsigned_device_identity_hmac__descriptor, v, n, &h), 0);
    assert_bytes_fill(h->hmac, 0x5a, 32);
    assert_true(h->has_accounttype);
    assert_int_equal(h->accounttype, WA__ADVENCRYPTION_TYPE__HOSTED);
    assert_true(h->has_details);
    assert_int_equal(wa_proto_unpack(&wa__advsigned_device_identity__descriptor, h->details.data,
                                     h->details.len, &s),
                     0);
    assert_bytes_fill(s->accountsignaturekey, 0xaa, 32);
    assert_bytes_fill(s->accountsignature, 0xbb, 64);
    assert_bytes_fill(s->devicesignature, 0xcc, 64);
    assert_int_equal(
        wa_proto_unpack(&wa__advdevice_identity__descriptor, s->details.data, s->details.len, &id),
        0);
    assert_true(id->has_rawid);
    assert_int_equal(id->rawid, 123456789);
    assert_int_equal(id->timestamp, 1700000000);
    assert_int_equal(id->keyindex, 3);
    assert_true(id->has_accounttype);
    assert_int_equal(id->accounttype, WA__ADVENCRYPTION_TYPE__E2EE);
    assert_true(id->has_devicetype);
    assert_int_equal(id->devicetype, WA__ADVENCRYPTION_TYPE__HOSTED);
    assert_repack_equal(id, s->details.data, s->details.len);
    assert_repack_equal(s, h->details.data, h->details.len);
    assert_repack_equal(h, v, n);
    wa_proto_free(id);
    wa_proto_free(s);
    wa_proto_free(h);
    free(v);
}

static void test_vector_message_ext_text(void **state)
{
    Wa__Message *m = NULL;
    const Wa__Message__ExtendedTextMessage *e;
    const Wa__ContextInfo *ci;
    const Wa__DeviceListMetadata *dl;
    size_t n;
    uint8_t *v = load_vector("message_ext_text", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, v, n, &m), 0);
    assert_null(m->conversation);
    e = m->extendedtextmessage;
    assert_non_null(e);
    assert_string_equal(e->text,
                        "hi @15551234567 and @15559876543 https://example.org \xe2\x9c\x93");
    assert_string_equal(e->matchedtext, "https://example.org");
    assert_string_equal(e->description, "An example");
    assert_string_equal(e->title, "Example Domain");
    assert_true(e->has_previewtype);
    assert_int_equal(e->previewtype, WA__MESSAGE__EXTENDED_TEXT_MESSAGE__PREVIEW_TYPE__NONE);
    ci = e->contextinfo;
    assert_non_null(ci);
    assert_string_equal(ci->stanzaid, "3EB0C0FFEE");
    assert_string_equal(ci->participant, "15550001111@s.whatsapp.net");
    assert_string_equal(ci->remotejid, "120363000000000000@g.us");
    assert_non_null(ci->quotedmessage);
    assert_string_equal(ci->quotedmessage->conversation, "quoted text");
    assert_int_equal(ci->n_mentionedjid, 2);
    assert_string_equal(ci->mentionedjid[0], "15551234567@s.whatsapp.net");
    assert_string_equal(ci->mentionedjid[1], "15559876543@s.whatsapp.net");
    assert_true(ci->has_expiration);
    assert_int_equal(ci->expiration, 604800);
    assert_int_equal(ci->forwardingscore, 2);
    assert_true(ci->has_isforwarded && ci->isforwarded);
    assert_non_null(m->messagecontextinfo);
    assert_int_equal(m->messagecontextinfo->devicelistmetadataversion, 2);
    assert_bytes_fill(m->messagecontextinfo->messagesecret, 0x42, 32);
    dl = m->messagecontextinfo->devicelistmetadata;
    assert_non_null(dl);
    assert_bytes_fill(dl->senderkeyhash, 0x01, 10);
    assert_int_equal(dl->sendertimestamp, 1700000001);
    assert_int_equal(dl->n_senderkeyindexes, 3);
    assert_int_equal(dl->senderkeyindexes[0], 0);
    assert_int_equal(dl->senderkeyindexes[1], 1);
    assert_int_equal(dl->senderkeyindexes[2], 200);
    assert_bytes_fill(dl->recipientkeyhash, 0x02, 10);
    assert_int_equal(dl->recipienttimestamp, 1700000002);
    assert_int_equal(dl->n_recipientkeyindexes, 1);
    assert_int_equal(dl->recipientkeyindexes[0], 5);
    assert_repack_equal(m, v, n);
    wa_proto_free(m);
    free(v);
}

static void test_vector_message_protocol(void **state)
{
    static const uint8_t key1[] = {0, 0, 0, 1}, key2[] = {0, 0, 0, 2};
    Wa__Message *m = NULL;
    const Wa__Message__ProtocolMessage *p;
    const Wa__Message__AppStateSyncKeyShare *ks;
    const Wa__Message__HistorySyncNotification *hn;
    size_t n;
    uint8_t *v = load_vector("message_protocol", &n);

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, v, n, &m), 0);
    p = m->protocolmessage;
    assert_non_null(p);
    assert_non_null(p->key);
    assert_string_equal(p->key->remotejid, "15551234567@s.whatsapp.net");
    assert_true(p->key->has_fromme && p->key->fromme);
    assert_string_equal(p->key->id, "ABCDEF0123");
    assert_null(p->key->participant);
    assert_true(p->has_type);
    assert_int_equal(p->type, WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__APP_STATE_SYNC_KEY_SHARE);
    assert_int_equal(p->type, 6);
    assert_true(p->has_timestampms);
    assert_true(p->timestampms == 1700000000123ll);
    ks = p->appstatesynckeyshare;
    assert_non_null(ks);
    assert_int_equal(ks->n_keys, 2);
    assert_bytes(ks->keys[0]->keyid->keyid, key1, 4);
    assert_bytes_fill(ks->keys[0]->keydata->keydata, 0x99, 32);
    assert_int_equal(ks->keys[0]->keydata->fingerprint->rawid, 77);
    assert_int_equal(ks->keys[0]->keydata->fingerprint->currentindex, 1);
    assert_int_equal(ks->keys[0]->keydata->fingerprint->n_deviceindexes, 3);
    assert_int_equal(ks->keys[0]->keydata->fingerprint->deviceindexes[2], 2);
    assert_int_equal(ks->keys[0]->keydata->timestamp, 1700000003);
    assert_bytes(ks->keys[1]->keyid->keyid, key2, 4);
    assert_null(ks->keys[1]->keydata);
    hn = p->historysyncnotification;
    assert_non_null(hn);
    assert_bytes_fill(hn->filesha256, 0x01, 32);
    assert_int_equal(hn->filelength, 123456);
    assert_bytes_fill(hn->mediakey, 0x02, 32);
    assert_bytes_fill(hn->fileencsha256, 0x03, 32);
    assert_string_equal(hn->directpath, "/v/t62/abc");
    assert_int_equal(hn->synctype, WA__MESSAGE__HISTORY_SYNC_TYPE__RECENT);
    assert_int_equal(hn->chunkorder, 1);
    assert_int_equal(hn->progress, 50);
    assert_repack_equal(m, v, n);
    wa_proto_free(m);
    free(v);
}

/* ---- round trips ---- */

static void test_roundtrip_handshake(void **state)
{
    Wa__HandshakeMessage hm = WA__HANDSHAKE_MESSAGE__INIT, *out = NULL;
    Wa__HandshakeMessage__ClientHello ch = WA__HANDSHAKE_MESSAGE__CLIENT_HELLO__INIT;
    Wa__HandshakeMessage__ServerHello sh = WA__HANDSHAKE_MESSAGE__SERVER_HELLO__INIT;
    Wa__HandshakeMessage__ClientFinish cf = WA__HANDSHAKE_MESSAGE__CLIENT_FINISH__INIT;
    uint8_t eph[32], stat[48], payload[100];
    uint8_t want[2 + 2 + 32];
    uint8_t *bytes;
    size_t len;

    (void)state;
    memset(eph, 0xe1, sizeof eph);
    memset(stat, 0x57, sizeof stat);
    memset(payload, 0x9a, sizeof payload);

    /* ClientHello{ephemeral}: 12 22 0a 20 <32 bytes> (what a client sends first) */
    ch.has_ephemeral = 1;
    ch.ephemeral.data = eph;
    ch.ephemeral.len = sizeof eph;
    hm.clienthello = &ch;
    want[0] = 0x12;
    want[1] = 0x22;
    want[2] = 0x0a;
    want[3] = 0x20;
    memcpy(want + 4, eph, 32);
    bytes = pack(&hm, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(bytes, want, sizeof want);
    assert_int_equal(wa_proto_unpack(&wa__handshake_message__descriptor, bytes, len, &out), 0);
    assert_non_null(out->clienthello);
    assert_null(out->serverhello);
    assert_bytes(out->clienthello->ephemeral, eph, 32);
    assert_false(out->clienthello->has_static_);
    wa_proto_free(out);
    wa_free(bytes);

    /* ServerHello{ephemeral, static, payload} and ClientFinish{static, payload} */
    hm.clienthello = NULL;
    sh.has_ephemeral = sh.has_static_ = sh.has_payload = 1;
    sh.ephemeral.data = eph;
    sh.ephemeral.len = sizeof eph;
    sh.static_.data = stat;
    sh.static_.len = sizeof stat;
    sh.payload.data = payload;
    sh.payload.len = sizeof payload;
    cf.has_static_ = cf.has_payload = 1;
    cf.static_ = sh.static_;
    cf.payload = sh.payload;
    hm.serverhello = &sh;
    hm.clientfinish = &cf;
    bytes = pack(&hm, &len);
    assert_int_equal(bytes[0], 0x1a); /* field 3, length-delimited */
    assert_int_equal(wa_proto_unpack(&wa__handshake_message__descriptor, bytes, len, &out), 0);
    assert_null(out->clienthello);
    assert_bytes(out->serverhello->ephemeral, eph, 32);
    assert_bytes(out->serverhello->static_, stat, sizeof stat);
    assert_bytes(out->serverhello->payload, payload, sizeof payload);
    assert_bytes(out->clientfinish->static_, stat, sizeof stat);
    assert_bytes(out->clientfinish->payload, payload, sizeof payload);
    assert_repack_equal(out, bytes, len);
    wa_proto_free(out);
    wa_free(bytes);
}

static void test_roundtrip_device_props_and_adv(void **state)
{
    Wa__DeviceProps dp = WA__DEVICE_PROPS__INIT, *dp2 = NULL;
    Wa__DeviceProps__AppVersion ver = WA__DEVICE_PROPS__APP_VERSION__INIT;
    Wa__DeviceProps__HistorySyncConfig hs = WA__DEVICE_PROPS__HISTORY_SYNC_CONFIG__INIT;
    Wa__ADVKeyIndexList kl = WA__ADVKEY_INDEX_LIST__INIT, *kl2 = NULL;
    Wa__ADVSignedKeyIndexList skl = WA__ADVSIGNED_KEY_INDEX_LIST__INIT, *skl2 = NULL;
    uint32_t idx[] = {0, 3, 4, 1000};
    uint8_t sig[64];
    uint8_t *bytes;
    size_t len;

    (void)state;
    dp.os = "wagate";
    ver.has_primary = ver.has_secondary = ver.has_tertiary = 1;
    ver.primary = 0;
    ver.secondary = 1;
    ver.tertiary = 2;
    dp.version = &ver;
    dp.has_platformtype = 1;
    dp.platformtype = WA__DEVICE_PROPS__PLATFORM_TYPE__DESKTOP;
    dp.has_requirefullsync = 1;
    dp.requirefullsync = 1;
    hs.has_fullsyncdayslimit = hs.has_thumbnailsyncdayslimit = hs.has_completeondemandready = 1;
    hs.fullsyncdayslimit = 365;
    hs.thumbnailsyncdayslimit = 30;
    hs.completeondemandready = 1;
    dp.historysyncconfig = &hs;
    bytes = pack(&dp, &len);
    assert_int_equal(wa_proto_unpack(&wa__device_props__descriptor, bytes, len, &dp2), 0);
    assert_string_equal(dp2->os, "wagate");
    assert_true(dp2->version->has_primary);
    assert_int_equal(dp2->version->primary, 0);
    assert_int_equal(dp2->version->tertiary, 2);
    assert_int_equal(dp2->platformtype, WA__DEVICE_PROPS__PLATFORM_TYPE__DESKTOP);
    assert_true(dp2->requirefullsync);
    assert_int_equal(dp2->historysyncconfig->fullsyncdayslimit, 365);
    assert_int_equal(dp2->historysyncconfig->thumbnailsyncdayslimit, 30);
    assert_true(dp2->historysyncconfig->completeondemandready);
    assert_false(dp2->historysyncconfig->has_storagequotamb);
    wa_proto_free(dp2);
    wa_free(bytes);

    kl.has_rawid = kl.has_timestamp = kl.has_currentindex = kl.has_accounttype = 1;
    kl.rawid = 42;
    kl.timestamp = 1700000000;
    kl.currentindex = 4;
    kl.n_validindexes = WA_ARRAY_SIZE(idx);
    kl.validindexes = idx;
    kl.accounttype = WA__ADVENCRYPTION_TYPE__E2EE;
    bytes = pack(&kl, &len);
    /* validIndexes is packed: tag (4 << 3 | 2) = 0x22, length 5 (0, 3, 4, e8 07) */
    {
        static const uint8_t packed[] = {0x22, 0x05, 0x00, 0x03, 0x04, 0xe8, 0x07};
        assert_non_null(memmem(bytes, len, packed, sizeof packed));
    }
    assert_int_equal(wa_proto_unpack(&wa__advkey_index_list__descriptor, bytes, len, &kl2), 0);
    assert_int_equal(kl2->rawid, 42);
    assert_int_equal(kl2->currentindex, 4);
    assert_int_equal(kl2->n_validindexes, 4);
    assert_memory_equal(kl2->validindexes, idx, sizeof idx);
    assert_true(kl2->has_accounttype);
    skl.has_details = skl.has_accountsignature = skl.has_accountsignaturekey = 1;
    skl.details.data = bytes;
    skl.details.len = len;
    memset(sig, 0x3c, sizeof sig);
    skl.accountsignature.data = sig;
    skl.accountsignature.len = sizeof sig;
    skl.accountsignaturekey = skl.accountsignature;
    skl.accountsignaturekey.len = 32;
    {
        size_t slen;
        uint8_t *sbytes = pack(&skl, &slen);

        assert_int_equal(
            wa_proto_unpack(&wa__advsigned_key_index_list__descriptor, sbytes, slen, &skl2), 0);
        assert_bytes(skl2->details, bytes, len);
        assert_bytes_fill(skl2->accountsignature, 0x3c, 64);
        assert_bytes_fill(skl2->accountsignaturekey, 0x3c, 32);
        wa_proto_free(skl2);
        wa_free(sbytes);
    }
    wa_proto_free(kl2);
    wa_free(bytes);
}

/* Build, pack, unpack and re-pack a Message per kind the client handles. */
static void test_roundtrip_message_kinds(void **state)
{
    Wa__Message m = WA__MESSAGE__INIT, inner = WA__MESSAGE__INIT, *out = NULL;
    Wa__Message__ImageMessage img = WA__MESSAGE__IMAGE_MESSAGE__INIT;
    Wa__Message__ContactMessage c1 = WA__MESSAGE__CONTACT_MESSAGE__INIT;
    Wa__Message__ContactMessage c2 = WA__MESSAGE__CONTACT_MESSAGE__INIT;
    Wa__Message__ContactMessage *contacts[2] = {&c1, &c2};
    Wa__Message__ContactsArrayMessage ca = WA__MESSAGE__CONTACTS_ARRAY_MESSAGE__INIT;
    Wa__Message__LocationMessage loc = WA__MESSAGE__LOCATION_MESSAGE__INIT;
    Wa__Message__DocumentMessage doc = WA__MESSAGE__DOCUMENT_MESSAGE__INIT;
    Wa__Message__AudioMessage au = WA__MESSAGE__AUDIO_MESSAGE__INIT;
    Wa__Message__VideoMessage vid = WA__MESSAGE__VIDEO_MESSAGE__INIT;
    Wa__Message__StickerMessage st = WA__MESSAGE__STICKER_MESSAGE__INIT;
    Wa__Message__ReactionMessage re = WA__MESSAGE__REACTION_MESSAGE__INIT;
    Wa__MessageKey key = WA__MESSAGE_KEY__INIT;
    Wa__Message__SenderKeyDistributionMessage skd =
        WA__MESSAGE__SENDER_KEY_DISTRIBUTION_MESSAGE__INIT;
    Wa__Message__DeviceSentMessage ds = WA__MESSAGE__DEVICE_SENT_MESSAGE__INIT;
    Wa__Message__FutureProofMessage eph = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    Wa__DisappearingMode dm = WA__DISAPPEARING_MODE__INIT;
    Wa__GroupMention gm = WA__GROUP_MENTION__INIT, *gms[1] = {&gm};
    char *mentions[1] = {"1555@s.whatsapp.net"};
    uint8_t hash[32], skdm[40];
    uint8_t *bytes;
    size_t len;

    (void)state;
    memset(hash, 0x01, sizeof hash);
    memset(skdm, 0x33, sizeof skdm);
    inner.conversation = "inner text";

    img.url = "https://mmg.whatsapp.net/x";
    img.mimetype = "image/jpeg";
    img.caption = "cap";
    img.has_filesha256 = img.has_mediakey = img.has_fileencsha256 = img.has_jpegthumbnail = 1;
    img.filesha256.data = hash;
    img.filesha256.len = sizeof hash;
    img.mediakey = img.filesha256;
    img.fileencsha256 = img.filesha256;
    img.jpegthumbnail = img.filesha256;
    img.has_filelength = img.has_mediakeytimestamp = 1;
    img.filelength = 5000000000ull;
    img.mediakeytimestamp = -1;
    img.directpath = "/v/t62.7118-24/abc";
    ci.stanzaid = "ID1";
    ci.n_mentionedjid = 1;
    ci.mentionedjid = mentions;
    ci.n_groupmentions = 1;
    ci.groupmentions = gms;
    gm.groupjid = "1203@g.us";
    gm.groupsubject = "subj";
    dm.has_initiator = 1;
    dm.initiator = WA__DISAPPEARING_MODE__INITIATOR__INITIATED_BY_OTHER;
    ci.disappearingmode = &dm;
    ci.quotedmessage = &inner;
    img.contextinfo = &ci;
    m.imagemessage = &img;

    c1.displayname = "Alice";
    c1.vcard = "BEGIN:VCARD\nEND:VCARD";
    c2.displayname = "Bob";
    ca.displayname = "2 contacts";
    ca.n_contacts = 2;
    ca.contacts = contacts;
    m.contactsarraymessage = &ca;

    loc.has_degreeslatitude = loc.has_degreeslongitude = loc.has_speedinmps = 1;
    loc.degreeslatitude = 48.208176;
    loc.degreeslongitude = -16.373819;
    loc.speedinmps = 1.5f;
    loc.name = "Wien";
    m.locationmessage = &loc;

    doc.filename = "a.pdf";
    doc.has_pagecount = 1;
    doc.pagecount = 3;
    m.documentmessage = &doc;
    au.has_ptt = au.has_seconds = 1;
    au.ptt = 1;
    au.seconds = 9;
    m.audiomessage = &au;
    vid.has_gifplayback = 1;
    vid.gifplayback = 1;
    vid.caption = "vid";
    m.videomessage = &vid;
    st.has_isanimated = 1;
    st.isanimated = 1;
    m.stickermessage = &st;

    key.remotejid = "1555@s.whatsapp.net";
    key.id = "3EB0";
    key.has_fromme = 1;
    key.fromme = 0;
    re.key = &key;
    re.text = "\xf0\x9f\x91\x8d";
    re.has_sendertimestampms = 1;
    re.sendertimestampms = 1700000000000ll;
    m.reactionmessage = &re;

    skd.groupid = "1203@g.us";
    skd.has_axolotlsenderkeydistributionmessage = 1;
    skd.axolotlsenderkeydistributionmessage.data = skdm;
    skd.axolotlsenderkeydistributionmessage.len = sizeof skdm;
    m.senderkeydistributionmessage = &skd;

    ds.destinationjid = "1666@s.whatsapp.net";
    ds.message = &inner;
    ds.phash = "2:abc";
    m.devicesentmessage = &ds;
    eph.message = &inner;
    m.ephemeralmessage = &eph;
    m.viewoncemessagev2 = &eph;
    m.documentwithcaptionmessage = &eph;

    pm.key = &key;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT;
    pm.editedmessage = &inner;
    pm.has_ephemeralexpiration = 1;
    pm.ephemeralexpiration = 86400;
    m.protocolmessage = &pm;

    bytes = pack(&m, &len);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, bytes, len, &out), 0);
    assert_string_equal(out->imagemessage->url, "https://mmg.whatsapp.net/x");
    assert_true(out->imagemessage->filelength == 5000000000ull);
    assert_true(out->imagemessage->mediakeytimestamp == -1);
    assert_bytes_fill(out->imagemessage->mediakey, 0x01, 32);
    assert_string_equal(out->imagemessage->contextinfo->quotedmessage->conversation, "inner text");
    assert_string_equal(out->imagemessage->contextinfo->mentionedjid[0], "1555@s.whatsapp.net");
    assert_string_equal(out->imagemessage->contextinfo->groupmentions[0]->groupsubject, "subj");
    assert_int_equal(out->imagemessage->contextinfo->disappearingmode->initiator,
                     WA__DISAPPEARING_MODE__INITIATOR__INITIATED_BY_OTHER);
    assert_int_equal(out->contactsarraymessage->n_contacts, 2);
    assert_string_equal(out->contactsarraymessage->contacts[1]->displayname, "Bob");
    assert_null(out->contactsarraymessage->contacts[1]->vcard);
    assert_true(out->locationmessage->degreeslatitude == 48.208176);
    assert_true(out->locationmessage->degreeslongitude == -16.373819);
    assert_true(out->locationmessage->speedinmps == 1.5f);
    assert_int_equal(out->documentmessage->pagecount, 3);
    assert_true(out->audiomessage->ptt);
    assert_true(out->videomessage->gifplayback);
    assert_true(out->stickermessage->isanimated);
    assert_string_equal(out->reactionmessage->text, "\xf0\x9f\x91\x8d");
    assert_true(out->reactionmessage->key->has_fromme);
    assert_false(out->reactionmessage->key->fromme);
    assert_bytes_fill(out->senderkeydistributionmessage->axolotlsenderkeydistributionmessage, 0x33,
                      40);
    assert_string_equal(out->devicesentmessage->message->conversation, "inner text");
    assert_string_equal(out->ephemeralmessage->message->conversation, "inner text");
    assert_string_equal(out->viewoncemessagev2->message->conversation, "inner text");
    assert_string_equal(out->documentwithcaptionmessage->message->conversation, "inner text");
    assert_null(out->viewoncemessage);
    assert_int_equal(out->protocolmessage->type, WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT);
    assert_int_equal(out->protocolmessage->type, 14);
    assert_string_equal(out->protocolmessage->editedmessage->conversation, "inner text");
    assert_repack_equal(out, bytes, len);
    wa_proto_free(out);
    wa_free(bytes);
}

/* A field we do not declare (e.g. pollCreationMessage = 49) is kept and re-emitted. */
static void test_unknown_fields_kept(void **state)
{
    /* conversation "hi" (0a 02 68 69), field 49 bytes {0a 01 71} (8a 03 03 0a 01 71),
     * field 1000 varint 5 (c0 3e 05) */
    static const uint8_t in[] = {0x0a, 0x02, 0x68, 0x69, 0x8a, 0x03, 0x03,
                                 0x0a, 0x01, 0x71, 0xc0, 0x3e, 0x05};
    Wa__Message *m = NULL;

    (void)state;
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, in, sizeof in, &m), 0);
    assert_string_equal(m->conversation, "hi");
    assert_int_equal(m->base.n_unknown_fields, 2);
    assert_repack_equal(m, in, sizeof in);
    wa_proto_free(m);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    static const struct {
        const char *what;
        const uint8_t *data;
        size_t len;
    } cases[] = {
        /* HandshakeMessage.clientHello (field 2) sent as a varint */
        {"wrong wire type (message as varint)", (const uint8_t *)"\x10\x01", 2},
        /* field 2 as fixed64 / fixed32 */
        {"wrong wire type (message as fixed64)",
         (const uint8_t *)"\x11\x00\x00\x00\x00\x00\x00\x00\x00", 9},
        {"wrong wire type (message as fixed32)", (const uint8_t *)"\x15\x00\x00\x00\x00", 5},
        /* length prefix 2^32 - 1 with 3 bytes behind it */
        {"huge length", (const uint8_t *)"\x12\xff\xff\xff\xff\x0f\x0a\x00\x00", 9},
        /* length prefix 2^63 */
        {"huge 64-bit length", (const uint8_t *)"\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11},
        /* length 5, 2 bytes present */
        {"truncated length-delimited", (const uint8_t *)"\x12\x05\x0a\x00", 4},
        /* inner message truncated: clientHello{ephemeral len 32 but 1 byte} */
        {"truncated inner", (const uint8_t *)"\x12\x03\x0a\x20\x00", 5},
        /* varint that never ends */
        {"endless varint", (const uint8_t *)"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12},
        {"tag without value", (const uint8_t *)"\x08", 1},
        {"field number 0", (const uint8_t *)"\x00\x00", 2},
        {"wire type 7", (const uint8_t *)"\x0f\x00", 2},
        {"group start (wire type 3)", (const uint8_t *)"\x0b\x0c", 2},
        {"truncated fixed32 (unknown field)", (const uint8_t *)"\x7d\x00\x00", 3},
        {"truncated fixed64 (unknown field)", (const uint8_t *)"\x79\x00\x00\x00\x00", 5},
    };
    Wa__HandshakeMessage *hm;
    Wa__Message *m;
    Wa__ClientPayload *cp;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_SIZE(cases); i++) {
        hm = (Wa__HandshakeMessage *)&hm; /* sentinel: must stay untouched */
        if (wa_proto_unpack(&wa__handshake_message__descriptor, cases[i].data, cases[i].len, &hm) !=
            WA_EPROTOBUF)
            fail_msg("accepted: %s", cases[i].what);
        assert_ptr_equal(hm, (Wa__HandshakeMessage *)&hm);
        /* the raw generated call returns NULL as well */
        assert_null(wa__handshake_message__unpack(NULL, cases[i].len, cases[i].data));
    }

    /* field number 0 in a two-byte tag: protobuf-c alone accepts it (as an unknown field it
     * would re-emit as the invalid tag 00), wa_proto_unpack does not */
    {
        static const uint8_t tag0[] = {0x80, 0x00, 0x00};
        Wa__ClientPayload *raw = wa__client_payload__unpack(NULL, sizeof tag0, tag0);

        if (raw) /* documents the protobuf-c quirk; fine if a later version rejects it */
            wa__client_payload__free_unpacked(raw, NULL);
        assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, tag0, sizeof tag0, &cp),
                         WA_EPROTOBUF);
        assert_int_equal(wa_proto_check(&wa__client_payload__descriptor, tag0, sizeof tag0),
                         WA_EPROTOBUF);
    }
    /* field number 2^29 is past the maximum */
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor,
                                     (const uint8_t *)"\x80\x80\x80\x80\x10\x00", 6, &m),
                     WA_EPROTOBUF);

    /* a string field given as varint; a uint64 field given as bytes */
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, (const uint8_t *)"\x08\x01", 2, &m),
                     WA_EPROTOBUF);
    assert_int_equal(
        wa_proto_unpack(&wa__client_payload__descriptor, (const uint8_t *)"\x0a\x01\x00", 3, &cp),
        WA_EPROTOBUF);
    /* sfixed32 sessionId (field 9) as varint */
    assert_int_equal(
        wa_proto_unpack(&wa__client_payload__descriptor, (const uint8_t *)"\x48\x01", 2, &cp),
        WA_EPROTOBUF);

    /* arguments */
    assert_int_equal(wa_proto_unpack(NULL, (const uint8_t *)"", 0, &m), WA_EINVAL);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, NULL, 1, &m), WA_EINVAL);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, (const uint8_t *)"", 0, NULL),
                     WA_EINVAL);
    /* too large: rejected before anything is read */
    assert_int_equal(
        wa_proto_unpack(&wa__message__descriptor, (const uint8_t *)"", WA_PROTO_MAX_INPUT + 1, &m),
        WA_ELIMIT);
    /* empty input is a valid empty message */
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, NULL, 0, &m), 0);
    assert_null(m->conversation);
    wa_proto_free(m);
    wa_proto_free(NULL);
}

/* Message{ephemeralMessage{message{...}}} nested `levels` times around conversation "x":
 * 2 message levels per wrapper. Built inside out; caller frees *buf. */
static uint8_t *nest_ephemeral(size_t levels, size_t *len_out, size_t *start_out)
{
    size_t cap = levels * 16 + 16, start = cap, len = 3;
    uint8_t *buf = malloc(cap);
    uint8_t hdr[16];

    assert_non_null(buf);
    buf[--start] = 'x';
    buf[--start] = 1;
    buf[--start] = 0x0a; /* conversation = 1 */
    for (size_t i = 0; i < levels; i++) {
        for (int k = 0; k < 2; k++) {
            size_t h = 0, v = len;

            if (k == 0) {
                hdr[h++] = 0x0a; /* FutureProofMessage.message = 1 */
            } else {
                hdr[h++] = 0xc2; /* Message.ephemeralMessage = 40 */
                hdr[h++] = 0x02;
            }
            do {
                hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
            } while (v);
            start -= h;
            memcpy(buf + start, hdr, h);
            len += h;
        }
    }
    *len_out = len;
    *start_out = start;
    return buf;
}

static void test_depth_limit(void **state)
{
    size_t len, start;
    uint8_t *buf;
    Wa__Message *m = NULL;

    (void)state;
    /* 16 wrappers = 32 levels below the top: accepted, and decodes all the way down */
    buf = nest_ephemeral(WA_PROTO_MAX_DEPTH / 2, &len, &start);
    assert_int_equal(wa_proto_check(&wa__message__descriptor, buf + start, len), 0);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, buf + start, len, &m), 0);
    {
        const Wa__Message *cur = m;

        for (int i = 0; i < WA_PROTO_MAX_DEPTH / 2; i++)
            cur = cur->ephemeralmessage->message;
        assert_string_equal(cur->conversation, "x");
    }
    wa_proto_free(m);
    free(buf);

    /* one wrapper more: rejected */
    buf = nest_ephemeral(WA_PROTO_MAX_DEPTH / 2 + 1, &len, &start);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, buf + start, len, &m), WA_EDEPTH);
    free(buf);

    /* 200000 levels (about 2 MB), which overflows the stack inside protobuf-c's own unpack:
     * rejected up front */
    buf = nest_ephemeral(100000, &len, &start);
    assert_int_equal(wa_proto_check(&wa__message__descriptor, buf + start, len), WA_EDEPTH);
    assert_int_equal(wa_proto_unpack(&wa__message__descriptor, buf + start, len, &m), WA_EDEPTH);
    free(buf);

    /* undeclared fields are not descended into (protobuf-c keeps them as bytes) */
    assert_int_equal(wa_proto_check(&wa__handshake_message__descriptor,
                                    (const uint8_t *)"\x2a\x03\x2a\x01\x00", 5),
                     0);
    /* a length-delimited payload of a declared message field is checked as a message */
    assert_int_equal(
        wa_proto_check(&wa__handshake_message__descriptor, (const uint8_t *)"\x12\x02\x0a\x05", 4),
        WA_EPROTOBUF);
    assert_int_equal(wa_proto_check(NULL, (const uint8_t *)"", 0), WA_EINVAL);
    assert_int_equal(wa_proto_check(&wa__message__descriptor, NULL, 1), WA_EINVAL);
}

/* Every prefix of every vector decodes or fails cleanly; a cut inside the last field fails. */
static void test_truncations(void **state)
{
    static const struct {
        const char *name;
        const ProtobufCMessageDescriptor *desc;
    } vecs[] = {
        {"cert_chain", &wa__cert_chain__descriptor},
        {"client_payload_reg", &wa__client_payload__descriptor},
        {"client_payload_login", &wa__client_payload__descriptor},
        {"client_payload_full", &wa__client_payload__descriptor},
        {"adv_hmac", &wa__advsigned_device_identity_hmac__descriptor},
        {"message_ext_text", &wa__message__descriptor},
        {"message_protocol", &wa__message__descriptor},
    };

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_SIZE(vecs); i++) {
        size_t n, ok = 0, bad = 0;
        uint8_t *v = load_vector(vecs[i].name, &n);

        for (size_t cut = 0; cut <= n; cut++) {
            /* an exact-size heap copy, so ASan sees any read past the end */
            uint8_t *copy = malloc(cut ? cut : 1);
            ProtobufCMessage *msg = NULL;
            int rc;

            assert_non_null(copy);
            memcpy(copy, v, cut);
            rc = wa_proto_unpack(vecs[i].desc, copy, cut, &msg);
            if (rc == 0) {
                ok++;
                wa_proto_free(msg);
            } else {
                assert_int_equal(rc, WA_EPROTOBUF);
                bad++;
            }
            free(copy);
            if (cut == n)
                assert_int_equal(rc, 0);
            if (cut == n - 1)
                assert_int_equal(rc, WA_EPROTOBUF);
        }
        assert_true(bad > n / 2);
        free(v);
    }
}

/* Every allocation failure during unpack reports an error and leaks nothing (ASan). */
static void test_alloc_failure(void **state)
{
    size_t n;
    uint8_t *v = load_vector("message_protocol", &n);
    Wa__Message *m = NULL;
    long i;
    int rc = -1;

    (void)state;
    for (i = 0; i < 1000 && rc != 0; i++) {
        wa__alloc_fail_after(i);
        rc = wa_proto_unpack(&wa__message__descriptor, v, n, &m);
        wa__alloc_fail_after(-1);
        if (rc)
            assert_int_equal(rc, WA_EPROTOBUF);
    }
    assert_int_equal(rc, 0);
    assert_true(i > 5);
    assert_non_null(m->protocolmessage);
    wa_proto_free(m);
    free(v);
}

static void test_pack_limits(void **state)
{
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    Wa__Message__ExtendedTextMessage et = WA__MESSAGE__EXTENDED_TEXT_MESSAGE__INIT;
    wa_buf b;

    (void)state;
    m.conversation = "0123456789"; /* 0a 0a + 10 bytes */
    wa_buf_init(&b, 11);
    assert_int_equal(wa_buf_append(&b, "x", 1), 0);
    assert_int_equal(wa_proto_pack(&m, &b), WA_ELIMIT);
    assert_int_equal(b.len, 1);
    wa_buf_cleanup(&b);
    wa_buf_init(&b, 13);
    assert_int_equal(wa_buf_append(&b, "x", 1), 0);
    assert_int_equal(wa_proto_pack(&m, &b), 0);
    assert_int_equal(b.len, 13);
    assert_memory_equal(b.data,
                        "x\x0a\x0a"
                        "0123456789",
                        13);
    wa_buf_cleanup(&b);

    /* invalid: a repeated field with a count and no array */
    wa_buf_init(&b, 1024);
    ci.n_mentionedjid = 1;
    et.text = "t";
    et.contextinfo = &ci;
    m.extendedtextmessage = &et;
    assert_int_equal(wa_proto_pack(&m, &b), WA_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(wa_proto_pack(NULL, &b), WA_EINVAL);
    wa_buf_cleanup(&b);

    /* allocation failure while growing the buffer */
    m.extendedtextmessage = NULL;
    wa_buf_init(&b, 1024);
    wa__alloc_fail_after(0);
    assert_int_equal(wa_proto_pack(&m, &b), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(b.len, 0);
    wa_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_cert_chain),
        cmocka_unit_test(test_vector_client_payload_reg),
        cmocka_unit_test(test_vector_client_payload_login),
        cmocka_unit_test(test_vector_client_payload_full),
        cmocka_unit_test(test_vector_adv),
        cmocka_unit_test(test_vector_message_ext_text),
        cmocka_unit_test(test_vector_message_protocol),
        cmocka_unit_test(test_roundtrip_handshake),
        cmocka_unit_test(test_roundtrip_device_props_and_adv),
        cmocka_unit_test(test_roundtrip_message_kinds),
        cmocka_unit_test(test_unknown_fields_kept),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_pack_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
