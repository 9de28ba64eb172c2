/*
 * test_profile.c - unit tests for src/mss/profile.c.
 *
 * Every test asserts on something the module could get wrong; the tables of
 * good and bad URIs double as the grammar's specification by example (see
 * docs/internals/profile.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mss/profile.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parse and require success (the failure message names the URI). */
static void must_parse(const char *uri, struct mss_profile *p)
{
	char err[128] = "";

	if (mss_profile_parse(uri, p, err, sizeof(err)) != 0)
		fail_msg("parse of \"%s\" failed: %s", uri, err);
	assert_true(p->pr_valid);
}

/* Parse and require failure with a non-empty reason; *out must be left
 * invalid. */
static void must_fail(const char *uri)
{
	struct mss_profile p;
	char err[128] = "";

	memset(&p, 0x5a, sizeof(p));
	if (mss_profile_parse(uri, &p, err, sizeof(err)) != -1)
		fail_msg("parse of \"%s\" unexpectedly succeeded", uri);
	assert_true(err[0] != '\0');
	assert_false(p.pr_valid);
	assert_string_equal(p.pr_uri, "");
}

static bool sat(const char *req, const char *avail, enum mss_profile_cmp cmp)
{
	struct mss_profile r, a;

	must_parse(req, &r);
	must_parse(avail, &a);
	return mss_profile_satisfies(&r, &a, cmp);
}

static void canon(const char *uri, char *buf, size_t len)
{
	struct mss_profile p;

	must_parse(uri, &p);
	assert_int_equal(mss_profile_format(&p, buf, len), 0);
}

/* ---- parsing: mss: ---------------------------------------------------- */

static void test_parse_full(void **state)
{
	struct mss_profile p;

	(void)state;
	must_parse("mss:ficom.fi:authn:loa4:UICC", &p);
	assert_false(p.pr_legacy);
	assert_string_equal(p.pr_uri, "mss:ficom.fi:authn:loa4:UICC");
	assert_string_equal(p.pr_brand, "ficom.fi");
	assert_int_equal(p.pr_op, MSS_PROFILE_OP_AUTHN);
	assert_int_equal(p.pr_loa, MSS_LOA_4);
	assert_string_equal(p.pr_loa_ext, "");
	assert_int_equal(p.pr_sscd, MSS_SSCD_SIM);
	assert_int_equal(p.pr_nparams, 0);
}

static void test_parse_minimal_trailing_dropped(void **state)
{
	struct mss_profile p;

	(void)state;
	must_parse("mss::sign:loa3", &p);
	assert_string_equal(p.pr_brand, "");
	assert_int_equal(p.pr_op, MSS_PROFILE_OP_SIGN);
	assert_int_equal(p.pr_loa, MSS_LOA_3);
	assert_int_equal(p.pr_sscd, MSS_SSCD_ANY);

	must_parse("mss:demo", &p);
	assert_string_equal(p.pr_brand, "demo");
	assert_int_equal(p.pr_op, MSS_PROFILE_OP_ANY);
	assert_int_equal(p.pr_loa, MSS_LOA_ANY);
	assert_int_equal(p.pr_sscd, MSS_SSCD_ANY);
}

static void test_parse_any_spellings(void **state)
{
	static const char *const all_any[] = {
		"mss:", "mss:any", "mss:::", "mss::::", "mss:any:any:any:any",
		"mss:ANY:Any:aNy:ANY", "mss:%61ny", "mss:%41NY::",
	};
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(all_any); i++) {
		must_parse(all_any[i], &p);
		assert_string_equal(p.pr_brand, "");
		assert_int_equal(p.pr_op, MSS_PROFILE_OP_ANY);
		assert_int_equal(p.pr_loa, MSS_LOA_ANY);
		assert_int_equal(p.pr_sscd, MSS_SSCD_ANY);
	}
}

static void test_parse_case_folding(void **state)
{
	struct mss_profile p;

	(void)state;
	must_parse("MSS:Demo:SIGN:LOA3.EIDAS:App", &p);
	assert_string_equal(p.pr_uri, "MSS:Demo:SIGN:LOA3.EIDAS:App");
	assert_string_equal(p.pr_brand, "demo");
	assert_int_equal(p.pr_op, MSS_PROFILE_OP_SIGN);
	assert_int_equal(p.pr_loa, MSS_LOA_3);
	assert_string_equal(p.pr_loa_ext, "eidas");
	assert_int_equal(p.pr_sscd, MSS_SSCD_APP);
	must_parse("mSs:x", &p);
	assert_string_equal(p.pr_brand, "x");
}

static void test_parse_operations(void **state)
{
	static const struct {
		const char *uri;
		enum mss_profile_op op;
	} t[] = {
		{ "mss::sign", MSS_PROFILE_OP_SIGN },
		{ "mss::authn", MSS_PROFILE_OP_AUTHN },
		{ "mss::encrypt", MSS_PROFILE_OP_ENCRYPT },
		{ "mss::pop", MSS_PROFILE_OP_POP },
		{ "mss::popo", MSS_PROFILE_OP_POPO },
		{ "mss::consent", MSS_PROFILE_OP_CONSENT },
		{ "mss::anonymous", MSS_PROFILE_OP_ANONYMOUS },
		{ "mss::digest", MSS_PROFILE_OP_DIGEST },
		{ "mss::DIGEST", MSS_PROFILE_OP_DIGEST },
		{ "mss::any", MSS_PROFILE_OP_ANY },
		{ "mss::", MSS_PROFILE_OP_ANY },
	};
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		must_parse(t[i].uri, &p);
		assert_int_equal(p.pr_op, t[i].op);
	}
	must_fail("mss::signx");
	must_fail("mss::sig");
	must_fail("mss::auth");
	must_fail("mss::other");
	must_fail("mss::%73ign");   /* tokens are never percent-decoded */
	must_fail("mss::si+gn");
}

static void test_parse_loa(void **state)
{
	static const struct {
		const char *uri;
		enum mss_loa loa;
		const char *ext;
	} t[] = {
		{ "mss:::loa2", MSS_LOA_2, "" },
		{ "mss:::loa3", MSS_LOA_3, "" },
		{ "mss:::loa4", MSS_LOA_4, "" },
		{ "mss:::loa3.eidas", MSS_LOA_3, "eidas" },
		{ "mss:::LOA4.QES", MSS_LOA_4, "qes" },
		{ "mss:::loa4.eidas.high", MSS_LOA_4, "eidas.high" },
		{ "mss:::loa2.a-b_c9", MSS_LOA_2, "a-b_c9" },
	};
	static const char *const bad[] = {
		"mss:::loa1", "mss:::loa5", "mss:::loa", "mss:::loa33",
		"mss:::loa3x", "mss:::loa3.", "mss:::loa3..x", "mss:::loa3.x.",
		"mss:::loa3.x..y", "mss:::loa3.%41", "mss:::lo", "mss:::3",
		"mss:::level3", "mss:::loa3.x~",
	};
	char ext_ok[128], ext_long[128];
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		must_parse(t[i].uri, &p);
		assert_int_equal(p.pr_loa, t[i].loa);
		assert_string_equal(p.pr_loa_ext, t[i].ext);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
	/* Extension exactly at the cap, and one byte over. */
	snprintf(ext_ok, sizeof(ext_ok), "mss:::loa3.%0*d",
		 MSSP_PROFILE_MAX_LOA_EXT, 0);
	must_parse(ext_ok, &p);
	assert_int_equal(strlen(p.pr_loa_ext), MSSP_PROFILE_MAX_LOA_EXT);
	snprintf(ext_long, sizeof(ext_long), "mss:::loa3.%0*d",
		 MSSP_PROFILE_MAX_LOA_EXT + 1, 0);
	must_fail(ext_long);
}

static void test_parse_sscd(void **state)
{
	static const struct {
		const char *uri;
		enum mss_sscd sscd;
	} t[] = {
		{ "mss::::sim", MSS_SSCD_SIM },
		{ "mss::::UICC", MSS_SSCD_SIM },
		{ "mss::::uicc", MSS_SSCD_SIM },
		{ "mss::::app", MSS_SSCD_APP },
		{ "mss::::se", MSS_SSCD_SE },
		{ "mss::::SERVER", MSS_SSCD_SERVER },
		{ "mss::::any", MSS_SSCD_ANY },
		{ "mss::::", MSS_SSCD_ANY },
	};
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		must_parse(t[i].uri, &p);
		assert_int_equal(p.pr_sscd, t[i].sscd);
	}
	must_fail("mss::::hsm");
	must_fail("mss::::sims");
	must_fail("mss::::esim");
}

static void test_parse_brand_percent(void **state)
{
	struct mss_profile p;

	(void)state;
	must_parse("mss:ficom%2Efi:sign", &p);
	assert_string_equal(p.pr_brand, "ficom.fi");
	must_parse("mss:a%3ab:sign", &p);          /* lowercase hex accepted */
	assert_string_equal(p.pr_brand, "a:b");
	must_parse("mss:Telia%20Finland", &p);
	assert_string_equal(p.pr_brand, "telia finland");
	must_parse("mss:s%C3%84hk%C3%B6", &p);     /* UTF-8 kept, ASCII folded */
	assert_string_equal(p.pr_brand, "s\xc3\x84hk\xc3\xb6");
	must_parse("mss:~a-b_c.d", &p);
	assert_string_equal(p.pr_brand, "~a-b_c.d");
}

static void test_parse_brand_bad(void **state)
{
	static const char *const bad[] = {
		"mss:%", "mss:a%4", "mss:a%4:sign", "mss:%GG", "mss:%4G",
		"mss:%00", "mss:%0A", "mss:%1f", "mss:%7F", "mss:%C3",
		"mss:%C3%28", "mss:%C0%AF", "mss:%ED%A0%80", "mss:%F4%90%80%80",
		"mss:%E0%80%80", "mss:%FF", "mss:a+b", "mss:a/b", "mss:a@b",
		"mss:a!b", "mss:a;b", "mss:a'b", "mss:a=b",
	};
	char brand[MSSP_PROFILE_MAX_BRAND + 16];
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
	/* Brand exactly at the cap, and one byte over. */
	snprintf(brand, sizeof(brand), "mss:%0*d", MSSP_PROFILE_MAX_BRAND, 0);
	must_parse(brand, &p);
	assert_int_equal(strlen(p.pr_brand), MSSP_PROFILE_MAX_BRAND);
	snprintf(brand, sizeof(brand), "mss:%0*d", MSSP_PROFILE_MAX_BRAND + 1, 0);
	must_fail(brand);
}

static void test_parse_params(void **state)
{
	struct mss_profile p;

	(void)state;
	must_parse("mss:ficom.fi:authn:loa4:UICC#rsa&2048", &p);
	assert_int_equal(p.pr_nparams, 2);
	assert_string_equal(mss_profile_param_name(&p, 0), "rsa");
	assert_null(mss_profile_param_value(&p, 0));
	assert_true(p.pr_params[0].pp_fragment);
	assert_string_equal(mss_profile_param_name(&p, 1), "2048");
	assert_null(mss_profile_param_value(&p, 1));
	assert_null(mss_profile_param_name(&p, 2));
	assert_null(mss_profile_param_value(&p, 2));
	assert_null(mss_profile_param_name(NULL, 0));

	must_parse("mss::sign:loa3?ECC=true&AlgECC=NIST-256", &p);
	assert_int_equal(p.pr_sscd, MSS_SSCD_ANY);
	assert_int_equal(p.pr_nparams, 2);
	assert_string_equal(mss_profile_param_name(&p, 0), "ECC");
	assert_string_equal(mss_profile_param_value(&p, 0), "true");
	assert_false(p.pr_params[0].pp_fragment);
	assert_string_equal(mss_profile_param_name(&p, 1), "AlgECC");
	assert_string_equal(mss_profile_param_value(&p, 1), "NIST-256");

	/* Both sections, an empty value, escapes, sub-delims in values. */
	must_parse("mss:demo?a=&b=x%26y&c=p:q/r+s#k=%3D&z", &p);
	assert_int_equal(p.pr_nparams, 5);
	assert_string_equal(mss_profile_param_value(&p, 0), "");
	assert_string_equal(mss_profile_param_value(&p, 1), "x&y");
	assert_string_equal(mss_profile_param_value(&p, 2), "p:q/r+s");
	assert_string_equal(mss_profile_param_name(&p, 3), "k");
	assert_string_equal(mss_profile_param_value(&p, 3), "=");
	assert_true(p.pr_params[3].pp_fragment);
	assert_null(mss_profile_param_value(&p, 4));

	/* A query right after the scheme, and a colon in a value does not
	 * add an element. */
	must_parse("mss:?x=a:b:c:d:e", &p);
	assert_int_equal(p.pr_nparams, 1);
	assert_string_equal(mss_profile_param_value(&p, 0), "a:b:c:d:e");
}

static void test_parse_params_bad(void **state)
{
	static const char *const bad[] = {
		"mss::sign?", "mss::sign#", "mss::sign?#a", "mss::sign?a#",
		"mss::sign?a&&b", "mss::sign?&a", "mss::sign?a&", "mss::sign?=x",
		"mss::sign?a=b=c", "mss::sign?a=1&a=2", "mss::sign?a#a",
		"mss::sign#a#b", "mss::sign#a?b", "mss::sign?a=%",
		"mss::sign?a=%0d", "mss::sign?a:b=1", "mss::sign?a=x%ZZ",
		"mss::sign?a=[x]", "mss::sign?a/b",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
}

static void test_parse_params_cap(void **state)
{
	char uri[256];
	size_t o;
	struct mss_profile p;

	(void)state;
	o = (size_t)snprintf(uri, sizeof(uri), "mss:demo?p0");
	for (int i = 1; i < MSSP_PROFILE_MAX_EXT; i++)
		o += (size_t)snprintf(uri + o, sizeof(uri) - o, "&p%d", i);
	must_parse(uri, &p);
	assert_int_equal(p.pr_nparams, MSSP_PROFILE_MAX_EXT);
	assert_string_equal(mss_profile_param_name(&p, MSSP_PROFILE_MAX_EXT - 1),
			    "p15");
	snprintf(uri + o, sizeof(uri) - o, "#one_more");
	must_fail(uri);
}

static void test_parse_elements_cap(void **state)
{
	(void)state;
	must_fail("mss:a:sign:loa3:sim:extra");
	must_fail("mss:a:sign:loa3:sim:");
	must_fail("mss:::::");
	must_fail("mss::sign:loa3:sim:x?a=b");
}

static void test_parse_length_cap(void **state)
{
	char uri[MSSP_PROFILE_MAX_URI + 2];
	const char *head = "mss:demo:sign:loa3:app?v=";
	size_t hl = strlen(head);
	struct mss_profile p;
	char out[MSSP_PROFILE_MAX_URI + 1];

	(void)state;
	memcpy(uri, head, hl);
	memset(uri + hl, 'x', MSSP_PROFILE_MAX_URI - hl);
	uri[MSSP_PROFILE_MAX_URI] = '\0';
	must_parse(uri, &p);
	assert_int_equal(strlen(mss_profile_param_value(&p, 0)),
			 MSSP_PROFILE_MAX_URI - hl);
	assert_int_equal(mss_profile_format(&p, out, sizeof(out)), 0);
	assert_string_equal(out, uri);
	uri[MSSP_PROFILE_MAX_URI] = 'x';
	uri[MSSP_PROFILE_MAX_URI + 1] = '\0';
	must_fail(uri);

	/* The same for a legacy URI. */
	head = "http://example.org/";
	hl = strlen(head);
	memcpy(uri, head, hl);
	memset(uri + hl, 'y', MSSP_PROFILE_MAX_URI - hl);
	uri[MSSP_PROFILE_MAX_URI] = '\0';
	must_parse(uri, &p);
	assert_true(p.pr_legacy);
	uri[MSSP_PROFILE_MAX_URI] = 'y';
	uri[MSSP_PROFILE_MAX_URI + 1] = '\0';
	must_fail(uri);
}

static void test_parse_bad_characters(void **state)
{
	static const char *const bad[] = {
		"mss: :sign", "mss::sign\t", "mss::sign\n", "\x01mss:",
		"mss::sign:loa3\x7f", "mss:d\xc3\xa4mo", "mss::sign:loa3 ",
		" mss::sign", "http://alauda.mobi/non Repudiation",
		"http://alauda.mobi/\x80",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
}

static void test_parse_empty_and_null(void **state)
{
	struct mss_profile p;
	char err[64] = "";

	(void)state;
	must_fail("");
	assert_int_equal(mss_profile_parse(NULL, &p, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(mss_profile_parse("mss:", NULL, err, sizeof(err)), -1);
	/* err may be NULL or zero-sized. */
	assert_int_equal(mss_profile_parse("bogus", &p, NULL, 0), -1);
	err[0] = 'Z';
	assert_int_equal(mss_profile_parse("bogus", &p, err, 0), -1);
	assert_int_equal(err[0], 'Z');
	/* A small err buffer is truncated, still terminated. */
	assert_int_equal(mss_profile_parse("bogus", &p, err, 4), -1);
	assert_int_equal(strlen(err), 3);
}

static void test_parse_scheme(void **state)
{
	static const char *const bad[] = {
		"mss", "ms:x", "urn:mss:x", "ftp://alauda.mobi/x", "httpx://a/b",
		"http:/alauda.mobi/x", "http:alauda.mobi", "//alauda.mobi/x",
		"mss-x:a", "file:///etc/passwd",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
}

static void test_parse_error_never_echoes(void **state)
{
	/* Each bad input carries a marker; no error text may contain it. */
	static const char *const bad[] = {
		"mss:MARKER%zz", "mss::MARKER", "mss:::MARKER", "mss::::MARKER",
		"mss:::loa3.MARKER.", "mss::sign?MARKER=1&MARKER=2",
		"mss:MARKER:b:c:d:e", "MARKER:x", "http://MARKER@host/",
		"http://host/MARKER<", "mss::sign?MARKER=a=b", "mss:MARKER%00",
		"http://host:MARKER/",
	};
	struct mss_profile p;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		memset(err, 0, sizeof(err));
		assert_int_equal(mss_profile_parse(bad[i], &p, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		if (strstr(err, "MARKER") != NULL || strstr(err, "marker") != NULL)
			fail_msg("error text echoes input: %s", err);
	}
}

/* ---- parsing: legacy -------------------------------------------------- */

static void test_parse_legacy_ok(void **state)
{
	static const char *const ok[] = {
		"http://alauda.mobi/nonRepudiation",
		"http://alauda.mobi/digitalSignature",
		"http://mid.swisscom.ch/MID/v1/AuthProfile1",
		"http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml",
		"http://uri.gsma.com/mobileconnect/LoA3",
		"https://example.org",
		"HTTP://Example.ORG:8080/a?b=c#d",
		"http://[2001:db8::1]/p",
		"http://127.0.0.1/p%20q",
	};
	struct mss_profile p;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		must_parse(ok[i], &p);
		assert_true(p.pr_legacy);
		assert_string_equal(p.pr_uri, ok[i]);
		assert_int_equal(p.pr_op, MSS_PROFILE_OP_ANY);
		assert_int_equal(p.pr_nparams, 0);
	}
}

static void test_parse_legacy_bad(void **state)
{
	static const char *const bad[] = {
		"http://", "https://", "http:///path", "http://:80/",
		"http://user@alauda.mobi/", "http://alauda.mobi@evil/",
		"http://host:/", "http://host:99999/", "http://host:80a/",
		"http://host:1234567/", "http://[]/", "http://[zz]/",
		"http://[::1", "http://host/a<b", "http://host/a\"b",
		"http://host/a{b}", "http://host/a|b", "http://host/a\\b",
		"http://host/a^b", "http://host/a`b", "http://host/%",
		"http://host/%4", "http://host/%XY", "http://ho!st/",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		must_fail(bad[i]);
}

/* ---- orders ----------------------------------------------------------- */

static void test_sscd_strength(void **state)
{
	(void)state;
	assert_int_equal(mss_profile_sscd_strength(MSS_SSCD_ANY), 0);
	assert_int_equal(mss_profile_sscd_strength(MSS_SSCD_APP), 1);
	assert_int_equal(mss_profile_sscd_strength(MSS_SSCD_SERVER), 2);
	assert_int_equal(mss_profile_sscd_strength(MSS_SSCD_SE), 3);
	assert_int_equal(mss_profile_sscd_strength(MSS_SSCD_SIM), 3);
	assert_int_equal(mss_profile_sscd_strength((enum mss_sscd)99), -1);
	assert_int_equal(mss_profile_sscd_strength((enum mss_sscd)-1), -1);
	assert_true(MSS_LOA_2 < MSS_LOA_3 && MSS_LOA_3 < MSS_LOA_4);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(mss_profile_op_name(MSS_PROFILE_OP_POPO), "popo");
	assert_string_equal(mss_profile_op_name(MSS_PROFILE_OP_ANY), "any");
	assert_null(mss_profile_op_name((enum mss_profile_op)42));
	assert_string_equal(mss_profile_sscd_name(MSS_SSCD_SERVER), "server");
	assert_null(mss_profile_sscd_name((enum mss_sscd)42));
	assert_string_equal(mss_profile_cmp_name(MSS_CMP_BETTER), "better");
	assert_null(mss_profile_cmp_name(MSS_CMP_INVALID));
}

static void test_cmp_parse(void **state)
{
	(void)state;
	assert_int_equal(mss_profile_cmp_parse(NULL), MSS_CMP_EXACT);
	assert_int_equal(mss_profile_cmp_parse("exact"), MSS_CMP_EXACT);
	assert_int_equal(mss_profile_cmp_parse("minimum"), MSS_CMP_MINIMUM);
	assert_int_equal(mss_profile_cmp_parse("better"), MSS_CMP_BETTER);
	assert_int_equal(mss_profile_cmp_parse(""), MSS_CMP_INVALID);
	assert_int_equal(mss_profile_cmp_parse("Exact"), MSS_CMP_INVALID);
	assert_int_equal(mss_profile_cmp_parse("exact "), MSS_CMP_INVALID);
	assert_int_equal(mss_profile_cmp_parse("min"), MSS_CMP_INVALID);
	assert_int_equal(mss_profile_cmp_parse("best"), MSS_CMP_INVALID);
}

/* ---- comparison ------------------------------------------------------- */

static const enum mss_profile_cmp all_cmps[] = {
	MSS_CMP_EXACT, MSS_CMP_MINIMUM, MSS_CMP_BETTER,
};

static void test_sat_brand_operation_all_modes(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(all_cmps); i++) {
		enum mss_profile_cmp c = all_cmps[i];

		/* Different brand or operation never matches. */
		assert_false(sat("mss:other:sign:loa2", "mss:demo:sign:loa3:sim", c));
		assert_false(sat("mss::authn:loa2", "mss:demo:sign:loa3:sim", c));
		assert_false(sat("mss:demo:authn:loa2", "mss:demo:sign:loa3:sim", c));
		/* Brand is case-insensitive (both lowercased). */
		assert_true(sat("mss:DEMO:sign:loa2", "mss:demo:sign:loa4:sim", c) ==
			    (c != MSS_CMP_EXACT));
	}
	/* Any brand / any operation on the requested side. */
	assert_true(sat("mss::sign:loa3", "mss:demo:sign:loa3:app", MSS_CMP_EXACT));
	assert_true(sat("mss:any:any:loa3", "mss:demo:authn:loa3:app",
			MSS_CMP_EXACT));
	assert_true(sat("mss:", "mss:demo:popo:loa2:se", MSS_CMP_MINIMUM));
}

static void test_sat_available_any_is_not_concrete(void **state)
{
	(void)state;
	/* An "any" on the available side satisfies only "any". */
	for (size_t i = 0; i < ARRAY_LEN(all_cmps); i++) {
		enum mss_profile_cmp c = all_cmps[i];

		assert_false(sat("mss:demo:sign:loa2", "mss::sign:loa4:sim", c));
		assert_false(sat("mss::sign:loa2", "mss:demo::loa4:sim", c));
		assert_false(sat("mss::sign:loa2", "mss:demo:sign::sim", c));
		assert_false(sat("mss::sign::app", "mss:demo:sign:loa4", c));
	}
	assert_true(sat("mss::sign", "mss::sign", MSS_CMP_EXACT));
}

static void test_sat_exact(void **state)
{
	(void)state;
	assert_true(sat("mss::sign:loa3", "mss:demo:sign:loa3:app", MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3", "mss:demo:sign:loa4:app", MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3", "mss:demo:sign:loa2:app", MSS_CMP_EXACT));
	assert_true(sat("mss::sign:loa3:app", "mss:demo:sign:loa3:app",
			MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3:app", "mss:demo:sign:loa3:sim",
			 MSS_CMP_EXACT));
	/* sim and se have equal strength but are different devices. */
	assert_false(sat("mss::sign:loa3:sim", "mss:demo:sign:loa3:se",
			 MSS_CMP_EXACT));
	assert_true(sat("mss::sign:loa3:UICC", "mss:demo:sign:loa3:sim",
			MSS_CMP_EXACT));
	/* Any LoA, concrete SSCD. */
	assert_true(sat("mss::sign::server", "mss:demo:sign:loa2:server",
			MSS_CMP_EXACT));
}

static void test_sat_loa_extension(void **state)
{
	(void)state;
	/* Plain loa3 is satisfied by loa3.x. */
	assert_true(sat("mss::sign:loa3", "mss:d:sign:loa3.eidas:app",
			MSS_CMP_EXACT));
	/* loa3.x needs x. */
	assert_true(sat("mss::sign:loa3.eidas", "mss:d:sign:loa3.eidas:app",
			MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa3:app",
			 MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa3.qes:app",
			 MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa3.eidas.x:app",
			 MSS_CMP_EXACT));
	/* MINIMUM: a higher level still needs the extension. */
	assert_true(sat("mss::sign:loa3.eidas", "mss:d:sign:loa4.eidas:app",
			MSS_CMP_MINIMUM));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa4:app",
			 MSS_CMP_MINIMUM));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa2.eidas:app",
			 MSS_CMP_MINIMUM));
	/* BETTER: an extension is a filter, never an improvement. */
	assert_false(sat("mss::sign:loa3", "mss:d:sign:loa3.eidas:app",
			 MSS_CMP_BETTER));
	assert_true(sat("mss::sign:loa3.eidas", "mss:d:sign:loa4.eidas:app",
			MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3.eidas", "mss:d:sign:loa4:app",
			 MSS_CMP_BETTER));
}

static void test_sat_minimum(void **state)
{
	(void)state;
	assert_true(sat("mss::sign:loa3", "mss:d:sign:loa3:app", MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign:loa3", "mss:d:sign:loa4:app", MSS_CMP_MINIMUM));
	assert_false(sat("mss::sign:loa3", "mss:d:sign:loa2:sim", MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign::app", "mss:d:sign:loa2:server",
			MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign::app", "mss:d:sign:loa2:sim", MSS_CMP_MINIMUM));
	assert_false(sat("mss::sign::server", "mss:d:sign:loa4:app",
			 MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign::server", "mss:d:sign:loa2:se",
			MSS_CMP_MINIMUM));
	/* sim and se are equal strength: each is "at least" the other. */
	assert_true(sat("mss::sign::sim", "mss:d:sign:loa2:se", MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign::se", "mss:d:sign:loa2:sim", MSS_CMP_MINIMUM));
	/* Both dimensions must hold. */
	assert_false(sat("mss::sign:loa3:server", "mss:d:sign:loa4:app",
			 MSS_CMP_MINIMUM));
	assert_false(sat("mss::sign:loa3:server", "mss:d:sign:loa2:sim",
			 MSS_CMP_MINIMUM));
	assert_true(sat("mss::sign:loa3:server", "mss:d:sign:loa3:server",
			MSS_CMP_MINIMUM));
}

static void test_sat_better(void **state)
{
	(void)state;
	/* better than mss::sign:loa3 = loa4, any device. */
	assert_true(sat("mss::sign:loa3", "mss:d:sign:loa4:app", MSS_CMP_BETTER));
	assert_true(sat("mss::sign:loa3", "mss:d:sign:loa4:sim", MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3", "mss:d:sign:loa3:sim", MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3", "mss:d:sign:loa2:sim", MSS_CMP_BETTER));
	/* Both dimensions specified: >= in both, > in one. */
	assert_true(sat("mss::sign:loa3:app", "mss:d:sign:loa3:server",
			MSS_CMP_BETTER));
	assert_true(sat("mss::sign:loa3:app", "mss:d:sign:loa4:app",
			MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3:app", "mss:d:sign:loa3:app",
			 MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3:server", "mss:d:sign:loa4:app",
			 MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa3:sim", "mss:d:sign:loa3:se",
			 MSS_CMP_BETTER));
	/* Only the SSCD specified. */
	assert_true(sat("mss::sign::app", "mss:d:sign:loa2:sim", MSS_CMP_BETTER));
	assert_false(sat("mss::sign::sim", "mss:d:sign:loa4:sim", MSS_CMP_BETTER));
	/* Nothing is strictly better than "anything", nor than the top. */
	assert_false(sat("mss::sign", "mss:d:sign:loa4:sim", MSS_CMP_BETTER));
	assert_false(sat("mss::sign:loa4:sim", "mss:d:sign:loa4:sim",
			 MSS_CMP_BETTER));
}

static void test_sat_params(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(all_cmps); i++) {
		enum mss_profile_cmp c = all_cmps[i];
		const char *av = "mss:d:sign:loa4:sim?ECC=true&AlgECC=NIST-256#x";

		assert_true(sat("mss::sign:loa3?ECC=true", av, c) ==
			    (c != MSS_CMP_EXACT));
		assert_false(sat("mss::sign:loa3?ECC=false", av, c));
		assert_false(sat("mss::sign:loa3?ecc=true", av, c));
		assert_false(sat("mss::sign:loa3?RSA", av, c));
		/* Key-only and valued are different. */
		assert_false(sat("mss::sign:loa3?ECC", av, c));
		assert_false(sat("mss::sign:loa3#x=1", av, c));
	}
	/* Query or fragment does not matter; extra available params do not. */
	assert_true(sat("mss::sign:loa4#ECC=true&x", "mss:d:sign:loa4:sim?x&ECC=true&y",
			MSS_CMP_EXACT));
	assert_true(sat("mss::sign:loa4", "mss:d:sign:loa4:sim#rsa&2048",
			MSS_CMP_EXACT));
	assert_true(sat("mss::sign?a=%41", "mss:d:sign?a=A", MSS_CMP_EXACT));
	assert_true(sat("mss::sign?a=", "mss:d:sign?a=", MSS_CMP_EXACT));
	assert_false(sat("mss::sign?a=", "mss:d:sign?a", MSS_CMP_EXACT));
}

static void test_sat_legacy(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(all_cmps); i++) {
		enum mss_profile_cmp c = all_cmps[i];

		assert_true(sat("http://alauda.mobi/nonRepudiation",
				"http://alauda.mobi/nonRepudiation", c));
		/* Byte-equal only. */
		assert_false(sat("http://alauda.mobi/nonRepudiation",
				 "http://alauda.mobi/nonrepudiation", c));
		assert_false(sat("http://alauda.mobi/nonRepudiation",
				 "HTTP://alauda.mobi/nonRepudiation", c));
		assert_false(sat("http://alauda.mobi/nonRepudiation",
				 "http://alauda.mobi/nonRepudiation/", c));
		/* Never across kinds, not even against "match everything". */
		assert_false(sat("http://alauda.mobi/nonRepudiation",
				 "mss:demo:sign:loa3:app", c));
		assert_false(sat("mss:", "http://alauda.mobi/nonRepudiation", c));
		assert_false(sat("mss::sign:loa3", "http://alauda.mobi/nonRepudiation",
				 c));
	}
}

static void test_sat_invalid_inputs(void **state)
{
	struct mss_profile r, a, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	must_parse("mss:", &r);
	must_parse("mss:demo:sign:loa3:app", &a);
	assert_true(mss_profile_satisfies(&r, &a, MSS_CMP_EXACT));
	assert_false(mss_profile_satisfies(&r, &a, MSS_CMP_INVALID));
	assert_false(mss_profile_satisfies(&r, &a, (enum mss_profile_cmp)7));
	assert_false(mss_profile_satisfies(NULL, &a, MSS_CMP_EXACT));
	assert_false(mss_profile_satisfies(&r, NULL, MSS_CMP_EXACT));
	/* A zeroed struct looks like "all any" but is not valid. */
	assert_false(mss_profile_satisfies(&zero, &a, MSS_CMP_MINIMUM));
	assert_false(mss_profile_satisfies(&r, &zero, MSS_CMP_MINIMUM));
	assert_false(mss_profile_satisfies(&zero, &zero, MSS_CMP_EXACT));
	/* The output of a failed parse is invalid too. */
	assert_int_equal(mss_profile_parse("mss::bogus", &r, NULL, 0), -1);
	assert_false(mss_profile_satisfies(&r, &a, MSS_CMP_MINIMUM));
}

static void test_sat_copy_by_value(void **state)
{
	struct mss_profile a, b, c;

	(void)state;
	must_parse("mss:d:sign:loa3:app?k=v#f", &a);
	b = a;                      /* offsets, not pointers: still valid */
	memset(&a, 0, sizeof(a));
	must_parse("mss::sign:loa3?k=v#f", &c);
	assert_true(mss_profile_satisfies(&c, &b, MSS_CMP_EXACT));
	assert_string_equal(mss_profile_param_value(&b, 0), "v");
}

/* The facts of protocol.md 5a and the demo environment. */
static void test_sat_demo_minimal_profiles(void **state)
{
	static const char *const keys[] = {
		"mss:demo:authn:loa3:app", "mss:demo:sign:loa3:app",
		"mss:demo:authn:loa2:app",
	};

	(void)state;
	assert_true(sat("mss::sign:loa3", keys[1], MSS_CMP_EXACT));
	assert_true(sat("mss::authn:loa3", keys[0], MSS_CMP_EXACT));
	assert_true(sat("mss::authn:loa2", keys[2], MSS_CMP_EXACT));
	assert_false(sat("mss::sign:loa3", keys[0], MSS_CMP_EXACT));
	assert_false(sat("mss::authn:loa2", keys[0], MSS_CMP_EXACT));
	assert_true(sat("mss::authn:loa2", keys[0], MSS_CMP_MINIMUM));
}

/* ---- selection -------------------------------------------------------- */

static void parse_all(const char *const *uris, size_t n, struct mss_profile *out)
{
	for (size_t i = 0; i < n; i++)
		must_parse(uris[i], &out[i]);
}

static void test_select_edge_cases(void **state)
{
	struct mss_profile r[1], a[1];

	(void)state;
	must_parse("mss::sign:loa3", &r[0]);
	must_parse("mss:d:sign:loa3:app", &a[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 1, MSS_CMP_EXACT), 0);
	assert_int_equal(mss_profile_select(r, 0, a, 1, MSS_CMP_EXACT), -1);
	assert_int_equal(mss_profile_select(r, 1, a, 0, MSS_CMP_EXACT), -1);
	assert_int_equal(mss_profile_select(NULL, 0, a, 1, MSS_CMP_MINIMUM), -1);
	assert_int_equal(mss_profile_select(r, 1, NULL, 0, MSS_CMP_MINIMUM), -1);
	assert_int_equal(mss_profile_select(r, 1, a, 1, MSS_CMP_INVALID), -1);
	assert_int_equal(mss_profile_select(r, 1, a, 1, MSS_CMP_BETTER), -1);
}

static void test_select_exact_request_order(void **state)
{
	static const char *const req[] = { "mss::authn:loa3", "mss::sign:loa3" };
	static const char *const av[] = {
		"mss:d:sign:loa3:app", "mss:d:authn:loa3:sim",
		"mss:d:authn:loa3:app",
	};
	struct mss_profile r[2], a[3];

	(void)state;
	parse_all(req, 2, r);
	parse_all(av, 3, a);
	/* The first request wins even though a later one matches earlier;
	 * within a request, availability order decides. */
	assert_int_equal(mss_profile_select(r, 2, a, 3, MSS_CMP_EXACT), 1);
	assert_int_equal(mss_profile_select(&r[1], 1, a, 3, MSS_CMP_EXACT), 0);
	/* EXACT does not look for the weakest. */
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_EXACT), 1);
}

static void test_select_minimum_weakest(void **state)
{
	static const char *const av[] = {
		"mss:d:sign:loa4:sim", "mss:d:sign:loa3:sim", "mss:d:sign:loa3:server",
		"mss:d:sign:loa3:app", "mss:d:sign:loa2:app", "mss:d:authn:loa3:app",
	};
	struct mss_profile r[2], a[6];

	(void)state;
	parse_all(av, 6, a);
	must_parse("mss::sign:loa3", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 6, MSS_CMP_MINIMUM), 3);
	must_parse("mss::sign:loa3:server", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 6, MSS_CMP_MINIMUM), 2);
	must_parse("mss::sign:loa4", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 6, MSS_CMP_MINIMUM), 0);
	/* At least as good as ONE of the requested: the weakest overall. */
	must_parse("mss::sign:loa4", &r[0]);
	must_parse("mss::sign:loa2", &r[1]);
	assert_int_equal(mss_profile_select(r, 2, a, 6, MSS_CMP_MINIMUM), 4);
	must_parse("mss::consent", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 6, MSS_CMP_MINIMUM), -1);
}

static void test_select_ties_by_availability(void **state)
{
	static const char *const av[] = {
		"mss:d:sign:loa4:sim", "mss:d:sign:loa3:se", "mss:d:sign:loa3:sim",
	};
	struct mss_profile r[1], a[3];

	(void)state;
	parse_all(av, 3, a);
	must_parse("mss::sign:loa3", &r[0]);
	/* se and sim are equal strength: the earlier one wins. */
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_MINIMUM), 1);
	assert_int_equal(mss_profile_select(r, 1, &a[1], 2, MSS_CMP_MINIMUM), 0);
}

static void test_select_better_than_all(void **state)
{
	static const char *const av[] = {
		"mss:d:sign:loa4:sim", "mss:d:sign:loa3:sim", "mss:d:sign:loa4:app",
	};
	struct mss_profile r[2], a[3];

	(void)state;
	parse_all(av, 3, a);
	must_parse("mss::sign:loa2", &r[0]);
	must_parse("mss::sign:loa3", &r[1]);
	/* loa3:sim is better than loa2 but not than loa3; the weakest of the
	 * loa4 keys is the app one. */
	assert_int_equal(mss_profile_select(r, 2, a, 3, MSS_CMP_BETTER), 2);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_BETTER), 1);
	must_parse("mss::sign:loa4", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_BETTER), -1);
}

static void test_select_demo_users(void **state)
{
	static const char *const user1[] = {
		"mss:demo:authn:loa3:app", "mss:demo:sign:loa3:app",
		"mss:demo:authn:loa2:app",
	};
	static const char *const user6[] = { "mss:demo:authn:loa3:app" };
	struct mss_profile r[1], a[3], a6[1];

	(void)state;
	parse_all(user1, 3, a);
	parse_all(user6, 1, a6);
	must_parse("mss::authn:loa2", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_EXACT), 2);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_MINIMUM), 2);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_BETTER), 0);
	must_parse("mss::authn:loa3", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_EXACT), 0);
	must_parse("mss::sign:loa3", &r[0]);
	assert_int_equal(mss_profile_select(r, 1, a, 3, MSS_CMP_EXACT), 1);
	/* +35847000006 holds no signing key: 109. */
	assert_int_equal(mss_profile_select(r, 1, a6, 1, MSS_CMP_MINIMUM), -1);
}

static void test_select_legacy(void **state)
{
	struct mss_profile r[1], a[2];

	(void)state;
	must_parse("http://alauda.mobi/nonRepudiation", &r[0]);
	must_parse("mss:demo:sign:loa3:app", &a[0]);
	must_parse("http://alauda.mobi/nonRepudiation", &a[1]);
	assert_int_equal(mss_profile_select(r, 1, a, 2, MSS_CMP_EXACT), 1);
	assert_int_equal(mss_profile_select(r, 1, a, 1, MSS_CMP_MINIMUM), -1);
}

/* ---- aliases ---------------------------------------------------------- */

static void test_alias_demo_table(void **state)
{
	static const struct {
		const char *from, *to;
	} want[] = {
		{ "http://alauda.mobi/digitalSignature", "mss::authn:loa3" },
		{ "http://alauda.mobi/nonRepudiation", "mss::sign:loa3" },
		{ "http://mid.swisscom.ch/MID/v1/AuthProfile1", "mss::authn:loa3" },
		{ "http://mid.swisscom.ch/Any-LoA4", "mss::authn:loa3" },
		{ "http://mid.swisscom.ch/Device-LoA4", "mss::authn:loa3" },
	};
	struct mss_profile p, key;
	char buf[MSSP_PROFILE_MAX_URI + 1], err[64];

	(void)state;
	assert_int_equal(mss_profile_demo_aliases_count, ARRAY_LEN(want));
	must_parse("mss:demo:authn:loa3:app", &key);
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		/* Each source is itself a valid legacy profile URI. */
		must_parse(want[i].from, &p);
		assert_true(p.pr_legacy);
		assert_int_equal(mss_profile_resolve_alias(want[i].from,
				 mss_profile_demo_aliases,
				 mss_profile_demo_aliases_count, &p, err,
				 sizeof(err)), 0);
		assert_false(p.pr_legacy);
		assert_int_equal(mss_profile_format(&p, buf, sizeof(buf)), 0);
		assert_string_equal(buf, want[i].to);
	}
	/* The authentication aliases reach a demo user's authn key. */
	assert_int_equal(mss_profile_resolve_alias(
		"http://mid.swisscom.ch/Device-LoA4", mss_profile_demo_aliases,
		mss_profile_demo_aliases_count, &p, NULL, 0), 0);
	assert_true(mss_profile_satisfies(&p, &key, MSS_CMP_EXACT));
}

static void test_alias_not_found(void **state)
{
	struct mss_profile p;
	char err[64] = "";

	(void)state;
	/* Byte-exact: case, trailing slash and https all miss. */
	static const char *const miss[] = {
		"http://alauda.mobi/nonrepudiation",
		"http://alauda.mobi/nonRepudiation/",
		"https://alauda.mobi/nonRepudiation", "mss::sign:loa3", "",
	};
	for (size_t i = 0; i < ARRAY_LEN(miss); i++) {
		err[0] = '\0';
		assert_int_equal(mss_profile_resolve_alias(miss[i],
				 mss_profile_demo_aliases,
				 mss_profile_demo_aliases_count, &p, err,
				 sizeof(err)), -1);
		assert_false(p.pr_valid);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(mss_profile_resolve_alias(NULL, mss_profile_demo_aliases,
				 mss_profile_demo_aliases_count, &p, NULL, 0), -1);
	assert_int_equal(mss_profile_resolve_alias("http://x/", NULL, 0, &p,
						   NULL, 0), -1);
	assert_int_equal(mss_profile_resolve_alias("http://x/", NULL, 3, &p,
						   NULL, 0), -1);
	assert_int_equal(mss_profile_resolve_alias("http://x/",
				 mss_profile_demo_aliases, 1, NULL, NULL, 0), -1);
}

static void test_alias_bad_targets(void **state)
{
	static const struct mss_profile_alias table[] = {
		{ NULL, "mss::sign" },
		{ "http://a/legacy", "http://b/other" },   /* no chaining */
		{ "http://a/broken", "mss::nonsense" },
		{ "http://a/null", NULL },
		{ "http://a/ok", "mss:x:sign:loa2" },
		{ "http://a/ok", "mss:y:sign:loa4" },       /* first match wins */
	};
	struct mss_profile p;

	(void)state;
	assert_int_equal(mss_profile_resolve_alias("http://a/legacy", table,
				 ARRAY_LEN(table), &p, NULL, 0), -1);
	assert_false(p.pr_valid);
	assert_int_equal(mss_profile_resolve_alias("http://a/broken", table,
				 ARRAY_LEN(table), &p, NULL, 0), -1);
	assert_int_equal(mss_profile_resolve_alias("http://a/null", table,
				 ARRAY_LEN(table), &p, NULL, 0), -1);
	assert_int_equal(mss_profile_resolve_alias("http://a/ok", table,
				 ARRAY_LEN(table), &p, NULL, 0), 0);
	assert_string_equal(p.pr_brand, "x");
}

/* ---- format ----------------------------------------------------------- */

static void test_format_canonical(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "mss::sign:loa3", "mss::sign:loa3" },
		{ "MSS:any:SIGN:LOA3:ANY", "mss::sign:loa3" },
		{ "mss:any:any:any:any", "mss:" },
		{ "mss:::::", NULL },
		{ "mss::::", "mss:" },
		{ "mss:demo::", "mss:demo" },
		{ "mss:ficom.fi:authn:loa4:UICC#rsa&2048",
		  "mss:ficom.fi:authn:loa4:sim#rsa&2048" },
		{ "mss:any:any:any:app", "mss::::app" },
		{ "mss:%46icom%2efi", "mss:ficom.fi" },
		{ "mss:a%3Ab", "mss:a%3Ab" },
		{ "mss:a%3ab", "mss:a%3Ab" },
		{ "mss:Telia%20FI", "mss:telia%20fi" },
		{ "mss:s%C3%84hk%C3%B6", "mss:s%C3%84hk%C3%B6" },
		{ "mss:::LOA3.EIDAS", "mss:::loa3.eidas" },
		{ "mss:x?A=%41%3a:&b#c=%26", "mss:x?A=A::&b#c=%26" },
		{ "mss:?ECC=true&AlgECC=NIST-256", "mss:?ECC=true&AlgECC=NIST-256" },
		{ "http://alauda.mobi/nonRepudiation",
		  "http://alauda.mobi/nonRepudiation" },
		{ "HTTP://Alauda.mobi/x", "HTTP://Alauda.mobi/x" },
	};
	char buf[MSSP_PROFILE_MAX_URI + 1];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		if (t[i].out == NULL) {
			must_fail(t[i].in);
			continue;
		}
		canon(t[i].in, buf, sizeof(buf));
		assert_string_equal(buf, t[i].out);
		assert_true(strlen(buf) <= strlen(t[i].in));
	}
}

static void test_format_roundtrip(void **state)
{
	static const char *const uris[] = {
		"mss:ficom.fi:authn:loa4:UICC#rsa&2048",
		"mss:%41%3A%25:consent:loa2.a.b:se?x=%2F%3F&y#z=%23",
		"mss:::loa4", "mss:", "mss:demo:popo:LOA3:server?k",
	};
	char one[MSSP_PROFILE_MAX_URI + 1], two[MSSP_PROFILE_MAX_URI + 1];
	struct mss_profile a, b;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(uris); i++) {
		must_parse(uris[i], &a);
		assert_int_equal(mss_profile_format(&a, one, sizeof(one)), 0);
		must_parse(one, &b);
		assert_int_equal(mss_profile_format(&b, two, sizeof(two)), 0);
		assert_string_equal(one, two);
		/* Same meaning both ways. */
		assert_true(mss_profile_satisfies(&a, &b, MSS_CMP_EXACT));
		assert_true(mss_profile_satisfies(&b, &a, MSS_CMP_EXACT));
		assert_string_equal(a.pr_brand, b.pr_brand);
		assert_int_equal(a.pr_nparams, b.pr_nparams);
	}
}

static void test_format_buffer(void **state)
{
	struct mss_profile p, zero;
	char buf[32];

	(void)state;
	memset(&zero, 0, sizeof(zero));
	must_parse("mss::sign:loa3", &p);       /* 14 chars */
	memset(buf, 'Q', sizeof(buf));
	assert_int_equal(mss_profile_format(&p, buf, 15), 0);
	assert_string_equal(buf, "mss::sign:loa3");
	memset(buf, 'Q', sizeof(buf));
	assert_int_equal(mss_profile_format(&p, buf, 14), -1);
	assert_string_equal(buf, "");
	assert_int_equal(buf[14], 'Q');         /* nothing past len written */
	assert_int_equal(mss_profile_format(&p, buf, 1), -1);
	assert_int_equal(mss_profile_format(&p, NULL, 10), -1);
	assert_int_equal(mss_profile_format(&p, buf, 0), -1);
	buf[0] = 'Q';
	assert_int_equal(mss_profile_format(NULL, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	buf[0] = 'Q';
	assert_int_equal(mss_profile_format(&zero, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	must_parse("http://a.b/c", &p);         /* legacy: 12 chars */
	assert_int_equal(mss_profile_format(&p, buf, 12), -1);
	assert_int_equal(mss_profile_format(&p, buf, 13), 0);
	assert_string_equal(buf, "http://a.b/c");
}

/* ---- JSON ------------------------------------------------------------- */

static void test_json_full(void **state)
{
	struct mss_profile p;
	json_t *j, *params, *pp;

	(void)state;
	must_parse("mss:Demo:sign:loa3.eidas:UICC?ECC=true#rsa", &p);
	j = mss_profile_to_json(&p);
	assert_non_null(j);
	assert_int_equal(j->refcount, 1);
	assert_string_equal(json_string_value(json_object_get(j, "uri")),
			    "mss:Demo:sign:loa3.eidas:UICC?ECC=true#rsa");
	assert_string_equal(json_string_value(json_object_get(j, "canonical")),
			    "mss:demo:sign:loa3.eidas:sim?ECC=true#rsa");
	assert_true(json_is_false(json_object_get(j, "legacy")));
	assert_string_equal(json_string_value(json_object_get(j, "brand")), "demo");
	assert_string_equal(json_string_value(json_object_get(j, "operation")),
			    "sign");
	assert_string_equal(json_string_value(json_object_get(j, "loa")),
			    "loa3.eidas");
	assert_int_equal(json_integer_value(json_object_get(j, "loa_level")), 3);
	assert_string_equal(json_string_value(json_object_get(j, "loa_ext")),
			    "eidas");
	assert_string_equal(json_string_value(json_object_get(j, "sscd")), "sim");
	assert_int_equal(json_integer_value(json_object_get(j, "sscd_strength")), 3);
	params = json_object_get(j, "params");
	assert_true(json_is_array(params));
	assert_int_equal(json_array_size(params), 2);
	pp = json_array_get(params, 0);
	assert_string_equal(json_string_value(json_object_get(pp, "name")), "ECC");
	assert_string_equal(json_string_value(json_object_get(pp, "value")), "true");
	assert_string_equal(json_string_value(json_object_get(pp, "in")), "query");
	pp = json_array_get(params, 1);
	assert_string_equal(json_string_value(json_object_get(pp, "name")), "rsa");
	assert_true(json_is_null(json_object_get(pp, "value")));
	assert_string_equal(json_string_value(json_object_get(pp, "in")),
			    "fragment");
	json_decref(j);
}

static void test_json_any_is_null(void **state)
{
	static const char *const keys[] = {
		"brand", "operation", "loa", "loa_level", "loa_ext", "sscd",
		"sscd_strength",
	};
	struct mss_profile p;
	json_t *j;

	(void)state;
	must_parse("mss:", &p);
	j = mss_profile_to_json(&p);
	assert_non_null(j);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		json_t *v = json_object_get(j, keys[i]);

		if (v == NULL || !json_is_null(v))
			fail_msg("key %s should be present and null", keys[i]);
	}
	assert_int_equal(json_array_size(json_object_get(j, "params")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "canonical")),
			    "mss:");
	json_decref(j);

	/* LoA without extension: loa_ext null, loa_level set. */
	must_parse("mss::sign:loa2", &p);
	j = mss_profile_to_json(&p);
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(j, "loa_ext")));
	assert_int_equal(json_integer_value(json_object_get(j, "loa_level")), 2);
	assert_true(json_is_null(json_object_get(j, "sscd")));
	json_decref(j);
}

static void test_json_legacy_and_invalid(void **state)
{
	struct mss_profile p, zero;
	json_t *j;
	char *s;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	must_parse("http://alauda.mobi/nonRepudiation", &p);
	j = mss_profile_to_json(&p);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "legacy")));
	assert_int_equal(json_object_size(j), 3);
	assert_null(json_object_get(j, "operation"));
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	assert_string_equal(s, "{\"canonical\":\"http://alauda.mobi/nonRepudiation\","
			       "\"legacy\":true,"
			       "\"uri\":\"http://alauda.mobi/nonRepudiation\"}");
	free(s);
	json_decref(j);
	assert_null(mss_profile_to_json(NULL));
	assert_null(mss_profile_to_json(&zero));

	/* A UTF-8 brand survives into JSON. */
	must_parse("mss:s%C3%A4hk%C3%B6", &p);
	j = mss_profile_to_json(&p);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "brand")),
			    "s\xc3\xa4hk\xc3\xb6");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_minimal_trailing_dropped),
		cmocka_unit_test(test_parse_any_spellings),
		cmocka_unit_test(test_parse_case_folding),
		cmocka_unit_test(test_parse_operations),
		cmocka_unit_test(test_parse_loa),
		cmocka_unit_test(test_parse_sscd),
		cmocka_unit_test(test_parse_brand_percent),
		cmocka_unit_test(test_parse_brand_bad),
		cmocka_unit_test(test_parse_params),
		cmocka_unit_test(test_parse_params_bad),
		cmocka_unit_test(test_parse_params_cap),
		cmocka_unit_test(test_parse_elements_cap),
		cmocka_unit_test(test_parse_length_cap),
		cmocka_unit_test(test_parse_bad_characters),
		cmocka_unit_test(test_parse_empty_and_null),
		cmocka_unit_test(test_parse_scheme),
		cmocka_unit_test(test_parse_error_never_echoes),
		cmocka_unit_test(test_parse_legacy_ok),
		cmocka_unit_test(test_parse_legacy_bad),
		cmocka_unit_test(test_sscd_strength),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cmp_parse),
		cmocka_unit_test(test_sat_brand_operation_all_modes),
		cmocka_unit_test(test_sat_available_any_is_not_concrete),
		cmocka_unit_test(test_sat_exact),
		cmocka_unit_test(test_sat_loa_extension),
		cmocka_unit_test(test_sat_minimum),
		cmocka_unit_test(test_sat_better),
		cmocka_unit_test(test_sat_params),
		cmocka_unit_test(test_sat_legacy),
		cmocka_unit_test(test_sat_invalid_inputs),
		cmocka_unit_test(test_sat_copy_by_value),
		cmocka_unit_test(test_sat_demo_minimal_profiles),
		cmocka_unit_test(test_select_edge_cases),
		cmocka_unit_test(test_select_exact_request_order),
		cmocka_unit_test(test_select_minimum_weakest),
		cmocka_unit_test(test_select_ties_by_availability),
		cmocka_unit_test(test_select_better_than_all),
		cmocka_unit_test(test_select_demo_users),
		cmocka_unit_test(test_select_legacy),
		cmocka_unit_test(test_alias_demo_table),
		cmocka_unit_test(test_alias_not_found),
		cmocka_unit_test(test_alias_bad_targets),
		cmocka_unit_test(test_format_canonical),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_format_buffer),
		cmocka_unit_test(test_json_full),
		cmocka_unit_test(test_json_any_is_null),
		cmocka_unit_test(test_json_legacy_and_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
