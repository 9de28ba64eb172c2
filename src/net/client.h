/*
 * client.h - outbound HTTPS requests from a server loop: libcurl's multi
 * interface driven by the loop's libevent base (curl_multi_socket_action),
 * so no thread blocks on a slow peer.  Used for asynchServerServer
 * notifications to APs (mutual TLS) and, later, roaming to peer MSSPs.
 *
 * Threads: httpc_new/httpc_post/httpc_free on the loop's thread only (use
 * loop_call to get there).  The done callback runs on that thread.
 * Caps: at most MSSP_HTTPC_MAX_INFLIGHT requests in flight per handle, a
 * response body of at most MSSP_HTTPC_MAX_RESPONSE bytes (larger: error),
 * every request with a total timeout.  Redirects are never followed; only
 * https:// URLs (and http:// to a loopback address when allow_plain is
 * set, for tests) are accepted.
 * Ownership: everything in httpc_req is copied by httpc_post; the pins
 * of httpc_tls are copied by httpc_new.
 */
#ifndef MSSP_NET_CLIENT_H
#define MSSP_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct httpc;

struct httpc_tls {
	const char *ht_cert_file;	/* our client certificate (PEM), or NULL */
	const char *ht_key_file;	/* its key (PEM), or NULL               */
	const char *ht_ca_file;		/* CAs that verify the server (PEM)     */
	bool ht_allow_plain;		/* tests only: http:// to loopback       */
	const uint8_t (*ht_pin_sha256)[32]; /* if ht_npins > 0: the server's
					 * certificate (leaf) must also have
					 * one of these SHA-256 fingerprints,
					 * checked during the handshake, before
					 * any byte of the request is sent    */
	size_t ht_npins;		/* <= HTTPC_MAX_PINS                  */
};
#define HTTPC_MAX_PINS 8

struct httpc_req {
	const char *hr_url;
	const char *hr_content_type;	/* "application/soap+xml; charset=utf-8" */
	const char *hr_soap_action;	/* NULL: no SOAPAction header           */
	const void *hr_body;
	size_t hr_body_len;
	unsigned hr_timeout_ms;		/* 0: MSSP_HTTPC_TIMEOUT_MS             */
	unsigned hr_connect_timeout_ms;	/* 0: libcurl's default (within the
					 * total timeout)                     */
};

/* The outcome: http_status 0 on a transport failure (err = static text:
 * "connect", "tls", "timeout", "too_large", ...), else the HTTP status
 * with the body (borrowed for the call, NUL-terminated). */
typedef void (*httpc_done_fn)(void *arg, int http_status, const uint8_t *body, size_t len,
			      const char *err);

/* A handle on loop l (call on l's thread).  tls is copied.  NULL on error. */
struct httpc *httpc_new(struct loop *l, const struct httpc_tls *tls);
/* Start a POST.  0: `done` will run exactly once (also at httpc_free,
 * with status 0 and err "shutdown").  -1: not started (cap, bad URL). */
int httpc_post(struct httpc *c, const struct httpc_req *r, httpc_done_fn done, void *arg);
size_t httpc_inflight(const struct httpc *c);
void httpc_free(struct httpc *c);

#endif
