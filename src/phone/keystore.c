/*
 * keystore.c - the reference phone app's key store (see keystore.h and
 * docs/internals/keystore.md).
 *
 * Layout of this file: small helpers (checks, base64, digests), the
 * wrapping of private keys (scrypt + AES-256-GCM), the file format (JSON
 * body + SHA-256 trailer, strict parser, serializer), atomic I/O and the
 * lock, then the public API.
 */
#include "phone/keystore.h"

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

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "util/limits.h"
#include "util/unittest.h"

#define KS_FORMAT_NAME "openmssp-keystore"
#define KS_FORMAT_VERSION 1
#define KS_KEY_LEN 32	 /* AES-256 key, device key            */
#define KS_IV_LEN 12	 /* GCM nonce                          */
#define KS_TAG_LEN 16	 /* GCM tag                            */
#define KS_FILE_ID_LEN 16 /* random identity of one file       */
#define KS_SHA256_LEN 32
#define KS_TRAILER_PREFIX "sha256:"
#define KS_TRAILER_LEN (sizeof(KS_TRAILER_PREFIX) - 1 + 2 * KS_SHA256_LEN + 1)
/* Suffixes appended to the keystore path for the lock and temporary files. */
#define KS_LOCK_SUFFIX ".lock"
#define KS_TMP_SUFFIX ".tmpXXXXXX"
#define KS_PATH_BUF (MSSP_KEYSTORE_MAX_PATH + 16)

enum ks_wrap_kind {
	KS_WRAP_PIN = 1,
	KS_WRAP_PUK = 2,
	KS_WRAP_DEVICE = 3,
};

/* One encrypted copy of a group's PKCS#8 private key. */
struct ks_wrap {
	bool w_set;
	unsigned w_log2n, w_r, w_p; /* scrypt cost (PIN and PUK wraps only) */
	unsigned char w_salt[MSSP_KEYSTORE_SALT_LEN];
	unsigned char w_iv[KS_IV_LEN];
	unsigned char w_tag[KS_TAG_LEN];
	unsigned char *w_ct; /* OPENSSL_malloc, w_ctlen bytes       */
	size_t w_ctlen;
};

struct ks_group {
	char g_id[MSSP_KEYSTORE_MAX_ID + 1];
	enum ks_purpose g_purpose;
	enum ks_key_type g_key_type;
	char *g_profiles[MSSP_KEYSTORE_MAX_PROFILES]; /* OPENSSL_strdup */
	size_t g_nprofiles;
	unsigned char *g_spki; /* SubjectPublicKeyInfo DER (OPENSSL_malloc) */
	size_t g_spki_len;
	EVP_PKEY *g_pub;		/* parsed from g_spki: no private part */
	X509 *g_cert;			/* NULL until installed                */
	STACK_OF(X509) *g_chain;	/* NULL or CA certificates             */
	bool g_has_pin;
	unsigned g_pin_tries, g_puk_tries;
	struct ks_wrap g_wrap_pin, g_wrap_puk, g_wrap_dev;
};

struct ks {
	char k_path[MSSP_KEYSTORE_MAX_PATH + 1];
	int k_lock_fd; /* -1 when no lock is held (parser-only use) */
	bool k_broken; /* a write failed: memory may differ from disk */
	char k_device_id[MSSP_KEYSTORE_MAX_ID + 1];
	unsigned char k_file_id[KS_FILE_ID_LEN];
	unsigned char k_device_key[KS_KEY_LEN];
	unsigned k_max_groups, k_pin_min, k_pin_max, k_log2n;
	struct ks_group *k_groups[MSSP_KEYSTORE_MAX_GROUPS];
	size_t k_ngroups;
	struct pki_policy k_policy;
};

/* ---- small checks ------------------------------------------------------ */

static bool
id_char_ok(char c, bool device)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	if (c == '.' || c == '_' || c == '-')
		return true;
	return device && (c == ':' || c == '+' || c == '@');
}

/* A group id (device = false) or device id: 1..MAX_ID allowed chars. */
static bool
id_ok(const char *s, size_t len, bool device)
{
	if (s == NULL || len == 0 || len > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!id_char_ok(s[i], device))
			return false;
	return true;
}

/* A profile URI as stored: 1..MSSP_PROFILE_MAX_URI bytes of 0x21..0x7e (the
 * profile grammar's alphabet; the keystore only compares them). */
static bool
profile_ok(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > MSSP_PROFILE_MAX_URI)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Digits only, length within [lo, hi].  Reads at most hi + 1 bytes. */
static bool
digits_ok(const char *s, unsigned lo, unsigned hi)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, (size_t)hi + 1);
	if (len < lo || len > hi)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static const char *
purpose_name(enum ks_purpose p)
{
	return p == KS_PURPOSE_AUTHN ? "authn" : "sign";
}

static const char *
key_type_name(enum ks_key_type t)
{
	switch (t) {
	case KS_KEY_RSA_2048: return "rsa-2048";
	case KS_KEY_RSA_3072: return "rsa-3072";
	default: return "ec-p256";
	}
}

/* Does the public key really have the declared type and size? */
static bool
key_matches_type(EVP_PKEY *k, enum ks_key_type t)
{
	char curve[32];
	size_t len = 0;

	switch (t) {
	case KS_KEY_EC_P256:
		if (!EVP_PKEY_is_a(k, "EC"))
			return false;
		if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, curve,
						    sizeof(curve), &len))
			return false;
		return strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0;
	case KS_KEY_RSA_2048:
		return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048;
	case KS_KEY_RSA_3072:
		return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 3072;
	}
	return false;
}

static struct ks_group *
group_find(const struct ks *ks, const char *id)
{
	if (id == NULL)
		return NULL;
	for (size_t i = 0; i < ks->k_ngroups; i++)
		if (strncmp(ks->k_groups[i]->g_id, id, MSSP_KEYSTORE_MAX_ID + 1) == 0)
			return ks->k_groups[i];
	return NULL;
}

static enum ks_state
group_state(const struct ks_group *g)
{
	if (!g->g_has_pin)
		return KS_STATE_ACTIVE;
	if (g->g_puk_tries == 0)
		return KS_STATE_DISABLED;
	if (g->g_pin_tries == 0)
		return KS_STATE_PIN_BLOCKED;
	return KS_STATE_ACTIVE;
}

static void
wrap_clear(struct ks_wrap *w)
{
	OPENSSL_clear_free(w->w_ct, w->w_ctlen);
	OPENSSL_cleanse(w, sizeof(*w)); /* zeroes: w_set false, w_ct NULL */
}

static void
group_free(struct ks_group *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->g_nprofiles; i++)
		OPENSSL_free(g->g_profiles[i]);
	OPENSSL_free(g->g_spki);
	EVP_PKEY_free(g->g_pub);
	X509_free(g->g_cert);
	sk_X509_pop_free(g->g_chain, X509_free);
	wrap_clear(&g->g_wrap_pin);
	wrap_clear(&g->g_wrap_puk);
	wrap_clear(&g->g_wrap_dev);
	OPENSSL_free(g);
}

/* Free what a handle holds, keep the handle itself. */
static void
ks_clear_contents(struct ks *ks)
{
	for (size_t i = 0; i < ks->k_ngroups; i++)
		group_free(ks->k_groups[i]);
	ks->k_ngroups = 0;
	OPENSSL_cleanse(ks->k_device_key, sizeof(ks->k_device_key));
}

/* ---- base64 ------------------------------------------------------------ */

static bool
b64_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Strict, canonical base64 (RFC 4648, padded, no whitespace) of minlen..
 * maxlen bytes.  Returns an OPENSSL_malloc buffer (callers holding secrets
 * OPENSSL_clear_free it) or NULL. */
static unsigned char *
b64_decode(const char *s, size_t slen, size_t minlen, size_t maxlen, size_t *outlen)
{
	unsigned char *out = NULL, *check = NULL;
	size_t pad = 0, n = 0;
	int dec;

	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > maxlen + 2)
		goto fail;
	if (s[slen - 1] == '=')
		pad = s[slen - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < slen - pad; i++)
		if (!b64_char_ok(s[i]))
			goto fail;
	out = OPENSSL_malloc(slen / 4 * 3 + 1);
	check = OPENSSL_malloc(slen + 1);
	if (out == NULL || check == NULL)
		goto fail;
	dec = EVP_DecodeBlock(out, (const unsigned char *)s, (int)slen);
	if (dec < 0 || (size_t)dec < pad)
		goto fail;
	n = (size_t)dec - pad;
	if (n < minlen || n > maxlen)
		goto fail;
	/* Canonical: re-encoding gives the same text (no stray low bits). */
	if (EVP_EncodeBlock(check, out, (int)n) != (int)slen || memcmp(check, s, slen) != 0)
		goto fail;
	OPENSSL_clear_free(check, slen + 1);
	*outlen = n;
	return out;
fail:
	OPENSSL_clear_free(out, slen / 4 * 3 + 1);
	OPENSSL_clear_free(check, slen + 1);
	return NULL;
}

/* A new JSON string holding base64(data), or NULL.  The temporary text is
 * wiped (it may encode the device key). */
static json_t *
b64_json(const unsigned char *data, size_t len)
{
	size_t cap = (len + 2) / 3 * 4 + 1;
	unsigned char *txt;
	json_t *j;
	int n;

	txt = OPENSSL_malloc(cap);
	if (txt == NULL)
		return NULL;
	n = EVP_EncodeBlock(txt, data, (int)len);
	j = n < 0 ? NULL : json_stringn((const char *)txt, (size_t)n);
	OPENSSL_clear_free(txt, cap);
	return j;
}

/* ---- strict JSON access --------------------------------------------------- */

/* Every member of `o` is one of `keys`. */
static bool
j_only_keys(json_t *o, const char *const *keys, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach (o, k, v) {
		size_t i;

		for (i = 0; i < n; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == n)
			return false;
	}
	return true;
}

/* A required string member of 1..max bytes without NUL. */
static const char *
j_str(json_t *o, const char *key, size_t max, size_t *len)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n > max || strlen(s) != n)
		return NULL;
	if (len)
		*len = n;
	return s;
}

static bool
j_str_is(json_t *o, const char *key, const char *want)
{
	const char *s = j_str(o, key, 64, NULL);

	return s != NULL && strcmp(s, want) == 0;
}

static bool
j_uint(json_t *o, const char *key, unsigned lo, unsigned hi, unsigned *out)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!json_is_integer(v))
		return false;
	x = json_integer_value(v);
	if (x < (json_int_t)lo || x > (json_int_t)hi)
		return false;
	*out = (unsigned)x;
	return true;
}

/* A required base64 member decoding to exactly `len` bytes into `out`. */
static bool
j_b64_fixed(json_t *o, const char *key, unsigned char *out, size_t len)
{
	const char *s;
	size_t slen, n;
	unsigned char *d;

	s = j_str(o, key, (len + 2) / 3 * 4, &slen);
	if (s == NULL)
		return false;
	d = b64_decode(s, slen, len, len, &n);
	if (d == NULL)
		return false;
	memcpy(out, d, len);
	OPENSSL_clear_free(d, n);
	return true;
}

static unsigned char *
j_b64(json_t *o, const char *key, size_t minlen, size_t maxlen, size_t *outlen)
{
	const char *s;
	size_t slen;

	s = j_str(o, key, (maxlen + 2) / 3 * 4, &slen);
	if (s == NULL)
		return NULL;
	return b64_decode(s, slen, minlen, maxlen, outlen);
}

/* DER certificate from base64 text, fully consumed. */
static X509 *
cert_from_b64(const char *s, size_t slen)
{
	unsigned char *der;
	const unsigned char *p;
	size_t n;
	X509 *x = NULL;

	der = b64_decode(s, slen, 1, MSSP_KEYSTORE_MAX_CERT, &n);
	if (der == NULL)
		return NULL;
	p = der;
	x = d2i_X509(NULL, &p, (long)n);
	if (x != NULL && p != der + n) {
		X509_free(x);
		x = NULL;
	}
	OPENSSL_free(der);
	return x;
}

static json_t *
cert_to_json(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	json_t *j;

	if (n <= 0)
		return NULL;
	j = n > MSSP_KEYSTORE_MAX_CERT ? NULL : b64_json(der, (size_t)n);
	OPENSSL_free(der);
	return j;
}

/* ---- wrapping private keys -------------------------------------------------- */

/* The additional authenticated data of a wrapping: a SHA-256 over the
 * identity of the file, the group and the kind of wrapping, each field
 * length-prefixed.  A blob moved to another group, another file or another
 * slot, or a group whose purpose, profiles or public key were edited, no
 * longer decrypts. */
static int
wrap_aad(const struct ks *ks, const struct ks_group *g, enum ks_wrap_kind kind,
	 unsigned char aad[KS_SHA256_LEN])
{
	static const char label[] = "openmssp-keystore wrap v1";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char b[4];
	unsigned int outl = 0;
	int rc = -1;

#define PUT_LP(ptr, n)                                                          \
	do {                                                                    \
		size_t n_ = (n);                                                \
		b[0] = (unsigned char)(n_ >> 24);                               \
		b[1] = (unsigned char)(n_ >> 16);                               \
		b[2] = (unsigned char)(n_ >> 8);                                \
		b[3] = (unsigned char)n_;                                       \
		if (!EVP_DigestUpdate(md, b, 4) || !EVP_DigestUpdate(md, (ptr), n_)) \
			goto out;                                               \
	} while (0)
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	PUT_LP(label, sizeof(label) - 1);
	PUT_LP(ks->k_device_id, strlen(ks->k_device_id));
	PUT_LP(ks->k_file_id, sizeof(ks->k_file_id));
	PUT_LP(g->g_id, strlen(g->g_id));
	b[0] = (unsigned char)g->g_purpose;
	b[1] = (unsigned char)g->g_key_type;
	b[2] = (unsigned char)kind;
	b[3] = (unsigned char)g->g_nprofiles;
	if (!EVP_DigestUpdate(md, b, 4))
		goto out;
	for (size_t i = 0; i < g->g_nprofiles; i++)
		PUT_LP(g->g_profiles[i], strlen(g->g_profiles[i]));
	PUT_LP(g->g_spki, g->g_spki_len);
#undef PUT_LP
	if (!EVP_DigestFinal_ex(md, aad, &outl) || outl != KS_SHA256_LEN)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* scrypt(secret, salt) -> 32-byte key.  The cost comes from the wrapping
 * (bounded when parsed), so a file written with a lower test cost still
 * opens. */
static int
kek_scrypt(const char *secret, const struct ks_wrap *w, unsigned char kek[KS_KEY_LEN])
{
	uint64_t n = (uint64_t)1 << w->w_log2n;
	/* exactly what OpenSSL's scrypt needs (B and V arrays), plus slack */
	uint64_t maxmem = (uint64_t)128 * w->w_r * (n + 2) + (uint64_t)128 * w->w_r * w->w_p + 4096;

	if (EVP_PBE_scrypt(secret, strlen(secret), w->w_salt, sizeof(w->w_salt), n, w->w_r,
			   w->w_p, maxmem, kek, KS_KEY_LEN) != 1)
		return -1;
	return 0;
}

/* Encrypt `pt` into `w` (fresh IV; salt and cost already set by the
 * caller for scrypt wrappings). */
static int
gcm_seal(const unsigned char key[KS_KEY_LEN], const unsigned char aad[KS_SHA256_LEN],
	 const unsigned char *pt, size_t ptlen, struct ks_wrap *w)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char *ct = NULL;
	int n = 0, fin = 0, rc = -1;

	if (c == NULL || ptlen == 0 || ptlen > MSSP_KEYSTORE_MAX_PKCS8)
		goto out;
	ct = OPENSSL_malloc(ptlen);
	if (ct == NULL || RAND_bytes(w->w_iv, sizeof(w->w_iv)) != 1)
		goto out;
	if (!EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KS_IV_LEN, NULL) ||
	    !EVP_EncryptInit_ex(c, NULL, NULL, key, w->w_iv) ||
	    !EVP_EncryptUpdate(c, NULL, &n, aad, KS_SHA256_LEN) ||
	    !EVP_EncryptUpdate(c, ct, &n, pt, (int)ptlen) ||
	    !EVP_EncryptFinal_ex(c, ct + n, &fin) || (size_t)(n + fin) != ptlen ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KS_TAG_LEN, w->w_tag))
		goto out;
	OPENSSL_clear_free(w->w_ct, w->w_ctlen);
	w->w_ct = ct;
	w->w_ctlen = ptlen;
	ct = NULL;
	w->w_set = true;
	rc = 0;
out:
	OPENSSL_free(ct);
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* Decrypt `w`; NULL when the tag does not verify (wrong PIN, wrong AAD,
 * damaged blob).  The plaintext is the caller's: OPENSSL_clear_free. */
static unsigned char *
gcm_open(const unsigned char key[KS_KEY_LEN], const unsigned char aad[KS_SHA256_LEN],
	 const struct ks_wrap *w, size_t *ptlen)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char *pt = NULL, tag[KS_TAG_LEN];
	int n = 0, fin = 0;
	bool ok = false;

	if (c == NULL || !w->w_set || w->w_ctlen == 0)
		goto out;
	pt = OPENSSL_malloc(w->w_ctlen);
	if (pt == NULL)
		goto out;
	memcpy(tag, w->w_tag, sizeof(tag));
	if (!EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KS_IV_LEN, NULL) ||
	    !EVP_DecryptInit_ex(c, NULL, NULL, key, w->w_iv) ||
	    !EVP_DecryptUpdate(c, NULL, &n, aad, KS_SHA256_LEN) ||
	    !EVP_DecryptUpdate(c, pt, &n, w->w_ct, (int)w->w_ctlen) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KS_TAG_LEN, tag))
		goto out;
	/* the tag comparison (constant-time) happens here */
	if (EVP_DecryptFinal_ex(c, pt + n, &fin) != 1 || (size_t)(n + fin) != w->w_ctlen)
		goto out;
	*ptlen = w->w_ctlen;
	ok = true;
out:
	if (!ok) {
		if (pt != NULL)
			OPENSSL_clear_free(pt, w->w_ctlen);
		pt = NULL;
	}
	EVP_CIPHER_CTX_free(c);
	pki_err_clear_openssl();
	return pt;
}

/* Wrap `der` for group `g` under `secret` (PIN or PUK) with the keystore's
 * cost and a fresh salt, replacing `w`. */
static int
wrap_with_secret(const struct ks *ks, const struct ks_group *g, enum ks_wrap_kind kind,
		 const char *secret, const unsigned char *der, size_t derlen, struct ks_wrap *w)
{
	unsigned char kek[KS_KEY_LEN], aad[KS_SHA256_LEN];
	struct ks_wrap nw;
	int rc = -1;

	memset(&nw, 0, sizeof(nw));
	nw.w_log2n = ks->k_log2n;
	nw.w_r = MSSP_KEYSTORE_SCRYPT_R;
	nw.w_p = MSSP_KEYSTORE_SCRYPT_P;
	if (RAND_bytes(nw.w_salt, sizeof(nw.w_salt)) != 1 || wrap_aad(ks, g, kind, aad) != 0 ||
	    kek_scrypt(secret, &nw, kek) != 0 || gcm_seal(kek, aad, der, derlen, &nw) != 0)
		goto out;
	wrap_clear(w);
	*w = nw;
	memset(&nw, 0, sizeof(nw));
	rc = 0;
out:
	wrap_clear(&nw);
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc;
}

static int
wrap_with_device_key(const struct ks *ks, const struct ks_group *g, const unsigned char *der,
		     size_t derlen, struct ks_wrap *w)
{
	unsigned char aad[KS_SHA256_LEN];

	if (wrap_aad(ks, g, KS_WRAP_DEVICE, aad) != 0)
		return -1;
	return gcm_seal(ks->k_device_key, aad, der, derlen, w);
}

/* Decrypt wrapping `w` of `g` with `secret` (NULL: the device key).  NULL
 * when it does not decrypt. */
static unsigned char *
unwrap(const struct ks *ks, const struct ks_group *g, enum ks_wrap_kind kind, const char *secret,
       const struct ks_wrap *w, size_t *derlen)
{
	unsigned char kek[KS_KEY_LEN], aad[KS_SHA256_LEN], *der = NULL;

	if (wrap_aad(ks, g, kind, aad) != 0)
		return NULL;
	if (secret == NULL)
		return gcm_open(ks->k_device_key, aad, w, derlen);
	if (kek_scrypt(secret, w, kek) == 0)
		der = gcm_open(kek, aad, w, derlen);
	OPENSSL_cleanse(kek, sizeof(kek));
	return der;
}

/* PKCS#8 DER -> private key, which must match the group's public key. */
static EVP_PKEY *
der_to_key(const struct ks_group *g, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *k = NULL;

	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	if (p8 != NULL && p == der + len)
		k = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (k != NULL && EVP_PKEY_eq(k, g->g_pub) != 1) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* ---- the file format ------------------------------------------------------ */

static int
sha256(const unsigned char *d, size_t n, unsigned char out[KS_SHA256_LEN])
{
	unsigned int len = 0;

	if (!EVP_Digest(d, n, out, &len, EVP_sha256(), NULL) || len != KS_SHA256_LEN)
		return -1;
	return 0;
}

static void
hex_lower(const unsigned char *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
}

static bool
parse_wrap(json_t *o, enum ks_wrap_kind kind, struct ks_wrap *w)
{
	static const char *const scrypt_keys[] = { "kdf", "log2n", "r", "p", "salt", "iv", "tag", "ct" };
	static const char *const dev_keys[] = { "kdf", "iv", "tag", "ct" };

	memset(w, 0, sizeof(*w));
	if (!json_is_object(o))
		return false;
	if (kind == KS_WRAP_DEVICE) {
		if (!j_only_keys(o, dev_keys, 4) || !j_str_is(o, "kdf", "device-key"))
			return false;
	} else {
		if (!j_only_keys(o, scrypt_keys, 8) || !j_str_is(o, "kdf", "scrypt") ||
		    !j_uint(o, "log2n", MSSP_KEYSTORE_SCRYPT_MIN_LOG2N,
			    MSSP_KEYSTORE_SCRYPT_MAX_LOG2N, &w->w_log2n) ||
		    !j_uint(o, "r", MSSP_KEYSTORE_SCRYPT_R, MSSP_KEYSTORE_SCRYPT_R, &w->w_r) ||
		    !j_uint(o, "p", MSSP_KEYSTORE_SCRYPT_P, MSSP_KEYSTORE_SCRYPT_P, &w->w_p) ||
		    !j_b64_fixed(o, "salt", w->w_salt, sizeof(w->w_salt)))
			return false;
	}
	if (!j_b64_fixed(o, "iv", w->w_iv, sizeof(w->w_iv)) ||
	    !j_b64_fixed(o, "tag", w->w_tag, sizeof(w->w_tag)))
		return false;
	w->w_ct = j_b64(o, "ct", 1, MSSP_KEYSTORE_MAX_PKCS8, &w->w_ctlen);
	if (w->w_ct == NULL)
		return false;
	w->w_set = true;
	return true;
}

static json_t *
wrap_to_json(const struct ks_wrap *w, enum ks_wrap_kind kind)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	if (kind == KS_WRAP_DEVICE) {
		bad |= json_object_set_new(o, "kdf", json_string("device-key"));
	} else {
		bad |= json_object_set_new(o, "kdf", json_string("scrypt"));
		bad |= json_object_set_new(o, "log2n", json_integer(w->w_log2n));
		bad |= json_object_set_new(o, "r", json_integer(w->w_r));
		bad |= json_object_set_new(o, "p", json_integer(w->w_p));
		bad |= json_object_set_new(o, "salt", b64_json(w->w_salt, sizeof(w->w_salt)));
	}
	bad |= json_object_set_new(o, "iv", b64_json(w->w_iv, sizeof(w->w_iv)));
	bad |= json_object_set_new(o, "tag", b64_json(w->w_tag, sizeof(w->w_tag)));
	bad |= json_object_set_new(o, "ct", b64_json(w->w_ct, w->w_ctlen));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* One group object -> *out (new).  Every field checked; false on anything
 * unexpected. */
static bool
parse_group(const struct ks *ks, json_t *o, struct ks_group **out)
{
	static const char *const keys[] = { "id",	   "purpose",	  "profiles",	 "key_type",
					    "public_key",  "certificate", "chain",	 "pin",
					    "pin_tries",   "puk_tries",	  "wraps" };
	static const char *const pin_wraps[] = { "pin", "puk" };
	static const char *const dev_wraps[] = { "device" };
	struct ks_group *g;
	const char *s;
	const unsigned char *p;
	size_t len;
	json_t *v, *w;
	bool ok = false;

	*out = NULL;
	g = OPENSSL_zalloc(sizeof(*g));
	if (g == NULL || !json_is_object(o) || !j_only_keys(o, keys, 11))
		goto out;

	s = j_str(o, "id", MSSP_KEYSTORE_MAX_ID, &len);
	if (s == NULL || !id_ok(s, len, false) || group_find(ks, s) != NULL)
		goto out;
	memcpy(g->g_id, s, len + 1);

	if (j_str_is(o, "purpose", "authn"))
		g->g_purpose = KS_PURPOSE_AUTHN;
	else if (j_str_is(o, "purpose", "sign"))
		g->g_purpose = KS_PURPOSE_SIGN;
	else
		goto out;

	v = json_object_get(o, "profiles");
	if (!json_is_array(v) || json_array_size(v) > MSSP_KEYSTORE_MAX_PROFILES)
		goto out;
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *e = json_array_get(v, i);

		if (!json_is_string(e))
			goto out;
		s = json_string_value(e);
		len = json_string_length(e);
		if (strlen(s) != len || !profile_ok(s, len))
			goto out;
		g->g_profiles[i] = OPENSSL_strndup(s, len);
		if (g->g_profiles[i] == NULL)
			goto out;
		g->g_nprofiles = i + 1;
	}

	if (j_str_is(o, "key_type", "ec-p256"))
		g->g_key_type = KS_KEY_EC_P256;
	else if (j_str_is(o, "key_type", "rsa-2048"))
		g->g_key_type = KS_KEY_RSA_2048;
	else if (j_str_is(o, "key_type", "rsa-3072"))
		g->g_key_type = KS_KEY_RSA_3072;
	else
		goto out;

	g->g_spki = j_b64(o, "public_key", 1, MSSP_KEYSTORE_MAX_SPKI, &g->g_spki_len);
	if (g->g_spki == NULL)
		goto out;
	p = g->g_spki;
	g->g_pub = d2i_PUBKEY(NULL, &p, (long)g->g_spki_len);
	if (g->g_pub == NULL || p != g->g_spki + g->g_spki_len ||
	    !key_matches_type(g->g_pub, g->g_key_type) ||
	    pki_policy_check_key(&ks->k_policy, g->g_pub, NULL) != 0)
		goto out;

	if ((v = json_object_get(o, "certificate")) != NULL) {
		if (!json_is_string(v))
			goto out;
		g->g_cert = cert_from_b64(json_string_value(v), json_string_length(v));
		if (g->g_cert == NULL || EVP_PKEY_eq(X509_get0_pubkey(g->g_cert), g->g_pub) != 1)
			goto out;
	}
	if ((v = json_object_get(o, "chain")) != NULL) {
		/* a chain only with a certificate, and never empty */
		if (g->g_cert == NULL || !json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > MSSP_KEYSTORE_MAX_CHAIN)
			goto out;
		g->g_chain = sk_X509_new_null();
		if (g->g_chain == NULL)
			goto out;
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			X509 *x;

			if (!json_is_string(e))
				goto out;
			x = cert_from_b64(json_string_value(e), json_string_length(e));
			if (x == NULL || !sk_X509_push(g->g_chain, x)) {
				X509_free(x);
				goto out;
			}
		}
	}

	v = json_object_get(o, "pin");
	w = json_object_get(o, "wraps");
	if (!json_is_boolean(v) || !json_is_object(w))
		goto out;
	g->g_has_pin = json_is_true(v);
	if (g->g_has_pin) {
		if (!j_uint(o, "pin_tries", 0, MSSP_KEYSTORE_PIN_TRIES, &g->g_pin_tries) ||
		    !j_uint(o, "puk_tries", 0, MSSP_KEYSTORE_PUK_TRIES, &g->g_puk_tries) ||
		    !j_only_keys(w, pin_wraps, 2))
			goto out;
		if (g->g_puk_tries == 0) {
			/* disabled: the PIN is blocked and the key is erased */
			if (g->g_pin_tries != 0 || json_object_size(w) != 0)
				goto out;
		} else if (!parse_wrap(json_object_get(w, "pin"), KS_WRAP_PIN, &g->g_wrap_pin) ||
			   !parse_wrap(json_object_get(w, "puk"), KS_WRAP_PUK, &g->g_wrap_puk)) {
			goto out;
		}
	} else {
		if (json_object_get(o, "pin_tries") != NULL ||
		    json_object_get(o, "puk_tries") != NULL || !j_only_keys(w, dev_wraps, 1) ||
		    !parse_wrap(json_object_get(w, "device"), KS_WRAP_DEVICE, &g->g_wrap_dev))
			goto out;
	}
	ok = true;
out:
	if (!ok) {
		group_free(g);
		return false;
	}
	*out = g;
	return true;
}

static json_t *
group_to_json(const struct ks_group *g)
{
	json_t *o = json_object(), *a, *w;
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= json_object_set_new(o, "id", json_string(g->g_id));
	bad |= json_object_set_new(o, "purpose", json_string(purpose_name(g->g_purpose)));
	a = json_array();
	for (size_t i = 0; a != NULL && i < g->g_nprofiles; i++)
		bad |= json_array_append_new(a, json_string(g->g_profiles[i]));
	bad |= json_object_set_new(o, "profiles", a);
	bad |= json_object_set_new(o, "key_type", json_string(key_type_name(g->g_key_type)));
	bad |= json_object_set_new(o, "public_key", b64_json(g->g_spki, g->g_spki_len));
	if (g->g_cert != NULL)
		bad |= json_object_set_new(o, "certificate", cert_to_json(g->g_cert));
	if (g->g_chain != NULL && sk_X509_num(g->g_chain) > 0) {
		a = json_array();
		for (int i = 0; a != NULL && i < sk_X509_num(g->g_chain); i++)
			bad |= json_array_append_new(a, cert_to_json(sk_X509_value(g->g_chain, i)));
		bad |= json_object_set_new(o, "chain", a);
	}
	bad |= json_object_set_new(o, "pin", json_boolean(g->g_has_pin));
	w = json_object();
	if (g->g_has_pin) {
		bad |= json_object_set_new(o, "pin_tries", json_integer(g->g_pin_tries));
		bad |= json_object_set_new(o, "puk_tries", json_integer(g->g_puk_tries));
		if (w != NULL && g->g_wrap_pin.w_set)
			bad |= json_object_set_new(w, "pin", wrap_to_json(&g->g_wrap_pin, KS_WRAP_PIN));
		if (w != NULL && g->g_wrap_puk.w_set)
			bad |= json_object_set_new(w, "puk", wrap_to_json(&g->g_wrap_puk, KS_WRAP_PUK));
	} else if (w != NULL) {
		bad |= json_object_set_new(w, "device", wrap_to_json(&g->g_wrap_dev, KS_WRAP_DEVICE));
	}
	bad |= json_object_set_new(o, "wraps", w);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Parse a whole keystore file image into `ks` (which must be empty).  The
 * trailer is checked first, so nothing of a damaged file is interpreted.
 * Reachable from the unit tests and the fuzz target. */
UNITTEST int ks_load_bytes(struct ks *ks, const unsigned char *buf, size_t len,
			   struct pki_err *err);
UNITTEST int
ks_load_bytes(struct ks *ks, const unsigned char *buf, size_t len, struct pki_err *err)
{
	static const char *const top_keys[] = { "format",     "version",    "device_id",
						"file_id",    "device_key", "max_groups",
						"pin_min",    "pin_max",    "kdf",
						"groups" };
	static const char *const kdf_keys[] = { "alg", "log2n", "r", "p" };
	unsigned char digest[KS_SHA256_LEN];
	char hex[2 * KS_SHA256_LEN];
	const unsigned char *tr;
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *s;
	size_t body_len, slen;
	unsigned tmp;
	int rc = -1;

	pki_policy_default(&ks->k_policy);
	if (len < KS_TRAILER_LEN + 2 || len > MSSP_KEYSTORE_MAX_FILE) {
		pki_err_set(err, 900, "Keystore file truncated or too large");
		goto out;
	}
	/* trailer: "sha256:" + 64 lowercase hex + "\n" over all bytes before */
	body_len = len - KS_TRAILER_LEN;
	tr = buf + body_len;
	if (memcmp(tr, KS_TRAILER_PREFIX, sizeof(KS_TRAILER_PREFIX) - 1) != 0 ||
	    buf[len - 1] != '\n' || buf[body_len - 1] != '\n' || sha256(buf, body_len, digest) != 0) {
		pki_err_set(err, 900, "Keystore file damaged (no valid checksum line)");
		goto out;
	}
	hex_lower(digest, sizeof(digest), hex);
	if (memcmp(hex, tr + sizeof(KS_TRAILER_PREFIX) - 1, sizeof(hex)) != 0) {
		pki_err_set(err, 900, "Keystore file damaged (checksum mismatch)");
		goto out;
	}

	root = json_loadb((const char *)buf, body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root) || !j_only_keys(root, top_keys, 10) ||
	    !j_str_is(root, "format", KS_FORMAT_NAME)) {
		pki_err_set(err, 900, "Not a keystore file");
		goto out;
	}
	if (!j_uint(root, "version", KS_FORMAT_VERSION, KS_FORMAT_VERSION, &tmp)) {
		pki_err_set(err, 900, "Unsupported keystore file version");
		goto out;
	}
	s = j_str(root, "device_id", MSSP_KEYSTORE_MAX_ID, &slen);
	if (s == NULL || !id_ok(s, slen, true))
		goto bad;
	memcpy(ks->k_device_id, s, slen + 1);
	if (!j_b64_fixed(root, "file_id", ks->k_file_id, sizeof(ks->k_file_id)) ||
	    !j_b64_fixed(root, "device_key", ks->k_device_key, sizeof(ks->k_device_key)) ||
	    !j_uint(root, "max_groups", 1, MSSP_KEYSTORE_MAX_GROUPS, &ks->k_max_groups) ||
	    !j_uint(root, "pin_min", MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN,
		    &ks->k_pin_min) ||
	    !j_uint(root, "pin_max", ks->k_pin_min, MSSP_KEYSTORE_PIN_MAX_LEN, &ks->k_pin_max))
		goto bad;
	v = json_object_get(root, "kdf");
	if (!json_is_object(v) || !j_only_keys(v, kdf_keys, 4) || !j_str_is(v, "alg", "scrypt") ||
	    !j_uint(v, "log2n", MSSP_KEYSTORE_SCRYPT_MIN_LOG2N, MSSP_KEYSTORE_SCRYPT_MAX_LOG2N,
		    &ks->k_log2n) ||
	    !j_uint(v, "r", MSSP_KEYSTORE_SCRYPT_R, MSSP_KEYSTORE_SCRYPT_R, &tmp) ||
	    !j_uint(v, "p", MSSP_KEYSTORE_SCRYPT_P, MSSP_KEYSTORE_SCRYPT_P, &tmp))
		goto bad;
	v = json_object_get(root, "groups");
	if (!json_is_array(v) || json_array_size(v) > ks->k_max_groups)
		goto bad;
	for (size_t i = 0; i < json_array_size(v); i++) {
		struct ks_group *g;

		if (!parse_group(ks, json_array_get(v, i), &g))
			goto bad;
		ks->k_groups[ks->k_ngroups++] = g;
	}
	rc = 0;
	goto out;
bad:
	pki_err_set(err, 900, "Keystore file refused (invalid content)");
out:
	if (rc != 0)
		ks_clear_contents(ks);
	json_decref(root);
	pki_err_clear_openssl();
	return rc;
}

/* The file image of `ks` (body + trailer), malloc'd for the caller, who
 * wipes it (it holds the device key) with OPENSSL_clear_free. */
UNITTEST unsigned char *ks_serialize(const struct ks *ks, size_t *len);
UNITTEST unsigned char *
ks_serialize(const struct ks *ks, size_t *len)
{
	json_t *root = json_object(), *a = json_array(), *kdf = json_object();
	unsigned char digest[KS_SHA256_LEN], *img = NULL;
	char *body = NULL;
	size_t blen = 0, total;
	int bad = 0;

	if (root == NULL || a == NULL || kdf == NULL) {
		json_decref(a);
		json_decref(kdf);
		goto out;
	}
	bad |= json_object_set_new(root, "format", json_string(KS_FORMAT_NAME));
	bad |= json_object_set_new(root, "version", json_integer(KS_FORMAT_VERSION));
	bad |= json_object_set_new(root, "device_id", json_string(ks->k_device_id));
	bad |= json_object_set_new(root, "file_id", b64_json(ks->k_file_id, sizeof(ks->k_file_id)));
	bad |= json_object_set_new(root, "device_key",
				   b64_json(ks->k_device_key, sizeof(ks->k_device_key)));
	bad |= json_object_set_new(root, "max_groups", json_integer(ks->k_max_groups));
	bad |= json_object_set_new(root, "pin_min", json_integer(ks->k_pin_min));
	bad |= json_object_set_new(root, "pin_max", json_integer(ks->k_pin_max));
	bad |= json_object_set_new(kdf, "alg", json_string("scrypt"));
	bad |= json_object_set_new(kdf, "log2n", json_integer(ks->k_log2n));
	bad |= json_object_set_new(kdf, "r", json_integer(MSSP_KEYSTORE_SCRYPT_R));
	bad |= json_object_set_new(kdf, "p", json_integer(MSSP_KEYSTORE_SCRYPT_P));
	bad |= json_object_set_new(root, "kdf", kdf);
	for (size_t i = 0; i < ks->k_ngroups; i++)
		bad |= json_array_append_new(a, group_to_json(ks->k_groups[i]));
	bad |= json_object_set_new(root, "groups", a);
	if (bad)
		goto out;
	body = json_dumps(root, JSON_INDENT(1));
	if (body == NULL)
		goto out;
	blen = strlen(body);
	total = blen + 1 + KS_TRAILER_LEN;
	if (total > MSSP_KEYSTORE_MAX_FILE)
		goto out;
	img = OPENSSL_malloc(total);
	if (img == NULL)
		goto out;
	memcpy(img, body, blen);
	img[blen] = '\n';
	if (sha256(img, blen + 1, digest) != 0) {
		OPENSSL_clear_free(img, total);
		img = NULL;
		goto out;
	}
	memcpy(img + blen + 1, KS_TRAILER_PREFIX, sizeof(KS_TRAILER_PREFIX) - 1);
	hex_lower(digest, sizeof(digest),
		  (char *)img + blen + 1 + (sizeof(KS_TRAILER_PREFIX) - 1));
	img[total - 1] = '\n';
	*len = total;
out:
	if (body != NULL) {
		OPENSSL_cleanse(body, blen);
		free(body);
	}
	json_decref(root);
	return img;
}

/* ---- files: atomic write, read, lock ------------------------------------------ */

/* The directory part of `path` into dir ("." or "/" when it has none);
 * returns the base name (inside `path`), or NULL when dir is too small. */
static const char *
split_dir(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		dir[0] = '.';
		dir[1] = '\0';
		return path;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= dirlen)
		return NULL;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return slash + 1;
}

static int
fsync_dir_of(const char *path)
{
	char dir[KS_PATH_BUF];
	int fd, rc;

	if (split_dir(path, dir, sizeof(dir)) == NULL)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Remove "<base>.tmpXXXXXX" files a killed writer left behind: they hold
 * what the keystore holds, and with the lock held none can be in use. */
static void
remove_stale_temps(const char *path)
{
	static const size_t suffix = sizeof(KS_TMP_SUFFIX) - 1;
	static const size_t stem = sizeof(KS_TMP_SUFFIX) - 1 - 6; /* ".tmp" */
	char dir[KS_PATH_BUF];
	const char *base = split_dir(path, dir, sizeof(dir));
	struct dirent *de;
	size_t blen, seen = 0;
	DIR *d;

	if (base == NULL || (d = opendir(dir)) == NULL)
		return;
	blen = strlen(base);
	while ((de = readdir(d)) != NULL && seen++ < MSSP_KEYSTORE_MAX_DIR_SCAN) {
		if (strlen(de->d_name) == blen + suffix && strncmp(de->d_name, base, blen) == 0 &&
		    strncmp(de->d_name + blen, KS_TMP_SUFFIX, stem) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Write `data` to `path` atomically, mode 0600: temporary file in the same
 * directory, fsync, rename (or link, which refuses an existing file, when
 * `exclusive`), fsync of the directory. */
static int
write_atomic(const char *path, const unsigned char *data, size_t len, bool exclusive,
	     struct pki_err *err)
{
	char tmp[KS_PATH_BUF];
	int fd = -1, rc = -1, n;
	bool made = false;
	size_t off = 0;

	n = snprintf(tmp, sizeof(tmp), "%s%s", path, KS_TMP_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		pki_err_set(err, 101, "Keystore path too long");
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		pki_err_set(err, 900, "Cannot create a temporary keystore file");
		goto out;
	}
	made = true;
	if (fchmod(fd, 0600) != 0)
		goto io;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto io;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto io;
	n = close(fd);
	fd = -1;
	if (n != 0)
		goto io;
	if (exclusive) {
		if (link(tmp, path) != 0) {
			pki_err_set(err, 900, errno == EEXIST ? "Keystore file already exists"
							      : "Cannot create the keystore file");
			goto out;
		}
		unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		goto io;
	}
	made = false;
	if (fsync_dir_of(path) != 0)
		goto io;
	rc = 0;
	goto out;
io:
	pki_err_set(err, 900, "Cannot write the keystore file");
out:
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	return rc;
}

/* Persist the whole state.  On failure the handle is marked broken: memory
 * may now hold a state that is not on disk, so nothing may use it. */
static int
ks_persist(struct ks *ks, bool exclusive, struct pki_err *err)
{
	unsigned char *img;
	size_t len = 0;
	int rc;

	img = ks_serialize(ks, &len);
	if (img == NULL) {
		ks->k_broken = true;
		return pki_err_set(err, 900, "Cannot encode the keystore");
	}
	rc = write_atomic(ks->k_path, img, len, exclusive, err);
	OPENSSL_clear_free(img, len);
	if (rc != 0)
		ks->k_broken = true;
	return rc;
}

static unsigned char *
read_file(const char *path, size_t *len, struct pki_err *err)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t off = 0, size = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		pki_err_set(err, 900, "Cannot open the keystore file");
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		pki_err_set(err, 900, "Keystore is not a regular file");
		goto fail;
	}
	/* like ssh with private keys: refuse a file others could read */
	if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		pki_err_set(err, 900, "Keystore file accessible to others (must be 0600, ours)");
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > MSSP_KEYSTORE_MAX_FILE) {
		pki_err_set(err, 900, "Keystore file empty or too large");
		goto fail;
	}
	size = (size_t)st.st_size;
	buf = OPENSSL_malloc(size + 1);
	if (buf == NULL) {
		pki_err_set(err, 900, "Out of memory");
		goto fail;
	}
	/* read one byte more than expected: the file must not have grown */
	while (off <= size) {
		ssize_t r = read(fd, buf + off, size + 1 - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			pki_err_set(err, 900, "Cannot read the keystore file");
			goto fail;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	if (off != size) {
		pki_err_set(err, 900, "Keystore file changed while reading");
		goto fail;
	}
	close(fd);
	*len = size;
	return buf;
fail:
	if (buf != NULL)
		OPENSSL_clear_free(buf, size + 1);
	close(fd);
	return NULL;
}

/* A new handle for `path` holding the lock, contents empty. */
static struct ks *
ks_new_locked(const char *path, struct pki_err *err)
{
	char lock[KS_PATH_BUF];
	struct ks *ks = NULL;
	size_t plen;
	int n;

	plen = path == NULL ? 0 : strnlen(path, MSSP_KEYSTORE_MAX_PATH + 1);
	if (plen == 0 || plen > MSSP_KEYSTORE_MAX_PATH) {
		pki_err_set(err, 101, "Keystore path empty or too long");
		return NULL;
	}
	ks = OPENSSL_zalloc(sizeof(*ks));
	if (ks == NULL) {
		pki_err_set(err, 900, "Out of memory");
		return NULL;
	}
	memcpy(ks->k_path, path, plen + 1);
	pki_policy_default(&ks->k_policy);
	n = snprintf(lock, sizeof(lock), "%s%s", path, KS_LOCK_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(lock)) {
		pki_err_set(err, 101, "Keystore path too long");
		goto fail;
	}
	ks->k_lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (ks->k_lock_fd < 0) {
		pki_err_set(err, 900, "Cannot open the keystore lock file");
		goto fail;
	}
	if (flock(ks->k_lock_fd, LOCK_EX | LOCK_NB) != 0) {
		pki_err_set(err, 900, "Keystore in use by another handle or process");
		goto fail;
	}
	remove_stale_temps(path);
	return ks;
fail:
	if (ks->k_lock_fd >= 0)
		close(ks->k_lock_fd);
	OPENSSL_free(ks);
	return NULL;
}

/* ---- public API ----------------------------------------------------------------- */

void
ks_close(struct ks *ks)
{
	if (ks == NULL)
		return;
	ks_clear_contents(ks);
	if (ks->k_lock_fd >= 0)
		close(ks->k_lock_fd); /* releases the flock */
	OPENSSL_clear_free(ks, sizeof(*ks));
}

struct ks *
ks_create(const char *path, const char *device_id, const struct ks_params *params,
	  struct pki_err *err)
{
	struct ks_params dp = { 0 };
	struct ks *ks = NULL;
	struct stat st;
	size_t dlen;

	if (params == NULL)
		params = &dp;
	dlen = device_id == NULL ? 0 : strnlen(device_id, MSSP_KEYSTORE_MAX_ID + 1);
	if (!id_ok(device_id, dlen, true)) {
		pki_err_set(err, 101, "Invalid device identifier");
		return NULL;
	}
	if (params->kp_max_groups > MSSP_KEYSTORE_MAX_GROUPS) {
		pki_err_set(err, 101, "At most %d key groups", MSSP_KEYSTORE_MAX_GROUPS);
		return NULL;
	}
	if ((params->kp_pin_min != 0 && (params->kp_pin_min < MSSP_KEYSTORE_PIN_MIN_LEN ||
					 params->kp_pin_min > MSSP_KEYSTORE_PIN_MAX_LEN)) ||
	    (params->kp_pin_max != 0 && (params->kp_pin_max < MSSP_KEYSTORE_PIN_MIN_LEN ||
					 params->kp_pin_max > MSSP_KEYSTORE_PIN_MAX_LEN))) {
		pki_err_set(err, 101, "PIN length bounds must lie within %d..%d digits",
			    MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN);
		return NULL;
	}
	if (params->kp_scrypt_log2n != 0 &&
	    (params->kp_scrypt_log2n < MSSP_KEYSTORE_SCRYPT_MIN_LOG2N ||
	     params->kp_scrypt_log2n > MSSP_KEYSTORE_SCRYPT_MAX_LOG2N)) {
		pki_err_set(err, 101, "scrypt cost out of range");
		return NULL;
	}
	ks = ks_new_locked(path, err);
	if (ks == NULL)
		return NULL;
	if (lstat(path, &st) == 0) {
		pki_err_set(err, 900, "Keystore file already exists");
		goto fail;
	}
	memcpy(ks->k_device_id, device_id, dlen + 1);
	ks->k_max_groups = params->kp_max_groups ? params->kp_max_groups
						 : MSSP_KEYSTORE_DEFAULT_GROUPS;
	ks->k_pin_min = params->kp_pin_min ? params->kp_pin_min : MSSP_KEYSTORE_PIN_MIN_LEN;
	ks->k_pin_max = params->kp_pin_max ? params->kp_pin_max : MSSP_KEYSTORE_PIN_MAX_LEN;
	ks->k_log2n = params->kp_scrypt_log2n ? params->kp_scrypt_log2n
					      : MSSP_KEYSTORE_SCRYPT_LOG2N;
	if (ks->k_pin_min > ks->k_pin_max) {
		pki_err_set(err, 101, "PIN minimum length above the maximum");
		goto fail;
	}
	if (RAND_bytes(ks->k_file_id, sizeof(ks->k_file_id)) != 1 ||
	    RAND_priv_bytes(ks->k_device_key, sizeof(ks->k_device_key)) != 1) {
		pki_err_set(err, 900, "No randomness");
		goto fail;
	}
	if (ks_persist(ks, true, err) != 0)
		goto fail;
	return ks;
fail:
	ks_close(ks);
	return NULL;
}

struct ks *
ks_open(const char *path, struct pki_err *err)
{
	unsigned char *buf = NULL;
	struct ks *ks;
	size_t len = 0;

	ks = ks_new_locked(path, err);
	if (ks == NULL)
		return NULL;
	buf = read_file(path, &len, err);
	if (buf == NULL || ks_load_bytes(ks, buf, len, err) != 0) {
		ks_close(ks);
		ks = NULL;
	}
	if (buf != NULL)
		OPENSSL_clear_free(buf, len + 1);
	return ks;
}

const char *
ks_device_id(const struct ks *ks)
{
	return ks->k_device_id;
}

size_t
ks_count(const struct ks *ks)
{
	return ks->k_ngroups;
}

static void
fill_info(const struct ks_group *g, struct ks_group_info *out)
{
	memset(out, 0, sizeof(*out));
	out->gi_id = g->g_id;
	out->gi_purpose = g->g_purpose;
	out->gi_profiles = (const char *const *)g->g_profiles;
	out->gi_nprofiles = g->g_nprofiles;
	out->gi_key_type = g->g_key_type;
	out->gi_has_pin = g->g_has_pin;
	out->gi_state = group_state(g);
	out->gi_pin_tries = g->g_pin_tries;
	out->gi_puk_tries = g->g_puk_tries;
	out->gi_has_cert = g->g_cert != NULL;
}

int
ks_group_info(const struct ks *ks, size_t i, struct ks_group_info *out, struct pki_err *err)
{
	if (i >= ks->k_ngroups)
		return pki_err_set(err, 404, "No such key group");
	fill_info(ks->k_groups[i], out);
	return 0;
}

int
ks_group_info_by_id(const struct ks *ks, const char *id, struct ks_group_info *out,
		    struct pki_err *err)
{
	const struct ks_group *g = group_find(ks, id);

	if (g == NULL)
		return pki_err_set(err, 404, "No such key group");
	fill_info(g, out);
	return 0;
}

const char *
ks_find(const struct ks *ks, enum ks_purpose purpose, const char *profile_uri,
	struct pki_err *err)
{
	for (size_t i = 0; i < ks->k_ngroups; i++) {
		const struct ks_group *g = ks->k_groups[i];

		if (g->g_purpose != purpose)
			continue;
		if (profile_uri == NULL)
			return g->g_id;
		for (size_t j = 0; j < g->g_nprofiles; j++)
			if (strncmp(g->g_profiles[j], profile_uri, MSSP_PROFILE_MAX_URI + 1) == 0)
				return g->g_id;
	}
	pki_err_set(err, 404, "No key for this purpose and profile");
	return NULL;
}

EVP_PKEY *
ks_public_key(const struct ks *ks, const char *id, struct pki_err *err)
{
	const struct ks_group *g = group_find(ks, id);

	if (g == NULL) {
		pki_err_set(err, 404, "No such key group");
		return NULL;
	}
	/* g_pub was parsed from the SPKI: it has no private part to leak */
	if (!EVP_PKEY_up_ref(g->g_pub)) {
		pki_err_set(err, 900, "Out of memory");
		return NULL;
	}
	return g->g_pub;
}

X509 *
ks_certificate(const struct ks *ks, const char *id, struct pki_err *err)
{
	const struct ks_group *g = group_find(ks, id);

	if (g == NULL) {
		pki_err_set(err, 404, "No such key group");
		return NULL;
	}
	if (g->g_cert == NULL) {
		pki_err_set(err, 422, "No certificate installed for this key group");
		return NULL;
	}
	if (!X509_up_ref(g->g_cert)) {
		pki_err_set(err, 900, "Out of memory");
		return NULL;
	}
	return g->g_cert;
}

static int
check_usable(const struct ks *ks, struct pki_err *err)
{
	if (ks == NULL)
		return pki_err_set(err, 101, "No keystore");
	if (ks->k_broken)
		return pki_err_set(err, 900, "Keystore handle unusable after a failed write; reopen");
	return 0;
}

int
ks_add_group(struct ks *ks, const struct ks_group_spec *spec, struct pki_err *err)
{
	struct ks_group *g = NULL;
	EVP_PKEY *key = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL, *p;
	const unsigned char *cp;
	size_t idlen;
	int derlen = 0, n, rc = -1;

	if (check_usable(ks, err) != 0)
		return -1;
	if (spec == NULL)
		return pki_err_set(err, 101, "No key group specification");
	idlen = spec->gs_id == NULL ? 0 : strnlen(spec->gs_id, MSSP_KEYSTORE_MAX_ID + 1);
	if (!id_ok(spec->gs_id, idlen, false))
		return pki_err_set(err, 101, "Invalid key group id");
	if (group_find(ks, spec->gs_id) != NULL)
		return pki_err_set(err, 101, "Key group id already in use");
	if (ks->k_ngroups >= ks->k_max_groups)
		return pki_err_set(err, 101, "Keystore full (%u key groups)", ks->k_max_groups);
	if (spec->gs_purpose != KS_PURPOSE_AUTHN && spec->gs_purpose != KS_PURPOSE_SIGN)
		return pki_err_set(err, 101, "Invalid key purpose");
	if (spec->gs_nprofiles > MSSP_KEYSTORE_MAX_PROFILES ||
	    (spec->gs_nprofiles > 0 && spec->gs_profiles == NULL))
		return pki_err_set(err, 101, "At most %d profiles per key group",
				   MSSP_KEYSTORE_MAX_PROFILES);
	for (size_t i = 0; i < spec->gs_nprofiles; i++) {
		const char *u = spec->gs_profiles[i];

		if (u == NULL || !profile_ok(u, strnlen(u, MSSP_PROFILE_MAX_URI + 1)))
			return pki_err_set(err, 101, "Invalid signature profile URI");
	}
	if (spec->gs_pin != NULL) {
		if (!digits_ok(spec->gs_pin, ks->k_pin_min, ks->k_pin_max))
			return pki_err_set(err, 101, "The PIN must be %u to %u digits", ks->k_pin_min,
					   ks->k_pin_max);
		if (!digits_ok(spec->gs_puk, MSSP_KEYSTORE_PUK_LEN, MSSP_KEYSTORE_PUK_LEN))
			return pki_err_set(err, 101, "The PUK must be %d digits", MSSP_KEYSTORE_PUK_LEN);
	} else if (spec->gs_puk != NULL) {
		return pki_err_set(err, 101, "A PIN-less key group has no PUK");
	}

	g = OPENSSL_zalloc(sizeof(*g));
	if (g == NULL)
		goto oom;
	memcpy(g->g_id, spec->gs_id, idlen + 1);
	g->g_purpose = spec->gs_purpose;
	g->g_key_type = spec->gs_key_type ? spec->gs_key_type : KS_KEY_EC_P256;
	for (size_t i = 0; i < spec->gs_nprofiles; i++) {
		g->g_profiles[i] = OPENSSL_strdup(spec->gs_profiles[i]);
		if (g->g_profiles[i] == NULL)
			goto oom;
		g->g_nprofiles = i + 1;
	}

	/* the key pair is generated here, on the device */
	switch (g->g_key_type) {
	case KS_KEY_EC_P256: key = EVP_EC_gen("P-256"); break;
	case KS_KEY_RSA_2048: key = EVP_RSA_gen(2048); break;
	case KS_KEY_RSA_3072: key = EVP_RSA_gen(3072); break;
	default: pki_err_set(err, 101, "Invalid key type"); goto out;
	}
	if (key == NULL) {
		pki_err_set(err, 900, "Key generation failed");
		goto out;
	}
	n = i2d_PUBKEY(key, NULL);
	if (n <= 0 || n > MSSP_KEYSTORE_MAX_SPKI || (g->g_spki = OPENSSL_malloc((size_t)n)) == NULL)
		goto oom;
	p = g->g_spki;
	if (i2d_PUBKEY(key, &p) != n)
		goto oom;
	g->g_spki_len = (size_t)n;
	cp = g->g_spki;
	g->g_pub = d2i_PUBKEY(NULL, &cp, n);
	if (g->g_pub == NULL)
		goto oom;
	if (pki_policy_check_key(&ks->k_policy, g->g_pub, err) != 0) {
		if (err != NULL)
			err->status = 101;
		goto out;
	}

	p8 = EVP_PKEY2PKCS8(key);
	if (p8 == NULL || (derlen = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0 ||
	    derlen > MSSP_KEYSTORE_MAX_PKCS8)
		goto oom;
	if (spec->gs_pin != NULL) {
		g->g_has_pin = true;
		g->g_pin_tries = MSSP_KEYSTORE_PIN_TRIES;
		g->g_puk_tries = MSSP_KEYSTORE_PUK_TRIES;
		if (wrap_with_secret(ks, g, KS_WRAP_PIN, spec->gs_pin, der, (size_t)derlen,
				     &g->g_wrap_pin) != 0 ||
		    wrap_with_secret(ks, g, KS_WRAP_PUK, spec->gs_puk, der, (size_t)derlen,
				     &g->g_wrap_puk) != 0)
			goto oom;
	} else if (wrap_with_device_key(ks, g, der, (size_t)derlen, &g->g_wrap_dev) != 0) {
		goto oom;
	}
	ks->k_groups[ks->k_ngroups++] = g;
	g = NULL;
	if (ks_persist(ks, false, err) != 0)
		goto out;
	rc = 0;
	goto out;
oom:
	pki_err_set(err, 900, "Cannot create the key group");
out:
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)derlen);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(key);
	group_free(g);
	pki_err_clear_openssl();
	return rc;
}

int
ks_delete_group(struct ks *ks, const char *id, struct pki_err *err)
{
	size_t i;

	if (check_usable(ks, err) != 0)
		return -1;
	for (i = 0; i < ks->k_ngroups; i++)
		if (id != NULL && strncmp(ks->k_groups[i]->g_id, id, MSSP_KEYSTORE_MAX_ID + 1) == 0)
			break;
	if (i == ks->k_ngroups)
		return pki_err_set(err, 404, "No such key group");
	group_free(ks->k_groups[i]);
	for (; i + 1 < ks->k_ngroups; i++)
		ks->k_groups[i] = ks->k_groups[i + 1];
	ks->k_groups[--ks->k_ngroups] = NULL;
	return ks_persist(ks, false, err);
}

int
ks_install_cert(struct ks *ks, const char *id, X509 *cert, STACK_OF(X509) *chain,
		struct pki_err *err)
{
	struct ks_group *g;
	STACK_OF(X509) *nc = NULL;
	int n;

	if (check_usable(ks, err) != 0)
		return -1;
	g = group_find(ks, id);
	if (g == NULL)
		return pki_err_set(err, 404, "No such key group");
	if (cert == NULL)
		return pki_err_set(err, 101, "No certificate");
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), g->g_pub) != 1) {
		pki_err_clear_openssl();
		return pki_err_set(err, 101, "The certificate is not for this key group's key");
	}
	n = i2d_X509(cert, NULL);
	if (n <= 0 || n > MSSP_KEYSTORE_MAX_CERT)
		return pki_err_set(err, 101, "Certificate invalid or too large");
	if (chain != NULL) {
		if (sk_X509_num(chain) > MSSP_KEYSTORE_MAX_CHAIN)
			return pki_err_set(err, 101, "At most %d chain certificates",
					   MSSP_KEYSTORE_MAX_CHAIN);
		for (int i = 0; i < sk_X509_num(chain); i++) {
			n = i2d_X509(sk_X509_value(chain, i), NULL);
			if (n <= 0 || n > MSSP_KEYSTORE_MAX_CERT)
				return pki_err_set(err, 101, "Chain certificate invalid or too large");
		}
		if (sk_X509_num(chain) > 0 && (nc = X509_chain_up_ref(chain)) == NULL)
			return pki_err_set(err, 900, "Out of memory");
	}
	if (!X509_up_ref(cert)) {
		sk_X509_pop_free(nc, X509_free);
		return pki_err_set(err, 900, "Out of memory");
	}
	X509_free(g->g_cert);
	sk_X509_pop_free(g->g_chain, X509_free);
	g->g_cert = cert;
	g->g_chain = nc;
	return ks_persist(ks, false, err);
}

/* State and PIN-argument checks shared by everything that unlocks a key.
 * None of them costs a try. */
static int
gate(const struct ks *ks, const struct ks_group *g, const char *pin, struct pki_err *err)
{
	switch (group_state(g)) {
	case KS_STATE_DISABLED:
		return pki_err_set(err, 403, "Key group permanently blocked");
	case KS_STATE_PIN_BLOCKED:
		return pki_err_set(err, 402, "PIN blocked");
	default: break;
	}
	if (!g->g_has_pin && pin != NULL)
		return pki_err_set(err, 101, "This key group has no PIN");
	if (g->g_has_pin && !digits_ok(pin, ks->k_pin_min, ks->k_pin_max))
		return pki_err_set(err, 101, "A PIN of %u to %u digits is required", ks->k_pin_min,
				   ks->k_pin_max);
	return 0;
}

/* Try `secret` against the group's PIN (kind PIN) or PUK wrapping.  The
 * counter is decremented and written to disk BEFORE the secret is tried,
 * so no outcome can be observed while the attempt is not yet counted (a
 * process killed in between loses the try, as a smart card does).  When
 * the last PUK try is spent, that same write erases the wrapped key (the
 * attempt itself uses the copy kept in memory).
 * On success returns the PKCS#8 DER (OPENSSL_clear_free) and has reset the
 * tried counter to its maximum IN MEMORY only: the caller persists it
 * together with whatever else it changes. */
static unsigned char *
attempt(struct ks *ks, struct ks_group *g, enum ks_wrap_kind kind, const char *secret,
	size_t *derlen, struct pki_err *err)
{
	struct ks_wrap saved_pin, saved_puk;
	const struct ks_wrap *w = kind == KS_WRAP_PIN ? &g->g_wrap_pin : &g->g_wrap_puk;
	unsigned *ctr = kind == KS_WRAP_PIN ? &g->g_pin_tries : &g->g_puk_tries;
	bool erased = false;
	unsigned char *der = NULL;

	memset(&saved_pin, 0, sizeof(saved_pin));
	memset(&saved_puk, 0, sizeof(saved_puk));
	if (*ctr == 0) { /* callers check the state; belt and braces */
		pki_err_set(err, kind == KS_WRAP_PIN ? 402 : 403, "Blocked");
		return NULL;
	}
	*ctr -= 1;
	if (kind == KS_WRAP_PUK && *ctr == 0) {
		saved_pin = g->g_wrap_pin;
		saved_puk = g->g_wrap_puk;
		memset(&g->g_wrap_pin, 0, sizeof(g->g_wrap_pin));
		memset(&g->g_wrap_puk, 0, sizeof(g->g_wrap_puk));
		g->g_pin_tries = 0;
		w = &saved_puk;
		erased = true;
	}
	if (ks_persist(ks, false, err) != 0)
		goto out;
	der = unwrap(ks, g, kind, secret, w, derlen);
	if (der == NULL) {
		if (erased)
			pki_err_set(err, 403, "Wrong PUK; the key group is now blocked for ever");
		else if (*ctr == 0)
			pki_err_set(err, 402, "Wrong PIN; the PIN is now blocked");
		else
			pki_err_set(err, kind == KS_WRAP_PIN ? KS_STATUS_WRONG_PIN : KS_STATUS_WRONG_PUK,
				    "Wrong %s; %u tries left", kind == KS_WRAP_PIN ? "PIN" : "PUK", *ctr);
		goto out;
	}
	if (erased) {
		g->g_wrap_pin = saved_pin;
		g->g_wrap_puk = saved_puk;
		memset(&saved_pin, 0, sizeof(saved_pin));
		memset(&saved_puk, 0, sizeof(saved_puk));
	}
	*ctr = kind == KS_WRAP_PIN ? MSSP_KEYSTORE_PIN_TRIES : MSSP_KEYSTORE_PUK_TRIES;
out:
	wrap_clear(&saved_pin);
	wrap_clear(&saved_puk);
	return der;
}

/* The private key of `g` (after gate()): PIN attempt with counters, or the
 * device key.  Persists the reset counter before returning the key.  The
 * key is the caller's: EVP_PKEY_free, never stored. */
static EVP_PKEY *
unlock(struct ks *ks, struct ks_group *g, const char *pin, struct pki_err *err)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *key = NULL;

	if (g->g_has_pin) {
		der = attempt(ks, g, KS_WRAP_PIN, pin, &derlen, err);
		if (der == NULL)
			return NULL;
		if (ks_persist(ks, false, err) != 0)
			goto out;
	} else {
		der = unwrap(ks, g, KS_WRAP_DEVICE, NULL, &g->g_wrap_dev, &derlen);
		if (der == NULL) {
			pki_err_set(err, 900, "Keystore damaged: the key does not decrypt");
			return NULL;
		}
	}
	key = der_to_key(g, der, derlen);
	if (key == NULL)
		pki_err_set(err, 900, "Keystore damaged: the key does not match its public key");
out:
	OPENSSL_clear_free(der, derlen);
	pki_err_clear_openssl();
	return key;
}

X509_REQ *
ks_csr(struct ks *ks, const char *id, const char *pin, const X509_NAME *subject,
       struct pki_err *err)
{
	struct ks_group *g;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	bool ok = false;

	if (check_usable(ks, err) != 0)
		return NULL;
	g = group_find(ks, id);
	if (g == NULL) {
		pki_err_set(err, 404, "No such key group");
		return NULL;
	}
	if (gate(ks, g, pin, err) != 0)
		return NULL;
	key = unlock(ks, g, pin, err);
	if (key == NULL)
		return NULL;
	req = X509_REQ_new();
	if (req == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1))
		goto out;
	if (subject != NULL) {
		if (!X509_REQ_set_subject_name(req, subject))
			goto out;
	} else {
		name = X509_NAME_new();
		if (name == NULL ||
		    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						(const unsigned char *)ks->k_device_id, -1, -1, 0) ||
		    !X509_REQ_set_subject_name(req, name))
			goto out;
	}
	if (!X509_REQ_set_pubkey(req, g->g_pub) || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	ok = true;
out:
	if (!ok) {
		pki_err_set(err, 900, "Cannot create the certificate request");
		X509_REQ_free(req);
		req = NULL;
	}
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	pki_err_clear_openssl();
	return req;
}

int
ks_sign(struct ks *ks, const char *id, const char *pin, enum pki_sig_format fmt,
	unsigned flags, int md_nid, const unsigned char *dtbs, size_t len, unsigned char **out,
	size_t *outlen, struct pki_err *err)
{
	struct ks_group *g;
	EVP_PKEY *key = NULL;
	const EVP_MD *md;
	bool rsa;
	int rc = -1;

	if (check_usable(ks, err) != 0)
		return -1;
	if (out == NULL || outlen == NULL)
		return pki_err_set(err, 101, "No output");
	*out = NULL;
	*outlen = 0;
	g = group_find(ks, id);
	if (g == NULL)
		return pki_err_set(err, 404, "No such key group");
	/* every argument is checked before the PIN is tried */
	if (dtbs == NULL || len == 0 || len > MSSP_KEYSTORE_MAX_DTBS)
		return pki_err_set(err, 101, "Data to be signed empty or too large");
	if ((flags & ~(unsigned)(PKI_SIG_DETACHED | PKI_SIG_DIGEST)) != 0)
		return pki_err_set(err, 101, "Unknown signing flag");
	rsa = g->g_key_type != KS_KEY_EC_P256;
	switch (fmt) {
	case PKI_SIG_CMS:
		if (g->g_cert == NULL)
			return pki_err_set(err, 422,
					   "CMS signing needs a certificate; none installed for this key group");
		break;
	case PKI_SIG_PKCS1:
	case PKI_SIG_PSS:
		if (!rsa)
			return pki_err_set(err, 101, "PKCS#1 and PSS need an RSA key group");
		break;
	case PKI_SIG_ECDSA:
		if (rsa)
			return pki_err_set(err, 101, "ECDSA needs an EC key group");
		break;
	default: return pki_err_set(err, 101, "Unknown signature format");
	}
	if ((flags & PKI_SIG_DETACHED) && fmt != PKI_SIG_CMS)
		return pki_err_set(err, 101, "Only a CMS signature can be detached");
	if (pki_policy_check_digest(&ks->k_policy, md_nid, err) != 0) {
		if (err != NULL)
			err->status = 101; /* a bad request, not a bad signature */
		return -1;
	}
	md = EVP_get_digestbynid(md_nid);
	if (md == NULL)
		return pki_err_set(err, 101, "Unknown digest");
	if ((flags & PKI_SIG_DIGEST) && len != (size_t)EVP_MD_get_size(md))
		return pki_err_set(err, 101, "The digest to sign has the wrong length");
	if (gate(ks, g, pin, err) != 0)
		return -1;

	key = unlock(ks, g, pin, err);
	if (key == NULL)
		return -1;
	if (fmt == PKI_SIG_CMS)
		rc = pki_sig_cms_sign(key, g->g_cert, g->g_chain, dtbs, len, md_nid, flags, out,
				      outlen, err);
	else
		rc = pki_sig_raw_sign(key, fmt, md_nid, dtbs, len, flags, out, outlen, err);
	EVP_PKEY_free(key);
	pki_err_clear_openssl();
	return rc;
}

int
ks_change_pin(struct ks *ks, const char *id, const char *old_pin, const char *new_pin,
	      struct pki_err *err)
{
	struct ks_group *g;
	unsigned char *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *key = NULL;
	int rc = -1;

	if (check_usable(ks, err) != 0)
		return -1;
	g = group_find(ks, id);
	if (g == NULL)
		return pki_err_set(err, 404, "No such key group");
	if (!g->g_has_pin)
		return pki_err_set(err, 101, "This key group has no PIN");
	if (gate(ks, g, old_pin, err) != 0)
		return -1;
	if (!digits_ok(new_pin, ks->k_pin_min, ks->k_pin_max))
		return pki_err_set(err, 101, "The new PIN must be %u to %u digits", ks->k_pin_min,
				   ks->k_pin_max);
	der = attempt(ks, g, KS_WRAP_PIN, old_pin, &derlen, err);
	if (der == NULL)
		return -1;
	/* never re-wrap bytes that are not this group's key */
	key = der_to_key(g, der, derlen);
	if (key == NULL) {
		pki_err_set(err, 900, "Keystore damaged: the key does not match its public key");
		goto out;
	}
	if (wrap_with_secret(ks, g, KS_WRAP_PIN, new_pin, der, derlen, &g->g_wrap_pin) != 0) {
		/* the old wrapping is intact; persist the reset counter */
		pki_err_set(err, 900, "Cannot wrap the key under the new PIN");
		ks_persist(ks, false, NULL);
		goto out;
	}
	rc = ks_persist(ks, false, err);
out:
	EVP_PKEY_free(key);
	OPENSSL_clear_free(der, derlen);
	pki_err_clear_openssl();
	return rc;
}

int
ks_unblock(struct ks *ks, const char *id, const char *puk, const char *new_pin,
	   struct pki_err *err)
{
	struct ks_group *g;
	unsigned char *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *key = NULL;
	int rc = -1;

	if (check_usable(ks, err) != 0)
		return -1;
	g = group_find(ks, id);
	if (g == NULL)
		return pki_err_set(err, 404, "No such key group");
	if (!g->g_has_pin)
		return pki_err_set(err, 101, "This key group has no PIN");
	if (group_state(g) == KS_STATE_DISABLED)
		return pki_err_set(err, 403, "Key group permanently blocked");
	if (!digits_ok(puk, MSSP_KEYSTORE_PUK_LEN, MSSP_KEYSTORE_PUK_LEN))
		return pki_err_set(err, 101, "The PUK must be %d digits", MSSP_KEYSTORE_PUK_LEN);
	if (!digits_ok(new_pin, ks->k_pin_min, ks->k_pin_max))
		return pki_err_set(err, 101, "The new PIN must be %u to %u digits", ks->k_pin_min,
				   ks->k_pin_max);
	der = attempt(ks, g, KS_WRAP_PUK, puk, &derlen, err);
	if (der == NULL)
		return -1;
	key = der_to_key(g, der, derlen);
	if (key == NULL) {
		pki_err_set(err, 900, "Keystore damaged: the key does not match its public key");
		goto out;
	}
	if (wrap_with_secret(ks, g, KS_WRAP_PIN, new_pin, der, derlen, &g->g_wrap_pin) != 0) {
		pki_err_set(err, 900, "Cannot wrap the key under the new PIN");
		ks_persist(ks, false, NULL);
		goto out;
	}
	g->g_pin_tries = MSSP_KEYSTORE_PIN_TRIES;
	rc = ks_persist(ks, false, err);
out:
	EVP_PKEY_free(key);
	OPENSSL_clear_free(der, derlen);
	pki_err_clear_openssl();
	return rc;
}
