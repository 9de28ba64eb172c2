/*
 * http.h - strict, sans-I/O HTTP/1.1 request parser.
 *
 * Bytes in, one request (or one error) out.  The parser never reads a
 * socket, a clock or the configuration; it owns exactly one buffer whose size
 * is fixed when it is created (head cap + body cap), so a connection costs a
 * known amount of memory and no input can make it grow.  The conn layer does
 * the I/O, the timers (H-03) and the responses; docs/internals/http.md lists
 * every check and the bad-input row (H-xx) it answers.
 *
 * Typical loop for one connection (the caller owns its read buffer):
 *
 *     rc = http_parser_feed(p, buf, len, &used);  drop `used` bytes of buf
 *     HTTP_MORE      read more from the socket, feed again
 *     HTTP_CONTINUE  head checked, body still to come: may send
 *                    "HTTP/1.1 100 Continue", then feed again
 *     HTTP_DONE      http_parser_request(p) is complete: answer it, then
 *                    http_parser_next(p) and feed the remaining bytes
 *     < 0            send http_err_status(rc) (if not 0) and close
 *
 * Pipelining (H-09): feed() stops right after the end of a request, so bytes
 * of the next request stay in the caller's buffer until it has answered and
 * called http_parser_next().  The parser never queues input; the caller caps
 * its buffer (and so the pipeline depth, MSSP_HTTP_MAX_PIPELINE) by not
 * reading from the socket while it holds unanswered requests.
 */
#ifndef MSSP_NET_HTTP_H
#define MSSP_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

/* Non-negative results of http_parser_feed(). */
enum http_result {
	HTTP_MORE = 0,     /* all input consumed, request not complete yet    */
	HTTP_CONTINUE = 1, /* head accepted, Expect: 100-continue, body due   */
	HTTP_DONE = 2      /* one complete request is available               */
};

/*
 * Errors.  Each one maps to exactly one HTTP status (http_err_status) and one
 * static reason for the log (http_err_reason); neither ever contains input
 * bytes.  Every error is terminal: the connection must be closed after the
 * answer.
 */
enum http_err {
	HTTP_ERR_STATE = -1,            /* 500 API misuse by the caller        */
	HTTP_ERR_CLOSED = -2,           /*   0 request after Connection: close */
	HTTP_ERR_BARE_LF = -3,          /* 400 LF without CR                   */
	HTTP_ERR_BARE_CR = -4,          /* 400 CR not followed by LF           */
	HTTP_ERR_EMPTY_LINE = -5,       /* 400 more than one CRLF before req.  */
	HTTP_ERR_REQUEST_LINE = -6,     /* 400 malformed request line          */
	HTTP_ERR_METHOD = -7,           /* 400 method is not a token           */
	HTTP_ERR_TARGET = -8,           /* 400 bad or unsupported target form  */
	HTTP_ERR_VERSION_SYNTAX = -9,   /* 400 not "HTTP/" DIGIT "." DIGIT     */
	HTTP_ERR_VERSION = -10,         /* 505 not HTTP/1.1 nor HTTP/1.0       */
	HTTP_ERR_LINE_TOO_LONG = -11,   /* 414 request line over the cap       */
	HTTP_ERR_TARGET_TOO_LONG = -12, /* 414 request-target over the cap     */
	HTTP_ERR_HEAD_TOO_LARGE = -13,  /* 431 header section over the cap     */
	HTTP_ERR_TOO_MANY_FIELDS = -14, /* 431 more than MAX_HEADERS fields    */
	HTTP_ERR_OBS_FOLD = -15,        /* 400 line starts with SP/HTAB        */
	HTTP_ERR_FIELD_NAME = -16,      /* 400 name not a token / no colon     */
	HTTP_ERR_WS_BEFORE_COLON = -17, /* 400 "Name : value"                  */
	HTTP_ERR_FIELD_VALUE = -18,     /* 400 NUL, CTL or DEL in a value      */
	HTTP_ERR_HOST_MISSING = -19,    /* 400 HTTP/1.1 without Host           */
	HTTP_ERR_HOST_DUP = -20,        /* 400 Host twice                      */
	HTTP_ERR_HOST_INVALID = -21,    /* 400 Host is not host[:port]         */
	HTTP_ERR_HOST_MISMATCH = -22,   /* 400 absolute-form authority != Host */
	HTTP_ERR_CL_INVALID = -23,      /* 400 Content-Length not 1*DIGIT      */
	HTTP_ERR_CL_DUP = -24,          /* 400 Content-Length twice            */
	HTTP_ERR_TE_INVALID = -25,      /* 400 Transfer-Encoding not "chunked" */
	HTTP_ERR_TE_DUP = -26,          /* 400 Transfer-Encoding twice         */
	HTTP_ERR_TE_HTTP10 = -27,       /* 400 Transfer-Encoding in HTTP/1.0   */
	HTTP_ERR_TE_UNSUPPORTED = -28,  /* 501 coding other than chunked       */
	HTTP_ERR_CL_AND_TE = -29,       /* 400 both Content-Length and TE      */
	HTTP_ERR_CT_DUP = -30,          /* 400 Content-Type twice              */
	HTTP_ERR_CONNECTION = -31,      /* 400 Connection is not a token list  */
	HTTP_ERR_EXPECT = -32,          /* 417 expectation other than 100-c.   */
	HTTP_ERR_BODY_TOO_LARGE = -33,  /* 413 declared or decoded body > cap  */
	HTTP_ERR_CHUNK_SIZE = -34,      /* 400 chunk size not 1*HEXDIG         */
	HTTP_ERR_CHUNK_SIZE_LONG = -35, /* 400 chunk size over 15 hex digits   */
	HTTP_ERR_CHUNK_EXT = -36,       /* 400 malformed chunk extension       */
	HTTP_ERR_CHUNK_EXT_LONG = -37,  /* 400 chunk extension over the cap    */
	HTTP_ERR_CHUNK_CRLF = -38,      /* 400 no CRLF right after chunk data  */
	HTTP_ERR_TRAILER_FIELD = -39,   /* 400 framing/routing field in trailer*/
	HTTP_ERR_TOO_MANY_TRAILERS = -40, /* 400 over MAX_TRAILERS fields      */
	HTTP_ERR_TRAILERS_TOO_LARGE = -41, /* 400 head + trailers over head cap */
	HTTP_ERR_MEDIA_TYPE = -42       /* 400 malformed Content-Type value    */
};
#define HTTP_ERR_LAST HTTP_ERR_MEDIA_TYPE

/* One header or trailer field; both strings are NUL-terminated, the value
 * has its surrounding OWS removed and contains no CTL other than HTAB. */
struct http_field {
	const char *hf_name;  /* as received (compare case-insensitively) */
	const char *hf_value;
};

/*
 * One parsed request.  Every pointer points into the parser's buffer (or to
 * a string literal) and stays valid until http_parser_next() or
 * http_parser_free(); the caller borrows it and MUST NOT free or modify it.
 */
struct http_request {
	const char *rq_method;   /* token, case-sensitive ("POST")             */
	const char *rq_target;   /* request-target exactly as received         */
	const char *rq_path;     /* origin-form: absolute-path ["?" query]     */
	const char *rq_host;     /* Host value, NULL only in HTTP/1.0          */
	int rq_version_minor;    /* 1 = HTTP/1.1, 0 = HTTP/1.0                 */
	bool rq_keep_alive;      /* RFC 9112 §9.3 decision                     */
	bool rq_expect_continue; /* HTTP/1.1 "Expect: 100-continue" received   */
	bool rq_length_declared; /* Content-Length or Transfer-Encoding given  */
	bool rq_chunked;         /* body was chunked                           */
	uint64_t rq_content_length; /* declared Content-Length, 0 if none     */
	size_t rq_nfields;
	struct http_field rq_fields[MSSP_HTTP_MAX_HEADERS];
	size_t rq_ntrailers;     /* trailers are never merged into rq_fields   */
	struct http_field rq_trailers[MSSP_HTTP_MAX_TRAILERS];
	const uint8_t *rq_body;  /* decoded body; NULL until HTTP_DONE; then   */
	size_t rq_body_len;      /* followed by a NUL not counted in the length */
};

/* Where the parser is; the conn layer picks its timer from this (H-03). */
enum http_phase {
	HTTP_PHASE_IDLE = 0, /* between requests, no byte of the next one yet */
	HTTP_PHASE_HEAD,     /* inside a request line or header section       */
	HTTP_PHASE_BODY,     /* head accepted, body (or trailers) still due   */
	HTTP_PHASE_READY,    /* a complete request waits for http_parser_next */
	HTTP_PHASE_ERROR     /* terminal: answer and close                    */
};

struct http_parser;

/*
 * Create a parser with its single buffer of max_head + max_body + 1 bytes.
 * max_head caps the request line, header section and trailers together (431),
 * max_body caps the decoded body (413); 0 selects MSSP_HTTP_MAX_HEAD /
 * MSSP_HTTP_MAX_BODY.  Values MUST NOT exceed those maxima (returns NULL).
 * Returns a new parser the caller owns (free with http_parser_free), or NULL.
 */
struct http_parser *http_parser_new(size_t max_head, size_t max_body);

/* Wipe (the head may hold credentials) and free.  Accepts NULL. */
void http_parser_free(struct http_parser *p);

/*
 * Feed len bytes (borrowed; copied as needed, not retained).  *consumed gets
 * how many leading bytes were used; on HTTP_MORE that is all of them, on
 * HTTP_CONTINUE / HTTP_DONE the rest belongs to the body or the next request
 * and MUST be fed again later.  Returns an enum http_result, or a negative
 * enum http_err; after an error every later call returns the same error
 * ("close after answering").  While a request is ready, feed() consumes
 * nothing and returns HTTP_DONE again.
 * p and consumed MUST NOT be NULL; data MAY be NULL only when len is 0.
 */
int http_parser_feed(struct http_parser *p, const void *data, size_t len,
    size_t *consumed);

/*
 * The current request, borrowed from the parser: its head is readable as soon
 * as it has been accepted (HTTP_CONTINUE, or phase HTTP_PHASE_BODY; rq_body
 * is NULL then), all of it after HTTP_DONE.  Valid until http_parser_next()
 * or http_parser_free().  NULL before the head is complete and after an error.
 */
const struct http_request *http_parser_request(const struct http_parser *p);

/*
 * Release the answered request and get ready for the next one.  MUST only be
 * called after HTTP_DONE (else HTTP_ERR_STATE).  If the request did not allow
 * keep-alive, returns HTTP_ERR_CLOSED and the parser stays closed: bytes a
 * client pipelined after "Connection: close" are never parsed.  0 on success.
 */
int http_parser_next(struct http_parser *p);

/* Phase of the current request (see enum http_phase). */
enum http_phase http_parser_phase(const struct http_parser *p);

/* The terminal error, or 0 while the parser is healthy. */
int http_parser_error(const struct http_parser *p);

/* HTTP status to answer an error with (400, 413, 414, 417, 431, 501, 505,
 * 500 for API misuse); 0 means "close without answering". */
int http_err_status(int err);

/* Static, input-free reason for logs; never NULL. */
const char *http_err_reason(int err);

/* First header (never a trailer) whose name equals name, ASCII
 * case-insensitively; its value (borrowed from rq) or NULL. */
const char *http_request_header(const struct http_request *rq,
    const char *name);

/* Same for the trailer fields of a chunked body. */
const char *http_request_trailer(const struct http_request *rq,
    const char *name);

/*
 * A Content-Type value split for the SOAP/JSON endpoints.  type, subtype and
 * charset are lowercased (they are case-insensitive); action is unquoted and
 * keeps its case (it is a URI).  Other parameters are checked for syntax and
 * ignored.
 */
struct http_media_type {
	char mt_type[MSSP_HTTP_MAX_MEDIA_TOKEN];
	char mt_subtype[MSSP_HTTP_MAX_MEDIA_TOKEN];
	char mt_charset[MSSP_HTTP_MAX_MEDIA_TOKEN]; /* "" if absent */
	char mt_action[MSSP_HTTP_MAX_MEDIA_PARAM];  /* "" if absent */
	bool mt_has_charset;
	bool mt_has_action;  /* true for action="" too */
};

/*
 * Parse value (borrowed, NUL-terminated) as RFC 9110 §8.3.1 media-type:
 * type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ).
 * Fills *mt (caller-owned) and returns 0, or HTTP_ERR_MEDIA_TYPE on bad
 * syntax, an over-long type/subtype/charset/action, or a repeated charset or
 * action parameter.  value and mt MUST NOT be NULL.
 */
int http_media_type_parse(const char *value, struct http_media_type *mt);

#endif
