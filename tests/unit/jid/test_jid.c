/* test_jid.c - JID parsing (Baileys and whatsmeow forms), canonical formatting, classification.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jid/jid.h"
#include "wa/error.h"

static void assert_parse(const char *s, const char *user, uint8_t agent, uint16_t device,
                         const char *server, const char *canonical)
{
    wa_jid j;
    char buf[WA_JID_STR_MAX];
    int n;

    if (wa_jid_parse(s, &j) != 0)
        fail_msg("parse failed: %s", s);
    assert_string_equal(j.user, user);
    assert_int_equal(j.agent, agent);
    assert_int_equal(j.device, device);
    assert_string_equal(j.server, server);
    n = wa_jid_format(&j, buf, sizeof buf);
    assert_int_equal(n, (int)strlen(canonical));
    assert_string_equal(buf, canonical);
    /* the canonical form parses back to the same JID */
    {
        wa_jid k;
        assert_int_equal(wa_jid_parse(buf, &k), 0);
        assert_true(wa_jid_equal(&j, &k));
    }
}

static void test_parse_forms(void **state)
{
    (void)state;
    assert_parse("123@s.whatsapp.net", "123", 0, 0, "s.whatsapp.net", "123@s.whatsapp.net");
    assert_parse("@s.whatsapp.net", "", 0, 0, "s.whatsapp.net", "@s.whatsapp.net");
    assert_parse("123:4@s.whatsapp.net", "123", 0, 4, "s.whatsapp.net", "123:4@s.whatsapp.net");
    assert_parse("123:0@s.whatsapp.net", "123", 0, 0, "s.whatsapp.net", "123@s.whatsapp.net");
    assert_parse("999:65535@lid", "999", 0, 65535, "lid", "999:65535@lid");
    assert_parse("120363025246125486@g.us", "120363025246125486", 0, 0, "g.us",
                 "120363025246125486@g.us");
    assert_parse("14155551234-1446767878@g.us", "14155551234-1446767878", 0, 0, "g.us",
                 "14155551234-1446767878@g.us");
    assert_parse("status@broadcast", "status", 0, 0, "broadcast", "status@broadcast");
    assert_parse("1@newsletter", "1", 0, 0, "newsletter", "1@newsletter");
    assert_parse("16505361212@c.us", "16505361212", 0, 0, "c.us", "16505361212@c.us");
    assert_parse("1:2@hosted", "1", 0, 2, "hosted", "1:2@hosted");
    assert_parse("1@hosted.lid", "1", 0, 0, "hosted.lid", "1@hosted.lid");
    assert_parse("abc@call", "abc", 0, 0, "call", "abc@call");
    /* agent forms: whatsmeow "user.agent:device", Baileys "user_agent:device" */
    assert_parse("1.5:3@s.whatsapp.net", "1", 5, 3, "s.whatsapp.net", "1.5:3@s.whatsapp.net");
    assert_parse("1_5:3@s.whatsapp.net", "1", 5, 3, "s.whatsapp.net", "1.5:3@s.whatsapp.net");
    assert_parse("1.255@s.whatsapp.net", "1", 255, 0, "s.whatsapp.net", "1.255:0@s.whatsapp.net");
    /* msgr / interop: device always written, as the binary node decoder writes them */
    assert_parse("a:0@msgr", "a", 0, 0, "msgr", "a:0@msgr");
    assert_parse("a@msgr", "a", 0, 0, "msgr", "a:0@msgr");
    {
        wa_jid j;
        char buf[WA_JID_STR_MAX];
        assert_int_equal(wa_jid_parse("42-1:3@interop", &j), 0);
        assert_int_equal(j.integrator, 42);
        assert_string_equal(j.user, "1");
        assert_int_equal(j.device, 3);
        assert_int_equal(wa_jid_format(&j, buf, sizeof buf), 14);
        assert_string_equal(buf, "42-1:3@interop");
    }
}

static void test_parse_errors(void **state)
{
    static const char *bad[] = {
        "",
        "s.whatsapp.net",
        "123",
        "a@b@c",
        "123@",
        "123:@s.whatsapp.net",
        "123:x@s.whatsapp.net",
        "123:01@s.whatsapp.net",
        "123:+1@s.whatsapp.net",
        "123:65536@s.whatsapp.net",
        "123:1:2@s.whatsapp.net",
        "1.2.3@s.whatsapp.net",
        "1.256@s.whatsapp.net",
        "1.@s.whatsapp.net",
        "1_x@s.whatsapp.net",
        "1 2@s.whatsapp.net",
        "123@s whatsapp",
        "123@s:net",
        "1:3@interop",
        "x-1:3@interop",
        "42-1@interop",
        "\x01@s.whatsapp.net",
        "caf\xc3\xa9@s.whatsapp.net",
    };
    wa_jid j;
    char longuser[WA_JID_USER_MAX + 40], longserver[WA_JID_SERVER_MAX + 10];

    (void)state;
    memset(&j, 0x5a, sizeof j);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = wa_jid_parse(bad[i], &j);
        if (rc != WA_EJID)
            fail_msg("accepted %s", bad[i]);
    }
    /* out untouched on failure */
    assert_int_equal((unsigned char)j.user[0], 0x5a);
    assert_int_equal(wa_jid_parse(NULL, &j), WA_EINVAL);
    assert_int_equal(wa_jid_parse_n("1@s.whatsapp.net\0x", 18, &j), WA_EJID);
    assert_int_equal(wa_jid_parse_n("1@s.whatsapp.netXX", 16, &j), 0);
    assert_string_equal(j.server, "s.whatsapp.net");

    memset(longuser, '7', sizeof longuser);
    strcpy(longuser + WA_JID_USER_MAX, "@lid");
    assert_int_equal(wa_jid_parse(longuser, &j), 0);
    strcpy(longuser + WA_JID_USER_MAX + 1, "@lid");
    assert_int_equal(wa_jid_parse(longuser, &j), WA_EJID);
    memset(longserver, 'a', sizeof longserver);
    longserver[0] = '@';
    longserver[WA_JID_SERVER_MAX + 1] = '\0';
    assert_int_equal(wa_jid_parse(longserver, &j), 0);
    longserver[WA_JID_SERVER_MAX + 1] = 'a';
    longserver[WA_JID_SERVER_MAX + 2] = '\0';
    assert_int_equal(wa_jid_parse(longserver, &j), WA_EJID);
}

static void test_format(void **state)
{
    wa_jid j;
    char buf[WA_JID_STR_MAX];
    char small[8];

    (void)state;
    assert_int_equal(wa_jid_make(&j, "123", "s.whatsapp.net", 7), 0);
    assert_int_equal(wa_jid_format(&j, buf, sizeof buf), 20);
    assert_string_equal(buf, "123:7@s.whatsapp.net");
    /* exact fit and one byte short */
    assert_int_equal(wa_jid_format(&j, buf, 21), 20);
    assert_int_equal(wa_jid_format(&j, small, sizeof small), WA_ELIMIT);
    assert_int_equal(wa_jid_format(&j, buf, 20), WA_ELIMIT);
    assert_int_equal(wa_jid_make(&j, "1@2", "s.whatsapp.net", 0), WA_EJID);
    assert_int_equal(wa_jid_make(&j, "1", "", 0), WA_EJID);
    assert_int_equal(wa_jid_make(&j, "1", "s:x", 0), WA_EJID);
    /* an invalid struct is refused */
    memset(&j, 0, sizeof j);
    assert_int_equal(wa_jid_format(&j, buf, sizeof buf), WA_EJID);
    strcpy(j.server, "lid");
    strcpy(j.user, "a:b");
    assert_int_equal(wa_jid_format(&j, buf, sizeof buf), WA_EJID);
    /* the longest JID fits WA_JID_STR_MAX */
    memset(&j, 0, sizeof j);
    memset(j.user, '9', WA_JID_USER_MAX);
    memset(j.server, 'x', WA_JID_SERVER_MAX);
    j.agent = 255;
    j.device = 65535;
    j.integrator = 65535;
    assert_true(wa_jid_format(&j, buf, sizeof buf) > 0);
    memcpy(j.server, "interop", 8);
    assert_true(wa_jid_format(&j, buf, sizeof buf) > 0);
}

static void test_helpers(void **state)
{
    wa_jid a, b, c;

    (void)state;
    assert_int_equal(wa_jid_parse("123:4@s.whatsapp.net", &a), 0);
    assert_true(wa_jid_is_user(&a));
    assert_true(wa_jid_is_ad(&a));
    assert_false(wa_jid_is_lid(&a));
    assert_false(wa_jid_is_group(&a));
    assert_false(wa_jid_is_server(&a));
    wa_jid_to_non_ad(&a, &b);
    assert_int_equal(b.device, 0);
    assert_false(wa_jid_is_ad(&b));
    assert_true(wa_jid_same_user(&a, &b));
    assert_false(wa_jid_equal(&a, &b));
    wa_jid_to_non_ad(&a, &a); /* aliasing */
    assert_true(wa_jid_equal(&a, &b));

    assert_int_equal(wa_jid_parse("123:2@c.us", &c), 0);
    wa_jid_normalized_user(&c, &c);
    assert_string_equal(c.server, "s.whatsapp.net");
    assert_int_equal(c.device, 0);
    assert_true(wa_jid_equal(&c, &b));

    assert_int_equal(wa_jid_parse("1@g.us", &a), 0);
    assert_true(wa_jid_is_group(&a));
    assert_int_equal(wa_jid_parse("@g.us", &a), 0);
    assert_true(wa_jid_is_server(&a));
    assert_int_equal(wa_jid_parse("status@broadcast", &a), 0);
    assert_true(wa_jid_is_broadcast(&a));
    assert_true(wa_jid_is_status_broadcast(&a));
    assert_int_equal(wa_jid_parse("123@broadcast", &a), 0);
    assert_false(wa_jid_is_status_broadcast(&a));
    assert_int_equal(wa_jid_parse("1@newsletter", &a), 0);
    assert_true(wa_jid_is_newsletter(&a));
    assert_int_equal(wa_jid_parse("1:3@lid", &a), 0);
    assert_true(wa_jid_is_lid(&a));
    assert_int_equal(wa_jid_domain_type(&a), WA_JID_DOMAIN_LID);
    assert_int_equal(wa_jid_parse("1@hosted", &a), 0);
    assert_true(wa_jid_is_hosted(&a));
    assert_int_equal(wa_jid_domain_type(&a), WA_JID_DOMAIN_HOSTED);
    assert_int_equal(wa_jid_parse("1@hosted.lid", &a), 0);
    assert_int_equal(wa_jid_domain_type(&a), WA_JID_DOMAIN_HOSTED_LID);
    assert_int_equal(wa_jid_parse("1@s.whatsapp.net", &a), 0);
    assert_int_equal(wa_jid_domain_type(&a), WA_JID_DOMAIN_WHATSAPP);
    assert_int_equal(wa_jid_parse("1.7:1@s.whatsapp.net", &a), 0);
    assert_int_equal(wa_jid_domain_type(&a), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
