/*
 * env.c - the backup's environment variables, parsed strictly like src/config.c (see
 * docs/backup.md for the list). The first bad value stops start-up with "VAR: why"; secret
 * values (keys, tokens) are never quoted back.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backup/backup.h"
#include "envvar.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

typedef wg_env_loader loader;

/* A plain string variable: length bound, no control characters. secret: never quoted. */
static int load_str(loader *l, const char *name, char *dst, size_t cap, int required, int secret)
{
    const char *v = wg_env_get(l, name);
    size_t i;

    if (!v) {
        if (required)
            return wg_env_fail(l, name, NULL, "required with this SESSION_STORAGE_TYPE");
        return 0;
    }
    if (strlen(v) >= cap)
        return wg_env_fail(l, name, secret ? NULL : v, "longer than %zu bytes", cap - 1);
    for (i = 0; v[i]; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return wg_env_fail(l, name, secret ? NULL : v, "contains control characters");
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int load_url(loader *l, const char *name, char *dst, size_t cap)
{
    const char *v = wg_env_get(l, name);
    const char *auth;
    size_t n;

    if (!v)
        return 0;
    if (strncasecmp(v, "https://", 8) == 0)
        auth = v + 8;
    else if (strncasecmp(v, "http://", 7) == 0)
        auth = v + 7;
    else
        return wg_env_fail(l, name, v, "must be an http:// or https:// URL");
    n = strlen(auth);
    if (n && auth[n - 1] == '/')
        n--;
    if (n == 0 || strcspn(auth, "/?#@ ") < n)
        return wg_env_fail(l, name, v, "must be scheme://host[:port], without a path");
    return load_str(l, name, dst, cap, 0, 0);
}

static int load_bucket(loader *l, const char *name, char *dst, size_t cap)
{
    const char *v = wg_env_get(l, name);
    size_t i, n;

    if (!v)
        return wg_env_fail(l, name, NULL, "required with this SESSION_STORAGE_TYPE");
    n = strlen(v);
    /* S3 and GCS bucket names: 3-63 (GCS: up to 222 with dots) of [a-z0-9._-] */
    if (n < 3 || n >= cap)
        return wg_env_fail(l, name, v, "must be 3 to %zu characters", cap - 1);
    for (i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '.' ||
              v[i] == '-' || v[i] == '_'))
            return wg_env_fail(l, name, v, "must be lower-case letters, digits, '.', '-' or '_'");
    memcpy(dst, v, n + 1);
    return 0;
}

static int load_prefix(loader *l, const char *name, char *dst, size_t cap)
{
    const char *v = wg_env_get(l, name);
    size_t n;

    if (!v)
        return 0; /* default kept */
    n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    if (n >= cap)
        return wg_env_fail(l, name, v, "longer than %zu bytes", cap - 1);
    memcpy(dst, v, n);
    dst[n] = '\0';
    if (n && !wg_obj_key_valid(dst))
        return wg_env_fail(l, name, v,
                           "must be a relative path such as \"wagate\" or \"prod/wagate\"");
    return 0;
}

static int load_generations(loader *l, wg_backup_env *e)
{
    const char *v = wg_env_get(l, "SESSION_BACKUP_GENERATIONS");
    unsigned long n;

    if (!v)
        return 0;
    if (wg_parse_uint(v, 1, WG_BACKUP_GENERATIONS_MAX, &n))
        return wg_env_fail(l, "SESSION_BACKUP_GENERATIONS", v, "must be an integer in [1, %d]",
                           WG_BACKUP_GENERATIONS_MAX);
    e->generations = (unsigned)n;
    return 0;
}

static int load_key(loader *l, wg_backup_env *e)
{
    const char *v = wg_env_get(l, "SESSION_ENCRYPTION_KEY");

    if (!v)
        return 0;
    if (wg_backup_key_parse(v, e->key))
        return wg_env_fail(
            l, "SESSION_ENCRYPTION_KEY", NULL,
            "must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`; "
            "value not shown)");
    e->key_set = 1;
    return 0;
}

static int load_file(loader *l, const char *name, char *dst, size_t cap)
{
    const char *v = wg_env_get(l, name);

    if (!v)
        return 0;
    if (access(v, R_OK) != 0)
        return wg_env_fail(l, name, v, "cannot read the file: %s", strerror(errno));
    return load_str(l, name, dst, cap, 0, 0);
}

static int load_s3(loader *l, wg_backup_env *e)
{
    int rc;

    snprintf(e->region, sizeof e->region, "us-east-1");
    if ((rc = load_str(l, "S3_REGION", e->region, sizeof e->region, 0, 0)))
        return rc;
    snprintf(e->endpoint, sizeof e->endpoint, "https://s3.%s.amazonaws.com", e->region);
    if ((rc = load_url(l, "S3_ENDPOINT", e->endpoint, sizeof e->endpoint)) ||
        (rc = load_bucket(l, "S3_BUCKET", e->bucket, sizeof e->bucket)) ||
        (rc = load_prefix(l, "S3_PREFIX", e->prefix, sizeof e->prefix)) ||
        (rc = load_str(l, "S3_ACCESS_KEY_ID", e->access_key, sizeof e->access_key, 1, 0)) ||
        (rc = load_str(l, "S3_SECRET_ACCESS_KEY", e->secret_key, sizeof e->secret_key, 1, 1)) ||
        (rc = load_str(l, "S3_SESSION_TOKEN", e->session_token, sizeof e->session_token, 0, 1)))
        return rc;
    return 0;
}

static int load_cloud(loader *l, wg_backup_env *e)
{
    const char *id = wg_env_get(l, "GCS_HMAC_ACCESS_ID"),
               *secret = wg_env_get(l, "GCS_HMAC_SECRET");
    int rc;

    snprintf(e->endpoint, sizeof e->endpoint, "https://storage.googleapis.com");
    if ((rc = load_url(l, "GCS_ENDPOINT", e->endpoint, sizeof e->endpoint)) ||
        (rc = load_bucket(l, "GCS_BUCKET", e->bucket, sizeof e->bucket)) ||
        (rc = load_prefix(l, "GCS_PREFIX", e->prefix, sizeof e->prefix)) ||
        (rc = load_str(l, "GCE_METADATA_HOST", e->metadata_host, sizeof e->metadata_host, 0, 0)))
        return rc;
    if (strpbrk(e->metadata_host, "/@?# "))
        return wg_env_fail(l, "GCE_METADATA_HOST", e->metadata_host, "must be host or host:port");
    if (!!id != !!secret)
        return wg_env_fail(l, id ? "GCS_HMAC_SECRET" : "GCS_HMAC_ACCESS_ID", NULL,
                           "GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET go together");
    if (id) {
        e->gcs_auth = WG_GCS_AUTH_HMAC;
        /* GCS's interoperability API takes SigV4 with region "auto" */
        snprintf(e->region, sizeof e->region, "auto");
        if ((rc = load_str(l, "GCS_HMAC_ACCESS_ID", e->access_key, sizeof e->access_key, 1, 0)) ||
            (rc = load_str(l, "GCS_HMAC_SECRET", e->secret_key, sizeof e->secret_key, 1, 1)))
            return rc;
        return 0;
    }
    if ((rc = load_file(l, "GOOGLE_APPLICATION_CREDENTIALS", e->credentials_file,
                        sizeof e->credentials_file)))
        return rc;
    e->gcs_auth = e->credentials_file[0] ? WG_GCS_AUTH_KEYFILE : WG_GCS_AUTH_METADATA;
    return 0;
}

int wg_backup_env_load(wg_backup_env *e, int storage_type, unsigned interval_ms,
                       const char *data_dir, wg_getenv_cb getfn, void *user_data, char *err,
                       size_t errlen)
{
    loader l = wg_env_loader_make(getfn, user_data, err, errlen);
    int rc;

    if (errlen)
        err[0] = '\0';
    memset(e, 0, sizeof *e);
    if (!data_dir || !*data_dir || strlen(data_dir) + 64 >= sizeof e->local_dir)
        return wg_env_fail(&l, "DATA_DIR", data_dir, "too long for the backup paths");
    e->storage = storage_type;
    e->interval_ms = interval_ms ? interval_ms : WG_DEFAULT_BACKUP_INTERVAL_MS;
    e->generations = WG_BACKUP_DEFAULT_GENERATIONS;
    snprintf(e->local_dir, sizeof e->local_dir, "%s/backups", data_dir);
    snprintf(e->tmp_dir, sizeof e->tmp_dir, "%s/.backup-tmp", data_dir);
    snprintf(e->store_path, sizeof e->store_path, "%s/libwa.db", data_dir);
    snprintf(e->prefix, sizeof e->prefix, "wagate");
    if ((rc = load_generations(&l, e)) || (rc = load_key(&l, e)) ||
        (rc = load_str(&l, "SESSION_BACKUP_DIR", e->local_dir, sizeof e->local_dir - 64, 0, 0)) ||
        (rc = load_file(&l, "SESSION_BACKUP_CA_FILE", e->ca_file, sizeof e->ca_file)))
        goto fail;
    switch (storage_type) {
    case WG_STORAGE_LOCAL:
        break;
    case WG_STORAGE_S3:
        rc = load_s3(&l, e);
        break;
    case WG_STORAGE_CLOUD:
        rc = load_cloud(&l, e);
        break;
    default:
        rc = wg_env_fail(&l, "SESSION_STORAGE_TYPE", NULL, "unknown storage type %d", storage_type);
        break;
    }
    if (rc)
        goto fail;
    return 0;
fail:
    wg_backup_env_wipe(e);
    memset(e, 0, sizeof *e);
    return rc;
}

void wg_backup_env_wipe(wg_backup_env *e)
{
    wa_wipe(e->key, sizeof e->key);
    e->key_set = 0;
    wa_wipe(e->secret_key, sizeof e->secret_key);
    wa_wipe(e->session_token, sizeof e->session_token);
}
