/*
 * sig.c - CMS SignedData (CAdES-BES signed attributes) and raw
 * PKCS#1 v1.5 / PSS / ECDSA signatures: creation, and the strict
 * verification of bad-inputs S-10..S-12 (security.md P-23, P-27).
 *
 * Verification is written as a sequence of explicit checks instead of one
 * call to CMS_verify(): every check maps to exactly one documented outcome
 * (503 / 501 / 422 / 900), and nothing is accepted because OpenSSL's
 * defaults happen to be lenient (BER, extra signers, certificates trusted
 * because they are in the message).  docs/internals/sig.md lists the checks
 * in order.
 */
#include "pki/sig.h"

#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "util/limits.h"

#define SIG_KNOWN_FLAGS (PKI_SIG_DETACHED | PKI_SIG_DIGEST)

/*
 * The digests this module handles at all.  Anything else (MD5, SHA-3,
 * truncated SHA-512...) is refused before the policy is even asked, so a
 * permissive policy cannot enable an algorithm nobody reviewed here.
 */
static const EVP_MD *
sig_md(int nid)
{
	switch (nid) {
	case NID_sha1:
	case NID_sha224:
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
		return EVP_get_digestbynid(nid);
	default:
		return NULL;
	}
}

/* Fail with `status`, dropping whatever OpenSSL queued (the detail text is
 * ours; OpenSSL's queue must not leak into unrelated later calls). */
static int
sig_fail(struct pki_err *err, int status, const char *detail)
{
	pki_err_clear_openssl();
	return pki_err_set(err, status, "%s", detail);
}

/* Re-stamp a policy refusal with the status of the caller's context. */
static int
sig_restatus(struct pki_err *err, int status)
{
	if (err != NULL)
		err->status = status;
	pki_err_clear_openssl();
	return -1;
}

static bool
sig_key_fits(const EVP_PKEY *k, enum pki_sig_format fmt)
{
	switch (fmt) {
	case PKI_SIG_PKCS1:
		/* An RSA-PSS (restricted) key must never make PKCS#1 v1.5. */
		return EVP_PKEY_is_a(k, "RSA");
	case PKI_SIG_PSS:
		return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "RSA-PSS");
	case PKI_SIG_ECDSA:
		return EVP_PKEY_is_a(k, "EC");
	default:
		return false;
	}
}

/* Padding parameters of a raw signature.  PSS: MGF1 with the message
 * digest, salt = digest length (the verifier insists on the same, so a
 * "salt auto" signature of another shape is refused). */
static int
sig_set_padding(EVP_PKEY_CTX *pc, enum pki_sig_format fmt, const EVP_MD *md)
{
	switch (fmt) {
	case PKI_SIG_PKCS1:
		return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0 ? 0 : -1;
	case PKI_SIG_PSS:
		if (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) <= 0)
			return -1;
		return 0;
	case PKI_SIG_ECDSA:
		return 0;
	default:
		return -1;
	}
}

/*
 * New signatures are never weaker than the default policy, whatever a
 * verifier elsewhere might still accept: the signing functions take no
 * policy argument, so the floor is fixed here.
 */
static int
sig_sign_floor(const EVP_PKEY *key, int md_nid, struct pki_err *err)
{
	struct pki_policy floor;

	pki_policy_default(&floor);
	if (pki_policy_check_digest(&floor, md_nid, err) != 0 ||
	    pki_policy_check_key(&floor, key, err) != 0)
		return sig_restatus(err, 101);
	return 0;
}

static bool
sig_same_der(X509 *a, X509 *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la, lb;
	bool same;

	la = i2d_X509(a, &da);
	lb = i2d_X509(b, &db);
	same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

/* ------------------------------------------------------------------------
 * Signing
 */

int
pki_sig_cms_sign(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
		 const unsigned char *data, size_t len, int md_nid, unsigned flags,
		 unsigned char **out, size_t *outlen, struct pki_err *err)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL;
	const EVP_MD *md;
	unsigned char *der = NULL;
	unsigned cflags;
	int derlen, i, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (key == NULL || cert == NULL || out == NULL || outlen == NULL ||
	    (data == NULL && len > 0) || (flags & ~SIG_KNOWN_FLAGS) != 0)
		return sig_fail(err, 101, "CMS signing: missing or invalid argument");
	if (len > MSSP_PKI_SIG_MAX_DATA)
		return sig_fail(err, 101, "CMS signing: data too large");
	if (sk_X509_num(chain) > MSSP_PKI_SIG_MAX_CMS_CERTS - 1)
		return sig_fail(err, 101, "CMS signing: chain too long");
	if ((md = sig_md(md_nid)) == NULL)
		return sig_fail(err, 101, "CMS signing: unsupported digest");
	if (sig_sign_floor(key, md_nid, err) != 0)
		return -1;
	if ((flags & PKI_SIG_DIGEST) && len != (size_t)EVP_MD_get_size(md))
		return sig_fail(err, 101, "CMS signing: digest length does not match the algorithm");
	if (X509_check_private_key(cert, key) != 1)
		return sig_fail(err, 101, "CMS signing: key does not match the certificate");

	/* CMS_PARTIAL: an empty SignedData we complete ourselves.  CMS_BINARY:
	 * the bytes are signed as given, never MIME-canonicalised. */
	cflags = CMS_PARTIAL | CMS_BINARY;
	if (flags & (PKI_SIG_DETACHED | PKI_SIG_DIGEST))
		cflags |= CMS_DETACHED;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, cflags)) == NULL)
		goto fail;
	/* CMS_CADES with an explicit md: ESS signing-certificate-v2 over the
	 * signer certificate with that digest (CAdES-BES).  No S/MIME
	 * capabilities: the attribute set is exactly the documented one.  The
	 * signer certificate is added to `certificates` here, before the chain. */
	si = CMS_add1_signer(cms, cert, key, md, CMS_PARTIAL | CMS_BINARY | CMS_CADES | CMS_NOSMIMECAP);
	if (si == NULL)
		goto fail;
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);

		/* A chain file that repeats the signer would make
		 * CMS_add1_cert fail on the duplicate. */
		if (X509_cmp(c, cert) == 0)
			continue;
		if (CMS_add1_cert(cms, c) != 1)
			goto fail;
	}

	if (flags & PKI_SIG_DIGEST) {
		/* No content to hash: messageDigest is the caller's digest, and
		 * contentType is added by hand because CMS_final() (which would
		 * add both) is not run.  CMS_SignerInfo_sign adds signingTime. */
		if (CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
						data, (int)len) != 1 ||
		    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
						OBJ_nid2obj(NID_pkcs7_data), -1) != 1 ||
		    CMS_SignerInfo_sign(si) != 1)
			goto fail;
	} else {
		if ((in = BIO_new_mem_buf(len > 0 ? data : (const unsigned char *)"", (int)len)) == NULL)
			goto fail;
		if (CMS_final(cms, in, NULL, CMS_BINARY) != 1)
			goto fail;
	}

	if ((derlen = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		goto fail;
	*out = der;
	*outlen = (size_t)derlen;
	der = NULL;
	rc = 0;
	goto out;
fail:
	sig_fail(err, 900, "CMS signing failed");
out:
	OPENSSL_free(der);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
pki_sig_raw_sign(EVP_PKEY *key, enum pki_sig_format fmt, int md_nid,
		 const unsigned char *data, size_t len, unsigned flags,
		 unsigned char **out, size_t *outlen, struct pki_err *err)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL; /* owned only in digest mode */
	const EVP_MD *md;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc = -1;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (key == NULL || out == NULL || outlen == NULL || (data == NULL && len > 0) ||
	    (flags & ~PKI_SIG_DIGEST) != 0)
		return sig_fail(err, 101, "Raw signing: missing or invalid argument");
	if (len > MSSP_PKI_SIG_MAX_DATA)
		return sig_fail(err, 101, "Raw signing: data too large");
	if ((md = sig_md(md_nid)) == NULL)
		return sig_fail(err, 101, "Raw signing: unsupported digest");
	if (!sig_key_fits(key, fmt))
		return sig_fail(err, 101, "Raw signing: key type does not fit the signature format");
	if (sig_sign_floor(key, md_nid, err) != 0)
		return -1;
	if ((flags & PKI_SIG_DIGEST) && len != (size_t)EVP_MD_get_size(md))
		return sig_fail(err, 101, "Raw signing: digest length does not match the algorithm");

	if (flags & PKI_SIG_DIGEST) {
		if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
		    EVP_PKEY_sign_init(pctx) <= 0 || sig_set_padding(pctx, fmt, md) != 0 ||
		    EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0 ||
		    EVP_PKEY_sign(pctx, NULL, &siglen, data, len) <= 0)
			goto fail;
		if (siglen == 0 || siglen > MSSP_PKI_SIG_MAX_RAW || (sig = OPENSSL_malloc(siglen)) == NULL)
			goto fail;
		if (EVP_PKEY_sign(pctx, sig, &siglen, data, len) <= 0)
			goto fail;
	} else {
		EVP_PKEY_CTX *dctx = NULL; /* owned by mctx */

		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestSignInit_ex(mctx, &dctx, EVP_MD_get0_name(md), NULL, NULL, key, NULL) <= 0 ||
		    sig_set_padding(dctx, fmt, md) != 0 ||
		    EVP_DigestSign(mctx, NULL, &siglen, data, len) <= 0)
			goto fail;
		if (siglen == 0 || siglen > MSSP_PKI_SIG_MAX_RAW || (sig = OPENSSL_malloc(siglen)) == NULL)
			goto fail;
		if (EVP_DigestSign(mctx, sig, &siglen, data, len) <= 0)
			goto fail;
	}
	*out = sig;
	*outlen = siglen; /* ECDSA: the actual DER length, not the maximum */
	sig = NULL;
	rc = 0;
	goto out;
fail:
	sig_fail(err, 900, "Raw signing failed");
out:
	OPENSSL_free(sig);
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* ------------------------------------------------------------------------
 * Verification helpers
 */

/*
 * Build and validate the signer's chain against opts->vo_trust at
 * opts->vo_at.  `untrusted` (may be NULL) only helps path building: a
 * certificate found there is never an anchor.  On success the validated
 * chain is returned in *chain_out (caller frees with sk_X509_pop_free) when
 * chain_out is not NULL.  Then every certificate's key, and the digest of
 * every signature in the path below the anchor, must satisfy the policy.
 */
static int
sig_chain_check(const struct pki_verify_opts *o, const struct pki_policy *pol, X509 *leaf,
		STACK_OF(X509) *untrusted, STACK_OF(X509) **chain_out, struct pki_err *err)
{
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *vp;
	STACK_OF(X509) *chain = NULL;
	int i, n, verr, md_nid, rc = -1;

	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, o->vo_trust, leaf, untrusted) != 1) {
		sig_fail(err, 900, "Cannot set up certificate validation");
		goto out;
	}
	vp = X509_STORE_CTX_get0_param(ctx);
	/* Purpose "any": signer certificates carry whatever key usage their
	 * CA gives them; the TLS purposes do not apply to a signature.  Set on
	 * the context's own parameters so a store default cannot impose one. */
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	X509_VERIFY_PARAM_set_depth(vp, MSSP_PKI_SIG_MAX_DEPTH);
	if (o->vo_at != 0)
		X509_VERIFY_PARAM_set_time(vp, o->vo_at);
	if (o->vo_check_revocation)
		X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CRL_CHECK);

	if (X509_verify_cert(ctx) != 1) {
		verr = X509_STORE_CTX_get_error(ctx);
		switch (verr) {
		case X509_V_ERR_CERT_REVOKED:
			sig_fail(err, 501, "Signer certificate is revoked");
			break;
		/* Revocation status unknown: fail closed (F-07), never "valid". */
		case X509_V_ERR_UNABLE_TO_GET_CRL:
		case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
		case X509_V_ERR_CRL_HAS_EXPIRED:
		case X509_V_ERR_CRL_NOT_YET_VALID:
		case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
		case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
		case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
			sig_fail(err, 900, "Revocation status unavailable (CRL missing, stale or unusable)");
			break;
		case X509_V_ERR_OUT_OF_MEM:
		case X509_V_ERR_UNSPECIFIED:
			sig_fail(err, 900, "Certificate validation failed internally");
			break;
		default:
			/* OpenSSL's reason text is static, never input bytes. */
			pki_err_clear_openssl();
			pki_err_set(err, 422, "Signer certificate not acceptable: %s",
				    X509_verify_cert_error_string(verr));
			break;
		}
		goto out;
	}
	if ((chain = X509_STORE_CTX_get1_chain(ctx)) == NULL) {
		sig_fail(err, 900, "Certificate validation failed internally");
		goto out;
	}
	n = sk_X509_num(chain);
	for (i = 0; i < n; i++) {
		X509 *c = sk_X509_value(chain, i);

		if (pki_policy_check_key(pol, X509_get0_pubkey(c), err) != 0) {
			sig_restatus(err, 503);
			goto out;
		}
		/* The anchor's self-signature proves nothing and is not checked
		 * (an old root signed with SHA-1 is still a usable anchor). */
		if (i == n - 1)
			break;
		if (X509_get_signature_info(c, &md_nid, NULL, NULL, NULL) != 1 ||
		    pki_policy_check_digest(pol, md_nid, err) != 0) {
			sig_fail(err, 503, "Certificate signature algorithm not allowed by the crypto policy");
			goto out;
		}
	}
	if (chain_out != NULL) {
		*chain_out = chain;
		chain = NULL;
	}
	rc = 0;
out:
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_CTX_free(ctx);
	return rc;
}

/* The AlgorithmIdentifier carried in an MGF1 parameter: its digest NID, or
 * NID_undef when the structure is anything else. */
static int
sig_mgf1_md_nid(const X509_ALGOR *mgf)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid = NID_undef;
	X509_ALGOR *h;

	if (mgf == NULL)
		return NID_sha1; /* RFC 4055 default: mgf1SHA1 */
	X509_ALGOR_get0(&obj, &ptype, &pval, mgf);
	if (OBJ_obj2nid(obj) != NID_mgf1 || ptype != V_ASN1_SEQUENCE)
		return NID_undef;
	h = ASN1_item_unpack((const ASN1_STRING *)pval, ASN1_ITEM_rptr(X509_ALGOR));
	if (h != NULL)
		nid = OBJ_obj2nid(h->algorithm);
	X509_ALGOR_free(h);
	return nid;
}

/*
 * The SignerInfo's signatureAlgorithm must fit the key, name the same
 * digest as digestAlgorithm when it names one, and use a padding the policy
 * allows.  OpenSSL would otherwise accept e.g. sha1WithRSAEncryption beside
 * a SHA-256 digestAlgorithm (it hashes with the latter).
 */
static int
sig_check_cms_sigalg(const struct pki_policy *pol, const X509_ALGOR *alg, const EVP_PKEY *pk,
		     const EVP_MD *md, struct pki_err *err)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid, hnid = NID_undef, pknid = NID_undef, md_nid = EVP_MD_get_type(md);
	RSA_PSS_PARAMS *pss = NULL;
	int rc = -1;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	nid = OBJ_obj2nid(obj);
	if (nid != NID_undef && nid != NID_rsassaPss)
		(void)OBJ_find_sigid_algs(nid, &hnid, &pknid);

	if (EVP_PKEY_is_a(pk, "EC")) {
		/* ecdsa-with-SHAx, or the bare key OID some tokens write. */
		if (!(nid == NID_X9_62_id_ecPublicKey || (pknid == NID_X9_62_id_ecPublicKey && hnid == md_nid)))
			goto bad;
		if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
			goto bad;
		return 0;
	}
	if (!EVP_PKEY_is_a(pk, "RSA") && !EVP_PKEY_is_a(pk, "RSA-PSS"))
		goto bad;
	if (nid == NID_rsaEncryption || (pknid == NID_rsaEncryption && hnid == md_nid)) {
		if (EVP_PKEY_is_a(pk, "RSA-PSS"))
			goto bad;
		if ((pol->pp_rsa_paddings & PKI_PAD_PKCS1) == 0)
			return sig_fail(err, 503, "RSA PKCS#1 v1.5 not allowed by the crypto policy");
		return 0;
	}
	if (nid != NID_rsassaPss)
		goto bad;
	if ((pol->pp_rsa_paddings & PKI_PAD_PSS) == 0)
		return sig_fail(err, 503, "RSA-PSS not allowed by the crypto policy");
	/* Absent parameters mean SHA-1/MGF1-SHA-1/salt 20: refused below. */
	if (ptype != V_ASN1_SEQUENCE ||
	    (pss = ASN1_item_unpack((const ASN1_STRING *)pval, ASN1_ITEM_rptr(RSA_PSS_PARAMS))) == NULL)
		goto bad;
	if ((pss->hashAlgorithm ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1) != md_nid ||
	    sig_mgf1_md_nid(pss->maskGenAlgorithm) != md_nid ||
	    (pss->saltLength ? ASN1_INTEGER_get(pss->saltLength) : 20) != EVP_MD_get_size(md) ||
	    (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1))
		goto bad;
	rc = 0;
	goto out;
bad:
	sig_fail(err, 503, "Signature algorithm does not fit the key, digest or policy");
out:
	RSA_PSS_PARAMS_free(pss);
	return rc;
}

/*
 * The ESS signing-certificate(-v2) attribute, when present, must designate
 * the signer as its first entry and every entry must be in the validated
 * chain (what CMS_verify does with CMS_CADES).  Absent is fine: devices
 * rarely write CAdES attributes.
 */
static int
sig_check_ess(CMS_SignerInfo *si, STACK_OF(X509) *chain, struct pki_err *err)
{
	ESS_SIGNING_CERT *ss = NULL;
	ESS_SIGNING_CERT_V2 *ss2 = NULL;
	ASN1_STRING *v;
	const unsigned char *p;
	bool has1, has2;
	int rc = -1;

	has1 = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificate, -1) >= 0;
	has2 = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificateV2, -1) >= 0;
	if (!has1 && !has2)
		return 0;
	if (has1) {
		v = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_id_smime_aa_signingCertificate), -3,
						V_ASN1_SEQUENCE);
		if (v == NULL || (p = v->data, ss = d2i_ESS_SIGNING_CERT(NULL, &p, v->length)) == NULL ||
		    p != v->data + v->length)
			goto bad;
	}
	if (has2) {
		v = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_id_smime_aa_signingCertificateV2), -3,
						V_ASN1_SEQUENCE);
		if (v == NULL || (p = v->data, ss2 = d2i_ESS_SIGNING_CERT_V2(NULL, &p, v->length)) == NULL ||
		    p != v->data + v->length)
			goto bad;
	}
	if (OSSL_ESS_check_signing_certs(ss, ss2, chain, 1) <= 0)
		goto bad;
	rc = 0;
	goto out;
bad:
	sig_fail(err, 503, "Signing-certificate attribute does not designate the signer");
out:
	ESS_SIGNING_CERT_free(ss);
	ESS_SIGNING_CERT_V2_free(ss2);
	return rc;
}

static time_t
sig_signing_time(CMS_SignerInfo *si)
{
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;
	int idx;

	idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	if (idx < 0 || (a = CMS_signed_get_attr(si, idx)) == NULL || X509_ATTRIBUTE_count(a) != 1)
		return 0;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	if (t == NULL || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME))
		return 0;
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t->value.utctime, &tm) != 1)
		return 0;
	return timegm(&tm);
}

static int
sig_check_flags(const struct pki_verify_opts *o, struct pki_err *err)
{
	if (o == NULL || (o->vo_flags & ~SIG_KNOWN_FLAGS) != 0)
		return sig_fail(err, 101, "Signature verification: invalid options");
	return 0;
}

/* ------------------------------------------------------------------------
 * CMS verification
 */

int
pki_sig_cms_verify(const unsigned char *der, size_t len,
		   const unsigned char *dtbs, size_t dtbs_len,
		   const struct pki_verify_opts *opts,
		   struct pki_verify_result *res, struct pki_err *err)
{
	struct pki_policy defpol;
	const struct pki_policy *pol;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *si;
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	X509 *signer = NULL; /* borrowed from `certs` or opts */
	X509_ALGOR *dig, *sigalg;
	ASN1_OCTET_STRING **content, *mdattr;
	ASN1_OBJECT *ct;
	const EVP_MD *md;
	const unsigned char *p;
	unsigned char *re = NULL, expect[EVP_MAX_MD_SIZE];
	unsigned int expect_len = 0;
	bool detached;
	int relen, n, i, md_nid, rc = -1;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (sig_check_flags(opts, err) != 0)
		return -1;
	if (dtbs == NULL && dtbs_len > 0)
		return sig_fail(err, 101, "Signature verification: missing DTBS");
	if (dtbs_len > MSSP_PKI_SIG_MAX_DATA)
		return sig_fail(err, 101, "Signature verification: DTBS too large");
	/* Never "valid" without an explicit set of anchors: a certificate is
	 * not trusted because the message carries it. */
	if (opts->vo_trust == NULL)
		return sig_fail(err, 900, "Signature verification: no trust store configured");
	if (opts->vo_flags & PKI_SIG_DIGEST) {
		const EVP_MD *dmd = sig_md(opts->vo_md_nid);

		if (dmd == NULL || dtbs_len != (size_t)EVP_MD_get_size(dmd))
			return sig_fail(err, 101, "Signature verification: DTBS digest algorithm or length invalid");
	}
	if (opts->vo_policy != NULL) {
		pol = opts->vo_policy;
	} else {
		pki_policy_default(&defpol);
		pol = &defpol;
	}
	if (der == NULL || len == 0)
		return sig_fail(err, 503, "Signature missing");
	if (len > MSSP_PKI_SIG_MAX_CMS)
		return sig_fail(err, 503, "Signature larger than allowed");

	/* 1. Strict DER: one complete structure, and OpenSSL's re-encoding of
	 *    what it parsed gives back exactly the input.  This refuses
	 *    trailing bytes, indefinite lengths, non-minimal lengths, BER
	 *    constructed strings and unsorted SET OFs in one comparison. */
	p = der;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		sig_fail(err, 503, "Signature is not a CMS structure");
		goto out;
	}
	if (p != der + len) {
		sig_fail(err, 503, "Trailing bytes after the CMS structure");
		goto out;
	}
	relen = i2d_CMS_ContentInfo(cms, &re);
	if (relen <= 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
		sig_fail(err, 503, "CMS structure is not DER-encoded");
		goto out;
	}

	/* 2. Shape: SignedData over id-data, exactly one SignerInfo. */
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		sig_fail(err, 503, "CMS content type is not SignedData");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		sig_fail(err, 503, "Encapsulated content type is not id-data");
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (sk_CMS_SignerInfo_num(sis) != 1) {
		sig_fail(err, 503, "CMS must carry exactly one SignerInfo");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	certs = CMS_get1_certs(cms);
	if (certs == NULL) {
		pki_err_clear_openssl(); /* "no certificates" is not an error yet */
		if ((certs = sk_X509_new_null()) == NULL) {
			sig_fail(err, 900, "Out of memory");
			goto out;
		}
	}
	if (sk_X509_num(certs) > MSSP_PKI_SIG_MAX_CMS_CERTS) {
		sig_fail(err, 503, "Too many certificates in the CMS");
		goto out;
	}

	/* 3. Signed attributes: present, bounded, contentType = id-data and
	 *    messageDigest each exactly once with exactly one value. */
	n = CMS_signed_get_attr_count(si);
	if (n <= 0) {
		sig_fail(err, 503, "Signed attributes missing");
		goto out;
	}
	if (n > MSSP_PKI_SIG_MAX_ATTRS) {
		sig_fail(err, 503, "Too many signed attributes");
		goto out;
	}
	ct = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_contentType), -3, V_ASN1_OBJECT);
	if (ct == NULL || OBJ_obj2nid(ct) != NID_pkcs7_data) {
		sig_fail(err, 503, "contentType attribute missing or not id-data");
		goto out;
	}
	mdattr = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest), -3,
					     V_ASN1_OCTET_STRING);
	if (mdattr == NULL) {
		sig_fail(err, 503, "messageDigest attribute missing or malformed");
		goto out;
	}

	/* 4. Digest algorithm: known, allowed, and the one the DTBS declared. */
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sigalg);
	md_nid = OBJ_obj2nid(dig->algorithm);
	if (pki_policy_check_digest(pol, md_nid, err) != 0) {
		sig_restatus(err, 503);
		goto out;
	}
	if ((md = sig_md(md_nid)) == NULL) {
		sig_fail(err, 503, "Unsupported digest algorithm");
		goto out;
	}
	if ((opts->vo_flags & PKI_SIG_DIGEST) && md_nid != opts->vo_md_nid) {
		sig_fail(err, 503, "Digest algorithm differs from the one of the DTBS");
		goto out;
	}

	/* 5. Content: attached = eContent byte-equal to the DTBS; detached =
	 *    no eContent.  The messageDigest must then equal H(DTBS), or the
	 *    DTBS itself when the DTBS is a digest. */
	detached = (opts->vo_flags & (PKI_SIG_DETACHED | PKI_SIG_DIGEST)) != 0;
	content = CMS_get0_content(cms);
	if (detached) {
		if (content != NULL && *content != NULL) {
			sig_fail(err, 503, "Content embedded in a signature expected detached");
			goto out;
		}
	} else if (content == NULL || *content == NULL) {
		sig_fail(err, 503, "Signed content missing");
		goto out;
	} else if ((size_t)ASN1_STRING_length(*content) != dtbs_len ||
		   (dtbs_len > 0 && memcmp(ASN1_STRING_get0_data(*content), dtbs, dtbs_len) != 0)) {
		sig_fail(err, 503, "Signed content differs from the DTBS");
		goto out;
	}
	if (opts->vo_flags & PKI_SIG_DIGEST) {
		memcpy(expect, dtbs, dtbs_len);
		expect_len = (unsigned int)dtbs_len;
	} else if (EVP_Digest(dtbs_len > 0 ? dtbs : (const unsigned char *)"", dtbs_len, expect,
			      &expect_len, md, NULL) != 1) {
		sig_fail(err, 900, "Digest computation failed");
		goto out;
	}
	if ((unsigned int)ASN1_STRING_length(mdattr) != expect_len ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(mdattr), expect, expect_len) != 0) {
		sig_fail(err, 503, "messageDigest does not match the DTBS");
		goto out;
	}

	/* 6. Signer: located by its SignerIdentifier, unique, and byte-equal to
	 *    the registered certificate when one is expected.  A CMS without
	 *    certificates is acceptable only against an expected signer. */
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);

		if (CMS_SignerInfo_cert_cmp(si, c) != 0)
			continue;
		if (signer != NULL) {
			sig_fail(err, 503, "Signer identifier matches several certificates");
			goto out;
		}
		signer = c;
	}
	if (signer == NULL && opts->vo_expected_signer != NULL &&
	    CMS_SignerInfo_cert_cmp(si, opts->vo_expected_signer) == 0)
		signer = opts->vo_expected_signer;
	if (signer == NULL) {
		sig_fail(err, 503, "Signer certificate not found");
		goto out;
	}
	if (opts->vo_expected_signer != NULL && !sig_same_der(signer, opts->vo_expected_signer)) {
		sig_fail(err, 503, "Signer is not the expected certificate");
		goto out;
	}

	/* 7. Algorithms against the policy: key, then the signature algorithm. */
	if (pki_policy_check_key(pol, X509_get0_pubkey(signer), err) != 0) {
		sig_restatus(err, 503);
		goto out;
	}
	if (sig_check_cms_sigalg(pol, sigalg, X509_get0_pubkey(signer), md, err) != 0)
		goto out;

	/* 8. The signature over the signed attributes. */
	CMS_SignerInfo_set1_signer_cert(si, signer);
	if (CMS_SignerInfo_verify(si) != 1) {
		sig_fail(err, 503, "Signature value does not verify");
		goto out;
	}

	/* 9. Chain, validity, revocation at vo_at; the CMS's certificates only
	 *    help build the path.  Then the ESS attribute against that chain. */
	if (sig_chain_check(opts, pol, signer, certs, &chain, err) != 0)
		goto out;
	if (sig_check_ess(si, chain, err) != 0)
		goto out;

	if (res != NULL) {
		if (X509_up_ref(signer) != 1) {
			sig_fail(err, 900, "Out of memory");
			goto out;
		}
		res->vr_signer = signer;
		res->vr_md_nid = md_nid;
		res->vr_signing_time = sig_signing_time(si);
	}
	rc = 0;
out:
	if (rc != 0)
		pki_err_clear_openssl();
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(certs, X509_free);
	OPENSSL_free(re);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* ------------------------------------------------------------------------
 * Raw verification
 */

int
pki_sig_raw_verify(X509 *cert, enum pki_sig_format fmt, int md_nid,
		   const unsigned char *data, size_t len,
		   const unsigned char *sig, size_t siglen,
		   const struct pki_verify_opts *opts, struct pki_err *err)
{
	struct pki_policy defpol;
	const struct pki_policy *pol;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL; /* owned only in digest mode */
	EVP_PKEY *pk;
	const EVP_MD *md;
	unsigned flags = opts != NULL ? opts->vo_flags : 0;
	int rc = -1;

	if (cert == NULL || (data == NULL && len > 0) || (flags & ~SIG_KNOWN_FLAGS) != 0 ||
	    (flags & PKI_SIG_DETACHED) != 0)
		return sig_fail(err, 101, "Raw verification: missing or invalid argument");
	if (len > MSSP_PKI_SIG_MAX_DATA)
		return sig_fail(err, 101, "Raw verification: data too large");
	if ((md = sig_md(md_nid)) == NULL)
		return sig_fail(err, 101, "Raw verification: unsupported digest");
	if ((flags & PKI_SIG_DIGEST) && len != (size_t)EVP_MD_get_size(md))
		return sig_fail(err, 101, "Raw verification: digest length does not match the algorithm");
	if (opts != NULL && opts->vo_policy != NULL) {
		pol = opts->vo_policy;
	} else {
		pki_policy_default(&defpol);
		pol = &defpol;
	}
	if (sig == NULL || siglen == 0 || siglen > MSSP_PKI_SIG_MAX_RAW)
		return sig_fail(err, 503, "Signature missing or too large");
	if (opts != NULL && opts->vo_expected_signer != NULL && !sig_same_der(cert, opts->vo_expected_signer))
		return sig_fail(err, 503, "Signer is not the expected certificate");

	pk = X509_get0_pubkey(cert);
	if (pk == NULL)
		return sig_fail(err, 503, "Certificate has no usable public key");
	if (pki_policy_check_digest(pol, md_nid, err) != 0 || pki_policy_check_key(pol, pk, err) != 0)
		return sig_restatus(err, 503);
	if (!sig_key_fits(pk, fmt))
		return sig_fail(err, 503, "Key type does not fit the signature format");
	if ((fmt == PKI_SIG_PKCS1 && (pol->pp_rsa_paddings & PKI_PAD_PKCS1) == 0) ||
	    (fmt == PKI_SIG_PSS && (pol->pp_rsa_paddings & PKI_PAD_PSS) == 0))
		return sig_fail(err, 503, "RSA padding not allowed by the crypto policy");

	if (flags & PKI_SIG_DIGEST) {
		if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
		    EVP_PKEY_verify_init(pctx) <= 0 || sig_set_padding(pctx, fmt, md) != 0 ||
		    EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0) {
			sig_fail(err, 900, "Raw verification setup failed");
			goto out;
		}
		if (EVP_PKEY_verify(pctx, sig, siglen, data, len) != 1) {
			sig_fail(err, 503, "Signature value does not verify");
			goto out;
		}
	} else {
		EVP_PKEY_CTX *dctx = NULL; /* owned by mctx */

		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit_ex(mctx, &dctx, EVP_MD_get0_name(md), NULL, NULL, pk, NULL) <= 0 ||
		    sig_set_padding(dctx, fmt, md) != 0) {
			sig_fail(err, 900, "Raw verification setup failed");
			goto out;
		}
		if (EVP_DigestVerify(mctx, sig, siglen, len > 0 ? data : (const unsigned char *)"", len) != 1) {
			sig_fail(err, 503, "Signature value does not verify");
			goto out;
		}
	}
	if (opts != NULL && opts->vo_trust != NULL &&
	    sig_chain_check(opts, pol, cert, NULL, NULL, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		pki_err_clear_openssl();
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_CTX_free(mctx);
	return rc;
}

void
pki_verify_result_clear(struct pki_verify_result *res)
{
	if (res == NULL)
		return;
	X509_free(res->vr_signer);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------------
 * Input forms
 */

static bool
sig_is_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/' || c == '=';
}

int
pki_sig_decode_input(const unsigned char *in, size_t len, unsigned char **der, size_t *derlen,
		     struct pki_err *err)
{
	static const char pem_begin[] = "-----BEGIN ";
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL, *b64 = NULL;
	long dlen = 0;
	size_t i, n = 0;
	int outl = 0, fin = 0, rc = -1;
	EVP_ENCODE_CTX *ectx = NULL;

	if (der != NULL)
		*der = NULL;
	if (derlen != NULL)
		*derlen = 0;
	if (in == NULL || der == NULL || derlen == NULL || len == 0)
		return sig_fail(err, 101, "Signature input missing");
	/* Base64 and PEM are at most 4/3 of the DER plus line breaks. */
	if (len > 2 * (size_t)MSSP_PKI_SIG_MAX_CMS)
		return sig_fail(err, 503, "Signature larger than allowed");

	if (in[0] == 0x30) {
		/* DER: the SEQUENCE tag.  Never valid as the first byte of PEM
		 * or base64 text ('0' is 0x30 too, but no CMS in base64 starts
		 * with '0': the DER tag encodes as 'M'). */
		if (len > MSSP_PKI_SIG_MAX_CMS)
			return sig_fail(err, 503, "Signature larger than allowed");
		if ((*der = OPENSSL_memdup(in, len)) == NULL)
			return sig_fail(err, 900, "Out of memory");
		*derlen = len;
		return 0;
	}
	for (i = 0; i < len && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n'); i++)
		;
	if (len - i >= sizeof(pem_begin) - 1 && memcmp(in + i, pem_begin, sizeof(pem_begin) - 1) == 0) {
		if ((bio = BIO_new_mem_buf(in, (int)len)) == NULL) {
			sig_fail(err, 900, "Out of memory");
			goto out;
		}
		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			sig_fail(err, 503, "Malformed PEM signature");
			goto out;
		}
		if (strcmp(name, "CMS") != 0 && strcmp(name, "PKCS7") != 0) {
			sig_fail(err, 503, "PEM block is not a CMS or PKCS7 structure");
			goto out;
		}
		if (dlen <= 0 || (size_t)dlen > MSSP_PKI_SIG_MAX_CMS) {
			sig_fail(err, 503, "Signature larger than allowed");
			goto out;
		}
		*der = data;
		*derlen = (size_t)dlen;
		data = NULL;
		rc = 0;
		goto out;
	}

	/* Base64 (TS 102 204 Base64Signature): whitespace allowed anywhere,
	 * any other non-alphabet byte refused. */
	if ((b64 = OPENSSL_malloc(len)) == NULL) {
		sig_fail(err, 900, "Out of memory");
		goto out;
	}
	for (i = 0; i < len; i++) {
		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n')
			continue;
		if (!sig_is_b64_char(in[i])) {
			sig_fail(err, 503, "Signature is neither DER, PEM nor base64");
			goto out;
		}
		b64[n++] = in[i];
	}
	if (n == 0 || n % 4 != 0) {
		sig_fail(err, 503, "Malformed base64 signature");
		goto out;
	}
	if ((data = OPENSSL_malloc(n / 4 * 3 + 3)) == NULL || (ectx = EVP_ENCODE_CTX_new()) == NULL) {
		sig_fail(err, 900, "Out of memory");
		goto out;
	}
	EVP_DecodeInit(ectx);
	if (EVP_DecodeUpdate(ectx, data, &outl, b64, (int)n) < 0 ||
	    EVP_DecodeFinal(ectx, data + outl, &fin) != 1 || outl + fin <= 0) {
		sig_fail(err, 503, "Malformed base64 signature");
		goto out;
	}
	if ((size_t)(outl + fin) > MSSP_PKI_SIG_MAX_CMS) {
		sig_fail(err, 503, "Signature larger than allowed");
		goto out;
	}
	*der = data;
	*derlen = (size_t)(outl + fin);
	data = NULL;
	rc = 0;
out:
	if (rc != 0)
		pki_err_clear_openssl();
	EVP_ENCODE_CTX_free(ectx);
	OPENSSL_free(b64);
	OPENSSL_free(data);
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(bio);
	return rc;
}
