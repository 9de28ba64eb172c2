/*
 * test_mreg.c - the MReg mapping without a server: operations (as the
 * SOAP codec decodes them) to reg requests, and reg's answers to
 * OperationOutput parameters.  The whole path (SOAP in, reg, SOAP out)
 * runs in test_me.c against a real reg and store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "mss/msg.h"
#include "roles/mreg.h"

/* An operation with up to 8 parameters (name, value pairs). */
struct op_fx {
	struct mss_mreg_operation op;
	struct mss_mreg_param p[8];
	void *items[8];
	struct mss_list l;
};

static void
mkop(struct op_fx *f, const char *name, ...)
{
	va_list ap;
	memset(f, 0, sizeof *f);
	f->op.name = (char *)name;
	va_start(ap, name);
	size_t n = 0;
	for (const char *k; n < 8 && (k = va_arg(ap, const char *)) != NULL; n++) {
		f->p[n].name = (char *)k;
		f->p[n].value = va_arg(ap, char *);
		f->items[n] = &f->p[n];
	}
	va_end(ap);
	f->l.n = n;
	f->l.items = f->items;
	f->op.parameter = n ? &f->l : NULL;
}

static const char *
body_str(const struct mreg_call *c, const char *k)
{
	return json_string_value(json_object_get(c->mc_rq.rq_body, k));
}

static const char *
query_str(const struct mreg_call *c, const char *k)
{
	return json_string_value(json_object_get(c->mc_rq.rq_query, k));
}

static void
test_names_and_prefixes(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum reg_op op;
	} t[] = {
		{"GetMobileUser", REG_OP_USER_GET},
		{"mids:GetMobileUser", REG_OP_USER_GET},
		{"kiuru:GetMobileUser", REG_OP_USER_GET},
		{"DeactivateMobileUser", REG_OP_USER_SUSPEND},
		{"mids:ReactivateMobileUser", REG_OP_USER_RESUME},
		{"DeleteMobileUser", REG_OP_USER_DELETE},
		{"mids:ActivateMobileUser", REG_OP_ACTIVATION_CREATE},
		{"UpdateMobileUser", REG_OP_USER_UPDATE},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct op_fx f;
		struct mreg_call c;
		struct reg_err e;
		mkop(&f, t[i].name, NULL);
		if (mreg_map(&f.op, "+35840000001", &c, &e) != 0)
			fail_msg("%s: %s", t[i].name, e.msg);
		assert_int_equal(c.mc_rq.rq_op, t[i].op);
		assert_string_equal(c.mc_rq.rq_arg, "+35840000001");
		assert_null(c.mc_rq.rq_arg2);
		mreg_call_clear(&c);
	}
	/* unknown, case changed, empty, a name that only ends the same */
	static const char *const bad[] = {"NoSuchOp", "getmobileuser", "", "XGetMobileUser",
					  "mids:"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct op_fx f;
		struct mreg_call c;
		struct reg_err e;
		mkop(&f, bad[i], NULL);
		assert_int_equal(mreg_map(&f.op, "+35840000001", &c, &e), -1);
		assert_int_equal(e.status, 400);
		assert_int_equal(e.code, 101);
	}
}

static void
test_create_update(void **state)
{
	(void)state;
	struct op_fx f;
	struct mreg_call c;
	struct reg_err e;
	/* Kiuru's parameter names; MSISDN as a parameter, no target */
	mkop(&f, "mids:CreateMobileUser", "MSISDN", "+35840000002", "givenName", "Matti",
	     "surName", "Virtanen", "Language", "fi", "hetu", "010190-123A", "Country", "FI", NULL);
	assert_int_equal(mreg_map(&f.op, NULL, &c, &e), 0);
	assert_int_equal(c.mc_rq.rq_op, REG_OP_USER_CREATE);
	assert_null(c.mc_rq.rq_arg);
	assert_string_equal(body_str(&c, "msisdn"), "+35840000002");
	assert_string_equal(body_str(&c, "given_name"), "Matti");
	assert_string_equal(body_str(&c, "surname"), "Virtanen");
	assert_string_equal(body_str(&c, "lang"), "fi");
	assert_string_equal(body_str(&c, "id_number"), "010190-123A");
	assert_string_equal(body_str(&c, "country"), "FI");
	assert_int_equal(json_object_size(c.mc_rq.rq_body), 6);
	mreg_call_clear(&c);
	assert_null(c.mc_rq.rq_body);
	/* lower-case msisdn parameter, target as fallback */
	mkop(&f, "CreateMobileUser", "msisdn", "+35840000003", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000009", &c, &e), 0);
	assert_string_equal(body_str(&c, "msisdn"), "+35840000003");
	mreg_call_clear(&c);
	mkop(&f, "CreateMobileUser", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000009", &c, &e), 0);
	assert_string_equal(body_str(&c, "msisdn"), "+35840000009");
	mreg_call_clear(&c);
	/* no MSISDN anywhere */
	assert_int_equal(mreg_map(&f.op, "", &c, &e), -1);
	assert_int_equal(e.status, 400);
	/* update: the target, the body without msisdn */
	mkop(&f, "UpdateMobileUser", "surName", "Korhonen", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000004", &c, &e), 0);
	assert_string_equal(c.mc_rq.rq_arg, "+35840000004");
	assert_string_equal(body_str(&c, "surname"), "Korhonen");
	assert_null(json_object_get(c.mc_rq.rq_body, "msisdn"));
	mreg_call_clear(&c);
	/* get without a target */
	mkop(&f, "GetMobileUser", NULL);
	assert_int_equal(mreg_map(&f.op, NULL, &c, &e), -1);
	assert_int_equal(e.code, 101);
}

static void
test_lists_and_certificates(void **state)
{
	(void)state;
	struct op_fx f;
	struct mreg_call c;
	struct reg_err e;
	mkop(&f, "ListMobileUsers", NULL);
	assert_int_equal(mreg_map(&f.op, "+358400", &c, &e), 0);
	assert_int_equal(c.mc_rq.rq_op, REG_OP_USER_LIST);
	assert_string_equal(query_str(&c, "q"), "+358400");
	assert_null(json_object_get(c.mc_rq.rq_query, "limit"));
	mreg_call_clear(&c);
	/* a limit beyond what one OperationOutput may hold is cut */
	mkop(&f, "ListMobileUsers", "limit", "1000", "state", "active", NULL);
	assert_int_equal(mreg_map(&f.op, NULL, &c, &e), 0);
	assert_null(json_object_get(c.mc_rq.rq_query, "q"));
	char want[16];
	snprintf(want, sizeof want, "%d", MSSP_MSG_MAX_LIST);
	assert_string_equal(query_str(&c, "limit"), want);
	assert_string_equal(query_str(&c, "state"), "active");
	mreg_call_clear(&c);
	mkop(&f, "GetCertificates", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000005", &c, &e), 0);
	assert_int_equal(c.mc_rq.rq_op, REG_OP_CERT_LIST);
	assert_string_equal(query_str(&c, "msisdn"), "+35840000005");
	mreg_call_clear(&c);
	mkop(&f, "RevokeCertificate", "serial", "0A1B", "reason", "keyCompromise", NULL);
	assert_int_equal(mreg_map(&f.op, NULL, &c, &e), 0);
	assert_int_equal(c.mc_rq.rq_op, REG_OP_CERT_REVOKE);
	assert_string_equal(c.mc_rq.rq_arg, "0A1B");
	assert_string_equal(body_str(&c, "reason"), "keyCompromise");
	mreg_call_clear(&c);
	mkop(&f, "RevokeCertificate", "reason", "keyCompromise", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000005", &c, &e), -1);
	mkop(&f, "UnblockPin", "KEYID", "k1", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000005", &c, &e), 0);
	assert_int_equal(c.mc_rq.rq_op, REG_OP_PIN_UNBLOCK);
	assert_string_equal(c.mc_rq.rq_arg, "+35840000005");
	assert_string_equal(c.mc_rq.rq_arg2, "k1");
	mreg_call_clear(&c);
	mkop(&f, "UnblockPin", NULL);
	assert_int_equal(mreg_map(&f.op, "+35840000005", &c, &e), -1);
}

static const char *
pv(const struct mss_list *l, size_t i, const char **name)
{
	const struct mss_mreg_param *p = l->items[i];
	*name = p->name;
	return p->value;
}

static void
test_outputs(void **state)
{
	(void)state;
	struct mss_msg *m = mss_msg_new(MSS_REGISTRATION_RESP);
	assert_non_null(m);
	struct mss_list l = {0};
	const char *n;
	json_t *u = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[]}", "msisdn", "+35840000006",
			      "state", "active", "name", "", "given_name", "Maija", "surname",
			      "Mei", "id_number", "X1", "country", "FI", "lang", "fi", "keys");
	assert_int_equal(mreg_outputs(m, MREG_GET_USER, u, &l), 0);
	static const char *const names[] = {"msisdn", "givenName", "surName", "Language",
					    "hetu",   "Country",   "name",    "state"};
	static const char *const vals[] = {"+35840000006", "Maija", "Mei", "fi",
					   "X1",	   "FI",    "",	   "active"};
	assert_int_equal(l.n, 8);
	for (size_t i = 0; i < 8; i++) {
		const char *v = pv(&l, i, &n);
		assert_string_equal(n, names[i]);
		assert_string_equal(v, vals[i]);
	}
	json_decref(u);
	/* the user list: one msisdn each, never more than a decoder accepts */
	json_t *arr = json_array();
	for (int i = 0; i < 100; i++) {
		char ms[20];
		snprintf(ms, sizeof ms, "+3584000%04d", i);
		json_array_append_new(arr, json_pack("{s:s,s:s}", "msisdn", ms, "state", "active"));
	}
	json_t *lst = json_pack("{s:o,s:n}", "users", arr, "next");
	struct mss_list l2 = {0};
	assert_int_equal(mreg_outputs(m, MREG_LIST_USERS, lst, &l2), 0);
	assert_int_equal(l2.n, MSSP_MSG_MAX_LIST);
	assert_string_equal(pv(&l2, 0, &n), "+35840000000");
	assert_string_equal(n, "msisdn");
	assert_string_equal(pv(&l2, 63, &n), "+35840000063");
	json_decref(lst);
	/* the activation code */
	json_t *act = json_pack("{s:s,s:s}", "code", "1234-5678-9012", "expires",
				"2026-01-01T00:00:00.000Z");
	struct mss_list l3 = {0};
	assert_int_equal(mreg_outputs(m, MREG_ACTIVATE_USER, act, &l3), 0);
	assert_int_equal(l3.n, 2);
	assert_string_equal(pv(&l3, 0, &n), "1234-5678-9012");
	assert_string_equal(n, "ActivationCode");
	json_decref(act);
	/* certificates: serial first, then what is there */
	json_t *certs = json_pack("{s:s,s:[{s:s,s:s,s:s,s:n},{s:s,s:s}]}", "msisdn", "+3584",
				  "certificates", "serial", "01", "key_id", "k1", "state",
				  "active", "not_after", "serial", "02", "state", "revoked");
	struct mss_list l4 = {0};
	assert_int_equal(mreg_outputs(m, MREG_GET_CERTIFICATES, certs, &l4), 0);
	assert_int_equal(l4.n, 5);
	assert_string_equal(pv(&l4, 0, &n), "01");
	assert_string_equal(n, "serial");
	assert_string_equal(pv(&l4, 1, &n), "k1");
	assert_string_equal(n, "keyId");
	assert_string_equal(pv(&l4, 3, &n), "02");
	assert_string_equal(n, "serial");
	assert_string_equal(pv(&l4, 4, &n), "revoked");
	json_decref(certs);
	mss_msg_free(m);
}

/* Review finding 19: the activation code (shown once) is wiped in place
 * before the answer holding it is freed. */
static void
test_wipe_code(void **state)
{
	(void)state;
	json_t *act = json_pack("{s:s,s:s}", "code", "1234-5678-9012", "expires",
				"2026-01-01T00:00:00.000Z");
	const char *code = json_string_value(json_object_get(act, "code"));
	size_t len = strlen(code);
	static const char zero[32];
	assert_int_equal(len, 14);
	mreg_wipe_code(act);
	/* the same buffer, every byte of the code cleared */
	assert_ptr_equal(json_string_value(json_object_get(act, "code")), code);
	assert_memory_equal(code, zero, len);
	assert_string_equal(json_string_value(json_object_get(act, "expires")),
			    "2026-01-01T00:00:00.000Z");
	json_decref(act);
	/* nothing to wipe: no answer, no code, a code that is not text */
	mreg_wipe_code(NULL);
	json_t *other = json_pack("{s:s,s:i}", "state", "active", "code", 5);
	mreg_wipe_code(other);
	assert_string_equal(json_string_value(json_object_get(other, "state")), "active");
	assert_int_equal(json_integer_value(json_object_get(other, "code")), 5);
	json_decref(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_prefixes),
		cmocka_unit_test(test_create_update),
		cmocka_unit_test(test_lists_and_certificates),
		cmocka_unit_test(test_outputs),
		cmocka_unit_test(test_wipe_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
