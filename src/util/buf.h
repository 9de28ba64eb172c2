/*
 * buf.h - growable byte buffer with a maximum fixed at creation.
 *
 * The shape of curl's dynbuf: growing past the maximum fails (the caller
 * turns that into 413 or an encode error) instead of reallocating forever.
 * On any failure the buffer frees its contents, so the caller has one state
 * to think about.  Members are private: use the functions.
 */
#ifndef MSSP_UTIL_BUF_H
#define MSSP_UTIL_BUF_H

#include <stddef.h>

struct mss_buf {
	char *b_data;
	size_t b_len;
	size_t b_alloc;
	size_t b_max;
};

/* Prepare an empty buffer that may hold at most `max` bytes. */
void mss_buf_init(struct mss_buf *b, size_t max);
/* Release the contents; the buffer is empty and usable again. */
void mss_buf_free(struct mss_buf *b);
/* Append; 0 on success, -1 (and the buffer freed) past the maximum or on
 * memory shortage. */
int mss_buf_add(struct mss_buf *b, const void *data, size_t len);
int mss_buf_adds(struct mss_buf *b, const char *s);
int mss_buf_addf(struct mss_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Contents, always NUL-terminated after a successful add ("" if empty). */
const char *mss_buf_str(const struct mss_buf *b);
size_t mss_buf_len(const struct mss_buf *b);
/* Bytes that may still be added before the maximum. */
size_t mss_buf_room(const struct mss_buf *b);
/* Hand the contents to the caller (free() it); the buffer becomes empty. */
char *mss_buf_take(struct mss_buf *b, size_t *len);

#endif
