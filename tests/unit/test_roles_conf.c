/* test_roles_conf.c - msspd.conf: loading, refusals, the AP table. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "roles/conf.h"

static char dir[64];

static void
write_conf(const char *text)
{
	char p[128];
	snprintf(p, sizeof p, "%s/msspd.conf", dir);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mssp-conf.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/msspd.conf", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

#define FP1 "8eb4283f1e8f42f4054ad60cbeca3f03e9611ee457ccbf2480ce5e2f009d8657"
#define FP2 "00B4283F1E8F42F4054AD60CBECA3F03E9611EE457CCBF2480CE5E2F009D8657"

static void
test_minimal_defaults(void **state)
{
	(void)state;
	char err[256];
	write_conf("[ap \"http://demo.ap/\"]\ncert_sha256 = " FP1 "\n");
	struct mssp_conf *c = conf_load(dir, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->ae_port, 9443);
	assert_int_equal(c->afe_port, 9445);
	assert_int_equal(c->admin_port, 9446);
	assert_int_equal(c->default_timeout_s, 80);
	assert_string_equal(c->push, "none");
	/* relative paths resolve against the data directory */
	char want[256];
	snprintf(want, sizeof want, "sqlite:%s/mssp.db", dir);
	assert_string_equal(c->store_uri, want);
	snprintf(want, sizeof want, "%s/ca/ca.crt", dir);
	assert_string_equal(c->user_ca_cert, want);
	assert_int_equal(c->aps->naps, 1);
	const struct conf_ap *ap = &c->aps->aps[0];
	assert_string_equal(ap->ca_id, "http://demo.ap/");
	assert_string_equal(ap->ca_name, "http://demo.ap/");
	assert_true(ap->ca_all_profiles);
	assert_int_equal(ap->ca_modes, CONF_MODE_SYNCH | CONF_MODE_ASYNCH_CS | CONF_MODE_ASYNCH_SS);
	assert_false(ap->ca_suspended);
	conf_free(c);
}

static void
test_ap_table(void **state)
{
	(void)state;
	char err[256];
	write_conf("[ae]\nport = 1234\n"
		   "[ap \"http://a/\"]\nname = Bank A\ncert_sha256 = " FP1 "\n"
		   "profiles = mss::sign:loa3 http://alauda.mobi/nonRepudiation\n"
		   "modes = synch\nnotify_urls = https://a.example/notify\nrate = 5\n"
		   "[ap \"http://b/\"]\ncert_sha256 = 00:b4:28:3f:1e:8f:42:f4:05:4a:d6:0c:be:ca:3f:03:"
		   "e9:61:1e:e4:57:cc:bf:24:80:ce:5e:2f:00:9d:86:57\nsuspended = true\n");
	struct mssp_conf *c = conf_load(dir, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->ae_port, 1234);
	assert_int_equal(c->aps->naps, 2);
	uint8_t fp[TLS_FP_LEN];
	for (int i = 0; i < TLS_FP_LEN; i++)
		sscanf(FP2 + 2 * i, "%2hhx", &fp[i]);
	const struct conf_ap *b = conf_ap_by_fp(c->aps, fp);
	assert_non_null(b);
	assert_string_equal(b->ca_id, "http://b/");
	assert_true(b->ca_suspended);
	for (int i = 0; i < TLS_FP_LEN; i++)
		sscanf(FP1 + 2 * i, "%2hhx", &fp[i]);
	const struct conf_ap *a = conf_ap_by_fp(c->aps, fp);
	assert_non_null(a);
	assert_string_equal(a->ca_name, "Bank A");
	assert_false(a->ca_all_profiles);
	assert_int_equal(a->ca_nprofiles, 2);
	assert_string_equal(a->ca_profiles[0], "mss::sign:loa3");
	assert_string_equal(a->ca_profiles[1], "http://alauda.mobi/nonRepudiation");
	assert_int_equal(a->ca_modes, CONF_MODE_SYNCH);
	assert_true(conf_ap_notify_allowed(a, "https://a.example/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://evil.example/notify"));
	assert_int_equal(a->ca_rate, 5);
	fp[0] ^= 1;
	assert_null(conf_ap_by_fp(c->aps, fp));
	assert_null(conf_ap_by_fp(c->aps, NULL));
	conf_free(c);
}

static void
expect_refused(const char *text, const char *why)
{
	char err[256] = "";
	write_conf(text);
	struct mssp_conf *c = conf_load(dir, err, sizeof err);
	if (c)
		fail_msg("accepted: %s", why);
	assert_true(err[0] != 0);
}

static void
test_refusals(void **state)
{
	(void)state;
	expect_refused("[ae]\nbogus = 1\n", "unknown key");
	expect_refused("[ap \"x\"]\nname = X\n", "AP without certificate binding");
	expect_refused("[ap \"x\"]\ncert_sha256 = 1234\n", "short fingerprint");
	expect_refused("[ap \"x\"]\ncert_sha256 = " FP1 "\nmodes = fast\n", "unknown mode");
	expect_refused("[ap \"x\"]\ncert_sha256 = " FP1 "\n[ap \"y\"]\ncert_sha256 = " FP1 "\n",
		       "one certificate bound to two APs");
	expect_refused("[ap \"x\"]\ncert_sha256 = " FP1 "\nnotify_urls = http://plain/\n",
		       "plain notification URL");
	expect_refused("[ae]\ndefault_timeout_s = 100\nmax_timeout_s = 50\n", "default > max");
	expect_refused("[ae]\nport = 70000\n", "port range");
	expect_refused("[afe]\npush = carrier-pigeon\n", "unknown push provider");
}

/* notification targets are matched by parts, never by raw prefix */
static void
test_notify_rules(void **state)
{
	(void)state;
	char err[256];
	write_conf("[ap \"http://a/\"]\ncert_sha256 = " FP1 "\n"
		   "notify_urls = https://ap.example/notify https://127.0.0.1:*/ "
		   "https://b.example:8443\n");
	struct mssp_conf *c = conf_load(dir, err, sizeof err);
	assert_non_null(c);
	const struct conf_ap *a = &c->aps->aps[0];
	assert_true(conf_ap_notify_allowed(a, "https://ap.example/notify"));
	assert_true(conf_ap_notify_allowed(a, "https://ap.example/notify/123?x=1"));
	assert_true(conf_ap_notify_allowed(a, "https://AP.example:443/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://ap.example/notifyx"));
	assert_false(conf_ap_notify_allowed(a, "https://ap.example/other"));
	assert_false(conf_ap_notify_allowed(a, "https://ap.example.evil/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://ap.example:444/notify"));
	assert_false(conf_ap_notify_allowed(a, "http://ap.example/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://ap.example@evil.example/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://u:p@ap.example/notify"));
	assert_true(conf_ap_notify_allowed(a, "https://127.0.0.1:41234/notify"));
	assert_false(conf_ap_notify_allowed(a, "https://localhost:1@evil.example:8443/x"));
	assert_true(conf_ap_notify_allowed(a, "https://b.example:8443/any/path"));
	assert_false(conf_ap_notify_allowed(a, "https://b.example/any/path"));
	assert_false(conf_ap_notify_allowed(a, "not a url"));
	conf_free(c);
	expect_refused("[ap \"x\"]\ncert_sha256 = " FP1 "\nnotify_urls = https://127.0.0.1:\n",
		       "empty port");
	expect_refused("[ap \"x\"]\ncert_sha256 = " FP1 "\nnotify_urls = https://u@h/\n",
		       "credentials in a rule");
}

static void
test_swap_refcount(void **state)
{
	(void)state;
	char err[256];
	write_conf("[ap \"http://a/\"]\ncert_sha256 = " FP1 "\n");
	struct conf_aps *t1 = conf_load_aps(dir, err, sizeof err);
	assert_non_null(t1);
	conf_aps_swap(t1);
	struct conf_aps *held = conf_aps_get();
	assert_ptr_equal(held, t1);
	write_conf("[ap \"http://a/\"]\ncert_sha256 = " FP1 "\nsuspended = yes\n");
	struct conf_aps *t2 = conf_load_aps(dir, err, sizeof err);
	assert_non_null(t2);
	conf_aps_swap(t2);
	/* the old table lives on for the request that holds it */
	assert_false(held->aps[0].ca_suspended);
	conf_aps_put(held);
	struct conf_aps *now = conf_aps_get();
	assert_true(now->aps[0].ca_suspended);
	conf_aps_put(now);
	conf_aps_swap(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ap_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_refcount, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
