/*
 * roam.c - the mesh transport of one node (see roam.h, mesh.md).
 *
 * Peer clients: one libcurl multi handle (net/client) per peer and trust
 * file, created on the AE loop when first used, because each peer has its
 * own CA and its own pinned certificates.  The per-peer state (in flight,
 * failures in a row, circuit open until) lives on the loop thread only.
 */
#include "roles/roam.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "mss/soap.h"
#include "mss/status.h"
#include "net/client.h"
#include "net/loop.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/metrics.h"

#define MESH_NS_STATUS 780 /* TS 102 207 UNABLE_TO_PROVIDE_SERVICES */

struct roam_tab {
	struct mesh_table *t;
	unsigned refs;		/* under r_lock */
};

/* One peer's client and health (AE loop thread only). */
struct peer_link {
	struct peer_link *pl_next;
	char *pl_id;
	char *pl_url;
	char *pl_ca;
	uint8_t pl_fps[MSSP_MESH_MAX_PEER_CERTS][MESHCONF_FP_LEN];
	size_t pl_nfps;
	struct httpc *pl_client;
	unsigned pl_inflight;
	unsigned pl_fails;		/* transport failures in a row */
	uint64_t pl_open_until;		/* circuit open until (monotonic ms) */
};

struct roam {
	char *r_self;
	char *r_cert, *r_key;
	bool r_allow_plain;
	struct loop *r_loop;
	pthread_mutex_t r_lock;
	struct roam_tab *r_tab;
	uint64_t r_gen_peer, r_gen_route;
	bool r_loaded;
	struct peer_link *r_links;	/* loop thread */
	atomic_bool r_stopped;
	struct metric *m_sent, *m_failed, *m_refused;
};

/* One call in flight. */
struct call {
	struct roam *c_roam;
	struct peer_link *c_link;	/* set on the loop thread */
	char *c_id, *c_url, *c_ca, *c_path;
	uint8_t c_fps[MSSP_MESH_MAX_PEER_CERTS][MESHCONF_FP_LEN];
	size_t c_nfps;
	bool c_suspended;
	char *c_body;
	size_t c_len;
	const char *c_action;
	enum mss_msg_type c_want;
	unsigned c_timeout_ms;
	roam_done_fn c_done;
	void *c_arg;
};

/* ---- life cycle ---------------------------------------------------------- */

struct roam *
roam_new(const struct roam_conf *c, char *err, size_t errlen)
{
	struct roam *r = calloc(1, sizeof *r);
	struct roam_tab *t = calloc(1, sizeof *t);
	struct mesh_table *mt = calloc(1, sizeof *mt);
	if (!r || !t || !mt || !c->rc_self_id || !c->rc_loop) {
		snprintf(err, errlen, "%s", r && t && mt ? "mesh: bad configuration" : "out of memory");
		free(r);
		free(t);
		free(mt);
		return NULL;
	}
	r->r_self = strdup(c->rc_self_id);
	r->r_cert = c->rc_cert_file ? strdup(c->rc_cert_file) : NULL;
	r->r_key = c->rc_key_file ? strdup(c->rc_key_file) : NULL;
	r->r_allow_plain = c->rc_allow_plain;
	r->r_loop = c->rc_loop;
	pthread_mutex_init(&r->r_lock, NULL);
	t->t = mt;
	t->refs = 1;
	r->r_tab = t;
	if (c->rc_metrics) {
		r->m_sent = metrics_counter(c->rc_metrics, "mssp_mesh_calls_total", "result=\"answered\"",
					    "Calls to peer MSSPs, by result");
		r->m_failed = metrics_counter(c->rc_metrics, "mssp_mesh_calls_total", "result=\"failed\"",
					      "Calls to peer MSSPs, by result");
		r->m_refused = metrics_counter(c->rc_metrics, "mssp_mesh_calls_total",
					       "result=\"not_sent\"", "Calls to peer MSSPs, by result");
	}
	if (!r->r_self || (c->rc_cert_file && !r->r_cert) || (c->rc_key_file && !r->r_key)) {
		snprintf(err, errlen, "out of memory");
		roam_free(r);
		return NULL;
	}
	return r;
}

static void
link_free(struct peer_link *l)
{
	if (l->pl_client)
		httpc_free(l->pl_client);
	free(l->pl_id);
	free(l->pl_url);
	free(l->pl_ca);
	free(l);
}

void
roam_stop_on_loop(struct roam *r)
{
	if (!r)
		return;
	atomic_store(&r->r_stopped, true);
	/* httpc_free ends every call in flight with status 0 "shutdown" */
	while (r->r_links) {
		struct peer_link *l = r->r_links;
		r->r_links = l->pl_next;
		link_free(l);
	}
}

static void
tab_unref(struct roam *r, struct roam_tab *t)
{
	bool last;
	pthread_mutex_lock(&r->r_lock);
	last = --t->refs == 0;
	pthread_mutex_unlock(&r->r_lock);
	if (last) {
		meshconf_table_free(t->t);
		free(t);
	}
}

void
roam_free(struct roam *r)
{
	if (!r)
		return;
	while (r->r_links) { /* not stopped on the loop: nothing is in flight */
		struct peer_link *l = r->r_links;
		r->r_links = l->pl_next;
		link_free(l);
	}
	if (r->r_tab)
		tab_unref(r, r->r_tab);
	pthread_mutex_destroy(&r->r_lock);
	free(r->r_self);
	free(r->r_cert);
	free(r->r_key);
	free(r);
}

const char *
roam_self_id(const struct roam *r)
{
	return r->r_self;
}

/* ---- the table ------------------------------------------------------------ */

int
roam_reload(struct roam *r, struct store *st, bool force)
{
	uint64_t gp = 0, gr = 0;
	struct store_err se;
	if (!force && r->r_loaded) {
		if (store_rec_generation(st, "peer", &gp, &se) != 0 ||
		    store_rec_generation(st, "route", &gr, &se) != 0)
			return -1;
		pthread_mutex_lock(&r->r_lock);
		bool same = gp == r->r_gen_peer && gr == r->r_gen_route;
		pthread_mutex_unlock(&r->r_lock);
		if (same)
			return 0;
	}
	char err[160];
	struct mesh_table *mt = meshconf_load(st, r->r_self, &gp, &gr, err, sizeof err);
	if (!mt) {
		LOG_EV("mesh.load_failed", "detail", err);
		return -1;
	}
	struct roam_tab *t = calloc(1, sizeof *t);
	if (!t) {
		meshconf_table_free(mt);
		return -1;
	}
	t->t = mt;
	t->refs = 1;
	pthread_mutex_lock(&r->r_lock);
	struct roam_tab *old = r->r_tab;
	r->r_tab = t;
	r->r_gen_peer = gp;
	r->r_gen_route = gr;
	bool first = !r->r_loaded;
	r->r_loaded = true;
	pthread_mutex_unlock(&r->r_lock);
	tab_unref(r, old);
	char np[16], nr[16];
	snprintf(np, sizeof np, "%zu", mt->npeers);
	snprintf(nr, sizeof nr, "%zu", mt->nroutes);
	LOG_EV(first ? "mesh.loaded" : "mesh.reloaded", "peers", np, "routes", nr);
	return 1;
}

struct roam_tab *
roam_tab_get(struct roam *r)
{
	pthread_mutex_lock(&r->r_lock);
	struct roam_tab *t = r->r_tab;
	t->refs++;
	pthread_mutex_unlock(&r->r_lock);
	return t;
}

const struct mesh_table *
roam_tab_table(const struct roam_tab *t)
{
	return t->t;
}

void
roam_tab_put(struct roam *r, struct roam_tab *t)
{
	if (t)
		tab_unref(r, t);
}

/* ---- headers ---------------------------------------------------------------- */

static void
iso_now(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
roam_stamp(struct roam *r, struct mss_msg *m, const struct mss_roam_hdr *history,
	   const struct mesh_peer *to, const char *home_id, const char *our_trans_id,
	   unsigned timeout_s, enum mss_mesh_role role)
{
	struct mss_roam_hdr *h = mss_msg_alloc(m, sizeof *h);
	if (!h)
		return -1;
	size_t n = history ? history->n : 0;
	if (n >= MSSP_MESH_MAX_HOPS)
		return -1; /* the caller checked the loop limit before */
	for (size_t i = 0; i < n; i++)
		h->entry[i] = history->entry[i]; /* strings: the caller keeps the
						  * history's message alive while
						  * m is encoded */
	char now[32];
	iso_now(now);
	struct mss_roam_entry *e = &h->entry[n];
	e->major = 1;
	e->minor = 1;
	e->instant = mss_msg_strdup(m, now);
	e->re_trans_id = mss_msg_strdup(m, our_trans_id);
	e->timeout_s = timeout_s;
	e->sender_id = mss_msg_strdup(m, r->r_self);
	e->role = role;
	h->n = n + 1;
	h->home_mssp = home_id ? mss_msg_strdup(m, home_id) : NULL;
	if (!e->instant || !e->re_trans_id || !e->sender_id || (home_id && !h->home_mssp))
		return -1;
	m->roam = h;
	if (!to)
		return 0;
	/* a request to `to`: the MSSP it is addressed to, and its names */
	struct mss_common *c = m->u.common;
	if (!c->mssp_info && !(c->mssp_info = mss_msg_alloc(m, sizeof *c->mssp_info)))
		return -1;
	if (!(c->mssp_info->mssp_id = mss_msg_alloc(m, sizeof *c->mssp_info->mssp_id)) ||
	    !(c->mssp_info->mssp_id->uri = mss_msg_strdup(m, to->id)))
		return -1;
	c->mssp_info->instant = NULL;
	if (m->type == MSS_SIGNATURE_REQ) {
		struct mss_signature_req *rq = m->u.sig_req;
		if (rq->signature_profile) {
			const char *p = meshconf_map_out(to, rq->signature_profile);
			if (p != rq->signature_profile &&
			    !(rq->signature_profile = mss_msg_strdup(m, p)))
				return -1;
		}
		if (timeout_s) {
			char num[16];
			snprintf(num, sizeof num, "%u", timeout_s);
			if (!(rq->timeout = mss_msg_strdup(m, num)))
				return -1;
		}
	}
	return 0;
}

int
roam_check_inbound(const struct roam *r, const struct mss_msg *m,
		   const struct mesh_peer *sender, bool answer, const char **why)
{
	const struct mss_roam_hdr *h = m->roam;
	if (!h || h->n == 0) {
		*why = "RoamingHeader missing";
		return 701;
	}
	if (h->n >= MSSP_MESH_MAX_HOPS) {
		*why = "Too many hops";
		return 780;
	}
	bool ours = false;
	for (size_t i = 0; i < h->n; i++)
		ours |= h->entry[i].sender_id && strcmp(h->entry[i].sender_id, r->r_self) == 0;
	if (ours && !answer) {
		*why = "Routing loop";
		return 780;
	}
	if (!ours && answer) {
		*why = "Not a transaction of ours";
		return MSS_WRONG_PARAM;
	}
	const struct mss_roam_entry *last = &h->entry[h->n - 1];
	if (!last->sender_id || strcmp(last->sender_id, sender->id) != 0) {
		/* the immediate sender is the TLS peer, whatever a header says */
		*why = "Sender is not the authenticated peer";
		return MSS_UNAUTHORIZED_ACCESS;
	}
	if (!last->re_trans_id || !*last->re_trans_id) {
		*why = "RE_TransactionID missing";
		return 710;
	}
	if (!h->home_mssp) {
		*why = "HomeMSSP missing";
		return 703;
	}
	if (!answer && strcmp(h->home_mssp, r->r_self) != 0) {
		/* each hop names the MSSP it sends to: not us, not ours */
		*why = "Routed to another MSSP";
		return 780;
	}
	return 0;
}

const char *
roam_own_trans_id(const struct roam *r, const struct mss_roam_hdr *h)
{
	if (!h)
		return NULL;
	for (size_t i = 0; i < h->n; i++)
		if (h->entry[i].sender_id && strcmp(h->entry[i].sender_id, r->r_self) == 0)
			return h->entry[i].re_trans_id;
	return NULL;
}

unsigned
roam_hdr_timeout(const struct mss_roam_hdr *h)
{
	return h && h->n ? h->entry[h->n - 1].timeout_s : 0;
}

/* ---- calls -------------------------------------------------------------------- */

static void
call_free(struct call *c)
{
	free(c->c_id);
	free(c->c_url);
	free(c->c_ca);
	free(c->c_path);
	free(c->c_body);
	free(c);
}

static void
call_finish(struct call *c, int status, const char *detail, struct mss_msg *msg)
{
	struct roam_answer ans;
	memset(&ans, 0, sizeof ans);
	ans.ra_status = status;
	ans.ra_msg = msg;
	ans.ra_shutdown = atomic_load(&c->c_roam->r_stopped);
	snprintf(ans.ra_detail, sizeof ans.ra_detail, "%s", detail ? detail : "");
	if (status == 0)
		metric_inc(c->c_roam->m_sent);
	else
		metric_inc(c->c_roam->m_failed);
	c->c_done(c->c_arg, &ans);
	call_free(c);
}

/* A fault's status: its subcode "_NNN" when we know NNN, else 780. */
static int
fault_status(const struct mss_fault_msg *f)
{
	const char *s = f ? f->subcode_value : NULL;
	if (s) {
		const char *colon = strrchr(s, ':');
		if (colon)
			s = colon + 1;
		if (*s == '_')
			s++;
		char *end;
		long v = strtol(s, &end, 10);
		if (end != s && !*end && v > 100 && v < 1000 && v != MSS_SIGNATURE &&
		    v != MSS_VALID_SIGNATURE && v != MSS_OUTSTANDING_TRANSACTION &&
		    mss_status_lookup((int)v))
			return (int)v;
	}
	return MESH_NS_STATUS;
}

/* One more failure in a row; enough of them open the circuit. */
static void
link_failed(struct peer_link *l)
{
	if (l && ++l->pl_fails >= MSSP_MESH_BREAKER_FAILS)
		l->pl_open_until = loop_now_ms() + MSSP_MESH_BREAKER_OPEN_MS;
}

static void
call_http_done(void *arg, int http_status, const uint8_t *body, size_t len, const char *err)
{
	struct call *c = arg;
	struct peer_link *l = c->c_link;
	if (l && l->pl_inflight)
		l->pl_inflight--;
	if (atomic_load(&c->c_roam->r_stopped)) {
		/* cut by our own stop: says nothing about the peer */
		call_finish(c, MESH_NS_STATUS, "Node stopping", NULL);
		return;
	}
	if (http_status == 0 || (http_status != 200 && http_status != 500)) {
		/* a transport failure or an answer that is not TS 102 204's */
		link_failed(l);
		char code[16];
		snprintf(code, sizeof code, "%d", http_status);
		LOG_EV("mesh.call_failed", "peer", c->c_id, "http", code, "why",
		       http_status ? "http status" : err ? err : "transport");
		call_finish(c, MESH_NS_STATUS,
			    http_status == 0 && err && strcmp(err, "timeout") == 0
				    ? "Peer MSSP did not answer in time"
				    : "Peer MSSP unavailable",
			    NULL);
		return;
	}
	struct mss_err e;
	memset(&e, 0, sizeof e);
	struct mss_msg *m = mss_soap_decode((const char *)body, len, MSS_SOAP_ROAMING, &e);
	if (!m) {
		/* garbage counts as a failure: such a peer's circuit opens */
		link_failed(l);
		LOG_EV("mesh.bad_answer", "peer", c->c_id, "detail", e.detail);
		call_finish(c, MESH_NS_STATUS, "Peer MSSP answer not understood", NULL);
		return;
	}
	if (m->type == MSS_FAULT) {
		int st = fault_status(m->u.fault);
		if (l)
			l->pl_fails = 0; /* a peer that answers is up */
		mss_msg_free(m);
		call_finish(c, st, st == MESH_NS_STATUS ? "Peer MSSP fault" : mss_status_name(st),
			    NULL);
		return;
	}
	if (m->type != c->c_want || http_status != 200) {
		link_failed(l);
		mss_msg_free(m);
		LOG_EV("mesh.bad_answer", "peer", c->c_id, "detail", "unexpected message");
		call_finish(c, MESH_NS_STATUS, "Peer MSSP answer not understood", NULL);
		return;
	}
	if (l)
		l->pl_fails = 0;
	call_finish(c, 0, NULL, m);
}

static struct peer_link *
link_find(struct roam *r, struct call *c)
{
	for (struct peer_link *l = r->r_links; l; l = l->pl_next)
		if (strcmp(l->pl_id, c->c_id) == 0 && strcmp(l->pl_url, c->c_url) == 0 &&
		    strcmp(l->pl_ca, c->c_ca) == 0 && l->pl_nfps == c->c_nfps &&
		    memcmp(l->pl_fps, c->c_fps, sizeof l->pl_fps) == 0)
			return l;
	/* a changed peer record gets a fresh client (its CA or pins moved);
	 * an old one of the same peer goes when nothing is in flight on it
	 * (else at the node's stop) */
	for (struct peer_link **pp = &r->r_links; *pp;) {
		struct peer_link *o = *pp;
		if (strcmp(o->pl_id, c->c_id) == 0 && o->pl_inflight == 0) {
			*pp = o->pl_next;
			link_free(o);
		} else {
			pp = &o->pl_next;
		}
	}
	struct peer_link *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->pl_id = strdup(c->c_id);
	l->pl_url = strdup(c->c_url);
	l->pl_ca = strdup(c->c_ca);
	memcpy(l->pl_fps, c->c_fps, sizeof l->pl_fps);
	l->pl_nfps = c->c_nfps;
	struct httpc_tls tls = {
		.ht_cert_file = r->r_cert,
		.ht_key_file = r->r_key,
		.ht_ca_file = c->c_ca[0] ? c->c_ca : NULL,
		.ht_allow_plain = r->r_allow_plain,
		.ht_pin_sha256 = (const uint8_t(*)[32])l->pl_fps,
		.ht_npins = l->pl_nfps,
	};
	if (l->pl_id && l->pl_url && l->pl_ca)
		l->pl_client = httpc_new(r->r_loop, &tls);
	if (!l->pl_client) {
		link_free(l);
		return NULL;
	}
	l->pl_next = r->r_links;
	r->r_links = l;
	return l;
}

static void
call_start_on_loop(void *arg)
{
	struct call *c = arg;
	struct roam *r = c->c_roam;
	if (atomic_load(&r->r_stopped)) {
		call_finish(c, MESH_NS_STATUS, "Node stopping", NULL);
		return;
	}
	if (c->c_suspended) {
		metric_inc(r->m_refused);
		call_finish(c, MESH_NS_STATUS, "Peer MSSP suspended", NULL);
		return;
	}
	struct peer_link *l = link_find(r, c);
	if (!l) {
		call_finish(c, MESH_NS_STATUS, "Peer MSSP client unavailable", NULL);
		return;
	}
	uint64_t now = loop_now_ms();
	if (l->pl_open_until > now) {
		metric_inc(r->m_refused);
		call_finish(c, MESH_NS_STATUS, "Peer MSSP unavailable", NULL);
		return;
	}
	if (l->pl_inflight >= MSSP_MESH_MAX_INFLIGHT) {
		metric_inc(r->m_refused);
		call_finish(c, MESH_NS_STATUS, "Peer MSSP busy", NULL);
		return;
	}
	char url[MSSP_HTTPC_MAX_URL + 1];
	if ((size_t)snprintf(url, sizeof url, "%s%s", c->c_url, c->c_path) >= sizeof url) {
		call_finish(c, MESH_NS_STATUS, "Peer MSSP URL too long", NULL);
		return;
	}
	struct httpc_req hr = {
		.hr_url = url,
		.hr_content_type = "application/soap+xml; charset=utf-8",
		.hr_soap_action = c->c_action,
		.hr_body = c->c_body,
		.hr_body_len = c->c_len,
		.hr_timeout_ms = c->c_timeout_ms,
		.hr_connect_timeout_ms = MSSP_MESH_CONNECT_TIMEOUT_MS,
	};
	c->c_link = l;
	l->pl_inflight++;
	if (httpc_post(l->pl_client, &hr, call_http_done, c) != 0) {
		l->pl_inflight--;
		c->c_link = NULL;
		call_finish(c, MESH_NS_STATUS, "Peer MSSP call not started", NULL);
	}
}

static const char *
action_of(const struct mss_msg *m)
{
	switch (m->type) {
	case MSS_SIGNATURE_REQ:
		return "#MSS_Signature";
	case MSS_STATUS_REQ:
		return "#MSS_StatusQuery";
	case MSS_RECEIPT_REQ:
		return "#MSS_Receipt";
	case MSS_PROFILE_REQ:
		return "#MSS_ProfileQuery";
	case MSS_STATUS_RESP:
		return "#MSS_Notification";
	default:
		return NULL;
	}
}

int
roam_send(struct roam *r, const struct mesh_peer *to, const char *path,
	  const struct mss_msg *m, enum mss_msg_type want, unsigned timeout_ms,
	  roam_done_fn done, void *arg)
{
	struct mss_err e;
	struct mss_buf buf;
	memset(&e, 0, sizeof e);
	struct call *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	mss_buf_init(&buf, MSSP_HTTPC_MAX_REQUEST);
	if (mss_soap_encode(m, MSS_SOAP_12, &buf, &e) != 0) {
		LOG_EV("mesh.encode_failed", "peer", to->id, "detail", e.detail);
		mss_buf_free(&buf);
		free(c);
		return -1;
	}
	c->c_roam = r;
	c->c_id = strdup(to->id);
	c->c_url = strdup(to->url);
	c->c_ca = strdup(to->ca_file ? to->ca_file : "");
	c->c_path = strdup(path);
	memcpy(c->c_fps, to->fps, sizeof c->c_fps);
	c->c_nfps = to->nfps;
	c->c_suspended = to->suspended;
	c->c_body = mss_buf_take(&buf, &c->c_len);
	c->c_action = action_of(m);
	c->c_want = want;
	c->c_timeout_ms = timeout_ms ? timeout_ms : MSSP_MESH_QUERY_TIMEOUT_MS;
	if (c->c_timeout_ms > MSSP_HTTPC_MAX_TIMEOUT_MS)
		c->c_timeout_ms = MSSP_HTTPC_MAX_TIMEOUT_MS;
	c->c_done = done;
	c->c_arg = arg;
	mss_buf_free(&buf);
	if (!c->c_id || !c->c_url || !c->c_ca || !c->c_path || !c->c_body) {
		call_free(c);
		return -1;
	}
	if (loop_call(r->r_loop, call_start_on_loop, c) != 0) {
		call_free(c);
		return -1;
	}
	return 0;
}
