/*
 * jwt.c - service-account key file, RS256 JWT assertion, token response (see jwt.h).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "backup/sigv4.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

/* RSA keys this size or larger only (Google issues 2048-bit). */
#define RSA_BITS_MIN  2048
#define JSON_PART_MAX 2048
#define SIG_MAX       1024

struct wg_gsa_key {
    char email[WG_GSA_EMAIL_MAX + 1];
    char token_uri[WG_GSA_URI_MAX + 1];
    char kid[WG_GSA_KID_MAX + 1];
    EVP_PKEY *pkey;
};

static int copy_field(json_t *o, const char *name, char *dst, size_t cap, int required)
{
    json_t *v = json_object_get(o, name);
    const char *s;

    if (!v) {
        dst[0] = '\0';
        return required ? WA_EINVAL : 0;
    }
    if (!json_is_string(v))
        return WA_EINVAL;
    s = json_string_value(v);
    if (strlen(s) >= cap || (required && !*s))
        return WA_EINVAL;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

int wg_gsa_key_parse(const char *json, size_t len, wg_gsa_key **out, const char **why)
{
    const char *reason = "not a JSON object";
    json_t *root = NULL, *pk, *type;
    wg_gsa_key *k = NULL;
    BIO *bio = NULL;
    int rc = WA_EINVAL;

    if (!json || !out || len > WG_GSA_FILE_MAX)
        goto out;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root))
        goto out;
    type = json_object_get(root, "type");
    reason = "\"type\" is not \"service_account\"";
    if (!json_is_string(type) || strcmp(json_string_value(type), "service_account") != 0)
        goto out;
    k = wa_calloc(1, sizeof *k);
    if (!k) {
        rc = WA_ENOMEM;
        goto out;
    }
    reason = "bad or missing \"client_email\"";
    if (copy_field(root, "client_email", k->email, sizeof k->email, 1))
        goto out;
    reason = "bad \"token_uri\"";
    if (copy_field(root, "token_uri", k->token_uri, sizeof k->token_uri, 0))
        goto out;
    if (!k->token_uri[0])
        snprintf(k->token_uri, sizeof k->token_uri, "%s", WG_GOOGLE_TOKEN_URI);
    if (strncmp(k->token_uri, "https://", 8) != 0 && strncmp(k->token_uri, "http://", 7) != 0)
        goto out;
    reason = "bad \"private_key_id\"";
    if (copy_field(root, "private_key_id", k->kid, sizeof k->kid, 0))
        goto out;
    reason = "bad or missing \"private_key\" (PEM)";
    pk = json_object_get(root, "private_key");
    if (!json_is_string(pk))
        goto out;
    bio = BIO_new_mem_buf(json_string_value(pk), (int)json_string_length(pk));
    if (!bio) {
        rc = WA_ENOMEM;
        goto out;
    }
    k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!k->pkey)
        goto out;
    reason = "\"private_key\" is not an RSA key of at least 2048 bits";
    if (EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k->pkey) < RSA_BITS_MIN)
        goto out;
    *out = k;
    k = NULL;
    reason = NULL;
    rc = 0;
out:
    BIO_free(bio);
    wg_gsa_key_free(k);
    /* the PEM text lives in jansson's strings: clear it before they are freed */
    if (root) {
        pk = json_object_get(root, "private_key");
        if (json_is_string(pk))
            wa_wipe((char *)json_string_value(pk), json_string_length(pk));
        json_decref(root);
    }
    if (why)
        *why = reason;
    return rc;
}

int wg_gsa_key_load(const char *path, wg_gsa_key **out, const char **why)
{
    char *buf = NULL;
    struct stat st;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        if (why)
            *why = "cannot open the file";
        return WA_EIO;
    }
    if (st.st_size <= 0 || st.st_size > WG_GSA_FILE_MAX) {
        close(fd);
        if (why)
            *why = "empty, or larger than 64 KiB";
        return WA_EINVAL;
    }
    buf = wa_malloc((size_t)st.st_size);
    if (!buf) {
        close(fd);
        return WA_ENOMEM;
    }
    while (len < (size_t)st.st_size) {
        n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len != (size_t)st.st_size) {
        if (why)
            *why = "read error";
        rc = WA_EIO;
    } else {
        rc = wg_gsa_key_parse(buf, len, out, why);
    }
    wa_wipe(buf, (size_t)st.st_size);
    wa_free(buf);
    return rc;
}

void wg_gsa_key_free(wg_gsa_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    wa_wipe(k, sizeof *k);
    wa_free(k);
}

const char *wg_gsa_key_email(const wg_gsa_key *k)
{
    return k->email;
}

const char *wg_gsa_key_token_uri(const wg_gsa_key *k)
{
    return k->token_uri;
}

static int append_b64url(wa_buf *out, const void *p, size_t n)
{
    size_t need = wa_base64_encoded_len(n, 1);
    int rc = wa_buf_reserve(out, need + 1);

    if (rc)
        return rc;
    wa_base64_encode((char *)out->data + out->len, p, n, 1);
    out->len += need;
    return 0;
}

/* A JSON string literal of s (jansson does the escaping). */
static char *json_str(const char *s)
{
    json_t *v = json_string(s);
    char *r;

    if (!v)
        return NULL;
    r = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(v);
    return r;
}

int wg_jwt_assertion(const wg_gsa_key *k, const char *scope, int64_t now, wa_buf *out)
{
    char header[JSON_PART_MAX], claims[JSON_PART_MAX];
    char *email = NULL, *aud = NULL, *sc = NULL, *kid = NULL;
    unsigned char sig[SIG_MAX];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = NULL;
    int rc = WA_ENOMEM, n;

    if (!k || !k->pkey || !scope || !out)
        return WA_EINVAL;
    email = json_str(k->email);
    aud = json_str(k->token_uri);
    sc = json_str(scope);
    kid = k->kid[0] ? json_str(k->kid) : NULL;
    if (!email || !aud || !sc || (k->kid[0] && !kid))
        goto out;
    if (kid)
        n = snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":%s}", kid);
    else
        n = snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    if (n < 0 || (size_t)n >= sizeof header) {
        rc = WA_ELIMIT;
        goto out;
    }
    n = snprintf(claims, sizeof claims,
                 "{\"iss\":%s,\"scope\":%s,\"aud\":%s,\"iat\":%lld,\"exp\":%lld}", email, sc, aud,
                 (long long)now, (long long)(now + WG_JWT_LIFETIME_S));
    if (n < 0 || (size_t)n >= sizeof claims) {
        rc = WA_ELIMIT;
        goto out;
    }
    wa_buf_reset(out);
    if ((rc = append_b64url(out, header, strlen(header))) || (rc = wa_buf_append_byte(out, '.')) ||
        (rc = append_b64url(out, claims, strlen(claims))))
        goto out;
    md = EVP_MD_CTX_new();
    if (!md) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = WA_ECRYPTO;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, out->data, out->len) != 1 || siglen > sizeof sig ||
        EVP_DigestSign(md, sig, &siglen, out->data, out->len) != 1)
        goto out;
    if ((rc = wa_buf_append_byte(out, '.')) || (rc = append_b64url(out, sig, siglen)))
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(email);
    free(aud);
    free(sc);
    free(kid);
    return rc;
}

int wg_jwt_token_request_body(const char *assertion, wa_buf *out)
{
    static const char head[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    int rc;

    wa_buf_reset(out);
    if ((rc = wa_buf_append(out, head, sizeof head - 1)))
        return rc;
    /* base64url and '.' are unreserved: encoding is the identity, but stay correct */
    return wg_sigv4_uri_encode(out, assertion, strlen(assertion), 0);
}

int wg_token_response_parse(const char *json, size_t len, char *token, size_t cap,
                            int64_t *expires_in)
{
    json_t *root, *tok, *exp, *type;
    const char *t;
    size_t i, n;
    int rc = WA_EINVAL;

    if (!json || len > WG_TOKEN_JSON_MAX)
        return WA_EINVAL;
    root = json_loadb(json, len, 0, NULL);
    if (!json_is_object(root))
        goto out;
    tok = json_object_get(root, "access_token");
    exp = json_object_get(root, "expires_in");
    type = json_object_get(root, "token_type");
    if (!json_is_string(tok) || !json_is_integer(exp) || json_integer_value(exp) <= 0)
        goto out;
    if (type && (!json_is_string(type) || strcasecmp(json_string_value(type), "Bearer") != 0))
        goto out;
    t = json_string_value(tok);
    n = strlen(t);
    if (n == 0)
        goto out;
    /* it goes into a header line: printable ASCII only */
    for (i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            goto out;
    if (n >= cap) {
        rc = WA_ELIMIT;
        goto out;
    }
    memcpy(token, t, n + 1);
    *expires_in = (int64_t)json_integer_value(exp);
    rc = 0;
out:
    if (root) {
        tok = json_object_get(root, "access_token");
        if (json_is_string(tok))
            wa_wipe((char *)json_string_value(tok), json_string_length(tok));
        json_decref(root);
    }
    return rc;
}
