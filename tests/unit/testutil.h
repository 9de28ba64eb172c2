/*
 * testutil.h - small helpers shared by the unit tests (header-only, static).
 */
#ifndef MSSP_TESTUTIL_H
#define MSSP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Directory of the shared ETSI material (../shared beside the repo). */
static inline const char *
tu_shared(void)
{
	const char *s = getenv("MSSP_SHARED");

	return s ? s : "../shared";
}

/* Whole file, NUL-terminated; fails the test if unreadable. */
static inline char *
tu_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static inline char *
tu_slurp_shared(const char *rel, size_t *len)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", tu_shared(), rel);
	return tu_slurp(path, len);
}

#endif
