/*
 * appmsg.c - the JSON messages of the app channel (appmsg.h).
 *
 * One validation function serves both directions: the decoder runs it on
 * what it read, the encoder on what it is asked to write, so we never send
 * a message the other end would refuse (and a round trip is exact).
 * Refusal texts are generic: they name our own members, never input bytes.
 */
#include "mss/appmsg.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "mss/lex.h"

struct member {
	const char *name;
	unsigned types; /* bit set of enum appmsg_type allowed to carry it */
};

#define T(x) (1u << (x))
/* Prompt messages carry the transaction's nonce, registration jobs their
 * job id: never both. */
#define NONCE_T (T(APPMSG_SIGN) | T(APPMSG_ANSWER) | T(APPMSG_ACK) | T(APPMSG_CANCEL) | T(APPMSG_RECEIPT))
#define JOB_T                                                                               \
	(T(APPMSG_KEYGEN) | T(APPMSG_CERT) | T(APPMSG_UNBLOCK) | T(APPMSG_JOB_ANSWER) |       \
	 T(APPMSG_JOB_ACK))
#define ALL (NONCE_T | JOB_T)
#define FIRST_TYPE APPMSG_SIGN
#define LAST_TYPE APPMSG_JOB_ACK

static const struct member members[] = {
	{ "t", ALL },
	{ "nonce", NONCE_T },
	{ "job", JOB_T },
	{ "ap", T(APPMSG_SIGN) },
	{ "ap_id", T(APPMSG_SIGN) },
	{ "key", T(APPMSG_SIGN) | T(APPMSG_KEYGEN) | T(APPMSG_CERT) | T(APPMSG_UNBLOCK) },
	{ "profile", T(APPMSG_SIGN) },
	{ "pin", T(APPMSG_SIGN) | T(APPMSG_KEYGEN) },
	{ "dtbd", T(APPMSG_SIGN) },
	{ "dtbd_mime", T(APPMSG_SIGN) },
	{ "dtbs", T(APPMSG_SIGN) },
	{ "dtbs_mime", T(APPMSG_SIGN) },
	{ "deadline", T(APPMSG_SIGN) },
	{ "lang", T(APPMSG_SIGN) },
	{ "event", T(APPMSG_SIGN) },
	{ "nospam", T(APPMSG_SIGN) },
	{ "status", T(APPMSG_ANSWER) | T(APPMSG_ACK) | T(APPMSG_CANCEL) | T(APPMSG_JOB_ANSWER) },
	{ "cms", T(APPMSG_ANSWER) },
	{ "message", T(APPMSG_RECEIPT) },
	{ "purpose", T(APPMSG_KEYGEN) },
	{ "profiles", T(APPMSG_KEYGEN) },
	{ "alg", T(APPMSG_KEYGEN) },
	{ "cert", T(APPMSG_CERT) },
	{ "chain", T(APPMSG_CERT) },
	{ "csr", T(APPMSG_JOB_ANSWER) },
};

static const char *const type_names[] = {
	[APPMSG_SIGN] = "sign",
	[APPMSG_ANSWER] = "answer",
	[APPMSG_ACK] = "ack",
	[APPMSG_CANCEL] = "cancel",
	[APPMSG_RECEIPT] = "receipt",
	[APPMSG_KEYGEN] = "keygen",
	[APPMSG_CERT] = "cert",
	[APPMSG_UNBLOCK] = "unblock",
	[APPMSG_JOB_ANSWER] = "job_answer",
	[APPMSG_JOB_ACK] = "job_ack",
};

/* Key algorithms a keygen job may name (the phone decides which it can
 * generate; the codec only refuses what no phone could). */
static const char *const algs[] = { "ec-p256", "rsa-2048", "rsa-3072" };

const char *
appmsg_type_name(enum appmsg_type t)
{
	if ((int)t < FIRST_TYPE || (int)t > LAST_TYPE)
		return "unknown";
	return type_names[t];
}

static int
type_by_name(const char *s)
{
	for (int t = FIRST_TYPE; t <= LAST_TYPE; t++)
		if (strcmp(s, type_names[t]) == 0)
			return t;
	return -1;
}

void
appmsg_clear(struct appmsg *m)
{
	if (m == NULL)
		return;
	free(m->am_dtbd);
	free(m->am_dtbs);
	free(m->am_cms);
	free(m->am_message);
	free(m->am_der);
	for (size_t i = 0; i < MSSP_KEYSTORE_MAX_CHAIN; i++)
		free(m->am_chain[i]);
	memset(m, 0, sizeof(*m));
}

/* ---- value rules (shared by decode and encode) ------------------------- */

/* A one-line text: no C0 control at all (TAB and LF included), no DEL or
 * C1 control.  These values end up in a prompt title, logs and the store. */
static bool
line_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20)
			return false;
	return !mss_lex_has_controls(s);
}

/* [A-Za-z0-9] plus the extra characters in `extra`. */
static bool
charset_ok(const char *s, const char *extra)
{
	for (const char *p = s; *p; p++) {
		char c = *p;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr(extra, c) == NULL)
			return false;
	}
	return true;
}

/* A fixed array member is NUL-terminated within its array (encode side:
 * the caller filled it) and at most `max` bytes. */
#define FIXED_OK(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

static bool
printable_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

static bool
answer_status_ok(int st)
{
	switch (st) {
	case MSS_SIGNATURE:
	case MSS_USER_CANCEL:
	case MSS_PIN_NR_BLOCKED:
	case MSS_CARD_BLOCKED:
	case MSS_NO_KEY_FOUND:
	case MSS_NO_CERT_FOUND:
	case MSS_INTERNAL_ERROR:
		return true;
	default:
		return false;
	}
}

static bool
key_ok(const char *k, size_t cap)
{
	return strnlen(k, cap) < cap && k[0] != '\0' && charset_ok(k, "._-");
}

/* A profile URI in a keygen job: what the keystore stores (printable
 * ASCII, no space: the profile lists are space separated elsewhere). */
static bool
profile_uri_ok(const char *s, size_t cap)
{
	return strnlen(s, cap) < cap && s[0] != '\0' && printable_ascii(s) &&
	       strchr(s, ' ') == NULL;
}

/* The job types' own rules (the job id is checked by the caller). */
static const char *
check_job(const struct appmsg *m)
{
	size_t i;

	switch (m->am_type) {
	case APPMSG_KEYGEN:
		if (!key_ok(m->am_key, sizeof(m->am_key)))
			return "bad key";
		if (!FIXED_OK(m->am_purpose) ||
		    (strcmp(m->am_purpose, "authn") != 0 && strcmp(m->am_purpose, "sign") != 0))
			return "bad purpose";
		/* a key serves at least one profile, else nothing can find it */
		if (m->am_nprofiles == 0 || m->am_nprofiles > MSSP_KEYSTORE_MAX_PROFILES)
			return "bad profiles";
		for (i = 0; i < m->am_nprofiles; i++)
			if (!profile_uri_ok(m->am_profiles[i], sizeof(m->am_profiles[i])))
				return "bad profiles";
		if (!FIXED_OK(m->am_alg))
			return "bad alg";
		for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
			if (strcmp(m->am_alg, algs[i]) == 0)
				break;
		if (i == sizeof(algs) / sizeof(algs[0]))
			return "bad alg";
		break;
	case APPMSG_CERT:
		if (!key_ok(m->am_key, sizeof(m->am_key)))
			return "bad key";
		if (m->am_der == NULL || m->am_der_len == 0 || m->am_der_len > MSSP_KEYSTORE_MAX_CERT)
			return "bad cert";
		if (m->am_nchain > MSSP_KEYSTORE_MAX_CHAIN)
			return "bad chain";
		for (i = 0; i < m->am_nchain; i++)
			if (m->am_chain[i] == NULL || m->am_chain_len[i] == 0 ||
			    m->am_chain_len[i] > MSSP_KEYSTORE_MAX_CERT)
				return "bad chain";
		break;
	case APPMSG_UNBLOCK:
		if (!key_ok(m->am_key, sizeof(m->am_key)))
			return "bad key";
		break;
	case APPMSG_JOB_ANSWER:
		if (m->am_status != 0 && (m->am_status < 100 || m->am_status > 999))
			return "bad status";
		/* a CSR only with success (a keygen answer) */
		if (m->am_der != NULL || m->am_der_len != 0) {
			if (m->am_status != 0)
				return "csr without success";
			if (m->am_der == NULL || m->am_der_len == 0 ||
			    m->am_der_len > MSSP_APPMSG_MAX_CSR)
				return "bad csr";
		}
		break;
	default: /* APPMSG_JOB_ACK: the job id only */
		break;
	}
	return NULL;
}

/* NULL when `m` is a valid message, else a generic reason. */
static const char *
check(const struct appmsg *m)
{
	size_t n;

	if ((int)m->am_type < FIRST_TYPE || (int)m->am_type > LAST_TYPE)
		return "unknown type";
	if (!FIXED_OK(m->am_nonce) || !FIXED_OK(m->am_job))
		return "bad nonce";
	if (T(m->am_type) & JOB_T) {
		n = strlen(m->am_job);
		if (n == 0 || n > MSSP_APPMSG_MAX_JOB || !charset_ok(m->am_job, "_-"))
			return "bad job";
		if (m->am_nonce[0] != '\0')
			return "nonce in a job message";
		return check_job(m);
	}
	if (m->am_job[0] != '\0')
		return "job in a prompt message";
	n = strlen(m->am_nonce);
	if (n < MSSP_STORE_MIN_NONCE || n > MSSP_STORE_MAX_NONCE || !charset_ok(m->am_nonce, "_-"))
		return "bad nonce";
	switch (m->am_type) {
	case APPMSG_SIGN:
		if (!FIXED_OK(m->am_ap_name) || !line_ok(m->am_ap_name))
			return "bad ap";
		if (!FIXED_OK(m->am_ap_id) || m->am_ap_id[0] == '\0' || !line_ok(m->am_ap_id))
			return "bad ap_id";
		if (!FIXED_OK(m->am_key) || m->am_key[0] == '\0' || !charset_ok(m->am_key, "._-"))
			return "bad key";
		if (!FIXED_OK(m->am_profile) || m->am_profile[0] == '\0' ||
		    !line_ok(m->am_profile) || strchr(m->am_profile, ' ') != NULL)
			return "bad profile";
		if (m->am_dtbd != NULL && (strlen(m->am_dtbd) > MSSP_APPMSG_MAX_DTBD ||
					   mss_lex_has_controls(m->am_dtbd)))
			return "bad dtbd";
		if (!FIXED_OK(m->am_dtbd_mime) || !printable_ascii(m->am_dtbd_mime))
			return "bad dtbd_mime";
		if (m->am_dtbs == NULL || m->am_dtbs_len == 0 || m->am_dtbs_len > MSSP_MSG_MAX_DTBS)
			return "bad dtbs";
		if (!FIXED_OK(m->am_dtbs_mime) || (strcmp(m->am_dtbs_mime, "text/plain") != 0 &&
						   strcmp(m->am_dtbs_mime, "application/octet-stream") != 0))
			return "bad dtbs_mime";
		if (m->am_deadline_ms <= 0)
			return "bad deadline";
		if (!FIXED_OK(m->am_lang) || !charset_ok(m->am_lang, "_-"))
			return "bad lang";
		if (!FIXED_OK(m->am_event) || !line_ok(m->am_event))
			return "bad event";
		if (!FIXED_OK(m->am_nospam) || !line_ok(m->am_nospam))
			return "bad nospam";
		break;
	case APPMSG_ANSWER:
		/* Only the outcomes a phone can produce: a peer must never
		 * claim, say, 502 VALID_SIGNATURE or 100. */
		if (!answer_status_ok(m->am_status))
			return "bad status";
		if (m->am_status == MSS_SIGNATURE) {
			if (m->am_cms == NULL || m->am_cms_len == 0 ||
			    m->am_cms_len > MSSP_PKI_SIG_MAX_CMS)
				return "bad cms";
		} else if (m->am_cms != NULL || m->am_cms_len != 0) {
			return "cms without a signature status";
		}
		break;
	case APPMSG_ACK:
		if (m->am_status != 0 && (m->am_status < 100 || m->am_status > 999))
			return "bad status";
		break;
	case APPMSG_CANCEL:
		if (m->am_status < 100 || m->am_status > 999)
			return "bad status";
		break;
	case APPMSG_RECEIPT:
		if (m->am_message == NULL || strlen(m->am_message) > MSSP_MSG_MAX_RECEIPT ||
		    mss_lex_has_controls(m->am_message))
			return "bad message";
		break;
	default: /* job types: handled above */
		break;
	}
	return NULL;
}

/* ---- decoding ------------------------------------------------------------ */

/* Nesting depth before parsing: an object whose members are scalars or
 * arrays of strings is all we accept, so deep input is refused without
 * building it (what nests within the cap but is not allowed is refused
 * by the member rules after parsing). */
static bool
depth_ok(const uint8_t *in, size_t len)
{
	bool str = false, esc = false;
	int d = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				str = false;
			continue;
		}
		if (c == '"')
			str = true;
		else if (c == '{' || c == '[') {
			if (++d > MSSP_APPMSG_MAX_DEPTH)
				return false;
		} else if (c == '}' || c == ']')
			d--;
	}
	return true;
}

struct rd {
	json_t *root;
	struct mss_err *err;
	const char *why; /* first refusal */
};

/* The string member `name` (NULL if absent); refuses non-strings, NUL
 * bytes and more than `max` bytes. */
static const char *
rd_strv(struct rd *r, json_t *v, size_t max, size_t *lenp)
{
	const char *s;
	size_t n;

	if (v == NULL || r->why != NULL)
		return NULL;
	if (!json_is_string(v)) {
		r->why = "wrong member type";
		return NULL;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (strlen(s) != n) {
		r->why = "NUL in a string";
		return NULL;
	}
	if (n > max) {
		r->why = "member too long";
		return NULL;
	}
	if (lenp)
		*lenp = n;
	return s;
}

static const char *
rd_str(struct rd *r, const char *name, size_t max, size_t *lenp)
{
	return rd_strv(r, json_object_get(r->root, name), max, lenp);
}

/* Into a fixed array of capacity `cap` (max cap - 1 bytes). */
static void
rd_fixed(struct rd *r, const char *name, char *dst, size_t cap)
{
	size_t n = 0;
	const char *s = rd_str(r, name, cap - 1, &n);

	if (s != NULL)
		memcpy(dst, s, n + 1);
}

static char *
rd_heap(struct rd *r, const char *name, size_t max)
{
	size_t n = 0;
	const char *s = rd_str(r, name, max, &n);
	char *d;

	if (s == NULL)
		return NULL;
	d = malloc(n + 1);
	if (d == NULL) {
		r->why = "out of memory";
		return NULL;
	}
	memcpy(d, s, n + 1);
	return d;
}

/* Strict base64 (mss_lex_base64_decode: padding required, canonical
 * trailing bits, no white space) of at most `max` decoded bytes. */
static uint8_t *
rd_b64v(struct rd *r, json_t *v, size_t max, size_t *outlen)
{
	const char *s = rd_strv(r, v, (max + 2) / 3 * 4, NULL);
	uint8_t *d;
	long n;

	if (s == NULL)
		return NULL;
	n = mss_lex_base64_decode(s, NULL, max);
	if (n < 0) {
		r->why = "invalid base64";
		return NULL;
	}
	d = malloc(n > 0 ? (size_t)n : 1);
	if (d == NULL) {
		r->why = "out of memory";
		return NULL;
	}
	if (mss_lex_base64_decode(s, d, (size_t)n) != n) {
		free(d);
		r->why = "invalid base64";
		return NULL;
	}
	*outlen = (size_t)n;
	return d;
}

static uint8_t *
rd_b64(struct rd *r, const char *name, size_t max, size_t *outlen)
{
	return rd_b64v(r, json_object_get(r->root, name), max, outlen);
}

/* The array member `name` (required by the caller) of at most `max`
 * elements; NULL with r->why set when it is not an array or too long.
 * Element types are checked by the caller (rd_strv / rd_b64v). */
static json_t *
rd_array(struct rd *r, const char *name, size_t max)
{
	json_t *v = json_object_get(r->root, name);

	if (v == NULL || r->why != NULL)
		return NULL;
	if (!json_is_array(v)) {
		r->why = "wrong member type";
		return NULL;
	}
	if (json_array_size(v) > max) {
		r->why = "too many elements";
		return NULL;
	}
	return v;
}

static void
rd_pin(struct rd *r, struct appmsg *m)
{
	json_t *pin = json_object_get(r->root, "pin");

	if (!json_is_boolean(pin) && r->why == NULL)
		r->why = "wrong member type";
	m->am_pin = json_is_true(pin);
}

/* Integer member; false if absent.  Reals and other types are refused. */
static bool
rd_int(struct rd *r, const char *name, long long min, long long max, long long *out)
{
	json_t *v = json_object_get(r->root, name);

	if (v == NULL || r->why != NULL)
		return false;
	if (!json_is_integer(v)) {
		r->why = "wrong member type";
		return false;
	}
	*out = json_integer_value(v);
	if (*out < min || *out > max) {
		r->why = "integer out of range";
		return false;
	}
	return true;
}

static bool
rd_required(struct rd *r, const char *const *names)
{
	for (; *names; names++)
		if (json_object_get(r->root, *names) == NULL) {
			if (r->why == NULL)
				r->why = "missing member";
			return false;
		}
	return true;
}

static const char *const req_sign[] = { "ap", "ap_id", "key", "profile", "pin", "dtbs",
					"dtbs_mime", "deadline", NULL };
static const char *const req_status[] = { "status", NULL };
static const char *const req_receipt[] = { "message", NULL };
static const char *const req_keygen[] = { "key", "purpose", "profiles", "pin", "alg", NULL };
static const char *const req_cert[] = { "key", "cert", "chain", NULL };
static const char *const req_key[] = { "key", NULL };

static void
rd_body(struct rd *r, struct appmsg *m)
{
	long long v;
	json_t *a;
	size_t i, n;

	switch (m->am_type) {
	case APPMSG_SIGN:
		if (!rd_required(r, req_sign))
			return;
		rd_fixed(r, "ap", m->am_ap_name, sizeof(m->am_ap_name));
		rd_fixed(r, "ap_id", m->am_ap_id, sizeof(m->am_ap_id));
		rd_fixed(r, "key", m->am_key, sizeof(m->am_key));
		rd_fixed(r, "profile", m->am_profile, sizeof(m->am_profile));
		rd_pin(r, m);
		m->am_dtbd = rd_heap(r, "dtbd", MSSP_APPMSG_MAX_DTBD);
		rd_fixed(r, "dtbd_mime", m->am_dtbd_mime, sizeof(m->am_dtbd_mime));
		m->am_dtbs = rd_b64(r, "dtbs", MSSP_MSG_MAX_DTBS, &m->am_dtbs_len);
		rd_fixed(r, "dtbs_mime", m->am_dtbs_mime, sizeof(m->am_dtbs_mime));
		if (rd_int(r, "deadline", 1, INT64_MAX, &v))
			m->am_deadline_ms = v;
		rd_fixed(r, "lang", m->am_lang, sizeof(m->am_lang));
		rd_fixed(r, "event", m->am_event, sizeof(m->am_event));
		rd_fixed(r, "nospam", m->am_nospam, sizeof(m->am_nospam));
		break;
	case APPMSG_ANSWER:
	case APPMSG_ACK:
	case APPMSG_CANCEL:
		if (!rd_required(r, req_status))
			return;
		if (rd_int(r, "status", m->am_type == APPMSG_ACK ? 0 : 100, 999, &v))
			m->am_status = (int)v;
		if (m->am_type == APPMSG_ANSWER)
			m->am_cms = rd_b64(r, "cms", MSSP_PKI_SIG_MAX_CMS, &m->am_cms_len);
		break;
	case APPMSG_RECEIPT:
		if (!rd_required(r, req_receipt))
			return;
		m->am_message = rd_heap(r, "message", MSSP_MSG_MAX_RECEIPT);
		break;
	case APPMSG_KEYGEN:
		if (!rd_required(r, req_keygen))
			return;
		rd_fixed(r, "key", m->am_key, sizeof(m->am_key));
		rd_fixed(r, "purpose", m->am_purpose, sizeof(m->am_purpose));
		rd_pin(r, m);
		rd_fixed(r, "alg", m->am_alg, sizeof(m->am_alg));
		a = rd_array(r, "profiles", MSSP_KEYSTORE_MAX_PROFILES);
		for (i = 0; a != NULL && i < json_array_size(a) && r->why == NULL; i++) {
			const char *s = rd_strv(r, json_array_get(a, i), MSSP_PROFILE_MAX_URI, &n);

			if (s != NULL) {
				memcpy(m->am_profiles[i], s, n + 1);
				m->am_nprofiles = i + 1;
			}
		}
		break;
	case APPMSG_CERT:
		if (!rd_required(r, req_cert))
			return;
		rd_fixed(r, "key", m->am_key, sizeof(m->am_key));
		m->am_der = rd_b64(r, "cert", MSSP_KEYSTORE_MAX_CERT, &m->am_der_len);
		a = rd_array(r, "chain", MSSP_KEYSTORE_MAX_CHAIN);
		for (i = 0; a != NULL && i < json_array_size(a) && r->why == NULL; i++) {
			m->am_chain[i] = rd_b64v(r, json_array_get(a, i), MSSP_KEYSTORE_MAX_CERT,
						 &m->am_chain_len[i]);
			if (m->am_chain[i] != NULL)
				m->am_nchain = i + 1;
		}
		break;
	case APPMSG_UNBLOCK:
		if (!rd_required(r, req_key))
			return;
		rd_fixed(r, "key", m->am_key, sizeof(m->am_key));
		break;
	case APPMSG_JOB_ANSWER:
		if (!rd_required(r, req_status))
			return;
		if (rd_int(r, "status", 0, 999, &v))
			m->am_status = (int)v;
		m->am_der = rd_b64(r, "csr", MSSP_APPMSG_MAX_CSR, &m->am_der_len);
		break;
	case APPMSG_JOB_ACK:
		break;
	}
}

int
appmsg_decode(const uint8_t *in, size_t len, struct appmsg *m, struct mss_err *err)
{
	struct rd r = { NULL, err, NULL };
	json_error_t jerr;
	const char *key, *why;
	json_t *v;
	int t;

	mss_err_clear(err);
	if (m == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "app message: no output");
	memset(m, 0, sizeof(*m));
	if (in == NULL || len == 0 || len > MSSP_E2E_MAX_PLAIN)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "app message: bad size");
	if (!depth_ok(in, len))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "app message: nested too deeply");
	/* Without JSON_DECODE_ANY only an object or array parses; trailing
	 * bytes and bad UTF-8 are refused by jansson itself. */
	r.root = json_loadb((const char *)in, len, JSON_REJECT_DUPLICATES, &jerr);
	if (r.root == NULL)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "app message: malformed JSON");
	if (!json_is_object(r.root)) {
		why = "not an object";
		goto fail;
	}
	v = json_object_get(r.root, "t");
	if (v == NULL || !json_is_string(v) || (t = type_by_name(json_string_value(v))) < 0) {
		why = "unknown or missing type";
		goto fail;
	}
	m->am_type = (enum appmsg_type)t;
	json_object_foreach(r.root, key, v) {
		size_t i;

		for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			if (strcmp(key, members[i].name) == 0)
				break;
		if (i == sizeof(members) / sizeof(members[0]) ||
		    !(members[i].types & T(m->am_type))) {
			why = "unknown member";
			goto fail;
		}
	}
	if (T(m->am_type) & JOB_T) {
		if (json_object_get(r.root, "job") == NULL) {
			why = "missing member";
			goto fail;
		}
		rd_fixed(&r, "job", m->am_job, sizeof(m->am_job));
	} else {
		if (json_object_get(r.root, "nonce") == NULL) {
			why = "missing member";
			goto fail;
		}
		rd_fixed(&r, "nonce", m->am_nonce, sizeof(m->am_nonce));
	}
	rd_body(&r, m);
	why = r.why != NULL ? r.why : check(m);
	if (why != NULL)
		goto fail;
	json_decref(r.root);
	return 0;
fail:
	json_decref(r.root);
	appmsg_clear(m);
	return mss_err_setf(err, MSS_WRONG_PARAM, 0, "app message: %s", why);
}

/* ---- encoding ------------------------------------------------------------ */

/* json_object_set_new, remembering failure (the value may be NULL when
 * jansson refuses it, e.g. invalid UTF-8; set_new then fails cleanly). */
static void
put(json_t *o, const char *name, json_t *v, bool *ok)
{
	if (v == NULL || json_object_set_new(o, name, v) != 0)
		*ok = false;
}

static json_t *
b64(const uint8_t *d, size_t n)
{
	size_t cap = (n + 2) / 3 * 4 + 1;
	char *s = malloc(cap);
	json_t *v;

	if (s == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	v = json_string(s);
	free(s);
	return v;
}

int
appmsg_encode(const struct appmsg *m, char **out, size_t *len, struct mss_err *err)
{
	const char *why;
	json_t *o, *a;
	bool ok = true;
	size_t n;
	char *s;

	mss_err_clear(err);
	if (m == NULL || out == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "app message: missing argument");
	*out = NULL;
	if (len)
		*len = 0;
	why = check(m);
	if (why != NULL)
		return mss_err_setf(err, MSS_INTERNAL_ERROR, 0, "app message: %s", why);
	o = json_object();
	if (o == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "app message: out of memory");
	put(o, "t", json_string(appmsg_type_name(m->am_type)), &ok);
	if (T(m->am_type) & JOB_T)
		put(o, "job", json_string(m->am_job), &ok);
	else
		put(o, "nonce", json_string(m->am_nonce), &ok);
	switch (m->am_type) {
	case APPMSG_SIGN:
		put(o, "ap", json_string(m->am_ap_name), &ok);
		put(o, "ap_id", json_string(m->am_ap_id), &ok);
		put(o, "key", json_string(m->am_key), &ok);
		put(o, "profile", json_string(m->am_profile), &ok);
		put(o, "pin", json_boolean(m->am_pin), &ok);
		if (m->am_dtbd != NULL)
			put(o, "dtbd", json_string(m->am_dtbd), &ok);
		if (m->am_dtbd_mime[0] != '\0')
			put(o, "dtbd_mime", json_string(m->am_dtbd_mime), &ok);
		put(o, "dtbs", b64(m->am_dtbs, m->am_dtbs_len), &ok);
		put(o, "dtbs_mime", json_string(m->am_dtbs_mime), &ok);
		put(o, "deadline", json_integer((json_int_t)m->am_deadline_ms), &ok);
		put(o, "lang", json_string(m->am_lang), &ok);
		put(o, "event", json_string(m->am_event), &ok);
		put(o, "nospam", json_string(m->am_nospam), &ok);
		break;
	case APPMSG_ANSWER:
		put(o, "status", json_integer(m->am_status), &ok);
		if (m->am_cms != NULL)
			put(o, "cms", b64(m->am_cms, m->am_cms_len), &ok);
		break;
	case APPMSG_ACK:
	case APPMSG_CANCEL:
		put(o, "status", json_integer(m->am_status), &ok);
		break;
	case APPMSG_RECEIPT:
		put(o, "message", json_string(m->am_message), &ok);
		break;
	case APPMSG_KEYGEN:
		put(o, "key", json_string(m->am_key), &ok);
		put(o, "purpose", json_string(m->am_purpose), &ok);
		put(o, "pin", json_boolean(m->am_pin), &ok);
		put(o, "alg", json_string(m->am_alg), &ok);
		a = json_array();
		for (size_t i = 0; a != NULL && i < m->am_nprofiles; i++)
			if (json_array_append_new(a, json_string(m->am_profiles[i])) != 0)
				ok = false;
		put(o, "profiles", a, &ok);
		break;
	case APPMSG_CERT:
		put(o, "key", json_string(m->am_key), &ok);
		put(o, "cert", b64(m->am_der, m->am_der_len), &ok);
		a = json_array();
		for (size_t i = 0; a != NULL && i < m->am_nchain; i++)
			if (json_array_append_new(a, b64(m->am_chain[i], m->am_chain_len[i])) != 0)
				ok = false;
		put(o, "chain", a, &ok);
		break;
	case APPMSG_UNBLOCK:
		put(o, "key", json_string(m->am_key), &ok);
		break;
	case APPMSG_JOB_ANSWER:
		put(o, "status", json_integer(m->am_status), &ok);
		if (m->am_der != NULL)
			put(o, "csr", b64(m->am_der, m->am_der_len), &ok);
		break;
	case APPMSG_JOB_ACK:
		break;
	}
	if (!ok) {
		json_decref(o);
		/* json_string() refuses invalid UTF-8; memory is the other case */
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0,
				   "app message: cannot encode (invalid UTF-8 or memory)");
	}
	n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	s = n > 0 ? malloc(n + 1) : NULL;
	if (s == NULL || json_dumpb(o, s, n, JSON_COMPACT | JSON_SORT_KEYS) != n) {
		free(s);
		json_decref(o);
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "app message: out of memory");
	}
	s[n] = '\0';
	json_decref(o);
	if (n > MSSP_E2E_MAX_PLAIN) { /* cannot happen within the caps above */
		free(s);
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "app message: too long");
	}
	*out = s;
	if (len)
		*len = n;
	return 0;
}
