/*
 * test_audit.c - the tamper-evident audit log (src/store/audit, security.md
 * P-05, bad-inputs M-03).
 *
 * Every test works in its own directory under one mkdtemp() directory,
 * with a real key pair from audit_keygen.  The tamper tests change the
 * files behind the module's back (edit a byte, delete, swap or copy a
 * line, cut the tail, tear the last line, forge the head, sign it with
 * another key) and check what the verifier reports, line by line.  The
 * hash chain and the head signature are also recomputed here
 * independently (jansson + OpenSSL), as a standalone verifier would
 * (P-07).  Concurrency: two forked processes and several threads append
 * at once, and the result must be one contiguous, verified sequence.
 */
#include "testutil.h"
#include "testdir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "store/audit.h"
#include "util/limits.h"

#define T0 1700000000000LL
#define NODE "node1"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"

static char root[256];
static char dir[512]; /* this test's audit directory */
static char key_path[600], pub_path[600], log_path[600], head_path[600];

/* ---- helpers ------------------------------------------------------------ */

static int
setup_all(void **state)
{
	(void)state;
	return td_make(root, sizeof(root), "test_audit");
}

static int
teardown_all(void **state)
{
	(void)state;
	td_remove(root);
	return 0;
}

/* A fresh directory with a key pair; paths filled. */
static void
fresh(const char *name)
{
	struct store_err err = { 0 };

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	assert_int_equal(audit_keygen(dir, &err), 0);
	snprintf(key_path, sizeof(key_path), "%s/audit.key", dir);
	snprintf(pub_path, sizeof(pub_path), "%s/audit.pub", dir);
	assert_int_equal(audit_log_path(dir, NODE, log_path, sizeof(log_path)), 0);
	assert_int_equal(audit_head_path(dir, NODE, head_path, sizeof(head_path)), 0);
}

static struct audit *
open_ok(const char *key)
{
	struct store_err err = { 0 };
	struct audit *a = audit_open(dir, NODE, key, &err);

	if (a == NULL)
		fail_msg("audit_open: %d %s", err.status, err.detail);
	return a;
}

static void
append_n(struct audit *a, int n, const char *what)
{
	struct store_err err = { 0 };
	char detail[64];

	for (int i = 0; i < n; i++) {
		struct audit_event ev = { "ra", "ra", "user.create", "+35847001001", "ok", detail };

		snprintf(detail, sizeof(detail), "%s %d", what, i);
		if (audit_append(a, &ev, T0 + i, NULL, &err) != 0)
			fail_msg("audit_append: %d %s", err.status, err.detail);
	}
}

/* A log of n entries with a signed head, closed. */
static void
make_log(const char *name, int n)
{
	struct audit *a;

	fresh(name);
	a = open_ok(key_path);
	append_n(a, n, "entry");
	audit_close(a);
}

#define MAXP 64
struct probs {
	size_t n;
	struct audit_problem p[MAXP];
};

static void
collect(void *arg, const struct audit_problem *p)
{
	struct probs *ps = arg;

	if (ps->n < MAXP)
		ps->p[ps->n++] = *p;
}

static int
verify(struct probs *ps, struct audit_verify_result *res)
{
	struct store_err err = { 0 };
	int rc;

	memset(ps, 0, sizeof(*ps));
	rc = audit_verify_file(log_path, head_path, pub_path, collect, ps, res, &err);
	if (rc < 0)
		fail_msg("audit_verify_file: %s", err.detail);
	return rc;
}

static bool
has(const struct probs *ps, enum audit_problem_kind k, uint64_t line)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].ap_kind == k && ps->p[i].ap_line == line)
			return true;
	return false;
}

static void
dump(const struct probs *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		print_message("# line %" PRIu64 " seq %" PRIu64 ": %s: %s\n", ps->p[i].ap_line,
			      ps->p[i].ap_seq, audit_problem_name(ps->p[i].ap_kind),
			      ps->p[i].ap_msg);
}

/* The log as lines (newline kept), for the tamper tests. */
struct lines {
	size_t n;
	char *l[4096];
};

static void
lines_read(struct lines *ls)
{
	size_t len;
	char *buf = tu_slurp(log_path, &len), *p = buf;

	ls->n = 0;
	while (p < buf + len) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(buf + len - p);

		assert_true(ls->n < 4096);
		ls->l[ls->n] = malloc(l + 1);
		memcpy(ls->l[ls->n], p, l);
		ls->l[ls->n][l] = '\0';
		ls->n++;
		p += l;
	}
	free(buf);
}

static void
lines_write(struct lines *ls)
{
	FILE *f = fopen(log_path, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < ls->n; i++)
		fputs(ls->l[i], f);
	fclose(f);
}

static void
lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->l[i]);
	ls->n = 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- independent recomputation (what a standalone verifier does) -------- */

static void
hexs(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void
unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

/* Re-derive every hash from the parsed JSON (re-serialised, not the
 * line's bytes) and the head signature from the public key. */
static void
standalone_check(uint64_t expect_n)
{
	struct lines ls;
	char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	char hash[65] = "";

	lines_read(&ls);
	assert_int_equal(ls.n, expect_n);
	for (size_t i = 0; i < ls.n; i++) {
		json_error_t je;
		json_t *o = json_loads(ls.l[i], 0, &je);
		unsigned char p[32], h[32];
		unsigned int hl;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		char *canon;

		assert_non_null(o);
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), (json_int_t)(i + 1));
		assert_string_equal(json_string_value(json_object_get(o, "prev")), prev);
		snprintf(hash, sizeof(hash), "%s", json_string_value(json_object_get(o, "hash")));
		json_object_del(o, "hash");
		canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
		unhex(prev, p, 32);
		assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
		EVP_DigestUpdate(c, p, 32);
		EVP_DigestUpdate(c, canon, strlen(canon));
		EVP_DigestFinal_ex(c, h, &hl);
		hexs(h, 32, prev);
		assert_string_equal(prev, hash);
		/* the line is C with the hash before the final brace */
		assert_int_equal(strncmp(ls.l[i], canon, strlen(canon) - 1), 0);
		EVP_MD_CTX_free(c);
		free(canon);
		json_decref(o);
	}
	lines_free(&ls);

	/* the head */
	json_error_t je;
	json_t *hd = json_load_file(head_path, 0, &je);
	unsigned char sig[128];
	char tbs[256];
	int tl, sl;
	const char *s64;
	EVP_PKEY *pub;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	FILE *f = fopen(pub_path, "r");

	assert_non_null(hd);
	assert_non_null(f);
	pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pub);
	assert_int_equal(json_integer_value(json_object_get(hd, "seq")), (json_int_t)expect_n);
	assert_string_equal(json_string_value(json_object_get(hd, "hash")), expect_n ? hash : ZERO);
	/* a final head commits to nothing */
	assert_non_null(json_string_value(json_object_get(hd, "next")));
	assert_string_equal(json_string_value(json_object_get(hd, "next")), "");
	assert_int_equal(json_object_size(hd), 5);
	tl = snprintf(tbs, sizeof(tbs), "mssp-audit-head-v2%c%s%c%" PRIu64 "%c%s%c", 0, NODE, 0,
		      expect_n, 0, expect_n ? hash : ZERO, 0);
	s64 = json_string_value(json_object_get(hd, "sig"));
	sl = EVP_DecodeBlock(sig, (const unsigned char *)s64, (int)strlen(s64));
	assert_true(sl > 0);
	sl -= (s64[strlen(s64) - 1] == '=') + (s64[strlen(s64) - 2] == '=');
	assert_int_equal(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(c, sig, (size_t)sl, (unsigned char *)tbs, (size_t)tl), 1);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pub);
	json_decref(hd);
}

/* Sign a head for (seq, hash) with the private key at `keyfile` (test
 * code, not the module's): the current form, committing to `next` (""
 * for none), or - next NULL - the old form without "next". */
static void
sign_head_next(const char *keyfile, uint64_t seq, const char *hash, const char *next, char *out,
	       size_t cap)
{
	FILE *f = fopen(keyfile, "r");
	EVP_PKEY *k;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char sig[128];
	char b64[256], tbs[320];
	size_t sl = sizeof(sig);
	int tl;

	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	if (next == NULL)
		tl = snprintf(tbs, sizeof(tbs), "mssp-audit-head-v1%c%s%c%" PRIu64 "%c%s", 0, NODE,
			      0, seq, 0, hash);
	else
		tl = snprintf(tbs, sizeof(tbs), "mssp-audit-head-v2%c%s%c%" PRIu64 "%c%s%c%s", 0,
			      NODE, 0, seq, 0, hash, 0, next);
	assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &sl, (unsigned char *)tbs, (size_t)tl), 1);
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sl);
	if (next == NULL)
		snprintf(out, cap,
			 "{\"hash\":\"%s\",\"node\":\"%s\",\"seq\":%" PRIu64 ",\"sig\":\"%s\"}\n",
			 hash, NODE, seq, b64);
	else
		snprintf(out, cap,
			 "{\"hash\":\"%s\",\"next\":\"%s\",\"node\":\"%s\",\"seq\":%" PRIu64
			 ",\"sig\":\"%s\"}\n",
			 hash, next, NODE, seq, b64);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
}

/* An old-form head (no "next"), as written before review F2. */
static void
sign_head(const char *keyfile, uint64_t seq, const char *hash, char *out, size_t cap)
{
	sign_head_next(keyfile, seq, hash, NULL, out, cap);
}

/* The "hash" of line i (0-based) of the log. */
static void
line_hash(size_t i, char *out)
{
	struct lines ls;
	json_error_t je;
	json_t *o;

	lines_read(&ls);
	assert_true(i < ls.n);
	o = json_loads(ls.l[i], 0, &je);
	assert_non_null(o);
	snprintf(out, 65, "%s", json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	lines_free(&ls);
}

static size_t
line_count(void)
{
	struct lines ls;
	size_t n;

	lines_read(&ls);
	n = ls.n;
	lines_free(&ls);
	return n;
}

/* Crash window (b) as the writer leaves it: entry N+1 written, the head
 * still (N, hash N) but committed to it (next = hash N+1).  The entry is
 * written through a keyless handle (which writes no head), the head
 * re-signed here with the node's key as the writer had signed it. */
static void
make_crash(const char *what)
{
	struct audit *a;
	char h[65], next[65], head[600];
	size_t n = line_count();
	struct store_err err = { 0 };

	if (n > 0)
		line_hash(n - 1, h);
	else
		snprintf(h, sizeof(h), "%s", ZERO);
	a = audit_open(dir, NODE, NULL, &err);
	assert_non_null(a);
	append_n(a, 1, what);
	audit_close(a);
	line_hash(n, next);
	sign_head_next(key_path, n, h, next, head, sizeof(head));
	write_file(head_path, head);
}

/* Someone who can write the log but has no key appends a well-chained
 * entry (review F2): the head stays as it was. */
static void
forge_append(const char *what)
{
	struct store_err err = { 0 };
	struct audit *a = audit_open(dir, NODE, NULL, &err);

	assert_non_null(a);
	append_n(a, 1, what);
	audit_close(a);
}

static bool
has_kind(const struct probs *ps, enum audit_problem_kind k)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].ap_kind == k)
			return true;
	return false;
}

static json_t *read_entry(uint64_t seq);

/* ---- basics ---------------------------------------------------------------- */

static void
test_keygen(void **state)
{
	struct store_err err = { 0 };
	struct stat st;

	(void)state;
	fresh("keygen");
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(pub_path, &st), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* existing keys are never overwritten */
	assert_int_equal(audit_keygen(dir, &err), -1);
	assert_int_equal(err.status, 900);
	/* the key is PKCS#8 */
	char *pem = tu_slurp(key_path, NULL);

	assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	free(pem);
}

static void
test_append_verify(void **state)
{
	struct store_err err = { 0 };
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	uint64_t seq = 0;
	struct stat st;

	(void)state;
	fresh("basic");
	a = open_ok(key_path);
	/* an empty log under its genesis head: intact */
	assert_int_equal(verify(&ps, &res), 0);
	assert_int_equal(ps.n, 0);
	assert_true(res.av_head_ok);

	for (int i = 1; i <= 25; i++) {
		struct audit_event ev = { "admin1", "admin", "ap.create", "http://demo.ap/", "ok",
					  "created" };

		assert_int_equal(audit_append(a, &ev, T0 + i, &seq, &err), 0);
		assert_int_equal(seq, (uint64_t)i);
	}
	audit_close(a);
	assert_int_equal(stat(log_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	assert_int_equal(res.av_entries, 25);
	assert_int_equal(res.av_last_seq, 25);
	assert_true(res.av_head_ok);
	standalone_check(25);

	/* re-open and go on: the sequence continues from the file */
	a = open_ok(key_path);
	append_n(a, 5, "more");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	assert_int_equal(res.av_last_seq, 30);
	standalone_check(30);

	/* the timestamp is UTC with milliseconds */
	struct lines ls;

	lines_read(&ls);
	assert_non_null(strstr(ls.l[0], "\"ts\":\"2023-11-14T22:13:20.001Z\""));
	assert_non_null(strstr(ls.l[0], "\"node\":\"node1\""));
	lines_free(&ls);
}

static void
test_bad_events(void **state)
{
	struct store_err err = { 0 };
	struct audit *a;
	char big[MSSP_STORE_MAX_REC_NAME + 2];
	struct probs ps;
	struct audit_verify_result res;

	(void)state;
	fresh("badev");
	a = open_ok(key_path);
	struct audit_event ev = { "ra", "ra", "user.create", "x", "maybe", "" };

	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	ev.ae_outcome = NULL;
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	ev.ae_outcome = "refused";
	ev.ae_actor = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 65 */
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	ev.ae_actor = "bad\xff utf8";
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	ev.ae_actor = "ra";
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ev.ae_target = big;
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 101);
	big[MSSP_STORE_MAX_REC_NAME] = '\0'; /* exactly the limit: fine */
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	/* NULL fields are written as "" */
	struct audit_event empty = { NULL, NULL, NULL, NULL, "ok", NULL };
	uint64_t seq;

	assert_int_equal(audit_append(a, &empty, T0, &seq, &err), 0);
	assert_int_equal(seq, 2);
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	assert_int_equal(res.av_entries, 2); /* nothing refused was written */

	/* bad node ids */
	assert_null(audit_open(dir, "../x", NULL, &err));
	assert_null(audit_open(dir, "", NULL, &err));
	char p[64];

	assert_int_equal(audit_log_path(dir, "a/b", p, sizeof(p)), -1);
	assert_int_equal(audit_log_path("/d", "n", p, 5), -1);
	assert_int_equal(audit_log_path("/d", "n", p, sizeof(p)), 0);
	assert_string_equal(p, "/d/n.log");
	assert_int_equal(audit_head_path("/d", "n", p, sizeof(p)), 0);
	assert_string_equal(p, "/d/n.head");
	assert_string_equal(audit_problem_name(AUDIT_BAD_HASH), "bad-hash");
	assert_string_equal(audit_problem_name(AUDIT_TRUNCATED), "truncated");
	assert_string_equal(audit_problem_name(AUDIT_SEQ_GAP), "seq-gap");
}

/* ---- tamper tests (P-05) --------------------------------------------------- */

static void
test_tamper_edit_byte(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct lines ls;
	char *p;

	(void)state;
	make_log("edit", 20);
	lines_read(&ls);
	p = strstr(ls.l[16], "entry 16"); /* line 17, inside its detail */
	assert_non_null(p);
	p[0] = 'E';
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_BAD_HASH);
	assert_int_equal(ps.p[0].ap_line, 17);
	assert_int_equal(ps.p[0].ap_seq, 17);
	assert_true(res.av_head_ok); /* the head is not what changed */

	/* an edit of the stored hash itself: that line, and the link after */
	make_log("edit2", 20);
	lines_read(&ls);
	p = strstr(ls.l[4], "\"hash\":\"") + 8;
	p[3] = p[3] == 'a' ? 'b' : 'a';
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has(&ps, AUDIT_BAD_HASH, 5));
	assert_true(has(&ps, AUDIT_BAD_PREV, 6));

	/* an edit that breaks the JSON: that line is not an entry */
	make_log("edit3", 20);
	lines_read(&ls);
	ls.l[9][0] = '[';
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_true(has(&ps, AUDIT_BAD_LINE, 10));
}

static void
test_tamper_delete_line(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct lines ls;

	(void)state;
	make_log("delete", 20);
	lines_read(&ls);
	free(ls.l[6]); /* seq 7 */
	memmove(&ls.l[6], &ls.l[7], (ls.n - 7) * sizeof(ls.l[0]));
	ls.n--;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_SEQ_GAP);
	assert_int_equal(ps.p[0].ap_line, 7);
	assert_int_equal(ps.p[0].ap_seq, 8);

	/* deleted and the later seqs renumbered: the prev link shows it */
	make_log("delete2", 3);
	lines_read(&ls);
	char *p = strstr(ls.l[2], "\"seq\":3");

	assert_non_null(p);
	p[6] = '2';
	free(ls.l[1]);
	ls.l[1] = ls.l[2];
	ls.n = 2;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has(&ps, AUDIT_BAD_HASH, 2));
}

static void
test_tamper_swap_lines(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct lines ls;
	char *t;

	(void)state;
	make_log("swap", 20);
	lines_read(&ls);
	t = ls.l[9];
	ls.l[9] = ls.l[10];
	ls.l[10] = t;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	/* both lines out of order, nothing "missing", no cascade */
	assert_int_equal(ps.n, 2);
	assert_true(has(&ps, AUDIT_SEQ_ORDER, 10));
	assert_true(has(&ps, AUDIT_SEQ_ORDER, 11));
	assert_true(res.av_head_ok);

	/* a line copied in again */
	make_log("copy", 10);
	lines_read(&ls);
	ls.l[ls.n] = strdup(ls.l[3]);
	ls.n++;
	t = ls.l[ls.n - 1];
	ls.l[ls.n - 1] = ls.l[5];
	ls.l[5] = t; /* the copy of seq 4 now at line 6 */
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has(&ps, AUDIT_SEQ_ORDER, 6));

	/* a line repeated right after itself */
	make_log("repeat", 10);
	lines_read(&ls);
	memmove(&ls.l[5], &ls.l[4], (ls.n - 4) * sizeof(ls.l[0]));
	ls.l[4] = strdup(ls.l[5]);
	ls.n++;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_true(has(&ps, AUDIT_SEQ_ORDER, 6));
}

static void
test_tamper_truncate_tail(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct lines ls;

	(void)state;
	make_log("trunc", 20);
	lines_read(&ls);
	for (size_t i = 17; i < 20; i++)
		free(ls.l[i]);
	ls.n = 17;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_TRUNCATED);
	assert_int_equal(ps.p[0].ap_seq, 20);
	assert_false(res.av_head_ok);
	assert_int_equal(res.av_last_seq, 17);

	/* everything removed */
	write_file(log_path, "");
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_TRUNCATED, 0));
}

static void
test_tamper_torn_line(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	FILE *f;

	(void)state;
	/* an append interrupted after the log write (crash window a) */
	make_log("torn", 10);
	f = fopen(log_path, "ab");
	fputs("{\"action\":\"user.cre", f);
	fclose(f);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_TRUNCATED);
	assert_int_equal(ps.p[0].ap_line, 11);
	/* it was never acknowledged: open accepts, the next append cuts it */
	a = open_ok(key_path);
	append_n(a, 2, "after");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	assert_int_equal(res.av_last_seq, 12);
	standalone_check(12);
}

static void
test_tamper_torn_signed(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct stat st;
	struct store_err err = { 0 };

	(void)state;
	make_log("torn3", 10);
	assert_int_equal(stat(log_path, &st), 0);
	assert_int_equal(truncate(log_path, st.st_size - 20), 0);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has(&ps, AUDIT_TRUNCATED, 10)); /* the torn line */
	assert_true(has(&ps, AUDIT_TRUNCATED, 0));  /* the head beyond */
	/* and msspd would not start on it */
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
}

static void
test_tamper_forged_head(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct lines ls;
	char hash[65], head[512];
	json_t *o;
	json_error_t je;
	char *text;

	(void)state;
	/* cut 3 entries and move the head back, keeping the old signature */
	make_log("forge", 20);
	line_hash(16, hash);
	o = json_load_file(head_path, 0, &je);
	assert_non_null(o);
	json_object_set_new(o, "seq", json_integer(17));
	json_object_set_new(o, "hash", json_string(hash));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	write_file(head_path, text);
	free(text);
	json_decref(o);
	lines_read(&ls);
	for (size_t i = 17; i < 20; i++)
		free(ls.l[i]);
	ls.n = 17;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_HEAD_BAD);
	assert_false(res.av_head_ok);

	/* a head that is not a head */
	write_file(head_path, "{\"seq\":20}");
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_HEAD_BAD, 0));

	/* a correctly made head, signed with another node's key */
	char other[700];

	snprintf(other, sizeof(other), "%s/otherkey", root);
	struct store_err err = { 0 };

	assert_int_equal(audit_keygen(other, &err), 0);
	snprintf(other, sizeof(other), "%s/otherkey/audit.key", root);
	sign_head(other, 17, hash, head, sizeof(head));
	write_file(head_path, head);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_HEAD_BAD);
	/* and the same head signed with the right key passes (the test's
	 * signing code is right, so the refusal above was the key) */
	sign_head(key_path, 17, hash, head, sizeof(head));
	write_file(head_path, head);
	assert_int_equal(verify(&ps, &res), 0);
	assert_true(res.av_head_ok);

	/* no head at all over a non-empty log */
	assert_int_equal(unlink(head_path), 0);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_NO_HEAD, 0));
}

/* ---- audit_open and the head ----------------------------------------------- */

static void
test_open_refuses_mismatch(void **state)
{
	struct store_err err = { 0 };
	struct lines ls;
	struct audit *a;
	char head[512], hash[65];
	char *saved;
	size_t len;

	(void)state;
	/* tail cut */
	make_log("open1", 10);
	lines_read(&ls);
	free(ls.l[9]);
	ls.n = 9;
	lines_write(&ls);
	lines_free(&ls);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "does not match its head"));
	/* a verifier without the key refuses as well */
	assert_null(audit_open(dir, NODE, NULL, &err));

	/* last entry edited */
	make_log("open2", 10);
	lines_read(&ls);
	strstr(ls.l[9], "entry 9")[0] = 'X';
	lines_write(&ls);
	lines_free(&ls);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);

	/* head forged to follow a cut tail: the signature gives it away */
	make_log("open3", 10);
	saved = tu_slurp(head_path, &len);
	line_hash(8, hash);
	lines_read(&ls);
	free(ls.l[9]);
	ls.n = 9;
	lines_write(&ls);
	lines_free(&ls);
	snprintf(head, sizeof(head), "{\"hash\":\"%s\",\"node\":\"node1\",\"seq\":9,\"sig\":%s", hash,
		 strstr(saved, "\"sig\":") + 6);
	write_file(head_path, head);
	free(saved);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	/* while the right signature is accepted */
	sign_head(key_path, 9, hash, head, sizeof(head));
	write_file(head_path, head);
	a = open_ok(key_path);
	audit_close(a);

	/* a log emptied under its head */
	make_log("open4", 3);
	write_file(log_path, "");
	assert_null(audit_open(dir, NODE, key_path, &err));

	/* appends are refused too once the files disagree under an open
	 * handle: never chain onto a tampered tail */
	make_log("open5", 5);
	a = open_ok(key_path);
	lines_read(&ls);
	free(ls.l[4]);
	ls.n = 4;
	lines_write(&ls);
	lines_free(&ls);
	struct audit_event ev = { "ra", "ra", "x", "", "ok", "" };

	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	audit_close(a);
}

/* Crash window (b): the line fsync'd, the head committed to it but not
 * moved on.  A keyed open repairs it at once, with an audit entry. */
static void
test_open_crash_window(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a, *nokey;
	struct store_err err = { 0 };
	char h11[65];
	json_t *o;

	(void)state;
	make_log("crash", 10);
	make_crash("crashed");
	line_hash(10, h11);
	/* verify: intact, the head pending (a warning, not a problem) */
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_HEAD_PENDING);
	assert_int_equal(ps.p[0].ap_seq, 11);
	assert_true(res.av_head_ok);
	/* a keyless open accepts it and does not touch it */
	nokey = open_ok(NULL);
	audit_close(nokey);
	assert_int_equal(line_count(), 11);
	/* the keyed open repairs: seq 12 records the adoption of seq 11 */
	a = open_ok(key_path);
	assert_int_equal(line_count(), 12);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	standalone_check(12);
	o = read_entry(12);
	assert_string_equal(json_string_value(json_object_get(o, "action")), "audit.head_repaired");
	assert_string_equal(json_string_value(json_object_get(o, "actor")), "system");
	assert_string_equal(json_string_value(json_object_get(o, "target")), "11");
	assert_non_null(strstr(json_string_value(json_object_get(o, "detail")), h11));
	assert_non_null(strstr(json_string_value(json_object_get(o, "detail")), "seq 11"));
	json_decref(o);
	append_n(a, 1, "signed");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	assert_int_equal(res.av_last_seq, 13);
	standalone_check(13);

	/* two beyond: not a crash, refused */
	nokey = open_ok(NULL);
	append_n(nokey, 2, "unsigned");
	audit_close(nokey);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
}

/* The crash window found by an append through a handle opened before it:
 * repaired first (with its audit entry), then the caller's entry. */
static void
test_repair_by_append(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct audit *a;
	uint64_t seq = 0;
	json_t *o;
	struct audit_event ev = { "ra", "ra", "user.create", "+358", "ok", "mine" };

	(void)state;
	make_log("repair-append", 4);
	a = open_ok(key_path);
	make_crash("crashed"); /* another process died after its entry 5 */
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), 0);
	assert_int_equal(seq, 7);
	audit_close(a);
	o = read_entry(6);
	assert_string_equal(json_string_value(json_object_get(o, "action")), "audit.head_repaired");
	assert_string_equal(json_string_value(json_object_get(o, "target")), "5");
	json_decref(o);
	o = read_entry(7);
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "mine");
	json_decref(o);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	standalone_check(7);
}

/* Review F2: an entry appended beyond the head by someone without the key
 * - well chained, hashing right - is refused by open and by append, and
 * verify reports it. */
static void
test_forged_beyond_head(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct audit *a;
	char h10[65], head[600];
	struct audit_event ev = { "ra", "ra", "x", "", "ok", "" };

	(void)state;
	/* the head commits to nothing */
	make_log("forged1", 10);
	forge_append("forged");
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "committed"));
	assert_null(audit_open(dir, NODE, NULL, &err)); /* nor a verifier's open */
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_HEAD_BAD);
	assert_non_null(strstr(ps.p[0].ap_msg, "forged"));
	assert_false(res.av_head_ok);
	assert_int_equal(line_count(), 11);

	/* through a handle opened before: nothing appended over it, and the
	 * head not re-signed over it */
	make_log("forged2", 10);
	a = open_ok(key_path);
	forge_append("forged");
	char *before = tu_slurp(head_path, NULL);

	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	audit_close(a);
	assert_int_equal(line_count(), 11);
	char *after = tu_slurp(head_path, NULL);

	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has_kind(&ps, AUDIT_HEAD_BAD));

	/* the head committed to another entry (the writer died before
	 * writing it), and a different one was put there */
	make_log("forged3", 10);
	line_hash(9, h10);
	sign_head_next(key_path, 10, h10,
		       "abababababababababababababababababababababababababababababababab", head,
		       sizeof(head));
	write_file(head_path, head);
	a = open_ok(key_path); /* the commitment alone is harmless */
	audit_close(a);
	sign_head_next(key_path, 10, h10,
		       "abababababababababababababababababababababababababababababababab", head,
		       sizeof(head));
	write_file(head_path, head);
	forge_append("forged");
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has_kind(&ps, AUDIT_HEAD_BAD));

	/* the first entry of a new log */
	fresh("forged4");
	a = open_ok(key_path); /* the genesis head */
	audit_close(a);
	forge_append("forged");
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has_kind(&ps, AUDIT_HEAD_BAD));
}

/* Heads written before "next" existed still verify and open; one entry
 * beyond such a head is refused (it committed to nothing); the next
 * append replaces it with the current form. */
static void
test_old_head_format(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct audit *a;
	char h[65], head[600];

	(void)state;
	make_log("oldhead", 6);
	line_hash(5, h);
	sign_head(key_path, 6, h, head, sizeof(head));
	write_file(head_path, head);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	assert_true(res.av_head_ok);
	a = open_ok(key_path);
	append_n(a, 1, "new");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	standalone_check(7); /* the head in the current form */
	/* "next" cannot be stripped: a current head made old fails */
	char *text = tu_slurp(head_path, NULL);
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);

	free(text);
	json_object_del(o, "next");
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	write_file(head_path, text);
	free(text);
	json_decref(o);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_HEAD_BAD, 0));
	assert_null(audit_open(dir, NODE, key_path, &err));

	/* one beyond an old head */
	make_log("oldhead2", 6);
	line_hash(5, h);
	sign_head(key_path, 6, h, head, sizeof(head));
	write_file(head_path, head);
	forge_append("beyond");
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has_kind(&ps, AUDIT_HEAD_BAD));
}
/* Review findings 9 and F5: a log without its head is refused by the
 * node's writer whatever its size (a cut tail, or the whole log, plus a
 * deleted head would otherwise pass). */
static void
test_open_no_head(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct lines ls;
	struct audit *a;
	struct stat st;

	(void)state;
	make_log("nohead", 6);
	lines_read(&ls); /* cut the tail, then delete the head */
	free(ls.l[5]);
	free(ls.l[4]);
	ls.n = 4;
	lines_write(&ls);
	lines_free(&ls);
	assert_int_equal(unlink(head_path), 0);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "no head"));
	/* verify reports it as before */
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_NO_HEAD, 0));
	/* and the node.head was not silently re-created */
	assert_int_equal(stat(head_path, &st), -1);

	/* F5: cut to nothing and the head deleted */
	make_log("nohead-zero", 6);
	assert_int_equal(truncate(log_path, 0), 0);
	assert_int_equal(unlink(head_path), 0);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_non_null(strstr(err.detail, "no head"));
	assert_non_null(strstr(err.detail, "deleted"));
	assert_int_equal(stat(head_path, &st), -1);
	/* verify: a problem, not a warning */
	assert_int_equal(verify(&ps, &res), 1);
	dump(&ps);
	assert_true(has(&ps, AUDIT_NO_HEAD, 0));
	assert_int_equal(res.av_problems, 1);
	/* an empty log that never had a head (made by a keyless handle):
	 * the same to the writer */
	fresh("nohead-keyless");
	a = open_ok(NULL);
	audit_close(a);
	assert_int_equal(stat(log_path, &st), 0);
	assert_int_equal(stat(head_path, &st), -1);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	/* a chain-only check of it: "never written", a warning */
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(audit_verify_file(log_path, NULL, NULL, collect, &ps, &res, &err), 0);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_NO_HEAD);
	assert_int_equal(res.av_problems, 0);

	/* the log deleted under a head for seq > 0: a new empty log is
	 * created, and refused */
	make_log("nohead-log", 3);
	assert_int_equal(unlink(log_path), 0);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(verify(&ps, &res), 1);
	assert_true(has(&ps, AUDIT_TRUNCATED, 0));

	/* a crash between the genesis head and the log's creation: the next
	 * open creates the log */
	fresh("nohead-genesis-crash");
	char head[600];

	sign_head_next(key_path, 0, ZERO, "", head, sizeof(head));
	write_file(head_path, head);
	a = open_ok(key_path);
	append_n(a, 2, "x");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	standalone_check(2);
}

/* F5: a keyed open that creates the log writes the genesis head at once
 * (seq 0, 64 zeros, next ""), before the log exists. */
static void
test_genesis_head(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct audit *a;
	struct stat st;
	char tmp[700];

	(void)state;
	fresh("genesis");
	a = open_ok(key_path);
	assert_int_equal(stat(log_path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(stat(head_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	standalone_check(0); /* seq 0, zeros, next "", signed */
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	assert_true(res.av_head_ok);
	/* a second opener leaves it alone */
	struct audit *b = open_ok(key_path);

	audit_close(b);
	audit_close(a);
	standalone_check(0);

	/* the genesis head cannot be written: no log is created either, so
	 * that a retry starts clean */
	fresh("genesis-fail");
	snprintf(tmp, sizeof(tmp), "%s/%s.head.tmp", dir, NODE);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	assert_int_equal(stat(log_path, &st), -1);
	assert_int_equal(rmdir(tmp), 0);
	a = open_ok(key_path);
	append_n(a, 1, "x");
	audit_close(a);
	standalone_check(1);
}
/* The first entry's crash window: the genesis head committed to entry 1,
 * the entry is written, its head is not. */
static void
test_open_crash_first_entry(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;

	(void)state;
	fresh("crash-first");
	a = open_ok(key_path);
	audit_close(a);
	make_crash("first");
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_true(has_kind(&ps, AUDIT_HEAD_PENDING));
	a = open_ok(key_path); /* repaired: seq 2 */
	append_n(a, 1, "third");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	standalone_check(3);
}

/* Review finding 16: one entry beyond the head is accepted only when its
 * chain verifies from the entry the head signed (even when the head
 * committed to it). */
static void
test_open_behind_forged(void **state)
{
	struct store_err err = { 0 };
	struct lines ls;

	(void)state;
	/* the head's entry (seq 10) deleted, a well-formed seq 11 linked to
	 * the head's hash put after seq 9 */
	make_log("forge1", 10);
	make_crash("forged"); /* committed, even */
	lines_read(&ls);
	free(ls.l[9]);
	ls.l[9] = ls.l[10];
	ls.n = 10;
	lines_write(&ls);
	lines_free(&ls);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);

	/* the head's entry edited (its content no longer gives its hash),
	 * the entry after it intact */
	make_log("forge2", 10);
	make_crash("next");
	lines_read(&ls);
	strstr(ls.l[9], "entry 9")[0] = 'X';
	lines_write(&ls);
	lines_free(&ls);
	assert_null(audit_open(dir, NODE, key_path, &err));
	assert_int_equal(err.status, 900);
	/* an append through a handle opened before is refused too */
	make_log("forge3", 10);
	struct audit *keep = open_ok(key_path);

	make_crash("next");
	lines_read(&ls);
	strstr(ls.l[9], "entry 9")[0] = 'X';
	lines_write(&ls);
	lines_free(&ls);
	struct audit_event ev = { "ra", "ra", "x", "", "ok", "" };

	assert_int_equal(audit_append(keep, &ev, T0, NULL, &err), -1);
	assert_int_equal(err.status, 900);
	audit_close(keep);
}


/* Review finding 16: a head write that fails after the entry was written
 * reports the entry as recorded (the head had committed to it); the next
 * appends repair the head first (refusing, without writing, while that
 * fails), so that two failures in a row never wedge the log.  The second
 * head write of one append is made to fail by renameat() below. */
static int rename_fail_at; /* fail the n-th renameat from now; 0: never */

int
renameat(int ofd, const char *oldp, int nfd, const char *newp)
{
	if (rename_fail_at > 0 && --rename_fail_at == 0) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_renameat2, ofd, oldp, nfd, newp, 0);
}

static void
test_head_write_failures(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct store_err err = { 0 };
	struct audit *a;
	uint64_t seq = 0;
	char tmp[700];
	struct audit_event ev = { "ra", "ra", "user.create", "+358", "ok", "blocked head" };

	(void)state;
	make_log("headfail", 5);
	a = open_ok(key_path);
	/* the head after the entry fails: the entry is recorded */
	rename_fail_at = 2;
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), 0);
	assert_int_equal(rename_fail_at, 0);
	assert_int_equal(seq, 6);
	assert_int_equal(line_count(), 6);
	assert_int_equal(verify(&ps, &res), 0); /* the head is committed to it */
	assert_true(has_kind(&ps, AUDIT_HEAD_PENDING));
	/* every head write fails now (the temporary file cannot be made): the
	 * repair fails, nothing is appended, the log stays one beyond */
	snprintf(tmp, sizeof(tmp), "%s/%s.head.tmp", dir, NODE);
	assert_int_equal(mkdir(tmp, 0700), 0);
	seq = 0;
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(line_count(), 6);
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), -1);
	assert_int_equal(line_count(), 6);
	audit_close(a);
	/* a restart meanwhile: the log is still accepted (the repair at open
	 * fails and is logged) */
	a = open_ok(key_path);
	assert_int_equal(line_count(), 6);
	/* the head can be written again: repaired (seq 7), then appended */
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), 0);
	assert_int_equal(seq, 8);
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(ps.n, 0);
	assert_true(res.av_head_ok);
	standalone_check(8);

	/* the commitment for the first entry cannot be written: the entry
	 * is not written either */
	fresh("headfail-new");
	a = open_ok(key_path);
	snprintf(tmp, sizeof(tmp), "%s/%s.head.tmp", dir, NODE);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), -1);
	assert_int_equal(line_count(), 0);
	assert_int_equal(rmdir(tmp), 0);
	/* nor when only the commitment's rename fails */
	rename_fail_at = 1;
	assert_int_equal(audit_append(a, &ev, T0, &seq, &err), -1);
	assert_int_equal(line_count(), 0);
	append_n(a, 1, "x");
	audit_close(a);
	assert_int_equal(verify(&ps, &res), 0);
	standalone_check(1);
}
static void
test_no_key(void **state)
{
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	struct store_err err = { 0 };
	struct stat st;

	(void)state;
	fresh("nokey");
	a = open_ok(NULL);
	append_n(a, 4, "x");
	audit_close(a);
	assert_int_equal(stat(head_path, &st), -1);
	/* the chain alone is intact, but without a head that is a problem */
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(audit_verify_file(log_path, NULL, NULL, collect, &ps, &res, &err), 1);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.p[0].ap_kind, AUDIT_NO_HEAD);
	assert_int_equal(res.av_last_seq, 4);
	/* unreadable inputs are -1, not problems */
	assert_int_equal(audit_verify_file("/nonexistent/x.log", NULL, NULL, NULL, NULL, NULL, &err),
			 -1);
	assert_int_equal(err.status, 900);
	assert_int_equal(audit_verify_file(log_path, head_path, "/nonexistent.pub", NULL, NULL,
					   NULL, &err),
			 -1);
	/* a key file that is not a key */
	assert_null(audit_open(dir, NODE, log_path, &err));
	assert_int_equal(err.status, 900);
}

/* ---- content ---------------------------------------------------------------- */

struct got {
	size_t n;
	uint64_t seq[600];
	char *line[600];
};

static int
got_line(void *arg, uint64_t seq, const char *line, size_t len)
{
	struct got *g = arg;

	assert_int_equal(strlen(line), len);
	g->seq[g->n] = seq;
	g->line[g->n] = strdup(line);
	g->n++;
	return 0;
}

static void
got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->line[i]);
	g->n = 0;
}

static json_t *
read_entry(uint64_t seq)
{
	struct store_err err = { 0 };
	struct got g = { 0 };
	json_error_t je;
	json_t *o;

	assert_int_equal(audit_read(log_path, seq - 1, 1, got_line, &g, &err), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.seq[0], seq);
	o = json_loads(g.line[0], 0, &je);
	assert_non_null(o);
	got_free(&g);
	return o;
}

static void
test_detail_utf8_cut(void **state)
{
	struct store_err err = { 0 };
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	char *d = malloc(MSSP_AUDIT_MAX_DETAIL * 2 + 1);
	const char *s;
	size_t n = 0, sl;
	json_t *o;

	(void)state;
	fresh("utf8");
	a = open_ok(key_path);
	/* "x" then euro signs (3 bytes): the limit falls inside one */
	d[n++] = 'x';
	while (n + 3 <= (size_t)MSSP_AUDIT_MAX_DETAIL * 2) {
		memcpy(d + n, "\xe2\x82\xac", 3);
		n += 3;
	}
	d[n] = '\0';
	struct audit_event ev = { "ra", "ra", "user.update", "+358", "ok", d };

	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	o = read_entry(1);
	s = json_string_value(json_object_get(o, "detail"));
	sl = strlen(s);
	assert_true(sl <= MSSP_AUDIT_MAX_DETAIL);
	assert_true(sl > MSSP_AUDIT_MAX_DETAIL - 6);
	assert_string_equal(s + sl - 3, "...");
	assert_memory_equal(s, d, sl - 3);		       /* a prefix */
	assert_int_not_equal((unsigned char)d[sl - 3] & 0xc0, 0x80); /* cut at a lead byte */
	assert_int_equal((sl - 3 - 1) % 3, 0);
	json_decref(o);

	/* exactly the limit: kept whole */
	memset(d, 'y', MSSP_AUDIT_MAX_DETAIL);
	d[MSSP_AUDIT_MAX_DETAIL] = '\0';
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	o = read_entry(2);
	assert_string_equal(json_string_value(json_object_get(o, "detail")), d);
	json_decref(o);

	/* invalid UTF-8 in the detail is replaced, never refused */
	ev.ae_detail = "a\xc3(b\xff";
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	o = read_entry(3);
	assert_string_equal(json_string_value(json_object_get(o, "detail")), "a?(b?");
	json_decref(o);

	/* control characters escape six-fold: the line still fits, the
	 * detail is cut further */
	memset(d, 1, MSSP_AUDIT_MAX_DETAIL);
	d[MSSP_AUDIT_MAX_DETAIL] = '\0';
	ev.ae_detail = d;
	char target[MSSP_STORE_MAX_REC_NAME + 1];

	memset(target, '\x02', MSSP_STORE_MAX_REC_NAME);
	target[MSSP_STORE_MAX_REC_NAME] = '\0';
	ev.ae_target = target;
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	o = read_entry(4);
	assert_string_equal(json_string_value(json_object_get(o, "target")), target);
	s = json_string_value(json_object_get(o, "detail"));
	assert_true(strlen(s) < MSSP_AUDIT_MAX_DETAIL);
	assert_string_equal(s + strlen(s) - 3, "...");
	json_decref(o);
	audit_close(a);

	struct lines ls;

	lines_read(&ls);
	for (size_t i = 0; i < ls.n; i++)
		assert_true(strlen(ls.l[i]) <= MSSP_AUDIT_MAX_LINE);
	lines_free(&ls);
	assert_int_equal(verify(&ps, &res), 0);
	standalone_check(4);
	free(d);
}

static void
test_control_and_quotes(void **state)
{
	struct store_err err = { 0 };
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	json_t *o;
	/* tries to end the entry early and forge a hash member */
	const char *detail = "say \"hi\"\\ \r\n\t\x01\x1f\x7f end\"},\"hash\":\"00\"}\n{\"seq\":1}";
	const char *target = "+358\n\"quoted\" \xc3\xa4\xf0\x9f\x94\x91";

	(void)state;
	fresh("ctrl");
	a = open_ok(key_path);
	struct audit_event ev = { "ap:\"x\"\n", "ra", "user.create", target, "pending", detail };

	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	append_n(a, 2, "after");
	audit_close(a);

	struct lines ls;

	lines_read(&ls);
	assert_int_equal(ls.n, 3); /* still one line per entry */
	for (size_t i = 0; i < ls.n; i++) {
		/* pure ASCII, no raw control characters */
		for (const char *p = ls.l[i]; *p && *p != '\n'; p++)
			assert_true(*p >= 0x20 && (unsigned char)*p <= 0x7f);
	}
	lines_free(&ls);
	o = read_entry(1);
	assert_string_equal(json_string_value(json_object_get(o, "detail")), detail);
	assert_string_equal(json_string_value(json_object_get(o, "target")), target);
	assert_string_equal(json_string_value(json_object_get(o, "actor")), "ap:\"x\"\n");
	assert_string_equal(json_string_value(json_object_get(o, "outcome")), "pending");
	json_decref(o);
	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	standalone_check(3);
}

static void
test_read(void **state)
{
	struct store_err err = { 0 };
	struct audit *a;
	struct got g = { 0 };
	char detail[1001];

	(void)state;
	fresh("read");
	a = open_ok(NULL); /* fast: no heads */
	memset(detail, 'd', 1000);
	detail[1000] = '\0';
	for (int i = 0; i < 300; i++) {
		struct audit_event ev = { "ra", "ra", "x", "", "ok", detail };

		assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	}
	audit_close(a);
	assert_int_equal(audit_read(log_path, 0, 10, got_line, &g, &err), 0);
	assert_int_equal(g.n, 10);
	assert_int_equal(g.seq[0], 1);
	assert_int_equal(g.seq[9], 10);
	got_free(&g);
	/* far into a 300 KB log (the bisection) */
	assert_int_equal(audit_read(log_path, 250, 100, got_line, &g, &err), 0);
	assert_int_equal(g.n, 50);
	for (size_t i = 0; i < g.n; i++)
		assert_int_equal(g.seq[i], 251 + i);
	assert_non_null(strstr(g.line[0], "\"seq\":251"));
	got_free(&g);
	assert_int_equal(audit_read(log_path, 300, 100, got_line, &g, &err), 0);
	assert_int_equal(g.n, 0);
	/* at most MSSP_STORE_MAX_LIST */
	assert_int_equal(audit_read(log_path, 0, 100000, got_line, &g, &err), 0);
	assert_int_equal(g.n, 300 < MSSP_STORE_MAX_LIST ? 300 : MSSP_STORE_MAX_LIST);
	got_free(&g);
	assert_int_equal(audit_read("/nonexistent.log", 0, 1, got_line, &g, &err), -1);
	assert_int_equal(err.status, 900);
}

/* ---- concurrency ------------------------------------------------------------ */

#define PER 200

struct thr {
	struct audit *a; /* shared, or NULL: open its own */
	int id;
	int fails;
	uint64_t seqs[PER];
};

static void *
thr_run(void *arg)
{
	struct thr *t = arg;
	struct store_err err = { 0 };
	struct audit *a = t->a ? t->a : audit_open(dir, NODE, key_path, &err);
	char detail[32];

	if (a == NULL) {
		t->fails = PER;
		return NULL;
	}
	for (int i = 0; i < PER; i++) {
		struct audit_event ev = { "t", "system", "job.done", "", "ok", detail };

		snprintf(detail, sizeof(detail), "thread %d #%d", t->id, i);
		if (audit_append(a, &ev, T0 + i, &t->seqs[i], &err) != 0) {
			print_message("# thread %d: %s\n", t->id, err.detail);
			t->fails++;
		}
	}
	if (t->a == NULL)
		audit_close(a);
	return NULL;
}

static int
seq_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void
test_concurrent(void **state)
{
	enum { SHARED = 2, OWN = 1, NT = SHARED + OWN, PROCS = 2 };
	struct audit_verify_result res;
	struct probs ps;
	struct audit *a;
	struct thr t[NT];
	pthread_t th[NT];
	pid_t pid[PROCS];
	uint64_t all[NT * PER];

	(void)state;
	fresh("conc");
	a = open_ok(key_path);
	append_n(a, 1, "first"); /* a head exists before the race */

	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			/* a process of its own: a handle of its own */
			struct thr ct = { .a = NULL, .id = 100 + p };

			thr_run(&ct);
			_exit(ct.fails == 0 ? 0 : 1);
		}
	}
	memset(t, 0, sizeof(t));
	for (int i = 0; i < NT; i++) {
		t[i].a = i < SHARED ? a : NULL;
		t[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, thr_run, &t[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].fails, 0);
		memcpy(all + i * PER, t[i].seqs, sizeof(t[i].seqs));
	}
	/* a handle inherited over fork would share the parent's flock */
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		struct audit_event ev = { "t", "system", "x", "", "ok", "" };
		struct store_err e = { 0 };

		_exit(audit_append(a, &ev, T0, NULL, &e) == -1 && e.status == 900 ? 0 : 1);
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	int cst;

	assert_int_equal(waitpid(child, &cst, 0), child);
	assert_true(WIFEXITED(cst) && WEXITSTATUS(cst) == 0);
	audit_close(a);

	/* one contiguous, verified sequence */
	uint64_t total = 1 + (NT + PROCS) * PER;

	assert_int_equal(verify(&ps, &res), 0);
	dump(&ps);
	assert_int_equal(res.av_entries, total);
	assert_int_equal(res.av_last_seq, total);
	assert_true(res.av_head_ok);
	standalone_check(total);
	/* the seqs handed to this process's threads: distinct */
	qsort(all, NT * PER, sizeof(all[0]), seq_cmp);
	for (size_t i = 1; i < NT * PER; i++)
		assert_true(all[i] > all[i - 1]);
	assert_true(all[0] >= 2 && all[NT * PER - 1] <= total);
}

/* A holder that never lets go turns into 900 after MSSP_AUDIT_LOCK_MS, not
 * into a hang. */
static void
test_lock_timeout(void **state)
{
	struct store_err err = { 0 };
	struct timespec t0, t1;
	struct audit *a;
	int fd;

	(void)state;
	fresh("lock");
	a = open_ok(key_path);
	fd = open(log_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	struct audit_event ev = { "ra", "ra", "x", "", "ok", "" };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(err.status, 900);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;

	assert_true(ms >= MSSP_AUDIT_LOCK_MS - 50 && ms < MSSP_AUDIT_LOCK_MS + 2000);
	flock(fd, LOCK_UN);
	close(fd);
	assert_int_equal(audit_append(a, &ev, T0, NULL, &err), 0);
	audit_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_append_verify),
		cmocka_unit_test(test_bad_events),
		cmocka_unit_test(test_tamper_edit_byte),
		cmocka_unit_test(test_tamper_delete_line),
		cmocka_unit_test(test_tamper_swap_lines),
		cmocka_unit_test(test_tamper_truncate_tail),
		cmocka_unit_test(test_tamper_torn_line),
		cmocka_unit_test(test_tamper_torn_signed),
		cmocka_unit_test(test_tamper_forged_head),
		cmocka_unit_test(test_open_refuses_mismatch),
		cmocka_unit_test(test_open_crash_window),
		cmocka_unit_test(test_repair_by_append),
		cmocka_unit_test(test_forged_beyond_head),
		cmocka_unit_test(test_old_head_format),
		cmocka_unit_test(test_open_no_head),
		cmocka_unit_test(test_genesis_head),
		cmocka_unit_test(test_open_crash_first_entry),
		cmocka_unit_test(test_open_behind_forged),
		cmocka_unit_test(test_head_write_failures),
		cmocka_unit_test(test_no_key),
		cmocka_unit_test(test_detail_utf8_cut),
		cmocka_unit_test(test_control_and_quotes),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_lock_timeout),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
