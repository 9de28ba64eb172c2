/*
 * test_keystore.c - the reference phone app's key store (src/phone/keystore).
 *
 * Every test works on its own file under one mkdtemp() directory, with the
 * scrypt cost lowered to 2^10 (the floor) for speed, except
 * test_default_cost which measures open + sign at the real cost.  Keys are
 * generated at run time; a throw-away EC CA issues the certificates.
 * Signatures are checked independently: raw ones with EVP, CMS ones with
 * the `openssl cms -verify` command line and with pki_sig_cms_verify.
 * docs/internals/keystore.md lists what each test covers.
 */
#include "testutil.h"
#include "testtls.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "phone/keystore.h"
#include "pki/sig.h"
#include "util/limits.h"

#define PIN "1234"
#define PIN2 "987654"
#define PUK "12345678"
#define WRONG "0000"
#define DEVICE "+41790000001"
#define PROF_SIGN "mss:demo:sign:loa3:app"
#define PROF_AUTHN "mss:demo:authn:loa3:app"

static const struct ks_params fast = { .kp_scrypt_log2n = MSSP_KEYSTORE_SCRYPT_MIN_LOG2N };

/* ---- helpers ----------------------------------------------------------- */

static void
new_path(struct tt_cafx *f, char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s/%s-%d.ks", f->dir, what, f->seq++);
}

static struct ks *
must_create(const char *path, const struct ks_params *p)
{
	struct pki_err err = { 0 };
	struct ks *ks = ks_create(path, DEVICE, p ? p : &fast, &err);

	if (ks == NULL)
		fail_msg("ks_create: %d %s", err.status, err.detail);
	return ks;
}

static struct ks *
must_open(const char *path)
{
	struct pki_err err = { 0 };
	struct ks *ks = ks_open(path, &err);

	if (ks == NULL)
		fail_msg("ks_open: %d %s", err.status, err.detail);
	return ks;
}

static void
must_add(struct ks *ks, const char *id, enum ks_purpose purpose, enum ks_key_type type,
	 const char *pin, const char *puk, const char *profile)
{
	struct pki_err err = { 0 };
	const char *profs[1] = { profile };
	struct ks_group_spec s = {
		.gs_id = id,
		.gs_purpose = purpose,
		.gs_profiles = profs,
		.gs_nprofiles = profile ? 1 : 0,
		.gs_key_type = type,
		.gs_pin = pin,
		.gs_puk = puk,
	};

	if (ks_add_group(ks, &s, &err) != 0)
		fail_msg("ks_add_group(%s): %d %s", id, err.status, err.detail);
}

/* Sign and return the status (0 on success); *sig (OPENSSL_free) if asked. */
static int
sign_st(struct ks *ks, const char *id, const char *pin, enum pki_sig_format fmt, unsigned flags,
	const void *data, size_t len, unsigned char **sig, size_t *siglen)
{
	struct pki_err err = { 0 };
	unsigned char *out = NULL;
	size_t outlen = 0;
	int rc;

	rc = ks_sign(ks, id, pin, fmt, flags, NID_sha256, data, len, &out, &outlen, &err);
	if (rc == 0) {
		assert_non_null(out);
		assert_true(outlen > 0);
		if (sig != NULL) {
			*sig = out;
			*siglen = outlen;
		} else {
			OPENSSL_free(out);
		}
		return 0;
	}
	assert_int_equal(rc, -1);
	assert_null(out);
	assert_true(err.status != 0);
	assert_true(err.detail[0] != '\0');
	return err.status;
}

static struct ks_group_info
info(const struct ks *ks, const char *id)
{
	struct ks_group_info gi;
	struct pki_err err = { 0 };

	if (ks_group_info_by_id(ks, id, &gi, &err) != 0)
		fail_msg("no group %s", id);
	return gi;
}

/* Independent check of a raw signature with EVP and the public key. */
static void
verify_raw(EVP_PKEY *pub, enum pki_sig_format fmt, bool digest, const unsigned char *data,
	   size_t len, const unsigned char *sig, size_t siglen)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	int ok;

	if (digest) {
		pc = EVP_PKEY_CTX_new(pub, NULL);
		assert_int_equal(EVP_PKEY_verify_init(pc), 1);
		assert_true(EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) > 0);
	} else {
		assert_int_equal(EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, pub), 1);
	}
	if (fmt == PKI_SIG_PSS) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	if (digest) {
		ok = EVP_PKEY_verify(pc, sig, siglen, data, len);
		EVP_PKEY_CTX_free(pc);
	} else {
		ok = EVP_DigestVerify(mc, sig, siglen, data, len);
	}
	EVP_MD_CTX_free(mc);
	assert_int_equal(ok, 1);
}

static unsigned char *
slurp_bytes(const char *path, size_t *len)
{
	return (unsigned char *)tu_slurp(path, len);
}

static void
write_bytes(const char *path, const void *d, size_t len)
{
	FILE *fp = fopen(path, "wb"); /* an existing file keeps its mode */

	assert_non_null(fp);
	assert_int_equal(fwrite(d, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* The JSON body of a keystore file (without its checksum line). */
static json_t *
load_body(const char *path)
{
	size_t len;
	char *buf = tu_slurp(path, &len);
	json_error_t je;
	json_t *j;

	assert_true(len > 72);
	j = json_loadb(buf, len - 72, 0, &je);
	free(buf);
	assert_non_null(j);
	return j;
}

/* Write `text` (a body, without the final newline) as a keystore file with
 * a CORRECT checksum line: what a hostile editor of the file (not random
 * corruption) would do. */
static void
store_text(const char *path, const char *txt, size_t n)
{
	unsigned char dg[32];
	unsigned int dl = 0;
	char *img;
	size_t i;

	img = malloc(n + 1 + 72);
	assert_non_null(img);
	memcpy(img, txt, n);
	img[n] = '\n';
	assert_int_equal(EVP_Digest(img, n + 1, dg, &dl, EVP_sha256(), NULL), 1);
	memcpy(img + n + 1, "sha256:", 7);
	for (i = 0; i < 32; i++)
		snprintf(img + n + 8 + 2 * i, 3, "%02x", dg[i]);
	img[n + 1 + 71] = '\n';
	write_bytes(path, img, n + 1 + 72);
	free(img);
}

static void
store_body(const char *path, json_t *body)
{
	char *txt = json_dumps(body, JSON_INDENT(1));

	assert_non_null(txt);
	store_text(path, txt, strlen(txt));
	free(txt);
}

static json_t *
group_json(json_t *body, const char *id)
{
	json_t *a = json_object_get(body, "groups"), *g;
	size_t i;

	json_array_foreach (a, i, g)
		if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
			return g;
	fail_msg("group %s not in file", id);
	return NULL;
}

static int
open_status(const char *path)
{
	struct pki_err err = { 0 };
	struct ks *ks = ks_open(path, &err);

	if (ks != NULL) {
		ks_close(ks);
		return 0;
	}
	assert_true(err.detail[0] != '\0');
	return err.status;
}

/* ---- create, open, lock, mode ------------------------------------------- */

static void
test_create_open_lock_mode(void **state)
{
	struct tt_cafx *f = *state;
	char path[512], lnk[540], other[540];
	struct pki_err err = { 0 };
	struct ks_params p = fast;
	struct stat st;
	struct ks *ks, *ks2;

	new_path(f, path, sizeof(path), "create");
	ks = must_create(path, NULL);
	assert_string_equal(ks_device_id(ks), DEVICE);
	assert_int_equal(ks_count(ks), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* one handle at a time: a second open or create is refused */
	assert_null(ks_open(path, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "in use"));
	ks_close(ks);
	assert_null(ks_create(path, DEVICE, &fast, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "exists"));

	/* a temporary file left by a killed writer is removed at open; a
	 * look-alike that is not one of ours is kept */
	snprintf(lnk, sizeof(lnk), "%s.tmpAb3xYz", path);
	write_bytes(lnk, "stale", 5);
	snprintf(other, sizeof(other), "%s.tmpAb3xYz7", path);
	write_bytes(other, "other", 5);
	ks = must_open(path);
	assert_int_equal(access(lnk, F_OK), -1);
	assert_int_equal(access(other, F_OK), 0);
	assert_string_equal(ks_device_id(ks), DEVICE);
	must_add(ks, "a", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, NULL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600); /* rewritten file too */
	ks_close(ks);

	/* a file others could read is refused, as is a symlink */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(open_status(path), 900);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(open_status(path), 0);
	snprintf(lnk, sizeof(lnk), "%s.lnk", path);
	assert_int_equal(symlink(path, lnk), 0);
	assert_int_equal(open_status(lnk), 900);

	/* bad creation arguments */
	new_path(f, path, sizeof(path), "bad");
	assert_null(ks_create(path, "", &fast, &err));
	assert_int_equal(err.status, 101);
	assert_null(ks_create(path, "dev ice", &fast, &err));
	assert_int_equal(err.status, 101);
	p.kp_scrypt_log2n = MSSP_KEYSTORE_SCRYPT_MIN_LOG2N - 1; /* never below 2^10 */
	assert_null(ks_create(path, DEVICE, &p, &err));
	assert_int_equal(err.status, 101);
	p = fast;
	p.kp_max_groups = MSSP_KEYSTORE_MAX_GROUPS + 1;
	assert_null(ks_create(path, DEVICE, &p, &err));
	assert_int_equal(err.status, 101);
	p = fast;
	p.kp_pin_min = 3;
	assert_null(ks_create(path, DEVICE, &p, &err));
	assert_int_equal(err.status, 101);
	p.kp_pin_min = 8;
	p.kp_pin_max = 6;
	assert_null(ks_create(path, DEVICE, &p, &err));
	assert_int_equal(err.status, 101);
	assert_int_equal(access(path, F_OK), -1);
	assert_null(ks_open(path, &err)); /* missing file */
	assert_int_equal(err.status, 900);

	ks2 = must_create(path, NULL);
	ks_close(ks2);
}

/* ---- groups: add, list, find, reopen, raw signatures --------------------- */

static void
test_groups_reopen_and_raw_sign(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct pki_err err = { 0 };
	struct ks_group_info gi;
	static const unsigned char dtbs[] = "Pay 100 EUR to Alice";
	unsigned char dg[32], *sig = NULL;
	unsigned int dl = 0;
	size_t siglen = 0;
	struct ks *ks;
	EVP_PKEY *pub;
	BIGNUM *bn = NULL;

	new_path(f, path, sizeof(path), "groups");
	ks = must_create(path, NULL);
	must_add(ks, "sign-ec", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	must_add(ks, "authn-nopin", KS_PURPOSE_AUTHN, 0, NULL, NULL, PROF_AUTHN);
	must_add(ks, "sign-rsa", KS_PURPOSE_SIGN, KS_KEY_RSA_2048, PIN2, PUK, "mss:demo:sign:loa4:app");
	ks_close(ks);

	ks = must_open(path);
	assert_int_equal(ks_count(ks), 3);
	assert_int_equal(ks_group_info(ks, 0, &gi, &err), 0);
	assert_string_equal(gi.gi_id, "sign-ec");
	assert_int_equal(gi.gi_purpose, KS_PURPOSE_SIGN);
	assert_int_equal(gi.gi_key_type, KS_KEY_EC_P256);
	assert_true(gi.gi_has_pin);
	assert_int_equal(gi.gi_state, KS_STATE_ACTIVE);
	assert_int_equal(gi.gi_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	assert_int_equal(gi.gi_puk_tries, MSSP_KEYSTORE_PUK_TRIES);
	assert_false(gi.gi_has_cert);
	assert_int_equal(gi.gi_nprofiles, 1);
	assert_string_equal(gi.gi_profiles[0], PROF_SIGN);
	assert_int_equal(ks_group_info(ks, 1, &gi, &err), 0);
	assert_string_equal(gi.gi_id, "authn-nopin");
	assert_int_equal(gi.gi_key_type, KS_KEY_EC_P256); /* the default */
	assert_false(gi.gi_has_pin);
	assert_int_equal(gi.gi_pin_tries, 0);
	assert_int_equal(ks_group_info(ks, 2, &gi, &err), 0);
	assert_int_equal(gi.gi_key_type, KS_KEY_RSA_2048);
	assert_int_equal(ks_group_info(ks, 3, &gi, &err), -1);
	assert_int_equal(err.status, 404);

	/* choosing a group by purpose and profile */
	assert_string_equal(ks_find(ks, KS_PURPOSE_SIGN, NULL, &err), "sign-ec");
	assert_string_equal(ks_find(ks, KS_PURPOSE_SIGN, "mss:demo:sign:loa4:app", &err), "sign-rsa");
	assert_string_equal(ks_find(ks, KS_PURPOSE_AUTHN, PROF_AUTHN, &err), "authn-nopin");
	assert_null(ks_find(ks, KS_PURPOSE_AUTHN, PROF_SIGN, &err));
	assert_int_equal(err.status, 404);

	/* ECDSA over the data, and over its digest */
	pub = ks_public_key(ks, "sign-ec", &err);
	assert_non_null(pub);
	/* the public key handed out has no private part */
	assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 0);
	assert_int_equal(sign_st(ks, "sign-ec", PIN, PKI_SIG_ECDSA, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	verify_raw(pub, PKI_SIG_ECDSA, false, dtbs, sizeof(dtbs), sig, siglen);
	OPENSSL_free(sig);
	assert_int_equal(EVP_Digest(dtbs, sizeof(dtbs), dg, &dl, EVP_sha256(), NULL), 1);
	assert_int_equal(sign_st(ks, "sign-ec", PIN, PKI_SIG_ECDSA, PKI_SIG_DIGEST, dg, sizeof(dg), &sig, &siglen), 0);
	verify_raw(pub, PKI_SIG_ECDSA, true, dg, sizeof(dg), sig, siglen);
	verify_raw(pub, PKI_SIG_ECDSA, false, dtbs, sizeof(dtbs), sig, siglen);
	OPENSSL_free(sig);
	EVP_PKEY_free(pub);

	/* RSA PKCS#1 v1.5 and PSS */
	pub = ks_public_key(ks, "sign-rsa", &err);
	assert_non_null(pub);
	assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_D, &bn), 0);
	assert_int_equal(sign_st(ks, "sign-rsa", PIN2, PKI_SIG_PKCS1, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	assert_int_equal(siglen, 256);
	verify_raw(pub, PKI_SIG_PKCS1, false, dtbs, sizeof(dtbs), sig, siglen);
	OPENSSL_free(sig);
	assert_int_equal(sign_st(ks, "sign-rsa", PIN2, PKI_SIG_PSS, PKI_SIG_DIGEST, dg, sizeof(dg), &sig, &siglen), 0);
	verify_raw(pub, PKI_SIG_PSS, false, dtbs, sizeof(dtbs), sig, siglen);
	OPENSSL_free(sig);
	EVP_PKEY_free(pub);

	/* the PIN-less group signs with a NULL PIN */
	pub = ks_public_key(ks, "authn-nopin", &err);
	assert_non_null(pub);
	assert_int_equal(sign_st(ks, "authn-nopin", NULL, PKI_SIG_ECDSA, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	verify_raw(pub, PKI_SIG_ECDSA, false, dtbs, sizeof(dtbs), sig, siglen);
	OPENSSL_free(sig);
	EVP_PKEY_free(pub);

	assert_null(ks_public_key(ks, "nope", &err));
	assert_int_equal(err.status, 404);
	/* successful signatures left the counters full */
	assert_int_equal(info(ks, "sign-ec").gi_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	ks_close(ks);
}

/* ---- argument errors cost no PIN try ------------------------------------- */

static void
test_bad_requests_cost_no_try(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct pki_err err = { 0 };
	unsigned char d[32] = { 1 }, *out = NULL;
	size_t outlen = 0;
	struct ks *ks;

	new_path(f, path, sizeof(path), "args");
	ks = must_create(path, NULL);
	must_add(ks, "g", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	must_add(ks, "np", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, NULL);

	assert_int_equal(sign_st(ks, "g", NULL, PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", "12a4", PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", "123", PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", "123456789", PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "np", PIN, PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_PKCS1, 0, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_ECDSA, PKI_SIG_DETACHED, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_ECDSA, 0x80, d, 5, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_ECDSA, PKI_SIG_DIGEST, d, 31, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_ECDSA, 0, d, 0, NULL, NULL), 101);
	assert_int_equal(sign_st(ks, "g", WRONG, (enum pki_sig_format)99, 0, d, 5, NULL, NULL), 101);
	/* no certificate: CMS is refused with a clear 422 */
	assert_int_equal(ks_sign(ks, "g", WRONG, PKI_SIG_CMS, 0, NID_sha256, d, 5, &out, &outlen, &err), -1);
	assert_int_equal(err.status, 422);
	assert_non_null(strstr(err.detail, "certificate"));
	/* SHA-1 is not allowed by the crypto policy */
	assert_int_equal(ks_sign(ks, "g", WRONG, PKI_SIG_ECDSA, 0, NID_sha1, d, 5, &out, &outlen, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(sign_st(ks, "nope", PIN, PKI_SIG_ECDSA, 0, d, 5, NULL, NULL), 404);
	assert_null(out);
	/* none of that touched the counter */
	assert_int_equal(info(ks, "g").gi_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	ks_close(ks);
}

/* ---- PIN counter, blocking, PUK ----------------------------------------- */

static void
test_wrong_pin_persisted_and_blocks(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct pki_err err = { 0 };
	static const char d[] = "dtbs";
	unsigned char *out = NULL;
	size_t outlen = 0;
	struct ks *ks;

	new_path(f, path, sizeof(path), "pin");
	ks = must_create(path, NULL);
	must_add(ks, "g", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	must_add(ks, "other", KS_PURPOSE_AUTHN, KS_KEY_EC_P256, PIN, PUK, NULL);

	/* a wrong PIN is not final: it reports the tries left */
	assert_int_equal(ks_sign(ks, "g", WRONG, PKI_SIG_ECDSA, 0, NID_sha256, (const unsigned char *)d, 4, &out, &outlen, &err), -1);
	assert_int_equal(err.status, KS_STATUS_WRONG_PIN);
	assert_non_null(strstr(err.detail, "2 tries left"));
	assert_int_equal(info(ks, "g").gi_pin_tries, 2);
	ks_close(ks);
	/* ... and was on disk before the answer */
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_pin_tries, 2);
	assert_int_equal(info(ks, "other").gi_pin_tries, 3); /* per group */
	/* the right PIN restores the counter, persistently */
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	assert_int_equal(info(ks, "g").gi_pin_tries, 3);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_pin_tries, 3);

	/* three wrong PINs block the group; the third answers 402 */
	assert_int_equal(sign_st(ks, "g", WRONG, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "g", "1111", PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(info(ks, "g").gi_pin_tries, 1);
	assert_int_equal(sign_st(ks, "g", "2222", PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 402);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_PIN_BLOCKED);
	/* blocked even with the right PIN, for every PIN operation */
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 402);
	assert_null(ks_csr(ks, "g", PIN, NULL, &err));
	assert_int_equal(err.status, 402);
	assert_int_equal(ks_change_pin(ks, "g", PIN, "5555", &err), -1);
	assert_int_equal(err.status, 402);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_PIN_BLOCKED);
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 402);
	/* the other group is unaffected */
	assert_int_equal(sign_st(ks, "other", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);

	/* the PUK unblocks and sets a new PIN */
	assert_int_equal(ks_unblock(ks, "g", "87654321", "4321", &err), -1);
	assert_int_equal(err.status, KS_STATUS_WRONG_PUK);
	assert_non_null(strstr(err.detail, "9 tries left"));
	assert_int_equal(info(ks, "g").gi_puk_tries, 9);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_PIN_BLOCKED);
	assert_int_equal(ks_unblock(ks, "g", PUK, "12", &err), -1); /* bad new PIN */
	assert_int_equal(err.status, 101);
	assert_int_equal(ks_unblock(ks, "g", "1234567", "4321", &err), -1); /* short PUK */
	assert_int_equal(err.status, 101);
	assert_int_equal(info(ks, "g").gi_puk_tries, 9);
	assert_int_equal(ks_unblock(ks, "g", PUK, "4321", &err), 0);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_ACTIVE);
	assert_int_equal(info(ks, "g").gi_pin_tries, 3);
	assert_int_equal(info(ks, "g").gi_puk_tries, 10);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_ACTIVE);
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "g", "4321", PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	ks_close(ks);
}

static void
test_puk_exhausted_blocks_forever(void **state)
{
	struct tt_cafx *f = *state;
	char path[512], puk[16];
	struct pki_err err = { 0 };
	static const char d[] = "dtbs";
	json_t *body, *g;
	struct ks *ks;
	int i;

	new_path(f, path, sizeof(path), "puk");
	ks = must_create(path, NULL);
	must_add(ks, "g", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	must_add(ks, "keep", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	for (i = 1; i < MSSP_KEYSTORE_PUK_TRIES; i++) {
		snprintf(puk, sizeof(puk), "%08d", i);
		assert_int_equal(ks_unblock(ks, "g", puk, "4321", &err), -1);
		assert_int_equal(err.status, KS_STATUS_WRONG_PUK);
		assert_int_equal(info(ks, "g").gi_puk_tries, (unsigned)(MSSP_KEYSTORE_PUK_TRIES - i));
		if (i == 5) { /* persisted along the way */
			ks_close(ks);
			ks = must_open(path);
			assert_int_equal(info(ks, "g").gi_puk_tries, 5);
		}
	}
	/* the PIN still works while the PUK is not exhausted */
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	assert_int_equal(ks_unblock(ks, "g", "99999999", "4321", &err), -1);
	assert_int_equal(err.status, 403);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_DISABLED);
	assert_int_equal(info(ks, "g").gi_puk_tries, 0);
	/* for ever: the right PUK, the right PIN, a reopen change nothing */
	assert_int_equal(ks_unblock(ks, "g", PUK, "4321", &err), -1);
	assert_int_equal(err.status, 403);
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 403);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "g").gi_state, KS_STATE_DISABLED);
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 403);
	assert_null(ks_csr(ks, "g", PIN, NULL, &err));
	assert_int_equal(err.status, 403);
	assert_int_equal(sign_st(ks, "keep", PIN, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	ks_close(ks);
	/* the wrapped key is gone from the file */
	body = load_body(path);
	g = group_json(body, "g");
	assert_int_equal(json_object_size(json_object_get(g, "wraps")), 0);
	assert_int_equal(json_object_size(json_object_get(group_json(body, "keep"), "wraps")), 2);
	json_decref(body);
}

static void
test_change_pin(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct pki_err err = { 0 };
	static const char d[] = "dtbs";
	struct ks_params p = fast;
	struct ks *ks;

	new_path(f, path, sizeof(path), "chg");
	p.kp_pin_min = 6; /* a keystore may require longer PINs */
	ks = must_create(path, &p);
	must_add(ks, "np", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, NULL);
	{
		struct ks_group_spec s = { .gs_id = "short", .gs_purpose = KS_PURPOSE_SIGN, .gs_pin = PIN, .gs_puk = PUK };

		assert_int_equal(ks_add_group(ks, &s, &err), -1);
		assert_int_equal(err.status, 101);
	}
	must_add(ks, "g", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN2, PUK, NULL);
	assert_int_equal(ks_change_pin(ks, "g", "111111", "24681357", &err), -1);
	assert_int_equal(err.status, KS_STATUS_WRONG_PIN);
	assert_int_equal(ks_change_pin(ks, "g", PIN2, "2468", &err), -1); /* too short here */
	assert_int_equal(err.status, 101);
	assert_int_equal(info(ks, "g").gi_pin_tries, 2);
	assert_int_equal(ks_change_pin(ks, "g", PIN2, "24681357", &err), 0);
	assert_int_equal(info(ks, "g").gi_pin_tries, 3);
	assert_int_equal(ks_change_pin(ks, "np", NULL, "24681357", &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(ks_change_pin(ks, "nope", PIN2, "24681357", &err), -1);
	assert_int_equal(err.status, 404);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(sign_st(ks, "g", PIN2, PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "g", "24681357", PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	/* the PUK wrapping still opens after a PIN change */
	assert_int_equal(ks_unblock(ks, "g", PUK, "13572468", &err), 0);
	assert_int_equal(sign_st(ks, "g", "13572468", PKI_SIG_ECDSA, 0, d, 4, NULL, NULL), 0);
	ks_close(ks);
}

/* ---- limits and specs ----------------------------------------------------- */

static void
test_group_limits_and_specs(void **state)
{
	struct tt_cafx *f = *state;
	char path[512], id[16];
	struct pki_err err = { 0 };
	struct ks_params p = fast;
	const char *profs[MSSP_KEYSTORE_MAX_PROFILES + 1];
	struct ks_group_spec s = { .gs_id = "x", .gs_purpose = KS_PURPOSE_SIGN };
	struct ks *ks;
	int i;

	new_path(f, path, sizeof(path), "limit5");
	ks = must_create(path, NULL);
	for (i = 0; i < MSSP_KEYSTORE_DEFAULT_GROUPS; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		must_add(ks, id, KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, NULL);
	}
	s.gs_id = "sixth";
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	assert_non_null(strstr(err.detail, "full"));
	/* deleting frees a slot */
	assert_int_equal(ks_delete_group(ks, "g2", &err), 0);
	assert_int_equal(ks_delete_group(ks, "g2", &err), -1);
	assert_int_equal(err.status, 404);
	assert_int_equal(ks_add_group(ks, &s, &err), 0);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(ks_count(ks), 5);
	assert_int_equal(ks_group_info_by_id(ks, "g2", &(struct ks_group_info){ 0 }, &err), -1);
	assert_int_equal(err.status, 404);
	ks_close(ks);

	new_path(f, path, sizeof(path), "limit16");
	p.kp_max_groups = MSSP_KEYSTORE_MAX_GROUPS;
	ks = must_create(path, &p);
	for (i = 0; i < MSSP_KEYSTORE_MAX_GROUPS; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		must_add(ks, id, KS_PURPOSE_AUTHN, KS_KEY_EC_P256, NULL, NULL, NULL);
	}
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(ks_count(ks), MSSP_KEYSTORE_MAX_GROUPS);

	/* bad specifications: nothing is added */
	assert_int_equal(ks_delete_group(ks, "g0", &err), 0);
	s.gs_id = "g1"; /* taken */
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_id = "bad id";
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_id = "n";
	s.gs_purpose = (enum ks_purpose)7;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_purpose = KS_PURPOSE_SIGN;
	s.gs_key_type = (enum ks_key_type)9;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_key_type = 0;
	s.gs_puk = PUK; /* PUK without PIN */
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_pin = PIN;
	s.gs_puk = "1234"; /* PUK too short */
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_puk = NULL;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_pin = "123456789"; /* PIN too long */
	s.gs_puk = PUK;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	s.gs_pin = NULL;
	s.gs_puk = NULL;
	for (i = 0; i <= MSSP_KEYSTORE_MAX_PROFILES; i++)
		profs[i] = PROF_SIGN;
	s.gs_profiles = profs;
	s.gs_nprofiles = MSSP_KEYSTORE_MAX_PROFILES + 1;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	profs[0] = "mss:with space";
	s.gs_nprofiles = 1;
	assert_int_equal(ks_add_group(ks, &s, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(ks_count(ks), MSSP_KEYSTORE_MAX_GROUPS - 1);
	profs[0] = PROF_SIGN;
	s.gs_nprofiles = MSSP_KEYSTORE_MAX_PROFILES;
	assert_int_equal(ks_add_group(ks, &s, &err), 0);
	ks_close(ks);
	ks = must_open(path);
	assert_int_equal(info(ks, "n").gi_nprofiles, MSSP_KEYSTORE_MAX_PROFILES);
	ks_close(ks);
}

/* ---- CSR, certificate, CMS ------------------------------------------------ */

static void
cms_cli_verify(struct tt_cafx *f, const unsigned char *sig, size_t siglen, const void *content,
	       size_t clen, bool detached)
{
	char sp[512], cp[512], op[512], cmd[2048];
	unsigned char *got;
	size_t glen;

	snprintf(sp, sizeof(sp), "%s/cms.der", f->dir);
	snprintf(cp, sizeof(cp), "%s/content.bin", f->dir);
	snprintf(op, sizeof(op), "%s/out.bin", f->dir);
	write_bytes(sp, sig, siglen);
	write_bytes(cp, content, clen);
	unlink(op);
	if (detached)
		snprintf(cmd, sizeof(cmd),
			 "openssl cms -verify -inform DER -noverify -binary -in %s -content %s -out %s 2>/dev/null",
			 sp, cp, op);
	else
		snprintf(cmd, sizeof(cmd),
			 "openssl cms -verify -inform DER -noverify -binary -in %s -out %s 2>/dev/null", sp, op);
	assert_int_equal(system(cmd), 0);
	got = slurp_bytes(op, &glen);
	assert_int_equal(glen, clen);
	assert_memory_equal(got, content, clen);
	free(got);
	/* and the check can fail: other content is refused */
	if (detached) {
		write_bytes(cp, "something else", 14);
		assert_int_not_equal(system(cmd), 0);
	}
}

static void
cms_pki_verify(struct tt_cafx *f, X509 *signer, const unsigned char *sig, size_t siglen,
	       const void *dtbs, size_t len, unsigned flags, int expect)
{
	struct pki_verify_opts o = { 0 };
	struct pki_err err = { 0 };
	X509_STORE *st = X509_STORE_new();
	int rc;

	assert_int_equal(X509_STORE_add_cert(st, f->ca_cert), 1);
	o.vo_trust = st;
	o.vo_expected_signer = signer;
	o.vo_flags = flags;
	o.vo_md_nid = NID_sha256;
	rc = pki_sig_cms_verify(sig, siglen, dtbs, len, &o, NULL, &err);
	if (expect == 0 && rc != 0)
		fail_msg("pki_sig_cms_verify: %d %s", err.status, err.detail);
	assert_int_equal(rc == 0 ? 0 : err.status, expect);
	X509_STORE_free(st);
}

static void
test_csr_cert_and_cms(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct pki_err err = { 0 };
	static const unsigned char dtbs[] = "Login to Example Bank, code 4711";
	unsigned char dg[32], *sig = NULL;
	unsigned int dl = 0;
	size_t siglen = 0;
	X509_REQ *req;
	X509 *cert, *other, *got;
	EVP_PKEY *pub, *k2;
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct ks *ks;

	new_path(f, path, sizeof(path), "cms");
	ks = must_create(path, NULL);
	must_add(ks, "sign", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	must_add(ks, "click", KS_PURPOSE_AUTHN, KS_KEY_EC_P256, NULL, NULL, PROF_AUTHN);

	/* the CSR: proof of possession, needs the PIN and counts a try */
	assert_null(ks_csr(ks, "sign", WRONG, NULL, &err));
	assert_int_equal(err.status, KS_STATUS_WRONG_PIN);
	req = ks_csr(ks, "sign", PIN, NULL, &err);
	assert_non_null(req);
	pub = ks_public_key(ks, "sign", &err);
	assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub), 1);
	assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 1);
	assert_null(ks_certificate(ks, "sign", &err));
	assert_int_equal(err.status, 422);

	/* a certificate for another key is refused */
	k2 = EVP_EC_gen("P-256");
	other = tt_cafx_issue(f, k2, "someone else");
	assert_int_equal(ks_install_cert(ks, "sign", other, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(ks_install_cert(ks, "nope", other, NULL, &err), -1);
	assert_int_equal(err.status, 404);
	X509_free(other);
	EVP_PKEY_free(k2);

	cert = tt_cafx_issue(f, X509_REQ_get0_pubkey(req), "Alice");
	assert_int_equal(sk_X509_push(chain, f->ca_cert), 1);
	assert_int_equal(ks_install_cert(ks, "sign", cert, chain, &err), 0);
	X509_REQ_free(req);
	req = ks_csr(ks, "click", NULL, NULL, &err); /* PIN-less CSR */
	assert_non_null(req);
	other = tt_cafx_issue(f, X509_REQ_get0_pubkey(req), "Alice (click)");
	assert_int_equal(ks_install_cert(ks, "click", other, NULL, &err), 0);
	X509_REQ_free(req);
	ks_close(ks);

	ks = must_open(path);
	assert_true(info(ks, "sign").gi_has_cert);
	got = ks_certificate(ks, "sign", &err);
	assert_non_null(got);
	assert_int_equal(X509_cmp(got, cert), 0);
	X509_free(got);

	/* CMS attached */
	assert_int_equal(sign_st(ks, "sign", PIN, PKI_SIG_CMS, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	cms_cli_verify(f, sig, siglen, dtbs, sizeof(dtbs), false);
	cms_pki_verify(f, cert, sig, siglen, dtbs, sizeof(dtbs), 0, 0);
	cms_pki_verify(f, cert, sig, siglen, "other", 5, 0, 503);
	OPENSSL_free(sig);
	/* CMS detached */
	assert_int_equal(sign_st(ks, "sign", PIN, PKI_SIG_CMS, PKI_SIG_DETACHED, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	cms_cli_verify(f, sig, siglen, dtbs, sizeof(dtbs), true);
	cms_pki_verify(f, cert, sig, siglen, dtbs, sizeof(dtbs), PKI_SIG_DETACHED, 0);
	OPENSSL_free(sig);
	/* CMS over a digest: verifies over the original data too */
	assert_int_equal(EVP_Digest(dtbs, sizeof(dtbs), dg, &dl, EVP_sha256(), NULL), 1);
	assert_int_equal(sign_st(ks, "sign", PIN, PKI_SIG_CMS, PKI_SIG_DIGEST, dg, sizeof(dg), &sig, &siglen), 0);
	cms_cli_verify(f, sig, siglen, dtbs, sizeof(dtbs), true);
	cms_pki_verify(f, cert, sig, siglen, dg, sizeof(dg), PKI_SIG_DIGEST, 0);
	OPENSSL_free(sig);
	/* the click-OK group signs CMS with no PIN */
	assert_int_equal(sign_st(ks, "click", NULL, PKI_SIG_CMS, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	cms_cli_verify(f, sig, siglen, dtbs, sizeof(dtbs), false);
	cms_pki_verify(f, other, sig, siglen, dtbs, sizeof(dtbs), 0, 0);
	cms_pki_verify(f, cert, sig, siglen, dtbs, sizeof(dtbs), 0, 503); /* not Alice's sign key */
	OPENSSL_free(sig);
	/* raw signature checked through the certificate */
	assert_int_equal(sign_st(ks, "sign", PIN, PKI_SIG_ECDSA, 0, dtbs, sizeof(dtbs), &sig, &siglen), 0);
	assert_int_equal(pki_sig_raw_verify(cert, PKI_SIG_ECDSA, NID_sha256, dtbs, sizeof(dtbs), sig, siglen, NULL, &err), 0);
	OPENSSL_free(sig);
	ks_close(ks);

	X509_free(cert);
	X509_free(other);
	EVP_PKEY_free(pub);
	sk_X509_free(chain);
}

/* ---- what the file holds ---------------------------------------------------- */

/* base64 -> bytes, NULL for text that is not base64 (names, URIs). */
static unsigned char *
b64dec(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *d = malloc(n);
	int r;

	assert_non_null(d);
	r = EVP_DecodeBlock(d, (const unsigned char *)s, (int)n);
	if (r < 0) {
		free(d);
		return NULL;
	}
	*len = (size_t)r;
	return d;
}

/* No base64 string in the file decodes to a private key, and the
 * public key's point / modulus, which a PKCS#8 structure would contain,
 * appears in no wrapped blob. */
static void
check_no_private_key(json_t *j, const unsigned char *pubbits, size_t publen, int *found_pub)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach (j, k, v)
			check_no_private_key(v, pubbits, publen, found_pub);
	} else if (json_is_array(j)) {
		json_array_foreach (j, i, v)
			check_no_private_key(v, pubbits, publen, found_pub);
	} else if (json_is_string(j) && json_string_length(j) >= 16) {
		size_t n = 0;
		unsigned char *d = b64dec(json_string_value(j), &n);
		const unsigned char *p = d;
		EVP_PKEY *pk;
		PKCS8_PRIV_KEY_INFO *p8;

		if (d == NULL)
			return;
		pk = d2i_AutoPrivateKey(NULL, &p, (long)n);
		assert_null(pk);
		p = d;
		p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
		assert_null(p8);
		if (n >= publen && memmem(d, n, pubbits, publen) != NULL)
			(*found_pub)++;
		free(d);
		ERR_clear_error();
	}
}

static void
test_no_private_key_in_file(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	unsigned char pt[600], *fb;
	size_t ptlen = 0, flen;
	BIGNUM *n = NULL;
	EVP_PKEY *pub;
	json_t *body;
	struct pki_err err = { 0 };
	struct ks *ks;
	int found;

	new_path(f, path, sizeof(path), "nopriv");
	ks = must_create(path, NULL);
	must_add(ks, "ec", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	must_add(ks, "ecnp", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, NULL);
	must_add(ks, "rsa", KS_PURPOSE_SIGN, KS_KEY_RSA_2048, PIN, PUK, NULL);

	body = load_body(path);
	/* EC: the uncompressed point is only in the public_key field */
	pub = ks_public_key(ks, "ec", &err);
	assert_int_equal(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen), 1);
	assert_int_equal(ptlen, 65);
	found = 0;
	check_no_private_key(json_object_get(group_json(body, "ec"), "wraps"), pt, ptlen, &found);
	assert_int_equal(found, 0);
	found = 0;
	check_no_private_key(body, pt, ptlen, &found);
	assert_int_equal(found, 1); /* the SPKI: the search does find it */
	EVP_PKEY_free(pub);
	pub = ks_public_key(ks, "ecnp", &err);
	assert_int_equal(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen), 1);
	found = 0;
	check_no_private_key(json_object_get(group_json(body, "ecnp"), "wraps"), pt, ptlen, &found);
	assert_int_equal(found, 0);
	EVP_PKEY_free(pub);
	/* RSA: the modulus likewise */
	pub = ks_public_key(ks, "rsa", &err);
	assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	ptlen = (size_t)BN_bn2bin(n, pt);
	assert_int_equal(ptlen, 256);
	found = 0;
	check_no_private_key(body, pt, ptlen, &found);
	assert_int_equal(found, 1);
	BN_free(n);
	EVP_PKEY_free(pub);
	json_decref(body);
	ks_close(ks);

	fb = slurp_bytes(path, &flen);
	assert_null(memmem(fb, flen, "PRIVATE", 7));
	free(fb);
}

/* A wrapped key moved to another group or another file does not decrypt:
 * the group's and the file's identity are the GCM AAD. */
static void
test_blob_swap_fails(void **state)
{
	struct tt_cafx *f = *state;
	char p1[512], p2[512];
	json_t *b1, *b2, *ga, *gb, *wa, *wb;
	struct pki_err err = { 0 };
	static const char d[] = "x";
	struct ks *ks;

	new_path(f, p1, sizeof(p1), "swap1");
	new_path(f, p2, sizeof(p2), "swap2");
	ks = must_create(p1, NULL);
	must_add(ks, "a", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	must_add(ks, "b", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	must_add(ks, "c", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, PROF_SIGN);
	must_add(ks, "d", KS_PURPOSE_SIGN, KS_KEY_EC_P256, NULL, NULL, PROF_SIGN);
	ks_close(ks);
	ks = must_create(p2, NULL); /* same device id, same group ids, same PIN */
	must_add(ks, "a", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	ks_close(ks);

	/* swap the wrappings of a and b (and of c and d) inside one file */
	b1 = load_body(p1);
	ga = group_json(b1, "a");
	gb = group_json(b1, "b");
	wa = json_incref(json_object_get(ga, "wraps"));
	wb = json_incref(json_object_get(gb, "wraps"));
	json_object_set_new(ga, "wraps", wb);
	json_object_set_new(gb, "wraps", wa);
	wa = json_incref(json_object_get(group_json(b1, "c"), "wraps"));
	wb = json_incref(json_object_get(group_json(b1, "d"), "wraps"));
	json_object_set_new(group_json(b1, "c"), "wraps", wb);
	json_object_set_new(group_json(b1, "d"), "wraps", wa);
	store_body(p1, b1);
	ks = must_open(p1); /* structurally valid */
	assert_int_equal(sign_st(ks, "a", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "b", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "c", NULL, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), 900);
	assert_int_equal(ks_unblock(ks, "a", PUK, "4321", &err), -1); /* PUK copy too */
	assert_int_equal(err.status, KS_STATUS_WRONG_PUK);
	ks_close(ks);

	/* put a's and b's wrappings back (and reset the counters): a control */
	json_decref(b1);
	b1 = load_body(p1);
	ga = group_json(b1, "a");
	gb = group_json(b1, "b");
	wa = json_incref(json_object_get(ga, "wraps"));
	wb = json_incref(json_object_get(gb, "wraps"));
	json_object_set_new(ga, "wraps", wb);
	json_object_set_new(gb, "wraps", wa);
	json_object_set_new(ga, "pin_tries", json_integer(3));
	json_object_set_new(gb, "pin_tries", json_integer(3));
	json_object_set_new(ga, "puk_tries", json_integer(10));
	json_object_set_new(gb, "puk_tries", json_integer(10));
	wa = json_incref(json_object_get(group_json(b1, "c"), "wraps"));
	wb = json_incref(json_object_get(group_json(b1, "d"), "wraps"));
	json_object_set_new(group_json(b1, "c"), "wraps", wb);
	json_object_set_new(group_json(b1, "d"), "wraps", wa);
	store_body(p1, b1);
	ks = must_open(p1);
	assert_int_equal(sign_st(ks, "a", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), 0);
	assert_int_equal(sign_st(ks, "b", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), 0);
	assert_int_equal(sign_st(ks, "c", NULL, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), 0);
	ks_close(ks);
	/* edit a group's purpose, profiles or id: its key no longer opens */
	json_object_set_new(group_json(b1, "a"), "purpose", json_string("authn"));
	json_array_set_new(json_object_get(group_json(b1, "b"), "profiles"), 0, json_string("mss:evil"));
	json_object_set_new(group_json(b1, "c"), "id", json_string("renamed")); /* same key, new id */
	store_body(p1, b1);
	ks = must_open(p1);
	assert_int_equal(sign_st(ks, "a", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "b", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), KS_STATUS_WRONG_PIN);
	assert_int_equal(sign_st(ks, "renamed", NULL, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), 900);
	ks_close(ks);

	/* move group a of file 1 (public key and all) into file 2 */
	b2 = load_body(p2);
	json_array_set(json_object_get(b2, "groups"), 0, group_json(b1, "a"));
	json_object_set_new(json_array_get(json_object_get(b2, "groups"), 0), "purpose", json_string("sign"));
	store_body(p2, b2);
	ks = must_open(p2);
	assert_int_equal(sign_st(ks, "a", PIN, PKI_SIG_ECDSA, 0, d, 1, NULL, NULL), KS_STATUS_WRONG_PIN);
	ks_close(ks);
	json_decref(b1);
	json_decref(b2);
}

/* ---- damaged and hostile files ---------------------------------------------- */

static void
make_full_keystore(struct tt_cafx *f, const char *path)
{
	struct pki_err err = { 0 };
	struct ks *ks = must_create(path, NULL);
	X509_REQ *req;
	X509 *cert;
	STACK_OF(X509) *chain = sk_X509_new_null();

	must_add(ks, "s", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	must_add(ks, "n", KS_PURPOSE_AUTHN, KS_KEY_EC_P256, NULL, NULL, PROF_AUTHN);
	req = ks_csr(ks, "s", PIN, NULL, &err);
	assert_non_null(req);
	cert = tt_cafx_issue(f, X509_REQ_get0_pubkey(req), "Bob");
	sk_X509_push(chain, f->ca_cert);
	assert_int_equal(ks_install_cert(ks, "s", cert, chain, &err), 0);
	X509_free(cert);
	X509_REQ_free(req);
	sk_X509_free(chain);
	ks_close(ks);
}

static void
test_corrupted_byte_refused(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	unsigned char *orig, *buf;
	size_t len, i;
	static const unsigned char flips[] = { 0x01, 0x20, 0x80 };

	new_path(f, path, sizeof(path), "corrupt");
	make_full_keystore(f, path);
	orig = slurp_bytes(path, &len);
	buf = malloc(len);
	assert_non_null(buf);
	for (i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof(flips); k++) {
			memcpy(buf, orig, len);
			buf[i] ^= flips[k];
			write_bytes(path, buf, len);
			if (open_status(path) != 900)
				fail_msg("byte %zu ^ 0x%02x accepted", i, flips[k]);
		}
	}
	/* one byte more, or the trailer line repeated, is refused too */
	memcpy(buf, orig, len);
	write_bytes(path, orig, len);
	{
		FILE *fp = fopen(path, "ab");

		fputc('\n', fp);
		fclose(fp);
	}
	assert_int_equal(open_status(path), 900);
	write_bytes(path, orig, len);
	assert_int_equal(open_status(path), 0); /* the original is fine */
	free(orig);
	free(buf);
}

static void
test_truncated_refused(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	unsigned char *orig;
	size_t len, i;

	new_path(f, path, sizeof(path), "trunc");
	make_full_keystore(f, path);
	orig = slurp_bytes(path, &len);
	for (i = 0; i < len; i++) {
		assert_int_equal(truncate(path, (off_t)i), 0);
		if (open_status(path) != 900)
			fail_msg("file truncated to %zu bytes accepted", i);
		write_bytes(path, orig, len);
	}
	assert_int_equal(open_status(path), 0);
	free(orig);
}

/* Edits with a recomputed checksum: the strict parser refuses each. */
static void
test_hostile_content_refused(void **state)
{
	struct tt_cafx *f = *state;
	char path[512], *txt;
	json_t *b, *g;
	size_t len;
	int i;

	new_path(f, path, sizeof(path), "hostile");
	make_full_keystore(f, path);
	txt = tu_slurp(path, &len);

	for (i = 0;; i++) {
		b = load_body(path);
		g = group_json(b, "s");
		switch (i) {
		case 0: json_object_set_new(b, "version", json_integer(2)); break;
		case 1: json_object_set_new(b, "extra", json_true()); break;
		case 2: json_object_set_new(g, "pin_tries", json_integer(4)); break;
		case 3: json_object_set_new(g, "puk_tries", json_integer(-1)); break;
		case 4: json_object_set_new(b, "max_groups", json_integer(MSSP_KEYSTORE_MAX_GROUPS + 1)); break;
		case 5: json_object_set_new(b, "max_groups", json_integer(1)); break; /* < 2 groups */
		case 6: json_object_set_new(json_object_get(b, "kdf"), "log2n", json_integer(9)); break;
		case 7: json_object_set_new(json_object_get(json_object_get(g, "wraps"), "pin"), "log2n", json_integer(40)); break;
		case 8: json_object_set_new(json_object_get(json_object_get(g, "wraps"), "pin"), "r", json_integer(1)); break;
		case 9: json_object_set_new(json_array_get(json_object_get(b, "groups"), 1), "id", json_string("s")); break;
		case 10: json_object_set_new(g, "key_type", json_string("rsa-2048")); break;
		case 11: json_object_set_new(g, "certificate", json_string("AAAA")); break;
		case 12: json_object_del(json_object_get(g, "wraps"), "puk"); break;
		case 13: json_object_set_new(g, "pin", json_false()); break;
		case 14: json_object_set_new(g, "puk_tries", json_integer(0)); break; /* wraps still there */
		case 15: json_object_set_new(b, "device_key", json_string("AAAA")); break;
		case 16: json_object_set_new(json_object_get(json_object_get(g, "wraps"), "pin"), "iv", json_string("AAAAAAAAAAAAAAA=")); break;
		case 17: json_object_set_new(b, "device_id", json_string("a b")); break;
		case 18: json_object_set_new(g, "chain", json_array()); break;
		case 19: json_object_set_new(g, "profiles", json_string(PROF_SIGN)); break;
		case 20: json_object_set_new(b, "format", json_string("other")); break;
		case 21: json_object_set_new(b, "pin_min", json_integer(9)); break;
		case 22: json_object_set_new(json_array_get(json_object_get(b, "groups"), 1), "certificate",
					     json_incref(json_object_get(g, "certificate"))); break; /* not its key */
		case 23: json_object_set_new(json_object_get(json_object_get(g, "wraps"), "puk"), "ct", json_string("AB==")); break;
		case 24: json_object_set_new(b, "groups", json_object()); break;
		default: goto done;
		}
		store_body(path, b);
		json_decref(b);
		if (open_status(path) != 900)
			fail_msg("hostile edit %d accepted", i);
		write_bytes(path, txt, len);
	}
done:
	json_decref(b);
	/* JSON-level tricks, each with a valid checksum line: a duplicate
	 * member, a NUL inside a string, data after the object, not JSON */
	{
		size_t blen = len - 72 - 1; /* the body without its newline */
		char *t = malloc(len + 64);
		const char *dev = strstr(txt, DEVICE);
		size_t k;

		assert_non_null(t);
		assert_non_null(dev);
		t[0] = '{';
		memcpy(t + 1, "\"version\": 1,", 13);
		memcpy(t + 14, txt + 1, blen - 1);
		store_text(path, t, blen + 13);
		assert_int_equal(open_status(path), 900);

		k = (size_t)(dev - txt);
		memcpy(t, txt, k);
		memcpy(t + k, "\\u0000", 6);
		memcpy(t + k + 6, txt + k, blen - k);
		store_text(path, t, blen + 6);
		assert_int_equal(open_status(path), 900);

		memcpy(t, txt, blen);
		memcpy(t + blen, "{}", 2);
		store_text(path, t, blen + 2);
		assert_int_equal(open_status(path), 900);

		store_text(path, "[1,2,3]", 7);
		assert_int_equal(open_status(path), 900);
		store_text(path, "not json", 8);
		assert_int_equal(open_status(path), 900);
		/* the control: the body unchanged, re-checksummed, is accepted */
		store_text(path, txt, blen);
		assert_int_equal(open_status(path), 0);
		free(t);
	}
	write_bytes(path, txt, len);
	assert_int_equal(open_status(path), 0);
	free(txt);
}

/* A failed write leaves the file as it was and the handle unusable. */
static void
test_failed_write_breaks_handle(void **state)
{
	struct tt_cafx *f = *state;
	char sub[512], sub2[520], path[600], path2[600];
	struct pki_err err = { 0 };
	struct ks *ks;

	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	snprintf(sub2, sizeof(sub2), "%s/sub2", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/dev.ks", sub);
	snprintf(path2, sizeof(path2), "%s/dev.ks", sub2);
	ks = must_create(path, NULL);
	must_add(ks, "g", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, NULL);
	/* the directory disappears from under the handle: even the RIGHT PIN
	 * fails, because the decremented counter must be written before the
	 * PIN is tried (and that write fails) */
	assert_int_equal(rename(sub, sub2), 0);
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, "x", 1, NULL, NULL), 900);
	/* the handle is now unusable */
	assert_int_equal(sign_st(ks, "g", PIN, PKI_SIG_ECDSA, 0, "x", 1, NULL, NULL), 900);
	assert_int_equal(ks_delete_group(ks, "g", &err), -1);
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "reopen"));
	ks_close(ks);
	/* no try was spent: the write that would count it failed first */
	ks = must_open(path2);
	assert_int_equal(info(ks, "g").gi_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	ks_close(ks);
}

/* ---- the real cost ----------------------------------------------------------- */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_default_cost(void **state)
{
	struct tt_cafx *f = *state;
	char path[512];
	struct ks *ks;
	json_t *b;
	double t0, t1;
	struct stat st;

	new_path(f, path, sizeof(path), "default");
	{
		struct pki_err err = { 0 };

		ks = ks_create(path, DEVICE, NULL, &err); /* the defaults */
		assert_non_null(ks);
	}
	must_add(ks, "s", KS_PURPOSE_SIGN, KS_KEY_EC_P256, PIN, PUK, PROF_SIGN);
	ks_close(ks);
	b = load_body(path);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "kdf"), "log2n")), MSSP_KEYSTORE_SCRYPT_LOG2N);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(group_json(b, "s"), "wraps"), "pin"), "log2n")),
			 MSSP_KEYSTORE_SCRYPT_LOG2N);
	assert_int_equal(json_integer_value(json_object_get(b, "max_groups")), MSSP_KEYSTORE_DEFAULT_GROUPS);
	json_decref(b);

	t0 = now_ms();
	ks = must_open(path);
	assert_int_equal(sign_st(ks, "s", PIN, PKI_SIG_ECDSA, 0, "dtbs", 4, NULL, NULL), 0);
	ks_close(ks);
	t1 = now_ms();
	assert_int_equal(stat(path, &st), 0);
	print_message("open + sign at scrypt 2^%d: %.1f ms (file %lld bytes, 1 group)\n",
		      MSSP_KEYSTORE_SCRYPT_LOG2N, t1 - t0, (long long)st.st_size);
}

static int
setup(void **state)
{
	return tt_cafx_setup(state, "test_keystore", "Test keystore CA");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open_lock_mode),
		cmocka_unit_test(test_groups_reopen_and_raw_sign),
		cmocka_unit_test(test_bad_requests_cost_no_try),
		cmocka_unit_test(test_wrong_pin_persisted_and_blocks),
		cmocka_unit_test(test_puk_exhausted_blocks_forever),
		cmocka_unit_test(test_change_pin),
		cmocka_unit_test(test_group_limits_and_specs),
		cmocka_unit_test(test_csr_cert_and_cms),
		cmocka_unit_test(test_no_private_key_in_file),
		cmocka_unit_test(test_blob_swap_fails),
		cmocka_unit_test(test_corrupted_byte_refused),
		cmocka_unit_test(test_truncated_refused),
		cmocka_unit_test(test_hostile_content_refused),
		cmocka_unit_test(test_failed_write_breaks_handle),
		cmocka_unit_test(test_default_cost),
	};

	return cmocka_run_group_tests(tests, setup, tt_cafx_teardown);
}
