/* error.c - wa_strerror()/wa_err_name() from the X-macro list in wa/error.h.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "wa/error.h"

const char *wa_strerror(int err)
{
    switch (err) {
    case WA_OK:
        return "success";
#define WA__ERR_TEXT(name, value, text)                                                            \
    case WA_##name:                                                                                \
        return text;
        WA_ERRNO_MAP(WA__ERR_TEXT)
#undef WA__ERR_TEXT
    }
    return "unknown error";
}

const char *wa_err_name(int err)
{
    switch (err) {
    case WA_OK:
        return "WA_OK";
#define WA__ERR_NAME(name, value, text)                                                            \
    case WA_##name:                                                                                \
        return "WA_" #name;
        WA_ERRNO_MAP(WA__ERR_NAME)
#undef WA__ERR_NAME
    }
    return "WA_EUNKNOWN";
}
