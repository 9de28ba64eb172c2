/*
 * test_http.c - unit tests of the sans-I/O HTTP/1.1 request parser.
 *
 * Every reject test feeds the same bytes three ways (one call, byte by byte,
 * 7-byte slices) into fresh parsers and asserts the exact error code and its
 * HTTP status: incremental parsing must never change the verdict.
 *
 * Rows of docs/bad-inputs.md §5 covered here: H-01, H-02, H-04..H-10, H-11
 * (the parser's share: any token method is parsed, asterisk- and
 * authority-form are 400; the 405 with "Allow: POST" is the server's) and
 * H-12.  Not here, because they are connection- or deployment-level:
 *   H-03 deadlines - the conn layer's timers; http_parser_phase() tells it
 *        which one runs (IDLE: idle timeout, HEAD: header deadline, BODY:
 *        minimum body rate);
 *   H-13 ALPN h2 / Upgrade: h2c - TLS and server policy; the parser merely
 *        passes "Upgrade" through as a header and refuses the HTTP/2
 *        preface with 505 (test_h13_h2_preface_refused, for the record);
 *   H-14 smuggling through a front proxy - run http-garden on the deployed
 *        chain; the strict framing rules tested under H-04..H-07 are this
 *        parser's half of it;
 *   H-15 forged identity headers (X-SSL-Client-Cert ...) - the parser
 *        returns every header as received; the server must take identity
 *        from TLS (or the trusted proxy hop) only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/http.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- helpers --------------------------------------------------------- */

/* A growable byte string for building big requests (test code only). */
struct sb {
	char *sb_buf;
	size_t sb_len;
	size_t sb_cap;
};

static void
sb_addn(struct sb *b, const void *d, size_t n)
{
	if (b->sb_len + n + 1 > b->sb_cap) {
		size_t cap = (b->sb_len + n + 1) * 2;
		char *nb = realloc(b->sb_buf, cap);

		assert_non_null(nb);
		b->sb_buf = nb;
		b->sb_cap = cap;
	}
	memcpy(b->sb_buf + b->sb_len, d, n);
	b->sb_len += n;
	b->sb_buf[b->sb_len] = '\0';
}

static void
sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void
sb_rep(struct sb *b, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_addn(b, &c, 1);
}

static void
sb_free(struct sb *b)
{
	free(b->sb_buf);
	b->sb_buf = NULL;
	b->sb_len = b->sb_cap = 0;
}

/*
 * Feed n bytes into p in slices of `step` bytes (0: all at once), passing
 * HTTP_CONTINUE through, until the parser stops asking for more.  Returns the
 * last result; *consumed gets the bytes used.
 */
static int
feed_steps(struct http_parser *p, const void *d, size_t n, size_t step,
    size_t *consumed)
{
	const uint8_t *b = d;
	size_t off = 0;
	int rc = HTTP_MORE;

	while (off < n) {
		size_t len = (step == 0 || n - off < step) ? n - off : step;
		size_t used = 0;

		rc = http_parser_feed(p, b + off, len, &used);
		assert_true(used <= len);
		off += used;
		if (rc != HTTP_MORE && rc != HTTP_CONTINUE)
			break;
	}
	*consumed = off;
	return rc;
}

static int
run(const void *d, size_t n, size_t step, size_t *consumed)
{
	struct http_parser *p = http_parser_new(0, 0);
	int rc;

	assert_non_null(p);
	rc = feed_steps(p, d, n, step, consumed);
	http_parser_free(p);
	return rc;
}

#define REJECT(lit, err, status) \
	check_reject((lit), sizeof(lit) - 1, (err), (status), __LINE__)

static void
check_reject(const char *s, size_t n, int err, int status, int line)
{
	static const size_t steps[] = { 0, 1, 7 };
	size_t used;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc = run(s, n, steps[i], &used);

		if (rc != err) {
			print_error("line %d, step %zu: got %d (%s), want %d "
			    "(%s)\n", line, steps[i], rc, http_err_reason(rc),
			    err, http_err_reason(err));
			fail();
		}
	}
	assert_int_equal(http_err_status(err), status);
}

/* Parse one complete request, in one call and byte by byte (which must
 * agree); returns the one-call parser, caller frees. */
static struct http_parser *
parse_ok_n(const char *s, size_t n, int line)
{
	struct http_parser *p = http_parser_new(0, 0);
	struct http_parser *q = http_parser_new(0, 0);
	const struct http_request *a, *b;
	size_t used;
	int rc;

	assert_non_null(p);
	assert_non_null(q);
	rc = feed_steps(p, s, n, 0, &used);
	if (rc != HTTP_DONE || used != n) {
		print_error("line %d: got %d (%s), used %zu of %zu\n", line, rc,
		    http_err_reason(rc), used, n);
		fail();
	}
	assert_int_equal(feed_steps(q, s, n, 1, &used), HTTP_DONE);
	assert_int_equal(used, n);
	a = http_parser_request(p);
	b = http_parser_request(q);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->rq_method, b->rq_method);
	assert_string_equal(a->rq_target, b->rq_target);
	assert_int_equal(a->rq_nfields, b->rq_nfields);
	assert_int_equal(a->rq_body_len, b->rq_body_len);
	assert_memory_equal(a->rq_body, b->rq_body, a->rq_body_len);
	assert_int_equal(a->rq_body[a->rq_body_len], '\0');
	http_parser_free(q);
	return p;
}

#define PARSE_OK(lit) parse_ok_n((lit), sizeof(lit) - 1, __LINE__)

static int
setup_parser(void **state)
{
	*state = http_parser_new(0, 0);
	return *state == NULL ? -1 : 0;
}

static int
teardown_parser(void **state)
{
	http_parser_free(*state);
	return 0;
}

/* ---- positive: shapes real clients send ------------------------------ */

static void
test_get_origin_form(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK(
	    "GET /soap/services/MSS_SignaturePort?wsdl HTTP/1.1\r\n"
	    "Host: mssp.example:8443\r\n"
	    "Accept: */*\r\n"
	    "\r\n");
	const struct http_request *rq = http_parser_request(p);

	assert_string_equal(rq->rq_method, "GET");
	assert_string_equal(rq->rq_target,
	    "/soap/services/MSS_SignaturePort?wsdl");
	assert_string_equal(rq->rq_path, rq->rq_target);
	assert_string_equal(rq->rq_host, "mssp.example:8443");
	assert_int_equal(rq->rq_version_minor, 1);
	assert_true(rq->rq_keep_alive);
	assert_false(rq->rq_length_declared);
	assert_false(rq->rq_chunked);
	assert_false(rq->rq_expect_continue);
	assert_int_equal(rq->rq_nfields, 2);
	assert_non_null(rq->rq_body);
	assert_int_equal(rq->rq_body_len, 0);
	assert_int_equal(rq->rq_ntrailers, 0);
	http_parser_free(p);
}

/* Swisscom shell scripts: curl --data, one-line body, Content-Length. */
static void
test_post_content_length(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK(
	    "POST /soap/services/MSS_SignaturePort HTTP/1.1\r\n"
	    "Host: localhost:8443\r\n"
	    "User-Agent: curl/7.88.1\r\n"
	    "Content-Type: text/xml;charset=utf-8\r\n"
	    "Accept: application/xml\r\n"
	    "Content-Length: 28\r\n"
	    "\r\n"
	    "<env:Envelope>  </env:Envel>");
	const struct http_request *rq = http_parser_request(p);

	assert_string_equal(rq->rq_method, "POST");
	assert_true(rq->rq_length_declared);
	assert_false(rq->rq_chunked);
	assert_int_equal(rq->rq_content_length, 28);
	assert_int_equal(rq->rq_body_len, 28);
	assert_memory_equal(rq->rq_body, "<env:Envelope>  </env:Envel>", 28);
	assert_string_equal(http_request_header(rq, "content-type"),
	    "text/xml;charset=utf-8");
	http_parser_free(p);
}

/* Laverca: Transfer-Encoding: chunked, no Content-Length, Keep-Alive. */
static void
test_post_chunked_laverca(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK(
	    "POST /soap/services/MSS_SignaturePort HTTP/1.1\r\n"
	    "Content-Type: application/soap+xml; charset=UTF-8\r\n"
	    "SOAPAction: \"#MSS_Signature\"\r\n"
	    "Transfer-Encoding: chunked\r\n"
	    "Host: localhost:9011\r\n"
	    "Connection: Keep-Alive\r\n"
	    "User-Agent: Apache-HttpClient/4.5.3 (Java/17.0.13)\r\n"
	    "Accept-Encoding: gzip,deflate\r\n"
	    "\r\n"
	    "e\r\n<env:Envelope>\r\n"
	    "1A\r\n<env:Body>0123456789abcdef\r\n"
	    "00f\r\n</env:Envelope>\r\n"
	    "0\r\n"
	    "\r\n");
	const struct http_request *rq = http_parser_request(p);
	static const char body[] =
	    "<env:Envelope><env:Body>0123456789abcdef</env:Envelope>";

	assert_true(rq->rq_chunked);
	assert_true(rq->rq_length_declared);
	assert_int_equal(rq->rq_content_length, 0);
	assert_true(rq->rq_keep_alive);
	assert_int_equal(rq->rq_body_len, sizeof(body) - 1);
	assert_memory_equal(rq->rq_body, body, sizeof(body) - 1);
	assert_string_equal(http_request_header(rq, "soapaction"),
	    "\"#MSS_Signature\"");
	http_parser_free(p);
}

/* H-07 (positive side): extensions accepted, trailers kept apart. */
static void
test_chunked_ext_and_trailers_not_merged(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK(
	    "POST /rest/service HTTP/1.1\r\n"
	    "Host: h\r\n"
	    "Transfer-Encoding: chunked\r\n"
	    "\r\n"
	    "5;name=value ; q=\"a b\\\"c\";flag\r\nhello\r\n"
	    "0\r\n"
	    "X-Checksum: abc\r\n"
	    "X-Other:  def \r\n"
	    "\r\n");
	const struct http_request *rq = http_parser_request(p);

	assert_int_equal(rq->rq_body_len, 5);
	assert_memory_equal(rq->rq_body, "hello", 5);
	assert_int_equal(rq->rq_ntrailers, 2);
	assert_string_equal(http_request_trailer(rq, "x-checksum"), "abc");
	assert_string_equal(http_request_trailer(rq, "X-OTHER"), "def");
	assert_null(http_request_header(rq, "x-checksum"));
	assert_int_equal(rq->rq_nfields, 2);
	http_parser_free(p);
}

/* Every split of a chunked request into two feeds gives the same request. */
static void
test_every_split_point(void **state)
{
	(void)state;
	static const char req[] =
	    "POST /soap HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n3;x=1\r\nabc\r\n4\r\ndefg\r\n0\r\nT: v\r\n\r\n";
	const size_t n = sizeof(req) - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		struct http_parser *p = http_parser_new(0, 0);
		const struct http_request *rq;
		size_t u1 = 0, u2 = 0;
		int rc;

		assert_non_null(p);
		rc = http_parser_feed(p, req, cut, &u1);
		assert_int_equal(u1, cut);
		assert_int_equal(rc, cut == n ? HTTP_DONE : HTTP_MORE);
		rc = http_parser_feed(p, req + cut, n - cut, &u2);
		assert_int_equal(rc, HTTP_DONE);
		assert_int_equal(u2, cut == n ? 0 : n - cut);
		rq = http_parser_request(p);
		assert_int_equal(rq->rq_body_len, 7);
		assert_memory_equal(rq->rq_body, "abcdefg", 7);
		assert_string_equal(http_request_trailer(rq, "t"), "v");
		http_parser_free(p);
	}
}

/* Body split across many feed() calls, byte by byte, Content-Length. */
static void
test_bytewise_content_length(void **state)
{
	struct http_parser *p = *state;
	static const char req[] =
	    "POST /rest/service HTTP/1.1\r\nHost: h\r\n"
	    "Content-Type: application/json\r\nContent-Length: 16\r\n\r\n"
	    "{\"a\":\"b\",\"c\":1}\n";
	const size_t n = sizeof(req) - 1;
	size_t used;

	for (size_t i = 0; i < n; i++) {
		int rc = http_parser_feed(p, req + i, 1, &used);

		assert_int_equal(used, 1);
		assert_int_equal(rc, i + 1 == n ? HTTP_DONE : HTTP_MORE);
		if (i + 1 < n) {
			const struct http_request *rq = http_parser_request(p);

			/* Head readable once complete, body only at the end. */
			assert_true(rq == NULL || rq->rq_body == NULL);
		}
	}
	assert_int_equal(http_parser_request(p)->rq_body_len, 16);
	assert_memory_equal(http_parser_request(p)->rq_body,
	    "{\"a\":\"b\",\"c\":1}\n", 16);
}

/* ---- pipelining (H-09) ----------------------------------------------- */

static void
test_h09_pipeline_two(void **state)
{
	struct http_parser *p = *state;
	static const char r1[] = "POST /a HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 3\r\n\r\nabc";
	static const char r2[] = "POST /b HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 2\r\n\r\nde";
	char buf[sizeof(r1) + sizeof(r2)];
	size_t n1 = sizeof(r1) - 1, n2 = sizeof(r2) - 1, used;

	memcpy(buf, r1, n1);
	memcpy(buf + n1, r2, n2);
	assert_int_equal(http_parser_feed(p, buf, n1 + n2, &used), HTTP_DONE);
	assert_int_equal(used, n1);
	assert_string_equal(http_parser_request(p)->rq_target, "/a");
	assert_memory_equal(http_parser_request(p)->rq_body, "abc", 3);
	/* Not released yet: feeding again consumes nothing. */
	assert_int_equal(http_parser_feed(p, buf + n1, n2, &used), HTTP_DONE);
	assert_int_equal(used, 0);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_READY);
	assert_int_equal(http_parser_next(p), 0);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_IDLE);
	assert_null(http_parser_request(p));
	assert_int_equal(http_parser_feed(p, buf + n1, n2, &used), HTTP_DONE);
	assert_int_equal(used, n2);
	assert_string_equal(http_parser_request(p)->rq_target, "/b");
	assert_memory_equal(http_parser_request(p)->rq_body, "de", 2);
}

static void
test_h09_pipeline_three(void **state)
{
	struct http_parser *p = *state;
	static const char buf[] =
	    "POST /1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nxy\r\n0\r\n\r\n"
	    "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
	    "POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
	    "Connection: close\r\n\r\nz";
	static const char *const want[] = { "/1", "/2", "/3" };
	static const char *const body[] = { "xy", "", "z" };
	size_t off = 0, n = sizeof(buf) - 1;

	for (int i = 0; i < 3; i++) {
		size_t used;
		const struct http_request *rq;

		assert_int_equal(http_parser_feed(p, buf + off, n - off, &used),
		    HTTP_DONE);
		off += used;
		rq = http_parser_request(p);
		assert_string_equal(rq->rq_target, want[i]);
		assert_string_equal((const char *)rq->rq_body, body[i]);
		assert_int_equal(rq->rq_keep_alive, i < 2);
		if (i < 2)
			assert_int_equal(http_parser_next(p), 0);
	}
	assert_int_equal(off, n);
	/* The third asked for close: nothing after it may be parsed. */
	assert_int_equal(http_parser_next(p), HTTP_ERR_CLOSED);
	assert_int_equal(http_err_status(HTTP_ERR_CLOSED), 0);
}

/* A framing error in an earlier request: the later ones never come out. */
static void
test_h09_pipeline_error_stops_later(void **state)
{
	struct http_parser *p = *state;
	static const char buf[] =
	    "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"
	    "POST /smuggle HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n"
	    "GET /hidden HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t off = 0, used, n = sizeof(buf) - 1;

	assert_int_equal(http_parser_feed(p, buf, n, &used), HTTP_DONE);
	assert_string_equal(http_parser_request(p)->rq_target, "/ok");
	off += used;
	assert_int_equal(http_parser_next(p), 0);
	assert_int_equal(http_parser_feed(p, buf + off, n - off, &used),
	    HTTP_ERR_CL_AND_TE);
	off += used;
	assert_true(off < n);
	/* Terminal: the rest is never parsed, whatever is fed. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(http_parser_feed(p, buf + off, n - off, &used),
		    HTTP_ERR_CL_AND_TE);
		assert_int_equal(used, 0);
		assert_null(http_parser_request(p));
	}
	assert_int_equal(http_parser_next(p), HTTP_ERR_CL_AND_TE);
	assert_int_equal(http_parser_error(p), HTTP_ERR_CL_AND_TE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_ERROR);
}

/* A pipelined request after "Connection: close" is never returned. */
static void
test_h09_no_request_after_close(void **state)
{
	struct http_parser *p = *state;
	static const char buf[] =
	    "POST /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
	    "Content-Length: 1\r\n\r\nx"
	    "POST /b HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t used;

	assert_int_equal(http_parser_feed(p, LIT(buf), &used), HTTP_DONE);
	assert_false(http_parser_request(p)->rq_keep_alive);
	assert_int_equal(http_parser_next(p), HTTP_ERR_CLOSED);
	assert_int_equal(http_parser_feed(p, buf + used, sizeof(buf) - 1 - used,
	    &used), HTTP_ERR_CLOSED);
	assert_int_equal(used, 0);
}

/* ---- connection management ------------------------------------------- */

static void
test_keep_alive_rules(void **state)
{
	(void)state;
	static const struct {
		const char *kr_req;
		bool kr_keep;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: h\r\n\r\n", true },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		  false },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n",
		  false },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n",
		  true },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n"
		  "\r\n", false },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\n"
		  "Connection: close\r\n\r\n", false },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: , ,keep-alive ,\r\n"
		  "\r\n", true },
		{ "GET / HTTP/1.0\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
		  false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_parser *p = parse_ok_n(cases[i].kr_req,
		    strlen(cases[i].kr_req), (int)i);

		assert_int_equal(http_parser_request(p)->rq_keep_alive,
		    cases[i].kr_keep);
		http_parser_free(p);
	}
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nConnection: close;x\r\n\r\n",
	    HTTP_ERR_CONNECTION, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nConnection: clo se\r\n\r\n",
	    HTTP_ERR_CONNECTION, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, @\r\n\r\n",
	    HTTP_ERR_CONNECTION, 400);
}

static void
test_http10_request(void **state)
{
	(void)state;
	/* HTTP/1.0: Host optional, POST without length has an empty body. */
	struct http_parser *p = PARSE_OK("POST /soap HTTP/1.0\r\n\r\n");
	const struct http_request *rq = http_parser_request(p);

	assert_int_equal(rq->rq_version_minor, 0);
	assert_null(rq->rq_host);
	assert_false(rq->rq_keep_alive);
	assert_false(rq->rq_length_declared);
	assert_int_equal(rq->rq_body_len, 0);
	http_parser_free(p);
}

/* POST with neither length: body empty, length not declared (the server
 * may answer 411 itself). */
static void
test_post_without_length(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK("POST /soap HTTP/1.1\r\nHost: h\r\n\r\n");
	const struct http_request *rq = http_parser_request(p);

	assert_false(rq->rq_length_declared);
	assert_int_equal(rq->rq_body_len, 0);
	assert_int_equal(rq->rq_body[0], '\0');
	http_parser_free(p);

	p = PARSE_OK("POST /soap HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	assert_true(http_parser_request(p)->rq_length_declared);
	assert_int_equal(http_parser_request(p)->rq_body_len, 0);
	http_parser_free(p);
}

/* ---- Expect: 100-continue (H-12) ------------------------------------- */

static void
test_h12_expect_continue(void **state)
{
	struct http_parser *p = *state;
	static const char head[] = "POST /soap HTTP/1.1\r\nHost: h\r\n"
	    "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
	static const char all[] = "POST /soap HTTP/1.1\r\nHost: h\r\n"
	    "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello";
	size_t used;
	const struct http_request *rq;

	assert_int_equal(http_parser_feed(p, LIT(all), &used), HTTP_CONTINUE);
	assert_int_equal(used, sizeof(head) - 1);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_BODY);
	rq = http_parser_request(p);
	assert_non_null(rq);
	assert_true(rq->rq_expect_continue);
	assert_null(rq->rq_body);
	assert_string_equal(rq->rq_method, "POST");
	assert_int_equal(http_parser_feed(p, all + used,
	    sizeof(all) - 1 - used, &used), HTTP_DONE);
	assert_int_equal(used, 5);
	assert_memory_equal(http_parser_request(p)->rq_body, "hello", 5);
}

static void
test_h12_expect_continue_chunked(void **state)
{
	struct http_parser *p = *state;
	static const char head[] = "POST /soap HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
	size_t used;

	assert_int_equal(http_parser_feed(p, LIT(head), &used), HTTP_CONTINUE);
	assert_int_equal(http_parser_feed(p, LIT("1\r\na\r\n0\r\n\r\n"), &used),
	    HTTP_DONE);
	assert_memory_equal(http_parser_request(p)->rq_body, "a", 1);
}

/* Over-limit declared length: 413 at the end of the head, before any 100
 * and before any body byte is read. */
static void
test_h12_expect_over_limit_413(void **state)
{
	struct http_parser *p = *state;
	static const char head[] = "POST /soap HTTP/1.1\r\nHost: h\r\n"
	    "Expect: 100-continue\r\nContent-Length: 65537\r\n\r\n";
	static const char all[] = "POST /soap HTTP/1.1\r\nHost: h\r\n"
	    "Expect: 100-continue\r\nContent-Length: 65537\r\n\r\nxxxx";
	size_t used;

	assert_int_equal(http_parser_feed(p, LIT(all), &used),
	    HTTP_ERR_BODY_TOO_LARGE);
	assert_int_equal(used, sizeof(head) - 1);
	assert_int_equal(http_err_status(HTTP_ERR_BODY_TOO_LARGE), 413);
	assert_null(http_parser_request(p));
	REJECT("POST /soap HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
	    "Content-Length: 65537\r\n\r\n", HTTP_ERR_BODY_TOO_LARGE, 413);
}

static void
test_h12_expect_variants(void **state)
{
	(void)state;
	struct http_parser *p;

	/* No body to wait for: complete at once, no CONTINUE. */
	p = PARSE_OK("POST /s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
	    "Content-Length: 0\r\n\r\n");
	assert_true(http_parser_request(p)->rq_expect_continue);
	http_parser_free(p);
	/* HTTP/1.0: the expectation is ignored (RFC 9110 §10.1.1). */
	p = PARSE_OK("POST /s HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 1\r\n\r\nx");
	assert_false(http_parser_request(p)->rq_expect_continue);
	http_parser_free(p);
	p = PARSE_OK("POST /s HTTP/1.0\r\nExpect: whatever\r\n\r\n");
	http_parser_free(p);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
	    HTTP_ERR_EXPECT, 417);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n",
	    HTTP_ERR_EXPECT, 417);
}

/* ---- fields ---------------------------------------------------------- */

static void
test_header_lookup_case_insensitive(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK(
	    "POST /s HTTP/1.1\r\n"
	    "hOsT: h\r\n"
	    "Content-Type: application/json\r\n"
	    "X-Spaces: \t a  b \t \r\n"
	    "X-Empty:\r\n"
	    "X-Obs-Text: caf\xc3\xa9\r\n"
	    "X-Dup: 1\r\n"
	    "X-Dup: 2\r\n"
	    "\r\n");
	const struct http_request *rq = http_parser_request(p);

	assert_string_equal(http_request_header(rq, "content-type"),
	    "application/json");
	assert_string_equal(http_request_header(rq, "CONTENT-TYPE"),
	    "application/json");
	assert_string_equal(http_request_header(rq, "Host"), "h");
	assert_string_equal(rq->rq_host, "h");
	assert_string_equal(http_request_header(rq, "x-spaces"), "a  b");
	assert_string_equal(http_request_header(rq, "x-empty"), "");
	assert_string_equal(http_request_header(rq, "x-obs-text"),
	    "caf\xc3\xa9");
	assert_string_equal(http_request_header(rq, "x-dup"), "1");
	assert_null(http_request_header(rq, "content-typ"));
	assert_null(http_request_header(rq, "content-type2"));
	assert_null(http_request_header(rq, "x"));
	assert_string_equal(rq->rq_fields[0].hf_name, "hOsT");
	http_parser_free(p);
}

static void
test_content_type_duplicate(void **state)
{
	(void)state;
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Type: text/xml\r\n"
	    "content-type: application/json\r\n\r\n", HTTP_ERR_CT_DUP, 400);
}

/* ---- request line ---------------------------------------------------- */

static void
test_request_line_syntax(void **state)
{
	(void)state;
	REJECT("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_REQUEST_LINE, 400);
	REJECT("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", HTTP_ERR_VERSION_SYNTAX,
	    400);
	REJECT("GET /\r\nHost: h\r\n\r\n", HTTP_ERR_REQUEST_LINE, 400);
	REJECT("GET\r\n\r\n", HTTP_ERR_REQUEST_LINE, 400);
	REJECT(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_REQUEST_LINE, 400);
	REJECT("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_METHOD, 400);
	REJECT("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_METHOD, 400);
	REJECT("GET / http/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION_SYNTAX, 400);
	REJECT("GET / HTTP/1.10\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION_SYNTAX,
	    400);
	REJECT("GET / HTTP/1\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION_SYNTAX, 400);
	REJECT("GET / HTTP/2.0\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION, 505);
	REJECT("GET / HTTP/1.2\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION, 505);
	REJECT("GET / HTTP/0.9\r\nHost: h\r\n\r\n", HTTP_ERR_VERSION, 505);
	REJECT("GET /a<b HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET / HTTP/1.1\n", HTTP_ERR_BARE_LF, 400);
	REJECT("GET / HTTP/1.1\r\r\n", HTTP_ERR_BARE_CR, 400);
	REJECT("GET /\ra HTTP/1.1\r\n", HTTP_ERR_BARE_CR, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\n\r\n", HTTP_ERR_BARE_LF, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\n\n", HTTP_ERR_BARE_LF, 400);

	struct http_parser *p = PARSE_OK(
	    "GET /p/a-b_c.d~e!$&'()*+,;=:@%2F?q=1&r=/? HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_string_equal(http_parser_request(p)->rq_path,
	    "/p/a-b_c.d~e!$&'()*+,;=:@%2F?q=1&r=/?");
	http_parser_free(p);
}

/* RFC 9112 §2.2: one empty line before the request line is skipped. */
static void
test_leading_empty_line(void **state)
{
	(void)state;
	struct http_parser *p = PARSE_OK("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_string_equal(http_parser_request(p)->rq_target, "/");
	http_parser_free(p);
	REJECT("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_EMPTY_LINE,
	    400);
	REJECT("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_BARE_LF, 400);
}

/* The extra CRLF some clients send after a POST body, between pipelined
 * requests, is the one tolerated empty line. */
static void
test_crlf_after_body_between_requests(void **state)
{
	struct http_parser *p = *state;
	static const char buf[] =
	    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\n"
	    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t used, off;

	assert_int_equal(http_parser_feed(p, LIT(buf), &used), HTTP_DONE);
	off = used;
	assert_int_equal(http_parser_next(p), 0);
	assert_int_equal(http_parser_feed(p, buf + off, sizeof(buf) - 1 - off,
	    &used), HTTP_DONE);
	assert_string_equal(http_parser_request(p)->rq_target, "/b");
}

/* ---- H-01: sizes of the head ----------------------------------------- */

static void
test_h01_request_line_too_long(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used;
	/* "M...M /t HTTP/1.1": method padded so the line is exactly the cap. */
	const size_t fixed = sizeof(" /t HTTP/1.1") - 1;

	sb_rep(&b, 'M', MSSP_HTTP_MAX_REQUEST_LINE - fixed);
	sb_add(&b, " /t HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used), HTTP_DONE);
	assert_int_equal(run(b.sb_buf, b.sb_len, 1, &used), HTTP_DONE);
	sb_free(&b);

	sb_rep(&b, 'M', MSSP_HTTP_MAX_REQUEST_LINE - fixed + 1);
	sb_add(&b, " /t HTTP/1.1\r\nHost: h\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_LINE_TOO_LONG, 414, __LINE__);
	sb_free(&b);

	/* Rejected as the bytes arrive: an endless line stops at the cap. */
	sb_add(&b, "POST /");
	sb_rep(&b, 'a', 100000);
	assert_int_equal(run(b.sb_buf, b.sb_len, 1, &used),
	    HTTP_ERR_LINE_TOO_LONG);
	assert_true(used <= MSSP_HTTP_MAX_REQUEST_LINE + 2);
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used),
	    HTTP_ERR_LINE_TOO_LONG);
	sb_free(&b);
}

static void
test_h01_target_too_long(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used;

	sb_add(&b, "GET /");
	sb_rep(&b, 'a', MSSP_HTTP_MAX_TARGET - 1);
	sb_add(&b, " HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used), HTTP_DONE);
	sb_free(&b);

	sb_add(&b, "GET /");
	sb_rep(&b, 'a', MSSP_HTTP_MAX_TARGET);
	sb_add(&b, " HTTP/1.1\r\nHost: h\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_TARGET_TOO_LONG, 414,
	    __LINE__);
	sb_free(&b);
}

static void
test_h01_head_too_large(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used;
	static const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ";
	/* start + value + "\r\n\r\n" == cap exactly. */
	const size_t value = MSSP_HTTP_MAX_HEAD - (sizeof(start) - 1) - 4;

	sb_add(&b, start);
	sb_rep(&b, 'v', value);
	sb_add(&b, "\r\n\r\n");
	assert_int_equal(b.sb_len, MSSP_HTTP_MAX_HEAD);
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used), HTTP_DONE);
	assert_int_equal(run(b.sb_buf, b.sb_len, 1, &used), HTTP_DONE);
	sb_free(&b);

	sb_add(&b, start);
	sb_rep(&b, 'v', value + 1);
	sb_add(&b, "\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_HEAD_TOO_LARGE, 431,
	    __LINE__);
	sb_free(&b);

	/* Slow or fast, a header line without end is cut at the cap. */
	sb_add(&b, start);
	sb_rep(&b, 'v', 100000);
	assert_int_equal(run(b.sb_buf, b.sb_len, 1, &used),
	    HTTP_ERR_HEAD_TOO_LARGE);
	assert_int_equal(used, MSSP_HTTP_MAX_HEAD + 1);
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used),
	    HTTP_ERR_HEAD_TOO_LARGE);
	sb_free(&b);
}

static void
test_h01_too_many_fields(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used;
	char line[32];

	sb_add(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < MSSP_HTTP_MAX_HEADERS; i++) {
		snprintf(line, sizeof(line), "X-%d: v\r\n", i);
		sb_add(&b, line);
	}
	sb_add(&b, "\r\n");
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used), HTTP_DONE);
	b.sb_len -= 2;
	sb_add(&b, "X-One-More: v\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_TOO_MANY_FIELDS, 431,
	    __LINE__);
	sb_free(&b);
}

/* ---- H-02: body size ------------------------------------------------- */

static void
test_h02_content_length_over_limit(void **state)
{
	struct http_parser *p = *state;
	static const char head[] = "POST /s HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 65537\r\n\r\n";
	size_t used;

	/* Refused on the value: not one body byte is read. */
	assert_int_equal(http_parser_feed(p, LIT(head), &used),
	    HTTP_ERR_BODY_TOO_LARGE);
	assert_int_equal(used, sizeof(head) - 1);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 99999999999999999999999999999\r\n\r\n",
	    HTTP_ERR_BODY_TOO_LARGE, 413);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 18446744073709551616\r\n\r\n",
	    HTTP_ERR_BODY_TOO_LARGE, 413);
}

/* One-line body of exactly the cap passes, one byte more is 413. */
static void
test_h02_one_line_body_at_limit(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used;
	char line[64];
	struct http_parser *p;

	snprintf(line, sizeof(line), "Content-Length: %d\r\n\r\n",
	    MSSP_HTTP_MAX_BODY);
	sb_add(&b, "POST /s HTTP/1.1\r\nHost: h\r\n");
	sb_add(&b, line);
	sb_rep(&b, 'x', MSSP_HTTP_MAX_BODY);
	p = parse_ok_n(b.sb_buf, b.sb_len, __LINE__);
	assert_int_equal(http_parser_request(p)->rq_body_len,
	    MSSP_HTTP_MAX_BODY);
	http_parser_free(p);
	sb_free(&b);

	/* Chunked: one chunk of exactly the cap, then one of the cap + 1. */
	snprintf(line, sizeof(line), "%x\r\n", MSSP_HTTP_MAX_BODY);
	sb_add(&b, "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n");
	sb_add(&b, line);
	sb_rep(&b, 'x', MSSP_HTTP_MAX_BODY);
	sb_add(&b, "\r\n0\r\n\r\n");
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used), HTTP_DONE);
	sb_free(&b);

	snprintf(line, sizeof(line), "%x\r\n", MSSP_HTTP_MAX_BODY + 1);
	sb_add(&b, "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n");
	sb_add(&b, line);
	sb_rep(&b, 'x', MSSP_HTTP_MAX_BODY + 1);
	sb_add(&b, "\r\n0\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_BODY_TOO_LARGE, 413,
	    __LINE__);
	sb_free(&b);
}

/* Chunked stream capped while reading: many small chunks add up. */
static void
test_h02_chunked_sum_over_limit(void **state)
{
	(void)state;
	struct sb b = { 0 };
	size_t used, head_len;

	sb_add(&b, "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n");
	head_len = b.sb_len;
	for (int i = 0; i < MSSP_HTTP_MAX_BODY / 1024; i++) {
		sb_add(&b, "400\r\n");
		sb_rep(&b, 'y', 1024);
		sb_add(&b, "\r\n");
	}
	sb_add(&b, "1\r\nz\r\n0\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_BODY_TOO_LARGE, 413,
	    __LINE__);
	/* Stopped at the size line of the chunk that would overflow. */
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &used),
	    HTTP_ERR_BODY_TOO_LARGE);
	assert_int_equal(used, head_len + (MSSP_HTTP_MAX_BODY / 1024) *
	    (5 + 1024 + 2) + 3);
	sb_free(&b);
}

static void
test_custom_caps(void **state)
{
	(void)state;
	struct http_parser *p;
	size_t used;

	assert_null(http_parser_new(MSSP_HTTP_MAX_HEAD + 1, 0));
	assert_null(http_parser_new(0, MSSP_HTTP_MAX_BODY + 1));
	p = http_parser_new(32, 4);
	assert_non_null(p);
	assert_int_equal(http_parser_feed(p, LIT("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\n\r\n"), &used), HTTP_ERR_HEAD_TOO_LARGE);
	http_parser_free(p);
	p = http_parser_new(128, 4);
	assert_int_equal(http_parser_feed(p, LIT("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\n\r\n"), &used), HTTP_ERR_BODY_TOO_LARGE);
	http_parser_free(p);
	p = http_parser_new(128, 4);
	assert_int_equal(http_parser_feed(p, LIT("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 4\r\n\r\nabcd"), &used), HTTP_DONE);
	http_parser_free(p);
	http_parser_free(NULL);
}

/* ---- H-04, H-05: Content-Length -------------------------------------- */

static void
test_h04_cl_and_te(void **state)
{
	(void)state;
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_ERR_CL_AND_TE,
	    400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 0\r\n\r\n0\r\n\r\n", HTTP_ERR_CL_AND_TE, 400);
	/* A too-large CL does not hide the framing conflict. */
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 9999999\r\n\r\n", HTTP_ERR_CL_AND_TE, 400);
}

static void
test_h05_content_length_values(void **state)
{
	(void)state;
	struct http_parser *p;

	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	    "Content-Length: 3\r\n\r\nabc", HTTP_ERR_CL_DUP, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	    "content-length: 4\r\n\r\nabcd", HTTP_ERR_CL_DUP, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: +12\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 12, 13\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 3,3\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: \xd9\xa1\r\n\r\n",
	    HTTP_ERR_CL_INVALID, 400);
	/* "leading spaces" of H-05 inside the name are H-08's 400; OWS
	 * around the value is not part of it (RFC 9112 §5.1) and accepted. */
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\n Content-Length: 1\r\n\r\nx",
	    HTTP_ERR_OBS_FOLD, 400);
	p = PARSE_OK("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: \t 3 \r\n"
	    "\r\nabc");
	assert_int_equal(http_parser_request(p)->rq_content_length, 3);
	http_parser_free(p);
	p = PARSE_OK("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0003\r\n"
	    "\r\nabc");
	assert_int_equal(http_parser_request(p)->rq_body_len, 3);
	http_parser_free(p);
}

/* ---- H-06: Transfer-Encoding ----------------------------------------- */

static void
test_h06_te_obfuscation(void **state)
{
	(void)state;
	struct http_parser *p;

#define TE_REQ(te) "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " te \
	"\r\n\r\n0\r\n\r\n"
	REJECT(TE_REQ("chunked, identity"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("identity"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("Chunked"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("CHUNKED"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("xchunked"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("chunkedx"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("chunked;q=1"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ(", chunked"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("chunked,"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("chunked, chunked"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("chunked chunked"), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("\"chunked\""), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ(""), HTTP_ERR_TE_INVALID, 400);
	REJECT(TE_REQ("\x0b" "chunked"), HTTP_ERR_FIELD_VALUE, 400);
	REJECT(TE_REQ("chunked\x0c"), HTTP_ERR_FIELD_VALUE, 400);
	/* Well-formed but unsupported coding before the final chunked. */
	REJECT(TE_REQ("gzip, chunked"), HTTP_ERR_TE_UNSUPPORTED, 501);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_ERR_TE_DUP, 400);
	REJECT("POST /s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n", HTTP_ERR_TE_HTTP10, 400);
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n"
	    "\r\n0\r\n\r\n", HTTP_ERR_WS_BEFORE_COLON, 400);
	/* Surrounding OWS is not part of the value: still exactly chunked. */
	p = PARSE_OK(TE_REQ("chunked "));
	assert_true(http_parser_request(p)->rq_chunked);
	http_parser_free(p);
	p = PARSE_OK(TE_REQ("\tchunked\t"));
	assert_true(http_parser_request(p)->rq_chunked);
	http_parser_free(p);
#undef TE_REQ
}

/* ---- H-07: chunk framing --------------------------------------------- */

static void
test_h07_chunk_sizes(void **state)
{
	(void)state;
#define CH_REQ(chunks) "POST /s HTTP/1.1\r\nHost: h\r\n" \
	"Transfer-Encoding: chunked\r\n\r\n" chunks
	REJECT(CH_REQ("10000000000000000\r\n"), HTTP_ERR_CHUNK_SIZE_LONG, 400);
	REJECT(CH_REQ("0000000000000001\r\nx\r\n0\r\n\r\n"),
	    HTTP_ERR_CHUNK_SIZE_LONG, 400);
	REJECT(CH_REQ("ffffffffffffffffffffffff\r\n"), HTTP_ERR_CHUNK_SIZE_LONG,
	    400);
	/* 15 digits is syntax the parser accepts, and 413 by size. */
	REJECT(CH_REQ("fffffffffffffff\r\n"), HTTP_ERR_BODY_TOO_LARGE, 413);
	REJECT(CH_REQ("-1\r\n"), HTTP_ERR_CHUNK_SIZE, 400);
	REJECT(CH_REQ("\r\n"), HTTP_ERR_CHUNK_SIZE, 400);
	REJECT(CH_REQ("0x10\r\n"), HTTP_ERR_CHUNK_SIZE, 400);
	REJECT(CH_REQ(" 5\r\nhello\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_SIZE, 400);
	REJECT(CH_REQ("+5\r\nhello\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_SIZE, 400);
	REJECT(CH_REQ("5 \r\nhello\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("5\r\nhelloX\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_CRLF, 400);
	REJECT(CH_REQ("5\r\nhello0\r\n\r\n"), HTTP_ERR_CHUNK_CRLF, 400);
	REJECT(CH_REQ("5\r\nhello\n0\r\n\r\n"), HTTP_ERR_CHUNK_CRLF, 400);
	REJECT(CH_REQ("5\r\nhello\rX"), HTTP_ERR_CHUNK_CRLF, 400);
	REJECT(CH_REQ("5\nhello\r\n0\r\n\r\n"), HTTP_ERR_BARE_LF, 400);
	REJECT(CH_REQ("5;a=b\nhello\r\n0\r\n\r\n"), HTTP_ERR_BARE_LF, 400);
	REJECT(CH_REQ("5\rhello\r\n0\r\n\r\n"), HTTP_ERR_BARE_CR, 400);
	REJECT(CH_REQ("0\r\n\n"), HTTP_ERR_BARE_LF, 400);
	REJECT(CH_REQ("0\n\r\n"), HTTP_ERR_BARE_LF, 400);
}

static void
test_h07_chunk_extensions(void **state)
{
	(void)state;
	struct sb b = { 0 };
	struct http_parser *p;

	REJECT(CH_REQ("1;\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;=v\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=\"x\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=b c\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a\x01\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=b \r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=\"\\\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT, 400);
	REJECT(CH_REQ("1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n"), HTTP_ERR_CHUNK_EXT,
	    400);
	p = PARSE_OK(CH_REQ("1 ; a = b ;c=\"q\\\"\"\r\nx\r\n0;last\r\n\r\n"));
	assert_int_equal(http_parser_request(p)->rq_body_len, 1);
	http_parser_free(p);

	/* Cap on extension bytes, counted from the first byte after the
	 * size: exactly MSSP_HTTP_MAX_CHUNK_EXT passes, one more is 400. */
	sb_add(&b, CH_REQ("1;a="));
	sb_rep(&b, 'e', MSSP_HTTP_MAX_CHUNK_EXT - 3);
	sb_add(&b, "\r\nx\r\n0\r\n\r\n");
	p = parse_ok_n(b.sb_buf, b.sb_len, __LINE__);
	http_parser_free(p);
	sb_free(&b);
	sb_add(&b, CH_REQ("1;a="));
	sb_rep(&b, 'e', MSSP_HTTP_MAX_CHUNK_EXT - 2);
	sb_add(&b, "\r\nx\r\n0\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_CHUNK_EXT_LONG, 400,
	    __LINE__);
	sb_free(&b);
	/* A huge extension is cut at the cap, not buffered. */
	sb_add(&b, CH_REQ("1;a="));
	sb_rep(&b, 'e', 100000);
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_CHUNK_EXT_LONG, 400,
	    __LINE__);
	sb_free(&b);
}

static void
test_h07_trailers(void **state)
{
	(void)state;
	struct sb b = { 0 };
	char line[32];

	REJECT(CH_REQ("0\r\nContent-Length: 5\r\n\r\n"), HTTP_ERR_TRAILER_FIELD,
	    400);
	REJECT(CH_REQ("0\r\ntransfer-encoding: chunked\r\n\r\n"),
	    HTTP_ERR_TRAILER_FIELD, 400);
	REJECT(CH_REQ("0\r\nHOST: evil\r\n\r\n"), HTTP_ERR_TRAILER_FIELD, 400);
	REJECT(CH_REQ("0\r\nContent-Type: text/plain\r\n\r\n"),
	    HTTP_ERR_TRAILER_FIELD, 400);
	REJECT(CH_REQ("0\r\nX-A: 1\r\n b\r\n\r\n"), HTTP_ERR_OBS_FOLD, 400);
	REJECT(CH_REQ("0\r\nX-A : 1\r\n\r\n"), HTTP_ERR_WS_BEFORE_COLON, 400);
	REJECT(CH_REQ("0\r\nX-A: \x7f\r\n\r\n"), HTTP_ERR_FIELD_VALUE, 400);
	REJECT(CH_REQ("0\r\nX-A: 1\n\r\n"), HTTP_ERR_BARE_LF, 400);

	sb_add(&b, CH_REQ("0\r\n"));
	for (int i = 0; i < MSSP_HTTP_MAX_TRAILERS; i++) {
		snprintf(line, sizeof(line), "T-%d: v\r\n", i);
		sb_add(&b, line);
	}
	sb_add(&b, "\r\n");
	assert_int_equal(run(b.sb_buf, b.sb_len, 0, &(size_t){ 0 }), HTTP_DONE);
	b.sb_len -= 2;
	sb_add(&b, "T-last: v\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_TOO_MANY_TRAILERS, 400,
	    __LINE__);
	sb_free(&b);

	/* Trailer bytes share the head cap. */
	sb_add(&b, CH_REQ("0\r\nT: "));
	sb_rep(&b, 't', MSSP_HTTP_MAX_HEAD);
	sb_add(&b, "\r\n\r\n");
	check_reject(b.sb_buf, b.sb_len, HTTP_ERR_TRAILERS_TOO_LARGE, 400,
	    __LINE__);
	sb_free(&b);
#undef CH_REQ
}

/* ---- H-08: field syntax ---------------------------------------------- */

static void
test_h08_field_syntax(void **state)
{
	(void)state;
	REJECT("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nabcde",
	    HTTP_ERR_WS_BEFORE_COLON, 400);
	REJECT("POST /s HTTP/1.1\r\nHost\t: h\r\n\r\n", HTTP_ERR_WS_BEFORE_COLON,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
	    HTTP_ERR_OBS_FOLD, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n",
	    HTTP_ERR_OBS_FOLD, 400);
	REJECT("GET / HTTP/1.1\r\n Host: h\r\n\r\n", HTTP_ERR_OBS_FOLD, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n",
	    HTTP_ERR_FIELD_VALUE, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: \0\r\n\r\n",
	    HTTP_ERR_FIELD_VALUE, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
	    HTTP_ERR_BARE_CR, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n",
	    HTTP_ERR_BARE_LF, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n",
	    HTTP_ERR_FIELD_VALUE, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x1b[31m\r\n\r\n",
	    HTTP_ERR_FIELD_VALUE, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: v\r\n\r\n",
	    HTTP_ERR_FIELD_NAME, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A\0: v\r\n\r\n",
	    HTTP_ERR_FIELD_NAME, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", HTTP_ERR_FIELD_NAME,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nGarbage\r\n\r\n",
	    HTTP_ERR_FIELD_NAME, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n",
	    HTTP_ERR_FIELD_NAME, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX/A: v\r\n\r\n",
	    HTTP_ERR_FIELD_NAME, 400);
}

/* ---- H-10: Host ------------------------------------------------------ */

static void
test_h10_host(void **state)
{
	(void)state;
	struct http_parser *p;

	REJECT("POST /s HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	    HTTP_ERR_HOST_MISSING, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", HTTP_ERR_HOST_DUP,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_ERR_HOST_DUP,
	    400);
	REJECT("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_HOST_DUP,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost:\r\n\r\n", HTTP_ERR_HOST_INVALID, 400);
	REJECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_ERR_HOST_INVALID, 400);
	REJECT("GET / HTTP/1.1\r\nHost: a,b c\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: h:\r\n\r\n", HTTP_ERR_HOST_INVALID, 400);
	REJECT("GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: []\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	REJECT("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", HTTP_ERR_HOST_INVALID,
	    400);
	p = PARSE_OK("GET / HTTP/1.1\r\nHost: a%41b.example\r\n\r\n");
	http_parser_free(p);
	p = PARSE_OK("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
	assert_string_equal(http_parser_request(p)->rq_host, "[::1]:8443");
	http_parser_free(p);
	p = PARSE_OK("GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n\r\n");
	http_parser_free(p);
}

static void
test_h10_absolute_form(void **state)
{
	(void)state;
	struct http_parser *p;

	p = PARSE_OK("POST http://MSSP.example:8443/soap/x?y HTTP/1.1\r\n"
	    "Host: mssp.EXAMPLE:8443\r\n\r\n");
	assert_string_equal(http_parser_request(p)->rq_path, "/soap/x?y");
	assert_string_equal(http_parser_request(p)->rq_target,
	    "http://MSSP.example:8443/soap/x?y");
	http_parser_free(p);
	p = PARSE_OK("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_string_equal(http_parser_request(p)->rq_path, "/");
	http_parser_free(p);
	p = PARSE_OK("GET http://h/ HTTP/1.0\r\n\r\n");
	assert_null(http_parser_request(p)->rq_host);
	http_parser_free(p);
	REJECT("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
	    HTTP_ERR_HOST_MISMATCH, 400);
	REJECT("GET http://h:8443/ HTTP/1.1\r\nHost: h\r\n\r\n",
	    HTTP_ERR_HOST_MISMATCH, 400);
	REJECT("GET http://h/ HTTP/1.1\r\n\r\n", HTTP_ERR_HOST_MISSING, 400);
	REJECT("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
	    HTTP_ERR_TARGET, 400);
	REJECT("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET,
	    400);
	REJECT("GET http://h/a b HTTP/1.1\r\nHost: h\r\n\r\n",
	    HTTP_ERR_VERSION_SYNTAX, 400);
}

/* ---- H-11: methods (the parser's share) ------------------------------ */

static void
test_h11_methods(void **state)
{
	(void)state;
	static const char *const reqs[] = {
		"GET /soap/services/MSS_SignaturePort?wsdl HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS /soap HTTP/1.1\r\nHost: h\r\n\r\n",
		"PUT /soap HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
		"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n",
		"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n",
		"post / HTTP/1.1\r\nHost: h\r\n\r\n",
	};
	static const char *const methods[] = {
		"GET", "OPTIONS", "PUT", "TRACE", "DELETE", "post",
	};

	/* Parsed as they are (case-sensitive); 405/501 is the server's. */
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct http_parser *p = parse_ok_n(reqs[i], strlen(reqs[i]),
		    (int)i);

		assert_string_equal(http_parser_request(p)->rq_method,
		    methods[i]);
		http_parser_free(p);
	}
	REJECT("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_ERR_TARGET, 400);
	REJECT("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", HTTP_ERR_TARGET,
	    400);
}

/* H-13, for the record: the HTTP/2 prior-knowledge preface is refused. */
static void
test_h13_h2_preface_refused(void **state)
{
	(void)state;
	REJECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_ERR_VERSION, 505);
}

/* ---- state machine and API ------------------------------------------- */

static void
test_phases(void **state)
{
	struct http_parser *p = *state;
	size_t used;

	assert_int_equal(http_parser_phase(p), HTTP_PHASE_IDLE);
	assert_int_equal(http_parser_feed(p, LIT("P"), &used), HTTP_MORE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_HEAD);
	assert_null(http_parser_request(p));
	assert_int_equal(http_parser_feed(p, LIT("OST / HTTP/1.1\r\n"), &used),
	    HTTP_MORE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_HEAD);
	assert_int_equal(http_parser_feed(p, LIT("Host: h\r\n"
	    "Content-Length: 2\r\n\r\n"), &used), HTTP_MORE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_BODY);
	/* Without Expect the head is still readable while the body comes. */
	assert_non_null(http_parser_request(p));
	assert_null(http_parser_request(p)->rq_body);
	assert_int_equal(http_parser_feed(p, LIT("ab"), &used), HTTP_DONE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_READY);
	assert_int_equal(http_parser_next(p), 0);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_IDLE);
	assert_int_equal(http_parser_error(p), 0);
	assert_int_equal(http_parser_feed(p, LIT("\r\n"), &used), HTTP_MORE);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_HEAD);
	assert_int_equal(http_parser_feed(p, NULL, 0, &used), HTTP_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(http_parser_feed(p, LIT("\x01"), &used),
	    HTTP_MORE);
	assert_int_equal(http_parser_feed(p, LIT(" / HTTP/1.1\r\n"), &used),
	    HTTP_ERR_METHOD);
	assert_int_equal(http_parser_phase(p), HTTP_PHASE_ERROR);
}

static void
test_next_misuse(void **state)
{
	struct http_parser *p = *state;
	size_t used;

	assert_int_equal(http_parser_feed(p, LIT("GET / HTTP/1.1\r\n"), &used),
	    HTTP_MORE);
	assert_int_equal(http_parser_next(p), HTTP_ERR_STATE);
	assert_int_equal(http_err_status(HTTP_ERR_STATE), 500);
	assert_int_equal(http_parser_feed(p, LIT("Host: h\r\n\r\n"), &used),
	    HTTP_ERR_STATE);
}

/* State is fully reset between requests: no header of the first leaks into
 * the checks of the second. */
static void
test_reset_between_requests(void **state)
{
	struct http_parser *p = *state;
	static const char buf[] =
	    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
	    "Content-Type: text/xml\r\nExpect: 100-continue\r\n\r\nx"
	    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
	    "Content-Type: text/xml\r\n\r\nyz";
	size_t used, off;

	assert_int_equal(http_parser_feed(p, LIT(buf), &used), HTTP_CONTINUE);
	off = used;
	assert_int_equal(http_parser_feed(p, buf + off, sizeof(buf) - 1 - off,
	    &used), HTTP_DONE);
	off += used;
	assert_int_equal(http_parser_next(p), 0);
	assert_int_equal(http_parser_feed(p, buf + off, sizeof(buf) - 1 - off,
	    &used), HTTP_DONE);
	assert_false(http_parser_request(p)->rq_expect_continue);
	assert_int_equal(http_parser_request(p)->rq_nfields, 3);
	assert_memory_equal(http_parser_request(p)->rq_body, "yz", 2);
}

static void
test_error_table(void **state)
{
	(void)state;
	for (int e = -1; e >= HTTP_ERR_LAST; e--) {
		int st = http_err_status(e);
		const char *r = http_err_reason(e);

		assert_non_null(r);
		assert_true(strlen(r) > 0);
		assert_true(st == 0 || st == 400 || st == 413 || st == 414 ||
		    st == 417 || st == 431 || st == 500 || st == 501 ||
		    st == 505);
	}
	assert_int_equal(http_err_status(HTTP_ERR_HEAD_TOO_LARGE), 431);
	assert_int_equal(http_err_status(HTTP_ERR_TOO_MANY_FIELDS), 431);
	assert_int_equal(http_err_status(HTTP_ERR_LINE_TOO_LONG), 414);
	assert_int_equal(http_err_status(HTTP_ERR_TARGET_TOO_LONG), 414);
	assert_int_equal(http_err_status(HTTP_ERR_VERSION), 505);
	assert_int_equal(http_err_status(HTTP_ERR_TE_UNSUPPORTED), 501);
	assert_int_equal(http_err_status(HTTP_ERR_EXPECT), 417);
	assert_int_equal(http_err_status(HTTP_ERR_CL_AND_TE), 400);
	assert_int_equal(http_err_status(HTTP_ERR_LAST - 1), 500);
	assert_string_equal(http_err_reason(HTTP_ERR_LAST - 1), "unknown error");
	assert_string_equal(http_err_reason(7), "unknown error");
}

/* ---- media types ----------------------------------------------------- */

static void
test_media_type_clients(void **state)
{
	(void)state;
	struct http_media_type mt;

	assert_int_equal(http_media_type_parse("text/xml;charset=utf-8", &mt),
	    0);
	assert_string_equal(mt.mt_type, "text");
	assert_string_equal(mt.mt_subtype, "xml");
	assert_true(mt.mt_has_charset);
	assert_string_equal(mt.mt_charset, "utf-8");
	assert_false(mt.mt_has_action);

	assert_int_equal(http_media_type_parse(
	    "application/soap+xml; charset=UTF-8", &mt), 0);
	assert_string_equal(mt.mt_type, "application");
	assert_string_equal(mt.mt_subtype, "soap+xml");
	assert_string_equal(mt.mt_charset, "utf-8");
	assert_false(mt.mt_has_action);

	assert_int_equal(http_media_type_parse(
	    "application/soap+xml; charset=utf-8; action=\"\"", &mt), 0);
	assert_string_equal(mt.mt_subtype, "soap+xml");
	assert_string_equal(mt.mt_charset, "utf-8");
	assert_true(mt.mt_has_action);
	assert_string_equal(mt.mt_action, "");

	assert_int_equal(http_media_type_parse("application/json;charset=UTF-8",
	    &mt), 0);
	assert_string_equal(mt.mt_subtype, "json");
	assert_string_equal(mt.mt_charset, "utf-8");

	assert_int_equal(http_media_type_parse("application/json", &mt), 0);
	assert_string_equal(mt.mt_type, "application");
	assert_string_equal(mt.mt_subtype, "json");
	assert_false(mt.mt_has_charset);
	assert_string_equal(mt.mt_charset, "");
}

static void
test_media_type_params(void **state)
{
	(void)state;
	struct http_media_type mt;

	assert_int_equal(http_media_type_parse(
	    "Application/SOAP+XML;CHARSET=\"UTF-8\";Action="
	    "\"http://uri.etsi.org/TS102204/v1.1.2#MSS_Signature\"", &mt), 0);
	assert_string_equal(mt.mt_type, "application");
	assert_string_equal(mt.mt_subtype, "soap+xml");
	assert_string_equal(mt.mt_charset, "utf-8");
	assert_string_equal(mt.mt_action,
	    "http://uri.etsi.org/TS102204/v1.1.2#MSS_Signature");
	assert_int_equal(http_media_type_parse(
	    "multipart/related; type=\"application/xop+xml\"; boundary=x;"
	    " start=\"<root>\"; action=\"a\\\"b\"", &mt), 0);
	assert_string_equal(mt.mt_action, "a\"b");
	assert_false(mt.mt_has_charset);
	assert_int_equal(http_media_type_parse(" text/xml ;; charset=utf-8 ;",
	    &mt), 0);
	assert_string_equal(mt.mt_charset, "utf-8");
	assert_int_equal(http_media_type_parse("application/soap+xml;action=#x",
	    &mt), 0);
	assert_string_equal(mt.mt_action, "#x");
}

static void
test_media_type_reject(void **state)
{
	(void)state;
	struct http_media_type mt;
	struct sb b = { 0 };
	static const char *const bad[] = {
		"", "text", "text/", "/xml", "text /xml", "text/ xml",
		"text/xml charset=utf-8", "text/xml; charset",
		"text/xml; charset =utf-8", "text/xml; charset= utf-8",
		"text/xml; charset=utf-8; charset=utf-8",
		"text/xml; charset=\"\"", "text/xml; action=a; action=b",
		"text/xml; action=\"abc", "text/xml; action=\"a\\",
		"text/xml; charset=utf-8 junk", "text/xml;charset=utf\x01",
		"text/xml; a=\"\x01\"", "text/xml/x", "text/xml; =x",
		"text/xml; charset=utf-8,", "text(/xml",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (http_media_type_parse(bad[i], &mt) != HTTP_ERR_MEDIA_TYPE) {
			print_error("accepted: \"%s\"\n", bad[i]);
			fail();
		}
		assert_string_equal(mt.mt_type, "");
	}
	assert_int_equal(http_err_status(HTTP_ERR_MEDIA_TYPE), 400);

	/* Caps: type/subtype/charset < MSSP_HTTP_MAX_MEDIA_TOKEN, action <
	 * MSSP_HTTP_MAX_MEDIA_PARAM bytes. */
	sb_rep(&b, 't', MSSP_HTTP_MAX_MEDIA_TOKEN - 1);
	sb_add(&b, "/x");
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt), 0);
	sb_free(&b);
	sb_rep(&b, 't', MSSP_HTTP_MAX_MEDIA_TOKEN);
	sb_add(&b, "/x");
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt),
	    HTTP_ERR_MEDIA_TYPE);
	sb_free(&b);
	sb_add(&b, "a/b; charset=");
	sb_rep(&b, 'c', MSSP_HTTP_MAX_MEDIA_TOKEN);
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt),
	    HTTP_ERR_MEDIA_TYPE);
	sb_free(&b);
	sb_add(&b, "a/b; action=\"");
	sb_rep(&b, 'a', MSSP_HTTP_MAX_MEDIA_PARAM - 1);
	sb_add(&b, "\"");
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt), 0);
	assert_int_equal(strlen(mt.mt_action), MSSP_HTTP_MAX_MEDIA_PARAM - 1);
	sb_free(&b);
	sb_add(&b, "a/b; action=\"");
	sb_rep(&b, 'a', MSSP_HTTP_MAX_MEDIA_PARAM);
	sb_add(&b, "\"");
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt),
	    HTTP_ERR_MEDIA_TYPE);
	sb_free(&b);
	/* A long parameter the endpoint does not read is fine. */
	sb_add(&b, "a/b; boundary=");
	sb_rep(&b, 'b', 4 * MSSP_HTTP_MAX_MEDIA_PARAM);
	assert_int_equal(http_media_type_parse(b.sb_buf, &mt), 0);
	sb_free(&b);
}

int
main(void)
{
#define T(f) cmocka_unit_test(f)
#define TP(f) cmocka_unit_test_setup_teardown(f, setup_parser, teardown_parser)
	const struct CMUnitTest tests[] = {
		T(test_get_origin_form),
		T(test_post_content_length),
		T(test_post_chunked_laverca),
		T(test_chunked_ext_and_trailers_not_merged),
		T(test_every_split_point),
		TP(test_bytewise_content_length),
		TP(test_h09_pipeline_two),
		TP(test_h09_pipeline_three),
		TP(test_h09_pipeline_error_stops_later),
		TP(test_h09_no_request_after_close),
		T(test_keep_alive_rules),
		T(test_http10_request),
		T(test_post_without_length),
		TP(test_h12_expect_continue),
		TP(test_h12_expect_continue_chunked),
		TP(test_h12_expect_over_limit_413),
		T(test_h12_expect_variants),
		T(test_header_lookup_case_insensitive),
		T(test_content_type_duplicate),
		T(test_request_line_syntax),
		T(test_leading_empty_line),
		TP(test_crlf_after_body_between_requests),
		T(test_h01_request_line_too_long),
		T(test_h01_target_too_long),
		T(test_h01_head_too_large),
		T(test_h01_too_many_fields),
		TP(test_h02_content_length_over_limit),
		T(test_h02_one_line_body_at_limit),
		T(test_h02_chunked_sum_over_limit),
		T(test_custom_caps),
		T(test_h04_cl_and_te),
		T(test_h05_content_length_values),
		T(test_h06_te_obfuscation),
		T(test_h07_chunk_sizes),
		T(test_h07_chunk_extensions),
		T(test_h07_trailers),
		T(test_h08_field_syntax),
		T(test_h10_host),
		T(test_h10_absolute_form),
		T(test_h11_methods),
		T(test_h13_h2_preface_refused),
		TP(test_phases),
		TP(test_next_misuse),
		TP(test_reset_between_requests),
		T(test_error_table),
		T(test_media_type_clients),
		T(test_media_type_params),
		T(test_media_type_reject),
	};
#undef T
#undef TP

	return cmocka_run_group_tests(tests, NULL, NULL);
}
