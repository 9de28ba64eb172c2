/*
 * fuzz_rest.c - libFuzzer target for the REST gateway's parsers
 * (src/roles/rest.c): the Authorization header (Basic and the Kiuru HMAC
 * API-key form) through rest_authenticate and its throttle, the Date
 * header (rest_parse_http_date), the path (rest_path_of, rest_path_check)
 * and the defaults of a minimal JSON request (rest_fill_defaults).
 *
 * Input: text lines, the last field taking the rest of the input:
 *   options '\n' method '\n' host '\n' path '\n' authorization '\n' date
 *   '\n' body
 * A missing line is a NULL header (authorization, date) or "" (the
 * others).  Options: 'b' basic, 'k' apikey, 'c' cert (none of the three:
 * all), 'r' repeat the attempt 21 times from one address, '6' an IPv6
 * client.  The clock is fixed at NOW_S (Mon, 23 Nov 2026 10:00:00 GMT), so
 * a seed with a Date near it and a correct HMAC authenticates (the
 * API-key seeds in tests/fuzz/corpus/rest/ carry rest_apikey_mac over
 * their own fields with KEY2).
 *
 * The AP table is built once (conf_aps_from_json, as tests/unit/test_rest.c
 * builds it): AP1 with rest_user + rest_password_hash, AP2 with an api_key,
 * and a certificate-only AP.  Each input gets a fresh struct rest, so the
 * throttle starts empty.  Oracle, abort() when broken:
 *   - REST_AUTH_NONE exactly when no Basic/apikey method is enabled or the
 *     header is absent or not "Basic ..." (case-insensitive);
 *   - OK names AP1 or AP2 (never the certificate-only AP, never NULL), and
 *     is re-derived here: AP1 only with Basic enabled and the credentials
 *     "ap-one:" PW; AP2 only with apikey enabled, a Date within the skew
 *     and the HMAC of KEY2 over the fields; not OK: *ap == NULL;
 *   - the first attempt is never throttled (the table is empty); an
 *     attempt that succeeded succeeds again; a refused one is throttled
 *     by the 21st attempt (MSSP_REST_FAIL_PER_ADDR) with Retry-After in
 *     1..60 s;
 *   - rest_path_of agrees with a table of the documented paths;
 *   - a Date that parses formats and parses back to the same second;
 *   - rest_fill_defaults fills what is absent and changes nothing present.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "mss/json.h"
#include "mss/msg.h"
#include "roles/conf.h"
#include "roles/rest.h"
#include "util/limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PW "correct horse battery staple 42"
#define KEY2 "0123456789abcdef0123456789abcdef-api-key-two"
#define AP1 "http://ap.one/"
#define AP2 "http://ap.two/"
#define AP3 "http://cert.only/"
#define USER1 "ap-one"
#define MSSP_ID "http://mssp.example/"
#define NOW_S INT64_C(1795428000) /* Mon, 23 Nov 2026 10:00:00 GMT */
#define SKEW_S 300U
#define REPS (MSSP_REST_FAIL_PER_ADDR + 1)

static struct conf_aps *aps;
static const struct conf_ap *ap1, *ap2, *ap3;
static volatile size_t sink;
/* FUZZ_REST_TRACE=1: print each input's first result (seed upkeep). */
static bool trace;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char hash[REST_PW_HASH_HEX + 1], err[CONF_ERR_MAX];
	json_t *arr;

	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_REST_TRACE") != NULL;
	if (rest_password_hash(PW, hash) != 0)
		abort();
	arr = json_pack("[{s:s, s:[], s:[s], s:s, s:s}, {s:s, s:[], s:[s], s:s},"
			" {s:s, s:[s], s:[s]}]",
			"id", AP1, "cert_sha256", "profiles", "*", "rest_user", USER1,
			"rest_password_hash", hash, "id", AP2, "cert_sha256", "profiles", "*",
			"api_key", KEY2, "id", AP3, "cert_sha256",
			"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
			"profiles", "*");
	if (arr == NULL || (aps = conf_aps_from_json(arr, err, sizeof err)) == NULL) {
		fprintf(stderr, "fuzz_rest: AP table refused: %s\n", arr ? err : "pack");
		abort();
	}
	json_decref(arr);
	for (size_t i = 0; i < aps->naps; i++) {
		const char *id = aps->aps[i].ca_id;
		if (strcmp(id, AP1) == 0)
			ap1 = &aps->aps[i];
		else if (strcmp(id, AP2) == 0)
			ap2 = &aps->aps[i];
		else if (strcmp(id, AP3) == 0)
			ap3 = &aps->aps[i];
	}
	if (!ap1 || !ap2 || !ap3 || !ap1->ca_has_rest_pw || ap1->ca_api_key || !ap2->ca_api_key ||
	    ap2->ca_has_rest_pw || ap3->ca_api_key || ap3->ca_has_rest_pw)
		abort();
	return 0;
}

/* ---- input ------------------------------------------------------------- */

enum { F_OPT, F_METHOD, F_HOST, F_PATH, F_AUTH, F_DATE, F_BODY, F_N };

struct fields {
	char *f[F_N];		/* heap copies, NUL-terminated; NULL: absent */
	size_t body_len;	/* the body may hold NULs                    */
};

static void
split(const uint8_t *d, size_t n, struct fields *fl)
{
	size_t off = 0;

	memset(fl, 0, sizeof *fl);
	for (int i = 0; i < F_N && off <= n; i++) {
		const uint8_t *nl = i < F_BODY && off < n ? memchr(d + off, '\n', n - off) : NULL;
		size_t len = nl ? (size_t)(nl - (d + off)) : n - off;
		if (i < F_BODY && nl == NULL && off == n)
			break; /* no such line */
		fl->f[i] = malloc(len + 1);
		if (fl->f[i] == NULL)
			abort();
		if (len > 0)
			memcpy(fl->f[i], d + off, len);
		fl->f[i][len] = '\0';
		if (i == F_BODY)
			fl->body_len = len;
		off += len + 1;
		if (nl == NULL)
			break;
	}
}

static void
fields_free(struct fields *fl)
{
	for (int i = 0; i < F_N; i++)
		free(fl->f[i]);
}

/* ---- an independent reading of the credentials -------------------------- */

/* base64 -> text as rest.c reads it (padded, no NUL); -1 otherwise. */
static int
b64(const char *in, size_t inlen, char *out, size_t cap)
{
	int n;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 + 1 > cap)
		return -1;
	n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)inlen);
	if (n < 0)
		return -1;
	if (in[inlen - 1] == '=')
		n--;
	if (inlen > 1 && in[inlen - 2] == '=')
		n--;
	out[n] = '\0';
	return strlen(out) == (size_t)n ? n : -1;
}

/* Which AP these credentials may name: 1 (Basic, AP1's password), 2 (the
 * API key of AP2, correct MAC, Date in the window), or 0. */
static int
expected_ap(const struct fields *fl, unsigned methods)
{
	char dec[MSSP_REST_MAX_AUTH_HEADER], id[MSSP_REST_MAX_AUTH_HEADER], mac[65];
	const char *a = fl->f[F_AUTH], *colon;
	size_t alen;
	int64_t d;

	if (a == NULL || strncasecmp(a, "Basic ", 6) != 0)
		return 0;
	for (a += 6; *a == ' '; a++)
		;
	alen = strlen(a);
	while (alen > 0 && a[alen - 1] == ' ')
		alen--;
	if (alen >= sizeof dec || b64(a, alen, dec, sizeof dec) <= 0 ||
	    (colon = strchr(dec, ':')) == NULL)
		return 0;
	if ((methods & CONF_REST_BASIC) && strcmp(dec, USER1 ":" PW) == 0)
		return 1;
	if (!(methods & CONF_REST_APIKEY) || fl->f[F_DATE] == NULL ||
	    b64(dec, (size_t)(colon - dec), id, sizeof id) <= 0 ||
	    strcmp(id, AP2) != 0 ||
	    rest_parse_http_date(fl->f[F_DATE], &d) != 0 || d < NOW_S - (int64_t)SKEW_S ||
	    d > NOW_S + (int64_t)SKEW_S)
		return 0;
	if (rest_apikey_mac(KEY2, fl->f[F_DATE], fl->f[F_METHOD] ? fl->f[F_METHOD] : "",
			    fl->f[F_HOST] ? fl->f[F_HOST] : "", fl->f[F_PATH] ? fl->f[F_PATH] : "",
			    (const uint8_t *)fl->f[F_BODY], fl->body_len, mac) != 0)
		abort();
	return strlen(colon + 1) == 64 && strncasecmp(colon + 1, mac, 64) == 0 ? 2 : 0;
}

/* ---- authentication -------------------------------------------------------- */

static void
check_auth(const struct fields *fl)
{
	const char *opt = fl->f[F_OPT] ? fl->f[F_OPT] : "";
	unsigned methods = 0;
	bool repeat = strchr(opt, 'r') != NULL;
	struct rest_req rq = {
		.method = fl->f[F_METHOD] ? fl->f[F_METHOD] : "",
		.host = fl->f[F_HOST],
		.path = fl->f[F_PATH] ? fl->f[F_PATH] : "",
		.authorization = fl->f[F_AUTH],
		.date = fl->f[F_DATE],
		.body = (const uint8_t *)fl->f[F_BODY],
		.body_len = fl->body_len,
		.peer_ip = strchr(opt, '6') ? "2001:db8::1" : "192.0.2.7",
	};
	enum rest_auth_result first = REST_AUTH_NONE;
	struct rest *r;
	bool none;
	int want;

	if (strchr(opt, 'b'))
		methods |= CONF_REST_BASIC;
	if (strchr(opt, 'k'))
		methods |= CONF_REST_APIKEY;
	if (strchr(opt, 'c'))
		methods |= CONF_REST_CERT;
	if (methods == 0)
		methods = CONF_REST_CERT | CONF_REST_BASIC | CONF_REST_APIKEY;
	none = !(methods & (CONF_REST_BASIC | CONF_REST_APIKEY)) || rq.authorization == NULL ||
	       strncasecmp(rq.authorization, "Basic ", 6) != 0;
	/* rest.c: the API key's MAC covers "" for a missing Host */
	want = expected_ap(fl, methods);

	if ((r = rest_new(NULL)) == NULL)
		abort();
	for (int i = 0; i < (repeat ? REPS : 1); i++) {
		const struct conf_ap *ap = ap3; /* must be overwritten */
		unsigned retry = 12345;
		enum rest_auth_result res =
			rest_authenticate(r, aps, methods, &rq, NOW_S, SKEW_S, &ap, &retry);

		if (i == 0) {
			first = res;
			if (trace)
				fprintf(stderr, "fuzz_rest: result %d ap %s want %d\n", (int)res,
					ap ? ap->ca_id : "-", want);
		}
		if ((res == REST_AUTH_NONE) != none)
			abort();
		if (res == REST_AUTH_OK) {
			if ((ap != ap1 && ap != ap2) || (ap == ap1 && want != 1) ||
			    (ap == ap2 && want != 2))
				abort();
		} else if (ap != NULL) {
			abort();
		}
		if (res != REST_AUTH_OK && want != 0 && res != REST_AUTH_THROTTLED)
			abort(); /* valid credentials refused */
		if (res == REST_AUTH_THROTTLED) {
			if (i == 0 || retry < 1 || retry > MSSP_REST_FAIL_WINDOW_MS / 1000)
				abort();
		} else if (retry != 0) {
			abort(); /* *retry_after_s is 0 unless throttled */
		}
		/* successes are not counted; failures are, per address */
		if (i > 0 && first == REST_AUTH_OK && res != REST_AUTH_OK)
			abort();
		if (i > 0 && first == REST_AUTH_NONE && res != REST_AUTH_NONE)
			abort();
		if (i == REPS - 1 && first == REST_AUTH_BAD && res != REST_AUTH_THROTTLED)
			abort();
	}
	rest_free(r);
}

/* ---- paths, dates, defaults ------------------------------------------------ */

static void
check_path(const char *path)
{
	static const struct {
		const char *p;
		enum rest_path v;
	} known[] = {
		{"/rest/service", REST_PATH_ANY},	   {"/rest/service/sign", REST_PATH_SIGN},
		{"/rest/service/status", REST_PATH_STATUS}, {"/rest/service/receipt", REST_PATH_RECEIPT},
		{"/rest/service/profile", REST_PATH_PROFILE}, {"/rest/openapi.json", REST_PATH_OPENAPI},
	};
	enum rest_path want = strncmp(path, "/rest/", 6) == 0 ? REST_PATH_UNKNOWN : REST_PATH_NONE;

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(path, known[i].p) == 0)
			want = known[i].v;
	if (rest_path_of(path) != want)
		abort();
}

static void
check_date(const char *s)
{
	int64_t t, t2;
	time_t tt;
	struct tm tm;
	char again[64];

	if (rest_parse_http_date(s, &t) != 0)
		return;
	tt = (time_t)t;
	/* only what our format can write back: years 1..9999 */
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return;
	strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (rest_parse_http_date(again, &t2) != 0 || t2 != t)
		abort();
}

static char *
dup_or_null(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

/* s (after) equals was (before), when was was present. */
static void
kept(const char *was, const char *s)
{
	if (was && (s == NULL || strcmp(was, s) != 0))
		abort();
}

static void
check_defaults(const struct fields *fl)
{
	struct mss_err e;
	struct mss_msg *m;
	struct mss_common *c;
	char *maj, *min, *apid, *inst, *mode = NULL, *mime = NULL;
	enum rest_path p;

	if (fl->f[F_BODY] == NULL || fl->body_len == 0)
		return;
	memset(&e, 0, sizeof e);
	m = mss_json_decode(fl->f[F_BODY], fl->body_len, MSS_JSON_REQUESTS_ONLY, &e);
	if (m == NULL)
		return;
	p = rest_path_of(fl->f[F_PATH] ? fl->f[F_PATH] : "");
	sink += (size_t)rest_path_check(p, m->type, &e);
	if (m->type == MSS_FAULT) {
		mss_msg_free(m);
		return;
	}
	c = m->u.common;
	maj = dup_or_null(c->major_version);
	min = dup_or_null(c->minor_version);
	apid = dup_or_null(c->ap_info ? c->ap_info->ap_id : NULL);
	inst = dup_or_null(c->ap_info ? c->ap_info->instant : NULL);
	if (m->type == MSS_SIGNATURE_REQ) {
		mode = dup_or_null(m->u.sig_req->messaging_mode);
		mime = dup_or_null(m->u.sig_req->dtbs ? m->u.sig_req->dtbs->mime_type : NULL);
	}
	if (rest_fill_defaults(m, AP1, MSSP_ID, &e) != 0)
		abort(); /* only on memory shortage */
	kept(maj, c->major_version);
	kept(min, c->minor_version);
	kept(apid, c->ap_info ? c->ap_info->ap_id : NULL);
	kept(inst, c->ap_info ? c->ap_info->instant : NULL);
	/* both versions absent: 1.1; one alone stays alone */
	if (!maj && !min && (!c->major_version || strcmp(c->major_version, "1") != 0 ||
			     !c->minor_version || strcmp(c->minor_version, "1") != 0))
		abort();
	if ((!maj) != (!min) && (!c->major_version) == (!c->minor_version))
		abort();
	if (!c->ap_info || !c->ap_info->ap_id || !c->ap_info->instant || !c->mssp_info ||
	    !c->mssp_info->mssp_id)
		abort();
	if (!apid && strcmp(c->ap_info->ap_id, AP1) != 0)
		abort();
	{
		const struct mss_mesh_member *mm = c->mssp_info->mssp_id;
		if (!mm->uri && !mm->dns_name && !mm->ip_address && !mm->identifier_string)
			abort();
	}
	if (m->type == MSS_SIGNATURE_REQ) {
		struct mss_signature_req *sr = m->u.sig_req;
		kept(mode, sr->messaging_mode);
		kept(mime, sr->dtbs ? sr->dtbs->mime_type : NULL);
		if (!sr->messaging_mode || (sr->dtbs && !sr->dtbs->mime_type))
			abort();
		if (!mode && strcmp(sr->messaging_mode, "synch") != 0)
			abort();
		if (sr->dtbs && !mime && strcmp(sr->dtbs->mime_type, "text/plain") != 0)
			abort();
	}
	free(maj);
	free(min);
	free(apid);
	free(inst);
	free(mode);
	free(mime);
	mss_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fields fl;

	/* the AE reads at most an HTTP body; headers are bounded earlier */
	if (size > MSSP_HTTP_MAX_BODY)
		return 0;
	split(data, size, &fl);
	check_auth(&fl);
	check_path(fl.f[F_PATH] ? fl.f[F_PATH] : "");
	if (fl.f[F_DATE])
		check_date(fl.f[F_DATE]);
	check_defaults(&fl);
	fields_free(&fl);
	return 0;
}
