/*
 * home.c - HomeMSSP (see home.h).
 *
 * Locking: one mutex guards the device table (sessions and pending
 * prompts).  Sealing and handing a blob to the AFE happen under it, so the
 * blobs of one device reach the AFE (and the wire) in counter order.
 * Store calls never run under it.
 *
 * Job delivery (issue 5): a poller thread (h_poll) wakes every
 * MSSP_HOME_JOB_POLL_MS and hands ONE delivery round to the pool; a round
 * already queued or running absorbs the next tick (h_dbusy), so rounds
 * never overlap and a slow store never piles them up.  The online job of
 * a device runs a round inline (it is on the pool already).  A pthread
 * and not a timer: HomeMSSP has no loop of its own, and the AE's loop
 * belongs to another module.
 */
#include "roles/home.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mss/appmsg.h"
#include "mss/json.h"
#include "mss/lex.h"
#include "mss/validate.h"
#include "mss/profile.h"
#include "pki/e2e.h"
#include "pki/sig.h"
#include "roles/afe.h"
#include "roles/conf.h"
#include "roles/node.h"
#include "roles/reg.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/pool.h"

#define HOME_BUCKETS MSSP_HOME_DEV_BUCKETS
#define VALIDATE_AS "http://uri.etsi.org/TS102204/v1.1.2#validate"

struct pending {
	char p_nonce[MSSP_STORE_MAX_NONCE + 1];
	char *p_plain; /* the encoded "sign" message */
	size_t p_len;
};

/* A job message sent to a device: not again on the same session within
 * MSSP_HOME_JOB_RESEND_MS (the poller runs far more often than that, and
 * an ISSUED job stays ISSUED until the phone answers).  Keyed by the job's
 * state too: the certificate of a job whose keygen just went out is a new
 * message and goes at once. */
struct sentjob {
	char sj_id[32];
	int sj_state;
	uint64_t sj_session;
	int64_t sj_ms;
};

struct dev {
	char d_id[MSSP_KEYSTORE_MAX_ID + 1];
	uint64_t d_session; /* AFE session of the E2E session, 0: none */
	struct e2e_session d_es;
	struct pending d_pend[MSSP_HOME_MAX_PENDING];
	size_t d_npend;
	struct sentjob d_jobs[MSSP_HOME_DEV_JOBS];
	struct dev *d_next;
};

struct home {
	struct home_conf h_conf;
	struct afe *h_afe;
	X509_STORE *h_trust;
	pthread_mutex_t h_lock;
	struct dev *h_devs[HOME_BUCKETS];
	_Atomic uint64_t h_prompts, h_answers, h_verified, h_invalid, h_late;
	_Atomic uint64_t h_jobs_sent, h_jobs_acked;
	_Atomic int64_t h_pending;

	/* Job delivery (h_reg NULL: none). */
	struct reg *h_reg;
	pthread_mutex_t h_plock;  /* the poller's stop flag and wake-up  */
	pthread_cond_t h_pcv;
	bool h_pstarted, h_pstop;
	pthread_t h_poll;
	unsigned h_djobs;	  /* rounds queued on the pool (h_plock) */
	atomic_bool h_dbusy;	  /* a round is queued or running        */
	atomic_bool h_dagain;	  /* run one more round when it ends     */
};

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
dev_bucket(const char *id)
{
	uint64_t hsh = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		hsh = (hsh ^ *p) * 1099511628211ULL;
	return (size_t)(hsh % HOME_BUCKETS);
}

/* Lock held. */
static struct dev *
dev_find(struct home *h, const char *id, bool create)
{
	size_t b = dev_bucket(id);
	for (struct dev *d = h->h_devs[b]; d; d = d->d_next)
		if (strcmp(d->d_id, id) == 0)
			return d;
	if (!create || strlen(id) > MSSP_KEYSTORE_MAX_ID)
		return NULL;
	struct dev *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	snprintf(d->d_id, sizeof d->d_id, "%s", id);
	d->d_next = h->h_devs[b];
	h->h_devs[b] = d;
	return d;
}

/* Seal and hand one message to the AFE.  Lock held. */
static int
dev_send_locked(struct home *h, struct dev *d, const char *plain, size_t len)
{
	if (!d->d_session || !d->d_es.es_ready || !h->h_afe)
		return -1;
	size_t cap = len + E2E_SEAL_OVERHEAD;
	unsigned char *blob = malloc(cap);
	if (!blob)
		return -1;
	size_t bl;
	struct pki_err pe;
	int rc = e2e_seal(&d->d_es, (const unsigned char *)plain, len, blob, cap, &bl, &pe);
	if (rc == 0)
		rc = afe_send(h->h_afe, d->d_id, d->d_session, blob, bl);
	free(blob);
	return rc;
}

static void
pending_drop_locked(struct home *h, struct dev *d, const char *nonce)
{
	for (size_t i = 0; i < d->d_npend; i++) {
		if (strcmp(d->d_pend[i].p_nonce, nonce) != 0)
			continue;
		free(d->d_pend[i].p_plain);
		d->d_pend[i] = d->d_pend[d->d_npend - 1];
		memset(&d->d_pend[d->d_npend - 1], 0, sizeof d->d_pend[0]);
		d->d_npend--;
		atomic_fetch_sub(&h->h_pending, 1);
		return;
	}
}

/* Forget the prompt of nonce wherever it waits (the transaction ended). */
static void
drop_pending(struct home *h, const char *nonce)
{
	if (!nonce[0])
		return;
	pthread_mutex_lock(&h->h_lock);
	for (size_t b = 0; b < HOME_BUCKETS; b++)
		for (struct dev *d = h->h_devs[b]; d; d = d->d_next)
			pending_drop_locked(h, d, nonce);
	pthread_mutex_unlock(&h->h_lock);
}

/* Send encoded text to a device's current E2E session.  0 when handed to
 * the AFE, -1 otherwise.  Any thread. */
static int
send_text_to_device(struct home *h, const char *device_id, const char *txt, size_t len)
{
	int rc = -1;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, device_id, false);
	if (d)
		rc = dev_send_locked(h, d, txt, len);
	pthread_mutex_unlock(&h->h_lock);
	return rc;
}

/* Send an encoded app message to a device (no pending copy).  Any thread. */
static void
send_to_device(struct home *h, const char *device_id, const struct appmsg *m)
{
	char *txt;
	size_t len;
	struct mss_err e;
	if (appmsg_encode(m, &txt, &len, &e) != 0)
		return;
	(void)send_text_to_device(h, device_id, txt, len);
	free(txt);
}

/* ---- life cycle ------------------------------------------------------- */

struct home *
home_new(const struct home_conf *c, char *err, size_t errlen)
{
	struct home *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->h_conf = *c;
	pthread_mutex_init(&h->h_lock, NULL);
	pthread_mutex_init(&h->h_plock, NULL);
	pthread_cond_init(&h->h_pcv, NULL);
	h->h_trust = X509_STORE_new();
	FILE *f = fopen(c->hc_user_ca_cert, "r");
	X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!h->h_trust || !ca || X509_STORE_add_cert(h->h_trust, ca) != 1) {
		snprintf(err, errlen, "cannot load the user CA certificate %s",
			 c->hc_user_ca_cert);
		X509_free(ca);
		home_free(h);
		return NULL;
	}
	X509_free(ca);
	return h;
}

void
home_set_afe(struct home *h, struct afe *a)
{
	h->h_afe = a;
}

void
home_set_final(struct home *h, home_final_fn fn, void *arg)
{
	h->h_conf.hc_on_final = fn;
	h->h_conf.hc_arg = arg;
}

void
home_free(struct home *h)
{
	if (!h)
		return;
	home_stop(h);
	for (size_t b = 0; b < HOME_BUCKETS; b++) {
		struct dev *d = h->h_devs[b];
		while (d) {
			struct dev *n = d->d_next;
			for (size_t i = 0; i < d->d_npend; i++)
				free(d->d_pend[i].p_plain);
			e2e_session_wipe(&d->d_es);
			free(d);
			d = n;
		}
	}
	X509_STORE_free(h->h_trust);
	pthread_cond_destroy(&h->h_pcv);
	pthread_mutex_destroy(&h->h_plock);
	pthread_mutex_destroy(&h->h_lock);
	free(h);
}

void
home_get_stats(struct home *h, struct home_stats *o)
{
	o->hs_prompts = atomic_load(&h->h_prompts);
	o->hs_answers = atomic_load(&h->h_answers);
	o->hs_verified = atomic_load(&h->h_verified);
	o->hs_invalid = atomic_load(&h->h_invalid);
	o->hs_late = atomic_load(&h->h_late);
	o->hs_jobs_sent = atomic_load(&h->h_jobs_sent);
	o->hs_jobs_acked = atomic_load(&h->h_jobs_acked);
	int64_t p = atomic_load(&h->h_pending);
	o->hs_pending = p > 0 ? (uint64_t)p : 0;
}

/* ---- key selection ---------------------------------------------------- */

void
home_msisdn(const char *in, char *out, size_t cap)
{
	const char *p = in;
	while (*p == '+')
		p++;
	snprintf(out, cap, "+%s", p);
}

static int
parse_profile(const char *uri, struct mss_profile *p)
{
	char e[128];
	if (mss_profile_resolve_alias(uri, mss_profile_demo_aliases,
				      mss_profile_demo_aliases_count, p, e, sizeof e) == 0)
		return 0;
	return mss_profile_parse(uri, p, e, sizeof e);
}

/* May the AP use a key of profile `p`?  An allowed entry covers the key
 * profiles that satisfy it exactly (mss::sign:loa3 covers
 * mss:demo:sign:loa3:app). */
static bool
ap_allows(const struct conf_ap *ap, const struct mss_profile *p)
{
	if (!ap || ap->ca_all_profiles)
		return true;
	for (size_t i = 0; i < ap->ca_nprofiles; i++) {
		struct mss_profile allowed;
		if (parse_profile(ap->ca_profiles[i], &allowed) == 0 &&
		    mss_profile_satisfies(&allowed, p, MSS_CMP_EXACT))
			return true;
	}
	return false;
}

int
home_select(struct home *h, struct store *st, const struct mss_signature_req *req,
	    const struct conf_ap *ap, struct home_choice *out, struct mss_err *err)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_err se;
	struct store_user u;
	memset(out, 0, sizeof *out);
	if (!req->mobile_user || !req->mobile_user->msisdn)
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "MSISDN missing");
	/* the user must be shown what is signed (P-02): checked before
	 * anything is created */
	char *shown = NULL;
	if (home_display_text(req, &shown, err) != 0)
		return -1;
	free(shown);
	home_msisdn(req->mobile_user->msisdn, msisdn, sizeof msisdn);
	if (store_user_get(st, msisdn, &u, &se) != 0)
		return mss_err_set(err, se.status == MSS_UNKNOWN_CLIENT ? MSS_UNKNOWN_CLIENT
									 : MSS_INTERNAL_ERROR,
				   0, se.status == MSS_UNKNOWN_CLIENT ? "Unknown user" : se.detail);
	if (u.su_state != STORE_USER_ACTIVE)
		return mss_err_set(err, MSS_CARD_BLOCKED, 0, "User suspended");

	struct mss_profile want;
	const char *uri = req->signature_profile ? req->signature_profile : "mss:";
	if (parse_profile(uri, &want) != 0)
		return mss_err_set(err, MSS_UNSUPPORTED_PROFILE, 0, "Unsupported profile");
	enum mss_profile_cmp cmp = MSS_CMP_EXACT;
	if (req->signature_profile_comparison) {
		cmp = mss_profile_cmp_parse(req->signature_profile_comparison);
		if (cmp == MSS_CMP_INVALID)
			return mss_err_set(err, MSS_WRONG_PARAM, 0,
					   "Bad SignatureProfileComparison");
	}

	struct store_key *keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys);
	/* one entry per (key, profile) pair */
	size_t maxav = MSSP_STORE_MAX_USER_KEYS * MSSP_KEYSTORE_MAX_PROFILES;
	struct mss_profile *av = calloc(maxav, sizeof *av);
	size_t *owner = calloc(maxav, sizeof *owner);
	size_t nkeys = 0, nav = 0;
	int rc = -1;
	if (!keys || !av || !owner) {
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto out;
	}
	if (store_user_keys(st, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &nkeys, &se) != 0) {
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, se.detail);
		goto out;
	}
	bool op_seen = false;
	for (size_t k = 0; k < nkeys; k++) {
		char prof[MSSP_STORE_MAX_PROFILES_TEXT + 1];
		snprintf(prof, sizeof prof, "%s", keys[k].sk_profiles);
		char *save = NULL;
		for (char *t = strtok_r(prof, " ", &save); t && nav < maxav;
		     t = strtok_r(NULL, " ", &save)) {
			if (parse_profile(t, &av[nav]) != 0)
				continue;
			if (want.pr_op == MSS_PROFILE_OP_ANY || av[nav].pr_op == want.pr_op)
				op_seen = true;
			/* a key the AP may not use is not a candidate (P-12) */
			if (!ap_allows(ap, &av[nav]))
				continue;
			owner[nav++] = k;
		}
	}
	int idx = mss_profile_select(&want, 1, av, nav, cmp);
	if (idx < 0) {
		if (!op_seen)
			mss_err_set(err, MSS_NO_KEY_FOUND, 0, "No key found");
		else
			mss_err_set(err, MSS_UNSUPPORTED_PROFILE, 0, "Unsupported profile");
		goto out;
	}
	out->hk_key = keys[owner[idx]];
	mss_profile_format(&av[idx], out->hk_profile, sizeof out->hk_profile);
	if (out->hk_key.sk_state == STORE_KEY_REVOKED) {
		mss_err_set(err, MSS_REVOKED_CERTIFICATE, 0, "Revoked certificate");
		goto out;
	}
	if (out->hk_key.sk_state != STORE_KEY_ACTIVE) {
		mss_err_set(err, MSS_NO_KEY_FOUND, 0, "No key found");
		goto out;
	}
	if (out->hk_key.sk_cert_len == 0) {
		mss_err_set(err, MSS_NO_CERT_FOUND, 0, "No certificate found");
		goto out;
	}
	/* key material that fails the key checks (a weak RSA key: ROCA,
	 * Fermat, shared primes, the compromised list) never signs: refused
	 * as if disabled, and the detail says nothing about why.  EC keys
	 * cost reg nothing; the verdict is cached per key and serial. */
	if (h && h->h_reg && !reg_key_usable(h->h_reg, &out->hk_key)) {
		LOG_EV("key.unusable", "key", out->hk_key.sk_key_id);
		mss_err_set(err, MSS_NO_KEY_FOUND, 0, "No key found");
		goto out;
	}
	rc = 0;
out:
	if (keys)
		OPENSSL_cleanse(keys, MSSP_STORE_MAX_USER_KEYS * sizeof *keys);
	free(keys);
	free(av);
	free(owner);
	return rc;
}

int
home_dtbs_bytes(const struct mss_signature_req *req, uint8_t **out, size_t *len,
		struct mss_err *err)
{
	*out = NULL;
	*len = 0;
	if (!req->dtbs || !req->dtbs->data)
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "DataToBeSigned missing");
	const char *d = req->dtbs->data;
	size_t n = strlen(d);
	if (req->dtbs->encoding && strcasecmp(req->dtbs->encoding, "base64") == 0) {
		/* strip whitespace (the validator accepted the text) */
		char *clean = malloc(n + 1);
		uint8_t *bin = malloc(n / 4 * 3 + 3);
		size_t c = 0;
		if (!clean || !bin) {
			free(clean);
			free(bin);
			return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		}
		for (size_t i = 0; i < n; i++)
			if (d[i] != ' ' && d[i] != '\t' && d[i] != '\r' && d[i] != '\n')
				clean[c++] = d[i];
		clean[c] = 0;
		int bl = c % 4 == 0 ? EVP_DecodeBlock(bin, (unsigned char *)clean, (int)c) : -1;
		if (bl < 0) {
			free(clean);
			free(bin);
			return mss_err_set(err, MSS_WRONG_PARAM, 1016, "Bad base64 DataToBeSigned");
		}
		if (c >= 1 && clean[c - 1] == '=')
			bl--;
		if (c >= 2 && clean[c - 2] == '=')
			bl--;
		free(clean);
		*out = bin;
		*len = (size_t)bl;
		return 0;
	}
	*out = malloc(n ? n : 1);
	if (!*out)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
	memcpy(*out, d, n);
	*len = n;
	return 0;
}

int
home_display_text(const struct mss_signature_req *req, char **out, struct mss_err *err)
{
	*out = NULL;
	if (req->dtbd && req->dtbd->data && req->dtbd->data[0]) {
		const char *enc = req->dtbd->encoding;
		if (enc && strcasecmp(enc, "base64") == 0) {
			size_t n = strlen(req->dtbd->data);
			char *t = malloc(n + 1);
			long l = t ? mss_lex_base64_decode(req->dtbd->data, (unsigned char *)t, n) : -1;
			if (l <= 0) {
				free(t);
				return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
						   "Bad base64 DataToBeDisplayed");
			}
			t[l] = 0;
			if (strlen(t) != (size_t)l || mss_display_text_check(t, err) != 0) {
				free(t);
				return err->code ? -1 : mss_err_set(err, MSS_INAPPROPRIATE_DATA, 0,
								     "Inappropriate data");
			}
			*out = t;
			return 0;
		}
		*out = strdup(req->dtbd->data);
		return *out ? 0 : mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
	}
	const char *mt = req->dtbs ? req->dtbs->mime_type : NULL;
	if (mt && strncasecmp(mt, "text/plain", 10) != 0)
		return mss_err_set(err, MSS_MISSING_PARAM, MSS_SUB_DTBD_MISSING,
				   "DataToBeDisplayed missing");
	uint8_t *b;
	size_t n;
	if (home_dtbs_bytes(req, &b, &n, err) != 0)
		return -1;
	char *t = malloc(n + 1);
	if (!t) {
		free(b);
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
	}
	memcpy(t, b, n);
	t[n] = 0;
	free(b);
	/* text that is not showable as it stands (NUL, controls, bidi, too
	 * long, not UTF-8) is refused, never shown altered (P-02) */
	if (n == 0 || strlen(t) != n || !mss_lex_utf8_valid(t, n) ||
	    mss_display_text_check(t, err) != 0) {
		free(t);
		return err->code ? -1 : mss_err_set(err, MSS_MISSING_PARAM, MSS_SUB_DTBD_MISSING,
						     "DataToBeDisplayed missing");
	}
	*out = t;
	return 0;
}

/* ---- prompting -------------------------------------------------------- */

static void
ap_display_name(const char *ap_id, char *out, size_t cap)
{
	struct conf_aps *t = conf_aps_get();
	/* an AP_ID longer than the prompt's field is cut, never overflowed */
	snprintf(out, cap, "%.*s", (int)(cap - 1), ap_id);
	for (size_t i = 0; t && i < t->naps; i++)
		if (strcmp(t->aps[i].ca_id, ap_id) == 0) {
			snprintf(out, cap, "%s", t->aps[i].ca_name);
			break;
		}
	conf_aps_put(t);
}

static const char *
service_value(const struct mss_signature_req *req, const char *suffix, int which)
{
	if (!req->additional_services)
		return NULL;
	for (size_t i = 0; i < req->additional_services->n; i++) {
		const struct mss_service *s = req->additional_services->items[i];
		if (!s || !s->description)
			continue;
		size_t dl = strlen(s->description), sl = strlen(suffix);
		if (dl < sl || strcmp(s->description + dl - sl, suffix) != 0)
			continue;
		if (which == 0)
			return s->description;
		if (which == 1)
			return s->user_lang;
		if (which == 2)
			return s->event_id;
		if (which == 3)
			return s->nospam ? s->nospam->code : NULL;
	}
	return NULL;
}

/* Build the "sign" message for tx.  0, or -1 with err. */
static int
build_prompt(const struct store_tx *tx, const struct mss_signature_req *req,
	     const struct store_key *key, char **txt, size_t *len, struct mss_err *err)
{
	struct appmsg m;
	memset(&m, 0, sizeof m);
	m.am_type = APPMSG_SIGN;
	snprintf(m.am_nonce, sizeof m.am_nonce, "%s", tx->tx_nonce);
	ap_display_name(tx->tx_ap_id, m.am_ap_name, sizeof m.am_ap_name);
	snprintf(m.am_ap_id, sizeof m.am_ap_id, "%s", tx->tx_ap_id);
	snprintf(m.am_key, sizeof m.am_key, "%s", key->sk_group);
	const char *sp = strchr(key->sk_profiles, ' ');
	snprintf(m.am_profile, sizeof m.am_profile, "%.*s",
		 sp ? (int)(sp - key->sk_profiles) : (int)strlen(key->sk_profiles),
		 key->sk_profiles);
	m.am_pin = key->sk_has_pin;
	snprintf(m.am_dtbd_mime, sizeof m.am_dtbd_mime, "text/plain");
	if (home_display_text(req, &m.am_dtbd, err) != 0 ||
	    home_dtbs_bytes(req, &m.am_dtbs, &m.am_dtbs_len, err) != 0) {
		appmsg_clear(&m);
		return -1;
	}
	/* the app knows two kinds: text it can show, and bytes it cannot */
	const char *mt = req->dtbs->mime_type;
	snprintf(m.am_dtbs_mime, sizeof m.am_dtbs_mime, "%s",
		 !mt || strncasecmp(mt, "text/plain", 10) == 0 ? "text/plain"
							     : "application/octet-stream");
	m.am_deadline_ms = tx->tx_deadline_ms;
	const char *lang = service_value(req, "#userLang", 1);
	snprintf(m.am_lang, sizeof m.am_lang, "%s", lang ? lang : "en");
	const char *ev = service_value(req, "#eventId", 2);
	if (ev)
		snprintf(m.am_event, sizeof m.am_event, "%s", ev);
	const char *ns = service_value(req, "#noSpam", 3);
	if (ns)
		snprintf(m.am_nospam, sizeof m.am_nospam, "%s", ns);
	int rc = appmsg_encode(&m, txt, len, err);
	appmsg_clear(&m);
	return rc;
}

static void
random_nonce(char out[33])
{
	unsigned char r[16];
	if (RAND_bytes(r, sizeof r) != 1)
		abort(); /* no CSPRNG: nothing may go on (P-13) */
	for (size_t i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Queue a prompt for the device and send it if it is connected. */
static void
queue_prompt(struct home *h, const char *device_id, const char *nonce, char *txt, size_t len)
{
	bool sent = false;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, device_id, true);
	if (d) {
		const char *to_send = txt;
		size_t to_len = len;
		size_t i;
		for (i = 0; i < d->d_npend; i++)
			if (strcmp(d->d_pend[i].p_nonce, nonce) == 0)
				break;
		if (i < d->d_npend) {
			to_send = d->d_pend[i].p_plain; /* already queued: same prompt */
			to_len = d->d_pend[i].p_len;
		} else if (d->d_npend < MSSP_HOME_MAX_PENDING) {
			struct pending *p = &d->d_pend[d->d_npend++];
			snprintf(p->p_nonce, sizeof p->p_nonce, "%s", nonce);
			p->p_plain = txt;
			p->p_len = len;
			txt = NULL;
			atomic_fetch_add(&h->h_pending, 1);
		}
		/* beyond the cap the prompt is sent once and not kept for a
		 * reconnect: the transaction then expires if it is lost */
		sent = dev_send_locked(h, d, to_send, to_len) == 0;
	}
	pthread_mutex_unlock(&h->h_lock);
	free(txt);
	if (!sent && h->h_afe)
		(void)afe_wake(h->h_afe, device_id, "");
}

static void
finalise_expired(struct home *h, struct store *st, const char *id, enum store_state from)
{
	struct store_tx_change chg = {.tc_status = MSS_EXPIRED_TRANSACTION};
	struct store_tx out;
	struct store_err se;
	memset(&out, 0, sizeof out);
	int rc = store_tx_transition(st, id, from, STORE_ST_EXPIRED, &chg, wall_ms(), &out, &se);
	if (rc == 0) {
		home_withdraw(h, &out, MSS_EXPIRED_TRANSACTION);
		if (h->h_conf.hc_on_final)
			h->h_conf.hc_on_final(h->h_conf.hc_arg, st, &out);
	}
	store_tx_clear(&out);
}

int
home_prompt(struct home *h, struct store *st, const struct store_tx *tx,
	    const struct mss_signature_req *req, struct mss_err *err)
{
	struct store_key key;
	struct store_err se;
	struct store_tx cur;
	char nonce[33];
	char *txt = NULL;
	size_t len;
	memset(&cur, 0, sizeof cur);
	if (store_key_get(st, tx->tx_key_id, &key, &se) != 0)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Key record missing");
	random_nonce(nonce);
	struct store_tx_change chg = {.tc_nonce = nonce};
	int rc = store_tx_transition(st, tx->tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, &chg,
				     wall_ms(), &cur, &se);
	if (rc != 0) {
		if (se.status == STORE_STATUS_CONFLICT || se.status == STORE_STATUS_FINAL) {
			store_tx_clear(&cur);
			return 0; /* someone else moved it: nothing to do here */
		}
		if (se.status == STORE_STATUS_PAST_DEADLINE) {
			store_tx_clear(&cur);
			finalise_expired(h, st, tx->tx_id, STORE_ST_ACCEPTED);
			return 0;
		}
		store_tx_clear(&cur);
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Cannot record the prompt");
	}
	/* committed: now (and only now) the prompt may leave */
	if (build_prompt(&cur, req, &key, &txt, &len, err) != 0) {
		struct store_tx_change f = {.tc_status = err->code ? err->code : 900,
					    .tc_detail = "prompt could not be built"};
		struct store_tx fin;
		memset(&fin, 0, sizeof fin);
		if (f.tc_status == 500 || f.tc_status == 502 || f.tc_status == 208 ||
		    f.tc_status == 504 || f.tc_status == 100)
			f.tc_status = 900;
		if (store_tx_transition(st, tx->tx_id, STORE_ST_PROMPT_SENT, STORE_ST_FAILED, &f,
					wall_ms(), &fin, &se) == 0 &&
		    h->h_conf.hc_on_final)
			h->h_conf.hc_on_final(h->h_conf.hc_arg, st, &fin);
		store_tx_clear(&fin);
		store_tx_clear(&cur);
		OPENSSL_cleanse(&key, sizeof key);
		return 0;
	}
	atomic_fetch_add(&h->h_prompts, 1);
	LOG_EV("tx.prompt", "tx", tx->tx_id, "device", key.sk_device_id, "key", key.sk_key_id);
	queue_prompt(h, key.sk_device_id, nonce, txt, len);
	/* an expiry that ran between the commit and the queueing found no
	 * prompt to withdraw: look again, so that a dead prompt is never kept
	 * for re-sending */
	struct store_tx now;
	memset(&now, 0, sizeof now);
	if (store_tx_get_by_id(st, tx->tx_id, 0, &now, &se) == 0 && store_state_final(now.tx_state))
		home_withdraw(h, &now, now.tx_status ? now.tx_status : MSS_EXPIRED_TRANSACTION);
	store_tx_clear(&now);
	store_tx_clear(&cur);
	return 0;
}

void
home_withdraw(struct home *h, const struct store_tx *tx, int status)
{
	if (!tx->tx_nonce[0])
		return; /* never prompted */
	/* the device is the key's: find it among the pending prompts */
	char device[MSSP_KEYSTORE_MAX_ID + 1] = "";
	pthread_mutex_lock(&h->h_lock);
	for (size_t b = 0; b < HOME_BUCKETS && !device[0]; b++)
		for (struct dev *d = h->h_devs[b]; d && !device[0]; d = d->d_next)
			for (size_t i = 0; i < d->d_npend; i++)
				if (strcmp(d->d_pend[i].p_nonce, tx->tx_nonce) == 0) {
					snprintf(device, sizeof device, "%s", d->d_id);
					pending_drop_locked(h, d, tx->tx_nonce);
					break;
				}
	pthread_mutex_unlock(&h->h_lock);
	if (!device[0])
		return;
	struct appmsg m;
	memset(&m, 0, sizeof m);
	m.am_type = APPMSG_CANCEL;
	snprintf(m.am_nonce, sizeof m.am_nonce, "%s", tx->tx_nonce);
	m.am_status = status;
	send_to_device(h, device, &m);
}

void
home_receipt(struct home *h, struct store *st, const struct store_tx *tx, const char *text)
{
	struct store_key key;
	struct store_err se;
	if (!tx->tx_nonce[0] || store_key_get(st, tx->tx_key_id, &key, &se) != 0)
		return;
	struct appmsg m;
	memset(&m, 0, sizeof m);
	m.am_type = APPMSG_RECEIPT;
	snprintf(m.am_nonce, sizeof m.am_nonce, "%s", tx->tx_nonce);
	m.am_message = strdup(text);
	if (m.am_message)
		send_to_device(h, key.sk_device_id, &m);
	appmsg_clear(&m);
}

/* ---- answers ------------------------------------------------------------ */

static bool
wants_validation(const struct mss_signature_req *req)
{
	return service_value(req, "#validate", 0) != NULL;
}

static void
b64_encode(const uint8_t *in, size_t len, char **out, size_t *olen)
{
	*out = malloc(4 * ((len + 2) / 3) + 1);
	if (!*out)
		return;
	*olen = (size_t)EVP_EncodeBlock((unsigned char *)*out, in, (int)len);
}

/* Verify the answer of an ANSWERED transaction and finalise it. */
static void
finalise_answer(struct home *h, struct store *st, const struct store_tx *tx,
		const struct appmsg *ans)
{
	struct store_tx_change chg;
	struct store_tx full, fin;
	struct store_err se;
	struct mss_err me;
	struct mss_msg *msg = NULL;
	uint8_t *dtbs = NULL;
	size_t dtbs_len = 0;
	char *sig64 = NULL;
	size_t sig64_len = 0;
	X509 *cert = NULL;
	struct store_key key;
	enum store_state to = STORE_ST_COMPLETED;
	char profile[MSSP_PROFILE_MAX_URI + 1];
	memset(&chg, 0, sizeof chg);
	memset(&full, 0, sizeof full);
	memset(&fin, 0, sizeof fin);
	memset(&me, 0, sizeof me);

	if (ans->am_status != MSS_SIGNATURE) {
		int s = ans->am_status;
		static const int allowed[] = {401, 402, 403, 404, 422, 900};
		bool ok = false;
		for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
			ok |= s == allowed[i];
		chg.tc_status = ok ? s : MSS_INTERNAL_ERROR;
		chg.tc_detail = "device answer";
		goto commit;
	}
	if (store_tx_get_by_id(st, tx->tx_id, STORE_GET_REQUEST, &full, &se) != 0 ||
	    !full.tx_request ||
	    !(msg = mss_json_decode(full.tx_request, full.tx_request_len, 0, &me)) ||
	    msg->type != MSS_SIGNATURE_REQ ||
	    home_dtbs_bytes(msg->u.sig_req, &dtbs, &dtbs_len, &me) != 0 ||
	    store_key_get(st, tx->tx_key_id, &key, &se) != 0) {
		to = STORE_ST_FAILED;
		chg.tc_status = MSS_INTERNAL_ERROR;
		chg.tc_detail = "stored request unusable";
		goto commit;
	}
	if (key.sk_state == STORE_KEY_REVOKED) {
		chg.tc_status = MSS_REVOKED_CERTIFICATE;
		chg.tc_detail = "certificate revoked";
		goto commit;
	}
	const unsigned char *cp = key.sk_cert;
	cert = d2i_X509(NULL, &cp, (long)key.sk_cert_len);
	struct pki_verify_opts vo;
	memset(&vo, 0, sizeof vo);
	vo.vo_trust = h->h_trust;
	vo.vo_expected_signer = cert;
	struct pki_err pe;
	if (!cert || !ans->am_cms ||
	    pki_sig_cms_verify(ans->am_cms, ans->am_cms_len, dtbs, dtbs_len, &vo, NULL, &pe) != 0) {
		atomic_fetch_add(&h->h_invalid, 1);
		LOG_EV("tx.signature_invalid", "tx", tx->tx_id, "key", tx->tx_key_id);
		chg.tc_status = MSS_INVALID_SIGNATURE;
		chg.tc_detail = "signature does not verify";
		goto commit;
	}
	atomic_fetch_add(&h->h_verified, 1);
	b64_encode(ans->am_cms, ans->am_cms_len, &sig64, &sig64_len);
	if (!sig64) {
		to = STORE_ST_FAILED;
		chg.tc_status = MSS_INTERNAL_ERROR;
		goto commit;
	}
	chg.tc_status = wants_validation(msg->u.sig_req) ? MSS_VALID_SIGNATURE : MSS_SIGNATURE;
	/* the profile the signature was made under: the key's primary one */
	snprintf(profile, sizeof profile, "%.*s", (int)strcspn(key.sk_profiles, " "),
		 key.sk_profiles);
	chg.tc_profile = profile;
	chg.tc_signature = sig64;
	chg.tc_signature_len = sig64_len;
commit:
	/* The answer is acknowledged already: if the store refuses the final
	 * step now, try again a little later (a pool thread may wait); if it
	 * still cannot, the AE's stuck-answer scan finishes it later. */
	for (unsigned attempt = 0;; attempt++) {
		int rc = store_tx_transition(st, tx->tx_id, STORE_ST_ANSWERED, to, &chg, wall_ms(),
					     &fin, &se);
		if (rc == 0) {
			if (h->h_conf.hc_on_final)
				h->h_conf.hc_on_final(h->h_conf.hc_arg, st, &fin);
			break;
		}
		if (se.status != MSS_INTERNAL_ERROR || attempt + 1 >= MSSP_HOME_FINAL_TRIES)
			break;
		struct timespec ts = {0, (long)MSSP_HOME_FINAL_RETRY_MS * 1000000L << attempt};
		nanosleep(&ts, NULL);
	}
	drop_pending(h, tx->tx_nonce);
	X509_free(cert);
	free(sig64);
	free(dtbs);
	mss_msg_free(msg);
	store_tx_clear(&full);
	store_tx_clear(&fin);
}

/* ---- registration jobs (issue 5) ----------------------------------------- */

int
home_job_message(const struct reg_job *j, char **txt, size_t *len, struct mss_err *err)
{
	struct appmsg m;
	int rc;
	*txt = NULL;
	*len = 0;
	memset(&m, 0, sizeof m);
	snprintf(m.am_job, sizeof m.am_job, "%s", j->rj_id);
	snprintf(m.am_key, sizeof m.am_key, "%s", j->rj_group);
	if (strcmp(j->rj_kind, "unblock") == 0) {
		m.am_type = APPMSG_UNBLOCK;
	} else if (strcmp(j->rj_kind, "keygen") == 0 && j->rj_state == REG_JOB_ISSUED) {
		if (!j->rj_cert || j->rj_cert_len == 0 || j->rj_nchain > MSSP_KEYSTORE_MAX_CHAIN)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Issued job without certificate");
		m.am_type = APPMSG_CERT;
		/* borrowed from the job: m is never appmsg_clear'ed */
		m.am_der = j->rj_cert;
		m.am_der_len = j->rj_cert_len;
		for (size_t i = 0; i < j->rj_nchain; i++) {
			m.am_chain[i] = j->rj_chain[i];
			m.am_chain_len[i] = j->rj_chain_len[i];
		}
		m.am_nchain = j->rj_nchain;
	} else if (strcmp(j->rj_kind, "keygen") == 0) {
		if (j->rj_nprofiles > MSSP_KEYSTORE_MAX_PROFILES)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Too many profiles");
		m.am_type = APPMSG_KEYGEN;
		snprintf(m.am_purpose, sizeof m.am_purpose, "%s", j->rj_purpose);
		for (size_t i = 0; i < j->rj_nprofiles; i++)
			snprintf(m.am_profiles[i], sizeof m.am_profiles[i], "%s", j->rj_profiles[i]);
		m.am_nprofiles = j->rj_nprofiles;
		m.am_pin = j->rj_pin;
		snprintf(m.am_alg, sizeof m.am_alg, "%s", j->rj_alg);
	} else {
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Unknown job kind");
	}
	rc = appmsg_encode(&m, txt, len, err);
	memset(&m, 0, sizeof m); /* borrowed pointers: nothing to free */
	return rc;
}

/* reg_jobs_to_deliver's filter: a device with a live E2E session here
 * (the AFE still holds the connection the session was made for). */
static bool
job_online(void *arg, const char *device_id)
{
	struct home *h = arg;
	bool live = false;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, device_id, false);
	if (d && d->d_session && d->d_es.es_ready && h->h_afe)
		live = afe_session(h->h_afe, device_id) == d->d_session;
	pthread_mutex_unlock(&h->h_lock);
	return live;
}

/* Which message a job's state sends: requested and sent jobs send the
 * same request (keygen / unblock), an issued job the certificate. */
static int
job_msg_state(const struct reg_job *j)
{
	return j->rj_state == REG_JOB_ISSUED ? REG_JOB_ISSUED : REG_JOB_REQUESTED;
}

/* Send job `j` (its message `txt`) unless it went out on this session
 * less than MSSP_HOME_JOB_RESEND_MS ago.  1 sent, 0 skipped, -1 not sent. */
static int
job_send(struct home *h, const struct reg_job *j, const char *txt, size_t len, int64_t now)
{
	int rc = -1;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, j->rj_device, false);
	if (!d || !d->d_session)
		goto out;
	struct sentjob *slot = &d->d_jobs[0];
	for (size_t i = 0; i < MSSP_HOME_DEV_JOBS; i++) {
		struct sentjob *s = &d->d_jobs[i];
		if (strcmp(s->sj_id, j->rj_id) == 0) {
			if (s->sj_session == d->d_session && s->sj_state == job_msg_state(j) &&
			    now - s->sj_ms < MSSP_HOME_JOB_RESEND_MS) {
				rc = 0;
				goto out;
			}
			slot = s;
			break;
		}
		if (s->sj_ms < slot->sj_ms)
			slot = s; /* the oldest (or an empty one) is replaced */
	}
	if (dev_send_locked(h, d, txt, len) == 0) {
		snprintf(slot->sj_id, sizeof slot->sj_id, "%s", j->rj_id);
		slot->sj_state = job_msg_state(j);
		slot->sj_session = d->d_session;
		slot->sj_ms = now;
		rc = 1;
	}
out:
	pthread_mutex_unlock(&h->h_lock);
	return rc;
}

/* One delivery round (pool thread). */
static void
deliver_round(struct home *h, struct store *st)
{
	struct reg_job *jobs = calloc(MSSP_HOME_JOB_BATCH, sizeof *jobs);
	struct reg_err re;
	size_t n = 0;
	int64_t now = wall_ms();
	if (!jobs)
		return;
	memset(&re, 0, sizeof re);
	if (reg_jobs_to_deliver(h->h_reg, st, job_online, h, jobs, MSSP_HOME_JOB_BATCH, &n, now,
				&re) != 0) {
		char s[12];
		snprintf(s, sizeof s, "%d", re.status);
		LOG_EV("job.poll_failed", "status", s);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct reg_job *j = &jobs[i];
		struct mss_err me;
		char *txt = NULL;
		size_t len = 0;
		memset(&me, 0, sizeof me);
		if (home_job_message(j, &txt, &len, &me) != 0) {
			LOG_EV("job.unsendable", "job", j->rj_id, "kind", j->rj_kind);
			continue;
		}
		int rc = job_send(h, j, txt, len, now);
		free(txt);
		if (rc <= 0)
			continue;
		atomic_fetch_add(&h->h_jobs_sent, 1);
		LOG_EV("job.sent", "job", j->rj_id, "kind", j->rj_kind, "state",
		       reg_job_state_name(j->rj_state), "device", j->rj_device);
		/* requested -> sent; sent and issued: a new time (ISSUED stays
		 * ISSUED until the phone answers), so that the job is not
		 * selected again before MSSP_HOME_JOB_RESEND_MS */
		if (reg_job_sent(h->h_reg, st, j->rj_id, now, &re) != 0)
			LOG_EV("job.mark_failed", "job", j->rj_id);
	}
	for (size_t i = 0; i < MSSP_HOME_JOB_BATCH; i++)
		reg_job_clear(&jobs[i]);
	free(jobs);
}

/* Rounds until nobody asked for another one; h_dbusy is ours on entry and
 * released on return.  A request that comes in between the last check and
 * the release is taken by whoever wins h_dbusy next (or by us again). */
static void
deliver_loop(struct home *h, struct store *st)
{
	for (;;) {
		atomic_store(&h->h_dagain, false);
		deliver_round(h, st);
		if (atomic_load(&h->h_dagain))
			continue;
		atomic_store(&h->h_dbusy, false);
		if (!atomic_load(&h->h_dagain) || atomic_exchange(&h->h_dbusy, true))
			return;
	}
}

/* From a pool job (a device came online): a round now, here. */
static void
deliver_inline(struct home *h, struct store *st)
{
	if (!h->h_reg)
		return;
	atomic_store(&h->h_dagain, true);
	if (!atomic_exchange(&h->h_dbusy, true))
		deliver_loop(h, st);
}

static void
deliver_job_run(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct home *h = arg;
	deliver_loop(h, nw->nw_store);
	pthread_mutex_lock(&h->h_plock);
	if (--h->h_djobs == 0)
		pthread_cond_broadcast(&h->h_pcv);
	pthread_mutex_unlock(&h->h_plock);
}

static void *
poll_main(void *arg)
{
	struct home *h = arg;
	pthread_mutex_lock(&h->h_plock);
	while (!h->h_pstop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(MSSP_HOME_JOB_POLL_MS % 1000) * 1000000L;
		ts.tv_sec += MSSP_HOME_JOB_POLL_MS / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!h->h_pstop && pthread_cond_timedwait(&h->h_pcv, &h->h_plock, &ts) == 0)
			;
		if (h->h_pstop)
			break;
		/* a round queued or running takes this tick's work too */
		if (atomic_exchange(&h->h_dbusy, true)) {
			atomic_store(&h->h_dagain, true);
			continue;
		}
		h->h_djobs++;
		if (pool_submit(h->h_conf.hc_pool, deliver_job_run, h) != 0) {
			h->h_djobs--;
			atomic_store(&h->h_dbusy, false);
		}
	}
	pthread_mutex_unlock(&h->h_plock);
	return NULL;
}

void
home_set_reg(struct home *h, struct reg *r)
{
	pthread_mutex_lock(&h->h_plock);
	h->h_reg = r;
	if (r && !h->h_pstarted && !h->h_pstop && h->h_conf.hc_pool) {
		if (pthread_create(&h->h_poll, NULL, poll_main, h) == 0)
			h->h_pstarted = true;
		else
			LOG_EV("job.poller_failed");
	}
	pthread_mutex_unlock(&h->h_plock);
}

void
home_stop(struct home *h)
{
	bool join;
	if (!h)
		return;
	pthread_mutex_lock(&h->h_plock);
	h->h_pstop = true;
	join = h->h_pstarted;
	h->h_pstarted = false;
	pthread_cond_broadcast(&h->h_pcv);
	pthread_mutex_unlock(&h->h_plock);
	if (join)
		pthread_join(h->h_poll, NULL);
	/* a round the poller queued may still run (pool_stop runs what is
	 * queued): it uses h */
	pthread_mutex_lock(&h->h_plock);
	while (h->h_djobs > 0)
		pthread_cond_wait(&h->h_pcv, &h->h_plock);
	pthread_mutex_unlock(&h->h_plock);
}

/* A job_answer from `device` (pool thread): recorded first, acknowledged
 * after. */
static void
job_answer(struct home *h, struct store *st, const char *device, const struct appmsg *ans)
{
	struct reg_err re;
	char s[12];
	memset(&re, 0, sizeof re);
	if (!h->h_reg)
		return; /* not this process's business: the phone keeps it */
	int rc = reg_job_answer(h->h_reg, st, device, ans->am_job, ans->am_status, ans->am_der,
				ans->am_der_len, wall_ms(), &re);
	snprintf(s, sizeof s, "%d", rc == 0 ? 0 : re.status);
	/* durable (0), or nothing to make durable (unknown 404, gone 410):
	 * the phone may forget it.  Anything else, a foreign device (403)
	 * included: no ack, a transient failure is retried by the phone. */
	if (rc != 0 && re.status != 404 && re.status != 410) {
		LOG_EV("job.answer_failed", "job", ans->am_job, "device", device, "status", s);
		return;
	}
	LOG_EV("job.answered", "job", ans->am_job, "device", device, "status", s);
	struct appmsg m;
	memset(&m, 0, sizeof m);
	m.am_type = APPMSG_JOB_ACK;
	snprintf(m.am_job, sizeof m.am_job, "%s", ans->am_job);
	send_to_device(h, device, &m);
	atomic_fetch_add(&h->h_jobs_acked, 1);
}

struct answer_job {
	struct home *aj_home;
	char aj_device[MSSP_KEYSTORE_MAX_ID + 1];
	uint8_t *aj_plain;
	size_t aj_len;
};

static void
send_ack(struct home *h, const char *device, const char *nonce, int status)
{
	struct appmsg m;
	memset(&m, 0, sizeof m);
	m.am_type = APPMSG_ACK;
	snprintf(m.am_nonce, sizeof m.am_nonce, "%s", nonce);
	m.am_status = status;
	send_to_device(h, device, &m);
}

static void
answer_job_run(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct answer_job *j = arg;
	struct home *h = j->aj_home;
	struct appmsg ans;
	struct mss_err me = {0};
	struct store_tx tx, cur;
	struct store_err se;
	struct store_key key;
	memset(&ans, 0, sizeof ans);
	memset(&tx, 0, sizeof tx);
	memset(&cur, 0, sizeof cur);
	if (appmsg_decode(j->aj_plain, j->aj_len, &ans, &me) != 0)
		goto out;
	if (ans.am_type == APPMSG_JOB_ANSWER) {
		job_answer(h, nw->nw_store, j->aj_device, &ans);
		goto out;
	}
	if (ans.am_type != APPMSG_ANSWER)
		goto out;
	atomic_fetch_add(&h->h_answers, 1);
	if (store_tx_get_by_nonce(nw->nw_store, ans.am_nonce, 0, &tx, &se) != 0) {
		if (se.status == MSS_WRONG_PARAM) {
			atomic_fetch_add(&h->h_late, 1);
			send_ack(h, j->aj_device, ans.am_nonce, 0); /* unknown: forget it */
		}
		goto out;
	}
	/* the answer must come from the device that holds the key */
	if (store_key_get(nw->nw_store, tx.tx_key_id, &key, &se) != 0 ||
	    strcmp(key.sk_device_id, j->aj_device) != 0) {
		LOG_EV("answer.foreign_device", "tx", tx.tx_id, "device", j->aj_device);
		goto out;
	}
	if (store_state_final(tx.tx_state)) {
		atomic_fetch_add(&h->h_late, 1);
		LOG_EV("answer.late", "tx", tx.tx_id, "state", store_state_name(tx.tx_state));
		drop_pending(h, tx.tx_nonce);
		send_ack(h, j->aj_device, ans.am_nonce, tx.tx_status);
		goto out;
	}
	if (tx.tx_state == STORE_ST_PROMPT_SENT) {
		struct store_tx_change chg = {.tc_answer = j->aj_plain,
					      .tc_answer_len = j->aj_len};
		int rc = store_tx_transition(nw->nw_store, tx.tx_id, STORE_ST_PROMPT_SENT,
					     STORE_ST_ANSWERED, &chg, wall_ms(), &cur, &se);
		if (rc != 0) {
			if (se.status == STORE_STATUS_PAST_DEADLINE) {
				finalise_expired(h, nw->nw_store, tx.tx_id, STORE_ST_PROMPT_SENT);
				send_ack(h, j->aj_device, ans.am_nonce, MSS_EXPIRED_TRANSACTION);
			} else if (se.status == STORE_STATUS_FINAL) {
				send_ack(h, j->aj_device, ans.am_nonce, cur.tx_status);
			}
			goto out; /* a conflict: another worker records it */
		}
		/* recorded: the app may forget it; then verify and finish */
		char st[16];
		snprintf(st, sizeof st, "%d", ans.am_status);
		LOG_EV("tx.answered", "tx", tx.tx_id, "status", st);
		send_ack(h, j->aj_device, ans.am_nonce, 0);
		finalise_answer(h, nw->nw_store, &cur, &ans);
	} else if (tx.tx_state == STORE_ST_ANSWERED) {
		send_ack(h, j->aj_device, ans.am_nonce, 0); /* a resend: recorded already */
	}
out:
	appmsg_clear(&ans);
	store_tx_clear(&tx);
	store_tx_clear(&cur);
	OPENSSL_cleanse(j->aj_plain, j->aj_len);
	free(j->aj_plain);
	free(j);
}

void
home_recover(struct home *h, struct store *st, const struct store_tx *tx)
{
	struct mss_err me;
	memset(&me, 0, sizeof me);
	if (tx->tx_deadline_ms <= wall_ms() &&
	    (tx->tx_state == STORE_ST_ACCEPTED || tx->tx_state == STORE_ST_PROMPT_SENT)) {
		finalise_expired(h, st, tx->tx_id, tx->tx_state);
		return;
	}
	struct mss_msg *msg = tx->tx_request ? mss_json_decode(tx->tx_request, tx->tx_request_len,
							       0, &me)
					     : NULL;
	if (tx->tx_state == STORE_ST_ANSWERED) {
		struct appmsg ans;
		memset(&ans, 0, sizeof ans);
		if (tx->tx_answer && appmsg_decode(tx->tx_answer, tx->tx_answer_len, &ans, &me) == 0 &&
		    ans.am_type == APPMSG_ANSWER) {
			finalise_answer(h, st, tx, &ans);
		} else {
			struct store_tx_change chg = {.tc_status = MSS_INTERNAL_ERROR,
						      .tc_detail = "stored answer unusable"};
			struct store_tx fin;
			struct store_err se;
			memset(&fin, 0, sizeof fin);
			if (store_tx_transition(st, tx->tx_id, STORE_ST_ANSWERED, STORE_ST_FAILED,
						&chg, wall_ms(), &fin, &se) == 0 &&
			    h->h_conf.hc_on_final)
				h->h_conf.hc_on_final(h->h_conf.hc_arg, st, &fin);
			store_tx_clear(&fin);
		}
		appmsg_clear(&ans);
	} else if (msg && msg->type == MSS_SIGNATURE_REQ) {
		if (tx->tx_state == STORE_ST_ACCEPTED) {
			(void)home_prompt(h, st, tx, msg->u.sig_req, &me);
		} else if (tx->tx_state == STORE_ST_PROMPT_SENT) {
			/* queue the same prompt again (same nonce): the app
			 * de-duplicates, so the user sees it at most once */
			struct store_key key;
			struct store_err se;
			char *txt;
			size_t len;
			if (store_key_get(st, tx->tx_key_id, &key, &se) == 0 &&
			    build_prompt(tx, msg->u.sig_req, &key, &txt, &len, &me) == 0)
				queue_prompt(h, key.sk_device_id, tx->tx_nonce, txt, len);
		}
	}
	mss_msg_free(msg);
}

/* ---- AFE callbacks ------------------------------------------------------ */

struct online_job {
	struct home *oj_home;
	char oj_device[MSSP_KEYSTORE_MAX_ID + 1];
	uint64_t oj_session;
	uint8_t oj_app_nonce[E2E_NONCE_LEN];
};

static void
online_job_run(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct online_job *j = arg;
	struct home *h = j->oj_home;
	struct store_device dev;
	struct store_err se;
	if (store_device_get(nw->nw_store, j->oj_device, &dev, &se) != 0)
		goto out;
	unsigned char hello[E2E_HELLO_LEN], hn[E2E_NONCE_LEN];
	struct pki_err pe;
	if (e2e_hello(hello, hn, &pe) != 0)
		goto wipe;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, j->oj_device, true);
	/* two online jobs of one device may run out of order on two pool
	 * threads: only the connection the AFE holds now gets a session */
	if (d && afe_session(h->h_afe, j->oj_device) != j->oj_session)
		d = NULL;
	if (d) {
		e2e_session_wipe(&d->d_es);
		d->d_session = 0;
		if (e2e_session_init(&d->d_es, E2E_ROLE_HOME, j->oj_device, dev.sd_e2e_key, hn,
				     j->oj_app_nonce, &pe) == 0 &&
		    afe_send(h->h_afe, j->oj_device, j->oj_session, hello, sizeof hello) == 0) {
			d->d_session = j->oj_session;
			for (size_t i = 0; i < d->d_npend; i++)
				(void)dev_send_locked(h, d, d->d_pend[i].p_plain,
						      d->d_pend[i].p_len);
		}
	}
	bool live = d && d->d_session == j->oj_session;
	pthread_mutex_unlock(&h->h_lock);
	/* its jobs now, not at the next tick */
	if (live)
		deliver_inline(h, nw->nw_store);
wipe:
	OPENSSL_cleanse(&dev, sizeof dev);
out:
	free(j);
}

static void
ao_online(void *arg, const char *device_id, uint64_t session, const uint8_t app_nonce[E2E_NONCE_LEN])
{
	struct home *h = arg;
	struct online_job *j = calloc(1, sizeof *j);
	if (!j || strlen(device_id) > MSSP_KEYSTORE_MAX_ID) {
		free(j);
		return;
	}
	j->oj_home = h;
	snprintf(j->oj_device, sizeof j->oj_device, "%s", device_id);
	j->oj_session = session;
	memcpy(j->oj_app_nonce, app_nonce, E2E_NONCE_LEN);
	if (pool_submit(h->h_conf.hc_pool, online_job_run, j) != 0)
		free(j);
}

static void
ao_blob(void *arg, const char *device_id, uint64_t session, const uint8_t *blob, size_t len)
{
	struct home *h = arg;
	uint8_t *plain = malloc(len ? len : 1);
	size_t pl = 0;
	int rc = -1;
	if (!plain)
		return;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, device_id, false);
	if (d && d->d_session == session && d->d_es.es_ready) {
		struct pki_err pe;
		rc = e2e_open(&d->d_es, blob, len, plain, len, &pl, &pe);
	}
	pthread_mutex_unlock(&h->h_lock);
	if (rc != 0) {
		free(plain);
		return;
	}
	struct answer_job *j = calloc(1, sizeof *j);
	if (!j || strlen(device_id) > MSSP_KEYSTORE_MAX_ID) {
		OPENSSL_cleanse(plain, pl);
		free(plain);
		free(j);
		return;
	}
	j->aj_home = h;
	snprintf(j->aj_device, sizeof j->aj_device, "%s", device_id);
	j->aj_plain = plain;
	j->aj_len = pl;
	if (pool_submit(h->h_conf.hc_pool, answer_job_run, j) != 0) {
		/* busy: not acknowledged, so the app sends it again later */
		OPENSSL_cleanse(plain, pl);
		free(plain);
		free(j);
	}
}

static void
ao_offline(void *arg, const char *device_id, uint64_t session)
{
	struct home *h = arg;
	pthread_mutex_lock(&h->h_lock);
	struct dev *d = dev_find(h, device_id, false);
	if (d && d->d_session == session) {
		d->d_session = 0;
		e2e_session_wipe(&d->d_es);
	}
	pthread_mutex_unlock(&h->h_lock);
}

static const struct afe_ops home_ops = {
	.ao_online = ao_online,
	.ao_blob = ao_blob,
	.ao_offline = ao_offline,
};

const struct afe_ops *
home_afe_ops(void)
{
	return &home_ops;
}
