/*
 * fuzz_e2e.c - libFuzzer target for what src/pki/e2e.c parses from a peer
 * (through the AFE, which must not be able to forge anything): SEALED
 * blobs (e2e_open), HELLO blobs (e2e_hello_parse), device authentication
 * signatures with the device's registered key (e2e_auth_verify) and the
 * peer's binding key (e2e_binding_derive).
 *
 * The session is fixed: channel key, device id and both nonces are the
 * constants below, so the seeds in tests/fuzz/corpus/e2e/ can hold blobs
 * that really open (they were sealed with these constants; the key is a
 * test constant, nothing else uses it).  The first byte (modulo 6) picks the mode:
 *   0 / 1  the rest is a sequence of blobs ([2-byte big-endian length]
 *          [bytes], the last one may be short), opened in turn by a fresh
 *          app session (0: blobs from HomeMSSP) or HomeMSSP session (1:
 *          blobs from the app);
 *   2      the rest is a HELLO blob;
 *   3      device authentication, raw: [2-byte length][SPKI DER]
 *          [32-byte challenge][16-byte app nonce][signature];
 *   4      device authentication against the harness's own key (made in
 *          LLVMFuzzerInitialize, so no input can know it): its valid SPKI
 *          and signature over the fixed challenge, patched by up to 16
 *          ([2-byte offset][xor byte]) from the input (the fuzz_cms idea),
 *          offsets running over SPKI || challenge || nonce || signature;
 *   5      binding agreement with the rest as the peer's SPKI.
 * Oracles (abort()):
 *   - e2e_open never accepts a blob that is not exactly what e2e_seal of
 *     the peer makes for that plaintext and counter (a forged, altered or
 *     reflected blob must be refused); it accepts only increasing
 *     counters; a refused blob changes nothing in the session and leaves no
 *     unauthenticated plaintext in the output buffer; refusals are 101;
 *   - a HELLO is accepted iff it is 17 bytes starting with 0x01, and the
 *     nonce is what follows;
 *   - an accepted authentication verifies independently with OpenSSL over
 *     the documented message, is refused for any other challenge, nonce or
 *     device id, and in mode 4 is by the harness's key over the unpatched
 *     challenge and nonce;
 *   - OpenSSL's error queue is empty after every call.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/e2e.h"
#include "util/limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed session.  The seeds were made once with e2e_seal and
 * e2e_auth_sign (throwaway key, only its SPKI kept) from these constants:
 * change them and the blob seeds no longer open. */
static const char fz_dev[] = "fuzz-phone-1@example.org";
static const unsigned char fz_key[E2E_KEY_LEN] = {
	0x6f, 0x70, 0x65, 0x6e, 0x6d, 0x73, 0x73, 0x70, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x65, 0x32,
	0x65, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x30, 0x30, 0x30, 0x31,
};
static const unsigned char fz_home_nonce[E2E_NONCE_LEN] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const unsigned char fz_app_nonce[E2E_NONCE_LEN] = {
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};
/* The challenge the raw-mode seeds sign (mode 3), and the one the
 * harness's key signs (mode 4). */
static const unsigned char fz_challenge[E2E_CHALLENGE_LEN] = {
	0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
	0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
};

#define FZ_MAX_PATCHES 16
#define FZ_FILL 0xa5

/* Set once in LLVMFuzzerInitialize, read-only afterwards. */
static struct e2e_session fz_home, fz_app; /* fresh sessions, copied */
static EVP_PKEY *fz_own;		   /* harness key (modes 4, 5) */
static unsigned char *fz_spki;
static size_t fz_spki_len;
static unsigned char *fz_sig;
static size_t fz_sig_len;
static volatile size_t sink;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct pki_err err;

	(void)argc;
	(void)argv;
	if (e2e_session_init(&fz_home, E2E_ROLE_HOME, fz_dev, fz_key, fz_home_nonce, fz_app_nonce,
			     &err) != 0 ||
	    e2e_session_init(&fz_app, E2E_ROLE_APP, fz_dev, fz_key, fz_home_nonce, fz_app_nonce,
			     &err) != 0)
		abort();
	fz_own = e2e_binding_keygen(&err);
	if (fz_own == NULL || e2e_spki_der(fz_own, &fz_spki, &fz_spki_len, &err) != 0 ||
	    e2e_auth_sign(fz_own, fz_dev, fz_challenge, fz_app_nonce, &fz_sig, &fz_sig_len, &err) != 0)
		abort();
	return 0;
}

static void
queue_empty(void)
{
	if (ERR_peek_error() != 0)
		abort();
}

static uint64_t
be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- modes 0 and 1: SEALED blobs ---------------------------------------- */

/* `rx` opens what `tx_tmpl` (its peer, fresh) seals. */
static void
open_blobs(const struct e2e_session *rx_tmpl, const struct e2e_session *tx_tmpl,
	   const uint8_t *data, size_t size)
{
	struct e2e_session rx = *rx_tmpl, before;
	static unsigned char out[MSSP_E2E_MAX_PLAIN + 1], again[MSSP_E2E_MAX_PLAIN + E2E_SEAL_OVERHEAD];
	struct pki_err err;

	while (size > 0) {
		size_t len, outlen = 0, cap, ct;
		const uint8_t *blob;
		int rc;

		if (size < 2) {
			len = size;
			blob = data;
			size = 0;
		} else {
			len = (size_t)data[0] << 8 | data[1];
			data += 2;
			size -= 2;
			if (len > size)
				len = size;
			blob = data;
			data += len;
			size -= len;
		}
		ct = len >= E2E_SEAL_OVERHEAD ? len - E2E_SEAL_OVERHEAD : 0;
		cap = ct < sizeof(out) ? ct : sizeof(out);
		memset(out, FZ_FILL, cap);
		before = rx;
		memset(&err, 0, sizeof(err));
		rc = e2e_open(&rx, blob, len, out, cap, &outlen, &err);
		queue_empty();
		if (rc != 0) {
			/* a refusal is the peer's fault (cap is always enough
			 * for what may open) and changes nothing */
			if (err.status != 101 || err.detail[0] == '\0' ||
			    memcmp(&before, &rx, sizeof(rx)) != 0)
				abort();
			/* untouched, or wiped: never unauthenticated bytes */
			for (size_t i = 0; i < cap; i++)
				if (out[i] != FZ_FILL && out[i] != 0)
					abort();
			if (cap > 0 && out[0] == 0)
				for (size_t i = 0; i < cap; i++)
					if (out[i] != 0)
						abort();
			continue;
		}
		/* Accepted: it must be the peer's own seal of this plaintext at
		 * this counter, byte for byte (e2e_seal is deterministic). */
		{
			struct e2e_session tx = *tx_tmpl;
			uint64_t ctr;
			size_t alen = 0;

			if (len < E2E_SEAL_OVERHEAD || outlen != ct || blob[0] != E2E_BLOB_SEALED)
				abort();
			ctr = be64(blob + 1);
			if (ctr == 0 || ctr <= before.es_recv_ctr || rx.es_recv_ctr != ctr)
				abort();
			tx.es_send_ctr = ctr - 1;
			if (e2e_seal(&tx, out, outlen, again, sizeof(again), &alen, &err) != 0)
				abort();
			if (alen != len || memcmp(again, blob, len) != 0)
				abort(); /* a forgery was accepted */
			sink += outlen;
		}
	}
	e2e_session_wipe(&rx);
}

/* ---- mode 2: HELLO ------------------------------------------------------- */

static void
hello(const uint8_t *data, size_t size)
{
	unsigned char nonce[E2E_NONCE_LEN];
	struct pki_err err;
	bool ok = size == E2E_HELLO_LEN && data[0] == E2E_BLOB_HELLO;

	memset(nonce, FZ_FILL, sizeof(nonce));
	if (e2e_hello_parse(size > 0 ? data : NULL, size, nonce, &err) == 0) {
		if (!ok || memcmp(nonce, data + 1, E2E_NONCE_LEN) != 0)
			abort();
	} else if (ok || err.status != 101) {
		abort();
	}
	queue_empty();
}

/* ---- modes 3 and 4: device authentication -------------------------------- */

/* The documented message, checked with OpenSSL alone. */
static bool
independent_verify(const unsigned char *spki, size_t spki_len, const char *dev,
		   const unsigned char *challenge, const unsigned char *nonce,
		   const unsigned char *sig, size_t siglen)
{
	static const char label[] = "mssp-afe-auth-v1";
	unsigned char msg[sizeof(label) + MSSP_KEYSTORE_MAX_ID + 1 + E2E_CHALLENGE_LEN +
			  E2E_NONCE_LEN];
	const unsigned char *p = spki;
	size_t n = 0, dlen = strlen(dev);
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok;

	memcpy(msg, label, sizeof(label)); /* with its NUL */
	n = sizeof(label);
	memcpy(msg + n, dev, dlen);
	n += dlen;
	msg[n++] = 0;
	memcpy(msg + n, challenge, E2E_CHALLENGE_LEN);
	n += E2E_CHALLENGE_LEN;
	memcpy(msg + n, nonce, E2E_NONCE_LEN);
	n += E2E_NONCE_LEN;
	ok = k != NULL && md != NULL && p == spki + spki_len &&
	     EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
	     EVP_DigestVerify(md, sig, siglen, msg, n) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok;
}

static int
verify(const unsigned char *spki, size_t spki_len, const char *dev, const unsigned char *challenge,
       const unsigned char *nonce, const unsigned char *sig, size_t siglen)
{
	struct pki_err err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = e2e_auth_verify(spki, spki_len, dev, challenge, nonce, sig, siglen, &err);
	queue_empty();
	if (rc != 0 && (err.status != 101 || err.detail[0] == '\0'))
		abort();
	return rc;
}

/* An accepted signature is bound to its challenge, nonce and device id. */
static void
check_accepted(const unsigned char *spki, size_t spki_len, const unsigned char *challenge,
	       const unsigned char *nonce, const unsigned char *sig, size_t siglen)
{
	unsigned char c2[E2E_CHALLENGE_LEN], n2[E2E_NONCE_LEN];

	if (!independent_verify(spki, spki_len, fz_dev, challenge, nonce, sig, siglen))
		abort();
	memcpy(c2, challenge, sizeof(c2));
	c2[sig[0] % sizeof(c2)] ^= 0x01;
	memcpy(n2, nonce, sizeof(n2));
	n2[sig[siglen - 1] % sizeof(n2)] ^= 0x80;
	if (verify(spki, spki_len, fz_dev, c2, nonce, sig, siglen) == 0 ||
	    verify(spki, spki_len, fz_dev, challenge, n2, sig, siglen) == 0 ||
	    verify(spki, spki_len, "fuzz-phone-2@example.org", challenge, nonce, sig, siglen) == 0)
		abort();
}

static void
auth_raw(const uint8_t *data, size_t size)
{
	size_t spki_len;
	const uint8_t *spki, *challenge, *nonce, *sig;
	size_t siglen;

	if (size < 2)
		return;
	spki_len = (size_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	if (spki_len > size || size - spki_len < E2E_CHALLENGE_LEN + E2E_NONCE_LEN)
		return;
	spki = data;
	challenge = spki + spki_len;
	nonce = challenge + E2E_CHALLENGE_LEN;
	sig = nonce + E2E_NONCE_LEN;
	siglen = size - spki_len - E2E_CHALLENGE_LEN - E2E_NONCE_LEN;
	if (verify(spki_len > 0 ? spki : NULL, spki_len, fz_dev, challenge, nonce,
		   siglen > 0 ? sig : NULL, siglen) == 0) {
		check_accepted(spki, spki_len, challenge, nonce, sig, siglen);
		sink += siglen;
	}
}

static void
auth_patched(const uint8_t *data, size_t size)
{
	size_t total = fz_spki_len + E2E_CHALLENGE_LEN + E2E_NONCE_LEN + fz_sig_len;
	unsigned char *buf = malloc(total), *spki, *challenge, *nonce, *sig;
	EVP_PKEY *k;
	const unsigned char *p;

	if (buf == NULL)
		return;
	spki = buf;
	challenge = spki + fz_spki_len;
	nonce = challenge + E2E_CHALLENGE_LEN;
	sig = nonce + E2E_NONCE_LEN;
	memcpy(spki, fz_spki, fz_spki_len);
	memcpy(challenge, fz_challenge, E2E_CHALLENGE_LEN);
	memcpy(nonce, fz_app_nonce, E2E_NONCE_LEN);
	memcpy(sig, fz_sig, fz_sig_len);
	for (int i = 0; i < FZ_MAX_PATCHES && size >= 3; i++, data += 3, size -= 3)
		buf[((size_t)data[0] << 8 | data[1]) % total] ^= data[2];
	if (verify(spki, fz_spki_len, fz_dev, challenge, nonce, sig, fz_sig_len) == 0) {
		check_accepted(spki, fz_spki_len, challenge, nonce, sig, fz_sig_len);
		/* the harness's key (another encoding of it at most), over
		 * what it signed */
		p = spki;
		k = d2i_PUBKEY(NULL, &p, (long)fz_spki_len);
		if (k == NULL || EVP_PKEY_eq(k, fz_own) != 1 ||
		    memcmp(challenge, fz_challenge, E2E_CHALLENGE_LEN) != 0 ||
		    memcmp(nonce, fz_app_nonce, E2E_NONCE_LEN) != 0)
			abort();
		EVP_PKEY_free(k);
		ERR_clear_error();
	}
	free(buf);
}

/* ---- mode 5: binding agreement -------------------------------------------- */

static void
binding(const uint8_t *data, size_t size)
{
	unsigned char k[E2E_KEY_LEN];
	struct pki_err err;

	memset(&err, 0, sizeof(err));
	if (e2e_binding_derive(fz_own, size > 0 ? data : NULL, size, fz_dev, k, &err) == 0)
		sink += k[0];
	else if (err.status != 101)
		abort();
	queue_empty();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		open_blobs(&fz_app, &fz_home, data + 1, size - 1);
		break;
	case 1:
		open_blobs(&fz_home, &fz_app, data + 1, size - 1);
		break;
	case 2:
		hello(data + 1, size - 1);
		break;
	case 3:
		auth_raw(data + 1, size - 1);
		break;
	case 4:
		auth_patched(data + 1, size - 1);
		break;
	default:
		binding(data + 1, size - 1);
		break;
	}
	return 0;
}
