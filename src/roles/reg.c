/*
 * reg.c - the ME's operations (see reg.h, docs/internals/me.md): the one
 * dispatcher reg_call() with the role table, dual control and the one
 * audit record per call; users, device removal, certificates, APs,
 * profiles, accounts, approvals, the audit ops, stats, and the seeding
 * used by `msspd init`.  Device activation, jobs and the key scan are in
 * reg_enrol.c (reg_int.h says what crosses between the two files).
 *
 * Every input is validated here before anything is written (lengths,
 * character sets, UTF-8); error messages name the rule and never echo
 * input.  Record bodies are written in one canonical form (compact JSON,
 * keys sorted) so that a record read back validates again unchanged.
 */
#include "roles/reg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mss/profile.h"
#include "pki/ca.h"
#include "pki/e2e.h"
#include "roles/conf.h"
#include "roles/meshconf.h"
#include "roles/reg_int.h"
#include "roles/rest.h"
#include "store/audit.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/utf8.h"

/* Record kinds this file owns. */
#define K_AP	     "ap"
#define K_ACCOUNT    "account"
#define K_ACCOUNTFP  "accountfp"
#define K_SIGPROF    "sigprof"
#define K_REGPROF    "regprof"
#define K_APPROVAL   "approval"
#define K_ACTIVATION "activation"
#define K_JOB	     "job"
#define K_CERTSERIAL "certserial" /* serial (canonical hex) -> {"key_id"} */
#define K_APFP	     "apfp"	  /* AP certificate SHA-256 -> {"ap"}    */
#define K_APFPIDX    "apfpidx"	  /* "v1": every AP's fingerprints are
				   * in "apfp" (the one-time back-fill) */
#define K_PEER	     "peer"	  /* mesh peer MSSP (roles/meshconf.h)   */
#define K_ROUTE	     "route"	  /* mesh routing-table entry            */

/* Record states. */
#define AP_ST_ACTIVE	  1
#define AP_ST_SUSPENDED	  2
#define ACC_ST_ACTIVE	  1
#define ACC_ST_DISABLED	  2
#define APR_ST_PENDING	  1
#define APR_ST_APPROVED	  2
#define APR_ST_REJECTED	  3
#define APR_ST_EXPIRED	  4
#define APR_ST_FAILED	  5 /* approved, but the operation then failed */
#define ACT_ST_OPEN	  1
#define ACT_ST_USED	  2
#define ACT_ST_LOCKED	  3
#define PROF_ST		  1
#define PEER_ST_ACTIVE	  1
#define PEER_ST_SUSPENDED 2
#define ROUTE_ST	  1

#define FP_HEX		  64
#define REC_PAGE	  MSSP_STORE_SCAN_BATCH
#define DETAIL_MAX	  512
#define TARGET_MAX	  256
#define JDUMP		  (JSON_COMPACT | JSON_SORT_KEYS)

/* ======================================================================
 * Errors, roles, the op table
 * ====================================================================== */

static const struct {
	int status, code;
} err_kinds[] = {
	[REG_E_BAD] = {400, 101},      [REG_E_FORBIDDEN] = {403, 104},
	[REG_E_NOUSER] = {404, 105},   [REG_E_NOTFOUND] = {404, 101},
	[REG_E_CONFLICT] = {409, 101}, [REG_E_GONE] = {410, 101},
	[REG_E_KEY] = {422, 407},      [REG_E_INTERNAL] = {500, 900},
	[REG_E_UNAVAIL] = {503, 900},
};

int
reg_err_set(struct reg_err *e, enum reg_errkind kind, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	if ((int)kind < REG_E_BAD || (int)kind > REG_E_UNAVAIL)
		kind = REG_E_INTERNAL;
	e->status = err_kinds[kind].status;
	e->code = err_kinds[kind].code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *const role_names[] = {
	[REG_ROLE_NONE] = "none",	[REG_ROLE_ADMIN] = "admin", [REG_ROLE_RA] = "ra",
	[REG_ROLE_AUDITOR] = "auditor", [REG_ROLE_SYSTEM] = "system",
};

const char *
reg_role_name(enum reg_role r)
{
	if ((int)r < 0 || (int)r > REG_ROLE_SYSTEM)
		return "none";
	return role_names[r];
}

int
reg_role_parse(const char *s, enum reg_role *out)
{
	/* "system" is never an account's role: not parsed. */
	static const enum reg_role ok[] = {REG_ROLE_ADMIN, REG_ROLE_RA, REG_ROLE_AUDITOR};

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(s, role_names[ok[i]]) == 0) {
			if (out)
				*out = ok[i];
			return 0;
		}
	return -1;
}

/* Role bits of the table. */
#define R_AD (1u << REG_ROLE_ADMIN)
#define R_RA (1u << REG_ROLE_RA)
#define R_AU (1u << REG_ROLE_AUDITOR)
#define R_ALL (R_AD | R_RA | R_AU)

struct op_def {
	const char *od_name;
	unsigned od_roles; /* REG_ROLE_SYSTEM may call everything        */
	bool od_mutates;
};

/* THE role table (me.md "Accounts and roles"). */
static const struct op_def ops[REG_OP_COUNT] = {
	[REG_OP_SESSION] = {"session", R_ALL, false},
	[REG_OP_STATS] = {"stats", R_ALL, false},
	[REG_OP_USER_LIST] = {"user.list", R_ALL, false},
	[REG_OP_USER_CREATE] = {"user.create", R_AD | R_RA, true},
	[REG_OP_USER_GET] = {"user.get", R_ALL, false},
	[REG_OP_USER_UPDATE] = {"user.update", R_AD | R_RA, true},
	[REG_OP_USER_SUSPEND] = {"user.suspend", R_AD | R_RA, true},
	[REG_OP_USER_RESUME] = {"user.resume", R_AD | R_RA, true},
	[REG_OP_USER_DELETE] = {"user.delete", R_AD | R_RA, true},
	[REG_OP_ACTIVATION_CREATE] = {"activation.create", R_AD | R_RA, true},
	[REG_OP_DEVICE_DELETE] = {"device.delete", R_AD | R_RA, true},
	[REG_OP_KEY_REQUEST] = {"key.request", R_AD | R_RA, true},
	[REG_OP_PIN_UNBLOCK] = {"pin.unblock", R_AD | R_RA, true},
	[REG_OP_JOB_GET] = {"job.get", R_ALL, false},
	[REG_OP_CERT_LIST] = {"cert.list", R_ALL, false},
	[REG_OP_CERT_REVOKE] = {"cert.revoke", R_AD | R_RA, true},
	[REG_OP_AP_LIST] = {"ap.list", R_AD | R_AU, false},
	[REG_OP_AP_GET] = {"ap.get", R_AD | R_AU, false},
	[REG_OP_AP_CREATE] = {"ap.create", R_AD, true},
	[REG_OP_AP_UPDATE] = {"ap.update", R_AD, true},
	[REG_OP_AP_SUSPEND] = {"ap.suspend", R_AD, true},
	[REG_OP_AP_RESUME] = {"ap.resume", R_AD, true},
	[REG_OP_AP_DELETE] = {"ap.delete", R_AD, true},
	[REG_OP_SIGPROF_LIST] = {"sigprof.list", R_ALL, false},
	[REG_OP_SIGPROF_PUT] = {"sigprof.put", R_AD, true},
	[REG_OP_REGPROF_LIST] = {"regprof.list", R_ALL, false},
	[REG_OP_REGPROF_PUT] = {"regprof.put", R_AD, true},
	[REG_OP_ACCOUNT_LIST] = {"account.list", R_AD | R_AU, false},
	[REG_OP_ACCOUNT_CREATE] = {"account.create", R_AD, true},
	[REG_OP_ACCOUNT_DELETE] = {"account.delete", R_AD, true},
	[REG_OP_APPROVAL_LIST] = {"approval.list", R_AD | R_AU, false},
	[REG_OP_APPROVAL_APPROVE] = {"approval.approve", R_AD, true},
	[REG_OP_APPROVAL_REJECT] = {"approval.reject", R_AD, true},
	[REG_OP_AUDIT_LIST] = {"audit.list", R_AD | R_AU, false},
	[REG_OP_AUDIT_VERIFY] = {"audit.verify", R_AD | R_AU, false},
	[REG_OP_KEYS_SCAN] = {"keys.scan", R_AD, true},
	/* the mesh: as the AP table (peers are APs of another kind) */
	[REG_OP_PEER_LIST] = {"peer.list", R_AD | R_AU, false},
	[REG_OP_PEER_GET] = {"peer.get", R_AD | R_AU, false},
	[REG_OP_PEER_PUT] = {"peer.put", R_AD, true},
	[REG_OP_PEER_DELETE] = {"peer.delete", R_AD, true},
	[REG_OP_ROUTE_LIST] = {"route.list", R_AD | R_AU, false},
	[REG_OP_ROUTE_PUT] = {"route.put", R_AD, true},
	[REG_OP_ROUTE_DELETE] = {"route.delete", R_AD, true},
};

static bool
op_valid(enum reg_op op)
{
	return (int)op >= 0 && op < REG_OP_COUNT;
}

const char *
reg_op_name(enum reg_op op)
{
	return op_valid(op) ? ops[op].od_name : "?";
}

bool
reg_op_allowed(enum reg_op op, enum reg_role role)
{
	if (!op_valid(op))
		return false;
	if (role == REG_ROLE_SYSTEM)
		return true;
	if (role != REG_ROLE_ADMIN && role != REG_ROLE_RA && role != REG_ROLE_AUDITOR)
		return false;
	return (ops[op].od_roles & (1u << role)) != 0;
}

bool
reg_op_mutates(enum reg_op op)
{
	return op_valid(op) && ops[op].od_mutates;
}

static int
op_by_name(const char *name, enum reg_op *out)
{
	for (int i = 0; i < REG_OP_COUNT; i++)
		if (strcmp(ops[i].od_name, name) == 0) {
			*out = (enum reg_op)i;
			return 0;
		}
	return -1;
}

/* ======================================================================
 * Small helpers: time, hex, text rules
 * ====================================================================== */

void
reg_iso_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	char tmp[96];

	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	snprintf(out, 32, "%.31s", tmp);
}

static json_t *
json_iso(int64_t ms)
{
	char b[32];

	reg_iso_time(ms, b);
	return json_string(b);
}

/* Exactly 64 hex digits (either case) -> 32 bytes.  0 or -1. */
static int
fp_parse(const char *hex, unsigned char fp[32])
{
	if (hex == NULL)
		return -1;
	return hex_decode(hex, strlen(hex), fp, 32, false);
}

/* UTF-8 text without control characters (C0, DEL, C1): what a name or a
 * description may hold. */
static bool
text_ok(const char *s, size_t max, bool empty_ok)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n > max || (n == 0 && !empty_ok))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return false;
	}
	return utf8_valid(s, n);
}

/* 1..max chars of [A-Za-z0-9._-] (profile names, key group ids). */
static bool
id_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}


/* The key / device id rule of the store: [A-Za-z0-9._:+@-]. */
static bool
store_id_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:+@-", s[i]))
			return false;
	return true;
}

/* The X.520 PrintableString alphabet (the serialNumber RDN the CA puts in
 * a certificate is one). */
static bool
printable_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (s == NULL || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(" '()+,-./:=?", s[i]))
			return false;
	return true;
}

/* Serial as hex -> canonical (upper case, no leading zeros) for compares. */
static int
serial_canon(const char *in, char out[MSSP_STORE_MAX_SERIAL + 1])
{
	size_t n, k = 0;

	if (in == NULL || (n = strlen(in)) == 0 || n > MSSP_STORE_MAX_SERIAL)
		return -1;
	while (n > 1 && *in == '0') {
		in++;
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		if (hex_digit((unsigned char)in[i]) < 0)
			return -1;
		out[k++] = (char)toupper((unsigned char)in[i]);
	}
	out[k] = '\0';
	return 0;
}

int
reg_msisdn_norm(const char *in, char out[MSSP_STORE_MAX_MSISDN + 1], struct reg_err *e)
{
	size_t n;

	if (in == NULL)
		return reg_err_set(e, REG_E_BAD, "MSISDN missing");
	if (*in == '+')
		in++;
	n = strlen(in);
	if (n < 6 || n > 15)
		return reg_err_set(e, REG_E_BAD, "MSISDN must be 6 to 15 digits");
	for (size_t i = 0; i < n; i++)
		if (in[i] < '0' || in[i] > '9')
			return reg_err_set(e, REG_E_BAD, "MSISDN must be digits");
	out[0] = '+';
	memcpy(out + 1, in, n + 1);
	return 0;
}

int
reg_from_store(struct reg_err *e, const struct store_err *se, bool notfound)
{
	switch (se->status) {
	case 101:
		return reg_err_set(e, notfound ? REG_E_NOTFOUND : REG_E_BAD, "%s",
				   notfound ? "not found" : "refused by the registry");
	case 105:
		return reg_err_set(e, REG_E_NOUSER, "unknown mobile user");
	case 406:
		return reg_err_set(e, REG_E_CONFLICT, "the user has an outstanding transaction");
	case 407:
		return reg_err_set(e, REG_E_KEY, "key refused by the registry");
	case STORE_STATUS_CONFLICT:
		return reg_err_set(e, REG_E_CONFLICT, "exists already or changed meanwhile");
	default:
		LOG_EV("reg.store_error", "detail", se->detail);
		return reg_err_set(e, REG_E_INTERNAL, "storage unavailable");
	}
}

static int
oom(struct reg_err *e)
{
	return reg_err_set(e, REG_E_INTERNAL, "out of memory");
}

/* ======================================================================
 * JSON input helpers
 * ====================================================================== */

/* `o` must be an object whose keys are all in `allowed` (NULL-ended). */
static int
obj_check(const json_t *o, const char *const *allowed, struct reg_err *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return reg_err_set(e, REG_E_BAD, "body must be a JSON object");
	json_object_foreach((json_t *)o, k, v) {
		bool found = false;
		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				found = true;
		if (!found)
			return reg_err_set(e, REG_E_BAD, "unknown member in body");
	}
	return 0;
}

/* A string member: NULL when absent; 400 when not a string (or with an
 * embedded NUL). */
static int
get_str(const json_t *o, const char *key, const char **out, struct reg_err *e)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return reg_err_set(e, REG_E_BAD, "a member must be a string");
	*out = json_string_value(v);
	return 0;
}

/* A query parameter (string) or NULL. */
static const char *
query_str(const struct reg_request *rq, const char *key)
{
	json_t *v;

	if (!json_is_object(rq->rq_query))
		return NULL;
	v = json_object_get(rq->rq_query, key);
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* Decimal 0..max, else -1. */
static int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* The list page size asked in the query (default, 1..MSSP_STORE_MAX_LIST:
 * a larger one is cut). */
static int
query_limit(const struct reg_request *rq, size_t *out, struct reg_err *e)
{
	const char *s = query_str(rq, "limit");
	uint64_t v;

	*out = MSSP_ME_LIST_DEFAULT;
	if (s == NULL)
		return 0;
	if (parse_uint(s, UINT32_MAX, &v) != 0 || v == 0)
		return reg_err_set(e, REG_E_BAD, "limit must be a positive number");
	*out = v > MSSP_STORE_MAX_LIST ? MSSP_STORE_MAX_LIST : (size_t)v;
	return 0;
}

/* ======================================================================
 * Store records
 * ====================================================================== */

/* Read a record and parse its body.  Not found: 404 of `nf`. */
static int
rec_load(struct store *st, const char *kind, const char *name, enum reg_errkind nf,
	 struct store_rec *rec, json_t **body, struct reg_err *e)
{
	struct store_err se = {0};
	json_error_t je;

	*body = NULL;
	if (store_rec_get(st, kind, name, rec, &se) != 0) {
		if (se.status == 101)
			return reg_err_set(e, nf, "%s", nf == REG_E_NOUSER ? "unknown mobile user"
									   : "not found");
		return reg_from_store(e, &se, true);
	}
	*body = json_loadb(rec->sr_body ? rec->sr_body : "", rec->sr_body_len, 0, &je);
	if (!json_is_object(*body)) {
		json_decref(*body);
		*body = NULL;
		store_rec_clear(rec);
		LOG_EV("reg.bad_record", "kind", kind);
		return reg_err_set(e, REG_E_INTERNAL, "stored record unreadable");
	}
	return 0;
}

/* Write a record with `body` (canonical JSON).  `expect`: STORE_REC_NEW,
 * STORE_REC_ANY or a version.  *created (may be NULL) = version 1. */
static int
rec_store(struct store *st, const char *kind, const char *name, const char *owner, int state,
	  int64_t expires_ms, const json_t *body, uint64_t expect, int64_t now_ms, bool *created,
	  struct reg_err *e)
{
	struct store_rec r = {0}, out = {0};
	struct store_err se = {0};
	char *txt = json_dumps(body, JDUMP);
	int rc;

	if (txt == NULL)
		return oom(e);
	if (strlen(txt) > MSSP_STORE_MAX_REC_BODY) {
		free(txt);
		return reg_err_set(e, REG_E_BAD, "record too large");
	}
	snprintf(r.sr_kind, sizeof(r.sr_kind), "%s", kind);
	snprintf(r.sr_name, sizeof(r.sr_name), "%s", name);
	snprintf(r.sr_owner, sizeof(r.sr_owner), "%s", owner ? owner : "");
	r.sr_state = state;
	r.sr_expires_ms = expires_ms;
	r.sr_body = txt;
	r.sr_body_len = strlen(txt);
	rc = store_rec_put(st, &r, expect, now_ms, &out, &se);
	free(txt);
	if (rc != 0)
		return reg_from_store(e, &se, false);
	if (created)
		*created = out.sr_version == 1;
	store_rec_clear(&out);
	return 0;
}

/* Call fn for every record of `kind` (owner, state filters as
 * store_rec_list), at most `cap`, in name order.  fn returns 0 to go on,
 * 1 to stop, -1 for an error (e filled). */
typedef int (*rec_fn)(void *arg, const struct store_rec *r, json_t *body, struct reg_err *e);

static int
rec_each(struct store *st, const char *kind, const char *owner, int state, const char *after,
	 size_t cap, rec_fn fn, void *arg, struct reg_err *e)
{
	struct store_rec *page = calloc(REC_PAGE, sizeof *page);
	char *last = malloc(MSSP_STORE_MAX_REC_NAME + 1);
	size_t seen = 0;
	int rc = 0;

	if (page == NULL || last == NULL) {
		free(page);
		free(last);
		return oom(e);
	}
	snprintf(last, MSSP_STORE_MAX_REC_NAME + 1, "%s", after ? after : "");
	while (rc == 0 && seen < cap) {
		struct store_err se = {0};
		size_t n = 0, want = cap - seen < REC_PAGE ? cap - seen : REC_PAGE;

		if (store_rec_list(st, kind, owner, state, last[0] ? last : NULL, page, want, &n,
				   &se) != 0) {
			rc = reg_from_store(e, &se, false);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (rc == 0) {
				json_error_t je;
				json_t *b = json_loadb(page[i].sr_body ? page[i].sr_body : "",
						       page[i].sr_body_len, 0, &je);
				if (!json_is_object(b)) {
					LOG_EV("reg.bad_record", "kind", kind);
				} else {
					rc = fn(arg, &page[i], b, e);
				}
				json_decref(b);
				seen++;
			}
			if (i + 1 == n)
				snprintf(last, MSSP_STORE_MAX_REC_NAME + 1, "%s", page[i].sr_name);
			store_rec_clear(&page[i]);
		}
		if (n < want)
			break;
	}
	free(page);
	free(last);
	return rc < 0 ? -1 : 0;
}

/* How many records of kind/state (counting pages). */
static int
count_fn(void *arg, const struct store_rec *r, json_t *body, struct reg_err *e)
{
	(void)r;
	(void)body;
	(void)e;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
rec_count(struct store *st, const char *kind, int state, uint64_t *n, struct reg_err *e)
{
	*n = 0;
	return rec_each(st, kind, NULL, state, NULL, MSSP_REG_MAX_COUNT_SCAN, count_fn, n, e);
}

/* ======================================================================
 * The call: audit record, approvals
 * ====================================================================== */

/* What one reg_call accumulates for its audit record. */
struct call {
	const char *c_action;		/* audit action: the op's name, or the
					 * approved op's                      */
	char c_target[TARGET_MAX + 1];
	char c_detail[DETAIL_MAX];
	bool c_approved;		/* running an approved request: no dual
					 * control again                      */
	const char *c_approver;		/* then: the approving account        */
};

static void
call_target(struct call *c, const char *s)
{
	/* The target is input: copied only when it is short, clean text. */
	if (s == NULL)
		c->c_target[0] = '\0';
	else if (text_ok(s, TARGET_MAX, true))
		snprintf(c->c_target, sizeof(c->c_target), "%s", s);
	else
		snprintf(c->c_target, sizeof(c->c_target), "-");
}

static void call_detail(struct call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
call_detail(struct call *c, const char *fmt, ...)
{
	size_t n = strlen(c->c_detail);
	va_list ap;

	if (n + 2 >= sizeof(c->c_detail))
		return;
	if (n > 0) {
		c->c_detail[n++] = ';';
		c->c_detail[n++] = ' ';
		c->c_detail[n] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(c->c_detail + n, sizeof(c->c_detail) - n, fmt, ap);
	va_end(ap);
}

static const char *
actor_name(const struct reg_actor *who)
{
	return who->ra_name[0] ? who->ra_name : reg_role_name(who->ra_role);
}

static int
audit_write(struct reg *r, const struct reg_actor *who, const char *action, const char *target,
	    const char *outcome, const char *detail, int64_t now_ms, struct reg_err *e)
{
	struct audit_event ev = {
		.ae_actor = actor_name(who),
		.ae_role = reg_role_name(who->ra_role),
		.ae_action = action,
		.ae_target = target,
		.ae_outcome = outcome,
		.ae_detail = detail,
	};
	struct store_err se = {0};

	if (audit_append(r->r_audit, &ev, now_ms, NULL, &se) != 0) {
		char st[16];
		snprintf(st, sizeof(st), "%d", se.status);
		LOG_EV("reg.audit_failed", "action", action, "status", st, "detail", se.detail);
		return reg_err_set(e, REG_E_INTERNAL, "audit log unavailable");
	}
	return 0;
}

void
reg_audit_event(struct reg *r, const struct reg_actor *who, const char *action,
		const char *target, const char *outcome, const char *detail, int64_t now_ms)
{
	struct reg_err e;

	if (r == NULL || who == NULL)
		return;
	(void)audit_write(r, who, action, target, outcome, detail, now_ms, &e);
}

struct audit *
reg_audit(struct reg *r)
{
	return r ? r->r_audit : NULL;
}

static json_t *
actor_json(const struct reg_actor *who)
{
	char fp[FP_HEX + 1];

	hex_encode(who->ra_fp, 32, fp);
	return json_pack("{s:s, s:s, s:s}", "name", actor_name(who), "role",
			 reg_role_name(who->ra_role), "fp", fp);
}

/* Dual control: record the request `rq` (with its validated body `body`,
 * borrowed, may be NULL) as a pending approval; REG_PENDING. */
static int
approval_create(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
		const json_t *body, int64_t now_ms, json_t **out, struct reg_err *e,
		struct call *c)
{
	int64_t exp = now_ms + (int64_t)MSSP_ME_APPROVAL_TTL_S * 1000;
	char id[2 + 2 * MSSP_REG_APPROVAL_ID_BYTES];
	json_t *rec = json_pack("{s:s, s:s?, s:s?, s:O?, s:o, s:o, s:o, s:I}", "op",
				reg_op_name(rq->rq_op), "arg", rq->rq_arg, "arg2", rq->rq_arg2,
				"body", body, "requester", actor_json(who), "created",
				json_iso(now_ms), "expires", json_iso(exp), "expires_ms",
				(json_int_t)exp);
	int rc = -1;

	if (rec == NULL)
		return oom(e);
	for (int tries = 0; tries < MSSP_STORE_ID_RETRIES; tries++) {
		unsigned char rnd[MSSP_REG_APPROVAL_ID_BYTES];
		if (RAND_bytes(rnd, sizeof rnd) != 1) {
			rc = reg_err_set(e, REG_E_INTERNAL, "random source failed");
			break;
		}
		id[0] = 'A';
		hex_encode(rnd, sizeof rnd, id + 1);
		json_object_set_new(rec, "id", json_string(id));
		rc = rec_store(st, K_APPROVAL, id, NULL, APR_ST_PENDING, exp, rec, STORE_REC_NEW,
			       now_ms, NULL, e);
		if (rc == 0 || e->status != 409)
			break;
	}
	json_decref(rec);
	if (rc != 0)
		return -1;
	call_detail(c, "approval %s", id);
	*out = json_pack("{s:s, s:s}", "approval", id, "state", "pending");
	return *out ? REG_PENDING : oom(e);
}

/* ======================================================================
 * Users
 * ====================================================================== */

static const char *
user_state_name(int s)
{
	return s == STORE_USER_SUSPENDED ? "suspended" : "active";
}

static const char *
key_state_name(int s)
{
	switch (s) {
	case STORE_KEY_ACTIVE:
		return "active";
	case STORE_KEY_REVOKED:
		return "revoked";
	case STORE_KEY_DISABLED:
		return "disabled";
	default:
		return "?";
	}
}

static json_t *
user_json(const struct store_user *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "msisdn",
			 u->su_msisdn, "state", user_state_name(u->su_state), "name", u->su_name,
			 "given_name", u->su_given_name, "surname", u->su_surname, "id_number",
			 u->su_id_number, "country", u->su_country, "lang", u->su_lang, "created",
			 json_iso(u->su_created_ms), "updated", json_iso(u->su_updated_ms));
}

/* The members of a user body other than msisdn, validated into u. */
static int
user_apply(struct store_user *u, const json_t *b, struct reg_err *e)
{
	const char *s;

	if (get_str(b, "name", &s, e) != 0)
		return -1;
	if (s) {
		if (!text_ok(s, MSSP_STORE_MAX_NAME, true))
			return reg_err_set(e, REG_E_BAD, "name: UTF-8 text of at most %d bytes",
					   MSSP_STORE_MAX_NAME);
		snprintf(u->su_name, sizeof(u->su_name), "%s", s);
	}
	if (get_str(b, "given_name", &s, e) != 0)
		return -1;
	if (s) {
		if (!text_ok(s, MSSP_STORE_MAX_NAME, true))
			return reg_err_set(e, REG_E_BAD,
					   "given_name: UTF-8 text of at most %d bytes",
					   MSSP_STORE_MAX_NAME);
		snprintf(u->su_given_name, sizeof(u->su_given_name), "%s", s);
	}
	if (get_str(b, "surname", &s, e) != 0)
		return -1;
	if (s) {
		if (!text_ok(s, MSSP_STORE_MAX_NAME, true))
			return reg_err_set(e, REG_E_BAD, "surname: UTF-8 text of at most %d bytes",
					   MSSP_STORE_MAX_NAME);
		snprintf(u->su_surname, sizeof(u->su_surname), "%s", s);
	}
	if (get_str(b, "id_number", &s, e) != 0)
		return -1;
	if (s) {
		if (!printable_ok(s, MSSP_STORE_MAX_ID_NUMBER))
			return reg_err_set(e, REG_E_BAD,
					   "id_number: at most %d PrintableString characters",
					   MSSP_STORE_MAX_ID_NUMBER);
		snprintf(u->su_id_number, sizeof(u->su_id_number), "%s", s);
	}
	if (get_str(b, "country", &s, e) != 0)
		return -1;
	if (s) {
		if (*s && (strlen(s) != 2 || !isalpha((unsigned char)s[0]) ||
			   !isalpha((unsigned char)s[1]) || (unsigned char)s[0] > 0x7f))
			return reg_err_set(e, REG_E_BAD, "country: ISO 3166 two letters");
		u->su_country[0] = *s ? (char)toupper((unsigned char)s[0]) : '\0';
		u->su_country[1] = *s ? (char)toupper((unsigned char)s[1]) : '\0';
		u->su_country[2] = '\0';
	}
	if (get_str(b, "lang", &s, e) != 0)
		return -1;
	if (s) {
		size_t n = strlen(s), k = 0;
		bool ok = n <= MSSP_STORE_MAX_LANG;
		while (ok && k < n && s[k] >= 'a' && s[k] <= 'z')
			k++;
		if (n > 0 && (k < 2 || k > 3))
			ok = false;
		if (ok && k < n)
			ok = s[k] == '-' && n == k + 3 && isalpha((unsigned char)s[k + 1]) &&
			     isalpha((unsigned char)s[k + 2]) && (unsigned char)s[k + 1] < 0x80 &&
			     (unsigned char)s[k + 2] < 0x80;
		if (!ok)
			return reg_err_set(e, REG_E_BAD, "lang: a language tag like fi or en-GB");
		snprintf(u->su_lang, sizeof(u->su_lang), "%s", s);
		for (size_t i = k + 1; i < n; i++)
			u->su_lang[i] = (char)toupper((unsigned char)u->su_lang[i]);
	}
	return 0;
}

/* The user of path argument `arg` (normalised into msisdn). */
static int
user_load(struct store *st, const char *arg, char msisdn[MSSP_STORE_MAX_MSISDN + 1],
	  struct store_user *u, struct reg_err *e)
{
	struct store_err se = {0};

	if (reg_msisdn_norm(arg, msisdn, e) != 0)
		return -1;
	if (store_user_get(st, msisdn, u, &se) != 0)
		return reg_from_store(e, &se, true);
	return 0;
}

static int
user_write(struct store *st, const struct store_user *u, int64_t now_ms, struct reg_err *e)
{
	struct store_err se = {0};

	if (store_user_put(st, u, now_ms, &se) != 0)
		return reg_from_store(e, &se, false);
	return 0;
}

static const char *const user_members[] = {"msisdn",  "given_name", "surname", "id_number",
					   "country", "lang",	    "name",    NULL};

static int
op_user_create(struct store *st, const struct reg_request *rq, int64_t now_ms, json_t **out,
	       struct reg_err *e, struct call *c)
{
	struct store_user u = {0}, old;
	struct store_err se = {0};
	const char *m;

	if (obj_check(rq->rq_body, user_members, e) != 0 || get_str(rq->rq_body, "msisdn", &m, e))
		return -1;
	if (reg_msisdn_norm(m, u.su_msisdn, e) != 0)
		return -1;
	call_target(c, u.su_msisdn);
	if (user_apply(&u, rq->rq_body, e) != 0)
		return -1;
	/* The store's put replaces: the existence check is ours (a race of two
	 * RAs creating the same MSISDN ends with the later record). */
	if (store_user_get(st, u.su_msisdn, &old, &se) == 0)
		return reg_err_set(e, REG_E_CONFLICT, "the mobile user exists already");
	if (se.status != 105)
		return reg_from_store(e, &se, false);
	u.su_state = STORE_USER_ACTIVE;
	if (user_write(st, &u, now_ms, e) != 0)
		return -1;
	u.su_created_ms = u.su_updated_ms = now_ms;
	*out = user_json(&u);
	return *out ? REG_CREATED : oom(e);
}

/* The updated_ms the store gives a user written at now_ms after `prev`
 * (store.h: max(now, previous + 1)), for the answer. */
static int64_t
user_next_ms(int64_t prev, int64_t now_ms)
{
	return now_ms > prev ? now_ms : prev + 1;
}

/* A CAS write of a user refused: deleted meanwhile (404) or changed since
 * it was read (409). */
static int
user_cas_err(const struct store_err *se, struct reg_err *e)
{
	if (se->status == STORE_STATUS_CONFLICT)
		return reg_err_set(e, REG_E_CONFLICT, "the mobile user changed meanwhile");
	return reg_from_store(e, se, true);
}

/* user.update: the identity fields only, never the state (a suspension
 * by the key scan or another RA is not undone), compare-and-set on the
 * updated_ms read here (a user deleted meanwhile stays deleted: 404). */
static int
op_user_update(struct store *st, const struct reg_request *rq, int64_t now_ms, json_t **out,
	       struct reg_err *e, struct call *c)
{
	static const char *const members[] = {"given_name", "surname", "id_number", "country",
					      "lang",	    "name",    NULL};
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_user u;
	struct store_err se = {0};

	if (obj_check(rq->rq_body, members, e) != 0)
		return -1;
	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	call_target(c, msisdn);
	if (user_apply(&u, rq->rq_body, e) != 0)
		return -1;
	if (store_user_update(st, &u, u.su_updated_ms, now_ms, &se) != 0)
		return user_cas_err(&se, e);
	u.su_updated_ms = user_next_ms(u.su_updated_ms, now_ms);
	*out = user_json(&u);
	return *out ? 0 : oom(e);
}

/* user.suspend / user.resume: the state only, compare-and-set on what was
 * read (a concurrent change - another RA, the key scan - answers 409: the
 * caller looks again rather than overriding what it did not see). */
static int
op_user_state(struct store *st, const struct reg_request *rq, enum store_user_state to,
	      int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_user u;
	struct store_err se = {0};

	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	call_target(c, msisdn);
	call_detail(c, "from %s", user_state_name(u.su_state));
	if (store_user_set_state(st, msisdn, to, u.su_updated_ms, now_ms, &se) != 0)
		return user_cas_err(&se, e);
	u.su_state = to;
	u.su_updated_ms = user_next_ms(u.su_updated_ms, now_ms);
	*out = user_json(&u);
	return *out ? 0 : oom(e);
}

/* Certificate times and subject of a DER certificate (zero / "" when it
 * does not parse). */
static void
cert_info(const unsigned char *der, size_t len, int64_t *nb_ms, int64_t *na_ms, char *subj,
	  size_t subj_cap)
{
	const unsigned char *p = der;
	X509 *x = len ? d2i_X509(NULL, &p, (long)len) : NULL;
	struct tm tm;

	*nb_ms = *na_ms = 0;
	if (subj_cap)
		subj[0] = '\0';
	if (x == NULL)
		return;
	memset(&tm, 0, sizeof tm);
	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
		*nb_ms = (int64_t)timegm(&tm) * 1000;
	memset(&tm, 0, sizeof tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		*na_ms = (int64_t)timegm(&tm) * 1000;
	if (subj_cap) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
					    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
			int n = BIO_read(b, subj, (int)subj_cap - 1);
			subj[n > 0 ? n : 0] = '\0';
		}
		BIO_free(b);
	}
	X509_free(x);
}

static json_t *
key_json(const struct store_key *k)
{
	json_t *o, *prof = json_array();
	int64_t nb, na;
	char buf[MSSP_STORE_MAX_PROFILES_TEXT + 1];

	if (prof == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", k->sk_profiles);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_array_append_new(prof, json_string(t));
	cert_info(k->sk_cert, k->sk_cert_len, &nb, &na, NULL, 0);
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s?, s:o, s:o, s:o}", "key_id",
		      k->sk_key_id, "group", k->sk_group, "device", k->sk_device_id, "purpose",
		      k->sk_purpose == STORE_KEY_SIGN ? "sign" : "authn", "profiles", prof, "pin",
		      (int)k->sk_has_pin, "state", key_state_name(k->sk_state), "cert_serial",
		      k->sk_cert_serial[0] ? k->sk_cert_serial : NULL, "cert_not_after",
		      na ? json_iso(na) : json_null(), "created", json_iso(k->sk_created_ms),
		      "updated", json_iso(k->sk_updated_ms));
	return o;
}

static json_t *
device_json(const struct store_device *d)
{
	unsigned char h[32];
	char hex[FP_HEX + 1];

	/* Never the channel key: the SPKI's hash identifies the device key. */
	if (EVP_Digest(d->sd_auth_spki, d->sd_auth_spki_len, h, NULL, EVP_sha256(), NULL) != 1)
		memset(h, 0, sizeof h);
	hex_encode(h, 32, hex);
	return json_pack("{s:s, s:s, s:s, s:b, s:o}", "device_id", d->sd_device_id, "state",
			 d->sd_state == STORE_DEVICE_ACTIVE ? "active" : "disabled",
			 "key_sha256", hex, "push", (int)(d->sd_push_token[0] != '\0'), "created",
			 json_iso(d->sd_created_ms));
}

static const char *
mode_name(int m)
{
	switch (m) {
	case STORE_MODE_SYNCH:
		return "synch";
	case STORE_MODE_ASYNCH_CS:
		return "asynchClientServer";
	case STORE_MODE_ASYNCH_SS:
		return "asynchServerServer";
	default:
		return "?";
	}
}

static json_t *
tx_json(const struct store_tx *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:o}", "id", t->tx_id,
			 "ap_id", t->tx_ap_id, "ap_trans_id", t->tx_ap_trans_id, "key_id",
			 t->tx_key_id, "state", store_state_name(t->tx_state), "status",
			 t->tx_status, "mode", mode_name(t->tx_mode), "profile", t->tx_profile,
			 "created", json_iso(t->tx_created_ms), "updated",
			 json_iso(t->tx_updated_ms));
}

/* o[key] = v (stolen); 500 when v is NULL (a failed allocation). */
static int
set_or_fail(json_t *o, const char *key, json_t *v, struct reg_err *e)
{
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		return oom(e);
	return 0;
}

static int
op_user_get(struct reg *r, struct store *st, const struct reg_request *rq, json_t **out,
	    struct reg_err *e)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_user u;
	struct store_device devs[MSSP_STORE_MAX_USER_DEVICES];
	struct store_key *keys = NULL;
	struct store_tx *txs = NULL;
	struct store_err se = {0};
	size_t n = 0;
	json_t *o = NULL, *arr, *jobs = NULL;
	int rc = -1;

	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	if ((o = user_json(&u)) == NULL)
		return oom(e);
	/* devices */
	memset(devs, 0, sizeof devs);
	if (store_user_devices(st, msisdn, devs, MSSP_STORE_MAX_USER_DEVICES, &n, &se) != 0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, device_json(&devs[i]));
	OPENSSL_cleanse(devs, sizeof devs);
	if (set_or_fail(o, "devices", arr, e) != 0)
		goto out;
	/* keys */
	if ((keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys)) == NULL) {
		oom(e);
		goto out;
	}
	if (store_user_keys(st, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &n, &se) != 0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, key_json(&keys[i]));
	if (set_or_fail(o, "keys", arr, e) != 0)
		goto out;
	/* jobs (reg_enrol.c) */
	if (reg_user_jobs(r, st, msisdn, &jobs, e) != 0)
		goto out;
	if (set_or_fail(o, "jobs", jobs, e) != 0)
		goto out;
	/* recent transactions */
	if ((txs = calloc(MSSP_REG_RECENT_TX, sizeof *txs)) == NULL) {
		oom(e);
		goto out;
	}
	if (store_tx_list_user(st, msisdn, txs, MSSP_REG_RECENT_TX, &n, &se) != 0) {
		reg_from_store(e, &se, false);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, tx_json(&txs[i]));
	for (size_t i = 0; i < n; i++)
		store_tx_clear(&txs[i]);
	if (set_or_fail(o, "transactions", arr, e) != 0)
		goto out;
	*out = o;
	o = NULL;
	rc = 0;
out:
	free(keys);
	free(txs);
	json_decref(o);
	return rc;
}

static int
op_user_list(struct store *st, const struct reg_request *rq, json_t **out, struct reg_err *e)
{
	struct store_user_query q = {0};
	char prefix[MSSP_STORE_MAX_MSISDN + 1], after[MSSP_STORE_MAX_MSISDN + 1];
	const char *s;
	struct store_user *us;
	struct store_err se = {0};
	size_t limit, n = 0;
	json_t *arr, *o;

	if (query_limit(rq, &limit, e) != 0)
		return -1;
	if ((s = query_str(rq, "q")) != NULL && *s) {
		if (*s == '+' || (*s >= '0' && *s <= '9')) {
			size_t k = *s == '+' ? 1 : 0, len = strlen(s);
			if (len - k > 15 || len == k)
				return reg_err_set(e, REG_E_BAD, "q: an MSISDN prefix or a name");
			for (size_t i = k; i < len; i++)
				if (s[i] < '0' || s[i] > '9')
					return reg_err_set(e, REG_E_BAD,
							   "q: an MSISDN prefix is digits");
			snprintf(prefix, sizeof(prefix), "+%s", s + k);
			q.uq_msisdn_prefix = prefix;
		} else {
			if (!text_ok(s, MSSP_REG_MAX_TEXT_QUERY, false))
				return reg_err_set(e, REG_E_BAD, "q: text of at most %d bytes",
						   MSSP_REG_MAX_TEXT_QUERY);
			q.uq_text = s;
		}
	}
	if ((s = query_str(rq, "state")) != NULL && *s) {
		if (strcmp(s, "active") == 0)
			q.uq_state = STORE_USER_ACTIVE;
		else if (strcmp(s, "suspended") == 0)
			q.uq_state = STORE_USER_SUSPENDED;
		else
			return reg_err_set(e, REG_E_BAD, "state: active or suspended");
	}
	if ((s = query_str(rq, "after")) != NULL && *s) {
		if (reg_msisdn_norm(s, after, e) != 0)
			return -1;
		q.uq_after = after;
	}
	if ((us = calloc(limit, sizeof *us)) == NULL)
		return oom(e);
	if (store_user_list(st, &q, us, limit, &n, &se) != 0) {
		free(us);
		return reg_from_store(e, &se, false);
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, user_json(&us[i]));
	o = json_pack("{s:o, s:s?}", "users", arr, "next",
		      n == limit && n > 0 ? us[n - 1].su_msisdn : NULL);
	free(us);
	*out = o;
	return o ? 0 : oom(e);
}

/* ======================================================================
 * Certificates (the CA is not thread-safe: every call under r_ca_lock)
 * ====================================================================== */

static int
from_pki(struct reg_err *e, const struct pki_err *pe)
{
	switch (pe->status) {
	case 101:
		return reg_err_set(e, REG_E_BAD, "refused by the CA");
	case 422:
		return reg_err_set(e, REG_E_NOTFOUND, "certificate not issued by this CA");
	case 407:
		return reg_err_set(e, REG_E_KEY, "key refused by the CA");
	default:
		LOG_EV("reg.ca_error", "detail", pe->detail);
		return reg_err_set(e, REG_E_INTERNAL, "CA unavailable");
	}
}

/* Revoke `serial` (caller holds r_ca_lock).  0 revoked now, 1 it was
 * revoked already (*prev = the reason recorded then; may be NULL), -1
 * with e. */
static int
ca_revoke_locked(struct reg *r, const char *serial, int reason, int64_t now_ms, int *prev,
		 struct reg_err *e)
{
	struct pki_ca_entry ce;
	struct pki_err pe = {0};

	if (pki_ca_reload(r->r_ca, &pe) != 0 || pki_ca_lookup(r->r_ca, serial, &ce, &pe) != 0)
		return from_pki(e, &pe);
	if (ce.ce_revoked) {
		if (prev)
			*prev = ce.ce_reason;
		return 1;
	}
	if (pki_ca_revoke(r->r_ca, serial, reason, (time_t)(now_ms / 1000), &pe) != 0)
		return from_pki(e, &pe);
	return 0;
}

/* Re-issue the CRL (caller holds r_ca_lock).  A failure is logged: the
 * revocation itself is durable and the next CRL carries it. */
static bool
ca_crl_locked(struct reg *r, int64_t now_ms)
{
	struct pki_err pe = {0};

	if (pki_ca_crl(r->r_ca, (time_t)(now_ms / 1000), NULL, &pe) != 0) {
		LOG_EV("reg.crl_failed", "detail", pe.detail);
		return false;
	}
	return true;
}

/* Does this CA know `serial`?  0 with *known, or -1 with e. */
static int
ca_knows(struct reg *r, const char *serial, bool *known, struct reg_err *e)
{
	struct pki_ca_entry ce;
	struct pki_err pe = {0};
	int rc = 0;

	*known = false;
	pthread_mutex_lock(&r->r_ca_lock);
	if (pki_ca_reload(r->r_ca, &pe) != 0)
		rc = from_pki(e, &pe);
	else if (pki_ca_lookup(r->r_ca, serial, &ce, &pe) == 0)
		*known = true;
	else if (pe.status != 422)
		rc = from_pki(e, &pe);
	pthread_mutex_unlock(&r->r_ca_lock);
	return rc;
}

/* The optional {"reason": RFC 5280 name} of a revoking request, `dflt`
 * when absent.  caCompromise is for CA certificates (refused);
 * certificateHold is not offered (pki_ca_reason_parse). */
static int
reason_from_body(const json_t *body, int dflt, int *reason, struct reg_err *e)
{
	static const char *const members[] = {"reason", NULL};
	const char *rname = NULL;

	*reason = dflt;
	if (body == NULL)
		return 0;
	if (obj_check(body, members, e) != 0 || get_str(body, "reason", &rname, e) != 0)
		return -1;
	if (rname == NULL)
		return 0;
	if (pki_ca_reason_parse(rname, reason) != 0 || *reason == PKI_CA_REASON_CA_COMPROMISE)
		return reg_err_set(e, REG_E_BAD, "reason: an RFC 5280 reason name");
	return 0;
}

/* Revoke the certificates of keys[0..n) selected by `pick` (a certificate,
 * not REVOKED in the store) with `reason`, each key set REVOKED in the
 * store right after its revocation at the CA (also when the CA had it
 * revoked already: the store catches up), then one CRL.  A certificate
 * this CA did not issue (404) is left alone.  *revoked counts the
 * revocations done now.  The caller checked r_ca.  0, or -1 with e (a CA
 * failure stops the loop; a key the store refused to mark is reported
 * after the others were done). */
static int
revoke_keys(struct reg *r, struct store *st, struct store_key *keys, size_t n,
	    const bool *pick, int reason, int64_t now_ms, size_t *revoked, bool *crl,
	    struct reg_err *e)
{
	struct store_err se = {0};
	bool unmarked = false;
	int rc = 0;

	*revoked = 0;
	*crl = true;
	pthread_mutex_lock(&r->r_ca_lock);
	for (size_t i = 0; i < n; i++) {
		int v;

		if (!pick[i])
			continue;
		v = ca_revoke_locked(r, keys[i].sk_cert_serial, reason, now_ms, NULL, e);
		if (v < 0) {
			if (e->status == 404)
				continue; /* another CA's: not ours to revoke */
			rc = -1;
			break;
		}
		if (v == 0)
			(*revoked)++;
		if (store_key_set_state(st, keys[i].sk_key_id, STORE_KEY_REVOKED, now_ms, &se) != 0) {
			LOG_EV("reg.key_unmarked", "key", keys[i].sk_key_id, "detail", se.detail);
			unmarked = true;
		} else {
			keys[i].sk_state = STORE_KEY_REVOKED;
			if (v == 0 && reason == PKI_CA_REASON_KEY_COMPROMISE)
				reg_enrol_key_compromised(r, st, &keys[i], now_ms);
		}
	}
	if (*revoked)
		*crl = ca_crl_locked(r, now_ms);
	pthread_mutex_unlock(&r->r_ca_lock);
	if (rc == 0 && unmarked)
		rc = reg_err_set(e, REG_E_INTERNAL,
				 "certificates revoked, but not every key marked revoked");
	return rc;
}

/* ---- the certificate-serial index -------------------------------------- */

int
reg_index_cert_serial(struct store *st, const char *serial, const char *key_id, int64_t now_ms,
		      struct reg_err *e)
{
	char canon[MSSP_STORE_MAX_SERIAL + 1];
	json_t *b;
	int rc;

	if (serial_canon(serial, canon) != 0 || !store_id_ok(key_id, MSSP_STORE_MAX_KEY_ID))
		return reg_err_set(e, REG_E_BAD, "certificate serial index: bad arguments");
	if ((b = json_pack("{s:s}", "key_id", key_id)) == NULL)
		return oom(e);
	/* ANY: a re-run of the same issuance writes the same mapping. */
	rc = rec_store(st, K_CERTSERIAL, canon, NULL, 1, 0, b, STORE_REC_ANY, now_ms, NULL, e);
	json_decref(b);
	return rc;
}

struct serial_find {
	const char *sf_serial; /* canonical */
	struct store_key *sf_key;
	bool sf_found;
};

static int
serial_find_cb(void *arg, const struct store_key *k)
{
	struct serial_find *f = arg;
	char c[MSSP_STORE_MAX_SERIAL + 1];

	if (k->sk_cert_serial[0] && serial_canon(k->sk_cert_serial, c) == 0 &&
	    strcmp(c, f->sf_serial) == 0) {
		*f->sf_key = *k;
		f->sf_found = true;
		return 1;
	}
	return 0;
}

/* The key whose current certificate has the (canonical) `serial`: the
 * "certserial" index record written at issuance, one read; a key issued
 * before the index existed has none, and only then are the keys scanned.
 * An index record naming a key that is gone or holds another certificate
 * now means no key has it.  0 with *found, or -1 with e. */
static int
cert_key_find(struct store *st, const char *serial, struct store_key *k, bool *found,
	      struct reg_err *e)
{
	struct serial_find f = {serial, k, false};
	struct store_rec rec = {0};
	struct store_err se = {0};
	json_t *body = NULL;

	*found = false;
	if (rec_load(st, K_CERTSERIAL, serial, REG_E_NOTFOUND, &rec, &body, e) == 0) {
		const char *kid = json_string_value(json_object_get(body, "key_id"));
		char c[MSSP_STORE_MAX_SERIAL + 1];
		int rc = 0;

		if (kid && store_id_ok(kid, MSSP_STORE_MAX_KEY_ID)) {
			if (store_key_get(st, kid, k, &se) == 0)
				*found = k->sk_cert_serial[0] &&
					 serial_canon(k->sk_cert_serial, c) == 0 &&
					 strcmp(c, serial) == 0;
			else if (se.status != 101)
				rc = reg_from_store(e, &se, false);
		}
		json_decref(body);
		store_rec_clear(&rec);
		return rc;
	}
	if (e->status != 404)
		return -1;
	if (store_key_scan(st, serial_find_cb, &f, &se) != 0)
		return reg_from_store(e, &se, false);
	*found = f.sf_found;
	return 0;
}

/* cert.revoke.  The CRL is re-issued whenever the CA revocation succeeded
 * (whatever the store does next); a retry after the CA revoked but the
 * store did not follow (the CA answers "already revoked") marks the key
 * REVOKED and answers 200 with "already_revoked": true, audited as the
 * inconsistency it repaired.  Already revoked on both sides: 409. */
static int
op_cert_revoke(struct reg *r, struct store *st, const struct reg_request *rq, int64_t now_ms,
	       json_t **out, struct reg_err *e, struct call *c)
{
	char serial[MSSP_STORE_MAX_SERIAL + 1];
	struct store_key *k = calloc(1, sizeof *k);
	struct store_err se = {0};
	int reason, prev = -1, rc;
	bool crl = false, found = false, known, repair;

	if (k == NULL)
		return oom(e);
	rc = -1;
	if (serial_canon(rq->rq_arg, serial) != 0) {
		reg_err_set(e, REG_E_BAD, "serial: hex digits");
		goto out;
	}
	call_target(c, serial);
	if (reason_from_body(rq->rq_body, PKI_CA_REASON_UNSPECIFIED, &reason, e) != 0)
		goto out;
	call_detail(c, "reason %s", pki_ca_reason_name(reason));
	if (r->r_ca == NULL) {
		reg_err_set(e, REG_E_UNAVAIL, "the CA is not available in this process");
		goto out;
	}
	/* A serial this CA never issued costs no key lookup. */
	if (ca_knows(r, serial, &known, e) != 0)
		goto out;
	if (!known) {
		reg_err_set(e, REG_E_NOTFOUND, "certificate not issued by this CA");
		goto out;
	}
	if (cert_key_find(st, serial, k, &found, e) != 0)
		goto out;
	repair = found && k->sk_state != STORE_KEY_REVOKED;
	pthread_mutex_lock(&r->r_ca_lock);
	rc = ca_revoke_locked(r, serial, reason, now_ms, &prev, e);
	if (rc == 0 || (rc == 1 && repair))
		crl = ca_crl_locked(r, now_ms);
	pthread_mutex_unlock(&r->r_ca_lock);
	if (rc < 0)
		goto out;
	if (found)
		call_detail(c, "key %s of %s", k->sk_key_id, k->sk_msisdn);
	if (rc == 1 && !repair) {
		rc = reg_err_set(e, REG_E_CONFLICT, "certificate already revoked");
		goto out;
	}
	if (rc == 1)
		call_detail(c, "inconsistency repaired: revoked at the CA (%s), key was %s",
			    pki_ca_reason_name(prev), key_state_name(k->sk_state));
	if (!crl)
		call_detail(c, "CRL not re-issued");
	/* The key follows the CA at once (a retry finds rc == 1, repair). */
	if (found && store_key_set_state(st, k->sk_key_id, STORE_KEY_REVOKED, now_ms, &se) != 0) {
		call_detail(c, "key not marked revoked");
		rc = reg_from_store(e, &se, false);
		goto out;
	}
	/* K-06: a compromised key is refused for good (reg_enrol.c). */
	if (found && (rc == 1 ? prev : reason) == PKI_CA_REASON_KEY_COMPROMISE)
		reg_enrol_key_compromised(r, st, k, now_ms);
	*out = json_pack("{s:s, s:s, s:s, s:s?, s:b, s:b}", "serial", serial, "state", "revoked",
			 "reason", pki_ca_reason_name(rc == 1 ? prev : reason), "key_id",
			 found ? k->sk_key_id : NULL, "crl", (int)crl, "already_revoked",
			 (int)(rc == 1));
	rc = *out ? 0 : oom(e);
out:
	free(k);
	return rc;
}

static int
op_cert_list(struct store *st, const struct reg_request *rq, json_t **out, struct reg_err *e)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1], subj[MSSP_CA_MAX_SUBJECT + 1];
	struct store_key *keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys);
	struct store_err se = {0};
	size_t n = 0;
	json_t *arr;

	if (keys == NULL)
		return oom(e);
	if (reg_msisdn_norm(query_str(rq, "msisdn"), msisdn, e) != 0) {
		free(keys);
		return -1;
	}
	if (store_user_keys(st, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &n, &se) != 0) {
		free(keys);
		return reg_from_store(e, &se, true);
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		int64_t nb, na;
		if (keys[i].sk_cert_len == 0)
			continue;
		cert_info(keys[i].sk_cert, keys[i].sk_cert_len, &nb, &na, subj, sizeof subj);
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s}", "serial",
				       keys[i].sk_cert_serial, "subject", subj, "not_before",
				       nb ? json_iso(nb) : json_null(), "not_after",
				       na ? json_iso(na) : json_null(), "state",
				       key_state_name(keys[i].sk_state), "key_id",
				       keys[i].sk_key_id, "group", keys[i].sk_group, "purpose",
				       keys[i].sk_purpose == STORE_KEY_SIGN ? "sign" : "authn"));
	}
	free(keys);
	*out = json_pack("{s:s, s:o}", "msisdn", msisdn, "certificates", arr);
	return *out ? 0 : oom(e);
}

/* ======================================================================
 * Publication for relying parties: OCSP and the CRL (roles/pkipub)
 * ====================================================================== */

int
reg_pki_ocsp(struct reg *r, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
	     struct reg_err *e)
{
	struct pki_err pe = {0};
	int rc;

	*resp = NULL;
	*resp_len = 0;
	if (r->r_ca == NULL)
		return reg_err_set(e, REG_E_UNAVAIL, "the CA is not available in this process");
	/* pki_ca_ocsp_respond re-reads the database itself (after the checks
	 * of the request, before any status; fail closed): a revocation by
	 * another process on the same directory is answered at once */
	pthread_mutex_lock(&r->r_ca_lock);
	rc = pki_ca_ocsp_respond(r->r_ca, req, len, 0, resp, resp_len, &pe);
	pthread_mutex_unlock(&r->r_ca_lock);
	if (rc == 0)
		return 0;
	if (pe.status != 101 && pe.status != 422)
		LOG_EV("reg.ocsp_error", "detail", pe.detail);
	if (*resp == NULL)
		return reg_err_set(e, REG_E_INTERNAL, "OCSP responder unavailable");
	if (pe.status == 101)
		reg_err_set(e, REG_E_BAD, "malformed OCSP request");
	else if (pe.status == 422)
		reg_err_set(e, REG_E_NOTFOUND, "no certificate of this CA in the OCSP request");
	else
		reg_err_set(e, REG_E_INTERNAL, "OCSP responder error");
	return REG_OCSP_ERROR;
}

/* DIR/ca/crl.pem parsed, and its stat; NULL when it is missing,
 * unreadable, larger than a CRL we would serve, or not one PEM CRL: each
 * a reason to issue a new one. */
static X509_CRL *
crl_load(const char *path, struct stat *st)
{
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	char *buf = NULL;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	/* PEM is base64 with line breaks: at most 4/3 of the DER and a bit */
	if (fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size <= 0 ||
	    st->st_size > 2 * (off_t)MSSP_PKIPUB_MAX_CRL ||
	    (buf = malloc((size_t)st->st_size)) == NULL)
		goto out;
	for (size_t got = 0; got < (size_t)st->st_size; got += (size_t)n) {
		n = read(fd, buf + got, (size_t)st->st_size - got);
		if (n <= 0)
			goto out;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)st->st_size)) != NULL)
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
out:
	if (fd >= 0)
		close(fd);
	BIO_free(bio);
	free(buf);
	ERR_clear_error();
	return crl;
}

static int
asn1_time_t(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* May `crl` still be served at `now`?  Yes while more than a quarter of
 * its validity is left: a relying party that caches it until nextUpdate
 * must not get one that expires at once. */
static bool
crl_fresh(const X509_CRL *crl, time_t now)
{
	time_t last, next;

	if (crl == NULL || asn1_time_t(X509_CRL_get0_lastUpdate(crl), &last) != 0 ||
	    asn1_time_t(X509_CRL_get0_nextUpdate(crl), &next) != 0 || next <= last)
		return false;
	return now < next - (next - last) / 4;
}

static bool
stat_same(const struct stat *a, const struct stat *b, bool size)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       (!size || a->st_size == b->st_size);
}

/* Does `crl` (the file `cst`) list every revocation of the CA database?
 * Issuance appends to ca.db as well, so the database is counted only when
 * ca.db or crl.pem changed since the last look.  Under r_ca_lock.  0 with
 * *covers, or -1 with e. */
static int
crl_covers_locked(struct reg *r, const X509_CRL *crl, const struct stat *cst, bool *covers,
		  struct reg_err *e)
{
	struct pki_err pe = {0};
	struct pki_ca_entry ce;
	struct stat dst;
	char path[4200];
	size_t nrev = 0;

	snprintf(path, sizeof path, "%s/ca/ca.db", r->r_data_dir);
	if (stat(path, &dst) != 0) {
		LOG_EV("reg.crl_check_failed", "detail", "ca/ca.db: cannot stat");
		return reg_err_set(e, REG_E_INTERNAL, "CA unavailable");
	}
	if (r->r_crl_seen && stat_same(&dst, &r->r_crl_db, true) &&
	    stat_same(cst, &r->r_crl_file, false)) {
		*covers = true;
		return 0;
	}
	if (pki_ca_reload(r->r_ca, &pe) != 0)
		return from_pki(e, &pe);
	for (size_t i = 0; i < pki_ca_count(r->r_ca); i++)
		if (pki_ca_entry_at(r->r_ca, i, &ce) == 0 && ce.ce_revoked)
			nrev++;
	const STACK_OF(X509_REVOKED) *rv = X509_CRL_get_REVOKED((X509_CRL *)crl);
	*covers = nrev == (size_t)(rv ? sk_X509_REVOKED_num(rv) : 0);
	/* the reload read ca.db as it is now, or newer: stat'd before it */
	r->r_crl_seen = *covers;
	r->r_crl_db = dst;
	r->r_crl_file = *cst;
	return 0;
}

int
reg_pki_crl(struct reg *r, uint8_t **der, size_t *len, struct reg_err *e)
{
	struct pki_err pe = {0};
	struct stat cst = {0};
	char path[4200];
	bool covers = false;
	int n, rc = 0;

	*der = NULL;
	*len = 0;
	snprintf(path, sizeof path, "%s/ca/crl.pem", r->r_data_dir);
	X509_CRL *crl = crl_load(path, &cst);
	if (r->r_ca == NULL) {
		if (!crl_fresh(crl, time(NULL))) {
			X509_CRL_free(crl);
			return reg_err_set(e, REG_E_UNAVAIL, "the CA is not available in this process");
		}
	} else {
		pthread_mutex_lock(&r->r_ca_lock);
		if (!crl_fresh(crl, time(NULL))) {
			/* another thread may have issued one meanwhile */
			X509_CRL_free(crl);
			crl = crl_load(path, &cst);
		}
		if (crl_fresh(crl, time(NULL)))
			rc = crl_covers_locked(r, crl, &cst, &covers, e);
		if (rc == 0 && !covers) {
			X509_CRL_free(crl);
			crl = NULL;
			if (pki_ca_crl(r->r_ca, 0, &crl, &pe) != 0)
				rc = from_pki(e, &pe);
			else
				LOG_EV("reg.crl_issued", "detail", "for publication");
		}
		pthread_mutex_unlock(&r->r_ca_lock);
		if (rc != 0) {
			X509_CRL_free(crl);
			return -1;
		}
	}
	unsigned char *out = NULL;
	n = i2d_X509_CRL(crl, &out);
	X509_CRL_free(crl);
	if (n <= 0)
		return reg_err_set(e, REG_E_INTERNAL, "cannot encode the CRL");
	*der = out;
	*len = (size_t)n;
	return 0;
}

/* ======================================================================
 * User deletion, activation codes, device removal
 * ====================================================================== */

static int
op_user_delete(struct reg *r, struct store *st, const struct reg_request *rq, int64_t now_ms,
	       json_t **out, struct reg_err *e, struct call *c)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_user u;
	struct store_key *keys = NULL;
	struct store_tx *txs = NULL;
	struct store_err se = {0};
	size_t n = 0, nk = 0, revoked = 0;
	bool need_ca = false, crl = true, *pick = NULL;
	int rc = -1, v;

	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	call_target(c, msisdn);
	/* An outstanding transaction first (the store refuses the delete too,
	 * but only after the certificates would be revoked). */
	if ((txs = calloc(MSSP_STORE_MAX_LIST, sizeof *txs)) == NULL)
		return oom(e);
	if (store_tx_list_user(st, msisdn, txs, MSSP_STORE_MAX_LIST, &n, &se) != 0) {
		reg_from_store(e, &se, false);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!store_state_final(txs[i].tx_state))
			rc = -2;
		store_tx_clear(&txs[i]);
	}
	if (rc == -2) {
		rc = reg_err_set(e, REG_E_CONFLICT, "the user has an outstanding transaction");
		goto out;
	}
	/* Suspended first: no key job is issued for a suspended user
	 * (reg_enrol), so the keys listed below are all the user will have
	 * certified (an issuance already past that check is the one window
	 * left: its key is refused a second certificate by its tombstone, and
	 * the CA database lists it for the RA).  A delete that then fails
	 * leaves the user suspended: fail closed. */
	if (store_user_set_state(st, msisdn, STORE_USER_SUSPENDED, STORE_USER_ANY, now_ms, &se) !=
	    0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	if ((keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys)) == NULL) {
		oom(e);
		goto out;
	}
	if (store_user_keys(st, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &nk, &se) != 0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	if ((pick = calloc(nk ? nk : 1, sizeof *pick)) == NULL) {
		oom(e);
		goto out;
	}
	for (size_t i = 0; i < nk; i++)
		if (keys[i].sk_cert_serial[0] && keys[i].sk_state != STORE_KEY_REVOKED)
			pick[i] = need_ca = true;
	if (need_ca && r->r_ca == NULL) {
		reg_err_set(e, REG_E_UNAVAIL, "the CA is not available in this process");
		goto out;
	}
	/* Each key is REVOKED in the store right after its certificate is
	 * revoked: if the delete is then refused (a transaction started
	 * meanwhile: 409), the user stays with consistent keys, and the audit
	 * record says how many certificates went. */
	if (need_ca) {
		v = revoke_keys(r, st, keys, nk, pick, PKI_CA_REASON_CESSATION_OF_OPERATION, now_ms,
				&revoked, &crl, e);
		call_detail(c, "%zu certificate(s) revoked", revoked);
		if (!crl)
			call_detail(c, "CRL not re-issued");
		if (v != 0)
			goto out;
	} else {
		call_detail(c, "0 certificate(s) revoked");
	}
	if (store_user_delete(st, msisdn, now_ms, &se) != 0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:i}", "msisdn", msisdn, "state", "deleted",
			 "certificates_revoked", (int)revoked);
	rc = *out ? 0 : oom(e);
out:
	free(pick);
	free(txs);
	free(keys);
	return rc < 0 ? -1 : rc;
}

/* 12 decimal digits, uniform: bytes >= 250 are drawn again (no modulo
 * bias). */
static int
activation_digits(char d[MSSP_REG_ACTIVATION_DIGITS + 1])
{
	unsigned char b[32];
	size_t k = 0;

	while (k < MSSP_REG_ACTIVATION_DIGITS) {
		if (RAND_bytes(b, sizeof b) != 1)
			return -1;
		for (size_t i = 0; i < sizeof b && k < MSSP_REG_ACTIVATION_DIGITS; i++)
			if (b[i] < 250)
				d[k++] = (char)('0' + b[i] % 10);
	}
	d[k] = '\0';
	OPENSSL_cleanse(b, sizeof b);
	return 0;
}

static int
op_activation_create(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
		     int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1], digits[MSSP_REG_ACTIVATION_DIGITS + 1];
	char shown[MSSP_REG_ACTIVATION_DIGITS + MSSP_REG_ACTIVATION_DIGITS / 4 + 1], hex[FP_HEX + 1];
	unsigned char h[32];
	struct store_user u;
	int64_t exp = now_ms + (int64_t)MSSP_REG_ACTIVATION_TTL_S * 1000;
	json_t *body;
	int rc;

	if (rq->rq_body && !(json_is_object(rq->rq_body) && json_object_size(rq->rq_body) == 0))
		return reg_err_set(e, REG_E_BAD, "no body expected");
	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	call_target(c, msisdn);
	if (u.su_state != STORE_USER_ACTIVE)
		return reg_err_set(e, REG_E_CONFLICT, "the mobile user is suspended");
	if (activation_digits(digits) != 0)
		return reg_err_set(e, REG_E_INTERNAL, "random source failed");
	if (e2e_activation_code_hash(digits, h) != 0) {
		OPENSSL_cleanse(digits, sizeof digits);
		return reg_err_set(e, REG_E_INTERNAL, "activation code hash failed");
	}
	hex_encode(h, 32, hex);
	OPENSSL_cleanse(h, sizeof h);
	/* Only the hash is kept; a new code replaces any earlier one (used,
	 * open or locked): the last code the RA gave is the one that works. */
	body = json_pack("{s:s, s:i, s:s, s:o, s:o}", "code_sha256", hex, "tries", 0,
			 "created_by", actor_name(who), "created", json_iso(now_ms), "expires",
			 json_iso(exp));
	if (body == NULL) {
		OPENSSL_cleanse(digits, sizeof digits);
		return oom(e);
	}
	rc = rec_store(st, K_ACTIVATION, msisdn, msisdn, ACT_ST_OPEN, exp, body, STORE_REC_ANY,
		       now_ms, NULL, e);
	json_decref(body);
	if (rc != 0) {
		OPENSSL_cleanse(digits, sizeof digits);
		return -1;
	}
	snprintf(shown, sizeof shown, "%.4s-%.4s-%.4s", digits, digits + 4, digits + 8);
	OPENSSL_cleanse(digits, sizeof digits);
	*out = json_pack("{s:s, s:o}", "code", shown, "expires", json_iso(exp));
	OPENSSL_cleanse(shown, sizeof shown);
	call_detail(c, "expires in %d s", MSSP_REG_ACTIVATION_TTL_S);
	return *out ? REG_CREATED : oom(e);
}

/* device.delete: the device's certificates are revoked first (a lost or
 * stolen phone: reason from the optional body, cessationOfOperation by
 * default), each key REVOKED at once, one CRL; then the device goes (its
 * remaining ACTIVE keys - none with a certificate of this CA - become
 * DISABLED).  Without the CA in this process: 503 while the device has a
 * certificate not yet revoked. */
/* The device's state to DISABLED (the AFE refuses it, no job reaches or
 * is issued for it).  Unknown: 404. */
static int
device_disable(struct store *st, const char *device_id, int64_t now_ms, struct reg_err *e)
{
	struct store_device *d = calloc(1, sizeof *d);
	struct store_err se = {0};
	int rc = 0;
	if (!d)
		return oom(e);
	if (store_device_get(st, device_id, d, &se) != 0)
		rc = reg_from_store(e, &se, true);
	else if (d->sd_state != STORE_DEVICE_DISABLED) {
		d->sd_state = STORE_DEVICE_DISABLED;
		if (store_device_put(st, d, now_ms, &se) != 0)
			rc = reg_from_store(e, &se, true);
	}
	OPENSSL_cleanse(d, sizeof *d);
	free(d);
	return rc;
}

static int
op_device_delete(struct reg *r, struct store *st, const struct reg_request *rq, int64_t now_ms,
		 json_t **out, struct reg_err *e, struct call *c)
{
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	struct store_user u;
	struct store_device *d;
	struct store_key *keys = NULL;
	struct store_err se = {0};
	size_t nk = 0, revoked = 0;
	bool mine, need_ca = false, crl = true, *pick = NULL;
	int reason, rc = -1;

	if (user_load(st, rq->rq_arg, msisdn, &u, e) != 0)
		return -1;
	call_target(c, msisdn);
	if (!store_id_ok(rq->rq_arg2, MSSP_KEYSTORE_MAX_ID))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown device");
	call_detail(c, "device %s", rq->rq_arg2);
	if (reason_from_body(rq->rq_body, PKI_CA_REASON_CESSATION_OF_OPERATION, &reason, e) != 0)
		return -1;
	if ((d = calloc(1, sizeof *d)) == NULL)
		return oom(e);
	if (store_device_get(st, rq->rq_arg2, d, &se) != 0) {
		free(d);
		return reg_from_store(e, &se, true);
	}
	mine = strcmp(d->sd_msisdn, msisdn) == 0;
	OPENSSL_cleanse(d, sizeof *d);
	free(d);
	/* Another user's device reads as unknown. */
	if (!mine)
		return reg_err_set(e, REG_E_NOTFOUND, "unknown device");
	/* Disabled first: from now on no key job for this device is
	 * delivered or issued (reg_enrol's job_device_ok), so the keys
	 * listed below are all the device will ever have certified, but for
	 * an issuance already past that check: the sweep after the delete
	 * revokes it too. */
	if (device_disable(st, rq->rq_arg2, now_ms, e) != 0)
		goto out;
	if ((keys = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *keys)) == NULL ||
	    (pick = calloc(MSSP_STORE_MAX_USER_KEYS, sizeof *pick)) == NULL) {
		oom(e);
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && store_device_delete(st, rq->rq_arg2, now_ms, &se) != 0) {
			reg_from_store(e, &se, true);
			goto out;
		}
		need_ca = false;
		memset(pick, 0, MSSP_STORE_MAX_USER_KEYS * sizeof *pick);
		if (store_user_keys(st, msisdn, keys, MSSP_STORE_MAX_USER_KEYS, &nk, &se) != 0) {
			reg_from_store(e, &se, true);
			goto out;
		}
		for (size_t i = 0; i < nk; i++)
			if (strcmp(keys[i].sk_device_id, rq->rq_arg2) == 0 &&
			    keys[i].sk_cert_serial[0] && keys[i].sk_state != STORE_KEY_REVOKED)
				pick[i] = need_ca = true;
		if (!need_ca)
			continue;
		if (r->r_ca == NULL) {
			reg_err_set(e, REG_E_UNAVAIL, "the CA is not available in this process");
			goto out;
		}
		size_t nrev = 0;
		call_detail(c, "reason %s", pki_ca_reason_name(reason));
		rc = revoke_keys(r, st, keys, nk, pick, reason, now_ms, &nrev, &crl, e);
		revoked += nrev;
		call_detail(c, "%zu certificate(s) revoked", nrev);
		if (!crl)
			call_detail(c, "CRL not re-issued");
		if (rc != 0)
			goto out;
		rc = -1;
	}
	*out = json_pack("{s:s, s:s, s:s, s:i}", "msisdn", msisdn, "device_id", rq->rq_arg2,
			 "state", "deleted", "certificates_revoked", (int)revoked);
	rc = *out ? 0 : oom(e);
out:
	free(keys);
	free(pick);
	return rc;
}

/* ======================================================================
 * Fingerprints: accounts and APs never share a certificate
 * ====================================================================== */

static bool account_name_ok(const char *s);

struct acct_found {
	bool af_found;
	char af_name[MSSP_REG_MAX_ACCOUNT_NAME + 1];
	enum reg_role af_role;
	int af_state;
};

static void
acct_fill(struct acct_found *f, const struct store_rec *rec, json_t *body)
{
	const char *n = json_string_value(json_object_get(body, "name"));
	const char *ro = json_string_value(json_object_get(body, "role"));

	f->af_found = true;
	snprintf(f->af_name, sizeof f->af_name, "%.64s", n ? n : rec->sr_name);
	if (reg_role_parse(ro, &f->af_role) != 0)
		f->af_role = REG_ROLE_NONE;
	f->af_state = rec->sr_state;
}

struct acct_scan {
	const char *as_hex;
	struct acct_found *as_f;
};

static int
acct_scan_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct acct_scan *a = arg;
	const char *h = json_string_value(json_object_get(body, "cert_sha256"));

	(void)e;
	if (h && strcmp(h, a->as_hex) == 0) {
		acct_fill(a->as_f, rec, body);
		return 1;
	}
	return 0;
}

/* The account whose certificate is `hex` (lower-case).  The "accountfp"
 * index record is a hint checked against the account itself; when it is
 * missing or stale (a crash between the two writes), the accounts are
 * scanned.  0 (f->af_found says), or -1 with e. */
static int
account_find_fp(struct store *st, const char *hex, struct acct_found *f, struct reg_err *e)
{
	struct store_rec rec = {0};
	json_t *body = NULL;
	struct acct_scan a = {hex, f};

	memset(f, 0, sizeof *f);
	if (rec_load(st, K_ACCOUNTFP, hex, REG_E_NOTFOUND, &rec, &body, e) == 0) {
		const char *name = json_string_value(json_object_get(body, "name"));
		struct store_rec arec = {0};
		json_t *abody = NULL;

		if (name && account_name_ok(name)) {
			if (rec_load(st, K_ACCOUNT, name, REG_E_NOTFOUND, &arec, &abody, e) == 0) {
				const char *h =
					json_string_value(json_object_get(abody, "cert_sha256"));
				if (h && strcmp(h, hex) == 0)
					acct_fill(f, &arec, abody);
				json_decref(abody);
				store_rec_clear(&arec);
			} else if (e->status != 404) {
				json_decref(body);
				store_rec_clear(&rec);
				return -1;
			}
		}
		json_decref(body);
		store_rec_clear(&rec);
		if (f->af_found)
			return 0;
	} else if (e->status != 404) {
		return -1;
	}
	return rec_each(st, K_ACCOUNT, NULL, -1, NULL, MSSP_REG_MAX_ACCOUNTS, acct_scan_cb, &a, e);
}

struct apfp_scan {
	const char *ps_hex;
	const char *ps_skip; /* this AP's own id, or NULL */
	bool ps_found;
};

static int
apfp_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct apfp_scan *a = arg;
	json_t *fps = json_object_get(body, "cert_sha256"), *v;
	size_t i;

	(void)e;
	if (a->ps_skip && strcmp(rec->sr_name, a->ps_skip) == 0)
		return 0;
	json_array_foreach(fps, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), a->ps_hex) == 0) {
			a->ps_found = true;
			return 1;
		}
	}
	return 0;
}

/* Is `hex` one of the fingerprints of an AP (other than `skip`)?  By
 * reading every AP: only the fallback when the index cannot be made
 * (apfp_ready failed, e.g. a read-only store). */
static int
ap_scan_fp(struct store *st, const char *hex, const char *skip, bool *found, struct reg_err *e)
{
	struct apfp_scan a = {hex, skip, false};

	if (rec_each(st, K_AP, NULL, -1, NULL, MSSP_REG_MAX_APS, apfp_cb, &a, e) != 0)
		return -1;
	*found = a.ps_found;
	return 0;
}

/* ---- the AP fingerprint index ("apfp" records) --------------------------
 *
 * One record per AP certificate fingerprint, name = the 64 hex digits,
 * body {"ap": ID}, written with STORE_REC_NEW BEFORE the AP record that
 * lists it: of two concurrent creates (or updates) binding one
 * certificate, exactly one gets the claim (the AE's table never holds a
 * fingerprint twice).  Released (deleted) after the AP stops listing it.
 * A crash can leave a claim whose AP does not list the fingerprint: it
 * counts as held while younger than MSSP_REG_APFP_CLAIM_GRACE_MS (a
 * create in flight), then as stale (taken over by CAS, ignored by the
 * lookups).  The lookups (reg_account_by_fp on every ME request, the
 * account checks) read one record instead of every AP. */

enum apfp_state {
	APFP_NONE,  /* no claim                                          */
	APFP_LIVE,  /* the named AP lists the fingerprint                */
	APFP_FRESH, /* claimed, AP not (yet) listing it: a write in flight */
	APFP_STALE, /* claimed, AP not listing it, older than the grace   */
};

struct apfp {
	enum apfp_state pf_state;
	char pf_ap[MSSP_STORE_MAX_AP_ID + 1]; /* the claiming AP (not NONE) */
	uint64_t pf_version;		      /* the claim's version         */
};

static int ap_load(struct store *st, const char *id, struct store_rec *rec, json_t **body,
		   struct reg_err *e);

static int
apfp_get(struct store *st, const char *hex, int64_t now_ms, struct apfp *pf, struct reg_err *e)
{
	struct store_rec rec = {0}, arec = {0};
	json_t *body = NULL, *ap = NULL;
	const char *id;
	int rc = 0;

	memset(pf, 0, sizeof *pf);
	if (rec_load(st, K_APFP, hex, REG_E_NOTFOUND, &rec, &body, e) != 0) {
		if (e->status != 404)
			return -1;
		pf->pf_state = APFP_NONE;
		return 0;
	}
	pf->pf_version = rec.sr_version;
	id = json_string_value(json_object_get(body, "ap"));
	snprintf(pf->pf_ap, sizeof pf->pf_ap, "%s", id ? id : "");
	pf->pf_state = now_ms - rec.sr_updated_ms < MSSP_REG_APFP_CLAIM_GRACE_MS ? APFP_FRESH
									 : APFP_STALE;
	if (id && ascii_visible(id, MSSP_STORE_MAX_AP_ID)) {
		if (ap_load(st, id, &arec, &ap, e) == 0) {
			json_t *v;
			size_t i;
			json_array_foreach(json_object_get(ap, "cert_sha256"), i, v) {
				if (json_is_string(v) && strcmp(json_string_value(v), hex) == 0)
					pf->pf_state = APFP_LIVE;
			}
			json_decref(ap);
			store_rec_clear(&arec);
		} else if (e->status != 404) {
			rc = -1;
		}
	}
	json_decref(body);
	store_rec_clear(&rec);
	return rc;
}

/* Claim `hex` for AP `id`.  *newly: this call wrote the claim (release it
 * if the AP write then fails); false when the AP `id` already lists it.
 * 409 when another AP holds it, or a write is in flight. */
static int
apfp_claim(struct store *st, const char *hex, const char *id, int64_t now_ms, bool *newly,
	   struct reg_err *e)
{
	json_t *b = json_pack("{s:s}", "ap", id);
	bool held = false;
	int rc = -1;

	*newly = false;
	if (b == NULL)
		return oom(e);
	for (int tries = 0; tries < MSSP_REG_CAS_RETRIES; tries++) {
		struct apfp pf;

		if (rec_store(st, K_APFP, hex, NULL, 1, 0, b, STORE_REC_NEW, now_ms, NULL, e) == 0) {
			*newly = true;
			rc = 0;
			break;
		}
		if (e->status != 409 || apfp_get(st, hex, now_ms, &pf, e) != 0)
			break;
		if (pf.pf_state == APFP_NONE)
			continue; /* released meanwhile */
		if (pf.pf_state == APFP_LIVE && strcmp(pf.pf_ap, id) == 0) {
			rc = 0;
			break;
		}
		if (pf.pf_state != APFP_STALE) {
			reg_err_set(e, REG_E_CONFLICT, "the certificate is bound to another AP");
			held = true;
			break;
		}
		/* a crash's leftover: taken over (CAS on the version read) */
		if (rec_store(st, K_APFP, hex, NULL, 1, 0, b, pf.pf_version, now_ms, NULL, e) == 0) {
			*newly = true;
			rc = 0;
			break;
		}
		if (e->status != 409)
			break;
	}
	if (rc != 0 && !held && e->status == 409)
		reg_err_set(e, REG_E_CONFLICT, "the certificate is being bound meanwhile");
	json_decref(b);
	return rc;
}

/* Release `hex` if AP `id` holds the claim (best effort: a leftover goes
 * stale and is taken over later). */
static void
apfp_release(struct store *st, const char *hex, const char *id, int64_t now_ms)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	struct reg_err e;
	json_t *body = NULL;

	if (rec_load(st, K_APFP, hex, REG_E_NOTFOUND, &rec, &body, &e) != 0)
		return;
	const char *holder = json_string_value(json_object_get(body, "ap"));

	if (holder && strcmp(holder, id) == 0 &&
	    store_rec_delete(st, K_APFP, hex, rec.sr_version, now_ms, &se) != 0)
		LOG_EV("reg.apfp_release_failed", "detail", se.detail);
	json_decref(body);
	store_rec_clear(&rec);
}

/* Release the fingerprints of `fps` (an array of hex strings) that are
 * not in `keep` (NULL: none kept). */
static void
apfp_release_all(struct store *st, const json_t *fps, const json_t *keep, const char *id,
		 int64_t now_ms)
{
	json_t *v;
	size_t i;

	json_array_foreach(fps, i, v) {
		bool kept = false;
		json_t *w;
		size_t k;
		json_array_foreach(keep, k, w) {
			kept |= json_equal(v, w);
		}
		if (!kept && json_is_string(v))
			apfp_release(st, json_string_value(v), id, now_ms);
	}
}

/* Release the claims of `fps` this call made (newly[i]). */
static void
apfp_release_new(struct store *st, const json_t *fps, const bool *newly, const char *id,
		 int64_t now_ms)
{
	json_t *v;
	size_t i;

	json_array_foreach(fps, i, v) {
		if (i < MSSP_CONF_MAX_AP_CERTS && newly[i] && json_is_string(v))
			apfp_release(st, json_string_value(v), id, now_ms);
	}
}

struct backfill {
	struct store *bf_st;
	int64_t bf_now;
};

static int
backfill_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct backfill *b = arg;
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(body, "cert_sha256"), i, v) {
		bool newly;
		if (!json_is_string(v))
			continue;
		/* a refusal (409: two old APs with one certificate) stays as it
		 * was: the first claim wins, the AE table shows the rest */
		if (apfp_claim(b->bf_st, json_string_value(v), rec->sr_name, b->bf_now, &newly, e) !=
			    0 &&
		    e->status != 409)
			return -1;
	}
	return 0;
}

/* Make sure every AP's fingerprints are in the index: APs stored before
 * it existed are claimed once per database (then the marker record
 * "apfpidx"/"v1" says so), once per process checked.  0, or -1 with e
 * (the callers then scan the APs instead). */
static int
apfp_ready(struct reg *r, struct store *st, struct reg_err *e)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	struct backfill b = {st, clock_wall_ms()};
	json_t *mark;

	if (r != NULL && atomic_load(&r->r_apfp_ready))
		return 0;
	if (store_rec_get(st, K_APFPIDX, "v1", &rec, &se) == 0) {
		store_rec_clear(&rec);
	} else {
		if (se.status != 101)
			return reg_from_store(e, &se, false);
		if (rec_each(st, K_AP, NULL, -1, NULL, MSSP_REG_MAX_APS, backfill_cb, &b, e) != 0)
			return -1;
		mark = json_pack("{s:o}", "done", json_iso(b.bf_now));
		if (mark == NULL)
			return oom(e);
		if (rec_store(st, K_APFPIDX, "v1", NULL, 1, 0, mark, STORE_REC_ANY, b.bf_now, NULL,
			      e) != 0) {
			json_decref(mark);
			return -1;
		}
		json_decref(mark);
		LOG_EV("reg.apfp_indexed");
	}
	if (r != NULL)
		atomic_store(&r->r_apfp_ready, true);
	return 0;
}

/* Is `hex` an AP's certificate (other than AP `skip`)?  One index read
 * (two when claimed); the AP scan only if the index cannot be made. */
static int
ap_has_fp(struct reg *r, struct store *st, const char *hex, const char *skip, bool *found,
	  struct reg_err *e)
{
	struct apfp pf;

	*found = false;
	if (apfp_ready(r, st, e) != 0) {
		LOG_EV("reg.apfp_unavailable", "detail", e->msg);
		return ap_scan_fp(st, hex, skip, found, e);
	}
	if (apfp_get(st, hex, clock_wall_ms(), &pf, e) != 0)
		return -1;
	*found = (pf.pf_state == APFP_LIVE || pf.pf_state == APFP_FRESH) &&
		 (skip == NULL || strcmp(pf.pf_ap, skip) != 0);
	return 0;
}

/* ======================================================================
 * APs
 * ====================================================================== */

static const char *const ap_members[] = {"id",		"name", "cert_sha256", "profiles", "modes",
					 "notify_urls", "rate", "suspended",
					 /* REST credentials (rest.md); the two flags of a
					  * GET answer are accepted and ignored, so that
					  * an answer can be sent back as an update */
					 "rest_user", "rest_password", "rest_password_hash",
					 "api_key", "api_key_set", "rest_password_set", NULL};
static const char *const mode_names[] = {"synch", "asynchClientServer", "asynchServerServer"};

/* An array of 0..max strings without NUL bytes; NULL when absent. */
static int
str_array(const json_t *o, const char *key, size_t min, size_t max, json_t **arr,
	  struct reg_err *e)
{
	json_t *a = json_object_get(o, key), *v;
	size_t i;

	*arr = NULL;
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) < min || json_array_size(a) > max)
		return reg_err_set(e, REG_E_BAD, "%s: an array of %zu to %zu strings", key, min,
				   max);
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return reg_err_set(e, REG_E_BAD, "%s: an array of strings", key);
	}
	*arr = a;
	return 0;
}

static bool
arr_has(const json_t *a, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v) {
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

/* The REST credentials of an AP object into `out` (rest.md):
 * "rest_user" (visible ASCII, no ':'), "rest_password" (>= 16 characters,
 * stored only as "rest_password_hash" = salt:SHA-256, fresh salt), a
 * "rest_password_hash" already in that form (an AP record read back, an
 * approval replayed), "api_key" (>= 32 visible characters, kept as given:
 * the AE computes the HMAC with it).  *creds: any credential set. */
static int
ap_rest_normalise(const json_t *in, json_t *out, bool *creds, struct reg_err *e)
{
	json_t *u = json_object_get(in, "rest_user"), *pw = json_object_get(in, "rest_password"),
	       *h = json_object_get(in, "rest_password_hash"), *k = json_object_get(in, "api_key");
	*creds = false;
	if (u) {
		const char *v = json_string_value(u);
		if (!v || !ascii_visible(v, MSSP_STORE_MAX_AP_ID) || strchr(v, ':'))
			return reg_err_set(e, REG_E_BAD, "rest_user: 1 to %d visible ASCII "
							 "characters, no ':'", MSSP_STORE_MAX_AP_ID);
		json_object_set_new(out, "rest_user", json_string(v));
	}
	if (pw && !json_is_null(pw)) {
		const char *v = json_string_value(pw);
		char hash[REST_PW_HASH_HEX + 1];
		if (!v || strlen(v) < MSSP_REST_MIN_PASSWORD ||
		    !ascii_visible(v, MSSP_REST_MAX_SECRET))
			return reg_err_set(e, REG_E_BAD, "rest_password: %d to %d visible ASCII "
							 "characters", MSSP_REST_MIN_PASSWORD,
					   MSSP_REST_MAX_SECRET);
		if (rest_password_hash(v, hash) != 0)
			return reg_err_set(e, REG_E_INTERNAL, "random source failed");
		json_object_set_new(out, "rest_password_hash", json_string(hash));
		*creds = true;
	} else if (h && !json_is_null(h) && !(pw && json_is_null(pw))) {
		const char *v = json_string_value(h);
		bool ok = v && strlen(v) == REST_PW_HASH_HEX && v[2 * MSSP_REST_SALT_LEN] == ':';
		for (size_t i = 0; ok && v[i]; i++)
			ok = i == 2 * MSSP_REST_SALT_LEN || hex_digit((unsigned char)v[i]) >= 0;
		if (!ok)
			return reg_err_set(e, REG_E_BAD, "rest_password_hash: salt:sha256 in hex");
		json_object_set_new(out, "rest_password_hash", json_string(v));
		*creds = true;
	}
	if (k && !json_is_null(k)) {
		const char *v = json_string_value(k);
		if (!v || strlen(v) < MSSP_REST_MIN_API_KEY || !ascii_visible(v, MSSP_REST_MAX_SECRET))
			return reg_err_set(e, REG_E_BAD, "api_key: %d to %d visible ASCII characters",
					   MSSP_REST_MIN_API_KEY, MSSP_REST_MAX_SECRET);
		json_object_set_new(out, "api_key", json_string(v));
		*creds = true;
	}
	return 0;
}

/* Wipe the REST secrets (rest_password, api_key) of an AP object in
 * place before it is freed: jansson frees strings without wiping.  Copies
 * jansson made inside (a json_deep_copy's, a parser's buffers) are out of
 * reach (rest.md). */
static void
ap_secrets_wipe(json_t *o)
{
	static const char *const keys[] = {"rest_password", "api_key"};

	for (size_t i = 0; json_is_object(o) && i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}

/* The HTTP Basic user name of an AP object: its rest_user, else its id. */
static const char *
ap_user_of(const json_t *o)
{
	const char *u = json_string_value(json_object_get(o, "rest_user"));
	return u ? u : json_string_value(json_object_get(o, "id"));
}

struct user_scan {
	const char *us_user, *us_self;
	bool us_taken;
};

static int
user_scan_cb(void *arg, const struct store_rec *r, json_t *body, struct reg_err *e)
{
	struct user_scan *u = arg;
	const char *other = ap_user_of(body);

	(void)e;
	if (strcmp(r->sr_name, u->us_self) == 0 || other == NULL)
		return 0;
	/* its user name is ours, or our id; or our user name is its id */
	if (strcmp(other, u->us_user) == 0 || strcmp(other, u->us_self) == 0 ||
	    strcmp(r->sr_name, u->us_user) == 0) {
		u->us_taken = true;
		return 1;
	}
	return 0;
}

/* A Basic user name names one AP (rest.md): the effective user name of
 * `ap` (canonical; its rest_user, else its id) must be neither another
 * AP's effective user name nor another AP's id, and its id not another
 * AP's user name.  0, or -1 with 409. */
static int
ap_user_unique(struct store *st, const json_t *ap, struct reg_err *e)
{
	struct user_scan u = {ap_user_of(ap), json_string_value(json_object_get(ap, "id")),
			      false};

	if (u.us_user == NULL || u.us_self == NULL)
		return 0;
	if (rec_each(st, K_AP, NULL, -1, NULL, MSSP_REG_MAX_APS, user_scan_cb, &u, e) != 0)
		return -1;
	if (u.us_taken)
		return reg_err_set(e, REG_E_CONFLICT, "rest_user: another AP's user name (its "
						      "rest_user, or its id)");
	return 0;
}

/* Validate an AP object (me.md shape) into its canonical form *out. */
static int
ap_normalise(const json_t *in, json_t **out, struct reg_err *e)
{
	const char *id, *name;
	json_t *fps, *prof, *modes, *urls, *v, *rate, *susp;
	json_t *nfps = NULL, *nprof = NULL, *nmodes = NULL, *nurls = NULL;
	json_int_t rv = 0;
	size_t i;

	*out = NULL;
	if (obj_check(in, ap_members, e) != 0 || get_str(in, "id", &id, e) != 0 ||
	    get_str(in, "name", &name, e) != 0)
		return -1;
	if (!ascii_visible(id, MSSP_STORE_MAX_AP_ID))
		return reg_err_set(e, REG_E_BAD, "id: 1 to %d visible ASCII characters",
				   MSSP_STORE_MAX_AP_ID);
	if (strncasecmp(id, "mesh:", 5) == 0)
		/* the name space of peer MSSPs' transactions (mesh.md) */
		return reg_err_set(e, REG_E_BAD, "id: \"mesh:\" is reserved for peer MSSPs");
	if (name == NULL)
		name = id;
	if (!text_ok(name, MSSP_APPMSG_MAX_TEXT, false))
		return reg_err_set(e, REG_E_BAD, "name: UTF-8 text of 1 to %d bytes",
				   MSSP_APPMSG_MAX_TEXT);
	json_t *creds_obj = json_object();
	bool creds = false;
	if (!creds_obj)
		return oom(e);
	if (ap_rest_normalise(in, creds_obj, &creds, e) != 0) {
		ap_secrets_wipe(creds_obj);
		json_decref(creds_obj);
		return -1;
	}
	if (json_object_get(creds_obj, "rest_password_hash") &&
	    !json_object_get(creds_obj, "rest_user") && strchr(id, ':')) {
		/* RFC 7617: a Basic user name cannot hold ':', a URI AP_ID does */
		ap_secrets_wipe(creds_obj);
		json_decref(creds_obj);
		return reg_err_set(e, REG_E_BAD, "rest_user: needed with rest_password when the "
						 "AP's id holds ':'");
	}
	/* an AP with REST credentials may have no certificate at all */
	if (str_array(in, "cert_sha256", creds ? 0 : 1, MSSP_CONF_MAX_AP_CERTS, &fps, e) != 0 ||
	    str_array(in, "profiles", 1, MSSP_CONF_MAX_LIST, &prof, e) != 0 ||
	    str_array(in, "modes", 1, 3, &modes, e) != 0 ||
	    str_array(in, "notify_urls", 0, MSSP_CONF_MAX_LIST, &urls, e) != 0) {
		ap_secrets_wipe(creds_obj);
		json_decref(creds_obj);
		return -1;
	}
	if (fps == NULL && !creds) {
		ap_secrets_wipe(creds_obj);
		json_decref(creds_obj);
		return reg_err_set(e, REG_E_BAD, "cert_sha256: 1 to %d fingerprints",
				   MSSP_CONF_MAX_AP_CERTS);
	}
	if (prof == NULL) {
		ap_secrets_wipe(creds_obj);
		json_decref(creds_obj);
		return reg_err_set(e, REG_E_BAD, "profiles: [\"*\"] or profile URIs");
	}
	nfps = json_array();
	nprof = json_array();
	nmodes = json_array();
	nurls = json_array();
	if (!nfps || !nprof || !nmodes || !nurls) {
		oom(e);
		goto fail;
	}
	json_array_foreach(fps ? fps : nfps, i, v) {
		unsigned char fp[32];
		char hex[FP_HEX + 1];
		if (fp_parse(json_string_value(v), fp) != 0) {
			reg_err_set(e, REG_E_BAD, "cert_sha256: 64 hex digits each");
			goto fail;
		}
		hex_encode(fp, 32, hex);
		if (arr_has(nfps, hex)) {
			reg_err_set(e, REG_E_BAD, "cert_sha256: a fingerprint repeated");
			goto fail;
		}
		json_array_append_new(nfps, json_string(hex));
	}
	json_array_foreach(prof, i, v) {
		const char *u = json_string_value(v);
		struct mss_profile mp;
		if (strcmp(u, "*") == 0) {
			if (json_array_size(prof) != 1) {
				reg_err_set(e, REG_E_BAD, "profiles: \"*\" stands alone");
				goto fail;
			}
		} else if (!ascii_visible(u, MSSP_PROFILE_MAX_URI) ||
			   mss_profile_parse(u, &mp, NULL, 0) != 0) {
			reg_err_set(e, REG_E_BAD, "profiles: a profile URI is not valid");
			goto fail;
		}
		if (arr_has(nprof, u)) {
			reg_err_set(e, REG_E_BAD, "profiles: a profile repeated");
			goto fail;
		}
		json_array_append_new(nprof, json_string(u));
	}
	if (modes) {
		json_array_foreach(modes, i, v) {
			bool known = false;
			for (size_t k = 0; k < 3; k++)
				known |= strcmp(json_string_value(v), mode_names[k]) == 0;
			if (!known || arr_has(nmodes, json_string_value(v))) {
				reg_err_set(e, REG_E_BAD, "modes: synch, asynchClientServer, "
							  "asynchServerServer, each once");
				goto fail;
			}
			json_array_append_new(nmodes, json_string(json_string_value(v)));
		}
		json_array_clear(nmodes); /* canonical order below */
	}
	for (size_t k = 0; k < 3; k++)
		if (modes == NULL || arr_has(modes, mode_names[k]))
			json_array_append_new(nmodes, json_string(mode_names[k]));
	if (urls) {
		json_array_foreach(urls, i, v) {
			const char *u = json_string_value(v);
			if (strlen(u) > MSSP_STORE_MAX_URL || !ascii_visible(u, MSSP_STORE_MAX_URL) ||
			    !conf_notify_rule_valid(u) || arr_has(nurls, u)) {
				reg_err_set(e, REG_E_BAD,
					    "notify_urls: https://HOST[:PORT|:*][/PATH], each once");
				goto fail;
			}
			json_array_append_new(nurls, json_string(u));
		}
	}
	rate = json_object_get(in, "rate");
	if (rate) {
		if (!json_is_integer(rate) || json_integer_value(rate) < 0 ||
		    json_integer_value(rate) > 1000000) {
			reg_err_set(e, REG_E_BAD, "rate: 0 to 1000000");
			goto fail;
		}
		rv = json_integer_value(rate);
	}
	susp = json_object_get(in, "suspended");
	if (susp && !json_is_boolean(susp)) {
		reg_err_set(e, REG_E_BAD, "suspended: true or false");
		goto fail;
	}
	*out = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:b}", "id", id, "name", name,
			 "cert_sha256", nfps, "profiles", nprof, "modes", nmodes, "notify_urls",
			 nurls, "rate", rv, "suspended", (int)(susp && json_is_true(susp)));
	if (*out)
		json_object_update(*out, creds_obj); /* shares the strings */
	else
		ap_secrets_wipe(creds_obj);
	json_decref(creds_obj);
	return *out ? 0 : oom(e);
fail:
	ap_secrets_wipe(creds_obj);
	json_decref(creds_obj);
	json_decref(nfps);
	json_decref(nprof);
	json_decref(nmodes);
	json_decref(nurls);
	return -1;
}

static int
ap_state_of(const json_t *ap)
{
	return json_is_true(json_object_get(ap, "suspended")) ? AP_ST_SUSPENDED : AP_ST_ACTIVE;
}

/* The AP's certificates are no account's and no other AP's (the AE's
 * table maps one certificate to one AP).  A check before an approval and
 * before the write; the claims (apfp_claim_all) make it race-free. */
static int
ap_fp_conflicts(struct reg *r, struct store *st, const json_t *ap, const char *self,
		struct reg_err *e)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(ap, "cert_sha256"), i, v) {
		struct acct_found f = {0};
		bool other;
		if (account_find_fp(st, json_string_value(v), &f, e) != 0)
			return -1;
		if (f.af_found)
			return reg_err_set(e, REG_E_CONFLICT,
					   "the certificate is an ME account's (separation of duties)");
		if (ap_has_fp(r, st, json_string_value(v), self, &other, e) != 0)
			return -1;
		if (other)
			return reg_err_set(e, REG_E_CONFLICT,
					   "the certificate is bound to another AP");
	}
	return 0;
}

/* Claim every fingerprint of `ap` for AP `id` (apfp_claim); on a refusal
 * the claims made here are released again.  newly[i]: the i-th was
 * claimed by this call (release it if the AP write fails). */
static int
apfp_claim_all(struct reg *r, struct store *st, const json_t *ap, const char *id,
	       int64_t now_ms, bool newly[MSSP_CONF_MAX_AP_CERTS], struct reg_err *e)
{
	json_t *fps = json_object_get(ap, "cert_sha256"), *v;
	size_t i;

	memset(newly, 0, MSSP_CONF_MAX_AP_CERTS * sizeof newly[0]);
	/* Old APs into the index first, so that a claim sees them. */
	if (apfp_ready(r, st, e) != 0)
		return -1;
	json_array_foreach(fps, i, v) {
		if (i >= MSSP_CONF_MAX_AP_CERTS ||
		    apfp_claim(st, json_string_value(v), id, now_ms, &newly[i], e) != 0) {
			apfp_release_new(st, fps, newly, id, now_ms);
			return -1;
		}
	}
	return 0;
}

static void
ap_changed(struct reg *r)
{
	if (r->r_on_ap_change)
		r->r_on_ap_change(r->r_arg);
}

/* Create the AP `ap` (canonical): checks, then (dual) an approval or the
 * claims of its fingerprints and the record.  The AP count is checked
 * again after the write, and a create that went past MSSP_CONF_MAX_APS
 * (two at once on the last place) is undone: the AE's table may hold one
 * too many for that instant (it then keeps its previous table until the
 * undo bumps the generation again), never for good. */
static int
ap_create_checked(struct reg *r, struct store *st, const struct reg_actor *who,
		  const struct reg_request *rq, json_t *ap, bool dual, int64_t now_ms,
		  json_t **out, struct reg_err *e, struct call *c)
{
	const char *id = json_string_value(json_object_get(ap, "id"));
	json_t *fps = json_object_get(ap, "cert_sha256");
	bool newly[MSSP_CONF_MAX_AP_CERTS];
	struct store_rec rec = {0};
	struct store_err se = {0};
	uint64_t n;

	if (store_rec_get(st, K_AP, id, &rec, &se) == 0) {
		store_rec_clear(&rec);
		return reg_err_set(e, REG_E_CONFLICT, "the AP exists already");
	}
	if (se.status != 101)
		return reg_from_store(e, &se, false);
	if (ap_fp_conflicts(r, st, ap, id, e) != 0 || ap_user_unique(st, ap, e) != 0)
		return -1;
	if (rec_count(st, K_AP, -1, &n, e) != 0)
		return -1;
	if (n >= MSSP_CONF_MAX_APS)
		return reg_err_set(e, REG_E_CONFLICT, "at most %d APs", MSSP_CONF_MAX_APS);
	if (dual)
		return approval_create(st, who, rq, ap, now_ms, out, e, c);
	if (apfp_claim_all(r, st, ap, id, now_ms, newly, e) != 0)
		return -1;
	if (rec_store(st, K_AP, id, NULL, ap_state_of(ap), 0, ap, STORE_REC_NEW, now_ms, NULL,
		      e) != 0) {
		apfp_release_new(st, fps, newly, id, now_ms);
		return -1;
	}
	if (rec_count(st, K_AP, -1, &n, e) != 0 || n > MSSP_CONF_MAX_APS) {
		/* STORE_REC_ANY: the AP may have been changed (suspended,
		 * renamed) since it was written a moment ago; the undo must
		 * still happen, or the AE's table stays over the cap */
		if (store_rec_delete(st, K_AP, id, STORE_REC_ANY, now_ms, &se) != 0)
			LOG_EV("reg.ap_undo_failed", "detail", se.detail);
		else
			apfp_release_new(st, fps, newly, id, now_ms);
		ap_changed(r);
		return e->status == 500 ? -1
					: reg_err_set(e, REG_E_CONFLICT, "at most %d APs",
						      MSSP_CONF_MAX_APS);
	}
	ap_changed(r);
	*out = json_incref(ap);
	return REG_CREATED;
}

static int
op_ap_create(struct reg *r, struct store *st, const struct reg_actor *who,
	     const struct reg_request *rq, bool dual, int64_t now_ms, json_t **out,
	     struct reg_err *e, struct call *c)
{
	json_t *ap;
	int rc;

	if (ap_normalise(rq->rq_body, &ap, e) != 0) {
		ap_secrets_wipe(rq->rq_body);
		return -1;
	}
	call_target(c, json_string_value(json_object_get(ap, "id")));
	rc = ap_create_checked(r, st, who, rq, ap, dual, now_ms, out, e, c);
	/* stored (or in the approval) by now; *out, when it is this AP, is
	 * redacted by reg_call anyway */
	ap_secrets_wipe(ap);
	json_decref(ap);
	ap_secrets_wipe(rq->rq_body);
	return rc;
}

static int
ap_load(struct store *st, const char *id, struct store_rec *rec, json_t **body, struct reg_err *e)
{
	if (!ascii_visible(id, MSSP_STORE_MAX_AP_ID))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown AP");
	if (rec_load(st, K_AP, id, REG_E_NOTFOUND, rec, body, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_NOTFOUND, "unknown AP");
		return -1;
	}
	return 0;
}

/* json_equal, with two absent members equal (jansson says 0 for NULLs). */
static bool
json_same(const json_t *a, const json_t *b)
{
	return (a == NULL && b == NULL) || json_equal((json_t *)a, (json_t *)b);
}

static int
op_ap_update(struct reg *r, struct store *st, const struct reg_actor *who,
	     const struct reg_request *rq, bool dual, int64_t now_ms, json_t **out,
	     struct reg_err *e, struct call *c)
{
	static const char *const trust_members[] = {"cert_sha256", "profiles", "modes",
						     "notify_urls", "rest_user",
						     "rest_password_hash", "api_key"};
	struct store_rec rec = {0};
	json_t *cur = NULL, *merged = NULL, *nw = NULL;
	const char *bid;
	bool fps_changed, trust = false, newly[MSSP_CONF_MAX_AP_CERTS];
	int rc = -1;

	call_target(c, rq->rq_arg);
	if (obj_check(rq->rq_body, ap_members, e) != 0 || get_str(rq->rq_body, "id", &bid, e))
		return -1;
	if (bid && (rq->rq_arg == NULL || strcmp(bid, rq->rq_arg) != 0))
		return reg_err_set(e, REG_E_BAD, "id: an AP's id does not change");
	if (ap_load(st, rq->rq_arg, &rec, &cur, e) != 0)
		return -1;
	if ((merged = json_deep_copy(cur)) == NULL ||
	    json_object_update(merged, rq->rq_body) != 0) {
		oom(e);
		goto out;
	}
	if (ap_normalise(merged, &nw, e) != 0)
		goto out;
	/* Trust changes (dual control): who the AP is (certificates), what it
	 * may ask (profiles, modes) and where answers go (notify_urls). */
	fps_changed = !json_same(json_object_get(cur, "cert_sha256"),
				 json_object_get(nw, "cert_sha256"));
	for (size_t i = 0; i < sizeof trust_members / sizeof trust_members[0]; i++) {
		bool ch = !json_same(json_object_get(cur, trust_members[i]),
				     json_object_get(nw, trust_members[i]));
		if (ch)
			call_detail(c, "%s changed", trust_members[i]);
		trust |= ch;
	}
	if (fps_changed && ap_fp_conflicts(r, st, nw, rq->rq_arg, e) != 0)
		goto out;
	if (strcmp(ap_user_of(cur) ? ap_user_of(cur) : "", ap_user_of(nw)) != 0 &&
	    ap_user_unique(st, nw, e) != 0)
		goto out;
	if (dual && trust) {
		/* the approval keeps the password's hash, never the password
		 * (the replay accepts rest_password_hash as given) */
		json_t *kept = json_deep_copy(rq->rq_body);
		if (!kept) {
			oom(e);
			goto out;
		}
		if (json_object_get(kept, "rest_password") &&
		    !json_is_null(json_object_get(kept, "rest_password"))) {
			json_object_del(kept, "rest_password");
			json_object_set(kept, "rest_password_hash",
					json_object_get(nw, "rest_password_hash"));
		}
		rc = approval_create(st, who, rq, kept, now_ms, out, e, c);
		ap_secrets_wipe(kept);
		json_decref(kept);
		goto out;
	}
	/* Added certificates are claimed before the write, removed ones
	 * released after it. */
	if (fps_changed &&
	    apfp_claim_all(r, st, nw, rq->rq_arg, now_ms, newly, e) != 0)
		goto out;
	if (rec_store(st, K_AP, rq->rq_arg, NULL, ap_state_of(nw), 0, nw, rec.sr_version, now_ms,
		      NULL, e) != 0) {
		if (fps_changed)
			apfp_release_new(st, json_object_get(nw, "cert_sha256"), newly,
					 rq->rq_arg, now_ms);
		goto out;
	}
	if (fps_changed)
		apfp_release_all(st, json_object_get(cur, "cert_sha256"),
				 json_object_get(nw, "cert_sha256"), rq->rq_arg, now_ms);
	ap_changed(r);
	*out = json_incref(nw);
	rc = 0;
out:
	/* the secrets are stored (or in the approval) by now; *out, when it
	 * is nw, is redacted by reg_call anyway */
	store_rec_clear(&rec);
	ap_secrets_wipe(cur);
	json_decref(cur);
	ap_secrets_wipe(merged);
	json_decref(merged);
	ap_secrets_wipe(nw);
	json_decref(nw);
	ap_secrets_wipe(rq->rq_body);
	return rc;
}

static int
op_ap_suspend(struct reg *r, struct store *st, const struct reg_request *rq, bool suspend,
	      int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0};
	json_t *cur;
	int rc;

	call_target(c, rq->rq_arg);
	if (ap_load(st, rq->rq_arg, &rec, &cur, e) != 0)
		return -1;
	json_object_set_new(cur, "suspended", json_boolean(suspend));
	rc = rec_store(st, K_AP, rq->rq_arg, NULL, ap_state_of(cur), 0, cur, rec.sr_version,
		       now_ms, NULL, e);
	store_rec_clear(&rec);
	if (rc == 0) {
		ap_changed(r);
		*out = cur;
		return 0;
	}
	json_decref(cur);
	return -1;
}

static int
op_ap_delete(struct reg *r, struct store *st, const struct reg_actor *who,
	     const struct reg_request *rq, bool dual, int64_t now_ms, json_t **out,
	     struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	json_t *cur;
	int rc;

	call_target(c, rq->rq_arg);
	if (ap_load(st, rq->rq_arg, &rec, &cur, e) != 0)
		return -1;
	if (dual) {
		json_decref(cur);
		store_rec_clear(&rec);
		return approval_create(st, who, rq, NULL, now_ms, out, e, c);
	}
	rc = store_rec_delete(st, K_AP, rq->rq_arg, rec.sr_version, now_ms, &se);
	store_rec_clear(&rec);
	if (rc != 0) {
		json_decref(cur);
		return reg_from_store(e, &se, true);
	}
	/* The AP is gone: its certificates are free again. */
	apfp_release_all(st, json_object_get(cur, "cert_sha256"), NULL, rq->rq_arg, now_ms);
	json_decref(cur);
	ap_changed(r);
	*out = json_pack("{s:s, s:s}", "id", rq->rq_arg, "state", "deleted");
	return *out ? 0 : oom(e);
}

static int
collect_fn(void *arg, const struct store_rec *r, json_t *body, struct reg_err *e)
{
	(void)r;
	if (json_array_append(arg, body) != 0)
		return oom(e);
	return 0;
}

int
reg_ap_table(struct store *st, json_t **out, uint64_t *gen, struct reg_err *e)
{
	struct store_err se = {0};
	json_t *arr;

	*out = NULL;
	/* The generation first: a change after it bumps it, so the caller
	 * reloads again rather than missing it. */
	if (store_rec_generation(st, K_AP, gen, &se) != 0)
		return reg_from_store(e, &se, false);
	if ((arr = json_array()) == NULL)
		return oom(e);
	if (rec_each(st, K_AP, NULL, -1, NULL, MSSP_REG_MAX_APS, collect_fn, arr, e) != 0) {
		json_decref(arr);
		return -1;
	}
	*out = arr;
	return 0;
}

/* ======================================================================
 * Signature and registration profiles
 * ====================================================================== */

static int
profile_uri_ok(const char *u)
{
	struct mss_profile mp;

	return ascii_visible(u, MSSP_PROFILE_MAX_URI) && mss_profile_parse(u, &mp, NULL, 0) == 0;
}

/* {"uri","description","purpose","loa"} with uri = `name` (when given). */
static int
sigprof_normalise(const json_t *in, const char *name, json_t **out, struct reg_err *e)
{
	static const char *const members[] = {"uri", "description", "purpose", "loa", NULL};
	const char *uri, *desc, *purpose;
	json_t *loa;

	*out = NULL;
	if (obj_check(in, members, e) != 0 || get_str(in, "uri", &uri, e) != 0 ||
	    get_str(in, "description", &desc, e) != 0 || get_str(in, "purpose", &purpose, e) != 0)
		return -1;
	if (uri == NULL)
		uri = name;
	if (uri == NULL || (name && strcmp(uri, name) != 0))
		return reg_err_set(e, REG_E_BAD, "uri: the profile URI of the path");
	if (!profile_uri_ok(uri))
		return reg_err_set(e, REG_E_BAD, "uri: not a valid signature profile URI");
	if (desc && !text_ok(desc, MSSP_REG_MAX_DESCRIPTION, true))
		return reg_err_set(e, REG_E_BAD, "description: UTF-8 text of at most %d bytes",
				   MSSP_REG_MAX_DESCRIPTION);
	if (purpose == NULL || (strcmp(purpose, "authn") != 0 && strcmp(purpose, "sign") != 0))
		return reg_err_set(e, REG_E_BAD, "purpose: authn or sign");
	loa = json_object_get(in, "loa");
	if (!json_is_integer(loa) || json_integer_value(loa) < 2 || json_integer_value(loa) > 4)
		return reg_err_set(e, REG_E_BAD, "loa: 2, 3 or 4");
	*out = json_pack("{s:s, s:s, s:s, s:I}", "uri", uri, "description", desc ? desc : "",
			 "purpose", purpose, "loa", json_integer_value(loa));
	return *out ? 0 : oom(e);
}

static int
regprof_group(const json_t *g, json_t *ids, json_t **out, struct reg_err *e)
{
	static const char *const members[] = {"group", "purpose",	"profiles", "pin",
					      "alg",   "cert_profile", NULL};
	const char *id, *purpose, *alg, *cp;
	json_t *prof, *pin, *np, *v;
	size_t i, total = 0;

	if (obj_check(g, members, e) != 0 || get_str(g, "group", &id, e) != 0 ||
	    get_str(g, "purpose", &purpose, e) != 0 || get_str(g, "alg", &alg, e) != 0 ||
	    get_str(g, "cert_profile", &cp, e) != 0 ||
	    str_array(g, "profiles", 1, MSSP_KEYSTORE_MAX_PROFILES, &prof, e) != 0)
		return -1;
	if (!id_ok(id, MSSP_KEYSTORE_MAX_ID))
		return reg_err_set(e, REG_E_BAD, "group: 1 to %d of [A-Za-z0-9._-]",
				   MSSP_KEYSTORE_MAX_ID);
	if (arr_has(ids, id))
		return reg_err_set(e, REG_E_BAD, "group: ids must be unique");
	json_array_append_new(ids, json_string(id));
	if (purpose == NULL || (strcmp(purpose, "authn") != 0 && strcmp(purpose, "sign") != 0))
		return reg_err_set(e, REG_E_BAD, "purpose: authn or sign");
	if (prof == NULL)
		return reg_err_set(e, REG_E_BAD, "profiles: 1 to %d profile URIs",
				   MSSP_KEYSTORE_MAX_PROFILES);
	if ((np = json_array()) == NULL)
		return oom(e);
	json_array_foreach(prof, i, v) {
		const char *u = json_string_value(v);
		if (!profile_uri_ok(u) || arr_has(np, u)) {
			json_decref(np);
			return reg_err_set(e, REG_E_BAD, "profiles: valid profile URIs, each once");
		}
		total += strlen(u) + 1;
		json_array_append_new(np, json_string(u));
	}
	/* The key record keeps them joined by spaces. */
	if (total > MSSP_STORE_MAX_PROFILES_TEXT) {
		json_decref(np);
		return reg_err_set(e, REG_E_BAD, "profiles: too long together");
	}
	pin = json_object_get(g, "pin");
	if (pin && !json_is_boolean(pin)) {
		json_decref(np);
		return reg_err_set(e, REG_E_BAD, "pin: true or false");
	}
	if (alg && strcmp(alg, "ec-p256") != 0) {
		json_decref(np);
		return reg_err_set(e, REG_E_BAD, "alg: ec-p256");
	}
	if (cp == NULL)
		cp = purpose;
	if (strcmp(cp, "authn") != 0 && strcmp(cp, "sign") != 0) {
		json_decref(np);
		return reg_err_set(e, REG_E_BAD, "cert_profile: authn or sign");
	}
	*out = json_pack("{s:s, s:s, s:o, s:b, s:s, s:s}", "group", id, "purpose", purpose,
			 "profiles", np, "pin", (int)(pin == NULL || json_is_true(pin)), "alg",
			 "ec-p256", "cert_profile", cp);
	return *out ? 0 : oom(e);
}

/* {"name","description","key_groups":[...]} with name = `name`. */
static int
regprof_normalise(const json_t *in, const char *name, json_t **out, struct reg_err *e)
{
	static const char *const members[] = {"name", "description", "key_groups", NULL};
	const char *n, *desc;
	json_t *groups, *ng = NULL, *ids = NULL, *g = NULL, *v;
	size_t i;

	*out = NULL;
	if (obj_check(in, members, e) != 0 || get_str(in, "name", &n, e) != 0 ||
	    get_str(in, "description", &desc, e) != 0)
		return -1;
	if (n == NULL)
		n = name;
	if (n == NULL || (name && strcmp(n, name) != 0))
		return reg_err_set(e, REG_E_BAD, "name: the profile name of the path");
	if (!id_ok(n, MSSP_KEYSTORE_MAX_ID))
		return reg_err_set(e, REG_E_BAD, "name: 1 to %d of [A-Za-z0-9._-]",
				   MSSP_KEYSTORE_MAX_ID);
	if (desc && !text_ok(desc, MSSP_REG_MAX_DESCRIPTION, true))
		return reg_err_set(e, REG_E_BAD, "description: UTF-8 text of at most %d bytes",
				   MSSP_REG_MAX_DESCRIPTION);
	groups = json_object_get(in, "key_groups");
	if (!json_is_array(groups) || json_array_size(groups) < 1 ||
	    json_array_size(groups) > MSSP_REG_MAX_KEY_GROUPS)
		return reg_err_set(e, REG_E_BAD, "key_groups: 1 to %d groups",
				   MSSP_REG_MAX_KEY_GROUPS);
	if ((ng = json_array()) == NULL || (ids = json_array()) == NULL) {
		json_decref(ng);
		return oom(e);
	}
	json_array_foreach(groups, i, v) {
		if (regprof_group(v, ids, &g, e) != 0) {
			json_decref(ng);
			json_decref(ids);
			return -1;
		}
		json_array_append_new(ng, g);
	}
	json_decref(ids);
	*out = json_pack("{s:s, s:s, s:o}", "name", n, "description", desc ? desc : "",
			 "key_groups", ng);
	return *out ? 0 : oom(e);
}

int
reg_regprof_get(struct store *st, const char *name, json_t **out, struct reg_err *e)
{
	struct store_rec rec = {0};

	*out = NULL;
	if (!id_ok(name, MSSP_KEYSTORE_MAX_ID))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown registration profile");
	if (rec_load(st, K_REGPROF, name, REG_E_NOTFOUND, &rec, out, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_NOTFOUND, "unknown registration profile");
		return -1;
	}
	store_rec_clear(&rec);
	return 0;
}

/* Put a validated profile: create or replace.  REG_CREATED when new. */
static int
profile_put(struct store *st, bool registration, const json_t *prof, int64_t now_ms,
	    struct reg_err *e)
{
	const char *kind = registration ? K_REGPROF : K_SIGPROF;
	const char *name = json_string_value(json_object_get(prof, registration ? "name" : "uri"));
	struct store_rec rec = {0};
	struct store_err se = {0};
	bool created = false;

	if (store_rec_get(st, kind, name, &rec, &se) == 0) {
		store_rec_clear(&rec);
	} else if (se.status == 101) {
		uint64_t n;
		if (rec_count(st, kind, -1, &n, e) != 0)
			return -1;
		if (n >= MSSP_REG_MAX_PROFILES)
			return reg_err_set(e, REG_E_CONFLICT, "at most %d profiles",
					   MSSP_REG_MAX_PROFILES);
	} else {
		return reg_from_store(e, &se, false);
	}
	if (rec_store(st, kind, name, NULL, PROF_ST, 0, prof, STORE_REC_ANY, now_ms, &created, e))
		return -1;
	return created ? REG_CREATED : 0;
}

/* sigprof.put / regprof.put.  Defining a new profile is one admin's
 * act; redefining an existing one changes what every AP and user bound
 * to it receives (level of assurance, key groups): dual control. */
static int
op_profile_put(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
	       bool registration, bool dual, int64_t now_ms, json_t **out, struct reg_err *e,
	       struct call *c)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	json_t *p;
	int rc;

	call_target(c, rq->rq_arg);
	if (rq->rq_arg == NULL)
		return reg_err_set(e, REG_E_BAD, "profile name missing");
	rc = registration ? regprof_normalise(rq->rq_body, rq->rq_arg, &p, e)
			  : sigprof_normalise(rq->rq_body, rq->rq_arg, &p, e);
	if (rc != 0)
		return -1;
	if (dual) {
		rc = store_rec_get(st, registration ? K_REGPROF : K_SIGPROF, rq->rq_arg, &rec, &se);
		store_rec_clear(&rec);
		if (rc == 0) {
			call_detail(c, "redefinition");
			rc = approval_create(st, who, rq, p, now_ms, out, e, c);
			json_decref(p);
			return rc;
		}
		if (se.status != 101) {
			json_decref(p);
			return reg_from_store(e, &se, false);
		}
	}
	rc = profile_put(st, registration, p, now_ms, e);
	if (rc < 0) {
		json_decref(p);
		return -1;
	}
	call_detail(c, "%s", rc == REG_CREATED ? "created" : "replaced");
	*out = p;
	return rc;
}

static int
op_list_kind(struct store *st, const char *kind, const char *key, size_t cap, json_t **out,
	     struct reg_err *e)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return oom(e);
	if (rec_each(st, kind, NULL, -1, NULL, cap, collect_fn, arr, e) != 0) {
		json_decref(arr);
		return -1;
	}
	*out = json_pack("{s:o}", key, arr);
	return *out ? 0 : oom(e);
}

/* ======================================================================
 * Accounts
 * ====================================================================== */

static bool
account_name_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > MSSP_REG_MAX_ACCOUNT_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      strchr("._-", s[i])))
			return false;
	return true;
}

/* {"name","role","cert_sha256"|"cert_pem"} -> {"name","role","cert_sha256"}. */
static int
account_normalise(const json_t *in, json_t **out, struct reg_err *e)
{
	static const char *const members[] = {"name", "role", "cert_sha256", "cert_pem", NULL};
	const char *name, *role, *hex, *pem;
	enum reg_role ro;
	unsigned char fp[32];
	char fph[FP_HEX + 1];

	*out = NULL;
	if (obj_check(in, members, e) != 0 || get_str(in, "name", &name, e) != 0 ||
	    get_str(in, "role", &role, e) != 0 || get_str(in, "cert_sha256", &hex, e) != 0 ||
	    get_str(in, "cert_pem", &pem, e) != 0)
		return -1;
	if (!account_name_ok(name))
		return reg_err_set(e, REG_E_BAD, "name: 1 to %d of [a-z0-9._-]",
				   MSSP_REG_MAX_ACCOUNT_NAME);
	if (reg_role_parse(role, &ro) != 0)
		return reg_err_set(e, REG_E_BAD, "role: admin, ra or auditor");
	if ((hex == NULL) == (pem == NULL))
		return reg_err_set(e, REG_E_BAD, "exactly one of cert_sha256 and cert_pem");
	if (hex) {
		if (fp_parse(hex, fp) != 0)
			return reg_err_set(e, REG_E_BAD, "cert_sha256: 64 hex digits");
	} else {
		BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
		X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		unsigned int len = 0;
		int ok = x && X509_digest(x, EVP_sha256(), fp, &len) == 1 && len == 32;

		X509_free(x);
		BIO_free(b);
		if (!ok)
			return reg_err_set(e, REG_E_BAD, "cert_pem: a PEM certificate");
	}
	hex_encode(fp, 32, fph);
	*out = json_pack("{s:s, s:s, s:s}", "name", name, "role", reg_role_name(ro),
			 "cert_sha256", fph);
	return *out ? 0 : oom(e);
}

static int
account_create_checked(struct reg *r, struct store *st, const struct reg_actor *who,
		       const struct reg_request *rq, const json_t *acct, bool dual, int64_t now_ms,
		       json_t **out, struct reg_err *e, struct call *c)
{
	const char *name = json_string_value(json_object_get(acct, "name"));
	const char *hex = json_string_value(json_object_get(acct, "cert_sha256"));
	struct store_rec rec = {0};
	struct store_err se = {0};
	struct acct_found f = {0};
	json_t *body, *fpb;
	bool isap;
	uint64_t n;
	int rc;

	call_target(c, name);
	call_detail(c, "role %s", json_string_value(json_object_get(acct, "role")));
	if (store_rec_get(st, K_ACCOUNT, name, &rec, &se) == 0) {
		store_rec_clear(&rec);
		return reg_err_set(e, REG_E_CONFLICT, "the account exists already");
	}
	if (se.status != 101)
		return reg_from_store(e, &se, false);
	if (ap_has_fp(r, st, hex, NULL, &isap, e) != 0)
		return -1;
	if (isap)
		return reg_err_set(e, REG_E_CONFLICT,
				   "the certificate is an AP's (separation of duties)");
	if (account_find_fp(st, hex, &f, e) != 0)
		return -1;
	if (f.af_found)
		return reg_err_set(e, REG_E_CONFLICT, "the certificate is another account's");
	if (rec_count(st, K_ACCOUNT, -1, &n, e) != 0)
		return -1;
	if (n >= MSSP_REG_MAX_ACCOUNTS)
		return reg_err_set(e, REG_E_CONFLICT, "at most %d accounts", MSSP_REG_MAX_ACCOUNTS);
	if (dual)
		return approval_create(st, who, rq, acct, now_ms, out, e, c);
	if ((body = json_deep_copy(acct)) == NULL)
		return oom(e);
	json_object_set_new(body, "state", json_string("active"));
	json_object_set_new(body, "created", json_iso(now_ms));
	json_object_set_new(body, "created_by", json_string(actor_name(who)));
	if (c->c_approver)
		json_object_set_new(body, "approved_by", json_string(c->c_approver));
	/* The account, then its fingerprint index (a crash between the two is
	 * covered by account_find_fp's scan). */
	rc = rec_store(st, K_ACCOUNT, name, NULL, ACC_ST_ACTIVE, 0, body, STORE_REC_NEW, now_ms,
		       NULL, e);
	if (rc == 0) {
		fpb = json_pack("{s:s}", "name", name);
		rc = fpb ? rec_store(st, K_ACCOUNTFP, hex, NULL, 1, 0, fpb, STORE_REC_ANY, now_ms,
				     NULL, e)
			 : oom(e);
		json_decref(fpb);
		if (rc != 0)
			LOG_EV("reg.accountfp_failed", "account", name);
		rc = 0; /* the account exists; the index is only a hint */
	}
	if (rc != 0) {
		json_decref(body);
		return -1;
	}
	*out = body;
	return REG_CREATED;
}

static int
op_account_create(struct reg *r, struct store *st, const struct reg_actor *who,
		  const struct reg_request *rq,
		  bool dual, int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	json_t *acct;
	int rc;

	if (account_normalise(rq->rq_body, &acct, e) != 0)
		return -1;
	rc = account_create_checked(r, st, who, rq, acct, dual, now_ms, out, e, c);
	json_decref(acct);
	return rc;
}

struct admin_count {
	const char *ac_skip;
	uint64_t ac_n;
};

static int
admin_count_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct admin_count *a = arg;
	const char *role = json_string_value(json_object_get(body, "role"));

	(void)e;
	if (rec->sr_state == ACC_ST_ACTIVE && role && strcmp(role, "admin") == 0 &&
	    strcmp(rec->sr_name, a->ac_skip) != 0)
		a->ac_n++;
	return 0;
}

/* Would at least MSSP_REG_MIN_ADMINS active admin accounts remain without
 * the active admin `name` (deleted, or - an op that changes roles - no
 * longer an admin)?  Dual control needs two admins: fewer would leave
 * every dual op impossible.  0, or -1 with 409.  (No op changes an
 * account's role today: a future one calls this too.) */
static int
admins_remain(struct store *st, const char *name, struct reg_err *e)
{
	struct admin_count a = {name, 0};

	if (rec_each(st, K_ACCOUNT, NULL, -1, NULL, MSSP_REG_MAX_ACCOUNTS, admin_count_cb, &a,
		     e) != 0)
		return -1;
	if (a.ac_n < MSSP_REG_MIN_ADMINS)
		return reg_err_set(e, REG_E_CONFLICT, "at least %d admin accounts must remain",
				   MSSP_REG_MIN_ADMINS);
	return 0;
}

static int
op_account_delete(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
		  bool dual, int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0}, frec = {0};
	struct store_err se = {0};
	json_t *body = NULL, *fbody = NULL;
	const char *role, *hex;
	bool admin;
	int rc = -1;

	call_target(c, rq->rq_arg);
	if (!account_name_ok(rq->rq_arg))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown account");
	if (rec_load(st, K_ACCOUNT, rq->rq_arg, REG_E_NOTFOUND, &rec, &body, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_NOTFOUND, "unknown account");
		return -1;
	}
	role = json_string_value(json_object_get(body, "role"));
	hex = json_string_value(json_object_get(body, "cert_sha256"));
	/* Checked at the request and again when the approved request runs. */
	admin = role && strcmp(role, "admin") == 0 && rec.sr_state == ACC_ST_ACTIVE;
	if (admin && admins_remain(st, rq->rq_arg, e) != 0)
		goto out;
	call_detail(c, "role %s", role ? role : "?");
	if (dual) {
		rc = approval_create(st, who, rq, NULL, now_ms, out, e, c);
		goto out;
	}
	if (store_rec_delete(st, K_ACCOUNT, rq->rq_arg, rec.sr_version, now_ms, &se) != 0) {
		reg_from_store(e, &se, true);
		goto out;
	}
	/* Counted again after the delete: of two admin deletions run at the
	 * same instant, each sees the other's; both are undone (the account
	 * written back) rather than leaving fewer admins than dual control
	 * needs. */
	if (admin && admins_remain(st, rq->rq_arg, e) != 0) {
		struct reg_err e2;
		if (rec_store(st, K_ACCOUNT, rq->rq_arg, NULL, rec.sr_state, 0, body, STORE_REC_NEW,
			      now_ms, NULL, &e2) != 0)
			LOG_EV("reg.account_restore_failed", "account", rq->rq_arg, "detail", e2.msg);
		else
			call_detail(c, "undone");
		goto out;
	}
	/* Its index record, when it still names this account. */
	if (hex && ascii_visible(hex, FP_HEX) &&
	    rec_load(st, K_ACCOUNTFP, hex, REG_E_NOTFOUND, &frec, &fbody, e) == 0) {
		const char *n = json_string_value(json_object_get(fbody, "name"));
		if (n && strcmp(n, rq->rq_arg) == 0)
			(void)store_rec_delete(st, K_ACCOUNTFP, hex, frec.sr_version, now_ms, &se);
		json_decref(fbody);
		store_rec_clear(&frec);
	}
	*out = json_pack("{s:s, s:s}", "name", rq->rq_arg, "state", "deleted");
	rc = *out ? 0 : oom(e);
out:
	json_decref(body);
	store_rec_clear(&rec);
	return rc;
}

int
reg_account_by_fp(struct reg *r, struct store *st, const unsigned char fp[32],
		  struct reg_actor *out, struct reg_err *e)
{
	char hex[FP_HEX + 1];
	struct acct_found f = {0};
	bool isap;

	memset(out, 0, sizeof *out);
	hex_encode(fp, 32, hex);
	/* Separation of duties first: an AP's certificate never logs in here,
	 * whatever account records say. */
	if (ap_has_fp(r, st, hex, NULL, &isap, e) != 0)
		return -1;
	if (isap)
		return reg_err_set(e, REG_E_FORBIDDEN, "certificate of an AP refused on the ME");
	if (account_find_fp(st, hex, &f, e) != 0)
		return -1;
	if (!f.af_found)
		return reg_err_set(e, REG_E_FORBIDDEN, "unknown client certificate");
	if (f.af_state != ACC_ST_ACTIVE || f.af_role == REG_ROLE_NONE)
		return reg_err_set(e, REG_E_FORBIDDEN, "account disabled");
	snprintf(out->ra_name, sizeof out->ra_name, "%s", f.af_name);
	out->ra_role = f.af_role;
	memcpy(out->ra_fp, fp, 32);
	return 0;
}

/* ======================================================================
 * Approvals
 * ====================================================================== */

static const char *
approval_state_name(int s)
{
	switch (s) {
	case APR_ST_PENDING:
		return "pending";
	case APR_ST_APPROVED:
		return "approved";
	case APR_ST_REJECTED:
		return "rejected";
	case APR_ST_EXPIRED:
		return "expired";
	case APR_ST_FAILED:
		return "failed";
	default:
		return "?";
	}
}

struct apr_list {
	json_t *al_arr;
	int64_t al_now;
	char al_last[32];
};

static int
apr_list_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct apr_list *l = arg;
	json_t *o = json_deep_copy(body);
	int st = rec->sr_state;

	if (o == NULL)
		return oom(e);
	if (st == APR_ST_PENDING && rec->sr_expires_ms && l->al_now >= rec->sr_expires_ms)
		st = APR_ST_EXPIRED;
	json_object_del(o, "expires_ms");
	json_object_set_new(o, "state", json_string(approval_state_name(st)));
	json_array_append_new(l->al_arr, o);
	snprintf(l->al_last, sizeof l->al_last, "%.31s", rec->sr_name);
	return 0;
}

static int
op_approval_list(struct store *st, const struct reg_request *rq, int64_t now_ms, json_t **out,
		 struct reg_err *e)
{
	struct apr_list l = {json_array(), now_ms, ""};
	const char *after = query_str(rq, "after"), *s = query_str(rq, "state");
	int state = -1;
	size_t limit;

	if (l.al_arr == NULL)
		return oom(e);
	if (query_limit(rq, &limit, e) != 0)
		goto fail;
	if (after && *after && !ascii_visible(after, 32)) {
		reg_err_set(e, REG_E_BAD, "after: an approval id");
		goto fail;
	}
	if (s && *s) {
		for (int i = APR_ST_PENDING; i <= APR_ST_FAILED; i++)
			if (strcmp(s, approval_state_name(i)) == 0)
				state = i;
		if (state < 0) {
			reg_err_set(e, REG_E_BAD, "state: an approval state");
			goto fail;
		}
	}
	if (rec_each(st, K_APPROVAL, NULL, state, after && *after ? after : NULL, limit,
		     apr_list_cb, &l, e) != 0)
		goto fail;
	*out = json_pack("{s:o, s:s?}", "approvals", l.al_arr, "next",
			 json_array_size(l.al_arr) == limit ? l.al_last : NULL);
	return *out ? 0 : oom(e);
fail:
	json_decref(l.al_arr);
	return -1;
}

static int dispatch(struct reg *r, struct store *st, const struct reg_actor *who,
		    const struct reg_request *rq, int64_t now_ms, json_t **out, struct reg_err *e,
		    struct call *c);

/* Mark an approval `state` (CAS on `version`), with `extra` members set
 * in its body (borrowed). */
static int
approval_mark(struct store *st, const struct store_rec *rec, json_t *body, int state,
	      int64_t now_ms, struct reg_err *e)
{
	return rec_store(st, K_APPROVAL, rec->sr_name, NULL, state, rec->sr_expires_ms, body,
			 rec->sr_version, now_ms, NULL, e);
}

/* Is account `name` still an active admin with certificate `fp_hex`?
 * 0, or -1 with 409 (or a store error). */
static int
requester_still_admin(struct store *st, const char *name, const char *fp_hex, struct reg_err *e)
{
	struct store_rec rec = {0};
	json_t *body = NULL;
	const char *role, *h;
	bool ok;

	if (!account_name_ok(name))
		return reg_err_set(e, REG_E_CONFLICT, "the requester's account is gone");
	if (rec_load(st, K_ACCOUNT, name, REG_E_NOTFOUND, &rec, &body, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_CONFLICT, "the requester's account is gone");
		return -1;
	}
	role = json_string_value(json_object_get(body, "role"));
	h = json_string_value(json_object_get(body, "cert_sha256"));
	ok = rec.sr_state == ACC_ST_ACTIVE && role && strcmp(role, "admin") == 0 && h &&
	     fp_hex && strcmp(h, fp_hex) == 0;
	json_decref(body);
	store_rec_clear(&rec);
	if (!ok)
		return reg_err_set(e, REG_E_CONFLICT, "the requester is no longer an admin");
	return 0;
}

/* An approval's AP body without its API key (wiped): "api_key_set" says
 * one was asked for. */
static void
approval_key_scrub(json_t *apbody)
{
	json_t *k = json_object_get(apbody, "api_key");

	if (!json_is_string(k))
		return;
	OPENSSL_cleanse((char *)json_string_value(k), json_string_length(k));
	json_object_del(apbody, "api_key");
	json_object_set_new(apbody, "api_key_set", json_true());
}

struct key_scan {
	char ks_id[MSSP_REST_SCRUB_BATCH][MSSP_STORE_MAX_REC_NAME + 1];
	size_t ks_n;
	int64_t ks_now;
};

static int
key_scan_cb(void *arg, const struct store_rec *r, json_t *body, struct reg_err *e)
{
	struct key_scan *k = arg;

	(void)e;
	/* decided (a record from before the key was scrubbed at decision),
	 * or pending past its expiry */
	if ((r->sr_state != APR_ST_PENDING ||
	     (r->sr_expires_ms && k->ks_now >= r->sr_expires_ms)) &&
	    json_object_get(json_object_get(body, "body"), "api_key")) {
		snprintf(k->ks_id[k->ks_n], sizeof k->ks_id[k->ks_n], "%s", r->sr_name);
		if (++k->ks_n == MSSP_REST_SCRUB_BATCH)
			return 1;
	}
	return 0;
}

/* Approvals that no longer need an AP's API key but still hold it: the
 * pending ones past their expiry are marked expired (what a decision
 * would do now), decided ones keep their state; both without the key.
 * Run after each decision; best effort (a failure leaves them for the
 * next). */
static void
approvals_scrub_expired(struct store *st, int64_t now_ms)
{
	struct key_scan *k = calloc(1, sizeof *k);
	struct reg_err e2;

	if (k == NULL)
		return;
	k->ks_now = now_ms;
	if (rec_each(st, K_APPROVAL, NULL, -1, NULL, MSSP_REG_MAX_COUNT_SCAN, key_scan_cb, k,
		     &e2) == 0) {
		for (size_t i = 0; i < k->ks_n; i++) {
			struct store_rec rec = {0};
			json_t *body = NULL;
			if (rec_load(st, K_APPROVAL, k->ks_id[i], REG_E_NOTFOUND, &rec, &body,
				     &e2) == 0) {
				int state = rec.sr_state;
				approval_key_scrub(json_object_get(body, "body"));
				if (state == APR_ST_PENDING) {
					/* (a CAS: approved meanwhile, it is left) */
					json_object_set_new(body, "decided", json_iso(now_ms));
					state = APR_ST_EXPIRED;
				}
				(void)approval_mark(st, &rec, body, state, now_ms, &e2);
			}
			json_decref(body);
			store_rec_clear(&rec);
		}
	}
	free(k);
}

static int
op_approval_decide(struct reg *r, struct store *st, const struct reg_actor *who,
		   const struct reg_request *rq, bool approve, int64_t now_ms, json_t **out,
		   struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0};
	json_t *body = NULL, *req, *res = NULL;
	const char *id = rq->rq_arg, *opn, *rname, *rrole, *rfp;
	struct reg_actor requester = {0};
	struct reg_request rq2 = {0};
	enum reg_op op2;
	struct reg_err e2;
	json_t *run = NULL; /* the AP body with its API key, for the replay */
	bool rec_ok = false;
	int rc = -1;

	call_target(c, id);
	if (id == NULL || strlen(id) != 1 + 2 * MSSP_REG_APPROVAL_ID_BYTES || id[0] != 'A' ||
	    !ascii_visible(id, 32))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown approval");
	if (rec_load(st, K_APPROVAL, id, REG_E_NOTFOUND, &rec, &body, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_NOTFOUND, "unknown approval");
		return -1;
	}
	req = json_object_get(body, "requester");
	opn = json_string_value(json_object_get(body, "op"));
	rname = json_string_value(json_object_get(req, "name"));
	rrole = json_string_value(json_object_get(req, "role"));
	rfp = json_string_value(json_object_get(req, "fp"));
	if (opn == NULL || op_by_name(opn, &op2) != 0 || rname == NULL || rrole == NULL ||
	    fp_parse(rfp, requester.ra_fp) != 0 ||
	    !(op2 == REG_OP_AP_CREATE || op2 == REG_OP_AP_UPDATE || op2 == REG_OP_AP_DELETE ||
	      op2 == REG_OP_ACCOUNT_CREATE || op2 == REG_OP_ACCOUNT_DELETE ||
	      op2 == REG_OP_SIGPROF_PUT || op2 == REG_OP_REGPROF_PUT ||
	      op2 == REG_OP_PEER_PUT || op2 == REG_OP_PEER_DELETE ||
	      op2 == REG_OP_ROUTE_PUT || op2 == REG_OP_ROUTE_DELETE)) {
		reg_err_set(e, REG_E_INTERNAL, "stored approval unreadable");
		goto out;
	}
	rec_ok = true;
	/* An AP's API key is kept (as given) only while the approval is
	 * pending: the copy `run` replays it, the record is written back
	 * without it, whatever the decision (rest.md). */
	if ((op2 == REG_OP_AP_CREATE || op2 == REG_OP_AP_UPDATE) &&
	    json_is_string(json_object_get(json_object_get(body, "body"), "api_key"))) {
		if ((run = json_deep_copy(json_object_get(body, "body"))) == NULL) {
			oom(e);
			goto out;
		}
		approval_key_scrub(json_object_get(body, "body"));
	}
	snprintf(requester.ra_name, sizeof requester.ra_name, "%s", rname);
	requester.ra_role = strcmp(rrole, "system") == 0 ? REG_ROLE_SYSTEM : REG_ROLE_NONE;
	if (requester.ra_role == REG_ROLE_NONE)
		(void)reg_role_parse(rrole, &requester.ra_role);
	call_detail(c, "%s of %s", opn, rname);
	if (rec.sr_state != APR_ST_PENDING) {
		reg_err_set(e, REG_E_GONE, "the approval is no longer pending");
		goto out;
	}
	if (rec.sr_expires_ms && now_ms >= rec.sr_expires_ms) {
		json_object_set_new(body, "decided", json_iso(now_ms));
		(void)approval_mark(st, &rec, body, APR_ST_EXPIRED, now_ms, &e2);
		reg_err_set(e, REG_E_GONE, "the approval expired");
		goto out;
	}
	json_object_set_new(body, "decided", json_iso(now_ms));
	json_object_set_new(body, approve ? "approver" : "rejected_by", actor_json(who));
	if (!approve) {
		if (approval_mark(st, &rec, body, APR_ST_REJECTED, now_ms, e) != 0)
			goto out;
		*out = json_pack("{s:s, s:s}", "approval", id, "state", "rejected");
		rc = *out ? 0 : oom(e);
		goto out;
	}
	/* M-01: another identity - a different account AND a different
	 * certificate (two sessions of one person are one identity). */
	if (strcmp(rname, actor_name(who)) == 0 ||
	    CRYPTO_memcmp(requester.ra_fp, who->ra_fp, 32) == 0) {
		reg_err_set(e, REG_E_FORBIDDEN, "the requester cannot approve their own request");
		goto out;
	}
	/* The requester must still be an admin with that certificate: an
	 * account deleted (or re-created with another certificate) since the
	 * request leaves its pending requests without a first person. */
	if (requester.ra_role == REG_ROLE_ADMIN &&
	    requester_still_admin(st, rname, rfp, e) != 0) {
		if (e->status == 409) {
			json_object_set_new(body, "error", json_integer(409));
			(void)approval_mark(st, &rec, body, APR_ST_FAILED, now_ms, &e2);
		}
		goto out;
	}
	/* Claim it first (CAS): two approvers never both run it. */
	if (approval_mark(st, &rec, body, APR_ST_APPROVED, now_ms, e) != 0)
		goto out;
	rec.sr_version++;
	rq2.rq_op = op2;
	rq2.rq_arg = json_string_value(json_object_get(body, "arg"));
	rq2.rq_arg2 = json_string_value(json_object_get(body, "arg2"));
	rq2.rq_body = run ? run : json_object_get(body, "body");
	if (json_is_null(rq2.rq_body))
		rq2.rq_body = NULL;
	c->c_action = reg_op_name(op2);
	c->c_approved = true;
	c->c_approver = actor_name(who);
	c->c_detail[0] = '\0';
	call_detail(c, "approval %s requested by %s approved by %s", id, rname,
		    actor_name(who));
	rc = dispatch(r, st, &requester, &rq2, now_ms, &res, e, c);
	if (rc < 0) {
		json_object_set_new(body, "error", json_integer(e->status));
		(void)approval_mark(st, &rec, body, APR_ST_FAILED, now_ms, &e2);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:o}", "approval", id, "state", "approved", "result", res);
	if (*out == NULL)
		rc = oom(e);
out:
	ap_secrets_wipe(run);
	json_decref(run);
	json_decref(body);
	store_rec_clear(&rec);
	if (rec_ok)
		approvals_scrub_expired(st, now_ms);
	return rc;
}

/* ======================================================================
 * The mesh: peers and routes (docs/internals/mesh.md)
 *
 * The bodies are meshconf.h's: parsed and written back in its canonical
 * form, so that the AE's meshconf_load reads exactly what was checked
 * here.  Peers follow the APs' rules: create and delete, and a change of
 * who the peer is (url, cert_sha256, ca_file) or of what it may ask
 * (profiles), need a second admin; name, rate, suspended and profile_map
 * do not (an AP's name and rate do not either).
 * ====================================================================== */

/* The peer body as stored (canonical) from `in`; 400 on a refusal. */
static int
peer_normalise(json_t *in, json_t **out, struct reg_err *e)
{
	struct mesh_peer p;
	char why[REG_ERR_MSG_MAX];

	*out = NULL;
	if (meshconf_peer_from_json(in, &p, why, sizeof why) != 0)
		return reg_err_set(e, REG_E_BAD, "%s", why);
	*out = meshconf_peer_to_json(&p);
	meshconf_peer_clear(&p);
	return *out ? 0 : oom(e);
}

static int
peer_load(struct store *st, const char *id, struct store_rec *rec, json_t **body,
	  struct reg_err *e)
{
	*body = NULL;
	if (!ascii_visible(id, MSSP_STORE_MAX_AP_ID))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown peer");
	if (rec_load(st, K_PEER, id, REG_E_NOTFOUND, rec, body, e) != 0) {
		if (e->status == 404)
			reg_err_set(e, REG_E_NOTFOUND, "unknown peer");
		return -1;
	}
	return 0;
}

struct peer_fp_scan {
	const char *ps_self;	/* the peer being written      */
	json_t *ps_fps;		/* its canonical fingerprints  */
	bool ps_found;
};

static int
peer_fp_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct peer_fp_scan *ps = arg;
	json_t *v;
	size_t i;

	(void)e;
	if (strcmp(rec->sr_name, ps->ps_self) == 0)
		return 0;
	json_array_foreach(json_object_get(body, "cert_sha256"), i, v) {
		if (json_is_string(v) && arr_has(ps->ps_fps, json_string_value(v))) {
			ps->ps_found = true;
			return 1;
		}
	}
	return 0;
}

/* One certificate, one identity: the mesh listener finds a peer by its
 * certificate, so no two peers pin one, and no ME account or AP uses a
 * peer's (a peer's certificate is no key to the ME or the AE). */
static int
peer_fp_conflicts(struct reg *r, struct store *st, const json_t *peer, const char *id,
		  struct reg_err *e)
{
	struct peer_fp_scan ps = {id, json_object_get(peer, "cert_sha256"), false};
	json_t *v;
	size_t i;

	if (rec_each(st, K_PEER, NULL, -1, NULL, MSSP_MESH_MAX_PEERS, peer_fp_cb, &ps, e) != 0)
		return -1;
	if (ps.ps_found)
		return reg_err_set(e, REG_E_CONFLICT, "the certificate is pinned by another peer");
	json_array_foreach(ps.ps_fps, i, v) {
		struct acct_found f = {0};
		bool ap;
		if (account_find_fp(st, json_string_value(v), &f, e) != 0)
			return -1;
		if (f.af_found)
			return reg_err_set(e, REG_E_CONFLICT,
					   "the certificate is an ME account's (separation of duties)");
		if (ap_has_fp(r, st, json_string_value(v), NULL, &ap, e) != 0)
			return -1;
		if (ap)
			return reg_err_set(e, REG_E_CONFLICT, "the certificate is an AP's");
	}
	return 0;
}

static int
op_peer_put(struct reg *r, struct store *st, const struct reg_actor *who,
	    const struct reg_request *rq, bool dual, int64_t now_ms, json_t **out,
	    struct reg_err *e, struct call *c)
{
	static const char *const trust_members[] = {"url", "cert_sha256", "ca_file", "profiles"};
	struct store_rec rec = {0};
	json_t *cur = NULL, *merged = NULL, *nw = NULL, *bid;
	const char *id = rq->rq_arg;
	bool exists, trust = false;
	uint64_t n;
	int rc = -1;

	if (!json_is_object(rq->rq_body))
		return reg_err_set(e, REG_E_BAD, "a peer is a JSON object");
	/* POST /peers names the peer in the body, PUT /peers/{id} in the
	 * path; when both do, they agree */
	bid = json_object_get(rq->rq_body, "id");
	if (id == NULL)
		id = json_string_value(bid);
	if (id == NULL || !ascii_visible(id, MSSP_STORE_MAX_AP_ID))
		return reg_err_set(e, REG_E_BAD, "id: the peer's MSSP_ID");
	call_target(c, id);
	if (bid && !(json_is_string(bid) && strcmp(json_string_value(bid), id) == 0))
		return reg_err_set(e, REG_E_BAD, "id: a peer's id does not change");
	if (r->r_mssp_id && strcmp(id, r->r_mssp_id) == 0)
		return reg_err_set(e, REG_E_CONFLICT, "a peer cannot be this node's own MSSP_ID");
	if (rec_load(st, K_PEER, id, REG_E_NOTFOUND, &rec, &cur, e) == 0)
		exists = true;
	else if (e->status == 404)
		exists = false;
	else
		return -1;
	/* an update changes the members it names (as ap.update) */
	merged = exists ? json_deep_copy(cur) : json_object();
	if (merged == NULL || json_object_update(merged, rq->rq_body) != 0 ||
	    json_object_set_new(merged, "id", json_string(id)) != 0) {
		oom(e);
		goto out;
	}
	if (peer_normalise(merged, &nw, e) != 0)
		goto out;
	if (!exists) {
		trust = true;
		call_detail(c, "create");
	} else {
		for (size_t i = 0; i < sizeof trust_members / sizeof trust_members[0]; i++) {
			bool ch = !json_same(json_object_get(cur, trust_members[i]),
					     json_object_get(nw, trust_members[i]));
			if (ch)
				call_detail(c, "%s changed", trust_members[i]);
			trust |= ch;
		}
	}
	if ((!exists || !json_equal(json_object_get(cur, "cert_sha256"),
				    json_object_get(nw, "cert_sha256"))) &&
	    peer_fp_conflicts(r, st, nw, id, e) != 0)
		goto out;
	if (!exists) {
		if (rec_count(st, K_PEER, -1, &n, e) != 0)
			goto out;
		if (n >= MSSP_MESH_MAX_PEERS) {
			reg_err_set(e, REG_E_CONFLICT, "at most %d peers", MSSP_MESH_MAX_PEERS);
			goto out;
		}
	}
	if (dual && trust) {
		rc = approval_create(st, who, rq, rq->rq_body, now_ms, out, e, c);
		goto out;
	}
	if (rec_store(st, K_PEER, id, NULL,
		      json_is_true(json_object_get(nw, "suspended")) ? PEER_ST_SUSPENDED
								  : PEER_ST_ACTIVE,
		      0, nw, exists ? rec.sr_version : STORE_REC_NEW, now_ms, NULL, e) != 0)
		goto out;
	*out = json_incref(nw);
	rc = exists ? 0 : REG_CREATED;
out:
	store_rec_clear(&rec);
	json_decref(cur);
	json_decref(merged);
	json_decref(nw);
	return rc;
}

struct route_scan {
	const char *rs_peer;
	uint64_t rs_n;
};

static int
route_peer_cb(void *arg, const struct store_rec *rec, json_t *body, struct reg_err *e)
{
	struct route_scan *rs = arg;
	const char *p = json_string_value(json_object_get(body, "peer"));

	(void)rec;
	(void)e;
	if (p && strcmp(p, rs->rs_peer) == 0)
		rs->rs_n++;
	return 0;
}

static int
op_peer_delete(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
	       bool dual, int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	struct route_scan rs = {rq->rq_arg, 0};
	json_t *cur;
	int rc;

	call_target(c, rq->rq_arg);
	if (peer_load(st, rq->rq_arg, &rec, &cur, e) != 0)
		return -1;
	json_decref(cur);
	/* Checked at the request and again when the approved delete runs.
	 * A route written between this scan and the delete names a peer
	 * that is gone: the AE drops such a route (its numbers stay local,
	 * never go elsewhere) and route.list still shows it for removal. */
	if (rec_each(st, K_ROUTE, NULL, -1, NULL, MSSP_MESH_MAX_ROUTES, route_peer_cb, &rs, e) !=
	    0) {
		store_rec_clear(&rec);
		return -1;
	}
	if (rs.rs_n > 0) {
		store_rec_clear(&rec);
		call_detail(c, "%" PRIu64 " routes name it", rs.rs_n);
		return reg_err_set(e, REG_E_CONFLICT, "routes still name the peer: delete them first");
	}
	if (dual) {
		store_rec_clear(&rec);
		return approval_create(st, who, rq, NULL, now_ms, out, e, c);
	}
	rc = store_rec_delete(st, K_PEER, rq->rq_arg, rec.sr_version, now_ms, &se);
	store_rec_clear(&rec);
	if (rc != 0)
		return reg_from_store(e, &se, true);
	*out = json_pack("{s:s, s:s}", "id", rq->rq_arg, "state", "deleted");
	return *out ? 0 : oom(e);
}

static bool
prefix_ok(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '+' || (n = strlen(s)) < 2 || n > MSSP_MESH_MAX_PREFIX)
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A route: dual control, like a peer (a route decides which MSSP may
 * prompt our users and answer for them: one administrator alone could
 * send a local user's number to a peer), audited. */
static int
op_route_put(struct reg *r, struct store *st, const struct reg_actor *who,
	     const struct reg_request *rq, bool dual, int64_t now_ms, json_t **out,
	     struct reg_err *e, struct call *c)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	struct mesh_route rt;
	char why[REG_ERR_MSG_MAX];
	json_t *body, *bp, *nw;
	const char *prefix = rq->rq_arg;
	bool created;
	uint64_t n;
	int rc;

	if (!json_is_object(rq->rq_body))
		return reg_err_set(e, REG_E_BAD, "a route is a JSON object");
	bp = json_object_get(rq->rq_body, "prefix");
	if (prefix == NULL)
		prefix = json_string_value(bp);
	if (!prefix_ok(prefix))
		return reg_err_set(e, REG_E_BAD, "prefix: + and 1 to 15 digits");
	call_target(c, prefix);
	if (bp && !(json_is_string(bp) && strcmp(json_string_value(bp), prefix) == 0))
		return reg_err_set(e, REG_E_BAD, "prefix: the path and the body differ");
	if ((body = json_deep_copy(rq->rq_body)) == NULL ||
	    json_object_set_new(body, "prefix", json_string(prefix)) != 0) {
		json_decref(body);
		return oom(e);
	}
	rc = meshconf_route_from_json(body, &rt, why, sizeof why);
	json_decref(body);
	if (rc != 0)
		return reg_err_set(e, REG_E_BAD, "%s", why);
	call_detail(c, "peer %s%s", rt.peer, rt.exact ? ", exact" : "");
	/* Routes name configured peers only, or this node ("local") */
	if (!(r->r_mssp_id && strcmp(rt.peer, r->r_mssp_id) == 0)) {
		if (store_rec_get(st, K_PEER, rt.peer, &rec, &se) != 0) {
			meshconf_route_clear(&rt);
			if (se.status == 101)
				return reg_err_set(e, REG_E_CONFLICT,
						   "the route names no configured peer");
			return reg_from_store(e, &se, false);
		}
		store_rec_clear(&rec);
	}
	nw = meshconf_route_to_json(&rt);
	meshconf_route_clear(&rt);
	if (nw == NULL)
		return oom(e);
	if (dual) {
		/* the approval keeps the canonical route: replayed as is */
		rc = approval_create(st, who, rq, nw, now_ms, out, e, c);
		json_decref(nw);
		return rc;
	}
	if (store_rec_get(st, K_ROUTE, prefix, &rec, &se) == 0) {
		store_rec_clear(&rec);
	} else if (se.status != 101) {
		json_decref(nw);
		return reg_from_store(e, &se, false);
	} else if (rec_count(st, K_ROUTE, -1, &n, e) != 0 || n >= MSSP_MESH_MAX_ROUTES) {
		json_decref(nw);
		return e->status == 500 ? -1
					: reg_err_set(e, REG_E_CONFLICT, "at most %d routes",
						      MSSP_MESH_MAX_ROUTES);
	}
	rc = rec_store(st, K_ROUTE, prefix, NULL, ROUTE_ST, 0, nw, STORE_REC_ANY, now_ms,
		       &created, e);
	if (rc != 0) {
		json_decref(nw);
		return -1;
	}
	*out = nw;
	return created ? REG_CREATED : 0;
}

static int
op_route_delete(struct store *st, const struct reg_actor *who, const struct reg_request *rq,
		bool dual, int64_t now_ms, json_t **out, struct reg_err *e, struct call *c)
{
	struct store_err se = {0};
	struct store_rec rec = {0};

	call_target(c, rq->rq_arg);
	if (!prefix_ok(rq->rq_arg))
		return reg_err_set(e, REG_E_NOTFOUND, "unknown route");
	if (dual) {
		if (store_rec_get(st, K_ROUTE, rq->rq_arg, &rec, &se) != 0)
			return se.status == 101 ? reg_err_set(e, REG_E_NOTFOUND, "unknown route")
						: reg_from_store(e, &se, false);
		store_rec_clear(&rec);
		return approval_create(st, who, rq, NULL, now_ms, out, e, c);
	}
	if (store_rec_delete(st, K_ROUTE, rq->rq_arg, STORE_REC_ANY, now_ms, &se) != 0) {
		if (se.status == 101)
			return reg_err_set(e, REG_E_NOTFOUND, "unknown route");
		return reg_from_store(e, &se, true);
	}
	*out = json_pack("{s:s, s:s}", "prefix", rq->rq_arg, "state", "deleted");
	return *out ? 0 : oom(e);
}

/* ======================================================================
 * Audit log, stats, session
 * ====================================================================== */

static int
audit_dir(const struct reg *r, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/audit", r->r_data_dir);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

struct audit_lines {
	json_t *al_arr;
	uint64_t al_last;
};

static int
audit_line_cb(void *arg, uint64_t seq, const char *line, size_t len)
{
	struct audit_lines *l = arg;
	json_error_t je;
	json_t *o = json_loadb(line, len, 0, &je);

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_pack("{s:I, s:b}", "seq", (json_int_t)seq, "unreadable", 1);
	}
	l->al_last = seq;
	return o && json_array_append_new(l->al_arr, o) == 0 ? 0 : -1;
}

static int
op_audit_list(struct reg *r, const struct reg_request *rq, json_t **out, struct reg_err *e)
{
	char dir[4096], log[4200];
	struct audit_lines l = {NULL, 0};
	struct store_err se = {0};
	const char *a = query_str(rq, "after");
	uint64_t after = 0;
	size_t limit;

	if (query_limit(rq, &limit, e) != 0)
		return -1;
	if (a && *a && parse_uint(a, INT64_MAX, &after) != 0)
		return reg_err_set(e, REG_E_BAD, "after: a sequence number");
	if (audit_dir(r, dir, sizeof dir) != 0 || audit_log_path(dir, r->r_node, log, sizeof log))
		return reg_err_set(e, REG_E_INTERNAL, "audit path too long");
	if ((l.al_arr = json_array()) == NULL)
		return oom(e);
	if (audit_read(log, after, limit, audit_line_cb, &l, &se) != 0) {
		json_decref(l.al_arr);
		LOG_EV("reg.audit_read_failed", "detail", se.detail);
		return reg_err_set(e, REG_E_INTERNAL, "audit log unreadable");
	}
	*out = json_pack("{s:o, s:o}", "entries", l.al_arr, "next",
			 json_array_size(l.al_arr) == limit ? json_integer((json_int_t)l.al_last)
							    : json_null());
	return *out ? 0 : oom(e);
}

static void
audit_problem_cb(void *arg, const struct audit_problem *p)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I, s:s}", "kind",
					     audit_problem_name(p->ap_kind), "line",
					     (json_int_t)p->ap_line, "seq", (json_int_t)p->ap_seq,
					     "message", p->ap_msg));
}

static int
op_audit_verify(struct reg *r, json_t **out, struct reg_err *e)
{
	char dir[4096], log[4200], head[4200], pub[4200];
	struct audit_verify_result res = {0};
	struct store_err se = {0};
	json_t *probs = json_array();
	int rc;

	if (probs == NULL)
		return oom(e);
	if (audit_dir(r, dir, sizeof dir) != 0 || audit_log_path(dir, r->r_node, log, sizeof log) ||
	    audit_head_path(dir, r->r_node, head, sizeof head) ||
	    snprintf(pub, sizeof pub, "%s/audit.pub", dir) >= (int)sizeof pub) {
		json_decref(probs);
		return reg_err_set(e, REG_E_INTERNAL, "audit path too long");
	}
	rc = audit_verify_file(log, head, access(pub, R_OK) == 0 ? pub : NULL, audit_problem_cb,
			       probs, &res, &se);
	if (rc < 0) {
		json_decref(probs);
		LOG_EV("reg.audit_verify_failed", "detail", se.detail);
		return reg_err_set(e, REG_E_INTERNAL, "audit log unreadable");
	}
	*out = json_pack("{s:b, s:I, s:I, s:b, s:o}", "ok", rc == 0, "entries",
			 (json_int_t)res.av_entries, "last_seq", (json_int_t)res.av_last_seq,
			 "head_ok", (int)res.av_head_ok, "problems", probs);
	return *out ? 0 : oom(e);
}

struct mbuf {
	char *mb_p;
	size_t mb_n;
};

static size_t
metrics_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct mbuf *b = ud;
	size_t n = size * nmemb;
	char *np;

	if (nmemb && n / nmemb != size)
		return 0;
	if (b->mb_n + n > MSSP_REG_METRICS_MAX_BYTES)
		return 0; /* too big: abort the transfer */
	if ((np = realloc(b->mb_p, b->mb_n + n + 1)) == NULL)
		return 0;
	b->mb_p = np;
	memcpy(b->mb_p + b->mb_n, ptr, n);
	b->mb_n += n;
	b->mb_p[b->mb_n] = '\0';
	return n;
}

/* Parse Prometheus text: "name{labels} value [timestamp]" lines into
 * {"name{labels}": value}.  Anything else is skipped. */
static json_t *
metrics_parse(char *txt)
{
	json_t *o = json_object();
	size_t count = 0;
	char *save = NULL;

	for (char *line = strtok_r(txt, "\n", &save); o && line && count < MSSP_REG_METRICS_MAX_SAMPLES;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end, *val, *stop;
		double d;

		if (*line == '#' || *line == '\0')
			continue;
		end = strchr(line, '{') ? strrchr(line, '}') : strchr(line, ' ');
		if (end == NULL)
			continue;
		if (*end == '}')
			end++;
		if (*end != ' ')
			continue;
		*end = '\0';
		val = end + 1;
		d = strtod(val, &stop);
		if (stop == val || (*stop != '\0' && *stop != ' ' && *stop != '\r') || d != d ||
		    d > 1e300 || d < -1e300 || !text_ok(line, MSSP_METRICS_MAX_NAME +
								   MSSP_METRICS_MAX_LABELS + 2, false))
			continue;
		json_object_set_new(o, line, json_real(d));
		count++;
	}
	return o;
}

static json_t *
metrics_fetch(const char *url)
{
	CURL *h = curl_easy_init();
	struct mbuf b = {NULL, 0};
	long code = 0;
	json_t *o = NULL;

	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)MSSP_REG_METRICS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)MSSP_REG_METRICS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MSSP_REG_METRICS_MAX_BYTES);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, metrics_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(h) == CURLE_OK &&
	    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 &&
	    b.mb_p)
		o = metrics_parse(b.mb_p);
	curl_easy_cleanup(h);
	free(b.mb_p);
	return o;
}

static int
op_stats(struct reg *r, struct store *st, json_t **out, struct reg_err *e)
{
	struct store_counts sc = {0};
	struct store_err se = {0};
	uint64_t aps, pending, jobs = 0, n;
	json_t *o;

	if (store_counts(st, &sc, &se) != 0)
		return reg_from_store(e, &se, false);
	if (rec_count(st, K_AP, -1, &aps, e) != 0 ||
	    rec_count(st, K_APPROVAL, APR_ST_PENDING, &pending, e) != 0)
		return -1;
	/* Open jobs: every state before done / failed / expired (reg.h). */
	for (int s = REG_JOB_REQUESTED; s <= REG_JOB_ISSUED; s++) {
		if (rec_count(st, K_JOB, s, &n, e) != 0)
			return -1;
		jobs += n;
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "users",
		      (json_int_t)sc.sc_users, "users_suspended", (json_int_t)sc.sc_users_suspended,
		      "devices", (json_int_t)sc.sc_devices, "keys", (json_int_t)sc.sc_keys,
		      "keys_active", (json_int_t)sc.sc_keys_active, "transactions_open",
		      (json_int_t)sc.sc_tx_open, "aps", (json_int_t)aps, "approvals_pending",
		      (json_int_t)pending, "jobs_open", (json_int_t)jobs);
	if (o == NULL)
		return oom(e);
	if (r->r_metrics_url) {
		json_t *m = metrics_fetch(r->r_metrics_url);
		json_object_set_new(o, "metrics", m ? m : json_null());
	}
	*out = o;
	return 0;
}

/* ======================================================================
 * The dispatcher
 * ====================================================================== */

static int
msisdn_arg(const struct reg_request *rq, char msisdn[MSSP_STORE_MAX_MSISDN + 1],
	   struct reg_err *e, struct call *c)
{
	if (reg_msisdn_norm(rq->rq_arg, msisdn, e) != 0)
		return -1;
	call_target(c, msisdn);
	return 0;
}

static int
dispatch(struct reg *r, struct store *st, const struct reg_actor *who,
	 const struct reg_request *rq, int64_t now_ms, json_t **out, struct reg_err *e,
	 struct call *c)
{
	/* Dual control applies to an admin's own request; a system caller
	 * (msspd init) and an approved request run at once. */
	bool dual = who->ra_role == REG_ROLE_ADMIN && !c->c_approved;
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];

	switch (rq->rq_op) {
	case REG_OP_SESSION:
		*out = json_pack("{s:s, s:s, s:s}", "account", actor_name(who), "role",
				 reg_role_name(who->ra_role), "node", r->r_node);
		return *out ? 0 : oom(e);
	case REG_OP_STATS:
		return op_stats(r, st, out, e);
	case REG_OP_USER_LIST:
		return op_user_list(st, rq, out, e);
	case REG_OP_USER_CREATE:
		return op_user_create(st, rq, now_ms, out, e, c);
	case REG_OP_USER_GET:
		return op_user_get(r, st, rq, out, e);
	case REG_OP_USER_UPDATE:
		return op_user_update(st, rq, now_ms, out, e, c);
	case REG_OP_USER_SUSPEND:
		return op_user_state(st, rq, STORE_USER_SUSPENDED, now_ms, out, e, c);
	case REG_OP_USER_RESUME:
		return op_user_state(st, rq, STORE_USER_ACTIVE, now_ms, out, e, c);
	case REG_OP_USER_DELETE:
		return op_user_delete(r, st, rq, now_ms, out, e, c);
	case REG_OP_ACTIVATION_CREATE:
		return op_activation_create(st, who, rq, now_ms, out, e, c);
	case REG_OP_DEVICE_DELETE:
		return op_device_delete(r, st, rq, now_ms, out, e, c);
	case REG_OP_KEY_REQUEST:
		if (msisdn_arg(rq, msisdn, e, c) != 0)
			return -1;
		return reg_op_key_request(r, st, who, msisdn, rq->rq_body, now_ms, out, e);
	case REG_OP_PIN_UNBLOCK:
		if (msisdn_arg(rq, msisdn, e, c) != 0)
			return -1;
		if (!store_id_ok(rq->rq_arg2, MSSP_STORE_MAX_KEY_ID))
			return reg_err_set(e, REG_E_NOTFOUND, "unknown key");
		call_detail(c, "key %s", rq->rq_arg2);
		return reg_op_pin_unblock(r, st, who, msisdn, rq->rq_arg2, now_ms, out, e);
	case REG_OP_JOB_GET:
		if (!ascii_visible(rq->rq_arg, 32))
			return reg_err_set(e, REG_E_NOTFOUND, "unknown job");
		return reg_op_job_get(r, st, rq->rq_arg, out, e);
	case REG_OP_CERT_LIST:
		return op_cert_list(st, rq, out, e);
	case REG_OP_CERT_REVOKE:
		return op_cert_revoke(r, st, rq, now_ms, out, e, c);
	case REG_OP_AP_LIST:
		return op_list_kind(st, K_AP, "aps", MSSP_REG_MAX_APS, out, e);
	case REG_OP_AP_GET: {
		struct store_rec rec = {0};
		if (ap_load(st, rq->rq_arg, &rec, out, e) != 0)
			return -1;
		store_rec_clear(&rec);
		return 0;
	}
	case REG_OP_AP_CREATE:
		return op_ap_create(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_AP_UPDATE:
		return op_ap_update(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_AP_SUSPEND:
		return op_ap_suspend(r, st, rq, true, now_ms, out, e, c);
	case REG_OP_AP_RESUME:
		return op_ap_suspend(r, st, rq, false, now_ms, out, e, c);
	case REG_OP_AP_DELETE:
		return op_ap_delete(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_SIGPROF_LIST:
		return op_list_kind(st, K_SIGPROF, "profiles", MSSP_REG_MAX_PROFILES, out, e);
	case REG_OP_SIGPROF_PUT:
		return op_profile_put(st, who, rq, false, dual, now_ms, out, e, c);
	case REG_OP_REGPROF_LIST:
		return op_list_kind(st, K_REGPROF, "profiles", MSSP_REG_MAX_PROFILES, out, e);
	case REG_OP_REGPROF_PUT:
		return op_profile_put(st, who, rq, true, dual, now_ms, out, e, c);
	case REG_OP_ACCOUNT_LIST:
		return op_list_kind(st, K_ACCOUNT, "accounts", MSSP_REG_MAX_ACCOUNTS, out, e);
	case REG_OP_ACCOUNT_CREATE:
		return op_account_create(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_ACCOUNT_DELETE:
		return op_account_delete(st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_APPROVAL_LIST:
		return op_approval_list(st, rq, now_ms, out, e);
	case REG_OP_APPROVAL_APPROVE:
	case REG_OP_APPROVAL_REJECT:
		if (c->c_approved) /* an approval never approves another */
			return reg_err_set(e, REG_E_INTERNAL, "nested approval");
		return op_approval_decide(r, st, who, rq, rq->rq_op == REG_OP_APPROVAL_APPROVE,
					  now_ms, out, e, c);
	case REG_OP_AUDIT_LIST:
		return op_audit_list(r, rq, out, e);
	case REG_OP_AUDIT_VERIFY:
		return op_audit_verify(r, out, e);
	case REG_OP_KEYS_SCAN:
		return reg_keys_scan(r, st, who, now_ms, out, e);
	case REG_OP_PEER_LIST:
		return op_list_kind(st, K_PEER, "peers", MSSP_MESH_MAX_PEERS, out, e);
	case REG_OP_PEER_GET: {
		struct store_rec rec = {0};
		if (peer_load(st, rq->rq_arg, &rec, out, e) != 0)
			return -1;
		store_rec_clear(&rec);
		return 0;
	}
	case REG_OP_PEER_PUT:
		return op_peer_put(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_PEER_DELETE:
		return op_peer_delete(st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_ROUTE_LIST:
		return op_list_kind(st, K_ROUTE, "routes", MSSP_MESH_MAX_ROUTES, out, e);
	case REG_OP_ROUTE_PUT:
		return op_route_put(r, st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_ROUTE_DELETE:
		return op_route_delete(st, who, rq, dual, now_ms, out, e, c);
	case REG_OP_COUNT:
		break;
	}
	return reg_err_set(e, REG_E_BAD, "unknown operation");
}

/* AP REST secrets never leave the ME (rest.md): the API key and the
 * password hash in any answer (an AP, a list, an approval) become
 * "api_key_set"/"rest_password_set": true. */
static void
secrets_redact(json_t *j, int depth)
{
	static const char *const keys[] = {"api_key", "rest_password_hash", "rest_password"};
	static const char *const flags[] = {"api_key_set", "rest_password_set",
					    "rest_password_set"};
	const char *k;
	json_t *v;
	size_t i;

	if (depth > MSSP_JSON_MAX_DEPTH + 8)
		return;
	if (json_is_array(j)) {
		for (i = 0; i < json_array_size(j); i++)
			secrets_redact(json_array_get(j, i), depth + 1);
		return;
	}
	if (!json_is_object(j))
		return;
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (json_object_get(j, keys[i])) {
			json_t *sv = json_object_get(j, keys[i]);
			bool set = !json_is_null(sv);
			/* wiped: the answer is freed without wiping */
			if (json_is_string(sv))
				OPENSSL_cleanse((char *)json_string_value(sv), json_string_length(sv));
			json_object_del(j, keys[i]);
			if (set)
				json_object_set_new(j, flags[i], json_true());
		}
	}
	json_object_foreach(j, k, v) {
		secrets_redact(v, depth + 1);
	}
}

int
reg_call(struct reg *r, struct store *st, const struct reg_actor *who,
	 const struct reg_request *rq, int64_t now_ms, json_t **out, struct reg_err *e)
{
	struct call c;
	struct reg_err ae;
	const char *outcome;
	int rc;

	if (out)
		*out = NULL;
	if (e)
		memset(e, 0, sizeof *e);
	if (r == NULL || st == NULL || who == NULL || rq == NULL || out == NULL ||
	    !op_valid(rq->rq_op))
		return reg_err_set(e, REG_E_BAD, "unknown operation");
	memset(&c, 0, sizeof c);
	c.c_action = reg_op_name(rq->rq_op);
	call_target(&c, rq->rq_arg);
	if (!reg_op_allowed(rq->rq_op, who->ra_role)) {
		call_detail(&c, "role %s may not", reg_role_name(who->ra_role));
		(void)audit_write(r, who, c.c_action, c.c_target, "refused", c.c_detail, now_ms,
				  &ae);
		return reg_err_set(e, REG_E_FORBIDDEN, "the role may not call this operation");
	}
	if (rq->rq_op == REG_OP_AUDIT_LIST || rq->rq_op == REG_OP_AUDIT_VERIFY) {
		/* Who read the log is recorded before the reading (fail closed). */
		if (audit_write(r, who, c.c_action, c.c_target, "ok", "read", now_ms, e) != 0)
			return -1;
		return dispatch(r, st, who, rq, now_ms, out, e, &c);
	}
	rc = dispatch(r, st, who, rq, now_ms, out, e, &c);
	if (rc >= 0 && *out == NULL) /* a handler's bug: never 0 without out */
		rc = reg_err_set(e, REG_E_INTERNAL, "no answer");
	if (rc >= 0)
		secrets_redact(*out, 0);
	if (!reg_op_mutates(rq->rq_op))
		return rc;
	/* reg_keys_scan records its own "keys.scan" summary (it is also run
	 * locally, without reg_call): only its failure is recorded here. */
	if (rq->rq_op == REG_OP_KEYS_SCAN && rc >= 0)
		return rc;
	if (rc < 0) {
		outcome = e->status == 403 ? "refused" : "failed";
		call_detail(&c, "%d: %s", e->status, e->msg);
	} else {
		outcome = rc == REG_PENDING ? "pending" : "ok";
	}
	if (audit_write(r, who, c.c_action, c.c_target, outcome, c.c_detail, now_ms, &ae) != 0 &&
	    rc >= 0) {
		/* Done but not recorded: the caller must not report success. */
		json_decref(*out);
		*out = NULL;
		*e = ae;
		return -1;
	}
	return rc;
}

/* ======================================================================
 * Setup and seeding
 * ====================================================================== */

struct reg *
reg_new(const struct reg_conf *c, struct reg_err *e)
{
	struct reg *r;
	char path[4200];
	struct pki_err pe = {0};

	if (c == NULL || c->rc_audit == NULL || c->rc_data_dir == NULL || c->rc_node == NULL ||
	    strlen(c->rc_node) == 0 || strlen(c->rc_node) >= sizeof r->r_node) {
		reg_err_set(e, REG_E_INTERNAL, "registration: bad configuration");
		return NULL;
	}
	if ((r = calloc(1, sizeof *r)) == NULL) {
		oom(e);
		return NULL;
	}
	snprintf(r->r_node, sizeof r->r_node, "%s", c->rc_node);
	r->r_data_dir = strdup(c->rc_data_dir);
	r->r_audit = c->rc_audit;
	r->r_ca = c->rc_ca;
	r->r_on_ap_change = c->rc_on_ap_change;
	r->r_arg = c->rc_arg;
	r->r_metrics_url = c->rc_metrics_url ? strdup(c->rc_metrics_url) : NULL;
	r->r_mssp_id = c->rc_mssp_id && c->rc_mssp_id[0] ? strdup(c->rc_mssp_id) : NULL;
	pki_keycheck_known_init(&r->r_compromised);
	if (pthread_mutex_init(&r->r_ca_lock, NULL) != 0) {
		free(r->r_data_dir);
		free(r->r_metrics_url);
		free(r->r_mssp_id);
		free(r);
		reg_err_set(e, REG_E_INTERNAL, "registration: mutex");
		return NULL;
	}
	if (r->r_data_dir == NULL || (c->rc_metrics_url && r->r_metrics_url == NULL) ||
	    (c->rc_mssp_id && c->rc_mssp_id[0] && r->r_mssp_id == NULL)) {
		oom(e);
		goto fail;
	}
	if (r->r_metrics_url)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	/* K-06: the compromised-key list, when the operator keeps one. */
	snprintf(path, sizeof path, "%s/keys/compromised.txt", r->r_data_dir);
	if (access(path, F_OK) == 0) {
		if (pki_keycheck_known_load(&r->r_compromised, path, &pe) != 0) {
			LOG_EV("reg.compromised_list", "detail", pe.detail);
			reg_err_set(e, REG_E_INTERNAL, "compromised-key list unreadable");
			goto fail;
		}
	} else {
		pki_keycheck_known_seal(&r->r_compromised);
	}
	if (reg_enrol_init(r, e) != 0)
		goto fail;
	return r;
fail:
	pki_keycheck_known_free(&r->r_compromised);
	pthread_mutex_destroy(&r->r_ca_lock);
	free(r->r_data_dir);
	free(r->r_metrics_url);
	free(r->r_mssp_id);
	free(r);
	return NULL;
}

void
reg_free(struct reg *r)
{
	if (r == NULL)
		return;
	reg_enrol_free(r);
	pki_keycheck_known_free(&r->r_compromised);
	pthread_mutex_destroy(&r->r_ca_lock);
	free(r->r_data_dir);
	free(r->r_metrics_url);
	free(r->r_mssp_id);
	free(r);
}

static const struct reg_actor system_actor = {"system", REG_ROLE_SYSTEM, {0}};

/* One audit record for a seeding call; a failed record fails the seed. */
static int
seed_audit(struct reg *r, const char *action, struct call *c, int rc, int64_t now_ms,
	   struct reg_err *e)
{
	struct reg_err ae;

	if (rc < 0)
		call_detail(c, "%d: %s", e->status, e->msg);
	if (audit_write(r, &system_actor, action, c->c_target, rc < 0 ? "failed" : "ok",
			c->c_detail, now_ms, &ae) != 0 &&
	    rc >= 0) {
		*e = ae;
		return -1;
	}
	return rc < 0 ? -1 : 0;
}

int
reg_account_seed(struct reg *r, struct store *st, const char *name, enum reg_role role,
		 const unsigned char fp[32], int64_t now_ms, struct reg_err *e)
{
	struct reg_request rq = {.rq_op = REG_OP_ACCOUNT_CREATE};
	struct call c = {0};
	char hex[FP_HEX + 1];
	json_t *in, *acct = NULL, *out = NULL;
	int rc;

	if (r == NULL || st == NULL || name == NULL || fp == NULL || role == REG_ROLE_SYSTEM ||
	    role == REG_ROLE_NONE)
		return reg_err_set(e, REG_E_BAD, "account: bad arguments");
	hex_encode(fp, 32, hex);
	in = json_pack("{s:s, s:s, s:s}", "name", name, "role", reg_role_name(role),
		       "cert_sha256", hex);
	if (in == NULL)
		return oom(e);
	call_target(&c, name);
	rc = account_normalise(in, &acct, e);
	if (rc == 0)
		rc = account_create_checked(r, st, &system_actor, &rq, acct, false, now_ms, &out, e,
					    &c);
	json_decref(in);
	json_decref(acct);
	json_decref(out);
	return seed_audit(r, "account.create", &c, rc, now_ms, e);
}

int
reg_ap_seed(struct reg *r, struct store *st, json_t *ap, int64_t now_ms, struct reg_err *e)
{
	struct reg_request rq = {.rq_op = REG_OP_AP_CREATE, .rq_body = ap};
	struct call c = {0};
	json_t *norm = NULL, *out = NULL;
	int rc;

	if (r == NULL || st == NULL)
		return reg_err_set(e, REG_E_BAD, "AP: bad arguments");
	rc = ap_normalise(ap, &norm, e);
	if (rc == 0) {
		call_target(&c, json_string_value(json_object_get(norm, "id")));
		rc = ap_create_checked(r, st, &system_actor, &rq, norm, false, now_ms, &out, e,
				       &c);
	}
	ap_secrets_wipe(norm); /* stored by now (out is norm) */
	json_decref(norm);
	json_decref(out);
	return seed_audit(r, "ap.create", &c, rc, now_ms, e);
}

int
reg_profile_seed(struct reg *r, struct store *st, bool registration, json_t *prof,
		 int64_t now_ms, struct reg_err *e)
{
	struct call c = {0};
	json_t *norm = NULL;
	int rc;

	if (r == NULL || st == NULL)
		return reg_err_set(e, REG_E_BAD, "profile: bad arguments");
	rc = registration ? regprof_normalise(prof, NULL, &norm, e)
			  : sigprof_normalise(prof, NULL, &norm, e);
	if (rc == 0) {
		call_target(&c, json_string_value(
					json_object_get(norm, registration ? "name" : "uri")));
		rc = profile_put(st, registration, norm, now_ms, e);
	}
	json_decref(norm);
	return seed_audit(r, registration ? "regprof.put" : "sigprof.put", &c, rc, now_ms, e);
}
