/*
 * test_store.c - durable transactions (src/store, SQLite backend).
 *
 * Every test works in one mkdtemp() directory, on its own database file
 * (sqlite:<dir>/<name>.db), with a fixed clock (T0) so that deadlines are
 * deterministic.  Independent checks go around the store through a raw
 * sqlite3 connection (schema, integrity_check, constraints).  The crash
 * test forks a writer and kill -9s it at random moments.
 * docs/internals/store.md lists what each test covers.
 */
#include "teststore.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/limits.h"

#define T0 1700000000000LL /* the tests' "now", ms since the epoch */
#define AP "http://demo.ap/"
#define AP2 "http://other.ap/"
#define SIG "MIIBexampleCMSbase64=="

static int seq;

/* ---- helpers -------------------------------------------------------------- */

struct req {
	struct store_tx_new n;
	unsigned char hash[32];
	char doc[256];
	char aptid[64];
	char msisdn[32];
};

static void
req_init(struct req *r, const char *ap, const char *aptid, const char *msisdn, const char *key,
	 const char *content, int64_t deadline)
{
	unsigned int hl = 0;

	memset(r, 0, sizeof(*r));
	snprintf(r->doc, sizeof(r->doc), "{\"MSS_SignatureReq\":{\"DataToBeSigned\":\"%s\"}}",
		 content);
	snprintf(r->aptid, sizeof(r->aptid), "%s", aptid);
	snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
	assert_int_equal(EVP_Digest(r->doc, strlen(r->doc), r->hash, &hl, EVP_sha256(), NULL), 1);
	r->n.tn_ap_id = ap;
	r->n.tn_ap_trans_id = r->aptid;
	r->n.tn_hash = r->hash;
	r->n.tn_hash_len = hl;
	r->n.tn_msisdn = r->msisdn;
	r->n.tn_key_id = key;
	r->n.tn_mode = STORE_MODE_ASYNCH_CS;
	r->n.tn_deadline_ms = deadline;
	r->n.tn_notify_url = NULL;
	r->n.tn_request = r->doc;
	r->n.tn_request_len = strlen(r->doc);
}

/* A request with a fresh AP_TransID and user, deadline T0 + 80 s. */
static void
req_fresh(struct req *r)
{
	char aptid[32], msisdn[32];

	seq++;
	snprintf(aptid, sizeof(aptid), "A%d", seq);
	snprintf(msisdn, sizeof(msisdn), "+358470%06d", seq);
	req_init(r, AP, aptid, msisdn, "sign", aptid, T0 + 80000);
}

static void
must_create(struct store *s, struct req *r, struct store_tx *tx)
{
	struct store_err err = { 0 };

	if (store_tx_create(s, &r->n, 0, T0, tx, &err) != 0)
		fail_msg("create: %d %s", err.status, err.detail);
	assert_false(tx->tx_replay);
}

static void
nonce_for(char *buf, size_t len)
{
	unsigned char r[16];
	size_t i;

	assert_int_equal(RAND_bytes(r, sizeof(r)), 1);
	for (i = 0; i < sizeof(r) && 2 * i + 2 < len; i++)
		snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

/* The fields a legal move into `to` needs. */
static void
change_for(enum store_state to, struct store_tx_change *c, char *nonce, size_t nlen)
{
	static const unsigned char answer[] = "raw device answer \x00\x01\x02";

	memset(c, 0, sizeof(*c));
	switch (to) {
	case STORE_ST_PROMPT_SENT:
		nonce_for(nonce, nlen);
		c->tc_nonce = nonce;
		break;
	case STORE_ST_ANSWERED:
		c->tc_answer = answer;
		c->tc_answer_len = sizeof(answer);
		break;
	case STORE_ST_COMPLETED:
		c->tc_status = 500;
		c->tc_signature = SIG;
		c->tc_signature_len = strlen(SIG);
		c->tc_profile = "mss:demo:sign:loa3:app";
		break;
	case STORE_ST_EXPIRED:
		break;
	case STORE_ST_FAILED:
		c->tc_status = 209;
		c->tc_detail = "device unreachable";
		break;
	default:
		break;
	}
}

static int
move(struct store *s, const char *id, enum store_state from, enum store_state to, int64_t now,
     struct store_tx *out, struct store_err *err)
{
	struct store_tx_change c;
	char nonce[64];

	change_for(to, &c, nonce, sizeof(nonce));
	return store_tx_transition(s, id, from, to, &c, now, out, err);
}

static void
must_move(struct store *s, const char *id, enum store_state from, enum store_state to)
{
	struct store_err err = { 0 };

	if (move(s, id, from, to, T0 + 1, NULL, &err) != 0)
		fail_msg("%s -> %s: %d %s", store_state_name(from), store_state_name(to), err.status,
			 err.detail);
}

/* Drive a fresh ACCEPTED transaction to `target` along legal moves. */
static void
reach(struct store *s, const char *id, enum store_state target)
{
	switch (target) {
	case STORE_ST_ACCEPTED:
		break;
	case STORE_ST_PROMPT_SENT:
		must_move(s, id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT);
		break;
	case STORE_ST_ANSWERED:
		reach(s, id, STORE_ST_PROMPT_SENT);
		must_move(s, id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED);
		break;
	case STORE_ST_COMPLETED:
		reach(s, id, STORE_ST_ANSWERED);
		must_move(s, id, STORE_ST_ANSWERED, STORE_ST_COMPLETED);
		break;
	case STORE_ST_EXPIRED:
		must_move(s, id, STORE_ST_ACCEPTED, STORE_ST_EXPIRED);
		break;
	case STORE_ST_FAILED:
		must_move(s, id, STORE_ST_ACCEPTED, STORE_ST_FAILED);
		break;
	default:
		fail_msg("no such state");
	}
}

static enum store_state
state_of(struct store *s, const char *id)
{
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	enum store_state st;

	if (store_tx_get_by_id(s, id, 0, &tx, &err) != 0)
		fail_msg("get %s: %d %s", id, err.status, err.detail);
	st = tx.tx_state;
	store_tx_clear(&tx);
	return st;
}

static bool
id_shape_ok(const char *id)
{
	size_t i;

	if (strlen(id) != 33 || id[0] != 'T')
		return false;
	for (i = 1; i < 33; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static void
expect_status(int rc, const struct store_err *err, int status)
{
	if (rc != -1 || err->status != status)
		fail_msg("expected -1/%d, got %d/%d (%s)", status, rc, err->status, err->detail);
}

#define expect_tx_list_900(rc, err) expect_status((rc), (err), 900)
#define expect_tx_list_406(rc, err) expect_status((rc), (err), 406)

static int
setup(void **state)
{
	(void)state;
	return ts_setup("test_store");
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_open_and_schema(void **state)
{
	struct store_err err = { 0 };
	struct store *s, *c;
	char uri[512], buf[4096];
	sqlite3 *db;

	(void)state;
	/* unknown scheme, reserved backend, bad flags, no path */
	assert_null(store_open("mysql://x", STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	assert_null(store_open("postgresql://localhost/mssp", 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "not built"));
	assert_null(store_open("postgres://localhost/mssp", 0, &err));
	assert_int_equal(err.status, 900);
	assert_null(store_open(NULL, 0, &err));
	assert_int_equal(err.status, 900);
	assert_null(store_open("sqlite::memory:", STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	assert_null(store_open("sqlite:", STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	ts_db_uri(uri, sizeof(uri), "schema");
	assert_null(store_open(uri, STORE_OPEN_CREATE | STORE_OPEN_READONLY, &err));
	assert_int_equal(err.status, 900);

	s = ts_must_open("schema", STORE_OPEN_CREATE);
	assert_string_equal(store_backend_name(s), "sqlite");
	assert_int_equal(store_health(s, &err), 0);
	c = store_clone(s, &err);
	assert_non_null(c);
	assert_int_equal(store_health(c, &err), 0);
	store_close(c);
	store_close(s);
	store_close(NULL);
	/* reopening runs no migration twice */
	s = ts_must_open("schema", 0);
	store_close(s);

	snprintf(buf, sizeof(buf), "%s/schema.db", ts_dir);
	{
		struct stat sb;

		assert_int_equal(stat(buf, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600); /* personal data */
	}
	db = ts_raw_open("schema");
	ts_raw_text(db, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	/* 2: the user registry (test_store_registry.c); 3: the ME's identity
	 * fields, key fingerprints and records (test_store_rec.c); 4: the
	 * roaming columns of tx (test_roamed_*, test_migrate_v3) */
	assert_string_equal(buf, "1,2,3,4");
	ts_raw_text(db, "SELECT sql FROM sqlite_schema WHERE name = 'tx'", buf, sizeof(buf));
	assert_non_null(strstr(buf, "STRICT"));
	ts_raw_text(db, "SELECT sql FROM sqlite_schema WHERE name = 'receipt'", buf, sizeof(buf));
	assert_non_null(strstr(buf, "STRICT"));
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name ="
				       " 'tx_one_outstanding' AND sql LIKE '%WHERE state IN%'"),
			 1);
	ts_raw_text(db, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema WHERE"
		     " type = 'table' AND name IN ('records', 'record_gen', 'keys', 'users') AND"
		     " sql LIKE '%STRICT' ORDER BY name)",
		 buf, sizeof(buf));
	assert_string_equal(buf, "keys,record_gen,records,users");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name ="
				       " 'keys_spki_fp' AND sql LIKE 'CREATE UNIQUE INDEX%'"
				       " AND sql LIKE '%WHERE spki_fp IS NOT NULL'"),
			 1);
	sqlite3_close(db);
}

/* The rules hold in the database itself, whoever writes. */
static void
test_schema_enforces(void **state)
{
	struct store *s = ts_must_open("enforce", STORE_OPEN_CREATE);
	struct store_tx tx = { 0 };
	struct req r;
	char sql[1024];
	sqlite3 *db;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &tx);
	db = ts_raw_open("enforce");
	/* illegal jump ACCEPTED -> COMPLETED */
	snprintf(sql, sizeof(sql),
		 "UPDATE tx SET state = 'COMPLETED', status = 500, signature = 'x'"
		 " WHERE mssp_trans_id = '%s'",
		 tx.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	/* a second outstanding row for the same user and key */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
		 " key_id, mode, state, created_ms, deadline_ms, updated_ms, request)"
		 " VALUES ('Tx', 'a', 'b', x'00', '%s', 'sign', 1, 'ACCEPTED', 1, 2, 1, x'00')",
		 r.msisdn);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	/* STRICT: a string in an INTEGER column */
	assert_int_not_equal(sqlite3_exec(db,
					  "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id,"
					  " content_hash, msisdn, key_id, mode, state, created_ms,"
					  " deadline_ms, updated_ms, request) VALUES ('Ty', 'a', 'c',"
					  " x'00', 'm', 'k', 'one', 'ACCEPTED', 1, 2, 1, x'00')",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* an outstanding transaction cannot be deleted */
	snprintf(sql, sizeof(sql), "DELETE FROM tx WHERE mssp_trans_id = '%s'", tx.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	/* a receipt for a transaction without signature */
	snprintf(sql, sizeof(sql), "INSERT INTO receipt VALUES ('%s', x'00', 1)", tx.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	/* a final transaction is immutable */
	reach(s, tx.tx_id, STORE_ST_FAILED);
	snprintf(sql, sizeof(sql), "UPDATE tx SET status = 500 WHERE mssp_trans_id = '%s'",
		 tx.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_create_lookup(void **state)
{
	struct store *s = ts_must_open("lookup", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, got = { 0 };
	struct req r;

	(void)state;
	req_fresh(&r);
	r.n.tn_mode = STORE_MODE_ASYNCH_SS;
	r.n.tn_notify_url = "https://demo.ap/notify";
	must_create(s, &r, &tx);
	assert_true(id_shape_ok(tx.tx_id));
	assert_int_equal(tx.tx_state, STORE_ST_ACCEPTED);
	assert_int_equal(tx.tx_status, 0);
	assert_null(tx.tx_request); /* not asked for */

	assert_int_equal(store_tx_get(s, AP, tx.tx_id, STORE_GET_REQUEST, &got, &err), 0);
	assert_string_equal(got.tx_id, tx.tx_id);
	assert_string_equal(got.tx_ap_id, AP);
	assert_string_equal(got.tx_ap_trans_id, r.aptid);
	assert_string_equal(got.tx_msisdn, r.msisdn);
	assert_string_equal(got.tx_key_id, "sign");
	assert_int_equal(got.tx_mode, STORE_MODE_ASYNCH_SS);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	assert_int_equal(got.tx_created_ms, T0);
	assert_int_equal(got.tx_deadline_ms, T0 + 80000);
	assert_string_equal(got.tx_notify_url, "https://demo.ap/notify");
	assert_int_equal(got.tx_hash_len, 32);
	assert_memory_equal(got.tx_hash, r.hash, 32);
	assert_non_null(got.tx_request);
	assert_int_equal(got.tx_request_len, strlen(r.doc));
	assert_memory_equal(got.tx_request, r.doc, got.tx_request_len);
	assert_null(got.tx_answer);
	assert_null(got.tx_signature);
	assert_string_equal(got.tx_nonce, "");
	assert_int_equal(got.tx_receipt_ms, 0);
	/* filling a record twice does not leak (ASan checks) */
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, STORE_GET_REQUEST, &got, &err), 0);
	store_tx_clear(&got);
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_idempotent_resend(void **state)
{
	struct store *s = ts_must_open("replay", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 };
	struct req r;
	sqlite3 *db;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &a);
	/* byte-identical resend, later: the same transaction, flagged */
	assert_int_equal(store_tx_create(s, &r.n, 0, T0 + 5000, &b, &err), 0);
	assert_true(b.tx_replay);
	assert_string_equal(b.tx_id, a.tx_id);
	assert_int_equal(b.tx_state, STORE_ST_ACCEPTED);
	assert_int_equal(b.tx_created_ms, T0);
	/* after it moved on, the resend still maps onto it (and its state) */
	reach(s, a.tx_id, STORE_ST_COMPLETED);
	assert_int_equal(store_tx_create(s, &r.n, STORE_PREEMPT, T0 + 6000, &b, &err), 0);
	assert_true(b.tx_replay);
	assert_string_equal(b.tx_id, a.tx_id);
	assert_int_equal(b.tx_state, STORE_ST_COMPLETED);
	assert_int_equal(b.tx_status, 500);
	assert_non_null(b.tx_signature);
	assert_string_equal(b.tx_signature, SIG);
	db = ts_raw_open("replay");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx"), 1);
	sqlite3_close(db);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_close(s);
}

static void
test_conflicting_resend_101(void **state)
{
	struct store *s = ts_must_open("conflict", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 };
	struct req r, r2, r3;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &a);
	/* same (AP_ID, AP_TransID), other content: 101, even for another user */
	req_init(&r2, AP, r.aptid, "+358470999999", "sign", "other content", T0 + 80000);
	assert_int_equal(store_tx_create(s, &r2.n, 0, T0, &b, &err), -1);
	assert_int_equal(err.status, 101);
	assert_string_equal(err.detail, "AP_TransID already used with other content");
	assert_string_equal(b.tx_id, "");
	/* ... and for the same user (101 wins over 406) */
	req_init(&r2, AP, r.aptid, r.msisdn, "sign", "other content", T0 + 80000);
	assert_int_equal(store_tx_create(s, &r2.n, STORE_PREEMPT, T0, &b, &err), -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(state_of(s, a.tx_id), STORE_ST_ACCEPTED); /* not pre-empted */
	/* the same AP_TransID from another AP is another transaction */
	req_init(&r3, AP2, r.aptid, "+358470999998", "sign", "x", T0 + 80000);
	must_create(s, &r3, &b);
	assert_string_not_equal(b.tx_id, a.tx_id);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_close(s);
}

static void
test_foreign_ap_indistinguishable(void **state)
{
	struct store *s = ts_must_open("foreign", STORE_OPEN_CREATE);
	struct store_err e[5];
	struct store_tx tx = { 0 }, got = { 0 };
	struct req r;
	char unknown[64];
	int i;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &tx);
	reach(s, tx.tx_id, STORE_ST_COMPLETED);
	snprintf(unknown, sizeof(unknown), "T%032d", 7);
	for (i = 0; i < 5; i++)
		memset(&e[i], 0x50 + i, sizeof(e[i])); /* different garbage each */
	assert_int_equal(store_tx_get(s, AP2, tx.tx_id, 0, &got, &e[0]), -1);
	assert_int_equal(store_tx_get(s, AP, unknown, 0, &got, &e[1]), -1);
	assert_int_equal(store_tx_get(s, AP, "h44okl", 0, &got, &e[2]), -1);
	assert_int_equal(store_tx_receipt(s, AP2, tx.tx_id, "ok", 2, T0, &e[3]), -1);
	assert_int_equal(store_tx_receipt(s, AP, unknown, "ok", 2, T0, &e[4]), -1);
	for (i = 0; i < 5; i++) {
		assert_int_equal(e[i].status, 101);
		assert_string_equal(e[i].detail, "no such transaction");
		assert_memory_equal(&e[i], &e[0], sizeof(e[0])); /* byte-identical */
	}
	assert_string_equal(got.tx_id, "");
	/* the owner finds it */
	assert_int_equal(store_tx_get(s, AP, tx.tx_id, 0, &got, &e[0]), 0);
	store_tx_clear(&got);
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_one_outstanding_406(void **state)
{
	struct store *s = ts_must_open("outstanding", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 };
	struct req r, r2;
	sqlite3 *db;
	enum store_state st;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &a);
	/* while it is ACCEPTED, PROMPT_SENT or ANSWERED, a second one is 406 */
	for (st = STORE_ST_ACCEPTED; st <= STORE_ST_ANSWERED; st++) {
		char aptid[32];

		if (st != STORE_ST_ACCEPTED)
			must_move(s, a.tx_id, st - 1, st);
		snprintf(aptid, sizeof(aptid), "B%d", (int)st);
		req_init(&r2, AP2, aptid, r.msisdn, "sign", aptid, T0 + 80000);
		assert_int_equal(store_tx_create(s, &r2.n, 0, T0, &b, &err), -1);
		assert_int_equal(err.status, 406);
	}
	/* another key of the same user is independent */
	req_init(&r2, AP2, "C1", r.msisdn, "authn", "c1", T0 + 80000);
	must_create(s, &r2, &b);
	/* once final, the user and key are free again */
	must_move(s, a.tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED);
	req_init(&r2, AP2, "C2", r.msisdn, "sign", "c2", T0 + 80000);
	must_create(s, &r2, &b);
	db = ts_raw_open("outstanding");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx"), 3);
	sqlite3_close(db);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_close(s);
}

/* Two handles = two connections = two "nodes", racing for one user. */
#define RACE_ROUNDS 300

struct racer {
	struct store *r_s;
	pthread_barrier_t *r_bar;
	int r_no;
	int r_rc[RACE_ROUNDS];
	int r_status[RACE_ROUNDS];
};

static void *
race_main(void *arg)
{
	struct racer *rc = arg;
	struct store_err err;
	struct req r;
	int i;

	for (i = 0; i < RACE_ROUNDS; i++) {
		char aptid[32], msisdn[32];

		snprintf(aptid, sizeof(aptid), "R%d_%d", i, rc->r_no);
		snprintf(msisdn, sizeof(msisdn), "+41790%06d", i);
		req_init(&r, rc->r_no ? AP2 : AP, aptid, msisdn, "sim", aptid, T0 + 80000);
		memset(&err, 0, sizeof(err));
		pthread_barrier_wait(rc->r_bar);
		rc->r_rc[i] = store_tx_create(rc->r_s, &r.n, 0, T0, NULL, &err);
		rc->r_status[i] = err.status;
	}
	return NULL;
}

static void
test_race_two_nodes(void **state)
{
	struct store *s0 = ts_must_open("race", STORE_OPEN_CREATE);
	struct store *s1 = ts_must_open("race", 0);
	pthread_barrier_t bar;
	struct racer *r = calloc(2, sizeof(*r));
	pthread_t th[2];
	sqlite3 *db;
	int i, wins0 = 0, wins1 = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
	r[0].r_s = s0;
	r[1].r_s = s1;
	for (i = 0; i < 2; i++) {
		r[i].r_bar = &bar;
		r[i].r_no = i;
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < RACE_ROUNDS; i++) {
		/* exactly one wins, the other gets 406 */
		if (r[0].r_rc[i] == 0) {
			assert_int_equal(r[1].r_rc[i], -1);
			assert_int_equal(r[1].r_status[i], 406);
			wins0++;
		} else {
			assert_int_equal(r[0].r_status[i], 406);
			assert_int_equal(r[1].r_rc[i], 0);
			wins1++;
		}
	}
	print_message("race: node 0 won %d, node 1 won %d of %d\n", wins0, wins1, RACE_ROUNDS);
	db = ts_raw_open("race");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx"), RACE_ROUNDS);
	assert_int_equal(ts_raw_count(db, "SELECT count(DISTINCT msisdn) FROM tx"), RACE_ROUNDS);
	sqlite3_close(db);
	pthread_barrier_destroy(&bar);
	free(r);
	store_close(s0);
	store_close(s1);
}

/* One handle shared by two threads: the mutex serialises. */
struct sharer {
	struct store *sh_s;
	int sh_no;
	int sh_fail;
};

static void *
share_main(void *arg)
{
	struct sharer *sh = arg;
	struct store_err err;
	struct store_tx tx = { 0 };
	struct req r;
	int i;

	for (i = 0; i < 100; i++) {
		char aptid[32], msisdn[32];

		snprintf(aptid, sizeof(aptid), "S%d_%d", sh->sh_no, i);
		snprintf(msisdn, sizeof(msisdn), "+4179%d%06d", sh->sh_no, i);
		req_init(&r, AP, aptid, msisdn, "k", aptid, T0 + 80000);
		if (store_tx_create(sh->sh_s, &r.n, 0, T0, &tx, &err) != 0 ||
		    move(sh->sh_s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, T0, NULL,
			 &err) != 0)
			sh->sh_fail++;
	}
	store_tx_clear(&tx);
	return NULL;
}

static void
test_shared_handle_threads(void **state)
{
	struct store *s = ts_must_open("shared", STORE_OPEN_CREATE);
	struct sharer sh[2] = { { s, 0, 0 }, { s, 1, 0 } };
	pthread_t th[2];
	uint64_t n = 0;
	struct store_err err;
	int i;

	(void)state;
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, share_main, &sh[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sh[0].sh_fail + sh[1].sh_fail, 0);
	assert_int_equal(store_tx_count_outstanding(s, AP, &n, &err), 0);
	assert_int_equal(n, 200);
	store_close(s);
}

static void
test_preempt(void **state)
{
	struct store *s = ts_must_open("preempt", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx t1 = { 0 }, t2 = { 0 }, t3 = { 0 }, t4 = { 0 }, got = { 0 };
	struct req r1, r2, r3, r4;

	(void)state;
	req_init(&r1, AP, "P1", "+358401111111", "app", "p1", T0 + 80000);
	req_init(&r2, AP2, "P2", "+358401111111", "app", "p2", T0 + 80000);
	req_init(&r3, AP, "P3", "+358401111111", "app", "p3", T0 + 80000);
	req_init(&r4, AP, "P4", "+358401111111", "app", "p4", T0 + 80000);
	must_create(s, &r1, &t1);
	/* ACCEPTED older one: cancelled with 401 in the same transaction */
	assert_int_equal(store_tx_create(s, &r2.n, STORE_PREEMPT, T0 + 10, &t2, &err), 0);
	assert_false(t2.tx_replay);
	assert_string_equal(t2.tx_preempted, t1.tx_id);
	assert_int_equal(store_tx_get(s, AP, t1.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_FAILED);
	assert_int_equal(got.tx_status, 401);
	assert_string_equal(got.tx_detail, "cancelled by a newer request");
	assert_int_equal(got.tx_final_ms, T0 + 10);
	/* PROMPT_SENT older one: likewise; its late answer is refused */
	reach(s, t2.tx_id, STORE_ST_PROMPT_SENT);
	assert_int_equal(store_tx_create(s, &r3.n, STORE_PREEMPT, T0 + 20, &t3, &err), 0);
	assert_string_equal(t3.tx_preempted, t2.tx_id);
	assert_int_equal(move(s, t2.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED, T0 + 30, &got,
			      &err),
			 -1);
	assert_int_equal(err.status, STORE_STATUS_FINAL);
	assert_int_equal(got.tx_state, STORE_ST_FAILED);
	assert_int_equal(got.tx_status, 401);
	/* ANSWERED older one: never pre-empted, 406 */
	reach(s, t3.tx_id, STORE_ST_ANSWERED);
	assert_int_equal(store_tx_create(s, &r4.n, STORE_PREEMPT, T0 + 40, &t4, &err), -1);
	assert_int_equal(err.status, 406);
	assert_int_equal(state_of(s, t3.tx_id), STORE_ST_ANSWERED);
	/* without the flag: 406 */
	must_move(s, t3.tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED);
	must_create(s, &r4, &t4);
	req_init(&r1, AP, "P5", "+358401111111", "app", "p5", T0 + 80000);
	assert_int_equal(store_tx_create(s, &r1.n, 0, T0 + 50, &got, &err), -1);
	assert_int_equal(err.status, 406);
	/* a replay with the flag is a replay, nothing pre-empted */
	assert_int_equal(store_tx_create(s, &r4.n, STORE_PREEMPT, T0 + 60, &got, &err), 0);
	assert_true(got.tx_replay);
	assert_string_equal(got.tx_preempted, "");
	assert_string_equal(got.tx_id, t4.tx_id);
	assert_int_equal(state_of(s, t4.tx_id), STORE_ST_ACCEPTED);
	store_tx_clear(&t1);
	store_tx_clear(&t2);
	store_tx_clear(&t3);
	store_tx_clear(&t4);
	store_tx_clear(&got);
	store_close(s);
}

static void
test_transitions(void **state)
{
	struct store *s = ts_must_open("transitions", STORE_OPEN_CREATE);
	struct store_err err;
	struct store_tx tx = { 0 }, out = { 0 };
	struct req r;
	int from, to, cur, nlegal = 0, nillegal = 0, nconflict = 0;

	(void)state;
	/* every (from, to) pair from a transaction really in `from` */
	for (from = STORE_ST_ACCEPTED; from < STORE_ST_COUNT; from++)
		for (to = STORE_ST_NONE; to < STORE_ST_COUNT; to++) {
			req_fresh(&r);
			must_create(s, &r, &tx);
			reach(s, tx.tx_id, (enum store_state)from);
			memset(&err, 0, sizeof(err));
			if (store_transition_legal((enum store_state)from, (enum store_state)to)) {
				assert_int_equal(move(s, tx.tx_id, (enum store_state)from,
						      (enum store_state)to, T0 + 2, &out, &err),
						 0);
				assert_int_equal(out.tx_state, to);
				assert_int_equal(state_of(s, tx.tx_id), to);
				assert_int_equal(out.tx_updated_ms, T0 + 2);
				nlegal++;
			} else {
				assert_int_equal(move(s, tx.tx_id, (enum store_state)from,
						      (enum store_state)to, T0 + 2, &out, &err),
						 -1);
				assert_int_equal(err.status, 900);
				assert_non_null(strstr(err.detail, "illegal transition"));
				assert_int_equal(state_of(s, tx.tx_id), from);
				nillegal++;
			}
		}
	assert_int_equal(nlegal, 8);
	/* compare-and-set: a legal move asked from the wrong state */
	for (cur = STORE_ST_ACCEPTED; cur < STORE_ST_COUNT; cur++)
		for (from = STORE_ST_ACCEPTED; from < STORE_ST_COUNT; from++)
			for (to = STORE_ST_ACCEPTED; to < STORE_ST_COUNT; to++) {
				if (from == cur ||
				    !store_transition_legal((enum store_state)from,
							    (enum store_state)to))
					continue;
				req_fresh(&r);
				must_create(s, &r, &tx);
				reach(s, tx.tx_id, (enum store_state)cur);
				assert_int_equal(move(s, tx.tx_id, (enum store_state)from,
						      (enum store_state)to, T0 + 3, &out, &err),
						 -1);
				assert_int_equal(err.status,
						 store_state_final((enum store_state)cur)
							 ? STORE_STATUS_FINAL
							 : STORE_STATUS_CONFLICT);
				assert_int_equal(out.tx_state, cur); /* the current record */
				assert_int_equal(state_of(s, tx.tx_id), cur);
				nconflict++;
			}
	print_message("transitions: %d legal, %d illegal, %d compare-and-set conflicts\n", nlegal,
		      nillegal, nconflict);
	/* what the completed record holds */
	req_fresh(&r);
	must_create(s, &r, &tx);
	reach(s, tx.tx_id, STORE_ST_COMPLETED);
	assert_int_equal(store_tx_get(s, AP, tx.tx_id, STORE_GET_ANSWER, &out, &err), 0);
	assert_int_equal(out.tx_status, 500);
	assert_string_equal(out.tx_signature, SIG);
	assert_int_equal(out.tx_signature_len, strlen(SIG));
	assert_string_equal(out.tx_profile, "mss:demo:sign:loa3:app");
	assert_non_null(out.tx_answer);
	assert_int_equal(out.tx_answer_len, sizeof("raw device answer \x00\x01\x02"));
	assert_int_equal(strlen(out.tx_nonce), 32);
	assert_true(out.tx_prompt_ms > 0 && out.tx_answer_ms > 0 && out.tx_final_ms > 0);
	/* unknown transaction */
	assert_int_equal(move(s, "T00000000000000000000000000000000", STORE_ST_ACCEPTED,
			      STORE_ST_FAILED, T0, &out, &err),
			 -1);
	assert_int_equal(err.status, 101);
	store_tx_clear(&tx);
	store_tx_clear(&out);
	store_close(s);
}

static void
test_change_validation(void **state)
{
	struct store *s = ts_must_open("validation", STORE_OPEN_CREATE);
	struct store_err err;
	struct store_tx tx = { 0 };
	struct store_tx_change c;
	struct req r;
	static const unsigned char ans[] = "a";

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &tx);
#define BAD(from, to)                                                                   \
	do {                                                                            \
		memset(&err, 0, sizeof(err));                                           \
		assert_int_equal(store_tx_transition(s, tx.tx_id, from, to, &c, T0 + 1, \
						     NULL, &err),                       \
				 -1);                                                   \
		assert_int_equal(err.status, 900);                                      \
	} while (0)
	memset(&c, 0, sizeof(c));
	BAD(STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT); /* no nonce */
	c.tc_nonce = "short";
	BAD(STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT);
	c.tc_nonce = "0123456789abcdef0123456789abcde!";
	BAD(STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT);
	c.tc_nonce = "0123456789abcdef0123456789abcdef";
	c.tc_status = 500;
	BAD(STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT); /* status before final */
	c.tc_status = 0;
	c.tc_detail = "x";
	BAD(STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT); /* detail before final */
	memset(&c, 0, sizeof(c));
	c.tc_status = 401;
	BAD(STORE_ST_ACCEPTED, STORE_ST_EXPIRED); /* EXPIRED is 208 */
	c.tc_status = 500;
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED); /* a failure is no signature */
	c.tc_status = 504;
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED);
	c.tc_status = 100;
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED);
	c.tc_status = 0;
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED);
	c.tc_status = 900;
	c.tc_signature = SIG;
	c.tc_signature_len = strlen(SIG);
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED); /* signature outside COMPLETED */
	c.tc_signature = NULL;
	c.tc_signature_len = 0;
	c.tc_detail = "bad\ndetail";
	BAD(STORE_ST_ACCEPTED, STORE_ST_FAILED);
	assert_int_equal(state_of(s, tx.tx_id), STORE_ST_ACCEPTED);
	reach(s, tx.tx_id, STORE_ST_PROMPT_SENT);
	memset(&c, 0, sizeof(c));
	BAD(STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED); /* no answer */
	c.tc_answer = ans;
	c.tc_answer_len = MSSP_STORE_MAX_ANSWER + 1;
	BAD(STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED);
	must_move(s, tx.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED);
	memset(&c, 0, sizeof(c));
	c.tc_status = 500;
	BAD(STORE_ST_ANSWERED, STORE_ST_COMPLETED); /* 500 needs a signature */
	c.tc_status = 502;
	BAD(STORE_ST_ANSWERED, STORE_ST_COMPLETED);
	c.tc_status = 208;
	BAD(STORE_ST_ANSWERED, STORE_ST_COMPLETED); /* 208 is EXPIRED's */
	c.tc_status = 500;
	c.tc_signature = "MII\x01";
	c.tc_signature_len = 4;
	BAD(STORE_ST_ANSWERED, STORE_ST_COMPLETED); /* not base64 text */
	assert_int_equal(state_of(s, tx.tx_id), STORE_ST_ANSWERED);
	/* 503 with the refused signature kept as evidence, or without */
	memset(&c, 0, sizeof(c));
	c.tc_status = 503;
	c.tc_detail = "signature does not verify";
	assert_int_equal(store_tx_transition(s, tx.tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED,
					     &c, T0 + 2, NULL, &err),
			 0);
#undef BAD
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_create_validation(void **state)
{
	struct store *s = ts_must_open("cvalid", STORE_OPEN_CREATE);
	struct store_err err;
	struct store_tx tx = { 0 };
	struct req r;
	char big[MSSP_MSG_MAX_TRANSID + 2];

	(void)state;
#define BADC(stmt)                                                                     \
	do {                                                                           \
		req_fresh(&r);                                                         \
		stmt;                                                                  \
		memset(&err, 0, sizeof(err));                                          \
		assert_int_equal(store_tx_create(s, &r.n, 0, T0, &tx, &err), -1);      \
		assert_int_equal(err.status, 900);                                     \
		assert_non_null(strstr(err.detail, "invalid argument"));               \
	} while (0)
	BADC(r.n.tn_deadline_ms = T0);
	BADC(r.n.tn_deadline_ms = T0 - 1);
	BADC(r.n.tn_deadline_ms = T0 + MSSP_STORE_MAX_TTL_MS + 1);
	BADC(r.n.tn_hash_len = MSSP_STORE_MIN_HASH - 1);
	BADC(r.n.tn_hash = NULL);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	BADC(r.n.tn_ap_trans_id = big);
	BADC(r.n.tn_ap_trans_id = "");
	BADC(r.n.tn_ap_id = "has space");
	BADC(r.n.tn_msisdn = "");
	BADC(r.n.tn_key_id = NULL);
	BADC(r.n.tn_mode = (enum store_mode)4);
	BADC(r.n.tn_request_len = 0);
	BADC(r.n.tn_request_len = MSSP_STORE_MAX_REQUEST + 1);
	BADC(r.n.tn_notify_url = "");
#undef BADC
	req_fresh(&r);
	assert_int_equal(store_tx_create(s, &r.n, 0x80, T0, &tx, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_tx_create(s, NULL, 0, T0, &tx, &err), -1);
	assert_int_equal(err.status, 900);
	store_close(s);
}

static void
test_nonce(void **state)
{
	struct store *s = ts_must_open("nonce", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 }, got = { 0 };
	struct store_tx_change c = { .tc_nonce = "nOnCe_0123456789-abcdefABCDEF" };
	struct req r;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &a);
	req_fresh(&r);
	must_create(s, &r, &b);
	assert_int_equal(store_tx_transition(s, a.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT,
					     &c, T0 + 1, &got, &err),
			 0);
	assert_string_equal(got.tx_nonce, c.tc_nonce);
	assert_int_equal(got.tx_prompt_ms, T0 + 1);
	assert_int_equal(store_tx_get_by_nonce(s, c.tc_nonce, 0, &got, &err), 0);
	assert_string_equal(got.tx_id, a.tx_id);
	assert_int_equal(store_tx_get_by_nonce(s, "nOnCe_0123456789-abcdefABCDEX", 0, &got, &err),
			 -1);
	assert_int_equal(err.status, 101);
	assert_int_equal(store_tx_get_by_nonce(s, "bad nonce!", 0, &got, &err), -1);
	assert_int_equal(err.status, 101);
	/* a nonce binds one transaction only (A-24) */
	assert_int_equal(store_tx_transition(s, b.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT,
					     &c, T0 + 1, NULL, &err),
			 -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(state_of(s, b.tx_id), STORE_ST_ACCEPTED);
	/* a replayed device answer is accepted once */
	must_move(s, a.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED);
	assert_int_equal(move(s, a.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED, T0 + 2, &got,
			      &err),
			 -1);
	assert_int_equal(err.status, STORE_STATUS_CONFLICT);
	assert_int_equal(got.tx_state, STORE_ST_ANSWERED);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_tx_clear(&got);
	store_close(s);
}

static void
test_late_answer(void **state)
{
	struct store *s = ts_must_open("late", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 }, got = { 0 };
	struct req r;
	size_t n = 0;

	(void)state;
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 1000;
	must_create(s, &r, &a);
	reach(s, a.tx_id, STORE_ST_PROMPT_SENT);
	assert_int_equal(store_tx_expire_due(s, T0 + 1000, NULL, NULL, &n, &err), 0);
	assert_int_equal(n, 1);
	/* A-23: the answer after expiry is refused, reported as such */
	assert_int_equal(move(s, a.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED, T0 + 1200, &got,
			      &err),
			 -1);
	assert_int_equal(err.status, STORE_STATUS_FINAL);
	assert_int_equal(got.tx_state, STORE_ST_EXPIRED);
	assert_int_equal(got.tx_status, 208);
	assert_int_equal(store_tx_get(s, AP, a.tx_id, STORE_GET_ANSWER, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_EXPIRED);
	assert_int_equal(got.tx_status, 208);
	assert_null(got.tx_answer); /* never upgraded */
	assert_null(got.tx_signature);
	/* past the deadline, not swept yet: refused too, unchanged */
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 1000;
	must_create(s, &r, &b);
	assert_int_equal(move(s, b.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, T0 + 1000, &got,
			      &err),
			 -1);
	assert_int_equal(err.status, STORE_STATUS_PAST_DEADLINE);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	must_move(s, b.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT);
	assert_int_equal(move(s, b.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED, T0 + 1001, &got,
			      &err),
			 -1);
	assert_int_equal(err.status, STORE_STATUS_PAST_DEADLINE);
	assert_int_equal(state_of(s, b.tx_id), STORE_ST_PROMPT_SENT);
	/* the caller then expires it itself */
	assert_int_equal(move(s, b.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_EXPIRED, T0 + 1001, &got,
			      &err),
			 0);
	assert_int_equal(got.tx_status, 208);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_tx_clear(&got);
	store_close(s);
}

static void
test_receipt_once(void **state)
{
	struct store *s = ts_must_open("receipt", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 }, got = { 0 };
	struct req r;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &a);
	/* not completed yet */
	assert_int_equal(store_tx_receipt(s, AP, a.tx_id, "Thanks", 6, T0 + 5, &err), -1);
	assert_int_equal(err.status, 101);
	assert_string_equal(err.detail, "transaction has no signature to acknowledge");
	reach(s, a.tx_id, STORE_ST_COMPLETED);
	assert_int_equal(store_tx_receipt(s, AP, a.tx_id, "Thanks", 6, T0 + 5, &err), 0);
	assert_int_equal(store_tx_get(s, AP, a.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_receipt_ms, T0 + 5);
	/* the second one */
	assert_int_equal(store_tx_receipt(s, AP, a.tx_id, "Thanks", 6, T0 + 6, &err), -1);
	assert_int_equal(err.status, 101);
	assert_string_equal(err.detail, "Receipt already sent");
	/* a failed transaction */
	req_fresh(&r);
	must_create(s, &r, &b);
	reach(s, b.tx_id, STORE_ST_FAILED);
	assert_int_equal(store_tx_receipt(s, AP, b.tx_id, "Thanks", 6, T0 + 5, &err), -1);
	assert_int_equal(err.status, 101);
	/* bounds */
	assert_int_equal(store_tx_receipt(s, AP, a.tx_id, "", 0, T0 + 5, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_tx_receipt(s, AP, a.tx_id, "x", MSSP_STORE_MAX_RECEIPT + 1, T0 + 5,
					  &err),
			 -1);
	assert_int_equal(err.status, 900);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_tx_clear(&got);
	store_close(s);
}

struct seen {
	int n;
	int bad;
	char ids[256][STORE_TX_ID_LEN + 1];
};

static int
expire_cb(void *arg, const struct store_tx *tx)
{
	struct seen *sn = arg;

	/* reported after the commit: the record already says so */
	if (tx->tx_state != STORE_ST_EXPIRED || tx->tx_status != 208)
		sn->bad++;
	if (sn->n < 256)
		memcpy(sn->ids[sn->n], tx->tx_id, sizeof(sn->ids[0]));
	sn->n++;
	return 0;
}

static void
test_expire_due(void **state)
{
	struct store *s = ts_must_open("expire", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 }, got = { 0 };
	struct seen *sn = calloc(1, sizeof(*sn));
	struct req r;
	size_t n = 0;
	int i;

	(void)state;
	assert_non_null(sn);
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 1000;
	must_create(s, &r, &a); /* ACCEPTED, due at +1000 */
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 2000;
	must_create(s, &r, &b); /* PROMPT_SENT, due at +2000 */
	reach(s, b.tx_id, STORE_ST_PROMPT_SENT);
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 1000;
	must_create(s, &r, &c); /* ANSWERED in time: not expired */
	reach(s, c.tx_id, STORE_ST_ANSWERED);
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 10000;
	must_create(s, &r, &d); /* not due */
	req_fresh(&r);
	r.n.tn_deadline_ms = T0 + 1000;
	must_create(s, &r, &e); /* already final */
	reach(s, e.tx_id, STORE_ST_FAILED);

	assert_int_equal(store_tx_expire_due(s, T0 + 999, expire_cb, sn, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_tx_expire_due(s, T0 + 1500, expire_cb, sn, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sn->n, 1);
	assert_string_equal(sn->ids[0], a.tx_id);
	assert_int_equal(store_tx_expire_due(s, T0 + 2000, expire_cb, sn, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(sn->ids[1], b.tx_id);
	assert_int_equal(sn->bad, 0);
	assert_int_equal(store_tx_get(s, AP, b.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_final_ms, T0 + 2000);
	assert_int_equal(state_of(s, c.tx_id), STORE_ST_ANSWERED);
	assert_int_equal(state_of(s, d.tx_id), STORE_ST_ACCEPTED);
	assert_int_equal(state_of(s, e.tx_id), STORE_ST_FAILED);
	assert_int_equal(store_tx_expire_due(s, T0 + 3000, expire_cb, sn, &n, &err), 0);
	assert_int_equal(n, 0);

	/* in bulk: several batches, every one reported once */
	memset(sn, 0, sizeof(*sn));
	for (i = 0; i < 2 * MSSP_STORE_SCAN_BATCH + 7; i++) {
		req_fresh(&r);
		r.n.tn_deadline_ms = T0 + 4000 + i;
		must_create(s, &r, &got);
		if (i % 2)
			reach(s, got.tx_id, STORE_ST_PROMPT_SENT);
	}
	assert_int_equal(store_tx_expire_due(s, T0 + 9000, expire_cb, sn, &n, &err), 0);
	assert_int_equal(n, 2 * MSSP_STORE_SCAN_BATCH + 7);
	assert_int_equal(sn->n, 2 * MSSP_STORE_SCAN_BATCH + 7);
	assert_int_equal(sn->bad, 0);
	assert_int_equal(state_of(s, d.tx_id), STORE_ST_ACCEPTED); /* +10000 */
	free(sn);
	store_tx_clear(&a);
	store_tx_clear(&b);
	store_tx_clear(&c);
	store_tx_clear(&d);
	store_tx_clear(&e);
	store_tx_clear(&got);
	store_close(s);
}

/* The recovery rules of store.h, applied by a test "caller". */
struct recov {
	struct store *rc_s;
	int64_t rc_now;
	int rc_seen[STORE_ST_COUNT];
	int rc_prompts;
	int rc_expired;
	int rc_completed;
	int rc_bad;
};

static int
recover_cb(void *arg, const struct store_tx *tx)
{
	struct recov *rc = arg;
	struct store_err err;
	struct store_tx_change c;
	char nonce[64];

	if (store_state_final(tx->tx_state) || tx->tx_request == NULL)
		rc->rc_bad++; /* only open ones, with their request document */
	rc->rc_seen[tx->tx_state]++;
	switch (tx->tx_state) {
	case STORE_ST_ACCEPTED:
	case STORE_ST_PROMPT_SENT:
		if (rc->rc_now >= tx->tx_deadline_ms) {
			if (move(rc->rc_s, tx->tx_id, tx->tx_state, STORE_ST_EXPIRED, rc->rc_now, NULL,
				 &err) == 0)
				rc->rc_expired++;
		} else if (tx->tx_state == STORE_ST_ACCEPTED) {
			/* CAS first, then (and only then) the one prompt */
			change_for(STORE_ST_PROMPT_SENT, &c, nonce, sizeof(nonce));
			if (store_tx_transition(rc->rc_s, tx->tx_id, STORE_ST_ACCEPTED,
						STORE_ST_PROMPT_SENT, &c, rc->rc_now, NULL,
						&err) == 0)
				rc->rc_prompts++;
		}
		break;
	case STORE_ST_ANSWERED:
		if (tx->tx_answer == NULL)
			rc->rc_bad++;
		else if (move(rc->rc_s, tx->tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED, rc->rc_now,
			      NULL, &err) == 0)
			rc->rc_completed++;
		break;
	default:
		break;
	}
	return 0;
}

static void
test_recover_scan(void **state)
{
	struct store *s = ts_must_open("recover", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct recov rc;
	struct req r;
	size_t n = 0;
	int i;
	const int per = 30; /* x 3 open states: more than one page */

	(void)state;
	for (i = 0; i < per * 6; i++) {
		req_fresh(&r);
		/* a third of each state past its deadline at recovery time */
		r.n.tn_deadline_ms = ((i / 6) % 3 == 0) ? T0 + 5000 : T0 + 60000;
		must_create(s, &r, &tx);
		reach(s, tx.tx_id, (enum store_state)(STORE_ST_ACCEPTED + i % 6));
	}
	/* the handle goes away mid-way (as at a crash), another one recovers */
	store_close(s);
	s = ts_must_open("recover", 0);
	memset(&rc, 0, sizeof(rc));
	rc.rc_s = s;
	rc.rc_now = T0 + 10000;
	assert_int_equal(store_tx_recover_scan(s, recover_cb, &rc, &n, &err), 0);
	assert_int_equal(n, per * 3);
	assert_int_equal(rc.rc_bad, 0);
	assert_int_equal(rc.rc_seen[STORE_ST_ACCEPTED], per);
	assert_int_equal(rc.rc_seen[STORE_ST_PROMPT_SENT], per);
	assert_int_equal(rc.rc_seen[STORE_ST_ANSWERED], per);
	assert_int_equal(rc.rc_completed, per);
	/* past the deadline: a third of the ACCEPTED and PROMPT_SENT ones */
	assert_int_equal(rc.rc_expired, 2 * (per / 3));
	assert_int_equal(rc.rc_prompts, per - per / 3);
	/* second pass: only PROMPT_SENT within the deadline remain open, and
	 * nothing is prompted twice */
	memset(&rc, 0, sizeof(rc));
	rc.rc_s = s;
	rc.rc_now = T0 + 10000;
	assert_int_equal(store_tx_recover_scan(s, recover_cb, &rc, &n, &err), 0);
	assert_int_equal(rc.rc_seen[STORE_ST_ACCEPTED], 0);
	assert_int_equal(rc.rc_seen[STORE_ST_ANSWERED], 0);
	assert_int_equal(rc.rc_prompts, 0);
	assert_int_equal(n, (size_t)rc.rc_seen[STORE_ST_PROMPT_SENT]);
	assert_int_equal(n, 2 * (per - per / 3));
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_count_outstanding(void **state)
{
	struct store *s = ts_must_open("count", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct req r;
	uint64_t n = 99;
	int i;

	(void)state;
	assert_int_equal(store_tx_count_outstanding(s, AP, &n, &err), 0);
	assert_int_equal(n, 0);
	for (i = 0; i < 6; i++) {
		req_fresh(&r);
		must_create(s, &r, &tx);
		if (i < 3)
			reach(s, tx.tx_id, (enum store_state)(STORE_ST_ACCEPTED + i));
		else
			reach(s, tx.tx_id, (enum store_state)(STORE_ST_COMPLETED + i - 3));
	}
	assert_int_equal(store_tx_count_outstanding(s, AP, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_tx_count_outstanding(s, AP2, &n, &err), 0);
	assert_int_equal(n, 0);
	store_tx_clear(&tx);
	store_close(s);
}

static void
test_readonly(void **state)
{
	struct store *s = ts_must_open("ro", STORE_OPEN_CREATE), *ro, *c;
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, got = { 0 };
	struct req r;
	char uri[512];
	size_t n;

	(void)state;
	req_fresh(&r);
	must_create(s, &r, &tx);
	ro = ts_must_open("ro", STORE_OPEN_READONLY);
	assert_int_equal(store_health(ro, &err), 0);
	assert_int_equal(store_tx_get(ro, AP, tx.tx_id, STORE_GET_REQUEST, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	req_fresh(&r);
	assert_int_equal(store_tx_create(ro, &r.n, 0, T0, &got, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(move(ro, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_FAILED, T0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_tx_expire_due(ro, T0 + 100000, NULL, NULL, &n, &err), -1);
	assert_int_equal(err.status, 900);
	/* the writer's later changes are visible to the reader */
	reach(s, tx.tx_id, STORE_ST_PROMPT_SENT);
	assert_int_equal(state_of(ro, tx.tx_id), STORE_ST_PROMPT_SENT);
	c = store_clone(ro, &err); /* a clone stays read-only */
	assert_non_null(c);
	assert_int_equal(store_tx_create(c, &r.n, 0, T0, &got, &err), -1);
	assert_int_equal(err.status, 900);
	store_close(c);
	store_close(ro);
	/* read-only never creates */
	ts_db_uri(uri, sizeof(uri), "ro-missing");
	assert_null(store_open(uri, STORE_OPEN_READONLY, &err));
	assert_int_equal(err.status, 900);
	store_tx_clear(&tx);
	store_tx_clear(&got);
	store_close(s);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void
test_unavailable(void **state)
{
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, got = { 0 };
	struct store *s;
	struct req r;
	char uri[1024], path[1024], dir[600], moved[700];
	struct stat sb;
	sqlite3 *db;

	(void)state;
	/* missing directory */
	snprintf(uri, sizeof(uri), "sqlite:%s/no/such/dir/x.db", ts_dir);
	assert_null(store_open(uri, STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	/* missing file without CREATE: 900, and nothing is created */
	ts_db_uri(uri, sizeof(uri), "absent");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	snprintf(path, sizeof(path), "%s/absent.db", ts_dir);
	assert_int_equal(stat(path, &sb), -1);
	/* an empty file is not initialised silently */
	snprintf(path, sizeof(path), "%s/empty.db", ts_dir);
	write_file(path, "", 0);
	ts_db_uri(uri, sizeof(uri), "empty");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "not initialised"));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0); /* and left untouched */
	/* garbage */
	snprintf(path, sizeof(path), "%s/garbage.db", ts_dir);
	{
		char junk[512];

		memset(junk, 'J', sizeof(junk));
		write_file(path, junk, sizeof(junk));
	}
	ts_db_uri(uri, sizeof(uri), "garbage");
	assert_null(store_open(uri, STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	/* a directory */
	snprintf(path, sizeof(path), "%s/adir.db", ts_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	ts_db_uri(uri, sizeof(uri), "adir");
	assert_null(store_open(uri, STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	/* someone else's SQLite database */
	snprintf(path, sizeof(path), "%s/alien.db", ts_dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x INTEGER)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ts_db_uri(uri, sizeof(uri), "alien");
	assert_null(store_open(uri, STORE_OPEN_CREATE, &err));
	assert_int_equal(err.status, 900);
	/* a schema newer than this program */
	s = ts_must_open("newer", STORE_OPEN_CREATE);
	store_close(s);
	db = ts_raw_open("newer");
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99, 0)", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ts_db_uri(uri, sizeof(uri), "newer");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "newer"));

	/* The database goes away under an open handle (its directory is
	 * moved away): 900 for writes, reads and health, never a crash; when
	 * it comes back, the handle reconnects and nothing was lost. */
	snprintf(dir, sizeof(dir), "%s/live", ts_dir);
	snprintf(moved, sizeof(moved), "%s/live-moved", ts_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(uri, sizeof(uri), "sqlite:%s/m.db", dir);
	s = store_open(uri, STORE_OPEN_CREATE, &err);
	assert_non_null(s);
	req_fresh(&r);
	must_create(s, &r, &tx);
	assert_int_equal(rename(dir, moved), 0);
	assert_int_equal(store_health(s, &err), -1);
	assert_int_equal(err.status, 900);
	req_fresh(&r);
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &got, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_tx_get(s, AP, tx.tx_id, 0, &got, &err), -1);
	assert_int_equal(err.status, 900); /* F-02: not 101, not 208 */
	assert_int_equal(move(s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_FAILED, T0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(rename(moved, dir), 0);
	assert_int_equal(store_health(s, &err), 0); /* forced reconnect */
	assert_int_equal(store_tx_get(s, AP, tx.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	must_create(s, &r, &got);
	/* now removed for good */
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	assert_int_equal(store_health(s, &err), -1);
	assert_int_equal(err.status, 900);
	req_fresh(&r);
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &got, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_health(s, &err), -1);
	assert_int_equal(err.status, 900);
	/* the reconnect attempt did not recreate anything */
	assert_int_equal(stat(dir, &sb), -1);
	store_close(s);
	store_tx_clear(&tx);
	store_tx_clear(&got);
}

/* kill -9 a writer at random moments: everything it saw committed is
 * there, in at least the state it saw, and the file is sound. */
#define CRASH_ROUNDS 20

static void
crash_child(const char *uri, int fd, int round)
{
	struct store_err err;
	struct store_tx tx = { 0 };
	struct store *s = store_open(uri, 0, &err);
	struct req r;
	char line[64];
	int i, n;

	if (s == NULL)
		_exit(3);
	/* ready: the parent's kill timer starts now (the test is about
	 * commits, not about how long an open takes on a loaded machine) */
	if (write(fd, "R", 1) != 1)
		_exit(5);
	for (i = 0; i < 100000; i++) {
		char aptid[32], msisdn[32];

		snprintf(aptid, sizeof(aptid), "K%d_%d", round, i);
		snprintf(msisdn, sizeof(msisdn), "+1%03d%07d", round, i);
		req_init(&r, AP, aptid, msisdn, "sign", aptid, T0 + 80000);
		if (store_tx_create(s, &r.n, 0, T0, &tx, &err) != 0)
			_exit(4);
		/* reported only AFTER the commit returned */
		n = snprintf(line, sizeof(line), "C %s\n", tx.tx_id);
		if (write(fd, line, (size_t)n) != n)
			_exit(5);
		if (move(s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, T0 + 1, NULL, &err) !=
		    0)
			_exit(6);
		n = snprintf(line, sizeof(line), "P %s\n", tx.tx_id);
		if (write(fd, line, (size_t)n) != n)
			_exit(5);
	}
	_exit(0);
}

static void
test_crash_durability(void **state)
{
	struct store_err err = { 0 };
	struct store_tx got = { 0 };
	struct store *s = ts_must_open("crash", STORE_OPEN_CREATE);
	char uri[512], buf[65536 * 4], ok[64];
	int round, checked = 0, prompted = 0;
	sqlite3 *db;

	(void)state;
	store_close(s); /* no connection of ours crosses the fork */
	ts_db_uri(uri, sizeof(uri), "crash");
	for (round = 0; round < CRASH_ROUNDS; round++) {
		unsigned char rnd;
		size_t len = 0;
		ssize_t k;
		int p[2], status;
		pid_t pid;
		char *line, *save = NULL;

		assert_int_equal(RAND_bytes(&rnd, 1), 1);
		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(uri, p[1], round);
		}
		close(p[1]);
		if (read(p[0], buf, 1) != 1 || buf[0] != 'R')
			fail_msg("round %d: the child did not open the store", round);
		usleep(2000 + (useconds_t)rnd * 150); /* 2..40 ms */
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("child ended by itself: status %d", status);
		while (len < sizeof(buf) - 1 &&
		       (k = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)k;
		close(p[0]);
		buf[len] = '\0';
		s = ts_must_open("crash", 0);
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strlen(line) != 2 + STORE_TX_ID_LEN)
				continue; /* never happens: one write() per line */
			if (store_tx_get_by_id(s, line + 2, 0, &got, &err) != 0)
				fail_msg("round %d: committed %s lost: %d %s", round, line + 2,
					 err.status, err.detail);
			if (line[0] == 'P') {
				assert_int_equal(got.tx_state, STORE_ST_PROMPT_SENT);
				prompted++;
			} else {
				assert_true(got.tx_state == STORE_ST_ACCEPTED ||
					    got.tx_state == STORE_ST_PROMPT_SENT);
			}
			checked++;
		}
		store_tx_clear(&got);
		store_close(s);
		db = ts_raw_open("crash");
		ts_raw_text(db, "PRAGMA integrity_check", ok, sizeof(ok));
		assert_string_equal(ok, "ok");
		sqlite3_close(db);
	}
	print_message("crash: %d rounds, %d reported commits checked (%d PROMPT_SENT)\n",
		      CRASH_ROUNDS, checked, prompted);
	assert_true(checked > 0);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void
test_transid_unique(void **state)
{
	enum { N = 10000 };
	struct store_err err = { 0 };
	char shm[64] = "/dev/shm/test_store.XXXXXX", uri[128], cmd[160];
	bool on_shm = mkdtemp(shm) != NULL;
	/* This test is about the ids, not the disk: tmpfs keeps it fast
	 * (fsync is free there) whatever else runs on the machine. */
	struct store *s;
	struct store_tx tx = { 0 };
	char(*ids)[STORE_TX_ID_LEN + 1] = calloc(N, sizeof(*ids));
	struct timespec a, b;
	struct req r;
	double ms;
	int i;

	(void)state;
	assert_non_null(ids);
	if (on_shm) {
		snprintf(uri, sizeof(uri), "sqlite:%s/unique.db", shm);
		s = store_open(uri, STORE_OPEN_CREATE, &err);
		assert_non_null(s);
	} else {
		s = ts_must_open("unique", STORE_OPEN_CREATE);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < N; i++) {
		char aptid[32], msisdn[32];

		snprintf(aptid, sizeof(aptid), "U%d", i);
		snprintf(msisdn, sizeof(msisdn), "+44%09d", i);
		req_init(&r, AP, aptid, msisdn, "sign", aptid, T0 + 80000);
		if (store_tx_create(s, &r.n, 0, T0, &tx, &err) != 0)
			fail_msg("create %d: %d %s", i, err.status, err.detail);
		assert_true(id_shape_ok(tx.tx_id));
		memcpy(ids[i], tx.tx_id, sizeof(ids[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	print_message("unique: %d creations in %.0f ms (%.0f/s, on %s)\n", N, ms, N / ms * 1000,
		      on_shm ? "tmpfs" : "disk");
	qsort(ids, N, sizeof(*ids), cmp_id);
	for (i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
	store_tx_clear(&tx);
	store_close(s);
	if (on_shm) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shm);
		assert_int_equal(system(cmd), 0);
	}
}

/* A user's transactions, newest first, without the large columns; other
 * users' are not listed; an unknown MSISDN has none. */
static void
test_tx_list_user(void **state)
{
	struct store *s = ts_must_open("txlist", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, out[8];
	struct store_counts cnt;
	char ids[6][STORE_TX_ID_LEN + 1], key[16];
	struct req r;
	size_t n, i;

	(void)state;
	memset(out, 0, sizeof(out));
	/* six of one user (one key each: all may stay open), created at
	 * T0 + i; one of another user */
	for (i = 0; i < 6; i++) {
		char aptid[16];

		seq++;
		snprintf(aptid, sizeof(aptid), "L%d", seq);
		snprintf(key, sizeof(key), "k%zu", i);
		req_init(&r, AP, aptid, "+35847011111", key, aptid, T0 + 80000);
		if (store_tx_create(s, &r.n, 0, T0 + (int64_t)i, &tx, &err) != 0)
			fail_msg("create: %d %s", err.status, err.detail);
		memcpy(ids[i], tx.tx_id, sizeof(ids[i]));
	}
	reach(s, ids[2], STORE_ST_COMPLETED); /* with a signature */
	req_fresh(&r);
	must_create(s, &r, &tx);
	assert_int_equal(store_tx_list_user(s, "+35847011111", out, 8, &n, &err), 0);
	assert_int_equal(n, 6);
	for (i = 0; i < 6; i++) {
		assert_string_equal(out[i].tx_id, ids[5 - i]);
		assert_string_equal(out[i].tx_msisdn, "+35847011111");
		assert_null(out[i].tx_request);
		assert_null(out[i].tx_answer);
		assert_null(out[i].tx_signature);
	}
	assert_int_equal(out[3].tx_state, STORE_ST_COMPLETED);
	assert_int_equal(out[3].tx_status, 500);
	/* truncated to max; the array is refilled without a leak */
	assert_int_equal(store_tx_list_user(s, "+35847011111", out, 2, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].tx_id, ids[4]);
	assert_int_equal(store_tx_list_user(s, r.msisdn, out, 8, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].tx_id, tx.tx_id);
	assert_string_equal(out[1].tx_id, ""); /* cleared */
	/* no such user, or an id no user can have: none */
	assert_int_equal(store_tx_list_user(s, "+35847099999", out, 8, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_tx_list_user(s, "no user", out, 8, &n, &err), 0);
	assert_int_equal(n, 0);
	/* bad arguments */
	expect_tx_list_900(store_tx_list_user(s, NULL, out, 8, &n, &err), &err);
	expect_tx_list_900(store_tx_list_user(s, "+35847011111", NULL, 8, &n, &err), &err);
	expect_tx_list_900(store_tx_list_user(s, "+35847011111", out, 8, NULL, &err), &err);
	expect_tx_list_900(store_tx_list_user(NULL, "+35847011111", out, 8, &n, &err), &err);
	{
		struct store_tx *big = calloc(MSSP_STORE_MAX_LIST + 1, sizeof(*big));

		assert_non_null(big);
		expect_tx_list_900(store_tx_list_user(s, "+35847011111", big,
						      MSSP_STORE_MAX_LIST + 1, &n, &err),
				   &err);
		free(big);
	}
	/* the open count: 5 of the user (one completed) and the other one */
	assert_int_equal(store_counts(s, &cnt, &err), 0);
	assert_int_equal(cnt.sc_tx_open, 6);
	for (i = 0; i < 8; i++)
		store_tx_clear(&out[i]);
	store_tx_clear(&tx);
	store_close(s);
}

/* The schema of versions 1 and 2 exactly as the previous program created
 * it (store_sqlite.c before issue 5; never edit). */
#define V2_OPEN "('ACCEPTED','PROMPT_SENT','ANSWERED')"
#define V2_DUE "('ACCEPTED','PROMPT_SENT')"
#define V2_FINAL "('COMPLETED','EXPIRED','FAILED')"
static const char *const v2_schema[2] = {
	/* 1: transactions and receipts */
	"CREATE TABLE tx ("
	" mssp_trans_id TEXT NOT NULL PRIMARY KEY,"
	" ap_id TEXT NOT NULL,"
	" ap_trans_id TEXT NOT NULL,"
	" content_hash BLOB NOT NULL,"
	" msisdn TEXT NOT NULL,"
	" key_id TEXT NOT NULL,"
	" mode INTEGER NOT NULL CHECK (mode BETWEEN 1 AND 3),"
	" state TEXT NOT NULL CHECK (state IN"
	"  ('ACCEPTED','PROMPT_SENT','ANSWERED','COMPLETED','EXPIRED','FAILED')),"
	" status INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" deadline_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" notify_url TEXT,"
	" request BLOB NOT NULL,"
	" nonce TEXT UNIQUE,"
	" prompt_ms INTEGER,"
	" answer BLOB,"
	" answer_ms INTEGER,"
	" signature TEXT,"
	" profile TEXT,"
	" detail TEXT,"
	" final_ms INTEGER,"
	" UNIQUE (ap_id, ap_trans_id),"
	" CHECK ((state IN " V2_FINAL ") = (status <> 0)),"
	" CHECK (state <> 'EXPIRED' OR status = 208),"
	" CHECK (state NOT IN ('PROMPT_SENT','ANSWERED') OR nonce IS NOT NULL),"
	" CHECK (state <> 'ANSWERED' OR answer IS NOT NULL),"
	" CHECK (status NOT IN (500, 502) OR signature IS NOT NULL)"
	") STRICT;"
	/* A-22: one outstanding request per user and key, by the database */
	"CREATE UNIQUE INDEX tx_one_outstanding ON tx (msisdn, key_id)"
	" WHERE state IN " V2_OPEN ";"
	"CREATE INDEX tx_due ON tx (deadline_ms) WHERE state IN " V2_DUE ";"
	"CREATE INDEX tx_open_ap ON tx (ap_id) WHERE state IN " V2_OPEN ";"
	"CREATE INDEX tx_open_age ON tx (created_ms, mssp_trans_id) WHERE state IN " V2_OPEN ";"
	/* The transition table of store.c, again in the database. */
	"CREATE TRIGGER tx_final_frozen BEFORE UPDATE ON tx"
	" WHEN OLD.state IN " V2_FINAL
	" BEGIN SELECT RAISE(ABORT, 'final transaction is immutable'); END;"
	"CREATE TRIGGER tx_transition BEFORE UPDATE OF state ON tx"
	" WHEN NEW.state <> OLD.state AND NOT ("
	"  (OLD.state = 'ACCEPTED' AND NEW.state IN ('PROMPT_SENT','EXPIRED','FAILED')) OR"
	"  (OLD.state = 'PROMPT_SENT' AND NEW.state IN ('ANSWERED','EXPIRED','FAILED')) OR"
	"  (OLD.state = 'ANSWERED' AND NEW.state IN ('COMPLETED','FAILED')))"
	" BEGIN SELECT RAISE(ABORT, 'illegal state transition'); END;"
	"CREATE TRIGGER tx_keep_open BEFORE DELETE ON tx"
	" WHEN OLD.state IN " V2_OPEN
	" BEGIN SELECT RAISE(ABORT, 'outstanding transaction'); END;"
	/* A-25: at most one receipt, and only for a delivered signature */
	"CREATE TABLE receipt ("
	" mssp_trans_id TEXT NOT NULL PRIMARY KEY REFERENCES tx (mssp_trans_id),"
	" message BLOB NOT NULL,"
	" created_ms INTEGER NOT NULL"
	") STRICT;"
	"CREATE TRIGGER receipt_needs_signature BEFORE INSERT ON receipt"
	" WHEN NOT EXISTS (SELECT 1 FROM tx WHERE mssp_trans_id = NEW.mssp_trans_id"
	"  AND state = 'COMPLETED' AND status IN (500, 502))"
	" BEGIN SELECT RAISE(ABORT, 'no signature to acknowledge'); END;",
	/* 2: the user registry.  Ownership (a device or key never moves to
	 * another user), a key's device being its user's, and "a revocation
	 * is undone only by a new certificate" are in the schema; the
	 * per-user caps are checked by the writer under the write lock (a
	 * number in a trigger would outlive a change of limits.h). */
	"CREATE TABLE users ("
	" msisdn TEXT NOT NULL PRIMARY KEY CHECK (length(msisdn) BETWEEN 7 AND 16"
	"  AND substr(msisdn, 1, 1) = '+' AND substr(msisdn, 2) NOT GLOB '*[^0-9]*'),"
	" state INTEGER NOT NULL CHECK (state IN (1, 2)),"
	" name TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE devices ("
	" device_id TEXT NOT NULL PRIMARY KEY,"
	" msisdn TEXT NOT NULL REFERENCES users (msisdn),"
	" auth_spki BLOB NOT NULL CHECK (length(auth_spki) > 0),"
	/* SECRET at rest (store.md): to be wrapped under the master key */
	" e2e_key BLOB NOT NULL CHECK (length(e2e_key) = 32),"
	" push_token TEXT,"
	" state INTEGER NOT NULL CHECK (state IN (1, 2)),"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" UNIQUE (device_id, msisdn)" /* the parent key of keys' device */
	") STRICT;"
	"CREATE INDEX devices_by_user ON devices (msisdn, created_ms);"
	"CREATE TABLE keys ("
	" key_id TEXT NOT NULL PRIMARY KEY,"
	" key_group TEXT NOT NULL,"
	" msisdn TEXT NOT NULL REFERENCES users (msisdn),"
	" device_id TEXT NOT NULL,"
	" purpose INTEGER NOT NULL CHECK (purpose IN (1, 2)),"
	" profiles TEXT NOT NULL CHECK (length(profiles) > 0),"
	" has_pin INTEGER NOT NULL CHECK (has_pin IN (0, 1)),"
	" state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
	" cert BLOB,"
	" cert_serial TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" UNIQUE (device_id, key_group),"
	" FOREIGN KEY (device_id, msisdn) REFERENCES devices (device_id, msisdn)"
	") STRICT;"
	/* store_user_keys: a user's keys in creation order (rowid breaks ties) */
	"CREATE INDEX keys_by_user ON keys (msisdn, created_ms);"
	"CREATE TRIGGER devices_keep_user BEFORE UPDATE OF msisdn ON devices"
	" WHEN NEW.msisdn <> OLD.msisdn"
	" BEGIN SELECT RAISE(ABORT, 'device belongs to another user'); END;"
	"CREATE TRIGGER keys_keep_user BEFORE UPDATE OF msisdn ON keys"
	" WHEN NEW.msisdn <> OLD.msisdn"
	" BEGIN SELECT RAISE(ABORT, 'key belongs to another user'); END;"
	"CREATE TRIGGER keys_revoked_stays BEFORE UPDATE ON keys"
	" WHEN OLD.state = 2 AND NEW.state <> 2 AND NEW.cert IS OLD.cert"
	" BEGIN SELECT RAISE(ABORT, 'revoked key'); END;",
};

/* Migration 3 exactly as the previous program ran it (store_sqlite.c
 * before issue 6; never edit): applied after v2_schema, it makes the
 * version-3 database that test_migrate_v3 migrates. */
static const char *const v3_migration =
	"ALTER TABLE users ADD COLUMN given_name TEXT;"
	"ALTER TABLE users ADD COLUMN surname TEXT;"
	"ALTER TABLE users ADD COLUMN id_number TEXT;"
	"ALTER TABLE users ADD COLUMN country TEXT CHECK (country IS NULL OR"
	" (length(country) = 2 AND country NOT GLOB '*[^A-Z]*'));"
	"ALTER TABLE users ADD COLUMN lang TEXT;"
	"CREATE TABLE keys_v3 ("
	" key_id TEXT NOT NULL PRIMARY KEY,"
	" key_group TEXT NOT NULL,"
	" msisdn TEXT NOT NULL REFERENCES users (msisdn),"
	" device_id TEXT NOT NULL,"
	" purpose INTEGER NOT NULL CHECK (purpose IN (1, 2)),"
	" profiles TEXT NOT NULL CHECK (length(profiles) > 0),"
	" has_pin INTEGER NOT NULL CHECK (has_pin IN (0, 1)),"
	" state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
	" cert BLOB,"
	" cert_serial TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" spki_fp BLOB CHECK (spki_fp IS NULL OR length(spki_fp) = 32),"
	" UNIQUE (device_id, key_group)"
	") STRICT;"
	"INSERT INTO keys_v3 (rowid, key_id, key_group, msisdn, device_id, purpose, profiles,"
	" has_pin, state, cert, cert_serial, created_ms, updated_ms)"
	" SELECT rowid, key_id, key_group, msisdn, device_id, purpose, profiles, has_pin, state,"
	" cert, cert_serial, created_ms, updated_ms FROM keys;"
	"DROP TABLE keys;"
	"ALTER TABLE keys_v3 RENAME TO keys;"
	"CREATE INDEX keys_by_user ON keys (msisdn, created_ms);"
	"CREATE INDEX keys_by_age ON keys (created_ms, key_id);" /* store_key_scan */
	"CREATE UNIQUE INDEX keys_spki_fp ON keys (spki_fp) WHERE spki_fp IS NOT NULL;"
	"CREATE TRIGGER keys_keep_user BEFORE UPDATE OF msisdn ON keys"
	" WHEN NEW.msisdn <> OLD.msisdn"
	" BEGIN SELECT RAISE(ABORT, 'key belongs to another user'); END;"
	"CREATE TRIGGER keys_revoked_stays BEFORE UPDATE ON keys"
	" WHEN OLD.state = 2 AND NEW.state <> 2 AND NEW.cert IS OLD.cert"
	" BEGIN SELECT RAISE(ABORT, 'revoked key'); END;"
	"CREATE TRIGGER keys_on_own_device BEFORE INSERT ON keys"
	" WHEN NOT EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id"
	"  AND msisdn = NEW.msisdn)"
	" BEGIN SELECT RAISE(ABORT, 'no such device of the user'); END;"
	"CREATE TRIGGER keys_move_device BEFORE UPDATE OF device_id ON keys"
	" WHEN NEW.device_id <> OLD.device_id AND NOT EXISTS (SELECT 1 FROM devices"
	"  WHERE device_id = NEW.device_id AND msisdn = NEW.msisdn)"
	" BEGIN SELECT RAISE(ABORT, 'no such device of the user'); END;"
	"CREATE TRIGGER keys_active_on_device BEFORE UPDATE OF state ON keys"
	" WHEN NEW.state = 1 AND NOT EXISTS (SELECT 1 FROM devices"
	"  WHERE device_id = NEW.device_id AND msisdn = NEW.msisdn)"
	" BEGIN SELECT RAISE(ABORT, 'the device of the key is gone'); END;"
	"CREATE TRIGGER devices_no_active_keys BEFORE DELETE ON devices"
	" WHEN EXISTS (SELECT 1 FROM keys WHERE device_id = OLD.device_id AND state = 1)"
	" BEGIN SELECT RAISE(ABORT, 'device has active keys'); END;"
	/* store_tx_list_user: a user's history, newest first */
	"CREATE INDEX tx_by_user ON tx (msisdn, created_ms);"
	"CREATE TABLE records ("
	" kind TEXT NOT NULL CHECK (length(kind) > 0 AND kind NOT GLOB '*[^a-z_]*'),"
	" name TEXT NOT NULL CHECK (length(name) > 0),"
	" owner TEXT NOT NULL DEFAULT '',"
	" state INTEGER NOT NULL DEFAULT 0,"
	" version INTEGER NOT NULL CHECK (version >= 1),"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL,"
	" expires INTEGER NOT NULL DEFAULT 0 CHECK (expires >= 0),"
	/* a JSON object (store.c checks it: json_valid() is not allowed in
	 * a schema with trusted_schema=OFF) */
	" body TEXT NOT NULL CHECK (length(body) >= 2),"
	" PRIMARY KEY (kind, name)"
	") STRICT;"
	"CREATE INDEX records_by_owner ON records (kind, owner, name);"
	"CREATE INDEX records_by_state ON records (kind, state, name);"
	"CREATE TABLE record_gen ("
	" kind TEXT NOT NULL PRIMARY KEY,"
	" gen INTEGER NOT NULL CHECK (gen >= 1)"
	") STRICT;";

/* A version-2 database made as the previous program made it (its
 * migrations, run by hand), with a user, two devices, three keys in
 * insertion order != id order with equal times, and an outstanding
 * transaction: a read-only open refuses it, a read-write open migrates it
 * to version 3 in place, the data is intact and the new features work. */
static void
test_migrate_v2(void **state)
{
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct store_key keys[8], k;
	struct store_user u;
	struct store_rec rec = { 0 };
	struct store *s;
	char path[512], uri[512], buf[256];
	sqlite3 *db;
	size_t n;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/v2.db", ts_dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;"
					  " BEGIN; CREATE TABLE schema_version (version INTEGER NOT"
					  " NULL PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (i = 0; i < 2; i++) {
		assert_int_equal(sqlite3_exec(db, v2_schema[i], NULL, NULL, NULL), SQLITE_OK);
		snprintf(buf, sizeof(buf), "INSERT INTO schema_version VALUES (%d, 1)", i + 1);
		assert_int_equal(sqlite3_exec(db, buf, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO users VALUES ('+35847022222', 2, 'Old User', 5, 6);"
			     "INSERT INTO devices VALUES ('dev-old', '+35847022222', x'3001',"
			     " x'0000000000000000000000000000000000000000000000000000000000000001', 'tok', 1, 5, 5);"
			     "INSERT INTO devices VALUES ('dev-old2', '+35847022222', x'3001',"
			     " x'0000000000000000000000000000000000000000000000000000000000000002', NULL, 1, 5, 5);"
			     "INSERT INTO keys VALUES ('kz', 'g1', '+35847022222', 'dev-old', 2,"
			     " 'mss:p', 1, 1, x'3003', '0a', 7, 7);"
			     "INSERT INTO keys VALUES ('ka', 'g2', '+35847022222', 'dev-old', 1,"
			     " 'mss:p', 0, 2, x'3004', '0b', 7, 8);"
			     "INSERT INTO keys VALUES ('km', 'g1', '+35847022222', 'dev-old2', 2,"
			     " 'mss:p', 1, 1, NULL, NULL, 7, 7);"
			     "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
			     " key_id, mode, state, status, created_ms, deadline_ms, updated_ms,"
			     " request) VALUES ('T00000000000000000000000000000001', '" AP "',"
			     " 'OLD1', zeroblob(32), '+35847022222', 'kz', 1, 'ACCEPTED', 0, " "1700000000000, 1700000080000, 1700000000000, CAST('{\"old\":1}' AS BLOB));"
			     "COMMIT",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	ts_db_uri(uri, sizeof(uri), "v2");
	assert_null(store_open(uri, STORE_OPEN_READONLY, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "outdated"));
	s = ts_must_open("v2", 0);
	/* the old data */
	assert_int_equal(store_user_get(s, "+35847022222", &u, &err), 0);
	assert_string_equal(u.su_name, "Old User");
	assert_int_equal(u.su_state, STORE_USER_SUSPENDED);
	assert_string_equal(u.su_given_name, "");
	assert_string_equal(u.su_country, "");
	assert_int_equal(u.su_created_ms, 5);
	assert_int_equal(store_user_keys(s, "+35847022222", keys, 8, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(keys[0].sk_key_id, "kz"); /* insertion order kept */
	assert_string_equal(keys[1].sk_key_id, "ka");
	assert_string_equal(keys[2].sk_key_id, "km");
	assert_int_equal(keys[1].sk_state, STORE_KEY_REVOKED);
	assert_int_equal(keys[1].sk_updated_ms, 8);
	assert_int_equal(keys[1].sk_cert_len, 2);
	for (i = 0; i < 32; i++)
		assert_int_equal(keys[0].sk_spki_fp[i], 0);
	assert_int_equal(store_tx_get_by_id(s, "T00000000000000000000000000000001",
					    STORE_GET_REQUEST, &tx, &err),
			 0);
	assert_string_equal(tx.tx_request, "{\"old\":1}");
	assert_string_equal(tx.tx_peer, ""); /* version 4: local */
	assert_string_equal(tx.tx_peer_trans_id, "");
	/* the new features on the old rows */
	expect_tx_list_406(store_user_delete(s, "+35847022222", T0, &err), &err);
	assert_int_equal(store_device_delete(s, "dev-old", T0, &err), 0);
	assert_int_equal(store_key_get(s, "kz", &k, &err), 0);
	assert_int_equal(k.sk_state, STORE_KEY_DISABLED);
	assert_int_equal(store_key_get(s, "ka", &k, &err), 0);
	assert_int_equal(k.sk_state, STORE_KEY_REVOKED);
	assert_int_equal(store_key_get(s, "km", &k, &err), 0);
	memset(k.sk_spki_fp, 0x5a, sizeof(k.sk_spki_fp));
	assert_int_equal(store_key_put(s, &k, T0, &err), 0);
	snprintf(u.su_given_name, sizeof(u.su_given_name), "%s", "Vanha");
	snprintf(u.su_country, sizeof(u.su_country), "%s", "FI");
	assert_int_equal(store_user_put(s, &u, T0, &err), 0);
	rec.sr_body = "{}";
	rec.sr_body_len = 2;
	snprintf(rec.sr_kind, sizeof(rec.sr_kind), "ap");
	snprintf(rec.sr_name, sizeof(rec.sr_name), "x");
	assert_int_equal(store_rec_put(s, &rec, STORE_REC_NEW, T0, NULL, &err), 0);
	store_close(s);
	/* reopened: no second migration, and it all stayed */
	s = ts_must_open("v2", STORE_OPEN_READONLY);
	assert_int_equal(store_user_get(s, "+35847022222", &u, &err), 0);
	assert_string_equal(u.su_given_name, "Vanha");
	assert_int_equal(store_key_get(s, "km", &k, &err), 0);
	assert_int_equal(k.sk_spki_fp[31], 0x5a);
	store_close(s);
	db = ts_raw_open("v2");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2,3,4");
	ts_raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
	assert_string_equal(buf, "ok");
	ts_raw_text(db, "PRAGMA foreign_key_check", buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name ="
				       " 'keys_v3'"),
			 0);
	sqlite3_close(db);
	store_tx_clear(&tx);

	/* a migration that fails half-way (a stray table named like one it
	 * creates) leaves version 2 as it was */
	snprintf(path, sizeof(path), "%s/v2bad.db", ts_dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE schema_version (version INTEGER NOT"
					  " NULL PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT;"
					  " INSERT INTO schema_version VALUES (1, 1), (2, 1);"
					  " CREATE TABLE records (x INTEGER)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (i = 0; i < 2; i++)
		assert_int_equal(sqlite3_exec(db, v2_schema[i], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO users VALUES ('+35847033333', 1, NULL, 1, 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ts_db_uri(uri, sizeof(uri), "v2bad");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "migration"));
	db = ts_raw_open("v2bad");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM pragma_table_info('users')"), 5);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM sqlite_schema WHERE name IN"
				       " ('keys_v3', 'record_gen', 'keys_spki_fp')"),
			 0);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM users"), 1);
	sqlite3_close(db);
}

/* ---- roaming (issue 6): the store side ------------------------------------ */

#define PEER "http://mssp-b.example/"

static void
expect_peer(const struct store_tx *tx, const char *peer, const char *peer_trans_id)
{
	assert_string_equal(tx->tx_peer, peer);
	assert_string_equal(tx->tx_peer_trans_id, peer_trans_id);
}

/* What a scan callback saw of one transaction. */
struct peer_seen {
	const char *ps_id;
	int ps_hits;
	char ps_peer[MSSP_STORE_MAX_AP_ID + 1];
	char ps_ptid[MSSP_MSG_MAX_TRANSID + 1];
};

static int
peer_cb(void *arg, const struct store_tx *tx)
{
	struct peer_seen *p = arg;

	if (strcmp(tx->tx_id, p->ps_id) == 0) {
		p->ps_hits++;
		snprintf(p->ps_peer, sizeof(p->ps_peer), "%s", tx->tx_peer);
		snprintf(p->ps_ptid, sizeof(p->ps_ptid), "%s", tx->tx_peer_trans_id);
	}
	return 0;
}

/* A roamed transaction keeps its peer, and every path that fills a
 * struct store_tx returns tx_peer and tx_peer_trans_id: create, get (AP),
 * get_by_id, get_by_nonce, transition, the recovery scan, the expiry
 * sweep and the user's list.  A local one has "" in both. */
static void
test_roamed_read_paths(void **state)
{
	struct store *s = ts_must_open("roamread", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, lt = { 0 }, got = { 0 }, out[4];
	struct store_tx_change c;
	struct peer_seen ps;
	char nonce[64];
	struct req r, l;
	size_t n = 0;

	(void)state;
	memset(out, 0, sizeof(out));
	req_fresh(&r);
	r.n.tn_peer = PEER;
	must_create(s, &r, &tx);
	expect_peer(&tx, PEER, "");
	req_fresh(&l);
	l.n.tn_peer = ""; /* "" is local, as NULL */
	must_create(s, &l, &lt);
	expect_peer(&lt, "", "");

	assert_int_equal(store_tx_get(s, AP, tx.tx_id, STORE_GET_REQUEST, &got, &err), 0);
	expect_peer(&got, PEER, "");
	assert_int_equal(got.tx_request_len, strlen(r.doc)); /* the columns after */
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T0001", T0 + 5, &err), 0);
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, STORE_GET_REQUEST | STORE_GET_ANSWER,
					    &got, &err),
			 0);
	expect_peer(&got, PEER, "B-T0001");
	assert_int_equal(got.tx_updated_ms, T0 + 5);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	assert_int_equal(store_tx_get(s, AP, lt.tx_id, 0, &got, &err), 0);
	expect_peer(&got, "", "");

	/* recovery */
	memset(&ps, 0, sizeof(ps));
	ps.ps_id = tx.tx_id;
	assert_int_equal(store_tx_recover_scan(s, peer_cb, &ps, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ps.ps_hits, 1);
	assert_string_equal(ps.ps_peer, PEER);
	assert_string_equal(ps.ps_ptid, "B-T0001");

	/* the user's list */
	assert_int_equal(store_tx_list_user(s, r.msisdn, out, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	expect_peer(&out[0], PEER, "B-T0001");

	/* a transition's record, then by the nonce it recorded */
	change_for(STORE_ST_PROMPT_SENT, &c, nonce, sizeof(nonce));
	assert_int_equal(store_tx_transition(s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT,
					     &c, T0 + 6, &got, &err),
			 0);
	expect_peer(&got, PEER, "B-T0001");
	assert_int_equal(store_tx_get_by_nonce(s, nonce, 0, &got, &err), 0);
	assert_string_equal(got.tx_id, tx.tx_id);
	expect_peer(&got, PEER, "B-T0001");

	/* the expiry sweep reports the record with its peer */
	memset(&ps, 0, sizeof(ps));
	ps.ps_id = tx.tx_id;
	assert_int_equal(store_tx_expire_due(s, T0 + 80000, peer_cb, &ps, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ps.ps_hits, 1);
	assert_string_equal(ps.ps_peer, PEER);
	assert_string_equal(ps.ps_ptid, "B-T0001");
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_EXPIRED);
	expect_peer(&got, PEER, "B-T0001");
	assert_int_equal(store_tx_get_by_id(s, lt.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_EXPIRED);
	expect_peer(&got, "", "");

	/* a failed lookup clears the peer fields too */
	assert_int_equal(store_tx_get(s, AP2, tx.tx_id, 0, &got, &err), -1);
	assert_int_equal(err.status, 101);
	expect_peer(&got, "", "");
	store_tx_clear(&out[0]);
	store_tx_clear(&got);
	store_tx_clear(&lt);
	store_tx_clear(&tx);
	store_close(s);
}

/* store_tx_set_peer_trans_id: set once, idempotent, conflict on another
 * value, 900 for a local transaction and for bad values, 101 for an
 * unknown or malformed id, FINAL on a final transaction; and the rules
 * hold in the database itself. */
static void
test_roamed_peer_trans_id(void **state)
{
	struct store *s = ts_must_open("roamptid", STORE_OPEN_CREATE), *ro;
	struct store_err err = { 0 }, e101 = { 0 };
	struct store_tx tx = { 0 }, lt = { 0 }, t2 = { 0 }, got = { 0 };
	char longid[MSSP_MSG_MAX_TRANSID + 2], sql[512];
	struct req r;
	sqlite3 *db;

	(void)state;
	req_fresh(&r);
	r.n.tn_peer = PEER;
	must_create(s, &r, &tx);
	req_fresh(&r);
	r.n.tn_peer = PEER;
	must_create(s, &r, &t2);
	req_fresh(&r);
	must_create(s, &r, &lt);

	/* bad values: 900, nothing written */
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0'; /* MAX + 1 chars */
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, NULL, T0 + 1, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "", T0 + 1, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, longid, T0 + 1, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "B T1", T0 + 1, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "B\nT1", T0 + 1, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "B\xc3\xa4", T0 + 1, &err), &err,
		      900);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "BT1", 0, &err), &err, 900);
	expect_status(store_tx_set_peer_trans_id(NULL, tx.tx_id, "BT1", T0 + 1, &err), &err, 900);
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, "");
	assert_int_equal(got.tx_updated_ms, T0);

	/* unknown, malformed: the one "no such transaction" */
	expect_status(store_tx_set_peer_trans_id(s, "T00000000000000000000000000000000", "BT1",
						 T0 + 1, &e101),
		      &e101, 101);
	expect_status(store_tx_set_peer_trans_id(s, "nope", "BT1", T0 + 1, &err), &err, 101);
	assert_memory_equal(&err, &e101, sizeof(err));
	expect_status(store_tx_set_peer_trans_id(s, NULL, "BT1", T0 + 1, &err), &err, 101);
	assert_memory_equal(&err, &e101, sizeof(err));

	/* a local transaction has no peer: 900, nothing written */
	expect_status(store_tx_set_peer_trans_id(s, lt.tx_id, "BT1", T0 + 1, &err), &err, 900);
	assert_int_equal(store_tx_get_by_id(s, lt.tx_id, 0, &got, &err), 0);
	expect_peer(&got, "", "");

	/* a read-only handle */
	{
		char uri[512];

		ts_db_uri(uri, sizeof(uri), "roamptid");
		ro = store_open(uri, STORE_OPEN_READONLY, &err);
		assert_non_null(ro);
		expect_status(store_tx_set_peer_trans_id(ro, tx.tx_id, "BT1", T0 + 1, &err), &err,
			      900);
		store_close(ro);
	}

	/* set; the same again (idempotent, nothing written); another value */
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T77", T0 + 7, &err), 0);
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T77", T0 + 9, &err), 0);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T78", T0 + 9, &err), &err,
		      STORE_STATUS_CONFLICT);
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, "B-T77");
	assert_int_equal(got.tx_updated_ms, T0 + 7);
	/* the longest value fits the record */
	longid[MSSP_MSG_MAX_TRANSID] = '\0';
	assert_int_equal(store_tx_set_peer_trans_id(s, t2.tx_id, longid, T0 + 7, &err), 0);
	assert_int_equal(store_tx_get_by_id(s, t2.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, longid);

	/* in every open state; then final: immutable */
	reach(s, tx.tx_id, STORE_ST_ANSWERED);
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T77", T0 + 9, &err), 0);
	must_move(s, tx.tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED);
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T77", T0 + 9, &err), 0);
	expect_status(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T79", T0 + 9, &err), &err,
		      STORE_STATUS_CONFLICT);
	req_fresh(&r);
	r.n.tn_peer = PEER;
	store_tx_clear(&t2);
	must_create(s, &r, &t2);
	reach(s, t2.tx_id, STORE_ST_PROMPT_SENT);
	must_move(s, t2.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_FAILED);
	expect_status(store_tx_set_peer_trans_id(s, t2.tx_id, "B-T80", T0 + 9, &err), &err,
		      STORE_STATUS_FINAL);
	assert_int_equal(store_tx_get_by_id(s, t2.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, "");

	/* the database holds the same rules, whoever writes */
	req_fresh(&r);
	r.n.tn_peer = PEER;
	store_tx_clear(&t2);
	must_create(s, &r, &t2);
	assert_int_equal(store_tx_set_peer_trans_id(s, t2.tx_id, "B-T81", T0 + 9, &err), 0);
	db = ts_raw_open("roamptid");
	snprintf(sql, sizeof(sql), "UPDATE tx SET peer = 'http://c/' WHERE mssp_trans_id = '%s'",
		 t2.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE tx SET peer = '' WHERE mssp_trans_id = '%s'",
		 t2.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE tx SET peer_trans_id = 'other' WHERE mssp_trans_id = '%s'", t2.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE tx SET peer_trans_id = 'x' WHERE mssp_trans_id = '%s'",
		 lt.tx_id);
	assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	/* the same value again is no change: allowed */
	snprintf(sql, sizeof(sql),
		 "UPDATE tx SET peer_trans_id = 'B-T81' WHERE mssp_trans_id = '%s'", t2.tx_id);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_tx_get_by_id(s, t2.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, "B-T81");

	store_tx_clear(&got);
	store_tx_clear(&t2);
	store_tx_clear(&lt);
	store_tx_clear(&tx);
	store_close(s);
}

/* The rules of a local transaction apply to a roamed one unchanged:
 * validation, the life cycle, the receipt, replay (A-01), 101 on other
 * content, one outstanding request per user and key (A-22, either way
 * round), pre-emption, the per-AP count. */
static void
test_roamed_rules(void **state)
{
	struct store *s = ts_must_open("roamrules", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, got = { 0 }, b = { 0 };
	char bigpeer[MSSP_STORE_MAX_AP_ID + 2];
	struct req r, o;
	uint64_t cnt = 0;

	(void)state;
	/* tn_peer is checked as an AP_ID is: visible ASCII, 1..MAX bytes */
	req_fresh(&r);
	r.n.tn_peer = "http://b example/";
	expect_status(store_tx_create(s, &r.n, 0, T0, &tx, &err), &err, 900);
	assert_string_equal(err.detail, "invalid argument: peer");
	r.n.tn_peer = "http://b/\x7f";
	expect_status(store_tx_create(s, &r.n, 0, T0, &tx, &err), &err, 900);
	r.n.tn_peer = "http://b/\xc3\xa4";
	expect_status(store_tx_create(s, &r.n, 0, T0, &tx, &err), &err, 900);
	memset(bigpeer, 'p', sizeof(bigpeer) - 1);
	bigpeer[sizeof(bigpeer) - 1] = '\0'; /* MAX + 1 */
	r.n.tn_peer = bigpeer;
	expect_status(store_tx_create(s, &r.n, 0, T0, &tx, &err), &err, 900);
	assert_string_equal(tx.tx_id, "");
	bigpeer[MSSP_STORE_MAX_AP_ID] = '\0'; /* MAX: fits */
	must_create(s, &r, &tx);
	assert_string_equal(tx.tx_peer, bigpeer);
	store_tx_clear(&tx);

	/* the life cycle, and a receipt for the completed one */
	req_fresh(&r);
	r.n.tn_peer = PEER;
	must_create(s, &r, &tx);
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-1", T0 + 1, &err), 0);
	reach(s, tx.tx_id, STORE_ST_COMPLETED);
	assert_int_equal(store_tx_receipt(s, AP, tx.tx_id, "Thanks", 6, T0 + 5, &err), 0);
	assert_int_equal(store_tx_get(s, AP, tx.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_COMPLETED);
	assert_int_equal(got.tx_status, 500);
	assert_string_equal(got.tx_profile, "mss:demo:sign:loa3:app");
	assert_int_equal(got.tx_receipt_ms, T0 + 5);
	expect_peer(&got, PEER, "B-1");
	store_tx_clear(&tx);

	/* replay: the same request again is the same transaction; other
	 * content under the same AP_TransID is 101 */
	req_fresh(&r);
	r.n.tn_peer = PEER;
	must_create(s, &r, &tx);
	assert_int_equal(store_tx_create(s, &r.n, 0, T0 + 1, &got, &err), 0);
	assert_true(got.tx_replay);
	assert_string_equal(got.tx_id, tx.tx_id);
	expect_peer(&got, PEER, "");
	req_init(&o, AP, r.aptid, r.msisdn, "sign", "other content", T0 + 80000);
	o.n.tn_peer = PEER;
	expect_status(store_tx_create(s, &o.n, 0, T0 + 1, &got, &err), &err, 101);

	/* one outstanding per (MSISDN, key): a roamed one blocks a local one
	 * and the other way round; another key is independent */
	req_init(&o, AP, "rr-local-1", r.msisdn, "sign", "rr-local-1", T0 + 80000);
	expect_status(store_tx_create(s, &o.n, 0, T0 + 1, &got, &err), &err, 406);
	req_init(&o, AP, "rr-local-2", r.msisdn, "auth", "rr-local-2", T0 + 80000);
	must_create(s, &o, &b);
	req_init(&o, AP, "rr-roam-2", r.msisdn, "auth", "rr-roam-2", T0 + 80000);
	o.n.tn_peer = PEER;
	expect_status(store_tx_create(s, &o.n, 0, T0 + 1, &got, &err), &err, 406);
	assert_int_equal(store_tx_count_outstanding(s, AP, &cnt, &err), 0);
	assert_int_equal(cnt, 3); /* with the long peer's one, still open */

	/* pre-emption of a roamed transaction by a newer (local) request */
	req_init(&o, AP, "rr-local-3", r.msisdn, "sign", "rr-local-3", T0 + 80000);
	assert_int_equal(store_tx_create(s, &o.n, STORE_PREEMPT, T0 + 2, &got, &err), 0);
	assert_string_equal(got.tx_preempted, tx.tx_id);
	expect_peer(&got, "", "");
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_FAILED);
	assert_int_equal(got.tx_status, 401);
	expect_peer(&got, PEER, "");

	store_tx_clear(&got);
	store_tx_clear(&b);
	store_tx_clear(&tx);
	store_close(s);
}

/* A version-3 database made as the previous program made it (its
 * migrations, run by hand), populated: a user with identity data, a
 * device, a key with a fingerprint, a record, and transactions open
 * (ACCEPTED, PROMPT_SENT) and final (COMPLETED with a receipt).  A
 * read-only open refuses it, a read-write open migrates it to version 4
 * in place: the data is intact, the old transactions read as local, the
 * old rules hold on them, roamed ones can be created beside them. */
static void
test_migrate_v3(void **state)
{
	static const char *const open1 = "T000000000000000000000000000000a1";
	static const char *const open2 = "T000000000000000000000000000000a2";
	static const char *const done1 = "T000000000000000000000000000000a3";
	struct store_err err = { 0 };
	struct store_tx tx = { 0 }, got = { 0 }, list[4];
	struct store_user u;
	struct store_key k;
	struct store_rec rec = { 0 };
	struct store *s;
	char path[512], uri[512], buf[256];
	struct req r;
	sqlite3 *db;
	size_t n;
	int i;

	(void)state;
	memset(list, 0, sizeof(list));
	snprintf(path, sizeof(path), "%s/v3.db", ts_dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;"
					  " BEGIN; CREATE TABLE schema_version (version INTEGER NOT"
					  " NULL PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_exec(db, i < 2 ? v2_schema[i] : v3_migration, NULL, NULL,
					      NULL),
				 SQLITE_OK);
		snprintf(buf, sizeof(buf), "INSERT INTO schema_version VALUES (%d, 1)", i + 1);
		assert_int_equal(sqlite3_exec(db, buf, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO users (msisdn, state, name, created_ms, updated_ms,"
			     " given_name, surname, id_number, country, lang) VALUES"
			     " ('+35847044444', 1, 'V3 User', 5, 6, 'Kolme', 'Versio', 'ID-3', 'FI', 'fi');"
			     "INSERT INTO devices VALUES ('dev-v3', '+35847044444', x'3001',"
			     " x'0000000000000000000000000000000000000000000000000000000000000003', 'tok', 1, 5, 5);"
			     "INSERT INTO keys (key_id, key_group, msisdn, device_id, purpose, profiles,"
			     " has_pin, state, cert, cert_serial, created_ms, updated_ms, spki_fp) VALUES"
			     " ('k3', 'g3', '+35847044444', 'dev-v3', 2, 'mss:p', 1, 1, x'3003', '0c', 7, 7,"
			     " x'5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a');"
			     "INSERT INTO records VALUES ('ap', 'http://old.ap/', '', 1, 2, 5, 6, 0,"
			     " '{\"old\":3}');"
			     "INSERT INTO record_gen VALUES ('ap', 2);"
			     "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
			     " key_id, mode, state, status, created_ms, deadline_ms, updated_ms,"
			     " request) VALUES ('T000000000000000000000000000000a1', '" AP "',"
			     " 'V3A', zeroblob(32), '+35847044444', 'k3', 1, 'ACCEPTED', 0,"
			     " 1700000000000, 1700000080000, 1700000000000, CAST('{\"v3\":1}' AS BLOB));"
			     "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
			     " key_id, mode, state, status, created_ms, deadline_ms, updated_ms,"
			     " request, nonce, prompt_ms) VALUES ('T000000000000000000000000000000a2',"
			     " '" AP "', 'V3B', zeroblob(32), '+35847044444', 'k4', 2, 'PROMPT_SENT', 0,"
			     " 1700000000001, 1700000080000, 1700000000001, CAST('{\"v3\":2}' AS BLOB),"
			     " 'v3nonce0123456789abcdef', 1700000000001);"
			     "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
			     " key_id, mode, state, status, created_ms, deadline_ms, updated_ms,"
			     " request, nonce, prompt_ms, answer, answer_ms, signature, profile,"
			     " final_ms) VALUES ('T000000000000000000000000000000a3', '" AP "', 'V3C',"
			     " zeroblob(32), '+35847044444', 'k3', 1, 'COMPLETED', 500, 1699999999000,"
			     " 1700000070000, 1699999999500, CAST('{\"v3\":3}' AS BLOB),"
			     " 'v3nonceFEDCBA9876543210', 1699999999100, x'01', 1699999999200,"
			     " 'MIIBold==', 'mss:p', 1699999999500);"
			     "INSERT INTO receipt VALUES ('T000000000000000000000000000000a3',"
			     " x'52', 1699999999600);"
			     "COMMIT",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	ts_db_uri(uri, sizeof(uri), "v3");
	assert_null(store_open(uri, STORE_OPEN_READONLY, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "outdated"));
	s = ts_must_open("v3", 0);
	/* the old data, through every read path */
	assert_int_equal(store_user_get(s, "+35847044444", &u, &err), 0);
	assert_string_equal(u.su_given_name, "Kolme");
	assert_string_equal(u.su_country, "FI");
	assert_int_equal(store_key_get(s, "k3", &k, &err), 0);
	assert_int_equal(k.sk_spki_fp[0], 0x5a);
	assert_int_equal(store_rec_get(s, "ap", "http://old.ap/", &rec, &err), 0);
	assert_string_equal(rec.sr_body, "{\"old\":3}");
	assert_int_equal(rec.sr_version, 2);
	store_rec_clear(&rec);
	assert_int_equal(store_tx_get(s, AP, open1, STORE_GET_REQUEST, &tx, &err), 0);
	assert_string_equal(tx.tx_request, "{\"v3\":1}");
	assert_int_equal(tx.tx_state, STORE_ST_ACCEPTED);
	expect_peer(&tx, "", "");
	assert_int_equal(store_tx_get_by_nonce(s, "v3nonce0123456789abcdef", 0, &got, &err), 0);
	assert_string_equal(got.tx_id, open2);
	expect_peer(&got, "", "");
	assert_int_equal(store_tx_get_by_id(s, done1, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_COMPLETED);
	assert_int_equal(got.tx_status, 500);
	assert_int_equal(got.tx_signature_len, 9);
	assert_int_equal(got.tx_receipt_ms, 1699999999600);
	expect_peer(&got, "", "");
	assert_int_equal(store_tx_list_user(s, "+35847044444", list, 4, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].tx_id, open2);
	assert_string_equal(list[2].tx_id, done1);
	for (i = 0; i < 3; i++)
		expect_peer(&list[i], "", "");
	/* old rows are local: no peer id for them */
	expect_status(store_tx_set_peer_trans_id(s, open1, "B-1", T0 + 1, &err), &err, 900);
	/* the old rules on the old rows: A-22 against a new roamed request,
	 * A-01 on the old AP_TransID, the transitions, immutability */
	req_init(&r, AP, "V3R", "+35847044444", "k3", "V3R", T0 + 80000);
	r.n.tn_peer = PEER;
	expect_status(store_tx_create(s, &r.n, 0, T0 + 1, &got, &err), &err, 406);
	req_init(&r, AP, "V3A", "+35847044444", "k9", "V3A other", T0 + 80000);
	expect_status(store_tx_create(s, &r.n, 0, T0 + 1, &got, &err), &err, 101);
	must_move(s, open1, STORE_ST_ACCEPTED, STORE_ST_FAILED);
	expect_status(move(s, done1, STORE_ST_ANSWERED, STORE_ST_COMPLETED, T0 + 1, &got, &err),
		      &err, STORE_STATUS_FINAL);
	/* now a roamed one for the freed key, and its peer id */
	req_init(&r, AP, "V3R", "+35847044444", "k3", "V3R", T0 + 80000);
	r.n.tn_peer = PEER;
	store_tx_clear(&tx);
	must_create(s, &r, &tx);
	expect_peer(&tx, PEER, "");
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-V3", T0 + 2, &err), 0);
	store_close(s);

	/* reopened read-only: no second migration, it all stayed */
	s = ts_must_open("v3", STORE_OPEN_READONLY);
	assert_int_equal(store_tx_get_by_id(s, tx.tx_id, 0, &got, &err), 0);
	expect_peer(&got, PEER, "B-V3");
	assert_int_equal(store_tx_get_by_id(s, open1, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_FAILED);
	expect_peer(&got, "", "");
	store_close(s);
	db = ts_raw_open("v3");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2,3,4");
	ts_raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
	assert_string_equal(buf, "ok");
	ts_raw_text(db, "PRAGMA foreign_key_check", buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM pragma_table_info('tx') WHERE"
				       " name IN ('peer', 'peer_trans_id') AND \"notnull\" = 1"
				       " AND dflt_value = ''''''"),
			 2);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM tx WHERE peer = ''"), 3);
	sqlite3_close(db);

	/* a migration that fails half-way (a stray trigger named like the
	 * first one it creates, after its two ALTER TABLEs) leaves version
	 * 3 as it was */
	snprintf(path, sizeof(path), "%s/v3bad.db", ts_dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE schema_version (version INTEGER NOT"
					  " NULL PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT;"
					  " INSERT INTO schema_version VALUES (1, 1), (2, 1), (3, 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(sqlite3_exec(db, i < 2 ? v2_schema[i] : v3_migration, NULL, NULL,
					      NULL),
				 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TRIGGER tx_peer_fixed BEFORE DELETE ON users"
				      " BEGIN SELECT 1; END;"
				      "INSERT INTO users (msisdn, state, created_ms, updated_ms)"
				      " VALUES ('+35847055555', 1, 1, 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ts_db_uri(uri, sizeof(uri), "v3bad");
	assert_null(store_open(uri, 0, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "migration"));
	db = ts_raw_open("v3bad");
	ts_raw_text(db, "SELECT group_concat(version) FROM schema_version", buf, sizeof(buf));
	assert_string_equal(buf, "1,2,3");
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM pragma_table_info('tx') WHERE"
				       " name IN ('peer', 'peer_trans_id')"),
			 0);
	assert_int_equal(ts_raw_count(db, "SELECT count(*) FROM users"), 1);
	sqlite3_close(db);

	for (i = 0; i < 4; i++)
		store_tx_clear(&list[i]);
	store_tx_clear(&got);
	store_tx_clear(&tx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_and_schema),
		cmocka_unit_test(test_schema_enforces),
		cmocka_unit_test(test_create_lookup),
		cmocka_unit_test(test_idempotent_resend),
		cmocka_unit_test(test_conflicting_resend_101),
		cmocka_unit_test(test_foreign_ap_indistinguishable),
		cmocka_unit_test(test_one_outstanding_406),
		cmocka_unit_test(test_race_two_nodes),
		cmocka_unit_test(test_shared_handle_threads),
		cmocka_unit_test(test_preempt),
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_change_validation),
		cmocka_unit_test(test_create_validation),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_late_answer),
		cmocka_unit_test(test_receipt_once),
		cmocka_unit_test(test_expire_due),
		cmocka_unit_test(test_recover_scan),
		cmocka_unit_test(test_count_outstanding),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_unavailable),
		cmocka_unit_test(test_crash_durability),
		cmocka_unit_test(test_transid_unique),
		cmocka_unit_test(test_tx_list_user),
		cmocka_unit_test(test_migrate_v2),
		cmocka_unit_test(test_roamed_read_paths),
		cmocka_unit_test(test_roamed_peer_trans_id),
		cmocka_unit_test(test_roamed_rules),
		cmocka_unit_test(test_migrate_v3),
	};

	return cmocka_run_group_tests(tests, setup, ts_teardown);
}
