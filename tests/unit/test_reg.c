/*
 * test_reg.c - roles/reg.c, the ME's operations, against a REAL store
 * (SQLite in a mkdtemp() directory), a REAL CA (pki_ca_init) and a REAL
 * audit log (audit_open with a signing key): the role matrix, dual
 * control (M-01, P-09), users, activation codes, APs, profiles, accounts
 * and the AP/account separation, certificate revocation, the audit ops,
 * and one audit record per call.
 */
#include "teststore.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/ca.h"
#include "roles/reg.h"
#include "roles/reg_int.h" /* reg_index_cert_serial: what reg_enrol.c calls */
#include "store/audit.h"
#include "util/clock.h"
#include "util/limits.h"

#define NODE "node1"
#define PASS "correct horse battery staple"
#define ALICE "+35847000001"

struct fx {
	char name[32];
	char dir[512];
	char audit_dir[600];
	struct store *st;
	struct audit *au;
	struct pki_ca *ca;
	struct reg *r;
	int ap_changes;
	struct reg_err e;
	int64_t now;
};

static int fx_seq;

static struct reg_actor A_ADMIN = {"admin", REG_ROLE_ADMIN, {0}};
static struct reg_actor A_ADMIN2 = {"admin2", REG_ROLE_ADMIN, {0}};
static struct reg_actor A_ADMIN3 = {"admin3", REG_ROLE_ADMIN, {0}}; /* admin's certificate */
static struct reg_actor A_RA = {"ra", REG_ROLE_RA, {0}};
static struct reg_actor A_AUD = {"auditor", REG_ROLE_AUDITOR, {0}};
static struct reg_actor A_NONE = {"nobody", REG_ROLE_NONE, {0}};
static struct reg_actor A_SYS = {"system", REG_ROLE_SYSTEM, {0}};

static void
on_ap(void *arg)
{
	((struct fx *)arg)->ap_changes++;
}

static void
fp_fill(unsigned char fp[32], unsigned char b)
{
	memset(fp, b, 32);
}

static void
fp_hex(unsigned char b, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", b);
}

static int
group_setup(void **state)
{
	(void)state;
	fp_fill(A_ADMIN.ra_fp, 0x11);
	fp_fill(A_ADMIN2.ra_fp, 0x22);
	fp_fill(A_ADMIN3.ra_fp, 0x11);
	fp_fill(A_RA.ra_fp, 0x33);
	fp_fill(A_AUD.ra_fp, 0x44);
	fp_fill(A_NONE.ra_fp, 0x66);
	return ts_setup("test_reg");
}

static struct reg *
new_reg(struct fx *f, bool with_ca)
{
	struct reg_conf c = {
		.rc_node = NODE,
		.rc_data_dir = f->dir,
		.rc_audit = f->au,
		.rc_ca = with_ca ? f->ca : NULL,
		.rc_on_ap_change = on_ap,
		.rc_arg = f,
	};
	struct reg_err e = {0};
	struct reg *r = reg_new(&c, &e);

	if (r == NULL)
		fail_msg("reg_new: %d %s", e.status, e.msg);
	return r;
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct store_err se = {0};
	struct pki_err pe = {0};
	struct pki_ca_init_params p = {0};
	char key[700], cadir[600];
	unsigned char fp[32];

	assert_non_null(f);
	snprintf(f->name, sizeof f->name, "t%d", fx_seq++);
	snprintf(f->dir, sizeof f->dir, "%s/%s", ts_dir, f->name);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(f->audit_dir, sizeof f->audit_dir, "%s/audit", f->dir);
	if (audit_keygen(f->audit_dir, &se) != 0)
		fail_msg("audit_keygen: %d %s", se.status, se.detail);
	snprintf(key, sizeof key, "%s/audit.key", f->audit_dir);
	f->au = audit_open(f->audit_dir, NODE, key, &se);
	if (f->au == NULL)
		fail_msg("audit_open: %d %s", se.status, se.detail);
	snprintf(cadir, sizeof cadir, "%s/ca", f->dir);
	p.ci_dir = cadir;
	p.ci_alg = PKI_CA_KEY_EC_P256;
	p.ci_cn = "Test User CA";
	p.ci_o = "OpenMSSP Test";
	p.ci_c = "CH";
	p.ci_passphrase = PASS;
	p.ci_passphrase_len = strlen(PASS);
	f->ca = pki_ca_init(&p, &pe);
	if (f->ca == NULL)
		fail_msg("pki_ca_init: %d %s", pe.status, pe.detail);
	f->st = ts_must_open(f->name, STORE_OPEN_CREATE);
	f->now = (int64_t)time(NULL) * 1000;
	f->r = new_reg(f, true);
	/* The accounts msspd init makes: two admins, an RA, an auditor. */
	fp_fill(fp, 0x11);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin", REG_ROLE_ADMIN, fp, f->now, &f->e), 0);
	fp_fill(fp, 0x22);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin2", REG_ROLE_ADMIN, fp, f->now, &f->e), 0);
	fp_fill(fp, 0x33);
	assert_int_equal(reg_account_seed(f->r, f->st, "ra", REG_ROLE_RA, fp, f->now, &f->e), 0);
	fp_fill(fp, 0x44);
	assert_int_equal(reg_account_seed(f->r, f->st, "auditor", REG_ROLE_AUDITOR, fp, f->now,
					  &f->e), 0);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	reg_free(f->r);
	store_close(f->st);
	pki_ca_free(f->ca);
	audit_close(f->au);
	free(f);
	return 0;
}

/* reg_call with JSON texts for body and query; *out (may be NULL). */
static int
call(struct fx *f, const struct reg_actor *who, enum reg_op op, const char *arg, const char *arg2,
     const char *body, const char *query, json_t **out)
{
	struct reg_request rq = {.rq_op = op, .rq_arg = arg, .rq_arg2 = arg2};
	json_error_t je;
	json_t *o = NULL;
	int rc;

	if (body) {
		rq.rq_body = json_loads(body, 0, &je);
		if (rq.rq_body == NULL)
			fail_msg("test body does not parse: %s", je.text);
	}
	if (query) {
		rq.rq_query = json_loads(query, 0, &je);
		assert_non_null(rq.rq_query);
	}
	rc = reg_call(f->r, f->st, who, &rq, f->now, &o, &f->e);
	if (rc >= 0)
		assert_non_null(o);
	else
		assert_null(o);
	json_decref(rq.rq_body);
	json_decref(rq.rq_query);
	if (out)
		*out = o;
	else
		json_decref(o);
	return rc;
}

static void
expect_fail(struct fx *f, int rc, int status)
{
	if (rc != -1 || f->e.status != status)
		fail_msg("expected -1/%d, got %d/%d (%s)", status, rc, f->e.status, f->e.msg);
}

/* Lines in the audit log. */
static size_t
audit_count(struct fx *f)
{
	char path[700];
	FILE *fp;
	size_t n = 0;
	int c;

	snprintf(path, sizeof path, "%s/%s.log", f->audit_dir, NODE);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	while ((c = fgetc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

/* The last audit entry (a new reference). */
static json_t *
audit_last(struct fx *f)
{
	char path[700];
	char *txt, *last;
	size_t len;
	json_t *o;

	snprintf(path, sizeof path, "%s/%s.log", f->audit_dir, NODE);
	txt = tu_slurp(path, &len);
	assert_true(len > 0 && txt[len - 1] == '\n');
	txt[len - 1] = '\0';
	last = strrchr(txt, '\n');
	o = json_loads(last ? last + 1 : txt, 0, NULL);
	free(txt);
	assert_non_null(o);
	return o;
}

static void
expect_audit(struct fx *f, const char *action, const char *actor, const char *outcome)
{
	json_t *a = audit_last(f);

	assert_string_equal(json_string_value(json_object_get(a, "action")), action);
	assert_string_equal(json_string_value(json_object_get(a, "actor")), actor);
	assert_string_equal(json_string_value(json_object_get(a, "outcome")), outcome);
	json_decref(a);
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* tmpl with every '@' replaced by `hex`. */
static void
subst(char *out, size_t cap, const char *tmpl, const char *hex)
{
	size_t n = 0;

	for (const char *p = tmpl; *p; p++) {
		const char *ins = *p == '@' ? hex : NULL;
		size_t len = ins ? strlen(ins) : 1;
		assert_true(n + len < cap);
		memcpy(out + n, ins ? ins : p, len);
		n += len;
	}
	out[n] = '\0';
}

/* An AP body with one certificate fingerprint of bytes `b`. */
static void
ap_body(char *out, size_t cap, const char *id, unsigned char b, const char *profiles)
{
	char hex[65];

	fp_hex(b, hex);
	snprintf(out, cap,
		 "{\"id\":\"%s\",\"name\":\"Shop\",\"cert_sha256\":[\"%s\"],\"profiles\":%s,"
		 "\"modes\":[\"synch\"],\"notify_urls\":[],\"rate\":10}",
		 id, hex, profiles ? profiles : "[\"*\"]");
}

static void
make_user(struct fx *f, const char *msisdn)
{
	char body[256];

	snprintf(body, sizeof body,
		 "{\"msisdn\":\"%s\",\"given_name\":\"Anna\",\"surname\":\"Muster\","
		 "\"id_number\":\"PNOCH-1\",\"country\":\"CH\",\"lang\":\"de\",\"name\":\"Anna\"}",
		 msisdn);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_CREATE, NULL, NULL, body, NULL, NULL),
			 REG_CREATED);
}

/* ---- the role matrix ------------------------------------------------- */

#define AD 1u
#define RA 2u
#define AU 4u
#define ALL (AD | RA | AU)

/* The table of me.md, written out again independently of reg.c. */
static const struct {
	enum reg_op op;
	unsigned roles;
	bool mutates;
} matrix[] = {
	{REG_OP_SESSION, ALL, false},		{REG_OP_STATS, ALL, false},
	{REG_OP_USER_LIST, ALL, false},		{REG_OP_USER_CREATE, AD | RA, true},
	{REG_OP_USER_GET, ALL, false},		{REG_OP_USER_UPDATE, AD | RA, true},
	{REG_OP_USER_SUSPEND, AD | RA, true},	{REG_OP_USER_RESUME, AD | RA, true},
	{REG_OP_USER_DELETE, AD | RA, true},	{REG_OP_ACTIVATION_CREATE, AD | RA, true},
	{REG_OP_DEVICE_DELETE, AD | RA, true},	{REG_OP_KEY_REQUEST, AD | RA, true},
	{REG_OP_PIN_UNBLOCK, AD | RA, true},	{REG_OP_JOB_GET, ALL, false},
	{REG_OP_CERT_LIST, ALL, false},		{REG_OP_CERT_REVOKE, AD | RA, true},
	{REG_OP_AP_LIST, AD | AU, false},	{REG_OP_AP_GET, AD | AU, false},
	{REG_OP_AP_CREATE, AD, true},		{REG_OP_AP_UPDATE, AD, true},
	{REG_OP_AP_SUSPEND, AD, true},		{REG_OP_AP_RESUME, AD, true},
	{REG_OP_AP_DELETE, AD, true},		{REG_OP_SIGPROF_LIST, ALL, false},
	{REG_OP_SIGPROF_PUT, AD, true},		{REG_OP_REGPROF_LIST, ALL, false},
	{REG_OP_REGPROF_PUT, AD, true},		{REG_OP_ACCOUNT_LIST, AD | AU, false},
	{REG_OP_ACCOUNT_CREATE, AD, true},	{REG_OP_ACCOUNT_DELETE, AD, true},
	{REG_OP_APPROVAL_LIST, AD | AU, false}, {REG_OP_APPROVAL_APPROVE, AD, true},
	{REG_OP_APPROVAL_REJECT, AD, true},	{REG_OP_AUDIT_LIST, AD | AU, false},
	{REG_OP_AUDIT_VERIFY, AD | AU, false},	{REG_OP_KEYS_SCAN, AD, true},
	{REG_OP_PEER_LIST, AD | AU, false},	{REG_OP_PEER_GET, AD | AU, false},
	{REG_OP_PEER_PUT, AD, true},		{REG_OP_PEER_DELETE, AD, true},
	{REG_OP_ROUTE_LIST, AD | AU, false},	{REG_OP_ROUTE_PUT, AD, true},
	{REG_OP_ROUTE_DELETE, AD, true},
};

static void
test_role_matrix(void **state)
{
	struct fx *f = *state;
	const struct reg_actor *who[] = {&A_ADMIN, &A_RA, &A_AUD, &A_NONE};
	const unsigned bit[] = {AD, RA, AU, 0};

	assert_int_equal(sizeof matrix / sizeof matrix[0], REG_OP_COUNT);
	for (size_t i = 0; i < REG_OP_COUNT; i++) {
		enum reg_op op = matrix[i].op;

		assert_int_equal(reg_op_mutates(op), matrix[i].mutates);
		assert_true(reg_op_allowed(op, REG_ROLE_SYSTEM));
		assert_string_not_equal(reg_op_name(op), "?");
		for (size_t w = 0; w < 4; w++) {
			bool allowed = (matrix[i].roles & bit[w]) != 0;
			size_t before = audit_count(f);
			int rc;

			assert_int_equal(reg_op_allowed(op, who[w]->ra_role), allowed);
			/* No arguments: an allowed op fails validation (or reads),
			 * a refused one is 403 before anything else. */
			rc = call(f, who[w], op, NULL, NULL, NULL, NULL, NULL);
			if (!allowed) {
				expect_fail(f, rc, 403);
				assert_int_equal(f->e.code, 104);
				assert_int_equal(audit_count(f), before + 1);
				expect_audit(f, reg_op_name(op), who[w]->ra_name, "refused");
			} else {
				bool audited = matrix[i].mutates || op == REG_OP_AUDIT_LIST ||
					       op == REG_OP_AUDIT_VERIFY;
				if (rc == -1 && f->e.status == 403)
					fail_msg("%s refused for %s", reg_op_name(op),
						 who[w]->ra_name);
				if (audit_count(f) != before + (audited ? 1 : 0))
					fail_msg("%s by %s: %zu audit records", reg_op_name(op),
						 who[w]->ra_name, audit_count(f) - before);
				if (audited)
					expect_audit(f, reg_op_name(op), who[w]->ra_name,
						     rc < 0 ? "failed" : "ok");
			}
		}
	}
	assert_false(reg_op_allowed(REG_OP_COUNT, REG_ROLE_SYSTEM));
	assert_string_equal(reg_op_name(REG_OP_COUNT), "?");
	/* roles */
	enum reg_role ro;
	assert_int_equal(reg_role_parse("ra", &ro), 0);
	assert_int_equal(ro, REG_ROLE_RA);
	assert_int_equal(reg_role_parse("system", &ro), -1);
	assert_int_equal(reg_role_parse("Admin", &ro), -1);
	assert_string_equal(reg_role_name(REG_ROLE_AUDITOR), "auditor");
}

/* ---- dual control ---------------------------------------------------- */

static void
test_dual_control(void **state)
{
	struct fx *f = *state;
	char body[512];
	json_t *o, *a;
	char id[64];
	size_t n;

	ap_body(body, sizeof body, "http://shop.example/ap", 0x77, NULL);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o),
			 REG_PENDING);
	assert_string_equal(jstr(o, "state"), "pending");
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(strlen(id), 17);
	assert_int_equal(id[0], 'A');
	expect_audit(f, "ap.create", "admin", "pending");
	/* not created yet */
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(f->ap_changes, 0);

	/* M-01: the requester, the same certificate under another name, an
	 * RA and an auditor cannot approve; each refusal is audited. */
	n = audit_count(f);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 403);
	expect_audit(f, "approval.approve", "admin", "refused");
	expect_fail(f, call(f, &A_ADMIN3, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 403);
	expect_audit(f, "approval.approve", "admin3", "refused");
	expect_fail(f, call(f, &A_RA, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 403);
	expect_fail(f, call(f, &A_AUD, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 403);
	assert_int_equal(audit_count(f), n + 4);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, NULL), 404);

	/* the auditor sees it pending */
	assert_int_equal(call(f, &A_AUD, REG_OP_APPROVAL_LIST, NULL, NULL, NULL, "{\"state\":\"pending\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "approvals")), 1);
	a = json_array_get(json_object_get(o, "approvals"), 0);
	assert_string_equal(jstr(a, "op"), "ap.create");
	assert_string_equal(jstr(json_object_get(a, "requester"), "name"), "admin");
	json_decref(o);

	/* another admin approves: the AP exists, the AE is told */
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, &o),
			 REG_CREATED);
	assert_string_equal(jstr(o, "state"), "approved");
	assert_string_equal(jstr(json_object_get(o, "result"), "id"), "http://shop.example/ap");
	json_decref(o);
	assert_int_equal(f->ap_changes, 1);
	assert_int_equal(call(f, &A_AUD, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, &o), 0);
	assert_string_equal(jstr(o, "name"), "Shop");
	json_decref(o);
	a = audit_last(f);
	assert_string_equal(jstr(a, "action"), "ap.create");
	assert_string_equal(jstr(a, "outcome"), "ok");
	assert_non_null(strstr(jstr(a, "detail"), "requested by admin "));
	assert_non_null(strstr(jstr(a, "detail"), "approved by admin2"));
	assert_non_null(strstr(jstr(a, "detail"), id));
	json_decref(a);
	/* used: 410 */
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 410);

	/* reject */
	ap_body(body, sizeof body, "ap2", 0x78, NULL);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_REJECT, id, NULL, NULL, NULL, &o), 0);
	assert_string_equal(jstr(o, "state"), "rejected");
	json_decref(o);
	expect_audit(f, "approval.reject", "admin2", "ok");
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 410);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "ap2", NULL, NULL, NULL, NULL), 404);

	/* expired */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	f->now += (int64_t)MSSP_ME_APPROVAL_TTL_S * 1000;
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 410);
	expect_audit(f, "approval.approve", "admin2", "failed");
	assert_int_equal(call(f, &A_ADMIN, REG_OP_APPROVAL_LIST, NULL, NULL, NULL, "{\"state\":\"expired\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "approvals")), 1);
	json_decref(o);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "ap2", NULL, NULL, NULL, NULL), 404);

	/* ap.update: a name change runs at once, a profile change waits */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_UPDATE, "http://shop.example/ap", NULL,
			      "{\"name\":\"Shop 2\"}", NULL, &o), 0);
	assert_string_equal(jstr(o, "name"), "Shop 2");
	json_decref(o);
	assert_int_equal(f->ap_changes, 2);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_UPDATE, "http://shop.example/ap", NULL,
			      "{\"profiles\":[\"mss::sign:loa3\"]}", NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, &o), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "profiles"), 0)), "*");
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, &o), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "profiles"), 0)),
			    "mss::sign:loa3");
	assert_string_equal(jstr(o, "name"), "Shop 2");
	json_decref(o);
	/* suspend is immediate; delete is dual */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_SUSPEND, "http://shop.example/ap", NULL, NULL, NULL, &o), 0);
	assert_true(json_is_true(json_object_get(o, "suspended")));
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_DELETE, "http://shop.example/ap", NULL, NULL, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, NULL), 0);
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 0);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "http://shop.example/ap", NULL, NULL, NULL, NULL), 404);
	/* a system caller (msspd init) has no dual control */
	ap_body(body, sizeof body, "ap3", 0x79, NULL);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	expect_audit(f, "ap.create", "system", "ok");
	/* approved after the world changed: the operation fails, the approval
	 * is spent ("failed"), and the record names both admins */
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 409);
	a = audit_last(f);
	assert_string_equal(jstr(a, "action"), "ap.create");
	assert_string_equal(jstr(a, "outcome"), "failed");
	assert_non_null(strstr(jstr(a, "detail"), "approved by admin2"));
	json_decref(a);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_APPROVAL_LIST, NULL, NULL, NULL, "{\"state\":\"failed\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "approvals")), 1);
	json_decref(o);
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 410);
}

/* ---- accounts -------------------------------------------------------- */

static void
test_accounts(void **state)
{
	struct fx *f = *state;
	struct reg_actor who;
	unsigned char fp[32];
	char body[512], hex[65], id[64];
	json_t *o;
	X509 *x;
	BIO *b;
	char *pem;
	long pemlen;
	unsigned int mdlen;
	unsigned char md[32];

	fp_fill(fp, 0x22);
	assert_int_equal(reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 0);
	assert_string_equal(who.ra_name, "admin2");
	assert_int_equal(who.ra_role, REG_ROLE_ADMIN);
	assert_memory_equal(who.ra_fp, fp, 32);
	fp_fill(fp, 0x99);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);

	/* create: dual; approved by the other admin */
	fp_hex(0x55, hex);
	snprintf(body, sizeof body, "{\"name\":\"ra2\",\"role\":\"ra\",\"cert_sha256\":\"%s\"}", hex);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_ACCOUNT_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	fp_fill(fp, 0x55);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), REG_CREATED);
	assert_int_equal(reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 0);
	assert_string_equal(who.ra_name, "ra2");
	assert_int_equal(who.ra_role, REG_ROLE_RA);
	expect_audit(f, "account.create", "admin2", "ok");

	/* refusals before any approval: bad name, role, duplicate name/cert */
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_CREATE, NULL, NULL,
			    "{\"name\":\"Bad Name\",\"role\":\"ra\",\"cert_sha256\":\"00\"}", NULL, NULL), 400);
	fp_hex(0x56, hex);
	snprintf(body, sizeof body, "{\"name\":\"x\",\"role\":\"system\",\"cert_sha256\":\"%s\"}", hex);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_CREATE, NULL, NULL, body, NULL, NULL), 400);
	snprintf(body, sizeof body, "{\"name\":\"ra2\",\"role\":\"ra\",\"cert_sha256\":\"%s\"}", hex);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_CREATE, NULL, NULL, body, NULL, NULL), 409);
	fp_hex(0x55, hex);
	snprintf(body, sizeof body, "{\"name\":\"ra3\",\"role\":\"ra\",\"cert_sha256\":\"%s\"}", hex);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_CREATE, NULL, NULL, body, NULL, NULL), 409);

	/* cert_pem: the fingerprint is SHA-256 of the DER */
	x = pki_ca_cert(f->ca);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	pemlen = BIO_get_mem_data(b, &pem);
	{
		json_t *in = json_pack("{s:s, s:s, s:s#}", "name", "aud2", "role", "auditor",
				       "cert_pem", pem, (size_t)pemlen);
		char *txt = json_dumps(in, 0);
		assert_int_equal(call(f, &A_SYS, REG_OP_ACCOUNT_CREATE, NULL, NULL, txt, NULL, &o),
				 REG_CREATED);
		free(txt);
		json_decref(in);
	}
	BIO_free(b);
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
	assert_int_equal(reg_account_by_fp(f->r, f->st, md, &who, &f->e), 0);
	assert_string_equal(who.ra_name, "aud2");
	assert_int_equal(who.ra_role, REG_ROLE_AUDITOR);
	json_decref(o);

	/* a crash between the two writes: without the index record the
	 * account is still found */
	fp_hex(0x33, hex);
	{
		struct store_err se = {0};
		assert_int_equal(store_rec_delete(f->st, "accountfp", hex, STORE_REC_ANY, f->now, &se), 0);
	}
	fp_fill(fp, 0x33);
	assert_int_equal(reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 0);
	assert_string_equal(who.ra_name, "ra");

	/* delete: dual; the last admin stays */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_ACCOUNT_DELETE, "ra2", NULL, NULL, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 0);
	fp_fill(fp, 0x55);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_DELETE, "nope", NULL, NULL, NULL, NULL), 404);
	/* two admins must remain (dual control needs two): with admin and
	 * admin2 alone neither can go, not even for a system caller */
	expect_fail(f, call(f, &A_SYS, REG_OP_ACCOUNT_DELETE, "admin2", NULL, NULL, NULL, NULL), 409);
	assert_non_null(strstr(f->e.msg, "2 admin"));
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_DELETE, "admin2", NULL, NULL, NULL, NULL), 409);
	expect_audit(f, "account.delete", "admin", "failed");
	fp_fill(fp, 0x12);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin3", REG_ROLE_ADMIN, fp, f->now, &f->e), 0);
	assert_int_equal(call(f, &A_SYS, REG_OP_ACCOUNT_DELETE, "admin2", NULL, NULL, NULL, NULL), 0);
	expect_fail(f, call(f, &A_SYS, REG_OP_ACCOUNT_DELETE, "admin", NULL, NULL, NULL, NULL), 409);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_ACCOUNT_DELETE, "admin", NULL, NULL, NULL, NULL), 409);
	expect_audit(f, "account.delete", "admin", "failed");
	/* deleting a non-admin is not limited */
	assert_int_equal(call(f, &A_AUD, REG_OP_ACCOUNT_LIST, NULL, NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "accounts")), 5); /* admin admin3 ra auditor aud2 */
	json_decref(o);
	/* a seed of an existing name fails */
	fp_fill(fp, 0x57);
	expect_fail(f, reg_account_seed(f->r, f->st, "admin", REG_ROLE_ADMIN, fp, f->now, &f->e), 409);
}

/* Separation of duties: one certificate is an AP's or an account's. */
static void
test_ap_account_separation(void **state)
{
	struct fx *f = *state;
	char body[512], hex[65];
	unsigned char fp[32];
	struct reg_actor who;
	json_t *ap;

	/* an AP with an account's certificate */
	ap_body(body, sizeof body, "apx", 0x33, NULL);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), 409);
	expect_audit(f, "ap.create", "system", "failed");
	ap = json_loads(body, 0, NULL);
	expect_fail(f, reg_ap_seed(f->r, f->st, ap, f->now, &f->e), 409);
	json_decref(ap);
	/* an account with an AP's certificate */
	ap_body(body, sizeof body, "apx", 0x88, NULL);
	ap = json_loads(body, 0, NULL);
	assert_int_equal(reg_ap_seed(f->r, f->st, ap, f->now, &f->e), 0);
	expect_audit(f, "ap.create", "system", "ok");
	json_decref(ap);
	fp_hex(0x88, hex);
	snprintf(body, sizeof body, "{\"name\":\"evil\",\"role\":\"admin\",\"cert_sha256\":\"%s\"}", hex);
	expect_fail(f, call(f, &A_SYS, REG_OP_ACCOUNT_CREATE, NULL, NULL, body, NULL, NULL), 409);
	fp_fill(fp, 0x88);
	expect_fail(f, reg_account_seed(f->r, f->st, "evil", REG_ROLE_ADMIN, fp, f->now, &f->e), 409);
	/* the AP's certificate on the ME: refused, and the message says why */
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	assert_non_null(strstr(f->e.msg, "AP"));
	/* another AP with the same certificate */
	ap_body(body, sizeof body, "apy", 0x88, NULL);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), 409);
	/* updating an AP to an account's certificate */
	fp_hex(0x44, hex);
	snprintf(body, sizeof body, "{\"cert_sha256\":[\"%s\"]}", hex);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_UPDATE, "apx", NULL, body, NULL, NULL), 409);
}

/* ---- APs ------------------------------------------------------------- */

static void
test_ap_validation(void **state)
{
	struct fx *f = *state;
	char hex[65], body[1024];
	json_t *o, *t;
	uint64_t g1, g2;
	size_t n;
	static const char *const bad[] = {
		"{\"id\":\"a\",\"profiles\":[\"*\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"zz\"],\"profiles\":[\"*\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\",\"@\"],\"profiles\":[\"*\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\",\"mss::sign:loa3\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"not a profile\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"modes\":[\"push\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"modes\":[\"synch\",\"synch\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"notify_urls\":[\"http://x.example/\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"rate\":-1}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"rate\":1000001}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"suspended\":\"yes\"}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"],\"extra\":1}",
		"{\"id\":\"a b\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"]}",
		"{\"id\":\"a\",\"name\":\"\",\"cert_sha256\":[\"@\"],\"profiles\":[\"*\"]}",
		"{\"id\":\"a\",\"cert_sha256\":[\"@\",\"@\",\"@\",\"@\",\"@\"],\"profiles\":[\"*\"]}",
		"[1]",
	};

	fp_hex(0x90, hex);
	assert_int_equal(store_rec_generation(f->st, "ap", &g1, &(struct store_err){0}), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		n = audit_count(f);
		subst(body, sizeof body, bad[i], hex);
		if (call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL) != -1 ||
		    f->e.status != 400)
			fail_msg("bad AP %zu accepted (%d)", i, f->e.status);
		assert_int_equal(f->e.code, 101);
		assert_null(strstr(f->e.msg, "http://x"));
		assert_int_equal(audit_count(f), n + 1);
		expect_audit(f, "ap.create", "admin", "failed");
	}
	/* a non-UTF-8 name */
	{
		json_t *b = json_pack("{s:s, s:[s], s:[s]}", "id", "a", "cert_sha256", hex,
				      "profiles", "*");
		struct reg_request rq = {.rq_op = REG_OP_AP_CREATE, .rq_body = b};
		json_object_set_new(b, "name", json_string_nocheck("\xff\xfe"));
		expect_fail(f, reg_call(f->r, f->st, &A_SYS, &rq, f->now, &o, &f->e), 400);
		json_object_set_new(b, "name", json_string("a\x01z"));
		expect_fail(f, reg_call(f->r, f->st, &A_SYS, &rq, f->now, &o, &f->e), 400);
		json_decref(b);
	}
	assert_int_equal(f->ap_changes, 0);
	/* a good one, canonicalised */
	snprintf(body, sizeof body,
		 "{\"id\":\"http://ap.example/\",\"cert_sha256\":[\"%s\"],\"profiles\":[\"mss::sign:loa3\"],"
		 "\"modes\":[\"asynchServerServer\",\"synch\"],\"notify_urls\":[\"https://ap.example:8443/cb\"]}",
		 "90909090909090909090909090909090909090909090909090909090909090AB");
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_CREATED);
	assert_string_equal(jstr(o, "name"), "http://ap.example/");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "cert_sha256"), 0)),
			    "90909090909090909090909090909090909090909090909090909090909090ab");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "modes"), 0)), "synch");
	assert_int_equal(json_integer_value(json_object_get(o, "rate")), 0);
	assert_true(json_is_false(json_object_get(o, "suspended")));
	json_decref(o);
	assert_int_equal(f->ap_changes, 1);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), 409);
	/* the AE's table */
	assert_int_equal(reg_ap_table(f->st, &t, &g2, &f->e), 0);
	assert_true(g2 > g1);
	assert_int_equal(json_array_size(t), 1);
	assert_string_equal(jstr(json_array_get(t, 0), "id"), "http://ap.example/");
	json_decref(t);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_SUSPEND, "http://ap.example/", NULL, NULL, NULL, NULL), 0);
	assert_int_equal(reg_ap_table(f->st, &t, &g1, &f->e), 0);
	assert_true(g1 > g2);
	assert_true(json_is_true(json_object_get(json_array_get(t, 0), "suspended")));
	json_decref(t);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_RESUME, "http://ap.example/", NULL, NULL, NULL, NULL), 0);
	assert_int_equal(call(f, &A_AUD, REG_OP_AP_LIST, NULL, NULL, NULL, NULL, &o), 0);
	assert_false(json_is_true(json_object_get(json_array_get(json_object_get(o, "aps"), 0), "suspended")));
	json_decref(o);
	assert_int_equal(f->ap_changes, 3);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_SUSPEND, "unknown", NULL, NULL, NULL, NULL), 404);
	/* update may not rename */
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_UPDATE, "http://ap.example/", NULL, "{\"id\":\"other\"}", NULL, NULL), 400);
}

/* ---- users ----------------------------------------------------------- */

static void
test_users(void **state)
{
	struct fx *f = *state;
	json_t *o, *u;
	size_t n;
	char body[256];

	n = audit_count(f);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_CREATE, NULL, NULL,
			      "{\"msisdn\":\"35847000001\",\"given_name\":\"Anna\",\"surname\":\"M\u00fcller\","
			      "\"id_number\":\"PNOCH-1\",\"country\":\"ch\",\"lang\":\"en-gb\"}", NULL, &o),
			 REG_CREATED);
	assert_string_equal(jstr(o, "msisdn"), ALICE);
	assert_string_equal(jstr(o, "country"), "CH");
	assert_string_equal(jstr(o, "lang"), "en-GB");
	assert_string_equal(jstr(o, "state"), "active");
	json_decref(o);
	assert_int_equal(audit_count(f), n + 1);
	expect_audit(f, "user.create", "ra", "ok");
	expect_fail(f, call(f, &A_RA, REG_OP_USER_CREATE, NULL, NULL, "{\"msisdn\":\"+35847000001\"}", NULL, NULL), 409);
	expect_audit(f, "user.create", "ra", "failed");
	/* refusals */
	static const char *const bad[] = {
		"{\"msisdn\":\"+3584\"}",
		"{\"msisdn\":\"+358 47000002\"}",
		"{\"msisdn\":\"+3584700000212345678\"}",
		"{\"msisdn\":\"+35847000002\",\"country\":\"CHE\"}",
		"{\"msisdn\":\"+35847000002\",\"lang\":\"EN\"}",
		"{\"msisdn\":\"+35847000002\",\"id_number\":\"\u00e4\"}",
		"{\"msisdn\":\"+35847000002\",\"name\":\"a\\nb\"}",
		"{\"msisdn\":\"+35847000002\",\"name\":\"a\xc2\x85" "b\"}",
		"{\"msisdn\":\"+35847000002\",\"hetu\":\"x\"}",
		"{\"msisdn\":35847000002}",
		"{\"given_name\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (call(f, &A_RA, REG_OP_USER_CREATE, NULL, NULL, bad[i], NULL, NULL) != -1 ||
		    f->e.status != 400)
			fail_msg("bad user %zu accepted", i);
	}
	expect_fail(f, call(f, &A_AUD, REG_OP_USER_CREATE, NULL, NULL, "{\"msisdn\":\"+35847000002\"}", NULL, NULL), 403);
	/* get: the user with devices, keys, jobs and transactions */
	n = audit_count(f);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_GET, ALICE, NULL, NULL, NULL, &o), 0);
	assert_int_equal(audit_count(f), n); /* reads are not audited */
	assert_string_equal(jstr(o, "surname"), "M\u00fcller");
	assert_true(json_is_array(json_object_get(o, "devices")));
	assert_true(json_is_array(json_object_get(o, "keys")));
	assert_true(json_is_array(json_object_get(o, "jobs")));
	assert_true(json_is_array(json_object_get(o, "transactions")));
	json_decref(o);
	expect_fail(f, call(f, &A_AUD, REG_OP_USER_GET, "+35840000000", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(f->e.code, 105);
	expect_fail(f, call(f, &A_AUD, REG_OP_USER_GET, "garbage", NULL, NULL, NULL, NULL), 400);
	/* update, suspend, resume */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_USER_UPDATE, ALICE, NULL, "{\"surname\":\"Meier\"}", NULL, &o), 0);
	assert_string_equal(jstr(o, "surname"), "Meier");
	assert_string_equal(jstr(o, "given_name"), "Anna");
	json_decref(o);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_USER_UPDATE, ALICE, NULL, "{\"msisdn\":\"+35847000009\"}", NULL, NULL), 400);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_SUSPEND, ALICE, NULL, NULL, NULL, &o), 0);
	assert_string_equal(jstr(o, "state"), "suspended");
	json_decref(o);
	expect_audit(f, "user.suspend", "ra", "ok");
	/* list: paging, prefix, text, state */
	for (int i = 2; i <= 6; i++) {
		snprintf(body, sizeof body, "{\"msisdn\":\"+3584700000%d\",\"name\":\"User %s\"}", i,
			 i == 4 ? "Zebra" : "Plain");
		assert_int_equal(call(f, &A_RA, REG_OP_USER_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	}
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"limit\":\"2\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "users")), 2);
	assert_string_equal(jstr(o, "next"), "+35847000002");
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL,
			      "{\"limit\":\"2\",\"after\":\"+35847000004\"}", &o), 0);
	u = json_object_get(o, "users");
	assert_int_equal(json_array_size(u), 2);
	assert_string_equal(jstr(json_array_get(u, 0), "msisdn"), "+35847000005");
	assert_string_equal(jstr(o, "next"), "+35847000006");
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"after\":\"+35847000005\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "users")), 1);
	assert_true(json_is_null(json_object_get(o, "next")));
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"q\":\"zebra\"}", &o), 0);
	u = json_object_get(o, "users");
	assert_int_equal(json_array_size(u), 1);
	assert_string_equal(jstr(json_array_get(u, 0), "msisdn"), "+35847000004");
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"q\":\"35847000\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "users")), 6);
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"q\":\"+358470000%\"}", &o), -1);
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"state\":\"suspended\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "users")), 1);
	json_decref(o);
	expect_fail(f, call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"state\":\"gone\"}", NULL), 400);
	expect_fail(f, call(f, &A_AUD, REG_OP_USER_LIST, NULL, NULL, NULL, "{\"limit\":\"0\"}", NULL), 400);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_RESUME, ALICE, NULL, NULL, NULL, NULL), 0);
	/* delete (no certificates: no CA needed) */
	assert_int_equal(call(f, &A_RA, REG_OP_USER_DELETE, "+35847000006", NULL, NULL, NULL, NULL), 0);
	expect_audit(f, "user.delete", "ra", "ok");
	expect_fail(f, call(f, &A_RA, REG_OP_USER_GET, "+35847000006", NULL, NULL, NULL, NULL), 404);
	expect_fail(f, call(f, &A_RA, REG_OP_USER_DELETE, "+35847000006", NULL, NULL, NULL, NULL), 404);
}

/* ---- activation codes ------------------------------------------------ */

static void
test_activation(void **state)
{
	struct fx *f = *state;
	char code1[32], code2[32], digits[16], hex[65];
	struct store_rec rec = {0};
	struct store_err se = {0};
	unsigned char h[32];
	json_t *o, *b, *a;

	make_user(f, ALICE);
	assert_int_equal(call(f, &A_RA, REG_OP_ACTIVATION_CREATE, ALICE, NULL, NULL, NULL, &o), REG_CREATED);
	snprintf(code1, sizeof code1, "%s", jstr(o, "code"));
	assert_non_null(jstr(o, "expires"));
	json_decref(o);
	/* NNNN-NNNN-NNNN */
	assert_int_equal(strlen(code1), 14);
	for (int i = 0; i < 14; i++)
		assert_true(i == 4 || i == 9 ? code1[i] == '-' : (code1[i] >= '0' && code1[i] <= '9'));
	/* the store keeps SHA-256 of the 12 digits, never the code */
	assert_int_equal(store_rec_get(f->st, "activation", ALICE, &rec, &se), 0);
	assert_int_equal(rec.sr_state, 1);
	assert_true(rec.sr_expires_ms == f->now + (int64_t)MSSP_REG_ACTIVATION_TTL_S * 1000);
	assert_null(strstr(rec.sr_body, code1));
	snprintf(digits, sizeof digits, "%.4s%.4s%.4s", code1, code1 + 5, code1 + 10);
	assert_null(strstr(rec.sr_body, digits));
	b = json_loads(rec.sr_body, 0, NULL);
	assert_int_equal(EVP_Digest(digits, 12, h, NULL, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	assert_string_equal(jstr(b, "code_sha256"), hex);
	assert_int_equal(json_integer_value(json_object_get(b, "tries")), 0);
	assert_string_equal(jstr(b, "created_by"), "ra");
	json_decref(b);
	store_rec_clear(&rec);
	/* the audit record does not hold it either */
	a = audit_last(f);
	assert_string_equal(jstr(a, "action"), "activation.create");
	assert_null(strstr(jstr(a, "detail"), digits));
	json_decref(a);
	/* a new code replaces it and differs */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_ACTIVATION_CREATE, ALICE, NULL, NULL, NULL, &o), REG_CREATED);
	snprintf(code2, sizeof code2, "%s", jstr(o, "code"));
	json_decref(o);
	assert_string_not_equal(code1, code2);
	assert_int_equal(store_rec_get(f->st, "activation", ALICE, &rec, &se), 0);
	assert_null(strstr(rec.sr_body, hex));
	store_rec_clear(&rec);
	/* unknown and suspended users */
	expect_fail(f, call(f, &A_RA, REG_OP_ACTIVATION_CREATE, "+35840000000", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(f->e.code, 105);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_SUSPEND, ALICE, NULL, NULL, NULL, NULL), 0);
	expect_fail(f, call(f, &A_RA, REG_OP_ACTIVATION_CREATE, ALICE, NULL, NULL, NULL, NULL), 409);
	/* 50 codes: all distinct, all digits */
	assert_int_equal(call(f, &A_RA, REG_OP_USER_RESUME, ALICE, NULL, NULL, NULL, NULL), 0);
	{
		char seen[50][16];
		for (int i = 0; i < 50; i++) {
			assert_int_equal(call(f, &A_RA, REG_OP_ACTIVATION_CREATE, ALICE, NULL, NULL, NULL, &o), REG_CREATED);
			snprintf(seen[i], sizeof seen[i], "%s", jstr(o, "code"));
			json_decref(o);
			for (int k = 0; k < i; k++)
				assert_string_not_equal(seen[i], seen[k]);
		}
	}
}

/* ---- certificates ---------------------------------------------------- */

/* A user with a device and one key whose certificate the CA issued;
 * the serial (hex) into `serial`. */
static void
make_key(struct fx *f, const char *msisdn, const char *key_id, const char *dev, char serial[64])
{
	static const struct pki_ca_identity ident = {
		.id_serial_number = "PNOCH-1",
		.id_common_name = "Anna Muster",
		.id_given_name = "Anna",
		.id_surname = "Muster",
		.id_country = "CH",
	};
	struct store_device d = {0};
	struct store_key *k = calloc(1, sizeof *k);
	struct store_err se = {0};
	struct pki_err pe = {0};
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = NULL;
	unsigned char *der = NULL;
	BIGNUM *bn;
	char *hx;
	int len;

	assert_non_null(k);
	assert_non_null(key);
	if (pki_ca_issue(f->ca, "authn", &ident, key, NULL, 0, &x, &pe) != 0)
		fail_msg("pki_ca_issue: %d %s", pe.status, pe.detail);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hx = BN_bn2hex(bn);
	snprintf(serial, 64, "%s", hx);
	OPENSSL_free(hx);
	BN_free(bn);
	snprintf(d.sd_device_id, sizeof d.sd_device_id, "%s", dev);
	snprintf(d.sd_msisdn, sizeof d.sd_msisdn, "%s", msisdn);
	d.sd_auth_spki_len = 91;
	memset(d.sd_auth_spki, 0x30, 91);
	memset(d.sd_e2e_key, 0x5a, 32);
	d.sd_state = STORE_DEVICE_ACTIVE;
	if (store_device_put(f->st, &d, f->now, &se) != 0 && se.status != 101)
		fail_msg("device put: %d %s", se.status, se.detail);
	snprintf(k->sk_key_id, sizeof k->sk_key_id, "%s", key_id);
	snprintf(k->sk_group, sizeof k->sk_group, "g-%s", key_id);
	snprintf(k->sk_msisdn, sizeof k->sk_msisdn, "%s", msisdn);
	snprintf(k->sk_device_id, sizeof k->sk_device_id, "%s", dev);
	k->sk_purpose = STORE_KEY_AUTHN;
	snprintf(k->sk_profiles, sizeof k->sk_profiles, "mss::authn:loa2");
	k->sk_has_pin = true;
	k->sk_state = STORE_KEY_ACTIVE;
	len = i2d_X509(x, &der);
	assert_true(len > 0 && len <= MSSP_STORE_MAX_CERT);
	memcpy(k->sk_cert, der, (size_t)len);
	k->sk_cert_len = (size_t)len;
	snprintf(k->sk_cert_serial, sizeof k->sk_cert_serial, "%s", serial);
	if (store_key_put(f->st, k, f->now, &se) != 0)
		fail_msg("key put: %d %s", se.status, se.detail);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	free(k);
}

static bool
crl_has(struct fx *f, const char *serial)
{
	char path[700];
	FILE *fp;
	X509_CRL *crl;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;
	bool found;

	snprintf(path, sizeof path, "%s/ca/crl.pem", f->dir);
	fp = fopen(path, "r");
	if (fp == NULL)
		return false;
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(crl);
	assert_true(BN_hex2bn(&bn, serial) > 0);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	found = X509_CRL_get0_by_serial(crl, &rev, ai) == 1;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_CRL_free(crl);
	return found;
}

static void
test_certificates(void **state)
{
	struct fx *f = *state;
	char s1[64], s2[64], s3[64], lower[64];
	struct store_key k;
	struct store_err se = {0};
	struct pki_ca_entry ce;
	struct pki_err pe = {0};
	json_t *o, *c;
	struct reg *noca;

	make_user(f, ALICE);
	make_key(f, ALICE, "k1", "d1", s1);
	make_key(f, ALICE, "k2", "d1", s2);
	/* list */
	assert_int_equal(call(f, &A_AUD, REG_OP_CERT_LIST, NULL, NULL, NULL, "{\"msisdn\":\"+35847000001\"}", &o), 0);
	c = json_object_get(o, "certificates");
	assert_int_equal(json_array_size(c), 2);
	assert_string_equal(jstr(json_array_get(c, 0), "serial"), s1);
	assert_string_equal(jstr(json_array_get(c, 0), "state"), "active");
	assert_string_equal(jstr(json_array_get(c, 0), "key_id"), "k1");
	assert_non_null(strstr(jstr(json_array_get(c, 0), "subject"), "Anna Muster"));
	assert_true(json_is_string(json_object_get(json_array_get(c, 0), "not_after")));
	json_decref(o);
	expect_fail(f, call(f, &A_AUD, REG_OP_CERT_LIST, NULL, NULL, NULL, NULL, NULL), 400);
	/* revoke (serial in lower case: the same certificate) */
	for (size_t i = 0; i <= strlen(s1); i++)
		lower[i] = (char)tolower((unsigned char)s1[i]);
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, lower, NULL, "{\"reason\":\"bogus\"}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, lower, NULL, "{\"reason\":\"caCompromise\"}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, "xyz", NULL, NULL, NULL, NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, "0A0B0C", NULL, NULL, NULL, NULL), 404);
	assert_false(crl_has(f, s1));
	assert_int_equal(call(f, &A_RA, REG_OP_CERT_REVOKE, lower, NULL, "{\"reason\":\"keyCompromise\"}", NULL, &o), 0);
	assert_string_equal(jstr(o, "key_id"), "k1");
	assert_true(json_is_true(json_object_get(o, "crl")));
	json_decref(o);
	expect_audit(f, "cert.revoke", "ra", "ok");
	assert_int_equal(store_key_get(f->st, "k1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_int_equal(store_key_get(f->st, "k2", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	assert_int_equal(pki_ca_reload(f->ca, &pe), 0);
	assert_int_equal(pki_ca_lookup(f->ca, s1, &ce, &pe), 0);
	assert_true(ce.ce_revoked);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_KEY_COMPROMISE);
	assert_true(crl_has(f, s1));
	assert_false(crl_has(f, s2));
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, s1, NULL, NULL, NULL, NULL), 409);
	/* without the CA in this process: 503 */
	noca = new_reg(f, false);
	{
		struct reg_request rq = {.rq_op = REG_OP_CERT_REVOKE, .rq_arg = s2};
		expect_fail(f, reg_call(noca, f->st, &A_RA, &rq, f->now, &o, &f->e), 503);
		rq.rq_op = REG_OP_USER_DELETE;
		rq.rq_arg = ALICE;
		expect_fail(f, reg_call(noca, f->st, &A_RA, &rq, f->now, &o, &f->e), 503);
	}
	reg_free(noca);
	/* delete with an outstanding transaction: 409, nothing revoked */
	{
		unsigned char hash[32];
		struct store_tx_new tn = {
			.tn_ap_id = "http://ap",
			.tn_ap_trans_id = "t1",
			.tn_hash = hash,
			.tn_hash_len = sizeof hash,
			.tn_msisdn = ALICE,
			.tn_key_id = "k2",
			.tn_mode = STORE_MODE_SYNCH,
			.tn_deadline_ms = f->now + 60000,
			.tn_request = "{}",
			.tn_request_len = 2,
		};
		struct store_tx tx = {0};
		memset(hash, 7, sizeof hash);
		assert_int_equal(store_tx_create(f->st, &tn, 0, f->now, &tx, &se), 0);
		expect_fail(f, call(f, &A_RA, REG_OP_USER_DELETE, ALICE, NULL, NULL, NULL, NULL), 409);
		assert_int_equal(pki_ca_lookup(f->ca, s2, &ce, &pe), 0);
		assert_false(ce.ce_revoked);
		struct store_tx_change ch = {.tc_status = 401, .tc_detail = "test"};
		assert_int_equal(store_tx_transition(f->st, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_FAILED,
						     &ch, f->now, NULL, &se), 0);
		store_tx_clear(&tx);
	}
	/* user.delete revokes the rest with cessationOfOperation */
	make_key(f, ALICE, "k3", "d1", s3);
	assert_int_equal(call(f, &A_RA, REG_OP_USER_DELETE, ALICE, NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "certificates_revoked")), 2);
	json_decref(o);
	assert_int_equal(pki_ca_reload(f->ca, &pe), 0);
	assert_int_equal(pki_ca_lookup(f->ca, s2, &ce, &pe), 0);
	assert_true(ce.ce_revoked);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_CESSATION_OF_OPERATION);
	assert_int_equal(pki_ca_lookup(f->ca, s1, &ce, &pe), 0);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_KEY_COMPROMISE); /* unchanged */
	assert_true(crl_has(f, s3));
	expect_fail(f, call(f, &A_RA, REG_OP_USER_GET, ALICE, NULL, NULL, NULL, NULL), 404);
}

static void
test_device_delete(void **state)
{
	struct fx *f = *state;
	struct store_device d;
	struct store_key k;
	struct store_err se = {0};
	struct pki_ca_entry ce;
	struct pki_err pe = {0};
	char s1[64], s2[64], s3[64];
	json_t *o, *dev, *a;
	struct reg *noca;

	make_user(f, ALICE);
	make_user(f, "+35847000002");
	make_key(f, ALICE, "k1", "d1", s1);
	/* the user's detail shows the device, never its channel key */
	assert_int_equal(call(f, &A_AUD, REG_OP_USER_GET, ALICE, NULL, NULL, NULL, &o), 0);
	dev = json_array_get(json_object_get(o, "devices"), 0);
	assert_string_equal(jstr(dev, "device_id"), "d1");
	{
		char *txt = json_dumps(o, 0);
		assert_null(strstr(txt, "5a5a5a5a"));
		assert_null(strstr(txt, "WlpaWl")); /* base64 of 0x5a bytes */
		free(txt);
	}
	assert_string_equal(jstr(json_array_get(json_object_get(o, "keys"), 0), "cert_serial"), s1);
	json_decref(o);
	/* another user's device reads as unknown */
	expect_fail(f, call(f, &A_RA, REG_OP_DEVICE_DELETE, "+35847000002", "d1", NULL, NULL, NULL), 404);
	expect_fail(f, call(f, &A_RA, REG_OP_DEVICE_DELETE, ALICE, "d 1", NULL, NULL, NULL), 404);
	/* review 8: the device's certificates are revoked (a stolen phone),
	 * the keys REVOKED, the CRL re-issued.  Without the CA: 503 while a
	 * certificate is unrevoked, nothing changed. */
	noca = new_reg(f, false);
	{
		struct reg_request rq = {.rq_op = REG_OP_DEVICE_DELETE, .rq_arg = ALICE,
					 .rq_arg2 = "d1"};
		expect_fail(f, reg_call(noca, f->st, &A_RA, &rq, f->now, &o, &f->e), 503);
	}
	reg_free(noca);
	assert_int_equal(store_device_get(f->st, "d1", &d, &se), 0);
	expect_fail(f, call(f, &A_RA, REG_OP_DEVICE_DELETE, ALICE, "d1", "{\"reason\":\"caCompromise\"}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_DEVICE_DELETE, ALICE, "d1", "{\"why\":1}", NULL, NULL), 400);
	assert_int_equal(call(f, &A_RA, REG_OP_DEVICE_DELETE, ALICE, "d1", NULL, NULL, &o), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "certificates_revoked")), 1);
	json_decref(o);
	expect_audit(f, "device.delete", "ra", "ok");
	a = audit_last(f);
	assert_non_null(strstr(jstr(a, "detail"), "1 certificate(s) revoked"));
	assert_non_null(strstr(jstr(a, "detail"), "cessationOfOperation"));
	json_decref(a);
	assert_int_equal(store_device_get(f->st, "d1", &d, &se), -1);
	assert_int_equal(store_key_get(f->st, "k1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_int_equal(pki_ca_reload(f->ca, &pe), 0);
	assert_int_equal(pki_ca_lookup(f->ca, s1, &ce, &pe), 0);
	assert_true(ce.ce_revoked);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_CESSATION_OF_OPERATION);
	assert_true(crl_has(f, s1));
	/* a reason from the body; only this device's certificates go */
	make_key(f, ALICE, "k2", "d2", s2);
	make_key(f, ALICE, "k3", "d3", s3);
	assert_int_equal(call(f, &A_RA, REG_OP_DEVICE_DELETE, ALICE, "d2", "{\"reason\":\"keyCompromise\"}", NULL, NULL), 0);
	assert_int_equal(pki_ca_reload(f->ca, &pe), 0);
	assert_int_equal(pki_ca_lookup(f->ca, s2, &ce, &pe), 0);
	assert_int_equal(ce.ce_reason, PKI_CA_REASON_KEY_COMPROMISE);
	assert_int_equal(pki_ca_lookup(f->ca, s3, &ce, &pe), 0);
	assert_false(ce.ce_revoked);
	assert_int_equal(store_key_get(f->st, "k3", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	/* a device whose certificates are all revoked needs no CA */
	assert_int_equal(pki_ca_revoke(f->ca, s3, PKI_CA_REASON_SUPERSEDED, 0, &pe), 0);
	assert_int_equal(store_key_set_state(f->st, "k3", STORE_KEY_REVOKED, f->now, &se), 0);
	noca = new_reg(f, false);
	{
		struct reg_request rq = {.rq_op = REG_OP_DEVICE_DELETE, .rq_arg = ALICE,
					 .rq_arg2 = "d3"};
		assert_int_equal(reg_call(noca, f->st, &A_RA, &rq, f->now, &o, &f->e), 0);
		json_decref(o);
	}
	reg_free(noca);
}

/* ---- profiles -------------------------------------------------------- */

static void
test_profiles(void **state)
{
	struct fx *f = *state;
	json_t *o, *p;
	char body[2048];

	assert_int_equal(call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "mss::authn:loa2", NULL,
			      "{\"description\":\"Login\",\"purpose\":\"authn\",\"loa\":2}", NULL, &o),
			 REG_CREATED);
	assert_string_equal(jstr(o, "uri"), "mss::authn:loa2");
	json_decref(o);
	/* review 15: redefining an existing profile is dual control */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "mss::authn:loa2", NULL,
			      "{\"uri\":\"mss::authn:loa2\",\"purpose\":\"authn\",\"loa\":3}", NULL, &o),
			 REG_PENDING);
	expect_audit(f, "sigprof.put", "admin", "pending");
	{
		char id[64];
		snprintf(id, sizeof id, "%s", jstr(o, "approval"));
		json_decref(o);
		assert_int_equal(call(f, &A_RA, REG_OP_SIGPROF_LIST, NULL, NULL, NULL, NULL, &o), 0);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(o, "profiles"), 0), "loa")), 2);
		json_decref(o);
		assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 0);
		expect_audit(f, "sigprof.put", "admin2", "ok");
	}
	expect_fail(f, call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "mss::authn:loa2", NULL,
			    "{\"uri\":\"mss::sign:loa2\",\"purpose\":\"authn\",\"loa\":3}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "mss::authn:loa2", NULL,
			    "{\"purpose\":\"authn\",\"loa\":5}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "mss::authn:loa2", NULL,
			    "{\"purpose\":\"encrypt\",\"loa\":2}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_SIGPROF_PUT, "not a uri", NULL,
			    "{\"purpose\":\"sign\",\"loa\":2}", NULL, NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_SIGPROF_PUT, "mss::sign:loa3", NULL,
			    "{\"purpose\":\"sign\",\"loa\":3}", NULL, NULL), 403);
	assert_int_equal(call(f, &A_RA, REG_OP_SIGPROF_LIST, NULL, NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "profiles")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(o, "profiles"), 0), "loa")), 3);
	json_decref(o);

	/* registration profiles */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_REGPROF_PUT, "standard", NULL,
			      "{\"description\":\"Std\",\"key_groups\":["
			      "{\"group\":\"authn\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"],\"pin\":false},"
			      "{\"group\":\"sign\",\"purpose\":\"sign\",\"profiles\":[\"mss::sign:loa3\"],"
			      "\"alg\":\"ec-p256\",\"cert_profile\":\"sign\"}]}", NULL, &o),
			 REG_CREATED);
	p = json_array_get(json_object_get(o, "key_groups"), 0);
	assert_false(json_is_true(json_object_get(p, "pin")));
	assert_string_equal(jstr(p, "cert_profile"), "authn");
	assert_string_equal(jstr(p, "alg"), "ec-p256");
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(o, "key_groups"), 1), "pin")));
	json_decref(o);
	static const char *const bad[] = {
		"{\"key_groups\":[]}",
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"]},"
		"{\"group\":\"a\",\"purpose\":\"sign\",\"profiles\":[\"mss::sign:loa3\"]}]}",
		"{\"key_groups\":[{\"group\":\"a b\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"]}]}",
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"],\"alg\":\"rsa-2048\"}]}",
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"x\",\"profiles\":[\"mss::authn:loa2\"]}]}",
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[]}]}",
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"],\"pin\":1}]}",
		"{\"name\":\"other\",\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"]}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (call(f, &A_ADMIN, REG_OP_REGPROF_PUT, "p2", NULL, bad[i], NULL, NULL) != -1 ||
		    f->e.status != 400)
			fail_msg("bad registration profile %zu accepted", i);
	/* six groups: one too many */
	snprintf(body, sizeof body, "{\"key_groups\":[");
	for (int i = 0; i < MSSP_REG_MAX_KEY_GROUPS + 1; i++)
		snprintf(body + strlen(body), sizeof body - strlen(body),
			 "%s{\"group\":\"g%d\",\"purpose\":\"sign\",\"profiles\":[\"mss::sign:loa3\"]}",
			 i ? "," : "", i);
	snprintf(body + strlen(body), sizeof body - strlen(body), "]}");
	expect_fail(f, call(f, &A_ADMIN, REG_OP_REGPROF_PUT, "p2", NULL, body, NULL, NULL), 400);
	assert_int_equal(call(f, &A_AUD, REG_OP_REGPROF_LIST, NULL, NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "profiles")), 1);
	p = json_array_get(json_object_get(o, "profiles"), 0);
	assert_string_equal(jstr(p, "name"), "standard");
	assert_int_equal(json_array_size(json_object_get(p, "key_groups")), 2);
	json_decref(o);
	/* seeding */
	p = json_pack("{s:s, s:s, s:i}", "uri", "mss::sign:loa3", "purpose", "sign", "loa", 3);
	assert_int_equal(reg_profile_seed(f->r, f->st, false, p, f->now, &f->e), 0);
	json_decref(p);
	expect_audit(f, "sigprof.put", "system", "ok");
	p = json_pack("{s:s}", "uri", "mss::sign:loa3");
	expect_fail(f, reg_profile_seed(f->r, f->st, false, p, f->now, &f->e), 400);
	json_decref(p);
}

/* ---- audit ops, stats, session --------------------------------------- */

static void
test_audit_ops(void **state)
{
	struct fx *f = *state;
	json_t *o, *e;
	size_t n = audit_count(f);

	assert_int_equal(call(f, &A_AUD, REG_OP_AUDIT_LIST, NULL, NULL, NULL, "{\"limit\":\"3\"}", &o), 0);
	assert_int_equal(audit_count(f), n + 1); /* who read it */
	expect_audit(f, "audit.list", "auditor", "ok");
	e = json_object_get(o, "entries");
	assert_int_equal(json_array_size(e), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "seq")), 1);
	assert_string_equal(jstr(json_array_get(e, 0), "action"), "account.create");
	assert_int_equal(json_integer_value(json_object_get(o, "next")), 3);
	json_decref(o);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AUDIT_LIST, NULL, NULL, NULL, "{\"after\":\"3\"}", &o), 0);
	e = json_object_get(o, "entries");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "seq")), 4);
	assert_int_equal(json_array_size(e), n + 2 - 3);
	json_decref(o);
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AUDIT_LIST, NULL, NULL, NULL, "{\"after\":\"-1\"}", NULL), 400);
	expect_fail(f, call(f, &A_RA, REG_OP_AUDIT_LIST, NULL, NULL, NULL, NULL, NULL), 403);
	expect_audit(f, "audit.list", "ra", "refused");
	n = audit_count(f);
	assert_int_equal(call(f, &A_AUD, REG_OP_AUDIT_VERIFY, NULL, NULL, NULL, NULL, &o), 0);
	assert_int_equal(audit_count(f), n + 1);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_true(json_is_true(json_object_get(o, "head_ok")));
	assert_int_equal(json_array_size(json_object_get(o, "problems")), 0);
	assert_true(json_integer_value(json_object_get(o, "entries")) >= (json_int_t)n);
	json_decref(o);
	/* an edited entry is found */
	{
		char path[700];
		char *txt;
		size_t len;
		FILE *fp;
		snprintf(path, sizeof path, "%s/%s.log", f->audit_dir, NODE);
		txt = tu_slurp(path, &len);
		char *p = strstr(txt, "\"auditor\"");
		assert_non_null(p);
		p[1] = 'A';
		fp = fopen(path, "w");
		assert_non_null(fp);
		assert_int_equal(fwrite(txt, 1, len, fp), len);
		fclose(fp);
		free(txt);
	}
	assert_int_equal(call(f, &A_AUD, REG_OP_AUDIT_VERIFY, NULL, NULL, NULL, NULL, &o), 0);
	assert_false(json_is_true(json_object_get(o, "ok")));
	assert_true(json_array_size(json_object_get(o, "problems")) >= 1);
	assert_string_equal(jstr(json_array_get(json_object_get(o, "problems"), 0), "kind"),
			    audit_problem_name(AUDIT_BAD_HASH));
	json_decref(o);
}

static void
test_stats_session(void **state)
{
	struct fx *f = *state;
	json_t *o;
	char body[512];

	make_user(f, ALICE);
	ap_body(body, sizeof body, "ap1", 0x70, NULL);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_PENDING);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	assert_int_equal(call(f, &A_RA, REG_OP_STATS, NULL, NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "users")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "aps")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "approvals_pending")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "jobs_open")), 0);
	assert_null(json_object_get(o, "metrics")); /* no URL configured */
	json_decref(o);
	assert_int_equal(call(f, &A_AUD, REG_OP_SESSION, NULL, NULL, NULL, NULL, &o), 0);
	assert_string_equal(jstr(o, "account"), "auditor");
	assert_string_equal(jstr(o, "role"), "auditor");
	assert_string_equal(jstr(o, "node"), NODE);
	json_decref(o);
}

/* A one-shot HTTP server for the stats' /metrics fetch. */
struct mini {
	int fd;
	const char *resp;
};

static void *
mini_run(void *arg)
{
	struct mini *m = arg;
	char buf[2048];
	int c = accept(m->fd, NULL, NULL);

	if (c >= 0) {
		ssize_t n = read(c, buf, sizeof buf);
		(void)n;
		n = write(c, m->resp, strlen(m->resp));
		(void)n;
		close(c);
	}
	return NULL;
}

static void
test_stats_metrics(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof sa;
	struct mini m = {
		.resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
			"# HELP mssp_up up\n# TYPE mssp_up gauge\nmssp_up 1\n"
			"mssp_requests_total{ap=\"a b\",status=\"500\"} 42\n"
			"garbage line\nmssp_ratio 0.5 1700000000000\n",
	};
	struct reg_conf c = {.rc_node = NODE, .rc_data_dir = f->dir, .rc_audit = f->au};
	struct reg_request rq = {.rq_op = REG_OP_STATS};
	char url[128];
	pthread_t th;
	struct reg *r;
	json_t *o, *mt;

	m.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(m.fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(m.fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(m.fd, 1), 0);
	assert_int_equal(getsockname(m.fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", ntohs(sa.sin_port));
	c.rc_metrics_url = url;
	r = reg_new(&c, &f->e);
	assert_non_null(r);
	assert_int_equal(pthread_create(&th, NULL, mini_run, &m), 0);
	assert_int_equal(reg_call(r, f->st, &A_AUD, &rq, f->now, &o, &f->e), 0);
	pthread_join(th, NULL);
	mt = json_object_get(o, "metrics");
	assert_true(json_is_object(mt));
	assert_true(json_real_value(json_object_get(mt, "mssp_up")) == 1.0);
	assert_true(json_real_value(json_object_get(mt, "mssp_requests_total{ap=\"a b\",status=\"500\"}")) == 42.0);
	assert_true(json_real_value(json_object_get(mt, "mssp_ratio")) == 0.5);
	assert_int_equal(json_object_size(mt), 3);
	json_decref(o);
	/* nobody listens any more: the stats answer without the counters */
	close(m.fd);
	assert_int_equal(reg_call(r, f->st, &A_AUD, &rq, f->now, &o, &f->e), 0);
	assert_true(json_is_null(json_object_get(o, "metrics")));
	assert_int_equal(json_integer_value(json_object_get(o, "users")), 0);
	json_decref(o);
	reg_free(r);
}

/* The ops reg_enrol.c implements are reached through reg_call (with the
 * role check and the audit record around them). */
static void
test_enrol_dispatch(void **state)
{
	struct fx *f = *state;
	size_t n;
	json_t *o;

	make_user(f, ALICE);
	n = audit_count(f);
	int rc = call(f, &A_RA, REG_OP_KEY_REQUEST, ALICE, NULL,
		      "{\"registration_profile\":\"nope\"}", NULL, NULL);
	assert_int_equal(rc, -1);
	assert_int_not_equal(f->e.status, 403);
	assert_int_equal(audit_count(f), n + 1);
	expect_audit(f, "key.request", "ra", "failed");
	expect_fail(f, call(f, &A_RA, REG_OP_KEY_REQUEST, "bad", NULL, "{}", NULL, NULL), 400);
	rc = call(f, &A_RA, REG_OP_PIN_UNBLOCK, ALICE, "nokey", NULL, NULL, NULL);
	assert_int_equal(rc, -1);
	assert_int_not_equal(f->e.status, 403);
	expect_audit(f, "pin.unblock", "ra", "failed");
	expect_fail(f, call(f, &A_AUD, REG_OP_JOB_GET, "J0000000000000000", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_KEYS_SCAN, NULL, NULL, NULL, NULL, &o), 0);
	assert_true(json_is_integer(json_object_get(o, "keys")));
	json_decref(o);
	expect_audit(f, "keys.scan", "admin", "ok");
}


/* ---- issue 5 review fixes ------------------------------------------------ */

/* SQL on the test's database through a connection of its own. */
static void
raw_exec(struct fx *f, const char *sql)
{
	sqlite3 *db = ts_raw_open(f->name);
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("raw SQL: %s", err ? err : "?");
	sqlite3_close(db);
}

/* One reg_call on a thread (it blocks on a write lock the test holds). */
struct bg_call {
	struct fx *bc_f;
	const struct reg_actor *bc_who;
	struct reg_request bc_rq;
	int bc_rc;
	struct reg_err bc_e;
	json_t *bc_out;
};

static void *
bg_run(void *arg)
{
	struct bg_call *b = arg;

	b->bc_rc = reg_call(b->bc_f->r, b->bc_f->st, b->bc_who, &b->bc_rq, b->bc_f->now,
			    &b->bc_out, &b->bc_e);
	return NULL;
}

/* Run `rq` while another writer holds the database's write lock, and let
 * that writer run `sql` (a concurrent change) after the call has read
 * what it read, before its write: a lost update shows here. */
static void
call_interleaved(struct fx *f, const struct reg_actor *who, struct reg_request rq,
		 const char *sql, struct bg_call *b)
{
	sqlite3 *db = ts_raw_open(f->name);
	pthread_t th;

	memset(b, 0, sizeof *b);
	b->bc_f = f;
	b->bc_who = who;
	b->bc_rq = rq;
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pthread_create(&th, NULL, bg_run, b), 0);
	/* it reads (WAL: readers are not blocked), then waits for the write
	 * lock (busy timeout MSSP_STORE_BUSY_TIMEOUT_MS, far longer) */
	usleep(1000 * 1000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	pthread_join(th, NULL);
	sqlite3_close(db);
}

/* Review 4: user.update never writes the state and never re-inserts;
 * suspend/resume change the state only, compare-and-set. */
static void
test_user_cas(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct store_err se = {0};
	struct bg_call b;
	json_t *body = json_pack("{s:s}", "surname", "Meier");

	make_user(f, ALICE);
	/* the key scan suspends the user while an RA edits the name: the
	 * suspension stays (a read-modify-write put it back to active) */
	call_interleaved(f, &A_RA,
			 (struct reg_request){.rq_op = REG_OP_USER_UPDATE, .rq_arg = ALICE,
					      .rq_body = body},
			 "UPDATE users SET state = 2, updated_ms = updated_ms + 1", &b);
	assert_int_equal(store_user_get(f->st, ALICE, &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	assert_int_equal(b.bc_rc, -1);
	assert_int_equal(b.bc_e.status, 409);
	json_decref(b.bc_out);
	/* without a concurrent change the update runs, the state untouched */
	assert_int_equal(call(f, &A_RA, REG_OP_USER_UPDATE, ALICE, NULL, "{\"surname\":\"Meier\"}", NULL, NULL), 0);
	assert_int_equal(store_user_get(f->st, ALICE, &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	assert_string_equal(u.su_surname, "Meier");
	/* a resume racing with a change it did not see: 409, nothing undone */
	call_interleaved(f, &A_RA, (struct reg_request){.rq_op = REG_OP_USER_RESUME, .rq_arg = ALICE},
			 "UPDATE users SET name = 'x', updated_ms = updated_ms + 1", &b);
	assert_int_equal(b.bc_rc, -1);
	assert_int_equal(b.bc_e.status, 409);
	assert_int_equal(store_user_get(f->st, ALICE, &u, &se), 0);
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	/* an update interleaved with a delete: 404, the user stays deleted */
	call_interleaved(f, &A_RA,
			 (struct reg_request){.rq_op = REG_OP_USER_UPDATE, .rq_arg = ALICE,
					      .rq_body = body},
			 "DELETE FROM users", &b);
	assert_int_equal(b.bc_rc, -1);
	assert_int_equal(b.bc_e.status, 404);
	expect_fail(f, call(f, &A_RA, REG_OP_USER_GET, ALICE, NULL, NULL, NULL, NULL), 404);
	json_decref(body);
}

/* Review 3: each key is REVOKED in the store right after its CA
 * revocation; a delete refused afterwards leaves no ACTIVE key with a
 * revoked certificate, and the audit record counts the revocations. */
static void
test_user_delete_partial(void **state)
{
	struct fx *f = *state;
	char s1[64], s2[64];
	struct store_key k;
	struct store_err se = {0};
	json_t *a;

	make_user(f, ALICE);
	make_key(f, ALICE, "k1", "d1", s1);
	make_key(f, ALICE, "k2", "d1", s2);
	/* the store refuses the delete itself (as when a transaction starts
	 * between the check and the delete) */
	raw_exec(f, "CREATE TRIGGER test_nodel BEFORE DELETE ON users BEGIN"
		    " SELECT RAISE(ABORT, 'test refuses'); END");
	assert_int_equal(call(f, &A_RA, REG_OP_USER_DELETE, ALICE, NULL, NULL, NULL, NULL), -1);
	expect_audit(f, "user.delete", "ra", "failed");
	a = audit_last(f);
	assert_non_null(strstr(jstr(a, "detail"), "2 certificate(s) revoked"));
	json_decref(a);
	assert_int_equal(store_key_get(f->st, "k1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_int_equal(store_key_get(f->st, "k2", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_true(crl_has(f, s1) && crl_has(f, s2));
	/* the retry: nothing left to revoke, the user goes */
	raw_exec(f, "DROP TRIGGER test_nodel");
	assert_int_equal(call(f, &A_RA, REG_OP_USER_DELETE, ALICE, NULL, NULL, NULL, NULL), 0);
	a = audit_last(f);
	assert_non_null(strstr(jstr(a, "detail"), "0 certificate(s) revoked"));
	json_decref(a);
}

/* Review 12 and 18: the CRL follows every CA revocation; a retry after
 * the store did not follow repairs the key (200, already_revoked); the
 * key is found by the serial index. */
static void
test_cert_revoke_retry(void **state)
{
	struct fx *f = *state;
	char s1[64], s2[64], lower[64];
	struct store_key k;
	struct store_err se = {0};
	struct store_rec rec = {0};
	struct pki_err pe = {0};
	json_t *o, *a;

	make_user(f, ALICE);
	make_key(f, ALICE, "k1", "d1", s1);
	make_key(f, ALICE, "k2", "d1", s2);
	/* the index record issuance writes (reg_enrol.c calls it) */
	for (size_t i = 0; i <= strlen(s1); i++)
		lower[i] = (char)tolower((unsigned char)s1[i]);
	if (reg_index_cert_serial(f->st, lower, "k1", f->now, &f->e) != 0)
		fail_msg("index: %d %s", f->e.status, f->e.msg);
	{
		/* named by the canonical serial: upper case, no leading zeros
		 * (BN_bn2hex writes whole bytes: "0A..." happens) */
		const char *canon = s1;
		while (canon[0] == '0' && canon[1] != '\0')
			canon++;
		assert_int_equal(store_rec_get(f->st, "certserial", canon, &rec, &se), 0);
	}
	assert_non_null(strstr(rec.sr_body, "\"k1\""));
	store_rec_clear(&rec);
	expect_fail(f, reg_index_cert_serial(f->st, "xyz", "k1", f->now, &f->e), 400);
	expect_fail(f, reg_index_cert_serial(f->st, s1, "bad id", f->now, &f->e), 400);
	/* the store refuses to mark the key: the CA revocation stands and
	 * the CRL carries it all the same */
	raw_exec(f, "CREATE TRIGGER test_nomark BEFORE UPDATE OF state ON keys BEGIN"
		    " SELECT RAISE(ABORT, 'test refuses'); END");
	assert_int_equal(call(f, &A_RA, REG_OP_CERT_REVOKE, s1, NULL, "{\"reason\":\"keyCompromise\"}", NULL, NULL), -1);
	a = audit_last(f);
	assert_string_equal(jstr(a, "outcome"), "failed");
	assert_non_null(strstr(jstr(a, "detail"), "key not marked revoked"));
	json_decref(a);
	assert_true(crl_has(f, s1));
	assert_int_equal(store_key_get(f->st, "k1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_ACTIVE);
	raw_exec(f, "DROP TRIGGER test_nomark");
	/* the retry: the CA says already revoked, the key follows now */
	assert_int_equal(call(f, &A_RA, REG_OP_CERT_REVOKE, s1, NULL, NULL, NULL, &o), 0);
	assert_true(json_is_true(json_object_get(o, "already_revoked")));
	assert_string_equal(jstr(o, "reason"), "keyCompromise"); /* the CA's */
	assert_string_equal(jstr(o, "key_id"), "k1");
	json_decref(o);
	a = audit_last(f);
	assert_string_equal(jstr(a, "outcome"), "ok");
	assert_non_null(strstr(jstr(a, "detail"), "inconsistency"));
	json_decref(a);
	assert_int_equal(store_key_get(f->st, "k1", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	/* consistent on both sides: 409 as before */
	expect_fail(f, call(f, &A_RA, REG_OP_CERT_REVOKE, s1, NULL, NULL, NULL, NULL), 409);
	/* revoked at the CA by someone else (a crash before the store write,
	 * an operator's pki tool): the same repair */
	assert_int_equal(pki_ca_revoke(f->ca, s2, PKI_CA_REASON_SUPERSEDED, 0, &pe), 0);
	assert_int_equal(call(f, &A_RA, REG_OP_CERT_REVOKE, s2, NULL, NULL, NULL, &o), 0);
	assert_true(json_is_true(json_object_get(o, "already_revoked")));
	assert_string_equal(jstr(o, "key_id"), "k2"); /* no index record: the scan */
	json_decref(o);
	assert_true(crl_has(f, s2));
	assert_int_equal(store_key_get(f->st, "k2", &k, &se), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
}

/* Review 13 and 18: AP certificate fingerprints are claimed in the
 * "apfp" index; the ME's login check reads it. */
static void
test_ap_fp_index(void **state)
{
	struct fx *f = *state;
	char body[512], hex[65], hex2[65];
	struct store_rec rec = {0}, r2 = {0};
	struct store_err se = {0};
	unsigned char fp[32];
	struct reg_actor who;

	/* an in-flight create elsewhere holds the claim of 0x81: a second
	 * AP cannot bind it (both would end in the AE's table) */
	fp_hex(0x81, hex);
	snprintf(r2.sr_kind, sizeof r2.sr_kind, "apfp");
	snprintf(r2.sr_name, sizeof r2.sr_name, "%s", hex);
	r2.sr_state = 1;
	r2.sr_body = "{\"ap\":\"apA\"}";
	r2.sr_body_len = strlen(r2.sr_body);
	assert_int_equal(store_rec_put(f->st, &r2, STORE_REC_NEW, clock_wall_ms(), NULL, &se), 0);
	ap_body(body, sizeof body, "apB", 0x81, NULL);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), 409);
	fp_fill(fp, 0x81);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	/* a crash's leftover (older than the grace): taken over */
	assert_int_equal(store_rec_delete(f->st, "apfp", hex, STORE_REC_ANY, f->now, &se), 0);
	assert_int_equal(store_rec_put(f->st, &r2, STORE_REC_NEW,
				       clock_wall_ms() - MSSP_REG_APFP_CLAIM_GRACE_MS - 1000, NULL, &se), 0);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	assert_null(strstr(f->e.msg, "AP")); /* stale: not an AP's */
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	assert_int_equal(store_rec_get(f->st, "apfp", hex, &rec, &se), 0);
	assert_non_null(strstr(rec.sr_body, "\"apB\""));
	store_rec_clear(&rec);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	assert_non_null(strstr(f->e.msg, "AP"));
	/* update: the new certificate claimed, the old one released */
	fp_hex(0x82, hex2);
	snprintf(body, sizeof body, "{\"cert_sha256\":[\"%s\"]}", hex2);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_UPDATE, "apB", NULL, body, NULL, NULL), 0);
	assert_int_equal(store_rec_get(f->st, "apfp", hex, &rec, &se), -1);
	assert_int_equal(store_rec_get(f->st, "apfp", hex2, &rec, &se), 0);
	store_rec_clear(&rec);
	/* the released certificate is free for another AP */
	ap_body(body, sizeof body, "apC", 0x81, NULL);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	/* delete releases */
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_DELETE, "apB", NULL, NULL, NULL, NULL), 0);
	assert_int_equal(store_rec_get(f->st, "apfp", hex2, &rec, &se), -1);
	fp_fill(fp, 0x82);
	expect_fail(f, reg_account_by_fp(f->r, f->st, fp, &who, &f->e), 403);
	assert_null(strstr(f->e.msg, "AP"));
}

/* Review 18: APs stored before the index existed are indexed once. */
static void
test_ap_fp_backfill(void **state)
{
	struct fx *f = *state;
	char hex[65], body[512];
	struct store_rec r = {0}, rec = {0};
	struct store_err se = {0};
	unsigned char fp[32];
	struct reg_actor who;
	struct reg *r2;

	/* a database of the first landing: no marker, an AP record without
	 * its index record */
	assert_int_equal(store_rec_delete(f->st, "apfpidx", "v1", STORE_REC_ANY, f->now, &se), 0);
	fp_hex(0x83, hex);
	ap_body(body, sizeof body, "old", 0x83, NULL);
	snprintf(r.sr_kind, sizeof r.sr_kind, "ap");
	snprintf(r.sr_name, sizeof r.sr_name, "old");
	r.sr_state = 1;
	r.sr_body = body;
	r.sr_body_len = strlen(body);
	assert_int_equal(store_rec_put(f->st, &r, STORE_REC_NEW, f->now, NULL, &se), 0);
	/* a fresh process (the fixture's reg has checked the index already) */
	r2 = new_reg(f, true);
	fp_fill(fp, 0x83);
	expect_fail(f, reg_account_by_fp(r2, f->st, fp, &who, &f->e), 403);
	assert_non_null(strstr(f->e.msg, "AP"));
	assert_int_equal(store_rec_get(f->st, "apfp", hex, &rec, &se), 0);
	store_rec_clear(&rec);
	assert_int_equal(store_rec_get(f->st, "apfpidx", "v1", &rec, &se), 0);
	store_rec_clear(&rec);
	reg_free(r2);
}

/* Review 13: the AP count bound holds against a create that lands
 * between the check and the write (simulated by a trigger that adds an
 * AP when the newcomer claims its certificate). */
static void
test_ap_count_race(void **state)
{
	struct fx *f = *state;
	char body[512], sql[512], hex[65];
	struct store_rec rec = {0};
	struct store_err se = {0};
	sqlite3 *db = ts_raw_open(f->name);

	assert_int_equal(sqlite3_exec(db,
				      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
				      " WHERE i < 998) INSERT INTO records (kind, name, owner, state,"
				      " version, created, updated, expires, body)"
				      " SELECT 'ap', 'bulk' || i, '', 1, 1, 1, 1, 0, '{}' FROM n",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	fp_hex(0x84, hex);
	snprintf(sql, sizeof sql,
		 "CREATE TRIGGER test_sneak AFTER INSERT ON records WHEN NEW.kind = 'apfp'"
		 " AND NEW.name = '%s' BEGIN INSERT INTO records (kind, name, owner, state,"
		 " version, created, updated, expires, body) VALUES ('ap', 'sneaky', '', 1, 1,"
		 " 1, 1, 0, '{}'); END",
		 hex);
	raw_exec(f, sql);
	/* 998 + "sneaky" + the newcomer = 1000 = MSSP_CONF_MAX_APS: fine */
	ap_body(body, sizeof body, "last", 0x84, NULL);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	raw_exec(f, "DROP TRIGGER test_sneak");
	assert_int_equal(store_rec_delete(f->st, "ap", "last", STORE_REC_ANY, f->now, &se), 0);
	assert_int_equal(store_rec_delete(f->st, "apfp", hex, STORE_REC_ANY, f->now, &se), 0);
	/* now one more sneaks in: 1001 - the newcomer is undone */
	snprintf(sql, sizeof sql,
		 "CREATE TRIGGER test_sneak AFTER INSERT ON records WHEN NEW.kind = 'apfp'"
		 " AND NEW.name = '%s' BEGIN INSERT INTO records (kind, name, owner, state,"
		 " version, created, updated, expires, body) VALUES ('ap', 'sneaky2', '', 1, 1,"
		 " 1, 1, 0, '{}'); END",
		 hex);
	raw_exec(f, sql);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), 409);
	assert_non_null(strstr(f->e.msg, "at most"));
	assert_int_equal(store_rec_get(f->st, "ap", "last", &rec, &se), -1);
	assert_int_equal(store_rec_get(f->st, "apfp", hex, &rec, &se), -1);
}

/* Review 14: an approval runs only while its requester is still an
 * admin with the same certificate. */
static void
test_approval_requester_gone(void **state)
{
	struct fx *f = *state;
	struct reg_actor a3 = {"admin3", REG_ROLE_ADMIN, {0}};
	char body[512], id[64];
	unsigned char fp[32];
	json_t *o;

	fp_fill(fp, 0x12);
	fp_fill(a3.ra_fp, 0x12);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin3", REG_ROLE_ADMIN, fp, f->now, &f->e), 0);
	ap_body(body, sizeof body, "apr", 0x85, NULL);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	json_decref(o);
	assert_int_equal(call(f, &a3, REG_OP_AP_CREATE, NULL, NULL, body, NULL, &o), REG_PENDING);
	snprintf(id, sizeof id, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_int_equal(call(f, &A_SYS, REG_OP_ACCOUNT_DELETE, "admin3", NULL, NULL, NULL, NULL), 0);
	expect_fail(f, call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), 409);
	expect_audit(f, "approval.approve", "admin2", "failed");
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_GET, "apr", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_APPROVAL_LIST, NULL, NULL, NULL, "{\"state\":\"failed\"}", &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "approvals")), 1);
	json_decref(o);
	/* re-created under the same name with another certificate: another
	 * person, the old request does not run either */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_APPROVAL_LIST, NULL, NULL, NULL, "{\"state\":\"pending\"}", &o), 0);
	snprintf(id, sizeof id, "%s", jstr(json_array_get(json_object_get(o, "approvals"), 0), "id"));
	json_decref(o);
	fp_fill(fp, 0x13);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin", REG_ROLE_ADMIN, fp, f->now, &f->e), -1);
	/* (admin still exists: its request is approved normally) */
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, NULL, NULL, NULL), REG_CREATED);
}

/* Review 15: notify_urls and modes of an AP and redefinitions of
 * profiles are trust changes (dual control). */
static void
test_dual_scope(void **state)
{
	struct fx *f = *state;
	char body[512];
	json_t *o;

	ap_body(body, sizeof body, "aps", 0x86, NULL);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL, body, NULL, NULL), REG_CREATED);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_UPDATE, "aps", NULL,
			      "{\"notify_urls\":[\"https://evil.example/cb\"]}", NULL, NULL), REG_PENDING);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_UPDATE, "aps", NULL,
			      "{\"modes\":[\"synch\",\"asynchServerServer\"]}", NULL, NULL), REG_PENDING);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_GET, "aps", NULL, NULL, NULL, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "notify_urls")), 0);
	assert_int_equal(json_array_size(json_object_get(o, "modes")), 1);
	json_decref(o);
	/* the rate is no trust change */
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_UPDATE, "aps", NULL, "{\"rate\":5}", NULL, NULL), 0);
	/* a new registration profile: at once; a redefinition: dual */
	static const char *const rp =
		"{\"key_groups\":[{\"group\":\"a\",\"purpose\":\"authn\",\"profiles\":[\"mss::authn:loa2\"]}]}";
	assert_int_equal(call(f, &A_ADMIN, REG_OP_REGPROF_PUT, "p1", NULL, rp, NULL, NULL), REG_CREATED);
	assert_int_equal(call(f, &A_ADMIN, REG_OP_REGPROF_PUT, "p1", NULL, rp, NULL, NULL), REG_PENDING);
	expect_audit(f, "regprof.put", "admin", "pending");
	assert_int_equal(call(f, &A_SYS, REG_OP_REGPROF_PUT, "p1", NULL, rp, NULL, NULL), 0);
}

/* REST (rest.md): a Basic user name names one AP: neither another AP's
 * rest_user nor another AP's id (the default user name). */
#define RPW "a-long-rest-password-0123456789"
#define RKEY "an-api-key-of-more-than-32-characters-0123456789"

static void
test_ap_rest_user_unique(void **state)
{
	struct fx *f = *state;
	json_t *o;

	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL,
			      "{\"id\":\"shop\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			      "\"rest_user\":\"shop-user\",\"rest_password\":\"" RPW "\"}",
			      NULL, NULL),
			 REG_CREATED);
	/* another AP's rest_user */
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL,
			    "{\"id\":\"other\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			    "\"rest_user\":\"shop-user\",\"rest_password\":\"" RPW "\"}",
			    NULL, NULL),
		    409);
	/* another AP's id (its default user name) */
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL,
			    "{\"id\":\"other\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			    "\"rest_user\":\"shop\",\"rest_password\":\"" RPW "\"}",
			    NULL, NULL),
		    409);
	/* an AP whose id is another AP's rest_user */
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL,
			    "{\"id\":\"shop-user\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			    "\"rest_password\":\"" RPW "\"}",
			    NULL, NULL),
		    409);
	/* refused at once, also when dual control would apply */
	expect_fail(f, call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL,
			    "{\"id\":\"other\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			    "\"rest_user\":\"shop-user\",\"rest_password\":\"" RPW "\"}",
			    NULL, NULL),
		    409);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_CREATE, NULL, NULL,
			      "{\"id\":\"other\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			      "\"rest_user\":\"other-user\",\"rest_password\":\"" RPW "\"}",
			      NULL, NULL),
			 REG_CREATED);
	/* an update to a taken name */
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_UPDATE, "other", NULL,
			    "{\"rest_user\":\"shop-user\"}", NULL, NULL),
		    409);
	expect_fail(f, call(f, &A_SYS, REG_OP_AP_UPDATE, "other", NULL, "{\"rest_user\":\"shop\"}",
			    NULL, NULL),
		    409);
	/* unrelated updates of an AP are not concerned */
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_UPDATE, "other", NULL, "{\"rate\":3}", NULL, NULL),
			 0);
	/* a GET answer sent back: its secret flags are accepted and ignored */
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_GET, "other", NULL, NULL, NULL, &o), 0);
	assert_true(json_is_true(json_object_get(o, "rest_password_set")));
	json_object_set_new(o, "api_key_set", json_true());
	json_object_set_new(o, "name", json_string("Other shop"));
	char *txt = json_dumps(o, 0);
	json_decref(o);
	assert_non_null(txt);
	assert_int_equal(call(f, &A_SYS, REG_OP_AP_UPDATE, "other", NULL, txt, NULL, &o), 0);
	free(txt);
	assert_string_equal(jstr(o, "name"), "Other shop");
	assert_true(json_is_true(json_object_get(o, "rest_password_set")));
	assert_null(json_object_get(o, "api_key_set")); /* no key was set */
	json_decref(o);
}

/* The raw stored approval `id` holds `needle`? */
static bool
approval_holds(struct fx *f, const char *id, const char *needle)
{
	struct store_rec rec = {0};
	struct store_err se = {0};
	bool has;

	assert_int_equal(store_rec_get(f->st, "approval", id, &rec, &se), 0);
	has = strstr(rec.sr_body, needle) != NULL;
	store_rec_clear(&rec);
	return has;
}

/* An API key asked for through dual control is kept only while pending:
 * approved, rejected or expired, the approval record loses it. */
static void
test_ap_rest_approval_key(void **state)
{
	struct fx *f = *state;
	char id[3][64];
	json_t *o;

	static const char *const bodies[3] = {
		"{\"id\":\"k1\",\"cert_sha256\":[],\"profiles\":[\"*\"],\"api_key\":\"" RKEY "-1\"}",
		"{\"id\":\"k2\",\"cert_sha256\":[],\"profiles\":[\"*\"],\"api_key\":\"" RKEY "-2\"}",
		"{\"id\":\"k3\",\"cert_sha256\":[],\"profiles\":[\"*\"],\"api_key\":\"" RKEY "-3\"}",
	};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL, bodies[i], NULL, &o),
				 REG_PENDING);
		snprintf(id[i], sizeof id[i], "%s", jstr(o, "approval"));
		json_decref(o);
		assert_true(approval_holds(f, id[i], RKEY));
	}
	/* approved: the AP has its key, the approval no longer */
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id[0], NULL, NULL, NULL, &o),
			 REG_CREATED);
	json_decref(o);
	assert_false(approval_holds(f, id[0], RKEY));
	assert_true(approval_holds(f, id[0], "api_key_set"));
	struct store_rec rec = {0};
	struct store_err se = {0};
	assert_int_equal(store_rec_get(f->st, "ap", "k1", &rec, &se), 0);
	assert_non_null(strstr(rec.sr_body, RKEY "-1"));
	store_rec_clear(&rec);
	/* rejected */
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_REJECT, id[1], NULL, NULL, NULL, NULL), 0);
	assert_false(approval_holds(f, id[1], RKEY));
	/* expired, nobody decides on it: the next decision on another
	 * approval sweeps it */
	f->now += (int64_t)MSSP_ME_APPROVAL_TTL_S * 1000 + 1000;
	assert_int_equal(call(f, &A_ADMIN, REG_OP_AP_CREATE, NULL, NULL,
			      "{\"id\":\"k4\",\"cert_sha256\":[],\"profiles\":[\"*\"],"
			      "\"rest_user\":\"k4-user\",\"rest_password\":\"" RPW "\"}",
			      NULL, &o),
			 REG_PENDING);
	char id4[64];
	snprintf(id4, sizeof id4, "%s", jstr(o, "approval"));
	json_decref(o);
	assert_true(approval_holds(f, id[2], RKEY));
	assert_int_equal(call(f, &A_ADMIN2, REG_OP_APPROVAL_REJECT, id4, NULL, NULL, NULL, NULL), 0);
	assert_false(approval_holds(f, id[2], RKEY));
	assert_int_equal(store_rec_get(f->st, "approval", id[2], &rec, &se), 0);
	assert_int_equal(rec.sr_state, 4 /* APR_ST_EXPIRED (reg.c) */);
	store_rec_clear(&rec);
	/* the password never was in an approval */
	assert_false(approval_holds(f, id4, RPW));
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_role_matrix),   T(test_dual_control),	    T(test_accounts),
		T(test_ap_account_separation), T(test_ap_validation), T(test_users),
		T(test_activation),    T(test_certificates),	    T(test_device_delete),
		T(test_profiles),      T(test_audit_ops),	    T(test_stats_session),
		T(test_stats_metrics),
		T(test_enrol_dispatch),
		T(test_user_cas),      T(test_user_delete_partial), T(test_cert_revoke_retry),
		T(test_ap_fp_index),   T(test_ap_fp_backfill),	    T(test_ap_count_race),
		T(test_approval_requester_gone), T(test_dual_scope),
		T(test_ap_rest_user_unique), T(test_ap_rest_approval_key),
	};

	return cmocka_run_group_tests(tests, group_setup, ts_teardown);
}
