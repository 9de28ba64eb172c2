/*
 * wsclient.c - outbound WebSocket over TLS on a libevent base (wsclient.h).
 *
 * States: CONNECTING (TCP, then TLS) -> UPGRADING (request sent, reading
 * the response head) -> OPEN (ws.h framing) -> DRAIN (WebSocket closed,
 * waiting a little for the server to close TCP first, RFC 6455 §7.1.1) ->
 * DONE.  One timer serves the connect deadline, the close deadline and the
 * drain deadline.
 *
 * Re-entrancy: the application's callbacks may call wsc_send, wsc_close
 * and wsc_free.  Every entry (libevent callback or API call) counts its
 * depth; ws callbacks only record what happened, and the outermost entry
 * acts on it, so the bufferevent is never freed under a caller's feet and
 * wsc_free from a callback only marks the handle.
 */
#include "net/wsclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>

#include "net/ws.h"
#include "util/limits.h"

enum wsc_state {
	WSC_CONNECTING,
	WSC_UPGRADING,
	WSC_OPEN,
	WSC_DRAIN,
	WSC_DONE
};

struct wsc {
	struct event_base *c_base;
	struct bufferevent *c_bev;
	SSL *c_ssl;             /* borrowed from c_bev, NULL if plain      */
	struct event *c_timer;
	struct ws *c_ws;
	struct wsc_ops c_ops;
	void *c_arg;
	enum wsc_state c_st;
	char c_key[WS_CLIENT_KEY_LEN + 1];
	char *c_host;
	char *c_path;
	uint16_t c_port;
	size_t c_max_msg;
	unsigned c_depth;
	bool c_free_due;        /* wsc_free() from inside a callback       */
	bool c_close_due;       /* wsc_close() before the upgrade finished */
	bool c_ws_done;         /* ws said wi_closed                       */
	uint16_t c_ws_code;
};

/* ---- helpers ---------------------------------------------------------- */

static void
wsc_err(struct net_err *e, const char *msg)
{
	if (e != NULL)
		snprintf(e->ne_detail, sizeof(e->ne_detail), "%s", msg);
}

static void
wsc_arm(struct wsc *c, unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(c->c_timer, &tv);
}

/* Static text for a close code (the phone logs it; the AFE's own codes
 * are those of roles/afe.h). */
static const char *
code_why(uint16_t code)
{
	switch (code) {
	case 1000: return "normal closure";
	case 1001: return "going away";
	case 1002: return "protocol error";
	case 1003: return "unsupported data";
	case 1005: return "closed without a status";
	case 1006: return "connection lost";
	case 1007: return "invalid payload";
	case 1008: return "policy violation";
	case 1009: return "message too big";
	case 1011: return "server error";
	case 4001: return "authentication failed";
	case 4002: return "replaced by a newer connection";
	default: return code >= 4000 ? "closed by the application" : "closed";
	}
}

static void
wsc_destroy(struct wsc *c)
{
	if (c->c_bev != NULL)
		bufferevent_free(c->c_bev);
	if (c->c_timer != NULL)
		event_free(c->c_timer);
	ws_free(c->c_ws);
	free(c->c_host);
	free(c->c_path);
	free(c);
}

/*
 * The end: the connection goes (close_notify first when the WebSocket
 * closed cleanly), then on_closed as the last action.  Only with
 * c_depth > 0, so that a wsc_free from on_closed is deferred.
 */
static void
wsc_end(struct wsc *c, const char *why, bool orderly)
{
	if (c->c_st == WSC_DONE)
		return;
	c->c_st = WSC_DONE;
	evtimer_del(c->c_timer);
	if (c->c_bev != NULL) {
		bufferevent_disable(c->c_bev, EV_READ | EV_WRITE);
		if (orderly && c->c_ssl != NULL) {
			SSL_shutdown(c->c_ssl);
		}
		ERR_clear_error();
		bufferevent_free(c->c_bev);  /* safe from its own callbacks */
		c->c_bev = NULL;
		c->c_ssl = NULL;
	}
	if (!c->c_free_due)
		c->c_ops.on_closed(c, c->c_arg, why);
}

/* What the WebSocket layer reported, acted on from the outermost entry. */
static void
wsc_progress(struct wsc *c)
{
	if (c->c_st == WSC_OPEN && c->c_ws_done) {
		/* Our close frame (or answer) flushes; the server closes TCP
		 * first, and we wait for that a bounded time.  A dead
		 * transport (1006) ends at once, but from the timer: never
		 * with on_closed inside the caller's wsc_send/wsc_close. */
		c->c_st = WSC_DRAIN;
		evtimer_del(c->c_timer);
		wsc_arm(c, c->c_ws_code == 1006 ? 0 : MSSP_WS_CLOSE_MS);
	}
}

static void
wsc_enter(struct wsc *c)
{
	c->c_depth++;
}

static void
wsc_leave(struct wsc *c)
{
	if (c->c_depth == 1 && !c->c_free_due)
		wsc_progress(c);
	if (--c->c_depth == 0 && c->c_free_due)
		wsc_destroy(c);
}

/* ---- ws.h transport --------------------------------------------------- */

static int
wsc_io_write(void *arg, const uint8_t *data, size_t len)
{
	struct wsc *c = arg;
	struct evbuffer *out;

	if (c->c_bev == NULL)
		return -1;
	out = bufferevent_get_output(c->c_bev);
	if (len > MSSP_WSC_MAX_OUTPUT ||
	    evbuffer_get_length(out) > MSSP_WSC_MAX_OUTPUT - len)
		return -1;  /* the server does not read: give up */
	return evbuffer_add(out, data, len) == 0 ? 0 : -1;
}

static void
wsc_io_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	struct wsc *c = arg;

	(void)binary;
	if (c->c_st == WSC_OPEN && !c->c_free_due)
		c->c_ops.on_message(c, c->c_arg, msg, len);
}

static void
wsc_io_closed(void *arg, uint16_t code)
{
	struct wsc *c = arg;

	c->c_ws_done = true;
	c->c_ws_code = code;
}

static const struct ws_io wsc_io = {
	wsc_io_write, wsc_io_message, wsc_io_closed
};

/* ---- the upgrade response --------------------------------------------- */

static bool
is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool
name_is(const char *n, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(n, want, len) == 0;
}

/*
 * A small strict parse of the response head (NUL-terminated, CRLF lines,
 * ending with the empty line): the status line and the three fields the
 * check needs, each at most once.  No obs-fold, no bare CR or LF, no
 * control characters.  A server that answers with an extension or
 * subprotocol we did not ask for fails the upgrade (RFC 6455 §4.1).
 * Fills the pointers (into head, which is modified) and returns the status,
 * or -1.
 */
static int
parse_head(char *head, const char **upgrade, const char **connection,
    const char **accept)
{
	char *line = head, *eol, *colon, *v, *end;
	int status;

	*upgrade = *connection = *accept = NULL;
	eol = strstr(line, "\r\n");
	if (eol == NULL || eol - line < 12 ||
	    strncmp(line, "HTTP/1.1 ", 9) != 0 ||
	    line[9] < '1' || line[9] > '5' ||
	    line[10] < '0' || line[10] > '9' ||
	    line[11] < '0' || line[11] > '9' ||
	    (eol - line > 12 && line[12] != ' '))
		return -1;
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
	    (line[11] - '0');
	for (v = line; v < eol; v++)
		if ((unsigned char)*v < 0x20 && *v != '\t')
			return -1;
	for (line = eol + 2; *line != '\0'; line = eol + 2) {
		const char **slot = NULL;

		eol = strstr(line, "\r\n");
		if (eol == NULL)
			return -1;
		if (eol == line)
			break;  /* the empty line */
		*eol = '\0';
		colon = line;
		while (is_tchar((unsigned char)*colon))
			colon++;
		if (colon == line || *colon != ':')
			return -1;  /* obs-fold, space before ':', bad name */
		for (v = colon + 1; *v != '\0'; v++)
			if (((unsigned char)*v < 0x20 && *v != '\t') ||
			    (unsigned char)*v == 0x7f)
				return -1;
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		end = v + strlen(v);
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (name_is(line, (size_t)(colon - line), "Upgrade"))
			slot = upgrade;
		else if (name_is(line, (size_t)(colon - line), "Connection"))
			slot = connection;
		else if (name_is(line, (size_t)(colon - line),
		    "Sec-WebSocket-Accept"))
			slot = accept;
		else if (name_is(line, (size_t)(colon - line),
		    "Sec-WebSocket-Extensions") ||
		    name_is(line, (size_t)(colon - line),
		    "Sec-WebSocket-Protocol"))
			return -1;
		if (slot != NULL) {
			if (*slot != NULL)
				return -1;  /* twice */
			*slot = v;
		}
	}
	return status;
}

/* Returns false when the connection has ended. */
static bool
wsc_read_head(struct wsc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->c_bev);
	struct evbuffer_ptr p;
	const char *up, *conn, *acc;
	size_t hlen;
	char *head;
	int status;

	p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) > MSSP_HTTP_MAX_HEAD) {
			wsc_end(c, "upgrade response head too large", false);
			return false;
		}
		return true;  /* more to come */
	}
	hlen = (size_t)p.pos + 4;
	if (hlen > MSSP_HTTP_MAX_HEAD) {
		wsc_end(c, "upgrade response head too large", false);
		return false;
	}
	head = malloc(hlen + 1);
	if (head == NULL) {
		wsc_end(c, "out of memory", false);
		return false;
	}
	evbuffer_remove(in, head, hlen);
	head[hlen] = '\0';
	if (memchr(head, '\0', hlen) != NULL) {
		free(head);
		wsc_end(c, "bad upgrade response", false);
		return false;
	}
	status = parse_head(head, &up, &conn, &acc);
	if (status != 101) {
		free(head);
		wsc_end(c, status < 0 ? "bad upgrade response" :
		    "upgrade refused", false);
		return false;
	}
	if (ws_client_check(c->c_key, status, up, conn, acc) != 0) {
		free(head);
		wsc_end(c, "bad upgrade response", false);
		return false;
	}
	free(head);
	c->c_ws = ws_new(true, &wsc_io, c, c->c_max_msg);
	if (c->c_ws == NULL) {
		wsc_end(c, "out of memory", false);
		return false;
	}
	c->c_st = WSC_OPEN;
	evtimer_del(c->c_timer);
	c->c_ops.on_open(c, c->c_arg);
	return c->c_st == WSC_OPEN && !c->c_free_due;
}

/* ---- bufferevent callbacks -------------------------------------------- */

static void
wsc_feed(struct wsc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->c_bev);
	struct evbuffer_iovec v;

	while (c->c_st == WSC_OPEN && !c->c_ws_done && !c->c_free_due &&
	    evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		/* callbacks from here only record or defer: the input
		 * buffer is untouched until the drain */
		(void)ws_feed(c->c_ws, v.iov_base, v.iov_len);
		evbuffer_drain(in, v.iov_len);
	}
}

static void
wsc_read_cb(struct bufferevent *bev, void *arg)
{
	struct wsc *c = arg;

	wsc_enter(c);
	if (c->c_st == WSC_UPGRADING) {
		if (wsc_read_head(c))
			wsc_feed(c);
	} else if (c->c_st == WSC_OPEN) {
		wsc_feed(c);
	} else {
		struct evbuffer *in = bufferevent_get_input(bev);

		evbuffer_drain(in, evbuffer_get_length(in));
	}
	wsc_leave(c);
}

static void
wsc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wsc *c = arg;
	char req[MSSP_WSC_MAX_PATH + MSSP_WSC_MAX_HOST + 256];
	bool v6;
	int n;

	wsc_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->c_st != WSC_CONNECTING)
			goto out;
		v6 = strchr(c->c_host, ':') != NULL;
		n = snprintf(req, sizeof(req),
		    "GET %s HTTP/1.1\r\nHost: %s%s%s",
		    c->c_path, v6 ? "[" : "", c->c_host, v6 ? "]" : "");
		if (c->c_port != (c->c_ssl != NULL ? 443 : 80))
			n += snprintf(req + n, sizeof(req) - (size_t)n, ":%u",
			    c->c_port);
		n += snprintf(req + n, sizeof(req) - (size_t)n,
		    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		    "\r\n", c->c_key);
		if (n <= 0 || (size_t)n >= sizeof(req) ||
		    bufferevent_write(bev, req, (size_t)n) != 0) {
			wsc_end(c, "out of memory", false);
			goto out;
		}
		c->c_st = WSC_UPGRADING;
		goto out;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		goto out;
	switch (c->c_st) {
	case WSC_CONNECTING:
		wsc_end(c, (c->c_ssl != NULL &&
		    bufferevent_get_openssl_error(bev) != 0) ?
		    "TLS handshake failed" : "connect failed", false);
		break;
	case WSC_UPGRADING:
		/* a complete head may sit right before the EOF */
		if (wsc_read_head(c))
			wsc_feed(c);
		if (c->c_st == WSC_UPGRADING)
			wsc_end(c, "connection closed during the upgrade",
			    false);
		else if (c->c_st == WSC_OPEN && !c->c_ws_done)
			wsc_end(c, "connection lost", false);
		break;
	case WSC_OPEN:
		wsc_feed(c);  /* a close frame may sit right before it */
		if (c->c_st == WSC_OPEN && c->c_ws_done)
			wsc_end(c, code_why(c->c_ws_code), false);
		else
			wsc_end(c, "connection lost", false);
		break;
	case WSC_DRAIN:
		/* the server closed first, as it should */
		wsc_end(c, code_why(c->c_ws_code), false);
		break;
	default:
		break;
	}
out:
	wsc_leave(c);
}

static void
wsc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wsc *c = arg;

	(void)fd;
	(void)what;
	wsc_enter(c);
	switch (c->c_st) {
	case WSC_CONNECTING:
	case WSC_UPGRADING:
		wsc_end(c, c->c_close_due ? "closed before the upgrade" :
		    "timeout", false);
		break;
	case WSC_OPEN:
		/* wsc_close() got no answer in time */
		wsc_end(c, "close handshake timeout", false);
		break;
	case WSC_DRAIN:
		wsc_end(c, code_why(c->c_ws_code), c->c_ws_code != 1006);
		break;
	default:
		break;
	}
	wsc_leave(c);
}

/* ---- API -------------------------------------------------------------- */

static bool
host_ok(const char *h)
{
	size_t i, n = h ? strlen(h) : 0;

	if (n == 0 || n > MSSP_WSC_MAX_HOST)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' ||
		    ch == ':'))
			return false;
	}
	return true;
}

static bool
path_ok(const char *p)
{
	size_t i, n = p ? strlen(p) : 0;

	if (n == 0 || n > MSSP_WSC_MAX_PATH || p[0] != '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

struct wsc *
wsc_connect(struct event_base *base, const struct wsc_conf *conf,
    const struct wsc_ops *ops, void *arg, struct net_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct wsc *c;
	SSL *ssl = NULL;

	if (e != NULL)
		e->ne_detail[0] = '\0';
	if (base == NULL || conf == NULL || ops == NULL || ops->on_open == NULL ||
	    ops->on_message == NULL || ops->on_closed == NULL ||
	    conf->wc_addr == NULL || conf->wc_port == 0) {
		wsc_err(e, "wsc_connect: missing argument");
		return NULL;
	}
	if (!host_ok(conf->wc_host) || !path_ok(conf->wc_path)) {
		wsc_err(e, "wsc_connect: bad host or path");
		return NULL;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, conf->wc_addr,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(conf->wc_port);
		sslen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, conf->wc_addr,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(conf->wc_port);
		sslen = sizeof(struct sockaddr_in6);
	} else {
		wsc_err(e, "wsc_connect: address is not a numeric IP address");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		wsc_err(e, "out of memory");
		return NULL;
	}
	c->c_base = base;
	c->c_ops = *ops;
	c->c_arg = arg;
	c->c_port = conf->wc_port;
	c->c_max_msg = conf->wc_max_msg;
	c->c_host = strdup(conf->wc_host);
	c->c_path = strdup(conf->wc_path);
	c->c_timer = evtimer_new(base, wsc_timer_cb, c);
	if (c->c_host == NULL || c->c_path == NULL || c->c_timer == NULL) {
		wsc_err(e, "out of memory");
		goto fail;
	}
	if (ws_client_key(c->c_key) != 0) {
		wsc_err(e, "no randomness");
		goto fail;
	}
	if (conf->wc_tls != NULL) {
		/* an unauthenticated server would get the device's traffic */
		if (!(SSL_CTX_get_verify_mode(conf->wc_tls) & SSL_VERIFY_PEER)) {
			wsc_err(e, "wsc_connect: the TLS context does not "
			    "verify the server");
			goto fail;
		}
		ssl = SSL_new(conf->wc_tls);
		if (ssl == NULL || tls_client_prepare(ssl, c->c_host) != 0) {
			SSL_free(ssl);
			ERR_clear_error();
			wsc_err(e, "wsc_connect: cannot set up TLS");
			goto fail;
		}
		c->c_bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->c_bev == NULL) {
			SSL_free(ssl);
			wsc_err(e, "out of memory");
			goto fail;
		}
		c->c_ssl = ssl;
		/* our messages are framed: a TCP close without close_notify
		 * truncates nothing silently */
		bufferevent_openssl_set_allow_dirty_shutdown(c->c_bev, 1);
	} else {
		c->c_bev = bufferevent_socket_new(base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->c_bev == NULL) {
			wsc_err(e, "out of memory");
			goto fail;
		}
	}
	bufferevent_setcb(c->c_bev, wsc_read_cb, NULL, wsc_event_cb, c);
	if (bufferevent_enable(c->c_bev, EV_READ | EV_WRITE) != 0 ||
	    bufferevent_socket_connect(c->c_bev, (struct sockaddr *)&ss,
	    (int)sslen) != 0) {
		ERR_clear_error();
		wsc_err(e, "connect failed");
		goto fail;
	}
	/* small messages in both directions (prompt, answer, ack): without
	 * this, Nagle and delayed ACKs add tens of milliseconds to each */
	evutil_socket_t fd = bufferevent_getfd(c->c_bev);
	int one = 1;
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->c_st = WSC_CONNECTING;
	wsc_arm(c, conf->wc_timeout_ms ? conf->wc_timeout_ms :
	    MSSP_WSC_CONNECT_MS);
	return c;
fail:
	wsc_destroy(c);
	return NULL;
}

int
wsc_send(struct wsc *c, const uint8_t *msg, size_t len)
{
	int rc = -1;

	wsc_enter(c);
	if (c->c_st == WSC_OPEN && !c->c_ws_done && !c->c_free_due)
		rc = ws_send(c->c_ws, msg, len, false);
	wsc_leave(c);
	return rc;
}

void
wsc_close(struct wsc *c)
{
	wsc_enter(c);
	switch (c->c_st) {
	case WSC_CONNECTING:
	case WSC_UPGRADING:
		/* not from inside the caller's stack: from the timer */
		c->c_close_due = true;
		evtimer_del(c->c_timer);
		wsc_arm(c, 0);
		break;
	case WSC_OPEN:
		if (!c->c_ws_done && !ws_closing(c->c_ws) &&
		    ws_close(c->c_ws, 1000, NULL) == 0 && !c->c_ws_done) {
			evtimer_del(c->c_timer);
			wsc_arm(c, MSSP_WS_CLOSE_MS);
		}
		break;
	default:
		break;
	}
	wsc_leave(c);
}

void
wsc_free(struct wsc *c)
{
	if (c == NULL)
		return;
	if (c->c_depth > 0) {
		c->c_free_due = true;
		return;
	}
	wsc_destroy(c);
}
