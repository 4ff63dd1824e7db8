/* test_qr.c - src/qr: the PNG decodes back (libpng) to exactly the module matrix with the
 * requested scale and quiet zone, and zbarimg reads the original text from it; base64 is the
 * PNG; the terminal rendering parses back to the same matrix in both ink styles and decodes
 * through zbarimg too; bad arguments are refused.
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
#include <png.h>

#include "core/alloc.h"
#include "core/util.h"
#include "qr/qr.h"
#include "wa/error.h"

/* A pairing QR as WhatsApp Web shows it: ref, noise public key, identity public key, ADV
 * secret (base64), comma-separated. Made-up values of the real lengths. */
static const char pairing[] =
    "2@yJ8mH1W9xk3oQp7tLr0sVnB4cXe6fA2gDz5uKi/MwNlPj+TqRbCaYhEoGdUvSxIy1234567890abcdEFGH"
    "ijklMNOPqrstUVWXyz==,Qx3mY8Jd0kLrA2fN5pZ9uW1tHc7bV4gE6sK0oPiTnMw=,"
    "u7Dk2WzQ9nF4hL1pR8cX5aJ0mV3sB6tG2eY7iO4wNqU=,Hc9Z2k5Lm8Qp1Wr4Tx7Vb0Nf3Gj6Sd9Ay2Eu5Io8Kq=";

/* zbarimg's reading of a PNG file ("" when it found nothing). */
static void zbar_decode(const uint8_t *png, size_t len, char *out, size_t cap)
{
    char path[] = "/tmp/wg_qr_XXXXXX", cmd[256];
    int fd = mkstemp(path);
    FILE *p;
    size_t n;

    if (access(WG_ZBARIMG, X_OK) != 0)
        fail_msg("%s not found: install zbar-tools (scripts/deps.sh)", WG_ZBARIMG);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, png, len), (ssize_t)len);
    close(fd);
    /* stderr dropped: zbarimg's image library may complain about a missing D-Bus */
    snprintf(cmd, sizeof cmd, "%s --raw -q %s 2>/dev/null", WG_ZBARIMG, path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    pclose(p);
    unlink(path);
    /* zbarimg ends the symbol's data with a newline */
    if (n && out[n - 1] == '\n')
        out[n - 1] = '\0';
}

/* Decode a PNG with libpng and check it against the matrix: side, quiet zone, every pixel. */
static void check_png_pixels(const uint8_t *png, size_t len, const uint8_t *m, unsigned w,
                             unsigned scale, unsigned margin)
{
    png_image img;
    uint8_t *pix;
    size_t side = ((size_t)w + 2 * margin) * scale, y, x;

    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    assert_int_equal(img.width, side);
    assert_int_equal(img.height, side);
    img.format = PNG_FORMAT_GRAY;
    pix = malloc(side * side);
    assert_true(png_image_finish_read(&img, NULL, pix, 0, NULL));
    for (y = 0; y < side; y++) {
        for (x = 0; x < side; x++) {
            long my = (long)(y / scale) - (long)margin, mx = (long)(x / scale) - (long)margin;
            int dark = my >= 0 && mx >= 0 && my < (long)w && mx < (long)w &&
                       m[(size_t)my * w + (size_t)mx];
            if (pix[y * side + x] != (dark ? 0 : 255))
                fail_msg("pixel %zu,%zu", x, y);
        }
    }
    free(pix);
}

static void roundtrip(const char *text, unsigned scale, unsigned margin)
{
    uint8_t *png = NULL, *m = NULL;
    size_t len = 0;
    unsigned w = 0;
    char got[4096];

    assert_int_equal(wg_qr_png(text, scale, margin, &png, &len), 0);
    assert_true(len > 8);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(wg_qr_matrix(text, &m, &w), 0);
    assert_true(w >= 21 && w <= 177 && (w - 17) % 4 == 0);
    check_png_pixels(png, len, m, w, scale ? scale : WG_QR_DEFAULT_SCALE, margin);
    zbar_decode(png, len, got, sizeof got);
    assert_string_equal(got, text);
    wa_free(m);
    wa_free(png);
}

static void test_png_zbar(void **state)
{
    char longtext[1201];
    size_t i;

    (void)state;
    roundtrip(pairing, 0, WG_QR_DEFAULT_MARGIN);
    roundtrip("hello", 4, 4);
    roundtrip("HTTPS://EXAMPLE.COM/0123456789", 3, 2); /* alphanumeric segments */
    for (i = 0; i < sizeof longtext - 1; i++)
        longtext[i] = "abcdefghijklmnopqrstuvwxyz0123456789+/="[(i * 7) % 39];
    longtext[sizeof longtext - 1] = '\0';
    roundtrip(longtext, 2, 4);
}

static void test_png_size(void **state)
{
    uint8_t *png = NULL, *m = NULL;
    size_t len = 0;
    unsigned w = 0;

    (void)state;
    /* a pairing QR: sensible size (not a megabyte, not a thumbnail) */
    assert_int_equal(wg_qr_matrix(pairing, &m, &w), 0);
    assert_int_equal(wg_qr_png(pairing, 0, WG_QR_DEFAULT_MARGIN, &png, &len), 0);
    assert_true((w + 8) * 8 >= 400 && (w + 8) * 8 <= 900);
    assert_true(len < 32 * 1024);
    wa_free(png);
    wa_free(m);
}

static void test_base64(void **state)
{
    uint8_t *png = NULL, *back;
    size_t len = 0, blen = 0;
    char *b64 = NULL;

    (void)state;
    assert_int_equal(wg_qr_png(pairing, 5, 4, &png, &len), 0);
    assert_int_equal(wg_qr_png_base64(pairing, 5, 4, &b64), 0);
    assert_int_equal(strlen(b64), wa_base64_encoded_len(len, 0));
    assert_memory_equal(b64, "iVBORw0KGgo", 11); /* "\x89PNG\r\n\x1a\n" */
    back = malloc(len + 16);
    assert_int_equal(wa_base64_decode(back, len + 16, &blen, b64, strlen(b64)), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(back, png, len);
    free(back);
    wa_free(b64);
    wa_free(png);
}

/* Parse the terminal rendering back into a matrix (without the terminal's margin). */
static uint8_t *parse_terminal(const char *s, int ink, unsigned w)
{
    unsigned side = w + 2 * WG_QR_TERMINAL_MARGIN, lines = (side + 1) / 2, row = 0, col;
    uint8_t *full = calloc((size_t)lines * 2 * side, 1), *m = calloc((size_t)w * w, 1);
    const char *p = s;
    unsigned y, x;

    for (row = 0; row < lines; row++) {
        for (col = 0; col < side; col++) {
            int top, bottom;
            if (*p == ' ') {
                top = bottom = 0;
                p++;
            } else if (strncmp(p, "\xE2\x96\x88", 3) == 0) {
                top = bottom = 1;
                p += 3;
            } else if (strncmp(p, "\xE2\x96\x80", 3) == 0) {
                top = 1;
                bottom = 0;
                p += 3;
            } else if (strncmp(p, "\xE2\x96\x84", 3) == 0) {
                top = 0;
                bottom = 1;
                p += 3;
            } else {
                fail_msg("unexpected byte 0x%02x at line %u col %u", (unsigned char)*p, row, col);
                return NULL;
            }
            full[(2 * row) * side + col] = (uint8_t)top;
            full[(2 * row + 1) * side + col] = (uint8_t)bottom;
        }
        assert_int_equal(*p, '\n');
        p++;
    }
    assert_int_equal(*p, '\0');
    /* the margin is light: inked in LIGHT style, blank in DARK style */
    for (x = 0; x < side; x++) {
        assert_int_equal(full[x], ink == WG_QR_INK_LIGHT);
        assert_int_equal(full[(side - 1) * side + x], ink == WG_QR_INK_LIGHT);
    }
    /* odd side: the last line's lower half is always blank */
    for (x = 0; x < side; x++)
        assert_int_equal(full[side * side + x], 0);
    for (y = 0; y < w; y++)
        for (x = 0; x < w; x++) {
            uint8_t inked = full[(y + WG_QR_TERMINAL_MARGIN) * side + x + WG_QR_TERMINAL_MARGIN];
            m[y * w + x] = ink == WG_QR_INK_LIGHT ? !inked : inked;
        }
    free(full);
    return m;
}

static void test_terminal(void **state)
{
    uint8_t *m = NULL, *parsed, *png = NULL;
    unsigned w = 0, side;
    char *s = NULL, got[1024];
    size_t len = 0, png_len = 0, nl = 0, i;
    int ink;

    (void)state;
    assert_int_equal(wg_qr_matrix(pairing, &m, &w), 0);
    side = w + 2 * WG_QR_TERMINAL_MARGIN;
    for (ink = WG_QR_INK_LIGHT; ink <= WG_QR_INK_DARK; ink++) {
        assert_int_equal(wg_qr_terminal(pairing, ink, &s, &len), 0);
        assert_int_equal(strlen(s), len);
        for (i = 0; i < len; i++)
            nl += s[i] == '\n';
        parsed = parse_terminal(s, ink, w);
        assert_memory_equal(parsed, m, (size_t)w * w);
        /* what a phone would see on the screen decodes to the text */
        assert_int_equal(wg_qr_png_from_matrix(parsed, w, 4, 4, &png, &png_len), 0);
        zbar_decode(png, png_len, got, sizeof got);
        assert_string_equal(got, pairing);
        wa_free(png);
        free(parsed);
        wa_free(s);
    }
    assert_int_equal(nl, 2 * ((side + 1) / 2));
    wa_free(m);
}

static void test_errors(void **state)
{
    uint8_t *png = (uint8_t *)"x", *m = NULL;
    size_t len = 7;
    unsigned w = 0;
    char *s = NULL, *big;

    (void)state;
    assert_int_equal(wg_qr_png("", 0, 4, &png, &len), WA_EINVAL);
    assert_int_equal(wg_qr_png(NULL, 0, 4, &png, &len), WA_EINVAL);
    assert_int_equal(wg_qr_png("x", WG_QR_SCALE_MAX + 1, 4, &png, &len), WA_EINVAL);
    assert_int_equal(wg_qr_png("x", 1, WG_QR_MARGIN_MAX + 1, &png, &len), WA_EINVAL);
    assert_int_equal(wg_qr_terminal("x", 7, &s, NULL), WA_EINVAL);
    /* out-params untouched on failure */
    assert_int_equal(len, 7);
    assert_memory_equal(png, "x", 1);
    assert_null(s);
    big = malloc(WG_QR_TEXT_MAX + 2);
    memset(big, 'a', WG_QR_TEXT_MAX + 1);
    big[WG_QR_TEXT_MAX + 1] = '\0';
    assert_int_equal(wg_qr_matrix(big, &m, &w), WA_ELIMIT);
    /* the longest text accepted fits (a version 40-M symbol holds 2331 bytes), and renders at
     * the largest scale and margin */
    big[WG_QR_TEXT_MAX] = '\0';
    assert_int_equal(wg_qr_matrix(big, &m, &w), 0);
    assert_true(w > 150 && w <= 177);
    wa_free(m);
    assert_int_equal(wg_qr_png(big, WG_QR_SCALE_MAX, WG_QR_MARGIN_MAX, &png, &len), 0);
    wa_free(png);
    free(big);
    assert_int_equal(wg_qr_png_from_matrix(NULL, 21, 1, 1, &png, &len), WA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_zbar), cmocka_unit_test(test_png_size),
        cmocka_unit_test(test_base64),   cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
