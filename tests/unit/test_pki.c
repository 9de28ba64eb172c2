/* test_pki.c - the pki layer's crypto policy and error helpers (P-27). */
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/obj_mac.h>

#include "pki/pki.h"

static void
test_default_policy(void **state)
{
	struct pki_policy p;
	struct pki_err err;
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	EVP_PKEY *k1 = EVP_EC_gen("secp256k1");
	(void)state;

	pki_policy_default(&p);
	assert_int_equal(pki_policy_check_digest(&p, NID_sha256, &err), 0);
	assert_int_equal(pki_policy_check_digest(&p, NID_sha1, &err), -1);
	assert_int_equal(err.status, 503);
	assert_int_equal(pki_policy_check_digest(&p, NID_md5, &err), -1);
	assert_int_equal(pki_policy_check_key(&p, ec, &err), 0);
	assert_int_equal(pki_policy_check_key(&p, k1, &err), -1);
	assert_int_equal(pki_policy_check_key(&p, NULL, &err), -1);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(k1);
}

static void
test_rsa_sizes(void **state)
{
	struct pki_policy p;
	struct pki_err err;
	EVP_PKEY *r1024 = EVP_RSA_gen(1024), *r2048 = EVP_RSA_gen(2048);
	(void)state;

	pki_policy_default(&p);
	assert_int_equal(pki_policy_check_key(&p, r1024, &err), -1);
	assert_int_equal(pki_policy_check_key(&p, r2048, &err), 0);
	assert_int_equal(pki_policy_parse(&p, "rsa_min_bits=3072", &err), 0);
	assert_int_equal(pki_policy_check_key(&p, r2048, &err), -1);
	assert_int_equal(pki_policy_parse(&p, "rsa=off rsa_min_bits=2048", &err), 0);
	assert_int_equal(pki_policy_check_key(&p, r2048, &err), -1);
	EVP_PKEY_free(r1024);
	EVP_PKEY_free(r2048);
}

/* Turning an algorithm off rejects it; a typo never weakens the policy. */
static void
test_parse(void **state)
{
	struct pki_policy p, before;
	struct pki_err err;
	EVP_PKEY *ec384 = EVP_EC_gen("P-384");
	(void)state;

	pki_policy_default(&p);
	assert_int_equal(pki_policy_parse(&p, "digests=sha384,SHA512 curves=P-256", &err), 0);
	assert_int_equal(pki_policy_check_digest(&p, NID_sha256, &err), -1);
	assert_int_equal(pki_policy_check_digest(&p, NID_sha384, &err), 0);
	assert_int_equal(pki_policy_check_key(&p, ec384, &err), -1);
	before = p;
	assert_int_equal(pki_policy_parse(&p, "digest=sha1", &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_policy_parse(&p, "digests=sha256,md5", &err), -1);
	assert_int_equal(pki_policy_parse(&p, "rsa_min_bits=abc", &err), -1);
	assert_int_equal(pki_policy_parse(&p, "rsa_min_bits=9000 rsa_max_bits=8192", &err), -1);
	assert_int_equal(pki_policy_parse(&p, "ec=maybe", &err), -1);
	assert_int_equal(pki_policy_parse(&p, "novalue", &err), -1);
	assert_memory_equal(&p, &before, sizeof(p)); /* failed parses change nothing */
	assert_int_equal(pki_policy_parse(&p, "  \n", &err), 0);
	EVP_PKEY_free(ec384);
}

static void
test_err(void **state)
{
	struct pki_err err;
	(void)state;

	assert_int_equal(pki_err_set(&err, 422, "cert %s", "expired"), -1);
	assert_int_equal(err.status, 422);
	assert_string_equal(err.detail, "cert expired");
	assert_int_equal(pki_err_set(NULL, 1, "x"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_rsa_sizes),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
