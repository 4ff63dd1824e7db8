/*
 * selfsigned.c - a throw-away self-signed server certificate for the simulator and tests.
 *
 * X.509 v3 (RFC 5280) with an EC P-256 key (accepted by every TLS stack, unlike Ed25519
 * certificates, which browsers and Node do not take), SHA-256 signature, a random 128-bit
 * serial, and:
 *   basicConstraints   critical, CA:TRUE   (the certificate is its own trust anchor)
 *   keyUsage           critical, digitalSignature + keyCertSign
 *   extendedKeyUsage   serverAuth
 *   subjectAltName     DNS:localhost, IP:127.0.0.1, IP:::1 and the given host
 *   subject/authority key identifiers
 * The SAN list is built as GENERAL_NAMEs, not from a config string, so a host name can never
 * inject extra names.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/alloc.h"
#include "core/util.h"
#include "tls/tls_int.h"
#include "wa/error.h"

#define SERIAL_BYTES            16
#define NOT_BEFORE_SKEW_SECONDS 3600
#define DEFAULT_CN              "localhost"

/* DNS name syntax (letters, digits, '-', '.'), not empty, no empty label at the start. */
static int valid_dns_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > WA_TLS_MAX_HOSTNAME || s[0] == '.' || s[0] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
        if (c == '.' && i + 1 < n && s[i + 1] == '.')
            return 0;
    }
    return 1;
}

static int push_dns(GENERAL_NAMES *gens, const char *name)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (!g || !ia5 || !ASN1_STRING_set(ia5, name, (int)strlen(name)))
        goto fail;
    GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(gens, g))
        goto fail;
    return 0;
fail:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(g);
    return WA_ENOMEM;
}

static int push_ip(GENERAL_NAMES *gens, const char *ip)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OCTET_STRING *os = a2i_IPADDRESS(ip);

    if (!g || !os)
        goto fail;
    GENERAL_NAME_set0_value(g, GEN_IPADD, os);
    os = NULL;
    if (!sk_GENERAL_NAME_push(gens, g))
        goto fail;
    return 0;
fail:
    ASN1_OCTET_STRING_free(os);
    GENERAL_NAME_free(g);
    return WA_ENOMEM;
}

static int add_san(X509 *x, const char *host)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = WA_ENOMEM;

    if (!gens)
        return WA_ENOMEM;
    if (push_dns(gens, "localhost") || push_ip(gens, "127.0.0.1") || push_ip(gens, "::1"))
        goto out;
    if (host && strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 &&
        strcmp(host, "::1") != 0) {
        if (wa__tls_is_ip_literal(host) ? push_ip(gens, host) : push_dns(gens, host))
            goto out;
    }
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 ? 0 : WA_ETLS;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return WA_ETLS;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : WA_ENOMEM;
}

static int set_serial(X509 *x)
{
    uint8_t raw[SERIAL_BYTES];
    BIGNUM *bn;
    int rc = WA_ETLS;

    if (wa_random(raw, sizeof raw))
        return WA_EIO;
    raw[0] &= 0x7f; /* positive */
    raw[0] |= 0x40; /* and full length */
    bn = BN_bin2bn(raw, sizeof raw, NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = 0;
    BN_free(bn);
    return rc;
}

static int set_name(X509 *x, const char *cn)
{
    X509_NAME *name = X509_get_subject_name(x);

    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"wagate", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name))
        return WA_ETLS;
    return 0;
}

/* Copy a memory BIO's contents into a NUL-terminated wa_malloc string. */
static int bio_to_string(BIO *bio, char **out)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s;

    if (n <= 0)
        return WA_ETLS;
    s = wa_malloc((size_t)n + 1);
    if (!s)
        return WA_ENOMEM;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *out = s;
    return 0;
}

int wa_tls_generate_self_signed(const char *host, char **cert_pem, char **key_pem)
{
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    BIO *cbio = NULL, *kbio = NULL;
    char *cert = NULL, *key = NULL;
    int rc;

    if (host && !wa__tls_is_ip_literal(host) && !valid_dns_name(host))
        return WA_EINVAL;
    ERR_clear_error();
    pkey = EVP_EC_gen("P-256");
    x = X509_new();
    if (!pkey || !x) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = WA_ETLS;
    if (!X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -NOT_BEFORE_SKEW_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), WA_TLS_SELF_SIGNED_DAYS, 0, NULL) ||
        !X509_set_pubkey(x, pkey))
        goto out;
    rc = set_serial(x);
    if (!rc)
        rc = set_name(x, host ? host : DEFAULT_CN);
    if (!rc)
        rc = add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    if (!rc)
        rc = add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
    if (!rc)
        rc = add_ext(x, NID_ext_key_usage, "serverAuth");
    if (!rc)
        rc = add_ext(x, NID_subject_key_identifier, "hash");
    if (!rc)
        rc = add_ext(x, NID_authority_key_identifier, "keyid:always");
    if (!rc)
        rc = add_san(x, host);
    if (rc)
        goto out;
    if (X509_sign(x, pkey, EVP_sha256()) <= 0) {
        rc = WA_ETLS;
        goto out;
    }
    cbio = BIO_new(BIO_s_mem());
    kbio = BIO_new(BIO_s_secmem()); /* wiped when freed */
    if (!cbio || !kbio) {
        rc = WA_ENOMEM;
        goto out;
    }
    if (!PEM_write_bio_X509(cbio, x) ||
        !PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL)) {
        rc = WA_ETLS;
        goto out;
    }
    rc = bio_to_string(cbio, &cert);
    if (!rc)
        rc = bio_to_string(kbio, &key);
    if (rc)
        goto out;
    *cert_pem = cert;
    *key_pem = key;
    cert = key = NULL;
out:
    wa_free(cert);
    wa_tls_pem_free(key);
    BIO_free(cbio);
    BIO_free(kbio);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

void wa_tls_pem_free(char *pem)
{
    if (!pem)
        return;
    wa_wipe(pem, strlen(pem));
    wa_free(pem);
}
