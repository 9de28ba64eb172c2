/* test_home.c - HomeMSSP's pure parts: what the user is shown (P-02), the
 * DTBS bytes the device signs, the MSISDN form of the store.  The
 * prompt/answer/verification path runs in tests/integration. */
#include "testutil.h"

#include "mss/msg.h"
#include "roles/home.h"

static struct mss_msg *
req_with(const char *dtbs, const char *dtbs_enc, const char *dtbs_mime, const char *dtbd,
	 const char *dtbd_enc)
{
	struct mss_msg *m = mss_msg_new(MSS_SIGNATURE_REQ);
	assert_non_null(m);
	struct mss_signature_req *r = m->u.sig_req;
	r->dtbs = mss_msg_alloc(m, sizeof *r->dtbs);
	r->dtbs->data = mss_msg_strdup(m, dtbs);
	r->dtbs->encoding = mss_msg_strdup(m, dtbs_enc);
	r->dtbs->mime_type = mss_msg_strdup(m, dtbs_mime);
	if (dtbd) {
		r->dtbd = mss_msg_alloc(m, sizeof *r->dtbd);
		r->dtbd->data = mss_msg_strdup(m, dtbd);
		r->dtbd->encoding = mss_msg_strdup(m, dtbd_enc);
	}
	return m;
}

static void
expect_shown(struct mss_msg *m, const char *want)
{
	char *t = NULL;
	struct mss_err e = {0};
	assert_int_equal(home_display_text(m->u.sig_req, &t, &e), 0);
	assert_string_equal(t, want);
	free(t);
	mss_msg_free(m);
}

static void
expect_refused(struct mss_msg *m, int code)
{
	char *t = NULL;
	struct mss_err e = {0};
	assert_int_equal(home_display_text(m->u.sig_req, &t, &e), -1);
	assert_null(t);
	assert_int_equal(e.code, code);
	mss_msg_free(m);
}

static void
test_display_text(void **state)
{
	(void)state;
	/* DTBD wins; base64 DTBD is shown decoded */
	expect_shown(req_with("x", "UTF-8", "text/plain", "Log in?", NULL), "Log in?");
	expect_shown(req_with("x", "UTF-8", "text/plain", "TG9nIGluPw==", "base64"), "Log in?");
	/* no DTBD: text DTBS shown as it is, base64 text decoded */
	expect_shown(req_with("Pay 10 EUR", "UTF-8", "text/plain", NULL, NULL), "Pay 10 EUR");
	expect_shown(req_with("UGF5IDEwIEVVUg==", "base64", "text/plain", NULL, NULL),
		     "Pay 10 EUR");
	expect_shown(req_with("Pay", "UTF-8", NULL, NULL, NULL), "Pay");
	/* nothing showable: a hash or binary DTBS needs a DTBD (102/1021) */
	expect_refused(req_with("3q2+7w==", "base64", "application/x-sha256", NULL, NULL), 102);
	expect_refused(req_with("3q2+7w==", "base64", "application/octet-stream", NULL, NULL),
		       102);
	/* base64 text that is not text (NUL, controls) is refused, not shown */
	expect_refused(req_with("AAEC", "base64", "text/plain", NULL, NULL), 102);
	expect_refused(req_with("bad!", "base64", "text/plain", "%%%", "base64"), 101);
}

static void
test_dtbs_bytes(void **state)
{
	(void)state;
	uint8_t *b;
	size_t n;
	struct mss_err e = {0};
	struct mss_msg *m = req_with("UGF5\nIDEw", "base64", "text/plain", NULL, NULL);
	/* white space inside base64 is allowed (the validator accepted it) */
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(b, "Pay 10", 6);
	free(b);
	mss_msg_free(m);
	m = req_with("Pay 10 EUR", "UTF-8", "text/plain", NULL, NULL);
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), 0);
	assert_int_equal(n, 10);
	free(b);
	mss_msg_free(m);
	m = req_with("abc", "base64", "text/plain", NULL, NULL);
	assert_int_equal(home_dtbs_bytes(m->u.sig_req, &b, &n, &e), -1);
	assert_int_equal(e.code, 101);
	mss_msg_free(m);
}

static void
test_msisdn_form(void **state)
{
	(void)state;
	char o[32];
	home_msisdn("35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
	home_msisdn("+35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
	home_msisdn("++35847000001", o, sizeof o);
	assert_string_equal(o, "+35847000001");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_display_text),
		cmocka_unit_test(test_dtbs_bytes),
		cmocka_unit_test(test_msisdn_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
