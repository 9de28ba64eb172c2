/* test_status.c - the status table and the one error-to-answer mapping. */
#include "testutil.h"

#include "mss/msg.h"
#include "mss/status.h"

/* Every first-level code of protocol.md §6 with the reference names. */
static void
test_table(void **state)
{
	static const struct { int code; const char *name; } want[] = {
		{ 100, "REQUEST_OK" }, { 101, "WRONG_PARAM" }, { 102, "MISSING_PARAM" },
		{ 103, "WRONG_DATA_LENGTH" }, { 104, "UNAUTHORIZED_ACCESS" }, { 105, "UNKNOWN_CLIENT" },
		{ 107, "INAPPROPRIATE_DATA" }, { 108, "INCOMPATIBLE_INTERFACE" },
		{ 109, "UNSUPPORTED_PROFILE" }, { 208, "EXPIRED_TRANSACTION" }, { 209, "OTA_ERROR" },
		{ 401, "USER_CANCEL" }, { 402, "PIN_NR_BLOCKED" }, { 403, "CARD_BLOCKED" },
		{ 404, "NO_KEY_FOUND" }, { 405, "NO_URL_FOUND" }, { 406, "PB_SIGNATURE_PROCESS" },
		{ 407, "REGISTRATION_NOK" }, { 422, "NO_CERT_FOUND" }, { 423, "CRL_PB" },
		{ 424, "CRL_EXPIRED" }, { 425, "ERROR_CERTIFICATE" }, { 450, "GEOFENCING_POLICY_VIOLATION" },
		{ 500, "SIGNATURE" }, { 501, "REVOKED_CERTIFICATE" }, { 502, "VALID_SIGNATURE" },
		{ 503, "INVALID_SIGNATURE" }, { 504, "OUTSTANDING_TRANSACTION" },
		{ 505, "CONSTRAINT_MISMATCH" }, { 900, "INTERNAL_ERROR" },
		{ 701, "ROAMING_HEADER_BLOCK_IS_MISSING" }, { 780, "UNABLE_TO_PROVIDE_SERVICES" },
		{ 1011, "INVALID_NOSPAMCODE" }, { 1014, "UNKNOWN_ADDITIONALSERVICE" },
		{ 4021, "PIN_BLOCKED" }, { 9008, "INVALID_KEY_ALGORITHM" },
	};
	const struct mss_status_info *t;
	unsigned n, i, j;
	(void)state;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct mss_status_info *si = mss_status_lookup(want[i].code);

		assert_non_null(si);
		assert_string_equal(si->name, want[i].name);
		assert_true(si->text[0] != '\0');
	}
	assert_null(mss_status_lookup(106));
	assert_string_equal(mss_status_name(999), "UNKNOWN");
	t = mss_status_table(&n);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			assert_int_not_equal(t[i].code, t[j].code);
	assert_true(mss_status_lookup(780)->roaming);
	assert_false(mss_status_lookup(101)->roaming);
}

static void
test_fault_mapping(void **state)
{
	struct mss_err e;
	struct mss_fault f;
	(void)state;

	mss_err_set(&e, MSS_UNKNOWN_CLIENT, 0, "");
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.http_status, 500);
	assert_string_equal(f.code_value, "Sender");
	assert_int_equal(f.code, 105);
	assert_string_equal(f.reason, "UNKNOWN_CLIENT");
	assert_string_equal(f.detail, "Unknown mobile user"); /* default text */
	assert_string_equal(f.subcode_ns, MSS_NS);

	mss_err_set(&e, MSS_EXPIRED_TRANSACTION, 0, "Timed out");
	mss_fault_from_err(&e, &f);
	assert_string_equal(f.code_value, "Receiver");
	assert_string_equal(f.detail, "Timed out");

	mss_err_set(&e, 780, 0, "x");
	mss_fault_from_err(&e, &f);
	assert_string_equal(f.subcode_ns, MSS_NS_ROAM);

	/* success codes and unknown codes are never an error answer */
	mss_err_set(&e, MSS_SIGNATURE, 0, "x");
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.code, 900);
	assert_string_equal(f.code_value, "Receiver");
	mss_err_set(&e, 12345, 0, "x");
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.code, 900);
	mss_err_clear(&e);
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.code, 900);
	assert_string_equal(f.reason, "INTERNAL_ERROR");

	mss_err_http(&e, 413, "Too large");
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.http_status, 413);
	assert_int_equal(f.code, 0);

	mss_err_soap(&e, MSS_E_MUST_UNDERSTAND, "x");
	mss_fault_from_err(&e, &f);
	assert_string_equal(f.code_value, "MustUnderstand");
	assert_int_equal(f.code, 0);

	mss_err_set(&e, MSS_WRONG_PARAM, 1014, "x");
	mss_fault_from_err(&e, &f);
	assert_int_equal(f.subcode, 1014);
	assert_int_equal(mss_err_setf(&e, 101, 0, "%s %d", "n", 5), -1);
	assert_string_equal(e.detail, "n 5");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_fault_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
