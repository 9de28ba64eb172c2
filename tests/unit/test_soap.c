/* test_soap.c - the SOAP codec: samples, client forms, hardening, faults. */
#include "testutil.h"

#include <jansson.h>

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"

static const char *const soap_samples[] = {
	"etsi/samples/soap/soap-response-async-signature.xml",
	"etsi/samples/soap/soap-response-profile-query.xml",
	"etsi/samples/soap/soap-response-status-outstanding.xml",
	"etsi/samples/soap/soap-response-status-signature.xml",
};

static struct mss_msg *
decode_str(const char *s, unsigned flags, struct mss_err *err)
{
	return mss_soap_decode(s, strlen(s), flags, err);
}

/* SOAP -> struct -> SOAP -> struct and -> JSON -> struct are all equal. */
static void
test_samples_round_trip(void **state)
{
	size_t i, len;
	(void)state;

	for (i = 0; i < sizeof(soap_samples) / sizeof(soap_samples[0]); i++) {
		struct mss_err err;
		struct mss_buf sb, jb;
		struct mss_msg *m, *m2, *m3;
		char *xml = tu_slurp_shared(soap_samples[i], &len);

		m = mss_soap_decode(xml, len, 0, &err);
		if (m == NULL)
			fail_msg("%s: %s", soap_samples[i], err.detail);
		assert_int_equal(m->soap, MSS_SOAP_12);
		assert_int_equal(mss_validate(m, &err), 0);
		mss_buf_init(&sb, 1 << 20);
		assert_int_equal(mss_soap_encode(m, m->soap, &sb, &err), 0);
		m2 = mss_soap_decode(mss_buf_str(&sb), mss_buf_len(&sb), 0, &err);
		assert_non_null(m2);
		assert_true(mss_msg_equal(m, m2));
		mss_buf_init(&jb, 1 << 20);
		assert_int_equal(mss_json_encode(m, &jb, &err), 0);
		m3 = mss_json_decode(mss_buf_str(&jb), mss_buf_len(&jb), 0, &err);
		assert_non_null(m3);
		assert_true(mss_msg_equal(m, m3));
		mss_buf_free(&sb);
		mss_buf_free(&jb);
		mss_msg_free(m);
		mss_msg_free(m2);
		mss_msg_free(m3);
		free(xml);
	}
}

/* The Swisscom Java client's mapping of two samples (the *-expected.json
 * files) agrees with what we decode. */
static void
test_samples_expected_values(void **state)
{
	struct mss_err err;
	struct mss_msg *m;
	json_t *exp;
	size_t len, i;
	char *xml;
	(void)state;

	xml = tu_slurp_shared("etsi/samples/soap/soap-response-status-signature.xml", &len);
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/etsi/samples/soap/soap-response-status-signature-expected.json", tu_shared());
		exp = json_load_file(p, 0, NULL);
	}
	assert_non_null(exp);
	m = mss_soap_decode(xml, len, 0, &err);
	assert_non_null(m);
	assert_int_equal(m->type, MSS_STATUS_RESP);
	assert_string_equal(m->u.status_resp->status->code->value,
			    json_string_value(json_object_get(json_object_get(exp, "status"), "statusCodeString")));
	assert_string_equal(m->u.status_resp->status->message,
			    json_string_value(json_object_get(json_object_get(exp, "status"), "statusMessage")));
	assert_string_equal(m->u.status_resp->signature->base64_signature,
			    json_string_value(json_object_get(exp, "base64Signature")));
	assert_string_equal(m->u.status_resp->mobile_user->msisdn,
			    json_string_value(json_object_get(json_object_get(exp, "tracking"), "mobileUserMsisdn")));
	{
		const struct mss_list *sr = m->u.status_resp->status->detail->service_responses;
		const struct mss_service_response *r = sr->items[0];
		json_t *e = json_array_get(json_object_get(exp, "additionalServiceResponses"), 0);

		assert_int_equal(sr->n, 1);
		assert_string_equal(r->description, json_string_value(json_object_get(e, "uri")));
		assert_string_equal(r->geofencing->country, json_string_value(json_object_get(e, "country")));
		assert_string_equal(r->geofencing->accuracy, "10");
		assert_string_equal(r->geofencing->device_confidence,
				    json_string_value(json_object_get(e, "deviceConfidence")));
	}
	mss_msg_free(m);
	json_decref(exp);
	free(xml);

	/* profile query */
	xml = tu_slurp_shared("etsi/samples/soap/soap-response-profile-query.xml", &len);
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/etsi/samples/soap/soap-response-profile-query-expected.json", tu_shared());
		exp = json_load_file(p, 0, NULL);
	}
	assert_non_null(exp);
	m = mss_soap_decode(xml, len, 0, &err);
	assert_non_null(m);
	{
		const struct mss_profile_resp *pr = m->u.profile_resp;
		json_t *profiles = json_object_get(exp, "signatureProfiles");
		const struct mss_pq_extension *x = pr->status->detail->profile_query_ext;
		json_t *sim = json_array_get(json_object_get(exp, "simDevices"), 0);
		json_t *certs = json_object_get(sim, "certificates");

		assert_int_equal(pr->signature_profile->n, json_array_size(profiles));
		for (i = 0; i < pr->signature_profile->n; i++)
			assert_string_equal(pr->signature_profile->items[i],
					    json_string_value(json_array_get(profiles, i)));
		assert_string_equal(x->mobile_user->recovery_code_created, "true");
		assert_string_equal(x->mobile_user->auto_activation, "false");
		assert_string_equal(x->sscds->sim->state, json_string_value(json_object_get(sim, "state")));
		assert_int_equal(x->sscds->sim->certificate->n, json_array_size(certs));
		for (i = 0; i < x->sscds->sim->certificate->n; i++) {
			const struct mss_pq_certificate *c = x->sscds->sim->certificate->items[i];
			json_t *ec = json_array_get(certs, i);
			json_t *uc = json_object_get(ec, "userCertificate");

			assert_string_equal(c->algorithm, json_string_value(json_object_get(ec, "algorithm")));
			assert_string_equal(c->state, json_string_value(json_object_get(ec, "state")));
			assert_string_equal(c->x509_certificate->items[0],
					    json_string_value(json_object_get(uc, "certificateAsBase64")));
			assert_string_equal(c->x509_subject_name->items[0],
					    json_string_value(json_object_get(uc, "subjectName")));
			assert_int_equal(c->x509_certificate->n,
					 1 + json_array_size(json_object_get(ec, "caCertificates")));
		}
	}
	mss_msg_free(m);
	json_decref(exp);
	free(xml);
}

#define ENV12 "<soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\">"
#define ENV11 "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
#define MSSNS "xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\""
#define STATUS_REQ_BODY(pfx, attrs) \
	"<" pfx "MSS_StatusReq " attrs " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\">" \
	"<mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/>" \
	"<mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info></" pfx "MSS_StatusReq>"

/* Wrapper and part element in every form real clients use. */
static void
test_client_forms(void **state)
{
	static const char *const forms[] = {
		/* Laverca/Swisscom: unqualified wrapper, mss: part */
		ENV12 "<soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
		/* WSDL namespace wrapper */
		ENV12 "<soapenv:Body><w:MSS_StatusQuery xmlns:w=\"http://uri.etsi.org/TS102204/etsi204-kiuru.wsdl\">" STATUS_REQ_BODY("mss:", MSSNS) "</w:MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
		/* PHP: wrapper in the envelope namespace, unqualified part */
		ENV12 "<soapenv:Body><soapenv:MSS_StatusQuery>" "<MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info></MSS_StatusReq>" "</soapenv:MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
		/* default namespace for the part, other prefix for children */
		ENV12 "<soapenv:Body><MSS_StatusQuery><ns5:MSS_StatusReq xmlns:ns5=\"http://uri.etsi.org/TS102204/v1.1.2#\" MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><ns5:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><ns5:MSSP_Info><ns5:MSSP_ID/></ns5:MSSP_Info></ns5:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
		/* SOAP 1.1 envelope */
		ENV11 "<soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
		/* empty header, encodingStyle on the Envelope (Swisscom) */
		"<soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\" soapenv:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><soapenv:Header/><soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct mss_err err;
		struct mss_msg *m = decode_str(forms[i], MSS_SOAP_REQUESTS_ONLY, &err);

		if (m == NULL)
			fail_msg("form %zu: %d %s", i, err.code, err.detail);
		assert_int_equal(m->type, MSS_STATUS_REQ);
		assert_int_equal(m->op, MSS_OP_STATUS_QUERY);
		assert_string_equal(m->u.status_req->mssp_trans_id, "T1");
		assert_int_equal(m->soap, i == 4 ? MSS_SOAP_11 : MSS_SOAP_12);
		assert_int_equal(mss_validate(m, &err), 0);
		mss_msg_free(m);
	}
}

struct bad_case {
	const char *xml;
	enum mss_err_kind kind;
	int code;
};

static void
test_refusals(void **state)
{
	static const struct bad_case cases[] = {
		/* DOCTYPE, even empty */
		{ "<?xml version=\"1.0\"?><!DOCTYPE x []>" ENV12 "<soapenv:Body/></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* XXE */
		{ "<!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>" ENV12 "<soapenv:Body><MSS_StatusQuery>&x;</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* billion laughs */
		{ "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;\">]>" ENV12 "<soapenv:Body>&c;</soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* not an envelope (P-01) */
		{ STATUS_REQ_BODY("mss:", MSSNS), MSS_E_STATUS, 101 },
		/* unknown envelope version (P-02) */
		{ "<e:Envelope xmlns:e=\"urn:other\"><e:Body/></e:Envelope>", MSS_E_VERSION_MISMATCH, 0 },
		/* empty body (P-06) */
		{ ENV12 "<soapenv:Body/></soapenv:Envelope>", MSS_E_STATUS, 102 },
		/* wrapper without part (P-06) */
		{ ENV12 "<soapenv:Body><MSS_StatusQuery/></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 102 },
		/* two operations (P-05) */
		{ ENV12 "<soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery><MSS_StatusQuery/></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* header after body (P-05) */
		{ ENV12 "<soapenv:Body/><soapenv:Header/></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* mustUnderstand header (P-07) */
		{ ENV12 "<soapenv:Header><r:RoamingHeader xmlns:r=\"http://uri.etsi.org/TS102207/v1.1.2#\" soapenv:mustUnderstand=\"true\"/></soapenv:Header><soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>", MSS_E_MUST_UNDERSTAND, 0 },
		/* encodingStyle inside the body (P-09) */
		{ ENV12 "<soapenv:Body><MSS_StatusQuery soapenv:encodingStyle=\"x\">" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* a fault as a request (P-10) */
		{ ENV12 "<soapenv:Body><soapenv:Fault/></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* unknown operation (P-11) */
		{ ENV12 "<soapenv:Body><MSS_Launch>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_Launch></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* message does not match its operation */
		{ ENV12 "<soapenv:Body><MSS_Signature>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_Signature></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* other TS 102 204 version */
		{ ENV12 "<soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("v:", "xmlns:v=\"http://uri.etsi.org/TS102204/v1.2.1#\" " MSSNS) "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 108 },
		/* processing instruction */
		{ ENV12 "<?evil?><soapenv:Body/></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* XML 1.1 */
		{ "<?xml version=\"1.1\"?>" ENV12 "<soapenv:Body/></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* declared UTF-16 */
		{ "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" ENV12 "<soapenv:Body/></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* forbidden character reference */
		{ ENV12 "<soapenv:Body>&#x1B;</soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* trailing element */
		{ ENV12 "<soapenv:Body/></soapenv:Envelope><x/>", MSS_E_STATUS, 101 },
		/* schemaLocation */
		{ ENV12 "<soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://evil/ x.xsd\"") "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* response at a server (REQUESTS_ONLY) */
		{ ENV12 "<soapenv:Body><MSS_StatusQueryResponse>" STATUS_REQ_BODY("mss:", MSSNS) "</MSS_StatusQueryResponse></soapenv:Body></soapenv:Envelope>", MSS_E_STATUS, 101 },
		/* empty and truncated */
		{ "   ", MSS_E_STATUS, 101 },
		{ ENV12 "<soapenv:Body><MSS_StatusQuery>", MSS_E_STATUS, 101 },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mss_err err;
		struct mss_msg *m = decode_str(cases[i].xml, MSS_SOAP_REQUESTS_ONLY, &err);

		if (m != NULL)
			fail_msg("case %zu accepted", i);
		if (err.kind != cases[i].kind || err.code != cases[i].code)
			fail_msg("case %zu: kind %d code %d (%s), want kind %d code %d", i, err.kind,
				 err.code, err.detail, cases[i].kind, cases[i].code);
	}
}

/* Simple fields: comments are refused (S-03), CDATA is concatenated. */
static void
test_simple_field_content(void **state)
{
	static const char cdata[] = ENV12 "<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+358<![CDATA[47000]]>001</mss:MSISDN></mss:MobileUser></mss:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	static const char comment[] = ENV12 "<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+35847<!-- -->000001</mss:MSISDN></mss:MobileUser></mss:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	struct mss_err err;
	struct mss_msg *m;
	(void)state;

	m = decode_str(cdata, 0, &err);
	assert_non_null(m);
	assert_string_equal(m->u.status_req->mobile_user->msisdn, "+35847000001");
	mss_msg_free(m);
	m = decode_str(comment, 0, &err);
	assert_null(m);
	assert_int_equal(err.code, 101);
}

/* Duplicates and order: schema violations, never first/last wins. */
static void
test_duplicates_and_order(void **state)
{
	static const char dup[] = ENV12 "<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+35847000001</mss:MSISDN><mss:MSISDN>+35847000002</mss:MSISDN></mss:MobileUser></mss:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	static const char order[] = ENV12 "<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/></mss:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	static const char unqualified_child[] = ENV12 "<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"T1\"><AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/></mss:MSS_StatusReq></MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	struct mss_err err;
	(void)state;

	assert_null(decode_str(dup, 0, &err));
	assert_int_equal(err.code, 101);
	assert_null(decode_str(order, 0, &err));
	assert_int_equal(err.code, 101);
	assert_null(decode_str(unqualified_child, 0, &err));
	assert_int_equal(err.code, 101);
}

/* What the Swisscom shell client greps for must be there literally. */
static void
test_encode_response_shape(void **state)
{
	struct mss_msg *m = mss_msg_new(MSS_SIGNATURE_RESP);
	struct mss_signature_resp *r;
	struct mss_err err;
	struct mss_buf b;
	const char *s;
	(void)state;

	assert_non_null(m);
	r = m->u.sig_resp;
	r->c.major_version = mss_msg_strdup(m, "1");
	r->c.minor_version = mss_msg_strdup(m, "1");
	r->c.ap_info = mss_msg_alloc(m, sizeof(*r->c.ap_info));
	r->c.ap_info->ap_id = mss_msg_strdup(m, "http://demo.ap/");
	r->c.ap_info->ap_trans_id = mss_msg_strdup(m, "AP.TEST.1.2");
	r->c.ap_info->ap_pwd = mss_msg_strdup(m, "x\"<&");
	r->c.ap_info->instant = mss_msg_strdup(m, "2026-01-01T00:00:00Z");
	r->mssp_trans_id = mss_msg_strdup(m, "Tabc");
	r->mobile_user = mss_msg_alloc(m, sizeof(*r->mobile_user));
	r->mobile_user->msisdn = mss_msg_strdup(m, "+35847000001");
	r->signature = mss_msg_alloc(m, sizeof(*r->signature));
	r->signature->base64_signature = mss_msg_strdup(m, "MIIB");
	r->status = mss_msg_alloc(m, sizeof(*r->status));
	r->status->code = mss_msg_alloc(m, sizeof(*r->status->code));
	r->status->code->value = mss_msg_strdup(m, "500");
	r->status->message = mss_msg_strdup(m, "SIGNATURE");
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
	s = mss_buf_str(&b);
	assert_non_null(strstr(s, "<MSS_SignatureResponse>"));
	assert_non_null(strstr(s, "<mss:MSS_SignatureResp "));
	assert_non_null(strstr(s, "MSSP_TransID=\"Tabc\""));
	assert_non_null(strstr(s, "AP_TransID=\"AP.TEST.1.2\""));
	assert_non_null(strstr(s, "AP_PWD=\"x&quot;&lt;&amp;\""));
	assert_non_null(strstr(s, "<mss:MSISDN>+35847000001</mss:MSISDN>"));
	assert_non_null(strstr(s, "<mss:StatusCode Value=\"500\"/>"));
	assert_non_null(strstr(s, "<mss:StatusMessage>SIGNATURE</mss:StatusMessage>"));
	assert_non_null(strstr(s, "<mss:Base64Signature>MIIB</mss:Base64Signature>"));
	assert_null(strstr(s, "xmlns:fi")); /* only the namespaces used */
	mss_buf_free(&b);
	mss_msg_free(m);
}

/* Text with markup characters and CR survives encode/decode exactly. */
static void
test_escaping_round_trip(void **state)
{
	static const char json[] = "{\"MSS_SignatureReq\":{\"MajorVersion\":\"1\",\"MinorVersion\":\"1\",\"MessagingMode\":\"synch\",\"AP_Info\":{\"AP_ID\":\"http://demo.ap/\",\"AP_PWD\":\"p\",\"AP_TransID\":\"A1\",\"Instant\":\"2026-01-01T00:00:00Z\"},\"MSSP_Info\":{\"MSSP_ID\":{}},\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"MimeType\":\"text/plain\",\"Encoding\":\"UTF-8\",\"Data\":\" a<b>&c\\\"d'</mss:MSISDN>]]>\\r\\n\\tz \"}}}";
	struct mss_err err;
	struct mss_msg *m, *m2;
	struct mss_buf b;
	(void)state;

	m = mss_json_decode(json, strlen(json), 0, &err);
	assert_non_null(m);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
	m2 = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m2);
	assert_string_equal(m2->u.sig_req->dtbs->data, " a<b>&c\"d'</mss:MSISDN>]]>\r\n\tz ");
	assert_true(mss_msg_equal(m, m2));
	mss_buf_free(&b);
	mss_msg_free(m);
	mss_msg_free(m2);
}

static void
test_fault_encode_decode(void **state)
{
	struct mss_err err;
	struct mss_fault f;
	struct mss_buf b;
	struct mss_msg *m;
	(void)state;

	mss_err_set(&err, MSS_WRONG_PARAM, MSS_SUB_UNKNOWN_ADDITIONALSERVICE, "Illegal msisdn");
	mss_fault_from_err(&err, &f);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode_fault(&f, MSS_SOAP_12, &b), 0);
	assert_non_null(strstr(mss_buf_str(&b), "<soapenv:Value>soapenv:Sender</soapenv:Value>"));
	assert_non_null(strstr(mss_buf_str(&b), "<soapenv:Value>mss:_101</soapenv:Value>"));
	/* the FiCom second level stays off the wire (Swisscom scripts) */
	assert_null(strstr(mss_buf_str(&b), "_1014"));
	assert_non_null(strstr(mss_buf_str(&b), "<soapenv:Text xml:lang=\"en\">WRONG_PARAM</soapenv:Text>"));
	assert_non_null(strstr(mss_buf_str(&b), ">Illegal msisdn</ns1:detail>"));
	m = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m);
	assert_int_equal(m->type, MSS_FAULT);
	assert_string_equal(m->u.fault->code_value, "Sender");
	assert_string_equal(m->u.fault->subcode_value, "_101");
	assert_string_equal(m->u.fault->subcode_ns, MSS_NS);
	assert_null(m->u.fault->subsubcode_value);
	assert_string_equal(m->u.fault->reason, "WRONG_PARAM");
	assert_string_equal(m->u.fault->detail, "Illegal msisdn");
	mss_msg_free(m);
	mss_buf_free(&b);

	/* SOAP 1.1 */
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode_fault(&f, MSS_SOAP_11, &b), 0);
	m = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m);
	assert_string_equal(m->u.fault->subcode_value, "_101");
	assert_string_equal(m->u.fault->reason, "WRONG_PARAM");
	mss_msg_free(m);
	mss_buf_free(&b);

	/* VersionMismatch carries the Upgrade header (SOAP 1.2 §5.4.7) */
	mss_err_soap(&err, MSS_E_VERSION_MISMATCH, "Unsupported SOAP envelope");
	mss_fault_from_err(&err, &f);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode_fault(&f, MSS_SOAP_12, &b), 0);
	assert_non_null(strstr(mss_buf_str(&b), "<soapenv:Upgrade>"));
	assert_non_null(strstr(mss_buf_str(&b), "soapenv:VersionMismatch"));
	mss_buf_free(&b);

	/* a 207 roaming code carries the TS 102 207 namespace */
	mss_err_set(&err, 780, 0, "Peer down");
	mss_fault_from_err(&err, &f);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode_fault(&f, MSS_SOAP_12, &b), 0);
	assert_non_null(strstr(mss_buf_str(&b), "xmlns:msrs=\"http://uri.etsi.org/TS102207/v1.1.2#\""));
	assert_non_null(strstr(mss_buf_str(&b), "soapenv:Receiver"));
	mss_buf_free(&b);
}

/* Raw XML fields keep a signed element byte-for-byte and refuse injected
 * markup coming from JSON (J-08). */
static void
test_raw_xml_fields(void **state)
{
	static const char good[] = "{\"MSS_SignatureReq\":{\"MessagingMode\":\"synch\",\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"Data\":\"x\"},\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#personIdentity\",\"AttributeQuery\":\"<samlp:AttributeQuery xmlns:samlp=\\\"urn:oasis:names:tc:SAML:2.0:protocol\\\" ID=\\\"1bad\\\" Version=\\\"2.0\\\"/>\"}]}}";
	static const char evil[] = "{\"MSS_SignatureReq\":{\"MessagingMode\":\"synch\",\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"Data\":\"x\"},\"AdditionalServices\":[{\"Description\":\"http://mss.ficom.fi/TS102204/v1.0.0#personIdentity\",\"AttributeQuery\":\"<samlp:AttributeQuery xmlns:samlp=\\\"urn:oasis:names:tc:SAML:2.0:protocol\\\"/></mss:Service><mss:Service>\"}]}}";
	struct mss_err err;
	struct mss_msg *m, *m2;
	struct mss_buf b;
	(void)state;

	m = mss_json_decode(good, strlen(good), 0, &err);
	assert_non_null(m);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
	m2 = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m2);
	assert_true(mss_msg_equal(m, m2));
	mss_buf_free(&b);
	mss_msg_free(m);
	mss_msg_free(m2);
	assert_null(mss_json_decode(evil, strlen(evil), 0, &err));
	assert_int_equal(err.code, 101);
}

/* The notification of the server-server mode travels as MSS_Notification. */
static void
test_notification_wrapper(void **state)
{
	static const char json[] = "{\"MSS_StatusResp\":{\"MajorVersion\":\"1\",\"MinorVersion\":\"1\",\"MSSP_TransID\":\"T9\",\"AP_Info\":{\"AP_ID\":\"http://demo.ap/\",\"AP_PWD\":\"\",\"AP_TransID\":\"A1\",\"Instant\":\"2026-01-01T00:00:00Z\"},\"MSSP_Info\":{\"MSSP_ID\":{\"URI\":\"http://mssp/\"}},\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"Status\":{\"StatusCode\":{\"Value\":\"500\"},\"StatusMessage\":\"SIGNATURE\"}}}";
	struct mss_err err;
	struct mss_msg *m, *m2;
	struct mss_buf b;
	(void)state;

	m = mss_json_decode(json, strlen(json), 0, &err);
	assert_non_null(m);
	m->op = MSS_OP_NOTIFICATION;
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
	assert_non_null(strstr(mss_buf_str(&b), "<MSS_Notification>"));
	m2 = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	assert_non_null(m2);
	assert_int_equal(m2->op, MSS_OP_NOTIFICATION);
	assert_int_equal(m2->type, MSS_STATUS_RESP);
	/* a server taking AP requests does not take notifications */
	assert_null(mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), MSS_SOAP_REQUESTS_ONLY, &err));
	mss_buf_free(&b);
	mss_msg_free(m);
	mss_msg_free(m2);
}

/* Review findings: attribute floods are refused before libxml2's
 * quadratic duplicate check; namespace errors are errors; choice groups
 * may come in any order; a failed encode leaves the caller's buffer as it
 * was. */
static void
test_review_findings(void **state)
{
	static const char ns_error[] = ENV12 "<soapenv:Body xmlns:zz=\"\"/></soapenv:Envelope>";
	static const char dup_after_ns[] = ENV12 "<soapenv:Body><x:a xmlns:x=\"urn:a\" xmlns:a=\"urn:q\" xmlns:b=\"urn:q\" a:k=\"1\" b:k=\"2\"/></soapenv:Body></soapenv:Envelope>";
	static const char rest_reg[] = "{\"MSS_RegistrationReq\":{\"UseCase\":{\"Name\":\"x\"}}}";
	struct mss_err err;
	struct mss_buf b;
	struct mss_msg *m;
	int i;
	(void)state;

	mss_buf_init(&b, 1 << 20);
	mss_buf_adds(&b, ENV12 "<soapenv:Body><x ");
	for (i = 0; i < 5000; i++)
		mss_buf_addf(&b, "a%d=\"1\" ", i);
	mss_buf_adds(&b, "/></soapenv:Body></soapenv:Envelope>");
	assert_null(mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err));
	assert_int_equal(err.code, 101);
	assert_string_equal(err.detail, "Too many attributes");
	mss_buf_free(&b);

	assert_null(decode_str(ns_error, 0, &err));
	assert_int_equal(err.code, 101);
	assert_null(decode_str(dup_after_ns, 0, &err));
	assert_int_equal(err.code, 101);

	m = mss_json_decode(rest_reg, strlen(rest_reg), 0, &err);
	assert_non_null(m);
	mss_buf_init(&b, 65536);
	mss_buf_adds(&b, "kept");
	assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), -1);
	assert_string_equal(mss_buf_str(&b), "kept");
	mss_buf_free(&b);
	mss_msg_free(m);
}

/* ServiceResponse in the ficom.xsd order; StatusDetail children and the
 * FiCom payloads are XSD choices: any order. */
static void
test_choice_groups(void **state)
{
	static const char resp[] = ENV12 "<soapenv:Body><MSS_StatusQueryResponse><mss:MSS_StatusResp " MSSNS " xmlns:fi=\"http://mss.ficom.fi/TS102204/v1.0.0#\" xmlns:sc=\"http://mid.swisscom.ch/TS102204/as/v1.0\" MajorVersion=\"1\" MinorVersion=\"1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser/><mss:Status><mss:StatusCode Value=\"500\"/><mss:StatusDetail><fi:ServiceResponses><fi:ServiceResponse><fi:Description><mss:mssURI>http://mid.swisscom.ch/as#subscriberInfo</mss:mssURI></fi:Description><sc:SubscriberInfo><sc:Detail id=\"1900\" value=\"22801\"/></sc:SubscriberInfo><sc:GeoFencing country=\"CH\"/></fi:ServiceResponse></fi:ServiceResponses></mss:StatusDetail></mss:Status></mss:MSS_StatusResp></MSS_StatusQueryResponse></soapenv:Body></soapenv:Envelope>";
	static const char req[] = ENV12 "<soapenv:Body><MSS_ProfileQuery><mss:MSS_ProfileReq " MSSNS " MajorVersion=\"1\" MinorVersion=\"1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"A1\" Instant=\"2026-01-01T00:00:00Z\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+35847000001</mss:MSISDN></mss:MobileUser><mss:GetCertificates>true</mss:GetCertificates><mss:GetAutoActivation>false</mss:GetAutoActivation></mss:MSS_ProfileReq></MSS_ProfileQuery></soapenv:Body></soapenv:Envelope>";
	struct mss_err err;
	struct mss_msg *m;
	(void)state;

	m = decode_str(resp, 0, &err);
	if (m == NULL)
		fail_msg("%s", err.detail);
	mss_msg_free(m);
	m = decode_str(req, 0, &err);
	if (m == NULL)
		fail_msg("%s", err.detail);
	assert_string_equal(m->u.profile_req->get_certificates, "true");
	mss_msg_free(m);
}

/* Deep nesting stops at our depth cap, without recursion trouble. */
static void
test_deep_nesting(void **state)
{
	struct mss_err err;
	struct mss_buf b;
	int i;
	(void)state;

	mss_buf_init(&b, 1 << 20);
	mss_buf_adds(&b, ENV12 "<soapenv:Body><MSS_StatusQuery>");
	for (i = 0; i < 5000; i++)
		mss_buf_adds(&b, "<a>");
	assert_null(mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err));
	assert_int_equal(err.code, 101);
	mss_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_round_trip),
		cmocka_unit_test(test_samples_expected_values),
		cmocka_unit_test(test_client_forms),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_simple_field_content),
		cmocka_unit_test(test_duplicates_and_order),
		cmocka_unit_test(test_encode_response_shape),
		cmocka_unit_test(test_escaping_round_trip),
		cmocka_unit_test(test_fault_encode_decode),
		cmocka_unit_test(test_raw_xml_fields),
		cmocka_unit_test(test_notification_wrapper),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_review_findings),
		cmocka_unit_test(test_choice_groups),
	};

	mss_soap_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
