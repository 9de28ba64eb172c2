/* test_buf.c - the capped growable buffer. */
#include "testutil.h"

#include "util/buf.h"

static void
test_add_and_cap(void **state)
{
	struct mss_buf b;
	char *taken;
	size_t len;
	int i;
	(void)state;

	mss_buf_init(&b, 1000);
	assert_string_equal(mss_buf_str(&b), "");
	assert_int_equal(mss_buf_adds(&b, "abc"), 0);
	assert_int_equal(mss_buf_addf(&b, "-%d-", 42), 0);
	assert_string_equal(mss_buf_str(&b), "abc-42-");
	for (i = 0; i < 99; i++)
		assert_int_equal(mss_buf_adds(&b, "0123456789"), 0);
	/* 997 bytes now; the next 10 would pass the cap: the buffer is freed */
	assert_int_equal(mss_buf_adds(&b, "0123456789"), -1);
	assert_int_equal(mss_buf_len(&b), 0);
	assert_int_equal(mss_buf_adds(&b, "again"), 0);
	taken = mss_buf_take(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(taken, "again");
	free(taken);
	assert_int_equal(mss_buf_len(&b), 0);
	mss_buf_free(&b);
}

static void
test_long_format(void **state)
{
	struct mss_buf b;
	char big[600];
	(void)state;

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mss_buf_init(&b, 10000);
	assert_int_equal(mss_buf_addf(&b, "<%s>", big), 0);
	assert_int_equal(mss_buf_len(&b), 601);
	mss_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_cap),
		cmocka_unit_test(test_long_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
