/*
 * rest.h - the AE's Kiuru-compatible REST gateway: what is REST-specific
 * before the one validation path every request takes (docs/internals/rest.md).
 *
 *   - paths: /rest/service (the top-level JSON key selects the operation)
 *     and /rest/service/{sign,status,receipt,profile} (the key must match);
 *   - AP authentication by HTTP credentials: Basic (rest_user + a password
 *     kept as salt + SHA-256) or the Kiuru HMAC API key (protocol.md §10),
 *     with failed attempts counted per AP and per client address (429);
 *   - the documented defaults of a minimal JSON request (laverca-rest),
 *     filled before mss_validate so that SOAP and JSON meet the same checks;
 *   - the OpenAPI document served at GET /rest/openapi.json.
 *
 * Mutual TLS stays in ae.c (conf_ap_by_fp); ae.c decides how the methods
 * combine ([ae] rest_auth).  Thread safety: a struct rest is shared by
 * every server worker; its counters have their own lock.
 */
#ifndef MSSP_ROLES_REST_H
#define MSSP_ROLES_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mss/msg.h"
#include "mss/status.h"
#include "roles/conf.h"

/* The REST path a request names. */
enum rest_path {
	REST_PATH_NONE = 0,	/* not under /rest/                          */
	REST_PATH_ANY,		/* /rest/service: any operation              */
	REST_PATH_SIGN,		/* /rest/service/sign    MSS_SignatureReq    */
	REST_PATH_STATUS,	/* /rest/service/status  MSS_StatusReq       */
	REST_PATH_RECEIPT,	/* /rest/service/receipt MSS_ReceiptReq      */
	REST_PATH_PROFILE,	/* /rest/service/profile MSS_ProfileReq      */
	REST_PATH_OPENAPI,	/* /rest/openapi.json (GET)                  */
	REST_PATH_UNKNOWN,	/* another /rest/... path: 404               */
};

enum rest_path rest_path_of(const char *path);

/* Does the decoded message's type fit the path?  0, or -1 with e = 101
 * (a per-operation path names another operation). */
int rest_path_check(enum rest_path p, enum mss_msg_type type, struct mss_err *e);

/* Fill the defaults of a minimal JSON request in place (arena of msg):
 * MajorVersion/MinorVersion both absent -> "1"/"1"; AP_Info or its AP_ID
 * absent -> ap_id (the authenticated AP); Instant absent -> now; MSSP_Info
 * (or its MSSP_ID) absent -> mssp_id; DataToBeSigned without MimeType ->
 * text/plain; MessagingMode absent -> synch.  Present values are never
 * changed (a wrong one is refused by the validation that follows).
 * 0, or -1 with e set (out of memory). */
int rest_fill_defaults(struct mss_msg *msg, const char *ap_id, const char *mssp_id,
		       struct mss_err *e);

struct rest;

/* New gateway state; openapi_file (may be NULL) is read once here (capped
 * at MSSP_SRV_MAX_RESPONSE): served at GET /rest/openapi.json.  NULL on
 * memory shortage only (an unreadable document is served as 404). */
struct rest *rest_new(const char *openapi_file);
void rest_free(struct rest *r);
/* The OpenAPI document (borrowed) or NULL. */
const char *rest_openapi(const struct rest *r, size_t *len);

enum rest_auth_result {
	REST_AUTH_NONE,		/* no usable Authorization header            */
	REST_AUTH_OK,		/* *ap is the authenticated AP               */
	REST_AUTH_BAD,		/* wrong credentials: 401, no detail         */
	REST_AUTH_THROTTLED,	/* too many failures: 429 (nothing checked)  */
};

/* What the handler knows of the request (all borrowed). */
struct rest_req {
	const char *method, *host, *path;	/* Host header as sent      */
	const char *authorization, *date;	/* headers, may be NULL     */
	const uint8_t *body;
	size_t body_len;
	const char *peer_ip;			/* the client's address     */
};

/* Authenticate by HTTP credentials with the methods in `methods` (enum
 * conf_rest_auth bits; CONF_REST_CERT is ignored here).  The Date of an
 * API-key request must be within min(skew_s, MSSP_REST_DATE_SKEW_S) of
 * now_s.  Secrets compared in constant time, never logged.
 *
 * Throttle: each attempt is checked and reserved in one locked step before
 * the credentials are verified (an attempt in flight counts against a
 * limit once the key has a failure), and counted as a failure after, against
 * the client's address (IPv6: its /64; IPv4-mapped: the IPv4 address),
 * MSSP_REST_FAIL_PER_ADDR; an API key against (AP, address),
 * MSSP_REST_FAIL_PER_AP_ADDR; a Basic user name against (name, address),
 * MSSP_REST_FAIL_PER_AP_ADDR, and against the name alone,
 * MSSP_REST_FAIL_PER_USER.  A counter at its limit: REST_AUTH_THROTTLED,
 * nothing checked, and *retry_after_s (may be NULL) = the seconds left in
 * its window. */
enum rest_auth_result rest_authenticate(struct rest *r, const struct conf_aps *aps,
					unsigned methods, const struct rest_req *rq,
					int64_t now_s, unsigned skew_s,
					const struct conf_ap **ap, unsigned *retry_after_s);

/* Should a refused REST request from peer_ip be logged?  true for the
 * first refusal of the address (IPv6: its /64) in a window of
 * MSSP_REST_FAIL_WINDOW_MS, then at the 10th, 100th, 1000th ...; *count
 * is the refusals in the window so far.  Bounds the log an attacker can
 * write. */
bool rest_log_refusal(struct rest *r, const char *peer_ip, int64_t now_ms, unsigned *count);

/* The stored form of a Basic password: hex(salt) ":" hex(SHA-256(salt ||
 * password)) with a fresh random salt, into out (2*SALT+1+2*HASH+1 bytes).
 * 0 or -1 (random source). */
#define REST_PW_HASH_HEX (2 * MSSP_REST_SALT_LEN + 1 + 2 * MSSP_REST_HASH_LEN)
int rest_password_hash(const char *password, char out[REST_PW_HASH_HEX + 1]);

/* The HMAC-SHA256 hex of the API-key scheme over Date, method, host, path
 * and body (protocol.md §10), into out (65 bytes).  0 or -1.  For clients
 * (mss-ap) and tests. */
int rest_apikey_mac(const char *key, const char *date, const char *method, const char *host,
		    const char *path, const uint8_t *body, size_t len, char out[65]);

/* RFC 7231 / RFC 2822 date ("Mon, 23 Nov 2026 10:00:00 GMT" or "+0000")
 * -> seconds since the epoch.  0 or -1. */
int rest_parse_http_date(const char *s, int64_t *out);

#endif
