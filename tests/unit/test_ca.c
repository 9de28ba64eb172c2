/*
 * test_ca.c - the built-in CA: directories, issuance, CSR checks (K-08,
 * K-10, K-11), revocation, CRL, OCSP, the key file, the database, and the
 * same flow with the CA key in SoftHSM2 through the pkcs11 engine.
 *
 * Independent cross-checks call the openssl command line.  Keys are made
 * at run time in a mkdtemp() directory that is removed at the end.
 */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki/ca.h"
#include "util/limits.h"

#define PASS	  "correct horse battery staple"
#define ROOT_PASS "root pass phrase 0123"

struct fx {
	char tmp[256];
	char root_dir[300], iss_dir[300];
	struct pki_ca *root;
	struct pki_ca *iss;
	EVP_PKEY *user; /* an EC "phone" key */
};

/* ---- helpers ---------------------------------------------------------- */

static void
path(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command line (test paths only), return its exit status. */
static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void
write_cert(const char *file, X509 *x)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void
write_bytes(const char *file, const unsigned char *d, size_t n)
{
	FILE *f = fopen(file, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static struct pki_ca *
init_ca(const char *dir, enum pki_ca_keyalg alg, const char *cn, struct pki_ca *issuer,
	const char *pass)
{
	struct pki_ca_init_params p = { 0 };
	struct pki_err err = { 0 };
	struct pki_ca *ca;

	p.ci_dir = dir;
	p.ci_alg = alg;
	p.ci_cn = cn;
	p.ci_o = "OpenMSSP Test";
	p.ci_c = "CH";
	p.ci_passphrase = pass;
	p.ci_passphrase_len = strlen(pass);
	p.ci_issuer = issuer;
	ca = pki_ca_init(&p, &err);
	if (ca == NULL)
		fail_msg("pki_ca_init: %d %s", err.status, err.detail);
	return ca;
}

static const struct pki_ca_identity ident = {
	.id_serial_number = "PNOCH-4179000001",
	.id_common_name = "Anna Muster",
	.id_given_name = "Anna",
	.id_surname = "Muster",
	.id_country = "CH",
};

static X509 *
issue(struct pki_ca *ca, const char *profile, EVP_PKEY *key)
{
	struct pki_err err = { 0 };
	X509 *x = NULL;

	if (pki_ca_issue(ca, profile, &ident, key, NULL, 0, &x, &err) != 0)
		fail_msg("pki_ca_issue: %d %s", err.status, err.detail);
	assert_non_null(x);
	return x;
}

static char *
serial_hex(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = BN_bn2hex(bn);

	BN_free(bn);
	return h; /* OPENSSL_free */
}

/* A PKCS#10 request signed with `md` that asks for everything K-10 lists. */
static unsigned char *
make_csr(EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	static const char *const want[][2] = {
		{ "basicConstraints", "critical,CA:TRUE" },
		{ "keyUsage", "critical,keyCertSign,cRLSign" },
		{ "extendedKeyUsage", "anyExtendedKeyUsage" },
		{ "subjectAltName", "email:evil@example.org" },
	};
	size_t i;
	int n_der;

	assert_non_null(r);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)"Evil CA", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(r, n), 1);
	assert_int_equal(X509_REQ_set_pubkey(r, key), 1);
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, NULL, NULL, r, NULL, 0);
	for (i = 0; i < 4; i++) {
		X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &ctx, want[i][0], want[i][1]);

		assert_non_null(e);
		sk_X509_EXTENSION_push(exts, e);
	}
	assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
	assert_true(X509_REQ_sign(r, key, md) > 0);
	n_der = i2d_X509_REQ(r, &der);
	assert_true(n_der > 0);
	*len = (size_t)n_der;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(r);
	return der;
}

static void
assert_ext_set(X509 *x, const int *nids, int n)
{
	int i;

	assert_int_equal(X509_get_ext_count(x), n);
	for (i = 0; i < n; i++)
		assert_true(X509_get_ext_by_NID(x, nids[i], -1) >= 0);
}

/* ---- fixture ---------------------------------------------------------- */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_ca.XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	snprintf(f->root_dir, sizeof(f->root_dir), "%s/root", f->tmp);
	snprintf(f->iss_dir, sizeof(f->iss_dir), "%s/issuing", f->tmp);
	f->user = EVP_EC_gen("P-256");
	*state = f;
	return f->user ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	pki_ca_free(f->iss);
	pki_ca_free(f->root);
	EVP_PKEY_free(f->user);
	nftw(f->tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

/* Root and issuing CA (EC): extensions, files, modes, the issuing CA
 * recorded in the root's database, openssl verify of the CA chain. */
static void
test_init_root_and_issuing(void **state)
{
	struct fx *f = *state;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	struct pki_ca_entry e;
	struct pki_err err = { 0 };
	char p[512], p2[512];
	struct stat st;
	char *hex;
	static const int ca_nids[] = { NID_basic_constraints, NID_key_usage,
				       NID_subject_key_identifier, NID_authority_key_identifier };
	int crit;

	f->root = init_ca(f->root_dir, PKI_CA_KEY_EC_P256, "OpenMSSP Test Root", NULL, ROOT_PASS);
	f->iss = init_ca(f->iss_dir, PKI_CA_KEY_EC_P256, "OpenMSSP Test Issuing", f->root, PASS);

	/* root: CA:TRUE critical, no pathlen; KU keyCertSign+cRLSign critical */
	assert_ext_set(pki_ca_cert(f->root), ca_nids, 4);
	bc = X509_get_ext_d2i(pki_ca_cert(f->root), NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(pki_ca_cert(f->root), NID_key_usage, &crit, NULL);
	assert_int_equal(crit, 1);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 5)); /* keyCertSign */
	assert_true(ASN1_BIT_STRING_get_bit(ku, 6)); /* cRLSign */
	assert_false(ASN1_BIT_STRING_get_bit(ku, 0));
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_check_issued(pki_ca_cert(f->root), pki_ca_cert(f->root)), X509_V_OK);

	/* issuing: pathlen 0, issued by the root */
	assert_ext_set(pki_ca_cert(f->iss), ca_nids, 4);
	bc = X509_get_ext_d2i(pki_ca_cert(f->iss), NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_issued(pki_ca_cert(f->root), pki_ca_cert(f->iss)), X509_V_OK);
	assert_int_equal(sk_X509_num(pki_ca_chain(f->iss)), 1);

	/* the root recorded the issuing CA certificate */
	hex = serial_hex(pki_ca_cert(f->iss));
	assert_int_equal(pki_ca_count(f->root), 1);
	assert_int_equal(pki_ca_lookup(f->root, hex, &e, &err), 0);
	assert_string_equal(e.ce_profile, "ca");
	assert_false(e.ce_revoked);
	OPENSSL_free(hex);

	/* files and modes */
	path(p, sizeof(p), f->iss_dir, "ca.key");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->iss_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	path(p, sizeof(p), f->iss_dir, "ca.crt");
	path(p2, sizeof(p2), f->root_dir, "ca.crt");
	assert_int_equal(sh("openssl verify -CAfile %s %s >/dev/null 2>&1", p2, p), 0);
	path(p, sizeof(p), f->iss_dir, "chain.pem");
	assert_int_equal(sh("cmp -s %s %s", p, p2), 0);

	/* a second init into a non-empty directory is refused */
	{
		struct pki_ca_init_params ip = { 0 };

		ip.ci_dir = f->iss_dir;
		ip.ci_cn = "again";
		ip.ci_passphrase = PASS;
		ip.ci_passphrase_len = strlen(PASS);
		assert_null(pki_ca_init(&ip, &err));
		assert_int_equal(err.status, 101);
		/* the existing CA is untouched */
		path(p, sizeof(p), f->iss_dir, "ca.key");
		assert_int_equal(stat(p, &st), 0);
	}
}

/* Issue from a public key: subject from identity data only, exactly the
 * profile's extensions, 159-bit random serial, openssl verify (with
 * -purpose sslclient for authn), the database record. */
static void
test_issue_pubkey(void **state)
{
	struct fx *f = *state;
	X509 *a, *b, *s;
	X509_NAME *n;
	ASN1_BIT_STRING *ku;
	BASIC_CONSTRAINTS *bc;
	CERTIFICATEPOLICIES *pol;
	BIGNUM *sa, *sb;
	struct pki_ca_entry e;
	struct pki_err err = { 0 };
	char rootp[512], issp[512], userp[512];
	char *hex, buf[128];
	static const int user_nids[] = { NID_basic_constraints, NID_key_usage,
					 NID_subject_key_identifier, NID_authority_key_identifier,
					 NID_certificate_policies };
	int crit;

	assert_non_null(f->iss);
	a = issue(f->iss, "authn", f->user);
	b = issue(f->iss, "authn", f->user);
	s = issue(f->iss, "sign", f->user);

	/* subject: C, GN, SN, CN, serialNumber, from `ident` */
	n = X509_get_subject_name(a);
	assert_int_equal(X509_NAME_entry_count(n), 5);
	assert_true(X509_NAME_get_text_by_NID(n, NID_serialNumber, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "PNOCH-4179000001");
	assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Anna Muster");
	assert_true(X509_NAME_get_text_by_NID(n, NID_countryName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "CH");
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(a), X509_get_subject_name(pki_ca_cert(f->iss))), 0);

	/* extensions: exactly the profile's; no EKU */
	assert_ext_set(a, user_nids, 5);
	bc = X509_get_ext_d2i(a, NID_basic_constraints, &crit, NULL);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(a, NID_key_usage, &crit, NULL);
	assert_int_equal(crit, 1);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 0));  /* digitalSignature */
	assert_false(ASN1_BIT_STRING_get_bit(ku, 1)); /* nonRepudiation   */
	assert_false(ASN1_BIT_STRING_get_bit(ku, 5));
	ASN1_BIT_STRING_free(ku);
	ku = X509_get_ext_d2i(s, NID_key_usage, &crit, NULL);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 0));  /* sslclient purpose (Swisscom) */
	assert_true(ASN1_BIT_STRING_get_bit(ku, 1));
	ASN1_BIT_STRING_free(ku);
	pol = X509_get_ext_d2i(s, NID_certificate_policies, &crit, NULL);
	assert_int_equal(sk_POLICYINFO_num(pol), 1);
	OBJ_obj2txt(buf, sizeof(buf), sk_POLICYINFO_value(pol, 0)->policyid, 1);
	assert_string_equal(buf, "2.25.145006313504873097012093248345851622080.1.2");
	CERTIFICATEPOLICIES_free(pol);
	assert_int_equal(X509_get_ext_by_NID(a, NID_ext_key_usage, -1), -1);

	/* serials: positive, at most 159 bits, random (not sequential) */
	sa = ASN1_INTEGER_to_BN(X509_get0_serialNumber(a), NULL);
	sb = ASN1_INTEGER_to_BN(X509_get0_serialNumber(b), NULL);
	assert_false(BN_is_negative(sa));
	assert_true(BN_num_bits(sa) <= 159);
	assert_true(BN_num_bits(sa) > 120); /* fails with probability 2^-38 */
	assert_true(BN_num_bits(sb) <= 159);
	assert_int_not_equal(BN_cmp(sa, sb), 0);
	assert_true(BN_sub(sb, sb, sa));
	assert_true(BN_num_bits(sb) > 64); /* not a counter */
	BN_free(sa);
	BN_free(sb);

	/* recorded */
	hex = serial_hex(a);
	assert_int_equal(pki_ca_lookup(f->iss, hex, &e, &err), 0);
	assert_string_equal(e.ce_profile, "authn");
	assert_non_null(strstr(e.ce_subject, "serialNumber=PNOCH-4179000001"));
	assert_int_equal(pki_ca_count(f->iss), 3);
	OPENSSL_free(hex);

	/* independent check: openssl verify, also with the sslclient purpose
	 * the Swisscom scripts use on CMS signer certificates */
	path(rootp, sizeof(rootp), f->root_dir, "ca.crt");
	path(issp, sizeof(issp), f->iss_dir, "ca.crt");
	path(userp, sizeof(userp), f->tmp, "user.crt");
	write_cert(userp, a);
	assert_int_equal(sh("openssl verify -CAfile %s -untrusted %s %s >/dev/null 2>&1", rootp, issp, userp), 0);
	assert_int_equal(sh("openssl verify -purpose sslclient -CAfile %s -untrusted %s %s >/dev/null 2>&1",
			    rootp, issp, userp), 0);
	write_cert(userp, s);
	assert_int_equal(sh("openssl verify -CAfile %s -untrusted %s %s >/dev/null 2>&1", rootp, issp, userp), 0);
	X509_free(a);
	X509_free(b);
	X509_free(s);
}

/* From a CSR: its subject and every extension it asks for are ignored
 * (K-10): the certificate is CA:FALSE with the profile's extensions. */
static void
test_issue_csr(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	unsigned char *der;
	size_t len;
	X509 *x = NULL;
	BASIC_CONSTRAINTS *bc;
	char buf[128];
	static const int user_nids[] = { NID_basic_constraints, NID_key_usage,
					 NID_subject_key_identifier, NID_authority_key_identifier,
					 NID_certificate_policies };

	der = make_csr(f->user, EVP_sha256(), &len);
	assert_int_equal(pki_ca_issue_csr(f->iss, "sign", &ident, der, len, NULL, 30, &x, &err), 0);
	assert_non_null(x);
	assert_ext_set(x, user_nids, 5);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(x, NID_ext_key_usage, -1), -1);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Anna Muster");
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), f->user), 1);
	/* days = 30 */
	assert_true(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), time(NULL) + 31 * 86400) < 0);
	assert_true(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), time(NULL) + 29 * 86400) > 0);
	X509_free(x);
	OPENSSL_free(der);
}

/* K-08 / K-11: bad proof of possession, SHA-1, trailing bytes, BER,
 * oversize, garbage.  Nothing is recorded. */
static void
test_csr_refused(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	unsigned char *der, *big;
	size_t len, before = pki_ca_count(f->iss);
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;

	/* good one passes the check */
	der = make_csr(f->user, EVP_sha256(), &len);
	assert_int_equal(pki_ca_csr_check(der, len, NULL, &pub, &err), 0);
	EVP_PKEY_free(pub);

	/* trailing byte */
	big = OPENSSL_malloc(len + 1);
	memcpy(big, der, len);
	big[len] = 0;
	assert_int_equal(pki_ca_csr_check(big, len + 1, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 101);
	assert_null(pub);
	OPENSSL_free(big);

	/* BER: the outer length with a leading zero octet (30 82 xx xx ->
	 * 30 83 00 xx xx) parses in OpenSSL but is not DER */
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 0x82);
	big = OPENSSL_malloc(len + 1);
	big[0] = 0x30;
	big[1] = 0x83;
	big[2] = 0x00;
	memcpy(big + 3, der + 2, len - 2);
	assert_int_equal(pki_ca_csr_check(big, len + 1, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 101);
	OPENSSL_free(big);

	/* bad self-signature: flip a bit in the last octet of the ECDSA s */
	der[len - 1] ^= 0x01;
	assert_int_equal(pki_ca_issue_csr(f->iss, "authn", &ident, der, len, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 407);
	assert_null(x);
	OPENSSL_free(der);

	/* SHA-1 signed CSR (K-08) */
	der = make_csr(f->user, EVP_sha1(), &len);
	assert_int_equal(pki_ca_csr_check(der, len, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 407);
	OPENSSL_free(der);

	/* oversize and garbage */
	big = OPENSSL_zalloc(MSSP_CA_MAX_CSR_DER + 1);
	assert_int_equal(pki_ca_csr_check(big, MSSP_CA_MAX_CSR_DER + 1, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_csr_check(big, 100, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_csr_check(big, 0, NULL, &pub, &err), -1);
	assert_int_equal(err.status, 101);
	OPENSSL_free(big);

	assert_int_equal(pki_ca_count(f->iss), before);
}

/* Identity data: serialNumber mandatory, names checked; unknown profile;
 * a key the crypto policy refuses. */
static void
test_identity_refused(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca_identity id;
	struct pki_policy pol;
	size_t before = pki_ca_count(f->iss);
	X509 *x = NULL;

	id = ident;
	id.id_serial_number = NULL;
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	assert_non_null(strstr(err.detail, "serialNumber"));
	id.id_serial_number = "";
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	id.id_serial_number = "PNO\xc3\xa9"; /* not a PrintableString */
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);

	id = ident;
	id.id_common_name = id.id_given_name = id.id_surname = NULL;
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	id = ident;
	id.id_common_name = "Anna\nMuster";
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	id.id_common_name = "Anna \xff Muster"; /* not UTF-8 */
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	id = ident;
	id.id_country = "ch";
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);

	/* pseudonym only is enough */
	id = ident;
	id.id_common_name = id.id_given_name = id.id_surname = NULL;
	id.id_pseudonym = "Sonnenblume";
	assert_int_equal(pki_ca_issue(f->iss, "authn", &id, f->user, NULL, 0, &x, &err), 0);
	X509_free(x);
	x = NULL;

	assert_int_equal(pki_ca_issue(f->iss, "nosuch", &ident, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_issue(f->iss, "authn", &ident, f->user, NULL, MSSP_CA_MAX_DAYS + 1, &x, &err), -1);
	assert_int_equal(err.status, 101);

	/* crypto policy: P-256 switched off */
	pki_policy_default(&pol);
	pol.pp_curves = PKI_CURVE_P384;
	assert_int_equal(pki_ca_issue(f->iss, "authn", &ident, f->user, &pol, 0, &x, &err), -1);
	assert_int_equal(err.status, 407);
	assert_null(x);
	assert_int_equal(pki_ca_count(f->iss), before + 1);
}

/* The revocation, CRL and OCSP flow, shared by the software and the
 * PKCS#11 CA.  `chain_args` adds -CAfile/-untrusted for openssl verify. */
static void
flow(const char *tmp, struct pki_ca *ca, const char *ca_file, const char *verify_args, EVP_PKEY *user)
{
	struct pki_err err = { 0 };
	struct pki_ca_entry e;
	X509 *good, *bad;
	X509_CRL *crl = NULL, *crl2 = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_ENUMERATED *rs;
	char *good_hex, *bad_hex, crlp[600], userp[512], goodp[512], reqp[512], respp[512], outp[512];
	char crldir[512];
	OCSP_REQUEST *req;
	OCSP_CERTID *id_good, *id_bad, *id_unknown;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	X509_STORE *store;
	STACK_OF(X509) *certs;
	unsigned char *reqder = NULL, *respder = NULL;
	const unsigned char *cp;
	size_t resplen;
	int reqlen, status, reason;
	ASN1_GENERALIZEDTIME *revtime, *thisupd, *nextupd;
	ASN1_INTEGER *unknown_serial;
	char *text;

	good = issue(ca, "authn", user);
	bad = issue(ca, "sign", user);
	good_hex = serial_hex(good);
	bad_hex = serial_hex(bad);

	/* revoke: durable, once, known serials only */
	assert_int_equal(pki_ca_revoke(ca, bad_hex, PKI_CA_REASON_KEY_COMPROMISE, 0, &err), 0);
	assert_int_equal(pki_ca_revoke(ca, bad_hex, PKI_CA_REASON_SUPERSEDED, 0, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_revoke(ca, "1234", PKI_CA_REASON_SUPERSEDED, 0, &err), -1);
	assert_int_equal(err.status, 422);
	assert_int_equal(pki_ca_revoke(ca, "xyz", PKI_CA_REASON_SUPERSEDED, 0, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_revoke(ca, good_hex, 8 /* removeFromCRL */, 0, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(pki_ca_lookup(ca, bad_hex, &e, &err), 0);
	assert_true(e.ce_revoked);
	assert_int_equal(e.ce_reason, PKI_CA_REASON_KEY_COMPROMISE);

	/* CRL: the revoked serial with its reason, AKI, CRL number 1 then 2 */
	assert_int_equal(pki_ca_crl(ca, 0, &crl, &err), 0);
	assert_non_null(crl);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, (ASN1_INTEGER *)X509_get0_serialNumber(bad)), 1);
	rs = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
	assert_non_null(rs);
	assert_int_equal(ASN1_ENUMERATED_get(rs), 1);
	ASN1_ENUMERATED_free(rs);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, (ASN1_INTEGER *)X509_get0_serialNumber(good)), 0);
	assert_true(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
	{
		ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);

		assert_int_equal(ASN1_INTEGER_get(num), 1);
		ASN1_INTEGER_free(num);
	}
	assert_int_equal(pki_ca_crl(ca, 0, &crl2, &err), 0);
	{
		ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl2, NID_crl_number, NULL, NULL);

		assert_int_equal(ASN1_INTEGER_get(num), 2);
		ASN1_INTEGER_free(num);
	}
	X509_CRL_free(crl2);
	path(crldir, sizeof(crldir), tmp, "");
	snprintf(crlp, sizeof(crlp), "%s/crl.pem", crldir);
	{
		/* crl.pem in the CA directory is the one just made */
		char dcrl[512];

		snprintf(dcrl, sizeof(dcrl), "%.*s/crl.pem", (int)(strlen(ca_file) - 7), ca_file);
		assert_int_equal(sh("cp %s %s", dcrl, crlp), 0);
	}
	assert_int_equal(sh("openssl crl -in %s -noout -verify -CAfile %s 2>&1 | grep -q 'verify OK'", crlp, ca_file), 0);
	assert_int_equal(sh("openssl crl -in %s -noout -text | grep -q 'Key Compromise'", crlp), 0);
	path(userp, sizeof(userp), tmp, "bad.crt");
	write_cert(userp, bad);
	path(goodp, sizeof(goodp), tmp, "good.crt");
	write_cert(goodp, good);
	assert_int_equal(sh("openssl verify %s -crl_check -CRLfile %s %s 2>&1 | grep -q 'certificate revoked'",
			    verify_args, crlp, userp), 0);
	assert_int_equal(sh("openssl verify %s -crl_check -CRLfile %s %s >/dev/null 2>&1", verify_args, crlp, goodp), 0);

	/* OCSP, in process: SHA-1 CertIDs, nonce, good/revoked/unknown */
	req = OCSP_REQUEST_new();
	id_good = OCSP_cert_to_id(EVP_sha1(), good, pki_ca_cert(ca));
	id_bad = OCSP_cert_to_id(EVP_sha256(), bad, pki_ca_cert(ca));
	unknown_serial = ASN1_INTEGER_new();
	ASN1_INTEGER_set(unknown_serial, 0x1234567);
	id_unknown = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(pki_ca_cert(ca)),
				      X509_get0_pubkey_bitstr(pki_ca_cert(ca)), unknown_serial);
	assert_non_null(OCSP_request_add0_id(req, OCSP_CERTID_dup(id_good)));
	assert_non_null(OCSP_request_add0_id(req, OCSP_CERTID_dup(id_bad)));
	assert_non_null(OCSP_request_add0_id(req, OCSP_CERTID_dup(id_unknown)));
	assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
	reqlen = i2d_OCSP_REQUEST(req, &reqder);
	assert_true(reqlen > 0);
	assert_int_equal(pki_ca_ocsp_respond(ca, reqder, (size_t)reqlen, 0, &respder, &resplen, &err), 0);
	cp = respder;
	resp = d2i_OCSP_RESPONSE(NULL, &cp, (long)resplen);
	assert_non_null(resp);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	store = X509_STORE_new();
	certs = sk_X509_new_null();
	sk_X509_push(certs, pki_ca_cert(ca));
	assert_int_equal(OCSP_basic_verify(bs, certs, store, OCSP_TRUSTOTHER), 1);
	assert_int_equal(OCSP_resp_find_status(bs, id_good, &status, &reason, &revtime, &thisupd, &nextupd), 1);
	assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
	assert_non_null(nextupd);
	assert_int_equal(OCSP_check_validity(thisupd, nextupd, 300, -1), 1);
	assert_int_equal(OCSP_resp_find_status(bs, id_bad, &status, &reason, &revtime, &thisupd, &nextupd), 1);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	assert_non_null(revtime);
	assert_int_equal(OCSP_resp_find_status(bs, id_unknown, &status, &reason, &revtime, &thisupd, &nextupd), 1);
	assert_int_equal(status, V_OCSP_CERTSTATUS_UNKNOWN);
	sk_X509_free(certs);
	X509_STORE_free(store);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(respder);
	OPENSSL_free(reqder);
	reqder = respder = NULL;
	OCSP_REQUEST_free(req);

	/* OCSP: a request for another issuer only -> unauthorized */
	req = OCSP_REQUEST_new();
	{
		X509_NAME *other = X509_NAME_new();

		X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_ASC, (const unsigned char *)"Other", -1, -1, 0);
		assert_non_null(OCSP_request_add0_id(req, OCSP_cert_id_new(EVP_sha1(), other,
			X509_get0_pubkey_bitstr(pki_ca_cert(ca)), unknown_serial)));
		X509_NAME_free(other);
	}
	reqlen = i2d_OCSP_REQUEST(req, &reqder);
	assert_int_equal(pki_ca_ocsp_respond(ca, reqder, (size_t)reqlen, 0, &respder, &resplen, &err), -1);
	assert_int_equal(err.status, 422);
	cp = respder;
	resp = d2i_OCSP_RESPONSE(NULL, &cp, (long)resplen);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(respder);
	OPENSSL_free(reqder);
	reqder = respder = NULL;
	OCSP_REQUEST_free(req);
	ASN1_INTEGER_free(unknown_serial);
	OCSP_CERTID_free(id_good);
	OCSP_CERTID_free(id_bad);
	OCSP_CERTID_free(id_unknown);

	/* OCSP: malformed (garbage, trailing byte) -> malformedRequest */
	{
		static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00, 0xff };

		assert_int_equal(pki_ca_ocsp_respond(ca, junk, sizeof(junk), 0, &respder, &resplen, &err), -1);
		assert_int_equal(err.status, 101);
		cp = respder;
		resp = d2i_OCSP_RESPONSE(NULL, &cp, (long)resplen);
		assert_non_null(resp);
		assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
		OCSP_RESPONSE_free(resp);
		OPENSSL_free(respder);
		assert_int_equal(pki_ca_ocsp_respond(ca, junk, 0, 0, &respder, &resplen, &err), -1);
		assert_int_equal(err.status, 101);
		OPENSSL_free(respder);
	}

	/* OCSP against the openssl command line: its request, our response,
	 * its verification (signature with -VAfile, nonce, statuses) */
	path(reqp, sizeof(reqp), tmp, "req.der");
	path(respp, sizeof(respp), tmp, "resp.der");
	path(outp, sizeof(outp), tmp, "ocsp.txt");
	assert_int_equal(sh("openssl ocsp -issuer %s -cert %s -cert %s -reqout %s >/dev/null 2>&1",
			    ca_file, goodp, userp, reqp), 0);
	{
		size_t n;
		unsigned char *r = (unsigned char *)tu_slurp(reqp, &n);

		/* the same request with one extra byte is malformed */
		assert_int_equal(pki_ca_ocsp_respond(ca, r, n + 1, 0, &respder, &resplen, &err), -1);
		assert_int_equal(err.status, 101);
		OPENSSL_free(respder);
		assert_int_equal(pki_ca_ocsp_respond(ca, r, n, 0, &respder, &resplen, &err), 0);
		free(r);
	}
	write_bytes(respp, respder, resplen);
	OPENSSL_free(respder);
	assert_int_equal(sh("openssl ocsp -reqin %s -respin %s -VAfile %s -resp_text >%s 2>&1",
			    reqp, respp, ca_file, outp), 0);
	text = tu_slurp(outp, NULL);
	assert_non_null(strstr(text, "Response verify OK"));
	assert_null(strstr(text, "Nonce Verify error"));
	assert_non_null(strstr(text, "Cert Status: good"));
	assert_non_null(strstr(text, "Cert Status: revoked"));
	assert_non_null(strstr(text, "Revocation Reason: keyCompromise"));
	free(text);

	X509_CRL_free(crl);
	OPENSSL_free(good_hex);
	OPENSSL_free(bad_hex);
	X509_free(good);
	X509_free(bad);
}

static void
test_flow_issuing(void **state)
{
	struct fx *f = *state;
	char rootp[512], issp[512], args[1200];

	path(rootp, sizeof(rootp), f->root_dir, "ca.crt");
	path(issp, sizeof(issp), f->iss_dir, "ca.crt");
	snprintf(args, sizeof(args), "-CAfile %s -untrusted %s", rootp, issp);
	flow(f->tmp, f->iss, issp, args, f->user);
}

/* The key file: scrypt-encrypted PKCS#8, refused with the wrong pass
 * phrase, not readable as plain PEM; open without key cannot sign. */
static void
test_key_file(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca *ca;
	struct pki_ca_init_params ip = { 0 };
	char p[512], d[512];
	char *text;
	X509 *x = NULL;
	FILE *fp;
	EVP_PKEY *k;

	assert_null(pki_ca_open(f->iss_dir, "wrong pass phrase", 17, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "pass phrase"));
	assert_null(pki_ca_open(f->iss_dir, PASS, strlen(PASS) - 1, &err));
	assert_int_equal(err.status, 900);

	path(p, sizeof(p), f->iss_dir, "ca.key");
	text = tu_slurp(p, NULL);
	assert_true(strncmp(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37) == 0);
	free(text);
	fp = fopen(p, "r");
	k = PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
	fclose(fp);
	assert_null(k);
	ERR_clear_error();
	assert_int_not_equal(sh("openssl pkey -in %s -passin pass: -noout >/dev/null 2>&1", p), 0);
	/* it is scrypt + AES-256-CBC, and the right pass phrase opens it */
	assert_int_equal(sh("openssl asn1parse -in %s | grep -q :scrypt", p), 0);
	assert_int_equal(sh("openssl asn1parse -in %s | grep -q aes-256-cbc", p), 0);
	assert_int_equal(sh("openssl pkey -in %s -passin 'pass:" PASS "' -noout >/dev/null 2>&1", p), 0);

	/* opened without the key: reading works, signing does not */
	ca = pki_ca_open(f->iss_dir, NULL, 0, &err);
	assert_non_null(ca);
	assert_false(pki_ca_has_key(ca));
	assert_int_equal(pki_ca_issue(ca, "authn", &ident, f->user, NULL, 0, &x, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(pki_ca_crl(ca, 0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	pki_ca_free(ca);

	/* init refuses a short pass phrase, both key kinds at once, RSA < 3072 */
	path(d, sizeof(d), f->tmp, "never");
	ip.ci_dir = d;
	ip.ci_cn = "x";
	ip.ci_passphrase = "short";
	ip.ci_passphrase_len = 5;
	assert_null(pki_ca_init(&ip, &err));
	assert_int_equal(err.status, 101);
	ip.ci_passphrase = PASS;
	ip.ci_passphrase_len = strlen(PASS);
	ip.ci_pkcs11_uri = "pkcs11:token=x;object=y";
	assert_null(pki_ca_init(&ip, &err));
	assert_int_equal(err.status, 101);
	ip.ci_pkcs11_uri = NULL;
	ip.ci_alg = PKI_CA_KEY_RSA;
	ip.ci_rsa_bits = 2048;
	assert_null(pki_ca_init(&ip, &err));
	assert_int_equal(err.status, 101);
	assert_int_equal(access(d, F_OK), -1);
}

/* The database: survives a reopen, another handle sees changes, and a
 * truncated or edited file is refused with a clear error. */
static void
test_database(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca *a, *b;
	struct pki_ca_entry e;
	char p[512], bak[512];
	char *text, *line;
	size_t n, i, revoked = 0;
	X509 *x;
	char *hex;

	a = pki_ca_open(f->iss_dir, NULL, 0, &err);
	assert_non_null(a);
	assert_int_equal(pki_ca_count(a), pki_ca_count(f->iss));
	for (i = 0; i < pki_ca_count(a); i++) {
		assert_int_equal(pki_ca_entry_at(a, i, &e), 0);
		revoked += e.ce_revoked;
	}
	assert_int_equal(revoked, 1);
	assert_int_equal(pki_ca_entry_at(a, pki_ca_count(a), &e), -1);

	/* a change by one handle is seen by another */
	x = issue(f->iss, "authn", f->user);
	hex = serial_hex(x);
	assert_int_equal(pki_ca_lookup(a, hex, &e, &err), 0);
	assert_false(e.ce_revoked);
	b = pki_ca_open(f->iss_dir, NULL, 0, &err);
	assert_non_null(b);
	assert_int_equal(pki_ca_revoke(b, hex, PKI_CA_REASON_CESSATION_OF_OPERATION, 1700000000, &err), 0);
	assert_int_equal(pki_ca_lookup(a, hex, &e, &err), 0);
	assert_true(e.ce_revoked);
	assert_int_equal(e.ce_rev_time, 1700000000);
	assert_int_equal(e.ce_reason, PKI_CA_REASON_CESSATION_OF_OPERATION);
	pki_ca_free(b);
	X509_free(x);
	OPENSSL_free(hex);

	path(p, sizeof(p), f->iss_dir, "ca.db");
	path(bak, sizeof(bak), f->tmp, "ca.db.bak");
	assert_int_equal(sh("cp -p %s %s", p, bak), 0);
	text = tu_slurp(p, &n);

	/* truncated: the last line cut */
	write_bytes(p, (unsigned char *)text, n - 10);
	assert_null(pki_ca_open(f->iss_dir, NULL, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "CA database"));
	/* whole lines lost (the end line with them) */
	line = strstr(text, "\nend ");
	write_bytes(p, (unsigned char *)text, (size_t)(line - text) + 1);
	assert_null(pki_ca_open(f->iss_dir, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "truncated"));
	/* a record edited (V -> R keeps the syntax valid for one field) */
	line = strstr(text, " V - - ");
	assert_non_null(line);
	line[1] = 'X';
	write_bytes(p, (unsigned char *)text, n);
	assert_null(pki_ca_open(f->iss_dir, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "line"));
	line[1] = 'V';
	line = strstr(text, "authn");
	line[0] = 'b';
	write_bytes(p, (unsigned char *)text, n);
	assert_null(pki_ca_open(f->iss_dir, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "checksum"));
	line[0] = 'a';
	/* the live handle fails closed too (OCSP would answer internalError) */
	write_bytes(p, (unsigned char *)"garbage\n", 8);
	assert_int_equal(pki_ca_lookup(a, "01", &e, &err), -1);
	assert_int_equal(err.status, 900);
	free(text);

	assert_int_equal(sh("cp -p %s %s", bak, p), 0);
	assert_int_equal(pki_ca_reload(a, &err), 0);
	assert_int_equal(pki_ca_count(a), pki_ca_count(f->iss));
	pki_ca_free(a);

	/* ca.conf is strict as well */
	path(p, sizeof(p), f->iss_dir, "ca.conf");
	assert_int_equal(sh("cp -p %s %s.bak && echo 'profile x key_usage=keyCertSign days=1' >> %s", p, p, p), 0);
	assert_null(pki_ca_open(f->iss_dir, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "ca.conf"));
	assert_int_equal(sh("mv %s.bak %s", p, p), 0);
}

/* ---- the append-only database ------------------------------------------ */

/* Lines of `text` that start with `prefix`. */
static size_t
count_prefix(const char *text, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, pl) == 0)
			n++;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return n;
}

static void
append_bytes(const char *file, const void *d, size_t n)
{
	FILE *f = fopen(file, "ab");

	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
}

static void
sha256_hex(const void *d, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	int i;

	assert_int_equal(EVP_Digest(d, n, md, &mdlen, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static ino_t
inode_of(const char *file)
{
	struct stat st;

	assert_int_equal(stat(file, &st), 0);
	return st.st_ino;
}

/* Issuance appends one line to the same file; a reopen finds every record;
 * a revocation folds the appended lines into the body; issuing after it
 * appends again. */
static void
test_db_append(void **state)
{
	enum { N = 200 };
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca *ca, *b;
	struct pki_ca_entry e;
	char d[512], p[512], *serials[N], *text, *hex;
	ino_t ino;
	size_t i, n;
	X509 *x;

	path(d, sizeof(d), f->tmp, "appendca");
	ca = init_ca(d, PKI_CA_KEY_EC_P256, "Append Root", NULL, PASS);
	path(p, sizeof(p), d, "ca.db");
	ino = inode_of(p);
	for (i = 0; i < N; i++) {
		x = issue(ca, i % 2 ? "sign" : "authn", f->user);
		serials[i] = serial_hex(x);
		X509_free(x);
	}
	assert_int_equal(inode_of(p), ino); /* appended to, never replaced */
	assert_int_equal(pki_ca_count(ca), N);
	text = tu_slurp(p, &n);
	assert_true(strncmp(text, "openmssp-ca-db 2\nend 0 ", 23) == 0);
	assert_int_equal(count_prefix(text, "+ "), N);
	assert_int_equal(text[n - 1], '\n');
	free(text);

	b = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(b);
	assert_int_equal(pki_ca_count(b), N);
	for (i = 0; i < N; i++) {
		assert_int_equal(pki_ca_entry_at(b, i, &e), 0); /* issuance order */
		assert_string_equal(e.ce_serial, serials[i]);
		assert_int_equal(pki_ca_lookup(b, serials[i], &e, &err), 0);
		assert_string_equal(e.ce_profile, i % 2 ? "sign" : "authn");
		assert_non_null(strstr(e.ce_subject, "CN=Anna Muster"));
		assert_false(e.ce_revoked);
	}
	assert_int_equal(pki_ca_lookup(b, "0123", &e, &err), -1);
	assert_int_equal(err.status, 422);

	/* a revocation rewrites the file: the appended lines join the body */
	assert_int_equal(pki_ca_revoke(b, serials[7], PKI_CA_REASON_SUPERSEDED, 0, &err), 0);
	assert_true(inode_of(p) != ino);
	text = tu_slurp(p, &n);
	assert_true(strncmp(text, "openmssp-ca-db 2\n", 17) == 0);
	assert_int_equal(count_prefix(text, "+ "), 0);
	assert_non_null(strstr(text, "\nend 200 "));
	free(text);
	/* the issuing handle re-reads the new file and appends after its end */
	x = issue(ca, "sign", f->user);
	hex = serial_hex(x);
	assert_int_equal(pki_ca_lookup(ca, serials[7], &e, &err), 0);
	assert_true(e.ce_revoked);
	assert_int_equal(e.ce_reason, PKI_CA_REASON_SUPERSEDED);
	assert_int_equal(pki_ca_lookup(b, hex, &e, &err), 0);
	assert_int_equal(pki_ca_count(b), N + 1);
	text = tu_slurp(p, &n);
	assert_int_equal(count_prefix(text, "+ "), 1);
	free(text);

	OPENSSL_free(hex);
	X509_free(x);
	for (i = 0; i < N; i++)
		OPENSSL_free(serials[i]);
	pki_ca_free(b);
	pki_ca_free(ca);
}

/* Rewrite a body-only (version 2) database text as version 1. */
static char *
as_version1(const char *text)
{
	const char *foot = strstr(text, "\nend ");
	size_t body, cnt;
	char sum[65], *out;

	assert_non_null(foot);
	body = (size_t)(foot - text) + 1;
	assert_int_equal(sscanf(foot + 5, "%zu", &cnt), 1);
	out = malloc(body + 100);
	assert_non_null(out);
	memcpy(out, text, body);
	out[body] = '\0';
	assert_true(strncmp(out, "openmssp-ca-db 2\n", 17) == 0);
	out[15] = '1';
	sha256_hex(out, body, sum);
	snprintf(out + body, 100, "end %zu %s\n", cnt, sum);
	return out;
}

/* The torn-tail rule: a last line without its newline, or holding NUL
 * bytes, is an append that never finished; every reader ignores it and
 * the next issuance truncates it.  Any other bad line is refused.  Version
 * 1 files are read, and the first issuance rewrites them. */
static void
test_db_torn_tail(void **state)
{
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca *ca, *a, *b;
	struct pki_ca_entry e;
	char d[512], p[512], *s[3], *text, *good, *t2, *line, *v1;
	static const char nuls[] = "+ \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\n";
	size_t i, n, n2, gn;
	X509 *x;

	path(d, sizeof(d), f->tmp, "tornca");
	ca = init_ca(d, PKI_CA_KEY_EC_P256, "Torn Root", NULL, PASS);
	path(p, sizeof(p), d, "ca.db");
	for (i = 0; i < 3; i++) {
		x = issue(ca, "authn", f->user);
		s[i] = serial_hex(x);
		X509_free(x);
	}
	a = pki_ca_open(d, NULL, 0, &err); /* a reader, like the OCSP responder */
	assert_non_null(a);
	assert_int_equal(pki_ca_count(a), 3);

	/* a crash in the middle of an append: a line's first 40 bytes */
	text = tu_slurp(p, &n);
	line = strstr(text, "\n+ ");
	assert_non_null(line);
	append_bytes(p, line + 1, 40);
	b = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(b);
	assert_int_equal(pki_ca_count(b), 3);
	assert_int_equal(pki_ca_lookup(a, s[2], &e, &err), 0);
	assert_int_equal(pki_ca_count(a), 3);
	pki_ca_free(b);
	/* the next issuance cuts the torn bytes off before appending */
	x = issue(ca, "sign", f->user);
	OPENSSL_free(s[0]);
	s[0] = serial_hex(x);
	X509_free(x);
	t2 = tu_slurp(p, &n2);
	assert_true(n2 > n && memcmp(t2, text, n) == 0);
	assert_true(strncmp(t2 + n, "+ ", 2) == 0);
	assert_ptr_equal(strchr(t2 + n, '\n'), t2 + n2 - 1); /* exactly one new line */
	free(t2);
	assert_int_equal(pki_ca_lookup(a, s[0], &e, &err), 0);
	assert_int_equal(pki_ca_count(a), 4);
	free(text);

	/* a last line with NUL bytes: blocks of an append that never reached
	 * the disk */
	text = tu_slurp(p, &n);
	append_bytes(p, nuls, sizeof(nuls) - 1);
	b = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(b);
	assert_int_equal(pki_ca_count(b), 4);
	x = issue(ca, "sign", f->user);
	X509_free(x);
	t2 = tu_slurp(p, &n2);
	assert_true(n2 > n && memcmp(t2, text, n) == 0 && t2[n] == '+');
	assert_null(memchr(t2, '\0', n2));
	free(t2);
	assert_int_equal(pki_ca_reload(b, &err), 0);
	assert_int_equal(pki_ca_count(b), 5);
	pki_ca_free(b);
	free(text);

	/* complete lines are never "torn": a bad one is refused, and the live
	 * reader fails closed */
	good = tu_slurp(p, &gn);
	append_bytes(p, "+ garbage\n", 10);
	assert_null(pki_ca_open(d, NULL, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "malformed"));
	assert_int_equal(pki_ca_lookup(a, s[1], &e, &err), -1);
	assert_int_equal(err.status, 900);
	/* an appended record edited: the chain breaks at that line */
	text = strdup(good);
	line = strstr(text, "\n+ ");
	line = strstr(line + 1, "\n+ "); /* the second appended line */
	assert_non_null(line);
	line = strstr(line, "Anna");
	line[3] = 'e';
	write_bytes(p, (unsigned char *)text, gn);
	assert_null(pki_ca_open(d, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "checksum"));
	/* an appended line lost in the middle: the chain breaks too */
	memcpy(text, good, gn);
	line = strstr(text, "\n+ ") + 1;
	t2 = strchr(line, '\n') + 1;
	memmove(line, t2, gn - (size_t)(t2 - text));
	write_bytes(p, (unsigned char *)text, gn - (size_t)(t2 - line));
	assert_null(pki_ca_open(d, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "checksum"));
	free(text);
	/* restored in place: the reader recovers */
	write_bytes(p, (unsigned char *)good, gn);
	assert_int_equal(pki_ca_lookup(a, s[1], &e, &err), 0);
	assert_int_equal(pki_ca_count(a), 5);
	free(good);

	/* version 1 (body and end line only) is still read; appended lines
	 * after it are not */
	assert_int_equal(pki_ca_revoke(ca, s[1], PKI_CA_REASON_KEY_COMPROMISE, 0, &err), 0);
	text = tu_slurp(p, &n);
	v1 = as_version1(text);
	free(text);
	write_bytes(p, (unsigned char *)v1, strlen(v1));
	b = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(b);
	assert_int_equal(pki_ca_count(b), 5);
	assert_int_equal(pki_ca_lookup(b, s[1], &e, &err), 0);
	assert_true(e.ce_revoked);
	pki_ca_free(b);
	text = tu_slurp(p, &n); /* v1 + one appended line taken from elsewhere */
	free(text);
	append_bytes(p, "+ 0000000000000000000000000000000000000000000000000000000000000000 x\n",
		     69);
	assert_null(pki_ca_open(d, NULL, 0, &err));
	assert_non_null(strstr(err.detail, "mismatch"));
	write_bytes(p, (unsigned char *)v1, strlen(v1));
	/* the first issuance into a version 1 file rewrites it as version 2,
	 * the next one appends */
	x = issue(ca, "sign", f->user);
	X509_free(x);
	text = tu_slurp(p, &n);
	assert_true(strncmp(text, "openmssp-ca-db 2\n", 17) == 0);
	assert_int_equal(count_prefix(text, "+ "), 0);
	assert_non_null(strstr(text, "\nend 6 "));
	free(text);
	x = issue(ca, "sign", f->user);
	X509_free(x);
	text = tu_slurp(p, &n);
	assert_int_equal(count_prefix(text, "+ "), 1);
	free(text);
	assert_int_equal(pki_ca_reload(a, &err), 0);
	assert_int_equal(pki_ca_count(a), 7);
	assert_int_equal(pki_ca_lookup(a, s[1], &e, &err), 0);
	assert_true(e.ce_revoked);

	free(v1);
	for (i = 0; i < 3; i++)
		OPENSSL_free(s[i]);
	pki_ca_free(a);
	pki_ca_free(ca);
}

/* Child of test_db_two_writers: issue `n` certificates through its own
 * handle.  No cmocka here: the exit status says how it went. */
static void
child_issue(const char *dir, EVP_PKEY *key, int n)
{
	struct pki_err err = { 0 };
	struct pki_ca *ca = pki_ca_open(dir, PASS, strlen(PASS), &err);
	int i, rc = 0;
	X509 *x;

	if (ca == NULL)
		_exit(2);
	for (i = 0; i < n && rc == 0; i++) {
		x = NULL;
		if (pki_ca_issue(ca, "sign", &ident, key, NULL, 0, &x, &err) != 0)
			rc = 3;
		X509_free(x);
	}
	pki_ca_free(ca);
	_exit(rc);
}

/* Two handles issuing in turn see each other's certificates and never
 * reuse a serial; then two processes issue at the same time while a third
 * handle reads without the lock and never fails. */
static void
test_db_two_writers(void **state)
{
	enum { TURNS = 40, EACH = 30 };
	struct fx *f = *state;
	struct pki_err err = { 0 };
	struct pki_ca *h[2], *r;
	struct pki_ca_entry e;
	char d[512], *serials[TURNS];
	size_t i, j, last;
	int status;
	pid_t pid;
	X509 *x;

	path(d, sizeof(d), f->tmp, "twoca");
	h[0] = init_ca(d, PKI_CA_KEY_EC_P256, "Two Writers Root", NULL, PASS);
	h[1] = pki_ca_open(d, PASS, strlen(PASS), &err);
	assert_non_null(h[1]);
	for (i = 0; i < TURNS; i++) {
		x = issue(h[i % 2], i % 3 ? "sign" : "authn", f->user);
		serials[i] = serial_hex(x);
		X509_free(x);
		assert_int_equal(pki_ca_lookup(h[(i + 1) % 2], serials[i], &e, &err), 0);
		assert_int_equal(pki_ca_count(h[0]), i + 1);
		assert_int_equal(pki_ca_count(h[1]), i + 1);
		for (j = 0; j < i; j++)
			assert_string_not_equal(serials[j], serials[i]);
	}

	r = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(r);
	last = pki_ca_count(r);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_issue(d, f->user, EACH);
	for (i = 0; i < EACH; i++) {
		x = issue(h[i % 2], "authn", f->user);
		X509_free(x);
		/* a lock-free reader may meet a half-written line: never an error */
		if (pki_ca_reload(r, &err) != 0)
			fail_msg("reload during concurrent appends: %s", err.detail);
		assert_true(pki_ca_count(r) >= last);
		last = pki_ca_count(r);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(pki_ca_reload(r, &err), 0);
	assert_int_equal(pki_ca_count(r), TURNS + 2 * EACH);
	pki_ca_free(r);
	/* a fresh full read: chain and duplicate checks over everything */
	r = pki_ca_open(d, NULL, 0, &err);
	assert_non_null(r);
	assert_int_equal(pki_ca_count(r), TURNS + 2 * EACH);
	for (i = 0; i < TURNS; i++) {
		assert_int_equal(pki_ca_lookup(r, serials[i], &e, &err), 0);
		OPENSSL_free(serials[i]);
	}
	pki_ca_free(r);
	pki_ca_free(h[0]);
	pki_ca_free(h[1]);
}

/* RSA-3072 root (the one slow key generation), an end-entity certificate
 * straight from it, and the same flow. */
static void
test_rsa_root(void **state)
{
	struct fx *f = *state;
	struct pki_ca *ca;
	char d[512], p[512], args[1200];

	path(d, sizeof(d), f->tmp, "rsaroot");
	ca = init_ca(d, PKI_CA_KEY_RSA, "OpenMSSP RSA Root", NULL, PASS);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(pki_ca_cert(ca))), 3072);
	assert_true(EVP_PKEY_is_a(X509_get0_pubkey(pki_ca_cert(ca)), "RSA"));
	path(p, sizeof(p), d, "ca.crt");
	snprintf(args, sizeof(args), "-CAfile %s", p);
	flow(f->tmp, ca, p, args, f->user);
	pki_ca_free(ca);
}

/* The same flow with the CA key in SoftHSM2 through the pkcs11 engine. */
static void
test_pkcs11(void **state)
{
	struct fx *f = *state;
	static const char module[] = "/usr/lib/softhsm/libsofthsm2.so";
	struct pki_ca_init_params ip = { 0 };
	struct pki_err err = { 0 };
	struct pki_ca *ca;
	char conf[512], tok[512], key[512], d[512], p[512], label[32], uri[128], args[1200];
	unsigned char rnd[4];
	EVP_PKEY *k;
	FILE *fp;
	char *text;
	struct stat st;

	if (sh("command -v softhsm2-util >/dev/null 2>&1") != 0 || access(module, R_OK) != 0) {
		print_message("softhsm2-util or %s missing: PKCS#11 test skipped\n", module);
		skip();
	}
	path(tok, sizeof(tok), f->tmp, "tokens");
	path(conf, sizeof(conf), f->tmp, "softhsm2.conf");
	assert_int_equal(mkdir(tok, 0700), 0);
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tok);
	fclose(fp);
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	snprintf(label, sizeof(label), "mssp%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	assert_int_equal(sh("softhsm2-util --init-token --free --label %s --so-pin 87654321 --pin 123456 >/dev/null", label), 0);

	/* the CA key is imported (PKCS#8, unencrypted, then deleted) */
	k = EVP_EC_gen("P-256");
	path(key, sizeof(key), f->tmp, "cakey.pk8");
	fp = fopen(key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PKCS8PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(sh("softhsm2-util --import %s --token %s --label cakey --id 01 --pin 123456 >/dev/null", key, label), 0);
	assert_int_equal(unlink(key), 0);

	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=cakey;type=private", label);
	path(d, sizeof(d), f->tmp, "hsmca");
	ip.ci_dir = d;
	ip.ci_cn = "OpenMSSP HSM Issuing";
	ip.ci_c = "CH";
	ip.ci_pkcs11_uri = uri;
	ip.ci_pkcs11_module = module;
	ip.ci_pin = "123456";
	ip.ci_pin_len = 6;
	ip.ci_issuer = f->root;
	/* a PIN inside the URI is refused */
	{
		char bad[200];

		snprintf(bad, sizeof(bad), "%s;pin-value=123456", uri);
		ip.ci_pkcs11_uri = bad;
		assert_null(pki_ca_init(&ip, &err));
		assert_int_equal(err.status, 101);
		ip.ci_pkcs11_uri = uri;
	}
	/* a wrong PIN: 900, nothing left behind */
	ip.ci_pin = "654321";
	assert_null(pki_ca_init(&ip, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(access(d, F_OK), -1);
	ip.ci_pin = "123456";
	ca = pki_ca_init(&ip, &err);
	if (ca == NULL)
		fail_msg("pkcs11 init: %d %s", err.status, err.detail);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(pki_ca_cert(ca)), k), 1);
	pki_ca_free(ca);

	/* the directory holds the URI, no key file, never the PIN */
	path(p, sizeof(p), d, "ca.key");
	assert_int_equal(stat(p, &st), -1);
	path(p, sizeof(p), d, "ca.conf");
	text = tu_slurp(p, NULL);
	assert_non_null(strstr(text, uri));
	assert_null(strstr(text, "123456"));
	free(text);

	/* A wrong PIN, in a fresh process (this binary again, see main()):
	 * PKCS#11 login state belongs to the application, and this process
	 * is logged in to the token already (see ca_engine.c). */
	{
		char self[512];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		assert_true(n > 0);
		self[n] = '\0';
		/* libp11 leaks its method tables on this path: not ours to report */
		assert_int_equal(sh("ASAN_OPTIONS=detect_leaks=0 TEST_CA_OPEN_DIR=%s TEST_CA_OPEN_PIN=000000 %s 2>/dev/null",
				    d, self), 0);
		assert_int_equal(sh("ASAN_OPTIONS=detect_leaks=0 TEST_CA_OPEN_DIR=%s TEST_CA_OPEN_PIN=123456 %s 2>/dev/null",
				    d, self), 3);
	}
	ca = pki_ca_open(d, "123456", 6, &err);
	if (ca == NULL)
		fail_msg("pkcs11 open: %d %s", err.status, err.detail);
	{
		char rootp[512];

		path(rootp, sizeof(rootp), f->root_dir, "ca.crt");
		path(p, sizeof(p), d, "ca.crt");
		snprintf(args, sizeof(args), "-CAfile %s -untrusted %s", rootp, p);
	}
	flow(f->tmp, ca, p, args, f->user);
	pki_ca_free(ca);
	EVP_PKEY_free(k);
	unsetenv("SOFTHSM2_CONF");
}

/* Child mode for test_pkcs11: open TEST_CA_OPEN_DIR with
 * TEST_CA_OPEN_PIN in a fresh process; exit 0 if refused with 900, 3 if
 * opened, 1 otherwise. */
static int
child_open(const char *dir, const char *pin)
{
	struct pki_err err = { 0 };
	struct pki_ca *ca = pki_ca_open(dir, pin, strlen(pin), &err);

	if (ca != NULL) {
		pki_ca_free(ca);
		return 3;
	}
	return err.status == 900 ? 0 : 1;
}

int
main(void)
{
	const char *child_dir = getenv("TEST_CA_OPEN_DIR"), *child_pin = getenv("TEST_CA_OPEN_PIN");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_root_and_issuing),
		cmocka_unit_test(test_issue_pubkey),
		cmocka_unit_test(test_issue_csr),
		cmocka_unit_test(test_csr_refused),
		cmocka_unit_test(test_identity_refused),
		cmocka_unit_test(test_flow_issuing),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_database),
		cmocka_unit_test(test_db_append),
		cmocka_unit_test(test_db_torn_tail),
		cmocka_unit_test(test_db_two_writers),
		cmocka_unit_test(test_rsa_root),
		cmocka_unit_test(test_pkcs11),
	};

	if (child_dir != NULL && child_pin != NULL)
		return child_open(child_dir, child_pin);
	return cmocka_run_group_tests(tests, setup, teardown);
}
