/* test_soap.c - the SOAP codec: samples, client forms, hardening, faults. */
#include "testutil.h"

#include <jansson.h>

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"
#include "util/limits.h"

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

/* ---- TS 102 207 RoamingHeader (MSS_SOAP_ROAMING) ----------------------- */

#define RNS "xmlns:r=\"http://uri.etsi.org/TS102207/v1.1.2#\""
#define R_ENT(ver, si, snd, id) \
	"<r:RoamingHeaderEntry " ver "><r:RE_SenderInfo " si "><r:RE_Sender " snd ">" id \
	"</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"
#define R_VER "MajorVersion=\"1\" MinorVersion=\"1\""
#define R_SI  "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T0a1b\" TimeOut=\"115\""
#define R_SND "Mesh_Role=\"AE\""
#define R_ID  "<mss:MSSP_ID><mss:URI>http://mssp-a.example/</mss:URI></mss:MSSP_ID>"
#define R_ENTRY R_ENT(R_VER, R_SI, R_SND, R_ID)
#define R_COMMON "<r:CommonHeader><r:HomeMSSP><mss:MSSP_ID><mss:URI>http://mssp-b.example/</mss:URI></mss:MSSP_ID></r:HomeMSSP></r:CommonHeader>"
#define R_HDR(attrs, inner) \
	"<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"true\"" attrs ">" inner "</r:RoamingHeader>"
#define R_ROLE_NEXT " soapenv:role=\"http://www.w3.org/2003/05/soap-envelope/role/next\""

/* An MSS_StatusQuery request whose soapenv:Header holds `hdr`. */
static char *
roam_doc(const char *env, const char *hdr)
{
	struct mss_buf b;
	char *s;

	mss_buf_init(&b, 1 << 20);
	mss_buf_adds(&b, env);
	mss_buf_adds(&b, "<soapenv:Header>");
	mss_buf_adds(&b, hdr);
	mss_buf_adds(&b, "</soapenv:Header><soapenv:Body><MSS_StatusQuery>" STATUS_REQ_BODY("mss:", MSSNS)
			 "</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>");
	s = strdup(mss_buf_str(&b));
	mss_buf_free(&b);
	assert_non_null(s);
	return s;
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static bool
roam_equal(const struct mss_roam_hdr *a, const struct mss_roam_hdr *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->n != b->n || !str_same(a->home_mssp, b->home_mssp))
		return false;
	for (i = 0; i < a->n; i++) {
		const struct mss_roam_entry *x = &a->entry[i], *y = &b->entry[i];

		if (x->major != y->major || x->minor != y->minor || x->timeout_s != y->timeout_s ||
		    x->role != y->role || !str_same(x->instant, y->instant) ||
		    !str_same(x->re_trans_id, y->re_trans_id) || !str_same(x->sender_id, y->sender_id))
			return false;
	}
	return true;
}

/* A header of `n` hops (AE, then transits) in m's arena; `home` optional. */
static void
roam_fill(struct mss_msg *m, size_t n, const char *home)
{
	struct mss_roam_hdr *h = mss_msg_alloc(m, sizeof(*h));
	size_t i;
	char s[96];

	assert_non_null(h);
	for (i = 0; i < n; i++) {
		struct mss_roam_entry *e = &h->entry[i];

		e->major = 1;
		e->minor = 1;
		snprintf(s, sizeof(s), "2026-11-23T10:00:%02zu.5+02:00", i);
		e->instant = mss_msg_strdup(m, s);
		snprintf(s, sizeof(s), "T%zu<&\"'>x", i); /* escaping in attributes */
		e->re_trans_id = mss_msg_strdup(m, s);
		e->timeout_s = i == 1 ? 0 : (unsigned)(120 - 5 * i);
		snprintf(s, sizeof(s), "http://mssp-%zu.example/?a=1&b=2", i); /* escaped */
		e->sender_id = mss_msg_strdup(m, s);
		e->role = i == 0 ? MSS_MESH_ROLE_AE : i + 1 == n && n > 2 ? MSS_MESH_ROLE_HOME
									: MSS_MESH_ROLE_TRANSIT;
	}
	h->n = n;
	h->home_mssp = home ? mss_msg_strdup(m, home) : NULL;
	m->roam = h;
}

/* The exact wire form of docs/internals/mesh.md is read field by field,
 * in SOAP 1.2 and (env:actor, mustUnderstand="1") SOAP 1.1. */
static void
test_roam_wire_form(void **state)
{
	static const char *const hdrs[] = {
		R_HDR(R_ROLE_NEXT, R_ENTRY R_COMMON),
		R_HDR(" soapenv:role=\"http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver\"",
		      "\n  <!-- one entry per hop -->\n  " R_ENTRY "\n  " R_COMMON "\n"),
	};
	static const char hdr11[] =
		"<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"1\" soapenv:actor=\"http://schemas.xmlsoap.org/soap/actor/next\">" R_ENTRY "</r:RoamingHeader>";
	struct mss_err err;
	struct mss_msg *m;
	char *doc;
	size_t i;
	(void)state;

	for (i = 0; i < 3; i++) {
		doc = i < 2 ? roam_doc(ENV12, hdrs[i]) : roam_doc(ENV11, hdr11);
		m = decode_str(doc, MSS_SOAP_ROAMING | MSS_SOAP_REQUESTS_ONLY, &err);
		if (m == NULL)
			fail_msg("form %zu: %d %s", i, err.code, err.detail);
		assert_int_equal(m->soap, i < 2 ? MSS_SOAP_12 : MSS_SOAP_11);
		assert_non_null(m->roam);
		assert_int_equal(m->roam->n, 1);
		assert_int_equal(m->roam->entry[0].major, 1);
		assert_int_equal(m->roam->entry[0].minor, 1);
		assert_string_equal(m->roam->entry[0].instant, "2026-11-23T10:00:00Z");
		assert_string_equal(m->roam->entry[0].re_trans_id, "T0a1b");
		assert_int_equal(m->roam->entry[0].timeout_s, 115);
		assert_int_equal(m->roam->entry[0].role, MSS_MESH_ROLE_AE);
		assert_string_equal(m->roam->entry[0].sender_id, "http://mssp-a.example/");
		if (i < 2)
			assert_string_equal(m->roam->home_mssp, "http://mssp-b.example/");
		else
			assert_null(m->roam->home_mssp);
		assert_string_equal(m->u.status_req->mssp_trans_id, "T1");
		mss_msg_free(m);
		free(doc);
	}

	/* absent header, or no Header at all: roam stays NULL, no error */
	doc = roam_doc(ENV12, "");
	m = decode_str(doc, MSS_SOAP_ROAMING, &err);
	assert_non_null(m);
	assert_null(m->roam);
	mss_msg_free(m);
	free(doc);

	/* mustUnderstand="false" or absent: still understood, still decoded;
	 * other roles and TimeOut limits */
	{
		static const char *const ok[] = {
			"<r:RoamingHeader " RNS " " MSSNS ">" R_ENTRY "</r:RoamingHeader>",
			"<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"false\">" R_ENTRY "</r:RoamingHeader>",
			R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T\" TimeOut=\"600\"", "Mesh_Role=\"TransitMSSP\"", R_ID)),
			R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00+02:00\" RE_TransactionID=\"T234567890123456789012345678901234567890123456789012345678901234\"", "Mesh_Role=\"HomeMSSP\"", R_ID)),
			R_HDR("", R_ENT("MajorVersion=\" 2 \" MinorVersion=\"0\"", R_SI, R_SND, R_ID)),
		};

		for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			doc = roam_doc(ENV12, ok[i]);
			m = decode_str(doc, MSS_SOAP_ROAMING, &err);
			if (m == NULL)
				fail_msg("ok %zu: %d %s", i, err.code, err.detail);
			assert_non_null(m->roam);
			mss_msg_free(m);
			free(doc);
		}
		doc = roam_doc(ENV12, ok[2]);
		m = decode_str(doc, MSS_SOAP_ROAMING, &err);
		assert_int_equal(m->roam->entry[0].timeout_s, 600);
		assert_int_equal(m->roam->entry[0].role, MSS_MESH_ROLE_TRANSIT);
		mss_msg_free(m);
		free(doc);
		doc = roam_doc(ENV12, ok[3]);
		m = decode_str(doc, MSS_SOAP_ROAMING, &err);
		assert_int_equal(m->roam->entry[0].timeout_s, 0);
		assert_int_equal(m->roam->entry[0].role, MSS_MESH_ROLE_HOME);
		assert_int_equal(strlen(m->roam->entry[0].re_trans_id), MSSP_MSG_MAX_TRANSID);
		mss_msg_free(m);
		free(doc);
	}
}

/* Without MSS_SOAP_ROAMING nothing changed: a RoamingHeader with
 * mustUnderstand is a MustUnderstand fault, without it is ignored.  With
 * the flag, other blocks keep today's rules. */
static void
test_roam_flag_off(void **state)
{
	struct mss_err err;
	struct mss_msg *m;
	char *doc;
	(void)state;

	doc = roam_doc(ENV12, R_HDR(R_ROLE_NEXT, R_ENTRY R_COMMON));
	assert_null(decode_str(doc, 0, &err));
	assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
	assert_null(decode_str(doc, MSS_SOAP_REQUESTS_ONLY, &err));
	assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
	free(doc);

	doc = roam_doc(ENV12, "<r:RoamingHeader " RNS " " MSSNS ">" R_ENTRY "</r:RoamingHeader>");
	m = decode_str(doc, 0, &err);
	assert_non_null(m);
	assert_null(m->roam); /* ignored, never read */
	mss_msg_free(m);
	free(doc);

	/* SOAP 1.1 too */
	doc = roam_doc(ENV11, "<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"1\">" R_ENTRY "</r:RoamingHeader>");
	assert_null(decode_str(doc, 0, &err));
	assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
	free(doc);

	/* with the flag: another mustUnderstand block is still a fault ... */
	doc = roam_doc(ENV12, R_HDR("", R_ENTRY) "<w:Security xmlns:w=\"urn:wsse\" soapenv:mustUnderstand=\"true\"/>");
	assert_null(decode_str(doc, MSS_SOAP_ROAMING, &err));
	assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
	free(doc);
	/* ... as is a RoamingHeader of another TS 102 207 version */
	doc = roam_doc(ENV12, "<r:RoamingHeader xmlns:r=\"http://uri.etsi.org/TS102207/v1.1.1#\" soapenv:mustUnderstand=\"true\"/>");
	assert_null(decode_str(doc, MSS_SOAP_ROAMING, &err));
	assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
	free(doc);
	/* ... and one without mustUnderstand is ignored */
	doc = roam_doc(ENV12, "<w:Other xmlns:w=\"urn:x\"><w:y/></w:Other>" R_HDR("", R_ENTRY));
	m = decode_str(doc, MSS_SOAP_ROAMING, &err);
	assert_non_null(m);
	assert_non_null(m->roam);
	mss_msg_free(m);
	free(doc);
}

struct roam_bad {
	const char *hdr;
	int code;
};

/* Every malformed header is 101; the hop cap is 780. */
static void
test_roam_refusals(void **state)
{
	static const struct roam_bad cases[] = {
		/* versions */
		{ R_HDR("", R_ENT("MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"x\" MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"-1\" MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"+1\" MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"1\" MinorVersion=\"\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"1001\" MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT("MajorVersion=\"99999999999999999999\" MinorVersion=\"1\"", R_SI, R_SND, R_ID)), 101 },
		/* unknown attributes, qualified or not */
		{ R_HDR("", R_ENT(R_VER " Extra=\"1\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER " xml:lang=\"en\"", R_SI, R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI " r:Hop=\"1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND " Id=\"x\"", R_ID)), 101 },
		{ R_HDR(" Id=\"x\"", R_ENTRY), 101 },
		{ R_HDR(" soapenv:encodingStyle=\"x\"", R_ENTRY), 101 },
		{ R_HDR(" soapenv:actor=\"http://schemas.xmlsoap.org/soap/actor/next\"", R_ENTRY), 101 },
		{ R_HDR(" soapenv:role=\"http://www.w3.org/2003/05/soap-envelope/role/none\"", R_ENTRY), 101 },
		{ R_HDR(" soapenv:role=\"urn:other\"", R_ENTRY), 101 },
		{ "<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"yes\">" R_ENTRY "</r:RoamingHeader>", 101 },
		/* RE_SenderInfo */
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "/>"), 101 },
		{ R_HDR("", R_ENT(R_VER, "RE_TransactionID=\"T1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"yesterday\" RE_TransactionID=\"T1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00\" RE_TransactionID=\"T1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-02-30T10:00:00Z\" RE_TransactionID=\"T1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T 1\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T\xc3\xa9\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T2345678901234567890123456789012345678901234567890123456789012345\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T1\" TimeOut=\"0\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T1\" TimeOut=\"601\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T1\" TimeOut=\"1.5\"", R_SND, R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, "Instant=\"2026-11-23T10:00:00Z\" RE_TransactionID=\"T1\" TimeOut=\"\"", R_SND, R_ID)), 101 },
		/* RE_Sender */
		{ R_HDR("", R_ENT(R_VER, R_SI, "Mesh_Role=\"AP\"", R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, "Mesh_Role=\"ae\"", R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, "", R_ID)), 101 },
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "><r:RE_SenderInfo " R_SI "/></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID/>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:URI></mss:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:URI>a b</mss:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:DNSName>a.example</mss:DNSName></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><r:URI>http://a/</r:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<r:MSSP_ID><mss:URI>http://a/</mss:URI></r:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:URI>http://a/<x/></mss:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:URI>http://a/<!-- c --></mss:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID><mss:URI>http://a/</mss:URI><mss:URI>http://b/</mss:URI></mss:MSSP_ID>")), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, R_ID R_ID)), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID Id=\"1\"><mss:URI>http://a/</mss:URI></mss:MSSP_ID>")), 101 },
		/* duplicates, order, text */
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "><r:RE_SenderInfo " R_SI "><r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender></r:RE_SenderInfo><r:RE_SenderInfo " R_SI "><r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "><r:RE_SenderInfo " R_SI "><r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender><r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", R_ENTRY R_COMMON R_COMMON), 101 },
		{ R_HDR("", R_ENTRY R_COMMON R_ENTRY), 101 },
		{ R_HDR("", R_COMMON), 101 },
		{ R_HDR("", ""), 101 },
		{ R_HDR("", "  \n "), 101 },
		{ R_HDR("", R_ENTRY "<r:Extra/>"), 101 },
		{ R_HDR("", "<mss:RoamingHeaderEntry " R_VER "/>"), 101 },
		{ R_HDR("", "<RoamingHeaderEntry " R_VER "/>"), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, R_ID) "hop"), 101 },
		{ R_HDR("", "<![CDATA[x]]>" R_ENTRY), 101 },
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER ">x<r:RE_SenderInfo " R_SI "><r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "><r:RE_SenderInfo " R_SI ">x<r:RE_Sender " R_SND ">" R_ID "</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", "<r:RoamingHeaderEntry " R_VER "><r:RE_SenderInfo " R_SI "><r:RE_Sender " R_SND ">" R_ID "x</r:RE_Sender></r:RE_SenderInfo></r:RoamingHeaderEntry>"), 101 },
		{ R_HDR("", R_ENT(R_VER, R_SI, R_SND, "<mss:MSSP_ID>x<mss:URI>http://a/</mss:URI></mss:MSSP_ID>")), 101 },
		/* CommonHeader */
		{ R_HDR("", R_ENTRY "<r:CommonHeader/>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader><r:HomeMSSP/></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader><r:HomeMSSP>" R_ID R_ID "</r:HomeMSSP></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader><r:HomeMSSP>" R_ID "</r:HomeMSSP><r:HomeMSSP>" R_ID "</r:HomeMSSP></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader><r:HomeMSSP>" R_ID "</r:HomeMSSP><r:IdentityIssuer/></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader x=\"1\"><r:HomeMSSP>" R_ID "</r:HomeMSSP></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<r:CommonHeader><r:HomeMSSP x=\"1\">" R_ID "</r:HomeMSSP></r:CommonHeader>"), 101 },
		{ R_HDR("", R_ENTRY "<mss:CommonHeader><r:HomeMSSP>" R_ID "</r:HomeMSSP></mss:CommonHeader>"), 101 },
		/* two blocks */
		{ R_HDR("", R_ENTRY) R_HDR("", R_ENTRY), 101 },
		{ R_HDR("", R_ENTRY) "<r:RoamingHeader " RNS "/>", 101 },
	};
	struct mss_err err;
	struct mss_fault f;
	struct mss_buf b;
	size_t i, k;
	char *doc;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		doc = roam_doc(ENV12, cases[i].hdr);
		if (decode_str(doc, MSS_SOAP_ROAMING | MSS_SOAP_REQUESTS_ONLY, &err) != NULL)
			fail_msg("case %zu accepted", i);
		if (err.kind != MSS_E_STATUS || err.code != cases[i].code)
			fail_msg("case %zu: kind %d code %d (%s), want %d", i, err.kind, err.code,
				 err.detail, cases[i].code);
		free(doc);
	}

	/* SOAP 1.1: env:role does not exist there; another actor is refused */
	doc = roam_doc(ENV11, R_HDR(R_ROLE_NEXT, R_ENTRY));
	assert_null(decode_str(doc, MSS_SOAP_ROAMING, &err));
	assert_int_equal(err.code, 101);
	free(doc);
	doc = roam_doc(ENV11, R_HDR(" soapenv:actor=\"urn:someone\"", R_ENTRY));
	assert_null(decode_str(doc, MSS_SOAP_ROAMING, &err));
	assert_int_equal(err.code, 101);
	free(doc);

	/* MSSP_MESH_MAX_HOPS entries pass, one more is 780 in the TS 102 207
	 * namespace, with and without a CommonHeader */
	for (k = MSSP_MESH_MAX_HOPS; k <= MSSP_MESH_MAX_HOPS + 1; k++) {
		struct mss_msg *m;

		mss_buf_init(&b, 1 << 20);
		mss_buf_adds(&b, "<r:RoamingHeader " RNS " " MSSNS " soapenv:mustUnderstand=\"true\">");
		for (i = 0; i < k; i++)
			mss_buf_adds(&b, R_ENTRY);
		mss_buf_adds(&b, R_COMMON "</r:RoamingHeader>");
		doc = roam_doc(ENV12, mss_buf_str(&b));
		m = decode_str(doc, MSS_SOAP_ROAMING, &err);
		if (k == MSSP_MESH_MAX_HOPS) {
			assert_non_null(m);
			assert_int_equal(m->roam->n, MSSP_MESH_MAX_HOPS);
			mss_msg_free(m);
		} else {
			assert_null(m);
			assert_int_equal(err.kind, MSS_E_STATUS);
			assert_int_equal(err.code, 780);
			mss_fault_from_err(&err, &f);
			assert_int_equal(f.code, 780);
			assert_string_equal(f.subcode_ns, MSS_NS_ROAM);
			assert_string_equal(f.reason, "UNABLE_TO_PROVIDE_SERVICES");
			/* the hop count is what is refused: also when an extra
			 * entry is itself malformed */
			free(doc);
			mss_buf_free(&b);
			mss_buf_init(&b, 1 << 20);
			mss_buf_adds(&b, "<r:RoamingHeader " RNS " " MSSNS ">");
			for (i = 0; i < k - 1; i++)
				mss_buf_adds(&b, R_ENTRY);
			mss_buf_adds(&b, "<r:RoamingHeaderEntry/></r:RoamingHeader>");
			doc = roam_doc(ENV12, mss_buf_str(&b));
			assert_null(decode_str(doc, MSS_SOAP_ROAMING, &err));
			assert_int_equal(err.code, 780);
		}
		free(doc);
		mss_buf_free(&b);
	}
}

/* Files of the message corpus: requests of every mesh operation and the
 * answers a mesh peer sends back (read on the client side, without
 * MSS_SOAP_REQUESTS_ONLY). */
static const char *const roam_files[] = {
	"tests/data/corpus/clients/laverca/sign-async.soap.xml",
	"tests/data/corpus/clients/laverca/sign-soap11.soap.xml",
	"tests/data/corpus/clients/laverca/status-query.soap.xml",
	"tests/data/corpus/clients/laverca/receipt.soap.xml",
	"tests/data/corpus/clients/laverca/profile-query.soap.xml",
	"tests/data/corpus/clients/platform/signature-500.soap.xml",
	"tests/data/corpus/clients/platform/signature-async-100.soap.xml",
	"tests/data/corpus/clients/platform/status-502.soap.xml",
	"tests/data/corpus/clients/platform/status-504.soap.xml",
	"tests/data/corpus/clients/platform/profile-100.soap.xml",
	"tests/data/corpus/clients/platform/receipt-100.soap.xml",
};

/* decode(encode(m)) keeps the header: 1 and MSSP_MESH_MAX_HOPS entries,
 * with and without CommonHeader, SOAP 1.1 and 1.2, requests, responses
 * and the notification; the form is the one of mesh.md. */
static void
test_roam_round_trip(void **state)
{
	static const size_t hops[] = { 1, 2, MSSP_MESH_MAX_HOPS };
	size_t fi, hi, len;
	int home, vi;
	(void)state;

	for (fi = 0; fi < sizeof(roam_files) / sizeof(roam_files[0]); fi++) {
		char *xml = tu_slurp(roam_files[fi], &len);
		struct mss_err err;
		struct mss_msg *m = mss_soap_decode(xml, len, MSS_SOAP_ROAMING, &err);
		bool request;

		if (m == NULL)
			fail_msg("%s: %d %s", roam_files[fi], err.code, err.detail);
		assert_null(m->roam);
		request = mss_msg_info(m->type)->is_request;
		for (vi = 0; vi < 3; vi++) {
			enum mss_soap_version v = vi == 0 ? MSS_SOAP_12 : vi == 1 ? MSS_SOAP_11 : MSS_SOAP_NONE;

			for (hi = 0; hi < sizeof(hops) / sizeof(hops[0]); hi++) {
				for (home = 0; home < 2; home++) {
					struct mss_buf b;
					struct mss_msg *m2;
					const char *s;

					roam_fill(m, hops[hi], home ? "http://mssp-b.example/" : NULL);
					mss_buf_init(&b, 1 << 20);
					if (mss_soap_encode(m, v, &b, &err) != 0)
						fail_msg("%s: encode %d %s", roam_files[fi], err.code, err.detail);
					s = mss_buf_str(&b);
					assert_non_null(strstr(s, "<soapenv:Header>\n<msrs:RoamingHeader xmlns:msrs=\"http://uri.etsi.org/TS102207/v1.1.2#\""));
					assert_non_null(strstr(s, v == MSS_SOAP_11
						? " soapenv:mustUnderstand=\"1\" soapenv:actor=\"http://schemas.xmlsoap.org/soap/actor/next\">"
						: " soapenv:mustUnderstand=\"true\" soapenv:role=\"http://www.w3.org/2003/05/soap-envelope/role/next\">"));
					assert_true(strstr(s, "</soapenv:Header>\n<soapenv:Body>") != NULL);
					assert_int_equal(strstr(s, "<msrs:CommonHeader>") != NULL, home);
					m2 = mss_soap_decode(s, mss_buf_len(&b),
							     MSS_SOAP_ROAMING | (request ? MSS_SOAP_REQUESTS_ONLY : 0), &err);
					if (m2 == NULL)
						fail_msg("%s: %d %s\n%s", roam_files[fi], err.code, err.detail, s);
					assert_int_equal(m2->soap, v == MSS_SOAP_11 ? MSS_SOAP_11 : MSS_SOAP_12);
					assert_int_equal(m2->op, m->op);
					assert_true(mss_msg_equal(m, m2));
					assert_true(roam_equal(m->roam, m2->roam));
					mss_msg_free(m2);
					/* the same bytes at a node without the flag */
					assert_null(mss_soap_decode(s, mss_buf_len(&b), 0, &err));
					assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
					mss_buf_free(&b);
				}
			}
		}
		/* a StatusResp travelling back as the notification */
		if (m->type == MSS_STATUS_RESP) {
			struct mss_buf b;
			struct mss_msg *m2;

			m->op = MSS_OP_NOTIFICATION;
			roam_fill(m, 2, "http://mssp-b.example/");
			mss_buf_init(&b, 1 << 20);
			assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
			assert_non_null(strstr(mss_buf_str(&b), "<MSS_Notification>"));
			m2 = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), MSS_SOAP_ROAMING, &err);
			assert_non_null(m2);
			assert_int_equal(m2->op, MSS_OP_NOTIFICATION);
			assert_true(mss_msg_equal(m, m2));
			assert_true(roam_equal(m->roam, m2->roam));
			mss_msg_free(m2);
			mss_buf_free(&b);
		}
		/* n == 0 means no header */
		m->roam->n = 0;
		{
			struct mss_buf b;

			mss_buf_init(&b, 1 << 20);
			assert_int_equal(mss_soap_encode(m, MSS_SOAP_12, &b, &err), 0);
			assert_null(strstr(mss_buf_str(&b), "RoamingHeader"));
			assert_null(strstr(mss_buf_str(&b), "soapenv:Header"));
			mss_buf_free(&b);
		}
		mss_msg_free(m);
		free(xml);
	}
}

/* The encoder refuses a header the decoder would refuse (so nothing we
 * send is a 101 at the peer), and leaves the caller's buffer untouched;
 * faults are written without a header (struct mss_fault has no message). */
static void
test_roam_encode_checks(void **state)
{
	struct mss_err err;
	struct mss_buf b;
	struct mss_msg *m, *f;
	char *doc = roam_doc(ENV12, "");
	int i;
	(void)state;

	m = decode_str(doc, 0, &err);
	assert_non_null(m);
	for (i = 0; i < 10; i++) {
		roam_fill(m, 2, "http://mssp-b.example/");
		switch (i) {
		case 0: m->roam->entry[1].instant = "2026-11-23T10:00:00"; break; /* no zone */
		case 1: m->roam->entry[1].re_trans_id = "T 1"; break;
		case 2: m->roam->entry[1].re_trans_id = NULL; break;
		case 3: m->roam->entry[1].timeout_s = MSSP_MSG_MAX_TIMEOUT_S + 1; break;
		case 4: m->roam->entry[1].sender_id = ""; break;
		case 5: m->roam->entry[1].role = MSS_MESH_ROLE_NONE; break;
		case 6: m->roam->entry[1].major = MSSP_MSG_MAX_VERSION + 1; break;
		case 7: m->roam->home_mssp = "a b"; break;
		case 8: m->roam->n = MSSP_MESH_MAX_HOPS + 1; break;
		case 9: m->roam->entry[0].instant = NULL; break;
		}
		mss_buf_init(&b, 65536);
		mss_buf_adds(&b, "kept");
		if (mss_soap_encode(m, MSS_SOAP_12, &b, &err) != -1)
			fail_msg("case %d encoded", i);
		assert_int_equal(err.code, MSS_INTERNAL_ERROR);
		assert_string_equal(mss_buf_str(&b), "kept");
		mss_buf_free(&b);
	}
	mss_msg_free(m);
	free(doc);

	/* a fault message: no header on the wire */
	f = mss_msg_new(MSS_FAULT);
	assert_non_null(f);
	f->u.fault->code_value = "Receiver";
	f->u.fault->subcode_value = "_780";
	f->u.fault->subcode_ns = MSS_NS_ROAM;
	roam_fill(f, 1, NULL);
	mss_buf_init(&b, 65536);
	assert_int_equal(mss_soap_encode(f, MSS_SOAP_12, &b, &err), 0);
	assert_null(strstr(mss_buf_str(&b), "RoamingHeader"));
	assert_non_null(strstr(mss_buf_str(&b), "msrs:_780"));
	mss_msg_free(f);
	/* and a peer's fault that carries one is read (header kept) */
	{
		const char *s = mss_buf_str(&b);
		const char *body = strstr(s, "<soapenv:Body>");
		struct mss_buf d;
		struct mss_msg *g;

		mss_buf_init(&d, 65536);
		mss_buf_add(&d, s, (size_t)(body - s));
		mss_buf_adds(&d, "<soapenv:Header>" R_HDR("", R_ENTRY) "</soapenv:Header>");
		mss_buf_adds(&d, body);
		g = mss_soap_decode(mss_buf_str(&d), mss_buf_len(&d), MSS_SOAP_ROAMING, &err);
		if (g == NULL)
			fail_msg("%d %s", err.code, err.detail);
		assert_int_equal(g->type, MSS_FAULT);
		assert_non_null(g->roam);
		assert_string_equal(g->u.fault->subcode_value, "_780");
		mss_msg_free(g);
		assert_null(mss_soap_decode(mss_buf_str(&d), mss_buf_len(&d), 0, &err));
		assert_int_equal(err.kind, MSS_E_MUST_UNDERSTAND);
		mss_buf_free(&d);
	}
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
		cmocka_unit_test(test_roam_wire_form),
		cmocka_unit_test(test_roam_flag_off),
		cmocka_unit_test(test_roam_refusals),
		cmocka_unit_test(test_roam_round_trip),
		cmocka_unit_test(test_roam_encode_checks),
	};

	mss_soap_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
