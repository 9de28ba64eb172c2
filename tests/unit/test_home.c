/* test_home.c - HomeMSSP's pure parts: what the user is shown (P-02), the
 * DTBS bytes the device signs, the MSISDN form of the store, the app
 * message of a registration job; and the registration job path with real
 * parts (delivery to a connected phone, job answers acknowledged only
 * after reg recorded them).  The prompt/answer/verification path runs in
 * tests/integration. */
#include "testutil.h"
#include "testdir.h"
#include "testtls.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "mss/appmsg.h"
#include "mss/msg.h"
#include "net/loop.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/ws.h"
#include "pki/e2e.h"
#include "pki/keycheck.h"
#include "roles/afe.h"
#include "roles/home.h"
#include "roles/node.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/pool.h"

static struct mss_msg *
req_with(const char *dtbs, const char *dtbs_enc, const char *dtbs_mime, const char *dtbd,
	 const char *dtbd_enc)
{
	struct mss_msg *m = mss_msg_new(MSS_SIGNATURE_REQ);
	assert_non_null(m);
	struct mss_signature_req *r = m->u.sig_req;
	r->dtbs = mss_msg_alloc(m, sizeof *r->dtbs);
	r->dtbs->data = mss_msg_strdup(m, dtbs);
	r->dtbs->encoding = mss_msg_strdup(m, dtbs_enc);
	r->dtbs->mime_type = mss_msg_strdup(m, dtbs_mime);
	if (dtbd) {
		r->dtbd = mss_msg_alloc(m, sizeof *r->dtbd);
		r->dtbd->data = mss_msg_strdup(m, dtbd);
		r->dtbd->encoding = mss_msg_strdup(m, dtbd_enc);
	}
	return m;
}

static void
expect_shown(struct mss_msg *m, const char *want)
{
	char *t = NULL;
	struct mss_err e = {0};
	assert_int_equal(home_display_text(m->u.sig_req, &t, &e), 0);
	assert_string_equal(t, want);
	free(t);
	mss_msg_free(m);
}

static void
expect_refused(struct mss_msg *m, int code)
{
	char *t = NULL;
	struct mss_err e = {0};
	assert_int_equal(home_display_text(m->u.sig_req, &t, &e), -1);
	assert_null(t);
	assert_int_equal(e.code, code);
	mss_msg_free(m);
}

static void
test_display_text(void **state)
{
	(void)state;
	/* DTBD wins; base64 DTBD is shown decoded */
	expect_shown(req_with("x", "UTF-8", "text/plain", "Log in?", NULL), "Log in?");
	expect_shown(req_with("x", "UTF-8", "text/plain", "TG9nIGluPw==", "base64"), "Log in?");
	/* no DTBD: text DTBS shown as it is, base64 text decoded */
	expect_shown(req_with("Pay 10 EUR", "UTF-8", "text/plain", NULL, NULL), "Pay 10 EUR");
	expect_shown(req_with("UGF5IDEwIEVVUg==", "base64", "text/plain", NULL, NULL),
		     "Pay 10 EUR");
	expect_shown(req_with("Pay", "UTF-8", NULL, NULL, NULL), "Pay");
	/* nothing showable: a hash or binary DTBS needs a DTBD (102/1021) */
	expect_refused(req_with("3q2+7w==", "base64", "application/x-sha256", NULL, NULL), 102);
	expect_refused(req_with("3q2+7w==", "base64", "application/octet-stream", NULL, NULL),
		       102);
	/* base64 text that is not text (NUL, controls) is refused, not shown */
	expect_refused(req_with("AAEC", "base64", "text/plain", NULL, NULL), 102);
	expect_refused(req_with("bad!", "base64", "text/plain", "%%%", "base64"), 101);
}

static void
test_dtbs_bytes(void **state)
{
	(void)state;
	uint8_t *b;
	size_t n;
	struct mss_err e = {0};
	struct mss_msg *m = req_with("UGF5\nIDEw", "base64", "text/plain", NULL, NULL);
	/* white space inside base64 is allowed (the validator accepted it) */
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(b, "Pay 10", 6);
	free(b);
	mss_msg_free(m);
	m = req_with("Pay 10 EUR", "UTF-8", "text/plain", NULL, NULL);
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), 0);
	assert_int_equal(n, 10);
	free(b);
	mss_msg_free(m);
	m = req_with("abc", "base64", "text/plain", NULL, NULL);
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), -1);
	assert_int_equal(e.code, 101);
	mss_msg_free(m);
}

static void
test_msisdn_form(void **state)
{
	(void)state;
	char o[32];
	home_msisdn("35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
	home_msisdn("+35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
	home_msisdn("++35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
}


/* ======================================================================
 * Registration jobs: the app message of a job (pure), then the delivery
 * and answer path with real parts: a TLS server whose listener is the AFE,
 * HomeMSSP as the AFE's callbacks, a 2-thread pool on a real SQLite store,
 * a real struct reg with its audit log, and a phone (blocking TLS + ws.h
 * framing + pki/e2e.h session) that authenticates, opens the E2E session
 * from HomeMSSP's HELLO and reads/writes sealed app messages.
 * ====================================================================== */

static void
job_fill(struct reg_job *j, const char *id, const char *kind, int state)
{
	memset(j, 0, sizeof *j);
	snprintf(j->rj_id, sizeof j->rj_id, "%s", id);
	snprintf(j->rj_kind, sizeof j->rj_kind, "%s", kind);
	j->rj_state = state;
	snprintf(j->rj_msisdn, sizeof j->rj_msisdn, "+35847000001");
	snprintf(j->rj_device, sizeof j->rj_device, "dev-1");
	snprintf(j->rj_group, sizeof j->rj_group, "sign");
	snprintf(j->rj_purpose, sizeof j->rj_purpose, "sign");
	snprintf(j->rj_profiles[0], sizeof j->rj_profiles[0], "mss:demo:sign:loa3:app");
	snprintf(j->rj_profiles[1], sizeof j->rj_profiles[1], "mss:demo:sign:loa2:app");
	j->rj_nprofiles = 2;
	j->rj_pin = true;
	snprintf(j->rj_alg, sizeof j->rj_alg, "ec-p256");
}

/* Encode the job's message and decode it as the app does. */
static void
job_roundtrip(const struct reg_job *j, struct appmsg *m)
{
	char *txt = NULL;
	size_t len = 0;
	struct mss_err e = {0};
	assert_int_equal(home_job_message(j, &txt, &len, &e), 0);
	assert_non_null(txt);
	assert_int_equal(strlen(txt), len);
	memset(m, 0, sizeof *m);
	if (appmsg_decode((const uint8_t *)txt, len, m, &e) != 0)
		fail_msg("appmsg_decode: %d %s", e.code, txt);
	free(txt);
}

static void
test_job_message(void **state)
{
	(void)state;
	struct reg_job j;
	struct appmsg m;
	struct mss_err e = {0};
	char *txt = NULL;
	size_t len = 0;

	/* keygen (requested, and the same when re-sent) */
	for (int st = REG_JOB_REQUESTED; st <= REG_JOB_SENT; st++) {
		job_fill(&j, "J0123456789abcdef", "keygen", st);
		job_roundtrip(&j, &m);
		assert_int_equal(m.am_type, APPMSG_KEYGEN);
		assert_string_equal(m.am_job, "J0123456789abcdef");
		assert_string_equal(m.am_key, "sign");
		assert_string_equal(m.am_purpose, "sign");
		assert_int_equal(m.am_nprofiles, 2);
		assert_string_equal(m.am_profiles[0], "mss:demo:sign:loa3:app");
		assert_string_equal(m.am_profiles[1], "mss:demo:sign:loa2:app");
		assert_true(m.am_pin);
		assert_string_equal(m.am_alg, "ec-p256");
		appmsg_clear(&m);
	}
	j.rj_pin = false;
	job_roundtrip(&j, &m);
	assert_false(m.am_pin);
	appmsg_clear(&m);

	/* issued: the certificate and its chain, byte for byte */
	uint8_t cert[300], ca1[200], ca2[100];
	for (size_t i = 0; i < sizeof cert; i++)
		cert[i] = (uint8_t)(i * 13 + 7);
	memset(ca1, 0xa1, sizeof ca1);
	memset(ca2, 0x02, sizeof ca2);
	job_fill(&j, "J00000000000000ff", "keygen", REG_JOB_ISSUED);
	j.rj_cert = cert;
	j.rj_cert_len = sizeof cert;
	j.rj_chain[0] = ca1;
	j.rj_chain_len[0] = sizeof ca1;
	j.rj_chain[1] = ca2;
	j.rj_chain_len[1] = sizeof ca2;
	j.rj_nchain = 2;
	job_roundtrip(&j, &m);
	assert_int_equal(m.am_type, APPMSG_CERT);
	assert_string_equal(m.am_job, "J00000000000000ff");
	assert_string_equal(m.am_key, "sign");
	assert_int_equal(m.am_der_len, sizeof cert);
	assert_memory_equal(m.am_der, cert, sizeof cert);
	assert_int_equal(m.am_nchain, 2);
	assert_int_equal(m.am_chain_len[0], sizeof ca1);
	assert_memory_equal(m.am_chain[0], ca1, sizeof ca1);
	assert_int_equal(m.am_chain_len[1], sizeof ca2);
	assert_memory_equal(m.am_chain[1], ca2, sizeof ca2);
	appmsg_clear(&m);
	/* the job's buffers are borrowed, not taken */
	assert_int_equal(cert[1], (uint8_t)20);

	/* unblock: the job and the group only */
	job_fill(&j, "J0000000000000001", "unblock", REG_JOB_REQUESTED);
	job_roundtrip(&j, &m);
	assert_int_equal(m.am_type, APPMSG_UNBLOCK);
	assert_string_equal(m.am_job, "J0000000000000001");
	assert_string_equal(m.am_key, "sign");
	appmsg_clear(&m);

	/* refused: an issued job without certificate, an unknown kind */
	job_fill(&j, "J0000000000000002", "keygen", REG_JOB_ISSUED);
	assert_int_equal(home_job_message(&j, &txt, &len, &e), -1);
	assert_null(txt);
	assert_int_equal(e.code, 101);
	job_fill(&j, "J0000000000000003", "format", REG_JOB_REQUESTED);
	assert_int_equal(home_job_message(&j, &txt, &len, &e), -1);
	assert_null(txt);
}

/* ---- the job path -------------------------------------------------------- */

#define J_MSISDN "+35847000001"
#define J_DEV "dev-1"
#define J_DEV2 "dev-2"

static struct {
	char dir[256];
	char uri[300];
	SSL_CTX *server_ctx, *client_ctx;
	EVP_PKEY *dev_key;
	uint8_t chan[E2E_KEY_LEN];	/* J_DEV's channel key */
	struct pool *pool;
	struct audit *audit;
	struct reg *reg;
	struct home *home;
	struct afe *afe;
	struct srv *srv;
	uint16_t port;
} J;

static void *
j_pool_init(void *arg, unsigned idx)
{
	(void)arg;
	struct node_worker *nw = calloc(1, sizeof *nw);
	struct store_err err;
	if (!nw)
		return NULL;
	nw->nw_idx = idx;
	nw->nw_store = store_open(J.uri, 0, &err);
	if (!nw->nw_store) {
		free(nw);
		return NULL;
	}
	return nw;
}

static void
j_pool_fini(void *arg, void *ctx)
{
	(void)arg;
	struct node_worker *nw = ctx;
	store_close(nw->nw_store);
	free(nw);
}

static void
j_put_device(struct store *s, const char *id, const uint8_t key[E2E_KEY_LEN])
{
	struct store_device d;
	struct store_err err;
	unsigned char *der = NULL;
	size_t len = 0;
	struct pki_err perr;
	memset(&d, 0, sizeof d);
	snprintf(d.sd_device_id, sizeof d.sd_device_id, "%s", id);
	snprintf(d.sd_msisdn, sizeof d.sd_msisdn, "%s", J_MSISDN);
	assert_int_equal(e2e_spki_der(J.dev_key, &der, &len, &perr), 0);
	memcpy(d.sd_auth_spki, der, len);
	d.sd_auth_spki_len = len;
	OPENSSL_free(der);
	memcpy(d.sd_e2e_key, key, E2E_KEY_LEN);
	d.sd_state = 1;
	if (store_device_put(s, &d, (int64_t)time(NULL) * 1000, &err) != 0)
		fail_msg("device put: %d %s", err.status, err.detail);
}

static void
j_seed_profile(struct store *s, const char *name, const char *group, const char *purpose)
{
	struct reg_err e;
	json_t *p = json_pack("{s:s,s:s,s:[{s:s,s:s,s:[s],s:b,s:s,s:s}]}", "name", name,
			      "description", "test", "key_groups", "group", group, "purpose",
			      purpose, "profiles", "mss:demo:sign:loa3:app", "pin", 1, "alg",
			      "ec-p256", "cert_profile", purpose);
	assert_non_null(p);
	memset(&e, 0, sizeof e);
	if (reg_profile_seed(J.reg, s, true, p, (int64_t)time(NULL) * 1000, &e) != 0)
		fail_msg("reg_profile_seed: %d %s", e.status, e.msg);
	json_decref(p);
}

static struct reg_actor
j_ra(void)
{
	struct reg_actor who;
	memset(&who, 0, sizeof who);
	snprintf(who.ra_name, sizeof who.ra_name, "ra");
	who.ra_role = REG_ROLE_RA;
	memset(who.ra_fp, 0x5a, sizeof who.ra_fp);
	return who;
}

/* key.request for `device` under `profile`: the one job's id. */
static void
j_key_request(const char *profile, const char *device, char job[32])
{
	struct store_err serr;
	struct store *s = store_open(J.uri, 0, &serr);
	struct reg_actor who = j_ra();
	struct reg_request rq;
	struct reg_err e;
	json_t *out = NULL;
	assert_non_null(s);
	memset(&rq, 0, sizeof rq);
	rq.rq_op = REG_OP_KEY_REQUEST;
	rq.rq_arg = J_MSISDN;
	rq.rq_body = json_pack("{s:s,s:s}", "registration_profile", profile, "device", device);
	memset(&e, 0, sizeof e);
	int rc = reg_call(J.reg, s, &who, &rq, (int64_t)time(NULL) * 1000, &out, &e);
	if (rc < 0)
		fail_msg("key.request: %d %s", e.status, e.msg);
	json_decref(rq.rq_body);
	json_t *jobs = json_object_get(out, "jobs");
	assert_int_equal(json_array_size(jobs), 1);
	snprintf(job, 32, "%s", json_string_value(json_object_get(json_array_get(jobs, 0), "job")));
	assert_true(job[0] != '\0');
	json_decref(out);
	store_close(s);
}

/* The job's state name as job.get reports it. */
static void
j_job_state(const char *job, char out[32])
{
	struct store_err serr;
	struct store *s = store_open(J.uri, 0, &serr);
	struct reg_actor who = j_ra();
	struct reg_request rq;
	struct reg_err e;
	json_t *o = NULL;
	assert_non_null(s);
	memset(&rq, 0, sizeof rq);
	rq.rq_op = REG_OP_JOB_GET;
	rq.rq_arg = job;
	memset(&e, 0, sizeof e);
	if (reg_call(J.reg, s, &who, &rq, (int64_t)time(NULL) * 1000, &o, &e) < 0)
		fail_msg("job.get: %d %s", e.status, e.msg);
	snprintf(out, 32, "%s", json_string_value(json_object_get(o, "state")));
	json_decref(o);
	store_close(s);
}

static void s_setup(struct store *s);

/* Wait (up to 2 s) until the job is in state `want`. */
static void
j_wait_state(const char *job, const char *want)
{
	char st[32];
	for (int i = 0; i < 100; i++) {
		j_job_state(job, st);
		if (strcmp(st, want) == 0)
			return;
		usleep(20 * 1000);
	}
	assert_string_equal(st, want);
}

static int
j_setup(void **state)
{
	(void)state;
	struct store_err err;
	struct store_user u;
	struct reg_conf rc;
	struct reg_err re;
	char adir[300], ca[300], e[256];
	assert_int_equal(td_make(J.dir, sizeof J.dir, "test_home"), 0);
	snprintf(J.uri, sizeof J.uri, "sqlite:%s/t.db", J.dir);
	tt_make_server_pki(J.dir, "home test CA");
	J.server_ctx = tt_server_ctx(J.dir, "server", NULL, NULL);
	J.client_ctx = tt_client_ctx(J.dir, "ca.pem", NULL, true);
	J.dev_key = EVP_EC_gen("P-256");
	assert_non_null(J.dev_key);
	assert_int_equal(RAND_bytes(J.chan, sizeof J.chan), 1);

	struct store *s = store_open(J.uri, STORE_OPEN_CREATE, &err);
	if (!s)
		fail_msg("store_open: %s", err.detail);
	memset(&u, 0, sizeof u);
	snprintf(u.su_msisdn, sizeof u.su_msisdn, "%s", J_MSISDN);
	u.su_state = STORE_USER_ACTIVE;
	assert_int_equal(store_user_put(s, &u, (int64_t)time(NULL) * 1000, &err), 0);
	j_put_device(s, J_DEV, J.chan);
	uint8_t other[E2E_KEY_LEN];
	assert_int_equal(RAND_bytes(other, sizeof other), 1);
	j_put_device(s, J_DEV2, other);

	s_setup(s);

	snprintf(adir, sizeof adir, "%s/audit", J.dir);
	assert_int_equal(mkdir(adir, 0700), 0);
	J.audit = audit_open(adir, "node1", NULL, &err);
	if (!J.audit)
		fail_msg("audit_open: %d %s", err.status, err.detail);
	memset(&rc, 0, sizeof rc);
	rc.rc_node = "node1";
	rc.rc_data_dir = J.dir;
	rc.rc_audit = J.audit;
	J.reg = reg_new(&rc, &re);
	if (!J.reg)
		fail_msg("reg_new: %d %s", re.status, re.msg);
	j_seed_profile(s, "p-sign", "sign", "sign");
	j_seed_profile(s, "p-auth", "auth", "authn");
	j_seed_profile(s, "p-other", "other", "authn");
	store_close(s);

	J.pool = pool_new(2, 0, j_pool_init, j_pool_fini, NULL);
	assert_non_null(J.pool);
	snprintf(ca, sizeof ca, "%s/ca.pem", J.dir);
	struct home_conf hc = {.hc_user_ca_cert = ca, .hc_pool = J.pool};
	J.home = home_new(&hc, e, sizeof e);
	if (!J.home)
		fail_msg("home_new: %s", e);
	J.afe = afe_new(J.pool, home_afe_ops(), J.home, NULL);
	assert_non_null(J.afe);
	home_set_afe(J.home, J.afe);
	home_set_reg(J.home, J.reg);

	struct srv_conf conf;
	struct net_err ne;
	memset(&conf, 0, sizeof conf);
	conf.sc_workers = 2;
	conf.sc_nlisteners = 1;
	conf.sc_listeners[0].sl_name = "afe";
	conf.sc_listeners[0].sl_addr = "127.0.0.1";
	conf.sc_listeners[0].sl_tls = J.server_ctx;
	conf.sc_listeners[0].sl_handler = afe_handler;
	conf.sc_listeners[0].sl_arg = J.afe;
	J.srv = srv_new(&conf, &ne);
	if (!J.srv)
		fail_msg("srv_new: %s", ne.ne_detail);
	afe_attach(J.afe, J.srv);
	J.port = srv_listener_port(J.srv, 0);
	assert_int_equal(srv_start(J.srv, &ne), 0);
	return 0;
}

static int
j_teardown(void **state)
{
	(void)state;
	if (J.afe)
		afe_stop(J.afe);
	if (J.srv)
		srv_free(J.srv);
	home_stop(J.home);
	pool_free(J.pool);
	afe_free(J.afe);
	home_free(J.home);
	reg_free(J.reg);
	audit_close(J.audit);
	SSL_CTX_free(J.server_ctx);
	SSL_CTX_free(J.client_ctx);
	EVP_PKEY_free(J.dev_key);
	if (td_remove(J.dir) != 0)
		fprintf(stderr, "cannot remove %s\n", J.dir);
	return 0;
}

/* ---- the phone: blocking TLS + ws.h framing + an E2E session ------------- */

#define RC_MAX_MSG 16

struct rc {
	int fd;
	SSL *ssl;
	struct ws *ws;
	char *msg[RC_MAX_MSG];
	size_t nmsg;
	bool closed;
	uint16_t code;
	struct e2e_session es;
};

static int
rc_wi_write(void *arg, const uint8_t *data, size_t len)
{
	struct rc *c = arg;
	while (len > 0) {
		int n = SSL_write(c->ssl, data, (int)len);
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
rc_wi_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	(void)binary;
	struct rc *c = arg;
	if (c->nmsg < RC_MAX_MSG)
		c->msg[c->nmsg++] = strndup((const char *)msg, len);
}

static void
rc_wi_closed(void *arg, uint16_t code)
{
	struct rc *c = arg;
	c->closed = true;
	c->code = code;
}

static const struct ws_io rc_io = {rc_wi_write, rc_wi_message, rc_wi_closed};

static void
rc_pump(struct rc *c, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;
	uint8_t buf[16384];
	while (!c->closed && c->nmsg == 0) {
		uint64_t now = loop_now_ms();
		struct pollfd p = {c->fd, POLLIN, 0};
		if (now >= end)
			return;
		if (SSL_pending(c->ssl) == 0 && poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		int n = SSL_read(c->ssl, buf, sizeof buf);
		if (n <= 0) {
			c->closed = true;
			return;
		}
		ws_feed(c->ws, buf, (size_t)n);
	}
}

static char *
rc_next(struct rc *c, unsigned ms)
{
	rc_pump(c, ms);
	if (c->nmsg == 0)
		return NULL;
	char *m = c->msg[0];
	memmove(c->msg, c->msg + 1, (c->nmsg - 1) * sizeof c->msg[0]);
	c->nmsg--;
	return m;
}

static void
rc_send(struct rc *c, const char *text)
{
	assert_int_equal(ws_send(c->ws, (const uint8_t *)text, strlen(text), false), 0);
}

static char *
b64enc(const uint8_t *d, size_t len)
{
	char *s = malloc((len + 2) / 3 * 4 + 1);
	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, d, (int)len);
	return s;
}

static size_t
b64dec(const char *s, uint8_t *out, size_t cap)
{
	size_t len = strlen(s), pad = 0;
	assert_true(len % 4 == 0 && len / 4 * 3 <= cap);
	if (len > 0 && s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	assert_true(n >= 0);
	return (size_t)n - pad;
}

/* The next e2e blob (malloc'ed, *len), or NULL after `ms`. */
static uint8_t *
rc_blob(struct rc *c, unsigned ms, size_t *len)
{
	char *m = rc_next(c, ms);
	if (!m)
		return NULL;
	json_t *j = json_loads(m, 0, NULL);
	free(m);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "t")), "e2e");
	const char *b = json_string_value(json_object_get(j, "b"));
	assert_non_null(b);
	uint8_t *out = malloc(strlen(b) / 4 * 3 + 3);
	assert_non_null(out);
	*len = b64dec(b, out, strlen(b) / 4 * 3 + 3);
	json_decref(j);
	return out;
}

/* Connect as J_DEV, authenticate, open the E2E session from the HELLO. */
static void
phone_login(struct rc *c)
{
	char key[WS_CLIENT_KEY_LEN + 1], req[512], head[2048];
	size_t n = 0;
	memset(c, 0, sizeof *c);
	c->fd = tt_tcp_connect(J.port, NULL);
	c->ssl = SSL_new(J.client_ctx);
	assert_non_null(c->ssl);
	assert_int_equal(tls_client_prepare(c->ssl, "localhost"), 0);
	SSL_set_fd(c->ssl, c->fd);
	assert_int_equal(SSL_connect(c->ssl), 1);
	assert_int_equal(ws_client_key(key), 0);
	snprintf(req, sizeof req,
		 "GET /app/v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n",
		 key);
	assert_int_equal(SSL_write(c->ssl, req, (int)strlen(req)), (int)strlen(req));
	while (n + 1 < sizeof head && SSL_read(c->ssl, head + n, 1) == 1) {
		n++;
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[n] = 0;
	assert_int_equal(strncmp(head, "HTTP/1.1 101", 12), 0);
	c->ws = ws_new(true, &rc_io, c, 0);
	assert_non_null(c->ws);

	/* challenge -> auth -> ready */
	char *m = rc_next(c, 3000);
	assert_non_null(m);
	json_t *j = json_loads(m, 0, NULL);
	free(m);
	uint8_t ch[64], nonce[E2E_NONCE_LEN];
	assert_int_equal(b64dec(json_string_value(json_object_get(j, "c")), ch, sizeof ch),
			 E2E_CHALLENGE_LEN);
	json_decref(j);
	assert_int_equal(RAND_bytes(nonce, sizeof nonce), 1);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	struct pki_err pe;
	assert_int_equal(e2e_auth_sign(J.dev_key, J_DEV, ch, nonce, &sig, &siglen, &pe), 0);
	char *n64 = b64enc(nonce, sizeof nonce), *s64 = b64enc(sig, siglen);
	OPENSSL_free(sig);
	j = json_pack("{s:s,s:s,s:s,s:s}", "t", "auth", "d", J_DEV, "n", n64, "s", s64);
	free(n64);
	free(s64);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	rc_send(c, txt);
	free(txt);
	m = rc_next(c, 3000);
	assert_non_null(m);
	assert_non_null(strstr(m, "\"ready\""));
	free(m);

	/* HomeMSSP's HELLO: the session keys */
	size_t bl = 0;
	uint8_t *hello = rc_blob(c, 3000, &bl);
	assert_non_null(hello);
	unsigned char hn[E2E_NONCE_LEN];
	assert_int_equal(e2e_hello_parse(hello, bl, hn, &pe), 0);
	free(hello);
	assert_int_equal(e2e_session_init(&c->es, E2E_ROLE_APP, J_DEV, J.chan, hn, nonce, &pe), 0);
}

static void
phone_free(struct rc *c)
{
	for (size_t i = 0; i < c->nmsg; i++)
		free(c->msg[i]);
	ws_free(c->ws);
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	e2e_session_wipe(&c->es);
	memset(c, 0, sizeof *c);
}

/* The next app message (0), or -1 after `ms`. */
static int
phone_recv(struct rc *c, unsigned ms, struct appmsg *m)
{
	size_t bl = 0, pl = 0;
	uint8_t *blob = rc_blob(c, ms, &bl);
	struct pki_err pe;
	struct mss_err me = {0};
	memset(m, 0, sizeof *m);
	if (!blob)
		return -1;
	uint8_t *plain = malloc(bl);
	assert_non_null(plain);
	if (e2e_open(&c->es, blob, bl, plain, bl, &pl, &pe) != 0)
		fail_msg("e2e_open: %d %s (blob %zu bytes, type %d)", pe.status, pe.detail, bl, blob[0]);
	free(blob);
	assert_int_equal(appmsg_decode(plain, pl, m, &me), 0);
	free(plain);
	return 0;
}

static void
phone_send(struct rc *c, const struct appmsg *m)
{
	char *txt = NULL;
	size_t len = 0;
	struct mss_err me = {0};
	struct pki_err pe;
	assert_int_equal(appmsg_encode(m, &txt, &len, &me), 0);
	uint8_t *blob = malloc(len + E2E_SEAL_OVERHEAD);
	size_t bl = 0;
	assert_non_null(blob);
	assert_int_equal(e2e_seal(&c->es, (const uint8_t *)txt, len, blob,
				  len + E2E_SEAL_OVERHEAD, &bl, &pe), 0);
	free(txt);
	char *b = b64enc(blob, bl);
	free(blob);
	json_t *j = json_pack("{s:s,s:s}", "t", "e2e", "b", b);
	free(b);
	char *out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	rc_send(c, out);
	free(out);
}

/* A real PKCS#10 request (DER) for a fresh P-256 key. */
static uint8_t *
make_csr(size_t *len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *der = NULL;
	assert_non_null(k);
	assert_non_null(r);
	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						     (const unsigned char *)"phone", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(r, n), 1);
	assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
	assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
	int l = i2d_X509_REQ(r, &der);
	assert_true(l > 0);
	uint8_t *out = malloc((size_t)l);
	assert_non_null(out);
	memcpy(out, der, (size_t)l);
	*len = (size_t)l;
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return out;
}

static void
answer_msg(struct appmsg *a, const char *job, int status, uint8_t *csr, size_t csr_len)
{
	memset(a, 0, sizeof *a);
	a->am_type = APPMSG_JOB_ANSWER;
	snprintf(a->am_job, sizeof a->am_job, "%s", job);
	a->am_status = status;
	a->am_der = csr;
	a->am_der_len = csr_len;
}

static void
test_job_delivery_and_ack(void **state)
{
	(void)state;
	char j1[32], j2[32], st[32];
	struct rc c;
	struct appmsg m, a;
	struct home_stats hs0, hs1;

	home_get_stats(J.home, &hs0);
	j_key_request("p-sign", J_DEV, j1);
	j_key_request("p-auth", J_DEV2, j2);
	j_job_state(j1, st);
	assert_string_equal(st, "requested");

	/* online: the keygen comes at once (not after a poll tick) */
	uint64_t t0 = loop_now_ms();
	phone_login(&c);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_true(loop_now_ms() - t0 < 2000);
	assert_int_equal(m.am_type, APPMSG_KEYGEN);
	assert_string_equal(m.am_job, j1);
	assert_string_equal(m.am_key, "sign");
	assert_string_equal(m.am_purpose, "sign");
	assert_int_equal(m.am_nprofiles, 1);
	assert_string_equal(m.am_profiles[0], "mss:demo:sign:loa3:app");
	assert_true(m.am_pin);
	assert_string_equal(m.am_alg, "ec-p256");
	appmsg_clear(&m);
	/* marked sent (just after the send: allow it a moment) */
	j_wait_state(j1, "sent");
	/* not sent again on this session while the poller ticks (300 ms),
	 * and dev-2's job never comes to dev-1 */
	assert_int_equal(phone_recv(&c, 1200, &m), -1);

	/* an answer for another device's job: refused by reg, NOT acked,
	 * nothing changes */
	size_t csr_len = 0;
	uint8_t *csr = make_csr(&csr_len);
	answer_msg(&a, j2, 0, csr, csr_len);
	phone_send(&c, &a);
	assert_int_equal(phone_recv(&c, 1500, &m), -1);
	j_job_state(j2, st);
	assert_string_equal(st, "requested");

	/* an answer for a job nobody knows: nothing to record, acked so the
	 * phone may forget it */
	answer_msg(&a, "J00000000000000aa", 0, csr, csr_len);
	phone_send(&c, &a);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_int_equal(m.am_type, APPMSG_JOB_ACK);
	assert_string_equal(m.am_job, "J00000000000000aa");
	appmsg_clear(&m);

	/* the real answer: when the ack arrives, the answer is in the store */
	answer_msg(&a, j1, 0, csr, csr_len);
	phone_send(&c, &a);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_int_equal(m.am_type, APPMSG_JOB_ACK);
	assert_string_equal(m.am_job, j1);
	appmsg_clear(&m);
	j_job_state(j1, st);
	assert_string_equal(st, "answered");
	/* re-sent (the ack was lost): acked again, state unchanged */
	phone_send(&c, &a);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_int_equal(m.am_type, APPMSG_JOB_ACK);
	assert_string_equal(m.am_job, j1);
	appmsg_clear(&m);
	j_job_state(j1, st);
	assert_string_equal(st, "answered");
	free(csr);

	home_get_stats(J.home, &hs1);
	assert_int_equal(hs1.hs_jobs_sent - hs0.hs_jobs_sent, 1);
	assert_int_equal(hs1.hs_jobs_acked - hs0.hs_jobs_acked, 3);
	phone_free(&c);
}

/* A transient store failure: reg_job_answer cannot commit (another
 * connection holds the database's write lock past the busy timeout), so
 * no ack goes out; the phone's re-send after the lock is gone is recorded
 * and acknowledged. */
static void
test_job_ack_after_commit(void **state)
{
	(void)state;
	char j1[32], st[32], path[320];
	struct rc c;
	struct appmsg m, a;
	sqlite3 *db = NULL;

	j_key_request("p-other", J_DEV, j1);
	phone_login(&c);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_int_equal(m.am_type, APPMSG_KEYGEN);
	assert_string_equal(m.am_job, j1);
	appmsg_clear(&m);
	j_wait_state(j1, "sent"); /* reg_job_sent commits just after the send */

	snprintf(path, sizeof path, "%s/t.db", J.dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000); /* the job was just marked sent */
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	size_t csr_len = 0;
	uint8_t *csr = make_csr(&csr_len);
	answer_msg(&a, j1, 0, csr, csr_len);
	phone_send(&c, &a);
	/* the store waits MSSP_STORE_BUSY_TIMEOUT_MS, then fails: no ack */
	assert_int_equal(phone_recv(&c, MSSP_STORE_BUSY_TIMEOUT_MS + 1500, &m), -1);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	j_job_state(j1, st);
	assert_string_equal(st, "sent");
	/* the phone sends it again: now recorded, then acked */
	phone_send(&c, &a);
	assert_int_equal(phone_recv(&c, 3000, &m), 0);
	assert_int_equal(m.am_type, APPMSG_JOB_ACK);
	assert_string_equal(m.am_job, j1);
	appmsg_clear(&m);
	j_job_state(j1, st);
	assert_string_equal(st, "answered");
	free(csr);
	phone_free(&c);
}

/* ---- home_select and the key checks ------------------------------------- */

#define S_MSISDN "+35847000002"
#define S_DEV "dev-3"

/* An ACTIVE key of S_MSISDN on S_DEV with a self-signed certificate. */
static void
s_put_key(struct store *s, const char *id, const char *group, const char *profile,
	  EVP_PKEY *k)
{
	struct store_key key;
	struct store_err err;
	memset(&key, 0, sizeof key);
	snprintf(key.sk_key_id, sizeof key.sk_key_id, "%s", id);
	snprintf(key.sk_group, sizeof key.sk_group, "%s", group);
	snprintf(key.sk_msisdn, sizeof key.sk_msisdn, "%s", S_MSISDN);
	snprintf(key.sk_device_id, sizeof key.sk_device_id, "%s", S_DEV);
	key.sk_purpose = STORE_KEY_SIGN;
	snprintf(key.sk_profiles, sizeof key.sk_profiles, "%s", profile);
	key.sk_state = STORE_KEY_ACTIVE;
	X509 *x = tt_make_cert(k, id, NULL, k, 0, 3600, NULL, 0);
	assert_non_null(x);
	unsigned char *der = NULL;
	int l = i2d_X509(x, &der);
	assert_true(l > 0 && (size_t)l <= sizeof key.sk_cert);
	memcpy(key.sk_cert, der, (size_t)l);
	key.sk_cert_len = (size_t)l;
	OPENSSL_free(der);
	snprintf(key.sk_cert_serial, sizeof key.sk_cert_serial, "%lx",
		 (long)ASN1_INTEGER_get(X509_get_serialNumber(x)));
	X509_free(x);
	if (store_key_put(s, &key, (int64_t)time(NULL) * 1000, &err) != 0)
		fail_msg("key put: %d %s", err.status, err.detail);
}

/* S_MSISDN with three keys: an RSA key on the compromised list (written
 * before reg_new loads it), a clean RSA key, an EC key. */
static void
s_setup(struct store *s)
{
	struct store_err err;
	struct store_user u;
	memset(&u, 0, sizeof u);
	snprintf(u.su_msisdn, sizeof u.su_msisdn, "%s", S_MSISDN);
	u.su_state = STORE_USER_ACTIVE;
	assert_int_equal(store_user_put(s, &u, (int64_t)time(NULL) * 1000, &err), 0);
	struct store_device d;
	memset(&d, 0, sizeof d);
	snprintf(d.sd_device_id, sizeof d.sd_device_id, "%s", S_DEV);
	snprintf(d.sd_msisdn, sizeof d.sd_msisdn, "%s", S_MSISDN);
	unsigned char *spki = NULL;
	size_t sl = 0;
	struct pki_err pe;
	assert_int_equal(e2e_spki_der(J.dev_key, &spki, &sl, &pe), 0);
	memcpy(d.sd_auth_spki, spki, sl);
	d.sd_auth_spki_len = sl;
	OPENSSL_free(spki);
	assert_int_equal(RAND_bytes(d.sd_e2e_key, sizeof d.sd_e2e_key), 1);
	d.sd_state = 1;
	if (store_device_put(s, &d, (int64_t)time(NULL) * 1000, &err) != 0)
		fail_msg("device put: %d %s", err.status, err.detail);

	EVP_PKEY *bad = EVP_RSA_gen(2048), *good = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	assert_non_null(bad);
	assert_non_null(good);
	assert_non_null(ec);
	/* the bad key's fingerprint in DIR/keys/compromised.txt */
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	assert_int_equal(pki_keycheck_fingerprint(bad, fp, &pe), 0);
	char path[320];
	snprintf(path, sizeof path, "%s/keys", J.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/keys/compromised.txt", J.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "# test\n");
	for (size_t i = 0; i < sizeof fp; i++)
		fprintf(f, "%02x", fp[i]);
	fprintf(f, "\n");
	fclose(f);
	s_put_key(s, "k-bad", "rsa1", "mss:demo:sign:loa3:app", bad);
	s_put_key(s, "k-good", "rsa2", "mss:demo:sign:loa2:app", good);
	s_put_key(s, "k-ec", "ec", "mss:demo:authn:loa3:app", ec);
	EVP_PKEY_free(bad);
	EVP_PKEY_free(good);
	EVP_PKEY_free(ec);
}

static int
s_select(const char *profile, char *key_id, size_t cap, struct mss_err *e)
{
	struct store_err serr;
	struct store *s = store_open(J.uri, 0, &serr);
	struct home_choice ch;
	assert_non_null(s);
	struct mss_msg *m = req_with("Pay 10 EUR", "UTF-8", "text/plain", NULL, NULL);
	struct mss_signature_req *r = m->u.sig_req;
	r->mobile_user = mss_msg_alloc(m, sizeof *r->mobile_user);
	r->mobile_user->msisdn = mss_msg_strdup(m, S_MSISDN);
	r->signature_profile = mss_msg_strdup(m, profile);
	memset(e, 0, sizeof *e);
	int rc = home_select(J.home, s, r, NULL, &ch, e);
	if (rc == 0)
		snprintf(key_id, cap, "%s", ch.hk_key.sk_key_id);
	mss_msg_free(m);
	store_close(s);
	return rc;
}

static void
test_select_key_checks(void **state)
{
	(void)state;
	char id[64];
	struct mss_err e;
	/* a key on the compromised list never signs: 404 like a disabled
	 * key, and the detail does not say why */
	assert_int_equal(s_select("mss:demo:sign:loa3:app", id, sizeof id, &e), -1);
	assert_int_equal(e.code, MSS_NO_KEY_FOUND);
	assert_null(strstr(e.detail, "ompromis"));
	/* twice: the cached verdict says the same */
	assert_int_equal(s_select("mss:demo:sign:loa3:app", id, sizeof id, &e), -1);
	assert_int_equal(e.code, MSS_NO_KEY_FOUND);
	/* a clean RSA key and an EC key sign */
	assert_int_equal(s_select("mss:demo:sign:loa2:app", id, sizeof id, &e), 0);
	assert_string_equal(id, "k-good");
	assert_int_equal(s_select("mss:demo:authn:loa3:app", id, sizeof id, &e), 0);
	assert_string_equal(id, "k-ec");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_display_text),
		cmocka_unit_test(test_dtbs_bytes),
		cmocka_unit_test(test_msisdn_form),
		cmocka_unit_test(test_job_message),
	};
	const struct CMUnitTest jobs[] = {
		cmocka_unit_test(test_job_delivery_and_ack),
		cmocka_unit_test(test_job_ack_after_commit),
		cmocka_unit_test(test_select_key_checks),
	};
	signal(SIGPIPE, SIG_IGN);
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("registration jobs", jobs, j_setup, j_teardown);
}
