/*
 * fuzz_keycheck.c - libFuzzer target for src/pki/keycheck.c.
 *
 * The input is one key file as msspctl keycheck would read it: PEM or DER
 * of a SubjectPublicKeyInfo, RSAPublicKey, certificate, CSR or private key.
 * Besides memory errors it abort()s when an invariant breaks:
 *   - a failed load has a failure verdict, a status among 101/407/900, a
 *     printable detail, and is never "unreadable" (there was no file);
 *   - a loaded key can always be fingerprinted, and re-loading its DER
 *     SubjectPublicKeyInfo gives the same fingerprint (one key, one
 *     fingerprint: K-07 depends on it);
 *   - the check's return value agrees with its verdict and the verdict's
 *     status (407, or 900 for internal);
 *   - a key that passes is refused as a duplicate once its own fingerprint
 *     is registered, and as compromised when listed so.
 * Corpus: tests/fuzz/corpus/keycheck/ (public keys and certificates only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "pki/keycheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_err(const struct pki_err *err)
{
	const unsigned char *s = (const unsigned char *)err->detail;

	if (err->status != 101 && err->status != 407 && err->status != 900)
		abort();
	if (*s == '\0')
		abort();
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN], fp2[PKI_KEYCHECK_FP_LEN];
	struct pki_keycheck_known known;
	struct pki_keycheck_sets sets = { NULL, NULL };
	struct pki_policy pol;
	struct pki_err err;
	enum pki_keycheck_verdict v, v2;
	EVP_PKEY *key, *again;
	unsigned char *der = NULL;
	int len, rc;

	/* RSA up to 4096 bits: the prime test of an 8192-bit modulus would
	 * take the fuzzer's whole time budget without finding more bugs. */
	pki_policy_default(&pol);
	pol.pp_rsa_max_bits = 4096;

	memset(&err, 0, sizeof(err));
	key = pki_keycheck_load(data, size, &v, &err);
	if (key == NULL) {
		if (v == PKI_KEYCHECK_OK || v == PKI_KEYCHECK_UNREADABLE)
			abort();
		check_err(&err);
		return 0;
	}
	if (v != PKI_KEYCHECK_OK || ERR_peek_error() != 0)
		abort();
	if (pki_keycheck_fingerprint(key, fp, &err) != 0)
		abort();
	len = i2d_PUBKEY(key, &der);
	if (len <= 0)
		abort();
	again = pki_keycheck_load(der, (size_t)len, &v2, &err);
	if (again == NULL || pki_keycheck_fingerprint(again, fp2, &err) != 0 ||
	    memcmp(fp, fp2, sizeof(fp)) != 0)
		abort();
	EVP_PKEY_free(again);
	OPENSSL_free(der);

	memset(&err, 0, sizeof(err));
	rc = pki_keycheck_pkey(key, &pol, NULL, &v, &err);
	if (strcmp(pki_keycheck_verdict_name(v), "?") == 0)
		abort();
	if (rc == 0) {
		if (v != PKI_KEYCHECK_OK)
			abort();
		pki_keycheck_known_init(&known);
		if (pki_keycheck_known_add(&known, fp, &err) != 0)
			abort();
		pki_keycheck_known_seal(&known);
		sets.ks_registered = &known;
		if (pki_keycheck_pkey(key, &pol, &sets, &v2, &err) != -1 || v2 != PKI_KEYCHECK_DUPLICATE)
			abort();
		sets.ks_compromised = &known;
		if (pki_keycheck_pkey(key, &pol, &sets, &v2, &err) != -1 || v2 != PKI_KEYCHECK_COMPROMISED)
			abort();
		pki_keycheck_known_free(&known);
	} else {
		if (v == PKI_KEYCHECK_OK || v == PKI_KEYCHECK_MALFORMED || v == PKI_KEYCHECK_UNREADABLE)
			abort();
		check_err(&err);
		if (err.status != (v == PKI_KEYCHECK_INTERNAL ? 900 : 407))
			abort();
	}
	EVP_PKEY_free(key);
	ERR_clear_error();
	return 0;
}
