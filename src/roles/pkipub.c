/*
 * pkipub.c - OCSP and CRL publication over plain HTTP (see pkipub.h).
 *
 * How a request travels:
 *   worker loop (pkipub_handler): route by path and method, check what
 *     needs no CA (Content-Type, the GET form's encoding: a request that
 *     does not decode gets its malformedRequest answer here), copy the
 *     DER request, park, admit (the run slot or the wait queue);
 *   pool thread (job_run): reg_pki_ocsp / reg_pki_crl, the answer through
 *     srv_reply_async, then the run slot goes to the oldest waiting job.
 *
 * Only waiting jobs are listed (p_wait, under p_lock): the cancel callback
 * drops one there by request id.  A job already given to the pool runs to
 * its end (it is short and changes nothing but, at worst, issues a CRL);
 * the server drops its answer if the request has ended.
 */
#include "roles/pkipub.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "mss/lex.h"
#include "roles/reg.h"
#include "util/log.h"
#include "util/pool.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define OCSP_REQ_CTYPE "application/ocsp-request"
#define OCSP_RESP_CTYPE "application/ocsp-response"
#define CRL_CTYPE "application/pkix-crl"
#define TEXT_CTYPE "text/plain; charset=utf-8"

enum pp_kind { PP_OCSP = 1, PP_CRL };

struct pp_job {
	struct pkipub *j_p;
	uint64_t j_req;
	enum pp_kind j_kind;
	struct pp_job *j_next; /* p_wait */
	size_t j_len;
	uint8_t j_der[];       /* the OCSP request (PP_OCSP) */
};

struct pkipub {
	struct reg *p_reg;
	struct pool *p_pool;
	struct srv *p_srv;
	unsigned p_max_running, p_park_ms;
	pthread_mutex_t p_lock;
	pthread_cond_t p_idle;		   /* p_running dropped to 0        */
	unsigned p_running;		   /* jobs holding a run slot       */
	struct pp_job *p_wait, *p_wait_tail; /* admitted, no run slot yet */
	size_t p_nwait;
};

/* ---- answers ---------------------------------------------------------------- */

struct pp_answer {
	struct srv_response rs;
	struct srv_header h[2];
};

static void
answer_fill(struct pp_answer *a, int status, const char *ctype, const void *body, size_t len,
	    const char *allow)
{
	memset(a, 0, sizeof *a);
	a->rs.rs_status = status;
	a->rs.rs_content_type = ctype;
	a->rs.rs_body = body;
	a->rs.rs_body_len = len;
	a->rs.rs_headers = a->h;
	if (allow) {
		a->h[a->rs.rs_nheaders].sh_name = "Allow";
		a->h[a->rs.rs_nheaders++].sh_value = allow;
	}
	if (status == 503) {
		a->h[a->rs.rs_nheaders].sh_name = "Retry-After";
		a->h[a->rs.rs_nheaders++].sh_value = STR(MSSP_PKIPUB_RETRY_AFTER_S);
	}
}

/* On the worker thread (handler, cancel callback). */
static void
reply_now(struct srv_req *req, int status, const char *text, const char *allow)
{
	struct pp_answer a;
	answer_fill(&a, status, TEXT_CTYPE, text, strlen(text), allow);
	(void)srv_reply_ex(req, &a.rs);
}

/* From a pool thread. */
static void
reply_async(struct pkipub *p, uint64_t id, int status, const char *ctype, const void *body,
	    size_t len)
{
	struct pp_answer a;
	answer_fill(&a, status, ctype, body, len, NULL);
	(void)srv_reply_async(p->p_srv, id, &a.rs);
}

static void
reply_async_text(struct pkipub *p, uint64_t id, int status, const char *text)
{
	reply_async(p, id, status, TEXT_CTYPE, text, strlen(text));
}

/* ---- admission -------------------------------------------------------------- */

static void job_run(void *ctx, void *arg);

/* The oldest waiting job, now holding a run slot (the caller submits it),
 * or NULL.  Under p_lock. */
static struct pp_job *
slot_pass(struct pkipub *p)
{
	struct pp_job *j = p->p_wait;
	if (!j || p->p_running >= p->p_max_running)
		return NULL;
	p->p_wait = j->j_next;
	if (!p->p_wait)
		p->p_wait_tail = NULL;
	p->p_nwait--;
	j->j_next = NULL;
	p->p_running++;
	return j;
}

/* A run slot is given back (under p_lock): the next waiting job, or NULL. */
static struct pp_job *
slot_release(struct pkipub *p)
{
	p->p_running--;
	struct pp_job *next = slot_pass(p);
	/* pkipub_free waits for this: once it is signalled and the lock
	 * released, p may be gone (only `next`, holding a slot, keeps it) */
	if (p->p_running == 0)
		pthread_cond_broadcast(&p->p_idle);
	return next;
}

/* Queue `j` (holding a run slot) on the pool.  When the pool refuses
 * (full, stopping) that request is answered busy and the slot passes on
 * to the next waiting job, tried the same way. */
static void
job_submit(struct pkipub *p, struct pp_job *j)
{
	while (j) {
		if (pool_submit(p->p_pool, job_run, j) == 0)
			return;
		reply_async_text(p, j->j_req, 503, "busy\n");
		pthread_mutex_lock(&p->p_lock);
		struct pp_job *next = slot_release(p);
		pthread_mutex_unlock(&p->p_lock);
		free(j);
		j = next;
	}
}

static void
job_run(void *ctx, void *arg)
{
	(void)ctx; /* struct node_worker: no store access here */
	struct pp_job *j = arg;
	struct pkipub *p = j->j_p;
	struct reg_err e;
	uint8_t *out = NULL;
	size_t olen = 0;
	int rc;

	memset(&e, 0, sizeof e);
	if (j->j_kind == PP_OCSP) {
		/* an OCSP error response (REG_OCSP_ERROR) is an answer too */
		rc = reg_pki_ocsp(p->p_reg, j->j_der, j->j_len, &out, &olen, &e);
		if (rc >= 0)
			reply_async(p, j->j_req, 200, OCSP_RESP_CTYPE, out, olen);
	} else {
		rc = reg_pki_crl(p->p_reg, &out, &olen, &e);
		if (rc == 0 && olen > MSSP_PKIPUB_MAX_CRL) {
			LOG_EV("pkipub.crl_too_large", "detail", "over MSSP_PKIPUB_MAX_CRL bytes");
			reply_async_text(p, j->j_req, 500, "CRL too large to serve\n");
		} else if (rc == 0) {
			reply_async(p, j->j_req, 200, CRL_CTYPE, out, olen);
		}
	}
	if (rc < 0)
		reply_async_text(p, j->j_req, e.status == 503 ? 503 : 500,
				 e.status == 503 ? "CA not available\n" : "CA error\n");
	OPENSSL_free(out);
	pthread_mutex_lock(&p->p_lock);
	struct pp_job *next = slot_release(p);
	pthread_mutex_unlock(&p->p_lock);
	free(j);
	if (next)
		job_submit(p, next); /* next holds a slot: p stays */
}

/* Park req and admit a job for it (`der`: the OCSP request, copied). */
static void
admit(struct pkipub *p, struct srv_req *req, enum pp_kind kind, const uint8_t *der, size_t len)
{
	struct pp_job *j = calloc(1, sizeof *j + len);
	bool run = false, full = false;

	if (!j || srv_req_park(req, p->p_park_ms) != 0) {
		free(j);
		reply_now(req, 503, "busy\n", NULL);
		return;
	}
	j->j_p = p;
	j->j_req = srv_req_id(req);
	j->j_kind = kind;
	j->j_len = len;
	if (len)
		memcpy(j->j_der, der, len);
	pthread_mutex_lock(&p->p_lock);
	if (p->p_running < p->p_max_running) {
		p->p_running++;
		run = true;
	} else if (p->p_nwait < MSSP_PKIPUB_MAX_WAITING) {
		if (p->p_wait_tail)
			p->p_wait_tail->j_next = j;
		else
			p->p_wait = j;
		p->p_wait_tail = j;
		p->p_nwait++;
	} else {
		full = true;
	}
	pthread_mutex_unlock(&p->p_lock);
	if (full) {
		free(j);
		reply_now(req, 503, "busy\n", NULL); /* parked: still ours here */
	} else if (run) {
		job_submit(p, j);
	}
}

/* ---- the listener ----------------------------------------------------------- */

/* An OCSP malformedRequest answer, built without the CA (RFC 6960 4.2.1:
 * error responses are not signed). */
static void
reply_malformed(struct srv_req *req)
{
	OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, NULL);
	unsigned char *der = NULL;
	int n = r ? i2d_OCSP_RESPONSE(r, &der) : 0;
	OCSP_RESPONSE_free(r);
	if (n <= 0) {
		reply_now(req, 500, "out of memory\n", NULL);
		return;
	}
	struct pp_answer a;
	answer_fill(&a, 200, OCSP_RESP_CTYPE, der, (size_t)n, NULL);
	(void)srv_reply_ex(req, &a.rs);
	OPENSSL_free(der);
}

/* The GET form (RFC 6960 A.1.1): `enc` (n bytes, the path after "/ocsp/")
 * is the base64 of the DER request, URL-encoded.  The DER into `out`
 * (cap bytes); its length, or -1. */
static long
ocsp_get_decode(const char *enc, size_t n, uint8_t *out, size_t cap)
{
	int dlen = 0;
	long rc = -1;

	if (n == 0 || n > MSSP_HTTP_MAX_TARGET)
		return -1;
	/* libcurl decodes %XX; '+' stays '+' (a path, not a form) */
	char *b64 = curl_easy_unescape(NULL, enc, (int)n, &dlen);
	if (b64 && dlen > 0 && strlen(b64) == (size_t)dlen)
		rc = mss_lex_base64_decode(b64, out, cap);
	curl_free(b64);
	return rc;
}

/* Is `ct` application/ocsp-request (any case, parameters allowed)? */
static bool
ctype_ocsp(const char *ct)
{
	size_t n = strlen(OCSP_REQ_CTYPE);
	if (!ct || strncasecmp(ct, OCSP_REQ_CTYPE, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

void
pkipub_handler(struct srv_req *req, void *arg)
{
	struct pkipub *p = arg;
	const char *m = srv_req_method(req);
	const char *path = srv_req_path(req);
	size_t plen = strcspn(path, "?");
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	bool post = strcmp(m, "POST") == 0;

	if (plen == 5 && memcmp(path, "/ocsp", 5) == 0) {
		size_t blen = 0;
		const uint8_t *body = srv_req_body(req, &blen);
		if (!post)
			reply_now(req, 405, "method not allowed\n", "POST");
		else if (!ctype_ocsp(srv_req_header(req, "Content-Type")))
			reply_now(req, 415, "Content-Type: " OCSP_REQ_CTYPE " expected\n", NULL);
		else if (blen > PKIPUB_MAX_BODY) /* the listener's cap, if set otherwise */
			reply_now(req, 413, "OCSP request too large\n", NULL);
		else
			admit(p, req, PP_OCSP, body, blen);
	} else if (plen >= 6 && memcmp(path, "/ocsp/", 6) == 0) {
		uint8_t der[MSSP_CA_MAX_OCSP_REQ];
		long n;
		if (!get)
			reply_now(req, 405, "method not allowed\n", "GET, HEAD");
		else if ((n = ocsp_get_decode(path + 6, plen - 6, der, sizeof der)) <= 0)
			reply_malformed(req);
		else
			admit(p, req, PP_OCSP, der, (size_t)n);
	} else if (plen == 4 && memcmp(path, "/crl", 4) == 0) {
		if (!get)
			reply_now(req, 405, "method not allowed\n", "GET, HEAD");
		else
			admit(p, req, PP_CRL, NULL, 0);
	} else {
		reply_now(req, 404, "not found\n", NULL);
	}
}

void
pkipub_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	struct pkipub *p = arg;
	uint64_t id = srv_req_id(req);
	struct pp_job *drop = NULL;

	/* a waiting job is dropped; one on the pool runs, its answer is
	 * dropped by the server */
	pthread_mutex_lock(&p->p_lock);
	for (struct pp_job **pp = &p->p_wait, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->j_next) {
		if ((*pp)->j_req != id)
			continue;
		drop = *pp;
		*pp = drop->j_next;
		if (p->p_wait_tail == drop)
			p->p_wait_tail = prev;
		p->p_nwait--;
		break;
	}
	pthread_mutex_unlock(&p->p_lock);
	free(drop);
	if (why == SRV_CANCEL_DEADLINE)
		reply_now(req, 503, "not answered in time\n", NULL);
}

/* ---- life cycle ------------------------------------------------------------- */

struct pkipub *
pkipub_new(const struct pkipub_conf *c, char *err, size_t errlen)
{
	if (!c || !c->pc_reg || !c->pc_pool) {
		snprintf(err, errlen, "pkipub: reg and pool are required");
		return NULL;
	}
	struct pkipub *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->p_reg = c->pc_reg;
	p->p_pool = c->pc_pool;
	p->p_max_running = c->pc_max_running ? c->pc_max_running : MSSP_PKIPUB_MAX_RUNNING;
	p->p_park_ms = c->pc_park_ms ? c->pc_park_ms : MSSP_PKIPUB_PARK_MS;
	if (p->p_park_ms > MSSP_SRV_MAX_PARK_MS)
		p->p_park_ms = MSSP_SRV_MAX_PARK_MS;
	if (pthread_mutex_init(&p->p_lock, NULL) != 0) {
		free(p);
		snprintf(err, errlen, "pkipub: mutex");
		return NULL;
	}
	if (pthread_cond_init(&p->p_idle, NULL) != 0) {
		pthread_mutex_destroy(&p->p_lock);
		free(p);
		snprintf(err, errlen, "pkipub: condition variable");
		return NULL;
	}
	return p;
}

void
pkipub_attach(struct pkipub *p, struct srv *s)
{
	p->p_srv = s;
}

void
pkipub_free(struct pkipub *p)
{
	if (!p)
		return;
	/* srv_stop cancelled the parked requests (the waiting jobs were
	 * dropped then); what is on the pool ends on its own: wait for it */
	pthread_mutex_lock(&p->p_lock);
	while (p->p_wait) {
		struct pp_job *j = p->p_wait;
		p->p_wait = j->j_next;
		free(j);
	}
	p->p_wait_tail = NULL;
	p->p_nwait = 0;
	while (p->p_running > 0)
		pthread_cond_wait(&p->p_idle, &p->p_lock);
	pthread_mutex_unlock(&p->p_lock);
	pthread_cond_destroy(&p->p_idle);
	pthread_mutex_destroy(&p->p_lock);
	free(p);
}
