/*
 * reg_enrol.c - the enrolment half of the reg module (reg.h, reg_int.h,
 * docs/internals/me.md): device activation by code, registration jobs
 * (key generation on the phone, PIN unblock), the key-material scan and
 * the per-key "usable" verdict HomeMSSP asks before signing with RSA.
 *
 * Records written here (bodies defined here, nowhere else):
 *   activation  name = MSISDN, state 1 open / 2 used / 3 locked,
 *               {"code_sha256":HEX,"tries":N} (+"used_ms","device" once
 *               used, when the hash is dropped: nothing left to guess);
 *   job         name = "J" + 16 hex, owner = MSISDN, state = enum
 *               reg_job_state, expires = created + MSSP_REG_JOB_TTL_S,
 *               {"kind","device","group","key_id","purpose","profiles",
 *                "pin","alg","cert_profile","reg_profile","requested_by",
 *                "sent_ms","status","detail", "csr" (base64, once
 *                answered), "cert","chain","cert_serial" (once issued),
 *                "claim_ms" (the ME working on it)}.
 * Every state change is a compare-and-set on the record version, so two
 * workers (or processes) never both move one record.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mss/lex.h"
#include "pki/ca.h"
#include "pki/e2e.h"
#include "pki/keycheck.h"
#include "roles/reg_int.h"
#include "store/store.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"

#define ACT_KIND "activation"
#define JOB_KIND "job"

enum act_state { ACT_OPEN = 1, ACT_USED = 2, ACT_LOCKED = 3 };

#define JOB_ID_HEX 16
#define JOB_ID_LEN (1 + JOB_ID_HEX)

/* The actor of what no account asked for (the AFE's activation, the
 * phone's job answers, the ME's job processing). */
static const struct reg_actor reg_sys = { .ra_name = "system", .ra_role = REG_ROLE_SYSTEM };

/* ---- private state: the reg_key_usable cache ---------------------------- */

struct usable_ent {
	bool ue_used;
	bool ue_ok;
	char ue_key_id[MSSP_STORE_MAX_KEY_ID + 1];
	char ue_serial[MSSP_STORE_MAX_SERIAL + 1];
};

struct reg_enrol {
	pthread_mutex_t re_lock;
	struct usable_ent *re_cache; /* MSSP_REG_USABLE_CACHE, direct-mapped */
	void (*re_scan_hook)(void *arg, struct store *st); /* tests */
	void *re_scan_arg;
};

void
reg_enrol_scan_hook(struct reg *r, void (*fn)(void *arg, struct store *st), void *arg)
{
	r->r_enrol->re_scan_hook = fn;
	r->r_enrol->re_scan_arg = arg;
}

int
reg_enrol_init(struct reg *r, struct reg_err *e)
{
	struct reg_enrol *en = calloc(1, sizeof(*en));

	if (en == NULL)
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	en->re_cache = calloc(MSSP_REG_USABLE_CACHE, sizeof(*en->re_cache));
	if (en->re_cache == NULL || pthread_mutex_init(&en->re_lock, NULL) != 0) {
		free(en->re_cache);
		free(en);
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	}
	r->r_enrol = en;
	return 0;
}

void
reg_enrol_free(struct reg *r)
{
	if (r == NULL || r->r_enrol == NULL)
		return;
	pthread_mutex_destroy(&r->r_enrol->re_lock);
	free(r->r_enrol->re_cache);
	free(r->r_enrol);
	r->r_enrol = NULL;
}

/* ---- small helpers -------------------------------------------------------- */

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static int64_t
jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* snprintf that reports truncation: 0, or -1 when `s` does not fit. */
static int
copy_str(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap)
		return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

/* Standard base64 of `len` bytes, malloc'ed and NUL-terminated. */
static char *
b64_enc(const uint8_t *d, size_t len)
{
	char *s;

	if (len > (size_t)INT_MAX / 2)
		return NULL;
	s = malloc((len + 2) / 3 * 4 + 1);
	if (s != NULL)
		EVP_EncodeBlock((unsigned char *)s, d, (int)len);
	return s;
}

/* Strict base64 -> malloc'ed bytes, at most `max`.  NULL when malformed. */
static uint8_t *
b64_dec(const char *s, size_t max, size_t *len)
{
	long n = mss_lex_base64_decode(s, NULL, max);
	uint8_t *d;

	if (n <= 0)
		return NULL;
	d = malloc((size_t)n);
	if (d == NULL)
		return NULL;
	if (mss_lex_base64_decode(s, d, (size_t)n) != n) {
		free(d);
		return NULL;
	}
	*len = (size_t)n;
	return d;
}

static int
rec_put_json(struct store *st, const struct store_rec *tmpl, int state, json_t *body,
	     uint64_t expect, int64_t now_ms, struct store_rec *out, struct store_err *se)
{
	struct store_rec nr = *tmpl;
	char *txt = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (txt == NULL)
		return store_err_set(se, 900, "out of memory");
	nr.sr_state = state;
	nr.sr_body = txt;
	nr.sr_body_len = strlen(txt);
	rc = store_rec_put(st, &nr, expect, now_ms, out, se);
	free(txt);
	return rc;
}

/* ---- key fingerprint tombstones (K-06, K-07) -------------------------------- */

/*
 * A record kind "keyfp", name = the key's SPKI fingerprint (64 lower-case
 * hex), claimed (STORE_REC_NEW: of two claims one wins) before the CA is
 * asked for a certificate.  The serial is written into it right after
 * issuance, before the key record; from then on it is NEVER deleted: not
 * when the key is revoked, replaced by a re-request for its group (same
 * key_id), or deleted with its user or device.  So a public key is
 * certified at most once, ever.  A claim WITHOUT a serial means "not
 * certified": deleted (CAS) when the CA refuses, and taken over by another
 * job's claim when its job is gone, FAILED or EXPIRED without a
 * certificate (a crash between claim and issuance, a failed release):
 * otherwise a key the CA never certified would be refused for ever, and
 * the phone re-sends the same uncertified key on a re-request.
 * State 1 issued, 2 compromised (revoked for keyCompromise: the scan, a
 * cert.revoke through reg_enrol_key_compromised, or found so at the CA);
 * a compromised one is also refused as a device key at activation.
 * Body {"key_id","msisdn","job","serial"} (serial once issued).
 */
#define KEYFP_KIND "keyfp"
enum keyfp_state { KEYFP_ISSUED = 1, KEYFP_COMPROMISED = 2 };

static bool
fp_zero(const unsigned char fp[PKI_KEYCHECK_FP_LEN])
{
	static const unsigned char z[PKI_KEYCHECK_FP_LEN];

	return memcmp(fp, z, sizeof(z)) == 0;
}

/* The tombstone of `fp`: 0 with rec and its parsed body (json_decref),
 * 1 when there is none, -1 with se. */
static int
keyfp_get(struct store *st, const unsigned char fp[PKI_KEYCHECK_FP_LEN], struct store_rec *rec,
	  json_t **body, struct store_err *se)
{
	char hx[2 * PKI_KEYCHECK_FP_LEN + 1];

	*body = NULL;
	hex_encode(fp, PKI_KEYCHECK_FP_LEN, hx);
	if (store_rec_get(st, KEYFP_KIND, hx, rec, se) != 0)
		return se->status == 101 ? 1 : -1;
	*body = json_loadb(rec->sr_body, rec->sr_body_len, 0, NULL);
	if (!json_is_object(*body)) {
		json_decref(*body);
		*body = json_object(); /* unreadable: still a tombstone */
	}
	return 0;
}

/* Mark `fp` compromised (creating the tombstone of a key that has none:
 * keys stored before tombstones).  0, or -1 with se (logged by callers). */
static int
keyfp_compromised(struct store *st, const unsigned char fp[PKI_KEYCHECK_FP_LEN],
		  const char *key_id, const char *msisdn, const char *serial, int64_t now_ms,
		  struct store_err *se)
{
	struct store_rec rec = { 0 };
	json_t *b = NULL;
	int attempt, got, rc = -1;

	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		uint64_t expect;

		store_rec_clear(&rec);
		json_decref(b);
		got = keyfp_get(st, fp, &rec, &b, se);
		if (got < 0)
			break;
		if (got == 0 && rec.sr_state == KEYFP_COMPROMISED) {
			rc = 0;
			break;
		}
		if (got == 1) {
			b = json_pack("{s:s,s:s,s:s,s:s}", "key_id", key_id, "msisdn", msisdn, "job",
				      "", "serial", serial);
			hex_encode(fp, PKI_KEYCHECK_FP_LEN, rec.sr_name);
			snprintf(rec.sr_kind, sizeof(rec.sr_kind), "%s", KEYFP_KIND);
			expect = STORE_REC_NEW;
		} else {
			expect = rec.sr_version;
		}
		if (b == NULL) {
			store_err_set(se, 900, "out of memory");
			break;
		}
		json_object_set_new(b, "compromised_ms", json_integer(now_ms));
		if (rec_put_json(st, &rec, KEYFP_COMPROMISED, b, expect, now_ms, NULL, se) == 0) {
			rc = 0;
			break;
		}
		if (se->status != STORE_STATUS_CONFLICT)
			break;
	}
	if (rc != 0 && se->status == STORE_STATUS_CONFLICT)
		store_err_set(se, 900, "tombstone changed meanwhile");
	store_rec_clear(&rec);
	json_decref(b);
	return rc;
}

void
reg_enrol_key_compromised(struct reg *r, struct store *st, const struct store_key *k,
			  int64_t now_ms)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	const unsigned char *p = k->sk_cert;
	X509 *x = NULL;

	(void)r;
	memcpy(fp, k->sk_spki_fp, sizeof(fp));
	if (fp_zero(fp) && k->sk_cert_len > 0) {
		/* a key stored without its fingerprint: the certificate's */
		x = d2i_X509(NULL, &p, (long)k->sk_cert_len);
		if (x == NULL || X509_get0_pubkey(x) == NULL ||
		    pki_keycheck_fingerprint(X509_get0_pubkey(x), fp, &pe) != 0)
			memset(fp, 0, sizeof(fp));
		X509_free(x);
		pki_err_clear_openssl();
	}
	if (fp_zero(fp)) {
		LOG_EV("reg.keyfp.unknown", "key", k->sk_key_id);
		return;
	}
	if (keyfp_compromised(st, fp, k->sk_key_id, k->sk_msisdn, k->sk_cert_serial, now_ms,
			      &se) != 0)
		LOG_EV("reg.keyfp.mark_failed", "key", k->sk_key_id, "detail", se.detail);
}

/* ---- device activation ------------------------------------------------------ */

void
reg_new_device_id(char out[MSSP_KEYSTORE_MAX_ID + 1])
{
	unsigned char rnd[12];

	/* Without randomness no id: "" makes the device put fail (900). */
	out[0] = '\0';
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return;
	out[0] = 'd';
	hex_encode(rnd, sizeof(rnd), out + 1);
}

/* Every refusal answers the same to the phone (it learns nothing about
 * which rule it broke).  Those that concern an open code the phone had
 * to name (a wrong proof, a lock, a bad key or signature after the right
 * code) are audited with the rule: 403. */
static int
act_refuse(struct reg *r, const char *target, const char *why, int64_t now_ms,
	   struct reg_err *e)
{
	reg_audit_event(r, &reg_sys, "device.bind", target, "refused", why, now_ms);
	return reg_err_set(e, REG_E_FORBIDDEN, "activation refused");
}

/* No open code for the MSISDN (none, used, expired, locked, one older
 * than the user, ...): anyone can ask that for any number, so it is not
 * audited per attempt (a flood would queue every audited change behind
 * the audit lock): one log line, and 410, which the AFE counts
 * (afe_stats.as_act_nocode).  The phone gets the same generic refusal. */
static int
act_nocode(const char *msisdn, const char *why, struct reg_err *e)
{
	char masked[MSSP_STORE_MAX_MSISDN + 1];

	log_msisdn(msisdn, masked, sizeof(masked));
	LOG_EV("reg.activation.no_code", "msisdn", masked, "why", why);
	return reg_err_set(e, REG_E_GONE, "activation refused");
}

/* The idx-th length-prefixed field of a transcript (e2e.h); the whole
 * transcript must be exactly the label and six fields. */
static int
transcript_field(const uint8_t *t, size_t len, unsigned idx, const uint8_t **f, size_t *flen)
{
	static const char label[] = "mssp-activate-v1";
	size_t off = sizeof(label) - 1;
	unsigned i;

	if (t == NULL || len < off || memcmp(t, label, off) != 0)
		return -1;
	*f = NULL;
	for (i = 0; i < 6; i++) {
		uint32_t n;

		if (len - off < 4)
			return -1;
		n = (uint32_t)t[off] << 24 | (uint32_t)t[off + 1] << 16 |
		    (uint32_t)t[off + 2] << 8 | (uint32_t)t[off + 3];
		off += 4;
		if (n > len - off)
			return -1;
		if (i == idx) {
			*f = t + off;
			*flen = n;
		}
		off += n;
	}
	return off == len && *f != NULL ? 0 : -1;
}

/* The device key: strict DER SPKI (re-encoding gives the input back),
 * EC on P-256, passing the key checks (compromised list, and the
 * tombstones of keys revoked for keyCompromise).  A new key or NULL with
 * `why`. */
static EVP_PKEY *
device_key(struct reg *r, struct store *st, const uint8_t *der, size_t len, const char **why)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	EVP_PKEY *k = NULL;
	struct pki_keycheck_sets sets = { .ks_compromised = &r->r_compromised };
	enum pki_keycheck_verdict v;
	struct pki_err pe = { 0 };
	struct store_rec tomb = { 0 };
	struct store_err se = { 0 };
	json_t *tb = NULL;
	char grp[64];
	int rl, nid, got, tstate;

	*why = "device key malformed";
	if (der == NULL || len == 0 || len > MSSP_STORE_MAX_SPKI)
		return NULL;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL || p != der + len)
		goto bad;
	rl = i2d_PUBKEY(k, &re);
	if (rl < 0 || (size_t)rl != len || memcmp(re, der, len) != 0)
		goto bad;
	*why = "device key not EC P-256";
	if (!EVP_PKEY_is_a(k, "EC") || EVP_PKEY_get_group_name(k, grp, sizeof(grp), NULL) != 1)
		goto bad;
	nid = OBJ_sn2nid(grp);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(grp);
	if (nid != NID_X9_62_prime256v1)
		goto bad;
	if (pki_keycheck_pkey(k, NULL, &sets, &v, &pe) != 0) {
		*why = v == PKI_KEYCHECK_COMPROMISED ? "device key compromised"
						       : "device key refused by the key checks";
		goto bad;
	}
	*why = "device key check failed";
	if (pki_keycheck_fingerprint(k, fp, &pe) != 0)
		goto bad;
	got = keyfp_get(st, fp, &tomb, &tb, &se);
	tstate = tomb.sr_state;
	store_rec_clear(&tomb);
	json_decref(tb);
	if (got < 0)
		goto bad; /* fail closed */
	if (got == 0 && tstate == KEYFP_COMPROMISED) {
		*why = "device key compromised";
		goto bad;
	}
	OPENSSL_free(re);
	return k;
bad:
	OPENSSL_free(re);
	EVP_PKEY_free(k);
	pki_err_clear_openssl();
	return NULL;
}

/* The code's issue time: activation.create sets the expiry to issue +
 * MSSP_REG_ACTIVATION_TTL_S (the record's own created time is the first
 * code's: a new code replaces the record). */
static int64_t
act_issued_ms(const struct store_rec *rec)
{
	return rec->sr_expires_ms - (int64_t)MSSP_REG_ACTIVATION_TTL_S * 1000;
}

/* Consume the code (K-13: single use).  Our try is reserved in `cur`; a
 * parallel attempt may have changed the record since (its own try): then
 * re-read, and consume as long as it is still the same code, not used and
 * not expired (a lock by later tries does not undo a try granted before
 * it).  0 with *used, or -1 with e (refusals audited). */
static int
act_consume(struct reg *r, struct store *st, const char *m, struct store_rec *cur, json_t **body,
	    const uint8_t h[32], const char *device_id, int64_t now_ms, struct store_rec *used,
	    struct reg_err *e)
{
	struct store_err se = { 0 };
	uint8_t h2[32];
	int attempt;

	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		const char *hex;

		if (attempt > 0) {
			store_rec_clear(cur);
			json_decref(*body);
			*body = NULL;
			if (store_rec_get(st, ACT_KIND, m, cur, &se) != 0)
				return se.status == 101
					       ? act_refuse(r, m, "code removed meanwhile", now_ms, e)
					       : reg_from_store(e, &se, false);
			*body = json_loadb(cur->sr_body, cur->sr_body_len, 0, NULL);
			hex = jstr(*body, "code_sha256");
			if (cur->sr_state == ACT_USED)
				return act_refuse(r, m, "code used meanwhile", now_ms, e);
			if (!json_is_object(*body) || hex_decode(hex, strlen(hex), h2, 32, false) != 0 ||
			    CRYPTO_memcmp(h, h2, 32) != 0) {
				OPENSSL_cleanse(h2, sizeof(h2));
				return act_refuse(r, m, "code replaced meanwhile", now_ms, e);
			}
			OPENSSL_cleanse(h2, sizeof(h2));
			if (cur->sr_expires_ms != 0 && cur->sr_expires_ms <= now_ms)
				return act_refuse(r, m, "code expired meanwhile", now_ms, e);
		}
		json_object_del(*body, "code_sha256");
		json_object_set_new(*body, "used_ms", json_integer(now_ms));
		json_object_set_new(*body, "device", json_string(device_id));
		if (rec_put_json(st, cur, ACT_USED, *body, cur->sr_version, now_ms, used, &se) == 0)
			return 0;
		if (se.status != STORE_STATUS_CONFLICT)
			return reg_from_store(e, &se, false);
	}
	return act_refuse(r, m, "code used meanwhile", now_ms, e);
}

/* Binding failed on our side after the code was consumed: open it again
 * with its hash and give the try back (the phone had the right code). */
static void
act_reopen(struct store *st, struct store_rec *used, json_t *body, const uint8_t h[32],
	   int64_t now_ms)
{
	char hx[2 * 32 + 1];
	struct store_err se = { 0 };
	int64_t tries = jint(body, "tries");

	tries = tries > 0 ? tries - 1 : 0;
	hex_encode(h, 32, hx);
	json_object_set_new(body, "code_sha256", json_string(hx));
	json_object_set_new(body, "tries", json_integer(tries));
	json_object_del(body, "used_ms");
	json_object_del(body, "device");
	if (rec_put_json(st, used, tries >= MSSP_REG_ACTIVATION_MAX_TRIES ? ACT_LOCKED : ACT_OPEN,
			 body, used->sr_version, now_ms, NULL, &se) != 0)
		LOG_EV("reg.activation.reopen_failed", "detail", se.detail);
	OPENSSL_cleanse(hx, sizeof(hx));
}

int
reg_activate(struct reg *r, struct store *st, const struct reg_activation *a, int64_t now_ms,
	     uint8_t home_mac[32], struct reg_err *e)
{
	char m[MSSP_STORE_MAX_MSISDN + 1] = "", tm[MSSP_STORE_MAX_MSISDN + 1];
	char tn[MSSP_STORE_MAX_MSISDN + 1];
	char detail[200];
	struct store_rec rec = { 0 }, used = { 0 };
	struct store_err se = { 0 };
	struct store_device dev;
	struct store_user u;
	struct reg_err e2;
	struct pki_err pe = { 0 };
	uint8_t h[32], mac[32];
	json_t *body = NULL;
	EVP_PKEY *dk = NULL;
	const uint8_t *f;
	size_t flen;
	const char *why;
	int rc = -1, attempt, tries = 0;
	bool reserved = false;

	memset(&dev, 0, sizeof(dev));
	memset(h, 0, sizeof(h));
	memset(mac, 0, sizeof(mac));
	if (a == NULL || a->av_msisdn == NULL || a->av_transcript == NULL ||
	    a->av_channel_key == NULL || a->av_device_id == NULL)
		return act_nocode("", "incomplete activation", e);
	if (reg_msisdn_norm(a->av_msisdn, m, &e2) != 0)
		return act_nocode("", "malformed MSISDN", e);

	/* The transcript the MAC covers must be about this MSISDN and this
	 * device key (the AFE built both; a mismatch is its bug, or worse). */
	if (transcript_field(a->av_transcript, a->av_transcript_len, 0, &f, &flen) != 0 ||
	    flen == 0 || flen > MSSP_STORE_MAX_MSISDN)
		return act_refuse(r, m, "transcript malformed", now_ms, e);
	memcpy(tm, f, flen);
	tm[flen] = '\0';
	if (reg_msisdn_norm(tm, tn, &e2) != 0 || strcmp(tn, m) != 0 ||
	    transcript_field(a->av_transcript, a->av_transcript_len, 5, &f, &flen) != 0 ||
	    flen != a->av_device_spki_len || flen == 0 || memcmp(f, a->av_device_spki, flen) != 0)
		return act_refuse(r, m, "transcript does not match the request", now_ms, e);

	/* Reserve a try FIRST (compare-and-set of the counter), compare the
	 * proof after: no proof is ever compared without a try spent, and
	 * "busy" is answered before the comparison, so it tells nothing. */
	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES && !reserved; attempt++) {
		const char *hex;

		store_rec_clear(&rec);
		json_decref(body);
		body = NULL;
		if (store_rec_get(st, ACT_KIND, m, &rec, &se) != 0) {
			rc = se.status == 101 ? act_nocode(m, "no activation code", e)
					      : reg_from_store(e, &se, false);
			goto out;
		}
		if (rec.sr_state == ACT_USED) {
			rc = act_nocode(m, "code already used", e); /* K-13 */
			goto out;
		}
		if (rec.sr_state != ACT_OPEN) {
			rc = act_nocode(m, "code locked", e);
			goto out;
		}
		if (rec.sr_expires_ms == 0 || rec.sr_expires_ms <= now_ms) {
			rc = act_nocode(m, "code expired", e);
			goto out;
		}
		body = json_loadb(rec.sr_body, rec.sr_body_len, 0, NULL);
		hex = jstr(body, "code_sha256");
		tries = (int)jint(body, "tries");
		if (!json_is_object(body) || hex_decode(hex, strlen(hex), h, sizeof(h), false) != 0) {
			rc = act_refuse(r, m, "activation record unreadable", now_ms, e);
			goto out;
		}
		if (tries < 0 || tries >= MSSP_REG_ACTIVATION_MAX_TRIES) {
			rc = act_nocode(m, "code locked (tries)", e);
			goto out;
		}
		/* A code given to an earlier user of this MSISDN (deleted, the
		 * number re-created since) is no code for this one. */
		if (store_user_get(st, m, &u, &se) != 0) {
			rc = se.status == 105 ? act_nocode(m, "no such user", e)
					      : reg_from_store(e, &se, false);
			goto out;
		}
		if (u.su_created_ms > act_issued_ms(&rec)) {
			rc = act_nocode(m, "code older than the user", e);
			goto out;
		}
		tries++;
		json_object_set_new(body, "tries", json_integer(tries));
		/* the last try locks the code for anyone after it */
		if (rec_put_json(st, &rec, tries >= MSSP_REG_ACTIVATION_MAX_TRIES ? ACT_LOCKED : ACT_OPEN,
				 body, rec.sr_version, now_ms, &used, &se) != 0) {
			if (se.status == STORE_STATUS_CONFLICT)
				continue;
			rc = reg_from_store(e, &se, false);
			goto out;
		}
		/* `rec` is the record with our try from here on */
		store_rec_clear(&rec);
		rec = used;
		memset(&used, 0, sizeof(used));
		reserved = true;
	}
	if (!reserved) {
		rc = reg_err_set(e, REG_E_INTERNAL, "activation record busy");
		goto out;
	}

	if (e2e_activation_mac(h, a->av_transcript, a->av_transcript_len, "app", NULL, mac) != 0) {
		rc = reg_err_set(e, REG_E_INTERNAL, "activation MAC failed");
		goto out;
	}
	if (CRYPTO_memcmp(mac, a->av_app_mac, sizeof(mac)) != 0) {
		snprintf(detail, sizeof(detail), "wrong code (try %d of %d)%s", tries,
			 MSSP_REG_ACTIVATION_MAX_TRIES,
			 tries >= MSSP_REG_ACTIVATION_MAX_TRIES ? ": locked" : "");
		rc = act_refuse(r, m, detail, now_ms, e);
		goto out;
	}

	dk = device_key(r, st, a->av_device_spki, a->av_device_spki_len, &why);
	if (dk == NULL) {
		rc = act_refuse(r, m, why, now_ms, e);
		goto out;
	}
	if (a->av_device_sig == NULL ||
	    e2e_verify_msg(a->av_device_spki, a->av_device_spki_len, a->av_transcript,
			   a->av_transcript_len, a->av_device_sig, a->av_device_sig_len, &pe) != 0) {
		rc = act_refuse(r, m, "device signature invalid", now_ms, e);
		goto out;
	}
	if (u.su_state != STORE_USER_ACTIVE) {
		rc = act_refuse(r, m, "user suspended", now_ms, e);
		goto out;
	}

	/* Consume the code FIRST (single use, K-13: of two parallel proofs
	 * only one wins the compare-and-set), then bind; if binding fails
	 * the code is opened again. */
	if (act_consume(r, st, m, &rec, &body, h, a->av_device_id, now_ms, &used, e) != 0)
		goto out;
	if (copy_str(dev.sd_device_id, sizeof(dev.sd_device_id), a->av_device_id) != 0 ||
	    a->av_device_spki_len > sizeof(dev.sd_auth_spki)) {
		se.status = 900;
		snprintf(se.detail, sizeof(se.detail), "device id too long");
	} else {
		memcpy(dev.sd_msisdn, m, strlen(m) + 1);
		memcpy(dev.sd_auth_spki, a->av_device_spki, a->av_device_spki_len);
		dev.sd_auth_spki_len = a->av_device_spki_len;
		memcpy(dev.sd_e2e_key, a->av_channel_key, E2E_KEY_LEN);
		dev.sd_state = STORE_DEVICE_ACTIVE;
		if (store_device_put(st, &dev, now_ms, &se) == 0)
			se.status = 0;
	}
	if (se.status != 0) {
		act_reopen(st, &used, body, h, now_ms);
		if (se.status == 101) {
			rc = act_refuse(r, m, "device refused by the registry (limit or owner)", now_ms, e);
		} else {
			rc = reg_from_store(e, &se, false);
			reg_audit_event(r, &reg_sys, "device.bind", m, "failed", se.detail, now_ms);
		}
		goto out;
	}
	if (e2e_activation_mac(h, a->av_transcript, a->av_transcript_len, "home", a->av_device_id,
			       home_mac) != 0) {
		/* Bound but the phone cannot confirm: it will not use the
		 * device, and the RA sees it in the user's devices. */
		rc = reg_err_set(e, REG_E_INTERNAL, "activation MAC failed");
		reg_audit_event(r, &reg_sys, "device.bind", m, "failed", "home MAC", now_ms);
		goto out;
	}
	snprintf(detail, sizeof(detail), "device %s", a->av_device_id);
	reg_audit_event(r, &reg_sys, "device.bind", m, "ok", detail, now_ms);
	rc = 0;
out:
	OPENSSL_cleanse(h, sizeof(h));
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(&dev, sizeof(dev));
	if (body != NULL) {
		json_object_del(body, "code_sha256");
		json_decref(body);
	}
	if (rec.sr_body != NULL)
		OPENSSL_cleanse(rec.sr_body, rec.sr_body_len);
	if (used.sr_body != NULL)
		OPENSSL_cleanse(used.sr_body, used.sr_body_len);
	store_rec_clear(&rec);
	store_rec_clear(&used);
	EVP_PKEY_free(dk);
	return rc;
}

/* ---- jobs ------------------------------------------------------------------- */

static const char *const job_state_names[] = {
	[REG_JOB_REQUESTED] = "requested", [REG_JOB_SENT] = "sent",
	[REG_JOB_ANSWERED] = "answered",   [REG_JOB_ISSUED] = "issued",
	[REG_JOB_DONE] = "done",	   [REG_JOB_FAILED] = "failed",
	[REG_JOB_EXPIRED] = "expired",
};

const char *
reg_job_state_name(int s)
{
	if (s < REG_JOB_REQUESTED || s > REG_JOB_EXPIRED)
		return "?";
	return job_state_names[s];
}

static bool
job_open(int s)
{
	return s == REG_JOB_REQUESTED || s == REG_JOB_SENT || s == REG_JOB_ANSWERED ||
	       s == REG_JOB_ISSUED;
}

void
reg_job_clear(struct reg_job *j)
{
	size_t i;

	if (j == NULL)
		return;
	free(j->rj_cert);
	for (i = 0; i < j->rj_nchain && i < MSSP_KEYSTORE_MAX_CHAIN; i++)
		free(j->rj_chain[i]);
	memset(j, 0, sizeof(*j));
}

static bool
job_id_valid(const char *id)
{
	uint8_t b[JOB_ID_HEX / 2];

	return id != NULL && strlen(id) == JOB_ID_LEN && id[0] == 'J' &&
	       hex_decode(id + 1, JOB_ID_HEX, b, sizeof(b), true) == 0;
}

static int
job_new_id(char id[JOB_ID_LEN + 1])
{
	unsigned char rnd[JOB_ID_HEX / 2];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	id[0] = 'J';
	hex_encode(rnd, sizeof(rnd), id + 1);
	return 0;
}

/* A job record with its parsed body. */
struct job {
	struct store_rec jb_rec;
	json_t *jb_body;
};

static void
job_clear(struct job *j)
{
	store_rec_clear(&j->jb_rec);
	json_decref(j->jb_body);
	j->jb_body = NULL;
}

/* Parse a listed/read record into `j` (takes the record). */
static int
job_from_rec(struct job *j, struct store_rec *rec)
{
	j->jb_rec = *rec;
	memset(rec, 0, sizeof(*rec));
	j->jb_body = json_loadb(j->jb_rec.sr_body, j->jb_rec.sr_body_len, 0, NULL);
	if (!json_is_object(j->jb_body)) {
		LOG_EV("reg.job.unreadable", "job", j->jb_rec.sr_name);
		return -1;
	}
	return 0;
}

static int
job_load(struct store *st, const char *id, struct job *j, struct reg_err *e)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };

	memset(j, 0, sizeof(*j));
	if (!job_id_valid(id))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown job");
	if (store_rec_get(st, JOB_KIND, id, &rec, &se) != 0)
		return reg_from_store(e, &se, true);
	if (job_from_rec(j, &rec) != 0) {
		job_clear(j);
		return reg_err_set(e, REG_E_INTERNAL, "job record unreadable");
	}
	return 0;
}

/* CAS the job to `state` with its (changed) body; on success the job
 * holds the new record.  -1 with se (STORE_STATUS_CONFLICT: re-read). */
static int
job_save(struct store *st, struct job *j, int state, int64_t now_ms, struct store_err *se)
{
	struct store_rec out = { 0 };

	if (rec_put_json(st, &j->jb_rec, state, j->jb_body, j->jb_rec.sr_version, now_ms, &out,
			 se) != 0)
		return -1;
	store_rec_clear(&j->jb_rec);
	j->jb_rec = out;
	return 0;
}

static void
job_audit(struct reg *r, const struct job *j, const char *extra, int64_t now_ms)
{
	char action[32], detail[MSSP_STORE_MAX_REC_NAME + 512];
	int s = j->jb_rec.sr_state;

	snprintf(action, sizeof(action), "job.%s", reg_job_state_name(s));
	snprintf(detail, sizeof(detail), "job %s %s group %s%s%s", j->jb_rec.sr_name,
		 jstr(j->jb_body, "kind"), jstr(j->jb_body, "group"), extra ? ": " : "",
		 extra ? extra : "");
	reg_audit_event(r, &reg_sys, action, j->jb_rec.sr_owner,
			s == REG_JOB_FAILED ? "failed" : "ok", detail, now_ms);
}

/* Move the job to a final-ish state with status and detail (body), then
 * audit.  Returns 0, or -1 with se. */
static int
job_finish(struct reg *r, struct store *st, struct job *j, int state, int status,
	   const char *detail, int64_t now_ms, struct store_err *se)
{
	json_object_set_new(j->jb_body, "status", json_integer(status));
	json_object_set_new(j->jb_body, "detail", json_string(detail ? detail : ""));
	if (job_save(st, j, state, now_ms, se) != 0)
		return -1;
	job_audit(r, j, detail, now_ms);
	return 0;
}

static bool
job_overdue(const struct job *j, int64_t now_ms)
{
	return j->jb_rec.sr_expires_ms != 0 && j->jb_rec.sr_expires_ms <= now_ms;
}

/* Expire an overdue open job (best effort: a conflict means someone else
 * moved it). */
static void
job_expire(struct reg *r, struct store *st, struct job *j, int64_t now_ms)
{
	struct store_err se = { 0 };

	if (job_finish(r, st, j, REG_JOB_EXPIRED, 208, "not done in time", now_ms, &se) != 0 &&
	    se.status != STORE_STATUS_CONFLICT)
		LOG_EV("reg.job.expire_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
}

/* Fill a struct reg_job from a job (0, or -1 when its body does not fit:
 * logged, skipped). */
static int
job_fill(const struct job *j, struct reg_job *o)
{
	json_t *b = j->jb_body, *v;
	size_t i;

	memset(o, 0, sizeof(*o));
	if (copy_str(o->rj_id, sizeof(o->rj_id), j->jb_rec.sr_name) != 0 ||
	    copy_str(o->rj_kind, sizeof(o->rj_kind), jstr(b, "kind")) != 0 ||
	    copy_str(o->rj_msisdn, sizeof(o->rj_msisdn), j->jb_rec.sr_owner) != 0 ||
	    copy_str(o->rj_device, sizeof(o->rj_device), jstr(b, "device")) != 0 ||
	    copy_str(o->rj_group, sizeof(o->rj_group), jstr(b, "group")) != 0 ||
	    copy_str(o->rj_purpose, sizeof(o->rj_purpose), jstr(b, "purpose")) != 0 ||
	    copy_str(o->rj_alg, sizeof(o->rj_alg), jstr(b, "alg")) != 0)
		goto bad;
	o->rj_state = j->jb_rec.sr_state;
	o->rj_pin = json_is_true(json_object_get(b, "pin"));
	o->rj_updated_ms = j->jb_rec.sr_updated_ms;
	json_array_foreach(json_object_get(b, "profiles"), i, v) {
		if (i >= MSSP_KEYSTORE_MAX_PROFILES || !json_is_string(v) ||
		    copy_str(o->rj_profiles[i], sizeof(o->rj_profiles[i]), json_string_value(v)) != 0)
			goto bad;
		o->rj_nprofiles = i + 1;
	}
	if (o->rj_state == REG_JOB_ISSUED) {
		o->rj_cert = b64_dec(jstr(b, "cert"), MSSP_KEYSTORE_MAX_CERT, &o->rj_cert_len);
		if (o->rj_cert == NULL)
			goto bad;
		json_array_foreach(json_object_get(b, "chain"), i, v) {
			if (i >= MSSP_KEYSTORE_MAX_CHAIN || !json_is_string(v))
				goto bad;
			o->rj_chain[i] = b64_dec(json_string_value(v), MSSP_KEYSTORE_MAX_CERT,
						 &o->rj_chain_len[i]);
			if (o->rj_chain[i] == NULL)
				goto bad;
			o->rj_nchain = i + 1;
		}
	}
	return 0;
bad:
	LOG_EV("reg.job.unusable", "job", j->jb_rec.sr_name);
	reg_job_clear(o);
	return -1;
}

/* Page through the jobs in `state` (all owners, or `owner`): `fn` gets
 * each parsed job (borrowed; it may change it in the store) and returns
 * 0 to go on, 1 to stop, -1 for an error (e filled). */
typedef int (*job_fn)(void *arg, struct job *j);

static int
job_each(struct store *st, const char *owner, int state, job_fn fn, void *arg,
	 struct reg_err *e)
{
	struct store_rec *recs = calloc(MSSP_STORE_SCAN_BATCH, sizeof(*recs));
	char after[MSSP_STORE_MAX_REC_NAME + 1] = "";
	struct store_err se = { 0 };
	size_t k, i, seen = 0;
	int rc = 0;

	if (recs == NULL)
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	for (;;) {
		k = 0;
		if (store_rec_list(st, JOB_KIND, owner, state, after[0] ? after : NULL, recs,
				   MSSP_STORE_SCAN_BATCH, &k, &se) != 0) {
			rc = reg_from_store(e, &se, false);
			break;
		}
		if (k > 0)
			memcpy(after, recs[k - 1].sr_name, sizeof(after));
		for (i = 0; i < k && rc == 0; i++) {
			struct job j = { 0 };

			if (job_from_rec(&j, &recs[i]) == 0)
				rc = fn(arg, &j);
			job_clear(&j);
		}
		for (i = 0; i < k; i++)
			store_rec_clear(&recs[i]);
		seen += k;
		if (rc != 0 || k < MSSP_STORE_SCAN_BATCH || seen >= MSSP_STORE_MAX_SCAN)
			break;
	}
	free(recs);
	return rc < 0 ? -1 : 0;
}

/* Is the job's device still there, its user's, and active?  1 yes, 0 no
 * (*why), -1 the store failed (ask again later).  A user deleted (or the
 * device deleted, or moved by a delete and re-create of the MSISDN)
 * leaves jobs behind: they must not reach a phone or get a certificate. */
static int
job_device_ok(struct store *st, const struct job *j, const char **why)
{
	struct store_device d;
	struct store_err se = { 0 };
	int rc = 1;

	if (store_device_get(st, jstr(j->jb_body, "device"), &d, &se) != 0) {
		if (se.status != 101)
			return -1;
		*why = "device gone";
		rc = 0;
	} else if (strcmp(d.sd_msisdn, j->jb_rec.sr_owner) != 0) {
		*why = "device no longer the user's";
		rc = 0;
	} else if (d.sd_state != STORE_DEVICE_ACTIVE) {
		*why = "device disabled";
		rc = 0;
	}
	OPENSSL_cleanse(&d, sizeof(d));
	return rc;
}

struct deliver_ctx {
	struct reg *dc_r;
	struct store *dc_st;
	bool (*dc_online)(void *, const char *);
	void *dc_arg;
	struct reg_job *dc_out;
	size_t dc_max, dc_n;
	int64_t dc_now;
};

static int
deliver_one(void *arg, struct job *j)
{
	struct deliver_ctx *c = arg;
	struct store_err se = { 0 };
	const char *why = "";
	int s = j->jb_rec.sr_state;
	int64_t sent = jint(j->jb_body, "sent_ms");

	if (job_overdue(j, c->dc_now)) {
		job_expire(c->dc_r, c->dc_st, j, c->dc_now);
		return 0;
	}
	if (c->dc_n >= c->dc_max)
		return 1;
	/* SENT (and ISSUED, whose certificate went out) wait for an answer
	 * before being sent again. */
	if ((s == REG_JOB_SENT || s == REG_JOB_ISSUED) && sent != 0 &&
	    c->dc_now - sent < MSSP_HOME_JOB_RESEND_MS)
		return 0;
	if (c->dc_online != NULL && !c->dc_online(c->dc_arg, jstr(j->jb_body, "device")))
		return 0;
	/* only for a job about to go out: one read, not one per open job */
	switch (job_device_ok(c->dc_st, j, &why)) {
	case 1:
		break;
	case 0:
		if (job_finish(c->dc_r, c->dc_st, j, REG_JOB_FAILED, 105, why, c->dc_now, &se) != 0 &&
		    se.status != STORE_STATUS_CONFLICT)
			LOG_EV("reg.job.fail_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
		return 0;
	default:
		return 0; /* the store: next round */
	}
	if (job_fill(j, &c->dc_out[c->dc_n]) == 0)
		c->dc_n++;
	return 0;
}

int
reg_jobs_to_deliver(struct reg *r, struct store *st, bool (*online)(void *, const char *),
		    void *arg, struct reg_job *out, size_t max, size_t *n, int64_t now_ms,
		    struct reg_err *e)
{
	static const int states[] = { REG_JOB_REQUESTED, REG_JOB_SENT, REG_JOB_ISSUED };
	struct deliver_ctx c = { r, st, online, arg, out, max, 0, now_ms };
	size_t i;

	*n = 0;
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (job_each(st, NULL, states[i], deliver_one, &c, e) != 0) {
			while (c.dc_n > 0)
				reg_job_clear(&out[--c.dc_n]);
			return -1;
		}
		if (c.dc_n >= max)
			break;
	}
	*n = c.dc_n;
	return 0;
}

int
reg_job_sent(struct reg *r, struct store *st, const char *job_id, int64_t now_ms,
	     struct reg_err *e)
{
	struct store_err se = { 0 };
	struct job j;
	int attempt, rc = -1;

	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		if (job_load(st, job_id, &j, e) != 0)
			return -1;
		if (j.jb_rec.sr_state == REG_JOB_ANSWERED) {
			/* the phone answered before the send was recorded */
			rc = 0;
			goto out;
		}
		if (!job_open(j.jb_rec.sr_state)) {
			rc = reg_err_set(e, REG_E_CONFLICT, "job not deliverable");
			goto out;
		}
		if (job_overdue(&j, now_ms)) {
			job_expire(r, st, &j, now_ms);
			rc = reg_err_set(e, REG_E_GONE, "job expired");
			goto out;
		}
		json_object_set_new(j.jb_body, "sent_ms", json_integer(now_ms));
		/* REQUESTED -> SENT; SENT and ISSUED keep their state with the
		 * new time (a re-send). */
		if (job_save(st, &j,
			     j.jb_rec.sr_state == REG_JOB_REQUESTED ? REG_JOB_SENT : j.jb_rec.sr_state,
			     now_ms, &se) == 0) {
			rc = 0;
			goto out;
		}
		job_clear(&j);
		if (se.status != STORE_STATUS_CONFLICT)
			return reg_from_store(e, &se, true);
	}
	return reg_err_set(e, REG_E_CONFLICT, "job changed meanwhile");
out:
	job_clear(&j);
	return rc;
}

/* One try of reg_job_answer: 0 done, 1 conflict (re-read), -1 error. */
static int
answer_once(struct reg *r, struct store *st, const char *device_id, const char *job_id,
	    int status, const uint8_t *csr, size_t csr_len, int64_t now_ms, struct reg_err *e)
{
	struct store_err se = { 0 };
	struct job j;
	char detail[64];
	int s, rc = 0, to = 0;
	bool keygen;

	if (job_load(st, job_id, &j, e) != 0)
		return -1;
	s = j.jb_rec.sr_state;
	if (device_id == NULL || strcmp(jstr(j.jb_body, "device"), device_id) != 0) {
		reg_audit_event(r, &reg_sys, "job.answer", j.jb_rec.sr_owner, "refused",
				"answer from another device", now_ms);
		rc = reg_err_set(e, REG_E_FORBIDDEN, "not this device's job");
		goto out;
	}
	keygen = strcmp(jstr(j.jb_body, "kind"), "keygen") == 0;
	if (keygen && (s == REG_JOB_REQUESTED || s == REG_JOB_SENT)) {
		if (status == 0) {
			char *b;

			if (csr == NULL || csr_len == 0 || csr_len > MSSP_CA_MAX_CSR_DER) {
				rc = reg_err_set(e, REG_E_BAD, "keygen answer without a usable CSR");
				goto out;
			}
			b = b64_enc(csr, csr_len);
			if (b == NULL) {
				rc = reg_err_set(e, REG_E_INTERNAL, "out of memory");
				goto out;
			}
			json_object_set_new(j.jb_body, "csr", json_string(b));
			free(b);
			to = REG_JOB_ANSWERED;
		} else {
			to = REG_JOB_FAILED;
		}
	} else if (keygen && s == REG_JOB_ISSUED && csr == NULL) {
		/* the certificate installed (or not: the key stays in the
		 * store either way, the RA sees the job failed) */
		to = status == 0 ? REG_JOB_DONE : REG_JOB_FAILED;
	} else if (!keygen && (s == REG_JOB_REQUESTED || s == REG_JOB_SENT)) {
		to = status == 0 ? REG_JOB_DONE : REG_JOB_FAILED;
	} else {
		/* A re-sent answer for a step already taken (or a late one
		 * for a finished job): accepted again, nothing changes. */
		goto out;
	}
	if (to == REG_JOB_FAILED) {
		snprintf(detail, sizeof(detail), "device answered %d", status);
		if (job_finish(r, st, &j, to, status, detail, now_ms, &se) != 0)
			goto store_fail;
	} else {
		if (to == REG_JOB_DONE)
			json_object_set_new(j.jb_body, "status", json_integer(0));
		if (job_save(st, &j, to, now_ms, &se) != 0)
			goto store_fail;
		job_audit(r, &j, NULL, now_ms);
	}
	goto out;
store_fail:
	rc = se.status == STORE_STATUS_CONFLICT ? 1 : reg_from_store(e, &se, true);
out:
	job_clear(&j);
	return rc;
}

int
reg_job_answer(struct reg *r, struct store *st, const char *device_id, const char *job_id,
	       int status, const uint8_t *csr, size_t csr_len, int64_t now_ms,
	       struct reg_err *e)
{
	int attempt, rc;

	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		rc = answer_once(r, st, device_id, job_id, status, csr, csr_len, now_ms, e);
		if (rc != 1)
			return rc;
	}
	return reg_err_set(e, REG_E_CONFLICT, "job changed meanwhile");
}

/* ---- ME: answered keygen jobs -> certificates ------------------------------ */

/* Does the CSR key match the job's algorithm ("ec-p256", "rsa-2048",
 * "rsa-3072")?  An unknown algorithm matches nothing (fail closed). */
static bool
key_matches_alg(EVP_PKEY *k, const char *alg)
{
	char grp[64];
	int nid;

	if (strcmp(alg, "ec-p256") == 0) {
		if (!EVP_PKEY_is_a(k, "EC") ||
		    EVP_PKEY_get_group_name(k, grp, sizeof(grp), NULL) != 1)
			return false;
		nid = OBJ_sn2nid(grp);
		if (nid == NID_undef)
			nid = EC_curve_nist2nid(grp);
		return nid == NID_X9_62_prime256v1;
	}
	if (strcmp(alg, "rsa-2048") == 0)
		return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048;
	if (strcmp(alg, "rsa-3072") == 0)
		return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 3072;
	return false;
}

/* Cut `s` to at most `max` bytes at a UTF-8 character boundary. */
static void
utf8_cut(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	s[n] = '\0';
}

/* The certificate, its chain (CA certificate and the chain above it) and
 * serial into the job body. */
static int
body_set_cert(json_t *b, struct pki_ca *ca, const uint8_t *der, size_t len, const char *serial)
{
	json_t *chain = json_array();
	STACK_OF(X509) *up = pki_ca_chain(ca);
	char *s = b64_enc(der, len);
	int i, rc = -1;

	if (chain == NULL || s == NULL)
		goto out;
	json_object_set_new(b, "cert", json_string(s));
	free(s);
	s = NULL;
	for (i = -1; i < (up ? sk_X509_num(up) : 0) && json_array_size(chain) < MSSP_KEYSTORE_MAX_CHAIN;
	     i++) {
		X509 *x = i < 0 ? pki_ca_cert(ca) : sk_X509_value(up, i);
		unsigned char *d = NULL;
		int dl = i2d_X509(x, &d);

		if (dl <= 0)
			goto out;
		s = b64_enc(d, (size_t)dl);
		OPENSSL_free(d);
		if (s == NULL)
			goto out;
		json_array_append_new(chain, json_string(s));
		free(s);
		s = NULL;
	}
	json_object_set(b, "chain", chain);
	json_object_set_new(b, "cert_serial", json_string(serial));
	json_object_set_new(b, "sent_ms", json_integer(0)); /* the cert not sent yet */
	rc = 0;
out:
	free(s);
	json_decref(chain);
	return rc;
}

struct process_ctx {
	struct reg *pc_r;
	struct store *pc_st;
	int64_t pc_now;
	size_t pc_n;
	struct reg_err *pc_e;
};

/* Refuse the job with `status` and `detail` (K-row verdict name). */
static int
job_refuse(struct process_ctx *c, struct job *j, int status, const char *detail)
{
	struct store_err se = { 0 };

	if (job_finish(c->pc_r, c->pc_st, j, REG_JOB_FAILED, status, detail, c->pc_now, &se) != 0 &&
	    se.status != STORE_STATUS_CONFLICT)
		LOG_EV("reg.job.fail_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
	return 0;
}

/* Was the job `job_id` given up before its key was certified?  A claim
 * whose job is gone (deleted with its user), FAILED or EXPIRED without a
 * certificate in its body: the claim was written, then issuance failed, the
 * process died before the CA was asked, or the release below failed.  A
 * job still open may be issuing right now: not abandoned. */
static bool
keyfp_job_abandoned(struct store *st, const char *job_id)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	json_t *b = NULL;
	bool gone;

	if (!job_id_valid(job_id))
		return false;
	if (store_rec_get(st, JOB_KIND, job_id, &rec, &se) != 0)
		return se.status == 101;
	gone = rec.sr_state == REG_JOB_FAILED || rec.sr_state == REG_JOB_EXPIRED;
	if (gone) {
		b = json_loadb(rec.sr_body, rec.sr_body_len, 0, NULL);
		gone = json_is_object(b) && jstr(b, "cert_serial")[0] == '\0';
	}
	json_decref(b);
	store_rec_clear(&rec);
	return gone;
}

/* Claim the tombstone of `fp` for this job (K-07 for good: see "keyfp").
 * 0 claimed (or claimed by this same job before: a re-process; or taken
 * over from a job abandoned before issuance: the tombstone has no serial,
 * which is written before the key record, so no certificate was ever
 * kept for it), 1 the key was registered before (*verdict "duplicate",
 * or "compromised" when it was revoked for keyCompromise), -1 the store
 * failed. */
static int
keyfp_claim(struct process_ctx *c, const struct job *j, const unsigned char fp[PKI_KEYCHECK_FP_LEN],
	    const char *key_id, const char *msisdn, const char **verdict)
{
	struct reg *r = c->pc_r;
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	struct pki_ca_entry ce;
	json_t *b = NULL;
	uint64_t expect = STORE_REC_NEW;
	int attempt, rc = -1;

	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		json_t *nb = json_pack("{s:s,s:s,s:s,s:s}", "key_id", key_id, "msisdn", msisdn,
				       "job", j->jb_rec.sr_name, "serial", "");

		if (nb == NULL)
			return -1;
		store_rec_clear(&rec);
		snprintf(rec.sr_kind, sizeof(rec.sr_kind), "%s", KEYFP_KIND);
		hex_encode(fp, PKI_KEYCHECK_FP_LEN, rec.sr_name);
		rc = rec_put_json(c->pc_st, &rec, KEYFP_ISSUED, nb, expect, c->pc_now, NULL, &se);
		json_decref(nb);
		if (rc == 0) {
			if (expect != STORE_REC_NEW)
				LOG_EV("reg.keyfp.taken_over", "job", j->jb_rec.sr_name, "from",
				       jstr(b, "job"));
			json_decref(b);
			return 0;
		}
		json_decref(b);
		b = NULL;
		if (se.status != STORE_STATUS_CONFLICT)
			break;
		rc = keyfp_get(c->pc_st, fp, &rec, &b, &se);
		if (rc == 1) {
			expect = STORE_REC_NEW; /* released meanwhile */
			continue;
		}
		if (rc != 0)
			break;
		if (rec.sr_state != KEYFP_ISSUED || jstr(b, "serial")[0] != '\0')
			goto registered;
		if (strcmp(jstr(b, "job"), j->jb_rec.sr_name) == 0) {
			rc = 0;
			goto out;
		}
		if (!keyfp_job_abandoned(c->pc_st, jstr(b, "job")))
			goto registered;
		expect = rec.sr_version; /* take it over (CAS) */
	}
	LOG_EV("reg.keyfp.claim_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
	rc = -1;
	goto out;
registered:
	rc = 1;
	*verdict = rec.sr_state == KEYFP_COMPROMISED
			   ? pki_keycheck_verdict_name(PKI_KEYCHECK_COMPROMISED)
			   : pki_keycheck_verdict_name(PKI_KEYCHECK_DUPLICATE);
	/* revoked for keyCompromise by a path that did not mark the
	 * tombstone: the CA knows */
	if (rec.sr_state == KEYFP_ISSUED && jstr(b, "serial")[0] != '\0') {
		bool comp;

		pthread_mutex_lock(&r->r_ca_lock);
		comp = pki_ca_lookup(r->r_ca, jstr(b, "serial"), &ce, &pe) == 0 && ce.ce_revoked &&
		       ce.ce_reason == PKI_CA_REASON_KEY_COMPROMISE;
		pthread_mutex_unlock(&r->r_ca_lock);
		pki_err_clear_openssl();
		if (comp) {
			*verdict = pki_keycheck_verdict_name(PKI_KEYCHECK_COMPROMISED);
			if (keyfp_compromised(c->pc_st, fp, jstr(b, "key_id"), jstr(b, "msisdn"),
					      jstr(b, "serial"), c->pc_now, &se) != 0)
				LOG_EV("reg.keyfp.mark_failed", "job", j->jb_rec.sr_name, "detail",
				       se.detail);
		}
	}
	if (strcmp(*verdict, pki_keycheck_verdict_name(PKI_KEYCHECK_COMPROMISED)) == 0)
		LOG_EV("reg.key.incident", "job", j->jb_rec.sr_name, "verdict", *verdict);
out:
	store_rec_clear(&rec);
	json_decref(b);
	return rc;
}

/* This job's claim on `fp` released: the CA refused, so the key was never
 * certified and must stay usable (a re-request sends the same key: the
 * phone keeps an uncertified group).  Only this job's serial-less claim
 * (CAS); best effort: a claim left behind is taken over by the next job
 * once this one is FAILED (keyfp_job_abandoned). */
static void
keyfp_release(struct process_ctx *c, const struct job *j,
	      const unsigned char fp[PKI_KEYCHECK_FP_LEN])
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	json_t *b = NULL;

	if (keyfp_get(c->pc_st, fp, &rec, &b, &se) == 0 && rec.sr_state == KEYFP_ISSUED &&
	    jstr(b, "serial")[0] == '\0' && strcmp(jstr(b, "job"), j->jb_rec.sr_name) == 0 &&
	    store_rec_delete(c->pc_st, KEYFP_KIND, rec.sr_name, rec.sr_version, c->pc_now, &se) != 0)
		LOG_EV("reg.keyfp.release_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
	store_rec_clear(&rec);
	json_decref(b);
}

/* The certificate's serial into this job's tombstone (CAS), BEFORE the key
 * record: from then on the key counts as certified (no take-over; the CA
 * look-up of keyfp_claim), also when the key record is then undone.  0, or
 * -1 (logged): the caller undoes the certificate. */
static int
keyfp_set_serial(struct process_ctx *c, const struct job *j,
		 const unsigned char fp[PKI_KEYCHECK_FP_LEN], const char *serial)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	json_t *b = NULL;
	int got, rc = -1;

	got = keyfp_get(c->pc_st, fp, &rec, &b, &se);
	if (got == 0 && rec.sr_state == KEYFP_ISSUED &&
	    strcmp(jstr(b, "job"), j->jb_rec.sr_name) == 0) {
		json_object_set_new(b, "serial", json_string(serial));
		rc = rec_put_json(c->pc_st, &rec, rec.sr_state, b, rec.sr_version, c->pc_now, NULL,
				  &se);
	} else if (got >= 0) {
		store_err_set(&se, 900, "%s",
			      got == 1 ? "tombstone missing" : "tombstone claimed by another job");
	}
	if (rc != 0)
		LOG_EV("reg.keyfp.serial_failed", "job", j->jb_rec.sr_name, "serial", serial,
		       "detail", se.detail);
	store_rec_clear(&rec);
	json_decref(b);
	return rc;
}

/* A re-process of a job whose key was issued and stored while the job
 * update failed: is the stored ACTIVE key `k` this job's (the CSR's key,
 * claimed by this job)? */
static bool
issued_by_job(struct process_ctx *c, const struct job *j, EVP_PKEY *pub, const struct store_key *k)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	json_t *b = NULL;
	bool mine;

	if (k->sk_cert_len == 0 || pki_keycheck_fingerprint(pub, fp, &pe) != 0 ||
	    CRYPTO_memcmp(fp, k->sk_spki_fp, sizeof(fp)) != 0)
		return false;
	mine = keyfp_get(c->pc_st, fp, &rec, &b, &se) == 0 && rec.sr_state == KEYFP_ISSUED &&
	       strcmp(jstr(b, "job"), j->jb_rec.sr_name) == 0;
	store_rec_clear(&rec);
	json_decref(b);
	return mine;
}

/* ... then complete the job with the stored certificate (the phone gets
 * it; no second certificate). */
static int
process_complete(struct process_ctx *c, struct job *j, const struct store_key *k)
{
	struct reg *r = c->pc_r;
	struct store_err se = { 0 };
	char detail[MSSP_STORE_MAX_KEY_ID + MSSP_STORE_MAX_SERIAL + 64];
	int rc;

	pthread_mutex_lock(&r->r_ca_lock);
	rc = body_set_cert(j->jb_body, r->r_ca, k->sk_cert, k->sk_cert_len, k->sk_cert_serial);
	pthread_mutex_unlock(&r->r_ca_lock);
	if (rc != 0 || job_save(c->pc_st, j, REG_JOB_ISSUED, c->pc_now, &se) != 0) {
		/* still ANSWERED: taken up again when the claim lapses */
		LOG_EV("reg.job.complete_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
		return 0;
	}
	snprintf(detail, sizeof(detail), "key %s serial %s issued before, job completed",
		 k->sk_key_id, k->sk_cert_serial);
	job_audit(r, j, detail, c->pc_now);
	return 0;
}

/* Issue under the CA lock: certificate, key record (with rollback by
 * revocation), job ISSUED. */
static int
process_issue(struct process_ctx *c, struct job *j, EVP_PKEY *pub, const struct store_user *u)
{
	struct reg *r = c->pc_r;
	struct pki_ca_identity id = { 0 };
	struct pki_err pe = { 0 };
	struct store_err se = { 0 };
	struct store_key k;
	json_t *b = j->jb_body, *v;
	char cn[2 * MSSP_STORE_MAX_NAME + 2], detail[300];
	char *serial = NULL;
	const char *verdict = "";
	unsigned char *der = NULL;
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	size_t i, off = 0;
	int dl, rc = 0;
	bool issued = false;

	memset(&k, 0, sizeof(k));
	/* K-10: the subject comes from the RA's record, never the CSR. */
	id.id_serial_number = u->su_id_number[0] ? u->su_id_number : u->su_msisdn;
	if (u->su_given_name[0] && u->su_surname[0])
		snprintf(cn, sizeof(cn), "%s %s", u->su_given_name, u->su_surname);
	else
		snprintf(cn, sizeof(cn), "%s", u->su_name[0] ? u->su_name : u->su_msisdn);
	utf8_cut(cn, MSSP_CA_MAX_NAME_VALUE);
	id.id_common_name = cn;
	id.id_given_name = u->su_given_name[0] ? u->su_given_name : NULL;
	id.id_surname = u->su_surname[0] ? u->su_surname : NULL;
	id.id_country = u->su_country[0] ? u->su_country : NULL;

	/* the key record, before the CA is asked (no certificate for a key
	 * record that cannot be written) */
	if (snprintf(k.sk_key_id, sizeof(k.sk_key_id), "%s", jstr(b, "key_id")) <= 0 ||
	    copy_str(k.sk_group, sizeof(k.sk_group), jstr(b, "group")) != 0 ||
	    copy_str(k.sk_msisdn, sizeof(k.sk_msisdn), u->su_msisdn) != 0 ||
	    copy_str(k.sk_device_id, sizeof(k.sk_device_id), jstr(b, "device")) != 0)
		return job_refuse(c, j, 900, "job record unusable");
	k.sk_purpose = strcmp(jstr(b, "purpose"), "authn") == 0 ? STORE_KEY_AUTHN : STORE_KEY_SIGN;
	json_array_foreach(json_object_get(b, "profiles"), i, v) {
		const char *p = json_string_value(v);
		size_t pl = p ? strlen(p) : 0;

		if (pl == 0 || off + pl + 1 >= sizeof(k.sk_profiles))
			return job_refuse(c, j, 900, "job profiles unusable");
		if (off > 0)
			k.sk_profiles[off++] = ' ';
		memcpy(k.sk_profiles + off, p, pl + 1);
		off += pl;
	}
	k.sk_has_pin = json_is_true(json_object_get(b, "pin"));
	k.sk_state = STORE_KEY_ACTIVE;
	if (pki_keycheck_fingerprint(pub, k.sk_spki_fp, &pe) != 0)
		return job_refuse(c, j, 900, "fingerprint failed");
	/* K-07 for good: a key certified once (for anyone, under any key
	 * id, since revoked or deleted or not) is never certified again */
	switch (keyfp_claim(c, j, k.sk_spki_fp, k.sk_key_id, u->su_msisdn, &verdict)) {
	case 0:
		break;
	case 1:
		return job_refuse(c, j, 407, verdict);
	default:
		return job_refuse(c, j, 900, "key tombstone not stored");
	}

	pthread_mutex_lock(&r->r_ca_lock);
	if (pki_ca_issue(r->r_ca, jstr(b, "cert_profile"), &id, pub, NULL, 0, &x, &pe) != 0) {
		pthread_mutex_unlock(&r->r_ca_lock);
		/* no certificate: the key stays usable (review 2, F1) */
		keyfp_release(c, j, k.sk_spki_fp);
		snprintf(detail, sizeof(detail), "issuance refused: %s", pe.detail);
		return job_refuse(c, j, pe.status, detail);
	}
	issued = true;
	dl = i2d_X509(x, &der);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	serial = bn ? BN_bn2hex(bn) : NULL;
	/* certified from here on, whatever follows: the serial into the
	 * tombstone before anything can fail and undo */
	if (serial != NULL && keyfp_set_serial(c, j, k.sk_spki_fp, serial) != 0) {
		snprintf(detail, sizeof(detail), "key tombstone not stored");
		se.status = 900;
		goto undo;
	}
	if (dl <= 0 || (size_t)dl > sizeof(k.sk_cert) || serial == NULL ||
	    copy_str(k.sk_cert_serial, sizeof(k.sk_cert_serial), serial) != 0) {
		snprintf(detail, sizeof(detail), "certificate does not fit the key record");
		se.status = 900;
		goto undo;
	}
	memcpy(k.sk_cert, der, (size_t)dl);
	k.sk_cert_len = (size_t)dl;
	if (store_key_put(c->pc_st, &k, c->pc_now, &se) != 0) {
		/* K-07: the unique fingerprint index refused a key registered
		 * already (any user). */
		snprintf(detail, sizeof(detail), "%s",
			 se.status == 407 ? pki_keycheck_verdict_name(PKI_KEYCHECK_DUPLICATE)
					  : "key record not stored");
		goto undo;
	}
	{
		struct reg_err ie = { 0 };

		/* cert.revoke finds the key by serial (reg.c's index) */
		if (reg_index_cert_serial(c->pc_st, serial, k.sk_key_id, c->pc_now, &ie) != 0)
			LOG_EV("reg.job.serial_index_failed", "job", j->jb_rec.sr_name, "detail",
			       ie.msg);
	}
	if (body_set_cert(b, r->r_ca, der, (size_t)dl, serial) != 0 ||
	    job_save(c->pc_st, j, REG_JOB_ISSUED, c->pc_now, &se) != 0) {
		/* The key is in the store: it can sign.  The job stays
		 * ANSWERED and is re-processed when the claim lapses:
		 * process_one finds this key (the CSR's, claimed by this
		 * job) and completes the job with its certificate. */
		pthread_mutex_unlock(&r->r_ca_lock);
		LOG_EV("reg.job.issued_unsaved", "job", j->jb_rec.sr_name, "detail", se.detail);
		snprintf(detail, sizeof(detail), "key %s serial %s (job not updated)", k.sk_key_id,
			 serial);
		reg_audit_event(r, &reg_sys, "key.issued", u->su_msisdn, "ok", detail, c->pc_now);
		goto done;
	}
	pthread_mutex_unlock(&r->r_ca_lock);
	job_audit(r, j, NULL, c->pc_now);
	snprintf(detail, sizeof(detail), "key %s serial %s", k.sk_key_id, serial);
	reg_audit_event(r, &reg_sys, "key.issued", u->su_msisdn, "ok", detail, c->pc_now);
	goto done;
undo:
	/* No valid certificate without its key record. */
	if (issued && serial != NULL &&
	    (pki_ca_revoke(r->r_ca, serial, PKI_CA_REASON_SUPERSEDED, 0, &pe) != 0 ||
	     pki_ca_crl(r->r_ca, 0, NULL, &pe) != 0))
		LOG_EV("reg.job.revoke_failed", "job", j->jb_rec.sr_name, "detail", pe.detail);
	pthread_mutex_unlock(&r->r_ca_lock);
	rc = job_refuse(c, j, se.status == 407 ? 407 : 900, detail);
done:
	OPENSSL_free(der);
	OPENSSL_free(serial);
	BN_free(bn);
	X509_free(x);
	return rc;
}

static int
process_one(void *arg, struct job *j)
{
	struct process_ctx *c = arg;
	struct reg *r = c->pc_r;
	struct pki_keycheck_sets sets = { .ks_compromised = &r->r_compromised };
	enum pki_keycheck_verdict v = PKI_KEYCHECK_INTERNAL;
	struct pki_err pe = { 0 };
	struct store_err se = { 0 };
	struct store_user u;
	struct store_key old;
	json_t *b = j->jb_body;
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	EVP_PKEY *pub = NULL;
	char detail[200];
	const char *why = "";
	int64_t claim = jint(b, "claim_ms");
	int rc = 0;

	if (job_overdue(j, c->pc_now)) {
		job_expire(r, c->pc_st, j, c->pc_now);
		return 0;
	}
	if (strcmp(jstr(b, "kind"), "keygen") != 0)
		return 0;
	if (claim != 0 && c->pc_now - claim < MSSP_REG_JOB_CLAIM_MS)
		return 0; /* another ME process is on it */
	/* Claim it (CAS): of two ME processes only one issues. */
	json_object_set_new(b, "claim_ms", json_integer(c->pc_now));
	if (job_save(c->pc_st, j, REG_JOB_ANSWERED, c->pc_now, &se) != 0) {
		if (se.status != STORE_STATUS_CONFLICT)
			LOG_EV("reg.job.claim_failed", "job", j->jb_rec.sr_name, "detail", se.detail);
		return 0;
	}
	c->pc_n++;

	csr = b64_dec(jstr(b, "csr"), MSSP_CA_MAX_CSR_DER, &csr_len);
	if (csr == NULL) {
		rc = job_refuse(c, j, 101, "csr malformed");
		goto out;
	}
	/* K-08, K-11: strict DER, policy, proof of possession. */
	if (pki_ca_csr_check(csr, csr_len, NULL, &pub, &pe) != 0) {
		snprintf(detail, sizeof(detail), "csr %s: %s",
			 pe.status == 101 ? "malformed" : "refused", pe.detail);
		rc = job_refuse(c, j, pe.status == 101 ? 101 : pe.status == 407 ? 407 : 900, detail);
		goto out;
	}
	/* K-01..K-06 (K-07 is the store's unique fingerprint index). */
	if (pki_keycheck_pkey(pub, NULL, &sets, &v, &pe) != 0) {
		rc = job_refuse(c, j, pe.status == 900 ? 900 : 407, pki_keycheck_verdict_name(v));
		if (v == PKI_KEYCHECK_RSA_ROCA || v == PKI_KEYCHECK_COMPROMISED)
			LOG_EV("reg.key.incident", "job", j->jb_rec.sr_name, "verdict",
			       pki_keycheck_verdict_name(v));
		goto out;
	}
	if (!key_matches_alg(pub, jstr(b, "alg"))) {
		rc = job_refuse(c, j, 407, "key-alg");
		goto out;
	}
	if (store_user_get(c->pc_st, j->jb_rec.sr_owner, &u, &se) != 0) {
		rc = job_refuse(c, j, se.status == 105 ? 105 : 900, "user unavailable");
		goto out;
	}
	if (u.su_state != STORE_USER_ACTIVE) {
		rc = job_refuse(c, j, 104, "user suspended");
		goto out;
	}
	/* a job of an earlier user of this MSISDN (deleted, re-created) */
	if (u.su_created_ms > j->jb_rec.sr_created_ms) {
		rc = job_refuse(c, j, 105, "user re-created since the request");
		goto out;
	}
	switch (job_device_ok(c->pc_st, j, &why)) {
	case 1:
		break;
	case 0:
		rc = job_refuse(c, j, 105, why);
		goto out;
	default:
		rc = job_refuse(c, j, 900, "device unavailable");
		goto out;
	}
	/* A second job for a group that got its key meanwhile must not
	 * replace that key (and leave its certificate orphaned); but this
	 * job's own key, issued and stored while the job update failed, is
	 * completed. */
	if (store_key_get(c->pc_st, jstr(b, "key_id"), &old, &se) == 0 &&
	    old.sk_state == STORE_KEY_ACTIVE) {
		if (issued_by_job(c, j, pub, &old))
			rc = process_complete(c, j, &old);
		else
			rc = job_refuse(c, j, 101, "group has an active key");
		goto out;
	}
	rc = process_issue(c, j, pub, &u);
out:
	free(csr);
	EVP_PKEY_free(pub);
	pki_err_clear_openssl();
	return rc;
}

int
reg_jobs_process(struct reg *r, struct store *st, int64_t now_ms, size_t *n, struct reg_err *e)
{
	struct process_ctx c = { r, st, now_ms, 0, e };
	int rc;

	if (n != NULL)
		*n = 0;
	if (r->r_ca == NULL || !pki_ca_has_key(r->r_ca))
		return 0; /* the jobs wait for an ME with the CA key */
	rc = job_each(st, NULL, REG_JOB_ANSWERED, process_one, &c, e);
	if (n != NULL)
		*n = c.pc_n;
	return rc;
}

/* ---- ME operations: key request, PIN unblock, job views ------------------- */

struct open_jobs {
	struct {
		char oj_kind[16];
		char oj_group[MSSP_KEYSTORE_MAX_ID + 1];
	} oj[64];
	size_t oj_n;
	int64_t oj_now;
	int64_t oj_user_created; /* older jobs are an earlier user's */
	bool oj_more; /* more open jobs than fit: refuse, to be safe */
};

static int
open_job_one(void *arg, struct job *j)
{
	struct open_jobs *o = arg;

	/* a job of an earlier user of the MSISDN (deleted, created again)
	 * does not hold the group: it is failed when it next moves */
	if (!job_open(j->jb_rec.sr_state) || job_overdue(j, o->oj_now) ||
	    j->jb_rec.sr_created_ms < o->oj_user_created)
		return 0;
	if (o->oj_n >= sizeof(o->oj) / sizeof(o->oj[0])) {
		o->oj_more = true;
		return 1;
	}
	snprintf(o->oj[o->oj_n].oj_kind, sizeof(o->oj[0].oj_kind), "%s", jstr(j->jb_body, "kind"));
	snprintf(o->oj[o->oj_n].oj_group, sizeof(o->oj[0].oj_group), "%s",
		 jstr(j->jb_body, "group"));
	o->oj_n++;
	return 0;
}

static bool
open_job_has(const struct open_jobs *o, const char *kind, const char *group)
{
	size_t i;

	if (o->oj_more)
		return true;
	for (i = 0; i < o->oj_n; i++)
		if (strcmp(o->oj[i].oj_kind, kind) == 0 && strcmp(o->oj[i].oj_group, group) == 0)
			return true;
	return false;
}

/* Create one job record; `body` gets the common members.  0 with id. */
static int
job_create(struct store *st, const char *msisdn, json_t *body, int64_t now_ms,
	   char id[JOB_ID_LEN + 1], struct reg_err *e)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	int attempt;

	json_object_set_new(body, "sent_ms", json_integer(0));
	json_object_set_new(body, "status", json_integer(0));
	json_object_set_new(body, "detail", json_string(""));
	snprintf(rec.sr_kind, sizeof(rec.sr_kind), "%s", JOB_KIND);
	snprintf(rec.sr_owner, sizeof(rec.sr_owner), "%s", msisdn);
	rec.sr_expires_ms = now_ms + (int64_t)MSSP_REG_JOB_TTL_S * 1000;
	for (attempt = 0; attempt < MSSP_REG_CAS_RETRIES; attempt++) {
		if (job_new_id(id) != 0)
			return reg_err_set(e, REG_E_INTERNAL, "no randomness");
		memcpy(rec.sr_name, id, JOB_ID_LEN + 1);
		if (rec_put_json(st, &rec, REG_JOB_REQUESTED, body, STORE_REC_NEW, now_ms, NULL,
				 &se) == 0)
			return 0;
		if (se.status != STORE_STATUS_CONFLICT)
			return reg_from_store(e, &se, false);
	}
	return reg_err_set(e, REG_E_INTERNAL, "job id collisions");
}

/* The user (must be active) and its open jobs. */
static int
user_for_jobs(struct store *st, const char *in, char m[MSSP_STORE_MAX_MSISDN + 1],
	      struct open_jobs *oj, int64_t now_ms, struct reg_err *e)
{
	struct store_err se = { 0 };
	struct store_user u;

	if (reg_msisdn_norm(in, m, e) != 0)
		return -1;
	if (store_user_get(st, m, &u, &se) != 0)
		return reg_from_store(e, &se, true);
	if (u.su_state != STORE_USER_ACTIVE)
		return reg_err_set(e, REG_E_CONFLICT, "user suspended");
	memset(oj, 0, sizeof(*oj));
	oj->oj_now = now_ms;
	oj->oj_user_created = u.su_created_ms;
	return job_each(st, m, -1, open_job_one, oj, e);
}

/* The device to put keys on: `want` (must be the user's and active), or
 * the user's only active device. */
static int
pick_device(struct store *st, const char *m, const char *want,
	    char out[MSSP_KEYSTORE_MAX_ID + 1], struct reg_err *e)
{
	struct store_device d[MSSP_STORE_MAX_USER_DEVICES];
	struct store_err se = { 0 };
	size_t n = 0, i, active = 0;
	int rc = -1;

	if (store_user_devices(st, m, d, MSSP_STORE_MAX_USER_DEVICES, &n, &se) != 0) {
		rc = reg_from_store(e, &se, true);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (want != NULL && strcmp(d[i].sd_device_id, want) == 0) {
			if (d[i].sd_state != STORE_DEVICE_ACTIVE) {
				rc = reg_err_set(e, REG_E_CONFLICT, "device disabled");
				goto out;
			}
			memcpy(out, d[i].sd_device_id, sizeof(d[i].sd_device_id));
			rc = 0;
			goto out;
		}
		if (d[i].sd_state == STORE_DEVICE_ACTIVE) {
			if (active++ == 0)
				memcpy(out, d[i].sd_device_id, sizeof(d[i].sd_device_id));
		}
	}
	if (want != NULL)
		rc = reg_err_set(e, REG_E_NOTFOUND, "unknown device");
	else if (active == 0)
		rc = reg_err_set(e, REG_E_CONFLICT, "user has no active device");
	else if (active > 1)
		rc = reg_err_set(e, REG_E_BAD, "user has several devices: name one");
	else
		rc = 0;
out:
	OPENSSL_cleanse(d, sizeof(d));
	return rc;
}

/* One key group of a registration profile, checked again here (the
 * profile validator is reg.c's; this is what the jobs rely on). */
static int
group_ok(json_t *g, size_t *profiles_text)
{
	const char *id = jstr(g, "group"), *p = jstr(g, "purpose");
	json_t *pr = json_object_get(g, "profiles"), *v;
	size_t i, n = strlen(id), t = 0;

	if (n == 0 || n > MSSP_KEYSTORE_MAX_ID)
		return -1;
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || id[i] == '.' || id[i] == '_' || id[i] == '-'))
			return -1;
	if (strcmp(p, "authn") != 0 && strcmp(p, "sign") != 0)
		return -1;
	if (!json_is_array(pr) || json_array_size(pr) == 0 ||
	    json_array_size(pr) > MSSP_KEYSTORE_MAX_PROFILES)
		return -1;
	json_array_foreach(pr, i, v) {
		size_t l = strlen(json_string_value(v) ? json_string_value(v) : "");

		if (l == 0 || l > MSSP_PROFILE_MAX_URI)
			return -1;
		t += l + 1;
	}
	if (t > MSSP_STORE_MAX_PROFILES_TEXT)
		return -1;
	if (jstr(g, "alg")[0] == '\0' || jstr(g, "cert_profile")[0] == '\0')
		return -1;
	*profiles_text = t;
	return 0;
}

int
reg_op_key_request(struct reg *r, struct store *st, const struct reg_actor *who,
		   const char *msisdn, json_t *body, int64_t now_ms, json_t **out,
		   struct reg_err *e)
{
	char m[MSSP_STORE_MAX_MSISDN + 1], dev[MSSP_KEYSTORE_MAX_ID + 1] = "";
	char key_id[MSSP_STORE_MAX_KEY_ID + 1], id[JOB_ID_LEN + 1];
	struct store_key keys[MSSP_STORE_MAX_USER_KEYS];
	struct store_err se = { 0 };
	struct open_jobs *oj = NULL;
	json_t *prof = NULL, *groups, *g, *res = NULL, *arr;
	const char *pname, *want = NULL, *k;
	json_t *v;
	size_t nkeys = 0, i, j, fresh = 0, pt;
	int rc = -1;

	(void)r;
	*out = NULL;
	if (!json_is_object(body))
		return reg_err_set(e, REG_E_BAD, "body must be an object");
	json_object_foreach(body, k, v) {
		if (strcmp(k, "registration_profile") != 0 && strcmp(k, "device") != 0)
			return reg_err_set(e, REG_E_BAD, "unknown member in key request");
	}
	pname = json_string_value(json_object_get(body, "registration_profile"));
	if (pname == NULL || pname[0] == '\0')
		return reg_err_set(e, REG_E_BAD, "registration_profile required");
	if (json_object_get(body, "device") != NULL) {
		want = json_string_value(json_object_get(body, "device"));
		if (want == NULL || want[0] == '\0' || strlen(want) > MSSP_KEYSTORE_MAX_ID)
			return reg_err_set(e, REG_E_BAD, "device must be a device id");
	}
	oj = calloc(1, sizeof(*oj));
	if (oj == NULL)
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	if (user_for_jobs(st, msisdn, m, oj, now_ms, e) != 0 ||
	    pick_device(st, m, want, dev, e) != 0 || reg_regprof_get(st, pname, &prof, e) != 0)
		goto out;
	groups = json_object_get(prof, "key_groups");
	if (!json_is_array(groups) || json_array_size(groups) == 0 ||
	    json_array_size(groups) > MSSP_REG_MAX_KEY_GROUPS) {
		rc = reg_err_set(e, REG_E_BAD, "registration profile has no usable key groups");
		goto out;
	}
	if (store_user_keys(st, m, keys, MSSP_STORE_MAX_USER_KEYS, &nkeys, &se) != 0) {
		rc = reg_from_store(e, &se, true);
		goto out;
	}
	/* Check every group before creating any job (all or nothing). */
	json_array_foreach(groups, i, g) {
		const char *gid = jstr(g, "group");
		bool known = false;

		if (group_ok(g, &pt) != 0) {
			rc = reg_err_set(e, REG_E_BAD, "registration profile key group %zu unusable", i);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(jstr(json_array_get(groups, j), "group"), gid) == 0) {
				rc = reg_err_set(e, REG_E_BAD, "registration profile repeats a group");
				goto out;
			}
		snprintf(key_id, sizeof(key_id), "%s-%s", m + 1, gid);
		for (j = 0; j < nkeys; j++) {
			if (strcmp(keys[j].sk_key_id, key_id) == 0)
				known = true;
			if (strcmp(keys[j].sk_group, gid) == 0 &&
			    keys[j].sk_state == STORE_KEY_ACTIVE) {
				rc = reg_err_set(e, REG_E_CONFLICT, "user has an active key for group %s",
						 gid);
				goto out;
			}
		}
		if (open_job_has(oj, "keygen", gid)) {
			rc = reg_err_set(e, REG_E_CONFLICT, "a key job for group %s is open", gid);
			goto out;
		}
		if (!known)
			fresh++;
	}
	if (nkeys + fresh > MSSP_STORE_MAX_USER_KEYS) {
		rc = reg_err_set(e, REG_E_CONFLICT, "user would have more than %d keys",
				 MSSP_STORE_MAX_USER_KEYS);
		goto out;
	}
	res = json_object();
	arr = json_array();
	json_object_set_new(res, "jobs", arr);
	json_array_foreach(groups, i, g) {
		json_t *jb = json_object();

		snprintf(key_id, sizeof(key_id), "%s-%s", m + 1, jstr(g, "group"));
		json_object_set_new(jb, "kind", json_string("keygen"));
		json_object_set_new(jb, "device", json_string(dev));
		json_object_set(jb, "group", json_object_get(g, "group"));
		json_object_set_new(jb, "key_id", json_string(key_id));
		json_object_set(jb, "purpose", json_object_get(g, "purpose"));
		json_object_set_new(jb, "profiles", json_deep_copy(json_object_get(g, "profiles")));
		json_object_set_new(jb, "pin", json_boolean(json_is_true(json_object_get(g, "pin"))));
		json_object_set(jb, "alg", json_object_get(g, "alg"));
		json_object_set(jb, "cert_profile", json_object_get(g, "cert_profile"));
		json_object_set_new(jb, "reg_profile", json_string(pname));
		json_object_set_new(jb, "requested_by", json_string(who ? who->ra_name : "system"));
		rc = job_create(st, m, jb, now_ms, id, e);
		json_decref(jb);
		if (rc != 0)
			goto out; /* jobs made so far stay: the answer is an error,
				   * the RA sees them in the user's jobs */
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "job", id, "group",
						     jstr(g, "group"), "state", "requested"));
	}
	*out = res;
	res = NULL;
	rc = REG_ACCEPTED;
out:
	json_decref(res);
	json_decref(prof);
	free(oj);
	return rc;
}

int
reg_op_pin_unblock(struct reg *r, struct store *st, const struct reg_actor *who,
		   const char *msisdn, const char *key_id, int64_t now_ms, json_t **out,
		   struct reg_err *e)
{
	char m[MSSP_STORE_MAX_MSISDN + 1], id[JOB_ID_LEN + 1];
	struct store_err se = { 0 };
	struct store_device d;
	struct store_key k;
	struct open_jobs *oj;
	json_t *jb, *prof;
	char *save = NULL, *tok;
	int rc = -1;

	(void)r;
	*out = NULL;
	oj = calloc(1, sizeof(*oj));
	if (oj == NULL)
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	if (user_for_jobs(st, msisdn, m, oj, now_ms, e) != 0)
		goto out;
	if (key_id == NULL || store_key_get(st, key_id, &k, &se) != 0 ||
	    strcmp(k.sk_msisdn, m) != 0) {
		rc = reg_err_set(e, REG_E_NOTFOUND, "unknown key");
		goto out;
	}
	if (!k.sk_has_pin) {
		rc = reg_err_set(e, REG_E_BAD, "key has no PIN");
		goto out;
	}
	if (k.sk_state == STORE_KEY_REVOKED) {
		rc = reg_err_set(e, REG_E_CONFLICT, "key revoked");
		goto out;
	}
	if (store_device_get(st, k.sk_device_id, &d, &se) != 0 ||
	    d.sd_state != STORE_DEVICE_ACTIVE) {
		OPENSSL_cleanse(&d, sizeof(d));
		rc = reg_err_set(e, REG_E_CONFLICT, "the key's device is not active");
		goto out;
	}
	OPENSSL_cleanse(&d, sizeof(d));
	if (open_job_has(oj, "unblock", k.sk_group)) {
		rc = reg_err_set(e, REG_E_CONFLICT, "an unblock job for this key is open");
		goto out;
	}
	jb = json_object();
	prof = json_array();
	for (tok = strtok_r(k.sk_profiles, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
		json_array_append_new(prof, json_string(tok));
	json_object_set_new(jb, "kind", json_string("unblock"));
	json_object_set_new(jb, "device", json_string(k.sk_device_id));
	json_object_set_new(jb, "group", json_string(k.sk_group));
	json_object_set_new(jb, "key_id", json_string(k.sk_key_id));
	json_object_set_new(jb, "purpose",
			    json_string(k.sk_purpose == STORE_KEY_AUTHN ? "authn" : "sign"));
	json_object_set_new(jb, "profiles", prof);
	json_object_set_new(jb, "pin", json_true());
	json_object_set_new(jb, "alg", json_string(""));
	json_object_set_new(jb, "requested_by", json_string(who ? who->ra_name : "system"));
	rc = job_create(st, m, jb, now_ms, id, e);
	json_decref(jb);
	if (rc == 0) {
		*out = json_pack("{s:s,s:s}", "job", id, "state", "requested");
		rc = *out != NULL ? REG_ACCEPTED : reg_err_set(e, REG_E_INTERNAL, "out of memory");
	}
out:
	free(oj);
	return rc;
}

static json_t *
job_view(const struct job *j)
{
	char c[32], u[32], x[32];
	json_t *o;

	reg_iso_time(j->jb_rec.sr_created_ms, c);
	reg_iso_time(j->jb_rec.sr_updated_ms, u);
	reg_iso_time(j->jb_rec.sr_expires_ms, x);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "job",
		      j->jb_rec.sr_name, "kind", jstr(j->jb_body, "kind"), "state",
		      reg_job_state_name(j->jb_rec.sr_state), "msisdn", j->jb_rec.sr_owner, "device",
		      jstr(j->jb_body, "device"), "group", jstr(j->jb_body, "group"), "key_id",
		      jstr(j->jb_body, "key_id"), "status", (json_int_t)jint(j->jb_body, "status"),
		      "detail", jstr(j->jb_body, "detail"), "created", c, "updated", u, "expires",
		      x);
	if (o != NULL && jstr(j->jb_body, "cert_serial")[0] != '\0')
		json_object_set_new(o, "cert_serial", json_string(jstr(j->jb_body, "cert_serial")));
	return o;
}

int
reg_op_job_get(struct reg *r, struct store *st, const char *job_id, json_t **out,
	       struct reg_err *e)
{
	struct job j;

	(void)r;
	*out = NULL;
	if (job_load(st, job_id, &j, e) != 0)
		return -1;
	*out = job_view(&j);
	job_clear(&j);
	return *out != NULL ? 0 : reg_err_set(e, REG_E_INTERNAL, "out of memory");
}

struct recent_jobs {
	struct job rj[MSSP_REG_USER_JOBS];
	size_t rj_n;
};

/* Keep the MSSP_REG_USER_JOBS newest (by creation) while paging. */
static int
recent_one(void *arg, struct job *j)
{
	struct recent_jobs *rj = arg;
	size_t i, oldest = 0;

	if (rj->rj_n < MSSP_REG_USER_JOBS) {
		rj->rj[rj->rj_n++] = *j;
		memset(j, 0, sizeof(*j));
		return 0;
	}
	for (i = 1; i < rj->rj_n; i++)
		if (rj->rj[i].jb_rec.sr_created_ms < rj->rj[oldest].jb_rec.sr_created_ms)
			oldest = i;
	if (j->jb_rec.sr_created_ms > rj->rj[oldest].jb_rec.sr_created_ms) {
		job_clear(&rj->rj[oldest]);
		rj->rj[oldest] = *j;
		memset(j, 0, sizeof(*j));
	}
	return 0;
}

static int
recent_cmp(const void *a, const void *b)
{
	const struct job *x = a, *y = b;

	if (x->jb_rec.sr_created_ms != y->jb_rec.sr_created_ms)
		return x->jb_rec.sr_created_ms > y->jb_rec.sr_created_ms ? -1 : 1;
	return strcmp(x->jb_rec.sr_name, y->jb_rec.sr_name);
}

int
reg_user_jobs(struct reg *r, struct store *st, const char *msisdn, json_t **out,
	      struct reg_err *e)
{
	char m[MSSP_STORE_MAX_MSISDN + 1];
	struct recent_jobs *rj;
	json_t *arr;
	size_t i;
	int rc = 0;

	(void)r;
	*out = NULL;
	if (reg_msisdn_norm(msisdn, m, e) != 0)
		return -1;
	rj = calloc(1, sizeof(*rj));
	arr = json_array();
	if (rj == NULL || arr == NULL) {
		free(rj);
		json_decref(arr);
		return reg_err_set(e, REG_E_INTERNAL, "out of memory");
	}
	if (job_each(st, m, -1, recent_one, rj, e) != 0)
		rc = -1;
	qsort(rj->rj, rj->rj_n, sizeof(rj->rj[0]), recent_cmp);
	for (i = 0; i < rj->rj_n; i++) {
		if (rc == 0)
			json_array_append_new(arr, job_view(&rj->rj[i]));
		job_clear(&rj->rj[i]);
	}
	free(rj);
	if (rc != 0) {
		json_decref(arr);
		return -1;
	}
	*out = arr;
	return 0;
}

/* ---- key-material scan ------------------------------------------------------ */

struct scan_fp {
	unsigned char sf_fp[PKI_KEYCHECK_FP_LEN];
	uint32_t sf_idx;
	bool sf_active;
};

struct scan_hit {
	char sh_key_id[MSSP_STORE_MAX_KEY_ID + 1];
	char sh_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char sh_serial[MSSP_STORE_MAX_SERIAL + 1]; /* the certificate judged */
	const char *sh_verdict; /* static */
};

struct scan_rsa {
	BIGNUM *sr_n;
	uint32_t sr_idx;
	bool sr_active;
	char sr_key_id[MSSP_STORE_MAX_KEY_ID + 1];
	char sr_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char sr_serial[MSSP_STORE_MAX_SERIAL + 1];
};

struct scan_ctx {
	struct reg *sc_r;
	size_t sc_keys, sc_rsa, sc_batches;
	struct scan_fp *sc_fps;
	size_t sc_nfp, sc_capfp;
	struct scan_rsa *sc_mod; /* MSSP_REG_MAX_SCAN_RSA */
	size_t sc_nmod;
	unsigned char *sc_hitmap; /* one byte per key index */
	size_t sc_caphm;
	struct scan_hit *sc_hits;
	size_t sc_nhits, sc_caphits;
	/* second pass: the fingerprints shared by several keys, one of them
	 * active (sorted) */
	unsigned char (*sc_dup)[PKI_KEYCHECK_FP_LEN];
	size_t sc_ndup;
	bool sc_oom;
};

/* `idx` is the key's place in the first pass, UINT32_MAX in the second
 * (where places may have shifted: the key id decides). */
static int
scan_hit_add(struct scan_ctx *c, uint32_t idx, const char *key_id, const char *msisdn,
	     const char *serial, const char *verdict)
{
	struct scan_hit *h;
	size_t i;

	if (idx == UINT32_MAX) {
		for (i = 0; i < c->sc_nhits; i++)
			if (strcmp(c->sc_hits[i].sh_key_id, key_id) == 0)
				return 0; /* first verdict wins */
		goto add;
	}
	if (idx < c->sc_caphm && c->sc_hitmap[idx])
		return 0; /* first verdict wins */
	if (idx >= c->sc_caphm) {
		size_t nc = c->sc_caphm ? c->sc_caphm * 2 : 1024;
		unsigned char *nm;

		while (nc <= idx)
			nc *= 2;
		nm = realloc(c->sc_hitmap, nc);
		if (nm == NULL)
			return -1;
		memset(nm + c->sc_caphm, 0, nc - c->sc_caphm);
		c->sc_hitmap = nm;
		c->sc_caphm = nc;
	}
	c->sc_hitmap[idx] = 1;
add:
	if (c->sc_nhits == c->sc_caphits) {
		size_t nc = c->sc_caphits ? c->sc_caphits * 2 : 16;
		struct scan_hit *nh = realloc(c->sc_hits, nc * sizeof(*nh));

		if (nh == NULL)
			return -1;
		c->sc_hits = nh;
		c->sc_caphits = nc;
	}
	h = &c->sc_hits[c->sc_nhits++];
	snprintf(h->sh_key_id, sizeof(h->sh_key_id), "%s", key_id);
	snprintf(h->sh_msisdn, sizeof(h->sh_msisdn), "%s", msisdn);
	snprintf(h->sh_serial, sizeof(h->sh_serial), "%s", serial);
	h->sh_verdict = verdict;
	return 0;
}

/* Batch GCD over the moduli collected so far (K-05), then empty the
 * batch.  Only active keys become hits, but every key's modulus takes
 * part (a prime shared with a revoked key is as bad). */
static int
scan_rsa_flush(struct scan_ctx *c)
{
	const BIGNUM **mods;
	unsigned char *flag;
	struct pki_err pe = { 0 };
	size_t i, nf = 0;
	int rc = 0;

	if (c->sc_nmod == 0)
		return 0;
	mods = calloc(c->sc_nmod, sizeof(*mods));
	flag = calloc(c->sc_nmod, 1);
	if (mods == NULL || flag == NULL) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < c->sc_nmod; i++)
		mods[i] = c->sc_mod[i].sr_n;
	if (c->sc_nmod >= 2 &&
	    pki_keycheck_shared_primes((const BIGNUM *const *)mods, c->sc_nmod, flag, &nf, &pe) != 0) {
		LOG_EV("reg.scan.shared_primes_failed", "detail", pe.detail);
		rc = -1;
		goto out;
	}
	for (i = 0; i < c->sc_nmod && rc == 0; i++)
		if (flag[i] && c->sc_mod[i].sr_active)
			rc = scan_hit_add(c, c->sc_mod[i].sr_idx, c->sc_mod[i].sr_key_id,
					  c->sc_mod[i].sr_msisdn, c->sc_mod[i].sr_serial,
					  "rsa-shared-prime");
	c->sc_batches++;
out:
	for (i = 0; i < c->sc_nmod; i++)
		BN_free(c->sc_mod[i].sr_n);
	c->sc_nmod = 0;
	free(mods);
	free(flag);
	return rc;
}

static int
scan_key(void *arg, const struct store_key *k)
{
	struct scan_ctx *c = arg;
	struct reg *r = c->sc_r;
	struct pki_keycheck_sets sets = { .ks_compromised = &r->r_compromised };
	enum pki_keycheck_verdict v = PKI_KEYCHECK_INTERNAL;
	struct pki_err pe = { 0 };
	const unsigned char *p = k->sk_cert;
	uint32_t idx = (uint32_t)c->sc_keys++;
	bool active = k->sk_state == STORE_KEY_ACTIVE;
	EVP_PKEY *pub;
	X509 *x;
	int rc = 0;

	if (k->sk_cert_len == 0)
		return 0;
	x = d2i_X509(NULL, &p, (long)k->sk_cert_len);
	if (x == NULL || p != k->sk_cert + k->sk_cert_len) {
		X509_free(x);
		pki_err_clear_openssl();
		if (active && scan_hit_add(c, idx, k->sk_key_id, k->sk_msisdn, k->sk_cert_serial,
					   pki_keycheck_verdict_name(PKI_KEYCHECK_MALFORMED)) != 0)
			goto oom;
		return 0;
	}
	if (pki_keycheck_x509(x, NULL, &sets, &v, &pe) != 0 && v != PKI_KEYCHECK_INTERNAL && active &&
	    scan_hit_add(c, idx, k->sk_key_id, k->sk_msisdn, k->sk_cert_serial,
			 pki_keycheck_verdict_name(v)) != 0)
		goto oom_x;
	pub = X509_get0_pubkey(x);
	if (pub != NULL) {
		if (c->sc_nfp == c->sc_capfp) {
			size_t nc = c->sc_capfp ? c->sc_capfp * 2 : 256;
			struct scan_fp *nf = realloc(c->sc_fps, nc * sizeof(*nf));

			if (nf == NULL)
				goto oom_x;
			c->sc_fps = nf;
			c->sc_capfp = nc;
		}
		if (pki_keycheck_fingerprint(pub, c->sc_fps[c->sc_nfp].sf_fp, &pe) == 0) {
			c->sc_fps[c->sc_nfp].sf_idx = idx;
			c->sc_fps[c->sc_nfp].sf_active = active;
			c->sc_nfp++;
		}
		if (EVP_PKEY_is_a(pub, "RSA") || EVP_PKEY_is_a(pub, "RSA-PSS")) {
			struct scan_rsa *m = &c->sc_mod[c->sc_nmod];

			m->sr_n = NULL;
			if (EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &m->sr_n) == 1) {
				m->sr_idx = idx;
				m->sr_active = active;
				snprintf(m->sr_key_id, sizeof(m->sr_key_id), "%s", k->sk_key_id);
				snprintf(m->sr_msisdn, sizeof(m->sr_msisdn), "%s", k->sk_msisdn);
				snprintf(m->sr_serial, sizeof(m->sr_serial), "%s", k->sk_cert_serial);
				c->sc_nmod++;
				c->sc_rsa++;
				if (c->sc_nmod == MSSP_REG_MAX_SCAN_RSA && scan_rsa_flush(c) != 0)
					goto oom_x;
			}
		}
	}
	X509_free(x);
	pki_err_clear_openssl();
	return rc;
oom_x:
	X509_free(x);
	pki_err_clear_openssl();
oom:
	c->sc_oom = true;
	return 1;
}

static int
fp_cmp(const void *a, const void *b)
{
	const struct scan_fp *x = a, *y = b;
	int d = memcmp(x->sf_fp, y->sf_fp, sizeof(x->sf_fp));

	if (d != 0)
		return d;
	return x->sf_idx < y->sf_idx ? -1 : x->sf_idx > y->sf_idx;
}

static int
fp_bytes_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PKI_KEYCHECK_FP_LEN);
}

/* Second pass: which ACTIVE keys have one of the duplicate fingerprints?
 * Matched by fingerprint, re-computed from each candidate's certificate
 * (never by the first pass's position: a key deleted or added between
 * the passes shifts every position after it).  The stored fingerprint
 * skips the certificate parse for the keys it rules out. */
static int
scan_dup_key(void *arg, const struct store_key *k)
{
	struct scan_ctx *c = arg;
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	struct pki_err pe = { 0 };
	const unsigned char *p = k->sk_cert;
	X509 *x;
	bool dup;

	if (k->sk_state != STORE_KEY_ACTIVE || k->sk_cert_len == 0)
		return 0;
	if (!fp_zero(k->sk_spki_fp) &&
	    bsearch(k->sk_spki_fp, c->sc_dup, c->sc_ndup, sizeof(*c->sc_dup), fp_bytes_cmp) == NULL)
		return 0;
	x = d2i_X509(NULL, &p, (long)k->sk_cert_len);
	dup = x != NULL && p == k->sk_cert + k->sk_cert_len && X509_get0_pubkey(x) != NULL &&
	      pki_keycheck_fingerprint(X509_get0_pubkey(x), fp, &pe) == 0 &&
	      bsearch(fp, c->sc_dup, c->sc_ndup, sizeof(*c->sc_dup), fp_bytes_cmp) != NULL;
	X509_free(x);
	pki_err_clear_openssl();
	if (dup && scan_hit_add(c, UINT32_MAX, k->sk_key_id, k->sk_msisdn, k->sk_cert_serial,
				pki_keycheck_verdict_name(PKI_KEYCHECK_DUPLICATE)) != 0) {
		c->sc_oom = true;
		return 1;
	}
	return 0;
}

/* Act on one hit: the key can no longer sign.  With the CA in this
 * process its certificate is revoked (keyCompromise) and the key REVOKED
 * (*crl_due: one CRL after the scan); without, the key is DISABLED and
 * the revocation is pending: an RA finishes it by hand with cert.revoke
 * on the serial (which marks the key REVOKED), from a process with the CA.
 * The same when the CA revoked but the store refused REVOKED: the key is
 * DISABLED instead.  The hit is re-checked first: the key must still be
 * ACTIVE with the certificate the scan judged.  The JSON hit and the audit
 * detail say exactly what was done, never more (outcome "failed" when the
 * key could not be taken out of service in the store). */
static void
scan_act(struct reg *r, struct store *st, const struct scan_hit *h, const struct reg_actor *who,
	 int64_t now_ms, json_t *hits, bool *crl_due)
{
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	struct pki_ca_entry ce;
	struct store_key k;
	char detail[400];
	const char *action, *outcome = "ok";
	int rc;

	if (store_key_get(st, h->sh_key_id, &k, &se) != 0 || k.sk_state != STORE_KEY_ACTIVE ||
	    strcmp(k.sk_cert_serial, h->sh_serial) != 0) {
		LOG_EV("reg.scan.hit_changed", "key", h->sh_key_id);
		return; /* gone, handled or re-issued since it was judged */
	}
	if (r->r_ca != NULL && k.sk_cert_serial[0] != '\0') {
		pthread_mutex_lock(&r->r_ca_lock);
		rc = pki_ca_revoke(r->r_ca, k.sk_cert_serial, PKI_CA_REASON_KEY_COMPROMISE,
				   (time_t)(now_ms / 1000), &pe);
		/* revoked already (by whatever reason): it is not valid now */
		if (rc != 0 && pki_ca_lookup(r->r_ca, k.sk_cert_serial, &ce, &pe) == 0 && ce.ce_revoked)
			rc = 0;
		pthread_mutex_unlock(&r->r_ca_lock);
		pki_err_clear_openssl();
		if (rc == 0) {
			*crl_due = true;
			reg_enrol_key_compromised(r, st, &k, now_ms);
			if (store_key_set_state(st, k.sk_key_id, STORE_KEY_REVOKED, now_ms, &se) == 0) {
				action = "revoked (keyCompromise)";
			} else {
				/* The CA has it revoked, the store did not follow:
				 * never report "revoked" over a key that can
				 * still sign (review 2, F7).  DISABLED refuses it
				 * too; cert.revoke on the serial marks it REVOKED
				 * later (200 "already_revoked"). */
				LOG_EV("reg.scan.revoke_state_failed", "key", k.sk_key_id, "detail",
				       se.detail);
				if (store_key_set_state(st, k.sk_key_id, STORE_KEY_DISABLED, now_ms,
							&se) == 0) {
					action = "revoked (keyCompromise) at the CA; the key record "
						 "could not be marked revoked: disabled";
				} else {
					LOG_EV("reg.scan.disable_failed", "key", k.sk_key_id, "detail",
					       se.detail);
					action = "revoked (keyCompromise) at the CA; the key record "
						 "could not be updated: still active in the store";
					outcome = "failed";
				}
			}
		} else {
			LOG_EV("reg.scan.revoke_failed", "key", k.sk_key_id, "detail", pe.detail);
			if (store_key_set_state(st, k.sk_key_id, STORE_KEY_DISABLED, now_ms, &se) == 0) {
				action = "disabled, revocation failed";
			} else {
				LOG_EV("reg.scan.disable_failed", "key", k.sk_key_id, "detail", se.detail);
				action = "revocation failed; the key record could not be updated: "
					 "still active in the store";
				outcome = "failed";
			}
		}
	} else if (store_key_set_state(st, k.sk_key_id, STORE_KEY_DISABLED, now_ms, &se) == 0) {
		action = k.sk_cert_serial[0] != '\0' ? "disabled, revocation pending (no CA in this process)"
						      : "disabled (no certificate)";
	} else {
		LOG_EV("reg.scan.disable_failed", "key", k.sk_key_id, "detail", se.detail);
		action = k.sk_cert_serial[0] != '\0'
				 ? "revocation pending (no CA in this process); the key record could "
				   "not be updated: still active in the store"
				 : "no certificate; the key record could not be updated: still active "
				   "in the store";
		outcome = "failed";
	}
	/* the user is held until the RA has looked (an incident) */
	/* state only, never a read-modify-write of the whole record: an RA's
	 * concurrent update must not undo the suspension, nor may this
	 * re-create a user deleted meanwhile (105: nothing to suspend) */
	if (store_user_set_state(st, h->sh_msisdn, STORE_USER_SUSPENDED, STORE_USER_ANY, now_ms,
				 &se) != 0 &&
	    se.status != 105)
		LOG_EV("reg.scan.suspend_failed", "key", h->sh_key_id, "detail", se.detail);
	snprintf(detail, sizeof(detail), "key %s verdict %s: %s", h->sh_key_id, h->sh_verdict,
		 action);
	reg_audit_event(r, who, "keys.scan.hit", h->sh_msisdn, outcome, detail, now_ms);
	json_array_append_new(hits, json_pack("{s:s,s:s,s:s,s:s}", "key_id", h->sh_key_id, "msisdn",
					      h->sh_msisdn, "verdict", h->sh_verdict, "action",
					      action));
}

int
reg_keys_scan(struct reg *r, struct store *st, const struct reg_actor *who, int64_t now_ms,
	      json_t **out, struct reg_err *e)
{
	struct scan_ctx c = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	json_t *res = NULL, *hits;
	char detail[400];
	size_t i, a, b, keys;
	int rc = -1, crl = 0;
	bool crl_due = false;

	*out = NULL;
	if (who == NULL)
		who = &reg_sys;
	c.sc_r = r;
	c.sc_mod = calloc(MSSP_REG_MAX_SCAN_RSA, sizeof(*c.sc_mod));
	if (c.sc_mod == NULL) {
		rc = reg_err_set(e, REG_E_INTERNAL, "out of memory");
		goto out;
	}
	if (store_key_scan(st, scan_key, &c, &se) != 0) {
		rc = reg_from_store(e, &se, false);
		goto out;
	}
	if (c.sc_oom || scan_rsa_flush(&c) != 0) {
		rc = reg_err_set(e, REG_E_INTERNAL, "key scan ran out of memory");
		goto out;
	}
	keys = c.sc_keys;
	/* K-07 across users: equal fingerprints, sorted together. */
	if (c.sc_nfp > 1) {
		qsort(c.sc_fps, c.sc_nfp, sizeof(*c.sc_fps), fp_cmp);
		for (a = 0; a < c.sc_nfp; a = b) {
			for (b = a + 1; b < c.sc_nfp && memcmp(c.sc_fps[a].sf_fp, c.sc_fps[b].sf_fp,
							      PKI_KEYCHECK_FP_LEN) == 0;
			     b++)
				;
			if (b - a < 2)
				continue;
			for (i = a; i < b && !c.sc_fps[i].sf_active; i++)
				;
			if (i == b)
				continue; /* no active key among them */
			if (c.sc_ndup % 256 == 0) {
				unsigned char(*nd)[PKI_KEYCHECK_FP_LEN] =
					realloc(c.sc_dup, (c.sc_ndup + 256) * sizeof(*nd));

				if (nd == NULL) {
					rc = reg_err_set(e, REG_E_INTERNAL, "out of memory");
					goto out;
				}
				c.sc_dup = nd;
			}
			/* the fingerprints come sorted: the set is sorted */
			memcpy(c.sc_dup[c.sc_ndup++], c.sc_fps[a].sf_fp, PKI_KEYCHECK_FP_LEN);
		}
	}
	if (c.sc_ndup > 0) {
		if (r->r_enrol->re_scan_hook != NULL)
			r->r_enrol->re_scan_hook(r->r_enrol->re_scan_arg, st);
		if (store_key_scan(st, scan_dup_key, &c, &se) != 0) {
			rc = reg_from_store(e, &se, false);
			goto out;
		}
		if (c.sc_oom) {
			rc = reg_err_set(e, REG_E_INTERNAL, "key scan ran out of memory");
			goto out;
		}
	}

	/* Act on each hit (bad-inputs K-02/K-05: an incident). */
	res = json_object();
	hits = json_array();
	if (res == NULL || hits == NULL) {
		json_decref(hits);
		rc = reg_err_set(e, REG_E_INTERNAL, "out of memory");
		goto out;
	}
	json_object_set_new(res, "keys", json_integer((json_int_t)keys));
	json_object_set_new(res, "rsa", json_integer((json_int_t)c.sc_rsa));
	if (c.sc_batches > 1)
		json_object_set_new(res, "rsa_batches", json_integer((json_int_t)c.sc_batches));
	json_object_set_new(res, "hits", hits);
	for (i = 0; i < c.sc_nhits; i++)
		scan_act(r, st, &c.sc_hits[i], who, now_ms, hits, &crl_due);
	/* one CRL for all the revocations (it needs the CA key) */
	if (crl_due) {
		pthread_mutex_lock(&r->r_ca_lock);
		crl = pki_ca_has_key(r->r_ca) ? pki_ca_crl(r->r_ca, (time_t)(now_ms / 1000), NULL, &pe)
					      : -2;
		pthread_mutex_unlock(&r->r_ca_lock);
		pki_err_clear_openssl();
		if (crl == -1)
			LOG_EV("reg.scan.crl_failed", "detail", pe.detail);
		json_object_set_new(res, "crl", json_string(crl == 0    ? "issued"
							    : crl == -2 ? "pending (no CA key here)"
									: "failed"));
	}
	snprintf(detail, sizeof(detail), "keys %zu rsa %zu batches %zu hits %zu%s", keys, c.sc_rsa,
		 c.sc_batches, c.sc_nhits,
		 !crl_due     ? ""
		 : crl == 0   ? " crl issued"
		 : crl == -2  ? " crl pending (no CA key here)"
			      : " crl FAILED");
	if (c.sc_batches > 1)
		strncat(detail, " (shared primes checked within batches only)",
			sizeof(detail) - strlen(detail) - 1);
	reg_audit_event(r, who, "keys.scan", "", "ok", detail, now_ms);
	*out = res;
	res = NULL;
	rc = 0;
out:
	json_decref(res);
	if (c.sc_mod != NULL)
		for (i = 0; i < c.sc_nmod; i++)
			BN_free(c.sc_mod[i].sr_n);
	free(c.sc_mod);
	free(c.sc_fps);
	free(c.sc_hitmap);
	free(c.sc_hits);
	free(c.sc_dup);
	return rc;
}

/* ---- reg_key_usable --------------------------------------------------------- */

static size_t
usable_slot(const char *key_id, const char *serial)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	const char *s;

	for (s = key_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (s = serial; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h % MSSP_REG_USABLE_CACHE);
}

bool
reg_key_usable(struct reg *r, const struct store_key *k)
{
	struct reg_enrol *en = r != NULL ? r->r_enrol : NULL;
	struct pki_keycheck_sets sets;
	enum pki_keycheck_verdict v = PKI_KEYCHECK_INTERNAL;
	struct pki_err pe = { 0 };
	const unsigned char *p;
	struct usable_ent *ue = NULL;
	bool ok, cache;
	EVP_PKEY *pub;
	X509 *x;

	if (k == NULL)
		return false;
	if (k->sk_cert_len == 0)
		return true; /* nothing to judge: the signing path needs a
			      * certificate anyway and refuses without one */
	cache = en != NULL && k->sk_cert_serial[0] != '\0';
	if (cache) {
		ue = &en->re_cache[usable_slot(k->sk_key_id, k->sk_cert_serial)];
		pthread_mutex_lock(&en->re_lock);
		if (ue->ue_used && strcmp(ue->ue_key_id, k->sk_key_id) == 0 &&
		    strcmp(ue->ue_serial, k->sk_cert_serial) == 0) {
			ok = ue->ue_ok;
			pthread_mutex_unlock(&en->re_lock);
			return ok;
		}
		pthread_mutex_unlock(&en->re_lock);
	}
	p = k->sk_cert;
	x = d2i_X509(NULL, &p, (long)k->sk_cert_len);
	if (x == NULL || p != k->sk_cert + k->sk_cert_len) {
		ok = false; /* fail closed */
	} else {
		pub = X509_get0_pubkey(x);
		if (pub != NULL && EVP_PKEY_is_a(pub, "EC")) {
			ok = true;
		} else {
			sets.ks_compromised = &r->r_compromised;
			sets.ks_registered = NULL;
			ok = pki_keycheck_x509(x, NULL, &sets, &v, &pe) == 0;
			if (!ok && v == PKI_KEYCHECK_INTERNAL)
				cache = false; /* our failure: ask again next time */
			if (!ok)
				LOG_EV("reg.key.unusable", "key", k->sk_key_id, "verdict",
				       pki_keycheck_verdict_name(v));
		}
	}
	X509_free(x);
	pki_err_clear_openssl();
	if (cache) {
		pthread_mutex_lock(&en->re_lock);
		ue->ue_used = true;
		ue->ue_ok = ok;
		snprintf(ue->ue_key_id, sizeof(ue->ue_key_id), "%s", k->sk_key_id);
		snprintf(ue->ue_serial, sizeof(ue->ue_serial), "%s", k->sk_cert_serial);
		pthread_mutex_unlock(&en->re_lock);
	}
	return ok;
}
