/*
 * metrics.c - Prometheus registry and text exposition (see metrics.h).
 *
 * Format (exposition format 0.0.4): per family "# HELP name text", "# TYPE name kind", then one
 * line per series: name{l="v",...} value. Histograms render cumulative name_bucket{le="..."}
 * lines ending with le="+Inf", then name_sum and name_count. Label values escape \, " and
 * newline; help texts escape \ and newline.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "wa/error.h"

#define FAMILIES_MAX 128

struct wg_metric_series {
    const struct wg_metric *family;
    char *values[WG_METRIC_LABELS_MAX];
    double value;                                      /* counter, gauge */
    unsigned long long buckets[WG_METRIC_BUCKETS_MAX]; /* histogram: per-bucket (not cumulative) */
    unsigned long long count;
    double sum;
};

struct wg_metric {
    int kind;
    const char *name, *help;
    const char *const *labels;
    size_t nlabels;
    const double *bounds;
    size_t nbounds;
    wg_metric_series **series;
    size_t nseries, cap;
    unsigned long long dropped;
};

struct wg_metrics {
    wg_metric *f[FAMILIES_MAX];
    size_t n;
};

int wg_metrics_new(wg_metrics **out)
{
    wg_metrics *m = calloc(1, sizeof *m);

    if (!m)
        return WA_ENOMEM;
    *out = m;
    return 0;
}

static void series_free(wg_metric_series *s)
{
    size_t i;

    for (i = 0; i < WG_METRIC_LABELS_MAX; i++)
        free(s->values[i]);
    free(s);
}

void wg_metrics_free(wg_metrics *m)
{
    size_t i, j;

    if (!m)
        return;
    for (i = 0; i < m->n; i++) {
        for (j = 0; j < m->f[i]->nseries; j++)
            series_free(m->f[i]->series[j]);
        free(m->f[i]->series);
        free(m->f[i]);
    }
    free(m);
}

static int valid_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

wg_metric *wg_metrics_add(wg_metrics *m, int kind, const char *name, const char *help,
                          const char *const *labels, const double *buckets, size_t nbuckets)
{
    wg_metric *f;
    size_t nl = 0, i;

    if (m->n == FAMILIES_MAX || !valid_name(name) || !help)
        return NULL;
    while (labels && labels[nl]) {
        if (!valid_name(labels[nl]) || !strcmp(labels[nl], "le"))
            return NULL;
        nl++;
    }
    if (nl > WG_METRIC_LABELS_MAX)
        return NULL;
    if (kind == WG_METRIC_HISTOGRAM) {
        if (!buckets || nbuckets == 0 || nbuckets > WG_METRIC_BUCKETS_MAX)
            return NULL;
        for (i = 1; i < nbuckets; i++)
            if (!(buckets[i] > buckets[i - 1]))
                return NULL;
    } else if (kind != WG_METRIC_COUNTER && kind != WG_METRIC_GAUGE) {
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->kind = kind;
    f->name = name;
    f->help = help;
    f->labels = labels;
    f->nlabels = nl;
    f->bounds = kind == WG_METRIC_HISTOGRAM ? buckets : NULL;
    f->nbounds = kind == WG_METRIC_HISTOGRAM ? nbuckets : 0;
    m->f[m->n++] = f;
    return f;
}

wg_metric_series *wg_metric_series_get(wg_metric *f, const char *const *values)
{
    wg_metric_series *s;
    size_t i, j;

    if (!f || (f->nlabels && !values))
        return NULL;
    for (i = 0; i < f->nseries; i++) {
        for (j = 0; j < f->nlabels; j++)
            if (strcmp(f->series[i]->values[j], values[j]))
                break;
        if (j == f->nlabels)
            return f->series[i];
    }
    for (j = 0; j < f->nlabels; j++)
        if (strlen(values[j]) > WG_METRIC_LABEL_VALUE_MAX)
            goto drop;
    if (f->nseries == WG_METRIC_SERIES_MAX)
        goto drop;
    if (f->nseries == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        wg_metric_series **nv = realloc(f->series, ncap * sizeof *nv);
        if (!nv)
            return NULL;
        f->series = nv;
        f->cap = ncap;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    for (j = 0; j < f->nlabels; j++) {
        s->values[j] = strdup(values[j]);
        if (!s->values[j]) {
            series_free(s);
            return NULL;
        }
    }
    s->family = f;
    f->series[f->nseries++] = s;
    return s;
drop:
    f->dropped++;
    return NULL;
}

wg_metric_series *wg_metric_get0(wg_metric *f)
{
    return wg_metric_series_get(f, NULL);
}

wg_metric_series *wg_metric_get1(wg_metric *f, const char *value)
{
    const char *v[1] = {value};

    return wg_metric_series_get(f, v);
}

void wg_metric_inc(wg_metric_series *s)
{
    wg_metric_add(s, 1.0);
}

void wg_metric_add(wg_metric_series *s, double v)
{
    if (s)
        s->value += v;
}

void wg_metric_set(wg_metric_series *s, double v)
{
    if (s)
        s->value = v;
}

double wg_metric_value(const wg_metric_series *s)
{
    return s ? s->value : 0.0;
}

void wg_metric_observe(wg_metric_series *s, double v)
{
    size_t i;

    if (!s || s->family->kind != WG_METRIC_HISTOGRAM || isnan(v))
        return;
    for (i = 0; i < s->family->nbounds; i++)
        if (v <= s->family->bounds[i])
            break;
    /* i == nbounds: only the +Inf bucket, which is the count */
    if (i < s->family->nbounds)
        s->buckets[i]++;
    s->count++;
    s->sum += v;
}

static void put_number(wg_strbuf *b, double v)
{
    if (isnan(v))
        wg_strbuf_puts(b, "NaN");
    else if (isinf(v))
        wg_strbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        wg_strbuf_printf(b, "%.0f", v);
    else
        wg_strbuf_printf(b, "%.17g", v);
}

static void put_escaped(wg_strbuf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            wg_strbuf_puts(b, "\\\\");
        else if (*s == '\n')
            wg_strbuf_puts(b, "\\n");
        else if (quote && *s == '"')
            wg_strbuf_puts(b, "\\\"");
        else
            wg_strbuf_append(b, s, 1);
    }
}

/* name{labels[,le="x"]} */
static void put_series_name(wg_strbuf *b, const wg_metric *f, const wg_metric_series *s,
                            const char *suffix, const char *le)
{
    size_t j;
    int any = 0;

    wg_strbuf_puts(b, f->name);
    wg_strbuf_puts(b, suffix);
    for (j = 0; j < f->nlabels; j++) {
        wg_strbuf_puts(b, any ? "," : "{");
        wg_strbuf_printf(b, "%s=\"", f->labels[j]);
        put_escaped(b, s->values[j], 1);
        wg_strbuf_puts(b, "\"");
        any = 1;
    }
    if (le) {
        wg_strbuf_printf(b, "%sle=\"%s\"", any ? "," : "{", le);
        any = 1;
    }
    if (any)
        wg_strbuf_puts(b, "}");
    wg_strbuf_puts(b, " ");
}

static void render_family(wg_strbuf *b, const wg_metric *f)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    size_t i, k;

    wg_strbuf_printf(b, "# HELP %s ", f->name);
    put_escaped(b, f->help, 0);
    wg_strbuf_printf(b, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
    for (i = 0; i < f->nseries; i++) {
        const wg_metric_series *s = f->series[i];
        if (f->kind != WG_METRIC_HISTOGRAM) {
            put_series_name(b, f, s, "", NULL);
            put_number(b, s->value);
            wg_strbuf_puts(b, "\n");
            continue;
        }
        {
            unsigned long long cum = 0;
            char le[64];
            for (k = 0; k < f->nbounds; k++) {
                cum += s->buckets[k];
                snprintf(le, sizeof le, "%g", f->bounds[k]);
                put_series_name(b, f, s, "_bucket", le);
                wg_strbuf_printf(b, "%llu\n", cum);
            }
            put_series_name(b, f, s, "_bucket", "+Inf");
            wg_strbuf_printf(b, "%llu\n", s->count);
            put_series_name(b, f, s, "_sum", NULL);
            put_number(b, s->sum);
            wg_strbuf_puts(b, "\n");
            put_series_name(b, f, s, "_count", NULL);
            wg_strbuf_printf(b, "%llu\n", s->count);
        }
    }
}

int wg_metrics_render(const wg_metrics *m, char **out, size_t *len)
{
    wg_strbuf b;
    unsigned long long dropped = 0;
    size_t i;
    char *text;

    wg_strbuf_init(&b, WG_METRICS_TEXT_MAX);
    for (i = 0; i < m->n; i++) {
        render_family(&b, m->f[i]);
        dropped += m->f[i]->dropped;
    }
    wg_strbuf_puts(&b, "# HELP wagate_metric_series_dropped_total Label combinations not recorded "
                       "because a family reached its series cap.\n"
                       "# TYPE wagate_metric_series_dropped_total counter\n");
    wg_strbuf_printf(&b, "wagate_metric_series_dropped_total %llu\n", dropped);
    if (b.err) {
        int err = b.err;
        wg_strbuf_cleanup(&b);
        return err;
    }
    text = wg_strbuf_steal(&b, len);
    if (!text)
        return WA_ENOMEM;
    *out = text;
    return 0;
}
