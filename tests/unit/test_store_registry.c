/*
 * test_store_registry.c - the user registry of the store (users, devices,
 * keys; schema version 2, and 3 for issue 5), SQLite backend.
 *
 * Kept apart from test_store.c (transactions) because the registry is its
 * own part of store.h; the setup is the same (teststore.h): one mkdtemp()
 * directory, one database file per test, a fixed clock, and a raw sqlite3
 * connection for the checks that go around the store (schema, constraints,
 * row counts).
 * docs/internals/store.md lists what each test covers.
 */
#include "teststore.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/limits.h"

#define T0 1700000000000LL
#define ALICE "+35847000001"
#define BOB "+35847000002"

/* ---- helpers -------------------------------------------------------------- */

/* With foreign keys enforced, as the store runs its own connections. */
static sqlite3 *
raw_open(const char *name)
{
	sqlite3 *db = ts_raw_open(name);

	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static long
count_in(const char *name, const char *sql)
{
	sqlite3 *db = raw_open(name);
	long n = ts_raw_count(db, sql);

	sqlite3_close(db);
	return n;
}

static void
user_init(struct store_user *u, const char *msisdn, const char *name)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->su_msisdn, sizeof(u->su_msisdn), "%s", msisdn);
	snprintf(u->su_name, sizeof(u->su_name), "%s", name);
	u->su_state = STORE_USER_ACTIVE;
}

/* A device with recognisable bytes derived from `tag`. */
static void
device_init(struct store_device *d, const char *id, const char *msisdn, unsigned char tag)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	snprintf(d->sd_device_id, sizeof(d->sd_device_id), "%s", id);
	snprintf(d->sd_msisdn, sizeof(d->sd_msisdn), "%s", msisdn);
	d->sd_auth_spki_len = 91;
	for (i = 0; i < d->sd_auth_spki_len; i++)
		d->sd_auth_spki[i] = (unsigned char)(tag + i);
	d->sd_auth_spki[0] = 0x30; /* shape only: the store does not parse it */
	for (i = 0; i < sizeof(d->sd_e2e_key); i++)
		d->sd_e2e_key[i] = (unsigned char)(tag ^ (i * 7 + 1));
	snprintf(d->sd_push_token, sizeof(d->sd_push_token), "push-%s-%u", id, tag);
	d->sd_state = STORE_DEVICE_ACTIVE;
}

static void
key_init(struct store_key *k, const char *id, const char *group, const char *msisdn,
	 const char *device)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->sk_key_id, sizeof(k->sk_key_id), "%s", id);
	snprintf(k->sk_group, sizeof(k->sk_group), "%s", group);
	snprintf(k->sk_msisdn, sizeof(k->sk_msisdn), "%s", msisdn);
	snprintf(k->sk_device_id, sizeof(k->sk_device_id), "%s", device);
	k->sk_purpose = STORE_KEY_SIGN;
	snprintf(k->sk_profiles, sizeof(k->sk_profiles), "%s",
		 "mss:demo:sign:loa3:app mss::sign:loa3");
	k->sk_has_pin = true;
	k->sk_state = STORE_KEY_ACTIVE;
	k->sk_cert_len = 700;
	assert_int_equal(RAND_bytes(k->sk_cert, (int)k->sk_cert_len), 1);
	k->sk_cert[0] = 0x30;
	snprintf(k->sk_cert_serial, sizeof(k->sk_cert_serial), "%s", "0a1B2c3D4e5F");
}

static void
must_user(struct store *s, const char *msisdn)
{
	struct store_err err = { 0 };
	struct store_user u;

	user_init(&u, msisdn, "Test User");
	if (store_user_put(s, &u, T0, &err) != 0)
		fail_msg("user put %s: %d %s", msisdn, err.status, err.detail);
}

static void
must_device(struct store *s, const char *id, const char *msisdn, int64_t now)
{
	struct store_err err = { 0 };
	struct store_device d;

	device_init(&d, id, msisdn, 0x40);
	if (store_device_put(s, &d, now, &err) != 0)
		fail_msg("device put %s: %d %s", id, err.status, err.detail);
	OPENSSL_cleanse(&d, sizeof(d));
}

static void
must_key(struct store *s, const char *id, const char *group, const char *msisdn,
	 const char *device, int64_t now)
{
	struct store_err err = { 0 };
	struct store_key k;

	key_init(&k, id, group, msisdn, device);
	if (store_key_put(s, &k, now, &err) != 0)
		fail_msg("key put %s: %d %s", id, err.status, err.detail);
}

static void
expect_err(int rc, const struct store_err *err, int status)
{
	if (rc != -1 || err->status != status)
		fail_msg("expected -1/%d, got %d/%d (%s)", status, rc, err->status, err->detail);
}

static void
assert_device_equal(const struct store_device *a, const struct store_device *b)
{
	assert_string_equal(a->sd_device_id, b->sd_device_id);
	assert_string_equal(a->sd_msisdn, b->sd_msisdn);
	assert_int_equal(a->sd_auth_spki_len, b->sd_auth_spki_len);
	assert_memory_equal(a->sd_auth_spki, b->sd_auth_spki, a->sd_auth_spki_len);
	assert_memory_equal(a->sd_e2e_key, b->sd_e2e_key, sizeof(a->sd_e2e_key));
	assert_string_equal(a->sd_push_token, b->sd_push_token);
	assert_int_equal(a->sd_state, b->sd_state);
}

static void
assert_key_equal(const struct store_key *a, const struct store_key *b)
{
	assert_string_equal(a->sk_key_id, b->sk_key_id);
	assert_string_equal(a->sk_group, b->sk_group);
	assert_string_equal(a->sk_msisdn, b->sk_msisdn);
	assert_string_equal(a->sk_device_id, b->sk_device_id);
	assert_int_equal(a->sk_purpose, b->sk_purpose);
	assert_string_equal(a->sk_profiles, b->sk_profiles);
	assert_int_equal(a->sk_has_pin, b->sk_has_pin);
	assert_int_equal(a->sk_state, b->sk_state);
	assert_int_equal(a->sk_cert_len, b->sk_cert_len);
	assert_memory_equal(a->sk_cert, b->sk_cert, a->sk_cert_len);
	assert_string_equal(a->sk_cert_serial, b->sk_cert_serial);
}

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] != 0)
			return false;
	return true;
}

static int
setup(void **state)
{
	(void)state;
	return ts_setup("test_store_registry");
}

/* ---- tests ---------------------------------------------------------------- */

/* Version 2 and its rules, tried with raw SQL around the store. */
static void
test_reg_schema(void **state)
{
	struct store *s;
	char buf[4096];
	sqlite3 *db;

	(void)state;
	s = ts_must_open("rschema", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_user(s, BOB);
	must_device(s, "dev-a", ALICE, T0);
	must_device(s, "dev-b", BOB, T0);
	must_key(s, "k1", "g1", ALICE, "dev-a", T0);
	store_close(s);

	db = raw_open("rschema");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2,3,4");
	ts_raw_text(db, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema WHERE"
		     " type = 'table' AND name IN ('users','devices','keys') AND sql LIKE"
		     " '%STRICT' ORDER BY name)",
		 buf, sizeof(buf));
	assert_string_equal(buf, "devices,keys,users");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name ="
				       " 'keys_by_user' AND sql LIKE '%(msisdn, created_ms)%'"),
			 1);
	/* the channel key is a 32-byte BLOB (a secret at rest, store.md) */
	ts_raw_text(db, "SELECT typeof(e2e_key) || length(e2e_key) FROM devices WHERE device_id ="
		     " 'dev-a'",
		 buf, sizeof(buf));
	assert_string_equal(buf, "blob32");
	/* a device of an unknown user (foreign key) */
	assert_int_not_equal(sqlite3_exec(db,
					  "INSERT INTO devices VALUES ('x', '+35840999999', x'30',"
					  " zeroblob(32), NULL, 1, 0, 0)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* a key on another user's device (trigger keys_on_own_device) */
	assert_int_not_equal(sqlite3_exec(db,
					  "INSERT INTO keys VALUES ('k9', 'g9', '" BOB "', 'dev-a',"
					  " 2, 'p', 1, 1, NULL, NULL, 0, 0, NULL)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* a channel key that is not 32 bytes; a malformed MSISDN; a state */
	assert_int_not_equal(sqlite3_exec(db,
					  "INSERT INTO devices VALUES ('y', '" ALICE "', x'30',"
					  " zeroblob(16), NULL, 1, 0, 0)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO users VALUES ('35840999', 1, NULL, 0, 0,"
					      " NULL, NULL, NULL, NULL, NULL)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO users VALUES ('+3584099', 3, NULL, 0, 0,"
					      " NULL, NULL, NULL, NULL, NULL)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* records never move to another user */
	assert_int_not_equal(sqlite3_exec(db, "UPDATE devices SET msisdn = '" BOB "'"
					      " WHERE device_id = 'dev-a'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* a second key in the same group of a device */
	assert_int_not_equal(sqlite3_exec(db,
					  "INSERT INTO keys VALUES ('k2', 'g1', '" ALICE "', 'dev-a',"
					  " 2, 'p', 1, 1, NULL, NULL, 0, 0, NULL)",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* a revoked key comes back only with another certificate */
	assert_int_equal(sqlite3_exec(db, "UPDATE keys SET state = 2 WHERE key_id = 'k1'", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE keys SET state = 1 WHERE key_id = 'k1'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE keys SET state = 1, cert = x'3001' WHERE key_id ="
					  " 'k1'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM devices"), 2);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM keys"), 1);
	ts_raw_text(db, "PRAGMA foreign_key_check", buf, sizeof(buf));
	assert_string_equal(buf, "");
	sqlite3_close(db);
}

/* Every field of every record, there and back. */
static void
test_reg_round_trip(void **state)
{
	struct store_err err = { 0 };
	struct store_user u, gu;
	struct store_device d, gd;
	struct store_key k, gk;
	struct store *s;

	(void)state;
	s = ts_must_open("rtrip", STORE_OPEN_CREATE);
	user_init(&u, ALICE, "Matti Mäkinen");
	u.su_state = STORE_USER_SUSPENDED;
	u.su_created_ms = 42; /* ignored: the store sets the times */
	u.su_updated_ms = 43;
	assert_int_equal(store_user_put(s, &u, T0 + 5, &err), 0);
	memset(&gu, 0x5a, sizeof(gu));
	assert_int_equal(store_user_get(s, ALICE, &gu, &err), 0);
	assert_string_equal(gu.su_msisdn, ALICE);
	assert_string_equal(gu.su_name, "Matti Mäkinen");
	assert_int_equal(gu.su_state, STORE_USER_SUSPENDED);
	assert_int_equal(gu.su_created_ms, T0 + 5);
	assert_int_equal(gu.su_updated_ms, T0 + 5);

	device_init(&d, "dev:A_1.x@y+z-", ALICE, 0x11);
	d.sd_auth_spki_len = MSSP_STORE_MAX_SPKI; /* the largest */
	memset(d.sd_auth_spki + 91, 0xee, MSSP_STORE_MAX_SPKI - 91);
	d.sd_state = STORE_DEVICE_DISABLED;
	d.sd_created_ms = 7;
	assert_int_equal(store_device_put(s, &d, T0 + 6, &err), 0);
	memset(&gd, 0x5a, sizeof(gd));
	assert_int_equal(store_device_get(s, d.sd_device_id, &gd, &err), 0);
	assert_device_equal(&gd, &d);
	assert_int_equal(gd.sd_created_ms, T0 + 6);

	key_init(&k, "key/ignored", "grp", ALICE, d.sd_device_id);
	snprintf(k.sk_key_id, sizeof(k.sk_key_id), "%s", "urn:key:alice.sign-1");
	k.sk_purpose = STORE_KEY_AUTHN;
	k.sk_has_pin = false;
	k.sk_state = STORE_KEY_DISABLED;
	k.sk_cert_len = MSSP_STORE_MAX_CERT;
	assert_int_equal(RAND_bytes(k.sk_cert, MSSP_STORE_MAX_CERT), 1);
	k.sk_created_ms = 1;
	assert_int_equal(store_key_put(s, &k, T0 + 7, &err), 0);
	memset(&gk, 0x5a, sizeof(gk));
	assert_int_equal(store_key_get(s, k.sk_key_id, &gk, &err), 0);
	assert_key_equal(&gk, &k);
	assert_int_equal(gk.sk_created_ms, T0 + 7);
	assert_int_equal(gk.sk_updated_ms, T0 + 7);

	/* the optional fields empty: they come back empty */
	user_init(&u, BOB, "");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	assert_int_equal(store_user_get(s, BOB, &gu, &err), 0);
	assert_string_equal(gu.su_name, "");
	assert_int_equal(gu.su_state, STORE_USER_ACTIVE);
	device_init(&d, "dev-b", BOB, 0x22);
	d.sd_push_token[0] = '\0';
	assert_int_equal(store_device_put(s, &d, T0, &err), 0);
	assert_int_equal(store_device_get(s, "dev-b", &gd, &err), 0);
	assert_device_equal(&gd, &d);
	assert_string_equal(gd.sd_push_token, "");
	key_init(&k, "kb", "g", BOB, "dev-b");
	k.sk_cert_len = 0;
	k.sk_cert_serial[0] = '\0';
	snprintf(k.sk_profiles, sizeof(k.sk_profiles), "%s", "mss::authn:loa2");
	assert_int_equal(store_key_put(s, &k, T0, &err), 0);
	assert_int_equal(store_key_get(s, "kb", &gk, &err), 0);
	assert_key_equal(&gk, &k);
	assert_int_equal(gk.sk_cert_len, 0);
	assert_string_equal(gk.sk_cert_serial, "");

	OPENSSL_cleanse(&d, sizeof(d));
	OPENSSL_cleanse(&gd, sizeof(gd));
	store_close(s);
}

/* A put on an existing primary key replaces the record in place: the
 * creation time (and the key's place in the list) stays. */
static void
test_reg_replace(void **state)
{
	struct store_err err = { 0 };
	struct store_user u, gu;
	struct store_device d, gd;
	struct store_key k, gk, list[MSSP_STORE_MAX_USER_KEYS];
	struct store *s;
	size_t n;

	(void)state;
	s = ts_must_open("replace", STORE_OPEN_CREATE);
	user_init(&u, ALICE, "Old Name");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	user_init(&u, ALICE, "New Name");
	u.su_state = STORE_USER_SUSPENDED;
	assert_int_equal(store_user_put(s, &u, T0 + 100, &err), 0);
	assert_int_equal(store_user_get(s, ALICE, &gu, &err), 0);
	assert_string_equal(gu.su_name, "New Name");
	assert_int_equal(gu.su_state, STORE_USER_SUSPENDED);
	assert_int_equal(gu.su_created_ms, T0);
	assert_int_equal(gu.su_updated_ms, T0 + 100);

	must_device(s, "dev-a", ALICE, T0);
	must_device(s, "dev-2", ALICE, T0 + 1);
	must_key(s, "k1", "g1", ALICE, "dev-a", T0 + 1);
	must_key(s, "k2", "g2", ALICE, "dev-a", T0 + 2);
	device_init(&d, "dev-a", ALICE, 0x99); /* a new device key and channel key */
	d.sd_state = STORE_DEVICE_DISABLED;
	assert_int_equal(store_device_put(s, &d, T0 + 200, &err), 0);
	assert_int_equal(store_device_get(s, "dev-a", &gd, &err), 0);
	assert_device_equal(&gd, &d);
	assert_int_equal(gd.sd_created_ms, T0);
	/* its keys are still there (a replace is not delete + insert) */
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);

	key_init(&k, "k1", "g7", ALICE, "dev-2"); /* another group and device */
	k.sk_purpose = STORE_KEY_AUTHN;
	k.sk_has_pin = false;
	snprintf(k.sk_profiles, sizeof(k.sk_profiles), "%s", "mss::authn:loa2");
	snprintf(k.sk_cert_serial, sizeof(k.sk_cert_serial), "%s", "ff");
	assert_int_equal(store_key_put(s, &k, T0 + 300, &err), 0);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_key_equal(&gk, &k);
	assert_int_equal(gk.sk_created_ms, T0 + 1);
	assert_int_equal(gk.sk_updated_ms, T0 + 300);
	assert_int_equal(store_user_keys(s, ALICE, list, MSSP_STORE_MAX_USER_KEYS, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].sk_key_id, "k1"); /* still first */
	assert_string_equal(list[1].sk_key_id, "k2");
	store_close(s);
	assert_int_equal(count_in("replace", "SELECT count(*) FROM users"), 1);
	assert_int_equal(count_in("replace", "SELECT count(*) FROM devices"), 2);
	assert_int_equal(count_in("replace", "SELECT count(*) FROM keys"), 2);
	OPENSSL_cleanse(&d, sizeof(d));
	OPENSSL_cleanse(&gd, sizeof(gd));
}

/* The documented not-found and refusal codes; a refusal writes nothing. */
static void
test_reg_refusals(void **state)
{
	struct store_err err = { 0 };
	struct store_user gu;
	struct store_device d, gd, dl[MSSP_STORE_MAX_USER_DEVICES];
	struct store_key k, gk, kl[MSSP_STORE_MAX_USER_KEYS];
	struct store *s;
	size_t n = 99;

	(void)state;
	s = ts_must_open("refuse", STORE_OPEN_CREATE);
	/* unknown user: 105, also for a malformed MSISDN; out is zeroed */
	memset(&gu, 0x5a, sizeof(gu));
	expect_err(store_user_get(s, ALICE, &gu, &err), &err, 105);
	assert_true(all_zero(&gu, sizeof(gu)));
	expect_err(store_user_get(s, "not-an-msisdn", &gu, &err), &err, 105);
	expect_err(store_user_keys(s, ALICE, kl, MSSP_STORE_MAX_USER_KEYS, &n, &err), &err, 105);
	assert_int_equal(n, 0);
	expect_err(store_user_devices(s, ALICE, dl, MSSP_STORE_MAX_USER_DEVICES, &n, &err), &err,
		   105);
	/* device / key of an unknown user: 101 */
	device_init(&d, "dev-a", ALICE, 1);
	expect_err(store_device_put(s, &d, T0, &err), &err, 101);
	key_init(&k, "k1", "g1", ALICE, "dev-a");
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);

	must_user(s, ALICE);
	must_user(s, BOB);
	/* a known user without records: 0 and none */
	n = 99;
	assert_int_equal(store_user_keys(s, ALICE, kl, MSSP_STORE_MAX_USER_KEYS, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_user_devices(s, ALICE, dl, 1, &n, &err), 0);
	assert_int_equal(n, 0);
	/* a key whose device does not exist */
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);
	must_device(s, "dev-a", ALICE, T0);
	must_device(s, "dev-b", BOB, T0);
	/* a key on another user's device */
	key_init(&k, "k1", "g1", ALICE, "dev-b");
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);
	must_key(s, "k1", "g1", ALICE, "dev-a", T0);
	/* a device or key put under another user (they never move) */
	device_init(&d, "dev-a", BOB, 2);
	expect_err(store_device_put(s, &d, T0, &err), &err, 101);
	key_init(&k, "k1", "g1", BOB, "dev-b");
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);
	/* a second key in a group of the device */
	key_init(&k, "k2", "g1", ALICE, "dev-a");
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);
	/* unknown device / key: 101; out zeroed (wiped) */
	memset(&gd, 0x5a, sizeof(gd));
	expect_err(store_device_get(s, "dev-zz", &gd, &err), &err, 101);
	assert_true(all_zero(&gd, sizeof(gd)));
	expect_err(store_device_get(s, "bad id", &gd, &err), &err, 101);
	memset(&gk, 0x5a, sizeof(gk));
	expect_err(store_key_get(s, "k-zz", &gk, &err), &err, 101);
	assert_true(all_zero(&gk, sizeof(gk)));
	expect_err(store_key_set_state(s, "k-zz", STORE_KEY_REVOKED, T0, &err), &err, 101);
	/* nothing of the refused puts was written, the first ones unchanged */
	assert_int_equal(store_device_get(s, "dev-a", &gd, &err), 0);
	assert_string_equal(gd.sd_msisdn, ALICE);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_string_equal(gk.sk_msisdn, ALICE);
	assert_string_equal(gk.sk_device_id, "dev-a");
	store_close(s);
	assert_int_equal(count_in("refuse", "SELECT count(*) FROM devices"), 2);
	assert_int_equal(count_in("refuse", "SELECT count(*) FROM keys"), 1);
	OPENSSL_cleanse(&d, sizeof(d));
	OPENSSL_cleanse(&gd, sizeof(gd));
}

/* Per-user caps: the next new record is 101, a replace is not. */
static void
test_reg_caps(void **state)
{
	struct store_err err = { 0 };
	struct store_device d;
	struct store_key k;
	struct store *s;
	char id[32], grp[32];
	int i;

	(void)state;
	s = ts_must_open("caps", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_user(s, BOB);
	for (i = 0; i < MSSP_STORE_MAX_USER_DEVICES; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		must_device(s, id, ALICE, T0 + i);
	}
	device_init(&d, "dev-extra", ALICE, 3);
	expect_err(store_device_put(s, &d, T0, &err), &err, 101);
	assert_non_null(strstr(err.detail, "devices already"));
	device_init(&d, "dev-0", ALICE, 4); /* a replace is not a new one */
	assert_int_equal(store_device_put(s, &d, T0 + 50, &err), 0);
	must_device(s, "dev-bob", BOB, T0); /* the cap is per user */

	for (i = 0; i < MSSP_STORE_MAX_USER_KEYS; i++) {
		snprintf(id, sizeof(id), "k-%d", i);
		snprintf(grp, sizeof(grp), "g-%d", i);
		must_key(s, id, grp, ALICE, i % 2 ? "dev-1" : "dev-0", T0 + i);
	}
	key_init(&k, "k-extra", "g-extra", ALICE, "dev-2");
	expect_err(store_key_put(s, &k, T0, &err), &err, 101);
	assert_non_null(strstr(err.detail, "keys already"));
	key_init(&k, "k-3", "g-3", ALICE, "dev-3"); /* replace: moves to dev-3 */
	assert_int_equal(store_key_put(s, &k, T0 + 60, &err), 0);
	must_key(s, "k-bob", "g", BOB, "dev-bob", T0);
	store_close(s);
	assert_int_equal(count_in("caps", "SELECT count(*) FROM devices WHERE msisdn = '" ALICE "'"),
			 MSSP_STORE_MAX_USER_DEVICES);
	assert_int_equal(count_in("caps", "SELECT count(*) FROM keys WHERE msisdn = '" ALICE "'"),
			 MSSP_STORE_MAX_USER_KEYS);
	OPENSSL_cleanse(&d, sizeof(d));
}

/* Two handles (two "nodes") add keys to one user at the same time: the
 * cap is checked in the inserting transaction, so exactly the cap wins. */
struct racer {
	struct store *s;
	pthread_barrier_t *bar;
	int which;
	int ok, refused, other;
};

static void *
racer_run(void *arg)
{
	struct racer *r = arg;
	struct store_err err;
	struct store_key k;
	char id[32];
	int i;

	pthread_barrier_wait(r->bar);
	for (i = 0; i < MSSP_STORE_MAX_USER_KEYS; i++) {
		snprintf(id, sizeof(id), "r%d-%d", r->which, i);
		key_init(&k, id, id, ALICE, "dev-a");
		memset(&err, 0, sizeof(err));
		if (store_key_put(r->s, &k, T0 + i, &err) == 0)
			r->ok++;
		else if (err.status == 101)
			r->refused++;
		else
			r->other++;
	}
	return NULL;
}

static void
test_reg_caps_race(void **state)
{
	struct store_err err = { 0 };
	pthread_barrier_t bar;
	struct racer r[2];
	pthread_t th[2];
	struct store *s;
	int i, round;

	(void)state;
	s = ts_must_open("race", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_device(s, "dev-a", ALICE, T0);
	for (round = 0; round < 5; round++) {
		sqlite3 *db = raw_open("race");

		assert_int_equal(sqlite3_exec(db, "DELETE FROM keys", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		pthread_barrier_init(&bar, NULL, 2);
		for (i = 0; i < 2; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].s = store_clone(s, &err);
			assert_non_null(r[i].s);
			r[i].bar = &bar;
			r[i].which = i;
			assert_int_equal(pthread_create(&th[i], NULL, racer_run, &r[i]), 0);
		}
		for (i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			store_close(r[i].s);
		}
		pthread_barrier_destroy(&bar);
		assert_int_equal(r[0].other + r[1].other, 0);
		assert_int_equal(r[0].ok + r[1].ok, MSSP_STORE_MAX_USER_KEYS);
		assert_int_equal(r[0].refused + r[1].refused, MSSP_STORE_MAX_USER_KEYS);
		assert_int_equal(count_in("race", "SELECT count(*) FROM keys"),
				 MSSP_STORE_MAX_USER_KEYS);
	}
	store_close(s);
}

/* store_user_keys / _devices: creation order (not id order; equal times
 * in insertion order), at most `max`. */
static void
test_reg_order(void **state)
{
	static const char *const want[] = { "zz-first", "aa-second", "mm-third", "bb-tie-1",
					    "cc-tie-2", "00-tie-3" };
	struct store_err err = { 0 };
	struct store_key kl[MSSP_STORE_MAX_USER_KEYS];
	struct store_device dl[MSSP_STORE_MAX_USER_DEVICES];
	struct store *s;
	size_t n, i;

	(void)state;
	s = ts_must_open("order", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_user(s, BOB);
	must_device(s, "d-late", ALICE, T0 + 50);
	must_device(s, "d-early", ALICE, T0 + 10);
	must_device(s, "d-bob", BOB, T0);
	/* put out of time order on purpose */
	must_key(s, "mm-third", "g3", ALICE, "d-late", T0 + 30);
	must_key(s, "zz-first", "g1", ALICE, "d-late", T0 + 10);
	must_key(s, "aa-second", "g2", ALICE, "d-early", T0 + 20);
	must_key(s, "bb-tie-1", "g4", ALICE, "d-early", T0 + 40);
	must_key(s, "cc-tie-2", "g5", ALICE, "d-early", T0 + 40);
	must_key(s, "00-tie-3", "g6", ALICE, "d-late", T0 + 40);
	must_key(s, "bob-key", "g1", BOB, "d-bob", T0);
	assert_int_equal(store_user_keys(s, ALICE, kl, MSSP_STORE_MAX_USER_KEYS, &n, &err), 0);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		assert_string_equal(kl[i].sk_key_id, want[i]);
		assert_string_equal(kl[i].sk_msisdn, ALICE);
	}
	assert_int_equal(kl[0].sk_cert_len, 700); /* full records */
	/* a state change does not move a key */
	assert_int_equal(store_key_set_state(s, "zz-first", STORE_KEY_DISABLED, T0 + 99, &err), 0);
	/* at most max */
	memset(kl, 0, sizeof(kl));
	assert_int_equal(store_user_keys(s, ALICE, kl, 3, &n, &err), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		assert_string_equal(kl[i].sk_key_id, want[i]);
	assert_int_equal(kl[0].sk_state, STORE_KEY_DISABLED);
	assert_string_equal(kl[3].sk_key_id, ""); /* untouched past max */
	assert_int_equal(store_user_keys(s, ALICE, NULL, 0, &n, &err), 0);
	assert_int_equal(n, 0);

	assert_int_equal(store_user_devices(s, ALICE, dl, MSSP_STORE_MAX_USER_DEVICES, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(dl[0].sd_device_id, "d-early");
	assert_string_equal(dl[1].sd_device_id, "d-late");
	assert_int_equal(dl[1].sd_created_ms, T0 + 50);
	assert_int_equal(dl[0].sd_auth_spki_len, 91);
	assert_false(all_zero(dl[0].sd_e2e_key, sizeof(dl[0].sd_e2e_key)));
	assert_int_equal(store_user_devices(s, BOB, dl, 1, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(dl[0].sd_device_id, "d-bob");
	OPENSSL_cleanse(dl, sizeof(dl));
	store_close(s);
}

static void
test_reg_key_state(void **state)
{
	struct store_err err = { 0 };
	struct store_key k, gk;
	struct store *s;

	(void)state;
	s = ts_must_open("kstate", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_device(s, "dev-a", ALICE, T0);
	key_init(&k, "k1", "g1", ALICE, "dev-a");
	assert_int_equal(store_key_put(s, &k, T0, &err), 0);
	assert_int_equal(store_key_set_state(s, "k1", STORE_KEY_DISABLED, T0 + 1, &err), 0);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_int_equal(gk.sk_state, STORE_KEY_DISABLED);
	assert_int_equal(gk.sk_updated_ms, T0 + 1);
	assert_int_equal(gk.sk_created_ms, T0);
	assert_int_equal(store_key_set_state(s, "k1", STORE_KEY_ACTIVE, T0 + 2, &err), 0);
	assert_int_equal(store_key_set_state(s, "k1", STORE_KEY_ACTIVE, T0 + 3, &err), 0);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_int_equal(gk.sk_state, STORE_KEY_ACTIVE);
	assert_int_equal(gk.sk_updated_ms, T0 + 3);
	/* revoked stays revoked: by a state change or a put of the same cert */
	assert_int_equal(store_key_set_state(s, "k1", STORE_KEY_REVOKED, T0 + 4, &err), 0);
	expect_err(store_key_set_state(s, "k1", STORE_KEY_ACTIVE, T0 + 5, &err), &err, 101);
	assert_non_null(strstr(err.detail, "revoked"));
	expect_err(store_key_set_state(s, "k1", STORE_KEY_DISABLED, T0 + 5, &err), &err, 101);
	assert_int_equal(store_key_set_state(s, "k1", STORE_KEY_REVOKED, T0 + 6, &err), 0);
	expect_err(store_key_put(s, &k, T0 + 7, &err), &err, 101);
	assert_non_null(strstr(err.detail, "revoked"));
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_int_equal(gk.sk_state, STORE_KEY_REVOKED);
	assert_int_equal(gk.sk_updated_ms, T0 + 6);
	/* a new certificate brings it back */
	k.sk_cert[10] ^= 0xff;
	assert_int_equal(store_key_put(s, &k, T0 + 8, &err), 0);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_int_equal(gk.sk_state, STORE_KEY_ACTIVE);
	assert_memory_equal(gk.sk_cert, k.sk_cert, k.sk_cert_len);
	/* bad arguments */
	expect_err(store_key_set_state(s, "k1", (enum store_key_state)0, T0, &err), &err, 900);
	expect_err(store_key_set_state(s, "k1", (enum store_key_state)4, T0, &err), &err, 900);
	expect_err(store_key_set_state(s, "k1", STORE_KEY_DISABLED, 0, &err), &err, 900);
	expect_err(store_key_set_state(s, NULL, STORE_KEY_DISABLED, T0, &err), &err, 900);
	expect_err(store_key_set_state(NULL, "k1", STORE_KEY_DISABLED, T0, &err), &err, 900);
	assert_int_equal(store_key_get(s, "k1", &gk, &err), 0);
	assert_int_equal(gk.sk_state, STORE_KEY_ACTIVE);
	store_close(s);
}

/* Every bad argument is 900 and writes nothing. */
static void
test_reg_validation(void **state)
{
	static const char *const bad_msisdn[] = {
		"", "+", "35847000001", "+12345", "+1234567890123456", "+35847a00001",
		"+358 4700001", "++35847000001", "+35847000001 ",
	};
	static const char *const bad_ids[] = { "", "a b", "a/b", "a\"b", "ä", "a\n" };
	static const char *const bad_profiles[] = {
		"", " mss:a", "mss:a ", "mss:a  mss:b", "mss:a\tmss:b", "mss:\x7f", "mss:\xc3\xa4",
	};
	struct store_err err = { 0 };
	struct store_user u, gu;
	struct store_device d, gd;
	struct store_key k, gk;
	struct store *s;
	size_t i, n;

	(void)state;
	s = ts_must_open("valid", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_device(s, "dev-a", ALICE, T0);

	/* users */
	for (i = 0; i < sizeof(bad_msisdn) / sizeof(bad_msisdn[0]); i++) {
		user_init(&u, bad_msisdn[i], "x");
		expect_err(store_user_put(s, &u, T0, &err), &err, 900);
		device_init(&d, "dev-v", bad_msisdn[i], 1);
		expect_err(store_device_put(s, &d, T0, &err), &err, 900);
		key_init(&k, "kv", "gv", bad_msisdn[i], "dev-a");
		expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	}
	user_init(&u, "+123456", "x"); /* the bounds themselves are fine */
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	user_init(&u, "+123456789012345", "x");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	user_init(&u, BOB, "x");
	u.su_state = 0;
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	u.su_state = 3;
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "tab\there");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "bad \xff utf-8");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "overlong \xc0\xaf");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "C1 \xc2\x85");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "surrogate \xed\xa0\x80");
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "x");
	memset(u.su_name, 'n', sizeof(u.su_name)); /* not NUL-terminated */
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "x");
	memset(u.su_msisdn, '1', sizeof(u.su_msisdn));
	u.su_msisdn[0] = '+';
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	user_init(&u, BOB, "x");
	expect_err(store_user_put(s, &u, 0, &err), &err, 900);
	expect_err(store_user_put(s, NULL, T0, &err), &err, 900);
	expect_err(store_user_put(NULL, &u, T0, &err), &err, 900);
	expect_err(store_user_get(s, BOB, &gu, &err), &err, 105); /* none written */
	user_init(&u, BOB, "Åsa Öberg-Ñúñez \xe2\x82\xac"); /* UTF-8 is fine */
	memset(u.su_name + strlen(u.su_name), 'x', sizeof(u.su_name) - 1 - strlen(u.su_name));
	assert_int_equal(store_user_put(s, &u, T0, &err), 0); /* 128 bytes: the cap */

	/* devices */
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		device_init(&d, bad_ids[i], ALICE, 1);
		expect_err(store_device_put(s, &d, T0, &err), &err, 900);
		key_init(&k, bad_ids[i], "g", ALICE, "dev-a");
		expect_err(store_key_put(s, &k, T0, &err), &err, 900);
		key_init(&k, "kv", bad_ids[i], ALICE, "dev-a");
		expect_err(store_key_put(s, &k, T0, &err), &err, 900);
		key_init(&k, "kv", "g", ALICE, bad_ids[i]);
		expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	}
	device_init(&d, "dev-v", ALICE, 1);
	memset(d.sd_device_id, 'd', sizeof(d.sd_device_id)); /* no NUL */
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	device_init(&d, "dev-v", ALICE, 1);
	memset(d.sd_device_id, 'd', MSSP_KEYSTORE_MAX_ID); /* exactly the cap: fine */
	assert_int_equal(store_device_put(s, &d, T0, &err), 0);
	device_init(&d, "dev-v", ALICE, 1);
	d.sd_auth_spki_len = 0;
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	d.sd_auth_spki_len = MSSP_STORE_MAX_SPKI + 1;
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	device_init(&d, "dev-v", ALICE, 1);
	memset(d.sd_e2e_key, 0, sizeof(d.sd_e2e_key)); /* an unset channel key */
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	device_init(&d, "dev-v", ALICE, 1);
	snprintf(d.sd_push_token, sizeof(d.sd_push_token), "%s", "has space");
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	device_init(&d, "dev-v", ALICE, 1);
	memset(d.sd_push_token, 't', sizeof(d.sd_push_token));
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	device_init(&d, "dev-v", ALICE, 1);
	d.sd_state = 0;
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	d.sd_state = 3;
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	expect_err(store_device_put(s, NULL, T0, &err), &err, 900);
	expect_err(store_device_get(s, "dev-v", &gd, &err), &err, 101);

	/* keys */
	for (i = 0; i < sizeof(bad_profiles) / sizeof(bad_profiles[0]); i++) {
		key_init(&k, "kv", "g", ALICE, "dev-a");
		snprintf(k.sk_profiles, sizeof(k.sk_profiles), "%s", bad_profiles[i]);
		expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	}
	key_init(&k, "kv", "g", ALICE, "dev-a");
	memset(k.sk_profiles, 'p', MSSP_PROFILE_MAX_URI + 1); /* one URI too long */
	k.sk_profiles[MSSP_PROFILE_MAX_URI + 1] = '\0';
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	memset(k.sk_profiles, 'p', sizeof(k.sk_profiles)); /* no NUL */
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	k.sk_purpose = 0;
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	k.sk_purpose = 3;
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	k.sk_state = 0;
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	k.sk_state = 4;
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	k.sk_cert_len = MSSP_STORE_MAX_CERT + 1;
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	snprintf(k.sk_cert_serial, sizeof(k.sk_cert_serial), "%s", "0x12");
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	memset(k.sk_cert_serial, 'a', sizeof(k.sk_cert_serial)); /* no NUL */
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	memset(k.sk_key_id, 'k', MSSP_STORE_MAX_KEY_ID + 1); /* no NUL */
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	key_init(&k, "kv", "g", ALICE, "dev-a");
	expect_err(store_key_put(s, &k, -1, &err), &err, 900);
	expect_err(store_key_put(s, NULL, T0, &err), &err, 900);
	expect_err(store_key_get(s, "kv", &gk, &err), &err, 101);
	/* the largest profile list that fits */
	memset(k.sk_profiles, 'p', MSSP_STORE_MAX_PROFILES_TEXT);
	for (i = MSSP_PROFILE_MAX_URI; i < MSSP_STORE_MAX_PROFILES_TEXT; i += MSSP_PROFILE_MAX_URI + 1)
		k.sk_profiles[i] = ' ';
	k.sk_profiles[MSSP_STORE_MAX_PROFILES_TEXT] = '\0';
	assert_int_equal(store_key_put(s, &k, T0, &err), 0);
	assert_int_equal(store_key_get(s, "kv", &gk, &err), 0);
	assert_string_equal(gk.sk_profiles, k.sk_profiles);

	/* lookups: NULL arguments are 900 */
	expect_err(store_user_get(s, NULL, &gu, &err), &err, 900);
	expect_err(store_user_get(s, ALICE, NULL, &err), &err, 900);
	expect_err(store_user_get(NULL, ALICE, &gu, &err), &err, 900);
	expect_err(store_device_get(s, NULL, &gd, &err), &err, 900);
	expect_err(store_key_get(s, "kv", NULL, &err), &err, 900);
	expect_err(store_user_keys(s, ALICE, NULL, 1, &n, &err), &err, 900);
	expect_err(store_user_keys(s, ALICE, &gk, 1, NULL, &err), &err, 900);
	expect_err(store_user_devices(NULL, ALICE, &gd, 1, &n, &err), &err, 900);
	store_close(s);
	assert_int_equal(count_in("valid", "SELECT count(*) FROM users"), 4);
	assert_int_equal(count_in("valid", "SELECT count(*) FROM devices"), 2);
	assert_int_equal(count_in("valid", "SELECT count(*) FROM keys"), 1);
	OPENSSL_cleanse(&d, sizeof(d));
	OPENSSL_cleanse(&gd, sizeof(gd));
}

/* Committed means durable: a new handle (and a read-only one) sees it. */
static void
test_reg_persist(void **state)
{
	struct store_err err = { 0 };
	struct store_user u, gu;
	struct store_device d, gd;
	struct store_key k, gk;
	struct store *s;
	char uri[512];

	(void)state;
	s = ts_must_open("persist", STORE_OPEN_CREATE);
	user_init(&u, ALICE, "Persisted");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	device_init(&d, "dev-p", ALICE, 0x77);
	assert_int_equal(store_device_put(s, &d, T0 + 1, &err), 0);
	key_init(&k, "kp", "gp", ALICE, "dev-p");
	assert_int_equal(store_key_put(s, &k, T0 + 2, &err), 0);
	assert_int_equal(store_key_set_state(s, "kp", STORE_KEY_REVOKED, T0 + 3, &err), 0);
	store_close(s);

	s = ts_must_open("persist", 0);
	assert_int_equal(store_user_get(s, ALICE, &gu, &err), 0);
	assert_string_equal(gu.su_name, "Persisted");
	assert_int_equal(store_device_get(s, "dev-p", &gd, &err), 0);
	assert_device_equal(&gd, &d);
	assert_int_equal(store_key_get(s, "kp", &gk, &err), 0);
	k.sk_state = STORE_KEY_REVOKED;
	assert_key_equal(&gk, &k);
	assert_int_equal(gk.sk_updated_ms, T0 + 3);
	store_close(s);

	/* read-only: reads work, every registry write is 900 */
	ts_db_uri(uri, sizeof(uri), "persist");
	s = store_open(uri, STORE_OPEN_READONLY, &err);
	assert_non_null(s);
	assert_int_equal(store_key_get(s, "kp", &gk, &err), 0);
	assert_int_equal(store_device_get(s, "dev-p", &gd, &err), 0);
	expect_err(store_user_put(s, &u, T0, &err), &err, 900);
	expect_err(store_device_put(s, &d, T0, &err), &err, 900);
	expect_err(store_key_put(s, &k, T0, &err), &err, 900);
	expect_err(store_key_set_state(s, "kp", STORE_KEY_DISABLED, T0, &err), &err, 900);
	store_close(s);
	OPENSSL_cleanse(&d, sizeof(d));
	OPENSSL_cleanse(&gd, sizeof(gd));
}

/* The objects of schema version 1 (store_sqlite.c migration 1). */
#define V1_OBJECTS                                                                         \
	"receipt,receipt_needs_signature,schema_version,sqlite_autoindex_receipt_1,"       \
	"sqlite_autoindex_tx_1,sqlite_autoindex_tx_2,sqlite_autoindex_tx_3,tx,"           \
	"tx_due,tx_final_frozen,tx_keep_open,tx_one_outstanding,tx_open_age,tx_open_ap,"  \
	"tx_transition"
#define OBJECTS_SQL                                                                        \
	"SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema ORDER BY name)"

/* Make `name` a version-1 database holding one transaction: created by
 * this program, then taken back to version 1 (what the later migrations
 * added is dropped - the roaming columns and triggers of version 4 too -
 * and their version rows).  The result is checked against
 * the exact list of version-1 objects. */
static void
make_v1(const char *name, char id[STORE_TX_ID_LEN + 1])
{
	static const unsigned char hash[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct store_err err = { 0 };
	struct store_tx_new n = { 0 };
	struct store_tx tx = { 0 };
	struct store *s;
	char buf[2048];
	sqlite3 *db;

	s = ts_must_open(name, STORE_OPEN_CREATE);
	n.tn_ap_id = "http://demo.ap/";
	n.tn_ap_trans_id = "V1";
	n.tn_hash = hash;
	n.tn_hash_len = sizeof(hash);
	n.tn_msisdn = ALICE;
	n.tn_key_id = "sign";
	n.tn_mode = STORE_MODE_SYNCH;
	n.tn_deadline_ms = T0 + 80000;
	n.tn_request = "{\"v1\":true}";
	n.tn_request_len = strlen(n.tn_request);
	if (store_tx_create(s, &n, 0, T0, &tx, &err) != 0)
		fail_msg("create: %d %s", err.status, err.detail);
	memcpy(id, tx.tx_id, STORE_TX_ID_LEN + 1);
	store_tx_clear(&tx);
	store_close(s);

	db = raw_open(name);
	assert_int_equal(sqlite3_exec(db,
				      "BEGIN; DROP TRIGGER tx_peer_fixed; DROP TRIGGER"
				      " tx_peer_trans_id_once; ALTER TABLE tx DROP COLUMN"
				      " peer_trans_id; ALTER TABLE tx DROP COLUMN peer;"
				      " DROP TABLE records; DROP TABLE record_gen;"
				      " DROP INDEX tx_by_user; DROP TABLE keys; DROP TABLE devices;"
				      " DROP TABLE users; DELETE FROM schema_version WHERE version >= 2;"
				      " COMMIT",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	ts_raw_text(db, OBJECTS_SQL, buf, sizeof(buf));
	assert_string_equal(buf, V1_OBJECTS);
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	sqlite3_close(db);
}

static void
test_reg_migrate_v1(void **state)
{
	struct store_err err = { 0 };
	char id[STORE_TX_ID_LEN + 1], uri[512], buf[2048];
	struct store_tx tx = { 0 };
	struct store_key gk;
	struct store *s;
	sqlite3 *db;

	(void)state;
	make_v1("v1", id);
	/* read-only refuses an outdated schema (it may not migrate) */
	ts_db_uri(uri, sizeof(uri), "v1");
	assert_null(store_open(uri, STORE_OPEN_READONLY, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "outdated"));
	/* a read-write open (no CREATE) migrates; the transaction is kept */
	s = ts_must_open("v1", 0);
	assert_int_equal(store_health(s, &err), 0);
	assert_int_equal(store_tx_get_by_id(s, id, STORE_GET_REQUEST, &tx, &err), 0);
	assert_string_equal(tx.tx_ap_trans_id, "V1");
	assert_string_equal(tx.tx_request, "{\"v1\":true}");
	assert_int_equal(tx.tx_state, STORE_ST_ACCEPTED);
	store_tx_clear(&tx);
	must_user(s, ALICE);
	must_device(s, "dev-m", ALICE, T0);
	must_key(s, "km", "gm", ALICE, "dev-m", T0);
	assert_int_equal(store_key_get(s, "km", &gk, &err), 0);
	store_close(s);
	db = raw_open("v1");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2,3,4");
	ts_raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
	assert_string_equal(buf, "ok");
	sqlite3_close(db);

	/* The migration is one transaction: when it fails half-way (here a
	 * stray table named like the third one it creates), nothing of it
	 * stays and the database is still a usable version 1 for the old
	 * program. */
	make_v1("v1bad", id);
	db = raw_open("v1bad");
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE keys (x INTEGER)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ts_db_uri(uri, sizeof(uri), "v1bad");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "migration"));
	db = raw_open("v1bad");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name IN"
				       " ('users', 'devices', 'keys_by_user')"),
			 0);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx"), 1);
	sqlite3_close(db);
}

/* One handle shared by threads (the mutex) while another handle writes:
 * registry calls interleave with transaction calls without failures. */
struct sharer {
	struct store *s;
	int which;
	int fails;
};

static void *
sharer_run(void *arg)
{
	struct sharer *w = arg;
	struct store_err err;
	struct store_key kl[MSSP_STORE_MAX_USER_KEYS];
	struct store_user gu;
	size_t n;
	int i;

	for (i = 0; i < 200; i++) {
		memset(&err, 0, sizeof(err));
		if (w->which == 0) {
			if (store_key_set_state(w->s, "k-0", i % 2 ? STORE_KEY_ACTIVE
							       : STORE_KEY_DISABLED,
						T0 + i, &err) != 0)
				w->fails++;
		} else if (store_user_get(w->s, ALICE, &gu, &err) != 0 ||
			   store_user_keys(w->s, ALICE, kl, MSSP_STORE_MAX_USER_KEYS, &n, &err) !=
				   0 ||
			   n != 2) {
			w->fails++;
		}
	}
	return NULL;
}

static void
test_reg_shared_handle(void **state)
{
	struct sharer w[2];
	pthread_t th[2];
	struct store *s;
	int i;

	(void)state;
	s = ts_must_open("shared", STORE_OPEN_CREATE);
	must_user(s, ALICE);
	must_device(s, "dev-a", ALICE, T0);
	must_key(s, "k-0", "g0", ALICE, "dev-a", T0);
	must_key(s, "k-1", "g1", ALICE, "dev-a", T0);
	for (i = 0; i < 2; i++) {
		w[i].s = s;
		w[i].which = i;
		w[i].fails = 0;
		assert_int_equal(pthread_create(&th[i], NULL, sharer_run, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(w[0].fails, 0);
	assert_int_equal(w[1].fails, 0);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reg_schema),
		cmocka_unit_test(test_reg_round_trip),
		cmocka_unit_test(test_reg_replace),
		cmocka_unit_test(test_reg_refusals),
		cmocka_unit_test(test_reg_caps),
		cmocka_unit_test(test_reg_caps_race),
		cmocka_unit_test(test_reg_order),
		cmocka_unit_test(test_reg_key_state),
		cmocka_unit_test(test_reg_validation),
		cmocka_unit_test(test_reg_persist),
		cmocka_unit_test(test_reg_migrate_v1),
		cmocka_unit_test(test_reg_shared_handle),
	};

	return cmocka_run_group_tests(tests, setup, ts_teardown);
}
