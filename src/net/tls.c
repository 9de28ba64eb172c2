/*
 * tls.c - server and client SSL_CTX with the platform's TLS policy.
 * See tls.h for the policy and the contract.
 */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include "util/limits.h"

/* TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only.  TLS 1.3 suites
 * are all forward-secret; OpenSSL's default set is kept. */
#define TLS_CIPHERS_12 "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#define TLS_GROUPS "X25519:P-256:P-384"

/* ALPN wire form of the one protocol we speak. */
static const unsigned char tls_alpn_h11[] = "\x08http/1.1";
#define TLS_ALPN_H11_LEN (sizeof(tls_alpn_h11) - 1)

/* Fill e with "what: <OpenSSL reason>" and empty OpenSSL's error queue
 * (reason strings are static library text, never peer bytes). */
static void
tls_err(struct net_err *e, const char *what)
{
	unsigned long code = ERR_peek_last_error();
	const char *why = code ? ERR_reason_error_string(code) : NULL;

	snprintf(e->ne_detail, sizeof(e->ne_detail), "%s%s%s", what,
	    why ? ": " : "", why ? why : "");
	ERR_clear_error();
}

/*
 * Whole file into a new buffer of at most cap bytes (the caller wipes and
 * frees it).  Reading it ourselves caps the size before OpenSSL parses
 * anything, and the bytes checked are the bytes used (no stat/open race).
 */
static int
tls_read_file(const char *path, size_t cap, unsigned char **out, size_t *len,
    struct net_err *e, const char *what)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "%s: cannot open file", what);
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > cap) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "%s: file over %zu bytes", what, cap);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "%s: out of memory", what);
		goto out;
	}
	/* Read one byte past the size seen: a file that grew is refused. */
	while (got <= (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(e->ne_detail, sizeof(e->ne_detail),
			    "%s: read error", what);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > (size_t)st.st_size) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "%s: file changed while read", what);
		goto out;
	}
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

static void
tls_free_file(unsigned char *buf, size_t len)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* A key file is never encrypted here; refusing a pass phrase also keeps
 * OpenSSL from prompting on a terminal. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* Leaf and chain from a PEM file into ctx. */
static int
tls_load_chain(SSL_CTX *ctx, const char *path, struct net_err *e)
{
	unsigned char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	unsigned n;
	int rc = -1;

	if (tls_read_file(path, MSSP_TLS_MAX_FILE, &pem, &len, e,
	    "certificate chain") != 0)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		tls_err(e, "certificate chain");
		goto out;
	}
	x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL);
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
		tls_err(e, "certificate chain: leaf certificate");
		goto out;
	}
	X509_free(x);
	x = NULL;
	for (n = 0;; n++) {
		x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL);
		if (x == NULL)
			break;
		if (n >= MSSP_TLS_MAX_CHAIN) {
			snprintf(e->ne_detail, sizeof(e->ne_detail),
			    "certificate chain: more than %u CA certificates",
			    (unsigned)MSSP_TLS_MAX_CHAIN);
			goto out;
		}
		/* add0: the context takes x on success. */
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			tls_err(e, "certificate chain: CA certificate");
			goto out;
		}
		x = NULL;
	}
	/* The loop ends on "no more PEM blocks", which is not an error. */
	ERR_clear_error();
	rc = 0;
out:
	X509_free(x);
	BIO_free(bio);
	tls_free_file(pem, len);
	return rc;
}

static int
tls_load_key(SSL_CTX *ctx, const char *path, struct net_err *e)
{
	unsigned char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int rc = -1;

	if (tls_read_file(path, MSSP_TLS_MAX_FILE, &pem, &len, e,
	    "private key") != 0)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		tls_err(e, "private key");
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
	if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		tls_err(e, "private key");
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(e, "private key does not match the certificate");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(key);
	BIO_free(bio);
	tls_free_file(pem, len);
	return rc;
}

/*
 * Trust anchors from a PEM file into a new store; when names is not NULL,
 * also the list of their subjects (the certificate_authorities a server
 * sends in its CertificateRequest).
 */
static X509_STORE *
tls_load_store(const char *path, STACK_OF(X509_NAME) **names,
    struct net_err *e)
{
	unsigned char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	X509_NAME *nm = NULL;
	X509_STORE *st = NULL, *ret = NULL;
	STACK_OF(X509_NAME) *sk = NULL;
	unsigned n;

	if (tls_read_file(path, MSSP_TLS_MAX_FILE, &pem, &len, e,
	    "trust anchors") != 0)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	st = X509_STORE_new();
	if (names != NULL)
		sk = sk_X509_NAME_new_null();
	if (bio == NULL || st == NULL || (names != NULL && sk == NULL)) {
		tls_err(e, "trust anchors");
		goto out;
	}
	for (n = 0;; n++) {
		x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL);
		if (x == NULL)
			break;
		if (n >= MSSP_TLS_MAX_CA_CERTS) {
			snprintf(e->ne_detail, sizeof(e->ne_detail),
			    "trust anchors: more than %u certificates",
			    (unsigned)MSSP_TLS_MAX_CA_CERTS);
			goto out;
		}
		if (X509_STORE_add_cert(st, x) != 1) {
			tls_err(e, "trust anchors: certificate");
			goto out;
		}
		if (sk != NULL) {
			nm = X509_NAME_dup(X509_get_subject_name(x));
			if (nm == NULL || sk_X509_NAME_push(sk, nm) <= 0) {
				tls_err(e, "trust anchors: name");
				goto out;
			}
			nm = NULL;
		}
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	if (n == 0) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "trust anchors: no certificate in the file");
		goto out;
	}
	if (names != NULL) {
		*names = sk;
		sk = NULL;
	}
	ret = st;
	st = NULL;
out:
	X509_NAME_free(nm);
	sk_X509_NAME_pop_free(sk, X509_NAME_free);
	X509_free(x);
	X509_STORE_free(st);
	BIO_free(bio);
	tls_free_file(pem, len);
	return ret;
}

static int
tls_load_crls(X509_STORE *st, const char *path, struct net_err *e)
{
	unsigned char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509_CRL *crl = NULL;
	unsigned n;
	int rc = -1;

	if (tls_read_file(path, MSSP_TLS_MAX_CRL_FILE, &pem, &len, e,
	    "CRL") != 0)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		tls_err(e, "CRL");
		goto out;
	}
	for (n = 0;; n++) {
		crl = PEM_read_bio_X509_CRL(bio, NULL, tls_no_passphrase, NULL);
		if (crl == NULL)
			break;
		if (n >= MSSP_TLS_MAX_CA_CERTS) {
			snprintf(e->ne_detail, sizeof(e->ne_detail),
			    "CRL: more than %u CRLs",
			    (unsigned)MSSP_TLS_MAX_CA_CERTS);
			goto out;
		}
		if (X509_STORE_add_crl(st, crl) != 1) {
			tls_err(e, "CRL");
			goto out;
		}
		X509_CRL_free(crl);
		crl = NULL;
	}
	ERR_clear_error();
	if (n == 0) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "CRL: no CRL in the file");
		goto out;
	}
	rc = 0;
out:
	X509_CRL_free(crl);
	BIO_free(bio);
	tls_free_file(pem, len);
	return rc;
}

/*
 * ALPN: "http/1.1" or nothing.  A client that offers only other protocols
 * (h2) is refused with no_application_protocol rather than silently served
 * HTTP/1.1 on a connection it believes is HTTP/2 (H-13).
 */
static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int i = 0, n;

	(void)ssl;
	(void)arg;
	while (i < inlen) {
		n = in[i];
		if (n == 0 || n > inlen - i - 1)
			return SSL_TLSEXT_ERR_ALERT_FATAL; /* malformed list */
		if (n == TLS_ALPN_H11_LEN - 1 &&
		    memcmp(in + i + 1, tls_alpn_h11 + 1, n) == 0) {
			*out = tls_alpn_h11 + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* What both sides share: versions, suites, groups, security level. */
static int
tls_common(SSL_CTX *ctx, bool tls13_only, struct net_err *e)
{
	SSL_CTX_set_security_level(ctx, MSSP_TLS_SECURITY_LEVEL);
	if (SSL_CTX_set_min_proto_version(ctx,
	    tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		tls_err(e, "protocol versions");
		return -1;
	}
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1) {
		tls_err(e, "cipher list");
		return -1;
	}
	if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		tls_err(e, "groups");
		return -1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const struct tls_server_conf *c, struct net_err *e)
{
	SSL_CTX *ctx = NULL, *ret = NULL;
	X509_STORE *vstore = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	unsigned depth;

	e->ne_detail[0] = '\0';
	if (c->ts_cert_file == NULL || c->ts_key_file == NULL) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "certificate and key files are required");
		goto out;
	}
	if (c->ts_crl_file != NULL && c->ts_client_ca_file == NULL) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "a CRL needs client certificate trust anchors");
		goto out;
	}
	depth = c->ts_verify_depth ? c->ts_verify_depth : MSSP_TLS_VERIFY_DEPTH;
	if (depth > MSSP_TLS_MAX_VERIFY_DEPTH) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "verify depth over %u", (unsigned)MSSP_TLS_MAX_VERIFY_DEPTH);
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_err(e, "SSL_CTX_new");
		goto out;
	}
	if (tls_common(ctx, c->ts_tls13_only, e) != 0)
		goto out;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (tls_load_chain(ctx, c->ts_cert_file, e) != 0 ||
	    tls_load_key(ctx, c->ts_key_file, e) != 0)
		goto out;

	/* Sessions: a random id context makes sessions of this SSL_CTX
	 * unusable in any other one (another listener, a reloaded context). */
	if (RAND_bytes(sid, sizeof(sid)) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) != 1) {
		tls_err(e, "session id context");
		goto out;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, MSSP_TLS_SESSION_CACHE);
	SSL_CTX_set_timeout(ctx, c->ts_session_timeout_s ?
	    (long)c->ts_session_timeout_s : (long)MSSP_TLS_SESSION_TIMEOUT_S);
	if (SSL_CTX_set_num_tickets(ctx, MSSP_TLS_TICKETS) != 1) {
		tls_err(e, "session tickets");
		goto out;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	/* Bounds what a client may make us parse before any check (T-10). */
	SSL_CTX_set_max_cert_list(ctx, MSSP_TLS_MAX_CERT_LIST);

	if (c->ts_client_ca_file != NULL) {
		vstore = tls_load_store(c->ts_client_ca_file, &names, e);
		if (vstore == NULL)
			goto out;
		if (c->ts_crl_file != NULL &&
		    tls_load_crls(vstore, c->ts_crl_file, e) != 0)
			goto out;
		/* The client trust store is used for client verification only;
		 * the server's own chain was given explicitly above (T-02). */
		if (SSL_CTX_set1_verify_cert_store(ctx, vstore) != 1) {
			tls_err(e, "client trust store");
			goto out;
		}
		SSL_CTX_set_client_CA_list(ctx, names);  /* takes names */
		names = NULL;
		if (X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
		    X509_V_FLAG_X509_STRICT |
		    (c->ts_crl_file ? X509_V_FLAG_CRL_CHECK : 0)) != 1) {
			tls_err(e, "verify flags");
			goto out;
		}
		SSL_CTX_set_verify_depth(ctx, (int)depth);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    (c->ts_client_cert_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
		    NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	ret = ctx;
	ctx = NULL;
out:
	OPENSSL_cleanse(sid, sizeof(sid));
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	X509_STORE_free(vstore);
	SSL_CTX_free(ctx);
	return ret;
}

SSL_CTX *
tls_client_ctx_new(const struct tls_client_conf *c, struct net_err *e)
{
	SSL_CTX *ctx = NULL, *ret = NULL;
	X509_STORE *st = NULL;

	e->ne_detail[0] = '\0';
	if (c->tc_ca_file == NULL ||
	    (c->tc_cert_file == NULL) != (c->tc_key_file == NULL)) {
		snprintf(e->ne_detail, sizeof(e->ne_detail),
		    "a CA file is required, and a key with a certificate");
		goto out;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_err(e, "SSL_CTX_new");
		goto out;
	}
	if (tls_common(ctx, false, e) != 0)
		goto out;
	st = tls_load_store(c->tc_ca_file, NULL, e);
	if (st == NULL)
		goto out;
	SSL_CTX_set_cert_store(ctx, st);  /* takes st */
	st = NULL;
	if (X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
	    X509_V_FLAG_X509_STRICT) != 1) {
		tls_err(e, "verify flags");
		goto out;
	}
	SSL_CTX_set_verify_depth(ctx, MSSP_TLS_VERIFY_DEPTH);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->tc_cert_file != NULL &&
	    (tls_load_chain(ctx, c->tc_cert_file, e) != 0 ||
	    tls_load_key(ctx, c->tc_key_file, e) != 0))
		goto out;
	/* SSL_CTX_set_alpn_protos returns 0 on success. */
	if (c->tc_alpn_http11 && SSL_CTX_set_alpn_protos(ctx, tls_alpn_h11,
	    (unsigned)TLS_ALPN_H11_LEN) != 0) {
		tls_err(e, "ALPN");
		goto out;
	}
	ret = ctx;
	ctx = NULL;
out:
	X509_STORE_free(st);
	SSL_CTX_free(ctx);
	return ret;
}

int
tls_client_prepare(SSL *ssl, const char *host)
{
	unsigned char addr[16];
	int rc = -1;

	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
			goto out;
	} else {
		if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
		    SSL_set1_host(ssl, host) != 1)
			goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	return rc;
}

int
tls_cert_fingerprint(const X509 *cert, uint8_t fp[TLS_FP_LEN])
{
	unsigned int n = 0;

	if (cert == NULL || X509_digest(cert, EVP_sha256(), fp, &n) != 1 ||
	    n != TLS_FP_LEN) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void
tls_fp_hex(const uint8_t fp[TLS_FP_LEN], char hex[TLS_FP_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < TLS_FP_LEN; i++) {
		hex[2 * i] = digits[fp[i] >> 4];
		hex[2 * i + 1] = digits[fp[i] & 0x0f];
	}
	hex[TLS_FP_HEX_LEN] = '\0';
}
