/*
 * ca.c - msspctl ca: the operator's front end to src/pki/ca.
 *
 *   msspctl ca init   --dir D [--ec|--rsa] [--cn NAME] [--o ORG] [--c CC] [--days N]
 *                     [--issuing-from ROOTDIR (--root-passphrase-file F |
 *                      --root-passphrase-env VAR | --root-pin-env VAR)]
 *                     (--passphrase-file F | --passphrase-env VAR |
 *                      --pkcs11-uri URI [--pkcs11-module PATH] --pin-env VAR)
 *   msspctl ca issue  --dir D (--pubkey F | --csr F) --profile NAME
 *                     --serial-number X [--cn ..] [--pseudonym ..] [--given-name ..]
 *                     [--surname ..] [--country CC] [--days N] --out CERT.pem
 *                     (--passphrase-file F | --passphrase-env VAR | --pin-env VAR)
 *   msspctl ca revoke --dir D --serial HEX [--reason NAME]
 *   msspctl ca crl    --dir D [--out F] (--passphrase-file F | --passphrase-env VAR | --pin-env VAR)
 *   msspctl ca show   --dir D [--serial HEX]
 *
 * Pass phrases and PINs never come from argv (visible in ps and shell
 * history): a file or the name of an environment variable, which is wiped
 * and unset once read.  Argument handling and printing only; the work is
 * done by src/pki/ca.  Exit: 0 done, 1 refused (bad input, unknown serial,
 * key refused), 2 usage or I/O / internal error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cmd/msspctl/ctl.h"
#include "pki/ca.h"
#include "util/limits.h"

#define CA_EXIT_REFUSED 1
#define CA_EXIT_USAGE 2

struct ca_secret {
	char s_buf[MSSP_CA_MAX_SECRET + 2];
	size_t s_len;
	bool s_set;
};

static void
ca_usage(FILE *f)
{
	fputs("usage: msspctl ca init   --dir D [--ec|--rsa] [--cn NAME] [--o ORG] [--c CC] [--days N]\n"
	      "                         [--issuing-from ROOTDIR (--root-passphrase-file F |\n"
	      "                          --root-passphrase-env VAR | --root-pin-env VAR)]\n"
	      "                         (--passphrase-file F | --passphrase-env VAR |\n"
	      "                          --pkcs11-uri URI [--pkcs11-module PATH] --pin-env VAR)\n"
	      "       msspctl ca issue  --dir D (--pubkey F | --csr F) --profile authn|sign|NAME\n"
	      "                         --serial-number X [--cn NAME | --pseudonym P] [--given-name G]\n"
	      "                         [--surname S] [--country CC] [--days N] --out CERT.pem\n"
	      "                         (--passphrase-file F | --passphrase-env VAR | --pin-env VAR)\n"
	      "       msspctl ca revoke --dir D --serial HEX [--reason keyCompromise|superseded|...]\n"
	      "       msspctl ca crl    --dir D [--out F] (--passphrase-file F | --passphrase-env VAR |\n"
	      "                         --pin-env VAR)\n"
	      "       msspctl ca show   --dir D [--serial HEX]\n"
	      "Pass phrases and PINs are read from a file or an environment variable, never argv.\n",
	      f);
}

static void
ca_secret_wipe(struct ca_secret *s)
{
	OPENSSL_cleanse(s->s_buf, sizeof(s->s_buf));
	s->s_len = 0;
	s->s_set = false;
}

/* A secret from a file: the whole file, less one trailing newline. */
static int
ca_secret_file(struct ca_secret *s, const char *path)
{
	size_t n = 0;
	ssize_t r;
	int fd;

	if (s->s_set) {
		fprintf(stderr, "msspctl ca: give one pass phrase or PIN source\n");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "msspctl ca: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (n < sizeof(s->s_buf) - 1) {
		r = read(fd, s->s_buf + n, sizeof(s->s_buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > MSSP_CA_MAX_SECRET) {
		ca_secret_wipe(s);
		fprintf(stderr, "msspctl ca: %s: longer than %d bytes\n", path, MSSP_CA_MAX_SECRET);
		return -1;
	}
	if (n > 0 && s->s_buf[n - 1] == '\n')
		n--;
	if (n > 0 && s->s_buf[n - 1] == '\r')
		n--;
	s->s_buf[n] = '\0';
	s->s_len = n;
	s->s_set = true;
	return 0;
}

/* A secret from the environment variable `var`, which is then wiped and
 * removed so that child processes do not inherit it. */
static int
ca_secret_env(struct ca_secret *s, const char *var)
{
	char *v = getenv(var);
	size_t n;

	if (s->s_set) {
		fprintf(stderr, "msspctl ca: give one pass phrase or PIN source\n");
		return -1;
	}
	if (v == NULL) {
		fprintf(stderr, "msspctl ca: environment variable %s is not set\n", var);
		return -1;
	}
	n = strlen(v);
	if (n > MSSP_CA_MAX_SECRET) {
		fprintf(stderr, "msspctl ca: %s: longer than %d bytes\n", var, MSSP_CA_MAX_SECRET);
		return -1;
	}
	memcpy(s->s_buf, v, n + 1);
	OPENSSL_cleanse(v, n);
	unsetenv(var);
	s->s_len = n;
	s->s_set = true;
	return 0;
}

static int
ca_exit_for(const struct pki_err *e)
{
	return e->status == 900 ? CA_EXIT_USAGE : CA_EXIT_REFUSED;
}

static int
ca_fail(const char *what, const struct pki_err *e)
{
	fprintf(stderr, "msspctl ca %s: %s (status %d)\n", what, e->detail, e->status);
	return ca_exit_for(e);
}

static int
ca_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Whole file, at most `max` bytes (OPENSSL_free). */
static unsigned char *
ca_slurp(const char *path, size_t max, size_t *len)
{
	unsigned char *buf;
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		fprintf(stderr, "msspctl ca: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = OPENSSL_malloc(max + 1);
	n = buf ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0 || n > max) {
		fprintf(stderr, "msspctl ca: %s: empty or larger than %zu bytes\n", path, max);
		OPENSSL_free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static void
ca_time_text(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "?");
}

static int
ca_cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "ec", no_argument, NULL, 'e' },
		{ "rsa", no_argument, NULL, 'r' },
		{ "cn", required_argument, NULL, 'n' },
		{ "o", required_argument, NULL, 'o' },
		{ "c", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'D' },
		{ "issuing-from", required_argument, NULL, 'I' },
		{ "root-passphrase-file", required_argument, NULL, 'A' },
		{ "root-passphrase-env", required_argument, NULL, 'B' },
		{ "root-pin-env", required_argument, NULL, 'C' },
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ "passphrase-env", required_argument, NULL, 'v' },
		{ "pkcs11-uri", required_argument, NULL, 'u' },
		{ "pkcs11-module", required_argument, NULL, 'm' },
		{ "pin-env", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct pki_ca_init_params ip = { 0 };
	struct ca_secret sec = { 0 }, rsec = { 0 };
	struct pki_err err = { 0 };
	struct pki_ca *root = NULL, *ca = NULL;
	const char *root_dir = NULL;
	bool pin = false;
	char *hex = NULL;
	int c, rc = CA_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': ip.ci_dir = optarg; break;
		case 'e': ip.ci_alg = PKI_CA_KEY_EC_P256; break;
		case 'r': ip.ci_alg = PKI_CA_KEY_RSA; break;
		case 'n': ip.ci_cn = optarg; break;
		case 'o': ip.ci_o = optarg; break;
		case 'c': ip.ci_c = optarg; break;
		case 'D':
			if (ca_uint(optarg, MSSP_CA_MAX_DAYS, &ip.ci_days) != 0) {
				fprintf(stderr, "msspctl ca init: --days 1..%d\n", MSSP_CA_MAX_DAYS);
				goto out;
			}
			break;
		case 'I': root_dir = optarg; break;
		case 'A': if (ca_secret_file(&rsec, optarg)) goto out; break;
		case 'B':
		case 'C': if (ca_secret_env(&rsec, optarg)) goto out; break;
		case 'f': if (ca_secret_file(&sec, optarg)) goto out; break;
		case 'v': if (ca_secret_env(&sec, optarg)) goto out; break;
		case 'u': ip.ci_pkcs11_uri = optarg; break;
		case 'm': ip.ci_pkcs11_module = optarg; break;
		case 'p': if (ca_secret_env(&sec, optarg)) goto out; pin = true; break;
		default: ca_usage(stderr); goto out;
		}
	}
	if (optind != argc || ip.ci_dir == NULL || !sec.s_set ||
	    (ip.ci_pkcs11_uri != NULL) != pin || (root_dir != NULL) != rsec.s_set) {
		fprintf(stderr, "msspctl ca init: --dir, one key protection (a pass phrase, or\n"
				"  --pkcs11-uri with --pin-env) and, with --issuing-from, the root's secret\n");
		ca_usage(stderr);
		goto out;
	}
	if (ip.ci_cn == NULL)
		ip.ci_cn = root_dir ? "OpenMSSP Issuing CA" : "OpenMSSP Root CA";
	if (pin) {
		ip.ci_pin = sec.s_buf;
		ip.ci_pin_len = sec.s_len;
	} else {
		ip.ci_passphrase = sec.s_buf;
		ip.ci_passphrase_len = sec.s_len;
	}
	if (root_dir != NULL) {
		root = pki_ca_open(root_dir, rsec.s_buf, rsec.s_len, &err);
		ca_secret_wipe(&rsec);
		if (root == NULL) {
			rc = ca_fail("init (root)", &err);
			goto out;
		}
		ip.ci_issuer = root;
	}
	if (ip.ci_alg == PKI_CA_KEY_RSA && ip.ci_pkcs11_uri == NULL)
		fprintf(stderr, "msspctl ca init: generating an RSA-3072 key (a few seconds)\n");
	ca = pki_ca_init(&ip, &err);
	ca_secret_wipe(&sec);
	if (ca == NULL) {
		rc = ca_fail("init", &err);
		goto out;
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(pki_ca_cert(ca)), NULL);
		char subj[256];

		hex = bn ? BN_bn2hex(bn) : NULL;
		BN_free(bn);
		X509_NAME_oneline(X509_get_subject_name(pki_ca_cert(ca)), subj, sizeof(subj));
		printf("created %s CA in %s\n  subject %s\n  serial  %s\n  key     %s\n",
		       root ? "issuing" : "root", ip.ci_dir, subj, hex ? hex : "?",
		       ip.ci_pkcs11_uri ? ip.ci_pkcs11_uri : "ca.key (encrypted, scrypt + AES-256-CBC)");
	}
	rc = 0;
out:
	ca_secret_wipe(&sec);
	ca_secret_wipe(&rsec);
	OPENSSL_free(hex);
	pki_ca_free(ca);
	pki_ca_free(root);
	return rc;
}

/* --pubkey F: a PEM or DER SubjectPublicKeyInfo. */
static EVP_PKEY *
ca_read_pubkey(const char *path)
{
	const unsigned char *p;
	unsigned char *buf;
	EVP_PKEY *k = NULL;
	size_t len = 0;
	BIO *bio;

	buf = ca_slurp(path, MSSP_CA_MAX_FILE, &len);
	if (buf == NULL)
		return NULL;
	if (len > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		bio = BIO_new_mem_buf(buf, (int)len);
		k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
	} else {
		p = buf;
		k = d2i_PUBKEY(NULL, &p, (long)len);
		if (k != NULL && p != buf + len) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	OPENSSL_free(buf);
	ERR_clear_error();
	if (k == NULL)
		fprintf(stderr, "msspctl ca issue: %s is not a public key (PEM or DER SPKI)\n", path);
	return k;
}

/* --csr F: PEM ("CERTIFICATE REQUEST") is unwrapped to DER; the DER is
 * what src/pki/ca checks strictly. */
static unsigned char *
ca_read_csr(const char *path, size_t *len)
{
	unsigned char *buf, *der = NULL;
	char *name = NULL, *header = NULL;
	long dlen = 0;
	size_t n = 0;
	BIO *bio;

	buf = ca_slurp(path, 4 * MSSP_CA_MAX_CSR_DER, &n);
	if (buf == NULL)
		return NULL;
	if (n > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		bio = BIO_new_mem_buf(buf, (int)n);
		if (bio == NULL || !PEM_read_bio(bio, &name, &header, &der, &dlen) ||
		    (strcmp(name, "CERTIFICATE REQUEST") != 0 && strcmp(name, "NEW CERTIFICATE REQUEST") != 0)) {
			fprintf(stderr, "msspctl ca issue: %s is not a PEM certificate request\n", path);
			OPENSSL_free(der);
			der = NULL;
		} else {
			*len = (size_t)dlen;
		}
		BIO_free(bio);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(buf);
		ERR_clear_error();
		return der;
	}
	*len = n;
	return buf;
}

/* Open with the key from --passphrase-file/--passphrase-env/--pin-env. */
static struct pki_ca *
ca_open_keyed(const char *dir, struct ca_secret *sec, const char *what)
{
	struct pki_err err = { 0 };
	struct pki_ca *ca;

	ca = pki_ca_open(dir, sec->s_buf, sec->s_len, &err);
	ca_secret_wipe(sec);
	if (ca == NULL)
		ca_fail(what, &err);
	return ca;
}

static int
ca_cmd_issue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "csr", required_argument, NULL, 'r' },
		{ "profile", required_argument, NULL, 'P' },
		{ "serial-number", required_argument, NULL, 's' },
		{ "cn", required_argument, NULL, 'n' },
		{ "pseudonym", required_argument, NULL, 'y' },
		{ "given-name", required_argument, NULL, 'g' },
		{ "surname", required_argument, NULL, 'S' },
		{ "country", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'D' },
		{ "out", required_argument, NULL, 'o' },
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ "passphrase-env", required_argument, NULL, 'v' },
		{ "pin-env", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct pki_ca_identity id = { 0 };
	struct ca_secret sec = { 0 };
	struct pki_err err = { 0 };
	struct pki_ca *ca = NULL;
	const char *dir = NULL, *pubf = NULL, *csrf = NULL, *profile = NULL, *out = NULL;
	unsigned days = 0;
	unsigned char *csr = NULL;
	size_t csrlen = 0;
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	char *hex = NULL, na[32], subj[512];
	time_t t;
	int c, rc = CA_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': pubf = optarg; break;
		case 'r': csrf = optarg; break;
		case 'P': profile = optarg; break;
		case 's': id.id_serial_number = optarg; break;
		case 'n': id.id_common_name = optarg; break;
		case 'y': id.id_pseudonym = optarg; break;
		case 'g': id.id_given_name = optarg; break;
		case 'S': id.id_surname = optarg; break;
		case 'c': id.id_country = optarg; break;
		case 'D':
			if (ca_uint(optarg, MSSP_CA_MAX_DAYS, &days) != 0) {
				fprintf(stderr, "msspctl ca issue: --days 1..%d\n", MSSP_CA_MAX_DAYS);
				goto done;
			}
			break;
		case 'o': out = optarg; break;
		case 'f': if (ca_secret_file(&sec, optarg)) goto done; break;
		case 'v':
		case 'p': if (ca_secret_env(&sec, optarg)) goto done; break;
		default: ca_usage(stderr); goto done;
		}
	}
	if (optind != argc || dir == NULL || (pubf == NULL) == (csrf == NULL) || profile == NULL ||
	    out == NULL || !sec.s_set) {
		fprintf(stderr, "msspctl ca issue: --dir, one of --pubkey/--csr, --profile, --out and the\n"
				"  CA pass phrase or PIN are required\n");
		ca_usage(stderr);
		goto done;
	}
	if (id.id_serial_number == NULL) {
		fprintf(stderr, "msspctl ca issue: --serial-number is mandatory (the serialNumber RDN)\n");
		rc = CA_EXIT_REFUSED;
		goto done;
	}
	if (pubf != NULL && (pub = ca_read_pubkey(pubf)) == NULL) {
		rc = CA_EXIT_REFUSED;
		goto done;
	}
	if (csrf != NULL && (csr = ca_read_csr(csrf, &csrlen)) == NULL) {
		rc = CA_EXIT_REFUSED;
		goto done;
	}
	ca = ca_open_keyed(dir, &sec, "issue");
	if (ca == NULL) {
		rc = CA_EXIT_USAGE;
		goto done;
	}
	if ((pub ? pki_ca_issue(ca, profile, &id, pub, NULL, days, &x, &err)
		 : pki_ca_issue_csr(ca, profile, &id, csr, csrlen, NULL, days, &x, &err)) != 0) {
		rc = ca_fail("issue", &err);
		goto done;
	}
	/* The certificate is in the database already: a write failure here
	 * loses nothing (msspctl ca show lists it). */
	f = fopen(out, "w");
	if (f == NULL || !PEM_write_X509(f, x) || fclose(f) != 0) {
		f = NULL;
		fprintf(stderr, "msspctl ca issue: cannot write %s (the certificate is recorded)\n", out);
		goto done;
	}
	f = NULL;
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

		hex = bn ? BN_bn2hex(bn) : NULL;
		BN_free(bn);
	}
	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	t = 0;
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
			t = timegm(&tm);
	}
	ca_time_text(t, na, sizeof(na));
	printf("issued %s\n  serial   %s\n  subject  %s\n  profile  %s\n  notAfter %s\n", out,
	       hex ? hex : "?", subj, profile, na);
	rc = 0;
done:
	if (f != NULL)
		fclose(f);
	ca_secret_wipe(&sec);
	OPENSSL_free(hex);
	OPENSSL_free(csr);
	EVP_PKEY_free(pub);
	X509_free(x);
	pki_ca_free(ca);
	return rc;
}

static int
ca_cmd_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "serial", required_argument, NULL, 's' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct pki_err err = { 0 };
	struct pki_ca *ca = NULL;
	const char *dir = NULL, *serial = NULL, *rname = "unspecified";
	int c, reason, rc = CA_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': serial = optarg; break;
		case 'r': rname = optarg; break;
		default: ca_usage(stderr); return CA_EXIT_USAGE;
		}
	}
	if (optind != argc || dir == NULL || serial == NULL) {
		ca_usage(stderr);
		return CA_EXIT_USAGE;
	}
	if (pki_ca_reason_parse(rname, &reason) != 0) {
		fprintf(stderr, "msspctl ca revoke: unknown reason (unspecified, keyCompromise, cACompromise,\n"
				"  affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn)\n");
		return CA_EXIT_USAGE;
	}
	ca = pki_ca_open(dir, NULL, 0, &err);
	if (ca == NULL)
		return ca_fail("revoke", &err);
	if (pki_ca_revoke(ca, serial, reason, 0, &err) != 0) {
		rc = ca_fail("revoke", &err);
	} else {
		printf("revoked %s (%s); run 'msspctl ca crl' to publish a new CRL\n", serial, rname);
		rc = 0;
	}
	pki_ca_free(ca);
	return rc;
}

static int
ca_cmd_crl(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ "passphrase-env", required_argument, NULL, 'v' },
		{ "pin-env", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct ca_secret sec = { 0 };
	struct pki_err err = { 0 };
	struct pki_ca *ca = NULL;
	const char *dir = NULL, *out = NULL;
	X509_CRL *crl = NULL;
	FILE *f = NULL;
	int c, rc = CA_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'o': out = optarg; break;
		case 'f': if (ca_secret_file(&sec, optarg)) goto done; break;
		case 'v':
		case 'p': if (ca_secret_env(&sec, optarg)) goto done; break;
		default: ca_usage(stderr); goto done;
		}
	}
	if (optind != argc || dir == NULL || !sec.s_set) {
		ca_usage(stderr);
		goto done;
	}
	ca = ca_open_keyed(dir, &sec, "crl");
	if (ca == NULL)
		goto done;
	if (pki_ca_crl(ca, 0, &crl, &err) != 0) {
		rc = ca_fail("crl", &err);
		goto done;
	}
	if (out != NULL) {
		f = fopen(out, "w");
		if (f == NULL || !PEM_write_X509_CRL(f, crl) || fclose(f) != 0) {
			f = NULL;
			fprintf(stderr, "msspctl ca crl: cannot write %s\n", out);
			goto done;
		}
		f = NULL;
	}
	{
		ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
		STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl); /* NULL: none */

		printf("CRL number %ld with %d revoked certificate(s) written to %s/crl.pem%s%s\n",
		       num ? ASN1_INTEGER_get(num) : -1L, rev ? sk_X509_REVOKED_num(rev) : 0,
		       dir, out ? " and " : "", out ? out : "");
		ASN1_INTEGER_free(num);
	}
	rc = 0;
done:
	if (f != NULL)
		fclose(f);
	ca_secret_wipe(&sec);
	X509_CRL_free(crl);
	pki_ca_free(ca);
	return rc;
}

static void
ca_print_entry(const struct pki_ca_entry *e)
{
	char na[32], rt[32];

	ca_time_text(e->ce_not_after, na, sizeof(na));
	if (e->ce_revoked)
		ca_time_text(e->ce_rev_time, rt, sizeof(rt));
	printf("%-40s  %-7s  %-20s  %-8s  %-20s  %-20s  %s\n", e->ce_serial,
	       e->ce_revoked ? "revoked" : (e->ce_not_after < time(NULL) ? "expired" : "valid"), na,
	       e->ce_profile, e->ce_revoked ? rt : "-",
	       e->ce_revoked ? pki_ca_reason_name(e->ce_reason) : "-", e->ce_subject);
}

static int
ca_cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "serial", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct pki_ca_entry e;
	struct pki_err err = { 0 };
	struct pki_ca *ca;
	const char *dir = NULL, *serial = NULL;
	char subj[512], na[32];
	time_t t = 0;
	size_t i;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': serial = optarg; break;
		default: ca_usage(stderr); return CA_EXIT_USAGE;
		}
	}
	if (optind != argc || dir == NULL) {
		ca_usage(stderr);
		return CA_EXIT_USAGE;
	}
	ca = pki_ca_open(dir, NULL, 0, &err);
	if (ca == NULL)
		return ca_fail("show", &err);
	if (serial == NULL) {
		struct tm tm;

		X509_NAME_oneline(X509_get_subject_name(pki_ca_cert(ca)), subj, sizeof(subj));
		if (ASN1_TIME_to_tm(X509_get0_notAfter(pki_ca_cert(ca)), &tm))
			t = timegm(&tm);
		ca_time_text(t, na, sizeof(na));
		printf("CA %s\n  subject  %s\n  notAfter %s\n  issued   %zu certificate(s)\n\n", dir, subj,
		       na, pki_ca_count(ca));
	}
	if (serial != NULL && pki_ca_lookup(ca, serial, &e, &err) != 0) {
		rc = ca_fail("show", &err);
		goto out;
	}
	printf("%-40s  %-7s  %-20s  %-8s  %-20s  %-20s  %s\n", "SERIAL", "STATUS", "NOT AFTER",
	       "PROFILE", "REVOKED AT", "REASON", "SUBJECT");
	if (serial != NULL) {
		ca_print_entry(&e);
	} else {
		for (i = 0; i < pki_ca_count(ca); i++)
			if (pki_ca_entry_at(ca, i, &e) == 0)
				ca_print_entry(&e);
	}
out:
	pki_ca_free(ca);
	return rc;
}

int
ctl_ca(int argc, char **argv)
{
	if (argc < 2) {
		ca_usage(stderr);
		return CA_EXIT_USAGE;
	}
	if (strcmp(argv[1], "init") == 0)
		return ca_cmd_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "issue") == 0)
		return ca_cmd_issue(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return ca_cmd_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "crl") == 0)
		return ca_cmd_crl(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return ca_cmd_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		ca_usage(stdout);
		return 0;
	}
	ca_usage(stderr);
	return CA_EXIT_USAGE;
}
