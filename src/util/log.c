/*
 * log.c - structured log lines (see log.h).
 */
#include "util/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/limits.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_node[MSSP_LOG_MAX_VALUE + 1] = "-";

void
log_set_node(const char *node)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_node, sizeof log_node, "%s", node ? node : "-");
	pthread_mutex_unlock(&log_lock);
}

static bool
plain_token(const char *v)
{
	if (!*v)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
			return false;
	return true;
}

/* Append value v to out (capacity cap, at *len), quoted when needed. */
static void
put_value(char *out, size_t cap, size_t *len, const char *v)
{
	size_t n = 0;
	bool q = !plain_token(v);
	if (q && *len + 1 < cap)
		out[(*len)++] = '"';
	for (const unsigned char *p = (const unsigned char *)v; *p && n < MSSP_LOG_MAX_VALUE;
	     p++, n++) {
		if (*len + 5 >= cap)
			break;
		if (*p < ' ' || *p >= 0x7f || *p == '"' || *p == '\\')
			*len += (size_t)snprintf(out + *len, cap - *len, "\\x%02x", *p);
		else
			out[(*len)++] = (char)*p;
	}
	if (q && *len + 1 < cap)
		out[(*len)++] = '"';
}

void
log_event(const char *ev, const char *const *kv, size_t n)
{
	char line[MSSP_LOG_MAX_LINE];
	struct timespec ts;
	struct tm tm;
	size_t len;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	pthread_mutex_lock(&log_lock);
	len = (size_t)snprintf(line, sizeof line,
			       "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ node=", tm.tm_year + 1900,
			       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			       (int)(ts.tv_nsec / 1000000) % 1000);
	put_value(line, sizeof line, &len, log_node);
	len += (size_t)snprintf(line + len, sizeof line - len, " ev=");
	put_value(line, sizeof line, &len, ev);
	for (size_t i = 0; i < n && len + 8 < sizeof line; i++) {
		const char *k = kv[2 * i], *v = kv[2 * i + 1];
		if (!k || !v || !plain_token(k))
			continue;
		len += (size_t)snprintf(line + len, sizeof line - len, " %s=", k);
		if (len >= sizeof line)
			len = sizeof line - 1;
		put_value(line, sizeof line, &len, v);
	}
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
	pthread_mutex_unlock(&log_lock);
}

void
log_msisdn(const char *msisdn, char *out, size_t cap)
{
	size_t n = msisdn ? strlen(msisdn) : 0;
	if (cap == 0)
		return;
	if (n < 8) {
		snprintf(out, cap, "***");
		return;
	}
	/* "+" and the first 5 digits (country and operator), last 2 digits */
	size_t keep = msisdn[0] == '+' ? 6 : 5;
	size_t i = 0;
	for (; i < n && i + 1 < cap; i++)
		out[i] = (i < keep || i >= n - 2) ? msisdn[i] : '*';
	out[i] = 0;
}
