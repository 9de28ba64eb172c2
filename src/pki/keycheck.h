/*
 * keycheck.h - quality checks on a public key before it is registered or
 * trusted (security.md P-24, bad-inputs.md K-01..K-07).
 *
 * One call checks one public key against the crypto policy (pki.h) and
 * answers with a verdict naming the FIRST check that failed, plus a human
 * reason in struct pki_err.detail.  The reason names the rule, never key
 * material (no modulus, no factor, no point, no fingerprint).
 *
 * Checks, in the order they run:
 *   all keys   key type allowed by the policy (RSA, RSA-PSS, EC; DSA,
 *              Ed25519, X25519 ... are always refused)
 *   RSA        modulus size within the policy (and MSSP_KEYCHECK_MAX_RSA_BITS);
 *              odd modulus; public exponent odd and in [2^16+1, 2^256-1];
 *              no prime factor below MSSP_KEYCHECK_SMALL_PRIMES (752);
 *              not a perfect power (prime powers included);
 *              not factorable by Fermat's method in
 *              MSSP_KEYCHECK_FERMAT_ROUNDS (100) rounds;
 *              no ROCA fingerprint (CVE-2017-15361);
 *              not prime (last: it is the one expensive test).
 *   EC         named curve (explicit parameters refused); curve allowed by
 *              the policy; full public-key validation (point on the curve,
 *              not at infinity, in the prime-order subgroup).
 *   all keys   SHA-256 of the DER SubjectPublicKeyInfo not in the caller's
 *              compromised set (K-06), then not in its registered set (K-07).
 *
 * Outcomes (struct pki_err.status):
 *   0    the key passed (verdict PKI_KEYCHECK_OK),
 *   407  REGISTRATION_NOK: the key is refused (every check verdict),
 *   101  WRONG_PARAM: the input could not be parsed, or is not in canonical
 *        DER (verdict PKI_KEYCHECK_MALFORMED),
 *   900  INTERNAL_ERROR: our side failed (memory, unreadable file, a known
 *        set that was not sealed).  Fail closed: the key is not accepted.
 *
 * Ownership: every pointer argument is borrowed, read and not modified
 * (EVP_PKEY, X509 and X509_REQ are non-const only because OpenSSL's own
 * functions want them so).  The functions that return an EVP_PKEY return a
 * new reference holding only public material: EVP_PKEY_free() it.
 *
 * Thread safety: no global mutable state; the constant tables are static
 * const.  Any number of threads may check keys at once.
 */
#ifndef MSSP_PKI_KEYCHECK_H
#define MSSP_PKI_KEYCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki.h"

/* The first check a key failed.  The names (pki_keycheck_verdict_name) are
 * stable: logs, msspctl output and monitoring match on them. */
enum pki_keycheck_verdict {
	PKI_KEYCHECK_OK = 0,		/* "ok"                                */
	PKI_KEYCHECK_MALFORMED,		/* "malformed"        101              */
	PKI_KEYCHECK_UNREADABLE,	/* "unreadable"       900 (file I/O)   */
	PKI_KEYCHECK_INTERNAL,		/* "internal"         900              */
	PKI_KEYCHECK_KEY_TYPE,		/* "key-type"         407              */
	PKI_KEYCHECK_RSA_SIZE,		/* "rsa-size"         407              */
	PKI_KEYCHECK_RSA_EVEN_MODULUS,	/* "rsa-even-modulus" 407              */
	PKI_KEYCHECK_RSA_EXPONENT,	/* "rsa-exponent"     407              */
	PKI_KEYCHECK_RSA_SMALL_FACTOR,	/* "rsa-small-factor" 407              */
	PKI_KEYCHECK_RSA_PERFECT_POWER, /* "rsa-perfect-power" 407             */
	PKI_KEYCHECK_RSA_FERMAT,	/* "rsa-fermat"       407              */
	PKI_KEYCHECK_RSA_ROCA,		/* "rsa-roca"         407: also raise an
					 * incident, the batch may be affected */
	PKI_KEYCHECK_RSA_PRIME_MODULUS, /* "rsa-prime-modulus" 407             */
	PKI_KEYCHECK_EC_EXPLICIT,	/* "ec-explicit-params" 407            */
	PKI_KEYCHECK_EC_CURVE,		/* "ec-curve"         407              */
	PKI_KEYCHECK_EC_POINT,		/* "ec-point"         407              */
	PKI_KEYCHECK_COMPROMISED,	/* "compromised"      407: incident    */
	PKI_KEYCHECK_DUPLICATE,		/* "duplicate"        407: incident    */
};

/* Stable lower-case name of a verdict ("?" for an unknown value). */
const char *pki_keycheck_verdict_name(enum pki_keycheck_verdict v);

/* ---- Fingerprints and fingerprint sets ------------------------------- */

#define PKI_KEYCHECK_FP_LEN 32			   /* SHA-256                 */
#define PKI_KEYCHECK_FP_HEX (2 * PKI_KEYCHECK_FP_LEN) /* hex digits, no NUL */

/* SHA-256 of the key's DER SubjectPublicKeyInfo, in canonical form: EC
 * points are encoded uncompressed whatever form the key arrived in, so one
 * key has one fingerprint (a compressed copy must not slip past K-07).  This
 * is the value the registration store keeps under a unique index.
 * `key` is borrowed.  0, or -1 with err (900). */
int pki_keycheck_fingerprint(EVP_PKEY *key, unsigned char fp[PKI_KEYCHECK_FP_LEN],
			     struct pki_err *err);

/* Lower-case hex of a fingerprint into `hex` (PKI_KEYCHECK_FP_HEX + 1 bytes,
 * NUL-terminated). */
void pki_keycheck_fp_hex(const unsigned char fp[PKI_KEYCHECK_FP_LEN],
			 char hex[PKI_KEYCHECK_FP_HEX + 1]);

/* Exactly PKI_KEYCHECK_FP_HEX hex digits (either case) -> bytes.  0 or -1. */
int pki_keycheck_fp_parse(const char *hex, size_t len, unsigned char fp[PKI_KEYCHECK_FP_LEN]);

/* A set of fingerprints: a sorted array searched with bsearch.  Fill it with
 * _add (appends, at most MSSP_KEYCHECK_MAX_KNOWN entries), then _seal (sorts
 * and removes repeats) before any lookup; adding again unseals it.  A check
 * given an unsealed set fails closed with 900.  Members are private. */
struct pki_keycheck_known {
	unsigned char (*kn_fps)[PKI_KEYCHECK_FP_LEN];
	size_t kn_n;
	size_t kn_alloc;
	bool kn_sealed;
};

void pki_keycheck_known_init(struct pki_keycheck_known *k);
/* Release the array; the set is empty (and sealed) again.  Accepts NULL. */
void pki_keycheck_known_free(struct pki_keycheck_known *k);
/* 0, or -1 with err (900: memory or the cap). */
int pki_keycheck_known_add(struct pki_keycheck_known *k, const unsigned char fp[PKI_KEYCHECK_FP_LEN],
			   struct pki_err *err);
void pki_keycheck_known_seal(struct pki_keycheck_known *k);
size_t pki_keycheck_known_count(const struct pki_keycheck_known *k);
/* 1 if present, 0 if not, -1 if the set is not sealed. */
int pki_keycheck_known_contains(const struct pki_keycheck_known *k,
				const unsigned char fp[PKI_KEYCHECK_FP_LEN]);
/* Add every fingerprint of a text file and seal the set.  One fingerprint
 * per line: 64 hex digits, optionally followed by white space and anything
 * (so `msspctl keycheck --fingerprint` output can be used as is); blank
 * lines and lines starting with '#' are skipped.  Lines are at most
 * MSSP_KEYCHECK_MAX_LINE bytes.  0, or -1 with err: 101 for a bad line (its
 * number is in the detail, not its text), 900 for I/O, memory or the cap. */
int pki_keycheck_known_load(struct pki_keycheck_known *k, const char *path, struct pki_err *err);

/* What a check compares the key with.  Both sets may be NULL (skipped);
 * when given they MUST be sealed. */
struct pki_keycheck_sets {
	const struct pki_keycheck_known *ks_compromised; /* K-06: block lists,
							  * keys revoked for
							  * keyCompromise      */
	const struct pki_keycheck_known *ks_registered;	 /* K-07: every key
							  * already registered */
};

/* ---- Checking -------------------------------------------------------- */

/* Check one public key (a private key is accepted; only its public part is
 * looked at).  `policy` NULL means pki_policy_default(); `sets` may be NULL.
 * Sets *verdict (never left unset) and returns 0 when it is PKI_KEYCHECK_OK,
 * else -1 with err filled (status 407, or 900 for PKI_KEYCHECK_INTERNAL).
 * Cost (docs/internals/keycheck.md): EC well under 1 ms; RSA about 4 ms at
 * 2048 bits and 25 ms or more at 4096, almost all of it the prime test, one
 * modular exponentiation that a key refused earlier never pays. */
int pki_keycheck_pkey(EVP_PKEY *key, const struct pki_policy *policy,
		      const struct pki_keycheck_sets *sets,
		      enum pki_keycheck_verdict *verdict, struct pki_err *err);

/* The same for the key of a certificate or a CSR.  Besides the checks
 * above, the SubjectPublicKeyInfo must be canonical DER (re-encoding the
 * decoded key gives the same bytes), and a point that is not on its curve
 * (which OpenSSL already refuses when decoding) is reported as
 * PKI_KEYCHECK_EC_POINT; any other undecodable key is PKI_KEYCHECK_MALFORMED.
 * Nothing else of the certificate or CSR (signature, validity) is checked. */
int pki_keycheck_x509(X509 *cert, const struct pki_policy *policy,
		      const struct pki_keycheck_sets *sets,
		      enum pki_keycheck_verdict *verdict, struct pki_err *err);
int pki_keycheck_req(X509_REQ *req, const struct pki_policy *policy,
		     const struct pki_keycheck_sets *sets,
		     enum pki_keycheck_verdict *verdict, struct pki_err *err);

/* Read a public key out of `data` (at most MSSP_KEYCHECK_MAX_INPUT bytes):
 * PEM or DER of a SubjectPublicKeyInfo ("PUBLIC KEY"), a PKCS#1
 * RSAPublicKey ("RSA PUBLIC KEY"), a certificate, a CSR, or an unencrypted
 * private key (PKCS#8 or traditional).  PEM: the first block of a kind
 * listed here is used (others, such as "EC PARAMETERS", are skipped; at most
 * MSSP_KEYCHECK_MAX_PEM_BLOCKS).  DER: the whole input must be one object.
 * Public-key encodings must be canonical DER (as for _x509).  Encrypted
 * private keys are refused (no pass phrase is ever asked for).  A private
 * key is reduced to its public part at once and freed.
 * Returns a new public-only EVP_PKEY, or NULL with *verdict and err
 * (MALFORMED 101, EC_POINT 407, INTERNAL 900).  Does not run the checks:
 * call pki_keycheck_pkey() on the result. */
EVP_PKEY *pki_keycheck_load(const unsigned char *data, size_t len,
			    enum pki_keycheck_verdict *verdict, struct pki_err *err);
/* The same, reading the file `path` first (at most MSSP_KEYCHECK_MAX_INPUT
 * bytes; the bytes read are wiped before they are freed, as they may be a
 * private key).  An unreadable or oversized file gives verdict
 * PKI_KEYCHECK_UNREADABLE (900). */
EVP_PKEY *pki_keycheck_load_file(const char *path, enum pki_keycheck_verdict *verdict,
				 struct pki_err *err);

/* ---- The individual RSA tests, on bare numbers ------------------------ */

/* The RSA checks of pki_keycheck_pkey() on a modulus and exponent (size,
 * odd modulus, exponent, small factors, perfect power, Fermat, ROCA,
 * prime); no type or fingerprint checks.  Same return convention. */
int pki_keycheck_rsa_numbers(const BIGNUM *n, const BIGNUM *e, const struct pki_policy *policy,
			     enum pki_keycheck_verdict *verdict, struct pki_err *err);

/* ROCA Test A, the "moduli" test (crocs-muni detect.py
 * has_fingerprint_moduli): true iff for each of the 38 primes r in
 * {3, ..., 167}, N mod r lies in the subgroup generated by 65537 mod r.
 * Random moduli pass with probability about 2^-27.8, so on its own it is
 * only a pre-filter. */
bool pki_keycheck_roca_moduli(const BIGNUM *n);
/* ROCA Test B, the exact discrete-log test (detect.py has_fingerprint_dlog,
 * badkeys roca.py): 1 if N mod M lies in <65537> mod M, M the primorial of
 * the primes <= 167; 0 if not; -1 on memory failure.  `ctx` may be NULL.
 * pki_keycheck_pkey() refuses a key iff Test A and Test B both flag it
 * (Test B implies Test A for a modulus prime to M; Test A runs first
 * because it is cheaper). */
int pki_keycheck_roca_dlog(const BIGNUM *n, BN_CTX *ctx);

/* The Test A table: prime r and bit mask (bit x set iff x is in
 * <65537 mod r>; bit x lives in word x / 64).  Exposed for the unit test
 * that regenerates it from that definition. */
#define PKI_KEYCHECK_ROCA_PRIMES 38
struct pki_keycheck_roca_print {
	unsigned rp_prime;
	uint64_t rp_mask[3];
};
const struct pki_keycheck_roca_print *pki_keycheck_roca_table(size_t *n);

/* K-05, for small sets only (the periodic scan over all registered keys is
 * a separate job): batch GCD with a product tree and a remainder tree
 * (Heninger et al., "Mining your Ps and Qs").  For each of the n moduli
 * (n <= MSSP_KEYCHECK_MAX_BATCH, each > 1), flagged[i] becomes 1 if
 * moduli[i] shares a prime factor with another modulus of the set (two
 * equal moduli are flagged too), else 0.  Stores the number flagged in
 * *nflagged.  `moduli` is borrowed.  0, or -1 with err (101 bad input, 900). */
int pki_keycheck_shared_primes(const BIGNUM *const moduli[], size_t n, unsigned char *flagged,
			       size_t *nflagged, struct pki_err *err);

#endif
