/*
 * rest.c - the AE's REST gateway (see rest.h, docs/internals/rest.md).
 */
#include "roles/rest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util/arena.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"

/* ---- paths ------------------------------------------------------------- */

enum rest_path
rest_path_of(const char *path)
{
	static const struct {
		const char *p;
		enum rest_path v;
	} paths[] = {
		{"/rest/service", REST_PATH_ANY},
		{"/rest/service/sign", REST_PATH_SIGN},
		{"/rest/service/status", REST_PATH_STATUS},
		{"/rest/service/receipt", REST_PATH_RECEIPT},
		{"/rest/service/profile", REST_PATH_PROFILE},
		{"/rest/openapi.json", REST_PATH_OPENAPI},
	};
	if (!path || strncmp(path, "/rest/", 6) != 0)
		return REST_PATH_NONE;
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (strcmp(path, paths[i].p) == 0)
			return paths[i].v;
	return REST_PATH_UNKNOWN;
}

int
rest_path_check(enum rest_path p, enum mss_msg_type type, struct mss_err *e)
{
	enum mss_msg_type want;
	switch (p) {
	case REST_PATH_ANY: return 0;
	case REST_PATH_SIGN: want = MSS_SIGNATURE_REQ; break;
	case REST_PATH_STATUS: want = MSS_STATUS_REQ; break;
	case REST_PATH_RECEIPT: want = MSS_RECEIPT_REQ; break;
	case REST_PATH_PROFILE: want = MSS_PROFILE_REQ; break;
	default: return mss_err_set(e, MSS_WRONG_PARAM, 0, "Unsupported operation");
	}
	if (type != want)
		return mss_err_set(e, MSS_WRONG_PARAM, 0, "Operation does not match the path");
	return 0;
}

/* ---- defaults of a minimal request ------------------------------------ */

static void
iso_now(char out[80])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

int
rest_fill_defaults(struct mss_msg *msg, const char *ap_id, const char *mssp_id,
		   struct mss_err *e)
{
	struct mss_arena *ar = msg->arena;
	if (msg->type == MSS_FAULT)
		return 0;
	struct mss_common *c = msg->u.common;
	/* both absent: 1.1; one of them alone stays an incomplete version */
	if (!c->major_version && !c->minor_version) {
		c->major_version = mss_arena_strdup(ar, "1");
		c->minor_version = mss_arena_strdup(ar, "1");
		if (!c->major_version || !c->minor_version)
			goto oom;
	}
	if (!c->ap_info && !(c->ap_info = mss_msg_alloc(msg, sizeof *c->ap_info)))
		goto oom;
	/* the AP is the authenticated caller; a different AP_ID that is
	 * present is refused by the AE (104), never replaced */
	if (!c->ap_info->ap_id && ap_id && !(c->ap_info->ap_id = mss_arena_strdup(ar, ap_id)))
		goto oom;
	if (!c->ap_info->instant) {
		char now[80];
		iso_now(now);
		if (!(c->ap_info->instant = mss_arena_strdup(ar, now)))
			goto oom;
	}
	if (!c->mssp_info && !(c->mssp_info = mss_msg_alloc(msg, sizeof *c->mssp_info)))
		goto oom;
	if (!c->mssp_info->mssp_id) {
		if (!(c->mssp_info->mssp_id = mss_msg_alloc(msg, sizeof *c->mssp_info->mssp_id)))
			goto oom;
	}
	if (!c->mssp_info->mssp_id->uri && !c->mssp_info->mssp_id->dns_name &&
	    !c->mssp_info->mssp_id->ip_address && !c->mssp_info->mssp_id->identifier_string &&
	    mssp_id && !(c->mssp_info->mssp_id->uri = mss_arena_strdup(ar, mssp_id)))
		goto oom;
	if (msg->type == MSS_SIGNATURE_REQ) {
		struct mss_signature_req *r = msg->u.sig_req;
		if (!r->messaging_mode && !(r->messaging_mode = mss_arena_strdup(ar, "synch")))
			goto oom;
		if (r->dtbs && !r->dtbs->mime_type &&
		    !(r->dtbs->mime_type = mss_arena_strdup(ar, "text/plain")))
			goto oom;
	}
	return 0;
oom:
	return mss_err_set(e, MSS_INTERNAL_ERROR, 0, "Out of memory");
}

/* ---- state ------------------------------------------------------------- */

/* A key: a kind letter, the client's address (an IPv6 /64), '|' and a
 * user name or AP_ID. */
#define REST_ADDR_MAX 64
#define REST_KEY_MAX (4 + REST_ADDR_MAX + MSSP_STORE_MAX_AP_ID + 1)

struct fail {
	char f_key[REST_KEY_MAX];
	unsigned f_count;		/* failures in the window               */
	unsigned f_pending;		/* attempts being verified now          */
	int64_t f_start_ms;
	bool f_pinned;			/* an existing AP's total: never evicted */
	struct fail *f_next;		/* hash chain                           */
	struct fail *f_newer, *f_older; /* LRU list                             */
};

/* A bounded table of counters over fixed windows.  When it is full, the
 * counters whose window is over go first, then the least recently used
 * one that is not pinned: a new key always gets a counter (a full table
 * must not let guesses through uncounted); only a table of pinned
 * counters fails closed. */
struct ftab {
	struct fail *t_b[MSSP_REST_FAIL_BUCKETS];
	struct fail *t_newest, *t_oldest;
	size_t t_n;
};

struct rest {
	char *r_openapi;
	size_t r_openapi_len;
	pthread_mutex_t r_lock;		/* both tables                      */
	struct ftab r_fail;		/* failed credentials               */
	struct ftab r_log;		/* refusals logged (rest_log_refusal) */
};

static void ftab_clear(struct ftab *t);

struct rest *
rest_new(const char *openapi_file)
{
	struct rest *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	pthread_mutex_init(&r->r_lock, NULL);
	FILE *f = openapi_file ? fopen(openapi_file, "rb") : NULL;
	if (f) {
		char *buf = malloc(MSSP_SRV_MAX_RESPONSE + 1);
		size_t n = buf ? fread(buf, 1, MSSP_SRV_MAX_RESPONSE + 1, f) : 0;
		if (buf && n > 0 && n <= MSSP_SRV_MAX_RESPONSE) {
			buf[n] = 0;
			r->r_openapi = buf;
			r->r_openapi_len = n;
		} else {
			free(buf);
		}
		fclose(f);
	}
	if (openapi_file && !r->r_openapi) /* GET /rest/openapi.json: 404 */
		LOG_EV("rest.openapi_missing", "file", openapi_file);
	return r;
}

void
rest_free(struct rest *r)
{
	if (!r)
		return;
	ftab_clear(&r->r_fail);
	ftab_clear(&r->r_log);
	pthread_mutex_destroy(&r->r_lock);
	free(r->r_openapi);
	free(r);
}

const char *
rest_openapi(const struct rest *r, size_t *len)
{
	*len = r ? r->r_openapi_len : 0;
	return r ? r->r_openapi : NULL;
}

/* ---- counter tables (brute-force throttle, log limiter) ------------------ */

static size_t
bucket_of(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % MSSP_REST_FAIL_BUCKETS);
}

static void
lru_unlink(struct ftab *t, struct fail *f)
{
	if (f->f_newer)
		f->f_newer->f_older = f->f_older;
	else
		t->t_newest = f->f_older;
	if (f->f_older)
		f->f_older->f_newer = f->f_newer;
	else
		t->t_oldest = f->f_newer;
	f->f_newer = f->f_older = NULL;
}

static void
lru_front(struct ftab *t, struct fail *f)
{
	f->f_older = t->t_newest;
	f->f_newer = NULL;
	if (t->t_newest)
		t->t_newest->f_newer = f;
	t->t_newest = f;
	if (!t->t_oldest)
		t->t_oldest = f;
}

static void
ftab_drop(struct ftab *t, struct fail *f)
{
	struct fail **pp = &t->t_b[bucket_of(f->f_key)];
	while (*pp && *pp != f)
		pp = &(*pp)->f_next;
	if (*pp)
		*pp = f->f_next;
	lru_unlink(t, f);
	free(f);
	t->t_n--;
}

static void
ftab_clear(struct ftab *t)
{
	while (t->t_oldest)
		ftab_drop(t, t->t_oldest);
}

/* Drop the counters whose window is over and that have no attempt in
 * flight (lock held). */
static void
ftab_sweep(struct ftab *t, int64_t now_ms)
{
	for (struct fail *f = t->t_oldest, *n; f; f = n) {
		n = f->f_newer;
		if (now_ms - f->f_start_ms >= MSSP_REST_FAIL_WINDOW_MS && !f->f_pending)
			ftab_drop(t, f);
	}
}

/* The counter of key (lock held), found or created, made the most recent;
 * a window that is over starts again.  `keep` (n of them) are not evicted
 * (the other counters of the same request).  NULL: memory, or a table
 * full of pinned counters. */
static struct fail *
ftab_get(struct ftab *t, const char *key, bool pinned, int64_t now_ms,
	 struct fail *const *keep, size_t nkeep)
{
	struct fail *f;
	for (f = t->t_b[bucket_of(key)]; f; f = f->f_next)
		if (strcmp(f->f_key, key) == 0)
			break;
	if (f) {
		if (now_ms - f->f_start_ms >= MSSP_REST_FAIL_WINDOW_MS) {
			f->f_count = 0;
			f->f_start_ms = now_ms;
		}
		f->f_pinned |= pinned;
		lru_unlink(t, f);
		lru_front(t, f);
		return f;
	}
	if (t->t_n >= MSSP_REST_FAIL_MAX_ENTRIES)
		ftab_sweep(t, now_ms);
	for (struct fail *v = t->t_oldest; v && t->t_n >= MSSP_REST_FAIL_MAX_ENTRIES;) {
		struct fail *n = v->f_newer;
		bool kept = v->f_pinned || v->f_pending;
		for (size_t i = 0; i < nkeep && !kept; i++)
			kept = keep[i] == v;
		if (!kept)
			ftab_drop(t, v);
		v = n;
	}
	if (t->t_n >= MSSP_REST_FAIL_MAX_ENTRIES || !(f = calloc(1, sizeof *f)))
		return NULL;
	snprintf(f->f_key, sizeof f->f_key, "%s", key);
	f->f_start_ms = now_ms;
	f->f_pinned = pinned;
	size_t b = bucket_of(f->f_key);
	f->f_next = t->t_b[b];
	t->t_b[b] = f;
	lru_front(t, f);
	t->t_n++;
	return f;
}

/* Seconds until f's window is over, at least 1. */
static unsigned
window_left_s(const struct fail *f, int64_t now_ms)
{
	int64_t left = f->f_start_ms + MSSP_REST_FAIL_WINDOW_MS - now_ms;
	return left <= 1000 ? 1 : (unsigned)((left + 999) / 1000);
}

/* What one attempt is counted against. */
#define REST_MAX_KEYS 3
struct reservation {
	size_t rv_n;
	char rv_key[REST_MAX_KEYS][REST_KEY_MAX];
	unsigned rv_limit[REST_MAX_KEYS];
	bool rv_pinned[REST_MAX_KEYS];
	bool rv_held;			/* reserve succeeded: settle it */
};

/* The key kind ":" a "|" b (b may be ""), cut at REST_KEY_MAX: longer
 * names cannot exist (rest_user and AP_ID <= MSSP_STORE_MAX_AP_ID). */
static void
rv_add(struct reservation *rv, unsigned limit, bool pinned, const char *kind, const char *a,
       const char *b)
{
	size_t i = rv->rv_n++;
	snprintf(rv->rv_key[i], sizeof rv->rv_key[i], "%s:%s|%s", kind, a, b);
	rv->rv_limit[i] = limit;
	rv->rv_pinned[i] = pinned;
}

/* Check and reserve in one locked step, before the credentials are
 * verified, so that parallel attempts cannot all pass one check: an
 * attempt in flight counts against the limit as a failure would.  Not
 * while a key has no failure at all, though: valid requests in parallel
 * (an AP's ordinary load, up to a worker per request) must never be
 * refused, and what an attacker gains is one burst of at most
 * MSSP_SRV_MAX_WORKERS verifications at the start of a window.  false
 * (with *retry_s) when a counter is at its limit or none can be made
 * (fail closed); nothing is then reserved. */
static bool
reserve(struct rest *r, struct reservation *rv, int64_t now_ms, unsigned *retry_s)
{
	struct fail *f[REST_MAX_KEYS] = {0};
	bool ok = true;
	*retry_s = 0;
	pthread_mutex_lock(&r->r_lock);
	for (size_t i = 0; i < rv->rv_n; i++) {
		f[i] = ftab_get(&r->r_fail, rv->rv_key[i], rv->rv_pinned[i], now_ms, f, i);
		if (!f[i]) {
			ok = false;
			if (*retry_s < MSSP_REST_FAIL_WINDOW_MS / 1000)
				*retry_s = MSSP_REST_FAIL_WINDOW_MS / 1000;
		} else if (f[i]->f_count >= rv->rv_limit[i] ||
			   (f[i]->f_count > 0 &&
			    f[i]->f_count + f[i]->f_pending >= rv->rv_limit[i])) {
			unsigned left = window_left_s(f[i], now_ms);
			ok = false;
			if (*retry_s < left)
				*retry_s = left;
		}
	}
	for (size_t i = 0; ok && i < rv->rv_n; i++)
		f[i]->f_pending++;
	rv->rv_held = ok;
	pthread_mutex_unlock(&r->r_lock);
	return ok;
}

/* The verification's outcome: a failure is counted (in the window current
 * now), a success is not; either way the attempt is no longer in flight.
 * (A counter with an attempt in flight is never evicted.) */
static void
settle(struct rest *r, struct reservation *rv, bool failed, int64_t now_ms)
{
	if (!rv->rv_held)
		return;
	rv->rv_held = false;
	pthread_mutex_lock(&r->r_lock);
	for (size_t i = 0; i < rv->rv_n; i++) {
		struct fail *f;
		for (f = r->r_fail.t_b[bucket_of(rv->rv_key[i])]; f; f = f->f_next)
			if (strcmp(f->f_key, rv->rv_key[i]) == 0)
				break;
		if (!f)
			continue;
		if (f->f_pending > 0)
			f->f_pending--;
		if (failed) {
			if (now_ms - f->f_start_ms >= MSSP_REST_FAIL_WINDOW_MS) {
				f->f_count = 0;
				f->f_start_ms = now_ms;
			}
			f->f_count++;
		}
	}
	pthread_mutex_unlock(&r->r_lock);
}

/* The address a client is counted under: an IPv4 address (also when
 * IPv4-mapped), or the /64 of an IPv6 address (one host commonly owns a
 * whole /64, so a per-address count on the full address is no count). */
static void
addr_key(const char *ip, char out[REST_ADDR_MAX])
{
	struct in_addr a4;
	struct in6_addr a6;
	char s[INET6_ADDRSTRLEN];
	if (ip && inet_pton(AF_INET, ip, &a4) == 1 && inet_ntop(AF_INET, &a4, s, sizeof s)) {
		snprintf(out, REST_ADDR_MAX, "%s", s);
	} else if (ip && inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6) && inet_ntop(AF_INET, &a6.s6_addr[12], s, sizeof s)) {
			snprintf(out, REST_ADDR_MAX, "%s", s);
		} else {
			memset(&a6.s6_addr[8], 0, 8);
			if (!inet_ntop(AF_INET6, &a6, s, sizeof s))
				snprintf(s, sizeof s, "?");
			snprintf(out, REST_ADDR_MAX, "%s/64", s);
		}
	} else {
		snprintf(out, REST_ADDR_MAX, "%.*s", REST_ADDR_MAX - 1, ip ? ip : "?");
	}
}

bool
rest_log_refusal(struct rest *r, const char *peer_ip, int64_t now_ms, unsigned *count)
{
	char a[REST_ADDR_MAX], key[REST_KEY_MAX];
	bool log = true;
	addr_key(peer_ip, a);
	snprintf(key, sizeof key, "l:%s", a);
	*count = 1;
	pthread_mutex_lock(&r->r_lock);
	struct fail *f = ftab_get(&r->r_log, key, false, now_ms, NULL, 0);
	if (f) {
		/* the first of a window, then 10, 100, 1000 ... */
		unsigned c = ++f->f_count, p = 1;
		while (p < c && p <= UINT_MAX / 10)
			p *= 10;
		log = p == c;
		*count = c;
	}
	pthread_mutex_unlock(&r->r_lock);
	return log;
}

/* ---- credentials -------------------------------------------------------- */

int
rest_password_hash(const char *password, char out[REST_PW_HASH_HEX + 1])
{
	uint8_t salt[MSSP_REST_SALT_LEN], h[MSSP_REST_HASH_LEN];
	unsigned hl = 0;
	if (RAND_bytes(salt, sizeof salt) != 1)
		return -1;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(m, salt, sizeof salt) == 1 &&
		 EVP_DigestUpdate(m, password, strlen(password)) == 1 &&
		 EVP_DigestFinal_ex(m, h, &hl) == 1 && hl == sizeof h;
	EVP_MD_CTX_free(m);
	if (!ok)
		return -1;
	hex_encode(salt, sizeof salt, out);
	out[2 * MSSP_REST_SALT_LEN] = ':';
	hex_encode(h, sizeof h, out + 2 * MSSP_REST_SALT_LEN + 1);
	OPENSSL_cleanse(h, sizeof h);
	return 0;
}

static bool
password_ok(const struct conf_ap *ap, const char *pw, size_t pwlen)
{
	static const uint8_t dummy_salt[MSSP_REST_SALT_LEN];
	uint8_t h[MSSP_REST_HASH_LEN];
	unsigned hl = 0;
	/* without an AP the same work is done, so the time does not tell
	 * whether the user name exists */
	const uint8_t *salt = ap ? ap->ca_rest_salt : dummy_salt;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(m, salt, MSSP_REST_SALT_LEN) == 1 &&
		 EVP_DigestUpdate(m, pw, pwlen) == 1 && EVP_DigestFinal_ex(m, h, &hl) == 1 &&
		 hl == sizeof h;
	EVP_MD_CTX_free(m);
	bool same = ok && ap && CRYPTO_memcmp(h, ap->ca_rest_hash, sizeof h) == 0;
	OPENSSL_cleanse(h, sizeof h);
	return same;
}

int
rest_apikey_mac(const char *key, const char *date, const char *method, const char *host,
		const char *path, const uint8_t *body, size_t len, char out[65])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t ml = 0;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
			       OSSL_PARAM_construct_end()};
	const char *parts[] = {date, method, host, path};
	int ok = c && EVP_MAC_init(c, (const unsigned char *)key, strlen(key), params) == 1;
	for (size_t i = 0; ok && i < 4; i++)
		ok = EVP_MAC_update(c, (const unsigned char *)parts[i], strlen(parts[i])) == 1 &&
		     EVP_MAC_update(c, (const unsigned char *)"\n", 1) == 1;
	ok = ok && (len == 0 || EVP_MAC_update(c, body, len) == 1) &&
	     EVP_MAC_update(c, (const unsigned char *)"\n", 1) == 1 &&
	     EVP_MAC_final(c, mac, &ml, sizeof mac) == 1 && ml == 32;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	if (ok)
		hex_encode(mac, 32, out);
	OPENSSL_cleanse(mac, sizeof mac);
	return ok ? 0 : -1;
}

int
rest_parse_http_date(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s)
		return -1;
	/* the day name is optional in RFC 2822 */
	const char *p = strchr(s, ',') ? strchr(s, ',') + 1 : s;
	while (*p == ' ')
		p++;
	const char *end = strptime(p, "%d %b %Y %H:%M:%S", &tm);
	if (!end)
		return -1;
	while (*end == ' ')
		end++;
	long off = 0;
	if (strcmp(end, "GMT") == 0 || strcmp(end, "UTC") == 0 || strcmp(end, "UT") == 0 ||
	    strcmp(end, "Z") == 0) {
		off = 0;
	} else if ((end[0] == '+' || end[0] == '-') && strlen(end) == 5 &&
		   isdigit((unsigned char)end[1]) && isdigit((unsigned char)end[2]) &&
		   isdigit((unsigned char)end[3]) && isdigit((unsigned char)end[4])) {
		off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600 +
		      ((end[3] - '0') * 10 + (end[4] - '0')) * 60;
		if (end[0] == '-')
			off = -off;
	} else {
		return -1;
	}
	*out = (int64_t)timegm(&tm) - off;
	return 0;
}

/* base64 (standard alphabet, padded) -> bytes, NUL-terminated; decoded
 * length or -1.  Binary NULs are refused: credentials are text. */
static int
b64_text(const char *in, size_t inlen, char *out, size_t cap)
{
	if (inlen == 0 || inlen % 4 || inlen / 4 * 3 + 1 > cap)
		return -1;
	int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)inlen);
	if (n < 0)
		return -1;
	if (in[inlen - 1] == '=')
		n--;
	if (inlen > 1 && in[inlen - 2] == '=')
		n--;
	out[n] = 0;
	if (strlen(out) != (size_t)n)
		return -1;
	return n;
}

static bool
is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

enum rest_auth_result
rest_authenticate(struct rest *r, const struct conf_aps *aps, unsigned methods,
		  const struct rest_req *rq, int64_t now_s, unsigned skew_s,
		  const struct conf_ap **ap, unsigned *retry_after_s)
{
	char dec[MSSP_REST_MAX_AUTH_HEADER], idbuf[MSSP_REST_MAX_AUTH_HEADER];
	char addr[REST_ADDR_MAX];
	struct reservation rv = {0};
	enum rest_auth_result res = REST_AUTH_BAD;
	const struct conf_ap *found = NULL;
	const char *a = rq->authorization;
	unsigned retry = 0;
	bool ok = false;

	*ap = NULL;
	if (retry_after_s)
		*retry_after_s = 0;
	if (!(methods & (CONF_REST_BASIC | CONF_REST_APIKEY)) || !a ||
	    strncasecmp(a, "Basic ", 6) != 0)
		return REST_AUTH_NONE;
	a += 6;
	while (*a == ' ')
		a++;
	size_t alen = strlen(a);
	while (alen && a[alen - 1] == ' ')
		alen--;
	addr_key(rq->peer_ip, addr);
	int64_t now_ms = now_s * 1000;
	/* The API-key Date window is ours, not [ae] instant_skew_s (which may
	 * be a day): a captured request replays only within it. */
	if (skew_s > MSSP_REST_DATE_SKEW_S)
		skew_s = MSSP_REST_DATE_SKEW_S;
	/* every failure counts against the client's address */
	rv_add(&rv, MSSP_REST_FAIL_PER_ADDR, false, "a", addr, "");
	int n = alen < sizeof dec ? b64_text(a, alen, dec, sizeof dec) : -1;
	char *colon = n > 0 ? strchr(dec, ':') : NULL;
	if (!colon) {
		if (!reserve(r, &rv, now_ms, &retry))
			res = REST_AUTH_THROTTLED;
		goto out;
	}
	*colon = 0;
	const char *user = dec, *secret = colon + 1;
	size_t slen = strlen(secret);

	/* API key: user = base64(AP_ID), secret = hex HMAC, a Date header */
	int idn = -1;
	if ((methods & CONF_REST_APIKEY) && rq->date && is_hex64(secret))
		idn = b64_text(user, strlen(user), idbuf, sizeof idbuf);
	if (idn > 0) {
		for (size_t i = 0; i < aps->naps && !found; i++)
			if (aps->aps[i].ca_api_key && strcmp(aps->aps[i].ca_id, idbuf) == 0)
				found = &aps->aps[i];
	}
	if (found) {
		/* A >= 32-character key cannot be guessed online: failures are
		 * counted per (AP, address) only, so that nobody can lock an
		 * AP out by forging failures under its (public) AP_ID. */
		rv_add(&rv, MSSP_REST_FAIL_PER_AP_ADDR, false, "k", addr, found->ca_id);
		if (!reserve(r, &rv, now_ms, &retry)) {
			res = REST_AUTH_THROTTLED;
			goto out;
		}
		int64_t d;
		char mac[65];
		/* a stale or future Date: the same 401, no detail (P-xx) */
		if (rest_parse_http_date(rq->date, &d) != 0 ||
		    llabs((long long)(now_s - d)) > (long long)skew_s ||
		    rest_apikey_mac(found->ca_api_key, rq->date, rq->method, rq->host ? rq->host : "",
				    rq->path, rq->body, rq->body_len, mac) != 0)
			goto out;
		for (char *p = (char *)secret; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		ok = CRYPTO_memcmp(mac, secret, 64) == 0;
		OPENSSL_cleanse(mac, sizeof mac);
		goto out;
	}
	/* HTTP Basic: rest_user (default: the AP_ID) and the password */
	for (size_t i = 0; (methods & CONF_REST_BASIC) && i < aps->naps && !found; i++) {
		const struct conf_ap *c = &aps->aps[i];
		const char *u = c->ca_rest_user ? c->ca_rest_user : c->ca_id;
		if (c->ca_has_rest_pw && strcmp(u, user) == 0)
			found = c;
	}
	/* Per (user name, address) with the small limit, and per user name
	 * with a much larger one (guessing from many addresses).  The user
	 * name, not the AP: an unknown name is counted exactly alike (the
	 * answers do not tell which names exist); an existing AP's total is
	 * pinned so that a flood of other keys cannot evict it. */
	rv_add(&rv, MSSP_REST_FAIL_PER_AP_ADDR, false, "u", addr, user);
	rv_add(&rv, MSSP_REST_FAIL_PER_USER, found != NULL, "U", "", user);
	if (!reserve(r, &rv, now_ms, &retry)) {
		res = REST_AUTH_THROTTLED;
		goto out;
	}
	ok = (methods & CONF_REST_BASIC) && slen <= MSSP_REST_MAX_SECRET &&
	     password_ok(found, secret, slen);
out:
	settle(r, &rv, !ok, now_ms);
	if (ok) {
		*ap = found;
		res = REST_AUTH_OK;
	} else if (res == REST_AUTH_THROTTLED && retry_after_s) {
		*retry_after_s = retry;
	}
	OPENSSL_cleanse(dec, sizeof dec);
	OPENSSL_cleanse(idbuf, sizeof idbuf);
	return res;
}
