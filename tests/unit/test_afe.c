/*
 * test_afe.c - the app front end on loopback, with real parts only: a TLS
 * server (net/server.h) whose listener is afe_handler, a worker pool whose
 * threads each hold their own handle on a real SQLite store (the devices
 * and their keys are put there by the test), and two kinds of WebSocket
 * client:
 *   - net/wsclient.h on its own loop thread, as mss-phone uses it;
 *   - a synchronous client (blocking OpenSSL socket + net/ws.h framing)
 *     that sees the exact close code the AFE sends (4001, 4002, 1008...)
 *     and can stop reading (to make the AFE's idle deadline fire).
 * The device signs the challenge with e2e_auth_sign, as the app does.
 *
 * Three nodes: N (timeouts lowered only for the auth deadline) for most
 * cases, K (fast pings, short idle deadline) for keep-alive, idle close
 * and afe_stop, and L (tight activation attempt limits).
 *
 * Device activation runs against a real struct reg (roles/reg.h) with its
 * audit log, on N; K has no reg (activation refused).  The phone's side
 * (transcript, MACs, signature, binding) is computed here with pki/e2e.h
 * as mss-phone does it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/loop.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/ws.h"
#include "net/wsclient.h"
#include "pki/e2e.h"
#include "roles/afe.h"
#include "roles/node.h"
#include "roles/push.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/pool.h"

#include "testtls.h"

#define MSISDN "+41790000001"
#define ACT_MSISDN "+41790000009" /* activations: a user without devices */
#define DEV_OK "dev-ok"
#define DEV_OFF "dev-disabled"
#define DEV_B "dev-b"
#define MAX_EV 64

/* ---- what the afe callbacks saw (worker threads) ----------------------- */

enum ev_kind { EV_ONLINE = 1, EV_BLOB, EV_OFFLINE };

struct ev {
	enum ev_kind e_kind;
	char e_dev[MSSP_KEYSTORE_MAX_ID + 1];
	uint64_t e_session;
	uint8_t e_data[256];
	size_t e_len;
};

struct node {
	struct srv *srv;
	struct afe *afe;
	uint16_t port;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ev ev[MAX_EV];
	size_t nev;
	char dir[256];
	char uri[300];
	EVP_PKEY *dev_key;   /* registered key of DEV_OK, DEV_OFF, DEV_B */
	EVP_PKEY *other_key; /* a key no device has                      */
	SSL_CTX *server_ctx, *client_ctx;
	struct pool *pool;
	struct push_provider *push;
	int udp_fd;	     /* the "phone" end of the local push        */
	struct node n, k, l;
	struct loop *cloop;  /* the wsclient's loop thread               */
	struct audit *audit; /* activation: reg's audit log              */
	struct reg *reg;     /* N decides activations with it; K has none */
} T;

static void
ev_add(enum ev_kind kind, const char *dev, uint64_t session, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&T.mu);
	if (T.nev < MAX_EV) {
		struct ev *e = &T.ev[T.nev++];

		memset(e, 0, sizeof(*e));
		e->e_kind = kind;
		snprintf(e->e_dev, sizeof(e->e_dev), "%s", dev);
		e->e_session = session;
		if (data != NULL) {
			e->e_len = len;
			memcpy(e->e_data, data, len < sizeof(e->e_data) ? len : sizeof(e->e_data));
		}
	}
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

static void
on_online(void *arg, const char *dev, uint64_t session, const uint8_t nonce[E2E_NONCE_LEN])
{
	(void)arg;
	ev_add(EV_ONLINE, dev, session, nonce, E2E_NONCE_LEN);
}

static void
on_blob(void *arg, const char *dev, uint64_t session, const uint8_t *blob, size_t len)
{
	(void)arg;
	ev_add(EV_BLOB, dev, session, blob, len);
}

static void
on_offline(void *arg, const char *dev, uint64_t session)
{
	(void)arg;
	ev_add(EV_OFFLINE, dev, session, NULL, 0);
}

static const struct afe_ops test_ops = { on_online, on_blob, on_offline };

static void
ev_reset(void)
{
	pthread_mutex_lock(&T.mu);
	T.nev = 0;
	pthread_mutex_unlock(&T.mu);
}

/* Wait for an event of `kind` for `dev` (and `session` unless 0); copy it
 * out and remove it.  False on timeout. */
static bool
ev_wait(enum ev_kind kind, const char *dev, uint64_t session, unsigned ms, struct ev *out)
{
	struct timespec ts;
	bool found = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&T.mu);
	for (;;) {
		for (size_t i = 0; i < T.nev && !found; i++) {
			struct ev *e = &T.ev[i];

			if (e->e_kind == kind && strcmp(e->e_dev, dev) == 0 &&
			    (session == 0 || e->e_session == session)) {
				if (out != NULL)
					*out = *e;
				memmove(e, e + 1, (T.nev - i - 1) * sizeof(*e));
				T.nev--;
				found = true;
			}
		}
		if (found || pthread_cond_timedwait(&T.cv, &T.mu, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&T.mu);
	return found;
}

static size_t
ev_count(enum ev_kind kind)
{
	size_t n = 0;

	pthread_mutex_lock(&T.mu);
	for (size_t i = 0; i < T.nev; i++)
		n += T.ev[i].e_kind == kind;
	pthread_mutex_unlock(&T.mu);
	return n;
}

/* ---- the store and the pool ------------------------------------------- */

static void
put_device(struct store *s, const char *id, EVP_PKEY *key, int state)
{
	struct store_device d;
	struct store_err err;
	unsigned char *der = NULL;
	size_t len = 0;
	struct pki_err perr;

	memset(&d, 0, sizeof(d));
	snprintf(d.sd_device_id, sizeof(d.sd_device_id), "%s", id);
	snprintf(d.sd_msisdn, sizeof(d.sd_msisdn), "%s", MSISDN);
	assert_int_equal(e2e_spki_der(key, &der, &len, &perr), 0);
	assert_true(len <= sizeof(d.sd_auth_spki));
	memcpy(d.sd_auth_spki, der, len);
	d.sd_auth_spki_len = len;
	OPENSSL_free(der);
	assert_int_equal(RAND_bytes(d.sd_e2e_key, sizeof(d.sd_e2e_key)), 1);
	d.sd_state = state;
	if (store_device_put(s, &d, (int64_t)time(NULL) * 1000, &err) != 0)
		fail_msg("device put: %d %s", err.status, err.detail);
}

static void *
pool_init(void *arg, unsigned idx)
{
	struct node_worker *nw = calloc(1, sizeof(*nw));
	struct store_err err;

	(void)arg;
	if (nw == NULL)
		return NULL;
	nw->nw_idx = idx;
	nw->nw_store = store_open(T.uri, 0, &err);
	if (nw->nw_store == NULL) {
		free(nw);
		return NULL;
	}
	return nw;
}

static void
pool_fini(void *arg, void *ctx)
{
	struct node_worker *nw = ctx;

	(void)arg;
	store_close(nw->nw_store);
	free(nw);
}

/* ---- nodes ------------------------------------------------------------- */

static void
node_start(struct node *n, unsigned auth_ms, unsigned ping_ms, unsigned idle_ms, struct reg *r,
	   unsigned act_per_ip, unsigned act_per_msisdn)
{
	struct srv_conf conf;
	struct net_err e;

	n->afe = afe_new(T.pool, &test_ops, NULL, T.push);
	assert_non_null(n->afe);
	afe_set_timeouts(n->afe, auth_ms, ping_ms, idle_ms);
	afe_set_act_limits(n->afe, act_per_ip, act_per_msisdn);
	afe_set_reg(n->afe, r);
	memset(&conf, 0, sizeof(conf));
	conf.sc_workers = 2;
	conf.sc_nlisteners = 1;
	conf.sc_listeners[0].sl_name = "afe";
	conf.sc_listeners[0].sl_addr = "127.0.0.1";
	conf.sc_listeners[0].sl_tls = T.server_ctx;
	conf.sc_listeners[0].sl_handler = afe_handler;
	conf.sc_listeners[0].sl_arg = n->afe;
	n->srv = srv_new(&conf, &e);
	if (n->srv == NULL)
		fail_msg("srv_new: %s", e.ne_detail);
	afe_attach(n->afe, n->srv);
	n->port = srv_listener_port(n->srv, 0);
	assert_int_equal(srv_start(n->srv, &e), 0);
}

static void
node_stop(struct node *n)
{
	if (n->afe != NULL)
		afe_stop(n->afe);
	srv_free(n->srv);
	afe_free(n->afe);
	memset(n, 0, sizeof(*n));
}

static int
group_setup(void **state)
{
	struct store *s;
	struct store_err err;
	struct store_user u;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);

	(void)state;
	pthread_mutex_init(&T.mu, NULL);
	pthread_cond_init(&T.cv, NULL);
	assert_int_equal(td_make(T.dir, sizeof(T.dir), "test_afe"), 0);
	snprintf(T.uri, sizeof(T.uri), "sqlite:%s/t.db", T.dir);
	/* PKI for the TLS listener (testtls.h) */
	tt_make_server_pki(T.dir, "afe test CA");
	T.server_ctx = tt_server_ctx(T.dir, "server", NULL, NULL);
	T.client_ctx = tt_client_ctx(T.dir, "ca.pem", NULL, true);

	T.dev_key = EVP_EC_gen("P-256");
	T.other_key = EVP_EC_gen("P-256");
	assert_non_null(T.dev_key);
	assert_non_null(T.other_key);
	s = store_open(T.uri, STORE_OPEN_CREATE, &err);
	if (s == NULL)
		fail_msg("store_open: %s", err.detail);
	memset(&u, 0, sizeof(u));
	snprintf(u.su_msisdn, sizeof(u.su_msisdn), "%s", MSISDN);
	u.su_state = STORE_USER_ACTIVE;
	assert_int_equal(store_user_put(s, &u, (int64_t)time(NULL) * 1000, &err), 0);
	put_device(s, DEV_OK, T.dev_key, 1);
	put_device(s, DEV_OFF, T.dev_key, 2);
	put_device(s, DEV_B, T.dev_key, 1);
	snprintf(u.su_msisdn, sizeof(u.su_msisdn), "%s", ACT_MSISDN);
	assert_int_equal(store_user_put(s, &u, (int64_t)time(NULL) * 1000, &err), 0);
	store_close(s);

	T.pool = pool_new(2, 0, pool_init, pool_fini, NULL);
	assert_non_null(T.pool);

	/* the registration module, with its audit log (unsigned heads) */
	{
		char adir[300];
		struct reg_conf rc;
		struct reg_err re;

		snprintf(adir, sizeof(adir), "%s/audit", T.dir);
		assert_int_equal(mkdir(adir, 0700), 0);
		T.audit = audit_open(adir, "node1", NULL, &err);
		if (T.audit == NULL)
			fail_msg("audit_open: %d %s", err.status, err.detail);
		memset(&rc, 0, sizeof(rc));
		rc.rc_node = "node1";
		rc.rc_data_dir = T.dir;
		rc.rc_audit = T.audit;
		T.reg = reg_new(&rc, &re);
		if (T.reg == NULL)
			fail_msg("reg_new: %d %s", re.status, re.msg);
	}

	/* the phone's end of the local push provider */
	T.udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(T.udp_fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(T.udp_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(T.udp_fd, (struct sockaddr *)&sa, &salen), 0);
	T.push = push_local_new("127.0.0.1", ntohs(sa.sin_port));
	assert_non_null(T.push);

	/* N: only the auth deadline is short (the auth-timeout case); the
	 * activation limits out of the way of the many attempts below */
	node_start(&T.n, 1500, 0, 0, T.reg, 1000, 1000);
	/* K: pings every 100 ms, idle close after 600 ms; no activation */
	node_start(&T.k, 1500, 100, 600, NULL, 0, 0);
	/* L: tight activation limits (8 per address, 2 per MSISDN) */
	node_start(&T.l, 1500, 0, 0, T.reg, 8, 2);

	T.cloop = loop_new();
	assert_non_null(T.cloop);
	assert_int_equal(loop_start(T.cloop), 0);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	loop_free(T.cloop);
	node_stop(&T.n);
	node_stop(&T.k);
	node_stop(&T.l);
	pool_free(T.pool);
	reg_free(T.reg);
	audit_close(T.audit);
	push_free(T.push);
	close(T.udp_fd);
	SSL_CTX_free(T.server_ctx);
	SSL_CTX_free(T.client_ctx);
	EVP_PKEY_free(T.dev_key);
	EVP_PKEY_free(T.other_key);
	if (td_remove(T.dir) != 0)
		fprintf(stderr, "cannot remove %s\n", T.dir);
	return 0;
}

/* ---- the synchronous client (blocking TLS + ws.h) ----------------------- */

#define RC_MAX_MSG 16

struct rc {
	int fd;
	SSL *ssl;
	struct ws *ws;
	char *msg[RC_MAX_MSG];
	size_t nmsg;
	bool closed;	/* wi_closed ran, or EOF */
	uint16_t code;
	int status;	/* HTTP status of the upgrade answer */
	char head[2048];
};

static int
rc_wi_write(void *arg, const uint8_t *data, size_t len)
{
	struct rc *c = arg;

	while (len > 0) {
		int n = SSL_write(c->ssl, data, (int)len);

		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
rc_wi_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	struct rc *c = arg;

	(void)binary;
	if (c->nmsg < RC_MAX_MSG)
		c->msg[c->nmsg++] = strndup((const char *)msg, len);
}

static void
rc_wi_closed(void *arg, uint16_t code)
{
	struct rc *c = arg;

	c->closed = true;
	c->code = code;
}

static const struct ws_io rc_io = { rc_wi_write, rc_wi_message, rc_wi_closed };

/* TLS to the node, send `req` (NULL: a proper upgrade of `path`), read
 * the answer's head.  Returns the HTTP status. */
static int
rc_open_raw(struct rc *c, uint16_t port, const char *req)
{
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	c->fd = tt_tcp_connect(port, NULL);
	c->ssl = SSL_new(T.client_ctx);
	assert_non_null(c->ssl);
	assert_int_equal(tls_client_prepare(c->ssl, "localhost"), 0);
	SSL_set_fd(c->ssl, c->fd);
	assert_int_equal(SSL_connect(c->ssl), 1);
	assert_int_equal(SSL_write(c->ssl, req, (int)strlen(req)), (int)strlen(req));
	/* byte by byte up to the blank line: what follows is WebSocket */
	while (n + 1 < sizeof(c->head)) {
		if (SSL_read(c->ssl, c->head + n, 1) != 1)
			break;
		n++;
		if (n >= 4 && memcmp(c->head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	c->head[n] = '\0';
	if (sscanf(c->head, "HTTP/1.1 %d", &c->status) != 1)
		c->status = -1;
	return c->status;
}

static void
rc_open(struct rc *c, uint16_t port)
{
	char key[WS_CLIENT_KEY_LEN + 1], req[512];

	assert_int_equal(ws_client_key(key), 0);
	snprintf(req, sizeof(req),
		 "GET /app/v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n",
		 key);
	assert_int_equal(rc_open_raw(c, port, req), 101);
	c->ws = ws_new(true, &rc_io, c, 0);
	assert_non_null(c->ws);
}

static void
rc_free(struct rc *c)
{
	for (size_t i = 0; i < c->nmsg; i++)
		free(c->msg[i]);
	ws_free(c->ws);
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Read and feed for up to `ms`, until a message is queued or the ws is
 * closed (stop_on_msg), or until the time is up. */
static void
rc_pump(struct rc *c, unsigned ms, bool stop_on_msg)
{
	uint64_t end = loop_now_ms() + ms;
	uint8_t buf[16384];

	while (!c->closed && !(stop_on_msg && c->nmsg > 0)) {
		uint64_t now = loop_now_ms();
		struct pollfd p = { c->fd, POLLIN, 0 };
		int n;

		if (now >= end)
			return;
		if (SSL_pending(c->ssl) == 0 && poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0) {
			c->closed = true;
			if (c->code == 0)
				c->code = 1006; /* transport gone, no close frame */
			return;
		}
		ws_feed(c->ws, buf, (size_t)n);
	}
}

/* The next message (caller frees), or NULL after `ms`. */
static char *
rc_next(struct rc *c, unsigned ms)
{
	char *m;

	rc_pump(c, ms, true);
	if (c->nmsg == 0)
		return NULL;
	m = c->msg[0];
	memmove(c->msg, c->msg + 1, (c->nmsg - 1) * sizeof(c->msg[0]));
	c->nmsg--;
	return m;
}

/* Wait for the close; returns the code (0: still open after `ms`). */
static uint16_t
rc_wait_close(struct rc *c, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;

	while (!c->closed && loop_now_ms() < end) {
		rc_pump(c, (unsigned)(end - loop_now_ms()), false);
	}
	return c->closed ? c->code : 0;
}

static void
rc_send(struct rc *c, const char *text)
{
	assert_int_equal(ws_send(c->ws, (const uint8_t *)text, strlen(text), false), 0);
}

/* ---- protocol helpers ---------------------------------------------------- */

static json_t *
parse_obj(const char *msg, const char *type)
{
	json_t *j = json_loads(msg, 0, NULL);

	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "t")), type);
	return j;
}

static size_t
b64dec(const char *s, uint8_t *out, size_t cap)
{
	size_t len = strlen(s), pad = 0;
	int n;

	assert_true(len % 4 == 0 && len / 4 * 3 <= cap);
	if (len > 0 && s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	assert_true(n >= 0);
	return (size_t)n - pad;
}

/* m (freed here) is an "e2e" message {"t","b"} whose "b" carries exactly
 * data[0..len). */
static void
expect_e2e(char *m, const uint8_t *data, size_t len)
{
	uint8_t got[256];
	json_t *j;

	assert_non_null(m);
	j = parse_obj(m, "e2e");
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(b64dec(json_string_value(json_object_get(j, "b")), got, sizeof(got)), len);
	assert_memory_equal(got, data, len);
	json_decref(j);
	free(m);
}

static char *
b64enc(const uint8_t *d, size_t len)
{
	char *s = malloc((len + 2) / 3 * 4 + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, d, (int)len);
	return s;
}

/* The challenge from a {"t":"challenge"} message (32 bytes). */
static void
get_challenge(const char *msg, uint8_t ch[E2E_CHALLENGE_LEN])
{
	json_t *j = parse_obj(msg, "challenge");
	uint8_t buf[64];

	assert_int_equal(b64dec(json_string_value(json_object_get(j, "c")), buf, sizeof(buf)),
			 E2E_CHALLENGE_LEN);
	memcpy(ch, buf, E2E_CHALLENGE_LEN);
	json_decref(j);
}

/* {"t":"auth",...} signed with `key` for `dev`; nonce_out gets the nonce. */
static char *
auth_msg(const char *dev, EVP_PKEY *key, const uint8_t ch[E2E_CHALLENGE_LEN],
	 uint8_t nonce_out[E2E_NONCE_LEN])
{
	unsigned char *sig = NULL;
	size_t siglen = 0;
	struct pki_err perr;
	char *n64, *s64, *out;
	json_t *j;

	assert_int_equal(RAND_bytes(nonce_out, E2E_NONCE_LEN), 1);
	assert_int_equal(e2e_auth_sign(key, dev, ch, nonce_out, &sig, &siglen, &perr), 0);
	n64 = b64enc(nonce_out, E2E_NONCE_LEN);
	s64 = b64enc(sig, siglen);
	j = json_pack("{s:s,s:s,s:s,s:s}", "t", "auth", "d", dev, "n", n64, "s", s64);
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(n64);
	free(s64);
	OPENSSL_free(sig);
	return out;
}

static char *
e2e_msg(const uint8_t *blob, size_t len)
{
	char *b = b64enc(blob, len), *out;
	json_t *j = json_pack("{s:s,s:s}", "t", "e2e", "b", b);

	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(b);
	return out;
}

/* Connect, authenticate as `dev`, expect "ready" and ao_online; returns
 * the session id. */
static uint64_t
rc_login(struct rc *c, struct node *n, const char *dev)
{
	uint8_t ch[E2E_CHALLENGE_LEN], nonce[E2E_NONCE_LEN];
	char *m, *a;
	struct ev e;
	json_t *j;

	rc_open(c, n->port);
	m = rc_next(c, 3000);
	assert_non_null(m);
	get_challenge(m, ch);
	free(m);
	a = auth_msg(dev, T.dev_key, ch, nonce);
	rc_send(c, a);
	free(a);
	m = rc_next(c, 3000);
	assert_non_null(m);
	j = parse_obj(m, "ready");
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);
	free(m);
	assert_true(ev_wait(EV_ONLINE, dev, 0, 3000, &e));
	assert_int_equal(e.e_len, E2E_NONCE_LEN);
	assert_memory_equal(e.e_data, nonce, E2E_NONCE_LEN); /* the app's nonce */
	assert_true(e.e_session != 0);
	return e.e_session;
}

/* Connect, send `text` instead of a proper auth (or after the challenge),
 * and return the close code. */
static uint16_t
rc_refused(struct node *n, const char *dev, EVP_PKEY *key, const char *raw)
{
	struct rc c;
	uint8_t ch[E2E_CHALLENGE_LEN], nonce[E2E_NONCE_LEN];
	char *m, *a;
	uint16_t code;

	rc_open(&c, n->port);
	m = rc_next(&c, 3000);
	assert_non_null(m);
	get_challenge(m, ch);
	free(m);
	a = raw != NULL ? strdup(raw) : auth_msg(dev, key, ch, nonce);
	rc_send(&c, a);
	free(a);
	code = rc_wait_close(&c, 3000);
	assert_int_equal(c.nmsg, 0); /* never "ready" */
	rc_free(&c);
	return code;
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_http_answers(void **state)
{
	struct rc c;

	(void)state;
	assert_int_equal(rc_open_raw(&c, T.n.port, "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n"),
			 404);
	rc_free(&c);
	assert_int_equal(rc_open_raw(&c, T.n.port,
				     "POST /app/v1/ws HTTP/1.1\r\nHost: localhost\r\n"
				     "Content-Length: 0\r\n\r\n"),
			 405);
	assert_non_null(strstr(c.head, "\r\nAllow: GET\r\n"));
	rc_free(&c);
	/* the right path without the upgrade */
	assert_int_equal(rc_open_raw(&c, T.n.port, "GET /app/v1/ws HTTP/1.1\r\nHost: localhost\r\n\r\n"),
			 400);
	rc_free(&c);
	/* another WebSocket version */
	assert_int_equal(rc_open_raw(&c, T.n.port,
				     "GET /app/v1/ws HTTP/1.1\r\nHost: localhost\r\n"
				     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				     "Sec-WebSocket-Version: 8\r\n\r\n"),
			 426);
	assert_non_null(strstr(c.head, "Sec-WebSocket-Version: 13"));
	rc_free(&c);
	/* the upgrade: 101 with the accept value of RFC 6455 1.3's example */
	assert_int_equal(rc_open_raw(&c, T.n.port,
				     "GET /app/v1/ws?v=1 HTTP/1.1\r\nHost: localhost\r\n"
				     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				     "Sec-WebSocket-Version: 13\r\n\r\n"),
			 101);
	assert_non_null(strcasestr(c.head, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strstr(c.head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	rc_free(&c);
}

static void
test_auth_and_relay(void **state)
{
	struct rc c;
	uint64_t session;
	struct afe_stats st0, st1;
	uint8_t blob[200];
	char *m;
	struct ev e;

	(void)state;
	ev_reset();
	afe_get_stats(T.n.afe, &st0);
	assert_false(afe_online(T.n.afe, DEV_OK));
	session = rc_login(&c, &T.n, DEV_OK);
	assert_true(afe_online(T.n.afe, DEV_OK));

	/* HomeMSSP -> app: by session, then "whatever connection" (0) */
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(afe_send(T.n.afe, DEV_OK, session, blob, sizeof(blob)), 0);
	assert_int_equal(afe_send(T.n.afe, DEV_OK, 0, blob, 17), 0);
	expect_e2e(rc_next(&c, 3000), blob, sizeof(blob));
	expect_e2e(rc_next(&c, 3000), blob, 17);

	/* app -> HomeMSSP */
	m = e2e_msg(blob + 3, 100);
	rc_send(&c, m);
	free(m);
	assert_true(ev_wait(EV_BLOB, DEV_OK, session, 3000, &e));
	assert_int_equal(e.e_len, 100);
	assert_memory_equal(e.e_data, blob + 3, 100);

	/* the app leaves: offline, and sends fail */
	ws_close(c.ws, 1000, NULL);
	assert_int_equal(rc_wait_close(&c, 3000), 1000);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, session, 3000, NULL));
	assert_false(afe_online(T.n.afe, DEV_OK));
	assert_int_equal(afe_send(T.n.afe, DEV_OK, session, blob, 10), -1);
	rc_free(&c);

	afe_get_stats(T.n.afe, &st1);
	assert_int_equal(st1.as_auth_ok - st0.as_auth_ok, 1);
	assert_int_equal(st1.as_blobs_out - st0.as_blobs_out, 2);
	assert_int_equal(st1.as_blobs_in - st0.as_blobs_in, 1);
	assert_int_equal(st1.as_send_offline - st0.as_send_offline, 1);
	assert_int_equal(st1.as_online, 0);
}

static void
test_auth_refused(void **state)
{
	struct afe_stats st0, st1;

	(void)state;
	ev_reset();
	afe_get_stats(T.n.afe, &st0);
	/* a valid signature by a key that is not the device's */
	assert_int_equal(rc_refused(&T.n, DEV_OK, T.other_key, NULL), 4001);
	/* a device the store does not know */
	assert_int_equal(rc_refused(&T.n, "dev-unknown", T.dev_key, NULL), 4001);
	/* a disabled device, with its right key */
	assert_int_equal(rc_refused(&T.n, DEV_OFF, T.dev_key, NULL), 4001);
	/* malformed auth: short nonce, bad base64, a bad device id, extra
	 * member, not JSON */
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"auth\",\"d\":\"dev-ok\",\"n\":\"AAAA\",\"s\":\"AAAA\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"auth\",\"d\":\"dev-ok\","
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"s\":\"A*AA\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"auth\",\"d\":\"dev ok\","
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"s\":\"AAAA\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"auth\",\"d\":\"dev-ok\",\"x\":1,"
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"s\":\"AAAA\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL, "hello"), 4001);
	/* a blob before "ready": the protocol is broken */
	assert_int_equal(rc_refused(&T.n, NULL, NULL, "{\"t\":\"e2e\",\"b\":\"AAAA\"}"), 1008);
	afe_get_stats(T.n.afe, &st1);
	assert_int_equal(st1.as_auth_failed - st0.as_auth_failed, 8);
	assert_int_equal(st1.as_auth_ok, st0.as_auth_ok);
	assert_int_equal(ev_count(EV_ONLINE), 0);
	assert_false(afe_online(T.n.afe, DEV_OK));
}

static void
test_protocol_after_ready(void **state)
{
	struct rc c;
	uint64_t session;

	(void)state;
	ev_reset();
	/* a second auth on an authenticated connection */
	session = rc_login(&c, &T.n, DEV_OK);
	rc_send(&c, "{\"t\":\"auth\",\"d\":\"dev-ok\",\"n\":\"AAAA\",\"s\":\"AAAA\"}");
	assert_int_equal(rc_wait_close(&c, 3000), 1008);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, session, 3000, NULL));
	rc_free(&c);
	/* a blob that is not base64 */
	session = rc_login(&c, &T.n, DEV_OK);
	rc_send(&c, "{\"t\":\"e2e\",\"b\":\"AB=C\"}");
	assert_int_equal(rc_wait_close(&c, 3000), 1008);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, session, 3000, NULL));
	assert_int_equal(ev_count(EV_BLOB), 0);
	rc_free(&c);
}

static void
test_replace(void **state)
{
	struct rc a, b;
	uint64_t s1, s2;
	uint8_t blob[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	ev_reset();
	s1 = rc_login(&a, &T.n, DEV_B);
	s2 = rc_login(&b, &T.n, DEV_B);
	assert_true(s2 != s1);
	/* the older connection is closed with 4002 and goes offline */
	assert_int_equal(rc_wait_close(&a, 3000), 4002);
	assert_true(ev_wait(EV_OFFLINE, DEV_B, s1, 3000, NULL));
	/* ... without unregistering its successor */
	assert_true(afe_online(T.n.afe, DEV_B));
	assert_int_equal(afe_send(T.n.afe, DEV_B, s1, blob, sizeof(blob)), -1);
	assert_int_equal(afe_send(T.n.afe, DEV_B, s2, blob, sizeof(blob)), 0);
	expect_e2e(rc_next(&b, 3000), blob, sizeof(blob));
	rc_free(&a);
	rc_free(&b); /* no close frame: the transport just goes */
	assert_true(ev_wait(EV_OFFLINE, DEV_B, s2, 3000, NULL));
	assert_false(afe_online(T.n.afe, DEV_B));
}

static void
test_send_offline(void **state)
{
	uint8_t blob[4] = { 9, 9, 9, 9 };
	struct afe_stats st0, st1;

	(void)state;
	afe_get_stats(T.n.afe, &st0);
	assert_int_equal(afe_send(T.n.afe, "dev-nobody", 0, blob, sizeof(blob)), -1);
	assert_int_equal(afe_send(T.n.afe, DEV_OK, 0, blob, sizeof(blob)), -1);
	assert_int_equal(afe_send(T.n.afe, DEV_OK, 0, blob, 0), -1);
	afe_get_stats(T.n.afe, &st1);
	assert_int_equal(st1.as_send_offline - st0.as_send_offline, 2);
}

static void
test_auth_timeout(void **state)
{
	struct rc c;
	char *m;
	uint64_t t0;

	(void)state;
	rc_open(&c, T.n.port);
	m = rc_next(&c, 3000);
	assert_non_null(m);
	free(m);
	t0 = loop_now_ms();
	assert_int_equal(rc_wait_close(&c, 5000), 4001);
	/* the deadline runs from the upgrade: 1500 ms */
	assert_true(loop_now_ms() - t0 >= 1200);
	rc_free(&c);
}

static void
test_keepalive_and_idle(void **state)
{
	struct rc c;
	uint64_t session;

	(void)state;
	ev_reset();
	session = rc_login(&c, &T.k, DEV_OK);
	/* answering the 100 ms pings keeps it open well past 600 ms idle */
	rc_pump(&c, 1500, false);
	assert_false(c.closed);
	assert_true(afe_online(T.k.afe, DEV_OK));
	/* a phone that stops reading (so never answers a ping) is closed */
	usleep(1500 * 1000);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, session, 3000, NULL));
	assert_false(afe_online(T.k.afe, DEV_OK));
	assert_true(rc_wait_close(&c, 3000) != 0);
	rc_free(&c);
}

/* ---- wsclient.h (mss-phone's client) on its own loop thread --------------- */

struct wc {
	struct wsc *c;
	bool open, closed;
	char *msg[RC_MAX_MSG];
	size_t nmsg;
	struct node *node;
	char *out; /* message to send (loop thread frees) */
};

static void
wc_on_open(struct wsc *c, void *arg)
{
	struct wc *w = arg;

	(void)c;
	pthread_mutex_lock(&T.mu);
	w->open = true;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

static void
wc_on_message(struct wsc *c, void *arg, const uint8_t *msg, size_t len)
{
	struct wc *w = arg;

	(void)c;
	pthread_mutex_lock(&T.mu);
	if (w->nmsg < RC_MAX_MSG)
		w->msg[w->nmsg++] = strndup((const char *)msg, len);
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

static void
wc_on_closed(struct wsc *c, void *arg, const char *why)
{
	struct wc *w = arg;

	(void)c;
	(void)why;
	pthread_mutex_lock(&T.mu);
	w->closed = true;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

static const struct wsc_ops wc_ops = { wc_on_open, wc_on_message, wc_on_closed };

static void
wc_connect_run(void *arg)
{
	struct wc *w = arg;
	struct wsc_conf conf = { 0 };
	struct net_err e;

	conf.wc_addr = "127.0.0.1";
	conf.wc_port = w->node->port;
	conf.wc_host = "localhost";
	conf.wc_path = "/app/v1/ws";
	conf.wc_tls = T.client_ctx;
	w->c = wsc_connect(loop_base(T.cloop), &conf, &wc_ops, w, &e);
	if (w->c == NULL)
		wc_on_closed(NULL, w, "connect");
}

static void
wc_send_run(void *arg)
{
	struct wc *w = arg;

	if (wsc_send(w->c, (const uint8_t *)w->out, strlen(w->out)) != 0)
		fprintf(stderr, "wsc_send failed\n");
	free(w->out);
	w->out = NULL;
}

static void
wc_free_run(void *arg)
{
	struct wc *w = arg;

	wsc_free(w->c);
	pthread_mutex_lock(&T.mu);
	w->c = NULL;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
}

/* Wait (under T.mu) until *flag or a message; false on timeout. */
static bool
wc_wait(struct wc *w, bool *flag, unsigned ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000 + 1;
	pthread_mutex_lock(&T.mu);
	while (!(flag != NULL ? *flag : w->nmsg > 0) && !w->closed)
		if (pthread_cond_timedwait(&T.cv, &T.mu, &ts) != 0)
			break;
	ok = flag != NULL ? *flag : w->nmsg > 0;
	pthread_mutex_unlock(&T.mu);
	return ok;
}

static char *
wc_next(struct wc *w, unsigned ms)
{
	char *m = NULL;

	if (!wc_wait(w, NULL, ms))
		return NULL;
	pthread_mutex_lock(&T.mu);
	m = w->msg[0];
	memmove(w->msg, w->msg + 1, (w->nmsg - 1) * sizeof(w->msg[0]));
	w->nmsg--;
	pthread_mutex_unlock(&T.mu);
	return m;
}

static void
wc_send(struct wc *w, char *text /* taken */)
{
	w->out = text;
	assert_int_equal(loop_call(T.cloop, wc_send_run, w), 0);
}

static void
test_wsclient(void **state)
{
	struct wc w;
	uint8_t ch[E2E_CHALLENGE_LEN], nonce[E2E_NONCE_LEN];
	uint8_t blob[33];
	char *m;
	struct ev e;

	(void)state;
	ev_reset();
	memset(&w, 0, sizeof(w));
	w.node = &T.n;
	assert_int_equal(loop_call(T.cloop, wc_connect_run, &w), 0);
	assert_true(wc_wait(&w, &w.open, 5000));
	m = wc_next(&w, 3000);
	assert_non_null(m);
	get_challenge(m, ch);
	free(m);
	wc_send(&w, auth_msg(DEV_OK, T.dev_key, ch, nonce));
	m = wc_next(&w, 3000);
	assert_non_null(m);
	json_decref(parse_obj(m, "ready"));
	free(m);
	assert_true(ev_wait(EV_ONLINE, DEV_OK, 0, 3000, &e));
	assert_memory_equal(e.e_data, nonce, E2E_NONCE_LEN);

	assert_int_equal(RAND_bytes(blob, sizeof(blob)), 1);
	assert_int_equal(afe_send(T.n.afe, DEV_OK, e.e_session, blob, sizeof(blob)), 0);
	expect_e2e(wc_next(&w, 3000), blob, sizeof(blob));
	wc_send(&w, e2e_msg(blob, 20));
	assert_true(ev_wait(EV_BLOB, DEV_OK, e.e_session, 3000, &e));
	assert_int_equal(e.e_len, 20);
	assert_memory_equal(e.e_data, blob, 20);

	assert_int_equal(loop_call(T.cloop, wc_free_run, &w), 0);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, e.e_session, 3000, NULL));
	pthread_mutex_lock(&T.mu);
	while (w.c != NULL)
		pthread_cond_wait(&T.cv, &T.mu);
	pthread_mutex_unlock(&T.mu);
	for (size_t i = 0; i < w.nmsg; i++)
		free(w.msg[i]);
}

static void
test_wake(void **state)
{
	char buf[256], id[MSSP_KEYSTORE_MAX_ID + 1];
	ssize_t n;
	struct afe_stats st0, st1;
	struct timeval tv = { 3, 0 };

	(void)state;
	afe_get_stats(T.n.afe, &st0);
	setsockopt(T.udp_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(afe_wake(T.n.afe, DEV_OK, "token-unused"), 0);
	n = recv(T.udp_fd, buf, sizeof(buf), 0);
	assert_int_equal(n, (ssize_t)strlen("mssp-wake 1 " DEV_OK "\n"));
	assert_memory_equal(buf, "mssp-wake 1 " DEV_OK "\n", (size_t)n);
	assert_int_equal(push_local_parse(buf, (size_t)n, id, sizeof(id)), 0);
	assert_string_equal(id, DEV_OK);
	assert_int_equal(afe_wake(T.n.afe, "bad id", NULL), -1);
	afe_get_stats(T.n.afe, &st1);
	assert_int_equal(st1.as_wakes - st0.as_wakes, 1);
}

/* ---- device activation (me.md "Device binding by activation code") ------ */

/* The phone's side of one activation attempt. */
struct act {
	EVP_PKEY *dev, *bind;	/* device key, app binding key      */
	uint8_t an[E2E_NONCE_LEN], hn[E2E_NONCE_LEN];
	uint8_t hspki[MSSP_KEYSTORE_MAX_SPKI]; /* home binding SPKI */
	size_t hlen;
	unsigned char *dspki, *bspki;
	size_t dlen, blen;
	uint8_t *t;
	size_t tlen;
};

static void
act_clear(struct act *a)
{
	EVP_PKEY_free(a->dev);
	EVP_PKEY_free(a->bind);
	OPENSSL_free(a->dspki);
	OPENSSL_free(a->bspki);
	free(a->t);
	memset(a, 0, sizeof(*a));
}

/* The activation code's 12 digits (reg's answer without separators). */
static void
code_digits(const char *code, char out[MSSP_REG_ACTIVATION_DIGITS + 1])
{
	size_t n = 0;

	for (; *code != '\0'; code++)
		if (*code >= '0' && *code <= '9' && n < MSSP_REG_ACTIVATION_DIGITS)
			out[n++] = *code;
	out[n] = '\0';
	assert_int_equal(n, MSSP_REG_ACTIVATION_DIGITS);
}

/* A fresh activation code for ACT_MSISDN, as the RA gets it (reg_call). */
static void
new_code(char digits[MSSP_REG_ACTIVATION_DIGITS + 1])
{
	struct store *s;
	struct store_err serr;
	struct reg_actor who;
	struct reg_request rq;
	struct reg_err e;
	json_t *out = NULL;
	int rc;

	s = store_open(T.uri, 0, &serr);
	assert_non_null(s);
	memset(&who, 0, sizeof(who));
	snprintf(who.ra_name, sizeof(who.ra_name), "ra");
	who.ra_role = REG_ROLE_RA;
	memset(who.ra_fp, 0x5a, sizeof(who.ra_fp));
	memset(&rq, 0, sizeof(rq));
	rq.rq_op = REG_OP_ACTIVATION_CREATE;
	rq.rq_arg = ACT_MSISDN;
	memset(&e, 0, sizeof(e));
	rc = reg_call(T.reg, s, &who, &rq, (int64_t)time(NULL) * 1000, &out, &e);
	if (rc < 0)
		fail_msg("activation.create: %d %s", e.status, e.msg);
	assert_non_null(out);
	assert_true(json_is_string(json_object_get(out, "code")));
	code_digits(json_string_value(json_object_get(out, "code")), digits);
	json_decref(out);
	store_close(s);
}

/* The activation record's version: it changes with every try that reached
 * reg_activate (a wrong MAC costs a try), and only then. */
static uint64_t
code_version(void)
{
	struct store *s;
	struct store_err serr;
	struct store_rec r;
	uint64_t v;

	s = store_open(T.uri, 0, &serr);
	assert_non_null(s);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_rec_get(s, "activation", ACT_MSISDN, &r, &serr), 0);
	v = r.sr_version;
	store_rec_clear(&r);
	store_close(s);
	return v;
}

/* Connect, send {"t":"activate"}, expect the hello (exact members) and keep
 * what it carries; the phone's keys are made here. */
static void
act_start(struct rc *c, struct node *n, struct act *a)
{
	char *m, *n64, *txt;
	json_t *j;
	struct pki_err perr;

	memset(a, 0, sizeof(*a));
	rc_open(c, n->port);
	m = rc_next(c, 3000);
	assert_non_null(m);
	json_decref(parse_obj(m, "challenge"));
	free(m);
	assert_int_equal(RAND_bytes(a->an, sizeof(a->an)), 1);
	n64 = b64enc(a->an, sizeof(a->an));
	j = json_pack("{s:s,s:s,s:s}", "t", "activate", "m", ACT_MSISDN, "n", n64);
	txt = json_dumps(j, JSON_COMPACT);
	rc_send(c, txt);
	free(txt);
	json_decref(j);
	free(n64);
	m = rc_next(c, 3000);
	assert_non_null(m);
	j = parse_obj(m, "activate_hello");
	assert_int_equal(json_object_size(j), 3);
	assert_int_equal(b64dec(json_string_value(json_object_get(j, "n")), a->hn, sizeof(a->hn) + 2),
			 E2E_NONCE_LEN);
	a->hlen = b64dec(json_string_value(json_object_get(j, "b")), a->hspki, sizeof(a->hspki));
	assert_true(a->hlen > 0);
	json_decref(j);
	free(m);

	a->dev = EVP_EC_gen("P-256");
	a->bind = e2e_binding_keygen(&perr);
	assert_non_null(a->dev);
	assert_non_null(a->bind);
	assert_int_equal(e2e_spki_der(a->dev, &a->dspki, &a->dlen, &perr), 0);
	assert_int_equal(e2e_spki_der(a->bind, &a->bspki, &a->blen, &perr), 0);
	a->t = e2e_activation_transcript(ACT_MSISDN, a->an, a->hn, a->hspki, a->hlen, a->bspki, a->blen,
					 a->dspki, a->dlen, &a->tlen);
	assert_non_null(a->t);
}

/* {"t":"activate_proof"} with the code `digits`. */
static char *
act_proof(struct act *a, const char *digits)
{
	uint8_t h[32], mac[32], sig[MSSP_AFE_MAX_SIG];
	size_t siglen = sizeof(sig);
	struct pki_err perr;
	char *k64, *b64, *s64, *p64, *out;
	json_t *j;

	assert_int_equal(e2e_activation_code_hash(digits, h), 0);
	assert_int_equal(e2e_activation_mac(h, a->t, a->tlen, "app", NULL, mac), 0);
	assert_int_equal(e2e_sign_msg(a->dev, a->t, a->tlen, sig, &siglen, &perr), 0);
	k64 = b64enc(a->dspki, a->dlen);
	b64 = b64enc(a->bspki, a->blen);
	s64 = b64enc(sig, siglen);
	p64 = b64enc(mac, sizeof(mac));
	j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "t", "activate_proof", "k", k64, "b", b64, "s", s64,
		      "p", p64);
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(k64);
	free(b64);
	free(s64);
	free(p64);
	return out;
}

/* A proof of `nk`/`nb`/`ns`/`np` random bytes for k/b/s/p (k, b: 0 = the
 * phone's real SPKI), plus an extra member: for the size and shape
 * refusals. */
static char *
act_proof_raw(const struct act *a, size_t nk, size_t nb, size_t ns, size_t np, bool extra)
{
	static uint8_t junk[4096];
	char *k64, *b64, *s64, *p64, *out;
	json_t *j;

	assert_int_equal(RAND_bytes(junk, sizeof(junk)), 1);
	/* 0: the phone's real key, so that only the field under test is wrong */
	k64 = nk == 0 ? b64enc(a->dspki, a->dlen) : b64enc(junk, nk);
	b64 = nb == 0 ? b64enc(a->bspki, a->blen) : b64enc(junk, nb);
	s64 = b64enc(junk, ns);
	p64 = b64enc(junk, np);
	j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "t", "activate_proof", "k", k64, "b", b64, "s", s64,
		      "p", p64);
	if (extra)
		json_object_set_new(j, "x", json_integer(1));
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(k64);
	free(b64);
	free(s64);
	free(p64);
	return out;
}

/* After act_start: send `msg` (taken) and expect a 4001 without "activated". */
static void
act_expect_refused(struct rc *c, char *msg)
{
	rc_send(c, msg);
	free(msg);
	assert_int_equal(rc_wait_close(c, 5000), 4001);
	assert_int_equal(c->nmsg, 0);
}

static void
test_activation(void **state)
{
	char digits[MSSP_REG_ACTIVATION_DIGITS + 1], wrong[MSSP_REG_ACTIVATION_DIGITS + 1];
	struct rc c;
	struct act a;
	struct afe_stats st0, st1;
	uint8_t h[32], mac[32], got[64], key[E2E_KEY_LEN];
	char dev[MSSP_KEYSTORE_MAX_ID + 1], *m;
	uint64_t v0, v1;
	json_t *j;
	struct store *s;
	struct store_err serr;
	struct store_device d;
	struct pki_err perr;

	(void)state;
	ev_reset();
	afe_get_stats(T.n.afe, &st0);
	new_code(digits);
	v0 = code_version();

	/* a wrong code: refused, and it cost a try (the record changed) */
	snprintf(wrong, sizeof(wrong), "%s", digits);
	wrong[0] = wrong[0] == '9' ? '0' : (char)(wrong[0] + 1);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof(&a, wrong));
	rc_free(&c);
	act_clear(&a);
	v1 = code_version();
	assert_true(v1 > v0);

	/* the right code */
	act_start(&c, &T.n, &a);
	m = act_proof(&a, digits);
	rc_send(&c, m);
	free(m);
	m = rc_next(&c, 5000);
	assert_non_null(m);
	j = parse_obj(m, "activated");
	free(m);
	assert_int_equal(json_object_size(j), 3);
	assert_true(json_is_string(json_object_get(j, "d")));
	snprintf(dev, sizeof(dev), "%s", json_string_value(json_object_get(j, "d")));
	assert_true(dev[0] != '\0');
	/* the home MAC proves the AFE's side knew the code, bound to the id */
	assert_int_equal(b64dec(json_string_value(json_object_get(j, "p")), got, sizeof(got)), 32);
	json_decref(j);
	assert_int_equal(e2e_activation_code_hash(digits, h), 0);
	assert_int_equal(e2e_activation_mac(h, a.t, a.tlen, "home", dev, mac), 0);
	assert_memory_equal(got, mac, 32);
	assert_int_equal(rc_wait_close(&c, 3000), 1000);
	rc_free(&c);

	/* the device is in the store: the phone's key, the channel key both
	 * ends derive, active */
	assert_int_equal(e2e_binding_derive(a.bind, a.hspki, a.hlen, dev, key, &perr), 0);
	s = store_open(T.uri, 0, &serr);
	assert_non_null(s);
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_device_get(s, dev, &d, &serr), 0);
	store_close(s);
	assert_string_equal(d.sd_msisdn, ACT_MSISDN);
	assert_int_equal(d.sd_state, 1);
	assert_int_equal(d.sd_auth_spki_len, a.dlen);
	assert_memory_equal(d.sd_auth_spki, a.dspki, a.dlen);
	assert_memory_equal(d.sd_e2e_key, key, E2E_KEY_LEN);
	OPENSSL_cleanse(&d, sizeof(d));

	/* ... and it can now authenticate as a device */
	{
		uint8_t ch[E2E_CHALLENGE_LEN], nonce[E2E_NONCE_LEN];
		char *am;

		rc_open(&c, T.n.port);
		m = rc_next(&c, 3000);
		assert_non_null(m);
		get_challenge(m, ch);
		free(m);
		am = auth_msg(dev, a.dev, ch, nonce);
		rc_send(&c, am);
		free(am);
		m = rc_next(&c, 3000);
		assert_non_null(m);
		json_decref(parse_obj(m, "ready"));
		free(m);
		assert_true(ev_wait(EV_ONLINE, dev, 0, 3000, NULL));
		rc_free(&c);
		assert_true(ev_wait(EV_OFFLINE, dev, 0, 3000, NULL));
	}

	/* the code is used: the same proof again is refused */
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof(&a, digits));
	rc_free(&c);
	act_clear(&a);

	afe_get_stats(T.n.afe, &st1);
	assert_int_equal(st1.as_act_ok - st0.as_act_ok, 1);
	assert_int_equal(st1.as_act_failed - st0.as_act_failed, 2);
	/* of the two refusals, the used code is "no open code": counted
	 * (reg answers 410 and writes no audit record for it); the wrong
	 * code is not */
	assert_int_equal(st1.as_act_nocode - st0.as_act_nocode, 1);
	assert_int_equal(st1.as_act_limited - st0.as_act_limited, 0);
	assert_int_equal(st1.as_auth_ok - st0.as_auth_ok, 1);
}

/* Malformed, oversized and out-of-turn frames: 4001 (or 1008 where the
 * auth protocol already said so), and the store is never reached. */
static void
test_activation_refused(void **state)
{
	char digits[MSSP_REG_ACTIVATION_DIGITS + 1];
	struct rc c;
	struct act a;
	uint64_t v0;
	char big[MSSP_STORE_MAX_MSISDN + 2];

	(void)state;
	ev_reset();
	new_code(digits);
	v0 = code_version();

	/* oversized: device SPKI, binding SPKI, signature; a short MAC; an
	 * extra member; a missing one; bad base64 */
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, MSSP_KEYSTORE_MAX_SPKI + 1, 0, 72, 32, false));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, MSSP_KEYSTORE_MAX_SPKI + 3, 72, 32, false));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, 0, MSSP_AFE_MAX_SIG + 1, 32, false));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, 0, 72, 31, false));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, 0, 72, 32, true));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, strdup("{\"t\":\"activate_proof\",\"k\":\"AAAA\",\"b\":\"AAAA\","
				      "\"s\":\"AAAA\"}"));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, strdup("{\"t\":\"activate_proof\",\"k\":\"AA=A\",\"b\":\"AAAA\","
				      "\"s\":\"AAAA\",\"p\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}"));
	rc_free(&c);
	act_clear(&a);
	/* a binding "key" that is not a P-256 point, everything else sized
	 * right: refused before the store */
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, 91, 72, 32, false));
	rc_free(&c);
	act_clear(&a);

	/* out of turn: an auth, a second activate, a blob after the hello */
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, strdup("{\"t\":\"auth\",\"d\":\"dev-ok\","
				      "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"s\":\"AAAA\"}"));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, strdup("{\"t\":\"activate\",\"m\":\"" ACT_MSISDN "\","
				      "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"));
	rc_free(&c);
	act_clear(&a);
	act_start(&c, &T.n, &a);
	act_expect_refused(&c, strdup("{\"t\":\"e2e\",\"b\":\"AAAA\"}"));
	rc_free(&c);
	act_clear(&a);

	/* malformed "activate": ACT_MSISDN syntax, short nonce, extra member;
	 * a proof before any activate is the auth protocol's 1008 */
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"activate\",\"m\":\"+4179 0\","
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"activate\",\"m\":\"" ACT_MSISDN "\",\"n\":\"AAAA\"}"),
			 4001);
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"activate\",\"m\":\"" ACT_MSISDN "\",\"x\":1,"
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"),
			 4001);
	/* one digit more than an ACT_MSISDN may have */
	memset(big, '1', sizeof(big));
	big[0] = '+';
	big[sizeof(big) - 1] = '\0';
	{
		char msg[512];

		snprintf(msg, sizeof(msg),
			 "{\"t\":\"activate\",\"m\":\"%s\",\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}", big);
		assert_int_equal(rc_refused(&T.n, NULL, NULL, msg), 4001);
	}
	assert_int_equal(rc_refused(&T.n, NULL, NULL,
				    "{\"t\":\"activate_proof\",\"k\":\"AAAA\",\"b\":\"AAAA\","
				    "\"s\":\"AAAA\",\"p\":\"AAAA\"}"),
			 1008);
	/* K has no struct reg: every activation is refused */
	assert_int_equal(rc_refused(&T.k, NULL, NULL,
				    "{\"t\":\"activate\",\"m\":\"" ACT_MSISDN "\","
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"),
			 4001);

	/* none of it reached reg_activate: no try spent */
	assert_int_equal(code_version(), v0);
	/* the code still works */
	act_start(&c, &T.n, &a);
	{
		char *m = act_proof(&a, digits);

		rc_send(&c, m);
		free(m);
		m = rc_next(&c, 5000);
		assert_non_null(m);
		json_decref(parse_obj(m, "activated"));
		free(m);
	}
	assert_int_equal(rc_wait_close(&c, 3000), 1000);
	rc_free(&c);
	act_clear(&a);
}

/* The auth deadline covers the whole activation: a phone that stops after
 * the hello is closed with 4001. */
static void
test_activation_timeout(void **state)
{
	struct rc c;
	struct act a;
	uint64_t t0 = loop_now_ms();

	(void)state;
	act_start(&c, &T.n, &a);
	assert_int_equal(rc_wait_close(&c, 5000), 4001);
	assert_true(loop_now_ms() - t0 >= 1200);
	assert_int_equal(c.nmsg, 0);
	rc_free(&c);
	act_clear(&a);
}

/* Activation attempts are limited per source address on "activate" and
 * per MSISDN on a well-formed proof (review 2, F3): bare "activate"
 * frames, which cost the sender nothing, never spend a number's budget;
 * over a limit, 4003 at once and the store is not touched. */
static void
test_activation_limits(void **state)
{
	static const char other[] = "{\"t\":\"activate\",\"m\":\"+41790000077\","
				    "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
	char digits[MSSP_REG_ACTIVATION_DIGITS + 1], wrong[MSSP_REG_ACTIVATION_DIGITS + 1];
	struct afe_stats st0, st1;
	struct rc c;
	struct act a;
	uint64_t v;
	char *m;
	int i;

	(void)state;
	new_code(digits);
	snprintf(wrong, sizeof(wrong), "%s", digits);
	wrong[0] = wrong[0] == '9' ? '0' : (char)(wrong[0] + 1);
	afe_get_stats(T.l.afe, &st0);
	/* three bare "activate" for ACT_MSISDN (above its limit of 2): each
	 * gets its hello */
	for (i = 0; i < 3; i++) {
		act_start(&c, &T.l, &a);
		rc_free(&c);
		act_clear(&a);
	}
	/* a malformed proof is refused without the store: not counted */
	act_start(&c, &T.l, &a);
	act_expect_refused(&c, act_proof_raw(&a, 0, 0, 64, 32, true));
	rc_free(&c);
	act_clear(&a);
	/* two proofs reach the store (each a try of the code) ... */
	for (i = 0; i < 2; i++) {
		v = code_version();
		act_start(&c, &T.l, &a);
		act_expect_refused(&c, act_proof(&a, wrong));
		rc_free(&c);
		act_clear(&a);
		assert_true(code_version() > v);
	}
	/* ... the third is over the MSISDN's limit: 4003, the code untouched */
	v = code_version();
	act_start(&c, &T.l, &a);
	m = act_proof(&a, digits);
	rc_send(&c, m);
	free(m);
	assert_int_equal(rc_wait_close(&c, 5000), 4003);
	assert_int_equal(c.nmsg, 0);
	rc_free(&c);
	act_clear(&a);
	assert_int_equal(code_version(), v);
	/* "activate" for that number still gets its hello (the address's
	 * eighth) ... */
	act_start(&c, &T.l, &a);
	rc_free(&c);
	act_clear(&a);
	/* ... another MSISDN from the same address: over the address's limit */
	assert_int_equal(rc_refused(&T.l, NULL, NULL, other), 4003);
	afe_get_stats(T.l.afe, &st1);
	assert_int_equal(st1.as_act_limited - st0.as_act_limited, 2);
	assert_int_equal(st1.as_act_failed - st0.as_act_failed, 3);
	/* N (its own limits) is not affected; device authentication on L
	 * is not limited */
	assert_int_equal(rc_refused(&T.l, NULL, NULL, "{\"t\":\"auth\",\"d\":\"dev-ok\","
						  "\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"s\":\"AAAA\"}"),
			 4001);
	act_start(&c, &T.n, &a);
	rc_free(&c);
	act_clear(&a);
}

/* Last: afe_stop on K closes its device connections and refuses new ones. */
static void
test_stop(void **state)
{
	struct rc c, d;
	uint64_t session;
	uint8_t blob[4] = { 1, 2, 3, 4 };

	(void)state;
	ev_reset();
	session = rc_login(&c, &T.k, DEV_OK);
	afe_stop(T.k.afe);
	afe_stop(T.k.afe); /* idempotent */
	assert_int_equal(rc_wait_close(&c, 3000), 1001);
	assert_true(ev_wait(EV_OFFLINE, DEV_OK, session, 3000, NULL));
	assert_false(afe_online(T.k.afe, DEV_OK));
	assert_int_equal(afe_send(T.k.afe, DEV_OK, 0, blob, sizeof(blob)), -1);
	rc_free(&c);
	assert_int_equal(rc_open_raw(&d, T.k.port,
				     "GET /app/v1/ws HTTP/1.1\r\nHost: localhost\r\n"
				     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				     "Sec-WebSocket-Version: 13\r\n\r\n"),
			 503);
	rc_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_answers),
		cmocka_unit_test(test_auth_and_relay),
		cmocka_unit_test(test_auth_refused),
		cmocka_unit_test(test_protocol_after_ready),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_send_offline),
		cmocka_unit_test(test_auth_timeout),
		cmocka_unit_test(test_keepalive_and_idle),
		cmocka_unit_test(test_wsclient),
		cmocka_unit_test(test_wake),
		cmocka_unit_test(test_activation),
		cmocka_unit_test(test_activation_refused),
		cmocka_unit_test(test_activation_timeout),
		cmocka_unit_test(test_activation_limits),
		cmocka_unit_test(test_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
