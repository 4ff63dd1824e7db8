/* test_crypto.c - known answers for SHA-256, HMAC (RFC 4231), HKDF (RFC 5869), PBKDF2-SHA256,
 * AES-GCM (GCM spec test cases 13/14/16), AES-CTR/CBC (NIST SP 800-38A), X25519 (RFC 7748
 * 5.2 and 6.1), XEdDSA against npm libsignal 6.0.0 (tests/vectors/xeddsa.txt), and the Signal
 * crypto provider callbacks.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <signal/curve.h>
#include <signal/signal_protocol.h>

#include "core/alloc.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "crypto/vectors.h"
#include "wa/error.h"

static void assert_hex(const uint8_t *got, size_t n, const char *hex)
{
    size_t len;
    uint8_t *want = tv_hex(hex, &len);

    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(want);
}

static void test_sha256(void **state)
{
    uint8_t out[32];
    wa_sha256_ctx c;

    (void)state;
    assert_int_equal(wa_sha256(out, "abc", 3), 0);
    assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(wa_sha256(out, NULL, 0), 0);
    assert_hex(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(wa_sha256_2(out, "a", 1, "bc", 2), 0);
    assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(wa_sha256_init(&c), 0);
    assert_int_equal(wa_sha256_update(&c, "ab", 2), 0);
    assert_int_equal(wa_sha256_update(&c, "c", 1), 0);
    assert_int_equal(wa_sha256_final(&c, out), 0);
    wa_sha256_cleanup(&c);
    assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hmac(void **state)
{
    uint8_t key[20], out[32];
    wa_hmac_sha256_ctx c;

    (void)state;
    /* RFC 4231 test case 1 */
    memset(key, 0x0b, sizeof key);
    assert_int_equal(wa_hmac_sha256(out, key, 20, "Hi There", 8), 0);
    assert_hex(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* RFC 4231 test case 2, incremental, twice on one context */
    assert_int_equal(wa_hmac_sha256_init(&c, (const uint8_t *)"Jefe", 4), 0);
    assert_int_equal(wa_hmac_sha256_update(&c, "what do ya want ", 16), 0);
    assert_int_equal(wa_hmac_sha256_update(&c, "for nothing?", 12), 0);
    assert_int_equal(wa_hmac_sha256_final(&c, out), 0);
    assert_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(wa_hmac_sha256_update(&c, "what do ya want for nothing?", 28), 0);
    assert_int_equal(wa_hmac_sha256_final(&c, out), 0);
    wa_hmac_sha256_cleanup(&c);
    assert_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* empty key == 32 zero bytes (RFC 2104 zero padding) */
    {
        uint8_t zero[32] = {0}, a[32], b[32];
        assert_int_equal(wa_hmac_sha256(a, NULL, 0, "x", 1), 0);
        assert_int_equal(wa_hmac_sha256(b, zero, 32, "x", 1), 0);
        assert_memory_equal(a, b, 32);
        assert_int_equal(wa_hmac_sha256_init(&c, NULL, 0), 0);
        assert_int_equal(wa_hmac_sha256_update(&c, "x", 1), 0);
        assert_int_equal(wa_hmac_sha256_final(&c, b), 0);
        wa_hmac_sha256_cleanup(&c);
        assert_memory_equal(a, b, 32);
    }
}

static void test_hkdf(void **state)
{
    uint8_t ikm[22], salt[13], info[10], okm[42];
    size_t i;

    (void)state;
    memset(ikm, 0x0b, sizeof ikm);
    for (i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)i;
    for (i = 0; i < sizeof info; i++)
        info[i] = (uint8_t)(0xf0 + i);
    /* RFC 5869 A.1 */
    assert_int_equal(wa_hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10), 0);
    assert_hex(
        okm, 42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    /* RFC 5869 A.3: empty salt and info */
    assert_int_equal(wa_hkdf_sha256(okm, 42, NULL, 0, ikm, 22, NULL, 0), 0);
    assert_hex(
        okm, 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    /* empty IKM (Noise Split) works and differs from a one-byte IKM */
    {
        uint8_t a[64], b[64];
        assert_int_equal(wa_hkdf_sha256(a, 64, salt, 13, NULL, 0, NULL, 0), 0);
        assert_int_equal(wa_hkdf_sha256(b, 64, salt, 13, (const uint8_t *)"", 0, NULL, 0), 0);
        assert_memory_equal(a, b, 64);
    }
    assert_int_equal(wa_hkdf_sha256(okm, 0, NULL, 0, ikm, 22, NULL, 0), WA_EINVAL);
    {
        static uint8_t big[WA_HKDF_SHA256_MAX_OUT + 1];
        assert_int_equal(wa_hkdf_sha256(big, sizeof big, NULL, 0, ikm, 22, NULL, 0), WA_EINVAL);
        assert_int_equal(wa_hkdf_sha256(big, sizeof big - 1, NULL, 0, ikm, 22, NULL, 0), 0);
    }
}

static void test_pbkdf2(void **state)
{
    uint8_t out[64];

    (void)state;
    /* the RFC 6070 inputs with HMAC-SHA256 (widely published answers) */
    assert_int_equal(wa_pbkdf2_sha256(out, 32, "password", 8, (const uint8_t *)"salt", 4, 1), 0);
    assert_hex(out, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    assert_int_equal(wa_pbkdf2_sha256(out, 32, "password", 8, (const uint8_t *)"salt", 4, 2), 0);
    assert_hex(out, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
    assert_int_equal(wa_pbkdf2_sha256(out, 32, "password", 8, (const uint8_t *)"salt", 4, 4096), 0);
    assert_hex(out, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    /* RFC 7914 section 11 */
    assert_int_equal(wa_pbkdf2_sha256(out, 64, "passwd", 6, (const uint8_t *)"salt", 4, 1), 0);
    assert_hex(out, 64,
               "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b64599"
               "1664b39d77ef317c71b845b1e30bd509112041d3a19783");
    assert_int_equal(wa_pbkdf2_sha256(out, 32, "p", 1, (const uint8_t *)"s", 1, 0), WA_EINVAL);
}

static void test_gcm(void **state)
{
    uint8_t key[32], iv[12], *pt, *aad, *ct, buf[128], out[128];
    size_t ptl, aadl, ctl;

    (void)state;
    /* GCM spec test case 13: zero key, zero IV, empty plaintext */
    memset(key, 0, sizeof key);
    memset(iv, 0, sizeof iv);
    assert_int_equal(wa_aes_gcm_encrypt(buf, key, iv, NULL, 0, NULL, 0), 0);
    assert_hex(buf, 16, "530f8afbc74536b9a963b4f1c4cb738b");
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, NULL, 0, buf, 16), 0);
    /* test case 14: 16 zero bytes */
    memset(out, 0, 16);
    assert_int_equal(wa_aes_gcm_encrypt(buf, key, iv, NULL, 0, out, 16), 0);
    assert_hex(buf, 32, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    /* test case 16: 60-byte plaintext with AAD */
    tv_hex_into(key, 32, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    tv_hex_into(iv, 12, "cafebabefacedbaddecaf888");
    pt = tv_hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532f"
                "cf0e2449a6b525b16aedf5aa0de657ba637b39",
                &ptl);
    aad = tv_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2", &aadl);
    ct = tv_hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7"
                "b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b",
                &ctl);
    assert_int_equal(ctl, ptl + 16);
    assert_int_equal(wa_aes_gcm_encrypt(buf, key, iv, aad, aadl, pt, ptl), 0);
    assert_memory_equal(buf, ct, ctl);
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl, ct, ctl), 0);
    assert_memory_equal(out, pt, ptl);
    /* in place */
    memcpy(buf, pt, ptl);
    assert_int_equal(wa_aes_gcm_encrypt(buf, key, iv, aad, aadl, buf, ptl), 0);
    assert_memory_equal(buf, ct, ctl);
    assert_int_equal(wa_aes_gcm_decrypt(buf, key, iv, aad, aadl, buf, ctl), 0);
    assert_memory_equal(buf, pt, ptl);
    /* tampered ciphertext, tag, AAD, IV; too short */
    memcpy(buf, ct, ctl);
    buf[3] ^= 1;
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl, buf, ctl), WA_ECRYPTO);
    memcpy(buf, ct, ctl);
    buf[ctl - 1] ^= 0x80;
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl, buf, ctl), WA_ECRYPTO);
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl - 1, ct, ctl), WA_ECRYPTO);
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, NULL, 0, ct, ctl), WA_ECRYPTO);
    iv[11] ^= 1;
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl, ct, ctl), WA_ECRYPTO);
    assert_int_equal(wa_aes_gcm_decrypt(out, key, iv, aad, aadl, ct, 15), WA_ECRYPTO);
    free(pt);
    free(aad);
    free(ct);
}

static const char nist_key256[] =
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
static const char nist_pt[] = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                              "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

static void test_ctr_cbc(void **state)
{
    uint8_t key[32], iv[16], pt[64], buf[96], out[96];
    size_t n;

    (void)state;
    tv_hex_into(key, 32, nist_key256);
    tv_hex_into(pt, 64, nist_pt);
    /* SP 800-38A F.5.5 CTR-AES256 */
    tv_hex_into(iv, 16, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    assert_int_equal(wa_aes_ctr(buf, key, iv, pt, 64), 0);
    assert_hex(buf, 64,
               "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce8"
               "7017ba2d84988ddfc9c58db67aada613c2dd08457941a6");
    assert_int_equal(wa_aes_ctr(buf, key, iv, buf, 64), 0);
    assert_memory_equal(buf, pt, 64);
    /* SP 800-38A F.2.5 CBC-AES256, plus one full PKCS#7 padding block */
    tv_hex_into(iv, 16, "000102030405060708090a0b0c0d0e0f");
    assert_int_equal(wa_aes_cbc_encrypt(buf, &n, key, iv, pt, 64), 0);
    assert_int_equal(n, 80);
    assert_hex(buf, 64,
               "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa5"
               "30e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b");
    assert_int_equal(wa_aes_cbc_decrypt(out, &n, key, iv, buf, 80), 0);
    assert_int_equal(n, 64);
    assert_memory_equal(out, pt, 64);
    /* without the padding block the last byte (0x10) claims 16 bytes of padding that are not
     * all 0x10: bad padding */
    assert_int_equal(wa_aes_cbc_decrypt(out, &n, key, iv, buf, 64), WA_ECRYPTO);
    assert_int_equal(wa_aes_cbc_decrypt(out, &n, key, iv, buf, 63), WA_ECRYPTO);
    assert_int_equal(wa_aes_cbc_decrypt(out, &n, key, iv, buf, 0), WA_ECRYPTO);
    /* padding sizes 1..16 round-trip */
    for (size_t len = 0; len <= 33; len++) {
        assert_int_equal(wa_aes_cbc_encrypt(buf, &n, key, iv, pt, len), 0);
        assert_int_equal(n, (len / 16 + 1) * 16);
        assert_int_equal(wa_aes_cbc_decrypt(out, &n, key, iv, buf, (len / 16 + 1) * 16), 0);
        assert_int_equal(n, len);
        assert_memory_equal(out, pt, len);
    }
    assert_int_equal(wa_aes_crypt(WA_AES_CTR, 1, key, 20, iv, pt, 16, buf, &n), WA_EINVAL);
}

static void test_x25519_rfc7748(void **state)
{
    uint8_t k[32], u[32], out[32], tmp[32];
    int i;

    (void)state;
    /* section 5.2 */
    tv_hex_into(k, 32, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    tv_hex_into(u, 32, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    assert_int_equal(wa_x25519(out, k, u), 0);
    assert_hex(out, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    tv_hex_into(k, 32, "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d");
    tv_hex_into(u, 32, "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493");
    assert_int_equal(wa_x25519(out, k, u), 0);
    assert_hex(out, 32, "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
    /* iterated: k = u = 9; after 1 and 1000 iterations */
    memset(k, 0, 32);
    k[0] = 9;
    memcpy(u, k, 32);
    for (i = 1; i <= 1000; i++) {
        assert_int_equal(wa_x25519(tmp, k, u), 0);
        memcpy(u, k, 32);
        memcpy(k, tmp, 32);
        if (i == 1)
            assert_hex(k, 32, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
    assert_hex(k, 32, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

static void test_x25519_alice_bob(void **state)
{
    uint8_t a[32], b[32], pa[32], pb[32], s1[32], s2[32], zero[32] = {0}, one[32] = {1};

    (void)state;
    /* RFC 7748 section 6.1 */
    tv_hex_into(a, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    tv_hex_into(b, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    assert_int_equal(wa_x25519_public(pa, a), 0);
    assert_hex(pa, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert_int_equal(wa_x25519_public(pb, b), 0);
    assert_hex(pb, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    assert_int_equal(wa_x25519(s1, a, pb), 0);
    assert_int_equal(wa_x25519(s2, b, pa), 0);
    assert_hex(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_memory_equal(s1, s2, 32);
    /* small-order peer keys give an all-zero secret: rejected, output untouched */
    memset(s1, 0xee, 32);
    assert_int_equal(wa_x25519(s1, a, zero), WA_ECRYPTO);
    assert_int_equal(wa_x25519(s1, a, one), WA_ECRYPTO);
    assert_int_equal(s1[0], 0xee);
    /* keygen: clamped private key, matching public key, agreement both ways */
    assert_int_equal(wa_x25519_keygen(a, pa), 0);
    assert_int_equal(a[0] & 7, 0);
    assert_int_equal(a[31] & 0xc0, 0x40);
    assert_int_equal(wa_x25519_public(pb, a), 0);
    assert_memory_equal(pa, pb, 32);
    assert_int_equal(wa_x25519_keygen(b, pb), 0);
    assert_int_equal(wa_x25519(s1, a, pb), 0);
    assert_int_equal(wa_x25519(s2, b, pa), 0);
    assert_memory_equal(s1, s2, 32);
}

static void test_xeddsa_roundtrip(void **state)
{
    uint8_t priv[32], pub[32], sig[64], sig2[64], msg[100];

    (void)state;
    memset(msg, 'm', sizeof msg);
    assert_int_equal(wa_x25519_keygen(priv, pub), 0);
    assert_int_equal(wa_xeddsa_sign(sig, priv, msg, sizeof msg), 0);
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), 0);
    /* randomized: a second signature differs and also verifies */
    assert_int_equal(wa_xeddsa_sign(sig2, priv, msg, sizeof msg), 0);
    assert_memory_not_equal(sig, sig2, 64);
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig2), 0);
    /* tampered message, signature (both halves), wrong key, truncated message */
    msg[50] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), WA_ECRYPTO);
    msg[50] ^= 1;
    sig[0] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), WA_ECRYPTO);
    sig[0] ^= 1;
    sig[40] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), WA_ECRYPTO);
    sig[40] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg - 1, sig), WA_ECRYPTO);
    pub[5] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), WA_ECRYPTO);
    pub[5] ^= 1;
    assert_int_equal(wa_xeddsa_verify(pub, msg, sizeof msg, sig), 0);
    /* empty message */
    assert_int_equal(wa_xeddsa_sign(sig, priv, NULL, 0), 0);
    assert_int_equal(wa_xeddsa_verify(pub, NULL, 0, sig), 0);
    /* an unclamped private key signs for the public key of its clamped form */
    priv[0] |= 7;
    priv[31] |= 0x80;
    assert_int_equal(wa_xeddsa_sign(sig, priv, msg, 10), 0);
    assert_int_equal(wa_xeddsa_verify(pub, msg, 10, sig), 0);
}

/* tests/vectors/xeddsa.txt comes from npm libsignal 6.0.0 (what Baileys uses) */
static void test_xeddsa_libsignal_node(void **state)
{
    FILE *f = tv_open("xeddsa.txt");
    tv_record r;
    int count = 0;

    (void)state;
    assert_non_null(f);
    while (tv_next(f, &r)) {
        const uint8_t *priv, *pub, *msg, *sig;
        size_t pl = 0, ql = 0, ml = 0, sl = 0;
        uint8_t mine[32], sig2[64], *bad;

        priv = tv_get(&r, "priv", &pl);
        pub = tv_get(&r, "pub", &ql);
        msg = tv_get(&r, "msg", &ml);
        sig = tv_get(&r, "sig", &sl);
        assert_true(priv && pub && msg && sig && pl == 32 && ql == 32 && sl == 64);
        assert_int_equal(wa_x25519_public(mine, priv), 0);
        assert_memory_equal(mine, pub, 32);
        assert_int_equal(wa_xeddsa_verify(pub, msg, ml, sig), 0);
        bad = malloc(ml);
        memcpy(bad, msg, ml);
        bad[ml - 1] ^= 0x40;
        assert_int_equal(wa_xeddsa_verify(pub, bad, ml, sig), WA_ECRYPTO);
        free(bad);
        /* and our signature over the same message verifies under their public key */
        assert_int_equal(wa_xeddsa_sign(sig2, priv, msg, ml), 0);
        assert_int_equal(wa_xeddsa_verify(pub, msg, ml, sig2), 0);
        tv_record_free(&r);
        count++;
    }
    fclose(f);
    assert_true(count >= 3);
}

static void test_provider(void **state)
{
    signal_crypto_provider p;
    signal_buffer *out = NULL;
    void *ctx = NULL;
    uint8_t key[32], iv[16], pt[64], rnd[32] = {0}, zero[32] = {0};

    (void)state;
    wa_signal_provider_fill(&p);
    assert_int_equal(p.random_func(rnd, sizeof rnd, NULL), 0);
    assert_memory_not_equal(rnd, zero, 32);
    /* HMAC callbacks: RFC 4231 case 2 */
    assert_int_equal(p.hmac_sha256_init_func(&ctx, (const uint8_t *)"Jefe", 4, NULL), 0);
    assert_int_equal(
        p.hmac_sha256_update_func(ctx, (const uint8_t *)"what do ya want for ", 20, NULL), 0);
    assert_int_equal(p.hmac_sha256_update_func(ctx, (const uint8_t *)"nothing?", 8, NULL), 0);
    assert_int_equal(p.hmac_sha256_final_func(ctx, &out, NULL), 0);
    assert_int_equal(signal_buffer_len(out), 32);
    assert_hex(signal_buffer_data(out), 32,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    signal_buffer_free(out);
    p.hmac_sha256_cleanup_func(ctx, NULL);
    /* SHA-512, final twice (context reusable) */
    assert_int_equal(p.sha512_digest_init_func(&ctx, NULL), 0);
    assert_int_equal(p.sha512_digest_update_func(ctx, (const uint8_t *)"abc", 3, NULL), 0);
    assert_int_equal(p.sha512_digest_final_func(ctx, &out, NULL), 0);
    assert_hex(signal_buffer_data(out), 64,
               "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836"
               "ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    signal_buffer_free(out);
    assert_int_equal(p.sha512_digest_final_func(ctx, &out, NULL), 0);
    assert_hex(signal_buffer_data(out), 64,
               "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
               "8318d2877eec2f63b931bd47417a81a538327af927da3e");
    signal_buffer_free(out);
    p.sha512_digest_cleanup_func(ctx, NULL);
    /* AES: SP 800-38A F.2.1 (CBC-128) and F.5.1 (CTR-128), 256-bit CBC round trip */
    tv_hex_into(key, 16, "2b7e151628aed2a6abf7158809cf4f3c");
    tv_hex_into(pt, 64, nist_pt);
    tv_hex_into(iv, 16, "000102030405060708090a0b0c0d0e0f");
    assert_int_equal(p.encrypt_func(&out, SG_CIPHER_AES_CBC_PKCS5, key, 16, iv, 16, pt, 16, NULL),
                     0);
    assert_int_equal(signal_buffer_len(out), 32);
    assert_hex(signal_buffer_data(out), 16, "7649abac8119b246cee98e9b12e9197d");
    {
        signal_buffer *back = NULL;
        assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 16, iv, 16,
                                        signal_buffer_data(out), 32, NULL),
                         0);
        assert_int_equal(signal_buffer_len(back), 16);
        assert_memory_equal(signal_buffer_data(back), pt, 16);
        signal_buffer_free(back);
        assert_true(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 16, iv, 16,
                                   signal_buffer_data(out), 16, NULL) < 0);
    }
    signal_buffer_free(out);
    tv_hex_into(iv, 16, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    assert_int_equal(
        p.encrypt_func(&out, SG_CIPHER_AES_CTR_NOPADDING, key, 16, iv, 16, pt, 16, NULL), 0);
    assert_hex(signal_buffer_data(out), 16, "874d6191b620e3261bef6864990db6ce");
    signal_buffer_free(out);
    tv_hex_into(key, 32, nist_key256);
    tv_hex_into(iv, 16, "000102030405060708090a0b0c0d0e0f");
    assert_int_equal(p.encrypt_func(&out, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, pt, 64, NULL),
                     0);
    assert_hex(signal_buffer_data(out), 16, "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
    signal_buffer_free(out);
    assert_true(p.encrypt_func(&out, 99, key, 32, iv, 16, pt, 64, NULL) < 0);
    assert_true(p.encrypt_func(&out, SG_CIPHER_AES_CTR_NOPADDING, key, 32, iv, 12, pt, 64, NULL) <
                0);
}

/* the context works for libsignal's own curve code: its key pairs and signatures interoperate
 * with ours */
static void test_signal_ctx(void **state)
{
    signal_context *ctx, *own = NULL;
    ec_key_pair *kp = NULL;
    signal_buffer *pubs = NULL, *privs = NULL, *sig = NULL;
    uint8_t pub[32], msg[5] = "hello";

    (void)state;
    ctx = wa_signal_ctx_get();
    assert_non_null(ctx);
    assert_ptr_equal(wa_signal_ctx_get(), ctx);
    assert_int_equal(wa_signal_ctx_new(&own), 0);
    assert_int_equal(curve_generate_key_pair(own, &kp), 0);
    assert_int_equal(ec_public_key_serialize(&pubs, ec_key_pair_get_public(kp)), 0);
    assert_int_equal(ec_private_key_serialize(&privs, ec_key_pair_get_private(kp)), 0);
    assert_int_equal(signal_buffer_len(pubs), 33);
    assert_int_equal(signal_buffer_data(pubs)[0], 5);
    assert_int_equal(wa_x25519_public(pub, signal_buffer_data(privs)), 0);
    assert_memory_equal(pub, signal_buffer_data(pubs) + 1, 32);
    assert_int_equal(curve_calculate_signature(own, &sig, ec_key_pair_get_private(kp), msg, 5), 0);
    assert_int_equal(wa_xeddsa_verify(pub, msg, 5, signal_buffer_data(sig)), 0);
    signal_buffer_free(sig);
    signal_buffer_bzero_free(privs);
    signal_buffer_free(pubs);
    SIGNAL_UNREF(kp);
    wa_signal_ctx_free(own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_hkdf),
        cmocka_unit_test(test_pbkdf2),
        cmocka_unit_test(test_gcm),
        cmocka_unit_test(test_ctr_cbc),
        cmocka_unit_test(test_x25519_rfc7748),
        cmocka_unit_test(test_x25519_alice_bob),
        cmocka_unit_test(test_xeddsa_roundtrip),
        cmocka_unit_test(test_xeddsa_libsignal_node),
        cmocka_unit_test(test_provider),
        cmocka_unit_test(test_signal_ctx),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    wa_signal_ctx_shutdown();
    return rc;
}
