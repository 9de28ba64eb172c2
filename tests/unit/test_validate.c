/* test_validate.c - message checks before business logic. */
#include "testutil.h"

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"

/* A complete, valid signature request; `extra` is spliced into it and
 * `dtbs` replaces the DataToBeSigned object. */
static int
check_sig(const char *extra, const char *dtbs, struct mss_err *err)
{
	char json[8192];
	struct mss_msg *m;
	int rc;

	snprintf(json, sizeof(json),
		 "{\"MSS_SignatureReq\":{\"MajorVersion\":\"1\",\"MinorVersion\":\"1\","
		 "\"MessagingMode\":\"synch\",\"AP_Info\":{\"AP_ID\":\"http://demo.ap/\","
		 "\"AP_PWD\":\"x\",\"AP_TransID\":\"A1\",\"Instant\":\"2026-01-01T00:00:00Z\"},"
		 "\"MSSP_Info\":{\"MSSP_ID\":{}},\"MobileUser\":{\"MSISDN\":\"+35847000001\"},"
		 "\"DataToBeSigned\":%s%s}}",
		 dtbs ? dtbs : "{\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\",\"Data\":\"Sign?\"}",
		 extra ? extra : "");
	m = mss_json_decode(json, strlen(json), 0, err);
	if (m == NULL)
		return -2; /* refused by the codec, not the validator */
	rc = mss_validate(m, err);
	mss_msg_free(m);
	return rc;
}

static void
test_valid_request(void **state)
{
	struct mss_err err;
	(void)state;

	assert_int_equal(check_sig(NULL, NULL, &err), 0);
	assert_int_equal(check_sig(",\"TimeOut\":\"80\",\"SignatureProfile\":\"mss::sign:loa3\","
				   "\"SignatureProfileComparison\":\"minimum\","
				   "\"MSS_Format\":\"http://uri.etsi.org/TS102204/v1.1.2#PKCS7\","
				   "\"AdditionalServices\":[{\"Description\":\"http://uri.etsi.org/TS102204/v1.1.2#validate\"},"
				   "{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#userLang\",\"UserLang\":{\"Value\":\"en\"}},"
				   "{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#eventId\",\"EventID\":{\"Value\":\"A7B3\"}},"
				   "{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#noSpam\",\"NoSpamCode\":{\"Code\":\"1234\",\"Verify\":\"yes\"}}]",
				   NULL, &err), 0);
}

static void
test_msisdn(void **state)
{
	(void)state;
	assert_true(mss_msisdn_valid("+35847000001"));
	assert_true(mss_msisdn_valid("41791234567"));
	assert_true(mss_msisdn_valid("+123456"));
	assert_false(mss_msisdn_valid("+12345"));
	assert_false(mss_msisdn_valid("+1234567890123456"));
	assert_false(mss_msisdn_valid("0041791234567"));
	assert_false(mss_msisdn_valid("+41 79 123 45 67"));
	assert_false(mss_msisdn_valid("+4179abc4567"));
	assert_false(mss_msisdn_valid("\xef\xbc\x94\xef\xbc\x91" "791234567")); /* full-width */
	assert_false(mss_msisdn_valid(" +41791234567"));
	assert_false(mss_msisdn_valid(""));
	assert_false(mss_msisdn_valid("+"));
	assert_false(mss_msisdn_valid(NULL));
}

static void
test_display_text(void **state)
{
	struct mss_err err;
	char buf[1024];
	(void)state;

	memset(buf, 'a', 239);
	buf[239] = '\0';
	assert_int_equal(mss_display_text_check(buf, &err), 0);
	buf[239] = 'a';
	buf[240] = '\0';
	assert_int_equal(mss_display_text_check(buf, &err), -1);
	assert_int_equal(err.code, MSS_WRONG_DATA_LENGTH);
	/* extension characters count twice */
	memset(buf, '{', 120);
	buf[120] = '\0';
	assert_int_equal(mss_display_text_check(buf, &err), -1);
	buf[119] = '\0';
	assert_int_equal(mss_display_text_check(buf, &err), 0);
	/* one non-GSM character switches to UCS-2: 119 characters */
	memset(buf, 'a', 118);
	memcpy(buf + 118, "\xc4\x8d", 3); /* c with caron */
	assert_int_equal(mss_display_text_check(buf, &err), 0);
	memset(buf, 'a', 119);
	memcpy(buf + 119, "\xc4\x8d", 3);
	assert_int_equal(mss_display_text_check(buf, &err), -1);
	assert_int_equal(err.code, MSS_WRONG_DATA_LENGTH);
	/* GSM letters with accents stay GSM-7 */
	assert_int_equal(mss_display_text_check("Zahlung \xc3\xa4\xc3\xb6\xc3\xbc \xc3\xa9 \xe2\x82\xac 10", &err), 0);
	/* */
	assert_int_equal(mss_display_text_check("Pay 10 EUR\n\n\nPay 10000 EUR", &err), -1);
	assert_int_equal(err.code, MSS_INAPPROPRIATE_DATA);
	assert_int_equal(mss_display_text_check("abc\xe2\x80\xae" "cba", &err), -1); /* RLO */
	assert_int_equal(err.code, MSS_INAPPROPRIATE_DATA);
	assert_int_equal(mss_display_text_check("a\xe2\x80\x8b" "b", &err), -1); /* ZWSP */
	assert_int_equal(mss_display_text_check("a\xc2\x85" "b", &err), -1);	/* NEL (C1) */
	assert_int_equal(mss_display_text_check("a\x7f" "b", &err), -1);
	assert_int_equal(mss_display_text_check("a\tb", &err), -1);
}

struct vcase {
	const char *extra;
	const char *dtbs;
	int code;
	int subcode;
};

static void
test_signature_request_rules(void **state)
{
	static const struct vcase cases[] = {
		{ ",\"TimeOut\":\"601\"", NULL, 101, 0 },
		{ ",\"TimeOut\":\"0\"", NULL, -2, 0 }, /* not a positiveInteger: codec */
		{ ",\"TimeOut\":\"99999999\"", NULL, 101, 0 },
		{ ",\"ValidityDate\":\"2026-01-01T00:00:00\"", NULL, 101, 0 },
		{ ",\"SignatureProfile\":\"mss:demo:fly:loa3\"", NULL, 109, 0 },
		{ ",\"SignatureProfileComparison\":\"best\"", NULL, 101, 0 },
		{ ",\"MSS_Format\":\"http://uri.etsi.org/TS102204/v1.1.2#XML-Signature\"", NULL, 101, 1017 },
		{ ",\"AdditionalServices\":[{\"Description\":\"http://evil/#x\"}]", NULL, 101, 1014 },
		{ ",\"AdditionalServices\":[{\"Description\":\"http://uri.etsi.org/TS102204/v1.1.2#validate\"},{\"Description\":\"http://uri.etsi.org/TS102204/v1.1.2#validate\"}]", NULL, 101, 0 },
		{ ",\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#userLang\",\"UserLang\":{\"Value\":\"english\"}}]", NULL, 101, 0 },
		{ ",\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#noSpam\"}]", NULL, 101, 1012 },
		{ ",\"AdditionalServices\":[{\"Description\":\"http://uri.etsi.org/TS102204/v1.1.2#validate\",\"UserLang\":{\"Value\":\"en\"}}]", NULL, 101, 0 },
		{ ",\"DataToBeDisplayed\":{\"Data\":\"Pay\\n\\nPay more\"}", NULL, 107, 0 },
		{ ",\"DataToBeDisplayed\":{\"MimeType\":\"application/octet-stream\",\"Encoding\":\"base64\",\"Data\":\"AAAA\"}", NULL, 101, 1016 },
		{ NULL, "{\"MimeType\":\"application/x-sha256\",\"Encoding\":\"base64\",\"Data\":\"AAAA\"}", 103, 0 },
		{ NULL, "{\"MimeType\":\"application/x-sha256\",\"Encoding\":\"base64\",\"Data\":\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}", 0, 0 },
		{ NULL, "{\"MimeType\":\"application/x-sha256\",\"Encoding\":\"UTF-8\",\"Data\":\"abc\"}", 101, 1016 },
		{ NULL, "{\"MimeType\":\"application/octet-stream\",\"Encoding\":\"base64\",\"Data\":\"AA=A\"}", 101, 0 },
		{ NULL, "{\"MimeType\":\"application/octet-stream\",\"Encoding\":\"base64\",\"Data\":\"AAB=\"}", 101, 0 },
		{ NULL, "{\"MimeType\":\"image/png\",\"Encoding\":\"base64\",\"Data\":\"AAAA\"}", 101, 1016 },
		{ NULL, "{\"Encoding\":\"ISO-8859-1\",\"Data\":\"abc\"}", 101, 1016 },
		{ NULL, "{\"Encoding\":\"UTF-8\"}", 102, 0 }, /* laverca-rest hash bug */
		{ NULL, "{\"Data\":\"a\\u0007b\"}", -2, 0 },
		{ NULL, "{\"Data\":\"Sign \\u202econtract\"}", 107, 0 },
		{ NULL, "{\"Data\":\"Bonjour \xc3\xa0 vous\"}", 0, 0 },
		/* review findings: line/paragraph separators, fillers, tags */
		{ ",\"DataToBeDisplayed\":{\"Data\":\"Pay 10 EUR\\u2028Pay 10000 EUR\"}", NULL, 107, 0 },
		{ ",\"DataToBeDisplayed\":{\"Data\":\"a\\u3164b\"}", NULL, 107, 0 },
		{ ",\"DataToBeDisplayed\":{\"Data\":\"a\\udb40\\udc41b\"}", NULL, 107, 0 },
		{ ",\"DataToBeDisplayed\":{\"Data\":\"a\\ufe0fb\"}", NULL, 107, 0 },
		/* text/plain sent base64 is checked as the text it decodes to */
		{ NULL, "{\"MimeType\":\"text/plain\",\"Encoding\":\"base64\",\"Data\":\"UGF5CgpQYXk=\"}", 107, 0 },
		{ NULL, "{\"MimeType\":\"text/plain\",\"Encoding\":\"base64\",\"Data\":\"U2lnbiB0aGlz\"}", 0, 0 },
		{ NULL, "{\"MimeType\":\"text/plain\",\"Encoding\":\"base64\",\"Data\":\"//79\"}", 101, 1016 },
		/* the DTBS is not displayed when a DTBD is given */
		{ ",\"DataToBeDisplayed\":{\"Data\":\"Sign the contract\"}", "{\"Data\":\"line1\\nline2\"}", 0, 0 },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mss_err err;
		int rc = check_sig(cases[i].extra, cases[i].dtbs, &err);

		if (cases[i].code == -2) {
			if (rc != -2)
				fail_msg("case %zu: expected a codec refusal", i);
			continue;
		}
		if (cases[i].code == 0) {
			if (rc != 0)
				fail_msg("case %zu refused: %d %s", i, err.code, err.detail);
			continue;
		}
		if (rc != -1 || err.code != cases[i].code || err.subcode != cases[i].subcode)
			fail_msg("case %zu: rc %d code %d/%d (%s), want %d/%d", i, rc, err.code,
				 err.subcode, err.detail, cases[i].code, cases[i].subcode);
	}
}

static int
validate_json(const char *json, struct mss_err *err)
{
	struct mss_msg *m = mss_json_decode(json, strlen(json), 0, err);
	int rc;

	if (m == NULL)
		return -2;
	rc = mss_validate(m, err);
	mss_msg_free(m);
	return rc;
}

static void
test_versions_and_common(void **state)
{
	struct mss_err err;
	(void)state;

	assert_int_equal(validate_json("{\"MSS_StatusReq\":{\"MajorVersion\":\"3\",\"MinorVersion\":\"1\",\"MSSP_TransID\":\"T\"}}", &err), -1);
	assert_int_equal(err.code, MSS_INCOMPATIBLE_INTERFACE);
	assert_int_equal(validate_json("{\"MSS_StatusReq\":{\"MajorVersion\":\"2\",\"MinorVersion\":\"0\",\"MSSP_TransID\":\"T\"}}", &err), -1);
	assert_int_equal(err.code, MSS_INCOMPATIBLE_INTERFACE);
	assert_int_equal(validate_json("{\"MSS_ProfileReq\":{\"MajorVersion\":\"2\",\"MinorVersion\":\"0\",\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"Params\":\"sscds state certs\"}}", &err), 0);
	assert_int_equal(validate_json("{\"MSS_ProfileReq\":{\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"Params\":\"sscds evil\"}}", &err), -1);
	assert_int_equal(err.code, MSS_WRONG_PARAM);
	assert_int_equal(validate_json("{\"MSS_ProfileReq\":{\"AP_Info\":{}}}", &err), -1);
	assert_int_equal(err.code, MSS_MISSING_PARAM);
	assert_int_equal(validate_json("{\"MSS_StatusReq\":{\"MSSP_TransID\":\"T\",\"AP_Info\":{\"Instant\":\"2026-01-01T10:00:00\"}}}", &err), -1);
	assert_int_equal(err.code, MSS_WRONG_PARAM);
	assert_int_equal(validate_json("{\"MSS_StatusReq\":{\"MSSP_TransID\":\"T\",\"MobileUser\":{\"MSISDN\":\"12\"}}}", &err), -1);
	assert_string_equal(err.detail, "Illegal msisdn");
	/* a receipt is displayed: base64 text is decoded and checked too */
	assert_int_equal(validate_json("{\"MSS_ReceiptReq\":{\"MSSP_TransID\":\"T\",\"Message\":{\"MimeType\":\"text/plain\",\"Encoding\":\"base64\",\"Data\":\"b2sbWzJKZmFrZQ==\"}}}", &err), -1);
	assert_int_equal(err.code, MSS_INAPPROPRIATE_DATA);
	assert_int_equal(validate_json("{\"MSS_ReceiptReq\":{\"MSSP_TransID\":\"T\",\"Message\":{\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\",\"Data\":\"Paid 10 EUR\\u202e0001\"}}}", &err), -1);
	assert_int_equal(err.code, MSS_INAPPROPRIATE_DATA);
	assert_int_equal(validate_json("{\"MSS_ReceiptReq\":{\"MSSP_TransID\":\"T\",\"Message\":{\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\",\"Data\":\"Thank you, payment done\"}}}", &err), 0);
	assert_int_equal(validate_json("{\"MSS_StatusReq\":{}}", &err), -1);
	assert_int_equal(err.code, MSS_MISSING_PARAM);
	assert_int_equal(validate_json("{\"MSS_RegistrationReq\":{}}", &err), -1);
	assert_int_equal(err.code, MSS_MISSING_PARAM);
	assert_int_equal(validate_json("{\"MSS_SignatureResp\":{\"MSSP_TransID\":\"T\",\"MobileUser\":{},\"Status\":{\"StatusCode\":{\"Value\":\"777\"}}}}", &err), -1);
	assert_int_equal(validate_json("{\"MSS_SignatureResp\":{\"MSSP_TransID\":\"T\",\"MobileUser\":{},\"MSS_Signature\":{},\"Status\":{\"StatusCode\":{\"Value\":\"500\"}}}}", &err), -1);
}

/* The same logical request gets the same verdict in SOAP and JSON (J-10). */
static void
test_parity(void **state)
{
	static const char *const bad_msisdn[2] = {
		"{\"MSS_ProfileReq\":{\"MajorVersion\":\"1\",\"MinorVersion\":\"1\",\"AP_Info\":{\"AP_ID\":\"http://demo.ap/\",\"AP_PWD\":\"x\",\"AP_TransID\":\"A1\",\"Instant\":\"2026-01-01T00:00:00Z\"},\"MSSP_Info\":{\"MSSP_ID\":{}},\"MobileUser\":{\"MSISDN\":\"0041 79\"}}}",
		"<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><MSS_ProfileQuery><mss:MSS_ProfileReq xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" MajorVersion=\"1\" MinorVersion=\"1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>0041 79</mss:MSISDN></mss:MobileUser></mss:MSS_ProfileReq></MSS_ProfileQuery></e:Body></e:Envelope>",
	};
	struct mss_err e1, e2;
	struct mss_msg *m1, *m2;
	(void)state;

	m1 = mss_json_decode(bad_msisdn[0], strlen(bad_msisdn[0]), 0, &e1);
	m2 = mss_soap_decode(bad_msisdn[1], strlen(bad_msisdn[1]), 0, &e2);
	assert_non_null(m1);
	assert_non_null(m2);
	assert_true(mss_msg_equal(m1, m2));
	assert_int_equal(mss_validate(m1, &e1), -1);
	assert_int_equal(mss_validate(m2, &e2), -1);
	assert_int_equal(e1.code, e2.code);
	assert_string_equal(e1.detail, e2.detail);
	mss_msg_free(m1);
	mss_msg_free(m2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_request),
		cmocka_unit_test(test_msisdn),
		cmocka_unit_test(test_display_text),
		cmocka_unit_test(test_signature_request_rules),
		cmocka_unit_test(test_versions_and_common),
		cmocka_unit_test(test_parity),
	};

	mss_soap_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
