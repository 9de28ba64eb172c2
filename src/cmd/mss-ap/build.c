/*
 * build.c - requests as structs (mss/msg.h), then the project's codecs
 * write them: the client never hand-writes XML or JSON, so what it sends
 * is exactly what the server's decoder is built to read.
 *
 * Every message gets what Laverca sends (protocol.md §2): versions 1/1,
 * the four AP_Info attributes, an empty MSSP_ID.  The Kiuru JSON form is
 * the codec's, with the same content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cmd/mss-ap/ap.h"
#include "mss/json.h"
#include "mss/lex.h"
#include "mss/soap.h"

void
ap_trans_id_new(char out[AP_TRANSID_LEN])
{
	struct timeval tv;
	unsigned char r[4] = { 0 };

	gettimeofday(&tv, NULL);
	/* The clock alone repeats between two processes started in the same
	 * microsecond (bench, parallel tests); the random part does not. */
	if (RAND_bytes(r, sizeof(r)) != 1)
		r[0] = (unsigned char)getpid();
	snprintf(out, AP_TRANSID_LEN, "A%lld%06ld%02x%02x%02x%02x", (long long)tv.tv_sec,
		 (long)tv.tv_usec, r[0], r[1], r[2], r[3]);
}

void
ap_instant_now(char out[AP_INSTANT_LEN])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, AP_INSTANT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- building --------------------------------------------------------- */

/* Allocation in the message's arena; one failure flag per build so the
 * builders read straight through and check once at the end. */
struct bld {
	struct mss_msg *m;
	bool oom;
};

static void *
b_alloc(struct bld *b, size_t size)
{
	void *p = mss_msg_alloc(b->m, size);

	if (p == NULL)
		b->oom = true;
	return p;
}

static char *
b_str(struct bld *b, const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = mss_msg_strdup(b->m, s)) == NULL)
		b->oom = true;
	return p;
}

static struct mss_list *
b_list(struct bld *b, size_t n)
{
	struct mss_list *l = b_alloc(b, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->n = n;
	if (n > 0 && (l->items = b_alloc(b, n * sizeof(void *))) == NULL)
		return NULL;
	return l;
}

static void
b_common(struct bld *b, struct mss_common *c, const struct ap_conf *conf, const char *ap_trans_id,
	 const char *ap_url)
{
	char instant[AP_INSTANT_LEN];

	ap_instant_now(instant);
	c->major_version = b_str(b, "1");
	c->minor_version = b_str(b, "1");
	c->ap_info = b_alloc(b, sizeof(*c->ap_info));
	if (c->ap_info != NULL) {
		c->ap_info->ap_id = b_str(b, conf->ac_ap_id);
		c->ap_info->ap_trans_id = b_str(b, ap_trans_id);
		c->ap_info->ap_pwd = b_str(b, conf->ac_ap_pwd);
		c->ap_info->instant = b_str(b, instant);
		c->ap_info->ap_url = b_str(b, ap_url);
	}
	c->mssp_info = b_alloc(b, sizeof(*c->mssp_info));
	if (c->mssp_info != NULL)
		c->mssp_info->mssp_id = b_alloc(b, sizeof(struct mss_mesh_member)); /* empty */
}

static struct mss_mobile_user *
b_user(struct bld *b, const char *msisdn)
{
	struct mss_mobile_user *u = b_alloc(b, sizeof(*u));

	if (u != NULL)
		u->msisdn = b_str(b, msisdn);
	return u;
}

static struct mss_data *
b_data(struct bld *b, const char *mime, const char *enc, const char *data)
{
	struct mss_data *d = b_alloc(b, sizeof(*d));

	if (d != NULL) {
		d->mime_type = b_str(b, mime);
		d->encoding = b_str(b, enc);
		d->data = b_str(b, data);
	}
	return d;
}

static struct bld
b_start(enum mss_msg_type t)
{
	struct bld b = { mss_msg_new(t), false };

	if (b.m == NULL)
		b.oom = true;
	return b;
}

static struct mss_msg *
b_finish(struct bld *b, struct mss_err *err)
{
	if (b->oom) {
		mss_msg_free(b->m);
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		return NULL;
	}
	return b->m;
}

struct mss_msg *
ap_build_sign(const struct ap_conf *c, const struct ap_sign_params *p, struct mss_err *err)
{
	struct bld b = b_start(MSS_SIGNATURE_REQ);
	struct mss_signature_req *r;
	const char *dtbd = p->sp_dtbd ? p->sp_dtbd : AP_DEFAULT_DTBD;
	char tmo[16];

	if (b.oom)
		return b_finish(&b, err);
	r = b.m->u.sig_req;
	b_common(&b, &r->c, c, p->sp_ap_trans_id, p->sp_ap_url);
	r->messaging_mode = b_str(&b, p->sp_mode ? p->sp_mode : "synch");
	if (p->sp_timeout_s > 0) {
		snprintf(tmo, sizeof(tmo), "%u", p->sp_timeout_s);
		r->timeout = b_str(&b, tmo);
	}
	r->mobile_user = b_user(&b, p->sp_msisdn);
	if (p->sp_dtbs_b64 != NULL)
		r->dtbs = b_data(&b, "application/octet-stream", "base64", p->sp_dtbs_b64);
	else
		r->dtbs = b_data(&b, "text/plain", "UTF-8", p->sp_dtbs ? p->sp_dtbs : dtbd);
	r->dtbd = b_data(&b, "text/plain", "UTF-8", dtbd);
	r->signature_profile = b_str(&b, p->sp_profile ? p->sp_profile : AP_DEFAULT_PROFILE);
	if (p->sp_validate && (r->additional_services = b_list(&b, 1)) != NULL) {
		struct mss_service *s = b_alloc(&b, sizeof(*s));

		if (s != NULL)
			s->description = b_str(&b, AP_VALIDATE_URI);
		if (r->additional_services->items)
			r->additional_services->items[0] = s;
	}
	return b_finish(&b, err);
}

struct mss_msg *
ap_build_status(const struct ap_conf *c, const char *ap_trans_id, const char *mssp_trans_id,
		struct mss_err *err)
{
	struct bld b = b_start(MSS_STATUS_REQ);
	struct mss_status_req *r;

	if (b.oom)
		return b_finish(&b, err);
	r = b.m->u.status_req;
	b_common(&b, &r->c, c, ap_trans_id, NULL);
	r->mssp_trans_id = b_str(&b, mssp_trans_id);
	return b_finish(&b, err);
}

struct mss_msg *
ap_build_receipt(const struct ap_conf *c, const char *ap_trans_id, const char *mssp_trans_id,
		 const char *msisdn, const char *message, struct mss_err *err)
{
	struct bld b = b_start(MSS_RECEIPT_REQ);
	struct mss_receipt_req *r;

	if (b.oom)
		return b_finish(&b, err);
	r = b.m->u.receipt_req;
	b_common(&b, &r->c, c, ap_trans_id, NULL);
	r->mssp_trans_id = b_str(&b, mssp_trans_id);
	r->mobile_user = b_user(&b, msisdn);
	if (message != NULL)
		r->message = b_data(&b, "text/plain", "UTF-8", message);
	return b_finish(&b, err);
}

struct mss_msg *
ap_build_profile(const struct ap_conf *c, const char *ap_trans_id, const char *msisdn,
		 struct mss_err *err)
{
	struct bld b = b_start(MSS_PROFILE_REQ);
	struct mss_profile_req *r;

	if (b.oom)
		return b_finish(&b, err);
	r = b.m->u.profile_req;
	b_common(&b, &r->c, c, ap_trans_id, NULL);
	r->mobile_user = b_user(&b, msisdn);
	return b_finish(&b, err);
}

struct mss_msg *
ap_build_handshake(const struct ap_conf *c, const char *ap_trans_id, struct mss_err *err)
{
	struct bld b = b_start(MSS_HANDSHAKE_REQ);
	struct mss_handshake_req *r;
	struct mss_secure_methods *sm;

	if (b.oom)
		return b_finish(&b, err);
	r = b.m->u.hs_req;
	b_common(&b, &r->c, c, ap_trans_id, NULL);
	/* We sign no message (no MSS_MessageSignature header): every method
	 * false, and the three lists present but empty. */
	if ((sm = r->secure_methods = b_alloc(&b, sizeof(*sm))) != NULL) {
		sm->signature = b_str(&b, "false");
		sm->registration = b_str(&b, "false");
		sm->notification = b_str(&b, "false");
		sm->profile_query = b_str(&b, "false");
		sm->receipt = b_str(&b, "false");
		sm->status = b_str(&b, "false");
	}
	r->certificates = b_list(&b, 0);
	r->root_cas = b_list(&b, 0);
	r->signature_algs = b_list(&b, 0);
	return b_finish(&b, err);
}

int
ap_dtbs_bytes(const struct ap_sign_params *p, unsigned char **out, size_t *len)
{
	const char *text = p->sp_dtbs ? p->sp_dtbs : p->sp_dtbd ? p->sp_dtbd : AP_DEFAULT_DTBD;
	long n;

	*out = NULL;
	*len = 0;
	if (p->sp_dtbs_b64 == NULL) {
		if ((*out = (unsigned char *)strdup(text)) == NULL)
			return -1;
		*len = strlen(text);
		return 0;
	}
	if ((*out = malloc(MSSP_MSG_MAX_DTBS + 1)) == NULL)
		return -1;
	n = mss_lex_base64_decode(p->sp_dtbs_b64, *out, MSSP_MSG_MAX_DTBS);
	if (n < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

/* ---- the wire --------------------------------------------------------- */

static const char *
port_name(enum mss_op op)
{
	switch (op) {
	case MSS_OP_SIGNATURE: return "MSS_SignaturePort";
	case MSS_OP_STATUS_QUERY: return "MSS_StatusQueryPort";
	case MSS_OP_RECEIPT: return "MSS_ReceiptPort";
	case MSS_OP_PROFILE_QUERY: return "MSS_ProfileQueryPort";
	case MSS_OP_REGISTRATION: return "MSS_RegistrationPort";
	case MSS_OP_HANDSHAKE: return "MSS_HandshakePort";
	default: return NULL;
	}
}

int
ap_encode(const struct mss_msg *m, enum ap_fmt fmt, const char *base, struct ap_wire *w,
	  struct mss_err *err)
{
	const char *port = port_name(m->op);
	int n, rc;

	mss_buf_init(&w->w_body, MSSP_AP_MAX_REQUEST);
	w->w_soap_action[0] = '\0';
	if (fmt == AP_FMT_JSON) {
		/* --rest-path: the per-operation paths (protocol.md §1) */
		const char *sub = !ap_rest.ra_per_op_path		 ? ""
				  : m->type == MSS_SIGNATURE_REQ ? "/sign"
				  : m->type == MSS_STATUS_REQ	 ? "/status"
				  : m->type == MSS_RECEIPT_REQ	 ? "/receipt"
				  : m->type == MSS_PROFILE_REQ	 ? "/profile"
								 : "";
		n = snprintf(w->w_url, sizeof(w->w_url), "%s/rest/service%s", base, sub);
		w->w_content_type = "application/json";
		rc = mss_json_encode(m, &w->w_body, err);
	} else {
		if (port == NULL)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "No port for this message");
		n = snprintf(w->w_url, sizeof(w->w_url), "%s/soap/services/%s", base, port);
		if (fmt == AP_FMT_SOAP11) {
			w->w_content_type = "text/xml; charset=utf-8";
			snprintf(w->w_soap_action, sizeof(w->w_soap_action), "\"#%s\"",
				 mss_op_name(m->op));
		} else {
			w->w_content_type = "application/soap+xml; charset=utf-8";
		}
		rc = mss_soap_encode(m, fmt == AP_FMT_SOAP11 ? MSS_SOAP_11 : MSS_SOAP_12, &w->w_body,
				     err);
	}
	if (n < 0 || (size_t)n >= sizeof(w->w_url)) {
		mss_buf_free(&w->w_body);
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "URL too long");
	}
	return rc;
}

/* Length of the secret value starting at `v`, up to (not including) the
 * closing quote; a JSON value may hold escaped quotes. */
static size_t
secret_len(const char *v, bool json)
{
	size_t i = 0;

	while (v[i] != '\0' && v[i] != '"') {
		if (json && v[i] == '\\' && v[i + 1] != '\0')
			i++;
		i++;
	}
	return i;
}

char *
ap_redact(const char *s, size_t len)
{
	static const struct {
		const char *key;
		bool json;
	} keys[] = { { "AP_PWD=\"", false }, { "\"AP_PWD\":\"", true } };
	struct mss_buf out;
	const char *p = s, *end = s + len, *hit, *best;
	size_t k, bk = 0;

	mss_buf_init(&out, len + 64);
	for (;;) {
		best = NULL;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			hit = memmem(p, (size_t)(end - p), keys[k].key, strlen(keys[k].key));
			if (hit != NULL && (best == NULL || hit < best)) {
				best = hit;
				bk = k;
			}
		}
		if (best == NULL)
			break;
		best += strlen(keys[bk].key);
		if (mss_buf_add(&out, p, (size_t)(best - p)) != 0 || mss_buf_adds(&out, "***") != 0)
			return NULL;
		p = best + secret_len(best, keys[bk].json);
		if (p > end)
			p = end;
	}
	if (mss_buf_add(&out, p, (size_t)(end - p)) != 0 || mss_buf_adds(&out, "") != 0)
		return NULL;
	return mss_buf_take(&out, NULL);
}
