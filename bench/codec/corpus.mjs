// corpus.mjs - representative stanzas for the binary node benchmark (and the fuzz seed corpus),
// as Baileys-style node objects {tag, attrs, content}. Deterministic (seeded filler bytes).
//
//   message  <message> to a user: 10 <participants><to jid><enc>~200 B</enc></to> + device-identity
//   iq       <iq type=result><media_conn> with hosts (an everyday iq result)
//   receipt  <receipt type=read> with a <list> of 3 more message ids
//   usync    <iq type=result><usync> with 50 users, each with a device list and key-index-list
//
// SPDX-License-Identifier: GPL-3.0-or-later

function filler(seed) {
    let s = seed >>> 0;
    return n => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            b[i] = s >>> 24;
        }
        return b;
    };
}

function msgId(i) {
    return '3EB0' + (0xA1B2C3D4E5F60718n + BigInt(i)).toString(16).toUpperCase();
}

export function message() {
    const bytes = filler(1);
    const peer = '5511987654321';
    const to = [];
    for (let d = 0; d < 10; d++) {
        // device 0 is written without ":0" (Baileys would encode ":0" as AD_JID device 0, which
        // decodes without it)
        const jid = d === 0 ? `${peer}@s.whatsapp.net`
            : d < 6 ? `${peer}:${d}@s.whatsapp.net` : `5511912345678:${d - 5}@s.whatsapp.net`;
        to.push({
            tag: 'to', attrs: { jid },
            content: [{ tag: 'enc', attrs: { v: '2', type: d % 3 ? 'msg' : 'pkmsg' }, content: bytes(190 + d * 3) }],
        });
    }
    return {
        tag: 'message',
        attrs: { id: msgId(0), type: 'text', to: `${peer}@s.whatsapp.net` },
        content: [
            { tag: 'participants', attrs: {}, content: to },
            { tag: 'device-identity', attrs: {}, content: bytes(158) },
        ],
    };
}

export function iqResult() {
    const hosts = ['mmg.whatsapp.net', 'media-gru2-2.cdn.whatsapp.net', 'media-gru1-1.cdn.whatsapp.net',
        'media.fgru3-1.fna.whatsapp.net'];
    return {
        tag: 'iq',
        attrs: { from: '@s.whatsapp.net', id: '63401.40113-27', type: 'result', t: '1718000000' },
        content: [{
            tag: 'media_conn',
            attrs: {
                auth: 'AWQxd2Z4cWZ5eGR3c3JqZ2FhZ3R4b2t3dGJwZ3hxb3Z0ZmN4b2h0YmF4bmlxd3Jtb2J3dGZ4',
                ttl: '300', auth_ttl: '21600', max_buckets: '12',
            },
            content: hosts.map((h, i) => ({ tag: 'host', attrs: i ? { hostname: h } : { hostname: h, type: 'primary' } })),
        }],
    };
}

export function receipt() {
    return {
        tag: 'receipt',
        attrs: { from: '5511987654321:3@s.whatsapp.net', id: msgId(1), t: '1718000123', type: 'read' },
        content: [{ tag: 'list', attrs: {}, content: [2, 3, 4].map(i => ({ tag: 'item', attrs: { id: msgId(i) } })) }],
    };
}

export function usync() {
    const bytes = filler(2);
    const users = [];
    for (let u = 0; u < 50; u++) {
        const devs = [{ tag: 'device', attrs: { id: '0' } }];
        for (let d = 1; d <= 1 + (u % 4); d++) devs.push({ tag: 'device', attrs: { id: String(d), 'key-index': String(d + u % 7) } });
        users.push({
            tag: 'user', attrs: { jid: `55119${String(10000000 + u * 7919).padStart(8, '0')}@s.whatsapp.net` },
            content: [{
                tag: 'devices', attrs: {},
                content: [
                    { tag: 'device-list', attrs: {}, content: devs },
                    { tag: 'key-index-list', attrs: { ts: String(1717000000 + u) }, content: bytes(96) },
                ],
            }],
        });
    }
    return {
        tag: 'iq',
        attrs: { from: '@s.whatsapp.net', id: '63401.40113-28', type: 'result' },
        content: [{
            tag: 'usync',
            attrs: { sid: '63401.40113-29', index: '0', last: 'true', mode: 'query', context: 'message' },
            content: [
                { tag: 'result', attrs: {}, content: [{ tag: 'devices', attrs: {} }] },
                { tag: 'list', attrs: {}, content: users },
            ],
        }],
    };
}

export const stanzas = { message, iq: iqResult, receipt, usync };

export function countNodes(n) {
    let c = 1;
    if (Array.isArray(n.content)) for (const k of n.content) c += countNodes(k);
    return c;
}
