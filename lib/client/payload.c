/*
 * payload.c - the ClientPayload sent inside the Noise clientFinish (PROTOCOL.md §3), built as
 * Baileys 7.0.0-rc14 builds it (lib/Utils/validate-connection.js) with its default browser
 * ["Mac OS", "Chrome", "14.4.1"], so that the server sees a WhatsApp Web client:
 *
 *   common:        connectType WIFI_UNKNOWN, connectReason USER_ACTIVATED, userAgent {WEB,
 *                  appVersion, mcc "000", mnc "000", osVersion "0.1", device "Desktop",
 *                  osBuildNumber "0.1", RELEASE, "en", "US"}, webInfo {WEB_BROWSER}, pushName
 *   registration:  passive false, pull false, devicePairingData {eRegid (4 B BE), eKeytype 05,
 *                  eIdent, eSkeyId (3 B BE), eSkeyVal, eSkeySig, buildHash = MD5("a.b.c"),
 *                  deviceProps = DeviceProps{os, version 10.15.7, CHROME, requireFullSync,
 *                  historySyncConfig}}
 *   login:         passive true, pull true, username (phone number), device, lidDbMigrated
 *                  false. (Baileys 6.17 sent passive false; Baileys 7 and whatsmeow send true
 *                  and leave passive mode with <iq xmlns='passive'><active/></iq>.)
 *
 * One deliberate difference: requireFullSync is false (Baileys: true), because a gateway does
 * not process the full history and the phone would upload it for nothing.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "client/client_int.h"
#include "core/util.h"
#include "jid/jid.h"
#include "proto/client_payload.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

int wa__parse_version(const char *s, uint32_t v[3])
{
    uint32_t out[3];
    const char *p = s;
    int i;

    if (!s)
        return WA_EINVAL;
    for (i = 0; i < 3; i++) {
        char *end;
        unsigned long x;
        if (*p < '0' || *p > '9')
            return WA_EINVAL;
        errno = 0;
        x = strtoul(p, &end, 10);
        if (errno || x > UINT32_MAX || (i < 2 && *end != '.') || (i == 2 && *end != '\0'))
            return WA_EINVAL;
        out[i] = (uint32_t)x;
        p = end + 1;
    }
    memcpy(v, out, sizeof out);
    return 0;
}

static int md5_version(const uint32_t v[3], uint8_t out[16])
{
    char s[40];
    unsigned int n = 0;
    int len = snprintf(s, sizeof s, "%u.%u.%u", v[0], v[1], v[2]);

    if (len <= 0 || EVP_Digest(s, (size_t)len, out, &n, EVP_md5(), NULL) != 1 || n != 16)
        return WA_ECRYPTO;
    return 0;
}

static int build_device_props(const wa__payload_opts *o, wa_buf *out)
{
    Wa__DeviceProps dp = WA__DEVICE_PROPS__INIT;
    Wa__DeviceProps__AppVersion ver = WA__DEVICE_PROPS__APP_VERSION__INIT;
    Wa__DeviceProps__HistorySyncConfig h = WA__DEVICE_PROPS__HISTORY_SYNC_CONFIG__INIT;

    dp.os = (char *)(o->os_name ? o->os_name : "Mac OS");
    ver.has_primary = ver.has_secondary = ver.has_tertiary = 1;
    ver.primary = 10;
    ver.secondary = 15;
    ver.tertiary = 7;
    dp.version = &ver;
    dp.has_platformtype = 1;
    dp.platformtype = WA__DEVICE_PROPS__PLATFORM_TYPE__CHROME;
    dp.has_requirefullsync = 1;
    dp.requirefullsync = 0;
    h.has_storagequotamb = 1;
    h.storagequotamb = 10240;
    h.has_inlineinitialpayloadine2eemsg = 1;
    h.inlineinitialpayloadine2eemsg = 1;
    h.has_supportcallloghistory = 1;
    h.supportcallloghistory = 0;
    h.has_supportbotuseragentchathistory = 1;
    h.supportbotuseragentchathistory = 1;
    h.has_supportcagreactionsandpolls = 1;
    h.supportcagreactionsandpolls = 1;
    h.has_supportbizhostedmsg = 1;
    h.supportbizhostedmsg = 1;
    h.has_supportrecentsyncchunkmessagecounttuning = 1;
    h.supportrecentsyncchunkmessagecounttuning = 1;
    h.has_supporthostedgroupmsg = 1;
    h.supporthostedgroupmsg = 1;
    h.has_supportfbidbotchathistory = 1;
    h.supportfbidbotchathistory = 1;
    h.has_supportmessageassociation = 1;
    h.supportmessageassociation = 1;
    h.has_supportgrouphistory = 1;
    h.supportgrouphistory = 0;
    dp.historysyncconfig = &h;
    return wa_proto_pack(&dp, out);
}

int wa__payload_build(const wa_store_creds *creds, const wa__payload_opts *o, wa_buf *out)
{
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
    Wa__ClientPayload__UserAgent__AppVersion av = WA__CLIENT_PAYLOAD__USER_AGENT__APP_VERSION__INIT;
    Wa__ClientPayload__WebInfo wi = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;
    Wa__ClientPayload__DevicePairingRegistrationData reg =
        WA__CLIENT_PAYLOAD__DEVICE_PAIRING_REGISTRATION_DATA__INIT;
    uint8_t regid[4], skid[3], keytype = 0x05, hash[16];
    wa_buf props;
    int rc;

    wa_buf_init(&props, 1024);
    cp.has_connecttype = 1;
    cp.connecttype = WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN;
    cp.has_connectreason = 1;
    cp.connectreason = WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED;
    av.has_primary = av.has_secondary = av.has_tertiary = 1;
    av.primary = o->version[0];
    av.secondary = o->version[1];
    av.tertiary = o->version[2];
    ua.has_platform = 1;
    ua.platform = WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB;
    ua.appversion = &av;
    ua.has_releasechannel = 1;
    ua.releasechannel = WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__RELEASE;
    ua.osversion = "0.1";
    ua.device = "Desktop";
    ua.osbuildnumber = "0.1";
    ua.localelanguageiso6391 = "en";
    ua.mnc = "000";
    ua.mcc = "000";
    ua.localecountryiso31661alpha2 = "US";
    cp.useragent = &ua;
    wi.has_websubplatform = 1;
    wi.websubplatform = WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WEB_BROWSER;
    cp.webinfo = &wi;
    if (o->push_name && o->push_name[0])
        cp.pushname = (char *)o->push_name;

    if (creds->me_jid[0]) {
        wa_jid j;
        char *end;
        unsigned long long user;
        if (wa_jid_parse(creds->me_jid, &j) != 0 || !j.user[0]) {
            rc = WA_EINVAL;
            goto out;
        }
        errno = 0;
        user = strtoull(j.user, &end, 10);
        if (errno || *end) {
            rc = WA_EINVAL;
            goto out;
        }
        cp.has_passive = 1;
        cp.passive = 1;
        cp.has_pull = 1;
        cp.pull = 1;
        cp.has_username = 1;
        cp.username = user;
        cp.has_device = 1;
        cp.device = j.device;
        cp.has_liddbmigrated = 1;
        cp.liddbmigrated = 0;
    } else {
        rc = md5_version(o->version, hash);
        if (rc == 0)
            rc = build_device_props(o, &props);
        if (rc)
            goto out;
        wa_store_be32(regid, creds->registration_id);
        wa_store_be24(skid, creds->spk_id);
        reg.has_eregid = 1;
        reg.eregid.data = regid;
        reg.eregid.len = 4;
        reg.has_ekeytype = 1;
        reg.ekeytype.data = &keytype;
        reg.ekeytype.len = 1;
        reg.has_eident = 1;
        reg.eident.data = (uint8_t *)creds->identity_pub;
        reg.eident.len = 32;
        reg.has_eskeyid = 1;
        reg.eskeyid.data = skid;
        reg.eskeyid.len = 3;
        reg.has_eskeyval = 1;
        reg.eskeyval.data = (uint8_t *)creds->spk_pub;
        reg.eskeyval.len = 32;
        reg.has_eskeysig = 1;
        reg.eskeysig.data = (uint8_t *)creds->spk_sig;
        reg.eskeysig.len = 64;
        reg.has_buildhash = 1;
        reg.buildhash.data = hash;
        reg.buildhash.len = 16;
        reg.has_deviceprops = 1;
        reg.deviceprops.data = props.data;
        reg.deviceprops.len = props.len;
        cp.devicepairingdata = &reg;
        cp.has_passive = 1;
        cp.passive = 0;
        cp.has_pull = 1;
        cp.pull = 0;
    }
    rc = wa_proto_pack(&cp, out);
out:
    wa_buf_cleanup(&props);
    return rc;
}
