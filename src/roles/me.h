/*
 * me.h - the Management Entity's HTTP front end (docs/internals/me.md):
 * the JSON API under /api/v1, the console's static files, the MReg SOAP
 * port, and the thread that turns answered key-generation jobs into
 * certificates.
 *
 * The listener is mutual TLS (client CA `[me] client_ca`).  Every request,
 * static files included, is authenticated on a pool thread by the client
 * certificate's SHA-256 (reg_account_by_fp): unknown, disabled or an AP's
 * certificate -> 403, audited "auth.refused".  Then, in this order:
 *   route (404), method (405 + Allow), Origin not in mc_origin (403),
 *   mutating request (POST/PUT/DELETE): X-MSSP-CSRF missing or wrong
 *   (403), Content-Type not application/json (415), body not a JSON
 *   object (400); query string parsed strictly (400); then reg_call
 *   (which checks the role, runs dual control and writes the audit record).
 * Status: 0 -> 200, REG_CREATED -> 201, REG_ACCEPTED / REG_PENDING -> 202,
 * an error -> e.status with {"error":{"status","code","message"}}.
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
};

/* A new ME front end (a fresh CSRF secret), or NULL with err. */
struct me *me_new(const struct me_conf *c, char *err, size_t errlen);
/* The server whose ME listener uses me_handler / me_cancel (sl_arg = m).
 * Before srv_start. */
void me_attach(struct me *m, struct srv *s);
/* Listener callbacks (sl_handler, sl_cancel; sl_max_body 0). */
void me_handler(struct srv_req *req, void *arg);
void me_cancel(struct srv_req *req, void *arg, enum srv_cancel why);

/* Start the job thread: every MSSP_ME_JOB_POLL_MS reg_jobs_process on a
 * store handle cloned from `st` (here, on the caller's thread).  Audits
 * me.start.  0, or -1 (clone or thread failed). */
int me_start(struct me *m, struct store *st);
/* Stop and join the job thread (audits me.stop).  Idempotent; a no-op
 * when not started.  After srv_stop, before pool_stop. */
void me_stop(struct me *m);
/* me_stop, then free (the CSRF secret is wiped).  Accepts NULL. */
void me_free(struct me *m);

#endif
