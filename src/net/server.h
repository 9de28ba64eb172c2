/*
 * server.h - HTTP/1.1 listeners (plain or TLS), one libevent loop per worker
 * thread, the connection state machine with its deadlines and caps, and the
 * request-handler API with parking (a request answered later, from any
 * thread).
 *
 * docs/internals/server.md has the threads, the connection states, every
 * deadline and cap, and the bad-input rows (H-xx, T-xx) each one answers.
 *
 * Life cycle (owner thread):
 *
 *     struct srv *s = srv_new(&conf, &err);   binds every listening socket
 *     port = srv_listener_port(s, 0);         (port 0 in conf: ephemeral)
 *     srv_start(s, &err);                     worker threads run the loops
 *     ...                                     handlers run on the workers
 *     srv_stop(s);                            parked requests cancelled
 *     srv_free(s);
 *
 * A handler (on a worker thread) gets a struct srv_req and MUST, before it
 * returns, either answer it (srv_reply / srv_reply_ex) or park it
 * (srv_req_park).  A parked request is answered later: srv_reply() on the
 * same worker thread, or srv_reply_async() from any thread with the id
 * srv_req_id() gave.  If the client goes away while the request is parked,
 * or the park deadline passes, or the server stops, the listener's cancel
 * callback runs (on the worker thread).
 *
 * Lifetimes: a struct srv_req is valid from the handler call until the
 * request is answered, or until the cancel callback returns.  The request
 * line, headers and body (srv_req_method/path/header/body/http) are readable
 * only during the handler call: the parser's buffer is released while a
 * request is parked, so that a parked request costs little memory; copy what
 * a later answer needs.  The peer address, certificate, fingerprint and the
 * user pointer stay readable until the end.
 */
#ifndef MSSP_NET_SERVER_H
#define MSSP_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "net/http.h"
#include "net/tls.h"
#include "util/limits.h"

struct srv;
struct srv_req;
struct loop;

/* Why a request ends without an answer from its handler. */
enum srv_cancel {
	SRV_CANCEL_GONE = 1,  /* the peer closed or reset the connection     */
	SRV_CANCEL_DEADLINE,  /* the park deadline passed: the callback MAY
	                       * answer (srv_reply), else the server sends 503 */
	SRV_CANCEL_SHUTDOWN   /* srv_stop(): the connection is being closed   */
};

/* Handler: runs on a worker thread; MUST answer or park req before it
 * returns (otherwise the server answers 500 and logs "handler_no_answer"). */
typedef void (*srv_handler_fn)(struct srv_req *req, void *arg);

/* Cancel callback: runs on the request's worker thread.  req is valid until
 * it returns; only for SRV_CANCEL_DEADLINE may it still be answered. */
typedef void (*srv_cancel_fn)(struct srv_req *req, void *arg,
    enum srv_cancel why);

/* Optional log sink: event is a static tag ("tls_handshake_failed",
 * "header_timeout", ...), peer the numeric peer address ("" if none),
 * detail static or library text.  Called on worker threads; never gets
 * bytes a peer sent. */
typedef void (*srv_log_fn)(void *arg, const char *event, const char *peer,
    const char *detail);

struct srv_listener_conf {
	const char *sl_name;      /* short tag for logs ("ap", "admin")       */
	const char *sl_addr;      /* numeric IPv4 or IPv6 address             */
	uint16_t sl_port;         /* 0: ephemeral (read srv_listener_port)    */
	SSL_CTX *sl_tls;          /* NULL: plain HTTP; else borrowed (the
	                           * server takes its own reference)          */
	bool sl_plain_public;     /* allow plain HTTP on a non-loopback address
	                           * (e.g. behind a TLS-terminating balancer);
	                           * otherwise plain listeners must be loopback */
	size_t sl_max_body;       /* 0: MSSP_HTTP_MAX_BODY (and never more)   */
	srv_handler_fn sl_handler; /* required                                */
	srv_cancel_fn sl_cancel;  /* NULL: parking is refused on this listener */
	void *sl_arg;             /* passed to both                           */
};

/* Every field 0 selects the default from util/limits.h. */
struct srv_conf {
	unsigned sc_workers;           /* loop threads, 1..MSSP_SRV_MAX_WORKERS */
	unsigned sc_max_conns;         /* open connections, whole server      */
	unsigned sc_max_conns_per_ip;  /* open connections from one address   */
	unsigned sc_max_parked;        /* parked requests, whole server       */
	unsigned sc_handshake_ms;      /* TLS handshake deadline              */
	unsigned sc_header_ms;         /* request line + headers deadline     */
	unsigned sc_idle_ms;           /* keep-alive idle deadline            */
	unsigned sc_write_ms;          /* no write progress for this long     */
	unsigned sc_body_min_rate;     /* body bytes/s, checked per window    */
	unsigned sc_rate_window_ms;    /* window of the body-rate check       */
	unsigned sc_linger_ms;         /* read-and-discard after our close    */
	srv_log_fn sc_log;             /* NULL: silent                        */
	void *sc_log_arg;
	size_t sc_nlisteners;          /* 1..MSSP_SRV_MAX_LISTENERS           */
	struct srv_listener_conf sc_listeners[MSSP_SRV_MAX_LISTENERS];
};

/* Counters (a snapshot; each field is read atomically on its own). */
struct srv_stats {
	uint64_t st_conns_open;        /* gauge                               */
	uint64_t st_conns_accepted;
	uint64_t st_conns_refused;     /* global cap                          */
	uint64_t st_conns_refused_ip;  /* per-address cap                     */
	uint64_t st_tls_handshakes;    /* completed                           */
	uint64_t st_tls_resumed;       /* of which resumed                    */
	uint64_t st_tls_failures;      /* handshakes that failed              */
	uint64_t st_requests;          /* handed to a handler                 */
	uint64_t st_responses;         /* final responses queued              */
	uint64_t st_parse_errors;      /* answered with the parser's status   */
	uint64_t st_parked;            /* gauge                               */
	uint64_t st_parked_peak;
	uint64_t st_park_refused;      /* global parked cap                   */
	uint64_t st_cancel_gone;
	uint64_t st_cancel_deadline;
	uint64_t st_timeouts_handshake;
	uint64_t st_timeouts_header;
	uint64_t st_timeouts_body;
	uint64_t st_timeouts_idle;
	uint64_t st_timeouts_write;
	uint64_t st_async_dropped;     /* async replies for ended requests    */
	uint64_t st_upgraded;          /* srv_req_upgrade() handed over       */
	uint64_t st_upgraded_open;     /* gauge: upgraded, uo_closed not yet  */
};

/*
 * Check conf, create the workers' loops and bind every listener once per
 * worker (SO_REUSEPORT; TCP_NODELAY on the listening socket, inherited by
 * accepted ones).  Nothing runs until srv_start().  conf and the strings in
 * it are borrowed for this call only (sl_tls gains a reference).  Returns a
 * new server (srv_free), or NULL with e filled.
 */
struct srv *srv_new(const struct srv_conf *conf, struct net_err *e);

/* Start the worker threads.  0, or -1 with e filled.  Once. */
int srv_start(struct srv *s, struct net_err *e);

/*
 * Stop accepting, cancel every parked request (SRV_CANCEL_SHUTDOWN), close
 * every connection (TLS close_notify best effort), join the workers.
 * Idempotent.  MUST NOT be called from a worker thread.
 */
void srv_stop(struct srv *s);

/* srv_stop() if needed, then free everything.  Accepts NULL. */
void srv_free(struct srv *s);

/* The bound port of listener i (host order), 0 if i is out of range. */
uint16_t srv_listener_port(const struct srv *s, size_t i);

/*
 * Hot swap: new connections of TLS listener i use ctx (borrowed; the server
 * takes a reference and drops the old context's, which lives on in the
 * connections that use it).  Sessions of the old context do not resume on
 * the new one.  Thread-safe.  0, or -1 if i is not a TLS listener or ctx is
 * NULL.
 */
int srv_listener_set_tls(struct srv *s, size_t i, SSL_CTX *ctx);

/* Counters, thread-safe. */
void srv_get_stats(const struct srv *s, struct srv_stats *out);

/* Worker i's loop (borrowed), to run other work on it (loop_call), e.g. a
 * libcurl multi handle; NULL if i is out of range. */
struct loop *srv_worker_loop(const struct srv *s, unsigned i);
unsigned srv_workers(const struct srv *s);

/* ---- the request handle (worker thread only) ------------------------- */

/* Request line, headers, body: during the handler call only, else NULL. */
const struct http_request *srv_req_http(const struct srv_req *req);
const char *srv_req_method(const struct srv_req *req);
const char *srv_req_path(const struct srv_req *req);  /* path [? query] */
const char *srv_req_header(const struct srv_req *req, const char *name);
/* Body (NUL-terminated after *len bytes), never NULL during the handler. */
const uint8_t *srv_req_body(const struct srv_req *req, size_t *len);

/* Peer and connection facts: valid as long as req. */
const struct sockaddr *srv_req_peer_addr(const struct srv_req *req,
    socklen_t *len);
const char *srv_req_peer_ip(const struct srv_req *req);  /* numeric */
const char *srv_req_listener(const struct srv_req *req); /* sl_name */
bool srv_req_tls(const struct srv_req *req);
/* Verified client certificate (borrowed from the TLS session; NULL without
 * one), on every request of the connection, resumed sessions included
 * (T-08: authorise every request with it). */
X509 *srv_req_peer_cert(const struct srv_req *req);
/* Its SHA-256 (TLS_FP_LEN bytes), NULL without a certificate. */
const uint8_t *srv_req_peer_fp(const struct srv_req *req);
bool srv_req_resumed(const struct srv_req *req);
/* The connection's SSL (borrowed, NULL for plain): for inspection only
 * (version, cipher); MUST NOT be read, written or shut down. */
const SSL *srv_req_ssl(const struct srv_req *req);
unsigned srv_req_worker(const struct srv_req *req);

/* Unique id of the request for srv_reply_async() (never reused). */
uint64_t srv_req_id(const struct srv_req *req);

/* One pointer for the application (borrowed, never freed by the server);
 * the cancel callback is where the application releases it. */
void srv_req_set_data(struct srv_req *req, void *data);
void *srv_req_data(const struct srv_req *req);

/*
 * Park req (from its handler): it will be answered later.  While parked the
 * connection keeps reading, so EOF or RST cancels it at once
 * (SRV_CANCEL_GONE).  timeout_ms (1..MSSP_SRV_MAX_PARK_MS) is the request's
 * own deadline (SRV_CANCEL_DEADLINE).  Returns 0, or -1 when the global
 * parked cap is reached (st_park_refused), the listener has no cancel
 * callback, or the arguments are wrong: the handler then answers itself
 * (e.g. 503 with Retry-After).
 */
int srv_req_park(struct srv_req *req, unsigned timeout_ms);

/* ---- answers --------------------------------------------------------- */

struct srv_header {
	const char *sh_name;   /* token; not Date, Content-Length, Connection,
	                        * Content-Type, Transfer-Encoding            */
	const char *sh_value;  /* visible ASCII, SP, HTAB (no CR/LF/NUL)     */
};

struct srv_response {
	int rs_status;                 /* 200..599 (204/304: no body)       */
	const char *rs_content_type;   /* NULL: no Content-Type             */
	const struct srv_header *rs_headers;  /* e.g. Allow, Retry-After    */
	size_t rs_nheaders;            /* <= MSSP_SRV_MAX_RESP_HEADERS      */
	const void *rs_body;
	size_t rs_body_len;            /* <= MSSP_SRV_MAX_RESPONSE          */
	bool rs_close;                 /* Connection: close after it        */
};

/*
 * Answer req (on its worker thread, from the handler, later while parked, or
 * from the cancel callback with SRV_CANCEL_DEADLINE).  The server adds the
 * status line, Date, Content-Length (always, except 204/304), Connection
 * (keep-alive or close, per the request and rs_close) and Content-Type;
 * a HEAD request gets the headers only.  Everything is copied.  Returns 0;
 * -1 if req was already answered or cancelled, or the response is invalid
 * (bad status, header syntax, a reserved header, over a cap): nothing is
 * sent then and the request is still to be answered.
 */
int srv_reply_ex(struct srv_req *req, const struct srv_response *rs);

/* Shorthand for srv_reply_ex without extra headers. */
int srv_reply(struct srv_req *req, int status, const char *content_type,
    const void *body, size_t len);

/*
 * Answer the parked request `id` from any thread: the response is checked
 * and copied here, then queued to the request's worker loop.  If the request
 * has ended meanwhile (answered, cancelled), the answer is dropped there
 * (st_async_dropped).  Returns 0 when queued, -1 when invalid, when the
 * server is stopping or the loop's queue is full.  MUST NOT be called after
 * srv_free().
 */
int srv_reply_async(struct srv *s, uint64_t id, const struct srv_response *rs);


/* ---- protocol upgrade (WebSocket) ------------------------------------ */

/*
 * An upgraded connection: after srv_req_upgrade() the connection leaves
 * HTTP (no parser, no HTTP deadlines) and its bytes go to the application
 * (net/ws.h on top).  Worker thread only; srv_up_worker() tells which loop
 * (srv_worker_loop) to loop_call() into from other threads.
 */
struct srv_up;

struct srv_up_ops {
	/* Bytes received (borrowed for the call). */
	void (*uo_data)(struct srv_up *up, void *arg, const uint8_t *data, size_t len);
	/* The connection is gone (peer closed, error, srv_up_close finished,
	 * write cap exceeded, idle deadline, server stopping).  Called once;
	 * `up` is invalid after it returns.  Always from an event of its own
	 * (never from inside srv_up_write/srv_up_close or uo_data), so the
	 * application may free its state here; at srv_stop from inside
	 * srv_stop's shutdown call on the worker.  The connection may still
	 * linger (read and discard) a moment afterwards, counted in the caps. */
	void (*uo_closed)(struct srv_up *up, void *arg);
};

/*
 * From the handler only: answer req with `rs` (status 101; its headers
 * carry Upgrade, Connection: Upgrade is added by the server, and e.g.
 * Sec-WebSocket-Accept) and hand the connection over.  Bytes the client
 * already sent after the request are delivered to uo_data at once.  The
 * connection is then closed when idle for idle_ms (reset by every byte
 * received; 0: never by the server).  Returns the handle, or NULL (request
 * had a body, was pipelined behind others, not keep-alive capable, bad
 * response): the request is still to be answered then.
 */
struct srv_up *srv_req_upgrade(struct srv_req *req, const struct srv_response *rs,
    const struct srv_up_ops *ops, void *arg, unsigned idle_ms);

/* Queue bytes (copied).  0, or -1 when closing or past
 * MSSP_SRV_UP_MAX_OUTPUT queued (the connection is then closed: a peer
 * that does not read must not hold memory).  The write deadline
 * (sc_write_ms without progress) applies as to any connection.  Also
 * allowed from the handler right after srv_req_upgrade (after the 101). */
int srv_up_write(struct srv_up *up, const void *data, size_t len);
/* Flush what is queued, then close (TLS close_notify); uo_closed follows.
 * Bytes received meanwhile are discarded.  No-op once closing. */
void srv_up_close(struct srv_up *up);
unsigned srv_up_worker(const struct srv_up *up);
const char *srv_up_peer_ip(const struct srv_up *up);
/* Reset the idle deadline (e.g. 0 to disable, or after authentication). */
void srv_up_set_idle(struct srv_up *up, unsigned idle_ms);

#endif
