/*
 * test_reg_enrol.c - device activation, registration jobs, the key scan
 * and reg_key_usable (src/roles/reg_enrol.c) with real parts: a SQLite
 * store per test, a CA made in a temporary directory, the audit log, a
 * phone keystore generating the keys and CSRs, and weak RSA keys built
 * here from chosen primes (bad-inputs.md K-01..K-13).
 */
#include "teststore.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "phone/keystore.h"
#include "pki/ca.h"
#include "pki/e2e.h"
#include "pki/keycheck.h"
#include "roles/reg_int.h"
#include "store/audit.h"

#define NODE "node1"
#define CODE "123456789012"
#define PIN "1234"
#define PUK "12345678"
#define PROF_SIGN "mss::sign:loa3"

static const struct ks_params fast = { .kp_scrypt_log2n = MSSP_KEYSTORE_SCRYPT_MIN_LOG2N };
static const struct reg_actor ra = { .ra_name = "ra", .ra_role = REG_ROLE_RA };

/* What every test shares (made once): the CA, the audit log, the reg. */
static struct {
	char dir[300];
	struct pki_ca *ca;
	struct audit *audit;
	struct reg *reg;
	EVP_PKEY *compromised; /* its fingerprint is in keys/compromised.txt */
	int64_t now;
} G;

/* ---- helpers ------------------------------------------------------------- */

static void
pathf(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", ts_dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static char *
audit_text(void)
{
	char p[512];
	size_t len;

	assert_int_equal(audit_log_path(G.dir, NODE, p, sizeof(p)), 0);
	return tu_slurp(p, &len);
}

/* Does the audit log contain an entry with all of these substrings? */
static bool
audit_has(const char *a, const char *b)
{
	char *t = audit_text(), *line, *save = NULL;
	bool found = false;

	for (line = strtok_r(t, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save))
		found = strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
	free(t);
	return found;
}

/* How many entries contain all of these substrings? */
static int
audit_count(const char *a, const char *b)
{
	char *t = audit_text(), *line, *save = NULL;
	int n = 0;

	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
	free(t);
	return n;
}

static void
user_add_at(struct store *st, const char *msisdn, int64_t now)
{
	struct store_user u = { 0 };
	struct store_err se = { 0 };

	snprintf(u.su_msisdn, sizeof(u.su_msisdn), "%s", msisdn);
	u.su_state = STORE_USER_ACTIVE;
	snprintf(u.su_given_name, sizeof(u.su_given_name), "Re");
	snprintf(u.su_surname, sizeof(u.su_surname), "Created");
	snprintf(u.su_country, sizeof(u.su_country), "FI");
	if (store_user_put(st, &u, now, &se) != 0)
		fail_msg("user_put: %d %s", se.status, se.detail);
}

static void
user_del(struct store *st, const char *msisdn)
{
	struct store_err se = { 0 };

	if (store_user_delete(st, msisdn, G.now, &se) != 0)
		fail_msg("user_delete: %d %s", se.status, se.detail);
}

static void
user_add(struct store *st, const char *msisdn, const char *given, const char *sur,
	 const char *idn)
{
	struct store_user u = { 0 };
	struct store_err se = { 0 };

	snprintf(u.su_msisdn, sizeof(u.su_msisdn), "%s", msisdn);
	u.su_state = STORE_USER_ACTIVE;
	snprintf(u.su_given_name, sizeof(u.su_given_name), "%s", given);
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", sur);
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", idn);
	snprintf(u.su_country, sizeof(u.su_country), "FI");
	if (store_user_put(st, &u, G.now, &se) != 0)
		fail_msg("user_put: %d %s", se.status, se.detail);
}

static void
der_of_pub(EVP_PKEY *k, unsigned char **der, size_t *len)
{
	struct pki_err pe = { 0 };

	assert_int_equal(e2e_spki_der(k, der, len, &pe), 0);
}

static void
device_add(struct store *st, const char *msisdn, const char *id)
{
	struct store_device d = { 0 };
	struct store_err se = { 0 };
	EVP_PKEY *k = EVP_EC_gen("P-256");
	unsigned char *der;
	size_t len;

	der_of_pub(k, &der, &len);
	snprintf(d.sd_device_id, sizeof(d.sd_device_id), "%s", id);
	snprintf(d.sd_msisdn, sizeof(d.sd_msisdn), "%s", msisdn);
	memcpy(d.sd_auth_spki, der, len);
	d.sd_auth_spki_len = len;
	assert_int_equal(RAND_bytes(d.sd_e2e_key, sizeof(d.sd_e2e_key)), 1);
	d.sd_state = STORE_DEVICE_ACTIVE;
	if (store_device_put(st, &d, G.now, &se) != 0)
		fail_msg("device_put: %d %s", se.status, se.detail);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
}

static void
regprof_add(struct store *st)
{
	struct reg_err e = { 0 };
	json_t *p = json_pack("{s:s,s:s,s:[{s:s,s:s,s:[s],s:b,s:s,s:s}]}", "name", "std",
			      "description", "one signing key", "key_groups", "group", "sign1",
			      "purpose", "sign", "profiles", PROF_SIGN, "pin", 1, "alg", "ec-p256",
			      "cert_profile", "sign");

	if (reg_profile_seed(G.reg, st, true, p, G.now, &e) < 0)
		fail_msg("reg_profile_seed: %d %s", e.status, e.msg);
	json_decref(p);
}

/* A user with one device and the "std" profile. */
static void
world(struct store *st, const char *msisdn, const char *dev)
{
	user_add(st, msisdn, "Anna", "Muster", "PNOFI-0001");
	device_add(st, msisdn, dev);
	regprof_add(st);
}

static int
job_state(struct store *st, const char *id)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	int s;

	assert_int_equal(store_rec_get(st, "job", id, &rec, &se), 0);
	s = rec.sr_state;
	store_rec_clear(&rec);
	return s;
}

static json_t *
job_body(struct store *st, const char *id)
{
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	json_t *b;

	assert_int_equal(store_rec_get(st, "job", id, &rec, &se), 0);
	b = json_loads(rec.sr_body, 0, NULL);
	store_rec_clear(&rec);
	assert_non_null(b);
	return b;
}

/* key.request for `msisdn` (on `dev`, NULL: its only device) with the std
 * profile at `now`: the one job's id. */
static void
request_key_at(struct store *st, const char *msisdn, const char *dev, int64_t now, char id[32])
{
	struct reg_err e = { 0 };
	json_t *body = json_pack("{s:s}", "registration_profile", "std"), *out = NULL;
	int rc;

	if (dev != NULL)
		json_object_set_new(body, "device", json_string(dev));
	rc = reg_op_key_request(G.reg, st, &ra, msisdn, body, now, &out, &e);

	if (rc != REG_ACCEPTED)
		fail_msg("key request: %d %d %s", rc, e.status, e.msg);
	assert_int_equal(json_array_size(json_object_get(out, "jobs")), 1);
	snprintf(id, 32, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(out, "jobs"), 0),
						   "job")));
	json_decref(body);
	json_decref(out);
}

static void
request_key(struct store *st, const char *msisdn, char id[32])
{
	request_key_at(st, msisdn, NULL, G.now, id);
}

static bool
all_online(void *arg, const char *dev)
{
	(void)arg;
	(void)dev;
	return true;
}

static bool
none_online(void *arg, const char *dev)
{
	(void)arg;
	(void)dev;
	return false;
}

/* A phone keystore for `dev` with group sign1; returns the CSR DER. */
static struct ks *
phone(const char *dev, unsigned char **csr, size_t *csr_len)
{
	char path[512];
	struct pki_err pe = { 0 };
	const char *profs[] = { PROF_SIGN };
	struct ks_group_spec gs = { .gs_id = "sign1", .gs_purpose = KS_PURPOSE_SIGN,
				    .gs_profiles = profs, .gs_nprofiles = 1, .gs_pin = PIN,
				    .gs_puk = PUK };
	X509_NAME *evil = X509_NAME_new();
	X509_REQ *req;
	struct ks *ks;
	int n;

	snprintf(path, sizeof(path), "%s/%s.ks", ts_dir, dev);
	ks = ks_create(path, dev, &fast, &pe);
	if (ks == NULL)
		fail_msg("ks_create: %d %s", pe.status, pe.detail);
	assert_int_equal(ks_add_group(ks, &gs, &pe), 0);
	/* K-10: the CSR asks for a subject that must not be used */
	assert_int_equal(X509_NAME_add_entry_by_txt(evil, "CN", MBSTRING_ASC,
						    (const unsigned char *)"Mallory", -1, -1, 0),
			 1);
	req = ks_csr(ks, "sign1", PIN, evil, &pe);
	assert_non_null(req);
	*csr = NULL;
	n = i2d_X509_REQ(req, csr);
	assert_true(n > 0);
	*csr_len = (size_t)n;
	X509_REQ_free(req);
	X509_NAME_free(evil);
	return ks;
}

/* A CSR signed by `k` (any key type). */
static void
csr_of(EVP_PKEY *k, unsigned char **der, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *nm = X509_NAME_new();
	int n;

	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
						    (const unsigned char *)"x", -1, -1, 0),
			 1);
	assert_int_equal(X509_REQ_set_subject_name(req, nm), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	*der = NULL;
	n = i2d_X509_REQ(req, der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_REQ_free(req);
	X509_NAME_free(nm);
}

/* ---- RSA keys from chosen primes ------------------------------------------ */

static BIGNUM *
prime(int bits)
{
	BIGNUM *p = BN_new();

	assert_int_equal(BN_generate_prime_ex(p, bits, 0, NULL, NULL, NULL), 1);
	return p;
}

static BIGNUM *
next_prime(const BIGNUM *x)
{
	BIGNUM *p = BN_dup(x);
	int i;

	if (!BN_is_odd(p))
		assert_int_equal(BN_add_word(p, 1), 1);
	for (i = 0; i < 200000; i++) {
		if (BN_check_prime(p, NULL, NULL) == 1)
			return p;
		assert_int_equal(BN_add_word(p, 2), 1);
	}
	fail_msg("no prime");
	return NULL;
}

/* A full RSA key pair (e = 65537) from p and q. */
static EVP_PKEY *
rsa_from_pq(const BIGNUM *p, const BIGNUM *q)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n = BN_new(), *e = BN_new(), *d = BN_new(), *p1 = BN_new(), *q1 = BN_new(),
	       *phi = BN_new(), *dp = BN_new(), *dq = BN_new(), *qi = BN_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	OSSL_PARAM *params;
	EVP_PKEY *k = NULL;

	assert_int_equal(BN_set_word(e, 65537), 1);
	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_int_equal(BN_sub(p1, p, BN_value_one()), 1);
	assert_int_equal(BN_sub(q1, q, BN_value_one()), 1);
	assert_int_equal(BN_mul(phi, p1, q1, ctx), 1);
	assert_non_null(BN_mod_inverse(d, e, phi, ctx));
	assert_int_equal(BN_mod(dp, d, p1, ctx), 1);
	assert_int_equal(BN_mod(dq, d, q1, ctx), 1);
	assert_non_null(BN_mod_inverse(qi, q, p, ctx));
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
	assert_int_equal(EVP_PKEY_fromdata(pc, &k, EVP_PKEY_KEYPAIR, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pc);
	BN_free(n);
	BN_free(e);
	BN_free(d);
	BN_free(p1);
	BN_free(q1);
	BN_free(phi);
	BN_free(dp);
	BN_free(dq);
	BN_free(qi);
	BN_CTX_free(ctx);
	return k;
}

/* 2048-bit RSA with q the next prime after p + 2^516: Fermat finds it
 * (K-03). */
static EVP_PKEY *
rsa_fermat(void)
{
	BIGNUM *p = prime(1024), *t = BN_new(), *q;
	EVP_PKEY *k;

	BN_zero(t);
	assert_int_equal(BN_set_bit(t, 516), 1);
	assert_int_equal(BN_add(t, t, p), 1);
	q = next_prime(t);
	k = rsa_from_pq(p, q);
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	BN_free(p);
	BN_free(q);
	BN_free(t);
	return k;
}

/* A certificate from the test CA for `k`. */
static X509 *
cert_for(EVP_PKEY *k)
{
	struct pki_ca_identity id = { .id_serial_number = "PNOFI-9", .id_common_name = "T" };
	struct pki_err pe = { 0 };
	X509 *x = NULL;

	if (pki_ca_issue(G.ca, "sign", &id, k, NULL, 0, &x, &pe) != 0)
		fail_msg("pki_ca_issue: %d %s", pe.status, pe.detail);
	return x;
}

/* A store key record for `x`, device `dev` of `msisdn`. */
static void
key_rec(struct store_key *k, const char *msisdn, const char *dev, const char *group, X509 *x)
{
	unsigned char *der = NULL;
	struct pki_err pe = { 0 };
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);
	int n = i2d_X509(x, &der);

	memset(k, 0, sizeof(*k));
	snprintf(k->sk_key_id, sizeof(k->sk_key_id), "%s-%s", msisdn + 1, group);
	snprintf(k->sk_group, sizeof(k->sk_group), "%s", group);
	snprintf(k->sk_msisdn, sizeof(k->sk_msisdn), "%s", msisdn);
	snprintf(k->sk_device_id, sizeof(k->sk_device_id), "%s", dev);
	k->sk_purpose = STORE_KEY_SIGN;
	snprintf(k->sk_profiles, sizeof(k->sk_profiles), "%s", PROF_SIGN);
	k->sk_state = STORE_KEY_ACTIVE;
	assert_true(n > 0 && (size_t)n <= sizeof(k->sk_cert));
	memcpy(k->sk_cert, der, (size_t)n);
	k->sk_cert_len = (size_t)n;
	snprintf(k->sk_cert_serial, sizeof(k->sk_cert_serial), "%s", hex);
	assert_int_equal(pki_keycheck_fingerprint(X509_get0_pubkey(x), k->sk_spki_fp, &pe), 0);
	OPENSSL_free(der);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* ---- setup ------------------------------------------------------------------ */

static int
group_setup(void **state)
{
	struct pki_ca_init_params p = { 0 };
	struct pki_err pe = { 0 };
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct reg_conf rc = { 0 };
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	char path[512], keyp[512], hex[PKI_KEYCHECK_FP_HEX + 1];
	FILE *f;

	(void)state;
	if (ts_setup("test_reg_enrol") != 0)
		return -1;
	G.now = 1790000000000LL;
	pathf(path, sizeof(path), "ca");
	p.ci_dir = path;
	p.ci_cn = "Test User CA";
	p.ci_c = "FI";
	p.ci_passphrase = "correct horse battery staple";
	p.ci_passphrase_len = strlen(p.ci_passphrase);
	G.ca = pki_ca_init(&p, &pe);
	if (G.ca == NULL)
		fail_msg("pki_ca_init: %d %s", pe.status, pe.detail);
	pathf(G.dir, sizeof(G.dir), "audit");
	assert_int_equal(audit_keygen(G.dir, &se), 0);
	snprintf(keyp, sizeof(keyp), "%s/audit.key", G.dir);
	G.audit = audit_open(G.dir, NODE, keyp, &se);
	if (G.audit == NULL)
		fail_msg("audit_open: %d %s", se.status, se.detail);
	/* K-06: a compromised key in DIR/keys/compromised.txt */
	G.compromised = EVP_EC_gen("P-256");
	assert_int_equal(pki_keycheck_fingerprint(G.compromised, fp, &pe), 0);
	pki_keycheck_fp_hex(fp, hex);
	pathf(path, sizeof(path), "keys");
	assert_int_equal(mkdir(path, 0700), 0);
	pathf(path, sizeof(path), "keys/compromised.txt");
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "# test\n%s leaked\n", hex);
	fclose(f);
	rc.rc_node = NODE;
	rc.rc_data_dir = ts_dir;
	rc.rc_audit = G.audit;
	rc.rc_ca = G.ca;
	G.reg = reg_new(&rc, &e);
	if (G.reg == NULL)
		fail_msg("reg_new: %d %s", e.status, e.msg);
	return 0;
}

static int
group_teardown(void **state)
{
	reg_free(G.reg);
	audit_close(G.audit);
	pki_ca_free(G.ca);
	EVP_PKEY_free(G.compromised);
	return ts_teardown(state);
}

/* ---- activation ------------------------------------------------------------- */

/* Both ends of one activation attempt. */
struct act {
	EVP_PKEY *device, *app_bind, *home_bind;
	unsigned char *dev_spki, *app_spki, *home_spki;
	size_t dev_len, app_len, home_len;
	uint8_t app_nonce[E2E_NONCE_LEN], home_nonce[E2E_NONCE_LEN];
	uint8_t *t;
	size_t tlen;
	uint8_t sig[MSSP_AFE_MAX_SIG];
	size_t siglen;
	char dev_id[MSSP_KEYSTORE_MAX_ID + 1];
	uint8_t channel[E2E_KEY_LEN];
	struct reg_activation a;
};

/* Build an attempt for `msisdn` proving `code`; `signer` (NULL: the
 * device key itself) signs T. */
static void
act_make(struct act *x, const char *msisdn, const char *code, EVP_PKEY *signer)
{
	struct pki_err pe = { 0 };
	uint8_t h[32];

	memset(x, 0, sizeof(*x));
	x->device = EVP_EC_gen("P-256");
	x->app_bind = e2e_binding_keygen(&pe);
	x->home_bind = e2e_binding_keygen(&pe);
	der_of_pub(x->device, &x->dev_spki, &x->dev_len);
	der_of_pub(x->app_bind, &x->app_spki, &x->app_len);
	der_of_pub(x->home_bind, &x->home_spki, &x->home_len);
	assert_int_equal(RAND_bytes(x->app_nonce, E2E_NONCE_LEN), 1);
	assert_int_equal(RAND_bytes(x->home_nonce, E2E_NONCE_LEN), 1);
	x->t = e2e_activation_transcript(msisdn, x->app_nonce, x->home_nonce, x->home_spki,
					 x->home_len, x->app_spki, x->app_len, x->dev_spki,
					 x->dev_len, &x->tlen);
	assert_non_null(x->t);
	assert_int_equal(e2e_activation_code_hash(code, h), 0);
	assert_int_equal(e2e_activation_mac(h, x->t, x->tlen, "app", NULL, x->a.av_app_mac), 0);
	assert_int_equal(e2e_sign_msg(signer ? signer : x->device, x->t, x->tlen, x->sig,
				      &x->siglen, &pe),
			 0);
	reg_new_device_id(x->dev_id);
	assert_int_equal(e2e_binding_derive(x->home_bind, x->app_spki, x->app_len, x->dev_id,
					    x->channel, &pe),
			 0);
	x->a.av_msisdn = msisdn;
	x->a.av_transcript = x->t;
	x->a.av_transcript_len = x->tlen;
	x->a.av_device_spki = x->dev_spki;
	x->a.av_device_spki_len = x->dev_len;
	x->a.av_device_sig = x->sig;
	x->a.av_device_sig_len = x->siglen;
	x->a.av_channel_key = x->channel;
	x->a.av_device_id = x->dev_id;
}

static void
act_free(struct act *x)
{
	EVP_PKEY_free(x->device);
	EVP_PKEY_free(x->app_bind);
	EVP_PKEY_free(x->home_bind);
	OPENSSL_free(x->dev_spki);
	OPENSSL_free(x->app_spki);
	OPENSSL_free(x->home_spki);
	free(x->t);
}

/* Replace the device key of an attempt by `k` (transcript, MAC and
 * signature made again). */
static void
act_set_device(struct act *x, const char *msisdn, EVP_PKEY *k)
{
	struct pki_err pe = { 0 };
	uint8_t h[32];

	EVP_PKEY_free(x->device);
	x->device = EVP_PKEY_dup(k);
	OPENSSL_free(x->dev_spki);
	der_of_pub(x->device, &x->dev_spki, &x->dev_len);
	free(x->t);
	x->t = e2e_activation_transcript(msisdn, x->app_nonce, x->home_nonce, x->home_spki,
					 x->home_len, x->app_spki, x->app_len, x->dev_spki,
					 x->dev_len, &x->tlen);
	assert_int_equal(e2e_activation_code_hash(CODE, h), 0);
	assert_int_equal(e2e_activation_mac(h, x->t, x->tlen, "app", NULL, x->a.av_app_mac), 0);
	x->siglen = sizeof(x->sig);
	assert_int_equal(e2e_sign_msg(x->device, x->t, x->tlen, x->sig, &x->siglen, &pe), 0);
	x->a.av_transcript = x->t;
	x->a.av_transcript_len = x->tlen;
	x->a.av_device_spki = x->dev_spki;
	x->a.av_device_spki_len = x->dev_len;
	x->a.av_device_sig_len = x->siglen;
}

/* The activation record as activation.create leaves it (issued at
 * expires - MSSP_REG_ACTIVATION_TTL_S). */
static void
act_record(struct store *st, const char *msisdn, int64_t expires)
{
	struct store_rec rec = { 0 }, old = { 0 };
	struct store_err se = { 0 };
	char hex[PKI_KEYCHECK_FP_HEX + 1], *body;
	uint8_t h[32];

	assert_int_equal(e2e_activation_code_hash(CODE, h), 0);
	pki_keycheck_fp_hex(h, hex);
	body = NULL;
	assert_true(asprintf(&body, "{\"code_sha256\":\"%s\",\"tries\":0}", hex) > 0);
	snprintf(rec.sr_kind, sizeof(rec.sr_kind), "activation");
	snprintf(rec.sr_name, sizeof(rec.sr_name), "%s", msisdn);
	rec.sr_state = 1;
	rec.sr_expires_ms = expires;
	rec.sr_body = body;
	rec.sr_body_len = strlen(body);
	assert_int_equal(store_rec_put(st, &rec, STORE_REC_ANY, G.now, &old, &se), 0);
	store_rec_clear(&old);
	free(body);
}

static void
test_activation_ok_and_reuse(void **state)
{
	struct store *st = ts_must_open("act_ok", STORE_OPEN_CREATE);
	struct store_device d;
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct pki_err pe = { 0 };
	struct act x, y;
	uint8_t home_mac[32], want[32], h[32], app_key[E2E_KEY_LEN];

	(void)state;
	user_add(st, "+35840000001", "Anna", "Muster", "PNOFI-1");
	act_record(st, "+35840000001", G.now + 900000);
	/* the phone may send the MSISDN without "+" */
	act_make(&x, "35840000001", CODE, NULL);
	if (reg_activate(G.reg, st, &x.a, G.now, home_mac, &e) != 0)
		fail_msg("reg_activate: %d %s", e.status, e.msg);
	assert_int_equal(e2e_activation_code_hash(CODE, h), 0);
	assert_int_equal(e2e_activation_mac(h, x.t, x.tlen, "home", x.dev_id, want), 0);
	assert_memory_equal(home_mac, want, 32);
	/* the device is bound with the channel key both ends derive */
	assert_int_equal(store_device_get(st, x.dev_id, &d, &se), 0);
	assert_string_equal(d.sd_msisdn, "+35840000001");
	assert_int_equal(d.sd_state, STORE_DEVICE_ACTIVE);
	assert_memory_equal(d.sd_e2e_key, x.channel, E2E_KEY_LEN);
	assert_int_equal(e2e_binding_derive(x.app_bind, x.home_spki, x.home_len, x.dev_id, app_key,
					    &pe),
			 0);
	assert_memory_equal(d.sd_e2e_key, app_key, E2E_KEY_LEN);
	assert_int_equal(d.sd_auth_spki_len, x.dev_len);
	assert_memory_equal(d.sd_auth_spki, x.dev_spki, x.dev_len);
	assert_true(audit_has("\"device.bind\"", "\"ok\""));

	/* K-13: the same code again (a new attempt, right code) */
	act_make(&y, "+35840000001", CODE, NULL);
	memset(&e, 0, sizeof(e));
	assert_int_equal(reg_activate(G.reg, st, &y.a, G.now + 1000, home_mac, &e), -1);
	/* no open code: 410 (the AFE counts it), the same message, and no
	 * audit record (anyone may ask for any number) */
	assert_int_equal(e.status, 410);
	assert_string_equal(e.msg, "activation refused");
	assert_false(audit_has("device.bind", "code already used"));
	assert_int_equal(audit_count("device.bind", "\"+35840000001\""), 1);
	assert_int_equal(store_device_get(st, y.dev_id, &d, &se), -1);
	act_free(&x);
	act_free(&y);
	store_close(st);
}

static void
test_activation_wrong_code_locks(void **state)
{
	struct store *st = ts_must_open("act_wrong", STORE_OPEN_CREATE);
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	uint8_t home_mac[32];
	struct act x;
	json_t *b;
	int i;

	(void)state;
	user_add(st, "+35840000003", "B", "C", "PNOFI-3");
	act_record(st, "+35840000003", G.now + 900000);
	for (i = 1; i <= MSSP_REG_ACTIVATION_MAX_TRIES; i++) {
		act_make(&x, "+35840000003", "999999999999", NULL);
		memset(&e, 0, sizeof(e));
		assert_int_equal(reg_activate(G.reg, st, &x.a, G.now + i, home_mac, &e), -1);
		assert_int_equal(e.status, 403);
		assert_string_equal(e.msg, "activation refused");
		assert_int_equal(store_rec_get(st, "activation", "+35840000003", &rec, &se), 0);
		b = json_loads(rec.sr_body, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(b, "tries")), i);
		assert_int_equal(rec.sr_state, i < MSSP_REG_ACTIVATION_MAX_TRIES ? 1 : 3);
		json_decref(b);
		store_rec_clear(&rec);
		act_free(&x);
	}
	assert_true(audit_has("device.bind", "wrong code (try 5 of 5): locked"));
	/* locked: even the right code is refused now, counted not audited */
	act_make(&x, "+35840000003", CODE, NULL);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now + 10, home_mac, &e), -1);
	assert_int_equal(e.status, 410);
	assert_int_equal(audit_count("device.bind", "\"+35840000003\""), MSSP_REG_ACTIVATION_MAX_TRIES);
	act_free(&x);
	store_close(st);
}

static void
test_activation_expired_badsig_nocode(void **state)
{
	struct store *st = ts_must_open("act_exp", STORE_OPEN_CREATE);
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	uint8_t home_mac[32];
	EVP_PKEY *other = EVP_EC_gen("P-256");
	struct act x;
	json_t *b;

	(void)state;
	user_add(st, "+35840000004", "B", "C", "PNOFI-4");
	/* no code at all, an expired one: 410, no audit record (a flood of
	 * them must not queue on the audit lock) */
	act_make(&x, "+35840000004", CODE, NULL);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_int_equal(e.status, 410);
	assert_string_equal(e.msg, "activation refused");
	act_record(st, "+35840000004", G.now - 1);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_int_equal(e.status, 410);
	assert_int_equal(audit_count("device.bind", "\"+35840000004\""), 0);
	act_free(&x);
	/* right code, but the signature is another key's: refused, audited;
	 * the try was reserved before the proof was compared (it costs one
	 * whatever the outcome), and the code still works afterwards */
	act_record(st, "+35840000004", G.now + 900000);
	act_make(&x, "+35840000004", CODE, other);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_int_equal(e.status, 403);
	assert_string_equal(e.msg, "activation refused");
	assert_true(audit_has("device.bind", "device signature invalid"));
	assert_int_equal(store_rec_get(st, "activation", "+35840000004", &rec, &se), 0);
	b = json_loads(rec.sr_body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(b, "tries")), 1);
	assert_int_equal(rec.sr_state, 1);
	json_decref(b);
	store_rec_clear(&rec);
	act_free(&x);
	/* the transcript names another MSISDN than the request */
	act_make(&x, "+35840000099", CODE, NULL);
	x.a.av_msisdn = "+35840000004";
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_true(audit_has("device.bind", "transcript does not match"));
	act_free(&x);
	/* and the right one still binds */
	act_make(&x, "+35840000004", CODE, NULL);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), 0);
	act_free(&x);
	EVP_PKEY_free(other);
	store_close(st);
}

static void
test_activation_compromised_device_key(void **state)
{
	struct store *st = ts_must_open("act_comp", STORE_OPEN_CREATE);
	struct reg_err e = { 0 };
	uint8_t home_mac[32];
	struct act x;

	(void)state;
	user_add(st, "+35840000005", "B", "C", "PNOFI-5");
	act_record(st, "+35840000005", G.now + 900000);
	/* the whole proof made with the compromised key as device key */
	act_make(&x, "+35840000005", CODE, NULL);
	act_set_device(&x, "+35840000005", G.compromised);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_int_equal(e.status, 403);
	assert_true(audit_has("device.bind", "device key compromised"));
	act_free(&x);
	store_close(st);
}

/* ---- key generation jobs ------------------------------------------------------- */

static void
test_keygen_lifecycle(void **state)
{
	struct store *st = ts_must_open("keygen", STORE_OPEN_CREATE);
	const char *m = "+35840000010", *dev = "dphone10";
	struct reg_job jobs[4];
	struct reg_err e = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	struct store_key k;
	unsigned char *csr, fp[PKI_KEYCHECK_FP_LEN];
	size_t csr_len, n = 0;
	char id[32], buf[256];
	const unsigned char *p;
	json_t *body, *out = NULL;
	struct ks *ks;
	EVP_PKEY *pub;
	X509 *x, *cax;
	STACK_OF(X509) *chain;

	(void)state;
	world(st, m, dev);
	request_key(st, m, id);
	assert_int_equal(job_state(st, id), REG_JOB_REQUESTED);
	/* one open job per group: a second request is 409 */
	body = json_pack("{s:s}", "registration_profile", "std");
	assert_int_equal(reg_op_key_request(G.reg, st, &ra, m, body, G.now, &out, &e), -1);
	assert_int_equal(e.status, 409);
	/* unknown profile, unknown user, unknown device */
	json_object_set_new(body, "registration_profile", json_string("nope"));
	assert_int_equal(reg_op_key_request(G.reg, st, &ra, m, body, G.now, &out, &e), -1);
	assert_int_equal(e.status, 404);
	json_object_set_new(body, "registration_profile", json_string("std"));
	assert_int_equal(reg_op_key_request(G.reg, st, &ra, "+35849999999", body, G.now, &out, &e),
			 -1);
	assert_int_equal(e.status, 404);
	assert_int_equal(e.code, 105);
	json_object_set_new(body, "device", json_string("dother"));
	assert_int_equal(reg_op_key_request(G.reg, st, &ra, m, body, G.now, &out, &e), -1);
	assert_int_equal(e.status, 404);
	json_decref(body);

	/* HomeMSSP: nothing for a device that is not here */
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, none_online, NULL, jobs, 4, &n, G.now, &e),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n, G.now, &e),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(jobs[0].rj_id, id);
	assert_string_equal(jobs[0].rj_kind, "keygen");
	assert_string_equal(jobs[0].rj_msisdn, m);
	assert_string_equal(jobs[0].rj_device, dev);
	assert_string_equal(jobs[0].rj_group, "sign1");
	assert_string_equal(jobs[0].rj_purpose, "sign");
	assert_string_equal(jobs[0].rj_alg, "ec-p256");
	assert_int_equal(jobs[0].rj_nprofiles, 1);
	assert_string_equal(jobs[0].rj_profiles[0], PROF_SIGN);
	assert_true(jobs[0].rj_pin);
	assert_null(jobs[0].rj_cert);
	reg_job_clear(&jobs[0]);
	assert_int_equal(reg_job_sent(G.reg, st, id, G.now, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_SENT);
	/* sent: not again before the re-send delay, then again */
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n, G.now + 1000,
					     &e),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n,
					     G.now + MSSP_HOME_JOB_RESEND_MS + 1, &e),
			 0);
	assert_int_equal(n, 1);
	reg_job_clear(&jobs[0]);

	/* the phone makes the key and answers with its CSR */
	ks = phone(dev, &csr, &csr_len);
	assert_int_equal(reg_job_answer(G.reg, st, "dintruder", id, 0, csr, csr_len, G.now, &e), -1);
	assert_int_equal(e.status, 403);
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, csr, csr_len, G.now + 2000, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_ANSWERED);
	/* a re-sent answer changes nothing */
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, csr, csr_len, G.now + 2100, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_ANSWERED);

	/* the ME issues */
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + 3000, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(job_state(st, id), REG_JOB_ISSUED);
	assert_int_equal(store_key_get(st, "35840000010-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	assert_string_equal(k.sk_group, "sign1");
	assert_string_equal(k.sk_device_id, dev);
	assert_string_equal(k.sk_profiles, PROF_SIGN);
	assert_true(k.sk_has_pin);
	assert_int_equal(k.sk_purpose, STORE_KEY_SIGN);
	pub = ks_public_key(ks, "sign1", &pe);
	assert_int_equal(pki_keycheck_fingerprint(pub, fp, &pe), 0);
	assert_memory_equal(k.sk_spki_fp, fp, sizeof(fp));
	p = k.sk_cert;
	x = d2i_X509(NULL, &p, (long)k.sk_cert_len);
	assert_non_null(x);
	cax = pki_ca_cert(G.ca);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(cax)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pub), 1);
	/* K-10: the subject is the RA record's, not the CSR's */
	X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
	assert_non_null(strstr(buf, "CN=Anna Muster"));
	assert_non_null(strstr(buf, "PNOFI-0001"));
	assert_null(strstr(buf, "Mallory"));
	assert_true(audit_has("key.issued", "35840000010-sign1"));
	body = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(body, "cert_serial")),
			    k.sk_cert_serial);
	json_decref(body);
	assert_int_equal(reg_op_job_get(G.reg, st, id, &out, &e), 0);
	assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
	assert_string_equal(json_string_value(json_object_get(out, "cert_serial")), k.sk_cert_serial);
	json_decref(out);

	/* HomeMSSP sends the certificate with the CA chain; it installs */
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n, G.now + 4000,
					     &e),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].rj_state, REG_JOB_ISSUED);
	assert_int_equal(jobs[0].rj_cert_len, k.sk_cert_len);
	assert_memory_equal(jobs[0].rj_cert, k.sk_cert, k.sk_cert_len);
	assert_int_equal(jobs[0].rj_nchain, 1);
	chain = sk_X509_new_null();
	p = jobs[0].rj_chain[0];
	sk_X509_push(chain, d2i_X509(NULL, &p, (long)jobs[0].rj_chain_len[0]));
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), cax), 0);
	assert_int_equal(ks_install_cert(ks, "sign1", x, chain, &pe), 0);
	reg_job_clear(&jobs[0]);
	assert_int_equal(reg_job_sent(G.reg, st, id, G.now + 4000, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_ISSUED);
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n, G.now + 4500,
					     &e),
			 0);
	assert_int_equal(n, 0);
	/* a late re-send of the CSR answer changes nothing */
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, csr, csr_len, G.now + 5000, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_ISSUED);
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, NULL, 0, G.now + 5000, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_DONE);
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, NULL, 0, G.now + 5100, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_DONE);
	assert_true(audit_has("job.done", id));

	/* the group has its key now: another request is 409 */
	body = json_pack("{s:s}", "registration_profile", "std");
	assert_int_equal(reg_op_key_request(G.reg, st, &ra, m, body, G.now, &out, &e), -1);
	assert_int_equal(e.status, 409);
	json_decref(body);
	/* the user's jobs */
	assert_int_equal(reg_user_jobs(G.reg, st, m, &out, &e), 0);
	assert_int_equal(json_array_size(out), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "state")),
			    "done");
	json_decref(out);

	/* PIN unblock: a job for the key's group on its device */
	assert_int_equal(reg_op_pin_unblock(G.reg, st, &ra, m, "35840000010-sign1", G.now, &out, &e),
			 REG_ACCEPTED);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(out, "job")));
	json_decref(out);
	assert_int_equal(reg_op_pin_unblock(G.reg, st, &ra, m, "35840000010-sign1", G.now, &out, &e),
			 -1);
	assert_int_equal(e.status, 409);
	assert_int_equal(reg_op_pin_unblock(G.reg, st, &ra, m, "35840000010-nope", G.now, &out, &e),
			 -1);
	assert_int_equal(e.status, 404);
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 4, &n, G.now + 6000,
					     &e),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(jobs[0].rj_kind, "unblock");
	assert_string_equal(jobs[0].rj_group, "sign1");
	reg_job_clear(&jobs[0]);
	assert_int_equal(reg_job_answer(G.reg, st, dev, id, 0, NULL, 0, G.now + 6000, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_DONE);

	sk_X509_pop_free(chain, X509_free);
	X509_free(x);
	EVP_PKEY_free(pub);
	OPENSSL_free(csr);
	ks_close(ks);
	store_close(st);
}

/* Run one job from request to processing with `csr`; returns the job
 * body after processing. */
static json_t *
job_with_csr(struct store *st, const char *m, const char *dev, const unsigned char *csr,
	     size_t csr_len, char id[32])
{
	struct reg_err e = { 0 };
	size_t n = 0;

	request_key(st, m, id);
	assert_int_equal(reg_job_sent(G.reg, st, id, G.now, &e), 0);
	if (reg_job_answer(G.reg, st, dev, id, 0, csr, csr_len, G.now + 10, &e) != 0)
		fail_msg("answer: %d %s", e.status, e.msg);
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + 20, &n, &e), 0);
	assert_int_equal(n, 1);
	return job_body(st, id);
}

static void
test_keygen_refusals(void **state)
{
	struct store *st = ts_must_open("keyref", STORE_OPEN_CREATE);
	unsigned char *csr = NULL, *csr2 = NULL;
	size_t csr_len, csr2_len;
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct pki_ca_entry ce;
	struct store_key k;
	size_t before;
	char id[32];
	EVP_PKEY *weak;
	json_t *b;
	struct ks *ks;

	(void)state;
	world(st, "+35840000020", "dphone20");
	user_add(st, "+35840000021", "Bert", "Zweit", "PNOFI-21");
	device_add(st, "+35840000021", "dphone21");
	user_add(st, "+35840000022", "Cai", "Dritt", "PNOFI-22");
	device_add(st, "+35840000022", "dphone22");
	user_add(st, "+35840000023", "Dora", "Viert", "PNOFI-23");
	device_add(st, "+35840000023", "dphone23");

	/* K-08: a CSR whose self-signature does not verify */
	ks = phone("dphone20", &csr, &csr_len);
	csr[csr_len - 1] ^= 0x01;
	b = job_with_csr(st, "+35840000020", "dphone20", csr, csr_len, id);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 407);
	assert_true(audit_has("job.failed", id));
	json_decref(b);
	assert_int_equal(store_key_get(st, "35840000020-sign1", &k, &se), -1);
	/* K-11: garbage */
	b = job_with_csr(st, "+35840000020", "dphone20", (const unsigned char *)"\x30\x03\x02\x01",
			 4, id);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 101);
	json_decref(b);

	/* K-03: a Fermat-weak RSA key */
	weak = rsa_fermat();
	OPENSSL_free(csr);
	csr_of(weak, &csr, &csr_len);
	b = job_with_csr(st, "+35840000020", "dphone20", csr, csr_len, id);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 407);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "rsa-fermat");
	assert_true(audit_has("job.failed", "rsa-fermat"));
	json_decref(b);

	/* K-06: a key on the compromised list */
	OPENSSL_free(csr);
	csr_of(G.compromised, &csr, &csr_len);
	b = job_with_csr(st, "+35840000022", "dphone22", csr, csr_len, id);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 407);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "compromised");
	json_decref(b);

	/* K-07: the same key for a second user.  First the good one. */
	ks_close(ks);
	OPENSSL_free(csr);
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/dphone20.ks", ts_dir);
		remove(path);
		snprintf(path, sizeof(path), "%s/dphone20.ks.lock", ts_dir);
		remove(path);
	}
	ks = phone("dphone20", &csr, &csr_len);
	b = job_with_csr(st, "+35840000020", "dphone20", csr, csr_len, id);
	assert_int_equal(job_state(st, id), REG_JOB_ISSUED);
	json_decref(b);
	csr2 = csr;
	csr2_len = csr_len;
	before = pki_ca_count(G.ca);
	b = job_with_csr(st, "+35840000021", "dphone21", csr2, csr2_len, id);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 407);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "duplicate");
	json_decref(b);
	assert_int_equal(store_key_get(st, "35840000021-sign1", &k, &se), -1);
	/* refused by the key's tombstone before the CA was asked: no
	 * certificate at all */
	assert_int_equal(pki_ca_count(G.ca), before);
	(void)ce;

	/* a device refusing keygen: FAILED with its status */
	request_key(st, "+35840000023", id);
	assert_int_equal(reg_job_answer(G.reg, st, "dphone23", id, 401, NULL, 0, G.now, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	/* an overdue job expires on the way */
	request_key(st, "+35840000023", id);
	{
		struct reg_job jobs[2];
		size_t n;

		assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 2, &n,
						     G.now + MSSP_REG_JOB_TTL_S * 1000LL + 1, &e),
				 0);
		assert_int_equal(n, 0);
	}
	assert_int_equal(job_state(st, id), REG_JOB_EXPIRED);
	assert_int_equal(reg_job_sent(G.reg, st, id, G.now, &e), -1);

	OPENSSL_free(csr2);
	EVP_PKEY_free(weak);
	ks_close(ks);
	store_close(st);
}

/* ---- scan and usable ---------------------------------------------------------- */

static EVP_PKEY *
rsa_pub(const BIGNUM *n)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *e = BN_new();
	OSSL_PARAM *params;
	EVP_PKEY *k = NULL;

	BN_set_word(e, 65537);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
	assert_int_equal(EVP_PKEY_fromdata(pc, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pc);
	BN_free(e);
	return k;
}

static void
test_keys_scan(void **state)
{
	struct store *st = ts_must_open("scan", STORE_OPEN_CREATE);
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct store_user u;
	struct store_key k;
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = prime(1024), *q1 = prime(1024), *q2 = prime(1024), *n1 = BN_new(),
	       *n2 = BN_new();
	EVP_PKEY *weak = rsa_fermat(), *good = EVP_EC_gen("P-256"), *s1, *s2;
	X509 *x;
	json_t *out = NULL, *hits;
	size_t i;
	int found = 0;

	(void)state;
	user_add(st, "+35840000030", "W", "Eak", "PNOFI-30");
	device_add(st, "+35840000030", "dscan30");
	user_add(st, "+35840000031", "G", "Ood", "PNOFI-31");
	device_add(st, "+35840000031", "dscan31");
	user_add(st, "+35840000032", "S", "One", "PNOFI-32");
	device_add(st, "+35840000032", "dscan32");
	user_add(st, "+35840000033", "S", "Two", "PNOFI-33");
	device_add(st, "+35840000033", "dscan33");
	/* a weak key put in directly (as if registered before the checks) */
	x = cert_for(weak);
	key_rec(&k, "+35840000030", "dscan30", "sign1", x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	X509_free(x);
	x = cert_for(good);
	key_rec(&k, "+35840000031", "dscan31", "sign1", x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	X509_free(x);
	/* K-05: two keys sharing a prime */
	BN_mul(n1, p, q1, ctx);
	BN_mul(n2, p, q2, ctx);
	s1 = rsa_pub(n1);
	s2 = rsa_pub(n2);
	x = cert_for(s1);
	key_rec(&k, "+35840000032", "dscan32", "sign1", x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	X509_free(x);
	x = cert_for(s2);
	key_rec(&k, "+35840000033", "dscan33", "sign1", x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	X509_free(x);

	if (reg_keys_scan(G.reg, st, &ra, G.now, &out, &e) != 0)
		fail_msg("scan: %d %s", e.status, e.msg);
	assert_int_equal(json_integer_value(json_object_get(out, "keys")), 4);
	assert_int_equal(json_integer_value(json_object_get(out, "rsa")), 3);
	hits = json_object_get(out, "hits");
	assert_int_equal(json_array_size(hits), 3);
	for (i = 0; i < json_array_size(hits); i++) {
		json_t *h = json_array_get(hits, i);
		const char *kid = json_string_value(json_object_get(h, "key_id"));
		const char *v = json_string_value(json_object_get(h, "verdict"));

		if (strcmp(kid, "35840000030-sign1") == 0) {
			assert_string_equal(v, "rsa-fermat");
			assert_string_equal(json_string_value(json_object_get(h, "msisdn")),
					    "+35840000030");
			found |= 1;
		} else if (strcmp(kid, "35840000032-sign1") == 0 ||
			   strcmp(kid, "35840000033-sign1") == 0) {
			assert_string_equal(v, "rsa-shared-prime");
			found |= kid[10] == '2' ? 2 : 4;
		}
	}
	assert_int_equal(found, 7);
	/* with the CA here: each hit revoked (keyCompromise), one CRL */
	assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "action")),
			    "revoked (keyCompromise)");
	assert_string_equal(json_string_value(json_object_get(out, "crl")), "issued");
	json_decref(out);
	assert_int_equal(store_key_get(st, "35840000030-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	{
		struct pki_ca_entry ce;
		struct pki_err pe = { 0 };
		struct store_rec rec = { 0 };
		char hx[PKI_KEYCHECK_FP_HEX + 1];

		assert_int_equal(pki_ca_lookup(G.ca, k.sk_cert_serial, &ce, &pe), 0);
		assert_true(ce.ce_revoked);
		assert_int_equal(ce.ce_reason, PKI_CA_REASON_KEY_COMPROMISE);
		/* the key's tombstone says compromised (K-06 for good) */
		pki_keycheck_fp_hex(k.sk_spki_fp, hx);
		assert_int_equal(store_rec_get(st, "keyfp", hx, &rec, &se), 0);
		assert_int_equal(rec.sr_state, 2);
		store_rec_clear(&rec);
	}
	assert_int_equal(store_user_get(st, "+35840000030", &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	assert_int_equal(store_key_get(st, "35840000033-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_true(audit_has("keys.scan.hit", "revoked (keyCompromise)"));
	assert_true(audit_has("\"keys.scan\"", "crl issued"));
	/* the good key and its user are untouched */
	assert_int_equal(store_key_get(st, "35840000031-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	assert_int_equal(store_user_get(st, "+35840000031", &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_ACTIVE);
	assert_true(audit_has("keys.scan.hit", "rsa-fermat"));
	assert_true(audit_has("\"keys.scan\"", "hits 3"));
	/* a second scan: the disabled keys are no longer hits */
	assert_int_equal(reg_keys_scan(G.reg, st, NULL, G.now + 1, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "hits")), 0);
	json_decref(out);

	EVP_PKEY_free(weak);
	EVP_PKEY_free(good);
	EVP_PKEY_free(s1);
	EVP_PKEY_free(s2);
	BN_free(p);
	BN_free(q1);
	BN_free(q2);
	BN_free(n1);
	BN_free(n2);
	BN_CTX_free(ctx);
	store_close(st);
}

static void
test_key_usable(void **state)
{
	EVP_PKEY *weak = rsa_fermat(), *good = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	struct store_key k;
	X509 *x;

	(void)state;
	x = cert_for(weak);
	key_rec(&k, "+35840000040", "d40", "sign1", x);
	X509_free(x);
	assert_false(reg_key_usable(G.reg, &k));
	assert_false(reg_key_usable(G.reg, &k)); /* cached */
	x = cert_for(good);
	key_rec(&k, "+35840000040", "d40", "sign1", x); /* same key id, new serial */
	X509_free(x);
	assert_true(reg_key_usable(G.reg, &k));
	assert_true(reg_key_usable(G.reg, &k));
	x = cert_for(ec);
	key_rec(&k, "+35840000041", "d41", "auth1", x);
	X509_free(x);
	assert_true(reg_key_usable(G.reg, &k));
	/* an unreadable certificate: fail closed */
	k.sk_cert[k.sk_cert_len / 2] ^= 0xff;
	k.sk_cert_len -= 3;
	snprintf(k.sk_cert_serial, sizeof(k.sk_cert_serial), "01");
	assert_false(reg_key_usable(G.reg, &k));
	EVP_PKEY_free(weak);
	EVP_PKEY_free(good);
	EVP_PKEY_free(ec);
}

/* ---- review fixes: stale codes and jobs, tombstones, re-process, scan ---- */

/* A code given before the user was deleted and the MSISDN created again
 * does not work for the new user (review 20). */
static void
test_activation_user_recreated(void **state)
{
	struct store *st = ts_must_open("act_recreate", STORE_OPEN_CREATE);
	const char *m = "+35840000080";
	struct store_device d;
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	uint8_t home_mac[32];
	struct act x;

	(void)state;
	user_add(st, m, "Old", "User", "PNOFI-80");
	act_record(st, m, G.now + 900000); /* issued at G.now */
	user_del(st, m);
	user_add_at(st, m, G.now + 1000);
	act_make(&x, m, CODE, NULL);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now + 2000, home_mac, &e), -1);
	assert_int_equal(e.status, 410);
	assert_int_equal(store_device_get(st, x.dev_id, &d, &se), -1);
	act_free(&x);
	/* a code issued for the new user works */
	act_record(st, m, G.now + 3000 + 900000);
	act_make(&x, m, CODE, NULL);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now + 4000, home_mac, &e), 0);
	act_free(&x);
	store_close(st);
}

/* Jobs left behind by a deleted user neither reach a phone nor get a
 * certificate (review 20). */
static void
test_jobs_user_deleted(void **state)
{
	struct store *st = ts_must_open("jobs_deleted", STORE_OPEN_CREATE);
	const char *m = "+35840000070";
	struct reg_job jobs[2];
	struct reg_err e = { 0 };
	EVP_PKEY *key = EVP_EC_gen("P-256");
	unsigned char *csr;
	size_t csr_len, n = 9, before;
	char id[32];
	json_t *b;

	(void)state;
	world(st, m, "dphone70");
	request_key(st, m, id);
	user_del(st, m);
	user_add_at(st, m, G.now + 10);
	device_add(st, m, "dphone71");
	assert_int_equal(reg_jobs_to_deliver(G.reg, st, all_online, NULL, jobs, 2, &n, G.now + 20,
					     &e),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "device gone");
	json_decref(b);

	/* an answered job of the new user, whose user is then deleted and
	 * created again before the ME processes it */
	request_key_at(st, m, "dphone71", G.now + 30, id);
	csr_of(key, &csr, &csr_len);
	assert_int_equal(reg_job_answer(G.reg, st, "dphone71", id, 0, csr, csr_len, G.now + 40, &e),
			 0);
	user_del(st, m);
	user_add_at(st, m, G.now + 50);
	device_add(st, m, "dphone71"); /* even a device of the same id */
	before = pki_ca_count(G.ca);
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + 60, &n, &e), 0);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(b, "detail")),
			    "user re-created since the request");
	json_decref(b);
	assert_int_equal(pki_ca_count(G.ca), before); /* no certificate */
	OPENSSL_free(csr);
	EVP_PKEY_free(key);
	store_close(st);
}

/* One job of `m` on `dev` answered with the CSR of `k`, processed. */
static int
job_for_key(struct store *st, const char *m, const char *dev, EVP_PKEY *k, char id[32])
{
	unsigned char *csr;
	size_t csr_len;
	json_t *b;

	csr_of(k, &csr, &csr_len);
	b = job_with_csr(st, m, dev, csr, csr_len, id);
	json_decref(b);
	OPENSSL_free(csr);
	return job_state(st, id);
}

/* K-06/K-07 for good (review 7): a key certified once is never certified
 * again: not after a keyCompromise revocation for the same group (same
 * key id), not after its user was deleted; and a key revoked for
 * keyCompromise is refused as a device key. */
static void
test_key_tombstones(void **state)
{
	struct store *st = ts_must_open("tombstones", STORE_OPEN_CREATE);
	const char *m = "+35840000050", *m2 = "+35840000051";
	EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct pki_err pe = { 0 };
	struct store_rec rec = { 0 };
	struct store_key k;
	char id[32], hx[PKI_KEYCHECK_FP_HEX + 1];
	uint8_t home_mac[32];
	size_t before;
	struct act x;
	json_t *b;

	(void)state;
	world(st, m, "dphone50");
	assert_int_equal(job_for_key(st, m, "dphone50", k1, id), REG_JOB_ISSUED);
	assert_int_equal(reg_job_answer(G.reg, st, "dphone50", id, 0, NULL, 0, G.now + 30, &e), 0);
	assert_int_equal(store_key_get(st, "35840000050-sign1", &k, &se), 0);
	/* the tombstone was written at issuance, with the serial */
	pki_keycheck_fp_hex(k.sk_spki_fp, hx);
	assert_int_equal(store_rec_get(st, "keyfp", hx, &rec, &se), 0);
	assert_int_equal(rec.sr_state, 1);
	b = json_loads(rec.sr_body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(b, "serial")), k.sk_cert_serial);
	assert_string_equal(json_string_value(json_object_get(b, "job")), id);
	json_decref(b);
	store_rec_clear(&rec);

	/* revoked for keyCompromise (as cert.revoke does, without telling
	 * reg_enrol), then the group re-requested and answered with the
	 * same key: refused, no certificate */
	assert_int_equal(pki_ca_revoke(G.ca, k.sk_cert_serial, PKI_CA_REASON_KEY_COMPROMISE, 0, &pe),
			 0);
	assert_int_equal(store_key_set_state(st, k.sk_key_id, STORE_KEY_REVOKED, G.now, &se), 0);
	before = pki_ca_count(G.ca);
	assert_int_equal(job_for_key(st, m, "dphone50", k1, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 407);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "compromised");
	json_decref(b);
	assert_int_equal(pki_ca_count(G.ca), before);
	/* ... and as a device key it is refused too */
	act_record(st, m, G.now + 900000);
	act_make(&x, m, CODE, NULL);
	act_set_device(&x, m, k1);
	assert_int_equal(reg_activate(G.reg, st, &x.a, G.now, home_mac, &e), -1);
	assert_int_equal(e.status, 403);
	assert_true(audit_has("device.bind", "device key compromised"));
	act_free(&x);

	/* a key of a user who is then deleted: the number created again,
	 * the same key offered: refused as a duplicate */
	user_add(st, m2, "Del", "Eted", "PNOFI-51");
	device_add(st, m2, "dphone51");
	assert_int_equal(job_for_key(st, m2, "dphone51", k2, id), REG_JOB_ISSUED);
	user_del(st, m2);
	user_add_at(st, m2, G.now + 1);
	device_add(st, m2, "dphone52");
	{
		char id2[32];
		unsigned char *csr;
		size_t csr_len, n = 0;

		request_key_at(st, m2, NULL, G.now + 2, id2);
		csr_of(k2, &csr, &csr_len);
		assert_int_equal(reg_job_answer(G.reg, st, "dphone52", id2, 0, csr, csr_len,
						G.now + 3, &e),
				 0);
		before = pki_ca_count(G.ca);
		assert_int_equal(reg_jobs_process(G.reg, st, G.now + 4, &n, &e), 0);
		assert_int_equal(job_state(st, id2), REG_JOB_FAILED);
		b = job_body(st, id2);
		assert_string_equal(json_string_value(json_object_get(b, "detail")), "duplicate");
		json_decref(b);
		assert_int_equal(pki_ca_count(G.ca), before);
		OPENSSL_free(csr);
	}
	/* reg.c's hook marks a tombstone compromised */
	{
		struct store_key kk;
		unsigned char fp[PKI_KEYCHECK_FP_LEN];

		memset(&kk, 0, sizeof(kk));
		snprintf(kk.sk_key_id, sizeof(kk.sk_key_id), "35840000051-sign1");
		snprintf(kk.sk_msisdn, sizeof(kk.sk_msisdn), "%s", m2);
		assert_int_equal(pki_keycheck_fingerprint(k2, fp, &pe), 0);
		memcpy(kk.sk_spki_fp, fp, sizeof(fp));
		reg_enrol_key_compromised(G.reg, st, &kk, G.now + 5);
		pki_keycheck_fp_hex(fp, hx);
		assert_int_equal(store_rec_get(st, "keyfp", hx, &rec, &se), 0);
		assert_int_equal(rec.sr_state, 2);
		store_rec_clear(&rec);
	}
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	store_close(st);
}

/* ---- tombstones of keys never certified (review 2, F1) ---------------- */

/* Set one string of a record's body and its state (-1: keep). */
static void
rec_edit(struct store *st, const char *kind, const char *name, int state, const char *key,
	 const char *val)
{
	struct store_rec rec = { 0 }, out = { 0 };
	struct store_err se = { 0 };
	json_t *b;
	char *txt;

	assert_int_equal(store_rec_get(st, kind, name, &rec, &se), 0);
	b = json_loads(rec.sr_body, 0, NULL);
	assert_non_null(b);
	if (key != NULL)
		json_object_set_new(b, key, json_string(val));
	txt = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	free(rec.sr_body);
	rec.sr_body = txt;
	rec.sr_body_len = strlen(txt);
	if (state >= 0)
		rec.sr_state = state;
	assert_int_equal(store_rec_put(st, &rec, rec.sr_version, G.now, &out, &se), 0);
	store_rec_clear(&rec);
	store_rec_clear(&out);
}

/* The tombstone of `k`: its state (0: none) and, when there is one, its
 * body (json_decref). */
static int
tomb_of(struct store *st, EVP_PKEY *k, json_t **body)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	char hx[PKI_KEYCHECK_FP_HEX + 1];
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	int s;

	*body = NULL;
	assert_int_equal(pki_keycheck_fingerprint(k, fp, &pe), 0);
	pki_keycheck_fp_hex(fp, hx);
	if (store_rec_get(st, "keyfp", hx, &rec, &se) != 0) {
		assert_int_equal(se.status, 101);
		return 0;
	}
	s = rec.sr_state;
	*body = json_loads(rec.sr_body, 0, NULL);
	assert_non_null(*body);
	store_rec_clear(&rec);
	return s;
}

/* A claim as a process that died after writing it leaves: job `job`, no
 * serial. */
static void
tomb_claim(struct store *st, EVP_PKEY *k, const char *m, const char *job)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	struct store_rec rec = { 0 };
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "key_id", "x", "msisdn", m, "job", job,
			      "serial", "");
	char *txt = json_dumps(b, JSON_COMPACT);

	json_decref(b);
	assert_non_null(txt);
	assert_int_equal(pki_keycheck_fingerprint(k, fp, &pe), 0);
	snprintf(rec.sr_kind, sizeof(rec.sr_kind), "keyfp");
	pki_keycheck_fp_hex(fp, rec.sr_name);
	rec.sr_state = 1;
	rec.sr_body = txt;
	rec.sr_body_len = strlen(txt);
	assert_int_equal(store_rec_put(st, &rec, STORE_REC_NEW, G.now, NULL, &se), 0);
	free(txt);
}

/* The CA refuses after the claim: the claim is released and the same key
 * (the phone keeps its uncertified group) is certified on a re-request. */
static void
test_tombstone_issue_refused(void **state)
{
	struct store *st = ts_must_open("tomb_refused", STORE_OPEN_CREATE);
	const char *m = "+35840000070";
	EVP_PKEY *k = EVP_EC_gen("P-256");
	struct reg_err e = { 0 };
	unsigned char *csr;
	size_t csr_len, before, n = 0;
	char id[32], id2[32];
	json_t *b;

	(void)state;
	world(st, m, "dphone70");
	request_key(st, m, id);
	assert_int_equal(reg_job_sent(G.reg, st, id, G.now, &e), 0);
	csr_of(k, &csr, &csr_len);
	assert_int_equal(reg_job_answer(G.reg, st, "dphone70", id, 0, csr, csr_len, G.now + 10, &e),
			 0);
	OPENSSL_free(csr);
	/* a certificate profile the CA does not know (a ca.conf profile
	 * removed after the registration profile named it) */
	rec_edit(st, "job", id, -1, "cert_profile", "nosuch");
	before = pki_ca_count(G.ca);
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + 20, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(job_state(st, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 101);
	json_decref(b);
	assert_int_equal(pki_ca_count(G.ca), before);
	assert_int_equal(tomb_of(st, k, &b), 0); /* released */
	/* re-requested, the same key: certified */
	assert_int_equal(job_for_key(st, m, "dphone70", k, id2), REG_JOB_ISSUED);
	assert_int_equal(pki_ca_count(G.ca), before + 1);
	assert_int_equal(tomb_of(st, k, &b), 1);
	assert_string_equal(json_string_value(json_object_get(b, "job")), id2);
	assert_true(json_string_value(json_object_get(b, "serial"))[0] != '\0');
	json_decref(b);
	EVP_PKEY_free(k);
	store_close(st);
}

/* A claim left without a serial (a crash between claim and issuance) is
 * taken over once its job is gone, FAILED or EXPIRED; not while its job is
 * open; and a tombstone WITH a serial (certified, then undone) never. */
static void
test_tombstone_takeover(void **state)
{
	struct store *st = ts_must_open("tomb_takeover", STORE_OPEN_CREATE);
	const char *m = "+35840000071", *m2 = "+35840000072", *m3 = "+35840000073",
		   *m4 = "+35840000074", *m5 = "+35840000075";
	EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256"), *k3 = EVP_EC_gen("P-256");
	struct store_err se = { 0 };
	struct pki_err pe = { 0 };
	struct pki_ca_entry ce;
	struct store_key k;
	char id[32], open_id[32], serial[PKI_CA_SERIAL_HEX_MAX + 1];
	size_t before;
	json_t *b;
	X509 *x;

	(void)state;
	world(st, m, "dphone71");
	/* its job never stored (or deleted with its user) */
	tomb_claim(st, k1, m, "J00112233445566aa");
	assert_int_equal(job_for_key(st, m, "dphone71", k1, id), REG_JOB_ISSUED);
	assert_int_equal(tomb_of(st, k1, &b), 1);
	assert_string_equal(json_string_value(json_object_get(b, "job")), id);
	json_decref(b);

	/* its job still open (another ME process may be issuing): refused;
	 * once that job has expired: taken over */
	user_add(st, m3, "Open", "Job", "PNOFI-73");
	device_add(st, m3, "dphone73");
	request_key(st, m3, open_id);
	tomb_claim(st, k2, m3, open_id);
	user_add(st, m4, "Next", "Job", "PNOFI-74");
	device_add(st, m4, "dphone74");
	assert_int_equal(job_for_key(st, m4, "dphone74", k2, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "duplicate");
	json_decref(b);
	assert_int_equal(tomb_of(st, k2, &b), 1);
	assert_string_equal(json_string_value(json_object_get(b, "job")), open_id);
	json_decref(b);
	rec_edit(st, "job", open_id, REG_JOB_EXPIRED, NULL, NULL);
	assert_int_equal(job_for_key(st, m4, "dphone74", k2, id), REG_JOB_ISSUED);

	/* certified, then undone (the key record refused: the key stored
	 * before tombstones, for another user): the serial is in the
	 * tombstone, the certificate revoked, and the key is never taken
	 * over, also once the other record is gone */
	user_add(st, m2, "Old", "Key", "PNOFI-72");
	device_add(st, m2, "dphone72");
	x = cert_for(k3);
	key_rec(&k, m2, "dphone72", "sign1", x);
	X509_free(x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	user_add(st, m5, "Un", "Done", "PNOFI-75");
	device_add(st, m5, "dphone75");
	before = pki_ca_count(G.ca);
	assert_int_equal(job_for_key(st, m5, "dphone75", k3, id), REG_JOB_FAILED);
	assert_int_equal(pki_ca_count(G.ca), before + 1);
	assert_int_equal(tomb_of(st, k3, &b), 1);
	snprintf(serial, sizeof(serial), "%s", json_string_value(json_object_get(b, "serial")));
	json_decref(b);
	assert_true(serial[0] != '\0');
	assert_int_equal(pki_ca_lookup(G.ca, serial, &ce, &pe), 0);
	assert_true(ce.ce_revoked);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_SUPERSEDED);
	user_del(st, m2);
	assert_int_equal(job_for_key(st, m5, "dphone75", k3, id), REG_JOB_FAILED);
	b = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "duplicate");
	json_decref(b);
	assert_int_equal(pki_ca_count(G.ca), before + 1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	store_close(st);
}

/* Issued and stored, but the job update failed: the re-process completes
 * the job with the stored certificate (review 20). */
static void
test_issued_not_saved(void **state)
{
	struct store *st = ts_must_open("unsaved", STORE_OPEN_CREATE);
	const char *m = "+35840000060";
	EVP_PKEY *key = EVP_EC_gen("P-256");
	struct store_rec rec = { 0 }, out = { 0 };
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct store_key k;
	size_t before, n = 0;
	char id[32], *txt;
	json_t *b;

	(void)state;
	world(st, m, "dphone60");
	assert_int_equal(job_for_key(st, m, "dphone60", key, id), REG_JOB_ISSUED);
	assert_int_equal(store_key_get(st, "35840000060-sign1", &k, &se), 0);
	/* the job as a failed update leaves it: ANSWERED, claimed, no
	 * certificate */
	assert_int_equal(store_rec_get(st, "job", id, &rec, &se), 0);
	b = json_loads(rec.sr_body, 0, NULL);
	json_object_del(b, "cert");
	json_object_del(b, "chain");
	json_object_del(b, "cert_serial");
	txt = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	free(rec.sr_body);
	rec.sr_body = txt;
	rec.sr_body_len = strlen(txt);
	rec.sr_state = REG_JOB_ANSWERED;
	assert_int_equal(store_rec_put(st, &rec, rec.sr_version, G.now + 25, &out, &se), 0);
	store_rec_clear(&rec);
	store_rec_clear(&out);

	before = pki_ca_count(G.ca);
	/* still claimed: nothing */
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + 30, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(reg_jobs_process(G.reg, st, G.now + MSSP_REG_JOB_CLAIM_MS + 100, &n, &e),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(job_state(st, id), REG_JOB_ISSUED);
	b = job_body(st, id);
	assert_string_equal(json_string_value(json_object_get(b, "cert_serial")), k.sk_cert_serial);
	json_decref(b);
	assert_int_equal(pki_ca_count(G.ca), before); /* no second certificate */
	assert_true(audit_has("job.issued", "issued before, job completed"));
	EVP_PKEY_free(key);
	store_close(st);
}

/* Without a CA in the process a hit is disabled, its user suspended, and
 * the answer and the audit say the revocation is pending (review 2). */
static void
test_keys_scan_no_ca(void **state)
{
	struct store *st = ts_must_open("scan_noca", STORE_OPEN_CREATE);
	struct reg_conf rc = { 0 };
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct store_user u;
	struct store_key k;
	struct reg *r;
	EVP_PKEY *weak = rsa_fermat();
	json_t *out = NULL, *h;
	X509 *x;

	(void)state;
	rc.rc_node = NODE;
	rc.rc_data_dir = ts_dir;
	rc.rc_audit = G.audit;
	r = reg_new(&rc, &e);
	assert_non_null(r);
	user_add(st, "+35840000035", "W", "Eak", "PNOFI-35");
	device_add(st, "+35840000035", "dscan35");
	x = cert_for(weak);
	key_rec(&k, "+35840000035", "dscan35", "sign1", x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	X509_free(x);
	assert_int_equal(reg_keys_scan(r, st, &ra, G.now, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "hits")), 1);
	h = json_array_get(json_object_get(out, "hits"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "action")),
			    "disabled, revocation pending (no CA in this process)");
	assert_null(json_object_get(out, "crl"));
	json_decref(out);
	assert_int_equal(store_key_get(st, "35840000035-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_DISABLED);
	assert_int_equal(store_user_get(st, "+35840000035", &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	assert_true(audit_has("keys.scan.hit", "revocation pending (no CA in this process)"));
	reg_free(r);
	EVP_PKEY_free(weak);
	store_close(st);
}

/* The CA revoked a hit but the store refused the key's REVOKED state (a
 * trigger stands in for a full disk): the key is DISABLED and the answer
 * and the audit say exactly that; when the store refuses DISABLED too, they
 * say the key is still active (review 2, F7). */
static void
test_keys_scan_store_fails(void **state)
{
	struct store *st = ts_must_open("scan_storefail", STORE_OPEN_CREATE);
	const char *m = "+35840000036";
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct pki_err pe = { 0 };
	struct pki_ca_entry ce;
	struct store_key k;
	EVP_PKEY *weak = rsa_fermat();
	json_t *out = NULL, *h;
	sqlite3 *db;
	X509 *x;

	(void)state;
	user_add(st, m, "W", "Eak", "PNOFI-36");
	device_add(st, m, "dscan36");
	x = cert_for(weak);
	key_rec(&k, m, "dscan36", "sign1", x);
	X509_free(x);
	assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
	db = ts_raw_open("scan_storefail");
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TRIGGER no_revoke BEFORE UPDATE OF state ON keys"
				      " WHEN NEW.state = 2 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(reg_keys_scan(G.reg, st, &ra, G.now, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "hits")), 1);
	h = json_array_get(json_object_get(out, "hits"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "action")),
			    "revoked (keyCompromise) at the CA; the key record could not be "
			    "marked revoked: disabled");
	json_decref(out);
	assert_int_equal(pki_ca_lookup(G.ca, k.sk_cert_serial, &ce, &pe), 0);
	assert_true(ce.ce_revoked);
	assert_int_equal(store_key_get(st, "35840000036-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_DISABLED);
	assert_true(audit_has("keys.scan.hit", "could not be marked revoked: disabled"));
	assert_false(audit_has("35840000036-sign1", "revoked (keyCompromise)\""));

	/* neither state stored: the key stays ACTIVE and nothing claims
	 * otherwise */
	assert_int_equal(store_key_set_state(st, "35840000036-sign1", STORE_KEY_ACTIVE, G.now, &se), 0);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TRIGGER no_disable BEFORE UPDATE OF state ON keys"
				      " WHEN NEW.state = 3 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(reg_keys_scan(G.reg, st, &ra, G.now + 1, &out, &e), 0);
	h = json_array_get(json_object_get(out, "hits"), 0);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "action")),
			    "revoked (keyCompromise) at the CA; the key record could not be "
			    "updated: still active in the store");
	json_decref(out);
	assert_int_equal(store_key_get(st, "35840000036-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	assert_true(audit_has("\"outcome\":\"failed\"", "still active in the store"));
	sqlite3_close(db);
	EVP_PKEY_free(weak);
	store_close(st);
}

static void
delete_user90(void *arg, struct store *st)
{
	(void)arg;
	user_del(st, "+35840000090");
}

/* Duplicate keys are found in the second pass by fingerprint, not by
 * their place in the first: a key deleted between the passes does not
 * make an innocent key a hit (review 11). */
static void
test_keys_scan_shift(void **state)
{
	struct store *st = ts_must_open("scan_shift", STORE_OPEN_CREATE);
	static const char *const users[] = { "+35840000090", "+35840000091", "+35840000092",
					     "+35840000093" };
	EVP_PKEY *keys[4];
	struct store_err se = { 0 };
	struct reg_err e = { 0 };
	struct store_key k;
	json_t *out = NULL, *hits;
	char dev[16];
	size_t i;
	int found = 0;

	(void)state;
	keys[0] = EVP_EC_gen("P-256");
	keys[1] = EVP_EC_gen("P-256");
	keys[2] = EVP_EC_gen("P-256");
	keys[3] = keys[1]; /* 91 and 93 share a key */
	for (i = 0; i < 4; i++) {
		X509 *x = cert_for(keys[i]);

		snprintf(dev, sizeof(dev), "dshift%zu", i);
		user_add(st, users[i], "S", "Hift", "PNOFI-9");
		device_add(st, users[i], dev);
		key_rec(&k, users[i], dev, "sign1", x);
		if (i == 1)
			memset(k.sk_spki_fp, 0, sizeof(k.sk_spki_fp)); /* stored before
									* fingerprints */
		assert_int_equal(store_key_put(st, &k, G.now, &se), 0);
		X509_free(x);
	}
	reg_enrol_scan_hook(G.reg, delete_user90, NULL);
	assert_int_equal(reg_keys_scan(G.reg, st, &ra, G.now, &out, &e), 0);
	reg_enrol_scan_hook(G.reg, NULL, NULL);
	hits = json_object_get(out, "hits");
	assert_int_equal(json_array_size(hits), 2);
	for (i = 0; i < json_array_size(hits); i++) {
		const char *kid = json_string_value(json_object_get(json_array_get(hits, i), "key_id"));

		assert_string_equal(json_string_value(json_object_get(json_array_get(hits, i), "verdict")),
				    "duplicate");
		found |= strcmp(kid, "35840000091-sign1") == 0 ? 1 : strcmp(kid, "35840000093-sign1") == 0 ? 2 : 4;
	}
	assert_int_equal(found, 3);
	json_decref(out);
	assert_int_equal(store_key_get(st, "35840000092-sign1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
	EVP_PKEY_free(keys[2]);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_activation_ok_and_reuse),
		cmocka_unit_test(test_activation_wrong_code_locks),
		cmocka_unit_test(test_activation_expired_badsig_nocode),
		cmocka_unit_test(test_activation_compromised_device_key),
		cmocka_unit_test(test_keygen_lifecycle),
		cmocka_unit_test(test_keygen_refusals),
		cmocka_unit_test(test_keys_scan),
		cmocka_unit_test(test_key_usable),
		cmocka_unit_test(test_activation_user_recreated),
		cmocka_unit_test(test_jobs_user_deleted),
		cmocka_unit_test(test_key_tombstones),
		cmocka_unit_test(test_issued_not_saved),
		cmocka_unit_test(test_tombstone_issue_refused),
		cmocka_unit_test(test_tombstone_takeover),
		cmocka_unit_test(test_keys_scan_no_ca),
		cmocka_unit_test(test_keys_scan_store_fails),
		cmocka_unit_test(test_keys_scan_shift),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
