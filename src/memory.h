/*
 * memory.h - the memory governor: reads the container's memory limit and current use, and
 * above MEMORY_THRESHOLD trims (malloc_trim, the backend's caches) and refuses new sessions
 * (503) until use is back below.
 *
 * Limit: cgroup v2 memory.max of the process's cgroup (when not "max"), else MemTotal of
 * /proc/meminfo. Use: the cgroup's memory.current (what the container's OOM killer looks at,
 * page cache included), else the process's resident set (/proc/self/statm).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_MEMORY_H
#define WG_MEMORY_H

#include <stddef.h>
#include <stdint.h>

/* Pressure is lifted only once use is this far below the threshold (avoids flapping). */
#define WG_MEMORY_HYSTERESIS 0.02

typedef struct wg_memory {
    const char *cgroup_root; /* "/sys/fs/cgroup" (tests point these at fixtures) */
    const char *proc_root;   /* "/proc" */
    double threshold;        /* MEMORY_THRESHOLD */
    uint64_t limit;          /* bytes, last read (0 unknown) */
    uint64_t used;           /* bytes, last read */
    uint64_t rss;            /* the process's resident set, last read */
    int limit_from_cgroup;   /* 1: memory.max, 0: MemTotal */
    int used_from_cgroup;    /* 1: memory.current, 0: RSS */
    int pressure;            /* 1 while above the threshold */
    unsigned long trims;     /* times trimmed */
} wg_memory;

/* roots NULL: the real /sys/fs/cgroup and /proc. */
void wg_memory_init(wg_memory *m, double threshold, const char *cgroup_root, const char *proc_root);
/* Re-read limit and use. 0, or WA_EIO when neither a limit nor a use could be read. */
int wg_memory_read(wg_memory *m);
/* Read, then update `pressure`. Returns 1 when the caller should trim now (above threshold),
 * 0 otherwise. The trimming itself (malloc_trim + backend) is wg_memory_trim. */
int wg_memory_check(wg_memory *m);
/* Release idle heap back to the system (malloc_trim) and count a trim. */
void wg_memory_trim(wg_memory *m);
/* used / limit, or 0 when the limit is unknown. */
double wg_memory_ratio(const wg_memory *m);

#endif
