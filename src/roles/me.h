/*
 * me.h - the Management Entity's HTTP front end (docs/internals/me.md):
 * the JSON API under /api/v1, the console's static files, the MReg SOAP
 * port, and the thread that turns answered key-generation jobs into
 * certificates.
 *
 * The listener is mutual TLS (client CA `[me] client_ca`).  A request
 * whose Sec-Fetch-Site is "cross-site" is refused at once (403), on the
 * worker loop.  Every other request, static files included, is
 * authenticated on a pool thread by the client certificate's SHA-256
 * (reg_account_by_fp): unknown, disabled or an AP's certificate -> 403,
 * audited "auth.refused".  Then, in this order:
 *   Origin present and not in mc_origin (403), route (404), method (405 +
 *   Allow), X-MSSP-CSRF missing or wrong on ANY /api/v1 request but
 *   GET /api/v1/session and GET /api/v1/openapi.json - reads included,
 *   which a foreign page could trigger with an <img> (403); mutating
 *   request (POST/PUT/DELETE): Content-Type not application/json (415),
 *   body not a JSON object (400); query string parsed strictly (400);
 *   a long operation over the heavy cap (503); then reg_call (which
 *   checks the role, runs dual control and writes the audit record).
 * Status: 0 -> 200, REG_CREATED -> 201, REG_ACCEPTED / REG_PENDING -> 202,
 * an error -> e.status with {"error":{"status","code","message"}}.
 *
 * Admission (the ME shares msspd's pool with signing, review finding 5):
 *  - at most mc_max_running ME jobs are on the pool at once; later ones
 *    wait in the ME's own FIFO (MSSP_ME_MAX_WAITING, beyond it 503);
 *    msspd passes pool threads - 1 - the publication listener's share,
 *    so signing always keeps a thread;
 *  - at most mc_max_heavy long operations at once (keys.scan,
 *    audit.verify, stats, a user name search, a user / audit / approval
 *    list page above MSSP_ME_LIST_DEFAULT, an MReg SOAP request): over
 *    it 503 at once (revocation is never held back by them);
 *  - a pool refusal (queue full) is 503; every 503 has Retry-After
 *    (MSSP_ME_RETRY_AFTER_S) and means nothing was done.
 * Cancellation: when the request ends before its job runs (client gone,
 * park deadline mc_park_ms passed, server stopping) the job is skipped:
 * the operation is never started.  The check is made at the job's start
 * and again just before reg_call / mreg_handle; a job already inside
 * reg_call runs to its end (it is not interruptible) and its answer is
 * dropped.  The park deadline is answered 503 "not started in time" when
 * the job had not begun (nothing was done: retry), else 504 "outcome
 * unknown, query before retrying" (a blind retry could repeat it).
 *
 * CSRF token: hex HMAC-SHA256(per-process random secret, certificate
 * fingerprint), given by GET /api/v1/session as "csrf", compared in
 * constant time.  The SOAP port needs no token: its media types
 * (text/xml, application/soap+xml) are not CORS-safelisted, so a foreign
 * page cannot send it without a preflight we never grant.
 *
 * Every answer carries Cache-Control: no-store, X-Content-Type-Options:
 * nosniff, the console's Content-Security-Policy, X-Frame-Options: DENY
 * and Referrer-Policy: no-referrer.
 *
 * Threads: me_handler / me_cancel run on the server's worker loops and
 * never touch the store or the disk: they copy the request, park it and
 * queue a job on mc_pool (whose per-thread context is a struct
 * node_worker, roles/node.h); the job answers with srv_reply_async.  The
 * job thread (me_start) has its own store handle.
 *
 * Ownership: everything in struct me_conf is borrowed for the life of the
 * struct me.
 */
#ifndef MSSP_ROLES_ME_H
#define MSSP_ROLES_ME_H

#include <stddef.h>
#include <stdint.h>

#include "net/server.h"

struct reg;
struct pool;
struct store;
struct me;

struct me_conf {
	struct reg *mc_reg;	  /* required                                   */
	struct pool *mc_pool;	  /* required; its context is a node_worker     */
	const char *mc_web_root;  /* the console's files (index.html, static/,
				   * openapi.json); NULL: none served (404)     */
	const char *mc_origin;	  /* our own origins, separated by spaces:
				   * "https://127.0.0.1:9444 https://localhost:9444";
				   * required                                   */
	const char *mc_mssp_id;	  /* MSSP_ID URI in MReg answers; may be NULL   */
	unsigned mc_max_running;  /* ME jobs on mc_pool at once; 0:
				   * MSSP_ME_MAX_RUNNING (msspd: its pool
				   * threads - 1, at least 1)                  */
	unsigned mc_max_heavy;	  /* long operations at once; 0: MSSP_ME_MAX_HEAVY */
	unsigned mc_park_ms;	  /* a request's deadline; 0: MSSP_ME_PARK_MS
				   * (at most MSSP_SRV_MAX_PARK_MS)             */
};

/* A new ME front end (a fresh CSRF secret), or NULL with err. */
struct me *me_new(const struct me_conf *c, char *err, size_t errlen);
/* The server whose ME listener uses me_handler / me_cancel (sl_arg = m).
 * Before srv_start. */
void me_attach(struct me *m, struct srv *s);
/* Listener callbacks (sl_handler, sl_cancel with sl_arg = m; sl_max_body 0). */
void me_handler(struct srv_req *req, void *arg);
void me_cancel(struct srv_req *req, void *arg, enum srv_cancel why);

/* Start the job thread: every MSSP_ME_JOB_POLL_MS reg_jobs_process on a
 * store handle cloned from `st` (here, on the caller's thread).  Audits
 * me.start.  0, or -1 (clone or thread failed). */
int me_start(struct me *m, struct store *st);
/* Stop and join the job thread (audits me.stop).  Idempotent; a no-op
 * when not started.  After srv_stop, before pool_stop. */
void me_stop(struct me *m);
/* me_stop, then free (the CSRF secret is wiped).  Waits for this ME's
 * jobs still on the pool to end (they use the struct me to their last
 * step): after srv_stop, and with the pool still running them (or after
 * pool_stop, which runs every queued job).  Accepts NULL. */
void me_free(struct me *m);

#endif
