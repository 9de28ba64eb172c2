/*
 * store.h - the one storage interface: durable signature transactions, and
 * the user registry (users, devices, keys).
 *
 * A transaction is one MSS_SignatureReq accepted by the AE, from the moment
 * it is accepted until its final status.  Everything a status query, a
 * device answer or a restarted node needs is in the database: no state that
 * only one process's memory holds (architecture.md "Durable before
 * acknowledged"; bad-inputs.md section 11, "nothing lost").
 *
 * Backends: the store is opened from a URI-like string.
 *   "sqlite:/path/to/mssp.db"   SQLite 3 (WAL, synchronous=FULL), built in.
 *   "postgresql://..." / "postgres://..."  reserved for store_pg.c; this
 *                               build answers 900 "backend not built".
 * Callers never see which backend runs: a vtable inside the handle
 * dispatches (the backend interface is at the end of this header, visible
 * to backend files only).
 *
 * Calling context: every function here is SYNCHRONOUS and may block on the
 * disk (fsync) or on the database's write lock for up to
 * MSSP_STORE_BUSY_TIMEOUT_MS.  Call it from worker threads only, NEVER from
 * an event-loop thread.  A write may also wait for the writes of other
 * threads of the process (group commit, below), and a calling thread may
 * run other threads' writes for them (it is then the group's leader): the
 * store creates no thread of its own.
 *
 * Thread safety: a handle may be shared by threads (an internal mutex
 * serialises its calls), but for parallel work each worker thread opens its
 * own handle (store_open, or store_clone of an existing one): one database
 * connection per thread for the reads.  Writes (SQLite): every read-write
 * handle of the process on the same database file shares ONE writer
 * connection and queue; the queued writes run as one database transaction
 * (each in its own savepoint: a refused write does not affect the others)
 * with one commit, one fsync, for the group - docs/internals/store.md
 * "Group commit".  Handles in one process, or in many processes and nodes,
 * coordinate through the database alone (locks, unique indexes,
 * compare-and-set updates).  A handle MUST NOT be used in a child after
 * fork(): open a new one there (the child gets its own writer).
 *
 * Durability: a function that changes the database returns success only
 * after the change is committed (SQLite: WAL fsync'd, synchronous=FULL) -
 * with group commit, after the commit of its whole group; its outcome,
 * refusals included, is reported only then.  If that commit fails, every
 * write of the group returns 900 and none of them is in the database.
 * "Committed before reported": the caller sends REQUEST_OK, a prompt, an
 * acknowledgement to the device or a result to the AP only after the call
 * that records it returned 0.
 *
 * Errors: functions return 0 / a pointer, or -1 / NULL with a caller-supplied
 * struct store_err filled.  `status` is the TS 102 204 code the outcome maps
 * to, so the roles never translate store errors themselves:
 *   101 WRONG_PARAM          AP_TransID already used with other content;
 *                            "no such transaction" (unknown id, another
 *                            AP's id, malformed id: all byte-identical,
 *                            A-03); receipt refused,
 *   406 PB_SIGNATURE_PROCESS another request of this user and key is
 *                            outstanding,
 *   900 INTERNAL_ERROR       database unavailable, busy past the timeout,
 *                            full, corrupted, read-only handle, schema too
 *                            new, or an invalid argument (a caller bug: the
 *                            message validator runs first) (F-02, F-05).
 * and three store-local outcomes of store_tx_transition() that are NOT wire
 * codes (below 100, like the keystore's): STORE_STATUS_CONFLICT,
 * STORE_STATUS_FINAL, STORE_STATUS_PAST_DEADLINE (see there).
 * `detail` is generic text: never request content, never input bytes.
 *
 * Time: every function that writes takes `now_ms`, the caller's wall clock
 * in milliseconds since the Unix epoch.  Deadlines are absolute wall-clock
 * times; the caller keeps its own CLOCK_MONOTONIC timers for the parked
 * requests it serves (F-08), the stored deadline is what survives a restart
 * and what other nodes see.
 *
 * Ownership: every argument is borrowed for the duration of the call.
 * A struct store_tx filled by the store owns heap members: release them
 * with store_tx_clear() (also before reuse; the filling functions clear it
 * first, so filling a cleared or zeroed record twice never leaks).
 */
#ifndef MSSP_STORE_STORE_H
#define MSSP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

#define STORE_ERR_DETAIL_MAX 160

struct store_err {
	int status;			   /* TS 102 204 code, or a STORE_STATUS_ */
	char detail[STORE_ERR_DETAIL_MAX];
};

/* Fill `e` (printf-style, generic text); returns -1. */
int store_err_set(struct store_err *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Store-local outcomes of store_tx_transition (never sent on the wire). */
#define STORE_STATUS_CONFLICT 1	     /* current state is not `from`, and
				      * not final: another worker moved it  */
#define STORE_STATUS_FINAL 2	     /* the transaction is already final:
				      * the change is refused        */
#define STORE_STATUS_PAST_DEADLINE 3 /* -> PROMPT_SENT or -> ANSWERED asked
				      * at or after the deadline: refused,
				      * the caller expires it (208)         */

/* MSSP_TransID: "T" + 32 lowercase hex digits (128 CSPRNG bits), an
 * xs:NCName. */
#define STORE_TX_ID_LEN (1 + 2 * MSSP_STORE_TRANSID_BYTES)

enum store_state {
	STORE_ST_NONE = 0,	  /* not a state: "no record"                */
	STORE_ST_ACCEPTED = 1,	  /* committed, before REQUEST_OK / prompt   */
	STORE_ST_PROMPT_SENT = 2, /* recorded BEFORE the prompt is sent (F-01b) */
	STORE_ST_ANSWERED = 3,	  /* the device's raw answer, recorded BEFORE
				   * it is acknowledged to the device (F-01d) */
	STORE_ST_COMPLETED = 4,	  /* final: outcome of the device's answer   */
	STORE_ST_EXPIRED = 5,	  /* final: 208                              */
	STORE_ST_FAILED = 6,	  /* final: an error without a usable answer */
};
#define STORE_ST_COUNT 7

/* Messaging modes, as the store keeps them (it knows no protocol). */
enum store_mode {
	STORE_MODE_SYNCH = 1,
	STORE_MODE_ASYNCH_CS = 2, /* asynchClientServer: AP polls          */
	STORE_MODE_ASYNCH_SS = 3, /* asynchServerServer: we notify the AP  */
};

/* "ACCEPTED", ...; "?" for a value outside the enumeration.  Static. */
const char *store_state_name(enum store_state st);
bool store_state_final(enum store_state st);
/* The transition table (docs/internals/store.md): true if `from` -> `to`
 * is a legal state change. */
bool store_transition_legal(enum store_state from, enum store_state to);

/* ---- Handles ------------------------------------------------------------ */

struct store; /* opaque: store_open / store_clone, freed by store_close */

enum store_open_flag {
	STORE_OPEN_CREATE = 1 << 0,   /* create the database and its schema if
				       * missing (`msspd init`).  Without it a
				       * missing or uninitialised database is
				       * 900: a lost file must never be
				       * replaced silently by an empty one    */
	STORE_OPEN_READONLY = 1 << 1, /* no writes (status pages, reports); the
				       * schema must be current already       */
};

/* Open `uri` (see the top of this file).  A read-write open runs the
 * schema migrations (in one database transaction).  Returns a new handle
 * (store_close), or NULL with err: 900 for everything (unknown scheme,
 * backend not built, database missing/unreadable/not a database, schema
 * newer than this program, migration failure). */
struct store *store_open(const char *uri, unsigned flags, struct store_err *err);
/* A new handle (a new connection) on the same database with the same flags,
 * minus STORE_OPEN_CREATE: one per worker thread.  Borrows `s`. */
struct store *store_clone(struct store *s, struct store_err *err);
/* Close; accepts NULL.  No call on the handle may be running. */
void store_close(struct store *s);
/* "sqlite", ... (static string). */
const char *store_backend_name(const struct store *s);
/* Is the database usable through this handle?  Pings it (reads the schema
 * version) and checks that the database file is still the one opened; if
 * the handle had lost its database it tries to reconnect first, without
 * waiting for the back-off.  0, or -1 with 900 (F-02: the health endpoint
 * reports not-ready). */
int store_health(struct store *s, struct store_err *err);

/* After an error that means the database is gone (I/O error, file moved or
 * removed, not a database), a handle reconnects by itself on a later call,
 * no sooner than a back-off (MSSP_STORE_REOPEN_MIN_MS doubling up to
 * MSSP_STORE_REOPEN_MAX_MS); until then every call fails at once with 900. */

/* ---- Transactions ------------------------------------------------------- */

/* What store_tx_create() records.  All strings NUL-terminated, borrowed. */
struct store_tx_new {
	const char *tn_ap_id;		    /* 1..MSSP_STORE_MAX_AP_ID bytes   */
	const char *tn_ap_trans_id;	    /* 1..MSSP_MSG_MAX_TRANSID bytes   */
	const unsigned char *tn_hash;	    /* canonical hash of the request   */
	size_t tn_hash_len;		    /* content, computed by the caller:
					     * MSSP_STORE_MIN..MAX_HASH bytes  */
	const char *tn_msisdn;		    /* normalised user id, 1..MAX bytes */
	const char *tn_key_id;		    /* the unit of exclusion: the key or
					     * key group chosen (or one id for a
					     * whole SIM), 1..MAX bytes        */
	enum store_mode tn_mode;
	int64_t tn_deadline_ms;		    /* absolute wall clock; after now,
					     * at most MSSP_STORE_MAX_TTL_MS on */
	const char *tn_notify_url;	    /* NULL, or the notification URL   */
	const char *tn_request;		    /* request document (the caller's  */
	size_t tn_request_len;		    /* JSON-mirror text), 1..MAX bytes */
	const char *tn_peer;		    /* NULL or "": handled here; else a
					     * roamed transaction: the MSSP_ID
					     * of the peer it is forwarded to,
					     * 1..MSSP_STORE_MAX_AP_ID bytes
					     * (docs/internals/mesh.md)        */
};

enum store_create_flag {
	/* A-22, app method: if another request of this user and key is
	 * outstanding and has not been answered yet (ACCEPTED or
	 * PROMPT_SENT), move it to FAILED with 401 in the SAME database
	 * transaction that inserts the new one (its id is returned in
	 * tx_preempted; the caller tells that one's requester 401 and
	 * withdraws its prompt).  An ANSWERED one is never pre-empted (a
	 * signature may be on its way): 406 as without the flag. */
	STORE_PREEMPT = 1 << 0,
};

/* What store_tx_get*() load besides the core fields. */
enum store_get_flag {
	STORE_GET_REQUEST = 1 << 0, /* tx_request */
	STORE_GET_ANSWER = 1 << 1,  /* tx_answer  */
};

/* One transaction record.  Fixed-size members are NUL-terminated strings;
 * the pointer members are heap copies owned by the record (store_tx_clear),
 * NULL when absent or not asked for; they are NUL-terminated too (the
 * terminator is not counted in the _len). */
struct store_tx {
	char tx_id[STORE_TX_ID_LEN + 1];		/* MSSP_TransID    */
	char tx_ap_id[MSSP_STORE_MAX_AP_ID + 1];
	char tx_ap_trans_id[MSSP_MSG_MAX_TRANSID + 1];
	unsigned char tx_hash[MSSP_STORE_MAX_HASH];
	size_t tx_hash_len;
	char tx_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char tx_key_id[MSSP_STORE_MAX_KEY_ID + 1];
	enum store_mode tx_mode;
	enum store_state tx_state;
	int tx_status;				/* final TS 102 204 code, 0 while
						 * not final                    */
	int64_t tx_created_ms;
	int64_t tx_deadline_ms;
	int64_t tx_updated_ms;			/* last state change           */
	int64_t tx_prompt_ms;			/* 0 when not set               */
	int64_t tx_answer_ms;
	int64_t tx_final_ms;
	int64_t tx_receipt_ms;			/* 0: no receipt recorded       */
	char tx_nonce[MSSP_STORE_MAX_NONCE + 1];	/* "" until PROMPT_SENT */
	char tx_notify_url[MSSP_STORE_MAX_URL + 1];	/* "" if none           */
	char tx_profile[MSSP_PROFILE_MAX_URI + 1];	/* profile used, or ""  */
	char tx_detail[MSSP_STORE_MAX_DETAIL + 1];	/* final detail, or ""  */
	char tx_peer[MSSP_STORE_MAX_AP_ID + 1];		/* roamed: the peer's
							 * MSSP_ID; "" local */
	char tx_peer_trans_id[MSSP_MSG_MAX_TRANSID + 1]; /* roamed: the peer's
							 * MSSP_TransID once
							 * known, or ""     */
	char *tx_request;			/* STORE_GET_REQUEST            */
	size_t tx_request_len;
	unsigned char *tx_answer;		/* STORE_GET_ANSWER             */
	size_t tx_answer_len;
	char *tx_signature;			/* always loaded when present   */
	size_t tx_signature_len;
	/* Set by store_tx_create only: */
	bool tx_replay;				/* an idempotent resend: the
						 * EXISTING transaction, do not
						 * prompt again          */
	char tx_preempted[STORE_TX_ID_LEN + 1]; /* STORE_PREEMPT: the id moved
						 * to FAILED 401, or ""         */
};

/* Free the heap members and zero the record; accepts NULL. */
void store_tx_clear(struct store_tx *tx);

/* Create a transaction in state ACCEPTED with a fresh MSSP_TransID, in one
 * database transaction, committed when this returns 0.  The database
 * enforces (unique constraints, not check-then-insert):
 *   - (AP_ID, AP_TransID) is unique for ever.  A resend with the same
 *     content hash returns 0 with the EXISTING record and tx_replay set,
 *     whatever its state (A-01: never a second prompt; answer with its
 *     state or result).  Other content: -1, 101.  The replay check comes
 *     first, so the resend of an outstanding request is a replay, not 406.
 *   - at most one outstanding (ACCEPTED, PROMPT_SENT or ANSWERED)
 *     transaction per (msisdn, key_id): -1, 406, or STORE_PREEMPT (above).
 * `out` (may be NULL) receives the record (without request/answer).
 * Errors: 101, 406 as above; 900 invalid argument (deadline not after
 * now_ms, a field too long, ...), read-only handle, database unavailable. */
int store_tx_create(struct store *s, const struct store_tx_new *n, unsigned flags,
		    int64_t now_ms, struct store_tx *out, struct store_err *err);

/* Record the peer's MSSP_TransID of a roamed transaction (its answer to
 * the forward), committed on return.  Idempotent: the same value again is
 * 0; another value when one is set: -1 with STORE_STATUS_CONFLICT
 * (nothing changed); a transaction that is not roamed: 900; unknown: 101.
 * `peer_trans_id`: 1..MSSP_MSG_MAX_TRANSID visible ASCII bytes (900).
 * A final transaction (COMPLETED/EXPIRED/FAILED) is immutable: setting
 * the id there is -1 with STORE_STATUS_FINAL, unless the same value is
 * already recorded (0).  Record it before the transition that makes the
 * transaction final (a synchronous answer carries both).  Any open state
 * is fine.  The write sets tx_updated_ms = now_ms. */
int store_tx_set_peer_trans_id(struct store *s, const char *mssp_trans_id,
			       const char *peer_trans_id, int64_t now_ms,
			       struct store_err *err);

/* The AP-facing lookup (status query, receipt): by MSSP_TransID AND AP_ID.
 * Another AP's transaction, an unknown id and a malformed one all give -1
 * with 101 "no such transaction", byte-identical.  `what`: enum
 * store_get_flag bits.  0 with `out` filled. */
int store_tx_get(struct store *s, const char *ap_id, const char *mssp_trans_id, unsigned what,
		 struct store_tx *out, struct store_err *err);
/* Internal lookup by MSSP_TransID alone, for ids the platform itself holds
 * (recovery, cross-node wakeups).  MUST NOT be used with an id that came
 * from an AP.  Not found: -1, 101. */
int store_tx_get_by_id(struct store *s, const char *mssp_trans_id, unsigned what,
		       struct store_tx *out, struct store_err *err);
/* The device-answer lookup: by the correlation nonce recorded at
 * PROMPT_SENT.  Not found: -1, 101. */
int store_tx_get_by_nonce(struct store *s, const char *nonce, unsigned what,
			  struct store_tx *out, struct store_err *err);

/* The fields a transition records; members not used by the target state
 * MUST be NULL / 0 (a mismatch is a caller bug: 900). */
struct store_tx_change {
	const char *tc_nonce;		  /* -> PROMPT_SENT: required, unique,
					   * MSSP_STORE_MIN..MAX_NONCE chars of
					   * [A-Za-z0-9_-] (hex or base64url) */
	const unsigned char *tc_answer;	  /* -> ANSWERED: required, the raw    */
	size_t tc_answer_len;		  /* device answer, 1..MAX bytes       */
	int tc_status;			  /* -> COMPLETED / FAILED: required;
					   * -> EXPIRED: 0 or 208 (208 is set) */
	const char *tc_signature;	  /* -> COMPLETED: the signature as    */
	size_t tc_signature_len;	  /* base64 text; required with 500 and
					   * 502, optional otherwise           */
	const char *tc_profile;		  /* -> COMPLETED: profile used, or NULL */
	const char *tc_detail;		  /* -> any final state: short printable
					   * ASCII text for logs/answers, or NULL */
};

/* Compare-and-set: move transaction `mssp_trans_id` from `from` to `to`
 * (a legal pair, store_transition_legal) and record `chg`, atomically,
 * committed when this returns 0.  Status codes allowed per target:
 *   COMPLETED: 101..999 except 100, 208 and 504; 500/502 need a signature.
 *   EXPIRED:   208.
 *   FAILED:    101..999 except 100, 208, 500, 502 and 504.
 * Outcomes (-1 unless said):
 *   0                           done; `out` (may be NULL) = the new record;
 *   STORE_STATUS_CONFLICT       the current state is another non-final
 *                               one; nothing changed; `out` = current;
 *   STORE_STATUS_FINAL          the transaction is already final (a late
 *                               device answer after expiry or cancel,
 *                               discard it and log the orphan);
 *                               nothing changed; `out` = current;
 *   STORE_STATUS_PAST_DEADLINE  `to` is PROMPT_SENT or ANSWERED and now_ms
 *                               >= the deadline: nothing changed, the
 *                               caller moves it to EXPIRED and reports 208;
 *                               `out` = current;
 *   101 no such transaction; 900 illegal pair, bad fields (caller bugs),
 *   nonce already in use, database unavailable.
 * `out` receives the record without request/answer. */
int store_tx_transition(struct store *s, const char *mssp_trans_id, enum store_state from,
			enum store_state to, const struct store_tx_change *chg, int64_t now_ms,
			struct store_tx *out, struct store_err *err);

/* Record the AP's MSS_ReceiptReq for a transaction: at most one per
 * transaction, enforced by the database.  Only for this AP's transaction
 * COMPLETED with 500 or 502.  `receipt` is the caller's text of it
 * (1..MSSP_STORE_MAX_RECEIPT bytes).  Errors: 101 "no such transaction"
 * (as store_tx_get), 101 "transaction has no signature to acknowledge"
 * (not completed successfully, A-25), 101 "Receipt already sent",
 * 900. */
int store_tx_receipt(struct store *s, const char *ap_id, const char *mssp_trans_id,
		     const char *receipt, size_t receipt_len, int64_t now_ms,
		     struct store_err *err);

/* Callback of the scans: return 0 to go on, non-zero to stop.  `tx` is
 * borrowed for the call.  It runs WITHOUT the handle's lock and outside
 * any database transaction, so it may call the store (the same handle
 * included). */
typedef int (*store_tx_cb)(void *arg, const struct store_tx *tx);

/* Expire everything past its deadline: every ACCEPTED or PROMPT_SENT
 * transaction whose deadline is <= now_ms becomes EXPIRED (208), in
 * batches of MSSP_STORE_SCAN_BATCH (one database transaction each).
 * After each batch is COMMITTED, `cb` (may be NULL) is called once per
 * transaction it expired (record without request/answer), so that the
 * caller reports 208 (parked request, notification).  ANSWERED ones are
 * not expired: their answer arrived in time (see the recovery rules).
 * `n_expired` (may be NULL) counts them.  0, or -1 with 900. */
int store_tx_expire_due(struct store *s, int64_t now_ms, store_tx_cb cb, void *arg,
			size_t *n_expired, struct store_err *err);

/* Recovery at startup (and whenever a node takes over another's work):
 * call `cb` once for every transaction not in a final state, oldest
 * first, with the full record (request and answer included).  Pages of
 * MSSP_STORE_SCAN_BATCH; a transaction that became final between two
 * reads is skipped.  What the callback must do, per state (F-01):
 *   ACCEPTED,    before deadline  CAS ACCEPTED -> PROMPT_SENT with a fresh
 *                                 nonce, then send the prompt once; a
 *                                 CONFLICT means someone else did;
 *   PROMPT_SENT, before deadline  wait for the answer (arm a timer to the
 *                                 deadline); NEVER send the prompt again
 *                                 (unless the channel de-duplicates by the
 *                                 nonce as an idempotency key);
 *   ACCEPTED / PROMPT_SENT past the deadline   EXPIRED 208 (or leave it
 *                                 to store_tx_expire_due);
 *   ANSWERED                      verify the stored answer against the
 *                                 stored request and CAS to COMPLETED with
 *                                 the outcome, or FAILED 900 if it cannot
 *                                 be processed; never re-prompt.
 * `n_seen` (may be NULL) counts the callbacks.  0, or -1 with 900. */
int store_tx_recover_scan(struct store *s, store_tx_cb cb, void *arg, size_t *n_seen,
			  struct store_err *err);

/* Number of outstanding (non-final) transactions of `ap_id`, for per-AP
 * caps.  (A cap checked with it is check-then-act: fine for a load cap,
 * never used for a correctness rule.)  0, or -1 with 900. */
int store_tx_count_outstanding(struct store *s, const char *ap_id, uint64_t *n,
			       struct store_err *err);

/* ---- The user registry: users, their devices and keys -------------------
 *
 * What HomeMSSP needs to route and verify (and what the ME issue will
 * manage): a mobile user by MSISDN, the devices bound to the user (app
 * channel: device authentication key and end-to-end channel key), and the
 * user's key groups (purpose, profiles served, certificate).  Same rules as
 * above: synchronous, worker threads only, errors as struct store_err.
 * Records are fixed-size (no heap members).  A device record holds a
 * secret (sd_e2e_key): callers wipe it after use (OPENSSL_cleanse) and
 * never log it.
 */
enum store_user_state {
	STORE_USER_ACTIVE = 1,
	STORE_USER_SUSPENDED = 2, /* refused on every request (HomeMSSP
				   * answers 403)                          */
};

enum store_key_state {
	STORE_KEY_ACTIVE = 1,
	STORE_KEY_REVOKED = 2,	  /* certificate revoked: 501             */
	STORE_KEY_DISABLED = 3,	  /* administratively disabled            */
};

enum store_key_purpose {
	STORE_KEY_AUTHN = 1,
	STORE_KEY_SIGN = 2,
};

/* Values of sd_state (an int in the record). */
enum store_device_state {
	STORE_DEVICE_ACTIVE = 1,
	STORE_DEVICE_DISABLED = 2, /* the AFE refuses its connection        */
};

struct store_user {
	char su_msisdn[MSSP_STORE_MAX_MSISDN + 1];   /* normalised "+digits" */
	enum store_user_state su_state;
	char su_name[MSSP_STORE_MAX_NAME + 1];	     /* display name, or ""  */
	/* Identity data from the RA's verified record (issue 5); the user
	 * certificate's subject comes from here, never from a CSR (K-10).
	 * Each "" when absent; UTF-8 without control characters. */
	char su_given_name[MSSP_STORE_MAX_NAME + 1];
	char su_surname[MSSP_STORE_MAX_NAME + 1];
	char su_id_number[MSSP_STORE_MAX_ID_NUMBER + 1]; /* serialNumber RDN:
						      * printable ASCII    */
	char su_country[3];			     /* "" or 2 upper-case
						      * letters (ISO 3166) */
	char su_lang[MSSP_STORE_MAX_LANG + 1];	     /* "" or [a-z]{2,3}
						      * (optionally -XX)    */
	int64_t su_created_ms;
	int64_t su_updated_ms;
};

struct store_device {
	char sd_device_id[MSSP_KEYSTORE_MAX_ID + 1];
	char sd_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	unsigned char sd_auth_spki[MSSP_STORE_MAX_SPKI]; /* device key, SPKI DER */
	size_t sd_auth_spki_len;
	unsigned char sd_e2e_key[32];			  /* SECRET: channel key  */
	char sd_push_token[MSSP_STORE_MAX_PUSH_TOKEN + 1]; /* "" if none          */
	int sd_state;					  /* 1 active, 2 disabled */
	int64_t sd_created_ms;
};

struct store_key {
	char sk_key_id[MSSP_STORE_MAX_KEY_ID + 1];   /* unique; also the
						      * store_tx key_id     */
	char sk_group[MSSP_KEYSTORE_MAX_ID + 1];     /* key group id on the
						      * device (keystore)   */
	char sk_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char sk_device_id[MSSP_KEYSTORE_MAX_ID + 1];
	enum store_key_purpose sk_purpose;
	char sk_profiles[MSSP_STORE_MAX_PROFILES_TEXT + 1]; /* URIs, one space
						      * between each       */
	bool sk_has_pin;			     /* false: click-OK key */
	enum store_key_state sk_state;
	unsigned char sk_cert[MSSP_STORE_MAX_CERT];  /* certificate DER, may
						      * be empty (len 0)    */
	size_t sk_cert_len;
	char sk_cert_serial[MSSP_STORE_MAX_SERIAL + 1]; /* hex, "" if none  */
	/* SHA-256 of the key's canonical SubjectPublicKeyInfo
	 * (pki_keycheck_fingerprint), or all zero when unknown (keys stored
	 * before issue 5).  Non-zero values are UNIQUE across all keys of
	 * all users (a unique index, K-07): a put with a fingerprint another
	 * key has is refused with 407. */
	unsigned char sk_spki_fp[32];
	int64_t sk_created_ms;
	int64_t sk_updated_ms;
};

/* Create or replace (by primary key) a record, committed on return.
 * What is checked (900 for each, a caller bug):
 *   su_msisdn / sd_msisdn / sk_msisdn  "+" and 6..15 digits;
 *   ids (sd_device_id, sk_key_id, sk_group, sk_device_id)  1..max chars
 *     of [A-Za-z0-9._:+@-];
 *   su_name, su_given_name, su_surname  "" or UTF-8 without control
 *     characters;  su_id_number  "" or printable ASCII (0x20..0x7e);
 *     su_country  "" or 2 upper-case letters;  su_lang  "" or [a-z]{2,3}
 *     optionally followed by "-" and 2 upper-case letters;
 *   su_state, sd_state,
 *   sk_state, sk_purpose  in their enumerations;  sd_auth_spki_len
 *   1..MSSP_STORE_MAX_SPKI (not parsed here);  sd_e2e_key not all zero;
 *   sd_push_token  "" or visible ASCII;  sk_profiles  1..n URIs of
 *   visible ASCII, one space between each;  sk_cert_len
 *   0..MSSP_STORE_MAX_CERT;  sk_cert_serial  "" or hex digits;  every
 *   fixed string NUL-terminated inside its array;  now_ms > 0.
 * The *_created_ms / *_updated_ms members are ignored: a new record gets
 * now_ms, a replaced one keeps its creation time (and so its place in
 * store_user_keys) and gets updated_ms = now_ms (a user: max(now_ms,
 * previous + 1), the version of store_user_update below).
 * 101, checked in the same database transaction as the write:
 *   - the user (device, key) or the device (key) does not exist;
 *   - the key's device belongs to another user;
 *   - the device or key exists under another user (records never move
 *     between users);
 *   - a new device beyond MSSP_STORE_MAX_USER_DEVICES or a new key beyond
 *     MSSP_STORE_MAX_USER_KEYS for the user;
 *   - another key of the device already has this sk_group;
 *   - a REVOKED key put back to another state with the same certificate
 *     (a revocation is undone only by a new certificate);
 *   - a key put on a device that was deleted (store_device_delete).
 * 407: a key whose non-zero sk_spki_fp another key (of any user, in any
 * state) has.  A replace writes sk_spki_fp as given (zero: unknown).
 * 900 also for a read-only handle or a database failure. */
int store_user_put(struct store *s, const struct store_user *u, int64_t now_ms,
		   struct store_err *err);
int store_device_put(struct store *s, const struct store_device *d, int64_t now_ms,
		     struct store_err *err);
int store_key_put(struct store *s, const struct store_key *k, int64_t now_ms,
		  struct store_err *err);

/* Compare-and-set changes of an EXISTING user (issue 5 review: a
 * read-modify-write through store_user_put could re-insert a user deleted
 * meanwhile, or put back a state someone else had just changed).
 *
 * The version is su_updated_ms: every write of a user (these two and
 * store_user_put) sets updated_ms = max(now_ms, previous + 1), so it
 * changes on each write even within one millisecond or after a clock
 * step back.  `expect_updated_ms` is the su_updated_ms the caller read,
 * or STORE_USER_ANY (0): no comparison.
 *
 * Neither ever inserts: a user that does not exist (deleted meanwhile)
 * is -1 with 105.  A user whose updated_ms differs from the expected one:
 * -1 with STORE_STATUS_CONFLICT, nothing written (re-read and decide
 * again).  Committed on return; 900 as for store_user_put.
 *
 * store_user_update writes the identity fields only (su_name,
 * su_given_name, su_surname, su_id_number, su_country, su_lang; checked
 * as for store_user_put) and NEVER the state: u->su_state,
 * su_created_ms and su_updated_ms are ignored.  user.update uses it.
 *
 * store_user_set_state writes the state only (and updated_ms).  Setting
 * the current state again succeeds.  Suspend/resume (CAS on what they
 * read) and the key-material scan (STORE_USER_ANY: a suspension for a
 * bad key must not be lost to a concurrent identity edit; a deleted user
 * stays deleted, 105) use it. */
#define STORE_USER_ANY 0
int store_user_update(struct store *s, const struct store_user *u, int64_t expect_updated_ms,
		      int64_t now_ms, struct store_err *err);
int store_user_set_state(struct store *s, const char *msisdn, enum store_user_state st,
			 int64_t expect_updated_ms, int64_t now_ms, struct store_err *err);

/* Lookups.  Unknown user: -1 with 105 UNKNOWN_CLIENT; unknown device or
 * key: -1 with 101.  An identifier that cannot name a record (wrong shape,
 * too long) gets the same not-found answer; a NULL argument is 900.  On
 * any failure `out` is zeroed (wiped, for device records). */
int store_user_get(struct store *s, const char *msisdn, struct store_user *out,
		   struct store_err *err);
int store_device_get(struct store *s, const char *device_id, struct store_device *out,
		     struct store_err *err);
int store_key_get(struct store *s, const char *key_id, struct store_key *out,
		  struct store_err *err);
/* Every key of the user (any state), in creation order, at most `max`
 * (MSSP_STORE_MAX_USER_KEYS is enough: more is refused at put time);
 * *n = the number filled.  Unknown user: -1 with 105 (a known user without
 * keys: 0 with *n = 0).  One consistent read. */
int store_user_keys(struct store *s, const char *msisdn, struct store_key *out, size_t max,
		    size_t *n, struct store_err *err);
/* Every device of the user, in creation order, at most `max`; as above.
 * The records hold secrets: wipe the whole array after use. */
int store_user_devices(struct store *s, const char *msisdn, struct store_device *out,
		       size_t max, size_t *n, struct store_err *err);
/* Change a key's state (revocation, disable), committed on return.
 * Unknown key: 101.  A REVOKED key stays REVOKED: another state is 101
 * (store_key_put with a new certificate re-activates it).  ACTIVE for a
 * key whose device was deleted: 101.  Setting the current state again
 * succeeds (updated_ms = now_ms). */
int store_key_set_state(struct store *s, const char *key_id, enum store_key_state st,
			int64_t now_ms, struct store_err *err);

/* ---- Registry administration (issue 5: the ME) ----------------------- */

/* What store_user_list() selects.  Strings borrowed; NULL or "" = any.
 * Each is checked (900 otherwise, a caller bug: normalise first). */
struct store_user_query {
	const char *uq_msisdn_prefix;  /* "+358470" matches "+35847000001";
					* "+" and 0..15 digits               */
	const char *uq_text;	       /* case-insensitive ASCII substring of
					* name, given name, surname or
					* id_number (LIKE with escaping: the
					* caller's text is never a pattern;
					* '%' and '_' match themselves);
					* UTF-8 without controls, at most
					* MSSP_STORE_MAX_NAME bytes          */
	int uq_state;		       /* 0 any, else enum store_user_state  */
	const char *uq_after;	       /* paging: MSISDNs greater than this
					* (a normalised MSISDN)              */
};
/* Users in MSISDN order, at most `max` (<= MSSP_STORE_MAX_LIST; `out`
 * may be NULL only with max 0), all filters ANDed; `q` NULL = all.
 * *n = the number filled; the next page: uq_after = the last MSISDN.
 * 0, or -1 with 900. */
int store_user_list(struct store *s, const struct store_user_query *q, struct store_user *out,
		    size_t max, size_t *n, struct store_err *err);
/* Delete the user with its devices and keys in one database transaction.
 * Refused with 406 while the user has an outstanding (non-final)
 * transaction; unknown user 105.  Transactions (history) are kept.  The
 * caller revokes certificates first (the store knows no CA). */
int store_user_delete(struct store *s, const char *msisdn, int64_t now_ms,
		      struct store_err *err);
/* Delete one device (its channel key with it); the user's ACTIVE keys on
 * it become DISABLED (REVOKED and DISABLED ones stay as they are, all
 * stay listed as history) in the same database transaction.  Such a key
 * cannot be made ACTIVE again (101) unless a store_key_put moves it to a
 * device of the user.  Unknown or malformed id: 101. */
int store_device_delete(struct store *s, const char *device_id, int64_t now_ms,
			struct store_err *err);
/* Registry counts (one consistent read). */
struct store_counts {
	uint64_t sc_users;
	uint64_t sc_users_suspended;
	uint64_t sc_devices;
	uint64_t sc_keys;
	uint64_t sc_keys_active;
	uint64_t sc_tx_open;	       /* non-final transactions              */
};
int store_counts(struct store *s, struct store_counts *out, struct store_err *err);
/* Every key of every user, in (created, key_id) order, pages of
 * MSSP_STORE_SCAN_BATCH, at most MSSP_STORE_MAX_SCAN: `cb` gets each
 * (borrowed; it may call the store).  The key-material scan and the
 * registered-key set use it.  0, or -1 with 900 (or the callback's stop:
 * 0 as well). */
typedef int (*store_key_cb)(void *arg, const struct store_key *k);
int store_key_scan(struct store *s, store_key_cb cb, void *arg, struct store_err *err);
/* The user's most recent transactions (newest first), at most `max`
 * (<= MSSP_STORE_MAX_LIST), without request/answer/signature.  Fills
 * `out` (each of out[0..max) cleared first, so zeroed or filled records:
 * release with store_tx_clear).  An MSISDN without transactions (unknown,
 * deleted or malformed) gives 0 with *n = 0.  0, or -1 with 900. */
int store_tx_list_user(struct store *s, const char *msisdn, struct store_tx *out, size_t max,
		       size_t *n, struct store_err *err);

/* ---- Records: typed JSON documents for the ME --------------------------
 *
 * APs, accounts, signature and registration profiles, approvals,
 * activation codes and registration jobs are records: a kind, a name
 * unique within the kind, an optional owner (an MSISDN: list by owner), a
 * kind-defined integer state, a version for compare-and-set, optional
 * expiry, and a JSON body that roles/reg.c defines and validates (the
 * store checks only that it is a JSON object).  Every write of a kind
 * increments that kind's generation in the same database transaction,
 * so another process sees "something changed" with one read
 * (store_rec_generation: the AE's AP table).
 *
 * Record strings: sr_kind 1..MSSP_STORE_MAX_KIND chars of [a-z_];
 * sr_name 1..MSSP_STORE_MAX_REC_NAME bytes of visible ASCII (0x21..0x7e);
 * sr_owner "" or the same; sr_body 2..MSSP_STORE_MAX_REC_BODY bytes, a
 * JSON object (900 otherwise: a caller bug).
 */
struct store_rec {
	char sr_kind[MSSP_STORE_MAX_KIND + 1];
	char sr_name[MSSP_STORE_MAX_REC_NAME + 1];
	char sr_owner[MSSP_STORE_MAX_REC_NAME + 1];
	int sr_state;
	uint64_t sr_version;	       /* 1 when created, +1 per put         */
	int64_t sr_created_ms;	       /* set by the store                    */
	int64_t sr_updated_ms;	       /* set by the store                    */
	int64_t sr_expires_ms;	       /* 0: never; kept as given             */
	char *sr_body;		       /* heap, NUL-terminated (store_rec_clear) */
	size_t sr_body_len;
};
void store_rec_clear(struct store_rec *r); /* frees sr_body, zeroes; NULL ok */

#define STORE_REC_NEW 0		       /* expect_version: must not exist      */
#define STORE_REC_ANY UINT64_MAX       /* expect_version: whatever is there   */

/* Create or replace.  `expect_version`: STORE_REC_NEW (the record must
 * not exist), STORE_REC_ANY, or the version the caller read (CAS).  A
 * mismatch is -1 with STORE_STATUS_CONFLICT ("exists" / "changed" /
 * "missing"), checked under the write lock.  The body is borrowed
 * (r->sr_body, r->sr_body_len); sr_version, sr_created_ms and
 * sr_updated_ms are ignored; sr_state is any int; sr_expires_ms >= 0.
 * On success `out` (may be NULL) gets the stored record (with a copy of
 * the body); on failure it is cleared.  `out` may be `r` itself when
 * r->sr_body is the record's own heap body (it is then replaced). */
int store_rec_put(struct store *s, const struct store_rec *r, uint64_t expect_version,
		  int64_t now_ms, struct store_rec *out, struct store_err *err);
/* Not found (also a name that cannot exist): -1 with 101.  `out`
 * cleared first (zeroed or filled).  A bad kind is 900. */
int store_rec_get(struct store *s, const char *kind, const char *name, struct store_rec *out,
		  struct store_err *err);
/* Delete; expect_version as for put (STORE_REC_NEW is 900).  Not found:
 * 101; a version mismatch: STORE_STATUS_CONFLICT. */
int store_rec_delete(struct store *s, const char *kind, const char *name,
		     uint64_t expect_version, int64_t now_ms, struct store_err *err);
/* Records of `kind` in name (byte) order, at most `max` (<=
 * MSSP_STORE_MAX_LIST), filtered by owner (NULL: any; "": the records
 * without an owner) and state (-1: any), names greater than `after`
 * (NULL: from the start).  out[0..max) are cleared first (zeroed or
 * filled records); each filled one gets its body (clear them all).
 * 0, or -1 with 900. */
int store_rec_list(struct store *s, const char *kind, const char *owner, int state,
		   const char *after, struct store_rec *out, size_t max, size_t *n,
		   struct store_err *err);
/* The kind's generation: 0 before its first write, then +1 per put or
 * delete of a record of that kind.  0, or -1 with 900. */
int store_rec_generation(struct store *s, const char *kind, uint64_t *gen,
			 struct store_err *err);

/* ======================================================================
 * Backend interface: for src/store/store*.c only (define
 * STORE_BACKEND_IMPL before including).  store.c validates every argument
 * (lengths, states, the transition table, the fields of a change), holds
 * the handle's mutex around each call and runs the scan loops; a backend
 * does the database work.  Each op returns 0 or -1 with err.  "One
 * committed database transaction" below: SQLite commits a write op with
 * the other writes of its group (it is rolled back alone if it fails).
 * ====================================================================== */
#ifdef STORE_BACKEND_IMPL

struct store_ops {
	const char *so_name;
	/* Open `target` (the URI after the scheme).  Sets *impl. */
	int (*so_open)(const char *target, unsigned flags, void **impl, struct store_err *err);
	void (*so_close)(void *impl);
	int (*so_health)(void *impl, struct store_err *err);
	/* n validated; out cleared by the caller; fills a fresh id. */
	int (*so_create)(void *impl, const struct store_tx_new *n, unsigned flags, int64_t now_ms,
			 struct store_tx *out, struct store_err *err);
	/* Exactly one of ap_id/nonce may be given with id, or nonce alone. */
	int (*so_get)(void *impl, const char *id, const char *ap_id, const char *nonce,
		      unsigned what, struct store_tx *out, struct store_err *err);
	/* from/to legal and chg validated for `to`. */
	int (*so_transition)(void *impl, const char *id, enum store_state from,
			     enum store_state to, const struct store_tx_change *chg,
			     int64_t now_ms, struct store_tx *out, struct store_err *err);
	int (*so_receipt)(void *impl, const char *ap_id, const char *id, const char *receipt,
			  size_t len, int64_t now_ms, struct store_err *err);
	/* Expire at most `max` due transactions in one committed database
	 * transaction; their ids into ids[0..*n). */
	int (*so_expire_batch)(void *impl, int64_t now_ms, size_t max,
			       char (*ids)[STORE_TX_ID_LEN + 1], size_t *n, struct store_err *err);
	/* Ids of non-final transactions after (after_ms, after_id) in
	 * (created_ms, id) order, at most `max`, with their created_ms. */
	int (*so_open_page)(void *impl, int64_t after_ms, const char *after_id, size_t max,
			    char (*ids)[STORE_TX_ID_LEN + 1], int64_t *created, size_t *n,
			    struct store_err *err);
	int (*so_count_open)(void *impl, const char *ap_id, uint64_t *n, struct store_err *err);

	/* The user registry.  Records validated by store.c; created/updated
	 * times come from now_ms, never from the record.  A put checks its
	 * rules (user, device, owner, caps) and writes in ONE committed
	 * database transaction.  Lookups fill a zeroed `out`; not found is
	 * 105 (user) or 101 (device, key). */
	int (*so_user_put)(void *impl, const struct store_user *u, int64_t now_ms,
			   struct store_err *err);
	int (*so_device_put)(void *impl, const struct store_device *d, int64_t now_ms,
			     struct store_err *err);
	int (*so_key_put)(void *impl, const struct store_key *k, int64_t now_ms,
			  struct store_err *err);
	int (*so_user_get)(void *impl, const char *msisdn, struct store_user *out,
			   struct store_err *err);
	int (*so_device_get)(void *impl, const char *device_id, struct store_device *out,
			     struct store_err *err);
	int (*so_key_get)(void *impl, const char *key_id, struct store_key *out,
			  struct store_err *err);
	/* Unknown user: 105.  At most `max` records, in creation order. */
	int (*so_user_keys)(void *impl, const char *msisdn, struct store_key *out, size_t max,
			    size_t *n, struct store_err *err);
	int (*so_user_devices)(void *impl, const char *msisdn, struct store_device *out,
			       size_t max, size_t *n, struct store_err *err);
	int (*so_key_set_state)(void *impl, const char *key_id, enum store_key_state st,
				int64_t now_ms, struct store_err *err);
	/* Issue 5 (arguments validated by store.c, `out` arrays zeroed). */
	int (*so_user_list)(void *impl, const struct store_user_query *q, struct store_user *out,
			    size_t max, size_t *n, struct store_err *err);
	int (*so_user_delete)(void *impl, const char *msisdn, int64_t now_ms,
			      struct store_err *err);
	int (*so_device_delete)(void *impl, const char *device_id, int64_t now_ms,
				struct store_err *err);
	int (*so_counts)(void *impl, struct store_counts *out, struct store_err *err);
	/* Keys after (after_ms, after_id) in (created, key_id) order. */
	int (*so_key_page)(void *impl, int64_t after_ms, const char *after_id,
			   struct store_key *out, size_t max, size_t *n, struct store_err *err);
	int (*so_tx_list_user)(void *impl, const char *msisdn, struct store_tx *out, size_t max,
			       size_t *n, struct store_err *err);
	int (*so_rec_put)(void *impl, const struct store_rec *r, uint64_t expect_version,
			  int64_t now_ms, struct store_rec *out, struct store_err *err);
	int (*so_rec_get)(void *impl, const char *kind, const char *name, struct store_rec *out,
			  struct store_err *err);
	int (*so_rec_delete)(void *impl, const char *kind, const char *name,
			     uint64_t expect_version, int64_t now_ms, struct store_err *err);
	int (*so_rec_list)(void *impl, const char *kind, const char *owner, int state,
			   const char *after, struct store_rec *out, size_t max, size_t *n,
			   struct store_err *err);
	int (*so_rec_generation)(void *impl, const char *kind, uint64_t *gen,
				 struct store_err *err);
	/* The user's compare-and-set writes (validated by store.c). */
	int (*so_user_update)(void *impl, const struct store_user *u, int64_t expect_updated_ms,
			      int64_t now_ms, struct store_err *err);
	int (*so_user_set_state)(void *impl, const char *msisdn, enum store_user_state st,
				 int64_t expect_updated_ms, int64_t now_ms,
				 struct store_err *err);
	/* Roaming (issue 6): id well-formed, peer_trans_id validated; the
	 * outcomes of store_tx_set_peer_trans_id, decided under the write
	 * lock. */
	int (*so_set_peer_trans_id)(void *impl, const char *id, const char *peer_trans_id,
				    int64_t now_ms, struct store_err *err);
};

extern const struct store_ops store_sqlite_ops;

/* Group commit of the SQLite backend, process-wide counters (tests,
 * benchmarks; docs/internals/store.md "Group commit"): COMMITs done by the
 * writer threads, write operations they contained, and COMMITs that
 * failed (every operation of such a group answered 900). */
struct store_sqlite_stats {
	uint64_t ss_commits;
	uint64_t ss_writes;
	uint64_t ss_failed_commits;
};
void store_sqlite_stats(struct store_sqlite_stats *out);
/* TEST HOOK: the next `n` group COMMITs of this process fail (SQLite's
 * commit hook turns them into a rollback).  0 disarms it.  Never called by
 * the programs. */
void store_sqlite_test_fail_commits(unsigned n);

/* Shared helpers for backends. */
int store_new_trans_id(char id[STORE_TX_ID_LEN + 1], struct store_err *err);
/* Copy `len` bytes into a new NUL-terminated heap string. */
char *store_memdup0(const void *p, size_t len);

#endif /* STORE_BACKEND_IMPL */

#endif
