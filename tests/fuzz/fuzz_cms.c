/*
 * fuzz_cms.c - libFuzzer target for pki_sig_cms_verify() and
 * pki_sig_decode_input() (bad-inputs S-10: the CMS an untrusted device
 * returns; OpenSSL's fuzz/cms.c is the model).
 *
 * LLVMFuzzerInitialize builds a small EC P-256 CA, a signer certificate, a
 * trust store and a fixed DTBS, and signs that DTBS once (attached) with
 * the library's own signer.  Each input is then used in two ways:
 *   - as is: verified attached, detached and as a signature over the
 *     DTBS's SHA-256 digest, with and without an expected signer, and also
 *     decoded as DER/PEM/base64 text first;
 *   - when it starts with 'P': as up to 16 (offset, xor) patches applied to
 *     the valid signature made at start-up, so the fuzzer also reaches the
 *     checks behind a verifying signature (signer, ESS, chain).
 * The seed corpus (tests/fuzz/corpus/cms/, see docs/internals/sig.md) signs
 * the same DTBS with throwaway keys, so seeds go as far as the chain check
 * (422) in the as-is mode.
 *
 * Oracles (abort()): OpenSSL's error queue is empty after every call (the
 * module's contract: failures never leak errors into unrelated calls); a
 * success has a signer, and that signer is the harness's certificate (no
 * other key chains to the harness CA); a failure has one of the documented
 * statuses.  Results are consumed into a volatile sink so the optimiser
 * keeps the code under test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/sig.h"
#include "util/limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The DTBS every seed signs (keep in step with the corpus generator in
 * docs/internals/sig.md). */
static const unsigned char fz_dtbs[] = "OpenMSSP fuzz DTBS: Do you want to log in to demo.ap? (ref FUZZ01)";
#define FZ_DTBS_LEN (sizeof(fz_dtbs) - 1)
#define FZ_MAX_PATCHES 16

/* Set once in LLVMFuzzerInitialize, read-only afterwards. */
static X509_STORE *fz_store;
static X509 *fz_signer;
static unsigned char fz_digest[32];
static unsigned char *fz_valid;
static size_t fz_valid_len;
static volatile long fz_sink;

static X509 *
fz_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3650 * 86400L) || !X509_set_pubkey(x, key))
		abort();
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (e == NULL || !X509_add_ext(x, e, -1))
		abort();
	X509_EXTENSION_free(e);
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		abort();
	return x;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *ca_key, *key;
	X509 *ca;
	struct pki_err err;
	unsigned int dlen = 0;

	(void)argc;
	(void)argv;
	ca_key = EVP_EC_gen("P-256");
	key = EVP_EC_gen("P-256");
	if (ca_key == NULL || key == NULL)
		abort();
	ca = fz_cert(ca_key, "Fuzz Root", NULL, ca_key, 1);
	fz_signer = fz_cert(key, "Fuzz Signer", ca, ca_key, 0);
	fz_store = X509_STORE_new();
	if (fz_store == NULL || X509_STORE_add_cert(fz_store, ca) != 1)
		abort();
	if (EVP_Digest(fz_dtbs, FZ_DTBS_LEN, fz_digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
		abort();
	if (pki_sig_cms_sign(key, fz_signer, NULL, fz_dtbs, FZ_DTBS_LEN, NID_sha256, 0, &fz_valid, &fz_valid_len,
			     &err) != 0)
		abort();
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return 0;
}

static void
fz_check(int rc, const struct pki_err *err, struct pki_verify_result *res)
{
	if (ERR_peek_error() != 0)
		abort();
	if (rc == 0) {
		if (res->vr_signer == NULL || X509_cmp(res->vr_signer, fz_signer) != 0)
			abort();
		fz_sink += res->vr_md_nid + (long)res->vr_signing_time;
		pki_verify_result_clear(res);
		return;
	}
	if (rc != -1 || res->vr_signer != NULL)
		abort();
	switch (err->status) {
	case 503:
	case 501:
	case 422:
	case 900:
	case 101:
		break;
	default:
		abort();
	}
	fz_sink += err->status + (unsigned char)err->detail[0];
}

static void
fz_verify_all(const uint8_t *data, size_t size)
{
	struct pki_verify_opts o;
	struct pki_verify_result res;
	struct pki_err err;
	int rc;

	memset(&o, 0, sizeof(o));
	o.vo_trust = fz_store;

	/* attached, any signer chaining to the store */
	rc = pki_sig_cms_verify(data, size, fz_dtbs, FZ_DTBS_LEN, &o, &res, &err);
	fz_check(rc, &err, &res);
	/* attached, the registered signer expected, revocation required (no
	 * CRL in the store: a chain that gets that far fails closed) */
	o.vo_expected_signer = fz_signer;
	o.vo_check_revocation = true;
	rc = pki_sig_cms_verify(data, size, fz_dtbs, FZ_DTBS_LEN, &o, &res, &err);
	fz_check(rc, &err, &res);
	o.vo_check_revocation = false;
	/* detached */
	o.vo_flags = PKI_SIG_DETACHED;
	rc = pki_sig_cms_verify(data, size, fz_dtbs, FZ_DTBS_LEN, &o, &res, &err);
	fz_check(rc, &err, &res);
	/* over the digest */
	o.vo_expected_signer = NULL;
	o.vo_flags = PKI_SIG_DIGEST;
	o.vo_md_nid = NID_sha256;
	rc = pki_sig_cms_verify(data, size, fz_digest, sizeof(fz_digest), &o, &res, &err);
	fz_check(rc, &err, &res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *der = NULL, *patched;
	size_t derlen = 0, i, off;
	struct pki_err err;

	if (size > 2 * (size_t)MSSP_PKI_SIG_MAX_CMS + 16)
		return 0;
	if (size > 0 && data[0] == 'P') {
		/* Patch mode: (offset hi, offset lo, xor) triples over the valid
		 * signature; the result must still verify only as the harness
		 * signer, or fail with a documented status. */
		if ((patched = malloc(fz_valid_len)) == NULL)
			abort();
		memcpy(patched, fz_valid, fz_valid_len);
		for (i = 1; i + 3 <= size && i / 3 < FZ_MAX_PATCHES; i += 3) {
			off = ((size_t)data[i] << 8 | data[i + 1]) % fz_valid_len;
			patched[off] ^= data[i + 2];
		}
		fz_verify_all(patched, fz_valid_len);
		free(patched);
		return 0;
	}
	fz_verify_all(data, size);
	/* the transport forms (DER / PEM / base64) in front of the verifier */
	if (pki_sig_decode_input(data, size, &der, &derlen, &err) == 0) {
		if (der == NULL || derlen == 0 || derlen > MSSP_PKI_SIG_MAX_CMS || ERR_peek_error() != 0)
			abort();
		fz_verify_all(der, derlen);
		OPENSSL_free(der);
	} else {
		if (der != NULL || ERR_peek_error() != 0)
			abort();
		fz_sink += err.status;
	}
	return 0;
}
