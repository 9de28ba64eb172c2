/*
 * metrics.h - Prometheus text exposition (format 0.0.4) without a library
 * (Debian 12 has no C client): counters, gauges and fixed-bucket
 * histograms in one registry, updated lock-free with C11 atomics from any
 * thread, rendered by the admin listener at /metrics.
 *
 * Registration happens at start-up (not thread-safe, caps fixed by
 * MSSP_METRICS_MAX_*); updates and rendering are thread-safe.  A metric is
 * one series: a family name plus an optional label set written as
 * Prometheus text (`op="signature",status="500"`), validated at
 * registration so rendering never needs escaping.
 *
 * Ownership: the registry owns its series; handles returned by
 * metrics_counter() and friends live as long as the registry.
 */
#ifndef MSSP_UTIL_METRICS_H
#define MSSP_UTIL_METRICS_H

#include <stdint.h>

#include "util/buf.h"

struct metrics;
struct metric;

/* New empty registry; NULL on allocation failure. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* accepts NULL */

/* Register a series.  `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*; `labels`
 * is NULL or `k="v"[,k="v"]...` with label names [a-zA-Z_][a-zA-Z0-9_]*
 * and values without '"', '\\' or newlines; `help` is one line.  A family
 * keeps the type and help of its first series.  Returns NULL when the
 * arguments are invalid, the type clashes with the family's, the series
 * exists already, or the registry is full. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *labels,
			       const char *help);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *labels,
			     const char *help);
/* `bounds`: nbounds strictly increasing upper bounds (the +Inf bucket is
 * implicit), at most MSSP_METRICS_MAX_BUCKETS. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *labels,
				 const char *help, const double *bounds, unsigned nbounds);

/* Updates; each accepts NULL (a metric that failed to register). */
void metric_inc(struct metric *c);		      /* counter += 1          */
void metric_add(struct metric *c, uint64_t n);	      /* counter += n          */
void metric_set(struct metric *g, int64_t v);	      /* gauge = v             */
void metric_gauge_add(struct metric *g, int64_t d);   /* gauge += d (d < 0 ok) */
void metric_observe(struct metric *h, double v);      /* histogram sample      */
/* Current value of a counter or gauge (tests, /healthz). */
int64_t metric_value(const struct metric *c);

/* Append the exposition text of every series to `out`.  0, or -1 when
 * `out` is full. */
int metrics_render(const struct metrics *m, struct mss_buf *out);

#endif
