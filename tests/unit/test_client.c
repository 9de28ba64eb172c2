/*
 * test_client.c - the outbound HTTPS client (net/client) against the real
 * server (net/server) on loopback, driven from a real loop (net/loop).
 *
 * One server runs for the whole group with a mutual-TLS listener, a plain
 * one, and a TLS listener whose certificate names another host.  Its
 * handler echoes, answers 500 or 302, parks (a slow peer), or sends a body
 * over the client's cap.  A tiny raw-socket peer sends a chunked body over
 * the cap (our server always sends Content-Length).  All certificates are
 * made here, in a mkdtemp() directory, with OpenSSL APIs (testtls.h); no
 * key is committed.
 *
 * The client's functions run on the loop thread (loop_call) and its done
 * callbacks record into struct res there; the cmocka thread only waits and
 * asserts (never assert on the loop thread: cmocka longjmps).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/client.h"
#include "net/loop.h"
#include "net/server.h"
#include "net/tls.h"
#include "util/limits.h"

#include "testtls.h"

#define CT_SOAP "application/soap+xml; charset=utf-8"
#define DELAY_PARK_MS 3000

enum { L_MTLS, L_PLAIN, L_WRONGNAME, L_COUNT };

/* ---- shared state ------------------------------------------------------ */

struct tstate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char dir[256];
	struct srv *srv;
	struct loop *loop;
	uint16_t port[L_COUNT];
	unsigned hits;            /* handler calls, all paths            */
	unsigned echo_hits;
	unsigned parked;          /* /delay requests parked               */
	char last_ct[256];
	char last_sa[256];        /* "(none)" when absent                 */
	unsigned ndone;           /* done callbacks, every request        */
};

static struct tstate T;

static void
path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", T.dir, name);
}

/* ---- the server's handler (worker threads) ----------------------------- */

static void
copy_header(struct srv_req *req, const char *name, char *out, size_t cap)
{
	const char *v = srv_req_header(req, name);

	snprintf(out, cap, "%s", v != NULL ? v : "(none)");
}

static void
test_handler(struct srv_req *req, void *arg)
{
	const char *path = srv_req_path(req);
	const uint8_t *body;
	size_t n;

	(void)arg;
	pthread_mutex_lock(&T.mu);
	T.hits++;
	pthread_mutex_unlock(&T.mu);
	if (strcmp(path, "/echo") == 0) {
		pthread_mutex_lock(&T.mu);
		T.echo_hits++;
		copy_header(req, "Content-Type", T.last_ct, sizeof(T.last_ct));
		copy_header(req, "SOAPAction", T.last_sa, sizeof(T.last_sa));
		pthread_mutex_unlock(&T.mu);
		body = srv_req_body(req, &n);
		srv_reply(req, 200, "application/octet-stream", body, n);
		return;
	}
	if (strcmp(path, "/status500") == 0) {
		srv_reply(req, 500, "text/plain", "boom\n", 5);
		return;
	}
	if (strcmp(path, "/redirect") == 0) {
		struct srv_header h = { "Location", "/echo" };
		struct srv_response rs = {
			.rs_status = 302, .rs_content_type = "text/plain",
			.rs_headers = &h, .rs_nheaders = 1,
			.rs_body = "moved\n", .rs_body_len = 6
		};

		srv_reply_ex(req, &rs);
		return;
	}
	if (strcmp(path, "/delay") == 0) {
		/* a slow peer: answered by the cancel callback at the park
		 * deadline, unless the client has gone by then */
		if (srv_req_park(req, DELAY_PARK_MS) != 0) {
			srv_reply(req, 503, "text/plain", "busy\n", 5);
			return;
		}
		pthread_mutex_lock(&T.mu);
		T.parked++;
		pthread_cond_broadcast(&T.cv);
		pthread_mutex_unlock(&T.mu);
		return;
	}
	if (strcmp(path, "/big") == 0 || strcmp(path, "/exact") == 0) {
		size_t len = MSSP_HTTPC_MAX_RESPONSE + (path[1] == 'b');
		char *p = malloc(len);

		if (p == NULL) {
			srv_reply(req, 500, NULL, NULL, 0);
			return;
		}
		memset(p, path[1], len);
		srv_reply(req, 200, "application/octet-stream", p, len);
		free(p);
		return;
	}
	srv_reply(req, 404, "text/plain", "not found\n", 10);
}

static void
test_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	(void)arg;
	if (why == SRV_CANCEL_DEADLINE)
		srv_reply(req, 200, "text/plain", "late\n", 5);
}

/* ---- certificates (testtls.h) ----------------------------------------- */

/* a valid server certificate for another host (hostname check) */
static const struct tt_ext other_host_ext[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "serverAuth" },
	{ NID_subject_alt_name, "DNS:ap.example.org" },
	{ NID_authority_key_identifier, "keyid:always" },
};

/* A leaf valid 30 days: "<name>.pem" and "<name>.key". */
static void
make_leaf(const char *name, X509 *ca, EVP_PKEY *cakey,
    const struct tt_ext *ext, size_t next)
{
	X509_free(tt_make_leaf(T.dir, name, ca, cakey, ext, next, -TT_DAY,
	    30 * TT_DAY));
}

static void
make_pki(void)
{
	EVP_PKEY *cakey, *ca2key;
	X509 *ca = tt_make_ca(T.dir, "ca.pem", "Test CA", &cakey);
	X509 *ca2 = tt_make_ca(T.dir, "ca2.pem", "Untrusted CA", &ca2key);

	make_leaf("server", ca, cakey, tt_server_ext, TT_NEXT(tt_server_ext));
	make_leaf("otherhost", ca, cakey, other_host_ext,
	    TT_NEXT(other_host_ext));
	make_leaf("client", ca, cakey, tt_client_ext, TT_NEXT(tt_client_ext));
	make_leaf("rogue", ca2, ca2key, tt_client_ext, TT_NEXT(tt_client_ext));
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(ca2key);
}

/* ---- running things on the loop thread -------------------------------- */

struct sync {
	loop_fn fn;
	void *arg;
	bool done;
};

static void
sync_tramp(void *p)
{
	struct sync *s = p;

	s->fn(s->arg);
	pthread_mutex_lock(&T.mu);
	s->done = true;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

/* Run fn(arg) on the loop thread and wait for it to return. */
static void
on_loop(loop_fn fn, void *arg)
{
	struct sync s = { fn, arg, false };

	assert_int_equal(loop_call(T.loop, sync_tramp, &s), 0);
	pthread_mutex_lock(&T.mu);
	while (!s.done)
		pthread_cond_wait(&T.cv, &T.mu);
	pthread_mutex_unlock(&T.mu);
}

/* One request's outcome, written by done on the loop thread. */
struct res {
	unsigned ncalls;
	int status;
	const char *err;
	uint8_t *body;
	size_t len;
	bool nul_ok;              /* body[len] == 0                      */
	bool body_null;
	bool on_loop;
	uint64_t at_ms;
	/* optional follow-up, run on the loop thread inside done */
	struct httpc *c;
	unsigned chain;           /* post this many more, one after another */
	const char *chain_url;
	int chain_rc;
	bool free_in_done;        /* httpc_free(c) from inside done       */
};

static void
done_cb(void *arg, int status, const uint8_t *body, size_t len,
    const char *err);

static int
post_raw(struct httpc *c, const char *url, const char *sa, const void *body,
    size_t len, unsigned timeout_ms, struct res *r)
{
	struct httpc_req rq = {
		.hr_url = url, .hr_content_type = CT_SOAP,
		.hr_soap_action = sa, .hr_body = body, .hr_body_len = len,
		.hr_timeout_ms = timeout_ms
	};

	return httpc_post(c, &rq, done_cb, r);
}

static void
done_cb(void *arg, int status, const uint8_t *body, size_t len,
    const char *err)
{
	struct res *r = arg;

	pthread_mutex_lock(&T.mu);
	r->ncalls++;
	r->status = status;
	r->err = err;
	r->len = len;
	r->body_null = body == NULL;
	r->nul_ok = body != NULL && body[len] == '\0';
	free(r->body);
	r->body = NULL;
	if (body != NULL) {
		r->body = malloc(len + 1);
		if (r->body != NULL)
			memcpy(r->body, body, len + 1);
	}
	r->on_loop = loop_in_thread(T.loop);
	r->at_ms = loop_now_ms();
	T.ndone++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
	if (r->chain > 0) {
		r->chain--;
		r->chain_rc |= post_raw(r->c, r->chain_url, NULL, "again", 5, 0,
		    r);
	}
	if (r->free_in_done)
		httpc_free(r->c);
}

struct mk {
	struct httpc_tls tls;
	struct httpc *c;
};

static void
mk_on_loop(void *p)
{
	struct mk *m = p;

	m->c = httpc_new(T.loop, &m->tls);
}

static struct httpc *
client_new(const char *cert, const char *ca, bool plain)
{
	char c[512], k[512], a[512], f[64];
	struct mk m;

	memset(&m, 0, sizeof(m));
	if (cert != NULL) {
		snprintf(f, sizeof(f), "%s.pem", cert);
		path_of(c, sizeof(c), f);
		snprintf(f, sizeof(f), "%s.key", cert);
		path_of(k, sizeof(k), f);
		m.tls.ht_cert_file = c;
		m.tls.ht_key_file = k;
	}
	if (ca != NULL) {
		path_of(a, sizeof(a), ca);
		m.tls.ht_ca_file = a;
	}
	m.tls.ht_allow_plain = plain;
	on_loop(mk_on_loop, &m);
	return m.c;
}

static void
free_on_loop(void *p)
{
	httpc_free(p);
}

struct post {
	struct httpc *c;
	const char *url;
	const char *sa;
	const char *ct;
	const void *body;
	size_t len;
	unsigned timeout_ms;
	struct res *r;
	int rc;
	size_t inflight;
};

static void
post_on_loop(void *p)
{
	struct post *q = p;
	struct httpc_req rq = {
		.hr_url = q->url, .hr_content_type = q->ct,
		.hr_soap_action = q->sa, .hr_body = q->body,
		.hr_body_len = q->len, .hr_timeout_ms = q->timeout_ms
	};

	q->rc = httpc_post(q->c, &rq, done_cb, q->r);
	q->inflight = httpc_inflight(q->c);
}

static int
post(struct httpc *c, const char *url, const char *sa, const void *body,
    size_t len, unsigned timeout_ms, struct res *r)
{
	struct post q = {
		.c = c, .url = url, .sa = sa, .ct = CT_SOAP, .body = body,
		.len = len, .timeout_ms = timeout_ms, .r = r
	};

	on_loop(post_on_loop, &q);
	return q.rc;
}

static bool
wait_res(struct res *r, unsigned n, unsigned timeout_ms)
{
	uint64_t end = loop_now_ms() + timeout_ms;
	struct timespec ts;
	bool ok;

	pthread_mutex_lock(&T.mu);
	while (r->ncalls < n && loop_now_ms() < end) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&T.cv, &T.mu, &ts);
	}
	ok = r->ncalls >= n;
	pthread_mutex_unlock(&T.mu);
	return ok;
}

static unsigned
ncalls(struct res *r)
{
	unsigned n;

	pthread_mutex_lock(&T.mu);
	n = r->ncalls;
	pthread_mutex_unlock(&T.mu);
	return n;
}

static void
res_clear(struct res *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static unsigned
counter(const unsigned *p)
{
	unsigned v;

	pthread_mutex_lock(&T.mu);
	v = *p;
	pthread_mutex_unlock(&T.mu);
	return v;
}

static void
url_of(char *out, size_t cap, const char *scheme, const char *host,
    unsigned li, const char *path)
{
	snprintf(out, cap, "%s://%s:%u%s", scheme, host, T.port[li], path);
}

/* ---- the tests ---------------------------------------------------------- */

static void
test_post_ok(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	static const char doc[] = "<env:Envelope>hello</env:Envelope>";
	struct res r = { 0 };
	char url[256], *big;
	unsigned before;

	(void)state;
	assert_non_null(c);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/echo");
	assert_int_equal(post(c, url, "urn:x", doc, strlen(doc), 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	assert_null(r.err);
	assert_true(r.on_loop);
	assert_true(r.nul_ok);
	assert_int_equal(r.len, strlen(doc));
	assert_memory_equal(r.body, doc, r.len);
	pthread_mutex_lock(&T.mu);
	assert_string_equal(T.last_ct, CT_SOAP);
	assert_string_equal(T.last_sa, "\"urn:x\"");
	pthread_mutex_unlock(&T.mu);

	/* a SOAPAction given with its quotes is sent as it is; none: none */
	res_clear(&r);
	assert_int_equal(post(c, url, "\"#MSS_Signature\"", doc, strlen(doc), 0,
	    &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	pthread_mutex_lock(&T.mu);
	assert_string_equal(T.last_sa, "\"#MSS_Signature\"");
	pthread_mutex_unlock(&T.mu);
	res_clear(&r);
	url_of(url, sizeof(url), "https", "localhost", L_MTLS, "/echo");
	assert_int_equal(post(c, url, NULL, NULL, 0, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	assert_false(r.body_null);   /* "" even when empty */
	assert_true(r.nul_ok);
	pthread_mutex_lock(&T.mu);
	assert_string_equal(T.last_sa, "(none)");
	pthread_mutex_unlock(&T.mu);

	/* a body far over 1 KiB: copied at post time, echoed intact (and no
	 * 100-continue pause: well under the park-free 1 s) */
	big = malloc(60000);
	assert_non_null(big);
	for (size_t i = 0; i < 60000; i++)
		big[i] = (char)('a' + i % 26);
	res_clear(&r);
	before = counter(&T.echo_hits);
	{
		uint64_t t0 = loop_now_ms();

		assert_int_equal(post(c, url, NULL, big, 60000, 0, &r), 0);
		memset(big, 'X', 60000);   /* the client holds its own copy */
		assert_true(wait_res(&r, 1, 5000));
		assert_true(loop_now_ms() - t0 < 900);
	}
	for (size_t i = 0; i < 60000; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 60000);
	assert_memory_equal(r.body, big, 60000);
	assert_int_equal(counter(&T.echo_hits), before + 1);
	free(big);
	assert_int_equal(ncalls(&r), 1);
	on_loop(free_on_loop, c);
	assert_int_equal(ncalls(&r), 1);
	res_clear(&r);
}

static void
test_status_passthrough(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct res r = { 0 };
	char url[256];
	unsigned echo;

	(void)state;
	assert_non_null(c);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/status500");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 500);
	assert_null(r.err);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.body, "boom\n", 5);

	/* a redirect is handed back, never followed */
	echo = counter(&T.echo_hits);
	res_clear(&r);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/redirect");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 302);
	assert_memory_equal(r.body, "moved\n", 6);
	usleep(100000);
	assert_int_equal(counter(&T.echo_hits), echo);

	res_clear(&r);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/nothere");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 404);
	on_loop(free_on_loop, c);
	res_clear(&r);
}

/* One POST through c (created by client_new) that the TLS layer must
 * refuse: no status, error "tls", no body.  Frees c. */
static void
post_refused_tls(struct httpc *c, const char *url)
{
	struct res r = { 0 };

	assert_non_null(c);
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "tls");
	assert_true(r.body_null);
	on_loop(free_on_loop, c);
	res_clear(&r);
}

static void
test_tls_refusals(void **state)
{
	char url[256];
	unsigned hits = counter(&T.hits);

	(void)state;
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/echo");
	/* the server's certificate is not from a CA we trust */
	post_refused_tls(client_new("client", "ca2.pem", false), url);

	/* trusted CA, but the certificate names another host */
	url_of(url, sizeof(url), "https", "127.0.0.1", L_WRONGNAME, "/echo");
	post_refused_tls(client_new("client", "ca.pem", false), url);

	/* no client certificate: the mutual-TLS listener refuses us (in TLS
	 * 1.3 the alert arrives after the handshake, on the first read, and
	 * is still reported as "tls") */
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/echo");
	post_refused_tls(client_new(NULL, "ca.pem", false), url);

	/* a client certificate from a CA the server does not trust */
	post_refused_tls(client_new("rogue", "ca.pem", false), url);

	/* none of them reached a handler */
	assert_int_equal(counter(&T.hits), hits);

	/* configuration errors are caught at creation */
	assert_null(client_new("nonexistent", "ca.pem", false));
	assert_null(client_new(NULL, "nonexistent.pem", false));
	{
		struct mk m;
		char k[512];

		memset(&m, 0, sizeof(m));
		path_of(k, sizeof(k), "client.key");
		m.tls.ht_key_file = k;   /* a key without its certificate */
		on_loop(mk_on_loop, &m);
		assert_null(m.c);
	}
}

/* The server certificate pin: checked in the handshake, so a server with
 * a valid chain but another certificate never sees the request. */
static struct httpc *
client_pinned(const uint8_t (*pins)[32], size_t npins)
{
	char c[512], k[512], a[512];
	struct mk m;

	memset(&m, 0, sizeof(m));
	path_of(c, sizeof(c), "client.pem");
	path_of(k, sizeof(k), "client.key");
	path_of(a, sizeof(a), "ca.pem");
	m.tls.ht_cert_file = c;
	m.tls.ht_key_file = k;
	m.tls.ht_ca_file = a;
	m.tls.ht_pin_sha256 = pins;
	m.tls.ht_npins = npins;
	on_loop(mk_on_loop, &m);
	return m.c;
}

static void
test_pinned_server(void **state)
{
	char url[256], pem[512];
	uint8_t pins[2][32];
	unsigned fl = 0, hits;
	struct res r = { 0 };
	FILE *f;
	X509 *x;

	(void)state;
	path_of(pem, sizeof(pem), "server.pem");
	f = fopen(pem, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	memset(pins, 0x5a, sizeof(pins));
	assert_int_equal(X509_digest(x, EVP_sha256(), pins[1], &fl), 1);
	X509_free(x);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/echo");

	/* only a wrong pin: refused in the handshake, the handler never runs */
	hits = counter(&T.hits);
	post_refused_tls(client_pinned(pins, 1), url);
	assert_int_equal(counter(&T.hits), hits);

	/* the right one among others: the request goes through */
	struct httpc *c = client_pinned(pins, 2);
	assert_non_null(c);
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	on_loop(free_on_loop, c);
	res_clear(&r);

	/* more pins than the cap: refused at creation */
	uint8_t many[HTTPC_MAX_PINS + 1][32];
	memset(many, 0, sizeof(many));
	assert_null(client_pinned(many, HTTPC_MAX_PINS + 1));
}

static void
test_timeout(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct res r = { 0 };
	char url[256];
	uint64_t t0, dt;

	(void)state;
	assert_non_null(c);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/delay");
	t0 = loop_now_ms();
	assert_int_equal(post(c, url, NULL, "x", 1, 300, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	dt = r.at_ms - t0;
	print_message("  timed out after %llu ms\n", (unsigned long long)dt);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "timeout");
	assert_true(dt >= 250 && dt < 2000);
	assert_int_equal(httpc_inflight(c), 0);
	on_loop(free_on_loop, c);
	assert_int_equal(ncalls(&r), 1);
	res_clear(&r);
}

/* A peer that answers any request with a chunked body over the cap (no
 * Content-Length, so only the write callback can stop it). */
struct rawpeer {
	int lfd;
	uint16_t port;
	pthread_t th;
	size_t sent;
};

static void *
rawpeer_main(void *p)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct rawpeer *rp = p;
	char buf[4096], chunk[4096 + 16];
	size_t have = 0;
	ssize_t n;
	int hl, fd = accept(rp->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	/* read the head (and whatever body came with it) */
	while (have < sizeof(buf) - 1) {
		n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	if (send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0)
		goto out;
	hl = snprintf(chunk, sizeof(chunk), "1000\r\n");
	memset(chunk + hl, 'c', 4096);
	memcpy(chunk + hl + 4096, "\r\n", 2);
	while (rp->sent < MSSP_HTTPC_MAX_RESPONSE + 16384) {
		if (send(fd, chunk, (size_t)hl + 4096 + 2, MSG_NOSIGNAL) < 0)
			break;
		rp->sent += 4096;
	}
	send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
out:
	close(fd);
	return NULL;
}

static void
rawpeer_start(struct rawpeer *rp)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(rp, 0, sizeof(*rp));
	rp->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(rp->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(rp->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(rp->lfd, 4), 0);
	assert_int_equal(getsockname(rp->lfd, (struct sockaddr *)&sa, &sl), 0);
	rp->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&rp->th, NULL, rawpeer_main, rp), 0);
}

static void
test_too_large(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", true);
	struct res r = { 0 };
	struct rawpeer rp;
	char url[256];

	(void)state;
	assert_non_null(c);
	/* announced by Content-Length: one byte over */
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/big");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "too_large");
	/* exactly the cap is fine */
	res_clear(&r);
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/exact");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, MSSP_HTTPC_MAX_RESPONSE);
	assert_true(r.nul_ok);
	assert_int_equal(r.body[0], 'e');
	assert_int_equal(r.body[MSSP_HTTPC_MAX_RESPONSE - 1], 'e');
	/* chunked, no length: the write callback stops it */
	res_clear(&r);
	rawpeer_start(&rp);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/chunked", rp.port);
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "too_large");
	pthread_join(rp.th, NULL);
	close(rp.lfd);
	on_loop(free_on_loop, c);
	res_clear(&r);
}

static void
test_url_and_request_policy(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct httpc *p;
	struct res r = { 0 };
	char url[256], longurl[MSSP_HTTPC_MAX_URL + 64];
	unsigned hits = counter(&T.hits);
	struct post q;

	(void)state;
	assert_non_null(c);
	/* plain http is refused without allow_plain, even to loopback */
	url_of(url, sizeof(url), "http", "127.0.0.1", L_PLAIN, "/echo");
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), -1);
	assert_int_equal(post(c, "ftp://127.0.0.1/x", NULL, "x", 1, 0, &r), -1);
	assert_int_equal(post(c, "file:///etc/passwd", NULL, "x", 1, 0, &r),
	    -1);
	assert_int_equal(post(c, "127.0.0.1/echo", NULL, "x", 1, 0, &r), -1);
	assert_int_equal(post(c, "https://a b/", NULL, "x", 1, 0, &r), -1);
	assert_int_equal(post(c, "https://ap.example\r\nX: y/", NULL, "x", 1, 0,
	    &r), -1);
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "https://h/", 10);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(post(c, longurl, NULL, "x", 1, 0, &r), -1);
	/* header values that would smuggle a header, or break the quotes */
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/echo");
	assert_int_equal(post(c, url, "a\r\nX-Evil: 1", "x", 1, 0, &r), -1);
	assert_int_equal(post(c, url, "a\"b", "x", 1, 0, &r), -1);
	memset(&q, 0, sizeof(q));
	q.c = c;
	q.url = url;
	q.ct = "text/xml\r\nX-Evil: 1";
	q.r = &r;
	on_loop(post_on_loop, &q);
	assert_int_equal(q.rc, -1);
	q.ct = NULL;
	on_loop(post_on_loop, &q);
	assert_int_equal(q.rc, -1);
	/* a body pointer missing, a body or a timeout over its cap */
	assert_int_equal(post(c, url, NULL, NULL, 5, 0, &r), -1);
	{
		char *big = calloc(1, MSSP_HTTPC_MAX_REQUEST + 1);

		assert_non_null(big);
		assert_int_equal(post(c, url, NULL, big,
		    MSSP_HTTPC_MAX_REQUEST + 1, 0, &r), -1);
		free(big);
	}
	assert_int_equal(post(c, url, NULL, "x", 1,
	    MSSP_HTTPC_MAX_TIMEOUT_MS + 1, &r), -1);
	assert_int_equal(httpc_inflight(c), 0);
	on_loop(free_on_loop, c);
	/* nothing was started: no callback, nothing reached the server */
	usleep(100000);
	assert_int_equal(ncalls(&r), 0);
	assert_int_equal(counter(&T.hits), hits);

	/* allow_plain: http:// to loopback only */
	p = client_new(NULL, NULL, true);
	assert_non_null(p);
	url_of(url, sizeof(url), "http", "127.0.0.1", L_PLAIN, "/echo");
	assert_int_equal(post(p, url, NULL, "plain", 5, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "plain", 5);
	res_clear(&r);
	url_of(url, sizeof(url), "http", "LocalHost", L_PLAIN, "/echo");
	assert_int_equal(post(p, url, NULL, "plain", 5, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 200);
	res_clear(&r);
	assert_int_equal(post(p, "http://192.0.2.1/echo", NULL, "x", 1, 0, &r),
	    -1);
	assert_int_equal(post(p, "http://127.0.0.2/echo", NULL, "x", 1, 0, &r),
	    -1);
	assert_int_equal(post(p, "http://localhost.example.org/", NULL, "x", 1,
	    0, &r), -1);
	on_loop(free_on_loop, p);
	assert_int_equal(ncalls(&r), 0);
}

static void
test_connect_refused(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct res r = { 0 };
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[256];
	int fd;

	(void)state;
	assert_non_null(c);
	/* a port that was free a moment ago: nobody listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/echo",
	    ntohs(sa.sin_port));
	assert_int_equal(post(c, url, NULL, "x", 1, 0, &r), 0);
	assert_true(wait_res(&r, 1, 5000));
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "connect");
	on_loop(free_on_loop, c);
	res_clear(&r);
}

#define NCONC 20

struct many {
	struct httpc *c;
	char url[256];
	char bodies[NCONC][32];
	struct res r[NCONC];
	int rc[NCONC];
	size_t inflight;
};

static void
many_on_loop(void *p)
{
	struct many *m = p;
	int i;

	for (i = 0; i < NCONC; i++)
		m->rc[i] = post_raw(m->c, m->url, "urn:many", m->bodies[i],
		    strlen(m->bodies[i]), 0, &m->r[i]);
	m->inflight = httpc_inflight(m->c);
}

static void
test_concurrent(void **state)
{
	struct many *m = calloc(1, sizeof(*m));
	struct srv_stats s0, s1;
	struct res r = { 0 };
	int i;

	(void)state;
	assert_non_null(m);
	m->c = client_new("client", "ca.pem", false);
	assert_non_null(m->c);
	url_of(m->url, sizeof(m->url), "https", "127.0.0.1", L_MTLS, "/echo");
	for (i = 0; i < NCONC; i++)
		snprintf(m->bodies[i], sizeof(m->bodies[i]), "request-%d", i);
	on_loop(many_on_loop, m);
	assert_int_equal(m->inflight, NCONC);
	for (i = 0; i < NCONC; i++) {
		assert_int_equal(m->rc[i], 0);
		assert_true(wait_res(&m->r[i], 1, 10000));
	}
	for (i = 0; i < NCONC; i++) {
		assert_int_equal(m->r[i].ncalls, 1);
		assert_int_equal(m->r[i].status, 200);
		assert_int_equal(m->r[i].len, strlen(m->bodies[i]));
		assert_memory_equal(m->r[i].body, m->bodies[i], m->r[i].len);
		assert_true(m->r[i].on_loop);
	}
	assert_int_equal(httpc_inflight(m->c), 0);

	/* keep-alive: sequential requests reuse the cached connections */
	srv_get_stats(T.srv, &s0);
	for (i = 0; i < 5; i++) {
		res_clear(&r);
		assert_int_equal(post(m->c, m->url, NULL, "again", 5, 0, &r), 0);
		assert_true(wait_res(&r, 1, 5000));
		assert_int_equal(r.status, 200);
	}
	srv_get_stats(T.srv, &s1);
	print_message("  new connections for 5 sequential requests: %llu\n",
	    (unsigned long long)(s1.st_conns_accepted - s0.st_conns_accepted));
	assert_true(s1.st_conns_accepted - s0.st_conns_accepted <= 1);

	/* a done callback may post the next request */
	res_clear(&r);
	r.c = m->c;
	r.chain = 3;
	r.chain_url = m->url;
	assert_int_equal(post(m->c, m->url, NULL, "first", 5, 0, &r), 0);
	assert_true(wait_res(&r, 4, 10000));
	assert_int_equal(r.chain_rc, 0);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "again", 5);

	on_loop(free_on_loop, m->c);
	for (i = 0; i < NCONC; i++) {
		assert_int_equal(m->r[i].ncalls, 1);
		res_clear(&m->r[i]);
	}
	assert_int_equal(ncalls(&r), 4);
	res_clear(&r);
	free(m);
}

static bool
wait_parked(unsigned n, unsigned timeout_ms)
{
	uint64_t end = loop_now_ms() + timeout_ms;

	while (counter(&T.parked) < n && loop_now_ms() < end)
		usleep(5000);
	return counter(&T.parked) >= n;
}

static void
test_free_with_inflight(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct res r[5];
	char url[256];
	unsigned parked0 = counter(&T.parked);
	int i;

	(void)state;
	assert_non_null(c);
	memset(r, 0, sizeof(r));
	url_of(url, sizeof(url), "https", "127.0.0.1", L_MTLS, "/delay");
	for (i = 0; i < 5; i++)
		assert_int_equal(post(c, url, NULL, "x", 1, 0, &r[i]), 0);
	/* really in flight: the server holds all five */
	assert_true(wait_parked(parked0 + 5, 5000));
	assert_int_equal(httpc_inflight(c), 5);
	on_loop(free_on_loop, c);
	/* completed inside httpc_free, exactly once each */
	for (i = 0; i < 5; i++) {
		assert_int_equal(r[i].ncalls, 1);
		assert_int_equal(r[i].status, 0);
		assert_string_equal(r[i].err, "shutdown");
		assert_true(r[i].on_loop);
	}
	usleep(200000);
	for (i = 0; i < 5; i++)
		assert_int_equal(ncalls(&r[i]), 1);
}

/* httpc_free from inside a done callback: the other request finishes with
 * "shutdown" there, and the handle outlives the callback safely. */
static void
test_free_from_done(void **state)
{
	struct httpc *c = client_new("client", "ca.pem", false);
	struct res a = { 0 }, b = { 0 };
	char fast[256], slow[256];
	unsigned parked0 = counter(&T.parked);

	(void)state;
	assert_non_null(c);
	url_of(fast, sizeof(fast), "https", "127.0.0.1", L_MTLS, "/echo");
	url_of(slow, sizeof(slow), "https", "127.0.0.1", L_MTLS, "/delay");
	assert_int_equal(post(c, slow, NULL, "b", 1, 0, &b), 0);
	assert_true(wait_parked(parked0 + 1, 5000));
	a.c = c;
	a.free_in_done = true;
	assert_int_equal(post(c, fast, NULL, "a", 1, 0, &a), 0);
	assert_true(wait_res(&a, 1, 5000));
	assert_true(wait_res(&b, 1, 5000));
	assert_int_equal(a.status, 200);
	assert_int_equal(b.status, 0);
	assert_string_equal(b.err, "shutdown");
	usleep(100000);
	assert_int_equal(ncalls(&a), 1);
	assert_int_equal(ncalls(&b), 1);
	res_clear(&a);
	res_clear(&b);
}

/* The in-flight cap, and a mass shutdown of requests not yet started. */
struct capt {
	char url[256];
	struct res *r;
	int rc_over;
	size_t inflight;
	unsigned done_before_free, done_after_free;
	bool all_shutdown;
};

static void
cap_on_loop(void *p)
{
	struct capt *t = p;
	struct httpc_tls tls = { 0 };
	struct httpc *c = httpc_new(T.loop, &tls);
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < MSSP_HTTPC_MAX_INFLIGHT; i++)
		if (post_raw(c, t->url, NULL, "x", 1, 0, &t->r[i]) != 0)
			break;
	t->inflight = httpc_inflight(c);
	t->rc_over = post_raw(c, t->url, NULL, "x", 1, 0,
	    &t->r[MSSP_HTTPC_MAX_INFLIGHT]);
	pthread_mutex_lock(&T.mu);
	t->done_before_free = T.ndone;
	pthread_mutex_unlock(&T.mu);
	httpc_free(c);
	pthread_mutex_lock(&T.mu);
	t->done_after_free = T.ndone;
	pthread_mutex_unlock(&T.mu);
	t->all_shutdown = true;
	for (i = 0; i < MSSP_HTTPC_MAX_INFLIGHT; i++)
		if (t->r[i].ncalls != 1 || t->r[i].status != 0 ||
		    t->r[i].err == NULL || strcmp(t->r[i].err, "shutdown") != 0)
			t->all_shutdown = false;
}

static void
test_inflight_cap(void **state)
{
	struct capt *t = calloc(1, sizeof(*t));

	(void)state;
	assert_non_null(t);
	t->r = calloc(MSSP_HTTPC_MAX_INFLIGHT + 1, sizeof(*t->r));
	assert_non_null(t->r);
	url_of(t->url, sizeof(t->url), "https", "127.0.0.1", L_MTLS, "/delay");
	on_loop(cap_on_loop, t);
	assert_int_equal(t->inflight, MSSP_HTTPC_MAX_INFLIGHT);
	assert_int_equal(t->rc_over, -1);
	assert_int_equal(t->done_after_free - t->done_before_free,
	    MSSP_HTTPC_MAX_INFLIGHT);
	assert_true(t->all_shutdown);
	assert_int_equal(t->r[MSSP_HTTPC_MAX_INFLIGHT].ncalls, 0);
	free(t->r);
	free(t);
}

/* ---- group setup -------------------------------------------------------- */

static int
group_setup(void **state)
{
	struct srv_conf c;
	struct net_err e;
	SSL_CTX *mtls, *other;
	size_t i;

	(void)state;
	memset(&T, 0, sizeof(T));
	pthread_mutex_init(&T.mu, NULL);
	pthread_cond_init(&T.cv, NULL);
	if (td_make(T.dir, sizeof(T.dir), "test_client") != 0)
		return -1;
	make_pki();
	mtls = tt_server_ctx(T.dir, "server", "ca.pem", NULL);
	other = tt_server_ctx(T.dir, "otherhost", NULL, NULL);

	memset(&c, 0, sizeof(c));
	c.sc_workers = 2;
	c.sc_nlisteners = L_COUNT;
	for (i = 0; i < L_COUNT; i++) {
		c.sc_listeners[i].sl_addr = "127.0.0.1";
		c.sc_listeners[i].sl_handler = test_handler;
		c.sc_listeners[i].sl_cancel = test_cancel;
	}
	c.sc_listeners[L_MTLS].sl_name = "mtls";
	c.sc_listeners[L_MTLS].sl_tls = mtls;
	c.sc_listeners[L_PLAIN].sl_name = "plain";
	c.sc_listeners[L_WRONGNAME].sl_name = "otherhost";
	c.sc_listeners[L_WRONGNAME].sl_tls = other;
	T.srv = srv_new(&c, &e);
	SSL_CTX_free(mtls);
	SSL_CTX_free(other);
	if (T.srv == NULL || srv_start(T.srv, &e) != 0) {
		fprintf(stderr, "server: %s\n", e.ne_detail);
		return -1;
	}
	for (i = 0; i < L_COUNT; i++)
		T.port[i] = srv_listener_port(T.srv, i);
	T.loop = loop_new();
	if (T.loop == NULL || loop_start(T.loop) != 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	loop_free(T.loop);
	srv_free(T.srv);
	if (td_remove(T.dir) != 0)
		fprintf(stderr, "cannot remove %s\n", T.dir);
	pthread_mutex_destroy(&T.mu);
	pthread_cond_destroy(&T.cv);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_ok),
		cmocka_unit_test(test_status_passthrough),
		cmocka_unit_test(test_tls_refusals),
		cmocka_unit_test(test_pinned_server),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_url_and_request_policy),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_free_with_inflight),
		cmocka_unit_test(test_free_from_done),
		cmocka_unit_test(test_inflight_cap),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
