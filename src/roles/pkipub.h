/*
 * pkipub.h - the publication listener of the user CA for relying parties
 * (docs/internals/me.md "Publication: OCSP and CRL"): plain HTTP, as RFC
 * 6960 (OCSP) and RFC 5280 (CRL distribution points) have it; the answers
 * are signed by the CA, so TLS would add nothing a relying party checks.
 *
 *   POST /ocsp          Content-Type application/ocsp-request, the DER
 *                       OCSPRequest as body (at most MSSP_CA_MAX_OCSP_REQ
 *                       bytes: the listener's sl_max_body, 413 beyond)
 *   GET  /ocsp/{req}    the DER request in base64, URL-encoded (RFC 6960
 *                       A.1.1); a '/' of the base64 may come raw
 *       -> 200 application/ocsp-response: a signed OCSPResponse, or an
 *          OCSP error response (malformedRequest, unauthorized,
 *          internalError), which is a valid OCSP answer too
 *   GET  /crl           -> 200 application/pkix-crl: the current CRL (DER)
 *   anything else       404; a known path with another method 405 (Allow);
 *                       POST /ocsp with another Content-Type 415
 *
 * HEAD is answered like GET.  The work (the CA lock, the disk, signing)
 * runs on the node's worker pool (util/pool: a struct node_worker context,
 * not used) through reg_pki_ocsp / reg_pki_crl.  Admission: at most
 * MSSP_PKIPUB_MAX_RUNNING jobs of this listener on the pool at once (the
 * pool is signing's too, and the listener is public), more wait in its
 * own queue (MSSP_PKIPUB_MAX_WAITING, then 503 Retry-After); a request
 * not answered within MSSP_PKIPUB_PARK_MS is answered 503.
 *
 * Threads: pkipub_handler and pkipub_cancel run on server workers (the
 * listener's sl_handler / sl_cancel; sl_arg is the struct pkipub); jobs
 * answer with srv_reply_async.  pkipub_free after srv_stop and
 * pool_stop (it waits for jobs still under way).
 *
 * Ownership: the reg and the pool are borrowed and must outlive it.
 */
#ifndef MSSP_ROLES_PKIPUB_H
#define MSSP_ROLES_PKIPUB_H

#include <stddef.h>

#include "net/server.h"
#include "util/limits.h"

/* The listener's sl_max_body: an OCSP request, never more. */
#define PKIPUB_MAX_BODY MSSP_CA_MAX_OCSP_REQ

struct reg;
struct pool;
struct pkipub;

struct pkipub_conf {
	struct reg *pc_reg;	  /* required                               */
	struct pool *pc_pool;	  /* required: the node's pool              */
	unsigned pc_max_running;  /* 0: MSSP_PKIPUB_MAX_RUNNING             */
	unsigned pc_park_ms;	  /* 0: MSSP_PKIPUB_PARK_MS (at most
				   * MSSP_SRV_MAX_PARK_MS)                  */
};

/* NULL with err (missing reg or pool, memory). */
struct pkipub *pkipub_new(const struct pkipub_conf *c, char *err, size_t errlen);
/* The server that answers (before the first request). */
void pkipub_attach(struct pkipub *p, struct srv *s);
void pkipub_handler(struct srv_req *req, void *arg);
void pkipub_cancel(struct srv_req *req, void *arg, enum srv_cancel why);
/* Accepts NULL. */
void pkipub_free(struct pkipub *p);

#endif
