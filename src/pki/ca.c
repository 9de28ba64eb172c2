/*
 * ca.c - the built-in certificate authority (see ca.h and
 * docs/internals/ca.md).
 *
 * Shape: a CA is a directory.  Every change (issue, revoke, CRL) takes an
 * exclusive flock on DIR/lock, brings its copy of the database up to date,
 * changes it, makes the change durable and only then returns.  Files are
 * written atomically (temp file, fsync, rename, fsync of the directory) and
 * never rewritten in place; the one exception is ca.db, to which issuance
 * appends one line (O_APPEND, fsync) so that n certificates cost O(n), not
 * O(n^2).  A reader keeps the database file it parsed open: a different
 * inode means it was replaced (the kept descriptor stops the inode number
 * from being reused), a larger size that it grew, and then only the new
 * lines are parsed.
 */
#include "pki/ca.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "util/buf.h"
#include "util/limits.h"

#define CA_PATH_MAX	    4096
#define CA_NAME_MAX	    31 /* profile names                          */
#define CA_DB_MAGIC	    "openmssp-ca-db 2\n" /* written: appended records allowed */
#define CA_DB_MAGIC_V1	    "openmssp-ca-db 1\n" /* still read: body and end line only */
#define CA_DB_SUM_HEX	    64		/* SHA-256 in hex                       */
#define CA_DB_READ_TRIES    3		/* full reads racing a writer, see reload */
/* every record line, the magic and end lines, and one torn tail */
#define CA_DB_MAX_BYTES	    (((size_t)MSSP_CA_DB_MAX_RECORDS + 1) * MSSP_CA_DB_MAX_LINE + 256)
#define CA_SERIAL_BYTES	    20 /* 159 random bits after clearing the top */
#define CA_SERIAL_TRIES	    8  /* a collision needs 2^79 certificates     */
#define CA_ROOT_DAYS	    7305
#define CA_ISSUING_DAYS	    3652
#define CA_PROFILE_DAYS	    730
#define CA_CRL_HOURS	    168
#define CA_OCSP_HOURS	    24
#define CA_SALT_LEN	    16
/* Private arc (ITU-T X.667 UUID OID, no registration needed) for the
 * default certificate policies; operators replace it in ca.conf. */
#define CA_POLICY_ARC	    "2.25.145006313504873097012093248345851622080"

enum ca_eku_bit {
	CA_EKU_CLIENT_AUTH = 1 << 0,
	CA_EKU_EMAIL = 1 << 1,
};

struct ca_profile {
	char pf_name[CA_NAME_MAX + 1];
	unsigned pf_ku;	  /* KU_* bits (x509v3.h) */
	unsigned pf_eku;  /* enum ca_eku_bit      */
	unsigned pf_days;
	size_t pf_npolicies;
	char pf_policies[MSSP_CA_MAX_POLICIES][MSSP_CA_MAX_OID + 1];
};

struct ca_conf {
	bool cf_pkcs11;
	char cf_uri[MSSP_CA_CONF_MAX_LINE];
	char cf_module[MSSP_CA_CONF_MAX_LINE]; /* "" = engine default */
	unsigned cf_crl_hours;
	unsigned cf_ocsp_hours;
	char cf_crl_url[MSSP_CA_MAX_URL + 1];
	char cf_ocsp_url[MSSP_CA_MAX_URL + 1];
	size_t cf_nprofiles;
	struct ca_profile cf_profiles[MSSP_CA_MAX_PROFILES];
};

struct ca_rec {
	char r_serial[PKI_CA_SERIAL_HEX_MAX + 1];
	time_t r_not_after;
	bool r_revoked;
	time_t r_rev_time;
	int r_reason;
	char *r_profile;
	char *r_subject;
};

struct ca_db {
	struct ca_rec *d_recs; /* in file order */
	size_t d_n;
	size_t d_alloc;
	uint32_t *d_idx;       /* serial -> record index + 1, 0 = empty slot */
	size_t d_idx_size;     /* a power of two, at least 2 * d_n          */
	int d_fd; /* the file d_recs came from, kept open; -1: reload */
	int d_version;	       /* of its magic line: 1 or 2                  */
	/* its size and times when last looked at (a torn tail included):
	 * growth means appends, anything else a replacement or an edit */
	off_t d_size;
	struct timespec d_mtim, d_ctim;
	/* the valid prefix: it ends at d_off, after the last complete line;
	 * d_sum is the chain value there, written in the file at d_sum_off */
	off_t d_off;
	off_t d_sum_off;
	char d_sum[CA_DB_SUM_HEX + 1];
};

struct pki_ca {
	char *ca_dir;
	X509 *ca_cert;
	time_t ca_not_after;
	STACK_OF(X509) *ca_chain;
	EVP_PKEY *ca_key; /* key file; NULL with PKCS#11 or without key */
	struct pki_ca_p11 *ca_p11;
	struct ca_conf ca_conf;
	struct ca_db ca_db;
};

struct ca_ext {
	int x_nid;
	const char *x_value;
};

/* ---- small helpers ---------------------------------------------------- */

static EVP_PKEY *
ca_sign_key(const struct pki_ca *ca)
{
	if (ca->ca_p11 != NULL)
		return pki_ca_p11_key(ca->ca_p11);
	return ca->ca_key;
}

static int
ca_path(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* Write `len` bytes to DIR/NAME atomically with `mode`.  With `keep_fd`
 * the new file stays open (read-only use) and its descriptor is returned
 * there. */
static int
ca_write_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
		int *keep_fd, struct pki_err *err)
{
	char tmp[CA_PATH_MAX], dst[CA_PATH_MAX];
	const unsigned char *p = data;
	int fd = -1, dfd = -1, rc = -1;
	bool tmp_made = false;
	ssize_t w;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp) ||
	    ca_path(dst, sizeof(dst), dir, name) != 0) {
		pki_err_set(err, 900, "CA directory path too long");
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		pki_err_set(err, 900, "CA directory: cannot create %s: %s", name, strerror(errno));
		goto out;
	}
	tmp_made = true;
	if (fchmod(fd, mode) != 0)
		goto io;
	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto io;
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || rename(tmp, dst) != 0)
		goto io;
	tmp_made = false;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		goto io;
	if (keep_fd != NULL) {
		*keep_fd = fd;
		fd = -1;
	}
	rc = 0;
	goto out;
io:
	pki_err_set(err, 900, "CA directory: cannot write %s: %s", name, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp_made)
		unlink(tmp);
	return rc;
}

/* Read all of an open file, at most `max` bytes, NUL-terminated
 * (OPENSSL_free); *stp (may be NULL) gets the fstat the size came from.
 * -1 if larger, not a regular file, shorter than that size, or on I/O
 * error. */
static int
ca_read_fd(int fd, size_t max, char **out, size_t *outlen, struct stat *stp)
{
	struct stat st;
	size_t off = 0, size;
	ssize_t r;
	char *buf;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (unsigned long long)st.st_size > max)
		return -1;
	size = (size_t)st.st_size;
	buf = OPENSSL_malloc(size + 1);
	if (buf == NULL)
		return -1;
	while (off < size) {
		r = pread(fd, buf + off, size - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	if (off != size) {
		OPENSSL_free(buf);
		return -1;
	}
	buf[size] = '\0';
	*out = buf;
	*outlen = size;
	if (stp != NULL)
		*stp = st;
	return 0;
}

/* DIR/NAME into a new buffer (OPENSSL_free).  `optional`: a missing file
 * gives 0 with *out NULL. */
static int
ca_read_file(const char *dir, const char *name, size_t max, bool optional, char **out,
	     size_t *outlen, struct pki_err *err)
{
	char path[CA_PATH_MAX];
	int fd, rc;

	*out = NULL;
	*outlen = 0;
	if (ca_path(path, sizeof(path), dir, name) != 0)
		return pki_err_set(err, 900, "CA directory path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return pki_err_set(err, 900, "CA directory: cannot open %s: %s", name, strerror(errno));
	}
	rc = ca_read_fd(fd, max, out, outlen, NULL);
	close(fd);
	if (rc != 0)
		return pki_err_set(err, 900, "CA directory: cannot read %s (too large or not a file)",
				   name);
	return 0;
}

/* "YYYYMMDDHHMMSSZ" */
static void
ca_time_fmt(time_t t, char out[16])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 16, "%Y%m%d%H%M%SZ", &tm) != 15)
		memcpy(out, "00000000000000Z", 16);
}

static int
ca_digits(const char *s, size_t n, int *out)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Strict inverse of ca_time_fmt(): exactly 15 bytes, a real date. */
static int
ca_time_parse(const char *s, size_t len, time_t *out)
{
	struct tm tm, back;
	int y, mo, d, h, mi, se;
	time_t t;

	if (len != 15 || s[14] != 'Z' || ca_digits(s, 4, &y) || ca_digits(s + 4, 2, &mo) ||
	    ca_digits(s + 6, 2, &d) || ca_digits(s + 8, 2, &h) || ca_digits(s + 10, 2, &mi) ||
	    ca_digits(s + 12, 2, &se))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	/* timegm normalises 31 Feb into March: a round trip catches it. */
	if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_year != y - 1900 ||
	    back.tm_mon != mo - 1 || back.tm_mday != d || back.tm_hour != h ||
	    back.tm_min != mi || back.tm_sec != se)
		return -1;
	*out = t;
	return 0;
}

static int
ca_asn1_time_to_t(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	if (a == NULL || !ASN1_TIME_to_tm(a, &tm))
		return -1;
	*out = timegm(&tm);
	return *out == (time_t)-1 ? -1 : 0;
}

/* Canonical serial text: BN_bn2hex of a positive number of at most 160
 * bits (upper case, whole bytes). */
static int
ca_serial_from_bn(const BIGNUM *bn, char out[PKI_CA_SERIAL_HEX_MAX + 1])
{
	char *hex;
	size_t n;

	if (BN_is_negative(bn) || BN_is_zero(bn) || BN_num_bits(bn) > 8 * CA_SERIAL_BYTES)
		return -1;
	hex = BN_bn2hex(bn);
	if (hex == NULL)
		return -1;
	n = strlen(hex);
	if (n == 0 || n > PKI_CA_SERIAL_HEX_MAX) {
		OPENSSL_free(hex);
		return -1;
	}
	memcpy(out, hex, n + 1);
	OPENSSL_free(hex);
	return 0;
}

static int
ca_serial_from_asn1(const ASN1_INTEGER *ai, char out[PKI_CA_SERIAL_HEX_MAX + 1])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	int rc;

	if (bn == NULL)
		return -1;
	rc = ca_serial_from_bn(bn, out);
	BN_free(bn);
	return rc;
}

/* Operator text (any case, leading zeros, at most 64 digits) to the
 * canonical form. */
static int
ca_serial_normalize(const char *in, char out[PKI_CA_SERIAL_HEX_MAX + 1])
{
	BIGNUM *bn = NULL;
	size_t i, n;
	int rc;

	if (in == NULL)
		return -1;
	n = strlen(in);
	if (n == 0 || n > 64)
		return -1;
	for (i = 0; i < n; i++)
		if (!((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f') ||
		      (in[i] >= 'A' && in[i] <= 'F')))
			return -1;
	if (BN_hex2bn(&bn, in) != (int)n)
		rc = -1;
	else
		rc = ca_serial_from_bn(bn, out);
	BN_free(bn);
	return rc;
}

static ASN1_INTEGER *
ca_serial_to_asn1(const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;

	if (BN_hex2bn(&bn, hex) > 0)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

/* 1..max bytes, no C0 control or DEL (UTF-8 validity is OpenSSL's job). */
static bool
ca_text_ok(const char *s, size_t max)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool
ca_present(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static bool
ca_country_ok(const char *s)
{
	return s != NULL && strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
	       s[1] <= 'Z';
}

/* X.680 PrintableString characters. */
static bool
ca_printable_ok(const char *s, size_t max)
{
	static const char extra[] = " '()+,-./:=?";
	size_t i, n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(extra, c) != NULL))
			return false;
	}
	return true;
}

static bool
ca_profile_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CA_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

/* Dotted OID: arcs of digits, first arc 0..2, at least two arcs, no
 * leading zeros; then OpenSSL must agree. */
static bool
ca_oid_ok(const char *s, size_t n)
{
	char tmp[MSSP_CA_MAX_OID + 1];
	ASN1_OBJECT *o;
	size_t i, arcs = 1, arc_len = 0;

	if (n < 3 || n > MSSP_CA_MAX_OID || s[0] < '0' || s[0] > '2' || s[1] != '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (arc_len == 0)
				return false;
			arcs++;
			arc_len = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (arc_len == 1 && s[i - 1] == '0')
				return false;
			arc_len++;
		} else {
			return false;
		}
	}
	if (arc_len == 0 || arcs < 2)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	o = OBJ_txt2obj(tmp, 1);
	ASN1_OBJECT_free(o);
	ERR_clear_error();
	return o != NULL;
}

/* http(s) URL without spaces or commas (commas split OpenSSL conf lists). */
static bool
ca_url_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > MSSP_CA_MAX_URL)
		return false;
	if (!(n > 7 && strncmp(s, "http://", 7) == 0) && !(n > 8 && strncmp(s, "https://", 8) == 0))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ',')
			return false;
	return true;
}

/* ---- reasons ---------------------------------------------------------- */

static const struct {
	int r_code;
	const char *r_name;
} ca_reasons[] = {
	{ PKI_CA_REASON_UNSPECIFIED, "unspecified" },
	{ PKI_CA_REASON_KEY_COMPROMISE, "keyCompromise" },
	{ PKI_CA_REASON_CA_COMPROMISE, "cACompromise" },
	{ PKI_CA_REASON_AFFILIATION_CHANGED, "affiliationChanged" },
	{ PKI_CA_REASON_SUPERSEDED, "superseded" },
	{ PKI_CA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation" },
	{ PKI_CA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn" },
};

int
pki_ca_reason_parse(const char *name, int *reason)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof(ca_reasons) / sizeof(ca_reasons[0]); i++)
		if (strcmp(name, ca_reasons[i].r_name) == 0) {
			*reason = ca_reasons[i].r_code;
			return 0;
		}
	return -1;
}

const char *
pki_ca_reason_name(int reason)
{
	size_t i;

	for (i = 0; i < sizeof(ca_reasons) / sizeof(ca_reasons[0]); i++)
		if (ca_reasons[i].r_code == reason)
			return ca_reasons[i].r_name;
	return "?";
}

static bool
ca_reason_ok(int reason)
{
	return strcmp(pki_ca_reason_name(reason), "?") != 0;
}

/* ---- ca.conf ---------------------------------------------------------- */

static const struct {
	const char *k_name;
	unsigned k_bit;
} ca_ku_names[] = {
	{ "digitalSignature", KU_DIGITAL_SIGNATURE },
	{ "nonRepudiation", KU_NON_REPUDIATION },
	{ "contentCommitment", KU_NON_REPUDIATION },
	{ "keyEncipherment", KU_KEY_ENCIPHERMENT },
	{ "keyAgreement", KU_KEY_AGREEMENT },
};

static const struct {
	const char *e_name;
	unsigned e_bit;
} ca_eku_names[] = {
	{ "clientAuth", CA_EKU_CLIENT_AUTH },
	{ "emailProtection", CA_EKU_EMAIL },
};

static void
ca_conf_defaults(struct ca_conf *c)
{
	struct ca_profile *p;

	memset(c, 0, sizeof(*c));
	c->cf_crl_hours = CA_CRL_HOURS;
	c->cf_ocsp_hours = CA_OCSP_HOURS;
	c->cf_nprofiles = 2;
	p = &c->cf_profiles[0];
	memcpy(p->pf_name, "authn", 6);
	p->pf_ku = KU_DIGITAL_SIGNATURE;
	p->pf_days = CA_PROFILE_DAYS;
	p->pf_npolicies = 1;
	memcpy(p->pf_policies[0], CA_POLICY_ARC ".1.1", sizeof(CA_POLICY_ARC ".1.1"));
	p = &c->cf_profiles[1];
	memcpy(p->pf_name, "sign", 5);
	/* nonRepudiation with digitalSignature: OpenSSL's sslclient purpose,
	 * which the Swisscom scripts and PHP SoapClient apply to every signer
	 * certificate, refuses a nonRepudiation-only key usage.  An operator
	 * who needs it (a QES profile) sets key_usage in ca.conf. */
	p->pf_ku = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
	p->pf_days = CA_PROFILE_DAYS;
	p->pf_npolicies = 1;
	memcpy(p->pf_policies[0], CA_POLICY_ARC ".1.2", sizeof(CA_POLICY_ARC ".1.2"));
}

static int
ca_conf_uint(const char *v, size_t n, unsigned min, unsigned max, unsigned *out)
{
	int x;

	if (n == 0 || n > 5 || (n > 1 && v[0] == '0') || ca_digits(v, n, &x) != 0 ||
	    (unsigned)x < min || (unsigned)x > max)
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* "a,b,c" against a name table; -1 on an unknown or repeated name. */
static int
ca_conf_bits(const char *v, size_t n, bool eku, unsigned *out)
{
	const char *p = v, *end = v + n, *comma;
	unsigned bits = 0, bit;
	size_t len, i, count;

	if (n == 0)
		return -1;
	count = eku ? sizeof(ca_eku_names) / sizeof(ca_eku_names[0])
		    : sizeof(ca_ku_names) / sizeof(ca_ku_names[0]);
	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		len = (size_t)((comma ? comma : end) - p);
		bit = 0;
		for (i = 0; i < count; i++) {
			const char *nm = eku ? ca_eku_names[i].e_name : ca_ku_names[i].k_name;

			if (strlen(nm) == len && memcmp(nm, p, len) == 0) {
				bit = eku ? ca_eku_names[i].e_bit : ca_ku_names[i].k_bit;
				break;
			}
		}
		if (bit == 0 || (bits & bit) != 0)
			return -1;
		bits |= bit;
		if (comma != NULL && comma + 1 == end)
			return -1;
		p += len + (comma ? 1 : 0);
	}
	*out = bits;
	return 0;
}

/* "profile NAME key_usage=.. days=N [policies=o1,o2] [eku=..]" after the
 * word "profile ". */
static int
ca_conf_profile(struct ca_conf *c, const char *v, size_t n)
{
	struct ca_profile pf;
	const char *p = v, *end = v + n, *sp, *eq, *val, *q, *comma;
	size_t len, vlen, i;
	bool have_ku = false, have_days = false, have_pol = false, have_eku = false;

	memset(&pf, 0, sizeof(pf));
	sp = memchr(p, ' ', n);
	len = sp ? (size_t)(sp - p) : n;
	if (!ca_profile_name_ok(p, len) || (len == 2 && memcmp(p, "ca", 2) == 0))
		return -1;
	memcpy(pf.pf_name, p, len);
	for (i = 0; i < c->cf_nprofiles; i++)
		if (strcmp(c->cf_profiles[i].pf_name, pf.pf_name) == 0)
			return -1;
	if (c->cf_nprofiles >= MSSP_CA_MAX_PROFILES)
		return -1;
	p += len;
	while (p < end) {
		if (*p != ' ' || p + 1 >= end)
			return -1;
		p++;
		sp = memchr(p, ' ', (size_t)(end - p));
		len = (size_t)((sp ? sp : end) - p);
		eq = memchr(p, '=', len);
		if (eq == NULL)
			return -1;
		val = eq + 1;
		vlen = (size_t)(p + len - val);
#define ATTR(k) ((size_t)(eq - p) == strlen(k) && memcmp(p, k, strlen(k)) == 0)
		if (ATTR("key_usage") && !have_ku) {
			if (ca_conf_bits(val, vlen, false, &pf.pf_ku) != 0)
				return -1;
			have_ku = true;
		} else if (ATTR("eku") && !have_eku) {
			if (ca_conf_bits(val, vlen, true, &pf.pf_eku) != 0)
				return -1;
			have_eku = true;
		} else if (ATTR("days") && !have_days) {
			if (ca_conf_uint(val, vlen, 1, MSSP_CA_MAX_DAYS, &pf.pf_days) != 0)
				return -1;
			have_days = true;
		} else if (ATTR("policies") && !have_pol) {
			q = val;
			while (q < val + vlen) {
				comma = memchr(q, ',', (size_t)(val + vlen - q));
				i = (size_t)((comma ? comma : val + vlen) - q);
				if (pf.pf_npolicies >= MSSP_CA_MAX_POLICIES || !ca_oid_ok(q, i))
					return -1;
				memcpy(pf.pf_policies[pf.pf_npolicies++], q, i);
				if (comma != NULL && comma + 1 == val + vlen)
					return -1;
				q += i + (comma ? 1 : 0);
			}
			if (pf.pf_npolicies == 0)
				return -1;
			have_pol = true;
		} else {
			return -1;
		}
#undef ATTR
		p += len;
	}
	if (!have_ku || !have_days)
		return -1;
	c->cf_profiles[c->cf_nprofiles++] = pf;
	return 0;
}

/* Parse ca.conf strictly: unknown settings, repeats and bad values are
 * errors (a typo never silently changes what the CA issues). */
static int
ca_conf_parse(const char *text, size_t tlen, struct ca_conf *c, struct pki_err *err)
{
	const char *p = text, *end = text + tlen, *nl, *sp, *v;
	size_t len, klen, vlen, lineno = 0;
	bool seen_version = false, seen_key = false, seen_uri = false, seen_module = false;
	bool seen_crl = false, seen_ocsp = false, seen_crl_url = false, seen_ocsp_url = false;

	memset(c, 0, sizeof(*c));
	while (p < end) {
		if (++lineno > MSSP_CA_CONF_MAX_LINES)
			return pki_err_set(err, 900, "ca.conf: too many lines");
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return pki_err_set(err, 900, "ca.conf: line %zu not terminated", lineno);
		len = (size_t)(nl - p);
		if (len >= MSSP_CA_CONF_MAX_LINE)
			return pki_err_set(err, 900, "ca.conf: line %zu too long", lineno);
		if (memchr(p, '\0', len) != NULL || memchr(p, '\r', len) != NULL ||
		    memchr(p, '\t', len) != NULL)
			return pki_err_set(err, 900, "ca.conf: line %zu has a control byte", lineno);
		if (len == 0 || p[0] == '#') {
			p = nl + 1;
			continue;
		}
		sp = memchr(p, ' ', len);
		if (sp == NULL || sp + 1 >= nl || nl[-1] == ' ')
			return pki_err_set(err, 900, "ca.conf: line %zu: expected NAME VALUE", lineno);
		klen = (size_t)(sp - p);
		v = sp + 1;
		vlen = (size_t)(nl - v);
#define KEY(k) (klen == strlen(k) && memcmp(p, k, klen) == 0)
#define ONCE(flag)                  \
	do {                        \
		if (flag)           \
			goto bad;   \
		flag = true;        \
	} while (0)
		if (KEY("version")) {
			ONCE(seen_version);
			if (vlen != 1 || v[0] != '1')
				goto bad;
		} else if (KEY("key")) {
			ONCE(seen_key);
			if (vlen == 6 && memcmp(v, "pkcs11", 6) == 0)
				c->cf_pkcs11 = true;
			else if (!(vlen == 4 && memcmp(v, "file", 4) == 0))
				goto bad;
		} else if (KEY("pkcs11_uri")) {
			ONCE(seen_uri);
			memcpy(c->cf_uri, v, vlen);
			/* the PIN never lives in the directory */
			if (strncmp(c->cf_uri, "pkcs11:", 7) != 0 || strstr(c->cf_uri, "pin-") != NULL)
				goto bad;
		} else if (KEY("pkcs11_module")) {
			ONCE(seen_module);
			if (v[0] != '/')
				goto bad;
			memcpy(c->cf_module, v, vlen);
		} else if (KEY("crl_hours")) {
			ONCE(seen_crl);
			if (ca_conf_uint(v, vlen, 1, MSSP_CA_MAX_HOURS, &c->cf_crl_hours) != 0)
				goto bad;
		} else if (KEY("ocsp_hours")) {
			ONCE(seen_ocsp);
			if (ca_conf_uint(v, vlen, 1, MSSP_CA_MAX_HOURS, &c->cf_ocsp_hours) != 0)
				goto bad;
		} else if (KEY("crl_url")) {
			ONCE(seen_crl_url);
			if (!ca_url_ok(v, vlen))
				goto bad;
			memcpy(c->cf_crl_url, v, vlen);
		} else if (KEY("ocsp_url")) {
			ONCE(seen_ocsp_url);
			if (!ca_url_ok(v, vlen))
				goto bad;
			memcpy(c->cf_ocsp_url, v, vlen);
		} else if (KEY("profile")) {
			if (ca_conf_profile(c, v, vlen) != 0)
				goto bad;
		} else {
			return pki_err_set(err, 900, "ca.conf: line %zu: unknown setting", lineno);
		}
#undef KEY
#undef ONCE
		p = nl + 1;
		continue;
bad:
		return pki_err_set(err, 900, "ca.conf: line %zu: invalid or repeated setting", lineno);
	}
	if (!seen_version || !seen_key || !seen_crl || !seen_ocsp)
		return pki_err_set(err, 900, "ca.conf: version, key, crl_hours and ocsp_hours are required");
	if (c->cf_pkcs11 != seen_uri || (seen_module && !c->cf_pkcs11))
		return pki_err_set(err, 900, "ca.conf: pkcs11_uri goes with key pkcs11, and only with it");
	if (c->cf_nprofiles == 0)
		return pki_err_set(err, 900, "ca.conf: no certificate profile");
	return 0;
}

/* Names of `bits` as a comma list ("digitalSignature,nonRepudiation"). */
static int
ca_bits_text(unsigned bits, bool eku, char *out, size_t size)
{
	size_t i, count, off = 0;
	unsigned done = 0;
	int n;

	out[0] = '\0';
	count = eku ? sizeof(ca_eku_names) / sizeof(ca_eku_names[0])
		    : sizeof(ca_ku_names) / sizeof(ca_ku_names[0]);
	for (i = 0; i < count; i++) {
		unsigned bit = eku ? ca_eku_names[i].e_bit : ca_ku_names[i].k_bit;

		if ((bits & bit) == 0 || (done & bit) != 0)
			continue;
		done |= bit;
		n = snprintf(out + off, size - off, "%s%s", off ? "," : "",
			     eku ? ca_eku_names[i].e_name : ca_ku_names[i].k_name);
		if (n < 0 || (size_t)n >= size - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int
ca_conf_format(const struct ca_conf *c, struct mss_buf *b)
{
	size_t i, j;
	int rc = 0;

	rc |= mss_buf_adds(b,
			   "# OpenMSSP CA settings (docs/internals/ca.md).  One setting per line,\n"
			   "# NAME VALUE; '#' starts a comment line.  Never put a PIN or pass phrase here.\n"
			   "version 1\n");
	rc |= mss_buf_addf(b, "key %s\n", c->cf_pkcs11 ? "pkcs11" : "file");
	if (c->cf_pkcs11) {
		rc |= mss_buf_addf(b, "pkcs11_uri %s\n", c->cf_uri);
		if (c->cf_module[0])
			rc |= mss_buf_addf(b, "pkcs11_module %s\n", c->cf_module);
	}
	rc |= mss_buf_addf(b, "# CRL nextUpdate and OCSP nextUpdate, in hours\ncrl_hours %u\nocsp_hours %u\n",
			   c->cf_crl_hours, c->cf_ocsp_hours);
	rc |= mss_buf_adds(b, "# URLs put into issued certificates (CDP, AIA OCSP) when set\n"
			      "# crl_url http://crl.example.org/ca.crl\n"
			      "# ocsp_url http://ocsp.example.org/\n"
			      "# profile NAME key_usage=LIST days=N [policies=OID,...] [eku=clientAuth,emailProtection]\n");
	for (i = 0; i < c->cf_nprofiles && rc == 0; i++) {
		const struct ca_profile *p = &c->cf_profiles[i];

		char bits[128];

		rc |= ca_bits_text(p->pf_ku, false, bits, sizeof(bits));
		rc |= mss_buf_addf(b, "profile %s key_usage=%s days=%u", p->pf_name, bits, p->pf_days);
		for (j = 0; j < p->pf_npolicies; j++)
			rc |= mss_buf_addf(b, "%s%s", j ? "," : " policies=", p->pf_policies[j]);
		if (p->pf_eku) {
			rc |= ca_bits_text(p->pf_eku, true, bits, sizeof(bits));
			rc |= mss_buf_addf(b, " eku=%s", bits);
		}
		rc |= mss_buf_adds(b, "\n");
	}
	return rc ? -1 : 0;
}

static const struct ca_profile *
ca_profile_find(const struct ca_conf *c, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < c->cf_nprofiles; i++)
		if (strcmp(c->cf_profiles[i].pf_name, name) == 0)
			return &c->cf_profiles[i];
	return NULL;
}

/* ---- the issuance database -------------------------------------------- */

/*
 * ca.db (docs/internals/ca.md): the magic line, the body, "end COUNT SUM"
 * where SUM is the SHA-256 of every byte before that line, then records
 * appended one at a time as "+ SUM2 RECORD" where SUM2 chains on from the
 * previous SUM.  Issuing appends one line (O_APPEND, fsync): O(1) per
 * certificate instead of rewriting the whole file.  Anything that changes
 * an existing record (revocation) rewrites the file atomically, which
 * folds the appended records back into the body.
 *
 * A torn tail - a last line without its '\n', or a last line holding a NUL
 * byte (a block of an unfinished append that never reached the disk) - is
 * an append that never completed, so its certificate was never returned:
 * readers ignore it, and the next writer truncates it under the lock
 * before appending.  Every complete line before it must parse and chain,
 * or the whole database is refused.
 */

static void
ca_rec_free(struct ca_rec *r)
{
	OPENSSL_free(r->r_profile);
	OPENSSL_free(r->r_subject);
	r->r_profile = r->r_subject = NULL;
}

static void
ca_db_clear(struct ca_db *d)
{
	size_t i;

	for (i = 0; i < d->d_n; i++)
		ca_rec_free(&d->d_recs[i]);
	OPENSSL_free(d->d_recs);
	OPENSSL_free(d->d_idx);
	if (d->d_fd >= 0)
		close(d->d_fd);
	memset(d, 0, sizeof(*d));
	d->d_fd = -1;
}

/* FNV-1a: serials are random, a simple spread is enough. */
static uint32_t
ca_serial_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* The index slot of `serial`: the slot that names its record, or the empty
 * slot where it would go (open addressing, linear probing; d_idx_size is a
 * power of two and the table is never more than half full). */
static size_t
ca_db_slot(const struct ca_db *d, const char *serial)
{
	size_t mask = d->d_idx_size - 1, i = ca_serial_hash(serial) & mask;

	while (d->d_idx[i] != 0 && strcmp(d->d_recs[d->d_idx[i] - 1].r_serial, serial) != 0)
		i = (i + 1) & mask;
	return i;
}

static struct ca_rec *
ca_db_find(const struct ca_db *d, const char *serial)
{
	size_t i;

	if (d->d_idx_size == 0)
		return NULL;
	i = ca_db_slot(d, serial);
	return d->d_idx[i] != 0 ? &d->d_recs[d->d_idx[i] - 1] : NULL;
}

/* Room for one more record, in d_recs and in the index, so that
 * ca_db_push() cannot fail for lack of memory.  -1: full (d_n at
 * MSSP_CA_DB_MAX_RECORDS) or out of memory. */
static int
ca_db_reserve(struct ca_db *d)
{
	if (d->d_n >= MSSP_CA_DB_MAX_RECORDS)
		return -1;
	if (d->d_n == d->d_alloc) {
		size_t na = d->d_alloc ? d->d_alloc * 2 : 64;
		struct ca_rec *nr;

		if (na > MSSP_CA_DB_MAX_RECORDS)
			na = MSSP_CA_DB_MAX_RECORDS;
		nr = OPENSSL_realloc(d->d_recs, na * sizeof(*nr));
		if (nr == NULL)
			return -1;
		d->d_recs = nr;
		d->d_alloc = na;
	}
	if ((d->d_n + 1) * 2 > d->d_idx_size) {
		size_t ns = d->d_idx_size ? d->d_idx_size * 2 : 128, i;
		uint32_t *ni = OPENSSL_zalloc(ns * sizeof(*ni));

		if (ni == NULL)
			return -1;
		OPENSSL_free(d->d_idx);
		d->d_idx = ni;
		d->d_idx_size = ns;
		for (i = 0; i < d->d_n; i++)
			d->d_idx[ca_db_slot(d, d->d_recs[i].r_serial)] = (uint32_t)(i + 1);
	}
	return 0;
}

/* Append *r after ca_db_reserve(); its strings now belong to `d`.  -1
 * (nothing taken) for a serial already present. */
static int
ca_db_push(struct ca_db *d, const struct ca_rec *r)
{
	size_t s = ca_db_slot(d, r->r_serial);

	if (d->d_idx[s] != 0)
		return -1;
	d->d_recs[d->d_n] = *r;
	d->d_idx[s] = (uint32_t)++d->d_n;
	return 0;
}

/* Drop the last record.  Undoing the most recent insertion leaves a
 * linear-probing table exactly as it was before it, so clearing its slot
 * is enough. */
static void
ca_db_pop(struct ca_db *d)
{
	struct ca_rec *r = &d->d_recs[d->d_n - 1];

	d->d_idx[ca_db_slot(d, r->r_serial)] = 0;
	ca_rec_free(r);
	d->d_n--;
}

/* Not snprintf: this runs once per appended line when reading. */
static void
ca_hex32(const unsigned char md[32], char out[65])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[64] = '\0';
}

static void
ca_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		memset(md, 0, sizeof(md));
	ca_hex32(md, out);
}

/* One record as text, with its newline: SERIAL NOTAFTER V|R REVTIME|-
 * REASON|- PROFILE SUBJECT.  The length, or -1 if it does not fit. */
static int
ca_rec_text(const struct ca_rec *r, char *out, size_t size)
{
	char na[16], rt[16];
	int n;

	ca_time_fmt(r->r_not_after, na);
	if (r->r_revoked)
		ca_time_fmt(r->r_rev_time, rt);
	n = snprintf(out, size, "%s %s %c %s %s %s %s\n", r->r_serial, na,
		     r->r_revoked ? 'R' : 'V', r->r_revoked ? rt : "-",
		     r->r_revoked ? pki_ca_reason_name(r->r_reason) : "-", r->r_profile,
		     r->r_subject);
	return (n < 0 || (size_t)n >= size) ? -1 : n;
}

/* One record line (without "\n"): SERIAL NOTAFTER V|R REVTIME|- REASON|-
 * PROFILE SUBJECT.  Fields are checked one by one; the subject is the
 * rest of the line. */
static int
ca_db_parse_line(const char *p, size_t len, struct ca_rec *r)
{
	const char *f[6], *end = p + len, *q = p, *sp;
	size_t fl[6], i;
	char canon[PKI_CA_SERIAL_HEX_MAX + 1];

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 6; i++) {
		sp = memchr(q, ' ', (size_t)(end - q));
		if (sp == NULL || sp == q)
			return -1;
		f[i] = q;
		fl[i] = (size_t)(sp - q);
		q = sp + 1;
	}
	/* serial: canonical form only, so one certificate has one spelling */
	if (fl[0] == 0 || fl[0] > PKI_CA_SERIAL_HEX_MAX)
		return -1;
	memcpy(r->r_serial, f[0], fl[0]);
	r->r_serial[fl[0]] = '\0';
	if (ca_serial_normalize(r->r_serial, canon) != 0 || strcmp(canon, r->r_serial) != 0)
		return -1;
	if (ca_time_parse(f[1], fl[1], &r->r_not_after) != 0 || fl[2] != 1)
		return -1;
	if (f[2][0] == 'V') {
		if (fl[3] != 1 || f[3][0] != '-' || fl[4] != 1 || f[4][0] != '-')
			return -1;
	} else if (f[2][0] == 'R') {
		char reason[32];

		if (ca_time_parse(f[3], fl[3], &r->r_rev_time) != 0 || fl[4] >= sizeof(reason))
			return -1;
		memcpy(reason, f[4], fl[4]);
		reason[fl[4]] = '\0';
		if (pki_ca_reason_parse(reason, &r->r_reason) != 0)
			return -1;
		r->r_revoked = true;
	} else {
		return -1;
	}
	if (!ca_profile_name_ok(f[5], fl[5]))
		return -1;
	if (q >= end || (size_t)(end - q) > MSSP_CA_MAX_SUBJECT)
		return -1;
	for (sp = q; sp < end; sp++)
		if (*sp < 0x20 || *sp > 0x7e)
			return -1;
	r->r_profile = OPENSSL_strndup(f[5], fl[5]);
	r->r_subject = OPENSSL_strndup(q, (size_t)(end - q));
	if (r->r_profile == NULL || r->r_subject == NULL) {
		ca_rec_free(r);
		return -1;
	}
	return 0;
}

/* The chain value after an appended line: SHA-256 (hex) of the previous
 * value's 64 hex digits followed by the line's bytes after its own value
 * (" RECORD\n").  `ctx` and `md` are reused from line to line: the
 * implicit fetch of EVP_Digest() would cost more than hashing the line. */
static int
ca_db_chain(EVP_MD_CTX *ctx, const EVP_MD *md, const char prev[65], const char *rest, size_t len,
	    char out[65])
{
	unsigned char v[32];
	unsigned int vlen = 0;

	if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, prev, CA_DB_SUM_HEX) ||
	    !EVP_DigestUpdate(ctx, rest, len) || !EVP_DigestFinal_ex(ctx, v, &vlen) || vlen != 32)
		return -1;
	ca_hex32(v, out);
	return 0;
}

/* Parse appended lines "+ SUM RECORD\n" in [p, end) of `buf`, whose first
 * byte is at file offset `buf_off`, chaining on from d_sum.  Stops without
 * error at a torn tail.  d_off / d_sum / d_sum_off follow the last
 * complete line.  On error the records already added stay (the caller
 * discards or pops them). */
static int
ca_db_parse_appended(struct ca_db *d, const char *buf, off_t buf_off, const char *p,
		     const char *end, size_t lineno, struct pki_err *err)
{
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	const char *nl;
	char sum[65];
	struct ca_rec r;
	size_t len;
	int rc = -1;

	if (p < end && ((md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
			(ctx = EVP_MD_CTX_new()) == NULL)) {
		pki_err_set(err, 900, "CA database: no SHA-256");
		goto out;
	}
	for (; p < end; p = nl + 1) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break; /* torn: the append never finished */
		len = (size_t)(nl - p);
		if (nl + 1 == end && memchr(p, '\0', len) != NULL)
			break; /* torn: part of it never reached the disk */
		if (len >= MSSP_CA_DB_MAX_LINE) {
			pki_err_set(err, 900, "CA database: line %zu too long", lineno);
			goto out;
		}
		if (len <= 3 + CA_DB_SUM_HEX || p[0] != '+' || p[1] != ' ' ||
		    p[2 + CA_DB_SUM_HEX] != ' ') {
			pki_err_set(err, 900, "CA database: line %zu malformed", lineno);
			goto out;
		}
		if (ca_db_chain(ctx, md, d->d_sum, p + 2 + CA_DB_SUM_HEX,
				len - 2 - CA_DB_SUM_HEX + 1, sum) != 0) {
			pki_err_set(err, 900, "CA database: SHA-256 failed");
			goto out;
		}
		if (CRYPTO_memcmp(sum, p + 2, CA_DB_SUM_HEX) != 0) {
			pki_err_set(err, 900,
				    "CA database: line %zu checksum mismatch (edited, or lines lost)",
				    lineno);
			goto out;
		}
		if (ca_db_reserve(d) != 0) {
			pki_err_set(err, 900, "CA database: more than %d records",
				    MSSP_CA_DB_MAX_RECORDS);
			goto out;
		}
		if (ca_db_parse_line(p + 3 + CA_DB_SUM_HEX, len - 3 - CA_DB_SUM_HEX, &r) != 0) {
			pki_err_set(err, 900, "CA database: line %zu malformed", lineno);
			goto out;
		}
		if (ca_db_push(d, &r) != 0) {
			ca_rec_free(&r);
			pki_err_set(err, 900, "CA database: line %zu: duplicate serial number",
				    lineno);
			goto out;
		}
		memcpy(d->d_sum, sum, sizeof(d->d_sum));
		d->d_sum_off = buf_off + (p + 2 - buf);
		d->d_off = buf_off + (nl + 1 - buf);
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return rc;
}

/* Parse the whole database text into `d` (empty on entry). */
static int
ca_db_parse(const char *text, size_t tlen, struct ca_db *d, struct pki_err *err)
{
	const char *p, *end = text + tlen, *nl = NULL, *foot = NULL;
	char sum[65], count_txt[16];
	size_t len, lineno = 1, clen;
	struct ca_rec r;

	if (tlen >= sizeof(CA_DB_MAGIC) - 1 && memcmp(text, CA_DB_MAGIC, sizeof(CA_DB_MAGIC) - 1) == 0)
		d->d_version = 2;
	else if (tlen >= sizeof(CA_DB_MAGIC_V1) - 1 &&
		 memcmp(text, CA_DB_MAGIC_V1, sizeof(CA_DB_MAGIC_V1) - 1) == 0)
		d->d_version = 1;
	else
		return pki_err_set(err, 900, "CA database: not an OpenMSSP CA database");
	for (p = text + sizeof(CA_DB_MAGIC) - 1; p < end; p = nl + 1) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break; /* a torn tail: no end line follows, refused below */
		len = (size_t)(nl - p);
		if (len >= MSSP_CA_DB_MAX_LINE)
			return pki_err_set(err, 900, "CA database: line %zu too long", lineno);
		if (len >= 4 && memcmp(p, "end ", 4) == 0) {
			foot = p;
			break;
		}
		if (ca_db_reserve(d) != 0)
			return pki_err_set(err, 900, "CA database: more than %d records",
					   MSSP_CA_DB_MAX_RECORDS);
		if (ca_db_parse_line(p, len, &r) != 0)
			return pki_err_set(err, 900, "CA database: line %zu malformed", lineno);
		if (ca_db_push(d, &r) != 0) {
			ca_rec_free(&r);
			return pki_err_set(err, 900, "CA database: line %zu: duplicate serial number",
					   lineno);
		}
	}
	if (foot == NULL)
		return pki_err_set(err, 900, "CA database: end line missing (truncated file)");
	/* end COUNT SHA256(everything before this line) */
	ca_sha256_hex(text, (size_t)(foot - text), sum);
	if (snprintf(count_txt, sizeof(count_txt), "%zu", d->d_n) >= (int)sizeof(count_txt))
		return pki_err_set(err, 900, "CA database: too many records");
	clen = strlen(count_txt);
	if ((size_t)(nl - foot) != 4 + clen + 1 + CA_DB_SUM_HEX ||
	    memcmp(foot + 4, count_txt, clen) != 0 || foot[4 + clen] != ' ' ||
	    CRYPTO_memcmp(foot + 5 + clen, sum, CA_DB_SUM_HEX) != 0 ||
	    (d->d_version == 1 && nl + 1 != end))
		return pki_err_set(err, 900,
				   "CA database: count or checksum mismatch (edited or truncated)");
	memcpy(d->d_sum, sum, sizeof(d->d_sum));
	d->d_sum_off = (off_t)(foot + 5 + clen - text);
	d->d_off = (off_t)(nl + 1 - text);
	return ca_db_parse_appended(d, text, 0, nl + 1, end, lineno, err);
}

/* The whole database in the current format (body and end line); the end
 * line's checksum in `sum`. */
static int
ca_db_format(const struct ca_db *d, struct mss_buf *b, char sum[65])
{
	char line[MSSP_CA_DB_MAX_LINE];
	size_t i;
	int n;

	if (mss_buf_adds(b, CA_DB_MAGIC) != 0)
		return -1;
	for (i = 0; i < d->d_n; i++) {
		n = ca_rec_text(&d->d_recs[i], line, sizeof(line));
		if (n < 0 || mss_buf_add(b, line, (size_t)n) != 0)
			return -1;
	}
	ca_sha256_hex(mss_buf_str(b), mss_buf_len(b), sum);
	return mss_buf_addf(b, "end %zu %s\n", d->d_n, sum);
}

/* Remember which file, and which state of it, the records now match. */
static void
ca_db_keep(struct ca_db *d, int fd, const struct stat *st)
{
	if (d->d_fd >= 0 && d->d_fd != fd)
		close(d->d_fd);
	d->d_fd = fd;
	d->d_size = st->st_size;
	d->d_mtim = st->st_mtim;
	d->d_ctim = st->st_ctim;
}

/* Forget the file: the next access re-reads it in full. */
static void
ca_db_stale(struct ca_db *d)
{
	if (d->d_fd >= 0)
		close(d->d_fd);
	d->d_fd = -1;
}

/* The file we hold (st: its fstat) has grown since we read it: parse only
 * what was appended.  -1 when that is not possible or not safe (the file
 * shrank, kept its size but changed - an edit in place - or the line we
 * stopped at is not there any more): the caller re-reads everything, and
 * `d` is as it was. */
static int
ca_db_read_tail(struct ca_db *d, const struct stat *st)
{
	struct pki_err e = { 0 };
	size_t n0 = d->d_n, len, off = 0;
	off_t off0 = d->d_off, sum_off0 = d->d_sum_off;
	char sum0[65], *buf;
	ssize_t r;

	if (d->d_version != 2 || st->st_size == d->d_size || st->st_size < d->d_off ||
	    (unsigned long long)st->st_size > CA_DB_MAX_BYTES || d->d_sum_off <= 0 ||
	    d->d_sum_off + CA_DB_SUM_HEX > d->d_off)
		return -1;
	len = (size_t)(st->st_size - d->d_sum_off);
	buf = OPENSSL_malloc(len + 1);
	if (buf == NULL)
		return -1;
	while (off < len) {
		r = pread(d->d_fd, buf + off, len - off, d->d_sum_off + (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	/* the chain value we stopped at must still be where we saw it */
	if (off != len || memcmp(buf, d->d_sum, CA_DB_SUM_HEX) != 0) {
		OPENSSL_free(buf);
		return -1;
	}
	memcpy(sum0, d->d_sum, sizeof(sum0));
	if (ca_db_parse_appended(d, buf, d->d_sum_off, buf + (d->d_off - d->d_sum_off), buf + len,
				 0, &e) != 0) {
		while (d->d_n > n0)
			ca_db_pop(d);
		memcpy(d->d_sum, sum0, sizeof(sum0));
		d->d_off = off0;
		d->d_sum_off = sum_off0;
		OPENSSL_free(buf);
		return -1;
	}
	OPENSSL_free(buf);
	d->d_size = st->st_size;
	d->d_mtim = st->st_mtim;
	d->d_ctim = st->st_ctim;
	return 0;
}

static bool
ca_stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read and parse DIR/ca.db in full; replaces ca->ca_db only on success.
 * *changed: the file changed while we read it (a reader without the lock
 * may meet a writer truncating a torn tail), so a retry may succeed. */
static int
ca_db_read_full(struct pki_ca *ca, const char *path, bool *changed, struct pki_err *err)
{
	struct ca_db nd = { .d_fd = -1 };
	struct stat st, after;
	char *text = NULL;
	size_t tlen = 0;
	int fd, rc = -1;

	*changed = false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return pki_err_set(err, 900, "CA database: %s", strerror(errno));
	if (ca_read_fd(fd, CA_DB_MAX_BYTES, &text, &tlen, &st) != 0)
		pki_err_set(err, 900, "CA database: cannot read (too large or not a file)");
	else if (ca_db_parse(text, tlen, &nd, err) == 0)
		rc = 0;
	OPENSSL_free(text);
	if (rc != 0) {
		*changed = fstat(fd, &after) == 0 && !ca_stat_same(&st, &after);
		close(fd);
		ca_db_clear(&nd);
		return -1;
	}
	ca_db_clear(&ca->ca_db);
	ca->ca_db = nd;
	ca_db_keep(&ca->ca_db, fd, &st);
	return 0;
}

/* Bring the records up to date with DIR/ca.db: nothing if the file we
 * hold is unchanged, the appended tail if it only grew, else a full read. */
int
pki_ca_reload(struct pki_ca *ca, struct pki_err *err)
{
	struct ca_db *d = &ca->ca_db;
	char path[CA_PATH_MAX];
	struct stat cur, mine;
	bool changed;
	int tries;

	if (ca_path(path, sizeof(path), ca->ca_dir, "ca.db") != 0)
		return pki_err_set(err, 900, "CA directory path too long");
	for (tries = 1;; tries++) {
		if (stat(path, &cur) != 0)
			return pki_err_set(err, 900, "CA database: %s", strerror(errno));
		/* the kept descriptor pins the inode: a replaced file always
		 * shows a different inode number */
		if (d->d_fd >= 0 && fstat(d->d_fd, &mine) == 0 && mine.st_dev == cur.st_dev &&
		    mine.st_ino == cur.st_ino) {
			if (mine.st_size == d->d_size && mine.st_mtim.tv_sec == d->d_mtim.tv_sec &&
			    mine.st_mtim.tv_nsec == d->d_mtim.tv_nsec &&
			    mine.st_ctim.tv_sec == d->d_ctim.tv_sec &&
			    mine.st_ctim.tv_nsec == d->d_ctim.tv_nsec)
				return 0;
			if (ca_db_read_tail(d, &mine) == 0)
				return 0;
		}
		if (ca_db_read_full(ca, path, &changed, err) == 0)
			return 0;
		if (!changed || tries >= CA_DB_READ_TRIES)
			return -1;
	}
}

/* Rewrite the whole database atomically from memory (revocation, and the
 * first issuance into a version 1 file).  On failure the memory copy is
 * marked stale so the next operation re-reads the file. */
static int
ca_db_save(struct pki_ca *ca, struct pki_err *err)
{
	struct ca_db *d = &ca->ca_db;
	struct mss_buf b;
	struct stat st;
	char sum[65];
	int fd = -1, rc = -1;

	mss_buf_init(&b, CA_DB_MAX_BYTES);
	if (ca_db_format(d, &b, sum) != 0) {
		pki_err_set(err, 900, "CA database: too large");
		goto out;
	}
	if (ca_write_atomic(ca->ca_dir, "ca.db", mss_buf_str(&b), mss_buf_len(&b), 0600, &fd, err) != 0)
		goto out;
	if (fstat(fd, &st) != 0 || st.st_size != (off_t)mss_buf_len(&b)) {
		close(fd); /* written and durable; the next call re-reads it */
		ca_db_stale(d);
		rc = 0;
		goto out;
	}
	ca_db_keep(d, fd, &st);
	d->d_version = 2;
	memcpy(d->d_sum, sum, sizeof(d->d_sum));
	d->d_off = st.st_size;
	d->d_sum_off = st.st_size - 1 - CA_DB_SUM_HEX;
	rc = 0;
out:
	if (rc != 0)
		ca_db_stale(d);
	mss_buf_free(&b);
	return rc;
}

/* Append one new record to DIR/ca.db, under the lock, just after
 * pki_ca_reload() and ca_db_reserve(): one write(2) of the complete line
 * to an O_APPEND descriptor, then fsync(2) of the file (an append to an
 * existing file needs no fsync of the directory).  The record's strings
 * belong to the database from here on, success or not. */
static int
ca_db_append(struct pki_ca *ca, struct ca_rec *rec, struct pki_err *err)
{
	struct ca_db *d = &ca->ca_db;
	char path[CA_PATH_MAX], line[MSSP_CA_DB_MAX_LINE + 1], sum[65];
	struct stat st, ours;
	EVP_MD_CTX *ctx;
	size_t len, off = 0;
	bool touched = false;
	int wfd = -1, n, rc = -1;
	ssize_t w;

	if (d->d_version != 2 || d->d_fd < 0) {
		/* a version 1 file (or one we could not pin): rewrite it */
		if (ca_db_push(d, rec) != 0) {
			ca_rec_free(rec);
			return pki_err_set(err, 900, "CA: duplicate serial number");
		}
		if (ca_db_save(ca, err) != 0) {
			ca_db_pop(d);
			return -1;
		}
		return 0;
	}
	/* "+ " SUM " RECORD\n": the record text goes in after the chain value */
	memcpy(line, "+ ", 2);
	n = ca_rec_text(rec, line + 2 + CA_DB_SUM_HEX + 1, sizeof(line) - 3 - CA_DB_SUM_HEX);
	if (n < 0 || 3 + CA_DB_SUM_HEX + (size_t)n - 1 >= MSSP_CA_DB_MAX_LINE) {
		ca_rec_free(rec);
		return pki_err_set(err, 900, "CA database: record too long");
	}
	line[2 + CA_DB_SUM_HEX] = ' ';
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || ca_db_chain(ctx, EVP_sha256(), d->d_sum, line + 2 + CA_DB_SUM_HEX,
				       (size_t)n + 1, sum) != 0) {
		EVP_MD_CTX_free(ctx);
		ca_rec_free(rec);
		return pki_err_set(err, 900, "CA database: SHA-256 failed");
	}
	EVP_MD_CTX_free(ctx);
	memcpy(line + 2, sum, CA_DB_SUM_HEX);
	len = 3 + CA_DB_SUM_HEX + (size_t)n;

	if (ca_path(path, sizeof(path), ca->ca_dir, "ca.db") != 0) {
		pki_err_set(err, 900, "CA directory path too long");
		goto out;
	}
	wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (wfd < 0 || fstat(wfd, &st) != 0 || fstat(d->d_fd, &ours) != 0) {
		pki_err_set(err, 900, "CA database: cannot open for append: %s", strerror(errno));
		goto out;
	}
	/* under the lock, right after the reload: the same file, and at least
	 * the bytes we parsed */
	if (st.st_dev != ours.st_dev || st.st_ino != ours.st_ino || st.st_size < d->d_off) {
		pki_err_set(err, 900, "CA database: changed under the lock");
		goto out;
	}
	if (st.st_size > d->d_off) {
		/* a torn tail left by an append that never finished */
		touched = true;
		if (ftruncate(wfd, d->d_off) != 0)
			goto io;
	}
	while (off < len) {
		w = write(wfd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto io;
		touched = true;
		off += (size_t)w;
	}
	if (fsync(wfd) != 0 || fstat(wfd, &st) != 0)
		goto io;
	if (ca_db_push(d, rec) != 0) {
		/* cannot happen: the serial was drawn against this state */
		pki_err_set(err, 900, "CA: duplicate serial number");
		goto out;
	}
	rec = NULL;
	if (st.st_size != d->d_off + (off_t)len) {
		ca_db_stale(d); /* someone wrote without the lock: re-read */
	} else {
		memcpy(d->d_sum, sum, sizeof(d->d_sum));
		d->d_sum_off = d->d_off + 2;
		d->d_off = st.st_size;
		d->d_size = st.st_size;
		d->d_mtim = st.st_mtim;
		d->d_ctim = st.st_ctim;
	}
	rc = 0;
	goto out;
io:
	pki_err_set(err, 900, "CA database: cannot append: %s", strerror(errno));
	/* Take the line back (a partial one would read as torn anyway).  If it
	 * stays - the truncation fails, or a crash brings back what a failed
	 * fsync did write - it is a record whose certificate was never
	 * returned, which is allowed: it can still be revoked. */
	if (touched && ftruncate(wfd, d->d_off) != 0) {
		/* left torn: readers ignore it, the next writer truncates it */
	}
out:
	if (rc != 0)
		ca_db_stale(d); /* the next operation re-reads the file */
	if (rec != NULL)
		ca_rec_free(rec);
	if (wfd >= 0)
		close(wfd);
	return rc;
}

static int
ca_lock(const char *dir, int *fd, struct pki_err *err)
{
	char path[CA_PATH_MAX];

	*fd = -1;
	if (ca_path(path, sizeof(path), dir, "lock") != 0)
		return pki_err_set(err, 900, "CA directory path too long");
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0)
		return pki_err_set(err, 900, "CA directory: cannot open lock: %s", strerror(errno));
	while (flock(*fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(*fd);
			*fd = -1;
			return pki_err_set(err, 900, "CA directory: cannot lock: %s", strerror(errno));
		}
	}
	return 0;
}

static void
ca_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}

/* ---- keys ------------------------------------------------------------- */

/* A provider-native copy of the public half (token keys are legacy
 * engine keys; certificates and checks want a plain public key). */
static EVP_PKEY *
ca_pub_copy(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int n;

	n = i2d_PUBKEY(k, &der);
	if (n > 0) {
		p = der;
		pub = d2i_PUBKEY(NULL, &p, n);
	}
	OPENSSL_free(der);
	return pub;
}

/* CA keys: EC P-256 or P-384, or RSA 3072..8192. */
static int
ca_key_allowed(EVP_PKEY *pub, struct pki_err *err)
{
	char group[64];
	size_t glen = 0;
	int bits = EVP_PKEY_get_bits(pub);

	if (EVP_PKEY_is_a(pub, "RSA")) {
		if (bits < 3072 || bits > 8192)
			return pki_err_set(err, 101, "CA key: RSA needs 3072 to 8192 bits");
		return 0;
	}
	if (EVP_PKEY_is_a(pub, "EC") &&
	    EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), &glen) &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0))
		return 0;
	return pki_err_set(err, 101, "CA key: only EC P-256/P-384 or RSA >= 3072 are allowed");
}

/* PEM "ENCRYPTED PRIVATE KEY": PKCS#8, PBES2 with scrypt and AES-256-CBC. */
static int
ca_key_encrypt(EVP_PKEY *key, const char *pass, size_t passlen, struct mss_buf *out,
	       struct pki_err *err)
{
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *p8 = NULL;
	BIO *bio = NULL;
	unsigned char salt[CA_SALT_LEN];
	char *data;
	long n;
	int rc = -1;

	p8inf = EVP_PKEY2PKCS8(key);
	if (p8inf == NULL || RAND_bytes(salt, sizeof(salt)) != 1)
		goto fail;
	pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof(salt), NULL,
				    (uint64_t)1 << MSSP_CA_SCRYPT_LOG2_N, MSSP_CA_SCRYPT_R,
				    MSSP_CA_SCRYPT_P);
	if (pbe == NULL)
		goto fail;
	p8 = PKCS8_set0_pbe(pass, (int)passlen, p8inf, pbe);
	if (p8 == NULL)
		goto fail;
	pbe = NULL; /* owned by p8 now */
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_PKCS8(bio, p8))
		goto fail;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || mss_buf_add(out, data, (size_t)n) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	pki_err_set(err, 900, "CA key: cannot encrypt");
out:
	X509_ALGOR_free(pbe);
	X509_SIG_free(p8);
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

static EVP_PKEY *
ca_key_decrypt(const char *pem, size_t len, const char *pass, size_t passlen, struct pki_err *err)
{
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_SIG *p8 = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio != NULL)
		p8 = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
	if (p8 == NULL) {
		pki_err_set(err, 900, "CA key: ca.key is not an encrypted PKCS#8 key");
		goto out;
	}
	p8inf = PKCS8_decrypt(p8, pass, (int)passlen);
	if (p8inf == NULL) {
		pki_err_set(err, 900, "CA key: cannot decrypt ca.key (wrong pass phrase?)");
		goto out;
	}
	key = EVP_PKCS82PKEY(p8inf);
	if (key == NULL)
		pki_err_set(err, 900, "CA key: cannot decrypt ca.key (wrong pass phrase?)");
out:
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	X509_SIG_free(p8);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

/* ---- names ------------------------------------------------------------ */

static int
ca_name_add(X509_NAME *n, int nid, const char *v)
{
	return X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)v, -1, -1,
					  0) == 1 ? 0 : -1;
}

/* Subject of a user certificate, ETSI EN 319 412-2 order, from identity
 * data only. */
static X509_NAME *
ca_identity_name(const struct pki_ca_identity *id, struct pki_err *err)
{
	X509_NAME *n = NULL;

	if (id == NULL || !ca_present(id->id_serial_number)) {
		pki_err_set(err, 101, "Identity: the serialNumber attribute is mandatory");
		return NULL;
	}
	if (!ca_printable_ok(id->id_serial_number, MSSP_CA_MAX_NAME_VALUE)) {
		pki_err_set(err, 101, "Identity: serialNumber must be 1..%d PrintableString characters",
			    MSSP_CA_MAX_NAME_VALUE);
		return NULL;
	}
	if (!ca_present(id->id_common_name) && !ca_present(id->id_pseudonym) &&
	    !ca_present(id->id_given_name) && !ca_present(id->id_surname)) {
		pki_err_set(err, 101, "Identity: a name or pseudonym is required");
		return NULL;
	}
	if ((ca_present(id->id_common_name) && !ca_text_ok(id->id_common_name, MSSP_CA_MAX_NAME_VALUE)) ||
	    (ca_present(id->id_pseudonym) && !ca_text_ok(id->id_pseudonym, MSSP_CA_MAX_NAME_VALUE)) ||
	    (ca_present(id->id_given_name) && !ca_text_ok(id->id_given_name, MSSP_CA_MAX_NAME_VALUE)) ||
	    (ca_present(id->id_surname) && !ca_text_ok(id->id_surname, MSSP_CA_MAX_NAME_VALUE))) {
		pki_err_set(err, 101, "Identity: names are 1..%d bytes without control characters",
			    MSSP_CA_MAX_NAME_VALUE);
		return NULL;
	}
	if (ca_present(id->id_country) && !ca_country_ok(id->id_country)) {
		pki_err_set(err, 101, "Identity: country must be two upper-case letters");
		return NULL;
	}
	n = X509_NAME_new();
	if (n == NULL ||
	    (ca_present(id->id_country) && ca_name_add(n, NID_countryName, id->id_country)) ||
	    (ca_present(id->id_given_name) && ca_name_add(n, NID_givenName, id->id_given_name)) ||
	    (ca_present(id->id_surname) && ca_name_add(n, NID_surname, id->id_surname)) ||
	    (ca_present(id->id_common_name) && ca_name_add(n, NID_commonName, id->id_common_name)) ||
	    (ca_present(id->id_pseudonym) && ca_name_add(n, NID_pseudonym, id->id_pseudonym)) ||
	    ca_name_add(n, NID_serialNumber, id->id_serial_number)) {
		/* OpenSSL refuses invalid UTF-8 and over-long values */
		pki_err_set(err, 101, "Identity: a value is not valid UTF-8 or too long");
		X509_NAME_free(n);
		ERR_clear_error();
		return NULL;
	}
	return n;
}

/* One-line subject for the database (RFC 2253, non-ASCII escaped). */
static char *
ca_subject_text(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		if (n > 0 && n <= MSSP_CA_MAX_SUBJECT)
			s = OPENSSL_strndup(data, (size_t)n);
	}
	BIO_free(bio);
	return s;
}

/* ---- certificates ----------------------------------------------------- */

static ASN1_INTEGER *
ca_new_serial(const struct ca_db *d)
{
	unsigned char b[CA_SERIAL_BYTES];
	char hex[PKI_CA_SERIAL_HEX_MAX + 1];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	int i;

	for (i = 0; i < CA_SERIAL_TRIES && ai == NULL; i++) {
		if (RAND_bytes(b, sizeof(b)) != 1)
			break;
		b[0] &= 0x7f; /* positive, 159 random bits, <= 20 octets */
		bn = BN_bin2bn(b, sizeof(b), bn);
		if (bn == NULL || ca_serial_from_bn(bn, hex) != 0 || (d && ca_db_find(d, hex)))
			continue;
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	}
	BN_free(bn);
	OPENSSL_cleanse(b, sizeof(b));
	return ai;
}

/* Build and sign one certificate.  `issuer` NULL: self-signed with
 * `key`'s public half as subject key.  Extensions exactly as given. */
static X509 *
ca_cert_build(X509 *issuer, EVP_PKEY *sign_key, const X509_NAME *subj, EVP_PKEY *pub,
	      ASN1_INTEGER *serial, time_t nb, time_t na, const struct ca_ext *ext,
	      size_t next, struct pki_err *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	X509 *x = X509_new();
	CONF *conf = NCONF_new(NULL); /* empty: some extension parsers want one */
	size_t i;

	if (x == NULL || conf == NULL || !X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL || !X509_set_pubkey(x, pub))
		goto fail;
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509V3_set_nconf(&ctx, conf);
	for (i = 0; i < next; i++) {
		e = X509V3_EXT_nconf_nid(conf, &ctx, ext[i].x_nid, ext[i].x_value);
		if (e == NULL || !X509_add_ext(x, e, -1)) {
			X509_EXTENSION_free(e);
			goto fail;
		}
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, sign_key, EVP_sha256()) <= 0) {
		pki_err_set(err, 900, "CA: signing failed (key or token unavailable)");
		goto out;
	}
	/* Check what the key (maybe a token) produced before anyone sees it. */
	if (X509_verify(x, issuer ? X509_get0_pubkey(issuer) : pub) != 1) {
		pki_err_set(err, 900, "CA: the new signature does not verify");
		goto out;
	}
	NCONF_free(conf);
	ERR_clear_error();
	return x;
fail:
	pki_err_set(err, 900, "CA: cannot build the certificate");
out:
	NCONF_free(conf);
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

/* Extensions of a certificate issued by `ca`: profile `pf`, or a sub-CA
 * when pf is NULL.  Strings live in `store`. */
struct ca_ext_set {
	struct ca_ext es_ext[10];
	size_t es_n;
	char es_ku[128];
	char es_eku[64];
	char es_pol[MSSP_CA_MAX_POLICIES * (MSSP_CA_MAX_OID + 1) + 1];
	char es_cdp[MSSP_CA_MAX_URL + 8];
	char es_aia[MSSP_CA_MAX_URL + 16];
};

static int
ca_ext_set_build(const struct pki_ca *ca, const struct ca_profile *pf, struct ca_ext_set *s)
{
	size_t i, off = 0;
	int n;

	memset(s, 0, sizeof(*s));
	if (pf == NULL) {
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" };
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_key_usage, "critical,keyCertSign,cRLSign" };
	} else {
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_basic_constraints, "critical,CA:FALSE" };
		memcpy(s->es_ku, "critical,", 10);
		if (ca_bits_text(pf->pf_ku, false, s->es_ku + 9, sizeof(s->es_ku) - 9) != 0)
			return -1;
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_key_usage, s->es_ku };
		if (pf->pf_eku) {
			if (ca_bits_text(pf->pf_eku, true, s->es_eku, sizeof(s->es_eku)) != 0)
				return -1;
			s->es_ext[s->es_n++] = (struct ca_ext){ NID_ext_key_usage, s->es_eku };
		}
		for (i = 0; i < pf->pf_npolicies; i++) {
			n = snprintf(s->es_pol + off, sizeof(s->es_pol) - off, "%s%s", i ? "," : "",
				     pf->pf_policies[i]);
			if (n < 0 || (size_t)n >= sizeof(s->es_pol) - off)
				return -1;
			off += (size_t)n;
		}
		if (pf->pf_npolicies)
			s->es_ext[s->es_n++] = (struct ca_ext){ NID_certificate_policies, s->es_pol };
	}
	s->es_ext[s->es_n++] = (struct ca_ext){ NID_subject_key_identifier, "hash" };
	s->es_ext[s->es_n++] = (struct ca_ext){ NID_authority_key_identifier, "keyid:always" };
	if (ca->ca_conf.cf_crl_url[0]) {
		snprintf(s->es_cdp, sizeof(s->es_cdp), "URI:%s", ca->ca_conf.cf_crl_url);
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_crl_distribution_points, s->es_cdp };
	}
	if (ca->ca_conf.cf_ocsp_url[0]) {
		snprintf(s->es_aia, sizeof(s->es_aia), "OCSP;URI:%s", ca->ca_conf.cf_ocsp_url);
		s->es_ext[s->es_n++] = (struct ca_ext){ NID_info_access, s->es_aia };
	}
	return 0;
}

/* Issue under the lock: serial, certificate, database record (fsync'd),
 * then the certificate.  `days` already resolved. */
static X509 *
ca_issue_locked(struct pki_ca *ca, const X509_NAME *subj, EVP_PKEY *pub,
		const struct ca_profile *pf, unsigned days, struct pki_err *err)
{
	struct ca_ext_set es;
	ASN1_INTEGER *serial = NULL;
	struct ca_rec rec;
	X509 *x = NULL;
	time_t now = time(NULL), na;
	int lockfd = -1;
	char *subject = NULL, *profile = NULL;

	if (ca_sign_key(ca) == NULL) {
		pki_err_set(err, 900, "CA: the CA key is not loaded");
		goto fail;
	}
	if (now >= ca->ca_not_after) {
		pki_err_set(err, 900, "CA: the CA certificate has expired");
		goto fail;
	}
	na = now + (time_t)days * 86400;
	if (na > ca->ca_not_after)
		na = ca->ca_not_after; /* never outlive the issuer */
	if (ca_ext_set_build(ca, pf, &es) != 0) {
		pki_err_set(err, 900, "CA: cannot build the profile's extensions");
		goto fail;
	}
	if (ca_lock(ca->ca_dir, &lockfd, err) != 0 || pki_ca_reload(ca, err) != 0)
		goto fail;
	if (ca->ca_db.d_n >= MSSP_CA_DB_MAX_RECORDS) {
		pki_err_set(err, 900, "CA database: full (%d records)", MSSP_CA_DB_MAX_RECORDS);
		goto fail;
	}
	if (ca_db_reserve(&ca->ca_db) != 0) {
		pki_err_set(err, 900, "CA database: out of memory");
		goto fail;
	}
	serial = ca_new_serial(&ca->ca_db);
	if (serial == NULL) {
		pki_err_set(err, 900, "CA: no random serial number");
		goto fail;
	}
	x = ca_cert_build(ca->ca_cert, ca_sign_key(ca), subj, pub, serial, now, na, es.es_ext,
			  es.es_n, err);
	if (x == NULL)
		goto fail;
	subject = ca_subject_text(x);
	profile = OPENSSL_strdup(pf ? pf->pf_name : "ca");
	if (subject == NULL || profile == NULL) {
		pki_err_set(err, 900, "CA: subject too long for the database");
		goto fail;
	}
	memset(&rec, 0, sizeof(rec));
	if (ca_serial_from_asn1(serial, rec.r_serial) != 0) {
		pki_err_set(err, 900, "CA: bad serial number");
		goto fail;
	}
	rec.r_not_after = na;
	rec.r_subject = subject;
	rec.r_profile = profile;
	subject = profile = NULL; /* the database's now, whatever happens */
	if (ca_db_append(ca, &rec, err) != 0)
		goto fail;
	ca_unlock(lockfd);
	ASN1_INTEGER_free(serial);
	return x;
fail:
	OPENSSL_free(subject);
	OPENSSL_free(profile);
	ca_unlock(lockfd);
	ASN1_INTEGER_free(serial);
	X509_free(x);
	return NULL;
}

int
pki_ca_issue(struct pki_ca *ca, const char *profile, const struct pki_ca_identity *id,
	     EVP_PKEY *pub, const struct pki_policy *pol, unsigned days, X509 **out,
	     struct pki_err *err)
{
	const struct ca_profile *pf;
	struct pki_policy defpol;
	X509_NAME *subj = NULL;
	EVP_PKEY *pubonly = NULL;
	int rc = -1;

	*out = NULL;
	pf = ca_profile_find(&ca->ca_conf, profile);
	if (pf == NULL) {
		pki_err_set(err, 101, "CA: unknown certificate profile");
		goto out;
	}
	if (days > MSSP_CA_MAX_DAYS) {
		pki_err_set(err, 101, "CA: validity above %d days", MSSP_CA_MAX_DAYS);
		goto out;
	}
	if (pol == NULL) {
		pki_policy_default(&defpol);
		pol = &defpol;
	}
	if (pub == NULL || pki_policy_check_key(pol, pub, err) != 0) {
		if (pub == NULL)
			pki_err_set(err, 407, "No key");
		err->status = 407;
		goto out;
	}
	/* Only the public half goes into the certificate. */
	pubonly = ca_pub_copy(pub);
	if (pubonly == NULL) {
		pki_err_set(err, 407, "Key cannot be encoded as a public key");
		goto out;
	}
	subj = ca_identity_name(id, err);
	if (subj == NULL)
		goto out;
	*out = ca_issue_locked(ca, subj, pubonly, pf, days ? days : pf->pf_days, err);
	if (*out != NULL)
		rc = 0;
out:
	X509_NAME_free(subj);
	EVP_PKEY_free(pubonly);
	ERR_clear_error();
	return rc;
}

int
pki_ca_csr_check(const unsigned char *der, size_t len, const struct pki_policy *pol,
		 EVP_PKEY **pub, struct pki_err *err)
{
	struct pki_policy defpol;
	const unsigned char *p = der;
	unsigned char *re = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	int relen, sig_nid, md_nid = NID_undef, pk_nid = NID_undef, rc = -1;

	*pub = NULL;
	if (pol == NULL) {
		pki_policy_default(&defpol);
		pol = &defpol;
	}
	if (der == NULL || len == 0 || len > MSSP_CA_MAX_CSR_DER) {
		pki_err_set(err, 101, "CSR: empty or larger than %d bytes", MSSP_CA_MAX_CSR_DER);
		goto out;
	}
	req = d2i_X509_REQ(NULL, &p, (long)len);
	if (req == NULL) {
		pki_err_set(err, 101, "CSR: not a DER PKCS#10 request");
		goto out;
	}
	if (p != der + len) {
		pki_err_set(err, 101, "CSR: trailing bytes after the request");
		goto out;
	}
	/* Strict DER: re-encode from the parsed values (not the cached bytes)
	 * and require the very same bytes (BER lengths, unsorted SETs ...). */
	if (i2d_re_X509_REQ_tbs(req, NULL) <= 0 || (relen = i2d_X509_REQ(req, &re)) <= 0 ||
	    (size_t)relen != len || memcmp(re, der, len) != 0) {
		pki_err_set(err, 101, "CSR: not in canonical DER");
		goto out;
	}
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		pki_err_set(err, 101, "CSR: unknown version");
		goto out;
	}
	sig_nid = X509_REQ_get_signature_nid(req);
	if (sig_nid == NID_rsassaPss) {
		pki_err_set(err, 407, "CSR: RSA-PSS signed requests are not supported");
		goto out;
	}
	if (!OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) ||
	    pki_policy_check_digest(pol, md_nid, err) != 0 ||
	    (pk_nid == NID_rsaEncryption && (pol->pp_rsa_paddings & PKI_PAD_PKCS1) == 0)) {
		pki_err_set(err, 407, "CSR: signature algorithm not allowed by the crypto policy");
		goto out;
	}
	key = X509_REQ_get_pubkey(req);
	if (key == NULL) {
		pki_err_set(err, 101, "CSR: unreadable public key");
		goto out;
	}
	if (pki_policy_check_key(pol, key, err) != 0) {
		err->status = 407;
		goto out;
	}
	if (X509_REQ_verify(req, key) != 1) {
		pki_err_set(err, 407, "CSR: proof of possession (self-signature) does not verify");
		goto out;
	}
	*pub = key;
	key = NULL;
	rc = 0;
out:
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	OPENSSL_free(re);
	ERR_clear_error();
	return rc;
}

int
pki_ca_issue_csr(struct pki_ca *ca, const char *profile, const struct pki_ca_identity *id,
		 const unsigned char *der, size_t len, const struct pki_policy *pol, unsigned days,
		 X509 **out, struct pki_err *err)
{
	EVP_PKEY *pub = NULL;
	int rc;

	*out = NULL;
	if (pki_ca_csr_check(der, len, pol, &pub, err) != 0)
		return -1;
	rc = pki_ca_issue(ca, profile, id, pub, pol, days, out, err);
	EVP_PKEY_free(pub);
	return rc;
}

/* ---- open / init / free ----------------------------------------------- */

static struct pki_ca *
ca_new(const char *dir)
{
	struct pki_ca *ca = OPENSSL_zalloc(sizeof(*ca));

	if (ca == NULL)
		return NULL;
	ca->ca_db.d_fd = -1;
	ca->ca_dir = OPENSSL_strdup(dir);
	ca->ca_chain = sk_X509_new_null();
	if (ca->ca_dir == NULL || ca->ca_chain == NULL) {
		pki_ca_free(ca);
		return NULL;
	}
	return ca;
}

void
pki_ca_free(struct pki_ca *ca)
{
	if (ca == NULL)
		return;
	ca_db_clear(&ca->ca_db);
	EVP_PKEY_free(ca->ca_key);
	pki_ca_p11_close(ca->ca_p11);
	X509_free(ca->ca_cert);
	sk_X509_pop_free(ca->ca_chain, X509_free);
	OPENSSL_free(ca->ca_dir);
	OPENSSL_cleanse(&ca->ca_conf, sizeof(ca->ca_conf));
	OPENSSL_free(ca);
}

X509 *
pki_ca_cert(const struct pki_ca *ca)
{
	return ca->ca_cert;
}

STACK_OF(X509) *
pki_ca_chain(const struct pki_ca *ca)
{
	return ca->ca_chain;
}

bool
pki_ca_has_key(const struct pki_ca *ca)
{
	return ca_sign_key(ca) != NULL;
}

/* Certificates of a PEM file; `one`: exactly one. */
static int
ca_read_certs(const char *dir, const char *name, bool optional, bool one, X509 **first,
	      STACK_OF(X509) *rest, struct pki_err *err)
{
	char *text = NULL;
	size_t len = 0, count = 0;
	bool extra = false;
	BIO *bio = NULL;
	X509 *x;
	int rc = -1;

	if (ca_read_file(dir, name, MSSP_CA_MAX_FILE, optional, &text, &len, err) != 0)
		return -1;
	if (text == NULL)
		return 0;
	bio = BIO_new_mem_buf(text, (int)len);
	while (bio != NULL && count < 16 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (count == 0 && first != NULL) {
			*first = x;
		} else if (rest == NULL || !sk_X509_push(rest, x)) {
			X509_free(x);
			extra = true;
			break;
		}
		count++;
	}
	ERR_clear_error();
	if (count == 0 || extra || (one && count != 1)) {
		pki_err_set(err, 900, "CA directory: %s does not hold the expected certificate(s)", name);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	OPENSSL_free(text);
	return rc;
}

struct pki_ca *
pki_ca_open(const char *dir, const char *secret, size_t secret_len, struct pki_err *err)
{
	struct pki_ca *ca = NULL;
	char *text = NULL;
	size_t len = 0;

	if (dir == NULL || secret_len > MSSP_CA_MAX_SECRET || (secret == NULL && secret_len)) {
		pki_err_set(err, 101, "CA: bad arguments");
		return NULL;
	}
	ca = ca_new(dir);
	if (ca == NULL) {
		pki_err_set(err, 900, "CA: out of memory");
		return NULL;
	}
	if (ca_read_file(dir, "ca.conf", MSSP_CA_MAX_FILE, false, &text, &len, err) != 0 ||
	    ca_conf_parse(text, len, &ca->ca_conf, err) != 0)
		goto fail;
	if (ca_read_certs(dir, "ca.crt", false, true, &ca->ca_cert, NULL, err) != 0 ||
	    ca_read_certs(dir, "chain.pem", true, false, NULL, ca->ca_chain, err) != 0)
		goto fail;
	if (ca_asn1_time_to_t(X509_get0_notAfter(ca->ca_cert), &ca->ca_not_after) != 0) {
		pki_err_set(err, 900, "CA: unreadable notAfter in ca.crt");
		goto fail;
	}
	if (secret != NULL) {
		if (ca->ca_conf.cf_pkcs11) {
			ca->ca_p11 = pki_ca_p11_open(ca->ca_conf.cf_module[0] ? ca->ca_conf.cf_module : NULL,
						     ca->ca_conf.cf_uri, secret, secret_len, err);
			if (ca->ca_p11 == NULL)
				goto fail;
		} else {
			OPENSSL_free(text);
			text = NULL;
			if (ca_read_file(dir, "ca.key", MSSP_CA_MAX_FILE, false, &text, &len, err) != 0)
				goto fail;
			ca->ca_key = ca_key_decrypt(text, len, secret, secret_len, err);
			if (ca->ca_key == NULL)
				goto fail;
		}
		if (X509_check_private_key(ca->ca_cert, ca_sign_key(ca)) != 1) {
			pki_err_set(err, 900, "CA: the key does not match ca.crt");
			goto fail;
		}
	}
	if (pki_ca_reload(ca, err) != 0)
		goto fail;
	OPENSSL_free(text);
	ERR_clear_error();
	return ca;
fail:
	OPENSSL_free(text);
	pki_ca_free(ca);
	ERR_clear_error();
	return NULL;
}

static const char *const ca_files[] = { "ca.key", "ca.conf", "ca.db", "crlnumber", "chain.pem",
					"ca.crt", "crl.pem", "lock" };

/* The directory must be new or empty: never mix two CAs. */
static int
ca_make_dir(const char *dir, bool *created, struct pki_err *err)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	*created = false;
	if (mkdir(dir, 0700) == 0) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return pki_err_set(err, 900, "CA directory: cannot create: %s", strerror(errno));
	d = opendir(dir);
	if (d == NULL)
		return pki_err_set(err, 900, "CA directory: %s", strerror(errno));
	while ((de = readdir(d)) != NULL && n == 0)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	if (n != 0)
		return pki_err_set(err, 101, "CA directory exists and is not empty");
	return 0;
}

static int
ca_init_check(const struct pki_ca_init_params *p, struct pki_err *err)
{
	bool file = p->ci_passphrase != NULL, p11 = p->ci_pkcs11_uri != NULL;

	if (p->ci_dir == NULL || p->ci_dir[0] == '\0' || strlen(p->ci_dir) > CA_PATH_MAX - 32)
		return pki_err_set(err, 101, "CA init: directory missing or too long");
	if (!ca_text_ok(p->ci_cn, MSSP_CA_MAX_NAME_VALUE) ||
	    (ca_present(p->ci_o) && !ca_text_ok(p->ci_o, MSSP_CA_MAX_NAME_VALUE)) ||
	    (ca_present(p->ci_c) && !ca_country_ok(p->ci_c)))
		return pki_err_set(err, 101, "CA init: CN (1..64 bytes) required, O up to 64 bytes, C two upper-case letters");
	if (p->ci_days > MSSP_CA_MAX_DAYS)
		return pki_err_set(err, 101, "CA init: validity above %d days", MSSP_CA_MAX_DAYS);
	if (file == p11)
		return pki_err_set(err, 101, "CA init: give either a pass phrase or a PKCS#11 URI");
	if (file && (p->ci_passphrase_len < MSSP_CA_MIN_PASSPHRASE ||
		     p->ci_passphrase_len > MSSP_CA_MAX_SECRET))
		return pki_err_set(err, 101, "CA init: the pass phrase needs %d to %d bytes",
				   MSSP_CA_MIN_PASSPHRASE, MSSP_CA_MAX_SECRET);
	if (p11) {
		size_t n = strlen(p->ci_pkcs11_uri), i;

		if (n < 8 || n >= MSSP_CA_CONF_MAX_LINE - 16 || strncmp(p->ci_pkcs11_uri, "pkcs11:", 7) != 0 ||
		    strstr(p->ci_pkcs11_uri, "pin-value") != NULL ||
		    strstr(p->ci_pkcs11_uri, "pin-source") != NULL)
			return pki_err_set(err, 101, "CA init: a pkcs11: URI without a PIN is required");
		for (i = 0; i < n; i++)
			if (p->ci_pkcs11_uri[i] <= 0x20 || p->ci_pkcs11_uri[i] >= 0x7f)
				return pki_err_set(err, 101, "CA init: PKCS#11 URI with a space or control byte");
		if (p->ci_pkcs11_module != NULL &&
		    (p->ci_pkcs11_module[0] != '/' || !ca_text_ok(p->ci_pkcs11_module, MSSP_CA_CONF_MAX_LINE - 32)))
			return pki_err_set(err, 101, "CA init: the PKCS#11 module must be an absolute path");
		if (p->ci_pin_len > MSSP_CA_MAX_SECRET || (p->ci_pin == NULL && p->ci_pin_len))
			return pki_err_set(err, 101, "CA init: PIN too long");
	}
	if (p->ci_alg == PKI_CA_KEY_RSA && p->ci_rsa_bits != 0 &&
	    (p->ci_rsa_bits < 3072 || p->ci_rsa_bits > 8192))
		return pki_err_set(err, 101, "CA init: RSA needs 3072 to 8192 bits");
	if (p->ci_alg != PKI_CA_KEY_RSA && p->ci_alg != PKI_CA_KEY_EC_P256)
		return pki_err_set(err, 101, "CA init: unknown key algorithm");
	if (p->ci_issuer != NULL && !pki_ca_has_key(p->ci_issuer))
		return pki_err_set(err, 101, "CA init: the issuing root must be opened with its key");
	return 0;
}

struct pki_ca *
pki_ca_init(const struct pki_ca_init_params *p, struct pki_err *err)
{
	struct pki_ca *ca = NULL;
	struct mss_buf keypem, conf, db, pem;
	X509_NAME *subj = NULL;
	EVP_PKEY *pub = NULL;
	ASN1_INTEGER *serial = NULL;
	BIO *bio = NULL;
	char *data, path[CA_PATH_MAX];
	bool created = false, made_dir = false;
	time_t now = time(NULL);
	unsigned days;
	long n;
	size_t i;
	int k;

	mss_buf_init(&keypem, MSSP_CA_MAX_FILE);
	mss_buf_init(&conf, MSSP_CA_MAX_FILE);
	mss_buf_init(&db, 4096);
	mss_buf_init(&pem, MSSP_CA_MAX_FILE);
	if (ca_init_check(p, err) != 0)
		goto fail;
	ca = ca_new(p->ci_dir);
	if (ca == NULL) {
		pki_err_set(err, 900, "CA: out of memory");
		goto fail;
	}
	ca_conf_defaults(&ca->ca_conf);
	/* 1. the key */
	if (p->ci_pkcs11_uri != NULL) {
		ca->ca_conf.cf_pkcs11 = true;
		memcpy(ca->ca_conf.cf_uri, p->ci_pkcs11_uri, strlen(p->ci_pkcs11_uri) + 1);
		if (p->ci_pkcs11_module != NULL)
			memcpy(ca->ca_conf.cf_module, p->ci_pkcs11_module, strlen(p->ci_pkcs11_module) + 1);
		ca->ca_p11 = pki_ca_p11_open(p->ci_pkcs11_module, p->ci_pkcs11_uri, p->ci_pin,
					     p->ci_pin_len, err);
		if (ca->ca_p11 == NULL)
			goto fail;
	} else {
		if (p->ci_alg == PKI_CA_KEY_RSA)
			ca->ca_key = EVP_RSA_gen(p->ci_rsa_bits ? p->ci_rsa_bits : 3072);
		else
			ca->ca_key = EVP_EC_gen("P-256");
		if (ca->ca_key == NULL) {
			pki_err_set(err, 900, "CA init: key generation failed");
			goto fail;
		}
		if (ca_key_encrypt(ca->ca_key, p->ci_passphrase, p->ci_passphrase_len, &keypem, err) != 0)
			goto fail;
	}
	pub = ca_pub_copy(ca_sign_key(ca));
	if (pub == NULL) {
		pki_err_set(err, 900, "CA init: cannot read the public key");
		goto fail;
	}
	if (ca_key_allowed(pub, err) != 0)
		goto fail;
	if (ca_conf_format(&ca->ca_conf, &conf) != 0) {
		pki_err_set(err, 900, "CA init: cannot format ca.conf");
		goto fail;
	}
	/* 2. the certificate */
	subj = X509_NAME_new();
	if (subj == NULL || (ca_present(p->ci_c) && ca_name_add(subj, NID_countryName, p->ci_c)) ||
	    (ca_present(p->ci_o) && ca_name_add(subj, NID_organizationName, p->ci_o)) ||
	    ca_name_add(subj, NID_commonName, p->ci_cn)) {
		pki_err_set(err, 101, "CA init: subject value not valid UTF-8 or too long");
		goto fail;
	}
	if (p->ci_issuer != NULL) {
		days = p->ci_days ? p->ci_days : CA_ISSUING_DAYS;
		ca->ca_cert = ca_issue_locked(p->ci_issuer, subj, pub, NULL, days, err);
		if (ca->ca_cert == NULL)
			goto fail;
		if (!X509_up_ref(p->ci_issuer->ca_cert) ||
		    !sk_X509_push(ca->ca_chain, p->ci_issuer->ca_cert)) {
			pki_err_set(err, 900, "CA init: out of memory");
			goto fail;
		}
		for (i = 0; i < (size_t)sk_X509_num(p->ci_issuer->ca_chain); i++) {
			X509 *c = sk_X509_value(p->ci_issuer->ca_chain, (int)i);

			if (!X509_up_ref(c) || !sk_X509_push(ca->ca_chain, c)) {
				pki_err_set(err, 900, "CA init: out of memory");
				goto fail;
			}
		}
	} else {
		static const struct ca_ext root_ext[] = {
			{ NID_basic_constraints, "critical,CA:TRUE" },
			{ NID_key_usage, "critical,keyCertSign,cRLSign" },
			{ NID_subject_key_identifier, "hash" },
			{ NID_authority_key_identifier, "keyid:always" },
		};

		days = p->ci_days ? p->ci_days : CA_ROOT_DAYS;
		serial = ca_new_serial(NULL);
		if (serial == NULL) {
			pki_err_set(err, 900, "CA init: no random serial number");
			goto fail;
		}
		ca->ca_cert = ca_cert_build(NULL, ca_sign_key(ca), subj, pub, serial, now,
					    now + (time_t)days * 86400, root_ext, 4, err);
		if (ca->ca_cert == NULL)
			goto fail;
	}
	if (ca_asn1_time_to_t(X509_get0_notAfter(ca->ca_cert), &ca->ca_not_after) != 0) {
		pki_err_set(err, 900, "CA init: bad notAfter");
		goto fail;
	}
	/* 3. the files */
	if (ca_make_dir(p->ci_dir, &created, err) != 0)
		goto fail;
	made_dir = true;
	if (mss_buf_adds(&db, CA_DB_MAGIC) != 0) {
		pki_err_set(err, 900, "CA init: out of memory");
		goto fail;
	}
	{
		char sum[65];

		ca_sha256_hex(mss_buf_str(&db), mss_buf_len(&db), sum);
		if (mss_buf_addf(&db, "end 0 %s\n", sum) != 0) {
			pki_err_set(err, 900, "CA init: out of memory");
			goto fail;
		}
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_X509(bio, ca->ca_cert) ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 || mss_buf_add(&pem, data, (size_t)n) != 0) {
		pki_err_set(err, 900, "CA init: cannot encode ca.crt");
		goto fail;
	}
	if ((!ca->ca_conf.cf_pkcs11 &&
	     ca_write_atomic(p->ci_dir, "ca.key", mss_buf_str(&keypem), mss_buf_len(&keypem), 0600, NULL, err)) ||
	    ca_write_atomic(p->ci_dir, "ca.conf", mss_buf_str(&conf), mss_buf_len(&conf), 0600, NULL, err) ||
	    ca_write_atomic(p->ci_dir, "ca.db", mss_buf_str(&db), mss_buf_len(&db), 0600, NULL, err) ||
	    ca_write_atomic(p->ci_dir, "crlnumber", "00\n", 3, 0600, NULL, err) ||
	    ca_write_atomic(p->ci_dir, "ca.crt", mss_buf_str(&pem), mss_buf_len(&pem), 0644, NULL, err))
		goto fail;
	if (sk_X509_num(ca->ca_chain) > 0) {
		BIO_free(bio);
		bio = BIO_new(BIO_s_mem());
		for (k = 0; bio != NULL && k < sk_X509_num(ca->ca_chain); k++)
			if (!PEM_write_bio_X509(bio, sk_X509_value(ca->ca_chain, k)))
				break;
		if (bio == NULL || k != sk_X509_num(ca->ca_chain) ||
		    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
		    ca_write_atomic(p->ci_dir, "chain.pem", data, (size_t)n, 0644, NULL, err) != 0) {
			pki_err_set(err, 900, "CA init: cannot write chain.pem");
			goto fail;
		}
	}
	if (pki_ca_reload(ca, err) != 0)
		goto fail;
	goto out;
fail:
	if (made_dir) {
		for (i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++)
			if (ca_path(path, sizeof(path), p->ci_dir, ca_files[i]) == 0)
				unlink(path);
		if (created)
			rmdir(p->ci_dir);
	}
	pki_ca_free(ca);
	ca = NULL;
out:
	mss_buf_free(&keypem);
	mss_buf_free(&conf);
	mss_buf_free(&db);
	mss_buf_free(&pem);
	BIO_free(bio);
	X509_NAME_free(subj);
	EVP_PKEY_free(pub);
	ASN1_INTEGER_free(serial);
	ERR_clear_error();
	return ca;
}

/* ---- database access, revocation -------------------------------------- */

size_t
pki_ca_count(const struct pki_ca *ca)
{
	return ca->ca_db.d_n;
}

static void
ca_entry_from(const struct ca_rec *r, struct pki_ca_entry *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->ce_serial, r->r_serial, sizeof(out->ce_serial));
	out->ce_not_after = r->r_not_after;
	out->ce_revoked = r->r_revoked;
	out->ce_rev_time = r->r_rev_time;
	out->ce_reason = r->r_reason;
	out->ce_profile = r->r_profile;
	out->ce_subject = r->r_subject;
}

int
pki_ca_entry_at(const struct pki_ca *ca, size_t i, struct pki_ca_entry *out)
{
	if (i >= ca->ca_db.d_n)
		return -1;
	ca_entry_from(&ca->ca_db.d_recs[i], out);
	return 0;
}

int
pki_ca_lookup(struct pki_ca *ca, const char *serial_hex, struct pki_ca_entry *out,
	      struct pki_err *err)
{
	char canon[PKI_CA_SERIAL_HEX_MAX + 1];
	const struct ca_rec *r;

	if (ca_serial_normalize(serial_hex, canon) != 0)
		return pki_err_set(err, 101, "Serial number: 1..40 hex digits expected");
	if (pki_ca_reload(ca, err) != 0)
		return -1;
	r = ca_db_find(&ca->ca_db, canon);
	if (r == NULL)
		return pki_err_set(err, 422, "No certificate with this serial number");
	ca_entry_from(r, out);
	return 0;
}

int
pki_ca_revoke(struct pki_ca *ca, const char *serial_hex, int reason, time_t when,
	      struct pki_err *err)
{
	char canon[PKI_CA_SERIAL_HEX_MAX + 1];
	struct ca_rec *r;
	int lockfd = -1, rc = -1;

	if (ca_serial_normalize(serial_hex, canon) != 0)
		return pki_err_set(err, 101, "Serial number: 1..40 hex digits expected");
	if (!ca_reason_ok(reason))
		return pki_err_set(err, 101, "Unknown revocation reason");
	if (ca_lock(ca->ca_dir, &lockfd, err) != 0 || pki_ca_reload(ca, err) != 0)
		goto out;
	r = ca_db_find(&ca->ca_db, canon);
	if (r == NULL) {
		pki_err_set(err, 422, "No certificate with this serial number");
		goto out;
	}
	if (r->r_revoked) {
		pki_err_set(err, 101, "Certificate already revoked");
		goto out;
	}
	r->r_revoked = true;
	r->r_rev_time = when ? when : time(NULL);
	r->r_reason = reason;
	if (ca_db_save(ca, err) != 0) {
		r->r_revoked = false;
		r->r_rev_time = 0;
		r->r_reason = 0;
		goto out;
	}
	rc = 0;
out:
	ca_unlock(lockfd);
	return rc;
}

/* ---- CRL -------------------------------------------------------------- */

/* Read, increment and persist DIR/crlnumber (under the lock). */
static BIGNUM *
ca_next_crl_number(const char *dir, struct pki_err *err)
{
	char *text = NULL, *hex = NULL;
	struct mss_buf b;
	BIGNUM *bn = NULL;
	size_t len = 0, i;
	int ok = 0;

	mss_buf_init(&b, 128);
	if (ca_read_file(dir, "crlnumber", 128, false, &text, &len, err) != 0)
		return NULL;
	if (len < 2 || len > 42 || text[len - 1] != '\n')
		goto bad;
	text[len - 1] = '\0';
	for (i = 0; i + 1 < len; i++)
		if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'A' && text[i] <= 'F')))
			goto bad;
	if (BN_hex2bn(&bn, text) != (int)(len - 1) || !BN_add_word(bn, 1) ||
	    BN_num_bits(bn) > 159 || (hex = BN_bn2hex(bn)) == NULL)
		goto bad;
	if (mss_buf_addf(&b, "%s\n", hex) != 0 ||
	    ca_write_atomic(dir, "crlnumber", mss_buf_str(&b), mss_buf_len(&b), 0600, NULL, err) != 0)
		goto out;
	ok = 1;
	goto out;
bad:
	pki_err_set(err, 900, "CA directory: crlnumber is corrupt");
out:
	OPENSSL_free(hex);
	OPENSSL_free(text);
	mss_buf_free(&b);
	if (!ok) {
		BN_free(bn);
		bn = NULL;
	}
	return bn;
}

int
pki_ca_crl(struct pki_ca *ca, time_t now, X509_CRL **out, struct pki_err *err)
{
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	X509_EXTENSION *ext = NULL;
	ASN1_INTEGER *num = NULL, *serial = NULL;
	ASN1_ENUMERATED *reason = NULL;
	ASN1_TIME *t = NULL;
	BIGNUM *bn = NULL;
	X509V3_CTX ctx;
	BIO *bio = NULL;
	char *data;
	long n;
	size_t i;
	int lockfd = -1, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (now == 0)
		now = time(NULL);
	if (ca_sign_key(ca) == NULL) {
		pki_err_set(err, 900, "CA: the CA key is not loaded");
		goto out;
	}
	if (ca_lock(ca->ca_dir, &lockfd, err) != 0 || pki_ca_reload(ca, err) != 0)
		goto out;
	/* The number is spent before the CRL exists: a crash never reuses it. */
	bn = ca_next_crl_number(ca->ca_dir, err);
	if (bn == NULL)
		goto out;
	crl = X509_CRL_new();
	num = BN_to_ASN1_INTEGER(bn, NULL);
	if (crl == NULL || num == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->ca_cert)))
		goto fail;
	if ((t = ASN1_TIME_set(NULL, now)) == NULL || !X509_CRL_set1_lastUpdate(crl, t))
		goto fail;
	ASN1_TIME_free(t);
	if ((t = ASN1_TIME_set(NULL, now + (time_t)ca->ca_conf.cf_crl_hours * 3600)) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t))
		goto fail;
	ASN1_TIME_free(t);
	t = NULL;
	for (i = 0; i < ca->ca_db.d_n; i++) {
		const struct ca_rec *r = &ca->ca_db.d_recs[i];

		if (!r->r_revoked)
			continue;
		rev = X509_REVOKED_new();
		serial = ca_serial_to_asn1(r->r_serial);
		t = ASN1_TIME_set(NULL, r->r_rev_time);
		if (rev == NULL || serial == NULL || t == NULL ||
		    !X509_REVOKED_set_serialNumber(rev, serial) || !X509_REVOKED_set_revocationDate(rev, t))
			goto fail;
		/* RFC 5280 5.3.1: omit reasonCode rather than say unspecified */
		if (r->r_reason != PKI_CA_REASON_UNSPECIFIED) {
			reason = ASN1_ENUMERATED_new();
			if (reason == NULL || !ASN1_ENUMERATED_set(reason, r->r_reason) ||
			    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
				goto fail;
			ASN1_ENUMERATED_free(reason);
			reason = NULL;
		}
		if (!X509_CRL_add0_revoked(crl, rev))
			goto fail;
		rev = NULL;
		ASN1_INTEGER_free(serial);
		serial = NULL;
		ASN1_TIME_free(t);
		t = NULL;
	}
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, ca->ca_cert, NULL, NULL, crl, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (ext == NULL || !X509_CRL_add_ext(crl, ext, -1) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) || !X509_CRL_sort(crl))
		goto fail;
	if (X509_CRL_sign(crl, ca_sign_key(ca), EVP_sha256()) <= 0) {
		pki_err_set(err, 900, "CA: CRL signing failed (key or token unavailable)");
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca->ca_cert)) != 1) {
		pki_err_set(err, 900, "CA: the new CRL signature does not verify");
		goto out;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl) || (n = BIO_get_mem_data(bio, &data)) <= 0)
		goto fail;
	if (ca_write_atomic(ca->ca_dir, "crl.pem", data, (size_t)n, 0644, NULL, err) != 0)
		goto out;
	if (out != NULL) {
		*out = crl;
		crl = NULL;
	}
	rc = 0;
	goto out;
fail:
	pki_err_set(err, 900, "CA: cannot build the CRL");
out:
	ca_unlock(lockfd);
	BIO_free(bio);
	X509_EXTENSION_free(ext);
	X509_CRL_free(crl);
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(num);
	ASN1_INTEGER_free(serial);
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(t);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}

/* ---- OCSP ------------------------------------------------------------- */

static int
ca_ocsp_encode(OCSP_RESPONSE *r, unsigned char **resp, size_t *resp_len)
{
	unsigned char *der = NULL;
	int n;

	if (r == NULL)
		return -1;
	n = i2d_OCSP_RESPONSE(r, &der);
	if (n <= 0)
		return -1;
	*resp = der;
	*resp_len = (size_t)n;
	return 0;
}

/* An unsigned error response (RFC 6960 4.2.1). */
static void
ca_ocsp_error(int status, unsigned char **resp, size_t *resp_len)
{
	OCSP_RESPONSE *r = OCSP_response_create(status, NULL);

	if (ca_ocsp_encode(r, resp, resp_len) != 0) {
		*resp = NULL;
		*resp_len = 0;
	}
	OCSP_RESPONSE_free(r);
}

/* The digest a CertID names, if we answer for it.  SHA-1 is allowed here:
 * in a CertID it is an identifier, not a signature. */
static const EVP_MD *
ca_ocsp_md(const ASN1_OBJECT *oid)
{
	switch (OBJ_obj2nid(oid)) {
	case NID_sha1: return EVP_sha1();
	case NID_sha256: return EVP_sha256();
	case NID_sha384: return EVP_sha384();
	case NID_sha512: return EVP_sha512();
	default: return NULL;
	}
}

int
pki_ca_ocsp_respond(struct pki_ca *ca, const unsigned char *req, size_t len, time_t now,
		    unsigned char **resp, size_t *resp_len, struct pki_err *err)
{
	OCSP_REQUEST *oreq = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *orsp = NULL;
	OCSP_CERTID *ours = NULL;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
	const unsigned char *p = req;
	unsigned char *re = NULL;
	int i, count, relen, idx, matched = 0, status = OCSP_RESPONSE_STATUS_INTERNALERROR;
	int rc = -1;

	*resp = NULL;
	*resp_len = 0;
	if (now == 0)
		now = time(NULL);
	if (req == NULL || len == 0 || len > MSSP_CA_MAX_OCSP_REQ) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		pki_err_set(err, 101, "OCSP: empty or larger than %d bytes", MSSP_CA_MAX_OCSP_REQ);
		goto out;
	}
	oreq = d2i_OCSP_REQUEST(NULL, &p, (long)len);
	if (oreq == NULL || p != req + len || (relen = i2d_OCSP_REQUEST(oreq, &re)) <= 0 ||
	    (size_t)relen != len || memcmp(re, req, len) != 0) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		pki_err_set(err, 101, "OCSP: request is not a DER OCSPRequest");
		goto out;
	}
	count = OCSP_request_onereq_count(oreq);
	if (count <= 0 || count > MSSP_CA_MAX_OCSP_IDS) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		pki_err_set(err, 101, "OCSP: 1..%d certificates per request", MSSP_CA_MAX_OCSP_IDS);
		goto out;
	}
	idx = OCSP_REQUEST_get_ext_by_NID(oreq, NID_id_pkix_OCSP_Nonce, -1);
	if (idx >= 0) {
		const ASN1_OCTET_STRING *nv = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(oreq, idx));
		int nlen = nv ? ASN1_STRING_length(nv) : 0;

		if (nlen < 1 || nlen > MSSP_CA_MAX_OCSP_NONCE ||
		    OCSP_REQUEST_get_ext_by_NID(oreq, NID_id_pkix_OCSP_Nonce, idx) >= 0) {
			status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
			pki_err_set(err, 101, "OCSP: nonce missing, repeated or longer than 32 octets");
			goto out;
		}
	}
	if (ca_sign_key(ca) == NULL) {
		pki_err_set(err, 900, "OCSP: the CA key is not loaded");
		goto out;
	}
	if (pki_ca_reload(ca, err) != 0)
		goto out; /* fail closed: never answer from a database we cannot read */
	bs = OCSP_BASICRESP_new();
	thisupd = ASN1_GENERALIZEDTIME_set(NULL, now);
	nextupd = ASN1_GENERALIZEDTIME_set(NULL, now + (time_t)ca->ca_conf.cf_ocsp_hours * 3600);
	if (bs == NULL || thisupd == NULL || nextupd == NULL) {
		pki_err_set(err, 900, "OCSP: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
		ASN1_OBJECT *md_oid = NULL;
		ASN1_INTEGER *serial = NULL;
		const EVP_MD *md;
		const struct ca_rec *r = NULL;
		char hex[PKI_CA_SERIAL_HEX_MAX + 1];
		int st = V_OCSP_CERTSTATUS_UNKNOWN, reason = OCSP_REVOKED_STATUS_NOSTATUS;

		if (cid == NULL || !OCSP_id_get0_info(NULL, &md_oid, NULL, &serial, cid)) {
			status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
			pki_err_set(err, 101, "OCSP: unreadable CertID");
			goto out;
		}
		md = ca_ocsp_md(md_oid);
		if (md != NULL) {
			ours = OCSP_cert_to_id(md, NULL, ca->ca_cert);
			if (ours == NULL) {
				pki_err_set(err, 900, "OCSP: out of memory");
				goto out;
			}
			if (OCSP_id_issuer_cmp(ours, cid) == 0) {
				matched++;
				if (ca_serial_from_asn1(serial, hex) == 0)
					r = ca_db_find(&ca->ca_db, hex);
			}
			OCSP_CERTID_free(ours);
			ours = NULL;
		}
		ASN1_GENERALIZEDTIME_free(revtime);
		revtime = NULL;
		if (r != NULL && r->r_revoked) {
			st = V_OCSP_CERTSTATUS_REVOKED;
			if (r->r_reason != PKI_CA_REASON_UNSPECIFIED)
				reason = r->r_reason;
			revtime = ASN1_GENERALIZEDTIME_set(NULL, r->r_rev_time);
			if (revtime == NULL) {
				pki_err_set(err, 900, "OCSP: out of memory");
				goto out;
			}
		} else if (r != NULL) {
			st = V_OCSP_CERTSTATUS_GOOD;
		}
		if (OCSP_basic_add1_status(bs, cid, st, reason, revtime, thisupd, nextupd) == NULL) {
			pki_err_set(err, 900, "OCSP: cannot add a status");
			goto out;
		}
	}
	if (matched == 0) {
		status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
		pki_err_set(err, 422, "OCSP: no certificate of this CA in the request");
		goto out;
	}
	if (OCSP_copy_nonce(bs, oreq) <= 0 ||
	    !OCSP_basic_sign(bs, ca->ca_cert, ca_sign_key(ca), EVP_sha256(), NULL,
			     OCSP_NOCERTS | OCSP_RESPID_KEY)) {
		pki_err_set(err, 900, "OCSP: signing failed (key or token unavailable)");
		goto out;
	}
	orsp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	if (ca_ocsp_encode(orsp, resp, resp_len) != 0) {
		pki_err_set(err, 900, "OCSP: cannot encode the response");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		ca_ocsp_error(status, resp, resp_len);
	OCSP_RESPONSE_free(orsp);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(oreq);
	OCSP_CERTID_free(ours);
	ASN1_GENERALIZEDTIME_free(thisupd);
	ASN1_GENERALIZEDTIME_free(nextupd);
	ASN1_GENERALIZEDTIME_free(revtime);
	OPENSSL_free(re);
	ERR_clear_error();
	return rc;
}
