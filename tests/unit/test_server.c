/*
 * test_server.c - the HTTP/TLS server layer on loopback: listeners, the
 * connection state machine, deadlines, caps, parking, mutual TLS.
 *
 * One server (2 workers, five listeners) runs for the whole group, plus a
 * small one with tight caps and deadlines.  Clients are raw sockets, an
 * in-process OpenSSL client (exact alert reasons), and the command-line
 * tools curl and openssl s_client as independent cross-checks.  All
 * certificates are made here, in a mkdtemp() directory, with OpenSSL APIs.
 *
 * The test binary doubles as the load client of test_park_many: run as
 * "test_server --park-client PORT N" it opens N connections (a separate
 * process, so the server's own file-descriptor budget is not shared).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/loop.h"
#include "net/server.h"
#include "net/tls.h"

#include "testtls.h"

extern char **environ;

#define LIT(s) (s), (sizeof(s) - 1)
#define MAX_PARK 16000
#define RBUF (256 * 1024)

/* Listener indexes of the main server. */
enum { L_PLAIN, L_MTLS, L_TLS, L_CRL, L_SWAP, L_COUNT };

/* ---- shared state between the handlers (worker threads) and tests ---- */

struct tstate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t park_ids[MAX_PARK];
	size_t nparked;          /* parked by the handler since reset      */
	unsigned ncancel;
	int last_cancel;
	uint64_t last_cancel_ms;
	int bad_header_rc;       /* srv_reply_ex result for /bad-header    */
	int big_rc;              /* ... for /big                           */
	unsigned workers_seen;   /* bit per worker index                   */
	char dir[256];
	struct srv *srv;         /* main server                            */
	struct srv *caps;        /* tight caps and deadlines               */
	uint16_t port[L_COUNT];
	uint16_t caps_plain, caps_tls;
	uint8_t fp_client[TLS_FP_LEN];
	uint8_t fp_server2[TLS_FP_LEN];
	uint8_t fp_server[TLS_FP_LEN];
};

static struct tstate T;

static const char PARK_LONG[] = "long";
static const char PARK_SHORT[] = "short";

static uint64_t
now_ms(void)
{
	return loop_now_ms();
}

static void
path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", T.dir, name);
}

/* ---- the handler ------------------------------------------------------ */

static void
reply_text(struct srv_req *req, int status, const char *text)
{
	assert_int_equal(srv_reply(req, status, "text/plain", text,
	    strlen(text)), 0);
}

static void
test_handler(struct srv_req *req, void *arg)
{
	const char *path = srv_req_path(req);
	const char *method = srv_req_method(req);
	char buf[512];
	size_t n;
	const uint8_t *body;

	(void)arg;
	pthread_mutex_lock(&T.mu);
	T.workers_seen |= 1u << srv_req_worker(req);
	pthread_mutex_unlock(&T.mu);

	if (strcmp(path, "/echo") == 0) {
		body = srv_req_body(req, &n);
		if (strcmp(method, "POST") == 0) {
			srv_reply(req, 200, "application/octet-stream", body, n);
			return;
		}
		snprintf(buf, sizeof(buf), "%s %s\n", method, path);
		reply_text(req, 200, buf);
		return;
	}
	if (strcmp(path, "/whoami") == 0) {
		const uint8_t *fp = srv_req_peer_fp(req);
		char hex[TLS_FP_HEX_LEN + 1] = "none";

		if (fp != NULL) {
			tls_fp_hex(fp, hex);
			/* the certificate itself is there too (T-08) */
			if (srv_req_peer_cert(req) == NULL)
				snprintf(hex, sizeof(hex), "cert-missing");
		}
		snprintf(buf, sizeof(buf), "tls=%d resumed=%d fp=%s\n",
		    srv_req_tls(req), srv_req_resumed(req), hex);
		reply_text(req, 200, buf);
		return;
	}
	if (strcmp(path, "/park") == 0 || strcmp(path, "/park-short") == 0) {
		bool shrt = strcmp(path, "/park-short") == 0;

		if (srv_req_park(req, shrt ? 300 : 30000) != 0) {
			struct srv_header h = { "Retry-After", "1" };
			struct srv_response rs = {
				.rs_status = 503, .rs_content_type = "text/plain",
				.rs_headers = &h, .rs_nheaders = 1,
				.rs_body = "busy\n", .rs_body_len = 5
			};

			assert_int_equal(srv_reply_ex(req, &rs), 0);
			return;
		}
		/* the body is gone once parked: only during the handler */
		srv_req_set_data(req, (void *)(shrt ? PARK_SHORT : PARK_LONG));
		pthread_mutex_lock(&T.mu);
		if (T.nparked < MAX_PARK)
			T.park_ids[T.nparked] = srv_req_id(req);
		T.nparked++;
		pthread_cond_broadcast(&T.cv);
		pthread_mutex_unlock(&T.mu);
		return;
	}
	if (strcmp(path, "/405") == 0) {
		struct srv_header h = { "Allow", "POST" };
		struct srv_response rs = {
			.rs_status = 405, .rs_content_type = "text/plain",
			.rs_headers = &h, .rs_nheaders = 1,
			.rs_body = "no\n", .rs_body_len = 3
		};

		assert_int_equal(srv_reply_ex(req, &rs), 0);
		return;
	}
	if (strcmp(path, "/bad-header") == 0) {
		struct srv_header h = { "X-Test", "a\r\nSet-Cookie: x=y" };
		struct srv_header h2 = { "Content-Length", "5" };
		struct srv_response rs = {
			.rs_status = 200, .rs_headers = &h, .rs_nheaders = 1
		};
		int rc = srv_reply_ex(req, &rs);

		rs.rs_headers = &h2;
		rc += srv_reply_ex(req, &rs);      /* reserved name */
		rs.rs_headers = NULL;
		rs.rs_nheaders = 0;
		rs.rs_status = 99;
		rc += srv_reply_ex(req, &rs);      /* not a final status */
		pthread_mutex_lock(&T.mu);
		T.bad_header_rc = rc;
		pthread_mutex_unlock(&T.mu);
		reply_text(req, 200, "rejected\n");
		return;
	}
	if (strcmp(path, "/big") == 0) {
		static char big[MSSP_SRV_MAX_RESPONSE + 1];
		int rc = srv_reply(req, 200, "text/plain", big, sizeof(big));

		pthread_mutex_lock(&T.mu);
		T.big_rc = rc;
		pthread_mutex_unlock(&T.mu);
		reply_text(req, 500, "too big\n");
		/* a second answer is refused */
		assert_int_equal(srv_reply(req, 200, NULL, NULL, 0), -1);
		return;
	}
	if (strcmp(path, "/huge") == 0) {
		static char huge[MSSP_SRV_MAX_RESPONSE];

		memset(huge, 'h', sizeof(huge));
		assert_int_equal(srv_reply(req, 200, "text/plain", huge,
		    sizeof(huge)), 0);
		return;
	}
	if (strcmp(path, "/noanswer") == 0)
		return;  /* the server answers 500 */
	reply_text(req, 404, "not found\n");
}

static void
test_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	(void)arg;
	pthread_mutex_lock(&T.mu);
	T.ncancel++;
	T.last_cancel = (int)why;
	T.last_cancel_ms = now_ms();
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
	if (why == SRV_CANCEL_DEADLINE && srv_req_data(req) == PARK_SHORT) {
		assert_null(srv_req_body(req, &(size_t){0}));
		reply_text(req, 504, "expired\n");
	} else if (why == SRV_CANCEL_GONE) {
		/* too late to answer */
		assert_int_equal(srv_reply(req, 200, NULL, NULL, 0), -1);
	}
}

static void
park_reset(void)
{
	pthread_mutex_lock(&T.mu);
	T.nparked = 0;
	T.ncancel = 0;
	T.last_cancel = 0;
	pthread_mutex_unlock(&T.mu);
}

/* Wait until the handler has parked n requests; false on timeout. */
static bool
wait_parked(size_t n, unsigned timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&T.mu);
	while (T.nparked < n &&
	    pthread_cond_timedwait(&T.cv, &T.mu, &ts) == 0)
		;
	ok = T.nparked >= n;
	pthread_mutex_unlock(&T.mu);
	return ok;
}

static bool
wait_cancels(unsigned n, unsigned timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&T.mu);
	while (T.ncancel < n &&
	    pthread_cond_timedwait(&T.cv, &T.mu, &ts) == 0)
		;
	ok = T.ncancel >= n;
	pthread_mutex_unlock(&T.mu);
	return ok;
}

static uint64_t
parked_id(size_t i)
{
	uint64_t id;

	pthread_mutex_lock(&T.mu);
	id = T.park_ids[i];
	pthread_mutex_unlock(&T.mu);
	return id;
}

/* ---- certificates (testtls.h) ----------------------------------------- */

static const struct tt_ext client_wrong_eku[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "serverAuth" },
	{ NID_authority_key_identifier, "keyid:always" },
};

static void
make_pki(void)
{
	EVP_PKEY *cakey, *ca2key;
	X509 *ca, *ca2, *x, *revoked;
	X509_CRL *crl;
	X509_REVOKED *rv;
	ASN1_TIME *t;
	FILE *f;

	/* each leaf: "<name>.pem" and "<name>.key" */
	ca = tt_make_ca(T.dir, "ca.pem", "Test AP CA", &cakey);
	ca2 = tt_make_ca(T.dir, "ca2.pem", "Untrusted CA", &ca2key);
	x = tt_make_leaf(T.dir, "server", ca, cakey, tt_server_ext,
	    TT_NEXT(tt_server_ext), -TT_DAY, 30 * TT_DAY);
	assert_int_equal(tls_cert_fingerprint(x, T.fp_server), 0);
	X509_free(x);
	x = tt_make_leaf(T.dir, "server2", ca, cakey, tt_server_ext,
	    TT_NEXT(tt_server_ext), -TT_DAY, 30 * TT_DAY);
	assert_int_equal(tls_cert_fingerprint(x, T.fp_server2), 0);
	X509_free(x);
	x = tt_make_leaf(T.dir, "client", ca, cakey, tt_client_ext,
	    TT_NEXT(tt_client_ext), -TT_DAY, 30 * TT_DAY);
	assert_int_equal(tls_cert_fingerprint(x, T.fp_client), 0);
	X509_free(x);
	X509_free(tt_make_leaf(T.dir, "rogue", ca2, ca2key, tt_client_ext,
	    TT_NEXT(tt_client_ext), -TT_DAY, 30 * TT_DAY));
	X509_free(tt_make_leaf(T.dir, "expired", ca, cakey, tt_client_ext,
	    TT_NEXT(tt_client_ext), -10 * TT_DAY, -TT_DAY));
	X509_free(tt_make_leaf(T.dir, "wrongeku", ca, cakey, client_wrong_eku,
	    TT_NEXT(client_wrong_eku), -TT_DAY, 30 * TT_DAY));
	revoked = tt_make_leaf(T.dir, "revoked", ca, cakey, tt_client_ext,
	    TT_NEXT(tt_client_ext), -TT_DAY, 30 * TT_DAY);

	/* A CRL from the CA revoking "revoked" (T-04). */
	crl = X509_CRL_new();
	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(ca)), 1);
	t = X509_gmtime_adj(NULL, -3600);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	t = X509_gmtime_adj(NULL, TT_DAY);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	rv = X509_REVOKED_new();
	assert_int_equal(X509_REVOKED_set_serialNumber(rv,
	    X509_get_serialNumber(revoked)), 1);
	t = X509_gmtime_adj(NULL, -60);
	assert_int_equal(X509_REVOKED_set_revocationDate(rv, t), 1);
	ASN1_TIME_free(t);
	assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, cakey, EVP_sha256()) > 0);
	f = tt_create(T.dir, "crl.pem");
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);

	X509_CRL_free(crl);
	X509_free(revoked);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(ca2key);
}

/* ---- raw clients ------------------------------------------------------ */

struct cli {
	int fd;
	SSL *ssl;
	char *buf;
	size_t len;
};

struct resp {
	int status;
	char head[4096];
	char *body;
	size_t body_len;
	long content_length;
	bool conn_close;
};

static int
tcp_connect(uint16_t port)
{
	return tt_tcp_connect(port, NULL);
}

static void
cli_init(struct cli *c, int fd, SSL *ssl)
{
	c->fd = fd;
	c->ssl = ssl;
	c->buf = malloc(RBUF);
	assert_non_null(c->buf);
	c->len = 0;
}

static void
cli_free(struct cli *c)
{
	if (c->ssl != NULL) {
		/* an orderly close keeps the session resumable */
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void
cli_send(struct cli *c, const void *d, size_t n)
{
	if (c->ssl != NULL) {
		size_t w = 0;

		assert_int_equal(SSL_write_ex(c->ssl, d, n, &w), 1);
		assert_int_equal(w, n);
		return;
	}
	while (n > 0) {
		ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);

		assert_true(w > 0);
		d = (const char *)d + w;
		n -= (size_t)w;
	}
}

/* More bytes into c->buf: >0 read, 0 EOF, -1 error or timeout. */
static int
cli_fill(struct cli *c)
{
	size_t got = 0;

	if (c->len >= RBUF)
		return -1;
	if (c->ssl != NULL) {
		int r = SSL_read_ex(c->ssl, c->buf + c->len, RBUF - c->len,
		    &got);

		if (r == 1) {
			c->len += got;
			return 1;
		}
		return SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 :
		    -1;
	} else {
		ssize_t n = recv(c->fd, c->buf + c->len, RBUF - c->len, 0);

		if (n > 0) {
			c->len += (size_t)n;
			return 1;
		}
		return n == 0 ? 0 : -1;
	}
}

static const char *
find_hdr(const char *head, const char *name)
{
	size_t n = strlen(name);
	const char *p = head;

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			return p;
		}
	}
	return NULL;
}

/* One response (head_only: a HEAD request's, no body read).  Returns its
 * status, -1 on EOF or timeout before a complete response. */
static int
cli_resp(struct cli *c, struct resp *r, bool head_only)
{
	char *end;
	size_t hlen, need;
	const char *v;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	for (;;) {
		end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) :
		    NULL;
		if (end != NULL)
			break;
		if (cli_fill(c) <= 0)
			return -1;
	}
	hlen = (size_t)(end - c->buf) + 4;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = '\0';
	assert_int_equal(strncmp(r->head, "HTTP/1.1 ", 9), 0);
	r->status = (int)strtol(r->head + 9, NULL, 10);
	v = find_hdr(r->head, "Content-Length");
	if (v != NULL)
		r->content_length = strtol(v, NULL, 10);
	v = find_hdr(r->head, "Connection");
	r->conn_close = v != NULL && strncasecmp(v, "close", 5) == 0;
	need = hlen;
	if (!head_only && r->status >= 200 && r->content_length > 0)
		need += (size_t)r->content_length;
	while (c->len < need)
		if (cli_fill(c) <= 0)
			return -1;
	r->body = c->buf + hlen;  /* valid until the next cli call */
	r->body_len = need - hlen;
	/* keep the body readable: move it to the response's own copy */
	r->body = malloc(r->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, c->buf + hlen, r->body_len);
	r->body[r->body_len] = '\0';
	memmove(c->buf, c->buf + need, c->len - need);
	c->len -= need;
	return r->status;
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The server closes: EOF (or a reset) within the receive timeout. */
static bool
cli_eof(struct cli *c)
{
	int r;

	while ((r = cli_fill(c)) > 0)
		c->len = 0;
	if (r == 0)
		return true;
	return c->ssl == NULL && (errno == ECONNRESET);
}

static void
plain_open(struct cli *c, uint16_t port)
{
	cli_init(c, tcp_connect(port), NULL);
}

/* One request on a fresh plain connection; returns the status. */
static int
plain_request(uint16_t port, const char *req, size_t len, struct resp *r)
{
	struct cli c;
	int st;

	plain_open(&c, port);
	cli_send(&c, req, len);
	st = cli_resp(&c, r, false);
	cli_free(&c);
	return st;
}

/* ---- TLS clients ------------------------------------------------------ */

static SSL_CTX *
client_ctx(const char *cert, bool alpn)
{
	return tt_client_ctx(T.dir, "ca.pem", cert, alpn);
}

/* Handshake on a new connection; NULL (and *err the first OpenSSL error)
 * when it fails.  In TLS 1.3 a refused client certificate is only seen on
 * the first read, so the caller sends a request before judging. */
static SSL *
tls_open(SSL_CTX *ctx, uint16_t port, SSL_SESSION *sess, unsigned long *err)
{
	int fd = tcp_connect(port);
	SSL *ssl = SSL_new(ctx);

	assert_non_null(ssl);
	assert_int_equal(tls_client_prepare(ssl, "127.0.0.1"), 0);
	assert_int_equal(SSL_set_fd(ssl, fd), 1);
	if (sess != NULL)
		assert_int_equal(SSL_set_session(ssl, sess), 1);
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		if (err != NULL)
			*err = ERR_peek_error();
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

/* A TLS exchange of one request; the status (or -1 when refused), and
 * the body into out. */
static int
tls_request(SSL_CTX *ctx, uint16_t port, SSL_SESSION *sess,
    SSL_SESSION **sess_out, const char *req, char *out, size_t cap,
    unsigned long *err)
{
	struct cli c;
	struct resp r;
	SSL *ssl = tls_open(ctx, port, sess, err);
	int st;

	if (ssl == NULL)
		return -1;
	cli_init(&c, SSL_get_fd(ssl), ssl);
	ERR_clear_error();
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		if (err != NULL)
			*err = ERR_peek_error();
		cli_free(&c);
		return -1;
	}
	st = cli_resp(&c, &r, false);
	if (st < 0 && err != NULL)
		*err = ERR_peek_error();
	ERR_clear_error();
	if (st > 0 && out != NULL)
		snprintf(out, cap, "%s", r.body);
	if (st > 0) {
		if (r.conn_close) {
			/* close_notify from the server (pitfall 2): a clean
			 * TLS EOF, not "unexpected eof" */
			assert_true(cli_eof(&c));
		}
		resp_free(&r);
	}
	if (sess_out != NULL)
		*sess_out = SSL_get1_session(ssl);
	cli_free(&c);
	return st;
}

static const char GET_WHOAMI_CLOSE[] =
    "GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/* ---- command-line tools ------------------------------------------------ */

/* Run a shell command; its exit status (or -1). */
static int
run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* A small output file of a command; the text stays valid until the next
 * call (the tests run on one thread). */
static const char *
slurp(const char *name)
{
	static char buf[65536];
	char p[512];
	FILE *f;
	size_t n;

	buf[0] = '\0';
	path_of(p, sizeof(p), name);
	f = fopen(p, "rb");
	if (f == NULL)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* ---- group setup ------------------------------------------------------ */

static void
test_log(void *arg, const char *event, const char *peer, const char *detail)
{
	(void)arg;
	if (getenv("TEST_SERVER_LOG") != NULL)
		fprintf(stderr, "[srv] %s peer=%s %s\n", event, peer, detail);
}

static int
group_setup(void **state)
{
	struct srv_conf c;
	struct net_err e;
	SSL_CTX *mtls, *tls, *crl, *swap, *ctls;
	size_t i;

	(void)state;
	memset(&T, 0, sizeof(T));
	pthread_mutex_init(&T.mu, NULL);
	pthread_cond_init(&T.cv, NULL);
	snprintf(T.dir, sizeof(T.dir), "/tmp/test_server.XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	make_pki();
	mtls = tt_server_ctx(T.dir, "server", "ca.pem", NULL);
	tls = tt_server_ctx(T.dir, "server", NULL, NULL);
	crl = tt_server_ctx(T.dir, "server", "ca.pem", "crl.pem");
	swap = tt_server_ctx(T.dir, "server", "ca.pem", NULL);

	memset(&c, 0, sizeof(c));
	c.sc_workers = 2;
	c.sc_max_conns = 15000;
	c.sc_max_conns_per_ip = 15000;
	c.sc_max_parked = 15000;
	c.sc_header_ms = 2000;        /* slowloris test */
	c.sc_rate_window_ms = 1000;   /* slow POST test */
	c.sc_log = test_log;
	c.sc_nlisteners = L_COUNT;
	for (i = 0; i < L_COUNT; i++) {
		c.sc_listeners[i].sl_addr = "127.0.0.1";
		c.sc_listeners[i].sl_handler = test_handler;
		c.sc_listeners[i].sl_cancel = test_cancel;
	}
	c.sc_listeners[L_PLAIN].sl_name = "plain";
	c.sc_listeners[L_MTLS].sl_name = "mtls";
	c.sc_listeners[L_MTLS].sl_tls = mtls;
	c.sc_listeners[L_TLS].sl_name = "tls";
	c.sc_listeners[L_TLS].sl_tls = tls;
	c.sc_listeners[L_CRL].sl_name = "crl";
	c.sc_listeners[L_CRL].sl_tls = crl;
	c.sc_listeners[L_SWAP].sl_name = "swap";
	c.sc_listeners[L_SWAP].sl_tls = swap;
	T.srv = srv_new(&c, &e);
	if (T.srv == NULL) {
		fprintf(stderr, "srv_new: %s\n", e.ne_detail);
		return -1;
	}
	/* the server holds its own references */
	SSL_CTX_free(mtls);
	SSL_CTX_free(tls);
	SSL_CTX_free(crl);
	SSL_CTX_free(swap);
	for (i = 0; i < L_COUNT; i++)
		T.port[i] = srv_listener_port(T.srv, i);
	if (srv_start(T.srv, &e) != 0)
		return -1;

	/* The tight one: 1 worker, 3 connections per address, 5 in all, one
	 * parked request, short deadlines. */
	ctls = tt_server_ctx(T.dir, "server", NULL, NULL);
	memset(&c, 0, sizeof(c));
	c.sc_workers = 1;
	c.sc_max_conns = 5;
	c.sc_max_conns_per_ip = 3;
	c.sc_max_parked = 1;
	c.sc_header_ms = 1000;
	c.sc_idle_ms = 500;
	c.sc_handshake_ms = 1000;
	c.sc_write_ms = 1000;
	c.sc_log = test_log;
	c.sc_nlisteners = 2;
	for (i = 0; i < 2; i++) {
		c.sc_listeners[i].sl_addr = "127.0.0.1";
		c.sc_listeners[i].sl_handler = test_handler;
		c.sc_listeners[i].sl_cancel = test_cancel;
	}
	c.sc_listeners[0].sl_name = "caps";
	c.sc_listeners[1].sl_name = "caps-tls";
	c.sc_listeners[1].sl_tls = ctls;
	T.caps = srv_new(&c, &e);
	SSL_CTX_free(ctls);
	if (T.caps == NULL || srv_start(T.caps, &e) != 0) {
		fprintf(stderr, "caps server: %s\n", e.ne_detail);
		return -1;
	}
	T.caps_plain = srv_listener_port(T.caps, 0);
	T.caps_tls = srv_listener_port(T.caps, 1);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	srv_free(T.srv);
	srv_free(T.caps);
	run("rm -rf '%s'", T.dir);
	pthread_mutex_destroy(&T.mu);
	pthread_cond_destroy(&T.cv);
	return 0;
}

/* ---- plain HTTP ------------------------------------------------------- */

static void
test_plain_get_post(void **state)
{
	struct resp r;
	char out[512];
	int rc;

	(void)state;
	assert_int_equal(plain_request(T.port[L_PLAIN], LIT(
	    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"), &r), 200);
	assert_string_equal(r.body, "GET /echo\n");
	assert_int_equal(r.content_length, 10);
	assert_non_null(find_hdr(r.head, "Date"));
	assert_non_null(strstr(find_hdr(r.head, "Date"), " GMT\r\n"));
	assert_false(r.conn_close);
	assert_non_null(strstr(r.head, "\r\nConnection: keep-alive\r\n"));
	assert_non_null(strstr(r.head, "\r\nContent-Type: text/plain\r\n"));
	resp_free(&r);

	assert_int_equal(plain_request(T.port[L_PLAIN], LIT(
	    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	    "hello"), &r), 200);
	assert_string_equal(r.body, "hello");
	resp_free(&r);

	/* chunked body, decoded by the parser */
	assert_int_equal(plain_request(T.port[L_PLAIN], LIT(
	    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), &r), 200);
	assert_string_equal(r.body, "abcde");
	resp_free(&r);

	/* curl, an independent client */
	rc = run("curl -s -o '%s/curl.out' -w '%%{http_code}' -d 'a=b&c' "
	    "http://127.0.0.1:%u/echo > '%s/curl.code'", T.dir,
	    T.port[L_PLAIN], T.dir);
	assert_int_equal(rc, 0);
	snprintf(out, sizeof(out), "%s", slurp("curl.code"));
	assert_string_equal(out, "200");
	assert_string_equal(slurp("curl.out"), "a=b&c");

	/* HTTP/1.0 without keep-alive: answered, then closed */
	{
		struct cli c;

		plain_open(&c, T.port[L_PLAIN]);
		cli_send(&c, LIT("GET /echo HTTP/1.0\r\n\r\n"));
		assert_int_equal(cli_resp(&c, &r, false), 200);
		assert_true(r.conn_close);
		resp_free(&r);
		assert_true(cli_eof(&c));
		cli_free(&c);
	}
}

static void
test_keepalive(void **state)
{
	struct cli c;
	struct resp r;
	int i;

	(void)state;
	plain_open(&c, T.port[L_PLAIN]);
	for (i = 0; i < 5; i++) {
		cli_send(&c, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
		    "Content-Length: 3\r\n\r\nabc"));
		assert_int_equal(cli_resp(&c, &r, false), 200);
		assert_string_equal(r.body, "abc");
		assert_false(r.conn_close);
		resp_free(&r);
	}
	/* HEAD: Content-Length of the GET body, no body bytes */
	cli_send(&c, LIT("HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, true), 200);
	assert_int_equal(r.content_length, 11);
	resp_free(&r);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "GET /echo\n");
	assert_true(r.conn_close);
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);

	/* curl reuses one connection for two URLs */
	assert_int_equal(run("curl -sv http://127.0.0.1:%u/echo "
	    "http://127.0.0.1:%u/echo > /dev/null 2> '%s/curl.err'",
	    T.port[L_PLAIN], T.port[L_PLAIN], T.dir), 0);
	assert_non_null(strstr(slurp("curl.err"), "Re-using existing"));
}

static void
test_half_close(void **state)
{
	struct cli c;
	struct resp r;

	(void)state;
	/* a client that sends and shuts down its side still gets the
	 * answers of what it sent (plain HTTP), then the close */
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"
	    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"));
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	resp_free(&r);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "hi");
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);
	/* ... but EOF cancels a parked request (the design: EOF = gone) */
	park_reset();
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, LIT("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	assert_true(wait_cancels(1, 3000));
	assert_int_equal(T.last_cancel, SRV_CANCEL_GONE);
	assert_true(cli_eof(&c));
	cli_free(&c);
}

static void
test_pipelining(void **state)
{
	struct cli c;
	struct resp r;
	char big[4096];
	size_t n = 0;
	int i;

	(void)state;
	/* three in one write, answered in order (H-09) */
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, LIT(
	    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
	    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntwo"
	    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	    "three"));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "one");
	resp_free(&r);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "two");
	resp_free(&r);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "three");
	resp_free(&r);
	cli_free(&c);

	/* more than MSSP_HTTP_MAX_PIPELINE at once: still all, in order */
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		    "GET /echo HTTP/1.1\r\nHost: %d\r\n\r\n", i);
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, big, n);
	for (i = 0; i < 40; i++) {
		assert_int_equal(cli_resp(&c, &r, false), 200);
		resp_free(&r);
	}
	cli_free(&c);

	/* a framing error in the second: first answered, then 400 + close,
	 * the third never processed */
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, LIT(
	    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
	    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	resp_free(&r);
	assert_int_equal(cli_resp(&c, &r, false), 400);
	assert_true(r.conn_close);
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);

	/* nothing after "Connection: close" is parsed */
	plain_open(&c, T.port[L_PLAIN]);
	cli_send(&c, LIT(
	    "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_true(r.conn_close);
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);
}

/* Send req on a fresh connection: expect status, Connection: close, EOF. */
static void
expect_close(uint16_t port, const char *req, size_t len, int status)
{
	struct cli c;
	struct resp r;

	plain_open(&c, port);
	cli_send(&c, req, len);
	assert_int_equal(cli_resp(&c, &r, false), status);
	assert_true(r.conn_close);
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);
}

static void
test_framing_errors(void **state)
{
	uint16_t p = T.port[L_PLAIN];
	struct srv_stats st0, st1;

	(void)state;
	srv_get_stats(T.srv, &st0);
	/* H-04 */
	expect_close(p, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n"), 400);
	/* H-05 */
	expect_close(p, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: +3\r\n\r\nabc"), 400);
	/* H-06 */
	expect_close(p, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501);
	/* H-08 */
	expect_close(p, LIT("GET /echo HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
	/* H-10 */
	expect_close(p, LIT("GET /echo HTTP/1.1\r\n\r\n"), 400);
	/* H-13: the HTTP/2 preface */
	expect_close(p, LIT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
	srv_get_stats(T.srv, &st1);
	assert_int_equal(st1.st_parse_errors - st0.st_parse_errors, 6);

	/* H-13: Upgrade: h2c is ignored, the answer is plain HTTP/1.1 */
	{
		struct resp r;

		assert_int_equal(plain_request(p, LIT("GET /echo HTTP/1.1\r\n"
		    "Host: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
		    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
		    &r), 200);
		resp_free(&r);
	}
}

static void
test_body_limits(void **state)
{
	uint16_t p = T.port[L_PLAIN];
	struct cli c;
	struct resp r;
	char body[5] = "12345";

	(void)state;
	/* H-02: the declared length alone earns 413; no body byte sent */
	expect_close(p, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 100000\r\n\r\n"), 413);
	/* H-12: limits first, so no 100 Continue, just 413 */
	plain_open(&c, p);
	cli_send(&c, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 413);
	assert_true(r.conn_close);
	resp_free(&r);
	assert_true(cli_eof(&c));
	cli_free(&c);
	/* within the limits: 100, then the body, then 200 */
	plain_open(&c, p);
	cli_send(&c, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 100);
	resp_free(&r);
	cli_send(&c, body, sizeof(body));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	assert_string_equal(r.body, "12345");
	resp_free(&r);
	cli_free(&c);
	/* a chunked stream over the cap is cut while it arrives */
	{
		char head[] = "POST /echo HTTP/1.1\r\nHost: a\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n10000\r\n";
		char *chunk = calloc(1, 0x10000);

		plain_open(&c, p);
		cli_send(&c, head, sizeof(head) - 1);
		memset(chunk, 'x', 0x10000);
		cli_send(&c, chunk, 0x10000);
		cli_send(&c, LIT("\r\n1\r\nx\r\n0\r\n\r\n"));
		assert_int_equal(cli_resp(&c, &r, false), 413);
		resp_free(&r);
		cli_free(&c);
		free(chunk);
	}
}

static void
test_handler_answers(void **state)
{
	uint16_t p = T.port[L_PLAIN];
	struct resp r;
	struct cli c;

	(void)state;
	/* H-11 shape: 405 with Allow */
	assert_int_equal(plain_request(p, LIT("GET /405 HTTP/1.1\r\nHost: a"
	    "\r\n\r\n"), &r), 405);
	assert_non_null(strstr(r.head, "\r\nAllow: POST\r\n"));
	resp_free(&r);
	/* a handler that neither answers nor parks: 500 and close */
	expect_close(p, LIT("GET /noanswer HTTP/1.1\r\nHost: a\r\n\r\n"), 500);
	/* header injection, reserved names, bad statuses: refused */
	assert_int_equal(plain_request(p, LIT("GET /bad-header HTTP/1.1\r\n"
	    "Host: a\r\n\r\n"), &r), 200);
	assert_null(strstr(r.head, "Set-Cookie"));
	resp_free(&r);
	assert_int_equal(T.bad_header_rc, -3);
	/* over MSSP_SRV_MAX_RESPONSE: refused, the handler answers 500 */
	plain_open(&c, p);
	cli_send(&c, LIT("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 500);
	assert_string_equal(r.body, "too big\n");
	resp_free(&r);
	assert_int_equal(T.big_rc, -1);
	/* the connection stays usable */
	assert_int_equal(cli_resp(&c, &r, false), 200);
	resp_free(&r);
	cli_free(&c);
	assert_int_equal(plain_request(p, LIT("GET /nothing HTTP/1.1\r\n"
	    "Host: a\r\n\r\n"), &r), 404);
	resp_free(&r);
}

/* ---- deadlines and caps (H-03) --------------------------------------- */

struct trickle {
	uint16_t port;
	const char *data;
	size_t len;
	size_t at_once;         /* leading bytes sent in one write        */
	unsigned gap_ms;
	int status;             /* what came back (408 expected)          */
	bool closed;
	uint64_t elapsed_ms;    /* connect .. close                       */
};

static void *
trickle_main(void *arg)
{
	struct trickle *t = arg;
	struct cli c;
	struct resp r;
	uint64_t t0 = now_ms();
	size_t i;

	plain_open(&c, t->port);
	cli_send(&c, t->data, t->at_once);
	/* then one byte at a time until the server stops us */
	for (i = t->at_once; i < t->len; i++) {
		struct pollfd pfd = { c.fd, POLLIN, 0 };

		if (send(c.fd, t->data + i, 1, MSG_NOSIGNAL) != 1)
			break;
		if (poll(&pfd, 1, (int)t->gap_ms) > 0)
			break;  /* the server answered or closed */
	}
	t->status = cli_resp(&c, &r, false);
	if (t->status > 0)
		resp_free(&r);
	t->closed = cli_eof(&c);
	t->elapsed_ms = now_ms() - t0;
	cli_free(&c);
	return NULL;
}

static void
test_slowloris(void **state)
{
	static const char head[] = "GET /echo HTTP/1.1\r\nHost: slow\r\n"
	    "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	struct trickle t = { T.port[L_PLAIN], head, sizeof(head) - 1, 0, 1000,
		0, false, 0 };
	struct srv_stats st0, st1;
	pthread_t th;
	struct resp r;
	int i;

	(void)state;
	srv_get_stats(T.srv, &st0);
	assert_int_equal(pthread_create(&th, NULL, trickle_main, &t), 0);
	/* meanwhile, other clients are served at once */
	for (i = 0; i < 10; i++) {
		uint64_t t0 = now_ms();

		assert_int_equal(plain_request(T.port[L_PLAIN], LIT(
		    "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"), &r), 200);
		resp_free(&r);
		assert_true(now_ms() - t0 < 500);
		usleep(100000);
	}
	pthread_join(th, NULL);
	/* closed at the 2 s header deadline, with 408 */
	assert_int_equal(t.status, 408);
	assert_true(t.closed);
	print_message("  slowloris closed after %llu ms (deadline 2000)\n",
	    (unsigned long long)t.elapsed_ms);
	assert_true(t.elapsed_ms >= 1900 && t.elapsed_ms < 4000);
	srv_get_stats(T.srv, &st1);
	assert_int_equal(st1.st_timeouts_header - st0.st_timeouts_header, 1);
}

static void
test_slow_body(void **state)
{
	static char req[2200];
	struct trickle t;
	struct srv_stats st0, st1;
	int n;

	(void)state;
	/* 2000 body bytes at 10 bytes/s is under the 1024 B/s floor */
	n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 2000\r\n\r\n");
	memset(req + n, 'b', 2000);
	srv_get_stats(T.srv, &st0);
	t = (struct trickle){ T.port[L_PLAIN], req, (size_t)n + 2000,
		(size_t)n, 100, 0, false, 0 };
	trickle_main(&t);
	assert_int_equal(t.status, 408);
	assert_true(t.closed);
	assert_true(t.elapsed_ms >= 900 && t.elapsed_ms < 4000);
	srv_get_stats(T.srv, &st1);
	assert_int_equal(st1.st_timeouts_body - st0.st_timeouts_body, 1);
}

static void
test_idle_and_handshake_deadlines(void **state)
{
	struct cli c;
	struct resp r;
	uint64_t t0;
	struct srv_stats st0, st1;

	(void)state;
	srv_get_stats(T.caps, &st0);
	/* idle keep-alive: 500 ms on the caps server */
	plain_open(&c, T.caps_plain);
	cli_send(&c, LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	resp_free(&r);
	t0 = now_ms();
	assert_true(cli_eof(&c));
	assert_true(now_ms() - t0 >= 400 && now_ms() - t0 < 3000);
	cli_free(&c);
	/* a connection that never sends: the (1 s) header deadline */
	plain_open(&c, T.caps_plain);
	t0 = now_ms();
	assert_true(cli_eof(&c));
	print_message("  silent connection closed after %llu ms\n",
	    (unsigned long long)(now_ms() - t0));
	assert_true(now_ms() - t0 >= 900 && now_ms() - t0 < 3000);
	cli_free(&c);
	/* a TLS client that never says hello: the handshake deadline */
	plain_open(&c, T.caps_tls);
	t0 = now_ms();
	assert_true(cli_eof(&c));
	assert_true(now_ms() - t0 >= 900 && now_ms() - t0 < 3000);
	cli_free(&c);
	usleep(100000);
	srv_get_stats(T.caps, &st1);
	assert_int_equal(st1.st_timeouts_idle - st0.st_timeouts_idle, 1);
	assert_int_equal(st1.st_timeouts_header - st0.st_timeouts_header, 1);
	assert_int_equal(st1.st_timeouts_handshake - st0.st_timeouts_handshake,
	    1);
}

static void
test_write_timeout(void **state)
{
	struct cli c;
	struct srv_stats st0, st1;
	int rcv = 4096, i;
	uint64_t t0;

	(void)state;
	/* a client that asks for 8 x 1 MiB and reads nothing (slow read,
	 * H-03): once the kernel buffers are full, no byte leaves for
	 * sc_write_ms (1 s) and the connection is closed */
	srv_get_stats(T.caps, &st0);
	{
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		assert_true(fd >= 0);
		/* before connect(), so the window stays small */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons(T.caps_plain);
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa,
		    sizeof(sa)), 0);
		cli_init(&c, fd, NULL);
	}
	for (i = 0; i < 8; i++)
		cli_send(&c, LIT("GET /huge HTTP/1.1\r\nHost: a\r\n\r\n"));
	t0 = now_ms();
	for (i = 0; i < 500; i++) {
		srv_get_stats(T.caps, &st1);
		if (st1.st_timeouts_write > st0.st_timeouts_write)
			break;
		usleep(10000);
	}
	print_message("  slow reader closed after %llu ms\n",
	    (unsigned long long)(now_ms() - t0));
	assert_int_equal(st1.st_timeouts_write - st0.st_timeouts_write, 1);
	assert_true(now_ms() - t0 >= 900);
	cli_free(&c);
}

static void
test_stop_cancels_parked(void **state)
{
	struct srv_conf c;
	struct net_err e;
	struct srv *s;
	struct cli cl;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.sc_nlisteners = 1;
	c.sc_listeners[0].sl_addr = "127.0.0.1";
	c.sc_listeners[0].sl_handler = test_handler;
	c.sc_listeners[0].sl_cancel = test_cancel;
	s = srv_new(&c, &e);
	assert_non_null(s);
	assert_int_equal(srv_start(s, &e), 0);
	assert_int_equal(srv_start(s, &e), -1);
	park_reset();
	plain_open(&cl, srv_listener_port(s, 0));
	cli_send(&cl, LIT("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(wait_parked(1, 2000));
	srv_stop(s);
	assert_int_equal(T.ncancel, 1);
	assert_int_equal(T.last_cancel, SRV_CANCEL_SHUTDOWN);
	assert_true(cli_eof(&cl));
	/* after the stop, answers are refused at once */
	assert_int_equal(srv_reply_async(s, parked_id(0),
	    &(struct srv_response){ .rs_status = 200 }), -1);
	srv_stop(s);
	srv_free(s);
	cli_free(&cl);
}

static bool
refused(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, 0);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void
test_conn_caps(void **state)
{
	struct cli c[5];
	struct resp r;
	int extra;
	int i;
	struct srv_stats st0, st1;

	(void)state;
	/* earlier caps-server connections are gone */
	for (i = 0; i < 300; i++) {
		srv_get_stats(T.caps, &st0);
		if (st0.st_conns_open == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(st0.st_conns_open, 0);
	/* three from 127.0.0.1 (the per-address cap) */
	for (i = 0; i < 3; i++) {
		cli_init(&c[i], tt_tcp_connect(T.caps_plain, "127.0.0.1"),
		    NULL);
		cli_send(&c[i], LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
		assert_int_equal(cli_resp(&c[i], &r, false), 200);
		resp_free(&r);
	}
	extra = tt_tcp_connect(T.caps_plain, "127.0.0.1");
	assert_true(refused(extra));
	close(extra);
	/* two from 127.0.0.2 reach the global cap of 5 */
	for (i = 3; i < 5; i++) {
		cli_init(&c[i], tt_tcp_connect(T.caps_plain, "127.0.0.2"),
		    NULL);
		cli_send(&c[i], LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
		assert_int_equal(cli_resp(&c[i], &r, false), 200);
		resp_free(&r);
	}
	extra = tt_tcp_connect(T.caps_plain, "127.0.0.3");
	assert_true(refused(extra));
	close(extra);
	srv_get_stats(T.caps, &st1);
	assert_int_equal(st1.st_conns_refused_ip - st0.st_conns_refused_ip, 1);
	assert_int_equal(st1.st_conns_refused - st0.st_conns_refused, 1);
	assert_int_equal(st1.st_conns_open, 5);
	/* one leaves, one more from 127.0.0.1 is let in */
	cli_free(&c[0]);
	usleep(100000);
	cli_init(&c[0], tt_tcp_connect(T.caps_plain, "127.0.0.1"), NULL);
	cli_send(&c[0], LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c[0], &r, false), 200);
	resp_free(&r);
	for (i = 0; i < 5; i++)
		cli_free(&c[i]);
}

static void
test_park_cap(void **state)
{
	struct cli a, b;
	struct resp r;
	struct srv_stats st;

	(void)state;
	usleep(200000);
	park_reset();
	plain_open(&a, T.caps_plain);
	cli_send(&a, LIT("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(wait_parked(1, 2000));
	/* the second cannot park: the handler answers 503 + Retry-After */
	plain_open(&b, T.caps_plain);
	cli_send(&b, LIT("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&b, &r, false), 503);
	assert_non_null(strstr(r.head, "\r\nRetry-After: 1\r\n"));
	resp_free(&r);
	srv_get_stats(T.caps, &st);
	assert_int_equal(st.st_parked, 1);
	assert_int_equal(st.st_park_refused, 1);
	cli_free(&b);
	cli_free(&a);
	assert_true(wait_cancels(1, 2000));
	assert_int_equal(T.last_cancel, SRV_CANCEL_GONE);
}

/* ---- parking ------------------------------------------------------------ */

struct later {
	uint64_t id;
	unsigned delay_ms;
	int rc;
};

static void *
later_main(void *arg)
{
	struct later *l = arg;
	struct srv_header h = { "X-From", "another-thread" };
	struct srv_response rs = {
		.rs_status = 200, .rs_content_type = "text/plain",
		.rs_headers = &h, .rs_nheaders = 1,
		.rs_body = "signed\n", .rs_body_len = 7
	};

	usleep(l->delay_ms * 1000);
	l->rc = srv_reply_async(T.srv, l->id, &rs);
	return NULL;
}

static void
test_park_async_reply(void **state)
{
	struct cli c;
	struct resp r;
	struct later l = { 0, 2000, -2 };
	pthread_t th;
	uint64_t t0;
	struct srv_stats st;

	(void)state;
	park_reset();
	plain_open(&c, T.port[L_PLAIN]);
	t0 = now_ms();
	cli_send(&c, LIT("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(wait_parked(1, 2000));
	srv_get_stats(T.srv, &st);
	assert_int_equal(st.st_parked, 1);
	l.id = parked_id(0);
	assert_int_equal(pthread_create(&th, NULL, later_main, &l), 0);
	assert_int_equal(cli_resp(&c, &r, false), 200);
	pthread_join(th, NULL);
	assert_int_equal(l.rc, 0);
	assert_string_equal(r.body, "signed\n");
	assert_non_null(strstr(r.head, "\r\nX-From: another-thread\r\n"));
	assert_false(r.conn_close);
	resp_free(&r);
	print_message("  parked request answered after %llu ms\n",
	    (unsigned long long)(now_ms() - t0));
	assert_true(now_ms() - t0 >= 1900 && now_ms() - t0 < 5000);
	/* the connection goes on: keep-alive after a parked answer */
	cli_send(&c, LIT("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 200);
	resp_free(&r);
	cli_free(&c);
	srv_get_stats(T.srv, &st);
	assert_int_equal(st.st_parked, 0);
	/* a second answer to the same id is dropped on the loop */
	l.delay_ms = 0;
	later_main(&l);
	assert_int_equal(l.rc, 0);
	usleep(100000);
	{
		struct srv_stats st2;

		srv_get_stats(T.srv, &st2);
		assert_int_equal(st2.st_async_dropped - st.st_async_dropped, 1);
	}
	/* an id of no worker is refused at once */
	assert_int_equal(srv_reply_async(T.srv, 0, &(struct srv_response){
	    .rs_status = 200 }), -1);
}

/* Close the client while parked: cancel callback within ~100 ms. */
static void
park_cancel_on(bool tls)
{
	struct cli c;
	SSL_CTX *ctx = NULL;
	uint64_t t_close, delta;
	static const char req[] = "GET /park HTTP/1.1\r\nHost: a\r\n\r\n";

	park_reset();
	if (tls) {
		SSL *ssl;

		ctx = client_ctx("client", true);
		ssl = tls_open(ctx, T.port[L_MTLS], NULL, NULL);
		assert_non_null(ssl);
		cli_init(&c, SSL_get_fd(ssl), ssl);
	} else {
		plain_open(&c, T.port[L_PLAIN]);
	}
	cli_send(&c, req, sizeof(req) - 1);
	assert_true(wait_parked(1, 3000));
	t_close = now_ms();
	cli_free(&c);  /* TLS: no close_notify, just the close: a dirty EOF */
	assert_true(wait_cancels(1, 3000));
	delta = T.last_cancel_ms - t_close;
	assert_int_equal(T.last_cancel, SRV_CANCEL_GONE);
	print_message("  %s: cancel callback %llu ms after the close\n",
	    tls ? "TLS" : "plain", (unsigned long long)delta);
	assert_true(delta < 500);
	SSL_CTX_free(ctx);
}

static void
test_park_cancel_on_close(void **state)
{
	struct srv_stats st0, st1;

	(void)state;
	srv_get_stats(T.srv, &st0);
	park_cancel_on(false);
	park_cancel_on(true);
	usleep(50000);
	srv_get_stats(T.srv, &st1);
	assert_int_equal(st1.st_cancel_gone - st0.st_cancel_gone, 2);
	assert_int_equal(st1.st_parked, 0);
}

static void
test_park_deadline(void **state)
{
	struct cli c;
	struct resp r;
	uint64_t t0;

	(void)state;
	park_reset();
	plain_open(&c, T.port[L_PLAIN]);
	t0 = now_ms();
	cli_send(&c, LIT("GET /park-short HTTP/1.1\r\nHost: a\r\n\r\n"));
	/* the cancel callback answers 504 at the 300 ms deadline */
	assert_int_equal(cli_resp(&c, &r, false), 504);
	assert_string_equal(r.body, "expired\n");
	resp_free(&r);
	assert_true(now_ms() - t0 >= 280 && now_ms() - t0 < 2000);
	assert_int_equal(T.last_cancel, SRV_CANCEL_DEADLINE);
	cli_free(&c);
}

/* The load client: N connections, each "GET /park", each expecting 200. */
static int
park_client_main(uint16_t port, unsigned n)
{
	static const char req[] = "GET /park HTTP/1.1\r\nHost: a\r\n"
	    "Connection: close\r\n\r\n";
	struct rlimit rl;
	struct pollfd *pf = calloc(n, sizeof(*pf));
	char *ok = calloc(n, 1);
	unsigned i, j, done = 0, good = 0;
	uint64_t t0;

	if (pf == NULL || ok == NULL)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* connect in batches so the listen backlog never overflows */
	for (i = 0; i < n; i += 256) {
		unsigned end = i + 256 < n ? i + 256 : n;

		for (j = i; j < end; j++) {
			struct sockaddr_in sa;
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

			if (fd < 0)
				return 3;
			memset(&sa, 0, sizeof(sa));
			sa.sin_family = AF_INET;
			sa.sin_port = htons(port);
			inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
			    errno != EINPROGRESS)
				return 4;
			pf[j].fd = fd;
			pf[j].events = POLLOUT;
		}
		t0 = now_ms();
		for (;;) {
			unsigned waiting = 0;

			if (poll(pf + i, end - i, 1000) < 0)
				return 5;
			for (j = i; j < end; j++) {
				if (pf[j].events != POLLOUT)
					continue;
				if (pf[j].revents & (POLLERR | POLLHUP))
					return 6;
				if (pf[j].revents & POLLOUT) {
					if (write(pf[j].fd, req, sizeof(req) - 1) !=
					    (ssize_t)(sizeof(req) - 1))
						return 7;
					pf[j].events = POLLIN;
				} else {
					waiting++;
				}
			}
			if (waiting == 0)
				break;
			if (now_ms() - t0 > 10000)
				return 8;
		}
	}
	/* every answer, then EOF */
	t0 = now_ms();
	while (done < n && now_ms() - t0 < 60000) {
		if (poll(pf, n, 1000) < 0)
			return 9;
		for (j = 0; j < n; j++) {
			char b[512];
			ssize_t r;

			if (pf[j].fd < 0 || !(pf[j].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(pf[j].fd, b, sizeof(b) - 1);
			if (r > 0) {
				b[r] = '\0';
				if (strncmp(b, "HTTP/1.1 200 ", 13) == 0)
					ok[j] = 1;
				continue;
			}
			close(pf[j].fd);
			pf[j].fd = -1;
			done++;
			good += ok[j];
		}
	}
	free(pf);
	free(ok);
	return good == n ? 0 : 10;
}

/*
 * The TLS load client: N mutual-TLS connections made one after the other
 * (blocking handshakes), each "GET /park"; then every answer is read up to
 * the server's close_notify.  dir holds ca.pem and client.pem/.key.
 */
static int
park_client_tls_main(uint16_t port, unsigned n, const char *dir)
{
	static const char req[] = "GET /park HTTP/1.1\r\nHost: a\r\n"
	    "Connection: close\r\n\r\n";
	struct tls_client_conf cc;
	struct net_err e;
	char ca[512], cert[512], key[512];
	SSL_CTX *ctx;
	SSL **ssl = calloc(n, sizeof(*ssl));
	struct pollfd *pf = calloc(n, sizeof(*pf));
	char *ok = calloc(n, 1);
	unsigned i, done = 0, good = 0;
	uint64_t t0;
	struct rlimit rl;

	if (ssl == NULL || pf == NULL || ok == NULL)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/client.pem", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	memset(&cc, 0, sizeof(cc));
	cc.tc_ca_file = ca;
	cc.tc_cert_file = cert;
	cc.tc_key_file = key;
	cc.tc_alpn_http11 = true;
	ctx = tls_client_ctx_new(&cc, &e);
	if (ctx == NULL)
		return 3;
	for (i = 0; i < n; i++) {
		struct sockaddr_in sa;
		struct timeval tv = { 10, 0 };
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

		if (fd < 0)
			return 4;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons(port);
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			return 5;
		ssl[i] = SSL_new(ctx);
		if (ssl[i] == NULL || SSL_set_fd(ssl[i], fd) != 1 ||
		    tls_client_prepare(ssl[i], "127.0.0.1") != 0 ||
		    SSL_connect(ssl[i]) != 1 ||
		    SSL_write(ssl[i], req, sizeof(req) - 1) !=
		    (int)(sizeof(req) - 1))
			return 6;
		pf[i].fd = fd;
		pf[i].events = POLLIN;
	}
	t0 = now_ms();
	while (done < n && now_ms() - t0 < 60000) {
		if (poll(pf, n, 1000) < 0)
			return 7;
		for (i = 0; i < n; i++) {
			char b[512];
			int r;

			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = SSL_read(ssl[i], b, sizeof(b) - 1);
			if (r > 0) {
				b[r] = '\0';
				if (strncmp(b, "HTTP/1.1 200 ", 13) == 0)
					ok[i] = 1;
				if (SSL_pending(ssl[i]) == 0)
					continue;
				continue;
			}
			if (SSL_get_error(ssl[i], r) == SSL_ERROR_WANT_READ)
				continue;
			/* close_notify, or nothing */
			if (SSL_get_error(ssl[i], r) != SSL_ERROR_ZERO_RETURN)
				ok[i] = 0;
			close(pf[i].fd);
			pf[i].fd = -1;
			SSL_free(ssl[i]);
			ssl[i] = NULL;
			done++;
			good += ok[i];
		}
	}
	SSL_CTX_free(ctx);
	free(ssl);
	free(pf);
	free(ok);
	return good == n ? 0 : 10;
}

/* Spawn this binary as a load client; its pid. */
static pid_t
spawn_client(const char *mode, uint16_t port, unsigned n)
{
	char p[16], count[16];
	char *argv[6];
	pid_t pid;

	snprintf(p, sizeof(p), "%u", port);
	snprintf(count, sizeof(count), "%u", n);
	argv[0] = "test_server";
	argv[1] = (char *)mode;
	argv[2] = p;
	argv[3] = count;
	argv[4] = T.dir;
	argv[5] = NULL;
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv,
	    environ), 0);
	return pid;
}

/*
 * n parked on listener li by two spawned clients of n/2 each.  The memory
 * figure is the RSS growth of the second half divided by n/2: the first
 * half pays the one-time costs (heap growth, OpenSSL's first use, parser
 * cache), the second shows what one more parked request costs.  Then all
 * are answered from this (non-loop) thread.
 */
static void
park_many_on(const char *mode, unsigned li, unsigned n, long max_kb_x10)
{
	pid_t pid[2];
	int status, k;
	long rss0, rss1, rss2;
	unsigned i, half = n / 2;
	struct srv_stats st;
	struct srv_response rs = {
		.rs_status = 200, .rs_content_type = "text/plain",
		.rs_body = "ok\n", .rs_body_len = 3
	};
	uint64_t t0;

	park_reset();
	pthread_mutex_lock(&T.mu);
	T.workers_seen = 0;
	pthread_mutex_unlock(&T.mu);
	usleep(100000);
	rss0 = rss_kb();
	t0 = now_ms();
	pid[0] = spawn_client(mode, T.port[li], half);
	assert_true(wait_parked(half, 30000));
	usleep(200000);
	rss1 = rss_kb();
	pid[1] = spawn_client(mode, T.port[li], n - half);
	assert_true(wait_parked(n, 30000));
	usleep(200000);
	rss2 = rss_kb();
	srv_get_stats(T.srv, &st);
	print_message("  %u parked (%s) in %llu ms; RSS %ld -> %ld -> %ld kB: "
	    "%.1f kB per parked connection (second half), %.1f overall\n", n,
	    mode + 2, (unsigned long long)(now_ms() - t0), rss0, rss1, rss2,
	    (double)(rss2 - rss1) / (n - half), (double)(rss2 - rss0) / n);
	assert_int_equal(st.st_parked, n);
	/* both workers took connections (SO_REUSEPORT) */
	assert_int_equal(T.workers_seen, 3u);
	t0 = now_ms();
	for (i = 0; i < n; i++)
		assert_int_equal(srv_reply_async(T.srv, parked_id(i), &rs), 0);
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	print_message("  %u answered and read in %llu ms\n", n,
	    (unsigned long long)(now_ms() - t0));
	srv_get_stats(T.srv, &st);
	assert_int_equal(st.st_parked, 0);
	assert_true(st.st_parked_peak >= n);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* without a sanitizer's own overhead: a parked request stays small */
	assert_true((rss2 - rss1) * 10 / (long)(n - half) <= max_kb_x10);
#else
	(void)max_kb_x10;
#endif
}

static void
test_park_many(void **state)
{
	struct rlimit rl;
	unsigned n = 1000;

	(void)state;
	/* 10,000 if the descriptors allow it (the peers are another process,
	 * see park_client_main, so they do not count against ours) */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 10200)
			n = 10000;
	}
	park_many_on("--park-client", L_PLAIN, n, 80);
}

static void
test_park_many_tls(void **state)
{
	(void)state;
	park_many_on("--park-client-tls", L_MTLS, 500, 400);
}

/* ---- TLS ------------------------------------------------------------------ */

static void
test_mtls_curl(void **state)
{
	char fp[TLS_FP_HEX_LEN + 1], want[256];
	int rc;

	(void)state;
	/* T-01: no client certificate.  TLS 1.3 reports the refusal after
	 * the client's side of the handshake (curl 56, "tlsv13 alert
	 * certificate required"), TLS 1.2 during it (curl 35).  The server
	 * lingers after the alert so that curl reads it rather than a
	 * reset (55). */
	rc = run("curl -s -o /dev/null --cacert '%s/ca.pem' "
	    "https://127.0.0.1:%u/whoami", T.dir, T.port[L_MTLS]);
	assert_int_equal(rc, 56);
	rc = run("curl -s -o /dev/null --tls-max 1.2 --cacert '%s/ca.pem' "
	    "https://127.0.0.1:%u/whoami", T.dir, T.port[L_MTLS]);
	assert_int_equal(rc, 35);
	/* T-02: a certificate from another CA */
	rc = run("curl -s -o /dev/null --cacert '%s/ca.pem' --cert "
	    "'%s/rogue.pem' --key '%s/rogue.key' https://127.0.0.1:%u/whoami",
	    T.dir, T.dir, T.dir, T.port[L_MTLS]);
	assert_int_equal(rc, 56);
	/* a good one: the handler sees its SHA-256 fingerprint; curl asked
	 * for h2 and got HTTP/1.1 (ALPN) */
	rc = run("curl -s --http2 -o '%s/curl.out' -w '%%{http_version}' "
	    "--cacert '%s/ca.pem' --cert '%s/client.pem' --key "
	    "'%s/client.key' https://127.0.0.1:%u/whoami > '%s/curl.code'",
	    T.dir, T.dir, T.dir, T.dir, T.port[L_MTLS], T.dir);
	assert_int_equal(rc, 0);
	assert_string_equal(slurp("curl.code"), "1.1");
	tls_fp_hex(T.fp_client, fp);
	snprintf(want, sizeof(want), "tls=1 resumed=0 fp=%s\n", fp);
	assert_string_equal(slurp("curl.out"), want);
	/* cross-check our fingerprint with openssl x509 */
	assert_int_equal(run("openssl x509 -in '%s/client.pem' -noout "
	    "-fingerprint -sha256 | tr -d ':' | tr 'A-F' 'a-f' > '%s/fp.txt'",
	    T.dir, T.dir), 0);
	snprintf(want, sizeof(want), "sha256 fingerprint=%s\n", fp);
	assert_string_equal(slurp("fp.txt"), want);
}

static void
test_mtls_refusals(void **state)
{
	SSL_CTX *ctx;
	char out[512];
	unsigned long err = 0;
	struct srv_stats st0, st1;

	(void)state;
	srv_get_stats(T.srv, &st0);
	/* T-01 in-process: TLS 1.3 tells a client without a certificate
	 * with the certificate_required alert */
	ctx = client_ctx(NULL, true);
	assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), &err), -1);
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
	SSL_CTX_free(ctx);
	/* T-02: unknown CA */
	ctx = client_ctx("rogue", true);
	err = 0;
	assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), &err), -1);
	assert_int_equal(ERR_GET_REASON(err), SSL_R_TLSV1_ALERT_UNKNOWN_CA);
	SSL_CTX_free(ctx);
	/* T-03: expired */
	ctx = client_ctx("expired", true);
	err = 0;
	assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), &err), -1);
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED);
	SSL_CTX_free(ctx);
	/* T-05: no clientAuth in the EKU */
	ctx = client_ctx("wrongeku", true);
	err = 0;
	assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), &err), -1);
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE);
	SSL_CTX_free(ctx);
	/* T-04: revoked, on the listener with the CRL ... */
	ctx = client_ctx("revoked", true);
	err = 0;
	assert_int_equal(tls_request(ctx, T.port[L_CRL], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), &err), -1);
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED);
	/* ... and accepted where no CRL is configured */
	assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
	SSL_CTX_free(ctx);
	/* a good certificate passes the CRL check */
	ctx = client_ctx("client", true);
	assert_int_equal(tls_request(ctx, T.port[L_CRL], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
	assert_non_null(strstr(out, "resumed=0 fp="));
	SSL_CTX_free(ctx);
	usleep(50000);
	srv_get_stats(T.srv, &st1);
	assert_true(st1.st_tls_failures - st0.st_tls_failures >= 5);
}

static void
test_tls_resumption_inprocess(void **state)
{
	SSL_CTX *ctx = client_ctx("client", true);
	SSL_SESSION *sess = NULL;
	char out[512], want[512], fp[TLS_FP_HEX_LEN + 1];
	static const int vers[2] = { TLS1_2_VERSION, TLS1_3_VERSION };
	int i;

	(void)state;
	tls_fp_hex(T.fp_client, fp);
	/* TLS 1.2 and TLS 1.3 sessions both resume, and the handler sees
	 * the certificate on the resumed connection (T-08) */
	for (i = 0; i < 2; i++) {
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx, vers[i]), 1);
		assert_int_equal(tls_request(ctx, T.port[L_MTLS], NULL, &sess,
		    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
		snprintf(want, sizeof(want), "tls=1 resumed=0 fp=%s\n", fp);
		assert_string_equal(out, want);
		assert_non_null(sess);
		assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
		assert_int_equal(tls_request(ctx, T.port[L_MTLS], sess, NULL,
		    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
		snprintf(want, sizeof(want), "tls=1 resumed=1 fp=%s\n", fp);
		assert_string_equal(out, want);
		/* a session of one listener does not resume on another */
		assert_int_equal(tls_request(ctx, T.port[L_CRL], sess, NULL,
		    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
		assert_non_null(strstr(out, "resumed=0"));
		SSL_SESSION_free(sess);
		sess = NULL;
	}
	SSL_CTX_free(ctx);
}

static void
test_tls_resumption_s_client(void **state)
{
	char fp[TLS_FP_HEX_LEN + 1], want[256], p[512];
	const char *out;
	FILE *f;

	(void)state;
	path_of(p, sizeof(p), "req.txt");
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(GET_WHOAMI_CLOSE, f);
	fclose(f);
	tls_fp_hex(T.fp_client, fp);
	/* first: full handshake, the session saved */
	assert_int_equal(run("cd '%s' && openssl s_client -connect "
	    "127.0.0.1:%u -CAfile ca.pem -cert client.pem -key client.key "
	    "-sess_out sess.pem -ign_eof < req.txt > s1.txt 2>&1",
	    T.dir, T.port[L_MTLS]), 0);
	out = slurp("s1.txt");
	snprintf(want, sizeof(want), "tls=1 resumed=0 fp=%s", fp);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "New, TLSv1.3"));
	/* close_notify was sent (pitfall 2) */
	assert_null(strstr(out, "unexpected eof"));
	assert_null(strstr(out, "errno="));
	/* second: resumed, and the handler still has the certificate */
	assert_int_equal(run("cd '%s' && openssl s_client -connect "
	    "127.0.0.1:%u -CAfile ca.pem -cert client.pem -key client.key "
	    "-sess_in sess.pem -ign_eof < req.txt > s2.txt 2>&1",
	    T.dir, T.port[L_MTLS]), 0);
	out = slurp("s2.txt");
	assert_non_null(strstr(out, "Reused, TLSv1.3"));
	snprintf(want, sizeof(want), "tls=1 resumed=1 fp=%s", fp);
	assert_non_null(strstr(out, want));
	assert_null(strstr(out, "unexpected eof"));
}

static void
test_tls_protocol_policy(void **state)
{
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned long err = 0;
	char out[512];
	static const unsigned char h2[] = "\x02h2";
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	const unsigned char *sel;
	unsigned int sel_len;

	(void)state;
	/* T-09: TLS 1.1 is refused with protocol_version */
	ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0"), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION), 1);
	assert_null(tls_open(ctx, T.port[L_TLS], NULL, &err));
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	SSL_CTX_free(ctx);
	/* ... and the command line agrees */
	assert_true(run("openssl s_client -connect 127.0.0.1:%u -tls1_1 "
	    "-cipher DEFAULT@SECLEVEL=0 < /dev/null > '%s/t11.txt' 2>&1",
	    T.port[L_TLS], T.dir) != 0);
	assert_non_null(strstr(slurp("t11.txt"), "alert protocol version"));
	/* TLS 1.2 without forward secrecy: no shared cipher */
	ctx = SSL_CTX_new(TLS_client_method());
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx,
	    "AES128-GCM-SHA256:AES256-GCM-SHA384"), 1);
	err = 0;
	assert_null(tls_open(ctx, T.port[L_TLS], NULL, &err));
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
	SSL_CTX_free(ctx);

	/* H-13: ALPN h2 only is refused with no_application_protocol */
	ctx = client_ctx(NULL, false);
	assert_int_equal(SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2) - 1), 0);
	err = 0;
	assert_null(tls_open(ctx, T.port[L_TLS], NULL, &err));
	assert_int_equal(ERR_GET_REASON(err),
	    SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
	/* h2 and http/1.1: http/1.1 */
	assert_int_equal(SSL_CTX_set_alpn_protos(ctx, both, sizeof(both) - 1),
	    0);
	ssl = tls_open(ctx, T.port[L_TLS], NULL, NULL);
	assert_non_null(ssl);
	SSL_get0_alpn_selected(ssl, &sel, &sel_len);
	assert_int_equal(sel_len, 8);
	assert_memory_equal(sel, "http/1.1", 8);
	assert_int_equal(SSL_version(ssl), TLS1_3_VERSION);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
	/* no ALPN at all: served */
	SSL_CTX_free(ctx);
	ctx = client_ctx(NULL, false);
	assert_int_equal(tls_request(ctx, T.port[L_TLS], NULL, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
	assert_string_equal(out, "tls=1 resumed=0 fp=none\n");
	SSL_CTX_free(ctx);

	/* T-13: client-initiated renegotiation in TLS 1.2 is refused */
	ctx = SSL_CTX_new(TLS_client_method());
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ssl = tls_open(ctx, T.port[L_TLS], NULL, NULL);
	assert_non_null(ssl);
	assert_int_equal(SSL_renegotiate(ssl), 1);
	ERR_clear_error();
	/* the server answers the new ClientHello with no_renegotiation */
	assert_int_equal(SSL_do_handshake(ssl), -1);
	assert_int_equal(ERR_GET_REASON(ERR_peek_error()),
	    SSL_R_NO_RENEGOTIATION);
	ERR_clear_error();
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void
test_tls_hot_swap(void **state)
{
	SSL_CTX *cctx = client_ctx("client", true), *nctx;
	SSL_SESSION *sess = NULL;
	SSL *ssl;
	uint8_t fp[TLS_FP_LEN];
	char out[512];

	(void)state;
	ssl = tls_open(cctx, T.port[L_SWAP], NULL, NULL);
	assert_non_null(ssl);
	assert_int_equal(tls_cert_fingerprint(SSL_get0_peer_certificate(ssl),
	    fp), 0);
	assert_memory_equal(fp, T.fp_server, TLS_FP_LEN);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
	assert_int_equal(tls_request(cctx, T.port[L_SWAP], NULL, &sess,
	    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
	assert_non_null(sess);

	nctx = tt_server_ctx(T.dir, "server2", "ca.pem", NULL);
	assert_int_equal(srv_listener_set_tls(T.srv, L_SWAP, nctx), 0);
	SSL_CTX_free(nctx);
	assert_int_equal(srv_listener_set_tls(T.srv, L_PLAIN, nctx), -1);

	ssl = tls_open(cctx, T.port[L_SWAP], NULL, NULL);
	assert_non_null(ssl);
	assert_int_equal(tls_cert_fingerprint(SSL_get0_peer_certificate(ssl),
	    fp), 0);
	assert_memory_equal(fp, T.fp_server2, TLS_FP_LEN);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
	/* the old context's sessions are gone with it */
	assert_int_equal(tls_request(cctx, T.port[L_SWAP], sess, NULL,
	    GET_WHOAMI_CLOSE, out, sizeof(out), NULL), 200);
	assert_non_null(strstr(out, "resumed=0"));
	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
}

static void
test_tls_keepalive_and_close_notify(void **state)
{
	SSL_CTX *ctx = client_ctx("client", true);
	SSL *ssl = tls_open(ctx, T.port[L_MTLS], NULL, NULL);
	struct cli c;
	struct resp r;
	int i;

	(void)state;
	assert_non_null(ssl);
	cli_init(&c, SSL_get_fd(ssl), ssl);
	for (i = 0; i < 3; i++) {
		cli_send(&c, LIT("POST /echo HTTP/1.1\r\nHost: a\r\n"
		    "Content-Length: 2\r\n\r\nok"));
		assert_int_equal(cli_resp(&c, &r, false), 200);
		assert_string_equal(r.body, "ok");
		resp_free(&r);
	}
	/* a framing error over TLS: 400, then close_notify */
	cli_send(&c, LIT("GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
	assert_int_equal(cli_resp(&c, &r, false), 400);
	assert_true(r.conn_close);
	resp_free(&r);
	assert_int_equal(cli_fill(&c), 0);
	assert_int_equal(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN,
	    SSL_RECEIVED_SHUTDOWN);
	cli_free(&c);
	SSL_CTX_free(ctx);
}

static void
test_config_errors(void **state)
{
	struct srv_conf c;
	struct net_err e;
	struct tls_server_conf tc;
	char cert[512], key[512], wrongkey[512];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.sc_nlisteners = 1;
	c.sc_listeners[0].sl_addr = "0.0.0.0";
	c.sc_listeners[0].sl_handler = test_handler;
	/* plain HTTP only on loopback unless asked */
	assert_null(srv_new(&c, &e));
	assert_non_null(strstr(e.ne_detail, "non-loopback"));
	c.sc_listeners[0].sl_addr = "localhost";
	assert_null(srv_new(&c, &e));
	assert_non_null(strstr(e.ne_detail, "numeric"));
	c.sc_listeners[0].sl_addr = "127.0.0.1";
	c.sc_workers = MSSP_SRV_MAX_WORKERS + 1;
	assert_null(srv_new(&c, &e));
	c.sc_workers = 1;
	c.sc_max_conns = MSSP_SRV_MAX_CONNS + 1;
	assert_null(srv_new(&c, &e));
	c.sc_max_conns = 0;
	c.sc_listeners[0].sl_max_body = MSSP_HTTP_MAX_BODY + 1;
	assert_null(srv_new(&c, &e));
	c.sc_listeners[0].sl_max_body = 0;
	{
		/* created and freed without ever running: clean */
		struct srv *s = srv_new(&c, &e);

		assert_non_null(s);
		assert_true(srv_listener_port(s, 0) != 0);
		assert_int_equal(srv_listener_port(s, 1), 0);
		srv_free(s);
	}
	/* TLS: the key must match the certificate */
	path_of(cert, sizeof(cert), "server.pem");
	path_of(key, sizeof(key), "server.key");
	path_of(wrongkey, sizeof(wrongkey), "client.key");
	memset(&tc, 0, sizeof(tc));
	tc.ts_cert_file = cert;
	tc.ts_key_file = wrongkey;
	assert_null(tls_server_ctx_new(&tc, &e));
	print_message("  wrong key: %s\n", e.ne_detail);
	assert_non_null(strstr(e.ne_detail, "private key"));
	tc.ts_key_file = key;
	tc.ts_crl_file = cert;
	assert_null(tls_server_ctx_new(&tc, &e));
	tc.ts_crl_file = NULL;
	tc.ts_client_ca_file = "/nonexistent";
	assert_null(tls_server_ctx_new(&tc, &e));
	assert_non_null(strstr(e.ne_detail, "cannot open"));
	tc.ts_client_ca_file = key;  /* a key is no trust anchor */
	assert_null(tls_server_ctx_new(&tc, &e));
	tc.ts_client_ca_file = NULL;
	tc.ts_verify_depth = MSSP_TLS_MAX_VERIFY_DEPTH + 1;
	assert_null(tls_server_ctx_new(&tc, &e));
}

static _Atomic int loop_hits, loop_hits_inside;
static struct loop *loop_under_test;

static void
loop_hit(void *arg)
{
	(void)arg;
	atomic_fetch_add(&loop_hits, 1);
	if (loop_in_thread(loop_under_test))
		atomic_fetch_add(&loop_hits_inside, 1);
}

static void
test_loop_call(void **state)
{
	struct loop *l = loop_new();
	uint64_t t0;
	int i;

	(void)state;
	assert_non_null(l);
	loop_under_test = l;
	atomic_store(&loop_hits, 0);
	atomic_store(&loop_hits_inside, 0);
	/* queued before the start: they run once the loop runs */
	for (i = 0; i < 100; i++)
		assert_int_equal(loop_call(l, loop_hit, NULL), 0);
	assert_int_equal(atomic_load(&loop_hits), 0);
	assert_int_equal(loop_start(l), 0);
	assert_int_equal(loop_start(l), -1);
	for (i = 0; i < 100; i++)
		assert_int_equal(loop_call(l, loop_hit, NULL), 0);
	t0 = now_ms();
	while (atomic_load(&loop_hits) < 200 && now_ms() - t0 < 3000)
		usleep(1000);
	assert_int_equal(atomic_load(&loop_hits), 200);
	assert_int_equal(atomic_load(&loop_hits_inside), 200);
	assert_false(loop_in_thread(l));
	loop_stop(l);
	assert_int_equal(loop_call(l, loop_hit, NULL), -1);
	loop_free(l);
	/* never started: queued calls still run (and free their args) */
	l = loop_new();
	assert_non_null(l);
	assert_int_equal(loop_call(l, loop_hit, NULL), 0);
	loop_free(l);
	assert_int_equal(atomic_load(&loop_hits), 201);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_get_post),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_framing_errors),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_handler_answers),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_slow_body),
		cmocka_unit_test(test_idle_and_handshake_deadlines),
		cmocka_unit_test(test_write_timeout),
		cmocka_unit_test(test_conn_caps),
		cmocka_unit_test(test_park_cap),
		cmocka_unit_test(test_park_async_reply),
		cmocka_unit_test(test_park_cancel_on_close),
		cmocka_unit_test(test_park_deadline),
		cmocka_unit_test(test_park_many_tls),
		cmocka_unit_test(test_park_many),
		cmocka_unit_test(test_mtls_curl),
		cmocka_unit_test(test_mtls_refusals),
		cmocka_unit_test(test_tls_resumption_inprocess),
		cmocka_unit_test(test_tls_resumption_s_client),
		cmocka_unit_test(test_tls_protocol_policy),
		cmocka_unit_test(test_tls_hot_swap),
		cmocka_unit_test(test_tls_keepalive_and_close_notify),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_stop_cancels_parked),
		cmocka_unit_test(test_loop_call),
	};

	if (argc == 5 && strcmp(argv[1], "--park-client") == 0)
		return park_client_main((uint16_t)strtoul(argv[2], NULL, 10),
		    (unsigned)strtoul(argv[3], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "--park-client-tls") == 0)
		return park_client_tls_main((uint16_t)strtoul(argv[2], NULL, 10),
		    (unsigned)strtoul(argv[3], NULL, 10), argv[4]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
