/*
 * meshconf.h - the mesh's peers and routing table as data: parsing and
 * validating the peer and route records (store records of kinds "peer"
 * and "route", shapes in docs/internals/mesh.md), loading them from the
 * store into one immutable table, and the lookups the AE does on it.
 *
 * The ME validates a record with the same functions before it stores it
 * (roles/reg.c), so a record the AE reads back is always well-formed; the
 * AE (roles/roam.c) loads whole tables and swaps them when the record
 * generations move.
 *
 * Ownership: a mesh_table owns everything in it (meshconf_table_free);
 * lookups return pointers into the table, valid while it lives.  Nothing
 * here keeps a reference to a json_t it was given.
 * Threads: a table is immutable once loaded; any thread may read it.
 */
#ifndef MSSP_ROLES_MESHCONF_H
#define MSSP_ROLES_MESHCONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

struct store;

#define MESHCONF_FP_LEN 32 /* SHA-256 of a DER certificate */

struct mesh_map {
	char *local;			/* our profile URI                     */
	char *peer;			/* the same service's URI at the peer  */
};

struct mesh_peer {
	char *id;			/* MSSP_ID URI (the record name)       */
	char *name;			/* display name (defaults to id)       */
	char *url;			/* https://host[:port] of its mesh
					 * listener, no path, no query, no
					 * credentials (http:// only to a
					 * loopback address: tests)            */
	uint8_t fps[MSSP_MESH_MAX_PEER_CERTS][MESHCONF_FP_LEN];
	size_t nfps;			/* 1..MSSP_MESH_MAX_PEER_CERTS         */
	char *ca_file;			/* absolute path: trust anchors for the
					 * peer's server certificate          */
	bool all_profiles;		/* "profiles": ["*"] or absent          */
	char **profiles;		/* else nprofiles exact URIs            */
	size_t nprofiles;
	struct mesh_map *map;		/* nmap <= MSSP_MESH_MAX_PROFILE_MAP   */
	size_t nmap;
	unsigned rate;			/* requests/s from this peer, 0: none  */
	bool suspended;			/* no traffic either way               */
};

struct mesh_route {
	char prefix[MSSP_MESH_MAX_PREFIX + 1]; /* "+" then 1..15 digits     */
	bool exact;			/* the whole number only               */
	char *peer;			/* a peer's id, or our own mssp_id     */
};

struct mesh_table {
	struct mesh_peer *peers;
	size_t npeers;
	struct mesh_route *routes;	/* sorted: exact first, then longest
					 * prefix first                        */
	size_t nroutes;
};

/* Parse and validate a peer record body into `p` (zeroed by the caller).
 * 0, or -1 with a one-line reason in err (and `p` cleared).  Checks: the
 * id is an absolute URI (scheme ":" ...) of at most MSSP_STORE_MAX_AP_ID
 * bytes not starting with "mesh:"; url as above; 1..MAX fingerprints of 64
 * hex digits, no duplicates; ca_file an absolute path; profiles "*" or
 * URIs; profile_map entries with both members, no URI mapped twice in
 * either direction; rate 0..1000000; suspended a boolean; no unknown
 * keys. */
int meshconf_peer_from_json(json_t *o, struct mesh_peer *p, char *err, size_t errlen);
/* The record body of `p` (new reference), or NULL on allocation failure. */
json_t *meshconf_peer_to_json(const struct mesh_peer *p);
void meshconf_peer_clear(struct mesh_peer *p); /* frees members, zeroes */

/* Parse and validate a route record body (prefix, peer, exact).  0, or -1
 * with the reason.  The peer's existence is the caller's check. */
int meshconf_route_from_json(json_t *o, struct mesh_route *r, char *err, size_t errlen);
json_t *meshconf_route_to_json(const struct mesh_route *r);
void meshconf_route_clear(struct mesh_route *r);

/* Load every peer and route record from the store (a read of both kinds;
 * *gen_peer / *gen_route = their generations, read first so that a change
 * during the load is seen as a change next time).  A route naming neither
 * a loaded peer nor `self_id` is dropped with a log line; so is a record
 * that does not parse (the ME never stores one).  NULL with err on a
 * store failure or allocation failure. */
struct mesh_table *meshconf_load(struct store *st, const char *self_id, uint64_t *gen_peer,
				 uint64_t *gen_route, char *err, size_t errlen);
void meshconf_table_free(struct mesh_table *t); /* NULL ok */

/* The peer that serves `msisdn` (normalised: "+" and digits), or NULL when
 * it is ours: no route, or the best route names `self_id`.  An exact route
 * beats any prefix; then the longest prefix wins.  A suspended peer is
 * still returned (the caller answers 780). */
const struct mesh_peer *meshconf_route(const struct mesh_table *t, const char *msisdn,
				       const char *self_id);
/* The peer whose pinned certificates include `fp` (constant-time compare
 * of each), or NULL. */
const struct mesh_peer *meshconf_peer_by_fp(const struct mesh_table *t,
					    const uint8_t fp[MESHCONF_FP_LEN]);
const struct mesh_peer *meshconf_peer_by_id(const struct mesh_table *t, const char *id);
/* Profile conversion (exact URI match): our URI as the peer names it, and
 * back.  Returns the mapped URI, or `uri` itself when there is no entry. */
const char *meshconf_map_out(const struct mesh_peer *p, const char *uri);
const char *meshconf_map_in(const struct mesh_peer *p, const char *uri);
/* May this peer ask for `profile` of our users?  (all_profiles, or an
 * exact entry.) */
bool meshconf_peer_allows(const struct mesh_peer *p, const char *profile);

#endif
