/*
 * init.c - `msspd init`: create a data directory (docs/internals/datadir.md).
 *
 *   msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]
 *              [--mssp-id URI] [--demo-prefix +DIGITS]
 *
 * What it makes: the development TLS PKI (a CA, the node's server
 * certificate), the user CA (src/pki/ca), the SQLite store, a commented
 * msspd.conf; with --demo also the demo AP's client certificate and
 * configuration, mss-phone's configuration and the eight demo users of
 * the table in datadir.md (keystore, certificates, device key, channel
 * key, registry records); with --bench-users M, M more click-OK users for
 * `make bench`.
 *
 * All or nothing: DIR must not exist or be empty, and on any failure what
 * init created under it is removed again (and DIR itself if init made it),
 * so a half-made directory never looks like a usable one.
 *
 * The TLS certificates are built here with OpenSSL directly: src/pki/ca is
 * the user CA and deliberately issues nothing but user certificates (no
 * SAN, no serverAuth), and the TLS CA of a development setup needs no
 * database, CRL or encrypted key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cmd/msspd/msspd.h"
#include "net/tls.h"
#include "phone/keystore.h"
#include "pki/ca.h"
#include "pki/e2e.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/config.h"
#include "util/hex.h"
#include "util/limits.h"

#define INIT_EXIT_FAIL 1
#define INIT_EXIT_USAGE 2

#define INIT_DEFAULT_BASE_PORT 9443u
/* The highest port init derives is base + 6 (the mesh listener). */
#define INIT_MAX_BASE_PORT (65535u - 6u)
#define INIT_TLS_CA_DAYS 3650	  /* development TLS CA: 10 years        */
#define INIT_TLS_LEAF_DAYS 730	  /* server and AP certificates: 2 years */
#define INIT_SERIAL_BYTES 16	  /* random certificate serials          */
#define INIT_CA_SECRET_BYTES 32	  /* user CA pass phrase: 256 random bits */
#define INIT_BENCH_PROGRESS 500	  /* progress line every N bench users   */
/* Bench users are made by a few threads: each user costs about a dozen
 * fsync()s (keystore, CA database, store), and waiting for the disk
 * overlaps well; the CA, which is not thread-safe, is taken in turn. */
#define INIT_BENCH_THREADS 4
#define INIT_DEMO_USERS 8
#define INIT_GROUPS_MAX 3	  /* key groups of one demo user          */

#define INIT_DEMO_PIN "123456"
#define INIT_DEMO_PUK "12345678"
/* Wrong secrets used to block the PIN of user 003 and to exhaust the PUK of
 * user 005: the same path a user's wrong attempts take. */
#define INIT_WRONG_PIN "000000"
#define INIT_WRONG_PUK "00000000"

#define INIT_DEMO_MSISDN_FMT "+358470000%02u"
#define INIT_BENCH_MSISDN_BASE 35849000000ULL
/* --demo-prefix P: demo user n is P followed by n (1..8), bench user i is
 * P "9" and i in 4 digits; so P has at most 10 digits (15 in all). */
#define INIT_DEMO_PREFIX_MAX_DIGITS 10
#define INIT_DEFAULT_MSSP_ID "http://openmssp.local/"
#define INIT_AP_ID "http://demo.ap/"
#define INIT_AP_REST_USER "demo-ap" /* its HTTP Basic user name (rest.md) */

/* One key group as created on the phone and registered at home. */
struct init_group {
	const char *g_id;	  /* keystore group id and key id suffix */
	enum ks_purpose g_purpose;
	const char *g_profile;	  /* the signature profile it serves     */
	const char *g_ca_profile; /* user CA certificate profile          */
	bool g_pin;		  /* PIN + PUK, or a click-OK key         */
};

static const struct init_group init_g_authn = {"authn", KS_PURPOSE_AUTHN,
					       "mss:demo:authn:loa3:app", "authn", true};
static const struct init_group init_g_sign = {"sign", KS_PURPOSE_SIGN, "mss:demo:sign:loa3:app",
					      "sign", true};
static const struct init_group init_g_click = {"click", KS_PURPOSE_AUTHN,
					       "mss:demo:authn:loa2:app", "authn", false};

/* What happens to a demo user's keys after they are made (datadir.md). */
enum init_fate {
	INIT_FATE_OK = 0,
	INIT_FATE_BLOCKED,  /* every PIN blocked in the keystore: 402        */
	INIT_FATE_DISABLED, /* PIN blocked, PUK exhausted: 403               */
	INIT_FATE_REVOKED,  /* certificates revoked, keys REVOKED in store  */
};

struct init_demo_user {
	unsigned du_n;
	bool du_sign;
	bool du_click;
	enum init_fate du_fate;
	const char *du_action; /* device.conf demo_action (mss-phone --demo);
				* NULL: sign */
};

static const struct init_demo_user init_demo_table[INIT_DEMO_USERS] = {
	{1, true, true, INIT_FATE_OK, NULL},	   {2, true, false, INIT_FATE_OK, "refuse"},
	{3, true, false, INIT_FATE_BLOCKED, NULL}, {4, true, false, INIT_FATE_OK, "ignore"},
	{5, true, false, INIT_FATE_DISABLED, NULL}, {6, false, false, INIT_FATE_OK, NULL},
	{7, true, false, INIT_FATE_REVOKED, NULL}, {8, true, false, INIT_FATE_OK, "sign_other"},
};

struct init_opts {
	const char *o_dir;
	bool o_demo;
	unsigned o_base_port;
	unsigned o_bench;
	const char *o_mssp_id;	   /* [ae] mssp_id written                 */
	const char *o_demo_prefix; /* NULL: the historical demo numbers    */
};

struct init_run {
	const struct init_opts *r_o;
	bool r_dir_created;  /* mkdir'ed DIR (else it existed, empty) */
	mode_t r_dir_mode;   /* its mode before, to restore on failure */
	EVP_PKEY *r_tls_key; /* development TLS CA                     */
	X509 *r_tls_ca;
	struct pki_ca *r_ca; /* the user CA, opened with its key       */
	pthread_mutex_t r_ca_mu; /* r_ca is not thread-safe            */
	STACK_OF(X509) *r_chain; /* installed above user certificates  */
	struct store *r_st;
	struct audit *r_audit;	  /* DIR/audit: init's records (seeding)   */
	struct reg *r_reg;	  /* seeds accounts, APs, profiles          */
	char r_ap_fp[TLS_FP_HEX_LEN + 1];
	atomic_uint r_users;
	atomic_uint r_keys;
	atomic_uint r_bench_next; /* next bench user index to make        */
	atomic_uint r_bench_done;
	atomic_bool r_bench_failed;
};

/* ---- Small helpers -------------------------------------------------- */

static int
init_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "msspd init: <message>" on stderr; returns -1. */
static int
init_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	/* One write per message: bench threads may fail at the same time. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "msspd init: %s\n", msg);
	return -1;
}

/* OpenSSL's reason for the last failure, then a clean queue (the queue of
 * a long init would otherwise mix unrelated errors). */
static int
init_fail_ssl(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		init_fail("%s: %s", what, buf);
	} else {
		init_fail("%s", what);
	}
	ERR_clear_error();
	return -1;
}

static int64_t
init_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* out = DIR "/" printf(fmt, ...); -1 if it does not fit. */
static int
init_path(const struct init_run *r, char out[MSSP_INIT_MAX_PATH], const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
init_path(const struct init_run *r, char out[MSSP_INIT_MAX_PATH], const char *fmt, ...)
{
	char rel[MSSP_INIT_MAX_PATH];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return init_fail("path too long");
	n = snprintf(out, MSSP_INIT_MAX_PATH, "%s/%s", r->r_o->o_dir, rel);
	if (n < 0 || n >= MSSP_INIT_MAX_PATH)
		return init_fail("path too long under %s", r->r_o->o_dir);
	return 0;
}

static int
init_mkdir(const struct init_run *r, const char *rel)
{
	char p[MSSP_INIT_MAX_PATH];

	if (init_path(r, p, "%s", rel) != 0)
		return -1;
	if (mkdir(p, 0700) != 0)
		return init_fail("%s: %s", p, strerror(errno));
	return 0;
}

/* Write a new file (it must not exist: nothing is ever overwritten, and a
 * planted symlink is not followed) with `mode`. */
static int
init_write(const char *path, const void *data, size_t len, mode_t mode)
{
	const unsigned char *p = data;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return init_fail("%s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			init_fail("%s: write: %s", path, w < 0 ? strerror(errno) : "short");
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) != 0)
		return init_fail("%s: close: %s", path, strerror(errno));
	return 0;
}

/* Write the contents of a memory BIO to a new file, then wipe the BIO's
 * buffer (it may hold a private key). */
static int
init_write_bio(const char *path, BIO *b, mode_t mode)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	int rc;

	if (n <= 0 || data == NULL)
		return init_fail("%s: nothing to write", path);
	rc = init_write(path, data, (size_t)n, mode);
	OPENSSL_cleanse(data, (size_t)n);
	return rc;
}

static int
init_write_cert(const char *path, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc;

	if (b == NULL || PEM_write_bio_X509(b, x) != 1) {
		BIO_free(b);
		return init_fail_ssl("PEM encoding of a certificate");
	}
	rc = init_write_bio(path, b, 0644);
	BIO_free(b);
	return rc;
}

/* Unencrypted PEM PKCS#8 ("PRIVATE KEY"), mode 0600.  The secure-heap BIO
 * frees its buffer with OPENSSL_clear_free. */
static int
init_write_key(const char *path, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_secmem());
	int rc;

	if (b == NULL || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(b);
		return init_fail_ssl("PEM encoding of a private key");
	}
	rc = init_write_bio(path, b, 0600);
	BIO_free(b);
	return rc;
}

/* Check that a configuration file we wrote parses in the util/config
 * dialect (no schema here: the programs that read it hold theirs). */
static int
init_check_conf(const char *path)
{
	struct cfg_err ce = {0};
	struct cfg *c = cfg_load(path, NULL, 0, &ce);

	if (c == NULL)
		return init_fail("%s: generated file does not parse (line %u: %s)", path, ce.line,
				 ce.msg);
	cfg_free(c);
	return 0;
}

static int
init_write_conf(const struct init_run *r, const char *rel, struct mss_buf *b, mode_t mode)
{
	char p[MSSP_INIT_MAX_PATH];

	if (mss_buf_len(b) == 0)
		return init_fail("%s: out of memory", rel);
	if (init_path(r, p, "%s", rel) != 0 || init_write(p, mss_buf_str(b), mss_buf_len(b), mode))
		return -1;
	return init_check_conf(p);
}

/* Upper-case hex of the certificate serial, as the user CA lists it. */
static int
init_serial_hex(X509 *x, char out[PKI_CA_SERIAL_HEX_MAX + 1])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = -1;

	if (hex != NULL && strlen(hex) <= PKI_CA_SERIAL_HEX_MAX) {
		memcpy(out, hex, strlen(hex) + 1);
		rc = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	if (rc != 0)
		init_fail("certificate serial: cannot encode");
	return rc;
}

/* ---- Removal on failure ---------------------------------------------- */

static bool init_rm_keep_top; /* DIR existed before: keep it, empty it */

static int
init_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0 && init_rm_keep_top)
		return 0;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* Everything under DIR was made by this run (DIR did not exist or was
 * empty and 0700, so nobody else wrote into it): remove it all, without
 * following symbolic links. */
static void
init_remove(const struct init_run *r)
{
	init_rm_keep_top = !r->r_dir_created;
	(void)nftw(r->r_o->o_dir, init_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	if (!r->r_dir_created)
		(void)chmod(r->r_o->o_dir, r->r_dir_mode);
}

/* DIR: create it 0700, or take an existing empty directory (made 0700). */
static int
init_take_dir(struct init_run *r)
{
	const char *dir = r->r_o->o_dir;
	struct stat st;
	DIR *d;
	struct dirent *de;
	bool empty = true;

	if (mkdir(dir, 0700) == 0) {
		r->r_dir_created = true;
		return 0;
	}
	if (errno != EEXIST)
		return init_fail("%s: cannot create: %s", dir, strerror(errno));
	if (lstat(dir, &st) != 0)
		return init_fail("%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return init_fail("%s exists and is not a directory", dir);
	d = opendir(dir);
	if (d == NULL)
		return init_fail("%s: %s", dir, strerror(errno));
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	if (!empty)
		return init_fail("%s exists and is not empty: refusing to touch it", dir);
	if (st.st_uid != geteuid())
		return init_fail("%s is not owned by the current user", dir);
	r->r_dir_mode = st.st_mode & 07777;
	if (chmod(dir, 0700) != 0)
		return init_fail("%s: chmod: %s", dir, strerror(errno));
	return 0;
}

/* ---- Development TLS PKI ------------------------------------------------ */

struct init_ext {
	int e_nid;
	const char *e_value; /* OpenSSL's config syntax */
};

/* A certificate for `key` signed by `ikey`, issued by `issuer` (NULL:
 * self-signed), with a random positive 128-bit serial, SHA-256. */
static X509 *
init_tls_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, unsigned days,
	      const struct init_ext *ext, size_t n)
{
	unsigned char sb[INIT_SERIAL_BYTES];
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIGNUM *serial = NULL;
	X509V3_CTX ctx;
	size_t i;

	if (x == NULL || name == NULL || RAND_bytes(sb, sizeof(sb)) != 1)
		goto fail;
	sb[0] &= 0x7f; /* positive */
	sb[0] |= 0x40; /* and always the full 16 bytes */
	serial = BN_bin2bn(sb, sizeof(sb), NULL);
	if (serial == NULL || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
				       (const unsigned char *)"OpenMSSP development", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) != 1)
		goto fail;
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
	    X509_set_pubkey(x, key) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].e_nid, ext[i].e_value);

		if (e == NULL || X509_add_ext(x, e, -1) != 1) {
			X509_EXTENSION_free(e);
			goto fail;
		}
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, ikey, EVP_sha256()) <= 0)
		goto fail;
	BN_free(serial);
	X509_NAME_free(name);
	return x;
fail:
	init_fail_ssl("building a TLS certificate");
	BN_free(serial);
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

/* A leaf key and certificate from the TLS CA, written to rel_crt/rel_key. */
static int
init_tls_leaf(struct init_run *r, const char *cn, const char *san, const char *eku,
	      const char *rel_crt, const char *rel_key, X509 **out)
{
	const struct init_ext ext[] = {
		{NID_basic_constraints, "critical,CA:FALSE"},
		{NID_key_usage, "critical,digitalSignature"},
		{NID_ext_key_usage, eku},
		{NID_subject_alt_name, san},
		{NID_subject_key_identifier, "hash"},
		{NID_authority_key_identifier, "keyid:always"},
	};
	char pc[MSSP_INIT_MAX_PATH], pk[MSSP_INIT_MAX_PATH];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = NULL;
	int rc = -1;

	if (k == NULL)
		return init_fail_ssl("P-256 key generation");
	x = init_tls_cert(k, cn, r->r_tls_ca, r->r_tls_key, INIT_TLS_LEAF_DAYS, ext,
			  sizeof(ext) / sizeof(ext[0]));
	if (x != NULL && init_path(r, pc, "%s", rel_crt) == 0 &&
	    init_path(r, pk, "%s", rel_key) == 0 && init_write_key(pk, k) == 0 &&
	    init_write_cert(pc, x) == 0)
		rc = 0;
	EVP_PKEY_free(k);
	if (rc == 0 && out != NULL)
		*out = x;
	else
		X509_free(x);
	return rc;
}

static int
init_tls(struct init_run *r)
{
	const struct init_ext ca_ext[] = {
		{NID_basic_constraints, "critical,CA:TRUE"},
		{NID_key_usage, "critical,keyCertSign,cRLSign"},
		{NID_subject_key_identifier, "hash"},
	};
	char p[MSSP_INIT_MAX_PATH];

	if (init_mkdir(r, "tls") != 0)
		return -1;
	r->r_tls_key = EVP_EC_gen("P-256");
	if (r->r_tls_key == NULL)
		return init_fail_ssl("P-256 key generation");
	r->r_tls_ca = init_tls_cert(r->r_tls_key, "OpenMSSP development TLS CA", NULL,
				    r->r_tls_key, INIT_TLS_CA_DAYS, ca_ext,
				    sizeof(ca_ext) / sizeof(ca_ext[0]));
	if (r->r_tls_ca == NULL)
		return -1;
	if (init_path(r, p, "tls/ca.key") != 0 || init_write_key(p, r->r_tls_key) != 0 ||
	    init_path(r, p, "tls/ca.crt") != 0 || init_write_cert(p, r->r_tls_ca) != 0)
		return -1;
	return init_tls_leaf(r, "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1",
			     "serverAuth,clientAuth", "tls/server.crt", "tls/server.key", NULL);
}

/* ---- User CA and store ---------------------------------------------------- */

/* Append crl_url / ocsp_url (the development pki listener) to the new
 * CA's ca.conf and reopen the CA so that they apply. */
static int
init_ca_urls(struct init_run *r, const char *cadir, const char *pass, size_t passlen)
{
	char conf[MSSP_INIT_MAX_PATH], lines[256];
	struct pki_err err = {0};
	unsigned port = r->r_o->o_base_port + 5;
	int fd, len;

	if (init_path(r, conf, "ca/ca.conf") != 0)
		return -1;
	len = snprintf(lines, sizeof(lines),
		       "# where the ME's pki listener publishes (msspd.conf [me] pki_*)\n"
		       "crl_url http://127.0.0.1:%u/crl\n"
		       "ocsp_url http://127.0.0.1:%u/ocsp\n",
		       port, port);
	fd = open(conf, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, lines, (size_t)len) != len || fsync(fd) != 0) {
		if (fd >= 0)
			close(fd);
		return init_fail("ca/ca.conf: %s", strerror(errno));
	}
	close(fd);
	pki_ca_free(r->r_ca);
	r->r_ca = pki_ca_open(cadir, pass, passlen, &err);
	if (r->r_ca == NULL)
		return init_fail("user CA (reopening): %s", err.detail);
	return 0;
}

/* The user CA in DIR/ca.  Its key is encrypted under a generated pass
 * phrase that, in this development setup, sits next to it in
 * DIR/ca/passphrase (0600) so that `msspctl ca ... --passphrase-file`
 * works; a production CA keeps it elsewhere or uses a token. */
static int
init_user_ca(struct init_run *r)
{
	unsigned char rnd[INIT_CA_SECRET_BYTES];
	char pass[4 * ((INIT_CA_SECRET_BYTES + 2) / 3) + 2];
	char cadir[MSSP_INIT_MAX_PATH], p[MSSP_INIT_MAX_PATH];
	struct pki_ca_init_params ip = {0};
	struct pki_err err = {0};
	int n, rc = -1;

	if (init_path(r, cadir, "ca") != 0 || init_path(r, p, "ca/passphrase") != 0)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return init_fail_ssl("random pass phrase");
	n = EVP_EncodeBlock((unsigned char *)pass, rnd, sizeof(rnd));
	OPENSSL_cleanse(rnd, sizeof(rnd));
	ip.ci_dir = cadir;
	ip.ci_alg = PKI_CA_KEY_EC_P256;
	ip.ci_cn = "OpenMSSP development user CA";
	ip.ci_o = "OpenMSSP development";
	ip.ci_passphrase = pass;
	ip.ci_passphrase_len = (size_t)n;
	r->r_ca = pki_ca_init(&ip, &err);
	if (r->r_ca == NULL) {
		init_fail("user CA: %s (%d)", err.detail, err.status);
		goto out;
	}
	pass[n] = '\n';
	if (init_write(p, pass, (size_t)n + 1, 0600) != 0)
		goto out;
	/* Relying parties find revocation where the ME publishes it (the pki
	 * listener, N+5): CDP and AIA-OCSP in every certificate issued.  The
	 * settings are read when the CA is opened, so reopen it. */
	if (init_ca_urls(r, cadir, pass, (size_t)n) != 0)
		goto out;
	/* Above every user certificate: the CA itself (a root here). */
	r->r_chain = sk_X509_new_null();
	if (r->r_chain == NULL || !sk_X509_push(r->r_chain, pki_ca_cert(r->r_ca))) {
		init_fail("out of memory");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(pass, sizeof(pass));
	return rc;
}

static int
init_store(struct init_run *r)
{
	char db[MSSP_INIT_MAX_PATH], uri[MSSP_STORE_MAX_URI + 1];
	struct store_err se = {0};
	int n;

	if (init_path(r, db, "mssp.db") != 0)
		return -1;
	n = snprintf(uri, sizeof(uri), "sqlite:%s", db);
	if (n < 0 || (size_t)n >= sizeof(uri))
		return init_fail("store path too long");
	r->r_st = store_open(uri, STORE_OPEN_CREATE, &se);
	if (r->r_st == NULL)
		return init_fail("store %s: %s", db, se.detail);
	return 0;
}

/* ---- Configuration files ---------------------------------------------- */

static int
init_msspd_conf(struct init_run *r)
{
	unsigned n = r->r_o->o_base_port;
	struct mss_buf b;
	int rc, bad;

	mss_buf_init(&b, MSSP_INIT_MAX_CONF);
	bad = mss_buf_addf(
		&b,
		"# msspd.conf - written by `msspd init` (docs/internals/datadir.md).\n"
		"# Format: util/config INI; a comment is a line starting with '#'.\n"
		"# Relative paths are relative to the directory of this file.\n"
		"# Ports: AE = %u, ME = %u, AFE = %u, admin = %u, push = %u, pki = %u,\n"
		"# mesh = %u.\n"
		"\n"
		"[node]\n"
		"# Short node name, used in logs and metrics.\n"
		"id = node1\n"
		"# Event-loop threads (0: one per core).\n"
		"workers = 2\n"
		"# Threads for blocking work (store, signature verification).\n"
		"pool_threads = 4\n"
		"# Roles this process runs: ae home afe me admin mesh (ae, home and afe\n"
		"# together; mesh beside ae), or all.  `msspd --roles` overrides it: run the ME as a\n"
		"# process of its own to stop and start it while signing goes on.\n"
		"roles = all\n"
		"\n"
		"[store]\n"
		"# \"sqlite:\" + the database path (relative to this directory).\n"
		"uri = sqlite:mssp.db\n"
		"\n"
		"[ae]\n"
		"# The AP-facing interface (TS 102 204 over mutual TLS).\n"
		"listen = 127.0.0.1\n"
		"port = %u\n"
		"# Our server certificate chain and key (PEM).\n"
		"cert = tls/server.crt\n"
		"key = tls/server.key\n"
		"# CAs that issue AP client certificates.\n"
		"client_ca = tls/ca.crt\n"
		"# Our MSSP_ID in responses, and our name in the mesh (unique there).\n"
		"mssp_id = %s\n"
		"# Largest |AP Instant - now| accepted, in seconds (A-02).\n"
		"instant_skew_s = 300\n"
		"# TimeOut used when a request has none, and the largest accepted.\n"
		"default_timeout_s = 80\n"
		"max_timeout_s = 600\n"
		"%s"
		"\n"
		"[afe]\n"
		"# The app front end: the phones connect here.\n"
		"listen = 127.0.0.1\n"
		"port = %u\n"
		"cert = tls/server.crt\n"
		"key = tls/server.key\n"
		"# Push provider: local (UDP to mss-phone) or none.\n"
		"push = local\n"
		"push_addr = 127.0.0.1\n"
		"push_port = %u\n"
		"\n"
		"[me]\n"
		"# The Management Entity: registration and administration API,\n"
		"# MSS_Registration (MReg) and the web console, mutual TLS.  Accounts\n"
		"# (admin, ra, auditor) are bound to client certificates; see\n"
		"# admin/*.conf for msspctl.\n"
		"listen = 127.0.0.1\n"
		"port = %u\n"
		"cert = tls/server.crt\n"
		"key = tls/server.key\n"
		"# CAs that issue administrator client certificates.\n"
		"client_ca = tls/ca.crt\n"
		"# Publication of the user CA for relying parties, plain HTTP (the\n"
		"# answers are signed): OCSP at /ocsp (RFC 6960, POST and GET) and\n"
		"# the CRL at /crl.  It is meant to be published: a public address\n"
		"# (e.g. 0.0.0.0) is allowed here, because it is written here.\n"
		"pki_listen = 127.0.0.1\n"
		"pki_port = %u\n"
		"\n"
		"[admin]\n"
		"# Health and metrics: plain HTTP, keep it on the loopback.\n"
		"listen = 127.0.0.1\n"
		"port = %u\n"
		"\n"
		"[home]\n"
		"# The user CA directory; its certificate ca/ca.crt verifies user\n"
		"# signatures.  Development setup: the CA key's pass phrase is in\n"
		"# ca/passphrase (0600), e.g. for\n"
		"#   msspctl ca crl --dir ca --passphrase-file ca/passphrase\n"
		"# A production CA keeps its pass phrase elsewhere or uses a token.\n"
		"user_ca = ca\n"
		"\n"
		"[notify]\n"
		"# Our client certificate towards APs' notification servers.\n"
		"cert = tls/server.crt\n"
		"key = tls/server.key\n"
		"# CAs that verify AP notification servers.\n"
		"ca = tls/ca.crt\n"
		"# Attempts after the first, and the first back-off (doubling).\n"
		"retries = 5\n"
		"retry_ms = 2000\n"
		"\n"
		"[mesh]\n"
		"# The listener other MSSPs call (TS 102 207 roaming, mutual TLS;\n"
		"# docs/internals/mesh.md).  Leave \"mesh\" out of [node] roles to\n"
		"# switch it off.  Peers and routes live in the store: msspctl peer ...\n"
		"# and msspctl route ....  Defaults: [ae] listen, [ae] port + 6.\n"
		"listen = 127.0.0.1\n"
		"port = %u\n"
		"# Our certificate towards peers, as a server and as a client.\n"
		"cert = tls/server.crt\n"
		"key = tls/server.key\n"
		"# The CAs of the peers' certificates: append each peer's CA here\n"
		"# (a PEM bundle); a peer is then recognised by its pinned\n"
		"# certificate (cert_sha256 of its peer record), never by the CA alone.\n"
		"client_ca = tls/ca.crt\n",
		n, n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n, r->r_o->o_mssp_id,
		r->r_o->o_demo
			? "# How APs may authenticate on /rest/service: cert (mutual TLS),\n"
			  "# basic (HTTP Basic, rest_user + rest_password), apikey (the\n"
			  "# Kiuru HMAC API key).  With basic or apikey a client certificate\n"
			  "# is asked for but not required (docs/internals/rest.md).\n"
			  "rest_auth = cert basic apikey\n"
			: "# REST authentication: cert, basic, apikey (rest.md).\n"
			  "rest_auth = cert\n",
		n + 2, n + 4, n + 1, n + 5, n + 3, n + 6);
	bad |= mss_buf_adds(&b, "\n"
			 "# Application providers live in the store and are managed through\n"
			 "# the ME (msspctl ap ..., or the console).  [ap \"AP_ID\"] sections\n"
			 "# here are imported once into a store that has no AP yet.\n");
	/* A failed add empties the buffer: a later add must not leave a
	 * truncated file that still parses. */
	rc = bad ? init_fail("msspd.conf: too long") : init_write_conf(r, "msspd.conf", &b, 0600);
	mss_buf_free(&b);
	return rc;
}

/* ---- The demo AP ------------------------------------------------------- */

static int
init_demo_ap(struct init_run *r)
{
	uint8_t fp[TLS_FP_LEN];
	char p[MSSP_INIT_MAX_PATH];
	unsigned n = r->r_o->o_base_port;
	struct mss_buf b;
	X509 *ap = NULL;
	int rc;

	if (init_mkdir(r, "demo") != 0 ||
	    init_tls_leaf(r, "demo.ap", "DNS:localhost,IP:127.0.0.1", "clientAuth,serverAuth",
			  "demo/ap.crt", "demo/ap.key", &ap) != 0)
		return -1;
	rc = tls_cert_fingerprint(ap, fp);
	X509_free(ap);
	if (rc != 0)
		return init_fail("demo AP certificate fingerprint");
	tls_fp_hex(fp, r->r_ap_fp);
	if (init_path(r, p, "demo/tls-ca.crt") != 0 || init_write_cert(p, r->r_tls_ca) != 0 ||
	    init_path(r, p, "demo/user-ca.crt") != 0 ||
	    init_write_cert(p, pki_ca_cert(r->r_ca)) != 0)
		return -1;

	mss_buf_init(&b, MSSP_INIT_MAX_CONF);
	mss_buf_addf(&b,
		     "# mss-ap.conf - the demo AP, written by `msspd init --demo`.\n"
		     "# Relative paths are relative to the directory of this file.\n"
		     "\n"
		     "[ap]\n"
		     "ap_id = " INIT_AP_ID "\n"
		     "ap_pwd = demo\n"
		     "# The AE base URL.\n"
		     "url = https://127.0.0.1:%u\n"
		     "# Our client certificate (also the notification listener's).\n"
		     "cert = ap.crt\n"
		     "key = ap.key\n"
		     "# Verifies the AE.\n"
		     "ca = tls-ca.crt\n"
		     "# Verifies user signatures.\n"
		     "user_ca = user-ca.crt\n"
		     "# asynchServerServer: our own notification listener (port 0:\n"
		     "# ephemeral).\n"
		     "notify_listen = 127.0.0.1\n"
		     "notify_port = 0\n",
		     n);
	rc = init_write_conf(r, "demo/mss-ap.conf", &b, 0600);
	mss_buf_free(&b);
	if (rc != 0)
		return -1;

	/* REST credentials of the demo AP (rest.md): fresh random secrets,
	 * written only to demo/ (0600) for mss-ap --basic-file / --api-key */
	unsigned char rnd[32];
	char rest_pw[2 * 16 + 1], api_key[2 * 32 + 1];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return init_fail("random source");
	hex_encode(rnd, 16, rest_pw);
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return init_fail("random source");
	hex_encode(rnd, 32, api_key);
	OPENSSL_cleanse(rnd, sizeof rnd);
	char line[sizeof INIT_AP_ID + sizeof rest_pw + sizeof api_key + 4];
	/* a Basic user name cannot hold ':' (RFC 7617), the AP_ID does */
	int ln = snprintf(line, sizeof line, "%s:%s\n", INIT_AP_REST_USER, rest_pw);
	rc = init_path(r, p, "demo/rest-basic") != 0 || init_write(p, line, (size_t)ln, 0600) != 0;
	ln = snprintf(line, sizeof line, "%s\n", api_key);
	rc = rc || init_path(r, p, "demo/rest-api-key") != 0 ||
	     init_write(p, line, (size_t)ln, 0600) != 0;
	OPENSSL_cleanse(line, sizeof line);
	/* the AP, in the store (the ME manages it from now on) */
	json_t *apj = rc ? NULL :
		json_pack("{s:s, s:s, s:[s], s:[s], s:[s,s,s], s:[s,s], s:i, s:b, s:s, s:s, s:s}",
				"id", INIT_AP_ID, "name", "Demo AP", "cert_sha256", r->r_ap_fp,
				"profiles", "*", "modes", "synch", "asynchClientServer",
				"asynchServerServer", "notify_urls", "https://127.0.0.1:*/",
				"https://localhost:*/", "rate",
				/* a load generator's AP (--bench-users): no limit */
				r->r_o->o_bench ? 0 : 1000, "suspended", 0,
				"rest_user", INIT_AP_REST_USER, "rest_password", rest_pw,
				"api_key", api_key);
	OPENSSL_cleanse(rest_pw, sizeof rest_pw);
	OPENSSL_cleanse(api_key, sizeof api_key);
	struct reg_err re;
	rc = apj ? reg_ap_seed(r->r_reg, r->r_st, apj, init_now_ms(), &re) : -1;
	/* json_pack copied the secrets: wipe those copies too */
	static const char *const secret_keys[] = {"rest_password", "api_key"};
	for (size_t i = 0; apj && i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
		json_t *v = json_object_get(apj, secret_keys[i]);
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
	json_decref(apj);
	if (rc != 0)
		return init_fail("demo AP: %s", apj ? re.msg : "out of memory");
	return 0;
}

/* phones/phone.conf: where mss-phone finds the AFE (every data directory:
 * a new operator binds a fresh phone with `mss-phone activate`). */
static int
init_phone_conf(struct init_run *r)
{
	unsigned n = r->r_o->o_base_port;
	struct mss_buf b;
	int rc;

	if (init_mkdir(r, "phones") != 0)
		return -1;
	mss_buf_init(&b, MSSP_INIT_MAX_CONF);
	mss_buf_addf(&b,
		     "# phone.conf - mss-phone, written by `msspd init`.\n"
		     "# Relative paths are relative to the directory of this file; each\n"
		     "# phone is a directory beside it named by its MSISDN.\n"
		     "\n"
		     "[phone]\n"
		     "# The AFE, and the name checked against its certificate.\n"
		     "afe_addr = 127.0.0.1\n"
		     "afe_port = %u\n"
		     "afe_host = localhost\n"
		     "# Verifies the AFE.\n"
		     "ca = ../tls/ca.crt\n"
		     "# Where the local push provider wakes us.\n"
		     "push_addr = 127.0.0.1\n"
		     "push_port = %u\n",
		     n + 2, n + 4);
	rc = init_write_conf(r, "phones/phone.conf", &b, 0644);
	mss_buf_free(&b);
	return rc;
}

/* ---- Registry seeding: audit, accounts, profiles (issue 5) ------------ */

/* The audit key and log, and the registration module init seeds with
 * (every seed is an audit record, actor "system"). */
static int
init_registry(struct init_run *r)
{
	char dir[MSSP_INIT_MAX_PATH], key[MSSP_INIT_MAX_PATH];
	struct store_err se;
	struct reg_err re;

	if (init_path(r, dir, "audit") != 0 || init_path(r, key, "audit/audit.key") != 0)
		return -1;
	if (audit_keygen(dir, &se) != 0)
		return init_fail("audit key: %s", se.detail);
	r->r_audit = audit_open(dir, "node1", key, &se);
	if (!r->r_audit)
		return init_fail("audit log: %s", se.detail);
	struct reg_conf rc = {
		.rc_node = "node1",
		.rc_data_dir = r->r_o->o_dir,
		.rc_audit = r->r_audit,
		.rc_ca = r->r_ca,
	};
	r->r_reg = reg_new(&rc, &re);
	if (!r->r_reg)
		return init_fail("registration: %s", re.msg);
	return 0;
}

/* The accounts every data directory starts with, each with a client
 * certificate from the development TLS CA and an msspctl configuration:
 * two administrators (dual control needs two people, P-09), an RA
 * operator and an auditor. */
static const struct {
	const char *name;
	enum reg_role role;
} init_accounts[] = {
	{"admin", REG_ROLE_ADMIN},
	{"admin2", REG_ROLE_ADMIN},
	{"ra", REG_ROLE_RA},
	{"auditor", REG_ROLE_AUDITOR},
};

static int
init_admin(struct init_run *r)
{
	unsigned n = r->r_o->o_base_port;
	char crt[64], key[64], conf[64], cn[64];
	struct reg_err re;

	if (init_mkdir(r, "admin") != 0)
		return -1;
	for (size_t i = 0; i < sizeof init_accounts / sizeof init_accounts[0]; i++) {
		const char *name = init_accounts[i].name;
		uint8_t fp[TLS_FP_LEN];
		X509 *x = NULL;
		snprintf(crt, sizeof crt, "admin/%s.crt", name);
		snprintf(key, sizeof key, "admin/%s.key", name);
		snprintf(conf, sizeof conf, "admin/%s.conf", name);
		snprintf(cn, sizeof cn, "%s.admin.openmssp", name);
		if (init_tls_leaf(r, cn, "DNS:localhost", "clientAuth", crt, key, &x) != 0)
			return -1;
		int rc = tls_cert_fingerprint(x, fp);
		X509_free(x);
		if (rc != 0)
			return init_fail("%s certificate fingerprint", name);
		if (reg_account_seed(r->r_reg, r->r_st, name, init_accounts[i].role, fp,
				     init_now_ms(), &re) != 0)
			return init_fail("account %s: %s", name, re.msg);
		struct mss_buf b;
		mss_buf_init(&b, MSSP_INIT_MAX_CONF);
		mss_buf_addf(&b,
			     "# %s.conf - msspctl as account \"%s\" (role %s), written by\n"
			     "# `msspd init`.  Use: msspctl --conf THIS_FILE ... or\n"
			     "# msspctl --data-dir DIR --account %s ...\n"
			     "# Relative paths are relative to the directory of this file.\n"
			     "\n"
			     "[me]\n"
			     "url = https://127.0.0.1:%u\n"
			     "cert = %s.crt\n"
			     "key = %s.key\n"
			     "# Verifies the ME's server certificate.\n"
			     "ca = ../tls/ca.crt\n",
			     name, name, reg_role_name(init_accounts[i].role), name, n + 1, name,
			     name);
		rc = init_write_conf(r, conf, &b, 0600);
		mss_buf_free(&b);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* Signature profiles and registration profiles (what `msspctl user keys`
 * asks the phone to generate).  The demo profiles of architecture.md. */
static int
init_profiles(struct init_run *r)
{
	static const struct {
		const char *uri, *purpose, *descr;
		int loa;
	} sig[] = {
		{"mss:demo:authn:loa2:app", "authn", "Authentication, click-OK, app key", 2},
		{"mss:demo:authn:loa3:app", "authn", "Authentication with PIN, app key", 3},
		{"mss:demo:sign:loa3:app", "sign", "Signature with PIN, app key", 3},
	};
	struct reg_err re;
	for (size_t i = 0; i < sizeof sig / sizeof sig[0]; i++) {
		json_t *p = json_pack("{s:s, s:s, s:s, s:i}", "uri", sig[i].uri, "description",
				      sig[i].descr, "purpose", sig[i].purpose, "loa", sig[i].loa);
		int rc = p ? reg_profile_seed(r->r_reg, r->r_st, false, p, init_now_ms(), &re) : -1;
		json_decref(p);
		if (rc != 0)
			return init_fail("signature profile %s: %s", sig[i].uri,
					 p ? re.msg : "out of memory");
	}
	json_t *def = json_pack(
		"{s:s, s:s, s:[{s:s, s:s, s:[s], s:b, s:s, s:s}, {s:s, s:s, s:[s], s:b, s:s, s:s}]}",
		"name", "default-app", "description",
		"App keys: authentication and signature, each with a PIN", "key_groups", "group",
		"authn", "purpose", "authn", "profiles", "mss:demo:authn:loa3:app", "pin", 1, "alg",
		"ec-p256", "cert_profile", "authn", "group", "sign", "purpose", "sign", "profiles",
		"mss:demo:sign:loa3:app", "pin", 1, "alg", "ec-p256", "cert_profile", "sign");
	json_t *click = json_pack(
		"{s:s, s:s, s:[{s:s, s:s, s:[s], s:b, s:s, s:s}]}", "name", "click-app",
		"description", "App key: click-OK authentication without a PIN", "key_groups",
		"group", "click", "purpose", "authn", "profiles", "mss:demo:authn:loa2:app", "pin",
		0, "alg", "ec-p256", "cert_profile", "authn");
	int rc = 0;
	if (!def || !click)
		rc = init_fail("registration profiles: out of memory");
	if (!rc && reg_profile_seed(r->r_reg, r->r_st, true, def, init_now_ms(), &re) != 0)
		rc = init_fail("registration profile default-app: %s", re.msg);
	if (!rc && reg_profile_seed(r->r_reg, r->r_st, true, click, init_now_ms(), &re) != 0)
		rc = init_fail("registration profile click-app: %s", re.msg);
	json_decref(def);
	json_decref(click);
	return rc;
}

/* ---- Users --------------------------------------------------------------- */

/* One user being made: what outlives the keystore steps. */
struct init_user {
	char u_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char u_name[MSSP_STORE_MAX_NAME + 1];
	char u_serial_number[sizeof("MSISDN:") + MSSP_STORE_MAX_MSISDN]; /* RDN */
	char u_device[MSSP_KEYSTORE_MAX_ID + 1];
	const struct init_group *u_groups[INIT_GROUPS_MAX];
	size_t u_ngroups;
	X509 *u_certs[INIT_GROUPS_MAX];
	enum init_fate u_fate;
	bool u_demo; /* a demo user: device.conf carries the demo PIN */
	const char *u_demo_action; /* and what its phone does, or NULL */
};

/* Key group `g`: generated in the keystore, CSR, certificate from the user
 * CA, installed with the chain. */
static int
init_user_group(struct init_run *r, struct init_user *u, struct ks *ks, size_t i)
{
	const struct init_group *g = u->u_groups[i];
	const char *profiles[1] = {g->g_profile};
	struct ks_group_spec spec = {0};
	struct pki_ca_identity id = {0};
	struct pki_err err = {0};
	unsigned char *der = NULL;
	X509_REQ *req;
	int len, rc;

	spec.gs_id = g->g_id;
	spec.gs_purpose = g->g_purpose;
	spec.gs_profiles = profiles;
	spec.gs_nprofiles = 1;
	spec.gs_key_type = KS_KEY_EC_P256;
	spec.gs_pin = g->g_pin ? INIT_DEMO_PIN : NULL;
	spec.gs_puk = g->g_pin ? INIT_DEMO_PUK : NULL;
	if (ks_add_group(ks, &spec, &err) != 0)
		return init_fail("%s: key group %s: %s", u->u_msisdn, g->g_id, err.detail);
	req = ks_csr(ks, g->g_id, spec.gs_pin, NULL, &err);
	if (req == NULL)
		return init_fail("%s: CSR of %s: %s", u->u_msisdn, g->g_id, err.detail);
	len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	if (len <= 0)
		return init_fail_ssl("CSR encoding");
	id.id_serial_number = u->u_serial_number;
	id.id_common_name = u->u_name;
	pthread_mutex_lock(&r->r_ca_mu);
	rc = pki_ca_issue_csr(r->r_ca, g->g_ca_profile, &id, der, (size_t)len, NULL, 0,
			      &u->u_certs[i], &err);
	pthread_mutex_unlock(&r->r_ca_mu);
	OPENSSL_free(der);
	if (rc != 0)
		return init_fail("%s: certificate for %s: %s (%d)", u->u_msisdn, g->g_id,
				 err.detail, err.status);
	if (ks_install_cert(ks, g->g_id, u->u_certs[i], r->r_chain, &err) != 0)
		return init_fail("%s: installing the %s certificate: %s", u->u_msisdn, g->g_id,
				 err.detail);
	return 0;
}

/* Block every PIN group of the keystore (three wrong PINs: 402), and with
 * `disable` exhaust its PUK as well (ten wrong PUKs: 403), exactly as a
 * user's wrong attempts would. */
static int
init_user_block(struct init_user *u, struct ks *ks, bool disable)
{
	static const unsigned char dtbs[] = "msspd init: blocking a demo PIN";
	struct ks_group_info gi;
	struct pki_err err = {0};
	size_t i;
	unsigned t;

	for (i = 0; i < u->u_ngroups; i++) {
		const struct init_group *g = u->u_groups[i];

		if (!g->g_pin)
			continue;
		for (t = 0; t < MSSP_KEYSTORE_PIN_TRIES; t++) {
			unsigned char *sig = NULL;
			size_t siglen = 0;

			if (ks_sign(ks, g->g_id, INIT_WRONG_PIN, PKI_SIG_ECDSA, 0, NID_sha256, dtbs,
				    sizeof(dtbs) - 1, &sig, &siglen, &err) == 0) {
				OPENSSL_free(sig);
				return init_fail("%s: a wrong PIN was accepted", u->u_msisdn);
			}
			if (err.status != KS_STATUS_WRONG_PIN && err.status != 402)
				return init_fail("%s: blocking %s: %s", u->u_msisdn, g->g_id,
						 err.detail);
		}
		for (t = 0; disable && t < MSSP_KEYSTORE_PUK_TRIES; t++) {
			if (ks_unblock(ks, g->g_id, INIT_WRONG_PUK, INIT_DEMO_PIN, &err) == 0)
				return init_fail("%s: a wrong PUK was accepted", u->u_msisdn);
			if (err.status != KS_STATUS_WRONG_PUK && err.status != 403)
				return init_fail("%s: disabling %s: %s", u->u_msisdn, g->g_id,
						 err.detail);
		}
		if (ks_group_info_by_id(ks, g->g_id, &gi, &err) != 0)
			return init_fail("%s: %s", u->u_msisdn, err.detail);
		if (gi.gi_state != (disable ? KS_STATE_DISABLED : KS_STATE_PIN_BLOCKED))
			return init_fail("%s: group %s is not %s", u->u_msisdn, g->g_id,
					 disable ? "disabled" : "blocked");
	}
	return 0;
}

/* The device: its authentication key (device.key, registered as SPKI) and
 * the channel key K agreed between a home and an app binding key, then
 * device.conf and the store records. */
static int
init_user_device(struct init_user *u, struct store *st, const char *phone)
{
	char p[MSSP_INIT_MAX_PATH];
	char k64[4 * ((E2E_KEY_LEN + 2) / 3) + 1];
	char conf[512];
	unsigned char k_app[E2E_KEY_LEN];
	unsigned char *home_spki = NULL, *app_spki = NULL, *dev_spki = NULL;
	size_t home_len = 0, app_len = 0, dev_len = 0;
	EVP_PKEY *dev = NULL, *home = NULL, *app = NULL;
	struct store_device *sd = NULL;
	struct store_user su = {0};
	struct store_err se = {0};
	struct pki_err err = {0};
	int n, rc = -1;

	sd = calloc(1, sizeof(*sd));
	if (sd == NULL) {
		init_fail("out of memory");
		goto out;
	}
	dev = EVP_EC_gen("P-256");
	if (dev == NULL) {
		init_fail_ssl("P-256 key generation");
		goto out;
	}
	if (snprintf(p, sizeof(p), "%s/device.key", phone) >= (int)sizeof(p)) {
		init_fail("path too long");
		goto out;
	}
	if (init_write_key(p, dev) != 0)
		goto out;
	if (e2e_spki_der(dev, &dev_spki, &dev_len, &err) != 0 || dev_len > sizeof(sd->sd_auth_spki)) {
		init_fail("%s: device key: %s", u->u_msisdn, err.detail);
		goto out;
	}

	/* Binding: both sides' keys are made here, as the ME would make the
	 * home side and the app its own; the agreement is checked from both. */
	home = e2e_binding_keygen(&err);
	app = home ? e2e_binding_keygen(&err) : NULL;
	if (app == NULL || e2e_spki_der(home, &home_spki, &home_len, &err) != 0 ||
	    e2e_spki_der(app, &app_spki, &app_len, &err) != 0 ||
	    e2e_binding_derive(home, app_spki, app_len, u->u_device, sd->sd_e2e_key, &err) != 0 ||
	    e2e_binding_derive(app, home_spki, home_len, u->u_device, k_app, &err) != 0) {
		init_fail("%s: channel key: %s", u->u_msisdn, err.detail);
		goto out;
	}
	if (CRYPTO_memcmp(sd->sd_e2e_key, k_app, E2E_KEY_LEN) != 0) {
		init_fail("%s: channel key agreement differs between the two sides", u->u_msisdn);
		goto out;
	}

	EVP_EncodeBlock((unsigned char *)k64, k_app, E2E_KEY_LEN);
	n = snprintf(conf, sizeof(conf),
		     "# device.conf - written by `msspd init`.  Holds the channel key: 0600.\n"
		     "\n"
		     "[device]\n"
		     "# Device id (the store's device record).\n"
		     "id = %s\n"
		     "msisdn = %s\n"
		     "# The end-to-end channel key K, base64 (SECRET).\n"
		     "channel_key = %s\n"
		     "%s%s%s%s",
		     u->u_device, u->u_msisdn, k64,
		     u->u_demo ? "# Demo only: the PIN and PUK mss-phone --demo types.\n"
				 "pin = " INIT_DEMO_PIN "\n"
				 "puk = " INIT_DEMO_PUK "\n"
			       : "",
		     u->u_demo_action ? "# Demo only: what mss-phone --demo does with a prompt.\n"
					"demo_action = "
				      : "",
		     u->u_demo_action ? u->u_demo_action : "", u->u_demo_action ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(conf) ||
	    snprintf(p, sizeof(p), "%s/device.conf", phone) >= (int)sizeof(p)) {
		init_fail("%s: device.conf too long", u->u_msisdn);
		goto out;
	}
	if (init_write(p, conf, (size_t)n, 0600) != 0 || init_check_conf(p) != 0)
		goto out;

	snprintf(su.su_msisdn, sizeof(su.su_msisdn), "%s", u->u_msisdn);
	su.su_state = STORE_USER_ACTIVE;
	snprintf(su.su_name, sizeof(su.su_name), "%s", u->u_name);
	if (store_user_put(st, &su, init_now_ms(), &se) != 0) {
		init_fail("%s: store user: %s", u->u_msisdn, se.detail);
		goto out;
	}
	snprintf(sd->sd_device_id, sizeof(sd->sd_device_id), "%s", u->u_device);
	snprintf(sd->sd_msisdn, sizeof(sd->sd_msisdn), "%s", u->u_msisdn);
	memcpy(sd->sd_auth_spki, dev_spki, dev_len);
	sd->sd_auth_spki_len = dev_len;
	sd->sd_state = 1;
	if (store_device_put(st, sd, init_now_ms(), &se) != 0) {
		init_fail("%s: store device: %s", u->u_msisdn, se.detail);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(k_app, sizeof(k_app));
	OPENSSL_cleanse(k64, sizeof(k64));
	OPENSSL_cleanse(conf, sizeof(conf));
	if (sd != NULL)
		OPENSSL_cleanse(sd, sizeof(*sd));
	free(sd);
	OPENSSL_free(home_spki);
	OPENSSL_free(app_spki);
	OPENSSL_free(dev_spki);
	EVP_PKEY_free(dev);
	EVP_PKEY_free(home);
	EVP_PKEY_free(app);
	return rc;
}

/* The registry's key records, then the revocation of user 007. */
static int
init_user_keys(struct init_run *r, struct store *st, struct init_user *u)
{
	const char *digits = u->u_msisdn + 1;
	struct store_key *k = calloc(1, sizeof(*k));
	struct store_err se = {0};
	struct pki_err err = {0};
	size_t i;
	int len, rc = -1;

	if (k == NULL)
		return init_fail("out of memory");
	for (i = 0; i < u->u_ngroups; i++) {
		const struct init_group *g = u->u_groups[i];
		unsigned char *p;

		memset(k, 0, sizeof(*k));
		snprintf(k->sk_key_id, sizeof(k->sk_key_id), "%s-%s", digits, g->g_id);
		snprintf(k->sk_group, sizeof(k->sk_group), "%s", g->g_id);
		snprintf(k->sk_msisdn, sizeof(k->sk_msisdn), "%s", u->u_msisdn);
		snprintf(k->sk_device_id, sizeof(k->sk_device_id), "%s", u->u_device);
		k->sk_purpose = g->g_purpose == KS_PURPOSE_SIGN ? STORE_KEY_SIGN : STORE_KEY_AUTHN;
		snprintf(k->sk_profiles, sizeof(k->sk_profiles), "%s", g->g_profile);
		k->sk_has_pin = g->g_pin;
		k->sk_state = STORE_KEY_ACTIVE;
		len = i2d_X509(u->u_certs[i], NULL);
		if (len <= 0 || (size_t)len > sizeof(k->sk_cert)) {
			init_fail("%s: certificate too large for the store", u->u_msisdn);
			goto out;
		}
		p = k->sk_cert;
		i2d_X509(u->u_certs[i], &p);
		k->sk_cert_len = (size_t)len;
		if (init_serial_hex(u->u_certs[i], k->sk_cert_serial) != 0)
			goto out;
		if (store_key_put(st, k, init_now_ms(), &se) != 0) {
			init_fail("%s: store key %s: %s", u->u_msisdn, k->sk_key_id, se.detail);
			goto out;
		}
		if (u->u_fate == INIT_FATE_REVOKED) {
			int rv;

			pthread_mutex_lock(&r->r_ca_mu);
			rv = pki_ca_revoke(r->r_ca, k->sk_cert_serial,
					   PKI_CA_REASON_KEY_COMPROMISE, 0, &err);
			pthread_mutex_unlock(&r->r_ca_mu);
			if (rv != 0) {
				init_fail("%s: revoking %s: %s", u->u_msisdn, k->sk_key_id,
					  err.detail);
				goto out;
			}
			if (store_key_set_state(st, k->sk_key_id, STORE_KEY_REVOKED,
						init_now_ms(), &se) != 0) {
				init_fail("%s: store key %s: %s", u->u_msisdn, k->sk_key_id,
					  se.detail);
				goto out;
			}
		}
		r->r_keys++;
	}
	rc = 0;
out:
	free(k);
	return rc;
}

/* One user, start to finish: DIR/phones/<msisdn>/ with its keystore,
 * device key and device.conf; certificates; registry records. */
static int
init_user(struct init_run *r, struct store *st, struct init_user *u)
{
	char phone[MSSP_INIT_MAX_PATH], ksp[MSSP_INIT_MAX_PATH];
	struct pki_err err = {0};
	struct ks *ks = NULL;
	size_t i;
	int rc = -1;

	snprintf(u->u_device, sizeof(u->u_device), "dev-%s", u->u_msisdn + 1);
	if (init_path(r, phone, "phones/%s", u->u_msisdn) != 0 ||
	    init_path(r, ksp, "phones/%s/keystore", u->u_msisdn) != 0)
		return -1;
	if (mkdir(phone, 0700) != 0)
		return init_fail("%s: %s", phone, strerror(errno));
	ks = ks_create(ksp, u->u_device, NULL, &err);
	if (ks == NULL)
		return init_fail("%s: keystore: %s", u->u_msisdn, err.detail);
	for (i = 0; i < u->u_ngroups; i++)
		if (init_user_group(r, u, ks, i) != 0)
			goto out;
	if (u->u_fate == INIT_FATE_BLOCKED || u->u_fate == INIT_FATE_DISABLED)
		if (init_user_block(u, ks, u->u_fate == INIT_FATE_DISABLED) != 0)
			goto out;
	if (init_user_device(u, st, phone) != 0 || init_user_keys(r, st, u) != 0)
		goto out;
	r->r_users++;
	rc = 0;
out:
	ks_close(ks);
	for (i = 0; i < u->u_ngroups; i++) {
		X509_free(u->u_certs[i]);
		u->u_certs[i] = NULL;
	}
	return rc;
}

static int
init_demo_users(struct init_run *r)
{
	size_t i;

	for (i = 0; i < INIT_DEMO_USERS; i++) {
		const struct init_demo_user *d = &init_demo_table[i];
		struct init_user u = {0};

		if (r->r_o->o_demo_prefix)
			snprintf(u.u_msisdn, sizeof(u.u_msisdn), "%s%u", r->r_o->o_demo_prefix,
				 d->du_n);
		else
			snprintf(u.u_msisdn, sizeof(u.u_msisdn), INIT_DEMO_MSISDN_FMT, d->du_n);
		snprintf(u.u_name, sizeof(u.u_name), "Demo User %u", d->du_n);
		snprintf(u.u_serial_number, sizeof(u.u_serial_number), "MSISDN:%s", u.u_msisdn);
		u.u_groups[u.u_ngroups++] = &init_g_authn;
		if (d->du_sign)
			u.u_groups[u.u_ngroups++] = &init_g_sign;
		if (d->du_click)
			u.u_groups[u.u_ngroups++] = &init_g_click;
		u.u_fate = d->du_fate;
		u.u_demo = true;
		u.u_demo_action = d->du_action;
		if (init_user(r, r->r_st, &u) != 0)
			return -1;
	}
	return 0;
}

/* Bench users: one click-OK P-256 key each, so no scrypt at all (a
 * PIN-less group is wrapped under the keystore's random device key).  Each
 * thread takes the next index until all are made or one failed. */
static void *
init_bench_thread(void *arg)
{
	struct init_run *r = arg;
	unsigned i, done, m = r->r_o->o_bench;
	struct store_err se = {0};
	struct store *st;
	intptr_t rc = 0;

	st = store_clone(r->r_st, &se); /* one connection per thread */
	if (st == NULL) {
		init_fail("store: %s", se.detail);
		atomic_store(&r->r_bench_failed, true);
		return (void *)(intptr_t)-1;
	}
	while (!atomic_load(&r->r_bench_failed) && (i = atomic_fetch_add(&r->r_bench_next, 1)) < m) {
		struct init_user u = {0};

		if (r->r_o->o_demo_prefix)
			snprintf(u.u_msisdn, sizeof(u.u_msisdn), "%s9%04u", r->r_o->o_demo_prefix,
				 i);
		else
			snprintf(u.u_msisdn, sizeof(u.u_msisdn), "+%llu",
				 INIT_BENCH_MSISDN_BASE + i);
		snprintf(u.u_name, sizeof(u.u_name), "Bench User %u", i);
		snprintf(u.u_serial_number, sizeof(u.u_serial_number), "MSISDN:%s", u.u_msisdn);
		u.u_groups[u.u_ngroups++] = &init_g_click;
		u.u_fate = INIT_FATE_OK;
		if (init_user(r, st, &u) != 0) {
			atomic_store(&r->r_bench_failed, true);
			rc = -1;
			break;
		}
		done = atomic_fetch_add(&r->r_bench_done, 1) + 1;
		if (done % INIT_BENCH_PROGRESS == 0 || done == m) {
			printf("  bench users: %u/%u\n", done, m);
			fflush(stdout);
		}
	}
	store_close(st);
	return (void *)rc;
}

static int
init_bench_users(struct init_run *r)
{
	pthread_t t[INIT_BENCH_THREADS];
	size_t i, n = 0;
	int rc = 0;

	if (r->r_o->o_bench == 0)
		return 0;
	for (i = 0; i < INIT_BENCH_THREADS && i < r->r_o->o_bench; i++, n++)
		if (pthread_create(&t[i], NULL, init_bench_thread, r) != 0) {
			atomic_store(&r->r_bench_failed, true);
			rc = init_fail("cannot start a thread");
			break;
		}
	for (i = 0; i < n; i++) {
		void *ret = NULL;

		pthread_join(t[i], &ret);
		if (ret != NULL)
			rc = -1;
	}
	return rc;
}

/* A first CRL, so that the revocations of user 007 are published in
 * DIR/ca/crl.pem for any verifier that checks CRLs. */
static int
init_crl(struct init_run *r)
{
	struct pki_err err = {0};

	if (pki_ca_crl(r->r_ca, 0, NULL, &err) != 0)
		return init_fail("user CA CRL: %s", err.detail);
	return 0;
}

/* ---- Arguments and the run -------------------------------------------- */

static void
init_usage(FILE *f)
{
	fprintf(f,
		"usage: msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]\n"
		"                  [--mssp-id URI] [--demo-prefix +DIGITS]\n"
		"  --data-dir DIR    the data directory to create (must not exist, or be empty)\n"
		"  --demo            add the demo AP, mss-phone's configuration and the demo users\n"
		"  --base-port N     AE port N, ME N+1, AFE N+2, admin N+3, push N+4,\n"
		"                    pki (OCSP, CRL) N+5, mesh N+6\n"
		"                    (1..%u, default %u)\n"
		"  --bench-users M   with --demo: M click-OK users +35849000000... (0..%u)\n"
		"  --mssp-id URI     [ae] mssp_id: this MSSP's id in answers and in the mesh\n"
		"                    (default %s)\n"
		"  --demo-prefix P   with --demo: the demo users are P1..P8 and the bench\n"
		"                    users P9NNNN (P: + and 1..%d digits; default: the\n"
		"                    numbers +35847000001.., bench +35849000000..)\n",
		INIT_MAX_BASE_PORT, INIT_DEFAULT_BASE_PORT, (unsigned)MSSP_INIT_MAX_BENCH_USERS,
		INIT_DEFAULT_MSSP_ID, INIT_DEMO_PREFIX_MAX_DIGITS);
}

/* A decimal number in [min, max], digits only. */
static int
init_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* An absolute URI (scheme ":" more) of visible ASCII: it is written into
 * msspd.conf as one line and is our name in every answer and the mesh. */
static bool
init_uri_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > MSSP_STORE_MAX_AP_ID || !((s[0] >= 'a' && s[0] <= 'z') ||
						    (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	for (i = 1; i < n && s[i] != ':'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.'))
			return false;
	return i + 1 < n && strncasecmp(s, "mesh:", 5) != 0;
}

static bool
init_prefix_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 2 || n > 1 + INIT_DEMO_PREFIX_MAX_DIGITS || s[0] != '+')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
init_parse(int argc, char **argv, struct init_opts *o)
{
	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"demo", no_argument, NULL, 'D'},
		{"base-port", required_argument, NULL, 'p'},
		{"bench-users", required_argument, NULL, 'b'},
		{"mssp-id", required_argument, NULL, 'm'},
		{"demo-prefix", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool bench_set = false;
	int c;

	o->o_base_port = INIT_DEFAULT_BASE_PORT;
	o->o_mssp_id = INIT_DEFAULT_MSSP_ID;
	optind = 0; /* glibc: full re-initialisation, whoever parsed before */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->o_dir = optarg;
			break;
		case 'D':
			o->o_demo = true;
			break;
		case 'p':
			if (init_uint(optarg, 1, INIT_MAX_BASE_PORT, &o->o_base_port) != 0)
				return init_fail("--base-port: a number 1..%u", INIT_MAX_BASE_PORT);
			break;
		case 'b':
			if (init_uint(optarg, 0, MSSP_INIT_MAX_BENCH_USERS, &o->o_bench) != 0)
				return init_fail("--bench-users: a number 0..%u",
						 (unsigned)MSSP_INIT_MAX_BENCH_USERS);
			bench_set = true;
			break;
		case 'm':
			if (!init_uri_ok(optarg))
				return init_fail("--mssp-id: an absolute URI of visible ASCII "
						 "(not mesh:...)");
			o->o_mssp_id = optarg;
			break;
		case 'P':
			if (!init_prefix_ok(optarg))
				return init_fail("--demo-prefix: + and 1..%d digits",
						 INIT_DEMO_PREFIX_MAX_DIGITS);
			o->o_demo_prefix = optarg;
			break;
		case 'h':
			init_usage(stdout);
			return 1;
		default:
			return init_fail("unknown option or missing argument: %s",
					 argv[optind - 1 > 0 ? optind - 1 : 0]);
		}
	}
	if (optind < argc)
		return init_fail("unexpected argument: %s", argv[optind]);
	if (o->o_dir == NULL || o->o_dir[0] == '\0')
		return init_fail("--data-dir DIR is required");
	if (bench_set && !o->o_demo)
		return init_fail("--bench-users needs --demo");
	if (o->o_demo_prefix && !o->o_demo)
		return init_fail("--demo-prefix needs --demo");
	return 0;
}

static int
init_make(struct init_run *r)
{
	if (init_take_dir(r) != 0)
		return -1;
	if (init_tls(r) != 0 || init_user_ca(r) != 0 || init_store(r) != 0 ||
	    init_registry(r) != 0 || init_admin(r) != 0 || init_profiles(r) != 0 ||
	    init_phone_conf(r) != 0)
		goto fail;
	if (r->r_o->o_demo &&
	    (init_demo_ap(r) != 0 || init_demo_users(r) != 0 || init_bench_users(r) != 0 ||
	     init_crl(r) != 0))
		goto fail;
	if (init_msspd_conf(r) != 0)
		goto fail;
	return 0;
fail:
	return 1; /* the caller removes what was made */
}

static void
init_release(struct init_run *r)
{
	reg_free(r->r_reg);
	r->r_reg = NULL;
	audit_close(r->r_audit);
	r->r_audit = NULL;
	store_close(r->r_st);
	r->r_st = NULL;
	sk_X509_free(r->r_chain); /* the certificate is the CA's */
	r->r_chain = NULL;
	pki_ca_free(r->r_ca);
	r->r_ca = NULL;
	X509_free(r->r_tls_ca);
	r->r_tls_ca = NULL;
	EVP_PKEY_free(r->r_tls_key);
	r->r_tls_key = NULL;
}

static void
init_summary(const struct init_run *r)
{
	const struct init_opts *o = r->r_o;
	unsigned n = o->o_base_port;

	printf("msspd init: created %s\n"
	       "  msspd.conf        node configuration (AE %u, ME %u, AFE %u, admin %u,\n"
	       "                    push %u, pki %u: OCSP and CRL, plain HTTP, mesh %u)\n"
	       "  mssp.db           store\n"
	       "  tls/              development TLS CA and server certificate (localhost)\n"
	       "  ca/               user CA (pass phrase in ca/passphrase)\n"
	       "  admin/            ME accounts admin, admin2, ra, auditor: client\n"
	       "                    certificates and msspctl configurations\n"
	       "  audit/            audit log and its signing key\n"
	       "  phones/phone.conf where mss-phone finds the AFE\n",
	       o->o_dir, n, n + 1, n + 2, n + 3, n + 4, n + 5, n + 6);
	if (o->o_demo)
		printf("  demo/             demo AP %s: certificate, mss-ap.conf\n"
		       "  phones/           phone.conf and %u phones (%u keys)\n"
		       "                    demo PIN %s, PUK %s\n",
		       INIT_AP_ID, atomic_load(&r->r_users), atomic_load(&r->r_keys), INIT_DEMO_PIN,
		       INIT_DEMO_PUK);
}

int
msspd_init_main(int argc, char **argv)
{
	struct init_opts o = {0};
	struct init_run r = {0};
	int rc;

	rc = init_parse(argc, argv, &o);
	if (rc > 0)
		return 0; /* --help */
	if (rc < 0) {
		init_usage(stderr);
		return INIT_EXIT_USAGE;
	}
	r.r_o = &o;
	pthread_mutex_init(&r.r_ca_mu, NULL);
	rc = init_make(&r);
	init_release(&r);
	pthread_mutex_destroy(&r.r_ca_mu);
	if (rc < 0)
		return INIT_EXIT_FAIL; /* DIR refused: nothing was made */
	if (rc > 0) {
		init_remove(&r);
		fprintf(stderr, "msspd init: failed; %s removed\n",
			r.r_dir_created ? o.o_dir : "what was created under DIR was");
		return INIT_EXIT_FAIL;
	}
	init_summary(&r);
	return 0;
}
