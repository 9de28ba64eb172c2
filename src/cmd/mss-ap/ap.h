/*
 * ap.h - the pieces of mss-ap, the AP-side client and load generator
 * (docs/internals/mss-ap.md).  One file per concern under src/cmd/mss-ap/:
 *
 *   conf.c     the mss-ap.conf file (util/config INI), paths made absolute
 *   build.c    requests as structs (mss/msg.h) and their wire form
 *   result.c   responses and faults decoded and classified; CMS checks
 *   http.c     one blocking HTTPS exchange (libcurl easy, mutual TLS)
 *   notify.c   the asynchServerServer notification listener (net/server)
 *   cmds.c     sign, status, receipt, profile, handshake
 *   bench.c    the load generator (libcurl multi)
 *
 * Pure logic (building, interpreting) never does I/O, so the commands and
 * the load generator share it.  Every function that can fail returns -1 /
 * NULL with a message in a caller-supplied buffer or struct mss_err.
 */
#ifndef MSSP_CMD_MSS_AP_AP_H
#define MSSP_CMD_MSS_AP_AP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "mss/msg.h"
#include "mss/status.h"
#include "util/buf.h"
#include "util/limits.h"

/* Exit statuses of every command. */
#define AP_EXIT_OK	  0 /* 500/502 verified, or the query answered      */
#define AP_EXIT_REFUSED	  1 /* an ETSI error status, a fault, a bad signature */
#define AP_EXIT_USAGE	  2 /* command line or configuration                */
#define AP_EXIT_TRANSPORT 3 /* connect, TLS, HTTP error, no/garbled answer  */

#define AP_DEFAULT_CONF	   "./run/demo/mss-ap.conf"
#define AP_DEFAULT_DTBD	   "Sign in to Demo AP?"
#define AP_DEFAULT_PROFILE "mss::sign:loa3"
#define AP_VALIDATE_URI	   MSS_NS "validate"
#define AP_ERR_MAX	   256

/* ---- conf.c ----------------------------------------------------------- */

/* Every path is absolute or relative to the directory of the file. */
struct ap_conf {
	char *ac_ap_id;
	char *ac_ap_pwd;	/* a (weak) secret: never printed, wiped at free */
	char *ac_url;		/* AE base URL, no trailing '/'                  */
	char *ac_cert;
	char *ac_key;
	char *ac_ca;		/* verifies the AE (and the MSSP's notifications) */
	char *ac_user_ca;	/* verifies users' signatures                    */
	char *ac_notify_listen;
	unsigned ac_notify_port;
};

/* Load `path`.  0, or -1 with `err` filled (names the line, never a value). */
int ap_conf_load(const char *path, struct ap_conf *c, char *err, size_t errlen);
void ap_conf_free(struct ap_conf *c); /* accepts a zeroed struct */
/* Replace the base URL (command line --url).  0 or -1 (no memory). */
int ap_conf_set_url(struct ap_conf *c, const char *url);

/* ---- build.c ---------------------------------------------------------- */

enum ap_fmt { AP_FMT_SOAP12, AP_FMT_SOAP11, AP_FMT_JSON };

/* A fresh AP_TransID: "A" + seconds + microseconds + 32 random bits, an
 * NCName unique per AP for all practical purposes. */
#define AP_TRANSID_LEN 48
void ap_trans_id_new(char out[AP_TRANSID_LEN]);
/* Longest --ap-trans-id taken from the command line: longer than the AE
 * accepts (MSSP_MSG_MAX_TRANSID) so that its refusal can be tested. */
#define AP_TRANSID_ARG_MAX 256
/* Now, UTC, xs:dateTime with 'Z'. */
#define AP_INSTANT_LEN 32
void ap_instant_now(char out[AP_INSTANT_LEN]);

struct ap_sign_params {
	const char *sp_msisdn;
	const char *sp_dtbd;	   /* NULL: AP_DEFAULT_DTBD                  */
	const char *sp_dtbs;	   /* text; NULL: same as the DTBD           */
	const char *sp_dtbs_b64;   /* binary DTBS, base64 (beats sp_dtbs)    */
	const char *sp_profile;	   /* NULL: AP_DEFAULT_PROFILE               */
	const char *sp_mode;	   /* MessagingMode value (wire spelling)    */
	const char *sp_ap_trans_id;
	const char *sp_ap_url;	   /* asynchServerServer target, or NULL     */
	unsigned sp_timeout_s;	   /* 0: no TimeOut attribute                */
	bool sp_validate;	   /* AdditionalService #validate            */
};

/* Requests, each a new message (mss_msg_free) or NULL with err set.
 * Strings are copied into the message. */
struct mss_msg *ap_build_sign(const struct ap_conf *c, const struct ap_sign_params *p,
			      struct mss_err *err);
struct mss_msg *ap_build_status(const struct ap_conf *c, const char *ap_trans_id,
				const char *mssp_trans_id, struct mss_err *err);
struct mss_msg *ap_build_receipt(const struct ap_conf *c, const char *ap_trans_id,
				 const char *mssp_trans_id, const char *msisdn,
				 const char *message, struct mss_err *err);
struct mss_msg *ap_build_profile(const struct ap_conf *c, const char *ap_trans_id,
				 const char *msisdn, struct mss_err *err);
struct mss_msg *ap_build_handshake(const struct ap_conf *c, const char *ap_trans_id,
				   struct mss_err *err);

/* The DTBS bytes a sign request carries (what the CMS must contain): the
 * text, or the decoded base64.  New malloc'd buffer in *out (free), or -1
 * when the base64 is invalid or too long. */
int ap_dtbs_bytes(const struct ap_sign_params *p, unsigned char **out, size_t *len);

/* The wire form of a request. */
struct ap_wire {
	char w_url[1024];
	const char *w_content_type;
	char w_soap_action[64];	/* "" when none */
	struct mss_buf w_body;
};

/* Encode `m` for `fmt` towards base URL `base`: the port URL
 * (/soap/services/MSS_xxxPort or /rest/service), the media type, the
 * SOAPAction for SOAP 1.1.  w_body is (re)initialised here; free it with
 * mss_buf_free.  0, or -1 with err. */
int ap_encode(const struct mss_msg *m, enum ap_fmt fmt, const char *base, struct ap_wire *w,
	      struct mss_err *err);

/* Copy `s` for display with the AP_PWD value replaced by "***" (SOAP
 * attribute or JSON member).  New malloc'd string or NULL. */
char *ap_redact(const char *s, size_t len);

/* ---- result.c --------------------------------------------------------- */

enum ap_rkind {
	AP_R_MSG,	/* a message of the expected type              */
	AP_R_FAULT,	/* SOAP or JSON fault (code from its subcode)  */
	AP_R_BAD,	/* HTTP error without fault, garbled, unexpected */
};

struct ap_result {
	enum ap_rkind r_kind;
	struct mss_msg *r_msg;		/* owned; NULL for AP_R_BAD        */
	int r_code;			/* status or fault code (0: none)  */
	const char *r_name;		/* its name (static or in r_msg)   */
	const char *r_detail;		/* fault detail, "" if none        */
	const char *r_mssp_trans_id;	/* from the message, or NULL       */
	const struct mss_signature *r_sig; /* SignatureResp/StatusResp     */
	char r_why[AP_ERR_MAX];		/* AP_R_BAD: what was wrong        */
};

/* Interpret an HTTP answer: status `http`, body `body` (`len` bytes,
 * borrowed) expected to be a message of type `expect` or a fault.  Always
 * fills `r`; free with ap_result_free. */
void ap_result_parse(long http, const char *body, size_t len, enum mss_msg_type expect,
		     struct ap_result *r);
/* Fill `r` from a message already decoded (a notification); takes `m`. */
void ap_result_set_msg(struct ap_result *r, struct mss_msg *m);
void ap_result_free(struct ap_result *r);
/* Decode SOAP or JSON by the first significant byte (NULL with err). */
struct mss_msg *ap_decode_any(const char *buf, size_t len, struct mss_err *err);
/* The first-level StatusCode of a status, 0 when absent or not a number. */
int ap_status_code(const struct mss_status *st);

/* Users' signatures: a trust store holding the user CA. */
struct ap_verifier {
	X509_STORE *v_store;
};

int ap_verifier_load(struct ap_verifier *v, const char *user_ca_file, char *err, size_t errlen);
void ap_verifier_free(struct ap_verifier *v);
/* Verify the TS 102 204 signature `sig` against the user CA and require
 * that its content is exactly `dtbs`.  On success 0 and the signer's
 * subject (RFC 2253) in `subject`; else -1 and why in `why`. */
int ap_verify(const struct ap_verifier *v, const struct mss_signature *sig,
	      const unsigned char *dtbs, size_t dtbs_len, char *subject, size_t sublen,
	      char *why, size_t whylen);

/* ---- REST credentials (mss-ap.c: --basic, --basic-file, --api-key,
 * --rest-path; docs/internals/rest.md) ----------------------------------- */

enum ap_rest_mode { AP_REST_CERT, AP_REST_BASIC, AP_REST_APIKEY };

struct ap_rest_auth {
	enum ap_rest_mode ra_mode;	/* CERT: the client certificate (default) */
	char ra_user[MSSP_REST_MAX_SECRET + 1];	  /* Basic user / the AP_ID     */
	char ra_secret[MSSP_REST_MAX_SECRET + 1]; /* password / API key; wiped
						   * at exit                    */
	bool ra_per_op_path;		/* /rest/service/sign etc.          */
};

/* Set once by main() before a command runs; read by http.c and build.c. */
extern struct ap_rest_auth ap_rest;

/* ---- http.c ----------------------------------------------------------- */

struct ap_http {
	CURL *h_easy;
	bool h_verbose;
	struct curl_slist *h_hdrs;
};

struct ap_http_resp {
	long hr_status;			/* 0: transport failure    */
	struct mss_buf hr_body;
	char hr_err[CURL_ERROR_SIZE];	/* transport failure text  */
};

/* Apply the TLS identity and policy of `c` to an easy handle: client
 * certificate and key, the AE's CA (only), TLS 1.2+, HTTP/1.1, no
 * redirects, no proxy from the environment.  0 or -1. */
int ap_curl_tls(CURL *e, const struct ap_conf *c);
/* Headers of a request (Content-Type, SOAPAction, Accept, no Expect). */
struct curl_slist *ap_curl_headers(const struct ap_wire *w);

int ap_http_init(struct ap_http *h, const struct ap_conf *c, bool verbose);
void ap_http_free(struct ap_http *h);
/* POST `w`; `timeout_s` bounds the whole exchange.  Always fills `r`
 * (mss_buf_free(&r->hr_body) after); returns 0 when an HTTP answer came,
 * -1 on a transport failure (r->hr_err says which). */
int ap_http_post(struct ap_http *h, const struct ap_wire *w, unsigned timeout_s,
		 struct ap_http_resp *r);

/* ---- notify.c --------------------------------------------------------- */

struct ap_notify;

/* Start the listener on notify_listen:notify_port (TLS with the AP's
 * certificate, client certificates required and verified with `ca`).
 * Notifications whose AP_TransID is `ap_trans_id` are answered with an
 * MSS_ReceiptReq and handed to ap_notify_wait; others get fault 101.
 * The URL to put in AP_Info/@AP_URL is written to `url`.  NULL on error. */
struct ap_notify *ap_notify_start(const struct ap_conf *c, const char *ap_trans_id, bool verbose,
				  char *url, size_t urllen, char *err, size_t errlen);
/* Also accept a notification that names this MSSP_TransID (once known). */
void ap_notify_set_mssp_trans_id(struct ap_notify *n, const char *mssp_trans_id);
/* Wait up to timeout_ms for the notification; the decoded MSS_StatusResp
 * (caller frees), or NULL on timeout. */
struct mss_msg *ap_notify_wait(struct ap_notify *n, unsigned timeout_ms);
/* Stop (after the receipt answer has left, at most a short grace) and free. */
void ap_notify_free(struct ap_notify *n);

/* ---- commands (cmds.c, bench.c) --------------------------------------- */

/* Options every command takes. */
struct ap_common {
	const char *co_config;
	const char *co_url;
	enum ap_fmt co_fmt;
	bool co_verbose;
};

/* getopt_long entries of the common options; their `val`s are >= 0x100. */
#define AP_COMMON_OPTIONS                                          \
	{ "config", required_argument, NULL, 0x100 },              \
	{ "json", no_argument, NULL, 0x101 },                      \
	{ "soap11", no_argument, NULL, 0x102 },                    \
	{ "soap12", no_argument, NULL, 0x103 },                    \
	{ "url", required_argument, NULL, 0x104 },                 \
	{ "verbose", no_argument, NULL, 'v' },                     \
	{ "help", no_argument, NULL, 'h' }

/* 1 when `c` was a common option (applied to `co`), else 0. */
int ap_common_opt(int c, const char *arg, struct ap_common *co);
/* Load the configuration the options name and apply --url.  0, or -1
 * after printing why (exit AP_EXIT_USAGE). */
int ap_common_conf(const struct ap_common *co, struct ap_conf *conf);
/* Print a fault or error status line; the exit status for it. */
int ap_print_refusal(const struct ap_result *r);

int ap_cmd_sign(int argc, char **argv);
int ap_cmd_status(int argc, char **argv);
int ap_cmd_receipt(int argc, char **argv);
int ap_cmd_profile(int argc, char **argv);
int ap_cmd_handshake(int argc, char **argv);
int ap_cmd_bench(int argc, char **argv);

#endif
