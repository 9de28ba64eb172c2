/*
 * cmds.c - mss-ap sign | status | receipt | profile | handshake.
 *
 * Output (stdout, one fact per line, docs/internals/mss-ap.md):
 *   AP_TransID: <id>
 *   status <NNN> <NAME>                 each answer that is not 504
 *   MSSP_TransID: <id>
 *   signature verified: <signer subject, RFC 2253>
 *   fault <NNN> <NAME>: <detail>        SOAP / JSON fault
 * Diagnostics go to stderr; -v adds the raw exchange there (AP_PWD masked).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/mss-ap/ap.h"

/* ---- shared by every command ------------------------------------------ */

int
ap_common_opt(int c, const char *arg, struct ap_common *co)
{
	switch (c) {
	case 0x100: co->co_config = arg; return 1;
	case 0x101: co->co_fmt = AP_FMT_JSON; return 1;
	case 0x102: co->co_fmt = AP_FMT_SOAP11; return 1;
	case 0x103: co->co_fmt = AP_FMT_SOAP12; return 1;
	case 0x104: co->co_url = arg; return 1;
	case 'v': co->co_verbose = true; return 1;
	default: return 0;
	}
}

int
ap_common_conf(const struct ap_common *co, struct ap_conf *conf)
{
	char err[AP_ERR_MAX];

	if (ap_conf_load(co->co_config ? co->co_config : AP_DEFAULT_CONF, conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "mss-ap: %s\n", err);
		return -1;
	}
	if (co->co_url != NULL && ap_conf_set_url(conf, co->co_url) != 0) {
		fprintf(stderr, "mss-ap: out of memory\n");
		ap_conf_free(conf);
		return -1;
	}
	return 0;
}

static bool
status_is_success(int code)
{
	const struct mss_status_info *si = mss_status_lookup(code);

	return si != NULL && si->cls == MSS_CLASS_SUCCESS;
}

int
ap_print_refusal(const struct ap_result *r)
{
	switch (r->r_kind) {
	case AP_R_FAULT:
		printf("fault %d %s: %s\n", r->r_code, r->r_name, r->r_detail);
		return AP_EXIT_REFUSED;
	case AP_R_MSG:
		printf("status %d %s\n", r->r_code, r->r_name);
		return AP_EXIT_REFUSED;
	default:
		fprintf(stderr, "mss-ap: %s\n", r->r_why);
		return AP_EXIT_TRANSPORT;
	}
}

/* Encode, send, interpret.  0 with `r` filled, or an exit status after
 * printing why (usage: the message could not be encoded; transport). */
static int
exchange(struct ap_http *h, const struct ap_conf *c, enum ap_fmt fmt, const struct mss_msg *m,
	 enum mss_msg_type expect, unsigned timeout_s, struct ap_result *r)
{
	struct ap_http_resp resp;
	struct ap_wire w;
	struct mss_err err;

	memset(r, 0, sizeof(*r));
	if (ap_encode(m, fmt, c->ac_url, &w, &err) != 0) {
		fprintf(stderr, "mss-ap: cannot encode the request: %s\n", err.detail);
		mss_buf_free(&w.w_body);
		return AP_EXIT_USAGE;
	}
	if (ap_http_post(h, &w, timeout_s, &resp) != 0) {
		fprintf(stderr, "mss-ap: transport: %s\n", resp.hr_err);
		mss_buf_free(&w.w_body);
		return AP_EXIT_TRANSPORT;
	}
	mss_buf_free(&w.w_body);
	ap_result_parse(resp.hr_status, mss_buf_str(&resp.hr_body), mss_buf_len(&resp.hr_body), expect,
			r);
	mss_buf_free(&resp.hr_body);
	return 0;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 500/502: the signature must verify with the user CA over exactly the
 * DTBS we sent, or the AP refuses it whatever the status says. */
static int
final_signature(const struct ap_verifier *v, const struct ap_result *r, const unsigned char *dtbs,
		size_t dtbs_len)
{
	char subject[512], why[AP_ERR_MAX];

	if (ap_verify(v, r->r_sig, dtbs, dtbs_len, subject, sizeof(subject), why, sizeof(why)) != 0) {
		printf("signature NOT verified: %s\n", why);
		return AP_EXIT_REFUSED;
	}
	printf("signature verified: %s\n", subject);
	return AP_EXIT_OK;
}

/* A final answer about the signature transaction (not 100, not 504). */
static int
final_status(const struct ap_verifier *v, const struct ap_result *r, const unsigned char *dtbs,
	     size_t dtbs_len)
{
	if (r->r_kind != AP_R_MSG)
		return ap_print_refusal(r);
	printf("status %d %s\n", r->r_code, r->r_name);
	if (r->r_code == MSS_SIGNATURE || r->r_code == MSS_VALID_SIGNATURE)
		return final_signature(v, r, dtbs, dtbs_len);
	return AP_EXIT_REFUSED;
}

/* ---- sign ------------------------------------------------------------- */

static void
sign_usage(FILE *f)
{
	fputs("usage: mss-ap sign --msisdn +N [--dtbd TEXT] [--dtbs TEXT | --dtbs-b64 B64]\n"
	      "                   [--profile URI] [--mode synch|async|ss] [--timeout SECONDS]\n"
	      "                   [--ap-trans-id ID] [--validate] [--poll-ms MS] [--no-wait]\n"
	      "                   [--config FILE] [--json|--soap11] [--url URL] [-v]\n",
	      f);
}

static const char *
mode_wire(const char *m)
{
	if (strcmp(m, "synch") == 0 || strcmp(m, "sync") == 0)
		return "synch";
	if (strcmp(m, "async") == 0 || strcmp(m, "asynchClientServer") == 0)
		return "asynchClientServer";
	if (strcmp(m, "ss") == 0 || strcmp(m, "asynchServerServer") == 0)
		return "asynchServerServer";
	return NULL;
}

struct sign_run {
	struct ap_common co;
	struct ap_sign_params sp;
	unsigned poll_ms;
	bool no_wait;
	struct ap_conf conf;
	struct ap_verifier ver;
	struct ap_http http;
	struct ap_notify *notify;
	unsigned char *dtbs;
	size_t dtbs_len;
	char ap_trans_id[AP_TRANSID_ARG_MAX + 1];
	char mssp_trans_id[MSSP_MSG_MAX_TRANSID + 1];
};

/* asynchClientServer: MSS_StatusReq every poll_ms until not 504. */
static int
sign_poll(struct sign_run *s)
{
	double deadline = now_s() + s->sp.sp_timeout_s + MSSP_AP_NOTIFY_GRACE_S;
	struct ap_result r;
	struct mss_msg *m;
	struct mss_err err;
	int rc;

	for (;;) {
		if (now_s() > deadline) {
			fprintf(stderr, "mss-ap: no final status within TimeOut + %d s\n",
				MSSP_AP_NOTIFY_GRACE_S);
			return AP_EXIT_TRANSPORT;
		}
		sleep_ms(s->poll_ms);
		/* Laverca's habit: the status query carries the AP_TransID of
		 * the signature request (clients.md §6). */
		if ((m = ap_build_status(&s->conf, s->ap_trans_id, s->mssp_trans_id, &err)) == NULL) {
			fprintf(stderr, "mss-ap: %s\n", err.detail);
			return AP_EXIT_TRANSPORT;
		}
		rc = exchange(&s->http, &s->conf, s->co.co_fmt, m, MSS_STATUS_RESP,
			      MSSP_AP_HTTP_SLACK_S, &r);
		mss_msg_free(m);
		if (rc != 0)
			return rc;
		if (r.r_kind == AP_R_MSG && r.r_code == MSS_OUTSTANDING_TRANSACTION) {
			if (s->co.co_verbose)
				fprintf(stderr, "status 504 OUTSTANDING_TRANSACTION\n");
			ap_result_free(&r);
			continue;
		}
		rc = final_status(&s->ver, &r, s->dtbs, s->dtbs_len);
		ap_result_free(&r);
		return rc;
	}
}

/* asynchServerServer: the answer comes to our listener. */
static int
sign_wait_notification(struct sign_run *s)
{
	unsigned ms = (s->sp.sp_timeout_s + MSSP_AP_NOTIFY_GRACE_S) * 1000u;
	struct ap_result r;
	struct mss_msg *m;
	int rc;

	ap_notify_set_mssp_trans_id(s->notify, s->mssp_trans_id);
	if ((m = ap_notify_wait(s->notify, ms)) == NULL) {
		fprintf(stderr, "mss-ap: no notification within TimeOut + %d s\n",
			MSSP_AP_NOTIFY_GRACE_S);
		return AP_EXIT_TRANSPORT;
	}
	ap_result_set_msg(&r, m);
	if (r.r_mssp_trans_id != NULL && strcmp(r.r_mssp_trans_id, s->mssp_trans_id) != 0) {
		fprintf(stderr, "mss-ap: notification for MSSP_TransID %s, expected %s\n",
			r.r_mssp_trans_id, s->mssp_trans_id);
		ap_result_free(&r);
		return AP_EXIT_TRANSPORT;
	}
	rc = final_status(&s->ver, &r, s->dtbs, s->dtbs_len);
	ap_result_free(&r);
	return rc;
}

static int
sign_run(struct sign_run *s)
{
	char err[AP_ERR_MAX], url[256];
	struct mss_err merr;
	struct ap_result r;
	struct mss_msg *m;
	bool ss = strcmp(s->sp.sp_mode, "asynchServerServer") == 0;
	bool synch = strcmp(s->sp.sp_mode, "synch") == 0;
	int rc;

	if (ap_common_conf(&s->co, &s->conf) != 0)
		return AP_EXIT_USAGE;
	if (ap_verifier_load(&s->ver, s->conf.ac_user_ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "mss-ap: %s\n", err);
		return AP_EXIT_USAGE;
	}
	if (ap_dtbs_bytes(&s->sp, &s->dtbs, &s->dtbs_len) != 0) {
		fprintf(stderr, "mss-ap: --dtbs-b64 is not valid base64 (or longer than %d bytes)\n",
			MSSP_MSG_MAX_DTBS);
		return AP_EXIT_USAGE;
	}
	if (ap_http_init(&s->http, &s->conf, s->co.co_verbose) != 0) {
		fprintf(stderr, "mss-ap: cannot set up libcurl\n");
		return AP_EXIT_TRANSPORT;
	}
	if (s->sp.sp_ap_trans_id != NULL)
		snprintf(s->ap_trans_id, sizeof(s->ap_trans_id), "%s", s->sp.sp_ap_trans_id);
	else
		ap_trans_id_new(s->ap_trans_id);
	s->sp.sp_ap_trans_id = s->ap_trans_id;
	if (ss) {
		s->notify = ap_notify_start(&s->conf, s->ap_trans_id, s->co.co_verbose, url, sizeof(url),
					    err, sizeof(err));
		if (s->notify == NULL) {
			fprintf(stderr, "mss-ap: %s\n", err);
			return AP_EXIT_TRANSPORT;
		}
		s->sp.sp_ap_url = url;
		if (s->co.co_verbose)
			fprintf(stderr, "notification listener: %s\n", url);
	}
	if ((m = ap_build_sign(&s->conf, &s->sp, &merr)) == NULL) {
		fprintf(stderr, "mss-ap: %s\n", merr.detail);
		return AP_EXIT_TRANSPORT;
	}
	printf("AP_TransID: %s\n", s->ap_trans_id);
	fflush(stdout);
	rc = exchange(&s->http, &s->conf, s->co.co_fmt, m, MSS_SIGNATURE_RESP,
		      (synch ? s->sp.sp_timeout_s : 0) + MSSP_AP_HTTP_SLACK_S, &r);
	mss_msg_free(m);
	if (rc != 0)
		return rc;
	if (r.r_kind != AP_R_MSG) {
		rc = ap_print_refusal(&r);
		ap_result_free(&r);
		return rc;
	}
	if (r.r_mssp_trans_id != NULL)
		snprintf(s->mssp_trans_id, sizeof(s->mssp_trans_id), "%s", r.r_mssp_trans_id);
	if (r.r_code != MSS_REQUEST_OK) {
		printf("status %d %s\nMSSP_TransID: %s\n", r.r_code, r.r_name, s->mssp_trans_id);
		rc = r.r_code == MSS_SIGNATURE || r.r_code == MSS_VALID_SIGNATURE
			     ? final_signature(&s->ver, &r, s->dtbs, s->dtbs_len)
			     : AP_EXIT_REFUSED;
		ap_result_free(&r);
		return rc;
	}
	ap_result_free(&r);
	printf("status 100 REQUEST_OK\nMSSP_TransID: %s\n", s->mssp_trans_id);
	fflush(stdout);
	if (synch) {
		fprintf(stderr, "mss-ap: 100 REQUEST_OK to a synchronous request\n");
		return AP_EXIT_TRANSPORT;
	}
	if (s->no_wait)
		return AP_EXIT_OK;
	if (s->mssp_trans_id[0] == '\0') {
		fprintf(stderr, "mss-ap: REQUEST_OK without MSSP_TransID\n");
		return AP_EXIT_TRANSPORT;
	}
	return ss ? sign_wait_notification(s) : sign_poll(s);
}

int
ap_cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "msisdn", required_argument, NULL, 'm' },
		{ "dtbd", required_argument, NULL, 'd' },
		{ "dtbs", required_argument, NULL, 's' },
		{ "dtbs-b64", required_argument, NULL, 'b' },
		{ "profile", required_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'M' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ap-trans-id", required_argument, NULL, 'a' },
		{ "validate", no_argument, NULL, 'V' },
		{ "poll-ms", required_argument, NULL, 'P' },
		{ "no-wait", no_argument, NULL, 'n' },
		AP_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct sign_run s;
	int c, rc;

	memset(&s, 0, sizeof(s));
	s.sp.sp_mode = "synch";
	s.sp.sp_timeout_s = 80; /* what Laverca and the Swisscom clients send */
	s.poll_ms = 1000;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (ap_common_opt(c, optarg, &s.co))
			continue;
		switch (c) {
		case 'm': s.sp.sp_msisdn = optarg; break;
		case 'd': s.sp.sp_dtbd = optarg; break;
		case 's': s.sp.sp_dtbs = optarg; break;
		case 'b': s.sp.sp_dtbs_b64 = optarg; break;
		case 'p': s.sp.sp_profile = optarg; break;
		case 'a': s.sp.sp_ap_trans_id = optarg; break;
		case 'V': s.sp.sp_validate = true; break;
		case 'n': s.no_wait = true; break;
		case 'M':
			if ((s.sp.sp_mode = mode_wire(optarg)) == NULL) {
				fprintf(stderr, "mss-ap: --mode is synch, async or ss\n");
				return AP_EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_uint(optarg, 1, MSSP_MSG_MAX_TIMEOUT_S, &s.sp.sp_timeout_s) != 0) {
				fprintf(stderr, "mss-ap: --timeout is 1..%d seconds\n", MSSP_MSG_MAX_TIMEOUT_S);
				return AP_EXIT_USAGE;
			}
			break;
		case 'P':
			if (parse_uint(optarg, MSSP_AP_MIN_POLL_MS, MSSP_AP_MAX_POLL_MS, &s.poll_ms) != 0) {
				fprintf(stderr, "mss-ap: --poll-ms is %d..%d\n", MSSP_AP_MIN_POLL_MS,
					MSSP_AP_MAX_POLL_MS);
				return AP_EXIT_USAGE;
			}
			break;
		case 'h': sign_usage(stdout); return AP_EXIT_OK;
		default: sign_usage(stderr); return AP_EXIT_USAGE;
		}
	}
	if (s.sp.sp_msisdn == NULL || optind != argc || (s.sp.sp_dtbs && s.sp.sp_dtbs_b64) ||
	    (s.sp.sp_ap_trans_id && strlen(s.sp.sp_ap_trans_id) > AP_TRANSID_ARG_MAX)) {
		sign_usage(stderr);
		return AP_EXIT_USAGE;
	}
	rc = sign_run(&s);
	fflush(stdout);
	ap_notify_free(s.notify);
	ap_http_free(&s.http);
	ap_verifier_free(&s.ver);
	ap_conf_free(&s.conf);
	free(s.dtbs);
	return rc;
}

/* ---- status, receipt, profile, handshake ------------------------------ */

/* The set-up every query shares: configuration, transport, AP_TransID. */
struct query {
	struct ap_common co;
	struct ap_conf conf;
	struct ap_http http;
	const char *ap_trans_id_opt;
	char ap_trans_id[AP_TRANSID_ARG_MAX + 1];
};

static int
query_open(struct query *q)
{
	if (ap_common_conf(&q->co, &q->conf) != 0)
		return AP_EXIT_USAGE;
	if (ap_http_init(&q->http, &q->conf, q->co.co_verbose) != 0) {
		fprintf(stderr, "mss-ap: cannot set up libcurl\n");
		return AP_EXIT_TRANSPORT;
	}
	if (q->ap_trans_id_opt != NULL)
		snprintf(q->ap_trans_id, sizeof(q->ap_trans_id), "%s", q->ap_trans_id_opt);
	else
		ap_trans_id_new(q->ap_trans_id);
	return 0;
}

static void
query_close(struct query *q)
{
	fflush(stdout);
	ap_http_free(&q->http);
	ap_conf_free(&q->conf);
}

/* Send a query built by the caller; print its status line.  Returns 0 and
 * keeps `r` when a success-class status came, else the exit status. */
static int
query_send(struct query *q, struct mss_msg *m, enum mss_msg_type expect, struct ap_result *r,
	   const struct mss_err *build_err)
{
	int rc;

	if (m == NULL) {
		fprintf(stderr, "mss-ap: %s\n", build_err->detail);
		return AP_EXIT_TRANSPORT;
	}
	rc = exchange(&q->http, &q->conf, q->co.co_fmt, m, expect, MSSP_AP_HTTP_SLACK_S, r);
	mss_msg_free(m);
	if (rc != 0)
		return rc;
	if (r->r_kind != AP_R_MSG || (expect != MSS_HANDSHAKE_RESP && !status_is_success(r->r_code))) {
		rc = ap_print_refusal(r);
		ap_result_free(r);
		return rc;
	}
	if (expect != MSS_HANDSHAKE_RESP)
		printf("status %d %s\n", r->r_code, r->r_name);
	return 0;
}

static void
query_usage(FILE *f, const char *what)
{
	fprintf(f, "usage: mss-ap %s [--config FILE] [--json|--soap11] [--url URL] [-v]\n", what);
}

#define Q_HELP_SHOWN (-1) /* query_getopt: --help printed, exit 0 */
#define Q_OPT_TRANS 't'
#define Q_OPT_MSISDN 'm'
#define Q_OPT_MESSAGE 'M'
#define Q_OPT_APTRANS 'a'
#define Q_OPT_DTBS 's'
#define Q_OPT_DTBS64 'b'

struct query_args {
	const char *trans_id, *msisdn, *message, *dtbs, *dtbs_b64;
};

/* getopt for the query commands (each command accepts a subset). */
static int
query_getopt(int argc, char **argv, const char *allowed, const char *usage_what, struct query *q,
	     struct query_args *a)
{
	static const struct option opts[] = {
		{ "trans-id", required_argument, NULL, Q_OPT_TRANS },
		{ "msisdn", required_argument, NULL, Q_OPT_MSISDN },
		{ "message", required_argument, NULL, Q_OPT_MESSAGE },
		{ "ap-trans-id", required_argument, NULL, Q_OPT_APTRANS },
		{ "dtbs", required_argument, NULL, Q_OPT_DTBS },
		{ "dtbs-b64", required_argument, NULL, Q_OPT_DTBS64 },
		AP_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (ap_common_opt(c, optarg, &q->co))
			continue;
		if (c == 'h') {
			query_usage(stdout, usage_what);
			return Q_HELP_SHOWN;
		}
		if (c < 0x100 && c != '?' && strchr(allowed, c) != NULL) {
			switch (c) {
			case Q_OPT_TRANS: a->trans_id = optarg; break;
			case Q_OPT_MSISDN: a->msisdn = optarg; break;
			case Q_OPT_MESSAGE: a->message = optarg; break;
			case Q_OPT_APTRANS: q->ap_trans_id_opt = optarg; break;
			case Q_OPT_DTBS: a->dtbs = optarg; break;
			case Q_OPT_DTBS64: a->dtbs_b64 = optarg; break;
			}
			continue;
		}
		query_usage(stderr, usage_what);
		return AP_EXIT_USAGE;
	}
	if (optind != argc ||
	    (q->ap_trans_id_opt != NULL && strlen(q->ap_trans_id_opt) > AP_TRANSID_ARG_MAX)) {
		query_usage(stderr, usage_what);
		return AP_EXIT_USAGE;
	}
	return 0;
}

int
ap_cmd_status(int argc, char **argv)
{
	const char *what = "status --trans-id ID [--ap-trans-id ID] [--dtbs TEXT | --dtbs-b64 B64]";
	struct query_args a = { 0 };
	struct ap_sign_params sp;
	struct ap_verifier ver = { 0 };
	struct mss_err err;
	struct ap_result r;
	struct query q;
	unsigned char *dtbs = NULL;
	size_t dtbs_len = 0;
	char msg[AP_ERR_MAX];
	int rc;

	memset(&q, 0, sizeof(q));
	if ((rc = query_getopt(argc, argv, "tasb", what, &q, &a)) != 0)
		return rc == Q_HELP_SHOWN ? AP_EXIT_OK : rc;
	if (a.trans_id == NULL || (a.dtbs && a.dtbs_b64)) {
		query_usage(stderr, what);
		return AP_EXIT_USAGE;
	}
	memset(&sp, 0, sizeof(sp));
	sp.sp_dtbs = a.dtbs;
	sp.sp_dtbs_b64 = a.dtbs_b64;
	if ((a.dtbs || a.dtbs_b64) && ap_dtbs_bytes(&sp, &dtbs, &dtbs_len) != 0) {
		fprintf(stderr, "mss-ap: --dtbs-b64 is not valid base64\n");
		return AP_EXIT_USAGE;
	}
	if ((rc = query_open(&q)) != 0)
		goto out;
	if (dtbs != NULL && ap_verifier_load(&ver, q.conf.ac_user_ca, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "mss-ap: %s\n", msg);
		rc = AP_EXIT_USAGE;
		goto out;
	}
	rc = query_send(&q, ap_build_status(&q.conf, q.ap_trans_id, a.trans_id, &err), MSS_STATUS_RESP,
			&r, &err);
	if (rc != 0)
		goto out;
	printf("MSSP_TransID: %s\n", r.r_mssp_trans_id ? r.r_mssp_trans_id : a.trans_id);
	if (r.r_sig != NULL && dtbs != NULL)
		rc = final_signature(&ver, &r, dtbs, dtbs_len);
	else if (r.r_sig != NULL)
		printf("signature: present (not verified: give --dtbs or --dtbs-b64)\n");
	ap_result_free(&r);
out:
	query_close(&q);
	ap_verifier_free(&ver);
	free(dtbs);
	return rc;
}

int
ap_cmd_receipt(int argc, char **argv)
{
	const char *what = "receipt --trans-id ID --msisdn +N --message TEXT [--ap-trans-id ID]";
	struct query_args a = { 0 };
	const struct mss_status *st;
	const struct mss_receipt_ext *x;
	struct mss_err err;
	struct ap_result r;
	struct query q;
	int rc;

	memset(&q, 0, sizeof(q));
	if ((rc = query_getopt(argc, argv, "tmMa", what, &q, &a)) != 0)
		return rc == Q_HELP_SHOWN ? AP_EXIT_OK : rc;
	if (a.trans_id == NULL || a.msisdn == NULL || a.message == NULL) {
		query_usage(stderr, what);
		return AP_EXIT_USAGE;
	}
	if ((rc = query_open(&q)) != 0)
		goto out;
	rc = query_send(&q,
			ap_build_receipt(&q.conf, q.ap_trans_id, a.trans_id, a.msisdn, a.message, &err),
			MSS_RECEIPT_RESP, &r, &err);
	if (rc != 0)
		goto out;
	st = r.r_msg->u.receipt_resp->status;
	x = st && st->detail ? st->detail->receipt_response_ext : NULL;
	if (x != NULL) {
		if (x->user_ack)
			printf("UserAck: %s\n", x->user_ack);
		if (x->client_ack)
			printf("ClientAck: %s\n", x->client_ack);
		if (x->network_ack)
			printf("NetworkAck: %s\n", x->network_ack);
		if (x->user_response)
			printf("UserResponse: %s\n", x->user_response);
	}
	ap_result_free(&r);
out:
	query_close(&q);
	return rc;
}

int
ap_cmd_profile(int argc, char **argv)
{
	const char *what = "profile --msisdn +N [--ap-trans-id ID]";
	struct query_args a = { 0 };
	const struct mss_list *l;
	struct mss_err err;
	struct ap_result r;
	struct query q;
	size_t i;
	int rc;

	memset(&q, 0, sizeof(q));
	if ((rc = query_getopt(argc, argv, "ma", what, &q, &a)) != 0)
		return rc == Q_HELP_SHOWN ? AP_EXIT_OK : rc;
	if (a.msisdn == NULL) {
		query_usage(stderr, what);
		return AP_EXIT_USAGE;
	}
	if ((rc = query_open(&q)) != 0)
		goto out;
	rc = query_send(&q, ap_build_profile(&q.conf, q.ap_trans_id, a.msisdn, &err), MSS_PROFILE_RESP,
			&r, &err);
	if (rc != 0)
		goto out;
	l = r.r_msg->u.profile_resp->signature_profile;
	for (i = 0; l != NULL && i < l->n; i++)
		printf("SignatureProfile: %s\n", (const char *)l->items[i]);
	ap_result_free(&r);
out:
	query_close(&q);
	return rc;
}

/* A count, and the items when they are short (URIs, not certificates). */
static void
print_list(const char *name, const struct mss_list *l, bool items)
{
	size_t i;

	printf("%s: %zu\n", name, l ? l->n : 0);
	for (i = 0; items && l != NULL && i < l->n; i++)
		printf("  %s\n", (const char *)l->items[i]);
}

int
ap_cmd_handshake(int argc, char **argv)
{
	const char *what = "handshake [--ap-trans-id ID]";
	struct query_args a = { 0 };
	const struct mss_handshake_resp *h;
	const struct mss_secure_methods *sm;
	struct mss_err err;
	struct ap_result r;
	struct query q;
	int rc;

	memset(&q, 0, sizeof(q));
	if ((rc = query_getopt(argc, argv, "a", what, &q, &a)) != 0)
		return rc == Q_HELP_SHOWN ? AP_EXIT_OK : rc;
	if ((rc = query_open(&q)) != 0)
		goto out;
	rc = query_send(&q, ap_build_handshake(&q.conf, q.ap_trans_id, &err), MSS_HANDSHAKE_RESP, &r,
			&err);
	if (rc != 0)
		goto out;
	h = r.r_msg->u.hs_resp;
	printf("MSSP_TransID: %s\n", h->mssp_trans_id ? h->mssp_trans_id : "");
	if ((sm = h->secure_methods) != NULL)
		printf("SecureMethods: MSS_Signature=%s MSS_Registration=%s MSS_Notification=%s "
		       "MSS_ProfileQuery=%s MSS_Receipt=%s MSS_Status=%s\n",
		       sm->signature, sm->registration, sm->notification, sm->profile_query,
		       sm->receipt, sm->status);
	print_list("MatchingMSSPCertificates", h->mssp_certificates, false);
	print_list("MatchingAPCertificates", h->ap_certificates, false);
	print_list("MatchingSigAlgList", h->signature_algs, true);
	ap_result_free(&r);
out:
	query_close(&q);
	return rc;
}
