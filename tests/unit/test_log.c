/* test_log.c - structured log lines: escaping (P-29) and masking (P-28). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"

/* Run fn with stderr captured; returns what it wrote (static buffer). */
static const char *
capture(void (*fn)(void))
{
	static char out[4096];
	char path[] = "/tmp/mssp-log.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, out, sizeof out - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return out;
}

static void
emit_plain(void)
{
	LOG_EV("tx.final", "tx", "T00ff", "status", "500", "skipped", NULL);
}

static void
emit_hostile(void)
{
	LOG_EV("tx.final", "detail", "bad\nts=forged ev=x \"q\" \\ \x1b[31m", "evil key", "v");
}

static void
test_plain_line(void **state)
{
	(void)state;
	log_set_node("n1");
	const char *o = capture(emit_plain);
	assert_non_null(strstr(o, " node=n1 ev=tx.final tx=T00ff status=500\n"));
	assert_null(strstr(o, "skipped"));
	assert_int_equal(strncmp(o, "ts=", 3), 0);
}

static void
test_injection_escaped(void **state)
{
	(void)state;
	const char *o = capture(emit_hostile);
	/* exactly one line: the newline in the value is escaped */
	assert_non_null(strchr(o, '\n'));
	assert_int_equal(strchr(o, '\n')[1], 0);
	assert_non_null(strstr(o, "detail=\"bad\\x0ats=forged ev=x \\x22q\\x22 \\x5c \\x1b[31m\""));
	/* a key that is not a token is dropped, never written */
	assert_null(strstr(o, "evil"));
}

static void
test_msisdn_masked(void **state)
{
	(void)state;
	char m[32];
	log_msisdn("+35847000001", m, sizeof m);
	assert_string_equal(m, "+35847****01");
	log_msisdn("123", m, sizeof m);
	assert_string_equal(m, "***");
	log_msisdn(NULL, m, sizeof m);
	assert_string_equal(m, "***");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_line),
		cmocka_unit_test(test_injection_escaped),
		cmocka_unit_test(test_msisdn_masked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
