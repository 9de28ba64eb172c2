/*
 * client.c - outbound HTTPS POSTs: libcurl's multi interface on a loop's
 * event_base.  See client.h for the contract, docs/internals/client.md for
 * the threads, caps, TLS rules and error mapping.
 *
 * Shape (curl's docs/examples/multi-event.c): curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when to wake it (TIMERFUNCTION); we
 * keep one libevent event per socket and one timer, and every wake-up ends
 * in curl_multi_socket_action() followed by httpc_reap(), which hands the
 * finished transfers (curl_multi_info_read) to their done callbacks.  User
 * code runs only from httpc_reap() and httpc_free(), never inside a libcurl
 * callback, so a done callback may start new requests or free the handle.
 */
#include "net/client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/loop.h"
#include "util/limits.h"

/* One socket curl asked us to watch (curl_multi_assign'ed to it). */
struct httpc_sock {
	struct httpc *s_c;
	struct event *s_ev;
	curl_socket_t s_fd;
	int s_what;			/* CURL_POLL_IN/OUT/INOUT watched   */
	struct httpc_sock *s_prev, *s_next;
};

/* One request in flight. */
struct httpc_xfer {
	struct httpc *x_c;
	CURL *x_easy;
	CURLU *x_url;			/* the URL as checked, handed to curl */
	struct curl_slist *x_headers;
	uint8_t *x_resp;		/* response body, NUL-terminated    */
	size_t x_len, x_cap;
	bool x_too_large;		/* the write callback refused bytes */
	bool x_nomem;
	httpc_done_fn x_done;
	void *x_arg;
	struct httpc_xfer *x_prev, *x_next;
	char x_errbuf[CURL_ERROR_SIZE];	/* curl's text: classified, never
					 * logged (it may quote the peer) */
};

struct httpc {
	struct loop *c_loop;
	struct event_base *c_base;
	CURLM *c_multi;
	struct event *c_timer;
	char *c_cert, *c_key, *c_ca;
	bool c_allow_plain;
	uint8_t c_pins[HTTPC_MAX_PINS][32];
	size_t c_npins;
	size_t c_inflight;
	struct httpc_xfer *c_xfers;	/* in flight (added to c_multi)     */
	struct httpc_sock *c_socks;
	unsigned c_depth;		/* httpc_reap() frames on the stack */
	bool c_freeing;			/* httpc_free() has begun           */
	bool c_dead;			/* ... and left the struct to reap  */
};

/* ---- process-wide libcurl initialisation ------------------------------ */

/* curl_global_init is not thread-safe and must run once before any handle;
 * a once-flag keeps every caller (several loops, tests) out of each
 * other's way.  It is never undone: curl_global_cleanup at exit buys
 * nothing and would race with handles still alive on other loops. */
static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_global_rc = CURLE_FAILED_INIT;

static void
httpc_global_init(void)
{
	httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- error mapping ---------------------------------------------------- */

/* curl's codes mapped to the few words a caller (and a log line) needs:
 * whether the peer was unreachable, failed TLS, was too slow, or sent
 * too much.  Static strings only. */
static const char *
httpc_err_text(CURLcode rc, const struct httpc_xfer *x)
{
	if (x->x_too_large)
		return "too_large";
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return "connect";
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return "tls";
	case CURLE_FILESIZE_EXCEEDED:
		return "too_large";
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/* A TLS 1.3 server refuses a client certificate (missing,
		 * unknown CA) with an alert after the handshake, so curl sees
		 * it on the first read or write.  OpenSSL's reason text says
		 * so ("SSL routines::tlsv13 alert certificate required"). */
		if (strstr(x->x_errbuf, "SSL routines") != NULL &&
		    strstr(x->x_errbuf, "alert") != NULL)
			return "tls";
		return rc == CURLE_SEND_ERROR ? "send" : "recv";
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
		return "recv";
	default:
		return "other";
	}
}

/* ---- sockets and the timer -------------------------------------------- */

static void httpc_reap(struct httpc *c);

static void
httpc_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct httpc_sock *s = arg;
	struct httpc *c = s->s_c;	/* s may be freed by the action */
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->c_multi, fd, action, &running);
	httpc_reap(c);
}

static void
httpc_sock_unlink_free(struct httpc *c, struct httpc_sock *s)
{
	if (s->s_prev != NULL)
		s->s_prev->s_next = s->s_next;
	else
		c->c_socks = s->s_next;
	if (s->s_next != NULL)
		s->s_next->s_prev = s->s_prev;
	if (s->s_ev != NULL)
		event_free(s->s_ev);
	free(s);
}

/*
 * CURLMOPT_SOCKETFUNCTION.  Always 0: a -1 would mark the whole multi
 * handle dead.  If an event cannot be made, the transfer simply sees no
 * I/O and ends at its timeout ("timeout"), so done() still runs once.
 */
static int
httpc_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct httpc *c = userp;
	struct httpc_sock *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			httpc_sock_unlink_free(c, s);
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return 0;
		s->s_c = c;
		s->s_fd = fd;
		s->s_next = c->c_socks;
		if (c->c_socks != NULL)
			c->c_socks->s_prev = s;
		c->c_socks = s;
		curl_multi_assign(c->c_multi, fd, s);
	} else if (s->s_ev != NULL && s->s_what == what) {
		return 0;
	}
	if (s->s_ev != NULL) {
		event_free(s->s_ev);
		s->s_ev = NULL;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	s->s_what = what;
	s->s_ev = event_new(c->c_base, fd, kind, httpc_sock_event, s);
	if (s->s_ev != NULL && event_add(s->s_ev, NULL) != 0) {
		event_free(s->s_ev);
		s->s_ev = NULL;
	}
	return 0;
}

static void
httpc_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->c_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_reap(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer, 0 means "as soon as
 * possible" (the next loop turn: curl MUST NOT be re-entered from here).
 * Always 0 for the reason given at httpc_sock_cb. */
static int
httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(c->c_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->c_timer, &tv);
	return 0;
}

/* ---- transfers -------------------------------------------------------- */

/* CURLOPT_WRITEFUNCTION: collect the body up to MSSP_HTTPC_MAX_RESPONSE.
 * A short return makes curl abort the transfer (CURLE_WRITE_ERROR); the
 * flag tells why.  CURLOPT_MAXFILESIZE catches an announced length
 * earlier; this catches chunked and close-delimited bodies. */
static size_t
httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct httpc_xfer *x = userdata;
	size_t n = size * nmemb, need, cap;
	uint8_t *p;

	if (n > MSSP_HTTPC_MAX_RESPONSE - x->x_len) {
		x->x_too_large = true;
		return 0;
	}
	need = x->x_len + n + 1;
	if (need > x->x_cap) {
		cap = x->x_cap ? x->x_cap * 2 : 4096;
		if (cap < need)
			cap = need;
		if (cap > MSSP_HTTPC_MAX_RESPONSE + 1)
			cap = MSSP_HTTPC_MAX_RESPONSE + 1;
		p = realloc(x->x_resp, cap);
		if (p == NULL) {
			x->x_nomem = true;
			return 0;
		}
		x->x_resp = p;
		x->x_cap = cap;
	}
	memcpy(x->x_resp + x->x_len, ptr, n);
	x->x_len += n;
	x->x_resp[x->x_len] = '\0';
	return n;
}

static void
httpc_xfer_free(struct httpc_xfer *x)
{
	if (x == NULL)
		return;
	if (x->x_easy != NULL)
		curl_easy_cleanup(x->x_easy);
	curl_url_cleanup(x->x_url);
	curl_slist_free_all(x->x_headers);
	free(x->x_resp);
	free(x);
}

static void
httpc_xfer_unlink(struct httpc *c, struct httpc_xfer *x)
{
	if (x->x_prev != NULL)
		x->x_prev->x_next = x->x_next;
	else
		c->c_xfers = x->x_next;
	if (x->x_next != NULL)
		x->x_next->x_prev = x->x_prev;
	x->x_prev = x->x_next = NULL;
	c->c_inflight--;
}

/* Free the handle itself (everything in flight is already finished). */
static void
httpc_destroy(struct httpc *c)
{
	free(c->c_cert);
	free(c->c_key);
	free(c->c_ca);
	free(c);
}

/*
 * Hand every finished transfer to its done callback.  The message is read
 * completely before curl_multi_remove_handle (which invalidates it).  A
 * done callback may call httpc_post (new handles join the multi) or
 * httpc_free (which finishes the rest with "shutdown"; the struct then
 * outlives it until the outermost reap frame returns).
 */
static void
httpc_reap(struct httpc *c)
{
	CURLMsg *msg;
	int left;

	c->c_depth++;
	while (!c->c_freeing &&
	    (msg = curl_multi_info_read(c->c_multi, &left)) != NULL) {
		struct httpc_xfer *x;
		char *priv = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		x = (struct httpc_xfer *)(void *)priv;
		curl_multi_remove_handle(c->c_multi, easy);
		if (x == NULL) {	/* not ours: cannot happen */
			curl_easy_cleanup(easy);
			continue;
		}
		httpc_xfer_unlink(c, x);
		if (rc == CURLE_OK &&
		    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE,
		    &status) == CURLE_OK && status >= 100 && status <= 999) {
			x->x_done(x->x_arg, (int)status,
			    x->x_resp != NULL ? x->x_resp :
			    (const uint8_t *)"", x->x_len, NULL);
		} else {
			x->x_done(x->x_arg, 0, NULL, 0,
			    rc == CURLE_OK ? "other" : httpc_err_text(rc, x));
		}
		httpc_xfer_free(x);
	}
	c->c_depth--;
	if (c->c_depth == 0 && c->c_dead)
		httpc_destroy(c);
}

/* ---- request checks --------------------------------------------------- */

/* A header value we put on the wire: visible ASCII, SP and HTAB only, so
 * a caller's string can never add a header (CR/LF) or end one early. */
static bool
httpc_value_ok(const char *v)
{
	size_t n = strnlen(v, MSSP_HTTPC_MAX_HEADER + 1);
	size_t i;

	if (n == 0 || n > MSSP_HTTPC_MAX_HEADER)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch < 0x20 && ch != '\t') || ch > 0x7e)
			return false;
	}
	return true;
}

/* The SOAPAction header of SOAP 1.1 is a quoted string: a value given
 * with its quotes is sent as it is, a bare one gets quotes.  A quote
 * anywhere else would end the string early: refused. */
static bool
httpc_soap_action_line(const char *v, char *out, size_t cap)
{
	size_t n;
	const char *inner = v;
	int w;

	if (!httpc_value_ok(v) && *v != '\0')
		return false;
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		inner = v + 1;
		n -= 2;
	}
	if (memchr(inner, '"', n) != NULL)
		return false;
	w = snprintf(out, cap, "SOAPAction: \"%.*s\"", (int)n, inner);
	return w > 0 && (size_t)w < cap;
}

static bool
httpc_loopback_host(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcasecmp(host, "localhost") == 0;
}

/* Parse and check the URL once; curl gets the parsed handle (CURLOPT_CURLU)
 * so what was checked is exactly what is fetched.  NULL if refused. */
static CURLU *
httpc_url_check(const struct httpc *c, const char *url)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	size_t n = strnlen(url, MSSP_HTTPC_MAX_URL + 1), i;
	bool ok = false;

	if (n == 0 || n > MSSP_HTTPC_MAX_URL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return NULL;
	u = curl_url();
	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "https") == 0)
		ok = true;
	else if (strcmp(scheme, "http") == 0 && c->c_allow_plain &&
	    httpc_loopback_host(host))
		ok = true;
out:
	curl_free(scheme);
	curl_free(host);
	if (!ok) {
		curl_url_cleanup(u);
		return NULL;
	}
	return u;
}

static CURLcode httpc_ssl_ctx_cb(CURL *e, void *sslctx, void *arg);

/* Every option of one request; false if libcurl refused any of them. */
static bool
httpc_easy_setup(struct httpc *c, struct httpc_xfer *x,
    const struct httpc_req *r)
{
	CURL *e = x->x_easy;
	const char *protos = c->c_allow_plain ? "http,https" : "https";
	long timeout = r->hr_timeout_ms ? (long)r->hr_timeout_ms :
	    MSSP_HTTPC_TIMEOUT_MS;
	CURLcode rc = CURLE_OK;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_PRIVATE, (void *)x);
	SET(CURLOPT_CURLU, x->x_url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, x->x_errbuf);
	SET(CURLOPT_PROTOCOLS_STR, protos);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, protos);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	/* never an environment proxy (http_proxy=...): a notification must
	 * go where the URL says, and a proxy is configuration, not ambient */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "OpenMSSP");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->hr_body_len);
	SET(CURLOPT_COPYPOSTFIELDS, r->hr_body_len ? (const char *)r->hr_body :
	    "");
	SET(CURLOPT_HTTPHEADER, x->x_headers);
	SET(CURLOPT_WRITEFUNCTION, httpc_write_cb);
	SET(CURLOPT_WRITEDATA, (void *)x);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MSSP_HTTPC_MAX_RESPONSE);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->c_ca != NULL) {
		/* only these anchors: also drop the built-in CA directory,
		 * which CURLOPT_CAINFO alone would leave trusted */
		SET(CURLOPT_CAINFO, c->c_ca);
		SET(CURLOPT_CAPATH, (const char *)NULL);
	}
	if (c->c_npins > 0) {
		SET(CURLOPT_SSL_CTX_FUNCTION, httpc_ssl_ctx_cb);
		SET(CURLOPT_SSL_CTX_DATA, (void *)c);
	}
	if (r->hr_connect_timeout_ms)
		SET(CURLOPT_CONNECTTIMEOUT_MS, (long)r->hr_connect_timeout_ms);
	if (c->c_cert != NULL) {
		SET(CURLOPT_SSLCERT, c->c_cert);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
		SET(CURLOPT_SSLKEY, c->c_key);
		SET(CURLOPT_SSLKEYTYPE, "PEM");
	}
#undef SET
	return rc == CURLE_OK;
}

/* ---- certificate pinning ---------------------------------------------- */

/* The pins travel to the verify callback in the SSL_CTX's ex_data: libcurl
 * makes an SSL_CTX per connection and calls httpc_ssl_ctx_cb on it. */
static int httpc_pin_idx = -1;
static pthread_once_t httpc_pin_once = PTHREAD_ONCE_INIT;

static void
httpc_pin_init(void)
{
	httpc_pin_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The chain has been verified by OpenSSL (preverify_ok) against the CA
 * file; the leaf must also be one of the pinned certificates.  Failing
 * here fails the handshake, so no request byte reaches an unpinned
 * server. */
static int
httpc_pin_verify(int preverify_ok, X509_STORE_CTX *xs)
{
	if (!preverify_ok)
		return 0;
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct httpc *c = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), httpc_pin_idx)
				    : NULL;
	X509 *leaf = X509_STORE_CTX_get_current_cert(xs);
	uint8_t fp[32];
	unsigned fl = 0;
	if (c == NULL || leaf == NULL || X509_digest(leaf, EVP_sha256(), fp, &fl) != 1 ||
	    fl != sizeof fp)
		return 0;
	int ok = 0;
	for (size_t i = 0; i < c->c_npins; i++)
		ok |= CRYPTO_memcmp(fp, c->c_pins[i], sizeof fp) == 0;
	if (!ok)
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	return ok;
}

static CURLcode
httpc_ssl_ctx_cb(CURL *e, void *sslctx, void *arg)
{
	(void)e;
	pthread_once(&httpc_pin_once, httpc_pin_init);
	if (httpc_pin_idx < 0 || SSL_CTX_set_ex_data(sslctx, httpc_pin_idx, arg) != 1)
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, httpc_pin_verify);
	return CURLE_OK;
}

/* ---- the public API --------------------------------------------------- */

static bool
httpc_file_readable(const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	fclose(f);
	return true;
}

static char *
httpc_dup_file(const char *path, bool *bad)
{
	char *p;

	if (path == NULL)
		return NULL;
	if (!httpc_file_readable(path) || (p = strdup(path)) == NULL) {
		*bad = true;
		return NULL;
	}
	return p;
}

struct httpc *
httpc_new(struct loop *l, const struct httpc_tls *tls)
{
	struct httpc *c;
	bool bad = false;

	if (l == NULL || tls == NULL ||
	    (tls->ht_cert_file == NULL) != (tls->ht_key_file == NULL))
		return NULL;
	pthread_once(&httpc_once, httpc_global_init);
	if (httpc_global_rc != CURLE_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->c_loop = l;
	c->c_base = loop_base(l);
	c->c_allow_plain = tls->ht_allow_plain;
	if (tls->ht_npins > HTTPC_MAX_PINS) {
		free(c);
		return NULL;
	}
	if (tls->ht_npins)
		memcpy(c->c_pins, tls->ht_pin_sha256, tls->ht_npins * sizeof c->c_pins[0]);
	c->c_npins = tls->ht_npins;
	/* a missing file is a configuration error: say so now, not at the
	 * first notification */
	c->c_cert = httpc_dup_file(tls->ht_cert_file, &bad);
	c->c_key = httpc_dup_file(tls->ht_key_file, &bad);
	c->c_ca = httpc_dup_file(tls->ht_ca_file, &bad);
	if (bad || c->c_base == NULL)
		goto fail;
	c->c_timer = evtimer_new(c->c_base, httpc_timer_event, c);
	c->c_multi = curl_multi_init();
	if (c->c_timer == NULL || c->c_multi == NULL)
		goto fail;
	if (curl_multi_setopt(c->c_multi, CURLMOPT_SOCKETFUNCTION,
	    httpc_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(c->c_multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->c_multi, CURLMOPT_TIMERFUNCTION,
	    httpc_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(c->c_multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->c_multi, CURLMOPT_MAXCONNECTS,
	    (long)MSSP_HTTPC_MAX_CONNECTS) != CURLM_OK)
		goto fail;
	return c;
fail:
	if (c->c_multi != NULL)
		curl_multi_cleanup(c->c_multi);
	if (c->c_timer != NULL)
		event_free(c->c_timer);
	httpc_destroy(c);
	return NULL;
}

int
httpc_post(struct httpc *c, const struct httpc_req *r, httpc_done_fn done,
    void *arg)
{
	struct httpc_xfer *x;
	struct curl_slist *h;
	char line[MSSP_HTTPC_MAX_HEADER + 32];

	if (c == NULL || r == NULL || done == NULL || c->c_freeing ||
	    c->c_inflight >= MSSP_HTTPC_MAX_INFLIGHT)
		return -1;
	if (r->hr_url == NULL || r->hr_content_type == NULL ||
	    !httpc_value_ok(r->hr_content_type) ||
	    (r->hr_body == NULL && r->hr_body_len != 0) ||
	    r->hr_body_len > MSSP_HTTPC_MAX_REQUEST ||
	    r->hr_timeout_ms > MSSP_HTTPC_MAX_TIMEOUT_MS)
		return -1;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -1;
	x->x_c = c;
	x->x_done = done;
	x->x_arg = arg;
	x->x_url = httpc_url_check(c, r->hr_url);
	if (x->x_url == NULL)
		goto fail;

	snprintf(line, sizeof(line), "Content-Type: %s", r->hr_content_type);
	if ((h = curl_slist_append(NULL, line)) == NULL)
		goto fail;
	x->x_headers = h;
	if (r->hr_soap_action != NULL) {
		if (!httpc_soap_action_line(r->hr_soap_action, line,
		    sizeof(line)))
			goto fail;
		if ((h = curl_slist_append(x->x_headers, line)) == NULL)
			goto fail;
		x->x_headers = h;
	}
	/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
	if ((h = curl_slist_append(x->x_headers, "Expect:")) == NULL)
		goto fail;
	x->x_headers = h;

	x->x_easy = curl_easy_init();
	if (x->x_easy == NULL || !httpc_easy_setup(c, x, r))
		goto fail;
	if (curl_multi_add_handle(c->c_multi, x->x_easy) != CURLM_OK)
		goto fail;
	x->x_next = c->c_xfers;
	if (c->c_xfers != NULL)
		c->c_xfers->x_prev = x;
	c->c_xfers = x;
	c->c_inflight++;
	return 0;
fail:
	httpc_xfer_free(x);
	return -1;
}

size_t
httpc_inflight(const struct httpc *c)
{
	return c != NULL ? c->c_inflight : 0;
}

void
httpc_free(struct httpc *c)
{
	struct httpc_xfer *x;

	if (c == NULL || c->c_freeing)
		return;
	c->c_freeing = true;
	/* one at a time from the head: a done callback may not add any
	 * (httpc_post refuses now), and the list is ours alone */
	while ((x = c->c_xfers) != NULL) {
		curl_multi_remove_handle(c->c_multi, x->x_easy);
		httpc_xfer_unlink(c, x);
		x->x_done(x->x_arg, 0, NULL, 0, "shutdown");
		httpc_xfer_free(x);
	}
	/* closes the cached connections; may still call httpc_sock_cb */
	curl_multi_cleanup(c->c_multi);
	c->c_multi = NULL;
	while (c->c_socks != NULL)
		httpc_sock_unlink_free(c, c->c_socks);
	event_free(c->c_timer);
	c->c_timer = NULL;
	if (c->c_depth > 0)
		c->c_dead = true;	/* httpc_reap frees it on the way out */
	else
		httpc_destroy(c);
}
