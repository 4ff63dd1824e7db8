/*
 * qr.c - QR codes with libqrencode, PNG with libpng's simplified API, terminal half blocks (see
 * qr.h).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "qr/qr.h"

#include <errno.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

/* Largest image rendered (pixels per side): version 40 (177 modules) with the largest margin at
 * scale 32 is 6688; the cap keeps the greyscale buffer under 64 MiB. */
#define QR_SIDE_MAX 8192

int wg_qr_matrix(const char *text, uint8_t **modules, unsigned *width)
{
    QRcode *qr;
    uint8_t *m;
    size_t n, i;

    if (!text || !text[0])
        return WA_EINVAL;
    if (strlen(text) > WG_QR_TEXT_MAX)
        return WA_ELIMIT;
    errno = 0;
    qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return errno == ERANGE ? WA_ELIMIT : errno == EINVAL ? WA_EINVAL : WA_ENOMEM;
    n = (size_t)qr->width * (size_t)qr->width;
    m = wa_malloc(n);
    if (!m) {
        QRcode_free(qr);
        return WA_ENOMEM;
    }
    /* libqrencode: bit 0 of each byte is the module's colour (1 = dark) */
    for (i = 0; i < n; i++)
        m[i] = qr->data[i] & 1;
    *width = (unsigned)qr->width;
    *modules = m;
    QRcode_free(qr);
    return 0;
}

int wg_qr_png_from_matrix(const uint8_t *modules, unsigned width, unsigned scale, unsigned margin,
                          uint8_t **png, size_t *len)
{
    png_image img;
    uint8_t *pix = NULL, *out = NULL;
    png_alloc_size_t size = 0;
    size_t side, y, x;
    int rc = WA_ENOMEM;

    if (!modules || width == 0)
        return WA_EINVAL;
    if (scale == 0)
        scale = WG_QR_DEFAULT_SCALE;
    if (scale > WG_QR_SCALE_MAX || margin > WG_QR_MARGIN_MAX)
        return WA_EINVAL;
    side = ((size_t)width + 2 * (size_t)margin) * scale;
    if (side > QR_SIDE_MAX)
        return WA_ELIMIT;
    pix = wa_malloc(side * side);
    if (!pix)
        return WA_ENOMEM;
    memset(pix, 0xFF, side * side);
    for (y = 0; y < width; y++) {
        for (x = 0; x < width; x++) {
            size_t py, px0 = (margin + x) * scale;
            if (!modules[y * width + x])
                continue;
            for (py = (margin + y) * scale; py < (margin + y + 1) * scale; py++)
                memset(pix + py * side + px0, 0x00, scale);
        }
    }
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)side;
    img.height = (png_uint_32)side;
    img.format = PNG_FORMAT_GRAY;
    /* first pass: the size */
    if (!png_image_write_to_memory(&img, NULL, &size, 0, pix, 0, NULL) || size == 0) {
        rc = WA_EIO;
        goto out;
    }
    out = wa_malloc(size);
    if (!out)
        goto out;
    if (!png_image_write_to_memory(&img, out, &size, 0, pix, 0, NULL)) {
        rc = WA_EIO;
        goto out;
    }
    *png = out;
    *len = size;
    out = NULL;
    rc = 0;
out:
    png_image_free(&img);
    wa_free(out);
    wa_free(pix);
    return rc;
}

int wg_qr_png(const char *text, unsigned scale, unsigned margin, uint8_t **png, size_t *len)
{
    uint8_t *m = NULL;
    unsigned w = 0;
    int rc;

    if ((scale > WG_QR_SCALE_MAX) || margin > WG_QR_MARGIN_MAX)
        return WA_EINVAL;
    rc = wg_qr_matrix(text, &m, &w);
    if (rc)
        return rc;
    rc = wg_qr_png_from_matrix(m, w, scale, margin, png, len);
    wa_free(m);
    return rc;
}

int wg_qr_png_base64(const char *text, unsigned scale, unsigned margin, char **b64)
{
    uint8_t *png = NULL;
    size_t len = 0;
    char *s;
    int rc = wg_qr_png(text, scale, margin, &png, &len);

    if (rc)
        return rc;
    s = wa_malloc(wa_base64_encoded_len(len, 0) + 1);
    if (!s) {
        wa_free(png);
        return WA_ENOMEM;
    }
    wa_base64_encode(s, png, len, 0);
    wa_free(png);
    *b64 = s;
    return 0;
}

/* UTF-8 of U+2580, U+2584, U+2588 */
static const char upper[] = "\xE2\x96\x80";
static const char lower[] = "\xE2\x96\x84";
static const char full[] = "\xE2\x96\x88";

int wg_qr_terminal(const char *text, int ink, char **out, size_t *len)
{
    uint8_t *m = NULL;
    unsigned w = 0;
    size_t side, lines, cap, o = 0, row, col;
    char *s;
    int rc;

    if (ink != WG_QR_INK_LIGHT && ink != WG_QR_INK_DARK)
        return WA_EINVAL;
    rc = wg_qr_matrix(text, &m, &w);
    if (rc)
        return rc;
    side = (size_t)w + 2 * WG_QR_TERMINAL_MARGIN;
    lines = (side + 1) / 2;
    cap = lines * (side * 3 + 1) + 1;
    s = wa_malloc(cap);
    if (!s) {
        wa_free(m);
        return WA_ENOMEM;
    }
    for (row = 0; row < lines; row++) {
        for (col = 0; col < side; col++) {
            int top = 0, bottom = 0, mx = (int)col - WG_QR_TERMINAL_MARGIN;
            int y0 = (int)(2 * row) - WG_QR_TERMINAL_MARGIN, y1 = y0 + 1;
            /* "inked": the modules this style draws; outside the symbol everything is light */
            if (mx >= 0 && mx < (int)w && y0 >= 0 && y0 < (int)w)
                top = m[(size_t)y0 * w + (size_t)mx];
            if (mx >= 0 && mx < (int)w && y1 >= 0 && y1 < (int)w)
                bottom = m[(size_t)y1 * w + (size_t)mx];
            if (ink == WG_QR_INK_LIGHT) {
                top = !top;
                /* the odd last line has no second row: leave its lower half blank */
                bottom = (size_t)(2 * row + 1) < side ? !bottom : 0;
            }
            if (top && bottom) {
                memcpy(s + o, full, 3);
                o += 3;
            } else if (top) {
                memcpy(s + o, upper, 3);
                o += 3;
            } else if (bottom) {
                memcpy(s + o, lower, 3);
                o += 3;
            } else {
                s[o++] = ' ';
            }
        }
        s[o++] = '\n';
    }
    s[o] = '\0';
    wa_free(m);
    *out = s;
    if (len)
        *len = o;
    return 0;
}
