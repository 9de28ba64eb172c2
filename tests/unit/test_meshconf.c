/*
 * test_meshconf.c - the mesh's peer and route records (roles/meshconf):
 * every validation rule of a peer and a route body, the canonical JSON,
 * loading from a real SQLite store (paging past one list page, dropped
 * records, generations), and the lookups: longest prefix, exact beats
 * prefix, a route to ourselves is local, certificate pins, profile maps,
 * the allow-list.
 */
#include "teststore.h"

#include <jansson.h>
#include <time.h>

#include <sys/stat.h>

#include "roles/conf.h"
#include "roles/meshconf.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/limits.h"

#define T0 1700000000000LL
#define SELF "http://mssp-a.example/"
#define PB "http://mssp-b.example/"
#define PC "http://mssp-c.example/"
#define FP1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define FP2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define FP3 "0101010101010101010101010101010101010101010101010101010101010101"

static json_t *
J(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", text, je.text);
	return j;
}

/* A valid peer body to start from (new reference). */
static json_t *
peer_base(const char *id, const char *fp)
{
	return json_pack("{s:s, s:s, s:[s], s:s}", "id", id, "url", "https://mesh.b.example:8449",
			 "cert_sha256", fp, "ca_file", "/etc/openmssp/peers/b-ca.pem");
}

static int
peer_try(json_t *o, char *why, size_t cap)
{
	struct mesh_peer p;
	int rc = meshconf_peer_from_json(o, &p, why, cap);

	if (rc == 0)
		meshconf_peer_clear(&p);
	else /* cleared on failure */
		assert_null(p.id);
	return rc;
}

/* base with member `key` set to the JSON `val` (NULL: removed) must fail */
static void
peer_bad(const char *key, const char *val)
{
	json_t *o = peer_base(PB, FP1);
	char why[160] = "";

	if (val)
		json_object_set_new(o, key, J(val));
	else
		json_object_del(o, key);
	if (peer_try(o, why, sizeof why) == 0)
		fail_msg("peer with %s = %s accepted", key, val ? val : "(absent)");
	assert_true(why[0] != '\0');
	json_decref(o);
}

static void
peer_good(const char *key, const char *val)
{
	json_t *o = peer_base(PB, FP1);
	char why[160] = "";

	json_object_set_new(o, key, J(val));
	if (peer_try(o, why, sizeof why) != 0)
		fail_msg("peer with %s = %s refused: %s", key, val, why);
	json_decref(o);
}

/* ---- peers -------------------------------------------------------------- */

static void
test_peer_full_roundtrip(void **state)
{
	(void)state;
	json_t *in = J("{\"id\":\"" PB "\",\"name\":\"Operator B\","
		       "\"url\":\"https://mesh.mssp-b.example:8449\","
		       "\"cert_sha256\":[\"" FP1 "\",\"FFEEDDCCBBAA99887766554433221100"
		       "FFEEDDCCBBAA99887766554433221100\"],"
		       "\"ca_file\":\"/etc/openmssp/peers/b-ca.pem\","
		       "\"profiles\":[\"http://alauda.mobi/digitalSignature\"],"
		       "\"profile_map\":[{\"local\":\"http://alauda.mobi/digitalSignature\","
		       "\"peer\":\"http://mssp-b.example/sign\"}],"
		       "\"rate\":50,\"suspended\":true}");
	struct mesh_peer p, q;
	char why[160];

	assert_int_equal(meshconf_peer_from_json(in, &p, why, sizeof why), 0);
	assert_string_equal(p.id, PB);
	assert_string_equal(p.name, "Operator B");
	assert_string_equal(p.url, "https://mesh.mssp-b.example:8449");
	assert_int_equal(p.nfps, 2);
	assert_int_equal(p.fps[0][0], 0x00);
	assert_int_equal(p.fps[0][31], 0xff);
	assert_int_equal(p.fps[1][0], 0xff);
	assert_false(p.all_profiles);
	assert_int_equal(p.nprofiles, 1);
	assert_int_equal(p.nmap, 1);
	assert_int_equal(p.rate, 50);
	assert_true(p.suspended);

	/* canonical form: lower-case hex, every member; parses back equal */
	json_t *out = meshconf_peer_to_json(&p);
	assert_non_null(out);
	assert_string_equal(json_string_value(json_array_get(json_object_get(out, "cert_sha256"), 1)),
			    FP2);
	assert_int_equal(meshconf_peer_from_json(out, &q, why, sizeof why), 0);
	json_t *out2 = meshconf_peer_to_json(&q);
	assert_true(json_equal(out, out2));
	json_decref(out2);
	json_decref(out);
	meshconf_peer_clear(&q);
	meshconf_peer_clear(&p);
	assert_null(p.id);
	assert_int_equal(p.nfps, 0);
	json_decref(in);
}

static void
test_peer_defaults(void **state)
{
	(void)state;
	json_t *in = peer_base(PB, FP1), *out;
	struct mesh_peer p;

	assert_int_equal(meshconf_peer_from_json(in, &p, NULL, 0), 0);
	assert_string_equal(p.name, PB); /* name defaults to the id */
	assert_true(p.all_profiles);	 /* absent profiles: all     */
	assert_int_equal(p.rate, 0);
	assert_false(p.suspended);
	assert_int_equal(p.nmap, 0);
	out = meshconf_peer_to_json(&p);
	assert_string_equal(json_string_value(json_array_get(json_object_get(out, "profiles"), 0)),
			    "*");
	assert_int_equal(json_array_size(json_object_get(out, "profile_map")), 0);
	assert_string_equal(json_string_value(json_object_get(out, "name")), PB);
	json_decref(out);
	meshconf_peer_clear(&p);
	json_decref(in);
}

static void
test_peer_shape(void **state)
{
	(void)state;
	char why[160];
	json_t *a = J("[1]");

	assert_int_equal(peer_try(a, why, sizeof why), -1);
	assert_int_equal(peer_try(NULL, why, sizeof why), -1);
	json_decref(a);
	peer_bad("colour", "\"red\""); /* unknown member */
	peer_bad("id", NULL);
	peer_bad("url", NULL);
	peer_bad("cert_sha256", NULL);
	peer_bad("ca_file", NULL);
}

static void
test_peer_id(void **state)
{
	(void)state;
	char big[MSSP_STORE_MAX_AP_ID + 32];
	peer_bad("id", "\"no-scheme\"");
	peer_bad("id", "\"1http://x/\"");
	peer_bad("id", "\"http:\"");
	peer_bad("id", "\"http://with space/\"");
	peer_bad("id", "42");
	peer_bad("id", "\"mesh:http://x/\"");
	peer_bad("id", "\"MESH:x\"");
	/* "urn:" and 1015 letters: exactly MSSP_STORE_MAX_AP_ID - 5 bytes
	 * (a peer is the pseudo-AP "mesh:" + its id) */
	snprintf(big, sizeof big, "\"urn:%0*d\"", MSSP_STORE_MAX_AP_ID - 9, 0);
	peer_good("id", big);
	snprintf(big, sizeof big, "\"urn:%0*d\"", MSSP_STORE_MAX_AP_ID - 8, 0);
	peer_bad("id", big); /* one more */
	peer_good("id", "\"urn:oid:1.2.3\"");
}

static void
test_peer_name(void **state)
{
	(void)state;
	char big[MSSP_APPMSG_MAX_TEXT + 8];

	peer_good("name", "\"Opérateur B\"");
	peer_bad("name", "\"\"");
	peer_bad("name", "\"tab\\there\"");
	peer_bad("name", "7");
	big[0] = '"';
	memset(big + 1, 'n', MSSP_APPMSG_MAX_TEXT + 1);
	snprintf(big + 2 + MSSP_APPMSG_MAX_TEXT, 4, "\"");
	peer_bad("name", big);
}

static void
test_peer_url(void **state)
{
	(void)state;
	peer_good("url", "\"https://mesh.b.example\"");
	peer_good("url", "\"https://10.0.0.2:8449\"");
	peer_good("url", "\"https://[2001:db8::1]:8449\"");
	peer_good("url", "\"http://127.0.0.1:8449\""); /* plain only to loopback */
	peer_good("url", "\"http://localhost:8449\"");
	peer_good("url", "\"http://[::1]:8449\"");
	peer_bad("url", "\"http://mesh.b.example:8449\"");
	peer_bad("url", "\"ftp://mesh.b.example\"");
	peer_bad("url", "\"https://mesh.b.example/\""); /* no path */
	peer_bad("url", "\"https://mesh.b.example:8449/soap\"");
	peer_bad("url", "\"https://mesh.b.example?x=1\"");
	peer_bad("url", "\"https://mesh.b.example#f\"");
	peer_bad("url", "\"https://user:pw@mesh.b.example\"");
	peer_bad("url", "\"https://mesh.b.example:0\"");
	peer_bad("url", "\"https://mesh.b.example:65536\"");
	peer_bad("url", "\"https://mesh.b.example:\"");
	peer_bad("url", "\"https://\"");
	peer_bad("url", "\"https://[]:1\"");
	peer_bad("url", "\"https://-x.example\"");
	peer_bad("url", "7");
}

static void
test_peer_fps(void **state)
{
	(void)state;
	peer_good("cert_sha256", "[\"" FP1 "\"]");
	peer_good("cert_sha256", "[\"" FP1 "\",\"" FP2 "\",\"" FP3 "\","
				 "\"0202020202020202020202020202020202020202020202020202020202020202\"]");
	peer_bad("cert_sha256", "[]");
	peer_bad("cert_sha256", "[\"" FP1 "\",\"" FP2 "\",\"" FP3 "\","
				"\"0202020202020202020202020202020202020202020202020202020202020202\","
				"\"0303030303030303030303030303030303030303030303030303030303030303\"]");
	peer_bad("cert_sha256", "\"" FP1 "\"");
	peer_bad("cert_sha256", "[\"0011\"]");
	peer_bad("cert_sha256", "[\"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]");
	peer_bad("cert_sha256", "[\"" FP1 "00\"]");
	peer_bad("cert_sha256", "[7]");
	/* the same certificate twice, once in capitals */
	peer_bad("cert_sha256", "[\"" FP1 "\",\"00112233445566778899AABBCCDDEEFF"
				"00112233445566778899AABBCCDDEEFF\"]");
}

static void
test_peer_misc(void **state)
{
	(void)state;
	peer_bad("ca_file", "\"peers/b-ca.pem\"");
	peer_bad("ca_file", "\"\"");
	peer_bad("ca_file", "[\"/x\"]");
	peer_good("profiles", "[\"*\"]");
	peer_bad("profiles", "[]");
	peer_bad("profiles", "[\"*\",\"http://alauda.mobi/digitalSignature\"]");
	peer_bad("profiles", "[\"not a uri\"]");
	peer_bad("profiles", "[\"http://alauda.mobi/digitalSignature\","
			     "\"http://alauda.mobi/digitalSignature\"]");
	peer_bad("profiles", "\"*\"");
	peer_good("rate", "0");
	peer_good("rate", "1000000");
	peer_bad("rate", "-1");
	peer_bad("rate", "1000001");
	peer_bad("rate", "\"5\"");
	peer_bad("rate", "1.5");
	peer_good("suspended", "false");
	peer_bad("suspended", "\"yes\"");
	peer_bad("suspended", "1");
}

static void
test_peer_map_rules(void **state)
{
	(void)state;
	char big[8192];
	size_t o;

	peer_good("profile_map", "[]");
	peer_good("profile_map", "[{\"local\":\"http://a.example/1\",\"peer\":\"http://b.example/1\"},"
				 "{\"local\":\"http://a.example/2\",\"peer\":\"http://b.example/2\"}]");
	peer_bad("profile_map", "{}");
	peer_bad("profile_map", "[\"http://a.example/1\"]");
	peer_bad("profile_map", "[{\"local\":\"http://a.example/1\"}]");
	peer_bad("profile_map", "[{\"peer\":\"http://b.example/1\"}]");
	peer_bad("profile_map", "[{\"local\":\"http://a.example/1\",\"peer\":\"bad uri\"}]");
	peer_bad("profile_map", "[{\"local\":\"http://a.example/1\",\"peer\":\"http://b.example/1\","
				"\"note\":\"x\"}]");
	/* one URI mapped twice, either direction */
	peer_bad("profile_map", "[{\"local\":\"http://a.example/1\",\"peer\":\"http://b.example/1\"},"
				"{\"local\":\"http://a.example/1\",\"peer\":\"http://b.example/2\"}]");
	peer_bad("profile_map", "[{\"local\":\"http://a.example/1\",\"peer\":\"http://b.example/1\"},"
				"{\"local\":\"http://a.example/2\",\"peer\":\"http://b.example/1\"}]");
	/* at most MSSP_MESH_MAX_PROFILE_MAP entries */
	for (int n = MSSP_MESH_MAX_PROFILE_MAP; n <= MSSP_MESH_MAX_PROFILE_MAP + 1; n++) {
		o = (size_t)snprintf(big, sizeof big, "[");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(big + o, sizeof big - o,
					      "%s{\"local\":\"http://a.example/%d\","
					      "\"peer\":\"http://b.example/%d\"}",
					      i ? "," : "", i, i);
		snprintf(big + o, sizeof big - o, "]");
		if (n == MSSP_MESH_MAX_PROFILE_MAP)
			peer_good("profile_map", big);
		else
			peer_bad("profile_map", big);
	}
}

/* ---- routes -------------------------------------------------------------- */

static int
route_try(const char *text, struct mesh_route *r)
{
	json_t *o = J(text);
	char why[160] = "";
	int rc = meshconf_route_from_json(o, r, why, sizeof why);

	if (rc != 0)
		assert_true(why[0] != '\0');
	json_decref(o);
	return rc;
}

static void
test_route_rules(void **state)
{
	(void)state;
	struct mesh_route r;

	assert_int_equal(route_try("{\"prefix\":\"+35848\",\"peer\":\"" PB "\"}", &r), 0);
	assert_string_equal(r.prefix, "+35848");
	assert_string_equal(r.peer, PB);
	assert_false(r.exact);
	json_t *out = meshconf_route_to_json(&r);
	json_t *want = J("{\"prefix\":\"+35848\",\"peer\":\"" PB "\",\"exact\":false}");
	assert_true(json_equal(out, want));
	json_decref(want);
	assert_string_equal(json_string_value(json_object_get(out, "prefix")), "+35848");
	assert_true(json_is_false(json_object_get(out, "exact")));
	json_decref(out);
	meshconf_route_clear(&r);
	assert_null(r.peer);

	assert_int_equal(route_try("{\"prefix\":\"+358401234567\",\"peer\":\"" PB
				   "\",\"exact\":true}", &r), 0);
	assert_true(r.exact);
	meshconf_route_clear(&r);
	/* 15 digits is the most */
	assert_int_equal(route_try("{\"prefix\":\"+123456789012345\",\"peer\":\"" PB "\"}", &r), 0);
	meshconf_route_clear(&r);
	assert_int_equal(route_try("{\"prefix\":\"+1234567890123456\",\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"35848\",\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+\",\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+358 48\",\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+3584a\",\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":35848,\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"peer\":\"" PB "\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+35848\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+35848\",\"peer\":\"not a uri\"}", &r), -1);
	assert_int_equal(route_try("{\"prefix\":\"+35848\",\"peer\":\"" PB "\",\"exact\":1}", &r),
			 -1);
	assert_int_equal(route_try("{\"prefix\":\"+35848\",\"peer\":\"" PB "\",\"via\":\"x\"}", &r),
			 -1);
	assert_int_equal(route_try("[]", &r), -1);
}

/* ---- the table: load from a store, lookups ----------------------------------- */

static int
setup(void **state)
{
	(void)state;
	return ts_setup("test_meshconf");
}

static void
put_rec(struct store *s, const char *kind, const char *name, json_t *body)
{
	struct store_rec r = {0};
	struct store_err err = {0};
	char *txt = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(r.sr_kind, sizeof r.sr_kind, "%s", kind);
	snprintf(r.sr_name, sizeof r.sr_name, "%s", name);
	r.sr_state = 1;
	r.sr_body = txt;
	r.sr_body_len = strlen(txt);
	if (store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err) != 0)
		fail_msg("put %s %s: %d %s", kind, name, err.status, err.detail);
	free(txt);
	json_decref(body);
}

static void
put_route(struct store *s, const char *prefix, const char *peer, bool exact)
{
	put_rec(s, "route", prefix,
		json_pack("{s:s, s:s, s:b}", "prefix", prefix, "peer", peer, "exact", exact));
}

static struct mesh_table *
must_load(struct store *s, uint64_t *gp, uint64_t *gr)
{
	char why[160] = "";
	struct mesh_table *t = meshconf_load(s, SELF, gp, gr, why, sizeof why);

	if (t == NULL)
		fail_msg("meshconf_load: %s", why);
	return t;
}

static void
test_load_and_route(void **state)
{
	(void)state;
	struct store *s = ts_must_open("route", STORE_OPEN_CREATE);
	uint64_t gp = 99, gr = 99;
	struct mesh_table *t;
	json_t *pc = peer_base(PC, FP2);

	/* empty: everything local */
	t = must_load(s, &gp, &gr);
	assert_int_equal(gp, 0);
	assert_int_equal(gr, 0);
	assert_int_equal(t->npeers, 0);
	assert_null(meshconf_route(t, "+35848000001", SELF));
	meshconf_table_free(t);

	put_rec(s, "peer", PB, peer_base(PB, FP1));
	json_object_set_new(pc, "suspended", json_true());
	put_rec(s, "peer", PC, pc);
	put_route(s, "+358", PB, false);
	put_route(s, "+35848", PC, false);
	put_route(s, "+3584812", SELF, false);		 /* local inside C's prefix */
	put_route(s, "+358401234567", PC, true);	 /* a ported number          */
	put_route(s, "+35840", SELF, false);
	put_route(s, "+4420", "http://unknown.example/", false); /* dropped */
	t = must_load(s, &gp, &gr);
	assert_int_equal(gp, 2);
	assert_int_equal(gr, 6);
	assert_int_equal(t->npeers, 2);
	assert_int_equal(t->nroutes, 5);
	/* sorted: exact first, then longest prefix first */
	assert_true(t->routes[0].exact);
	assert_string_equal(t->routes[1].prefix, "+3584812");
	assert_string_equal(t->routes[t->nroutes - 1].prefix, "+358");

	const struct mesh_peer *p;
	p = meshconf_route(t, "+35850000001", SELF); /* only +358 matches */
	assert_non_null(p);
	assert_string_equal(p->id, PB);
	p = meshconf_route(t, "+35848000001", SELF); /* longest prefix wins */
	assert_string_equal(p->id, PC);
	assert_true(p->suspended); /* still returned: the caller answers 780 */
	assert_null(meshconf_route(t, "+35848120001", SELF)); /* self route: local */
	assert_null(meshconf_route(t, "+35840111111", SELF));
	/* exact beats every prefix, even the longer self one around it */
	p = meshconf_route(t, "+358401234567", SELF);
	assert_non_null(p);
	assert_string_equal(p->id, PC);
	/* exact means the whole number only */
	assert_null(meshconf_route(t, "+3584012345678", SELF));
	assert_null(meshconf_route(t, "+35840123456", SELF));
	assert_null(meshconf_route(t, "+4420000000", SELF)); /* dropped route */
	assert_null(meshconf_route(t, "+1555000000", SELF)); /* no route */
	/* without a self id, a self route names no loaded peer: dropped at
	 * load; at lookup a route naming an unknown id finds no peer */
	assert_null(meshconf_route(NULL, "+358", SELF));

	assert_string_equal(meshconf_peer_by_id(t, PB)->id, PB);
	assert_null(meshconf_peer_by_id(t, "http://x.example/"));
	meshconf_table_free(t);
	store_close(s);
}

static void
test_load_drops_bad(void **state)
{
	(void)state;
	struct store *s = ts_must_open("bad", STORE_OPEN_CREATE);
	struct mesh_table *t;
	json_t *b = peer_base(PB, FP1);

	put_rec(s, "peer", "http://other-name.example/", peer_base(PB, FP1)); /* name != id */
	json_object_set_new(b, "url", json_string("ftp://x"));
	put_rec(s, "peer", PB, b);					  /* invalid body   */
	put_rec(s, "peer", PC, peer_base(PC, FP2));			  /* good           */
	put_rec(s, "route", "+1", J("{\"prefix\":\"+2\",\"peer\":\"" PC "\"}")); /* name != prefix */
	put_rec(s, "route", "+3", J("{\"prefix\":\"+3\",\"peer\":\"" PC "\",\"x\":1}"));
	put_route(s, "+4", PC, false);
	put_route(s, "+5", SELF, false);
	t = must_load(s, NULL, NULL);
	assert_int_equal(t->npeers, 1);
	assert_string_equal(t->peers[0].id, PC);
	assert_int_equal(t->nroutes, 2);
	meshconf_table_free(t);
	/* no self id: the self route is dropped too */
	t = meshconf_load(s, NULL, NULL, NULL, NULL, 0);
	assert_non_null(t);
	assert_int_equal(t->nroutes, 1);
	meshconf_table_free(t);
	store_close(s);
}

static void
test_load_pages(void **state)
{
	(void)state;
	struct store *s = ts_must_open("pages", STORE_OPEN_CREATE);
	struct mesh_table *t;
	char pre[32];
	const int n = 3 * MSSP_STORE_SCAN_BATCH + 7; /* several list pages */

	put_rec(s, "peer", PB, peer_base(PB, FP1));
	for (int i = 0; i < n; i++) {
		snprintf(pre, sizeof pre, "+44%05d", i);
		put_route(s, pre, PB, false);
	}
	t = must_load(s, NULL, NULL);
	assert_int_equal(t->nroutes, n);
	assert_non_null(meshconf_route(t, "+4400000123", SELF));
	snprintf(pre, sizeof pre, "+44%05d99", n - 1);
	assert_non_null(meshconf_route(t, pre, SELF)); /* the last page's route */
	assert_null(meshconf_route(t, "+4499999", SELF));
	meshconf_table_free(t);
	store_close(s);
}

static void
test_fp_and_maps(void **state)
{
	(void)state;
	struct store *s = ts_must_open("fp", STORE_OPEN_CREATE);
	struct mesh_table *t;
	json_t *b = peer_base(PB, FP1), *c = peer_base(PC, FP2);
	uint8_t fp[MESHCONF_FP_LEN];

	json_array_append_new(json_object_get(b, "cert_sha256"), json_string(FP3));
	json_object_set_new(b, "profile_map",
			    J("[{\"local\":\"http://a.example/sign\",\"peer\":\"http://b.example/s\"}]"));
	json_object_set_new(c, "profiles", J("[\"http://a.example/sign\"]"));
	put_rec(s, "peer", PB, b);
	put_rec(s, "peer", PC, c);
	t = must_load(s, NULL, NULL);

	memset(fp, 0x01, sizeof fp); /* FP3: B's second pin */
	assert_string_equal(meshconf_peer_by_fp(t, fp)->id, PB);
	for (int i = 0; i < 16; i++)
		fp[i] = (uint8_t)(0xff - 0x11 * i), fp[16 + i] = (uint8_t)(0xff - 0x11 * i);
	assert_string_equal(meshconf_peer_by_fp(t, fp)->id, PC);
	fp[31] ^= 1; /* one bit off */
	assert_null(meshconf_peer_by_fp(t, fp));
	assert_null(meshconf_peer_by_fp(NULL, fp));

	const struct mesh_peer *pb = meshconf_peer_by_id(t, PB), *pc = meshconf_peer_by_id(t, PC);
	const char *u = "http://a.example/sign";
	assert_string_equal(meshconf_map_out(pb, u), "http://b.example/s");
	assert_string_equal(meshconf_map_in(pb, "http://b.example/s"), u);
	/* no entry: the URI itself (the same pointer), both ways */
	const char *other = "http://a.example/other";
	assert_ptr_equal(meshconf_map_out(pb, other), other);
	assert_ptr_equal(meshconf_map_in(pb, u), u); /* a local URI is no peer URI */
	assert_ptr_equal(meshconf_map_out(pc, u), u);
	assert_ptr_equal(meshconf_map_out(NULL, u), u);

	/* allow-lists: B all (absent), C exactly one */
	assert_true(meshconf_peer_allows(pb, "http://any.example/x"));
	assert_true(meshconf_peer_allows(pc, u));
	assert_false(meshconf_peer_allows(pc, "http://a.example/sign2"));
	assert_false(meshconf_peer_allows(pc, "http://a.example/sig"));
	assert_false(meshconf_peer_allows(NULL, u));
	meshconf_table_free(t);
	store_close(s);
}

/* ---- the ME's operations (roles/reg.c) on these records ----------------------- */

struct fx {
	char dir[512];
	struct audit *au;
	struct store *st;
	struct reg *r;
	struct reg_err e;
	int64_t now;
};

static struct reg_actor A_ADMIN = {"admin", REG_ROLE_ADMIN, {0}};
static struct reg_actor A_ADMIN2 = {"admin2", REG_ROLE_ADMIN, {0}};
static struct reg_actor A_RA = {"ra", REG_ROLE_RA, {0}};
static struct reg_actor A_AUD = {"auditor", REG_ROLE_AUDITOR, {0}};

static void
fx_open(struct fx *f, const char *name)
{
	struct store_err se = {0};
	struct reg_err e = {0};
	char key[700];

	memset(f, 0, sizeof *f);
	memset(A_ADMIN.ra_fp, 0x11, 32);
	memset(A_ADMIN2.ra_fp, 0x22, 32);
	memset(A_RA.ra_fp, 0x33, 32);
	memset(A_AUD.ra_fp, 0x44, 32);
	snprintf(f->dir, sizeof f->dir, "%s/%s", ts_dir, name);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(key, sizeof key, "%s/audit", f->dir);
	if (audit_keygen(key, &se) != 0)
		fail_msg("audit_keygen: %s", se.detail);
	snprintf(key, sizeof key, "%s/audit/audit.key", f->dir);
	char adir[600];
	snprintf(adir, sizeof adir, "%s/audit", f->dir);
	f->au = audit_open(adir, "node1", key, &se);
	assert_non_null(f->au);
	f->st = ts_must_open(name, STORE_OPEN_CREATE);
	struct reg_conf c = {.rc_node = "node1", .rc_data_dir = f->dir, .rc_audit = f->au,
			     .rc_mssp_id = SELF};
	f->r = reg_new(&c, &e);
	if (f->r == NULL)
		fail_msg("reg_new: %s", e.msg);
	f->now = (int64_t)time(NULL) * 1000;
	assert_int_equal(reg_account_seed(f->r, f->st, "admin", REG_ROLE_ADMIN, A_ADMIN.ra_fp,
					  f->now, &e), 0);
	assert_int_equal(reg_account_seed(f->r, f->st, "admin2", REG_ROLE_ADMIN, A_ADMIN2.ra_fp,
					  f->now, &e), 0);
	assert_int_equal(reg_account_seed(f->r, f->st, "ra", REG_ROLE_RA, A_RA.ra_fp, f->now, &e),
			 0);
	assert_int_equal(reg_account_seed(f->r, f->st, "auditor", REG_ROLE_AUDITOR, A_AUD.ra_fp,
					  f->now, &e), 0);
}

static void
fx_close(struct fx *f)
{
	reg_free(f->r);
	store_close(f->st);
	audit_close(f->au);
}

static int
rcall(struct fx *f, const struct reg_actor *who, enum reg_op op, const char *arg, json_t *body,
      json_t **out)
{
	struct reg_request rq = {.rq_op = op, .rq_arg = arg, .rq_body = body};
	json_t *o = NULL;
	int rc = reg_call(f->r, f->st, who, &rq, f->now, &o, &f->e);

	json_decref(body);
	if (out)
		*out = o;
	else
		json_decref(o);
	return rc;
}

static void
expect_fail(struct fx *f, int rc, int status)
{
	if (rc != -1 || f->e.status != status)
		fail_msg("expected -1/%d, got %d/%d (%s)", status, rc, f->e.status, f->e.msg);
}

/* An admin's dual request, approved by the other admin. */
static void
approve(struct fx *f, json_t *pending)
{
	const char *id = json_string_value(json_object_get(pending, "approval"));
	json_t *o = NULL;

	assert_non_null(id);
	/* never by the requester */
	expect_fail(f, rcall(f, &A_ADMIN, REG_OP_APPROVAL_APPROVE, id, NULL, NULL), 403);
	if (rcall(f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, id, NULL, &o) < 0)
		fail_msg("approve: %d %s", f->e.status, f->e.msg);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "approved");
	json_decref(o);
	json_decref(pending);
}

/* A route change: dual control, approved by the other admin. */
static void
route_dual(struct fx *f, enum reg_op op, const char *arg, json_t *body)
{
	json_t *o = NULL;

	assert_int_equal(rcall(f, &A_ADMIN, op, arg, body, &o), REG_PENDING);
	approve(f, o);
}

/* Lines of the audit log with this action and outcome. */
static int
audit_has(struct fx *f, const char *action, const char *outcome)
{
	char path[700], line[8192], a[128], oc[64];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof path, "%s/audit/node1.log", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	snprintf(a, sizeof a, "\"action\":\"%s\"", action);
	snprintf(oc, sizeof oc, "\"outcome\":\"%s\"", outcome);
	while (fgets(line, sizeof line, fp))
		n += strstr(line, a) && strstr(line, oc);
	fclose(fp);
	return n;
}

static void
test_reg_peers(void **state)
{
	(void)state;
	struct fx f;
	json_t *o = NULL;

	fx_open(&f, "regpeers");
	/* roles: admin writes; auditor reads; an RA neither */
	expect_fail(&f, rcall(&f, &A_RA, REG_OP_PEER_LIST, NULL, NULL, NULL), 403);
	expect_fail(&f, rcall(&f, &A_AUD, REG_OP_PEER_PUT, PB, peer_base(PB, FP1), NULL), 403);
	expect_fail(&f, rcall(&f, &A_RA, REG_OP_ROUTE_PUT, "+35848",
			      J("{\"peer\":\"" PB "\"}"), NULL), 403);
	assert_int_equal(rcall(&f, &A_AUD, REG_OP_PEER_LIST, NULL, NULL, NULL), 0);
	assert_int_equal(rcall(&f, &A_AUD, REG_OP_ROUTE_LIST, NULL, NULL, NULL), 0);

	/* validation before anything: 400, audited as failed */
	json_t *bad = peer_base(PB, FP1);
	json_object_set_new(bad, "url", json_string("https://x.example/path"));
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB, bad, NULL), 400);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, NULL, J("[]"), NULL), 400);
	/* path and body name different peers */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PC, peer_base(PB, FP1), NULL), 400);
	/* a peer cannot be ourselves */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, SELF, peer_base(SELF, FP1), NULL), 409);
	/* an ME account's certificate is no peer's */
	char acct[65];
	for (int i = 0; i < 32; i++)
		snprintf(acct + 2 * i, 3, "%02x", 0x22);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB, peer_base(PB, acct), NULL), 409);

	/* create: dual control (POST form: the id in the body) */
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, NULL, peer_base(PB, FP1), &o),
			 REG_PENDING);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "pending");
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_GET, PB, NULL, NULL), 404);
	approve(&f, o);
	assert_int_equal(rcall(&f, &A_AUD, REG_OP_PEER_GET, PB, NULL, &o), 0);
	assert_string_equal(json_string_value(json_object_get(o, "url")),
			    "https://mesh.b.example:8449");
	json_decref(o);
	assert_int_equal(audit_has(&f, "peer.put", "pending"), 1);
	assert_int_equal(audit_has(&f, "peer.put", "ok"), 1);

	/* name, rate, suspended, profile_map: one admin */
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB,
			       J("{\"name\":\"Operator B\",\"rate\":5,\"suspended\":true,"
				 "\"profile_map\":[{\"local\":\"http://a.example/1\","
				 "\"peer\":\"http://b.example/1\"}]}"), &o), 0);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "Operator B");
	assert_true(json_is_true(json_object_get(o, "suspended")));
	/* the rest kept (an update names what changes) */
	assert_string_equal(json_string_value(json_object_get(o, "ca_file")),
			    "/etc/openmssp/peers/b-ca.pem");
	json_decref(o);
	/* url, cert_sha256, ca_file, profiles: dual */
	static const char *const trust[] = {
		"{\"url\":\"https://other.example\"}",
		"{\"cert_sha256\":[\"" FP3 "\"]}",
		"{\"ca_file\":\"/etc/other.pem\"}",
		"{\"profiles\":[\"http://a.example/1\"]}",
	};
	for (size_t i = 0; i < 4; i++) {
		int rc = rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB, J(trust[i]), &o);
		if (rc != REG_PENDING)
			fail_msg("%s: %d (%s)", trust[i], rc, f.e.msg);
		json_decref(o);
	}
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB,
			       J("{\"url\":\"https://other.example\"}"), &o), REG_PENDING);
	approve(&f, o);
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_GET, PB, NULL, &o), 0);
	assert_string_equal(json_string_value(json_object_get(o, "url")), "https://other.example");
	json_decref(o);
	/* the id does not change */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PB,
			      J("{\"id\":\"http://x.example/\"}"), NULL), 400);
	/* a second peer cannot pin B's certificate */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_PUT, PC, peer_base(PC, FP1), NULL), 409);

	/* routes: a configured peer or ourselves, nothing else */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_ROUTE_PUT, "+35848",
			      J("{\"peer\":\"" PC "\"}"), NULL), 409);
	assert_int_equal(audit_has(&f, "route.put", "failed"), 1);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_ROUTE_PUT, "35848",
			      J("{\"peer\":\"" PB "\"}"), NULL), 400);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_ROUTE_PUT, "+35848",
			      J("{\"prefix\":\"+35849\",\"peer\":\"" PB "\"}"), NULL), 400);
	route_dual(&f, REG_OP_ROUTE_PUT, "+35848", J("{\"peer\":\"" PB "\"}"));
	route_dual(&f, REG_OP_ROUTE_PUT, NULL, J("{\"prefix\":\"+3584812\",\"peer\":\"" SELF "\"}"));
	route_dual(&f, REG_OP_ROUTE_PUT, "+358481234567", J("{\"peer\":\"" PB "\",\"exact\":true}"));
	/* a put of an existing prefix replaces it */
	route_dual(&f, REG_OP_ROUTE_PUT, "+35848", J("{\"peer\":\"" PB "\"}"));
	assert_int_equal(audit_has(&f, "route.put", "ok"), 4);
	assert_int_equal(rcall(&f, &A_AUD, REG_OP_ROUTE_LIST, NULL, NULL, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "routes")), 3);
	json_decref(o);

	/* what the ME stored is what the AE loads */
	struct mesh_table *t = meshconf_load(f.st, SELF, NULL, NULL, NULL, 0);
	assert_non_null(t);
	assert_int_equal(t->npeers, 1);
	assert_int_equal(t->nroutes, 3);
	assert_string_equal(meshconf_route(t, "+35848000001", SELF)->id, PB);
	assert_null(meshconf_route(t, "+35848120001", SELF));
	assert_string_equal(meshconf_route(t, "+358481234567", SELF)->id, PB);
	meshconf_table_free(t);

	/* a peer that routes name cannot go */
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_DELETE, PB, NULL, NULL), 409);
	route_dual(&f, REG_OP_ROUTE_DELETE, "+35848", NULL);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_ROUTE_DELETE, "+35848", NULL, NULL), 404);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_DELETE, PB, NULL, NULL), 409);
	route_dual(&f, REG_OP_ROUTE_DELETE, "+358481234567", NULL);
	/* a self route does not hold a peer */
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_DELETE, PB, NULL, &o), REG_PENDING);
	/* a route written while the delete waits for approval: the delete
	 * is refused when it runs */
	route_dual(&f, REG_OP_ROUTE_PUT, "+4420", J("{\"peer\":\"" PB "\"}"));
	const char *aid = json_string_value(json_object_get(o, "approval"));
	expect_fail(&f, rcall(&f, &A_ADMIN2, REG_OP_APPROVAL_APPROVE, aid, NULL, NULL), 409);
	json_decref(o);
	route_dual(&f, REG_OP_ROUTE_DELETE, "+4420", NULL);
	assert_int_equal(rcall(&f, &A_ADMIN, REG_OP_PEER_DELETE, PB, NULL, &o), REG_PENDING);
	approve(&f, o);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_GET, PB, NULL, NULL), 404);
	expect_fail(&f, rcall(&f, &A_ADMIN, REG_OP_PEER_DELETE, PB, NULL, NULL), 404);
	assert_int_equal(audit_has(&f, "peer.delete", "ok"), 1);
	assert_int_equal(audit_has(&f, "route.delete", "ok"), 3);
	fx_close(&f);
}

/* ---- [mesh] in msspd.conf (roles/conf) ------------------------------------------ */

static struct mssp_conf *
conf_with(const char *name, const char *text, char *err, size_t cap)
{
	char dir[512], path[600];
	FILE *f;

	snprintf(dir, sizeof dir, "%s/%s", ts_dir, name);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof path, "%s/msspd.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return conf_load(dir, err, cap);
}

static void
test_conf_mesh(void **state)
{
	(void)state;
	char err[256] = "";
	struct mssp_conf *c;
	unsigned roles = 0;

	/* defaults: beside the AE */
	c = conf_with("conf1", "[ae]\nlisten = 127.0.0.2\nport = 10000\n", err, sizeof err);
	if (c == NULL)
		fail_msg("conf: %s", err);
	assert_string_equal(c->mesh_listen, "127.0.0.2");
	assert_int_equal(c->mesh_port, 10006);
	assert_non_null(strstr(c->mesh_cert, "/conf1/tls/server.crt"));
	assert_non_null(strstr(c->mesh_key, "/conf1/tls/server.key"));
	assert_non_null(strstr(c->mesh_client_ca, "/conf1/tls/ca.crt"));
	assert_true(c->roles & CONF_ROLE_MESH); /* in the default set */
	conf_free(c);
	/* named */
	c = conf_with("conf2", "[mesh]\nlisten = 0.0.0.0\nport = 8449\ncert = m.crt\n"
			       "key = /k/m.key\nclient_ca = peers.pem\n", err, sizeof err);
	if (c == NULL)
		fail_msg("conf: %s", err);
	assert_string_equal(c->mesh_listen, "0.0.0.0");
	assert_int_equal(c->mesh_port, 8449);
	assert_non_null(strstr(c->mesh_cert, "/conf2/m.crt"));
	assert_string_equal(c->mesh_key, "/k/m.key");
	assert_non_null(strstr(c->mesh_client_ca, "/conf2/peers.pem"));
	conf_free(c);
	assert_null(conf_with("conf3", "[mesh]\nport = 70000\n", err, sizeof err));
	assert_null(conf_with("conf4", "[mesh]\nroute = x\n", err, sizeof err));
	assert_null(conf_with("conf5", "[ae]\nport = 65530\n", err, sizeof err));
	/* the role: off by naming the others; never without the AE */
	assert_int_equal(conf_roles_parse("ae,home,afe,mesh", &roles), 0);
	assert_true(roles & CONF_ROLE_MESH);
	assert_int_equal(conf_roles_parse("ae,home,afe", &roles), 0);
	assert_false(roles & CONF_ROLE_MESH);
	assert_int_equal(conf_roles_parse("me,mesh", &roles), -1);
	assert_int_equal(conf_roles_parse("mesh", &roles), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_full_roundtrip),
		cmocka_unit_test(test_peer_defaults),
		cmocka_unit_test(test_peer_shape),
		cmocka_unit_test(test_peer_id),
		cmocka_unit_test(test_peer_name),
		cmocka_unit_test(test_peer_url),
		cmocka_unit_test(test_peer_fps),
		cmocka_unit_test(test_peer_misc),
		cmocka_unit_test(test_peer_map_rules),
		cmocka_unit_test(test_route_rules),
		cmocka_unit_test(test_load_and_route),
		cmocka_unit_test(test_load_drops_bad),
		cmocka_unit_test(test_load_pages),
		cmocka_unit_test(test_fp_and_maps),
		cmocka_unit_test(test_reg_peers),
		cmocka_unit_test(test_conf_mesh),
	};

	return cmocka_run_group_tests(tests, setup, ts_teardown);
}
