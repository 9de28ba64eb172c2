/* test_metrics.c - registry, atomic updates and the exposition format. */
#include "testutil.h"

#include <pthread.h>

#include "util/metrics.h"

static void
test_render(void **state)
{
	static const double bounds[] = { 0.1, 1, 10 };
	struct metrics *m = metrics_new();
	struct metric *ok, *err, *parked, *lat;
	struct mss_buf b;
	(void)state;

	assert_non_null(m);
	ok = metrics_counter(m, "mssp_requests_total", "op=\"signature\",status=\"500\"", "AP requests by answer");
	err = metrics_counter(m, "mssp_requests_total", "op=\"signature\",status=\"101\"", "ignored");
	parked = metrics_gauge(m, "mssp_parked_requests", NULL, "Synchronous requests waiting for a user");
	lat = metrics_histogram(m, "mssp_sign_seconds", NULL, "Time to a final answer", bounds, 3);
	assert_non_null(ok);
	assert_non_null(err);
	assert_non_null(parked);
	assert_non_null(lat);
	metric_inc(ok);
	metric_add(ok, 2);
	metric_inc(err);
	metric_set(parked, 5);
	metric_gauge_add(parked, -2);
	metric_observe(lat, 0.05);
	metric_observe(lat, 0.5);
	metric_observe(lat, 0.5);
	metric_observe(lat, 100);
	metric_observe(lat, -1); /* ignored */
	assert_int_equal(metric_value(ok), 3);
	assert_int_equal(metric_value(parked), 3);

	mss_buf_init(&b, 65536);
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(mss_buf_str(&b),
		"# HELP mssp_requests_total AP requests by answer\n"
		"# TYPE mssp_requests_total counter\n"
		"mssp_requests_total{op=\"signature\",status=\"500\"} 3\n"
		"mssp_requests_total{op=\"signature\",status=\"101\"} 1\n"
		"# HELP mssp_parked_requests Synchronous requests waiting for a user\n"
		"# TYPE mssp_parked_requests gauge\n"
		"mssp_parked_requests 3\n"
		"# HELP mssp_sign_seconds Time to a final answer\n"
		"# TYPE mssp_sign_seconds histogram\n"
		"mssp_sign_seconds_bucket{le=\"0.1\"} 1\n"
		"mssp_sign_seconds_bucket{le=\"1\"} 3\n"
		"mssp_sign_seconds_bucket{le=\"10\"} 3\n"
		"mssp_sign_seconds_bucket{le=\"+Inf\"} 4\n"
		"mssp_sign_seconds_sum 101.050000\n"
		"mssp_sign_seconds_count 4\n");
	mss_buf_free(&b);
	/* a full buffer is an error, not a truncated page */
	mss_buf_init(&b, 64);
	assert_int_equal(metrics_render(m, &b), -1);
	mss_buf_free(&b);
	metrics_free(m);
}

static void
test_registration_rules(void **state)
{
	static const double bad_bounds[] = { 1, 1 };
	struct metrics *m = metrics_new();
	(void)state;

	assert_non_null(metrics_counter(m, "a_total", NULL, "x"));
	assert_null(metrics_counter(m, "a_total", NULL, "x"));	    /* twice    */
	assert_null(metrics_gauge(m, "a_total", "k=\"v\"", "x"));   /* type     */
	assert_null(metrics_counter(m, "1bad", NULL, "x"));
	assert_null(metrics_counter(m, "bad-name", NULL, "x"));
	assert_null(metrics_counter(m, "b", "k=v", "x"));
	assert_null(metrics_counter(m, "b", "k=\"a\"b\"", "x"));
	assert_null(metrics_counter(m, "b", "k=\"a\\\"\"", "x"));
	assert_null(metrics_counter(m, "b", "le:x=\"1\"", "x"));
	assert_null(metrics_counter(m, "b", NULL, "two\nlines"));
	assert_null(metrics_histogram(m, "h", NULL, "x", bad_bounds, 2));
	assert_non_null(metrics_counter(m, "b", "k=\"v\",l=\"w\"", "x"));
	metric_inc(NULL); /* a metric that failed to register is a no-op */
	metrics_free(m);
}

struct race {
	struct metric *c;
	int n;
};

static void *
bump(void *arg)
{
	struct race *r = arg;
	int i;

	for (i = 0; i < r->n; i++)
		metric_inc(r->c);
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct metrics *m = metrics_new();
	struct race r = { NULL, 200000 };
	pthread_t t1, t2;
	(void)state;

	r.c = metrics_counter(m, "c_total", NULL, "x");
	assert_int_equal(pthread_create(&t1, NULL, bump, &r), 0);
	assert_int_equal(pthread_create(&t2, NULL, bump, &r), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(metric_value(r.c), 400000);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
