/*
 * content.c - the Message protobufs (lib/proto/message.proto) the client sends and reads.
 *
 * Sent (shapes as Baileys 7 lib/Utils/messages.js generateWAMessageContent makes them):
 *   text        Message { conversation } - or, with a reply or mentions,
 *               Message { extendedTextMessage { text, contextInfo { stanzaId, participant,
 *               quotedMessage { conversation }, mentionedJid* } } }
 *   reaction    Message { reactionMessage { key { remoteJid, fromMe, id, participant? }, text,
 *               senderTimestampMs } }                      stanza type='reaction'
 *   edit        Message { protocolMessage { key { remoteJid, fromMe: true, id },
 *               type: MESSAGE_EDIT, editedMessage { conversation }, timestampMs } }  edit='1'
 *   revoke      Message { protocolMessage { key { remoteJid, fromMe: true, id },
 *               type: REVOKE } }                           edit='7'
 *   location    Message { locationMessage { degreesLatitude, degreesLongitude, name?, address?,
 *               contextInfo? } }                           stanza type='text'
 *   contact     Message { contactMessage { displayName, vcard, contextInfo? } }
 *               stanza type='media', <enc mediatype='vcard'> (Baileys 7 getMediaType,
 *               whatsmeow getMediaTypeFromMessage: a static location has no media type)
 *   own devices Message { deviceSentMessage { destinationJid, message } }
 * Every Message but a reaction also carries messageContextInfo { messageSecret } (pack()), the
 * own devices' copy the same secret on its outer message too.
 * Read: the same, after unwrapping deviceSentMessage and the FutureProofMessage wrappers
 * (ephemeral, view once, edited, ...), at most UNWRAP_MAX levels.
 *
 * Message ids look like WhatsApp Web's (and Baileys'): "3EB0" followed by 18 upper-case hex
 * digits.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>
#include <string.h>

#include "client/client_int.h"
#include "core/util.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define UNWRAP_MAX 8

void wa__content_new_id(char id[WA_CLIENT_MSG_ID_MAX])
{
    uint8_t r[(WA__MSG_ID_HEX + 1) / 2];
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    wa_random(r, sizeof r);
    memcpy(id, "3EB0", 4);
    for (i = 0; i < WA__MSG_ID_HEX; i++)
        id[4 + i] = hex[(r[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    id[4 + WA__MSG_ID_HEX] = '\0';
}

/* messageContextInfo (Message field 35) { messageSecret (3): 32 random bytes }, appended after the
 * packed Message (protobuf merges a repeated embedded message): Baileys 7 gives every message
 * but reactions one (generateWAMessageContent, shouldIncludeReportingToken), recent whatsmeow
 * too (needsMessageSecret); it keys edits, poll votes and reporting tokens. */
static const uint8_t SECRET_HEAD[5] = {0x9a, 0x02, 0x22, 0x1a, 0x20};
#define SECRET_FIELD_LEN (sizeof SECRET_HEAD + 32)

static int pack(wa__outgoing *o, const Wa__Message *m)
{
    uint8_t secret[32];
    int rc;

    wa_buf_init(&o->plain, WA__PLAIN_MAX);
    rc = wa_proto_pack(m, &o->plain);
    if (rc == 0 && !m->reactionmessage && !m->messagecontextinfo) {
        rc = wa_random(secret, sizeof secret);
        if (rc == 0)
            rc = wa_buf_append(&o->plain, SECRET_HEAD, sizeof SECRET_HEAD);
        if (rc == 0)
            rc = wa_buf_append(&o->plain, secret, sizeof secret);
        wa_wipe(secret, sizeof secret);
    }
    return rc;
}

static int text_ok(const char *t)
{
    return t && strlen(t) <= WA__TEXT_MAX;
}

int wa__content_text(wa__outgoing *o, const char *text, const wa_client_send_opts *opts,
                     const char *chat)
{
    Wa__Message m = WA__MESSAGE__INIT, quoted = WA__MESSAGE__INIT;
    Wa__Message__ExtendedTextMessage ext = WA__MESSAGE__EXTENDED_TEXT_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    size_t i;

    if (!text_ok(text) || !text[0] || !chat)
        return WA_EINVAL;
    if (opts &&
        (opts->n_mentions > WA_CLIENT_MENTIONS_MAX || (opts->n_mentions && !opts->mentions)))
        return WA_EINVAL;
    for (i = 0; opts && i < opts->n_mentions; i++)
        if (!opts->mentions[i] || !opts->mentions[i][0])
            return WA_EINVAL;
    memset(o, 0, sizeof *o);
    o->type = "text";
    if (!opts || (!opts->quoted_id && !opts->n_mentions)) {
        m.conversation = (char *)text;
        return pack(o, &m);
    }
    ext.text = (char *)text;
    ext.contextinfo = &ci;
    if (opts->quoted_id) {
        if (!opts->quoted_id[0] || strlen(opts->quoted_id) >= WA_CLIENT_MSG_ID_MAX ||
            (opts->quoted_text && !text_ok(opts->quoted_text)))
            return WA_EINVAL;
        ci.stanzaid = (char *)opts->quoted_id;
        ci.participant = (char *)(opts->quoted_sender ? opts->quoted_sender : chat);
        quoted.conversation = (char *)(opts->quoted_text ? opts->quoted_text : "");
        ci.quotedmessage = &quoted;
    }
    ci.n_mentionedjid = opts->n_mentions;
    ci.mentionedjid = (char **)opts->mentions;
    m.extendedtextmessage = &ext;
    return pack(o, &m);
}

static int id_ok(const char *id)
{
    return id && id[0] && strlen(id) < WA_CLIENT_MSG_ID_MAX;
}

int wa__content_reaction(wa__outgoing *o, const char *chat, const char *target_id,
                         const char *target_sender, int target_from_me, const char *emoji,
                         int64_t now_ms)
{
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__ReactionMessage r = WA__MESSAGE__REACTION_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;
    wa_jid cj;

    if (!chat || !id_ok(target_id) || !emoji || strlen(emoji) > 64 || wa_jid_parse(chat, &cj))
        return WA_EINVAL;
    memset(o, 0, sizeof *o);
    o->type = "reaction";
    k.remotejid = (char *)chat;
    k.has_fromme = 1;
    k.fromme = target_from_me ? 1 : 0;
    k.id = (char *)target_id;
    if (wa_jid_is_group(&cj) && !target_from_me && target_sender)
        k.participant = (char *)target_sender;
    r.key = &k;
    r.text = (char *)emoji;
    r.has_sendertimestampms = 1;
    r.sendertimestampms = now_ms;
    m.reactionmessage = &r;
    return pack(o, &m);
}

int wa__content_edit(wa__outgoing *o, const char *chat, const char *target_id, const char *text,
                     int64_t now_ms)
{
    Wa__Message m = WA__MESSAGE__INIT, edited = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;

    if (!chat || !id_ok(target_id) || !text_ok(text) || !text[0])
        return WA_EINVAL;
    memset(o, 0, sizeof *o);
    o->type = "text";
    o->edit = "1";
    k.remotejid = (char *)chat;
    k.has_fromme = 1;
    k.fromme = 1;
    k.id = (char *)target_id;
    edited.conversation = (char *)text;
    pm.key = &k;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT;
    pm.editedmessage = &edited;
    pm.has_timestampms = 1;
    pm.timestampms = now_ms;
    m.protocolmessage = &pm;
    return pack(o, &m);
}

int wa__content_revoke(wa__outgoing *o, const char *chat, const char *target_id)
{
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;

    if (!chat || !id_ok(target_id))
        return WA_EINVAL;
    memset(o, 0, sizeof *o);
    o->type = "text";
    o->edit = "7";
    k.remotejid = (char *)chat;
    k.has_fromme = 1;
    k.fromme = 1;
    k.id = (char *)target_id;
    pm.key = &k;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__REVOKE;
    m.protocolmessage = &pm;
    return pack(o, &m);
}

/* A reply's contextInfo { stanzaId, participant, quotedMessage { conversation } } into ci (quoted
 * must outlive it). 0 (also without a reply) or WA_EINVAL. */
static int reply_context(const wa_client_send_opts *opts, const char *chat, Wa__ContextInfo *ci,
                         Wa__Message *quoted, int *used)
{
    *used = 0;
    if (!opts || !opts->quoted_id)
        return 0;
    if (!opts->quoted_id[0] || strlen(opts->quoted_id) >= WA_CLIENT_MSG_ID_MAX ||
        (opts->quoted_text && !text_ok(opts->quoted_text)))
        return WA_EINVAL;
    ci->stanzaid = (char *)opts->quoted_id;
    ci->participant = (char *)(opts->quoted_sender ? opts->quoted_sender : chat);
    quoted->conversation = (char *)(opts->quoted_text ? opts->quoted_text : "");
    ci->quotedmessage = quoted;
    *used = 1;
    return 0;
}

#define LOCATION_TEXT_MAX 1024 /* bytes of a location's name or address */
#define VCARD_MAX         65536

int wa__content_location(wa__outgoing *o, const wa_client_location *loc,
                         const wa_client_send_opts *opts, const char *chat)
{
    Wa__Message m = WA__MESSAGE__INIT, quoted = WA__MESSAGE__INIT;
    Wa__Message__LocationMessage l = WA__MESSAGE__LOCATION_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    int used, rc;

    if (!loc || !chat || !isfinite(loc->latitude) || !isfinite(loc->longitude) ||
        loc->latitude < -90.0 || loc->latitude > 90.0 || loc->longitude < -180.0 ||
        loc->longitude > 180.0 || (loc->name && strlen(loc->name) > LOCATION_TEXT_MAX) ||
        (loc->address && strlen(loc->address) > LOCATION_TEXT_MAX))
        return WA_EINVAL;
    rc = reply_context(opts, chat, &ci, &quoted, &used);
    if (rc)
        return rc;
    memset(o, 0, sizeof *o);
    o->type = "text";
    l.has_degreeslatitude = 1;
    l.degreeslatitude = loc->latitude;
    l.has_degreeslongitude = 1;
    l.degreeslongitude = loc->longitude;
    if (loc->name && loc->name[0])
        l.name = (char *)loc->name;
    if (loc->address && loc->address[0])
        l.address = (char *)loc->address;
    if (used)
        l.contextinfo = &ci;
    m.locationmessage = &l;
    return pack(o, &m);
}

int wa__content_contact(wa__outgoing *o, const char *display_name, const char *vcard,
                        const wa_client_send_opts *opts, const char *chat)
{
    Wa__Message m = WA__MESSAGE__INIT, quoted = WA__MESSAGE__INIT;
    Wa__Message__ContactMessage ct = WA__MESSAGE__CONTACT_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    int used, rc;

    if (!chat || !display_name || !display_name[0] || strlen(display_name) > LOCATION_TEXT_MAX ||
        !vcard || !vcard[0] || strlen(vcard) > VCARD_MAX)
        return WA_EINVAL;
    rc = reply_context(opts, chat, &ci, &quoted, &used);
    if (rc)
        return rc;
    memset(o, 0, sizeof *o);
    o->type = "media";
    o->mediatype = "vcard";
    ct.displayname = (char *)display_name;
    ct.vcard = (char *)vcard;
    if (used)
        ct.contextinfo = &ci;
    m.contactmessage = &ct;
    return pack(o, &m);
}

/* Append a protobuf varint. */
static int put_varint(wa_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;

    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    return wa_buf_append(b, t, n);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int wa__content_dsm(const uint8_t *plain, size_t len, const char *destination, wa_buf *out)
{
    /* field 31 (deviceSentMessage, length-delimited) { 1: destinationJid, 2: message } */
    size_t dlen = strlen(destination);
    size_t inner = 1 + varint_len(dlen) + dlen + 1 + varint_len(len) + len;
    int rc;

    rc = wa_buf_reserve(out, 2 + varint_len(inner) + inner);
    if (rc == 0)
        rc = put_varint(out, (31u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, inner);
    if (rc == 0)
        rc = put_varint(out, (1u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, dlen);
    if (rc == 0)
        rc = wa_buf_append(out, destination, dlen);
    if (rc == 0)
        rc = put_varint(out, (2u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, len);
    if (rc == 0 && len)
        rc = wa_buf_append(out, plain, len);
    /* the message secret pack() appended goes on the outer message too, as Baileys 7 does */
    if (rc == 0 && len >= SECRET_FIELD_LEN &&
        !memcmp(plain + len - SECRET_FIELD_LEN, SECRET_HEAD, sizeof SECRET_HEAD))
        rc = wa_buf_append(out, plain + len - SECRET_FIELD_LEN, SECRET_FIELD_LEN);
    return rc;
}

int wa__content_skdm(const char *group, const uint8_t *skdm, size_t len, wa_buf *out)
{
    /* field 2 (senderKeyDistributionMessage) { 1: groupId, 2: axolotl... } */
    size_t glen = strlen(group);
    size_t inner = 1 + varint_len(glen) + glen + 1 + varint_len(len) + len;
    int rc;

    rc = wa_buf_reserve(out, 1 + varint_len(inner) + inner);
    if (rc == 0)
        rc = put_varint(out, (2u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, inner);
    if (rc == 0)
        rc = put_varint(out, (1u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, glen);
    if (rc == 0)
        rc = wa_buf_append(out, group, glen);
    if (rc == 0)
        rc = put_varint(out, (2u << 3) | 2);
    if (rc == 0)
        rc = put_varint(out, len);
    if (rc == 0 && len)
        rc = wa_buf_append(out, skdm, len);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------------- */

static const char *s_or_empty(const char *s)
{
    return s ? s : "";
}

/* The FutureProofMessage wrapper's inner message, if m is only a wrapper. */
static Wa__Message *wrapped(const Wa__Message *m)
{
    Wa__Message__FutureProofMessage *const w[] = {
        m->ephemeralmessage,           m->viewoncemessage,
        m->viewoncemessagev2,          m->viewoncemessagev2extension,
        m->documentwithcaptionmessage, m->editedmessage,
        m->groupmentionedmessage,      m->botinvokemessage,
        m->lottiestickermessage,       m->associatedchildmessage,
    };
    size_t i;

    for (i = 0; i < WA_ARRAY_SIZE(w); i++)
        if (w[i] && w[i]->message)
            return w[i]->message;
    return NULL;
}

static const char *text_of(const Wa__Message *m)
{
    if (!m)
        return "";
    if (m->conversation)
        return m->conversation;
    if (m->extendedtextmessage && m->extendedtextmessage->text)
        return m->extendedtextmessage->text;
    if (m->imagemessage && m->imagemessage->caption)
        return m->imagemessage->caption;
    if (m->videomessage && m->videomessage->caption)
        return m->videomessage->caption;
    if (m->documentmessage && m->documentmessage->caption)
        return m->documentmessage->caption;
    return "";
}

static void read_context(wa__incoming *in, const Wa__ContextInfo *ci)
{
    if (!ci)
        return;
    if (ci->stanzaid) {
        in->quoted_id = ci->stanzaid;
        in->quoted_sender = s_or_empty(ci->participant);
        in->quoted_text = text_of(ci->quotedmessage);
    }
    in->mentions = (const char **)ci->mentionedjid;
    in->n_mentions = ci->n_mentionedjid;
}

static void read_key(wa__incoming *in, const Wa__MessageKey *k)
{
    if (!k)
        return;
    in->target_id = s_or_empty(k->id);
    in->target_sender = s_or_empty(k->participant ? k->participant : k->remotejid);
    in->target_from_me = k->has_fromme && k->fromme;
}

int wa__content_read(const uint8_t *p, size_t len, wa__incoming *out)
{
    Wa__Message *top = NULL, *m, *inner;
    wa__incoming in;
    int rc, depth;

    if (len > WA__PLAIN_MAX)
        return WA_ELIMIT;
    rc = wa_proto_unpack(&wa__message__descriptor, p, len, &top);
    if (rc)
        return rc;
    memset(&in, 0, sizeof in);
    in.msg = top;
    in.text = in.quoted_id = in.quoted_sender = in.quoted_text = "";
    in.target_id = in.target_sender = "";
    in.location_name = in.location_address = in.contact_name = in.vcard = "";
    m = top;
    if (m->devicesentmessage && m->devicesentmessage->message) {
        in.dsm_destination = m->devicesentmessage->destinationjid;
        m = m->devicesentmessage->message;
    }
    for (depth = 0; depth < UNWRAP_MAX && (inner = wrapped(m)) != NULL; depth++)
        m = inner;
    if (m->senderkeydistributionmessage &&
        m->senderkeydistributionmessage->has_axolotlsenderkeydistributionmessage &&
        m->senderkeydistributionmessage->groupid) {
        in.skdm = m->senderkeydistributionmessage->axolotlsenderkeydistributionmessage.data;
        in.skdm_len = m->senderkeydistributionmessage->axolotlsenderkeydistributionmessage.len;
        in.skdm_group = m->senderkeydistributionmessage->groupid;
    }
    in.has_content = 1;
    if (m->conversation) {
        in.kind = WA_MSG_TEXT;
        in.text = m->conversation;
    } else if (m->extendedtextmessage) {
        in.kind = WA_MSG_TEXT;
        in.text = s_or_empty(m->extendedtextmessage->text);
        read_context(&in, m->extendedtextmessage->contextinfo);
    } else if (m->reactionmessage) {
        in.kind = WA_MSG_REACTION;
        in.text = s_or_empty(m->reactionmessage->text);
        read_key(&in, m->reactionmessage->key);
    } else if (m->protocolmessage && m->protocolmessage->has_type &&
               m->protocolmessage->type == WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT) {
        const Wa__Message *e = m->protocolmessage->editedmessage;
        in.kind = WA_MSG_EDIT;
        for (depth = 0; e && depth < UNWRAP_MAX && wrapped(e); depth++)
            e = wrapped(e);
        in.text = text_of(e);
        read_key(&in, m->protocolmessage->key);
    } else if (m->protocolmessage &&
               (!m->protocolmessage->has_type ||
                m->protocolmessage->type == WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__REVOKE)) {
        in.kind = WA_MSG_REVOKE;
        read_key(&in, m->protocolmessage->key);
    } else if (m->locationmessage) {
        const Wa__Message__LocationMessage *l = m->locationmessage;
        in.kind = WA_MSG_LOCATION;
        in.latitude = l->has_degreeslatitude ? l->degreeslatitude : 0.0;
        in.longitude = l->has_degreeslongitude ? l->degreeslongitude : 0.0;
        in.location_name = s_or_empty(l->name);
        in.location_address = s_or_empty(l->address);
        in.text = s_or_empty(l->comment);
        read_context(&in, l->contextinfo);
    } else if (m->contactmessage) {
        in.kind = WA_MSG_CONTACT;
        in.contact_name = s_or_empty(m->contactmessage->displayname);
        in.vcard = s_or_empty(m->contactmessage->vcard);
        read_context(&in, m->contactmessage->contextinfo);
    } else if (m->protocolmessage) {
        in.has_content = 0; /* key shares, history sync, ...: not for the application */
    } else {
        /* anything else but a bare sender key distribution (and context info) */
        Wa__Message probe = *m;
        wa_buf tmp;
        probe.senderkeydistributionmessage = NULL;
        probe.fastratchetkeysenderkeydistributionmessage = NULL;
        probe.messagecontextinfo = NULL;
        wa_buf_init(&tmp, WA__PLAIN_MAX);
        in.has_content = wa_proto_pack(&probe, &tmp) == 0 && tmp.len > 0;
        wa_buf_cleanup(&tmp);
        in.kind = WA_MSG_OTHER;
        in.text = text_of(m);
    }
    *out = in;
    return 0;
}

void wa__content_free(wa__incoming *in)
{
    if (in && in->msg) {
        wa_proto_free(in->msg);
        in->msg = NULL;
    }
}
