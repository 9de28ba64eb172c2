/*
 * test_appmsg.c - the app channel messages: each type round-trips through
 * encode and decode exactly (and the encoded text is compact with sorted
 * keys); every refusal rule of the decoder is exercised on otherwise valid
 * messages, and the encoder refuses what the decoder would.
 */
#include "testutil.h"

#include "mss/appmsg.h"

#define NONCE "n0nce-0123456789_ABCDEF"

static void
fill_sign(struct appmsg *m)
{
	memset(m, 0, sizeof(*m));
	m->am_type = APPMSG_SIGN;
	strcpy(m->am_nonce, NONCE);
	strcpy(m->am_ap_name, "Bank \xc3\x84");
	strcpy(m->am_ap_id, "http://ap.example.org");
	strcpy(m->am_key, "sign-1");
	strcpy(m->am_profile, "http://mss.ficom.fi/TS102204/v1.0.0#signature");
	m->am_pin = true;
	m->am_dtbd = strdup("Pay 10 \xe2\x82\xac?\nOK");
	strcpy(m->am_dtbd_mime, "text/plain");
	m->am_dtbs = malloc(5);
	memcpy(m->am_dtbs, "\x00\x01\xff\x80z", 5);
	m->am_dtbs_len = 5;
	strcpy(m->am_dtbs_mime, "application/octet-stream");
	m->am_deadline_ms = 1767225600123LL;
	strcpy(m->am_lang, "en");
	strcpy(m->am_event, "EV1");
	strcpy(m->am_nospam, "");
}

/* Encode m, decode it into a fresh struct, compare member by member. */
static char *
round_trip(const struct appmsg *m, struct appmsg *d)
{
	struct mss_err err;
	char *txt = NULL;
	size_t len = 0;

	assert_int_equal(appmsg_encode(m, &txt, &len, &err), 0);
	assert_non_null(txt);
	assert_int_equal(strlen(txt), len);
	assert_int_equal(appmsg_decode((const uint8_t *)txt, len, d, &err), 0);
	assert_int_equal(d->am_type, m->am_type);
	assert_string_equal(d->am_nonce, m->am_nonce);
	assert_string_equal(d->am_ap_name, m->am_ap_name);
	assert_string_equal(d->am_ap_id, m->am_ap_id);
	assert_string_equal(d->am_key, m->am_key);
	assert_string_equal(d->am_profile, m->am_profile);
	assert_int_equal(d->am_pin, m->am_pin);
	if (m->am_dtbd)
		assert_string_equal(d->am_dtbd, m->am_dtbd);
	else
		assert_null(d->am_dtbd);
	assert_string_equal(d->am_dtbd_mime, m->am_dtbd_mime);
	assert_int_equal(d->am_dtbs_len, m->am_dtbs_len);
	if (m->am_dtbs_len)
		assert_memory_equal(d->am_dtbs, m->am_dtbs, m->am_dtbs_len);
	assert_string_equal(d->am_dtbs_mime, m->am_dtbs_mime);
	assert_true(d->am_deadline_ms == m->am_deadline_ms);
	assert_string_equal(d->am_lang, m->am_lang);
	assert_string_equal(d->am_event, m->am_event);
	assert_string_equal(d->am_nospam, m->am_nospam);
	assert_int_equal(d->am_status, m->am_status);
	assert_int_equal(d->am_cms_len, m->am_cms_len);
	if (m->am_cms_len)
		assert_memory_equal(d->am_cms, m->am_cms, m->am_cms_len);
	if (m->am_message)
		assert_string_equal(d->am_message, m->am_message);
	else
		assert_null(d->am_message);
	return txt;
}

static void
test_round_trip_sign(void **state)
{
	struct appmsg m, d;
	char *txt;
	(void)state;

	fill_sign(&m);
	txt = round_trip(&m, &d);
	/* Compact, keys sorted, base64 standard with padding. */
	assert_string_equal(
		txt, "{\"ap\":\"Bank \xc3\x84\",\"ap_id\":\"http://ap.example.org\","
		     "\"deadline\":1767225600123,\"dtbd\":\"Pay 10 \xe2\x82\xac?\\nOK\","
		     "\"dtbd_mime\":\"text/plain\",\"dtbs\":\"AAH/gHo=\","
		     "\"dtbs_mime\":\"application/octet-stream\",\"event\":\"EV1\","
		     "\"key\":\"sign-1\",\"lang\":\"en\",\"nonce\":\"" NONCE "\","
		     "\"nospam\":\"\",\"pin\":true,"
		     "\"profile\":\"http://mss.ficom.fi/TS102204/v1.0.0#signature\","
		     "\"t\":\"sign\"}");
	free(txt);
	appmsg_clear(&d);

	/* Without the optional members (no DTBD, click-OK). */
	free(m.am_dtbd);
	m.am_dtbd = NULL;
	m.am_dtbd_mime[0] = '\0';
	m.am_pin = false;
	m.am_lang[0] = '\0';
	m.am_event[0] = '\0';
	txt = round_trip(&m, &d);
	free(txt);
	appmsg_clear(&d);
	appmsg_clear(&m);
	appmsg_clear(NULL);

	/* Decode a minimal hand-written prompt: optional members absent. */
	const char *min = "{\"t\":\"sign\",\"nonce\":\"" NONCE "\",\"ap\":\"\",\"ap_id\":\"x\","
			  "\"key\":\"k\",\"profile\":\"p\",\"pin\":false,\"dtbs\":\"YQ==\","
			  "\"dtbs_mime\":\"text/plain\",\"deadline\":1}";
	struct mss_err err;
	assert_int_equal(appmsg_decode((const uint8_t *)min, strlen(min), &d, &err), 0);
	assert_int_equal(d.am_dtbs_len, 1);
	assert_int_equal(d.am_dtbs[0], 'a');
	assert_null(d.am_dtbd);
	assert_string_equal(d.am_lang, "");
	appmsg_clear(&d);
}

static void
test_round_trip_others(void **state)
{
	struct appmsg m, d;
	char *txt;
	(void)state;

	/* answer with a signature */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_ANSWER;
	strcpy(m.am_nonce, NONCE);
	m.am_status = 500;
	m.am_cms = malloc(3);
	memcpy(m.am_cms, "\x30\x03\x02", 3);
	m.am_cms_len = 3;
	txt = round_trip(&m, &d);
	assert_string_equal(txt, "{\"cms\":\"MAMC\",\"nonce\":\"" NONCE
				 "\",\"status\":500,\"t\":\"answer\"}");
	free(txt);
	appmsg_clear(&d);
	appmsg_clear(&m);

	/* each refusal an answer may carry */
	const int refusals[] = { 401, 402, 403, 404, 422, 900 };
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		memset(&m, 0, sizeof(m));
		m.am_type = APPMSG_ANSWER;
		strcpy(m.am_nonce, NONCE);
		m.am_status = refusals[i];
		txt = round_trip(&m, &d);
		free(txt);
		appmsg_clear(&d);
	}

	/* ack (0 and a final code), cancel */
	for (int st = 0; st <= 502; st += 502) {
		memset(&m, 0, sizeof(m));
		m.am_type = APPMSG_ACK;
		strcpy(m.am_nonce, NONCE);
		m.am_status = st;
		txt = round_trip(&m, &d);
		free(txt);
		appmsg_clear(&d);
	}
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_CANCEL;
	strcpy(m.am_nonce, NONCE);
	m.am_status = 208;
	txt = round_trip(&m, &d);
	assert_string_equal(txt, "{\"nonce\":\"" NONCE "\",\"status\":208,\"t\":\"cancel\"}");
	free(txt);
	appmsg_clear(&d);

	/* receipt */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_RECEIPT;
	strcpy(m.am_nonce, NONCE);
	m.am_message = strdup("Thank you \"\\ \xf0\x9f\x98\x80\tdone");
	txt = round_trip(&m, &d);
	free(txt);
	appmsg_clear(&d);
	appmsg_clear(&m);

	assert_string_equal(appmsg_type_name(APPMSG_SIGN), "sign");
	assert_string_equal(appmsg_type_name(APPMSG_ANSWER), "answer");
	assert_string_equal(appmsg_type_name(APPMSG_ACK), "ack");
	assert_string_equal(appmsg_type_name(APPMSG_CANCEL), "cancel");
	assert_string_equal(appmsg_type_name(APPMSG_RECEIPT), "receipt");
	assert_string_equal(appmsg_type_name((enum appmsg_type)0), "unknown");
	assert_string_equal(appmsg_type_name((enum appmsg_type)99), "unknown");
}

/* Decoding `len` bytes must fail with 101 and leave the struct cleared. */
static void
refused_n(const char *in, size_t len, int line)
{
	struct appmsg m;
	struct mss_err err;
	static const struct appmsg zero;

	memset(&m, 0x5a, sizeof(m)); /* "zeroed or cleared" is the caller's
				       * duty; decode must not read it */
	m.am_dtbd = NULL;
	m.am_dtbs = NULL;
	m.am_cms = NULL;
	m.am_message = NULL;
	if (appmsg_decode((const uint8_t *)in, len, &m, &err) != -1)
		fail_msg("line %d: accepted: %.*s", line, (int)(len > 200 ? 200 : len), in);
	if (err.kind != MSS_E_STATUS || err.code != 101)
		fail_msg("line %d: code %d", line, err.code);
	if (memcmp(&m, &zero, sizeof(m)) != 0)
		fail_msg("line %d: struct not cleared", line);
	/* The detail never echoes input. */
	assert_null(strstr(err.detail, "EVIL"));
}
#define REFUSED(s) refused_n((s), strlen(s), __LINE__)

static void
accepted_n(const char *in, int line)
{
	struct appmsg m;
	struct mss_err err;

	memset(&m, 0, sizeof(m));
	if (appmsg_decode((const uint8_t *)in, strlen(in), &m, &err) != 0)
		fail_msg("line %d: refused (%s): %s", line, err.detail, in);
	appmsg_clear(&m);
}
#define ACCEPTED(s) accepted_n((s), __LINE__)

#define N "\"nonce\":\"" NONCE "\""
#define SIGN_REST                                                                      \
	"\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"   \
	"\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"

static void
test_refuse_structure(void **state)
{
	(void)state;
	/* baselines (each refusal below differs by one thing) */
	ACCEPTED("{\"t\":\"sign\"," N "," SIGN_REST "}");
	ACCEPTED("{\"t\":\"ack\"," N ",\"status\":0}");
	ACCEPTED("{\"t\":\"cancel\"," N ",\"status\":401}");
	ACCEPTED("{\"t\":\"answer\"," N ",\"status\":401}");
	ACCEPTED("{\"t\":\"receipt\"," N ",\"message\":\"\"}");
	ACCEPTED(" {\"t\":\"ack\"," N ",\"status\":0} \n");
	/* brackets and escaped quotes inside strings are not nesting */
	ACCEPTED("{\"t\":\"receipt\"," N ",\"message\":\"[{\\\"[[}\\\\\"}");

	/* not JSON, not an object, trailing bytes, empty, BOM, NUL byte */
	REFUSED("");
	refused_n(NULL, 0, __LINE__);
	REFUSED("{");
	REFUSED("[]");
	REFUSED("[{\"t\":\"ack\"," N ",\"status\":0}]");
	REFUSED("\"ack\"");
	REFUSED("42");
	REFUSED("{}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0}x");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0}{}");
	REFUSED("\xef\xbb\xbf{\"t\":\"ack\"," N ",\"status\":0}");
	refused_n("{\"t\":\"ack\"," N ",\"status\":0}\0", strlen("{\"t\":\"ack\"," N ",\"status\":0}") + 1,
		  __LINE__);
	/* duplicate member, nesting */
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0,\"status\":0}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":{}}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":[0]}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0,\"x\":\"[[[[[[[[\"}"); /* unknown */
	/* type: missing, unknown, wrong JSON type */
	REFUSED("{" N ",\"status\":0}");
	REFUSED("{\"t\":\"ACK\"," N ",\"status\":0}");
	REFUSED("{\"t\":\"EVIL\"," N ",\"status\":0}");
	REFUSED("{\"t\":1," N ",\"status\":0}");
	REFUSED("{\"t\":null," N ",\"status\":0}");
	/* unknown member; a member of another type */
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0,\"EVIL\":1}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0,\"cms\":\"YQ==\"}");
	REFUSED("{\"t\":\"cancel\"," N ",\"status\":208,\"message\":\"x\"}");
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":\"x\",\"status\":100}");
	REFUSED("{\"t\":\"sign\"," N "," SIGN_REST ",\"status\":100}");
	/* invalid UTF-8 and NUL inside a string */
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":\"\xc3\x28\"}");
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":\"\xed\xa0\x80\"}");
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":\"a\\u0000b\"}");
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":\"a\x01\"}");
	/* size cap */
	size_t big = MSSP_E2E_MAX_PLAIN + 1;
	char *s = malloc(big + 1);
	const char *head = "{\"t\":\"receipt\"," N ",\"message\":\"";
	memset(s, ' ', big);
	memcpy(s, head, strlen(head));
	memcpy(s + big - 2, "\"}", 2);
	s[big] = '\0';
	refused_n(s, big, __LINE__);
	free(s);
}

static void
test_refuse_members(void **state)
{
	(void)state;
	/* nonce: missing, type, too short, too long, bad chars */
	REFUSED("{\"t\":\"ack\",\"status\":0}");
	REFUSED("{\"t\":\"ack\",\"nonce\":123,\"status\":0}");
	REFUSED("{\"t\":\"ack\",\"nonce\":\"abc\",\"status\":0}");
	REFUSED("{\"t\":\"ack\",\"nonce\":\"0123456789abcde\",\"status\":0}"); /* 15 */
	ACCEPTED("{\"t\":\"ack\",\"nonce\":\"0123456789abcdef\",\"status\":0}"); /* 16 */
	REFUSED("{\"t\":\"ack\",\"nonce\":\"0123456789abcde+\",\"status\":0}");
	REFUSED("{\"t\":\"ack\",\"nonce\":\"0123456789abcde \",\"status\":0}");
	{
		char buf[512];
		char n[MSSP_STORE_MAX_NONCE + 2];

		memset(n, 'a', sizeof(n) - 1);
		n[MSSP_STORE_MAX_NONCE] = '\0';
		snprintf(buf, sizeof(buf), "{\"t\":\"ack\",\"nonce\":\"%s\",\"status\":0}", n);
		ACCEPTED(buf);
		n[MSSP_STORE_MAX_NONCE] = 'a';
		n[MSSP_STORE_MAX_NONCE + 1] = '\0';
		snprintf(buf, sizeof(buf), "{\"t\":\"ack\",\"nonce\":\"%s\",\"status\":0}", n);
		REFUSED(buf);
	}

	/* status: missing, type, range, per type */
	REFUSED("{\"t\":\"ack\"," N "}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":\"0\"}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":0.0}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":true}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":99}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":1000}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":-1}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":4294967796}");
	REFUSED("{\"t\":\"ack\"," N ",\"status\":99999999999999999999999}");
	ACCEPTED("{\"t\":\"ack\"," N ",\"status\":999}");
	REFUSED("{\"t\":\"cancel\"," N ",\"status\":0}");
	REFUSED("{\"t\":\"cancel\"," N ",\"status\":1000}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":100}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":502}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":504}");
	REFUSED("{\"t\":\"answer\"," N "}");

	/* answer cms: required with 500, forbidden otherwise, strict base64 */
	ACCEPTED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MAMC\"}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"\"}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":401,\"cms\":\"MAMC\"}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MAM\"}");	  /* no pad */
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MA==MAMC\"}"); /* inner = */
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"YR==\"}");	  /* bits */
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MA MC\"}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MAMC\\n\"}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":\"MA-_\"}");	  /* url */
	REFUSED("{\"t\":\"answer\"," N ",\"status\":500,\"cms\":42}");

	/* receipt message */
	REFUSED("{\"t\":\"receipt\"," N "}");
	REFUSED("{\"t\":\"receipt\"," N ",\"message\":null}");
	{
		size_t cap = MSSP_MSG_MAX_RECEIPT;
		char *b = malloc(cap + 200);
		int n = snprintf(b, 100, "{\"t\":\"receipt\"," N ",\"message\":\"");

		memset(b + n, 'r', cap);
		strcpy(b + n + cap, "\"}");
		ACCEPTED(b);
		memset(b + n, 'r', cap + 1);
		strcpy(b + n + cap + 1, "\"}");
		REFUSED(b);
		free(b);
	}
}

static void
test_refuse_sign(void **state)
{
	(void)state;
#define S(x) "{\"t\":\"sign\"," N "," x "}"
	/* each required member missing */
	REFUSED(S("\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,\"dtbs\":\"YQ==\","
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,\"dtbs\":\"YQ==\","
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"profile\":\"p\",\"pin\":true,\"dtbs\":\"YQ==\","
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"pin\":true,\"dtbs\":\"YQ==\","
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"dtbs\":\"YQ==\","
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\""));
	/* wrong types */
	REFUSED(S(SIGN_REST ",\"dtbd\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":\"true\","
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":1,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":\"5\""));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5.5"));
	REFUSED(S("\"ap\":null,\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	/* values */
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":0"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":-5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/html\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ=\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k/1\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\\nB\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S("\"ap\":\"A\\u0085\",\"ap_id\":\"x\",\"key\":\"k\",\"profile\":\"p\",\"pin\":true,"
		  "\"dtbs\":\"YQ==\",\"dtbs_mime\":\"text/plain\",\"deadline\":5"));
	REFUSED(S(SIGN_REST ",\"dtbd\":\"a\\u0007b\""));
	ACCEPTED(S(SIGN_REST ",\"dtbd\":\"line1\\nline2\""));
	REFUSED(S(SIGN_REST ",\"lang\":\"en GB\""));
	ACCEPTED(S(SIGN_REST ",\"lang\":\"en_GB\""));
	REFUSED(S(SIGN_REST ",\"lang\":\"en-GB-xx\"")); /* 8 > 7 bytes */
	ACCEPTED(S(SIGN_REST ",\"lang\":\"en-GB\""));
	REFUSED(S(SIGN_REST ",\"event\":\"a\\tb\""));
	REFUSED(S(SIGN_REST ",\"dtbd_mime\":\"text/\\u00e4\""));
	REFUSED(S(SIGN_REST ",\"nospam\":\"0123456789012345678901234567890123\""));
	ACCEPTED(S(SIGN_REST ",\"nospam\":\"01234567890123456789012345678901\""));

	/* length caps: ap display name, dtbs decoded size, dtbd */
	{
		char *b = malloc(200000), *p;
		size_t i;

		p = b + snprintf(b, 200000, "{\"t\":\"sign\"," N ",\"ap_id\":\"x\",\"key\":\"k\","
				   "\"profile\":\"p\",\"pin\":true,\"dtbs_mime\":\"text/plain\","
				   "\"deadline\":5,\"ap\":\"");
		memset(p, 'a', MSSP_APPMSG_MAX_TEXT);
		strcpy(p + MSSP_APPMSG_MAX_TEXT, "\",\"dtbs\":\"YQ==\"}");
		ACCEPTED(b);
		memset(p, 'a', MSSP_APPMSG_MAX_TEXT + 1);
		strcpy(p + MSSP_APPMSG_MAX_TEXT + 1, "\",\"dtbs\":\"YQ==\"}");
		REFUSED(b);

		/* DTBS of exactly MSSP_MSG_MAX_DTBS bytes, then 3 more */
		strcpy(p, "A\",\"dtbs\":\"");
		p += strlen(p);
		for (i = 0; i < (MSSP_MSG_MAX_DTBS + 2) / 3 * 4; i++)
			p[i] = 'A';
		if (MSSP_MSG_MAX_DTBS % 3 == 1)
			memcpy(p + i - 2, "==", 2);
		else if (MSSP_MSG_MAX_DTBS % 3 == 2)
			p[i - 1] = '=';
		strcpy(p + i, "\"}");
		ACCEPTED(b);
		memcpy(p + i, "AAAA\"}", 7);
		if (MSSP_MSG_MAX_DTBS % 3 != 0) {
			/* move the padding to the new end */
			for (size_t k = 0; k < i + 4; k++)
				if (p[k] == '=')
					p[k] = 'A';
			if (MSSP_MSG_MAX_DTBS % 3 == 1)
				memcpy(p + i + 2, "==", 2);
			else
				p[i + 3] = '=';
		}
		REFUSED(b);

		p = b + snprintf(b, 200000, "{\"t\":\"sign\"," N "," SIGN_REST ",\"dtbd\":\"");
		memset(p, 'd', MSSP_APPMSG_MAX_DTBD);
		strcpy(p + MSSP_APPMSG_MAX_DTBD, "\"}");
		ACCEPTED(b);
		memset(p, 'd', MSSP_APPMSG_MAX_DTBD + 1);
		strcpy(p + MSSP_APPMSG_MAX_DTBD + 1, "\"}");
		REFUSED(b);
		free(b);
	}
#undef S
}

static void
test_encode_refusals(void **state)
{
	struct appmsg m;
	struct mss_err err;
	char *txt = (char *)"untouched";
	size_t len = 7;
	(void)state;

#define ENC_REFUSED()                                                                     \
	do {                                                                              \
		assert_int_equal(appmsg_encode(&m, &txt, &len, &err), -1);               \
		assert_int_equal(err.code, 900);                                         \
		assert_null(txt);                                                        \
	} while (0)
	fill_sign(&m);
	m.am_nonce[0] = '\0';
	ENC_REFUSED();
	strcpy(m.am_nonce, NONCE);
	free(m.am_dtbs);
	m.am_dtbs = NULL;
	m.am_dtbs_len = 0;
	ENC_REFUSED();
	m.am_dtbs = malloc(1);
	m.am_dtbs[0] = 1;
	m.am_dtbs_len = 1;
	m.am_deadline_ms = 0;
	ENC_REFUSED();
	m.am_deadline_ms = 1;
	strcpy(m.am_ap_name, "bad \xc3"); /* invalid UTF-8 */
	ENC_REFUSED();
	strcpy(m.am_ap_name, "ok");
	m.am_key[sizeof(m.am_key) - 1] = 'x'; /* unterminated */
	memset(m.am_key, 'k', sizeof(m.am_key));
	ENC_REFUSED();
	strcpy(m.am_key, "k");
	assert_int_equal(appmsg_encode(&m, &txt, &len, &err), 0);
	free(txt);
	appmsg_clear(&m);

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_ANSWER;
	strcpy(m.am_nonce, NONCE);
	m.am_status = 500; /* no cms */
	ENC_REFUSED();
	m.am_status = 502;
	ENC_REFUSED();
	m.am_type = APPMSG_RECEIPT; /* no message */
	ENC_REFUSED();
	m.am_type = (enum appmsg_type)42;
	ENC_REFUSED();
	assert_int_equal(appmsg_encode(NULL, &txt, &len, &err), -1);
#undef ENC_REFUSED
}


/* ---- registration jobs ---------------------------------------------------- */

#define JOB "J0123456789abcdef"

static void
compare_job(const struct appmsg *m, const struct appmsg *d)
{
	assert_int_equal(d->am_type, m->am_type);
	assert_string_equal(d->am_nonce, "");
	assert_string_equal(d->am_job, m->am_job);
	assert_string_equal(d->am_key, m->am_key);
	assert_int_equal(d->am_pin, m->am_pin);
	assert_string_equal(d->am_purpose, m->am_purpose);
	assert_int_equal(d->am_nprofiles, m->am_nprofiles);
	for (size_t i = 0; i < m->am_nprofiles; i++)
		assert_string_equal(d->am_profiles[i], m->am_profiles[i]);
	assert_string_equal(d->am_alg, m->am_alg);
	assert_int_equal(d->am_status, m->am_status);
	assert_int_equal(d->am_der_len, m->am_der_len);
	if (m->am_der_len)
		assert_memory_equal(d->am_der, m->am_der, m->am_der_len);
	else
		assert_null(d->am_der);
	assert_int_equal(d->am_nchain, m->am_nchain);
	for (size_t i = 0; i < m->am_nchain; i++) {
		assert_int_equal(d->am_chain_len[i], m->am_chain_len[i]);
		assert_memory_equal(d->am_chain[i], m->am_chain[i], m->am_chain_len[i]);
	}
	for (size_t i = m->am_nchain; i < MSSP_KEYSTORE_MAX_CHAIN; i++)
		assert_null(d->am_chain[i]);
}

static char *
job_round_trip(const struct appmsg *m)
{
	struct appmsg d;
	struct mss_err err;
	char *txt = NULL;
	size_t len = 0;

	assert_int_equal(appmsg_encode(m, &txt, &len, &err), 0);
	assert_int_equal(strlen(txt), len);
	assert_int_equal(appmsg_decode((const uint8_t *)txt, len, &d, &err), 0);
	compare_job(m, &d);
	appmsg_clear(&d);
	return txt;
}

static uint8_t *
dup_bytes(const char *b, size_t n)
{
	uint8_t *d = malloc(n);

	assert_non_null(d);
	memcpy(d, b, n);
	return d;
}

static void
test_round_trip_jobs(void **state)
{
	struct appmsg m;
	char *txt;
	(void)state;

	/* keygen */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_KEYGEN;
	strcpy(m.am_job, JOB);
	strcpy(m.am_key, "sign");
	strcpy(m.am_purpose, "sign");
	strcpy(m.am_profiles[0], "http://mss.ficom.fi/TS102204/v1.0.0#signature");
	strcpy(m.am_profiles[1], "mss:demo:sign:loa3:app");
	m.am_nprofiles = 2;
	m.am_pin = true;
	strcpy(m.am_alg, "ec-p256");
	txt = job_round_trip(&m);
	assert_string_equal(txt, "{\"alg\":\"ec-p256\",\"job\":\"" JOB "\",\"key\":\"sign\","
				 "\"pin\":true,\"profiles\":[\"http://mss.ficom.fi/TS102204/"
				 "v1.0.0#signature\",\"mss:demo:sign:loa3:app\"],"
				 "\"purpose\":\"sign\",\"t\":\"keygen\"}");
	free(txt);
	/* the most profiles, PIN-less, authn, RSA */
	for (size_t i = 0; i < MSSP_KEYSTORE_MAX_PROFILES; i++)
		snprintf(m.am_profiles[i], sizeof(m.am_profiles[i]), "urn:p:%zu", i);
	m.am_nprofiles = MSSP_KEYSTORE_MAX_PROFILES;
	m.am_pin = false;
	strcpy(m.am_purpose, "authn");
	strcpy(m.am_alg, "rsa-3072");
	free(job_round_trip(&m));

	/* cert with and without a chain */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_CERT;
	strcpy(m.am_job, JOB);
	strcpy(m.am_key, "authn");
	m.am_der = dup_bytes("\x30\x03\x02", 3);
	m.am_der_len = 3;
	txt = job_round_trip(&m);
	assert_string_equal(txt, "{\"cert\":\"MAMC\",\"chain\":[],\"job\":\"" JOB
				 "\",\"key\":\"authn\",\"t\":\"cert\"}");
	free(txt);
	for (size_t i = 0; i < MSSP_KEYSTORE_MAX_CHAIN; i++) {
		m.am_chain[i] = dup_bytes("\x30\x80\xff\x00", 4 - (i % 3));
		m.am_chain_len[i] = 4 - (i % 3);
	}
	m.am_nchain = MSSP_KEYSTORE_MAX_CHAIN;
	free(job_round_trip(&m));
	appmsg_clear(&m);
	for (size_t i = 0; i < MSSP_KEYSTORE_MAX_CHAIN; i++)
		assert_null(m.am_chain[i]);

	/* unblock */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_UNBLOCK;
	strcpy(m.am_job, JOB);
	strcpy(m.am_key, "sign");
	txt = job_round_trip(&m);
	assert_string_equal(txt, "{\"job\":\"" JOB "\",\"key\":\"sign\",\"t\":\"unblock\"}");
	free(txt);

	/* job_answer: with a CSR, plain success, refusals */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_JOB_ANSWER;
	strcpy(m.am_job, JOB);
	m.am_der = dup_bytes("\x30\x01\x00", 3);
	m.am_der_len = 3;
	txt = job_round_trip(&m);
	assert_string_equal(txt, "{\"csr\":\"MAEA\",\"job\":\"" JOB
				 "\",\"status\":0,\"t\":\"job_answer\"}");
	free(txt);
	appmsg_clear(&m);
	const int st[] = { 0, 101, 401, 403, 404, 900, 999 };
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		memset(&m, 0, sizeof(m));
		m.am_type = APPMSG_JOB_ANSWER;
		strcpy(m.am_job, JOB);
		m.am_status = st[i];
		free(job_round_trip(&m));
	}

	/* job_ack */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_JOB_ACK;
	strcpy(m.am_job, "J_-1");
	txt = job_round_trip(&m);
	assert_string_equal(txt, "{\"job\":\"J_-1\",\"t\":\"job_ack\"}");
	free(txt);

	assert_string_equal(appmsg_type_name(APPMSG_KEYGEN), "keygen");
	assert_string_equal(appmsg_type_name(APPMSG_CERT), "cert");
	assert_string_equal(appmsg_type_name(APPMSG_UNBLOCK), "unblock");
	assert_string_equal(appmsg_type_name(APPMSG_JOB_ANSWER), "job_answer");
	assert_string_equal(appmsg_type_name(APPMSG_JOB_ACK), "job_ack");
	assert_string_equal(appmsg_type_name((enum appmsg_type)(APPMSG_JOB_ACK + 1)), "unknown");
}

#define J "\"job\":\"" JOB "\""
#define KG(x) "{\"t\":\"keygen\"," J "," x "}"
#define KG_REST "\"key\":\"sign\",\"purpose\":\"sign\",\"profiles\":[\"urn:p\"],\"pin\":true," \
		"\"alg\":\"ec-p256\""
#define CE(x) "{\"t\":\"cert\"," J "," x "}"

static void
test_refuse_jobs(void **state)
{
	(void)state;
	/* baselines */
	ACCEPTED(KG(KG_REST));
	ACCEPTED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"MAMC\",\"YQ==\"]"));
	ACCEPTED("{\"t\":\"unblock\"," J ",\"key\":\"k\"}");
	ACCEPTED("{\"t\":\"job_answer\"," J ",\"status\":0}");
	ACCEPTED("{\"t\":\"job_answer\"," J ",\"status\":0,\"csr\":\"MAMC\"}");
	ACCEPTED("{\"t\":\"job_ack\"," J "}");

	/* job id: missing, empty, wrong type, bad chars, too long; a nonce
	 * instead of or beside it */
	REFUSED("{\"t\":\"job_ack\"}");
	REFUSED("{\"t\":\"job_ack\",\"job\":\"\"}");
	REFUSED("{\"t\":\"job_ack\",\"job\":5}");
	REFUSED("{\"t\":\"job_ack\",\"job\":[\"J1\"]}");
	REFUSED("{\"t\":\"job_ack\",\"job\":\"J 1\"}");
	REFUSED("{\"t\":\"job_ack\",\"job\":\"J/1\"}");
	ACCEPTED("{\"t\":\"job_ack\",\"job\":\"0123456789012345678901234567890\"}"); /* 31 */
	REFUSED("{\"t\":\"job_ack\",\"job\":\"01234567890123456789012345678901\"}"); /* 32 */
	REFUSED("{\"t\":\"job_ack\"," N "}");
	REFUSED("{\"t\":\"job_ack\"," J "," N "}");
	/* a job id on a prompt message */
	REFUSED("{\"t\":\"ack\"," N "," J ",\"status\":0}");
	/* members of other types */
	REFUSED("{\"t\":\"job_ack\"," J ",\"status\":0}");
	REFUSED("{\"t\":\"unblock\"," J ",\"key\":\"k\",\"pin\":true}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":0,\"cms\":\"MAMC\"}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":0,\"cert\":\"MAMC\"}");
	REFUSED(KG(KG_REST ",\"chain\":[]"));
	REFUSED(KG(KG_REST ",\"profile\":\"p\""));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[],\"profiles\":[]"));
	REFUSED("{\"t\":\"sign\"," N "," SIGN_REST ",\"profiles\":[\"p\"]}");
	REFUSED("{\"t\":\"answer\"," N ",\"status\":401,\"csr\":\"MAMC\"}");

	/* keygen: each required member missing */
	REFUSED(KG("\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true,\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"profiles\":[\"p\"],\"pin\":true,\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"pin\":true,\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true"));
	/* keygen values */
	REFUSED(KG("\"key\":\"\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"a:b\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"SIGN\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"signature\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":1,"
		   "\"alg\":\"ec-p256\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"ec-p384\""));
	REFUSED(KG("\"key\":\"k\",\"purpose\":\"sign\",\"profiles\":[\"p\"],\"pin\":true,"
		   "\"alg\":\"EVIL-0123456789abcdef\""));
	ACCEPTED(KG("\"key\":\"k\",\"purpose\":\"authn\",\"profiles\":[\"p\"],\"pin\":false,"
		    "\"alg\":\"rsa-2048\""));
	/* profiles: not an array, empty, non-string element, empty string,
	 * space, control, non-ASCII, nested, too many, too long */
#define KGP(x) KG("\"key\":\"k\",\"purpose\":\"sign\",\"pin\":true,\"alg\":\"ec-p256\",\"profiles\":" x)
	REFUSED(KGP("\"p\""));
	REFUSED(KGP("{}"));
	REFUSED(KGP("[]"));
	REFUSED(KGP("[1]"));
	REFUSED(KGP("[null]"));
	REFUSED(KGP("[\"p\",true]"));
	REFUSED(KGP("[\"\"]"));
	REFUSED(KGP("[\"a b\"]"));
	REFUSED(KGP("[\"a\\tb\"]"));
	REFUSED(KGP("[\"a\\u00e4\"]"));
	REFUSED(KGP("[\"a\\u0000b\"]"));
	REFUSED(KGP("[[\"p\"]]"));
	REFUSED(KGP("[{\"p\":1}]"));
	ACCEPTED(KGP("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]"));
	REFUSED(KGP("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]"));
	{
		char b[2048], u[MSSP_PROFILE_MAX_URI + 2];

		memset(u, 'u', MSSP_PROFILE_MAX_URI);
		u[MSSP_PROFILE_MAX_URI] = '\0';
		snprintf(b, sizeof(b), KGP("[\"%s\"]"), u);
		ACCEPTED(b);
		strcat(u, "u");
		snprintf(b, sizeof(b), KGP("[\"%s\"]"), u);
		REFUSED(b);
	}
#undef KGP

	/* cert: missing members, types, base64, counts, sizes */
	REFUSED(CE("\"cert\":\"MAMC\",\"chain\":[]"));
	REFUSED(CE("\"key\":\"k\",\"chain\":[]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\""));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"\",\"chain\":[]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAM\",\"chain\":[]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":[\"MAMC\"],\"chain\":[]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":\"MAMC\""));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"\"]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"YR==\"]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"MA MC\"]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[5]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[[\"MAMC\"]]"));
	ACCEPTED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"YQ==\",\"YQ==\",\"YQ==\",\"YQ==\"]"));
	REFUSED(CE("\"key\":\"k\",\"cert\":\"MAMC\",\"chain\":[\"YQ==\",\"YQ==\",\"YQ==\",\"YQ==\","
		   "\"YQ==\"]"));
	{
		/* a certificate (and a chain element) of exactly the cap, then more */
		size_t n = (MSSP_KEYSTORE_MAX_CERT + 2) / 3 * 4;
		char *b = malloc(2 * n + 200), *p;

		assert_non_null(b);
		p = b + sprintf(b, "{\"t\":\"cert\"," J ",\"key\":\"k\",\"chain\":[],\"cert\":\"");
		memset(p, 'A', n);
		if (MSSP_KEYSTORE_MAX_CERT % 3 == 1)
			memcpy(p + n - 2, "==", 2);
		else if (MSSP_KEYSTORE_MAX_CERT % 3 == 2)
			p[n - 1] = '=';
		strcpy(p + n, "\"}");
		ACCEPTED(b);
		memcpy(p + n, "AAAA\"}", 7);
		REFUSED(b); /* more than the cap, or misplaced padding */
		p = b + sprintf(b, "{\"t\":\"cert\"," J ",\"key\":\"k\",\"cert\":\"YQ==\",\"chain\":[\"");
		memset(p, 'A', n + 4);
		strcpy(p + n + 4, "\"]}");
		REFUSED(b);
		free(b);
	}

	/* unblock */
	REFUSED("{\"t\":\"unblock\"," J "}");
	REFUSED("{\"t\":\"unblock\"," J ",\"key\":\"\"}");
	REFUSED("{\"t\":\"unblock\"," J ",\"key\":7}");

	/* job_answer: status range, csr only with 0, csr base64 and size */
	REFUSED("{\"t\":\"job_answer\"," J "}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":-1}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":1}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":99}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":1000}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":\"0\"}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":401,\"csr\":\"MAMC\"}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":0,\"csr\":\"\"}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":0,\"csr\":\"MA=C\"}");
	REFUSED("{\"t\":\"job_answer\"," J ",\"status\":0,\"csr\":[\"MAMC\"]}");
	{
		size_t n = (MSSP_APPMSG_MAX_CSR + 2) / 3 * 4 + 4;
		char *b = malloc(n + 200), *p;

		assert_non_null(b);
		p = b + sprintf(b, "{\"t\":\"job_answer\"," J ",\"status\":0,\"csr\":\"");
		memset(p, 'A', n);
		strcpy(p + n, "\"}");
		REFUSED(b);
		free(b);
	}

	/* depth: three levels are refused before parsing */
	REFUSED("{\"t\":\"job_ack\"," J ",\"x\":[[1]]}");
}

static void
test_encode_refusals_jobs(void **state)
{
	struct appmsg m;
	struct mss_err err;
	char *txt = (char *)"untouched";
	size_t len = 7;
	(void)state;

#define ENC_REFUSED()                                                                     \
	do {                                                                              \
		assert_int_equal(appmsg_encode(&m, &txt, &len, &err), -1);               \
		assert_int_equal(err.code, 900);                                         \
		assert_null(txt);                                                        \
	} while (0)
#define ENC_OK()                                                                          \
	do {                                                                              \
		assert_int_equal(appmsg_encode(&m, &txt, &len, &err), 0);                \
		free(txt);                                                               \
	} while (0)
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_KEYGEN;
	strcpy(m.am_key, "k");
	strcpy(m.am_purpose, "sign");
	strcpy(m.am_profiles[0], "urn:p");
	m.am_nprofiles = 1;
	strcpy(m.am_alg, "ec-p256");
	ENC_REFUSED(); /* no job id */
	strcpy(m.am_job, JOB);
	ENC_OK();
	strcpy(m.am_nonce, NONCE); /* a nonce on a job message */
	ENC_REFUSED();
	m.am_nonce[0] = '\0';
	m.am_nprofiles = 0;
	ENC_REFUSED();
	m.am_nprofiles = MSSP_KEYSTORE_MAX_PROFILES + 1;
	ENC_REFUSED();
	m.am_nprofiles = 2; /* second one empty */
	ENC_REFUSED();
	m.am_nprofiles = 1;
	strcpy(m.am_alg, "dsa");
	ENC_REFUSED();
	strcpy(m.am_alg, "ec-p256");
	strcpy(m.am_purpose, "x");
	ENC_REFUSED();
	strcpy(m.am_purpose, "authn");
	ENC_OK();

	/* a job id on a prompt message */
	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_ACK;
	strcpy(m.am_nonce, NONCE);
	ENC_OK();
	strcpy(m.am_job, JOB);
	ENC_REFUSED();

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_CERT;
	strcpy(m.am_job, JOB);
	strcpy(m.am_key, "k");
	ENC_REFUSED(); /* no certificate */
	m.am_der = dup_bytes("\x30\x00", 2);
	m.am_der_len = 2;
	ENC_OK();
	m.am_nchain = 1; /* element missing */
	ENC_REFUSED();
	m.am_nchain = MSSP_KEYSTORE_MAX_CHAIN + 1;
	ENC_REFUSED();
	m.am_nchain = 0;
	m.am_der_len = MSSP_KEYSTORE_MAX_CERT + 1;
	ENC_REFUSED();
	m.am_der_len = 2;
	appmsg_clear(&m);

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_JOB_ANSWER;
	strcpy(m.am_job, JOB);
	m.am_status = 404;
	ENC_OK();
	m.am_der = dup_bytes("\x30\x00", 2);
	m.am_der_len = 2;
	ENC_REFUSED(); /* CSR with a refusal */
	m.am_status = 0;
	ENC_OK();
	m.am_status = 50;
	ENC_REFUSED();
	appmsg_clear(&m);
#undef ENC_REFUSED
#undef ENC_OK
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_sign),
		cmocka_unit_test(test_round_trip_others),
		cmocka_unit_test(test_refuse_structure),
		cmocka_unit_test(test_refuse_members),
		cmocka_unit_test(test_refuse_sign),
		cmocka_unit_test(test_encode_refusals),
		cmocka_unit_test(test_round_trip_jobs),
		cmocka_unit_test(test_refuse_jobs),
		cmocka_unit_test(test_encode_refusals_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
