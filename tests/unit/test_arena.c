/* test_arena.c - the bounded message arena. */
#include "testutil.h"

#include "util/arena.h"

static void
test_alloc_and_cap(void **state)
{
	struct mss_arena *a = mss_arena_new(10000);
	unsigned char *p;
	char *s;
	int i;
	(void)state;

	assert_non_null(a);
	p = mss_arena_alloc(a, 100);
	assert_non_null(p);
	for (i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
	assert_true(((uintptr_t)p % sizeof(max_align_t)) == 0);
	s = mss_arena_strndup(a, "hello world", 5);
	assert_string_equal(s, "hello");
	assert_string_equal(mss_arena_strdup(a, "x"), "x");
	assert_null(mss_arena_strdup(a, NULL));
	assert_null(mss_arena_alloc(a, 20000)); /* over the cap */
	while (mss_arena_alloc(a, 1000) != NULL)
		;
	assert_true(mss_arena_used(a) <= 10000);
	mss_arena_free(a);
	mss_arena_free(NULL);
}

static void
test_big_block(void **state)
{
	struct mss_arena *a = mss_arena_new(1 << 20);
	char *p;
	(void)state;

	p = mss_arena_alloc(a, 100000); /* larger than one block */
	assert_non_null(p);
	memset(p, 'x', 100000);
	assert_non_null(mss_arena_alloc(a, 10));
	mss_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_and_cap),
		cmocka_unit_test(test_big_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
