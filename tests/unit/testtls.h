/*
 * testtls.h - test certificates, TLS contexts and a loopback client
 * socket for the tests (header-only, static: each test binary is one .c
 * file, see the Makefile's test rule).
 *
 * Every certificate is made at run time with OpenSSL APIs (P-256 keys,
 * SHA-256 signatures) and, when a file is wanted, written as PEM into the
 * test's own mkdtemp() directory: no key is ever committed.  File names
 * are relative to that directory, which the functions that touch files
 * take as their first argument.  struct tt_cafx is a ready fixture (a
 * directory and a CA in memory) for tests that only need certificates.
 *
 * Every function fails the running test (cmocka) on any error, so it must
 * run on the cmocka thread (group setup or a test), never on a loop or
 * worker thread.
 */
#ifndef MSSP_TESTTLS_H
#define MSSP_TESTTLS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

#include "testdir.h"

#define TT_DAY (24L * 3600)
#define TT_NEXT(a) (sizeof(a) / sizeof((a)[0]))

/* One X.509v3 extension, in openssl.cnf syntax. */
struct tt_ext {
	int nid;
	const char *value;
};

static const struct tt_ext tt_ca_ext[] = {
	{ NID_basic_constraints, "critical,CA:TRUE" },
	{ NID_key_usage, "critical,keyCertSign,cRLSign" },
	{ NID_subject_key_identifier, "hash" },
};

/* A server leaf for the loopback address and localhost. */
static const struct tt_ext tt_server_ext[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "serverAuth" },
	{ NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost" },
	{ NID_authority_key_identifier, "keyid:always" },
};

static const struct tt_ext tt_client_ext[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "clientAuth" },
	{ NID_authority_key_identifier, "keyid:always" },
};

/* A signing certificate, as a keystore group holds (no EKU, no names). */
static const struct tt_ext tt_sign_ext[] = {
	{ NID_key_usage, "critical,digitalSignature,nonRepudiation" },
};

/* out = dir/name */
static inline void
tt_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

/* A certificate for key with subject CN=cn, valid from now + from_s to
 * now + to_s, signed by (issuer, ikey), or self-signed when issuer is NULL.
 * Serial numbers count up within the test binary.  The caller frees it. */
static inline X509 *
tt_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
    long from_s, long to_s, const struct tt_ext *ext, size_t next)
{
	static long serial = 1000;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	size_t i;

	assert_non_null(x);
	assert_non_null(name);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++),
	    1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ?
	    X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	for (i = 0; i < next; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid,
		    ext[i].value);

		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* dir/file, created or truncated for writing, mode 0600 before anything
 * is written: a private key should never be readable by others, even a
 * throwaway one in /tmp. */
static inline FILE *
tt_create(const char *dir, const char *file)
{
	char p[512];
	FILE *f;

	tt_path(p, sizeof(p), dir, file);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	return f;
}

static inline void
tt_write_cert(const char *dir, const char *file, X509 *x)
{
	FILE *f = tt_create(dir, file);

	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
}

/* Unencrypted PKCS#8. */
static inline void
tt_write_key(const char *dir, const char *file, EVP_PKEY *k)
{
	FILE *f = tt_create(dir, file);

	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
	    1);
	assert_int_equal(fclose(f), 0);
}

/* A self-signed CA with a new key (*key, the caller frees it), valid a
 * day back and a year ahead.  The caller frees the certificate. */
static inline X509 *
tt_new_ca(const char *cn, EVP_PKEY **key)
{
	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	return tt_make_cert(*key, cn, NULL, NULL, -TT_DAY, 365 * TT_DAY,
	    tt_ca_ext, TT_NEXT(tt_ca_ext));
}

/* The same, also written to dir/file. */
static inline X509 *
tt_make_ca(const char *dir, const char *file, const char *cn, EVP_PKEY **key)
{
	X509 *ca = tt_new_ca(cn, key);

	tt_write_cert(dir, file, ca);
	return ca;
}

/* A leaf with a new key, CN=name, issued by (ca, cakey): written to
 * dir/<name>.pem and dir/<name>.key.  The caller frees the certificate. */
static inline X509 *
tt_make_leaf(const char *dir, const char *name, X509 *ca, EVP_PKEY *cakey,
    const struct tt_ext *ext, size_t next, long from_s, long to_s)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char f[256];
	X509 *x;

	assert_non_null(k);
	x = tt_make_cert(k, name, ca, cakey, from_s, to_s, ext, next);
	snprintf(f, sizeof(f), "%s.pem", name);
	tt_write_cert(dir, f, x);
	snprintf(f, sizeof(f), "%s.key", name);
	tt_write_key(dir, f, k);
	EVP_PKEY_free(k);
	return x;
}

/* The smallest PKI: a CA in dir/ca.pem and a server leaf for 127.0.0.1
 * and localhost in dir/server.pem and dir/server.key, valid 30 days. */
static inline void
tt_make_server_pki(const char *dir, const char *ca_cn)
{
	EVP_PKEY *cakey;
	X509 *ca = tt_make_ca(dir, "ca.pem", ca_cn, &cakey);

	X509_free(tt_make_leaf(dir, "server", ca, cakey, tt_server_ext,
	    TT_NEXT(tt_server_ext), -TT_DAY, 30 * TT_DAY));
	X509_free(ca);
	EVP_PKEY_free(cakey);
}

/* A server context from dir/<name>.pem and dir/<name>.key; client_ca
 * (a file in dir, or NULL) asks for and verifies client certificates
 * (mutual TLS), crl (a file in dir, or NULL) is checked against them.
 * The caller frees it. */
static inline SSL_CTX *
tt_server_ctx(const char *dir, const char *name, const char *client_ca,
    const char *crl)
{
	char c[512], k[512], ca[512], cr[512], f[256];
	struct tls_server_conf tc;
	struct net_err e;
	SSL_CTX *ctx;

	snprintf(f, sizeof(f), "%s.pem", name);
	tt_path(c, sizeof(c), dir, f);
	snprintf(f, sizeof(f), "%s.key", name);
	tt_path(k, sizeof(k), dir, f);
	memset(&tc, 0, sizeof(tc));
	tc.ts_cert_file = c;
	tc.ts_key_file = k;
	if (client_ca != NULL) {
		tt_path(ca, sizeof(ca), dir, client_ca);
		tc.ts_client_ca_file = ca;
	}
	if (crl != NULL) {
		tt_path(cr, sizeof(cr), dir, crl);
		tc.ts_crl_file = cr;
	}
	ctx = tls_server_ctx_new(&tc, &e);
	if (ctx == NULL)
		fail_msg("tls_server_ctx_new: %s", e.ne_detail);
	return ctx;
}

/* A client context trusting dir/<ca>; with name (or NULL: none) it
 * presents dir/<name>.pem with dir/<name>.key; alpn offers http/1.1.
 * The caller frees it. */
static inline SSL_CTX *
tt_client_ctx(const char *dir, const char *ca, const char *name, bool alpn)
{
	char cf[512], c[512], k[512], f[256];
	struct tls_client_conf cc;
	struct net_err e;
	SSL_CTX *ctx;

	tt_path(cf, sizeof(cf), dir, ca);
	memset(&cc, 0, sizeof(cc));
	cc.tc_ca_file = cf;
	cc.tc_alpn_http11 = alpn;
	if (name != NULL) {
		snprintf(f, sizeof(f), "%s.pem", name);
		tt_path(c, sizeof(c), dir, f);
		snprintf(f, sizeof(f), "%s.key", name);
		tt_path(k, sizeof(k), dir, f);
		cc.tc_cert_file = c;
		cc.tc_key_file = k;
	}
	ctx = tls_client_ctx_new(&cc, &e);
	if (ctx == NULL)
		fail_msg("tls_client_ctx_new: %s", e.ne_detail);
	return ctx;
}

/* ---- a blocking loopback client socket --------------------------------- */

/* A TCP connection to 127.0.0.1:port, from src (an address of this host)
 * or any address when NULL: close-on-exec, Nagle off, and 5 s timeouts on
 * send and receive so that a test fails instead of hanging. */
static inline int
tt_tcp_connect(uint16_t port, const char *src)
{
	struct sockaddr_in sa;
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src != NULL) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, src, &sa.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* ---- a fixture: a scratch directory and a CA in memory ---------------- */

/* For the tests that need certificates for keys they hold elsewhere (a
 * keystore's groups): cmocka group setup/teardown, *state is the
 * fixture. */
struct tt_cafx {
	char dir[256];       /* /tmp/<name>.XXXXXX, removed at teardown */
	int seq;             /* free for the test (unique file names)  */
	EVP_PKEY *ca_key;
	X509 *ca_cert;
};

static inline int
tt_cafx_setup(void **state, const char *name, const char *ca_cn)
{
	struct tt_cafx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (td_make(f->dir, sizeof(f->dir), name) != 0) {
		free(f);
		return -1;
	}
	f->ca_cert = tt_new_ca(ca_cn, &f->ca_key);
	*state = f;
	return 0;
}

static inline int
tt_cafx_teardown(void **state)
{
	struct tt_cafx *f = *state;

	td_remove(f->dir);
	EVP_PKEY_free(f->ca_key);
	X509_free(f->ca_cert);
	free(f);
	return 0;
}

/* A signing certificate (tt_sign_ext) for pub from the fixture CA, valid
 * an hour back and a day ahead.  The caller frees it. */
static inline X509 *
tt_cafx_issue(struct tt_cafx *f, EVP_PKEY *pub, const char *cn)
{
	return tt_make_cert(pub, cn, f->ca_cert, f->ca_key, -3600, 86400,
	    tt_sign_ext, TT_NEXT(tt_sign_ext));
}

#endif
