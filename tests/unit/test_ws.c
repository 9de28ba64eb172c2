/*
 * test_ws.c - WebSocket framing (net/ws) without sockets: a client and a
 * server endpoint wired to each other in memory, plus hand-made frames for
 * what a conforming endpoint never sends (unmasked client frames, bad
 * UTF-8, oversized or malformed frames), and the opening-handshake helpers
 * against RFC 6455's own example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "net/http.h"
#include "net/ws.h"

/* One endpoint and what it did. */
struct end {
	struct ws *w;
	uint8_t *out;        /* bytes written to the "transport"          */
	size_t out_len, out_cap;
	unsigned nmsg;
	uint8_t *msg;        /* copy of the last message                  */
	size_t msg_len;
	bool msg_bin;
	unsigned nclosed;
	uint16_t code;
	bool fail_writes;    /* wi_write returns -1                       */
	bool free_on_msg;    /* ws_free from inside wi_message            */
	bool reply_on_msg;   /* echo from inside wi_message               */
	bool close_on_msg;   /* ws_close(4001) from inside wi_message     */
	const uint8_t *feed_on_msg; /* ws_feed these bytes from inside
				     * wi_message (once)                 */
	size_t feed_len;
	int feed_rc;         /* what that nested ws_feed returned         */
};

static int
e_write(void *arg, const uint8_t *d, size_t n)
{
	struct end *e = arg;

	if (e->fail_writes)
		return -1;
	if (e->out_len + n > e->out_cap) {
		size_t cap = (e->out_len + n) * 2 + 64;

		e->out = realloc(e->out, cap);
		assert_non_null(e->out);
		e->out_cap = cap;
	}
	memcpy(e->out + e->out_len, d, n);
	e->out_len += n;
	return 0;
}

static void
e_message(void *arg, const uint8_t *m, size_t n, bool binary)
{
	struct end *e = arg;

	e->nmsg++;
	free(e->msg);
	e->msg = malloc(n + 1);
	assert_non_null(e->msg);
	if (n > 0)
		memcpy(e->msg, m, n);
	e->msg[n] = 0;
	e->msg_len = n;
	e->msg_bin = binary;
	if (e->reply_on_msg)
		assert_int_equal(ws_send(e->w, m, n, binary), 0);
	if (e->close_on_msg)
		assert_int_equal(ws_close(e->w, 4001, "auth"), 0);
	if (e->feed_on_msg != NULL) {
		const uint8_t *d = e->feed_on_msg;

		e->feed_on_msg = NULL;
		e->feed_rc = ws_feed(e->w, d, e->feed_len);
	}
	if (e->free_on_msg) {
		ws_free(e->w);
		e->w = NULL;
	}
}

static void
e_closed(void *arg, uint16_t code)
{
	struct end *e = arg;

	e->nclosed++;
	e->code = code;
}

static const struct ws_io io = { e_write, e_message, e_closed };

static void
e_init(struct end *e, bool client, size_t max)
{
	memset(e, 0, sizeof(*e));
	e->w = ws_new(client, &io, e, max);
	assert_non_null(e->w);
}

static void
e_fini(struct end *e)
{
	ws_free(e->w);
	free(e->out);
	free(e->msg);
	memset(e, 0, sizeof(*e));
}

/* Take what `from` wrote. */
static uint8_t *
e_take(struct end *from, size_t *n)
{
	uint8_t *d = from->out;

	*n = from->out_len;
	from->out = NULL;
	from->out_len = from->out_cap = 0;
	return d;
}

/* Move bytes both ways until both are quiet. */
static void
pump(struct end *a, struct end *b)
{
	int rounds;

	for (rounds = 0; rounds < 100 && (a->out_len || b->out_len); rounds++) {
		size_t n;
		uint8_t *d;

		d = e_take(a, &n);
		if (n > 0 && b->w != NULL)
			(void)ws_feed(b->w, d, n);
		free(d);
		d = e_take(b, &n);
		if (n > 0 && a->w != NULL)
			(void)ws_feed(a->w, d, n);
		free(d);
	}
	assert_true(rounds < 100);
}

/* A frame as a client sends it, masked with an all-zero key (the payload
 * bytes then go out unchanged, which keeps the test readable). */
static size_t
client_frame(uint8_t *f, bool fin, uint8_t opcode, const void *p, size_t n)
{
	size_t h = 0;

	f[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (n < 126) {
		f[h++] = (uint8_t)(0x80 | n);
	} else {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(n >> 8);
		f[h++] = (uint8_t)n;
	}
	memset(f + h, 0, 4);
	h += 4;
	memcpy(f + h, p, n);
	return h + n;
}

/* Does `out` hold a close frame (unmasked, from the server) with `code`? */
static void
assert_server_close(const struct end *e, uint16_t code)
{
	assert_true(e->out_len >= 4);
	assert_int_equal(e->out[0], 0x88);
	assert_true((e->out[1] & 0x80) == 0);
	assert_int_equal((e->out[2] << 8) | e->out[3], code);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_roundtrip(void **state)
{
	static const size_t sizes[] = { 0, 1, 125, 126, 127, 4096, 65535,
	    65536, 200000 };
	struct end c, s;
	uint8_t *big = malloc(200000);
	size_t i, k;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < 200000; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	e_init(&c, true, 0);
	e_init(&s, false, 0);
	s.reply_on_msg = true;  /* the server echoes from its callback */
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		unsigned before = c.nmsg;

		assert_int_equal(ws_send(c.w, big, sizes[k], true), 0);
		/* client frames are masked (RFC 6455 §5.3) */
		assert_true(c.out_len > 0 && (c.out[1] & 0x80) != 0);
		pump(&c, &s);
		assert_int_equal(c.nmsg, before + 1);
		assert_int_equal(s.msg_len, sizes[k]);
		assert_int_equal(c.msg_len, sizes[k]);
		assert_true(c.msg_bin && s.msg_bin);
		assert_memory_equal(c.msg, big, sizes[k]);
	}
	/* text, and server frames are not masked */
	s.reply_on_msg = false;
	assert_int_equal(ws_send(s.w, (const uint8_t *)"h\xc3\xa9llo", 6,
	    false), 0);
	assert_true((s.out[1] & 0x80) == 0);
	pump(&c, &s);
	assert_false(c.msg_bin);
	assert_string_equal((char *)c.msg, "h\xc3\xa9llo");
	/* over the cap: refused, nothing queued */
	assert_int_equal(ws_send(c.w, big, 0, false), 0);
	pump(&c, &s);
	{
		uint8_t *huge = calloc(1, MSSP_WS_MAX_MESSAGE + 1);

		assert_non_null(huge);
		assert_int_equal(ws_send(c.w, huge, MSSP_WS_MAX_MESSAGE + 1,
		    true), -1);
		free(huge);
	}
	assert_int_equal(c.out_len, 0);
	assert_false(ws_closing(c.w));
	assert_int_equal(c.nclosed + s.nclosed, 0);
	e_fini(&c);
	e_fini(&s);
	free(big);
}

static void
test_fragmentation(void **state)
{
	struct end s;
	uint8_t f[4096];
	size_t n = 0, i;

	(void)state;
	e_init(&s, false, 0);
	/* "Hel" + ping (allowed between fragments) + "lo" */
	n += client_frame(f + n, false, 0x1, "Hel", 3);
	n += client_frame(f + n, true, 0x9, "pi", 2);
	n += client_frame(f + n, false, 0x0, "l", 1);
	n += client_frame(f + n, true, 0x0, "o", 1);
	/* one byte at a time: reassembly across every boundary */
	for (i = 0; i < n; i++)
		assert_int_equal(ws_feed(s.w, f + i, 1), 0);
	assert_int_equal(s.nmsg, 1);
	assert_string_equal((char *)s.msg, "Hello");
	assert_false(s.msg_bin);
	/* the ping was answered with a pong carrying its payload */
	assert_int_equal(s.out_len, 4);
	assert_int_equal(s.out[0], 0x8a);
	assert_int_equal(s.out[1], 2);
	assert_memory_equal(s.out + 2, "pi", 2);
	s.out_len = 0;
	/* UTF-8 split across fragments is fine: "é" = C3 A9 */
	n = client_frame(f, false, 0x1, "\xc3", 1);
	n += client_frame(f + n, true, 0x0, "\xa9", 1);
	assert_int_equal(ws_feed(s.w, f, n), 0);
	assert_int_equal(s.nmsg, 2);
	assert_string_equal((char *)s.msg, "\xc3\xa9");
	/* a continuation with no message started: 1002 */
	n = client_frame(f, true, 0x0, "x", 1);
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_int_equal(s.nclosed, 1);
	assert_int_equal(s.code, 1002);
	assert_server_close(&s, 1002);
	e_fini(&s);

	/* a new data message while one is unfinished: 1002 */
	e_init(&s, false, 0);
	n = client_frame(f, false, 0x2, "ab", 2);
	n += client_frame(f + n, true, 0x2, "cd", 2);
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_int_equal(s.nmsg, 0);
	assert_int_equal(s.code, 1002);
	e_fini(&s);
}

static void
test_ping_pong(void **state)
{
	struct end c, s;

	(void)state;
	e_init(&c, true, 0);
	e_init(&s, false, 0);
	assert_int_equal(ws_ping(c.w), 0);
	assert_true(c.out_len >= 6);
	assert_int_equal(c.out[0], 0x89);
	pump(&c, &s);
	/* the server answered; the pong is not a message for anyone */
	assert_int_equal(s.nmsg + c.nmsg, 0);
	assert_int_equal(ws_ping(s.w), 0);
	assert_int_equal(s.out[0], 0x89);
	pump(&c, &s);
	assert_int_equal(s.nmsg + c.nmsg, 0);
	assert_int_equal(c.nclosed + s.nclosed, 0);
	/* a ping with 126 bytes is malformed at the frame level: 1002 */
	{
		uint8_t f[200], p[126];
		size_t n;

		memset(p, 'p', sizeof(p));
		n = client_frame(f, true, 0x9, p, sizeof(p));
		assert_int_equal(ws_feed(s.w, f, n), -1);
		assert_int_equal(s.code, 1002);
		assert_server_close(&s, 1002);
	}
	/* the client then reads the server's 1002 */
	pump(&c, &s);
	assert_int_equal(c.nclosed, 1);
	assert_int_equal(c.code, 1002);
	e_fini(&c);
	e_fini(&s);
}

static void
test_masking_required(void **state)
{
	struct end s, c;
	/* an unmasked text frame "hi" */
	static const uint8_t plain[] = { 0x81, 0x02, 'h', 'i' };
	uint8_t f[64];
	size_t n;

	(void)state;
	e_init(&s, false, 0);
	assert_int_equal(ws_feed(s.w, plain, sizeof(plain)), -1);
	assert_int_equal(s.nmsg, 0);
	assert_int_equal(s.nclosed, 1);
	assert_int_equal(s.code, 1002);
	assert_server_close(&s, 1002);
	/* nothing more is read or sent */
	assert_int_equal(ws_feed(s.w, plain, sizeof(plain)), -1);
	assert_int_equal(ws_send(s.w, (const uint8_t *)"x", 1, false), -1);
	assert_int_equal(s.nclosed, 1);
	e_fini(&s);

	/* and a client refuses masked frames from a server */
	e_init(&c, true, 0);
	n = client_frame(f, true, 0x1, "hi", 2);
	assert_int_equal(ws_feed(c.w, f, n), -1);
	assert_int_equal(c.nmsg, 0);
	assert_int_equal(c.code, 1002);
	/* its close frame is masked */
	assert_true(c.out_len >= 8);
	assert_int_equal(c.out[0], 0x88);
	assert_int_equal(c.out[1], 0x82);
	e_fini(&c);
}

static void
test_oversize(void **state)
{
	struct end c, s;
	uint8_t *buf = calloc(1, 4096), f[1024];
	size_t n;

	(void)state;
	assert_non_null(buf);
	e_init(&c, true, 0);
	e_init(&s, false, 1000);
	assert_int_equal(ws_send(c.w, buf, 1000, true), 0);
	pump(&c, &s);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(ws_send(c.w, buf, 1001, true), 0);
	pump(&c, &s);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(s.nclosed, 1);
	assert_int_equal(s.code, 1009);
	assert_int_equal(c.nclosed, 1);
	assert_int_equal(c.code, 1009);
	e_fini(&c);
	e_fini(&s);

	/* fragments that add up to more than the cap: refused on the
	 * second fragment's header and first byte (wslay checks the
	 * announced length before it buffers the payload) */
	e_init(&s, false, 1000);
	n = client_frame(f, false, 0x2, buf, 600);
	assert_int_equal(ws_feed(s.w, f, n), 0);
	n = client_frame(f, true, 0x0, buf, 600);
	assert_int_equal(ws_feed(s.w, f, 9), -1);
	assert_int_equal(s.nmsg, 0);
	assert_int_equal(s.code, 1009);
	assert_server_close(&s, 1009);
	e_fini(&s);

	/* an announced 2^40-byte frame: refused at once, nothing allocated */
	e_init(&s, false, 0);
	{
		static const uint8_t hdr[] = { 0x82, 0xff, 0, 0, 1, 0, 0, 0, 0,
		    0, 0, 0, 0, 0, 'x' };

		assert_int_equal(ws_feed(s.w, hdr, sizeof(hdr)), -1);
		assert_int_equal(s.code, 1009);
	}
	e_fini(&s);
	free(buf);
}

static void
test_bad_utf8(void **state)
{
	struct end s, c;
	uint8_t f[64];
	size_t n;
	/* an unmasked server text frame with "\xc3\x28" */
	static const uint8_t bad[] = { 0x81, 0x02, 0xc3, 0x28 };

	(void)state;
	e_init(&s, false, 0);
	/* binary may hold anything */
	n = client_frame(f, true, 0x2, "\xc3\x28", 2);
	assert_int_equal(ws_feed(s.w, f, n), 0);
	assert_int_equal(s.nmsg, 1);
	/* text must be UTF-8: 1007 */
	n = client_frame(f, true, 0x1, "ok\xc3\x28", 4);
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(s.code, 1007);
	assert_server_close(&s, 1007);
	e_fini(&s);

	/* a truncated sequence at the end of the message: 1007 too */
	e_init(&s, false, 0);
	n = client_frame(f, true, 0x1, "ab\xe2\x82", 4);
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_int_equal(s.code, 1007);
	e_fini(&s);

	/* the client checks the server's text the same way */
	e_init(&c, true, 0);
	assert_int_equal(ws_feed(c.w, bad, sizeof(bad)), -1);
	assert_int_equal(c.nmsg, 0);
	assert_int_equal(c.code, 1007);
	e_fini(&c);
}

static void
test_close_handshake(void **state)
{
	struct end c, s;

	(void)state;
	/* client-initiated, with a reason */
	e_init(&c, true, 0);
	e_init(&s, false, 0);
	assert_int_equal(ws_close(c.w, 1000, "bye"), 0);
	assert_true(ws_closing(c.w));
	assert_int_equal(c.nclosed, 0);  /* waits for the answer */
	assert_int_equal(ws_send(c.w, (const uint8_t *)"x", 1, false), -1);
	assert_int_equal(ws_close(c.w, 1000, NULL), -1);
	pump(&c, &s);
	assert_int_equal(s.nclosed, 1);
	assert_int_equal(s.code, 1000);
	assert_int_equal(c.nclosed, 1);
	assert_int_equal(c.code, 1000);
	e_fini(&c);
	e_fini(&s);

	/* server-initiated with an application code, from inside its
	 * message callback; messages after the close are not delivered */
	e_init(&c, true, 0);
	e_init(&s, false, 0);
	s.close_on_msg = true;
	assert_int_equal(ws_send(c.w, (const uint8_t *)"a", 1, false), 0);
	assert_int_equal(ws_send(c.w, (const uint8_t *)"b", 1, false), 0);
	pump(&c, &s);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(s.nclosed, 1);
	assert_int_equal(s.code, 4001);
	assert_int_equal(c.nclosed, 1);
	assert_int_equal(c.code, 4001);
	e_fini(&c);
	e_fini(&s);

	/* bad arguments */
	e_init(&c, true, 0);
	{
		char reason[125];

		memset(reason, 'r', 124);
		reason[124] = 0;
		assert_int_equal(ws_close(c.w, 1005, NULL), -1);
		assert_int_equal(ws_close(c.w, 999, NULL), -1);
		assert_int_equal(ws_close(c.w, 1000, reason), -1);
		assert_false(ws_closing(c.w));
	}
	/* a close with an invalid code from the peer: 1002 */
	{
		static const uint8_t bad[] = { 0x88, 0x02, 0x03, 0xed }; /* 1005 */

		assert_int_equal(ws_feed(c.w, bad, sizeof(bad)), -1);
		assert_int_equal(c.code, 1002);
	}
	e_fini(&c);
}

static void
test_failures_and_free(void **state)
{
	struct end c, s;
	uint8_t f[64];
	size_t n;

	(void)state;
	/* transport write fails: -1 and wi_closed(1006) once */
	e_init(&c, true, 0);
	c.fail_writes = true;
	assert_int_equal(ws_send(c.w, (const uint8_t *)"x", 1, false), -1);
	assert_int_equal(c.nclosed, 1);
	assert_int_equal(c.code, 1006);
	assert_int_equal(ws_ping(c.w), -1);
	assert_int_equal(c.nclosed, 1);
	e_fini(&c);

	/* ws_free from inside wi_message, with more frames behind: no
	 * callback after it, no use after free (ASan run) */
	e_init(&s, false, 0);
	s.free_on_msg = true;
	n = client_frame(f, true, 0x1, "one", 3);
	n += client_frame(f + n, true, 0x1, "two", 3);
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_null(s.w);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(s.nclosed, 0);
	e_fini(&s);
	ws_free(NULL);
	assert_null(ws_new(false, NULL, NULL, 0));
}

/*
 * ws_feed from inside wi_message, when the outer ws_feed has handed all its
 * bytes to wslay (found by fuzz_ws): the nested call used to re-enter
 * wslay_event_recv() from its own message callback, which broke wslay's
 * input state (an assertion in wslay_queue_tail, a NULL dereference
 * without assertions).  It is refused now, reading nothing; the same bytes
 * fed afterwards give their message.
 */
static void
test_feed_from_callback(void **state)
{
	struct end s;
	uint8_t f[64], g[64];
	size_t n, m;

	(void)state;
	e_init(&s, false, 0);
	n = client_frame(f, true, 0x1, "one", 3);
	m = client_frame(g, true, 0x1, "two", 3);
	s.feed_on_msg = g;
	s.feed_len = m;
	s.feed_rc = 1;
	assert_int_equal(ws_feed(s.w, f, n), 0);
	assert_int_equal(s.feed_rc, -1);
	assert_int_equal(s.nmsg, 1);
	assert_string_equal((const char *)s.msg, "one");
	assert_int_equal(ws_feed(s.w, g, m), 0);
	assert_int_equal(s.nmsg, 2);
	assert_string_equal((const char *)s.msg, "two");
	assert_int_equal(s.nclosed, 0);
	assert_false(ws_closing(s.w));
	e_fini(&s);
}

/*
 * ws_free from inside wi_message, then a malformed frame header behind the
 * message in the same ws_feed (found by fuzz_ws): wslay goes on parsing,
 * and the 1002 close for the bad header used to be written through
 * wi_write after the free, i.e. to a caller that may have freed its
 * connection already.  Nothing is written now.
 */
static void
test_free_then_bad_frame(void **state)
{
	struct end s;
	uint8_t f[64];
	size_t n;

	(void)state;
	e_init(&s, false, 0);
	s.free_on_msg = true;
	n = client_frame(f, true, 0x1, "one", 3);
	n += client_frame(f + n, false, 0x9, "p", 1); /* fragmented ping */
	assert_int_equal(ws_feed(s.w, f, n), -1);
	assert_null(s.w);
	assert_int_equal(s.nmsg, 1);
	assert_int_equal(s.nclosed, 0);
	assert_int_equal(s.out_len, 0);
	e_fini(&s);
}

/* Parse one request with the real parser. */
static struct http_parser *
parse(const char *text, const struct http_request **rq)
{
	struct http_parser *p = http_parser_new(0, 0);
	size_t used;

	assert_non_null(p);
	assert_int_equal(http_parser_feed(p, text, strlen(text), &used),
	    HTTP_DONE);
	*rq = http_parser_request(p);
	assert_non_null(*rq);
	return p;
}

static void
test_handshake(void **state)
{
	/* RFC 6455 §1.3 and §4.2.2 example */
	static const char good[] =
	    "GET /app/v1/ws HTTP/1.1\r\nHost: server.example.com\r\n"
	    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	static const struct {
		const char *req;
		int status;
	} bad[] = {
		{ "POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		  "Content-Length: 0\r\n\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		  "\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: keep-alive\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		  "\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"
		  "\r\n", 426 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"
		  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25j!!==\r\n"
		  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
		{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
		  400 },
		{ "GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\nSec-WebSocket-Key: "
		  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		  "\r\n", 400 },
	};
	const struct http_request *rq;
	struct http_parser *p;
	char accept[WS_ACCEPT_LEN + 1], key[WS_CLIENT_KEY_LEN + 1],
	    key2[WS_CLIENT_KEY_LEN + 1];
	unsigned char raw[32];
	int status = 0;
	size_t i;

	(void)state;
	p = parse(good, &rq);
	assert_int_equal(ws_server_accept(rq, accept, &status), 0);
	assert_int_equal(status, 101);
	assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	http_parser_free(p);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = parse(bad[i].req, &rq);
		status = 0;
		assert_int_equal(ws_server_accept(rq, accept, &status), -1);
		assert_int_equal(status, bad[i].status);
		http_parser_free(p);
	}

	/* client side */
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    "websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), 0);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    "WebSocket", "upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), 0);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    "websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp="), -1);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 200,
	    "websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), -1);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    NULL, "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), -1);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    "websocket", "close", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), -1);
	assert_int_equal(ws_client_check("dGhlIHNhbXBsZSBub25jZQ==", 101,
	    "websocket", "Upgrade", NULL), -1);
	assert_int_equal(ws_client_key(key), 0);
	assert_int_equal(ws_client_key(key2), 0);
	assert_int_equal(strlen(key), WS_CLIENT_KEY_LEN);
	assert_string_not_equal(key, key2);
	assert_int_equal(EVP_DecodeBlock(raw, (unsigned char *)key,
	    WS_CLIENT_KEY_LEN), 18);
	assert_int_equal(key[22], '=');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fragmentation),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_masking_required),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_close_handshake),
		cmocka_unit_test(test_failures_and_free),
		cmocka_unit_test(test_feed_from_callback),
		cmocka_unit_test(test_free_then_bad_frame),
		cmocka_unit_test(test_handshake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
