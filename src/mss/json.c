/*
 * json.c - JSON codec over jansson, driven by the schema tables of msg.c.
 */
#include "mss/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mss/lex.h"
#include "mss/soap.h"
#include "util/limits.h"

#define JSON_MSG_DEPTH 4 /* element depth of a message inside a SOAP envelope */

struct jr {
	struct mss_msg *msg;
	struct mss_err *err;
	bool lenient_b64; /* see mss_lex_check_field() */
};

static const char *
jkey(const struct mss_field *f)
{
	return f->json ? f->json : f->name;
}

static size_t
field_max(const struct mss_field *f)
{
	return (f->flags & MSS_F_BIG) ? MSSP_HTTP_MAX_BODY : MSSP_MSG_MAX_FIELD;
}

static char *
read_string(struct jr *r, const struct mss_field *f, json_t *j)
{
	const char *s;
	size_t len;
	char *v;

	if (!json_is_string(j)) {
		mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "%s must be a string", jkey(f));
		return NULL;
	}
	s = json_string_value(j);
	len = json_string_length(j);
	if (len > field_max(f) || strlen(s) != len) {
		mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Invalid value of %s", jkey(f));
		return NULL;
	}
	v = mss_arena_strndup(r->msg->arena, s, len);
	if (v == NULL) {
		mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
		return NULL;
	}
	/* Swisscom's REST documents spell the polling mode "asynch"; the
	 * message means asynchClientServer and says so from here on. */
	if (f->xtype == MSS_X_MSGMODE && strcmp(v, "asynch") == 0)
		v = mss_arena_strdup(r->msg->arena, "asynchClientServer");
	if (v == NULL || mss_lex_check_field(f->xtype, v, r->lenient_b64) != 0) {
		mss_err_setf(r->err, MSS_WRONG_PARAM,
			     f->xtype == MSS_X_MSGMODE ? MSS_SUB_ILLEGAL_MESSAGINGMODE : 0,
			     "Invalid value of %s", jkey(f));
		return NULL;
	}
	return v;
}

static int read_obj(struct jr *r, json_t *j, const struct mss_type *t, void **out, int depth);

static void *
read_value(struct jr *r, const struct mss_field *f, json_t *j, int depth)
{
	void *obj = NULL;

	if (f->sub != NULL) {
		if (read_obj(r, j, f->sub, &obj, depth + 1))
			return NULL;
		return obj;
	}
	if (f->flags & MSS_F_JSON_BOOL) {
		if (!json_is_boolean(j)) {
			mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "%s must be a boolean", jkey(f));
			return NULL;
		}
		return mss_arena_strdup(r->msg->arena, json_is_true(j) ? "true" : "false");
	}
	if (f->flags & MSS_F_JSON_VALUE) {
		json_t *v = json_object_get(j, "Value");

		if (!json_is_object(j) || json_object_size(j) != 1 || v == NULL) {
			mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "%s must be {\"Value\":...}", jkey(f));
			return NULL;
		}
		j = v;
	}
	if (f->place == MSS_P_RAW) {
		char *s = read_string(r, f, j);

		return s ? mss_soap_raw_check(r->msg, s, f->ns, f->name, depth + 1, r->err) : NULL;
	}
	return read_string(r, f, j);
}

static int
list_set(struct jr *r, const struct mss_field *f, json_t *j, struct mss_list **lp, int depth)
{
	struct mss_list *l;
	size_t i, n;

	if (!json_is_array(j))
		return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "%s must be an array", jkey(f));
	n = json_array_size(j);
	if (n > MSSP_MSG_MAX_LIST || n > MSSP_JSON_MAX_ARRAY)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Too many repeated elements");
	l = mss_arena_alloc(r->msg->arena, sizeof(*l));
	if (l == NULL || (n && (l->items = mss_arena_alloc(r->msg->arena, n * sizeof(void *))) == NULL))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
	for (i = 0; i < n; i++) {
		l->items[i] = read_value(r, f, json_array_get(j, i), depth);
		if (l->items[i] == NULL)
			return -1;
	}
	l->n = n;
	*lp = l;
	return 0;
}

static int
read_obj(struct jr *r, json_t *j, const struct mss_type *t, void **out, int depth)
{
	const char *key;
	json_t *val;
	void *obj;
	size_t i;

	if (depth > MSSP_XML_MAX_DEPTH || depth > MSSP_JSON_MAX_DEPTH + JSON_MSG_DEPTH - 1)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "JSON nested too deeply");
	if (!json_is_object(j))
		return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "%s must be an object", t->name);
	obj = mss_arena_alloc(r->msg->arena, t->size);
	if (obj == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
	json_object_foreach(j, key, val) {
		const struct mss_field *f = NULL;
		void **slot;

		for (i = 0; i < t->nfields; i++)
			if (!(t->fields[i].flags & MSS_F_HOIST) && strcmp(jkey(&t->fields[i]), key) == 0)
				f = &t->fields[i];
		if (f == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown JSON member");
		slot = (void **)((char *)obj + f->off);
		if (f->flags & MSS_F_LIST) {
			if (list_set(r, f, val, (struct mss_list **)slot, depth))
				return -1;
			/* A repeated element without a wrapper cannot be "present
			 * but empty" in XML; an empty array is absent here too. */
			if (f->item == NULL && f->place != MSS_P_JSON && (*(struct mss_list **)slot)->n == 0)
				*slot = NULL;
		} else {
			*slot = read_value(r, f, val, depth);
			if (*slot == NULL)
				return -1;
			/* as in the SOAP codec: empty text content is absent */
			if (f->place == MSS_P_TEXT && ((char *)*slot)[0] == '\0')
				*slot = NULL;
		}
	}
	*out = obj;
	return 0;
}

/* The message-level ServiceResponses member lives in Status/StatusDetail. */
static struct mss_status **
status_slot(struct mss_msg *m)
{
	switch (m->type) {
	case MSS_SIGNATURE_RESP: return &m->u.sig_resp->status;
	case MSS_STATUS_RESP: return &m->u.status_resp->status;
	case MSS_RECEIPT_REQ: return &m->u.receipt_req->status;
	case MSS_RECEIPT_RESP: return &m->u.receipt_resp->status;
	case MSS_PROFILE_RESP: return &m->u.profile_resp->status;
	case MSS_REGISTRATION_RESP: return &m->u.reg_resp->status;
	default: return NULL;
	}
}

static char *
read_fault_str(struct jr *r, json_t *obj, const char *key, int required)
{
	static const struct mss_field f = { "Fault", NULL, NULL, NULL, NULL, MSS_P_ELEM,
					    MSS_X_STRING, 0, 0, NULL };
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		if (required)
			mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Incomplete fault");
		return NULL;
	}
	return read_string(r, &f, v);
}

static int
read_code(struct jr *r, json_t *c, char **value, char **ns, json_t **sub)
{
	const char *key;
	json_t *val;

	if (!json_is_object(c))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid fault code");
	json_object_foreach(c, key, val) {
		if (strcmp(key, "Value") && strcmp(key, "ValueNs") && strcmp(key, "SubCode"))
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown JSON member");
	}
	if ((*value = read_fault_str(r, c, "Value", 1)) == NULL)
		return -1;
	/* A fault code is a QName's local part on the SOAP side. */
	if (mss_lex_check(MSS_X_NCNAME, *value) != 0)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid fault code");
	if (json_object_get(c, "ValueNs") && (*ns = read_fault_str(r, c, "ValueNs", 1)) == NULL)
		return -1;
	*sub = json_object_get(c, "SubCode");
	return 0;
}

static int
read_fault(struct jr *r, json_t *j)
{
	struct mss_fault_msg *fm = r->msg->u.fault;
	const char *key;
	json_t *val, *sub = NULL, *sub2 = NULL;

	if (!json_is_object(j))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Fault must be an object");
	json_object_foreach(j, key, val) {
		if (strcmp(key, "Code") && strcmp(key, "Reason") && strcmp(key, "Detail"))
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown JSON member");
	}
	if (json_object_get(j, "Code") == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Fault without code");
	if (read_code(r, json_object_get(j, "Code"), &fm->code_value, &fm->code_ns, &sub))
		return -1;
	if (sub && read_code(r, sub, &fm->subcode_value, &fm->subcode_ns, &sub2))
		return -1;
	if (sub2 && read_code(r, sub2, &fm->subsubcode_value, &fm->subsubcode_ns, &sub))
		return -1;
	if (sub2 && sub)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Fault codes nested too deeply");
	if (json_object_get(j, "Reason") && (fm->reason = read_fault_str(r, j, "Reason", 1)) == NULL)
		return -1;
	if (json_object_get(j, "Detail") && (fm->detail = read_fault_str(r, j, "Detail", 1)) == NULL)
		return -1;
	/* empty texts are absent texts, as in the SOAP codec */
	if (fm->reason && fm->reason[0] == '\0')
		fm->reason = NULL;
	if (fm->detail && fm->detail[0] == '\0')
		fm->detail = NULL;
	return 0;
}

struct mss_msg *
mss_json_decode(const char *buf, size_t len, unsigned flags, struct mss_err *err)
{
	struct jr r = { NULL, err, false };
	json_error_t jerr;
	json_t *root = NULL, *body, *sr = NULL;
	const char *key;
	void *obj = NULL;
	int type;

	mss_err_clear(err);
	if (len > MSSP_HTTP_MAX_BODY) {
		mss_err_http(err, 413, "Message too large");
		return NULL;
	}
	if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
	    (unsigned char)buf[2] == 0xBF) {
		/* J-09: one behaviour, consistently: a BOM is refused. */
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Byte order mark not allowed");
		return NULL;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Malformed JSON");
		return NULL;
	}
	if (json_is_object(root) && json_object_size(root) == 0) {
		/* like an empty SOAP Body (P-06) */
		mss_err_set(err, MSS_MISSING_PARAM, 0, "Empty message");
		goto fail;
	}
	if (!json_is_object(root) || json_object_size(root) != 1) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Expected one message object");
		goto fail;
	}
	key = json_object_iter_key(json_object_iter(root));
	body = json_object_get(root, key);
	type = mss_msg_type_by_element(key);
	if (type < 0) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Unsupported operation");
		goto fail;
	}
	if ((flags & MSS_JSON_REQUESTS_ONLY) && !mss_msg_info((enum mss_msg_type)type)->is_request) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Unsupported operation");
		goto fail;
	}
	r.msg = mss_msg_new((enum mss_msg_type)type);
	if (r.msg == NULL) {
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto fail;
	}
	r.msg->soap = MSS_SOAP_NONE;
	r.lenient_b64 = !mss_msg_info(r.msg->type)->is_request;
	if (type == MSS_FAULT) {
		if (read_fault(&r, body))
			goto fail;
		json_decref(root);
		return r.msg;
	}
	/* Lift the message-level ServiceResponses into Status/StatusDetail. */
	if (json_is_object(body) && status_slot(r.msg) != NULL &&
	    (sr = json_object_get(body, "ServiceResponses")) != NULL) {
		json_incref(sr);
		json_object_del(body, "ServiceResponses");
	}
	/* Depth counted as in the SOAP form (Envelope 1, Body 2, operation 3,
	 * message 4), so both encodings meet the same cap (J-10). */
	if (read_obj(&r, body, mss_msg_info(r.msg->type)->type, &obj, JSON_MSG_DEPTH))
		goto fail;
	memcpy(r.msg->u.any, obj, mss_msg_info(r.msg->type)->type->size);
	if (sr != NULL) {
		struct mss_status **sp = status_slot(r.msg);
		const struct mss_field *hf = mss_msg_hoisted_field();

		if (*sp == NULL)
			*sp = mss_msg_alloc(r.msg, sizeof(**sp));
		if (*sp != NULL && (*sp)->detail == NULL)
			(*sp)->detail = mss_msg_alloc(r.msg, sizeof(*(*sp)->detail));
		if (*sp == NULL || (*sp)->detail == NULL) {
			mss_err_set(err, MSS_WRONG_PARAM, 0, "Message too large");
			goto fail;
		}
		if (list_set(&r, hf, sr, &(*sp)->detail->service_responses, JSON_MSG_DEPTH + 2))
			goto fail;
		json_decref(sr);
		sr = NULL;
	}
	json_decref(root);
	return r.msg;
fail:
	json_decref(sr);
	json_decref(root);
	mss_msg_free(r.msg);
	return NULL;
}

/* ---- writing ---------------------------------------------------------- */

static json_t *write_obj(const struct mss_type *t, const void *obj, int *hoisted_only);

static int
type_has_hoist(const struct mss_type *t)
{
	size_t i;

	for (i = 0; i < t->nfields; i++)
		if (t->fields[i].flags & MSS_F_HOIST)
			return 1;
	return 0;
}

static json_t *
write_value(const struct mss_field *f, const void *v)
{
	json_t *s;

	if (f->sub != NULL)
		return write_obj(f->sub, v, NULL);
	if (f->flags & MSS_F_JSON_BOOL) {
		const char *b = v;

		return json_boolean(strcmp(b, "true") == 0 || strcmp(b, "1") == 0);
	}
	s = json_string(v);
	if (s != NULL && (f->flags & MSS_F_JSON_VALUE))
		return json_pack("{s:o}", "Value", s);
	return s;
}

static json_t *
write_obj(const struct mss_type *t, const void *obj, int *hoisted_only)
{
	json_t *o = json_object(), *v;
	size_t i, k;
	int plain = 0;

	if (o == NULL)
		return NULL;
	for (i = 0; i < t->nfields; i++) {
		const struct mss_field *f = &t->fields[i];
		const void *val = *(void *const *)((const char *)obj + f->off);

		if (val == NULL)
			continue;
		if (f->flags & MSS_F_HOIST)
			continue; /* written at the message level */
		plain = 1;
		if (f->flags & MSS_F_LIST) {
			const struct mss_list *l = val;

			v = json_array();
			for (k = 0; v && k < l->n; k++)
				if (json_array_append_new(v, write_value(f, l->items[k])) != 0) {
					json_decref(v);
					v = NULL;
				}
		} else if (f->sub != NULL && type_has_hoist(f->sub)) {
			int only = 0;

			v = write_obj(f->sub, val, &only);
			if (only) {
				/* nothing but hoisted service responses: no StatusDetail */
				json_decref(v);
				continue;
			}
		} else {
			v = write_value(f, val);
		}
		if (v == NULL || json_object_set_new(o, jkey(f), v) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	if (hoisted_only != NULL) {
		*hoisted_only = 0;
		for (i = 0; !plain && i < t->nfields; i++)
			if ((t->fields[i].flags & MSS_F_HOIST) &&
			    *(void *const *)((const char *)obj + t->fields[i].off) != NULL)
				*hoisted_only = 1;
	}
	return o;
}

static int
dump_to(json_t *root, struct mss_buf *out)
{
	char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (s == NULL)
		return -1;
	rc = mss_buf_adds(out, s);
	free(s);
	return rc;
}

static json_t *
fault_code(const char *value, const char *ns, json_t *sub)
{
	json_t *c = json_pack("{s:s}", "Value", value ? value : "");

	if (c == NULL) {
		json_decref(sub);
		return NULL;
	}
	if (ns)
		json_object_set_new(c, "ValueNs", json_string(ns));
	if (sub)
		json_object_set_new(c, "SubCode", sub);
	return c;
}

static json_t *
fault_msg_json(const struct mss_fault_msg *fm)
{
	json_t *sub = NULL, *f;

	if (fm->subsubcode_value)
		sub = fault_code(fm->subsubcode_value, fm->subsubcode_ns, NULL);
	if (fm->subcode_value)
		sub = fault_code(fm->subcode_value, fm->subcode_ns, sub);
	f = json_pack("{s:o}", "Code", fault_code(fm->code_value, fm->code_ns, sub));
	if (f == NULL)
		return NULL;
	if (fm->reason)
		json_object_set_new(f, "Reason", json_string(fm->reason));
	if (fm->detail)
		json_object_set_new(f, "Detail", json_string(fm->detail));
	return json_pack("{s:o}", "Fault", f);
}

int
mss_json_encode(const struct mss_msg *msg, struct mss_buf *out, struct mss_err *err)
{
	const struct mss_msg_info *mi;
	json_t *root, *body;
	struct mss_status **sp;
	int rc;

	mss_err_clear(err);
	mi = mss_msg_info(msg->type);
	if (msg->type == MSS_FAULT) {
		root = fault_msg_json(msg->u.fault);
	} else {
		body = write_obj(mi->type, msg->u.any, NULL);
		sp = status_slot((struct mss_msg *)msg);
		if (body != NULL && sp != NULL && *sp != NULL && (*sp)->detail != NULL &&
		    (*sp)->detail->service_responses != NULL) {
			const struct mss_field *hf = mss_msg_hoisted_field();
			const struct mss_list *l = (*sp)->detail->service_responses;
			json_t *arr = json_array();
			size_t k;

			for (k = 0; arr && k < l->n; k++)
				json_array_append_new(arr, write_value(hf, l->items[k]));
			json_object_set_new(body, "ServiceResponses", arr);
		}
		root = body ? json_pack("{s:o}", mi->element, body) : NULL;
	}
	if (root == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
	rc = dump_to(root, out);
	json_decref(root);
	if (rc != 0)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Message too large");
	return 0;
}

int
mss_json_encode_fault(const struct mss_fault *f, struct mss_buf *out)
{
	char num[16];
	json_t *sub = NULL, *root;
	int rc;

	/* As in SOAP, the FiCom second-level code stays off the wire. */
	if (f->code) {
		snprintf(num, sizeof(num), "_%d", f->code);
		sub = fault_code(num, f->subcode_ns, NULL);
	}
	root = json_pack("{s:{s:o,s:s,s:s}}", "Fault", "Code",
			 fault_code(f->code_value, MSS_NS_SOAP12, sub), "Reason",
			 f->reason ? f->reason : "", "Detail", f->detail ? f->detail : "");
	if (root == NULL)
		return -1;
	rc = dump_to(root, out);
	json_decref(root);
	return rc;
}
