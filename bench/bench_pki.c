/*
 * bench_pki.c - throughput of src/pki/sig for RSA-2048 and ECDSA P-256:
 * our CMS signing (attached, CAdES-BES attributes, ~100-byte DTBS) and
 * strict verification (DER check, attributes, signature, chain against a
 * trust store), and our raw signing and verification (no chain).
 *
 * The baseline is OpenSSL's own primitive, measured by `openssl speed` in
 * the same run (scripts/bench.sh runs it and passes the four figures on the
 * command line): what is left of the ratio is the cost of CMS encoding,
 * parsing and the checks.
 *
 * Usage: bench_pki [SECONDS_PER_FIGURE [RSA_SIGN RSA_VERIFY EC_SIGN EC_VERIFY]]
 *        (default 2 s; baseline figures in operations per second)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h> /* EVP_RSA_gen */
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/sig.h"

static const unsigned char dtbs[] =
	"Do you want to log in to demo.ap? Reference Q7X2P9, 2026-11-22 10:00 UTC, OpenMSSP benchmark.";
#define DTBS_LEN (sizeof(dtbs) - 1)

struct bench_key {
	const char *name;
	EVP_PKEY *key;
	X509 *cert;
	enum pki_sig_format raw_fmt;
	unsigned char *cms;
	size_t cms_len;
	unsigned char *raw;
	size_t raw_len;
};

/* The key under test and the trust store; set up in main, read by ops. */
static struct bench_key *cur;
static X509_STORE *store;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static X509 *
mkcert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 365 * 86400L) || !X509_set_pubkey(x, key))
		exit(1);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (e == NULL || !X509_add_ext(x, e, -1))
		exit(1);
	X509_EXTENSION_free(e);
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		exit(1);
	return x;
}

typedef int (*op_fn)(void);

static int
op_cms_sign(void)
{
	struct pki_err err;
	unsigned char *out = NULL;
	size_t len;
	int rc = pki_sig_cms_sign(cur->key, cur->cert, NULL, dtbs, DTBS_LEN, NID_sha256, 0, &out, &len, &err);

	OPENSSL_free(out);
	return rc;
}

static int
op_cms_verify(void)
{
	struct pki_verify_opts o;
	struct pki_err err;

	memset(&o, 0, sizeof(o));
	o.vo_trust = store;
	o.vo_expected_signer = cur->cert;
	return pki_sig_cms_verify(cur->cms, cur->cms_len, dtbs, DTBS_LEN, &o, NULL, &err);
}

static int
op_raw_sign(void)
{
	struct pki_err err;
	unsigned char *out = NULL;
	size_t len;
	int rc = pki_sig_raw_sign(cur->key, cur->raw_fmt, NID_sha256, dtbs, DTBS_LEN, 0, &out, &len, &err);

	OPENSSL_free(out);
	return rc;
}

static int
op_raw_verify(void)
{
	struct pki_err err;

	return pki_sig_raw_verify(cur->cert, cur->raw_fmt, NID_sha256, dtbs, DTBS_LEN, cur->raw, cur->raw_len, NULL,
				  &err);
}

/* Operations per second over at least `seconds`, in batches of 8 (an RSA
 * signature takes about a millisecond). */
static double
rate(op_fn fn, double seconds)
{
	double start = now(), t;
	long n = 0;

	do {
		for (int i = 0; i < 8; i++) {
			if (fn() != 0) {
				fprintf(stderr, "bench_pki: operation failed\n");
				exit(1);
			}
		}
		n += 8;
		t = now() - start;
	} while (t < seconds);
	return (double)n / t;
}

static void
line(const char *key, const char *what, double ours, const char *base_name, double base)
{
	if (base > 0)
		printf("%-12s %-30s %9.0f op/s   baseline %-28s %9.0f op/s   ratio %5.2f\n", key, what, ours, base_name,
		       base, ours / base);
	else
		printf("%-12s %-30s %9.0f op/s\n", key, what, ours);
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	double base[4] = { 0, 0, 0, 0 }; /* rsa sign, rsa verify, ec sign, ec verify */
	struct bench_key keys[2] = {
		{ .name = "RSA-2048", .raw_fmt = PKI_SIG_PKCS1 },
		{ .name = "ECDSA P-256", .raw_fmt = PKI_SIG_ECDSA },
	};
	struct pki_err err;
	EVP_PKEY *ca_key;
	X509 *ca;
	char bs[64], bv[64];
	int i;

	if (secs <= 0)
		secs = 2.0;
	if (argc == 6)
		for (i = 0; i < 4; i++)
			base[i] = atof(argv[2 + i]);
	if ((ca_key = EVP_EC_gen("P-256")) == NULL)
		return 1;
	ca = mkcert(ca_key, "Bench Root", NULL, ca_key, 1);
	if ((store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, ca) != 1)
		return 1;
	keys[0].key = EVP_RSA_gen(2048);
	keys[1].key = EVP_EC_gen("P-256");
	for (i = 0; i < 2; i++) {
		if (keys[i].key == NULL)
			return 1;
		keys[i].cert = mkcert(keys[i].key, keys[i].name, ca, ca_key, 0);
		if (pki_sig_cms_sign(keys[i].key, keys[i].cert, NULL, dtbs, DTBS_LEN, NID_sha256, 0, &keys[i].cms,
				     &keys[i].cms_len, &err) != 0 ||
		    pki_sig_raw_sign(keys[i].key, keys[i].raw_fmt, NID_sha256, dtbs, DTBS_LEN, 0, &keys[i].raw,
				     &keys[i].raw_len, &err) != 0) {
			fprintf(stderr, "bench_pki: setup failed: %s\n", err.detail);
			return 1;
		}
	}

	printf("signatures: SHA-256, DTBS %zu bytes, CMS %zu (RSA) / %zu (EC) bytes DER; %.1f s per figure\n",
	       DTBS_LEN, keys[0].cms_len, keys[1].cms_len, secs);
	for (i = 0; i < 2; i++) {
		cur = &keys[i];
		snprintf(bs, sizeof(bs), "openssl speed %s sign", i == 0 ? "rsa2048" : "ecdsap256");
		snprintf(bv, sizeof(bv), "openssl speed %s verify", i == 0 ? "rsa2048" : "ecdsap256");
		line(cur->name, "CMS sign (attached, CAdES)", rate(op_cms_sign, secs), bs, base[2 * i]);
		line(cur->name, "CMS verify (strict + chain)", rate(op_cms_verify, secs), bv, base[2 * i + 1]);
		line(cur->name, i == 0 ? "raw PKCS#1 v1.5 sign" : "raw ECDSA sign", rate(op_raw_sign, secs), bs,
		     base[2 * i]);
		line(cur->name, i == 0 ? "raw PKCS#1 v1.5 verify" : "raw ECDSA verify", rate(op_raw_verify, secs), bv,
		     base[2 * i + 1]);
	}
	for (i = 0; i < 2; i++) {
		EVP_PKEY_free(keys[i].key);
		X509_free(keys[i].cert);
		OPENSSL_free(keys[i].cms);
		OPENSSL_free(keys[i].raw);
	}
	X509_STORE_free(store);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return 0;
}
