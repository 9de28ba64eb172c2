/*
 * e2e.c - end-to-end protection of the app channel (see e2e.h for the key
 * schedule and the blob format; docs/internals/e2e.md for the rationale).
 *
 * Everything here is sans-I/O: keys, nonces and blobs in, blobs and keys
 * out.  The only randomness is the HELLO nonce and the binding key pair.
 */
#include "pki/e2e.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define E2E_TAG_LEN 16
#define E2E_IV_LEN 12
#define E2E_HDR_LEN 9 /* type + counter */

static const char BIND_SALT[] = "mssp-e2e-bind-v1";
static const char INFO_H2A[] = "mssp-e2e-h2a-v1";
static const char INFO_A2H[] = "mssp-e2e-a2h-v1";
static const char AAD_LABEL[] = "mssp-e2e-v1";
static const char AUTH_LABEL[] = "mssp-afe-auth-v1";

/* The keystore's device id alphabet (keystore.h ks_create): the id goes
 * into the AAD, the auth message and the binding info between NUL
 * separators, so it must never be empty or contain a NUL itself. */
static bool
device_id_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, MSSP_KEYSTORE_MAX_ID + 1);
	if (n == 0 || n > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '.' || c == '_' || c == '-' || c == ':' || c == '+' || c == '@')
			continue;
		return false;
	}
	return true;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* HKDF-SHA256 (extract and expand) into out[E2E_KEY_LEN].  0 or -1. */
static int
hkdf(const unsigned char *ikm, size_t ikm_len, const void *salt, size_t salt_len,
     const void *info, size_t info_len, unsigned char out[E2E_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int rc = -1;

	if (kdf == NULL)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (kctx == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, E2E_KEY_LEN, params) != 1)
		goto out;
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	if (rc != 0)
		OPENSSL_cleanse(out, E2E_KEY_LEN);
	return rc;
}

/* A P-256 EC key?  (The only curve the channel uses: a peer must not pick
 * a weaker one, and both sides must agree on the shared-secret size.) */
static bool
is_p256(const EVP_PKEY *k)
{
	char group[32];
	size_t glen = 0;

	if (k == NULL || !EVP_PKEY_is_a(k, "EC"))
		return false;
	if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) != 1)
		return false;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* SPKI DER -> P-256 public key, or NULL.  Trailing bytes are refused: one
 * key has one encoding in the store. */
static EVP_PKEY *
spki_p256(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	if (der == NULL || len == 0 || len > MSSP_KEYSTORE_MAX_SPKI)
		return NULL;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL)
		return NULL;
	if (p != der + len || !is_p256(k)) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
e2e_session_init(struct e2e_session *s, enum e2e_role role, const char *device_id,
		 const unsigned char key[E2E_KEY_LEN], const unsigned char home_nonce[E2E_NONCE_LEN],
		 const unsigned char app_nonce[E2E_NONCE_LEN], struct pki_err *err)
{
	unsigned char salt[2 * E2E_NONCE_LEN];
	unsigned char h2a[E2E_KEY_LEN], a2h[E2E_KEY_LEN];
	char id[MSSP_KEYSTORE_MAX_ID + 1];
	int rc = -1;

	if (s == NULL || key == NULL || home_nonce == NULL || app_nonce == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	/* Copied before the wipe: a caller may renew a session with its own
	 * s->es_device_id. */
	if (device_id_ok(device_id))
		memcpy(id, device_id, strlen(device_id) + 1);
	else
		id[0] = '\0';
	e2e_session_wipe(s);
	if (role != E2E_ROLE_HOME && role != E2E_ROLE_APP)
		return pki_err_set(err, 900, "e2e: bad role");
	if (id[0] == '\0')
		return pki_err_set(err, 101, "e2e: bad device id");
	memcpy(salt, home_nonce, E2E_NONCE_LEN);
	memcpy(salt + E2E_NONCE_LEN, app_nonce, E2E_NONCE_LEN);
	if (hkdf(key, E2E_KEY_LEN, salt, sizeof(salt), INFO_H2A, strlen(INFO_H2A), h2a) != 0 ||
	    hkdf(key, E2E_KEY_LEN, salt, sizeof(salt), INFO_A2H, strlen(INFO_A2H), a2h) != 0) {
		pki_err_clear_openssl();
		pki_err_set(err, 900, "e2e: key derivation failed");
		goto out;
	}
	/* Each direction has its own key, so a blob reflected back to its
	 * sender never verifies. */
	s->es_role = role;
	memcpy(s->es_k_send, role == E2E_ROLE_HOME ? h2a : a2h, E2E_KEY_LEN);
	memcpy(s->es_k_recv, role == E2E_ROLE_HOME ? a2h : h2a, E2E_KEY_LEN);
	s->es_send_ctr = 0;
	s->es_recv_ctr = 0;
	memcpy(s->es_device_id, id, strlen(id) + 1);
	s->es_ready = true;
	rc = 0;
out:
	OPENSSL_cleanse(h2a, sizeof(h2a));
	OPENSSL_cleanse(a2h, sizeof(a2h));
	return rc;
}

void
e2e_session_wipe(struct e2e_session *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	s->es_ready = false;
}

int
e2e_hello(unsigned char out[E2E_HELLO_LEN], unsigned char nonce_out[E2E_NONCE_LEN],
	  struct pki_err *err)
{
	if (out == NULL || nonce_out == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (RAND_bytes(nonce_out, E2E_NONCE_LEN) != 1) {
		pki_err_clear_openssl();
		return pki_err_set(err, 900, "e2e: no randomness");
	}
	out[0] = E2E_BLOB_HELLO;
	memcpy(out + 1, nonce_out, E2E_NONCE_LEN);
	return 0;
}

int
e2e_hello_parse(const unsigned char *blob, size_t len, unsigned char nonce[E2E_NONCE_LEN],
		struct pki_err *err)
{
	if (nonce == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (blob == NULL || len != E2E_HELLO_LEN || blob[0] != E2E_BLOB_HELLO)
		return pki_err_set(err, 101, "e2e: malformed hello");
	memcpy(nonce, blob + 1, E2E_NONCE_LEN);
	return 0;
}

/* AAD = label || 0 || device id || 0 || header.  Returns its length. */
static size_t
build_aad(const struct e2e_session *s, const unsigned char hdr[E2E_HDR_LEN],
	  unsigned char *aad)
{
	size_t n = 0, dlen = strlen(s->es_device_id);

	memcpy(aad, AAD_LABEL, sizeof(AAD_LABEL)); /* with its NUL */
	n = sizeof(AAD_LABEL);
	memcpy(aad + n, s->es_device_id, dlen);
	n += dlen;
	aad[n++] = 0x00;
	memcpy(aad + n, hdr, E2E_HDR_LEN);
	return n + E2E_HDR_LEN;
}

#define E2E_AAD_MAX (sizeof(AAD_LABEL) + MSSP_KEYSTORE_MAX_ID + 1 + E2E_HDR_LEN)

/* One AES-256-GCM operation.  enc: encrypt and write the tag; otherwise
 * decrypt and check it.  0, or -1 (tag mismatch or OpenSSL failure; *bad
 * tells which). */
static int
gcm(bool enc, const unsigned char key[E2E_KEY_LEN], const unsigned char iv[E2E_IV_LEN],
    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
    unsigned char *out, unsigned char tag[E2E_TAG_LEN], bool *bad)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char fin[16]; /* GCM's final step writes nothing */
	int n = 0, rc = -1;

	*bad = false;
	if (c == NULL)
		return -1;
	if (EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), NULL, NULL, enc ? 1 : 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, E2E_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex2(c, NULL, key, iv, -1, NULL) != 1)
		goto out;
	if (EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, E2E_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, fin, &n) != 1) {
		*bad = !enc; /* decrypt: the tag did not verify */
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, E2E_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int
e2e_seal(struct e2e_session *s, const unsigned char *pt, size_t len, unsigned char *out,
	 size_t cap, size_t *outlen, struct pki_err *err)
{
	unsigned char iv[E2E_IV_LEN] = { 0 }, aad[E2E_AAD_MAX];
	size_t aad_len;
	uint64_t ctr;
	bool bad;

	if (s == NULL || !s->es_ready)
		return pki_err_set(err, 900, "e2e: session not ready");
	if (out == NULL || outlen == NULL || (pt == NULL && len > 0))
		return pki_err_set(err, 900, "e2e: missing argument");
	if (len > MSSP_E2E_MAX_PLAIN)
		return pki_err_set(err, 900, "e2e: message too long");
	if (cap < len + E2E_SEAL_OVERHEAD)
		return pki_err_set(err, 900, "e2e: output buffer too small");
	/* A counter never repeats under one key (GCM nonce reuse would be
	 * fatal): when it is exhausted the session must be renewed. */
	if (s->es_send_ctr == UINT64_MAX)
		return pki_err_set(err, 900, "e2e: counter exhausted");
	ctr = s->es_send_ctr + 1;
	out[0] = E2E_BLOB_SEALED;
	put_be64(out + 1, ctr);
	memcpy(iv + 4, out + 1, 8);
	aad_len = build_aad(s, out, aad);
	if (gcm(true, s->es_k_send, iv, aad, aad_len, pt, len, out + E2E_HDR_LEN,
		out + E2E_HDR_LEN + len, &bad) != 0) {
		pki_err_clear_openssl();
		OPENSSL_cleanse(out, len + E2E_SEAL_OVERHEAD);
		return pki_err_set(err, 900, "e2e: encryption failed");
	}
	s->es_send_ctr = ctr;
	*outlen = len + E2E_SEAL_OVERHEAD;
	return 0;
}

int
e2e_open(struct e2e_session *s, const unsigned char *blob, size_t len, unsigned char *out,
	 size_t cap, size_t *outlen, struct pki_err *err)
{
	unsigned char iv[E2E_IV_LEN] = { 0 }, aad[E2E_AAD_MAX], tag[E2E_TAG_LEN];
	size_t aad_len, ct_len;
	uint64_t ctr;
	bool bad;

	if (s == NULL || !s->es_ready)
		return pki_err_set(err, 900, "e2e: session not ready");
	if (outlen == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (blob == NULL || len < E2E_SEAL_OVERHEAD || blob[0] != E2E_BLOB_SEALED)
		return pki_err_set(err, 101, "e2e: malformed blob");
	ct_len = len - E2E_SEAL_OVERHEAD;
	if (ct_len > MSSP_E2E_MAX_PLAIN)
		return pki_err_set(err, 101, "e2e: blob too long");
	if (cap < ct_len || (out == NULL && ct_len > 0))
		return pki_err_set(err, 900, "e2e: output buffer too small");
	ctr = get_be64(blob + 1);
	/* Strictly increasing: refuses replays, reordering and counter 0. */
	if (ctr == 0 || ctr <= s->es_recv_ctr)
		return pki_err_set(err, 101, "e2e: stale counter");
	memcpy(iv + 4, blob + 1, 8);
	memcpy(tag, blob + len - E2E_TAG_LEN, E2E_TAG_LEN);
	aad_len = build_aad(s, blob, aad);
	if (gcm(false, s->es_k_recv, iv, aad, aad_len, blob + E2E_HDR_LEN, ct_len, out, tag,
		&bad) != 0) {
		pki_err_clear_openssl();
		/* GCM writes the plaintext before the tag is checked: never
		 * leave unauthenticated bytes behind. */
		if (ct_len > 0)
			OPENSSL_cleanse(out, ct_len);
		return pki_err_set(err, bad ? 101 : 900,
				   bad ? "e2e: blob does not verify" : "e2e: decryption failed");
	}
	s->es_recv_ctr = ctr; /* only now: a refused blob changes nothing */
	*outlen = ct_len;
	return 0;
}

/* The signed message of device authentication (e2e.h).  Returns its length
 * in buf (capacity AUTH_MSG_MAX). */
#define AUTH_MSG_MAX (sizeof(AUTH_LABEL) + MSSP_KEYSTORE_MAX_ID + 1 + E2E_CHALLENGE_LEN + E2E_NONCE_LEN)

static size_t
auth_message(const char *device_id, const unsigned char challenge[E2E_CHALLENGE_LEN],
	     const unsigned char app_nonce[E2E_NONCE_LEN], unsigned char *buf)
{
	size_t n, dlen = strlen(device_id);

	memcpy(buf, AUTH_LABEL, sizeof(AUTH_LABEL)); /* with its NUL */
	n = sizeof(AUTH_LABEL);
	memcpy(buf + n, device_id, dlen);
	n += dlen;
	buf[n++] = 0x00;
	memcpy(buf + n, challenge, E2E_CHALLENGE_LEN);
	n += E2E_CHALLENGE_LEN;
	memcpy(buf + n, app_nonce, E2E_NONCE_LEN);
	return n + E2E_NONCE_LEN;
}

int
e2e_auth_sign(EVP_PKEY *device_key, const char *device_id,
	      const unsigned char challenge[E2E_CHALLENGE_LEN],
	      const unsigned char app_nonce[E2E_NONCE_LEN], unsigned char **sig, size_t *siglen,
	      struct pki_err *err)
{
	unsigned char msg[AUTH_MSG_MAX], *out = NULL;
	EVP_MD_CTX *md = NULL;
	size_t mlen, olen = 0;
	int rc = -1;

	if (sig == NULL || siglen == NULL || challenge == NULL || app_nonce == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	*sig = NULL;
	*siglen = 0;
	if (!device_id_ok(device_id))
		return pki_err_set(err, 101, "e2e: bad device id");
	if (!is_p256(device_key))
		return pki_err_set(err, 900, "e2e: device key is not P-256");
	mlen = auth_message(device_id, challenge, app_nonce, msg);
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, device_key,
						NULL) != 1 ||
	    EVP_DigestSign(md, NULL, &olen, msg, mlen) != 1)
		goto fail;
	out = OPENSSL_malloc(olen);
	if (out == NULL || EVP_DigestSign(md, out, &olen, msg, mlen) != 1)
		goto fail;
	*sig = out;
	*siglen = olen;
	out = NULL;
	rc = 0;
	goto done;
fail:
	pki_err_clear_openssl();
	pki_err_set(err, 900, "e2e: signing failed");
done:
	OPENSSL_free(out);
	EVP_MD_CTX_free(md);
	return rc;
}

int
e2e_auth_verify(const unsigned char *spki_der, size_t spki_len, const char *device_id,
		const unsigned char challenge[E2E_CHALLENGE_LEN],
		const unsigned char app_nonce[E2E_NONCE_LEN], const unsigned char *sig,
		size_t siglen, struct pki_err *err)
{
	unsigned char msg[AUTH_MSG_MAX];
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *pk = NULL;
	size_t mlen;
	int rc = -1;

	if (challenge == NULL || app_nonce == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (!device_id_ok(device_id))
		return pki_err_set(err, 101, "e2e: bad device id");
	if (sig == NULL || siglen == 0 || siglen > MSSP_PKI_SIG_MAX_RAW)
		return pki_err_set(err, 101, "e2e: malformed signature");
	pk = spki_p256(spki_der, spki_len);
	if (pk == NULL) {
		pki_err_clear_openssl();
		return pki_err_set(err, 101, "e2e: device key is not a P-256 public key");
	}
	mlen = auth_message(device_id, challenge, app_nonce, msg);
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pk, NULL) != 1) {
		pki_err_set(err, 900, "e2e: verification failed");
		goto out;
	}
	/* 0 (mismatch) and <0 (malformed DER) are both the peer's fault. */
	if (EVP_DigestVerify(md, sig, siglen, msg, mlen) != 1) {
		pki_err_set(err, 101, "e2e: signature does not verify");
		goto out;
	}
	rc = 0;
out:
	pki_err_clear_openssl();
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}

EVP_PKEY *
e2e_binding_keygen(struct pki_err *err)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (k == NULL) {
		pki_err_clear_openssl();
		pki_err_set(err, 900, "e2e: key generation failed");
	}
	return k;
}

int
e2e_binding_derive(EVP_PKEY *own, const unsigned char *peer_spki, size_t peer_len,
		   const char *device_id, unsigned char key[E2E_KEY_LEN], struct pki_err *err)
{
	unsigned char z[66]; /* P-256 needs 32; room to refuse anything else */
	size_t zlen = sizeof(z);
	EVP_PKEY_CTX *dctx = NULL;
	EVP_PKEY *peer = NULL;
	int rc = -1;

	if (key == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (!device_id_ok(device_id))
		return pki_err_set(err, 101, "e2e: bad device id");
	if (!is_p256(own))
		return pki_err_set(err, 900, "e2e: own binding key is not P-256");
	peer = spki_p256(peer_spki, peer_len);
	if (peer == NULL) {
		pki_err_clear_openssl();
		return pki_err_set(err, 101, "e2e: peer key is not a P-256 public key");
	}
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
	if (dctx == NULL || EVP_PKEY_derive_init(dctx) != 1) {
		pki_err_set(err, 900, "e2e: key agreement failed");
		goto out;
	}
	/* validate_peer = 1: a point off the curve is the peer's fault. */
	if (EVP_PKEY_derive_set_peer_ex(dctx, peer, 1) != 1) {
		pki_err_set(err, 101, "e2e: peer key refused");
		goto out;
	}
	if (EVP_PKEY_derive(dctx, z, &zlen) != 1 || zlen != 32) {
		pki_err_set(err, 900, "e2e: key agreement failed");
		goto out;
	}
	if (hkdf(z, zlen, BIND_SALT, strlen(BIND_SALT), device_id, strlen(device_id), key) != 0) {
		pki_err_set(err, 900, "e2e: key derivation failed");
		goto out;
	}
	rc = 0;
out:
	pki_err_clear_openssl();
	OPENSSL_cleanse(z, sizeof(z));
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(peer);
	return rc;
}

int
e2e_spki_der(EVP_PKEY *key, unsigned char **der, size_t *len, struct pki_err *err)
{
	unsigned char *buf = NULL;
	int n;

	if (der == NULL || len == NULL || key == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	*der = NULL;
	*len = 0;
	n = i2d_PUBKEY(key, &buf);
	if (n <= 0) {
		pki_err_clear_openssl();
		return pki_err_set(err, 900, "e2e: cannot encode public key");
	}
	*der = buf;
	*len = (size_t)n;
	return 0;
}

/* ---- Device activation (e2e.h; docs/internals/me.md) ------------------- */

static const char ACT_LABEL[] = "mssp-activate-v1";

static uint8_t *
put_lv(uint8_t *p, const void *d, size_t n)
{
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	memcpy(p + 4, d, n);
	return p + 4 + n;
}

static bool
spki_len_ok(const uint8_t *d, size_t n)
{
	return d != NULL && n > 0 && n <= MSSP_KEYSTORE_MAX_SPKI;
}

uint8_t *
e2e_activation_transcript(const char *msisdn, const uint8_t app_nonce[E2E_NONCE_LEN],
			  const uint8_t home_nonce[E2E_NONCE_LEN], const uint8_t *home_bind_spki,
			  size_t home_bind_len, const uint8_t *app_bind_spki, size_t app_bind_len,
			  const uint8_t *device_spki, size_t device_len, size_t *len)
{
	size_t mlen, total;
	uint8_t *t, *p;

	if (len == NULL)
		return NULL;
	*len = 0;
	if (msisdn == NULL || app_nonce == NULL || home_nonce == NULL)
		return NULL;
	mlen = strnlen(msisdn, MSSP_STORE_MAX_MSISDN + 1);
	if (mlen == 0 || mlen > MSSP_STORE_MAX_MSISDN)
		return NULL;
	if (!spki_len_ok(home_bind_spki, home_bind_len) ||
	    !spki_len_ok(app_bind_spki, app_bind_len) || !spki_len_ok(device_spki, device_len))
		return NULL;
	/* Every field is length-prefixed, so no two different argument sets
	 * give the same bytes (a moved boundary changes a length). */
	total = strlen(ACT_LABEL) + 6 * 4 + mlen + 2 * E2E_NONCE_LEN + home_bind_len +
		app_bind_len + device_len;
	t = malloc(total);
	if (t == NULL)
		return NULL;
	memcpy(t, ACT_LABEL, strlen(ACT_LABEL));
	p = t + strlen(ACT_LABEL);
	p = put_lv(p, msisdn, mlen);
	p = put_lv(p, app_nonce, E2E_NONCE_LEN);
	p = put_lv(p, home_nonce, E2E_NONCE_LEN);
	p = put_lv(p, home_bind_spki, home_bind_len);
	p = put_lv(p, app_bind_spki, app_bind_len);
	p = put_lv(p, device_spki, device_len);
	*len = (size_t)(p - t);
	return t;
}

int
e2e_activation_code_hash(const char *digits, uint8_t h[32])
{
	size_t n;

	if (digits == NULL || h == NULL)
		return -1;
	n = strnlen(digits, MSSP_REG_ACTIVATION_DIGITS + 1);
	if (n != MSSP_REG_ACTIVATION_DIGITS)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (digits[i] < '0' || digits[i] > '9')
			return -1;
	if (EVP_Digest(digits, n, h, NULL, EVP_sha256(), NULL) != 1) {
		pki_err_clear_openssl();
		OPENSSL_cleanse(h, 32);
		return -1;
	}
	return 0;
}

int
e2e_activation_mac(const uint8_t h[32], const uint8_t *t, size_t tlen, const char *label,
		   const char *extra, uint8_t mac[32])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *hmac = NULL;
	size_t outl = 0;
	int rc = -1;

	if (h == NULL || t == NULL || tlen == 0 || label == NULL || mac == NULL)
		return -1;
	/* The two directions' labels only: a MAC made for one can never be
	 * presented as the other's (and "home" carries the device id). */
	if (strcmp(label, "app") != 0 && strcmp(label, "home") != 0)
		return -1;
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, h, 32, params) != 1 || EVP_MAC_update(ctx, t, tlen) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)label, strlen(label)) != 1)
		goto out;
	if (extra != NULL &&
	    EVP_MAC_update(ctx, (const unsigned char *)extra, strlen(extra)) != 1)
		goto out;
	if (EVP_MAC_final(ctx, mac, &outl, 32) != 1 || outl != 32)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		pki_err_clear_openssl();
		OPENSSL_cleanse(mac, 32);
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

int
e2e_sign_msg(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *sig, size_t *siglen,
	     struct pki_err *err)
{
	EVP_MD_CTX *md = NULL;
	size_t olen = 0;
	int rc = -1;

	if (msg == NULL || sig == NULL || siglen == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	*siglen = 0;
	if (!is_p256(key))
		return pki_err_set(err, 900, "e2e: signing key is not P-256");
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(md, NULL, &olen, msg, len) != 1 || olen > MSSP_AFE_MAX_SIG ||
	    EVP_DigestSign(md, sig, &olen, msg, len) != 1) {
		pki_err_clear_openssl();
		pki_err_set(err, 900, "e2e: signing failed");
		goto out;
	}
	*siglen = olen;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* A UTF-8 string parameter of `k` equals `want`? */
static bool
param_is(const EVP_PKEY *k, const char *name, const char *want)
{
	char v[32];
	size_t vl = 0;

	if (EVP_PKEY_get_utf8_string_param(k, name, v, sizeof(v), &vl) != 1)
		return false;
	return strcmp(v, want) == 0;
}

int
e2e_verify_msg(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t len,
	       const uint8_t *sig, size_t siglen, struct pki_err *err)
{
	const unsigned char *p = spki;
	unsigned char *re = NULL;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *pk = NULL;
	int n, rc = -1;

	if (msg == NULL)
		return pki_err_set(err, 900, "e2e: missing argument");
	if (sig == NULL || siglen == 0 || siglen > MSSP_AFE_MAX_SIG)
		return pki_err_set(err, 101, "e2e: malformed signature");
	if (spki == NULL || spki_len == 0 || spki_len > MSSP_KEYSTORE_MAX_SPKI)
		return pki_err_set(err, 101, "e2e: malformed public key");
	pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (pk == NULL || p != spki + spki_len || !is_p256(pk)) {
		pki_err_set(err, 101, "e2e: not a P-256 public key");
		goto out;
	}
	/* One key, one encoding: the SPKI is what gets stored and
	 * fingerprinted (duplicate keys are found by that fingerprint), so
	 * any other form of the same key (explicit curve parameters, a
	 * compressed point, odd DER) is refused rather than normalised.
	 * OpenSSL re-encodes in the form it parsed, hence the two checks
	 * before the byte comparison. */
	if (!param_is(pk, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP) ||
	    !param_is(pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED)) {
		pki_err_set(err, 101, "e2e: public key not in canonical form");
		goto out;
	}
	n = i2d_PUBKEY(pk, &re);
	if (n <= 0) {
		pki_err_set(err, 900, "e2e: cannot encode public key");
		goto out;
	}
	if ((size_t)n != spki_len || memcmp(re, spki, spki_len) != 0) {
		pki_err_set(err, 101, "e2e: public key not in canonical form");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pk, NULL) != 1) {
		pki_err_set(err, 900, "e2e: verification failed");
		goto out;
	}
	if (EVP_DigestVerify(md, sig, siglen, msg, len) != 1) {
		pki_err_set(err, 101, "e2e: signature does not verify");
		goto out;
	}
	rc = 0;
out:
	pki_err_clear_openssl();
	OPENSSL_free(re);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}
