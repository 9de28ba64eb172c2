/*
 * test_e2e.c - end-to-end protection of the app channel: binding agreement,
 * session keys, sealed blobs (round trip, replay, reorder, reflection,
 * tampering, wrong device or session), device authentication, HELLO
 * parsing, and the blob format checked independently with raw OpenSSL.
 */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "pki/e2e.h"

#define DEV "phone-1@example.org"

struct pair {
	unsigned char k[E2E_KEY_LEN];
	unsigned char hn[E2E_NONCE_LEN], an[E2E_NONCE_LEN];
	struct e2e_session home, app;
};

static void
pair_setup(struct pair *p, const char *dev)
{
	struct pki_err err;
	unsigned char hello[E2E_HELLO_LEN], parsed[E2E_NONCE_LEN];

	assert_int_equal(RAND_bytes(p->k, sizeof(p->k)), 1);
	assert_int_equal(RAND_bytes(p->an, sizeof(p->an)), 1);
	assert_int_equal(e2e_hello(hello, p->hn, &err), 0);
	assert_int_equal(e2e_hello_parse(hello, sizeof(hello), parsed, &err), 0);
	assert_memory_equal(parsed, p->hn, E2E_NONCE_LEN);
	assert_int_equal(e2e_session_init(&p->home, E2E_ROLE_HOME, dev, p->k, p->hn, p->an, &err),
			 0);
	assert_int_equal(e2e_session_init(&p->app, E2E_ROLE_APP, dev, p->k, p->hn, p->an, &err), 0);
}

static void
pair_wipe(struct pair *p)
{
	e2e_session_wipe(&p->home);
	e2e_session_wipe(&p->app);
}

static size_t
seal(struct e2e_session *s, const char *text, unsigned char *out, size_t cap)
{
	struct pki_err err;
	size_t n = 0;

	assert_int_equal(e2e_seal(s, (const unsigned char *)text, strlen(text), out, cap, &n, &err),
			 0);
	assert_int_equal(n, strlen(text) + E2E_SEAL_OVERHEAD);
	return n;
}

/* Open and expect `text`. */
static void
open_ok(struct e2e_session *s, const unsigned char *blob, size_t len, const char *text)
{
	unsigned char out[256];
	struct pki_err err;
	size_t n = 0;

	assert_int_equal(e2e_open(s, blob, len, out, sizeof(out), &n, &err), 0);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(out, text, n);
}

static void
open_refused(struct e2e_session *s, const unsigned char *blob, size_t len)
{
	unsigned char out[256];
	struct pki_err err = { 0 };
	size_t n = 12345;

	assert_int_equal(e2e_open(s, blob, len, out, sizeof(out), &n, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(n, 12345);
}

static void
test_binding(void **state)
{
	struct pki_err err;
	EVP_PKEY *home = e2e_binding_keygen(&err), *app = e2e_binding_keygen(&err);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	unsigned char *hd = NULL, *ad = NULL, *xd = NULL, buf[512];
	size_t hl = 0, al = 0, xl = 0;
	unsigned char k1[E2E_KEY_LEN], k2[E2E_KEY_LEN], k3[E2E_KEY_LEN], zero[E2E_KEY_LEN] = { 0 };
	(void)state;

	assert_non_null(home);
	assert_non_null(app);
	assert_non_null(p384);
	assert_int_equal(e2e_spki_der(home, &hd, &hl, &err), 0);
	assert_int_equal(e2e_spki_der(app, &ad, &al, &err), 0);
	assert_int_equal(e2e_spki_der(p384, &xd, &xl, &err), 0);
	assert_true(hl > 0 && hl < sizeof(buf));

	/* Both sides derive the same K, and it depends on the device id. */
	assert_int_equal(e2e_binding_derive(home, ad, al, DEV, k1, &err), 0);
	assert_int_equal(e2e_binding_derive(app, hd, hl, DEV, k2, &err), 0);
	assert_memory_equal(k1, k2, E2E_KEY_LEN);
	assert_memory_not_equal(k1, zero, E2E_KEY_LEN);
	assert_int_equal(e2e_binding_derive(app, hd, hl, "phone-2", k3, &err), 0);
	assert_memory_not_equal(k1, k3, E2E_KEY_LEN);

	/* A peer key on another curve, truncated, or with trailing bytes. */
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, xd, xl, DEV, k3, &err), -1);
	assert_int_equal(err.status, 101);
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, hd, hl - 1, DEV, k3, &err), -1);
	assert_int_equal(err.status, 101);
	memcpy(buf, hd, hl);
	buf[hl] = 0;
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, buf, hl + 1, DEV, k3, &err), -1);
	assert_int_equal(err.status, 101);
	/* A point off the curve (last byte of Y changed). */
	memcpy(buf, hd, hl);
	buf[hl - 1] ^= 0x01;
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, buf, hl, DEV, k3, &err), -1);
	assert_int_equal(err.status, 101);
	/* Bad device ids. */
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, hd, hl, "", k3, &err), -1);
	assert_int_equal(err.status, 101);
	err.status = 0;
	assert_int_equal(e2e_binding_derive(app, hd, hl, "a b", k3, &err), -1);
	assert_int_equal(err.status, 101);
	/* Our own key on the wrong curve is our fault. */
	err.status = 0;
	assert_int_equal(e2e_binding_derive(p384, hd, hl, DEV, k3, &err), -1);
	assert_int_equal(err.status, 900);

	OPENSSL_free(hd);
	OPENSSL_free(ad);
	OPENSSL_free(xd);
	EVP_PKEY_free(home);
	EVP_PKEY_free(app);
	EVP_PKEY_free(p384);
}

static void
test_round_trip(void **state)
{
	struct pair p;
	unsigned char b1[128], b2[128], b3[128], out[64];
	struct pki_err err;
	size_t n1, n2, n3, n = 99;
	(void)state;

	pair_setup(&p, DEV);
	n1 = seal(&p.home, "{\"t\":\"sign\"}", b1, sizeof(b1));
	n2 = seal(&p.home, "second", b2, sizeof(b2));
	n3 = seal(&p.app, "answer", b3, sizeof(b3));
	/* The header is clear: type then big-endian counter from 1. */
	assert_int_equal(b1[0], E2E_BLOB_SEALED);
	assert_memory_equal(b1 + 1, "\0\0\0\0\0\0\0\1", 8);
	assert_memory_equal(b2 + 1, "\0\0\0\0\0\0\0\2", 8);
	assert_memory_equal(b3 + 1, "\0\0\0\0\0\0\0\1", 8);
	open_ok(&p.app, b1, n1, "{\"t\":\"sign\"}");
	open_ok(&p.app, b2, n2, "second");
	open_ok(&p.home, b3, n3, "answer");
	assert_int_equal(p.app.es_recv_ctr, 2);
	assert_int_equal(p.home.es_recv_ctr, 1);

	/* Empty message. */
	assert_int_equal(e2e_seal(&p.app, NULL, 0, b1, sizeof(b1), &n1, &err), 0);
	assert_int_equal(n1, E2E_SEAL_OVERHEAD);
	assert_int_equal(e2e_open(&p.home, b1, n1, NULL, 0, &n, &err), 0);
	assert_int_equal(n, 0);

	/* Output too small is the caller's fault (900) and changes nothing. */
	n1 = seal(&p.home, "0123456789", b1, sizeof(b1));
	err.status = 0;
	assert_int_equal(e2e_open(&p.app, b1, n1, out, 9, &n, &err), -1);
	assert_int_equal(err.status, 900);
	open_ok(&p.app, b1, n1, "0123456789");
	err.status = 0;
	assert_int_equal(e2e_seal(&p.home, (const unsigned char *)"abc", 3, b1, 3 + 24, &n, &err),
			 -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(p.home.es_send_ctr, 3);
	pair_wipe(&p);
}

static void
test_replay_reorder_reflection(void **state)
{
	struct pair p;
	unsigned char b1[64], b2[64], b3[64];
	size_t n1, n2, n3;
	(void)state;

	pair_setup(&p, DEV);
	n1 = seal(&p.home, "one", b1, sizeof(b1));
	n2 = seal(&p.home, "two", b2, sizeof(b2));
	n3 = seal(&p.home, "three", b3, sizeof(b3));

	/* Reordered: 2 accepted, then 1 refused, 3 still fine. */
	open_ok(&p.app, b2, n2, "two");
	open_refused(&p.app, b1, n1);
	/* Replayed. */
	open_refused(&p.app, b2, n2);
	open_ok(&p.app, b3, n3, "three");
	open_refused(&p.app, b3, n3);
	assert_int_equal(p.app.es_recv_ctr, 3);

	/* Reflected: a home->app blob fed back to home does not verify
	 * (different direction key), and leaves home's state alone. */
	n1 = seal(&p.home, "reflect me", b1, sizeof(b1));
	open_refused(&p.home, b1, n1);
	assert_int_equal(p.home.es_recv_ctr, 0);
	/* ... same for app->home fed back to the app. */
	n2 = seal(&p.app, "and me", b2, sizeof(b2));
	open_refused(&p.app, b2, n2);
	open_ok(&p.home, b2, n2, "and me");
	pair_wipe(&p);
}

static void
test_tamper(void **state)
{
	struct pair p;
	unsigned char blob[64], bad[64];
	size_t n;
	(void)state;

	pair_setup(&p, DEV);
	n = seal(&p.home, "pay 100 to Alice", blob, sizeof(blob));
	/* Every single byte, header included, flips to a refusal. */
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, blob, n);
		bad[i] ^= 0x01;
		open_refused(&p.app, bad, n);
		assert_int_equal(p.app.es_recv_ctr, 0);
	}
	/* Truncated, extended, short, wrong type, HELLO in place of SEALED. */
	open_refused(&p.app, blob, n - 1);
	memcpy(bad, blob, n);
	bad[n] = 0;
	open_refused(&p.app, bad, n + 1);
	open_refused(&p.app, blob, E2E_SEAL_OVERHEAD - 1);
	open_refused(&p.app, blob, 0);
	open_refused(&p.app, NULL, 0);
	memcpy(bad, blob, n);
	bad[0] = E2E_BLOB_HELLO;
	open_refused(&p.app, bad, n);
	/* The genuine blob still opens: refusals changed nothing. */
	open_ok(&p.app, blob, n, "pay 100 to Alice");
	pair_wipe(&p);
}

static void
test_wrong_device_or_session(void **state)
{
	struct pair p;
	struct e2e_session other;
	unsigned char blob[64], nonce[E2E_NONCE_LEN], k2[E2E_KEY_LEN];
	struct pki_err err;
	size_t n;
	(void)state;

	pair_setup(&p, DEV);
	n = seal(&p.home, "hello", blob, sizeof(blob));

	/* Same K and nonces, another device id: AAD differs. */
	assert_int_equal(
		e2e_session_init(&other, E2E_ROLE_APP, "phone-2", p.k, p.hn, p.an, &err), 0);
	open_refused(&other, blob, n);
	/* Another session (either nonce changed). */
	memcpy(nonce, p.hn, sizeof(nonce));
	nonce[0] ^= 1;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, DEV, p.k, nonce, p.an, &err), 0);
	open_refused(&other, blob, n);
	memcpy(nonce, p.an, sizeof(nonce));
	nonce[15] ^= 0x80;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, DEV, p.k, p.hn, nonce, &err), 0);
	open_refused(&other, blob, n);
	/* Nonces swapped. */
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, DEV, p.k, p.an, p.hn, &err), 0);
	open_refused(&other, blob, n);
	/* Another channel key. */
	memcpy(k2, p.k, sizeof(k2));
	k2[31] ^= 1;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, DEV, k2, p.hn, p.an, &err), 0);
	open_refused(&other, blob, n);
	/* The same K and nonces give the same keys (the control case). */
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, DEV, p.k, p.hn, p.an, &err), 0);
	open_ok(&other, blob, n, "hello");

	/* Renewing a session with its own device id buffer works. */
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, other.es_device_id, p.k, p.hn,
					  p.an, &err),
			 0);
	assert_string_equal(other.es_device_id, DEV);
	assert_int_equal(other.es_recv_ctr, 0);

	/* Bad device ids and roles. */
	err.status = 0;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, "", p.k, p.hn, p.an, &err), -1);
	assert_int_equal(err.status, 101);
	assert_false(other.es_ready);
	char longid[MSSP_KEYSTORE_MAX_ID + 2];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	err.status = 0;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, longid, p.k, p.hn, p.an, &err), -1);
	assert_int_equal(err.status, 101);
	longid[MSSP_KEYSTORE_MAX_ID] = '\0'; /* exactly the maximum: fine */
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, longid, p.k, p.hn, p.an, &err), 0);
	err.status = 0;
	assert_int_equal(e2e_session_init(&other, E2E_ROLE_APP, "a\nb", p.k, p.hn, p.an, &err), -1);
	assert_int_equal(err.status, 101);
	err.status = 0;
	assert_int_equal(e2e_session_init(&other, (enum e2e_role)3, DEV, p.k, p.hn, p.an, &err), -1);
	assert_int_equal(err.status, 900);

	/* Not ready: wiped sessions refuse to work. */
	e2e_session_wipe(&other);
	err.status = 0;
	assert_int_equal(e2e_seal(&other, (const unsigned char *)"x", 1, blob, sizeof(blob), &n,
				  &err),
			 -1);
	assert_int_equal(err.status, 900);
	e2e_session_wipe(NULL);
	pair_wipe(&p);
	for (size_t i = 0; i < E2E_KEY_LEN; i++)
		assert_int_equal(p.home.es_k_send[i] | p.home.es_k_recv[i], 0);
	assert_false(p.home.es_ready);
}

/* HKDF-SHA256 written out in the test, independent of e2e.c. */
static void
t_hkdf(const unsigned char *ikm, size_t ikm_len, const void *salt, size_t salt_len,
       const char *info, unsigned char out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM prm[] = {
		OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
		OSSL_PARAM_END,
	};

	assert_non_null(c);
	assert_int_equal(EVP_KDF_derive(c, out, 32, prm), 1);
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
}

/* AES-256-GCM with the IV and AAD of the header comment, by hand. */
static int
t_gcm(bool enc, const unsigned char key[32], uint64_t ctr, const char *dev,
      const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[16])
{
	unsigned char iv[12] = { 0 }, aad[128], fin[16];
	size_t alen = 0;
	int n, ok;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	for (int i = 0; i < 8; i++)
		iv[4 + i] = (unsigned char)(ctr >> (56 - 8 * i));
	memcpy(aad, "mssp-e2e-v1", 12); /* with the 0x00 */
	alen = 12;
	memcpy(aad + alen, dev, strlen(dev) + 1);
	alen += strlen(dev) + 1;
	aad[alen++] = E2E_BLOB_SEALED;
	memcpy(aad + alen, iv + 4, 8);
	alen += 8;
	assert_int_equal(EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), key, iv, enc, NULL), 1);
	assert_int_equal(EVP_CipherUpdate(c, NULL, &n, aad, (int)alen), 1);
	assert_int_equal(EVP_CipherUpdate(c, out, &n, in, (int)len), 1);
	if (!enc)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag), 1);
	ok = EVP_CipherFinal_ex(c, fin, &n);
	if (enc && ok == 1)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(c);
	return ok == 1 ? 0 : -1;
}

/* The blob format and key schedule as documented, checked with OpenSSL
 * directly, so the phone and HomeMSSP can never drift apart silently. */
static void
test_format_known(void **state)
{
	struct pair p;
	unsigned char salt[32], h2a[32], a2h[32], blob[64], pt[64], tag[16];
	size_t n;
	(void)state;

	pair_setup(&p, DEV);
	memcpy(salt, p.hn, 16);
	memcpy(salt + 16, p.an, 16);
	t_hkdf(p.k, 32, salt, 32, "mssp-e2e-h2a-v1", h2a);
	t_hkdf(p.k, 32, salt, 32, "mssp-e2e-a2h-v1", a2h);
	assert_memory_equal(p.home.es_k_send, h2a, 32);
	assert_memory_equal(p.home.es_k_recv, a2h, 32);
	assert_memory_equal(p.app.es_k_send, a2h, 32);
	assert_memory_equal(p.app.es_k_recv, h2a, 32);

	n = seal(&p.home, "format", blob, sizeof(blob));
	assert_int_equal(t_gcm(false, h2a, 1, DEV, blob + 9, n - 25, pt, blob + n - 16), 0);
	assert_memory_equal(pt, "format", 6);

	/* A blob built by hand opens; one with counter 0 (validly sealed)
	 * is refused, as is the maximum counter after it has been used. */
	memcpy(pt, "by hand", 7);
	blob[0] = E2E_BLOB_SEALED;
	memcpy(blob + 1, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(t_gcm(true, a2h, 0, DEV, pt, 7, blob + 9, tag), 0);
	memcpy(blob + 16, tag, 16);
	open_refused(&p.home, blob, 32);
	memcpy(blob + 1, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	assert_int_equal(t_gcm(true, a2h, UINT64_MAX, DEV, pt, 7, blob + 9, tag), 0);
	memcpy(blob + 16, tag, 16);
	open_ok(&p.home, blob, 32, "by hand");
	open_refused(&p.home, blob, 32);
	assert_int_equal(p.home.es_recv_ctr, UINT64_MAX);

	/* The sender's counter never wraps: the last value is used once,
	 * then sealing stops. */
	struct pki_err err;
	p.app.es_send_ctr = UINT64_MAX - 1;
	n = seal(&p.app, "last", blob, sizeof(blob));
	assert_memory_equal(blob + 1, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	err.status = 0;
	assert_int_equal(e2e_seal(&p.app, (const unsigned char *)"x", 1, blob, sizeof(blob), &n,
				  &err),
			 -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(p.app.es_send_ctr, UINT64_MAX);
	pair_wipe(&p);
}

static void
test_max_size(void **state)
{
	struct pair p;
	size_t cap = MSSP_E2E_MAX_PLAIN + E2E_SEAL_OVERHEAD + 1, n = 0, m = 0;
	unsigned char *pt = malloc(MSSP_E2E_MAX_PLAIN + 1), *blob = malloc(cap),
		      *out = malloc(MSSP_E2E_MAX_PLAIN + 1);
	struct pki_err err;
	(void)state;

	assert_non_null(pt);
	assert_non_null(blob);
	assert_non_null(out);
	pair_setup(&p, DEV);
	assert_int_equal(RAND_bytes(pt, MSSP_E2E_MAX_PLAIN + 1), 1);
	assert_int_equal(e2e_seal(&p.app, pt, MSSP_E2E_MAX_PLAIN, blob, cap, &n, &err), 0);
	assert_int_equal(n, MSSP_E2E_MAX_PLAIN + E2E_SEAL_OVERHEAD);
	assert_int_equal(e2e_open(&p.home, blob, n, out, MSSP_E2E_MAX_PLAIN, &m, &err), 0);
	assert_int_equal(m, MSSP_E2E_MAX_PLAIN);
	assert_memory_equal(out, pt, m);

	/* One byte more: the sender refuses (900), the receiver too (101). */
	err.status = 0;
	assert_int_equal(e2e_seal(&p.app, pt, MSSP_E2E_MAX_PLAIN + 1, blob, cap, &n, &err), -1);
	assert_int_equal(err.status, 900);
	err.status = 0;
	assert_int_equal(
		e2e_open(&p.home, blob, MSSP_E2E_MAX_PLAIN + E2E_SEAL_OVERHEAD + 1, out,
			 MSSP_E2E_MAX_PLAIN + 1, &m, &err),
		-1);
	assert_int_equal(err.status, 101);
	pair_wipe(&p);
	free(pt);
	free(blob);
	free(out);
}

static void
test_auth(void **state)
{
	struct pki_err err;
	EVP_PKEY *dev = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	unsigned char ch[E2E_CHALLENGE_LEN], an[E2E_NONCE_LEN], x[E2E_CHALLENGE_LEN];
	unsigned char *spki = NULL, *ospki = NULL, *rspki = NULL, *sig = NULL, bad[256];
	size_t sl = 0, ol = 0, rl = 0, siglen = 0;
	(void)state;

	assert_non_null(dev);
	assert_non_null(other);
	assert_non_null(rsa);
	assert_int_equal(RAND_bytes(ch, sizeof(ch)), 1);
	assert_int_equal(RAND_bytes(an, sizeof(an)), 1);
	assert_int_equal(e2e_spki_der(dev, &spki, &sl, &err), 0);
	assert_int_equal(e2e_spki_der(other, &ospki, &ol, &err), 0);
	assert_int_equal(e2e_spki_der(rsa, &rspki, &rl, &err), 0);
	assert_int_equal(e2e_auth_sign(dev, DEV, ch, an, &sig, &siglen, &err), 0);
	assert_true(siglen > 0 && siglen <= 72);
	assert_int_equal(e2e_auth_verify(spki, sl, DEV, ch, an, sig, siglen, &err), 0);

#define REFUSED(call)                                                                         \
	do {                                                                                  \
		err.status = 0;                                                               \
		assert_int_equal((call), -1);                                                 \
		assert_int_equal(err.status, 101);                                            \
	} while (0)
	/* Wrong key, challenge, device, nonce. */
	REFUSED(e2e_auth_verify(ospki, ol, DEV, ch, an, sig, siglen, &err));
	memcpy(x, ch, sizeof(x));
	x[0] ^= 1;
	REFUSED(e2e_auth_verify(spki, sl, DEV, x, an, sig, siglen, &err));
	REFUSED(e2e_auth_verify(spki, sl, "phone-2", ch, an, sig, siglen, &err));
	memcpy(x, an, E2E_NONCE_LEN);
	x[15] ^= 1;
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, x, sig, siglen, &err));
	/* Damaged signature, empty, too long; key not P-256, garbage key. */
	memcpy(bad, sig, siglen);
	bad[siglen - 1] ^= 1;
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, an, bad, siglen, &err));
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, an, sig, siglen - 1, &err));
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, an, sig, 0, &err));
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, an, NULL, 0, &err));
	REFUSED(e2e_auth_verify(rspki, rl, DEV, ch, an, sig, siglen, &err));
	REFUSED(e2e_auth_verify(sig, siglen, DEV, ch, an, sig, siglen, &err));
	REFUSED(e2e_auth_verify(NULL, 0, DEV, ch, an, sig, siglen, &err));
	REFUSED(e2e_auth_verify(spki, sl, "", ch, an, sig, siglen, &err));
	/* A signature by another key. */
	OPENSSL_free(sig);
	assert_int_equal(e2e_auth_sign(other, DEV, ch, an, &sig, &siglen, &err), 0);
	REFUSED(e2e_auth_verify(spki, sl, DEV, ch, an, sig, siglen, &err));
	assert_int_equal(e2e_auth_verify(ospki, ol, DEV, ch, an, sig, siglen, &err), 0);
	OPENSSL_free(sig);
	sig = NULL;
	/* Signing: bad device id (101), wrong key type (900). */
	REFUSED(e2e_auth_sign(dev, "a b", ch, an, &sig, &siglen, &err));
	assert_null(sig);
	err.status = 0;
	assert_int_equal(e2e_auth_sign(rsa, DEV, ch, an, &sig, &siglen, &err), -1);
	assert_int_equal(err.status, 900);
	assert_null(sig);
#undef REFUSED

	OPENSSL_free(spki);
	OPENSSL_free(ospki);
	OPENSSL_free(rspki);
	EVP_PKEY_free(dev);
	EVP_PKEY_free(other);
	EVP_PKEY_free(rsa);
}

static void
test_hello(void **state)
{
	unsigned char h1[E2E_HELLO_LEN], h2[E2E_HELLO_LEN], n1[E2E_NONCE_LEN], n2[E2E_NONCE_LEN];
	unsigned char big[E2E_HELLO_LEN + 1], got[E2E_NONCE_LEN];
	struct pki_err err;
	(void)state;

	assert_int_equal(e2e_hello(h1, n1, &err), 0);
	assert_int_equal(e2e_hello(h2, n2, &err), 0);
	assert_int_equal(h1[0], E2E_BLOB_HELLO);
	assert_memory_equal(h1 + 1, n1, E2E_NONCE_LEN);
	assert_memory_not_equal(n1, n2, E2E_NONCE_LEN); /* fresh each time */
	assert_int_equal(e2e_hello_parse(h1, sizeof(h1), got, &err), 0);
	assert_memory_equal(got, n1, E2E_NONCE_LEN);

	memcpy(big, h1, sizeof(h1));
	big[E2E_HELLO_LEN] = 0;
	for (size_t len = 0; len <= sizeof(big); len++) {
		if (len == E2E_HELLO_LEN)
			continue;
		err.status = 0;
		assert_int_equal(e2e_hello_parse(big, len, got, &err), -1);
		assert_int_equal(err.status, 101);
	}
	err.status = 0;
	assert_int_equal(e2e_hello_parse(NULL, E2E_HELLO_LEN, got, &err), -1);
	assert_int_equal(err.status, 101);
	big[0] = E2E_BLOB_SEALED;
	err.status = 0;
	assert_int_equal(e2e_hello_parse(big, E2E_HELLO_LEN, got, &err), -1);
	assert_int_equal(err.status, 101);
}

/* ---- activation ----------------------------------------------------------- */

static void
test_activation_transcript(void **state)
{
	uint8_t an[E2E_NONCE_LEN], hn[E2E_NONCE_LEN], a[3] = { 1, 2, 3 }, b[2] = { 4, 5 },
		c[1] = { 6 }, big[MSSP_KEYSTORE_MAX_SPKI + 1];
	uint8_t *t, *t2, exp[200], *p = exp;
	size_t len = 99, len2 = 0;
	(void)state;

	memset(an, 0xaa, sizeof(an));
	memset(hn, 0xbb, sizeof(hn));
	t = e2e_activation_transcript("+358", an, hn, a, 3, b, 2, c, 1, &len);
	assert_non_null(t);
	/* The layout, built by hand: label, then 4-byte big-endian length and
	 * bytes of msisdn, app nonce, home nonce, home binding, app binding,
	 * device key. */
	memcpy(p, "mssp-activate-v1", 16);
	p += 16;
#define LV(d, n)                                                                              \
	do {                                                                                  \
		*p++ = 0, *p++ = 0, *p++ = 0, *p++ = (uint8_t)(n);                            \
		memcpy(p, (d), (n));                                                          \
		p += (n);                                                                     \
	} while (0)
	LV("+358", 4);
	LV(an, 16);
	LV(hn, 16);
	LV(a, 3);
	LV(b, 2);
	LV(c, 1);
#undef LV
	assert_int_equal(len, (size_t)(p - exp));
	assert_memory_equal(t, exp, len);
	/* Moving a boundary changes the bytes (length prefixes). */
	t2 = e2e_activation_transcript("+358", an, hn, a, 2, a + 2, 1, c, 1, &len2);
	assert_non_null(t2);
	assert_true(len2 != len - 1 || memcmp(t, t2, len2) != 0);
	free(t2);
	/* Swapped nonces differ. */
	t2 = e2e_activation_transcript("+358", hn, an, a, 3, b, 2, c, 1, &len2);
	assert_int_equal(len2, len);
	assert_memory_not_equal(t, t2, len);
	free(t2);
	free(t);

	/* Refusals: empty or over-long MSISDN, missing or over-long SPKIs. */
	char m[MSSP_STORE_MAX_MSISDN + 2];
	memset(m, '1', sizeof(m) - 1);
	m[MSSP_STORE_MAX_MSISDN] = '\0';
	t = e2e_activation_transcript(m, an, hn, a, 3, b, 2, c, 1, &len);
	assert_non_null(t);
	free(t);
	m[MSSP_STORE_MAX_MSISDN] = '1';
	m[MSSP_STORE_MAX_MSISDN + 1] = '\0';
	assert_null(e2e_activation_transcript(m, an, hn, a, 3, b, 2, c, 1, &len));
	assert_int_equal(len, 0);
	assert_null(e2e_activation_transcript("", an, hn, a, 3, b, 2, c, 1, &len));
	assert_null(e2e_activation_transcript(NULL, an, hn, a, 3, b, 2, c, 1, &len));
	assert_null(e2e_activation_transcript("+1", NULL, hn, a, 3, b, 2, c, 1, &len));
	assert_null(e2e_activation_transcript("+1", an, hn, NULL, 0, b, 2, c, 1, &len));
	assert_null(e2e_activation_transcript("+1", an, hn, a, 0, b, 2, c, 1, &len));
	assert_null(e2e_activation_transcript("+1", an, hn, a, 3, b, 0, c, 1, &len));
	assert_null(e2e_activation_transcript("+1", an, hn, a, 3, b, 2, c, 0, &len));
	memset(big, 7, sizeof(big));
	assert_null(e2e_activation_transcript("+1", an, hn, big, sizeof(big), b, 2, c, 1, &len));
	t = e2e_activation_transcript("+1", an, hn, big, sizeof(big) - 1, b, 2, c, 1, &len);
	assert_non_null(t);
	free(t);
	assert_null(e2e_activation_transcript("+1", an, hn, a, 3, b, 2, c, 1, NULL));
}

static void
test_activation_mac(void **state)
{
	uint8_t h[32], h2[32], exp[32], mac[32], mac2[32], t[40];
	unsigned int elen = 0;
	(void)state;

	/* h = SHA-256 of exactly the 12 digits */
	assert_int_equal(e2e_activation_code_hash("123456789012", h), 0);
	assert_non_null(SHA256((const unsigned char *)"123456789012", 12, exp));
	assert_memory_equal(h, exp, 32);
	assert_int_equal(e2e_activation_code_hash("123456789013", h2), 0);
	assert_memory_not_equal(h, h2, 32);
	assert_int_equal(e2e_activation_code_hash("12345678901", h2), -1);
	assert_int_equal(e2e_activation_code_hash("1234567890123", h2), -1);
	assert_int_equal(e2e_activation_code_hash("1234-5678-9012", h2), -1);
	assert_int_equal(e2e_activation_code_hash("12345678901a", h2), -1);
	assert_int_equal(e2e_activation_code_hash("12345678901 ", h2), -1);
	assert_int_equal(e2e_activation_code_hash("", h2), -1);
	assert_int_equal(e2e_activation_code_hash(NULL, h2), -1);

	/* MAC = HMAC-SHA256(h, T || label || extra), recomputed with the
	 * one-shot HMAC over the concatenation. */
	memset(t, 0x5c, sizeof(t));
	uint8_t cat[64];
	memcpy(cat, t, sizeof(t));
	memcpy(cat + sizeof(t), "app", 3);
	assert_non_null(HMAC(EVP_sha256(), h, 32, cat, sizeof(t) + 3, exp, &elen));
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "app", NULL, mac), 0);
	assert_memory_equal(mac, exp, 32);
	memcpy(cat + sizeof(t), "homedev-1", 9);
	assert_non_null(HMAC(EVP_sha256(), h, 32, cat, sizeof(t) + 9, exp, &elen));
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "home", "dev-1", mac2), 0);
	assert_memory_equal(mac2, exp, 32);
	/* Each input matters: label, extra, key, transcript. */
	assert_memory_not_equal(mac, mac2, 32);
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "home", "dev-2", mac), 0);
	assert_memory_not_equal(mac, mac2, 32);
	assert_int_equal(e2e_activation_mac(h2, t, sizeof(t), "home", "dev-1", mac), 0);
	assert_memory_not_equal(mac, mac2, 32);
	t[39] ^= 1;
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "home", "dev-1", mac), 0);
	assert_memory_not_equal(mac, mac2, 32);
	/* Only the two labels. */
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "APP", NULL, mac), -1);
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), "", NULL, mac), -1);
	assert_int_equal(e2e_activation_mac(h, t, sizeof(t), NULL, NULL, mac), -1);
	assert_int_equal(e2e_activation_mac(h, NULL, 0, "app", NULL, mac), -1);
	assert_int_equal(e2e_activation_mac(NULL, t, sizeof(t), "app", NULL, mac), -1);
}

/* SPKI DER of `k` in compressed-point form (a valid but non-canonical
 * encoding of the same key). */
static size_t
compressed_spki(EVP_PKEY *k, unsigned char **out)
{
	EVP_PKEY *c = EVP_PKEY_dup(k);
	int n;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(c, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
							 "compressed"),
			 1);
	*out = NULL;
	n = i2d_PUBKEY(c, out);
	assert_true(n > 0);
	EVP_PKEY_free(c);
	return (size_t)n;
}

static void
test_sign_verify_msg(void **state)
{
	struct pki_err err;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	unsigned char *spki = NULL, *ospki = NULL, *pspki = NULL, *rspki = NULL, *cspki = NULL;
	size_t sl, ol, pl, rl, cl, siglen = 0;
	uint8_t sig[MSSP_AFE_MAX_SIG], bad[MSSP_AFE_MAX_SIG + 8], ext[MSSP_KEYSTORE_MAX_SPKI];
	const uint8_t msg[] = "mssp-activate-v1 transcript";
	(void)state;

	assert_non_null(k);
	assert_non_null(o);
	assert_non_null(p384);
	assert_non_null(rsa);
	assert_int_equal(e2e_spki_der(k, &spki, &sl, &err), 0);
	assert_int_equal(e2e_spki_der(o, &ospki, &ol, &err), 0);
	assert_int_equal(e2e_spki_der(p384, &pspki, &pl, &err), 0);
	assert_int_equal(e2e_spki_der(rsa, &rspki, &rl, &err), 0);
	cl = compressed_spki(k, &cspki);

	assert_int_equal(e2e_sign_msg(k, msg, sizeof(msg), sig, &siglen, &err), 0);
	assert_true(siglen > 0 && siglen <= 72);
	assert_int_equal(e2e_verify_msg(spki, sl, msg, sizeof(msg), sig, siglen, &err), 0);
	/* An independent verification with raw OpenSSL (ECDSA, SHA-256). */
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL), 1);
		assert_int_equal(EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)), 1);
		EVP_MD_CTX_free(md);
	}

#define REFUSED(call)                                                                         \
	do {                                                                                  \
		err.status = 0;                                                               \
		assert_int_equal((call), -1);                                                 \
		assert_int_equal(err.status, 101);                                            \
	} while (0)
	/* other key, other message, damaged, truncated, empty, too long */
	REFUSED(e2e_verify_msg(ospki, ol, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg) - 1, sig, siglen, &err));
	memcpy(bad, sig, siglen);
	bad[siglen / 2] ^= 0x10;
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg), bad, siglen, &err));
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg), sig, siglen - 1, &err));
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg), sig, 0, &err));
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg), NULL, 0, &err));
	memset(bad, 0x30, sizeof(bad));
	REFUSED(e2e_verify_msg(spki, sl, msg, sizeof(msg), bad, MSSP_AFE_MAX_SIG + 1, &err));
	/* keys: P-384, RSA, compressed point (same key, other encoding),
	 * trailing byte, truncated, garbage, none */
	REFUSED(e2e_verify_msg(pspki, pl, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(rspki, rl, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(cspki, cl, msg, sizeof(msg), sig, siglen, &err));
	memcpy(ext, spki, sl);
	ext[sl] = 0;
	REFUSED(e2e_verify_msg(ext, sl + 1, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(spki, sl - 1, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(sig, siglen, msg, sizeof(msg), sig, siglen, &err));
	REFUSED(e2e_verify_msg(NULL, 0, msg, sizeof(msg), sig, siglen, &err));
#undef REFUSED
	/* signing with a key that is not P-256: 900 */
	err.status = 0;
	assert_int_equal(e2e_sign_msg(rsa, msg, sizeof(msg), sig, &siglen, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(siglen, 0);
	assert_int_equal(e2e_sign_msg(p384, msg, sizeof(msg), sig, &siglen, &err), -1);
	assert_int_equal(e2e_sign_msg(NULL, msg, sizeof(msg), sig, &siglen, &err), -1);

	OPENSSL_free(spki);
	OPENSSL_free(ospki);
	OPENSSL_free(pspki);
	OPENSSL_free(rspki);
	OPENSSL_free(cspki);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}

int
main(void)

{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_replay_reorder_reflection),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_wrong_device_or_session),
		cmocka_unit_test(test_format_known),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_activation_transcript),
		cmocka_unit_test(test_activation_mac),
		cmocka_unit_test(test_sign_verify_msg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
