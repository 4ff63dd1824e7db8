/* test_store.c - the SQLite store: accounts, credentials, prekeys, PN<->LID, wipe, delete,
 * snapshot/restore, reopening, file modes, isolation between accounts.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/util.h"
#include "store/store.h"
#include "wa/error.h"

static char dir[256];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wa_store_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void fill_creds(wa_store_creds *c, uint8_t seed)
{
    memset(c, 0, sizeof *c);
    memset(c->noise_priv, seed, 32);
    memset(c->noise_pub, seed + 1, 32);
    memset(c->identity_priv, seed + 2, 32);
    memset(c->identity_pub, seed + 3, 32);
    c->registration_id = 12345;
    c->spk_id = 1;
    memset(c->spk_priv, seed + 4, 32);
    memset(c->spk_pub, seed + 5, 32);
    memset(c->spk_sig, seed + 6, 64);
    c->spk_created = 1700000000;
    memset(c->adv_secret, seed + 7, 32);
    c->next_prekey_id = 1;
}

static void assert_creds_equal(const wa_store_creds *a, const wa_store_creds *b)
{
    assert_memory_equal(a->noise_priv, b->noise_priv, 32);
    assert_memory_equal(a->noise_pub, b->noise_pub, 32);
    assert_memory_equal(a->identity_priv, b->identity_priv, 32);
    assert_memory_equal(a->identity_pub, b->identity_pub, 32);
    assert_int_equal(a->registration_id, b->registration_id);
    assert_int_equal(a->spk_id, b->spk_id);
    assert_memory_equal(a->spk_priv, b->spk_priv, 32);
    assert_memory_equal(a->spk_pub, b->spk_pub, 32);
    assert_memory_equal(a->spk_sig, b->spk_sig, 64);
    assert_int_equal(a->spk_created, b->spk_created);
    assert_memory_equal(a->adv_secret, b->adv_secret, 32);
    assert_int_equal(a->next_prekey_id, b->next_prekey_id);
    assert_string_equal(a->me_jid, b->me_jid);
    assert_string_equal(a->me_lid, b->me_lid);
    assert_string_equal(a->platform, b->platform);
    assert_string_equal(a->push_name, b->push_name);
    assert_int_equal(a->adv_identity_len, b->adv_identity_len);
    assert_memory_equal(a->adv_identity, b->adv_identity, a->adv_identity_len);
    assert_int_equal(a->routing_info_len, b->routing_info_len);
    if (a->routing_info_len)
        assert_memory_equal(a->routing_info, b->routing_info, a->routing_info_len);
}

static wa_store *open_store(const char *name)
{
    char p[300];
    wa_store *s = NULL;

    path_of(p, sizeof p, name);
    assert_int_equal(wa_store_open(p, NULL, &s), 0);
    return s;
}

static void test_open_bad(void **state)
{
    char p[300];
    wa_store *s = NULL;
    FILE *f;

    (void)state;
    assert_int_equal(wa_store_open(NULL, NULL, &s), WA_EINVAL);
    assert_int_equal(wa_store_open("", NULL, &s), WA_EINVAL);
    path_of(p, sizeof p, "garbage.db");
    f = fopen(p, "wb");
    assert_non_null(f);
    fputs("this is not an SQLite database, just some text long enough to matter..........", f);
    fclose(f);
    assert_int_equal(wa_store_open(p, NULL, &s), WA_ESTORE);
    assert_null(s);
    path_of(p, sizeof p, "nodir/x.db");
    assert_int_equal(wa_store_open(p, NULL, &s), WA_ESTORE);
}

static void test_accounts_and_creds(void **state)
{
    wa_store *s;
    wa_store_creds c, got;
    int64_t a = 0, b = 0, again = 0;
    struct stat st;
    char p[300];

    (void)state;
    s = open_store("a.db");
    path_of(p, sizeof p, "a.db");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(wa_store_account(s, "alice", 0, &a), WA_ENOTFOUND);
    assert_int_equal(wa_store_account(s, "", 1, &a), WA_EINVAL);
    assert_int_equal(wa_store_account(s, "alice", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "bob", 1, &b), 0);
    assert_true(a != b);
    assert_int_equal(wa_store_account(s, "alice", 1, &again), 0);
    assert_int_equal(again, a);

    assert_int_equal(wa_store_creds_load(s, a, &got), WA_ENOTFOUND);
    assert_false(wa_store_account_paired(s, a));
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_false(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_creds_equal(&c, &got);

    /* pairing fills in the identity (durable) */
    snprintf(c.me_jid, sizeof c.me_jid, "15551234567:3@s.whatsapp.net");
    snprintf(c.me_lid, sizeof c.me_lid, "99887766:3@lid");
    snprintf(c.platform, sizeof c.platform, "android");
    snprintf(c.push_name, sizeof c.push_name, "Alice");
    c.adv_identity_len = 200;
    memset(c.adv_identity, 0xAB, 200);
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    assert_true(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_set_routing(s, a, (const uint8_t *)"\x08\x02", 2), 0);
    c.routing_info_len = 2;
    memcpy(c.routing_info, "\x08\x02", 2);
    assert_int_equal(wa_store_set_push_name(s, a, "Alice B"), 0);
    snprintf(c.push_name, sizeof c.push_name, "Alice B");
    assert_int_equal(wa_store_set_routing(s, b, (const uint8_t *)"x", 1), WA_ENOTFOUND);

    /* bob's creds are separate */
    fill_creds(&got, 50);
    assert_int_equal(wa_store_creds_save(s, b, &got, 0), 0);
    wa_store_close(s);

    /* reopen: everything is still there */
    s = open_store("a.db");
    assert_int_equal(wa_store_account(s, "alice", 0, &again), 0);
    assert_int_equal(again, a);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_creds_equal(&c, &got);
    assert_int_equal(wa_store_creds_load(s, b, &got), 0);
    assert_int_equal(got.noise_priv[0], 50);

    /* invalid creds are refused */
    c.next_prekey_id = 0;
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), WA_EINVAL);
    wa_store_creds_wipe(&got);
    assert_int_equal(got.registration_id, 0);
    wa_store_close(s);
}

static void test_signed_prekey_rotation(void **state)
{
    wa_store *s = open_store("spk.db");
    wa_store_creds c, got;
    uint8_t priv[32], pub[32], sig[64];
    int64_t a;

    (void)state;
    assert_int_equal(wa_store_account(s, "x", 1, &a), 0);
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    /* rotate: new id 2; the old one stays readable */
    c.spk_id = 2;
    memset(c.spk_priv, 0x77, 32);
    memset(c.spk_pub, 0x78, 32);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.spk_id, 2);
    assert_int_equal(got.spk_priv[0], 0x77);
    assert_int_equal(wa_store_signed_prekey_get(s, a, 1, priv, pub, sig), 0);
    assert_int_equal(priv[0], 5);
    assert_int_equal(pub[0], 6);
    assert_int_equal(sig[0], 7);
    assert_int_equal(wa_store_signed_prekey_get(s, a, 3, NULL, NULL, NULL), WA_ENOTFOUND);
    wa_store_close(s);
}

static void test_prekeys(void **state)
{
    wa_store *s = open_store("pk.db");
    wa_store_creds c, got;
    wa_store_prekey keys[10], out[10], one;
    uint32_t ids[3] = {1, 2, 3};
    size_t n, i;
    int64_t a, b;

    (void)state;
    assert_int_equal(wa_store_account(s, "x", 1, &a), 0);
    for (i = 0; i < 10; i++) {
        keys[i].id = (uint32_t)(i + 1);
        memset(keys[i].priv, (int)i, 32);
        memset(keys[i].pub, (int)(i + 100), 32);
    }
    /* no creds yet: the next id cannot be recorded */
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 0);
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    /* id 0 is never valid */
    keys[0].id = 0;
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), WA_EINVAL);
    keys[0].id = 1;
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.next_prekey_id, 11);
    /* a duplicate id rolls the whole batch back */
    assert_int_equal(wa_store_prekeys_add(s, a, keys + 9, 1, 12), WA_EEXIST);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.next_prekey_id, 11);

    assert_int_equal(wa_store_prekeys_pending(s, a, out, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[3].id, 4);
    assert_int_equal(out[3].pub[0], 103);
    assert_int_equal(wa_store_prekeys_mark_uploaded(s, a, ids, 3), 0);
    assert_int_equal(wa_store_prekeys_pending(s, a, out, 10, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(out[0].id, 4);
    assert_int_equal(wa_store_prekeys_count(s, a, 1, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(wa_store_prekey_get(s, a, 5, &one), 0);
    assert_int_equal(one.id, 5);
    assert_int_equal(one.priv[0], 4);
    assert_int_equal(wa_store_prekey_remove(s, a, 5), 0);
    assert_int_equal(wa_store_prekey_get(s, a, 5, &one), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekey_remove(s, a, 5), 0);
    /* the n lowest pending (4, 6: 5 is gone) marked in one statement; another account's keys
     * are not touched */
    assert_int_equal(wa_store_account(s, "y", 1, &b), 0);
    fill_creds(&c, 2);
    assert_int_equal(wa_store_creds_save(s, b, &c, 0), 0);
    assert_int_equal(wa_store_prekeys_add(s, b, keys, 3, 4), 0);
    assert_int_equal(wa_store_prekeys_mark_lowest(s, a, 2), 0);
    assert_int_equal(wa_store_prekeys_pending(s, a, out, 10, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0].id, 7);
    assert_int_equal(wa_store_prekeys_count(s, a, 1, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(wa_store_prekeys_pending(s, b, out, 10, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(wa_store_prekeys_mark_lowest(s, a, 0), 0);
    assert_int_equal(wa_store_prekeys_mark_lowest(s, a, 100), 0);
    assert_int_equal(wa_store_prekeys_pending(s, a, out, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_store_prekeys_count(s, a, 1, &n), 0);
    assert_int_equal(n, 9);
    wa_store_close(s);
}

static void test_lid_map(void **state)
{
    wa_store *s = open_store("lid.db");
    char out[64];
    int64_t a, b;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    assert_int_equal(wa_store_lid_put(s, a, "15551234567", "99887766"), 0);
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, sizeof out), 0);
    assert_string_equal(out, "99887766");
    assert_int_equal(wa_store_pn_for_lid(s, a, "99887766", out, sizeof out), 0);
    assert_string_equal(out, "15551234567");
    assert_int_equal(wa_store_lid_for_pn(s, b, "15551234567", out, sizeof out), WA_ENOTFOUND);
    /* a new LID for the same number replaces the old mapping both ways */
    assert_int_equal(wa_store_lid_put(s, a, "15551234567", "11112222"), 0);
    assert_int_equal(wa_store_pn_for_lid(s, a, "99887766", out, sizeof out), WA_ENOTFOUND);
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, sizeof out), 0);
    assert_string_equal(out, "11112222");
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, 4), WA_ELIMIT);
    assert_int_equal(wa_store_lid_put(s, a, "", "1"), WA_EINVAL);
    wa_store_close(s);
}

static int count_cb(int64_t id, const char *name, void *ud)
{
    (void)id;
    (void)name;
    (*(int *)ud)++;
    return 0;
}

static void test_wipe_and_delete(void **state)
{
    wa_store *s = open_store("w.db");
    wa_store_creds c, got;
    wa_store_prekey k;
    int64_t a, b, again;
    char out[32];
    size_t n;
    int count = 0;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    fill_creds(&c, 1);
    snprintf(c.me_jid, sizeof c.me_jid, "1:1@s.whatsapp.net");
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    assert_int_equal(wa_store_creds_save(s, b, &c, 1), 0);
    k.id = 1;
    memset(k.priv, 1, 32);
    memset(k.pub, 2, 32);
    assert_int_equal(wa_store_prekeys_add(s, a, &k, 1, 2), 0);
    assert_int_equal(wa_store_prekeys_add(s, b, &k, 1, 2), 0);
    assert_int_equal(wa_store_lid_put(s, a, "1", "2"), 0);

    /* logout wipe: credentials, keys and map gone, the name stays */
    assert_int_equal(wa_store_account_wipe(s, a), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), WA_ENOTFOUND);
    assert_false(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_store_lid_for_pn(s, a, "1", out, sizeof out), WA_ENOTFOUND);
    assert_int_equal(wa_store_account(s, "a", 0, &again), 0);
    assert_int_equal(again, a);
    /* the other account is untouched */
    assert_true(wa_store_account_paired(s, b));
    assert_int_equal(wa_store_prekeys_count(s, b, 0, &n), 0);
    assert_int_equal(n, 1);

    assert_int_equal(wa_store_account_delete(s, b), 0);
    assert_int_equal(wa_store_account(s, "b", 0, &again), WA_ENOTFOUND);
    assert_int_equal(wa_store_account_delete(s, b), WA_ENOTFOUND);
    assert_int_equal(wa_store_accounts(s, count_cb, &count), 0);
    assert_int_equal(count, 1);
    wa_store_close(s);
}

static void test_snapshot_restore(void **state)
{
    wa_store *s = open_store("main.db"), *t;
    wa_store_creds c, got;
    wa_store_prekey keys[3], out[3];
    char snap[300], out_s[32];
    struct stat st;
    int64_t a, b, r, r2;
    size_t n, i;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    fill_creds(&c, 9);
    snprintf(c.me_jid, sizeof c.me_jid, "15550001111:2@s.whatsapp.net");
    snprintf(c.me_lid, sizeof c.me_lid, "4242:2@lid");
    c.adv_identity_len = 5;
    memcpy(c.adv_identity, "hello", 5);
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    for (i = 0; i < 3; i++) {
        keys[i].id = (uint32_t)(i + 1);
        memset(keys[i].priv, 0x10 + (int)i, 32);
        memset(keys[i].pub, 0x20 + (int)i, 32);
    }
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 3, 4), 0);
    c.next_prekey_id = 4;
    assert_int_equal(wa_store_lid_put(s, a, "15550001111", "4242"), 0);
    fill_creds(&got, 77);
    assert_int_equal(wa_store_creds_save(s, b, &got, 0), 0);

    path_of(snap, sizeof snap, "a.snap");
    assert_int_equal(wa_store_snapshot(s, a, snap), 0);
    assert_int_equal(stat(snap, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(wa_store_snapshot(s, a, snap), WA_EEXIST);
    {
        char p[300];
        path_of(p, sizeof p, "missing.snap");
        assert_int_equal(wa_store_snapshot(s, 999, p), WA_ENOTFOUND);
        assert_int_not_equal(access(p, F_OK), 0); /* a failed snapshot leaves no file */
    }

    /* restore into another store and into the same one under another name */
    t = open_store("other.db");
    assert_int_equal(wa_store_restore(t, snap, "restored", &r), 0);
    assert_int_equal(wa_store_creds_load(t, r, &got), 0);
    assert_creds_equal(&c, &got);
    assert_int_equal(wa_store_prekeys_pending(t, r, out, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].priv[0], 0x12);
    assert_int_equal(wa_store_lid_for_pn(t, r, "15550001111", out_s, sizeof out_s), 0);
    assert_string_equal(out_s, "4242");
    assert_int_equal(wa_store_restore(t, snap, "restored", &r2), WA_EEXIST);
    wa_store_close(t);

    assert_int_equal(wa_store_restore(s, snap, "copy", &r), 0);
    assert_true(r != a && r != b);
    assert_int_equal(wa_store_creds_load(s, r, &got), 0);
    assert_creds_equal(&c, &got);
    /* only account a went into the snapshot */
    assert_int_equal(wa_store_creds_load(s, b, &got), 0);
    assert_int_equal(got.noise_priv[0], 77);

    /* not a snapshot */
    {
        char p[300];
        path_of(p, sizeof p, "main.db");
        assert_int_equal(wa_store_restore(s, p, "bad", &r2), WA_EINVAL);
        path_of(p, sizeof p, "nothing-here");
        assert_int_equal(wa_store_restore(s, p, "bad", &r2), WA_EINVAL);
    }
    wa_store_close(s);
}

static void test_two_connections(void **state)
{
    /* two loop threads would each open their own connection on one file */
    wa_store *s = open_store("two.db"), *t = open_store("two.db");
    wa_store_creds c, got;
    int64_t a, a2;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    fill_creds(&c, 3);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_int_equal(wa_store_account(t, "a", 0, &a2), 0);
    assert_int_equal(a, a2);
    assert_int_equal(wa_store_creds_load(t, a2, &got), 0);
    assert_creds_equal(&c, &got);
    wa_store_close(s);
    wa_store_close(t);
}

/* ---- end-to-end state ----------------------------------------------------------------------- */

static int64_t paired_account(wa_store *s, const char *name, uint8_t seed)
{
    wa_store_creds c;
    int64_t a;

    assert_int_equal(wa_store_account(s, name, 1, &a), 0);
    fill_creds(&c, seed);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    return a;
}

static void test_e2e_identities(void **state)
{
    wa_store *s = open_store("e2e_id.db");
    int64_t a = paired_account(s, "a", 1), b = paired_account(s, "b", 9);
    wa_store_addr x = {"15551234567", 2}, y = {"15551234567", 3}, bad = {"", 0};
    uint8_t k1[32], k2[32], got[32], priv[32], pub[32];
    uint32_t reg = 0;

    (void)state;
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    assert_int_equal(wa_store_identity_get(s, a, &x, got), WA_ENOTFOUND);
    assert_int_equal(wa_store_identity_put(s, a, &x, k1), 0);
    assert_int_equal(wa_store_identity_get(s, a, &x, got), 0);
    assert_memory_equal(got, k1, 32);
    assert_int_equal(wa_store_identity_get(s, a, &y, got), WA_ENOTFOUND); /* per device */
    assert_int_equal(wa_store_identity_get(s, b, &x, got), WA_ENOTFOUND); /* per account */
    assert_int_equal(wa_store_identity_put(s, a, &x, k2), 0);             /* replaced */
    assert_int_equal(wa_store_identity_get(s, a, &x, got), 0);
    assert_memory_equal(got, k2, 32);
    assert_int_equal(wa_store_identity_put(s, a, &bad, k1), WA_EINVAL);
    assert_int_equal(wa_store_own_identity(s, a, priv, pub, &reg), 0);
    assert_int_equal(reg, 12345);
    memset(got, 1 + 2, 32); /* fill_creds: identity_priv = seed + 2 */
    assert_memory_equal(priv, got, 32);
    assert_int_equal(wa_store_own_identity(s, 999, priv, pub, &reg), WA_ENOTFOUND);
    wa_store_close(s);
}

static void test_e2e_sessions(void **state)
{
    wa_store *s = open_store("e2e_sess.db");
    int64_t a = paired_account(s, "a", 1), b = paired_account(s, "b", 9);
    wa_store_addr d0 = {"111", 0}, d1 = {"111", 1}, l1 = {"999_1", 1}, none = {"222", 0};
    wa_store_addr batch[5];
    wa_buf out, outs[5];
    uint8_t rec[300], found[5];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rec; i++)
        rec[i] = (uint8_t)i;
    wa_buf_init(&out, 1024);
    assert_int_equal(wa_store_session_get(s, a, &d0, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_session_put(s, a, &d0, rec, 100), 0);
    assert_int_equal(wa_store_session_put(s, a, &d1, rec, 200), 0);
    assert_int_equal(wa_store_session_put(s, a, &l1, rec + 1, 50), 0);
    assert_int_equal(wa_store_session_put(s, b, &d0, rec + 2, 10), 0);
    assert_int_equal(wa_store_session_put(s, a, &d0, rec, 0), WA_EINVAL);
    assert_int_equal(wa_store_session_get(s, a, &d1, &out), 0);
    assert_int_equal(out.len, 200);
    assert_memory_equal(out.data, rec, 200);
    wa_buf_cleanup(&out);
    /* a record larger than the buffer's cap: WA_ELIMIT, never truncated */
    wa_buf_init(&out, 150);
    assert_int_equal(wa_store_session_get(s, a, &d1, &out), WA_ELIMIT);
    wa_buf_cleanup(&out);

    /* batch: duplicates, another name, a missing one, other account untouched */
    batch[0] = d1;
    batch[1] = none;
    batch[2] = l1;
    batch[3] = d0;
    batch[4] = d1;
    for (i = 0; i < 5; i++)
        wa_buf_init(&outs[i], 4096);
    assert_int_equal(wa_store_sessions_get(s, a, batch, 5, outs, found), 0);
    assert_int_equal(found[0], 1);
    assert_int_equal(outs[0].len, 200);
    assert_int_equal(found[1], 0);
    assert_int_equal(outs[1].len, 0);
    assert_int_equal(found[2], 1);
    assert_memory_equal(outs[2].data, rec + 1, 50);
    assert_int_equal(found[3], 1);
    assert_int_equal(outs[3].len, 100);
    assert_int_equal(found[4], 1);
    assert_int_equal(outs[4].len, 200);
    for (i = 0; i < 5; i++)
        wa_buf_cleanup(&outs[i]);
    /* inside a transaction too */
    assert_int_equal(wa_store_tx_begin(s), 0);
    for (i = 0; i < 5; i++)
        wa_buf_init(&outs[i], 4096);
    assert_int_equal(wa_store_sessions_get(s, a, batch, 5, outs, found), 0);
    assert_int_equal(found[3], 1);
    for (i = 0; i < 5; i++)
        wa_buf_cleanup(&outs[i]);
    assert_int_equal(wa_store_tx_end(s, 0), 0);

    assert_int_equal(wa_store_session_delete(s, a, &d1), 1);
    assert_int_equal(wa_store_session_delete(s, a, &d1), 0);
    wa_buf_init(&out, 1024);
    assert_int_equal(wa_store_session_get(s, b, &d0, &out), 0); /* b kept its own */
    assert_int_equal(out.len, 10);
    wa_buf_cleanup(&out);
    wa_store_close(s);
}

static void test_e2e_transactions(void **state)
{
    wa_store *s = open_store("e2e_tx.db");
    int64_t a = paired_account(s, "a", 1);
    wa_store_addr d = {"111", 1}, e = {"111", 2};
    wa_buf out;
    uint8_t rec[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int st;

    (void)state;
    /* rolled back as a whole, nested levels included */
    assert_int_equal(wa_store_tx_begin(s), 0);
    assert_int_equal(wa_store_session_put(s, a, &d, rec, 8), 0);
    assert_int_equal(wa_store_tx_begin(s), 0);
    assert_int_equal(
        wa_store_seen_put(s, a, "111@s.whatsapp.net", "ID1", WA_STORE_SEEN_DONE, NULL, 0, 1), 0);
    assert_int_equal(wa_store_tx_end(s, 0), 0);
    assert_int_equal(wa_store_tx_end(s, WA_ECRYPTO), WA_ECRYPTO);
    wa_buf_init(&out, 64);
    assert_int_equal(wa_store_session_get(s, a, &d, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_seen_get(s, a, "111@s.whatsapp.net", "ID1", &st, NULL), WA_ENOTFOUND);
    /* an inner rollback keeps the outer level's writes */
    assert_int_equal(wa_store_tx_begin(s), 0);
    assert_int_equal(wa_store_session_put(s, a, &d, rec, 8), 0);
    assert_int_equal(wa_store_tx_begin(s), 0);
    assert_int_equal(wa_store_session_put(s, a, &e, rec, 4), 0);
    assert_int_equal(wa_store_tx_end(s, WA_EPROTO), WA_EPROTO);
    assert_int_equal(wa_store_tx_end(s, 0), 0);
    assert_int_equal(wa_store_session_get(s, a, &d, &out), 0);
    assert_int_equal(out.len, 8);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_session_get(s, a, &e, &out), WA_ENOTFOUND);
    /* functions with their own transaction work inside one (savepoints) */
    assert_int_equal(wa_store_tx_begin(s), 0);
    assert_int_equal(wa_store_lid_put(s, a, "111", "999"), 0);
    assert_int_equal(wa_store_tx_end(s, 0), 0);
    assert_int_equal(wa_store_tx_end(s, 0), WA_ESTORE); /* nothing open */
    wa_buf_cleanup(&out);
    wa_store_close(s);
}

static void test_e2e_sender_keys_and_rename(void **state)
{
    wa_store *s = open_store("e2e_sk.db");
    int64_t a = paired_account(s, "a", 1);
    const char *g = "120363000000000001@g.us";
    wa_store_addr pn0 = {"111", 0}, pn2 = {"111", 2}, lid2 = {"999_1", 2}, devs[3];
    uint8_t rec[16], key[32], got[32];
    wa_buf out;

    (void)state;
    memset(rec, 7, sizeof rec);
    memset(key, 5, sizeof key);
    wa_buf_init(&out, 256);
    assert_int_equal(wa_store_sender_key_get(s, a, g, &pn2, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_sender_key_put(s, a, g, &pn2, rec, 16), 0);
    assert_int_equal(wa_store_sender_key_get(s, a, g, &pn2, &out), 0);
    assert_int_equal(out.len, 16);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_sender_key_get(s, a, "other@g.us", &pn2, &out), WA_ENOTFOUND);

    devs[0] = pn0;
    devs[1] = pn2;
    devs[2] = pn2;
    assert_int_equal(wa_store_skdm_has(s, a, g, &pn2), 0);
    assert_int_equal(wa_store_skdm_mark(s, a, g, devs, 3), 0);
    assert_int_equal(wa_store_skdm_has(s, a, g, &pn2), 1);
    assert_int_equal(wa_store_skdm_has(s, a, g, &lid2), 0);
    assert_int_equal(wa_store_skdm_clear(s, a, g), 0);
    assert_int_equal(wa_store_skdm_has(s, a, g, &pn0), 0);

    /* rename "111" -> "999_1": session, identity and sender key move; existing rows win */
    assert_int_equal(wa_store_session_put(s, a, &pn2, rec, 16), 0);
    assert_int_equal(wa_store_session_put(s, a, &pn0, rec, 8), 0);
    assert_int_equal(wa_store_session_put(s, a, &(wa_store_addr){"999_1", 0}, rec, 4), 0);
    assert_int_equal(wa_store_identity_put(s, a, &pn2, key), 0);
    assert_int_equal(wa_store_e2e_rename(s, a, "111", "999_1"), 0);
    assert_int_equal(wa_store_session_get(s, a, &lid2, &out), 0);
    assert_int_equal(out.len, 16);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_session_get(s, a, &(wa_store_addr){"999_1", 0}, &out), 0);
    assert_int_equal(out.len, 4); /* the LID row won */
    wa_buf_reset(&out);
    assert_int_equal(wa_store_session_get(s, a, &pn2, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_session_get(s, a, &pn0, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_identity_get(s, a, &lid2, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(wa_store_sender_key_get(s, a, g, &lid2, &out), 0);
    assert_int_equal(wa_store_sender_key_delete(s, a, g, &lid2), 1);
    assert_int_equal(wa_store_sender_key_delete(s, a, g, &lid2), 0);
    wa_buf_cleanup(&out);
    wa_store_close(s);
}

static void test_e2e_seen_and_sent(void **state)
{
    wa_store *s = open_store("e2e_seen.db");
    int64_t a = paired_account(s, "a", 1), b = paired_account(s, "b", 2);
    const char *chat = "111@s.whatsapp.net";
    char id[32], got_chat[64];
    uint8_t pl[5] = {9, 8, 7, 6, 5};
    wa_buf out;
    int st = 0, i, n;

    (void)state;
    wa_buf_init(&out, 1024);
    assert_int_equal(wa_store_seen_put(s, a, chat, "3EB0AA", WA_STORE_SEEN_DECRYPTED, pl, 5, 1), 0);
    assert_int_equal(wa_store_seen_get(s, a, chat, "3EB0AA", &st, &out), 0);
    assert_int_equal(st, WA_STORE_SEEN_DECRYPTED);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, pl, 5);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_seen_put(s, a, chat, "3EB0AA", WA_STORE_SEEN_DONE, NULL, 0, 1), 0);
    assert_int_equal(wa_store_seen_get(s, a, chat, "3EB0AA", &st, &out), 0);
    assert_int_equal(st, WA_STORE_SEEN_DONE);
    assert_int_equal(out.len, 0); /* the payload is dropped once handed over */
    assert_int_equal(wa_store_seen_get(s, a, "222@s.whatsapp.net", "3EB0AA", &st, NULL),
                     WA_ENOTFOUND);
    assert_int_equal(wa_store_seen_get(s, b, chat, "3EB0AA", &st, NULL), WA_ENOTFOUND);
    assert_int_equal(wa_store_seen_put(s, a, chat, "X", 7, NULL, 0, 1), WA_EINVAL);
    /* done in place: the plaintext goes, only this (account, chat, id) changes */
    assert_int_equal(wa_store_seen_put(s, a, chat, "3EB0BB", WA_STORE_SEEN_DECRYPTED, pl, 5, 2), 0);
    assert_int_equal(wa_store_seen_put(s, b, chat, "3EB0BB", WA_STORE_SEEN_DECRYPTED, pl, 5, 2), 0);
    assert_int_equal(wa_store_seen_done(s, a, chat, "3EB0BB", 2), 0);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_seen_get(s, a, chat, "3EB0BB", &st, &out), 0);
    assert_int_equal(st, WA_STORE_SEEN_DONE);
    assert_int_equal(out.len, 0);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_seen_get(s, b, chat, "3EB0BB", &st, &out), 0);
    assert_int_equal(st, WA_STORE_SEEN_DECRYPTED);
    assert_int_equal(out.len, 5);
    /* an id no longer (or never) there is added, done */
    assert_int_equal(wa_store_seen_done(s, a, chat, "3EB0CC", 3), 0);
    assert_int_equal(wa_store_seen_get(s, a, chat, "3EB0CC", &st, NULL), 0);
    assert_int_equal(st, WA_STORE_SEEN_DONE);
    assert_int_equal(wa_store_seen_done(s, a, chat, "", 3), WA_EINVAL);

    /* recent sends: bounded, newest kept */
    for (i = 0; i < WA_STORE_SENT_KEEP + 200; i++) {
        snprintf(id, sizeof id, "3EB0%04d", i);
        assert_int_equal(wa_store_sent_put(s, a, id, chat, pl, 5, i), 0);
    }
    assert_int_equal(wa_store_sent_put(s, b, "3EB00000", "x@s.whatsapp.net", pl, 1, 0), 0);
    wa_buf_reset(&out);
    snprintf(id, sizeof id, "3EB0%04d", WA_STORE_SENT_KEEP + 199);
    assert_int_equal(wa_store_sent_get(s, a, id, got_chat, sizeof got_chat, &out), 0);
    assert_string_equal(got_chat, chat);
    assert_int_equal(out.len, 5);
    assert_int_equal(wa_store_sent_get(s, a, id, got_chat, 5, &out), WA_ELIMIT);
    /* the first ones were pruned; account b's row stayed */
    wa_buf_reset(&out);
    assert_int_equal(wa_store_sent_get(s, a, "3EB00000", got_chat, sizeof got_chat, &out),
                     WA_ENOTFOUND);
    assert_int_equal(wa_store_sent_get(s, b, "3EB00000", got_chat, sizeof got_chat, &out), 0);
    for (i = n = 0; i < WA_STORE_SENT_KEEP + 200; i++) {
        snprintf(id, sizeof id, "3EB0%04d", i);
        wa_buf_reset(&out);
        if (wa_store_sent_get(s, a, id, got_chat, sizeof got_chat, &out) == 0)
            n++;
    }
    assert_true(n >= WA_STORE_SENT_KEEP && n <= WA_STORE_SENT_KEEP + 64);
    wa_buf_cleanup(&out);
    wa_store_close(s);
}

static void test_e2e_snapshot_wipe(void **state)
{
    wa_store *s = open_store("e2e_snap.db");
    int64_t a = paired_account(s, "a", 1), r;
    wa_store_addr d = {"111", 1};
    uint8_t rec[4] = {1, 2, 3, 4};
    char snap[300];
    wa_buf out;
    int st;

    (void)state;
    assert_int_equal(wa_store_session_put(s, a, &d, rec, 4), 0);
    assert_int_equal(wa_store_sender_key_put(s, a, "g@g.us", &d, rec, 4), 0);
    assert_int_equal(wa_store_seen_put(s, a, "c", "i", WA_STORE_SEEN_DONE, NULL, 0, 1), 0);
    path_of(snap, sizeof snap, "e2e.snap");
    assert_int_equal(wa_store_snapshot(s, a, snap), 0);
    assert_int_equal(wa_store_restore(s, snap, "copy", &r), 0);
    wa_buf_init(&out, 64);
    assert_int_equal(wa_store_session_get(s, r, &d, &out), 0);
    assert_memory_equal(out.data, rec, 4);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_sender_key_get(s, r, "g@g.us", &d, &out), 0);
    assert_int_equal(wa_store_seen_get(s, r, "c", "i", &st, NULL), 0);
    assert_int_equal(wa_store_account_wipe(s, a), 0);
    wa_buf_reset(&out);
    assert_int_equal(wa_store_session_get(s, a, &d, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_sender_key_get(s, a, "g@g.us", &d, &out), WA_ENOTFOUND);
    assert_int_equal(wa_store_seen_get(s, a, "c", "i", &st, NULL), WA_ENOTFOUND);
    assert_int_equal(wa_store_session_get(s, r, &d, &out), 0); /* the copy is untouched */
    wa_buf_cleanup(&out);
    wa_store_close(s);
}

/* App-state sync keys: put/get, the newer-timestamp rule, isolation, snapshot/restore and wipe;
 * a snapshot of schema 2 (before the table) still restores. */
static void appstate_key(wa_store_appstate_key *k, uint8_t seed, int64_t ts)
{
    memset(k, 0, sizeof *k);
    k->id_len = 6;
    memset(k->id, seed, 6);
    k->data_len = 32;
    memset(k->data, seed + 1, 32);
    k->fingerprint_len = 8;
    memset(k->fingerprint, seed + 2, 8);
    k->timestamp = ts;
}

static void test_appstate_keys(void **state)
{
    wa_store *s = open_store("appstate.db");
    int64_t a = paired_account(s, "a", 1), b = paired_account(s, "b", 2), r;
    wa_store_appstate_key k, got;
    uint8_t other_id[6] = {9, 9, 9, 9, 9, 9};
    char snap[300], old[300];
    sqlite3 *db;
    size_t n = 99;

    (void)state;
    assert_int_equal(wa_store_appstate_key_count(s, a, &n), 0);
    assert_int_equal(n, 0);
    appstate_key(&k, 0x10, 1000);
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), 0);
    memset(&got, 0xAA, sizeof got);
    assert_int_equal(wa_store_appstate_key_get(s, a, k.id, k.id_len, &got), 0);
    assert_int_equal(got.id_len, 6);
    assert_memory_equal(got.id, k.id, 6);
    assert_int_equal(got.data_len, 32);
    assert_memory_equal(got.data, k.data, 32);
    assert_int_equal(got.fingerprint_len, 8);
    assert_memory_equal(got.fingerprint, k.fingerprint, 8);
    assert_int_equal(got.timestamp, 1000);
    assert_int_equal(wa_store_appstate_key_get(s, a, other_id, 6, &got), WA_ENOTFOUND);
    assert_int_equal(wa_store_appstate_key_get(s, b, k.id, 6, &got), WA_ENOTFOUND);
    /* an older copy does not replace it, a newer one does */
    k.data[0] = 0x77;
    k.timestamp = 999;
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), 0);
    assert_int_equal(wa_store_appstate_key_get(s, a, k.id, 6, &got), 0);
    assert_int_equal(got.data[0], 0x11);
    k.timestamp = 2000;
    k.fingerprint_len = 0;
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), 0);
    assert_int_equal(wa_store_appstate_key_get(s, a, k.id, 6, &got), 0);
    assert_int_equal(got.data[0], 0x77);
    assert_int_equal(got.fingerprint_len, 0);
    assert_int_equal(got.timestamp, 2000);
    /* bad arguments */
    k.id_len = 0;
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), WA_EINVAL);
    k.id_len = WA_STORE_APPSTATE_ID_MAX + 1;
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), WA_EINVAL);
    k.id_len = 6;
    k.data_len = 0;
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), WA_EINVAL);
    assert_int_equal(wa_store_appstate_key_get(s, a, k.id, 0, &got), WA_EINVAL);
    appstate_key(&k, 0x20, 5);
    assert_int_equal(wa_store_appstate_key_put(s, a, &k), 0);
    assert_int_equal(wa_store_appstate_key_count(s, a, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(wa_store_appstate_key_count(s, b, &n), 0);
    assert_int_equal(n, 0);

    /* snapshot/restore carry the keys; wipe removes them */
    path_of(snap, sizeof snap, "appstate.snap");
    assert_int_equal(wa_store_snapshot(s, a, snap), 0);
    assert_int_equal(wa_store_restore(s, snap, "copy", &r), 0);
    assert_int_equal(wa_store_appstate_key_count(s, r, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(wa_store_appstate_key_get(s, r, k.id, 6, &got), 0);
    assert_memory_equal(got.data, k.data, 32);
    assert_int_equal(wa_store_account_wipe(s, a), 0);
    assert_int_equal(wa_store_appstate_key_count(s, a, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_store_appstate_key_count(s, r, &n), 0);
    assert_int_equal(n, 2);

    /* a snapshot made before schema 3 (no such table) restores without keys */
    path_of(old, sizeof old, "appstate_v2.snap");
    assert_int_equal(wa_store_snapshot(s, b, old), 0);
    assert_int_equal(sqlite3_open(old, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE app_state_keys; PRAGMA user_version=2", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(wa_store_restore(s, old, "from-v2", &r), 0);
    assert_int_equal(wa_store_appstate_key_count(s, r, &n), 0);
    assert_int_equal(n, 0);
    wa_store_appstate_key_wipe(&k);
    wa_store_appstate_key_wipe(&got);
    wa_store_close(s);
}

static void retry_row(wa_store_retry *r, const char *id, unsigned count, int64_t asked)
{
    memset(r, 0, sizeof *r);
    snprintf(r->msg_id, sizeof r->msg_id, "%s", id);
    snprintf(r->key, sizeof r->key, "1555@s.whatsapp.net");
    snprintf(r->from, sizeof r->from, "1555:3@s.whatsapp.net");
    snprintf(r->t, sizeof r->t, "1796411577");
    r->count = count;
    r->asked = asked;
}

static void test_retry_pending(void **state)
{
    wa_store *s = open_store("retry.db");
    int64_t a = paired_account(s, "a", 1), b = paired_account(s, "b", 2), r;
    wa_store_retry row, *out = calloc(WA_STORE_RETRY_KEEP + 8, sizeof *out);
    char snap[300], id[32];
    size_t n = 99, dropped = 99, i;
    int deleted = -1;

    (void)state;
    assert_non_null(out);
    assert_int_equal(wa_store_retry_list(s, a, out, 8, &n), 0);
    assert_int_equal(n, 0);
    retry_row(&row, "ID1", 1, 1000);
    assert_int_equal(wa_store_retry_put(s, a, &row, &dropped), 0);
    assert_int_equal(dropped, 0);
    retry_row(&row, "ID2", 1, 2000);
    snprintf(row.participant, sizeof row.participant, "1666:2@s.whatsapp.net");
    snprintf(row.recipient, sizeof row.recipient, "1777@s.whatsapp.net");
    assert_int_equal(wa_store_retry_put(s, a, &row, NULL), 0);
    /* an update keeps the row's place (the first asked stays first) */
    retry_row(&row, "ID1", 2, 3000);
    assert_int_equal(wa_store_retry_put(s, a, &row, NULL), 0);
    assert_int_equal(wa_store_retry_list(s, a, out, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].msg_id, "ID1");
    assert_int_equal(out[0].count, 2);
    assert_int_equal(out[0].asked, 3000);
    assert_string_equal(out[0].participant, "");
    assert_string_equal(out[0].key, "1555@s.whatsapp.net");
    assert_string_equal(out[0].t, "1796411577");
    assert_string_equal(out[1].msg_id, "ID2");
    assert_string_equal(out[1].participant, "1666:2@s.whatsapp.net");
    assert_string_equal(out[1].recipient, "1777@s.whatsapp.net");
    assert_int_equal(wa_store_retry_list(s, a, out, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wa_store_retry_list(s, b, out, 8, &n), 0);
    assert_int_equal(n, 0);
    /* delete: by (id, from, participant) */
    assert_int_equal(wa_store_retry_del(s, a, "ID2", "1555:3@s.whatsapp.net", NULL, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(
        wa_store_retry_del(s, a, "ID2", "1555:3@s.whatsapp.net", "1666:2@s.whatsapp.net", &deleted),
        0);
    assert_int_equal(deleted, 1);
    assert_int_equal(wa_store_retry_list(s, a, out, 8, &n), 0);
    assert_int_equal(n, 1);
    /* bad arguments */
    retry_row(&row, "", 1, 0);
    assert_int_equal(wa_store_retry_put(s, a, &row, NULL), WA_EINVAL);
    assert_int_equal(wa_store_retry_del(s, a, "", "x", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_store_retry_list(s, a, NULL, 8, &n), WA_EINVAL);

    /* snapshot/restore carry the rows; wipe removes them */
    path_of(snap, sizeof snap, "retry.snap");
    assert_int_equal(wa_store_snapshot(s, a, snap), 0);
    assert_int_equal(wa_store_restore(s, snap, "copy", &r), 0);
    assert_int_equal(wa_store_retry_list(s, r, out, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].msg_id, "ID1");
    assert_int_equal(wa_store_account_wipe(s, a), 0);
    assert_int_equal(wa_store_retry_list(s, a, out, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_store_retry_list(s, r, out, 8, &n), 0);
    assert_int_equal(n, 1);

    /* bounded: the oldest beyond WA_STORE_RETRY_KEEP are dropped */
    for (i = 0; i < WA_STORE_RETRY_KEEP + 3; i++) {
        snprintf(id, sizeof id, "B%zu", i);
        retry_row(&row, id, 1, (int64_t)i);
        assert_int_equal(wa_store_retry_put(s, b, &row, &dropped), 0);
        assert_int_equal(dropped, i < WA_STORE_RETRY_KEEP ? 0 : 1);
    }
    assert_int_equal(wa_store_retry_list(s, b, out, WA_STORE_RETRY_KEEP + 8, &n), 0);
    assert_int_equal(n, WA_STORE_RETRY_KEEP);
    assert_string_equal(out[0].msg_id, "B3");
    assert_int_equal(wa_store_retry_list(s, r, out, 8, &n), 0);
    assert_int_equal(n, 1); /* per account */
    free(out);
    wa_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad),
        cmocka_unit_test(test_accounts_and_creds),
        cmocka_unit_test(test_signed_prekey_rotation),
        cmocka_unit_test(test_prekeys),
        cmocka_unit_test(test_lid_map),
        cmocka_unit_test(test_wipe_and_delete),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_two_connections),
        cmocka_unit_test(test_e2e_identities),
        cmocka_unit_test(test_e2e_sessions),
        cmocka_unit_test(test_e2e_transactions),
        cmocka_unit_test(test_e2e_sender_keys_and_rename),
        cmocka_unit_test(test_e2e_seen_and_sent),
        cmocka_unit_test(test_e2e_snapshot_wipe),
        cmocka_unit_test(test_appstate_keys),
        cmocka_unit_test(test_retry_pending),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
