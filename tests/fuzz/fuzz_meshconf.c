/*
 * fuzz_meshconf.c - libFuzzer target for the mesh record parsers
 * (src/roles/meshconf.c): meshconf_peer_from_json, meshconf_route_from_json,
 * their canonical JSON, and meshconf_route over a table of fuzzed records.
 *
 * Input: JSON text, read as the store reads a record body (at most
 * MSSP_STORE_MAX_REC_BODY bytes, no NUL, JSON_REJECT_DUPLICATES; jansson
 * bounds the nesting depth itself).  A top-level object is tried as a
 * peer and as a route; a top-level array is a list of records, each tried
 * as both, and the accepted ones make a mesh_table the way meshconf_load
 * makes one (record name = id / prefix, so the first of a name wins;
 * routes naming neither a loaded peer nor SELF dropped; sorted exact
 * first, then longest prefix).  Oracle, abort() when broken:
 *   - a refusal says why and leaves the record zeroed;
 *   - round trip: an accepted record, written by *_to_json, dumped and
 *     loaded again as text (what the ME stores and the AE loads), parses
 *     again, equal field by field, and its JSON is the same (canonical);
 *   - meshconf_route agrees with a plain reference (exact match first,
 *     then the longest prefix; SELF or no route: NULL) for numbers made
 *     from the table's prefixes; peer_by_id / peer_by_fp find each peer;
 *     map_out/map_in invert each other on the peer's map entries.
 *
 * Found by this target and fixed: a peer without "name" whose id is
 * longer than a name may be was written back with name = id, which the
 * parser refused (seed long-id-no-name.json is the regression case).
 * Corpus: tests/fuzz/corpus/meshconf/ (records of docs/internals/mesh.md,
 * tests/unit/test_meshconf.c, and broken ones).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "roles/meshconf.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SELF "http://mssp-a.example/"
#define MAX_TABLE_ROUTES 256 /* enough to sort and search; inputs stay small */

static volatile size_t sink;

static bool
zeroed(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Through text, as the store keeps a body. */
static json_t *
via_text(json_t *o)
{
	json_error_t je;
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_t *back;

	if (s == NULL)
		abort();
	back = json_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &je);
	free(s);
	if (back == NULL)
		abort();
	return back;
}

/* ---- peers ------------------------------------------------------------- */

static bool
peer_eq(const struct mesh_peer *a, const struct mesh_peer *b)
{
	if (!str_eq(a->id, b->id) || !str_eq(a->name, b->name) || !str_eq(a->url, b->url) ||
	    !str_eq(a->ca_file, b->ca_file) || a->nfps != b->nfps ||
	    a->all_profiles != b->all_profiles || a->nprofiles != b->nprofiles ||
	    a->nmap != b->nmap || a->rate != b->rate || a->suspended != b->suspended)
		return false;
	if (memcmp(a->fps, b->fps, a->nfps * MESHCONF_FP_LEN) != 0)
		return false;
	for (size_t i = 0; i < a->nprofiles; i++)
		if (!str_eq(a->profiles[i], b->profiles[i]))
			return false;
	for (size_t i = 0; i < a->nmap; i++)
		if (!str_eq(a->map[i].local, b->map[i].local) || !str_eq(a->map[i].peer, b->map[i].peer))
			return false;
	return true;
}

/* 0 accepted (p filled), -1 refused (p zeroed). */
static int
peer_try(json_t *o, struct mesh_peer *p)
{
	char err[256] = "";
	struct mesh_peer again;
	json_t *j, *t, *j2;

	if (meshconf_peer_from_json(o, p, err, sizeof err) != 0) {
		if (err[0] == '\0' || !zeroed(p, sizeof *p))
			abort();
		return -1;
	}
	/* what meshconf.h promises of an accepted peer */
	if (p->id == NULL || p->name == NULL || p->url == NULL || p->ca_file == NULL ||
	    p->nfps < 1 || p->nfps > MSSP_MESH_MAX_PEER_CERTS ||
	    p->nmap > MSSP_MESH_MAX_PROFILE_MAP || p->rate > MSSP_MESH_MAX_RATE ||
	    (p->all_profiles && p->nprofiles != 0) ||
	    (!p->all_profiles && (p->nprofiles < 1 || p->nprofiles > MSSP_MESH_MAX_PEER_PROFILES)))
		abort();
	if ((j = meshconf_peer_to_json(p)) == NULL)
		abort();
	t = via_text(j);
	if (meshconf_peer_from_json(t, &again, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_meshconf: canonical peer refused: %s\n", err);
		abort();
	}
	if (!peer_eq(p, &again))
		abort();
	if ((j2 = meshconf_peer_to_json(&again)) == NULL || !json_equal(j, j2))
		abort();
	json_decref(j);
	json_decref(j2);
	json_decref(t);
	meshconf_peer_clear(&again);
	if (!zeroed(&again, sizeof again))
		abort();
	return 0;
}

/* ---- routes ------------------------------------------------------------ */

static int
route_try(json_t *o, struct mesh_route *r)
{
	char err[256] = "";
	struct mesh_route again;
	json_t *j, *t, *j2;
	size_t n;

	if (meshconf_route_from_json(o, r, err, sizeof err) != 0) {
		if (err[0] == '\0' || !zeroed(r, sizeof *r))
			abort();
		return -1;
	}
	n = strlen(r->prefix);
	if (r->prefix[0] != '+' || n < 2 || n > MSSP_MESH_MAX_PREFIX ||
	    strspn(r->prefix + 1, "0123456789") != n - 1 || r->peer == NULL)
		abort();
	if ((j = meshconf_route_to_json(r)) == NULL)
		abort();
	t = via_text(j);
	if (meshconf_route_from_json(t, &again, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_meshconf: canonical route refused: %s\n", err);
		abort();
	}
	if (strcmp(r->prefix, again.prefix) != 0 || r->exact != again.exact ||
	    !str_eq(r->peer, again.peer))
		abort();
	if ((j2 = meshconf_route_to_json(&again)) == NULL || !json_equal(j, j2))
		abort();
	json_decref(j);
	json_decref(j2);
	json_decref(t);
	meshconf_route_clear(&again);
	return 0;
}

/* ---- the table ----------------------------------------------------------- */

/* meshconf_load's order: exact first, then longer prefixes, then text. */
static int
route_order(const void *a, const void *b)
{
	const struct mesh_route *x = a, *y = b;
	size_t lx = strlen(x->prefix), ly = strlen(y->prefix);

	if (x->exact != y->exact)
		return x->exact ? -1 : 1;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return strcmp(x->prefix, y->prefix);
}

static const struct mesh_peer *
by_id(const struct mesh_table *t, const char *id)
{
	for (size_t i = 0; i < t->npeers; i++)
		if (strcmp(t->peers[i].id, id) == 0)
			return &t->peers[i];
	return NULL;
}

/* The reference: scan all routes, no order assumed. */
static const struct mesh_peer *
route_ref(const struct mesh_table *t, const char *msisdn, const char *self)
{
	const struct mesh_route *best = NULL;

	for (size_t i = 0; i < t->nroutes; i++) {
		const struct mesh_route *r = &t->routes[i];
		size_t n = strlen(r->prefix);
		if (r->exact) {
			if (strcmp(r->prefix, msisdn) != 0)
				continue;
			if (best == NULL || !best->exact)
				best = r;
		} else if (strncmp(r->prefix, msisdn, n) == 0) {
			if (best == NULL || (!best->exact && strlen(best->prefix) < n))
				best = r;
		}
	}
	if (best == NULL || (self != NULL && strcmp(best->peer, self) == 0))
		return NULL;
	return by_id(t, best->peer);
}

static void
lookup(const struct mesh_table *t, const char *msisdn)
{
	const struct mesh_peer *got = meshconf_route(t, msisdn, SELF);

	if (got != route_ref(t, msisdn, SELF))
		abort();
	if (got != NULL && (got < t->peers || got >= t->peers + t->npeers))
		abort();
	/* without a self id, no route means local and the best route wins */
	sink += meshconf_route(t, msisdn, NULL) != NULL;
}

static void
table_checks(struct mesh_table *t)
{
	char num[MSSP_MESH_MAX_PREFIX + 8];

	qsort(t->routes, t->nroutes, sizeof *t->routes, route_order);
	for (size_t i = 0; i < t->nroutes; i++) {
		const char *pre = t->routes[i].prefix;
		size_t n = strlen(pre);
		lookup(t, pre);
		snprintf(num, sizeof num, "%s0", pre);
		lookup(t, num);
		snprintf(num, sizeof num, "%s123456", pre);
		lookup(t, num);
		snprintf(num, sizeof num, "%.*s", (int)(n - 1), pre);
		lookup(t, num);
	}
	lookup(t, "+");
	lookup(t, "+35848123456");
	lookup(t, "");
	if (meshconf_route(t, NULL, SELF) != NULL || meshconf_route(NULL, "+1", SELF) != NULL)
		abort();
	for (size_t i = 0; i < t->npeers; i++) {
		const struct mesh_peer *p = &t->peers[i];
		if (meshconf_peer_by_id(t, p->id) != p)
			abort();
		for (size_t k = 0; k < p->nfps; k++) {
			const struct mesh_peer *f = meshconf_peer_by_fp(t, p->fps[k]);
			/* the first peer pinning it (two peers may pin one) */
			if (f == NULL || f > p)
				abort();
		}
		for (size_t k = 0; k < p->nmap; k++)
			if (strcmp(meshconf_map_out(p, p->map[k].local), p->map[k].peer) != 0 ||
			    strcmp(meshconf_map_in(p, p->map[k].peer), p->map[k].local) != 0)
				abort();
		for (size_t k = 0; k < p->nprofiles; k++)
			if (!meshconf_peer_allows(p, p->profiles[k]))
				abort();
		if (p->all_profiles != meshconf_peer_allows(p, "mss:not:listed:anywhere"))
			abort();
	}
}

static void
table_from(json_t *arr)
{
	struct mesh_table t = {0};
	size_t i, cap = json_array_size(arr);
	json_t *v;

	if (cap > MSSP_MESH_MAX_PEERS + MAX_TABLE_ROUTES)
		cap = MSSP_MESH_MAX_PEERS + MAX_TABLE_ROUTES;
	t.peers = calloc(cap ? cap : 1, sizeof *t.peers);
	t.routes = calloc(cap ? cap : 1, sizeof *t.routes);
	if (t.peers == NULL || t.routes == NULL)
		abort();
	/* peers first, as meshconf_load reads them */
	json_array_foreach(arr, i, v) {
		struct mesh_peer p;
		if (i >= cap)
			break;
		if (peer_try(v, &p) != 0)
			continue;
		if (t.npeers >= MSSP_MESH_MAX_PEERS || by_id(&t, p.id) != NULL)
			meshconf_peer_clear(&p);
		else
			t.peers[t.npeers++] = p;
	}
	json_array_foreach(arr, i, v) {
		struct mesh_route r;
		bool dup = false;
		if (i >= cap)
			break;
		if (route_try(v, &r) != 0)
			continue;
		for (size_t k = 0; k < t.nroutes && !dup; k++)
			dup = strcmp(t.routes[k].prefix, r.prefix) == 0;
		if (dup || t.nroutes >= MAX_TABLE_ROUTES ||
		    (strcmp(r.peer, SELF) != 0 && by_id(&t, r.peer) == NULL))
			meshconf_route_clear(&r);
		else
			t.routes[t.nroutes++] = r;
	}
	table_checks(&t);
	for (i = 0; i < t.npeers; i++)
		meshconf_peer_clear(&t.peers[i]);
	for (i = 0; i < t.nroutes; i++)
		meshconf_route_clear(&t.routes[i]);
	free(t.peers);
	free(t.routes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *o;

	if (size < 2 || size > MSSP_STORE_MAX_REC_BODY || memchr(data, '\0', size) != NULL)
		return 0;
	o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL)
		return 0;
	if (json_is_array(o)) {
		table_from(o);
	} else {
		struct mesh_peer p;
		struct mesh_route r;
		if (peer_try(o, &p) == 0)
			meshconf_peer_clear(&p);
		if (route_try(o, &r) == 0)
			meshconf_route_clear(&r);
	}
	json_decref(o);
	return 0;
}
