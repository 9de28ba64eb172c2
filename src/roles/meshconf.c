/*
 * meshconf.c - the mesh's peers and routing table as data (meshconf.h,
 * docs/internals/mesh.md): strict parsing of the "peer" and "route"
 * record bodies, their canonical JSON, loading both kinds from the store
 * into one immutable table, and the lookups the AE does on every roamed
 * request.
 *
 * The same parser guards both ends: the ME refuses a body that does not
 * parse before it stores it, and the AE parses again when it loads, so a
 * record edited behind the ME's back is dropped, never half-trusted.
 * Error messages name the rule and never echo input.
 */
#include "roles/meshconf.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "mss/profile.h"
#include "store/store.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/utf8.h"

#define FP_HEX (2 * MESHCONF_FP_LEN)

static int
fail(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/* ---- text rules ---------------------------------------------------------- */


/* An absolute URI as RFC 3986 starts one: ALPHA *(ALPHA / DIGIT / "+" /
 * "-" / ".") ":" and something after it; visible ASCII throughout. */
static bool
abs_uri(const char *s, size_t max)
{
	size_t i = 0;

	if (!ascii_visible(s, max))
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (i = 1; s[i] && s[i] != ':'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.'))
			return false;
	return s[i] == ':' && s[i + 1] != '\0';
}

/* A JSON string without embedded NUL, or NULL. */
static const char *
jstr(const json_t *v)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* A profile URI as the AP table takes one (mss_profile_parse). */
static bool
profile_uri(const char *u)
{
	struct mss_profile mp;

	return ascii_visible(u, MSSP_PROFILE_MAX_URI) && mss_profile_parse(u, &mp, NULL, 0) == 0;
}

static bool
loopback_host(const char *h, size_t n)
{
	if ((n == 9 && strncasecmp(h, "localhost", 9) == 0) || (n == 5 && memcmp(h, "[::1]", 5) == 0))
		return true;
	/* an IPv4 literal in 127.0.0.0/8, nothing that merely starts so */
	char buf[INET_ADDRSTRLEN];
	struct in_addr in;
	if (n < 4 || n >= sizeof buf || memcmp(h, "127.", 4) != 0)
		return false;
	memcpy(buf, h, n);
	buf[n] = 0;
	return inet_pton(AF_INET, buf, &in) == 1;
}

/* https://HOST[:PORT] (http:// to a loopback host only): no path, query,
 * fragment or credentials.  HOST: letters, digits, '.', '-', or an IPv6
 * literal in brackets; PORT 1..65535. */
static bool
url_ok(const char *u)
{
	const char *h, *p;
	size_t hn;
	bool https;

	if (!ascii_visible(u, MSSP_MESH_MAX_URL))
		return false;
	if (strncmp(u, "https://", 8) == 0) {
		https = true;
		h = u + 8;
	} else if (strncmp(u, "http://", 7) == 0) {
		https = false;
		h = u + 7;
	} else {
		return false;
	}
	if (*h == '[') {
		p = strchr(h, ']');
		if (p == NULL || p == h + 1)
			return false;
		for (const char *q = h + 1; q < p; q++)
			if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
			      (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.'))
				return false;
		p++;
	} else {
		for (p = h; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-';
		     p++)
			;
		if (p == h || *h == '.' || *h == '-')
			return false;
	}
	hn = (size_t)(p - h);
	if (*p == ':') {
		unsigned long port = 0;
		const char *d = ++p;
		for (; *p >= '0' && *p <= '9' && p - d < 6; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (p == d || port == 0 || port > 65535)
			return false;
	}
	if (*p != '\0')
		return false; /* a path, query, fragment, credentials, junk */
	return https || loopback_host(h, hn);
}

static bool
key_known(const char *k, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

/* ---- peers ------------------------------------------------------------------ */

static const char *const peer_keys[] = {"id",	    "name",	   "url",  "cert_sha256",
					"ca_file",  "profiles",	   "profile_map", "rate",
					"suspended", NULL};

void
meshconf_peer_clear(struct mesh_peer *p)
{
	if (p == NULL)
		return;
	free(p->id);
	free(p->name);
	free(p->url);
	free(p->ca_file);
	for (size_t i = 0; i < p->nprofiles; i++)
		free(p->profiles[i]);
	free(p->profiles);
	for (size_t i = 0; i < p->nmap; i++) {
		free(p->map[i].local);
		free(p->map[i].peer);
	}
	free(p->map);
	memset(p, 0, sizeof *p);
}

static int
peer_fps(const json_t *a, struct mesh_peer *p, char *err, size_t errlen)
{
	json_t *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) < 1 ||
	    json_array_size(a) > MSSP_MESH_MAX_PEER_CERTS)
		return fail(err, errlen, "cert_sha256: 1 to 4 fingerprints");
	json_array_foreach(a, i, v) {
		const char *h = jstr(v);
		if (h == NULL || strlen(h) != FP_HEX ||
		    hex_decode(h, FP_HEX, p->fps[i], MESHCONF_FP_LEN, false) != 0)
			return fail(err, errlen, "cert_sha256: 64 hex digits each");
		for (size_t k = 0; k < i; k++)
			if (memcmp(p->fps[k], p->fps[i], MESHCONF_FP_LEN) == 0)
				return fail(err, errlen, "cert_sha256: a fingerprint repeated");
		p->nfps = i + 1;
	}
	return 0;
}

static int
peer_profiles(const json_t *a, struct mesh_peer *p, char *err, size_t errlen)
{
	json_t *v;
	size_t i, n;

	if (a == NULL) {
		p->all_profiles = true;
		return 0;
	}
	if (!json_is_array(a) || (n = json_array_size(a)) < 1 || n > MSSP_MESH_MAX_PEER_PROFILES)
		return fail(err, errlen, "profiles: [\"*\"] or 1 to 64 profile URIs");
	if (n == 1 && jstr(json_array_get(a, 0)) && strcmp(jstr(json_array_get(a, 0)), "*") == 0) {
		p->all_profiles = true;
		return 0;
	}
	if ((p->profiles = calloc(n, sizeof *p->profiles)) == NULL)
		return fail(err, errlen, "out of memory");
	json_array_foreach(a, i, v) {
		const char *u = jstr(v);
		if (u && strcmp(u, "*") == 0)
			return fail(err, errlen, "profiles: \"*\" stands alone");
		if (u == NULL || !profile_uri(u))
			return fail(err, errlen, "profiles: a profile URI is not valid");
		for (size_t k = 0; k < p->nprofiles; k++)
			if (strcmp(p->profiles[k], u) == 0)
				return fail(err, errlen, "profiles: a profile repeated");
		if ((p->profiles[p->nprofiles] = strdup(u)) == NULL)
			return fail(err, errlen, "out of memory");
		p->nprofiles++;
	}
	return 0;
}

static int
peer_map(const json_t *a, struct mesh_peer *p, char *err, size_t errlen)
{
	static const char *const map_keys[] = {"local", "peer", NULL};
	json_t *v;
	size_t i, n;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || (n = json_array_size(a)) > MSSP_MESH_MAX_PROFILE_MAP)
		return fail(err, errlen, "profile_map: an array of at most 32 {local, peer}");
	if (n == 0)
		return 0;
	if ((p->map = calloc(n, sizeof *p->map)) == NULL)
		return fail(err, errlen, "out of memory");
	json_array_foreach(a, i, v) {
		const char *k, *l, *r;
		json_t *x;
		if (!json_is_object(v))
			return fail(err, errlen, "profile_map: entries are {local, peer} objects");
		json_object_foreach(v, k, x) {
			if (!key_known(k, map_keys))
				return fail(err, errlen, "profile_map: unknown member in an entry");
		}
		l = jstr(json_object_get(v, "local"));
		r = jstr(json_object_get(v, "peer"));
		if (l == NULL || r == NULL || !profile_uri(l) || !profile_uri(r))
			return fail(err, errlen, "profile_map: local and peer profile URIs");
		/* one conversion per URI each way, or the direction would be a
		 * matter of order */
		for (size_t k2 = 0; k2 < p->nmap; k2++)
			if (strcmp(p->map[k2].local, l) == 0 || strcmp(p->map[k2].peer, r) == 0)
				return fail(err, errlen, "profile_map: a URI mapped twice");
		p->map[p->nmap].local = strdup(l);
		p->map[p->nmap].peer = strdup(r);
		p->nmap++;
		if (p->map[p->nmap - 1].local == NULL || p->map[p->nmap - 1].peer == NULL)
			return fail(err, errlen, "out of memory");
	}
	return 0;
}

static int
peer_parse(json_t *o, struct mesh_peer *p, char *err, size_t errlen)
{
	const char *k, *id, *name, *url, *ca;
	json_t *v, *rate, *susp;

	if (!json_is_object(o))
		return fail(err, errlen, "a peer is a JSON object");
	json_object_foreach(o, k, v) {
		if (!key_known(k, peer_keys))
			return fail(err, errlen, "unknown member in a peer");
	}
	id = jstr(json_object_get(o, "id"));
	/* the peer is the pseudo-AP "mesh:" + its id in our transactions */
	if (id == NULL || !abs_uri(id, MSSP_STORE_MAX_AP_ID - (sizeof "mesh:" - 1)))
		return fail(err, errlen, "id: an absolute URI (MSSP_ID) of at most 1024 bytes");
	/* "mesh:" ids name the AP of a roamed transaction at the home MSSP:
	 * a peer called so could pass for one */
	if (strncasecmp(id, "mesh:", 5) == 0)
		return fail(err, errlen, "id: must not start with mesh:");
	/* the name defaults to the id (a URI: its own rules, its own length) */
	v = json_object_get(o, "name");
	name = v ? jstr(v) : id;
	if (v && (name == NULL || strlen(name) == 0 || strlen(name) > MSSP_APPMSG_MAX_TEXT ||
		  !utf8_valid(name, strlen(name))))
		return fail(err, errlen, "name: UTF-8 text of 1 to 256 bytes");
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return fail(err, errlen, "name: no control characters");
	url = jstr(json_object_get(o, "url"));
	if (url == NULL || !url_ok(url))
		return fail(err, errlen, "url: https://HOST[:PORT] without a path "
					 "(http:// to a loopback host only)");
	if (peer_fps(json_object_get(o, "cert_sha256"), p, err, errlen) != 0)
		return -1;
	ca = jstr(json_object_get(o, "ca_file"));
	if (ca == NULL || ca[0] != '/' || !ascii_visible(ca, MSSP_MESH_MAX_PATH))
		return fail(err, errlen, "ca_file: an absolute path");
	if (peer_profiles(json_object_get(o, "profiles"), p, err, errlen) != 0 ||
	    peer_map(json_object_get(o, "profile_map"), p, err, errlen) != 0)
		return -1;
	rate = json_object_get(o, "rate");
	if (rate) {
		if (!json_is_integer(rate) || json_integer_value(rate) < 0 ||
		    json_integer_value(rate) > MSSP_MESH_MAX_RATE)
			return fail(err, errlen, "rate: 0 to 1000000");
		p->rate = (unsigned)json_integer_value(rate);
	}
	susp = json_object_get(o, "suspended");
	if (susp) {
		if (!json_is_boolean(susp))
			return fail(err, errlen, "suspended: true or false");
		p->suspended = json_is_true(susp);
	}
	p->id = strdup(id);
	p->name = strdup(name);
	p->url = strdup(url);
	p->ca_file = strdup(ca);
	if (!p->id || !p->name || !p->url || !p->ca_file)
		return fail(err, errlen, "out of memory");
	return 0;
}

int
meshconf_peer_from_json(json_t *o, struct mesh_peer *p, char *err, size_t errlen)
{
	if (p == NULL)
		return fail(err, errlen, "no peer");
	memset(p, 0, sizeof *p);
	if (peer_parse(o, p, err, errlen) != 0) {
		meshconf_peer_clear(p);
		return -1;
	}
	return 0;
}

json_t *
meshconf_peer_to_json(const struct mesh_peer *p)
{
	json_t *fps = json_array(), *prof = json_array(), *map = json_array(), *o;

	if (!fps || !prof || !map)
		goto fail;
	for (size_t i = 0; i < p->nfps; i++) {
		char hex[FP_HEX + 1];
		hex_encode(p->fps[i], MESHCONF_FP_LEN, hex);
		if (json_array_append_new(fps, json_string(hex)) != 0)
			goto fail;
	}
	if (p->all_profiles) {
		if (json_array_append_new(prof, json_string("*")) != 0)
			goto fail;
	} else {
		for (size_t i = 0; i < p->nprofiles; i++)
			if (json_array_append_new(prof, json_string(p->profiles[i])) != 0)
				goto fail;
	}
	for (size_t i = 0; i < p->nmap; i++)
		if (json_array_append_new(map, json_pack("{s:s, s:s}", "local", p->map[i].local,
							 "peer", p->map[i].peer)) != 0)
			goto fail;
	o = json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:b}", "id", p->id, "url", p->url,
		      "cert_sha256", fps, "ca_file", p->ca_file, "profiles", prof, "profile_map",
		      map, "rate", (json_int_t)p->rate, "suspended", (int)p->suspended);
	/* json_pack's "o" took the arrays, also on failure.  The name is
	 * the id when none was given, and an id may be longer than a name
	 * may be: such a default is left out (the parser gives it back) */
	if (o && p->name && strlen(p->name) <= MSSP_APPMSG_MAX_TEXT &&
	    json_object_set_new(o, "name", json_string(p->name)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
fail:
	json_decref(fps);
	json_decref(prof);
	json_decref(map);
	return NULL;
}

/* ---- routes ------------------------------------------------------------------ */

void
meshconf_route_clear(struct mesh_route *r)
{
	if (r == NULL)
		return;
	free(r->peer);
	memset(r, 0, sizeof *r);
}

int
meshconf_route_from_json(json_t *o, struct mesh_route *r, char *err, size_t errlen)
{
	static const char *const route_keys[] = {"prefix", "peer", "exact", NULL};
	const char *k, *pre, *peer;
	json_t *v, *ex;
	size_t n;

	if (r == NULL)
		return fail(err, errlen, "no route");
	memset(r, 0, sizeof *r);
	if (!json_is_object(o))
		return fail(err, errlen, "a route is a JSON object");
	json_object_foreach(o, k, v) {
		if (!key_known(k, route_keys))
			return fail(err, errlen, "unknown member in a route");
	}
	pre = jstr(json_object_get(o, "prefix"));
	if (pre == NULL || pre[0] != '+' || (n = strlen(pre)) < 2 || n > MSSP_MESH_MAX_PREFIX)
		return fail(err, errlen, "prefix: + and 1 to 15 digits");
	for (size_t i = 1; i < n; i++)
		if (pre[i] < '0' || pre[i] > '9')
			return fail(err, errlen, "prefix: + and 1 to 15 digits");
	peer = jstr(json_object_get(o, "peer"));
	if (peer == NULL || !abs_uri(peer, MSSP_STORE_MAX_AP_ID))
		return fail(err, errlen, "peer: a peer's MSSP_ID (an absolute URI)");
	ex = json_object_get(o, "exact");
	if (ex && !json_is_boolean(ex))
		return fail(err, errlen, "exact: true or false");
	memcpy(r->prefix, pre, n + 1);
	r->exact = ex && json_is_true(ex);
	if ((r->peer = strdup(peer)) == NULL) {
		memset(r, 0, sizeof *r);
		return fail(err, errlen, "out of memory");
	}
	return 0;
}

json_t *
meshconf_route_to_json(const struct mesh_route *r)
{
	return json_pack("{s:s, s:s, s:b}", "prefix", r->prefix, "peer", r->peer, "exact",
			 (int)r->exact);
}

/* ---- the table ------------------------------------------------------------------ */

void
meshconf_table_free(struct mesh_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->npeers; i++)
		meshconf_peer_clear(&t->peers[i]);
	for (size_t i = 0; i < t->nroutes; i++)
		meshconf_route_clear(&t->routes[i]);
	free(t->peers);
	free(t->routes);
	free(t);
}

/* Exact routes first, then longer prefixes first; ties by text, so the
 * order (and with it every lookup) does not depend on the store's. */
static int
route_cmp(const void *a, const void *b)
{
	const struct mesh_route *x = a, *y = b;
	size_t lx = strlen(x->prefix), ly = strlen(y->prefix);

	if (x->exact != y->exact)
		return x->exact ? -1 : 1;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return strcmp(x->prefix, y->prefix);
}

/* One kind's records, page by page, each body to `fn`.  0, or -1 with
 * err (a store failure). */
typedef int (*load_fn)(struct mesh_table *t, const struct store_rec *rec, json_t *body,
		       const char *self_id);

static int
load_kind(struct store *st, const char *kind, size_t cap, struct mesh_table *t,
	  const char *self_id, load_fn fn, char *err, size_t errlen)
{
	struct store_rec *page = calloc(MSSP_STORE_SCAN_BATCH, sizeof *page);
	char *last = calloc(1, MSSP_STORE_MAX_REC_NAME + 1);
	size_t seen = 0;
	int rc = 0;

	if (page == NULL || last == NULL) {
		free(page);
		free(last);
		return fail(err, errlen, "out of memory");
	}
	for (;;) {
		struct store_err se = {0};
		size_t n = 0;

		if (store_rec_list(st, kind, NULL, -1, last[0] ? last : NULL, page,
				   MSSP_STORE_SCAN_BATCH, &n, &se) != 0) {
			LOG_EV("meshconf.store_failed", "kind", kind, "detail", se.detail);
			rc = fail(err, errlen, "store: mesh records unreadable");
			break;
		}
		for (size_t i = 0; i < n; i++) {
			json_error_t je;
			json_t *b = rc == 0 ? json_loadb(page[i].sr_body ? page[i].sr_body : "",
							 page[i].sr_body_len, 0, &je)
					    : NULL;
			if (rc == 0) {
				if (seen >= cap) {
					LOG_EV("meshconf.too_many", "kind", kind);
				} else if (b == NULL) {
					LOG_EV("meshconf.bad_record", "kind", kind);
				} else {
					int r = fn(t, &page[i], b, self_id);
					if (r < 0) {
						rc = fail(err, errlen, "out of memory");
					} else if (r == 0) {
						seen++;
					}
				}
			}
			json_decref(b);
			if (i + 1 == n)
				snprintf(last, MSSP_STORE_MAX_REC_NAME + 1, "%s", page[i].sr_name);
			store_rec_clear(&page[i]);
		}
		if (rc != 0 || n < MSSP_STORE_SCAN_BATCH)
			break;
	}
	free(page);
	free(last);
	return rc;
}

/* 0 taken, 1 dropped (logged), -1 out of memory. */
static int
take_peer(struct mesh_table *t, const struct store_rec *rec, json_t *body, const char *self_id)
{
	char why[160];
	struct mesh_peer p;

	(void)self_id;
	if (meshconf_peer_from_json(body, &p, why, sizeof why) != 0) {
		LOG_EV("meshconf.bad_peer", "detail", why);
		return 1;
	}
	if (strcmp(p.id, rec->sr_name) != 0) {
		LOG_EV("meshconf.bad_peer", "detail", "id is not the record name");
		meshconf_peer_clear(&p);
		return 1;
	}
	t->peers[t->npeers++] = p;
	return 0;
}

static int
take_route(struct mesh_table *t, const struct store_rec *rec, json_t *body, const char *self_id)
{
	char why[160];
	struct mesh_route r;

	if (meshconf_route_from_json(body, &r, why, sizeof why) != 0) {
		LOG_EV("meshconf.bad_route", "detail", why);
		return 1;
	}
	if (strcmp(r.prefix, rec->sr_name) != 0) {
		LOG_EV("meshconf.bad_route", "detail", "prefix is not the record name");
		meshconf_route_clear(&r);
		return 1;
	}
	if (!(self_id && strcmp(r.peer, self_id) == 0) && meshconf_peer_by_id(t, r.peer) == NULL) {
		/* Routes name configured peers only (the ME checks it; a peer
		 * deleted meanwhile leaves its users local, never elsewhere) */
		LOG_EV("meshconf.route_dropped", "prefix", r.prefix, "detail", "unknown peer");
		meshconf_route_clear(&r);
		return 1;
	}
	t->routes[t->nroutes++] = r;
	return 0;
}

struct mesh_table *
meshconf_load(struct store *st, const char *self_id, uint64_t *gen_peer, uint64_t *gen_route,
	      char *err, size_t errlen)
{
	struct store_err se = {0};
	struct mesh_table *t;
	uint64_t gp = 0, gr = 0;

	/* The generations first: a write during the load moves them past
	 * what is returned here, so the caller loads again next time. */
	if (store_rec_generation(st, "peer", &gp, &se) != 0 ||
	    store_rec_generation(st, "route", &gr, &se) != 0) {
		fail(err, errlen, "store: record generations unreadable");
		return NULL;
	}
	if ((t = calloc(1, sizeof *t)) == NULL ||
	    (t->peers = calloc(MSSP_MESH_MAX_PEERS, sizeof *t->peers)) == NULL ||
	    (t->routes = calloc(MSSP_MESH_MAX_ROUTES, sizeof *t->routes)) == NULL) {
		meshconf_table_free(t);
		fail(err, errlen, "out of memory");
		return NULL;
	}
	if (load_kind(st, "peer", MSSP_MESH_MAX_PEERS, t, self_id, take_peer, err, errlen) != 0 ||
	    load_kind(st, "route", MSSP_MESH_MAX_ROUTES, t, self_id, take_route, err, errlen) !=
		    0) {
		meshconf_table_free(t);
		return NULL;
	}
	qsort(t->routes, t->nroutes, sizeof *t->routes, route_cmp);
	if (gen_peer)
		*gen_peer = gp;
	if (gen_route)
		*gen_route = gr;
	return t;
}

/* ---- lookups ------------------------------------------------------------------ */

const struct mesh_peer *
meshconf_peer_by_id(const struct mesh_table *t, const char *id)
{
	if (t == NULL || id == NULL)
		return NULL;
	for (size_t i = 0; i < t->npeers; i++)
		if (strcmp(t->peers[i].id, id) == 0)
			return &t->peers[i];
	return NULL;
}

const struct mesh_peer *
meshconf_route(const struct mesh_table *t, const char *msisdn, const char *self_id)
{
	if (t == NULL || msisdn == NULL)
		return NULL;
	/* sorted exact first, then longest prefix first: the first match is
	 * the best one */
	for (size_t i = 0; i < t->nroutes; i++) {
		const struct mesh_route *r = &t->routes[i];
		bool hit = r->exact ? strcmp(r->prefix, msisdn) == 0
				    : strncmp(r->prefix, msisdn, strlen(r->prefix)) == 0;
		if (!hit)
			continue;
		if (self_id && strcmp(r->peer, self_id) == 0)
			return NULL; /* an exception inside a foreign prefix */
		return meshconf_peer_by_id(t, r->peer);
	}
	return NULL;
}

const struct mesh_peer *
meshconf_peer_by_fp(const struct mesh_table *t, const uint8_t fp[MESHCONF_FP_LEN])
{
	const struct mesh_peer *found = NULL;

	if (t == NULL || fp == NULL)
		return NULL;
	/* every pin is compared (no early exit): the time does not tell
	 * which peer, or how far into a fingerprint, matched */
	for (size_t i = 0; i < t->npeers; i++)
		for (size_t k = 0; k < t->peers[i].nfps; k++)
			if (CRYPTO_memcmp(t->peers[i].fps[k], fp, MESHCONF_FP_LEN) == 0 &&
			    found == NULL)
				found = &t->peers[i];
	return found;
}

const char *
meshconf_map_out(const struct mesh_peer *p, const char *uri)
{
	if (p == NULL || uri == NULL)
		return uri;
	for (size_t i = 0; i < p->nmap; i++)
		if (strcmp(p->map[i].local, uri) == 0)
			return p->map[i].peer;
	return uri;
}

const char *
meshconf_map_in(const struct mesh_peer *p, const char *uri)
{
	if (p == NULL || uri == NULL)
		return uri;
	for (size_t i = 0; i < p->nmap; i++)
		if (strcmp(p->map[i].peer, uri) == 0)
			return p->map[i].local;
	return uri;
}

bool
meshconf_peer_allows(const struct mesh_peer *p, const char *profile)
{
	if (p == NULL || profile == NULL)
		return false;
	if (p->all_profiles)
		return true;
	for (size_t i = 0; i < p->nprofiles; i++)
		if (strcmp(p->profiles[i], profile) == 0)
			return true;
	return false;
}
