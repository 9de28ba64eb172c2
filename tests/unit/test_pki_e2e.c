/*
 * test_pki_e2e.c - the PKI modules together, as registration and signing
 * will use them: a CA is created, a phone generates its keys on the device,
 * the key passes the quality checks, the CA issues its certificate (with a
 * serialNumber) from the phone's CSR, the phone signs a text after its PIN,
 * and the signature is verified by the project's verifier and by
 * `openssl cms -verify -purpose sslclient` - the check the Swisscom scripts
 * make - and by the same extraction those scripts do.  Then the certificate
 * is revoked and the same signature earns 501.
 */
#include "testutil.h"

#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phone/keystore.h"
#include "pki/ca.h"
#include "pki/keycheck.h"
#include "pki/sig.h"

#define DTBS "Do you want to sign the contract 42? \xc3\xa4 \xe2\x82\xac"
#define PIN "246810"
#define PUK "13572468"

struct env {
	char dir[256];
	char path[512];
	struct pki_ca *ca;
	struct ks *ks;
	X509 *cert;
};

static int
run(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void
write_pem_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static int
setup(void **state)
{
	static const char pass[] = "correct horse battery staple";
	struct pki_ca_init_params cp;
	struct ks_params kp;
	struct ks_group_spec gs;
	struct env *e = calloc(1, sizeof(*e));
	struct pki_err err;
	static const char *const profiles[] = { "mss:demo:sign:loa3:app" };

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/mssp-e2e-XXXXXX");
	assert_non_null(mkdtemp(e->dir));

	memset(&cp, 0, sizeof(cp));
	snprintf(e->path, sizeof(e->path), "%s/ca", e->dir);
	cp.ci_dir = e->path;
	cp.ci_alg = PKI_CA_KEY_EC_P256;
	cp.ci_cn = "OpenMSSP Test User CA";
	cp.ci_o = "OpenMSSP";
	cp.ci_c = "FI";
	cp.ci_passphrase = pass;
	cp.ci_passphrase_len = strlen(pass);
	e->ca = pki_ca_init(&cp, &err);
	if (e->ca == NULL)
		fail_msg("CA init: %d %s", err.status, err.detail);

	memset(&kp, 0, sizeof(kp));
	kp.kp_scrypt_log2n = 10; /* test speed; the default is 2^15 */
	snprintf(e->path, sizeof(e->path), "%s/phone.ks", e->dir);
	e->ks = ks_create(e->path, "+35847000001", &kp, &err);
	if (e->ks == NULL)
		fail_msg("keystore: %d %s", err.status, err.detail);
	memset(&gs, 0, sizeof(gs));
	gs.gs_id = "sign1";
	gs.gs_purpose = KS_PURPOSE_SIGN;
	gs.gs_profiles = profiles;
	gs.gs_nprofiles = 1;
	gs.gs_key_type = KS_KEY_EC_P256;
	gs.gs_pin = PIN;
	gs.gs_puk = PUK;
	if (ks_add_group(e->ks, &gs, &err) != 0)
		fail_msg("add group: %d %s", err.status, err.detail);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	char cmd[600];

	X509_free(e->cert);
	ks_close(e->ks);
	pki_ca_free(e->ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	(void)run(cmd);
	free(e);
	return 0;
}

/* Registration: key on the device, quality checks, CSR with proof of
 * possession, certificate from verified identity data, installed back. */
static void
register_key(struct env *e)
{
	struct pki_ca_identity id;
	struct pki_policy pol;
	struct pki_err err;
	enum pki_keycheck_verdict v;
	unsigned char *der = NULL;
	EVP_PKEY *pub;
	X509_REQ *req;
	int len;

	pki_policy_default(&pol);
	pub = ks_public_key(e->ks, "sign1", &err);
	assert_non_null(pub);
	assert_int_equal(pki_keycheck_pkey(pub, &pol, NULL, &v, &err), 0);
	assert_int_equal(v, PKI_KEYCHECK_OK);

	req = ks_csr(e->ks, "sign1", PIN, NULL, &err);
	if (req == NULL)
		fail_msg("csr: %d %s", err.status, err.detail);
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);

	memset(&id, 0, sizeof(id));
	id.id_serial_number = "PNOFI-35847000001";
	id.id_given_name = "Maija";
	id.id_surname = "Meikäläinen";
	id.id_country = "FI";
	if (pki_ca_issue_csr(e->ca, "sign", &id, der, (size_t)len, &pol, 0, &e->cert, &err) != 0)
		fail_msg("issue: %d %s", err.status, err.detail);
	/* the certificate certifies the phone's key */
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(e->cert), pub), 1);
	assert_int_equal(ks_install_cert(e->ks, "sign1", e->cert, pki_ca_chain(e->ca), &err), 0);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(pub);
}

static X509_STORE *
trust_with_crl(struct env *e, bool with_crl)
{
	X509_STORE *st = X509_STORE_new();
	X509_CRL *crl = NULL;
	struct pki_err err;

	assert_non_null(st);
	assert_int_equal(X509_STORE_add_cert(st, pki_ca_cert(e->ca)), 1);
	if (with_crl) {
		assert_int_equal(pki_ca_crl(e->ca, 0, &crl, &err), 0);
		assert_int_equal(X509_STORE_add_crl(st, crl), 1);
		X509_CRL_free(crl);
	}
	return st;
}

static void
test_register_sign_verify(void **state)
{
	struct env *e = *state;
	struct pki_verify_opts vo;
	struct pki_verify_result vr;
	struct pki_err err;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	X509_STORE *st;
	char cmd[2048], path[600], subject[512];
	char *content;
	FILE *p;

	register_key(e);

	/* a wrong PIN signs nothing and is counted */
	assert_int_equal(ks_sign(e->ks, "sign1", "000000", PKI_SIG_CMS, 0, NID_sha256,
				 (const unsigned char *)DTBS, strlen(DTBS), &sig, &siglen, &err), -1);
	assert_int_equal(err.status, KS_STATUS_WRONG_PIN);
	assert_null(sig);

	if (ks_sign(e->ks, "sign1", PIN, PKI_SIG_CMS, 0, NID_sha256, (const unsigned char *)DTBS,
		    strlen(DTBS), &sig, &siglen, &err) != 0)
		fail_msg("sign: %d %s", err.status, err.detail);

	/* the project's verifier: registered signer, content, chain, CRL */
	st = trust_with_crl(e, true);
	memset(&vo, 0, sizeof(vo));
	vo.vo_trust = st;
	vo.vo_expected_signer = e->cert;
	vo.vo_check_revocation = true;
	memset(&vr, 0, sizeof(vr));
	if (pki_sig_cms_verify(sig, siglen, (const unsigned char *)DTBS, strlen(DTBS), &vo, &vr, &err) != 0)
		fail_msg("verify: %d %s", err.status, err.detail);
	assert_int_equal(X509_cmp(vr.vr_signer, e->cert), 0);
	assert_int_equal(vr.vr_md_nid, NID_sha256);
	pki_verify_result_clear(&vr);

	/* other data: 503 */
	assert_int_equal(pki_sig_cms_verify(sig, siglen, (const unsigned char *)"other", 5, &vo, NULL, &err), -1);
	assert_int_equal(err.status, 503);

	/* openssl, as the Swisscom scripts run it */
	snprintf(path, sizeof(path), "%s/sig.der", e->dir);
	write_file(path, sig, siglen);
	snprintf(path, sizeof(path), "%s/ca.pem", e->dir);
	write_pem_cert(path, pki_ca_cert(e->ca));
	snprintf(cmd, sizeof(cmd),
		 "openssl cms -verify -inform der -in '%s/sig.der' -CAfile '%s/ca.pem' "
		 "-purpose sslclient -out '%s/content.txt' 2>/dev/null",
		 e->dir, e->dir, e->dir);
	assert_int_equal(run(cmd), 0);
	snprintf(path, sizeof(path), "%s/content.txt", e->dir);
	content = tu_slurp(path, NULL);
	assert_string_equal(content, DTBS);
	free(content);

	/* the signer is the certificate whose subject has serialNumber=,
	 * and it comes first (laverca-rest reads the first certificate) */
	snprintf(cmd, sizeof(cmd),
		 "openssl pkcs7 -inform der -in '%s/sig.der' -print_certs 2>/dev/null | "
		 "grep -m1 '^subject='", e->dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(subject, sizeof(subject), p));
	pclose(p);
	assert_non_null(strstr(subject, "serialNumber"));
	assert_non_null(strstr(subject, "PNOFI-35847000001"));

	/* revoked after the fact: the same signature is 501 */
	{
		char serial[128];
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(e->cert), NULL);
		char *hex = BN_bn2hex(bn);
		X509_STORE *st2;

		snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		if (pki_ca_revoke(e->ca, serial, 1, 0, &err) != 0)
			fail_msg("revoke: %d %s", err.status, err.detail);
		st2 = trust_with_crl(e, true);
		vo.vo_trust = st2;
		assert_int_equal(pki_sig_cms_verify(sig, siglen, (const unsigned char *)DTBS,
						    strlen(DTBS), &vo, NULL, &err), -1);
		assert_int_equal(err.status, 501);
		X509_STORE_free(st2);
	}
	X509_STORE_free(st);
	OPENSSL_free(sig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_sign_verify, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
