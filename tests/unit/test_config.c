/* test_config.c - the strict configuration parser. */
#include "testutil.h"

#include "util/config.h"
#include "util/limits.h"

static const char *const server_keys[] = { "data_dir", "workers", "debug", NULL };
static const char *const ap_keys[] = { "certificate", "suspended", "notify_url", NULL };
static const struct cfg_section_schema schema[] = {
	{ "server", false, server_keys },
	{ "ap", true, ap_keys },
};

static struct cfg *
parse(const char *text, struct cfg_err *err)
{
	return cfg_parse(text, strlen(text), schema, 2, err);
}

static void
test_good(void **state)
{
	static const char text[] =
		"# OpenMSSP\r\n"
		"[server]\n"
		"data_dir = /var/lib/mssp   \n"
		"workers=2\n"
		"debug = no\n"
		"\n"
		"; other comment style\n"
		"[ap \"http://demo.ap/\"]\n"
		"  certificate = demo/ap.crt\n"
		"notify_url = https://ap.example/notify#frag\n"
		"[ap \"http://other.ap/\"]\n"
		"suspended = yes\n";
	struct cfg_err err;
	struct cfg *c = parse(text, &err);
	unsigned long w;
	bool b;
	int s;
	(void)state;

	if (c == NULL)
		fail_msg("line %u: %s", err.line, err.msg);
	assert_int_equal(cfg_section_count(c), 3);
	s = cfg_section_find(c, "server", NULL);
	assert_int_equal(s, 0);
	assert_string_equal(cfg_get(c, s, "data_dir"), "/var/lib/mssp");
	assert_int_equal(cfg_get_uint(c, s, "workers", 1, 1, 64, &w, &err), 0);
	assert_int_equal(w, 2);
	assert_int_equal(cfg_get_uint(c, s, "absent", 7, 1, 64, &w, &err), 0);
	assert_int_equal(w, 7);
	assert_int_equal(cfg_get_bool(c, s, "debug", true, &b, &err), 0);
	assert_false(b);
	assert_int_equal(cfg_line(c, s, "workers"), 4);
	s = cfg_section_find(c, "ap", "http://demo.ap/");
	assert_int_equal(s, 1);
	assert_string_equal(cfg_get(c, s, "notify_url"), "https://ap.example/notify#frag");
	assert_string_equal(cfg_section_name(c, 2), "http://other.ap/");
	assert_null(cfg_get(c, s, "suspended"));
	assert_int_equal(cfg_section_find(c, "ap", "nope"), -1);
	cfg_free(c);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "workers = 2\n", 1 },				  /* outside a section */
		{ "[server]\nworkers = 2\nworkers = 3\n", 3 },	  /* repeated key      */
		{ "[server]\nworker = 2\n", 2 },		  /* typo: unknown key */
		{ "[srever]\n", 0 },				  /* unknown section   */
		{ "[server]\n[server]\n", 0 },			  /* section twice     */
		{ "[ap]\n", 0 },				  /* needs a name      */
		{ "[server \"x\"]\n", 0 },			  /* takes no name     */
		{ "[ap \"a\"]\n[ap \"a\"]\n", 0 },		  /* same name twice   */
		{ "[server\n", 1 },				  /* malformed header  */
		{ "[server]\njust words\n", 2 },		  /* no '='            */
		{ "[server]\n= value\n", 2 },			  /* no key            */
		{ "[server]\ndata dir = x\n", 2 },		  /* blank in key      */
		{ "[server]\ndata_dir = a\x01" "b\n", 2 },	  /* control char      */
		{ "[server]\ndata_dir = a\rb\n", 2 },		  /* bare CR           */
		{ "[server]\ndata_dir = \xff\n", 0 },		  /* not UTF-8         */
		{ "[ap \"\"]\n", 1 },				  /* empty name        */
	};
	struct cfg_err err;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg *c = parse(bad[i].text, &err);

		if (c != NULL)
			fail_msg("case %zu accepted", i);
		if (err.line != bad[i].line)
			fail_msg("case %zu: line %u, want %u (%s)", i, err.line, bad[i].line, err.msg);
		assert_true(err.msg[0] != '\0');
	}
}

static void
test_typed_values(void **state)
{
	struct cfg_err err;
	struct cfg *c = parse("[server]\nworkers = 99\ndebug = maybe\ndata_dir = 12x\n", &err);
	unsigned long w;
	bool b;
	(void)state;

	assert_non_null(c);
	assert_int_equal(cfg_get_uint(c, 0, "workers", 1, 1, 64, &w, &err), -1);
	assert_int_equal(err.line, 2);
	assert_int_equal(cfg_get_bool(c, 0, "debug", false, &b, &err), -1);
	assert_int_equal(err.line, 3);
	assert_int_equal(cfg_get_uint(c, 0, "data_dir", 1, 0, 100, &w, &err), -1);
	/* the message never repeats the value (it may be a secret) */
	assert_null(strstr(err.msg, "12x"));
	cfg_free(c);
}

static void
test_caps(void **state)
{
	char *big = malloc(MSSP_CFG_MAX_LINE + 64);
	struct cfg_err err;
	(void)state;

	assert_non_null(big);
	memcpy(big, "[server]\ndata_dir = ", 20);
	memset(big + 20, 'a', MSSP_CFG_MAX_LINE);
	big[20 + MSSP_CFG_MAX_LINE] = '\0';
	assert_null(parse(big, &err));
	assert_int_equal(err.line, 2);
	free(big);
	assert_null(cfg_parse("[server]\0", 9, schema, 2, &err)); /* NUL byte */
	/* no schema: anything well-formed */
	{
		struct cfg *c = cfg_parse("[x]\ny = 1\n", 10, NULL, 0, &err);

		assert_non_null(c);
		assert_string_equal(cfg_get(c, 0, "y"), "1");
		cfg_free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_typed_values),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
