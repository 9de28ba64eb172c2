/*
 * afe.c - the app front end: device WebSocket connections, their
 * authentication, the device registry and the relay of end-to-end blobs.
 *
 * docs/internals/afe.md has the protocol, the threads and the limits.  In
 * short:
 *   - a connection lives on one server worker thread; every piece of its
 *     state (struct afe_conn) is touched on that thread only;
 *   - other threads reach a connection by (worker index, connection id):
 *     loop_call() to the worker, then a lookup in that worker's own table
 *     (struct afe_worker, no lock: one thread).  A connection that closed
 *     meanwhile is simply not found: no pointer to it ever leaves its
 *     thread;
 *   - the device registry (device id -> worker, session) is the one shared
 *     structure, under a mutex;
 *   - the session id of an authenticated connection is its connection id
 *     (a connection authenticates at most once), so it is never 0 and
 *     never reused.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "net/loop.h"
#include "net/server.h"
#include "net/ws.h"
#include "pki/e2e.h"
#include "roles/afe.h"
#include "roles/node.h"
#include "roles/push.h"
#include "roles/reg.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/pool.h"

#define AFE_PATH "/app/v1/ws"

/* The largest blob: a SEALED blob of the largest app message. */
#define AFE_MAX_BLOB (MSSP_E2E_MAX_PLAIN + E2E_SEAL_OVERHEAD)
#define AFE_B64_LEN(n) (((n) + 2) / 3 * 4)
/* {"t":"e2e","b":"..."} around the largest blob, with room to spare. */
#define AFE_MAX_MSG (AFE_B64_LEN(AFE_MAX_BLOB) + 64)
_Static_assert(AFE_MAX_MSG <= MSSP_WS_MAX_MESSAGE, "an e2e message must fit a ws message");

/* Close codes (RFC 6455 7.4 and ours, 4000-4999 private use). */
#define AFE_CLOSE_GOING_AWAY 1001
#define AFE_CLOSE_POLICY 1008
#define AFE_CLOSE_INTERNAL 1011
/* 1013 "try again later" is not among the codes ws.h lets an endpoint
 * send (1000-1011, 3000-4999): a private code says the same. */
#define AFE_CLOSE_TRY_LATER 4003
#define AFE_CLOSE_AUTH 4001
#define AFE_CLOSE_REPLACED 4002

enum afe_cstate {
	CS_CHALLENGE = 1, /* challenge sent, waiting for "auth"        */
	CS_VERIFYING,	  /* "auth" received, the pool job is running  */
	CS_READY,	  /* authenticated: blobs both ways            */
	CS_CLOSING,	  /* close frame sent or received              */
	CS_ACT_HELLO,	  /* "activate" answered, waiting for the proof */
	CS_ACTIVATING,	  /* proof received, reg_activate on the pool  */
};

struct afe_worker;

/* One device connection.  Worker thread only. */
struct afe_conn {
	struct afe *c_afe;
	struct afe_worker *c_w;
	struct srv_up *c_up;	 /* NULL once uo_closed ran            */
	struct ws *c_ws;
	struct event *c_timer;	 /* auth deadline, pings, close grace  */
	uint64_t c_id;		 /* connection id = session id         */
	enum afe_cstate c_state;
	bool c_authed;		 /* ao_online ran: ao_offline is due   */
	bool c_registered;	 /* may own a registry entry           */
	bool c_shut;		 /* srv_up_close called                */
	bool c_gone;		 /* uo_closed ran: free at depth 0     */
	unsigned c_depth;	 /* nested entry points (see conn_enter) */
	uint8_t c_challenge[E2E_CHALLENGE_LEN];
	char c_device[MSSP_KEYSTORE_MAX_ID + 1];
	struct afe_conn *c_hnext; /* worker table chain                */
	/* Activation (me.md "Device binding"): one attempt per connection. */
	bool c_act;		 /* "activate" received                */
	EVP_PKEY *c_bind;	 /* this attempt's home binding key    */
	unsigned char *c_bind_spki; /* its SPKI DER (OPENSSL_malloc)   */
	size_t c_bind_spki_len;
	uint8_t c_home_nonce[E2E_NONCE_LEN];
	uint8_t c_app_nonce[E2E_NONCE_LEN];
	char c_msisdn[MSSP_STORE_MAX_MSISDN + 1];
};

/* Per server worker: its loop and its connections by id.  The table is
 * touched on the worker's thread only. */
struct afe_worker {
	struct afe *w_afe;
	unsigned w_idx;
	struct loop *w_loop;
	struct afe_conn **w_tab;
	size_t w_cap; /* power of two, or 0 */
	size_t w_n;
};

/* One activation limiter entry (GCRA): a source address or an MSISDN. */
struct afe_lim {
	char l_key[MSSP_AFE_ACT_LIMIT_KEY]; /* "" = free                */
	int64_t l_tat;			    /* theoretical arrival time */
	int64_t l_used;			    /* last look-up (LRU)       */
	bool l_warned;			    /* refusal logged since the
					     * last attempt let through */
};

/* The limiter table: MSSP_AFE_ACT_LIMIT_SLOTS entries in sets of
 * AFE_LIM_WAYS; a key lives in the set its seeded hash names, and a full
 * set gives up its least recently used entry (bounded memory: a flood of
 * new keys forgets old ones, it never grows the table). */
#define AFE_LIM_WAYS 8
_Static_assert(MSSP_AFE_ACT_LIMIT_SLOTS % AFE_LIM_WAYS == 0, "whole sets");
_Static_assert(MSSP_AFE_ACT_LIMIT_KEY >= MSSP_STORE_MAX_MSISDN + 3 &&
		       MSSP_AFE_ACT_LIMIT_KEY >= 46 + 6,
	       "a limiter key holds \"m:\" + an MSISDN and \"i:\" + an IPv6 /64");

/* A registry entry: which connection speaks for a device now. */
struct afe_dev {
	char d_id[MSSP_KEYSTORE_MAX_ID + 1];
	uint64_t d_session;
	unsigned d_worker;
	struct afe_dev *d_next;
};

struct afe {
	struct pool *a_pool;
	const struct afe_ops *a_ops;
	void *a_arg;
	struct push_provider *a_push;
	struct reg *a_regmod; /* activation (roles/reg); NULL: refused */
	struct srv *a_srv;
	struct afe_worker *a_workers;
	unsigned a_nworkers;
	unsigned a_auth_ms, a_ping_ms, a_idle_ms;

	atomic_uint_fast64_t a_next_id;
	atomic_bool a_stopping;
	atomic_bool a_served; /* the handler ran once: the loops run */

	/* Device registry. */
	pthread_mutex_t a_mu;
	struct afe_dev **a_reg;
	size_t a_reg_cap; /* power of two */
	size_t a_reg_n;
	uint64_t a_reg_seed;

	/* Pool jobs in flight, and the afe_stop barrier (under a_mu). */
	pthread_cond_t a_cv;
	unsigned a_jobs;
	unsigned a_barrier;

	/* Activation attempt limits (under a_lim_mu; the table is
	 * allocated with the afe). */
	pthread_mutex_t a_lim_mu;
	struct afe_lim *a_lim;
	uint64_t a_lim_seed;
	unsigned a_lim_ip, a_lim_msisdn; /* attempts per window */

	atomic_uint_fast64_t s_auth_ok, s_auth_failed, s_blobs_in, s_blobs_out, s_send_offline,
		s_wakes, s_act_ok, s_act_failed, s_act_limited, s_act_nocode;
};

/* ---- small helpers ---------------------------------------------------- */

/* Device id syntax, as the keystore has it: 1..MSSP_KEYSTORE_MAX_ID chars
 * of [A-Za-z0-9._:+@-]. */
static bool
afe_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr("._:+@-", c) == NULL || c == '\0')
			return false;
	}
	return true;
}

static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict base64 (RFC 4648 4, padded, canonical) of 1..cap bytes into out.
 * EVP_DecodeBlock does the work; the checks before it are what it lets
 * through (whitespace, padding in the middle, the pad bytes in its count,
 * non-zero unused bits that make two texts decode to the same bytes).
 */
static int
b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t pad = 0, n;
	int dec, last;

	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > cap + 2)
		return -1;
	if (s[slen - 1] == '=')
		pad = s[slen - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < slen - pad; i++)
		if (b64_val((unsigned char)s[i]) < 0)
			return -1;
	last = b64_val((unsigned char)s[slen - pad - 1]);
	if ((pad == 1 && (last & 0x3) != 0) || (pad == 2 && (last & 0xf) != 0))
		return -1;
	n = slen / 4 * 3 - pad;
	if (n > cap)
		return -1;
	if (pad == 0) {
		dec = EVP_DecodeBlock(out, (const unsigned char *)s, (int)slen);
		if (dec != (int)n)
			return -1;
	} else {
		/* the last group decodes to 3 bytes, of which 3 - pad are ours:
		 * decode it apart so that out never needs room for the rest */
		unsigned char tail[3];

		if (slen > 4) {
			dec = EVP_DecodeBlock(out, (const unsigned char *)s, (int)(slen - 4));
			if (dec != (int)(slen - 4) / 4 * 3)
				return -1;
		}
		dec = EVP_DecodeBlock(tail, (const unsigned char *)s + slen - 4, 4);
		if (dec != 3)
			return -1;
		memcpy(out + (slen - 4) / 4 * 3, tail, 3 - pad);
	}
	*outlen = n;
	return 0;
}

/* A new JSON string holding base64(data), or NULL. */
static json_t *
b64_json(const uint8_t *data, size_t len)
{
	size_t cap = AFE_B64_LEN(len) + 1;
	unsigned char *txt = malloc(cap);
	json_t *j;
	int n;

	if (txt == NULL)
		return NULL;
	n = EVP_EncodeBlock(txt, data, (int)len);
	j = n < 0 ? NULL : json_stringn((const char *)txt, (size_t)n);
	free(txt);
	return j;
}

/* Send a JSON object (stolen) as one text message.  0 or -1. */
static int
conn_send_json(struct afe_conn *c, json_t *obj)
{
	char *txt;
	int rc = -1;

	if (obj == NULL)
		return -1;
	txt = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (txt == NULL)
		return -1;
	if (c->c_ws != NULL && c->c_state != CS_CLOSING)
		rc = ws_send(c->c_ws, (const uint8_t *)txt, strlen(txt), false);
	free(txt);
	return rc;
}

/* ---- the device registry (any thread, under a_mu) ---------------------- */

/* FNV-1a with a per-process random seed: the keys are device ids that
 * passed authentication, so the seed is only a cheap guard against a
 * population of ids that happen to collide. */
static size_t
reg_slot(const struct afe *a, const char *id, size_t cap)
{
	uint64_t h = 1469598103934665603ULL ^ a->a_reg_seed;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static struct afe_dev **
reg_find(struct afe *a, const char *id)
{
	struct afe_dev **pp = &a->a_reg[reg_slot(a, id, a->a_reg_cap)];

	while (*pp != NULL && strcmp((*pp)->d_id, id) != 0)
		pp = &(*pp)->d_next;
	return pp;
}

/* Double the table; on memory shortage keep the old one (longer chains). */
static void
reg_grow(struct afe *a)
{
	size_t ncap = a->a_reg_cap * 2;
	struct afe_dev **nt = calloc(ncap, sizeof(*nt));

	if (nt == NULL)
		return;
	for (size_t i = 0; i < a->a_reg_cap; i++) {
		struct afe_dev *d = a->a_reg[i], *next;

		for (; d != NULL; d = next) {
			size_t s = reg_slot(a, d->d_id, ncap);

			next = d->d_next;
			d->d_next = nt[s];
			nt[s] = d;
		}
	}
	free(a->a_reg);
	a->a_reg = nt;
	a->a_reg_cap = ncap;
}

/*
 * Make `session` on `worker` the connection of device `id`.  Returns 1 when
 * it replaced another one (old_* filled), 0 when the device was not
 * connected, -1 when the registry is full or the afe is stopping.
 */
static int
reg_claim(struct afe *a, const char *id, uint64_t session, unsigned worker,
	  uint64_t *old_session, unsigned *old_worker)
{
	struct afe_dev **pp, *d;
	int rc = -1;

	pthread_mutex_lock(&a->a_mu);
	if (atomic_load(&a->a_stopping))
		goto out;
	pp = reg_find(a, id);
	if (*pp != NULL) {
		*old_session = (*pp)->d_session;
		*old_worker = (*pp)->d_worker;
		(*pp)->d_session = session;
		(*pp)->d_worker = worker;
		rc = 1;
		goto out;
	}
	if (a->a_reg_n >= MSSP_AFE_MAX_DEVICES)
		goto out;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		goto out;
	memcpy(d->d_id, id, strlen(id) + 1);
	d->d_session = session;
	d->d_worker = worker;
	d->d_next = *pp;
	*pp = d;
	a->a_reg_n++;
	if (a->a_reg_n > a->a_reg_cap)
		reg_grow(a);
	rc = 0;
out:
	pthread_mutex_unlock(&a->a_mu);
	return rc;
}

/* Forget device `id` if `session` is still its connection (a replaced
 * connection must not unregister its successor). */
static void
reg_release(struct afe *a, const char *id, uint64_t session)
{
	struct afe_dev **pp, *d;

	pthread_mutex_lock(&a->a_mu);
	pp = reg_find(a, id);
	if (*pp != NULL && (*pp)->d_session == session) {
		d = *pp;
		*pp = d->d_next;
		a->a_reg_n--;
		free(d);
	}
	pthread_mutex_unlock(&a->a_mu);
}

static bool
reg_lookup(struct afe *a, const char *id, uint64_t *session, unsigned *worker)
{
	struct afe_dev *d;
	bool found = false;

	pthread_mutex_lock(&a->a_mu);
	d = *reg_find(a, id);
	if (d != NULL) {
		*session = d->d_session;
		*worker = d->d_worker;
		found = true;
	}
	pthread_mutex_unlock(&a->a_mu);
	return found;
}

/* ---- the per-worker connection table (worker thread only) -------------- */

static size_t
tab_slot(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 32) & (cap - 1);
}

static struct afe_conn *
tab_find(struct afe_worker *w, uint64_t id)
{
	struct afe_conn *c;

	if (w->w_cap == 0)
		return NULL;
	for (c = w->w_tab[tab_slot(id, w->w_cap)]; c != NULL; c = c->c_hnext)
		if (c->c_id == id)
			return c;
	return NULL;
}

static int
tab_add(struct afe_worker *w, struct afe_conn *c)
{
	size_t s;

	if (w->w_n >= w->w_cap) {
		size_t ncap = w->w_cap == 0 ? 64 : w->w_cap * 2;
		struct afe_conn **nt = calloc(ncap, sizeof(*nt));

		if (nt == NULL) {
			if (w->w_cap == 0)
				return -1;
		} else {
			for (size_t i = 0; i < w->w_cap; i++) {
				struct afe_conn *x = w->w_tab[i], *next;

				for (; x != NULL; x = next) {
					next = x->c_hnext;
					s = tab_slot(x->c_id, ncap);
					x->c_hnext = nt[s];
					nt[s] = x;
				}
			}
			free(w->w_tab);
			w->w_tab = nt;
			w->w_cap = ncap;
		}
	}
	s = tab_slot(c->c_id, w->w_cap);
	c->c_hnext = w->w_tab[s];
	w->w_tab[s] = c;
	w->w_n++;
	return 0;
}

static void
tab_del(struct afe_worker *w, struct afe_conn *c)
{
	struct afe_conn **pp;

	if (w->w_cap == 0)
		return;
	for (pp = &w->w_tab[tab_slot(c->c_id, w->w_cap)]; *pp != NULL; pp = &(*pp)->c_hnext) {
		if (*pp == c) {
			*pp = c->c_hnext;
			w->w_n--;
			return;
		}
	}
}

/* ---- connection life cycle (worker thread) ------------------------------ */

static void
conn_free(struct afe_conn *c)
{
	if (c->c_timer != NULL)
		event_free(c->c_timer);
	ws_free(c->c_ws);
	OPENSSL_cleanse(c->c_challenge, sizeof(c->c_challenge));
	/* an activation that did not get as far as the proof */
	EVP_PKEY_free(c->c_bind);
	OPENSSL_free(c->c_bind_spki);
	OPENSSL_cleanse(c->c_home_nonce, sizeof(c->c_home_nonce));
	OPENSSL_cleanse(c->c_app_nonce, sizeof(c->c_app_nonce));
	free(c);
}

/*
 * Every way into a connection (transport callbacks, its timer, loop_call
 * jobs, the handler) brackets its work with enter/leave: the transport may
 * report the close (uo_closed) from inside a call we make (srv_up_close
 * from inside ws_feed), and the connection must outlive the outermost call
 * that still uses it.  Never free an object from inside its own callback.
 */
static void
conn_enter(struct afe_conn *c)
{
	c->c_depth++;
}

static void
conn_leave(struct afe_conn *c)
{
	if (--c->c_depth == 0 && c->c_gone)
		conn_free(c);
}

static void
conn_arm(struct afe_conn *c, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (c->c_timer != NULL)
		event_add(c->c_timer, &tv);
}

/* Unregister (so that afe_send stops choosing this connection). */
static void
conn_unregister(struct afe_conn *c)
{
	if (c->c_registered) {
		c->c_registered = false;
		reg_release(c->c_afe, c->c_device, c->c_id);
	}
}

static void
conn_shut(struct afe_conn *c)
{
	if (!c->c_shut && c->c_up != NULL) {
		c->c_shut = true;
		srv_up_close(c->c_up);
	}
}

/* Start the WebSocket close handshake; the transport is closed when the
 * peer answers (wi_closed) or after MSSP_AFE_CLOSE_MS. */
static void
conn_close(struct afe_conn *c, uint16_t code, const char *reason)
{
	if (c->c_state == CS_CLOSING || c->c_gone)
		return;
	/* the reason is one of our fixed strings: never a code, a MAC or
	 * anything the peer sent */
	if (code == AFE_CLOSE_AUTH || code == AFE_CLOSE_POLICY)
		LOG_EV(code == AFE_CLOSE_POLICY ? "afe.policy_close"
		       : c->c_act		 ? "afe.activation_refused"
						 : "afe.auth_refused",
		       "peer", c->c_up ? srv_up_peer_ip(c->c_up) : "-", "why", reason);
	c->c_state = CS_CLOSING;
	conn_unregister(c);
	if (c->c_timer != NULL)
		event_del(c->c_timer);
	conn_arm(c, MSSP_AFE_CLOSE_MS);
	/* a failed ws_close may or may not have run wi_closed: either way
	 * the transport goes now */
	if (ws_close(c->c_ws, code, reason) != 0)
		conn_shut(c);
}

/* ---- ws.h callbacks ---------------------------------------------------- */

static int
io_write(void *arg, const uint8_t *data, size_t len)
{
	struct afe_conn *c = arg;

	if (c->c_up == NULL || c->c_shut)
		return -1;
	return srv_up_write(c->c_up, data, len);
}

static void
io_closed(void *arg, uint16_t code)
{
	struct afe_conn *c = arg;

	(void)code;
	c->c_state = CS_CLOSING;
	conn_unregister(c);
	conn_shut(c);
}

struct auth_job {
	struct afe *j_afe;
	uint64_t j_conn;
	unsigned j_worker;
	int j_result; /* 0 ok, AFE_CLOSE_AUTH or AFE_CLOSE_TRY_LATER */
	char j_device[MSSP_KEYSTORE_MAX_ID + 1];
	uint8_t j_challenge[E2E_CHALLENGE_LEN];
	uint8_t j_nonce[E2E_NONCE_LEN];
	uint8_t j_sig[MSSP_AFE_MAX_SIG];
	size_t j_siglen;
};

static void auth_run(void *ctx, void *job);

/* Field `key` of obj as a string of 1..max bytes, else NULL. */
static const char *
json_str(json_t *obj, const char *key, size_t max, size_t *len)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	if (*len == 0 || *len > max)
		return NULL;
	return json_string_value(v);
}

/* {"t":"auth","d":...,"n":...,"s":...} in CS_CHALLENGE. */
static void
conn_on_auth(struct afe_conn *c, json_t *obj)
{
	struct afe *a = c->c_afe;
	struct auth_job *j;
	const char *d, *n, *s;
	size_t dlen = 0, nlen = 0, slen = 0, got = 0;

	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		conn_close(c, AFE_CLOSE_INTERNAL, "memory");
		return;
	}
	d = json_str(obj, "d", MSSP_KEYSTORE_MAX_ID, &dlen);
	n = json_str(obj, "n", AFE_B64_LEN(E2E_NONCE_LEN), &nlen);
	s = json_str(obj, "s", AFE_B64_LEN(MSSP_AFE_MAX_SIG), &slen);
	if (json_object_size(obj) != 4 || d == NULL || n == NULL || s == NULL ||
	    !afe_id_ok(d, dlen) || b64_decode(n, nlen, j->j_nonce, E2E_NONCE_LEN, &got) != 0 ||
	    got != E2E_NONCE_LEN ||
	    b64_decode(s, slen, j->j_sig, sizeof(j->j_sig), &j->j_siglen) != 0) {
		free(j);
		atomic_fetch_add(&a->s_auth_failed, 1);
		conn_close(c, AFE_CLOSE_AUTH, "bad auth");
		return;
	}
	memcpy(j->j_device, d, dlen);
	memcpy(c->c_device, d, dlen);
	c->c_device[dlen] = '\0';
	memcpy(j->j_challenge, c->c_challenge, E2E_CHALLENGE_LEN);
	j->j_afe = a;
	j->j_conn = c->c_id;
	j->j_worker = c->c_w->w_idx;

	pthread_mutex_lock(&a->a_mu);
	a->a_jobs++;
	pthread_mutex_unlock(&a->a_mu);
	if (atomic_load(&a->a_stopping) || pool_submit(a->a_pool, auth_run, j) != 0) {
		pthread_mutex_lock(&a->a_mu);
		if (--a->a_jobs == 0)
			pthread_cond_broadcast(&a->a_cv);
		pthread_mutex_unlock(&a->a_mu);
		free(j);
		conn_close(c, AFE_CLOSE_TRY_LATER, "busy");
		return;
	}
	c->c_state = CS_VERIFYING;
}

/* {"t":"e2e","b":...} in CS_READY. */
static void
conn_on_blob(struct afe_conn *c, json_t *obj)
{
	struct afe *a = c->c_afe;
	const char *b;
	size_t blen, n;
	uint8_t *blob;

	b = json_str(obj, "b", AFE_B64_LEN(AFE_MAX_BLOB), &blen);
	if (json_object_size(obj) != 2 || b == NULL) {
		conn_close(c, AFE_CLOSE_POLICY, "bad e2e");
		return;
	}
	blob = malloc(blen / 4 * 3 + 1);
	if (blob == NULL) {
		conn_close(c, AFE_CLOSE_INTERNAL, "memory");
		return;
	}
	if (b64_decode(b, blen, blob, AFE_MAX_BLOB, &n) != 0) {
		free(blob);
		conn_close(c, AFE_CLOSE_POLICY, "bad e2e");
		return;
	}
	atomic_fetch_add(&a->s_blobs_in, 1);
	if (a->a_ops != NULL && a->a_ops->ao_blob != NULL)
		a->a_ops->ao_blob(a->a_arg, c->c_device, c->c_id, blob, n);
	free(blob);
}

/* ---- device activation (me.md "Device binding by activation code") ----- */

struct act_job {
	struct afe *j_afe;
	struct reg *j_reg;
	uint64_t j_conn;
	unsigned j_worker;
	int j_result;		/* 0 bound, AFE_CLOSE_AUTH, AFE_CLOSE_TRY_LATER */
	int j_reg_status;	/* reg_err.status of a refusal, for the log */
	char j_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char j_device[MSSP_KEYSTORE_MAX_ID + 1];
	uint8_t *j_t;		/* the transcript T (malloc)           */
	size_t j_tlen;
	uint8_t j_spki[MSSP_KEYSTORE_MAX_SPKI]; /* the device key      */
	size_t j_spki_len;
	uint8_t j_sig[MSSP_AFE_MAX_SIG];
	size_t j_siglen;
	uint8_t j_app_mac[32];
	uint8_t j_key[E2E_KEY_LEN];	/* the channel key: secret      */
	uint8_t j_home_mac[32];
};

static void act_run(void *ctx, void *job);

static void
act_job_free(struct act_job *j)
{
	if (j == NULL)
		return;
	free(j->j_t);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* Close an activation attempt with 4001 (counted; logged by conn_close
 * with the fixed reason). */
static void
act_refuse(struct afe_conn *c, const char *why)
{
	atomic_fetch_add(&c->c_afe->s_act_failed, 1);
	conn_close(c, AFE_CLOSE_AUTH, why);
}

/* An MSISDN as the phone may send it: "+" optional, then digits only
 * (reg normalises it; T covers it as sent). */
static bool
afe_msisdn_ok(const char *s, size_t len)
{
	size_t i = s[0] == '+' ? 1 : 0;

	if (len <= i || len > MSSP_STORE_MAX_MSISDN)
		return false;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* ---- activation attempt limits ---------------------------------------- */

/* The limiter key of a peer address: "i:" + the address, an IPv6 one cut
 * to its /64 (one subscriber line holds a whole /64; counting each of its
 * addresses would count nothing). */
static void
lim_ip_key(const char *ip, char out[MSSP_AFE_ACT_LIMIT_KEY])
{
	struct in6_addr a6;
	char txt[INET6_ADDRSTRLEN];

	if (ip != NULL && strchr(ip, ':') != NULL && inet_pton(AF_INET6, ip, &a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a6)) {
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, txt, sizeof(txt)) != NULL) {
			snprintf(out, MSSP_AFE_ACT_LIMIT_KEY, "i:%s/64", txt);
			return;
		}
	}
	snprintf(out, MSSP_AFE_ACT_LIMIT_KEY, "i:%s", ip != NULL ? ip : "-");
}

/* The entry of `key` (found, or a free or least recently used one of its
 * set taken over).  a_lim_mu held. */
static struct afe_lim *
lim_entry(struct afe *a, const char *key, int64_t now)
{
	uint64_t h = 1469598103934665603ULL ^ a->a_lim_seed;
	struct afe_lim *set, *victim;
	const char *p;

	for (p = key; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	set = &a->a_lim[(size_t)(h % (MSSP_AFE_ACT_LIMIT_SLOTS / AFE_LIM_WAYS)) * AFE_LIM_WAYS];
	victim = NULL;
	for (unsigned i = 0; i < AFE_LIM_WAYS; i++) {
		struct afe_lim *l = &set[i];

		if (l->l_key[0] == '\0') {
			if (victim == NULL || victim->l_key[0] != '\0')
				victim = l; /* a free entry beats any used one */
		} else if (strcmp(l->l_key, key) == 0) {
			return l;
		} else if (victim == NULL || (victim->l_key[0] != '\0' && l->l_used < victim->l_used)) {
			victim = l;
		}
	}
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->l_key, sizeof(victim->l_key), "%s", key);
	victim->l_tat = now;
	return victim;
}

/* One attempt against `key`, at most `count` per window (GCRA: a burst
 * of `count`, then one per window / count).  true when let through (and
 * counted); a refusal is not counted, so a source that keeps trying is
 * let through again as soon as its rate drops.  a_lim_mu held. */
static bool
lim_take(struct afe *a, const char *key, unsigned count, int64_t now, bool *first_refusal)
{
	struct afe_lim *l = lim_entry(a, key, now);
	int64_t step = MSSP_AFE_ACT_LIMIT_WINDOW_MS / (int64_t)count;
	int64_t tat = l->l_tat > now ? l->l_tat : now;

	l->l_used = now;
	if (tat - now > MSSP_AFE_ACT_LIMIT_WINDOW_MS - step) {
		*first_refusal = !l->l_warned;
		l->l_warned = true;
		return false;
	}
	l->l_tat = tat + step;
	l->l_warned = false;
	return true;
}

/* One activation attempt against the limit of `key` ("i:" address or
 * "m:" MSISDN): false (counted, logged once per burst) when over it. */
static bool
act_allowed(struct afe_conn *c, const char *key, unsigned count, const char *which)
{
	struct afe *a = c->c_afe;
	const char *ip = c->c_up != NULL ? srv_up_peer_ip(c->c_up) : NULL;
	int64_t now = clock_mono_ms();
	bool ok, first = false;

	pthread_mutex_lock(&a->a_lim_mu);
	ok = lim_take(a, key, count, now, &first);
	pthread_mutex_unlock(&a->a_lim_mu);
	if (!ok) {
		atomic_fetch_add(&a->s_act_limited, 1);
		/* one line per burst and key, not one per refused attempt */
		if (first)
			LOG_EV("afe.activation_limited", "peer", ip != NULL ? ip : "-", "limit", which);
	}
	return ok;
}

/* "activate" from this connection's address: within its limit?  Only the
 * address: a bare "activate" costs the sender nothing but a handshake, so
 * counting it against the MSISDN would let anyone keep a victim's number
 * blocked (review 2, F3); the MSISDN pays per proof (act_proof_allowed). */
static bool
act_ip_allowed(struct afe_conn *c)
{
	char key[MSSP_AFE_ACT_LIMIT_KEY];

	lim_ip_key(c->c_up != NULL ? srv_up_peer_ip(c->c_up) : NULL, key);
	return act_allowed(c, key, c->c_afe->a_lim_ip, "address");
}

/* A well-formed proof for this connection's MSISDN, about to go to the
 * store (a try of the code, an audit record): within the MSISDN's limit
 * (any source)? */
static bool
act_proof_allowed(struct afe_conn *c)
{
	char key[MSSP_AFE_ACT_LIMIT_KEY];

	snprintf(key, sizeof(key), "m:%s", c->c_msisdn[0] == '+' ? c->c_msisdn + 1 : c->c_msisdn);
	return act_allowed(c, key, c->c_afe->a_lim_msisdn, "msisdn");
}

/* {"t":"activate","m":MSISDN,"n":b64(nonce16)} in CS_CHALLENGE. */
static void
conn_on_activate(struct afe_conn *c, json_t *obj)
{
	struct afe *a = c->c_afe;
	const char *m, *n;
	size_t mlen = 0, nlen = 0, got = 0;
	struct pki_err perr;

	c->c_act = true; /* from here on, one attempt: anything else is 4001 */
	if (a->a_regmod == NULL) {
		act_refuse(c, "activation unavailable");
		return;
	}
	m = json_str(obj, "m", MSSP_STORE_MAX_MSISDN, &mlen);
	n = json_str(obj, "n", AFE_B64_LEN(E2E_NONCE_LEN), &nlen);
	if (json_object_size(obj) != 3 || m == NULL || n == NULL || !afe_msisdn_ok(m, mlen) ||
	    b64_decode(n, nlen, c->c_app_nonce, E2E_NONCE_LEN, &got) != 0 || got != E2E_NONCE_LEN) {
		act_refuse(c, "bad activate");
		return;
	}
	memcpy(c->c_msisdn, m, mlen);
	c->c_msisdn[mlen] = '\0';
	/* before any key work: a flood of attempts from one address is
	 * turned away here (the MSISDN is counted when a proof arrives) */
	if (!act_ip_allowed(c)) {
		conn_close(c, AFE_CLOSE_TRY_LATER, "try later");
		return;
	}
	/* a fresh binding key per attempt: a P-256 key generation is cheap
	 * enough for the loop thread (no I/O) */
	c->c_bind = e2e_binding_keygen(&perr);
	if (c->c_bind == NULL || RAND_bytes(c->c_home_nonce, E2E_NONCE_LEN) != 1 ||
	    e2e_spki_der(c->c_bind, &c->c_bind_spki, &c->c_bind_spki_len, &perr) != 0 ||
	    c->c_bind_spki_len > MSSP_KEYSTORE_MAX_SPKI) {
		conn_close(c, AFE_CLOSE_INTERNAL, "activation key");
		return;
	}
	c->c_state = CS_ACT_HELLO;
	if (conn_send_json(c, json_pack("{s:s,s:o,s:o}", "t", "activate_hello", "n",
					b64_json(c->c_home_nonce, E2E_NONCE_LEN), "b",
					b64_json(c->c_bind_spki, c->c_bind_spki_len))) != 0)
		conn_close(c, AFE_CLOSE_INTERNAL, "activation hello");
}

/* {"t":"activate_proof","k","b","s","p"} in CS_ACT_HELLO.  Everything that
 * can be refused without the store is refused here: the store (and the
 * code's try counter) is touched only by a well-formed proof. */
static void
conn_on_proof(struct afe_conn *c, json_t *obj)
{
	struct afe *a = c->c_afe;
	struct act_job *j;
	const char *k, *b, *s, *p;
	size_t klen = 0, blen = 0, slen = 0, plen = 0, got = 0, bspki_len = 0;
	uint8_t bspki[MSSP_KEYSTORE_MAX_SPKI];
	struct pki_err perr;

	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		conn_close(c, AFE_CLOSE_INTERNAL, "memory");
		return;
	}
	k = json_str(obj, "k", AFE_B64_LEN(MSSP_KEYSTORE_MAX_SPKI), &klen);
	b = json_str(obj, "b", AFE_B64_LEN(MSSP_KEYSTORE_MAX_SPKI), &blen);
	s = json_str(obj, "s", AFE_B64_LEN(MSSP_AFE_MAX_SIG), &slen);
	p = json_str(obj, "p", AFE_B64_LEN(sizeof(j->j_app_mac)), &plen);
	if (json_object_size(obj) != 5 || k == NULL || b == NULL || s == NULL || p == NULL ||
	    b64_decode(k, klen, j->j_spki, sizeof(j->j_spki), &j->j_spki_len) != 0 ||
	    b64_decode(b, blen, bspki, sizeof(bspki), &bspki_len) != 0 ||
	    b64_decode(s, slen, j->j_sig, sizeof(j->j_sig), &j->j_siglen) != 0 ||
	    b64_decode(p, plen, j->j_app_mac, sizeof(j->j_app_mac), &got) != 0 ||
	    got != sizeof(j->j_app_mac)) {
		act_job_free(j);
		act_refuse(c, "bad activate_proof");
		return;
	}
	j->j_t = e2e_activation_transcript(c->c_msisdn, c->c_app_nonce, c->c_home_nonce,
					   c->c_bind_spki, c->c_bind_spki_len, bspki, bspki_len,
					   j->j_spki, j->j_spki_len, &j->j_tlen);
	if (j->j_t == NULL) {
		act_job_free(j);
		conn_close(c, AFE_CLOSE_INTERNAL, "memory");
		return;
	}
	reg_new_device_id(j->j_device);
	/* the app's binding key must be a P-256 point: refused here */
	if (e2e_binding_derive(c->c_bind, bspki, bspki_len, j->j_device, j->j_key, &perr) != 0) {
		act_job_free(j);
		act_refuse(c, "bad activate_proof");
		return;
	}
	/* the binding key has done its one job */
	EVP_PKEY_free(c->c_bind);
	c->c_bind = NULL;
	/* only now, before the pool and the store (each proof a try of an
	 * open code, a store write and an audit record): the MSISDN's limit */
	if (!act_proof_allowed(c)) {
		act_job_free(j);
		conn_close(c, AFE_CLOSE_TRY_LATER, "try later");
		return;
	}
	memcpy(j->j_msisdn, c->c_msisdn, sizeof(j->j_msisdn));
	j->j_afe = a;
	j->j_reg = a->a_regmod;
	j->j_conn = c->c_id;
	j->j_worker = c->c_w->w_idx;

	pthread_mutex_lock(&a->a_mu);
	a->a_jobs++;
	pthread_mutex_unlock(&a->a_mu);
	if (atomic_load(&a->a_stopping) || pool_submit(a->a_pool, act_run, j) != 0) {
		pthread_mutex_lock(&a->a_mu);
		if (--a->a_jobs == 0)
			pthread_cond_broadcast(&a->a_cv);
		pthread_mutex_unlock(&a->a_mu);
		act_job_free(j);
		conn_close(c, AFE_CLOSE_TRY_LATER, "busy");
		return;
	}
	c->c_state = CS_ACTIVATING;
}

static void
io_message(void *arg, const uint8_t *msg, size_t len, bool binary)
{
	struct afe_conn *c = arg;
	json_t *obj, *t;
	const char *type;

	if (c->c_state == CS_CLOSING)
		return;
	obj = binary ? NULL : json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, NULL);
	t = json_object_get(obj, "t");
	type = json_is_string(t) ? json_string_value(t) : NULL;
	if (c->c_act) {
		/* an activation connection: the proof once, in its turn;
		 * anything else (a second "activate", an "auth", a blob, a
		 * frame while reg decides) ends the attempt */
		if (c->c_state == CS_ACT_HELLO && type != NULL &&
		    strcmp(type, "activate_proof") == 0)
			conn_on_proof(c, obj);
		else
			act_refuse(c, "unexpected message");
	} else if (type == NULL) {
		/* not our protocol at all; before "ready" it is a failed auth */
		if (c->c_state == CS_CHALLENGE)
			atomic_fetch_add(&c->c_afe->s_auth_failed, 1);
		conn_close(c, c->c_state == CS_CHALLENGE ? AFE_CLOSE_AUTH : AFE_CLOSE_POLICY,
			   "bad message");
	} else if (c->c_state == CS_CHALLENGE && strcmp(type, "auth") == 0) {
		conn_on_auth(c, obj);
	} else if (c->c_state == CS_CHALLENGE && strcmp(type, "activate") == 0) {
		conn_on_activate(c, obj);
	} else if (c->c_state == CS_READY && strcmp(type, "e2e") == 0) {
		conn_on_blob(c, obj);
	} else {
		/* a blob before "ready", anything while verifying, a second
		 * auth, an unknown type */
		conn_close(c, AFE_CLOSE_POLICY, "unexpected message");
	}
	json_decref(obj);
}

static const struct ws_io afe_ws_io = {
	.wi_write = io_write,
	.wi_message = io_message,
	.wi_closed = io_closed,
};

/* ---- transport callbacks and the timer --------------------------------- */

static void
up_data(struct srv_up *up, void *arg, const uint8_t *data, size_t len)
{
	struct afe_conn *c = arg;

	if (c->c_gone)
		return;
	/* may run inside srv_req_upgrade, before it returned the handle */
	c->c_up = up;
	conn_enter(c);
	ws_feed(c->c_ws, data, len);
	conn_leave(c);
}

static void
up_closed(struct srv_up *up, void *arg)
{
	struct afe_conn *c = arg;
	struct afe *a = c->c_afe;

	(void)up;
	c->c_up = NULL;
	c->c_gone = true;
	c->c_state = CS_CLOSING;
	if (c->c_timer != NULL)
		event_del(c->c_timer);
	conn_unregister(c);
	tab_del(c->c_w, c);
	if (c->c_authed) {
		c->c_authed = false;
		if (a->a_ops != NULL && a->a_ops->ao_offline != NULL)
			a->a_ops->ao_offline(a->a_arg, c->c_device, c->c_id);
	}
	if (c->c_depth == 0)
		conn_free(c);
}

static const struct srv_up_ops afe_up_ops = {
	.uo_data = up_data,
	.uo_closed = up_closed,
};

static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct afe_conn *c = arg;
	struct afe *a = c->c_afe;

	(void)fd;
	(void)what;
	if (c->c_gone)
		return;
	conn_enter(c);
	switch (c->c_state) {
	case CS_CHALLENGE:
	case CS_VERIFYING:
		atomic_fetch_add(&a->s_auth_failed, 1);
		conn_close(c, AFE_CLOSE_AUTH, "auth timeout");
		break;
	case CS_ACT_HELLO:
	case CS_ACTIVATING:
		/* the auth deadline covers the whole activation exchange */
		act_refuse(c, "activation timeout");
		break;
	case CS_READY:
		/* the pong resets the server's idle deadline */
		if (ws_ping(c->c_ws) == 0)
			conn_arm(c, a->a_ping_ms);
		break;
	case CS_CLOSING:
		conn_shut(c);
		break;
	}
	conn_leave(c);
}

/* ---- authentication: pool thread, then back on the worker -------------- */

static void auth_done(void *arg);

static void
auth_run(void *ctx, void *job)
{
	struct node_worker *nw = ctx;
	struct auth_job *j = job;
	struct afe *a = j->j_afe;
	struct store_device dev;
	struct store_err serr;
	struct pki_err perr;

	memset(&dev, 0, sizeof(dev));
	if (store_device_get(nw->nw_store, j->j_device, &dev, &serr) != 0) {
		/* unknown device: refused; anything else: the store's trouble,
		 * not the device's, so the app retries instead of re-binding */
		j->j_result = serr.status == 101 ? AFE_CLOSE_AUTH : AFE_CLOSE_TRY_LATER;
	} else if (dev.sd_state != 1 || dev.sd_auth_spki_len == 0 ||
		   e2e_auth_verify(dev.sd_auth_spki, dev.sd_auth_spki_len, j->j_device,
				   j->j_challenge, j->j_nonce, j->j_sig, j->j_siglen, &perr) != 0) {
		j->j_result = AFE_CLOSE_AUTH;
	} else {
		j->j_result = 0;
	}
	/* the record carries the device's channel key */
	OPENSSL_cleanse(&dev, sizeof(dev));

	if (loop_call(srv_worker_loop(a->a_srv, j->j_worker), auth_done, j) != 0)
		free(j); /* the server is stopping: the connection goes anyway */
	pthread_mutex_lock(&a->a_mu);
	if (--a->a_jobs == 0)
		pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

static void close_job(void *arg);

struct close_req {
	struct afe *cr_afe;
	unsigned cr_worker;
	uint64_t cr_conn;
	uint16_t cr_code;
};

/* Close connection `id` of worker `worker` (any thread but that one may
 * call; on that one it is done at once). */
static void
close_remote(struct afe *a, struct afe_worker *here, unsigned worker, uint64_t id, uint16_t code)
{
	struct close_req *cr;

	if (here != NULL && here->w_idx == worker) {
		struct afe_conn *c = tab_find(here, id);

		if (c != NULL) {
			conn_enter(c);
			conn_close(c, code, code == AFE_CLOSE_REPLACED ? "replaced" : "closing");
			conn_leave(c);
		}
		return;
	}
	cr = malloc(sizeof(*cr));
	if (cr == NULL)
		return;
	cr->cr_afe = a;
	cr->cr_worker = worker;
	cr->cr_conn = id;
	cr->cr_code = code;
	if (loop_call(a->a_workers[worker].w_loop, close_job, cr) != 0)
		free(cr);
}

static void
close_job(void *arg)
{
	struct close_req *cr = arg;
	struct afe *a = cr->cr_afe;

	close_remote(a, &a->a_workers[cr->cr_worker], cr->cr_worker, cr->cr_conn, cr->cr_code);
	free(cr);
}

static void
auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct afe *a = j->j_afe;
	struct afe_worker *w = &a->a_workers[j->j_worker];
	struct afe_conn *c = tab_find(w, j->j_conn);
	uint64_t old_session = 0;
	unsigned old_worker = 0;
	int rc;

	if (c == NULL || c->c_gone || c->c_state != CS_VERIFYING)
		goto out; /* closed meanwhile */
	conn_enter(c);
	if (j->j_result != 0) {
		if (j->j_result == AFE_CLOSE_AUTH)
			atomic_fetch_add(&a->s_auth_failed, 1);
		conn_close(c, (uint16_t)j->j_result,
			   j->j_result == AFE_CLOSE_AUTH ? "auth failed" : "try later");
		goto leave;
	}
	rc = reg_claim(a, c->c_device, c->c_id, w->w_idx, &old_session, &old_worker);
	if (rc < 0) {
		conn_close(c, atomic_load(&a->a_stopping) ? AFE_CLOSE_GOING_AWAY : AFE_CLOSE_TRY_LATER,
			   "full");
		goto leave;
	}
	c->c_registered = true;
	c->c_authed = true;
	c->c_state = CS_READY;
	atomic_fetch_add(&a->s_auth_ok, 1);
	if (rc == 1 && old_session != c->c_id)
		close_remote(a, w, old_worker, old_session, AFE_CLOSE_REPLACED);
	event_del(c->c_timer);
	conn_arm(c, a->a_ping_ms);
	conn_send_json(c, json_pack("{s:s}", "t", "ready"));
	if (a->a_ops != NULL && a->a_ops->ao_online != NULL && c->c_state == CS_READY)
		a->a_ops->ao_online(a->a_arg, c->c_device, c->c_id, j->j_nonce);
leave:
	conn_leave(c);
out:
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* ---- activation: pool thread, then back on the worker ------------------- */

static void afe_act_done(void *arg);

static void
act_run(void *ctx, void *job)
{
	struct node_worker *nw = ctx;
	struct act_job *j = job;
	struct afe *a = j->j_afe;
	struct reg_err e;
	struct reg_activation av = {
		.av_msisdn = j->j_msisdn,
		.av_transcript = j->j_t,
		.av_transcript_len = j->j_tlen,
		.av_device_spki = j->j_spki,
		.av_device_spki_len = j->j_spki_len,
		.av_device_sig = j->j_sig,
		.av_device_sig_len = j->j_siglen,
		.av_channel_key = j->j_key,
		.av_device_id = j->j_device,
	};

	memset(&e, 0, sizeof(e));
	memcpy(av.av_app_mac, j->j_app_mac, sizeof(av.av_app_mac));
	if (reg_activate(j->j_reg, nw->nw_store, &av, clock_wall_ms(), j->j_home_mac, &e) == 0) {
		j->j_result = 0;
	} else {
		/* a refusal is the phone's (4001); the store or the audit
		 * failing is ours, and the code is not spent: try again */
		j->j_reg_status = e.status;
		j->j_result = e.status >= 500 ? AFE_CLOSE_TRY_LATER : AFE_CLOSE_AUTH;
	}
	OPENSSL_cleanse(&av, sizeof(av));
	/* the channel key is in the store now (or nowhere) */
	OPENSSL_cleanse(j->j_key, sizeof(j->j_key));

	if (loop_call(srv_worker_loop(a->a_srv, j->j_worker), afe_act_done, j) != 0)
		act_job_free(j);
	pthread_mutex_lock(&a->a_mu);
	if (--a->a_jobs == 0)
		pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

static void
afe_act_done(void *arg)
{
	struct act_job *j = arg;
	struct afe *a = j->j_afe;
	struct afe_conn *c = tab_find(&a->a_workers[j->j_worker], j->j_conn);
	char st[12];

	if (c == NULL || c->c_gone || c->c_state != CS_ACTIVATING) {
		/* closed meanwhile (deadline, peer): a device bound now is
		 * unknown to its phone, which activates again with a new
		 * code; the RA can delete it */
		if (j->j_result == 0)
			LOG_EV("afe.activation_unanswered", "device", j->j_device);
		goto out;
	}
	conn_enter(c);
	if (j->j_result != 0) {
		/* 410: no open code for the MSISDN (none, used, expired,
		 * locked): counted here, not audited by reg (a flood of them
		 * must not queue on the audit lock) */
		if (j->j_reg_status == 410)
			atomic_fetch_add(&a->s_act_nocode, 1);
		snprintf(st, sizeof(st), "%d", j->j_reg_status);
		LOG_EV("afe.activation_failed", "peer", c->c_up ? srv_up_peer_ip(c->c_up) : "-",
		       "status", st);
		if (j->j_result == AFE_CLOSE_AUTH)
			act_refuse(c, "activation refused");
		else
			conn_close(c, AFE_CLOSE_TRY_LATER, "try later");
		goto leave;
	}
	atomic_fetch_add(&a->s_act_ok, 1);
	LOG_EV("afe.activated", "device", j->j_device);
	if (conn_send_json(c, json_pack("{s:s,s:s,s:o}", "t", "activated", "d", j->j_device, "p",
					b64_json(j->j_home_mac, sizeof(j->j_home_mac)))) != 0)
		conn_close(c, AFE_CLOSE_INTERNAL, "activated");
	else
		conn_close(c, 1000, "activated");
leave:
	conn_leave(c);
out:
	act_job_free(j);
}

/* ---- the handler (worker thread) ---------------------------------------- */

static void
reply_simple(struct srv_req *req, int status, const char *text, const struct srv_header *h,
	     size_t nh)
{
	struct srv_response rs = {
		.rs_status = status,
		.rs_content_type = "text/plain",
		.rs_headers = h,
		.rs_nheaders = nh,
		.rs_body = text,
		.rs_body_len = strlen(text),
	};

	if (srv_reply_ex(req, &rs) != 0)
		srv_reply(req, 500, NULL, NULL, 0);
}

void
afe_handler(struct srv_req *req, void *arg)
{
	struct afe *a = arg;
	const char *path = srv_req_path(req), *q;
	size_t plen;
	char accept[WS_ACCEPT_LEN + 1];
	int status = 400;
	struct afe_worker *w;
	struct afe_conn *c;
	struct srv_up *up;

	q = strchr(path, '?');
	plen = q != NULL ? (size_t)(q - path) : strlen(path);
	if (plen != strlen(AFE_PATH) || memcmp(path, AFE_PATH, plen) != 0) {
		reply_simple(req, 404, "not found\n", NULL, 0);
		return;
	}
	if (strcmp(srv_req_method(req), "GET") != 0) {
		struct srv_header h = { "Allow", "GET" };

		reply_simple(req, 405, "method not allowed\n", &h, 1);
		return;
	}
	if (ws_server_accept(srv_req_http(req), accept, &status) != 0) {
		struct srv_header h = { "Sec-WebSocket-Version", "13" };

		reply_simple(req, status, "bad websocket upgrade\n", &h, status == 426 ? 1 : 0);
		return;
	}
	if (a->a_srv == NULL || srv_req_worker(req) >= a->a_nworkers ||
	    atomic_load(&a->a_stopping)) {
		struct srv_header h = { "Retry-After", "5" };

		reply_simple(req, 503, "unavailable\n", &h, 1);
		return;
	}
	atomic_store(&a->a_served, true);
	w = &a->a_workers[srv_req_worker(req)];

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->c_afe = a;
	c->c_w = w;
	c->c_id = atomic_fetch_add(&a->a_next_id, 1);
	c->c_state = CS_CHALLENGE;
	c->c_ws = ws_new(false, &afe_ws_io, c, AFE_MAX_MSG);
	c->c_timer = event_new(loop_base(w->w_loop), -1, 0, conn_timer, c);
	if (c->c_ws == NULL || c->c_timer == NULL ||
	    RAND_bytes(c->c_challenge, sizeof(c->c_challenge)) != 1 || tab_add(w, c) != 0)
		goto fail;

	{
		struct srv_header h[2] = {
			{ "Upgrade", "websocket" },
			{ "Sec-WebSocket-Accept", accept },
		};
		struct srv_response rs = {
			.rs_status = 101, .rs_headers = h, .rs_nheaders = 2
		};

		conn_enter(c);
		up = srv_req_upgrade(req, &rs, &afe_up_ops, c, a->a_idle_ms);
		if (up == NULL) {
			tab_del(w, c);
			c->c_depth = 0;
			reply_simple(req, 400, "cannot upgrade\n", NULL, 0);
			conn_free(c);
			return;
		}
	}
	if (!c->c_gone) {
		c->c_up = up;
		conn_arm(c, a->a_auth_ms);
		if (conn_send_json(c, json_pack("{s:s,s:o}", "t", "challenge", "c",
						b64_json(c->c_challenge, sizeof(c->c_challenge)))) != 0)
			conn_close(c, AFE_CLOSE_INTERNAL, "challenge");
	}
	conn_leave(c);
	return;
fail:
	if (c != NULL)
		conn_free(c);
	{
		struct srv_header h = { "Retry-After", "5" };

		reply_simple(req, 503, "unavailable\n", &h, 1);
	}
}

/* ---- the public API --------------------------------------------------- */

struct afe *
afe_new(struct pool *pool, const struct afe_ops *ops, void *arg, struct push_provider *push)
{
	struct afe *a;

	if (pool == NULL)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->a_pool = pool;
	a->a_ops = ops;
	a->a_arg = arg;
	a->a_push = push;
	a->a_auth_ms = MSSP_AFE_AUTH_MS;
	a->a_ping_ms = MSSP_AFE_PING_MS;
	a->a_idle_ms = MSSP_AFE_IDLE_MS;
	atomic_init(&a->a_next_id, 1);
	a->a_reg_cap = MSSP_AFE_REG_MIN_BUCKETS;
	a->a_reg = calloc(a->a_reg_cap, sizeof(*a->a_reg));
	a->a_lim = calloc(MSSP_AFE_ACT_LIMIT_SLOTS, sizeof(*a->a_lim));
	a->a_lim_ip = MSSP_AFE_ACT_PER_IP_MIN;
	a->a_lim_msisdn = MSSP_AFE_ACT_PER_MSISDN_MIN;
	if (a->a_reg == NULL || a->a_lim == NULL ||
	    RAND_bytes((unsigned char *)&a->a_reg_seed, sizeof(a->a_reg_seed)) != 1 ||
	    RAND_bytes((unsigned char *)&a->a_lim_seed, sizeof(a->a_lim_seed)) != 1) {
		free(a->a_reg);
		free(a->a_lim);
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->a_mu, NULL);
	pthread_mutex_init(&a->a_lim_mu, NULL);
	pthread_cond_init(&a->a_cv, NULL);
	return a;
}

void
afe_set_timeouts(struct afe *a, unsigned auth_ms, unsigned ping_ms, unsigned idle_ms)
{
	a->a_auth_ms = auth_ms != 0 ? auth_ms : MSSP_AFE_AUTH_MS;
	a->a_ping_ms = ping_ms != 0 ? ping_ms : MSSP_AFE_PING_MS;
	a->a_idle_ms = idle_ms != 0 ? idle_ms : MSSP_AFE_IDLE_MS;
}

/* 0: the default; above MSSP_AFE_ACT_LIMIT_MAX (one attempt per
 * millisecond: lim_take's step would be 0) cut to it. */
static unsigned
act_limit(unsigned v, unsigned def)
{
	if (v == 0)
		return def;
	return v > MSSP_AFE_ACT_LIMIT_MAX ? MSSP_AFE_ACT_LIMIT_MAX : v;
}

void
afe_set_act_limits(struct afe *a, unsigned per_ip_per_min, unsigned per_msisdn_per_min)
{
	a->a_lim_ip = act_limit(per_ip_per_min, MSSP_AFE_ACT_PER_IP_MIN);
	a->a_lim_msisdn = act_limit(per_msisdn_per_min, MSSP_AFE_ACT_PER_MSISDN_MIN);
}

void
afe_set_reg(struct afe *a, struct reg *r)
{
	a->a_regmod = r;
}

void
afe_attach(struct afe *a, struct srv *s)
{
	unsigned n = srv_workers(s);

	if (a->a_srv != NULL || n == 0)
		return;
	a->a_workers = calloc(n, sizeof(*a->a_workers));
	if (a->a_workers == NULL)
		return; /* the handler answers 503 */
	for (unsigned i = 0; i < n; i++) {
		a->a_workers[i].w_afe = a;
		a->a_workers[i].w_idx = i;
		a->a_workers[i].w_loop = srv_worker_loop(s, i);
	}
	a->a_nworkers = n;
	a->a_srv = s;
}

struct send_job {
	struct afe *sj_afe;
	unsigned sj_worker;
	uint64_t sj_session;
	size_t sj_len;
	uint8_t sj_blob[];
};

static void
send_run(void *arg)
{
	struct send_job *j = arg;
	struct afe *a = j->sj_afe;
	struct afe_conn *c = tab_find(&a->a_workers[j->sj_worker], j->sj_session);

	/* the session may have ended or been replaced since afe_send */
	if (c != NULL && !c->c_gone && c->c_state == CS_READY) {
		conn_enter(c);
		if (conn_send_json(c, json_pack("{s:s,s:o}", "t", "e2e", "b",
						b64_json(j->sj_blob, j->sj_len))) == 0)
			atomic_fetch_add(&a->s_blobs_out, 1);
		conn_leave(c);
	}
	free(j);
}

int
afe_send(struct afe *a, const char *device_id, uint64_t session, const uint8_t *blob,
	 size_t len)
{
	struct send_job *j;
	uint64_t cur;
	unsigned worker;

	if (a == NULL || device_id == NULL || blob == NULL || len == 0 || len > AFE_MAX_BLOB ||
	    a->a_srv == NULL)
		return -1;
	if (!reg_lookup(a, device_id, &cur, &worker) || (session != 0 && session != cur)) {
		atomic_fetch_add(&a->s_send_offline, 1);
		return -1;
	}
	j = malloc(sizeof(*j) + len);
	if (j == NULL)
		return -1;
	j->sj_afe = a;
	j->sj_worker = worker;
	j->sj_session = cur;
	j->sj_len = len;
	memcpy(j->sj_blob, blob, len);
	if (loop_call(a->a_workers[worker].w_loop, send_run, j) != 0) {
		free(j);
		return -1;
	}
	return 0;
}

bool
afe_online(struct afe *a, const char *device_id)
{
	uint64_t s;
	unsigned w;

	return a != NULL && device_id != NULL && reg_lookup(a, device_id, &s, &w);
}

uint64_t
afe_session(struct afe *a, const char *device_id)
{
	uint64_t s = 0;
	unsigned w;

	if (a == NULL || device_id == NULL || !reg_lookup(a, device_id, &s, &w))
		return 0;
	return s;
}

int
afe_wake(struct afe *a, const char *device_id, const char *push_token)
{
	if (a == NULL || a->a_push == NULL || device_id == NULL ||
	    a->a_push->pp_wake(a->a_push, device_id, push_token != NULL ? push_token : "") != 0)
		return -1;
	atomic_fetch_add(&a->s_wakes, 1);
	return 0;
}

void
afe_get_stats(struct afe *a, struct afe_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&a->a_mu);
	out->as_online = a->a_reg_n;
	pthread_mutex_unlock(&a->a_mu);
	out->as_auth_ok = atomic_load(&a->s_auth_ok);
	out->as_auth_failed = atomic_load(&a->s_auth_failed);
	out->as_blobs_in = atomic_load(&a->s_blobs_in);
	out->as_blobs_out = atomic_load(&a->s_blobs_out);
	out->as_send_offline = atomic_load(&a->s_send_offline);
	out->as_wakes = atomic_load(&a->s_wakes);
	out->as_act_ok = atomic_load(&a->s_act_ok);
	out->as_act_failed = atomic_load(&a->s_act_failed);
	out->as_act_limited = atomic_load(&a->s_act_limited);
	out->as_act_nocode = atomic_load(&a->s_act_nocode);
}

/* On each worker: close every connection it holds (1001). */
static void
close_all_run(void *arg)
{
	struct afe_worker *w = arg;
	struct afe *a = w->w_afe;
	uint64_t *ids = NULL;
	size_t n = 0;

	/* ids first: a close may remove connections from the table */
	if (w->w_n > 0)
		ids = malloc(w->w_n * sizeof(*ids));
	if (ids != NULL) {
		for (size_t i = 0; i < w->w_cap; i++)
			for (struct afe_conn *c = w->w_tab[i]; c != NULL; c = c->c_hnext)
				ids[n++] = c->c_id;
		for (size_t i = 0; i < n; i++)
			close_remote(a, w, w->w_idx, ids[i], AFE_CLOSE_GOING_AWAY);
		free(ids);
	}
	pthread_mutex_lock(&a->a_mu);
	if (--a->a_barrier == 0)
		pthread_cond_broadcast(&a->a_cv);
	pthread_mutex_unlock(&a->a_mu);
}

void
afe_stop(struct afe *a)
{
	if (a == NULL || atomic_exchange(&a->a_stopping, true))
		return;
	/* no new job starts now (a_stopping); wait for those in flight, so
	 * that none reaches a worker after the connections were closed */
	pthread_mutex_lock(&a->a_mu);
	while (a->a_jobs > 0)
		pthread_cond_wait(&a->a_cv, &a->a_mu);
	pthread_mutex_unlock(&a->a_mu);
	/* Without a handler call the loops may not run yet (loop_call would
	 * then be deferred to loop_stop): there is no connection to close. */
	if (!atomic_load(&a->a_served))
		return;
	for (unsigned i = 0; i < a->a_nworkers; i++) {
		pthread_mutex_lock(&a->a_mu);
		a->a_barrier++;
		pthread_mutex_unlock(&a->a_mu);
		if (loop_call(a->a_workers[i].w_loop, close_all_run, &a->a_workers[i]) != 0) {
			pthread_mutex_lock(&a->a_mu);
			a->a_barrier--;
			pthread_mutex_unlock(&a->a_mu);
		}
	}
	pthread_mutex_lock(&a->a_mu);
	while (a->a_barrier > 0)
		pthread_cond_wait(&a->a_cv, &a->a_mu);
	pthread_mutex_unlock(&a->a_mu);
}

void
afe_free(struct afe *a)
{
	if (a == NULL)
		return;
	afe_stop(a);
	for (size_t i = 0; i < a->a_reg_cap; i++) {
		struct afe_dev *d = a->a_reg[i], *next;

		for (; d != NULL; d = next) {
			next = d->d_next;
			free(d);
		}
	}
	free(a->a_reg);
	free(a->a_lim);
	for (unsigned i = 0; i < a->a_nworkers; i++)
		free(a->a_workers[i].w_tab);
	free(a->a_workers);
	pthread_cond_destroy(&a->a_cv);
	pthread_mutex_destroy(&a->a_mu);
	pthread_mutex_destroy(&a->a_lim_mu);
	free(a);
}
