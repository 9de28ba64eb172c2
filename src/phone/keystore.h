/*
 * keystore.h - the key store of the reference phone app (mss-phone): the
 * software stand-in for a SIM applet or a phone's app keystore.
 *
 * One file per device holds up to `max_groups` key groups (5 by default,
 * MSSP_KEYSTORE_MAX_GROUPS at most).  A key group is one key pair generated
 * here, on the device, with its purpose (authentication or signing), the
 * signature-profile URIs it serves, an optional certificate (+ chain)
 * installed after the CA issued it, and either a PIN (with a PUK to unblock
 * it) or no PIN at all (a LoA2 "click OK" key).
 *
 * The private key NEVER leaves this module: no function returns it or any
 * encoding of it.  What comes out is the public key, a CSR signed by the key
 * (proof of possession), and signatures.  On disk each private key is
 * PKCS#8 DER under AES-256-GCM, with a key derived from the PIN (and, in a
 * second copy, from the PUK) by scrypt, or, for a PIN-less group, under a
 * random device key kept in the file.  See docs/internals/keystore.md for
 * the file format and what it does and does not protect against.
 *
 * Errors (struct pki_err, pki.h): functions return 0 / a pointer, or -1 /
 * NULL with err filled.  err->status is the TS 102 204 code of the outcome:
 *   101 WRONG_PARAM     a malformed argument (bad PIN format, unknown
 *                       format/flag, wrong key type for a raw format, ...);
 *                       never consumes a PIN try,
 *   402 PIN_NR_BLOCKED  the group's PIN is blocked (3 wrong PINs), also
 *                       returned by the attempt that blocks it,
 *   403 CARD_BLOCKED    the group is permanently blocked (PUK exhausted; its
 *                       wrapped key has been erased from the file),
 *   404 NO_KEY_FOUND    no group with that id, or for that purpose/profile,
 *   422 NO_CERT_FOUND   CMS signing asked of a group without a certificate,
 *   900 INTERNAL_ERROR  I/O failure, corrupted or refused keystore file,
 *                       keystore in use by another handle, memory.
 * and two keystore-local values that are NOT final errors (the phone asks
 * the user again; they never reach the wire):
 *   KS_STATUS_WRONG_PIN / KS_STATUS_WRONG_PUK  wrong secret, tries remain
 *                       (ks_group_info() tells how many).
 *
 * Counters: a PIN (PUK) attempt first decrements the persistent counter and
 * writes the file, then tries the secret, then restores the counter on
 * success.  So no result is ever returned before the attempt is on disk,
 * and killing the process in the middle costs the attacker a try.
 *
 * Persistence: every change is written atomically (temporary file in the
 * same directory, fsync, rename, fsync of the directory), mode 0600.  If a
 * write fails the handle is "broken": every later call fails with 900 and
 * the caller must ks_close() and ks_open() again (the file on disk still
 * holds the last complete state).
 *
 * A handle holds an exclusive lock (flock on "<path>.lock") for its whole
 * life, so two handles (or processes) never race on the counters.  A handle
 * is not thread-safe.
 *
 * Ownership: strings and buffers passed in are borrowed for the call.
 * PINs and PUKs are NUL-terminated digit strings owned by the caller (who
 * wipes them); the module never keeps them.  Pointers returned by
 * ks_group_info() and ks_find() are borrowed from the handle and valid until
 * the next call that changes it (add, delete, install, close).
 */
#ifndef MSSP_PHONE_KEYSTORE_H
#define MSSP_PHONE_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki.h"
#include "pki/sig.h"

/* Keystore-local, non-final outcomes (see above); below 100 so that they can
 * never be mistaken for a TS 102 204 status. */
#define KS_STATUS_WRONG_PIN 1
#define KS_STATUS_WRONG_PUK 2

struct ks; /* opaque handle: ks_create / ks_open, freed by ks_close */

enum ks_purpose {
	KS_PURPOSE_AUTHN = 1, /* authentication ("authn" in the file) */
	KS_PURPOSE_SIGN = 2,  /* signing        ("sign")              */
};

enum ks_key_type {
	KS_KEY_EC_P256 = 1, /* EVP_EC_gen("P-256"), the default */
	KS_KEY_RSA_2048 = 2,
	KS_KEY_RSA_3072 = 3,
};

enum ks_state {
	KS_STATE_ACTIVE = 0,
	KS_STATE_PIN_BLOCKED = 402, /* the PUK can unblock it             */
	KS_STATE_DISABLED = 403,    /* PUK exhausted: blocked for ever    */
};

/* Creation parameters; a zeroed struct (or NULL) means the defaults. */
struct ks_params {
	unsigned kp_max_groups;	  /* 0: MSSP_KEYSTORE_DEFAULT_GROUPS;
				   * 1..MSSP_KEYSTORE_MAX_GROUPS            */
	unsigned kp_pin_min;	  /* 0: MSSP_KEYSTORE_PIN_MIN_LEN; PINs are  */
	unsigned kp_pin_max;	  /* 0: MSSP_KEYSTORE_PIN_MAX_LEN; digits,
				   * bounds within [PIN_MIN_LEN, PIN_MAX_LEN] */
	unsigned kp_scrypt_log2n; /* 0: MSSP_KEYSTORE_SCRYPT_LOG2N (2^15).
				   * Tests lower it; never below
				   * MSSP_KEYSTORE_SCRYPT_MIN_LOG2N (2^10)   */
};

/* What ks_add_group() creates. */
struct ks_group_spec {
	const char *gs_id;		  /* 1..MSSP_KEYSTORE_MAX_ID chars of
					   * [A-Za-z0-9._-], unique in the file */
	enum ks_purpose gs_purpose;
	const char *const *gs_profiles;	  /* signature-profile URIs served, as
					   * strings (printable ASCII, at most
					   * MSSP_PROFILE_MAX_URI bytes each)   */
	size_t gs_nprofiles;		  /* 0..MSSP_KEYSTORE_MAX_PROFILES      */
	enum ks_key_type gs_key_type;	  /* 0: KS_KEY_EC_P256                  */
	const char *gs_pin;		  /* NULL: a PIN-less (click-OK) key    */
	const char *gs_puk;		  /* MSSP_KEYSTORE_PUK_LEN digits; must
					   * be NULL for a PIN-less key          */
};

/* Public description of a group (ks_group_info). */
struct ks_group_info {
	const char *gi_id;		   /* borrowed from the handle        */
	enum ks_purpose gi_purpose;
	const char *const *gi_profiles;	   /* borrowed; gi_nprofiles entries   */
	size_t gi_nprofiles;
	enum ks_key_type gi_key_type;
	bool gi_has_pin;
	enum ks_state gi_state;
	unsigned gi_pin_tries;		   /* left; 0 for a PIN-less group    */
	unsigned gi_puk_tries;		   /* left; 0 for a PIN-less group    */
	bool gi_has_cert;
};

/* Create a new keystore file at `path` (which must not exist yet; the
 * directory must exist) for device `device_id` (1..MSSP_KEYSTORE_MAX_ID
 * chars of [A-Za-z0-9._:+@-]).  `params` may be NULL.  Returns a new handle
 * holding the lock (ks_close), or NULL with err (101 bad argument, 900 the
 * file exists or cannot be written). */
struct ks *ks_create(const char *path, const char *device_id, const struct ks_params *params,
		     struct pki_err *err);

/* Open an existing keystore.  The whole file is verified (checksum, strict
 * format, every length capped, public keys and certificates parsed) before
 * anything is used: a torn, truncated or corrupted file is refused (900),
 * never half-loaded.  The file must be a regular file owned by the caller
 * and not accessible to group or others.  Returns a new handle (ks_close)
 * or NULL with err. */
struct ks *ks_open(const char *path, struct pki_err *err);

/* Release the handle and its lock; wipes what it holds.  Accepts NULL. */
void ks_close(struct ks *ks);

/* The device identifier (borrowed from the handle). */
const char *ks_device_id(const struct ks *ks);

/* Generate a key pair on the device and add it as a new group (persisted
 * before returning).  101 on a bad spec (id taken, PIN not of the allowed
 * length, PUK given for a PIN-less key ...) and when the keystore already
 * holds max_groups groups (the device is full), 900 I/O. */
int ks_add_group(struct ks *ks, const struct ks_group_spec *spec, struct pki_err *err);

/* Delete a group and its key (the file is rewritten without it; no PIN is
 * needed: deleting reveals nothing).  404 when there is no such group. */
int ks_delete_group(struct ks *ks, const char *id, struct pki_err *err);

/* Number of groups, and the public description of the i-th one (0-based,
 * in creation order).  ks_group_info: 0, or -1 with 404 past the end. */
size_t ks_count(const struct ks *ks);
int ks_group_info(const struct ks *ks, size_t i, struct ks_group_info *out, struct pki_err *err);
/* The same by id; 404 when unknown. */
int ks_group_info_by_id(const struct ks *ks, const char *id, struct ks_group_info *out,
			struct pki_err *err);

/* The first group (creation order) with `purpose` that lists `profile_uri`
 * (exact byte comparison; NULL: any profile).  Blocked groups are found too:
 * signing with them then reports 402/403, which tells the user more than
 * "no key".  Returns its id (borrowed from the handle) or NULL with 404.
 * Richer matching (mss_profile_satisfies) belongs to the caller, which can
 * walk ks_group_info(). */
const char *ks_find(const struct ks *ks, enum ks_purpose purpose, const char *profile_uri,
		    struct pki_err *err);

/* The group's public key: a new reference holding no private part
 * (EVP_PKEY_free).  NULL with 404. */
EVP_PKEY *ks_public_key(const struct ks *ks, const char *id, struct pki_err *err);

/* The installed certificate: a new reference (X509_free), NULL with 404
 * (no such group) or 422 (no certificate installed). */
X509 *ks_certificate(const struct ks *ks, const char *id, struct pki_err *err);

/* A PKCS#10 request signed by the group's key with SHA-256 (proof of
 * possession), subject `subject` (borrowed; NULL: CN=<device id>; the RA
 * replaces the subject anyway).  Needs the PIN (NULL for a PIN-less group)
 * and counts as a PIN attempt.  Returns a new X509_REQ (X509_REQ_free) or
 * NULL with err (WRONG_PIN, 402, 403, 404, 101, 900). */
X509_REQ *ks_csr(struct ks *ks, const char *id, const char *pin, const X509_NAME *subject,
		 struct pki_err *err);

/* Install (or replace) the group's certificate and the chain above it
 * (`chain` may be NULL; at most MSSP_KEYSTORE_MAX_CHAIN certificates).
 * Both borrowed (copied).  The certificate's public key must be the group's
 * (101 otherwise); no PIN is needed.  404 unknown group, 900 I/O. */
int ks_install_cert(struct ks *ks, const char *id, X509 *cert, STACK_OF(X509) *chain,
		    struct pki_err *err);

/* Sign `dtbs` (1..MSSP_KEYSTORE_MAX_DTBS bytes) with group `id`.
 *   fmt    PKI_SIG_CMS (needs an installed certificate: 422 otherwise; the
 *          chain goes into the SignedData), PKI_SIG_PKCS1 or PKI_SIG_PSS (RSA
 *          groups), PKI_SIG_ECDSA (EC groups);
 *   flags  PKI_SIG_DETACHED (CMS only), PKI_SIG_DIGEST (dtbs is already the
 *          md_nid digest, of exactly its size: CMS over a digest, or a raw
 *          signature of the hash);
 *   md_nid the digest, allowed by the default crypto policy (pki.h).
 *   pin    the PIN, NULL for a PIN-less group (a PIN given to a PIN-less
 *          group, or none to a PIN group, is 101 and costs no try).
 * Arguments are checked before the PIN is tried, so a malformed request
 * never costs a try.  The signature (DER for CMS and ECDSA) goes to *out,
 * allocated with OPENSSL_malloc (OPENSSL_free), length *outlen.
 * 0, or -1 with err: WRONG_PIN, 402, 403, 404, 422, 101, 900, or the
 * status of pki_sig_cms_sign / pki_sig_raw_sign. */
int ks_sign(struct ks *ks, const char *id, const char *pin, enum pki_sig_format fmt,
	    unsigned flags, int md_nid, const unsigned char *dtbs, size_t len, unsigned char **out,
	    size_t *outlen, struct pki_err *err);

/* Change the PIN (the old one is needed and counts as an attempt).
 * 101 for a PIN-less group or a malformed new PIN. */
int ks_change_pin(struct ks *ks, const char *id, const char *old_pin, const char *new_pin,
		  struct pki_err *err);

/* Check the PUK and set a new PIN, resetting both counters; works on an
 * active or a PIN-blocked group.  A wrong PUK returns KS_STATUS_WRONG_PUK
 * while tries remain; the last wrong one returns 403, and the group's
 * wrapped key is erased from the file: it is blocked for ever. */
int ks_unblock(struct ks *ks, const char *id, const char *puk, const char *new_pin,
	       struct pki_err *err);

#endif
