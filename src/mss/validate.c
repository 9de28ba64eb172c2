/*
 * validate.c - message checks before business logic (see validate.h).
 */
#include "mss/validate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mss/lex.h"
#include "mss/profile.h"
#include "util/limits.h"

/* ---- required fields, through the schema ------------------------------ */

static int
required_walk(const struct mss_type *t, const void *obj, bool json, int depth,
	      struct mss_err *err)
{
	size_t i, k;

	if (depth > MSSP_XML_MAX_DEPTH)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Message nested too deeply");
	for (i = 0; i < t->nfields; i++) {
		const struct mss_field *f = &t->fields[i];
		const void *v = *(void *const *)((const char *)obj + f->off);

		if (v == NULL) {
			if ((f->flags & MSS_F_REQUIRED) && !(json && (f->flags & MSS_F_JOPT)))
				return mss_err_setf(err, MSS_MISSING_PARAM, 0, "Missing %s",
						    f->name ? f->name : f->json);
			continue;
		}
		if (f->sub == NULL)
			continue;
		if (f->flags & MSS_F_LIST) {
			const struct mss_list *l = v;

			for (k = 0; k < l->n; k++)
				if (required_walk(f->sub, l->items[k], json, depth + 1, err))
					return -1;
		} else if (required_walk(f->sub, v, json, depth + 1, err)) {
			return -1;
		}
	}
	return 0;
}

/* ---- small checks ----------------------------------------------------- */

bool
mss_msisdn_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	if (*s == '+')
		s++;
	if (*s < '1' || *s > '9')
		return false;
	for (; *s; s++, n++)
		if (*s < '0' || *s > '9')
			return false;
	return n >= MSSP_MSG_MIN_MSISDN_DIGITS && n <= MSSP_MSG_MAX_MSISDN_DIGITS;
}

static int
check_user(const struct mss_mobile_user *u, bool required, struct mss_err *err)
{
	if (u == NULL || u->msisdn == NULL) {
		if (!required)
			return 0;
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "Missing MSISDN");
	}
	if (!mss_msisdn_valid(u->msisdn))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Illegal msisdn");
	return 0;
}

/* Value of an xs:integer already checked lexically; -1 when negative or
 * too large to be a version. */
static long
int_value(const char *s)
{
	long v = 0;

	if (*s == '-')
		return -1;
	if (*s == '+')
		s++;
	for (; *s; s++) {
		v = v * 10 + (*s - '0');
		if (v > MSSP_MSG_MAX_VERSION)
			return -1;
	}
	return v;
}

static int
check_versions(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_common *c = m->u.common;
	const char *maj = c->major_version, *min = c->minor_version;
	long major, minor;

	if (maj == NULL && min == NULL)
		return 0; /* Kiuru JSON may omit both: defaults 1.1 */
	if (maj == NULL || min == NULL)
		return mss_err_set(err, MSS_INCOMPATIBLE_INTERFACE, 0, "Incomplete version");
	/* xs:integer values, so "01" is 1.  1.1 is ETSI; 1.2 is what Swisscom's
	 * REST clients send; 2.0 is the Kiuru profile query with parameters. */
	major = int_value(maj);
	minor = int_value(min);
	if (major == 1 && (minor == 1 || minor == 2))
		return 0;
	if (major == 2 && minor == 0 && (m->type == MSS_PROFILE_REQ || m->type == MSS_PROFILE_RESP))
		return 0;
	return mss_err_set(err, MSS_INCOMPATIBLE_INTERFACE, 0, "Unsupported message version");
}

static int
check_common(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_ap_info *ai = m->u.common->ap_info;
	long long t;
	bool tz;

	if (check_versions(m, err))
		return -1;
	if (ai == NULL)
		return 0;
	if (ai->ap_trans_id && strlen(ai->ap_trans_id) > MSSP_MSG_MAX_TRANSID)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "AP_TransID too long");
	if (ai->ap_id && ai->ap_id[0] == '\0')
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Empty AP_ID");
	if (ai->instant && (mss_lex_datetime(ai->instant, &t, &tz) != 0 || !tz))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Instant needs a time zone");
	return 0;
}

static int
check_datetime_tz(const char *v, const char *what, struct mss_err *err)
{
	long long t;
	bool tz;

	if (v && (mss_lex_datetime(v, &t, &tz) != 0 || !tz))
		return mss_err_setf(err, MSS_WRONG_PARAM, 0, "%s needs a time zone", what);
	return 0;
}

static int
check_trans_id(const char *id, struct mss_err *err)
{
	if (id && strlen(id) > MSSP_MSG_MAX_TRANSID)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "MSSP_TransID too long");
	return 0;
}

/* ---- what a user is shown (A-08, A-09) -------------------------------- */

/* GSM 03.38 default alphabet (non-ASCII part) and extension table. */
static const unsigned gsm_basic_nonascii[] = {
	0xA3, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0xD8, 0xF8, 0xC5, 0xE5,
	0x394, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E,
	0xC6, 0xE6, 0xDF, 0xC9, 0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF,
	0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
};
static const char gsm_ext_ascii[] = "^{}\\[~]|";

static unsigned
utf8_next(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	unsigned cp;

	if (p[0] < 0x80) {
		cp = p[0];
		*pp = p + 1;
	} else if (p[0] < 0xE0) {
		cp = (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
		*pp = p + 2;
	} else if (p[0] < 0xF0) {
		cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
		*pp = p + 3;
	} else {
		cp = (unsigned)(p[0] & 0x07) << 18 | (unsigned)(p[1] & 0x3F) << 12 |
		     (unsigned)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
		*pp = p + 4;
	}
	return cp;
}

struct cp_range {
	unsigned lo, hi;
};

/* What a user must never be shown (A-09): characters that break or fake
 * lines, reorder text, or are invisible, and code points with no agreed
 * glyph.  Unicode categories Cc, Cf, Zl, Zp, Co, Cn-noncharacters, plus
 * the fillers and joiners that render as nothing. */
static const struct cp_range forbidden_display[] = {
	{ 0x0000, 0x001F },   /* C0, line breaks included: they fake fields */
	{ 0x007F, 0x009F },   /* DEL, C1                                    */
	{ 0x00AD, 0x00AD },   /* soft hyphen                                */
	{ 0x034F, 0x034F },   /* combining grapheme joiner                  */
	{ 0x0600, 0x0605 },   /* Arabic number signs (Cf)                   */
	{ 0x061C, 0x061C },   /* Arabic letter mark                         */
	{ 0x06DD, 0x06DD },   { 0x070F, 0x070F }, { 0x08E2, 0x08E2 },
	{ 0x115F, 0x1160 },   /* Hangul fillers                             */
	{ 0x17B4, 0x17B5 },   /* Khmer invisible vowels                     */
	{ 0x180B, 0x180F },   /* Mongolian selectors and vowel separator    */
	{ 0x200B, 0x200F },   /* zero-width space/joiners, LRM, RLM         */
	{ 0x2028, 0x202E },   /* line/paragraph separators, bidi embeddings */
	{ 0x2060, 0x206F },   /* word joiner, invisible operators, isolates */
	{ 0x3164, 0x3164 },   /* Hangul filler                              */
	{ 0xD800, 0xF8FF },   /* surrogates, private use                    */
	{ 0xFDD0, 0xFDEF },   /* noncharacters                              */
	{ 0xFE00, 0xFE0F },   /* variation selectors                        */
	{ 0xFEFF, 0xFEFF },   /* byte order mark / zero-width no-break      */
	{ 0xFFA0, 0xFFA0 },   /* halfwidth Hangul filler                    */
	{ 0xFFF0, 0xFFFB },   /* unassigned specials, annotation controls   */
	{ 0xFFFE, 0xFFFF },   /* noncharacters                              */
	{ 0x110BD, 0x110BD }, { 0x110CD, 0x110CD },
	{ 0x13430, 0x1343F }, /* Egyptian format controls                   */
	{ 0x1BCA0, 0x1BCA3 }, /* shorthand format controls                  */
	{ 0x1D173, 0x1D17A }, /* musical format controls                    */
	{ 0xE0000, 0xE0FFF }, /* tags, variation selectors supplement       */
	{ 0xF0000, 0x10FFFF }, /* supplementary private use                 */
};

static bool
is_forbidden_display(unsigned cp)
{
	size_t i;

	if ((cp & 0xFFFE) == 0xFFFE)
		return true; /* U+xFFFE / U+xFFFF of every plane */
	for (i = 0; i < sizeof(forbidden_display) / sizeof(forbidden_display[0]); i++)
		if (cp >= forbidden_display[i].lo && cp <= forbidden_display[i].hi)
			return true;
	return false;
}

/* The character rules of displayed text without the length rule (receipts
 * may be longer than one SMS).  0, or -1 with 101 (not UTF-8) or 107. */
static int
display_chars_check(const char *text, struct mss_err *err)
{
	const unsigned char *p = (const unsigned char *)text;

	if (!mss_lex_utf8_valid(text, strlen(text)))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Text is not UTF-8");
	while (*p)
		if (is_forbidden_display(utf8_next(&p)))
			return mss_err_set(err, MSS_INAPPROPRIATE_DATA, 0,
					   "Text contains characters that cannot be displayed safely");
	return 0;
}

static int
gsm_cost(unsigned cp)
{
	size_t i;

	if (cp < 0x80) {
		if (cp == '`')
			return 0;
		if (strchr(gsm_ext_ascii, (int)cp) != NULL)
			return 2;
		return 1;
	}
	if (cp == 0x20AC)
		return 2; /* euro sign: extension table */
	for (i = 0; i < sizeof(gsm_basic_nonascii) / sizeof(gsm_basic_nonascii[0]); i++)
		if (gsm_basic_nonascii[i] == cp)
			return 1;
	return 0;
}

int
mss_display_text_check(const char *text, struct mss_err *err)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t gsm = 0, ucs2 = 0;
	bool all_gsm = true;
	unsigned cp;
	int c;

	if (display_chars_check(text, err) != 0)
		return -1;
	while (*p) {
		cp = utf8_next(&p);
		c = gsm_cost(cp);
		if (c == 0)
			all_gsm = false;
		gsm += (size_t)c;
		ucs2 += cp > 0xFFFF ? 2 : 1;
	}
	if (all_gsm ? gsm > MSSP_MSG_MAX_DTBD_CHARS : ucs2 > MSSP_MSG_MAX_DTBD_UCS2_CHARS)
		return mss_err_set(err, MSS_WRONG_DATA_LENGTH, 0, "Text too long to display");
	return 0;
}

/* ---- DataType --------------------------------------------------------- */

struct hash_type {
	const char *mime;
	size_t len;
};

static const struct hash_type hash_types[] = {
	{ "application/x-sha1", 20 },	{ "application/x-sha224", 28 },
	{ "application/x-sha256", 32 }, { "application/x-sha384", 48 },
	{ "application/x-sha512", 64 },
};

enum data_kind { DATA_TEXT, DATA_HASH, DATA_BINARY, DATA_ENCRYPTED };

/* How a text is shown to the user, if at all. */
enum display {
	SHOW_NONE,  /* signed, not shown (a DTBS with a DTBD beside it)  */
	SHOW_SMS,   /* shown in a prompt: characters and length (A-08/9) */
	SHOW_CHARS, /* shown, no single-prompt length (receipts)         */
};

static int
display_check(const char *text, enum display show, struct mss_err *err)
{
	if (show == SHOW_SMS)
		return mss_display_text_check(text, err);
	if (show == SHOW_CHARS)
		return display_chars_check(text, err);
	return 0;
}

/* MimeType without parameters, compared case-insensitively. */
static bool
mime_is(const char *mime, const char *want)
{
	size_t n = strlen(want);

	return strncasecmp(mime, want, n) == 0 && (mime[n] == '\0' || mime[n] == ';');
}

static bool
encoding_is_base64(const char *enc)
{
	return enc != NULL && strcasecmp(enc, "base64") == 0;
}

static bool
encoding_is_utf8(const char *enc)
{
	return enc == NULL || strcasecmp(enc, "UTF-8") == 0;
}

/* text/plain sent base64-encoded: the decoded text is what the user sees
 * (when displayed), so it passes exactly the checks of plain text. */
static int
check_base64_text(const struct mss_data *d, const char *what, enum display display, struct mss_err *err)
{
	unsigned char *buf;
	long n;
	int rc = 0;

	buf = malloc(MSSP_MSG_MAX_DTBS + 1);
	if (buf == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
	n = mss_lex_base64_decode(d->data, buf, MSSP_MSG_MAX_DTBS);
	if (n < 0) {
		rc = strlen(d->data) / 4 * 3 > MSSP_MSG_MAX_DTBS + 2
			     ? mss_err_setf(err, MSS_WRONG_DATA_LENGTH, 0, "%s too long", what)
			     : mss_err_setf(err, MSS_WRONG_PARAM, 0, "Invalid base64 in %s", what);
	} else if (n == 0) {
		rc = mss_err_setf(err, MSS_MISSING_PARAM, 0, "Empty %s", what);
	} else {
		buf[n] = '\0';
		if (memchr(buf, '\0', (size_t)n) != NULL || !mss_lex_utf8_valid((char *)buf, (size_t)n))
			rc = mss_err_setf(err, MSS_WRONG_PARAM, MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
					  "%s is not UTF-8 text", what);
		else
			rc = display_check((char *)buf, display, err);
	}
	free(buf);
	return rc;
}

static int
check_data(const struct mss_data *d, const char *what, enum display display, bool allow_hash,
	   bool allow_encrypted, struct mss_err *err)
{
	enum data_kind kind = DATA_TEXT;
	size_t hash_len = 0, i;
	long n;

	if (d->data == NULL)
		return mss_err_setf(err, MSS_MISSING_PARAM, 0, "Missing %s data", what);
	if (d->mime_type != NULL) {
		if (mime_is(d->mime_type, "text/plain")) {
			kind = DATA_TEXT;
		} else if (mime_is(d->mime_type, "application/octet-stream")) {
			kind = DATA_BINARY;
		} else if (allow_encrypted && mime_is(d->mime_type, "application/alauda-rsamessage")) {
			kind = DATA_ENCRYPTED;
		} else {
			kind = DATA_HASH;
			for (i = 0; i < sizeof(hash_types) / sizeof(hash_types[0]); i++)
				if (mime_is(d->mime_type, hash_types[i].mime))
					hash_len = hash_types[i].len;
			if (hash_len == 0 || !allow_hash)
				return mss_err_setf(err, MSS_WRONG_PARAM,
						    MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
						    "Unsupported MimeType of %s", what);
		}
	}
	if (kind == DATA_TEXT && d->encoding != NULL && encoding_is_base64(d->encoding))
		return check_base64_text(d, what, display, err);
	if (kind == DATA_TEXT) {
		if (!encoding_is_utf8(d->encoding))
			return mss_err_setf(err, MSS_WRONG_PARAM,
					    MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
					    "Unsupported Encoding of %s", what);
		if (strlen(d->data) > MSSP_MSG_MAX_DTBS)
			return mss_err_setf(err, MSS_WRONG_DATA_LENGTH, 0, "%s too long", what);
		if (d->data[0] == '\0')
			return mss_err_setf(err, MSS_MISSING_PARAM, 0, "Empty %s", what);
		return display_check(d->data, display, err);
	}
	if (!encoding_is_base64(d->encoding))
		return mss_err_setf(err, MSS_WRONG_PARAM, MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
				    "%s needs base64 Encoding", what);
	n = mss_lex_base64_decode(d->data, NULL, MSSP_MSG_MAX_DTBS);
	if (n < 0) {
		/* distinguish "too long" from "not base64" */
		if (strlen(d->data) / 4 * 3 > MSSP_MSG_MAX_DTBS + 2)
			return mss_err_setf(err, MSS_WRONG_DATA_LENGTH, 0, "%s too long", what);
		return mss_err_setf(err, MSS_WRONG_PARAM, 0, "Invalid base64 in %s", what);
	}
	if (n == 0)
		return mss_err_setf(err, MSS_MISSING_PARAM, 0, "Empty %s", what);
	if (kind == DATA_HASH && (size_t)n != hash_len)
		return mss_err_setf(err, MSS_WRONG_DATA_LENGTH, 0,
				    "%s length does not match its hash algorithm", what);
	return 0;
}

/* ---- AdditionalServices ------------------------------------------------ */

#define AS_ETSI "http://uri.etsi.org/TS102204/v1.1.2#"
#define AS_FICOM "http://mss.ficom.fi/TS102204/v1.0.0#"

enum as_payload { AS_NONE, AS_USERLANG, AS_EVENTID, AS_NOSPAM, AS_PERSONID, AS_DISPLAYNAME };

struct known_service {
	const char *uri;
	enum as_payload payload;
};

/* protocol.md §5.  Whether the platform offers a service to an AP is the
 * AE's decision (104); an URI nobody defines is refused here (A-19). */
static const struct known_service known_services[] = {
	{ AS_ETSI "validate", AS_NONE },
	{ AS_ETSI "timestamp", AS_NONE },
	{ AS_ETSI "archive", AS_NONE },
	{ AS_FICOM "userLang", AS_USERLANG },
	{ AS_FICOM "eventId", AS_EVENTID },
	{ AS_FICOM "noSpam", AS_NOSPAM },
	{ AS_FICOM "personIdentity", AS_PERSONID },
	{ AS_FICOM "validate", AS_NONE },
	{ AS_FICOM "displayName", AS_DISPLAYNAME },
	{ AS_FICOM "timestamp", AS_NONE },
	{ "http://www.methics.fi/KiuruMSSP/v3.0.0#POP", AS_NONE },
	{ "http://www.methics.fi/KiuruMSSP/v5.0.0#role", AS_NONE },
	{ "http://www.methics.fi/KiuruMSSP/v5.0.0#signingCertificate", AS_NONE },
	{ "http://www.methics.fi/KiuruMSSP/v5.0.0#batchsign", AS_NONE },
	{ "http://www.methics.fi/KiuruMSSP/v5.0.0#docsign", AS_NONE },
	{ "http://mid.swisscom.ch/as#subscriberInfo", AS_NONE },
	{ "http://mid.swisscom.ch/as#geofencing", AS_NONE },
	{ "http://mid.swisscom.ch/as#app2app", AS_NONE },
};

static bool
ascii_letters(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return false;
	return n >= min && n <= max;
}

static int
check_services(const struct mss_list *l, struct mss_err *err)
{
	size_t i, j, k;

	for (i = 0; l && i < l->n; i++) {
		const struct mss_service *s = l->items[i];
		const struct known_service *ks = NULL;
		bool extra;

		for (k = 0; k < sizeof(known_services) / sizeof(known_services[0]); k++)
			if (strcmp(known_services[k].uri, s->description) == 0)
				ks = &known_services[k];
		if (ks == NULL)
			return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_UNKNOWN_ADDITIONALSERVICE,
					   "Unknown additional service");
		for (j = 0; j < i; j++)
			if (strcmp(((const struct mss_service *)l->items[j])->description,
				   s->description) == 0)
				return mss_err_set(err, MSS_WRONG_PARAM, 0,
						   "Additional service listed twice");
		/* A payload must belong to its service: no smuggled fields. */
		extra = (s->user_lang && ks->payload != AS_USERLANG) ||
			(s->event_id && ks->payload != AS_EVENTID) ||
			(s->nospam && ks->payload != AS_NOSPAM) ||
			(s->attribute_query && ks->payload != AS_PERSONID) ||
			(s->display_name && ks->payload != AS_DISPLAYNAME) || s->session_id;
		if (extra)
			return mss_err_set(err, MSS_WRONG_PARAM, 0,
					   "Additional service with unexpected content");
		switch (ks->payload) {
		case AS_USERLANG:
			if (s->user_lang == NULL || !ascii_letters(s->user_lang, 2, 2))
				return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid UserLang");
			break;
		case AS_EVENTID:
			if (s->event_id == NULL || strlen(s->event_id) > MSSP_MSG_MAX_EVENTID ||
			    mss_display_text_check(s->event_id, err))
				return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid EventID");
			break;
		case AS_NOSPAM:
			if (s->nospam == NULL || s->nospam->code == NULL || s->nospam->code[0] == '\0')
				return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_MISSING_NOSPAMCODE,
						   "Missing no-spam code");
			if (strlen(s->nospam->code) > MSSP_MSG_MAX_NOSPAM ||
			    (s->nospam->verify && strcmp(s->nospam->verify, "yes") &&
			     strcmp(s->nospam->verify, "no")))
				return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_INVALID_NOSPAMCODE,
						   "Invalid no-spam code");
			break;
		case AS_DISPLAYNAME:
			if (s->display_name == NULL || strlen(s->display_name) < MSSP_MSG_MIN_DISPLAYNAME ||
			    strlen(s->display_name) > MSSP_MSG_MAX_DISPLAYNAME ||
			    mss_display_text_check(s->display_name, err))
				return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid DisplayName");
			break;
		default:
			break;
		}
	}
	return 0;
}

/* ---- per message ------------------------------------------------------ */

static const char *const supported_formats[] = {
	"http://uri.etsi.org/TS102204/v1.1.2#PKCS7",
	"http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature",
	"http://uri.etsi.org/TS102204/v1.1.2#PKCS1",
	"http://mss.ficom.fi/TS102204/v1.0.0#PKCS1",
	"http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1",
};

static int
check_signature_req(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_signature_req *r = m->u.sig_req;
	const char *mode = r->messaging_mode;
	struct mss_profile prof;
	char perr[64];
	size_t i;
	bool ok;

	if (strcmp(mode, "synch") && strcmp(mode, "asynchClientServer") &&
	    strcmp(mode, "asynchServerServer"))
		return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_ILLEGAL_MESSAGINGMODE,
				   "Unknown MessagingMode");
	if (r->timeout) {
		/* positiveInteger was checked; compare as text to avoid overflow */
		const char *t = r->timeout;
		unsigned long secs = 0;

		while (*t == '+' || *t == '0')
			t++;
		for (i = 0; i < 7 && t[i]; i++)
			secs = secs * 10 + (unsigned long)(t[i] - '0');
		if (t[i] != '\0' || secs == 0 || secs > MSSP_MSG_MAX_TIMEOUT_S)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "TimeOut out of range");
	}
	if (check_datetime_tz(r->validity_date, "ValidityDate", err))
		return -1;
	if (check_user(r->mobile_user, true, err))
		return -1;
	if (check_data(r->dtbs, "DataToBeSigned", r->dtbd == NULL ? SHOW_SMS : SHOW_NONE, true, false, err))
		return -1;
	if (r->dtbd != NULL) {
		if (r->dtbd->mime_type && !mime_is(r->dtbd->mime_type, "text/plain"))
			return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
					   "DataToBeDisplayed must be text");
		if (check_data(r->dtbd, "DataToBeDisplayed", SHOW_SMS, false, false, err))
			return -1;
		if (r->dtbd->encoding && encoding_is_base64(r->dtbd->encoding))
			return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING,
					   "DataToBeDisplayed must be text");
	}
	if (r->signature_profile &&
	    mss_profile_parse(r->signature_profile, &prof, perr, sizeof(perr)) != 0)
		return mss_err_set(err, MSS_UNSUPPORTED_PROFILE, 0, "Unknown signature profile");
	if (r->mss_format) {
		ok = false;
		for (i = 0; i < sizeof(supported_formats) / sizeof(supported_formats[0]); i++)
			if (strcmp(r->mss_format, supported_formats[i]) == 0)
				ok = true;
		if (!ok)
			return mss_err_set(err, MSS_WRONG_PARAM, MSS_SUB_MSS_FORMAT_UNSUPPORTED,
					   "MSS_Format not supported");
	}
	if (r->signature_profile_comparison &&
	    mss_profile_cmp_parse(r->signature_profile_comparison) == MSS_CMP_INVALID)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid SignatureProfileComparison");
	return check_services(r->additional_services, err);
}

static int
check_profile_params(const char *params, struct mss_err *err)
{
	static const char *const known[] = { "sscds", "state", "certs", "pinstatus",
					     "rcstatus", "aastatus", "carddetails" };
	const char *p = params, *e;
	size_t i, n;
	bool ok;

	while (*p) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e && *e != ' '; e++)
			;
		n = (size_t)(e - p);
		ok = false;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strlen(known[i]) == n && strncmp(known[i], p, n) == 0)
				ok = true;
		if (!ok)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Unknown profile query parameter");
		p = e;
	}
	return 0;
}

static int
check_receipt_req(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_receipt_req *r = m->u.receipt_req;
	const struct mss_receipt_ext *x;

	if (check_trans_id(r->mssp_trans_id, err) || check_user(r->mobile_user, false, err))
		return -1;
	/* A receipt is shown on the phone: the character rules of displayed
	 * text (decoded first when sent base64), with its own length cap. */
	if (r->message && r->message->data && strlen(r->message->data) > MSSP_MSG_MAX_RECEIPT)
		return mss_err_set(err, MSS_WRONG_DATA_LENGTH, 0, "Receipt message too long");
	if (r->message && check_data(r->message, "Message", SHOW_CHARS, false, true, err))
		return -1;
	x = r->status && r->status->detail ? r->status->detail->receipt_request_ext : NULL;
	if (x && strcmp(x->receipt_messaging_mode, "synch") && strcmp(x->receipt_messaging_mode, "asynch"))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid ReceiptMessagingMode");
	return 0;
}

static int
check_registration_req(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_registration_req *r = m->u.reg_req;
	size_t i, k;
	int n;

	if (r->registration_input == NULL && r->use_case == NULL)
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "Missing RegistrationInput");
	if (r->use_case && (r->use_case->name == NULL || r->use_case->name[0] == '\0'))
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "Missing UseCase name");
	if (r->registration_input && r->registration_input->n == 0)
		return mss_err_set(err, MSS_MISSING_PARAM, 0, "Missing RegistrationInput");
	for (i = 0; r->registration_input && i < r->registration_input->n; i++) {
		const struct mss_mreg_input *in = r->registration_input->items[i];
		const struct mss_mreg_target *t = in->target;

		n = !!t->mobile_user + !!t->sim_card + !!t->entity_user;
		if (n != 1)
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Target needs exactly one subject");
		if (t->mobile_user && check_user(t->mobile_user, false, err))
			return -1;
		if (t->sim_card && t->sim_card->msisdn && !mss_msisdn_valid(t->sim_card->msisdn))
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Illegal msisdn");
		for (k = 0; in->request && k < in->request->n; k++) {
			const struct mss_mreg_request *q = in->request->items[k];

			n = !!q->wireless + !!q->certification + !!q->provisioning + !!q->entity_user;
			if (n != 1)
				return mss_err_set(err, MSS_WRONG_PARAM, 0,
						   "MregRequest needs exactly one operation");
		}
	}
	return 0;
}

static int
check_signature(const struct mss_signature *s, struct mss_err *err)
{
	int n;

	if (s == NULL)
		return 0;
	n = !!s->xml_signature + !!s->base64_signature + !!s->pkcs1;
	if (n != 1)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "MSS_Signature needs exactly one form");
	return 0;
}

static int
check_status(const struct mss_status *st, struct mss_err *err)
{
	long v = 0;
	const char *p;

	if (st == NULL || st->code == NULL || st->code->value == NULL)
		return 0;
	for (p = st->code->value; *p; p++) {
		if (*p < '0' || *p > '9' || v > 9999) /* codes have 3 or 4 digits */
			return mss_err_set(err, MSS_WRONG_PARAM, 0, "Unknown status code");
		v = v * 10 + (*p - '0');
	}
	if (mss_status_lookup((int)v) == NULL)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Unknown status code");
	return 0;
}

int
mss_validate(const struct mss_msg *m, struct mss_err *err)
{
	const struct mss_msg_info *mi = mss_msg_info(m->type);
	bool json = m->soap == MSS_SOAP_NONE;

	mss_err_clear(err);
	if (m->type == MSS_FAULT) {
		if (m->u.fault->code_value == NULL)
			return mss_err_set(err, MSS_MISSING_PARAM, 0, "Fault without code");
		return 0;
	}
	if (required_walk(mi->type, m->u.any, json, 0, err))
		return -1;
	if (check_common(m, err))
		return -1;
	switch (m->type) {
	case MSS_SIGNATURE_REQ:
		return check_signature_req(m, err);
	case MSS_STATUS_REQ:
		if (check_trans_id(m->u.status_req->mssp_trans_id, err))
			return -1;
		return check_user(m->u.status_req->mobile_user, false, err);
	case MSS_RECEIPT_REQ:
		return check_receipt_req(m, err);
	case MSS_PROFILE_REQ:
		if (check_user(m->u.profile_req->mobile_user, true, err))
			return -1;
		return m->u.profile_req->params ? check_profile_params(m->u.profile_req->params, err) : 0;
	case MSS_REGISTRATION_REQ:
		return check_registration_req(m, err);
	case MSS_HANDSHAKE_REQ:
		return 0;
	case MSS_SIGNATURE_RESP:
		return check_signature(m->u.sig_resp->signature, err) ||
		       check_status(m->u.sig_resp->status, err) ? -1 : 0;
	case MSS_STATUS_RESP:
		return check_signature(m->u.status_resp->signature, err) ||
		       check_status(m->u.status_resp->status, err) ? -1 : 0;
	case MSS_RECEIPT_RESP:
		return check_status(m->u.receipt_resp->status, err);
	case MSS_PROFILE_RESP:
		return check_status(m->u.profile_resp->status, err);
	case MSS_REGISTRATION_RESP:
		return check_status(m->u.reg_resp->status, err);
	default:
		return 0;
	}
}
