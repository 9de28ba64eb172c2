/*
 * store.c - the backend-independent half of the store: URI dispatch, the
 * handle's mutex, argument validation, the transition table, and the scan
 * loops that call back outside any lock.
 *
 * Why validation lives here: both backends must refuse exactly the same
 * inputs with exactly the same outcome (the contract test suite runs on
 * both), so a backend only ever sees arguments that passed these checks.
 */
#define STORE_BACKEND_IMPL
#include "store/store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

struct store {
	const struct store_ops *st_ops;
	void *st_impl;
	pthread_mutex_t st_lock;   /* serialises calls on this handle */
	unsigned st_flags;
	char st_uri[MSSP_STORE_MAX_URI + 1];
};

struct backend {
	const char *b_scheme;	     /* prefix of the URI, with its ':'   */
	const struct store_ops *b_ops; /* NULL: known but not in this build */
	const char *b_name;
};

/* store_pg.c will fill the PostgreSQL entries; callers do not change. */
static const struct backend backends[] = {
	{ "sqlite:", &store_sqlite_ops, "sqlite" },
	{ "postgresql:", NULL, "postgresql" },
	{ "postgres:", NULL, "postgresql" },
};

int
store_err_set(struct store_err *e, int status, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->status = status;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *const state_names[STORE_ST_COUNT] = {
	[STORE_ST_NONE] = "NONE",
	[STORE_ST_ACCEPTED] = "ACCEPTED",
	[STORE_ST_PROMPT_SENT] = "PROMPT_SENT",
	[STORE_ST_ANSWERED] = "ANSWERED",
	[STORE_ST_COMPLETED] = "COMPLETED",
	[STORE_ST_EXPIRED] = "EXPIRED",
	[STORE_ST_FAILED] = "FAILED",
};

const char *
store_state_name(enum store_state st)
{
	if ((int)st < 0 || (int)st >= STORE_ST_COUNT)
		return "?";
	return state_names[st];
}

bool
store_state_final(enum store_state st)
{
	return st == STORE_ST_COMPLETED || st == STORE_ST_EXPIRED || st == STORE_ST_FAILED;
}

/* legal[from][to]; the database's trigger holds the same table. */
static const bool legal[STORE_ST_COUNT][STORE_ST_COUNT] = {
	[STORE_ST_ACCEPTED] = { [STORE_ST_PROMPT_SENT] = true, [STORE_ST_EXPIRED] = true,
				[STORE_ST_FAILED] = true },
	[STORE_ST_PROMPT_SENT] = { [STORE_ST_ANSWERED] = true, [STORE_ST_EXPIRED] = true,
				   [STORE_ST_FAILED] = true },
	[STORE_ST_ANSWERED] = { [STORE_ST_COMPLETED] = true, [STORE_ST_FAILED] = true },
};

bool
store_transition_legal(enum store_state from, enum store_state to)
{
	if ((int)from < 0 || (int)from >= STORE_ST_COUNT || (int)to < 0 ||
	    (int)to >= STORE_ST_COUNT)
		return false;
	return legal[from][to];
}

void
store_tx_clear(struct store_tx *tx)
{
	if (tx == NULL)
		return;
	free(tx->tx_request);
	free(tx->tx_answer);
	free(tx->tx_signature);
	memset(tx, 0, sizeof(*tx));
}

char *
store_memdup0(const void *p, size_t len)
{
	char *d = malloc(len + 1);

	if (d == NULL)
		return NULL;
	if (len > 0)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

int
store_new_trans_id(char id[STORE_TX_ID_LEN + 1], struct store_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[MSSP_STORE_TRANSID_BYTES];
	size_t i;

	/* unguessable, so a foreign or guessed id finds nothing. */
	if (RAND_bytes(r, sizeof(r)) != 1)
		return store_err_set(err, 900, "random generator failed");
	id[0] = 'T'; /* an NCName must not start with a digit */
	for (i = 0; i < sizeof(r); i++) {
		id[1 + 2 * i] = hex[r[i] >> 4];
		id[2 + 2 * i] = hex[r[i] & 15];
	}
	id[STORE_TX_ID_LEN] = '\0';
	return 0;
}

/* ---- argument checks ---------------------------------------------------- */

/* 1..max bytes of visible ASCII (0x21..0x7e); spaces allowed if `space`. */
static bool
text_ok(const char *s, size_t min, size_t max, bool space)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return false;
		if ((unsigned char)s[i] > 0x7e || (unsigned char)s[i] < (space ? 0x20 : 0x21))
			return false;
	}
	return i >= min;
}

static bool
nonce_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= MSSP_STORE_MAX_NONCE)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return i >= MSSP_STORE_MIN_NONCE;
}

/* The exact shape store_new_trans_id makes. */
static bool
trans_id_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] != 'T')
		return false;
	for (i = 1; i < STORE_TX_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[STORE_TX_ID_LEN] == '\0';
}

static int
check_new(const struct store_tx_new *n, int64_t now_ms, struct store_err *err)
{
	if (n == NULL)
		return store_err_set(err, 900, "invalid argument: no transaction");
	if (!text_ok(n->tn_ap_id, 1, MSSP_STORE_MAX_AP_ID, false))
		return store_err_set(err, 900, "invalid argument: AP_ID");
	if (!text_ok(n->tn_ap_trans_id, 1, MSSP_MSG_MAX_TRANSID, false))
		return store_err_set(err, 900, "invalid argument: AP_TransID");
	if (n->tn_hash == NULL || n->tn_hash_len < MSSP_STORE_MIN_HASH ||
	    n->tn_hash_len > MSSP_STORE_MAX_HASH)
		return store_err_set(err, 900, "invalid argument: content hash");
	if (!text_ok(n->tn_msisdn, 1, MSSP_STORE_MAX_MSISDN, false))
		return store_err_set(err, 900, "invalid argument: MSISDN");
	if (!text_ok(n->tn_key_id, 1, MSSP_STORE_MAX_KEY_ID, false))
		return store_err_set(err, 900, "invalid argument: key id");
	if (n->tn_mode != STORE_MODE_SYNCH && n->tn_mode != STORE_MODE_ASYNCH_CS &&
	    n->tn_mode != STORE_MODE_ASYNCH_SS)
		return store_err_set(err, 900, "invalid argument: messaging mode");
	if (now_ms <= 0 || n->tn_deadline_ms <= now_ms ||
	    n->tn_deadline_ms - now_ms > MSSP_STORE_MAX_TTL_MS)
		return store_err_set(err, 900, "invalid argument: deadline");
	if (n->tn_notify_url != NULL && !text_ok(n->tn_notify_url, 1, MSSP_STORE_MAX_URL, false))
		return store_err_set(err, 900, "invalid argument: notification URL");
	if (n->tn_request == NULL || n->tn_request_len == 0 ||
	    n->tn_request_len > MSSP_STORE_MAX_REQUEST)
		return store_err_set(err, 900, "invalid argument: request document");
	/* roaming: NULL or "" is a local transaction, else the peer's
	 * MSSP_ID (a URI, as an AP_ID) */
	if (n->tn_peer != NULL && n->tn_peer[0] != '\0' &&
	    !text_ok(n->tn_peer, 1, MSSP_STORE_MAX_AP_ID, false))
		return store_err_set(err, 900, "invalid argument: peer");
	return 0;
}

static bool
final_code_ok(int st)
{
	return st >= 101 && st <= 999 && st != 208 && st != 504;
}

static int
check_change(enum store_state to, const struct store_tx_change *c, struct store_err *err)
{
	static const struct store_tx_change none;
	const struct store_tx_change *z = c ? c : &none;
	bool need_nonce = to == STORE_ST_PROMPT_SENT;
	bool need_answer = to == STORE_ST_ANSWERED;
	bool final = store_state_final(to);

	if (need_nonce != (z->tc_nonce != NULL) || (need_nonce && !nonce_ok(z->tc_nonce)))
		return store_err_set(err, 900, "invalid argument: nonce");
	if (need_answer != (z->tc_answer != NULL) ||
	    (need_answer && (z->tc_answer_len == 0 || z->tc_answer_len > MSSP_STORE_MAX_ANSWER)) ||
	    (!need_answer && z->tc_answer_len != 0))
		return store_err_set(err, 900, "invalid argument: device answer");
	if ((z->tc_signature != NULL || z->tc_signature_len != 0 || z->tc_profile != NULL) &&
	    to != STORE_ST_COMPLETED)
		return store_err_set(err, 900, "invalid argument: signature outside COMPLETED");
	if (z->tc_detail != NULL &&
	    (!final || !text_ok(z->tc_detail, 1, MSSP_STORE_MAX_DETAIL, true)))
		return store_err_set(err, 900, "invalid argument: detail");
	switch (to) {
	case STORE_ST_COMPLETED:
		if (!final_code_ok(z->tc_status))
			return store_err_set(err, 900, "invalid argument: final status");
		if ((z->tc_status == 500 || z->tc_status == 502) && z->tc_signature == NULL)
			return store_err_set(err, 900, "invalid argument: %d without signature",
					     z->tc_status);
		if (z->tc_signature != NULL) {
			size_t i;

			if (z->tc_signature_len == 0 ||
			    z->tc_signature_len > MSSP_STORE_MAX_SIGNATURE)
				return store_err_set(err, 900, "invalid argument: signature");
			/* base64 text, possibly wrapped: nothing else */
			for (i = 0; i < z->tc_signature_len; i++) {
				unsigned char ch = (unsigned char)z->tc_signature[i];

				if (ch < 0x20 ? (ch != '\n' && ch != '\r') : ch > 0x7e)
					return store_err_set(err, 900,
							     "invalid argument: signature");
			}
		} else if (z->tc_signature_len != 0) {
			return store_err_set(err, 900, "invalid argument: signature");
		}
		if (z->tc_profile != NULL && !text_ok(z->tc_profile, 1, MSSP_PROFILE_MAX_URI, false))
			return store_err_set(err, 900, "invalid argument: profile");
		break;
	case STORE_ST_EXPIRED:
		if (z->tc_status != 0 && z->tc_status != 208)
			return store_err_set(err, 900, "invalid argument: EXPIRED is 208");
		break;
	case STORE_ST_FAILED:
		if (!final_code_ok(z->tc_status) || z->tc_status == 500 || z->tc_status == 502)
			return store_err_set(err, 900, "invalid argument: final status");
		break;
	default:
		if (z->tc_status != 0)
			return store_err_set(err, 900, "invalid argument: status before final");
		break;
	}
	return 0;
}

/* ---- handles ------------------------------------------------------------ */

static struct store *
open_common(const char *uri, unsigned flags, struct store_err *err)
{
	struct store *s = NULL;
	const struct backend *b = NULL;
	size_t i, len;

	if (uri == NULL || (len = strnlen(uri, MSSP_STORE_MAX_URI + 1)) > MSSP_STORE_MAX_URI) {
		store_err_set(err, 900, "invalid store URI");
		goto fail;
	}
	if ((flags & ~(unsigned)(STORE_OPEN_CREATE | STORE_OPEN_READONLY)) != 0 ||
	    ((flags & STORE_OPEN_CREATE) && (flags & STORE_OPEN_READONLY))) {
		store_err_set(err, 900, "invalid argument: open flags");
		goto fail;
	}
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strncmp(uri, backends[i].b_scheme, strlen(backends[i].b_scheme)) == 0) {
			b = &backends[i];
			break;
		}
	if (b == NULL) {
		store_err_set(err, 900, "unknown store backend (use sqlite:PATH)");
		goto fail;
	}
	if (b->b_ops == NULL) {
		store_err_set(err, 900, "store backend not built: %s", b->b_name);
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		store_err_set(err, 900, "out of memory");
		goto fail;
	}
	if (pthread_mutex_init(&s->st_lock, NULL) != 0) {
		free(s);
		s = NULL;
		store_err_set(err, 900, "cannot create a mutex");
		goto fail;
	}
	memcpy(s->st_uri, uri, len + 1);
	s->st_flags = flags;
	s->st_ops = b->b_ops;
	if (s->st_ops->so_open(uri + strlen(b->b_scheme), flags, &s->st_impl, err) != 0)
		goto fail;
	return s;
fail:
	if (s != NULL) {
		pthread_mutex_destroy(&s->st_lock);
		free(s);
	}
	return NULL;
}

struct store *
store_open(const char *uri, unsigned flags, struct store_err *err)
{
	return open_common(uri, flags, err);
}

struct store *
store_clone(struct store *s, struct store_err *err)
{
	if (s == NULL) {
		store_err_set(err, 900, "invalid argument: no store");
		return NULL;
	}
	return open_common(s->st_uri, s->st_flags & ~(unsigned)STORE_OPEN_CREATE, err);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->st_ops->so_close(s->st_impl);
	pthread_mutex_destroy(&s->st_lock);
	free(s);
}

const char *
store_backend_name(const struct store *s)
{
	return s ? s->st_ops->so_name : "?";
}

/* Lock around one backend call.  Mutex failures are broken invariants of
 * this process (style habit 15): abort. */
static void
lock(struct store *s)
{
	if (pthread_mutex_lock(&s->st_lock) != 0)
		abort();
}

static void
unlock(struct store *s)
{
	if (pthread_mutex_unlock(&s->st_lock) != 0)
		abort();
}

static int
writable(const struct store *s, struct store_err *err)
{
	if (s == NULL)
		return store_err_set(err, 900, "invalid argument: no store");
	if (s->st_flags & STORE_OPEN_READONLY)
		return store_err_set(err, 900, "store opened read-only");
	return 0;
}

int
store_health(struct store *s, struct store_err *err)
{
	int rc;

	if (s == NULL)
		return store_err_set(err, 900, "invalid argument: no store");
	lock(s);
	rc = s->st_ops->so_health(s->st_impl, err);
	unlock(s);
	return rc;
}

/* ---- transactions ------------------------------------------------------- */

int
store_tx_create(struct store *s, const struct store_tx_new *n, unsigned flags, int64_t now_ms,
		struct store_tx *out, struct store_err *err)
{
	struct store_tx tmp = { 0 };
	struct store_tx *o = out ? out : &tmp;
	int rc;

	store_tx_clear(out);
	if (writable(s, err) != 0 || check_new(n, now_ms, err) != 0)
		return -1;
	if ((flags & ~(unsigned)STORE_PREEMPT) != 0)
		return store_err_set(err, 900, "invalid argument: create flags");
	lock(s);
	rc = s->st_ops->so_create(s->st_impl, n, flags, now_ms, o, err);
	unlock(s);
	if (rc != 0)
		store_tx_clear(o);
	store_tx_clear(&tmp);
	return rc;
}

/* One identical answer for every "not found" of the AP-facing lookups. */
static int
no_such(struct store_err *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	return store_err_set(err, 101, "no such transaction");
}

static int
get_common(struct store *s, const char *id, const char *ap_id, const char *nonce, unsigned what,
	   struct store_tx *out, struct store_err *err)
{
	int rc;

	if (s == NULL || out == NULL)
		return store_err_set(err, 900, "invalid argument: no store or record");
	if ((what & ~(unsigned)(STORE_GET_REQUEST | STORE_GET_ANSWER)) != 0)
		return store_err_set(err, 900, "invalid argument: get flags");
	lock(s);
	rc = s->st_ops->so_get(s->st_impl, id, ap_id, nonce, what, out, err);
	unlock(s);
	if (rc != 0) {
		store_tx_clear(out);
		if (err != NULL && err->status == 101)
			return no_such(err);
	}
	return rc;
}

int
store_tx_get(struct store *s, const char *ap_id, const char *mssp_trans_id, unsigned what,
	     struct store_tx *out, struct store_err *err)
{
	store_tx_clear(out);
	/* A malformed id cannot name a transaction: the same answer as an
	 * unknown one.  Any id of printable characters within the protocol's
	 * cap still goes to the database, so that the answer also takes the
	 * same time; only what the message validator could never have
	 * passed is answered at once. */
	if (!text_ok(mssp_trans_id, 1, MSSP_MSG_MAX_TRANSID, false) ||
	    !text_ok(ap_id, 1, MSSP_STORE_MAX_AP_ID, false))
		return s == NULL ? store_err_set(err, 900, "invalid argument: no store") : no_such(err);
	return get_common(s, mssp_trans_id, ap_id, NULL, what, out, err);
}

int
store_tx_get_by_id(struct store *s, const char *mssp_trans_id, unsigned what, struct store_tx *out,
		   struct store_err *err)
{
	store_tx_clear(out);
	if (!trans_id_ok(mssp_trans_id))
		return s == NULL ? store_err_set(err, 900, "invalid argument: no store") : no_such(err);
	return get_common(s, mssp_trans_id, NULL, NULL, what, out, err);
}

int
store_tx_get_by_nonce(struct store *s, const char *nonce, unsigned what, struct store_tx *out,
		      struct store_err *err)
{
	store_tx_clear(out);
	if (!nonce_ok(nonce))
		return s == NULL ? store_err_set(err, 900, "invalid argument: no store") : no_such(err);
	return get_common(s, NULL, NULL, nonce, what, out, err);
}

int
store_tx_transition(struct store *s, const char *mssp_trans_id, enum store_state from,
		    enum store_state to, const struct store_tx_change *chg, int64_t now_ms,
		    struct store_tx *out, struct store_err *err)
{
	struct store_tx tmp = { 0 };
	struct store_tx *o = out ? out : &tmp;
	int rc;

	store_tx_clear(out);
	if (writable(s, err) != 0)
		return -1;
	if (!store_transition_legal(from, to))
		return store_err_set(err, 900, "illegal transition %s -> %s",
				     store_state_name(from), store_state_name(to));
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	if (check_change(to, chg, err) != 0)
		return -1;
	if (!trans_id_ok(mssp_trans_id))
		return no_such(err);
	lock(s);
	rc = s->st_ops->so_transition(s->st_impl, mssp_trans_id, from, to, chg, now_ms, o, err);
	unlock(s);
	if (rc != 0 && err != NULL && err->status == 101)
		no_such(err);
	/* On CONFLICT / FINAL the record is the current one (documented). */
	if (rc != 0 && (err == NULL || (err->status != STORE_STATUS_CONFLICT &&
					err->status != STORE_STATUS_FINAL &&
					err->status != STORE_STATUS_PAST_DEADLINE)))
		store_tx_clear(o);
	store_tx_clear(&tmp);
	return rc;
}

int
store_tx_set_peer_trans_id(struct store *s, const char *mssp_trans_id, const char *peer_trans_id,
			   int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	/* the peer's id is checked as an MSSP_TransID of the protocol, not
	 * as one of ours: another implementation makes it */
	if (!text_ok(peer_trans_id, 1, MSSP_MSG_MAX_TRANSID, false))
		return store_err_set(err, 900, "invalid argument: peer transaction id");
	if (!trans_id_ok(mssp_trans_id))
		return no_such(err);
	lock(s);
	rc = s->st_ops->so_set_peer_trans_id(s->st_impl, mssp_trans_id, peer_trans_id, now_ms,
					     err);
	unlock(s);
	if (rc != 0 && err != NULL && err->status == 101)
		no_such(err);
	return rc;
}

int
store_tx_receipt(struct store *s, const char *ap_id, const char *mssp_trans_id, const char *receipt,
		 size_t receipt_len, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (receipt == NULL || receipt_len == 0 || receipt_len > MSSP_STORE_MAX_RECEIPT ||
	    now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: receipt");
	if (!text_ok(mssp_trans_id, 1, MSSP_MSG_MAX_TRANSID, false) ||
	    !text_ok(ap_id, 1, MSSP_STORE_MAX_AP_ID, false))
		return no_such(err);
	lock(s);
	rc = s->st_ops->so_receipt(s->st_impl, ap_id, mssp_trans_id, receipt, receipt_len, now_ms,
				   err);
	unlock(s);
	return rc;
}

int
store_tx_expire_due(struct store *s, int64_t now_ms, store_tx_cb cb, void *arg, size_t *n_expired,
		    struct store_err *err)
{
	char ids[MSSP_STORE_SCAN_BATCH][STORE_TX_ID_LEN + 1];
	struct store_tx tx;
	size_t n, i, total = 0;
	int rc = -1, stop = 0;

	memset(&tx, 0, sizeof(tx));
	if (n_expired != NULL)
		*n_expired = 0;
	if (writable(s, err) != 0)
		return -1;
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	while (total < MSSP_STORE_MAX_SCAN) {
		lock(s);
		rc = s->st_ops->so_expire_batch(s->st_impl, now_ms, MSSP_STORE_SCAN_BATCH, ids, &n,
						err);
		unlock(s);
		if (rc != 0)
			goto out;
		total += n;
		if (n_expired != NULL)
			*n_expired = total;
		/* Reported only now that the batch is committed.  The record is
		 * read again: EXPIRED is final, so it cannot have moved on. */
		for (i = 0; i < n && cb != NULL && !stop; i++) {
			if (store_tx_get_by_id(s, ids[i], 0, &tx, err) != 0) {
				rc = -1;
				goto out;
			}
			stop = cb(arg, &tx);
			store_tx_clear(&tx);
		}
		if (n < MSSP_STORE_SCAN_BATCH || stop)
			break;
	}
	rc = 0;
out:
	store_tx_clear(&tx);
	return rc;
}

int
store_tx_recover_scan(struct store *s, store_tx_cb cb, void *arg, size_t *n_seen,
		      struct store_err *err)
{
	char ids[MSSP_STORE_SCAN_BATCH][STORE_TX_ID_LEN + 1];
	int64_t created[MSSP_STORE_SCAN_BATCH];
	char after_id[STORE_TX_ID_LEN + 1] = "";
	int64_t after_ms = INT64_MIN;
	struct store_tx tx;
	size_t n, i, visited = 0, seen = 0;
	int rc = -1;

	memset(&tx, 0, sizeof(tx));
	if (n_seen != NULL)
		*n_seen = 0;
	if (s == NULL || cb == NULL)
		return store_err_set(err, 900, "invalid argument: no store or callback");
	while (visited < MSSP_STORE_MAX_SCAN) {
		lock(s);
		rc = s->st_ops->so_open_page(s->st_impl, after_ms, after_id, MSSP_STORE_SCAN_BATCH,
					     ids, created, &n, err);
		unlock(s);
		if (rc != 0)
			goto out;
		visited += n;
		for (i = 0; i < n; i++) {
			int r = store_tx_get_by_id(s, ids[i], STORE_GET_REQUEST | STORE_GET_ANSWER,
						   &tx, err);

			if (r != 0 && err != NULL && err->status == 101)
				continue; /* gone (purged) between two reads */
			if (r != 0) {
				rc = -1;
				goto out;
			}
			if (!store_state_final(tx.tx_state)) {
				seen++;
				if (n_seen != NULL)
					*n_seen = seen;
				if (cb(arg, &tx) != 0) {
					rc = 0;
					goto out;
				}
			}
			store_tx_clear(&tx);
		}
		if (n < MSSP_STORE_SCAN_BATCH)
			break;
		/* keyset paging: the callback may have finalised rows, so an
		 * OFFSET would skip some */
		after_ms = created[n - 1];
		memcpy(after_id, ids[n - 1], sizeof(after_id));
	}
	rc = 0;
out:
	store_tx_clear(&tx);
	return rc;
}

int
store_tx_count_outstanding(struct store *s, const char *ap_id, uint64_t *n, struct store_err *err)
{
	int rc;

	if (s == NULL || n == NULL || !text_ok(ap_id, 1, MSSP_STORE_MAX_AP_ID, false))
		return store_err_set(err, 900, "invalid argument: count");
	*n = 0;
	lock(s);
	rc = s->st_ops->so_count_open(s->st_impl, ap_id, n, err);
	unlock(s);
	return rc;
}

/* ---- the user registry ---------------------------------------------------- */

/* Length of the string in a fixed array of `size` bytes, or SIZE_MAX when
 * it is not NUL-terminated inside the array (a caller bug: the backend
 * would read past it). */
static size_t
fixed_len(const char *a, size_t size)
{
	size_t n = strnlen(a, size);

	return n < size ? n : SIZE_MAX;
}

/* The normalised MSISDN: "+" and 6..15 digits (E.164 allows 15). */
static bool
msisdn_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] != '+')
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (i > 15 || s[i] < '0' || s[i] > '9')
			return false;
	return i >= 1 + 6;
}

/* Registry ids (device, key, key group): 1..max chars of
 * [A-Za-z0-9._:+@-], so they are safe in logs, URLs and JSON as they are. */
static bool
reg_id_ok(const char *s, size_t max)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '+' || c == '@' || c == '-'))
			return false;
	}
	return i >= 1;
}

/* A display name: UTF-8 (names are not ASCII) without C0/C1 controls,
 * DEL, surrogates or overlong forms: it ends up in logs and consoles. */
static bool
name_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long cp;
	size_t i = 0;
	int r;

	while (i < len) {
		r = UTF8_getc(p + i, (int)(len - i), &cp);
		if (r <= 0)
			return false;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff)
			return false;
		i += (size_t)r;
	}
	return true;
}

/* Profile URIs: visible ASCII, one space between each, none empty. */
static bool
profiles_ok(const char *s, size_t len)
{
	size_t i, tok = 0;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ') {
			if (tok == 0)
				return false; /* leading or double space */
			tok = 0;
		} else if (c < 0x21 || c > 0x7e || ++tok > MSSP_PROFILE_MAX_URI) {
			return false;
		}
	}
	return tok > 0; /* no trailing space */
}

static bool
hex_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static bool
upper2(const char *s)
{
	return s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

/* "" or an ISO 3166 alpha-2 code's shape: two upper-case letters. */
static bool
country_ok(const char *s)
{
	return s[0] == '\0' || (upper2(s) && s[2] == '\0');
}

/* "" or [a-z]{2,3} optionally followed by "-" and 2 upper-case letters
 * ("fi", "sv-FI", "smn"). */
static bool
lang_ok(const char *s)
{
	size_t i = 0;

	if (s[0] == '\0')
		return true;
	while (i < 3 && s[i] >= 'a' && s[i] <= 'z')
		i++;
	if (i < 2)
		return false;
	if (s[i] == '\0')
		return true;
	return s[i] == '-' && upper2(s + i + 1) && s[i + 3] == '\0';
}

static int
check_user(const struct store_user *u, struct store_err *err)
{
	size_t n;

	if (u == NULL)
		return store_err_set(err, 900, "invalid argument: no user");
	if (fixed_len(u->su_msisdn, sizeof(u->su_msisdn)) == SIZE_MAX ||
	    !msisdn_ok(u->su_msisdn))
		return store_err_set(err, 900, "invalid argument: MSISDN");
	if (u->su_state != STORE_USER_ACTIVE && u->su_state != STORE_USER_SUSPENDED)
		return store_err_set(err, 900, "invalid argument: user state");
	if ((n = fixed_len(u->su_name, sizeof(u->su_name))) == SIZE_MAX || !name_ok(u->su_name, n))
		return store_err_set(err, 900, "invalid argument: user name");
	if ((n = fixed_len(u->su_given_name, sizeof(u->su_given_name))) == SIZE_MAX ||
	    !name_ok(u->su_given_name, n))
		return store_err_set(err, 900, "invalid argument: given name");
	if ((n = fixed_len(u->su_surname, sizeof(u->su_surname))) == SIZE_MAX ||
	    !name_ok(u->su_surname, n))
		return store_err_set(err, 900, "invalid argument: surname");
	/* the serialNumber RDN: PrintableString-safe ASCII, spaces allowed */
	if (fixed_len(u->su_id_number, sizeof(u->su_id_number)) == SIZE_MAX ||
	    !text_ok(u->su_id_number, 0, MSSP_STORE_MAX_ID_NUMBER, true))
		return store_err_set(err, 900, "invalid argument: id number");
	if (fixed_len(u->su_country, sizeof(u->su_country)) == SIZE_MAX ||
	    !country_ok(u->su_country))
		return store_err_set(err, 900, "invalid argument: country");
	if (fixed_len(u->su_lang, sizeof(u->su_lang)) == SIZE_MAX || !lang_ok(u->su_lang))
		return store_err_set(err, 900, "invalid argument: language");
	return 0;
}

static int
check_device(const struct store_device *d, struct store_err *err)
{
	unsigned char acc = 0;
	size_t i;

	if (d == NULL)
		return store_err_set(err, 900, "invalid argument: no device");
	if (fixed_len(d->sd_device_id, sizeof(d->sd_device_id)) == SIZE_MAX ||
	    !reg_id_ok(d->sd_device_id, MSSP_KEYSTORE_MAX_ID))
		return store_err_set(err, 900, "invalid argument: device id");
	if (fixed_len(d->sd_msisdn, sizeof(d->sd_msisdn)) == SIZE_MAX || !msisdn_ok(d->sd_msisdn))
		return store_err_set(err, 900, "invalid argument: MSISDN");
	if (d->sd_auth_spki_len == 0 || d->sd_auth_spki_len > sizeof(d->sd_auth_spki))
		return store_err_set(err, 900, "invalid argument: device public key");
	/* An all-zero channel key is an uninitialised one: never store it.
	 * (OR of all bytes: no early exit on a secret.) */
	for (i = 0; i < sizeof(d->sd_e2e_key); i++)
		acc |= d->sd_e2e_key[i];
	if (acc == 0)
		return store_err_set(err, 900, "invalid argument: channel key");
	if (fixed_len(d->sd_push_token, sizeof(d->sd_push_token)) == SIZE_MAX ||
	    (d->sd_push_token[0] != '\0' &&
	     !text_ok(d->sd_push_token, 1, MSSP_STORE_MAX_PUSH_TOKEN, false)))
		return store_err_set(err, 900, "invalid argument: push token");
	if (d->sd_state != STORE_DEVICE_ACTIVE && d->sd_state != STORE_DEVICE_DISABLED)
		return store_err_set(err, 900, "invalid argument: device state");
	return 0;
}

static bool
key_state_ok(enum store_key_state st)
{
	return st == STORE_KEY_ACTIVE || st == STORE_KEY_REVOKED || st == STORE_KEY_DISABLED;
}

static int
check_key(const struct store_key *k, struct store_err *err)
{
	size_t n;

	if (k == NULL)
		return store_err_set(err, 900, "invalid argument: no key");
	if (fixed_len(k->sk_key_id, sizeof(k->sk_key_id)) == SIZE_MAX ||
	    !reg_id_ok(k->sk_key_id, MSSP_STORE_MAX_KEY_ID))
		return store_err_set(err, 900, "invalid argument: key id");
	if (fixed_len(k->sk_group, sizeof(k->sk_group)) == SIZE_MAX ||
	    !reg_id_ok(k->sk_group, MSSP_KEYSTORE_MAX_ID))
		return store_err_set(err, 900, "invalid argument: key group");
	if (fixed_len(k->sk_msisdn, sizeof(k->sk_msisdn)) == SIZE_MAX || !msisdn_ok(k->sk_msisdn))
		return store_err_set(err, 900, "invalid argument: MSISDN");
	if (fixed_len(k->sk_device_id, sizeof(k->sk_device_id)) == SIZE_MAX ||
	    !reg_id_ok(k->sk_device_id, MSSP_KEYSTORE_MAX_ID))
		return store_err_set(err, 900, "invalid argument: device id");
	if (k->sk_purpose != STORE_KEY_AUTHN && k->sk_purpose != STORE_KEY_SIGN)
		return store_err_set(err, 900, "invalid argument: key purpose");
	if ((n = fixed_len(k->sk_profiles, sizeof(k->sk_profiles))) == SIZE_MAX ||
	    !profiles_ok(k->sk_profiles, n))
		return store_err_set(err, 900, "invalid argument: profiles");
	if (!key_state_ok(k->sk_state))
		return store_err_set(err, 900, "invalid argument: key state");
	if (k->sk_cert_len > sizeof(k->sk_cert))
		return store_err_set(err, 900, "invalid argument: certificate");
	if ((n = fixed_len(k->sk_cert_serial, sizeof(k->sk_cert_serial))) == SIZE_MAX ||
	    !hex_ok(k->sk_cert_serial, n))
		return store_err_set(err, 900, "invalid argument: certificate serial");
	return 0;
}

int
store_user_put(struct store *s, const struct store_user *u, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0 || check_user(u, err) != 0)
		return -1;
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	lock(s);
	rc = s->st_ops->so_user_put(s->st_impl, u, now_ms, err);
	unlock(s);
	return rc;
}

int
store_device_put(struct store *s, const struct store_device *d, int64_t now_ms,
		 struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0 || check_device(d, err) != 0)
		return -1;
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	lock(s);
	rc = s->st_ops->so_device_put(s->st_impl, d, now_ms, err);
	unlock(s);
	return rc;
}

int
store_key_put(struct store *s, const struct store_key *k, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0 || check_key(k, err) != 0)
		return -1;
	if (now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: time");
	lock(s);
	rc = s->st_ops->so_key_put(s->st_impl, k, now_ms, err);
	unlock(s);
	return rc;
}

int
store_user_update(struct store *s, const struct store_user *u, int64_t expect_updated_ms,
		  int64_t now_ms, struct store_err *err)
{
	struct store_user v;
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (u == NULL)
		return store_err_set(err, 900, "invalid argument: no user");
	/* the state is not written: checked as a valid one */
	v = *u;
	v.su_state = STORE_USER_ACTIVE;
	if (check_user(&v, err) != 0)
		return -1;
	if (now_ms <= 0 || expect_updated_ms < 0)
		return store_err_set(err, 900, "invalid argument: time");
	lock(s);
	rc = s->st_ops->so_user_update(s->st_impl, u, expect_updated_ms, now_ms, err);
	unlock(s);
	return rc;
}

int
store_user_set_state(struct store *s, const char *msisdn, enum store_user_state st,
		     int64_t expect_updated_ms, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (msisdn == NULL || (st != STORE_USER_ACTIVE && st != STORE_USER_SUSPENDED) ||
	    now_ms <= 0 || expect_updated_ms < 0)
		return store_err_set(err, 900, "invalid argument: user state change");
	if (!msisdn_ok(msisdn))
		return store_err_set(err, 105, "unknown user");
	lock(s);
	rc = s->st_ops->so_user_set_state(s->st_impl, msisdn, st, expect_updated_ms, now_ms, err);
	unlock(s);
	return rc;
}

/* Not-found answers of the registry lookups (also for an identifier that
 * cannot name a record: one answer, whatever the reason). */
static int
no_user(struct store_err *err)
{
	return store_err_set(err, 105, "unknown user");
}

int
store_user_get(struct store *s, const char *msisdn, struct store_user *out, struct store_err *err)
{
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL || msisdn == NULL || out == NULL)
		return store_err_set(err, 900, "invalid argument: user lookup");
	if (!msisdn_ok(msisdn))
		return no_user(err);
	lock(s);
	rc = s->st_ops->so_user_get(s->st_impl, msisdn, out, err);
	unlock(s);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_device_get(struct store *s, const char *device_id, struct store_device *out,
		 struct store_err *err)
{
	int rc;

	if (out != NULL)
		OPENSSL_cleanse(out, sizeof(*out));
	if (s == NULL || device_id == NULL || out == NULL)
		return store_err_set(err, 900, "invalid argument: device lookup");
	if (!reg_id_ok(device_id, MSSP_KEYSTORE_MAX_ID))
		return store_err_set(err, 101, "no such device");
	lock(s);
	rc = s->st_ops->so_device_get(s->st_impl, device_id, out, err);
	unlock(s);
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out)); /* may hold a half-read secret */
	return rc;
}

int
store_key_get(struct store *s, const char *key_id, struct store_key *out, struct store_err *err)
{
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL || key_id == NULL || out == NULL)
		return store_err_set(err, 900, "invalid argument: key lookup");
	if (!reg_id_ok(key_id, MSSP_STORE_MAX_KEY_ID))
		return store_err_set(err, 101, "no such key");
	lock(s);
	rc = s->st_ops->so_key_get(s->st_impl, key_id, out, err);
	unlock(s);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_user_keys(struct store *s, const char *msisdn, struct store_key *out, size_t max, size_t *n,
		struct store_err *err)
{
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || msisdn == NULL || n == NULL || (out == NULL && max > 0))
		return store_err_set(err, 900, "invalid argument: key list");
	if (max > 0)
		memset(out, 0, max * sizeof(*out));
	if (!msisdn_ok(msisdn))
		return no_user(err);
	lock(s);
	rc = s->st_ops->so_user_keys(s->st_impl, msisdn, out, max, n, err);
	unlock(s);
	if (rc != 0) {
		if (max > 0)
			memset(out, 0, max * sizeof(*out));
		*n = 0;
	}
	return rc;
}

int
store_user_devices(struct store *s, const char *msisdn, struct store_device *out, size_t max,
		   size_t *n, struct store_err *err)
{
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || msisdn == NULL || n == NULL || (out == NULL && max > 0))
		return store_err_set(err, 900, "invalid argument: device list");
	if (max > 0)
		OPENSSL_cleanse(out, max * sizeof(*out));
	if (!msisdn_ok(msisdn))
		return no_user(err);
	lock(s);
	rc = s->st_ops->so_user_devices(s->st_impl, msisdn, out, max, n, err);
	unlock(s);
	if (rc != 0) {
		if (max > 0)
			OPENSSL_cleanse(out, max * sizeof(*out));
		*n = 0;
	}
	return rc;
}

int
store_key_set_state(struct store *s, const char *key_id, enum store_key_state st, int64_t now_ms,
		    struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (key_id == NULL || !key_state_ok(st) || now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: key state change");
	if (!reg_id_ok(key_id, MSSP_STORE_MAX_KEY_ID))
		return store_err_set(err, 101, "no such key");
	lock(s);
	rc = s->st_ops->so_key_set_state(s->st_impl, key_id, st, now_ms, err);
	unlock(s);
	return rc;
}

/* ---- registry administration (issue 5) ------------------------------------- */

/* A list's output array: NULL only with max 0, at most MSSP_STORE_MAX_LIST
 * (a page, not a dump: an answer of the ME stays bounded). */
static bool
list_args_ok(const void *out, size_t max, const size_t *n)
{
	return n != NULL && (out != NULL || max == 0) && max <= MSSP_STORE_MAX_LIST;
}

/* An MSISDN prefix: "+" and 0..15 digits. */
static bool
msisdn_prefix_ok(const char *s)
{
	size_t i;

	if (s[0] != '+')
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (i > 15 || s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int
store_user_list(struct store *s, const struct store_user_query *q, struct store_user *out,
		size_t max, size_t *n, struct store_err *err)
{
	struct store_user_query z = { 0 };
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || !list_args_ok(out, max, n))
		return store_err_set(err, 900, "invalid argument: user list");
	if (max > 0)
		memset(out, 0, max * sizeof(*out));
	/* "" is "any", as NULL: the backend sees NULL only */
	if (q != NULL) {
		z.uq_state = q->uq_state;
		if (q->uq_msisdn_prefix != NULL && q->uq_msisdn_prefix[0] != '\0')
			z.uq_msisdn_prefix = q->uq_msisdn_prefix;
		if (q->uq_text != NULL && q->uq_text[0] != '\0')
			z.uq_text = q->uq_text;
		if (q->uq_after != NULL && q->uq_after[0] != '\0')
			z.uq_after = q->uq_after;
	}
	if (z.uq_msisdn_prefix != NULL && !msisdn_prefix_ok(z.uq_msisdn_prefix))
		return store_err_set(err, 900, "invalid argument: MSISDN prefix");
	if (z.uq_text != NULL &&
	    (strnlen(z.uq_text, MSSP_STORE_MAX_NAME + 1) > MSSP_STORE_MAX_NAME ||
	     !name_ok(z.uq_text, strlen(z.uq_text))))
		return store_err_set(err, 900, "invalid argument: search text");
	if (z.uq_state != 0 && z.uq_state != STORE_USER_ACTIVE && z.uq_state != STORE_USER_SUSPENDED)
		return store_err_set(err, 900, "invalid argument: user state");
	if (z.uq_after != NULL && !msisdn_ok(z.uq_after))
		return store_err_set(err, 900, "invalid argument: paging MSISDN");
	if (max == 0)
		return 0;
	lock(s);
	rc = s->st_ops->so_user_list(s->st_impl, &z, out, max, n, err);
	unlock(s);
	if (rc != 0) {
		memset(out, 0, max * sizeof(*out));
		*n = 0;
	}
	return rc;
}

int
store_user_delete(struct store *s, const char *msisdn, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (msisdn == NULL || now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: user delete");
	if (!msisdn_ok(msisdn))
		return no_user(err);
	lock(s);
	rc = s->st_ops->so_user_delete(s->st_impl, msisdn, now_ms, err);
	unlock(s);
	return rc;
}

int
store_device_delete(struct store *s, const char *device_id, int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (device_id == NULL || now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: device delete");
	if (!reg_id_ok(device_id, MSSP_KEYSTORE_MAX_ID))
		return store_err_set(err, 101, "no such device");
	lock(s);
	rc = s->st_ops->so_device_delete(s->st_impl, device_id, now_ms, err);
	unlock(s);
	return rc;
}

int
store_counts(struct store *s, struct store_counts *out, struct store_err *err)
{
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL || out == NULL)
		return store_err_set(err, 900, "invalid argument: counts");
	lock(s);
	rc = s->st_ops->so_counts(s->st_impl, out, err);
	unlock(s);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_key_scan(struct store *s, store_key_cb cb, void *arg, struct store_err *err)
{
	char after_id[MSSP_STORE_MAX_KEY_ID + 1] = "";
	int64_t after_ms = INT64_MIN;
	struct store_key *page;
	size_t n, i, visited = 0;
	int rc = 0;

	if (s == NULL || cb == NULL)
		return store_err_set(err, 900, "invalid argument: no store or callback");
	/* a page of keys is large (certificates): on the heap */
	page = calloc(MSSP_STORE_SCAN_BATCH, sizeof(*page));
	if (page == NULL)
		return store_err_set(err, 900, "out of memory");
	while (visited < MSSP_STORE_MAX_SCAN) {
		memset(page, 0, MSSP_STORE_SCAN_BATCH * sizeof(*page));
		lock(s);
		rc = s->st_ops->so_key_page(s->st_impl, after_ms, after_id, page,
					    MSSP_STORE_SCAN_BATCH, &n, err);
		unlock(s);
		if (rc != 0)
			break;
		/* the callback runs outside the lock: it may call the store */
		for (i = 0; i < n && visited < MSSP_STORE_MAX_SCAN; i++, visited++)
			if (cb(arg, &page[i]) != 0)
				goto out;
		if (n < MSSP_STORE_SCAN_BATCH)
			break;
		/* keyset paging: the callback may change keys (disable them),
		 * which moves nothing in (created, key_id) order */
		after_ms = page[n - 1].sk_created_ms;
		memcpy(after_id, page[n - 1].sk_key_id, sizeof(after_id));
	}
out:
	free(page);
	return rc;
}

int
store_tx_list_user(struct store *s, const char *msisdn, struct store_tx *out, size_t max,
		   size_t *n, struct store_err *err)
{
	size_t i;
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || msisdn == NULL || !list_args_ok(out, max, n))
		return store_err_set(err, 900, "invalid argument: transaction list");
	for (i = 0; i < max; i++)
		store_tx_clear(&out[i]);
	/* a user that cannot exist has no transactions (history outlives
	 * the user record: an unknown MSISDN is not an error) */
	if (!text_ok(msisdn, 1, MSSP_STORE_MAX_MSISDN, false) || max == 0)
		return 0;
	lock(s);
	rc = s->st_ops->so_tx_list_user(s->st_impl, msisdn, out, max, n, err);
	unlock(s);
	if (rc != 0) {
		for (i = 0; i < max; i++)
			store_tx_clear(&out[i]);
		*n = 0;
	}
	return rc;
}

/* ---- records ------------------------------------------------------------------ */

void
store_rec_clear(struct store_rec *r)
{
	if (r == NULL)
		return;
	free(r->sr_body);
	memset(r, 0, sizeof(*r));
}

/* 1..MSSP_STORE_MAX_KIND chars of [a-z_]. */
static bool
kind_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= MSSP_STORE_MAX_KIND || !((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return false;
	return i >= 1;
}

static bool
rec_name_ok(const char *s)
{
	return text_ok(s, 1, MSSP_STORE_MAX_REC_NAME, false);
}

/* A JSON object, and nothing else: no NUL (the body comes back as a C
 * string), valid UTF-8, no trailing data, no duplicate member names (two
 * readers must not see two different values). */
static bool
body_ok(const char *body, size_t len)
{
	json_error_t je;
	json_t *j;
	bool ok;

	if (body == NULL || len < 2 || len > MSSP_STORE_MAX_REC_BODY || memchr(body, '\0', len))
		return false;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	ok = j != NULL && json_is_object(j);
	json_decref(j);
	return ok;
}

static int
check_rec(const struct store_rec *r, struct store_err *err)
{
	if (r == NULL)
		return store_err_set(err, 900, "invalid argument: no record");
	if (fixed_len(r->sr_kind, sizeof(r->sr_kind)) == SIZE_MAX || !kind_ok(r->sr_kind))
		return store_err_set(err, 900, "invalid argument: record kind");
	if (fixed_len(r->sr_name, sizeof(r->sr_name)) == SIZE_MAX || !rec_name_ok(r->sr_name))
		return store_err_set(err, 900, "invalid argument: record name");
	if (fixed_len(r->sr_owner, sizeof(r->sr_owner)) == SIZE_MAX ||
	    (r->sr_owner[0] != '\0' && !rec_name_ok(r->sr_owner)))
		return store_err_set(err, 900, "invalid argument: record owner");
	if (r->sr_expires_ms < 0)
		return store_err_set(err, 900, "invalid argument: record expiry");
	if (!body_ok(r->sr_body, r->sr_body_len))
		return store_err_set(err, 900, "invalid argument: record body");
	return 0;
}

int
store_rec_put(struct store *s, const struct store_rec *r, uint64_t expect_version, int64_t now_ms,
	      struct store_rec *out, struct store_err *err)
{
	struct store_rec tmp = { 0 };
	int rc = -1;

	if (writable(s, err) != 0 || check_rec(r, err) != 0)
		goto out;
	if (now_ms <= 0) {
		store_err_set(err, 900, "invalid argument: time");
		goto out;
	}
	lock(s);
	rc = s->st_ops->so_rec_put(s->st_impl, r, expect_version, now_ms, out ? &tmp : NULL,
				   err);
	unlock(s);
out:
	/* through `tmp`: `out` may be `r` itself (a caller refreshing its
	 * copy), whose body the backend read until now */
	if (rc == 0 && out != NULL) {
		store_rec_clear(out);
		*out = tmp;
	} else {
		store_rec_clear(&tmp);
		if (out != r)
			store_rec_clear(out);
	}
	return rc;
}

int
store_rec_get(struct store *s, const char *kind, const char *name, struct store_rec *out,
	      struct store_err *err)
{
	int rc;

	store_rec_clear(out);
	if (s == NULL || out == NULL || kind == NULL || name == NULL)
		return store_err_set(err, 900, "invalid argument: record lookup");
	if (!kind_ok(kind))
		return store_err_set(err, 900, "invalid argument: record kind");
	if (!rec_name_ok(name))
		return store_err_set(err, 101, "no such record");
	lock(s);
	rc = s->st_ops->so_rec_get(s->st_impl, kind, name, out, err);
	unlock(s);
	if (rc != 0)
		store_rec_clear(out);
	return rc;
}

int
store_rec_delete(struct store *s, const char *kind, const char *name, uint64_t expect_version,
		 int64_t now_ms, struct store_err *err)
{
	int rc;

	if (writable(s, err) != 0)
		return -1;
	if (name == NULL || !kind_ok(kind) || expect_version == STORE_REC_NEW || now_ms <= 0)
		return store_err_set(err, 900, "invalid argument: record delete");
	if (!rec_name_ok(name))
		return store_err_set(err, 101, "no such record");
	lock(s);
	rc = s->st_ops->so_rec_delete(s->st_impl, kind, name, expect_version, now_ms, err);
	unlock(s);
	return rc;
}

int
store_rec_list(struct store *s, const char *kind, const char *owner, int state, const char *after,
	       struct store_rec *out, size_t max, size_t *n, struct store_err *err)
{
	size_t i;
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || !list_args_ok(out, max, n))
		return store_err_set(err, 900, "invalid argument: record list");
	for (i = 0; i < max; i++)
		store_rec_clear(&out[i]);
	if (!kind_ok(kind))
		return store_err_set(err, 900, "invalid argument: record kind");
	if (owner != NULL && owner[0] != '\0' && !rec_name_ok(owner))
		return store_err_set(err, 900, "invalid argument: record owner");
	if (after != NULL && !rec_name_ok(after))
		return store_err_set(err, 900, "invalid argument: paging name");
	if (max == 0)
		return 0;
	lock(s);
	rc = s->st_ops->so_rec_list(s->st_impl, kind, owner, state, after, out, max, n, err);
	unlock(s);
	if (rc != 0) {
		for (i = 0; i < max; i++)
			store_rec_clear(&out[i]);
		*n = 0;
	}
	return rc;
}

int
store_rec_generation(struct store *s, const char *kind, uint64_t *gen, struct store_err *err)
{
	int rc;

	if (gen != NULL)
		*gen = 0;
	if (s == NULL || gen == NULL || !kind_ok(kind))
		return store_err_set(err, 900, "invalid argument: record generation");
	lock(s);
	rc = s->st_ops->so_rec_generation(s->st_impl, kind, gen, err);
	unlock(s);
	if (rc != 0)
		*gen = 0;
	return rc;
}
