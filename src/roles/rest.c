/*
 * rest.c - the AE's REST gateway (see rest.h, docs/internals/rest.md).
 */
#include "roles/rest.h"

#include <ctype.h>
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

struct fail {
	char f_key[MSSP_STORE_MAX_AP_ID + 8];
	unsigned f_count;
	int64_t f_start_ms;
	struct fail *f_next;
};

struct rest {
	char *r_openapi;
	size_t r_openapi_len;
	pthread_mutex_t r_lock;
	struct fail *r_fail[MSSP_REST_FAIL_BUCKETS];
	size_t r_nfail;
};

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
	return r;
}

void
rest_free(struct rest *r)
{
	if (!r)
		return;
	for (size_t b = 0; b < MSSP_REST_FAIL_BUCKETS; b++) {
		struct fail *f = r->r_fail[b];
		while (f) {
			struct fail *n = f->f_next;
			free(f);
			f = n;
		}
	}
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

/* ---- failure counters (brute-force throttle) ---------------------------- */

static size_t
bucket_of(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % MSSP_REST_FAIL_BUCKETS);
}

/* Drop the counters whose window is over (lock held). */
static void
fail_sweep(struct rest *r, int64_t now_ms)
{
	for (size_t b = 0; b < MSSP_REST_FAIL_BUCKETS; b++) {
		struct fail **pp = &r->r_fail[b];
		while (*pp) {
			struct fail *f = *pp;
			if (now_ms - f->f_start_ms >= MSSP_REST_FAIL_WINDOW_MS) {
				*pp = f->f_next;
				free(f);
				r->r_nfail--;
			} else {
				pp = &f->f_next;
			}
		}
	}
}

/* The counter of key (lock held); created when `create`; NULL when absent
 * or when the table is full even after a sweep. */
static struct fail *
fail_get(struct rest *r, const char *key, int64_t now_ms, bool create)
{
	size_t b = bucket_of(key);
	struct fail *f;
	for (f = r->r_fail[b]; f; f = f->f_next)
		if (strcmp(f->f_key, key) == 0)
			break;
	if (f && now_ms - f->f_start_ms >= MSSP_REST_FAIL_WINDOW_MS) {
		f->f_count = 0;
		f->f_start_ms = now_ms;
	}
	if (f || !create)
		return f;
	if (r->r_nfail >= MSSP_REST_FAIL_MAX_ENTRIES) {
		fail_sweep(r, now_ms);
		if (r->r_nfail >= MSSP_REST_FAIL_MAX_ENTRIES)
			return NULL;
	}
	if (!(f = calloc(1, sizeof *f)))
		return NULL;
	snprintf(f->f_key, sizeof f->f_key, "%s", key);
	f->f_start_ms = now_ms;
	f->f_next = r->r_fail[b];
	r->r_fail[b] = f;
	r->r_nfail++;
	return f;
}

static bool
throttled(struct rest *r, const char *apkey, const char *ipkey, int64_t now_ms)
{
	pthread_mutex_lock(&r->r_lock);
	struct fail *a = fail_get(r, apkey, now_ms, false), *i = fail_get(r, ipkey, now_ms, false);
	bool t = (a && a->f_count >= MSSP_REST_FAIL_PER_AP) ||
		 (i && i->f_count >= MSSP_REST_FAIL_PER_ADDR);
	pthread_mutex_unlock(&r->r_lock);
	return t;
}

/* One failed attempt.  A table full of live counters (a flood from many
 * addresses) fails closed: every failure source is throttled until the
 * window passes, which costs the attacker more than the APs. */
static bool
fail_count(struct rest *r, const char *apkey, const char *ipkey, int64_t now_ms)
{
	bool full = false;
	pthread_mutex_lock(&r->r_lock);
	struct fail *a = fail_get(r, apkey, now_ms, true), *i = fail_get(r, ipkey, now_ms, true);
	if (a)
		a->f_count++;
	if (i)
		i->f_count++;
	full = !a || !i;
	pthread_mutex_unlock(&r->r_lock);
	return full;
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
		  const struct conf_ap **ap)
{
	char dec[MSSP_REST_MAX_AUTH_HEADER], idbuf[MSSP_REST_MAX_AUTH_HEADER];
	char apkey[sizeof((struct fail *)0)->f_key], ipkey[sizeof apkey];
	enum rest_auth_result res = REST_AUTH_BAD;
	const struct conf_ap *found = NULL;
	const char *a = rq->authorization;

	*ap = NULL;
	if (!(methods & (CONF_REST_BASIC | CONF_REST_APIKEY)) || !a ||
	    strncasecmp(a, "Basic ", 6) != 0)
		return REST_AUTH_NONE;
	a += 6;
	while (*a == ' ')
		a++;
	size_t alen = strlen(a);
	while (alen && a[alen - 1] == ' ')
		alen--;
	snprintf(ipkey, sizeof ipkey, "ip:%s", rq->peer_ip ? rq->peer_ip : "?");
	int64_t now_ms = now_s * 1000;
	int n = alen < sizeof dec ? b64_text(a, alen, dec, sizeof dec) : -1;
	char *colon = n > 0 ? strchr(dec, ':') : NULL;
	if (!colon) {
		snprintf(apkey, sizeof apkey, "ap:?");
		goto fail;
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
		snprintf(apkey, sizeof apkey, "ap:%s", found->ca_id);
		if (throttled(r, apkey, ipkey, now_ms)) {
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
			goto fail;
		for (char *p = (char *)secret; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		bool same = CRYPTO_memcmp(mac, secret, 64) == 0;
		OPENSSL_cleanse(mac, sizeof mac);
		if (!same)
			goto fail;
		*ap = found;
		res = REST_AUTH_OK;
		goto out;
	}
	if (!(methods & CONF_REST_BASIC))
		goto fail_named;
	/* HTTP Basic: rest_user (default: the AP_ID) and the password */
	for (size_t i = 0; i < aps->naps && !found; i++) {
		const struct conf_ap *c = &aps->aps[i];
		const char *u = c->ca_rest_user ? c->ca_rest_user : c->ca_id;
		if (c->ca_has_rest_pw && strcmp(u, user) == 0)
			found = c;
	}
fail_named:
	snprintf(apkey, sizeof apkey, "ap:%.*s", MSSP_STORE_MAX_AP_ID,
		 found ? found->ca_id : user);
	if (throttled(r, apkey, ipkey, now_ms)) {
		res = REST_AUTH_THROTTLED;
		goto out;
	}
	if (!(methods & CONF_REST_BASIC) || slen > MSSP_REST_MAX_SECRET ||
	    !password_ok(found, secret, slen))
		goto fail;
	*ap = found;
	res = REST_AUTH_OK;
	goto out;
fail:
	if (throttled(r, apkey, ipkey, now_ms)) {
		res = REST_AUTH_THROTTLED;
		goto out;
	}
	if (fail_count(r, apkey, ipkey, now_ms))
		res = REST_AUTH_THROTTLED;
	else
		res = REST_AUTH_BAD;
out:
	OPENSSL_cleanse(dec, sizeof dec);
	OPENSSL_cleanse(idbuf, sizeof idbuf);
	return res;
}
