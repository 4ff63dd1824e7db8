/*
 * memory.c - container memory limit and use, and the governor's threshold (see memory.h).
 *
 * cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): /proc/self/cgroup has one line
 * "0::/path"; the files are <root>/<path>/memory.max ("max" or bytes) and memory.current. In a
 * container the namespace makes the path "/", so <root>/memory.max is also tried.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "memory.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/error.h"

#define LINE_MAX_ 512

static int read_u64_file(const char *path, uint64_t *out, int *is_max)
{
    char buf[64];
    FILE *f = fopen(path, "re");
    char *end;
    unsigned long long v;

    if (is_max)
        *is_max = 0;
    if (!f)
        return WA_EIO;
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        return WA_EIO;
    }
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    if (!strcmp(buf, "max")) {
        if (is_max)
            *is_max = 1;
        return WA_ENOTFOUND;
    }
    if (buf[0] < '0' || buf[0] > '9')
        return WA_EIO;
    v = strtoull(buf, &end, 10);
    if (*end)
        return WA_EIO;
    *out = v;
    return 0;
}

/* The process's cgroup v2 path ("/" when unknown). */
static void cgroup_path(const wg_memory *m, char *out, size_t cap)
{
    char path[LINE_MAX_], line[LINE_MAX_];
    FILE *f;

    snprintf(out, cap, "/");
    snprintf(path, sizeof path, "%s/self/cgroup", m->proc_root);
    f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, cap, "%s", line + 3);
            break;
        }
    }
    fclose(f);
}

/* Read <root><cg>/<file>, falling back to <root>/<file>. */
static int read_cgroup(const wg_memory *m, const char *cg, const char *file, uint64_t *out,
                       int *is_max)
{
    char path[LINE_MAX_ * 2];
    int rc;

    if (strcmp(cg, "/") != 0 && !strstr(cg, "..")) {
        snprintf(path, sizeof path, "%s%s/%s", m->cgroup_root, cg, file);
        rc = read_u64_file(path, out, is_max);
        if (rc != WA_EIO)
            return rc;
    }
    snprintf(path, sizeof path, "%s/%s", m->cgroup_root, file);
    return read_u64_file(path, out, is_max);
}

static int read_memtotal(const wg_memory *m, uint64_t *out)
{
    char path[LINE_MAX_], line[LINE_MAX_];
    unsigned long long kib;
    FILE *f;
    int rc = WA_EIO;

    snprintf(path, sizeof path, "%s/meminfo", m->proc_root);
    f = fopen(path, "re");
    if (!f)
        return WA_EIO;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
            *out = (uint64_t)kib * 1024;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int read_rss(const wg_memory *m, uint64_t *out)
{
    char path[LINE_MAX_];
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f;
    int rc = WA_EIO;

    snprintf(path, sizeof path, "%s/self/statm", m->proc_root);
    f = fopen(path, "re");
    if (!f)
        return WA_EIO;
    if (fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0) {
        *out = (uint64_t)resident * (uint64_t)page;
        rc = 0;
    }
    fclose(f);
    return rc;
}

void wg_memory_init(wg_memory *m, double threshold, const char *cgroup_root, const char *proc_root)
{
    memset(m, 0, sizeof *m);
    m->threshold = threshold;
    m->cgroup_root = cgroup_root ? cgroup_root : "/sys/fs/cgroup";
    m->proc_root = proc_root ? proc_root : "/proc";
}

int wg_memory_read(wg_memory *m)
{
    char cg[LINE_MAX_];
    uint64_t v;
    int ok_limit = 0, ok_used = 0;

    cgroup_path(m, cg, sizeof cg);
    m->limit_from_cgroup = m->used_from_cgroup = 0;
    if (read_cgroup(m, cg, "memory.max", &v, NULL) == 0 && v > 0) {
        m->limit = v;
        m->limit_from_cgroup = ok_limit = 1;
    } else if (read_memtotal(m, &v) == 0) {
        m->limit = v;
        ok_limit = 1;
    }
    if (read_rss(m, &v) == 0)
        m->rss = v;
    if (read_cgroup(m, cg, "memory.current", &v, NULL) == 0) {
        m->used = v;
        m->used_from_cgroup = ok_used = 1;
    } else if (m->rss) {
        m->used = m->rss;
        ok_used = 1;
    }
    return (ok_limit || ok_used) ? 0 : WA_EIO;
}

double wg_memory_ratio(const wg_memory *m)
{
    return m->limit ? (double)m->used / (double)m->limit : 0.0;
}

int wg_memory_check(wg_memory *m)
{
    double r;

    if (wg_memory_read(m))
        return 0;
    r = wg_memory_ratio(m);
    if (r > m->threshold)
        m->pressure = 1;
    else if (m->pressure && r <= m->threshold - WG_MEMORY_HYSTERESIS)
        m->pressure = 0;
    else if (m->pressure && m->threshold - WG_MEMORY_HYSTERESIS <= 0.0)
        m->pressure = 0;
    return r > m->threshold;
}

void wg_memory_trim(wg_memory *m)
{
    malloc_trim(0);
    m->trims++;
}
