/*
 * audit.c - the tamper-evident audit log (audit.h; docs/internals/me.md
 * "Audit log"; security.md P-05/P-06).
 *
 * The file is the only shared state: every append takes the exclusive
 * flock, reads the last line of the file to learn the previous seq and
 * hash, writes one line, fsyncs, and replaces the signed head.  No
 * process trusts what it remembers from an earlier append, because the
 * other processes of the node append to the same file in between.
 *
 * Hashing is over the exact bytes of the line (minus the hash member), so
 * any edited byte shows; the writer produces the canonical jansson form,
 * and the verifier also checks that form, so a standalone verifier that
 * re-serialises the JSON computes the same hash (P-07).
 *
 * The head commits to the next entry before it is written (review F2):
 * entry hashes are plain SHA-256, so anyone who can write the file can
 * append a well-chained entry; only the key can sign.  An append of entry
 * N+1 therefore (1) re-signs the head as (seq N, hash N, next = hash of
 * N+1), (2) writes and fsyncs N+1, (3) signs the head (N+1, hash N+1,
 * next "").  A crash between (2) and (3) leaves the log one entry beyond
 * its head, and that entry is accepted only when its hash is the signed
 * "next" (and it chains from the head's entry).  Then the head is
 * repaired under the exclusive lock - at audit_open with the key, or by
 * the next append - by appending an "audit.head_repaired" entry naming
 * the seq and hash adopted: its pre-head (1) is the repair, so the
 * repair itself is in the chain, not only in the process log.  Anything
 * else beyond the head (an old head without "next", another hash, two
 * entries) is tampering: 900.  Cost: two head writes per append (each a
 * signature, a write, two fsyncs) instead of one.
 *
 * Crash window (a), a torn last line, was never acknowledged: the next
 * append cuts it off.
 *
 * A keyed audit_open that creates the log first writes the genesis head
 * (seq 0, 64 zeros, next ""), then creates the file, under a flock of the
 * directory (review F5): so a node's log never exists without a head,
 * and a keyed handle refuses a missing head whatever the log's size - an
 * empty log without one is a log cut to nothing plus a deleted head.
 * (A crash between the two steps leaves a genesis head and no log: the
 * next open creates the log.)
 */
#include "store/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util/clock.h"
#include "util/hex.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/utf8.h"

#define HASH_LEN 32
#define HEX_LEN 64
#define JSON_CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
/* ,"hash":"<64 hex>"} ends every line */
#define HASH_PREFIX ",\"hash\":\""
#define HASH_SUFFIX_LEN (sizeof(HASH_PREFIX) - 1 + HEX_LEN + 2)
#define HEAD_CONTEXT_V1 "mssp-audit-head-v1" /* old heads, without "next" */
#define HEAD_CONTEXT "mssp-audit-head-v2"
#define SIG_MAX 160 /* DER ECDSA P-256 is at most 72 bytes */
#define READ_CHUNK 65536

struct audit {
	pthread_mutex_t mu;
	int dirfd;		/* the audit directory: head rename + fsync */
	int fd;			/* the log, O_APPEND */
	EVP_PKEY *key;		/* signs heads; NULL: no heads written      */
	pid_t pid;		/* the opener: a forked child shares the
				 * open file description, hence the flock,
				 * with its parent - it must open its own */
	char node[MSSP_AUDIT_MAX_NODE + 1];
	char log_name[MSSP_AUDIT_MAX_NODE + 8];
	char head_name[MSSP_AUDIT_MAX_NODE + 8];
	char tmp_name[MSSP_AUDIT_MAX_NODE + 16];
};

/* One parsed line. */
struct entry {
	uint64_t seq;
	unsigned char prev[HASH_LEN];
	unsigned char hash[HASH_LEN]; /* as stated in the line */
	bool hash_ok;		      /* SHA-256(prev || C) gives it */
	bool canonical;		      /* C is jansson's canonical dump */
	char node[MSSP_AUDIT_MAX_NODE + 1];
};

struct head {
	uint64_t seq;
	unsigned char hash[HASH_LEN];
	char hash_hex[HEX_LEN + 1];
	bool v2;		      /* has the "next" member (else: old head) */
	bool has_next;		      /* "next" is a hash, not ""               */
	unsigned char next[HASH_LEN];
	char next_hex[HEX_LEN + 1];   /* "" when !has_next                      */
	char node[MSSP_AUDIT_MAX_NODE + 1];
	unsigned char sig[SIG_MAX];
	size_t sig_len;
};

/* ---- small helpers ------------------------------------------------------ */

static bool
node_ok(const char *node)
{
	size_t n;

	if (node == NULL)
		return false;
	n = strlen(node);
	if (n == 0 || n > MSSP_AUDIT_MAX_NODE)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = node[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Exactly 2n lower-case hex digits: one spelling per hash. */
static bool
hash_decode(const char *s, size_t slen, unsigned char *out, size_t n)
{
	return hex_decode(s, slen, out, n, true) == 0;
}

static int
sha256_2(const unsigned char *a, size_t alen, const void *b, size_t blen, unsigned char *out)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int ol = 0;
	int ok;

	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, a, alen) == 1 && EVP_DigestUpdate(c, b, blen) == 1 &&
	     EVP_DigestFinal_ex(c, out, &ol) == 1 && ol == HASH_LEN;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

/* "Someone waits for the flock": a read lock on byte 0 of the log, an
 * open-file-description lock, independent of flock(2) and dropped by the
 * kernel when its holder dies. */
static void
waiter_mark(int fd, bool on)
{
	struct flock fl = { .l_type = on ? F_RDLCK : F_UNLCK, .l_whence = SEEK_SET, .l_len = 1 };

	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

static bool
others_wait(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };

	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* flock with a bounded wait (until `deadline`, mono_ms): a stuck holder
 * must turn into 900, never into a request that hangs (P-19).  Polling
 * alone is unfair: a writer that has just released takes the lock again
 * at once, while the others sleep between polls, and can starve them past
 * the deadline.  So a writer that finds others waiting does not barge in
 * first, it queues with them and polls. */
static int
lock_until(int fd, int op, int64_t deadline, struct store_err *err)
{
	bool first = true, marked = false;
	int rc = 0;

	for (;;) {
		if (!first || !others_wait(fd)) {
			if (flock(fd, op | LOCK_NB) == 0)
				break;
			if (errno != EWOULDBLOCK && errno != EINTR) {
				rc = store_err_set(err, 900, "audit log: lock failed: %s",
						   strerror(errno));
				break;
			}
		}
		first = false;
		if (!marked) {
			waiter_mark(fd, true);
			marked = true;
		}
		if (clock_mono_ms() >= deadline) {
			rc = store_err_set(err, 900, "audit log: lock not obtained in %d ms",
					   MSSP_AUDIT_LOCK_MS);
			break;
		}
		struct timespec ts = { 0, MSSP_AUDIT_LOCK_POLL_MS * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (marked)
		waiter_mark(fd, false);
	return rc;
}

static int
lock_wait(int fd, int op, struct store_err *err)
{
	return lock_until(fd, op, clock_mono_ms() + MSSP_AUDIT_LOCK_MS, err);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t
pread_all(int fd, char *p, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Never prompt for a pass phrase: the audit key is not encrypted. */
static int
no_pass(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return -1;
}

static bool
key_is_p256(EVP_PKEY *k)
{
	char grp[64];
	size_t gl = 0;

	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_group_name(k, grp, sizeof(grp), &gl) == 1 &&
	       strcmp(grp, "prime256v1") == 0;
}

static EVP_PKEY *
key_load(const char *path, bool priv, struct store_err *err)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;

	if (b == NULL) {
		store_err_set(err, 900, "audit key file cannot be read");
		return NULL;
	}
	k = priv ? PEM_read_bio_PrivateKey(b, NULL, no_pass, NULL)
		 : PEM_read_bio_PUBKEY(b, NULL, no_pass, NULL);
	BIO_free(b);
	if (k == NULL || !key_is_p256(k)) {
		EVP_PKEY_free(k);
		store_err_set(err, 900, "audit key file is not a P-256 %s key (PEM)",
			      priv ? "private" : "public");
		return NULL;
	}
	return k;
}

/* The bytes a head signature covers (audit.h): v2 when `next_hex` is not
 * NULL ("" for none), the old v1 form (no "next") when it is.  The context
 * strings differ, so a v2 signature never passes as a v1 one: "next"
 * cannot be stripped from a head. */
static size_t
head_tbs(const char *node, uint64_t seq, const char *hash_hex, const char *next_hex, char *out,
	 size_t cap)
{
	int n = next_hex == NULL
			? snprintf(out, cap, "%s%c%s%c%" PRIu64 "%c%s", HEAD_CONTEXT_V1, 0, node, 0,
				   seq, 0, hash_hex)
			: snprintf(out, cap, "%s%c%s%c%" PRIu64 "%c%s%c%s", HEAD_CONTEXT, 0, node, 0,
				   seq, 0, hash_hex, 0, next_hex);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---- entries -------------------------------------------------------------- */

static const char *const entry_keys[] = { "action", "actor",  "detail", "node", "outcome",
					  "prev",   "role",   "seq",    "target", "ts" };

/* Parse one line (no newline).  0 with *e filled when the line has the
 * entry's shape (then e->hash_ok / e->canonical say whether its content is
 * intact); -1 when it is not an entry at all. */
static int
entry_parse(const char *line, size_t len, struct entry *e)
{
	size_t plen = sizeof(HASH_PREFIX) - 1, clen;
	unsigned char calc[HASH_LEN];
	json_error_t jerr;
	json_t *o = NULL, *v;
	char *c = NULL, *dump = NULL;
	const char *s;
	int rc = -1;

	memset(e, 0, sizeof(*e));
	if (len <= HASH_SUFFIX_LEN + 2 || line[0] != '{' || line[len - 1] != '}' ||
	    line[len - 2] != '"' || memcmp(line + len - HASH_SUFFIX_LEN, HASH_PREFIX, plen) != 0 ||
	    !hash_decode(line + len - HASH_SUFFIX_LEN + plen, HEX_LEN, e->hash, HASH_LEN))
		return -1;
	/* C = the line without ,"hash":"..." */
	clen = len - HASH_SUFFIX_LEN + 1;
	c = malloc(clen + 1);
	if (c == NULL)
		return -1;
	memcpy(c, line, clen - 1);
	c[clen - 1] = '}';
	c[clen] = '\0';
	o = json_loadb(c, clen, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o) || json_object_size(o) != 10)
		goto out;
	for (size_t i = 0; i < sizeof(entry_keys) / sizeof(entry_keys[0]); i++) {
		v = json_object_get(o, entry_keys[i]);
		if (v == NULL || (strcmp(entry_keys[i], "seq") == 0 ? !json_is_integer(v)
								     : !json_is_string(v)))
			goto out;
	}
	if (json_integer_value(json_object_get(o, "seq")) < 1)
		goto out;
	e->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	v = json_object_get(o, "prev");
	if (!hash_decode(json_string_value(v), json_string_length(v), e->prev, HASH_LEN))
		goto out;
	s = json_string_value(json_object_get(o, "node"));
	if (!node_ok(s))
		goto out;
	memcpy(e->node, s, strlen(s) + 1);
	if (sha256_2(e->prev, HASH_LEN, c, clen, calc) != 0)
		goto out;
	e->hash_ok = CRYPTO_memcmp(calc, e->hash, HASH_LEN) == 0;
	dump = json_dumps(o, JSON_CANON);
	e->canonical = dump != NULL && strlen(dump) == clen && memcmp(dump, c, clen) == 0;
	rc = 0;
out:
	free(dump);
	json_decref(o);
	free(c);
	return rc;
}

/* The length of the valid UTF-8 character at p (n bytes available), or
 * 0: the lead byte says how long it would be, util/utf8 whether it is. */
static size_t
utf8_char(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;

	return len <= n && utf8_valid((const char *)p, len) ? len : 0;
}

static bool
utf8_ok(const char *s)
{
	return utf8_valid(s, strlen(s));
}

/* The detail as stored: invalid UTF-8 bytes become '?' (the detail is
 * never refused: an operation must not fail because its explanation
 * carried odd bytes), then cut at a character boundary to at most `max`
 * bytes, marked with "...".  Heap string. */
static char *
detail_prepare(const char *d, size_t max)
{
	const unsigned char *p = (const unsigned char *)(d ? d : "");
	size_t n = strlen((const char *)p), o = 0, l, cut;
	char *out = malloc(n + 4);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += l) {
		l = utf8_char(p + i, n - i);
		if (l == 0) {
			out[o++] = '?';
			l = 1;
		} else {
			memcpy(out + o, p + i, l);
			o += l;
		}
	}
	out[o] = '\0';
	if (o <= max)
		return out;
	cut = max >= 3 ? max - 3 : 0;
	while (cut > 0 && ((unsigned char)out[cut] & 0xc0) == 0x80)
		cut--; /* back to the start of the character being cut */
	memcpy(out + cut, "...", 4);
	return out;
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static bool
outcome_ok(const char *s)
{
	return strcmp(s, "ok") == 0 || strcmp(s, "refused") == 0 || strcmp(s, "failed") == 0 ||
	       strcmp(s, "pending") == 0;
}

static int
event_check(const struct audit_event *ev, struct store_err *err)
{
	const char *names[] = { nz(ev->ae_actor), nz(ev->ae_role), nz(ev->ae_action) };

	for (size_t i = 0; i < 3; i++)
		if (strlen(names[i]) > MSSP_AUDIT_MAX_NAME || !utf8_ok(names[i]))
			return store_err_set(err, 101, "audit event: actor, role or action invalid");
	if (strlen(nz(ev->ae_target)) > MSSP_STORE_MAX_REC_NAME || !utf8_ok(nz(ev->ae_target)))
		return store_err_set(err, 101, "audit event: target invalid");
	if (!outcome_ok(nz(ev->ae_outcome)))
		return store_err_set(err, 101, "audit event: unknown outcome");
	return 0;
}

static int
ts_format(int64_t now_ms, char *out, size_t cap)
{
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	char day[32];

	if (now_ms < 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	snprintf(out, cap, "%s.%03dZ", day, (int)(now_ms % 1000));
	return 0;
}

/* The full line (with hash and newline) of one entry: heap, *len set.
 * The detail is cut further when the escaped line would exceed
 * MSSP_AUDIT_MAX_LINE (escaping can grow a byte six-fold). */
static char *
entry_build(const char *node, uint64_t seq, const unsigned char prev[HASH_LEN],
	    const struct audit_event *ev, const char *ts, size_t *len, struct store_err *err)
{
	size_t budget = MSSP_AUDIT_MAX_DETAIL;
	char prev_hex[HEX_LEN + 1], hash_hex[HEX_LEN + 1];
	unsigned char hash[HASH_LEN];

	hex_encode(prev, HASH_LEN, prev_hex);
	for (int round = 0; round < 8; round++) {
		char *detail = detail_prepare(ev->ae_detail, budget), *c = NULL, *line;
		json_t *o = json_object();
		size_t clen, total;

		if (detail == NULL || o == NULL ||
		    json_object_set_new(o, "action", json_string(nz(ev->ae_action))) ||
		    json_object_set_new(o, "actor", json_string(nz(ev->ae_actor))) ||
		    json_object_set_new(o, "detail", json_string(detail)) ||
		    json_object_set_new(o, "node", json_string(node)) ||
		    json_object_set_new(o, "outcome", json_string(nz(ev->ae_outcome))) ||
		    json_object_set_new(o, "prev", json_string(prev_hex)) ||
		    json_object_set_new(o, "role", json_string(nz(ev->ae_role))) ||
		    json_object_set_new(o, "seq", json_integer((json_int_t)seq)) ||
		    json_object_set_new(o, "target", json_string(nz(ev->ae_target))) ||
		    json_object_set_new(o, "ts", json_string(ts)) ||
		    (c = json_dumps(o, JSON_CANON)) == NULL) {
			free(detail);
			json_decref(o);
			store_err_set(err, 900, "audit entry: out of memory");
			return NULL;
		}
		json_decref(o);
		clen = strlen(c);
		total = clen - 1 + HASH_SUFFIX_LEN + 1;
		if (total > MSSP_AUDIT_MAX_LINE) {
			size_t dl = strlen(detail);

			free(detail);
			free(c);
			if (dl == 0)
				break;
			/* each byte cut shortens the escaped line by at least one */
			budget = dl > total - MSSP_AUDIT_MAX_LINE + 3 ? dl - (total - MSSP_AUDIT_MAX_LINE) - 3
								   : 0;
			continue;
		}
		free(detail);
		if (sha256_2(prev, HASH_LEN, c, clen, hash) != 0 || (line = malloc(total + 1)) == NULL) {
			free(c);
			store_err_set(err, 900, "audit entry: hashing failed");
			return NULL;
		}
		hex_encode(hash, HASH_LEN, hash_hex);
		memcpy(line, c, clen - 1);
		snprintf(line + clen - 1, total + 1 - (clen - 1), "%s%s\"}\n", HASH_PREFIX, hash_hex);
		free(c);
		*len = total;
		return line;
	}
	store_err_set(err, 101, "audit event: fields too long for one entry");
	return NULL;
}

/* ---- the tail of the log --------------------------------------------------- */

struct tail {
	bool empty;	    /* no complete line                         */
	off_t end;	    /* offset just after the last complete line */
	bool torn;	    /* bytes after `end` (an interrupted append) */
	struct entry last;  /* the last complete line, when !empty      */
	bool first;	    /* `last` is the file's first line          */
	bool has_before;    /* `before` holds the line before `last`,
			     * an entry of the right shape              */
	struct entry before;
};

/* Read the last two complete lines by seeking from the end: the cost of
 * an append does not grow with the log.  -1 900 when the last line is not
 * an intact entry (damaged or edited tail); the one before is only parsed
 * (the head check looks at it). */
static int
tail_read(int fd, struct tail *t, struct store_err *err)
{
	/* two lines of at most MSSP_AUDIT_MAX_LINE each, and the newline
	 * that ends the line before them */
	size_t cap = 2 * (size_t)MSSP_AUDIT_MAX_LINE + 1, n;
	struct stat st;
	off_t off;
	char *buf;
	ssize_t r;
	size_t nl, start;

	memset(t, 0, sizeof(*t));
	t->empty = true;
	if (fstat(fd, &st) != 0)
		return store_err_set(err, 900, "audit log: stat failed: %s", strerror(errno));
	if (st.st_size == 0)
		return 0;
	n = (size_t)st.st_size < cap ? (size_t)st.st_size : cap;
	off = st.st_size - (off_t)n;
	buf = malloc(n);
	if (buf == NULL)
		return store_err_set(err, 900, "audit log: out of memory");
	r = pread_all(fd, buf, n, off);
	if (r != (ssize_t)n) {
		free(buf);
		return store_err_set(err, 900, "audit log: read failed");
	}
	/* the last newline ends the last complete line */
	for (nl = n; nl > 0 && buf[nl - 1] != '\n'; nl--)
		;
	if (nl == 0) {
		free(buf);
		if (off == 0) { /* only a torn line: nothing complete */
			t->torn = true;
			return 0;
		}
		return store_err_set(err, 900, "audit log: damaged tail (no line end)");
	}
	t->end = off + (off_t)nl;
	t->torn = t->end != st.st_size;
	for (start = nl - 1; start > 0 && buf[start - 1] != '\n'; start--)
		;
	if (start == 0 && off != 0) {
		free(buf);
		return store_err_set(err, 900, "audit log: damaged tail (line too long)");
	}
	if (entry_parse(buf + start, nl - 1 - start, &t->last) != 0 || !t->last.hash_ok) {
		free(buf);
		return store_err_set(err, 900, "audit log: its last entry is damaged or edited");
	}
	t->first = start == 0 && off == 0;
	if (start > 0) {
		size_t bstart;

		for (bstart = start - 1; bstart > 0 && buf[bstart - 1] != '\n'; bstart--)
			;
		if ((bstart > 0 || off == 0) &&
		    entry_parse(buf + bstart, start - 1 - bstart, &t->before) == 0)
			t->has_before = true;
	}
	free(buf);
	t->empty = false;
	return 0;
}

/* ---- the head ---------------------------------------------------------------- */

/* Parse head text.  0, or -1 (malformed). */
static int
head_parse(const char *text, size_t len, struct head *h)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	const char *s;
	unsigned char sig[SIG_MAX + 3];
	size_t sl;
	int dl, rc = -1;

	memset(h, 0, sizeof(*h));
	if (o == NULL || !json_is_object(o) ||
	    (json_object_size(o) != 4 && json_object_size(o) != 5))
		goto out;
	/* 5 members: the v2 head, "next" = "" or a hash; 4: an old one */
	if (json_object_size(o) == 5) {
		v = json_object_get(o, "next");
		if (!json_is_string(v))
			goto out;
		h->v2 = true;
		if (json_string_length(v) > 0) {
			if (!hash_decode(json_string_value(v), json_string_length(v), h->next,
					 HASH_LEN))
				goto out;
			memcpy(h->next_hex, json_string_value(v), HEX_LEN + 1);
			h->has_next = true;
		}
	}
	v = json_object_get(o, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto out;
	h->seq = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "hash");
	if (!json_is_string(v) ||
	    !hash_decode(json_string_value(v), json_string_length(v), h->hash, HASH_LEN))
		goto out;
	memcpy(h->hash_hex, json_string_value(v), HEX_LEN + 1);
	s = json_string_value(json_object_get(o, "node"));
	if (s == NULL || !node_ok(s))
		goto out;
	memcpy(h->node, s, strlen(s) + 1);
	v = json_object_get(o, "sig");
	if (!json_is_string(v))
		goto out;
	sl = json_string_length(v);
	if (sl == 0 || sl % 4 != 0 || sl / 4 * 3 > sizeof(sig))
		goto out;
	dl = EVP_DecodeBlock(sig, (const unsigned char *)json_string_value(v), (int)sl);
	if (dl < 0)
		goto out;
	/* EVP_DecodeBlock counts the '=' padding as zero bytes */
	s = json_string_value(v);
	dl -= (s[sl - 1] == '=') + (s[sl - 2] == '=');
	if (dl <= 0 || (size_t)dl > SIG_MAX)
		goto out;
	memcpy(h->sig, sig, (size_t)dl);
	h->sig_len = (size_t)dl;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* 1 when the head's signature verifies under `key`. */
static bool
head_sig_ok(const struct head *h, EVP_PKEY *key)
{
	char tbs[320];
	size_t n = head_tbs(h->node, h->seq, h->hash_hex, h->v2 ? h->next_hex : NULL, tbs,
			    sizeof(tbs));
	EVP_MD_CTX *c;
	bool ok;

	if (n == 0 || (c = EVP_MD_CTX_new()) == NULL)
		return false;
	ok = EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(c, h->sig, h->sig_len, (const unsigned char *)tbs, n) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* Read a head file through `dirfd` (AT_FDCWD for a path).  1 read, 0 no
 * such file, -1 unreadable/malformed (*why set). */
static int
head_load(int dirfd, const char *name, struct head *h, const char **why)
{
	char buf[MSSP_AUDIT_MAX_HEAD + 1];
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0) {
		*why = "head file cannot be opened";
		return errno == ENOENT ? 0 : -1;
	}
	n = pread_all(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0 || (size_t)n > MSSP_AUDIT_MAX_HEAD) {
		*why = "head file unreadable or too large";
		return -1;
	}
	if (head_parse(buf, (size_t)n, h) != 0) {
		*why = "head file is not a head";
		return -1;
	}
	return 1;
}

enum head_state {
	HEAD_AGREES = 0,  /* names the last entry (or seq 0 over an empty log) */
	HEAD_BEHIND,	  /* crash window: the last entry is the one the head
			   * committed to ("next") and chains from it        */
	HEAD_NONE,	  /* no head file (keyless handles only)              */
};

/* Does the log's tail agree with the head?  A head_state, or -1 900. */
static int
head_agrees(struct audit *a, const struct tail *t, struct store_err *err)
{
	static const unsigned char zero[HASH_LEN];
	const char *why = "";
	struct head h;
	int r = head_load(a->dirfd, a->head_name, &h, &why);

	if (r == 0) {
		/* A handle with the key is the node's writer: its log got a
		 * head when it was created, so a log without one lost it -
		 * maybe with the tail it covered, maybe with all of it (an
		 * empty log).  A keyless handle (a verifier, tests) writes
		 * none itself. */
		if (a->key != NULL)
			return store_err_set(err, 900,
					     "audit log %s but no head file %s: the head is "
					     "written when the log is created, so it was deleted "
					     "(a cut tail would not show); restore the head "
					     "(msspctl audit verify reports the log)",
					     t->empty ? "exists" : "has entries", a->head_name);
		return HEAD_NONE;
	}
	if (r < 0)
		return store_err_set(err, 900, "audit log does not match its head: %s", why);
	if (strcmp(h.node, a->node) != 0 || (a->key != NULL && !head_sig_ok(&h, a->key)))
		return store_err_set(err, 900, "audit log does not match its head: bad head");
	if (t->empty) {
		if (h.seq == 0)
			return HEAD_AGREES;
		return store_err_set(err, 900, "audit log does not match its head: log is empty");
	}
	if (t->last.seq == h.seq && memcmp(t->last.hash, h.hash, HASH_LEN) == 0)
		return HEAD_AGREES;
	/* one beyond: only the entry the head committed to (its hash is the
	 * signed "next"; tail_read checked that its content gives it), and
	 * only when it chains from the entry the head signed */
	if (t->last.seq == h.seq + 1 && memcmp(t->last.prev, h.hash, HASH_LEN) == 0) {
		bool from_genesis = h.seq == 0 && t->first && memcmp(h.hash, zero, HASH_LEN) == 0;
		bool from_entry = t->has_before && t->before.seq == h.seq && t->before.hash_ok &&
				  memcmp(t->before.hash, h.hash, HASH_LEN) == 0;
		bool committed = h.has_next && memcmp(t->last.hash, h.next, HASH_LEN) == 0;

		if ((from_genesis || from_entry) && committed)
			return HEAD_BEHIND;
		if (from_genesis || from_entry)
			return store_err_set(err, 900,
					     "audit log: entry seq %" PRIu64 " beyond the signed head "
					     "is not the one the head committed to: forged, or "
					     "appended without the audit key",
					     t->last.seq);
	}
	return store_err_set(err, 900, "audit log does not match its head (head seq %" PRIu64
				       ", last entry seq %" PRIu64 ")",
			     h.seq, t->last.seq);
}

/* Sign and replace the head: (seq, hash), committing to `next` (NULL:
 * none).  Durable when it returns 0: a head committing to an entry must
 * be on disk before that entry is (else a crash could leave the entry
 * beyond an older head that committed to nothing: refused as forged). */
static int
head_write(struct audit *a, uint64_t seq, const unsigned char hash[HASH_LEN],
	   const unsigned char *next, struct store_err *err)
{
	char hex[HEX_LEN + 1], nhex[HEX_LEN + 1] = "", tbs[320], b64[SIG_MAX * 2];
	unsigned char sig[SIG_MAX];
	size_t sl = sizeof(sig), n;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	json_t *o = NULL;
	char *text = NULL;
	int fd = -1, rc = -1;

	hex_encode(hash, HASH_LEN, hex);
	if (next != NULL)
		hex_encode(next, HASH_LEN, nhex);
	n = head_tbs(a->node, seq, hex, nhex, tbs, sizeof(tbs));
	if (c == NULL || n == 0 || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, a->key) != 1 ||
	    EVP_DigestSign(c, sig, &sl, (const unsigned char *)tbs, n) != 1) {
		store_err_set(err, 900, "audit head: signing failed");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sl);
	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "hash", hex, "next", nhex, "node", a->node,
		      "seq", (json_int_t)seq, "sig", b64);
	text = o ? json_dumps(o, JSON_CANON) : NULL;
	if (text == NULL) {
		store_err_set(err, 900, "audit head: out of memory");
		goto out;
	}
	fd = openat(a->dirfd, a->tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0 || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 ||
	    fsync(fd) != 0) {
		store_err_set(err, 900, "audit head: write failed: %s", strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (renameat(a->dirfd, a->tmp_name, a->dirfd, a->head_name) != 0) {
		store_err_set(err, 900, "audit head: rename failed: %s", strerror(errno));
		(void)unlinkat(a->dirfd, a->tmp_name, 0); /* no stale copy left */
		goto out;
	}
	if (fsync(a->dirfd) != 0) {
		store_err_set(err, 900, "audit head: directory sync failed: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	json_decref(o);
	EVP_MD_CTX_free(c);
	return rc;
}

/* ---- open / append ----------------------------------------------------------- */

static int
names_fill(char *out, size_t cap, const char *node, const char *suffix)
{
	int n = snprintf(out, cap, "%s%s", node, suffix);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Create the log, under a flock of the directory (creators only: other
 * openers find the file).  With the key, the genesis head (seq 0, hash
 * zero, next "") is written BEFORE the file is created, so that a log of
 * the node never exists without a head (F5); an existing head is left for
 * head_agrees to judge (one for seq > 0 over a new, empty log is refused).
 * The fd, or -1 with err. */
static int
log_create(struct audit *a, struct store_err *err)
{
	static const unsigned char zero[HASH_LEN];
	int fd;

	if (lock_wait(a->dirfd, LOCK_EX, err) != 0)
		return -1;
	/* another creator may have been first */
	fd = openat(a->dirfd, a->log_name, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		struct head h;
		const char *why = "";

		if (a->key != NULL && head_load(a->dirfd, a->head_name, &h, &why) == 0 &&
		    head_write(a, 0, zero, NULL, err) != 0) {
			flock(a->dirfd, LOCK_UN);
			return -1;
		}
		fd = openat(a->dirfd, a->log_name,
			    O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 && fsync(a->dirfd) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		store_err_set(err, 900, "audit: cannot create the log: %s", strerror(errno));
	flock(a->dirfd, LOCK_UN);
	return fd;
}

/* Write one entry after (*cur_seq, cur_hash), the last entry of the log,
 * under the exclusive lock.  With the key the head is first re-signed for
 * that last entry, committing to the new entry's hash: only an entry the
 * head committed to may stand beyond it (F2).  The head is not moved on
 * to the new entry here: the caller does that (or the next entry's
 * commitment does).  0 with *cur_seq / cur_hash advanced, or -1 with
 * nothing written to the log. */
static int
put_entry(struct audit *a, uint64_t *cur_seq, unsigned char cur_hash[HASH_LEN],
	  const struct audit_event *ev, const char *ts, struct store_err *err)
{
	struct entry check;
	struct stat st;
	size_t len;
	char *line;

	if (fstat(a->fd, &st) != 0)
		return store_err_set(err, 900, "audit log: stat failed: %s", strerror(errno));
	line = entry_build(a->node, *cur_seq + 1, cur_hash, ev, ts, &len, err);
	if (line == NULL)
		return -1;
	if (entry_parse(line, len - 1, &check) != 0 || !check.hash_ok || !check.canonical) {
		free(line);
		return store_err_set(err, 900, "audit entry: built line does not verify");
	}
	/* a head that cannot be written: nothing goes into the log */
	if (a->key != NULL && head_write(a, *cur_seq, cur_hash, check.hash, err) != 0) {
		free(line);
		return -1;
	}
	if (write_all(a->fd, line, len) != 0 || fsync(a->fd) != 0) {
		int e = errno;

		free(line);
		/* leave no partial line behind for the next writer (the head
		 * names the entry before: it agrees) */
		if (ftruncate(a->fd, st.st_size) == 0)
			(void)fsync(a->fd);
		return store_err_set(err, 900, "audit log: write failed: %s", strerror(e));
	}
	free(line);
	*cur_seq = check.seq;
	memcpy(cur_hash, check.hash, HASH_LEN);
	return 0;
}

/* Crash-window repair, under the exclusive lock, with the key: the last
 * entry (*cur_seq, cur_hash) is the one the head committed to, the head
 * still names the one before.  An "audit.head_repaired" entry naming the
 * seq and hash adopted is appended; its commitment moves the head to the
 * adopted entry, so the repair is in the chain itself.  The head is left
 * committing to that entry (the caller moves it on).  0, or -1 (err). */
static int
head_repair(struct audit *a, uint64_t *cur_seq, unsigned char cur_hash[HASH_LEN], const char *ts,
	    struct store_err *err)
{
	char s[24], hex[HEX_LEN + 1], detail[256];
	struct audit_event ev = { "system", "system", "audit.head_repaired", s, "ok", detail };
	uint64_t adopted = *cur_seq;

	snprintf(s, sizeof(s), "%" PRIu64, adopted);
	hex_encode(cur_hash, HASH_LEN, hex);
	snprintf(detail, sizeof(detail),
		 "head moved to seq %s hash %s: the entry the signed head had committed to "
		 "was written but the head not moved on (crash or failed head write)",
		 s, hex);
	if (put_entry(a, cur_seq, cur_hash, &ev, ts, err) != 0) {
		/* the head may have moved already (its commitment to this
		 * entry was written): the process log keeps the trace */
		LOG_EV("audit.head_repair_failed", "log", a->log_name, "seq", s, "hash", hex,
		       "detail", err ? err->detail : "");
		return -1;
	}
	LOG_EV("audit.head_repaired", "log", a->log_name, "seq", s, "hash", hex, "detail",
	       "crash-window repair: the head re-signed for an entry it had committed to "
	       "(audit entry audit.head_repaired written)");
	return 0;
}

/* Sign the head for the entry just written.  A failure is logged, not
 * returned: the entry IS recorded (fsync'd, chained, committed by the
 * head): telling the caller "not recorded" would be false, and a retry
 * would record the event twice.  The log is then one beyond its head
 * (the crash window); the next append or keyed open repairs it. */
static void
head_finish(struct audit *a, uint64_t seq, const unsigned char hash[HASH_LEN])
{
	struct store_err e = { 0 };
	char s[24];

	if (a->key == NULL || head_write(a, seq, hash, NULL, &e) == 0)
		return;
	snprintf(s, sizeof(s), "%" PRIu64, seq);
	LOG_EV("audit.head_write_failed", "log", a->log_name, "seq", s, "detail", e.detail);
}

static int
tail_cut(struct audit *a, const struct tail *t, struct store_err *err)
{
	/* crash window (a): never acknowledged, cut it off */
	if (t->torn && (ftruncate(a->fd, t->end) != 0 || fsync(a->fd) != 0))
		return store_err_set(err, 900, "audit log: cannot cut a torn line: %s",
				     strerror(errno));
	return 0;
}

struct audit *
audit_open(const char *dir, const char *node, const char *key_pem_path, struct store_err *err)
{
	struct audit *a;
	struct tail t;
	int fd, hs = HEAD_AGREES;

	if (dir == NULL || !node_ok(node)) {
		store_err_set(err, 101, "audit: bad directory or node id");
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		store_err_set(err, 900, "audit: out of memory");
		return NULL;
	}
	a->dirfd = a->fd = -1;
	a->pid = getpid();
	memcpy(a->node, node, strlen(node) + 1);
	if (names_fill(a->log_name, sizeof(a->log_name), node, ".log") != 0 ||
	    names_fill(a->head_name, sizeof(a->head_name), node, ".head") != 0 ||
	    names_fill(a->tmp_name, sizeof(a->tmp_name), node, ".head.tmp") != 0 ||
	    pthread_mutex_init(&a->mu, NULL) != 0) {
		free(a);
		store_err_set(err, 900, "audit: cannot initialise");
		return NULL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		store_err_set(err, 900, "audit: cannot create the directory: %s", strerror(errno));
		goto fail;
	}
	a->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0) {
		store_err_set(err, 900, "audit: cannot open the directory: %s", strerror(errno));
		goto fail;
	}
	if (key_pem_path != NULL && (a->key = key_load(key_pem_path, true, err)) == NULL)
		goto fail;
	fd = openat(a->dirfd, a->log_name, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if ((fd = log_create(a, err)) < 0)
			goto fail;
	} else if (fd < 0) {
		store_err_set(err, 900, "audit: cannot open the log: %s", strerror(errno));
		goto fail;
	}
	a->fd = fd;
	/* the writer takes the lock exclusively: it may repair the head;
	 * a keyless handle only looks (appenders hold it exclusively while
	 * log and head disagree) */
	if (lock_wait(a->fd, a->key != NULL ? LOCK_EX : LOCK_SH, err) != 0)
		goto fail;
	if (tail_read(a->fd, &t, err) != 0 || (hs = head_agrees(a, &t, err)) < 0) {
		flock(a->fd, LOCK_UN);
		goto fail;
	}
	if (hs == HEAD_BEHIND && a->key != NULL) {
		/* repaired at once, not at the first append: verify should
		 * not find the node in that state while it runs.  A repair
		 * that fails is logged; the log stays acceptable, and the
		 * next append retries (and refuses while it cannot). */
		uint64_t cur = t.last.seq;
		unsigned char h[HASH_LEN];
		struct store_err e = { 0 };
		char ts[48];

		memcpy(h, t.last.hash, HASH_LEN);
		if (tail_cut(a, &t, &e) == 0 && ts_format(clock_wall_ms(), ts, sizeof(ts)) == 0 &&
		    head_repair(a, &cur, h, ts, &e) == 0)
			head_finish(a, cur, h);
	} else if (hs == HEAD_BEHIND) {
		char seq[24];

		snprintf(seq, sizeof(seq), "%" PRIu64, t.last.seq);
		LOG_EV("audit.head_behind", "log", a->log_name, "last_seq", seq, "detail",
		       "the last entry was written but its head was not moved on (crash or failed "
		       "head write); the head committed to it; the node's writer repairs it");
	}
	flock(a->fd, LOCK_UN);
	return a;
fail:
	audit_close(a);
	return NULL;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	EVP_PKEY_free(a->key);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* Under the exclusive lock. */
static int
append_locked(struct audit *a, const struct audit_event *ev, const char *ts, uint64_t *seq_out,
	      struct store_err *err)
{
	static const unsigned char zero[HASH_LEN];
	unsigned char hash[HASH_LEN];
	struct tail t;
	uint64_t seq;
	int hs = HEAD_AGREES;

	if (tail_read(a->fd, &t, err) != 0)
		return -1;
	/* a handle without a key writes no heads: it cannot expect one */
	if (a->key != NULL && (hs = head_agrees(a, &t, err)) < 0)
		return -1;
	if (tail_cut(a, &t, err) != 0)
		return -1;
	seq = t.empty ? 0 : t.last.seq;
	memcpy(hash, t.empty ? zero : t.last.hash, HASH_LEN);
	/* the crash window repaired BEFORE this entry: the log is never
	 * two beyond its head */
	if (hs == HEAD_BEHIND && head_repair(a, &seq, hash, ts, err) != 0)
		return -1;
	if (put_entry(a, &seq, hash, ev, ts, err) != 0)
		return -1;
	head_finish(a, seq, hash);
	if (seq_out)
		*seq_out = seq;
	return 0;
}

int
audit_append(struct audit *a, const struct audit_event *ev, int64_t now_ms, uint64_t *seq_out,
	     struct store_err *err)
{
	struct timespec dl;
	int64_t deadline;
	char ts[48];
	int rc;

	if (a == NULL || ev == NULL)
		return store_err_set(err, 101, "audit: no handle or event");
	if (a->pid != getpid())
		return store_err_set(err, 900, "audit: handle used after fork (open a new one)");
	if (event_check(ev, err) != 0)
		return -1;
	if (ts_format(now_ms, ts, sizeof(ts)) != 0)
		return store_err_set(err, 101, "audit event: bad time");
	/* one deadline for the mutex and the flock: the threads queued
	 * behind a stuck holder give up with it, not one after another */
	deadline = clock_mono_ms() + MSSP_AUDIT_LOCK_MS;
	dl.tv_sec = (time_t)(deadline / 1000);
	dl.tv_nsec = (long)(deadline % 1000) * 1000000L;
	if (pthread_mutex_clocklock(&a->mu, CLOCK_MONOTONIC, &dl) != 0)
		return store_err_set(err, 900, "audit log: lock not obtained in %d ms",
				     MSSP_AUDIT_LOCK_MS);
	rc = lock_until(a->fd, LOCK_EX, deadline, err);
	if (rc == 0) {
		rc = append_locked(a, ev, ts, seq_out, err);
		flock(a->fd, LOCK_UN);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- key generation ------------------------------------------------------------ */

static int
file_create(int dirfd, const char *name, mode_t mode, BIO *b, struct store_err *err)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return store_err_set(err, 900, "audit key: cannot create %s: %s", name,
				     strerror(errno));
	if (n <= 0 || write_all(fd, data, (size_t)n) != 0 || fsync(fd) != 0) {
		close(fd);
		unlinkat(dirfd, name, 0);
		return store_err_set(err, 900, "audit key: cannot write %s", name);
	}
	close(fd);
	return 0;
}

int
audit_keygen(const char *dir, struct store_err *err)
{
	EVP_PKEY *k = NULL;
	BIO *priv = NULL, *pub = NULL;
	struct stat st;
	int dirfd = -1, rc = -1;

	if (dir == NULL)
		return store_err_set(err, 101, "audit key: no directory");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return store_err_set(err, 900, "audit key: cannot create the directory: %s",
				     strerror(errno));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return store_err_set(err, 900, "audit key: cannot open the directory");
	if (fstatat(dirfd, "audit.key", &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    fstatat(dirfd, "audit.pub", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		store_err_set(err, 900, "audit key: a key already exists");
		goto out;
	}
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	/* secure memory: the PEM of the private key is wiped when freed */
	priv = BIO_new(BIO_s_secmem());
	pub = BIO_new(BIO_s_mem());
	if (k == NULL || priv == NULL || pub == NULL ||
	    PEM_write_bio_PrivateKey(priv, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pub, k) != 1) {
		store_err_set(err, 900, "audit key: generation failed");
		goto out;
	}
	if (file_create(dirfd, "audit.key", 0600, priv, err) != 0)
		goto out;
	if (file_create(dirfd, "audit.pub", 0644, pub, err) != 0) {
		unlinkat(dirfd, "audit.key", 0);
		goto out;
	}
	if (fsync(dirfd) != 0) {
		store_err_set(err, 900, "audit key: directory sync failed");
		goto out;
	}
	rc = 0;
out:
	BIO_free(priv);
	BIO_free(pub);
	EVP_PKEY_free(k);
	close(dirfd);
	return rc;
}

/* ---- paths -------------------------------------------------------------------------- */

static int
path_fill(const char *dir, const char *node, const char *suffix, char *out, size_t cap)
{
	int n;

	if (dir == NULL || out == NULL || !node_ok(node))
		return -1;
	n = snprintf(out, cap, "%s/%s%s", dir, node, suffix);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
audit_log_path(const char *dir, const char *node, char *out, size_t cap)
{
	return path_fill(dir, node, ".log", out, cap);
}

int
audit_head_path(const char *dir, const char *node, char *out, size_t cap)
{
	return path_fill(dir, node, ".head", out, cap);
}

/* ---- reading lines ------------------------------------------------------------------ */

/* A bounded line reader over [0, limit) of a file: a line longer than
 * MSSP_AUDIT_MAX_LINE is reported, never buffered whole. */
struct lreader {
	int fd;
	off_t pos, limit;
	char *buf;
	size_t bpos, blen;
	char *line;
	size_t llen;
};

enum { LR_EOF = 0, LR_LINE, LR_TORN, LR_LONG, LR_ERR = -1 };

static int
lr_next(struct lreader *r)
{
	bool overlong = false;

	r->llen = 0;
	for (;;) {
		if (r->bpos == r->blen) {
			size_t want = READ_CHUNK;
			ssize_t n;

			if (r->pos >= r->limit)
				return overlong ? LR_LONG : r->llen > 0 ? LR_TORN : LR_EOF;
			if ((off_t)want > r->limit - r->pos)
				want = (size_t)(r->limit - r->pos);
			n = pread_all(r->fd, r->buf, want, r->pos);
			if (n <= 0)
				return n == 0 && r->llen == 0 && !overlong ? LR_EOF : LR_ERR;
			r->pos += n;
			r->bpos = 0;
			r->blen = (size_t)n;
		}
		char *p = r->buf + r->bpos;
		char *nl = memchr(p, '\n', r->blen - r->bpos);
		size_t take = nl ? (size_t)(nl - p) : r->blen - r->bpos;

		if (!overlong && r->llen + take < MSSP_AUDIT_MAX_LINE) {
			memcpy(r->line + r->llen, p, take);
			r->llen += take;
		} else {
			overlong = true;
		}
		r->bpos += take;
		if (nl) {
			r->bpos++;
			return overlong ? LR_LONG : LR_LINE;
		}
	}
}

static int
lr_open(struct lreader *r, const char *path, int *fd_out, off_t *size, struct store_err *err)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return store_err_set(err, 900, "audit log cannot be opened: %s", strerror(errno));
	if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(r->fd);
		return store_err_set(err, 900, "audit log is not a readable file");
	}
	r->buf = malloc(READ_CHUNK);
	r->line = malloc(MSSP_AUDIT_MAX_LINE);
	if (r->buf == NULL || r->line == NULL) {
		free(r->buf);
		free(r->line);
		close(r->fd);
		return store_err_set(err, 900, "audit log: out of memory");
	}
	r->limit = st.st_size;
	if (fd_out)
		*fd_out = r->fd;
	if (size)
		*size = st.st_size;
	return 0;
}

static void
lr_close(struct lreader *r)
{
	free(r->buf);
	free(r->line);
	if (r->fd >= 0)
		close(r->fd);
}

/* ---- verification ------------------------------------------------------------------- */

static const char *const problem_names[] = {
	[AUDIT_BAD_LINE] = "bad-line",	 [AUDIT_BAD_HASH] = "bad-hash",
	[AUDIT_BAD_PREV] = "bad-prev",	 [AUDIT_SEQ_GAP] = "seq-gap",
	[AUDIT_SEQ_ORDER] = "seq-order", [AUDIT_TRUNCATED] = "truncated",
	[AUDIT_HEAD_BAD] = "head-bad",	 [AUDIT_NO_HEAD] = "no-head",
	[AUDIT_HEAD_PENDING] = "head-pending",
};

const char *
audit_problem_name(enum audit_problem_kind k)
{
	if ((int)k < AUDIT_BAD_LINE || (int)k > AUDIT_HEAD_PENDING)
		return "unknown";
	return problem_names[k];
}

struct vstate {
	audit_problem_fn cb;
	void *arg;
	struct audit_verify_result *res;
};

static void __attribute__((format(printf, 5, 6)))
report(struct vstate *v, enum audit_problem_kind k, uint64_t line, uint64_t seq, const char *fmt,
       ...)
{
	struct audit_problem p = { .ap_kind = k, .ap_line = line, .ap_seq = seq };
	va_list ap;

	v->res->av_problems++;
	if (v->cb == NULL || v->res->av_problems > MSSP_AUDIT_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(p.ap_msg, sizeof(p.ap_msg), fmt, ap);
	va_end(ap);
	v->cb(v->arg, &p);
}

/* A warning: to the callback, not counted as a problem. */
static void __attribute__((format(printf, 4, 5)))
warn(struct vstate *v, enum audit_problem_kind k, uint64_t seq, const char *fmt, ...)
{
	struct audit_problem p = { .ap_kind = k, .ap_seq = seq };
	va_list ap;

	if (v->cb == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(p.ap_msg, sizeof(p.ap_msg), fmt, ap);
	va_end(ap);
	v->cb(v->arg, &p);
}

/* A forward jump in seq, reported once the next line is read: a gap,
 * unless that next entry is one of the seqs jumped over - then entries
 * changed places, and "missing" would send the reader the wrong way. */
struct pgap {
	uint64_t line, from, to;
};

static void
gap_flush(struct vstate *v, struct pgap *g, uint64_t next_seq)
{
	if (g->line == 0)
		return;
	if (next_seq > g->from && next_seq < g->to)
		report(v, AUDIT_SEQ_ORDER, g->line, g->to,
		       "seq %" PRIu64 " comes before seq %" PRIu64 ": entries reordered", g->to,
		       next_seq);
	else
		report(v, AUDIT_SEQ_GAP, g->line, g->to,
		       "seq jumps from %" PRIu64 " to %" PRIu64 ": %" PRIu64 " missing",
		       g->from, g->to, g->to - g->from - 1);
	g->line = 0;
}

/* The head and the log's size, read together under the shared lock: the
 * snapshot the chain is checked against.  Appends go on meanwhile (the
 * log only grows); a long verify must not hold up the node's writers.
 * *head_state: 1 read, 0 no head file, -1 unreadable. */
static int
snapshot(int logfd, const char *head_path, struct head *h, int *head_state, const char **why,
	 off_t *size, struct store_err *err)
{
	struct stat st;
	bool locked = false;

	if (flock(logfd, LOCK_SH | LOCK_NB) == 0) {
		locked = true;
	} else if (errno == EWOULDBLOCK) {
		if (lock_wait(logfd, LOCK_SH, err) != 0)
			return -1;
		locked = true;
	} /* else: a file system without flock (a copy): no writers there */
	*head_state = 0;
	if (head_path != NULL)
		*head_state = head_load(AT_FDCWD, head_path, h, why);
	if (fstat(logfd, &st) != 0) {
		if (locked)
			flock(logfd, LOCK_UN);
		return store_err_set(err, 900, "audit log: stat failed");
	}
	*size = st.st_size;
	if (locked)
		flock(logfd, LOCK_UN);
	return 0;
}

int
audit_verify_file(const char *log_path, const char *head_path, const char *pub_pem_path,
		  audit_problem_fn cb, void *arg, struct audit_verify_result *out,
		  struct store_err *err)
{
	struct audit_verify_result res = { 0 };
	struct vstate v = { cb, arg, &res };
	struct pgap gap = { 0 };
	struct lreader r;
	struct head h;
	struct entry e;
	EVP_PKEY *pub = NULL;
	const char *why = "";
	unsigned char last_hash[HASH_LEN] = { 0 };
	uint64_t last_seq = 0, lineno = 0, max_seq = 0;
	char node[MSSP_AUDIT_MAX_NODE + 1] = "";
	bool anchored = true, head_found = false, head_entry_ok = false;
	bool next_found = false, next_entry_ok = false;
	int head_state = 0, k, logfd;
	off_t size = 0;

	if (log_path == NULL)
		return store_err_set(err, 101, "audit verify: no log");
	if (pub_pem_path != NULL && (pub = key_load(pub_pem_path, false, err)) == NULL)
		return -1;
	if (lr_open(&r, log_path, &logfd, NULL, err) != 0) {
		EVP_PKEY_free(pub);
		return -1;
	}
	if (snapshot(logfd, head_path, &h, &head_state, &why, &size, err) != 0)
		goto fail;
	if (size > MSSP_AUDIT_MAX_FILE) {
		store_err_set(err, 900, "audit log larger than %lld bytes", MSSP_AUDIT_MAX_FILE);
		goto fail;
	}
	r.limit = size;

	while ((k = lr_next(&r)) != LR_EOF) {
		if (k == LR_ERR) {
			store_err_set(err, 900, "audit log: read failed");
			goto fail;
		}
		lineno++;
		res.av_entries++;
		if (k == LR_TORN) {
			gap_flush(&v, &gap, 0);
			report(&v, AUDIT_TRUNCATED, lineno, 0,
			       "the log ends in a torn line (an interrupted or cut append)");
			break;
		}
		if (k == LR_LONG || entry_parse(r.line, r.llen, &e) != 0) {
			gap_flush(&v, &gap, 0);
			report(&v, AUDIT_BAD_LINE, lineno, 0, "not an audit entry (%s)",
			       k == LR_LONG ? "line too long" : "malformed");
			anchored = false; /* next entry: no gap or prev check */
			continue;
		}
		gap_flush(&v, &gap, e.seq);
		if (node[0] == '\0')
			memcpy(node, e.node, sizeof(node));
		if (!e.hash_ok) {
			report(&v, AUDIT_BAD_HASH, lineno, e.seq,
			       "entry content does not match its hash");
			/* re-anchor on what the entry claims, at the expected
			 * place: an edit of one entry is one problem */
			last_seq = anchored || e.seq <= last_seq ? last_seq + 1 : e.seq;
			goto anchor;
		}
		if (e.seq <= last_seq) {
			report(&v, AUDIT_SEQ_ORDER, lineno, e.seq,
			       "seq %" PRIu64 " after seq %" PRIu64 ": entries reordered or copied",
			       e.seq, last_seq);
			/* keep the anchor on the highest entry: a moved entry
			 * does not hide the ones after it */
			continue;
		}
		if (anchored && e.seq > last_seq + 1)
			gap = (struct pgap){ lineno, last_seq, e.seq };
		else if (anchored && memcmp(e.prev, last_hash, HASH_LEN) != 0)
			report(&v, AUDIT_BAD_PREV, lineno, e.seq,
			       "prev is not the hash of the entry before: entry removed, inserted or moved");
		else if (!e.canonical)
			report(&v, AUDIT_BAD_LINE, lineno, e.seq, "entry is not in canonical form");
		last_seq = e.seq;
		res.av_last_seq = e.seq;
	anchor:
		memcpy(last_hash, e.hash, HASH_LEN);
		anchored = true;
		if (last_seq > max_seq)
			max_seq = last_seq;
		/* the head signs the hash an entry states: an edited entry
		 * is its own problem, not the head's */
		if (head_state == 1 && last_seq == h.seq && !head_found) {
			head_found = true;
			head_entry_ok = memcmp(e.hash, h.hash, HASH_LEN) == 0;
		}
		/* the entry after the head's: the one it committed to? */
		if (head_state == 1 && last_seq == h.seq + 1 && !next_found) {
			next_found = true;
			next_entry_ok = h.has_next && e.hash_ok &&
					memcmp(e.hash, h.next, HASH_LEN) == 0;
		}
	}

	gap_flush(&v, &gap, 0);

	/* the head.  A missing one is a problem whenever a head was asked
	 * for, whatever the log's size: the node's writer makes the head
	 * before it creates the log, so an existing log never lacks one -
	 * an empty log without it is a log cut to nothing plus a deleted
	 * head.  "Never written" is only said of a chain-only check
	 * (head_path NULL) of an empty log: a warning. */
	if (head_state == 0) {
		if (head_path != NULL)
			report(&v, AUDIT_NO_HEAD, 0, 0,
			       res.av_entries > 0
				       ? "no head file: a cut tail cannot be seen without it"
				       : "no head file for an existing log: deleted (a log cut to "
					 "nothing looks like this)");
		else if (res.av_entries > 0)
			report(&v, AUDIT_NO_HEAD, 0, 0,
			       "no head checked: a cut tail cannot be seen without it");
		else
			warn(&v, AUDIT_NO_HEAD, 0, "no head checked (the log is empty: never written)");
	} else if (head_state < 0) {
		report(&v, AUDIT_HEAD_BAD, 0, 0, "%s", why);
	} else if (pub == NULL) {
		report(&v, AUDIT_HEAD_BAD, 0, h.seq, "no public key: the head's signature is unchecked");
	} else if (!head_sig_ok(&h, pub)) {
		report(&v, AUDIT_HEAD_BAD, 0, h.seq,
		       "the head's signature does not verify (forged, or another key)");
	} else if (node[0] != '\0' && strcmp(node, h.node) != 0) {
		report(&v, AUDIT_HEAD_BAD, 0, h.seq, "the head is another node's");
	} else if (h.seq > max_seq) {
		report(&v, AUDIT_TRUNCATED, 0, h.seq,
		       "the head names seq %" PRIu64 " but the log ends at seq %" PRIu64
		       ": entries cut from the tail",
		       h.seq, max_seq);
	} else if (h.seq > 0 && (!head_found || !head_entry_ok)) {
		report(&v, AUDIT_HEAD_BAD, 0, h.seq, "the head's hash is not that of entry seq %" PRIu64,
		       h.seq);
	} else if (max_seq == h.seq + 1 && next_found && next_entry_ok) {
		/* the crash window: the head committed to this entry */
		warn(&v, AUDIT_HEAD_PENDING, max_seq,
		     "entry seq %" PRIu64 " is the one the head committed to, the head not yet "
		     "moved on (crash or failed head write; the node's writer repairs it)",
		     max_seq);
		res.av_head_ok = true;
	} else if (max_seq > h.seq) {
		report(&v, AUDIT_HEAD_BAD, 0, h.seq,
		       "%" PRIu64 " entr%s after seq %" PRIu64 " not committed by the signed head: "
		       "forged, or written without the audit key",
		       max_seq - h.seq, max_seq - h.seq == 1 ? "y" : "ies", h.seq);
	} else {
		res.av_head_ok = true;
	}
	lr_close(&r);
	EVP_PKEY_free(pub);
	if (out)
		*out = res;
	return res.av_problems > 0 ? 1 : 0;
fail:
	lr_close(&r);
	EVP_PKEY_free(pub);
	if (out)
		*out = res;
	return -1;
}

/* ---- reading for display ------------------------------------------------------------ */

/* The seq of a line, read without checking anything; 0 when not found. */
static uint64_t
line_seq(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, 0, &jerr);
	json_t *v = json_object_get(o, "seq");
	uint64_t s = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v)
								       : 0;

	json_decref(o);
	return s;
}

/* First offset worth scanning for seq > after: a bisection over line
 * starts (the log is in seq order unless tampered, and reading does not
 * verify), so paging through a large log does not read all of it. */
static off_t
seek_after(int fd, off_t size, uint64_t after, char *buf)
{
	off_t lo = 0, hi = size;

	while (hi - lo > 4 * (off_t)MSSP_AUDIT_MAX_LINE) {
		off_t mid = lo + (hi - lo) / 2, start;
		ssize_t n = pread_all(fd, buf, 2 * (size_t)MSSP_AUDIT_MAX_LINE, mid);
		char *nl, *end;

		if (n <= 0)
			break;
		nl = memchr(buf, '\n', (size_t)n);
		if (nl == NULL)
			break;
		start = mid + (nl - buf) + 1;
		end = memchr(nl + 1, '\n', (size_t)(buf + n - (nl + 1)));
		if (end == NULL)
			break;
		if (line_seq(nl + 1, (size_t)(end - nl - 1)) <= after)
			lo = start;
		else
			hi = mid;
	}
	return lo;
}

int
audit_read(const char *log_path, uint64_t after_seq, size_t max, audit_line_fn cb, void *arg,
	   struct store_err *err)
{
	struct lreader r;
	size_t n = 0;
	off_t size = 0;
	int k, fd;

	if (log_path == NULL || cb == NULL)
		return store_err_set(err, 101, "audit read: bad argument");
	if (max > MSSP_STORE_MAX_LIST)
		max = MSSP_STORE_MAX_LIST;
	if (lr_open(&r, log_path, &fd, &size, err) != 0)
		return -1;
	if (after_seq > 0) {
		char *buf = malloc(2 * (size_t)MSSP_AUDIT_MAX_LINE);

		if (buf != NULL)
			r.pos = seek_after(fd, size, after_seq, buf);
		free(buf);
	}
	while (n < max && (k = lr_next(&r)) != LR_EOF) {
		uint64_t s;

		if (k == LR_ERR) {
			lr_close(&r);
			return store_err_set(err, 900, "audit log: read failed");
		}
		if (k != LR_LINE)
			continue; /* an over-long line, or an append in progress */
		s = line_seq(r.line, r.llen);
		if (s == 0 || s <= after_seq)
			continue;
		r.line[r.llen] = '\0';
		n++;
		if (cb(arg, s, r.line, r.llen) != 0)
			break;
	}
	lr_close(&r);
	return 0;
}
