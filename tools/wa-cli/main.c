/*
 * wa-cli - a command-line client over libwa (include/wa/client.h), for people and tests.
 *
 *   wa-cli --store FILE [options] pair [--phone NUMBER]
 *       Pairs the account: prints `QR <text>` as refs rotate (or `CODE <code>` with --phone),
 *       then `PAIRED <jid>` once the credentials are durable, waits for the first login and
 *       exits 0. A terminal failure prints `FAILED <reason> <text>` and exits 1.
 *   wa-cli --store FILE [options] listen [--rotate-signed-prekey] [--auto-read]
 *                                        [--inbox FILE]
 *       Logs in from the store and prints one JSON line per event until SIGINT/SIGTERM, `quit`
 *       on stdin (exit 0) or a disconnect that will not be retried (exit 1):
 *         {"event":"connected","jid":"..."}
 *         {"event":"disconnected","reason":"restart","code":515,"text":"...","will_retry":true,
 *          "retry_ms":0}
 *         {"event":"logged_out"}
 *         {"event":"message","id":..,"chat":..,"sender":..,"sender_pn":..,"sender_lid":..,
 *          "push_name":..,"timestamp":N,"from_me":b,"offline":b,["maybe_repeat":true,]"kind":"text"|"reaction"|"edit"|
 *          "revoke"|"location"|"contact"|"other","text":..[,"quoted_id","quoted_sender",
 *          "quoted_text"][,"mentions":[..]][,"target_id","target_sender","target_from_me"]
 *          [,"latitude":F,"longitude":F,"location_name","location_address"]
 *          [,"contact_name","vcard"]}
 *         {"event":"presence","from":..,"available":b,"last_seen":N}
 *         {"event":"chat_state","chat":..,"sender":..,"state":"composing"|"paused"|
 *          "recording"|"idle"}
 *         {"event":"identity_changed","jid":..}
 *         {"event":"receipt","type":"delivered"|"read"|"played"|"retry"|"other","type_name":..,
 *          "chat":..,"from":..,"ids":[..],"timestamp":N}
 *         {"event":"decrypt_failed","id":..,"chat":..,"sender":..,"enc_type":..,"error":"WA_E..",
 *          "reason":..,"retry_count":N,"gave_up":true|false}
 *         {"event":"sent","id":..} / {"event":"send_failed","id":..,"error":"WA_E.."}
 *         {"event":"check","phone":..,"jid":..,"exists":b,"lid":..}
 *         {"event":"group","op":"create"|"info"|"add"|"remove"|"promote"|"demote","jid":..,
 *          "subject":..,"participants":[{"jid":..,"lid":..,"admin":N,"error":N}..]}
 *         {"event":"group_update","jid":..,"action":..,"actor":..,"subject":..,
 *          "participants":[..],"timestamp":N}
 *       --auto-read sends a read receipt for every message received. --exit-on-message TEXT
 *       (a test hook for crash safety) ends the process with _exit(3) inside the message
 *       callback of the first message whose text is TEXT, before printing it: the decryption
 *       is committed, the receipt not sent, so the server delivers it again at the next login.
 *       --inbox FILE makes wa-cli an application that gets every message exactly once: each
 *       message event's line is appended to FILE (the application's durable inbox, kept across
 *       runs) inside the message callback, unless FILE holds its (chat, id) already; such a
 *       repeat (after a crash, libwa hands a message over again flagged maybe_repeat; after a
 *       stale store snapshot was restored, unflagged) is still printed, with "inbox":"dup"
 *       added. If the line cannot be written, wa-cli exits 4 inside the callback (libwa hands
 *       the message over again at the next run). See the comment at `--inbox FILE` below.
 *       Commands, one per line on stdin (when it is a pipe or a terminal):
 *         send TO TEXT...              (TO: a phone number or a JID)
 *         reply TO QUOTED_ID TEXT...   react CHAT ID EMOJI [SENDER]   edit CHAT ID TEXT...
 *         revoke CHAT ID               read CHAT ID [SENDER]           check PHONE...
 *         group-create PHONE[,PHONE..] SUBJECT...   group-info GID
 *         group-add|group-remove|group-promote|group-demote GID PHONE...
 *         send-location TO LAT LON [NAME[|ADDRESS]]   (prints queued, then sent)
 *         send-contact TO NAME VCARD   (NAME one word; VCARD a file, or the text with "\n")
 *         chatstate TO composing|paused|recording      (prints {"event":"chatstate_sent"})
 *         presence available|unavailable               (prints {"event":"presence_sent"})
 *         subscribe JID       (presence of a contact; prints {"event":"subscribe_sent"})
 *         quit
 *       (TO / CHAT may be a group JID "120363...@g.us".)
 *       Each send prints {"event":"queued","id":..} at once, then sent / send_failed; a command
 *       refused at once prints {"event":"error","cmd":..,"error":"WA_E.."}.
 *   wa-cli --store FILE [options] send TO TEXT
 *       Logs in, sends one text and prints the message id once the server acknowledged it
 *       (exit 0), or `FAILED <error>` (exit 1).
 *   wa-cli --store FILE [options] check PHONE...
 *       Prints `PHONE yes|no [JID] [LID]` per number (exit 0), or `FAILED <error>` (exit 1).
 *
 * Options: --account NAME (default "default"), --url URL (default the real WhatsApp),
 * --root-key HEX (trusted Noise root), --ca FILE (extra TLS CA), --proxy URL,
 * --keepalive MS, --reconnect-base MS, --reconnect-max MS, --version A.B.C|auto,
 * --version-url URL, --push-name NAME, --log-level LEVEL (stderr; default warn).
 *
 * --version auto fetches the current WhatsApp Web version once at start, as whatsmeow's
 * update.go (GetLatestVersion) does: GET https://web.whatsapp.com/ with a browser's headers and
 * take `"client_revision":N,` from the page as 2.3000.N; a check-update style JSON answer
 * (`"currentVersion":"2.3000.N"`) is accepted too. --version-url overrides the URL (tests). On
 * any failure it warns on stderr and keeps libwa's default (WA_CLIENT_DEFAULT_VERSION).
 *
 * stdout is line-buffered so scripts see each line as it happens.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"
#include "webversion.h"

#define LINE_MAX_LEN 70000 /* one stdin command (a text up to 64 KiB) */
#define MAX_ARGS     WA_CLIENT_CHECK_MAX

#define VERSION_URL_DEFAULT WG_WEBVERSION_URL
#define VERSION_TIMEOUT_S   10L
#define VERSION_STR_MAX     WG_WEBVERSION_STR_MAX

enum { CMD_PAIR = 1, CMD_LISTEN, CMD_SEND, CMD_CHECK };

typedef struct cli {
    uv_loop_t *loop;
    wa_client *client;
    wa_store *store;
    uv_signal_t sigint, sigterm;
    uv_timer_t quit_timer;
    uv_stream_t *in; /* stdin (listen), or NULL */
    int in_is_tty;
    char *line;
    size_t line_len;
    int cmd;
    int rotate;          /* --rotate-signed-prekey: once, after the first login */
    int auto_read;       /* --auto-read */
    const char *exit_on; /* --exit-on-message */
    struct inbox *inbox; /* --inbox, or NULL */
    int exit_code;
    int quitting;
    int done_once; /* send / check: started */
    const char *const *args;
    size_t nargs;
    char send_id[WA_CLIENT_MSG_ID_MAX];
} cli;

static void usage(FILE *f)
{
    fprintf(f, "usage: wa-cli --store FILE [--account NAME] [--url URL] [--root-key HEX]\n"
               "              [--ca FILE] [--proxy URL] [--keepalive MS] [--reconnect-base MS]\n"
               "              [--reconnect-max MS] [--version A.B.C|auto]\n"
               "              [--version-url URL] [--push-name NAME] [--log-level LEVEL]\n"
               "              (pair [--phone NUMBER] |\n"
               "              listen [--rotate-signed-prekey] [--auto-read] [--inbox FILE] |\n"
               "              send TO TEXT | check PHONE...)\n");
}

/* JSON string body (without quotes) of s. */
static void json_str(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

/* ,"key":"value" to f */
static void json_kv_to(FILE *f, const char *key, const char *v)
{
    fprintf(f, ",\"%s\":\"", key);
    json_str(f, v);
    fputc('"', f);
}

/* ,"key":"value" */
static void json_kv(const char *key, const char *v)
{
    json_kv_to(stdout, key, v);
}

/*
 * --inbox FILE: the application's durable inbox, and how an application gets every message
 * exactly once from libwa's at-least-once hand-over (include/wa/client.h, maybe_repeat).
 *
 * Each message event is appended to FILE, as the JSON line wa-cli prints, with one write()
 * (O_APPEND) inside the message callback, before it returns: libwa marks the id handed over
 * only after the callback, so a crash before the write completed gets the message again at the
 * next run. A completed write() is in the page cache and survives the death of the process
 * (SIGKILL included) without fsync, so no fsync option: only a crash of the machine could lose
 * it, which this file does not try to survive (that would need fsync per message; the store's
 * message commits are not synced either: WAL, synchronous=NORMAL, lib/store/store.c). A
 * message whose (chat, id) is already in the inbox is not appended again: the repeat libwa
 * flags maybe_repeat after a crash between the callback and its mark, and the unflagged one
 * after a stale store snapshot was restored, are both dropped.
 *
 * The ids are kept in memory in a set of the INBOX_KEEP most recent ones (a ring in arrival
 * order over an open-addressing table): at start FILE is read line by line into it (the set
 * keeps the last INBOX_KEEP lines), a partially written last line (a write cut by a kill: the
 * kernel may stop a write between pages on SIGKILL) is cut off the file with a warning.
 */
#define INBOX_KEEP  100000
#define INBOX_SLOTS 262144 /* power of 2, > 2 * INBOX_KEEP */

typedef struct inbox {
    int fd;
    char *keys[INBOX_KEEP]; /* ring: "chat\nid" (JSON-escaped, as in the line) */
    uint64_t hashes[INBOX_KEEP];
    size_t head, count;          /* oldest entry, entries */
    uint32_t slots[INBOX_SLOTS]; /* ring index + 1, 0 = empty */
} inbox;

static uint64_t inbox_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding key (hash h), or the empty slot where it would go. */
static size_t inbox_find(const inbox *b, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (INBOX_SLOTS - 1);

    while (b->slots[i]) {
        size_t r = b->slots[i] - 1;
        if (b->hashes[r] == h && !strcmp(b->keys[r], key))
            return i;
        i = (i + 1) & (INBOX_SLOTS - 1);
    }
    return i;
}

/* Drop the oldest key (the ring is full): free its slot, shifting its probe run back. */
static void inbox_evict(inbox *b)
{
    size_t r = b->head, i = (size_t)b->hashes[r] & (INBOX_SLOTS - 1), j;

    while (b->slots[i] != r + 1)
        i = (i + 1) & (INBOX_SLOTS - 1);
    for (j = i;;) {
        size_t home;
        j = (j + 1) & (INBOX_SLOTS - 1);
        if (!b->slots[j])
            break;
        home = (size_t)b->hashes[b->slots[j] - 1] & (INBOX_SLOTS - 1);
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            b->slots[i] = b->slots[j];
            i = j;
        }
    }
    b->slots[i] = 0;
    free(b->keys[r]);
    b->keys[r] = NULL;
    b->head = (b->head + 1) % INBOX_KEEP;
    b->count--;
}

/* 1: key is known; 0: not. */
static int inbox_has(const inbox *b, const char *key)
{
    return b->slots[inbox_find(b, key, inbox_hash(key))] != 0;
}

/* Remember key (not known yet; taken over), evicting the oldest past INBOX_KEEP. */
static void inbox_add(inbox *b, char *key)
{
    uint64_t h = inbox_hash(key);
    size_t r;

    if (b->count == INBOX_KEEP)
        inbox_evict(b);
    r = (b->head + b->count) % INBOX_KEEP;
    b->keys[r] = key;
    b->hashes[r] = h;
    b->count++;
    b->slots[inbox_find(b, key, h)] = (uint32_t)r + 1;
}

/* The end of the JSON string body starting at p (at its closing quote), or NULL. */
static const char *json_str_end(const char *p)
{
    for (; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p)
            return NULL;
    return *p ? p : NULL;
}

/*
 * The inbox key "chat\nid" (malloc'd) of a message line as on_message writes it: it starts
 * {"event":"message","id":"..","chat":"..", both JSON-escaped, so neither holds a raw newline.
 * 0, -1 when line is not such a line, WA_ENOMEM.
 */
static int inbox_key(const char *line, char **key)
{
    static const char head[] = "{\"event\":\"message\",\"id\":\"", mid[] = ",\"chat\":\"";
    const char *id, *id_end, *chat, *chat_end;
    size_t id_len, chat_len;

    if (strncmp(line, head, sizeof head - 1))
        return -1;
    id = line + sizeof head - 1;
    if (!(id_end = json_str_end(id)) || strncmp(id_end + 1, mid, sizeof mid - 1))
        return -1;
    chat = id_end + 1 + sizeof mid - 1;
    if (!(chat_end = json_str_end(chat)))
        return -1;
    id_len = (size_t)(id_end - id);
    chat_len = (size_t)(chat_end - chat);
    if (!(*key = malloc(chat_len + 1 + id_len + 1)))
        return WA_ENOMEM;
    memcpy(*key, chat, chat_len);
    (*key)[chat_len] = '\n';
    memcpy(*key + chat_len + 1, id, id_len);
    (*key)[chat_len + 1 + id_len] = '\0';
    return 0;
}

/* Open (create) path and load the ids of its lines. 0 or -1 with a message on stderr. */
static int inbox_open(inbox *b, const char *path)
{
    FILE *f;
    char *line = NULL, *key;
    size_t cap = 0, lines = 0, skipped = 0;
    int rc;
    ssize_t n;
    off_t good = 0; /* the end of the last complete line */

    b->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (b->fd < 0) {
        fprintf(stderr, "wa-cli: cannot open inbox %s: %s\n", path, strerror(errno));
        return -1;
    }
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "wa-cli: cannot read inbox %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            fprintf(stderr,
                    "wa-cli: warning: inbox %s: the last line (%zd bytes) is incomplete (a "
                    "write cut by a crash): ignored and cut off\n",
                    path, n);
            break;
        }
        good += n;
        line[n - 1] = '\0';
        if ((rc = inbox_key(line, &key)) == WA_ENOMEM) {
            fprintf(stderr, "wa-cli: inbox %s: out of memory\n", path);
            free(line);
            fclose(f);
            return -1;
        }
        if (rc) {
            skipped++;
            continue;
        }
        if (inbox_has(b, key))
            free(key); /* a line twice: only if the file was edited */
        else
            inbox_add(b, key);
        lines++;
    }
    free(line);
    if (ferror(f)) {
        fprintf(stderr, "wa-cli: cannot read inbox %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    if (ftruncate(b->fd, good) != 0) {
        fprintf(stderr, "wa-cli: cannot truncate inbox %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (skipped)
        fprintf(stderr, "wa-cli: warning: inbox %s: %zu line(s) not message events, ignored\n",
                path, skipped);
    fprintf(stderr, "wa-cli: inbox %s: %zu messages, %zu ids kept\n", path, lines, b->count);
    return 0;
}

/*
 * Record the message line (ending in "\n") unless its key is known: 1 recorded, 0 a known id
 * (dropped), -1 the write failed (errno set).
 */
static int inbox_record(inbox *b, const char *line, size_t len)
{
    char *key;
    size_t off = 0;
    int rc = inbox_key(line, &key);

    if (rc) {
        errno = rc == WA_ENOMEM ? ENOMEM : EINVAL;
        return -1;
    }
    if (inbox_has(b, key)) {
        free(key);
        return 0;
    }
    while (off < len) { /* one write(): more only when the kernel took part of it */
        ssize_t w = write(b->fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            free(key);
            return -1;
        }
        off += (size_t)w;
    }
    inbox_add(b, key);
    return 1;
}

static void inbox_free(inbox *b)
{
    while (b->count)
        inbox_evict(b);
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}

static void close_cb(uv_handle_t *h)
{
    if (h->type != UV_TIMER && h->type != UV_SIGNAL)
        free(h);
}

static void on_quit_timer(uv_timer_t *t)
{
    cli *k = t->data;

    wa_client_free(k->client);
    k->client = NULL;
    if (k->in && !uv_is_closing((uv_handle_t *)k->in))
        uv_close((uv_handle_t *)k->in, close_cb);
    k->in = NULL;
    uv_close((uv_handle_t *)&k->sigint, NULL);
    uv_close((uv_handle_t *)&k->sigterm, NULL);
    uv_close((uv_handle_t *)&k->quit_timer, NULL);
}

/* Tear down outside the current callback. */
static void quit(cli *k, int code)
{
    if (k->quitting)
        return;
    k->quitting = 1;
    k->exit_code = code;
    uv_timer_start(&k->quit_timer, on_quit_timer, 0, 0);
}

/* Stop the connection (its disconnected{stopped} event quits), or quit at once. */
static void stop_and_quit(cli *k, int code)
{
    k->exit_code = code;
    if (!k->client || !wa_client_stop(k->client))
        quit(k, code);
}

static void on_qr(wa_client *c, const char *text, void *ud)
{
    (void)c;
    (void)ud;
    printf("QR %s\n", text);
}

static void on_pair_code(wa_client *c, const char *code, void *ud)
{
    (void)c;
    (void)ud;
    printf("CODE %s\n", code);
}

static void on_paired(wa_client *c, const char *jid, const char *lid, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd == CMD_LISTEN) {
        printf("{\"event\":\"paired\"");
        json_kv("jid", jid);
        json_kv("lid", lid);
        printf("}\n");
    } else {
        printf("PAIRED %s\n", jid);
    }
}

static void print_check(wa_client *c, int err, const wa_client_contact *res, size_t n, void *ud)
{
    cli *k = ud;
    size_t i;

    (void)c;
    if (k->cmd == CMD_CHECK) {
        if (err) {
            printf("FAILED %s\n", wa_err_name(err));
            stop_and_quit(k, 1);
            return;
        }
        for (i = 0; i < n; i++)
            printf("%s %s %s%s%s\n", res[i].phone, res[i].exists ? "yes" : "no", res[i].jid,
                   res[i].lid[0] ? " " : "", res[i].lid);
        stop_and_quit(k, 0);
        return;
    }
    if (err) {
        printf("{\"event\":\"error\",\"cmd\":\"check\",\"error\":\"%s\"}\n", wa_err_name(err));
        return;
    }
    for (i = 0; i < n; i++) {
        printf("{\"event\":\"check\"");
        json_kv("phone", res[i].phone);
        json_kv("jid", res[i].jid);
        printf(",\"exists\":%s", res[i].exists ? "true" : "false");
        json_kv("lid", res[i].lid);
        printf("}\n");
    }
}

static void on_connected(wa_client *c, void *ud)
{
    cli *k = ud;
    int rc;

    if (k->cmd == CMD_PAIR) {
        quit(k, 0); /* paired and logged in once: prekeys are on the server */
        return;
    }
    if (k->cmd == CMD_SEND || k->cmd == CMD_CHECK) {
        if (k->done_once)
            return; /* a reconnect: the request is already out */
        k->done_once = 1;
        if (k->cmd == CMD_SEND)
            rc = wa_client_send_text(c, k->args[0], k->args[1], NULL, k->send_id);
        else
            rc = wa_client_check_phones(c, k->args, k->nargs, print_check, k);
        if (rc) {
            printf("FAILED %s\n", wa_err_name(rc));
            stop_and_quit(k, 1);
        }
        return;
    }
    printf("{\"event\":\"connected\"");
    json_kv("jid", wa_client_jid(c));
    printf("}\n");
    if (k->rotate) {
        rc = wa_client_rotate_signed_prekey(c);
        k->rotate = 0;
        printf("{\"event\":\"signed_prekey_rotated\",\"ok\":%s}\n", rc ? "false" : "true");
    }
}

static void on_disconnected(wa_client *c, const wa_client_disconnect_info *info, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd == CMD_LISTEN) {
        printf("{\"event\":\"disconnected\",\"reason\":\"%s\",\"code\":%d",
               wa_disconnect_reason_name(info->reason), info->code);
        json_kv("text", info->text);
        printf(",\"will_retry\":%s,\"retry_ms\":%u}\n", info->will_retry ? "true" : "false",
               info->retry_ms);
    } else if (!info->will_retry && info->reason != WA_DISC_STOPPED) {
        printf("FAILED %s %s\n", wa_disconnect_reason_name(info->reason), info->text);
    }
    if (!info->will_retry && info->reason != WA_DISC_LOGGED_OUT)
        quit(k, info->reason == WA_DISC_STOPPED ? k->exit_code : 1);
}

static void on_logged_out(wa_client *c, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd == CMD_LISTEN)
        printf("{\"event\":\"logged_out\"}\n");
    quit(k, 1);
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case WA_MSG_TEXT:
        return "text";
    case WA_MSG_REACTION:
        return "reaction";
    case WA_MSG_EDIT:
        return "edit";
    case WA_MSG_REVOKE:
        return "revoke";
    case WA_MSG_LOCATION:
        return "location";
    case WA_MSG_CONTACT:
        return "contact";
    default:
        return "other";
    }
}

/* The message event's JSON line to f, without its closing "}\n". */
static void print_message(FILE *f, const wa_client_message *m)
{
    size_t i;

    fprintf(f, "{\"event\":\"message\"");
    json_kv_to(f, "id", m->id); /* id and chat first: inbox_key reads them there */
    json_kv_to(f, "chat", m->chat);
    json_kv_to(f, "sender", m->sender);
    json_kv_to(f, "sender_pn", m->sender_pn);
    json_kv_to(f, "sender_lid", m->sender_lid);
    json_kv_to(f, "push_name", m->push_name);
    fprintf(f, ",\"timestamp\":%lld,\"from_me\":%s,\"offline\":%s", (long long)m->timestamp,
            m->from_me ? "true" : "false", m->offline ? "true" : "false");
    if (m->maybe_repeat)
        fprintf(f, ",\"maybe_repeat\":true");
    json_kv_to(f, "kind", kind_name(m->kind));
    json_kv_to(f, "text", m->text);
    if (m->quoted_id[0]) {
        json_kv_to(f, "quoted_id", m->quoted_id);
        json_kv_to(f, "quoted_sender", m->quoted_sender);
        json_kv_to(f, "quoted_text", m->quoted_text);
    }
    if (m->n_mentions) {
        fprintf(f, ",\"mentions\":[");
        for (i = 0; i < m->n_mentions; i++) {
            fprintf(f, "%s\"", i ? "," : "");
            json_str(f, m->mentions[i]);
            fputc('"', f);
        }
        fputc(']', f);
    }
    if (m->target_id[0]) {
        json_kv_to(f, "target_id", m->target_id);
        json_kv_to(f, "target_sender", m->target_sender);
        fprintf(f, ",\"target_from_me\":%s", m->target_from_me ? "true" : "false");
    }
    if (m->kind == WA_MSG_LOCATION) {
        fprintf(f, ",\"latitude\":%.17g,\"longitude\":%.17g", m->latitude, m->longitude);
        json_kv_to(f, "location_name", m->location_name);
        json_kv_to(f, "location_address", m->location_address);
    } else if (m->kind == WA_MSG_CONTACT) {
        json_kv_to(f, "contact_name", m->contact_name);
        json_kv_to(f, "vcard", m->vcard);
    }
}

/*
 * With --inbox: record the message (its line, built in memory) before returning, then print
 * it, with "inbox":"dup" when the inbox had its id already. A message that cannot be recorded
 * ends the process without returning (exit 4): libwa has not marked it handed over, so the
 * next run gets it again, flagged maybe_repeat.
 */
static void inbox_message(cli *k, const wa_client_message *m)
{
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    int rc = -1;

    if (f) {
        print_message(f, m);
        fputs("}\n", f);
        if (fclose(f) == 0)
            rc = inbox_record(k->inbox, line, len);
        else
            errno = ENOMEM;
    } else {
        errno = ENOMEM;
    }
    if (rc < 0) {
        fprintf(stderr, "wa-cli: cannot record message %s in the inbox: %s\n", m->id,
                strerror(errno));
        fflush(stdout);
        _exit(4);
    }
    line[len - 2] = '\0'; /* without "}\n" */
    printf("%s%s}\n", line, rc == 0 ? ",\"inbox\":\"dup\"" : "");
    free(line);
}

static void on_message(wa_client *c, const wa_client_message *m, void *ud)
{
    cli *k = ud;

    if (k->cmd != CMD_LISTEN)
        return;
    if (k->exit_on && !strcmp(m->text, k->exit_on)) {
        fflush(stdout);
        _exit(3); /* a crash between the commit and the hand-over */
    }
    if (k->inbox) {
        inbox_message(k, m);
    } else {
        print_message(stdout, m);
        printf("}\n");
    }
    if (k->auto_read && !m->from_me) {
        const char *ids[1] = {m->id};
        int group = strstr(m->chat, "@g.us") != NULL;
        wa_client_mark_read(c, m->chat, group ? m->sender : NULL, ids, 1);
    }
}

static const char *receipt_name(int type)
{
    switch (type) {
    case WA_RECEIPT_DELIVERED:
        return "delivered";
    case WA_RECEIPT_READ:
        return "read";
    case WA_RECEIPT_PLAYED:
        return "played";
    case WA_RECEIPT_RETRY:
        return "retry";
    default:
        return "other";
    }
}

static void on_receipt(wa_client *c, const wa_client_receipt *r, void *ud)
{
    cli *k = ud;
    size_t i;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"receipt\"");
    json_kv("type", receipt_name(r->type));
    json_kv("type_name", r->type_name);
    json_kv("chat", r->chat);
    json_kv("from", r->from);
    printf(",\"ids\":[");
    for (i = 0; i < r->n_ids; i++) {
        printf("%s\"", i ? "," : "");
        json_str(stdout, r->ids[i]);
        printf("\"");
    }
    printf("],\"timestamp\":%lld}\n", (long long)r->timestamp);
}

static void on_decrypt_failed(wa_client *c, const wa_client_decrypt_failure *f, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"decrypt_failed\"");
    json_kv("id", f->id);
    json_kv("chat", f->chat);
    json_kv("sender", f->sender);
    json_kv("enc_type", f->enc_type);
    json_kv("error", wa_err_name(f->err));
    json_kv("reason", f->reason);
    printf(",\"retry_count\":%d,\"gave_up\":%s}\n", f->retry_count, f->gave_up ? "true" : "false");
}

static void on_sent(wa_client *c, const char *id, int err, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd == CMD_SEND) {
        if (strcmp(id, k->send_id) != 0)
            return;
        if (err)
            printf("FAILED %s\n", wa_err_name(err));
        else
            printf("%s\n", id);
        stop_and_quit(k, err ? 1 : 0);
        return;
    }
    if (k->cmd != CMD_LISTEN)
        return;
    if (err) {
        printf("{\"event\":\"send_failed\"");
        json_kv("id", id);
        json_kv("error", wa_err_name(err));
        printf("}\n");
    } else {
        printf("{\"event\":\"sent\"");
        json_kv("id", id);
        printf("}\n");
    }
}

static void print_group(wa_client *c, int err, const wa_client_group *g, void *ud, const char *op)
{
    size_t i;

    (void)c;
    (void)ud;
    if (err) {
        printf("{\"event\":\"error\"");
        json_kv("cmd", op);
        json_kv("error", wa_err_name(err));
        printf("}\n");
        return;
    }
    printf("{\"event\":\"group\"");
    json_kv("op", op);
    json_kv("jid", g->jid);
    json_kv("subject", g->subject);
    printf(",\"participants\":[");
    for (i = 0; i < g->n_participants; i++) {
        const wa_client_group_participant *p = &g->participants[i];
        printf("%s{\"jid\":\"", i ? "," : "");
        json_str(stdout, p->jid);
        printf("\",\"lid\":\"");
        json_str(stdout, p->lid);
        printf("\",\"admin\":%d,\"error\":%d}", p->admin, p->error);
    }
    printf("]}\n");
}

static void on_group_create(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, "create");
}

static void on_group_info(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, "info");
}

static const char *const group_ops[] = {NULL, "add", "remove", "promote", "demote"};

static void on_group_add(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, group_ops[WA_GROUP_ADD]);
}

static void on_group_remove(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, group_ops[WA_GROUP_REMOVE]);
}

static void on_group_promote(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, group_ops[WA_GROUP_PROMOTE]);
}

static void on_group_demote(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    print_group(c, err, g, ud, group_ops[WA_GROUP_DEMOTE]);
}

static void on_group_update(wa_client *c, const wa_client_group_update *u, void *ud)
{
    cli *k = ud;
    size_t i;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"group_update\"");
    json_kv("jid", u->jid);
    json_kv("action", u->action);
    json_kv("actor", u->actor);
    json_kv("subject", u->subject);
    printf(",\"participants\":[");
    for (i = 0; i < u->n_participants; i++) {
        printf("%s\"", i ? "," : "");
        json_str(stdout, u->participants[i]);
        printf("\"");
    }
    printf("],\"timestamp\":%lld}\n", (long long)u->timestamp);
}

static void on_presence(wa_client *c, const wa_client_presence_update *p, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"presence\"");
    json_kv("from", p->from);
    printf(",\"available\":%s,\"last_seen\":%lld}\n", p->available ? "true" : "false",
           (long long)p->last_seen);
}

static void on_chat_state(wa_client *c, const wa_client_chat_state_update *s, void *ud)
{
    static const char *const names[] = {"idle", "composing", "paused", "recording"};
    cli *k = ud;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"chat_state\"");
    json_kv("chat", s->chat);
    json_kv("sender", s->sender);
    json_kv("state", s->state >= 0 && s->state <= WA_CHAT_RECORDING ? names[s->state] : "idle");
    printf("}\n");
}

static void on_identity_changed(wa_client *c, const char *jid, void *ud)
{
    cli *k = ud;

    (void)c;
    if (k->cmd != CMD_LISTEN)
        return;
    printf("{\"event\":\"identity_changed\"");
    json_kv("jid", jid);
    printf("}\n");
}

/* ---- stdin commands (listen) ---------------------------------------------------------------- */

/* Split the next space-separated word off *p (NUL-terminated in place). NULL at the end. */
static char *word(char **p)
{
    char *s = *p, *e;

    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return NULL;
    e = s;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    if (*e)
        *e++ = '\0';
    *p = e;
    return s;
}

static char *rest(char **p)
{
    char *s = *p;

    while (*s == ' ' || *s == '\t')
        s++;
    return *s ? s : NULL;
}

static void cmd_result(const char *cmd, int rc, const char *id)
{
    if (rc) {
        printf("{\"event\":\"error\"");
        json_kv("cmd", cmd);
        json_kv("error", wa_err_name(rc));
        printf("}\n");
    } else if (id) {
        printf("{\"event\":\"queued\"");
        json_kv("cmd", cmd);
        json_kv("id", id);
        printf("}\n");
    }
}

/* The vCard of send-contact: the contents of the file arg names (up to 64 KiB), else arg itself
 * with "\\n" written as a line break. Heap (free), NULL on failure. */
static char *vcard_arg(const char *arg)
{
    FILE *f = fopen(arg, "rb");
    char *v = malloc(65537), *o;
    size_t n;

    if (!v) {
        if (f)
            fclose(f);
        return NULL;
    }
    if (f) {
        n = fread(v, 1, 65536, f);
        fclose(f);
        v[n] = '\0';
        return v;
    }
    for (o = v; *arg && o - v < 65536; arg++) {
        if (arg[0] == '\\' && arg[1] == 'n') {
            *o++ = '\n';
            arg++;
        } else {
            *o++ = *arg;
        }
    }
    *o = '\0';
    return v;
}

static void run_command(cli *k, char *line)
{
    char *p = line, *cmd = word(&p), *a1, *a2, *a3, *text;
    char id[WA_CLIENT_MSG_ID_MAX];
    const char *args[MAX_ARGS];
    size_t n = 0;
    int rc;

    if (!cmd)
        return;
    if (!strcmp(cmd, "quit")) {
        stop_and_quit(k, 0);
        return;
    }
    if (!k->client) {
        cmd_result(cmd, WA_ESTATE, NULL);
        return;
    }
    id[0] = '\0';
    if (!strcmp(cmd, "send")) {
        a1 = word(&p);
        text = rest(&p);
        rc = a1 && text ? wa_client_send_text(k->client, a1, text, NULL, id) : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "reply")) {
        wa_client_send_opts o;
        memset(&o, 0, sizeof o);
        a1 = word(&p);
        o.quoted_id = word(&p);
        text = rest(&p);
        rc = a1 && o.quoted_id && text ? wa_client_send_text(k->client, a1, text, &o, id)
                                       : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "react")) {
        a1 = word(&p);
        a2 = word(&p);
        a3 = word(&p);
        text = word(&p); /* the sender of the target (groups); none: the chat peer */
        rc = a1 && a2 && a3 ? wa_client_send_reaction(k->client, a1, a2, text, 0, a3, id)
                            : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "edit")) {
        a1 = word(&p);
        a2 = word(&p);
        text = rest(&p);
        rc = a1 && a2 && text ? wa_client_send_edit(k->client, a1, a2, text, id) : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "revoke")) {
        a1 = word(&p);
        a2 = word(&p);
        rc = a1 && a2 ? wa_client_send_revoke(k->client, a1, a2, id) : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "read")) {
        const char *ids[1];
        a1 = word(&p);
        a2 = word(&p);
        a3 = word(&p);
        ids[0] = a2;
        rc = a1 && a2 ? wa_client_mark_read(k->client, a1, a3, ids, 1) : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
        if (rc == 0)
            printf("{\"event\":\"read_sent\"}\n");
    } else if (!strcmp(cmd, "group-create")) {
        char *list = word(&p), *q;
        text = rest(&p);
        n = 0;
        for (q = list; q && *q && n < MAX_ARGS;) {
            char *comma = strchr(q, ',');
            if (comma)
                *comma = '\0';
            if (*q)
                args[n++] = q;
            q = comma ? comma + 1 : NULL;
        }
        rc =
            text ? wa_client_group_create(k->client, text, args, n, on_group_create, k) : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
    } else if (!strcmp(cmd, "group-info")) {
        a1 = word(&p);
        rc = a1 ? wa_client_group_metadata(k->client, a1, on_group_info, k) : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
    } else if (!strncmp(cmd, "group-", 6)) {
        static const wa_client_group_cb cbs[] = {NULL, on_group_add, on_group_remove,
                                                 on_group_promote, on_group_demote};
        int action = 0, i;
        for (i = 1; i <= WA_GROUP_DEMOTE; i++)
            if (!strcmp(cmd + 6, group_ops[i]))
                action = i;
        a1 = word(&p);
        while (n < MAX_ARGS && (a2 = word(&p)) != NULL)
            args[n++] = a2;
        rc = action && a1 && n
                 ? wa_client_group_participants(k->client, a1, action, args, n, cbs[action], k)
                 : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
    } else if (!strcmp(cmd, "send-location")) {
        wa_client_location loc;
        char *end1 = NULL, *end2 = NULL, *bar;
        memset(&loc, 0, sizeof loc);
        a1 = word(&p);
        a2 = word(&p);
        a3 = word(&p);
        text = rest(&p); /* NAME[|ADDRESS] */
        if (a2)
            loc.latitude = strtod(a2, &end1);
        if (a3)
            loc.longitude = strtod(a3, &end2);
        if (text && (bar = strchr(text, '|')) != NULL) {
            *bar = '\0';
            loc.address = bar + 1;
        }
        loc.name = text;
        rc = a1 && end1 && !*end1 && end2 && !*end2
                 ? wa_client_send_location(k->client, a1, &loc, NULL, id)
                 : WA_EINVAL;
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "send-contact")) {
        char *vcard;
        a1 = word(&p);
        a2 = word(&p);
        text = rest(&p);
        vcard = text ? vcard_arg(text) : NULL;
        rc = a1 && a2 && vcard ? wa_client_send_contact(k->client, a1, a2, vcard, NULL, id)
                               : WA_EINVAL;
        free(vcard);
        cmd_result(cmd, rc, id);
    } else if (!strcmp(cmd, "chatstate")) {
        a1 = word(&p);
        a2 = word(&p);
        rc =
            !a1 || !a2                 ? WA_EINVAL
            : !strcmp(a2, "composing") ? wa_client_send_chat_state(k->client, a1, WA_CHAT_COMPOSING)
            : !strcmp(a2, "paused")    ? wa_client_send_chat_state(k->client, a1, WA_CHAT_PAUSED)
            : !strcmp(a2, "recording") ? wa_client_send_chat_state(k->client, a1, WA_CHAT_RECORDING)
                                       : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
        if (rc == 0)
            printf("{\"event\":\"chatstate_sent\"}\n");
    } else if (!strcmp(cmd, "presence")) {
        a1 = word(&p);
        rc = !a1                        ? WA_EINVAL
             : !strcmp(a1, "available") ? wa_client_send_presence(k->client, WA_PRESENCE_AVAILABLE)
             : !strcmp(a1, "unavailable")
                 ? wa_client_send_presence(k->client, WA_PRESENCE_UNAVAILABLE)
                 : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
        if (rc == 0)
            printf("{\"event\":\"presence_sent\"}\n");
    } else if (!strcmp(cmd, "subscribe")) {
        a1 = word(&p);
        rc = a1 ? wa_client_subscribe_presence(k->client, a1) : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
        if (rc == 0)
            printf("{\"event\":\"subscribe_sent\"}\n");
    } else if (!strcmp(cmd, "check")) {
        while (n < MAX_ARGS && (a1 = word(&p)) != NULL)
            args[n++] = a1;
        rc = n ? wa_client_check_phones(k->client, args, n, print_check, k) : WA_EINVAL;
        cmd_result(cmd, rc, NULL);
    } else {
        cmd_result(cmd, WA_EINVAL, NULL);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];

    (void)h;
    (void)suggested;
    buf->base = slab;
    buf->len = sizeof slab;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cli *k = s->data;
    ssize_t i;

    if (nread < 0) { /* EOF: no more commands (the client keeps listening) */
        uv_read_stop(s);
        return;
    }
    for (i = 0; i < nread && !k->quitting; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            k->line[k->line_len] = '\0';
            if (k->line_len && k->line[k->line_len - 1] == '\r')
                k->line[k->line_len - 1] = '\0';
            run_command(k, k->line);
            k->line_len = 0;
        } else if (k->line_len + 1 < LINE_MAX_LEN) {
            k->line[k->line_len++] = ch;
        }
    }
}

static void open_stdin(cli *k)
{
    uv_handle_type t = uv_guess_handle(0);

    if (t == UV_TTY) {
        uv_tty_t *tty = malloc(sizeof *tty);
        if (!tty || uv_tty_init(k->loop, tty, 0, 1) != 0) {
            free(tty);
            return;
        }
        k->in = (uv_stream_t *)tty;
    } else if (t == UV_NAMED_PIPE) {
        uv_pipe_t *pipe = malloc(sizeof *pipe);
        if (!pipe || uv_pipe_init(k->loop, pipe, 0) != 0) {
            free(pipe);
            return;
        }
        if (uv_pipe_open(pipe, 0) != 0) {
            uv_close((uv_handle_t *)pipe, close_cb);
            return;
        }
        k->in = (uv_stream_t *)pipe;
    } else {
        return; /* a file or nothing: no commands */
    }
    k->line = malloc(LINE_MAX_LEN);
    if (!k->line) {
        uv_close((uv_handle_t *)k->in, close_cb);
        k->in = NULL;
        return;
    }
    k->in->data = k;
    uv_read_start(k->in, alloc_cb, read_cb);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cli *k = s->data;

    (void)signum;
    if (k->quitting)
        return;
    stop_and_quit(k, 0);
}

/* Fetch the current WhatsApp Web version from url into out (WG_WEBVERSION_STR_MAX): the shared
 * code of src/webversion (also wagate's WA_VERSION=auto). 0 or -1 with a warning on stderr.
 * Blocking: runs once before the loop starts. */
static int fetch_version(const char *url, char *out)
{
    char err[160];

    if (wg_webversion_fetch(url, VERSION_TIMEOUT_S, out, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "wa-cli: warning: version fetch from %s failed: %s\n", url, err);
    return -1;
}

int main(int argc, char **argv)
{
    static const wa_client_callbacks cbs = {
        .qr = on_qr,
        .pair_code = on_pair_code,
        .paired = on_paired,
        .connected = on_connected,
        .disconnected = on_disconnected,
        .logged_out = on_logged_out,
        .message = on_message,
        .receipt = on_receipt,
        .decrypt_failed = on_decrypt_failed,
        .sent = on_sent,
        .group_update = on_group_update,
        .presence = on_presence,
        .chat_state = on_chat_state,
        .identity_changed = on_identity_changed,
    };
    wa_client_config cfg;
    uv_loop_t loop;
    cli k;
    const char *store_path = NULL, *phone = NULL, *root_hex = NULL, *inbox_path = NULL;
    const char *version_url = VERSION_URL_DEFAULT;
    char fetched[VERSION_STR_MAX];
    const char *pos[MAX_ARGS];
    size_t npos = 0;
    uint8_t root[32];
    int i, rc, level;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    wa_log_set_level(WA_LOG_WARN);
    memset(&cfg, 0, sizeof cfg);
    memset(&k, 0, sizeof k);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || !a[1]) {
            if (!k.cmd) {
                k.cmd = !strcmp(a, "pair")     ? CMD_PAIR
                        : !strcmp(a, "listen") ? CMD_LISTEN
                        : !strcmp(a, "send")   ? CMD_SEND
                        : !strcmp(a, "check")  ? CMD_CHECK
                                               : -1;
                if (k.cmd < 0) {
                    fprintf(stderr, "wa-cli: unknown command %s\n", a);
                    usage(stderr);
                    return 2;
                }
            } else if (npos < MAX_ARGS) {
                pos[npos++] = a;
            } else {
                fprintf(stderr, "wa-cli: too many arguments\n");
                return 2;
            }
            continue;
        }
        if (!strcmp(a, "--rotate-signed-prekey")) {
            k.rotate = 1;
            continue;
        }
        if (!strcmp(a, "--auto-read")) {
            k.auto_read = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--store"))
            store_path = v;
        else if (!strcmp(a, "--account"))
            cfg.account = v;
        else if (!strcmp(a, "--url"))
            cfg.ws_url = v;
        else if (!strcmp(a, "--root-key"))
            root_hex = v;
        else if (!strcmp(a, "--ca"))
            cfg.ca_file = v;
        else if (!strcmp(a, "--proxy"))
            cfg.proxy = v;
        else if (!strcmp(a, "--keepalive"))
            cfg.keepalive_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reconnect-base"))
            cfg.reconnect_base_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reconnect-max"))
            cfg.reconnect_max_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--version"))
            cfg.version = v;
        else if (!strcmp(a, "--version-url"))
            version_url = v;
        else if (!strcmp(a, "--push-name"))
            cfg.push_name = v;
        else if (!strcmp(a, "--exit-on-message"))
            k.exit_on = v;
        else if (!strcmp(a, "--inbox"))
            inbox_path = v;
        else if (!strcmp(a, "--phone"))
            phone = v;
        else if (!strcmp(a, "--log-level")) {
            if (wa_log_level_parse(v, &level) != 0) {
                fprintf(stderr, "wa-cli: bad log level %s\n", v);
                return 2;
            }
            wa_log_set_level(level);
        } else {
            fprintf(stderr, "wa-cli: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!store_path || !k.cmd || (k.cmd == CMD_SEND && npos != 2) ||
        (k.cmd == CMD_CHECK && npos == 0) ||
        ((k.cmd == CMD_PAIR || k.cmd == CMD_LISTEN) && npos != 0)) {
        usage(stderr);
        return 2;
    }
    k.args = pos;
    k.nargs = npos;
    if (root_hex) {
        if (wa_hex_decode(root, sizeof root, root_hex, strlen(root_hex)) != 0) {
            fprintf(stderr, "wa-cli: --root-key needs 64 hex digits\n");
            return 2;
        }
        cfg.root_key = root;
    }
    if (cfg.version && !strcmp(cfg.version, "auto")) {
        cfg.version = NULL; /* libwa's default unless the fetch succeeds */
        if (fetch_version(version_url, fetched) == 0) {
            cfg.version = fetched;
            fprintf(stderr, "wa-cli: WhatsApp Web version %s (from %s)\n", fetched, version_url);
        } else {
            fprintf(stderr, "wa-cli: warning: using the default version %s\n",
                    WA_CLIENT_DEFAULT_VERSION);
        }
    }
    if (phone && k.cmd != CMD_PAIR) {
        fprintf(stderr, "wa-cli: --phone goes with pair\n");
        return 2;
    }
    if (inbox_path && k.cmd != CMD_LISTEN) {
        fprintf(stderr, "wa-cli: --inbox goes with listen\n");
        return 2;
    }
    rc = wa_store_open(store_path, NULL, &k.store);
    if (rc) {
        fprintf(stderr, "wa-cli: cannot open store %s: %s\n", store_path, wa_strerror(rc));
        return 1;
    }
    uv_loop_init(&loop);
    k.loop = &loop;
    rc = wa_client_new(&loop, k.store, &cfg, &cbs, &k, &k.client);
    if (rc) {
        fprintf(stderr, "wa-cli: %s\n", wa_strerror(rc));
        wa_store_close(k.store);
        uv_loop_close(&loop);
        return rc == WA_EINVAL ? 2 : 1;
    }
    if (k.cmd == CMD_PAIR && wa_client_jid(k.client)[0]) {
        printf("PAIRED %s\n", wa_client_jid(k.client));
        fprintf(stderr, "wa-cli: the account is already paired\n");
        k.quitting = 1; /* nothing to do */
    } else if (k.cmd != CMD_PAIR && !wa_client_jid(k.client)[0]) {
        fprintf(stderr, "wa-cli: the account is not paired (run pair first)\n");
        k.quitting = 1;
        k.exit_code = 1;
    }
    if (k.quitting) {
        wa_client_free(k.client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        wa_store_close(k.store);
        return k.exit_code;
    }
    if (phone && (rc = wa_client_pair_phone(k.client, phone)) != 0) {
        fprintf(stderr, "wa-cli: bad phone number: %s\n", wa_strerror(rc));
        wa_client_free(k.client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        wa_store_close(k.store);
        return 2;
    }
    if (inbox_path) {
        k.inbox = calloc(1, sizeof *k.inbox);
        if (k.inbox)
            k.inbox->fd = -1;
        else
            fprintf(stderr, "wa-cli: out of memory\n");
    }
    if (inbox_path && (!k.inbox || inbox_open(k.inbox, inbox_path) != 0)) {
        if (k.inbox)
            inbox_free(k.inbox);
        wa_client_free(k.client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        wa_store_close(k.store);
        return 1;
    }
    uv_signal_init(&loop, &k.sigint);
    uv_signal_init(&loop, &k.sigterm);
    k.sigint.data = k.sigterm.data = &k;
    uv_signal_start(&k.sigint, on_signal, SIGINT);
    uv_signal_start(&k.sigterm, on_signal, SIGTERM);
    uv_timer_init(&loop, &k.quit_timer);
    k.quit_timer.data = &k;
    if (k.cmd == CMD_LISTEN)
        open_stdin(&k);
    wa_client_start(k.client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    wa_store_close(k.store);
    free(k.line);
    if (k.inbox)
        inbox_free(k.inbox);
    return k.exit_code;
}
