/*
 * profile.c - signature profiles: parse, order, compare, select.
 *
 * See profile.h for the API and docs/internals/profile.md for the grammar
 * and the reasons behind every ordering and matching rule.
 *
 * Design notes:
 *  - No allocation on the parse/compare path: the struct is fixed-size and
 *    self-contained, so the parser cannot leak and a profile can be copied.
 *  - Error texts are static strings only.  The input is never echoed: it is
 *    attacker-controlled and error texts end up in logs and SOAP faults.
 *  - Every rejection happens before anything is written as valid; *out is
 *    zeroed on failure, and a zeroed profile never matches (pr_valid).
 */
#include "mss/profile.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util/hex.h"

/* Parameter offsets are uint16_t and NO_VALUE is UINT16_MAX. */
_Static_assert(MSSP_PROFILE_MAX_URI < UINT16_MAX,
	       "profile pool offsets must fit uint16_t");

/* Longest operation/LoA/SSCD token we look at: "loa" digit "." extension. */
#define TOKEN_MAX (4 + 1 + MSSP_PROFILE_MAX_LOA_EXT)

const struct mss_profile_alias mss_profile_demo_aliases[] = {
	/* Laverca's defaults (Kiuru demo): authentication and signing. */
	{ "http://alauda.mobi/digitalSignature", "mss::authn:loa3" },
	{ "http://alauda.mobi/nonRepudiation", "mss::sign:loa3" },
	/* Swisscom clients' defaults.  The LoA4 names are mapped to loa3 on
	 * purpose: the demo users hold loa3 keys only, and the point of these
	 * aliases is that unmodified clients work against the demo.  A
	 * production configuration must map them to loa4 profiles. */
	{ "http://mid.swisscom.ch/MID/v1/AuthProfile1", "mss::authn:loa3" },
	{ "http://mid.swisscom.ch/Any-LoA4", "mss::authn:loa3" },
	{ "http://mid.swisscom.ch/Device-LoA4", "mss::authn:loa3" },
};
const size_t mss_profile_demo_aliases_count =
	sizeof(mss_profile_demo_aliases) / sizeof(mss_profile_demo_aliases[0]);

/* Indexed by enum mss_profile_op. */
static const char *const op_names[] = {
	[MSS_PROFILE_OP_ANY] = "any",
	[MSS_PROFILE_OP_SIGN] = "sign",
	[MSS_PROFILE_OP_AUTHN] = "authn",
	[MSS_PROFILE_OP_ENCRYPT] = "encrypt",
	[MSS_PROFILE_OP_POP] = "pop",
	[MSS_PROFILE_OP_POPO] = "popo",
	[MSS_PROFILE_OP_CONSENT] = "consent",
	[MSS_PROFILE_OP_ANONYMOUS] = "anonymous",
	[MSS_PROFILE_OP_DIGEST] = "digest",
};
#define OP_COUNT (sizeof(op_names) / sizeof(op_names[0]))

/* Indexed by enum mss_sscd. */
static const char *const sscd_names[] = {
	[MSS_SSCD_ANY] = "any",
	[MSS_SSCD_APP] = "app",
	[MSS_SSCD_SERVER] = "server",
	[MSS_SSCD_SE] = "se",
	[MSS_SSCD_SIM] = "sim",
};
#define SSCD_COUNT (sizeof(sscd_names) / sizeof(sscd_names[0]))

/*
 * Device strength.  A phone-app keystore is the weakest (software on a
 * general-purpose OS); a server-side key in an HSM that the user unlocks
 * from the phone is above it (the key never leaves certified hardware, but
 * sole control rests on the activation protocol); a SIM or secure element
 * is a certified SSCD in the user's hands, the strongest.  SIM and SE are
 * the same class of device, so neither is "better" than the other.
 */
static const int sscd_strength[] = {
	[MSS_SSCD_ANY] = 0,
	[MSS_SSCD_APP] = 1,
	[MSS_SSCD_SERVER] = 2,
	[MSS_SSCD_SE] = 3,
	[MSS_SSCD_SIM] = 3,
};

/* State of one parse: where the next parameter text goes in the pool. */
struct parse_ctx {
	struct mss_profile *pc_out;
	size_t pc_pool_used;
	char *pc_err;
	size_t pc_errlen;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* "<what> <where>", both static strings. */
static void set_err2(char *err, size_t errlen, const char *what,
		     const char *where)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s in %s", what, where);
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 3986 unreserved. */
static bool is_unreserved(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Raw characters allowed in a parameter value: unreserved plus the
 * sub-delims and gen-delims that cannot be confused with our separators
 * (not '&', '=', '?', '#', and not '%' which starts an escape). */
static bool is_value_char(unsigned char c)
{
	return is_unreserved(c) || (c != '\0' && strchr(":@/+,;!$'()*", c) != NULL);
}

/* Case-insensitive prefix test, ASCII. */
static bool has_prefix_ci(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	if (n < pl)
		return false;
	for (size_t i = 0; i < pl; i++)
		if (lower((unsigned char)s[i]) != prefix[i])
			return false;
	return true;
}

static bool equal_ci(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && has_prefix_ci(s, n, word);
}

/* Empty element or the literal "any" (any case) both mean "any". */
static bool is_any(const char *s, size_t n)
{
	return n == 0 || equal_ci(s, n, "any");
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF.  Decoded text goes into JSON and logs, where invalid UTF-8 is
 * either refused (jansson) or a confusion vector.
 */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t more;
		unsigned lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;      /* overlong */
			else if (c == 0xed)
				hi = 0x9f;      /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;      /* overlong */
			else if (c == 0xf4)
				hi = 0x8f;      /* > U+10FFFF */
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			unsigned char cc = s[i + k];

			if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xbf))
				return false;
		}
		i += more + 1;
	}
	return true;
}

/*
 * Percent-decode s[0..n) into dst (cap bytes including the NUL).  Raw bytes
 * must pass raw_ok; decoded bytes must not be controls (C0, DEL) and the
 * result must be UTF-8.  `where` names the element for the error text.
 */
static int pct_decode(const char *s, size_t n, bool (*raw_ok)(unsigned char),
		      char *dst, size_t cap, size_t *dlen, const char *where,
		      char *err, size_t errlen)
{
	size_t o = 0;

	if (cap == 0) {
		set_err2(err, errlen, "text too long", where);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (n - i < 3 || (h = hex_digit(s[i + 1])) < 0 ||
			    (l = hex_digit(s[i + 2])) < 0) {
				set_err2(err, errlen, "invalid percent-escape", where);
				return -1;
			}
			c = (unsigned char)(h * 16 + l);
			i += 2;
			if (c < 0x20 || c == 0x7f) {
				set_err2(err, errlen, "encoded control character",
					 where);
				return -1;
			}
		} else if (!raw_ok(c)) {
			set_err2(err, errlen, "invalid character", where);
			return -1;
		}
		if (o + 1 >= cap) {
			set_err2(err, errlen, "text too long", where);
			return -1;
		}
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	if (!utf8_valid((const unsigned char *)dst, o)) {
		set_err2(err, errlen, "invalid UTF-8", where);
		return -1;
	}
	*dlen = o;
	return 0;
}

static int parse_brand(const char *s, size_t n, struct mss_profile *out,
		       char *err, size_t errlen)
{
	size_t dlen;

	if (is_any(s, n))
		return 0;
	if (pct_decode(s, n, is_unreserved, out->pr_brand,
		       sizeof(out->pr_brand), &dlen, "brand", err, errlen) < 0)
		return -1;
	/* Brands are DNS-like names: compare case-insensitively by storing
	 * them lowercased (ASCII only; UTF-8 bytes are left alone). */
	for (size_t i = 0; i < dlen; i++)
		out->pr_brand[i] = (char)lower((unsigned char)out->pr_brand[i]);
	/* "%61ny" is still "any": one spelling per meaning keeps the
	 * canonical form unique. */
	if (strcmp(out->pr_brand, "any") == 0)
		out->pr_brand[0] = '\0';
	return 0;
}

/*
 * Copy an operation/LoA/SSCD element lowercased into tok.  These are plain
 * tokens: no percent-escapes, only letters, digits, '.', '-', '_'.
 */
static int get_token(const char *s, size_t n, char *tok, size_t cap,
		     const char *where, char *err, size_t errlen)
{
	if (n >= cap) {
		set_err2(err, errlen, "element too long", where);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '.' && c != '-' && c != '_') {
			set_err2(err, errlen, "invalid character", where);
			return -1;
		}
		tok[i] = (char)lower(c);
	}
	tok[n] = '\0';
	return 0;
}

static int parse_op(const char *s, size_t n, struct mss_profile *out,
		    char *err, size_t errlen)
{
	char tok[TOKEN_MAX + 1];

	if (is_any(s, n))
		return 0;
	if (get_token(s, n, tok, sizeof(tok), "operation", err, errlen) < 0)
		return -1;
	/* Strict: an operation we do not know can never be matched safely. */
	for (size_t i = 1; i < OP_COUNT; i++) {
		if (strcmp(tok, op_names[i]) == 0) {
			out->pr_op = (enum mss_profile_op)i;
			return 0;
		}
	}
	set_err(err, errlen, "unknown operation in mss: profile");
	return -1;
}

/* Extension: dot-separated non-empty labels of [a-z0-9_-]. */
static bool loa_ext_valid(const char *e)
{
	bool label_start = true;

	if (*e == '\0')
		return false;
	for (; *e != '\0'; e++) {
		if (*e == '.') {
			if (label_start)
				return false;
			label_start = true;
		} else {
			label_start = false;
		}
	}
	return !label_start;
}

static int parse_loa(const char *s, size_t n, struct mss_profile *out,
		     char *err, size_t errlen)
{
	char tok[TOKEN_MAX + 1];

	if (is_any(s, n))
		return 0;
	if (get_token(s, n, tok, sizeof(tok), "LoA", err, errlen) < 0)
		return -1;
	if (strncmp(tok, "loa", 3) != 0 || tok[3] < '2' || tok[3] > '4' ||
	    (tok[4] != '\0' && tok[4] != '.')) {
		set_err(err, errlen, "unsupported LoA in mss: profile");
		return -1;
	}
	out->pr_loa = (enum mss_loa)(tok[3] - '0');
	if (tok[4] == '.') {
		const char *ext = tok + 5;
		size_t elen = strlen(ext);

		if (!loa_ext_valid(ext)) {
			set_err(err, errlen, "invalid LoA extension");
			return -1;
		}
		if (elen > MSSP_PROFILE_MAX_LOA_EXT) {
			set_err(err, errlen, "LoA extension too long");
			return -1;
		}
		memcpy(out->pr_loa_ext, ext, elen + 1);
	}
	return 0;
}

static int parse_sscd(const char *s, size_t n, struct mss_profile *out,
		      char *err, size_t errlen)
{
	char tok[TOKEN_MAX + 1];

	if (is_any(s, n))
		return 0;
	if (get_token(s, n, tok, sizeof(tok), "SSCD", err, errlen) < 0)
		return -1;
	/* "UICC" is what the IANA registration's example uses for a SIM. */
	if (strcmp(tok, "uicc") == 0) {
		out->pr_sscd = MSS_SSCD_SIM;
		return 0;
	}
	for (size_t i = 1; i < SSCD_COUNT; i++) {
		if (strcmp(tok, sscd_names[i]) == 0) {
			out->pr_sscd = (enum mss_sscd)i;
			return 0;
		}
	}
	set_err(err, errlen, "unknown SSCD in mss: profile");
	return -1;
}

/* Decode one name or value into the pool; returns its offset or -1. */
static int pool_add(struct parse_ctx *pc, const char *s, size_t n,
		    bool (*raw_ok)(unsigned char), const char *where)
{
	struct mss_profile *p = pc->pc_out;
	size_t dlen, off = pc->pc_pool_used;

	if (pct_decode(s, n, raw_ok, p->pr_pool + off,
		       sizeof(p->pr_pool) - off, &dlen, where, pc->pc_err,
		       pc->pc_errlen) < 0)
		return -1;
	pc->pc_pool_used = off + dlen + 1;
	return (int)off;
}

/*
 * Parse one ?query or #fragment section: a non-empty '&'-list of non-empty
 * items, each `name` or `name=value`.
 */
static int parse_params(struct parse_ctx *pc, const char *s, size_t n,
			bool fragment)
{
	struct mss_profile *p = pc->pc_out;
	const char *end = s + n;
	const char *where = fragment ? "fragment" : "query";

	if (n == 0) {
		set_err2(pc->pc_err, pc->pc_errlen, "empty section", where);
		return -1;
	}
	for (const char *it = s;;) {
		const char *amp = memchr(it, '&', (size_t)(end - it));
		const char *ie = amp != NULL ? amp : end;
		const char *eq = memchr(it, '=', (size_t)(ie - it));
		const char *ne = eq != NULL ? eq : ie;
		struct mss_profile_param *pp;
		int off;

		if (ie == it) {
			set_err2(pc->pc_err, pc->pc_errlen, "empty parameter", where);
			return -1;
		}
		if (ne == it) {
			set_err2(pc->pc_err, pc->pc_errlen, "empty parameter name",
				 where);
			return -1;
		}
		if (p->pr_nparams >= MSSP_PROFILE_MAX_EXT) {
			set_err(pc->pc_err, pc->pc_errlen,
				"too many profile parameters");
			return -1;
		}
		pp = &p->pr_params[p->pr_nparams];
		if ((off = pool_add(pc, it, (size_t)(ne - it), is_unreserved,
				    where)) < 0)
			return -1;
		pp->pp_name = (uint16_t)off;
		pp->pp_value = MSS_PROFILE_NO_VALUE;
		pp->pp_fragment = fragment;
		if (eq != NULL) {
			/* A second '=' fails is_value_char: "a=b=c" is refused,
			 * not split in a guessed place. */
			if ((off = pool_add(pc, eq + 1, (size_t)(ie - eq - 1),
					    is_value_char, where)) < 0)
				return -1;
			pp->pp_value = (uint16_t)off;
		}
		/* Duplicates would make "present with an equal value" depend
		 * on which copy is looked at. */
		for (size_t k = 0; k < p->pr_nparams; k++) {
			if (strcmp(p->pr_pool + p->pr_params[k].pp_name,
				   p->pr_pool + pp->pp_name) == 0) {
				set_err(pc->pc_err, pc->pc_errlen,
					"duplicate profile parameter");
				return -1;
			}
		}
		p->pr_nparams++;
		if (amp == NULL)
			return 0;
		it = amp + 1;
	}
}

/* s = the text after "mss:" (n bytes, already checked printable ASCII). */
static int parse_mss(const char *s, size_t n, struct mss_profile *out,
		     char *err, size_t errlen)
{
	struct parse_ctx pc = { out, 0, err, errlen };
	const char *end = s + n;
	const char *hash = memchr(s, '#', n);
	const char *base_end = hash != NULL ? hash : end;
	const char *query = memchr(s, '?', (size_t)(base_end - s));
	const char *el[4];
	size_t elen[4], nel = 0;

	if (query != NULL)
		base_end = query;
	for (const char *it = s;;) {
		const char *colon = memchr(it, ':', (size_t)(base_end - it));
		const char *ee = colon != NULL ? colon : base_end;

		if (nel == 4) {
			set_err(err, errlen, "too many elements in mss: profile");
			return -1;
		}
		el[nel] = it;
		elen[nel] = (size_t)(ee - it);
		nel++;
		if (colon == NULL)
			break;
		it = colon + 1;
	}
	/* Elements not present were dropped trailing "any"s: the struct is
	 * zeroed, and zero is ANY for every element. */
	if (parse_brand(el[0], elen[0], out, err, errlen) < 0)
		return -1;
	if (nel > 1 && parse_op(el[1], elen[1], out, err, errlen) < 0)
		return -1;
	if (nel > 2 && parse_loa(el[2], elen[2], out, err, errlen) < 0)
		return -1;
	if (nel > 3 && parse_sscd(el[3], elen[3], out, err, errlen) < 0)
		return -1;
	if (query != NULL) {
		const char *qe = hash != NULL ? hash : end;

		if (parse_params(&pc, query + 1, (size_t)(qe - query - 1),
				 false) < 0)
			return -1;
	}
	if (hash != NULL &&
	    parse_params(&pc, hash + 1, (size_t)(end - hash - 1), true) < 0)
		return -1;
	return 0;
}

/* Characters RFC 3986 never allows anywhere in a URI (besides controls and
 * space, which the caller already refused). */
static bool uri_char_ok(unsigned char c)
{
	return c != '\0' && strchr("\"<>\\^`{|}", c) == NULL;
}

/*
 * Legacy http(s) URI, s = text after "scheme://".  We only need to be sure
 * it is a plausible absolute URI: it is compared byte for byte and never
 * dereferenced.  userinfo is refused because "http://alauda.mobi@evil/"
 * reads like a trusted name to a human and buys nothing here.
 */
static int check_legacy(const char *s, size_t n, char *err, size_t errlen)
{
	size_t i = 0;

	if (i < n && s[i] == '[') {
		/* IP-literal: hex digits, ':' and '.' up to ']'. */
		for (i = 1; i < n && s[i] != ']'; i++) {
			if (hex_digit(s[i]) < 0 && s[i] != ':' && s[i] != '.') {
				set_err(err, errlen, "invalid host in legacy profile URI");
				return -1;
			}
		}
		if (i >= n || i == 1) {
			set_err(err, errlen, "invalid host in legacy profile URI");
			return -1;
		}
		i++;
	} else {
		while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-' ||
				 s[i] == '.' || s[i] == '_' || s[i] == '~'))
			i++;
		if (i == 0) {
			set_err(err, errlen, "missing host in legacy profile URI");
			return -1;
		}
	}
	if (i < n && s[i] == ':') {
		size_t ds = ++i;
		long port = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9' && i - ds < 6)
			port = port * 10 + (s[i++] - '0');
		if (i == ds || port > 65535) {
			set_err(err, errlen, "invalid port in legacy profile URI");
			return -1;
		}
	}
	if (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#') {
		set_err(err, errlen, "invalid authority in legacy profile URI");
		return -1;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!uri_char_ok(c)) {
			set_err(err, errlen, "invalid character in legacy profile URI");
			return -1;
		}
		if (c == '%' && (n - i < 3 || hex_digit(s[i + 1]) < 0 ||
				 hex_digit(s[i + 2]) < 0)) {
			set_err(err, errlen,
				"invalid percent-escape in legacy profile URI");
			return -1;
		}
	}
	return 0;
}

int mss_profile_parse(const char *uri, struct mss_profile *out, char *err,
		      size_t errlen)
{
	size_t len;
	int rc;

	if (out == NULL) {
		set_err(err, errlen, "no output profile");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (uri == NULL || uri[0] == '\0') {
		set_err(err, errlen, "empty profile URI");
		return -1;
	}
	len = strnlen(uri, MSSP_PROFILE_MAX_URI + 1);
	if (len > MSSP_PROFILE_MAX_URI) {
		set_err(err, errlen, "profile URI too long");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)uri[i];

		if (c <= 0x20 || c >= 0x7f) {
			set_err(err, errlen,
				"control, space or non-ASCII character in profile URI");
			return -1;
		}
	}
	memcpy(out->pr_uri, uri, len + 1);
	if (has_prefix_ci(uri, len, "mss:")) {
		rc = parse_mss(uri + 4, len - 4, out, err, errlen);
	} else if (has_prefix_ci(uri, len, "http://")) {
		out->pr_legacy = true;
		rc = check_legacy(uri + 7, len - 7, err, errlen);
	} else if (has_prefix_ci(uri, len, "https://")) {
		out->pr_legacy = true;
		rc = check_legacy(uri + 8, len - 8, err, errlen);
	} else {
		set_err(err, errlen, "unsupported profile URI scheme");
		rc = -1;
	}
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->pr_valid = true;
	return 0;
}

/* Unchecked accessors for callers that already bounded i. */
static const char *pname(const struct mss_profile *p, size_t i)
{
	return p->pr_pool + p->pr_params[i].pp_name;
}

static const char *pvalue(const struct mss_profile *p, size_t i)
{
	uint16_t off = p->pr_params[i].pp_value;

	return off == MSS_PROFILE_NO_VALUE ? NULL : p->pr_pool + off;
}

const char *mss_profile_param_name(const struct mss_profile *p, size_t i)
{
	if (p == NULL || i >= p->pr_nparams)
		return NULL;
	return pname(p, i);
}

const char *mss_profile_param_value(const struct mss_profile *p, size_t i)
{
	if (p == NULL || i >= p->pr_nparams)
		return NULL;
	return pvalue(p, i);
}

enum mss_profile_cmp mss_profile_cmp_parse(const char *s)
{
	if (s == NULL)
		return MSS_CMP_EXACT;
	if (strcmp(s, "exact") == 0)
		return MSS_CMP_EXACT;
	if (strcmp(s, "minimum") == 0)
		return MSS_CMP_MINIMUM;
	if (strcmp(s, "better") == 0)
		return MSS_CMP_BETTER;
	return MSS_CMP_INVALID;
}

const char *mss_profile_op_name(enum mss_profile_op op)
{
	if ((unsigned)op >= OP_COUNT)
		return NULL;
	return op_names[op];
}

const char *mss_profile_sscd_name(enum mss_sscd s)
{
	if ((unsigned)s >= SSCD_COUNT)
		return NULL;
	return sscd_names[s];
}

const char *mss_profile_cmp_name(enum mss_profile_cmp c)
{
	switch (c) {
	case MSS_CMP_EXACT:
		return "exact";
	case MSS_CMP_MINIMUM:
		return "minimum";
	case MSS_CMP_BETTER:
		return "better";
	default:
		return NULL;
	}
}

int mss_profile_sscd_strength(enum mss_sscd s)
{
	if ((unsigned)s >= SSCD_COUNT)
		return -1;
	return sscd_strength[s];
}

static bool cmp_valid(enum mss_profile_cmp cmp)
{
	return cmp == MSS_CMP_EXACT || cmp == MSS_CMP_MINIMUM ||
	       cmp == MSS_CMP_BETTER;
}

/* Every requested parameter present in `av` with an equal value (a key-only
 * parameter equals only a key-only one).  Query or fragment does not
 * matter: both carry the same kind of technical detail. */
static bool params_subset(const struct mss_profile *rq,
			  const struct mss_profile *av)
{
	for (size_t i = 0; i < rq->pr_nparams; i++) {
		const char *rv = pvalue(rq, i);
		bool found = false;

		for (size_t k = 0; k < av->pr_nparams && !found; k++) {
			const char *avv;

			if (strcmp(pname(rq, i), pname(av, k)) != 0)
				continue;
			avv = pvalue(av, k);
			if ((rv == NULL) != (avv == NULL))
				return false;
			if (rv != NULL && strcmp(rv, avv) != 0)
				return false;
			found = true;
		}
		if (!found)
			return false;
	}
	return true;
}

bool mss_profile_satisfies(const struct mss_profile *rq,
			   const struct mss_profile *av,
			   enum mss_profile_cmp cmp)
{
	bool improved = false;

	if (rq == NULL || av == NULL || !rq->pr_valid || !av->pr_valid ||
	    !cmp_valid(cmp))
		return false;
	/* Legacy URIs have no structure, hence no order: identity only. */
	if (rq->pr_legacy || av->pr_legacy)
		return rq->pr_legacy && av->pr_legacy &&
		       strcmp(rq->pr_uri, av->pr_uri) == 0;
	if (rq->pr_brand[0] != '\0' && strcmp(rq->pr_brand, av->pr_brand) != 0)
		return false;
	if (rq->pr_op != MSS_PROFILE_OP_ANY && rq->pr_op != av->pr_op)
		return false;
	if (!params_subset(rq, av))
		return false;
	/* An extension adds requirements; it is not ordered, so it is a
	 * filter in every mode (and never an "improvement"). */
	if (rq->pr_loa_ext[0] != '\0' &&
	    strcmp(rq->pr_loa_ext, av->pr_loa_ext) != 0)
		return false;
	if (rq->pr_loa != MSS_LOA_ANY) {
		if (av->pr_loa == MSS_LOA_ANY)
			return false;
		if (cmp == MSS_CMP_EXACT ? av->pr_loa != rq->pr_loa
					 : av->pr_loa < rq->pr_loa)
			return false;
		improved |= av->pr_loa > rq->pr_loa;
	}
	if (rq->pr_sscd != MSS_SSCD_ANY) {
		int rs = mss_profile_sscd_strength(rq->pr_sscd);
		int as = mss_profile_sscd_strength(av->pr_sscd);

		if (av->pr_sscd == MSS_SSCD_ANY || rs < 0 || as < 0)
			return false;
		/* EXACT compares devices, not strengths: sim is not se. */
		if (cmp == MSS_CMP_EXACT ? av->pr_sscd != rq->pr_sscd : as < rs)
			return false;
		improved |= as > rs;
	}
	return cmp != MSS_CMP_BETTER || improved;
}

/* Is a strictly weaker than b?  Lower LoA first, then device strength. */
static bool weaker(const struct mss_profile *a, const struct mss_profile *b)
{
	if (a->pr_loa != b->pr_loa)
		return a->pr_loa < b->pr_loa;
	return mss_profile_sscd_strength(a->pr_sscd) <
	       mss_profile_sscd_strength(b->pr_sscd);
}

int mss_profile_select(const struct mss_profile *requested, size_t nreq,
		       const struct mss_profile *available, size_t navail,
		       enum mss_profile_cmp cmp)
{
	size_t best = SIZE_MAX;

	if (requested == NULL || available == NULL || nreq == 0 ||
	    navail == 0 || navail > INT_MAX || !cmp_valid(cmp))
		return -1;
	if (cmp == MSS_CMP_EXACT) {
		/* The AP listed what it wants in order of preference. */
		for (size_t r = 0; r < nreq; r++)
			for (size_t a = 0; a < navail; a++)
				if (mss_profile_satisfies(&requested[r],
							  &available[a], cmp))
					return (int)a;
		return -1;
	}
	for (size_t a = 0; a < navail; a++) {
		/* MINIMUM: at least as good as one; BETTER: than all. */
		bool ok = cmp == MSS_CMP_BETTER;

		for (size_t r = 0; r < nreq; r++) {
			bool s = mss_profile_satisfies(&requested[r],
						       &available[a], cmp);

			if (cmp == MSS_CMP_MINIMUM && s) {
				ok = true;
				break;
			}
			if (cmp == MSS_CMP_BETTER && !s) {
				ok = false;
				break;
			}
		}
		if (ok && (best == SIZE_MAX || weaker(&available[a],
						      &available[best])))
			best = a;
	}
	return best == SIZE_MAX ? -1 : (int)best;
}

int mss_profile_resolve_alias(const char *uri,
			      const struct mss_profile_alias *table, size_t n,
			      struct mss_profile *out, char *err,
			      size_t errlen)
{
	if (out == NULL) {
		set_err(err, errlen, "no output profile");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (uri == NULL) {
		set_err(err, errlen, "no profile URI");
		return -1;
	}
	if (table == NULL && n > 0) {
		set_err(err, errlen, "no alias table");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (table[i].pa_from == NULL || strcmp(table[i].pa_from, uri) != 0)
			continue;
		if (mss_profile_parse(table[i].pa_to, out, NULL, 0) < 0 ||
		    out->pr_legacy) {
			memset(out, 0, sizeof(*out));
			set_err(err, errlen, "alias target is not a valid mss: profile");
			return -1;
		}
		return 0;
	}
	set_err(err, errlen, "no alias for profile URI");
	return -1;
}

/* Bounded writer: remembers overflow instead of checking at every call. */
struct writer {
	char *w_buf;
	size_t w_len;
	size_t w_pos;
	bool w_overflow;
};

static void w_char(struct writer *w, char c)
{
	if (w->w_pos + 1 >= w->w_len) {
		w->w_overflow = true;
		return;
	}
	w->w_buf[w->w_pos++] = c;
	w->w_buf[w->w_pos] = '\0';
}

static void w_str(struct writer *w, const char *s)
{
	while (*s != '\0')
		w_char(w, *s++);
}

/* Write s, %XX-escaping every byte that is not allowed raw. */
static void w_encoded(struct writer *w, const char *s,
		      bool (*raw_ok)(unsigned char))
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (raw_ok(c)) {
			w_char(w, (char)c);
		} else {
			w_char(w, '%');
			w_char(w, hex[c >> 4]);
			w_char(w, hex[c & 15]);
		}
	}
}

static void w_params(struct writer *w, const struct mss_profile *p,
		     bool fragment)
{
	bool first = true;

	for (size_t i = 0; i < p->pr_nparams; i++) {
		const char *v = pvalue(p, i);

		if (p->pr_params[i].pp_fragment != fragment)
			continue;
		w_char(w, first ? (fragment ? '#' : '?') : '&');
		first = false;
		w_encoded(w, pname(p, i), is_unreserved);
		if (v != NULL) {
			w_char(w, '=');
			w_encoded(w, v, is_value_char);
		}
	}
}

int mss_profile_format(const struct mss_profile *p, char *buf, size_t len)
{
	struct writer w = { buf, len, 0, false };
	size_t nel;

	if (buf == NULL || len == 0)
		return -1;
	buf[0] = '\0';
	if (p == NULL || !p->pr_valid)
		return -1;
	if (p->pr_legacy) {
		w_str(&w, p->pr_uri);
	} else {
		/* Drop trailing "any"s; inner ones are written as "". */
		nel = p->pr_sscd != MSS_SSCD_ANY ? 4
		      : p->pr_loa != MSS_LOA_ANY ? 3
		      : p->pr_op != MSS_PROFILE_OP_ANY ? 2 : 1;
		w_str(&w, "mss:");
		w_encoded(&w, p->pr_brand, is_unreserved);
		if (nel > 1) {
			w_char(&w, ':');
			if (p->pr_op != MSS_PROFILE_OP_ANY)
				w_str(&w, op_names[p->pr_op]);
		}
		if (nel > 2) {
			w_char(&w, ':');
			if (p->pr_loa != MSS_LOA_ANY) {
				w_str(&w, "loa");
				w_char(&w, (char)('0' + p->pr_loa));
				if (p->pr_loa_ext[0] != '\0') {
					w_char(&w, '.');
					w_str(&w, p->pr_loa_ext);
				}
			}
		}
		if (nel > 3) {
			w_char(&w, ':');
			w_str(&w, sscd_names[p->pr_sscd]);
		}
		w_params(&w, p, false);
		w_params(&w, p, true);
	}
	if (w.w_overflow) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

/* json_object_set_new() takes the reference even on failure. */
static int put(json_t *obj, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(obj, key, v);
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *params_to_json(const struct mss_profile *p)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < p->pr_nparams; i++) {
		json_t *o = json_object();

		if (json_array_append_new(arr, o) < 0 ||
		    put(o, "name", json_string(pname(p, i))) < 0 ||
		    put(o, "value", str_or_null(pvalue(p, i))) < 0 ||
		    put(o, "in", json_string(p->pr_params[i].pp_fragment
						     ? "fragment" : "query")) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *mss_profile_to_json(const struct mss_profile *p)
{
	char canon[MSSP_PROFILE_MAX_URI + 1];
	char loa[TOKEN_MAX + 1];
	json_t *o;
	int bad;

	if (p == NULL || !p->pr_valid ||
	    mss_profile_format(p, canon, sizeof(canon)) < 0)
		return NULL;
	if ((o = json_object()) == NULL)
		return NULL;
	bad = put(o, "uri", json_string(p->pr_uri)) < 0 ||
	      put(o, "canonical", json_string(canon)) < 0 ||
	      put(o, "legacy", json_boolean(p->pr_legacy)) < 0;
	if (bad || p->pr_legacy)
		goto out;
	snprintf(loa, sizeof(loa), "loa%d%s%s", (int)p->pr_loa,
		 p->pr_loa_ext[0] != '\0' ? "." : "", p->pr_loa_ext);
	bad = put(o, "brand", str_or_null(p->pr_brand[0] != '\0'
						  ? p->pr_brand : NULL)) < 0 ||
	      put(o, "operation", str_or_null(p->pr_op != MSS_PROFILE_OP_ANY
						      ? op_names[p->pr_op]
						      : NULL)) < 0 ||
	      put(o, "loa", str_or_null(p->pr_loa != MSS_LOA_ANY ? loa
								 : NULL)) < 0 ||
	      put(o, "loa_level", p->pr_loa != MSS_LOA_ANY
					  ? json_integer(p->pr_loa)
					  : json_null()) < 0 ||
	      put(o, "loa_ext", str_or_null(p->pr_loa_ext[0] != '\0'
						    ? p->pr_loa_ext
						    : NULL)) < 0 ||
	      put(o, "sscd", str_or_null(p->pr_sscd != MSS_SSCD_ANY
						 ? sscd_names[p->pr_sscd]
						 : NULL)) < 0 ||
	      put(o, "sscd_strength",
		  p->pr_sscd != MSS_SSCD_ANY
			  ? json_integer(mss_profile_sscd_strength(p->pr_sscd))
			  : json_null()) < 0 ||
	      put(o, "params", params_to_json(p)) < 0;
out:
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
