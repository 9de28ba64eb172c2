/*
 * test_wsclient.c - WebSocket end to end on loopback: a real srv (TLS and
 * plain listeners, 2 workers) whose handler upgrades with srv_req_upgrade
 * and runs net/ws on the server side (an echo service with a few
 * commands), and net/wsclient connecting to it with a real TLS context.
 * Raw-socket clients cover the server's upgrade path where a conforming
 * client cannot go (bodies, bytes behind the request, silence, a peer that
 * does not read, srv_stop).
 *
 * Certificates (a P-256 CA and a server leaf for localhost / 127.0.0.1)
 * are made here with OpenSSL APIs, in a mkdtemp() directory (testtls.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/loop.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/ws.h"
#include "net/wsclient.h"

#include "testtls.h"

enum { L_TLS, L_PLAIN, L_COUNT };

static struct {
	char dir[256];
	struct srv *srv;
	uint16_t port[L_COUNT];
	SSL_CTX *cli_ctx;
	/* server side, counted on the worker threads */
	atomic_uint up_open, up_closed, up_refused, msgs;
	atomic_int badrs_rc;
} T;

/* ---- the server side: srv_req_upgrade + ws ----------------------------- */

struct sconn {
	struct srv_up *up;
	struct ws *ws;
};

static int
s_write(void *arg, const uint8_t *d, size_t n)
{
	struct sconn *sc = arg;

	return srv_up_write(sc->up, d, n);
}

static void
s_message(void *arg, const uint8_t *m, size_t n, bool binary)
{
	struct sconn *sc = arg;

	atomic_fetch_add(&T.msgs, 1);
	if (n == 8 && memcmp(m, "close-me", 8) == 0) {
		assert_int_equal(ws_close(sc->ws, 4001, "bye"), 0);
		return;
	}
	if (n == 5 && memcmp(m, "flood", 5) == 0) {
		/* a peer that does not read: 64 KiB at a time until the
		 * server's output cap refuses (1 MiB, well before the
		 * kernel's buffers see any of it) */
		static uint8_t chunk[65536];
		int i;

		for (i = 0; i < 100; i++)
			if (ws_send(sc->ws, chunk, sizeof(chunk), true) != 0)
				break;
		assert_true(i < 100);
		return;
	}
	(void)ws_send(sc->ws, m, n, binary);  /* echo */
}

static void
s_closed(void *arg, uint16_t code)
{
	struct sconn *sc = arg;

	(void)code;
	srv_up_close(sc->up);
}

static const struct ws_io s_io = { s_write, s_message, s_closed };

static void
up_data(struct srv_up *up, void *arg, const uint8_t *d, size_t n)
{
	struct sconn *sc = arg;

	(void)up;
	(void)ws_feed(sc->ws, d, n);
}

static void
up_closed(struct srv_up *up, void *arg)
{
	struct sconn *sc = arg;

	(void)up;
	ws_free(sc->ws);
	free(sc);
	atomic_fetch_add(&T.up_closed, 1);
}

static const struct srv_up_ops up_ops = { up_data, up_closed };

static void
reply_text(struct srv_req *req, int status, const char *t)
{
	assert_int_equal(srv_reply(req, status, "text/plain", t, strlen(t)),
	    0);
}

static void
handler(struct srv_req *req, void *arg)
{
	const char *path = srv_req_path(req);
	char accept[WS_ACCEPT_LEN + 1];
	struct srv_header h[2] = {
		{ "Upgrade", "websocket" },
		{ "Sec-WebSocket-Accept", accept },
	};
	struct srv_response rs = {
		.rs_status = 101, .rs_headers = h, .rs_nheaders = 2
	};
	unsigned idle = 0;
	struct sconn *sc;
	int status;

	(void)arg;
	if (strncmp(path, "/ws", 3) != 0) {
		reply_text(req, 404, "not found\n");
		return;
	}
	if (ws_server_accept(srv_req_http(req), accept, &status) != 0) {
		struct srv_header v = { "Sec-WebSocket-Version", "13" };
		struct srv_response r = {
			.rs_status = status, .rs_content_type = "text/plain",
			.rs_headers = &v, .rs_nheaders = status == 426,
			.rs_body = "no\n", .rs_body_len = 3
		};

		assert_int_equal(srv_reply_ex(req, &r), 0);
		return;
	}
	if (strcmp(path, "/ws-refuse") == 0) {
		reply_text(req, 403, "forbidden\n");
		return;
	}
	if (strcmp(path, "/ws-badaccept") == 0)
		accept[3] ^= 1;
	if (strcmp(path, "/ws-idle") == 0)
		idle = 2500; /* wide: sanitizer builds on a loaded CI runner
			      * stall a thread for most of a second */
	if (strcmp(path, "/ws-badrs") == 0) {
		/* the server owns Connection; 101 only; Upgrade required */
		struct srv_header bad[2] = {
			{ "Upgrade", "websocket" }, { "Connection", "Upgrade" }
		};
		struct srv_response r = rs;
		int n = 0;

		r.rs_headers = bad;
		n += srv_req_upgrade(req, &r, &up_ops, NULL, 0) == NULL;
		r.rs_headers = h;
		r.rs_status = 200;
		n += srv_req_upgrade(req, &r, &up_ops, NULL, 0) == NULL;
		r.rs_status = 101;
		r.rs_headers = h + 1;
		r.rs_nheaders = 1;
		n += srv_req_upgrade(req, &r, &up_ops, NULL, 0) == NULL;
		atomic_store(&T.badrs_rc, n);
	}
	sc = calloc(1, sizeof(*sc));
	assert_non_null(sc);
	sc->ws = ws_new(false, &s_io, sc, 0);
	assert_non_null(sc->ws);
	sc->up = srv_req_upgrade(req, &rs, &up_ops, sc, idle);
	if (sc->up == NULL) {
		ws_free(sc->ws);
		free(sc);
		atomic_fetch_add(&T.up_refused, 1);
		reply_text(req, 400, "cannot upgrade\n");
		return;
	}
	/* answered: a second answer is refused */
	assert_int_equal(srv_reply(req, 200, NULL, NULL, 0), -1);
	assert_true(srv_up_worker(sc->up) < 2);
	assert_string_equal(srv_up_peer_ip(sc->up), "127.0.0.1");
	atomic_fetch_add(&T.up_open, 1);
}

static struct srv *
start_server(uint16_t *ports)
{
	SSL_CTX *ctx = tt_server_ctx(T.dir, "server", NULL, NULL);
	struct srv_conf conf;
	struct net_err e;
	struct srv *s;

	memset(&conf, 0, sizeof(conf));
	conf.sc_workers = 2;
	conf.sc_nlisteners = L_COUNT;
	conf.sc_listeners[L_TLS] = (struct srv_listener_conf){
		.sl_name = "afe", .sl_addr = "127.0.0.1", .sl_tls = ctx,
		.sl_handler = handler
	};
	conf.sc_listeners[L_PLAIN] = (struct srv_listener_conf){
		.sl_name = "plain", .sl_addr = "127.0.0.1",
		.sl_handler = handler
	};
	s = srv_new(&conf, &e);
	SSL_CTX_free(ctx);
	if (s == NULL)
		fail_msg("srv_new: %s", e.ne_detail);
	if (srv_start(s, &e) != 0)
		fail_msg("srv_start: %s", e.ne_detail);
	ports[L_TLS] = srv_listener_port(s, L_TLS);
	ports[L_PLAIN] = srv_listener_port(s, L_PLAIN);
	return s;
}

static int
group_setup(void **state)
{
	(void)state;
	if (td_make(T.dir, sizeof(T.dir), "test_wsclient") != 0)
		return -1;
	tt_make_server_pki(T.dir, "WS Test CA");
	T.cli_ctx = tt_client_ctx(T.dir, "ca.pem", NULL, true);
	T.srv = start_server(T.port);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	srv_free(T.srv);
	SSL_CTX_free(T.cli_ctx);
	return td_remove(T.dir);
}

/* ---- the client side: wsclient on a base in this thread -------------- */

struct cli {
	struct event_base *base;
	struct wsc *c;
	bool opened;
	bool closed;
	const char *why;
	unsigned nmsg;
	uint8_t *last;
	size_t last_len;
	uint64_t closed_at;
	/* on_open sends these */
	const char *first;
	bool free_on_close;
};

static void
c_open(struct wsc *c, void *arg)
{
	struct cli *k = arg;

	k->opened = true;
	if (k->first != NULL)
		assert_int_equal(wsc_send(c, (const uint8_t *)k->first,
		    strlen(k->first)), 0);
}

static void
c_message(struct wsc *c, void *arg, const uint8_t *m, size_t n)
{
	struct cli *k = arg;

	(void)c;
	k->nmsg++;
	free(k->last);
	k->last = malloc(n + 1);
	assert_non_null(k->last);
	memcpy(k->last, m, n);
	k->last[n] = 0;
	k->last_len = n;
}

static void
c_closed(struct wsc *c, void *arg, const char *why)
{
	struct cli *k = arg;

	assert_false(k->closed);  /* once */
	k->closed = true;
	k->why = why;
	k->closed_at = loop_now_ms();
	if (k->free_on_close) {
		wsc_free(c);
		k->c = NULL;
	}
}

static const struct wsc_ops c_ops = { c_open, c_message, c_closed };

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the base until *flag or ms pass; returns *flag. */
static bool
run_until(struct cli *k, const bool *flag, unsigned ms)
{
	struct event *t = event_new(k->base, -1, EV_PERSIST, tick, NULL);
	struct timeval tv = { 0, 10000 };
	uint64_t end = loop_now_ms() + ms;

	event_add(t, &tv);
	while (!*flag && loop_now_ms() < end)
		event_base_loop(k->base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

static bool
run_until_n(struct cli *k, unsigned n, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;
	bool never = false;

	while (k->nmsg < n && !k->closed && loop_now_ms() < end)
		run_until(k, &never, 20);
	return k->nmsg >= n;
}

static void
cli_start(struct cli *k, uint16_t port, bool tls, const char *host,
    const char *path, unsigned timeout_ms)
{
	struct wsc_conf conf = {
		.wc_addr = "127.0.0.1", .wc_port = port, .wc_host = host,
		.wc_path = path, .wc_tls = tls ? T.cli_ctx : NULL,
		.wc_timeout_ms = timeout_ms
	};
	struct net_err e;

	memset(k, 0, sizeof(*k));
	k->base = event_base_new();
	assert_non_null(k->base);
	k->c = wsc_connect(k->base, &conf, &c_ops, k, &e);
	if (k->c == NULL)
		fail_msg("wsc_connect: %s", e.ne_detail);
}

static void
cli_done(struct cli *k)
{
	wsc_free(k->c);
	/* one pass for libevent's deferred frees */
	event_base_loop(k->base, EVLOOP_NONBLOCK);
	event_base_free(k->base);
	free(k->last);
	memset(k, 0, sizeof(*k));
}

static bool
wait_atomic(atomic_uint *v, unsigned want, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;

	while (atomic_load(v) < want && loop_now_ms() < end)
		usleep(2000);
	return atomic_load(v) >= want;
}

/* ---- tests: wsclient against the server -------------------------------- */

static void
test_echo_tls(void **state)
{
	struct cli k;
	struct srv_stats st0, st;
	unsigned closed0 = atomic_load(&T.up_closed);
	uint8_t *big;
	size_t sizes[] = { 1, 125, 126, 65536, 200000 }, i;

	(void)state;
	srv_get_stats(T.srv, &st0);
	cli_start(&k, T.port[L_TLS], true, "localhost", "/ws", 0);
	k.first = "hello";
	assert_true(run_until(&k, &k.opened, 5000));
	assert_true(run_until_n(&k, 1, 5000));
	assert_string_equal((char *)k.last, "hello");
	srv_get_stats(T.srv, &st);
	assert_int_equal(st.st_upgraded, st0.st_upgraded + 1);
	assert_int_equal(st.st_upgraded_open, st0.st_upgraded_open + 1);

	/* messages of several sizes, in order, intact */
	big = malloc(200000);
	assert_non_null(big);
	for (i = 0; i < 200000; i++)
		big[i] = (uint8_t)('a' + i % 26);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(wsc_send(k.c, big, sizes[i]), 0);
		assert_true(run_until_n(&k, 2 + (unsigned)i, 5000));
		assert_int_equal(k.last_len, sizes[i]);
		assert_memory_equal(k.last, big, sizes[i]);
	}
	/* 50 small ones back to back */
	for (i = 0; i < 50; i++) {
		char m[16];

		snprintf(m, sizeof(m), "m%zu", i);
		assert_int_equal(wsc_send(k.c, (uint8_t *)m, strlen(m)), 0);
	}
	assert_true(run_until_n(&k, 7 + 49, 5000));
	assert_string_equal((char *)k.last, "m49");
	free(big);

	/* client close: the handshake, then the server's TCP close */
	wsc_close(k.c);
	assert_false(k.closed);  /* never from inside wsc_close */
	assert_int_equal(wsc_send(k.c, (const uint8_t *)"x", 1), -1);
	assert_true(run_until(&k, &k.closed, 5000));
	assert_string_equal(k.why, "normal closure");
	assert_true(wait_atomic(&T.up_closed, closed0 + 1, 3000));
	srv_get_stats(T.srv, &st);
	assert_int_equal(st.st_upgraded_open, st0.st_upgraded_open);
	cli_done(&k);
}

static void
test_server_close(void **state)
{
	struct cli k;
	unsigned closed0 = atomic_load(&T.up_closed);

	(void)state;
	cli_start(&k, T.port[L_TLS], true, "localhost", "/ws", 0);
	k.first = "close-me";
	k.free_on_close = true;  /* wsc_free from on_closed */
	assert_true(run_until(&k, &k.closed, 5000));
	assert_true(k.opened);
	assert_int_equal(k.nmsg, 0);
	assert_string_equal(k.why, "authentication failed");  /* 4001 */
	assert_null(k.c);
	assert_true(wait_atomic(&T.up_closed, closed0 + 1, 3000));
	cli_done(&k);
}

static void
test_plain_and_refusals(void **state)
{
	struct cli k;
	struct net_err e;
	struct wsc_conf bad = {
		.wc_addr = "localhost", .wc_port = 1, .wc_host = "localhost",
		.wc_path = "/ws"
	};

	(void)state;
	/* plain works the same */
	cli_start(&k, T.port[L_PLAIN], false, "127.0.0.1", "/ws", 0);
	k.first = "plain";
	assert_true(run_until_n(&k, 1, 5000));
	assert_string_equal((char *)k.last, "plain");
	wsc_close(k.c);
	assert_true(run_until(&k, &k.closed, 5000));
	assert_string_equal(k.why, "normal closure");
	cli_done(&k);

	/* a wrong Sec-WebSocket-Accept is refused, never opened */
	cli_start(&k, T.port[L_TLS], true, "localhost", "/ws-badaccept", 0);
	assert_true(run_until(&k, &k.closed, 5000));
	assert_false(k.opened);
	assert_string_equal(k.why, "bad upgrade response");
	cli_done(&k);

	/* an HTTP answer instead of 101 */
	cli_start(&k, T.port[L_TLS], true, "localhost", "/ws-refuse", 0);
	assert_true(run_until(&k, &k.closed, 5000));
	assert_false(k.opened);
	assert_string_equal(k.why, "upgrade refused");
	cli_done(&k);

	/* the certificate does not name the host we asked for */
	cli_start(&k, T.port[L_TLS], true, "wrong.example", "/ws", 0);
	assert_true(run_until(&k, &k.closed, 5000));
	assert_false(k.opened);
	assert_string_equal(k.why, "TLS handshake failed");
	cli_done(&k);

	/* bad arguments fail at once */
	{
		struct event_base *b = event_base_new();

		assert_null(wsc_connect(b, &bad, &c_ops, NULL, &e));
		assert_true(strlen(e.ne_detail) > 0);
		bad.wc_addr = "127.0.0.1";
		bad.wc_path = "/ws\r\nX: y";
		assert_null(wsc_connect(b, &bad, &c_ops, NULL, &e));
		/* a TLS context that would not verify the server */
		bad.wc_path = "/ws";
		bad.wc_tls = SSL_CTX_new(TLS_client_method());
		assert_non_null(bad.wc_tls);
		assert_null(wsc_connect(b, &bad, &c_ops, NULL, &e));
		assert_non_null(strstr(e.ne_detail, "verify"));
		SSL_CTX_free(bad.wc_tls);
		event_base_free(b);
	}
}

static void
test_deadline(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct cli k;
	uint64_t t0;

	(void)state;
	/* a listener that never accepts: TCP connects (backlog), TLS never
	 * starts */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	t0 = loop_now_ms();
	cli_start(&k, ntohs(sa.sin_port), true, "localhost", "/ws", 300);
	assert_true(run_until(&k, &k.closed, 3000));
	assert_string_equal(k.why, "timeout");
	assert_true(k.closed_at - t0 >= 290);
	assert_true(k.closed_at - t0 < 1500);
	cli_done(&k);

	/* wsc_close before the upgrade: on_closed later, from the loop */
	cli_start(&k, ntohs(sa.sin_port), true, "localhost", "/ws", 5000);
	wsc_close(k.c);
	assert_false(k.closed);
	assert_true(run_until(&k, &k.closed, 1000));
	assert_string_equal(k.why, "closed before the upgrade");
	cli_done(&k);
	close(fd);
}

/* ---- tests: the server's upgrade path with raw sockets ----------------- */

static void
raw_send(int fd, const void *d, size_t n)
{
	assert_int_equal(send(fd, d, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read a response head; its status, the head in buf. */
static int
raw_head(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = recv(fd, buf + n, 1, 0);

		if (r <= 0)
			return -1;
		n++;
		buf[n] = 0;
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return (int)strtol(buf + 9, NULL, 10);
	}
	return -1;
}

static const char upgrade_req[] =
    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: %s\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n%s\r\n";

/* A masked (zero key) client frame. */
static size_t
frame(uint8_t *f, uint8_t opcode, const char *p)
{
	size_t n = strlen(p);

	f[0] = (uint8_t)(0x80 | opcode);
	f[1] = (uint8_t)(0x80 | n);
	memset(f + 2, 0, 4);
	memcpy(f + 6, p, n);
	return 6 + n;
}

/* EOF (or reset) within ms? */
static bool
raw_eof(int fd, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;
	char b[4096];

	while (loop_now_ms() < end) {
		ssize_t r = recv(fd, b, sizeof(b), 0);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
	return false;
}

static void
test_upgrade_raw(void **state)
{
	char req[1024], head[4096];
	uint8_t f[64], got[16];
	size_t n;
	int fd, i;
	unsigned closed0, refused0 = atomic_load(&T.up_refused);

	(void)state;
	/* frames sent right behind the request are delivered after the
	 * hand-over: ping then text, in one write with the request */
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws", "Upgrade",
	    "");
	n += frame((uint8_t *)req + n, 0x9, "");
	n += frame((uint8_t *)req + n, 0x1, "early");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 101);
	assert_non_null(strstr(head, "\r\nConnection: Upgrade\r\n"));
	assert_non_null(strstr(head, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strstr(head,
	    "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_null(strstr(head, "Content-Length"));
	/* pong (8A 00), then the echo (81 05 early) */
	assert_int_equal(recv(fd, got, 2, MSG_WAITALL), 2);
	assert_int_equal(got[0], 0x8a);
	assert_int_equal(got[1], 0);
	assert_int_equal(recv(fd, got, 7, MSG_WAITALL), 7);
	assert_memory_equal(got, "\x81\x05" "early", 7);
	/* the peer just goes: uo_closed */
	closed0 = atomic_load(&T.up_closed);
	close(fd);
	assert_true(wait_atomic(&T.up_closed, closed0 + 1, 3000));

	/* a body, or Connection: close: srv_req_upgrade refuses, the
	 * handler answers */
	for (i = 0; i < 2; i++) {
		fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
		n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws",
		    i == 0 ? "Upgrade" : "Upgrade, close",
		    i == 0 ? "Content-Length: 5\r\n" : "");
		if (i == 0)
			n += (size_t)snprintf(req + n, sizeof(req) - n, "hello");
		raw_send(fd, req, n);
		assert_int_equal(raw_head(fd, head, sizeof(head)), 400);
		close(fd);
	}
	assert_int_equal(atomic_load(&T.up_refused), refused0 + 2);

	/* the response checks: Connection reserved, 101 only, Upgrade
	 * required; then a good one goes through */
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws-badrs",
	    "Upgrade", "");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 101);
	assert_int_equal(atomic_load(&T.badrs_rc), 3);
	close(fd);

	/* version 8: 426 with the version we speak */
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	n = (size_t)snprintf(req, sizeof(req),
	    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 426);
	assert_non_null(strstr(head, "Sec-WebSocket-Version: 13"));
	close(fd);

	/* an unmasked frame: the server's ws answers 1002 and the server
	 * closes */
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws", "Upgrade",
	    "");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 101);
	raw_send(fd, "\x81\x02hi", 4);
	assert_int_equal(recv(fd, got, 4, MSG_WAITALL), 4);
	assert_memory_equal(got, "\x88\x02\x03\xea", 4);
	assert_true(raw_eof(fd, 3000));
	close(fd);
	(void)f;
}

static void
test_upgrade_idle_and_cap(void **state)
{
	char req[1024], head[4096];
	uint8_t f[64];
	size_t n;
	int fd, sz = 4096;
	uint64_t t0;
	unsigned closed0;
	struct srv_stats st0, st;

	(void)state;
	/* idle deadline: 2.5 s of silence closes it */
	srv_get_stats(T.srv, &st0);
	closed0 = atomic_load(&T.up_closed);
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws-idle",
	    "Upgrade", "");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 101);
	/* a byte now and then keeps it open (the deadline moves) */
	t0 = loop_now_ms();
	n = frame(f, 0x9, "");
	/* 6 x 500 ms = 3 s in all, longer than the 2.5 s deadline: only a
	 * deadline that moves with every byte keeps the connection open */
	for (int i = 0; i < 6; i++) {
		uint8_t pong[2];

		usleep(500 * 1000);
		raw_send(fd, f, n);
		/* still open: each ping is answered on this connection (the
		 * global close counter could still move for an earlier test's
		 * connection, so it is not the witness here) */
		assert_int_equal(recv(fd, pong, 2, MSG_WAITALL), 2);
		assert_int_equal(pong[0], 0x8a);
		assert_int_equal(pong[1], 0);
	}
	t0 = loop_now_ms();
	assert_true(raw_eof(fd, 6000));
	assert_true(loop_now_ms() - t0 < 5000);
	assert_true(wait_atomic(&T.up_closed, closed0 + 1, 3000));
	close(fd);
	srv_get_stats(T.srv, &st);
	assert_true(st.st_timeouts_idle > st0.st_timeouts_idle);

	/* a peer that does not read: the output cap closes it */
	closed0 = atomic_load(&T.up_closed);
	fd = tt_tcp_connect(T.port[L_PLAIN], NULL);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws", "Upgrade",
	    "");
	raw_send(fd, req, n);
	assert_int_equal(raw_head(fd, head, sizeof(head)), 101);
	n = frame(f, 0x1, "flood");
	raw_send(fd, f, n);
	assert_true(wait_atomic(&T.up_closed, closed0 + 1, 3000));
	close(fd);
}

static void
test_stop_closes_upgraded(void **state)
{
	uint16_t ports[L_COUNT];
	struct srv *s = start_server(ports);
	char req[1024], head[4096];
	unsigned closed0 = atomic_load(&T.up_closed);
	struct srv_stats st;
	size_t n;
	int fd[3], i;

	(void)state;
	for (i = 0; i < 3; i++) {
		fd[i] = tt_tcp_connect(ports[L_PLAIN], NULL);
		n = (size_t)snprintf(req, sizeof(req), upgrade_req, "/ws",
		    "Upgrade", "");
		raw_send(fd[i], req, n);
		assert_int_equal(raw_head(fd[i], head, sizeof(head)), 101);
	}
	srv_get_stats(s, &st);
	assert_int_equal(st.st_upgraded_open, 3);
	assert_int_equal(st.st_conns_open, 3);
	srv_stop(s);
	assert_int_equal(atomic_load(&T.up_closed), closed0 + 3);
	for (i = 0; i < 3; i++) {
		assert_true(raw_eof(fd[i], 2000));
		close(fd[i]);
	}
	srv_get_stats(s, &st);
	assert_int_equal(st.st_upgraded_open, 0);
	srv_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_tls),
		cmocka_unit_test(test_server_close),
		cmocka_unit_test(test_plain_and_refusals),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_upgrade_raw),
		cmocka_unit_test(test_upgrade_idle_and_cap),
		cmocka_unit_test(test_stop_closes_upgraded),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
