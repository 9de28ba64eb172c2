/*
 * metrics.c - registry and Prometheus text rendering (see metrics.h).
 */
#include "util/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/limits.h"

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct metric {
	enum metric_type mt_type;
	char mt_name[MSSP_METRICS_MAX_NAME + 1];
	char mt_labels[MSSP_METRICS_MAX_LABELS + 1];
	char mt_help[MSSP_METRICS_MAX_HELP + 1];
	_Atomic int64_t mt_value; /* counter or gauge */
	/* histogram */
	double mt_bounds[MSSP_METRICS_MAX_BUCKETS];
	unsigned mt_nbounds;
	_Atomic uint64_t mt_buckets[MSSP_METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
	_Atomic uint64_t mt_count;
	_Atomic uint64_t mt_sum_micro; /* sum of samples in millionths: no atomic double */
};

struct metrics {
	struct metric *ms_series[MSSP_METRICS_MAX_SERIES];
	unsigned ms_n;
};

struct metrics *
metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < m->ms_n; i++)
		free(m->ms_series[i]);
	free(m);
}

static bool
name_ok(const char *s, bool label)
{
	const char *p = s;

	if (*p == '\0')
		return false;
	for (; *p; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			     (!label && *p == ':');

		if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
			return false;
	}
	return true;
}

/* k="v"[,k="v"]... */
static bool
labels_ok(const char *s)
{
	char key[MSSP_METRICS_MAX_LABELS + 1];
	const char *p = s, *eq, *q;

	while (*p) {
		eq = strchr(p, '=');
		if (eq == NULL || (size_t)(eq - p) > MSSP_METRICS_MAX_LABELS || eq == p)
			return false;
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		if (!name_ok(key, true) || eq[1] != '"')
			return false;
		for (q = eq + 2; *q && *q != '"'; q++)
			if (*q == '\\' || *q == '\n' || (unsigned char)*q < 0x20)
				return false;
		if (*q != '"')
			return false;
		p = q + 1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return false;
	}
	return true;
}

static bool
line_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

static struct metric *
add(struct metrics *m, enum metric_type type, const char *name, const char *labels,
    const char *help)
{
	struct metric *s;
	unsigned i;

	if (m == NULL || name == NULL || help == NULL || m->ms_n >= MSSP_METRICS_MAX_SERIES)
		return NULL;
	if (labels == NULL)
		labels = "";
	if (strlen(name) > MSSP_METRICS_MAX_NAME || strlen(labels) > MSSP_METRICS_MAX_LABELS ||
	    strlen(help) > MSSP_METRICS_MAX_HELP || !name_ok(name, false) || !labels_ok(labels) ||
	    !line_ok(help))
		return NULL;
	for (i = 0; i < m->ms_n; i++) {
		if (strcmp(m->ms_series[i]->mt_name, name) != 0)
			continue;
		if (m->ms_series[i]->mt_type != type || strcmp(m->ms_series[i]->mt_labels, labels) == 0)
			return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->mt_type = type;
	memcpy(s->mt_name, name, strlen(name) + 1);
	memcpy(s->mt_labels, labels, strlen(labels) + 1);
	memcpy(s->mt_help, help, strlen(help) + 1);
	m->ms_series[m->ms_n++] = s;
	return s;
}

struct metric *
metrics_counter(struct metrics *m, const char *name, const char *labels, const char *help)
{
	return add(m, M_COUNTER, name, labels, help);
}

struct metric *
metrics_gauge(struct metrics *m, const char *name, const char *labels, const char *help)
{
	return add(m, M_GAUGE, name, labels, help);
}

struct metric *
metrics_histogram(struct metrics *m, const char *name, const char *labels, const char *help,
		  const double *bounds, unsigned nbounds)
{
	struct metric *h;
	unsigned i;

	if (bounds == NULL || nbounds == 0 || nbounds > MSSP_METRICS_MAX_BUCKETS)
		return NULL;
	for (i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	h = add(m, M_HISTOGRAM, name, labels, help);
	if (h == NULL)
		return NULL;
	memcpy(h->mt_bounds, bounds, nbounds * sizeof(*bounds));
	h->mt_nbounds = nbounds;
	return h;
}

void
metric_inc(struct metric *c)
{
	metric_add(c, 1);
}

void
metric_add(struct metric *c, uint64_t n)
{
	if (c != NULL && c->mt_type == M_COUNTER)
		atomic_fetch_add_explicit(&c->mt_value, (int64_t)n, memory_order_relaxed);
}

void
metric_set(struct metric *g, int64_t v)
{
	if (g != NULL && g->mt_type == M_GAUGE)
		atomic_store_explicit(&g->mt_value, v, memory_order_relaxed);
}

void
metric_gauge_add(struct metric *g, int64_t d)
{
	if (g != NULL && g->mt_type == M_GAUGE)
		atomic_fetch_add_explicit(&g->mt_value, d, memory_order_relaxed);
}

void
metric_observe(struct metric *h, double v)
{
	unsigned i;

	if (h == NULL || h->mt_type != M_HISTOGRAM || !(v >= 0))
		return; /* negative or NaN samples are programming errors: ignored */
	for (i = 0; i < h->mt_nbounds && v > h->mt_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->mt_buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->mt_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->mt_sum_micro, (uint64_t)(v * 1e6 + 0.5), memory_order_relaxed);
}

int64_t
metric_value(const struct metric *c)
{
	return c == NULL ? 0 : atomic_load_explicit(&((struct metric *)c)->mt_value, memory_order_relaxed);
}

static int
series_line(struct mss_buf *out, const char *name, const char *suffix, const char *labels,
	    const char *extra, const char *value)
{
	const char *sep = labels[0] && extra[0] ? "," : "";

	if (labels[0] || extra[0])
		return mss_buf_addf(out, "%s%s{%s%s%s} %s\n", name, suffix, labels, sep, extra, value);
	return mss_buf_addf(out, "%s%s %s\n", name, suffix, value);
}

int
metrics_render(const struct metrics *m, struct mss_buf *out)
{
	unsigned i, j, k;
	char v[64], le[64];

	for (i = 0; i < m->ms_n; i++) {
		struct metric *s = m->ms_series[i];
		bool first = true;

		/* HELP/TYPE once per family, at its first series */
		for (j = 0; j < i; j++)
			if (strcmp(m->ms_series[j]->mt_name, s->mt_name) == 0)
				first = false;
		if (first && mss_buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", s->mt_name, s->mt_help,
					  s->mt_name,
					  s->mt_type == M_COUNTER ? "counter"
					  : s->mt_type == M_GAUGE ? "gauge" : "histogram") != 0)
			return -1;
		if (s->mt_type != M_HISTOGRAM) {
			snprintf(v, sizeof(v), "%lld", (long long)metric_value(s));
			if (series_line(out, s->mt_name, "", s->mt_labels, "", v) != 0)
				return -1;
			continue;
		}
		{
			uint64_t cum = 0, count = atomic_load(&s->mt_count);

			for (k = 0; k <= s->mt_nbounds; k++) {
				cum += atomic_load(&s->mt_buckets[k]);
				if (k < s->mt_nbounds)
					snprintf(le, sizeof(le), "le=\"%g\"", s->mt_bounds[k]);
				else
					snprintf(le, sizeof(le), "le=\"+Inf\"");
				snprintf(v, sizeof(v), "%llu", (unsigned long long)cum);
				if (series_line(out, s->mt_name, "_bucket", s->mt_labels, le, v) != 0)
					return -1;
			}
			snprintf(v, sizeof(v), "%.6f", (double)atomic_load(&s->mt_sum_micro) / 1e6);
			if (series_line(out, s->mt_name, "_sum", s->mt_labels, "", v) != 0)
				return -1;
			snprintf(v, sizeof(v), "%llu", (unsigned long long)count);
			if (series_line(out, s->mt_name, "_count", s->mt_labels, "", v) != 0)
				return -1;
		}
	}
	return 0;
}
