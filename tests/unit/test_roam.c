/*
 * test_roam.c - roles/roam: the RoamingHeader a message gets, the checks
 * an incoming one must pass, and calls to a peer (a real HTTP server on
 * loopback answering as a peer MSSP would: a response, a fault, garbage,
 * nothing; the circuit breaker and a suspended peer).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mss/msg.h"
#include "mss/soap.h"
#include "mss/status.h"
#include "net/loop.h"
#include "net/server.h"
#include "roles/roam.h"
#include "util/buf.h"
#include "util/limits.h"

#define SELF "http://mssp-a.test/"
#define PEER "http://mssp-b.test/"

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct srv *srv;
	struct loop *loop;
	uint16_t port;
	unsigned hits;
	struct roam *r;
	/* the last answer */
	unsigned ndone;
	int status;
	char detail[128];
	enum mss_msg_type type;
	bool on_loop;
	char sent_profile[128];
	unsigned sent_hops;
} T;

/* ---- a peer MSSP --------------------------------------------------------- */

static char *
canned(const char *what)
{
	struct mss_err e;
	struct mss_buf b;
	memset(&e, 0, sizeof e);
	mss_buf_init(&b, 1 << 16);
	if (strcmp(what, "fault") == 0) {
		struct mss_fault f;
		mss_err_set(&e, MSS_USER_CANCEL, 0, "User cancelled");
		mss_fault_from_err(&e, &f);
		mss_soap_encode_fault(&f, MSS_SOAP_12, &b);
	} else {
		struct mss_msg *m = mss_msg_new(MSS_SIGNATURE_RESP);
		struct mss_signature_resp *r = m->u.sig_resp;
		r->c.major_version = mss_msg_strdup(m, "1");
		r->c.minor_version = mss_msg_strdup(m, "1");
		r->c.ap_info = mss_msg_alloc(m, sizeof *r->c.ap_info);
		r->c.ap_info->ap_id = mss_msg_strdup(m, "http://ap.test/");
		r->c.ap_info->ap_trans_id = mss_msg_strdup(m, "A1");
		r->c.ap_info->instant = mss_msg_strdup(m, "2026-11-23T10:00:00Z");
		r->c.ap_info->ap_pwd = mss_msg_strdup(m, "");
		r->c.mssp_info = mss_msg_alloc(m, sizeof *r->c.mssp_info);
		r->c.mssp_info->mssp_id = mss_msg_alloc(m, sizeof *r->c.mssp_info->mssp_id);
		r->c.mssp_info->mssp_id->uri = mss_msg_strdup(m, PEER);
		r->c.mssp_info->instant = mss_msg_strdup(m, "2026-11-23T10:00:01Z");
		r->mssp_trans_id = mss_msg_strdup(m, "Tpeer1");
		r->mobile_user = mss_msg_alloc(m, sizeof *r->mobile_user);
		r->mobile_user->msisdn = mss_msg_strdup(m, "+358480000001");
		r->signature = mss_msg_alloc(m, sizeof *r->signature);
		r->signature->base64_signature = mss_msg_strdup(m, "MIIB");
		r->signature_profile = mss_msg_strdup(m, "mss:opB:sign:loa3:app");
		r->status = mss_msg_alloc(m, sizeof *r->status);
		r->status->code = mss_msg_alloc(m, sizeof *r->status->code);
		r->status->code->value = mss_msg_strdup(m, "500");
		r->status->message = mss_msg_strdup(m, "SIGNATURE");
		if (mss_soap_encode(m, MSS_SOAP_12, &b, &e) != 0)
			fprintf(stderr, "canned: %s\n", e.detail);
		mss_msg_free(m);
	}
	size_t n;
	return mss_buf_take(&b, &n);
}

static void
peer_handler(struct srv_req *req, void *arg)
{
	(void)arg;
	const char *path = srv_req_path(req);
	size_t blen;
	const char *body = (const char *)srv_req_body(req, &blen);
	pthread_mutex_lock(&T.mu);
	T.hits++;
	pthread_mutex_unlock(&T.mu);
	/* what the peer got: the header and the profile it sees */
	struct mss_err e;
	memset(&e, 0, sizeof e);
	struct mss_msg *in = mss_soap_decode(body, blen, MSS_SOAP_ROAMING, &e);
	if (in) {
		pthread_mutex_lock(&T.mu);
		T.sent_hops = in->roam ? (unsigned)in->roam->n : 0;
		if (in->type == MSS_SIGNATURE_REQ && in->u.sig_req->signature_profile)
			snprintf(T.sent_profile, sizeof T.sent_profile, "%s",
				 in->u.sig_req->signature_profile);
		pthread_mutex_unlock(&T.mu);
		mss_msg_free(in);
	}
	if (strcmp(path, "/slow") == 0) {
		(void)srv_req_park(req, 5000); /* never answered: the caller's timeout */
		return;
	}
	if (strcmp(path, "/garbage") == 0) {
		srv_reply(req, 200, "application/soap+xml", "<not-soap/>", 11);
		return;
	}
	if (strcmp(path, "/html") == 0) {
		srv_reply(req, 502, "text/html", "<h1>bad gateway</h1>", 20);
		return;
	}
	char *doc = canned(strcmp(path, "/fault") == 0 ? "fault" : "sig");
	srv_reply(req, strcmp(path, "/fault") == 0 ? 500 : 200,
		  "application/soap+xml; charset=utf-8", doc, strlen(doc));
	free(doc);
}

static void
peer_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	(void)arg;
	(void)why;
	srv_reply(req, 503, "text/plain", "x", 1);
}

/* ---- helpers ------------------------------------------------------------- */

static void
done_cb(void *arg, struct roam_answer *ans)
{
	(void)arg;
	pthread_mutex_lock(&T.mu);
	T.ndone++;
	T.status = ans->ra_status;
	snprintf(T.detail, sizeof T.detail, "%s", ans->ra_detail);
	T.type = ans->ra_msg ? ans->ra_msg->type : (enum mss_msg_type)-1;
	T.on_loop = loop_in_thread(T.loop);
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mu);
	mss_msg_free(ans->ra_msg);
}

static bool
wait_done(unsigned n, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;
	bool ok;
	pthread_mutex_lock(&T.mu);
	while (T.ndone < n && loop_now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&T.cv, &T.mu, &ts);
	}
	ok = T.ndone >= n;
	pthread_mutex_unlock(&T.mu);
	return ok;
}

static unsigned
hits(void)
{
	pthread_mutex_lock(&T.mu);
	unsigned h = T.hits;
	pthread_mutex_unlock(&T.mu);
	return h;
}

static struct mesh_map the_map = {.local = "mss:opA:sign:loa3:app",
				  .peer = "mss:opB:sign:loa3:app"};

static void
peer_at(struct mesh_peer *p, char *url, size_t cap, uint16_t port)
{
	memset(p, 0, sizeof *p);
	snprintf(url, cap, "http://127.0.0.1:%u", port);
	p->id = PEER;
	p->name = "Operator B";
	p->url = url;
	p->ca_file = "";
	p->nfps = 1;
	p->all_profiles = true;
	p->map = &the_map;
	p->nmap = 1;
}

static struct mss_msg *
sig_req(void)
{
	struct mss_msg *m = mss_msg_new(MSS_SIGNATURE_REQ);
	struct mss_signature_req *rq = m->u.sig_req;
	rq->c.major_version = mss_msg_strdup(m, "1");
	rq->c.minor_version = mss_msg_strdup(m, "1");
	rq->c.ap_info = mss_msg_alloc(m, sizeof *rq->c.ap_info);
	rq->c.ap_info->ap_id = mss_msg_strdup(m, "http://ap.test/");
	rq->c.ap_info->ap_trans_id = mss_msg_strdup(m, "A1");
	rq->c.ap_info->instant = mss_msg_strdup(m, "2026-11-23T10:00:00Z");
	rq->c.ap_info->ap_pwd = mss_msg_strdup(m, "");
	rq->messaging_mode = mss_msg_strdup(m, "synch");
	rq->timeout = mss_msg_strdup(m, "80");
	rq->mobile_user = mss_msg_alloc(m, sizeof *rq->mobile_user);
	rq->mobile_user->msisdn = mss_msg_strdup(m, "+358480000001");
	rq->dtbs = mss_msg_alloc(m, sizeof *rq->dtbs);
	rq->dtbs->mime_type = mss_msg_strdup(m, "text/plain");
	rq->dtbs->encoding = mss_msg_strdup(m, "UTF-8");
	rq->dtbs->data = mss_msg_strdup(m, "Sign this");
	rq->signature_profile = mss_msg_strdup(m, "mss:opA:sign:loa3:app");
	return m;
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_stamp_request(void **state)
{
	(void)state;
	struct mesh_peer p;
	char url[64];
	peer_at(&p, url, sizeof url, 1);
	struct mss_msg *m = sig_req();
	assert_int_equal(roam_stamp(T.r, m, NULL, &p, p.id, "Tours1", 75, MSS_MESH_ROLE_AE), 0);
	assert_non_null(m->roam);
	assert_int_equal(m->roam->n, 1);
	const struct mss_roam_entry *e = &m->roam->entry[0];
	assert_string_equal(e->sender_id, SELF);
	assert_string_equal(e->re_trans_id, "Tours1");
	assert_int_equal(e->timeout_s, 75);
	assert_int_equal(e->role, MSS_MESH_ROLE_AE);
	assert_int_equal(e->major, 1);
	assert_non_null(e->instant);
	assert_string_equal(m->roam->home_mssp, PEER);
	/* addressed to the peer, in the peer's names, with the budget left */
	assert_string_equal(m->u.sig_req->c.mssp_info->mssp_id->uri, PEER);
	assert_string_equal(m->u.sig_req->signature_profile, "mss:opB:sign:loa3:app");
	assert_string_equal(m->u.sig_req->timeout, "75");
	assert_string_equal(roam_own_trans_id(T.r, m->roam), "Tours1");
	assert_int_equal(roam_hdr_timeout(m->roam), 75);

	/* a transit hop keeps the history and appends */
	struct mss_msg *m2 = sig_req();
	assert_int_equal(roam_stamp(T.r, m2, m->roam, &p, p.id, "Tours2", 60,
				    MSS_MESH_ROLE_TRANSIT),
			 0);
	assert_int_equal(m2->roam->n, 2);
	assert_string_equal(m2->roam->entry[0].re_trans_id, "Tours1");
	assert_string_equal(m2->roam->entry[1].re_trans_id, "Tours2");
	assert_int_equal(m2->roam->entry[1].role, MSS_MESH_ROLE_TRANSIT);
	mss_msg_free(m2);

	/* a full history cannot take our entry */
	struct mss_roam_hdr full = *m->roam;
	full.n = MSSP_MESH_MAX_HOPS;
	for (size_t i = 1; i < full.n; i++)
		full.entry[i] = full.entry[0];
	struct mss_msg *m3 = sig_req();
	assert_int_equal(roam_stamp(T.r, m3, &full, &p, p.id, "T3", 60, MSS_MESH_ROLE_TRANSIT),
			 -1);
	mss_msg_free(m3);
	mss_msg_free(m);
}

static void
test_check_inbound(void **state)
{
	(void)state;
	struct mesh_peer p;
	char url[64];
	const char *why = NULL;
	peer_at(&p, url, sizeof url, 1);
	struct mss_msg *m = sig_req();
	/* no header */
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 701);
	assert_non_null(why);

	struct mss_roam_hdr *h = mss_msg_alloc(m, sizeof *h);
	h->n = 1;
	h->entry[0] = (struct mss_roam_entry){.major = 1, .minor = 1,
					      .instant = "2026-11-23T10:00:00Z",
					      .re_trans_id = "Tb1", .timeout_s = 60,
					      .sender_id = PEER, .role = MSS_MESH_ROLE_AE};
	h->home_mssp = SELF;
	m->roam = h;
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 0);

	/* the last entry names someone else than the TLS peer */
	h->entry[0].sender_id = "http://mssp-c.test/";
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), MSS_UNAUTHORIZED_ACCESS);
	h->entry[0].sender_id = PEER;

	/* we are in the history already */
	h->n = 2;
	h->entry[1] = h->entry[0];
	h->entry[0].sender_id = SELF;
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 780);
	/* ... unless it is an answer coming back: then our entry must be there */
	assert_int_equal(roam_check_inbound(T.r, m, &p, true, &why), 0);
	h->entry[0].sender_id = "http://mssp-c.test/";
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 0);
	assert_int_equal(roam_check_inbound(T.r, m, &p, true, &why), MSS_WRONG_PARAM);

	/* too many hops */
	h->n = MSSP_MESH_MAX_HOPS;
	for (size_t i = 0; i < h->n; i++)
		h->entry[i] = h->entry[1];
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 780);
	h->n = 1;

	/* routed to another MSSP than us: 780 (an answer coming back names
	 * its sender there, so it is not checked) */
	h->home_mssp = PEER;
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 780);
	h->home_mssp = SELF;

	/* no HomeMSSP: 703; no RE_TransactionID: 710 */
	h->home_mssp = NULL;
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 703);
	h->home_mssp = SELF;
	h->entry[0].re_trans_id = "";
	assert_int_equal(roam_check_inbound(T.r, m, &p, false, &why), 710);
	mss_msg_free(m);
}

struct send_args {
	const struct mesh_peer *p;
	const char *path;
	unsigned timeout_ms;
};

static int
send_one(const struct mesh_peer *p, const char *path, unsigned timeout_ms)
{
	struct mss_msg *m = sig_req();
	assert_int_equal(roam_stamp(T.r, m, NULL, p, p->id, "Tsend", 60, MSS_MESH_ROLE_AE), 0);
	int rc = roam_send(T.r, p, path, m, MSS_SIGNATURE_RESP, timeout_ms, done_cb, NULL);
	mss_msg_free(m); /* encoded by roam_send: ours to free at once */
	return rc;
}

static void
test_send_outcomes(void **state)
{
	(void)state;
	struct mesh_peer p;
	char url[64];
	peer_at(&p, url, sizeof url, T.port);
	unsigned n = T.ndone;

	/* an answer of the expected type, on the loop thread; the peer saw
	 * one hop and its own profile name */
	assert_int_equal(send_one(&p, "/sig", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 0);
	assert_int_equal(T.type, MSS_SIGNATURE_RESP);
	assert_true(T.on_loop);
	assert_int_equal(T.sent_hops, 1);
	assert_string_equal(T.sent_profile, "mss:opB:sign:loa3:app");

	/* a fault: its code */
	assert_int_equal(send_one(&p, "/fault", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, MSS_USER_CANCEL);

	/* garbage, a non-SOAP error page, no answer in time: 780 */
	assert_int_equal(send_one(&p, "/garbage", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 780);
	assert_int_equal(send_one(&p, "/html", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 780);
	assert_int_equal(send_one(&p, "/slow", 300), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 780);
	assert_non_null(strstr(T.detail, "in time"));

	/* a suspended peer is never called */
	unsigned h = hits();
	p.suspended = true;
	assert_int_equal(send_one(&p, "/sig", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 780);
	assert_int_equal(hits(), h);
}

static void
test_breaker(void **state)
{
	(void)state;
	/* a peer that is down: after MSSP_MESH_BREAKER_FAILS failures in a
	 * row the circuit opens and calls fail at once, without a connect */
	struct mesh_peer p;
	char url[64];
	peer_at(&p, url, sizeof url, 1); /* nothing listens on port 1 */
	p.id = "http://mssp-down.test/";
	unsigned n = T.ndone;
	for (int i = 0; i < MSSP_MESH_BREAKER_FAILS; i++) {
		assert_int_equal(send_one(&p, "/sig", 2000), 0);
		assert_true(wait_done(++n, 5000));
		assert_int_equal(T.status, 780);
		assert_string_equal(T.detail, "Peer MSSP unavailable");
	}
	uint64_t t0 = loop_now_ms();
	assert_int_equal(send_one(&p, "/sig", 2000), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 780);
	assert_true(loop_now_ms() - t0 < 1000);
	/* another peer is not affected */
	struct mesh_peer ok;
	char url2[64];
	peer_at(&ok, url2, sizeof url2, T.port);
	assert_int_equal(send_one(&ok, "/sig", 0), 0);
	assert_true(wait_done(++n, 5000));
	assert_int_equal(T.status, 0);
}

/* ---- setup ------------------------------------------------------------------ */

static int
group_setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.mu, NULL);
	pthread_cond_init(&T.cv, NULL);
	mss_soap_init();
	struct srv_conf c;
	struct net_err e;
	memset(&c, 0, sizeof c);
	c.sc_workers = 2;
	c.sc_nlisteners = 1;
	c.sc_listeners[0].sl_name = "peer";
	c.sc_listeners[0].sl_addr = "127.0.0.1";
	c.sc_listeners[0].sl_handler = peer_handler;
	c.sc_listeners[0].sl_cancel = peer_cancel;
	T.srv = srv_new(&c, &e);
	if (!T.srv || srv_start(T.srv, &e) != 0) {
		fprintf(stderr, "server: %s\n", e.ne_detail);
		return -1;
	}
	T.port = srv_listener_port(T.srv, 0);
	T.loop = loop_new();
	if (!T.loop || loop_start(T.loop) != 0)
		return -1;
	char err[128];
	struct roam_conf rc = {.rc_self_id = SELF, .rc_loop = T.loop, .rc_allow_plain = true};
	T.r = roam_new(&rc, err, sizeof err);
	return T.r ? 0 : -1;
}

static void
stop_on_loop(void *arg)
{
	roam_stop_on_loop(arg);
}

static int
group_teardown(void **state)
{
	(void)state;
	(void)loop_call(T.loop, stop_on_loop, T.r);
	usleep(100 * 1000);
	loop_free(T.loop);
	roam_free(T.r);
	srv_free(T.srv);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stamp_request),
		cmocka_unit_test(test_check_inbound),
		cmocka_unit_test(test_send_outcomes),
		cmocka_unit_test(test_breaker),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
