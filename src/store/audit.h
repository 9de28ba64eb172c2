/*
 * audit.h - the tamper-evident audit log (security.md P-05/P-06,
 * bad-inputs M-03, docs/internals/me.md "Audit log").
 *
 * One file per node, DIR/audit/<node>.log: one JSON object per line,
 * appended and fsync'd under an exclusive flock(2), so that the processes
 * of one node (msspd with every role, or a signing msspd beside an ME
 * msspd, and msspctl) share one sequence.  Each entry carries a per-node
 * sequence number (1, 2, ...) and a SHA-256 hash chain:
 *
 *   {"action":..,"actor":..,"detail":..,"node":..,"outcome":..,"prev":HEX,
 *    "role":..,"seq":N,"target":..,"ts":"2026-11-22T21:00:00.123Z",
 *    "hash":HEX}
 *
 *   hash = SHA-256( prev (32 bytes) || C ), C = the compact JSON of the
 *   entry WITHOUT "hash", keys sorted (jansson JSON_COMPACT |
 *   JSON_SORT_KEYS | JSON_ENSURE_ASCII), prev of seq 1 = 32 zero bytes.
 *   The line is C with ,"hash":"HEX" inserted before the final '}'.
 *
 * The head file DIR/audit/<node>.head is replaced atomically (write,
 * fsync, rename, fsync of the directory):
 *   {"hash":HEX,"next":HEX or "","node":..,"seq":N,"sig":base64}
 * sig = ECDSA P-256 / SHA-256 with the node's audit key over the bytes
 *   "mssp-audit-head-v2" 0x00 node 0x00 seq (decimal) 0x00 hash (hex)
 *   0x00 next (hex, or nothing when "next" is "").
 * (seq, hash) name the last entry the head covers; "next", when not "",
 * is the hash of the ONE entry the node's writer is about to append after
 * it.  An append of entry N+1 signs (N, hash N, next = hash N+1), writes
 * and fsyncs the entry, then signs (N+1, hash N+1, next "") - two head
 * writes per append.  The head is what makes a truncated tail visible,
 * and "next" what makes an entry appended by someone without the key
 * visible (entry hashes need no secret): nobody can move the head, or
 * commit it to an entry, without the key.  A keyed audit_open that
 * creates the log writes the genesis head (seq 0, hash 64 zeros, next "")
 * before it creates the file.
 * Old heads (written before "next" existed): {"hash","node","seq","sig"},
 * signed over "mssp-audit-head-v1" 0x00 node 0x00 seq 0x00 hash; they
 * still verify, commit to nothing, and are replaced by the next append.
 *
 * Crash windows (F-01):
 *  (a) a torn last line (the process died in the write): never
 *      acknowledged; the next append cuts it off;
 *  (b) the entry written and fsync'd, the head not moved on (the process
 *      died, or the head write failed): the log is ONE entry beyond its
 *      head.  Accepted only when that entry's hash is the head's signed
 *      "next" and it chains from the head's entry (intact, or seq 0 over
 *      an empty log).  A keyed audit_open repairs it at once, a keyed
 *      append before its own entry: an "audit.head_repaired" entry (actor
 *      "system", target = the adopted seq, detail naming seq and hash) is
 *      appended, its commitment re-signs the head for the adopted entry,
 *      and the process log says "audit.head_repaired" - so the log is
 *      never two entries beyond its head, and repeated head-write failures
 *      leave it repairable.  A keyless open accepts it ("audit.head_behind").
 * Anything else is refused with 900 (the log was tampered with): a tail
 * that is not the head's entry; an entry beyond the head that it did not
 * commit to (another hash, or an old head without "next") - verify
 * reports it as head-bad; two or more entries beyond the head; and - for
 * a handle with the key - a log file without a head file, whatever its
 * size (an empty one is a log cut to nothing plus a deleted head).
 *
 * Errors: struct store_err (store.h): 101 bad argument (a caller bug in
 * the event: unknown outcome, oversized field), 900 I/O, lock timeout
 * (MSSP_AUDIT_LOCK_MS), a log whose tail does not match its head (the
 * log was tampered with: audit_open refuses, msspd does not start).
 *
 * Threads: an audit handle is thread-safe (an internal mutex around the
 * flock'd append).  Processes: a handle is its opener's only - after
 * fork() the child must audit_open a NEW handle (an inherited one shares
 * the parent's open file description, hence its flock, so the two would
 * not exclude each other; audit_append refuses it with 900 "handle used
 * after fork").  The child may audit_close the inherited one.
 * Ownership: strings are borrowed; the handle owns its file descriptors
 * and key.
 */
#ifndef MSSP_STORE_AUDIT_H
#define MSSP_STORE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct audit;

/* One event.  Every string is UTF-8 text, NUL-terminated, borrowed;
 * NULL is written as "".  Lengths: actor, role, action at most 64 bytes;
 * target at most MSSP_STORE_MAX_REC_NAME; detail at most
 * MSSP_AUDIT_MAX_DETAIL (longer is cut at a character boundary and marked
 * with "..."; never refused).  Control characters are escaped by JSON. */
struct audit_event {
	const char *ae_actor;	/* account name, "system", "ap:<AP_ID>", ...  */
	const char *ae_role;	/* "admin", "ra", "auditor", "system", ""     */
	const char *ae_action;	/* "user.create", "auth.refused", ... (reg op
				 * names, docs/internals/me.md)               */
	const char *ae_target;	/* what it acted on (MSISDN, AP_ID, serial)   */
	const char *ae_outcome; /* "ok", "refused", "failed", "pending"       */
	const char *ae_detail;	/* why / what changed (no secrets, ever)      */
};

/* Open (creating DIR/audit/<node>.log when missing, mode 0600) for
 * appending.  `dir` is the audit directory (DIR/audit), `node` the node id
 * ([A-Za-z0-9._-], 1..64).  `key_pem_path`: the audit private key (PEM
 * PKCS#8) used to sign heads; NULL opens without signing (then heads are
 * not written: a read-only verifier, tests).  Checks that the last entry
 * of the log matches the head (hash and seq; crash window (b) above
 * tolerated when the head committed to the entry, and then - with the key -
 * repaired at once, see above): a mismatch is 900 "audit log does not
 * match its head"; with a key, a log file that existed without a head is
 * 900 "audit log exists / has entries but no head file" (a log this call
 * creates gets its genesis head first; a keyless open creates a log
 * without one, which a keyed open then refuses).  NULL with err. */
struct audit *audit_open(const char *dir, const char *node, const char *key_pem_path,
			 struct store_err *err);
void audit_close(struct audit *a); /* accepts NULL */

/* Append one event with the wall clock `now_ms`.  0: the entry is
 * recorded (fsync'd) - and normally its head too; *seq_out (may be NULL)
 * = its sequence number.  When only the head could not be written after
 * the entry, this still returns 0 (the entry IS recorded: a caller told
 * otherwise would report a recorded operation as unaudited, or retry and
 * record it twice); that is logged ("audit.head_write_failed") and the
 * next append repairs the head before its own entry (crash window (b)).
 * -1 with err: this event was not appended - 101 bad event, 900 I/O,
 * lock, a log that does not match its head, or a head that could not be
 * signed (committing to this entry, or repairing the previous one; a
 * repair whose own audit entry could not be written is also -1). */
int audit_append(struct audit *a, const struct audit_event *ev, int64_t now_ms,
		 uint64_t *seq_out, struct store_err *err);

/* Create the node's audit key pair in `dir` (audit.key 0600 PKCS#8 PEM,
 * audit.pub SPKI PEM): msspd init.  The directory is created (0700) when
 * missing; existing key files are an error (900). */
int audit_keygen(const char *dir, struct store_err *err);

/* ---- Verification (msspctl audit verify, the ME, startup) -------------- */

enum audit_problem_kind {
	AUDIT_BAD_LINE = 1,	/* not a JSON object of the entry's shape     */
	AUDIT_BAD_HASH,		/* the entry's content does not give its hash:
				 * edited                                     */
	AUDIT_BAD_PREV,		/* prev is not the previous entry's hash:
				 * an entry deleted, inserted or reordered    */
	AUDIT_SEQ_GAP,		/* seq jumps forward: entries deleted         */
	AUDIT_SEQ_ORDER,	/* seq repeats or goes back: reordered/copied */
	AUDIT_TRUNCATED,	/* the head names a later entry than the last
				 * one in the log (or the log ends in a torn
				 * line)                                      */
	AUDIT_HEAD_BAD,		/* head unreadable, signature wrong, or its
				 * hash is not the entry of its seq           */
	AUDIT_NO_HEAD,		/* no head file, whatever the log's size when
				 * a head path was given; only a warning for a
				 * chain-only check (head_path NULL) of an
				 * empty log - "never written"                 */
	AUDIT_HEAD_PENDING,	/* a warning, never counted: the last entry is
				 * the one the head committed to ("next"), the
				 * head not moved on (crash window (b)); the
				 * node's writer repairs it                    */
};
const char *audit_problem_name(enum audit_problem_kind k); /* "bad-hash"... */

struct audit_problem {
	enum audit_problem_kind ap_kind;
	uint64_t ap_line;	/* 1-based line number in the file, 0: none  */
	uint64_t ap_seq;	/* the entry's seq (or expected), 0: unknown */
	char ap_msg[160];	/* human explanation, no entry content       */
};
typedef void (*audit_problem_fn)(void *arg, const struct audit_problem *p);

struct audit_verify_result {
	uint64_t av_entries;	/* lines read                               */
	uint64_t av_last_seq;	/* seq of the last good entry               */
	uint64_t av_problems;
	bool av_head_ok;	/* head present, signed, matching (the last
				 * entry, or committed to it: head-pending)  */
};

/* Verify a log file against its head and public key.  `head_path` and
 * `pub_pem_path` may be NULL (then only the chain is checked, and
 * AUDIT_NO_HEAD is reported: a problem when the log has entries, a
 * warning when it is empty).  With a head path, a missing head file is a
 * problem whatever the log's size: since the writer makes the genesis
 * head before it creates the log, "never written" cannot be told from
 * "cut to nothing and its head deleted"; a log file that does not exist
 * is -1 (900), never "intact".  Entries beyond the head are head-bad
 * (forged, or written without the key) unless it is the one entry the
 * head committed to (head-pending, a warning).  Every problem found goes
 * to `cb` (may be NULL), at most MSSP_AUDIT_MAX_PROBLEMS of them, in file
 * order, and so do warnings (not counted in av_problems); checking goes
 * on after a problem (the chain is re-anchored on the entry read).
 * Returns 0 when the log is intact (no problem), 1 when problems were
 * found, -1 with err when the files cannot be read (900). */
int audit_verify_file(const char *log_path, const char *head_path, const char *pub_pem_path,
		      audit_problem_fn cb, void *arg, struct audit_verify_result *out,
		      struct store_err *err);

/* The node's files: "<dir>/<node>.log" and "<dir>/<node>.head" into `out`
 * (cap bytes).  0, or -1 when it does not fit or node is malformed. */
int audit_log_path(const char *dir, const char *node, char *out, size_t cap);
int audit_head_path(const char *dir, const char *node, char *out, size_t cap);

/* Read entries for display: the lines with seq > after_seq, in file
 * order, at most `max` (<= MSSP_STORE_MAX_LIST); `cb` gets each line's
 * text (without newline, borrowed).  Reading does not verify.
 * 0, or -1 with err (900). */
typedef int (*audit_line_fn)(void *arg, uint64_t seq, const char *line, size_t len);
int audit_read(const char *log_path, uint64_t after_seq, size_t max, audit_line_fn cb, void *arg,
	       struct store_err *err);

#endif
