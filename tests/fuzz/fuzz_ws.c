/*
 * fuzz_ws.c - libFuzzer target for the WebSocket layer: frames through
 * ws_feed (src/net/ws.c, wslay underneath) on a server-side and on a
 * client-side endpoint, the server's check of the upgrade request
 * (ws_server_accept, on a request parsed by the project's HTTP parser from
 * the input) and the client's parse and check of the upgrade response
 * (parse_head in src/net/wsclient.c, then ws_client_check).
 *
 * The harness includes ws.c and wsclient.c (the fuzz_keystore way): the
 * peer check below reads a struct ws's wslay state, and the response head
 * parser is a static function of wsclient.c (no socket is needed for it).
 *
 * Input: byte 0 & 3 picks the mode.
 *   0 / 1  frames from the peer to a server (0) or client (1) endpoint.
 *          Byte 0's other bits choose what the application does:
 *            0x04 echo every message with ws_send from inside wi_message
 *            0x08 ws_free from inside the first wi_message
 *            0x10 ws_close(1000) from inside the first wi_message
 *            0x20 ws_ping + ws_close(1001) after the first slice
 *            0x40 ws_feed the next slice from inside wi_message (which
 *                 must be refused: -1, nothing read)
 *            0x80 the transport refuses writes after 64 bytes
 *          byte 1: max_msg (low 2 bits: default, 16, 125, 4096) and the
 *          slice size (high 6 bits, 0: all at once); frames from byte 2.
 *   2      an upgrade request (HTTP bytes) for ws_server_accept;
 *   3      an upgrade response head for the client with a fixed key.
 * Oracles (abort()):
 *   - wi_message never carries more than max_msg bytes, a text message is
 *     valid UTF-8, and no wi_message comes after wi_closed, after our
 *     ws_close, or after ws_free; wi_closed comes at most once, never after
 *     ws_free;
 *   - everything the endpoint wrote is valid for a fresh endpoint of the
 *     other role: fed to it, it never finds a protocol error, and it
 *     receives exactly the echoes whose ws_send returned 0, in order;
 *   - ws_server_accept accepts only GET HTTP/1.1 with both tokens, version
 *     13 and a 16-byte key, with the RFC 6455 accept value (computed here
 *     with OpenSSL), which ws_client_check then accepts; refusals are 400,
 *     or 426 for a version other than 13;
 *   - parse_head's values lie inside the head, trimmed and without
 *     control characters; ws_client_check accepts only 101 with the
 *     accept value of the key.
 * Corpus: tests/fuzz/corpus/ws/.
 */
#include "net/ws.c"
#include "net/wsclient.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mss/lex.h"
#include "net/http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_ECHO 0x04
#define F_FREE 0x08
#define F_CLOSE_IN 0x10
#define F_CLOSE_OUT 0x20
#define F_NESTED 0x40
#define F_WFAIL 0x80
#define FZ_WRITE_BUDGET 64
#define FZ_MAX_OUT (1u << 20)
#define FZ_MAX_ECHOES 4096

/* RFC 6455 §1.3's example: the client's key in mode 3. */
static const char fz_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char fz_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static volatile size_t sink;

/* ---- independent helpers ------------------------------------------------- */

static void
accept_of(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(c, key, strlen(key)) != 1 ||
	    EVP_DigestUpdate(c, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36) != 1 ||
	    EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen != 20 ||
	    EVP_EncodeBlock((unsigned char *)out, md, 20) != WS_ACCEPT_LEN)
		abort();
	EVP_MD_CTX_free(c);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char acc[WS_ACCEPT_LEN + 1];

	(void)argc;
	(void)argv;
	accept_of(fz_key, acc);
	if (strcmp(acc, fz_accept) != 0 ||
	    ws_client_check(fz_key, 101, "websocket", "Upgrade", fz_accept) != 0)
		abort();
	return 0;
}

/* ---- modes 0 and 1: frames --------------------------------------------- */

struct echo {
	size_t off, len; /* in the echo log */
	bool binary;
};

struct fz {
	struct ws *w;
	unsigned flags;
	size_t max;
	bool closed, freed, we_closed;
	unsigned nmsg;
	size_t budget;	     /* F_WFAIL: bytes the transport still takes */
	uint8_t *out;	     /* what the endpoint wrote                  */
	size_t out_len;
	bool out_lost;	     /* more than FZ_MAX_OUT: the peer check is off */
	const uint8_t *next; /* F_NESTED: the slice after the current one */
	size_t next_len;
	uint8_t *log;	     /* echoes sent, for the peer check          */
	size_t log_len;
	struct echo echoes[FZ_MAX_ECHOES];
	size_t nechoes;
	bool echo_lost;
};

static int
fz_write(void *arg, const uint8_t *data, size_t len)
{
	struct fz *f = arg;

	if (f->freed || len == 0)
		abort();
	if (f->flags & F_WFAIL) {
		if (len > f->budget)
			return -1;
		f->budget -= len;
	}
	if (f->out_len + len > FZ_MAX_OUT) {
		f->out_lost = true;
		return 0;
	}
	memcpy(f->out + f->out_len, data, len);
	f->out_len += len;
	return 0;
}

static void
fz_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	struct fz *f = arg;

	if (f->closed || f->freed || f->we_closed || len > f->max || (len > 0 && msg == NULL))
		abort();
	if (!binary && !mss_lex_utf8_valid((const char *)msg, len))
		abort();
	f->nmsg++;
	for (size_t i = 0; i < len; i++)
		sink += msg[i];

	if (f->flags & F_ECHO) {
		/* what came in goes out again (the message is borrowed: the
		 * copy in the log is taken before ws_send) */
		if (f->nechoes < FZ_MAX_ECHOES && f->log_len + len <= FZ_MAX_OUT) {
			struct echo *e = &f->echoes[f->nechoes];

			if (len > 0)
				memcpy(f->log + f->log_len, msg, len);
			if (ws_send(f->w, msg, len, binary) == 0) {
				e->off = f->log_len;
				e->len = len;
				e->binary = binary;
				f->log_len += len;
				f->nechoes++;
			}
		} else {
			f->echo_lost = true;
			(void)ws_send(f->w, msg, len, binary);
		}
	}
	if (f->nmsg == 1 && (f->flags & F_CLOSE_IN) && !f->closed) {
		bool received = wslay_event_get_close_received(f->w->w_ctx);

		if (ws_close(f->w, 1000, "bye") == 0 && !received)
			f->we_closed = true;
	}
	/* ws_feed from inside ws_feed is refused, reading nothing (ws.c: wslay
	 * must not be re-entered); the slice is fed again afterwards */
	if ((f->flags & F_NESTED) && f->next != NULL && ws_feed(f->w, f->next, f->next_len) != -1)
		abort();
	if (f->nmsg == 1 && (f->flags & F_FREE)) {
		ws_free(f->w);
		f->freed = true;
	}
}

static void
fz_closed(void *arg, uint16_t code)
{
	struct fz *f = arg;

	if (f->closed || f->freed)
		abort();
	f->closed = true;
	sink += code;
}

static const struct ws_io fz_io = { fz_write, fz_message, fz_closed };

/* The peer: a fresh endpoint of the other role reading our output. */
struct peer {
	struct ws *w;
	const struct fz *f;
	size_t next_echo;
	bool closed;
};

static int
peer_write(void *arg, const uint8_t *data, size_t len)
{
	(void)arg;
	sink += len + (len ? data[0] : 0);
	return 0;
}

static void
peer_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	struct peer *p = arg;
	const struct echo *e;

	if (p->f->echo_lost)
		return;
	if (p->next_echo >= p->f->nechoes)
		abort(); /* a message nobody sent */
	e = &p->f->echoes[p->next_echo++];
	if (e->len != len || e->binary != binary ||
	    (len > 0 && memcmp(p->f->log + e->off, msg, len) != 0))
		abort();
}

static void
peer_closed(void *arg, uint16_t code)
{
	struct peer *p = arg;

	p->closed = true;
	sink += code;
}

static const struct ws_io peer_io = { peer_write, peer_message, peer_closed };

static void
peer_check(const struct fz *f, bool client)
{
	struct peer p = { NULL, f, 0, false };
	wslay_event_context_ptr ctx;

	if (f->out_lost)
		return;
	p.w = ws_new(!client, &peer_io, &p, 0);
	if (p.w == NULL)
		abort();
	ctx = p.w->w_ctx;
	(void)ws_feed(p.w, f->out, f->out_len);
	/* It found a protocol error in our output when it closed (or failed)
	 * before any close of ours reached it. */
	if (!wslay_event_get_close_received(ctx) &&
	    (p.w->w_failed || wslay_event_get_close_sent(ctx)))
		abort();
	/* Every echo sent before our close frame arrived.  With a failing
	 * transport only those written in full count: they were. */
	if (!f->echo_lost && p.next_echo != f->nechoes)
		abort();
	ws_free(p.w);
}

static void
frames(unsigned flags, unsigned opt, const uint8_t *data, size_t size)
{
	static const size_t maxes[4] = { 0, 16, 125, 4096 };
	struct fz *f = calloc(1, sizeof(*f));
	bool client = (flags & 1) != 0;
	size_t slice = opt >> 2, off = 0;
	bool first = true;

	if (f == NULL)
		return;
	f->flags = flags;
	f->max = maxes[opt & 3] ? maxes[opt & 3] : MSSP_WS_MAX_MESSAGE;
	f->budget = FZ_WRITE_BUDGET;
	f->out = malloc(FZ_MAX_OUT);
	f->log = malloc(FZ_MAX_OUT);
	if (f->out == NULL || f->log == NULL)
		goto out;
	f->w = ws_new(client, &fz_io, f, maxes[opt & 3]);
	if (f->w == NULL)
		abort();
	while (off < size && !f->freed) {
		size_t len = slice == 0 || size - off < slice ? size - off : slice;
		int rc;

		f->next = off + len < size ? data + off + len : NULL;
		f->next_len = f->next ? (slice == 0 || size - off - len < slice ? size - off - len : slice) : 0;
		rc = ws_feed(f->w, data + off, len);
		if (f->freed)
			break;
		if (rc != 0 && !f->closed)
			abort(); /* -1 only once finished */
		if (rc == 0 && f->closed)
			abort();
		off += len;
		if (first && (flags & F_CLOSE_OUT) && !f->closed) {
			bool received = wslay_event_get_close_received(f->w->w_ctx);

			(void)ws_ping(f->w);
			if (ws_close(f->w, 1001, NULL) == 0 && !received && !f->closed)
				f->we_closed = true;
		}
		first = false;
		if (f->closed)
			break;
	}
	if (!f->freed) {
		/* nothing goes out once it is finished */
		if (f->closed && (ws_send(f->w, (const uint8_t *)"x", 1, false) == 0 ||
				  ws_feed(f->w, (const uint8_t *)"\x81", 1) == 0))
			abort();
		sink += ws_closing(f->w);
		ws_free(f->w);
	}
	peer_check(f, client);
out:
	free(f->out);
	free(f->log);
	free(f);
}

/* ---- mode 2: the upgrade request ------------------------------------------ */

/* Does the comma-separated list `v` hold `token` (ASCII case-insensitive,
 * optional white space around elements)?  Written apart from ws.c's. */
static bool
has_token(const char *v, const char *token)
{
	size_t tl = strlen(token);

	while (v != NULL && *v != '\0') {
		const char *e = strchr(v, ',');
		size_t n = e ? (size_t)(e - v) : strlen(v);

		while (n > 0 && (*v == ' ' || *v == '\t'))
			v++, n--;
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(v, token, tl) == 0)
			return true;
		v = e ? e + 1 : NULL;
	}
	return false;
}

static void
upgrade_request(const uint8_t *data, size_t size)
{
	struct http_parser *p = http_parser_new(0, 4096);
	const struct http_request *rq;
	char acc[WS_ACCEPT_LEN + 1], want[WS_ACCEPT_LEN + 1];
	size_t used = 0;
	int rc, status = 0;

	if (p == NULL)
		abort();
	rc = http_parser_feed(p, data, size, &used);
	rq = (rc == HTTP_DONE || rc == HTTP_CONTINUE) ? http_parser_request(p) : NULL;
	if (rq == NULL) {
		http_parser_free(p);
		return;
	}
	memset(acc, 'x', sizeof(acc));
	rc = ws_server_accept(rq, acc, &status);
	if (rc == 0) {
		const char *key = http_request_header(rq, "Sec-WebSocket-Key");
		const char *ver = http_request_header(rq, "Sec-WebSocket-Version");
		unsigned char raw[WS_CLIENT_KEY_LEN];

		if (status != 101 || strcmp(rq->rq_method, "GET") != 0 || rq->rq_version_minor != 1 ||
		    ver == NULL || strcmp(ver, "13") != 0 || key == NULL ||
		    strlen(key) != WS_CLIENT_KEY_LEN || strlen(acc) != WS_ACCEPT_LEN ||
		    !has_token(http_request_header(rq, "Upgrade"), "websocket") ||
		    !has_token(http_request_header(rq, "Connection"), "upgrade"))
			abort();
		/* 16 bytes: 22 base64 characters and "==" */
		if (key[22] != '=' || key[23] != '=' ||
		    EVP_DecodeBlock(raw, (const unsigned char *)key, WS_CLIENT_KEY_LEN) != 18)
			abort();
		accept_of(key, want);
		if (strcmp(acc, want) != 0)
			abort();
		/* what the server answers, the client accepts */
		if (ws_client_check(key, 101, "websocket", "Upgrade", acc) != 0 ||
		    ws_client_check(key, 101, http_request_header(rq, "Upgrade"),
				    http_request_header(rq, "Connection"), acc) != 0)
			abort();
	} else {
		const char *ver = http_request_header(rq, "Sec-WebSocket-Version");

		if (acc[0] != '\0' || (status != 400 && status != 426))
			abort();
		if (status == 426 && (ver == NULL || strcmp(ver, "13") == 0))
			abort();
	}
	http_parser_free(p);
}

/* ---- mode 3: the upgrade response --------------------------------------- */

static void
value_ok(const char *v, const char *head, size_t hlen)
{
	size_t n;

	if (v == NULL)
		return;
	if (v < head || v >= head + hlen)
		abort();
	n = strlen(v);
	if (v + n > head + hlen)
		abort();
	if (n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		abort();
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || (unsigned char)v[i] == 0x7f)
			abort();
}

static void
upgrade_response(const uint8_t *data, size_t size)
{
	const uint8_t *end = memmem(data, size, "\r\n\r\n", 4);
	const char *up, *conn, *acc;
	size_t hlen;
	char *head;
	int status;

	/* as wsc_read_head: up to the first empty line, no NUL inside */
	if (end == NULL)
		return;
	hlen = (size_t)(end - data) + 4;
	if (hlen > MSSP_HTTP_MAX_HEAD || memchr(data, '\0', hlen) != NULL)
		return;
	head = malloc(hlen + 1);
	if (head == NULL)
		return;
	memcpy(head, data, hlen);
	head[hlen] = '\0';
	status = parse_head(head, &up, &conn, &acc);
	if (status != -1 && (status < 100 || status > 599 || memcmp(data, "HTTP/1.1 ", 9) != 0 ||
			     status != (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0')))
		abort();
	if (status >= 0) {
		value_ok(up, head, hlen);
		value_ok(conn, head, hlen);
		value_ok(acc, head, hlen);
		if (ws_client_check(fz_key, status, up, conn, acc) == 0) {
			if (status != 101 || acc == NULL || strcmp(acc, fz_accept) != 0 ||
			    !has_token(up, "websocket") || !has_token(conn, "upgrade"))
				abort();
			sink++;
		}
	}
	free(head);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	switch (data[0] & 3) {
	case 0:
	case 1:
		frames(data[0], data[1], data + 2, size - 2);
		break;
	case 2:
		upgrade_request(data + 1, size - 1);
		break;
	default:
		upgrade_response(data + 1, size - 1);
		break;
	}
	return 0;
}
