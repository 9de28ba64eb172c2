/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.1 request parser.
 *
 * The whole input is the byte stream of one connection (so the seeds in
 * tests/fuzz/corpus/http/ are plain HTTP).  It is parsed three times into
 * fresh parsers: in one feed() call, in two calls split at a position derived
 * from the first byte, and byte by byte (inputs up to 4 KiB).  Every request,
 * CONTINUE event and error is folded into a digest, and the digests MUST be
 * equal: how the bytes were sliced must never change what the parser
 * returns.  An odd first byte selects small caps (head 300, body 100 bytes)
 * so the limit paths are reached with short inputs.  Results are summed into
 * a volatile sink so the optimiser cannot drop the code that reads them.
 *
 * Build: clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc
 *        -D_GNU_SOURCE src/net/http.c tests/fuzz/fuzz_http.c -o fuzz_http
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static uint64_t
mix(uint64_t h, const void *d, size_t n)
{
	const uint8_t *b = d;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL; /* FNV-1a */
	}
	sink += n;
	return h;
}

static uint64_t
mix_int(uint64_t h, long v)
{
	return mix(h, &v, sizeof(v));
}

static uint64_t
mix_str(uint64_t h, const char *s)
{
	if (s == NULL)
		return mix_int(h, -1);
	return mix(h, s, strlen(s) + 1);
}

static uint64_t
digest_request(uint64_t h, const struct http_request *rq, int event)
{
	struct http_media_type mt;
	const char *ct;

	h = mix_int(h, event);
	h = mix_str(h, rq->rq_method);
	h = mix_str(h, rq->rq_target);
	h = mix_str(h, rq->rq_path);
	h = mix_str(h, rq->rq_host);
	h = mix_int(h, rq->rq_version_minor);
	h = mix_int(h, rq->rq_keep_alive * 1 + rq->rq_expect_continue * 2 +
	    rq->rq_length_declared * 4 + rq->rq_chunked * 8);
	h = mix_int(h, (long)rq->rq_content_length);
	h = mix_int(h, (long)rq->rq_nfields);
	for (size_t i = 0; i < rq->rq_nfields; i++) {
		h = mix_str(h, rq->rq_fields[i].hf_name);
		h = mix_str(h, rq->rq_fields[i].hf_value);
	}
	ct = http_request_header(rq, "content-type");
	if (ct != NULL && http_media_type_parse(ct, &mt) == 0) {
		h = mix_str(h, mt.mt_type);
		h = mix_str(h, mt.mt_subtype);
		h = mix_str(h, mt.mt_charset);
		h = mix_str(h, mt.mt_action);
	}
	if (event != HTTP_DONE) {
		/* CONTINUE: the head only. */
		if (rq->rq_body != NULL)
			abort();
		return h;
	}
	h = mix_int(h, (long)rq->rq_ntrailers);
	for (size_t i = 0; i < rq->rq_ntrailers; i++) {
		h = mix_str(h, rq->rq_trailers[i].hf_name);
		h = mix_str(h, rq->rq_trailers[i].hf_value);
	}
	if (http_request_trailer(rq, "content-length") != NULL)
		abort(); /* H-07: never accepted in a trailer */
	if (rq->rq_body == NULL || rq->rq_body[rq->rq_body_len] != '\0')
		abort();
	h = mix_int(h, (long)rq->rq_body_len);
	return mix(h, rq->rq_body, rq->rq_body_len);
}

/* Parse data as one connection, feeding slices: all at once (split 0,
 * step 0), split in two at `split`, or `step` bytes at a time. */
static uint64_t
run(const uint8_t *data, size_t size, size_t split, size_t step, bool small)
{
	struct http_parser *p = small ? http_parser_new(300, 100) :
	    http_parser_new(0, 0);
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t off = 0;

	if (p == NULL)
		abort();
	while (off < size) {
		size_t len = size - off, used = 0;
		int rc;

		if (step != 0 && len > step)
			len = step;
		else if (off < split)
			len = split - off;
		rc = http_parser_feed(p, data + off, len, &used);
		if (used > len)
			abort();
		off += used;
		if (rc == HTTP_MORE) {
			if (used != len)
				abort();
			continue;
		}
		if (rc == HTTP_CONTINUE) {
			h = digest_request(h, http_parser_request(p), rc);
			continue;
		}
		if (rc == HTTP_DONE) {
			h = digest_request(h, http_parser_request(p), rc);
			rc = http_parser_next(p);
			h = mix_int(h, rc);
			if (rc < 0)
				break;
			continue;
		}
		/* Error: terminal, with a status and a reason. */
		h = mix_int(h, rc);
		sink += (size_t)http_err_status(rc);
		sink += strlen(http_err_reason(rc));
		if (http_parser_request(p) != NULL ||
		    http_parser_feed(p, data, size, &used) != rc || used != 0 ||
		    http_parser_error(p) != rc)
			abort();
		break;
	}
	h = mix_int(h, http_parser_phase(p));
	http_parser_free(p);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t whole, split, bytes;
	bool small;
	struct http_media_type mt;
	char text[1024];

	if (size == 0)
		return 0;
	small = (data[0] & 1) != 0;
	whole = run(data, size, 0, 0, small);
	split = run(data, size, (size_t)data[0] * (size + 1) / 256, 0, small);
	if (whole != split)
		abort();
	if (size <= 4096) {
		bytes = run(data, size, 0, 1, small);
		if (whole != bytes)
			abort();
	}

	/* The media-type splitter on raw text too. */
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, n);
	text[n] = '\0';
	if (http_media_type_parse(text, &mt) == 0)
		sink += strlen(mt.mt_type) + strlen(mt.mt_subtype) +
		    strlen(mt.mt_charset) + strlen(mt.mt_action);
	return 0;
}
