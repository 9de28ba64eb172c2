/*
 * ca.h - the built-in certificate authority: a CA directory with its key
 * (an encrypted key file or a PKCS#11 object), an issuance database, CRLs
 * and a sans-I/O OCSP responder core.
 *
 * This module is the only place where a CA private key is ever loaded
 * (style.md habit 9, security.md P-03): there is no API that returns or
 * serializes it.  Certificates are built from identity data the caller
 * supplies and from a named profile; nothing of a CSR is copied except its
 * public key (bad-inputs K-10).  Every issued certificate is in the database
 * (fsync'd) before it is returned (bad-inputs section 11, definition 6).
 *
 * Errors follow pki.h: 0 / a pointer on success, -1 / NULL with `err`:
 *   101 WRONG_PARAM       malformed input (CSR DER, identity data, serial,
 *                         reason, parameters, unknown profile);
 *   407 REGISTRATION_NOK  a key or CSR refused (proof of possession,
 *                         algorithm or key refused by the crypto policy);
 *   900 INTERNAL_ERROR    our side: I/O, corrupt directory or database, the
 *                         CA key cannot be unlocked or the token is
 *                         unavailable (F-06: never a fallback key).
 *
 * Threads: a struct pki_ca is not thread-safe; use one per thread or lock
 * around it.  Several processes may share a directory: every change takes
 * an exclusive flock(2) on DIR/lock and brings its copy of the database up
 * to date first (only the lines appended since, when the file just grew).
 *
 * Directory layout (docs/internals/ca.md):
 *   ca.crt     this CA's certificate (PEM)
 *   chain.pem  the issuer chain above it (issuing CAs only)
 *   ca.key     encrypted PKCS#8 PEM (AES-256-CBC, scrypt), mode 0600,
 *              absent when the key is a PKCS#11 object
 *   ca.conf    settings and certificate profiles (the PKCS#11 URI, never
 *              the PIN)
 *   ca.db      issuance database, one line per issued certificate;
 *              issuance appends a line, revocation rewrites the file
 *   crlnumber  the last CRL number used
 *   crl.pem    the current CRL
 */
#ifndef MSSP_PKI_CA_H
#define MSSP_PKI_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki.h"

struct pki_ca;

enum pki_ca_keyalg {
	PKI_CA_KEY_EC_P256 = 0, /* the default                      */
	PKI_CA_KEY_RSA,		/* ci_rsa_bits, at least 3072       */
};

/* Parameters of pki_ca_init().  Strings are borrowed, NUL-terminated. */
struct pki_ca_init_params {
	const char *ci_dir;	     /* created (0700); MUST NOT exist yet or
				      * be an empty directory               */
	enum pki_ca_keyalg ci_alg;   /* software keys only                   */
	unsigned ci_rsa_bits;	     /* 0 = 3072; 3072..8192                 */
	const char *ci_cn;	     /* subject CN (required)                */
	const char *ci_o;	     /* subject O, or NULL                   */
	const char *ci_c;	     /* subject C (2 letters), or NULL       */
	unsigned ci_days;	     /* 0 = 7305 (root) / 3652 (issuing)     */
	/* Key protection: exactly one of a pass phrase (a new key is generated
	 * and written encrypted to ca.key) or a PKCS#11 URI (the key already
	 * exists in the token; ca.conf stores the URI and module, never the
	 * PIN).  Secrets are borrowed: the caller wipes them. */
	const char *ci_passphrase;   /* >= MSSP_CA_MIN_PASSPHRASE bytes      */
	size_t ci_passphrase_len;
	const char *ci_pkcs11_uri;   /* "pkcs11:token=...;object=...";
				      * MUST NOT hold pin-value/pin-source   */
	const char *ci_pkcs11_module;/* module path, NULL: engine default    */
	const char *ci_pin;	     /* token PIN                            */
	size_t ci_pin_len;
	struct pki_ca *ci_issuer;    /* borrowed, opened with its key: the
				      * root that signs this issuing CA
				      * (pathlen 0); NULL: self-signed root  */
};

/* Create a CA directory and return it opened with its key (pki_ca_free).
 * With ci_issuer, the new CA certificate is recorded in the issuer's
 * database first.  On failure nothing usable is left: files already
 * written are removed.  NULL with err (101 bad parameters, 900 I/O or
 * token). */
struct pki_ca *pki_ca_init(const struct pki_ca_init_params *p, struct pki_err *err);

/* Open an existing CA directory.  `secret` is the key file's pass phrase or
 * the token PIN (borrowed, the caller wipes it); NULL opens without the key
 * (database reading, revocation), and operations that sign then fail with
 * 900.  Checks the key matches ca.crt.  NULL with err (900). */
struct pki_ca *pki_ca_open(const char *dir, const char *secret, size_t secret_len,
			   struct pki_err *err);

/* Release the CA (key, token session, database).  Accepts NULL. */
void pki_ca_free(struct pki_ca *ca);

/* This CA's certificate (borrowed; lives as long as `ca`). */
X509 *pki_ca_cert(const struct pki_ca *ca);
/* The issuer chain above this CA (borrowed; empty for a root). */
STACK_OF(X509) *pki_ca_chain(const struct pki_ca *ca);
/* Whether the CA key is loaded (pki_ca_open with a secret). */
bool pki_ca_has_key(const struct pki_ca *ca);

/* ---- Issuance --------------------------------------------------------- */

/* Identity data from the verified RA record (never from a CSR).  All
 * strings UTF-8, borrowed; NULL or "" = absent.  id_serial_number is
 * mandatory (the serialNumber RDN, a PrintableString such as
 * "PNOCH-1234" or the MSISDN-bound identifier); at least one of
 * id_common_name, id_pseudonym, id_given_name, id_surname is required. */
struct pki_ca_identity {
	const char *id_serial_number;
	const char *id_common_name;
	const char *id_pseudonym;
	const char *id_given_name;
	const char *id_surname;
	const char *id_country; /* ISO 3166 alpha-2, upper case */
};

/* Issue a certificate for the public key `pub` (borrowed; only its public
 * part is used) under the named profile ("authn", "sign" or one from
 * ca.conf).  `days` 0 = the profile's validity; notAfter never passes the
 * CA's own.  The key is checked with pki_policy_check_key(`pol`, NULL =
 * default) - key quality (ROCA, Fermat, duplicates) is the caller's job
 * (src/pki/keycheck) before this call.  The certificate is recorded in the
 * database (one line appended to ca.db and fsync'd) before it is returned
 * in *out (a new reference: X509_free).
 * 0, or -1 with err (101 identity/profile, 407 key refused, 900). */
int pki_ca_issue(struct pki_ca *ca, const char *profile, const struct pki_ca_identity *id,
		 EVP_PKEY *pub, const struct pki_policy *pol, unsigned days, X509 **out,
		 struct pki_err *err);

/* Parse and check a PKCS#10 CSR given as DER: at most MSSP_CA_MAX_CSR_DER
 * bytes, strict DER (trailing bytes, BER or non-canonical encodings
 * refused: 101), signature algorithm allowed by `pol` (NULL = default;
 * MD5/SHA-1 and RSA-PSS refused: 407), key allowed by `pol` (407), proof
 * of possession verified (407).  On success *pub is the CSR's public key
 * (a new reference: EVP_PKEY_free).  Nothing else of the CSR is used. */
int pki_ca_csr_check(const unsigned char *der, size_t len, const struct pki_policy *pol,
		     EVP_PKEY **pub, struct pki_err *err);

/* pki_ca_csr_check() then pki_ca_issue() with the CSR's key. */
int pki_ca_issue_csr(struct pki_ca *ca, const char *profile, const struct pki_ca_identity *id,
		     const unsigned char *der, size_t len, const struct pki_policy *pol,
		     unsigned days, X509 **out, struct pki_err *err);

/* ---- Database, revocation, CRL, OCSP ---------------------------------- */

/* CRL reason codes accepted for revocation (RFC 5280 5.3.1).  certificateHold
 * is not offered: there is no un-hold, and a hold would read as a final
 * revocation.  caCompromise is for CA certificates only. */
enum pki_ca_reason {
	PKI_CA_REASON_UNSPECIFIED = 0,
	PKI_CA_REASON_KEY_COMPROMISE = 1,
	PKI_CA_REASON_CA_COMPROMISE = 2,
	PKI_CA_REASON_AFFILIATION_CHANGED = 3,
	PKI_CA_REASON_SUPERSEDED = 4,
	PKI_CA_REASON_CESSATION_OF_OPERATION = 5,
	PKI_CA_REASON_PRIVILEGE_WITHDRAWN = 9,
};

/* "keyCompromise" -> PKI_CA_REASON_KEY_COMPROMISE (RFC 5280 names, exact
 * case).  0 or -1 (unknown name). */
int pki_ca_reason_parse(const char *name, int *reason);
/* Static name of a reason, "?" if unknown. */
const char *pki_ca_reason_name(int reason);

#define PKI_CA_SERIAL_HEX_MAX 40 /* 159 bits: at most 20 bytes */

/* One database record, as listed.  Borrowed view: ce_subject and
 * ce_profile stay valid until the next call that changes or re-reads the
 * database (issue, revoke, crl, ocsp, reload). */
struct pki_ca_entry {
	char ce_serial[PKI_CA_SERIAL_HEX_MAX + 1]; /* upper-case hex, even length */
	time_t ce_not_after;
	bool ce_revoked;
	time_t ce_rev_time;	/* when revoked                      */
	int ce_reason;		/* enum pki_ca_reason when revoked   */
	const char *ce_profile; /* profile name, "ca" for a sub-CA    */
	const char *ce_subject; /* RFC 2253, ASCII (escaped)          */
};

/* Re-read the database if another process changed it: nothing if the file
 * is unchanged, only the appended lines if it grew, else all of it.  A
 * torn last line (an append that never finished) is ignored.  0 or -1
 * (900). */
int pki_ca_reload(struct pki_ca *ca, struct pki_err *err);
/* Number of records (after the last read). */
size_t pki_ca_count(const struct pki_ca *ca);
/* Record i in issuance order, 0 <= i < pki_ca_count().  0 or -1. */
int pki_ca_entry_at(const struct pki_ca *ca, size_t i, struct pki_ca_entry *out);
/* Record by serial (hex, any case, leading zeros allowed).  0, or -1 with
 * err 101 (not hex) or 422 (no such certificate). */
int pki_ca_lookup(struct pki_ca *ca, const char *serial_hex, struct pki_ca_entry *out,
		  struct pki_err *err);

/* Mark a certificate revoked with `reason` at `when` (0 = now), durably
 * (the database is fsync'd before this returns 0).  Needs no key.  -1 with
 * err: 101 bad serial/reason or already revoked, 422 unknown serial, 900. */
int pki_ca_revoke(struct pki_ca *ca, const char *serial_hex, int reason, time_t when,
		  struct pki_err *err);

/* Issue a CRL at `now` (0 = current time): CRL number incremented and
 * persisted first (a number is never reused), AKI, thisUpdate, nextUpdate
 * (+crl_hours of ca.conf), every revoked certificate with its date and
 * reason; written to DIR/crl.pem atomically.  *out (may be NULL) gets a new
 * reference (X509_CRL_free).  0 or -1 with err (900). */
int pki_ca_crl(struct pki_ca *ca, time_t now, X509_CRL **out, struct pki_err *err);

/* OCSP responder core (RFC 6960), sans-I/O: `req` is a DER OCSPRequest
 * (borrowed, at most MSSP_CA_MAX_OCSP_REQ bytes).  Each CertID (SHA-1,
 * SHA-256, SHA-384 or SHA-512 hashes of this CA's name and key) is
 * answered good, revoked (time, reason) or unknown (not issued here); the
 * nonce is echoed; thisUpdate = now, nextUpdate = now + ocsp_hours; signed
 * with the CA key, responder ID by key hash.
 * Always tries to leave a DER OCSPResponse in *resp (OPENSSL_free):
 *   0   a successful response;
 *   -1  an error response to send as is (malformedRequest: err 101;
 *       unauthorized - no CertID is ours: err 422; internalError: err
 *       900), or *resp NULL if even that could not be built. */
int pki_ca_ocsp_respond(struct pki_ca *ca, const unsigned char *req, size_t len, time_t now,
			unsigned char **resp, size_t *resp_len, struct pki_err *err);

/* ---- PKCS#11 (ca_engine.c, the one user of the ENGINE API) ------------- */

struct pki_ca_p11;

/* Load the private key `uri` through libengine-pkcs11-openssl's "pkcs11"
 * engine, `module` (NULL: the engine's default), logging in with `pin`
 * (borrowed; the engine keeps its own copy for re-login).  Never prompts.
 * NULL with err 900 (engine or token unavailable, wrong PIN, no key). */
struct pki_ca_p11 *pki_ca_p11_open(const char *module, const char *uri, const char *pin,
				   size_t pin_len, struct pki_err *err);
/* The key (borrowed, lives as long as `k`). */
EVP_PKEY *pki_ca_p11_key(const struct pki_ca_p11 *k);
/* Release the key and the engine.  Accepts NULL. */
void pki_ca_p11_close(struct pki_ca_p11 *k);

#endif
