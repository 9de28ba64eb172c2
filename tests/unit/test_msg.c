/* test_msg.c - message tables, operations and generic comparison. */
#include "testutil.h"

#include "mss/json.h"
#include "mss/msg.h"

static void
test_lookup(void **state)
{
	int t;
	(void)state;

	for (t = 0; t < MSS_MSG_TYPE_COUNT; t++) {
		const struct mss_msg_info *mi = mss_msg_info((enum mss_msg_type)t);

		assert_non_null(mi);
		assert_int_equal(mss_msg_type_by_element(mi->element), t);
	}
	assert_int_equal(mss_msg_type_by_element("MSS_Nope"), -1);
	assert_null(mss_msg_info(MSS_MSG_TYPE_COUNT));
	assert_int_equal(mss_op_by_name("MSS_ProfileQuery"), MSS_OP_PROFILE_QUERY);
	assert_int_equal(mss_op_by_name("MSS_Other"), MSS_OP_NONE);
	assert_string_equal(mss_op_name(MSS_OP_NOTIFICATION), "MSS_Notification");
	assert_int_equal(mss_op_request_type(MSS_OP_SIGNATURE), MSS_SIGNATURE_REQ);
	assert_int_equal(mss_op_response_type(MSS_OP_SIGNATURE), MSS_SIGNATURE_RESP);
	/* the notification: a StatusResp in, a ReceiptReq back */
	assert_int_equal(mss_op_request_type(MSS_OP_NOTIFICATION), MSS_STATUS_RESP);
	assert_int_equal(mss_op_response_type(MSS_OP_NOTIFICATION), MSS_RECEIPT_REQ);
	assert_int_equal(mss_op_request_type(MSS_OP_NONE), -1);
}

static struct mss_msg *
j(const char *s)
{
	struct mss_err err;
	struct mss_msg *m = mss_json_decode(s, strlen(s), 0, &err);

	if (m == NULL)
		fail_msg("%s", err.detail);
	return m;
}

static void
test_equal(void **state)
{
	struct mss_msg *a = j("{\"MSS_ProfileResp\":{\"SignatureProfile\":[\"http://a/\",\"http://b/\"],\"Status\":{\"StatusCode\":{\"Value\":\"100\"}}}}");
	struct mss_msg *b = j("{\"MSS_ProfileResp\":{\"SignatureProfile\":[\"http://a/\",\"http://b/\"],\"Status\":{\"StatusCode\":{\"Value\":\"100\"}}}}");
	struct mss_msg *c = j("{\"MSS_ProfileResp\":{\"SignatureProfile\":[\"http://b/\",\"http://a/\"],\"Status\":{\"StatusCode\":{\"Value\":\"100\"}}}}");
	struct mss_msg *d = j("{\"MSS_ProfileResp\":{\"SignatureProfile\":[],\"Status\":{\"StatusCode\":{\"Value\":\"100\"}}}}");
	struct mss_msg *e = j("{\"MSS_ProfileResp\":{\"Status\":{\"StatusCode\":{\"Value\":\"100\"}}}}");
	(void)state;

	assert_true(mss_msg_equal(a, b));
	assert_false(mss_msg_equal(a, c)); /* order matters */
	assert_false(mss_msg_equal(a, d));
	assert_true(mss_msg_equal(d, e)); /* no wrapper: an empty list is absent */
	assert_true(mss_msg_equal(NULL, NULL));
	assert_false(mss_msg_equal(a, NULL));
	mss_msg_free(a);
	mss_msg_free(b);
	mss_msg_free(c);
	mss_msg_free(d);
	mss_msg_free(e);
}

static void
test_build(void **state)
{
	struct mss_msg *m = mss_msg_new(MSS_STATUS_REQ);
	(void)state;

	assert_non_null(m);
	assert_int_equal(m->op, MSS_OP_STATUS_QUERY);
	assert_null(m->u.status_req->mssp_trans_id);
	m->u.status_req->mssp_trans_id = mss_msg_strdup(m, "T1");
	assert_string_equal(m->u.status_req->mssp_trans_id, "T1");
	assert_null(mss_msg_new(MSS_MSG_TYPE_COUNT));
	mss_msg_free(m);
	mss_msg_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
