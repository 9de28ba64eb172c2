/*
 * http.c - strict, sans-I/O HTTP/1.1 request parser (see http.h and
 * docs/internals/http.md).
 *
 * Shape: the head (request line, fields) and the trailers are collected line
 * by line into the head area of the parser's one buffer and parsed in place
 * (CR, ':' and trailing OWS become NULs); the body is copied (Content-Length)
 * or decoded (chunked) into the body area right behind it.  Every cap is
 * checked before bytes are copied, so no input can make the parser hold more
 * than max_head + max_body bytes.  Wherever RFC 9112 allows leniency that
 * another hop could interpret differently (smuggling, H-04..H-08, H-14), this
 * parser takes the strict reading and fails the request.
 */
#include "net/http.h"

#include <stdlib.h>
#include <string.h>

#include "util/hex.h"

enum http_pstate {
	ST_REQLINE,      /* line mode: request line (or one leading CRLF)   */
	ST_HEADERS,      /* line mode: header fields up to the empty line   */
	ST_BODY_CL,      /* copying a Content-Length body                   */
	ST_CHUNK_SIZE,   /* hex digits of a chunk size                      */
	ST_CHUNK_EXT,    /* chunk extension bytes up to CR                  */
	ST_CHUNK_LF,     /* LF ending a chunk-size line                     */
	ST_CHUNK_DATA,   /* chunk data                                      */
	ST_CHUNK_DCR,    /* CR after chunk data                             */
	ST_CHUNK_DLF,    /* LF after chunk data                             */
	ST_TRAILERS,     /* line mode: trailer fields up to the empty line  */
	ST_DONE,         /* request complete, waiting for http_parser_next  */
	ST_ERROR         /* terminal                                        */
};

struct http_parser {
	enum http_pstate p_state;
	int p_err;                /* terminal error, 0 while healthy         */
	size_t p_head_cap;
	size_t p_body_cap;
	size_t p_head_len;        /* bytes stored in the head area           */
	size_t p_line_start;      /* offset of the line being collected      */
	bool p_skipped_crlf;      /* the one tolerated leading CRLF was seen */
	bool p_head_done;         /* request head is readable                */
	/* header bookkeeping for the checks at the end of the head */
	bool p_seen_cl, p_seen_te, p_seen_ct;
	bool p_te_unsupported;    /* a coding other than chunked precedes it */
	bool p_conn_close, p_conn_keep_alive;
	bool p_expect_bad;        /* an expectation other than 100-continue  */
	const char *p_auth;       /* absolute-form authority (not NUL-term.) */
	size_t p_auth_len;
	/* body */
	size_t p_body_len;        /* decoded bytes stored so far             */
	uint64_t p_left;          /* bytes left in the CL body / this chunk  */
	unsigned p_hex_digits;
	size_t p_ext_len;
	char p_ext[MSSP_HTTP_MAX_CHUNK_EXT];
	struct http_request p_req;
	uint8_t *p_head;          /* p_mem[0 .. head_cap)                    */
	uint8_t *p_body;          /* p_mem[head_cap .. head_cap+body_cap]    */
	uint8_t p_mem[];
};

/* More than 15 hex digits could overflow 64 bits once added to a length
 * (and are far beyond any body cap anyway): H-07. */
#define HTTP_MAX_HEX_DIGITS 15

/* ---- character classes (RFC 9110 §5.6, RFC 3986 §2) ----------------- */

static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar / SP / HTAB; obs-text (0x80-0xFF) is allowed in values. */
static bool
is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static bool
is_sub_delim(unsigned char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

static unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Locale-independent: header names are ASCII tokens. */
static bool
ascii_caseeq(const char *a, const char *b)
{
	while (*a != '\0' && ascii_lower((unsigned char)*a) ==
	    ascii_lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

static bool
ascii_caseeq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a[i]) !=
		    ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* ---- error table ----------------------------------------------------- */

struct err_info {
	int ei_status;
	const char *ei_reason;
};

/* Indexed by -err. */
static const struct err_info err_table[] = {
	[0] = { 0, "no error" },
	[-HTTP_ERR_STATE] = { 500, "parser API misuse" },
	[-HTTP_ERR_CLOSED] = { 0, "request after Connection: close" },
	[-HTTP_ERR_BARE_LF] = { 400, "bare LF in framing" },
	[-HTTP_ERR_BARE_CR] = { 400, "bare CR in framing" },
	[-HTTP_ERR_EMPTY_LINE] = { 400, "empty lines before request line" },
	[-HTTP_ERR_REQUEST_LINE] = { 400, "malformed request line" },
	[-HTTP_ERR_METHOD] = { 400, "method is not a token" },
	[-HTTP_ERR_TARGET] = { 400, "invalid request-target" },
	[-HTTP_ERR_VERSION_SYNTAX] = { 400, "malformed HTTP version" },
	[-HTTP_ERR_VERSION] = { 505, "HTTP version not supported" },
	[-HTTP_ERR_LINE_TOO_LONG] = { 414, "request line too long" },
	[-HTTP_ERR_TARGET_TOO_LONG] = { 414, "request-target too long" },
	[-HTTP_ERR_HEAD_TOO_LARGE] = { 431, "header section too large" },
	[-HTTP_ERR_TOO_MANY_FIELDS] = { 431, "too many header fields" },
	[-HTTP_ERR_OBS_FOLD] = { 400, "obsolete line folding" },
	[-HTTP_ERR_FIELD_NAME] = { 400, "invalid field name" },
	[-HTTP_ERR_WS_BEFORE_COLON] = { 400, "whitespace before colon" },
	[-HTTP_ERR_FIELD_VALUE] = { 400, "control character in field value" },
	[-HTTP_ERR_HOST_MISSING] = { 400, "missing Host" },
	[-HTTP_ERR_HOST_DUP] = { 400, "duplicate Host" },
	[-HTTP_ERR_HOST_INVALID] = { 400, "invalid Host" },
	[-HTTP_ERR_HOST_MISMATCH] = { 400, "target authority differs from Host" },
	[-HTTP_ERR_CL_INVALID] = { 400, "invalid Content-Length" },
	[-HTTP_ERR_CL_DUP] = { 400, "duplicate Content-Length" },
	[-HTTP_ERR_TE_INVALID] = { 400, "invalid Transfer-Encoding" },
	[-HTTP_ERR_TE_DUP] = { 400, "duplicate Transfer-Encoding" },
	[-HTTP_ERR_TE_HTTP10] = { 400, "Transfer-Encoding in HTTP/1.0" },
	[-HTTP_ERR_TE_UNSUPPORTED] = { 501, "unsupported transfer coding" },
	[-HTTP_ERR_CL_AND_TE] = { 400, "both Content-Length and Transfer-Encoding" },
	[-HTTP_ERR_CT_DUP] = { 400, "duplicate Content-Type" },
	[-HTTP_ERR_CONNECTION] = { 400, "invalid Connection" },
	[-HTTP_ERR_EXPECT] = { 417, "unsupported expectation" },
	[-HTTP_ERR_BODY_TOO_LARGE] = { 413, "body too large" },
	[-HTTP_ERR_CHUNK_SIZE] = { 400, "invalid chunk size" },
	[-HTTP_ERR_CHUNK_SIZE_LONG] = { 400, "chunk size too long" },
	[-HTTP_ERR_CHUNK_EXT] = { 400, "invalid chunk extension" },
	[-HTTP_ERR_CHUNK_EXT_LONG] = { 400, "chunk extension too long" },
	[-HTTP_ERR_CHUNK_CRLF] = { 400, "missing CRLF after chunk data" },
	[-HTTP_ERR_TRAILER_FIELD] = { 400, "forbidden trailer field" },
	[-HTTP_ERR_TOO_MANY_TRAILERS] = { 400, "too many trailer fields" },
	[-HTTP_ERR_TRAILERS_TOO_LARGE] = { 400, "trailer section too large" },
	[-HTTP_ERR_MEDIA_TYPE] = { 400, "invalid media type" },
};

int
http_err_status(int err)
{
	if (err > 0 || err < HTTP_ERR_LAST)
		return 500;
	return err_table[-err].ei_status;
}

const char *
http_err_reason(int err)
{
	if (err > 0 || err < HTTP_ERR_LAST)
		return "unknown error";
	return err_table[-err].ei_reason;
}

/* ---- lifecycle ------------------------------------------------------- */

struct http_parser *
http_parser_new(size_t max_head, size_t max_body)
{
	struct http_parser *p;

	if (max_head == 0)
		max_head = MSSP_HTTP_MAX_HEAD;
	if (max_body == 0)
		max_body = MSSP_HTTP_MAX_BODY;
	if (max_head > MSSP_HTTP_MAX_HEAD || max_body > MSSP_HTTP_MAX_BODY)
		return NULL;
	/* calloc: the whole buffer is zero, so wiping "used" parts suffices. */
	p = calloc(1, sizeof(*p) + max_head + max_body + 1);
	if (p == NULL)
		return NULL;
	p->p_head_cap = max_head;
	p->p_body_cap = max_body;
	p->p_head = p->p_mem;
	p->p_body = p->p_mem + max_head;
	p->p_state = ST_REQLINE;
	return p;
}

/* Forget the current request; the head may have carried credentials
 * (Authorization), so the used bytes are wiped, not just dropped. */
static void
reset_request(struct http_parser *p)
{
	explicit_bzero(p->p_head, p->p_head_len);
	explicit_bzero(p->p_body, p->p_body_len + 1);
	p->p_head_len = 0;
	p->p_line_start = 0;
	p->p_skipped_crlf = false;
	p->p_head_done = false;
	p->p_seen_cl = p->p_seen_te = p->p_seen_ct = false;
	p->p_te_unsupported = false;
	p->p_conn_close = p->p_conn_keep_alive = false;
	p->p_expect_bad = false;
	p->p_auth = NULL;
	p->p_auth_len = 0;
	p->p_body_len = 0;
	p->p_left = 0;
	p->p_hex_digits = 0;
	p->p_ext_len = 0;
	memset(&p->p_req, 0, sizeof(p->p_req));
	p->p_state = ST_REQLINE;
}

void
http_parser_free(struct http_parser *p)
{
	if (p == NULL)
		return;
	reset_request(p);
	free(p);
}

static int
fail(struct http_parser *p, int err)
{
	p->p_state = ST_ERROR;
	p->p_err = err;
	p->p_head_done = false;
	return err;
}

int
http_parser_next(struct http_parser *p)
{
	if (p->p_state == ST_ERROR)
		return p->p_err;
	if (p->p_state != ST_DONE)
		return fail(p, HTTP_ERR_STATE);
	/* RFC 9112 §9.6: nothing after a "close" request may be processed. */
	if (!p->p_req.rq_keep_alive)
		return fail(p, HTTP_ERR_CLOSED);
	reset_request(p);
	return 0;
}

const struct http_request *
http_parser_request(const struct http_parser *p)
{
	return p->p_head_done ? &p->p_req : NULL;
}

enum http_phase
http_parser_phase(const struct http_parser *p)
{
	switch (p->p_state) {
	case ST_REQLINE:
		return (p->p_head_len == 0 && !p->p_skipped_crlf) ?
		    HTTP_PHASE_IDLE : HTTP_PHASE_HEAD;
	case ST_HEADERS:
		return HTTP_PHASE_HEAD;
	case ST_DONE:
		return HTTP_PHASE_READY;
	case ST_ERROR:
		return HTTP_PHASE_ERROR;
	default:
		return HTTP_PHASE_BODY;
	}
}

int
http_parser_error(const struct http_parser *p)
{
	return p->p_state == ST_ERROR ? p->p_err : 0;
}

/* ---- lookups --------------------------------------------------------- */

static const char *
field_find(const struct http_field *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_caseeq(f[i].hf_name, name))
			return f[i].hf_value;
	return NULL;
}

const char *
http_request_header(const struct http_request *rq, const char *name)
{
	return field_find(rq->rq_fields, rq->rq_nfields, name);
}

const char *
http_request_trailer(const struct http_request *rq, const char *name)
{
	return field_find(rq->rq_trailers, rq->rq_ntrailers, name);
}

/* ---- request line ---------------------------------------------------- */

/* absolute-path [ "?" query ] with RFC 3986 characters only; '%' must be
 * followed by two hex digits.  Stricter than many servers on purpose: a
 * target two hops would decode differently is refused (400). */
static bool
origin_form_valid(const char *s, size_t n)
{
	if (n == 0 || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || hex_digit((unsigned char)s[i + 1]) < 0 ||
			    hex_digit((unsigned char)s[i + 2]) < 0)
				return false;
			i += 2;
		} else if (!is_unreserved(c) && !is_sub_delim(c) &&
		    c != ':' && c != '@' && c != '/' && c != '?') {
			return false;
		}
	}
	return true;
}

/* uri-host [ ":" port ] as used in Host and in an absolute-form authority.
 * No userinfo, no empty host, port 1-5 digits <= 65535. */
static bool
authority_valid(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return false;
	if (s[0] == '[') {
		/* IP-literal: hex, ':' and '.' (IPv6 and v4-mapped); IPvFuture
		 * is not accepted. */
		for (i = 1; i < n && s[i] != ']'; i++)
			if (hex_digit((unsigned char)s[i]) < 0 && s[i] != ':' &&
			    s[i] != '.')
				return false;
		if (i == n || i == 1)
			return false;
		i++;
	} else {
		for (; i < n && s[i] != ':'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '%') {
				if (i + 2 >= n ||
				    hex_digit((unsigned char)s[i + 1]) < 0 ||
				    hex_digit((unsigned char)s[i + 2]) < 0)
					return false;
				i += 2;
			} else if (!is_unreserved(c) && !is_sub_delim(c)) {
				return false;
			}
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return true;
	if (s[i] != ':')
		return false;
	i++;
	if (n - i < 1 || n - i > 5)
		return false;
	unsigned long port = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port <= 65535;
}

/* Splits an absolute-form target "http[s]://authority[/path[?query]]". */
static int
parse_absolute_form(struct http_parser *p, const char *t, size_t n)
{
	size_t skip, a;

	if (n >= 7 && ascii_caseeq_n(t, "http://", 7))
		skip = 7;
	else if (n >= 8 && ascii_caseeq_n(t, "https://", 8))
		skip = 8;
	else
		return HTTP_ERR_TARGET;
	for (a = skip; a < n && t[a] != '/' && t[a] != '?' && t[a] != '#'; a++)
		;
	if (!authority_valid(t + skip, a - skip))
		return HTTP_ERR_TARGET;
	p->p_auth = t + skip;
	p->p_auth_len = a - skip;
	if (a == n) {
		p->p_req.rq_path = "/";
		return 0;
	}
	/* "http://h?q" would need a "/" inserted to become origin-form; no
	 * client sends it, so it is refused rather than rewritten. */
	if (!origin_form_valid(t + a, n - a))
		return HTTP_ERR_TARGET;
	p->p_req.rq_path = t + a;
	return 0;
}

/* s: the request line without CRLF, NUL-terminated, n bytes. */
static int
on_request_line(struct http_parser *p, char *s, size_t n)
{
	struct http_request *rq = &p->p_req;
	size_t m, t, tn;
	const char *v;

	for (m = 0; m < n && is_tchar((unsigned char)s[m]); m++)
		;
	if (m == n || (m == 0 && s[0] == ' '))
		return HTTP_ERR_REQUEST_LINE;
	if (s[m] != ' ')
		return HTTP_ERR_METHOD;
	s[m] = '\0';
	t = m + 1;
	const char *sp = memchr(s + t, ' ', n - t);
	if (sp == NULL)
		return HTTP_ERR_REQUEST_LINE;
	tn = (size_t)(sp - (s + t));
	if (tn == 0)
		return HTTP_ERR_REQUEST_LINE;
	v = sp + 1;
	/* Exactly "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3). */
	if ((size_t)(s + n - v) != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
	    v[7] > '9')
		return HTTP_ERR_VERSION_SYNTAX;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return HTTP_ERR_VERSION;
	rq->rq_version_minor = v[7] - '0';
	if (tn > MSSP_HTTP_MAX_TARGET)
		return HTTP_ERR_TARGET_TOO_LONG;
	s[t + tn] = '\0';
	rq->rq_method = s;
	rq->rq_target = s + t;
	if (s[t] == '/') {
		if (!origin_form_valid(s + t, tn))
			return HTTP_ERR_TARGET;
		rq->rq_path = s + t;
		return 0;
	}
	/* asterisk-form and authority-form (OPTIONS *, CONNECT) are never
	 * needed by a SOAP/JSON endpoint: 400. */
	return parse_absolute_form(p, s + t, tn);
}

/* ---- header fields --------------------------------------------------- */

/* Content-Length = 1*DIGIT; no sign, no spaces inside, no list.  Values
 * over the cap saturate (the 413 is decided once the head is complete, so
 * that a framing 400 wins). */
static int
parse_content_length(const char *v, uint64_t *out)
{
	uint64_t n = 0;

	if (*v == '\0')
		return HTTP_ERR_CL_INVALID;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return HTTP_ERR_CL_INVALID;
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* Transfer-Encoding = #transfer-coding, checked strictly (H-06): elements
 * are bare tokens (no parameters, no empty elements); "chunked" must be the
 * last element, present once, and spelled in lower case (RFC 9110 makes
 * coding names case-insensitive, but bad-inputs H-06 lists "Chunked" as an
 * obfuscation, and no known client sends it).  Any coding before the final
 * chunked is well-formed but unsupported: 501 (reported at end of head). */
static int
parse_transfer_encoding(struct http_parser *p, const char *v)
{
	int nchunked = 0;
	bool last_chunked = false, others = false;

	for (;;) {
		const char *e = v;

		while (is_tchar((unsigned char)*e))
			e++;
		if (e == v)
			return HTTP_ERR_TE_INVALID;
		last_chunked = false;
		if ((size_t)(e - v) == 7 && ascii_caseeq_n(v, "chunked", 7)) {
			if (memcmp(v, "chunked", 7) != 0)
				return HTTP_ERR_TE_INVALID;
			nchunked++;
			last_chunked = true;
		} else {
			others = true;
		}
		while (is_ows((unsigned char)*e))
			e++;
		if (*e == '\0')
			break;
		if (*e != ',')
			return HTTP_ERR_TE_INVALID;
		e++;
		while (is_ows((unsigned char)*e))
			e++;
		v = e;
	}
	if (!last_chunked || nchunked != 1)
		return HTTP_ERR_TE_INVALID;
	p->p_te_unsupported = others;
	p->p_req.rq_chunked = true;
	return 0;
}

/* Connection = #connection-option; empty list elements are allowed (RFC
 * 9110 §5.6.1), anything that is not a token is not. */
static int
parse_connection(struct http_parser *p, const char *v)
{
	for (;;) {
		const char *e;

		while (is_ows((unsigned char)*v) || *v == ',')
			v++;
		if (*v == '\0')
			return 0;
		for (e = v; is_tchar((unsigned char)*e); e++)
			;
		if (e == v)
			return HTTP_ERR_CONNECTION;
		if ((size_t)(e - v) == 5 && ascii_caseeq_n(v, "close", 5))
			p->p_conn_close = true;
		else if ((size_t)(e - v) == 10 &&
		    ascii_caseeq_n(v, "keep-alive", 10))
			p->p_conn_keep_alive = true;
		while (is_ows((unsigned char)*e))
			e++;
		if (*e != '\0' && *e != ',')
			return HTTP_ERR_CONNECTION;
		v = e;
	}
}

/*
 * Split one field line (NUL-terminated, n bytes, no CRLF) in place into
 * name and OWS-trimmed value.  H-08: obs-fold, whitespace before the colon,
 * non-token (incl. non-ASCII) names and CTLs in values are all 400.
 */
static int
split_field(char *s, size_t n, struct http_field *f)
{
	size_t i, v, e;

	if (is_ows((unsigned char)s[0]))
		return HTTP_ERR_OBS_FOLD;
	for (i = 0; i < n && is_tchar((unsigned char)s[i]); i++)
		;
	if (i < n && is_ows((unsigned char)s[i]))
		return HTTP_ERR_WS_BEFORE_COLON;
	if (i == 0 || i == n || s[i] != ':')
		return HTTP_ERR_FIELD_NAME;
	s[i] = '\0';
	for (v = i + 1; v < n && is_ows((unsigned char)s[v]); v++)
		;
	for (e = n; e > v && is_ows((unsigned char)s[e - 1]); e--)
		;
	for (size_t k = v; k < e; k++)
		if (!is_value_char((unsigned char)s[k]))
			return HTTP_ERR_FIELD_VALUE;
	s[e] = '\0';
	f->hf_name = s;
	f->hf_value = s + v;
	return 0;
}

static int
on_header_line(struct http_parser *p, char *s, size_t n)
{
	struct http_request *rq = &p->p_req;
	struct http_field f;
	int rc;

	if (rq->rq_nfields == MSSP_HTTP_MAX_HEADERS)
		return HTTP_ERR_TOO_MANY_FIELDS;
	if ((rc = split_field(s, n, &f)) != 0)
		return rc;
	rq->rq_fields[rq->rq_nfields++] = f;

	if (ascii_caseeq(f.hf_name, "host")) {
		if (rq->rq_host != NULL)
			return HTTP_ERR_HOST_DUP;
		rq->rq_host = f.hf_value;
	} else if (ascii_caseeq(f.hf_name, "content-length")) {
		/* Several Content-Length fields are refused even when equal:
		 * the simplest rule no other hop can read differently. */
		if (p->p_seen_cl)
			return HTTP_ERR_CL_DUP;
		p->p_seen_cl = true;
		return parse_content_length(f.hf_value, &rq->rq_content_length);
	} else if (ascii_caseeq(f.hf_name, "transfer-encoding")) {
		if (p->p_seen_te)
			return HTTP_ERR_TE_DUP;
		p->p_seen_te = true;
		return parse_transfer_encoding(p, f.hf_value);
	} else if (ascii_caseeq(f.hf_name, "content-type")) {
		if (p->p_seen_ct)
			return HTTP_ERR_CT_DUP;
		p->p_seen_ct = true;
	} else if (ascii_caseeq(f.hf_name, "connection")) {
		return parse_connection(p, f.hf_value);
	} else if (ascii_caseeq(f.hf_name, "expect")) {
		/* RFC 9110 §10.1.1: ignored in HTTP/1.0. */
		if (rq->rq_version_minor == 0)
			return 0;
		if (ascii_caseeq(f.hf_value, "100-continue"))
			rq->rq_expect_continue = true;
		else
			p->p_expect_bad = true;
	}
	return 0;
}

/* Fields that would change framing, routing or content interpretation if a
 * later component merged trailers into the header section (H-07). */
static bool
trailer_forbidden(const char *name)
{
	static const char *const names[] = {
		"content-length", "transfer-encoding", "host", "connection",
		"content-type", "expect", "trailer", "keep-alive", "upgrade",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (ascii_caseeq(name, names[i]))
			return true;
	return false;
}

static int
complete(struct http_parser *p)
{
	p->p_body[p->p_body_len] = '\0';
	p->p_req.rq_body = p->p_body;
	p->p_req.rq_body_len = p->p_body_len;
	p->p_state = ST_DONE;
	return HTTP_DONE;
}

static int
on_trailer_line(struct http_parser *p, char *s, size_t n)
{
	struct http_request *rq = &p->p_req;
	struct http_field f;
	int rc;

	if (n == 0)
		return complete(p);
	if (rq->rq_ntrailers == MSSP_HTTP_MAX_TRAILERS)
		return HTTP_ERR_TOO_MANY_TRAILERS;
	if ((rc = split_field(s, n, &f)) != 0)
		return rc;
	if (trailer_forbidden(f.hf_name))
		return HTTP_ERR_TRAILER_FIELD;
	rq->rq_trailers[rq->rq_ntrailers++] = f;
	return 0;
}

/* The empty line ended the head: the checks that need every field, in an
 * order where framing errors (400) win over size (413) and expectation
 * (417) errors. */
static int
finish_head(struct http_parser *p)
{
	struct http_request *rq = &p->p_req;

	if (rq->rq_host == NULL && rq->rq_version_minor == 1)
		return HTTP_ERR_HOST_MISSING;
	if (rq->rq_host != NULL &&
	    !authority_valid(rq->rq_host, strlen(rq->rq_host)))
		return HTTP_ERR_HOST_INVALID;
	/* RFC 9112 §3.2.2 would have us ignore Host here; H-10 wants a
	 * conflict refused.  Exact (case-insensitive) comparison: no port
	 * defaulting. */
	if (p->p_auth != NULL && rq->rq_host != NULL &&
	    (strlen(rq->rq_host) != p->p_auth_len ||
	    !ascii_caseeq_n(rq->rq_host, p->p_auth, p->p_auth_len)))
		return HTTP_ERR_HOST_MISMATCH;
	if (p->p_seen_te && rq->rq_version_minor == 0)
		return HTTP_ERR_TE_HTTP10;
	if (p->p_seen_te && p->p_seen_cl)
		return HTTP_ERR_CL_AND_TE;
	if (p->p_te_unsupported)
		return HTTP_ERR_TE_UNSUPPORTED;
	if (p->p_seen_cl && rq->rq_content_length > p->p_body_cap)
		return HTTP_ERR_BODY_TOO_LARGE;
	if (p->p_expect_bad)
		return HTTP_ERR_EXPECT;

	if (rq->rq_version_minor == 1)
		rq->rq_keep_alive = !p->p_conn_close;
	else
		rq->rq_keep_alive = p->p_conn_keep_alive && !p->p_conn_close;
	rq->rq_length_declared = p->p_seen_cl || p->p_seen_te;
	p->p_head_done = true;

	if (rq->rq_chunked) {
		p->p_state = ST_CHUNK_SIZE;
		p->p_left = 0;
		p->p_hex_digits = 0;
	} else if (rq->rq_content_length > 0) {
		p->p_state = ST_BODY_CL;
		p->p_left = rq->rq_content_length;
	} else {
		return complete(p); /* no body: nothing to continue for */
	}
	/* H-12: reached only after the 413 check above, so the caller can
	 * send 100 without inviting a body that would be refused. */
	return rq->rq_expect_continue ? HTTP_CONTINUE : HTTP_MORE;
}

/*
 * Line mode (request line, header fields, trailer fields): copy bytes up to
 * and including the next LF into the head area, checking the caps before
 * copying, then hand the finished line to its handler.
 */
static int
feed_line(struct http_parser *p, const uint8_t *d, size_t n, size_t *used)
{
	const uint8_t *lf = memchr(d, '\n', n);
	size_t take = lf != NULL ? (size_t)(lf - d) + 1 : n;
	size_t line = p->p_head_len - p->p_line_start + take;
	size_t start, len;
	char *s;

	*used = take;
	if (p->p_state == ST_REQLINE) {
		/* Content may reach the cap; CR (and LF) may follow it. */
		if (line > MSSP_HTTP_MAX_REQUEST_LINE + (lf != NULL ? 2 : 1) ||
		    p->p_head_len + take > p->p_head_cap)
			return HTTP_ERR_LINE_TOO_LONG;
	} else if (p->p_head_len + take > p->p_head_cap) {
		return p->p_state == ST_TRAILERS ?
		    HTTP_ERR_TRAILERS_TOO_LARGE : HTTP_ERR_HEAD_TOO_LARGE;
	}
	memcpy(p->p_head + p->p_head_len, d, take);
	p->p_head_len += take;
	if (lf == NULL)
		return HTTP_MORE;

	start = p->p_line_start;
	if (line < 2 || p->p_head[p->p_head_len - 2] != '\r')
		return HTTP_ERR_BARE_LF;
	len = line - 2;
	if (memchr(p->p_head + start, '\r', len) != NULL)
		return HTTP_ERR_BARE_CR;
	p->p_line_start = p->p_head_len;
	s = (char *)p->p_head + start;
	s[len] = '\0';

	switch (p->p_state) {
	case ST_REQLINE:
		if (len == 0) {
			/* RFC 9112 §2.2: ignore at least one empty line before
			 * the request line.  Exactly one is tolerated (some
			 * clients end a POST body with an extra CRLF); more is
			 * a 400. */
			if (p->p_skipped_crlf)
				return HTTP_ERR_EMPTY_LINE;
			p->p_skipped_crlf = true;
			p->p_head_len = p->p_line_start = 0;
			return HTTP_MORE;
		}
		p->p_state = ST_HEADERS;
		return on_request_line(p, s, len);
	case ST_HEADERS:
		return len == 0 ? finish_head(p) : on_header_line(p, s, len);
	case ST_TRAILERS:
		return on_trailer_line(p, s, len);
	default:
		abort(); /* unreachable: feed_line is only called in line mode */
	}
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 * (RFC 9112 §7.1.1); validated whole once its line is complete. */
static bool
chunk_ext_valid(const char *e, size_t n)
{
	size_t i = 0;

#define SKIP_BWS() while (i < n && is_ows((unsigned char)e[i])) i++
	while (i < n) {
		SKIP_BWS();
		if (i == n || e[i] != ';')
			return false;
		i++;
		SKIP_BWS();
		size_t s = i;
		while (i < n && is_tchar((unsigned char)e[i]))
			i++;
		if (i == s)
			return false;
		size_t save = i;
		SKIP_BWS();
		if (i == n || e[i] != '=') {
			i = save; /* no value; BWS must precede ';' again */
			continue;
		}
		i++;
		SKIP_BWS();
		if (i < n && e[i] == '"') {
			for (i++;; i++) {
				unsigned char c;

				if (i == n)
					return false;
				c = (unsigned char)e[i];
				if (c == '"')
					break;
				if (c == '\\') {
					if (++i == n)
						return false;
					c = (unsigned char)e[i];
				}
				if (!is_value_char(c))
					return false;
			}
			i++;
		} else {
			s = i;
			while (i < n && is_tchar((unsigned char)e[i]))
				i++;
			if (i == s)
				return false;
		}
	}
#undef SKIP_BWS
	return true;
}

/* Chunked framing, byte by byte for the size lines, memcpy for the data. */
static int
feed_chunked(struct http_parser *p, const uint8_t *d, size_t n, size_t *used)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = d[i];

		switch (p->p_state) {
		case ST_CHUNK_SIZE: {
			int h = hex_digit(c);

			i++;
			if (h >= 0) {
				if (p->p_hex_digits == HTTP_MAX_HEX_DIGITS)
					goto err_long;
				p->p_left = p->p_left * 16 + (uint64_t)h;
				p->p_hex_digits++;
			} else if (p->p_hex_digits == 0) {
				*used = i;
				return HTTP_ERR_CHUNK_SIZE;
			} else if (c == '\r') {
				p->p_state = ST_CHUNK_LF;
			} else if (c == ';' || is_ows(c)) {
				p->p_ext[0] = (char)c;
				p->p_ext_len = 1;
				p->p_state = ST_CHUNK_EXT;
			} else if (c == '\n') {
				*used = i;
				return HTTP_ERR_BARE_LF;
			} else {
				*used = i;
				return HTTP_ERR_CHUNK_SIZE;
			}
			break;
		}
		case ST_CHUNK_EXT:
			i++;
			if (c == '\r') {
				p->p_state = ST_CHUNK_LF;
			} else if (c == '\n') {
				*used = i;
				return HTTP_ERR_BARE_LF;
			} else if (p->p_ext_len == sizeof(p->p_ext)) {
				*used = i;
				return HTTP_ERR_CHUNK_EXT_LONG;
			} else {
				p->p_ext[p->p_ext_len++] = (char)c;
			}
			break;
		case ST_CHUNK_LF:
			i++;
			*used = i;
			if (c != '\n')
				return HTTP_ERR_BARE_CR;
			if (p->p_ext_len > 0 &&
			    !chunk_ext_valid(p->p_ext, p->p_ext_len))
				return HTTP_ERR_CHUNK_EXT;
			p->p_ext_len = 0;
			p->p_hex_digits = 0;
			if (p->p_left == 0) {
				/* last-chunk: trailers follow in line mode,
				 * stored after the head, sharing its cap. */
				p->p_state = ST_TRAILERS;
				p->p_line_start = p->p_head_len;
				return HTTP_MORE;
			}
			/* H-02: refuse before reading the data. */
			if (p->p_left > p->p_body_cap - p->p_body_len)
				return HTTP_ERR_BODY_TOO_LARGE;
			p->p_state = ST_CHUNK_DATA;
			break;
		case ST_CHUNK_DATA: {
			size_t take = n - i;

			if (take > p->p_left)
				take = (size_t)p->p_left;
			memcpy(p->p_body + p->p_body_len, d + i, take);
			p->p_body_len += take;
			p->p_left -= take;
			i += take;
			if (p->p_left == 0)
				p->p_state = ST_CHUNK_DCR;
			break;
		}
		case ST_CHUNK_DCR:
		case ST_CHUNK_DLF:
			i++;
			if (c != (p->p_state == ST_CHUNK_DCR ? '\r' : '\n')) {
				*used = i;
				return HTTP_ERR_CHUNK_CRLF;
			}
			p->p_state = p->p_state == ST_CHUNK_DCR ?
			    ST_CHUNK_DLF : ST_CHUNK_SIZE;
			break;
		default:
			abort(); /* unreachable: only called in chunk states */
		}
	}
	*used = i;
	return HTTP_MORE;

err_long:
	*used = i;
	return HTTP_ERR_CHUNK_SIZE_LONG;
}

static int
feed_body_cl(struct http_parser *p, const uint8_t *d, size_t n, size_t *used)
{
	size_t take = n;

	if (take > p->p_left)
		take = (size_t)p->p_left;
	memcpy(p->p_body + p->p_body_len, d, take);
	p->p_body_len += take;
	p->p_left -= take;
	*used = take;
	return p->p_left == 0 ? complete(p) : HTTP_MORE;
}

int
http_parser_feed(struct http_parser *p, const void *data, size_t len,
    size_t *consumed)
{
	const uint8_t *d = data;
	size_t off = 0;
	int rc = HTTP_MORE;

	*consumed = 0;
	if (p->p_state == ST_ERROR)
		return p->p_err;
	if (p->p_state == ST_DONE)
		return HTTP_DONE;
	while (off < len && rc == HTTP_MORE) {
		size_t used = 0;

		switch (p->p_state) {
		case ST_REQLINE:
		case ST_HEADERS:
		case ST_TRAILERS:
			rc = feed_line(p, d + off, len - off, &used);
			break;
		case ST_BODY_CL:
			rc = feed_body_cl(p, d + off, len - off, &used);
			break;
		default:
			rc = feed_chunked(p, d + off, len - off, &used);
			break;
		}
		off += used;
		/* A chunked body may end (trailers) inside feed_chunked's
		 * switch to line mode: loop again with the rest. */
	}
	*consumed = off;
	return rc < 0 ? fail(p, rc) : rc;
}

/* ---- media type ------------------------------------------------------ */

/* Copy a token of n bytes lowercased into dst[cap]; false if too long. */
static bool
copy_lower(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)ascii_lower((unsigned char)src[i]);
	dst[n] = '\0';
	return true;
}

int
http_media_type_parse(const char *value, struct http_media_type *mt)
{
	const char *s = value, *t;

	memset(mt, 0, sizeof(*mt));
	while (is_ows((unsigned char)*s))
		s++;
	for (t = s; is_tchar((unsigned char)*t); t++)
		;
	if (t == s || *t != '/' ||
	    !copy_lower(mt->mt_type, sizeof(mt->mt_type), s, (size_t)(t - s)))
		goto bad;
	s = t + 1;
	for (t = s; is_tchar((unsigned char)*t); t++)
		;
	if (t == s || !copy_lower(mt->mt_subtype, sizeof(mt->mt_subtype), s,
	    (size_t)(t - s)))
		goto bad;
	s = t;

	for (;;) {
		const char *name;
		size_t name_len, vlen = 0;
		char vbuf[MSSP_HTTP_MAX_MEDIA_PARAM];
		bool too_long = false;

		while (is_ows((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		if (*s != ';')
			goto bad;
		s++;
		while (is_ows((unsigned char)*s))
			s++;
		if (*s == ';' || *s == '\0')
			continue; /* empty parameter: allowed by RFC 9110 */
		for (name = s; is_tchar((unsigned char)*s); s++)
			;
		name_len = (size_t)(s - name);
		/* No whitespace around '=' (RFC 9110 §5.6.6). */
		if (name_len == 0 || *s != '=')
			goto bad;
		s++;
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				unsigned char c = (unsigned char)*s;

				if (c == '\\') {
					c = (unsigned char)*++s;
					if (c == '\0')
						goto bad;
				}
				if (c == '\0' || !is_value_char(c))
					goto bad;
				if (vlen + 1 < sizeof(vbuf))
					vbuf[vlen++] = (char)c;
				else
					too_long = true;
			}
			s++;
		} else {
			const char *v = s;

			while (is_tchar((unsigned char)*s))
				s++;
			if (s == v)
				goto bad;
			for (; v < s; v++) {
				if (vlen + 1 < sizeof(vbuf))
					vbuf[vlen++] = *v;
				else
					too_long = true;
			}
		}
		vbuf[vlen] = '\0';
		if (name_len == 7 && ascii_caseeq_n(name, "charset", 7)) {
			if (mt->mt_has_charset || vlen == 0 || too_long ||
			    !copy_lower(mt->mt_charset, sizeof(mt->mt_charset),
			    vbuf, vlen))
				goto bad;
			mt->mt_has_charset = true;
		} else if (name_len == 6 && ascii_caseeq_n(name, "action", 6)) {
			if (mt->mt_has_action || too_long)
				goto bad;
			memcpy(mt->mt_action, vbuf, vlen + 1);
			mt->mt_has_action = true;
		}
	}
	return 0;

bad:
	memset(mt, 0, sizeof(*mt));
	return HTTP_ERR_MEDIA_TYPE;
}
