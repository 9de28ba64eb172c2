/*
 * test_store_group.c - group commit of the SQLite store (store_sqlite.c):
 * every write of a process on one database file goes through one shared
 * writer that runs the queued writes in ONE database transaction, each in
 * its own savepoint, with one COMMIT (one fsync) for the group.
 *
 * What is checked: concurrent writers all succeed and all are committed
 * (seen by a fresh handle), with fewer commits than writes; a refused
 * operation (101, 406, CONFLICT, nonce in use) inside a busy group leaves
 * the others alone; a failed COMMIT fails every operation of its group
 * with 900 and leaves nothing of them; closing handles while writes are
 * queued loses none; a fork child gets its own writer.
 *
 * Groups are made deterministic by holding the database's write lock from
 * a raw connection: the first write waits in its BEGIN IMMEDIATE (busy
 * timeout), the others queue behind it; releasing the lock lets them run.
 * docs/internals/store.md "Group commit" lists what each test covers.
 */
#define STORE_BACKEND_IMPL /* store_sqlite_stats, the commit test hook */
#include "teststore.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "store/store.h"
#include "util/limits.h"

#define T0 1700000000000LL /* the tests' "now" */
#define AP "http://demo.ap/"
#define SIG "MIIBexampleCMSbase64=="
#define QUEUE_MS 300 /* time given to threads to queue behind the lock */

/* ---- helpers -------------------------------------------------------------- */

struct req {
	struct store_tx_new n;
	unsigned char hash[32];
	char doc[128];
	char aptid[64];
	char msisdn[32];
	char key[32];
};

static void
req_init(struct req *r, const char *aptid, const char *msisdn, const char *key,
	 const char *content)
{
	unsigned int hl = 0;

	memset(r, 0, sizeof(*r));
	snprintf(r->doc, sizeof(r->doc), "{\"DataToBeSigned\":\"%s\"}", content);
	snprintf(r->aptid, sizeof(r->aptid), "%s", aptid);
	snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
	snprintf(r->key, sizeof(r->key), "%s", key);
	assert_int_equal(EVP_Digest(r->doc, strlen(r->doc), r->hash, &hl, EVP_sha256(), NULL), 1);
	r->n.tn_ap_id = AP;
	r->n.tn_ap_trans_id = r->aptid;
	r->n.tn_hash = r->hash;
	r->n.tn_hash_len = hl;
	r->n.tn_msisdn = r->msisdn;
	r->n.tn_key_id = r->key;
	r->n.tn_mode = STORE_MODE_SYNCH;
	r->n.tn_deadline_ms = T0 + 80000;
	r->n.tn_request = r->doc;
	r->n.tn_request_len = strlen(r->doc);
}

/* Request number i of a test: its own AP_TransID, user and content. */
static void
req_nth(struct req *r, const char *tag, int i)
{
	char aptid[64], msisdn[32];

	snprintf(aptid, sizeof(aptid), "%s_%d", tag, i);
	snprintf(msisdn, sizeof(msisdn), "+35840%07d", i);
	req_init(r, aptid, msisdn, "sign", aptid);
}

static void
nonce_new(char *buf, size_t len)
{
	unsigned char b[16];
	size_t i;

	assert_true(len > 2 * sizeof(b));
	assert_int_equal(RAND_bytes(b, sizeof(b)), 1);
	for (i = 0; i < sizeof(b); i++)
		snprintf(buf + 2 * i, 3, "%02x", b[i]);
}

static struct store_sqlite_stats
stats(void)
{
	struct store_sqlite_stats st;

	store_sqlite_stats(&st);
	return st;
}

/* Hold the database's write lock from outside the store. */
static sqlite3 *
lock_db(const char *name)
{
	sqlite3 *db = ts_raw_open(name);

	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void
unlock_db(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static long
raw_count(const char *name, const char *sql)
{
	sqlite3 *db = ts_raw_open(name);
	long n = ts_raw_count(db, sql);

	sqlite3_close(db);
	return n;
}

/* One write run by a thread on its own handle (a clone). */
enum op_kind { OP_CREATE, OP_MOVE, OP_KEY_PUT };

struct op {
	pthread_t th;
	struct store *s;
	enum op_kind kind;
	struct req r;				/* OP_CREATE */
	char id[STORE_TX_ID_LEN + 1];		/* OP_MOVE */
	enum store_state from, to;
	char nonce[64];
	struct store_key key;			/* OP_KEY_PUT */
	bool close_after;			/* store_close when done */
	int rc;
	struct store_err err;
	struct store_tx out;
};

static void *
op_main(void *arg)
{
	struct op *o = arg;
	struct store_tx_change c = { 0 };

	switch (o->kind) {
	case OP_CREATE:
		o->rc = store_tx_create(o->s, &o->r.n, 0, T0, &o->out, &o->err);
		break;
	case OP_MOVE:
		c.tc_nonce = o->nonce;
		o->rc = store_tx_transition(o->s, o->id, o->from, o->to, &c, T0 + 1, &o->out,
					    &o->err);
		break;
	case OP_KEY_PUT:
		o->rc = store_key_put(o->s, &o->key, T0, &o->err);
		break;
	}
	if (o->close_after) {
		store_close(o->s);
		o->s = NULL;
	}
	return NULL;
}

static void
op_start(struct op *o, struct store *base)
{
	struct store_err err = { 0 };

	o->s = store_clone(base, &err);
	if (o->s == NULL)
		fail_msg("clone: %d %s", err.status, err.detail);
	assert_int_equal(pthread_create(&o->th, NULL, op_main, o), 0);
}

static void
op_join(struct op *o)
{
	assert_int_equal(pthread_join(o->th, NULL), 0);
	store_close(o->s);
	o->s = NULL;
}

static int
setup(void **state)
{
	(void)state;
	return ts_setup("test_store_group");
}

/* ---- tests ---------------------------------------------------------------- */

/* 16 threads, each on its own clone, run whole lifecycles (create, then
 * PROMPT_SENT, ANSWERED, COMPLETED) at once: every call succeeds, a fresh
 * handle finds every transaction COMPLETED, and the writes were committed
 * in fewer commits than writes. */
#define CONC_THREADS 16
#define CONC_ROUNDS 25

struct life {
	pthread_t th;
	struct store *s;
	int me;
	int fails;
	char ids[CONC_ROUNDS][STORE_TX_ID_LEN + 1];
};

static void *
life_main(void *arg)
{
	static const unsigned char answer[] = "raw answer";
	struct life *l = arg;
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct store_tx_change c;
	char tag[32], nonce[64];
	struct req r;
	int i;

	snprintf(tag, sizeof(tag), "L%d", l->me);
	for (i = 0; i < CONC_ROUNDS; i++) {
		char aptid[64], msisdn[32];

		snprintf(aptid, sizeof(aptid), "%s_%d", tag, i);
		snprintf(msisdn, sizeof(msisdn), "+3584%02d%06d", l->me, i);
		req_init(&r, aptid, msisdn, "sign", aptid);
		if (store_tx_create(l->s, &r.n, 0, T0, &tx, &err) != 0 || tx.tx_replay) {
			l->fails++;
			continue;
		}
		memcpy(l->ids[i], tx.tx_id, sizeof(l->ids[i]));
		memset(&c, 0, sizeof(c));
		nonce_new(nonce, sizeof(nonce));
		c.tc_nonce = nonce;
		if (store_tx_transition(l->s, tx.tx_id, STORE_ST_ACCEPTED, STORE_ST_PROMPT_SENT, &c,
					T0 + 1, NULL, &err) != 0)
			l->fails++;
		memset(&c, 0, sizeof(c));
		c.tc_answer = answer;
		c.tc_answer_len = sizeof(answer);
		if (store_tx_transition(l->s, tx.tx_id, STORE_ST_PROMPT_SENT, STORE_ST_ANSWERED, &c,
					T0 + 2, NULL, &err) != 0)
			l->fails++;
		memset(&c, 0, sizeof(c));
		c.tc_status = 500;
		c.tc_signature = SIG;
		c.tc_signature_len = strlen(SIG);
		if (store_tx_transition(l->s, tx.tx_id, STORE_ST_ANSWERED, STORE_ST_COMPLETED, &c,
					T0 + 3, NULL, &err) != 0)
			l->fails++;
	}
	store_tx_clear(&tx);
	return NULL;
}

static void
test_group_concurrent(void **state)
{
	struct store *s = ts_must_open("conc", STORE_OPEN_CREATE);
	struct life *l = calloc(CONC_THREADS, sizeof(*l));
	struct store_sqlite_stats a, b;
	struct store_err err = { 0 };
	struct store_tx got = { 0 };
	uint64_t writes, commits;
	int i, k;

	(void)state;
	assert_non_null(l);
	a = stats();
	for (i = 0; i < CONC_THREADS; i++) {
		l[i].me = i;
		l[i].s = store_clone(s, &err);
		assert_non_null(l[i].s);
		assert_int_equal(pthread_create(&l[i].th, NULL, life_main, &l[i]), 0);
	}
	for (i = 0; i < CONC_THREADS; i++) {
		assert_int_equal(pthread_join(l[i].th, NULL), 0);
		store_close(l[i].s);
		assert_int_equal(l[i].fails, 0);
	}
	b = stats();
	store_close(s);
	writes = b.ss_writes - a.ss_writes;
	commits = b.ss_commits - a.ss_commits;
	print_message("group: %d writes in %llu commits (%.1f per commit)\n",
		      4 * CONC_THREADS * CONC_ROUNDS, (unsigned long long)commits,
		      commits ? (double)writes / (double)commits : 0.0);
	assert_int_equal(writes, 4 * CONC_THREADS * CONC_ROUNDS);
	assert_int_equal(b.ss_failed_commits, a.ss_failed_commits);
	assert_true(commits < writes);

	/* a new handle (a new writer: the last handle closed) sees them all */
	s = ts_must_open("conc", 0);
	for (i = 0; i < CONC_THREADS; i++)
		for (k = 0; k < CONC_ROUNDS; k++) {
			if (store_tx_get_by_id(s, l[i].ids[k], 0, &got, &err) != 0)
				fail_msg("lost %s: %d %s", l[i].ids[k], err.status, err.detail);
			assert_int_equal(got.tx_state, STORE_ST_COMPLETED);
			assert_int_equal(got.tx_status, 500);
			assert_non_null(got.tx_signature);
		}
	store_tx_clear(&got);
	store_close(s);
	assert_int_equal(raw_count("conc", "SELECT count(*) FROM tx WHERE state = 'COMPLETED'"),
			 CONC_THREADS * CONC_ROUNDS);
	free(l);
}

/* Writes queued behind a held lock form one group: 16 creates, 2 commits
 * (the first write's own group, then everything queued behind it). */
static void
test_group_forms(void **state)
{
	struct store *s = ts_must_open("forms", STORE_OPEN_CREATE);
	struct op o[16];
	struct store_sqlite_stats a, b;
	sqlite3 *lk;
	size_t i;

	(void)state;
	memset(o, 0, sizeof(o));
	a = stats();
	lk = lock_db("forms");
	for (i = 0; i < 16; i++) {
		o[i].kind = OP_CREATE;
		req_nth(&o[i].r, "F", (int)i);
		op_start(&o[i], s);
	}
	usleep(QUEUE_MS * 1000);
	unlock_db(lk);
	for (i = 0; i < 16; i++) {
		op_join(&o[i]);
		if (o[i].rc != 0)
			fail_msg("create %zu: %d %s", i, o[i].err.status, o[i].err.detail);
		store_tx_clear(&o[i].out);
	}
	b = stats();
	print_message("forms: 16 writes in %llu commits\n",
		      (unsigned long long)(b.ss_commits - a.ss_commits));
	assert_int_equal(b.ss_writes - a.ss_writes, 16);
	assert_true(b.ss_commits - a.ss_commits <= 3);
	assert_int_equal(raw_count("forms", "SELECT count(*) FROM tx"), 16);
	store_close(s);
}

/* Refusals inside one busy group: each gets its own answer, and the
 * others of the group are committed as if alone. */
static void
test_group_isolated_failures(void **state)
{
	struct store *s = ts_must_open("iso", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx busy = { 0 }, prompted = { 0 }, got = { 0 };
	struct store_tx_change c = { 0 };
	struct store_sqlite_stats a, b;
	struct req r;
	char used_nonce[64];
	enum { N_OK = 10, X_101, X_406, X_CONFLICT, X_NONCE, X_KEY, X_SAME1, X_SAME2, X_USER1,
	       X_USER2, N_OPS };
	struct op o[N_OPS];
	sqlite3 *lk;
	size_t i;

	(void)state;
	memset(o, 0, sizeof(o));
	/* before the group: an outstanding request of user B, and one in
	 * PROMPT_SENT whose nonce is taken */
	req_init(&r, "busy", "+358401111111", "sign", "busy");
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &busy, &err), 0);
	req_init(&r, "prompted", "+358402222222", "sign", "prompted");
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &prompted, &err), 0);
	nonce_new(used_nonce, sizeof(used_nonce));
	c.tc_nonce = used_nonce;
	assert_int_equal(store_tx_transition(s, prompted.tx_id, STORE_ST_ACCEPTED,
					     STORE_ST_PROMPT_SENT, &c, T0 + 1, NULL, &err),
			 0);

	for (i = 0; i < N_OK; i++) {
		o[i].kind = OP_CREATE;
		req_nth(&o[i].r, "ok", (int)i);
	}
	o[X_101].kind = OP_CREATE; /* AP_TransID "busy" with other content */
	req_init(&o[X_101].r, "busy", "+358403333333", "sign", "other content");
	o[X_406].kind = OP_CREATE; /* user B's key is taken */
	req_init(&o[X_406].r, "second", "+358401111111", "sign", "second");
	o[X_CONFLICT].kind = OP_MOVE; /* it is PROMPT_SENT, not ACCEPTED */
	memcpy(o[X_CONFLICT].id, prompted.tx_id, sizeof(o[X_CONFLICT].id));
	o[X_CONFLICT].from = STORE_ST_ACCEPTED;
	o[X_CONFLICT].to = STORE_ST_PROMPT_SENT;
	nonce_new(o[X_CONFLICT].nonce, sizeof(o[X_CONFLICT].nonce));
	o[X_NONCE].kind = OP_MOVE; /* a nonce in use: 900, the statement fails */
	memcpy(o[X_NONCE].id, busy.tx_id, sizeof(o[X_NONCE].id));
	o[X_NONCE].from = STORE_ST_ACCEPTED;
	o[X_NONCE].to = STORE_ST_PROMPT_SENT;
	memcpy(o[X_NONCE].nonce, used_nonce, sizeof(used_nonce));
	o[X_KEY].kind = OP_KEY_PUT; /* a key of an unknown user: 101 */
	snprintf(o[X_KEY].key.sk_key_id, sizeof(o[X_KEY].key.sk_key_id), "k1");
	snprintf(o[X_KEY].key.sk_group, sizeof(o[X_KEY].key.sk_group), "g1");
	snprintf(o[X_KEY].key.sk_msisdn, sizeof(o[X_KEY].key.sk_msisdn), "+358409999999");
	snprintf(o[X_KEY].key.sk_device_id, sizeof(o[X_KEY].key.sk_device_id), "d1");
	snprintf(o[X_KEY].key.sk_profiles, sizeof(o[X_KEY].key.sk_profiles), "http://p/");
	o[X_KEY].key.sk_purpose = STORE_KEY_SIGN;
	o[X_KEY].key.sk_state = STORE_KEY_ACTIVE;
	/* the same request twice in one group: one creates, one replays */
	o[X_SAME1].kind = o[X_SAME2].kind = OP_CREATE;
	req_init(&o[X_SAME1].r, "twice", "+358404444444", "sign", "twice");
	req_init(&o[X_SAME2].r, "twice", "+358404444444", "sign", "twice");
	/* two requests of one user and key in one group: one wins, one 406 */
	o[X_USER1].kind = o[X_USER2].kind = OP_CREATE;
	req_init(&o[X_USER1].r, "u1", "+358405555555", "sign", "u1");
	req_init(&o[X_USER2].r, "u2", "+358405555555", "sign", "u2");

	a = stats();
	lk = lock_db("iso");
	for (i = 0; i < N_OPS; i++)
		op_start(&o[i], s);
	usleep(QUEUE_MS * 1000);
	unlock_db(lk);
	for (i = 0; i < N_OPS; i++)
		op_join(&o[i]);
	b = stats();
	assert_int_equal(b.ss_failed_commits, a.ss_failed_commits);
	assert_true(b.ss_commits - a.ss_commits <= 3);

	for (i = 0; i < N_OK; i++) {
		if (o[i].rc != 0)
			fail_msg("ok %zu: %d %s", i, o[i].err.status, o[i].err.detail);
		assert_false(o[i].out.tx_replay);
		assert_int_equal(o[i].out.tx_state, STORE_ST_ACCEPTED);
	}
	assert_int_equal(o[X_101].rc, -1);
	assert_int_equal(o[X_101].err.status, 101);
	assert_int_equal(o[X_406].rc, -1);
	assert_int_equal(o[X_406].err.status, 406);
	assert_int_equal(o[X_CONFLICT].rc, -1);
	assert_int_equal(o[X_CONFLICT].err.status, STORE_STATUS_CONFLICT);
	assert_int_equal(o[X_CONFLICT].out.tx_state, STORE_ST_PROMPT_SENT); /* the current */
	assert_int_equal(o[X_NONCE].rc, -1);
	assert_int_equal(o[X_NONCE].err.status, 900);
	assert_int_equal(o[X_KEY].rc, -1);
	assert_int_equal(o[X_KEY].err.status, 101);
	assert_int_equal(o[X_SAME1].rc, 0);
	assert_int_equal(o[X_SAME2].rc, 0);
	assert_string_equal(o[X_SAME1].out.tx_id, o[X_SAME2].out.tx_id);
	assert_true(o[X_SAME1].out.tx_replay != o[X_SAME2].out.tx_replay);
	assert_true((o[X_USER1].rc == 0 && o[X_USER2].rc == -1 && o[X_USER2].err.status == 406) ||
		    (o[X_USER2].rc == 0 && o[X_USER1].rc == -1 && o[X_USER1].err.status == 406));

	/* what the database holds, through a fresh handle */
	store_close(s);
	s = ts_must_open("iso", 0);
	for (i = 0; i < N_OK; i++) {
		assert_int_equal(store_tx_get_by_id(s, o[i].out.tx_id, 0, &got, &err), 0);
		assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	}
	assert_int_equal(store_tx_get_by_id(s, busy.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED); /* the nonce clash left it */
	assert_string_equal(got.tx_ap_trans_id, "busy");
	assert_int_equal(store_tx_get_by_id(s, prompted.tx_id, 0, &got, &err), 0);
	assert_string_equal(got.tx_nonce, used_nonce);
	/* 2 before + 10 + "twice" + one of u1/u2; nothing of the refusals */
	assert_int_equal(raw_count("iso", "SELECT count(*) FROM tx"), 2 + N_OK + 1 + 1);
	assert_int_equal(raw_count("iso", "SELECT count(*) FROM keys"), 0);
	store_tx_clear(&got);
	store_tx_clear(&busy);
	store_tx_clear(&prompted);
	for (i = 0; i < N_OPS; i++)
		store_tx_clear(&o[i].out);
	store_close(s);
}

/* A COMMIT that fails: every operation of its group answers 900 (even one
 * the group had refused: its refusal may rest on an undone write), the
 * records are cleared, nothing of the group is in the database; the next
 * group works. */
static void
test_group_commit_failure(void **state)
{
	struct store *s = ts_must_open("cfail", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx base = { 0 }, got = { 0 };
	struct store_sqlite_stats a, b;
	struct req r;
	struct op o[12];
	char ok[16];
	sqlite3 *lk, *db;
	size_t i;

	(void)state;
	memset(o, 0, sizeof(o));
	req_init(&r, "base", "+358406666666", "sign", "base");
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &base, &err), 0);

	/* one write alone */
	store_sqlite_test_fail_commits(1);
	req_init(&r, "alone", "+358407777777", "sign", "alone");
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &got, &err), -1);
	assert_int_equal(err.status, 900);
	assert_string_equal(got.tx_id, ""); /* cleared */
	assert_int_equal(raw_count("cfail", "SELECT count(*) FROM tx WHERE ap_trans_id = 'alone'"),
			 0);

	/* a busy group: creates, a move of `base`, a 406 on base's user;
	 * both groups (the first write's, then the rest) fail */
	for (i = 0; i < 10; i++) {
		o[i].kind = OP_CREATE;
		req_nth(&o[i].r, "cf", (int)i);
	}
	o[10].kind = OP_MOVE;
	memcpy(o[10].id, base.tx_id, sizeof(o[10].id));
	o[10].from = STORE_ST_ACCEPTED;
	o[10].to = STORE_ST_PROMPT_SENT;
	nonce_new(o[10].nonce, sizeof(o[10].nonce));
	o[11].kind = OP_CREATE;
	req_init(&o[11].r, "dup", "+358406666666", "sign", "dup");
	a = stats();
	store_sqlite_test_fail_commits(2);
	lk = lock_db("cfail");
	for (i = 0; i < 12; i++)
		op_start(&o[i], s);
	usleep(QUEUE_MS * 1000);
	unlock_db(lk);
	for (i = 0; i < 12; i++) {
		op_join(&o[i]);
		assert_int_equal(o[i].rc, -1);
		if (o[i].err.status != 900)
			fail_msg("op %zu: %d %s", i, o[i].err.status, o[i].err.detail);
		assert_string_equal(o[i].out.tx_id, "");
		assert_null(o[i].out.tx_signature);
	}
	b = stats();
	store_sqlite_test_fail_commits(0);
	assert_int_equal(b.ss_failed_commits - a.ss_failed_commits, 2);
	assert_int_equal(b.ss_commits, a.ss_commits);
	assert_int_equal(raw_count("cfail", "SELECT count(*) FROM tx"), 1);
	assert_int_equal(store_tx_get_by_id(s, base.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_ACCEPTED);
	assert_string_equal(got.tx_nonce, "");
	db = ts_raw_open("cfail");
	ts_raw_text(db, "PRAGMA integrity_check", ok, sizeof(ok));
	assert_string_equal(ok, "ok");
	sqlite3_close(db);

	/* the handle is not broken: the same writes now succeed */
	for (i = 0; i < 11; i++) {
		memset(&o[i].err, 0, sizeof(o[i].err));
		op_start(&o[i], s);
	}
	for (i = 0; i < 11; i++) {
		op_join(&o[i]);
		if (o[i].rc != 0)
			fail_msg("retry %zu: %d %s", i, o[i].err.status, o[i].err.detail);
		store_tx_clear(&o[i].out);
	}
	assert_int_equal(raw_count("cfail", "SELECT count(*) FROM tx"), 11);
	assert_int_equal(store_tx_get_by_id(s, base.tx_id, 0, &got, &err), 0);
	assert_int_equal(got.tx_state, STORE_ST_PROMPT_SENT);
	store_tx_clear(&got);
	store_tx_clear(&base);
	store_close(s);
}

/* Handles close while writes of other handles are queued (the first one
 * opened, and each thread's own clone as soon as its write returned): no
 * write is lost, nothing is used after it is freed (ASan). */
static void
test_group_close_while_queued(void **state)
{
	struct store *s = ts_must_open("closeq", STORE_OPEN_CREATE);
	struct op o[12];
	sqlite3 *lk;
	size_t i;

	(void)state;
	memset(o, 0, sizeof(o));
	lk = lock_db("closeq");
	for (i = 0; i < 12; i++) {
		o[i].kind = OP_CREATE;
		o[i].close_after = true;
		req_nth(&o[i].r, "cq", (int)i);
		op_start(&o[i], s);
	}
	usleep(QUEUE_MS * 1000);
	store_close(s); /* not the last handle: the clones keep the writer */
	unlock_db(lk);
	for (i = 0; i < 12; i++) {
		assert_int_equal(pthread_join(o[i].th, NULL), 0);
		assert_null(o[i].s);
		if (o[i].rc != 0)
			fail_msg("create %zu: %d %s", i, o[i].err.status, o[i].err.detail);
		store_tx_clear(&o[i].out);
	}
	assert_int_equal(raw_count("closeq", "SELECT count(*) FROM tx"), 12);
	/* and a new first handle starts a new writer */
	s = ts_must_open("closeq", 0);
	memset(&o[0], 0, sizeof(o[0]));
	req_nth(&o[0].r, "cq", 99);
	assert_int_equal(store_tx_create(s, &o[0].r.n, 0, T0, &o[0].out, &o[0].err), 0);
	store_tx_clear(&o[0].out);
	store_close(s);
	assert_int_equal(raw_count("closeq", "SELECT count(*) FROM tx"), 13);
}

/* Two database files, one writer each; a second path to the same file
 * ("dir/./x.db") shares the first one's; a read-only handle has none and
 * still refuses writes. */
static void
test_group_files(void **state)
{
	struct store *a = ts_must_open("fa", STORE_OPEN_CREATE);
	struct store *b = ts_must_open("fb", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct store *a2, *ro;
	char uri[600];
	struct req r;

	(void)state;
	snprintf(uri, sizeof(uri), "sqlite:%s/./fa.db", ts_dir);
	a2 = store_open(uri, 0, &err);
	assert_non_null(a2);
	req_nth(&r, "fa", 1);
	assert_int_equal(store_tx_create(a, &r.n, 0, T0, &tx, &err), 0);
	req_nth(&r, "fa", 2);
	assert_int_equal(store_tx_create(a2, &r.n, 0, T0, &tx, &err), 0);
	req_nth(&r, "fa", 1); /* the same request through the other path */
	assert_int_equal(store_tx_create(a2, &r.n, 0, T0, &tx, &err), 0);
	assert_true(tx.tx_replay);
	req_nth(&r, "fb", 1);
	assert_int_equal(store_tx_create(b, &r.n, 0, T0, &tx, &err), 0);
	assert_int_equal(raw_count("fa", "SELECT count(*) FROM tx"), 2);
	assert_int_equal(raw_count("fb", "SELECT count(*) FROM tx"), 1);
	ts_db_uri(uri, sizeof(uri), "fa");
	ro = store_open(uri, STORE_OPEN_READONLY, &err);
	assert_non_null(ro);
	req_nth(&r, "fa", 3);
	assert_int_equal(store_tx_create(ro, &r.n, 0, T0, &tx, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(store_health(ro, &err), 0);
	assert_int_equal(store_health(a2, &err), 0);
	store_close(ro);
	store_close(a);
	store_close(a2);
	store_close(b);
	store_tx_clear(&tx);
}

/* fork() while a writer is in use: the child (which has no writer thread
 * nor leader of the parent) opens a new handle, as store.h asks, and
 * writes without hanging; the parent's writer goes on. */
static void
test_group_fork(void **state)
{
	struct store *s = ts_must_open("fork", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	char uri[512];
	struct req r;
	int status;
	pid_t pid;

	(void)state;
	req_nth(&r, "fk", 1);
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &tx, &err), 0);
	ts_db_uri(uri, sizeof(uri), "fork");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c;

		alarm(20); /* a hang ends the child with SIGALRM */
		c = store_open(uri, 0, &err);
		if (c == NULL)
			_exit(3);
		req_nth(&r, "fk", 2);
		if (store_tx_create(c, &r.n, 0, T0, &tx, &err) != 0)
			_exit(4);
		store_close(c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	req_nth(&r, "fk", 3);
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &tx, &err), 0);
	assert_int_equal(raw_count("fork", "SELECT count(*) FROM tx"), 3);
	store_tx_clear(&tx);
	store_close(s);
}

/* store_tx_set_peer_trans_id (roaming, issue 6) is a write like the
 * others: it goes through the writer (counted in its commits), a failed
 * COMMIT answers 900 and leaves nothing, the retry succeeds. */
static void
test_group_peer_trans_id(void **state)
{
	struct store *s = ts_must_open("gpeer", STORE_OPEN_CREATE);
	struct store_err err = { 0 };
	struct store_tx tx = { 0 };
	struct store_sqlite_stats a, b;
	struct req r;

	(void)state;
	req_init(&r, "peer", "+358408888888", "sign", "peer");
	r.n.tn_peer = "http://mssp-b.example/";
	assert_int_equal(store_tx_create(s, &r.n, 0, T0, &tx, &err), 0);
	store_sqlite_test_fail_commits(1);
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T1", T0 + 1, &err), -1);
	assert_int_equal(err.status, 900);
	store_sqlite_test_fail_commits(0);
	assert_int_equal(raw_count("gpeer", "SELECT count(*) FROM tx WHERE peer_trans_id = ''"),
			 1);
	a = stats();
	assert_int_equal(store_tx_set_peer_trans_id(s, tx.tx_id, "B-T1", T0 + 1, &err), 0);
	b = stats();
	assert_int_equal(b.ss_commits - a.ss_commits, 1);
	assert_int_equal(b.ss_writes - a.ss_writes, 1);
	assert_int_equal(raw_count("gpeer", "SELECT count(*) FROM tx WHERE peer_trans_id = 'B-T1'"
					    " AND peer = 'http://mssp-b.example/'"),
			 1);
	store_tx_clear(&tx);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_concurrent),
		cmocka_unit_test(test_group_forms),
		cmocka_unit_test(test_group_isolated_failures),
		cmocka_unit_test(test_group_commit_failure),
		cmocka_unit_test(test_group_close_while_queued),
		cmocka_unit_test(test_group_files),
		cmocka_unit_test(test_group_fork),
		cmocka_unit_test(test_group_peer_trans_id),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, ts_teardown);
}
