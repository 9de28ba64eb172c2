/*
 * ae.c - the Acquiring Entity (see ae.h).
 *
 * How a request travels:
 *   worker loop (ae_handler): AP authentication, decode, validate, AP
 *     authorisation, rate; then the request is parked and a job goes to
 *     the pool (the handler never waits for the store);
 *   pool thread (job_*): store work, HomeMSSP, and the answer through
 *     srv_reply_async();
 *   AE loop (ae->a_loop): the monotonic TimeOut timers, the wall-clock
 *     expiry sweep and the notification client (libcurl multi).
 *
 * Waiters: a synchronous request waits in a table keyed by MSSP_TransID
 * until the transaction is final (ae_on_final) - one table per node.  A
 * resend of an outstanding synchronous request (after a reconnect or a
 * restart) waits again on the same transaction.
 */
#include "roles/ae.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mss/json.h"
#include "mss/lex.h"
#include "mss/msg.h"
#include "mss/soap.h"
#include "mss/status.h"
#include "mss/validate.h"
#include "net/client.h"
#include "net/loop.h"
#include "net/tls.h"
#include "roles/conf.h"
#include "roles/home.h"
#include "roles/node.h"
#include "roles/reg.h"
#include "roles/rest.h"
#include "roles/roam.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/pool.h"

#define WAIT_BUCKETS MSSP_AE_WAIT_BUCKETS
#define TIMER_BUCKETS MSSP_AE_TIMER_BUCKETS
#define RATE_BUCKETS MSSP_AE_RATE_BUCKETS
#define AE_OP_PARK_MS MSSP_AE_OP_PARK_MS

enum fmt { FMT_SOAP12 = 1, FMT_SOAP11, FMT_JSON };

struct waiter {
	char w_id[STORE_TX_ID_LEN + 1];
	uint64_t w_req;
	enum fmt w_fmt;
	struct waiter *w_next;
};

struct timer {
	char t_id[STORE_TX_ID_LEN + 1];
	struct event *t_ev;
	struct ae *t_ae;
	struct timer *t_next;
};

struct rate {
	char r_ap[MSSP_STORE_MAX_AP_ID + 1];
	double r_tokens;
	uint64_t r_last_ms;
	struct rate *r_next;
};

struct ae {
	struct reg *a_reg;		/* audit of refused account certificates */
	struct roam *a_roam;		/* the mesh (TS 102 207, mesh.md)        */
	const struct mssp_conf *a_conf;
	struct pool *a_pool;
	struct home *a_home;
	struct srv *a_srv;
	struct loop *a_loop;
	struct httpc *a_httpc;		/* AE loop thread only */
	struct event *a_sweep_ev;	/* AE loop thread only */
	struct event *a_stuck_ev;	/* AE loop thread only */
	struct notify *a_notifies;	/* AE loop thread only */
	atomic_bool a_stuck_running;
	atomic_bool a_sweeping;
	pthread_mutex_t a_wlock;
	struct waiter *a_wait[WAIT_BUCKETS];
	struct timer *a_timers[TIMER_BUCKETS]; /* AE loop thread only */
	pthread_mutex_t a_rlock;
	struct rate *a_rates[RATE_BUCKETS];
	atomic_bool a_stopping;
	char *a_cert_b64;		/* our AE certificate (handshake)   */
	struct rest *a_rest;		/* REST gateway (roles/rest.h)      */
	X509_NAME *a_cert_issuer;
	struct metric *m_requests, *m_faults, *m_sig_ok, *m_sig_fail, *m_notify_ok,
		*m_notify_fail, *m_rate_limited, *m_expired;
};

/* The mesh (defined with the other mesh code below). */
struct job;
static bool is_mesh_ap(const char *ap_id);
static void stamp_answer(struct ae *a, struct mss_msg *m, const struct store_tx *tx);
static void mesh_notify(struct ae *a, const struct store_tx *tx, struct mss_msg *m);
static int roamed_expiry_query(struct ae *a, const struct store_tx *tx);
static void roamed_recover(struct ae *a, struct store *st, const struct store_tx *tx);
static bool rate_take(struct ae *a, const struct conf_ap *ap);
static bool ctype_is(const char *ct, const char *want);
static int submit(struct ae *a, struct srv_req *req, pool_job_fn fn, struct job *j,
		  unsigned park_ms);

/* ---- small helpers -------------------------------------------------- */

static int64_t
wall_ms(void)
{
	return clock_wall_ms();
}

static size_t
hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % n);
}

static void
iso_now(char out[64])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

/* ---- rendering answers ------------------------------------------------ */

static const char *
fmt_ctype(enum fmt f)
{
	return f == FMT_JSON ? "application/json;charset=UTF-8" : "text/xml; charset=utf-8";
}

/* Encode msg (or, when it fails, a 900 fault) into buf; sets rs. */
static void
render_msg(enum fmt f, const struct mss_msg *msg, struct mss_buf *buf, struct srv_response *rs)
{
	struct mss_err e;
	int rc;
	memset(&e, 0, sizeof e);
	mss_buf_init(buf, MSSP_SRV_MAX_RESPONSE);
	if (f == FMT_JSON)
		rc = mss_json_encode(msg, buf, &e);
	else
		rc = mss_soap_encode(msg, f == FMT_SOAP11 ? MSS_SOAP_11 : MSS_SOAP_12, buf, &e);
	memset(rs, 0, sizeof *rs);
	rs->rs_content_type = fmt_ctype(f);
	if (rc == 0) {
		rs->rs_status = 200;
		rs->rs_body = mss_buf_str(buf);
		rs->rs_body_len = mss_buf_len(buf);
		return;
	}
	struct mss_fault fl;
	mss_buf_free(buf);
	mss_buf_init(buf, MSSP_SRV_MAX_RESPONSE);
	mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Response could not be encoded");
	mss_fault_from_err(&e, &fl);
	if (f == FMT_JSON)
		mss_json_encode_fault(&fl, buf);
	else
		mss_soap_encode_fault(&fl, f == FMT_SOAP11 ? MSS_SOAP_11 : MSS_SOAP_12, buf);
	rs->rs_status = fl.http_status;
	rs->rs_body = mss_buf_str(buf);
	rs->rs_body_len = mss_buf_len(buf);
}

static void
render_err(enum fmt f, const struct mss_err *e, struct mss_buf *buf, struct srv_response *rs,
	   struct srv_header *hdr)
{
	struct mss_fault fl;
	mss_fault_from_err(e, &fl);
	mss_buf_init(buf, MSSP_SRV_MAX_RESPONSE);
	memset(rs, 0, sizeof *rs);
	if (e->kind == MSS_E_HTTP) {
		/* refused before SOAP/JSON: a plain HTTP answer */
		mss_buf_addf(buf, "%s\n", e->detail);
		rs->rs_status = e->code;
		rs->rs_content_type = "text/plain; charset=utf-8";
		if (e->code == 429 && hdr) {
			/* subcode: the seconds left in the REST failure window
			 * (rest_authenticate); 0 for the per-AP request rate */
			static _Thread_local char retry[16];
			snprintf(retry, sizeof retry, "%d", e->subcode > 0 ? e->subcode : 1);
			hdr->sh_name = "Retry-After";
			hdr->sh_value = retry;
			rs->rs_headers = hdr;
			rs->rs_nheaders = 1;
		} else if (e->code == 503 && hdr) {
			hdr->sh_name = "Retry-After";
			hdr->sh_value = "1";
			rs->rs_headers = hdr;
			rs->rs_nheaders = 1;
		} else if (e->code == 405 && hdr) {
			/* only the OpenAPI document is GET (ae_handler) */
			hdr->sh_name = "Allow";
			hdr->sh_value = strcmp(e->detail, "Only GET") == 0 ? "GET" : "POST";
			rs->rs_headers = hdr;
			rs->rs_nheaders = 1;
		} else if (e->code == 401 && hdr) {
			/* REST without valid credentials (roles/rest.h) */
			hdr->sh_name = "WWW-Authenticate";
			hdr->sh_value = "Basic realm=\"OpenMSSP\"";
			rs->rs_headers = hdr;
			rs->rs_nheaders = 1;
		}
	} else {
		if (f == FMT_JSON)
			mss_json_encode_fault(&fl, buf);
		else
			mss_soap_encode_fault(&fl, f == FMT_SOAP11 ? MSS_SOAP_11 : MSS_SOAP_12, buf);
		rs->rs_status = fl.http_status;
		rs->rs_content_type = fmt_ctype(f);
	}
	rs->rs_body = mss_buf_str(buf);
	rs->rs_body_len = mss_buf_len(buf);
}

static void
reply_msg_async(struct ae *a, uint64_t req, enum fmt f, const struct mss_msg *msg)
{
	struct mss_buf buf;
	struct srv_response rs;
	render_msg(f, msg, &buf, &rs);
	(void)srv_reply_async(a->a_srv, req, &rs);
	mss_buf_free(&buf);
}

static void
reply_err_async(struct ae *a, uint64_t req, enum fmt f, const struct mss_err *e)
{
	struct mss_buf buf;
	struct srv_response rs;
	struct srv_header h;
	metric_inc(a->m_faults);
	render_err(f, e, &buf, &rs, &h);
	(void)srv_reply_async(a->a_srv, req, &rs);
	mss_buf_free(&buf);
}

/* A response built by result_msg: msg, or when it could not be built
 * (NULL), the error e it left. */
static void
reply_result_async(struct ae *a, uint64_t req, enum fmt f, const struct mss_msg *msg,
		   const struct mss_err *e)
{
	if (msg)
		reply_msg_async(a, req, f, msg);
	else
		reply_err_async(a, req, f, e);
}

static void
reply_err_now(struct ae *a, struct srv_req *req, enum fmt f, const struct mss_err *e)
{
	struct mss_buf buf;
	struct srv_response rs;
	struct srv_header h;
	metric_inc(a->m_faults);
	render_err(f, e, &buf, &rs, &h);
	(void)srv_reply_ex(req, &rs);
	mss_buf_free(&buf);
}

/* ---- building response messages ------------------------------------------ */

static struct mss_status *
make_status(struct mss_msg *m, int code)
{
	struct mss_status *st = mss_msg_alloc(m, sizeof *st);
	if (!st)
		return NULL;
	st->code = mss_msg_alloc(m, sizeof *st->code);
	char num[16];
	snprintf(num, sizeof num, "%d", code);
	if (!st->code)
		return NULL;
	st->code->value = mss_msg_strdup(m, num);
	st->message = mss_msg_strdup(m, mss_status_name(code));
	return st;
}

/* Fill the common part of a response from the request's. */
static void
fill_common(struct ae *a, struct mss_msg *m, const struct mss_common *rq)
{
	struct mss_common *c = m->u.common;
	char now[64];
	iso_now(now);
	c->major_version = mss_msg_strdup(m, rq && rq->major_version ? rq->major_version : "1");
	c->minor_version = mss_msg_strdup(m, rq && rq->minor_version ? rq->minor_version : "1");
	if (rq && rq->ap_info) {
		c->ap_info = mss_msg_alloc(m, sizeof *c->ap_info);
		if (c->ap_info) {
			c->ap_info->ap_id = mss_msg_strdup(m, rq->ap_info->ap_id);
			c->ap_info->ap_trans_id = mss_msg_strdup(m, rq->ap_info->ap_trans_id);
			c->ap_info->instant = mss_msg_strdup(m, rq->ap_info->instant);
			/* AP_PWD is required by the schema; never echo the AP's */
			c->ap_info->ap_pwd = rq->ap_info->ap_pwd ? mss_msg_strdup(m, "") : NULL;
		}
	}
	c->mssp_info = mss_msg_alloc(m, sizeof *c->mssp_info);
	if (c->mssp_info) {
		c->mssp_info->instant = mss_msg_strdup(m, now);
		c->mssp_info->mssp_id = mss_msg_alloc(m, sizeof *c->mssp_info->mssp_id);
		if (c->mssp_info->mssp_id)
			c->mssp_info->mssp_id->uri = mss_msg_strdup(m, a->a_conf->mssp_id);
	}
}

static struct mss_mobile_user *
make_user(struct mss_msg *m, const char *msisdn)
{
	struct mss_mobile_user *u = mss_msg_alloc(m, sizeof *u);
	if (u)
		u->msisdn = mss_msg_strdup(m, msisdn);
	return u;
}

/* The answer to a finished signature transaction: a SignatureResp /
 * StatusResp with the signature, or the error as a fault (err set, NULL
 * returned).  `rq` is the request message that is answered (its AP_Info
 * is echoed). */
static struct mss_msg *
result_msg(struct ae *a, enum mss_msg_type type, const struct store_tx *tx,
	   const struct mss_common *rq, const char *profile, struct mss_err *err)
{
	int code = tx->tx_status;
	if (!store_state_final(tx->tx_state))
		code = MSS_OUTSTANDING_TRANSACTION;
	if (code != MSS_SIGNATURE && code != MSS_VALID_SIGNATURE &&
	    code != MSS_OUTSTANDING_TRANSACTION && code != MSS_REQUEST_OK) {
		mss_err_set(err, code ? code : MSS_INTERNAL_ERROR, 0,
			    tx->tx_detail[0] ? tx->tx_detail : mss_status_name(code));
		return NULL;
	}
	struct mss_msg *m = mss_msg_new(type);
	if (!m) {
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		return NULL;
	}
	fill_common(a, m, rq);
	struct mss_signature *sig = NULL;
	if (tx->tx_signature && (code == MSS_SIGNATURE || code == MSS_VALID_SIGNATURE)) {
		sig = mss_msg_alloc(m, sizeof *sig);
		if (sig)
			sig->base64_signature = mss_msg_strdup(m, tx->tx_signature);
	}
	if (type == MSS_SIGNATURE_RESP) {
		struct mss_signature_resp *r = m->u.sig_resp;
		r->mssp_trans_id = mss_msg_strdup(m, tx->tx_id);
		r->mobile_user = make_user(m, tx->tx_msisdn);
		r->signature = sig;
		if (profile && *profile)
			r->signature_profile = mss_msg_strdup(m, profile);
		r->status = make_status(m, code);
	} else {
		/* MSSP_TransID only in a notification (TS 102 204 schema:
		 * "other status responses never contain this") */
		struct mss_status_resp *r = m->u.status_resp;
		r->mobile_user = make_user(m, tx->tx_msisdn);
		r->signature = sig;
		r->status = make_status(m, code);
	}
	stamp_answer(a, m, tx);
	return m;
}

/* ---- waiters (synchronous requests) ------------------------------------ */

/* 0, or -1 when MSSP_AE_MAX_WAITERS already wait on `id`. */
static int
waiter_add(struct ae *a, const char *id, uint64_t req, enum fmt f)
{
	struct waiter *w = calloc(1, sizeof *w);
	if (!w)
		return 0; /* the park deadline answers it */
	snprintf(w->w_id, sizeof w->w_id, "%s", id);
	w->w_req = req;
	w->w_fmt = f;
	size_t b = hash_str(id, WAIT_BUCKETS);
	unsigned same = 0;
	pthread_mutex_lock(&a->a_wlock);
	for (struct waiter *x = a->a_wait[b]; x; x = x->w_next)
		same += strcmp(x->w_id, id) == 0;
	if (same < MSSP_AE_MAX_WAITERS) {
		w->w_next = a->a_wait[b];
		a->a_wait[b] = w;
		w = NULL;
	}
	pthread_mutex_unlock(&a->a_wlock);
	if (w) {
		free(w);
		return -1;
	}
	return 0;
}

/* Detach every waiter of `id` (a list the caller frees). */
static struct waiter *
waiters_take(struct ae *a, const char *id)
{
	struct waiter *out = NULL;
	size_t b = hash_str(id, WAIT_BUCKETS);
	pthread_mutex_lock(&a->a_wlock);
	struct waiter **pp = &a->a_wait[b];
	while (*pp) {
		struct waiter *w = *pp;
		if (strcmp(w->w_id, id) == 0) {
			*pp = w->w_next;
			w->w_next = out;
			out = w;
		} else {
			pp = &w->w_next;
		}
	}
	pthread_mutex_unlock(&a->a_wlock);
	return out;
}

/* ---- timers (AE loop thread) --------------------------------------------- */

struct timer_arm {
	struct ae *ta_ae;
	char ta_id[STORE_TX_ID_LEN + 1];
	int64_t ta_ms; /* relative; < 0: cancel */
};

static void expire_job(void *ctx, void *arg);

static void
timer_unlink(struct ae *a, struct timer *t)
{
	size_t b = hash_str(t->t_id, TIMER_BUCKETS);
	for (struct timer **pp = &a->a_timers[b]; *pp; pp = &(*pp)->t_next)
		if (*pp == t) {
			*pp = t->t_next;
			break;
		}
	event_free(t->t_ev);
	free(t);
}

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct timer *t = arg;
	struct ae *a = t->t_ae;
	char *id = strdup(t->t_id);
	timer_unlink(a, t);
	struct timer_arm *ta = calloc(1, sizeof *ta);
	if (!id || !ta) {
		free(id);
		free(ta);
		return; /* the sweep expires it */
	}
	ta->ta_ae = a;
	snprintf(ta->ta_id, sizeof ta->ta_id, "%s", id);
	free(id);
	if (pool_submit(a->a_pool, expire_job, ta) != 0)
		free(ta);
}

static void
timer_arm_on_loop(void *arg)
{
	struct timer_arm *ta = arg;
	struct ae *a = ta->ta_ae;
	size_t b = hash_str(ta->ta_id, TIMER_BUCKETS);
	struct timer *t;
	for (t = a->a_timers[b]; t; t = t->t_next)
		if (strcmp(t->t_id, ta->ta_id) == 0)
			break;
	if (ta->ta_ms < 0) {
		if (t)
			timer_unlink(a, t);
	} else if (!t && !atomic_load(&a->a_stopping)) {
		t = calloc(1, sizeof *t);
		if (t) {
			snprintf(t->t_id, sizeof t->t_id, "%s", ta->ta_id);
			t->t_ae = a;
			t->t_ev = evtimer_new(loop_base(a->a_loop), timer_fire, t);
			if (!t->t_ev) {
				free(t);
			} else {
				struct timeval tv = {.tv_sec = ta->ta_ms / 1000,
						     .tv_usec = (ta->ta_ms % 1000) * 1000};
				evtimer_add(t->t_ev, &tv);
				t->t_next = a->a_timers[b];
				a->a_timers[b] = t;
			}
		}
	}
	free(ta);
}

/* Arm (ms >= 0) or cancel (ms < 0) the TimeOut timer of a transaction. */
static void
timer_set(struct ae *a, const char *id, int64_t ms)
{
	struct timer_arm *ta = calloc(1, sizeof *ta);
	if (!ta)
		return;
	ta->ta_ae = a;
	snprintf(ta->ta_id, sizeof ta->ta_id, "%s", id);
	ta->ta_ms = ms;
	if (loop_call(a->a_loop, timer_arm_on_loop, ta) != 0)
		free(ta);
}

/* ---- notifications (asynchServerServer) ---------------------------------- */

struct notify {
	struct notify *n_next, *n_prev;	/* a_notifies (AE loop thread) */
	struct ae *n_ae;
	char *n_url;
	char *n_body;
	size_t n_len;
	unsigned n_attempt;
	struct event *n_retry;
};

static void notify_send(struct notify *n);

static void
notify_free(struct notify *n)
{
	if (n->n_prev)
		n->n_prev->n_next = n->n_next;
	else if (n->n_ae->a_notifies == n)
		n->n_ae->a_notifies = n->n_next;
	if (n->n_next)
		n->n_next->n_prev = n->n_prev;
	if (n->n_retry)
		event_free(n->n_retry);
	free(n->n_url);
	free(n->n_body);
	free(n);
}

static void
notify_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_send(arg);
}

static void
notify_done(void *arg, int status, const uint8_t *body, size_t len, const char *err)
{
	(void)body;
	(void)len;
	(void)err;
	struct notify *n = arg;
	struct ae *a = n->n_ae;
	if (status >= 200 && status < 300) {
		metric_inc(a->m_notify_ok);
		notify_free(n);
		return;
	}
	if (n->n_attempt > a->a_conf->notify_retries || atomic_load(&a->a_stopping)) {
		/* given up: the AP can still ask with MSS_StatusReq */
		metric_inc(a->m_notify_fail);
		char att[16];
		snprintf(att, sizeof att, "%u", n->n_attempt);
		LOG_EV("notify.given_up", "attempts", att, "why",
		       status ? "http error" : err ? err : "transport");
		notify_free(n);
		return;
	}
	uint64_t ms = (uint64_t)a->a_conf->notify_retry_ms << (n->n_attempt - 1);
	if (ms > MSSP_AE_NOTIFY_MAX_BACKOFF_MS)
		ms = MSSP_AE_NOTIFY_MAX_BACKOFF_MS;
	if (!n->n_retry)
		n->n_retry = evtimer_new(loop_base(a->a_loop), notify_retry_cb, n);
	if (!n->n_retry) {
		notify_free(n);
		return;
	}
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(n->n_retry, &tv);
}

static void
notify_send(struct notify *n)
{
	struct ae *a = n->n_ae;
	n->n_attempt++;
	struct httpc_req r = {
		.hr_url = n->n_url,
		.hr_content_type = "application/soap+xml; charset=utf-8",
		.hr_soap_action = "#MSS_Notification",
		.hr_body = n->n_body,
		.hr_body_len = n->n_len,
	};
	if (!a->a_httpc || httpc_post(a->a_httpc, &r, notify_done, n) != 0)
		notify_done(n, 0, NULL, 0, "not started");
}

static void
notify_start_on_loop(void *arg)
{
	struct notify *n = arg;
	struct ae *a = n->n_ae;
	n->n_next = a->a_notifies;
	if (a->a_notifies)
		a->a_notifies->n_prev = n;
	a->a_notifies = n;
	notify_send(n);
}

/* Build and queue the notification of a final transaction (pool thread). */
static void
notify_queue(struct ae *a, struct store *st, const struct store_tx *tx)
{
	struct store_tx full;
	struct store_err se;
	struct mss_err me;
	struct mss_msg *rq = NULL, *m = NULL;
	memset(&full, 0, sizeof full);
	memset(&me, 0, sizeof me);
	if (!tx->tx_notify_url[0] ||
	    store_tx_get_by_id(st, tx->tx_id, STORE_GET_REQUEST, &full, &se) != 0)
		goto out;
	rq = full.tx_request ? mss_json_decode(full.tx_request, full.tx_request_len, 0, &me) : NULL;
	m = mss_msg_new(MSS_STATUS_RESP);
	if (!m)
		goto out;
	m->op = MSS_OP_NOTIFICATION;
	fill_common(a, m, rq ? rq->u.common : NULL);
	struct mss_status_resp *r = m->u.status_resp;
	r->mssp_trans_id = mss_msg_strdup(m, full.tx_id);
	r->mobile_user = make_user(m, full.tx_msisdn);
	r->status = make_status(m, full.tx_status ? full.tx_status : MSS_INTERNAL_ERROR);
	if (full.tx_signature) {
		r->signature = mss_msg_alloc(m, sizeof *r->signature);
		if (r->signature)
			r->signature->base64_signature = mss_msg_strdup(m, full.tx_signature);
	}
	if (is_mesh_ap(full.tx_ap_id)) {
		/* a peer's transaction: back across the mesh */
		if (a->a_roam)
			mesh_notify(a, &full, m);
		goto out;
	}
	struct mss_buf buf;
	mss_buf_init(&buf, MSSP_AE_NOTIFY_BODY);
	if (mss_soap_encode(m, MSS_SOAP_12, &buf, &me) != 0) {
		mss_buf_free(&buf);
		goto out;
	}
	struct notify *n = calloc(1, sizeof *n);
	if (!n) {
		mss_buf_free(&buf);
		goto out;
	}
	n->n_ae = a;
	n->n_url = strdup(full.tx_notify_url);
	n->n_body = mss_buf_take(&buf, &n->n_len);
	if (!n->n_url || !n->n_body || loop_call(a->a_loop, notify_start_on_loop, n) != 0)
		notify_free(n);
out:
	mss_msg_free(rq);
	mss_msg_free(m);
	store_tx_clear(&full);
}

/* ---- the end of a transaction ------------------------------------------ */

void
ae_on_final(void *arg, struct store *st, const struct store_tx *tx)
{
	struct ae *a = arg;
	char code[16];
	snprintf(code, sizeof code, "%d", tx->tx_status);
	LOG_EV("tx.final", "tx", tx->tx_id, "state", store_state_name(tx->tx_state), "status", code,
	       "detail", tx->tx_detail[0] ? tx->tx_detail : NULL);
	if (tx->tx_status == MSS_SIGNATURE || tx->tx_status == MSS_VALID_SIGNATURE)
		metric_inc(a->m_sig_ok);
	else
		metric_inc(a->m_sig_fail);
	if (tx->tx_state == STORE_ST_EXPIRED)
		metric_inc(a->m_expired);
	timer_set(a, tx->tx_id, -1);
	struct waiter *w = waiters_take(a, tx->tx_id);
	if (w) {
		struct store_tx full;
		struct store_err se;
		struct mss_err me;
		struct mss_msg *rq = NULL;
		memset(&full, 0, sizeof full);
		memset(&me, 0, sizeof me);
		if (store_tx_get_by_id(st, tx->tx_id, STORE_GET_REQUEST, &full, &se) == 0 &&
		    full.tx_request)
			rq = mss_json_decode(full.tx_request, full.tx_request_len, 0, &me);
		const struct store_tx *use = full.tx_id[0] ? &full : tx;
		while (w) {
			struct waiter *n = w->w_next;
			struct mss_err e;
			memset(&e, 0, sizeof e);
			struct mss_msg *m = result_msg(a, MSS_SIGNATURE_RESP, use,
						       rq ? rq->u.common : NULL,
						       use->tx_profile, &e);
			reply_result_async(a, w->w_req, w->w_fmt, m, &e);
			mss_msg_free(m);
			free(w);
			w = n;
		}
		mss_msg_free(rq);
		store_tx_clear(&full);
	}
	if (tx->tx_mode == STORE_MODE_ASYNCH_SS)
		notify_queue(a, st, tx);
}

/* The TimeOut of a transaction passed (pool thread). */
static void
expire_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct timer_arm *ta = arg;
	struct ae *a = ta->ta_ae;
	struct store_tx tx, out;
	struct store_err se;
	memset(&tx, 0, sizeof tx);
	memset(&out, 0, sizeof out);
	if (store_tx_get_by_id(nw->nw_store, ta->ta_id, 0, &tx, &se) == 0 && tx.tx_peer[0] &&
	    tx.tx_peer_trans_id[0] && tx.tx_state == STORE_ST_PROMPT_SENT && a->a_roam &&
	    roamed_expiry_query(a, &tx) == 0) {
		/* the peer accepted it: its outcome may be on the way (a lost
		 * notification); asked once, then expired */
	} else if (tx.tx_id[0] &&
		   (tx.tx_state == STORE_ST_ACCEPTED || tx.tx_state == STORE_ST_PROMPT_SENT)) {
		struct store_tx_change chg = {.tc_status = MSS_EXPIRED_TRANSACTION};
		if (store_tx_transition(nw->nw_store, tx.tx_id, tx.tx_state, STORE_ST_EXPIRED, &chg,
					wall_ms(), &out, &se) == 0) {
			home_withdraw(a->a_home, &out, MSS_EXPIRED_TRANSACTION);
			ae_on_final(a, nw->nw_store, &out);
		}
	}
	store_tx_clear(&tx);
	store_tx_clear(&out);
	free(ta);
}

struct sweep_ctx {
	struct ae *sc_ae;
	struct store *sc_st;
};

static int
sweep_cb(void *arg, const struct store_tx *tx)
{
	struct sweep_ctx *sc = arg;
	home_withdraw(sc->sc_ae->a_home, tx, MSS_EXPIRED_TRANSACTION);
	ae_on_final(sc->sc_ae, sc->sc_st, tx);
	return 0;
}

static void
sweep_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct ae *a = arg;
	struct sweep_ctx sc = {a, nw->nw_store};
	struct store_err se;
	(void)store_tx_expire_due(nw->nw_store, wall_ms(), sweep_cb, &sc, NULL, &se);
	atomic_store(&a->a_sweeping, false);
}

/* Answers recorded but never finalised (the store failed at that moment
 * and its retries too): finish them from the stored answer (F-01d). */
static int
stuck_cb(void *arg, const struct store_tx *tx)
{
	struct sweep_ctx *sc = arg;
	if (tx->tx_state == STORE_ST_ANSWERED &&
	    tx->tx_answer_ms + MSSP_AE_STUCK_AGE_MS < wall_ms()) {
		if (tx->tx_peer[0])
			roamed_recover(sc->sc_ae, sc->sc_st, tx);
		else
			home_recover(sc->sc_ae->a_home, sc->sc_st, tx);
	}
	return 0;
}

static void
stuck_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct ae *a = arg;
	struct sweep_ctx sc = {a, nw->nw_store};
	struct store_err se;
	(void)store_tx_recover_scan(nw->nw_store, stuck_cb, &sc, NULL, &se);
	atomic_store(&a->a_stuck_running, false);
}

static void
stuck_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ae *a = arg;
	bool expected = false;
	if (atomic_compare_exchange_strong(&a->a_stuck_running, &expected, true) &&
	    pool_submit(a->a_pool, stuck_job, a) != 0)
		atomic_store(&a->a_stuck_running, false);
}

static void
sweep_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ae *a = arg;
	bool expected = false;
	if (atomic_compare_exchange_strong(&a->a_sweeping, &expected, true) &&
	    pool_submit(a->a_pool, sweep_job, a) != 0)
		atomic_store(&a->a_sweeping, false);
}

/* ---- the operations (pool thread) ----------------------------------------- */

struct job {
	struct ae *j_ae;
	uint64_t j_req;
	enum fmt j_fmt;
	struct mss_msg *j_msg;		     /* the request, owned */
	char j_ap[MSSP_STORE_MAX_AP_ID + 1];
	struct conf_aps *j_aps;		     /* a reference: the table j_conf_ap
					      * lives in, as the request saw it */
	const struct conf_ap *j_conf_ap;
	uint64_t j_arrival;		     /* loop_now_ms() at the handler  */
	int64_t j_arrival_wall;		     /* wall ms at the handler        */
	unsigned j_park_ms;		     /* the park budget               */
	unsigned j_timeout_ms;
	char *j_notify;			     /* SS: the notification URL */
	/* a request from a peer MSSP (mesh listener) */
	struct roam_tab *j_tab;		     /* a reference: j_peer lives there */
	const struct mesh_peer *j_peer;	     /* the sender, by its certificate */
	struct conf_ap j_peer_ap;	     /* the peer as an AP: id "mesh:" +
					      * MSSP_ID, its name and allow-list
					      * (borrowed from j_peer)           */
	char j_peer_ap_id[MSSP_STORE_MAX_AP_ID + 1];
};

static void
job_free(struct job *j)
{
	if (j->j_tab)
		roam_tab_put(j->j_ae->a_roam, j->j_tab);
	conf_aps_put(j->j_aps);
	mss_msg_free(j->j_msg);
	free(j->j_notify);
	free(j);
}

static enum store_mode
mode_of(const char *mm)
{
	if (!mm || strcmp(mm, "synch") == 0)
		return STORE_MODE_SYNCH;
	if (strcmp(mm, "asynchServerServer") == 0)
		return STORE_MODE_ASYNCH_SS;
	return STORE_MODE_ASYNCH_CS; /* asynchClientServer, Swisscom "asynch" */
}

/* Record signature request j as a new transaction (or find its resend):
 * AP_PWD blanked (never kept, not part of the resend identity), the JSON
 * mirror stored (the same content gives the same text whatever the
 * encoding it came in; a peer's re-forward differs only in its TimeOut,
 * which is left out), TimeOut counted from the arrival, committed before
 * anything is answered.  `peer`: NULL, or the peer a roamed request goes
 * to.  0 with *tx, or -1 with e (101 resend with other content, 406
 * another outstanding request of the user and key, 900). */
static int
tx_begin(struct store *st, struct job *j, const char *key_id, const char *peer,
	 struct store_tx *tx, struct mss_err *e)
{
	struct mss_signature_req *rq = j->j_msg->u.sig_req;
	struct mss_buf js;
	struct store_err se;
	int rc = -1;
	mss_buf_init(&js, MSSP_STORE_MAX_REQUEST);
	if (rq->c.ap_info && rq->c.ap_info->ap_pwd)
		rq->c.ap_info->ap_pwd = mss_msg_strdup(j->j_msg, "");
	char *timeout = rq->timeout;
	if (j->j_peer)
		rq->timeout = NULL;
	int enc = mss_json_encode(j->j_msg, &js, e);
	rq->timeout = timeout;
	if (enc != 0) {
		mss_err_set(e, MSS_INTERNAL_ERROR, 0, "Request could not be stored");
		goto out;
	}
	unsigned char hash[32];
	EVP_Digest(mss_buf_str(&js), mss_buf_len(&js), hash, NULL, EVP_sha256(), NULL);
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	home_msisdn(rq->mobile_user->msisdn, msisdn, sizeof msisdn);
	int64_t now = wall_ms();
	int64_t deadline = j->j_arrival_wall + j->j_timeout_ms;
	if (deadline <= now + (int64_t)MSSP_AE_START_MARGIN_MS)
		deadline = now + MSSP_AE_START_MARGIN_MS;
	struct store_tx_new n = {
		.tn_ap_id = j->j_ap,
		.tn_ap_trans_id = rq->c.ap_info->ap_trans_id,
		.tn_hash = hash,
		.tn_hash_len = sizeof hash,
		.tn_msisdn = msisdn,
		.tn_key_id = key_id,
		.tn_mode = mode_of(rq->messaging_mode),
		.tn_deadline_ms = deadline,
		.tn_notify_url = j->j_notify,
		.tn_request = mss_buf_str(&js),
		.tn_request_len = mss_buf_len(&js),
		.tn_peer = peer,
	};
	if (store_tx_create(st, &n, 0, now, tx, &se) != 0) {
		mss_err_set(e, se.status >= 100 ? se.status : MSS_INTERNAL_ERROR, 0,
			    se.status == MSS_PB_SIGNATURE_PROCESS ? "Outstanding transaction"
			    : se.status == MSS_WRONG_PARAM	  ? "AP_TransID already used"
								  : "Transaction could not be stored");
		goto out;
	}
	rc = 0;
out:
	mss_buf_free(&js);
	return rc;
}

/* After store_tx_create: a synchronous request waits on the transaction,
 * an asynchronous one gets 100 with its id now; a resend of a synchronous
 * request that has ended meanwhile is answered now.  0 to go on, -1 when
 * the request was answered with an error (stop). */
static int
accepted_answer(struct ae *a, struct store *st, struct job *j, const struct store_tx *tx,
		enum store_mode mode, const char *profile)
{
	const struct mss_common *rqc = j->j_msg->u.common;
	struct mss_err e;
	struct store_err se;
	memset(&e, 0, sizeof e);
	if (mode == STORE_MODE_SYNCH) {
		if (waiter_add(a, tx->tx_id, j->j_req, j->j_fmt) != 0) {
			/* resends of one request parked again and again: bounded */
			mss_err_set(&e, MSS_PB_SIGNATURE_PROCESS, 0, "Request already waiting");
			reply_err_async(a, j->j_req, j->j_fmt, &e);
			return -1;
		}
	} else {
		struct mss_msg *m = result_msg(a, MSS_SIGNATURE_RESP, tx, rqc, profile, &e);
		if (m) {
			/* an accepted asynchronous request: 100 with its id */
			struct mss_signature_resp *r = m->u.sig_resp;
			if (!store_state_final(tx->tx_state))
				r->status = make_status(m, MSS_REQUEST_OK);
			reply_msg_async(a, j->j_req, j->j_fmt, m);
			mss_msg_free(m);
		} else {
			reply_err_async(a, j->j_req, j->j_fmt, &e);
		}
	}
	if (tx->tx_replay && mode == STORE_MODE_SYNCH) {
		/* a resend: never a second prompt; if it ended meanwhile, answer */
		struct store_tx cur;
		memset(&cur, 0, sizeof cur);
		if (store_tx_get_by_id(st, tx->tx_id, 0, &cur, &se) == 0 &&
		    store_state_final(cur.tx_state)) {
			struct waiter *w = waiters_take(a, tx->tx_id);
			struct mss_msg *m = NULL;
			struct mss_err e2;
			memset(&e2, 0, sizeof e2);
			m = result_msg(a, MSS_SIGNATURE_RESP, &cur, rqc, cur.tx_profile, &e2);
			while (w) {
				struct waiter *nx = w->w_next;
				reply_result_async(a, w->w_req, w->w_fmt, m, &e2);
				free(w);
				w = nx;
			}
			mss_msg_free(m);
		}
		store_tx_clear(&cur);
	}
	return 0;
}

static void roamed_signature(struct node_worker *nw, struct job *j, struct roam_tab *tab,
			     const struct mesh_peer *to);
static void roamed_receipt(struct ae *a, struct job *j, const struct store_tx *tx);
static void roamed_profile(struct ae *a, struct job *j, struct roam_tab *tab,
			   const struct mesh_peer *to);
static int roamed_status(struct ae *a, struct job *j, const struct store_tx *tx);
static void stamp_reply(struct ae *a, struct mss_msg *m, const struct job *j);

static void
job_signature(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct ae *a = j->j_ae;
	struct mss_signature_req *rq = j->j_msg->u.sig_req;
	struct mss_err e;
	struct home_choice ch;
	struct store_tx tx;
	struct store_err se;
	memset(&e, 0, sizeof e);
	memset(&tx, 0, sizeof tx);

	/* a request that waited in the queue until its answer is overdue is
	 * not started: the AP may already have been told 900 (park deadline),
	 * and a prompt now would be an orphan */
	uint64_t waited = loop_now_ms() - j->j_arrival;
	if (waited + MSSP_AE_START_MARGIN_MS >= j->j_park_ms ||
	    waited + MSSP_AE_START_MARGIN_MS >= j->j_timeout_ms) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Server busy");
		goto fail;
	}
	if (a->a_roam && rq->mobile_user && rq->mobile_user->msisdn) {
		/* a user of another MSSP: the mesh (mesh.md) */
		char nm[MSSP_STORE_MAX_MSISDN + 1];
		home_msisdn(rq->mobile_user->msisdn, nm, sizeof nm);
		struct roam_tab *tab = roam_tab_get(a->a_roam);
		const struct mesh_peer *to =
			meshconf_route(roam_tab_table(tab), nm, roam_self_id(a->a_roam));
		if (to) {
			roamed_signature(nw, j, tab, to);
			return;
		}
		roam_tab_put(a->a_roam, tab);
	}
	if (home_select(a->a_home, nw->nw_store, rq, j->j_conf_ap, &ch, &e) != 0)
		goto fail;
	/* One outstanding request per user and key: the others get 406
	 * (the "SIM method" of A-22 for every device: exactly one prompt, and
	 * a running prompt is never pulled from under the user). */
	if (tx_begin(nw->nw_store, j, ch.hk_key.sk_key_id, NULL, &tx, &e) != 0)
		goto fail;
	enum store_mode mode = tx.tx_mode;
	int64_t deadline = tx.tx_deadline_ms;
	const char *msisdn = tx.tx_msisdn;
	if (accepted_answer(a, nw->nw_store, j, &tx, mode, ch.hk_profile) != 0)
		goto out;
	char masked[MSSP_STORE_MAX_MSISDN + 1];
	log_msisdn(msisdn, masked, sizeof masked);
	LOG_EV("tx.accepted", "tx", tx.tx_id, "ap", j->j_ap, "msisdn", masked, "key", tx.tx_key_id,
	       "mode", rq->messaging_mode ? rq->messaging_mode : "synch",
	       "replay", tx.tx_replay ? "yes" : "no");
	if (tx.tx_replay)
		goto out;
	timer_set(a, tx.tx_id, deadline - wall_ms());
	if (home_prompt(a->a_home, nw->nw_store, &tx, rq, &e) != 0) {
		struct store_tx_change chg = {.tc_status = MSS_INTERNAL_ERROR,
					      .tc_detail = "prompt failed"};
		struct store_tx fin;
		memset(&fin, 0, sizeof fin);
		if (store_tx_transition(nw->nw_store, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_FAILED,
					&chg, wall_ms(), &fin, &se) == 0)
			ae_on_final(a, nw->nw_store, &fin);
		store_tx_clear(&fin);
	}
	goto out;
fail:
	reply_err_async(a, j->j_req, j->j_fmt, &e);
out:
	OPENSSL_cleanse(&ch, sizeof ch);
	store_tx_clear(&tx);
	job_free(j);
}

static void
job_status(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct ae *a = j->j_ae;
	struct mss_status_req *rq = j->j_msg->u.status_req;
	struct store_tx tx;
	struct store_err se;
	struct mss_err e;
	memset(&tx, 0, sizeof tx);
	memset(&e, 0, sizeof e);
	if (store_tx_get(nw->nw_store, j->j_ap, rq->mssp_trans_id, 0, &tx, &se) != 0) {
		mss_err_set(&e, se.status >= 100 ? se.status : MSS_INTERNAL_ERROR, 0,
			    se.status == MSS_WRONG_PARAM ? "No such transaction"
							 : "Transaction store unavailable");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
	} else if (tx.tx_peer[0] && !store_state_final(tx.tx_state) && tx.tx_peer_trans_id[0] &&
		   a->a_roam && roamed_status(a, j, &tx) == 0) {
		/* roamed and open: the peer is asked, the answer follows */
		store_tx_clear(&tx);
		return;
	} else {
		struct mss_msg *m = result_msg(a, MSS_STATUS_RESP, &tx, &rq->c, NULL, &e);
		reply_result_async(a, j->j_req, j->j_fmt, m, &e);
		mss_msg_free(m);
	}
	store_tx_clear(&tx);
	job_free(j);
}

static void
job_receipt(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct ae *a = j->j_ae;
	struct mss_receipt_req *rq = j->j_msg->u.receipt_req;
	struct store_err se;
	struct mss_err e;
	struct store_tx tx;
	struct mss_buf js;
	memset(&e, 0, sizeof e);
	memset(&tx, 0, sizeof tx);
	mss_buf_init(&js, MSSP_STORE_MAX_RECEIPT);
	const char *text = rq->message && rq->message->data ? rq->message->data : "";
	if (mss_json_encode(j->j_msg, &js, &e) != 0 ||
	    store_tx_receipt(nw->nw_store, j->j_ap, rq->mssp_trans_id, mss_buf_str(&js),
			     mss_buf_len(&js), wall_ms(), &se) != 0) {
		if (!e.code)
			mss_err_set(&e, se.status >= 100 ? se.status : MSS_INTERNAL_ERROR, 0,
				    se.detail[0] ? se.detail : "Receipt refused");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
		goto out;
	}
	if (store_tx_get(nw->nw_store, j->j_ap, rq->mssp_trans_id, 0, &tx, &se) == 0) {
		if (tx.tx_peer[0] && a->a_roam) {
			/* recorded here; the user of a peer sees it there */
			roamed_receipt(a, j, &tx);
			store_tx_clear(&tx);
			mss_buf_free(&js);
			return;
		}
		home_receipt(a->a_home, nw->nw_store, &tx, text);
	}
	struct mss_msg *m = mss_msg_new(MSS_RECEIPT_RESP);
	if (m) {
		fill_common(a, m, &rq->c);
		m->u.receipt_resp->status = make_status(m, MSS_REQUEST_OK);
		stamp_reply(a, m, j);
		reply_msg_async(a, j->j_req, j->j_fmt, m);
		mss_msg_free(m);
	} else {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
	}
out:
	store_tx_clear(&tx);
	mss_buf_free(&js);
	job_free(j);
}

/* "EC" or "RSA" (Methics MobileUserCertificate/@Algorithm). */
static const char *
x509_algorithm(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
	const char *alg = k && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA ? "RSA" : "EC";
	X509_free(x);
	return alg;
}

static bool
flag_true(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void
job_profile(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct ae *a = j->j_ae;
	struct mss_profile_req *rq = j->j_msg->u.profile_req;
	struct mss_err e;
	struct store_err se;
	struct store_user u;
	struct store_key *keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys);
	size_t nkeys = 0;
	struct mss_msg *m = NULL;
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	memset(&e, 0, sizeof e);
	if (!keys) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto fail;
	}
	if (!rq->mobile_user || !rq->mobile_user->msisdn) {
		mss_err_set(&e, MSS_MISSING_PARAM, 0, "MSISDN missing");
		goto fail;
	}
	home_msisdn(rq->mobile_user->msisdn, msisdn, sizeof msisdn);
	if (a->a_roam) {
		struct roam_tab *tab = roam_tab_get(a->a_roam);
		const struct mesh_peer *to =
			meshconf_route(roam_tab_table(tab), msisdn, roam_self_id(a->a_roam));
		if (to) {
			free(keys);
			roamed_profile(a, j, tab, to);
			return;
		}
		roam_tab_put(a->a_roam, tab);
	}
	if (store_user_get(nw->nw_store, msisdn, &u, &se) != 0) {
		mss_err_set(&e, se.status == MSS_UNKNOWN_CLIENT ? MSS_UNKNOWN_CLIENT : MSS_INTERNAL_ERROR,
			    0, se.status == MSS_UNKNOWN_CLIENT ? "Unknown user" : "Store unavailable");
		goto fail;
	}
	if (u.su_state != STORE_USER_ACTIVE) {
		mss_err_set(&e, MSS_CARD_BLOCKED, 0, "User suspended");
		goto fail;
	}
	if (store_user_keys(nw->nw_store, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &nkeys, &se) != 0) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Store unavailable");
		goto fail;
	}
	m = mss_msg_new(MSS_PROFILE_RESP);
	if (!m) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto fail;
	}
	fill_common(a, m, &rq->c);
	struct mss_profile_resp *r = m->u.profile_resp;
	r->signature_profile = mss_msg_alloc(m, sizeof *r->signature_profile);
	size_t cap = MSSP_STORE_MAX_USER_KEYS * MSSP_KEYSTORE_MAX_PROFILES;
	if (r->signature_profile)
		r->signature_profile->items = mss_msg_alloc(m, cap * sizeof(void *));
	for (size_t k = 0; k < nkeys && r->signature_profile && r->signature_profile->items; k++) {
		if (keys[k].sk_state != STORE_KEY_ACTIVE)
			continue;
		char prof[MSSP_STORE_MAX_PROFILES_TEXT + 1];
		snprintf(prof, sizeof prof, "%s", keys[k].sk_profiles);
		char *save = NULL;
		for (char *t = strtok_r(prof, " ", &save); t && r->signature_profile->n < cap;
		     t = strtok_r(NULL, " ", &save))
			r->signature_profile->items[r->signature_profile->n++] = mss_msg_strdup(m, t);
	}
	r->status = make_status(m, MSS_REQUEST_OK);
	if (flag_true(rq->get_certificates) && r->status) {
		/* Methics extension: the app keys and their certificates */
		struct mss_status_detail *d = mss_msg_alloc(m, sizeof *d);
		struct mss_pq_extension *x = mss_msg_alloc(m, sizeof *x);
		struct mss_pq_sscds *ss = mss_msg_alloc(m, sizeof *ss);
		struct mss_pq_sscd *app = mss_msg_alloc(m, sizeof *app);
		if (d && x && ss && app) {
			r->status->detail = d;
			d->profile_query_ext = x;
			x->sscds = ss;
			ss->app = mss_msg_alloc(m, sizeof *ss->app);
			if (ss->app) {
				ss->app->items = mss_msg_alloc(m, sizeof(void *));
				if (ss->app->items) {
					ss->app->items[0] = app;
					ss->app->n = 1;
				}
			}
			app->state = mss_msg_strdup(m, "ACTIVE");
			app->certificate = mss_msg_alloc(m, sizeof *app->certificate);
			if (app->certificate)
				app->certificate->items = mss_msg_alloc(m, nkeys * sizeof(void *) + 1);
			for (size_t k = 0; k < nkeys && app->certificate && app->certificate->items;
			     k++) {
				if (!keys[k].sk_cert_len)
					continue;
				struct mss_pq_certificate *c = mss_msg_alloc(m, sizeof *c);
				char *b64 = mss_msg_alloc(m, 4 * ((keys[k].sk_cert_len + 2) / 3) + 1);
				if (!c || !b64)
					break;
				EVP_EncodeBlock((unsigned char *)b64, keys[k].sk_cert,
						(int)keys[k].sk_cert_len);
				const unsigned char *cp = keys[k].sk_cert;
				X509 *x509 = d2i_X509(NULL, &cp, (long)keys[k].sk_cert_len);
				char subj[MSSP_AE_MAX_SUBJECT] = "";
				if (x509) {
					X509_NAME_oneline(X509_get_subject_name(x509), subj, sizeof subj);
					X509_free(x509);
				}
				c->state = mss_msg_strdup(m, keys[k].sk_state == STORE_KEY_ACTIVE
								 ? "ACTIVE"
								 : keys[k].sk_state == STORE_KEY_REVOKED
									   ? "REVOKED"
									   : "INACTIVE");
				c->algorithm = mss_msg_strdup(m, x509_algorithm(keys[k].sk_cert,
										 keys[k].sk_cert_len));
				c->x509_certificate = mss_msg_alloc(m, sizeof *c->x509_certificate);
				c->x509_subject_name = mss_msg_alloc(m, sizeof *c->x509_subject_name);
				if (c->x509_certificate && c->x509_subject_name) {
					c->x509_certificate->items = mss_msg_alloc(m, sizeof(void *));
					c->x509_subject_name->items = mss_msg_alloc(m, sizeof(void *));
					if (c->x509_certificate->items && c->x509_subject_name->items) {
						c->x509_certificate->items[0] = b64;
						c->x509_certificate->n = 1;
						c->x509_subject_name->items[0] = mss_msg_strdup(m, subj);
						c->x509_subject_name->n = 1;
					}
				}
				app->certificate->items[app->certificate->n++] = c;
			}
		}
	}
	stamp_reply(a, m, j);
	reply_msg_async(a, j->j_req, j->j_fmt, m);
	goto out;
fail:
	reply_err_async(a, j->j_req, j->j_fmt, &e);
out:
	if (keys)
		OPENSSL_cleanse(keys, MSSP_STORE_MAX_USER_KEYS * sizeof *keys);
	free(keys);
	mss_msg_free(m);
	job_free(j);
}

/* ==== the mesh: roamed transactions (TS 102 207, docs/internals/mesh.md) ====
 *
 * At the AP's MSSP a roamed transaction lives in the store like a local
 * one (same replay, same waiters, same notification); "prompt sent" means
 * "forwarded", the peer's answer is recorded (ANSWERED) before it is
 * reported, and the peer's ids never reach the AP.  At the user's MSSP a
 * peer's request is a request of the pseudo-AP "mesh:" + the peer's
 * MSSP_ID whose AP_TransID is the peer's RE_TransactionID. */

#define MESH_AP_PREFIX "mesh:"
#define MESH_ROAMING_STATUS 780 /* TS 102 207 UNABLE_TO_PROVIDE_SERVICES */

static bool
is_mesh_ap(const char *ap_id)
{
	return strncmp(ap_id, MESH_AP_PREFIX, strlen(MESH_AP_PREFIX)) == 0;
}

static int
status_code_of(const struct mss_status *st)
{
	if (!st || !st->code || !st->code->value)
		return 0;
	char *end;
	long v = strtol(st->code->value, &end, 10);
	return *end || v < 100 || v > 999 ? 0 : (int)v;
}

/* The history a request from peer `ap_id` carried, as far as our record of
 * it keeps it (the sender's entry): answers and notifications going back
 * carry it, then ours. */
static void
history_of_tx(const struct store_tx *tx, struct mss_roam_hdr *h)
{
	memset(h, 0, sizeof *h);
	h->n = 1;
	h->entry[0].major = 1;
	h->entry[0].minor = 1;
	h->entry[0].instant = "1970-01-01T00:00:00Z";
	h->entry[0].re_trans_id = tx->tx_ap_trans_id;
	h->entry[0].sender_id = tx->tx_ap_id + strlen(MESH_AP_PREFIX);
	h->entry[0].role = MSS_MESH_ROLE_AE;
}

/* Give an answer to a peer its RoamingHeader (when `tx` is a peer's). */
static void
stamp_answer(struct ae *a, struct mss_msg *m, const struct store_tx *tx)
{
	if (!a->a_roam || !m || !is_mesh_ap(tx->tx_ap_id))
		return;
	struct mss_roam_hdr h;
	history_of_tx(tx, &h);
	(void)roam_stamp(a->a_roam, m, &h, NULL, roam_self_id(a->a_roam), tx->tx_id, 0,
			 MSS_MESH_ROLE_HOME);
}

/* The answer to a peer's non-transaction request (profile, receipt): its
 * history and our entry. */
static void
stamp_reply(struct ae *a, struct mss_msg *m, const struct job *j)
{
	if (!a->a_roam || !m || !j->j_peer || !j->j_msg->roam || !j->j_msg->roam->n)
		return;
	const struct mss_roam_hdr *in = j->j_msg->roam;
	(void)roam_stamp(a->a_roam, m, in->n < MSSP_MESH_MAX_HOPS ? in : NULL, NULL,
			 roam_self_id(a->a_roam), in->entry[in->n - 1].re_trans_id, 0,
			 MSS_MESH_ROLE_HOME);
}

/* The profile the AP asked for, from the stored request (local names). */
static void
requested_profile(const struct store_tx *tx, char *out, size_t cap)
{
	struct mss_err me;
	memset(&me, 0, sizeof me);
	out[0] = 0;
	struct mss_msg *rq =
		tx->tx_request ? mss_json_decode(tx->tx_request, tx->tx_request_len, 0, &me) : NULL;
	if (rq && rq->type == MSS_SIGNATURE_REQ && rq->u.sig_req->signature_profile)
		snprintf(out, cap, "%s", rq->u.sig_req->signature_profile);
	mss_msg_free(rq);
}

/* Move a roamed transaction to EXPIRED (its peer gave 208, or nothing in
 * time) and report it. */
static void
roamed_expire(struct ae *a, struct store *st, const struct store_tx *cur)
{
	struct store_tx fin;
	struct store_err se;
	memset(&fin, 0, sizeof fin);
	struct store_tx_change chg = {.tc_status = MSS_EXPIRED_TRANSACTION};
	if ((cur->tx_state == STORE_ST_ACCEPTED || cur->tx_state == STORE_ST_PROMPT_SENT) &&
	    store_tx_transition(st, cur->tx_id, cur->tx_state, STORE_ST_EXPIRED, &chg, wall_ms(),
				&fin, &se) == 0)
		ae_on_final(a, st, &fin);
	store_tx_clear(&fin);
}

/* The outcome of roamed transaction `id` from its peer: recorded (the
 * answer first, then the final state) and reported.  `sig` is the base64
 * CMS for 500/502; `profile` the answer's profile in our names (NULL:
 * the one requested).  A transaction that is final already is left alone
 * (a late answer). */
static void
roamed_final(struct ae *a, struct store *st, const char *id, int code, const char *sig,
	     const char *profile, const char *detail)
{
	struct store_tx cur, fin;
	struct store_err se;
	char prof[MSSP_PROFILE_MAX_URI + 1];
	memset(&cur, 0, sizeof cur);
	memset(&fin, 0, sizeof fin);
	if (store_tx_get_by_id(st, id, STORE_GET_REQUEST, &cur, &se) != 0 || !cur.tx_peer[0] ||
	    store_state_final(cur.tx_state))
		goto out;
	if (profile)
		snprintf(prof, sizeof prof, "%s", profile);
	else
		requested_profile(&cur, prof, sizeof prof);
	bool signed_ok = (code == MSS_SIGNATURE || code == MSS_VALID_SIGNATURE) && sig && *sig &&
			 strlen(sig) <= MSSP_STORE_MAX_SIGNATURE;
	if (code == MSS_EXPIRED_TRANSACTION) {
		roamed_expire(a, st, &cur);
		goto out;
	}
	if (!signed_ok) {
		/* a code we do not know is not passed on (R-08) */
		if (code < 101 || code > 999 || code == MSS_SIGNATURE || code == MSS_VALID_SIGNATURE ||
		    code == MSS_OUTSTANDING_TRANSACTION || !mss_status_lookup(code))
			code = MESH_ROAMING_STATUS;
		struct store_tx_change chg = {.tc_status = code, .tc_detail = detail};
		if (store_tx_transition(st, id, cur.tx_state, STORE_ST_FAILED, &chg, wall_ms(), &fin,
					&se) == 0)
			ae_on_final(a, st, &fin);
		goto out;
	}
	if (cur.tx_state == STORE_ST_PROMPT_SENT) {
		/* the peer's answer is durable before it is reported (F-01d) */
		json_t *ans = json_pack("{s:i, s:s, s:s}", "status", code, "signature", sig,
					"profile", prof);
		char *txt = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
		json_decref(ans);
		struct store_tx_change chg = {.tc_answer = (const unsigned char *)txt,
					      .tc_answer_len = txt ? strlen(txt) : 0};
		int rc = txt ? store_tx_transition(st, id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED,
						   &chg, wall_ms(), &fin, &se)
			     : -1;
		free(txt);
		if (rc != 0) {
			if (se.status == STORE_STATUS_PAST_DEADLINE)
				roamed_expire(a, st, &cur);
			goto out;
		}
		store_tx_clear(&fin);
	} else if (cur.tx_state != STORE_ST_ANSWERED) {
		goto out;
	}
	struct store_tx_change done = {.tc_status = code,
				       .tc_signature = sig,
				       .tc_signature_len = strlen(sig),
				       .tc_profile = prof[0] ? prof : NULL};
	if (store_tx_transition(st, id, STORE_ST_ANSWERED, STORE_ST_COMPLETED, &done, wall_ms(),
				&fin, &se) == 0)
		ae_on_final(a, st, &fin);
out:
	store_tx_clear(&cur);
	store_tx_clear(&fin);
}

/* ---- calls to peers and their answers ---- */

enum fwd_kind { FWD_SIGNATURE, FWD_STATUS, FWD_EXPIRY, FWD_RECEIPT, FWD_PROFILE, FWD_NOTIFY };

struct fwd {
	struct ae *f_ae;
	enum fwd_kind f_kind;
	char f_id[STORE_TX_ID_LEN + 1];	     /* our transaction            */
	char f_peer[MSSP_STORE_MAX_AP_ID + 1];
	struct job *f_job;		     /* the AP request to answer   */
	struct roam_answer f_ans;
};

static void fwd_job(void *ctx, void *arg);

static void
fwd_free(struct fwd *f)
{
	mss_msg_free(f->f_ans.ra_msg);
	if (f->f_job)
		job_free(f->f_job);
	free(f);
}

/* roam_done_fn: on the AE loop; the work goes to the pool. */
static void
fwd_done(void *arg, struct roam_answer *ans)
{
	struct fwd *f = arg;
	f->f_ans = *ans;
	ans->ra_msg = NULL;
	if (f->f_ans.ra_shutdown || atomic_load(&f->f_ae->a_stopping)) {
		/* cut by our own stop: the transaction stays as it is for
		 * recovery (a signature made at the peer is not lost); the
		 * waiting AP request ends with the server */
		fwd_free(f);
		return;
	}
	if (f->f_kind == FWD_NOTIFY) {
		if (f->f_ans.ra_status)
			LOG_EV("mesh.notify_failed", "tx", f->f_id, "peer", f->f_peer, "detail",
			       f->f_ans.ra_detail);
		fwd_free(f);
		return;
	}
	if (pool_submit(f->f_ae->a_pool, fwd_job, f) != 0) {
		/* the waiting AP request runs into its park deadline; the
		 * transaction into its TimeOut */
		fwd_free(f);
	}
}

static struct fwd *
fwd_new(struct ae *a, enum fwd_kind k, const char *id, const char *peer, struct job *j)
{
	struct fwd *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->f_ae = a;
	f->f_kind = k;
	snprintf(f->f_id, sizeof f->f_id, "%s", id ? id : "");
	snprintf(f->f_peer, sizeof f->f_peer, "%s", peer);
	f->f_job = j;
	return f;
}

/* Send `m` to `to` for `f`; when nothing could be started, the pool job
 * runs with 780 at once (so every path answers). */
static void
fwd_send(struct fwd *f, const struct mesh_peer *to, const char *path, const struct mss_msg *m,
	 enum mss_msg_type want, unsigned timeout_ms)
{
	if (roam_send(f->f_ae->a_roam, to, path, m, want, timeout_ms, fwd_done, f) != 0) {
		if (atomic_load(&f->f_ae->a_stopping)) {
			fwd_free(f); /* as in fwd_done: left for recovery */
			return;
		}
		f->f_ans.ra_status = MESH_ROAMING_STATUS;
		snprintf(f->f_ans.ra_detail, sizeof f->f_ans.ra_detail, "Peer MSSP call not started");
		if (f->f_kind == FWD_NOTIFY || pool_submit(f->f_ae->a_pool, fwd_job, f) != 0)
			fwd_free(f);
	}
}

/* Forward signature request `m` (ours to change) of transaction `tx` to
 * `to`.  `history`: what the request carried (NULL at the AE). */
static void
forward_signature(struct ae *a, struct store *st, const struct store_tx *tx, struct mss_msg *m,
		  const struct mss_roam_hdr *history, const struct mesh_peer *to)
{
	struct mss_signature_req *rq = m->u.sig_req;
	int64_t left_ms = tx->tx_deadline_ms - wall_ms();
	long left_s = (long)(left_ms / 1000) - MSSP_MESH_HOP_MARGIN_S;
	if (left_s < MSSP_MESH_MIN_TIMEOUT_S) {
		/* too little time left for the user: not worth a prompt */
		roamed_final(a, st, tx->tx_id, MSS_EXPIRED_TRANSACTION, NULL, NULL, NULL);
		return;
	}
	if (left_s > MSSP_MSG_MAX_TIMEOUT_S)
		left_s = MSSP_MSG_MAX_TIMEOUT_S;
	bool synch = tx->tx_mode == STORE_MODE_SYNCH;
	/* a synchronous forward is one HTTP exchange: the peer's budget must
	 * end before our client's longest wait, or a late signature is lost */
	if (synch && left_s > MSSP_HTTPC_MAX_TIMEOUT_MS / 1000 - MSSP_MESH_HOP_MARGIN_S)
		left_s = MSSP_HTTPC_MAX_TIMEOUT_MS / 1000 - MSSP_MESH_HOP_MARGIN_S;
	rq->messaging_mode = mss_msg_strdup(m, synch ? "synch" : "asynchServerServer");
	if (rq->c.ap_info) {
		/* the AP's notification URL and password never leave us */
		rq->c.ap_info->ap_url = NULL;
		if (rq->c.ap_info->ap_pwd)
			rq->c.ap_info->ap_pwd = mss_msg_strdup(m, "");
	}
	struct fwd *f = fwd_new(a, FWD_SIGNATURE, tx->tx_id, to->id, NULL);
	if (!f || !rq->messaging_mode ||
	    roam_stamp(a->a_roam, m, history, to, to->id, tx->tx_id, (unsigned)left_s,
		       history ? MSS_MESH_ROLE_TRANSIT : MSS_MESH_ROLE_AE) != 0) {
		free(f);
		roamed_final(a, st, tx->tx_id, MSS_INTERNAL_ERROR, NULL, NULL, "Forward failed");
		return;
	}
	LOG_EV("mesh.forward", "tx", tx->tx_id, "peer", to->id, "mode",
	       synch ? "synch" : "asynchServerServer");
	fwd_send(f, to, "/soap/services/MSS_SignaturePort", m, MSS_SIGNATURE_RESP,
		 synch ? (unsigned)(left_s + MSSP_MESH_HOP_MARGIN_S) * 1000u
		       : MSSP_MESH_QUERY_TIMEOUT_MS);
}

/* The current peer record of `id` (a reference in *tab), or NULL. */
static const struct mesh_peer *
peer_get(struct ae *a, const char *id, struct roam_tab **tab)
{
	*tab = roam_tab_get(a->a_roam);
	const struct mesh_peer *p = meshconf_peer_by_id(roam_tab_table(*tab), id);
	if (!p) {
		roam_tab_put(a->a_roam, *tab);
		*tab = NULL;
	}
	return p;
}

static void
answer_status_from_store(struct ae *a, struct store *st, struct job *j)
{
	struct mss_status_req *rq = j->j_msg->u.status_req;
	struct store_tx tx;
	struct store_err se;
	struct mss_err e;
	memset(&tx, 0, sizeof tx);
	memset(&e, 0, sizeof e);
	if (store_tx_get(st, j->j_ap, j->j_msg->u.status_req->mssp_trans_id, 0, &tx, &se) != 0) {
		mss_err_set(&e, se.status >= 100 ? se.status : MSS_INTERNAL_ERROR, 0,
			    se.status == MSS_WRONG_PARAM ? "No such transaction"
							 : "Transaction store unavailable");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
	} else {
		struct mss_msg *m = result_msg(a, MSS_STATUS_RESP, &tx, &rq->c, NULL, &e);
		reply_result_async(a, j->j_req, j->j_fmt, m, &e);
		mss_msg_free(m);
	}
	store_tx_clear(&tx);
}

static void
fwd_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct fwd *f = arg;
	struct ae *a = f->f_ae;
	struct roam_answer *an = &f->f_ans;
	struct mss_err e;
	struct roam_tab *tab = NULL;
	memset(&e, 0, sizeof e);
	const struct mesh_peer *peer = peer_get(a, f->f_peer, &tab);
	switch (f->f_kind) {
	case FWD_SIGNATURE: {
		if (an->ra_status) {
			roamed_final(a, nw->nw_store, f->f_id, an->ra_status, NULL, NULL, an->ra_detail);
			break;
		}
		struct mss_signature_resp *r = an->ra_msg->u.sig_resp;
		int code = status_code_of(r->status);
		struct store_err se;
		if (r->mssp_trans_id &&
		    store_tx_set_peer_trans_id(nw->nw_store, f->f_id, r->mssp_trans_id, wall_ms(),
					       &se) != 0 &&
		    se.status != STORE_STATUS_FINAL) {
			/* another id than before, or one we cannot keep: the
			 * transaction cannot be followed */
			roamed_final(a, nw->nw_store, f->f_id, MESH_ROAMING_STATUS, NULL, NULL,
				     "Peer MSSP transaction id refused");
			break;
		}
		if (code == MSS_REQUEST_OK) /* accepted: the notification follows */
			break;
		const char *prof = r->signature_profile && peer
					   ? meshconf_map_in(peer, r->signature_profile)
					   : NULL;
		roamed_final(a, nw->nw_store, f->f_id, code,
			     r->signature ? r->signature->base64_signature : NULL, prof,
			     code ? NULL : "Peer MSSP answer without a status");
		break;
	}
	case FWD_STATUS:
	case FWD_EXPIRY: {
		if (!an->ra_status) {
			struct mss_status_resp *r = an->ra_msg->u.status_resp;
			int code = status_code_of(r->status);
			if (code && code != MSS_OUTSTANDING_TRANSACTION && code != MSS_REQUEST_OK)
				roamed_final(a, nw->nw_store, f->f_id, code,
					     r->signature ? r->signature->base64_signature : NULL,
					     NULL, NULL);
		}
		if (f->f_kind == FWD_STATUS) {
			/* the AP gets what our record says now: still 504 if the
			 * peer could not be asked */
			answer_status_from_store(a, nw->nw_store, f->f_job);
		} else {
			struct store_tx cur;
			struct store_err se;
			memset(&cur, 0, sizeof cur);
			if (store_tx_get_by_id(nw->nw_store, f->f_id, 0, &cur, &se) == 0)
				roamed_expire(a, nw->nw_store, &cur);
			store_tx_clear(&cur);
		}
		break;
	}
	case FWD_RECEIPT: {
		struct job *j = f->f_job;
		if (an->ra_status) {
			mss_err_set(&e, an->ra_status, 0, an->ra_detail);
			reply_err_async(a, j->j_req, j->j_fmt, &e);
			break;
		}
		struct mss_msg *m = mss_msg_new(MSS_RECEIPT_RESP);
		if (m) {
			fill_common(a, m, &j->j_msg->u.receipt_req->c);
			/* our answer: the receipt was taken (the peer said so) */
			m->u.receipt_resp->status = make_status(m, MSS_REQUEST_OK);
			stamp_reply(a, m, j);
			reply_msg_async(a, j->j_req, j->j_fmt, m);
			mss_msg_free(m);
		} else {
			mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
			reply_err_async(a, j->j_req, j->j_fmt, &e);
		}
		break;
	}
	case FWD_PROFILE: {
		struct job *j = f->f_job;
		if (an->ra_status) {
			mss_err_set(&e, an->ra_status, 0, an->ra_detail);
			reply_err_async(a, j->j_req, j->j_fmt, &e);
			break;
		}
		/* our answer, with the peer's profiles in our names; nothing
		 * else of the peer's message is passed on (R-08) */
		const struct mss_profile_resp *pr = an->ra_msg->u.profile_resp;
		struct mss_msg *m = mss_msg_new(MSS_PROFILE_RESP);
		struct mss_profile_resp *r = m ? m->u.profile_resp : NULL;
		if (!m) {
			mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
			reply_err_async(a, j->j_req, j->j_fmt, &e);
			break;
		}
		fill_common(a, m, &j->j_msg->u.profile_req->c);
		size_t n = pr->signature_profile ? pr->signature_profile->n : 0;
		r->signature_profile = mss_msg_alloc(m, sizeof *r->signature_profile);
		if (r->signature_profile && n)
			r->signature_profile->items = mss_msg_alloc(m, n * sizeof(void *));
		for (size_t i = 0; i < n && r->signature_profile && r->signature_profile->items; i++) {
			const char *u = pr->signature_profile->items[i];
			r->signature_profile->items[r->signature_profile->n++] =
				mss_msg_strdup(m, peer ? meshconf_map_in(peer, u) : u);
		}
		r->status = make_status(m, MSS_REQUEST_OK);
		stamp_reply(a, m, j);
		reply_msg_async(a, j->j_req, j->j_fmt, m);
		mss_msg_free(m);
		break;
	}
	case FWD_NOTIFY:
		break;
	}
	roam_tab_put(a->a_roam, tab);
	fwd_free(f);
}

/* ACCEPTED -> PROMPT_SENT ("forwarded"), committed before the request
 * leaves (F-01b), with a nonce no device knows.  0 with *out. */
static int
mark_forwarded(struct store *st, const char *id, struct store_tx *out)
{
	unsigned char nb[16];
	char nonce[2 * sizeof nb + 1];
	struct store_err se;
	if (RAND_bytes(nb, sizeof nb) != 1)
		return -1;
	hex_encode(nb, sizeof nb, nonce);
	struct store_tx_change chg = {.tc_nonce = nonce};
	return store_tx_transition(st, id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, &chg,
				   wall_ms(), out, &se);
}

/* A signature request whose user lives at `to` (pool thread): the
 * transaction is ours, the prompt the peer's.  Takes `tab` and `j`. */
static void
roamed_signature(struct node_worker *nw, struct job *j, struct roam_tab *tab,
		 const struct mesh_peer *to)
{
	struct ae *a = j->j_ae;
	struct mss_signature_req *rq = j->j_msg->u.sig_req;
	struct mss_err e;
	struct store_tx tx;
	memset(&e, 0, sizeof e);
	memset(&tx, 0, sizeof tx);
	const char *prof = rq->signature_profile;
	/* no key is chosen here, so the AP's (or the sending peer's)
	 * allow-list must name the profile itself (P-12) */
	bool allowed = false;
	const struct conf_ap *ap = j->j_conf_ap;
	if (prof && ap) {
		allowed = ap->ca_all_profiles;
		for (size_t i = 0; !allowed && i < ap->ca_nprofiles; i++)
			allowed = strcmp(ap->ca_profiles[i], prof) == 0;
	}
	if (!allowed) {
		mss_err_set(&e, MSS_UNSUPPORTED_PROFILE, 0, "Signature profile not allowed");
		goto fail;
	}
	if (to->suspended) {
		mss_err_set(&e, MESH_ROAMING_STATUS, 0, "Home MSSP not available");
		goto fail;
	}
	/* the unit of exclusion here: the user and the profile asked for
	 * (hashed: a profile URI may be longer than a key id) */
	unsigned char ph[32];
	char kid[sizeof MESH_AP_PREFIX + 2 * 16];
	EVP_Digest(prof, strlen(prof), ph, NULL, EVP_sha256(), NULL);
	memcpy(kid, MESH_AP_PREFIX, strlen(MESH_AP_PREFIX));
	hex_encode(ph, 16, kid + strlen(MESH_AP_PREFIX));
	if (tx_begin(nw->nw_store, j, kid, to->id, &tx, &e) != 0)
		goto fail;
	enum store_mode mode = tx.tx_mode;
	int64_t deadline = tx.tx_deadline_ms;
	const char *msisdn = tx.tx_msisdn;
	if (accepted_answer(a, nw->nw_store, j, &tx, mode, prof) != 0)
		goto out;
	char masked[MSSP_STORE_MAX_MSISDN + 1];
	log_msisdn(msisdn, masked, sizeof masked);
	LOG_EV("tx.accepted", "tx", tx.tx_id, "ap", j->j_ap, "msisdn", masked, "peer", to->id,
	       "mode", rq->messaging_mode ? rq->messaging_mode : "synch", "replay",
	       tx.tx_replay ? "yes" : "no");
	if (tx.tx_replay)
		goto out;
	timer_set(a, tx.tx_id, deadline - wall_ms());
	struct store_tx fwd;
	memset(&fwd, 0, sizeof fwd);
	if (mark_forwarded(nw->nw_store, tx.tx_id, &fwd) != 0) {
		roamed_final(a, nw->nw_store, tx.tx_id, MSS_INTERNAL_ERROR, NULL, NULL,
			     "Forward not recorded");
		goto out;
	}
	forward_signature(a, nw->nw_store, &fwd, j->j_msg, j->j_peer ? j->j_msg->roam : NULL, to);
	store_tx_clear(&fwd);
	goto out;
fail:
	reply_err_async(a, j->j_req, j->j_fmt, &e);
out:
	store_tx_clear(&tx);
	roam_tab_put(a->a_roam, tab);
	job_free(j);
}

/* A roamed transaction left open by a restart, or an answer whose final
 * commit failed (pool thread). */
static void
roamed_recover(struct ae *a, struct store *st, const struct store_tx *tx)
{
	if (tx->tx_state == STORE_ST_ANSWERED) {
		json_error_t je;
		json_t *o = tx->tx_answer ? json_loadb((const char *)tx->tx_answer, tx->tx_answer_len,
						       0, &je)
					  : NULL;
		const char *sig = json_string_value(json_object_get(o, "signature"));
		const char *prof = json_string_value(json_object_get(o, "profile"));
		int code = (int)json_integer_value(json_object_get(o, "status"));
		if (sig && code) {
			struct store_tx fin;
			struct store_err se;
			memset(&fin, 0, sizeof fin);
			struct store_tx_change done = {.tc_status = code,
						       .tc_signature = sig,
						       .tc_signature_len = strlen(sig),
						       .tc_profile = prof && *prof ? prof : NULL};
			if (store_tx_transition(st, tx->tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED,
						&done, wall_ms(), &fin, &se) == 0)
				ae_on_final(a, st, &fin);
			store_tx_clear(&fin);
		} else {
			roamed_final(a, st, tx->tx_id, MSS_INTERNAL_ERROR, NULL, NULL,
				     "Stored answer unreadable");
		}
		json_decref(o);
		return;
	}
	if (store_state_final(tx->tx_state) || tx->tx_deadline_ms <= wall_ms())
		return; /* the sweep expires it */
	if (tx->tx_state == STORE_ST_PROMPT_SENT && tx->tx_peer_trans_id[0])
		return; /* accepted by the peer: its notification, or our query
			 * at the deadline */
	/* not known to have reached the peer: forward again; the peer
	 * de-duplicates on our transaction id, so nobody is prompted twice */
	struct roam_tab *tab = NULL;
	const struct mesh_peer *to = peer_get(a, tx->tx_peer, &tab);
	struct mss_err me;
	memset(&me, 0, sizeof me);
	struct mss_msg *m = to && tx->tx_request
				    ? mss_json_decode(tx->tx_request, tx->tx_request_len, 0, &me)
				    : NULL;
	struct store_tx cur;
	memset(&cur, 0, sizeof cur);
	if (!m || m->type != MSS_SIGNATURE_REQ) {
		roamed_final(a, st, tx->tx_id, MESH_ROAMING_STATUS, NULL, NULL,
			     to ? "Stored request unreadable" : "Peer MSSP no longer configured");
	} else if (tx->tx_state == STORE_ST_ACCEPTED) {
		if (mark_forwarded(st, tx->tx_id, &cur) == 0) {
			struct mss_roam_hdr h;
			history_of_tx(tx, &h);
			forward_signature(a, st, &cur, m, is_mesh_ap(tx->tx_ap_id) ? &h : NULL, to);
		}
	} else {
		struct mss_roam_hdr h;
		history_of_tx(tx, &h);
		forward_signature(a, st, tx, m, is_mesh_ap(tx->tx_ap_id) ? &h : NULL, to);
	}
	store_tx_clear(&cur);
	mss_msg_free(m);
	roam_tab_put(a->a_roam, tab);
}

/* The TimeOut of a roamed transaction the peer accepted passed: ask the
 * peer once, then expire.  0 when the question is on its way. */
static int
roamed_expiry_query(struct ae *a, const struct store_tx *tx)
{
	struct roam_tab *tab = NULL;
	const struct mesh_peer *to = peer_get(a, tx->tx_peer, &tab);
	struct mss_msg *m = to ? mss_msg_new(MSS_STATUS_REQ) : NULL;
	struct fwd *f = m ? fwd_new(a, FWD_EXPIRY, tx->tx_id, to->id, NULL) : NULL;
	int rc = -1;
	if (f) {
		fill_common(a, m, NULL);
		m->u.status_req->mssp_trans_id = mss_msg_strdup(m, tx->tx_peer_trans_id);
		struct mss_ap_info *ai = mss_msg_alloc(m, sizeof *ai);
		char now[64];
		iso_now(now);
		if (ai) {
			ai->ap_id = mss_msg_strdup(m, a->a_conf->mssp_id);
			ai->ap_trans_id = mss_msg_strdup(m, tx->tx_id);
			ai->instant = mss_msg_strdup(m, now);
			ai->ap_pwd = mss_msg_strdup(m, "");
			m->u.common->ap_info = ai;
		}
		if (ai && roam_stamp(a->a_roam, m, NULL, to, to->id, tx->tx_id, 0,
				     MSS_MESH_ROLE_AE) == 0) {
			fwd_send(f, to, "/soap/services/MSS_StatusQueryPort", m, MSS_STATUS_RESP,
				 MSSP_MESH_QUERY_TIMEOUT_MS);
			rc = 0;
		} else {
			free(f);
		}
	}
	mss_msg_free(m);
	roam_tab_put(a->a_roam, tab);
	return rc;
}

/* A copy of request `m` for a peer (through its JSON mirror: every field,
 * no header), AP_PWD blanked.  The AP's request stays as it came: the job
 * that answers the AP may run before the copy has even left. */
static struct mss_msg *
peer_copy(const struct mss_msg *m)
{
	struct mss_buf js;
	struct mss_err e;
	memset(&e, 0, sizeof e);
	mss_buf_init(&js, MSSP_STORE_MAX_REQUEST);
	struct mss_msg *c = mss_json_encode(m, &js, &e) == 0
				    ? mss_json_decode(mss_buf_str(&js), mss_buf_len(&js), 0, &e)
				    : NULL;
	mss_buf_free(&js);
	if (c && c->u.common->ap_info && c->u.common->ap_info->ap_pwd)
		c->u.common->ap_info->ap_pwd = mss_msg_strdup(c, "");
	return c;
}

/* Send the AP's request of job j (a copy, addressed to the peer's
 * transaction `peer_tx` when given) to `to` for fwd `f`, which owns j
 * from here.  `hist`: the header the request came with (a transit hop).
 * When no copy can be made, f runs with 900 at once. */
static void
fwd_copy_send(struct ae *a, struct fwd *f, const struct mesh_peer *to, const char *peer_tx,
	      const char *our_id, const char *path, enum mss_msg_type want)
{
	struct job *j = f->f_job;
	const struct mss_roam_hdr *hist = j->j_peer ? j->j_msg->roam : NULL;
	struct mss_msg *m = peer_copy(j->j_msg);
	bool ok = m != NULL;
	if (ok && peer_tx) {
		char **id = m->type == MSS_STATUS_REQ ? &m->u.status_req->mssp_trans_id
						      : &m->u.receipt_req->mssp_trans_id;
		ok = (*id = mss_msg_strdup(m, peer_tx)) != NULL;
	}
	if (ok)
		ok = roam_stamp(a->a_roam, m, hist, to, to->id, our_id, 0,
				hist ? MSS_MESH_ROLE_TRANSIT : MSS_MESH_ROLE_AE) == 0;
	if (ok) {
		fwd_send(f, to, path, m, want, MSSP_MESH_QUERY_TIMEOUT_MS);
	} else {
		f->f_ans.ra_status = MSS_INTERNAL_ERROR;
		snprintf(f->f_ans.ra_detail, sizeof f->f_ans.ra_detail, "Out of memory");
		if (pool_submit(a->a_pool, fwd_job, f) != 0)
			fwd_free(f);
	}
	mss_msg_free(m);
}

/* An AP's status query for an open roamed transaction: ask the peer
 * (takes j; 0), or -1 when it cannot be asked (answer from the store). */
static int
roamed_status(struct ae *a, struct job *j, const struct store_tx *tx)
{
	struct roam_tab *tab = NULL;
	const struct mesh_peer *to = peer_get(a, tx->tx_peer, &tab);
	struct fwd *f = to ? fwd_new(a, FWD_STATUS, tx->tx_id, to->id, j) : NULL;
	if (f)
		fwd_copy_send(a, f, to, tx->tx_peer_trans_id, tx->tx_id,
			      "/soap/services/MSS_StatusQueryPort", MSS_STATUS_RESP);
	roam_tab_put(a->a_roam, tab);
	return f ? 0 : -1;
}

/* A receipt for a roamed transaction, recorded here already: on to the
 * peer, whose user sees it (takes j). */
static void
roamed_receipt(struct ae *a, struct job *j, const struct store_tx *tx)
{
	struct roam_tab *tab = NULL;
	const struct mesh_peer *to = peer_get(a, tx->tx_peer, &tab);
	struct fwd *f = to && tx->tx_peer_trans_id[0] ? fwd_new(a, FWD_RECEIPT, tx->tx_id, to->id, j)
						      : NULL;
	if (!f) {
		struct mss_err e;
		memset(&e, 0, sizeof e);
		mss_err_set(&e, MESH_ROAMING_STATUS, 0, "Home MSSP not available");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
		job_free(j);
	} else {
		fwd_copy_send(a, f, to, tx->tx_peer_trans_id, tx->tx_id, "/soap/services/MSS_ReceiptPort",
			      MSS_RECEIPT_RESP);
	}
	roam_tab_put(a->a_roam, tab);
}

/* A profile query for a user of `to` (takes j and tab). */
static void
roamed_profile(struct ae *a, struct job *j, struct roam_tab *tab, const struct mesh_peer *to)
{
	struct fwd *f = fwd_new(a, FWD_PROFILE, NULL, to->id, j);
	unsigned char nb[8];
	char rid[2 * sizeof nb + 2] = "P";
	RAND_bytes(nb, sizeof nb);
	hex_encode(nb, sizeof nb, rid + 1);
	if (!f) {
		struct mss_err e;
		memset(&e, 0, sizeof e);
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
		job_free(j);
	} else {
		fwd_copy_send(a, f, to, NULL, rid, "/soap/services/MSS_ProfileQueryPort",
			      MSS_PROFILE_RESP);
	}
	roam_tab_put(a->a_roam, tab);
}

/* B: the result of a peer's asynchServerServer transaction goes back to
 * the peer's mesh listener (never to a URL from a message).  One attempt:
 * the peer asks at its deadline if this is lost. */
static void
mesh_notify(struct ae *a, const struct store_tx *tx, struct mss_msg *m)
{
	struct roam_tab *tab = NULL;
	const struct mesh_peer *to = peer_get(a, tx->tx_ap_id + strlen(MESH_AP_PREFIX), &tab);
	if (!to) {
		LOG_EV("mesh.notify_failed", "tx", tx->tx_id, "detail", "peer no longer configured");
		return;
	}
	struct mss_roam_hdr h;
	history_of_tx(tx, &h);
	struct fwd *f = fwd_new(a, FWD_NOTIFY, tx->tx_id, to->id, NULL);
	if (f && roam_stamp(a->a_roam, m, &h, NULL, roam_self_id(a->a_roam), tx->tx_id, 0,
			    MSS_MESH_ROLE_HOME) == 0)
		fwd_send(f, to, MSSP_MESH_NOTIFY_PATH, m, MSS_RECEIPT_REQ,
			 MSSP_MESH_QUERY_TIMEOUT_MS);
	else
		free(f);
	roam_tab_put(a->a_roam, tab);
}

/* A: a peer's notification of a transaction we forwarded to it. */
static void
job_mesh_notify(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct ae *a = j->j_ae;
	struct mss_status_resp *r = j->j_msg->u.status_resp;
	struct store_tx tx;
	struct store_err se;
	struct mss_err e;
	memset(&tx, 0, sizeof tx);
	memset(&e, 0, sizeof e);
	const char *own = roam_own_trans_id(a->a_roam, j->j_msg->roam);
	/* only for a transaction that went to this very peer (R-07); the id
	 * must at least have the form of ours before the store sees it */
	if (!own || strlen(own) != STORE_TX_ID_LEN || own[0] != 'T' || !r->mssp_trans_id ||
	    store_tx_get_by_id(nw->nw_store, own, 0, &tx, &se) != 0 ||
	    strcmp(tx.tx_peer, j->j_peer->id) != 0 ||
	    (tx.tx_peer_trans_id[0] && strcmp(tx.tx_peer_trans_id, r->mssp_trans_id) != 0)) {
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "No such transaction");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
		goto out;
	}
	if (!tx.tx_peer_trans_id[0])
		(void)store_tx_set_peer_trans_id(nw->nw_store, tx.tx_id, r->mssp_trans_id, wall_ms(),
						 &se);
	int code = status_code_of(r->status);
	if (code && code != MSS_OUTSTANDING_TRANSACTION && code != MSS_REQUEST_OK)
		roamed_final(a, nw->nw_store, tx.tx_id, code,
			     r->signature ? r->signature->base64_signature : NULL, NULL, NULL);
	/* the answer to a notification is an MSS_ReceiptReq (TS 102 204) */
	struct mss_msg *m = mss_msg_new(MSS_RECEIPT_REQ);
	if (m) {
		fill_common(a, m, NULL);
		struct mss_ap_info *ai = mss_msg_alloc(m, sizeof *ai);
		char now[64];
		iso_now(now);
		if (ai) {
			ai->ap_id = mss_msg_strdup(m, a->a_conf->mssp_id);
			ai->ap_trans_id = mss_msg_strdup(m, tx.tx_id);
			ai->instant = mss_msg_strdup(m, now);
			ai->ap_pwd = mss_msg_strdup(m, "");
			m->u.common->ap_info = ai;
		}
		m->u.receipt_req->mssp_trans_id = mss_msg_strdup(m, r->mssp_trans_id);
		m->u.receipt_req->mobile_user = r->mobile_user ? make_user(m, r->mobile_user->msisdn)
							       : NULL;
		m->u.receipt_req->status = make_status(m, MSS_REQUEST_OK);
		stamp_reply(a, m, j);
		reply_msg_async(a, j->j_req, j->j_fmt, m);
		mss_msg_free(m);
	} else {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
	}
out:
	store_tx_clear(&tx);
	job_free(j);
}

/* The mesh listener (TS 102 207, peers only).  Like ae_handler, but the
 * sender is a peer MSSP found by its certificate, the RoamingHeader is
 * required, and the AP's own checks (AP_ID, Instant) were the first
 * MSSP's to make. */
void
ae_mesh_handler(struct srv_req *req, void *arg)
{
	struct ae *a = arg;
	struct mss_err e;
	struct mss_msg *msg = NULL;
	struct job *j = NULL;
	struct roam_tab *tab = NULL;
	enum fmt f = FMT_SOAP12;
	memset(&e, 0, sizeof e);
	metric_inc(a->m_requests);
	const char *path = srv_req_path(req);
	const char *ct = srv_req_header(req, "Content-Type");
	bool soap = (strncmp(path, "/soap/services/MSS_", 19) == 0 && strstr(path, "Port") &&
		     !strchr(path, '?')) ||
		    strcmp(path, MSSP_MESH_NOTIFY_PATH) == 0;
	if (!soap) {
		mss_err_http(&e, 404, "Not found");
		goto answer;
	}
	if (strcmp(srv_req_method(req), "POST") != 0) {
		mss_err_http(&e, 405, "Only POST");
		goto answer;
	}
	if (!(ctype_is(ct, "text/xml") || ctype_is(ct, "application/soap+xml"))) {
		mss_err_http(&e, 415, "Unsupported media type");
		goto answer;
	}
	if (!a->a_roam) {
		mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, 0, "Unauthorized access");
		goto answer;
	}
	/* the sender is who its certificate says, never a header (P-32) */
	tab = roam_tab_get(a->a_roam);
	const struct mesh_peer *peer =
		meshconf_peer_by_fp(roam_tab_table(tab), srv_req_peer_fp(req));
	if (!peer || peer->suspended) {
		char hex[2 * TLS_FP_LEN + 1] = "";
		if (srv_req_peer_fp(req))
			hex_encode(srv_req_peer_fp(req), TLS_FP_LEN, hex);
		LOG_EV("mesh.peer_refused", "fp", hex, "why", peer ? "suspended" : "unknown");
		mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, 0, "Unauthorized access");
		goto answer;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto answer;
	}
	j->j_ae = a;
	j->j_tab = tab;
	tab = NULL;
	j->j_peer = peer;
	snprintf(j->j_peer_ap_id, sizeof j->j_peer_ap_id, "%s%s", MESH_AP_PREFIX, peer->id);
	snprintf(j->j_ap, sizeof j->j_ap, "%s", j->j_peer_ap_id);
	j->j_peer_ap.ca_id = j->j_peer_ap_id;
	j->j_peer_ap.ca_name = peer->name ? peer->name : peer->id;
	j->j_peer_ap.ca_all_profiles = peer->all_profiles;
	j->j_peer_ap.ca_profiles = peer->profiles;
	j->j_peer_ap.ca_nprofiles = peer->nprofiles;
	j->j_peer_ap.ca_rate = peer->rate;
	j->j_peer_ap.ca_modes = CONF_MODE_SYNCH | CONF_MODE_ASYNCH_CS | CONF_MODE_ASYNCH_SS;
	j->j_conf_ap = &j->j_peer_ap;
	j->j_arrival = loop_now_ms();
	j->j_arrival_wall = wall_ms();
	size_t blen;
	const char *body = (const char *)srv_req_body(req, &blen);
	msg = mss_soap_decode(body, blen, MSS_SOAP_ROAMING, &e);
	if (!msg)
		goto answer;
	f = msg->soap == MSS_SOAP_11 ? FMT_SOAP11 : FMT_SOAP12;
	j->j_fmt = f;
	const char *why = NULL;
	bool notification = msg->type == MSS_STATUS_RESP;
	/* the peer's rate applies to its requests; a result coming back is
	 * never refused for it (it would be lost) */
	if (!notification && !rate_take(a, &j->j_peer_ap)) {
		metric_inc(a->m_rate_limited);
		mss_err_http(&e, 429, "Too many requests");
		goto answer;
	}
	int rc = roam_check_inbound(a->a_roam, msg, peer, notification, &why);
	if (rc) {
		LOG_EV("mesh.refused", "peer", peer->id, "why", why);
		mss_err_set(&e, rc, 0, why);
		goto answer;
	}
	if (!notification && msg->type != MSS_SIGNATURE_REQ && msg->type != MSS_STATUS_REQ &&
	    msg->type != MSS_RECEIPT_REQ && msg->type != MSS_PROFILE_REQ) {
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "Operation not offered on this interface");
		goto answer;
	}
	if (!notification && mss_validate(msg, &e) != 0)
		goto answer;
	j->j_msg = msg;
	msg = NULL;
	if (notification) {
		if (submit(a, req, job_mesh_notify, j, AE_OP_PARK_MS) != 0) {
			mss_err_http(&e, 503, "Server busy");
			goto answer;
		}
		j = NULL;
		goto out;
	}
	if (j->j_msg->type == MSS_SIGNATURE_REQ) {
		struct mss_signature_req *rq = j->j_msg->u.sig_req;
		const struct mss_roam_hdr *h = j->j_msg->roam;
		/* our transaction is keyed by the sender's id (replay-safe) */
		if (!rq->c.ap_info || !rq->mobile_user || !rq->mobile_user->msisdn) {
			mss_err_set(&e, 710, 0, "Input information missing");
			goto answer;
		}
		rq->c.ap_info->ap_trans_id = mss_msg_strdup(j->j_msg, h->entry[h->n - 1].re_trans_id);
		if (rq->validity_date) {
			/* R-02: the transaction's validity ended on the way */
			long long vd;
			bool vtz;
			if (mss_lex_datetime(rq->validity_date, &vd, &vtz) != 0 || !vtz ||
			    vd <= wall_ms() / 1000) {
				mss_err_set(&e, 720, 0, "Validity date of the transaction has expired");
				goto answer;
			}
		}
		unsigned long to = a->a_conf->default_timeout_s;
		if (rq->timeout) {
			char *end;
			to = strtoul(rq->timeout, &end, 10);
			if (*end || to == 0) {
				mss_err_set(&e, MSS_WRONG_PARAM, 0, "TimeOut out of range");
				goto answer;
			}
		}
		/* R-05: never more than the sender's budget or our maximum */
		unsigned hdr_to = roam_hdr_timeout(h);
		if (hdr_to && to > hdr_to)
			to = hdr_to;
		if (to > a->a_conf->max_timeout_s)
			to = a->a_conf->max_timeout_s;
		j->j_timeout_ms = (unsigned)to * 1000;
		enum store_mode mode = mode_of(rq->messaging_mode);
		if (mode == STORE_MODE_ASYNCH_SS) {
			char url[MSSP_STORE_MAX_URL + 1];
			if ((size_t)snprintf(url, sizeof url, "%s%s", peer->url, MSSP_MESH_NOTIFY_PATH) >=
				    sizeof url ||
			    !(j->j_notify = strdup(url))) {
				mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Notification URL too long");
				goto answer;
			}
		}
		if (!rq->c.ap_info->ap_trans_id) {
			mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
			goto answer;
		}
		unsigned park = mode == STORE_MODE_SYNCH ? j->j_timeout_ms + MSSP_AE_PARK_GRACE_MS
							 : AE_OP_PARK_MS;
		if (submit(a, req, job_signature, j, park) != 0) {
			mss_err_http(&e, 503, "Server busy");
			goto answer;
		}
		j = NULL;
		goto out;
	}
	pool_job_fn fn = j->j_msg->type == MSS_STATUS_REQ    ? job_status
			 : j->j_msg->type == MSS_RECEIPT_REQ ? job_receipt
							      : job_profile;
	if (submit(a, req, fn, j, AE_OP_PARK_MS) != 0) {
		mss_err_http(&e, 503, "Server busy");
		goto answer;
	}
	j = NULL;
	goto out;
answer:
	reply_err_now(a, req, f, &e);
out:
	if (j)
		job_free(j);
	roam_tab_put(a->a_roam, tab);
	mss_msg_free(msg);
}

int
ae_reload_mesh(struct ae *a, struct store *st, bool force)
{
	return a && a->a_roam ? roam_reload(a->a_roam, st, force) : 0;
}

/* ---- MSS_Handshake ------------------------------------------------------ */

/* The signature algorithms this MSSP verifies (XML-DSig identifiers). */
static const char *const ae_sig_algs[] = {
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
	"http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
};

static struct mss_list *
list_new(struct mss_msg *m, size_t cap)
{
	struct mss_list *l = mss_msg_alloc(m, sizeof *l);
	if (l && cap)
		l->items = mss_msg_alloc(m, cap * sizeof(void *));
	return l && (!cap || l->items) ? l : NULL;
}

/* Does `dn` (as an AP writes it) name the issuer of our certificate? */
static bool
dn_matches(const char *dn, X509_NAME *issuer)
{
	char one[512], rfc[512];
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;
	if (b && X509_NAME_print_ex(b, issuer, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, rfc, sizeof rfc - 1);
	BIO_free(b);
	rfc[n > 0 ? n : 0] = 0;
	X509_NAME_oneline(issuer, one, sizeof one);
	return strcasecmp(dn, rfc) == 0 || strcasecmp(dn, one) == 0;
}

/* The answer to MSS_HandshakeReq: no message-level security is offered
 * (every SecureMethods flag false: TLS protects the channel); our server
 * certificate when the AP trusts its issuer; the AP's certificates that
 * are bound to this AP; the algorithms both sides know. */
static struct mss_msg *
handshake_answer(struct ae *a, const struct mss_msg *rqm, const struct conf_ap *ap,
		 struct mss_err *e)
{
	const struct mss_handshake_req *rq = rqm->u.hs_req;
	struct mss_msg *m = mss_msg_new(MSS_HANDSHAKE_RESP);
	if (!m) {
		mss_err_set(e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		return NULL;
	}
	fill_common(a, m, rqm->u.common);
	struct mss_handshake_resp *r = m->u.hs_resp;
	char id[2 + 32];
	unsigned char rnd[16];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		goto oom;
	id[0] = 'H';
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(id + 1 + 2 * i, 3, "%02x", rnd[i]);
	r->mssp_trans_id = mss_msg_strdup(m, id);
	r->secure_methods = mss_msg_alloc(m, sizeof *r->secure_methods);
	if (!r->mssp_trans_id || !r->secure_methods)
		goto oom;
	struct mss_secure_methods *sm = r->secure_methods;
	sm->signature = sm->registration = sm->notification = sm->profile_query = sm->receipt =
		sm->status = mss_msg_strdup(m, "false");
	r->mssp_certificates = list_new(m, 1);
	size_t ncert = rq->certificates ? rq->certificates->n : 0;
	size_t nalg = rq->signature_algs ? rq->signature_algs->n : 0;
	r->ap_certificates = list_new(m, ncert);
	r->signature_algs = list_new(m, nalg);
	if (!r->mssp_certificates || !r->ap_certificates || !r->signature_algs)
		goto oom;
	if (a->a_cert_b64 && rq->root_cas)
		for (size_t i = 0; i < rq->root_cas->n; i++)
			if (dn_matches(rq->root_cas->items[i], a->a_cert_issuer)) {
				r->mssp_certificates->items[r->mssp_certificates->n++] =
					mss_msg_strdup(m, a->a_cert_b64);
				break;
			}
	for (size_t i = 0; i < ncert; i++) {
		const char *b64 = rq->certificates->items[i];
		size_t bl = strlen(b64);
		unsigned char *der = malloc(bl);
		int dl = der ? EVP_DecodeBlock(der, (const unsigned char *)b64, (int)bl) : -1;
		const unsigned char *p = der;
		X509 *x = dl > 0 ? d2i_X509(NULL, &p, dl) : NULL;
		uint8_t fp[TLS_FP_LEN];
		bool bound = false;
		if (x && tls_cert_fingerprint(x, fp) == 0)
			for (size_t k = 0; k < ap->ca_nfps; k++)
				bound |= CRYPTO_memcmp(ap->ca_fps[k], fp, TLS_FP_LEN) == 0;
		if (bound)
			r->ap_certificates->items[r->ap_certificates->n++] = mss_msg_strdup(m, b64);
		X509_free(x);
		free(der);
	}
	for (size_t i = 0; i < nalg; i++)
		for (size_t k = 0; k < sizeof ae_sig_algs / sizeof ae_sig_algs[0]; k++)
			if (strcmp(rq->signature_algs->items[i], ae_sig_algs[k]) == 0) {
				r->signature_algs->items[r->signature_algs->n++] =
					mss_msg_strdup(m, ae_sig_algs[k]);
				break;
			}
	return m;
oom:
	mss_msg_free(m);
	mss_err_set(e, MSS_INTERNAL_ERROR, 0, "Out of memory");
	return NULL;
}

/* ---- the handler (worker loop) ------------------------------------------- */

static bool
rate_take(struct ae *a, const struct conf_ap *ap)
{
	if (!ap->ca_rate)
		return true;
	uint64_t now = loop_now_ms();
	size_t b = hash_str(ap->ca_id, RATE_BUCKETS);
	bool ok = false;
	pthread_mutex_lock(&a->a_rlock);
	struct rate *r;
	for (r = a->a_rates[b]; r; r = r->r_next)
		if (strcmp(r->r_ap, ap->ca_id) == 0)
			break;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (r) {
			snprintf(r->r_ap, sizeof r->r_ap, "%s", ap->ca_id);
			r->r_tokens = ap->ca_rate;
			r->r_last_ms = now;
			r->r_next = a->a_rates[b];
			a->a_rates[b] = r;
		}
	}
	if (r) {
		r->r_tokens += (double)(now - r->r_last_ms) * ap->ca_rate / 1000.0;
		if (r->r_tokens > ap->ca_rate)
			r->r_tokens = ap->ca_rate;
		r->r_last_ms = now;
		if (r->r_tokens >= 1.0) {
			r->r_tokens -= 1.0;
			ok = true;
		}
	}
	pthread_mutex_unlock(&a->a_rlock);
	return ok;
}

static bool
ctype_is(const char *ct, const char *want)
{
	if (!ct)
		return false;
	size_t n = strlen(want);
	return strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static int
submit(struct ae *a, struct srv_req *req, pool_job_fn fn, struct job *j, unsigned park_ms)
{
	if (srv_req_park(req, park_ms) != 0)
		return -1;
	/* the encoding, for an answer from the cancel callback */
	srv_req_set_data(req, (void *)(uintptr_t)j->j_fmt);
	j->j_req = srv_req_id(req);
	j->j_park_ms = park_ms;
	if (pool_submit(a->a_pool, fn, j) != 0) {
		/* parked but the pool refused: answer through the async path */
		struct mss_err e;
		memset(&e, 0, sizeof e);
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Server busy");
		reply_err_async(a, j->j_req, j->j_fmt, &e);
		job_free(j);
	}
	return 0;
}

/* A certificate the AE does not know: if it is an ME account's, that is a
 * separation-of-duties refusal worth an audit record (security.md P-10):
 * an administrator's certificate used as an AP's.  Checked on the pool
 * (a store read); other unknown certificates are only logged, so that a
 * stream of them cannot flood the audit log. */
struct fp_check {
	struct ae *fc_ae;
	uint8_t fc_fp[TLS_FP_LEN];
};

static void
fp_check_job(void *ctx, void *arg)
{
	struct node_worker *w = ctx;
	struct fp_check *fc = arg;
	struct reg_actor who;
	struct reg_err re;
	if (reg_account_by_fp(fc->fc_ae->a_reg, w->nw_store, fc->fc_fp, &who, &re) == 0) {
		reg_audit_event(fc->fc_ae->a_reg, &who, "auth.refused", "ae", "refused",
				"an ME account's certificate presented on the AE (separation "
				"of duties)",
				wall_ms());
	}
	free(fc);
}

static void
audit_foreign_cert(struct ae *a, const uint8_t *fp)
{
	char hex[2 * TLS_FP_LEN + 1];
	if (!fp)
		return;
	hex_encode(fp, TLS_FP_LEN, hex);
	LOG_EV("ae.unknown_certificate", "fp", hex);
	if (!a->a_reg)
		return;
	struct fp_check *fc = calloc(1, sizeof *fc);
	if (!fc)
		return;
	fc->fc_ae = a;
	memcpy(fc->fc_fp, fp, TLS_FP_LEN);
	if (pool_submit(a->a_pool, fp_check_job, fc) != 0)
		free(fc);
}

void
ae_handler(struct srv_req *req, void *arg)
{
	struct ae *a = arg;
	struct mss_err e;
	struct mss_msg *msg = NULL;
	struct conf_aps *aps = NULL;
	const struct conf_ap *ap;
	struct job *j = NULL;
	enum fmt f = FMT_SOAP12;
	memset(&e, 0, sizeof e);
	metric_inc(a->m_requests);

	const char *path = srv_req_path(req);
	const char *ct = srv_req_header(req, "Content-Type");
	bool soap = strncmp(path, "/soap/services/MSS_", 19) == 0 && strstr(path, "Port") &&
		    !strchr(path, '?');
	enum rest_path rp = rest_path_of(path);
	bool json = rp >= REST_PATH_ANY && rp <= REST_PATH_PROFILE;
	if (rp == REST_PATH_OPENAPI) {
		/* the REST API's description: public, no AP needed, GET only */
		size_t dlen;
		const char *doc = rest_openapi(a->a_rest, &dlen);
		if (strcmp(srv_req_method(req), "GET") != 0) {
			mss_err_http(&e, 405, "Only GET"); /* render_err: Allow: GET */
			goto answer;
		}
		if (!doc) {
			/* logged once, when rest_new could not read it */
			mss_err_http(&e, 404, "Not found");
			goto answer;
		}
		struct srv_response rs = {.rs_status = 200,
					  .rs_content_type = "application/json",
					  .rs_body = doc,
					  .rs_body_len = dlen};
		(void)srv_reply_ex(req, &rs);
		goto out;
	}
	if (!soap && !json) {
		mss_err_http(&e, 404, "Not found");
		goto answer;
	}
	if (json)
		f = FMT_JSON;
	else if (ctype_is(ct, "text/xml"))
		f = FMT_SOAP11; /* replaced by the envelope's version below */
	if (strcmp(srv_req_method(req), "POST") != 0) {
		mss_err_http(&e, 405, "Only POST");
		goto answer;
	}
	if (json ? !ctype_is(ct, "application/json")
		 : !(ctype_is(ct, "text/xml") || ctype_is(ct, "application/soap+xml"))) {
		mss_err_http(&e, 415, "Unsupported media type");
		goto answer;
	}
	size_t blen;
	const char *body = (const char *)srv_req_body(req, &blen);
	/* the AP is who its certificate says, on every request (P-11, T-08);
	 * on REST also who its HTTP credentials say ([ae] rest_auth) */
	aps = conf_aps_get();
	const uint8_t *fp = srv_req_peer_fp(req);
	unsigned methods = a->a_conf->rest_auth;
	ap = fp ? conf_ap_by_fp(aps, fp) : NULL;
	if (json) {
		const struct conf_ap *cred = NULL;
		struct rest_req rr = {.method = srv_req_method(req),
				      .host = srv_req_header(req, "Host"),
				      .path = path,
				      .authorization = srv_req_header(req, "Authorization"),
				      .date = srv_req_header(req, "Date"),
				      .body = (const uint8_t *)body,
				      .body_len = blen,
				      .peer_ip = srv_req_peer_ip(req)};
		unsigned retry_s = 0;
		enum rest_auth_result ar = rest_authenticate(
			a->a_rest, aps, methods, &rr, wall_ms() / 1000, a->a_conf->instant_skew_s,
			&cred, &retry_s);
		if (ar == REST_AUTH_THROTTLED) {
			metric_inc(a->m_rate_limited);
			mss_err_http(&e, 429, "Too many requests");
			e.subcode = (int)retry_s; /* render_err: Retry-After */
			goto answer;
		}
		if (ar == REST_AUTH_BAD || (ar == REST_AUTH_NONE && !fp)) {
			/* one line per address and window, then at 10, 100 ...
			 * refusals: a flood does not flood the log */
			unsigned nref;
			if (rest_log_refusal(a->a_rest, srv_req_peer_ip(req), wall_ms(), &nref)) {
				char cnt[16];
				snprintf(cnt, sizeof cnt, "%u", nref);
				LOG_EV("ae.rest_auth_refused", "ip", srv_req_peer_ip(req), "count",
				       cnt);
			}
			mss_err_http(&e, 401, "Unauthorized");
			goto answer;
		}
		if (fp && !(methods & CONF_REST_CERT) && ar == REST_AUTH_NONE) {
			mss_err_http(&e, 401, "Unauthorized");
			goto answer;
		}
		if (cred) {
			/* a certificate and credentials must name one AP */
			if (fp && cred != ap) {
				mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, 0, "Unauthorized access");
				goto answer;
			}
			ap = cred;
		}
	}
	if (!ap || ap->ca_suspended) {
		mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, ap ? 1043 : 0,
			    ap ? "Service suspended" : "Unauthorized access");
		if (!ap && fp)
			audit_foreign_cert(a, fp);
		goto answer;
	}
	if (!rate_take(a, ap)) {
		metric_inc(a->m_rate_limited);
		mss_err_http(&e, 429, "Too many requests");
		goto answer;
	}
	msg = json ? mss_json_decode(body, blen, MSS_JSON_REQUESTS_ONLY, &e)
		   : mss_soap_decode(body, blen, MSS_SOAP_REQUESTS_ONLY, &e);
	if (!json && msg)
		f = msg->soap == MSS_SOAP_11 ? FMT_SOAP11 : FMT_SOAP12;
	/* JSON: the path names the operation, and a minimal request gets its
	 * documented defaults before the one validation SOAP meets too */
	if (msg && json &&
	    (rest_path_check(rp, msg->type, &e) != 0 ||
	     rest_fill_defaults(msg, ap->ca_id, a->a_conf->mssp_id, &e) != 0))
		goto answer;
	if (!msg || mss_validate(msg, &e) != 0)
		goto answer;
	const struct mss_ap_info *ai = msg->u.common->ap_info;
	if (!ai || !ai->ap_id || strcmp(ai->ap_id, ap->ca_id) != 0) {
		mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, 0, "Unauthorized access");
		goto answer;
	}
	if (ai->instant) {
		long long t;
		bool tz;
		long long now = wall_ms() / 1000;
		if (mss_lex_datetime(ai->instant, &t, &tz) != 0 || !tz ||
		    llabs(now - t) > (long long)a->a_conf->instant_skew_s) {
			mss_err_set(&e, MSS_WRONG_PARAM, 0, "Instant outside the allowed skew");
			goto answer;
		}
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto answer;
	}
	j->j_ae = a;
	j->j_fmt = f;
	snprintf(j->j_ap, sizeof j->j_ap, "%s", ap->ca_id);
	j->j_aps = aps;
	aps = NULL; /* the job holds the table reference now */
	j->j_conf_ap = ap;
	j->j_arrival = loop_now_ms();
	j->j_arrival_wall = wall_ms();

	switch (msg->type) {
	case MSS_SIGNATURE_REQ: {
		struct mss_signature_req *rq = msg->u.sig_req;
		enum store_mode mode = mode_of(rq->messaging_mode);
		unsigned want = mode == STORE_MODE_SYNCH	  ? CONF_MODE_SYNCH
				: mode == STORE_MODE_ASYNCH_SS ? CONF_MODE_ASYNCH_SS
							       : CONF_MODE_ASYNCH_CS;
		if (!(ap->ca_modes & want)) {
			mss_err_set(&e, MSS_WRONG_PARAM, MSS_SUB_ILLEGAL_MESSAGINGMODE,
				    "Messaging mode not allowed");
			goto answer;
		}
		/* the AP's profile allow-list applies to the key HomeMSSP picks
		 * (home_select), whatever the request names (P-12) */
		if (!ai->ap_trans_id) {
			mss_err_set(&e, MSS_MISSING_PARAM, 0, "AP_TransID missing");
			goto answer;
		}
		if (mode == STORE_MODE_ASYNCH_SS) {
			const char *url = ai->ap_url;
			if (!url && ap->ca_nnotify == 1 && strchr(ap->ca_notify[0] + 8, '/'))
				url = ap->ca_notify[0];
			if (!url || !conf_ap_notify_allowed(ap, url) ||
			    strlen(url) > MSSP_STORE_MAX_URL) {
				mss_err_set(&e, MSS_WRONG_PARAM, 0, "Notification URL not allowed");
				goto answer;
			}
			j->j_notify = strdup(url);
			if (!j->j_notify) {
				mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
				goto answer;
			}
		}
		if (rq->validity_date) {
			/* a request that is no longer valid is never prompted (A-15) */
			long long vd;
			bool vtz;
			if (mss_lex_datetime(rq->validity_date, &vd, &vtz) != 0 || !vtz ||
			    vd <= wall_ms() / 1000) {
				mss_err_set(&e, MSS_WRONG_PARAM, 0, "ValidityDate in the past");
				goto answer;
			}
		}
		unsigned long to = a->a_conf->default_timeout_s;
		if (rq->timeout) {
			char *end;
			to = strtoul(rq->timeout, &end, 10);
			if (*end || to == 0 || to > a->a_conf->max_timeout_s) {
				mss_err_set(&e, MSS_WRONG_PARAM, 0, "TimeOut out of range");
				goto answer;
			}
		}
		j->j_timeout_ms = (unsigned)to * 1000;
		j->j_msg = msg;
		msg = NULL;
		unsigned park = mode == STORE_MODE_SYNCH ? j->j_timeout_ms + MSSP_AE_PARK_GRACE_MS
							 : AE_OP_PARK_MS;
		if (submit(a, req, job_signature, j, park) != 0) {
			mss_err_http(&e, 503, "Server busy");
			goto answer;
		}
		j = NULL;
		break;
	}
	case MSS_STATUS_REQ:
	case MSS_RECEIPT_REQ:
	case MSS_PROFILE_REQ: {
		pool_job_fn fn = msg->type == MSS_STATUS_REQ	? job_status
				 : msg->type == MSS_RECEIPT_REQ ? job_receipt
								: job_profile;
		j->j_msg = msg;
		msg = NULL;
		if (submit(a, req, fn, j, AE_OP_PARK_MS) != 0) {
			mss_err_http(&e, 503, "Server busy");
			goto answer;
		}
		j = NULL;
		break;
	}
	case MSS_HANDSHAKE_REQ: {
		struct mss_msg *m = handshake_answer(a, msg, ap, &e);
		if (!m)
			goto answer;
		struct mss_buf buf;
		struct srv_response rs;
		render_msg(f, m, &buf, &rs);
		(void)srv_reply_ex(req, &rs);
		mss_buf_free(&buf);
		mss_msg_free(m);
		break;
	}
	default:
		/* MSS_Registration belongs to the ME listener (issue 5) */
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "Operation not offered on this interface");
		goto answer;
	}
	goto out;
answer:
	reply_err_now(a, req, f, &e);
out:
	if (j)
		job_free(j);
	mss_msg_free(msg);
	conf_aps_put(aps);
}

void
ae_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	struct ae *a = arg;
	if (why != SRV_CANCEL_DEADLINE)
		return; /* gone: the waiter's answer is dropped by the server */
	struct mss_err e;
	memset(&e, 0, sizeof e);
	mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "No outcome in time");
	uintptr_t f = (uintptr_t)srv_req_data(req);
	reply_err_now(a, req, f >= FMT_SOAP12 && f <= FMT_JSON ? (enum fmt)f : FMT_SOAP12, &e);
}

/* ---- life cycle ------------------------------------------------------------ */

struct ae *
ae_new(const struct ae_conf *c, char *err, size_t errlen)
{
	struct ae *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->a_conf = c->ac_conf;
	a->a_pool = c->ac_pool;
	a->a_reg = c->ac_reg;
	a->a_home = c->ac_home;
	pthread_mutex_init(&a->a_wlock, NULL);
	pthread_mutex_init(&a->a_rlock, NULL);
	struct metrics *m = c->ac_metrics;
	if (m) {
		a->m_requests = metrics_counter(m, "mssp_ae_requests_total", NULL,
						"Requests received on the AE listener");
		a->m_faults = metrics_counter(m, "mssp_ae_faults_total", NULL,
					      "Requests answered with a fault or HTTP error");
		a->m_rate_limited = metrics_counter(m, "mssp_ae_rate_limited_total", NULL,
						    "Requests refused by an AP's rate limit (429)");
		a->m_sig_ok = metrics_counter(m, "mssp_tx_final_total", "outcome=\"signature\"",
					      "Transactions finished, by outcome");
		a->m_sig_fail = metrics_counter(m, "mssp_tx_final_total", "outcome=\"error\"",
						"Transactions finished, by outcome");
		a->m_expired = metrics_counter(m, "mssp_tx_expired_total", NULL,
					       "Transactions expired (208)");
		a->m_notify_ok = metrics_counter(m, "mssp_notify_total", "result=\"delivered\"",
						 "asynchServerServer notifications");
		a->m_notify_fail = metrics_counter(m, "mssp_notify_total", "result=\"given_up\"",
						   "asynchServerServer notifications");
	}
	FILE *cf = fopen(a->a_conf->ae_cert, "r");
	X509 *cert = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
	if (cf)
		fclose(cf);
	if (cert) {
		unsigned char *der = NULL;
		int dl = i2d_X509(cert, &der);
		if (dl > 0) {
			a->a_cert_b64 = malloc(4 * ((size_t)dl + 2) / 3 + 4);
			if (a->a_cert_b64)
				EVP_EncodeBlock((unsigned char *)a->a_cert_b64, der, dl);
		}
		OPENSSL_free(der);
		a->a_cert_issuer = X509_NAME_dup(X509_get_issuer_name(cert));
		X509_free(cert);
	}
	char oapi[4200];
	snprintf(oapi, sizeof oapi, "%s/rest-openapi.json", a->a_conf->me_web_root);
	a->a_rest = rest_new(oapi);
	a->a_loop = loop_new();
	if (!a->a_loop || !a->a_rest) {
		snprintf(err, errlen, "cannot create the AE loop");
		ae_free(a);
		return NULL;
	}
	/* the mesh: our identity towards peers is the node's TLS identity */
	struct roam_conf rc = {.rc_self_id = a->a_conf->mssp_id,
			       .rc_cert_file = a->a_conf->mesh_cert,
			       .rc_key_file = a->a_conf->mesh_key,
			       .rc_loop = a->a_loop,
			       .rc_metrics = c->ac_metrics};
	a->a_roam = roam_new(&rc, err, errlen);
	if (!a->a_roam) {
		ae_free(a);
		return NULL;
	}
	return a;
}

void
ae_attach(struct ae *a, struct srv *s)
{
	a->a_srv = s;
}

static void
ae_loop_init(void *arg)
{
	struct ae *a = arg;
	struct httpc_tls tls = {
		.ht_cert_file = a->a_conf->notify_cert,
		.ht_key_file = a->a_conf->notify_key,
		.ht_ca_file = a->a_conf->notify_ca,
	};
	a->a_httpc = httpc_new(a->a_loop, &tls);
	a->a_sweep_ev = event_new(loop_base(a->a_loop), -1, EV_PERSIST, sweep_timer, a);
	if (a->a_sweep_ev) {
		struct timeval tv = {.tv_sec = MSSP_AE_SWEEP_MS / 1000,
				     .tv_usec = (MSSP_AE_SWEEP_MS % 1000) * 1000};
		evtimer_add(a->a_sweep_ev, &tv);
	}
	a->a_stuck_ev = event_new(loop_base(a->a_loop), -1, EV_PERSIST, stuck_timer, a);
	if (a->a_stuck_ev) {
		struct timeval tv = {.tv_sec = MSSP_AE_STUCK_SCAN_MS / 1000, .tv_usec = 0};
		evtimer_add(a->a_stuck_ev, &tv);
	}
}

struct recover_ctx {
	struct ae *rc_ae;
	struct store *rc_st;
	size_t rc_n;
};

static int
recover_cb(void *arg, const struct store_tx *tx)
{
	struct recover_ctx *rc = arg;
	struct ae *a = rc->rc_ae;
	int64_t left = tx->tx_deadline_ms - wall_ms();
	if (left > 0 && !store_state_final(tx->tx_state))
		timer_set(a, tx->tx_id, left);
	if (tx->tx_peer[0])
		roamed_recover(a, rc->rc_st, tx);
	else
		home_recover(a->a_home, rc->rc_st, tx);
	rc->rc_n++;
	return 0;
}

static void
recover_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct recover_ctx rc = {.rc_ae = arg, .rc_st = nw->nw_store};
	struct store_err se;
	if (store_tx_recover_scan(nw->nw_store, recover_cb, &rc, NULL, &se) != 0) {
		LOG_EV("recovery.failed", "detail", se.detail);
	} else if (rc.rc_n) {
		char n[24];
		snprintf(n, sizeof n, "%zu", rc.rc_n);
		LOG_EV("recovery.resumed", "open_transactions", n);
	}
}

int
ae_start(struct ae *a, char *err, size_t errlen)
{
	if (loop_start(a->a_loop) != 0 || loop_call(a->a_loop, ae_loop_init, a) != 0) {
		snprintf(err, errlen, "cannot start the AE loop");
		return -1;
	}
	if (pool_submit(a->a_pool, recover_job, a) != 0) {
		snprintf(err, errlen, "cannot start recovery");
		return -1;
	}
	return 0;
}

static void
ae_loop_fini(void *arg)
{
	struct ae *a = arg;
	if (a->a_sweep_ev) {
		event_free(a->a_sweep_ev);
		a->a_sweep_ev = NULL;
	}
	for (size_t b = 0; b < TIMER_BUCKETS; b++)
		while (a->a_timers[b])
			timer_unlink(a, a->a_timers[b]);
	if (a->a_stuck_ev) {
		event_free(a->a_stuck_ev);
		a->a_stuck_ev = NULL;
	}
	if (a->a_httpc) {
		httpc_free(a->a_httpc); /* pending notifications end ("shutdown") */
		a->a_httpc = NULL;
	}
	roam_stop_on_loop(a->a_roam); /* calls in flight end with 780 */
	while (a->a_notifies) /* those waiting for a retry */
		notify_free(a->a_notifies);
}

void
ae_stop(struct ae *a)
{
	if (!a || atomic_exchange(&a->a_stopping, true))
		return;
	if (a->a_loop && loop_call(a->a_loop, ae_loop_fini, a) == 0)
		loop_stop(a->a_loop);
}

void
ae_free(struct ae *a)
{
	if (!a)
		return;
	ae_stop(a);
	loop_free(a->a_loop);
	roam_free(a->a_roam);
	for (size_t b = 0; b < WAIT_BUCKETS; b++) {
		struct waiter *w = a->a_wait[b];
		while (w) {
			struct waiter *n = w->w_next;
			free(w);
			w = n;
		}
	}
	for (size_t b = 0; b < RATE_BUCKETS; b++) {
		struct rate *r = a->a_rates[b];
		while (r) {
			struct rate *n = r->r_next;
			free(r);
			r = n;
		}
	}
	pthread_mutex_destroy(&a->a_wlock);
	pthread_mutex_destroy(&a->a_rlock);
	free(a->a_cert_b64);
	X509_NAME_free(a->a_cert_issuer);
	rest_free(a->a_rest);
	free(a);
}
