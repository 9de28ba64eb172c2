/*
 * fuzz_csr.c - libFuzzer target for the CA's CSR gate, pki_ca_csr_check()
 * (bad-inputs K-08, K-11).
 *
 * The input is one DER PKCS#10 request.  Besides memory errors it checks
 * the promises the CA relies on, and abort()s when one breaks:
 *   - accepted input is within MSSP_CA_MAX_CSR_DER and re-encodes to
 *     exactly the same bytes (strict DER);
 *   - an accepted key is returned, a refused one is not, and every refusal
 *     carries status 101 or 407;
 *   - the returned key passes the default crypto policy.
 * Corpus: tests/fuzz/corpus/csr/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "pki/ca.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_policy pol;
	struct pki_err err = { 0 };
	EVP_PKEY *pub = NULL;
	const unsigned char *p = data;
	unsigned char *re = NULL;
	X509_REQ *req;
	int rc, n;

	rc = pki_ca_csr_check(data, size, NULL, &pub, &err);
	if (rc == 0) {
		if (pub == NULL || size > MSSP_CA_MAX_CSR_DER)
			abort();
		pki_policy_default(&pol);
		if (pki_policy_check_key(&pol, pub, &err) != 0)
			abort();
		req = d2i_X509_REQ(NULL, &p, (long)size);
		if (req == NULL || p != data + size)
			abort();
		n = i2d_X509_REQ(req, &re);
		if (n < 0 || (size_t)n != size || memcmp(re, data, size) != 0)
			abort();
		OPENSSL_free(re);
		X509_REQ_free(req);
	} else {
		if (pub != NULL || (err.status != 101 && err.status != 407))
			abort();
	}
	EVP_PKEY_free(pub);
	ERR_clear_error();
	return 0;
}
