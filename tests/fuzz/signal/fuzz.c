/*
 * fuzz.c - fuzz target `signal`: arbitrary bytes into the Signal layer's decoders and ciphers,
 * against a fixed store (fixture.h, Bob's keys, his session with Alice and her sender key,
 * generated with the seed corpus by gen_corpus.c).
 *
 * Input: selector byte (mod 5) || payload.
 *   0  wa_signal_decrypt(pkmsg from Alice's address)
 *   1  wa_signal_decrypt(msg from Alice's address)
 *   2  wa_signal_group_process_skdm(group, Alice), then a group decrypt of the same bytes
 *   3  wa_signal_group_decrypt(group, Alice)
 *   4  wa_signal_unpad
 * Every input gets a fresh store rebuilt from the fixture. Checked: no crash, no leak (ASan),
 * a result that is 0 or a WA_E* code with a reason, output only on success, and a decrypted
 * plaintext always at most as long as the ciphertext.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "signal/memstore.h"
#include "signal/signal.h"
#include "wa/error.h"

#include "fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_OPS 5

static void check(int rc, const wa_signal *s, const wa_buf *out, size_t in_len)
{
#ifdef WA_FUZZ_SIGNAL_TRACE /* to check the seeds: -DWA_FUZZ_SIGNAL_TRACE */
    fprintf(stderr, "rc %d (%s) out %zu\n", rc, wa_signal_last_error(s), out->len);
#endif
    if (rc > 0 || rc < -64)
        abort(); /* not a WA_E* code */
    if (rc != 0 && (out->len != 0 || !*wa_signal_last_error(s)))
        abort();
    if (rc == 0 && out->len > in_len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa_signal_keypair id;
    wa_signal_memstore *m = NULL;
    wa_signal_store st;
    wa_signal *s = NULL;
    wa_signal_addr alice;
    const uint8_t *p;
    size_t n, plen;
    wa_buf out;
    int op, rc;

    if (size < 1)
        return 0;
    wa_log_set_level(WA_LOG_OFF);
    op = data[0] % N_OPS;
    p = data + 1;
    n = size - 1;
    if (op == 4) {
        rc = wa_signal_unpad(p, n, &plen);
        if (rc != 0 && rc != WA_EPROTO)
            abort();
        if (rc == 0 && (plen >= n || n - plen > 255))
            abort();
        return 0;
    }

    memcpy(id.pub, fx_bob_pub, 32);
    memcpy(id.priv, fx_bob_priv, 32);
    if (wa_signal_addr_make(&alice, FX_ALICE, WA_SIGNAL_PN, 0) ||
        wa_signal_memstore_new(&m, &id, FX_BOB_REG, 0))
        abort();
    wa_signal_memstore_bind(m, &st);
    if (st.save_identity_cb(&alice, fx_alice_identity, m) ||
        st.store_signed_prekey_cb(1, fx_spk1, sizeof fx_spk1, m) ||
        st.store_prekey_cb(2, fx_prekey2, sizeof fx_prekey2, m) ||
        st.store_prekey_cb(3, fx_prekey3, sizeof fx_prekey3, m) ||
        st.store_session_cb(&alice, fx_session_alice, sizeof fx_session_alice, m) ||
        st.store_sender_key_cb(FX_GROUP, &alice, fx_sender_key_alice, sizeof fx_sender_key_alice,
                               m) ||
        wa_signal_new(&s, &st))
        abort();

    wa_buf_init(&out, 1u << 20);
    switch (op) {
    case 0:
    case 1:
        rc = wa_signal_decrypt(s, &alice, op == 0 ? WA_SIGNAL_PKMSG : WA_SIGNAL_MSG, p, n, &out);
        check(rc, s, &out, n);
        break;
    case 2:
        rc = wa_signal_group_process_skdm(s, FX_GROUP, &alice, p, n);
        check(rc, s, &out, n);
        rc = wa_signal_group_decrypt(s, FX_GROUP, &alice, p, n, &out);
        check(rc, s, &out, n);
        break;
    default:
        rc = wa_signal_group_decrypt(s, FX_GROUP, &alice, p, n, &out);
        check(rc, s, &out, n);
        break;
    }
    wa_buf_wipe_cleanup(&out);
    wa_signal_free(s);
    wa_signal_memstore_free(m);
    return 0;
}
