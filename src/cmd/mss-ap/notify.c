/*
 * notify.c - the AP's MSS_Notification endpoint for asynchServerServer
 * (protocol.md §4): the MSSP POSTs a SOAP envelope
 * <MSS_Notification><mss:MSS_StatusResp MSSP_TransID=...>, mutual TLS with
 * its server certificate as client certificate; we answer HTTP 200 with
 * <MSS_NotificationResponse><mss:MSS_ReceiptReq> (the codec picks that
 * wrapper for a ReceiptReq of operation MSS_OP_NOTIFICATION).
 *
 * One net/server listener with one worker thread.  The handler runs there
 * and hands the decoded notification to the main thread, which is blocked
 * in ap_notify_wait (mutex + condition variable on CLOCK_MONOTONIC).  Only
 * a notification about our transaction is accepted: same AP_TransID (the
 * response echoes the request's AP_Info) or the MSSP_TransID the AE gave;
 * anything else is answered with fault 101 and otherwise ignored.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/mss-ap/ap.h"
#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"
#include "net/server.h"
#include "net/tls.h"

struct ap_notify {
	const struct ap_conf *n_conf;
	struct srv *n_srv;
	bool n_verbose;
	char n_ap_trans_id[AP_TRANSID_ARG_MAX + 1];
	pthread_mutex_t n_mu;
	pthread_cond_t n_cv;
	char n_mssp_trans_id[MSSP_MSG_MAX_TRANSID + 1]; /* under n_mu */
	struct mss_msg *n_msg;				/* under n_mu */
	bool n_delivered;				/* under n_mu */
	bool n_answered;				/* under n_mu */
};

static const char *
media_type(enum mss_soap_version v)
{
	if (v == MSS_SOAP_11)
		return "text/xml; charset=utf-8";
	if (v == MSS_SOAP_NONE)
		return "application/json";
	return "application/soap+xml; charset=utf-8";
}

static void
reply_fault(struct srv_req *req, enum mss_soap_version v, const struct mss_err *e)
{
	struct srv_response rs;
	struct mss_fault f;
	struct mss_buf out;
	int rc;

	mss_fault_from_err(e, &f);
	mss_buf_init(&out, MSSP_AP_MAX_RESPONSE);
	rc = v == MSS_SOAP_NONE ? mss_json_encode_fault(&f, &out) : mss_soap_encode_fault(&f, v, &out);
	memset(&rs, 0, sizeof(rs));
	rs.rs_status = rc == 0 ? f.http_status : 500;
	rs.rs_content_type = media_type(v);
	rs.rs_body = mss_buf_str(&out);
	rs.rs_body_len = mss_buf_len(&out);
	rs.rs_close = true;
	if (srv_reply_ex(req, &rs) != 0)
		srv_reply(req, 500, NULL, NULL, 0);
	mss_buf_free(&out);
}

static void
on_request(struct srv_req *req, void *arg)
{
	struct ap_notify *n = arg;
	const struct mss_status_resp *sr;
	enum mss_soap_version v = MSS_SOAP_12;
	struct mss_msg *m = NULL, *rcpt = NULL;
	struct srv_response rs;
	struct mss_err err;
	struct mss_buf out;
	const char *path = srv_req_path(req), *apt;
	char mssp_id[MSSP_MSG_MAX_TRANSID + 1];
	const uint8_t *body;
	size_t len;
	bool ours;
	int rc;

	body = srv_req_body(req, &len);
	if (strcmp(srv_req_method(req), "POST") != 0) {
		srv_reply(req, 405, "text/plain", "POST only\n", 10);
		return;
	}
	if (strncmp(path, "/notify", 7) != 0 || (path[7] != '\0' && path[7] != '?')) {
		srv_reply(req, 404, "text/plain", "not found\n", 10);
		return;
	}
	if (n->n_verbose) {
		char *red = ap_redact((const char *)body, len);

		fprintf(stderr, "notification from %s:\n%s\n", srv_req_peer_ip(req), red ? red : "");
		free(red);
	}
	if ((m = ap_decode_any((const char *)body, len, &err)) == NULL) {
		reply_fault(req, v, &err);
		return;
	}
	v = m->soap;
	if (m->type != MSS_STATUS_RESP) {
		mss_err_set(&err, MSS_WRONG_PARAM, 0, "Not a notification");
		goto fault;
	}
	if (mss_validate(m, &err) != 0)
		goto fault;
	sr = m->u.status_resp;
	apt = sr->c.ap_info ? sr->c.ap_info->ap_trans_id : NULL;
	pthread_mutex_lock(&n->n_mu);
	ours = (apt != NULL && strcmp(apt, n->n_ap_trans_id) == 0) ||
	       (sr->mssp_trans_id != NULL && n->n_mssp_trans_id[0] != '\0' &&
		strcmp(sr->mssp_trans_id, n->n_mssp_trans_id) == 0);
	snprintf(mssp_id, sizeof(mssp_id), "%s",
		 sr->mssp_trans_id ? sr->mssp_trans_id : n->n_mssp_trans_id);
	pthread_mutex_unlock(&n->n_mu);
	if (!ours) {
		mss_err_set(&err, MSS_WRONG_PARAM, 0, "Unknown transaction");
		goto fault;
	}
	if (mssp_id[0] == '\0') {
		mss_err_set(&err, MSS_MISSING_PARAM, 0, "Missing MSSP_TransID");
		goto fault;
	}
	rcpt = ap_build_receipt(n->n_conf, n->n_ap_trans_id, mssp_id,
				sr->mobile_user ? sr->mobile_user->msisdn : NULL, NULL, &err);
	if (rcpt == NULL)
		goto fault;
	rcpt->op = MSS_OP_NOTIFICATION;
	mss_buf_init(&out, MSSP_AP_MAX_REQUEST);
	rc = v == MSS_SOAP_NONE ? mss_json_encode(rcpt, &out, &err) : mss_soap_encode(rcpt, v, &out, &err);
	mss_msg_free(rcpt);
	if (rc != 0) {
		mss_buf_free(&out);
		goto fault;
	}
	memset(&rs, 0, sizeof(rs));
	rs.rs_status = 200;
	rs.rs_content_type = media_type(v);
	rs.rs_body = mss_buf_str(&out);
	rs.rs_body_len = mss_buf_len(&out);
	/* Close after the answer: ap_notify_free waits for the connection to
	 * be gone, which tells that the receipt has left. */
	rs.rs_close = true;
	rc = srv_reply_ex(req, &rs);
	if (n->n_verbose)
		fprintf(stderr, "notification answered (%s): HTTP 200\n%s", rc == 0 ? "sent" : "FAILED",
			mss_buf_str(&out));
	mss_buf_free(&out);
	if (rc != 0) {
		srv_reply(req, 500, NULL, NULL, 0);
		mss_msg_free(m);
		return;
	}
	/* A retry of a notification already delivered is answered again
	 * (our receipt may have been lost) but not delivered twice. */
	pthread_mutex_lock(&n->n_mu);
	n->n_answered = true;
	if (!n->n_delivered && n->n_msg == NULL) {
		n->n_msg = m;
		m = NULL;
		pthread_cond_signal(&n->n_cv);
	}
	pthread_mutex_unlock(&n->n_mu);
	mss_msg_free(m);
	return;
fault:
	if (n->n_verbose)
		fprintf(stderr, "notification refused: %d %s\n", err.code, err.detail);
	mss_msg_free(m);
	reply_fault(req, v, &err);
}

static void
on_log(void *arg, const char *event, const char *peer, const char *detail)
{
	(void)arg;
	fprintf(stderr, "notify listener: %s %s %s\n", event, peer, detail ? detail : "");
}

struct ap_notify *
ap_notify_start(const struct ap_conf *c, const char *ap_trans_id, bool verbose, char *url,
		size_t urllen, char *err, size_t errlen)
{
	struct tls_server_conf tc;
	struct srv_conf sc;
	struct net_err ne;
	struct ap_notify *n;
	pthread_condattr_t ca;
	const char *host = c->ac_notify_listen;
	SSL_CTX *ctx;
	uint16_t port;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->n_conf = c;
	n->n_verbose = verbose;
	snprintf(n->n_ap_trans_id, sizeof(n->n_ap_trans_id), "%s", ap_trans_id);
	pthread_mutex_init(&n->n_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->n_cv, &ca);
	pthread_condattr_destroy(&ca);

	memset(&tc, 0, sizeof(tc));
	tc.ts_cert_file = c->ac_cert;
	tc.ts_key_file = c->ac_key;
	tc.ts_client_ca_file = c->ac_ca; /* the MSSP's client certificate */
	if ((ctx = tls_server_ctx_new(&tc, &ne)) == NULL) {
		snprintf(err, errlen, "notification listener TLS: %s", ne.ne_detail);
		goto fail;
	}
	memset(&sc, 0, sizeof(sc));
	sc.sc_workers = 1;
	sc.sc_log = verbose ? on_log : NULL;
	sc.sc_nlisteners = 1;
	sc.sc_listeners[0].sl_name = "notify";
	sc.sc_listeners[0].sl_addr = host;
	sc.sc_listeners[0].sl_port = (uint16_t)c->ac_notify_port;
	sc.sc_listeners[0].sl_tls = ctx;
	sc.sc_listeners[0].sl_handler = on_request;
	sc.sc_listeners[0].sl_arg = n;
	n->n_srv = srv_new(&sc, &ne);
	SSL_CTX_free(ctx); /* the listener holds its own reference */
	if (n->n_srv == NULL || srv_start(n->n_srv, &ne) != 0) {
		snprintf(err, errlen, "notification listener on %s:%u: %s", host, c->ac_notify_port,
			 ne.ne_detail);
		goto fail;
	}
	port = srv_listener_port(n->n_srv, 0);
	/* A wildcard address is not a place to send to: loopback instead. */
	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	if (strchr(host, ':') != NULL)
		snprintf(url, urllen, "https://[%s]:%u/notify", host, (unsigned)port);
	else
		snprintf(url, urllen, "https://%s:%u/notify", host, (unsigned)port);
	return n;
fail:
	ap_notify_free(n);
	return NULL;
}

void
ap_notify_set_mssp_trans_id(struct ap_notify *n, const char *mssp_trans_id)
{
	pthread_mutex_lock(&n->n_mu);
	snprintf(n->n_mssp_trans_id, sizeof(n->n_mssp_trans_id), "%s",
		 mssp_trans_id ? mssp_trans_id : "");
	pthread_mutex_unlock(&n->n_mu);
}

struct mss_msg *
ap_notify_wait(struct ap_notify *n, unsigned timeout_ms)
{
	struct timespec dl;
	struct mss_msg *m;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&n->n_mu);
	while (n->n_msg == NULL)
		if (pthread_cond_timedwait(&n->n_cv, &n->n_mu, &dl) != 0 && n->n_msg == NULL)
			break;
	m = n->n_msg;
	n->n_msg = NULL;
	if (m != NULL)
		n->n_delivered = true;
	pthread_mutex_unlock(&n->n_mu);
	return m;
}

void
ap_notify_free(struct ap_notify *n)
{
	struct srv_stats st;
	struct timespec ts = { 0, 20 * 1000000L };
	unsigned waited = 0;
	bool answered;

	if (n == NULL)
		return;
	pthread_mutex_lock(&n->n_mu);
	answered = n->n_answered;
	pthread_mutex_unlock(&n->n_mu);
	/* srv_stop closes connections at once; give the receipt answer (sent
	 * with Connection: close) the time to leave first. */
	while (answered && n->n_srv != NULL && waited < MSSP_AP_NOTIFY_FLUSH_MS) {
		srv_get_stats(n->n_srv, &st);
		if (st.st_conns_open == 0)
			break;
		nanosleep(&ts, NULL);
		waited += 20;
	}
	srv_free(n->n_srv);
	mss_msg_free(n->n_msg);
	pthread_cond_destroy(&n->n_cv);
	pthread_mutex_destroy(&n->n_mu);
	free(n);
}
