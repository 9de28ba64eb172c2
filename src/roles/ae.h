/*
 * ae.h - the Acquiring Entity: the TS 102 204 interface for APs.
 *
 * Endpoints (AE listener, mutual TLS): POST /soap/services/MSS_*Port
 * (SOAP 1.2 or 1.1, any request message at any port, as Kiuru does) and
 * POST /rest/service[/sign|/status|/receipt|/profile] (the JSON mirror).
 *
 * Every request: the client certificate (verified by TLS against the AP
 * CA) must map to exactly one configured AP by its SHA-256 fingerprint,
 * checked on every request, resumed sessions included (P-11, T-08); the
 * AP must not be suspended; AP_ID in the message must be that AP's (104);
 * the per-AP rate (HTTP 429); decode and validate (mss_validate), Instant
 * within the skew (101, A-02); then the operation.  Errors are answered in
 * the request's encoding through mss_fault_from_err (the one mapping).
 *
 * Signature: the key is chosen (home_select), the transaction committed
 * (store_tx_create: idempotent resend, 101 on other content, one
 * outstanding request per user and key: 406)
 * BEFORE REQUEST_OK or the prompt, then HomeMSSP prompts the device.
 * synch: the request is parked until the outcome (or TimeOut);
 * asynchClientServer: 100 at once, status queries give 504 until final;
 * asynchServerServer: 100 at once, the outcome is POSTed to the AP's
 * notification URL (mutual TLS, bounded retries).  TimeOut runs on a
 * monotonic timer per transaction; a wall-clock sweep (store deadlines)
 * backs it up after a restart.
 *
 * Threads: ae_handler and ae_cancel run on the server's worker loops and
 * never touch the store; store work runs on the pool; the AE's own loop
 * thread runs the TimeOut timers, the sweep and the notification client.
 */
#ifndef MSSP_ROLES_AE_H
#define MSSP_ROLES_AE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/server.h"
#include "store/store.h"

struct ae;
struct pool;
struct home;
struct metrics;
struct mssp_conf;

struct reg;

struct ae_conf {
	const struct mssp_conf *ac_conf; /* borrowed for the AE's life */
	struct pool *ac_pool;
	struct home *ac_home;
	struct metrics *ac_metrics;	 /* may be NULL */
	struct reg *ac_reg;		 /* may be NULL: an account's certificate
					  * presented here is then only refused,
					  * not audited                         */
};

struct ae *ae_new(const struct ae_conf *c, char *err, size_t errlen);
/* The server whose AE listener uses ae_handler/ae_cancel (sl_arg = ae). */
void ae_attach(struct ae *a, struct srv *s);
/* Start the AE loop (timers, sweep, notifications) and run recovery of
 * the transactions left open by a previous run.  0, or -1. */
int ae_start(struct ae *a, char *err, size_t errlen);
void ae_handler(struct srv_req *req, void *arg);
void ae_cancel(struct srv_req *req, void *arg, enum srv_cancel why);
/* The mesh listener's handler (TS 102 207, docs/internals/mesh.md): peers
 * found by their certificate; same cancel callback as the AE listener. */
void ae_mesh_handler(struct srv_req *req, void *arg);
/* Reload the mesh's peers and routes when their records changed (or
 * `force`): 1 reloaded, 0 unchanged, -1 store failure (table kept). */
int ae_reload_mesh(struct ae *a, struct store *st, bool force);
/* home_final_fn: a transaction became final (pool thread). */
void ae_on_final(void *arg, struct store *st, const struct store_tx *tx);
/* Stop timers and notifications (after srv_stop, before pool_stop). */
void ae_stop(struct ae *a);
void ae_free(struct ae *a);

#endif
