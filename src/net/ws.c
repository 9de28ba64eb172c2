/*
 * ws.c - WebSocket framing on wslay's event API, sans I/O (see ws.h).
 *
 * wslay pulls input through a recv callback and pushes output through a
 * send callback.  Here the recv callback serves the bytes of the current
 * ws_feed() call and then says "would block"; the send callback hands
 * everything to io->wi_write, which queues it on the caller's connection
 * and never takes a part: so wslay's output is always at a frame boundary
 * between two calls, which the protocol-error path below relies on.
 *
 * Re-entrancy: the caller's callbacks may call any ws_* function, ws_free
 * included; only ws_feed() is refused (-1, nothing read) while a ws_feed()
 * is on the stack: wslay's receive side is not re-entrant (a nested
 * wslay_event_recv() from inside its message callback corrupts its input
 * state), and the bytes would be out of order anyway.  Every public entry
 * counts its depth; the outermost one flushes output, decides whether the
 * WebSocket is finished and calls wi_closed as its very last action (the
 * callee may free w there).  A ws_free() from inside only marks w, and the
 * outermost entry frees it.  ws_send() flushes at once, also from inside
 * wi_message (wslay's send side shares no state with its receive side), so
 * a write refused by the transport fails that very ws_send() and nothing
 * piles up inside wslay; only from inside wi_write itself is sending left
 * to the outer flush.
 */
#include "net/ws.h"

#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/limits.h"

/* RFC 6455 §1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct ws {
	wslay_event_context_ptr w_ctx;
	struct ws_io w_io;
	void *w_arg;
	size_t w_max;
	bool w_client;
	const uint8_t *w_in;   /* bytes of the current ws_feed() not yet read */
	size_t w_in_len;
	unsigned w_depth;      /* public entries on the stack                 */
	bool w_zombie;         /* ws_free() was called from a callback        */
	bool w_done;           /* wi_closed has been called                   */
	bool w_failed;         /* transport write failed or wslay gave up     */
	bool w_in_send;        /* inside wslay_event_send()                   */
	bool w_in_feed;        /* inside ws_feed() (wslay_event_recv())       */
	uint16_t w_fail_code;
	uint16_t w_our_code;   /* close code we sent first (0: peer first)    */
};

/* ---- wslay callbacks ------------------------------------------------- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct ws *w = user;
	size_t n = w->w_in_len < len ? w->w_in_len : len;

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	memcpy(buf, w->w_in, n);
	w->w_in += n;
	w->w_in_len -= n;
	return (ssize_t)n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct ws *w = user;

	(void)flags;
	if (w->w_failed || w->w_io.wi_write(w->w_arg, data, len) != 0) {
		w->w_failed = true;
		w->w_fail_code = 1006;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Masks come from the CSPRNG (RFC 6455 §5.3: unpredictable). */
static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    void *user)
{
	(void)ctx;
	(void)user;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void
ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
    void *user)
{
	struct ws *w = user;

	(void)ctx;
	/* After we started closing (or were freed from a callback), further
	 * data messages are dropped: the application has said it is done. */
	if (w->w_zombie || w->w_done || w->w_failed || w->w_our_code != 0)
		return;
	if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME)
		w->w_io.wi_message(w->w_arg, a->msg, a->msg_length,
		    a->opcode == WSLAY_BINARY_FRAME);
	/* ping: wslay has queued the pong; pong and close: nothing to do */
}

/* ---- frame-level protocol errors ------------------------------------ */

static ssize_t
ws_frame_send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
	struct ws *w = user;

	(void)flags;
	if (w->w_io.wi_write(w->w_arg, data, len) != 0)
		return -1;
	return (ssize_t)len;
}

static ssize_t
ws_frame_recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
	(void)buf;
	(void)len;
	(void)flags;
	(void)user;
	return -1;
}

static int
ws_frame_genmask_cb(uint8_t *buf, size_t len, void *user)
{
	(void)user;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/*
 * wslay's frame decoder found a malformed header (a control frame over 125
 * bytes or fragmented, a non-minimal length, a 64-bit length with the top
 * bit): the event layer then queues a close *without* a status code.  The
 * peer deserves 1002, so that close is dropped (write shut down) and one
 * with 1002 goes out through wslay's frame API instead; the event layer's
 * output is at a frame boundary (see the top of this file).
 */
static void
ws_send_protocol_close(struct ws *w)
{
	static const struct wslay_frame_callbacks cbs = {
		ws_frame_send_cb, ws_frame_recv_cb, ws_frame_genmask_cb
	};
	wslay_frame_context_ptr fc;
	struct wslay_frame_iocb io;
	uint8_t code[2] = { 1002 >> 8, 1002 & 0xff };

	wslay_event_shutdown_write(w->w_ctx);
	w->w_failed = true;
	w->w_fail_code = 1002;
	if (wslay_frame_context_init(&fc, &cbs, w) != 0)
		return;
	memset(&io, 0, sizeof(io));
	io.fin = 1;
	io.opcode = WSLAY_CONNECTION_CLOSE;
	io.mask = w->w_client ? 1 : 0;
	io.payload_length = sizeof(code);
	io.data = code;
	io.data_length = sizeof(code);
	(void)wslay_frame_send(fc, &io);
	wslay_frame_context_free(fc);
}

/* ---- life cycle ------------------------------------------------------- */

struct ws *
ws_new(bool client, const struct ws_io *io, void *arg, size_t max_msg)
{
	static const struct wslay_event_callbacks cbs = {
		ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL,
		ws_msg_cb
	};
	struct ws *w;
	int rc;

	if (io == NULL || io->wi_write == NULL || io->wi_message == NULL ||
	    io->wi_closed == NULL)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->w_io = *io;
	w->w_arg = arg;
	w->w_client = client;
	w->w_max = (max_msg == 0 || max_msg > MSSP_WS_MAX_MESSAGE) ?
	    MSSP_WS_MAX_MESSAGE : max_msg;
	rc = client ? wslay_event_context_client_init(&w->w_ctx, &cbs, w) :
	    wslay_event_context_server_init(&w->w_ctx, &cbs, w);
	if (rc != 0) {
		free(w);
		return NULL;
	}
	/* Whole messages (reassembled by wslay), capped before any byte of
	 * an oversized frame is buffered: wslay compares the announced
	 * payload length with the cap (1009). */
	wslay_event_config_set_max_recv_msg_length(w->w_ctx, w->w_max);
	return w;
}

static void
ws_destroy(struct ws *w)
{
	wslay_event_context_free(w->w_ctx);
	free(w);
}

void
ws_free(struct ws *w)
{
	if (w == NULL)
		return;
	if (w->w_depth > 0) {
		w->w_zombie = true;
		return;
	}
	ws_destroy(w);
}

bool
ws_closing(const struct ws *w)
{
	return w->w_done || w->w_failed || w->w_our_code != 0 ||
	    wslay_event_get_close_sent(w->w_ctx) ||
	    wslay_event_get_close_received(w->w_ctx);
}

/* Hand wslay's queue to the transport now, so that a failed write is
 * seen by the ws_send() that caused it and nothing piles up inside wslay;
 * not re-entered from wi_write. */
static void
ws_flush(struct ws *w)
{
	if (w->w_in_send || w->w_failed)
		return;
	w->w_in_send = true;
	if (wslay_event_send(w->w_ctx) != 0 && !w->w_failed) {
		w->w_failed = true;
		w->w_fail_code = 1006;
	}
	w->w_in_send = false;
}

/*
 * End of every public entry: flush what wslay queued (pongs, close
 * replies, messages) and decide whether the WebSocket is over.  Returns 0
 * while it lives, -1 once it has finished (then w may be gone).
 */
static int
ws_leave(struct ws *w)
{
	wslay_event_context_ptr ctx = w->w_ctx;
	uint16_t code = 0;

	if (--w->w_depth > 0)
		return (w->w_done || w->w_failed) ? -1 : 0;
	if (w->w_zombie) {
		ws_destroy(w);
		return -1;
	}
	if (w->w_done)
		return -1;
	w->w_depth++;
	ws_flush(w);
	w->w_depth--;
	if (w->w_zombie) {
		ws_destroy(w);
		return -1;
	}
	if (w->w_failed) {
		code = w->w_fail_code;
	} else if (wslay_event_get_close_received(ctx) &&
	    wslay_event_get_close_sent(ctx)) {
		/* Handshake complete: report the initiator's code. */
		code = w->w_our_code ? w->w_our_code :
		    wslay_event_get_status_code_received(ctx);
	} else if (wslay_event_get_close_sent(ctx) &&
	    !wslay_event_get_read_enabled(ctx)) {
		/* wslay failed the connection (1002, 1007, 1009): the close
		 * is out, no answer is awaited (RFC 6455 §7.1.7). */
		code = wslay_event_get_status_code_sent(ctx);
	} else if (!wslay_event_get_read_enabled(ctx) &&
	    !wslay_event_get_write_enabled(ctx)) {
		code = 1006;
	} else {
		return 0;
	}
	w->w_done = true;
	w->w_io.wi_closed(w->w_arg, code);  /* last: may free w */
	return -1;
}

static bool
ws_enter(struct ws *w)
{
	if (w->w_done || w->w_zombie)
		return false;
	w->w_depth++;
	return true;
}

int
ws_feed(struct ws *w, const uint8_t *data, size_t len)
{
	int rc;

	if (!ws_enter(w))
		return -1;
	if (w->w_in_feed) {
		/* ws_feed() from inside wi_message: bytes would be out of
		 * order with the ones being parsed, and wslay_event_recv()
		 * must not be re-entered (even when the outer call has read
		 * all its bytes: wslay is still inside its frame loop). */
		w->w_depth--;
		return -1;
	}
	w->w_in_feed = true;
	w->w_in = data;
	w->w_in_len = len;
	while (w->w_in_len > 0 && !w->w_failed && !w->w_zombie &&
	    wslay_event_want_read(w->w_ctx)) {
		size_t before = w->w_in_len;

		rc = wslay_event_recv(w->w_ctx);
		if (rc == WSLAY_ERR_CALLBACK_FAILURE) {
			/* Our recv callback never fails: a malformed frame
			 * header (wslay_frame.c WSLAY_ERR_PROTO).  After a
			 * ws_free() from wi_message nothing may reach the
			 * caller any more, not even this close frame. */
			if (w->w_failed || w->w_zombie)
				break;
			if (wslay_event_get_close_sent(w->w_ctx)) {
				/* one close frame only (RFC 6455 §5.5.1) */
				w->w_failed = true;
				w->w_fail_code = w->w_our_code ? w->w_our_code :
				    1002;
			} else {
				ws_send_protocol_close(w);
			}
			break;
		}
		if (rc != 0) {  /* WSLAY_ERR_NOMEM */
			w->w_failed = true;
			w->w_fail_code = 1011;
			break;
		}
		if (w->w_in_len == before)
			break;  /* no progress: never spin */
	}
	/* Bytes after a close or an error are not read (RFC 6455 §5.5.1). */
	w->w_in = NULL;
	w->w_in_len = 0;
	w->w_in_feed = false;
	return ws_leave(w);
}

int
ws_send(struct ws *w, const uint8_t *msg, size_t len, bool binary)
{
	struct wslay_event_msg m;

	if (!ws_enter(w))
		return -1;
	if (w->w_failed || w->w_our_code != 0 || len > w->w_max ||
	    (msg == NULL && len > 0)) {
		ws_leave(w);
		return -1;
	}
	m.opcode = binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME;
	m.msg = msg;
	m.msg_length = len;
	if (wslay_event_queue_msg(w->w_ctx, &m) != 0) {
		ws_leave(w);
		return -1;
	}
	ws_flush(w);
	if (w->w_failed) {
		ws_leave(w);
		return -1;
	}
	return ws_leave(w);
}

int
ws_ping(struct ws *w)
{
	struct wslay_event_msg m = { WSLAY_PING, NULL, 0 };

	if (!ws_enter(w))
		return -1;
	if (w->w_failed || w->w_our_code != 0 ||
	    wslay_event_queue_msg(w->w_ctx, &m) != 0) {
		ws_leave(w);
		return -1;
	}
	return ws_leave(w);
}

/* Codes an endpoint may send (RFC 6455 §7.4). */
static bool
ws_code_ok(uint16_t code)
{
	return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 &&
	    code != 1006) || (code >= 3000 && code <= 4999);
}

int
ws_close(struct ws *w, uint16_t code, const char *reason)
{
	size_t rlen = reason ? strlen(reason) : 0;

	if (!ws_code_ok(code) || rlen > 123 || !ws_enter(w))
		return -1;
	if (w->w_failed || w->w_our_code != 0 ||
	    wslay_event_queue_close(w->w_ctx, code, (const uint8_t *)reason,
	    rlen) != 0) {
		ws_leave(w);
		return -1;
	}
	if (!wslay_event_get_close_received(w->w_ctx))
		w->w_our_code = code;
	ws_leave(w);
	return 0;
}

/* ---- opening handshake ------------------------------------------------ */

/* base64(SHA-1(key GUID)) (RFC 6455 §4.2.2 item 5.4). */
static int
ws_accept_of(const char *key, size_t klen, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[WS_CLIENT_KEY_LEN + sizeof(ws_guid)];
	EVP_MD_CTX *mc;
	int ok;

	if (klen != WS_CLIENT_KEY_LEN)
		return -1;
	memcpy(buf, key, klen);
	memcpy(buf + klen, ws_guid, sizeof(ws_guid) - 1);
	mc = EVP_MD_CTX_new();
	if (mc == NULL)
		return -1;
	ok = EVP_DigestInit_ex(mc, EVP_sha1(), NULL) == 1 &&
	    EVP_DigestUpdate(mc, buf, klen + sizeof(ws_guid) - 1) == 1 &&
	    EVP_DigestFinal_ex(mc, md, &mdlen) == 1 && mdlen == 20;
	EVP_MD_CTX_free(mc);
	if (!ok)
		return -1;
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) != WS_ACCEPT_LEN)
		return -1;
	out[WS_ACCEPT_LEN] = '\0';
	return 0;
}

static int
lower(int ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

/* Does the comma-separated list `v` hold `token` (ASCII case-insensitive,
 * optional whitespace around the elements)? */
static bool
list_has(const char *v, const char *token)
{
	size_t tl = strlen(token);

	if (v == NULL)
		return false;
	while (*v != '\0') {
		const char *s, *e;
		size_t i;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		s = v;
		while (*v != '\0' && *v != ',')
			v++;
		e = v;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) != tl)
			continue;
		for (i = 0; i < tl; i++)
			if (lower((unsigned char)s[i]) !=
			    lower((unsigned char)token[i]))
				break;
		if (i == tl)
			return true;
	}
	return false;
}

/* A Sec-WebSocket-Key: base64 of exactly 16 bytes (24 characters, "=="). */
static bool
key_ok(const char *k)
{
	unsigned char raw[WS_CLIENT_KEY_LEN];

	if (k == NULL || strlen(k) != WS_CLIENT_KEY_LEN ||
	    k[22] != '=' || k[23] != '=')
		return false;
	/* 24 characters decode to 18 bytes, the padding counted as zeros;
	 * -1 for anything outside the alphabet. */
	return EVP_DecodeBlock(raw, (const unsigned char *)k,
	    WS_CLIENT_KEY_LEN) == 18;
}

int
ws_server_accept(const struct http_request *req, char accept[WS_ACCEPT_LEN + 1],
    int *status)
{
	const char *ver, *key;

	*status = 400;
	accept[0] = '\0';
	if (req == NULL || strcmp(req->rq_method, "GET") != 0 ||
	    req->rq_version_minor != 1)
		return -1;
	if (!list_has(http_request_header(req, "Upgrade"), "websocket") ||
	    !list_has(http_request_header(req, "Connection"), "upgrade"))
		return -1;
	ver = http_request_header(req, "Sec-WebSocket-Version");
	if (ver == NULL)
		return -1;
	if (strcmp(ver, "13") != 0) {
		*status = 426;
		return -1;
	}
	key = http_request_header(req, "Sec-WebSocket-Key");
	if (!key_ok(key) || ws_accept_of(key, strlen(key), accept) != 0) {
		accept[0] = '\0';
		return -1;
	}
	*status = 101;
	return 0;
}

int
ws_client_key(char key[WS_CLIENT_KEY_LEN + 1])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	if (EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)) !=
	    WS_CLIENT_KEY_LEN)
		return -1;
	key[WS_CLIENT_KEY_LEN] = '\0';
	return 0;
}

int
ws_client_check(const char *key, int status, const char *upgrade,
    const char *connection, const char *accept)
{
	char want[WS_ACCEPT_LEN + 1];

	if (key == NULL || status != 101 || accept == NULL ||
	    !list_has(upgrade, "websocket") ||
	    !list_has(connection, "upgrade") ||
	    strlen(accept) != WS_ACCEPT_LEN ||
	    ws_accept_of(key, strlen(key), want) != 0)
		return -1;
	return CRYPTO_memcmp(want, accept, WS_ACCEPT_LEN) == 0 ? 0 : -1;
}
