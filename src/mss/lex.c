#include "mss/lex.h"

#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

#include "util/limits.h"

static bool
is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

size_t
mss_lex_normalize(enum mss_xtype xt, char *s)
{
	size_t len = strlen(s), i, j;

	if (xt == MSS_X_STRING)
		return len;
	if (xt == MSS_X_BASE64) {
		for (i = j = 0; i < len; i++)
			if (!is_xml_space(s[i]))
				s[j++] = s[i];
		s[j] = '\0';
		return j;
	}
	for (i = 0; i < len && is_xml_space(s[i]); i++)
		;
	for (j = len; j > i && is_xml_space(s[j - 1]); j--)
		;
	memmove(s, s + i, j - i);
	s[j - i] = '\0';
	return j - i;
}

bool
mss_lex_utf8_valid(const char *str, size_t len)
{
	return utf8_valid(str, len);
}

bool
mss_lex_has_controls(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	for (; *s; s++) {
		if (*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
			return true;
		if (*s == 0x7F)
			return true;
		if (*s == 0xC2 && s[1] >= 0x80 && s[1] <= 0x9F)
			return true;
		/* U+FFFE and U+FFFF are not XML characters: JSON could carry
		 * them, SOAP could not (bad-inputs J-08, J-10). */
		if (*s == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
			return true;
	}
	return false;
}

static int
check_integer(const char *s, bool positive)
{
	const char *p = s;
	bool nonzero = false;

	if (*p == '+' || (!positive && *p == '-'))
		p++;
	if (!is_digit(*p))
		return -1;
	for (; *p; p++) {
		if (!is_digit(*p))
			return -1;
		if (*p != '0')
			nonzero = true;
	}
	if (p - s > MSSP_MSG_MAX_INT_DIGITS)
		return -1; /* nobody needs a 33-digit version or TimeOut */
	return positive && !nonzero ? -1 : 0;
}

/* ASCII only: NCNames here are transaction identifiers (AP_TransID,
 * MSSP_TransID), keys of de-duplication and log lines, where look-alike,
 * invisible or bidi characters must not get in (bad-inputs X-18). */
static bool
is_name_char(unsigned char c, bool first)
{
	if (c >= 0x80)
		return false;
	if (is_alpha((char)c) || c == '_')
		return true;
	return !first && (is_digit((char)c) || c == '-' || c == '.');
}

static int
check_ncname(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!is_name_char(*p, true))
		return -1;
	for (p++; *p; p++)
		if (!is_name_char(*p, false))
			return -1;
	return 0;
}

static int
num(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static long long
days_from_civil(long long y, int m, int d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01. */
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
mss_lex_datetime(const char *s, long long *epoch, bool *has_tz)
{
	int y, mo, d, h, mi, sec, th, tm, mdays;
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p;
	long long t;

	/* YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]; years 0001..9999 only. */
	if (strlen(s) < 19 || num(s, 4, &y) || s[4] != '-' || num(s + 5, 2, &mo) ||
	    s[7] != '-' || num(s + 8, 2, &d) || s[10] != 'T' || num(s + 11, 2, &h) ||
	    s[13] != ':' || num(s + 14, 2, &mi) || s[16] != ':' || num(s + 17, 2, &sec))
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 24 || mi > 59 || sec > 59)
		return -1;
	mdays = dim[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
	if (d > mdays || (h == 24 && (mi || sec)))
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return -1;
		while (is_digit(*p))
			p++;
	}
	t = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec;
	*has_tz = false;
	if (*p == 'Z') {
		*has_tz = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		if (num(p + 1, 2, &th) || p[3] != ':' || num(p + 4, 2, &tm) || th > 14 || tm > 59)
			return -1;
		*has_tz = true;
		t += (*p == '+' ? -1 : 1) * (th * 3600LL + tm * 60LL);
		p += 6;
	}
	if (*p != '\0')
		return -1;
	*epoch = t;
	return 0;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
mss_lex_base64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t len = strlen(s), i, o = 0;
	int v[4], k, pad;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=') {
				/* padding only in the last group, last one or two */
				if (i + 4 != len || k < 2)
					return -1;
				pad++;
				v[k] = 0;
			} else {
				if (pad)
					return -1;
				v[k] = b64_value(s[i + k]);
				if (v[k] < 0)
					return -1;
			}
		}
		/* Non-canonical trailing bits are refused: strict decoding. */
		if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
			return -1;
		if (o + 3 - (size_t)pad > cap)
			return -1;
		if (out == NULL) {
			o += 3 - (size_t)pad; /* validate and count only */
			continue;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	return (long)o;
}

/* One notion of valid base64 for the lexical check and the decoder:
 * canonical trailing bits included, so a value has one encoding. */
static int
check_base64(const char *s)
{
	return mss_lex_base64_decode(s, NULL, SIZE_MAX) < 0 ? -1 : 0;
}

static int
check_uri(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	/* xs:anyURI is nearly anything; we refuse what no URI may hold. */
	for (; *p; p++)
		if (*p <= 0x20 || *p == 0x7F || *p == '<' || *p == '>' || *p == '"' ||
		    *p == '\\' || *p == '^' || *p == '`' || *p == '{' || *p == '|' || *p == '}')
			return -1;
	return 0;
}

int
mss_lex_check(enum mss_xtype xt, const char *s)
{
	long long t;
	bool tz;

	if (mss_lex_has_controls(s))
		return -1;
	switch (xt) {
	case MSS_X_STRING:
		return 0;
	case MSS_X_INTEGER:
		return check_integer(s, false);
	case MSS_X_POSINT:
		return check_integer(s, true);
	case MSS_X_BOOLEAN:
		return strcmp(s, "true") == 0 || strcmp(s, "false") == 0 ||
		       strcmp(s, "1") == 0 || strcmp(s, "0") == 0 ? 0 : -1;
	case MSS_X_NCNAME:
		return check_ncname(s);
	case MSS_X_ID:
		return *s != '\0' && check_uri(s) == 0 ? 0 : -1;
	case MSS_X_DATETIME:
		return mss_lex_datetime(s, &t, &tz);
	case MSS_X_ANYURI:
		return check_uri(s);
	case MSS_X_BASE64:
		return check_base64(s);
	case MSS_X_MSGMODE:
		return strcmp(s, "synch") == 0 || strcmp(s, "asynchClientServer") == 0 ||
		       strcmp(s, "asynchServerServer") == 0 ? 0 : -1;
	}
	return -1;
}

int
mss_lex_check_field(enum mss_xtype xt, char *s, bool lenient_base64)
{
	mss_lex_normalize(xt, s);
	if (xt == MSS_X_BASE64 && lenient_base64)
		return mss_lex_check(MSS_X_STRING, s);
	return mss_lex_check(xt, s);
}
