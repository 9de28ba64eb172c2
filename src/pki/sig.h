/*
 * sig.h - creating and strictly verifying the signatures the platform hands
 * to APs: CMS SignedData (attached or detached, CAdES-BES signed
 * attributes), raw RSASSA-PKCS1-v1_5, RSASSA-PSS and ECDSA, over data or
 * over a precomputed digest (DTBS application/x-sha256 and friends).
 *
 * Verification applies bad-inputs S-10..S-12 and security.md P-23: exactly
 * one signer; the signer certificate equals the expected (registered) one;
 * the signed content equals the DTBS; algorithms allowed by the crypto
 * policy (pki.h); the certificate chains to a trusted CA and is not revoked.
 * Outcomes (struct pki_err.status):
 *   0 on success (the caller answers 500 SIGNATURE, or 502 VALID_SIGNATURE
 *     when the AP asked for validation),
 *   503 INVALID_SIGNATURE  malformed CMS, wrong signer, content mismatch,
 *                          bad signature value, algorithm refused by policy,
 *   501 REVOKED_CERTIFICATE the signer certificate is revoked,
 *   422 NO_CERT_FOUND      signer certificate expired, not yet valid, or
 *                          not chaining to a trusted CA,
 *   900 INTERNAL_ERROR     our side failed (memory, revocation data needed
 *                          but missing or stale: fail closed, F-07).
 *
 * Ownership: inputs are borrowed; output buffers are allocated with
 * OPENSSL_malloc and belong to the caller (OPENSSL_free).  Private keys are
 * only used, never copied or serialized.
 */
#ifndef MSSP_PKI_SIG_H
#define MSSP_PKI_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki.h"

enum pki_sig_format {
	PKI_SIG_CMS,   /* CMS SignedData (what TS 102 204 Base64Signature carries) */
	PKI_SIG_PKCS1, /* raw RSASSA-PKCS1-v1_5 signature value                    */
	PKI_SIG_PSS,   /* raw RSASSA-PSS (salt = digest length, MGF1 same digest)   */
	PKI_SIG_ECDSA, /* raw ECDSA, DER-encoded Ecdsa-Sig-Value                   */
};

/* Flags for signing and verifying. */
#define PKI_SIG_DETACHED (1u << 0) /* CMS: content not embedded                   */
#define PKI_SIG_DIGEST	 (1u << 1) /* `data` is already the digest (md_nid's size)
				    * and is signed as such: for CMS it becomes
				    * the messageDigest attribute, detached       */

/* Create a CMS SignedData over `data` with CAdES-BES signed attributes
 * (contentType, messageDigest, signingTime, signingCertificateV2), the
 * signer certificate first in `certificates`, then `chain` (may be NULL).
 * `md_nid` is the digest (NID_sha256 ...).  Attached unless
 * PKI_SIG_DETACHED or PKI_SIG_DIGEST.  DER in *out.  0 or -1 with err.
 * Borrows every argument (the key is used, never copied).  Refused with
 * 101: a digest or key below pki_policy_default() (new signatures are never
 * weak, whatever a verifier still accepts), a key not matching `cert`, a
 * digest of the wrong length, data over MSSP_PKI_SIG_MAX_DATA; 900: OpenSSL
 * failed.  `chain` entries equal to `cert` are skipped.  Note: DER sorts
 * the certificates SET OF, so "signer first" is the order given to
 * OpenSSL, not necessarily the order on the wire. */
int pki_sig_cms_sign(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
		     const unsigned char *data, size_t len, int md_nid, unsigned flags,
		     unsigned char **out, size_t *outlen, struct pki_err *err);

/* Raw signature (PKCS1, PSS or ECDSA) of `data`, or of the digest `data`
 * with PKI_SIG_DIGEST.  0 or -1 with err.  Same refusals as
 * pki_sig_cms_sign, plus a key type that does not fit `fmt` (101).  ECDSA
 * output is the DER Ecdsa-Sig-Value; *outlen is its actual length. */
int pki_sig_raw_sign(EVP_PKEY *key, enum pki_sig_format fmt, int md_nid,
		     const unsigned char *data, size_t len, unsigned flags,
		     unsigned char **out, size_t *outlen, struct pki_err *err);

/* Verify a raw signature with the public key of `cert` (its validity and
 * status are checked as for CMS when opts->trust is set).  0 or -1.
 * `opts` may be NULL (default policy, no expected signer, no chain check);
 * vo_flags may hold PKI_SIG_DIGEST only.  PSS requires salt = digest length
 * and MGF1 with the same digest; ECDSA requires strict DER.  The signature
 * value is at most MSSP_PKI_SIG_MAX_RAW bytes.  Borrows everything. */
struct pki_verify_opts;
int pki_sig_raw_verify(X509 *cert, enum pki_sig_format fmt, int md_nid,
		       const unsigned char *data, size_t len,
		       const unsigned char *sig, size_t siglen,
		       const struct pki_verify_opts *opts, struct pki_err *err);

struct pki_verify_opts {
	const struct pki_policy *vo_policy; /* NULL: pki_policy_default()       */
	X509_STORE *vo_trust;		    /* trusted CAs, and CRLs when
					     * vo_check_revocation             */
	X509 *vo_expected_signer;	    /* the registered certificate; NULL:
					     * any signer that chains to trust  */
	bool vo_check_revocation;	    /* require a current CRL for the
					     * signer's issuer (fail closed)    */
	time_t vo_at;			    /* verification time; 0 = now       */
	unsigned vo_flags;		    /* PKI_SIG_DETACHED / PKI_SIG_DIGEST */
	int vo_md_nid;			    /* with PKI_SIG_DIGEST: the digest
					     * algorithm the DTBS declared      */
};

struct pki_verify_result {
	X509 *vr_signer;	/* signer certificate (a new reference: X509_free) */
	int vr_md_nid;		/* digest used by the signer                       */
	time_t vr_signing_time; /* signingTime attribute, 0 if absent              */
};

/* Verify a DER CMS SignedData against the DTBS the platform sent (the
 * content for attached/detached signatures, the digest with
 * PKI_SIG_DIGEST).  `res` may be NULL.  0 or -1 with err (see top).
 * opts->vo_trust is required (NULL: 900, never "valid").  The checks and
 * their order are in docs/internals/sig.md; among them: the input is at
 * most MSSP_PKI_SIG_MAX_CMS bytes of strict DER (OpenSSL's re-encoding
 * must give back the same bytes: BER, indefinite lengths, unsorted SET OFs
 * and trailing bytes are 503), at most MSSP_PKI_SIG_MAX_CMS_CERTS
 * certificates, which only help build the path (never anchors).  A CMS
 * without the signer's certificate is accepted only against
 * vo_expected_signer.  `res` is zeroed first and filled on success only. */
int pki_sig_cms_verify(const unsigned char *der, size_t len,
		       const unsigned char *dtbs, size_t dtbs_len,
		       const struct pki_verify_opts *opts,
		       struct pki_verify_result *res, struct pki_err *err);

/* Release what a verification result holds.  Accepts NULL. */
void pki_verify_result_clear(struct pki_verify_result *res);

/* A signature as received (TS 102 204 Base64Signature, an operator's file)
 * to DER: DER is passed through, PEM ("CMS" or "PKCS7" block) and base64
 * (whitespace allowed) are decoded; the form is detected from the content.
 * Only the transport encoding is handled: the DER is checked by
 * pki_sig_cms_verify.  *der is a new OPENSSL_malloc'd buffer (OPENSSL_free).
 * 0, or -1 with err (503 not a signature / larger than
 * MSSP_PKI_SIG_MAX_CMS, 101 no input, 900 out of memory). */
int pki_sig_decode_input(const unsigned char *in, size_t len, unsigned char **der, size_t *derlen,
			 struct pki_err *err);

#endif
