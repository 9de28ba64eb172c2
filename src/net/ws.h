/*
 * ws.h - WebSocket (RFC 6455) framing over any byte transport, on wslay.
 *
 * Sans-I/O: bytes from the transport go in with ws_feed(); bytes to send go
 * out through io->wi_write (the caller queues them on its connection);
 * complete messages come out through io->wi_message.  The same code serves
 * the AFE side (server: an upgraded srv connection, srv_req_upgrade) and
 * the phone side (client: wsclient.h).
 *
 * Limits: a message larger than max_msg (<= MSSP_WS_MAX_MESSAGE) closes the
 * connection with 1009; a protocol error with 1002; invalid UTF-8 in a
 * text message with 1007.  Fragmented messages are reassembled up to
 * max_msg.  Control frames are answered (ping -> pong) inside ws_feed.
 *
 * Threads: a struct ws belongs to one thread (its connection's loop).
 * Ownership: data passed in is borrowed for the call; the message given to
 * wi_message is borrowed for that call.
 */
#ifndef MSSP_NET_WS_H
#define MSSP_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http.h"

#define WS_ACCEPT_LEN 28   /* base64(SHA-1) */
#define WS_CLIENT_KEY_LEN 24 /* base64(16 random bytes) */

struct ws;

struct ws_io {
	/* Queue bytes on the transport.  0, or -1 (transport full or gone:
	 * the ws then considers itself failed). */
	int (*wi_write)(void *arg, const uint8_t *data, size_t len);
	/* One complete message (text or binary). */
	void (*wi_message)(void *arg, const uint8_t *msg, size_t len, bool binary);
	/* The WebSocket is finished (close handshake done, close received,
	 * protocol error, or a write failed): the caller closes the transport
	 * after flushing.  Called once; `code` is the close code sent or
	 * received (1006 when none). */
	void (*wi_closed)(void *arg, uint16_t code);
};

/* A new endpoint; client endpoints mask their frames (RFC 6455 5.3).
 * max_msg 0: MSSP_WS_MAX_MESSAGE.  NULL on memory shortage. */
struct ws *ws_new(bool client, const struct ws_io *io, void *arg, size_t max_msg);
/* Free (no callback runs).  Accepts NULL. */
void ws_free(struct ws *w);

/* Bytes received from the transport.  0, or -1 once the ws has failed or
 * closed (wi_closed has been called or is being called), and -1 (reading
 * nothing) when called from inside one of this ws's own callbacks: wslay's
 * receive loop is not re-entrant. */
int ws_feed(struct ws *w, const uint8_t *data, size_t len);
/* Send one message.  0, or -1 (closing, too large, write failed). */
int ws_send(struct ws *w, const uint8_t *msg, size_t len, bool binary);
int ws_ping(struct ws *w);
/* Start the close handshake (code 1000.., reason <= 123 bytes, may be
 * NULL); wi_closed follows when the peer answers or at once if it cannot
 * be sent. */
int ws_close(struct ws *w, uint16_t code, const char *reason);
bool ws_closing(const struct ws *w);

/* ---- opening handshake ---------------------------------------------- */

/* Server side: check an upgrade request (GET, HTTP/1.1, Upgrade: websocket,
 * Connection contains "upgrade", Sec-WebSocket-Version: 13, a
 * Sec-WebSocket-Key of 16 base64-encoded bytes) and compute the
 * Sec-WebSocket-Accept value.  0, or -1 with the HTTP status to answer
 * (400, or 426 with "Sec-WebSocket-Version: 13" for a wrong version). */
int ws_server_accept(const struct http_request *req, char accept[WS_ACCEPT_LEN + 1], int *status);

/* Client side: a fresh random key, and the check of the server's answer
 * (status 101, Upgrade/Connection headers, the accept value for our key). */
int ws_client_key(char key[WS_CLIENT_KEY_LEN + 1]);
int ws_client_check(const char *key, int status, const char *upgrade, const char *connection,
		    const char *accept);

#endif
