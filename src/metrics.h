/*
 * metrics.h - a small Prometheus registry: counters, gauges and histograms with up to
 * WG_METRIC_LABELS_MAX labels, rendered in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Families are registered once (names and help texts are static strings); series are created
 * on first use up to a per-family cap (label values beyond it are counted in a dropped-series
 * total instead, so a bug cannot blow up memory or the scrape). Loop thread only.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_METRICS_H
#define WG_METRICS_H

#include <stddef.h>

#define WG_METRIC_LABELS_MAX      3
#define WG_METRIC_BUCKETS_MAX     16
#define WG_METRIC_SERIES_MAX      1024
#define WG_METRIC_LABEL_VALUE_MAX 128
/* Cap on the rendered text. */
#define WG_METRICS_TEXT_MAX (4 * 1024 * 1024)

enum wg_metric_kind { WG_METRIC_COUNTER, WG_METRIC_GAUGE, WG_METRIC_HISTOGRAM };

typedef struct wg_metrics wg_metrics;
typedef struct wg_metric wg_metric; /* a family */
typedef struct wg_metric_series wg_metric_series;

int wg_metrics_new(wg_metrics **out);
void wg_metrics_free(wg_metrics *m);

/* Register a family. name/help/labels/buckets are borrowed static data. labels: NULL-terminated
 * list of label names (at most WG_METRIC_LABELS_MAX) or NULL. buckets: strictly increasing
 * upper bounds (without +Inf) for histograms, nbuckets <= WG_METRIC_BUCKETS_MAX.
 * Returns the family, or NULL (bad arguments, out of memory). */
wg_metric *wg_metrics_add(wg_metrics *m, int kind, const char *name, const char *help,
                          const char *const *labels, const double *buckets, size_t nbuckets);

/* The series for these label values (as many as the family has labels), created at zero if
 * new. NULL when the family's series cap is reached (counted) or out of memory. */
wg_metric_series *wg_metric_series_get(wg_metric *f, const char *const *values);
/* Shorthand for families with 0 or 1 label. */
wg_metric_series *wg_metric_get0(wg_metric *f);
wg_metric_series *wg_metric_get1(wg_metric *f, const char *value);

/* NULL series are ignored (so callers need not check). */
void wg_metric_inc(wg_metric_series *s);
void wg_metric_add(wg_metric_series *s, double v);
void wg_metric_set(wg_metric_series *s, double v);
void wg_metric_observe(wg_metric_series *s, double v);
double wg_metric_value(const wg_metric_series *s);

/* Render every family in registration order. *out is malloc'd (caller frees), *len its
 * length. 0, WA_ENOMEM, WA_ELIMIT. */
int wg_metrics_render(const wg_metrics *m, char **out, size_t *len);

#endif
