/*
 * test_store_rec.c - the store's API for the ME (issue 5), SQLite backend:
 * records (typed JSON documents with compare-and-set and a generation per
 * kind) and registry administration (identity fields, user search and
 * paging, user and device deletion, SPKI fingerprint uniqueness, counts,
 * the key scan, the users' compare-and-set writes).
 *
 * Same setup as test_store.c (teststore.h): one mkdtemp() directory, one
 * database file per test, a fixed clock, and a raw sqlite3 connection for
 * the checks that go around the store.
 */
#include "teststore.h"

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/limits.h"

#define T0 1700000000000LL
#define ALICE "+35847000001"
#define BOB "+35847000002"

/* ---- helpers -------------------------------------------------------------- */

static void
expect_err(int rc, const struct store_err *err, int status)
{
	if (rc != -1 || err->status != status)
		fail_msg("expected -1/%d, got %d/%d (%s)", status, rc, err->status, err->detail);
}

static void
user_init(struct store_user *u, const char *msisdn, const char *name)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->su_msisdn, sizeof(u->su_msisdn), "%s", msisdn);
	snprintf(u->su_name, sizeof(u->su_name), "%s", name);
	u->su_state = STORE_USER_ACTIVE;
}

static void
must_user_named(struct store *s, const char *msisdn, const char *name, const char *given,
		const char *surname, const char *id_number)
{
	struct store_err err = { 0 };
	struct store_user u;

	user_init(&u, msisdn, name);
	snprintf(u.su_given_name, sizeof(u.su_given_name), "%s", given);
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", surname);
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", id_number);
	if (store_user_put(s, &u, T0, &err) != 0)
		fail_msg("user put %s: %d %s", msisdn, err.status, err.detail);
}

static void
must_user(struct store *s, const char *msisdn)
{
	must_user_named(s, msisdn, "Test User", "", "", "");
}

static void
must_device(struct store *s, const char *id, const char *msisdn)
{
	struct store_err err = { 0 };
	struct store_device d;
	size_t i;

	memset(&d, 0, sizeof(d));
	snprintf(d.sd_device_id, sizeof(d.sd_device_id), "%s", id);
	snprintf(d.sd_msisdn, sizeof(d.sd_msisdn), "%s", msisdn);
	d.sd_auth_spki_len = 91;
	for (i = 0; i < d.sd_auth_spki_len; i++)
		d.sd_auth_spki[i] = (unsigned char)(0x30 + i);
	for (i = 0; i < sizeof(d.sd_e2e_key); i++)
		d.sd_e2e_key[i] = (unsigned char)(i * 7 + 1);
	d.sd_state = STORE_DEVICE_ACTIVE;
	if (store_device_put(s, &d, T0, &err) != 0)
		fail_msg("device put %s: %d %s", id, err.status, err.detail);
	OPENSSL_cleanse(&d, sizeof(d));
}

/* A key whose fingerprint is `fp_tag` repeated (0: unknown). */
static void
key_init(struct store_key *k, const char *id, const char *group, const char *msisdn,
	 const char *device, unsigned char fp_tag)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->sk_key_id, sizeof(k->sk_key_id), "%s", id);
	snprintf(k->sk_group, sizeof(k->sk_group), "%s", group);
	snprintf(k->sk_msisdn, sizeof(k->sk_msisdn), "%s", msisdn);
	snprintf(k->sk_device_id, sizeof(k->sk_device_id), "%s", device);
	k->sk_purpose = STORE_KEY_SIGN;
	snprintf(k->sk_profiles, sizeof(k->sk_profiles), "%s", "mss:demo:sign:loa3:app");
	k->sk_has_pin = true;
	k->sk_state = STORE_KEY_ACTIVE;
	k->sk_cert_len = 3;
	memcpy(k->sk_cert, "\x30\x01\x00", 3);
	snprintf(k->sk_cert_serial, sizeof(k->sk_cert_serial), "%s", "0a1b");
	memset(k->sk_spki_fp, fp_tag, sizeof(k->sk_spki_fp));
}

static void
must_key_at(struct store *s, const char *id, const char *group, const char *msisdn,
	    const char *device, unsigned char fp_tag, int64_t now)
{
	struct store_err err = { 0 };
	struct store_key k;

	key_init(&k, id, group, msisdn, device, fp_tag);
	if (store_key_put(s, &k, now, &err) != 0)
		fail_msg("key put %s: %d %s", id, err.status, err.detail);
}

static enum store_key_state
key_state(struct store *s, const char *id)
{
	struct store_err err = { 0 };
	struct store_key k;

	if (store_key_get(s, id, &k, &err) != 0)
		fail_msg("key get %s: %d %s", id, err.status, err.detail);
	return k.sk_state;
}

/* A record with a body (borrowed from `body`). */
static void
rec_init(struct store_rec *r, const char *kind, const char *name, const char *owner, int state,
	 const char *body)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->sr_kind, sizeof(r->sr_kind), "%s", kind);
	snprintf(r->sr_name, sizeof(r->sr_name), "%s", name);
	snprintf(r->sr_owner, sizeof(r->sr_owner), "%s", owner);
	r->sr_state = state;
	r->sr_body = (char *)body;
	r->sr_body_len = strlen(body);
}

static uint64_t
gen_of(struct store *s, const char *kind)
{
	struct store_err err = { 0 };
	uint64_t g = 99;

	if (store_rec_generation(s, kind, &g, &err) != 0)
		fail_msg("generation %s: %d %s", kind, err.status, err.detail);
	return g;
}

static void
must_put(struct store *s, const char *kind, const char *name, const char *owner, int state,
	 const char *body, uint64_t expect, int64_t now)
{
	struct store_err err = { 0 };
	struct store_rec r;

	rec_init(&r, kind, name, owner, state, body);
	if (store_rec_put(s, &r, expect, now, NULL, &err) != 0)
		fail_msg("rec put %s/%s: %d %s", kind, name, err.status, err.detail);
}

static int
setup(void **state)
{
	(void)state;
	return ts_setup("test_store_rec");
}

/* ---- records -------------------------------------------------------------- */

/* Create, compare-and-set, read, delete: every outcome of each. */
static void
test_rec_cas(void **state)
{
	struct store *s = ts_must_open("cas", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_rec r, out = { 0 }, got = { 0 };

	(void)state;
	rec_init(&r, "ap", "http://ap.example/", "", 1, "{\"name\":\"Demo AP\",\"rate\":5}");
	r.sr_expires_ms = T0 + 5000;
	r.sr_version = 77;	   /* ignored */
	r.sr_created_ms = 12345; /* ignored */
	assert_int_equal(store_rec_put(s, &r, STORE_REC_NEW, T0, &out, &err), 0);
	assert_string_equal(out.sr_kind, "ap");
	assert_string_equal(out.sr_name, "http://ap.example/");
	assert_string_equal(out.sr_owner, "");
	assert_int_equal(out.sr_state, 1);
	assert_int_equal(out.sr_version, 1);
	assert_int_equal(out.sr_created_ms, T0);
	assert_int_equal(out.sr_updated_ms, T0);
	assert_int_equal(out.sr_expires_ms, T0 + 5000);
	assert_string_equal(out.sr_body, r.sr_body);
	assert_int_equal(out.sr_body_len, strlen(r.sr_body));
	assert_ptr_not_equal(out.sr_body, r.sr_body); /* a copy */

	/* NEW on an existing record: "exists", nothing changed */
	rec_init(&r, "ap", "http://ap.example/", "", 2, "{\"x\":1}");
	expect_err(store_rec_put(s, &r, STORE_REC_NEW, T0 + 1, &out, &err), &err,
		   STORE_STATUS_CONFLICT);
	assert_string_equal(err.detail, "exists");
	assert_null(out.sr_body); /* cleared on failure */
	/* the version read: replaced, version 2, creation time kept */
	rec_init(&r, "ap", "http://ap.example/", "+35847000009", 2, "{\"name\":\"Renamed\"}");
	assert_int_equal(store_rec_put(s, &r, 1, T0 + 10, &out, &err), 0);
	assert_int_equal(out.sr_version, 2);
	assert_int_equal(out.sr_created_ms, T0);
	assert_int_equal(out.sr_updated_ms, T0 + 10);
	assert_int_equal(out.sr_expires_ms, 0);
	assert_string_equal(out.sr_owner, "+35847000009");
	assert_string_equal(out.sr_body, "{\"name\":\"Renamed\"}");
	/* a stale version: "changed" */
	expect_err(store_rec_put(s, &r, 1, T0 + 11, NULL, &err), &err, STORE_STATUS_CONFLICT);
	assert_string_equal(err.detail, "changed");
	expect_err(store_rec_put(s, &r, 3, T0 + 11, NULL, &err), &err, STORE_STATUS_CONFLICT);
	assert_string_equal(err.detail, "changed");
	/* a version for a record that is not there: "missing" */
	rec_init(&r, "ap", "http://nobody/", "", 0, "{}");
	expect_err(store_rec_put(s, &r, 1, T0 + 12, NULL, &err), &err, STORE_STATUS_CONFLICT);
	assert_string_equal(err.detail, "missing");
	expect_err(store_rec_get(s, "ap", "http://nobody/", &got, &err), &err, 101);
	/* ANY creates, then replaces */
	assert_int_equal(store_rec_put(s, &r, STORE_REC_ANY, T0 + 13, NULL, &err), 0);
	assert_int_equal(store_rec_put(s, &r, STORE_REC_ANY, T0 + 14, NULL, &err), 0);
	assert_int_equal(store_rec_get(s, "ap", "http://nobody/", &got, &err), 0);
	assert_int_equal(got.sr_version, 2);
	assert_string_equal(got.sr_body, "{}");
	/* get fills a record that holds one already without a leak (ASan) */
	assert_int_equal(store_rec_get(s, "ap", "http://ap.example/", &got, &err), 0);
	assert_int_equal(got.sr_version, 2);
	assert_string_equal(got.sr_body, "{\"name\":\"Renamed\"}");
	assert_int_equal(got.sr_state, 2);
	/* out == r: a caller refreshing its own (heap) copy */
	free(got.sr_body);
	got.sr_body = strdup("{\"name\":\"Again\"}");
	got.sr_body_len = strlen(got.sr_body);
	assert_int_equal(store_rec_put(s, &got, got.sr_version, T0 + 20, &got, &err), 0);
	assert_int_equal(got.sr_version, 3);
	assert_string_equal(got.sr_body, "{\"name\":\"Again\"}");
	/* the same kind and name in another kind is another record */
	expect_err(store_rec_get(s, "account", "http://ap.example/", &out, &err), &err, 101);
	/* lookups: a name that cannot exist is not found; NULL is a bug */
	expect_err(store_rec_get(s, "ap", "has space", &out, &err), &err, 101);
	expect_err(store_rec_get(s, "ap", "", &out, &err), &err, 101);
	expect_err(store_rec_get(s, "ap", NULL, &out, &err), &err, 900);
	expect_err(store_rec_get(s, "AP", "x", &out, &err), &err, 900);
	expect_err(store_rec_get(s, "ap", "x", NULL, &err), &err, 900);

	/* delete: a stale version, NEW (a bug), then the right one, then gone */
	expect_err(store_rec_delete(s, "ap", "http://ap.example/", 2, T0 + 30, &err), &err,
		   STORE_STATUS_CONFLICT);
	assert_string_equal(err.detail, "changed");
	expect_err(store_rec_delete(s, "ap", "http://ap.example/", STORE_REC_NEW, T0 + 30, &err),
		   &err, 900);
	assert_int_equal(store_rec_delete(s, "ap", "http://ap.example/", 3, T0 + 30, &err), 0);
	expect_err(store_rec_delete(s, "ap", "http://ap.example/", STORE_REC_ANY, T0 + 31, &err),
		   &err, 101);
	expect_err(store_rec_get(s, "ap", "http://ap.example/", &out, &err), &err, 101);
	assert_int_equal(store_rec_delete(s, "ap", "http://nobody/", STORE_REC_ANY, T0 + 32, &err),
			 0);
	expect_err(store_rec_delete(s, "ap", "bad name", STORE_REC_ANY, T0 + 32, &err), &err, 101);
	expect_err(store_rec_delete(s, "ap", "x", STORE_REC_ANY, 0, &err), &err, 900);
	/* deleted, then created again: version 1 */
	rec_init(&r, "ap", "http://ap.example/", "", 0, "{}");
	assert_int_equal(store_rec_put(s, &r, STORE_REC_NEW, T0 + 40, &out, &err), 0);
	assert_int_equal(out.sr_version, 1);
	assert_int_equal(out.sr_created_ms, T0 + 40);
	store_rec_clear(&out);
	store_rec_clear(&got);
	store_rec_clear(NULL);
	store_close(s);
}

/* The generation of a kind: 0 before any write, +1 per put and per
 * delete, in the same database transaction; refused writes bump nothing;
 * kinds are independent; another handle sees it at once. */
static void
test_rec_generation(void **state)
{
	struct store *s = ts_must_open("gen", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_rec r;
	struct store *o;
	uint64_t g;
	sqlite3 *db;

	(void)state;
	assert_int_equal(gen_of(s, "ap"), 0);
	must_put(s, "ap", "a1", "", 0, "{}", STORE_REC_NEW, T0);
	assert_int_equal(gen_of(s, "ap"), 1);
	must_put(s, "ap", "a1", "", 0, "{\"v\":2}", 1, T0);
	must_put(s, "ap", "a2", "", 0, "{}", STORE_REC_ANY, T0);
	assert_int_equal(gen_of(s, "ap"), 3);
	assert_int_equal(gen_of(s, "account"), 0);
	/* refusals: conflict, not found, invalid */
	rec_init(&r, "ap", "a1", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_NEW, T0, NULL, &err), &err,
		   STORE_STATUS_CONFLICT);
	expect_err(store_rec_put(s, &r, 9, T0, NULL, &err), &err, STORE_STATUS_CONFLICT);
	expect_err(store_rec_delete(s, "ap", "a9", STORE_REC_ANY, T0, &err), &err, 101);
	expect_err(store_rec_delete(s, "ap", "a1", 1, T0, &err), &err, STORE_STATUS_CONFLICT);
	rec_init(&r, "ap", "a3", "", 0, "[]");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	assert_int_equal(gen_of(s, "ap"), 3);
	/* another handle (another process would read the same) */
	o = ts_must_open("gen", 0);
	assert_int_equal(gen_of(o, "ap"), 3);
	assert_int_equal(store_rec_delete(o, "ap", "a1", 2, T0, &err), 0);
	assert_int_equal(gen_of(s, "ap"), 4);
	must_put(o, "account", "admin", "", 1, "{}", STORE_REC_NEW, T0);
	assert_int_equal(gen_of(s, "account"), 1);
	assert_int_equal(gen_of(s, "ap"), 4);
	store_close(o);
	/* bad arguments */
	expect_err(store_rec_generation(s, "Ap", &g, &err), &err, 900);
	expect_err(store_rec_generation(s, "", &g, &err), &err, 900);
	expect_err(store_rec_generation(s, "ap", NULL, &err), &err, 900);
	expect_err(store_rec_generation(NULL, "ap", &g, &err), &err, 900);
	store_close(s);
	/* the generation lives in the database, one row per kind */
	db = ts_raw_open("gen");
	assert_int_equal(ts_raw_count(db, "SELECT gen FROM record_gen WHERE kind = 'ap'"), 4);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM record_gen"), 2);
	sqlite3_close(db);
}

/* Every invalid record is 900 and writes nothing; the bounds are taken. */
static void
test_rec_validation(void **state)
{
	static const char *const bad_bodies[] = {
		"[]", "1", "\"s\"", "null", "{", "{}x", "{} {}", "{\"a\":1,\"a\":2}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\" 1}", "{'a':1}",
	};
	struct store *s = ts_must_open("rval", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_rec r;
	char *big;
	size_t i;
	struct store *ro;

	(void)state;
	for (i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		rec_init(&r, "ap", "n", "", 0, bad_bodies[i]);
		if (store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err) != -1 || err.status != 900)
			fail_msg("body %zu accepted", i);
	}
	/* a NUL inside the body, a length short of the text, a NULL body */
	rec_init(&r, "ap", "n", "", 0, "{\"a\":1}");
	r.sr_body = "{\"a\":\0}";
	r.sr_body_len = 7;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "n", "", 0, "{\"a\":1}");
	r.sr_body_len = 1;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	r.sr_body = NULL;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	/* kinds: upper case, a digit, a dash, empty, too long */
	rec_init(&r, "Ap", "n", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap2", "n", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "a-p", "n", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "", "n", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "n", "", 0, "{}");
	memset(r.sr_kind, 'a', sizeof(r.sr_kind)); /* not NUL-terminated */
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	/* names and owners: a space, a control, non-ASCII, empty name,
	 * not terminated */
	rec_init(&r, "ap", "a b", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "a\tb", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "\xc3\xa4", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "", "", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "n", "o w", 0, "{}");
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	rec_init(&r, "ap", "n", "", 0, "{}");
	memset(r.sr_name, 'n', sizeof(r.sr_name));
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	/* expiry, time, NULLs, read-only */
	rec_init(&r, "ap", "n", "", 0, "{}");
	r.sr_expires_ms = -1;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	r.sr_expires_ms = 0;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, 0, NULL, &err), &err, 900);
	expect_err(store_rec_put(s, NULL, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	expect_err(store_rec_put(NULL, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	ro = ts_must_open("rval", STORE_OPEN_READONLY);
	expect_err(store_rec_put(ro, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	expect_err(store_rec_delete(ro, "ap", "n", STORE_REC_ANY, T0, &err), &err, 900);
	assert_int_equal(gen_of(ro, "ap"), 0);
	store_close(ro);
	assert_int_equal(gen_of(s, "ap"), 0);

	/* the bounds: a 16-char kind with '_', a 1024-byte name and owner, a
	 * body of exactly MSSP_STORE_MAX_REC_BODY bytes (one byte more: 900),
	 * a UTF-8 body, leading white space */
	big = malloc(MSSP_STORE_MAX_REC_BODY + 2);
	assert_non_null(big);
	memset(big, ' ', MSSP_STORE_MAX_REC_BODY + 1);
	memcpy(big, "{\"k\":\"", 6);
	memset(big + 6, 'v', MSSP_STORE_MAX_REC_BODY - 8);
	memcpy(big + MSSP_STORE_MAX_REC_BODY - 2, "\"}", 2);
	big[MSSP_STORE_MAX_REC_BODY] = '\0';
	rec_init(&r, "registration_pro", "n", "", 0, big);
	assert_int_equal(strlen(r.sr_kind), MSSP_STORE_MAX_KIND);
	memset(r.sr_name, 'N', MSSP_STORE_MAX_REC_NAME);
	r.sr_name[MSSP_STORE_MAX_REC_NAME] = '\0';
	memset(r.sr_owner, 'O', MSSP_STORE_MAX_REC_NAME);
	r.sr_owner[MSSP_STORE_MAX_REC_NAME] = '\0';
	assert_int_equal(store_rec_put(s, &r, STORE_REC_NEW, T0, NULL, &err), 0);
	{
		struct store_rec got = { 0 };

		assert_int_equal(store_rec_get(s, "registration_pro", r.sr_name, &got, &err), 0);
		assert_int_equal(got.sr_body_len, MSSP_STORE_MAX_REC_BODY);
		assert_memory_equal(got.sr_body, big, MSSP_STORE_MAX_REC_BODY);
		assert_string_equal(got.sr_owner, r.sr_owner);
		store_rec_clear(&got);
	}
	big[MSSP_STORE_MAX_REC_BODY] = ' ';
	big[MSSP_STORE_MAX_REC_BODY + 1] = '\0';
	r.sr_body_len = MSSP_STORE_MAX_REC_BODY + 1;
	r.sr_body = big;
	expect_err(store_rec_put(s, &r, STORE_REC_ANY, T0, NULL, &err), &err, 900);
	free(big);
	must_put(s, "ap", "utf8", "", 0, " {\"name\":\"Pörssi \xe2\x82\xac\"}\n", STORE_REC_NEW, T0);
	assert_int_equal(gen_of(s, "ap"), 1);
	store_close(s);
}

/* Lists: name order, filters by owner and state, paging with `after`,
 * kinds apart; bad arguments. */
static void
test_rec_list(void **state)
{
	struct store *s = ts_must_open("rlist", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_rec out[MSSP_STORE_MAX_LIST + 1];
	char name[32], after[32] = "", body[64];
	size_t n, total = 0, i;
	int pages = 0;

	(void)state;
	memset(out, 0, sizeof(out));
	/* 150 jobs, names J000..J149 put in reverse; owners A (even) and
	 * B (odd); state i % 3 */
	for (i = 150; i-- > 0;) {
		snprintf(name, sizeof(name), "J%03zu", i);
		snprintf(body, sizeof(body), "{\"i\":%zu}", i);
		must_put(s, "job", name, i % 2 ? BOB : ALICE, (int)(i % 3), body, STORE_REC_NEW,
			 T0 + (int64_t)i);
	}
	must_put(s, "job", "K-no-owner", "", 0, "{}", STORE_REC_NEW, T0);
	must_put(s, "ap", "J000", "", 0, "{}", STORE_REC_NEW, T0); /* other kind */
	/* all, paged by 7 */
	for (;;) {
		assert_int_equal(store_rec_list(s, "job", NULL, -1, after[0] ? after : NULL, out, 7,
						&n, &err),
				 0);
		for (i = 0; i < n; i++) {
			if (total + i < 150) {
				snprintf(name, sizeof(name), "J%03zu", total + i);
				assert_string_equal(out[i].sr_name, name);
				snprintf(body, sizeof(body), "{\"i\":%zu}", total + i);
				assert_string_equal(out[i].sr_body, body);
			} else {
				assert_string_equal(out[i].sr_name, "K-no-owner");
			}
			assert_string_equal(out[i].sr_kind, "job");
		}
		total += n;
		pages++;
		if (n < 7)
			break;
		snprintf(after, sizeof(after), "%s", out[n - 1].sr_name);
	}
	assert_int_equal(total, 151);
	assert_int_equal(pages, 22);
	/* by owner */
	assert_int_equal(store_rec_list(s, "job", BOB, -1, NULL, out, MSSP_STORE_MAX_LIST, &n, &err),
			 0);
	assert_int_equal(n, 75);
	for (i = 0; i < n; i++)
		assert_string_equal(out[i].sr_owner, BOB);
	assert_string_equal(out[0].sr_name, "J001");
	/* "" = records without an owner */
	assert_int_equal(store_rec_list(s, "job", "", -1, NULL, out, 10, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].sr_name, "K-no-owner");
	/* by state; by owner and state; after */
	assert_int_equal(store_rec_list(s, "job", NULL, 2, NULL, out, MSSP_STORE_MAX_LIST, &n, &err),
			 0);
	assert_int_equal(n, 50);
	assert_string_equal(out[0].sr_name, "J002");
	assert_int_equal(store_rec_list(s, "job", ALICE, 0, "J050", out, MSSP_STORE_MAX_LIST, &n,
					&err),
			 0);
	/* even and multiple of 3 after 50: 54, 60, ..., 144 */
	assert_int_equal(n, 16);
	assert_string_equal(out[0].sr_name, "J054");
	assert_string_equal(out[15].sr_name, "J144");
	assert_int_equal(store_rec_list(s, "job", "+35840000000", -1, NULL, out, 5, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_rec_list(s, "nothing", NULL, -1, NULL, out, 5, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_rec_list(s, "ap", NULL, -1, NULL, out, 5, &n, &err), 0);
	assert_int_equal(n, 1);
	/* max 0: nothing, no error */
	assert_int_equal(store_rec_list(s, "job", NULL, -1, NULL, NULL, 0, &n, &err), 0);
	assert_int_equal(n, 0);
	/* bad arguments */
	expect_err(store_rec_list(s, "job", NULL, -1, NULL, out, MSSP_STORE_MAX_LIST + 1, &n, &err),
		   &err, 900);
	assert_non_null(out[0].sr_body);
	expect_err(store_rec_list(s, "Job", NULL, -1, NULL, out, 5, &n, &err), &err, 900);
	assert_null(out[0].sr_body); /* a failed list leaves nothing */
	expect_err(store_rec_list(s, NULL, NULL, -1, NULL, out, 5, &n, &err), &err, 900);
	expect_err(store_rec_list(s, "job", "a b", -1, NULL, out, 5, &n, &err), &err, 900);
	expect_err(store_rec_list(s, "job", NULL, -1, "", out, 5, &n, &err), &err, 900);
	expect_err(store_rec_list(s, "job", NULL, -1, NULL, out, 5, NULL, &err), &err, 900);
	expect_err(store_rec_list(s, "job", NULL, -1, NULL, NULL, 5, &n, &err), &err, 900);
	for (i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		store_rec_clear(&out[i]);
	store_close(s);
}

/* ---- the registry: identity, search, deletion -------------------------------- */

static void
test_user_identity(void **state)
{
	static const char *const bad_country[] = { "fi", "Fi", "F1", "F", " F", "\xc3\x84" };
	static const char *const bad_lang[] = { "f", "FI", "fi-fi", "fin-FIN", "fi_FI", "abcd",
						"fi-", "fi-F", "fi-FIN", "1a", "fi FI" };
	static const char *const good_lang[] = { "", "fi", "sv-FI", "smn", "en-GB", "smn-FI" };
	struct store *s = ts_must_open("ident", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_user u, g;
	size_t i;

	(void)state;
	user_init(&u, ALICE, "Matti Mäkinen");
	snprintf(u.su_given_name, sizeof(u.su_given_name), "%s", "Matti Juhani");
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", "Mäkinen-Åström");
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", "PNOFI-010170-999R");
	snprintf(u.su_country, sizeof(u.su_country), "%s", "FI");
	snprintf(u.su_lang, sizeof(u.su_lang), "%s", "fi");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_string_equal(g.su_name, "Matti Mäkinen");
	assert_string_equal(g.su_given_name, "Matti Juhani");
	assert_string_equal(g.su_surname, "Mäkinen-Åström");
	assert_string_equal(g.su_id_number, "PNOFI-010170-999R");
	assert_string_equal(g.su_country, "FI");
	assert_string_equal(g.su_lang, "fi");
	/* a replace writes every field (also back to "") */
	user_init(&u, ALICE, "M");
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", "id with spaces 1");
	snprintf(u.su_lang, sizeof(u.su_lang), "%s", "sv-FI");
	assert_int_equal(store_user_put(s, &u, T0 + 1, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_string_equal(g.su_given_name, "");
	assert_string_equal(g.su_surname, "");
	assert_string_equal(g.su_country, "");
	assert_string_equal(g.su_id_number, "id with spaces 1");
	assert_string_equal(g.su_lang, "sv-FI");
	assert_int_equal(g.su_created_ms, T0);
	assert_int_equal(g.su_updated_ms, T0 + 1);

	for (i = 0; i < sizeof(bad_country) / sizeof(bad_country[0]); i++) {
		user_init(&u, BOB, "B");
		snprintf(u.su_country, sizeof(u.su_country), "%s", bad_country[i]);
		if (store_user_put(s, &u, T0, &err) != -1 || err.status != 900)
			fail_msg("country %s accepted", bad_country[i]);
	}
	for (i = 0; i < sizeof(bad_lang) / sizeof(bad_lang[0]); i++) {
		user_init(&u, BOB, "B");
		snprintf(u.su_lang, sizeof(u.su_lang), "%s", bad_lang[i]);
		if (store_user_put(s, &u, T0, &err) != -1 || err.status != 900)
			fail_msg("lang %s accepted", bad_lang[i]);
	}
	user_init(&u, BOB, "B");
	memcpy(u.su_country, "FIN", 3); /* not terminated in its array */
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_given_name, sizeof(u.su_given_name), "%s", "Tab\there");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", "bad \xc3");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", "C1 \xc2\x85");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", "123\n");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_id_number, sizeof(u.su_id_number), "%s", "\xc3\xa4");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	memset(u.su_id_number, '1', sizeof(u.su_id_number));
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	expect_err(store_user_get(s, BOB, &g, &err), &err, 105); /* nothing written */

	for (i = 0; i < sizeof(good_lang) / sizeof(good_lang[0]); i++) {
		user_init(&u, BOB, "B");
		snprintf(u.su_lang, sizeof(u.su_lang), "%s", good_lang[i]);
		if (store_user_put(s, &u, T0, &err) != 0)
			fail_msg("lang %s refused: %s", good_lang[i], err.detail);
	}
	/* the longest id number and names */
	user_init(&u, BOB, "B");
	memset(u.su_id_number, '~', MSSP_STORE_MAX_ID_NUMBER);
	memset(u.su_given_name, 'g', MSSP_STORE_MAX_NAME);
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	assert_int_equal(store_user_get(s, BOB, &g, &err), 0);
	assert_int_equal(strlen(g.su_id_number), MSSP_STORE_MAX_ID_NUMBER);
	assert_int_equal(strlen(g.su_given_name), MSSP_STORE_MAX_NAME);
	store_close(s);
}

/* store_user_list: MSISDN order, prefix, literal text search (LIKE
 * metacharacters in the text match themselves), state, paging. */
static void
test_user_list(void **state)
{
	struct store *s = ts_must_open("ulist", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_user_query q;
	struct store_user *out = calloc(MSSP_STORE_MAX_LIST + 1, sizeof(*out));
	struct store_user u;
	char msisdn[32], after[MSSP_STORE_MAX_MSISDN + 1];
	size_t n, i, total;

	(void)state;
	assert_non_null(out);
	/* 120 plain users: +35840000000..119 (suspended: every fifth) */
	for (i = 120; i-- > 0;) {
		snprintf(msisdn, sizeof(msisdn), "+358400%05zu", i);
		user_init(&u, msisdn, "Plain User");
		if (i % 5 == 0)
			u.su_state = STORE_USER_SUSPENDED;
		assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	}
	must_user_named(s, "+35850000001", "Percent 100% Sure", "Anna", "Virtanen", "010101-123A");
	must_user_named(s, "+35850000002", "Percent 1000 Sure", "Anna_Liisa", "Korhonen",
			"020202-456B");
	must_user_named(s, "+35850000003", "Under_score", "Annaxliisa", "Nieminen", "030303-789C");
	must_user_named(s, "+35850000004", "Back\\slash", "Ärrä", "MÄKINEN", "040404-000D");
	must_user_named(s, "+46700000001", "Sven", "Sven", "Svensson", "SE-19700101-1234");

	/* everything, in pages of 50 */
	memset(&q, 0, sizeof(q));
	total = 0;
	after[0] = '\0';
	for (;;) {
		q.uq_after = after;
		assert_int_equal(store_user_list(s, &q, out, 50, &n, &err), 0);
		for (i = 1; i < n; i++)
			assert_true(strcmp(out[i - 1].su_msisdn, out[i].su_msisdn) < 0);
		if (n > 0)
			assert_true(after[0] == '\0' || strcmp(after, out[0].su_msisdn) < 0);
		total += n;
		if (n < 50)
			break;
		snprintf(after, sizeof(after), "%s", out[n - 1].su_msisdn);
	}
	assert_int_equal(total, 125);
	/* NULL query = everything */
	assert_int_equal(store_user_list(s, NULL, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 125);
	assert_string_equal(out[124].su_msisdn, "+46700000001");
	assert_string_equal(out[124].su_surname, "Svensson");
	/* prefix */
	memset(&q, 0, sizeof(q));
	q.uq_msisdn_prefix = "+3584000001";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 10);
	assert_string_equal(out[0].su_msisdn, "+35840000010");
	q.uq_msisdn_prefix = "+358";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 124);
	q.uq_msisdn_prefix = "+";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 125);
	q.uq_msisdn_prefix = "+35840000001"; /* a whole MSISDN is a prefix of itself */
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	/* state */
	memset(&q, 0, sizeof(q));
	q.uq_state = STORE_USER_SUSPENDED;
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 24);
	q.uq_msisdn_prefix = "+3584000000";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 2); /* 0 and 5 */
	q.uq_state = STORE_USER_ACTIVE;
	q.uq_msisdn_prefix = "";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 101);

	/* text: '%' matches a '%' only; "100%" is not a pattern for "1000" */
	memset(&q, 0, sizeof(q));
	q.uq_text = "100%";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].su_msisdn, "+35850000001");
	q.uq_text = "%";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	/* '_' matches a '_' only (not the 'x' of Annaxliisa) */
	q.uq_text = "anna_liisa";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].su_msisdn, "+35850000002");
	q.uq_text = "_";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 2); /* Anna_Liisa and Under_score */
	/* the escape character itself */
	q.uq_text = "k\\s";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].su_msisdn, "+35850000004");
	q.uq_text = "\\";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	/* case-insensitive ASCII, in name, given name, surname, id number */
	q.uq_text = "ANNA";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 3);
	q.uq_text = "virtANEN";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	q.uq_text = "789c";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].su_msisdn, "+35850000003");
	q.uq_text = "MÄKINEN"; /* non-ASCII: exact case */
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 1);
	q.uq_text = "plain user";
	q.uq_msisdn_prefix = "+3584000011";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 10);
	q.uq_after = "+35840000115";
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 4);
	q.uq_text = "nobody";
	q.uq_after = NULL;
	assert_int_equal(store_user_list(s, &q, out, MSSP_STORE_MAX_LIST, &n, &err), 0);
	assert_int_equal(n, 0);

	/* bad arguments: 900 */
	memset(&q, 0, sizeof(q));
	q.uq_msisdn_prefix = "358";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	q.uq_msisdn_prefix = "+35a";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	q.uq_msisdn_prefix = "+1234567890123456";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	memset(&q, 0, sizeof(q));
	q.uq_text = "a\tb";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	q.uq_text = "bad \xff";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	memset(&q, 0, sizeof(q));
	q.uq_state = 3;
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	memset(&q, 0, sizeof(q));
	q.uq_after = "after";
	expect_err(store_user_list(s, &q, out, 10, &n, &err), &err, 900);
	expect_err(store_user_list(s, NULL, out, MSSP_STORE_MAX_LIST + 1, &n, &err), &err, 900);
	expect_err(store_user_list(s, NULL, NULL, 10, &n, &err), &err, 900);
	expect_err(store_user_list(s, NULL, out, 10, NULL, &err), &err, 900);
	assert_int_equal(store_user_list(s, NULL, NULL, 0, &n, &err), 0);
	assert_int_equal(n, 0);
	free(out);
	store_close(s);
}

/* A user with a device, keys and a transaction: deletion waits for the
 * transaction to be final (406), then takes everything but the history. */
static void
test_user_delete(void **state)
{
	static const unsigned char hash[32] = { 1, 2, 3 };
	struct store *s = ts_must_open("udel", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx_new tn = { 0 };
	struct store_tx tx = { 0 }, hist[4];
	struct store_tx_change c = { 0 };
	struct store_counts cnt;
	struct store_device d;
	struct store_key k;
	struct store_user u;
	struct store *ro;
	size_t n;
	sqlite3 *db;

	(void)state;
	memset(hist, 0, sizeof(hist));
	must_user(s, ALICE);
	must_user(s, BOB);
	must_device(s, "dev-a1", ALICE);
	must_device(s, "dev-a2", ALICE);
	must_device(s, "dev-b", BOB);
	must_key_at(s, "ka1", "g1", ALICE, "dev-a1", 0xa1, T0);
	must_key_at(s, "ka2", "g2", ALICE, "dev-a2", 0, T0);
	must_key_at(s, "kb", "g1", BOB, "dev-b", 0xb1, T0);
	tn.tn_ap_id = "http://ap/";
	tn.tn_ap_trans_id = "D1";
	tn.tn_hash = hash;
	tn.tn_hash_len = sizeof(hash);
	tn.tn_msisdn = ALICE;
	tn.tn_key_id = "ka1";
	tn.tn_mode = STORE_MODE_SYNCH;
	tn.tn_deadline_ms = T0 + 60000;
	tn.tn_request = "{}";
	tn.tn_request_len = 2;
	assert_int_equal(store_tx_create(s, &tn, 0, T0, &tx, &err), 0);

	/* outstanding: 406, nothing deleted */
	expect_err(store_user_delete(s, ALICE, T0 + 1, &err), &err, 406);
	assert_int_equal(store_user_get(s, ALICE, &u, &err), 0);
	assert_int_equal(store_key_get(s, "ka1", &k, &err), 0);
	assert_int_equal(store_counts(s, &cnt, &err), 0);
	assert_int_equal(cnt.sc_users, 2);
	assert_int_equal(cnt.sc_devices, 3);
	assert_int_equal(cnt.sc_keys, 3);
	assert_int_equal(cnt.sc_keys_active, 3);
	assert_int_equal(cnt.sc_tx_open, 1);
	/* final: allowed */
	c.tc_status = 401;
	assert_int_equal(store_tx_transition(s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_FAILED, &c,
					     T0 + 2, NULL, &err),
			 0);
	assert_int_equal(store_user_delete(s, ALICE, T0 + 3, &err), 0);
	expect_err(store_user_get(s, ALICE, &u, &err), &err, 105);
	expect_err(store_key_get(s, "ka1", &k, &err), &err, 101);
	expect_err(store_key_get(s, "ka2", &k, &err), &err, 101);
	expect_err(store_device_get(s, "dev-a1", &d, &err), &err, 101);
	expect_err(store_user_keys(s, ALICE, &k, 1, &n, &err), &err, 105);
	/* the other user is untouched; the history stays */
	assert_int_equal(store_key_get(s, "kb", &k, &err), 0);
	assert_int_equal(store_device_get(s, "dev-b", &d, &err), 0);
	OPENSSL_cleanse(&d, sizeof(d));
	assert_int_equal(store_tx_list_user(s, ALICE, hist, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(hist[0].tx_id, tx.tx_id);
	assert_int_equal(store_counts(s, &cnt, &err), 0);
	assert_int_equal(cnt.sc_users, 1);
	assert_int_equal(cnt.sc_devices, 1);
	assert_int_equal(cnt.sc_keys, 1);
	assert_int_equal(cnt.sc_tx_open, 0);
	/* again: unknown; malformed: the same answer; bugs: 900 */
	expect_err(store_user_delete(s, ALICE, T0 + 4, &err), &err, 105);
	expect_err(store_user_delete(s, "35847000001", T0 + 4, &err), &err, 105);
	expect_err(store_user_delete(s, NULL, T0 + 4, &err), &err, 900);
	expect_err(store_user_delete(s, BOB, 0, &err), &err, 900);
	ro = ts_must_open("udel", STORE_OPEN_READONLY);
	expect_err(store_user_delete(ro, BOB, T0 + 4, &err), &err, 900);
	expect_err(store_device_delete(ro, "dev-b", T0 + 4, &err), &err, 900);
	store_close(ro);
	/* the user, the device id and the key's fingerprint are free again */
	must_user(s, ALICE);
	must_device(s, "dev-a1", ALICE);
	must_key_at(s, "ka1-new", "g1", ALICE, "dev-a1", 0xa1, T0 + 5);
	store_tx_clear(&tx);
	store_tx_clear(&hist[0]);
	store_close(s);
	db = ts_raw_open("udel");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx"), 1);
	{
		char buf[64];

		ts_raw_text(db, "PRAGMA foreign_key_check", buf, sizeof(buf));
		assert_string_equal(buf, "");
		ts_raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
		assert_string_equal(buf, "ok");
	}
	sqlite3_close(db);
}

/* A deleted device: its ACTIVE keys become DISABLED, REVOKED and DISABLED
 * ones stay; the keys stay listed (history) and cannot become ACTIVE on
 * the gone device. */
static void
test_device_delete(void **state)
{
	struct store *s = ts_must_open("ddel", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_device d[4];
	struct store_key k, keys[8];
	size_t n;
	sqlite3 *db;
	char buf[128];

	(void)state;
	must_user(s, ALICE);
	must_device(s, "dev-1", ALICE);
	must_device(s, "dev-2", ALICE);
	must_key_at(s, "k-act", "g1", ALICE, "dev-1", 1, T0);
	must_key_at(s, "k-rev", "g2", ALICE, "dev-1", 2, T0);
	must_key_at(s, "k-dis", "g3", ALICE, "dev-1", 3, T0);
	must_key_at(s, "k-other", "g1", ALICE, "dev-2", 4, T0);
	assert_int_equal(store_key_set_state(s, "k-rev", STORE_KEY_REVOKED, T0 + 1, &err), 0);
	assert_int_equal(store_key_set_state(s, "k-dis", STORE_KEY_DISABLED, T0 + 1, &err), 0);

	/* the schema refuses a device with an ACTIVE key, whoever deletes */
	db = ts_raw_open("ddel");
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM devices WHERE device_id = 'dev-1'", NULL,
					  NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_device_delete(s, "dev-1", T0 + 10, &err), 0);
	expect_err(store_device_get(s, "dev-1", &d[0], &err), &err, 101);
	assert_int_equal(store_user_devices(s, ALICE, d, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].sd_device_id, "dev-2");
	OPENSSL_cleanse(d, sizeof(d));
	assert_int_equal(store_key_get(s, "k-act", &k, &err), 0);
	assert_int_equal(k.sk_state, STORE_KEY_DISABLED);
	assert_int_equal(k.sk_updated_ms, T0 + 10);
	assert_int_equal(key_state(s, "k-rev"), STORE_KEY_REVOKED);
	assert_int_equal(store_key_get(s, "k-dis", &k, &err), 0);
	assert_int_equal(k.sk_state, STORE_KEY_DISABLED);
	assert_int_equal(k.sk_updated_ms, T0 + 1); /* untouched */
	assert_int_equal(key_state(s, "k-other"), STORE_KEY_ACTIVE);
	assert_int_equal(store_user_keys(s, ALICE, keys, 8, &n, &err), 0);
	assert_int_equal(n, 4);
	/* a key of the gone device cannot come back to ACTIVE */
	expect_err(store_key_set_state(s, "k-act", STORE_KEY_ACTIVE, T0 + 11, &err), &err, 101);
	assert_non_null(strstr(err.detail, "device"));
	assert_int_equal(store_key_set_state(s, "k-act", STORE_KEY_DISABLED, T0 + 11, &err), 0);
	key_init(&k, "k-act", "g1", ALICE, "dev-1", 1);
	expect_err(store_key_put(s, &k, T0 + 12, &err), &err, 101);
	/* ... but may move to a device of its user (with a new certificate) */
	key_init(&k, "k-act", "g9", ALICE, "dev-2", 1);
	assert_int_equal(store_key_put(s, &k, T0 + 12, &err), 0);
	assert_int_equal(key_state(s, "k-act"), STORE_KEY_ACTIVE);
	/* refusals */
	expect_err(store_device_delete(s, "dev-1", T0 + 20, &err), &err, 101);
	expect_err(store_device_delete(s, "no such", T0 + 20, &err), &err, 101);
	expect_err(store_device_delete(s, "", T0 + 20, &err), &err, 101);
	expect_err(store_device_delete(s, NULL, T0 + 20, &err), &err, 900);
	expect_err(store_device_delete(s, "dev-2", -1, &err), &err, 900);
	expect_err(store_device_delete(NULL, "dev-2", T0, &err), &err, 900);
	store_close(s);
	db = ts_raw_open("ddel");
	ts_raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
	assert_string_equal(buf, "ok");
	sqlite3_close(db);
}

/* K-07: a known SPKI fingerprint is unique across all keys of all users:
 * 407; unknown (zero) ones are not compared. */
static void
test_spki_unique(void **state)
{
	struct store *s = ts_must_open("spki", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_key k, g;
	unsigned char zero[32] = { 0 };
	sqlite3 *db;

	(void)state;
	must_user(s, ALICE);
	must_user(s, BOB);
	must_device(s, "dev-a", ALICE);
	must_device(s, "dev-b", BOB);
	must_key_at(s, "ka", "g1", ALICE, "dev-a", 0x11, T0);
	assert_int_equal(store_key_get(s, "ka", &g, &err), 0);
	key_init(&k, "x", "x", ALICE, "dev-a", 0x11);
	assert_memory_equal(g.sk_spki_fp, k.sk_spki_fp, 32);
	/* the same key again (a replace) keeps its fingerprint: fine */
	must_key_at(s, "ka", "g1", ALICE, "dev-a", 0x11, T0 + 1);
	/* another user's key, another key of the same user: 407 */
	key_init(&k, "kb", "g1", BOB, "dev-b", 0x11);
	expect_err(store_key_put(s, &k, T0 + 2, &err), &err, 407);
	key_init(&k, "ka2", "g2", ALICE, "dev-a", 0x11);
	expect_err(store_key_put(s, &k, T0 + 2, &err), &err, 407);
	expect_err(store_key_get(s, "kb", &g, &err), &err, 101);
	expect_err(store_key_get(s, "ka2", &g, &err), &err, 101);
	/* a REVOKED key still holds its public key */
	assert_int_equal(store_key_set_state(s, "ka", STORE_KEY_REVOKED, T0 + 3, &err), 0);
	key_init(&k, "kb", "g1", BOB, "dev-b", 0x11);
	expect_err(store_key_put(s, &k, T0 + 4, &err), &err, 407);
	/* unknown fingerprints: any number */
	must_key_at(s, "kz1", "g3", ALICE, "dev-a", 0, T0);
	must_key_at(s, "kz2", "g4", ALICE, "dev-a", 0, T0);
	must_key_at(s, "kz3", "g2", BOB, "dev-b", 0, T0);
	assert_int_equal(store_key_get(s, "kz1", &g, &err), 0);
	assert_memory_equal(g.sk_spki_fp, zero, 32);
	/* a key changing its fingerprint frees the old one */
	must_key_at(s, "kz1", "g3", ALICE, "dev-a", 0x22, T0 + 5);
	must_key_at(s, "kb", "g1", BOB, "dev-b", 0x33, T0 + 5);
	key_init(&k, "ka", "g1", ALICE, "dev-a", 0x44);
	k.sk_cert[2] = 9; /* a new certificate: the revocation is undone */
	assert_int_equal(store_key_put(s, &k, T0 + 6, &err), 0);
	must_key_at(s, "kb2", "g5", BOB, "dev-b", 0x11, T0 + 6);
	store_close(s);
	/* the database enforces it too */
	db = ts_raw_open("spki");
	assert_int_not_equal(sqlite3_exec(db,
					  "UPDATE keys SET spki_fp = (SELECT spki_fp FROM keys WHERE"
					  " key_id = 'kb') WHERE key_id = 'kz2'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE keys SET spki_fp = x'00' WHERE key_id = 'kz2'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM keys WHERE spki_fp IS NULL"), 2);
	sqlite3_close(db);
}

/* The key scan: every key once, in (created, key_id) order, across more
 * than one page (with equal creation times across the page boundary);
 * the callback may call the store, and may stop the scan. */
struct scan_state {
	struct store *s;
	size_t n, stop_at;
	int64_t last_ms;
	char last_id[MSSP_STORE_MAX_KEY_ID + 1];
	bool disable;
	int bad_order;
};

static int
scan_cb(void *arg, const struct store_key *k)
{
	struct scan_state *st = arg;
	struct store_err err = { 0 };

	if (st->n > 0 && (k->sk_created_ms < st->last_ms ||
			  (k->sk_created_ms == st->last_ms && strcmp(k->sk_key_id, st->last_id) <= 0)))
		st->bad_order++;
	st->last_ms = k->sk_created_ms;
	snprintf(st->last_id, sizeof(st->last_id), "%s", k->sk_key_id);
	st->n++;
	if (st->disable &&
	    store_key_set_state(st->s, k->sk_key_id, STORE_KEY_DISABLED, T0 + 100, &err) != 0)
		return 1;
	return st->stop_at != 0 && st->n >= st->stop_at;
}

static void
test_key_scan(void **state)
{
	struct store *s = ts_must_open("kscan", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct scan_state st;
	struct store_counts cnt;
	char msisdn[32], dev[32], id[32], grp[8];
	size_t u, i, nkeys = 0;

	(void)state;
	/* 20 users x 8 keys = 160 keys (2.5 pages); the first 100 created at
	 * the same millisecond, so that a page ends inside equal times */
	for (u = 0; u < 20; u++) {
		snprintf(msisdn, sizeof(msisdn), "+3584100%05zu", u);
		snprintf(dev, sizeof(dev), "dev-%zu", u);
		must_user(s, msisdn);
		must_device(s, dev, msisdn);
		for (i = 0; i < 8; i++, nkeys++) {
			snprintf(id, sizeof(id), "key-%03zu", (nkeys * 37) % 160); /* shuffled */
			snprintf(grp, sizeof(grp), "g%zu", i);
			must_key_at(s, id, grp, msisdn, dev, 0, nkeys < 100 ? T0 : T0 + (int64_t)nkeys);
		}
	}
	assert_true(nkeys > 2 * MSSP_STORE_SCAN_BATCH);
	memset(&st, 0, sizeof(st));
	st.s = s;
	assert_int_equal(store_key_scan(s, scan_cb, &st, &err), 0);
	assert_int_equal(st.n, 160);
	assert_int_equal(st.bad_order, 0);
	/* a stop inside the second page */
	memset(&st, 0, sizeof(st));
	st.stop_at = MSSP_STORE_SCAN_BATCH + 5;
	assert_int_equal(store_key_scan(s, scan_cb, &st, &err), 0);
	assert_int_equal(st.n, MSSP_STORE_SCAN_BATCH + 5);
	/* the callback writes through the same handle: each key once */
	memset(&st, 0, sizeof(st));
	st.s = s;
	st.disable = true;
	assert_int_equal(store_key_scan(s, scan_cb, &st, &err), 0);
	assert_int_equal(st.n, 160);
	assert_int_equal(st.bad_order, 0);
	assert_int_equal(store_counts(s, &cnt, &err), 0);
	assert_int_equal(cnt.sc_keys, 160);
	assert_int_equal(cnt.sc_keys_active, 0);
	assert_int_equal(cnt.sc_users, 20);
	assert_int_equal(cnt.sc_devices, 20);
	expect_err(store_key_scan(s, NULL, &st, &err), &err, 900);
	expect_err(store_key_scan(NULL, scan_cb, &st, &err), &err, 900);
	expect_err(store_counts(s, NULL, &err), &err, 900);
	store_close(s);
	/* an empty registry */
	s = ts_must_open("kscan-empty", STORE_OPEN_CREATE);
	memset(&st, 0, sizeof(st));
	assert_int_equal(store_key_scan(s, scan_cb, &st, &err), 0);
	assert_int_equal(st.n, 0);
	assert_int_equal(store_counts(s, &cnt, &err), 0);
	assert_int_equal(cnt.sc_users + cnt.sc_keys + cnt.sc_devices + cnt.sc_tx_open, 0);
	store_close(s);
}


/* store_user_update / store_user_set_state: compare-and-set on
 * updated_ms (which moves on every write, also within one millisecond),
 * never an insert, each writing only its own fields. */
static void
test_user_cas(void **state)
{
	struct store *s = ts_must_open("ucas", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_user u, g;
	int64_t v1, v2;

	(void)state;
	must_user_named(s, ALICE, "Anna", "Anna", "Muster", "X-1");
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	v1 = g.su_updated_ms;
	assert_int_equal(v1, T0);
	/* the state only: identity untouched; the version moves although
	 * the clock did not (same now_ms) */
	assert_int_equal(store_user_set_state(s, ALICE, STORE_USER_SUSPENDED, v1, T0, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_int_equal(g.su_state, STORE_USER_SUSPENDED);
	assert_string_equal(g.su_surname, "Muster");
	v2 = g.su_updated_ms;
	assert_int_equal(v2, T0 + 1);
	/* a stale version: refused, nothing written */
	expect_err(store_user_set_state(s, ALICE, STORE_USER_ACTIVE, v1, T0 + 5, &err), &err,
		   STORE_STATUS_CONFLICT);
	u = g;
	snprintf(u.su_surname, sizeof(u.su_surname), "%s", "Meier");
	expect_err(store_user_update(s, &u, v1, T0 + 5, &err), &err, STORE_STATUS_CONFLICT);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_int_equal(g.su_state, STORE_USER_SUSPENDED);
	assert_string_equal(g.su_surname, "Muster");
	assert_int_equal(g.su_updated_ms, v2);
	/* the identity only: the state in the record is ignored */
	u.su_state = STORE_USER_ACTIVE;
	assert_int_equal(store_user_update(s, &u, v2, T0 + 10, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_int_equal(g.su_state, STORE_USER_SUSPENDED);
	assert_string_equal(g.su_surname, "Meier");
	assert_string_equal(g.su_given_name, "Anna");
	assert_int_equal(g.su_updated_ms, T0 + 10);
	assert_int_equal(g.su_created_ms, T0);
	/* a clock behind the last write: the version still moves forward */
	assert_int_equal(store_user_set_state(s, ALICE, STORE_USER_ACTIVE, STORE_USER_ANY, T0,
					      &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_int_equal(g.su_updated_ms, T0 + 11);
	/* store_user_put moves it the same way */
	user_init(&u, ALICE, "Anna");
	assert_int_equal(store_user_put(s, &u, T0 + 11, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &g, &err), 0);
	assert_int_equal(g.su_updated_ms, T0 + 12);
	/* never an insert: a deleted (or unknown) user stays away */
	assert_int_equal(store_user_delete(s, ALICE, T0 + 20, &err), 0);
	expect_err(store_user_update(s, &u, STORE_USER_ANY, T0 + 21, &err), &err, 105);
	expect_err(store_user_set_state(s, ALICE, STORE_USER_SUSPENDED, STORE_USER_ANY, T0 + 21,
					&err), &err, 105);
	expect_err(store_user_get(s, ALICE, &g, &err), &err, 105);
	expect_err(store_user_set_state(s, "bogus", STORE_USER_ACTIVE, 0, T0, &err), &err, 105);
	/* caller bugs */
	must_user(s, BOB);
	expect_err(store_user_set_state(s, BOB, (enum store_user_state)7, 0, T0, &err), &err, 900);
	expect_err(store_user_set_state(s, BOB, STORE_USER_ACTIVE, -1, T0, &err), &err, 900);
	expect_err(store_user_set_state(s, NULL, STORE_USER_ACTIVE, 0, T0, &err), &err, 900);
	expect_err(store_user_update(s, NULL, 0, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	snprintf(u.su_lang, sizeof(u.su_lang), "%s", "EN");
	expect_err(store_user_update(s, &u, 0, T0, &err), &err, 900);
	user_init(&u, BOB, "B");
	u.su_state = (enum store_user_state)0; /* not written: not checked */
	assert_int_equal(store_user_update(s, &u, 0, T0 + 1, &err), 0);
	store_close(s);
	/* a read-only handle */
	s = ts_must_open("ucas", STORE_OPEN_READONLY);
	expect_err(store_user_set_state(s, BOB, STORE_USER_ACTIVE, 0, T0 + 2, &err), &err, 900);
	expect_err(store_user_update(s, &u, 0, T0 + 2, &err), &err, 900);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rec_cas),
		cmocka_unit_test(test_rec_generation),
		cmocka_unit_test(test_rec_validation),
		cmocka_unit_test(test_rec_list),
		cmocka_unit_test(test_user_identity),
		cmocka_unit_test(test_user_list),
		cmocka_unit_test(test_user_delete),
		cmocka_unit_test(test_device_delete),
		cmocka_unit_test(test_spki_unique),
		cmocka_unit_test(test_key_scan),
		cmocka_unit_test(test_user_cas),
	};

	return cmocka_run_group_tests(tests, setup, ts_teardown);
}
