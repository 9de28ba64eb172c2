/*
 * me.c - the ME's HTTP front end (see me.h, docs/internals/me.md).
 *
 * How a request travels:
 *   worker loop (me_handler): refuse Sec-Fetch-Site: cross-site; copy
 *     what the answer needs (method, path, the headers we read, the body,
 *     the certificate fingerprint), park the request, admit it (a run
 *     slot, or the ME's own wait queue); nothing here waits for the disk;
 *   pool thread (job_run): skip it when its request has ended meanwhile;
 *     account by certificate, the checks in the order me.h lists, then
 *     reg_call / mreg_handle / a static file, and the answer through
 *     srv_reply_async(); then its run slot goes to the next waiting job.
 *
 * Admission (me.h "Admission"): m_jobs lists every admitted job, m_wait
 * the ones without a run slot yet, both under m_jlock.  The cancel
 * callback finds a job by request id there (never through a pointer kept
 * in the request: the job may be gone by then).
 */
#include "roles/me.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "net/tls.h"
#include "roles/mreg.h"
#include "roles/node.h"
#include "roles/reg.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/pool.h"

#define CSRF_HEX (2 * MSSP_ME_CSRF_LEN)
#define MAX_SEGS 8 /* path segments after /api/v1 */
#define STR_(x) #x
#define STR(x) STR_(x)

struct job;

_Static_assert(MSSP_ME_CSRF_LEN == 32, "the CSRF token is one HMAC-SHA256");

struct me {
	struct reg *m_reg;
	struct pool *m_pool;
	struct srv *m_srv;
	char *m_web_root;
	char *m_origin;
	char *m_mssp_id;
	unsigned char m_secret[32]; /* CSRF key: per process, never leaves */
	/* the job thread */
	pthread_mutex_t m_lock;
	pthread_cond_t m_cond;
	pthread_t m_thread;
	bool m_started;
	bool m_stopping;
	struct store *m_jst;
	/* admission (m_jlock) */
	pthread_mutex_t m_jlock;
	pthread_cond_t m_jdone;		     /* m_jobs became empty           */
	struct job *m_jobs;		     /* admitted, not finished        */
	struct job *m_wait, *m_wait_tail;    /* admitted, no run slot yet     */
	size_t m_nwait;
	unsigned m_running;		     /* jobs holding a run slot       */
	unsigned m_heavy;		     /* long operations under way     */
	unsigned m_max_running, m_max_heavy, m_park_ms;
};

/* What a job needs of a request (the parser's buffers are gone once the
 * request is parked). */
struct job {
	struct me *j_me;
	uint64_t j_req;
	uint8_t j_fp[TLS_FP_LEN];
	char j_peer[64];
	char *j_method;
	char *j_path;	/* path [? query] */
	char *j_ctype;	/* NULL: absent */
	char *j_csrf;
	char *j_origin;
	char *j_body;
	size_t j_blen;
	/* admission (m_jlock) */
	struct job *j_prev, *j_next; /* m_jobs                              */
	struct job *j_wnext;	     /* m_wait                              */
	bool j_waiting;		     /* in m_wait (holds no run slot)       */
	bool j_started;		     /* job_run has begun: no longer skipped */
	bool j_cancelled;	     /* its request ended: do nothing more  */
	bool j_heavy;		     /* holds one of the m_max_heavy slots  */
};

static void
job_free(struct job *j)
{
	if (!j)
		return;
	free(j->j_method);
	free(j->j_path);
	free(j->j_ctype);
	if (j->j_csrf)
		OPENSSL_cleanse(j->j_csrf, strlen(j->j_csrf));
	free(j->j_csrf);
	free(j->j_origin);
	free(j->j_body);
	free(j);
}

/* Is `origin` one of ours (mc_origin: origins separated by spaces)?
 * Exact comparison of whole entries. */
static bool
origin_ours(const struct me *m, const char *origin)
{
	size_t ol = strlen(origin);
	for (const char *p = m->m_origin; *p;) {
		while (*p == ' ')
			p++;
		const char *e = strchr(p, ' ');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l && l == ol && memcmp(p, origin, l) == 0)
			return true;
		p += l;
	}
	return false;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- answers ------------------------------------------------------------ */

/* On every answer (me.md): the API must never be cached, sniffed or
 * framed; the console's CSP allows only our own scripts and styles. */
static const struct srv_header base_headers[] = {
	{"Cache-Control", "no-store"},
	{"X-Content-Type-Options", "nosniff"},
	{"Content-Security-Policy",
	 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
};
#define NBASE (sizeof base_headers / sizeof base_headers[0])

static void
fill_response(struct srv_response *rs, struct srv_header *h, int status, const char *ctype,
	      const void *body, size_t len, const char *allow)
{
	memcpy(h, base_headers, sizeof base_headers);
	size_t nh = NBASE;
	if (allow) {
		h[nh].sh_name = "Allow";
		h[nh++].sh_value = allow;
	}
	if (status == 503) {
		h[nh].sh_name = "Retry-After";
		h[nh++].sh_value = STR(MSSP_ME_RETRY_AFTER_S);
	}
	memset(rs, 0, sizeof *rs);
	rs->rs_status = status;
	rs->rs_content_type = ctype;
	rs->rs_headers = h;
	rs->rs_nheaders = nh;
	rs->rs_body = body;
	rs->rs_body_len = len;
}

static void
reply(struct me *m, uint64_t id, int status, const char *ctype, const void *body, size_t len,
      const char *allow)
{
	struct srv_header h[NBASE + 2];
	struct srv_response rs;
	fill_response(&rs, h, status, ctype, body, len, allow);
	(void)srv_reply_async(m->m_srv, id, &rs);
}

#define JSON_CTYPE "application/json; charset=utf-8"

/* {"error":{"status","code","message"}}: message names the rule, never
 * echoes input. */
static char *
err_body(int status, int code, const char *msg)
{
	json_t *o = json_pack("{s:{s:i,s:i,s:s}}", "error", "status", status, "code", code,
			      "message", msg && *msg ? msg : "error");
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static void
reply_err(struct me *m, uint64_t id, int status, int code, const char *msg, const char *allow)
{
	char *b = err_body(status, code, msg);
	reply(m, id, status, JSON_CTYPE, b ? b : "", b ? strlen(b) : 0, allow);
	free(b);
}

/* ---- admission ------------------------------------------------------------ */

static void job_run(void *ctx, void *arg);

/* Under m_jlock. */
static void
jobs_link(struct me *m, struct job *j)
{
	j->j_prev = NULL;
	j->j_next = m->m_jobs;
	if (m->m_jobs)
		m->m_jobs->j_prev = j;
	m->m_jobs = j;
}

static void
jobs_unlink(struct me *m, struct job *j)
{
	if (j->j_prev)
		j->j_prev->j_next = j->j_next;
	else
		m->m_jobs = j->j_next;
	if (j->j_next)
		j->j_next->j_prev = j->j_prev;
	j->j_prev = j->j_next = NULL;
}

static struct job *
jobs_find(struct me *m, uint64_t id)
{
	for (struct job *j = m->m_jobs; j; j = j->j_next)
		if (j->j_req == id)
			return j;
	return NULL;
}

static void
wait_push(struct me *m, struct job *j)
{
	j->j_wnext = NULL;
	j->j_waiting = true;
	if (m->m_wait_tail)
		m->m_wait_tail->j_wnext = j;
	else
		m->m_wait = j;
	m->m_wait_tail = j;
	m->m_nwait++;
}

static void
wait_remove(struct me *m, struct job *j)
{
	struct job **pp = &m->m_wait, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->j_wnext;
	}
	if (!*pp)
		return;
	*pp = j->j_wnext;
	if (m->m_wait_tail == j)
		m->m_wait_tail = prev;
	j->j_wnext = NULL;
	j->j_waiting = false;
	m->m_nwait--;
}

/* A free run slot goes to the oldest waiting job: it is returned holding
 * the slot (the caller submits it), or NULL.  Under m_jlock. */
static struct job *
slot_pass(struct me *m)
{
	struct job *j = m->m_wait;
	if (!j || m->m_running >= m->m_max_running)
		return NULL;
	wait_remove(m, j);
	m->m_running++;
	return j;
}

/* Queue `j` (which holds a run slot) on the pool.  When the pool refuses
 * (full, stopping), that request is answered busy and its slot passes on
 * to the next waiting one, which is tried the same way. */
static void
job_submit(struct me *m, struct job *j)
{
	while (j) {
		if (pool_submit(m->m_pool, job_run, j) == 0)
			return;
		/* answered while still listed: me_free waits for that */
		reply_err(m, j->j_req, 503, 900, "server busy", NULL);
		pthread_mutex_lock(&m->m_jlock);
		jobs_unlink(m, j);
		m->m_running--;
		struct job *next = slot_pass(m);
		if (!m->m_jobs)
			pthread_cond_broadcast(&m->m_jdone);
		pthread_mutex_unlock(&m->m_jlock);
		job_free(j); /* (m is not touched after the unlock) */
		j = next;
	}
}

/* The end of a job (run or skipped): its slots go back, the next waiting
 * job gets the run slot, and `j` is freed. */
static void
job_finish(struct me *m, struct job *j)
{
	pthread_mutex_lock(&m->m_jlock);
	jobs_unlink(m, j);
	if (j->j_heavy)
		m->m_heavy--;
	m->m_running--;
	struct job *next = slot_pass(m);
	/* me_free waits for the last one: once the list is empty and the
	 * lock released, m may be gone - only `j` is touched after it */
	if (!m->m_jobs)
		pthread_cond_broadcast(&m->m_jdone);
	pthread_mutex_unlock(&m->m_jlock);
	job_free(j);
	if (next)
		job_submit(m, next); /* next is listed: m stays */
}

/* May the job go on?  The first call (job_run's start) also marks it
 * started, atomically with the check: from then on a park timeout
 * answers 504 (outcome unknown), before it 503 (nothing was done). */
static bool
job_go_on(struct me *m, struct job *j)
{
	pthread_mutex_lock(&m->m_jlock);
	bool go = !j->j_cancelled;
	if (go)
		j->j_started = true;
	pthread_mutex_unlock(&m->m_jlock);
	return go;
}

/* A long operation (me.h "Admission")?  `qo`: the query (may be NULL). */
static bool
op_heavy(enum reg_op op, json_t *qo)
{
	const char *lim = json_string_value(json_object_get(qo, "limit"));
	const char *q = json_string_value(json_object_get(qo, "q"));
	switch (op) {
	case REG_OP_KEYS_SCAN:	 /* every key, batch GCD                 */
	case REG_OP_AUDIT_VERIFY: /* rehashes the whole log             */
	case REG_OP_STATS:	 /* counts every record, fetches /metrics */
		return true;
	/* not REG_OP_CERT_REVOKE: the serial index finds the key in one
	 * read (the scan over every key is only for a certificate issued
	 * before the index), and a revocation must never wait behind the
	 * console's stats polls or a scan (review 2, F6) */
	case REG_OP_USER_LIST:
		/* a name search scans every user */
		if (q && *q && *q != '+' && !(*q >= '0' && *q <= '9'))
			return true;
		/* fall through */
	case REG_OP_AUDIT_LIST:
	case REG_OP_APPROVAL_LIST:
		/* more than one default page (reg caps it at MSSP_STORE_MAX_LIST) */
		return lim && (strlen(lim) > 9 || strtoul(lim, NULL, 10) > MSSP_ME_LIST_DEFAULT);
	default:
		return false;
	}
}

/* Take one of the heavy slots for `j` (released by job_finish). */
static bool
heavy_take(struct me *m, struct job *j)
{
	pthread_mutex_lock(&m->m_jlock);
	bool ok = m->m_heavy < m->m_max_heavy;
	if (ok) {
		m->m_heavy++;
		j->j_heavy = true;
	}
	pthread_mutex_unlock(&m->m_jlock);
	return ok;
}

/* ---- CSRF ------------------------------------------------------------------ */

static void
csrf_token(const struct me *m, const uint8_t fp[TLS_FP_LEN], char out[CSRF_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), m->m_secret, sizeof m->m_secret, fp, TLS_FP_LEN, mac, &len) ||
	    len != MSSP_ME_CSRF_LEN) {
		/* never a token anybody could guess: an impossible one */
		memset(out, 'x', CSRF_HEX);
		out[CSRF_HEX] = 0;
		return;
	}
	hex_encode(mac, len, out);
	OPENSSL_cleanse(mac, sizeof mac);
}

static bool
csrf_ok(const struct me *m, const struct job *j)
{
	char want[CSRF_HEX + 1];
	bool ok = false;
	if (j->j_csrf && strlen(j->j_csrf) == CSRF_HEX) {
		csrf_token(m, j->j_fp, want);
		ok = CRYPTO_memcmp(want, j->j_csrf, CSRF_HEX) == 0;
		OPENSSL_cleanse(want, sizeof want);
	}
	return ok;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Percent-decode s[0..n) into out (cap bytes with the NUL).  Strict: an
 * escape is '%' and two hex digits; no control character (raw or
 * decoded); a decoded '/' only when `slash` (an AP id or profile URI is a
 * URI); `plus` turns '+' into a space (query strings, as browsers'
 * URLSearchParams send them).  0, or -1. */
static int
pct_decode(const char *s, size_t n, char *out, size_t cap, bool slash, bool plus)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int a = hex_digit((unsigned char)s[i + 1]), b = hex_digit((unsigned char)s[i + 2]);
			if (a < 0 || b < 0)
				return -1;
			c = a * 16 + b;
			i += 2;
			if (c == '/' && !slash)
				return -1;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

/* Query string -> JSON object of strings: k=v pairs joined by '&', keys
 * non-empty, no duplicates, values valid UTF-8, at most
 * MSSP_ME_MAX_QUERY_PARAMS.  NULL on any fault (400). */
static json_t *
parse_query(const char *q)
{
	json_t *o = json_object();
	char key[MSSP_HTTP_MAX_TARGET], val[MSSP_HTTP_MAX_TARGET];
	size_t count = 0;
	if (!o)
		return NULL;
	const char *p = q;
	for (;;) {
		const char *end = strchr(p, '&');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (n == 0 || !eq || eq == p || ++count > MSSP_ME_MAX_QUERY_PARAMS)
			goto bad;
		if (pct_decode(p, (size_t)(eq - p), key, sizeof key, false, true) != 0 || !key[0] ||
		    pct_decode(eq + 1, n - (size_t)(eq - p) - 1, val, sizeof val, true, true) != 0)
			goto bad;
		json_t *v = json_string(val); /* NULL: not UTF-8 */
		if (!v || json_object_get(o, key)) {
			json_decref(v);
			goto bad;
		}
		if (json_object_set_new(o, key, v) != 0)
			goto bad;
		if (!end)
			break;
		p = end + 1;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

static bool
ctype_is(const char *ct, const char *want)
{
	if (!ct)
		return false;
	size_t n = strlen(want);
	return strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

/* ---- routes ------------------------------------------------------------------ */

struct route {
	const char *method;
	const char *pattern; /* segments after /api/v1/, '*' = one argument */
	enum reg_op op;
	bool slash;	     /* the argument may contain an encoded '/'     */
};

static const struct route routes[] = {
	{"GET", "session", REG_OP_SESSION, false},
	{"GET", "stats", REG_OP_STATS, false},
	{"GET", "users", REG_OP_USER_LIST, false},
	{"POST", "users", REG_OP_USER_CREATE, false},
	{"GET", "users/*", REG_OP_USER_GET, false},
	{"PUT", "users/*", REG_OP_USER_UPDATE, false},
	{"DELETE", "users/*", REG_OP_USER_DELETE, false},
	{"POST", "users/*/suspend", REG_OP_USER_SUSPEND, false},
	{"POST", "users/*/resume", REG_OP_USER_RESUME, false},
	{"POST", "users/*/activation", REG_OP_ACTIVATION_CREATE, false},
	{"DELETE", "users/*/devices/*", REG_OP_DEVICE_DELETE, false},
	{"POST", "users/*/keys", REG_OP_KEY_REQUEST, false},
	{"POST", "users/*/keys/*/unblock", REG_OP_PIN_UNBLOCK, false},
	{"GET", "jobs/*", REG_OP_JOB_GET, false},
	{"GET", "certificates", REG_OP_CERT_LIST, false},
	{"POST", "certificates/*/revoke", REG_OP_CERT_REVOKE, false},
	{"GET", "aps", REG_OP_AP_LIST, false},
	{"POST", "aps", REG_OP_AP_CREATE, false},
	{"GET", "aps/*", REG_OP_AP_GET, true},
	{"PUT", "aps/*", REG_OP_AP_UPDATE, true},
	{"DELETE", "aps/*", REG_OP_AP_DELETE, true},
	{"POST", "aps/*/suspend", REG_OP_AP_SUSPEND, true},
	{"POST", "aps/*/resume", REG_OP_AP_RESUME, true},
	{"GET", "profiles/signature", REG_OP_SIGPROF_LIST, false},
	{"PUT", "profiles/signature/*", REG_OP_SIGPROF_PUT, true},
	{"GET", "profiles/registration", REG_OP_REGPROF_LIST, false},
	{"PUT", "profiles/registration/*", REG_OP_REGPROF_PUT, false},
	{"GET", "accounts", REG_OP_ACCOUNT_LIST, false},
	{"POST", "accounts", REG_OP_ACCOUNT_CREATE, false},
	{"DELETE", "accounts/*", REG_OP_ACCOUNT_DELETE, false},
	{"GET", "approvals", REG_OP_APPROVAL_LIST, false},
	{"POST", "approvals/*/approve", REG_OP_APPROVAL_APPROVE, false},
	{"POST", "approvals/*/reject", REG_OP_APPROVAL_REJECT, false},
	{"GET", "audit", REG_OP_AUDIT_LIST, false},
	{"GET", "audit/verify", REG_OP_AUDIT_VERIFY, false},
	{"POST", "keys/scan", REG_OP_KEYS_SCAN, false},
	/* the mesh: a peer's id is a URI (percent-encoded, '/' included);
	 * a route's prefix is "+" and digits ("%2B" or a raw "+") */
	{"GET", "peers", REG_OP_PEER_LIST, false},
	{"POST", "peers", REG_OP_PEER_PUT, false},
	{"GET", "peers/*", REG_OP_PEER_GET, true},
	{"PUT", "peers/*", REG_OP_PEER_PUT, true},
	{"DELETE", "peers/*", REG_OP_PEER_DELETE, true},
	{"GET", "routes", REG_OP_ROUTE_LIST, false},
	{"POST", "routes", REG_OP_ROUTE_PUT, false},
	{"PUT", "routes/*", REG_OP_ROUTE_PUT, false},
	{"DELETE", "routes/*", REG_OP_ROUTE_DELETE, false},
};

struct seg {
	const char *s;
	size_t n;
};

/* Split "a/b/c" into segments; an empty segment (//, trailing /) or too
 * many: -1 (no route has one). */
static int
split(const char *p, size_t n, struct seg *out, size_t *nout)
{
	size_t k = 0, i = 0;
	while (i <= n) {
		size_t st = i;
		while (i < n && p[i] != '/')
			i++;
		if (i == st || k == MAX_SEGS)
			return -1;
		out[k].s = p + st;
		out[k++].n = i - st;
		i++;
	}
	*nout = k;
	return 0;
}

/* Does the route's pattern match the segments?  Arguments into args. */
static bool
pattern_match(const char *pat, const struct seg *sg, size_t nsg, struct seg args[2])
{
	struct seg ps[MAX_SEGS];
	size_t np, na = 0;
	if (split(pat, strlen(pat), ps, &np) != 0 || np != nsg)
		return false;
	for (size_t i = 0; i < np; i++) {
		if (ps[i].n == 1 && ps[i].s[0] == '*') {
			if (na < 2)
				args[na++] = sg[i];
		} else if (ps[i].n != sg[i].n || memcmp(ps[i].s, sg[i].s, sg[i].n) != 0) {
			return false;
		}
	}
	return true;
}

/* ---- static files ------------------------------------------------------------- */

static const char *
static_ctype(const char *name)
{
	static const struct {
		const char *ext, *type;
	} t[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".png", "image/png"},
		{".svg", "image/svg+xml"},
		{".json", "application/json; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof t / sizeof t[0]; i++)
		if (strcmp(dot, t[i].ext) == 0)
			return t[i].type;
	return NULL;
}

/* [A-Za-z0-9._-]+, not starting with '.', no "..": one plain file. */
static bool
static_name_ok(const char *s)
{
	if (!*s || *s == '.' || strstr(s, ".."))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

static void
serve_file(struct me *m, struct job *j, const char *sub, const char *name)
{
	char path[4096];
	const char *ctype = static_ctype(name);
	if (!m->m_web_root || !ctype || !static_name_ok(name) ||
	    snprintf(path, sizeof path, "%s/%s%s", m->m_web_root, sub, name) >= (int)sizeof path) {
		reply_err(m, j->j_req, 404, 101, "not found", NULL);
		return;
	}
	if (strcmp(j->j_method, "GET") != 0 && strcmp(j->j_method, "HEAD") != 0) {
		reply_err(m, j->j_req, 405, 101, "method not allowed", "GET, HEAD");
		return;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		reply_err(m, j->j_req, 404, 101, "not found", NULL);
		goto out;
	}
	if (sb.st_size > MSSP_ME_MAX_STATIC || sb.st_size > MSSP_SRV_MAX_RESPONSE) {
		LOG_EV("me.static_too_large", "file", name);
		reply_err(m, j->j_req, 500, 900, "file too large", NULL);
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	while (buf && got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (!buf || got != (size_t)sb.st_size) {
		reply_err(m, j->j_req, 500, 900, "file unreadable", NULL);
		goto out;
	}
	reply(m, j->j_req, 200, ctype, buf, got, NULL);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

/* ---- the API ------------------------------------------------------------------- */

static int
http_status_of(int rc)
{
	switch (rc) {
	case REG_CREATED:
		return 201;
	case REG_ACCEPTED:
	case REG_PENDING:
		return 202;
	default:
		return 200;
	}
}

static void
api(struct me *m, struct job *j, struct store *st, const struct reg_actor *who,
    const char *rest, size_t rlen, const char *query)
{
	struct seg sg[MAX_SEGS], args[2];
	size_t nsg;
	const struct route *rt = NULL;
	char allow[64] = "";
	const char *meth = strcmp(j->j_method, "HEAD") == 0 ? "GET" : j->j_method;
	if (split(rest, rlen, sg, &nsg) != 0)
		nsg = 0;
	for (size_t i = 0; nsg && i < sizeof routes / sizeof routes[0]; i++) {
		struct seg a[2];
		if (!pattern_match(routes[i].pattern, sg, nsg, a))
			continue;
		if (strcmp(routes[i].method, meth) == 0) {
			rt = &routes[i];
			memcpy(args, a, sizeof a);
			break;
		}
		if (!strstr(allow, routes[i].method)) {
			size_t l = strlen(allow);
			snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "",
				 routes[i].method);
		}
	}
	if (!rt) {
		if (allow[0])
			reply_err(m, j->j_req, 405, 101, "method not allowed", allow);
		else
			reply_err(m, j->j_req, 404, 101, "not found", NULL);
		return;
	}
	bool mutating = strcmp(meth, "GET") != 0;
	/* Every API request but the session (which gives the token) needs
	 * the token, reads too: a page elsewhere can make the browser send a
	 * GET with our client certificate (an <img>, a <script>) and no
	 * Origin; it cannot read the token, so it cannot make us do the work
	 * (a log rehash, a count of everything) or audit in the account's
	 * name. */
	if (rt->op != REG_OP_SESSION && !csrf_ok(m, j)) {
		reply_err(m, j->j_req, 403, 104, "CSRF token missing or wrong", NULL);
		return;
	}
	if (mutating && !ctype_is(j->j_ctype, "application/json")) {
		reply_err(m, j->j_req, 415, 101, "Content-Type must be application/json", NULL);
		return;
	}
	if (j->j_blen > MSSP_ME_MAX_BODY) {
		reply_err(m, j->j_req, 413, 101, "body too large", NULL);
		return;
	}
	json_t *body = NULL, *qo = NULL, *out = NULL;
	char a1[MSSP_HTTP_MAX_TARGET], a2[MSSP_HTTP_MAX_TARGET];
	struct reg_request rq = {.rq_op = rt->op};
	struct reg_err e;
	memset(&e, 0, sizeof e);
	if (mutating && j->j_blen) {
		json_error_t je;
		body = json_loadb(j->j_body, j->j_blen, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(body)) {
			reply_err(m, j->j_req, 400, 101, "body must be a JSON object", NULL);
			goto out;
		}
	}
	if (query && !(qo = parse_query(query))) {
		reply_err(m, j->j_req, 400, 101, "malformed query string", NULL);
		goto out;
	}
	size_t npat = 0;
	for (const char *p = rt->pattern; *p; p++)
		npat += *p == '*';
	if ((npat >= 1 && pct_decode(args[0].s, args[0].n, a1, sizeof a1, rt->slash, false) != 0) ||
	    (npat >= 2 && pct_decode(args[1].s, args[1].n, a2, sizeof a2, false, false) != 0) ||
	    (npat >= 1 && !a1[0]) || (npat >= 2 && !a2[0])) {
		reply_err(m, j->j_req, 400, 101, "malformed path argument", NULL);
		goto out;
	}
	rq.rq_arg = npat >= 1 ? a1 : NULL;
	rq.rq_arg2 = npat >= 2 ? a2 : NULL;
	rq.rq_body = body;
	rq.rq_query = qo;
	if (op_heavy(rt->op, qo) && !heavy_take(m, j)) {
		reply_err(m, j->j_req, 503, 900, "busy: too many long operations at once", NULL);
		goto out;
	}
	/* the request ended while this job waited (client gone): the
	 * operation is not started.  A job past this point completes even
	 * if its request ends meanwhile (reg_call is not interruptible). */
	if (!job_go_on(m, j))
		goto out;
	int rc = reg_call(m->m_reg, st, who, &rq, clock_wall_ms(), &out, &e);
	if (rc < 0) {
		int s = e.status >= 400 && e.status <= 599 ? e.status : 500;
		reply_err(m, j->j_req, s, e.code ? e.code : 900, e.msg, NULL);
		goto out;
	}
	if (rt->op == REG_OP_SESSION && json_is_object(out)) {
		char tok[CSRF_HEX + 1];
		csrf_token(m, j->j_fp, tok);
		json_object_set_new(out, "csrf", json_string(tok));
		OPENSSL_cleanse(tok, sizeof tok);
	}
	char *txt = out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	size_t tl = txt ? strlen(txt) : 0;
	if (!txt || tl > MSSP_ME_MAX_RESPONSE || tl > MSSP_SRV_MAX_RESPONSE)
		reply_err(m, j->j_req, 500, 900, txt ? "answer too large" : "out of memory", NULL);
	else
		reply(m, j->j_req, http_status_of(rc), JSON_CTYPE, txt, tl, NULL);
	/* the CSRF token and an activation code (shown once) are secrets */
	if (txt && (rt->op == REG_OP_SESSION || rt->op == REG_OP_ACTIVATION_CREATE))
		OPENSSL_cleanse(txt, tl);
	free(txt);
out:
	if (rt->op == REG_OP_ACTIVATION_CREATE)
		mreg_wipe_code(out);
	json_decref(out);
	json_decref(body);
	json_decref(qo);
}

static void
soap(struct me *m, struct job *j, struct store *st, const struct reg_actor *who)
{
	if (strcmp(j->j_method, "POST") != 0) {
		reply_err(m, j->j_req, 405, 101, "method not allowed", "POST");
		return;
	}
	bool s11 = ctype_is(j->j_ctype, "text/xml");
	if (!s11 && !ctype_is(j->j_ctype, "application/soap+xml")) {
		reply_err(m, j->j_req, 415, 101, "unsupported media type", NULL);
		return;
	}
	struct mss_buf b;
	int status = 500;
	/* one request carries up to MSSP_MREG_MAX_INPUTS inputs and
	 * MSSP_MREG_MAX_OPS operations (name searches, revocations,
	 * deletes): a long operation as a whole (review 2, F8) */
	if (!heavy_take(m, j)) {
		reply_err(m, j->j_req, 503, 900, "busy: too many long operations at once", NULL);
		return;
	}
	if (!job_go_on(m, j)) /* as in api(): not started for a request gone */
		return;
	mss_buf_init(&b, MSSP_SRV_MAX_RESPONSE);
	mreg_handle(m->m_reg, st, who, j->j_body ? j->j_body : "", j->j_blen, s11, m->m_mssp_id,
		    clock_wall_ms(), &b, &status);
	reply(m, j->j_req, status, MREG_CONTENT_TYPE, mss_buf_str(&b), mss_buf_len(&b), NULL);
	/* an answer may carry an activation code (ActivateMobileUser) */
	OPENSSL_cleanse((char *)mss_buf_str(&b), mss_buf_len(&b));
	mss_buf_free(&b);
}

#define API_PREFIX "/api/v1/"
#define SOAP_PATH "/soap/services/MSS_RegistrationPort"

static void
job_run(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct job *j = arg;
	struct me *m = j->j_me;
	struct reg_actor who;
	struct reg_err e;
	memset(&who, 0, sizeof who);
	memset(&e, 0, sizeof e);

	/* its request ended (client gone, or the park deadline answered 503)
	 * while it waited on the pool: nothing to do, nobody to answer */
	if (!job_go_on(m, j))
		goto out;
	/* who: the certificate names an account, on every request (T-08) */
	if (reg_account_by_fp(m->m_reg, nw->nw_store, j->j_fp, &who, &e) != 0) {
		if (e.status == 403) {
			struct reg_actor anon;
			char fph[TLS_FP_HEX_LEN + 1], det[REG_ERR_MSG_MAX + 80];
			memset(&anon, 0, sizeof anon);
			snprintf(anon.ra_name, sizeof anon.ra_name, "unknown");
			memcpy(anon.ra_fp, j->j_fp, sizeof anon.ra_fp);
			tls_fp_hex(j->j_fp, fph);
			snprintf(det, sizeof det, "%s; peer %s", e.msg[0] ? e.msg : "refused",
				 j->j_peer);
			reg_audit_event(m->m_reg, &anon, "auth.refused", fph, "refused", det,
					clock_wall_ms());
			LOG_EV("me.auth_refused", "peer", j->j_peer, "fp", fph);
			reply_err(m, j->j_req, 403, 104, "Forbidden", NULL);
		} else {
			int s = e.status >= 400 && e.status <= 599 ? e.status : 500;
			reply_err(m, j->j_req, s, e.code ? e.code : 900, e.msg, NULL);
		}
		goto out;
	}
	/* a page of another origin may send requests with our client
	 * certificate (the browser attaches it): refuse what it sends */
	if (j->j_origin && !origin_ours(m, j->j_origin)) {
		reply_err(m, j->j_req, 403, 104, "foreign Origin", NULL);
		goto out;
	}
	char *path = j->j_path;
	char *q = strchr(path, '?');
	if (q)
		*q++ = 0;
	if (strcmp(path, "/") == 0)
		serve_file(m, j, "", "index.html");
	else if (strncmp(path, "/static/", 8) == 0)
		serve_file(m, j, "static/", path + 8);
	else if (strcmp(path, API_PREFIX "openapi.json") == 0)
		serve_file(m, j, "", "openapi.json");
	else if (strcmp(path, SOAP_PATH) == 0)
		soap(m, j, nw->nw_store, &who);
	else if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) == 0)
		api(m, j, nw->nw_store, &who, path + strlen(API_PREFIX),
		    strlen(path) - strlen(API_PREFIX), q && *q ? q : NULL);
	else
		reply_err(m, j->j_req, 404, 101, "not found", NULL);
out:
	OPENSSL_cleanse(&who, sizeof who);
	job_finish(m, j);
}

/* ---- listener callbacks (worker loop) ------------------------------------------- */

static void
reply_now(struct srv_req *req, int status, int code, const char *msg)
{
	struct srv_header h[NBASE + 2];
	struct srv_response rs;
	char *b = err_body(status, code, msg);
	fill_response(&rs, h, status, JSON_CTYPE, b ? b : "", b ? strlen(b) : 0, NULL);
	(void)srv_reply_ex(req, &rs);
	free(b);
}

void
me_handler(struct srv_req *req, void *arg)
{
	struct me *m = arg;
	const uint8_t *fp = srv_req_peer_fp(req);
	if (!fp) { /* the listener is mutual TLS: only a misconfiguration */
		reply_now(req, 403, 104, "client certificate required");
		return;
	}
	/* The browser says a page of another site sent it (Fetch Metadata):
	 * whatever it asks, with our client certificate attached, is not the
	 * operator's doing.  Refused before it costs a pool thread. */
	const char *site = srv_req_header(req, "Sec-Fetch-Site");
	if (site && strcasecmp(site, "cross-site") == 0) {
		LOG_EV("me.cross_site_refused", "peer", srv_req_peer_ip(req));
		reply_now(req, 403, 104, "cross-site request refused");
		return;
	}
	struct job *j = calloc(1, sizeof *j);
	size_t blen = 0;
	const uint8_t *body = srv_req_body(req, &blen);
	if (!j)
		goto busy;
	j->j_me = m;
	memcpy(j->j_fp, fp, TLS_FP_LEN);
	snprintf(j->j_peer, sizeof j->j_peer, "%s", srv_req_peer_ip(req));
	j->j_method = strdup(srv_req_method(req));
	j->j_path = strdup(srv_req_path(req));
	j->j_ctype = dup_or_null(srv_req_header(req, "Content-Type"));
	j->j_csrf = dup_or_null(srv_req_header(req, "X-MSSP-CSRF"));
	j->j_origin = dup_or_null(srv_req_header(req, "Origin"));
	j->j_body = malloc(blen + 1);
	if (!j->j_method || !j->j_path || !j->j_body ||
	    (srv_req_header(req, "Content-Type") && !j->j_ctype) ||
	    (srv_req_header(req, "X-MSSP-CSRF") && !j->j_csrf) ||
	    (srv_req_header(req, "Origin") && !j->j_origin))
		goto busy;
	if (blen)
		memcpy(j->j_body, body, blen);
	j->j_body[blen] = 0;
	j->j_blen = blen;
	if (srv_req_park(req, m->m_park_ms) != 0)
		goto busy;
	j->j_req = srv_req_id(req);
	/* admission: a run slot, else the ME's own queue, else busy (the
	 * shared pool never holds more than m_max_running ME jobs) */
	bool run = false, full = false;
	pthread_mutex_lock(&m->m_jlock);
	if (m->m_running < m->m_max_running) {
		m->m_running++;
		jobs_link(m, j);
		run = true;
	} else if (m->m_nwait < MSSP_ME_MAX_WAITING) {
		jobs_link(m, j);
		wait_push(m, j);
	} else {
		full = true;
	}
	pthread_mutex_unlock(&m->m_jlock);
	if (full) {
		reply_err(m, j->j_req, 503, 900, "server busy", NULL);
		job_free(j);
	} else if (run) {
		job_submit(m, j);
	}
	return;
busy:
	job_free(j);
	reply_now(req, 503, 900, "server busy");
}

void
me_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	struct me *m = arg;
	struct job *drop = NULL;
	bool started = false;
	/* Mark the job: one not started yet will not run (job_go_on); one
	 * still in the ME's queue is dropped here.  A started one runs to
	 * its end; its late answer is dropped by the server. */
	pthread_mutex_lock(&m->m_jlock);
	struct job *j = jobs_find(m, srv_req_id(req));
	if (j) {
		j->j_cancelled = true;
		started = j->j_started;
		if (j->j_waiting) {
			wait_remove(m, j);
			jobs_unlink(m, j);
			drop = j;
		}
	}
	pthread_mutex_unlock(&m->m_jlock);
	job_free(drop);
	if (why != SRV_CANCEL_DEADLINE)
		return;
	if (started)
		/* it may have done what was asked, or be about to: a blind
		 * retry could do it twice (a second approval, a second key
		 * request) */
		reply_now(req, 504, 900, "outcome unknown, query before retrying");
	else
		reply_now(req, 503, 900, "not started in time: nothing was done");
}

/* ---- the job thread ------------------------------------------------------------- */

static const struct reg_actor system_actor = {.ra_name = "system", .ra_role = REG_ROLE_SYSTEM};

static void *
job_thread(void *arg)
{
	struct me *m = arg;
	pthread_mutex_lock(&m->m_lock);
	while (!m->m_stopping) {
		pthread_mutex_unlock(&m->m_lock);
		size_t n = 0;
		struct reg_err e;
		memset(&e, 0, sizeof e);
		/* answered key jobs -> CSR checks, keycheck, the CA (me.md) */
		if (reg_jobs_process(m->m_reg, m->m_jst, clock_wall_ms(), &n, &e) != 0)
			LOG_EV("me.jobs_failed", "detail", e.msg);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)MSSP_ME_JOB_POLL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&m->m_lock);
		while (!m->m_stopping &&
		       pthread_cond_timedwait(&m->m_cond, &m->m_lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&m->m_lock);
	return NULL;
}

int
me_start(struct me *m, struct store *st)
{
	struct store_err se;
	if (m->m_started)
		return -1;
	m->m_jst = store_clone(st, &se);
	if (!m->m_jst) {
		LOG_EV("me.start_failed", "detail", se.detail);
		return -1;
	}
	m->m_stopping = false;
	if (pthread_create(&m->m_thread, NULL, job_thread, m) != 0) {
		store_close(m->m_jst);
		m->m_jst = NULL;
		return -1;
	}
	m->m_started = true;
	reg_audit_event(m->m_reg, &system_actor, "me.start", NULL, "ok", NULL, clock_wall_ms());
	return 0;
}

void
me_stop(struct me *m)
{
	if (!m || !m->m_started)
		return;
	pthread_mutex_lock(&m->m_lock);
	m->m_stopping = true;
	pthread_cond_broadcast(&m->m_cond);
	pthread_mutex_unlock(&m->m_lock);
	pthread_join(m->m_thread, NULL);
	m->m_started = false;
	store_close(m->m_jst);
	m->m_jst = NULL;
	reg_audit_event(m->m_reg, &system_actor, "me.stop", NULL, "ok", NULL, clock_wall_ms());
}

/* ---- life cycle ------------------------------------------------------------------- */

struct me *
me_new(const struct me_conf *c, char *err, size_t errlen)
{
	if (!c || !c->mc_reg || !c->mc_pool || !c->mc_origin || !*c->mc_origin) {
		snprintf(err, errlen, "me: reg, pool and origin are required");
		return NULL;
	}
	struct me *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->m_reg = c->mc_reg;
	m->m_pool = c->mc_pool;
	m->m_max_running = c->mc_max_running ? c->mc_max_running : MSSP_ME_MAX_RUNNING;
	m->m_max_heavy = c->mc_max_heavy ? c->mc_max_heavy : MSSP_ME_MAX_HEAVY;
	m->m_park_ms = c->mc_park_ms ? c->mc_park_ms : MSSP_ME_PARK_MS;
	if (m->m_park_ms > MSSP_SRV_MAX_PARK_MS)
		m->m_park_ms = MSSP_SRV_MAX_PARK_MS;
	pthread_mutex_init(&m->m_jlock, NULL);
	pthread_cond_init(&m->m_jdone, NULL);
	m->m_origin = strdup(c->mc_origin);
	m->m_web_root = dup_or_null(c->mc_web_root);
	m->m_mssp_id = dup_or_null(c->mc_mssp_id);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->m_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&m->m_lock, NULL);
	if (!m->m_origin || (c->mc_web_root && !m->m_web_root) ||
	    (c->mc_mssp_id && !m->m_mssp_id)) {
		snprintf(err, errlen, "out of memory");
		me_free(m);
		return NULL;
	}
	if (RAND_priv_bytes(m->m_secret, sizeof m->m_secret) != 1) {
		snprintf(err, errlen, "me: no randomness for the CSRF secret");
		me_free(m);
		return NULL;
	}
	return m;
}

void
me_attach(struct me *m, struct srv *s)
{
	m->m_srv = s;
}

void
me_free(struct me *m)
{
	if (!m)
		return;
	me_stop(m);
	OPENSSL_cleanse(m->m_secret, sizeof m->m_secret);
	/* srv_stop cancelled every parked request (the waiting ones were
	 * freed then); jobs still on the pool end on their own (pool_stop
	 * runs the queued ones): wait for them, they use m to the end */
	pthread_mutex_lock(&m->m_jlock);
	while (m->m_wait) {
		struct job *j = m->m_wait;
		wait_remove(m, j);
		jobs_unlink(m, j);
		job_free(j);
	}
	while (m->m_jobs)
		pthread_cond_wait(&m->m_jdone, &m->m_jlock);
	pthread_mutex_unlock(&m->m_jlock);
	pthread_cond_destroy(&m->m_jdone);
	pthread_mutex_destroy(&m->m_jlock);
	pthread_cond_destroy(&m->m_cond);
	pthread_mutex_destroy(&m->m_lock);
	free(m->m_origin);
	free(m->m_web_root);
	free(m->m_mssp_id);
	free(m);
}
