/*
 * server.c - listeners, per-worker loops, the connection state machine, the
 * response writer and parking.  See server.h for the API and
 * docs/internals/server.md for the design (states, deadlines, caps).
 *
 * Threading: everything about a connection happens on its worker's loop
 * thread.  Shared between threads: the srv counters (atomics), the per-IP
 * table (s_ip_mu), each listener's current SSL_CTX (l_tls_mu), and the loops'
 * call queues (loop.c).  Nothing else.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "net/loop.h"

/* ---- types ----------------------------------------------------------- */

enum conn_state {
	C_HANDSHAKE,  /* TLS handshake running (handshake deadline)          */
	C_IDLE,       /* between requests (header deadline for the first,
	               * idle deadline afterwards)                            */
	C_HEAD,       /* request line / headers arriving (header deadline)  */
	C_BODY,       /* body arriving (minimum body rate)                  */
	C_HANDLER,    /* the handler is running (transient)                 */
	C_PARKED,     /* answered later; EOF cancels; park deadline         */
	C_CLOSING,    /* last response flushing, then shutdown              */
	C_LINGER,     /* our side shut down; reading and discarding         */
	C_DEAD,       /* waiting for the reaper                             */
	C_UPGRADED    /* srv_req_upgrade(): bytes go to the application     */
};

/* The application's view of an upgraded connection (embedded in it). */
struct srv_up {
	struct conn *up_c;
	struct srv_up_ops up_ops;
	void *up_arg;
	unsigned up_idle_ms;   /* 0: no idle deadline                       */
	bool up_notified;      /* uo_closed has run                          */
};

struct srv_req {
	struct conn *rq_conn;
	const struct http_request *rq_http; /* during the handler only     */
	uint64_t rq_id;
	void *rq_data;
	bool rq_active;        /* handed to the handler, not finished       */
	bool rq_answered;
	bool rq_parked;
	bool rq_in_handler;
	bool rq_in_deadline;   /* inside the SRV_CANCEL_DEADLINE callback   */
	bool rq_ended;         /* cancelled (gone, shutdown): no answer     */
	bool rq_head;          /* HEAD: headers only                        */
	bool rq_keep_alive;
};

struct srv_listener {
	struct srv *l_srv;
	char l_name[MSSP_SRV_MAX_NAME + 1];
	struct sockaddr_storage l_addr;
	socklen_t l_addrlen;
	uint16_t l_port;
	bool l_tls;
	pthread_mutex_t l_tls_mu;   /* guards l_ctx                          */
	SSL_CTX *l_ctx;
	size_t l_max_body;
	srv_handler_fn l_handler;
	srv_cancel_fn l_cancel;
	void *l_arg;
};

struct worker;

/* One listener as seen by one worker: its own SO_REUSEPORT socket. */
struct wlisten {
	struct worker *wl_w;
	struct srv_listener *wl_l;
	struct evconnlistener *wl_lev;
	struct event *wl_pause;     /* re-enables accepting after EMFILE    */
	unsigned wl_ncache;
	struct http_parser *wl_cache[MSSP_SRV_PARSER_CACHE];
};

struct conn;

struct worker {
	struct srv *w_srv;
	unsigned w_index;
	struct loop *w_loop;
	struct event_base *w_base;
	struct wlisten w_ls[MSSP_SRV_MAX_LISTENERS];
	struct event *w_reap;       /* frees the connections marked dead    */
	struct conn *w_dead;
	struct conn *w_conns;       /* live connections (doubly linked)     */
	uint64_t w_next_id;
	bool w_stopping;
	struct conn *w_upn;         /* upgraded connections whose uo_closed
	                             * is due (run by the reaper's event)   */
	time_t w_date_at;
	char w_date[40];
	struct conn *w_park[MSSP_SRV_PARK_BUCKETS];
};

struct ip_entry {
	struct ip_entry *ie_next;
	uint8_t ie_key[16];
	unsigned ie_count;
};

struct srv {
	unsigned s_nworkers;
	struct worker *s_workers[MSSP_SRV_MAX_WORKERS];
	size_t s_nlisteners;
	struct srv_listener s_ls[MSSP_SRV_MAX_LISTENERS];
	/* configuration, defaults applied */
	unsigned s_max_conns, s_max_per_ip, s_max_parked;
	unsigned s_handshake_ms, s_header_ms, s_idle_ms, s_write_ms;
	unsigned s_body_min_rate, s_rate_window_ms, s_linger_ms;
	srv_log_fn s_log;
	void *s_log_arg;
	bool s_started, s_stopped;
	/* per-IP table */
	pthread_mutex_t s_ip_mu;
	uint64_t s_ip_seed;
	struct ip_entry *s_ip[MSSP_SRV_IP_BUCKETS];
	/* counters */
	_Atomic uint64_t s_conns, s_parked;
	_Atomic uint64_t s_accepted, s_refused, s_refused_ip;
	_Atomic uint64_t s_handshakes, s_resumed, s_tls_failures;
	_Atomic uint64_t s_requests, s_responses, s_parse_errors;
	_Atomic uint64_t s_parked_peak, s_park_refused;
	_Atomic uint64_t s_cancel_gone, s_cancel_deadline;
	_Atomic uint64_t s_to_handshake, s_to_header, s_to_body, s_to_idle;
	_Atomic uint64_t s_to_write, s_async_dropped;
	_Atomic uint64_t s_upgraded, s_up_open;
};

struct conn {
	struct worker *c_w;
	struct wlisten *c_wl;
	struct srv_listener *c_l;
	struct bufferevent *c_bev;
	SSL *c_ssl;                 /* borrowed from c_bev, NULL if plain    */
	struct event *c_timer;
	struct event *c_linger_ev;  /* raw-socket linger after a failed TLS
	                             * handshake (the bufferevent is done)   */
	struct http_parser *c_parser; /* NULL while idle or parked          */
	enum conn_state c_state;
	uint64_t c_rd_deadline;     /* handshake/header/idle/body/linger     */
	uint64_t c_wr_deadline;     /* 0 while the output buffer is empty    */
	uint64_t c_park_deadline;
	uint64_t c_timer_at;        /* when c_timer fires, 0 if not armed    */
	uint64_t c_rx;              /* request bytes fed to the parser       */
	uint64_t c_rate_mark;       /* c_rx when the body window started     */
	size_t c_linger_bytes;
	unsigned c_queued;          /* responses queued since output empty   */
	bool c_tls;
	bool c_handshake_done;
	bool c_broken;              /* I/O error: no more writes, no shutdown */
	bool c_peer_eof;
	bool c_paused;              /* output backpressure stopped parsing   */
	bool c_close_after;         /* the response queued said close        */
	bool c_has_fp;
	bool c_resumed;
	bool c_ip_held;
	bool c_sent_continue;
	bool c_served;              /* a request was handed to a handler     */
	uint8_t c_ipkey[16];
	uint8_t c_fp[TLS_FP_LEN];
	struct sockaddr_storage c_addr;
	socklen_t c_addrlen;
	char c_ip[INET6_ADDRSTRLEN];
	struct srv_req c_req;
	bool c_upgraded;            /* handed over by srv_req_upgrade()      */
	bool c_upn_queued;          /* on the worker's w_upn list            */
	bool c_up_close_due;        /* srv_up_close() inside the handler     */
	struct srv_up c_up;
	struct conn *c_upn_next;
	struct conn *c_prev, *c_next;  /* worker's live list                 */
	struct conn *c_park_next;      /* parked-request hash chain          */
	struct conn *c_dead_next;
};

/* An answer crossing threads: everything copied into one allocation. */
struct srv_async {
	struct worker *a_w;
	uint64_t a_id;
	struct srv_response a_rs;
	struct srv_header a_hdrs[MSSP_SRV_MAX_RESP_HEADERS];
	size_t a_size;
	char a_mem[];
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);
static void conn_abort(struct conn *c, bool notify);
static void conn_arm(struct conn *c);
static void finish_request(struct conn *c);
static void cancel_request(struct conn *c, enum srv_cancel why);

/* ---- small helpers --------------------------------------------------- */

static void
srv_log(struct srv *s, const char *event, const struct conn *c,
    const char *detail)
{
	if (s->s_log != NULL)
		s->s_log(s->s_log_arg, event, c ? c->c_ip : "",
		    detail ? detail : "");
}

static void
stat_inc(_Atomic uint64_t *v)
{
	atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

static void
net_err_setf(struct net_err *e, const char *msg)
{
	snprintf(e->ne_detail, sizeof(e->ne_detail), "%s", msg);
}

static bool
ascii_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return *a == *b;
}

/* ---- per-IP table ----------------------------------------------------- */

/*
 * The key is the IPv4 address (as ::ffff:a.b.c.d) or the IPv6 /64 prefix:
 * one IPv6 client normally holds a whole /64, so counting single addresses
 * would let it open connections without bound.
 */
static void
ip_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memcpy(key, &in6->sin6_addr, 16);
		else
			memcpy(key, &in6->sin6_addr, 8);
	}
}

/* FNV-1a with a per-server random seed: the bucket of an address cannot be
 * predicted from outside, so chains stay short. */
static size_t
ip_bucket(const struct srv *s, const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL ^ s->s_ip_seed;
	size_t i;

	for (i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return (size_t)(h & (MSSP_SRV_IP_BUCKETS - 1));
}

static bool
ip_acquire(struct srv *s, const uint8_t key[16])
{
	struct ip_entry *ie;
	size_t b = ip_bucket(s, key);
	bool ok = false;

	pthread_mutex_lock(&s->s_ip_mu);
	for (ie = s->s_ip[b]; ie != NULL; ie = ie->ie_next)
		if (memcmp(ie->ie_key, key, 16) == 0)
			break;
	if (ie == NULL) {
		ie = calloc(1, sizeof(*ie));
		if (ie == NULL)
			goto out;
		memcpy(ie->ie_key, key, 16);
		ie->ie_next = s->s_ip[b];
		s->s_ip[b] = ie;
	}
	if (ie->ie_count >= s->s_max_per_ip)
		goto out;
	ie->ie_count++;
	ok = true;
out:
	pthread_mutex_unlock(&s->s_ip_mu);
	return ok;
}

static void
ip_release(struct srv *s, const uint8_t key[16])
{
	struct ip_entry **pp, *ie;
	size_t b = ip_bucket(s, key);

	pthread_mutex_lock(&s->s_ip_mu);
	for (pp = &s->s_ip[b]; (ie = *pp) != NULL; pp = &ie->ie_next) {
		if (memcmp(ie->ie_key, key, 16) != 0)
			continue;
		if (ie->ie_count > 0)
			ie->ie_count--;
		if (ie->ie_count == 0) {
			*pp = ie->ie_next;
			free(ie);
		}
		break;
	}
	pthread_mutex_unlock(&s->s_ip_mu);
}

/* ---- parser cache ---------------------------------------------------- */

/* A parser for c; from the worker's cache when one is there (a reset parser
 * is as good as a new one, and the cache spares a calloc of ~80 KiB per
 * request on keep-alive connections). */
static struct http_parser *
parser_get(struct conn *c)
{
	struct wlisten *wl = c->c_wl;

	if (wl->wl_ncache > 0)
		return wl->wl_cache[--wl->wl_ncache];
	return http_parser_new(0, c->c_l->l_max_body);
}

/* Give c's parser back: cached when healthy and between requests. */
static void
parser_put(struct conn *c)
{
	struct http_parser *p = c->c_parser;
	struct wlisten *wl = c->c_wl;

	c->c_parser = NULL;
	if (p == NULL)
		return;
	if (http_parser_error(p) == 0 &&
	    http_parser_phase(p) == HTTP_PHASE_IDLE &&
	    wl->wl_ncache < MSSP_SRV_PARSER_CACHE && !c->c_w->w_stopping) {
		wl->wl_cache[wl->wl_ncache++] = p;
		return;
	}
	http_parser_free(p);
}

/* ---- parked-request registry (per worker, loop thread only) ---------- */

static size_t
park_bucket(uint64_t id)
{
	return (size_t)(id & (MSSP_SRV_PARK_BUCKETS - 1));
}

static struct conn *
park_find(struct worker *w, uint64_t id)
{
	struct conn *c;

	for (c = w->w_park[park_bucket(id)]; c != NULL; c = c->c_park_next)
		if (c->c_req.rq_id == id)
			return c;
	return NULL;
}

static void
park_remove(struct conn *c)
{
	struct conn **pp;
	struct srv *s = c->c_w->w_srv;

	if (!c->c_req.rq_parked)
		return;
	for (pp = &c->c_w->w_park[park_bucket(c->c_req.rq_id)]; *pp != NULL;
	    pp = &(*pp)->c_park_next) {
		if (*pp == c) {
			*pp = c->c_park_next;
			break;
		}
	}
	c->c_park_next = NULL;
	c->c_req.rq_parked = false;
	c->c_park_deadline = 0;
	atomic_fetch_sub_explicit(&s->s_parked, 1, memory_order_relaxed);
}

/* ---- timers ---------------------------------------------------------- */

/* One timer per connection, set to the earliest of its deadlines. */
static void
conn_arm(struct conn *c)
{
	uint64_t at = 0, now;
	struct timeval tv;

	if (c->c_state == C_DEAD)
		return;
	if (c->c_rd_deadline)
		at = c->c_rd_deadline;
	if (c->c_wr_deadline && (at == 0 || c->c_wr_deadline < at))
		at = c->c_wr_deadline;
	if (c->c_park_deadline && (at == 0 || c->c_park_deadline < at))
		at = c->c_park_deadline;
	if (at == c->c_timer_at)
		return;
	c->c_timer_at = at;
	if (at == 0) {
		evtimer_del(c->c_timer);
		return;
	}
	now = loop_now_ms();
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000);
	tv.tv_usec = (suseconds_t)((at % 1000) * 1000);
	evtimer_add(c->c_timer, &tv);
}

/* ---- response writer ------------------------------------------------- */

struct hbuf {
	char hb_buf[MSSP_SRV_MAX_RESP_HEAD];
	size_t hb_len;
	bool hb_over;
};

static void
hb_add(struct hbuf *h, const char *s, size_t n)
{
	if (h->hb_over || n > sizeof(h->hb_buf) - h->hb_len) {
		h->hb_over = true;
		return;
	}
	memcpy(h->hb_buf + h->hb_len, s, n);
	h->hb_len += n;
}

static void
hb_adds(struct hbuf *h, const char *s)
{
	hb_add(h, s, strlen(s));
}

static void
hb_addu(struct hbuf *h, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
	hb_add(h, d + i, sizeof(d) - i);
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

/* RFC 9110 §5.6.2 token. */
static bool
is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Header names the writer owns, or that would change the framing. */
static const char *const srv_reserved_headers[] = {
	"Content-Length", "Transfer-Encoding", "Connection", "Date",
	"Content-Type", "Keep-Alive", "Upgrade", "Trailer",
};

static bool
header_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (len == 0 || len > MSSP_SRV_MAX_HEADER_NAME)
		return false;
	for (i = 0; i < len; i++)
		if (!is_tchar((unsigned char)n[i]))
			return false;
	for (i = 0; i < sizeof(srv_reserved_headers) /
	    sizeof(srv_reserved_headers[0]); i++)
		if (ascii_ieq(n, srv_reserved_headers[i]))
			return false;
	return true;
}

/* Visible ASCII, SP and HTAB only: no CR/LF (response splitting), no NUL,
 * no obs-text; no leading or trailing whitespace. */
static bool
header_value_ok(const char *v)
{
	size_t i, len = strlen(v);

	if (len > MSSP_SRV_MAX_RESP_HEAD)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (!(ch == '\t' || (ch >= 0x20 && ch <= 0x7e)))
			return false;
	}
	if (len > 0 && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' ||
	    v[len - 1] == '\t'))
		return false;
	return true;
}

/* Everything about a response that does not depend on the connection. */
static int
response_check(const struct srv_response *rs)
{
	size_t i;

	if (rs->rs_status < 200 || rs->rs_status > 599)
		return -1;
	if (rs->rs_body_len > MSSP_SRV_MAX_RESPONSE ||
	    (rs->rs_body_len > 0 && rs->rs_body == NULL))
		return -1;
	if ((rs->rs_status == 204 || rs->rs_status == 304) &&
	    rs->rs_body_len > 0)
		return -1;
	if (rs->rs_content_type != NULL && (rs->rs_content_type[0] == '\0' ||
	    !header_value_ok(rs->rs_content_type)))
		return -1;
	if (rs->rs_nheaders > MSSP_SRV_MAX_RESP_HEADERS ||
	    (rs->rs_nheaders > 0 && rs->rs_headers == NULL))
		return -1;
	for (i = 0; i < rs->rs_nheaders; i++) {
		if (rs->rs_headers[i].sh_name == NULL ||
		    rs->rs_headers[i].sh_value == NULL ||
		    !header_name_ok(rs->rs_headers[i].sh_name) ||
		    !header_value_ok(rs->rs_headers[i].sh_value))
			return -1;
	}
	return 0;
}

/* IMF-fixdate (RFC 9110 §5.6.7), cached per second; formatted by hand so
 * the process locale cannot change the day and month names. */
static const char *
worker_date(struct worker *w)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	time_t now = time(NULL);
	struct tm tm;

	if (now == w->w_date_at && w->w_date[0] != '\0')
		return w->w_date;
	if (gmtime_r(&now, &tm) == NULL)
		return w->w_date;
	snprintf(w->w_date, sizeof(w->w_date),
	    "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	w->w_date_at = now;
	return w->w_date;
}

/*
 * Queue one final response on c.  Connection: close when asked, when the
 * request did not allow keep-alive, or when the server is stopping; then
 * c_close_after is set.  -1 (nothing queued) on an invalid response.
 */
static int
conn_write_response(struct conn *c, const struct srv_response *rs,
    bool keep_alive, bool head_only)
{
	struct evbuffer *out = bufferevent_get_output(c->c_bev);
	struct hbuf h;
	bool close_it;
	size_t i, blen;

	if (response_check(rs) != 0)
		return -1;
	h.hb_len = 0;
	h.hb_over = false;
	close_it = rs->rs_close || !keep_alive || c->c_w->w_stopping;
	hb_adds(&h, "HTTP/1.1 ");
	hb_addu(&h, (uint64_t)rs->rs_status);
	hb_adds(&h, " ");
	hb_adds(&h, reason_phrase(rs->rs_status));
	hb_adds(&h, "\r\nDate: ");
	hb_adds(&h, worker_date(c->c_w));
	if (rs->rs_status != 204 && rs->rs_status != 304) {
		hb_adds(&h, "\r\nContent-Length: ");
		hb_addu(&h, rs->rs_body_len);
	}
	hb_adds(&h, close_it ? "\r\nConnection: close" :
	    "\r\nConnection: keep-alive");
	if (rs->rs_content_type != NULL) {
		hb_adds(&h, "\r\nContent-Type: ");
		hb_adds(&h, rs->rs_content_type);
	}
	for (i = 0; i < rs->rs_nheaders; i++) {
		hb_adds(&h, "\r\n");
		hb_adds(&h, rs->rs_headers[i].sh_name);
		hb_adds(&h, ": ");
		hb_adds(&h, rs->rs_headers[i].sh_value);
	}
	hb_adds(&h, "\r\n\r\n");
	if (h.hb_over)
		return -1;
	blen = head_only ? 0 : rs->rs_body_len;
	/* Room for head and body first: either the whole response is queued
	 * or nothing is (a half-queued response would break the framing). */
	if (evbuffer_expand(out, h.hb_len + blen) != 0 ||
	    evbuffer_add(out, h.hb_buf, h.hb_len) != 0 ||
	    (blen > 0 && evbuffer_add(out, rs->rs_body, blen) != 0))
		return -1;
	if (close_it)
		c->c_close_after = true;
	c->c_queued++;
	stat_inc(&c->c_w->w_srv->s_responses);
	return 0;
}

/* The server's own answers (parse errors, timeouts, handler failures):
 * a short text body and Connection: close. */
static void
conn_answer_close(struct conn *c, int status)
{
	struct srv_response rs;
	struct hbuf body;

	body.hb_len = 0;
	body.hb_over = false;
	hb_addu(&body, (uint64_t)status);
	hb_adds(&body, " ");
	hb_adds(&body, reason_phrase(status));
	hb_adds(&body, "\n");
	memset(&rs, 0, sizeof(rs));
	rs.rs_status = status;
	rs.rs_content_type = "text/plain";
	rs.rs_body = body.hb_buf;
	rs.rs_body_len = body.hb_len;
	rs.rs_close = true;
	if (conn_write_response(c, &rs, false, false) != 0)
		c->c_close_after = true;
}

/* ---- closing --------------------------------------------------------- */

/* uo_closed, once, from the reaper's event only: never from inside
 * srv_up_write() or another call of the application's, so the application
 * may free its state there without pulling it from under its own stack. */
static void
up_notify(struct conn *c)
{
	struct srv_up *up = &c->c_up;

	if (!c->c_upgraded || up->up_notified)
		return;
	up->up_notified = true;
	atomic_fetch_sub_explicit(&c->c_w->w_srv->s_up_open, 1,
	    memory_order_relaxed);
	up->up_ops.uo_closed(up, up->up_arg);
}

/* The application's part is over (closing or lingering): tell it soon,
 * without waiting for the linger to end. */
static void
up_queue_notify(struct conn *c)
{
	struct worker *w = c->c_w;

	if (!c->c_upgraded || c->c_up.up_notified || c->c_upn_queued ||
	    c->c_state == C_DEAD)
		return;
	c->c_upn_queued = true;
	c->c_upn_next = w->w_upn;
	w->w_upn = c;
	event_active(w->w_reap, EV_READ, 0);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	for (;;) {
		/* Notifications first: a queued connection may be on the
		 * dead list too, and is freed below. */
		if ((c = w->w_upn) != NULL) {
			w->w_upn = c->c_upn_next;
			c->c_upn_queued = false;
			up_notify(c);
			continue;
		}
		if ((c = w->w_dead) == NULL)
			break;
		w->w_dead = c->c_dead_next;
		up_notify(c);  /* may close others: they join w_dead */
		if (c->c_prev != NULL)
			c->c_prev->c_next = c->c_next;
		else
			w->w_conns = c->c_next;
		if (c->c_next != NULL)
			c->c_next->c_prev = c->c_prev;
		if (c->c_bev != NULL)
			bufferevent_free(c->c_bev);  /* SSL_free, close(fd) */
		if (c->c_timer != NULL)
			event_free(c->c_timer);
		if (c->c_linger_ev != NULL)
			event_free(c->c_linger_ev);
		http_parser_free(c->c_parser);
		if (c->c_ip_held)
			ip_release(w->w_srv, c->c_ipkey);
		atomic_fetch_sub_explicit(&w->w_srv->s_conns, 1,
		    memory_order_relaxed);
		free(c);
	}
}

/*
 * End c now.  Never frees it: it is marked dead and freed by the reaper
 * from its own event (style.md habit 7), since we are usually inside one of
 * c's callbacks.  notify: send close_notify first when the TLS session is
 * still healthy.
 */
static void
conn_abort(struct conn *c, bool notify)
{
	struct worker *w = c->c_w;

	if (c->c_state == C_DEAD)
		return;
	/* Invariant: a parked request ends in exactly one answer or one
	 * cancel callback; callers cancel with their own reason first, this
	 * catches any path that did not. */
	if (c->c_state == C_PARKED && c->c_req.rq_active &&
	    !c->c_req.rq_ended)
		cancel_request(c, SRV_CANCEL_GONE);
	if (notify && c->c_tls && c->c_handshake_done && !c->c_broken) {
		SSL_shutdown(c->c_ssl);
		ERR_clear_error();
	}
	c->c_state = C_DEAD;
	c->c_req.rq_active = false;
	c->c_req.rq_http = NULL;
	bufferevent_disable(c->c_bev, EV_READ | EV_WRITE);
	evtimer_del(c->c_timer);
	if (c->c_linger_ev != NULL)
		event_del(c->c_linger_ev);
	c->c_timer_at = 0;
	c->c_dead_next = w->w_dead;
	w->w_dead = c;
	event_active(w->w_reap, EV_READ, 0);
}

/* Output flushed after the last response: close our sending side (TLS:
 * close_notify, pitfall 2), then read and discard for a while, so the
 * client's unread bytes do not turn our close into a reset that destroys
 * the response before the client reads it (lingering close). */
static void
conn_shutdown(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;

	if (c->c_peer_eof || c->c_broken) {
		conn_abort(c, false);
		return;
	}
	up_queue_notify(c);
	if (c->c_tls) {
		SSL_shutdown(c->c_ssl);
		ERR_clear_error();
	} else {
		shutdown(bufferevent_getfd(c->c_bev), SHUT_WR);
	}
	c->c_state = C_LINGER;
	c->c_linger_bytes = 0;
	c->c_rd_deadline = loop_now_ms() + s->s_linger_ms;
	bufferevent_enable(c->c_bev, EV_READ);
	conn_arm(c);
}

static void
raw_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	if (c->c_state == C_DEAD)
		return;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			c->c_linger_bytes += (size_t)n;
			if (c->c_linger_bytes > MSSP_SRV_LINGER_BYTES)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break;  /* EOF or error */
	}
	conn_abort(c, false);
}

/*
 * A failed handshake: OpenSSL has written its alert (certificate_required,
 * unknown_ca ...) and the bufferevent has stopped.  A TLS 1.3 client sends
 * its request right after its Finished; closing with those bytes unread
 * would send a reset that can destroy the alert before the client reads
 * it.  So: shut down our side and read-and-discard on the raw socket for
 * the linger time, as for any close.
 */
static void
conn_linger_raw(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;
	evutil_socket_t fd = bufferevent_getfd(c->c_bev);

	c->c_broken = true;
	if (fd < 0)
		goto abort;
	c->c_linger_ev = event_new(c->c_w->w_base, fd, EV_READ | EV_PERSIST,
	    raw_linger_cb, c);
	if (c->c_linger_ev == NULL || event_add(c->c_linger_ev, NULL) != 0)
		goto abort;
	shutdown(fd, SHUT_WR);
	c->c_state = C_LINGER;
	c->c_linger_bytes = 0;
	c->c_rd_deadline = loop_now_ms() + s->s_linger_ms;
	conn_arm(c);
	return;
abort:
	conn_abort(c, false);
}

/* Close after what is queued has been written. */
static void
conn_close(struct conn *c)
{
	if (c->c_state == C_CLOSING || c->c_state == C_LINGER ||
	    c->c_state == C_DEAD)
		return;
	if (c->c_state == C_PARKED && c->c_req.rq_active &&
	    !c->c_req.rq_ended)
		cancel_request(c, SRV_CANCEL_GONE);
	c->c_req.rq_active = false;
	c->c_req.rq_http = NULL;
	http_parser_free(c->c_parser);
	c->c_parser = NULL;
	c->c_state = C_CLOSING;
	c->c_rd_deadline = 0;
	c->c_park_deadline = 0;
	if (evbuffer_get_length(bufferevent_get_output(c->c_bev)) == 0)
		conn_shutdown(c);
	else
		conn_arm(c);
}

/* ---- parking and cancellation ---------------------------------------- */

static void
cancel_request(struct conn *c, enum srv_cancel why)
{
	struct srv_req *req = &c->c_req;

	park_remove(c);
	req->rq_ended = true;
	if (c->c_l->l_cancel != NULL && req->rq_active)
		c->c_l->l_cancel(req, c->c_l->l_arg, why);
	req->rq_active = false;
}

/* The park deadline passed: the cancel callback may answer; else 503. */
static void
park_expire(struct conn *c)
{
	struct srv_req *req = &c->c_req;
	struct srv *s = c->c_w->w_srv;

	stat_inc(&s->s_cancel_deadline);
	park_remove(c);
	req->rq_in_deadline = true;
	if (c->c_l->l_cancel != NULL)
		c->c_l->l_cancel(req, c->c_l->l_arg, SRV_CANCEL_DEADLINE);
	req->rq_in_deadline = false;
	if (c->c_state == C_DEAD)
		return;
	if (!req->rq_answered) {
		struct srv_response rs;

		memset(&rs, 0, sizeof(rs));
		rs.rs_status = 503;
		rs.rs_content_type = "text/plain";
		rs.rs_body = "503 Service Unavailable\n";
		rs.rs_body_len = strlen(rs.rs_body);
		rs.rs_close = true;
		if (conn_write_response(c, &rs, req->rq_keep_alive,
		    req->rq_head) != 0)
			c->c_close_after = true;
		req->rq_answered = true;
	}
	finish_request(c);
	bufferevent_trigger(c->c_bev, EV_READ,
	    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- request flow ---------------------------------------------------- */

/* The current request is answered: keep-alive or close. */
static void
finish_request(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;

	c->c_req.rq_active = false;
	c->c_req.rq_http = NULL;
	if (c->c_state == C_DEAD)
		return;
	if (c->c_close_after) {
		conn_close(c);
		return;
	}
	if (c->c_parser != NULL && http_parser_next(c->c_parser) != 0) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(c->c_bev)) == 0)
		parser_put(c);
	c->c_state = C_IDLE;
	c->c_sent_continue = false;
	c->c_rd_deadline = loop_now_ms() + s->s_idle_ms;
	conn_arm(c);
}

/* After the handler that upgraded c returned: HTTP is over for c (the
 * request was readable until now, so the parser goes back only here). */
static void
up_begin(struct conn *c)
{
	c->c_req.rq_active = false;
	c->c_req.rq_http = NULL;
	c->c_paused = false;
	if (c->c_parser != NULL) {
		(void)http_parser_next(c->c_parser);
		parser_put(c);
	}
	if (c->c_up_close_due) {
		conn_close(c);
		return;
	}
	conn_arm(c);
	/* Bytes the client sent behind the request: to uo_data from a fresh
	 * callback, not from inside the handler's caller. */
	if (c->c_state == C_UPGRADED &&
	    evbuffer_get_length(bufferevent_get_input(c->c_bev)) > 0)
		bufferevent_trigger(c->c_bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void
dispatch(struct conn *c)
{
	struct worker *w = c->c_w;
	struct srv *s = w->w_srv;
	struct srv_req *req = &c->c_req;
	const struct http_request *rq = http_parser_request(c->c_parser);

	if (rq == NULL) {  /* HTTP_DONE without a request: broken parser */
		conn_abort(c, true);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->rq_conn = c;
	req->rq_http = rq;
	req->rq_id = ((uint64_t)(w->w_index + 1) << 56) |
	    (++w->w_next_id & 0x00ffffffffffffffULL);
	req->rq_active = true;
	req->rq_in_handler = true;
	req->rq_keep_alive = rq->rq_keep_alive;
	req->rq_head = strcmp(rq->rq_method, "HEAD") == 0;
	c->c_state = C_HANDLER;
	c->c_rd_deadline = 0;
	c->c_served = true;
	stat_inc(&s->s_requests);

	c->c_l->l_handler(req, c->c_l->l_arg);

	req->rq_in_handler = false;
	req->rq_http = NULL;
	if (c->c_state == C_DEAD)
		return;
	if (c->c_upgraded) {
		up_begin(c);
		return;
	}
	if (req->rq_answered) {
		finish_request(c);
		return;
	}
	if (req->rq_parked) {
		c->c_state = C_PARKED;
		if (c->c_peer_eof) {
			/* EOF was seen before the request was dispatched (a
			 * half-closing client): nothing will report it again. */
			stat_inc(&s->s_cancel_gone);
			cancel_request(c, SRV_CANCEL_GONE);
			conn_abort(c, false);
			return;
		}
		/* The request's bytes are no longer needed: the parser goes
		 * back to the cache, so a parked request costs little. */
		if (http_parser_next(c->c_parser) != 0)
			c->c_close_after = true;
		parser_put(c);
		conn_arm(c);
		return;
	}
	srv_log(s, "handler_no_answer", c, c->c_l->l_name);
	conn_answer_close(c, 500);
	req->rq_answered = true;
	finish_request(c);
}

/*
 * Feed what the input buffer holds to the parser, chain by chain, without
 * copying it first; drain what the parser used.
 */
static int
feed_input(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v[4];
	size_t used, total = 0;
	int n, i, rc = HTTP_MORE;

	n = evbuffer_peek(in, -1, NULL, v, 4);
	if (n > 4)
		n = 4;
	for (i = 0; i < n; i++) {
		rc = http_parser_feed(c->c_parser, v[i].iov_base, v[i].iov_len,
		    &used);
		total += used;
		if (rc != HTTP_MORE || used < v[i].iov_len)
			break;
	}
	evbuffer_drain(in, total);
	c->c_rx += total;
	return rc;
}

static void
parse_error(struct conn *c, int rc)
{
	struct srv *s = c->c_w->w_srv;
	int status = http_err_status(rc);

	stat_inc(&s->s_parse_errors);
	srv_log(s, "http_parse_error", c, http_err_reason(rc));
	if (status != 0)
		conn_answer_close(c, status);
	conn_close(c);
}

/* Enter the body phase: the minimum-rate window starts now. */
static void
body_start(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;

	c->c_state = C_BODY;
	c->c_rate_mark = c->c_rx;
	c->c_rd_deadline = loop_now_ms() + s->s_rate_window_ms;
	conn_arm(c);
}

/*
 * Parse and dispatch what has arrived, one request at a time and in order
 * (H-09).  Stops while a request is being handled or parked, while the
 * output holds MSSP_SRV_OUT_HIGH bytes or MSSP_HTTP_MAX_PIPELINE unsent
 * responses (resumed by the write callback), and after
 * MSSP_HTTP_MAX_PIPELINE requests in one go (resumed by a deferred
 * trigger, so one connection cannot hold the loop).
 */
static void
conn_process(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;
	struct evbuffer *in = bufferevent_get_input(c->c_bev);
	struct evbuffer *out = bufferevent_get_output(c->c_bev);
	unsigned handled = 0;
	int rc;

	for (;;) {
		if (c->c_state != C_IDLE && c->c_state != C_HEAD &&
		    c->c_state != C_BODY)
			return;
		if (evbuffer_get_length(in) == 0) {
			if (c->c_peer_eof)
				conn_close(c);
			return;
		}
		if (evbuffer_get_length(out) >= MSSP_SRV_OUT_HIGH ||
		    c->c_queued >= MSSP_HTTP_MAX_PIPELINE) {
			c->c_paused = true;
			return;
		}
		if (handled >= MSSP_HTTP_MAX_PIPELINE) {
			bufferevent_trigger(c->c_bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS |
			    BEV_TRIG_DEFER_CALLBACKS);
			return;
		}
		if (c->c_parser == NULL) {
			c->c_parser = parser_get(c);
			if (c->c_parser == NULL) {
				srv_log(s, "out_of_memory", c, "parser");
				conn_abort(c, true);
				return;
			}
		}
		if (c->c_state == C_IDLE) {
			c->c_state = C_HEAD;
			c->c_rd_deadline = loop_now_ms() + s->s_header_ms;
			conn_arm(c);
		}
		rc = feed_input(c, in);
		if (rc == HTTP_MORE) {
			if (c->c_state == C_HEAD &&
			    http_parser_phase(c->c_parser) == HTTP_PHASE_BODY)
				body_start(c);
			continue;
		}
		if (rc == HTTP_CONTINUE) {
			body_start(c);
			/* H-12: the parser has checked every limit before it
			 * says CONTINUE.  A client that already sent body
			 * bytes needs no 100 (RFC 9110 §10.1.1). */
			if (!c->c_sent_continue &&
			    evbuffer_get_length(in) == 0) {
				static const char cont[] =
				    "HTTP/1.1 100 Continue\r\n\r\n";

				evbuffer_add(out, cont, sizeof(cont) - 1);
			}
			c->c_sent_continue = true;
			continue;
		}
		if (rc == HTTP_DONE) {
			handled++;
			dispatch(c);
			continue;
		}
		parse_error(c, rc);
		return;
	}
}

/* ---- bufferevent callbacks ------------------------------------------- */

/* Hand what has arrived on an upgraded connection to the application,
 * chain by chain, without copying; every byte moves the idle deadline. */
static void
up_deliver(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->c_bev);
	struct evbuffer_iovec v;
	struct srv_up *up = &c->c_up;
	bool got = false;

	while (c->c_state == C_UPGRADED && evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		got = true;
		up->up_ops.uo_data(up, up->up_arg, v.iov_base, v.iov_len);
		/* the chain is ours until drained: the callback may write or
		 * close, never read or drain the input */
		evbuffer_drain(in, v.iov_len);
	}
	if (c->c_state != C_UPGRADED && c->c_state != C_DEAD)
		evbuffer_drain(in, evbuffer_get_length(in));
	if (got && c->c_state == C_UPGRADED && up->up_idle_ms != 0) {
		c->c_rd_deadline = loop_now_ms() + up->up_idle_ms;
		/* Lazy: a timer due earlier re-arms itself when it fires. */
		if (c->c_timer_at == 0 || c->c_timer_at > c->c_rd_deadline)
			conn_arm(c);
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;

	if (c->c_state == C_DEAD)
		return;
	if (c->c_state == C_UPGRADED) {
		up_deliver(c);
		return;
	}
	if (c->c_state == C_LINGER ||
	    (c->c_upgraded && c->c_state == C_CLOSING)) {
		n = evbuffer_get_length(in);
		evbuffer_drain(in, n);
		c->c_linger_bytes += n;
		if (c->c_linger_bytes > MSSP_SRV_LINGER_BYTES)
			conn_abort(c, false);
		return;
	}
	conn_process(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->c_w->w_srv;
	bool flushed;

	if (c->c_state == C_DEAD)
		return;
	/* libevent 2.1's socket bufferevent also calls this after a write
	 * event that wrote nothing (its "res || !connected" test), possibly
	 * before bytes queued since then are written: only an empty output
	 * buffer means "flushed". */
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	flushed = c->c_queued > 0;
	c->c_wr_deadline = 0;
	c->c_queued = 0;
	if (c->c_state == C_CLOSING) {
		conn_shutdown(c);
		return;
	}
	/* keep-alive idleness counts from the moment the answer is out */
	if (flushed && c->c_state == C_IDLE)
		c->c_rd_deadline = loop_now_ms() + s->s_idle_ms;
	conn_arm(c);
	if (c->c_paused) {
		c->c_paused = false;
		conn_process(c);
	}
}

/* Write progress: the write deadline runs while output waits, and each
 * byte the peer takes moves it (a slow reader is closed, H-03). */
static void
conn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->c_w->w_srv;
	bool was_idle = c->c_wr_deadline == 0;

	if (c->c_state == C_DEAD || (info->n_added == 0 && info->n_deleted == 0))
		return;
	if (evbuffer_get_length(buf) == 0) {
		c->c_wr_deadline = 0;
		return;
	}
	if (was_idle || info->n_deleted > 0) {
		c->c_wr_deadline = loop_now_ms() + s->s_write_ms;
		if (was_idle)
			conn_arm(c);
	}
}

static void
tls_ready(struct conn *c)
{
	struct srv *s = c->c_w->w_srv;
	X509 *peer = SSL_get0_peer_certificate(c->c_ssl);

	c->c_handshake_done = true;
	if (peer != NULL) {
		/* VERIFY_PEER|FAIL_IF_NO_PEER_CERT already refused a bad chain;
		 * this is the belt to those braces, for resumed sessions too. */
		if (SSL_get_verify_result(c->c_ssl) != X509_V_OK ||
		    tls_cert_fingerprint(peer, c->c_fp) != 0) {
			srv_log(s, "tls_peer_unverified", c, c->c_l->l_name);
			stat_inc(&s->s_tls_failures);
			conn_abort(c, true);
			return;
		}
		c->c_has_fp = true;
	}
	c->c_resumed = SSL_session_reused(c->c_ssl) == 1;
	stat_inc(&s->s_handshakes);
	if (c->c_resumed)
		stat_inc(&s->s_resumed);
	c->c_state = C_IDLE;
	c->c_rd_deadline = loop_now_ms() + s->s_header_ms;
	conn_arm(c);
	conn_process(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->c_w->w_srv;

	if (c->c_state == C_DEAD)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->c_state == C_HANDSHAKE)
			tls_ready(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (c->c_state == C_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		const char *why = e ? ERR_reason_error_string(e) : NULL;

		stat_inc(&s->s_tls_failures);
		srv_log(s, "tls_handshake_failed", c,
		    why ? why : "connection closed");
		if (e != 0)
			conn_linger_raw(c);  /* an alert was sent */
		else
			conn_abort(c, false);
		return;
	}
	c->c_peer_eof = true;
	/* After an error, or any TLS EOF (libevent stops writing then),
	 * nothing more can be sent. */
	if ((what & BEV_EVENT_ERROR) || c->c_tls)
		c->c_broken = true;
	if (c->c_state == C_UPGRADED) {
		up_deliver(c);  /* what came before the EOF */
		if (c->c_state != C_UPGRADED)
			return;
		if (!c->c_broken &&
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			conn_close(c);  /* a half-closed plain peer still
			                 * gets what is queued */
		else
			conn_abort(c, false);
		return;
	}
	switch (c->c_state) {
	case C_PARKED:
		/* The point of keeping EV_READ on while parked: the client is
		 * gone, the request is cancelled now, not at its deadline. */
		stat_inc(&s->s_cancel_gone);
		cancel_request(c, SRV_CANCEL_GONE);
		conn_abort(c, false);
		return;
	case C_CLOSING:
	case C_IDLE:
	case C_HEAD:
	case C_BODY:
		/* A plain client that half-closed still gets what is queued;
		 * an unfinished request is dropped. */
		if (!c->c_broken &&
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
			if (c->c_state != C_CLOSING)
				conn_close(c);
			return;
		}
		conn_abort(c, false);
		return;
	default:
		conn_abort(c, false);
		return;
	}
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->c_w->w_srv;
	uint64_t now = loop_now_ms();

	(void)fd;
	(void)what;
	c->c_timer_at = 0;
	if (c->c_state == C_DEAD)
		return;
	if (c->c_wr_deadline && now >= c->c_wr_deadline) {
		stat_inc(&s->s_to_write);
		srv_log(s, "write_timeout", c, c->c_l->l_name);
		if (c->c_state == C_PARKED)
			cancel_request(c, SRV_CANCEL_GONE);
		c->c_broken = true;
		conn_abort(c, false);
		return;
	}
	if (c->c_state == C_PARKED && c->c_park_deadline &&
	    now >= c->c_park_deadline) {
		park_expire(c);
		return;
	}
	if (c->c_rd_deadline && now >= c->c_rd_deadline) {
		c->c_rd_deadline = 0;
		switch (c->c_state) {
		case C_HANDSHAKE:
			stat_inc(&s->s_to_handshake);
			srv_log(s, "handshake_timeout", c, c->c_l->l_name);
			conn_abort(c, false);
			return;
		case C_IDLE:
			if (evbuffer_get_length(
			    bufferevent_get_output(c->c_bev)) > 0) {
				c->c_rd_deadline = now + s->s_idle_ms;
				break;
			}
			/* A connection that never sent a request is held to the
			 * header deadline; a kept-alive one to the idle one. */
			if (c->c_served) {
				stat_inc(&s->s_to_idle);
			} else {
				stat_inc(&s->s_to_header);
				srv_log(s, "header_timeout", c, c->c_l->l_name);
			}
			conn_close(c);
			return;
		case C_HEAD:
			/* Slowloris (H-03): the whole head within the deadline,
			 * whatever the pace of its bytes. */
			stat_inc(&s->s_to_header);
			srv_log(s, "header_timeout", c, c->c_l->l_name);
			http_parser_free(c->c_parser);
			c->c_parser = NULL;
			conn_answer_close(c, 408);
			conn_close(c);
			return;
		case C_BODY:
			if ((c->c_rx - c->c_rate_mark) * 1000 >=
			    (uint64_t)s->s_body_min_rate * s->s_rate_window_ms) {
				c->c_rate_mark = c->c_rx;
				c->c_rd_deadline = now + s->s_rate_window_ms;
				break;
			}
			stat_inc(&s->s_to_body);
			srv_log(s, "body_too_slow", c, c->c_l->l_name);
			http_parser_free(c->c_parser);
			c->c_parser = NULL;
			conn_answer_close(c, 408);
			conn_close(c);
			return;
		case C_LINGER:
		case C_CLOSING:
			conn_abort(c, false);
			return;
		case C_UPGRADED:
			stat_inc(&s->s_to_idle);
			srv_log(s, "upgrade_idle", c, c->c_l->l_name);
			conn_close(c);
			return;
		default:
			break;
		}
	}
	conn_arm(c);
}

/* ---- accepting ------------------------------------------------------- */

static void
refuse(int fd)
{
	/* An immediate close; the peer sees EOF (or a reset). */
	close(fd);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct wlisten *wl = arg;
	struct worker *w = wl->wl_w;
	struct srv *s = w->w_srv;
	struct srv_listener *l = wl->wl_l;
	struct conn *c = NULL;
	SSL *ssl = NULL;
	uint64_t n;
	int one = 1;

	(void)lev;
	if (w->w_stopping) {
		refuse(fd);
		return;
	}
	n = atomic_fetch_add_explicit(&s->s_conns, 1, memory_order_relaxed);
	if (n >= s->s_max_conns) {
		atomic_fetch_sub_explicit(&s->s_conns, 1, memory_order_relaxed);
		stat_inc(&s->s_refused);
		srv_log(s, "conn_cap", NULL, l->l_name);
		refuse(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		atomic_fetch_sub_explicit(&s->s_conns, 1, memory_order_relaxed);
		refuse(fd);
		return;
	}
	c->c_w = w;
	c->c_wl = wl;
	c->c_l = l;
	if (salen > 0 && (size_t)salen <= sizeof(c->c_addr)) {
		memcpy(&c->c_addr, sa, (size_t)salen);
		c->c_addrlen = (socklen_t)salen;
	}
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr,
		    c->c_ip, sizeof(c->c_ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->c_ip,
		    sizeof(c->c_ip));
	ip_key(sa, c->c_ipkey);
	if (!ip_acquire(s, c->c_ipkey)) {
		stat_inc(&s->s_refused_ip);
		srv_log(s, "conn_cap_ip", c, l->l_name);
		atomic_fetch_sub_explicit(&s->s_conns, 1, memory_order_relaxed);
		free(c);
		refuse(fd);
		return;
	}
	c->c_ip_held = true;
	/* Inherited from the listener on Linux; set again in case it is not
	 * (pitfall 1: Nagle + delayed ACK cost 40 ms per keep-alive reply). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->c_timer = evtimer_new(w->w_base, conn_timer_cb, c);
	if (c->c_timer == NULL)
		goto fail_fd;
	if (l->l_tls) {
		pthread_mutex_lock(&l->l_tls_mu);
		ssl = SSL_new(l->l_ctx);
		pthread_mutex_unlock(&l->l_tls_mu);
		if (ssl == NULL)
			goto fail_fd;
		c->c_bev = bufferevent_openssl_socket_new(w->w_base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->c_bev == NULL) {
			/* The socket BIO owns fd now: SSL_free closes it. */
			SSL_free(ssl);
			goto fail;
		}
		c->c_ssl = ssl;
		c->c_tls = true;
		/* A peer closing without close_notify is an EOF, not an
		 * error (no body of ours is delimited by the close). */
		bufferevent_openssl_set_allow_dirty_shutdown(c->c_bev, 1);
		c->c_state = C_HANDSHAKE;
		c->c_rd_deadline = loop_now_ms() + s->s_handshake_ms;
	} else {
		c->c_bev = bufferevent_socket_new(w->w_base, fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->c_bev == NULL)
			goto fail_fd;
		c->c_state = C_IDLE;
		c->c_rd_deadline = loop_now_ms() + s->s_header_ms;
	}
	bufferevent_setcb(c->c_bev, conn_read_cb, conn_write_cb,
	    conn_event_cb, c);
	/* Unparsed input (pipelined requests, bytes that arrive while a
	 * request is parked) is capped; EV_READ stays on to see EOF. */
	bufferevent_setwatermark(c->c_bev, EV_READ, 0, MSSP_SRV_IN_HIGH);
	bufferevent_setwatermark(c->c_bev, EV_WRITE, 0, 0);
	if (evbuffer_add_cb(bufferevent_get_output(c->c_bev), conn_out_cb,
	    c) == NULL || bufferevent_enable(c->c_bev, EV_READ | EV_WRITE) != 0)
		goto fail;
	c->c_next = w->w_conns;
	if (w->w_conns != NULL)
		w->w_conns->c_prev = c;
	w->w_conns = c;
	stat_inc(&s->s_accepted);
	conn_arm(c);
	return;
fail_fd:
	close(fd);
fail:
	srv_log(s, "out_of_memory", c, l->l_name);
	if (c->c_bev != NULL)
		bufferevent_free(c->c_bev);
	if (c->c_timer != NULL)
		event_free(c->c_timer);
	ip_release(s, c->c_ipkey);
	atomic_fetch_sub_explicit(&s->s_conns, 1, memory_order_relaxed);
	free(c);
}

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wlisten *wl = arg;

	(void)fd;
	(void)what;
	if (!wl->wl_w->w_stopping && wl->wl_lev != NULL)
		evconnlistener_enable(wl->wl_lev);
}

/* accept(2) failed (EMFILE, ENFILE, ENOBUFS): libevent would retry at once
 * and spin; rest the listener for a moment instead. */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct wlisten *wl = arg;
	struct timeval tv = { 0, MSSP_SRV_ACCEPT_PAUSE_MS * 1000 };

	srv_log(wl->wl_w->w_srv, "accept_failed", NULL, strerror(errno));
	evconnlistener_disable(lev);
	evtimer_add(wl->wl_pause, &tv);
}

/* ---- the request handle ---------------------------------------------- */

const struct http_request *
srv_req_http(const struct srv_req *req)
{
	return req->rq_in_handler ? req->rq_http : NULL;
}

const char *
srv_req_method(const struct srv_req *req)
{
	return req->rq_in_handler ? req->rq_http->rq_method : NULL;
}

const char *
srv_req_path(const struct srv_req *req)
{
	return req->rq_in_handler ? req->rq_http->rq_path : NULL;
}

const char *
srv_req_header(const struct srv_req *req, const char *name)
{
	return req->rq_in_handler ? http_request_header(req->rq_http, name) :
	    NULL;
}

const uint8_t *
srv_req_body(const struct srv_req *req, size_t *len)
{
	static const uint8_t empty[1];

	if (!req->rq_in_handler) {
		*len = 0;
		return NULL;
	}
	*len = req->rq_http->rq_body_len;
	return req->rq_http->rq_body ? req->rq_http->rq_body : empty;
}

const struct sockaddr *
srv_req_peer_addr(const struct srv_req *req, socklen_t *len)
{
	*len = req->rq_conn->c_addrlen;
	return (const struct sockaddr *)&req->rq_conn->c_addr;
}

const char *
srv_req_peer_ip(const struct srv_req *req)
{
	return req->rq_conn->c_ip;
}

const char *
srv_req_listener(const struct srv_req *req)
{
	return req->rq_conn->c_l->l_name;
}

bool
srv_req_tls(const struct srv_req *req)
{
	return req->rq_conn->c_tls;
}

X509 *
srv_req_peer_cert(const struct srv_req *req)
{
	if (!req->rq_conn->c_tls || !req->rq_conn->c_has_fp)
		return NULL;
	return SSL_get0_peer_certificate(req->rq_conn->c_ssl);
}

const uint8_t *
srv_req_peer_fp(const struct srv_req *req)
{
	return req->rq_conn->c_has_fp ? req->rq_conn->c_fp : NULL;
}

bool
srv_req_resumed(const struct srv_req *req)
{
	return req->rq_conn->c_resumed;
}

const SSL *
srv_req_ssl(const struct srv_req *req)
{
	return req->rq_conn->c_ssl;
}

unsigned
srv_req_worker(const struct srv_req *req)
{
	return req->rq_conn->c_w->w_index;
}

uint64_t
srv_req_id(const struct srv_req *req)
{
	return req->rq_id;
}

void
srv_req_set_data(struct srv_req *req, void *data)
{
	req->rq_data = data;
}

void *
srv_req_data(const struct srv_req *req)
{
	return req->rq_data;
}

int
srv_req_park(struct srv_req *req, unsigned timeout_ms)
{
	struct conn *c = req->rq_conn;
	struct worker *w = c->c_w;
	struct srv *s = w->w_srv;
	uint64_t n, peak;
	size_t b;

	if (!req->rq_in_handler || req->rq_answered || req->rq_parked ||
	    c->c_l->l_cancel == NULL || timeout_ms == 0 ||
	    timeout_ms > MSSP_SRV_MAX_PARK_MS || w->w_stopping)
		return -1;
	n = atomic_fetch_add_explicit(&s->s_parked, 1, memory_order_relaxed);
	if (n >= s->s_max_parked) {
		atomic_fetch_sub_explicit(&s->s_parked, 1, memory_order_relaxed);
		stat_inc(&s->s_park_refused);
		srv_log(s, "park_cap", c, c->c_l->l_name);
		return -1;
	}
	peak = atomic_load_explicit(&s->s_parked_peak, memory_order_relaxed);
	while (n + 1 > peak && !atomic_compare_exchange_weak_explicit(
	    &s->s_parked_peak, &peak, n + 1, memory_order_relaxed,
	    memory_order_relaxed))
		;
	b = park_bucket(req->rq_id);
	c->c_park_next = w->w_park[b];
	w->w_park[b] = c;
	req->rq_parked = true;
	c->c_park_deadline = loop_now_ms() + timeout_ms;
	return 0;
}

/* ---- answers ----------------------------------------------------------- */

int
srv_reply_ex(struct srv_req *req, const struct srv_response *rs)
{
	struct conn *c = req->rq_conn;

	if (!loop_in_thread(c->c_w->w_loop) || !req->rq_active ||
	    req->rq_answered || req->rq_ended ||
	    (c->c_state != C_HANDLER && c->c_state != C_PARKED))
		return -1;
	if (c->c_broken) {
		/* The peer is gone but we have not seen it yet; answering is
		 * pointless, the cancel path ends the request. */
		return -1;
	}
	if (conn_write_response(c, rs, req->rq_keep_alive, req->rq_head) != 0)
		return -1;
	req->rq_answered = true;
	park_remove(c);
	if (!req->rq_in_handler && !req->rq_in_deadline) {
		/* Answered later (parked): finish here, and let the parser
		 * look at pipelined bytes from a fresh callback, never from
		 * inside the caller's stack. */
		finish_request(c);
		if (c->c_state != C_DEAD)
			bufferevent_trigger(c->c_bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS |
			    BEV_TRIG_DEFER_CALLBACKS);
	}
	return 0;
}

int
srv_reply(struct srv_req *req, int status, const char *content_type,
    const void *body, size_t len)
{
	struct srv_response rs;

	memset(&rs, 0, sizeof(rs));
	rs.rs_status = status;
	rs.rs_content_type = content_type;
	rs.rs_body = body;
	rs.rs_body_len = len;
	return srv_reply_ex(req, &rs);
}

static void
async_deliver(void *arg)
{
	struct srv_async *a = arg;
	struct worker *w = a->a_w;
	struct conn *c = park_find(w, a->a_id);

	if (c == NULL || c->c_state != C_PARKED ||
	    srv_reply_ex(&c->c_req, &a->a_rs) != 0)
		stat_inc(&w->w_srv->s_async_dropped);
	free(a);
}

/* Copy s (NUL included) into a->a_mem at *off; returns the copy. */
static const char *
async_copy(struct srv_async *a, size_t *off, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = a->a_mem + *off;

	memcpy(d, s, n);
	*off += n;
	return d;
}

int
srv_reply_async(struct srv *s, uint64_t id, const struct srv_response *rs)
{
	struct srv_async *a;
	unsigned wi = (unsigned)(id >> 56);
	size_t need, off = 0, i;

	if (wi == 0 || wi > s->s_nworkers || response_check(rs) != 0)
		return -1;
	need = rs->rs_body_len;
	if (rs->rs_content_type != NULL)
		need += strlen(rs->rs_content_type) + 1;
	for (i = 0; i < rs->rs_nheaders; i++)
		need += strlen(rs->rs_headers[i].sh_name) +
		    strlen(rs->rs_headers[i].sh_value) + 2;
	a = malloc(sizeof(*a) + need);
	if (a == NULL)
		return -1;
	memset(a, 0, sizeof(*a));
	a->a_w = s->s_workers[wi - 1];
	a->a_id = id;
	a->a_size = need;
	a->a_rs.rs_status = rs->rs_status;
	a->a_rs.rs_close = rs->rs_close;
	if (rs->rs_content_type != NULL)
		a->a_rs.rs_content_type = async_copy(a, &off,
		    rs->rs_content_type);
	for (i = 0; i < rs->rs_nheaders; i++) {
		a->a_hdrs[i].sh_name = async_copy(a, &off,
		    rs->rs_headers[i].sh_name);
		a->a_hdrs[i].sh_value = async_copy(a, &off,
		    rs->rs_headers[i].sh_value);
	}
	a->a_rs.rs_headers = a->a_hdrs;
	a->a_rs.rs_nheaders = rs->rs_nheaders;
	if (rs->rs_body_len > 0)
		memcpy(a->a_mem + off, rs->rs_body, rs->rs_body_len);
	a->a_rs.rs_body = a->a_mem + off;
	a->a_rs.rs_body_len = rs->rs_body_len;
	if (loop_call(a->a_w->w_loop, async_deliver, a) != 0) {
		free(a);
		return -1;
	}
	return 0;
}

/* ---- protocol upgrade ------------------------------------------------ */

/* A 101 answer: no body, no Content-Type, no close; an Upgrade header (the
 * one reserved name it may carry); the rest as for any response. */
static int
up_response_check(const struct srv_response *rs)
{
	bool has_upgrade = false;
	size_t i;

	if (rs == NULL || rs->rs_status != 101 || rs->rs_content_type != NULL ||
	    rs->rs_body_len != 0 || rs->rs_close ||
	    rs->rs_nheaders > MSSP_SRV_MAX_RESP_HEADERS ||
	    (rs->rs_nheaders > 0 && rs->rs_headers == NULL))
		return -1;
	for (i = 0; i < rs->rs_nheaders; i++) {
		const struct srv_header *h = &rs->rs_headers[i];

		if (h->sh_name == NULL || h->sh_value == NULL ||
		    !header_value_ok(h->sh_value) || h->sh_value[0] == '\0')
			return -1;
		if (ascii_ieq(h->sh_name, "Upgrade")) {
			has_upgrade = true;
			continue;
		}
		if (!header_name_ok(h->sh_name))
			return -1;
	}
	return has_upgrade ? 0 : -1;
}

struct srv_up *
srv_req_upgrade(struct srv_req *req, const struct srv_response *rs,
    const struct srv_up_ops *ops, void *arg, unsigned idle_ms)
{
	struct conn *c = req->rq_conn;
	struct srv *s = c->c_w->w_srv;
	const struct http_request *rq = req->rq_http;
	struct evbuffer *out = bufferevent_get_output(c->c_bev);
	struct hbuf h;
	size_t i;

	if (!loop_in_thread(c->c_w->w_loop) || !req->rq_in_handler ||
	    !req->rq_active || req->rq_answered || req->rq_ended ||
	    req->rq_parked || req->rq_head || c->c_state != C_HANDLER ||
	    c->c_broken || c->c_peer_eof || c->c_w->w_stopping || rq == NULL)
		return NULL;
	/* Not keep-alive capable (HTTP/1.0, Connection: close), a body (its
	 * bytes would be taken for the new protocol's), or answers to
	 * earlier pipelined requests still unsent. */
	if (!rq->rq_keep_alive || rq->rq_chunked ||
	    rq->rq_content_length > 0 || rq->rq_body_len > 0 ||
	    evbuffer_get_length(out) > 0)
		return NULL;
	if (ops == NULL || ops->uo_data == NULL || ops->uo_closed == NULL ||
	    up_response_check(rs) != 0)
		return NULL;
	h.hb_len = 0;
	h.hb_over = false;
	hb_adds(&h, "HTTP/1.1 101 Switching Protocols\r\nDate: ");
	hb_adds(&h, worker_date(c->c_w));
	/* Connection is the server's to write: it is what makes the 101 an
	 * upgrade (RFC 9110 7.8), so the application cannot leave it out. */
	hb_adds(&h, "\r\nConnection: Upgrade");
	for (i = 0; i < rs->rs_nheaders; i++) {
		hb_adds(&h, "\r\n");
		hb_adds(&h, rs->rs_headers[i].sh_name);
		hb_adds(&h, ": ");
		hb_adds(&h, rs->rs_headers[i].sh_value);
	}
	hb_adds(&h, "\r\n\r\n");
	if (h.hb_over || evbuffer_add(out, h.hb_buf, h.hb_len) != 0)
		return NULL;
	req->rq_answered = true;
	stat_inc(&s->s_responses);
	stat_inc(&s->s_upgraded);
	atomic_fetch_add_explicit(&s->s_up_open, 1, memory_order_relaxed);
	if (idle_ms > MSSP_SRV_MAX_DEADLINE_MS)
		idle_ms = MSSP_SRV_MAX_DEADLINE_MS;
	memset(&c->c_up, 0, sizeof(c->c_up));
	c->c_up.up_c = c;
	c->c_up.up_ops = *ops;
	c->c_up.up_arg = arg;
	c->c_up.up_idle_ms = idle_ms;
	c->c_upgraded = true;
	c->c_state = C_UPGRADED;
	c->c_park_deadline = 0;
	c->c_rd_deadline = idle_ms ? loop_now_ms() + idle_ms : 0;
	/* dispatch() finishes the hand-over once the handler returns */
	return &c->c_up;
}

int
srv_up_write(struct srv_up *up, const void *data, size_t len)
{
	struct conn *c = up->up_c;
	struct evbuffer *out;

	if (!loop_in_thread(c->c_w->w_loop) || c->c_state != C_UPGRADED ||
	    c->c_broken)
		return -1;
	if (len == 0)
		return 0;
	out = bufferevent_get_output(c->c_bev);
	if (len > MSSP_SRV_UP_MAX_OUTPUT ||
	    evbuffer_get_length(out) > MSSP_SRV_UP_MAX_OUTPUT - len) {
		/* A peer that does not read must not hold our memory; the
		 * close is abrupt (nothing more can be queued anyway) and
		 * uo_closed comes from the reaper, never from in here. */
		srv_log(c->c_w->w_srv, "upgrade_output_cap", c,
		    c->c_l->l_name);
		conn_abort(c, false);
		return -1;
	}
	if (evbuffer_add(out, data, len) != 0) {
		srv_log(c->c_w->w_srv, "out_of_memory", c, c->c_l->l_name);
		conn_abort(c, false);
		return -1;
	}
	return 0;
}

void
srv_up_close(struct srv_up *up)
{
	struct conn *c = up->up_c;

	if (!loop_in_thread(c->c_w->w_loop) || c->c_state != C_UPGRADED)
		return;
	if (c->c_req.rq_in_handler) {
		/* the handler may still read the request from the parser,
		 * which conn_close() would free: up_begin() closes */
		c->c_up_close_due = true;
		return;
	}
	conn_close(c);
}

unsigned
srv_up_worker(const struct srv_up *up)
{
	return up->up_c->c_w->w_index;
}

const char *
srv_up_peer_ip(const struct srv_up *up)
{
	return up->up_c->c_ip;
}

void
srv_up_set_idle(struct srv_up *up, unsigned idle_ms)
{
	struct conn *c = up->up_c;

	if (!loop_in_thread(c->c_w->w_loop) || c->c_state != C_UPGRADED)
		return;
	if (idle_ms > MSSP_SRV_MAX_DEADLINE_MS)
		idle_ms = MSSP_SRV_MAX_DEADLINE_MS;
	up->up_idle_ms = idle_ms;
	c->c_rd_deadline = idle_ms ? loop_now_ms() + idle_ms : 0;
	conn_arm(c);
}

/* ---- setup and teardown ---------------------------------------------- */

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* A non-blocking listening socket on l's address and port. */
static int
listen_socket(struct srv_listener *l, uint16_t port, struct net_err *e)
{
	struct sockaddr_storage ss;
	int fd, one = 1;

	memcpy(&ss, &l->l_addr, sizeof(ss));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		net_err_setf(e, "socket() failed");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
		net_err_setf(e, "setsockopt() failed");
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&ss, l->l_addrlen) != 0) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "bind() failed for listener %s: %s", l->l_name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, MSSP_SRV_BACKLOG) != 0) {
		net_err_setf(e, "listen() failed");
		close(fd);
		return -1;
	}
	return fd;
}

static unsigned
pick(unsigned v, unsigned def, unsigned max)
{
	if (v == 0)
		return def;
	return v > max ? max : v;
}

static int
srv_conf_apply(struct srv *s, const struct srv_conf *conf, struct net_err *e)
{
	if (conf->sc_workers > MSSP_SRV_MAX_WORKERS) {
		net_err_setf(e, "too many workers");
		return -1;
	}
	if (conf->sc_nlisteners == 0 ||
	    conf->sc_nlisteners > MSSP_SRV_MAX_LISTENERS) {
		net_err_setf(e, "need 1..MSSP_SRV_MAX_LISTENERS listeners");
		return -1;
	}
	if (conf->sc_max_conns > MSSP_SRV_MAX_CONNS ||
	    conf->sc_max_conns_per_ip > MSSP_SRV_MAX_CONNS ||
	    conf->sc_max_parked > MSSP_SRV_MAX_CONNS) {
		net_err_setf(e, "a connection or parking cap is over "
		    "MSSP_SRV_MAX_CONNS");
		return -1;
	}
	s->s_nworkers = pick(conf->sc_workers, 1, MSSP_SRV_MAX_WORKERS);
	s->s_max_conns = pick(conf->sc_max_conns, MSSP_SRV_MAX_CONNS,
	    MSSP_SRV_MAX_CONNS);
	s->s_max_per_ip = pick(conf->sc_max_conns_per_ip,
	    MSSP_SRV_CONNS_PER_IP, MSSP_SRV_MAX_CONNS);
	s->s_max_parked = pick(conf->sc_max_parked, MSSP_SRV_PARKED,
	    MSSP_SRV_MAX_CONNS);
	s->s_handshake_ms = pick(conf->sc_handshake_ms, MSSP_SRV_HANDSHAKE_MS,
	    MSSP_SRV_MAX_DEADLINE_MS);
	s->s_header_ms = pick(conf->sc_header_ms, MSSP_HTTP_HEADER_DEADLINE_MS,
	    MSSP_SRV_MAX_DEADLINE_MS);
	s->s_idle_ms = pick(conf->sc_idle_ms, MSSP_HTTP_IDLE_MS,
	    MSSP_SRV_MAX_DEADLINE_MS);
	s->s_write_ms = pick(conf->sc_write_ms, MSSP_SRV_WRITE_MS,
	    MSSP_SRV_MAX_DEADLINE_MS);
	s->s_body_min_rate = pick(conf->sc_body_min_rate,
	    MSSP_SRV_BODY_MIN_RATE, MSSP_HTTP_MAX_BODY);
	s->s_rate_window_ms = pick(conf->sc_rate_window_ms,
	    MSSP_SRV_RATE_WINDOW_MS, MSSP_SRV_MAX_DEADLINE_MS);
	s->s_linger_ms = pick(conf->sc_linger_ms, MSSP_SRV_LINGER_MS,
	    MSSP_SRV_MAX_DEADLINE_MS);
	s->s_log = conf->sc_log;
	s->s_log_arg = conf->sc_log_arg;
	return 0;
}

static int
listener_init(struct srv_listener *l, const struct srv_listener_conf *lc,
    struct net_err *e)
{
	struct addrinfo hints, *ai = NULL;
	size_t n;

	if (lc->sl_addr == NULL || lc->sl_handler == NULL) {
		net_err_setf(e, "a listener needs an address and a handler");
		return -1;
	}
	if (lc->sl_max_body > MSSP_HTTP_MAX_BODY) {
		net_err_setf(e, "sl_max_body over MSSP_HTTP_MAX_BODY");
		return -1;
	}
	n = lc->sl_name ? strlen(lc->sl_name) : 0;
	if (n > MSSP_SRV_MAX_NAME) {
		net_err_setf(e, "listener name too long");
		return -1;
	}
	memcpy(l->l_name, n ? lc->sl_name : "", n);
	l->l_name[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if (getaddrinfo(lc->sl_addr, NULL, &hints, &ai) != 0 || ai == NULL ||
	    ai->ai_addrlen > sizeof(l->l_addr)) {
		net_err_setf(e, "listener address is not a numeric IP address");
		if (ai != NULL)
			freeaddrinfo(ai);
		return -1;
	}
	memcpy(&l->l_addr, ai->ai_addr, ai->ai_addrlen);
	l->l_addrlen = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	if (lc->sl_tls == NULL && !lc->sl_plain_public &&
	    !addr_is_loopback((struct sockaddr *)&l->l_addr)) {
		net_err_setf(e, "plain HTTP listener on a non-loopback address "
		    "(set sl_plain_public to allow it)");
		return -1;
	}
	l->l_port = lc->sl_port;
	l->l_max_body = lc->sl_max_body ? lc->sl_max_body : MSSP_HTTP_MAX_BODY;
	l->l_handler = lc->sl_handler;
	l->l_cancel = lc->sl_cancel;
	l->l_arg = lc->sl_arg;
	if (lc->sl_tls != NULL) {
		if (SSL_CTX_up_ref(lc->sl_tls) != 1) {
			net_err_setf(e, "SSL_CTX_up_ref failed");
			return -1;
		}
		l->l_ctx = lc->sl_tls;
		l->l_tls = true;
	}
	return 0;
}

static struct worker *
worker_new(struct srv *s, unsigned index, struct net_err *e)
{
	struct worker *w = calloc(1, sizeof(*w));
	size_t i;

	if (w == NULL) {
		net_err_setf(e, "out of memory");
		return NULL;
	}
	w->w_srv = s;
	w->w_index = index;
	w->w_loop = loop_new();
	if (w->w_loop == NULL) {
		net_err_setf(e, "cannot create an event loop");
		free(w);
		return NULL;
	}
	w->w_base = loop_base(w->w_loop);
	w->w_reap = event_new(w->w_base, -1, 0, reap_cb, w);
	if (w->w_reap == NULL) {
		net_err_setf(e, "out of memory");
		loop_free(w->w_loop);
		free(w);
		return NULL;
	}
	for (i = 0; i < s->s_nlisteners; i++) {
		w->w_ls[i].wl_w = w;
		w->w_ls[i].wl_l = &s->s_ls[i];
	}
	return w;
}

static int
worker_listen(struct worker *w, struct net_err *e)
{
	struct srv *s = w->w_srv;
	size_t i;
	int fd;

	for (i = 0; i < s->s_nlisteners; i++) {
		struct wlisten *wl = &w->w_ls[i];
		struct srv_listener *l = &s->s_ls[i];

		fd = listen_socket(l, l->l_port, e);
		if (fd < 0)
			return -1;
		if (l->l_port == 0) {
			/* The first socket got an ephemeral port: the other
			 * workers bind the same one (SO_REUSEPORT). */
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
				net_err_setf(e, "getsockname() failed");
				close(fd);
				return -1;
			}
			l->l_port = ntohs(ss.ss_family == AF_INET ?
			    ((struct sockaddr_in *)&ss)->sin_port :
			    ((struct sockaddr_in6 *)&ss)->sin6_port);
		}
		wl->wl_pause = evtimer_new(w->w_base, accept_resume_cb, wl);
		wl->wl_lev = wl->wl_pause == NULL ? NULL :
		    evconnlistener_new(w->w_base, accept_cb, wl,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (wl->wl_lev == NULL) {
			net_err_setf(e, "evconnlistener_new failed");
			close(fd);
			return -1;
		}
		evconnlistener_set_error_cb(wl->wl_lev, accept_error_cb);
	}
	return 0;
}

struct srv *
srv_new(const struct srv_conf *conf, struct net_err *e)
{
	struct srv *s;
	size_t i;
	unsigned k;

	e->ne_detail[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		net_err_setf(e, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->s_ip_mu, NULL);
	for (i = 0; i < MSSP_SRV_MAX_LISTENERS; i++)
		pthread_mutex_init(&s->s_ls[i].l_tls_mu, NULL);
	if (srv_conf_apply(s, conf, e) != 0)
		goto fail;
	if (RAND_bytes((unsigned char *)&s->s_ip_seed,
	    sizeof(s->s_ip_seed)) != 1) {
		ERR_clear_error();
		net_err_setf(e, "no randomness");
		goto fail;
	}
	for (i = 0; i < conf->sc_nlisteners; i++) {
		s->s_ls[i].l_srv = s;
		if (listener_init(&s->s_ls[i], &conf->sc_listeners[i], e) != 0)
			goto fail;
		s->s_nlisteners = i + 1;
	}
	for (k = 0; k < s->s_nworkers; k++) {
		s->s_workers[k] = worker_new(s, k, e);
		if (s->s_workers[k] == NULL)
			goto fail;
		if (worker_listen(s->s_workers[k], e) != 0)
			goto fail;
	}
	return s;
fail:
	s->s_started = false;
	srv_free(s);
	return NULL;
}

int
srv_start(struct srv *s, struct net_err *e)
{
	unsigned k;

	e->ne_detail[0] = '\0';
	if (s->s_started || s->s_stopped) {
		net_err_setf(e, "server already started");
		return -1;
	}
	s->s_started = true;
	for (k = 0; k < s->s_nworkers; k++) {
		if (loop_start(s->s_workers[k]->w_loop) != 0) {
			net_err_setf(e, "cannot start a worker thread");
			return -1;
		}
	}
	return 0;
}

/* On the worker's thread: stop accepting, cancel parked requests, close
 * every connection, free the dead. */
static void
worker_shutdown(void *arg)
{
	struct worker *w = arg;
	struct srv *s = w->w_srv;
	struct conn *c;
	size_t i;

	w->w_stopping = true;
	for (i = 0; i < s->s_nlisteners; i++) {
		if (w->w_ls[i].wl_lev != NULL)
			evconnlistener_free(w->w_ls[i].wl_lev);
		w->w_ls[i].wl_lev = NULL;
		if (w->w_ls[i].wl_pause != NULL)
			evtimer_del(w->w_ls[i].wl_pause);
	}
	for (c = w->w_conns; c != NULL; c = c->c_next) {
		if (c->c_state == C_DEAD)
			continue;
		if (c->c_state == C_PARKED)
			cancel_request(c, SRV_CANCEL_SHUTDOWN);
		conn_abort(c, true);
	}
	reap_cb(-1, 0, w);
}

void
srv_stop(struct srv *s)
{
	unsigned k;

	if (s->s_stopped)
		return;
	s->s_stopped = true;
	for (k = 0; k < s->s_nworkers; k++) {
		struct worker *w = s->s_workers[k];

		if (w == NULL)
			continue;
		if (loop_call(w->w_loop, worker_shutdown, w) != 0)
			worker_shutdown(w);  /* loop already stopped */
		loop_stop(w->w_loop);
	}
}

static void
worker_free(struct worker *w)
{
	struct srv *s = w->w_srv;
	size_t i;
	unsigned k;

	for (i = 0; i < s->s_nlisteners; i++) {
		struct wlisten *wl = &w->w_ls[i];

		if (wl->wl_lev != NULL)
			evconnlistener_free(wl->wl_lev);
		if (wl->wl_pause != NULL)
			event_free(wl->wl_pause);
		for (k = 0; k < wl->wl_ncache; k++)
			http_parser_free(wl->wl_cache[k]);
	}
	if (w->w_reap != NULL)
		event_free(w->w_reap);
	loop_free(w->w_loop);
	free(w);
}

void
srv_free(struct srv *s)
{
	size_t i;
	unsigned k;
	struct ip_entry *ie, *next;

	if (s == NULL)
		return;
	srv_stop(s);
	for (k = 0; k < MSSP_SRV_MAX_WORKERS; k++)
		if (s->s_workers[k] != NULL)
			worker_free(s->s_workers[k]);
	for (i = 0; i < MSSP_SRV_MAX_LISTENERS; i++) {
		SSL_CTX_free(s->s_ls[i].l_ctx);
		pthread_mutex_destroy(&s->s_ls[i].l_tls_mu);
	}
	for (i = 0; i < MSSP_SRV_IP_BUCKETS; i++)
		for (ie = s->s_ip[i]; ie != NULL; ie = next) {
			next = ie->ie_next;
			free(ie);
		}
	pthread_mutex_destroy(&s->s_ip_mu);
	free(s);
}

uint16_t
srv_listener_port(const struct srv *s, size_t i)
{
	return i < s->s_nlisteners ? s->s_ls[i].l_port : 0;
}

int
srv_listener_set_tls(struct srv *s, size_t i, SSL_CTX *ctx)
{
	struct srv_listener *l;
	SSL_CTX *old;

	if (i >= s->s_nlisteners || ctx == NULL || !s->s_ls[i].l_tls)
		return -1;
	if (SSL_CTX_up_ref(ctx) != 1)
		return -1;
	l = &s->s_ls[i];
	pthread_mutex_lock(&l->l_tls_mu);
	old = l->l_ctx;
	l->l_ctx = ctx;
	pthread_mutex_unlock(&l->l_tls_mu);
	SSL_CTX_free(old);  /* live connections hold their own references */
	return 0;
}

void
srv_get_stats(const struct srv *s, struct srv_stats *o)
{
	struct srv *m = (struct srv *)s;  /* atomics are read, not changed */

#define LD(f) atomic_load_explicit(&m->f, memory_order_relaxed)
	memset(o, 0, sizeof(*o));
	o->st_conns_open = LD(s_conns);
	o->st_conns_accepted = LD(s_accepted);
	o->st_conns_refused = LD(s_refused);
	o->st_conns_refused_ip = LD(s_refused_ip);
	o->st_tls_handshakes = LD(s_handshakes);
	o->st_tls_resumed = LD(s_resumed);
	o->st_tls_failures = LD(s_tls_failures);
	o->st_requests = LD(s_requests);
	o->st_responses = LD(s_responses);
	o->st_parse_errors = LD(s_parse_errors);
	o->st_parked = LD(s_parked);
	o->st_parked_peak = LD(s_parked_peak);
	o->st_park_refused = LD(s_park_refused);
	o->st_cancel_gone = LD(s_cancel_gone);
	o->st_cancel_deadline = LD(s_cancel_deadline);
	o->st_timeouts_handshake = LD(s_to_handshake);
	o->st_timeouts_header = LD(s_to_header);
	o->st_timeouts_body = LD(s_to_body);
	o->st_timeouts_idle = LD(s_to_idle);
	o->st_timeouts_write = LD(s_to_write);
	o->st_async_dropped = LD(s_async_dropped);
	o->st_upgraded = LD(s_upgraded);
	o->st_upgraded_open = LD(s_up_open);
#undef LD
}

struct loop *
srv_worker_loop(const struct srv *s, unsigned i)
{
	return i < s->s_nworkers ? s->s_workers[i]->w_loop : NULL;
}

unsigned
srv_workers(const struct srv *s)
{
	return s->s_nworkers;
}
