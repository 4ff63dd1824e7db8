/*
 * signal_int.h - internals of the Signal layer shared by its source files: the handle, the
 * per-operation state the store adapter keeps, and the libsignal <-> WA_E* error mapping.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_SIGNAL_SIGNAL_INT_H
#define WA_SIGNAL_SIGNAL_INT_H

#include <signal/signal_protocol.h>

#include "signal/signal.h"

/* Value the adapter's callbacks return to libsignal when a store callback failed; the WA_E*
 * code waits in wa_signal.op_err. Below SG_ERR_MINIMUM, so it cannot be confused with a
 * libsignal code (WA_EIO == SG_ERR_NOMEM == -12, for instance). */
#define WA__SG_STORE_ERR (SG_ERR_MINIMUM - 1)

/* Message version (high nibble of the first byte of pkmsg, msg, SKDM and skmsg: 0x33). */
#define WA__SIGNAL_VERSION 3

/* Writes libsignal makes during one operation, held back until it succeeded (see adapter.c). A
 * libsignal operation makes at most one record write and one prekey removal. */
#define WA__PENDING_MAX 4
enum { WA__PEND_SESSION = 1, WA__PEND_SENDER_KEY, WA__PEND_PREKEY_REMOVE };
typedef struct wa__pending {
    int kind;
    wa_signal_addr addr;
    char group[WA_SIGNAL_GROUP_MAX + 1];
    uint32_t id;
    wa_buf rec;
} wa__pending;

struct wa_signal {
    wa_signal_store store;
    signal_context *ctx;
    signal_protocol_store_context *sctx;
    int policy;
    wa_signal_identity_changed_cb identity_cb;
    void *identity_ud;
    const char *reason; /* last failure reason, "" after success */

    /* ---- state of the operation in progress (reset by wa__signal_op_begin) ---- */
    int op_err; /* WA_E* of the first failing store callback */
    /* deferred remote identity save: committed only when the operation succeeded */
    int id_pending;
    int id_changed;
    wa_signal_addr id_addr;
    uint8_t id_key[WA_SIGNAL_KEY_LEN];
    uint8_t id_old[WA_SIGNAL_KEY_LEN];
    /* one session record loaded ahead (by contains_session or a batch load) and handed to the
     * next load_session of the same address */
    int pre_valid;
    int pre_found;
    wa_signal_addr pre_addr;
    wa_buf pre_rec;
    /* deferred record writes, in the order libsignal made them */
    wa__pending pend[WA__PENDING_MAX];
    int npend;
};

/* libsignal address with its name storage. */
typedef struct wa__sg_addr {
    signal_protocol_address a;
    char name[WA_SIGNAL_NAME_MAX];
} wa__sg_addr;

typedef struct wa__sg_skname {
    signal_protocol_sender_key_name n;
    char name[WA_SIGNAL_NAME_MAX];
} wa__sg_skname;

/* Validate addr and fill out (out->a points into out->name: do not copy the struct). */
int wa__signal_sg_addr(wa__sg_addr *out, const wa_signal_addr *addr);
/* Validate group (1..WA_SIGNAL_GROUP_MAX bytes, NUL-terminated) and sender. */
int wa__signal_sg_skname(wa__sg_skname *out, const char *group, const wa_signal_addr *sender);
/* 0 if group is a valid group id. */
int wa__signal_check_group(const char *group);

/* Initialise / wipe the per-operation buffers of a new / freed handle. */
void wa__signal_op_init(wa_signal *s);
void wa__signal_op_cleanup(wa_signal *s);

/* Fill the libsignal store callbacks of s->sctx (adapter.c). */
int wa__signal_adapter_install(wa_signal *s);

/* Start an operation: clear the per-operation state and the reason. */
void wa__signal_op_begin(wa_signal *s);
/* Finish an operation whose result so far is err (0 or WA_E*, libsignal codes already mapped
 * with wa__signal_map_err); returns the final result. On success writes what the operation
 * held back (identity first, then records and prekey removals in order) and reports an
 * identity change; on failure drops it all, so a failed call changes nothing in the store
 * (only a failing store write during that final flush can leave part of it written). Always
 * clears the per-operation state (wiping key material). */
int wa__signal_op_end(wa_signal *s, int err);
/* wa__signal_op_end, then, if the operation succeeded, append data (a libsignal buffer, room
 * reserved beforehand) to out: outputs appear only once the store writes went through. */
int wa__signal_op_end_append(wa_signal *s, int err, wa_buf *out, signal_buffer *data);

/* Map a libsignal result (< 0) to WA_E* and set s->reason. `what` selects wording for some
 * codes: 'p' pkmsg/prekey context, 'g' group, 'b' bundle, 0 generic. */
int wa__signal_map_err(wa_signal *s, int sg, char what);

/* Fail with a WA_E* code and a reason. Returns code. */
int wa__signal_fail(wa_signal *s, int code, const char *reason);

/* Decode a 32-byte key into a libsignal public key (0x05 prefix added). SG result. */
int wa__signal_decode_pub(signal_context *ctx, ec_public_key **out,
                          const uint8_t key[WA_SIGNAL_KEY_LEN]);
/* Key pair from raw keys (private clamped in a copy that is wiped). SG result. */
int wa__signal_make_keypair(signal_context *ctx, ec_key_pair **out, const wa_signal_keypair *kp);

#endif
