/*
 * bench.c - mss-ap bench: a closed-loop load generator on libcurl multi.
 *
 *   --op sign    C slots, each with one keep-alive mutual-TLS connection and
 *                a disjoint slice of the M users, send synchronous
 *                MSS_SignatureReqs back to back (the next as soon as the
 *                previous completes): no user ever has two outstanding
 *                requests, so the AE never answers 406 for our own overlap.
 *   --op status  a few asynchClientServer transactions first, then the C
 *                slots hammer MSS_StatusReq on them.
 *   --op park    N connections, each with one synchronous request the phone
 *                will not answer soon, held open (memory per parked request
 *                on the server); prints parked=N once all are sent.
 *
 * HTTP/1.1 only (no pipelining, no multiplexing), so one slot in flight is
 * one connection; CURLMOPT_MAX_TOTAL_CONNECTIONS and MAXCONNECTS keep the
 * pool at C.  Output: see docs/internals/mss-ap.md.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cmd/mss-ap/ap.h"

#define BENCH_DEFAULT_PROFILE "mss::authn:loa2" /* what --bench-users hold */
#define BENCH_DRAIN_MS	      5000 /* after --duration: in-flight may finish */
#define BENCH_MAX_ERRCODES    64   /* distinct error kinds counted           */

/* Error kinds beside ETSI codes. */
#define BENCH_E_TRANSPORT (-1)
#define BENCH_E_GARBLED	  (-2)
#define BENCH_E_VERIFY	  (-3)
#define BENCH_E_HTTP	  100000 /* + HTTP status */

enum bench_op { OP_SIGN, OP_STATUS, OP_PARK, OP_GET };

struct bench;

struct slot {
	struct bench *s_b;
	CURL *s_easy;
	struct curl_slist *s_hdrs;
	struct ap_wire s_wire;
	struct mss_buf s_resp;
	unsigned long s_first, s_count, s_next; /* the slot's users            */
	double s_t0;
	bool s_active;				/* in the multi handle         */
	bool s_sent;				/* park: body handed to TLS    */
};

struct bench {
	struct ap_common b_co;
	struct ap_conf b_conf;
	enum bench_op b_op;
	const char *b_profile;
	const char *b_get_url;		/* op get: the baseline's URL        */
	unsigned long long b_base;	/* first MSISDN, as a number          */
	int b_digits;			/* its digit count (kept when adding) */
	bool b_plus;
	unsigned b_users, b_conns, b_count, b_duration_s, b_timeout_s;
	bool b_verify;
	struct ap_verifier b_ver;
	CURLM *b_multi;
	struct slot *b_slots;
	unsigned b_nslots;
	char b_tx[MSSP_AP_BENCH_STATUS_TX][MSSP_MSG_MAX_TRANSID + 1];
	unsigned b_ntx, b_txnext;
	bool b_stopping;
	unsigned b_active;
	uint64_t b_ok, b_errors;
	struct {
		int code;
		uint64_t n;
	} b_err[BENCH_MAX_ERRCODES];
	unsigned b_nerr;
	uint32_t *b_lat_us;
	size_t b_nlat, b_latcap;
	unsigned b_sent, b_failed_unsent;
	bool b_parked_printed;
};

static volatile sig_atomic_t bench_interrupted;

static void
on_sigint(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_usage(FILE *f)
{
	fputs("usage: mss-ap bench --users-from +N --users M [--connections C]\n"
	      "                    [--duration SECONDS] [--op sign|status] [--profile URI]\n"
	      "                    [--timeout S] [--verify]\n"
	      "       mss-ap bench --op get --get-url URL [--connections C] [--duration SECONDS]\n"
	      "       mss-ap bench --op park --count N --msisdn-from +N [--timeout S]\n"
	      "                    [--duration SECONDS] [--profile URI]\n"
	      "       (and --config FILE, --json|--soap11, --url URL, -v)\n",
	      f);
}

/* "+35849000000" -> number, digit count, plus sign.  0 or -1. */
static int
msisdn_parse(const char *s, struct bench *b)
{
	const char *p = s;
	char *end;

	b->b_plus = *p == '+';
	if (b->b_plus)
		p++;
	b->b_digits = (int)strlen(p);
	if (b->b_digits < MSSP_MSG_MIN_MSISDN_DIGITS || b->b_digits > MSSP_MSG_MAX_MSISDN_DIGITS ||
	    *p < '1' || *p > '9')
		return -1;
	b->b_base = strtoull(p, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static void
msisdn_nth(const struct bench *b, unsigned long i, char out[24])
{
	snprintf(out, 24, "%s%0*llu", b->b_plus ? "+" : "", b->b_digits, b->b_base + i);
}

/* The n users must stay within the digit count (no carry into a new
 * digit: that would be another numbering plan). */
static int
msisdn_range_ok(const struct bench *b, unsigned long n)
{
	char last[24];

	msisdn_nth(b, n - 1, last);
	return (int)strlen(last) == b->b_digits + (b->b_plus ? 1 : 0) ? 0 : -1;
}

static void
count_error(struct bench *b, int code)
{
	unsigned i;

	b->b_errors++;
	for (i = 0; i < b->b_nerr; i++)
		if (b->b_err[i].code == code) {
			b->b_err[i].n++;
			return;
		}
	if (b->b_nerr < BENCH_MAX_ERRCODES) {
		b->b_err[b->b_nerr].code = code;
		b->b_err[b->b_nerr++].n = 1;
	}
}

static void
count_ok(struct bench *b, double latency_s)
{
	uint32_t *n;
	size_t cap;

	b->b_ok++;
	if (b->b_nlat == b->b_latcap) {
		if (b->b_latcap >= MSSP_AP_BENCH_MAX_SAMPLES)
			return; /* percentiles of the first samples only */
		cap = b->b_latcap ? b->b_latcap * 2 : 65536;
		if ((n = realloc(b->b_lat_us, cap * sizeof(*n))) == NULL)
			return;
		b->b_lat_us = n;
		b->b_latcap = cap;
	}
	b->b_lat_us[b->b_nlat++] = latency_s * 1e6 > 4e9 ? 4000000000u : (uint32_t)(latency_s * 1e6);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
percentile_ms(const uint32_t *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0.0;
	k = (size_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

/* ---- one request on a slot -------------------------------------------- */

static size_t
slot_body(char *p, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;

	return mss_buf_add(&s->s_resp, p, size * n) == 0 ? size * n : 0;
}

/* park: notice when the request has been handed over completely. */
static int
slot_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct slot *s = arg;
	struct bench *b = s->s_b;

	(void)dltotal;
	(void)dlnow;
	if (!s->s_sent && ultotal > 0 && ulnow >= ultotal) {
		s->s_sent = true;
		b->b_sent++;
	}
	return 0;
}

static struct mss_msg *
slot_message(struct slot *s, struct mss_err *err)
{
	struct bench *b = s->s_b;
	struct ap_sign_params sp;
	char tid[AP_TRANSID_LEN], msisdn[24];
	struct mss_msg *m;

	ap_trans_id_new(tid);
	if (b->b_op == OP_STATUS) {
		m = ap_build_status(&b->b_conf, tid, b->b_tx[b->b_txnext], err);
		b->b_txnext = (b->b_txnext + 1) % b->b_ntx;
		return m;
	}
	msisdn_nth(b, s->s_first + s->s_next, msisdn);
	s->s_next = (s->s_next + 1) % s->s_count;
	memset(&sp, 0, sizeof(sp));
	sp.sp_msisdn = msisdn;
	sp.sp_profile = b->b_profile;
	sp.sp_mode = "synch";
	sp.sp_timeout_s = b->b_timeout_s;
	sp.sp_ap_trans_id = tid;
	return ap_build_sign(&b->b_conf, &sp, err);
}

/* Start the next request of slot s.  0, or -1 (counted as an error). */
static int
slot_start(struct slot *s)
{
	struct bench *b = s->s_b;
	struct mss_err err;
	struct mss_msg *m;
	int rc;

	mss_buf_free(&s->s_wire.w_body);
	if (b->b_op == OP_GET) {
		/* the baseline: the same client, TLS and connection reuse,
		 * a static GET instead of a transaction */
		mss_buf_free(&s->s_resp);
		mss_buf_init(&s->s_resp, MSSP_AP_MAX_RESPONSE);
		curl_easy_setopt(s->s_easy, CURLOPT_URL, b->b_get_url);
		curl_easy_setopt(s->s_easy, CURLOPT_HTTPGET, 1L);
		s->s_t0 = mono_s();
		if (curl_multi_add_handle(b->b_multi, s->s_easy) != CURLM_OK)
			return -1;
		s->s_active = true;
		b->b_active++;
		return 0;
	}
	if ((m = slot_message(s, &err)) == NULL)
		return -1;
	rc = ap_encode(m, b->b_co.co_fmt, b->b_conf.ac_url, &s->s_wire, &err);
	mss_msg_free(m);
	if (rc != 0)
		return -1;
	if (s->s_hdrs == NULL && (s->s_hdrs = ap_curl_headers(&s->s_wire)) == NULL)
		return -1;
	mss_buf_free(&s->s_resp);
	mss_buf_init(&s->s_resp, MSSP_AP_MAX_RESPONSE);
	curl_easy_setopt(s->s_easy, CURLOPT_URL, s->s_wire.w_url);
	curl_easy_setopt(s->s_easy, CURLOPT_HTTPHEADER, s->s_hdrs);
	curl_easy_setopt(s->s_easy, CURLOPT_POSTFIELDS, mss_buf_str(&s->s_wire.w_body));
	curl_easy_setopt(s->s_easy, CURLOPT_POSTFIELDSIZE, (long)mss_buf_len(&s->s_wire.w_body));
	s->s_t0 = mono_s();
	if (curl_multi_add_handle(b->b_multi, s->s_easy) != CURLM_OK)
		return -1;
	s->s_active = true;
	b->b_active++;
	return 0;
}

/* A finished transfer: count it. */
static void
slot_done(struct slot *s, CURLcode cc)
{
	struct bench *b = s->s_b;
	struct ap_result r;
	enum mss_msg_type expect = b->b_op == OP_STATUS ? MSS_STATUS_RESP : MSS_SIGNATURE_RESP;
	double lat = mono_s() - s->s_t0;
	long http = 0;
	char subject[256], why[AP_ERR_MAX];
	const char *dtbd = AP_DEFAULT_DTBD;

	curl_multi_remove_handle(b->b_multi, s->s_easy);
	s->s_active = false;
	b->b_active--;
	if (cc != CURLE_OK) {
		if (b->b_co.co_verbose)
			fprintf(stderr, "bench: transport: %s\n", curl_easy_strerror(cc));
		if (b->b_op == OP_PARK && !s->s_sent)
			b->b_failed_unsent++;
		count_error(b, BENCH_E_TRANSPORT);
		return;
	}
	curl_easy_getinfo(s->s_easy, CURLINFO_RESPONSE_CODE, &http);
	if (b->b_op == OP_GET) {
		if (http == 200)
			count_ok(b, lat);
		else
			count_error(b, BENCH_E_HTTP + (int)http);
		return;
	}
	ap_result_parse(http, mss_buf_str(&s->s_resp), mss_buf_len(&s->s_resp), expect, &r);
	if (r.r_kind == AP_R_BAD) {
		if (b->b_co.co_verbose)
			fprintf(stderr, "bench: %s\n", r.r_why);
		count_error(b, http != 200 ? BENCH_E_HTTP + (int)http : BENCH_E_GARBLED);
	} else if (r.r_kind == AP_R_FAULT) {
		count_error(b, r.r_code);
	} else if (b->b_op == OP_STATUS ? r.r_code == MSS_REQUEST_OK || r.r_code == MSS_SIGNATURE ||
						  r.r_code == MSS_VALID_SIGNATURE ||
						  r.r_code == MSS_OUTSTANDING_TRANSACTION
					: r.r_code == MSS_SIGNATURE || r.r_code == MSS_VALID_SIGNATURE) {
		if (b->b_verify && b->b_op != OP_STATUS &&
		    ap_verify(&b->b_ver, r.r_sig, (const unsigned char *)dtbd, strlen(dtbd), subject,
			      sizeof(subject), why, sizeof(why)) != 0) {
			if (b->b_co.co_verbose)
				fprintf(stderr, "bench: signature not verified: %s\n", why);
			count_error(b, BENCH_E_VERIFY);
		} else {
			count_ok(b, lat);
		}
	} else {
		count_error(b, r.r_code ? r.r_code : BENCH_E_GARBLED);
	}
	ap_result_free(&r);
}

static int
slot_init(struct bench *b, struct slot *s)
{
	s->s_b = b;
	mss_buf_init(&s->s_wire.w_body, MSSP_AP_MAX_REQUEST);
	mss_buf_init(&s->s_resp, MSSP_AP_MAX_RESPONSE);
	if ((s->s_easy = curl_easy_init()) == NULL || ap_curl_tls(s->s_easy, &b->b_conf) != 0)
		return -1;
	curl_easy_setopt(s->s_easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->s_easy, CURLOPT_WRITEFUNCTION, slot_body);
	curl_easy_setopt(s->s_easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->s_easy, CURLOPT_TIMEOUT, (long)(b->b_timeout_s + MSSP_AP_HTTP_SLACK_S));
	if (b->b_op == OP_PARK) {
		curl_easy_setopt(s->s_easy, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(s->s_easy, CURLOPT_XFERINFOFUNCTION, slot_progress);
		curl_easy_setopt(s->s_easy, CURLOPT_XFERINFODATA, s);
	}
	return 0;
}

static void
slot_free(struct bench *b, struct slot *s)
{
	if (s->s_easy != NULL) {
		if (s->s_active)
			curl_multi_remove_handle(b->b_multi, s->s_easy);
		curl_easy_cleanup(s->s_easy);
	}
	curl_slist_free_all(s->s_hdrs);
	mss_buf_free(&s->s_wire.w_body);
	mss_buf_free(&s->s_resp);
}

/* ---- op status: the transactions to poll ------------------------------ */

static int
bench_make_transactions(struct bench *b)
{
	struct ap_http h;
	struct ap_http_resp resp;
	struct ap_sign_params sp;
	struct ap_result r;
	struct ap_wire w;
	struct mss_err err;
	struct mss_msg *m;
	char tid[AP_TRANSID_LEN], msisdn[24];
	unsigned i, want = b->b_users < MSSP_AP_BENCH_STATUS_TX ? b->b_users : MSSP_AP_BENCH_STATUS_TX;

	if (ap_http_init(&h, &b->b_conf, b->b_co.co_verbose) != 0)
		return -1;
	for (i = 0; i < want; i++) {
		ap_trans_id_new(tid);
		msisdn_nth(b, i, msisdn);
		memset(&sp, 0, sizeof(sp));
		sp.sp_msisdn = msisdn;
		sp.sp_profile = b->b_profile;
		sp.sp_mode = "asynchClientServer";
		sp.sp_timeout_s = b->b_timeout_s;
		sp.sp_ap_trans_id = tid;
		if ((m = ap_build_sign(&b->b_conf, &sp, &err)) == NULL)
			break;
		if (ap_encode(m, b->b_co.co_fmt, b->b_conf.ac_url, &w, &err) != 0) {
			mss_msg_free(m);
			mss_buf_free(&w.w_body);
			break;
		}
		mss_msg_free(m);
		if (ap_http_post(&h, &w, b->b_timeout_s + MSSP_AP_HTTP_SLACK_S, &resp) != 0) {
			fprintf(stderr, "mss-ap: bench: transport: %s\n", resp.hr_err);
			mss_buf_free(&w.w_body);
			continue;
		}
		mss_buf_free(&w.w_body);
		ap_result_parse(resp.hr_status, mss_buf_str(&resp.hr_body), mss_buf_len(&resp.hr_body),
				MSS_SIGNATURE_RESP, &r);
		mss_buf_free(&resp.hr_body);
		if (r.r_kind == AP_R_MSG && r.r_mssp_trans_id != NULL)
			snprintf(b->b_tx[b->b_ntx++], sizeof(b->b_tx[0]), "%s", r.r_mssp_trans_id);
		else if (r.r_kind == AP_R_FAULT)
			fprintf(stderr, "mss-ap: bench: setup fault %d %s: %s\n", r.r_code, r.r_name,
				r.r_detail);
		else
			fprintf(stderr, "mss-ap: bench: setup: %s\n",
				r.r_kind == AP_R_BAD ? r.r_why : "no MSSP_TransID");
		ap_result_free(&r);
	}
	ap_http_free(&h);
	return b->b_ntx > 0 ? 0 : -1;
}

/* ---- the run ---------------------------------------------------------- */

static void
raise_fd_limit(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < (rlim_t)need + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	if (rl.rlim_cur < (rlim_t)need + 64)
		fprintf(stderr, "mss-ap: bench: open-files limit %llu is below %u connections\n",
			(unsigned long long)rl.rlim_cur, need);
}

static const char *
op_name(enum bench_op op)
{
	return op == OP_SIGN ? "sign" : op == OP_STATUS ? "status" : op == OP_GET ? "get" : "park";
}

static void
bench_report(struct bench *b, double duration)
{
	unsigned i;

	if (b->b_nlat > 0)
		qsort(b->b_lat_us, b->b_nlat, sizeof(*b->b_lat_us), cmp_u32);
	printf("bench op=%s ok=%llu errors=%llu duration_s=%.3f rate_per_s=%.1f p50_ms=%.2f "
	       "p99_ms=%.2f\n",
	       op_name(b->b_op), (unsigned long long)b->b_ok, (unsigned long long)b->b_errors, duration,
	       duration > 0 ? (double)b->b_ok / duration : 0.0, percentile_ms(b->b_lat_us, b->b_nlat, 0.50),
	       percentile_ms(b->b_lat_us, b->b_nlat, 0.99));
	printf("bench op=%s errors_by_code", op_name(b->b_op));
	if (b->b_nerr == 0)
		printf(" none");
	for (i = 0; i < b->b_nerr; i++) {
		int c = b->b_err[i].code;
		unsigned long long n = (unsigned long long)b->b_err[i].n;

		if (c == BENCH_E_TRANSPORT)
			printf(" transport=%llu", n);
		else if (c == BENCH_E_GARBLED)
			printf(" garbled=%llu", n);
		else if (c == BENCH_E_VERIFY)
			printf(" unverified=%llu", n);
		else if (c >= BENCH_E_HTTP)
			printf(" http_%d=%llu", c - BENCH_E_HTTP, n);
		else
			printf(" %d=%llu", c, n);
	}
	printf("\n");
	fflush(stdout);
}

static void
maybe_print_parked(struct bench *b)
{
	if (b->b_op != OP_PARK || b->b_parked_printed || b->b_sent + b->b_failed_unsent < b->b_nslots)
		return;
	b->b_parked_printed = true;
	printf("parked=%u\n", b->b_sent);
	fflush(stdout);
}

static int
bench_run(struct bench *b)
{
	double start, end, drain_until = 0;
	struct sigaction sa;
	CURLMsg *msg;
	unsigned i;
	int running, left;

	b->b_multi = curl_multi_init();
	if (b->b_multi == NULL)
		return AP_EXIT_TRANSPORT;
	curl_multi_setopt(b->b_multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	if (b->b_op != OP_PARK) {
		curl_multi_setopt(b->b_multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)b->b_nslots);
		curl_multi_setopt(b->b_multi, CURLMOPT_MAXCONNECTS, (long)b->b_nslots);
	} else {
		curl_multi_setopt(b->b_multi, CURLMOPT_MAXCONNECTS, (long)b->b_nslots);
	}
	raise_fd_limit(b->b_nslots);
	if ((b->b_slots = calloc(b->b_nslots, sizeof(*b->b_slots))) == NULL)
		return AP_EXIT_TRANSPORT;
	for (i = 0; i < b->b_nslots; i++) {
		struct slot *s = &b->b_slots[i];

		if (slot_init(b, s) != 0) {
			fprintf(stderr, "mss-ap: bench: cannot set up libcurl\n");
			return AP_EXIT_TRANSPORT;
		}
		if (b->b_op == OP_PARK) {
			s->s_first = i;
			s->s_count = 1;
		} else {
			/* contiguous, disjoint slices covering all users */
			s->s_first = (unsigned long)((unsigned long long)i * b->b_users / b->b_nslots);
			s->s_count = (unsigned long)((unsigned long long)(i + 1) * b->b_users / b->b_nslots) -
				     s->s_first;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	start = mono_s();
	for (i = 0; i < b->b_nslots; i++)
		if (slot_start(&b->b_slots[i]) != 0) {
			count_error(b, BENCH_E_GARBLED);
			if (b->b_op == OP_PARK)
				b->b_failed_unsent++;
		}
	for (;;) {
		curl_multi_perform(b->b_multi, &running);
		while ((msg = curl_multi_info_read(b->b_multi, &left)) != NULL) {
			struct slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			slot_done(s, msg->data.result);
			if (!b->b_stopping && b->b_op != OP_PARK && slot_start(s) != 0)
				count_error(b, BENCH_E_GARBLED);
		}
		maybe_print_parked(b);
		if (!b->b_stopping &&
		    (bench_interrupted || (b->b_duration_s > 0 && mono_s() - start >= b->b_duration_s))) {
			b->b_stopping = true;
			/* park: hold until told; the others let in-flight
			 * requests finish for a short while */
			drain_until = mono_s() + (b->b_op == OP_PARK ? 0 : BENCH_DRAIN_MS / 1000.0);
		}
		if (b->b_active == 0 || (b->b_stopping && mono_s() >= drain_until))
			break;
		curl_multi_poll(b->b_multi, NULL, 0, 100, NULL);
	}
	end = mono_s();
	maybe_print_parked(b);
	bench_report(b, end - start);
	if (b->b_op == OP_PARK)
		return b->b_sent == b->b_nslots ? AP_EXIT_OK : AP_EXIT_REFUSED;
	return b->b_ok > 0 && b->b_errors == 0 ? AP_EXIT_OK : AP_EXIT_REFUSED;
}

static int
parse_ul(const char *s, unsigned long min, unsigned long max, unsigned *out)
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

int
ap_cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "users-from", required_argument, NULL, 'f' },
		{ "msisdn-from", required_argument, NULL, 'f' },
		{ "users", required_argument, NULL, 'u' },
		{ "connections", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "op", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'V' },
		{ "get-url", required_argument, NULL, 'g' },
		AP_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct bench b;
	const char *from = NULL;
	char err[AP_ERR_MAX];
	bool duration_set = false;
	unsigned i;
	int c, rc = AP_EXIT_USAGE;

	memset(&b, 0, sizeof(b));
	b.b_op = OP_SIGN;
	b.b_conns = 1;
	b.b_duration_s = 10;
	b.b_timeout_s = 80;
	b.b_profile = BENCH_DEFAULT_PROFILE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (ap_common_opt(c, optarg, &b.b_co))
			continue;
		switch (c) {
		case 'f': from = optarg; break;
		case 'p': b.b_profile = optarg; break;
		case 'V': b.b_verify = true; break;
		case 'g': b.b_get_url = optarg; break;
		case 'u':
			if (parse_ul(optarg, 1, MSSP_AP_BENCH_MAX_USERS, &b.b_users) != 0)
				goto bad;
			break;
		case 'c':
			if (parse_ul(optarg, 1, MSSP_AP_BENCH_MAX_CONNS, &b.b_conns) != 0)
				goto bad;
			break;
		case 'n':
			if (parse_ul(optarg, 1, MSSP_AP_BENCH_MAX_CONNS, &b.b_count) != 0)
				goto bad;
			break;
		case 'd':
			if (parse_ul(optarg, 0, MSSP_AP_BENCH_MAX_DURATION_S, &b.b_duration_s) != 0)
				goto bad;
			duration_set = true;
			break;
		case 't':
			if (parse_ul(optarg, 1, MSSP_MSG_MAX_TIMEOUT_S, &b.b_timeout_s) != 0)
				goto bad;
			break;
		case 'o':
			if (strcmp(optarg, "sign") == 0)
				b.b_op = OP_SIGN;
			else if (strcmp(optarg, "status") == 0)
				b.b_op = OP_STATUS;
			else if (strcmp(optarg, "park") == 0)
				b.b_op = OP_PARK;
			else if (strcmp(optarg, "get") == 0)
				b.b_op = OP_GET;
			else
				goto bad;
			break;
		case 'h': bench_usage(stdout); return AP_EXIT_OK;
		default: goto bad;
		}
	}
	if (b.b_op == OP_GET) {
		/* no users: one slot per connection, GET --get-url */
		if (b.b_get_url == NULL || from != NULL)
			goto bad;
		from = "+10000000";
		if (b.b_users == 0)
			b.b_users = b.b_conns;
	} else if (b.b_get_url != NULL) {
		goto bad;
	}
	if (optind != argc || from == NULL || msisdn_parse(from, &b) != 0)
		goto bad;
	if (b.b_op == OP_PARK) {
		if (b.b_count == 0)
			goto bad;
		b.b_nslots = b.b_count;
		b.b_users = b.b_count;
		/* --duration for park: 0 (the default) holds until SIGINT */
		if (!duration_set)
			b.b_duration_s = 0;
	} else {
		if (b.b_users == 0)
			goto bad;
		b.b_nslots = b.b_conns < b.b_users ? b.b_conns : b.b_users;
	}
	if (msisdn_range_ok(&b, b.b_users) != 0) {
		fprintf(stderr, "mss-ap: bench: %u users from %s overflow the number's digits\n",
			b.b_users, from);
		return AP_EXIT_USAGE;
	}
	if (ap_common_conf(&b.b_co, &b.b_conf) != 0)
		return AP_EXIT_USAGE;
	if (b.b_verify && ap_verifier_load(&b.b_ver, b.b_conf.ac_user_ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "mss-ap: %s\n", err);
		goto out;
	}
	if (b.b_op == OP_STATUS && bench_make_transactions(&b) != 0) {
		fprintf(stderr, "mss-ap: bench: could not create any transaction to query\n");
		rc = AP_EXIT_TRANSPORT;
		goto out;
	}
	rc = bench_run(&b);
out:
	for (i = 0; b.b_slots != NULL && i < b.b_nslots; i++)
		slot_free(&b, &b.b_slots[i]);
	free(b.b_slots);
	if (b.b_multi != NULL)
		curl_multi_cleanup(b.b_multi);
	free(b.b_lat_us);
	ap_verifier_free(&b.b_ver);
	ap_conf_free(&b.b_conf);
	return rc;
bad:
	bench_usage(stderr);
	return AP_EXIT_USAGE;
}
