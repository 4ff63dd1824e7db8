/*
 * qr.h - render a QR code (the WhatsApp pairing QR of GET /api/sessions/{name}/qr) as a PNG
 * image, as its base64, or as UTF-8 half blocks for a terminal.
 *
 * Encoding: libqrencode, error correction level M, 8-bit mode hint (libqrencode still splits
 * numeric/alphanumeric runs for a smaller symbol), smallest version that fits, case kept.
 * Images: libpng's simplified write API, 8-bit greyscale, each module scale x scale pixels, a
 * quiet zone of `margin` modules (ISO/IEC 18004 asks for 4) in white around the symbol.
 * Terminal: two module rows per text line with U+2580 (upper half), U+2584 (lower half),
 * U+2588 (full block) and spaces.
 *
 * Memory: results are allocated with wa_malloc; the caller frees them with wa_free.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_QR_QR_H
#define WG_QR_QR_H

#include <stddef.h>
#include <stdint.h>

/* Longest text accepted (a version 40-M symbol holds 2331 bytes). */
#define WG_QR_TEXT_MAX 2048
/* PNG defaults: 8 px per module (a pairing QR, ~60 modules, is then ~550 px wide), and the
 * standard 4-module quiet zone. */
#define WG_QR_DEFAULT_SCALE  8
#define WG_QR_DEFAULT_MARGIN 4
#define WG_QR_SCALE_MAX      32
#define WG_QR_MARGIN_MAX     16
/* Quiet zone of the terminal rendering, in modules (terminal cells are the margin already). */
#define WG_QR_TERMINAL_MARGIN 2

/* Terminal styles. */
enum wg_qr_ink {
    /* light modules drawn as blocks: for the usual light-on-dark terminal, whose background
     * then shows the dark modules (what `qrencode -t UTF8` prints) */
    WG_QR_INK_LIGHT = 0,
    /* dark modules drawn as blocks: for dark text on a light background */
    WG_QR_INK_DARK = 1,
};

/*
 * The module matrix: *modules receives width*width bytes, row-major, 1 = dark, 0 = light (no
 * quiet zone). Returns 0, WA_EINVAL (NULL or empty text), WA_ELIMIT (text longer than
 * WG_QR_TEXT_MAX or too long for any QR version), WA_ENOMEM.
 */
int wg_qr_matrix(const char *text, uint8_t **modules, unsigned *width);

/*
 * A PNG of text: scale pixels per module (0: WG_QR_DEFAULT_SCALE; at most WG_QR_SCALE_MAX),
 * margin modules of quiet zone (at most WG_QR_MARGIN_MAX; WG_QR_DEFAULT_MARGIN recommended).
 * *png and *len receive the file's bytes. Returns 0, WA_EINVAL (bad text, scale or margin),
 * WA_ELIMIT, WA_ENOMEM, WA_EIO (libpng failed).
 */
int wg_qr_png(const char *text, unsigned scale, unsigned margin, uint8_t **png, size_t *len);

/* The same PNG as standard base64 (NUL-terminated), e.g. for {"qr": "<base64>"} or a data: URL.
 */
int wg_qr_png_base64(const char *text, unsigned scale, unsigned margin, char **b64);

/* A PNG of a module matrix (as from wg_qr_matrix). Same parameters and returns as wg_qr_png. */
int wg_qr_png_from_matrix(const uint8_t *modules, unsigned width, unsigned scale, unsigned margin,
                          uint8_t **png, size_t *len);

/*
 * The terminal rendering: ceil((width + 2 * WG_QR_TERMINAL_MARGIN) / 2) lines, each
 * width + 2 * WG_QR_TERMINAL_MARGIN characters and '\n', NUL-terminated UTF-8; *len (may be
 * NULL) excludes the NUL. ink: WG_QR_INK_LIGHT or WG_QR_INK_DARK. Returns 0, WA_EINVAL,
 * WA_ELIMIT, WA_ENOMEM.
 */
int wg_qr_terminal(const char *text, int ink, char **out, size_t *len);

#endif
