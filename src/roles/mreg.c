/*
 * mreg.c - MReg over SOAP on the ME listener (see mreg.h).
 *
 * The codec (mss/soap.c) reads and writes the messages; this file only
 * maps operations to reg requests and reg answers to OperationOutputs, so
 * every rule (roles, validation, audit) stays in reg.c.
 */
#include "roles/mreg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "mss/soap.h"
#include "mss/status.h"
#include "mss/validate.h"
#include "util/limits.h"

/* ---- mapping ------------------------------------------------------------ */

static const struct {
	const char *name;
	enum mreg_kind kind;
	enum reg_op op;
} ops[] = {
	{"GetMobileUser", MREG_GET_USER, REG_OP_USER_GET},
	{"ListMobileUsers", MREG_LIST_USERS, REG_OP_USER_LIST},
	{"CreateMobileUser", MREG_CREATE_USER, REG_OP_USER_CREATE},
	{"UpdateMobileUser", MREG_UPDATE_USER, REG_OP_USER_UPDATE},
	{"DeactivateMobileUser", MREG_DEACTIVATE_USER, REG_OP_USER_SUSPEND},
	{"ReactivateMobileUser", MREG_REACTIVATE_USER, REG_OP_USER_RESUME},
	{"DeleteMobileUser", MREG_DELETE_USER, REG_OP_USER_DELETE},
	{"ActivateMobileUser", MREG_ACTIVATE_USER, REG_OP_ACTIVATION_CREATE},
	{"GetCertificates", MREG_GET_CERTIFICATES, REG_OP_CERT_LIST},
	{"RevokeCertificate", MREG_REVOKE_CERTIFICATE, REG_OP_CERT_REVOKE},
	{"UnblockPin", MREG_UNBLOCK_PIN, REG_OP_PIN_UNBLOCK},
};

/* User fields: the MReg parameter name and reg's JSON member. */
static const struct {
	const char *param;
	const char *json;
} user_fields[] = {
	{"givenName", "given_name"}, {"surName", "surname"}, {"Language", "lang"},
	{"hetu", "id_number"},	     {"Country", "country"}, {"name", "name"},
};

static const char *
param(const struct mss_mreg_operation *op, const char *name)
{
	for (size_t i = 0; op->parameter && i < op->parameter->n; i++) {
		const struct mss_mreg_param *p = op->parameter->items[i];
		if (p->name && strcasecmp(p->name, name) == 0)
			return p->value ? p->value : "";
	}
	return NULL;
}

static int
set_arg(char *dst, size_t cap, const char *v, const char *what, struct reg_err *e)
{
	if (!v || !*v)
		return reg_err_set(e, REG_E_BAD, "%s missing", what);
	if (strlen(v) >= cap)
		return reg_err_set(e, REG_E_BAD, "%s too long", what);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* The user fields present as parameters into a new JSON object. */
static json_t *
user_body(const struct mss_mreg_operation *op)
{
	json_t *b = json_object();
	for (size_t i = 0; b && i < sizeof user_fields / sizeof user_fields[0]; i++) {
		const char *v = param(op, user_fields[i].param);
		if (v && json_object_set_new(b, user_fields[i].json, json_string(v)) != 0) {
			json_decref(b);
			return NULL;
		}
	}
	return b;
}

int
mreg_map(const struct mss_mreg_operation *op, const char *msisdn, struct mreg_call *out,
	 struct reg_err *e)
{
	memset(out, 0, sizeof *out);
	const char *name = op && op->name ? op->name : "";
	/* "mids:GetMobileUser", "kiuru:GetMobileUser": the prefix is ignored */
	const char *colon = strchr(name, ':');
	if (colon)
		name = colon + 1;
	size_t i;
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(ops[i].name, name) == 0)
			break;
	if (i == sizeof ops / sizeof ops[0])
		return reg_err_set(e, REG_E_BAD, "unknown operation");
	out->mc_kind = ops[i].kind;
	out->mc_rq.rq_op = ops[i].op;
	const char *m = msisdn && *msisdn ? msisdn : NULL;
	const char *pm = param(op, "msisdn"); /* also "MSISDN" */
	switch (out->mc_kind) {
	case MREG_LIST_USERS: {
		json_t *q = json_object();
		if (!q)
			return reg_err_set(e, REG_E_INTERNAL, "out of memory");
		out->mc_rq.rq_query = q;
		static const char *const keys[] = {"q", "state", "after", "limit"};
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			const char *v = param(op, keys[k]);
			if (v && json_object_set_new(q, keys[k], json_string(v)) != 0)
				goto oom;
		}
		if (!json_object_get(q, "q") && m && json_object_set_new(q, "q", json_string(m)) != 0)
			goto oom;
		/* an OperationOutput holds at most MSSP_MSG_MAX_LIST parameters
		 * (without a limit reg's page is MSSP_ME_LIST_DEFAULT, fewer) */
		const char *lim = json_string_value(json_object_get(q, "limit"));
		if (lim && strtol(lim, NULL, 10) > MSSP_MSG_MAX_LIST) {
			char buf[16];
			snprintf(buf, sizeof buf, "%d", MSSP_MSG_MAX_LIST);
			if (json_object_set_new(q, "limit", json_string(buf)) != 0)
				goto oom;
		}
		return 0;
	}
	case MREG_CREATE_USER: {
		json_t *b = user_body(op);
		if (!b)
			return reg_err_set(e, REG_E_INTERNAL, "out of memory");
		out->mc_rq.rq_body = b;
		const char *who = pm && *pm ? pm : m;
		if (!who) {
			mreg_call_clear(out);
			return reg_err_set(e, REG_E_BAD, "msisdn missing");
		}
		if (json_object_set_new(b, "msisdn", json_string(who)) != 0)
			goto oom;
		return 0;
	}
	case MREG_UPDATE_USER:
		if (set_arg(out->mc_arg, sizeof out->mc_arg, m ? m : pm, "msisdn", e) != 0)
			return -1;
		out->mc_rq.rq_body = user_body(op);
		if (!out->mc_rq.rq_body)
			return reg_err_set(e, REG_E_INTERNAL, "out of memory");
		break;
	case MREG_GET_CERTIFICATES: {
		json_t *q = json_object();
		if (!q)
			return reg_err_set(e, REG_E_INTERNAL, "out of memory");
		out->mc_rq.rq_query = q;
		const char *who = m ? m : pm;
		if (!who) {
			mreg_call_clear(out);
			return reg_err_set(e, REG_E_BAD, "msisdn missing");
		}
		if (json_object_set_new(q, "msisdn", json_string(who)) != 0)
			goto oom;
		return 0;
	}
	case MREG_REVOKE_CERTIFICATE: {
		if (set_arg(out->mc_arg, sizeof out->mc_arg, param(op, "serial"), "serial", e) != 0)
			return -1;
		const char *reason = param(op, "reason");
		if (reason) {
			out->mc_rq.rq_body = json_pack("{s:s}", "reason", reason);
			if (!out->mc_rq.rq_body)
				return reg_err_set(e, REG_E_INTERNAL, "out of memory");
		}
		break;
	}
	case MREG_UNBLOCK_PIN:
		if (set_arg(out->mc_arg, sizeof out->mc_arg, m ? m : pm, "msisdn", e) != 0 ||
		    set_arg(out->mc_arg2, sizeof out->mc_arg2, param(op, "keyId"), "keyId", e) != 0)
			return -1;
		out->mc_rq.rq_arg2 = out->mc_arg2;
		break;
	default: /* get, deactivate, reactivate, delete, activate: the target */
		if (set_arg(out->mc_arg, sizeof out->mc_arg, m ? m : pm, "msisdn", e) != 0)
			return -1;
		break;
	}
	out->mc_rq.rq_arg = out->mc_arg;
	return 0;
oom:
	mreg_call_clear(out);
	return reg_err_set(e, REG_E_INTERNAL, "out of memory");
}

void
mreg_call_clear(struct mreg_call *c)
{
	if (!c)
		return;
	json_decref(c->mc_rq.rq_body);
	json_decref(c->mc_rq.rq_query);
	c->mc_rq.rq_body = NULL;
	c->mc_rq.rq_query = NULL;
}

/* ---- outputs -------------------------------------------------------------- */

/* Append to an arena list: the items array doubles when n reaches a power
 * of two (the arena cannot realloc; the capacity is implied by n). */
static int
list_push(struct mss_msg *msg, struct mss_list *l, void *item)
{
	if (l->n >= MSSP_MSG_MAX_LIST)
		return 1; /* full: what our own decoder would accept (silently cut) */
	if (l->n == 0 || (l->n & (l->n - 1)) == 0) {
		size_t cap = l->n ? l->n * 2 : 4;
		void **a = mss_msg_alloc(msg, cap * sizeof *a);
		if (!a)
			return -1;
		if (l->n)
			memcpy(a, l->items, l->n * sizeof *a);
		l->items = a;
	}
	l->items[l->n++] = item;
	return 0;
}

static int
add_param(struct mss_msg *msg, struct mss_list *params, const char *name, const char *value)
{
	struct mss_mreg_param *p = mss_msg_alloc(msg, sizeof *p);
	if (!p || !(p->name = mss_msg_strdup(msg, name)) ||
	    !(p->value = mss_msg_strdup(msg, value)))
		return -1;
	return list_push(msg, params, p) < 0 ? -1 : 0;
}

/* A JSON scalar as text ("" for null; objects and arrays: NULL). */
static const char *
scalar(json_t *v, char *buf, size_t cap)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, cap, "%g", json_real_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}

static int
add_member(struct mss_msg *msg, struct mss_list *params, const char *name, json_t *obj,
	   const char *key)
{
	char buf[32];
	const char *v = scalar(json_object_get(obj, key), buf, sizeof buf);
	return v ? add_param(msg, params, name, v) : 0;
}

/* reg answers an object, or a list either bare or in one member */
static json_t *
list_of(json_t *res, const char *member)
{
	if (json_is_array(res))
		return res;
	json_t *a = json_object_get(res, member);
	if (json_is_array(a))
		return a;
	a = json_object_get(res, "items");
	return json_is_array(a) ? a : NULL;
}

int
mreg_outputs(struct mss_msg *msg, enum mreg_kind kind, json_t *res, struct mss_list *params)
{
	int rc = 0;
	switch (kind) {
	case MREG_GET_USER:
	case MREG_CREATE_USER:
	case MREG_UPDATE_USER: {
		json_t *u = json_object_get(res, "user");
		if (!json_is_object(u))
			u = res;
		rc |= add_member(msg, params, "msisdn", u, "msisdn");
		for (size_t i = 0; i < sizeof user_fields / sizeof user_fields[0]; i++)
			rc |= add_member(msg, params, user_fields[i].param, u, user_fields[i].json);
		rc |= add_member(msg, params, "state", u, "state");
		break;
	}
	case MREG_LIST_USERS: {
		json_t *a = list_of(res, "users");
		size_t i;
		json_t *it;
		json_array_foreach(a, i, it)
			rc |= add_member(msg, params, "msisdn", it, "msisdn");
		break;
	}
	case MREG_ACTIVATE_USER:
		rc |= add_member(msg, params, "ActivationCode", res, "code");
		rc |= add_member(msg, params, "Expires", res, "expires");
		break;
	case MREG_GET_CERTIFICATES: {
		json_t *a = list_of(res, "certificates");
		size_t i;
		json_t *it;
		json_array_foreach(a, i, it) {
			/* serial first: it starts each certificate's group */
			rc |= add_member(msg, params, "serial", it, "serial");
			rc |= add_member(msg, params, "keyId", it, "key_id");
			rc |= add_member(msg, params, "state", it, "state");
			rc |= add_member(msg, params, "notAfter", it, "not_after");
		}
		break;
	}
	case MREG_UNBLOCK_PIN:
		rc |= add_member(msg, params, "job", res, "job");
		break;
	default:
		rc |= add_member(msg, params, "state", res, "state");
		break;
	}
	return rc ? -1 : 0;
}

void
mreg_wipe_code(json_t *res)
{
	json_t *c = json_object_get(res, "code");
	/* jansson keeps the string in a buffer of its own, writable */
	if (json_is_string(c))
		OPENSSL_cleanse((char *)json_string_value(c), json_string_length(c));
}

/* ---- the request ----------------------------------------------------------- */

/* MSSP_Info/@Instant: the request's own clock reading (now_ms, wall). */
static void
iso_of(int64_t now_ms, char out[64])
{
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now_ms % 1000));
}

static void
fault(const struct mss_err *e, enum mss_soap_version v, struct mss_buf *out, int *http_status)
{
	struct mss_fault f;
	mss_fault_from_err(e, &f);
	(void)mss_soap_encode_fault(&f, v, out);
	*http_status = f.http_status;
}

static struct mss_mreg_operation *
op_of(const struct mss_mreg_request *q)
{
	return q->provisioning	  ? q->provisioning
	       : q->wireless	  ? q->wireless
	       : q->certification ? q->certification
				  : q->entity_user;
}

static const char *
target_msisdn(const struct mss_mreg_input *in)
{
	const struct mss_mreg_target *t = in->target;
	if (t && t->mobile_user && t->mobile_user->msisdn)
		return t->mobile_user->msisdn;
	if (t && t->sim_card && t->sim_card->msisdn)
		return t->sim_card->msisdn;
	return NULL;
}

/* One operation -> one MregResponse/OperationOutput.  Returns its code. */
static int
run_op(struct reg *r, struct store *st, const struct reg_actor *who, struct mss_msg *m,
       const struct mss_mreg_operation *op, const char *msisdn, int64_t now_ms,
       struct mss_mreg_response *resp)
{
	struct reg_err e;
	struct mreg_call c;
	json_t *res = NULL;
	memset(&e, 0, sizeof e);
	struct mss_mreg_operation *o = mss_msg_alloc(m, sizeof *o);
	struct mss_mreg_op_status *s = mss_msg_alloc(m, sizeof *s);
	struct mss_list *params = mss_msg_alloc(m, sizeof *params);
	if (!o || !s || !params)
		return -1;
	resp->output = o;
	o->status = s;
	o->name = mss_msg_strdup(m, op->name);
	o->id = op->id ? mss_msg_strdup(m, op->id) : NULL;
	int code = 100;
	if (mreg_map(op, msisdn, &c, &e) != 0) {
		code = e.code;
	} else {
		int rc = reg_call(r, st, who, &c.mc_rq, now_ms, &res, &e);
		if (rc < 0)
			code = e.code;
		else if (mreg_outputs(m, c.mc_kind, res, params) != 0)
			code = MSS_INTERNAL_ERROR;
		if (c.mc_kind == MREG_ACTIVATE_USER)
			mreg_wipe_code(res);
		json_decref(res);
		mreg_call_clear(&c);
	}
	if (code == 100 && params->n)
		o->parameter = params;
	char num[16];
	snprintf(num, sizeof num, "%d", code ? code : MSS_INTERNAL_ERROR);
	s->code = mss_msg_strdup(m, num);
	s->message = mss_msg_strdup(m, code == 100 ? "OK" : e.msg[0] ? e.msg : "Failed");
	if (!o->name || !s->code || !s->message)
		return -1;
	return code ? code : MSS_INTERNAL_ERROR;
}

static struct mss_msg *
answer(struct reg *r, struct store *st, const struct reg_actor *who, const struct mss_msg *rq,
       const char *mssp_id, int64_t now_ms)
{
	const struct mss_registration_req *q = rq->u.reg_req;
	struct mss_msg *m = mss_msg_new(MSS_REGISTRATION_RESP);
	if (!m)
		return NULL;
	m->op = MSS_OP_REGISTRATION;
	m->soap = rq->soap;
	struct mss_registration_resp *rs = m->u.reg_resp;
	struct mss_common *c = &rs->c;
	char now[64];
	iso_of(now_ms, now);
	c->major_version = mss_msg_strdup(m, q->c.major_version ? q->c.major_version : "1");
	c->minor_version = mss_msg_strdup(m, q->c.minor_version ? q->c.minor_version : "1");
	if (q->c.ap_info) {
		c->ap_info = mss_msg_alloc(m, sizeof *c->ap_info);
		if (!c->ap_info)
			goto oom;
		c->ap_info->ap_id = mss_msg_strdup(m, q->c.ap_info->ap_id);
		c->ap_info->ap_trans_id = mss_msg_strdup(m, q->c.ap_info->ap_trans_id);
		c->ap_info->instant = mss_msg_strdup(m, q->c.ap_info->instant);
		/* AP_PWD is required by the schema; never echo the caller's */
		c->ap_info->ap_pwd = q->c.ap_info->ap_pwd ? mss_msg_strdup(m, "") : NULL;
	}
	c->mssp_info = mss_msg_alloc(m, sizeof *c->mssp_info);
	if (!c->mssp_info || !(c->mssp_info->instant = mss_msg_strdup(m, now)) ||
	    !(c->mssp_info->mssp_id = mss_msg_alloc(m, sizeof *c->mssp_info->mssp_id)))
		goto oom;
	if (mssp_id)
		c->mssp_info->mssp_id->uri = mss_msg_strdup(m, mssp_id);

	struct mss_status *s = mss_msg_alloc(m, sizeof *s);
	struct mss_status_detail *d = mss_msg_alloc(m, sizeof *d);
	struct mss_mreg_output *ro = mss_msg_alloc(m, sizeof *ro);
	struct mss_list *resps = mss_msg_alloc(m, sizeof *resps);
	if (!s || !d || !ro || !resps || !(s->code = mss_msg_alloc(m, sizeof *s->code)))
		goto oom;
	rs->status = s;
	s->detail = d;
	d->registration_output = ro;
	ro->response = resps;
	if (q->registration_input->n == 1) {
		const struct mss_mreg_input *in = q->registration_input->items[0];
		ro->input_id = in->input_id ? mss_msg_strdup(m, in->input_id) : NULL;
		ro->case_id = in->case_id ? mss_msg_strdup(m, in->case_id) : NULL;
	}
	int first_fail = 0;
	for (size_t i = 0; i < q->registration_input->n; i++) {
		const struct mss_mreg_input *in = q->registration_input->items[i];
		const char *msisdn = target_msisdn(in);
		for (size_t k = 0; in->request && k < in->request->n; k++) {
			const struct mss_mreg_operation *op = op_of(in->request->items[k]);
			struct mss_mreg_response *rr = mss_msg_alloc(m, sizeof *rr);
			if (!op || !rr || list_push(m, resps, rr) != 0)
				goto oom;
			int code = run_op(r, st, who, m, op, msisdn, now_ms, rr);
			if (code < 0)
				goto oom;
			if (code != 100 && !first_fail)
				first_fail = code;
		}
	}
	int code = first_fail ? first_fail : MSS_REQUEST_OK;
	char num[16];
	snprintf(num, sizeof num, "%d", code);
	s->code->value = mss_msg_strdup(m, num);
	s->message = mss_msg_strdup(m, mss_status_name(code));
	if (!s->code->value || !s->message)
		goto oom;
	return m;
oom:
	mss_msg_free(m);
	return NULL;
}

void
mreg_handle(struct reg *r, struct store *st, const struct reg_actor *who, const char *body,
	    size_t len, bool soap11_hint, const char *mssp_id, int64_t now_ms,
	    struct mss_buf *out, int *http_status)
{
	struct mss_err e;
	memset(&e, 0, sizeof e);
	enum mss_soap_version v = soap11_hint ? MSS_SOAP_11 : MSS_SOAP_12;
	struct mss_msg *rq = mss_soap_decode(body, len, MSS_SOAP_REQUESTS_ONLY, &e);
	struct mss_msg *rs = NULL;
	if (rq)
		v = rq->soap == MSS_SOAP_11 ? MSS_SOAP_11 : MSS_SOAP_12;
	if (!rq)
		goto fail;
	if (rq->type != MSS_REGISTRATION_REQ) {
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "Operation not offered on this interface");
		goto fail;
	}
	if (mss_validate(rq, &e) != 0)
		goto fail;
	const struct mss_registration_req *q = rq->u.reg_req;
	if (!q->registration_input || q->registration_input->n == 0) {
		mss_err_set(&e, MSS_MISSING_PARAM, 0, "Missing RegistrationInput");
		goto fail;
	}
	if (q->registration_input->n > MSSP_MREG_MAX_INPUTS) {
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "Too many RegistrationInputs");
		goto fail;
	}
	size_t nops = 0;
	for (size_t i = 0; i < q->registration_input->n; i++) {
		const struct mss_mreg_input *in = q->registration_input->items[i];
		nops += in->request ? in->request->n : 0;
	}
	if (nops > MSSP_MREG_MAX_OPS) {
		mss_err_set(&e, MSS_WRONG_PARAM, 0, "Too many operations");
		goto fail;
	}
	/* MReg is the RA's interface: an auditor reads through the JSON API */
	if (who->ra_role != REG_ROLE_ADMIN && who->ra_role != REG_ROLE_RA) {
		reg_audit_event(r, who, "mreg", NULL, "refused", "role may not use MReg", now_ms);
		mss_err_set(&e, MSS_UNAUTHORIZED_ACCESS, 0, "Unauthorized access");
		goto fail;
	}
	rs = answer(r, st, who, rq, mssp_id, now_ms);
	if (!rs) {
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto fail;
	}
	if (mss_soap_encode(rs, v, out, &e) != 0) {
		OPENSSL_cleanse((char *)mss_buf_str(out), mss_buf_len(out));
		mss_buf_free(out);
		mss_buf_init(out, MSSP_SRV_MAX_RESPONSE);
		mss_err_set(&e, MSS_INTERNAL_ERROR, 0, "Response could not be encoded");
		goto fail;
	}
	*http_status = 200;
	goto done;
fail:
	fault(&e, v, out, http_status);
done:
	/* the answer's arena may hold an activation code (its
	 * OperationOutput parameter): wiped, not only freed */
	if (rs)
		mss_arena_wipe_free(rs->arena);
	mss_msg_free(rq);
}
