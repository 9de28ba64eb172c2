/*
 * pki.h - what every src/pki module shares: the error type and the crypto
 * policy (security.md P-27: algorithms and key sizes configurable without a
 * code change; no MD5/SHA-1 signatures; at least 128-bit security for new
 * keys).
 *
 * Error convention of the pki layer: functions return 0 / a pointer on
 * success, and -1 / NULL with a caller-supplied struct pki_err filled.  The
 * `status` in it is the TS 102 204 code the outcome maps to, so the roles
 * never translate pki errors themselves (mss_fault_from_err() turns it into
 * the wire answer):
 *   501 REVOKED_CERTIFICATE, 503 INVALID_SIGNATURE, 422 NO_CERT_FOUND,
 *   407 REGISTRATION_NOK (a key or CSR refused at registration),
 *   101 WRONG_PARAM (malformed input), 900 INTERNAL_ERROR (our side).
 * `detail` is generic text: never key material, never input bytes.
 */
#ifndef MSSP_PKI_PKI_H
#define MSSP_PKI_PKI_H

#include <stdbool.h>
#include <stddef.h>

#define PKI_ERR_DETAIL_MAX 160

struct pki_err {
	int status;			   /* TS 102 204 code, see above          */
	char detail[PKI_ERR_DETAIL_MAX];
};

/* Fill `e` (printf-style detail, no secrets, no input); returns -1. */
int pki_err_set(struct pki_err *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Append OpenSSL's error queue, for logs only, and clear it. */
void pki_err_clear_openssl(void);

/* Bits of the digests and curves a policy may allow. */
enum pki_digest {
	PKI_MD_SHA1 = 1 << 0,
	PKI_MD_SHA224 = 1 << 1,
	PKI_MD_SHA256 = 1 << 2,
	PKI_MD_SHA384 = 1 << 3,
	PKI_MD_SHA512 = 1 << 4,
};

enum pki_curve {
	PKI_CURVE_P256 = 1 << 0,
	PKI_CURVE_P384 = 1 << 1,
	PKI_CURVE_P521 = 1 << 2,
};

enum pki_rsa_padding {
	PKI_PAD_PKCS1 = 1 << 0, /* RSASSA-PKCS1-v1_5 */
	PKI_PAD_PSS = 1 << 1,	/* RSASSA-PSS        */
};

struct pki_policy {
	unsigned pp_rsa_min_bits;	/* 2048 by default (ETSI TS 119 312)     */
	unsigned pp_rsa_max_bits;	/* 8192: bounded verification cost       */
	unsigned pp_digests;		/* enum pki_digest bits                  */
	unsigned pp_curves;		/* enum pki_curve bits                   */
	unsigned pp_rsa_paddings;	/* enum pki_rsa_padding bits             */
	bool pp_allow_rsa;
	bool pp_allow_ec;
};

/* The default policy: RSA >= 2048 (PKCS#1 v1.5 and PSS), ECDSA on P-256,
 * P-384 and P-521, SHA-256/384/512 (SHA-224 and SHA-1 off). */
void pki_policy_default(struct pki_policy *p);

/* Apply a textual policy over `p`, as written in configuration:
 *   "rsa_min_bits=3072 digests=sha256,sha384 curves=P-256 rsa_padding=pss
 *    rsa=on ec=on"
 * Unknown keys or values are an error (a typo never weakens the policy).
 * 0, or -1 with err (status 101). */
int pki_policy_parse(struct pki_policy *p, const char *text, struct pki_err *err);

/* Policy checks, each 0 if allowed, -1 with err (status given by caller's
 * context: the functions use 503 for signatures, the caller may override). */
int pki_policy_check_digest(const struct pki_policy *p, int md_nid, struct pki_err *err);
/* Key type and size/curve of an EVP_PKEY (declared as void * so that this
 * header does not pull OpenSSL in). */
int pki_policy_check_key(const struct pki_policy *p, const void *evp_pkey, struct pki_err *err);

#endif
