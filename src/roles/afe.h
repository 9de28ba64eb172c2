/*
 * afe.h - the app front end: phones connect over TLS WebSocket
 * (GET /app/v1/ws on the AFE listener, upgraded by the server layer),
 * authenticate with their device key, and then exchange end-to-end
 * protected blobs (pki/e2e.h) with HomeMSSP, which the AFE relays without
 * being able to read them.
 *
 * Wire protocol between phone and AFE (text frames, compact JSON):
 *   AFE  -> app  {"t":"challenge","c":base64(32 random bytes)}   at once
 *   app  -> AFE  {"t":"auth","d":device_id,"n":base64(16-byte app nonce),
 *                 "s":base64(e2e_auth_sign signature)}
 *   AFE  -> app  {"t":"ready"}        authenticated; or close 4001
 *   both         {"t":"e2e","b":base64(blob)}   relayed to/from HomeMSSP
 *   Anything else, a second auth, a blob before "ready", an unknown device,
 *   a disabled device, a bad signature: close 4001 (auth) or 1008, logged.
 *   The store unavailable, the AFE busy or full: close 4003 (try again
 *   later; not 1013, which ws.h does not send).
 *   No auth within MSSP_AFE_AUTH_MS: closed (4001).  Pings every MSSP_AFE_PING_MS;
 *   nothing received for MSSP_AFE_IDLE_MS: closed.
 * A device has at most one connection: a newer authenticated connection
 * replaces the older one (closed with 4002), and gets a new session id.
 *
 * Device activation (docs/internals/me.md "Device binding"): instead of
 * "auth", a phone without a device may send, once per connection,
 *   app  -> AFE  {"t":"activate","m":MSISDN,"n":base64(16-byte app nonce)}
 *   AFE  -> app  {"t":"activate_hello","n":base64(16-byte home nonce),
 *                 "b":base64(home binding SPKI)}   (a fresh P-256 key)
 *   app  -> AFE  {"t":"activate_proof","k":base64(device SPKI),
 *                 "b":base64(app binding SPKI),"s":base64(device-key
 *                 signature over T),"p":base64(HMAC(h, T || "app"))}
 *   AFE  -> app  {"t":"activated","d":device_id,"p":base64(HMAC(h, T ||
 *                 "home" || device_id))}, then close 1000.
 * Attempts are limited (afe_set_act_limits): "activate" per source
 * address, before the hello; a well-formed proof per MSISDN, before the
 * pool and the store.  Over a limit, close 4003 at once.
 * reg_activate() (roles/reg.h) decides, on the worker pool.  Any refusal
 * (wrong code, expired, locked, bad key or signature, a malformed or
 * unexpected frame, the auth deadline, no struct reg): close 4001 with one
 * generic reason; the store or the pool unavailable: 4003.  An activation
 * connection never becomes a device session.
 *
 * The device's public key is looked up in the store through the worker
 * pool (never on the loop thread); the store is the only truth (a device
 * registered on another node can connect here).
 *
 * Threads: afe_handler runs on server worker threads; afe_send and
 * afe_wake from any thread.  Callbacks (afe_ops) run on the device
 * connection's worker thread, never concurrently for one device.
 */
#ifndef MSSP_ROLES_AFE_H
#define MSSP_ROLES_AFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/e2e.h"

struct afe;
struct srv;
struct srv_req;
struct pool;
struct push_provider;

struct afe_ops {
	/* Device authenticated; `session` identifies this connection (never
	 * 0, never reused). */
	void (*ao_online)(void *arg, const char *device_id, uint64_t session,
			  const uint8_t app_nonce[E2E_NONCE_LEN]);
	/* A blob from the device (borrowed for the call). */
	void (*ao_blob)(void *arg, const char *device_id, uint64_t session, const uint8_t *blob,
			size_t len);
	/* The connection of `session` ended. */
	void (*ao_offline)(void *arg, const char *device_id, uint64_t session);
};

struct afe_stats {
	uint64_t as_online;	  /* gauge: authenticated devices */
	uint64_t as_auth_ok;
	uint64_t as_auth_failed;
	uint64_t as_blobs_in;
	uint64_t as_blobs_out;
	uint64_t as_send_offline; /* afe_send to a device not connected */
	uint64_t as_wakes;
	uint64_t as_act_ok;	  /* devices bound by activation       */
	uint64_t as_act_failed;	  /* activation attempts closed 4001   */
	uint64_t as_act_limited;  /* activation attempts over the per-
				   * address or per-MSISDN limit: 4003 */
	uint64_t as_act_nocode;	  /* of as_act_failed: no open code for
				   * the MSISDN (none, used, expired,
				   * locked): counted, not audited      */
};

/* ops and push are borrowed for the life of the afe (push may be NULL). */
struct afe *afe_new(struct pool *pool, const struct afe_ops *ops, void *arg,
		    struct push_provider *push);
/* Deadlines in milliseconds (0: the MSSP_AFE_* default): authentication
 * after the upgrade, ping interval, idle close.  Before afe_attach (tests
 * shorten them; a deployment may tune them behind a load balancer whose
 * own idle timeout is shorter than MSSP_AFE_IDLE_MS). */
void afe_set_timeouts(struct afe *a, unsigned auth_ms, unsigned ping_ms, unsigned idle_ms);
/* Activation attempts let through per minute (GCRA: a burst of the
 * count, then one per 60 s / count; 0: the default, above
 * MSSP_AFE_ACT_LIMIT_MAX cut to it):
 * - per_ip_per_min ([afe] act_per_ip_per_min, default
 *   MSSP_AFE_ACT_PER_IP_MIN): "activate" frames per source address (an
 *   IPv6 one per /64), checked before the hello.  The address is the TCP
 *   peer: behind a proxy, load balancer or carrier NAT all its users
 *   share one budget (raise it there, or terminate TLS at the AFE).
 * - per_msisdn_per_min ([afe] act_per_msisdn_per_min, default
 *   MSSP_AFE_ACT_PER_MSISDN_MIN): well-formed proofs per MSISDN from any
 *   source, checked after the local checks and before the pool and the
 *   store.  A bare "activate" never counts here: it costs the sender
 *   nothing and would let anyone block a victim's number.
 * Over either limit the connection is closed with 4003 (try later) and
 * nothing else is done (no pool job, no store).  Before afe_attach. */
void afe_set_act_limits(struct afe *a, unsigned per_ip_per_min, unsigned per_msisdn_per_min);
/* The registration module that decides activations (borrowed; NULL: every
 * activation is refused with 4001).  Before srv_start. */
struct reg;
void afe_set_reg(struct afe *a, struct reg *r);
/* Bind to the server whose listener uses afe_handler (after srv_new,
 * before srv_start). */
void afe_attach(struct afe *a, struct srv *s);
/* The listener's handler (sl_handler, sl_arg = the afe). */
void afe_handler(struct srv_req *req, void *arg);

/* Send a blob to the device's connection of `session` (0: whatever
 * connection it has now).  Copied.  0 when queued, -1 when the device is
 * not connected or the session has changed. */
int afe_send(struct afe *a, const char *device_id, uint64_t session, const uint8_t *blob,
	     size_t len);
bool afe_online(struct afe *a, const char *device_id);
/* The session of the device's current connection, 0 when offline. */
uint64_t afe_session(struct afe *a, const char *device_id);
/* Wake a disconnected device through the push provider (0 when handed
 * over). */
int afe_wake(struct afe *a, const char *device_id, const char *push_token);
void afe_get_stats(struct afe *a, struct afe_stats *out);
/* Close every device connection (before srv_stop).  Idempotent. */
void afe_stop(struct afe *a);
void afe_free(struct afe *a); /* accepts NULL */

#endif
