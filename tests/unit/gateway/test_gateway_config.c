/* test_gateway_config.c - wagate's environment parsing: every variable's default, good values
 * and bad values (each stopping the load with a message that names the variable), and that
 * secrets are never echoed in an error.
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

#include "config.h"
#include "core/log.h"
#include "wa/error.h"

#define ENV_MAX 8

typedef struct env {
    const char *name[ENV_MAX];
    const char *value[ENV_MAX];
    size_t n;
} env;

static const char *env_get(const char *name, void *ud)
{
    env *e = ud;
    size_t i;

    for (i = 0; i < e->n; i++)
        if (!strcmp(e->name[i], name))
            return e->value[i];
    return NULL;
}

static int load1(wg_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    env e = {{name}, {value}, 1};
    return wg_config_load(cfg, env_get, &e, err, errlen);
}

static int load2(wg_config *cfg, const char *n1, const char *v1, const char *n2, const char *v2)
{
    env e = {{n1, n2}, {v1, v2}, 2};
    char err[256];
    return wg_config_load(cfg, env_get, &e, err, sizeof err);
}

/* value must be refused, with the variable's name at the start of the message */
static void expect_bad(const char *name, const char *value)
{
    wg_config cfg;
    char err[512];
    int rc = load1(&cfg, name, value, err, sizeof err);

    if (rc != WA_EINVAL)
        fail_msg("%s=%s accepted", name, value);
    if (strncmp(err, name, strlen(name)) != 0 || err[strlen(name)] != ':')
        fail_msg("error for %s=%s does not name it: %s", name, value, err);
}

static void expect_ok(const char *name, const char *value, wg_config *cfg)
{
    char err[512];
    int rc = load1(cfg, name, value, err, sizeof err);

    if (rc != 0)
        fail_msg("%s=%s refused: %s", name, value, err);
}

static void test_defaults(void **state)
{
    env e = {{NULL}, {NULL}, 0};
    wg_config cfg;
    char err[64];

    (void)state;
    assert_int_equal(wg_config_load(&cfg, env_get, &e, err, sizeof err), 0);
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_string_equal(cfg.data_dir, "./data");
    assert_string_equal(cfg.api_key, "");
    assert_true(cfg.memory_threshold == 0.8);
    assert_int_equal(cfg.memory_debug, 0);
    assert_int_equal(cfg.max_connections, 50);
    assert_int_equal(cfg.ws_keepalive_ms, 15000);
    assert_int_equal(cfg.max_reconnect_failures, 20);
    assert_int_equal(cfg.storage_type, WG_STORAGE_LOCAL);
    assert_int_equal(cfg.backup_interval_ms, 120000);
    assert_int_equal(cfg.health_interval_ms, 60000);
    assert_string_equal(cfg.ws_url, "wss://web.whatsapp.com/ws/chat");
    assert_int_equal(cfg.root_key_set, 0);
    assert_string_equal(cfg.ca_file, "");
    assert_string_equal(cfg.webhook_url, "");
    assert_string_equal(cfg.webhook_secret, "");
    assert_int_equal(cfg.log_level, WA_LOG_INFO);
    assert_int_equal(cfg.log_format, WG_LOG_FORMAT_TEXT);
    assert_int_equal(cfg.on_cloud_run, 0);
}

static void test_empty_is_unset(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("PORT", "", &cfg);
    assert_int_equal(cfg.port, 8080);
    expect_ok("API_KEY", "", &cfg);
    assert_string_equal(cfg.api_key, "");
}

static void test_port(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("PORT", "1", &cfg);
    assert_int_equal(cfg.port, 1);
    expect_ok("PORT", "65535", &cfg);
    assert_int_equal(cfg.port, 65535);
    expect_bad("PORT", "0");
    expect_bad("PORT", "65536");
    expect_bad("PORT", "-1");
    expect_bad("PORT", "+80");
    expect_bad("PORT", "80x");
    expect_bad("PORT", " 80");
    expect_bad("PORT", "http");
    expect_bad("PORT", "99999999999999999999999");
}

static void test_host(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("HOST", "127.0.0.1", &cfg);
    assert_string_equal(cfg.host, "127.0.0.1");
    expect_bad("HOST", "localhost");
    expect_bad("HOST", "1.2.3");
    expect_bad("HOST", "1.2.3.4.5");
    expect_bad("HOST", "256.1.1.1");
    expect_bad("HOST", "::1");
}

static void test_data_dir(void **state)
{
    wg_config cfg;
    char long_dir[2000];

    (void)state;
    expect_ok("DATA_DIR", "/var/lib/wagate", &cfg);
    assert_string_equal(cfg.data_dir, "/var/lib/wagate");
    memset(long_dir, 'a', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = '\0';
    expect_bad("DATA_DIR", long_dir);
}

static void test_api_key(void **state)
{
    wg_config cfg;
    char err[512], key[300];

    (void)state;
    expect_ok("API_KEY", "0123456789abcdef", &cfg);
    assert_string_equal(cfg.api_key, "0123456789abcdef");
    expect_bad("API_KEY", "short");
    expect_bad("API_KEY", "0123456789 abcdef");
    expect_bad("API_KEY", "0123456789abcdef\n");
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    expect_bad("API_KEY", key);
    /* the refused value is never echoed */
    assert_int_equal(load1(&cfg, "API_KEY", "secret value 123456", err, sizeof err), WA_EINVAL);
    assert_null(strstr(err, "secret"));
    /* on failure the struct holds nothing */
    assert_int_equal(load2(&cfg, "API_KEY", "0123456789abcdef", "PORT", "0"), WA_EINVAL);
    assert_string_equal(cfg.api_key, "");
}

static void test_memory_threshold(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("MEMORY_THRESHOLD", "0.75", &cfg);
    assert_true(cfg.memory_threshold == 0.75);
    expect_ok("MEMORY_THRESHOLD", "1", &cfg);
    assert_true(cfg.memory_threshold == 1.0);
    expect_ok("MEMORY_THRESHOLD", ".5", &cfg);
    assert_true(cfg.memory_threshold == 0.5);
    expect_bad("MEMORY_THRESHOLD", "0");
    expect_bad("MEMORY_THRESHOLD", "0.0");
    expect_bad("MEMORY_THRESHOLD", "1.01");
    expect_bad("MEMORY_THRESHOLD", "-0.5");
    expect_bad("MEMORY_THRESHOLD", "80%");
    expect_bad("MEMORY_THRESHOLD", "80");
    expect_bad("MEMORY_THRESHOLD", "nan");
    expect_bad("MEMORY_THRESHOLD", "inf");
    expect_bad("MEMORY_THRESHOLD", "0x0.8p0");
    expect_bad("MEMORY_THRESHOLD", "0.8 ");
    expect_bad("MEMORY_THRESHOLD", "abc");
}

static void test_bools(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("MEMORY_DEBUG", "true", &cfg);
    assert_int_equal(cfg.memory_debug, 1);
    expect_ok("MEMORY_DEBUG", "TRUE", &cfg);
    assert_int_equal(cfg.memory_debug, 1);
    expect_ok("MEMORY_DEBUG", "1", &cfg);
    assert_int_equal(cfg.memory_debug, 1);
    expect_ok("MEMORY_DEBUG", "false", &cfg);
    assert_int_equal(cfg.memory_debug, 0);
    expect_ok("MEMORY_DEBUG", "0", &cfg);
    assert_int_equal(cfg.memory_debug, 0);
    expect_bad("MEMORY_DEBUG", "yes");
    expect_bad("MEMORY_DEBUG", "2");
    expect_bad("MEMORY_DEBUG", "on");
}

static void test_max_connections(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("MAX_CONNECTIONS", "20", &cfg);
    assert_int_equal(cfg.max_connections, 20);
    expect_ok("MAX_CONNECTIONS", "100000", &cfg);
    expect_bad("MAX_CONNECTIONS", "0");
    expect_bad("MAX_CONNECTIONS", "100001");
    expect_bad("MAX_CONNECTIONS", "ten");
    expect_bad("MAX_CONNECTIONS", "1.5");
}

static void test_message_store_and_version(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("PORT", "8080", &cfg);
    assert_int_equal(cfg.message_retention_days, WG_DEFAULT_MESSAGE_RETENTION_DAYS);
    assert_int_equal(cfg.message_store_max, WG_DEFAULT_MESSAGE_STORE_MAX);
    assert_string_equal(cfg.wa_version, "");
    assert_string_equal(cfg.wa_version_url, WG_DEFAULT_VERSION_URL);
    expect_ok("MESSAGE_RETENTION_DAYS", "30", &cfg);
    assert_int_equal(cfg.message_retention_days, 30);
    expect_ok("MESSAGE_RETENTION_DAYS", "0", &cfg);
    assert_int_equal(cfg.message_retention_days, 0);
    expect_bad("MESSAGE_RETENTION_DAYS", "3651");
    expect_bad("MESSAGE_RETENTION_DAYS", "-1");
    expect_bad("MESSAGE_RETENTION_DAYS", "7d");
    expect_ok("MESSAGE_STORE_MAX", "0", &cfg);
    assert_int_equal(cfg.message_store_max, 0);
    expect_ok("MESSAGE_STORE_MAX", "500", &cfg);
    assert_int_equal(cfg.message_store_max, 500);
    expect_bad("MESSAGE_STORE_MAX", "10000001");
    expect_bad("MESSAGE_STORE_MAX", "1e4");
    expect_ok("WA_VERSION", "2.3000.1023456789", &cfg);
    assert_string_equal(cfg.wa_version, "2.3000.1023456789");
    expect_ok("WA_VERSION", "auto", &cfg);
    assert_string_equal(cfg.wa_version, "auto");
    expect_bad("WA_VERSION", "2.3000");
    expect_bad("WA_VERSION", "2.3000.x");
    expect_bad("WA_VERSION", "2.3000.1.4");
    expect_bad("WA_VERSION", "2.3000.12345678901");
    expect_bad("WA_VERSION", "AUTO");
    expect_ok("WA_VERSION_URL", "http://127.0.0.1:9/v", &cfg);
    assert_string_equal(cfg.wa_version_url, "http://127.0.0.1:9/v");
    expect_bad("WA_VERSION_URL", "ftp://x/");
}

static void test_intervals(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("WS_KEEPALIVE_INTERVAL", "20000", &cfg);
    assert_int_equal(cfg.ws_keepalive_ms, 20000);
    expect_bad("WS_KEEPALIVE_INTERVAL", "999");
    expect_bad("WS_KEEPALIVE_INTERVAL", "600001");
    expect_bad("WS_KEEPALIVE_INTERVAL", "20s");
    expect_bad("WS_KEEPALIVE_INTERVAL", "-20000");
    expect_ok("MAX_RECONNECT_FAILURES", "0", &cfg);
    assert_int_equal(cfg.max_reconnect_failures, 0);
    expect_ok("MAX_RECONNECT_FAILURES", "3", &cfg);
    assert_int_equal(cfg.max_reconnect_failures, 3);
    expect_bad("MAX_RECONNECT_FAILURES", "100001");
    expect_bad("MAX_RECONNECT_FAILURES", "-1");
    expect_bad("MAX_RECONNECT_FAILURES", "ten");

    expect_ok("SESSION_BACKUP_INTERVAL", "60000", &cfg);
    assert_int_equal(cfg.backup_interval_ms, 60000);
    expect_ok("SESSION_BACKUP_INTERVAL", "86400000", &cfg);
    expect_bad("SESSION_BACKUP_INTERVAL", "0");
    expect_bad("SESSION_BACKUP_INTERVAL", "86400001");
    expect_bad("SESSION_BACKUP_INTERVAL", "1e5");

    expect_ok("HEALTH_CHECK_INTERVAL", "30000", &cfg);
    assert_int_equal(cfg.health_interval_ms, 30000);
    expect_ok("HEALTH_CHECK_INTERVAL", "250", &cfg);
    expect_bad("HEALTH_CHECK_INTERVAL", "249");
    expect_bad("HEALTH_CHECK_INTERVAL", "3600001");
    expect_bad("HEALTH_CHECK_INTERVAL", "0");
}

static void test_storage(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("SESSION_STORAGE_TYPE", "local", &cfg);
    assert_int_equal(cfg.storage_type, WG_STORAGE_LOCAL);
    expect_ok("SESSION_STORAGE_TYPE", "cloud", &cfg);
    assert_int_equal(cfg.storage_type, WG_STORAGE_CLOUD);
    expect_ok("SESSION_STORAGE_TYPE", "s3", &cfg);
    assert_int_equal(cfg.storage_type, WG_STORAGE_S3);
    assert_string_equal(wg_storage_type_name(WG_STORAGE_S3), "s3");
    expect_bad("SESSION_STORAGE_TYPE", "gcs");
    expect_bad("SESSION_STORAGE_TYPE", "Local");
}

static void test_ws_url(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("WA_WS_URL", "ws://127.0.0.1:7070/ws/chat", &cfg);
    assert_string_equal(cfg.ws_url, "ws://127.0.0.1:7070/ws/chat");
    expect_ok("WA_WS_URL", "wss://example.org/ws/chat", &cfg);
    expect_bad("WA_WS_URL", "https://web.whatsapp.com/ws/chat");
    expect_bad("WA_WS_URL", "wss://");
    expect_bad("WA_WS_URL", "wss://a b");
    expect_bad("WA_WS_URL", "web.whatsapp.com");
}

static void test_root_key(void **state)
{
    wg_config cfg;
    const char *hex = "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b";

    (void)state;
    expect_ok("WA_ROOT_KEY", hex, &cfg);
    assert_int_equal(cfg.root_key_set, 1);
    assert_int_equal(cfg.root_key[0], 0x14);
    assert_int_equal(cfg.root_key[31], 0x6b);
    expect_bad("WA_ROOT_KEY", "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee");
    expect_bad("WA_ROOT_KEY", "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6bff");
    expect_bad("WA_ROOT_KEY", "zz2375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b");
}

static void test_ca_file(void **state)
{
    wg_config cfg;
    char path[] = "/tmp/wg_ca_XXXXXX";
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    expect_ok("WA_CA_FILE", path, &cfg);
    assert_string_equal(cfg.ca_file, path);
    unlink(path);
    expect_bad("WA_CA_FILE", path);
    expect_bad("WA_CA_FILE", "/nonexistent/ca.pem");
}

static void test_webhook(void **state)
{
    wg_config cfg;
    char err[512], secret[300];

    (void)state;
    expect_ok("WEBHOOK_URL", "https://hooks.example.com/wa", &cfg);
    assert_string_equal(cfg.webhook_url, "https://hooks.example.com/wa");
    expect_ok("WEBHOOK_URL", "http://127.0.0.1:9000/", &cfg);
    expect_bad("WEBHOOK_URL", "ftp://example.com/");
    expect_bad("WEBHOOK_URL", "example.com");
    expect_bad("WEBHOOK_URL", "https://exa mple.com/");
    expect_ok("WEBHOOK_SECRET", "s3cr3t-webhook", &cfg);
    assert_string_equal(cfg.webhook_secret, "s3cr3t-webhook");
    memset(secret, 'x', sizeof secret - 1);
    secret[sizeof secret - 1] = '\0';
    assert_int_equal(load1(&cfg, "WEBHOOK_SECRET", secret, err, sizeof err), WA_EINVAL);
    assert_memory_equal(err, "WEBHOOK_SECRET:", 15);
    assert_null(strstr(err, "xxxxxx"));
}

static void test_log(void **state)
{
    wg_config cfg;

    (void)state;
    expect_ok("LOG_LEVEL", "debug", &cfg);
    assert_int_equal(cfg.log_level, WA_LOG_DEBUG);
    expect_ok("LOG_LEVEL", "ERROR", &cfg);
    assert_int_equal(cfg.log_level, WA_LOG_ERROR);
    expect_ok("LOG_LEVEL", "off", &cfg);
    assert_int_equal(cfg.log_level, WA_LOG_OFF);
    expect_bad("LOG_LEVEL", "verbose");
    expect_ok("LOG_FORMAT", "json", &cfg);
    assert_int_equal(cfg.log_format, WG_LOG_FORMAT_JSON);
    expect_ok("LOG_FORMAT", "text", &cfg);
    assert_int_equal(cfg.log_format, WG_LOG_FORMAT_TEXT);
    expect_bad("LOG_FORMAT", "xml");
    expect_bad("LOG_FORMAT", "JSON");
    /* json by default on Cloud Run, and an explicit LOG_FORMAT still wins */
    expect_ok("K_SERVICE", "wagate", &cfg);
    assert_int_equal(cfg.log_format, WG_LOG_FORMAT_JSON);
    assert_int_equal(cfg.on_cloud_run, 1);
    assert_int_equal(load2(&cfg, "K_SERVICE", "wagate", "LOG_FORMAT", "text"), 0);
    assert_int_equal(cfg.log_format, WG_LOG_FORMAT_TEXT);
}

static void test_helpers(void **state)
{
    unsigned long v;
    int b;

    (void)state;
    assert_int_equal(wg_parse_uint("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(wg_parse_uint("", 0, 100, &v), WA_EINVAL);
    assert_int_equal(wg_parse_uint("101", 0, 100, &v), WA_EINVAL);
    assert_int_equal(wg_parse_bool("True", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(wg_parse_bool("", &b), WA_EINVAL);
    assert_true(wg_api_key_valid("abcdefghijklmnop"));
    assert_false(wg_api_key_valid("abcdefghijklmno"));
    assert_false(wg_api_key_valid("abcdefghijklmno\x7f"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_is_unset),
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_data_dir),
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_memory_threshold),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_message_store_and_version),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_storage),
        cmocka_unit_test(test_ws_url),
        cmocka_unit_test(test_root_key),
        cmocka_unit_test(test_ca_file),
        cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
