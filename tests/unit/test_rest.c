/* test_rest.c - the AE's REST gateway: paths, defaults, HTTP credentials
 * (Basic, HMAC API key), the failure throttle, the answers' shape against
 * the Kiuru samples, and the OpenAPI document (roles/rest.h). */
#include "testutil.h"

#include <ctype.h>
#include <pthread.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <time.h>

#include "mss/json.h"
#include "mss/lex.h"
#include "mss/validate.h"
#include "roles/conf.h"
#include "roles/rest.h"
#include "util/buf.h"
#include "util/limits.h"

#define PW "correct horse battery staple 42"
#define KEY "0123456789abcdef0123456789abcdef-api-key"
#define AP1 "http://ap.one/"
#define AP2 "http://ap.two/"

/* ---- helpers ------------------------------------------------------------- */

static struct conf_aps *
make_aps(void)
{
	char hash[REST_PW_HASH_HEX + 1];
	assert_int_equal(rest_password_hash(PW, hash), 0);
	json_t *arr = json_pack(
		"[{s:s, s:[s], s:[s]}, {s:s, s:[], s:[s], s:s, s:s, s:s}, {s:s, s:[], s:[s], s:s}]",
		"id", "http://cert.only/", "cert_sha256",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "profiles", "*",
		"id", AP1, "cert_sha256", "profiles", "*", "rest_user", "ap-one",
		"rest_password_hash", hash, "api_key", KEY, "id", AP2, "cert_sha256", "profiles",
		"*", "api_key", KEY "-two");
	assert_non_null(arr);
	char err[CONF_ERR_MAX];
	struct conf_aps *t = conf_aps_from_json(arr, err, sizeof err);
	if (!t)
		fail_msg("AP table refused: %s", err);
	json_decref(arr);
	return t;
}

static char auth[1024];

static const char *
basic(const char *user, const char *pw)
{
	char cred[512], b64[800];
	snprintf(cred, sizeof cred, "%s:%s", user, pw);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)cred, (int)strlen(cred));
	snprintf(auth, sizeof auth, "Basic %s", b64);
	return auth;
}

static void
http_date(time_t t, char out[64])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The Authorization of the API-key scheme as laverca-rest builds it. */
static const char *
apikey(const char *ap_id, const char *key, const char *date, const char *body)
{
	char mac[65], id64[256];
	assert_int_equal(rest_apikey_mac(key, date, "POST", "127.0.0.1:9443", "/rest/service",
					 (const uint8_t *)body, strlen(body), mac),
			 0);
	EVP_EncodeBlock((unsigned char *)id64, (const unsigned char *)ap_id, (int)strlen(ap_id));
	return basic(id64, mac);
}

static struct rest_req
rq_of(const char *authz, const char *date, const char *body, const char *ip)
{
	struct rest_req r = {.method = "POST",
			     .host = "127.0.0.1:9443",
			     .path = "/rest/service",
			     .authorization = authz,
			     .date = date,
			     .body = (const uint8_t *)body,
			     .body_len = strlen(body),
			     .peer_ip = ip};
	return r;
}

#define ALL (CONF_REST_CERT | CONF_REST_BASIC | CONF_REST_APIKEY)

/* ---- paths ------------------------------------------------------------- */

static void
test_paths(void **state)
{
	(void)state;
	assert_int_equal(rest_path_of("/rest/service"), REST_PATH_ANY);
	assert_int_equal(rest_path_of("/rest/service/sign"), REST_PATH_SIGN);
	assert_int_equal(rest_path_of("/rest/service/status"), REST_PATH_STATUS);
	assert_int_equal(rest_path_of("/rest/service/receipt"), REST_PATH_RECEIPT);
	assert_int_equal(rest_path_of("/rest/service/profile"), REST_PATH_PROFILE);
	assert_int_equal(rest_path_of("/rest/openapi.json"), REST_PATH_OPENAPI);
	assert_int_equal(rest_path_of("/rest/service/"), REST_PATH_UNKNOWN);
	assert_int_equal(rest_path_of("/rest/service/signx"), REST_PATH_UNKNOWN);
	assert_int_equal(rest_path_of("/rest/service?x=1"), REST_PATH_UNKNOWN);
	assert_int_equal(rest_path_of("/soap/services/MSS_SignaturePort"), REST_PATH_NONE);
	assert_int_equal(rest_path_of("/restservice"), REST_PATH_NONE);

	struct mss_err e;
	memset(&e, 0, sizeof e);
	assert_int_equal(rest_path_check(REST_PATH_ANY, MSS_PROFILE_REQ, &e), 0);
	assert_int_equal(rest_path_check(REST_PATH_SIGN, MSS_SIGNATURE_REQ, &e), 0);
	assert_int_equal(rest_path_check(REST_PATH_PROFILE, MSS_PROFILE_REQ, &e), 0);
	assert_int_equal(rest_path_check(REST_PATH_SIGN, MSS_STATUS_REQ, &e), -1);
	assert_int_equal(e.code, 101);
	assert_int_equal(rest_path_check(REST_PATH_STATUS, MSS_SIGNATURE_REQ, &e), -1);
	assert_int_equal(e.code, 101);
	assert_int_equal(rest_path_check(REST_PATH_RECEIPT, MSS_PROFILE_REQ, &e), -1);
	assert_int_equal(e.code, 101);
}

/* ---- defaults ---------------------------------------------------------------- */

/* laverca-rest's minimal sign request (clients.md §3) */
#define LAVERCA                                                                              \
	"{\"MSS_SignatureReq\":{\"SignatureProfile\":\"mss:demo:sign:loa3:app\","           \
	"\"MobileUser\":{\"MSISDN\":\"+35847000001\"},\"DataToBeSigned\":{\"Encoding\":"    \
	"\"UTF-8\",\"Data\":\"hello\"},\"AdditionalServices\":[],\"MSS_Format\":"           \
	"\"http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature\",\"AP_Info\":{\"AP_TransID\":" \
	"\"A1\"}%s}}"

static struct mss_msg *
decode_fill(const char *json, struct mss_err *e)
{
	struct mss_msg *m = mss_json_decode(json, strlen(json), MSS_JSON_REQUESTS_ONLY, e);
	if (!m)
		return NULL;
	if (rest_fill_defaults(m, AP1, "http://mssp.test/", e) != 0 || mss_validate(m, e) != 0) {
		mss_msg_free(m);
		return NULL;
	}
	return m;
}

static void
test_defaults(void **state)
{
	(void)state;
	char body[2048];
	struct mss_err e;
	snprintf(body, sizeof body, LAVERCA, "");
	struct mss_msg *m = decode_fill(body, &e);
	if (!m)
		fail_msg("minimal request refused: %d %s", e.code, e.detail);
	const struct mss_signature_req *r = m->u.sig_req;
	assert_string_equal(r->c.major_version, "1");
	assert_string_equal(r->c.minor_version, "1");
	assert_string_equal(r->c.ap_info->ap_id, AP1);
	assert_string_equal(r->c.ap_info->ap_trans_id, "A1");
	assert_non_null(r->c.ap_info->instant);
	long long t;
	bool tz;
	assert_int_equal(mss_lex_datetime(r->c.ap_info->instant, &t, &tz), 0);
	assert_true(tz);
	assert_true(llabs((long long)time(NULL) - t) <= 2);
	assert_string_equal(r->c.mssp_info->mssp_id->uri, "http://mssp.test/");
	assert_string_equal(r->messaging_mode, "synch");
	assert_string_equal(r->dtbs->mime_type, "text/plain");
	mss_msg_free(m);

	/* Kiuru-ra's "AP_Info":{} in a profile query */
	m = decode_fill("{\"MSS_ProfileReq\":{\"AP_Info\":{},\"MobileUser\":{\"MSISDN\":"
			"\"+35847000001\"}}}",
			&e);
	if (!m)
		fail_msg("profile query refused: %d %s", e.code, e.detail);
	assert_string_equal(m->u.profile_req->c.ap_info->ap_id, AP1);
	mss_msg_free(m);

	/* present values are kept, also when they differ from the defaults */
	snprintf(body, sizeof body, LAVERCA,
		 ",\"MessagingMode\":\"asynchClientServer\",\"MajorVersion\":\"1\","
		 "\"MinorVersion\":\"2\",\"MSSP_Info\":{\"MSSP_ID\":{\"URI\":\"http://x/\"}}");
	/* AP_Info is given twice above otherwise: rebuild with AP_ID */
	m = decode_fill(body, &e);
	if (!m)
		fail_msg("full request refused: %d %s", e.code, e.detail);
	assert_string_equal(m->u.sig_req->messaging_mode, "asynchClientServer");
	assert_string_equal(m->u.sig_req->c.minor_version, "2");
	assert_string_equal(m->u.sig_req->c.mssp_info->mssp_id->uri, "http://x/");
	mss_msg_free(m);

	/* a present but wrong value is still refused by the one validation */
	static const struct {
		const char *extra;
		int code;
	} bad[] = {
		{",\"MajorVersion\":\"3\",\"MinorVersion\":\"0\"", 108},
		{",\"MajorVersion\":\"1\"", 108}, /* one of the two: incomplete */
		{",\"MessagingMode\":\"sometimes\"", 101},
		{",\"MessagingMode\":\"\"", 101},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(body, sizeof body, LAVERCA, bad[i].extra);
		m = decode_fill(body, &e);
		if (m)
			fail_msg("accepted: %s", bad[i].extra);
		if (e.code != bad[i].code)
			fail_msg("%s: want %d, got %d (%s)", bad[i].extra, bad[i].code, e.code,
				 e.detail);
	}
	/* a missing MSISDN is not defaulted */
	m = decode_fill("{\"MSS_SignatureReq\":{\"DataToBeSigned\":{\"Data\":\"x\"}}}", &e);
	assert_null(m);
	assert_int_equal(e.code, 102);
}

/* ---- credentials ------------------------------------------------------------ */

static void
test_basic(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	int64_t now = time(NULL);
	struct rest_req q = rq_of(basic("ap-one", PW), NULL, "{}", "10.0.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	assert_string_equal(ap->ca_id, AP1);
	/* only with basic enabled */
	assert_int_equal(rest_authenticate(r, t, CONF_REST_CERT, &q, now, 300, &ap, NULL), REST_AUTH_NONE);
	assert_null(ap);
	assert_int_equal(rest_authenticate(r, t, CONF_REST_APIKEY, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	/* wrong password, wrong user, the AP_ID instead of rest_user, an AP
	 * without a password, garbage */
	static const char *const bad[][2] = {
		{"ap-one", PW "x"}, {"ap-one", "correct horse battery staple 4"}, {"ap-two", PW},
		{AP1, PW}, {"http", "//ap.one/:" PW}, {"ap-one", ""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		q = rq_of(basic(bad[i][0], bad[i][1]), NULL, "{}", "10.0.0.2");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
		assert_null(ap);
	}
	static const char *const junk[] = {"Basic", "Basic !!!!", "Basic YWJj", "Bearer abc",
					   "Basic YTpi\n", ""};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		q = rq_of(junk[i], NULL, "{}", "10.0.0.3");
		enum rest_auth_result res = rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL);
		assert_true(res == REST_AUTH_BAD || res == REST_AUTH_NONE);
		assert_null(ap);
	}
	/* no header at all */
	q = rq_of(NULL, NULL, "{}", "10.0.0.3");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_NONE);
	rest_free(r);
	conf_aps_put(t);
}

static void
test_apikey(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	time_t now = time(NULL);
	char date[64], stale[64], future[64];
	http_date(now, date);
	http_date(now - 301, stale);
	http_date(now + 400, future);
	const char *body = "{\"MSS_ProfileReq\":{}}";

	struct rest_req q = rq_of(apikey(AP1, KEY, date, body), date, body, "10.1.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	assert_string_equal(ap->ca_id, AP1);
	q = rq_of(apikey(AP2, KEY "-two", date, body), date, body, "10.1.0.1");
	assert_int_equal(rest_authenticate(r, t, CONF_REST_APIKEY, &q, now, 300, &ap, NULL),
			 REST_AUTH_OK);
	assert_string_equal(ap->ca_id, AP2);
	/* an upper-case hex MAC is the same MAC */
	{
		char mac[65], id64[64], cred[200], b64[300], h[400];
		assert_int_equal(rest_apikey_mac(KEY, date, "POST", "127.0.0.1:9443", "/rest/service",
						 (const uint8_t *)body, strlen(body), mac),
				 0);
		for (char *p = mac; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		EVP_EncodeBlock((unsigned char *)id64, (const unsigned char *)AP1, (int)strlen(AP1));
		snprintf(cred, sizeof cred, "%s:%s", id64, mac);
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)cred, (int)strlen(cred));
		snprintf(h, sizeof h, "Basic %s", b64);
		q = rq_of(h, date, body, "10.1.0.1");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	}
	/* not enabled: never accepted */
	q = rq_of(apikey(AP1, KEY, date, body), date, body, "10.1.0.1");
	enum rest_auth_result res = rest_authenticate(r, t, CONF_REST_BASIC, &q, now, 300, &ap, NULL);
	assert_int_equal(res, REST_AUTH_BAD);
	/* wrong key, another AP's key, stale and future Date, tampered body,
	 * another path, another host, no Date */
	struct rest_req bad[8];
	static char a[8][1024]; /* apikey() reuses one buffer */
#define KEEP(i, x) (snprintf(a[i], sizeof a[i], "%s", (x)), a[i])
	bad[0] = rq_of(KEEP(0, apikey(AP1, KEY "x", date, body)), date, body, "10.1.0.2");
	bad[1] = rq_of(KEEP(1, apikey(AP1, KEY "-two", date, body)), date, body, "10.1.0.2");
	bad[2] = rq_of(KEEP(2, apikey(AP1, KEY, stale, body)), stale, body, "10.1.0.2");
	bad[3] = rq_of(KEEP(3, apikey(AP1, KEY, future, body)), future, body, "10.1.0.2");
	bad[4] = rq_of(KEEP(4, apikey(AP1, KEY, date, body)), date, "{\"MSS_ProfileReq\":{ }}",
		       "10.1.0.2");
	bad[5] = rq_of(KEEP(5, apikey(AP1, KEY, date, body)), date, body, "10.1.0.2");
	bad[5].path = "/rest/service/profile";
	bad[6] = rq_of(KEEP(6, apikey(AP1, KEY, date, body)), date, body, "10.1.0.2");
	bad[6].host = "evil:9443";
	bad[7] = rq_of(KEEP(7, apikey(AP1, KEY, date, body)), "Someday", body, "10.1.0.2");
#undef KEEP
	for (size_t i = 0; i < 8; i++) {
		res = rest_authenticate(r, t, ALL, &bad[i], now, 300, &ap, NULL);
		if (res != REST_AUTH_BAD)
			fail_msg("case %zu: %d", i, res);
		assert_null(ap);
	}
	/* a large [ae] instant_skew_s does not widen the Date window */
	http_date(now - MSSP_REST_DATE_SKEW_S - 60, stale);
	q = rq_of(apikey(AP1, KEY, stale, body), stale, body, "10.1.0.3");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 86400, &ap, NULL), REST_AUTH_BAD);
	http_date(now - MSSP_REST_DATE_SKEW_S + 60, stale);
	q = rq_of(apikey(AP1, KEY, stale, body), stale, body, "10.1.0.3");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 86400, &ap, NULL), REST_AUTH_OK);
	rest_free(r);
	conf_aps_put(t);
}

static void
test_throttle(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	int64_t now = time(NULL);
	unsigned retry = 0;
	struct rest_req q;
	/* per (user name, address) */
	for (int i = 0; i < MSSP_REST_FAIL_PER_AP_ADDR; i++) {
		q = rq_of(basic("ap-one", "wrong password 123"), NULL, "{}", "10.2.0.1");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	/* now even the right password is not even checked, and the answer
	 * says how long the window still runs */
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.2.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, &retry),
			 REST_AUTH_THROTTLED);
	assert_null(ap);
	assert_int_equal(retry, MSSP_REST_FAIL_WINDOW_MS / 1000);
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now + 25, 300, &ap, &retry),
			 REST_AUTH_THROTTLED);
	assert_int_equal(retry, MSSP_REST_FAIL_WINDOW_MS / 1000 - 25);
	/* forged failures from one address do not lock the AP out elsewhere */
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.2.0.2");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	/* the window passes */
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.2.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now + MSSP_REST_FAIL_WINDOW_MS / 1000 + 1,
					   300, &ap, NULL),
			 REST_AUTH_OK);

	/* per user name, from many addresses: the much larger limit */
	for (int i = 0; i < MSSP_REST_FAIL_PER_USER; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "10.4.%d.1", i / MSSP_REST_FAIL_PER_AP_ADDR);
		q = rq_of(basic("ap-one", "wrong password 123"), NULL, "{}", ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.5.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	/* an unknown user name is counted alike (no tell) */
	for (int i = 0; i < MSSP_REST_FAIL_PER_USER; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "10.6.%d.1", i / MSSP_REST_FAIL_PER_AP_ADDR);
		q = rq_of(basic("nobody", "wrong password 123"), NULL, "{}", ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("nobody", "wrong password 123"), NULL, "{}", "10.5.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);

	/* per address: many user names from one address */
	for (int i = 0; i < MSSP_REST_FAIL_PER_ADDR; i++) {
		char u[32];
		snprintf(u, sizeof u, "guess%d", i);
		q = rq_of(basic(u, "whatever password"), NULL, "{}", "10.3.0.1");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-two", PW), NULL, "{}", "10.3.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	/* another address is not concerned (once ap-one's total, above, is
	 * over: its window started at the late attempt above) */
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.3.0.2");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now + 3 * MSSP_REST_FAIL_WINDOW_MS / 1000,
					   300, &ap, NULL),
			 REST_AUTH_OK);
	rest_free(r);
	conf_aps_put(t);
}

/* Forged API-key failures under an AP_ID (public) from many addresses do
 * not lock the AP's key out: the key is not counted per AP. */
static void
test_throttle_apikey(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	time_t now = time(NULL);
	char date[64];
	http_date(now, date);
	const char *body = "{}";
	for (int i = 0; i < 5 * MSSP_REST_FAIL_PER_AP_ADDR * 5; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "10.9.%d.1", i / MSSP_REST_FAIL_PER_AP_ADDR);
		struct rest_req q = rq_of(apikey(AP1, "not the key at all, but long enough", date,
						 body),
					  date, body, ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	struct rest_req q = rq_of(apikey(AP1, KEY, date, body), date, body, "10.9.200.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	/* from one of the guessing addresses: throttled per (AP, address) */
	q = rq_of(apikey(AP1, KEY, date, body), date, body, "10.9.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	rest_free(r);
	conf_aps_put(t);
}

/* A full table: new keys still get counters (the least recently used go),
 * and an existing AP's total survives a flood of other keys. */
static void
test_throttle_full(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	int64_t now = time(NULL);
	struct rest_req q;
	char ip[32];
	/* ap-one's total at its limit */
	for (int i = 0; i < MSSP_REST_FAIL_PER_USER; i++) {
		snprintf(ip, sizeof ip, "10.10.%d.1", i / MSSP_REST_FAIL_PER_AP_ADDR);
		q = rq_of(basic("ap-one", "wrong password 123"), NULL, "{}", ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	/* fill the table from many addresses */
	for (int i = 0; i < MSSP_REST_FAIL_MAX_ENTRIES + 16; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.2", 20 + i / 256, i % 256);
		q = rq_of("Basic !!!!", NULL, "{}", ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	/* guesses are still counted: the right password after the limit is
	 * throttled */
	for (int i = 0; i < MSSP_REST_FAIL_PER_AP_ADDR; i++) {
		q = rq_of(basic("ap-two-user", "wrong password 123"), NULL, "{}", "192.0.2.1");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-two-user", PW), NULL, "{}", "192.0.2.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	for (int i = 0; i < MSSP_REST_FAIL_PER_ADDR; i++) {
		char u[32];
		snprintf(u, sizeof u, "guess%d", i);
		q = rq_of(basic(u, "whatever password"), NULL, "{}", "192.0.2.2");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-one", PW), NULL, "{}", "192.0.2.2");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	/* ap-one's total was not evicted by the flood */
	q = rq_of(basic("ap-one", PW), NULL, "{}", "192.0.2.3");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	rest_free(r);
	conf_aps_put(t);
}

/* IPv6 clients are counted per /64, IPv4-mapped ones as IPv4. */
static void
test_throttle_addr(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	const struct conf_ap *ap;
	int64_t now = time(NULL);
	struct rest_req q;
	for (int i = 0; i < MSSP_REST_FAIL_PER_ADDR; i++) {
		char ip[64], u[32];
		snprintf(ip, sizeof ip, "2001:db8:1:2::%x", i + 1);
		snprintf(u, sizeof u, "guess%d", i);
		q = rq_of(basic(u, "whatever password"), NULL, "{}", ip);
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-one", PW), NULL, "{}", "2001:db8:1:2:ffff:ffff:ffff:ffff");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	q = rq_of(basic("ap-one", PW), NULL, "{}", "2001:db8:1:3::1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_OK);
	for (int i = 0; i < MSSP_REST_FAIL_PER_ADDR; i++) {
		char u[32];
		snprintf(u, sizeof u, "guess%d", i);
		q = rq_of(basic(u, "whatever password"), NULL, "{}",
			  i % 2 ? "::ffff:10.7.0.1" : "10.7.0.1");
		assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL), REST_AUTH_BAD);
	}
	q = rq_of(basic("ap-one", PW), NULL, "{}", "10.7.0.1");
	assert_int_equal(rest_authenticate(r, t, ALL, &q, now, 300, &ap, NULL),
			 REST_AUTH_THROTTLED);
	rest_free(r);
	conf_aps_put(t);
}

/* Parallel attempts: one check-and-count, so no more failures are
 * verified than the limit allows. */
struct par {
	struct rest *p_r;
	struct conf_aps *p_t;
	int64_t p_now;
	int p_id, p_bad, p_throttled, p_ok;
	bool p_valid;		/* the right password each time */
};

static void *
par_run(void *arg)
{
	struct par *p = arg;
	for (int i = 0; i < 10; i++) {
		char cred[64], b64[128], h[160];
		const struct conf_ap *ap;
		if (p->p_valid)
			snprintf(cred, sizeof cred, "ap-one:%s", PW);
		else
			snprintf(cred, sizeof cred, "user-%d-%d:whatever password", p->p_id, i);
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)cred, (int)strlen(cred));
		snprintf(h, sizeof h, "Basic %s", b64);
		struct rest_req q = rq_of(h, NULL, "{}", "10.8.0.1");
		enum rest_auth_result res = rest_authenticate(p->p_r, p->p_t, ALL, &q, p->p_now, 300,
							      &ap, NULL);
		p->p_bad += res == REST_AUTH_BAD;
		p->p_throttled += res == REST_AUTH_THROTTLED;
		p->p_ok += res == REST_AUTH_OK;
	}
	return NULL;
}

static void
test_throttle_parallel(void **state)
{
	(void)state;
	struct conf_aps *t = make_aps();
	struct rest *r = rest_new(NULL);
	struct par p[8];
	pthread_t th[8];
	/* valid requests in parallel (an AP's load): never refused */
	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){r, t, time(NULL), i, 0, 0, 0, true};
		assert_int_equal(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].p_ok, 10);
	}
	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){r, t, time(NULL), i, 0, 0, 0, false};
		assert_int_equal(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
	}
	int bad = 0, thr = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += p[i].p_bad;
		thr += p[i].p_throttled;
	}
	assert_int_equal(bad, MSSP_REST_FAIL_PER_ADDR);
	assert_int_equal(thr, 80 - MSSP_REST_FAIL_PER_ADDR);
	rest_free(r);
	conf_aps_put(t);
}

/* The refusal log: the first of a window, then 10, 100 ... */
static void
test_log_refusal(void **state)
{
	(void)state;
	struct rest *r = rest_new(NULL);
	int64_t now = (int64_t)time(NULL) * 1000;
	unsigned c = 0, logged = 0;
	for (unsigned i = 1; i <= 150; i++) {
		bool l = rest_log_refusal(r, "2001:db8::1", now, &c);
		assert_int_equal(c, i);
		assert_int_equal(l, i == 1 || i == 10 || i == 100);
		logged += l;
	}
	assert_int_equal(logged, 3);
	/* the same /64 */
	assert_false(rest_log_refusal(r, "2001:db8::2", now, &c));
	assert_int_equal(c, 151);
	/* another address; the next window */
	assert_true(rest_log_refusal(r, "10.0.0.1", now, &c));
	assert_true(rest_log_refusal(r, "2001:db8::1", now + MSSP_REST_FAIL_WINDOW_MS, &c));
	assert_int_equal(c, 1);
	rest_free(r);
}

static void
test_http_date(void **state)
{
	(void)state;
	int64_t t;
	assert_int_equal(rest_parse_http_date("Mon, 23 Nov 2026 10:00:00 GMT", &t), 0);
	assert_int_equal(t, 1795428000);
	assert_int_equal(rest_parse_http_date("Mon, 23 Nov 2026 12:00:00 +0200", &t), 0);
	assert_int_equal(t, 1795428000);
	assert_int_equal(rest_parse_http_date("23 Nov 2026 05:00:00 -0500", &t), 0);
	assert_int_equal(t, 1795428000);
	static const char *const bad[] = {"", "2026-11-23T10:00:00Z", "Mon, 23 Nov 2026 10:00 GMT",
					  "Mon, 23 Nov 2026 10:00:00 CET",
					  "Mon, 23 Nov 2026 10:00:00 +02", "tomorrow"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(rest_parse_http_date(bad[i], &t), -1);
	assert_int_equal(rest_parse_http_date(NULL, &t), -1);
}

static void
test_password_hash(void **state)
{
	(void)state;
	char a[REST_PW_HASH_HEX + 1], b[REST_PW_HASH_HEX + 1];
	assert_int_equal(rest_password_hash(PW, a), 0);
	assert_int_equal(rest_password_hash(PW, b), 0);
	assert_int_equal(strlen(a), REST_PW_HASH_HEX);
	assert_int_equal(a[2 * MSSP_REST_SALT_LEN], ':');
	/* salted: the same password gives two different records */
	assert_string_not_equal(a, b);
	assert_null(strstr(a, PW));

	unsigned v;
	assert_int_equal(conf_rest_auth_parse(NULL, &v), 0);
	assert_int_equal(v, CONF_REST_CERT);
	assert_int_equal(conf_rest_auth_parse("cert basic apikey", &v), 0);
	assert_int_equal(v, ALL);
	assert_int_equal(conf_rest_auth_parse("basic", &v), 0);
	assert_int_equal(v, CONF_REST_BASIC);
	assert_int_equal(conf_rest_auth_parse("cert oauth", &v), -1);
	assert_int_equal(conf_rest_auth_parse("", &v), -1);

	/* an AP record's REST fields: bad forms refused */
	static const char *const bad[] = {
		"[{\"id\":\"a\",\"cert_sha256\":[],\"profiles\":[\"*\"]}]", /* nothing to log in with */
		"[{\"id\":\"a\",\"cert_sha256\":[],\"rest_password_hash\":\"00:11\"}]",
		"[{\"id\":\"a\",\"cert_sha256\":[],\"api_key\":\"short\"}]",
		"[{\"id\":\"a\",\"cert_sha256\":[],\"api_key\":7}]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i], 0, NULL);
		char err[CONF_ERR_MAX];
		assert_non_null(j);
		struct conf_aps *tt = conf_aps_from_json(j, err, sizeof err);
		if (tt)
			fail_msg("accepted: %s", bad[i]);
		json_decref(j);
	}
}

/* ---- answers: the samples' exact compact form ----------------------------------- */

static const char *const samples[] = {
	"etsi/samples/rest/rest-response-async-signature.json",
	"etsi/samples/rest/rest-response-profile-query.json",
	"etsi/samples/rest/rest-response-signature.json",
	"etsi/samples/rest/rest-response-status-outstanding.json",
	"etsi/samples/rest/rest-response-status-signature.json",
};

static void
test_answer_shape(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		size_t len;
		char *text = tu_slurp_shared(samples[i], &len);
		struct mss_err e;
		struct mss_msg *m = mss_json_decode(text, len, 0, &e);
		if (!m)
			fail_msg("%s: %s", samples[i], e.detail);
		struct mss_buf b;
		mss_buf_init(&b, 1 << 20);
		assert_int_equal(mss_json_encode(m, &b, &e), 0);
		json_t *j = json_loads(text, 0, NULL);
		char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		if (strcmp(want, mss_buf_str(&b)) != 0)
			fail_msg("%s: not byte for byte\nwant %s\ngot  %s", samples[i], want,
				 mss_buf_str(&b));
		free(want);
		json_decref(j);
		mss_buf_free(&b);
		mss_msg_free(m);
		free(text);
	}
	/* the fault: Code/SubCode/Reason/Detail as the user-cancel sample */
	size_t len;
	char *text = tu_slurp_shared("etsi/samples/rest/rest-response-fault-user-cancel.json", &len);
	struct mss_err e;
	struct mss_fault fl;
	mss_err_set(&e, 401, 0, "User cancelled the request");
	mss_fault_from_err(&e, &fl);
	struct mss_buf b;
	mss_buf_init(&b, 1 << 16);
	assert_int_equal(mss_json_encode_fault(&fl, &b), 0);
	json_t *j = json_loads(text, 0, NULL);
	char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (strcmp(want, mss_buf_str(&b)) != 0)
		fail_msg("fault: want %s\ngot  %s", want, mss_buf_str(&b));
	assert_int_equal(fl.http_status, 500);
	free(want);
	json_decref(j);
	mss_buf_free(&b);
	free(text);
}

/* ---- the OpenAPI document ---------------------------------------------------- */

/* Every "$ref" resolves inside the document. */
static void
refs_resolve(json_t *root, json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;
	assert_true(depth < 64);
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) refs_resolve(root, v, depth + 1);
		return;
	}
	if (!json_is_object(j))
		return;
	json_t *ref = json_object_get(j, "$ref");
	if (ref) {
		const char *p = json_string_value(ref);
		assert_non_null(p);
		assert_true(strncmp(p, "#/", 2) == 0);
		char buf[256];
		snprintf(buf, sizeof buf, "%s", p + 2);
		json_t *cur = root;
		char *save = NULL;
		for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save))
			cur = json_object_get(cur, t);
		if (!cur)
			fail_msg("unresolved $ref %s", p);
	}
	json_object_foreach(j, k, v) refs_resolve(root, v, depth + 1);
}

/* An OpenAPI 3.0.3 schema object's "type" is one of the JSON Schema
 * subset's names. */
static void
types_valid(json_t *j, int depth)
{
	static const char *const types[] = {"string", "object", "array", "boolean",
					    "integer", "number"};
	const char *k;
	json_t *v;
	size_t i;
	assert_true(depth < 64);
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) types_valid(v, depth + 1);
		return;
	}
	if (!json_is_object(j))
		return;
	json_t *t = json_object_get(j, "type");
	if (json_is_string(t) && !json_object_get(j, "scheme") && !json_object_get(j, "in")) {
		bool ok = false;
		for (size_t n = 0; n < sizeof types / sizeof types[0]; n++)
			ok |= strcmp(json_string_value(t), types[n]) == 0;
		if (!ok)
			fail_msg("bad type %s", json_string_value(t));
	}
	json_object_foreach(j, k, v) types_valid(v, depth + 1);
}

static void
test_openapi(void **state)
{
	(void)state;
	struct rest *r = rest_new(MSSP_WEB_ROOT "/rest-openapi.json");
	size_t len;
	const char *doc = rest_openapi(r, &len);
	assert_non_null(doc);
	json_error_t je;
	json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		fail_msg("not JSON: line %d: %s", je.line, je.text);
	assert_string_equal(json_string_value(json_object_get(j, "openapi")), "3.0.3");
	json_t *info = json_object_get(j, "info");
	assert_non_null(json_string_value(json_object_get(info, "title")));
	assert_non_null(json_string_value(json_object_get(info, "version")));
	json_t *paths = json_object_get(j, "paths");
	static const char *const post[] = {"/rest/service", "/rest/service/sign",
					   "/rest/service/status", "/rest/service/receipt",
					   "/rest/service/profile"};
	static const char *const req_schema[] = {NULL, "SignatureRequest", "StatusRequest",
						 "ReceiptRequest", "ProfileRequest"};
	for (size_t i = 0; i < sizeof post / sizeof post[0]; i++) {
		json_t *op = json_object_get(json_object_get(paths, post[i]), "post");
		if (!op)
			fail_msg("no POST %s", post[i]);
		/* every path the gateway serves maps to itself */
		assert_int_not_equal(rest_path_of(post[i]), REST_PATH_UNKNOWN);
		json_t *resp = json_object_get(op, "responses");
		static const char *const codes[] = {"200", "401", "429", "500"};
		for (size_t c = 0; c < 4; c++)
			if (!json_object_get(resp, codes[c]))
				fail_msg("%s: no %s answer", post[i], codes[c]);
		json_t *sch = json_object_get(json_object_get(json_object_get(json_object_get(
								      json_object_get(op, "requestBody"), "content"),
								      "application/json"),
							      "schema"),
					      "$ref");
		if (req_schema[i]) {
			char want[128];
			snprintf(want, sizeof want, "#/components/schemas/%s", req_schema[i]);
			assert_string_equal(json_string_value(sch), want);
		}
	}
	assert_non_null(json_object_get(json_object_get(paths, "/rest/openapi.json"), "get"));
	/* the auth schemes */
	json_t *sec = json_object_get(json_object_get(j, "components"), "securitySchemes");
	assert_string_equal(json_string_value(json_object_get(json_object_get(sec, "basicAuth"),
							      "scheme")),
			    "basic");
	assert_non_null(json_object_get(sec, "hmacApiKey"));
	/* no anonymous alternative at the top: REST needs an AP (mutual TLS,
	 * which OpenAPI 3.0 cannot name, or one of the schemes) */
	json_t *top = json_object_get(j, "security"), *alt;
	size_t ti;
	assert_true(json_is_array(top) && json_array_size(top) > 0);
	json_array_foreach(top, ti, alt) {
		assert_true(json_object_size(alt) > 0);
	}
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "info"),
								 "description")),
			       "mutual TLS"));
	/* the defaults are part of the schema */
	json_t *schemas = json_object_get(json_object_get(j, "components"), "schemas");
	json_t *sp = json_object_get(json_object_get(schemas, "SignatureReq"), "properties");
	assert_string_equal(json_string_value(json_object_get(json_object_get(sp, "MessagingMode"),
							      "default")),
			    "synch");
	assert_string_equal(json_string_value(json_object_get(json_object_get(sp, "MajorVersion"),
							      "default")),
			    "1");
	json_t *dp = json_object_get(json_object_get(schemas, "Data"), "properties");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(dp, "MimeType"), "default")),
		"text/plain");
	refs_resolve(j, j, 0);
	types_valid(j, 0);
	json_decref(j);
	rest_free(r);
	/* no document: nothing served, no crash */
	r = rest_new("/nonexistent/rest-openapi.json");
	assert_null(rest_openapi(r, &len));
	assert_int_equal(len, 0);
	rest_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),	      cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_basic),	      cmocka_unit_test(test_apikey),
		cmocka_unit_test(test_throttle),      cmocka_unit_test(test_throttle_apikey),
		cmocka_unit_test(test_throttle_full), cmocka_unit_test(test_throttle_addr),
		cmocka_unit_test(test_throttle_parallel), cmocka_unit_test(test_log_refusal),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_password_hash), cmocka_unit_test(test_answer_shape),
		cmocka_unit_test(test_openapi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
