/*
 * bench_codec.c - throughput of the message layer for a typical
 * MSS_SignatureReq (the Swisscom client's shape), SOAP and JSON, beside a
 * baseline measured in the same run: the bare library parse of the same
 * bytes (libxml2 xmlReadMemory, jansson json_loadb) and freeing it.  Our
 * figure includes that parse plus the schema walk into structs, the
 * validator and freeing; the ratio shows what the checks cost.
 *
 * Usage: bench_codec [SECONDS_PER_FIGURE]   (default 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libxml/parser.h>

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"
#include "net/http.h"
#include "util/limits.h"

static const char soap_req[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\" "
	"xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" xmlns:fi=\"http://mss.ficom.fi/TS102204/v1.0.0#\">"
	"<soapenv:Body><MSS_Signature>"
	"<mss:MSS_SignatureReq MajorVersion=\"1\" MinorVersion=\"1\" MessagingMode=\"synch\" TimeOut=\"80\">"
	"<mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"disregarded\" AP_TransID=\"AP.TEST.12345.6789\" Instant=\"2026-11-22T10:00:00.000+00:00\"/>"
	"<mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp.example/</mss:URI></mss:MSSP_ID></mss:MSSP_Info>"
	"<mss:MobileUser><mss:MSISDN>+35847000001</mss:MSISDN></mss:MobileUser>"
	"<mss:DataToBeSigned MimeType=\"text/plain\" Encoding=\"UTF-8\">Do you want to log in to demo.ap? (ref Q7X2P9)</mss:DataToBeSigned>"
	"<mss:SignatureProfile><mss:mssURI>mss::authn:loa3</mss:mssURI></mss:SignatureProfile>"
	"<mss:AdditionalServices>"
	"<mss:Service><mss:Description><mss:mssURI>http://uri.etsi.org/TS102204/v1.1.2#validate</mss:mssURI></mss:Description></mss:Service>"
	"<mss:Service><mss:Description><mss:mssURI>http://mss.ficom.fi/TS102204/v1.0.0#userLang</mss:mssURI></mss:Description><fi:UserLang>en</fi:UserLang></mss:Service>"
	"</mss:AdditionalServices>"
	"<mss:MSS_Format><mss:mssURI>http://uri.etsi.org/TS102204/v1.1.2#PKCS7</mss:mssURI></mss:MSS_Format>"
	"</mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>";

typedef int (*op_fn)(void);

static char json_req[4096];
static size_t json_len;
static char http_req[8192];
static size_t http_len;
static struct http_parser *hp;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
op_soap(void)
{
	struct mss_err err;
	struct mss_msg *m = mss_soap_decode(soap_req, sizeof(soap_req) - 1, MSS_SOAP_REQUESTS_ONLY, &err);
	int rc = m && mss_validate(m, &err) == 0 ? 0 : -1;

	mss_msg_free(m);
	return rc;
}

static int
op_libxml2(void)
{
	xmlDocPtr d = xmlReadMemory(soap_req, (int)sizeof(soap_req) - 1, NULL, NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	xmlFreeDoc(d);
	return d ? 0 : -1;
}

static int
op_json(void)
{
	struct mss_err err;
	struct mss_msg *m = mss_json_decode(json_req, json_len, MSS_JSON_REQUESTS_ONLY, &err);
	int rc = m && mss_validate(m, &err) == 0 ? 0 : -1;

	mss_msg_free(m);
	return rc;
}

static int
op_jansson(void)
{
	json_t *j = json_loadb(json_req, json_len, JSON_REJECT_DUPLICATES, NULL);

	json_decref(j);
	return j ? 0 : -1;
}

static int
op_soap_encode(void)
{
	static struct mss_msg *m;
	struct mss_err err;
	struct mss_buf b;
	int rc;

	if (m == NULL)
		m = mss_soap_decode(soap_req, sizeof(soap_req) - 1, 0, &err);
	mss_buf_init(&b, 65536);
	rc = mss_soap_encode(m, MSS_SOAP_12, &b, &err);
	mss_buf_free(&b);
	return rc;
}

static int
op_http(void)
{
	size_t used;
	int rc = http_parser_feed(hp, http_req, http_len, &used);

	if (rc != HTTP_DONE)
		return -1;
	return http_parser_next(hp) == 0 ? 0 : -1;
}

static int
op_memcpy(void)
{
	static char dst[8192];

	memcpy(dst, http_req, http_len);
	return dst[0] == 'P' ? 0 : -1;
}

static double
rate(op_fn fn, double seconds)
{
	double start = now(), t;
	long n = 0;

	do {
		for (int i = 0; i < 256; i++) {
			if (fn() != 0) {
				fprintf(stderr, "bench: operation failed\n");
				exit(1);
			}
		}
		n += 256;
		t = now() - start;
	} while (t < seconds);
	return (double)n / t;
}

static void
line(const char *what, double ours, const char *base_name, double base)
{
	printf("%-34s %12.0f msg/s   baseline %-22s %12.0f msg/s   ratio %5.2f\n", what, ours,
	       base_name, base, ours / base);
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct mss_err err;
	struct mss_msg *m;
	struct mss_buf b;

	mss_soap_init();
	m = mss_soap_decode(soap_req, sizeof(soap_req) - 1, 0, &err);
	if (m == NULL) {
		fprintf(stderr, "bench: sample refused: %s\n", err.detail);
		return 1;
	}
	mss_buf_init(&b, sizeof(json_req) - 1);
	if (mss_json_encode(m, &b, &err) != 0)
		return 1;
	json_len = mss_buf_len(&b);
	memcpy(json_req, mss_buf_str(&b), json_len);
	mss_buf_free(&b);
	mss_msg_free(m);
	http_len = (size_t)snprintf(http_req, sizeof(http_req),
				    "POST /soap/services/MSS_SignaturePort HTTP/1.1\r\nHost: localhost:9443\r\n"
				    "Content-Type: text/xml;charset=utf-8\r\nAccept: application/xml\r\n"
				    "User-Agent: curl/7.88.1\r\nContent-Length: %zu\r\n\r\n%s",
				    sizeof(soap_req) - 1, soap_req);
	hp = http_parser_new(MSSP_HTTP_MAX_HEAD, MSSP_HTTP_MAX_BODY);

	printf("message: MSS_SignatureReq, SOAP %zu bytes, JSON %zu bytes; %.1f s per figure\n",
	       sizeof(soap_req) - 1, json_len, secs);
	line("SOAP decode+validate", rate(op_soap, secs), "libxml2 parse+free", rate(op_libxml2, secs));
	line("JSON decode+validate", rate(op_json, secs), "jansson load+free", rate(op_jansson, secs));
	line("SOAP encode", rate(op_soap_encode, secs), "libxml2 parse+free", rate(op_libxml2, secs));
	line("HTTP request parse (1.3 KB)", rate(op_http, secs), "memcpy of the bytes", rate(op_memcpy, secs));
	http_parser_free(hp);
	return 0;
}
