/*
 * test_keycheck.c - key-quality checks (src/pki/keycheck, bad-inputs
 * K-01..K-07).  Every bad key is built here at run time from its definition
 * (no key files are committed); the openssl command line cross-checks the
 * fingerprint and produces the certificate, CSR and encrypted-key inputs.
 */
#include "testutil.h"

#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "pki/keycheck.h"
#include "util/limits.h"

/* Shared by all tests: one generated RSA-2048 key (keygen is the slow part)
 * and a temporary directory. */
struct fx {
	EVP_PKEY *rsa;	/* good RSA-2048 key pair */
	BIGNUM *n, *e;	/* its public numbers     */
	EVP_PKEY *p256; /* good P-256 key pair    */
	char dir[64];
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_keycheck_XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->rsa = EVP_RSA_gen(2048);
	f->p256 = EVP_EC_gen("P-256");
	if (f->rsa == NULL || f->p256 == NULL || !EVP_PKEY_get_bn_param(f->rsa, OSSL_PKEY_PARAM_RSA_N, &f->n) ||
	    !EVP_PKEY_get_bn_param(f->rsa, OSSL_PKEY_PARAM_RSA_E, &f->e))
		return -1;
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	EVP_PKEY_free(f->rsa);
	EVP_PKEY_free(f->p256);
	BN_free(f->n);
	BN_free(f->e);
	free(f);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* A public RSA (or RSA-PSS) key from bare numbers (all a public key
 * needs). */
static EVP_PKEY *
rsa_typed_from_ne(const char *type, const BIGNUM *n, const BIGNUM *e)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *k = NULL;

	assert_non_null(bld);
	assert_non_null(ctx);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static EVP_PKEY *
rsa_from_ne(const BIGNUM *n, const BIGNUM *e)
{
	return rsa_typed_from_ne("RSA", n, e);
}

/* Run the check and assert the verdict, the status it maps to and the
 * return value agree; returns the verdict. */
static enum pki_keycheck_verdict
check(EVP_PKEY *k, const struct pki_policy *pol, const struct pki_keycheck_sets *sets, struct pki_err *err)
{
	enum pki_keycheck_verdict v = (enum pki_keycheck_verdict)-1;
	int rc;

	memset(err, 0, sizeof(*err));
	rc = pki_keycheck_pkey(k, pol, sets, &v, err);
	if (v == PKI_KEYCHECK_OK) {
		assert_int_equal(rc, 0);
	} else {
		assert_int_equal(rc, -1);
		assert_true(err->detail[0] != '\0');
		if (v == PKI_KEYCHECK_INTERNAL)
			assert_int_equal(err->status, 900);
		else
			assert_int_equal(err->status, 407);
	}
	assert_int_equal(ERR_peek_error(), 0);
	return v;
}

static enum pki_keycheck_verdict
check_ne(const BIGNUM *n, const BIGNUM *e, struct pki_err *err)
{
	EVP_PKEY *k = rsa_from_ne(n, e);
	enum pki_keycheck_verdict v = check(k, NULL, NULL, err);

	EVP_PKEY_free(k);
	return v;
}

static BIGNUM *
prime(int bits)
{
	BIGNUM *p = BN_new();

	assert_non_null(p);
	assert_int_equal(BN_generate_prime_ex(p, bits, 0, NULL, NULL, NULL), 1);
	return p;
}

/* Smallest prime >= x (x odd or even). */
static BIGNUM *
next_prime(const BIGNUM *x)
{
	BIGNUM *p = BN_dup(x);
	int i;

	assert_non_null(p);
	if (!BN_is_odd(p))
		assert_int_equal(BN_add_word(p, 1), 1);
	for (i = 0; i < 100000; i++) {
		if (BN_check_prime(p, NULL, NULL) == 1)
			return p;
		assert_int_equal(BN_add_word(p, 2), 1);
	}
	fail_msg("no prime found");
	return NULL;
}

/* The primorial of the primes <= 167, computed here from scratch. */
static BIGNUM *
primorial167(void)
{
	BIGNUM *m = BN_new();
	unsigned r, d;

	assert_non_null(m);
	assert_int_equal(BN_one(m), 1);
	for (r = 2; r <= 167; r++) {
		for (d = 2; d * d <= r && r % d != 0; d++)
			;
		if (d * d > r)
			assert_int_equal(BN_mul_word(m, r), 1);
	}
	return m;
}

static void
run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void
write_pubkey_pem(const char *path, EVP_PKEY *k)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(PEM_write_PUBKEY(fp, k), 1);
	assert_int_equal(fclose(fp), 0);
}

static void
write_privkey_pem(const char *path, EVP_PKEY *k, bool traditional)
{
	BIO *b = BIO_new_file(path, "w");

	assert_non_null(b);
	if (traditional)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(BIO_free(b), 1);
}

static void
fp_of(EVP_PKEY *k, unsigned char fp[PKI_KEYCHECK_FP_LEN])
{
	struct pki_err err;

	assert_int_equal(pki_keycheck_fingerprint(k, fp, &err), 0);
}

/* ---- verdict names --------------------------------------------------- */

static void
test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_OK), "ok");
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_RSA_ROCA), "rsa-roca");
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_RSA_FERMAT), "rsa-fermat");
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_EC_POINT), "ec-point");
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_DUPLICATE), "duplicate");
	assert_string_equal(pki_keycheck_verdict_name(PKI_KEYCHECK_DUPLICATE + 1), "?");
	assert_string_equal(pki_keycheck_verdict_name((enum pki_keycheck_verdict)-5), "?");
}

/* ---- ROCA ------------------------------------------------------------ */

/* crocs-muni/roca detect.py `prints`, in decimal, as published. */
static const char *const detect_py_prints[PKI_KEYCHECK_ROCA_PRIMES] = {
	"6", "30", "126", "1026", "5658", "107286", "199410", "8388606", "536870910", "2147483646",
	"67109890", "2199023255550", "8796093022206", "140737488355326", "5310023542746834",
	"576460752303423486", "1455791217086302986", "147573952589676412926", "20052041432995567486",
	"6041388139249378920330", "207530445072488465666", "9671406556917033397649406",
	"618970019642690137449562110", "79228162521181866724264247298",
	"2535301200456458802993406410750", "1760368345969468176824550810518",
	"50079290986288516948354744811034", "473022961816146413042658758988474",
	"10384593717069655257060992658440190", "144390480366845522447407333004847678774",
	"2722258935367507707706996859454145691646", "174224571863520493293247799005065324265470",
	"696898287454081973172991196020261297061886", "713623846352979940529142984724747568191373310",
	"1800793591454480341970779146165214289059119882",
	"126304807362733370595828809000324029340048915994",
	"11692013098647223345629478661730264157247460343806",
	"187072209578355573530071658587684226515959365500926",
};

static void
test_roca_table_definition(void **state)
{
	const struct pki_keycheck_roca_print *tab;
	uint64_t mask[3];
	BIGNUM *want = NULL, *got = BN_new(), *w = BN_new();
	unsigned r, x, d, expect_prime = 3;
	size_t n, i, j;
	(void)state;

	tab = pki_keycheck_roca_table(&n);
	assert_int_equal(n, 38);
	for (i = 0; i < n; i++) {
		/* the primes are exactly the odd primes up to 167, in order */
		for (;; expect_prime += 2) {
			for (d = 3; d * d <= expect_prime && expect_prime % d != 0; d += 2)
				;
			if (d * d > expect_prime)
				break;
		}
		r = tab[i].rp_prime;
		assert_int_equal(r, expect_prime);
		expect_prime += 2;
		/* bit x set iff x in <65537 mod r>: walk the subgroup */
		memset(mask, 0, sizeof(mask));
		x = 1;
		do {
			mask[x / 64] |= UINT64_C(1) << (x % 64);
			x = (unsigned)((uint64_t)x * 65537u % r);
		} while (x != 1);
		for (j = 0; j < 3; j++)
			assert_true(tab[i].rp_mask[j] == mask[j]);
		/* and the same number as detect.py's */
		assert_true(BN_dec2bn(&want, detect_py_prints[i]) > 0);
		BN_zero(got);
		for (j = 3; j-- > 0;) {
			assert_int_equal(BN_lshift(got, got, 64), 1);
			assert_int_equal(BN_set_word(w, (BN_ULONG)(tab[i].rp_mask[j] >> 32)), 1);
			assert_int_equal(BN_lshift(w, w, 32), 1);
			assert_int_equal(BN_add_word(w, (BN_ULONG)(tab[i].rp_mask[j] & 0xffffffffu)), 1);
			assert_int_equal(BN_add(got, got, w), 1);
		}
		assert_int_equal(BN_cmp(got, want), 0);
	}
	assert_int_equal(expect_prime, 169); /* the last one was 167 */
	BN_free(want);
	BN_free(got);
	BN_free(w);
}

/* The numbers of the bad-inputs.md box: M is badkeys' constant, ord is the
 * exact order of 65537 mod M, and these prime powers make it up. */
static void
test_roca_constants(void **state)
{
	static const unsigned pp[] = { 16, 81, 25, 7, 11, 13, 17, 23, 29, 37, 41, 53, 83 };
	static const unsigned primes_of_ord[] = { 2, 3, 5, 7, 11, 13, 17, 23, 29, 37, 41, 53, 83 };
	BIGNUM *m = primorial167(), *badkeys = NULL, *ord = NULL, *g = BN_new(), *x = BN_new(), *t = BN_new(),
	       *prod = BN_new();
	BN_CTX *ctx = BN_CTX_new();
	size_t i;
	(void)state;

	assert_true(BN_hex2bn(&badkeys, "924cba6ae99dfa084537facc54948df0c23da044d8cabe0edd75bc6") > 0);
	assert_int_equal(BN_cmp(m, badkeys), 0);
	assert_true(BN_dec2bn(&ord, "2454106387091158800") > 0);
	assert_int_equal(BN_one(prod), 1);
	for (i = 0; i < sizeof(pp) / sizeof(pp[0]); i++)
		assert_int_equal(BN_mul_word(prod, pp[i]), 1);
	assert_int_equal(BN_cmp(prod, ord), 0);
	assert_int_equal(BN_set_word(g, 65537), 1);
	assert_int_equal(BN_mod_exp(x, g, ord, m, ctx), 1);
	assert_true(BN_is_one(x));
	for (i = 0; i < sizeof(primes_of_ord) / sizeof(primes_of_ord[0]); i++) {
		assert_non_null(BN_copy(t, ord));
		assert_true(BN_div_word(t, primes_of_ord[i]) == 0);
		assert_int_equal(BN_mod_exp(x, g, t, m, ctx), 1);
		assert_false(BN_is_one(x)); /* so ord is the exact order */
	}
	/* 65537 itself and its powers are in the subgroup: Test B says so */
	assert_int_equal(pki_keycheck_roca_dlog(g, NULL), 1);
	assert_true(pki_keycheck_roca_moduli(g));
	BN_free(m);
	BN_free(badkeys);
	BN_free(ord);
	BN_free(g);
	BN_free(x);
	BN_free(t);
	BN_free(prod);
	BN_CTX_free(ctx);
}

/* h mod M from residues h mod r (CRT over the primes <= 167). */
static BIGNUM *
crt167(const unsigned *res, BN_CTX *ctx)
{
	BIGNUM *m = primorial167(), *h = BN_new(), *mi = BN_new(), *inv = BN_new(), *t = BN_new(), *rb = BN_new();
	unsigned r, d;
	size_t i = 0;

	BN_zero(h);
	for (r = 2; r <= 167; r++) {
		for (d = 2; d * d <= r && r % d != 0; d++)
			;
		if (d * d <= r)
			continue;
		assert_non_null(BN_copy(mi, m));
		assert_true(BN_div_word(mi, r) == 0);
		assert_int_equal(BN_set_word(rb, r), 1);
		assert_non_null(BN_mod_inverse(inv, mi, rb, ctx));
		assert_int_equal(BN_mul(t, mi, inv, ctx), 1);
		assert_int_equal(BN_mul_word(t, res[i++]), 1);
		assert_int_equal(BN_add(h, h, t), 1);
	}
	assert_int_equal(i, 39);
	assert_int_equal(BN_nnmod(h, h, m, ctx), 1);
	BN_free(m);
	BN_free(mi);
	BN_free(inv);
	BN_free(t);
	BN_free(rb);
	return h;
}

/* Test A is implied by Test B but not the other way: a modulus whose
 * residues each lie in <65537 mod r>, with discrete logs that do not agree,
 * passes A and fails B.  A 65537-power passes both, a random modulus
 * neither. */
static void
test_roca_tests_differ(void **state)
{
	unsigned res[39];
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *m = primorial167(), *h, *t = BN_new(), *n = BN_new(), *g = BN_new(), *a = BN_new();
	struct fx *f = *state;
	size_t i;

	/* mod 3: 65537 = 2 has order 2, take log 1 (residue 2); mod 5: 65537
	 * = 2 has order 4, take log 2 (residue 4): log = 1 (mod 2) and
	 * log = 2 (mod 4) contradict.  Everything else residue 1. */
	for (i = 0; i < 39; i++)
		res[i] = 1;
	res[1] = 2; /* r = 3 */
	res[2] = 4; /* r = 5 */
	h = crt167(res, ctx);
	assert_int_equal(BN_rand(t, 1800, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
	assert_int_equal(BN_mul(n, t, m, ctx), 1);
	assert_int_equal(BN_add(n, n, h), 1);
	assert_true(pki_keycheck_roca_moduli(n));
	assert_int_equal(pki_keycheck_roca_dlog(n, ctx), 0);

	/* consistent logs: 65537^a mod M + t*M */
	assert_int_equal(BN_set_word(g, 65537), 1);
	assert_int_equal(BN_set_word(a, 123456789), 1);
	assert_int_equal(BN_mod_exp(h, g, a, m, ctx), 1);
	assert_int_equal(BN_mul(n, t, m, ctx), 1);
	assert_int_equal(BN_add(n, n, h), 1);
	assert_true(pki_keycheck_roca_moduli(n));
	assert_int_equal(pki_keycheck_roca_dlog(n, ctx), 1);
	assert_int_equal(pki_keycheck_roca_dlog(n, NULL), 1);

	/* a genuine OpenSSL-generated modulus: neither test */
	assert_false(pki_keycheck_roca_moduli(f->n));
	assert_int_equal(pki_keycheck_roca_dlog(f->n, ctx), 0);
	BN_free(h);
	BN_free(m);
	BN_free(t);
	BN_free(n);
	BN_free(g);
	BN_free(a);
	BN_CTX_free(ctx);
}

/* A prime of Infineon's form p = k*M + (65537^a mod M). */
static BIGNUM *
roca_prime(BN_CTX *ctx)
{
	BIGNUM *m = primorial167(), *p = BN_new(), *k = BN_new(), *a = BN_new(), *g = BN_new(), *gm = BN_new();
	int i;

	assert_int_equal(BN_set_word(g, 65537), 1);
	for (i = 0; i < 20000; i++) {
		/* 806 + 220 bits: p has 1025 or 1026 bits, so N = pq >= 2048 */
		assert_int_equal(BN_rand(k, 806, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
		assert_int_equal(BN_rand(a, 61, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), 1);
		assert_int_equal(BN_mod_exp(gm, g, a, m, ctx), 1);
		assert_int_equal(BN_mul(p, k, m, ctx), 1);
		assert_int_equal(BN_add(p, p, gm), 1);
		if (BN_check_prime(p, ctx, NULL) == 1)
			break;
	}
	assert_true(i < 20000);
	BN_free(m);
	BN_free(k);
	BN_free(a);
	BN_free(g);
	BN_free(gm);
	return p;
}

static void
test_rsa_roca_key(void **state)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = roca_prime(ctx), *q = roca_prime(ctx), *n = BN_new();
	struct fx *f = *state;
	struct pki_err err;

	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_true(BN_num_bits(n) >= 2048);
	assert_true(pki_keycheck_roca_moduli(n));
	assert_int_equal(pki_keycheck_roca_dlog(n, ctx), 1);
	/* every earlier check passes, ROCA refuses */
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_ROCA);
	assert_non_null(strstr(err.detail, "ROCA"));
	BN_free(p);
	BN_free(q);
	BN_free(n);
	BN_CTX_free(ctx);
}

/* ---- RSA ------------------------------------------------------------- */

static void
test_rsa_good(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	EVP_PKEY *pub = rsa_from_ne(f->n, f->e);
	enum pki_keycheck_verdict v;

	/* private and public forms both pass */
	assert_int_equal(check(f->rsa, NULL, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(check(pub, NULL, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(pki_keycheck_rsa_numbers(f->n, f->e, NULL, &v, &err), 0);
	assert_int_equal(v, PKI_KEYCHECK_OK);
	EVP_PKEY_free(pub);
}

/* RSA-PSS keys (id-RSASSA-PSS SubjectPublicKeyInfo) get the same checks. */
static void
test_rsa_pss(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	enum pki_keycheck_verdict v;
	unsigned char *der = NULL;
	BIGNUM *e3 = BN_new();
	EVP_PKEY *k = rsa_typed_from_ne("RSA-PSS", f->n, f->e), *k2;
	int len;

	assert_true(EVP_PKEY_is_a(k, "RSA-PSS"));
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_OK);
	len = i2d_PUBKEY(k, &der);
	assert_true(len > 0);
	k2 = pki_keycheck_load(der, (size_t)len, &v, &err);
	assert_non_null(k2);
	assert_int_equal(check(k2, NULL, NULL, &err), PKI_KEYCHECK_OK);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	assert_int_equal(BN_set_word(e3, 3), 1);
	k = rsa_typed_from_ne("RSA-PSS", f->n, e3);
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_RSA_EXPONENT);
	EVP_PKEY_free(k);
	BN_free(e3);
	OPENSSL_free(der);
}

static void
test_rsa_exponent(void **state)
{
	static const BN_ULONG bad[] = { 1, 3, 17, 65535, 65538 };
	struct fx *f = *state;
	struct pki_err err;
	BIGNUM *e = BN_new();
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(BN_set_word(e, bad[i]), 1);
		assert_int_equal(check_ne(f->n, e, &err), PKI_KEYCHECK_RSA_EXPONENT);
		assert_int_equal(err.status, 407);
	}
	assert_int_equal(BN_set_word(e, 65539), 1);
	assert_int_equal(check_ne(f->n, e, &err), PKI_KEYCHECK_OK);
	assert_int_equal(BN_set_word(e, 3), 1);
	check_ne(f->n, e, &err);
	assert_string_equal(err.detail, "RSA public exponent is below 65537");
	assert_int_equal(BN_set_word(e, 65538), 1);
	check_ne(f->n, e, &err);
	assert_string_equal(err.detail, "RSA public exponent is even");
	/* 2^256 - 1 is the largest allowed, 2^256 + 1 is refused */
	BN_zero(e);
	assert_int_equal(BN_set_bit(e, 256), 1);
	assert_int_equal(BN_sub_word(e, 1), 1);
	assert_int_equal(check_ne(f->n, e, &err), PKI_KEYCHECK_OK);
	assert_int_equal(BN_add_word(e, 2), 1);
	assert_int_equal(check_ne(f->n, e, &err), PKI_KEYCHECK_RSA_EXPONENT);
	assert_string_equal(err.detail, "RSA public exponent is above 2^256-1");
	assert_int_equal(BN_set_word(e, 65537), 1);
	assert_int_equal(check_ne(f->n, e, &err), PKI_KEYCHECK_OK);
	BN_free(e);
}

static void
test_rsa_size(void **state)
{
	struct fx *f = *state;
	struct pki_policy pol;
	struct pki_err err;
	EVP_PKEY *k1024 = EVP_RSA_gen(1024);

	assert_non_null(k1024);
	assert_int_equal(check(k1024, NULL, NULL, &err), PKI_KEYCHECK_RSA_SIZE);
	assert_non_null(strstr(err.detail, "1024"));
	/* a long-lived-key policy refuses 2048 (ASVS 11.2.3) */
	pki_policy_default(&pol);
	assert_int_equal(pki_policy_parse(&pol, "rsa_min_bits=3072", &err), 0);
	assert_int_equal(check(f->rsa, &pol, NULL, &err), PKI_KEYCHECK_RSA_SIZE);
	pki_policy_default(&pol);
	assert_int_equal(pki_policy_parse(&pol, "rsa_min_bits=1024 rsa_max_bits=2048", &err), 0);
	assert_int_equal(check(f->rsa, &pol, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(check(k1024, &pol, NULL, &err), PKI_KEYCHECK_OK);
	EVP_PKEY_free(k1024);
}

static void
test_rsa_even_and_small_factors(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	BIGNUM *n = BN_new();
	BN_CTX *ctx = BN_CTX_new();

	assert_non_null(BN_copy(n, f->n));
	assert_int_equal(BN_add_word(n, 1), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_EVEN_MODULUS);
	assert_string_equal(err.detail, "RSA modulus is even");

	/* 701 * (a modulus with no small factor), 751 is the largest prime
	 * below the bound, 757 the smallest above it (passes: EJBCA's bound) */
	assert_non_null(BN_copy(n, f->n));
	assert_int_equal(BN_mul_word(n, 701), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_SMALL_FACTOR);
	assert_string_equal(err.detail, "RSA modulus has a prime factor below 752");
	assert_non_null(BN_copy(n, f->n));
	assert_int_equal(BN_mul_word(n, 751), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_SMALL_FACTOR);
	assert_non_null(BN_copy(n, f->n));
	assert_int_equal(BN_mul_word(n, 3), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_SMALL_FACTOR);
	assert_non_null(BN_copy(n, f->n));
	assert_int_equal(BN_mul_word(n, 757), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_OK);
	BN_free(n);
	BN_CTX_free(ctx);
}

static void
test_rsa_perfect_power(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n = BN_new(), *k = BN_new(), *p, *q;

	/* p^2 (1024-bit prime: a 2048-bit "modulus") */
	p = prime(1024);
	assert_int_equal(BN_sqr(n, p, ctx), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_PERFECT_POWER);
	assert_string_equal(err.detail, "RSA modulus is a perfect square");
	BN_free(p);
	/* p^3, and (pq)^5 with p, q primes */
	p = prime(700);
	assert_int_equal(BN_set_word(k, 3), 1);
	assert_int_equal(BN_exp(n, p, k, ctx), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_PERFECT_POWER);
	assert_string_equal(err.detail, "RSA modulus is a perfect power");
	BN_free(p);
	p = prime(210);
	q = prime(220);
	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_int_equal(BN_set_word(k, 5), 1);
	assert_int_equal(BN_exp(n, n, k, ctx), 1);
	assert_true(BN_num_bits(n) >= 2048);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_PERFECT_POWER);
	BN_free(p);
	BN_free(q);
	/* the largest exponent possible: 757 is the smallest base with no
	 * factor below 752, 757^223 has 2133 bits */
	p = BN_new();
	assert_int_equal(BN_set_word(p, 757), 1);
	assert_int_equal(BN_set_word(k, 223), 1);
	assert_int_equal(BN_exp(n, p, k, ctx), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_PERFECT_POWER);
	/* 757^223 * 761 is no perfect power and has no factor below 752: the
	 * checks accept it (this is where EJBCA's bound stops) */
	assert_int_equal(BN_mul_word(n, 761), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_OK);
	BN_free(p);
	BN_free(n);
	BN_free(k);
	BN_CTX_free(ctx);
}

static void
test_rsa_prime_modulus(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	BIGNUM *p = BN_get_rfc3526_prime_2048(NULL);

	assert_non_null(p);
	assert_int_equal(BN_num_bits(p), 2048);
	assert_int_equal(check_ne(p, f->e, &err), PKI_KEYCHECK_RSA_PRIME_MODULUS);
	assert_string_equal(err.detail, "RSA modulus is prime");
	BN_free(p);
}

/* Fermat with 100 rounds finds p, q with |p - q| up to about
 * sqrt(800 * sqrt(N)): rounds ~ (q - p)^2 / (8 sqrt(N)).  For a 2048-bit
 * N: 2^516 takes ~42 rounds (refused), 2^518 takes ~675 (passes). */
static void
test_rsa_fermat(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = prime(1024), *d = BN_new(), *n = BN_new(), *q;

	BN_zero(d);
	assert_int_equal(BN_set_bit(d, 516), 1);
	assert_int_equal(BN_add(d, d, p), 1);
	q = next_prime(d);
	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_int_equal(BN_num_bits(n), 2048);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_FERMAT);
	assert_non_null(strstr(err.detail, "Fermat"));
	BN_free(q);
	/* the next prime after p: found in round 0 */
	assert_non_null(BN_copy(d, p));
	assert_int_equal(BN_add_word(d, 2), 1);
	q = next_prime(d);
	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_RSA_FERMAT);
	BN_free(q);
	/* beyond 100 rounds */
	BN_zero(d);
	assert_int_equal(BN_set_bit(d, 518), 1);
	assert_int_equal(BN_add(d, d, p), 1);
	q = next_prime(d);
	assert_int_equal(BN_mul(n, p, q, ctx), 1);
	assert_int_equal(check_ne(n, f->e, &err), PKI_KEYCHECK_OK);
	BN_free(q);
	BN_free(p);
	BN_free(d);
	BN_free(n);
	BN_CTX_free(ctx);
}

/* ---- EC -------------------------------------------------------------- */

static void
test_ec_good(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	EVP_PKEY *k384 = EVP_EC_gen("P-384"), *k521 = EVP_EC_gen("P-521");

	assert_int_equal(check(f->p256, NULL, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(check(k384, NULL, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(check(k521, NULL, NULL, &err), PKI_KEYCHECK_OK);
	EVP_PKEY_free(k384);
	EVP_PKEY_free(k521);
}

static void
test_ec_curve(void **state)
{
	struct fx *f = *state;
	struct pki_policy pol;
	struct pki_err err;
	EVP_PKEY *k1 = EVP_EC_gen("secp256k1"), *b = EVP_EC_gen("brainpoolP256r1");

	assert_non_null(k1);
	assert_int_equal(check(k1, NULL, NULL, &err), PKI_KEYCHECK_EC_CURVE);
	assert_int_equal(check(b, NULL, NULL, &err), PKI_KEYCHECK_EC_CURVE);
	pki_policy_default(&pol);
	assert_int_equal(pki_policy_parse(&pol, "curves=P-384", &err), 0);
	assert_int_equal(check(f->p256, &pol, NULL, &err), PKI_KEYCHECK_EC_CURVE);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(b);
}

/* The P-256 SubjectPublicKeyInfo header, up to the 0x04 of an uncompressed
 * point: SEQ { SEQ { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 ... }. */
static const unsigned char p256_spki_head[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
	0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};

static void
test_ec_point(void **state)
{
	struct fx *f = *state;
	unsigned char spki[sizeof(p256_spki_head) + 64], inf[64];
	const unsigned char *p;
	BIGNUM *x = NULL, *y = NULL;
	struct pki_err err;
	enum pki_keycheck_verdict v;
	EVP_PKEY *k;
	size_t n;

	/* the genuine point, by hand: parses, passes */
	assert_int_equal(EVP_PKEY_get_bn_param(f->p256, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(f->p256, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
	memcpy(spki, p256_spki_head, sizeof(p256_spki_head));
	assert_int_equal(BN_bn2binpad(x, spki + sizeof(p256_spki_head), 32), 32);
	assert_int_equal(BN_bn2binpad(y, spki + sizeof(p256_spki_head) + 32, 32), 32);
	k = pki_keycheck_load(spki, sizeof(spki), &v, &err);
	assert_non_null(k);
	assert_int_equal(v, PKI_KEYCHECK_OK);
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_OK);
	EVP_PKEY_free(k);

	/* y + 1: not on the curve; OpenSSL refuses to decode it, we say why */
	assert_int_equal(BN_add_word(y, 1), 1);
	assert_int_equal(BN_bn2binpad(y, spki + sizeof(p256_spki_head) + 32, 32), 32);
	memset(&err, 0, sizeof(err));
	k = pki_keycheck_load(spki, sizeof(spki), &v, &err);
	assert_null(k);
	assert_int_equal(v, PKI_KEYCHECK_EC_POINT);
	assert_int_equal(err.status, 407);
	assert_string_equal(err.detail, "EC public point is not on the curve");
	assert_int_equal(ERR_peek_error(), 0);

	/* the point at infinity (one 0x00 byte): OpenSSL decodes it, and
	 * validation refuses it, both when checking a key and when loading */
	n = 0;
	inf[n++] = 0x30;
	inf[n++] = 0x19;
	memcpy(inf + n, p256_spki_head + 2, 21);
	n += 21;
	inf[n++] = 0x03;
	inf[n++] = 0x02;
	inf[n++] = 0x00;
	inf[n++] = 0x00;
	p = inf;
	k = d2i_PUBKEY(NULL, &p, (long)n);
	assert_non_null(k);
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_EC_POINT);
	assert_non_null(strstr(err.detail, "infinity"));
	EVP_PKEY_free(k);
	k = pki_keycheck_load(inf, n, &v, &err);
	assert_null(k);
	assert_int_equal(v, PKI_KEYCHECK_EC_POINT);
	assert_int_equal(err.status, 407);
	assert_non_null(strstr(err.detail, "infinity"));
	assert_int_equal(ERR_peek_error(), 0);
	EVP_PKEY_free(k);
	BN_free(x);
	BN_free(y);
}

static void
test_ec_explicit(void **state)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM ps[3];
	EVP_PKEY *k = NULL, *k2;
	unsigned char *der = NULL;
	struct pki_err err;
	enum pki_keycheck_verdict v;
	int len;
	(void)state;

	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0);
	ps[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
						 (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0);
	ps[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_CTX_set_params(c, ps), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_EC_EXPLICIT);
	/* the same through its DER: explicit parameters are reported as such,
	 * not as a non-canonical encoding */
	len = i2d_PUBKEY(k, &der);
	assert_true(len > 200);
	k2 = pki_keycheck_load(der, (size_t)len, &v, &err);
	assert_non_null(k2);
	assert_int_equal(check(k2, NULL, NULL, &err), PKI_KEYCHECK_EC_EXPLICIT);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_CTX_free(c);
}

static void
test_key_types(void **state)
{
	struct fx *f = *state;
	struct pki_policy pol;
	struct pki_err err;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");

	assert_int_equal(check(ed, NULL, NULL, &err), PKI_KEYCHECK_KEY_TYPE);
	assert_string_equal(err.detail, "key type ED25519 is not allowed by the crypto policy");
	assert_int_equal(check(x, NULL, NULL, &err), PKI_KEYCHECK_KEY_TYPE);
	pki_policy_default(&pol);
	assert_int_equal(pki_policy_parse(&pol, "rsa=off", &err), 0);
	assert_int_equal(check(f->rsa, &pol, NULL, &err), PKI_KEYCHECK_KEY_TYPE);
	assert_int_equal(check(f->p256, &pol, NULL, &err), PKI_KEYCHECK_OK);
	assert_int_equal(pki_policy_parse(&pol, "rsa=on ec=off", &err), 0);
	assert_int_equal(check(f->p256, &pol, NULL, &err), PKI_KEYCHECK_KEY_TYPE);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(x);
}

/* ---- fingerprints and sets -------------------------------------------- */

static void
test_fingerprint_openssl(void **state)
{
	struct fx *f = *state;
	unsigned char fp[PKI_KEYCHECK_FP_LEN], back[PKI_KEYCHECK_FP_LEN];
	char hex[PKI_KEYCHECK_FP_HEX + 1], path[128], cmd[512], *out;
	EVP_PKEY *keys[2] = { f->rsa, f->p256 };
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/fp%zu.pem", f->dir, i);
		write_pubkey_pem(path, keys[i]);
		snprintf(cmd, sizeof(cmd),
			 "openssl pkey -pubin -in %s -outform DER | openssl dgst -sha256 -r > %s.sha", path,
			 path);
		run(cmd);
		snprintf(cmd, sizeof(cmd), "%s.sha", path);
		out = tu_slurp(cmd, NULL);
		fp_of(keys[i], fp);
		pki_keycheck_fp_hex(fp, hex);
		assert_int_equal(strncmp(out, hex, PKI_KEYCHECK_FP_HEX), 0);
		assert_int_equal(pki_keycheck_fp_parse(out, PKI_KEYCHECK_FP_HEX, back), 0);
		assert_memory_equal(back, fp, sizeof(fp));
		free(out);
	}
	assert_int_equal(pki_keycheck_fp_parse(hex, PKI_KEYCHECK_FP_HEX - 1, back), -1);
	hex[10] = 'g';
	assert_int_equal(pki_keycheck_fp_parse(hex, PKI_KEYCHECK_FP_HEX, back), -1);
}

static void
test_duplicate_and_compromised(void **state)
{
	struct fx *f = *state;
	struct pki_keycheck_known reg, bad;
	struct pki_keycheck_sets sets = { &bad, &reg };
	unsigned char fp[PKI_KEYCHECK_FP_LEN], other[PKI_KEYCHECK_FP_LEN];
	struct pki_err err;
	EVP_PKEY *pub, *compressed;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len, i;

	pki_keycheck_known_init(&reg);
	pki_keycheck_known_init(&bad);
	/* some unrelated entries, and one twice */
	for (i = 0; i < 100; i++) {
		memset(other, i, sizeof(other));
		assert_int_equal(pki_keycheck_known_add(&reg, other, &err), 0);
		assert_int_equal(pki_keycheck_known_add(&reg, other, &err), 0);
	}
	pki_keycheck_known_seal(&reg);
	assert_int_equal(pki_keycheck_known_count(&reg), 100);
	assert_int_equal(check(f->p256, NULL, &sets, &err), PKI_KEYCHECK_OK);

	/* register the P-256 key: a copy of it is a duplicate (K-07) */
	fp_of(f->p256, fp);
	assert_int_equal(pki_keycheck_known_add(&reg, fp, &err), 0);
	/* unsealed: fail closed */
	assert_int_equal(check(f->p256, NULL, &sets, &err), PKI_KEYCHECK_INTERNAL);
	pki_keycheck_known_seal(&reg);
	assert_int_equal(pki_keycheck_known_contains(&reg, fp), 1);
	len = i2d_PUBKEY(f->p256, &der);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	assert_int_equal(check(pub, NULL, &sets, &err), PKI_KEYCHECK_DUPLICATE);
	assert_string_equal(err.detail, "public key is already registered");
	/* the compressed spelling of the same point is the same key */
	compressed = EVP_PKEY_dup(pub);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
							OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
			 1);
	OPENSSL_free(der);
	der = NULL;
	assert_int_equal(i2d_PUBKEY(compressed, &der), 59);
	assert_int_equal(check(compressed, NULL, &sets, &err), PKI_KEYCHECK_DUPLICATE);
	/* RSA keys are not in the set */
	assert_int_equal(check(f->rsa, NULL, &sets, &err), PKI_KEYCHECK_OK);
	/* compromised (K-06) is reported before duplicate */
	assert_int_equal(pki_keycheck_known_add(&bad, fp, &err), 0);
	pki_keycheck_known_seal(&bad);
	assert_int_equal(check(pub, NULL, &sets, &err), PKI_KEYCHECK_COMPROMISED);
	/* a refused key is refused before any set is consulted */
	sets.ks_compromised = NULL;
	assert_int_equal(check(pub, NULL, &sets, &err), PKI_KEYCHECK_DUPLICATE);
	pki_keycheck_known_free(&reg);
	pki_keycheck_known_free(&bad);
	pki_keycheck_known_free(NULL);
	assert_int_equal(pki_keycheck_known_contains(&reg, fp), 0);
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(compressed);
}

static void
test_known_file(void **state)
{
	struct fx *f = *state;
	struct pki_keycheck_known k;
	struct pki_err err;
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	char path[128], big[MSSP_KEYCHECK_MAX_LINE + 100];
	const char *good = "# registered keys\n"
			   "\n"
			   "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff  alice.pem\n"
			   "   ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\r\n"
			   "0000000000000000000000000000000000000000000000000000000000000000\tx\n"
			   "0000000000000000000000000000000000000000000000000000000000000000"; /* no \n */

	snprintf(path, sizeof(path), "%s/known.txt", f->dir);
	write_file(path, good, strlen(good));
	pki_keycheck_known_init(&k);
	assert_int_equal(pki_keycheck_known_load(&k, path, &err), 0);
	assert_int_equal(pki_keycheck_known_count(&k), 3);
	assert_int_equal(pki_keycheck_fp_parse("00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF",
					       64, fp),
			 0);
	assert_int_equal(pki_keycheck_known_contains(&k, fp), 1);
	memset(fp, 0xff, sizeof(fp));
	assert_int_equal(pki_keycheck_known_contains(&k, fp), 1);
	memset(fp, 0xfe, sizeof(fp));
	assert_int_equal(pki_keycheck_known_contains(&k, fp), 0);
	pki_keycheck_known_free(&k);

	/* a bad line: 101, its number in the detail, not its text */
	write_file(path, "# x\nnot-a-fingerprint\n", 22);
	assert_int_equal(pki_keycheck_known_load(&k, path, &err), -1);
	assert_int_equal(err.status, 101);
	assert_string_equal(err.detail, "fingerprint file line 2 is not a SHA-256 fingerprint");
	pki_keycheck_known_free(&k);
	/* 63 digits */
	write_file(path, "000000000000000000000000000000000000000000000000000000000000000\n", 64);
	assert_int_equal(pki_keycheck_known_load(&k, path, &err), -1);
	assert_int_equal(err.status, 101);
	pki_keycheck_known_free(&k);
	/* an over-long line */
	memset(big, 'a', sizeof(big));
	write_file(path, big, sizeof(big));
	assert_int_equal(pki_keycheck_known_load(&k, path, &err), -1);
	assert_int_equal(err.status, 101);
	assert_non_null(strstr(err.detail, "longer than"));
	pki_keycheck_known_free(&k);
	/* missing file */
	snprintf(path, sizeof(path), "%s/nonexistent", f->dir);
	assert_int_equal(pki_keycheck_known_load(&k, path, &err), -1);
	assert_int_equal(err.status, 900);
	pki_keycheck_known_free(&k);
}

/* ---- loading ---------------------------------------------------------- */

static EVP_PKEY *
load_path(const char *dir, const char *name, enum pki_keycheck_verdict *v, struct pki_err *err)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(err, 0, sizeof(*err));
	return pki_keycheck_load_file(path, v, err);
}

/* Every supported container gives the same key (same fingerprint). */
static void
test_load_formats(void **state)
{
	static const char *const same_rsa[] = { "pub.pem", "pub.der", "priv8.pem", "privtrad.pem", "priv8.der",
						"cert.pem", "cert.der", "csr.pem", "csr.der", "rsapub.pem" };
	struct fx *f = *state;
	unsigned char want[PKI_KEYCHECK_FP_LEN], got[PKI_KEYCHECK_FP_LEN];
	char path[128], cmd[1024];
	struct pki_err err;
	enum pki_keycheck_verdict v;
	EVP_PKEY *k;
	BIGNUM *d = NULL;
	size_t i;

	snprintf(path, sizeof(path), "%s/pub.pem", f->dir);
	write_pubkey_pem(path, f->rsa);
	snprintf(path, sizeof(path), "%s/priv8.pem", f->dir);
	write_privkey_pem(path, f->rsa, false);
	snprintf(path, sizeof(path), "%s/privtrad.pem", f->dir);
	write_privkey_pem(path, f->rsa, true);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl pkey -pubin -in pub.pem -outform DER -out pub.der"
		 " && openssl pkey -in priv8.pem -outform DER -out priv8.der"
		 " && openssl rsa -pubin -in pub.pem -RSAPublicKey_out -out rsapub.pem 2>/dev/null"
		 " && openssl req -new -x509 -key priv8.pem -subj /CN=keycheck -days 1 -out cert.pem"
		 " && openssl x509 -in cert.pem -outform DER -out cert.der"
		 " && openssl req -new -key priv8.pem -subj /CN=keycheck -out csr.pem"
		 " && openssl req -in csr.pem -outform DER -out csr.der"
		 " && openssl pkcs8 -topk8 -in priv8.pem -passout pass:keycheck-test -out enc.pem"
		 " && openssl ecparam -name prime256v1 -genkey -out ecparam.pem"
		 " && printf 'garbage' > garbage.bin && cat pub.der > trailing.der && printf 'x' >> trailing.der"
		 " && : > empty.pem",
		 f->dir);
	run(cmd);
	fp_of(f->rsa, want);
	for (i = 0; i < sizeof(same_rsa) / sizeof(same_rsa[0]); i++) {
		k = load_path(f->dir, same_rsa[i], &v, &err);
		if (k == NULL)
			fail_msg("%s: %s %s", same_rsa[i], pki_keycheck_verdict_name(v), err.detail);
		assert_int_equal(v, PKI_KEYCHECK_OK);
		fp_of(k, got);
		assert_memory_equal(got, want, sizeof(want));
		/* only the public part is kept */
		assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_D, &d), 0);
		assert_null(d);
		ERR_clear_error();
		EVP_PKEY_free(k);
	}
	/* "EC PARAMETERS" then "EC PRIVATE KEY": the parameters are skipped */
	k = load_path(f->dir, "ecparam.pem", &v, &err);
	assert_non_null(k);
	assert_int_equal(check(k, NULL, NULL, &err), PKI_KEYCHECK_OK);
	EVP_PKEY_free(k);

	/* refusals */
	assert_null(load_path(f->dir, "enc.pem", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_int_equal(err.status, 101);
	assert_non_null(strstr(err.detail, "encrypted"));
	assert_null(load_path(f->dir, "garbage.bin", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_null(load_path(f->dir, "trailing.der", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_null(load_path(f->dir, "empty.pem", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_null(load_path(f->dir, "nonexistent", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_UNREADABLE);
	assert_int_equal(err.status, 900);
	assert_null(load_path(f->dir, ".", &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_UNREADABLE);
	assert_int_equal(ERR_peek_error(), 0);
}

/* One key, two DER spellings: the non-canonical one is refused, so that a
 * key cannot be registered twice under two fingerprints. */
static void
test_load_noncanonical(void **state)
{
	struct fx *f = *state;
	unsigned char *der = NULL, *alt;
	struct pki_err err;
	enum pki_keycheck_verdict v;
	EVP_PKEY *k;
	int len;

	len = i2d_PUBKEY(f->rsa, &der);
	assert_int_equal(len, 294);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 0x82); /* 30 82 01 22 */
	k = pki_keycheck_load(der, (size_t)len, &v, &err);
	assert_non_null(k);
	EVP_PKEY_free(k);
	/* the outer length in 3 bytes instead of 2: valid BER, not DER */
	alt = malloc((size_t)len + 1);
	assert_non_null(alt);
	alt[0] = 0x30;
	alt[1] = 0x83;
	alt[2] = 0x00;
	memcpy(alt + 3, der + 2, (size_t)len - 2);
	k = pki_keycheck_load(alt, (size_t)len + 1, &v, &err);
	assert_null(k);
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_int_equal(err.status, 101);
	/* an oversized input is refused before parsing */
	assert_null(pki_keycheck_load(der, MSSP_KEYCHECK_MAX_INPUT + 1, &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	assert_null(pki_keycheck_load(der, 0, &v, &err));
	assert_int_equal(v, PKI_KEYCHECK_MALFORMED);
	free(alt);
	OPENSSL_free(der);
}

static void
test_x509_and_req(void **state)
{
	struct fx *f = *state;
	char path[128], cmd[512];
	struct pki_err err;
	enum pki_keycheck_verdict v;
	X509 *cert;
	X509_REQ *req;
	FILE *fp;
	EVP_PKEY *k1 = EVP_EC_gen("secp256k1");

	snprintf(path, sizeof(path), "%s/k1.pem", f->dir);
	write_privkey_pem(path, k1, false);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -new -x509 -key k1.pem -subj /CN=k1 -days 1 -out k1cert.pem"
		 " && openssl req -new -key k1.pem -subj /CN=k1 -out k1csr.pem",
		 f->dir);
	run(cmd);
	snprintf(path, sizeof(path), "%s/k1cert.pem", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cert);
	assert_int_equal(pki_keycheck_x509(cert, NULL, NULL, &v, &err), -1);
	assert_int_equal(v, PKI_KEYCHECK_EC_CURVE);
	assert_int_equal(err.status, 407);
	X509_free(cert);
	snprintf(path, sizeof(path), "%s/k1csr.pem", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	req = PEM_read_X509_REQ(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(req);
	assert_int_equal(pki_keycheck_req(req, NULL, NULL, &v, &err), -1);
	assert_int_equal(v, PKI_KEYCHECK_EC_CURVE);
	X509_REQ_free(req);
	/* the RSA certificate and CSR written by test_load_formats pass */
	snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cert);
	assert_int_equal(pki_keycheck_x509(cert, NULL, NULL, &v, &err), 0);
	assert_int_equal(v, PKI_KEYCHECK_OK);
	X509_free(cert);
	snprintf(path, sizeof(path), "%s/csr.pem", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	req = PEM_read_X509_REQ(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(req);
	assert_int_equal(pki_keycheck_req(req, NULL, NULL, &v, &err), 0);
	X509_REQ_free(req);
	EVP_PKEY_free(k1);
}

/* ---- shared primes (K-05, small sets) ------------------------------- */

static void
test_shared_primes(void **state)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p[5], *m[6];
	const BIGNUM *mods[6];
	unsigned char flagged[6];
	struct pki_err err;
	size_t i, nf = 99;
	(void)state;

	for (i = 0; i < 5; i++)
		p[i] = prime(256);
	for (i = 0; i < 6; i++)
		m[i] = BN_new();
	/* m0 = p0 p1 and m1 = p0 p2 share p0; m2 = m3 = p3 p4 (a duplicate);
	 * m4 = 5 p4 shares p4 with both; m5 = 7 * 11 shares nothing */
	assert_int_equal(BN_mul(m[0], p[0], p[1], ctx), 1);
	assert_int_equal(BN_mul(m[1], p[0], p[2], ctx), 1);
	assert_int_equal(BN_mul(m[2], p[3], p[4], ctx), 1);
	assert_int_equal(BN_mul(m[3], p[3], p[4], ctx), 1);
	assert_non_null(BN_copy(m[4], p[4]));
	assert_int_equal(BN_mul_word(m[4], 5), 1);
	assert_int_equal(BN_set_word(m[5], 77), 1);
	for (i = 0; i < 6; i++)
		mods[i] = m[i];
	assert_int_equal(pki_keycheck_shared_primes(mods, 6, flagged, &nf, &err), 0);
	assert_int_equal(nf, 5);
	assert_int_equal(flagged[0], 1);
	assert_int_equal(flagged[1], 1);
	assert_int_equal(flagged[2], 1);
	assert_int_equal(flagged[3], 1);
	assert_int_equal(flagged[4], 1);
	assert_int_equal(flagged[5], 0);
	/* without the sharing ones: nothing */
	mods[0] = m[0];
	mods[1] = m[2];
	mods[2] = m[5];
	assert_int_equal(pki_keycheck_shared_primes(mods, 3, flagged, &nf, &err), 0);
	assert_int_equal(nf, 0);
	assert_int_equal(pki_keycheck_shared_primes(mods, 1, flagged, &nf, &err), 0);
	assert_int_equal(nf, 0);
	assert_int_equal(pki_keycheck_shared_primes(mods, 0, NULL, &nf, &err), 0);
	assert_int_equal(nf, 0);
	/* bad input */
	mods[1] = BN_value_one();
	assert_int_equal(pki_keycheck_shared_primes(mods, 2, flagged, &nf, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_keycheck_shared_primes(mods, MSSP_KEYCHECK_MAX_BATCH + 1, flagged, &nf, &err), -1);
	assert_int_equal(err.status, 101);
	for (i = 0; i < 5; i++)
		BN_free(p[i]);
	for (i = 0; i < 6; i++)
		BN_free(m[i]);
	BN_CTX_free(ctx);
}

/* ---- cost ------------------------------------------------------------ */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The checks run online at key registration: a 2048-bit key must cost a
 * few milliseconds (the bound here is loose for sanitizer builds). */
static void
test_cost(void **state)
{
	struct fx *f = *state;
	struct pki_err err;
	double t0, ms;
	int i;

	t0 = now_ms();
	for (i = 0; i < 10; i++)
		assert_int_equal(check(f->rsa, NULL, NULL, &err), PKI_KEYCHECK_OK);
	ms = (now_ms() - t0) / 10;
	print_message("RSA-2048 checks: %.2f ms per key\n", ms);
	assert_true(ms < 200.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_roca_table_definition),
		cmocka_unit_test(test_roca_constants),
		cmocka_unit_test(test_roca_tests_differ),
		cmocka_unit_test(test_rsa_roca_key),
		cmocka_unit_test(test_rsa_good),
		cmocka_unit_test(test_rsa_pss),
		cmocka_unit_test(test_rsa_exponent),
		cmocka_unit_test(test_rsa_size),
		cmocka_unit_test(test_rsa_even_and_small_factors),
		cmocka_unit_test(test_rsa_perfect_power),
		cmocka_unit_test(test_rsa_prime_modulus),
		cmocka_unit_test(test_rsa_fermat),
		cmocka_unit_test(test_ec_good),
		cmocka_unit_test(test_ec_curve),
		cmocka_unit_test(test_ec_point),
		cmocka_unit_test(test_ec_explicit),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_fingerprint_openssl),
		cmocka_unit_test(test_duplicate_and_compromised),
		cmocka_unit_test(test_known_file),
		cmocka_unit_test(test_load_formats),
		cmocka_unit_test(test_load_noncanonical),
		cmocka_unit_test(test_x509_and_req),
		cmocka_unit_test(test_shared_primes),
		cmocka_unit_test(test_cost),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
