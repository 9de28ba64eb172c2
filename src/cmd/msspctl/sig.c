/*
 * sig.c - msspctl sig verify|sign: the operator's view of src/pki/sig.
 *
 *   msspctl sig verify --in CMS --data FILE [--detached] [--digest ALG]
 *                      --ca CA.pem [--ca ...] [--crl CRL.pem]...
 *                      [--signer CERT.pem] [--policy "..."]
 *   msspctl sig sign   --key KEY.pem --cert CERT.pem [--chain CHAIN.pem]
 *                      --in DATA [--detached] [--md ALG] --out CMS.der
 *
 * verify prints one line, `valid signer=<subject>` (exit 0) or
 * `invalid status=<NNN> <detail>` (exit 1); usage and I/O errors exit 2.
 * The CMS may be DER, PEM or base64 (what an AP receives in
 * Base64Signature); the form is detected from the content.  With --crl the
 * signer's revocation status is required (fail closed: no current CRL is
 * status 900).  With --digest the data file holds the digest itself, raw
 * or in hex.
 *
 * Argument handling and printing only: every check is pki_sig_cms_verify.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cmd/msspctl/ctl.h"
#include "pki/sig.h"
#include "util/limits.h"

#define SIG_EXIT_OK	 0
#define SIG_EXIT_INVALID 1
#define SIG_EXIT_USAGE	 2

static void
sig_usage(FILE *f)
{
	fputs("usage: msspctl sig verify --in CMS --data FILE [--detached] [--digest ALG]\n"
	      "                          --ca CA.pem [--crl CRL.pem]... [--signer CERT.pem]\n"
	      "                          [--policy \"rsa_min_bits=3072 digests=sha256 ...\"]\n"
	      "       msspctl sig sign --key KEY.pem --cert CERT.pem [--chain CHAIN.pem]\n"
	      "                        --in DATA [--detached] [--md ALG] --out CMS.der\n"
	      "\n"
	      "verify  checks a CMS signature (DER, PEM or base64) strictly, as the MSSP\n"
	      "        does before answering an AP, and prints `valid signer=<subject>' or\n"
	      "        `invalid status=<NNN> <detail>' (TS 102 204 status).\n"
	      "        --detached: the CMS carries no content; --digest ALG: FILE holds the\n"
	      "        ALG digest (raw or hex) that was signed; --crl: revocation required.\n"
	      "sign    makes a CAdES-BES CMS signature for testing (attached by default).\n"
	      "A file name of - reads standard input.\n",
	      f);
}

/* Whole file ("-": standard input; pipes are fine), at most `max` bytes;
 * NULL with a message on stderr.  The buffer is OPENSSL_malloc'd, one byte
 * longer than *len and NUL-terminated; it may hold a private key, so growth
 * goes through OPENSSL_clear_realloc and the caller frees with
 * OPENSSL_clear_free(buf, *len + 1). */
static unsigned char *
sig_read_file(const char *path, size_t max, size_t *len)
{
	unsigned char *buf = NULL, *nb;
	size_t got = 0, cap = 0, ncap;
	ssize_t n;
	int fd;

	*len = 0;
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "msspctl sig: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (got == cap) {
			if (cap > max) {
				fprintf(stderr, "msspctl sig: %s: larger than %zu bytes\n", path, max);
				goto fail;
			}
			ncap = cap == 0 ? 16384 : cap * 2;
			if (ncap > max + 1)
				ncap = max + 1;
			if ((nb = OPENSSL_clear_realloc(buf, cap + 1, ncap + 1)) == NULL)
				goto fail;
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "msspctl sig: %s: %s\n", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		fprintf(stderr, "msspctl sig: %s: larger than %zu bytes\n", path, max);
		goto fail;
	}
	if (buf == NULL && (buf = OPENSSL_zalloc(1)) == NULL)
		goto fail;
	buf[got] = '\0';
	if (fd != STDIN_FILENO)
		close(fd);
	*len = got;
	return buf;
fail:
	OPENSSL_clear_free(buf, cap + 1);
	if (fd != STDIN_FILENO)
		close(fd);
	return NULL;
}

/* Every certificate (PEM, or a single DER) of a file onto `sk`. */
static int
sig_load_certs(const char *path, STACK_OF(X509) *sk)
{
	unsigned char *buf;
	const unsigned char *p;
	size_t len;
	BIO *b = NULL;
	X509 *x;
	int n = 0, rc = -1;

	if ((buf = sig_read_file(path, MSSP_PKI_SIG_CTL_MAX_FILE, &len)) == NULL)
		return -1;
	if (len > 0 && buf[0] == 0x30) {
		p = buf;
		x = d2i_X509(NULL, &p, (long)len);
		if (x != NULL && p == buf + len && sk_X509_push(sk, x) > 0)
			n = 1;
		else
			X509_free(x);
	} else if ((b = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		while (n < MSSP_PKI_SIG_CTL_MAX_OBJECTS && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			if (sk_X509_push(sk, x) <= 0) {
				X509_free(x);
				break;
			}
			n++;
		}
	}
	ERR_clear_error(); /* the end of the PEM stream is reported as an error */
	if (n == 0)
		fprintf(stderr, "msspctl sig: %s: no certificate found\n", path);
	else
		rc = 0;
	BIO_free(b);
	OPENSSL_free(buf);
	return rc;
}

static int
sig_load_crls(const char *path, X509_STORE *store)
{
	unsigned char *buf;
	size_t len;
	BIO *b;
	X509_CRL *c;
	int n = 0;

	if ((buf = sig_read_file(path, MSSP_PKI_SIG_CTL_MAX_FILE, &len)) == NULL)
		return -1;
	if ((b = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		while (n < MSSP_PKI_SIG_CTL_MAX_OBJECTS && (c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
			if (X509_STORE_add_crl(store, c) == 1)
				n++;
			X509_CRL_free(c);
		}
	}
	ERR_clear_error();
	BIO_free(b);
	OPENSSL_free(buf);
	if (n == 0) {
		fprintf(stderr, "msspctl sig: %s: no CRL found\n", path);
		return -1;
	}
	return 0;
}

/* Digest name -> NID, for the SHA-1/SHA-2 family only. */
static int
sig_md_nid(const char *name)
{
	const EVP_MD *md = EVP_get_digestbyname(name);
	int nid = md ? EVP_MD_get_type(md) : NID_undef;

	switch (nid) {
	case NID_sha1:
	case NID_sha224:
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
		return nid;
	default:
		return NID_undef;
	}
}

/* A digest file: `want` raw bytes, or hex text (optionally with ':' and a
 * trailing newline).  The result replaces *data. */
static int
sig_digest_input(unsigned char **data, size_t *len, size_t want)
{
	unsigned char *bin;
	long blen = 0;
	size_t n = *len;

	if (n == want)
		return 0;
	while (n > 0 && ((*data)[n - 1] == '\n' || (*data)[n - 1] == '\r' || (*data)[n - 1] == ' '))
		n--;
	(*data)[n] = '\0';
	bin = OPENSSL_hexstr2buf((const char *)*data, &blen);
	ERR_clear_error();
	if (bin == NULL || blen < 0 || (size_t)blen != want) {
		OPENSSL_free(bin);
		return -1;
	}
	OPENSSL_free(*data);
	*data = bin;
	*len = (size_t)blen;
	return 0;
}

/* The subject on one line, RFC 2253 with control and non-ASCII bytes
 * escaped (the certificate is attacker-supplied; the terminal is not). */
static void
sig_print_subject(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	long n;

	if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &s)) >= 0)
		printf("valid signer=%.*s\n", (int)n, s ? s : "");
	else
		printf("valid signer=?\n");
	BIO_free(b);
}

static int
sig_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' },	    { "data", required_argument, NULL, 'd' },
		{ "detached", no_argument, NULL, 'D' },	    { "digest", required_argument, NULL, 'g' },
		{ "ca", required_argument, NULL, 'c' },	    { "crl", required_argument, NULL, 'r' },
		{ "signer", required_argument, NULL, 's' }, { "policy", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};
	const char *in = NULL, *data_path = NULL, *signer_path = NULL, *policy = NULL, *digest = NULL;
	const char *cas[MSSP_PKI_SIG_CTL_MAX_FILES], *crls[MSSP_PKI_SIG_CTL_MAX_FILES];
	int ncas = 0, ncrls = 0, c, i, rc = SIG_EXIT_USAGE;
	bool detached = false;
	unsigned char *raw = NULL, *der = NULL, *data = NULL;
	size_t rawlen, derlen = 0, datalen = 0;
	STACK_OF(X509) *anchors = NULL, *signer_certs = NULL;
	X509_STORE *store = NULL;
	struct pki_policy pol;
	struct pki_verify_opts vo;
	struct pki_verify_result res;
	struct pki_err err;

	memset(&vo, 0, sizeof(vo));
	memset(&res, 0, sizeof(res));
	pki_policy_default(&pol);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in = optarg; break;
		case 'd': data_path = optarg; break;
		case 'D': detached = true; break;
		case 'g': digest = optarg; break;
		case 's': signer_path = optarg; break;
		case 'p': policy = optarg; break;
		case 'c':
		case 'r':
			if ((c == 'c' ? ncas : ncrls) >= MSSP_PKI_SIG_CTL_MAX_FILES) {
				fprintf(stderr, "msspctl sig: too many --%s files\n", c == 'c' ? "ca" : "crl");
				return SIG_EXIT_USAGE;
			}
			if (c == 'c')
				cas[ncas++] = optarg;
			else
				crls[ncrls++] = optarg;
			break;
		case 'h': sig_usage(stdout); return SIG_EXIT_OK;
		default: sig_usage(stderr); return SIG_EXIT_USAGE;
		}
	}
	if (optind != argc || in == NULL || data_path == NULL || ncas == 0) {
		sig_usage(stderr);
		return SIG_EXIT_USAGE;
	}
	if (policy != NULL && pki_policy_parse(&pol, policy, &err) != 0) {
		fprintf(stderr, "msspctl sig: --policy: %s\n", err.detail);
		return SIG_EXIT_USAGE;
	}
	vo.vo_policy = &pol;
	vo.vo_flags = detached ? PKI_SIG_DETACHED : 0;
	if (digest != NULL) {
		if ((vo.vo_md_nid = sig_md_nid(digest)) == NID_undef) {
			fprintf(stderr, "msspctl sig: --digest: unknown digest (sha1, sha224, sha256, sha384, sha512)\n");
			return SIG_EXIT_USAGE;
		}
		vo.vo_flags |= PKI_SIG_DIGEST;
	}

	if ((raw = sig_read_file(in, 2 * (size_t)MSSP_PKI_SIG_MAX_CMS, &rawlen)) == NULL)
		goto out;
	if ((data = sig_read_file(data_path, MSSP_PKI_SIG_MAX_DATA, &datalen)) == NULL)
		goto out;
	if (digest != NULL &&
	    sig_digest_input(&data, &datalen, (size_t)EVP_MD_get_size(EVP_get_digestbynid(vo.vo_md_nid))) != 0) {
		fprintf(stderr, "msspctl sig: %s: not a %s digest (raw or hex)\n", data_path, digest);
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL || (anchors = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 0; i < ncas; i++)
		if (sig_load_certs(cas[i], anchors) != 0)
			goto out;
	for (i = 0; i < sk_X509_num(anchors); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(anchors, i)) != 1)
			ERR_clear_error(); /* a duplicate anchor is harmless */
	for (i = 0; i < ncrls; i++)
		if (sig_load_crls(crls[i], store) != 0)
			goto out;
	vo.vo_trust = store;
	vo.vo_check_revocation = ncrls > 0;
	if (signer_path != NULL) {
		if ((signer_certs = sk_X509_new_null()) == NULL || sig_load_certs(signer_path, signer_certs) != 0)
			goto out;
		vo.vo_expected_signer = sk_X509_value(signer_certs, 0);
	}

	if (pki_sig_decode_input(raw, rawlen, &der, &derlen, &err) != 0 ||
	    pki_sig_cms_verify(der, derlen, data, datalen, &vo, &res, &err) != 0) {
		printf("invalid status=%d %s\n", err.status, err.detail);
		rc = SIG_EXIT_INVALID;
		goto out;
	}
	sig_print_subject(res.vr_signer);
	rc = SIG_EXIT_OK;
out:
	pki_verify_result_clear(&res);
	sk_X509_pop_free(signer_certs, X509_free);
	sk_X509_pop_free(anchors, X509_free);
	X509_STORE_free(store);
	OPENSSL_free(raw);
	OPENSSL_free(der);
	OPENSSL_free(data);
	return rc;
}

/* Write `len` bytes to `path` atomically: a temporary file in the same
 * directory (mode 0600: the signed data may be personal), fsync, rename,
 * fsync of the directory. */
static int
sig_write_atomic(const char *path, const unsigned char *buf, size_t len)
{
	char tmp[4096], dir[4096];
	const char *slash = strrchr(path, '/');
	size_t off = 0;
	ssize_t n;
	int fd, dfd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return -1;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = mkstemp(tmp)) < 0)
		return -1;
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = fsync(dfd);
		close(dfd);
	}
	return rc;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

static int
sig_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },  { "cert", required_argument, NULL, 'c' },
		{ "chain", required_argument, NULL, 'C' }, { "in", required_argument, NULL, 'i' },
		{ "detached", no_argument, NULL, 'D' },	   { "md", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key_path = NULL, *cert_path = NULL, *chain_path = NULL, *in = NULL, *out = NULL;
	int md_nid = NID_sha256, c, rc = SIG_EXIT_USAGE;
	bool detached = false;
	unsigned char *keybuf = NULL, *data = NULL, *der = NULL;
	size_t keylen = 0, datalen = 0, derlen = 0;
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	EVP_PKEY *key = NULL;
	BIO *b = NULL;
	struct pki_err err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_path = optarg; break;
		case 'c': cert_path = optarg; break;
		case 'C': chain_path = optarg; break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'D': detached = true; break;
		case 'm':
			if ((md_nid = sig_md_nid(optarg)) == NID_undef) {
				fprintf(stderr, "msspctl sig: --md: unknown digest\n");
				return SIG_EXIT_USAGE;
			}
			break;
		case 'h': sig_usage(stdout); return SIG_EXIT_OK;
		default: sig_usage(stderr); return SIG_EXIT_USAGE;
		}
	}
	if (optind != argc || key_path == NULL || cert_path == NULL || in == NULL || out == NULL) {
		sig_usage(stderr);
		return SIG_EXIT_USAGE;
	}
	if ((keybuf = sig_read_file(key_path, MSSP_PKI_SIG_CTL_MAX_FILE, &keylen)) == NULL)
		goto out;
	/* NULL callback: OpenSSL prompts on the terminal for an encrypted key. */
	if ((b = BIO_new_mem_buf(keybuf, (int)keylen)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		fprintf(stderr, "msspctl sig: %s: no usable private key\n", key_path);
		goto out;
	}
	if ((certs = sk_X509_new_null()) == NULL || sig_load_certs(cert_path, certs) != 0)
		goto out;
	if (chain_path != NULL &&
	    ((chain = sk_X509_new_null()) == NULL || sig_load_certs(chain_path, chain) != 0))
		goto out;
	if ((data = sig_read_file(in, MSSP_PKI_SIG_MAX_DATA, &datalen)) == NULL)
		goto out;
	if (pki_sig_cms_sign(key, sk_X509_value(certs, 0), chain, data, datalen, md_nid,
			     detached ? PKI_SIG_DETACHED : 0, &der, &derlen, &err) != 0) {
		printf("refused status=%d %s\n", err.status, err.detail);
		rc = SIG_EXIT_INVALID;
		goto out;
	}
	if (sig_write_atomic(out, der, derlen) != 0) {
		fprintf(stderr, "msspctl sig: %s: cannot write: %s\n", out, strerror(errno));
		goto out;
	}
	printf("signed bytes=%zu out=%s\n", derlen, out);
	rc = SIG_EXIT_OK;
out:
	BIO_free(b);
	EVP_PKEY_free(key);
	OPENSSL_clear_free(keybuf, keylen + 1);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	OPENSSL_free(data);
	OPENSSL_free(der);
	return rc;
}

int
ctl_sig(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return sig_verify(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "sign") == 0)
		return sig_sign(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		sig_usage(stdout);
		return SIG_EXIT_OK;
	}
	sig_usage(stderr);
	return SIG_EXIT_USAGE;
}
