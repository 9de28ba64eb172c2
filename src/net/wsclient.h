/*
 * wsclient.h - an outbound WebSocket over TLS on a libevent base: TCP
 * connect (numeric address), TLS (server authenticated against the given
 * context, SNI / host name checked), the HTTP/1.1 upgrade, then ws.h
 * framing.  Used by mss-phone to reach the AFE.
 *
 * Threads: everything on the base's thread.  Callbacks run there.
 * Ownership: conf strings are copied.  After on_closed the handle stays
 * allocated until wsc_free (which may be called from on_closed).
 */
#ifndef MSSP_NET_WSCLIENT_H
#define MSSP_NET_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "net/tls.h"

struct event_base;
struct wsc;

struct wsc_conf {
	const char *wc_addr;	     /* numeric IPv4/IPv6 address           */
	uint16_t wc_port;
	const char *wc_host;	     /* Host header and name checked against
				      * the certificate ("localhost")       */
	const char *wc_path;	     /* "/app/v1/ws"                        */
	SSL_CTX *wc_tls;	     /* client context (borrowed, must verify
				      * the server); NULL: plain (tests)    */
	unsigned wc_timeout_ms;	     /* connect + TLS + upgrade deadline;
				      * 0: MSSP_WSC_CONNECT_MS             */
	size_t wc_max_msg;	     /* 0: MSSP_WS_MAX_MESSAGE              */
};

struct wsc_ops {
	void (*on_open)(struct wsc *c, void *arg);   /* upgrade done        */
	void (*on_message)(struct wsc *c, void *arg, const uint8_t *msg, size_t len);
	/* Failed to connect, or closed (either side).  `why` is static text. */
	void (*on_closed)(struct wsc *c, void *arg, const char *why);
};

/* Start connecting.  NULL with e on an immediate failure (bad address,
 * memory); otherwise the outcome comes through the callbacks. */
struct wsc *wsc_connect(struct event_base *base, const struct wsc_conf *conf,
			const struct wsc_ops *ops, void *arg, struct net_err *e);
/* Send a text message (after on_open).  0, or -1. */
int wsc_send(struct wsc *c, const uint8_t *msg, size_t len);
/* Close handshake, then on_closed. */
void wsc_close(struct wsc *c);
/* Free at once (no callback).  Accepts NULL. */
void wsc_free(struct wsc *c);

#endif
