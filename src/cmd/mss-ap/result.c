/*
 * result.c - what came back: a message of the expected type, a fault, or
 * something an AP cannot use.  The project's decoders read it (no flags:
 * responses and faults are what a client expects), so a response the
 * server writes and its own decoder refuses shows up here as a bug.
 *
 * The user's signature is checked as the AP must check it before trusting
 * it (security.md P-23): pki_sig_cms_verify against the user CA only, and
 * the signed content equal to the DTBS this process sent.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "cmd/mss-ap/ap.h"
#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"
#include "pki/sig.h"

struct mss_msg *
ap_decode_any(const char *buf, size_t len, struct mss_err *err)
{
	size_t i = 0;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i < len && buf[i] == '<')
		return mss_soap_decode(buf, len, 0, err);
	if (i < len && buf[i] == '{')
		return mss_json_decode(buf, len, 0, err);
	mss_err_set(err, MSS_WRONG_PARAM, 0, i == len ? "Empty body" : "Neither SOAP nor JSON");
	return NULL;
}

int
ap_status_code(const struct mss_status *st)
{
	const char *v;
	char *end;
	long n;

	if (st == NULL || st->code == NULL || (v = st->code->value) == NULL)
		return 0;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n <= 0 || n > 99999)
		return 0;
	return (int)n;
}

/* "_101" (or "mss:_101" from a lax peer) to 101; 0 when not a code. */
static int
fault_code(const char *v)
{
	const char *p;
	char *end;
	long n;

	if (v == NULL)
		return 0;
	p = strrchr(v, ':');
	p = p ? p + 1 : v;
	if (*p == '_')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	n = strtol(p, &end, 10);
	if (*end != '\0' || n <= 0 || n > 99999)
		return 0;
	return (int)n;
}

/* "HTTP <http><what><text>" as the reason an answer is unusable. */
static void
bad(struct ap_result *r, long http, const char *what, const char *text)
{
	r->r_kind = AP_R_BAD;
	snprintf(r->r_why, sizeof(r->r_why), "HTTP %ld%s%s", http, what, text);
}

void
ap_result_parse(long http, const char *body, size_t len, enum mss_msg_type expect,
		struct ap_result *r)
{
	struct mss_err err = {0};
	struct mss_msg *m;

	memset(r, 0, sizeof(*r));
	r->r_detail = "";
	r->r_name = "";
	if (len == 0) {
		bad(r, http, " with an empty body", "");
		return;
	}
	m = ap_decode_any(body, len, &err);
	if (m == NULL) {
		bad(r, http, ", answer not understood: ", err.detail);
		return;
	}
	r->r_msg = m;
	if (m->type == MSS_FAULT) {
		const struct mss_fault_msg *f = m->u.fault;

		r->r_kind = AP_R_FAULT;
		/* A fault without a usable code is an internal error for an AP
		 * (laverca-rest does the same, protocol.md §7). */
		r->r_code = fault_code(f->subcode_value);
		if (r->r_code == 0)
			r->r_code = MSS_INTERNAL_ERROR;
		r->r_name = mss_status_lookup(r->r_code) ? mss_status_name(r->r_code)
			    : f->reason				 ? f->reason
								 : "UNKNOWN";
		r->r_detail = f->detail ? f->detail : "";
		return;
	}
	if (m->type != expect) {
		bad(r, http, " with an unexpected ", mss_msg_info(m->type)->element);
		return;
	}
	if (http != 200) {
		bad(r, http, " and a success message instead of a fault: ", mss_msg_info(m->type)->element);
		return;
	}
	/* The checks the server applies to what it receives, applied to what
	 * it sends: an answer missing a required part is not usable. */
	if (mss_validate(m, &err) != 0) {
		bad(r, http, ", invalid answer: ", err.detail);
		return;
	}
	r->r_msg = NULL;
	ap_result_set_msg(r, m);
}

void
ap_result_set_msg(struct ap_result *r, struct mss_msg *m)
{
	const struct mss_status *st = NULL;

	memset(r, 0, sizeof(*r));
	r->r_detail = "";
	r->r_msg = m;
	r->r_kind = AP_R_MSG;
	switch (m->type) {
	case MSS_SIGNATURE_RESP:
		st = m->u.sig_resp->status;
		r->r_mssp_trans_id = m->u.sig_resp->mssp_trans_id;
		r->r_sig = m->u.sig_resp->signature;
		break;
	case MSS_STATUS_RESP:
		st = m->u.status_resp->status;
		r->r_mssp_trans_id = m->u.status_resp->mssp_trans_id;
		r->r_sig = m->u.status_resp->signature;
		break;
	case MSS_RECEIPT_RESP: st = m->u.receipt_resp->status; break;
	case MSS_PROFILE_RESP: st = m->u.profile_resp->status; break;
	case MSS_REGISTRATION_RESP: st = m->u.reg_resp->status; break;
	case MSS_HANDSHAKE_RESP: r->r_mssp_trans_id = m->u.hs_resp->mssp_trans_id; break;
	default: break;
	}
	r->r_code = ap_status_code(st);
	if (mss_status_lookup(r->r_code) != NULL)
		r->r_name = mss_status_name(r->r_code);
	else if (st != NULL && st->message != NULL)
		r->r_name = st->message;
	else
		r->r_name = "UNKNOWN";
}

void
ap_result_free(struct ap_result *r)
{
	mss_msg_free(r->r_msg);
	memset(r, 0, sizeof(*r));
}

/* ---- signatures ------------------------------------------------------- */

int
ap_verifier_load(struct ap_verifier *v, const char *user_ca_file, char *err, size_t errlen)
{
	v->v_store = X509_STORE_new();
	if (v->v_store == NULL || X509_STORE_load_file(v->v_store, user_ca_file) != 1) {
		snprintf(err, errlen, "%s: cannot load the user CA certificate", user_ca_file);
		ERR_clear_error();
		ap_verifier_free(v);
		return -1;
	}
	return 0;
}

void
ap_verifier_free(struct ap_verifier *v)
{
	X509_STORE_free(v->v_store);
	v->v_store = NULL;
}

int
ap_verify(const struct ap_verifier *v, const struct mss_signature *sig, const unsigned char *dtbs,
	  size_t dtbs_len, char *subject, size_t sublen, char *why, size_t whylen)
{
	struct pki_verify_opts opts;
	struct pki_verify_result res;
	struct pki_err perr;
	unsigned char *der = NULL;
	size_t derlen = 0;
	BIO *b = NULL;
	char *s = NULL;
	long n;
	int rc = -1;

	subject[0] = '\0';
	if (sig == NULL) {
		snprintf(why, whylen, "no signature in the answer");
		return -1;
	}
	if (sig->base64_signature == NULL) {
		snprintf(why, whylen, "signature is not a Base64Signature (CMS)");
		return -1;
	}
	if (pki_sig_decode_input((const unsigned char *)sig->base64_signature,
				 strlen(sig->base64_signature), &der, &derlen, &perr) != 0) {
		snprintf(why, whylen, "%d %s", perr.status, perr.detail);
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.vo_trust = v->v_store;
	/* No vo_expected_signer: an AP knows the user by the CA, not by a
	 * registered certificate.  No revocation data at the AP: a revoked
	 * certificate is the MSSP's 501. */
	if (pki_sig_cms_verify(der, derlen, dtbs, dtbs_len, &opts, &res, &perr) != 0) {
		snprintf(why, whylen, "%d %s", perr.status, perr.detail);
		goto out;
	}
	if ((b = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(b, X509_get_subject_name(res.vr_signer), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &s)) >= 0)
		snprintf(subject, sublen, "%.*s", (int)n, s ? s : "");
	else
		snprintf(subject, sublen, "?");
	pki_verify_result_clear(&res);
	rc = 0;
out:
	BIO_free(b);
	OPENSSL_free(der);
	return rc;
}
