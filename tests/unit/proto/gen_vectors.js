// gen_vectors.js - writes protobuf known-answer vectors produced by Baileys' own WAProto
// encoder (baileys 7.0.0-rc14, installed under tests/interop/node_modules) to
// tests/vectors/proto_*.hex (one line of lower-case hex each). The values are fixed so that
// tests/unit/proto/test_proto.c can check every decoded field. Run from anywhere:
//   node tests/unit/proto/gen_vectors.js
// The output is checked in; rerun only when the vectors are meant to change.
// SPDX-License-Identifier: GPL-3.0-or-later
'use strict';
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const root = path.resolve(__dirname, '..', '..', '..');
const baileysEntry = path.join(root, 'tests', 'interop', 'node_modules', 'baileys7', 'lib', 'index.js');
const outDir = path.join(root, 'tests', 'vectors');

const fill = (n, b) => Buffer.alloc(n, b);

function write(name, bytes) {
    const file = path.join(outDir, `proto_${name}.hex`);
    fs.writeFileSync(file, Buffer.from(bytes).toString('hex') + '\n');
    console.log(`${path.relative(root, file)}: ${bytes.length} bytes`);
}

async function main() {
    // baileys7 is ESM: dynamic import.
    const B = await import(pathToFileURL(baileysEntry).href);
    const { proto } = B;
    const config = {
        version: [2, 3000, 1029496320],
        browser: ['Ubuntu', 'Chrome', '22.04'],
        countryCode: 'US',
        syncFullHistory: false,
    };

    // What Baileys sends to register a new companion (pairing): ClientPayload with
    // devicePairingData, whose deviceProps holds an encoded DeviceProps.
    const reg = B.generateRegistrationNode(
        {
            registrationId: 0x1234abcd & 0x3fff,
            signedPreKey: { keyId: 0x0a0b0c, keyPair: { public: fill(32, 0x11) }, signature: fill(64, 0x22) },
            signedIdentityKey: { public: fill(32, 0x33) },
        },
        config,
    );
    write('client_payload_reg', proto.ClientPayload.encode(reg).finish());

    // What Baileys sends to log in an already paired companion.
    const login = B.generateLoginNode('15551234567:7@s.whatsapp.net', { ...config, pushName: 'wagate' });
    write('client_payload_login', proto.ClientPayload.encode(login).finish());

    // Every kind of field: sfixed32, packed repeated int32 (shards), uint64 near 2^64,
    // nested messages, enums, bytes.
    const full = proto.ClientPayload.fromObject({
        username: '18446744073709551615',
        passive: true,
        userAgent: {
            platform: proto.ClientPayload.UserAgent.Platform.WEB,
            appVersion: { primary: 2, secondary: 3000, tertiary: 1029496320, quaternary: 4, quinary: 5 },
            mcc: '310', mnc: '260', osVersion: '6.1', manufacturer: 'maker', device: 'dev',
            osBuildNumber: 'build-1', phoneId: 'phone-id',
            releaseChannel: proto.ClientPayload.UserAgent.ReleaseChannel.BETA,
            localeLanguageIso6391: 'de', localeCountryIso31661Alpha2: 'AT', deviceBoard: 'board',
            deviceExpId: 'exp', deviceType: proto.ClientPayload.UserAgent.DeviceType.DESKTOP,
            deviceModelType: 'model',
        },
        webInfo: {
            refToken: 'ref', version: '2.3000.1',
            webdPayload: { usesParticipantInKey: true, supportsE2EImage: true, documentTypes: 'pdf', features: fill(3, 0x7f) },
            webSubPlatform: proto.ClientPayload.WebInfo.WebSubPlatform.DARWIN,
        },
        pushName: 'Grüße ✓',
        sessionId: -123456,
        shortConnect: true,
        connectType: proto.ClientPayload.ConnectType.CELLULAR_LTE,
        connectReason: proto.ClientPayload.ConnectReason.ERROR_RECONNECT,
        shards: [1, 300, -5],
        dnsSource: { dnsMethod: proto.ClientPayload.DNSSource.DNSResolutionMethod.HARDCODED, appCached: true },
        connectAttemptCount: 3,
        device: 12,
        product: proto.ClientPayload.Product.MESSENGER,
        fbCat: fill(4, 0xfc),
        fbUserAgent: Buffer.from('fbua'),
        oc: true,
        lc: -1,
        iosAppExtension: proto.ClientPayload.IOSAppExtension.INTENTS_EXTENSION,
        fbAppId: '1234567890123',
        fbDeviceId: fill(16, 0xdd),
        pull: true,
        paddingBytes: fill(5, 0x00),
        yearClass: 2016,
        memClass: 512,
        interopData: { accountId: '99', token: fill(2, 0xee), enableReadReceipts: true },
        trafficAnonymization: proto.ClientPayload.TrafficAnonymization.STANDARD,
        lidDbMigrated: true,
        accountType: proto.ClientPayload.AccountType.GUEST,
        connectionSequenceInfo: -1,
        paaLink: true,
        preacksCount: 7,
        processingQueueSize: 8,
    });
    write('client_payload_full', proto.ClientPayload.encode(full).finish());

    // pair-success device-identity: HMAC envelope around ADVSignedDeviceIdentity around
    // ADVDeviceIdentity.
    const devIdentity = proto.ADVDeviceIdentity.encode({
        rawId: 123456789, timestamp: 1700000000, keyIndex: 3,
        accountType: proto.ADVEncryptionType.E2EE, deviceType: proto.ADVEncryptionType.HOSTED,
    }).finish();
    const signed = proto.ADVSignedDeviceIdentity.encode({
        details: devIdentity, accountSignatureKey: fill(32, 0xaa), accountSignature: fill(64, 0xbb),
        deviceSignature: fill(64, 0xcc),
    }).finish();
    const hmac = proto.ADVSignedDeviceIdentityHMAC.encode({
        details: signed, hmac: fill(32, 0x5a), accountType: proto.ADVEncryptionType.HOSTED,
    }).finish();
    write('adv_hmac', hmac);

    // A text message with a quote, mentions and the device-list metadata a sender adds.
    const msg = proto.Message.fromObject({
        extendedTextMessage: {
            text: 'hi @15551234567 and @15559876543 https://example.org ✓',
            matchedText: 'https://example.org',
            description: 'An example',
            title: 'Example Domain',
            previewType: proto.Message.ExtendedTextMessage.PreviewType.NONE,
            contextInfo: {
                stanzaId: '3EB0C0FFEE',
                participant: '15550001111@s.whatsapp.net',
                quotedMessage: { conversation: 'quoted text' },
                remoteJid: '120363000000000000@g.us',
                mentionedJid: ['15551234567@s.whatsapp.net', '15559876543@s.whatsapp.net'],
                expiration: 604800,
                forwardingScore: 2,
                isForwarded: true,
            },
        },
        messageContextInfo: {
            deviceListMetadata: {
                senderKeyHash: fill(10, 0x01), senderTimestamp: '1700000001',
                senderKeyIndexes: [0, 1, 200],
                recipientKeyHash: fill(10, 0x02), recipientTimestamp: '1700000002',
                recipientKeyIndexes: [5],
            },
            deviceListMetadataVersion: 2,
            messageSecret: fill(32, 0x42),
        },
    });
    write('message_ext_text', proto.Message.encode(msg).finish());

    // Protocol message: app state sync key share (packed deviceIndexes) and a history sync
    // notification, plus a revoke key.
    const pmsg = proto.Message.fromObject({
        protocolMessage: {
            key: { remoteJid: '15551234567@s.whatsapp.net', fromMe: true, id: 'ABCDEF0123' },
            type: proto.Message.ProtocolMessage.Type.APP_STATE_SYNC_KEY_SHARE,
            appStateSyncKeyShare: {
                keys: [
                    {
                        keyId: { keyId: Buffer.from('00000001', 'hex') },
                        keyData: { keyData: fill(32, 0x99), fingerprint: { rawId: 77, currentIndex: 1, deviceIndexes: [0, 1, 2] }, timestamp: '1700000003' },
                    },
                    { keyId: { keyId: Buffer.from('00000002', 'hex') } },
                ],
            },
            historySyncNotification: {
                fileSha256: fill(32, 0x01), fileLength: '123456', mediaKey: fill(32, 0x02),
                fileEncSha256: fill(32, 0x03), directPath: '/v/t62/abc',
                syncType: proto.Message.HistorySyncType.RECENT, chunkOrder: 1, progress: 50,
            },
            timestampMs: '1700000000123',
        },
    });
    write('message_protocol', proto.Message.encode(pmsg).finish());

    // Noise: the server's certificate chain (details are encoded Details).
    const details = (serial, issuer, key) => proto.CertChain.NoiseCertificate.Details.encode({
        serial, issuerSerial: issuer, key, notBefore: '1700000000', notAfter: '1800000000',
    }).finish();
    const chain = proto.CertChain.encode({
        leaf: { details: details(2, 1, fill(32, 0x4c)), signature: fill(64, 0x51) },
        intermediate: { details: details(1, 0, fill(32, 0x49)), signature: fill(64, 0x52) },
    }).finish();
    write('cert_chain', chain);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
