/* test_lex.c - XML Schema lexical checks. */
#include "testutil.h"

#include "mss/lex.h"
#include "util/utf8.h"

static void
test_types(void **state)
{
	(void)state;
	assert_int_equal(mss_lex_check(MSS_X_INTEGER, "-12"), 0);
	assert_int_equal(mss_lex_check(MSS_X_INTEGER, "1.5"), -1);
	assert_int_equal(mss_lex_check(MSS_X_INTEGER, ""), -1);
	assert_int_equal(mss_lex_check(MSS_X_POSINT, "80"), 0);
	assert_int_equal(mss_lex_check(MSS_X_POSINT, "+080"), 0);
	assert_int_equal(mss_lex_check(MSS_X_POSINT, "0"), -1);
	assert_int_equal(mss_lex_check(MSS_X_POSINT, "-1"), -1);
	assert_int_equal(mss_lex_check(MSS_X_POSINT, "123456789012345678901234567890123"), -1);
	assert_int_equal(mss_lex_check(MSS_X_BOOLEAN, "true"), 0);
	assert_int_equal(mss_lex_check(MSS_X_BOOLEAN, "0"), 0);
	assert_int_equal(mss_lex_check(MSS_X_BOOLEAN, "TRUE"), -1);
	assert_int_equal(mss_lex_check(MSS_X_NCNAME, "AP.TEST.123.45"), 0);
	assert_int_equal(mss_lex_check(MSS_X_NCNAME, "_1"), 0);
	assert_int_equal(mss_lex_check(MSS_X_NCNAME, "1abc"), -1);
	assert_int_equal(mss_lex_check(MSS_X_NCNAME, "a:b"), -1);
	assert_int_equal(mss_lex_check(MSS_X_NCNAME, "a b"), -1);
	assert_int_equal(mss_lex_check(MSS_X_ANYURI, "http://demo.ap/"), 0);
	assert_int_equal(mss_lex_check(MSS_X_ANYURI, "http://a b/"), -1);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "TWFu"), 0);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "TWE="), 0);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "TQ=="), 0);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "TQ="), -1);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "T=Q="), -1);
	assert_int_equal(mss_lex_check(MSS_X_BASE64, "TW-u"), -1);
	assert_int_equal(mss_lex_check(MSS_X_STRING, "a\x01"), -1);
	assert_int_equal(mss_lex_check(MSS_X_STRING, "a\tb\r\n"), 0);
}

static void
test_normalize(void **state)
{
	char a[] = " \n TWFu\n TWFu \t";
	char b[] = "  http://x/ \n";
	char c[] = "  keep  ";
	(void)state;

	assert_int_equal(mss_lex_normalize(MSS_X_BASE64, a), 8);
	assert_string_equal(a, "TWFuTWFu");
	mss_lex_normalize(MSS_X_ANYURI, b);
	assert_string_equal(b, "http://x/");
	mss_lex_normalize(MSS_X_STRING, c);
	assert_string_equal(c, "  keep  ");
}

static void
test_datetime(void **state)
{
	long long t;
	bool tz;
	(void)state;

	assert_int_equal(mss_lex_datetime("1970-01-01T00:00:00Z", &t, &tz), 0);
	assert_int_equal(t, 0);
	assert_true(tz);
	assert_int_equal(mss_lex_datetime("2021-03-04T09:04:40.616+01:00", &t, &tz), 0);
	assert_int_equal(t, 1614845080);
	assert_int_equal(mss_lex_datetime("2026-11-22T10:00:00", &t, &tz), 0);
	assert_false(tz);
	assert_int_equal(mss_lex_datetime("2024-02-29T00:00:00Z", &t, &tz), 0);
	assert_int_equal(mss_lex_datetime("2023-02-29T00:00:00Z", &t, &tz), -1);
	assert_int_equal(mss_lex_datetime("2023-13-01T00:00:00Z", &t, &tz), -1);
	assert_int_equal(mss_lex_datetime("2023-01-01 00:00:00Z", &t, &tz), -1);
	assert_int_equal(mss_lex_datetime("2023-01-01T00:00:00+1:00", &t, &tz), -1);
	assert_int_equal(mss_lex_datetime("2023-01-01T00:00:00Zjunk", &t, &tz), -1);
}

static void
test_base64_decode(void **state)
{
	unsigned char out[16];
	(void)state;

	assert_int_equal(mss_lex_base64_decode("TWFu", out, sizeof(out)), 3);
	assert_memory_equal(out, "Man", 3);
	assert_int_equal(mss_lex_base64_decode("TWE=", out, sizeof(out)), 2);
	assert_int_equal(mss_lex_base64_decode("TQ==", NULL, 1), 1);
	assert_int_equal(mss_lex_base64_decode("TWFuTWFu", out, 5), -1); /* cap */
	assert_int_equal(mss_lex_base64_decode("TR==", out, sizeof(out)), -1); /* non-canonical */
	assert_int_equal(mss_lex_base64_decode("TW=u", out, sizeof(out)), -1);
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(mss_lex_utf8_valid("a\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_false(mss_lex_utf8_valid("\xc0\xaf", 2));	      /* overlong */
	assert_false(mss_lex_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	assert_false(mss_lex_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
	assert_false(mss_lex_utf8_valid("\xe2\x82", 2));	      /* truncated */
	assert_true(mss_lex_has_controls("a\xc2\x9b"));
	assert_false(mss_lex_has_controls("a\xc2\xa0"));
	/* the identifier rule of the ME and the mesh */
	assert_true(ascii_visible("http://mssp-b.example/", 64));
	assert_true(ascii_visible("!~", 2));
	assert_false(ascii_visible("abc", 2));		/* longer than max */
	assert_false(ascii_visible("", 8));
	assert_false(ascii_visible(NULL, 8));
	assert_false(ascii_visible("a b", 8));		/* space */
	assert_false(ascii_visible("a\x7f", 8));	/* DEL */
	assert_false(ascii_visible("\xc3\xa4", 8));	/* not ASCII */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_datetime),
		cmocka_unit_test(test_base64_decode),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
