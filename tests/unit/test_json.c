/* test_json.c - the Kiuru JSON mirror codec. */
#include "testutil.h"

#include <jansson.h>

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"

static const char *const json_samples[] = {
	"etsi/samples/rest/rest-response-async-signature.json",
	"etsi/samples/rest/rest-response-fault-user-cancel.json",
	"etsi/samples/rest/rest-response-profile-query.json",
	"etsi/samples/rest/rest-response-signature.json",
	"etsi/samples/rest/rest-response-status-outstanding.json",
	"etsi/samples/rest/rest-response-status-signature.json",
	"etsi/samples/rest-gen-material/MSS_Fault.json",
	"etsi/samples/rest-gen-material/MSS_ProfileQuery_Request.json",
	"etsi/samples/rest-gen-material/MSS_ProfileQuery_Response.json",
	"etsi/samples/rest-gen-material/MSS_Receipt_Request.json",
	"etsi/samples/rest-gen-material/MSS_Receipt_Response.json",
	"etsi/samples/rest-gen-material/MSS_Signature_Request.json",
	"etsi/samples/rest-gen-material/MSS_Signature_Response.json",
	"etsi/samples/rest-gen-material/MSS_Status_Request.json",
	"etsi/samples/rest-gen-material/MSS_Status_Response.json",
};

/* Every sample decodes; re-encoding gives the same JSON document (key order
 * and white space aside); the SOAP form decodes to the same message. */
static void
test_samples_round_trip(void **state)
{
	size_t i, len;
	(void)state;

	for (i = 0; i < sizeof(json_samples) / sizeof(json_samples[0]); i++) {
		struct mss_err err;
		struct mss_buf jb, sb;
		struct mss_msg *m, *m2;
		json_t *orig, *again;
		char *text = tu_slurp_shared(json_samples[i], &len);

		m = mss_json_decode(text, len, 0, &err);
		if (m == NULL)
			fail_msg("%s: %s", json_samples[i], err.detail);
		mss_buf_init(&jb, 1 << 20);
		assert_int_equal(mss_json_encode(m, &jb, &err), 0);
		orig = json_loads(text, 0, NULL);
		again = json_loads(mss_buf_str(&jb), 0, NULL);
		assert_non_null(orig);
		assert_non_null(again);
		if (!json_equal(orig, again))
			fail_msg("%s: re-encoded JSON differs:\n%s", json_samples[i], mss_buf_str(&jb));
		/* compact, as the Swisscom scripts need */
		assert_null(strstr(mss_buf_str(&jb), "\": "));
		assert_null(strchr(mss_buf_str(&jb), '\n'));
		mss_buf_init(&sb, 1 << 20);
		assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &sb, &err), 0);
		m2 = mss_soap_decode(mss_buf_str(&sb), mss_buf_len(&sb), 0, &err);
		if (m2 == NULL)
			fail_msg("%s: SOAP form refused: %s", json_samples[i], err.detail);
		assert_true(mss_msg_equal(m, m2));
		json_decref(orig);
		json_decref(again);
		mss_buf_free(&jb);
		mss_buf_free(&sb);
		mss_msg_free(m);
		mss_msg_free(m2);
		free(text);
	}
}

struct bad {
	const char *json;
	int code;
};

#define SIG(body) "{\"MSS_SignatureReq\":{\"MessagingMode\":\"synch\",\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"Data\":\"x\"}" body "}}"

static void
test_refusals(void **state)
{
	static const struct bad cases[] = {
		/* J-01 duplicate keys, also nested */
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"a\",\"MSSP_TransID\":\"b\"}}", 101 },
		{ SIG(",\"MobileUser\":{\"MSISDN\":\"+35847000002\"}"), 101 },
		/* J-02 NUL, control characters, lone surrogate, bad UTF-8 */
		{ SIG(",\"SignatureProfile\":\"a\\u0000b\""), 101 },
		{ SIG(",\"SignatureProfile\":\"a\\u0001b\""), 101 },
		{ SIG(",\"SignatureProfile\":\"\\ud800\""), 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"\xff\xfe\"}}", 101 },
		/* J-03 huge numbers, depth */
		{ SIG(",\"TimeOut\":1e999999"), 101 },
		/* J-04 type confusion */
		{ SIG(",\"TimeOut\":80"), 101 },
		{ SIG(",\"TimeOut\":true"), 101 },
		{ SIG(",\"TimeOut\":null"), 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"a\",\"MobileUser\":{\"MSISDN\":35847000001}}}", 101 },
		/* J-05 / J-06 unknown and case-variant keys */
		{ SIG(",\"TestMode\":\"true\""), 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"a\",\"mobileuser\":{}}}", 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"a\",\"MobileUser\":{\"MSISDN\\u200b\":\"1\"}}}", 101 },
		/* J-09 BOM, trailing garbage, not one message */
		{ "\xef\xbb\xbf{\"MSS_StatusReq\":{}}", 101 },
		{ "{\"MSS_StatusReq\":{}} x", 101 },
		{ "{\"MSS_StatusReq\":{},\"MSS_ProfileReq\":{}}", 101 },
		{ "[]", 101 },
		{ "{\"MSS_Launch\":{}}", 101 },
		/* wrong shapes */
		{ SIG(",\"AdditionalServices\":{}"), 101 },
		{ SIG(",\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#userLang\",\"UserLang\":\"en\"}]"), 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"1bad\"}}", 101 },
		/* review findings: non-XML characters, non-ASCII identifiers,
		 * raw XML whose root carries what SOAP would refuse */
		{ SIG(",\"SignatureProfile\":\"http://x/\\uffff\""), 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"A\\u200bB\"}}", 101 },
		{ "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"T\\u00e9\"}}", 101 },
		{ SIG(",\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#personIdentity\",\"AttributeQuery\":\"<samlp:AttributeQuery xmlns:samlp=\\\"urn:oasis:names:tc:SAML:2.0:protocol\\\" xmlns:xsi=\\\"http://www.w3.org/2001/XMLSchema-instance\\\" xsi:schemaLocation=\\\"http://e/ x\\\"/>\"}]"), 101 },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mss_err err;
		struct mss_msg *m = mss_json_decode(cases[i].json, strlen(cases[i].json), 0, &err);

		if (m != NULL)
			fail_msg("case %zu accepted", i);
		if (err.code != cases[i].code)
			fail_msg("case %zu: code %d (%s)", i, err.code, err.detail);
	}
}

static void
test_requests_only(void **state)
{
	static const char resp[] = "{\"MSS_StatusResp\":{\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"Status\":{\"StatusCode\":{\"Value\":\"504\"}}}}";
	static const char fault[] = "{\"Fault\":{\"Code\":{\"Value\":\"Sender\"},\"Reason\":\"X\"}}";
	struct mss_err err;
	(void)state;

	assert_null(mss_json_decode(resp, strlen(resp), MSS_JSON_REQUESTS_ONLY, &err));
	assert_int_equal(err.code, 101);
	assert_null(mss_json_decode(fault, strlen(fault), MSS_JSON_REQUESTS_ONLY, &err));
	assert_int_equal(err.code, 101);
}

/* The REST fault matches the reference deployment's form exactly. */
static void
test_fault_form(void **state)
{
	struct mss_err err;
	struct mss_fault f;
	struct mss_buf b;
	json_t *got, *want;
	char *text;
	size_t len;
	(void)state;

	mss_err_set(&err, MSS_USER_CANCEL, 0, "User cancelled the request");
	mss_fault_from_err(&err, &f);
	mss_buf_init(&b, 4096);
	assert_int_equal(mss_json_encode_fault(&f, &b), 0);
	text = tu_slurp_shared("etsi/samples/rest/rest-response-fault-user-cancel.json", &len);
	want = json_loads(text, 0, NULL);
	got = json_loads(mss_buf_str(&b), 0, NULL);
	assert_non_null(got);
	assert_true(json_equal(want, got));
	/* the Swisscom scripts read "Value":"_NNN" */
	assert_non_null(strstr(mss_buf_str(&b), "\"Value\":\"_401\""));
	json_decref(got);
	json_decref(want);
	free(text);
	mss_buf_free(&b);
}

/* laverca-rest's minimal request: accepted in JSON, while the same gaps in
 * SOAP are missing parameters. */
static void
test_minimal_rest_request(void **state)
{
	static const char json[] = "{\"MSS_SignatureReq\":{\"MessagingMode\":\"synch\",\"SignatureProfile\":\"http://alauda.mobi/nonRepudiation\",\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"Encoding\":\"UTF-8\",\"Data\":\"Hello\"},\"AdditionalServices\":[],\"MSS_Format\":\"http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature\",\"AP_Info\":{\"AP_TransID\":\"A0b6f\"}}}";
	struct mss_err err;
	struct mss_msg *m, *m2;
	struct mss_buf b;
	(void)state;

	m = mss_json_decode(json, strlen(json), MSS_JSON_REQUESTS_ONLY, &err);
	assert_non_null(m);
	assert_int_equal(mss_validate(m, &err), 0);
	assert_non_null(m->u.sig_req->additional_services);
	assert_int_equal(m->u.sig_req->additional_services->n, 0);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
	m2 = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m2);
	assert_int_equal(mss_validate(m2, &err), -1);
	assert_int_equal(err.code, MSS_MISSING_PARAM);
	mss_buf_free(&b);
	mss_msg_free(m);
	mss_msg_free(m2);
}

/* REST registration (kiuru-ra): JSON only, with no SOAP form. */
static void
test_rest_registration(void **state)
{
	static const char json[] = "{\"MSS_RegistrationReq\":{\"User\":{\"Role\":\"enduser\"},\"UseCase\":{\"Name\":\"mids:GetMobileUser\",\"NameSpace\":\"http://www.methics.fi/mids\",\"Inputs\":[{\"Name\":\"targetmsisdn\",\"Value\":\"+35847001001\"}]}}}";
	struct mss_err err;
	struct mss_msg *m;
	struct mss_buf b;
	(void)state;

	m = mss_json_decode(json, strlen(json), 0, &err);
	assert_non_null(m);
	assert_int_equal(mss_validate(m, &err), 0);
	assert_string_equal(m->u.reg_req->use_case->name, "mids:GetMobileUser");
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), -1);
	assert_int_equal(err.code, 101);
	mss_buf_free(&b);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_json_encode(m, &b, &err), 0);
	assert_non_null(strstr(mss_buf_str(&b), "\"Inputs\":[{\"Name\":\"targetmsisdn\""));
	mss_buf_free(&b);
	mss_msg_free(m);
}

/* Arrays and strings are capped. */
static void
test_caps(void **state)
{
	struct mss_buf b;
	struct mss_err err;
	int i;
	(void)state;

	mss_buf_init(&b, 1 << 20);
	mss_buf_adds(&b, "{\"MSS_ProfileResp\":{\"SignatureProfile\":[");
	for (i = 0; i < 1000; i++)
		mss_buf_addf(&b, "%s\"http://x/%d\"", i ? "," : "", i);
	mss_buf_adds(&b, "]}}");
	assert_null(mss_json_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err));
	assert_int_equal(err.code, 101);
	mss_buf_free(&b);

	mss_buf_init(&b, 1 << 20);
	mss_buf_adds(&b, "{\"MSS_StatusReq\":{\"MSSP_TransID\":\"A");
	for (i = 0; i < 70000; i++)
		mss_buf_adds(&b, "a");
	mss_buf_adds(&b, "\"}}");
	assert_null(mss_json_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err));
	assert_int_equal(err.kind, MSS_E_HTTP);
	assert_int_equal(err.code, 413);
	mss_buf_free(&b);

	mss_buf_init(&b, 1 << 20);
	for (i = 0; i < 3000; i++)
		mss_buf_adds(&b, "{\"a\":");
	assert_null(mss_json_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err));
	assert_int_equal(err.code, 101);
	mss_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_requests_only),
		cmocka_unit_test(test_fault_form),
		cmocka_unit_test(test_minimal_rest_request),
		cmocka_unit_test(test_rest_registration),
		cmocka_unit_test(test_caps),
	};

	mss_soap_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
