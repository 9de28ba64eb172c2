/*
 * e2e.h - end-to-end protection of the app channel between HomeMSSP and
 * the phone app (issue 4 item 6).  The AFE relays these blobs and cannot
 * read or forge them.
 *
 * Keys:
 *   - At device binding both ends agree a 32-byte channel key K: ECDH P-256
 *     between the app's binding key and HomeMSSP's binding key, then
 *     HKDF-SHA256 (salt "mssp-e2e-bind-v1", info = device id).  HomeMSSP
 *     keeps K in the device record, the app in its device file.
 *   - Each connection starts a SESSION: the app sends a 16-byte nonce with
 *     its authentication, HomeMSSP answers with a HELLO blob carrying its
 *     own 16-byte nonce; both derive two direction keys
 *       k_h2a = HKDF(K, salt = home_nonce || app_nonce, "mssp-e2e-h2a-v1")
 *       k_a2h = HKDF(K, salt = home_nonce || app_nonce, "mssp-e2e-a2h-v1")
 *     so every session has fresh keys, and counters restart at 1.
 *
 * Blobs (what the AFE carries, opaque to it):
 *   HELLO   0x01 || home_nonce(16)                            (clear)
 *   SEALED  0x02 || counter(8, big-endian) || ciphertext || tag(16)
 *           AES-256-GCM under the direction key; IV = 4 zero bytes ||
 *           counter; AAD = "mssp-e2e-v1" || 0x00 || device_id || 0x00 ||
 *           the 9 header bytes.  The sender's counter increments by one per
 *           message; the receiver accepts only a counter greater than the
 *           last one it accepted (replay, reorder and reflection refused:
 *           each direction has its own key).
 *
 * Device authentication (AFE): the AFE sends a 32-byte challenge; the app
 * signs with its device key (ECDSA P-256, SHA-256) the message
 *   "mssp-afe-auth-v1" || 0x00 || device_id || 0x00 || challenge || app_nonce
 * and the AFE verifies with the device's registered public key (SPKI DER).
 *
 * Errors: struct pki_err; 101 for anything a peer sent that does not
 * verify (bad blob, tag, counter, signature), 900 for internal failures.
 * Secrets (K, direction keys) are wiped by e2e_session_wipe and never
 * logged.  A session is not thread-safe.
 */
#ifndef MSSP_PKI_E2E_H
#define MSSP_PKI_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "pki/pki.h"
#include "util/limits.h"

#define E2E_KEY_LEN 32
#define E2E_NONCE_LEN 16
#define E2E_CHALLENGE_LEN 32
#define E2E_BLOB_HELLO 0x01
#define E2E_BLOB_SEALED 0x02
#define E2E_HELLO_LEN (1 + E2E_NONCE_LEN)
#define E2E_SEAL_OVERHEAD (1 + 8 + 16) /* type, counter, tag */

enum e2e_role { E2E_ROLE_HOME = 1, E2E_ROLE_APP = 2 };

struct e2e_session {
	enum e2e_role es_role;
	unsigned char es_k_send[E2E_KEY_LEN];
	unsigned char es_k_recv[E2E_KEY_LEN];
	uint64_t es_send_ctr;  /* last counter sent     */
	uint64_t es_recv_ctr;  /* last counter accepted */
	char es_device_id[MSSP_KEYSTORE_MAX_ID + 1];
	bool es_ready;
};

/* Derive the session keys (see above).  0, or -1 with 101 (bad device
 * id) / 900. */
int e2e_session_init(struct e2e_session *s, enum e2e_role role, const char *device_id,
		     const unsigned char key[E2E_KEY_LEN],
		     const unsigned char home_nonce[E2E_NONCE_LEN],
		     const unsigned char app_nonce[E2E_NONCE_LEN], struct pki_err *err);
/* Wipe the keys; the session is no longer ready.  Accepts NULL. */
void e2e_session_wipe(struct e2e_session *s);

/* HELLO blob with a fresh random home nonce (also copied to nonce_out). */
int e2e_hello(unsigned char out[E2E_HELLO_LEN], unsigned char nonce_out[E2E_NONCE_LEN],
	      struct pki_err *err);
/* Parse a HELLO blob: 0 with the nonce, -1 with 101. */
int e2e_hello_parse(const unsigned char *blob, size_t len, unsigned char nonce[E2E_NONCE_LEN],
		    struct pki_err *err);

/* Seal `len` bytes (0..MSSP_E2E_MAX_PLAIN) into out (cap >= len +
 * E2E_SEAL_OVERHEAD).  0, or -1 with 900 (not ready, too long, counter
 * exhausted). */
int e2e_seal(struct e2e_session *s, const unsigned char *pt, size_t len, unsigned char *out,
	     size_t cap, size_t *outlen, struct pki_err *err);
/* Open a SEALED blob into out (cap >= len - E2E_SEAL_OVERHEAD).  0, or -1
 * with 101 (wrong type, too short, tag mismatch, counter not greater than
 * the last accepted one) or 900.  A refused blob changes nothing. */
int e2e_open(struct e2e_session *s, const unsigned char *blob, size_t len, unsigned char *out,
	     size_t cap, size_t *outlen, struct pki_err *err);

/* Device authentication: sign (app side) and verify (AFE side). */
int e2e_auth_sign(EVP_PKEY *device_key, const char *device_id,
		  const unsigned char challenge[E2E_CHALLENGE_LEN],
		  const unsigned char app_nonce[E2E_NONCE_LEN], unsigned char **sig, size_t *siglen,
		  struct pki_err *err);
/* sig from e2e_auth_sign is OPENSSL_malloc'ed (OPENSSL_free).  Verify:
 * 0 when valid; -1 with 101 otherwise (wrong key type, bad signature). */
int e2e_auth_verify(const unsigned char *spki_der, size_t spki_len, const char *device_id,
		    const unsigned char challenge[E2E_CHALLENGE_LEN],
		    const unsigned char app_nonce[E2E_NONCE_LEN], const unsigned char *sig,
		    size_t siglen, struct pki_err *err);

/* Binding: a fresh P-256 key pair for one side of the agreement
 * (EVP_PKEY_free), and the agreement itself: K from our private key and the
 * peer's public key (SPKI DER).  Both sides get the same K. */
EVP_PKEY *e2e_binding_keygen(struct pki_err *err);
int e2e_binding_derive(EVP_PKEY *own, const unsigned char *peer_spki, size_t peer_len,
		       const char *device_id, unsigned char key[E2E_KEY_LEN], struct pki_err *err);

/* Public key as SPKI DER (OPENSSL_malloc'ed; OPENSSL_free). */
int e2e_spki_der(EVP_PKEY *key, unsigned char **der, size_t *len, struct pki_err *err);

/* ---- Device activation (issue 5, docs/internals/me.md) ----------------
 *
 * The transcript both ends sign and MAC during activation:
 *   T = "mssp-activate-v1" || for each of (msisdn, app_nonce, home_nonce,
 *       home_binding_spki, app_binding_spki, device_spki):
 *       4-byte big-endian length || bytes
 * Returns a malloc'ed buffer (free) with *len, or NULL (memory, an
 * argument over MSSP_KEYSTORE_MAX_SPKI / MSSP_STORE_MAX_MSISDN). */
uint8_t *e2e_activation_transcript(const char *msisdn, const uint8_t app_nonce[E2E_NONCE_LEN],
				   const uint8_t home_nonce[E2E_NONCE_LEN],
				   const uint8_t *home_bind_spki, size_t home_bind_len,
				   const uint8_t *app_bind_spki, size_t app_bind_len,
				   const uint8_t *device_spki, size_t device_len, size_t *len);
/* h = SHA-256 of the code's digits (separators removed by the caller:
 * exactly MSSP_REG_ACTIVATION_DIGITS digits, else -1). */
int e2e_activation_code_hash(const char *digits, uint8_t h[32]);
/* HMAC-SHA256(h, T || label || extra) into mac; label "app" or "home";
 * extra may be NULL (the device id for "home").  0 or -1. */
int e2e_activation_mac(const uint8_t h[32], const uint8_t *t, size_t tlen, const char *label,
		       const char *extra, uint8_t mac[32]);
/* ECDSA P-256 / SHA-256 signature over `msg` with `key` (DER into sig,
 * at most MSSP_AFE_MAX_SIG bytes), and its verification against an SPKI
 * DER (0 valid, -1 with 101 invalid / 900). */
int e2e_sign_msg(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *sig, size_t *siglen,
		 struct pki_err *err);
int e2e_verify_msg(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t len,
		   const uint8_t *sig, size_t siglen, struct pki_err *err);

#endif
