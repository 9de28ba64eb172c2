#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
mss_buf_init(struct mss_buf *b, size_t max)
{
	b->b_data = NULL;
	b->b_len = 0;
	b->b_alloc = 0;
	b->b_max = max;
}

void
mss_buf_free(struct mss_buf *b)
{
	free(b->b_data);
	b->b_data = NULL;
	b->b_len = 0;
	b->b_alloc = 0;
}

int
mss_buf_add(struct mss_buf *b, const void *data, size_t len)
{
	size_t need, a;
	char *p;

	if (len > b->b_max || b->b_len > b->b_max - len)
		goto fail;
	need = b->b_len + len + 1;
	if (need > b->b_alloc) {
		a = b->b_alloc ? b->b_alloc : 256;
		while (a < need)
			a *= 2;
		if (a > b->b_max + 1)
			a = b->b_max + 1;
		p = realloc(b->b_data, a);
		if (p == NULL)
			goto fail;
		b->b_data = p;
		b->b_alloc = a;
	}
	if (len)
		memcpy(b->b_data + b->b_len, data, len);
	b->b_len += len;
	b->b_data[b->b_len] = '\0';
	return 0;
fail:
	mss_buf_free(b);
	return -1;
}

int
mss_buf_adds(struct mss_buf *b, const char *s)
{
	return mss_buf_add(b, s, strlen(s));
}

int
mss_buf_addf(struct mss_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;
	char *big;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	if ((size_t)n < sizeof(small))
		return mss_buf_add(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (big == NULL)
		goto fail;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	n = mss_buf_add(b, big, (size_t)n);
	free(big);
	return n;
fail:
	mss_buf_free(b);
	return -1;
}

const char *
mss_buf_str(const struct mss_buf *b)
{
	return b->b_data ? b->b_data : "";
}

size_t
mss_buf_len(const struct mss_buf *b)
{
	return b->b_len;
}

char *
mss_buf_take(struct mss_buf *b, size_t *len)
{
	char *p = b->b_data;

	if (len)
		*len = b->b_len;
	if (p == NULL)
		p = calloc(1, 1);
	b->b_data = NULL;
	b->b_len = 0;
	b->b_alloc = 0;
	return p;
}

size_t
mss_buf_room(const struct mss_buf *b)
{
	return b->b_max > b->b_len ? b->b_max - b->b_len : 0;
}
