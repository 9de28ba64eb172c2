/*
 * test_me.c - the ME's HTTP front end on loopback, with real parts only:
 * a mutual-TLS server (net/server.h) whose listener is me_handler, a
 * worker pool whose threads hold their own handle on a real SQLite store,
 * a real struct reg with its audit log, and libcurl as the client (one
 * client certificate per account, as msspctl uses it).
 *
 * Accounts: admin (admin), ra (ra), auditor (auditor); "stranger" has a
 * certificate from the same CA but no account; "apcert" is an AP's
 * certificate.  The console files are written into a scratch web root,
 * with a secret beside it and a symbolic link that points at it.
 *
 * Admission and cancellation are shown with the real pool: its threads
 * are held by jobs of the test (a stand-in for signing work), or an ME
 * job is held inside reg_call by the test holding the audit log's flock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mss/msg.h"
#include "mss/soap.h"
#include "net/server.h"
#include "net/tls.h"
#include "roles/me.h"
#include "roles/node.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/pool.h"

#include "testdir.h"
#include "testtls.h"

#define ORIGIN_FMT "https://127.0.0.1:%u"
#define PARK_MS 4000 /* the ME's request deadline here (mc_park_ms) */

static struct {
	char dir[256];
	char uri[512];
	char web[512];
	char origin[64];
	struct store *st;
	struct audit *audit;
	struct reg *reg;
	struct pool *pool;
	struct me *me;
	struct srv *srv;
	uint16_t port;
	uint16_t cur_port; /* where req() sends: T.port, or a second ME's */
	uint8_t fp_stranger[32], fp_ap[32];
} T;

/* ---- the client ----------------------------------------------------------- */

struct resp {
	long status;
	char *body;
	size_t len;
	char head[8192];
	size_t hlen;
};

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	char *nb = realloc(r->body, r->len + sz * n + 1);
	assert_non_null(nb);
	memcpy(nb + r->len, p, sz * n);
	r->len += sz * n;
	nb[r->len] = 0;
	r->body = nb;
	return sz * n;
}

static size_t
on_head(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t k = sz * n;
	if (r->hlen + k < sizeof r->head) {
		memcpy(r->head + r->hlen, p, k);
		r->hlen += k;
		r->head[r->hlen] = 0;
	}
	return k;
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* The value of response header `name` (case-insensitive) into out. */
static bool
resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *l = r->head; l && *l;) {
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ')
				v++;
			size_t k = strcspn(v, "\r\n");
			snprintf(out, cap, "%.*s", (int)k, v);
			return true;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return false;
}

/* One request as account `who` (certificate dir/<who>.pem); `hdrs` NULL
 * or a NULL-terminated list of "Name: value"; `timeout_ms` the client's
 * patience.  The curl result (the caller decides what a failure means). */
static CURLcode
req_ex(const char *who, const char *method, const char *path, const char *const *hdrs,
       const char *body, size_t blen, long timeout_ms, struct resp *r)
{
	char url[4096], cert[512], key[512], ca[512];
	memset(r, 0, sizeof *r);
	snprintf(url, sizeof url, "https://127.0.0.1:%u%s", T.cur_port ? T.cur_port : T.port,
		 path);
	snprintf(cert, sizeof cert, "%s/%s.pem", T.dir, who);
	snprintf(key, sizeof key, "%s/%s.key", T.dir, who);
	snprintf(ca, sizeof ca, "%s/ca.pem", T.dir);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		hl = curl_slist_append(hl, hdrs[i]);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

/* A request exactly as given (no token added). */
static void
raw_req(const char *who, const char *method, const char *path, const char *const *hdrs,
	const char *body, size_t blen, struct resp *r)
{
	CURLcode rc = req_ex(who, method, path, hdrs, body, blen, 20000L, r);
	if (rc != CURLE_OK)
		fail_msg("%s %s as %s: curl %d %s", method, path, who, rc, curl_easy_strerror(rc));
}

static void csrf_of(const char *who, char out[80]);

/* Does the request need the CSRF token (every /api/v1 request but the
 * session and the OpenAPI document)? */
static bool
needs_token(const char *path)
{
	return strncmp(path, "/api/v1/", 8) == 0 && strncmp(path, "/api/v1/session", 15) != 0 &&
	       strncmp(path, "/api/v1/openapi.json", 20) != 0;
}

/* A request as the console and msspctl send it: the account's token on
 * every API request that needs one, unless `hdrs` brings its own. */
static void
req(const char *who, const char *method, const char *path, const char *const *hdrs,
    const char *body, size_t blen, struct resp *r)
{
	const char *all[16];
	char tok[80], h[128];
	size_t n = 0;
	bool has = false;
	for (size_t i = 0; hdrs && hdrs[i] && n < 14; i++) {
		has |= strncasecmp(hdrs[i], "X-MSSP-CSRF:", 12) == 0;
		all[n++] = hdrs[i];
	}
	if (!has && needs_token(path)) {
		csrf_of(who, tok);
		snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
		all[n++] = h;
	}
	all[n] = NULL;
	raw_req(who, method, path, all, body, blen, r);
}

static json_t *
resp_json(const struct resp *r)
{
	json_error_t je;
	json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, &je);
	if (!j)
		fail_msg("not JSON (%ld): %s", r->status, r->body ? r->body : "");
	return j;
}

/* The CSRF token of account `who` at the current ME (GET
 * /api/v1/session), fetched once per account and ME: a test that holds
 * the pool must not need a session request to get through. */
static void
csrf_of(const char *who, char out[80])
{
	static struct {
		char who[16];
		uint16_t port;
		char tok[80];
	} cache[16];
	uint16_t port = T.cur_port ? T.cur_port : T.port;
	size_t i;
	for (i = 0; i < 16 && cache[i].who[0]; i++)
		if (cache[i].port == port && strcmp(cache[i].who, who) == 0) {
			snprintf(out, 80, "%s", cache[i].tok);
			return;
		}
	struct resp r;
	raw_req(who, "GET", "/api/v1/session", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = resp_json(&r);
	const char *t = json_string_value(json_object_get(j, "csrf"));
	assert_non_null(t);
	snprintf(out, 80, "%s", t);
	if (i < 16) {
		snprintf(cache[i].who, sizeof cache[i].who, "%s", who);
		cache[i].port = port;
		snprintf(cache[i].tok, sizeof cache[i].tok, "%s", t);
	}
	json_decref(j);
	resp_free(&r);
}

/* A mutating JSON request with the account's own token. */
static void
jreq(const char *who, const char *method, const char *path, const char *body, struct resp *r)
{
	char tok[80], h[128];
	csrf_of(who, tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	const char *hdrs[] = {h, "Content-Type: application/json", NULL};
	req(who, method, path, hdrs, body, body ? strlen(body) : 0, r);
}

/* Does the audit log hold a line with all of `a` and `b`? */
static bool
audit_has(const char *a, const char *b)
{
	char p[600];
	snprintf(p, sizeof p, "%s/audit/node1.log", T.dir);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	char line[MSSP_AUDIT_MAX_LINE + 2];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, a) && (!b || strstr(line, b));
	fclose(f);
	return found;
}

/* ---- setup ---------------------------------------------------------------- */

static void *
pool_init(void *arg, unsigned idx)
{
	(void)arg;
	struct store_err err;
	struct node_worker *nw = calloc(1, sizeof *nw);
	if (!nw)
		return NULL;
	nw->nw_idx = idx;
	nw->nw_store = store_open(T.uri, 0, &err);
	if (!nw->nw_store) {
		free(nw);
		return NULL;
	}
	return nw;
}

static void
pool_fini(void *arg, void *ctx)
{
	(void)arg;
	struct node_worker *nw = ctx;
	store_close(nw->nw_store);
	free(nw);
}

static void
leaf_fp(X509 *x, uint8_t fp[32])
{
	assert_int_equal(tls_cert_fingerprint(x, fp), 0);
	X509_free(x);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* An ME (conf `mc`, its origin filled in here) behind a mutual-TLS
 * server on a free loopback port. */
static void
me_listen(struct me_conf *mc, struct me **mout, struct srv **sout, uint16_t *port, char *origin,
	  size_t olen)
{
	/* The origin names the port, and the ME (the listener's argument)
	 * needs it before srv_new: take a free port from the kernel first. */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_true(fd >= 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
		*port = ntohs(sa.sin_port);
		close(fd);
	}
	snprintf(origin, olen, ORIGIN_FMT, *port);
	mc->mc_origin = origin;
	char err[200];
	struct me *m = me_new(mc, err, sizeof err);
	if (!m)
		fail_msg("me_new: %s", err);

	SSL_CTX *ctx = tt_server_ctx(T.dir, "server", "ca.pem", NULL);
	struct srv_conf sc = {.sc_workers = 2, .sc_nlisteners = 1};
	sc.sc_listeners[0] = (struct srv_listener_conf){
		.sl_name = "me", .sl_addr = "127.0.0.1", .sl_port = *port, .sl_tls = ctx,
		.sl_handler = me_handler, .sl_cancel = me_cancel, .sl_arg = m};
	struct net_err ne;
	struct srv *sv = srv_new(&sc, &ne);
	SSL_CTX_free(ctx);
	if (!sv)
		fail_msg("srv_new: %s", ne.ne_detail);
	me_attach(m, sv);
	if (srv_start(sv, &ne) != 0)
		fail_msg("srv_start: %s", ne.ne_detail);
	*mout = m;
	*sout = sv;
}

static int
group_setup(void **state)
{
	(void)state;
	struct store_err se;
	struct reg_err re;
	char p[600];

	mss_soap_init();
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
	assert_int_equal(td_make(T.dir, sizeof T.dir, "test_me"), 0);
	snprintf(T.uri, sizeof T.uri, "sqlite:%s/me.db", T.dir);

	/* one CA for the server and every client */
	EVP_PKEY *cakey;
	X509 *ca = tt_make_ca(T.dir, "ca.pem", "ME test CA", &cakey);
	X509_free(tt_make_leaf(T.dir, "server", ca, cakey, tt_server_ext, TT_NEXT(tt_server_ext),
			       -TT_DAY, 30 * TT_DAY));
	static const char *const names[] = {"admin", "ra", "auditor"};
	static const enum reg_role roles[] = {REG_ROLE_ADMIN, REG_ROLE_RA, REG_ROLE_AUDITOR};
	uint8_t fps[3][32];
	for (int i = 0; i < 3; i++)
		leaf_fp(tt_make_leaf(T.dir, names[i], ca, cakey, tt_client_ext,
				     TT_NEXT(tt_client_ext), -TT_DAY, 30 * TT_DAY),
			fps[i]);
	leaf_fp(tt_make_leaf(T.dir, "stranger", ca, cakey, tt_client_ext, TT_NEXT(tt_client_ext),
			     -TT_DAY, 30 * TT_DAY),
		T.fp_stranger);
	leaf_fp(tt_make_leaf(T.dir, "apcert", ca, cakey, tt_client_ext, TT_NEXT(tt_client_ext),
			     -TT_DAY, 30 * TT_DAY),
		T.fp_ap);
	X509_free(ca);
	EVP_PKEY_free(cakey);

	/* store, audit log, reg */
	T.st = store_open(T.uri, STORE_OPEN_CREATE, &se);
	if (!T.st)
		fail_msg("store_open: %s", se.detail);
	snprintf(p, sizeof p, "%s/audit", T.dir);
	assert_int_equal(audit_keygen(p, &se), 0);
	char key[700];
	snprintf(key, sizeof key, "%s/audit.key", p);
	T.audit = audit_open(p, "node1", key, &se);
	if (!T.audit)
		fail_msg("audit_open: %d %s", se.status, se.detail);
	struct reg_conf rc = {.rc_node = "node1", .rc_data_dir = T.dir, .rc_audit = T.audit};
	T.reg = reg_new(&rc, &re);
	if (!T.reg)
		fail_msg("reg_new: %d %s", re.status, re.msg);
	for (int i = 0; i < 3; i++)
		if (reg_account_seed(T.reg, T.st, names[i], roles[i], fps[i], clock_wall_ms(), &re) != 0)
			fail_msg("account seed %s: %d %s", names[i], re.status, re.msg);
	char fph[TLS_FP_HEX_LEN + 1];
	tls_fp_hex(T.fp_ap, fph);
	json_t *ap = json_pack("{s:s,s:s,s:[s],s:[s],s:[s],s:[],s:i}", "id", "http://demo.ap/",
			       "name", "Demo AP", "cert_sha256", fph, "profiles", "*", "modes",
			       "synch", "notify_urls", "rate", 10);
	if (reg_ap_seed(T.reg, T.st, ap, clock_wall_ms(), &re) != 0)
		fail_msg("ap seed: %d %s", re.status, re.msg);
	json_decref(ap);

	/* the web root: the console, a secret beside it, a link to it */
	snprintf(T.web, sizeof T.web, "%s/web", T.dir);
	assert_int_equal(mkdir(T.web, 0700), 0);
	snprintf(p, sizeof p, "%s/static", T.web);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/static/sub", T.web);
	assert_int_equal(mkdir(p, 0700), 0);
	write_file(T.web, "index.html", "<!doctype html><title>ME</title>");
	write_file(T.web, "openapi.json", "{\"openapi\":\"3.0.3\"}");
	write_file(T.web, "static/app.js", "console.log('me');");
	write_file(T.web, "static/app.exe", "MZ");
	write_file(T.web, "static/sub/x.js", "nested");
	write_file(T.dir, "secret.txt", "TOPSECRET");
	snprintf(p, sizeof p, "%s/static/link.js", T.web);
	char target[600];
	snprintf(target, sizeof target, "%s/secret.txt", T.dir);
	assert_int_equal(symlink(target, p), 0);

	T.pool = pool_new(2, 0, pool_init, pool_fini, NULL);
	assert_non_null(T.pool);

	/* mc_max_running 2: both pool threads (the heavy cap is shown with
	 * two long operations at once); a second ME with 1 is made in
	 * test_running_cap */
	struct me_conf mc = {.mc_reg = T.reg, .mc_pool = T.pool, .mc_web_root = T.web,
			     .mc_mssp_id = "http://mssp.test/", .mc_max_running = 2,
			     .mc_max_heavy = 1, .mc_park_ms = PARK_MS};
	me_listen(&mc, &T.me, &T.srv, &T.port, T.origin, sizeof T.origin);
	assert_int_equal(me_start(T.me, T.st), 0);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (T.srv)
		srv_stop(T.srv);
	me_stop(T.me);
	if (T.pool)
		pool_stop(T.pool);
	srv_free(T.srv);
	me_free(T.me);
	pool_free(T.pool);
	reg_free(T.reg);
	audit_close(T.audit);
	store_close(T.st);
	if (T.dir[0])
		td_remove(T.dir);
	curl_global_cleanup();
	return 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void
assert_security_headers(const struct resp *r)
{
	char v[512];
	assert_true(resp_header(r, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_true(resp_header(r, "X-Content-Type-Options", v, sizeof v));
	assert_string_equal(v, "nosniff");
	assert_true(resp_header(r, "Content-Security-Policy", v, sizeof v));
	assert_non_null(strstr(v, "default-src 'none'"));
	assert_non_null(strstr(v, "script-src 'self'"));
	assert_non_null(strstr(v, "frame-ancestors 'none'"));
	assert_true(resp_header(r, "X-Frame-Options", v, sizeof v));
	assert_string_equal(v, "DENY");
	assert_true(resp_header(r, "Referrer-Policy", v, sizeof v));
	assert_string_equal(v, "no-referrer");
}

/* An error answer: status, the JSON error object with the same status
 * and the ETSI code. */
static void
assert_error(const struct resp *r, long status, int code)
{
	if (r->status != status)
		fail_msg("status %ld, want %ld: %s", r->status, status, r->body ? r->body : "");
	json_t *j = resp_json(r);
	json_t *e = json_object_get(j, "error");
	assert_true(json_is_object(e));
	assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
	assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
	assert_true(json_is_string(json_object_get(e, "message")));
	json_decref(j);
	assert_security_headers(r);
}

static void
test_session_admin(void **state)
{
	(void)state;
	struct resp r;
	req("admin", "GET", "/api/v1/session", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	char v[128];
	assert_true(resp_header(&r, "Content-Type", v, sizeof v));
	assert_non_null(strstr(v, "application/json"));
	json_t *j = resp_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "account")), "admin");
	assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
	const char *t = json_string_value(json_object_get(j, "csrf"));
	assert_non_null(t);
	assert_int_equal(strlen(t), 64);
	assert_int_equal(strspn(t, "0123456789abcdef"), 64);
	char t1[80];
	snprintf(t1, sizeof t1, "%s", t);
	json_decref(j);
	resp_free(&r);
	/* the token is per account: the same for admin again, another for ra */
	char t2[80], t3[80];
	csrf_of("admin", t2);
	csrf_of("ra", t3);
	assert_string_equal(t1, t2);
	assert_string_not_equal(t1, t3);
}

static void
test_unknown_certificate(void **state)
{
	(void)state;
	struct resp r;
	char fph[TLS_FP_HEX_LEN + 1];
	tls_fp_hex(T.fp_stranger, fph);
	assert_false(audit_has("auth.refused", fph));
	req("stranger", "GET", "/api/v1/session", NULL, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	assert_true(audit_has("auth.refused", fph));
	/* the console too: every request is authenticated */
	req("stranger", "GET", "/", NULL, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	req("stranger", "GET", "/no/such/path", NULL, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
}

static void
test_ap_certificate(void **state)
{
	(void)state;
	struct resp r;
	char fph[TLS_FP_HEX_LEN + 1];
	tls_fp_hex(T.fp_ap, fph);
	req("apcert", "GET", "/api/v1/session", NULL, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	assert_true(audit_has("auth.refused", fph));
	/* MReg is on the same listener: refused the same way */
	req("apcert", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: text/xml", NULL}, "<x/>", 4, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
}

static void
test_role_refusal(void **state)
{
	(void)state;
	struct resp r;
	jreq("auditor", "POST", "/api/v1/users", "{\"msisdn\":\"+35840111222\"}", &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	assert_true(audit_has("\"user.create\"", "\"refused\""));
	/* what the auditor may do */
	req("auditor", "GET", "/api/v1/users", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	req("ra", "GET", "/api/v1/aps", NULL, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
}

static void
test_csrf(void **state)
{
	(void)state;
	struct resp r;
	const char *body = "{\"msisdn\":\"+35840222333\"}";
	/* none */
	raw_req("admin", "POST", "/api/v1/users",
	    (const char *const[]){"Content-Type: application/json", NULL}, body, strlen(body), &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* wrong, of the right shape */
	char h[160], tok[80];
	snprintf(h, sizeof h, "X-MSSP-CSRF: %064d", 0);
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/json", NULL}, body, strlen(body),
	    &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* another account's token */
	csrf_of("ra", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/json", NULL}, body, strlen(body),
	    &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* a token cut short */
	csrf_of("admin", tok);
	tok[63] = 0;
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	req("admin", "DELETE", "/api/v1/users/%2B35840222333",
	    (const char *const[]){h, "Content-Type: application/json", NULL}, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* nothing was created */
	req("admin", "GET", "/api/v1/users/%2B35840222333", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static void
test_origin(void **state)
{
	(void)state;
	struct resp r;
	req("admin", "GET", "/api/v1/session",
	    (const char *const[]){"Origin: https://evil.example", NULL}, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	req("admin", "GET", "/api/v1/session", (const char *const[]){"Origin: null", NULL}, NULL,
	    0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* our own origin is fine */
	char h[128];
	snprintf(h, sizeof h, "Origin: %s", T.origin);
	req("admin", "GET", "/api/v1/session", (const char *const[]){h, NULL}, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* a foreign origin with a good token is still refused */
	char tok[80], ht[128];
	csrf_of("admin", tok);
	snprintf(ht, sizeof ht, "X-MSSP-CSRF: %s", tok);
	const char *body = "{\"msisdn\":\"+35840333444\"}";
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){ht, "Content-Type: application/json",
				  "Origin: https://127.0.0.1:1", NULL},
	    body, strlen(body), &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
}

static void
test_media_type_and_size(void **state)
{
	(void)state;
	struct resp r;
	char tok[80], h[128];
	csrf_of("admin", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	const char *body = "{\"msisdn\":\"+35840444555\"}";
	/* 415: a form post, and no Content-Type at all */
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: text/plain", NULL}, body, strlen(body), &r);
	assert_error(&r, 415, 101);
	resp_free(&r);
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/x-www-form-urlencoded", NULL},
	    body, strlen(body), &r);
	assert_error(&r, 415, 101);
	resp_free(&r);
	/* 400: not an object */
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/json", NULL}, "[1]", 3, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/json", NULL},
	    "{\"msisdn\":\"1\",\"msisdn\":\"2\"}", 27, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	/* 413: over the listener's body cap */
	size_t big = MSSP_HTTP_MAX_BODY + 4096;
	char *b = malloc(big + 1);
	assert_non_null(b);
	memset(b, ' ', big);
	b[0] = '{';
	b[big - 1] = '}';
	b[big] = 0;
	req("admin", "POST", "/api/v1/users",
	    (const char *const[]){h, "Content-Type: application/json", NULL}, b, big, &r);
	assert_int_equal(r.status, 413);
	resp_free(&r);
	free(b);
}

static void
test_routes(void **state)
{
	(void)state;
	struct resp r;
	char v[128];
	req("admin", "GET", "/api/v1/nope", NULL, NULL, 0, &r);
	assert_error(&r, 404, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/", NULL, NULL, 0, &r);
	assert_error(&r, 404, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v2/session", NULL, NULL, 0, &r);
	assert_error(&r, 404, 101);
	resp_free(&r);
	req("admin", "DELETE", "/api/v1/session", NULL, NULL, 0, &r);
	assert_error(&r, 405, 101);
	assert_true(resp_header(&r, "Allow", v, sizeof v));
	assert_string_equal(v, "GET");
	resp_free(&r);
	req("admin", "PATCH", "/api/v1/users/%2B358401", NULL, NULL, 0, &r);
	assert_error(&r, 405, 101);
	assert_true(resp_header(&r, "Allow", v, sizeof v));
	assert_string_equal(v, "GET, PUT, DELETE");
	resp_free(&r);
	req("admin", "GET", "/soap/services/MSS_RegistrationPort", NULL, NULL, 0, &r);
	assert_error(&r, 405, 101);
	resp_free(&r);
	/* strict decoding of path arguments and query strings */
	/* (a malformed escape never reaches the ME: the HTTP parser's 400) */
	req("admin", "GET", "/api/v1/users/%zz", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/%2", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/%00", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/a%2Fb", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101); /* '/' only inside an AP id */
	resp_free(&r);
	req("admin", "GET", "/api/v1/users?q=1&q=2", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users?q", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users?q=1&&limit=2", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users?q=%ff", NULL, NULL, 0, &r);
	assert_error(&r, 400, 101);
	resp_free(&r);
	/* an AP id with its slashes encoded */
	req("admin", "GET", "/api/v1/aps/http%3A%2F%2Fdemo.ap%2F", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = resp_json(&r);
	json_t *ap = json_object_get(j, "ap");
	if (!json_is_object(ap))
		ap = j;
	assert_string_equal(json_string_value(json_object_get(ap, "id")), "http://demo.ap/");
	json_decref(j);
	resp_free(&r);
	/* HEAD of a GET route */
	req("admin", "HEAD", "/api/v1/session", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	resp_free(&r);
}

static void
test_static(void **state)
{
	(void)state;
	struct resp r;
	char v[128];
	req("admin", "GET", "/", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_true(resp_header(&r, "Content-Type", v, sizeof v));
	assert_non_null(strstr(v, "text/html"));
	assert_non_null(strstr(r.body, "<title>ME</title>"));
	resp_free(&r);
	req("admin", "GET", "/static/app.js", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_true(resp_header(&r, "Content-Type", v, sizeof v));
	assert_non_null(strstr(v, "javascript"));
	assert_string_equal(r.body, "console.log('me');");
	assert_security_headers(&r);
	resp_free(&r);
	req("auditor", "GET", "/api/v1/openapi.json", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "openapi"));
	resp_free(&r);
	/* traversal, encodings, subdirectories, links, unknown types */
	static const char *const bad[] = {
		"/static/../secret.txt",      "/static/..%2fsecret.txt", "/static/%2e%2e/secret.txt",
		"/static/../../secret.txt",   "/static/sub/x.js",	 "/static/link.js",
		"/static/app.exe",	      "/static/",		 "/static/.hidden.js",
		"/static/..",		      "/index.html",		 "/static/app.js/",
		"/../secret.txt",	      "/static//app.js",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		req("admin", "GET", bad[i], NULL, NULL, 0, &r);
		if (r.status == 200 || (r.body && strstr(r.body, "TOPSECRET")))
			fail_msg("%s served: %ld", bad[i], r.status);
		assert_true(r.status == 404 || r.status == 400);
		resp_free(&r);
	}
	req("admin", "POST", "/static/app.js", NULL, "x", 1, &r);
	assert_error(&r, 405, 101);
	resp_free(&r);
}

static void
test_user_roundtrip(void **state)
{
	(void)state;
	struct resp r;
	jreq("ra", "POST", "/api/v1/users",
	     "{\"msisdn\":\"+35840555666\",\"given_name\":\"Maija\",\"surname\":\"Meik\\u00e4l\\u00e4inen\","
	     "\"id_number\":\"010190-123A\",\"country\":\"FI\",\"lang\":\"fi\"}",
	     &r);
	if (r.status != 201)
		fail_msg("create: %ld %s", r.status, r.body ? r.body : "");
	resp_free(&r);
	req("auditor", "GET", "/api/v1/users/%2B35840555666", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = resp_json(&r);
	json_t *u = json_object_get(j, "user");
	if (!json_is_object(u))
		u = j;
	assert_string_equal(json_string_value(json_object_get(u, "msisdn")), "+35840555666");
	assert_string_equal(json_string_value(json_object_get(u, "given_name")), "Maija");
	assert_string_equal(json_string_value(json_object_get(u, "surname")),
			    "Meik\xc3\xa4l\xc3\xa4inen");
	json_decref(j);
	resp_free(&r);
	/* the list with a query (a '+' must be sent as %2B) */
	req("admin", "GET", "/api/v1/users?q=%2B3584055&limit=5", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "+35840555666"));
	resp_free(&r);
	/* a second create of the same user: reg's 409 passes through */
	jreq("ra", "POST", "/api/v1/users", "{\"msisdn\":\"+35840555666\"}", &r);
	assert_error(&r, 409, 101);
	resp_free(&r);
	assert_true(audit_has("\"user.create\"", "+35840555666"));
	/* suspend: a POST without a body */
	jreq("ra", "POST", "/api/v1/users/%2B35840555666/suspend", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* ---- MReg ------------------------------------------------------------------ */

static const char mreg_fmt[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<soapenv:Envelope xmlns:soapenv=\"%s\"><soapenv:Header/><soapenv:Body>"
	"<MSS_Registration xmlns=\"\"><mss:MSS_RegistrationReq "
	"xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" "
	"xmlns:mreg=\"http://www.methics.fi/MSSPRegistration/v1.0.0#\" MajorVersion=\"1\" "
	"MinorVersion=\"1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"secret\" "
	"AP_TransID=\"A1\" Instant=\"2024-05-14T12:02:00.000Z\"/><mss:MSSP_Info><mss:MSSP_ID/>"
	"</mss:MSSP_Info><mss:MobileUser/>"
	"<mreg:RegistrationInput InputId=\"_1\"><mreg:Target><mreg:MobileUser>"
	"<mss:MSISDN>%s</mss:MSISDN></mreg:MobileUser></mreg:Target>"
	"<mreg:MregRequest><mreg:ProvisioningOperation Name=\"mids:CreateMobileUser\">"
	"<mreg:Parameter Name=\"MSISDN\" Value=\"%s\"/>"
	"<mreg:Parameter Name=\"givenName\" Value=\"Matti\"/>"
	"<mreg:Parameter Name=\"surName\" Value=\"Virtanen\"/>"
	"<mreg:Parameter Name=\"Language\" Value=\"fi\"/>"
	"<mreg:Parameter Name=\"Country\" Value=\"FI\"/>"
	"</mreg:ProvisioningOperation></mreg:MregRequest>"
	"<mreg:MregRequest><mreg:ProvisioningOperation Name=\"GetMobileUser\"/></mreg:MregRequest>"
	"<mreg:MregRequest><mreg:ProvisioningOperation Name=\"kiuru:NoSuchOperation\"/>"
	"</mreg:MregRequest>"
	"</mreg:RegistrationInput></mss:MSS_RegistrationReq></MSS_Registration>"
	"</soapenv:Body></soapenv:Envelope>";

static const char *
out_param(const struct mss_mreg_operation *o, const char *name)
{
	for (size_t i = 0; o->parameter && i < o->parameter->n; i++) {
		const struct mss_mreg_param *p = o->parameter->items[i];
		if (strcmp(p->name, name) == 0)
			return p->value;
	}
	return NULL;
}

static void
mreg_roundtrip(bool soap11)
{
	const char *msisdn = soap11 ? "+35840666777" : "+35840666888";
	char body[8192];
	snprintf(body, sizeof body, mreg_fmt,
		 soap11 ? "http://schemas.xmlsoap.org/soap/envelope/"
			: "http://www.w3.org/2003/05/soap-envelope",
		 msisdn, msisdn);
	struct resp r;
	const char *ct = soap11 ? "Content-Type: text/xml; charset=utf-8"
				: "Content-Type: application/soap+xml; charset=UTF-8";
	req("ra", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){ct, "SOAPAction: \"#MSS_Registration\"", NULL}, body,
	    strlen(body), &r);
	if (r.status != 200)
		fail_msg("MReg: %ld %s", r.status, r.body ? r.body : "");
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, soap11 ? "http://schemas.xmlsoap.org/soap/envelope/"
					      : "http://www.w3.org/2003/05/soap-envelope"));
	struct mss_err e;
	struct mss_msg *m = mss_soap_decode(r.body, r.len, 0, &e);
	if (!m)
		fail_msg("response does not decode: %s: %s", e.detail, r.body);
	assert_int_equal(m->type, MSS_REGISTRATION_RESP);
	assert_int_equal(m->soap, soap11 ? MSS_SOAP_11 : MSS_SOAP_12);
	struct mss_registration_resp *rs = m->u.reg_resp;
	/* the overall status is the first failure's: the unknown operation */
	assert_string_equal(rs->status->code->value, "101");
	/* the caller's AP_PWD is never echoed */
	assert_null(strstr(r.body, "secret"));
	struct mss_mreg_output *ro = rs->status->detail->registration_output;
	assert_non_null(ro);
	assert_string_equal(ro->input_id, "_1");
	assert_int_equal(ro->response->n, 3);
	struct mss_mreg_response *c0 = ro->response->items[0], *c1 = ro->response->items[1],
				 *c2 = ro->response->items[2];
	assert_string_equal(c0->output->name, "mids:CreateMobileUser");
	assert_string_equal(c0->output->status->code, "100");
	assert_string_equal(c1->output->name, "GetMobileUser");
	assert_string_equal(c1->output->status->code, "100");
	assert_string_equal(out_param(c1->output, "msisdn"), msisdn);
	assert_string_equal(out_param(c1->output, "givenName"), "Matti");
	assert_string_equal(out_param(c1->output, "surName"), "Virtanen");
	assert_string_equal(out_param(c1->output, "Country"), "FI");
	assert_string_equal(out_param(c1->output, "Language"), "fi");
	assert_string_equal(c2->output->status->code, "101");
	mss_msg_free(m);
	resp_free(&r);
	/* reg audited the creation as the RA */
	assert_true(audit_has("\"user.create\"", msisdn));
	/* the JSON API sees the user */
	char path[128];
	snprintf(path, sizeof path, "/api/v1/users/%%2B%s", msisdn + 1);
	req("auditor", "GET", path, NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Matti"));
	resp_free(&r);
}

static void
test_mreg_soap11(void **state)
{
	(void)state;
	mreg_roundtrip(true);
}

static void
test_mreg_soap12(void **state)
{
	(void)state;
	mreg_roundtrip(false);
}

static void
test_mreg_refusals(void **state)
{
	(void)state;
	struct resp r;
	char body[8192];
	snprintf(body, sizeof body, mreg_fmt, "http://www.w3.org/2003/05/soap-envelope",
		 "+35840777888", "+35840777888");
	/* an auditor may read through the JSON API, not use MReg */
	req("auditor", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: application/soap+xml", NULL}, body, strlen(body),
	    &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "_104"));
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/%2B35840777888", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	/* not XML: a SOAP fault in the version the media type suggests */
	req("ra", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: text/xml", NULL}, "not xml", 7, &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "Fault"));
	assert_non_null(strstr(r.body, "http://schemas.xmlsoap.org/soap/envelope/"));
	resp_free(&r);
	/* JSON on the SOAP port */
	req("ra", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: application/json", NULL}, "{}", 2, &r);
	assert_error(&r, 415, 101);
	resp_free(&r);
	/* another message than MSS_RegistrationReq */
	const char *st =
		"<soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\">"
		"<soapenv:Body><MSS_StatusQuery><mss:MSS_StatusReq "
		"xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" MajorVersion=\"1\" "
		"MinorVersion=\"1\" MSSP_TransID=\"T1\"><mss:AP_Info AP_ID=\"http://demo.ap/\" "
		"AP_PWD=\"x\" AP_TransID=\"A2\" Instant=\"2024-05-14T12:02:00.000Z\"/>"
		"<mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info></mss:MSS_StatusReq>"
		"</MSS_StatusQuery></soapenv:Body></soapenv:Envelope>";
	req("ra", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: application/soap+xml", NULL}, st, strlen(st),
	    &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "_101"));
	resp_free(&r);
}

/* ---- CSRF on reads, Fetch Metadata (review finding 6) --------------------- */

static size_t
audit_lines(void)
{
	char p[600];
	snprintf(p, sizeof p, "%s/audit/node1.log", T.dir);
	FILE *f = fopen(p, "r");
	size_t n = 0;
	int c;
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void
test_csrf_on_reads(void **state)
{
	(void)state;
	struct resp r;
	char h[160];
	/* a page elsewhere can make the browser GET with our certificate
	 * (<img src>), without Origin and without the token */
	static const char *const reads[] = {"/api/v1/users", "/api/v1/stats", "/api/v1/audit/verify",
					    "/api/v1/aps", "/api/v1/users/%2B35840555666"};
	for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
		size_t before = audit_lines();
		raw_req("admin", "GET", reads[i], NULL, NULL, 0, &r);
		assert_error(&r, 403, 104);
		resp_free(&r);
		raw_req("admin", "HEAD", reads[i], NULL, NULL, 0, &r);
		assert_int_equal(r.status, 403);
		resp_free(&r);
		/* refused before reg: no work, nothing audited in the
		 * account's name */
		assert_int_equal(audit_lines(), before);
	}
	/* a wrong token, another account's token */
	snprintf(h, sizeof h, "X-MSSP-CSRF: %064d", 0);
	raw_req("admin", "GET", "/api/v1/users", (const char *const[]){h, NULL}, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	char tok[80];
	csrf_of("auditor", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	raw_req("admin", "GET", "/api/v1/users", (const char *const[]){h, NULL}, NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	/* with the account's own token: served */
	csrf_of("admin", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	raw_req("admin", "GET", "/api/v1/users", (const char *const[]){h, NULL}, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* the two that need none: the session (it gives the token) and the
	 * API description */
	raw_req("admin", "GET", "/api/v1/session", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	raw_req("auditor", "GET", "/api/v1/openapi.json", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static void
test_cross_site(void **state)
{
	(void)state;
	struct resp r;
	static const char *const paths[] = {"/", "/static/app.js", "/api/v1/session",
					    "/api/v1/openapi.json", "/api/v1/users"};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		req("admin", "GET", paths[i], (const char *const[]){"Sec-Fetch-Site: cross-site", NULL},
		    NULL, 0, &r);
		assert_error(&r, 403, 104);
		resp_free(&r);
	}
	/* even a mutating request with a good token */
	jreq("admin", "POST", "/api/v1/users", "{\"msisdn\":\"+35840999001\"}", &r);
	resp_free(&r); /* (created: the control) */
	char tok[80], h[128];
	csrf_of("admin", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	req("admin", "POST", "/api/v1/users/%2B35840999001/suspend",
	    (const char *const[]){h, "Content-Type: application/json", "Sec-Fetch-Site: CROSS-SITE",
				  NULL},
	    NULL, 0, &r);
	assert_error(&r, 403, 104);
	resp_free(&r);
	req("admin", "GET", "/api/v1/users/%2B35840999001", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "suspended"));
	resp_free(&r);
	/* what a browser sends for our own pages and a typed address */
	req("admin", "GET", "/api/v1/users", (const char *const[]){"Sec-Fetch-Site: same-origin", NULL},
	    NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	req("admin", "GET", "/", (const char *const[]){"Sec-Fetch-Site: none", NULL}, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* ---- admission and cancellation (review finding 5) ------------------------ */

/* Jobs of the test on the ME's pool: each holds a thread until released
 * (the stand-in for signing work). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	bool release;
	int64_t probe_ran_ms; /* a probe job's start (monotonic), 0: not yet */
} H = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, 0};

static void
holder_job(void *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	pthread_mutex_lock(&H.mu);
	H.running++;
	pthread_cond_broadcast(&H.cv);
	while (!H.release)
		pthread_cond_wait(&H.cv, &H.mu);
	H.running--;
	pthread_cond_broadcast(&H.cv);
	pthread_mutex_unlock(&H.mu);
}

static void
probe_job(void *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	pthread_mutex_lock(&H.mu);
	H.probe_ran_ms = clock_mono_ms();
	pthread_cond_broadcast(&H.cv);
	pthread_mutex_unlock(&H.mu);
}

/* Hold every pool thread (2). */
static void
hold_pool(void)
{
	pthread_mutex_lock(&H.mu);
	H.release = false;
	pthread_mutex_unlock(&H.mu);
	assert_int_equal(pool_submit(T.pool, holder_job, NULL), 0);
	assert_int_equal(pool_submit(T.pool, holder_job, NULL), 0);
	pthread_mutex_lock(&H.mu);
	while (H.running < 2)
		pthread_cond_wait(&H.cv, &H.mu);
	pthread_mutex_unlock(&H.mu);
}

static void
release_pool(void)
{
	pthread_mutex_lock(&H.mu);
	H.release = true;
	pthread_cond_broadcast(&H.cv);
	while (H.running > 0)
		pthread_cond_wait(&H.cv, &H.mu);
	pthread_mutex_unlock(&H.mu);
	/* whatever queued behind the holders has run (or been skipped) once
	 * a probe queued after it runs */
	pthread_mutex_lock(&H.mu);
	H.probe_ran_ms = 0;
	pthread_mutex_unlock(&H.mu);
	assert_int_equal(pool_submit(T.pool, probe_job, NULL), 0);
	pthread_mutex_lock(&H.mu);
	while (H.probe_ran_ms == 0)
		pthread_cond_wait(&H.cv, &H.mu);
	pthread_mutex_unlock(&H.mu);
	usleep(200 * 1000); /* the other thread's last job, too */
}

/* The audit log's flock, held by the test: an ME job that writes an
 * audit record (every reg_call) waits inside reg_call. */
static int
hold_audit(void)
{
	char p[600];
	snprintf(p, sizeof p, "%s/audit/node1.log", T.dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	return fd;
}

static void
release_audit(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

static bool
user_exists(const char *path)
{
	struct resp r;
	req("admin", "GET", path, NULL, NULL, 0, &r);
	bool yes = r.status == 200;
	assert_true(r.status == 200 || r.status == 404);
	resp_free(&r);
	return yes;
}

static void
test_cancelled_not_run(void **state)
{
	(void)state;
	struct resp r;
	char tok[80], h[128], v[64];
	csrf_of("ra", tok); /* before the pool is held */
	csrf_of("admin", tok);
	csrf_of("ra", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	const char *const hdrs[] = {h, "Content-Type: application/json", NULL};

	/* 1. the park deadline passes while the job waits for a thread */
	hold_pool();
	const char *b1 = "{\"msisdn\":\"+35840888001\"}";
	int64_t t0 = clock_mono_ms();
	raw_req("ra", "POST", "/api/v1/users", hdrs, b1, strlen(b1), &r);
	int64_t took = clock_mono_ms() - t0;
	assert_error(&r, 503, 900);
	assert_true(resp_header(&r, "Retry-After", v, sizeof v));
	assert_non_null(strstr(r.body, "not started"));
	assert_true(took >= PARK_MS - 100 && took < PARK_MS + 3000);
	resp_free(&r);
	release_pool();
	/* the job ran after the answer: it must not have created the user */
	assert_false(user_exists("/api/v1/users/%2B35840888001"));
	assert_false(audit_has("\"user.create\"", "+35840888001"));

	/* 2. the client gives up (the connection closes) while the job waits */
	hold_pool();
	const char *b2 = "{\"msisdn\":\"+35840888002\"}";
	CURLcode rc = req_ex("ra", "POST", "/api/v1/users", hdrs, b2, strlen(b2), 500L, &r);
	assert_int_equal(rc, CURLE_OPERATION_TIMEDOUT);
	resp_free(&r);
	usleep(500 * 1000); /* the server sees the close */
	release_pool();
	assert_false(user_exists("/api/v1/users/%2B35840888002"));
	assert_false(audit_has("\"user.create\"", "+35840888002"));

	/* 3. the control: with a free pool the same request is done */
	const char *b3 = "{\"msisdn\":\"+35840888003\"}";
	raw_req("ra", "POST", "/api/v1/users", hdrs, b3, strlen(b3), &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_true(user_exists("/api/v1/users/%2B35840888003"));
}

static void
test_timeout_started_504(void **state)
{
	(void)state;
	struct resp r;
	char tok[80], h[128], v[64];
	csrf_of("ra", tok);
	csrf_of("admin", tok);
	csrf_of("ra", tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	const char *const hdrs[] = {h, "Content-Type: application/json", NULL};
	/* the job runs and waits inside reg_call (for the audit lock) past
	 * the deadline: it may yet do what was asked - 504, not 503 */
	int fd = hold_audit();
	const char *b = "{\"msisdn\":\"+35840888010\"}";
	raw_req("ra", "POST", "/api/v1/users", hdrs, b, strlen(b), &r);
	release_audit(fd);
	assert_error(&r, 504, 900);
	assert_non_null(strstr(r.body, "outcome unknown"));
	assert_false(resp_header(&r, "Retry-After", v, sizeof v));
	resp_free(&r);
	release_pool(); /* (nothing held: waits for the job's end) */
}

struct bg {
	const char *who, *method, *path;
	long status;
	bool busy; /* bg_revoke: refused by the heavy cap */
};

static void *
bg_run(void *arg)
{
	struct bg *b = arg;
	struct resp r;
	req(b->who, b->method, b->path, NULL, NULL, 0, &r);
	b->status = r.status;
	resp_free(&r);
	return NULL;
}

static void *
bg_post(void *arg)
{
	struct bg *b = arg;
	struct resp r;
	char tok[80], h[128];
	csrf_of(b->who, tok);
	snprintf(h, sizeof h, "X-MSSP-CSRF: %s", tok);
	req(b->who, "POST", "/api/v1/users", (const char *const[]){h, "Content-Type: application/json", NULL},
	    b->path, strlen(b->path), &r);
	b->status = r.status;
	resp_free(&r);
	return NULL;
}

/* POST a revocation of serial `b->path` (as a key-compromise report). */
static void *
bg_revoke(void *arg)
{
	struct bg *b = arg;
	struct resp r;
	char path[128];
	static const char body[] = "{\"reason\":\"keyCompromise\"}";
	snprintf(path, sizeof path, "/api/v1/certificates/%s/revoke", b->path);
	req(b->who, "POST", path, (const char *const[]){"Content-Type: application/json", NULL},
	    body, strlen(body), &r);
	b->status = r.status;
	json_t *j = r.status >= 400 ? resp_json(&r) : NULL;
	const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	b->busy = msg != NULL && strstr(msg, "busy") != NULL;
	json_decref(j);
	resp_free(&r);
	return NULL;
}

static void
test_heavy_cap(void **state)
{
	(void)state;
	struct resp r;
	char tok[80], v[64];
	csrf_of("admin", tok);
	csrf_of("auditor", tok);
	/* one long operation under way (an audit verify waiting for the
	 * log), mc_max_heavy 1: another long one is refused at once */
	int fd = hold_audit();
	struct bg b = {"auditor", "GET", "/api/v1/audit/verify", 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_run, &b), 0);
	usleep(700 * 1000);
	int64_t t0 = clock_mono_ms();
	static const char *const heavy[] = {"/api/v1/stats", "/api/v1/audit/verify",
					    "/api/v1/users?q=Maija", "/api/v1/users?limit=100",
					    "/api/v1/audit?limit=500"};
	for (size_t i = 0; i < sizeof heavy / sizeof heavy[0]; i++) {
		req("admin", "GET", heavy[i], NULL, NULL, 0, &r);
		if (r.status != 503)
			fail_msg("%s: %ld, want 503", heavy[i], r.status);
		assert_error(&r, 503, 900);
		assert_true(resp_header(&r, "Retry-After", v, sizeof v));
		assert_string_equal(v, "1");
		resp_free(&r);
	}
	/* an MReg request (up to 16 inputs, 64 operations) is long too */
	req("ra", "POST", "/soap/services/MSS_RegistrationPort",
	    (const char *const[]){"Content-Type: text/xml", NULL}, "<x/>", 4, &r);
	assert_error(&r, 503, 900);
	assert_true(resp_header(&r, "Retry-After", v, sizeof v));
	resp_free(&r);
	assert_true(clock_mono_ms() - t0 < 2000); /* refused, not queued */
	/* an ordinary read still goes through (one page, MSISDN prefix) */
	req("admin", "GET", "/api/v1/users?q=%2B358&limit=10", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* a revocation is not a long operation: it runs (and waits for the
	 * audit like any call), never refused by the cap */
	struct bg rv = {"ra", "POST", "0A1B2C", 0, false};
	pthread_t th2;
	assert_int_equal(pthread_create(&th2, NULL, bg_revoke, &rv), 0);
	usleep(500 * 1000);
	release_audit(fd);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	assert_int_equal(b.status, 200);
	assert_false(rv.busy);
	assert_true(rv.status >= 400); /* no CA in this process: refused by reg */
	/* the slot is back */
	req("admin", "GET", "/api/v1/audit/verify", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static void
test_running_cap(void **state)
{
	(void)state;
	/* a second ME on the same pool (2 threads) with mc_max_running 1:
	 * however many requests it has, one pool thread stays free */
	struct me *m2;
	struct srv *s2;
	uint16_t port2;
	char origin2[64];
	struct me_conf mc = {.mc_reg = T.reg, .mc_pool = T.pool, .mc_max_running = 1,
			     .mc_park_ms = PARK_MS * 2};
	me_listen(&mc, &m2, &s2, &port2, origin2, sizeof origin2);
	T.cur_port = port2;
	char tok[80];
	csrf_of("ra", tok);
	csrf_of("admin", tok);

	int fd = hold_audit();
	struct bg a = {"ra", "POST", "{\"msisdn\":\"+35840888020\"}", 0};
	struct bg b = {"ra", "POST", "{\"msisdn\":\"+35840888021\"}", 0};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, bg_post, &a), 0);
	usleep(400 * 1000); /* a runs (and waits in reg_call) */
	assert_int_equal(pthread_create(&tb, NULL, bg_post, &b), 0);
	usleep(400 * 1000); /* b waits in the ME's queue, not on the pool */
	pthread_mutex_lock(&H.mu);
	H.probe_ran_ms = 0;
	pthread_mutex_unlock(&H.mu);
	int64_t t0 = clock_mono_ms();
	assert_int_equal(pool_submit(T.pool, probe_job, NULL), 0);
	pthread_mutex_lock(&H.mu);
	while (H.probe_ran_ms == 0 && clock_mono_ms() - t0 < 1500) {
		pthread_mutex_unlock(&H.mu);
		usleep(10 * 1000);
		pthread_mutex_lock(&H.mu);
	}
	int64_t ran = H.probe_ran_ms;
	pthread_mutex_unlock(&H.mu);
	release_audit(fd);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	/* the "signing" job was not kept waiting behind the ME */
	if (ran == 0)
		fail_msg("a pool job waited behind the ME's requests");
	assert_true(ran - t0 < 1500);
	/* both ME requests were done, one after the other */
	assert_int_equal(a.status, 201);
	assert_int_equal(b.status, 201);
	assert_true(user_exists("/api/v1/users/%2B35840888021"));
	T.cur_port = 0;
	srv_stop(s2);
	me_free(m2); /* waits for its jobs' last steps on the pool */
	srv_free(s2);
}

static void
test_job_thread_audited(void **state)
{
	(void)state;
	/* group setup started it: me.start is in the log */
	assert_true(audit_has("\"me.start\"", "\"system\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_admin),
		cmocka_unit_test(test_unknown_certificate),
		cmocka_unit_test(test_ap_certificate),
		cmocka_unit_test(test_role_refusal),
		cmocka_unit_test(test_csrf),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_media_type_and_size),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_user_roundtrip),
		cmocka_unit_test(test_mreg_soap11),
		cmocka_unit_test(test_mreg_soap12),
		cmocka_unit_test(test_mreg_refusals),
		cmocka_unit_test(test_job_thread_audited),
		cmocka_unit_test(test_csrf_on_reads),
		cmocka_unit_test(test_cross_site),
		cmocka_unit_test(test_cancelled_not_run),
		cmocka_unit_test(test_timeout_started_504),
		cmocka_unit_test(test_heavy_cap),
		cmocka_unit_test(test_running_cap),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
