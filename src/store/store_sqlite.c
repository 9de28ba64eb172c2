/*
 * store_sqlite.c - the SQLite backend of store.h.
 *
 * One connection per handle for the reads.  Settings (stack.md section 5):
 * WAL journal, synchronous=FULL (a commit is fsync'd before it returns:
 * NORMAL could lose the last commits on power loss), busy_timeout,
 * foreign_keys=ON, trusted_schema=OFF, STRICT tables, every data statement
 * prepared once at open.  Correctness rules are in the schema (unique
 * indexes, CHECKs, triggers), so a second node or a manual edit cannot
 * break them either.
 *
 * Writes: GROUP COMMIT.  SQLite admits one writer at a time and every
 * commit costs one WAL fsync, so one commit per write capped the whole
 * process at about 1/fsync writes per second however many threads wrote.
 * Every write of every read-write handle on one database file in this
 * process therefore goes through ONE writer: one connection and one queue
 * (struct sl_writer, shared through a registry keyed by the file's
 * canonical path, counted by the handles).  A caller queues its operation
 * as a closure; the caller at the head of the queue, when no group is
 * running, is the LEADER (no thread of our own: a lone writer runs its
 * operation itself, without a hand-off).  The leader takes what is queued
 * (at most MSSP_STORE_GROUP_MAX), opens ONE "BEGIN IMMEDIATE" (the write
 * lock first: checks inside see the state the writes apply to), runs each
 * operation inside its own SAVEPOINT (a refused one - 101, 406, CONFLICT,
 * ... - is rolled back alone), COMMITs once (one fsync), and only then
 * wakes the others: nobody is told "done" before the commit is durable
 * (P-18).  If the COMMIT fails, nothing of the group is committed and
 * every operation of it fails with 900.  Writes arriving during a commit
 * form the next group: the slower the disk, the larger the groups.
 *
 * Arguments were validated by store.c; this file trusts their shape.
 */
#define STORE_BACKEND_IMPL
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#define SL_SCHEMA_VERSION 4

/* The database's view of "outstanding": the partial indexes and the
 * queries must spell it the same way for the planner to use them. */
#define SL_OPEN "('ACCEPTED','PROMPT_SENT','ANSWERED')"
#define SL_DUE "('ACCEPTED','PROMPT_SENT')"
#define SL_FINAL "('COMPLETED','EXPIRED','FAILED')"

/* Migrations: entry i brings the schema from version i to i + 1.  Append
 * only; never edit a released entry. */
static const char *const migrations[SL_SCHEMA_VERSION] = {
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
	" CHECK ((state IN " SL_FINAL ") = (status <> 0)),"
	" CHECK (state <> 'EXPIRED' OR status = 208),"
	" CHECK (state NOT IN ('PROMPT_SENT','ANSWERED') OR nonce IS NOT NULL),"
	" CHECK (state <> 'ANSWERED' OR answer IS NOT NULL),"
	" CHECK (status NOT IN (500, 502) OR signature IS NOT NULL)"
	") STRICT;"
	/* A-22: one outstanding request per user and key, by the database */
	"CREATE UNIQUE INDEX tx_one_outstanding ON tx (msisdn, key_id)"
	" WHERE state IN " SL_OPEN ";"
	"CREATE INDEX tx_due ON tx (deadline_ms) WHERE state IN " SL_DUE ";"
	"CREATE INDEX tx_open_ap ON tx (ap_id) WHERE state IN " SL_OPEN ";"
	"CREATE INDEX tx_open_age ON tx (created_ms, mssp_trans_id) WHERE state IN " SL_OPEN ";"
	/* The transition table of store.c, again in the database. */
	"CREATE TRIGGER tx_final_frozen BEFORE UPDATE ON tx"
	" WHEN OLD.state IN " SL_FINAL
	" BEGIN SELECT RAISE(ABORT, 'final transaction is immutable'); END;"
	"CREATE TRIGGER tx_transition BEFORE UPDATE OF state ON tx"
	" WHEN NEW.state <> OLD.state AND NOT ("
	"  (OLD.state = 'ACCEPTED' AND NEW.state IN ('PROMPT_SENT','EXPIRED','FAILED')) OR"
	"  (OLD.state = 'PROMPT_SENT' AND NEW.state IN ('ANSWERED','EXPIRED','FAILED')) OR"
	"  (OLD.state = 'ANSWERED' AND NEW.state IN ('COMPLETED','FAILED')))"
	" BEGIN SELECT RAISE(ABORT, 'illegal state transition'); END;"
	"CREATE TRIGGER tx_keep_open BEFORE DELETE ON tx"
	" WHEN OLD.state IN " SL_OPEN
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
	/* 3: the ME (issue 5).  Users get their identity data (NULL = "":
	 * rows of version 2 stay valid as they are).  Keys get the SPKI
	 * fingerprint, unique where known (K-07), and outlive a deleted
	 * device as DISABLED history (certificate list, transactions' key
	 * ids): the composite foreign key to devices cannot allow that, so
	 * the table is rebuilt (rowids kept: they break creation-time ties)
	 * and "a key is on a device of its user" becomes triggers: checked
	 * when a key is added, moved or activated, and a device with an
	 * ACTIVE key cannot be deleted.  Records: the ME's typed JSON
	 * documents, and a generation per kind bumped by every write. */
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
	") STRICT;",
	/* 4: roaming (issue 6, docs/internals/mesh.md).  A roamed
	 * transaction names the peer MSSP it is forwarded to ('' = handled
	 * here: every older row) and, once the peer answered, the peer's
	 * MSSP_TransID.  The peer is fixed at creation; the peer's id is
	 * written once, only for a roamed transaction (R-07: a notification
	 * is matched against it, so it must not be replaced).  No index: a
	 * roamed transaction is found by our own MSSP_TransID. */
	"ALTER TABLE tx ADD COLUMN peer TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tx ADD COLUMN peer_trans_id TEXT NOT NULL DEFAULT ''"
	" CHECK (peer_trans_id = '' OR peer <> '');"
	"CREATE TRIGGER tx_peer_fixed BEFORE UPDATE OF peer ON tx"
	" WHEN NEW.peer <> OLD.peer"
	" BEGIN SELECT RAISE(ABORT, 'the peer of a transaction is fixed'); END;"
	"CREATE TRIGGER tx_peer_trans_id_once BEFORE UPDATE OF peer_trans_id ON tx"
	" WHEN OLD.peer_trans_id <> '' AND NEW.peer_trans_id <> OLD.peer_trans_id"
	" BEGIN SELECT RAISE(ABORT, 'the peer transaction id is set'); END;",
};

/* The record columns, in the order row_to_tx() reads them.  ?9 selects the
 * large columns (CASE is evaluated lazily: an unasked blob is never read). */
#define TX_COLS                                                                        \
	"t.mssp_trans_id, t.ap_id, t.ap_trans_id, t.content_hash, t.msisdn, t.key_id,"  \
	" t.mode, t.state, t.status, t.created_ms, t.deadline_ms, t.updated_ms,"        \
	" t.notify_url, t.nonce, t.prompt_ms, t.answer_ms, t.signature, t.profile,"     \
	" t.detail, t.final_ms, r.created_ms,"                                         \
	" CASE WHEN ?9 & 1 THEN t.request END, CASE WHEN ?9 & 2 THEN t.answer END,"    \
	" t.peer, t.peer_trans_id"                                                     \
	" FROM tx t LEFT JOIN receipt r ON r.mssp_trans_id = t.mssp_trans_id"

/* Registry record columns, in the order row_to_device() / row_to_key()
 * read them. */
#define DEV_COLS                                                                       \
	"d.device_id, d.msisdn, d.auth_spki, d.e2e_key, d.push_token, d.state,"         \
	" d.created_ms"
#define KEY_COLS                                                                       \
	"k.key_id, k.key_group, k.msisdn, k.device_id, k.purpose, k.profiles, k.has_pin," \
	" k.state, k.cert, k.cert_serial, k.created_ms, k.updated_ms, k.spki_fp"
/* ... and row_to_user() / row_to_rec(). */
#define USER_COLS                                                                      \
	"msisdn, state, name, created_ms, updated_ms, given_name, surname, id_number,"  \
	" country, lang"
#define REC_COLS "kind, name, owner, state, version, created, updated, expires, body"
/* records of a kind in name order, after a name, at most ?3 */
#define REC_LIST(filter)                                                               \
	"SELECT " REC_COLS " FROM records WHERE kind = ?1 AND name > ?2" filter            \
	" ORDER BY name LIMIT ?3"

enum sl_stmt {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_INSERT,
	S_BY_APTRANS,
	S_OPEN_BY_USER,
	S_PREEMPT,
	S_GET_ID,
	S_GET_AP,
	S_GET_NONCE,
	S_UPDATE,
	S_EXPIRE,
	S_OPEN_PAGE,
	S_COUNT_OPEN,
	S_RECEIPT,
	S_VERSION,
	S_USER_PUT,
	S_DEVICE_CTX,
	S_DEVICE_PUT,
	S_KEY_CTX,
	S_KEY_PUT,
	S_USER_GET,
	S_DEVICE_GET,
	S_KEY_GET,
	S_USER_DEVICES,
	S_USER_KEYS,
	S_KEY_STATE,
	/* Prepared on first use (sl_stmt): the ME's statements, which most
	 * connections never run.  Preparing them at every open doubled the
	 * time an open takes (their triggers and foreign keys compile in). */
	S_LAZY_FIRST,
	S_USER_LIST = S_LAZY_FIRST,
	S_USER_DEL_CTX,
	S_USER_DEL_KEYS,
	S_USER_DEL_DEVICES,
	S_USER_DEL,
	S_DEVICE_OWNER,
	S_DEVICE_DISABLE_KEYS,
	S_DEVICE_DEL,
	S_COUNTS,
	S_KEY_PAGE,
	S_TX_LIST_USER,
	S_REC_GET,
	S_REC_VERSION,
	S_REC_INSERT,
	S_REC_UPDATE,
	S_REC_DELETE,
	S_REC_GEN_BUMP,
	S_REC_GEN,
	S_REC_LIST_ANY,
	S_REC_LIST_OWNER,
	S_REC_LIST_STATE,
	S_REC_LIST_BOTH,
	S_USER_VERSION,
	S_USER_UPDATE,
	S_USER_STATE,
	S_PEER_TRANS,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	/* one operation of a group (the writer's transaction) */
	[S_SAVEPOINT] = "SAVEPOINT op",
	[S_RELEASE] = "RELEASE op",
	[S_ROLLBACK_TO] = "ROLLBACK TO op",
	[S_INSERT] = "INSERT INTO tx (mssp_trans_id, ap_id, ap_trans_id, content_hash, msisdn,"
		     " key_id, mode, state, status, created_ms, deadline_ms, updated_ms,"
		     " notify_url, request, peer)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ACCEPTED', 0, ?8, ?9, ?8, ?10, ?11,"
		     " coalesce(?12, ''))",
	[S_BY_APTRANS] = "SELECT mssp_trans_id, content_hash FROM tx"
			 " WHERE ap_id = ?1 AND ap_trans_id = ?2",
	[S_OPEN_BY_USER] = "SELECT mssp_trans_id, state FROM tx"
			   " WHERE msisdn = ?1 AND key_id = ?2 AND state IN " SL_OPEN,
	[S_PREEMPT] = "UPDATE tx SET state = 'FAILED', status = 401,"
		      " detail = 'cancelled by a newer request', updated_ms = ?2, final_ms = ?2"
		      " WHERE mssp_trans_id = ?1 AND state IN " SL_DUE,
	[S_GET_ID] = "SELECT " TX_COLS " WHERE t.mssp_trans_id = ?1",
	[S_GET_AP] = "SELECT " TX_COLS " WHERE t.mssp_trans_id = ?1 AND t.ap_id = ?2",
	[S_GET_NONCE] = "SELECT " TX_COLS " WHERE t.nonce = ?1",
	/* the compare-and-set: WHERE state = from (and the deadline) */
	[S_UPDATE] = "UPDATE tx SET state = ?3, updated_ms = ?4, status = ?5,"
		     " nonce = coalesce(?6, nonce),"
		     " prompt_ms = CASE WHEN ?6 IS NOT NULL THEN ?4 ELSE prompt_ms END,"
		     " answer = coalesce(?7, answer),"
		     " answer_ms = CASE WHEN ?7 IS NOT NULL THEN ?4 ELSE answer_ms END,"
		     " signature = ?8, profile = ?9, detail = ?10,"
		     " final_ms = CASE WHEN ?5 <> 0 THEN ?4 END"
		     " WHERE mssp_trans_id = ?1 AND state = ?2 AND (?11 = 0 OR deadline_ms > ?4)",
	[S_EXPIRE] = "UPDATE tx SET state = 'EXPIRED', status = 208, detail = 'deadline reached',"
		     " updated_ms = ?1, final_ms = ?1"
		     " WHERE mssp_trans_id IN (SELECT mssp_trans_id FROM tx"
		     "  WHERE state IN " SL_DUE " AND deadline_ms <= ?1"
		     "  ORDER BY deadline_ms LIMIT ?2)"
		     " RETURNING mssp_trans_id",
	[S_OPEN_PAGE] = "SELECT mssp_trans_id, created_ms FROM tx WHERE state IN " SL_OPEN
			" AND (created_ms, mssp_trans_id) > (?1, ?2)"
			" ORDER BY created_ms, mssp_trans_id LIMIT ?3",
	[S_COUNT_OPEN] = "SELECT count(*) FROM tx WHERE ap_id = ?1 AND state IN " SL_OPEN,
	[S_RECEIPT] = "INSERT INTO receipt (mssp_trans_id, message, created_ms) VALUES (?1, ?2, ?3)",
	[S_VERSION] = "SELECT max(version) FROM schema_version",
	/* The registry.  A replace keeps created_ms (and so the order of
	 * store_user_keys); the owner is never updated (see the triggers). */
	[S_USER_PUT] = "INSERT INTO users (msisdn, state, name, created_ms, updated_ms,"
		       " given_name, surname, id_number, country, lang)"
		       " VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)"
		       " ON CONFLICT (msisdn) DO UPDATE SET"
		       " state = excluded.state, name = excluded.name,"
		       " updated_ms = max(excluded.updated_ms, users.updated_ms + 1),"
		       " given_name = excluded.given_name,"
		       " surname = excluded.surname, id_number = excluded.id_number,"
		       " country = excluded.country, lang = excluded.lang",
	/* what a device put must know, read under the write lock */
	[S_DEVICE_CTX] = "SELECT EXISTS (SELECT 1 FROM users WHERE msisdn = ?1),"
			 " (SELECT msisdn FROM devices WHERE device_id = ?2),"
			 " (SELECT count(*) FROM devices WHERE msisdn = ?1)",
	[S_DEVICE_PUT] = "INSERT INTO devices (device_id, msisdn, auth_spki, e2e_key, push_token,"
			 " state, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
			 " ON CONFLICT (device_id) DO UPDATE SET auth_spki = excluded.auth_spki,"
			 " e2e_key = excluded.e2e_key, push_token = excluded.push_token,"
			 " state = excluded.state, updated_ms = excluded.updated_ms"
			 " WHERE devices.msisdn = excluded.msisdn",
	[S_KEY_CTX] = "SELECT EXISTS (SELECT 1 FROM users WHERE msisdn = ?1),"
		      " (SELECT msisdn FROM devices WHERE device_id = ?2),"
		      " (SELECT msisdn FROM keys WHERE key_id = ?3),"
		      " (SELECT count(*) FROM keys WHERE msisdn = ?1),"
		      " EXISTS (SELECT 1 FROM keys WHERE spki_fp = ?4 AND key_id <> ?3)",
	[S_KEY_PUT] = "INSERT INTO keys (key_id, key_group, msisdn, device_id, purpose, profiles,"
		      " has_pin, state, cert, cert_serial, created_ms, updated_ms, spki_fp)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)"
		      " ON CONFLICT (key_id) DO UPDATE SET key_group = excluded.key_group,"
		      " device_id = excluded.device_id, purpose = excluded.purpose,"
		      " profiles = excluded.profiles, has_pin = excluded.has_pin,"
		      " state = excluded.state, cert = excluded.cert,"
		      " cert_serial = excluded.cert_serial, updated_ms = excluded.updated_ms,"
		      " spki_fp = excluded.spki_fp"
		      " WHERE keys.msisdn = excluded.msisdn",
	[S_USER_GET] = "SELECT " USER_COLS " FROM users WHERE msisdn = ?1",
	[S_DEVICE_GET] = "SELECT " DEV_COLS " FROM devices d WHERE d.device_id = ?1",
	[S_KEY_GET] = "SELECT " KEY_COLS " FROM keys k WHERE k.key_id = ?1",
	/* one statement, one snapshot: a row with NULLs = a user without any */
	[S_USER_DEVICES] = "SELECT " DEV_COLS " FROM users u LEFT JOIN devices d"
			   " ON d.msisdn = u.msisdn WHERE u.msisdn = ?1"
			   " ORDER BY d.created_ms, d.rowid",
	[S_USER_KEYS] = "SELECT " KEY_COLS " FROM users u LEFT JOIN keys k"
			" ON k.msisdn = u.msisdn WHERE u.msisdn = ?1"
			" ORDER BY k.created_ms, k.rowid",
	[S_KEY_STATE] = "UPDATE keys SET state = ?2, updated_ms = ?3 WHERE key_id = ?1",
	/* Registry administration.  The search text is a LIKE pattern built
	 * by like_pattern() (the caller's text escaped, between two '%'); the
	 * MSISDN prefix is compared as a string, not a pattern.  NULL: any. */
	[S_USER_LIST] = "SELECT " USER_COLS " FROM users WHERE msisdn > ?1"
			" AND (?2 IS NULL OR substr(msisdn, 1, length(?2)) = ?2)"
			" AND (?3 IS NULL OR name LIKE ?3 ESCAPE '\\'"
			"  OR given_name LIKE ?3 ESCAPE '\\' OR surname LIKE ?3 ESCAPE '\\'"
			"  OR id_number LIKE ?3 ESCAPE '\\')"
			" AND (?4 = 0 OR state = ?4)"
			" ORDER BY msisdn LIMIT ?5",
	[S_USER_DEL_CTX] = "SELECT EXISTS (SELECT 1 FROM users WHERE msisdn = ?1),"
			   " EXISTS (SELECT 1 FROM tx WHERE msisdn = ?1 AND state IN " SL_OPEN ")",
	[S_USER_DEL_KEYS] = "DELETE FROM keys WHERE msisdn = ?1",
	[S_USER_DEL_DEVICES] = "DELETE FROM devices WHERE msisdn = ?1",
	[S_USER_DEL] = "DELETE FROM users WHERE msisdn = ?1",
	[S_DEVICE_OWNER] = "SELECT msisdn FROM devices WHERE device_id = ?1",
	[S_DEVICE_DISABLE_KEYS] = "UPDATE keys SET state = 3, updated_ms = ?2"
				  " WHERE device_id = ?1 AND msisdn = ?3 AND state = 1",
	[S_DEVICE_DEL] = "DELETE FROM devices WHERE device_id = ?1",
	/* one statement: one snapshot */
	[S_COUNTS] = "SELECT (SELECT count(*) FROM users),"
		     " (SELECT count(*) FROM users WHERE state = 2),"
		     " (SELECT count(*) FROM devices), (SELECT count(*) FROM keys),"
		     " (SELECT count(*) FROM keys WHERE state = 1),"
		     " (SELECT count(*) FROM tx WHERE state IN " SL_OPEN ")",
	[S_KEY_PAGE] = "SELECT " KEY_COLS " FROM keys k WHERE (k.created_ms, k.key_id) > (?1, ?2)"
		       " ORDER BY k.created_ms, k.key_id LIMIT ?3",
	[S_TX_LIST_USER] = "SELECT " TX_COLS " WHERE t.msisdn = ?1"
			   " ORDER BY t.created_ms DESC, t.mssp_trans_id DESC LIMIT ?2",
	/* Records. */
	[S_REC_GET] = "SELECT " REC_COLS " FROM records WHERE kind = ?1 AND name = ?2",
	[S_REC_VERSION] = "SELECT version FROM records WHERE kind = ?1 AND name = ?2",
	[S_REC_INSERT] = "INSERT INTO records (kind, name, owner, state, version, created, updated,"
			 " expires, body) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6, ?7)",
	[S_REC_UPDATE] = "UPDATE records SET owner = ?3, state = ?4, version = version + 1,"
			 " updated = ?5, expires = ?6, body = ?7"
			 " WHERE kind = ?1 AND name = ?2 AND version = ?8",
	[S_REC_DELETE] = "DELETE FROM records WHERE kind = ?1 AND name = ?2 AND version = ?3",
	[S_REC_GEN_BUMP] = "INSERT INTO record_gen (kind, gen) VALUES (?1, 1)"
			   " ON CONFLICT (kind) DO UPDATE SET gen = gen + 1",
	[S_REC_GEN] = "SELECT gen FROM record_gen WHERE kind = ?1",
	[S_REC_LIST_ANY] = REC_LIST(""),
	[S_REC_LIST_OWNER] = REC_LIST(" AND owner = ?4"),
	[S_REC_LIST_STATE] = REC_LIST(" AND state = ?5"),
	[S_REC_LIST_BOTH] = REC_LIST(" AND owner = ?4 AND state = ?5"),
	/* The user's compare-and-set writes (store_user_update,
	 * store_user_set_state): UPDATE only, never an insert, so a user
	 * deleted meanwhile stays deleted; updated_ms moves forward on every
	 * write (max(now, old + 1)) so that it serves as the version. */
	[S_USER_VERSION] = "SELECT updated_ms FROM users WHERE msisdn = ?1",
	/* the parameters of S_USER_PUT (bind_user_identity), minus ?2 */
	[S_USER_UPDATE] = "UPDATE users SET name = ?3, given_name = ?5, surname = ?6,"
			  " id_number = ?7, country = ?8, lang = ?9,"
			  " updated_ms = max(?4, updated_ms + 1) WHERE msisdn = ?1",
	[S_USER_STATE] = "UPDATE users SET state = ?2, updated_ms = max(?3, updated_ms + 1)"
			 " WHERE msisdn = ?1",
	/* Roaming: the peer's MSSP_TransID, written once (the triggers of
	 * migration 4 hold the same rule), only while the transaction is
	 * open (tx_final_frozen) */
	[S_PEER_TRANS] = "UPDATE tx SET peer_trans_id = ?2, updated_ms = ?3"
			 " WHERE mssp_trans_id = ?1 AND peer <> '' AND peer_trans_id = ''"
			 " AND state IN " SL_OPEN,
};

struct sl_writer;

struct sl {
	sqlite3 *sl_db;
	sqlite3_stmt *sl_st[S_COUNT];
	unsigned sl_flags;
	bool sl_broken;		/* lost the database: reconnect first      */
	bool sl_is_writer;	/* the connection of a writer (group commit) */
	int64_t sl_retry_at;	/* CLOCK_MONOTONIC ms of the next attempt  */
	unsigned sl_backoff_ms;
	struct sl_writer *sl_writer; /* a handle's writer; NULL: read-only
				 * handle, or the writer's own connection   */
	char sl_path[PATH_MAX > MSSP_STORE_MAX_URI ? PATH_MAX : MSSP_STORE_MAX_URI + 1];
};

static const char *const db_states[STORE_ST_COUNT] = {
	[STORE_ST_ACCEPTED] = "ACCEPTED",   [STORE_ST_PROMPT_SENT] = "PROMPT_SENT",
	[STORE_ST_ANSWERED] = "ANSWERED",   [STORE_ST_COMPLETED] = "COMPLETED",
	[STORE_ST_EXPIRED] = "EXPIRED",	    [STORE_ST_FAILED] = "FAILED",
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- group commit counters and the test hook -------------------------------- */

/* Process-wide, for tests and benchmarks (store_sqlite_stats). */
static atomic_uint_fast64_t stat_commits, stat_ops, stat_failed;
/* store_sqlite_test_fail_commits: COMMITs still to refuse. */
static atomic_uint fail_commits;

void
store_sqlite_stats(struct store_sqlite_stats *out)
{
	out->ss_commits = atomic_load(&stat_commits);
	out->ss_writes = atomic_load(&stat_ops);
	out->ss_failed_commits = atomic_load(&stat_failed);
}

void
store_sqlite_test_fail_commits(unsigned n)
{
	atomic_store(&fail_commits, n);
}

/* The commit hook of writer connections: non-zero turns the COMMIT into a
 * ROLLBACK (SQLITE_CONSTRAINT_COMMITHOOK), the real failure path of a
 * group.  Zero unless a test armed it. */
static int
sl_commit_hook(void *arg)
{
	unsigned n = atomic_load(&fail_commits);

	(void)arg;
	while (n > 0)
		if (atomic_compare_exchange_weak(&fail_commits, &n, n - 1))
			return 1;
	return 0;
}

/* ---- errors -------------------------------------------------------------- */

/* Does this result mean the database itself is gone or unusable, so that
 * the connection must be rebuilt? */
static bool
rc_unavailable(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return true;
	default:
		return false;
	}
}

/* Every database failure is 900 (F-02, F-05); the detail names the class
 * with SQLite's generic text, never data. */
static int
sl_fail(struct sl *sl, int rc, struct store_err *err, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return store_err_set(err, 900, "database busy (%s)", what);
	case SQLITE_FULL:
		return store_err_set(err, 900, "database full (%s)", what);
	case SQLITE_NOMEM:
		return store_err_set(err, 900, "out of memory (%s)", what);
	default:
		break;
	}
	if (rc_unavailable(rc)) {
		sl->sl_broken = true;
		sl->sl_retry_at = mono_ms() + sl->sl_backoff_ms;
		return store_err_set(err, 900, "database unavailable (%s: %s)", what,
				     sqlite3_errstr(rc));
	}
	return store_err_set(err, 900, "database error (%s: %s)", what, sqlite3_errstr(rc));
}

/* ---- connection ------------------------------------------------------------ */

static void
sl_disconnect(struct sl *sl)
{
	size_t i;
	int persist = 1;

	for (i = 0; i < S_COUNT; i++) {
		sqlite3_finalize(sl->sl_st[i]);
		sl->sl_st[i] = NULL;
	}
	if (sl->sl_db != NULL && sl->sl_broken) {
		/* The file we hold may be unlinked and another one (a restored
		 * copy) may sit at the path now.  A normal last close would
		 * checkpoint and then unlink "<path>-wal" and "-shm" BY NAME,
		 * i.e. the new database's: close without either. */
		sqlite3_db_config(sl->sl_db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		sqlite3_file_control(sl->sl_db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	}
	if (sl->sl_db != NULL)
		sqlite3_close_v2(sl->sl_db);
	sl->sl_db = NULL;
}

/* One-row, one-column pragma or query; its text into `buf`. */
static int
sl_query_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc;

	buf[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t = sqlite3_column_text(st, 0);
		snprintf(buf, len, "%s", t ? (const char *)t : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* Make the file ourselves with mode 0600 (request documents and MSISDNs
 * are personal data; SQLite would use 0644), and make its directory entry
 * durable.  SQLite gives -wal and -shm the database file's mode. */
static int
sl_create_file(const char *path, struct store_err *err)
{
	char dir[MSSP_STORE_MAX_URI + 1];
	int fd, dfd, rc = -1;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		return store_err_set(err, 900, "cannot create the database file");
	}
	if (fsync(fd) != 0) {
		store_err_set(err, 900, "cannot create the database file");
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		if (dfd >= 0)
			close(dfd);
		store_err_set(err, 900, "cannot sync the database directory");
		goto out;
	}
	close(dfd);
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Read the schema version without writing anything: -1 for a database
 * without our schema_version table; *ntables counts all tables. */
static int
sl_version(struct sl *sl, long *version, int *ntables, struct store_err *err)
{
	sqlite3_stmt *st = NULL;
	char buf[32];
	int rc, has_version = 0;

	*version = -1;
	*ntables = 0;
	rc = sqlite3_prepare_v2(sl->sl_db,
				"SELECT count(*), count(*) FILTER (WHERE name = 'schema_version')"
				" FROM sqlite_schema WHERE type = 'table'",
				-1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ntables = sqlite3_column_int(st, 0);
		has_version = sqlite3_column_int(st, 1);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK && has_version) {
		rc = sl_query_text(sl->sl_db, "SELECT max(version) FROM schema_version", buf,
				   sizeof(buf));
		*version = strtol(buf, NULL, 10);
	}
	if (rc != SQLITE_OK)
		return sl_fail(sl, rc, err, "open");
	return 0;
}

/* Is this a database we may use (before anything is written to it)? */
static int
sl_inspect(struct sl *sl, long *version, struct store_err *err)
{
	int ntables;

	if (sl_version(sl, version, &ntables, err) != 0)
		return -1;
	if (*version < 0) {
		/* Never adopt someone else's database, and never initialise
		 * one that should exist (a lost file is not an empty one). */
		if (ntables > 0)
			return store_err_set(err, 900, "not an OpenMSSP database");
		if (!(sl->sl_flags & STORE_OPEN_CREATE))
			return store_err_set(err, 900,
					     "database not initialised (msspd init creates it)");
		*version = 0;
	}
	if (*version > SL_SCHEMA_VERSION)
		return store_err_set(err, 900, "database schema %ld is newer than this program (%d)",
				     *version, SL_SCHEMA_VERSION);
	if ((sl->sl_flags & STORE_OPEN_READONLY) && *version != SL_SCHEMA_VERSION)
		return store_err_set(err, 900, "database schema %ld is outdated: open it read-write",
				     *version);
	return 0;
}

/* Bring the schema to SL_SCHEMA_VERSION in one transaction (another node
 * may be doing the same: the version is read again under the lock). */
static int
sl_migrate(struct sl *sl, struct store_err *err)
{
	sqlite3 *db = sl->sl_db;
	long version;
	int rc, i, ntables, ret = -1;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sl_fail(sl, rc, err, "migration");
	if (sl_version(sl, &version, &ntables, err) != 0)
		goto out;
	if (version < 0) {
		if (ntables > 0) {
			store_err_set(err, 900, "not an OpenMSSP database");
			goto out;
		}
		rc = sqlite3_exec(db,
				  "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY,"
				  " applied_ms INTEGER NOT NULL) STRICT",
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "migration");
			goto out;
		}
		version = 0;
	}
	if (version > SL_SCHEMA_VERSION) {
		store_err_set(err, 900, "database schema %ld is newer than this program (%d)",
			      version, SL_SCHEMA_VERSION);
		goto out;
	}
	for (i = (int)version; i < SL_SCHEMA_VERSION; i++) {
		char ins[96];

		rc = sqlite3_exec(db, migrations[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "migration");
			goto out;
		}
		/* constants only: no input reaches this text */
		snprintf(ins, sizeof(ins), "INSERT INTO schema_version VALUES (%d, %lld)", i + 1,
			 (long long)time(NULL) * 1000);
		rc = sqlite3_exec(db, ins, NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "migration");
			goto out;
		}
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sl_fail(sl, rc, err, "migration");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0 && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

static int
sl_connect(struct sl *sl, struct store_err *err)
{
	char buf[32];
	long version = 0;
	int rc, oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	bool ro = (sl->sl_flags & STORE_OPEN_READONLY) != 0;
	size_t i;

	sl_disconnect(sl);
	if (ro) {
		oflags |= SQLITE_OPEN_READONLY;
	} else {
		oflags |= SQLITE_OPEN_READWRITE;
		if ((sl->sl_flags & STORE_OPEN_CREATE) && sl_create_file(sl->sl_path, err) != 0)
			return -1;
	}
	/* The handle's mutex serialises calls on a handle's connection, being
	 * the leader (w_busy) those on a writer's (NOMUTEX: no second lock;
	 * SQLite allows a connection to move between threads so). */
	rc = sqlite3_open_v2(sl->sl_path, &sl->sl_db, oflags, NULL);
	if (rc != SQLITE_OK) {
		store_err_set(err, 900, "cannot open the database (%s)", sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(sl->sl_db, 1);
	/* Another process's writer may hold the lock: the writer's BEGIN
	 * IMMEDIATE waits for it, as a handle's did before group commit. */
	sqlite3_busy_timeout(sl->sl_db, MSSP_STORE_BUSY_TIMEOUT_MS);
	if (sl->sl_is_writer)
		sqlite3_commit_hook(sl->sl_db, sl_commit_hook, NULL);
	rc = sqlite3_exec(sl->sl_db, "PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sl_fail(sl, rc, err, "open");
		goto fail;
	}
	/* Refuse a foreign, uninitialised or too new database before writing
	 * anything to it (switching to WAL writes the header). */
	if (sl_inspect(sl, &version, err) != 0)
		goto fail;
	if (!ro) {
		/* WAL is persistent in the file; asking again is cheap. */
		rc = sl_query_text(sl->sl_db, "PRAGMA journal_mode = WAL", buf, sizeof(buf));
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "open");
			goto fail;
		}
		if (strcmp(buf, "wal") != 0) {
			store_err_set(err, 900, "cannot switch the database to WAL");
			goto fail;
		}
	} else {
		rc = sqlite3_exec(sl->sl_db, "PRAGMA query_only = ON", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "open");
			goto fail;
		}
	}
	/* FULL: fsync the WAL at every commit ("acknowledged => durable").
	 * Read back, so a build that ignores it cannot go unnoticed. */
	rc = sqlite3_exec(sl->sl_db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sl_query_text(sl->sl_db, "PRAGMA synchronous", buf, sizeof(buf));
	if (rc != SQLITE_OK) {
		sl_fail(sl, rc, err, "open");
		goto fail;
	}
	if (strcmp(buf, "2") != 0) {
		store_err_set(err, 900, "cannot set synchronous=FULL");
		goto fail;
	}
	if (!ro && version < SL_SCHEMA_VERSION && sl_migrate(sl, err) != 0)
		goto fail;
	for (i = 0; i < S_LAZY_FIRST; i++) {
		rc = sqlite3_prepare_v3(sl->sl_db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&sl->sl_st[i], NULL);
		if (rc != SQLITE_OK) {
			sl_fail(sl, rc, err, "prepare");
			goto fail;
		}
	}
	sl->sl_broken = false;
	sl->sl_backoff_ms = MSSP_STORE_REOPEN_MIN_MS;
	return 0;
fail:
	sl_disconnect(sl);
	return -1;
}

/* The database file we hold open: still the one at the path?  (SQLite in
 * WAL mode would go on writing into an unlinked file without an error.) */
static int
sl_check_moved(struct sl *sl, struct store_err *err)
{
	int moved = 0;

	if (sqlite3_file_control(sl->sl_db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
	    moved) {
		sl->sl_broken = true;
		sl->sl_retry_at = mono_ms() + sl->sl_backoff_ms;
		return store_err_set(err, 900, "database unavailable (file moved or removed)");
	}
	return 0;
}

/* Before every operation: reconnect if needed (after the back-off, unless
 * forced), then make sure the file is still in place. */
static int
sl_ready(struct sl *sl, bool force, struct store_err *err)
{
	if (sl->sl_broken) {
		if (!force && mono_ms() < sl->sl_retry_at)
			return store_err_set(err, 900, "database unavailable");
		if (sl_connect(sl, err) != 0) {
			sl->sl_broken = true;
			sl->sl_backoff_ms = sl->sl_backoff_ms * 2 > MSSP_STORE_REOPEN_MAX_MS
						    ? MSSP_STORE_REOPEN_MAX_MS
						    : sl->sl_backoff_ms * 2;
			sl->sl_retry_at = mono_ms() + sl->sl_backoff_ms;
			return store_err_set(err, 900, "database unavailable");
		}
	}
	return sl_check_moved(sl, err);
}

static struct sl_writer *writer_attach(const char *path, unsigned flags,
				       struct store_err *err);
static void writer_detach(struct sl_writer *wr);

static int
sl_open(const char *target, unsigned flags, void **impl, struct store_err *err)
{
	struct sl *sl;

	*impl = NULL;
	if (target[0] == '\0' || strcmp(target, ":memory:") == 0 || target[0] == ':')
		return store_err_set(err, 900, "invalid store URI: a database file path is needed");
	sl = calloc(1, sizeof(*sl));
	if (sl == NULL)
		return store_err_set(err, 900, "out of memory");
	snprintf(sl->sl_path, sizeof(sl->sl_path), "%s", target);
	sl->sl_flags = flags;
	sl->sl_backoff_ms = MSSP_STORE_REOPEN_MIN_MS;
	if (sl_connect(sl, err) != 0) {
		free(sl);
		return -1;
	}
	/* After the connect: the file exists and its schema is current. */
	if (!(flags & STORE_OPEN_READONLY) &&
	    (sl->sl_writer = writer_attach(sl->sl_path, flags, err)) == NULL) {
		sl_disconnect(sl);
		free(sl);
		return -1;
	}
	*impl = sl;
	return 0;
}

static void
sl_close(void *impl)
{
	struct sl *sl = impl;

	if (sl == NULL)
		return;
	if (sl->sl_writer != NULL)
		writer_detach(sl->sl_writer);
	sl_disconnect(sl);
	free(sl);
}

/* ---- statements ------------------------------------------------------------ */

static void
st_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Statement `which`, prepared now if it is one of the lazy ones and was
 * not yet (kept until the connection closes): NULL with 900 on failure. */
static sqlite3_stmt *
sl_stmt(struct sl *sl, enum sl_stmt which, struct store_err *err)
{
	int rc;

	if (sl->sl_st[which] != NULL)
		return sl->sl_st[which];
	if (sl->sl_db == NULL) {
		store_err_set(err, 900, "database unavailable");
		return NULL;
	}
	rc = sqlite3_prepare_v3(sl->sl_db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
				&sl->sl_st[which], NULL);
	if (rc != SQLITE_OK) {
		sl->sl_st[which] = NULL;
		sl_fail(sl, rc, err, "prepare");
		return NULL;
	}
	return sl->sl_st[which];
}

static int
sl_exec(struct sl *sl, enum sl_stmt which, struct store_err *err, const char *what)
{
	sqlite3_stmt *st = sl->sl_st[which];
	int rc = sqlite3_step(st);

	st_done(st);
	if (rc != SQLITE_DONE)
		return sl_fail(sl, rc, err, what);
	return 0;
}

static int
sl_begin(struct sl *sl, struct store_err *err)
{
	return sl_exec(sl, S_BEGIN, err, "begin");
}

/* Commit, then check that what we committed went into the file at the
 * path (else it is not durable where the next open will look: 900). */
static int
sl_commit(struct sl *sl, struct store_err *err)
{
	if (sl_exec(sl, S_COMMIT, err, "commit") != 0)
		return -1;
	return sl_check_moved(sl, err);
}

static void
sl_rollback(struct sl *sl)
{
	if (sl->sl_db != NULL && !sqlite3_get_autocommit(sl->sl_db)) {
		sqlite3_step(sl->sl_st[S_ROLLBACK]);
		st_done(sl->sl_st[S_ROLLBACK]);
	}
}

/* ---- the writer: group commit ------------------------------------------------ */

/* The body of one write operation, run by the writer on its connection
 * `w` inside the group's transaction and its own savepoint: 0, or -1 with
 * err (the writer then rolls back to the savepoint).  It never begins,
 * commits or rolls back the transaction itself. */
typedef int (*sl_op_fn)(struct sl *w, void *arg, struct store_err *err);

/* One queued write: lives on the caller's stack while the caller sleeps. */
struct sl_job {
	sl_op_fn j_run;			/* NULL: a ping (store_health)       */
	void *j_arg;
	int j_rc;
	bool j_done;			/* under w_lock                      */
	struct store_err j_err;
	pthread_cond_t j_cv;		/* its caller sleeps on it           */
	struct sl_job *j_next;
};

/* The writer of one database file: its connection and its queue.  The
 * caller whose job is at the head of the queue while no group runs is the
 * LEADER: it runs the group on w_conn for everyone, then wakes the others
 * and the next head. */
struct sl_writer {
	struct sl_writer *w_next;	/* the registry's list               */
	unsigned w_refs;		/* handles using it (under reg_lock) */
	pthread_mutex_t w_lock;		/* the queue and w_busy              */
	struct sl_job *w_head, *w_tail;	/* waiting, not yet taken            */
	bool w_busy;			/* a leader is running a group       */
	struct sl w_conn;		/* used by the leader of the moment
					 * only (w_busy), by its opener before
					 * and its closer after              */
};

/* Every writer of this process, by canonical path.  Not inherited by a
 * fork child (no leader of them lives there, and their connections are the
 * parent's): reset by reg_atfork_child. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sl_writer *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void
mtx_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		abort(); /* a broken invariant of this process (style habit 15) */
}

static void
mtx_unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		abort();
}

static void
reg_atfork_prepare(void)
{
	mtx_lock(&reg_lock);
}

static void
reg_atfork_parent(void)
{
	mtx_unlock(&reg_lock);
}

/* The child has none of the parent's callers: forget the writers (leaked,
 * never touched: their connections belong to the parent), so that a
 * handle opened in the child gets its own writer. */
static void
reg_atfork_child(void)
{
	reg_head = NULL;
	mtx_unlock(&reg_lock);
}

static void
reg_init(void)
{
	if (pthread_atfork(reg_atfork_prepare, reg_atfork_parent, reg_atfork_child) != 0)
		abort();
}

/* Fail every job of [first, end) that is not a ping, except `keep`, with
 * `e` (900): a group whose transaction did not commit. */
static void
jobs_fail(struct sl_job *first, struct sl_job *end, const struct sl_job *keep,
	  const struct store_err *e)
{
	struct sl_job *j;

	for (j = first; j != NULL && j != end; j = j->j_next) {
		if (j == keep || j->j_run == NULL)
			continue;
		j->j_rc = -1;
		j->j_err.status = 900;
		snprintf(j->j_err.detail, sizeof(j->j_err.detail), "%s", e->detail);
	}
}

/* Run jobs from `first` (pings skipped) in ONE transaction, as many as go
 * before one of them ends the transaction by itself (SQLite rolls a whole
 * transaction back on some errors: full disk, I/O) or breaks the
 * connection.  Returns the first job not run (NULL: all were). */
static struct sl_job *
group_run(struct sl *w, struct sl_job *first)
{
	struct store_err e = { 0 };
	struct sl_job *j, *end = NULL, *culprit = NULL;
	uint_fast64_t n = 0;

	if (sl_ready(w, false, &e) != 0 || sl_begin(w, &e) != 0) {
		jobs_fail(first, NULL, NULL, &e);
		return NULL;
	}
	for (j = first; j != NULL; j = j->j_next) {
		if (j->j_run == NULL)
			continue;
		if (sl_exec(w, S_SAVEPOINT, &e, "savepoint") != 0) {
			culprit = j;
			j->j_rc = -1;
			j->j_err = e;
			end = j->j_next;
			break;
		}
		j->j_rc = j->j_run(w, j->j_arg, &j->j_err);
		n++;
		if (j->j_rc != 0 && !sqlite3_get_autocommit(w->sl_db)) {
			/* this operation only; the group goes on */
			sqlite3_step(w->sl_st[S_ROLLBACK_TO]);
			st_done(w->sl_st[S_ROLLBACK_TO]);
		}
		if (sqlite3_get_autocommit(w->sl_db) || w->sl_broken ||
		    sl_exec(w, S_RELEASE, &e, "savepoint") != 0) {
			/* The transaction is gone, or the connection: what
			 * ran before in it is not committed. */
			culprit = j;
			if (j->j_rc == 0) {
				j->j_rc = -1;
				j->j_err = e;
				if (e.status == 0)
					store_err_set(&j->j_err, 900,
						      "database error (transaction rolled back)");
			}
			end = j->j_next;
			break;
		}
	}
	if (culprit != NULL) {
		sl_rollback(w);
		store_err_set(&e, 900, "database error (group rolled back: %s)", culprit->j_err.detail);
		jobs_fail(first, end, culprit, &e);
		return end;
	}
	/* One COMMIT, one fsync, for the whole group; and the file must still
	 * be the one at the path (else not durable where the next open will
	 * look).  If either fails, nothing of the group counts: every
	 * operation answers 900, even one refused with 101/406 (its refusal
	 * may rest on a write of the group that is now undone). */
	if (sl_commit(w, &e) != 0) {
		sl_rollback(w);
		atomic_fetch_add(&stat_failed, 1);
		jobs_fail(first, NULL, NULL, &e);
		return NULL;
	}
	atomic_fetch_add(&stat_commits, 1);
	atomic_fetch_add(&stat_ops, n);
	return NULL;
}

/* Queue `run(arg)` on the handle's writer and return when it is done: 0,
 * or -1 with err.  The caller either waits for a leader to run it, or
 * becomes the leader itself: takes what is queued (itself first, at most
 * MSSP_STORE_GROUP_MAX), runs it as one group, wakes the others.  Jobs that
 * arrive meanwhile queue up for the next group: the longer a commit takes,
 * the larger the next group.  The handle's mutex (store.c) is held. */
static int
sl_submit(struct sl *sl, sl_op_fn run, void *arg, struct store_err *err)
{
	struct sl_writer *wr = sl->sl_writer;
	struct sl_job j = { .j_run = run, .j_arg = arg };
	struct sl_job *last, *k, *next;
	size_t n;

	if (wr == NULL)
		return store_err_set(err, 900, "store opened read-only");
	if (pthread_cond_init(&j.j_cv, NULL) != 0)
		return store_err_set(err, 900, "cannot create a condition variable");
	mtx_lock(&wr->w_lock);
	if (wr->w_tail != NULL)
		wr->w_tail->j_next = &j;
	else
		wr->w_head = &j;
	wr->w_tail = &j;
	while (!j.j_done && (wr->w_busy || wr->w_head != &j))
		if (pthread_cond_wait(&j.j_cv, &wr->w_lock) != 0)
			abort();
	if (!j.j_done) {
		/* The leader.  Take the group out of the queue, so that new
		 * arrivals link behind an empty queue, not into the group. */
		wr->w_busy = true;
		for (last = &j, n = 1; last->j_next != NULL && n < MSSP_STORE_GROUP_MAX; n++)
			last = last->j_next;
		wr->w_head = last->j_next;
		if (wr->w_head == NULL)
			wr->w_tail = NULL;
		last->j_next = NULL;
		mtx_unlock(&wr->w_lock);

		/* Pings first: a forced reconnect (store_health) also serves
		 * the writes behind it. */
		for (k = &j; k != NULL; k = k->j_next)
			if (k->j_run == NULL)
				k->j_rc = sl_ready(&wr->w_conn, true, &k->j_err);
		for (k = &j; k != NULL;)
			k = group_run(&wr->w_conn, k);

		mtx_lock(&wr->w_lock);
		for (k = j.j_next; k != NULL; k = next) {
			next = k->j_next; /* its caller frees k once woken */
			k->j_done = true;
			if (pthread_cond_signal(&k->j_cv) != 0)
				abort();
		}
		j.j_done = true;
		wr->w_busy = false;
		if (wr->w_head != NULL && pthread_cond_signal(&wr->w_head->j_cv) != 0)
			abort();
	}
	mtx_unlock(&wr->w_lock);
	pthread_cond_destroy(&j.j_cv);
	if (j.j_rc != 0 && err != NULL)
		*err = j.j_err;
	return j.j_rc;
}

static void
writer_free(struct sl_writer *wr)
{
	sl_disconnect(&wr->w_conn);
	pthread_mutex_destroy(&wr->w_lock);
	free(wr);
}

/* The writer of `path` (an existing database file): found by its
 * canonical path, or started.  Counted: writer_detach. */
static struct sl_writer *
writer_attach(const char *path, unsigned flags, struct store_err *err)
{
	char key[PATH_MAX];
	struct sl_writer *wr;

	if (pthread_once(&reg_once, reg_init) != 0)
		abort();
	if (realpath(path, key) == NULL || strlen(key) >= sizeof(wr->w_conn.sl_path)) {
		store_err_set(err, 900, "cannot resolve the database path");
		return NULL;
	}
	mtx_lock(&reg_lock);
	for (wr = reg_head; wr != NULL; wr = wr->w_next)
		if (strcmp(wr->w_conn.sl_path, key) == 0) {
			wr->w_refs++;
			goto out;
		}
	wr = calloc(1, sizeof(*wr));
	if (wr == NULL) {
		store_err_set(err, 900, "out of memory");
		goto out;
	}
	snprintf(wr->w_conn.sl_path, sizeof(wr->w_conn.sl_path), "%s", key);
	/* the database exists and its schema is current: never CREATE here */
	wr->w_conn.sl_flags = flags & ~(unsigned)STORE_OPEN_CREATE;
	wr->w_conn.sl_is_writer = true;
	wr->w_conn.sl_backoff_ms = MSSP_STORE_REOPEN_MIN_MS;
	if (pthread_mutex_init(&wr->w_lock, NULL) != 0) {
		free(wr);
		wr = NULL;
		store_err_set(err, 900, "cannot create a mutex");
		goto out;
	}
	if (sl_connect(&wr->w_conn, err) != 0) {
		writer_free(wr);
		wr = NULL;
		goto out;
	}
	wr->w_refs = 1;
	wr->w_next = reg_head;
	reg_head = wr;
out:
	mtx_unlock(&reg_lock);
	return wr;
}

/* A handle lets go of its writer; the last one closes it.  No job can be
 * queued then: a job belongs to a caller inside a call on an open handle
 * (store_close: "no call on the handle may be running"), and a queued
 * job of another handle keeps that handle, so the writer, alive until a
 * leader ran it. */
static void
writer_detach(struct sl_writer *wr)
{
	struct sl_writer **pp;
	bool last;

	mtx_lock(&reg_lock);
	last = --wr->w_refs == 0;
	if (last)
		for (pp = &reg_head; *pp != NULL; pp = &(*pp)->w_next)
			if (*pp == wr) {
				*pp = wr->w_next;
				break;
			}
	mtx_unlock(&reg_lock);
	if (last)
		writer_free(wr);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Text column into a fixed buffer; -1 if it does not fit (a record no
 * caller could have written: corruption or a manual edit). */
static int
col_text(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	buf[0] = '\0';
	if (t == NULL)
		return 0;
	if (n >= size || memchr(t, '\0', n) != NULL)
		return -1;
	memcpy(buf, t, n + 1);
	return 0;
}

/* Heap copy of a text/blob column (NULL stays NULL); -1 on memory. */
static int
col_dup(sqlite3_stmt *st, int i, size_t max, char **out, size_t *len)
{
	const void *p;
	size_t n;

	*out = NULL;
	*len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	if (n > max)
		return -1;
	*out = store_memdup0(p ? p : "", n);
	if (*out == NULL)
		return -1;
	*len = n;
	return 0;
}

static enum store_state
state_from_text(const unsigned char *t)
{
	int i;

	if (t == NULL)
		return STORE_ST_NONE;
	for (i = 1; i < STORE_ST_COUNT; i++)
		if (strcmp((const char *)t, db_states[i]) == 0)
			return (enum store_state)i;
	return STORE_ST_NONE;
}

static int
row_to_tx(sqlite3_stmt *st, struct store_tx *tx, struct store_err *err)
{
	size_t hl = (size_t)sqlite3_column_bytes(st, 3);
	const void *h = sqlite3_column_blob(st, 3);
	char *answer = NULL;

	store_tx_clear(tx);
	if (col_text(st, 0, tx->tx_id, sizeof(tx->tx_id)) != 0 ||
	    col_text(st, 1, tx->tx_ap_id, sizeof(tx->tx_ap_id)) != 0 ||
	    col_text(st, 2, tx->tx_ap_trans_id, sizeof(tx->tx_ap_trans_id)) != 0 ||
	    hl > sizeof(tx->tx_hash) || h == NULL ||
	    col_text(st, 4, tx->tx_msisdn, sizeof(tx->tx_msisdn)) != 0 ||
	    col_text(st, 5, tx->tx_key_id, sizeof(tx->tx_key_id)) != 0 ||
	    col_text(st, 12, tx->tx_notify_url, sizeof(tx->tx_notify_url)) != 0 ||
	    col_text(st, 13, tx->tx_nonce, sizeof(tx->tx_nonce)) != 0 ||
	    col_text(st, 17, tx->tx_profile, sizeof(tx->tx_profile)) != 0 ||
	    col_text(st, 18, tx->tx_detail, sizeof(tx->tx_detail)) != 0 ||
	    col_text(st, 23, tx->tx_peer, sizeof(tx->tx_peer)) != 0 ||
	    col_text(st, 24, tx->tx_peer_trans_id, sizeof(tx->tx_peer_trans_id)) != 0)
		goto corrupt;
	memcpy(tx->tx_hash, h, hl);
	tx->tx_hash_len = hl;
	tx->tx_mode = (enum store_mode)sqlite3_column_int(st, 6);
	tx->tx_state = state_from_text(sqlite3_column_text(st, 7));
	if (tx->tx_state == STORE_ST_NONE)
		goto corrupt;
	tx->tx_status = sqlite3_column_int(st, 8);
	tx->tx_created_ms = sqlite3_column_int64(st, 9);
	tx->tx_deadline_ms = sqlite3_column_int64(st, 10);
	tx->tx_updated_ms = sqlite3_column_int64(st, 11);
	tx->tx_prompt_ms = sqlite3_column_int64(st, 14);
	tx->tx_answer_ms = sqlite3_column_int64(st, 15);
	tx->tx_final_ms = sqlite3_column_int64(st, 19);
	tx->tx_receipt_ms = sqlite3_column_int64(st, 20);
	if (col_dup(st, 16, MSSP_STORE_MAX_SIGNATURE, &tx->tx_signature, &tx->tx_signature_len) != 0 ||
	    col_dup(st, 21, MSSP_STORE_MAX_REQUEST, &tx->tx_request, &tx->tx_request_len) != 0 ||
	    col_dup(st, 22, MSSP_STORE_MAX_ANSWER, &answer, &tx->tx_answer_len) != 0) {
		free(answer);
		store_tx_clear(tx);
		return store_err_set(err, 900, "cannot load the transaction record");
	}
	tx->tx_answer = (unsigned char *)answer;
	return 0;
corrupt:
	store_tx_clear(tx);
	return store_err_set(err, 900, "corrupt transaction record");
}

/* Read one record: 1 found (tx filled), 0 not found, -1 error. */
static int
sl_read(struct sl *sl, enum sl_stmt which, const char *key, const char *ap_id, unsigned what,
	struct store_tx *tx, struct store_err *err)
{
	sqlite3_stmt *st = sl->sl_st[which];
	int rc, ret;

	bind_text(st, 1, key);
	if (which == S_GET_AP)
		bind_text(st, 2, ap_id);
	sqlite3_bind_int(st, 9, (int)what);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = row_to_tx(st, tx, err) == 0 ? 1 : -1;
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = sl_fail(sl, rc, err, "read");
	st_done(st);
	return ret;
}

/* ---- operations -------------------------------------------------------------- */

static int
sl_health(void *impl, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (sl_ready(sl, true, err) != 0)
		return -1;
	st = sl->sl_st[S_VERSION];
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		sl_fail(sl, rc, err, "health");
	else if (sqlite3_column_int(st, 0) != SL_SCHEMA_VERSION)
		store_err_set(err, 900, "database schema changed under us");
	else
		ret = 0;
	st_done(st);
	/* The writes go through the writer's connection: it must be sound
	 * too (a ping reconnects it at once if it had lost the database). */
	if (ret == 0 && sl->sl_writer != NULL)
		ret = sl_submit(sl, NULL, NULL, err);
	return ret;
}

static int
sl_insert(struct sl *sl, const char *id, const struct store_tx_new *n, int64_t now_ms)
{
	sqlite3_stmt *st = sl->sl_st[S_INSERT];
	int rc;

	bind_text(st, 1, id);
	bind_text(st, 2, n->tn_ap_id);
	bind_text(st, 3, n->tn_ap_trans_id);
	sqlite3_bind_blob(st, 4, n->tn_hash, (int)n->tn_hash_len, SQLITE_STATIC);
	bind_text(st, 5, n->tn_msisdn);
	bind_text(st, 6, n->tn_key_id);
	sqlite3_bind_int(st, 7, (int)n->tn_mode);
	sqlite3_bind_int64(st, 8, now_ms);
	sqlite3_bind_int64(st, 9, n->tn_deadline_ms);
	bind_text(st, 10, n->tn_notify_url);
	sqlite3_bind_blob(st, 11, n->tn_request, (int)n->tn_request_len, SQLITE_STATIC);
	bind_text(st, 12, n->tn_peer);
	rc = sqlite3_step(st);
	st_done(st);
	return rc;
}

/* Who holds (ap_id, ap_trans_id)?  1 found, 0 none, -1 error. */
static int
sl_find_aptrans(struct sl *sl, const struct store_tx_new *n, char id[STORE_TX_ID_LEN + 1],
		bool *same, struct store_err *err)
{
	sqlite3_stmt *st = sl->sl_st[S_BY_APTRANS];
	int rc, ret;

	bind_text(st, 1, n->tn_ap_id);
	bind_text(st, 2, n->tn_ap_trans_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t hl = (size_t)sqlite3_column_bytes(st, 1);
		const void *h = sqlite3_column_blob(st, 1);

		/* the content hash is not a secret: plain comparison */
		*same = h != NULL && hl == n->tn_hash_len && memcmp(h, n->tn_hash, hl) == 0;
		ret = col_text(st, 0, id, STORE_TX_ID_LEN + 1) == 0
			      ? 1
			      : store_err_set(err, 900, "corrupt transaction record");
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = sl_fail(sl, rc, err, "create");
	}
	st_done(st);
	return ret;
}

/* The outstanding transaction of (msisdn, key_id): 1 found, 0, -1. */
static int
sl_find_open_user(struct sl *sl, const struct store_tx_new *n, char id[STORE_TX_ID_LEN + 1],
		  enum store_state *state, struct store_err *err)
{
	sqlite3_stmt *st = sl->sl_st[S_OPEN_BY_USER];
	int rc, ret;

	bind_text(st, 1, n->tn_msisdn);
	bind_text(st, 2, n->tn_key_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = state_from_text(sqlite3_column_text(st, 1));
		ret = col_text(st, 0, id, STORE_TX_ID_LEN + 1) == 0
			      ? 1
			      : store_err_set(err, 900, "corrupt transaction record");
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = sl_fail(sl, rc, err, "create");
	}
	st_done(st);
	return ret;
}

struct create_args {
	const struct store_tx_new *n;
	unsigned flags;
	int64_t now_ms;
	struct store_tx *out;
};

static int
run_create(struct sl *sl, void *arg, struct store_err *err)
{
	const struct create_args *a = arg;
	const struct store_tx_new *n = a->n;
	unsigned flags = a->flags;
	int64_t now_ms = a->now_ms;
	struct store_tx *out = a->out;
	char id[STORE_TX_ID_LEN + 1], other[STORE_TX_ID_LEN + 1];
	char preempted[STORE_TX_ID_LEN + 1] = "";
	enum store_state ostate = STORE_ST_NONE;
	bool same = false, replay = false;
	int attempt, rc, r, ret = -1;

	for (attempt = 0;; attempt++) {
		if (attempt >= MSSP_STORE_ID_RETRIES) {
			store_err_set(err, 900, "cannot allocate a transaction id");
			goto out;
		}
		if (store_new_trans_id(id, err) != 0)
			goto out;
		/* Insert first: the unique indexes decide, and only a refused
		 * insert is classified (under the write lock we hold). */
		rc = sl_insert(sl, id, n, now_ms);
		if (rc == SQLITE_DONE)
			break;
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			continue; /* 2^-128: a fresh id */
		if (rc != SQLITE_CONSTRAINT_UNIQUE) {
			sl_fail(sl, rc, err, "create");
			goto out;
		}
		/* A-01 first: a resend of an outstanding request is a replay */
		r = sl_find_aptrans(sl, n, other, &same, err);
		if (r < 0)
			goto out;
		if (r == 1) {
			if (!same) {
				store_err_set(err, 101, "AP_TransID already used with other content");
				goto out;
			}
			memcpy(id, other, sizeof(id));
			replay = true;
			break;
		}
		r = sl_find_open_user(sl, n, other, &ostate, err);
		if (r < 0)
			goto out;
		if (r == 0) {
			store_err_set(err, 900, "unexpected uniqueness conflict");
			goto out;
		}
		if ((flags & STORE_PREEMPT) && preempted[0] == '\0' &&
		    (ostate == STORE_ST_ACCEPTED || ostate == STORE_ST_PROMPT_SENT)) {
			sqlite3_stmt *st = sl->sl_st[S_PREEMPT];

			bind_text(st, 1, other);
			sqlite3_bind_int64(st, 2, now_ms);
			rc = sqlite3_step(st);
			st_done(st);
			if (rc != SQLITE_DONE) {
				sl_fail(sl, rc, err, "pre-empt");
				goto out;
			}
			if (sqlite3_changes(sl->sl_db) != 1) {
				store_err_set(err, 900, "unexpected pre-emption result");
				goto out;
			}
			memcpy(preempted, other, sizeof(preempted));
			continue;
		}
		store_err_set(err, 406, "another request of this user and key is outstanding");
		goto out;
	}
	r = sl_read(sl, S_GET_ID, id, NULL, 0, out, err);
	if (r <= 0) {
		if (r == 0)
			store_err_set(err, 900, "transaction vanished");
		goto out;
	}
	/* A replay wrote nothing; it is reported after the group's commit
	 * all the same (the record it found may be a write of the group). */
	out->tx_replay = replay;
	memcpy(out->tx_preempted, preempted, sizeof(preempted));
	ret = 0;
out:
	if (ret != 0)
		store_tx_clear(out);
	return ret;
}

static int
sl_create(void *impl, const struct store_tx_new *n, unsigned flags, int64_t now_ms,
	  struct store_tx *out, struct store_err *err)
{
	struct create_args a = { n, flags, now_ms, out };

	if (sl_submit(impl, run_create, &a, err) != 0) {
		store_tx_clear(out);
		return -1;
	}
	return 0;
}

static int
sl_get(void *impl, const char *id, const char *ap_id, const char *nonce, unsigned what,
       struct store_tx *out, struct store_err *err)
{
	struct sl *sl = impl;
	int r;

	if (sl_ready(sl, false, err) != 0)
		return -1;
	if (nonce != NULL)
		r = sl_read(sl, S_GET_NONCE, nonce, NULL, what, out, err);
	else if (ap_id != NULL)
		r = sl_read(sl, S_GET_AP, id, ap_id, what, out, err);
	else
		r = sl_read(sl, S_GET_ID, id, NULL, what, out, err);
	if (r == 0)
		return store_err_set(err, 101, "no such transaction");
	return r == 1 ? 0 : -1;
}

struct transition_args {
	const char *id;
	enum store_state from, to;
	const struct store_tx_change *chg;
	int64_t now_ms;
	struct store_tx *out;
};

static int
run_transition(struct sl *sl, void *arg, struct store_err *err)
{
	static const struct store_tx_change none;
	const struct transition_args *a = arg;
	const char *id = a->id;
	enum store_state from = a->from, to = a->to;
	const struct store_tx_change *c = a->chg ? a->chg : &none;
	int64_t now_ms = a->now_ms;
	struct store_tx *out = a->out;
	sqlite3_stmt *st = sl->sl_st[S_UPDATE];
	bool deadline = to == STORE_ST_PROMPT_SENT || to == STORE_ST_ANSWERED;
	int rc, r, status = c->tc_status;
	bool changed;

	if (to == STORE_ST_EXPIRED)
		status = 208;
	bind_text(st, 1, id);
	bind_text(st, 2, db_states[from]);
	bind_text(st, 3, db_states[to]);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_int(st, 5, status);
	bind_text(st, 6, c->tc_nonce);
	if (c->tc_answer != NULL)
		sqlite3_bind_blob(st, 7, c->tc_answer, (int)c->tc_answer_len, SQLITE_STATIC);
	if (c->tc_signature != NULL)
		sqlite3_bind_text(st, 8, c->tc_signature, (int)c->tc_signature_len, SQLITE_STATIC);
	bind_text(st, 9, c->tc_profile);
	bind_text(st, 10, c->tc_detail);
	sqlite3_bind_int(st, 11, deadline ? 1 : 0);
	rc = sqlite3_step(st);
	st_done(st);
	changed = sqlite3_changes(sl->sl_db) == 1;
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return store_err_set(err, 900, "device nonce already in use");
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return store_err_set(err, 900, "state change refused by the database");
	if (rc != SQLITE_DONE)
		return sl_fail(sl, rc, err, "transition");
	r = sl_read(sl, S_GET_ID, id, NULL, 0, out, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return store_err_set(err, 101, "no such transaction");
	if (!changed || out->tx_state != to) {
		/* The compare failed: say why, with the current record. */
		if (store_state_final(out->tx_state))
			return store_err_set(err, STORE_STATUS_FINAL,
					     "transaction already final (%s)",
					     store_state_name(out->tx_state));
		if (out->tx_state != from)
			return store_err_set(err, STORE_STATUS_CONFLICT, "transaction is %s, not %s",
					     store_state_name(out->tx_state),
					     store_state_name(from));
		return store_err_set(err, STORE_STATUS_PAST_DEADLINE, "deadline reached");
	}
	return 0;
}

static int
sl_transition(void *impl, const char *id, enum store_state from, enum store_state to,
	      const struct store_tx_change *chg, int64_t now_ms, struct store_tx *out,
	      struct store_err *err)
{
	struct transition_args a = { id, from, to, chg, now_ms, out };
	struct store_err e = { 0 };
	int rc = sl_submit(impl, run_transition, &a, &e);

	/* A group that did not commit: the record read in it is not the
	 * database's (store.c keeps `out` only for the store-local codes). */
	if (rc != 0 && e.status == 900)
		store_tx_clear(out);
	if (rc != 0 && err != NULL)
		*err = e;
	return rc;
}

struct peer_trans_args {
	const char *id, *peer_trans_id;
	int64_t now_ms;
};

/* Read, decide, then write under the write lock: the outcome (same value,
 * another value, not roamed, final) is classified on the record as it is
 * in this transaction, so no concurrent writer can slip in between. */
static int
run_peer_trans(struct sl *sl, void *arg, struct store_err *err)
{
	const struct peer_trans_args *a = arg;
	struct store_tx tx;
	sqlite3_stmt *st;
	int rc, r, ret = -1;

	memset(&tx, 0, sizeof(tx));
	r = sl_read(sl, S_GET_ID, a->id, NULL, 0, &tx, err);
	if (r < 0)
		goto out;
	if (r == 0) {
		store_err_set(err, 101, "no such transaction");
		goto out;
	}
	if (tx.tx_peer[0] == '\0') {
		store_err_set(err, 900, "invalid argument: not a roamed transaction");
		goto out;
	}
	if (tx.tx_peer_trans_id[0] != '\0') {
		/* ids, not secrets: a plain comparison */
		if (strcmp(tx.tx_peer_trans_id, a->peer_trans_id) == 0)
			ret = 0; /* the same answer again: nothing to write */
		else
			store_err_set(err, STORE_STATUS_CONFLICT,
				      "another peer transaction id is recorded");
		goto out;
	}
	if (store_state_final(tx.tx_state)) {
		store_err_set(err, STORE_STATUS_FINAL, "transaction already final (%s)",
			      store_state_name(tx.tx_state));
		goto out;
	}
	if ((st = sl_stmt(sl, S_PEER_TRANS, err)) == NULL)
		goto out;
	bind_text(st, 1, a->id);
	bind_text(st, 2, a->peer_trans_id);
	sqlite3_bind_int64(st, 3, a->now_ms);
	rc = sqlite3_step(st);
	st_done(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		store_err_set(err, 900, "change refused by the database");
		goto out;
	}
	if (rc != SQLITE_DONE) {
		sl_fail(sl, rc, err, "peer transaction id");
		goto out;
	}
	if (sqlite3_changes(sl->sl_db) != 1) {
		store_err_set(err, 900, "unexpected peer transaction id result");
		goto out;
	}
	ret = 0;
out:
	store_tx_clear(&tx);
	return ret;
}

static int
sl_set_peer_trans_id(void *impl, const char *id, const char *peer_trans_id, int64_t now_ms,
		     struct store_err *err)
{
	struct peer_trans_args a = { id, peer_trans_id, now_ms };

	return sl_submit(impl, run_peer_trans, &a, err);
}

struct receipt_args {
	const char *ap_id, *id, *receipt;
	size_t len;
	int64_t now_ms;
};

static int
run_receipt(struct sl *sl, void *arg, struct store_err *err)
{
	const struct receipt_args *a = arg;
	const char *ap_id = a->ap_id, *id = a->id, *receipt = a->receipt;
	size_t len = a->len;
	int64_t now_ms = a->now_ms;
	sqlite3_stmt *st = sl->sl_st[S_RECEIPT];
	struct store_tx tx;
	int rc, r, ret = -1;

	memset(&tx, 0, sizeof(tx));
	r = sl_read(sl, S_GET_AP, id, ap_id, 0, &tx, err);
	if (r < 0)
		goto out;
	if (r == 0) {
		if (err != NULL)
			memset(err, 0, sizeof(*err));
		store_err_set(err, 101, "no such transaction");
		goto out;
	}
	if (tx.tx_state != STORE_ST_COMPLETED || (tx.tx_status != 500 && tx.tx_status != 502)) {
		store_err_set(err, 101, "transaction has no signature to acknowledge");
		goto out;
	}
	bind_text(st, 1, id);
	sqlite3_bind_blob(st, 2, receipt, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = sqlite3_step(st);
	st_done(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		store_err_set(err, 101, "Receipt already sent");
		goto out;
	}
	if (rc != SQLITE_DONE) {
		sl_fail(sl, rc, err, "receipt");
		goto out;
	}
	ret = 0;
out:
	store_tx_clear(&tx);
	return ret;
}

static int
sl_receipt(void *impl, const char *ap_id, const char *id, const char *receipt, size_t len,
	   int64_t now_ms, struct store_err *err)
{
	struct receipt_args a = { ap_id, id, receipt, len, now_ms };

	return sl_submit(impl, run_receipt, &a, err);
}

struct expire_args {
	int64_t now_ms;
	size_t max;
	char (*ids)[STORE_TX_ID_LEN + 1];
	size_t *n;
};

static int
run_expire(struct sl *sl, void *arg, struct store_err *err)
{
	const struct expire_args *a = arg;
	sqlite3_stmt *st = sl->sl_st[S_EXPIRE];
	size_t *n = a->n;
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, a->now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)a->max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= a->max || col_text(st, 0, a->ids[*n], STORE_TX_ID_LEN + 1) != 0) {
			st_done(st);
			return store_err_set(err, 900, "unexpected expiry result");
		}
		(*n)++;
	}
	st_done(st);
	if (rc != SQLITE_DONE)
		return sl_fail(sl, rc, err, "expire");
	return 0;
}

/* One batch, through the writer like every write: its transaction may be
 * shared with other operations, still one batch per call. */
static int
sl_expire_batch(void *impl, int64_t now_ms, size_t max, char (*ids)[STORE_TX_ID_LEN + 1],
		size_t *n, struct store_err *err)
{
	struct expire_args a = { now_ms, max, ids, n };

	*n = 0;
	if (sl_submit(impl, run_expire, &a, err) != 0) {
		*n = 0;
		return -1;
	}
	return 0;
}

static int
sl_open_page(void *impl, int64_t after_ms, const char *after_id, size_t max,
	     char (*ids)[STORE_TX_ID_LEN + 1], int64_t *created, size_t *n, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st = sl->sl_st[S_OPEN_PAGE];
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0)
		return -1;
	sqlite3_bind_int64(st, 1, after_ms);
	bind_text(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= max || col_text(st, 0, ids[*n], STORE_TX_ID_LEN + 1) != 0) {
			ret = store_err_set(err, 900, "corrupt transaction record");
			break;
		}
		created[*n] = sqlite3_column_int64(st, 1);
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "scan");
	st_done(st);
	return ret;
}

static int
sl_count_open(void *impl, const char *ap_id, uint64_t *n, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st = sl->sl_st[S_COUNT_OPEN];
	int rc, ret = 0;

	if (sl_ready(sl, false, err) != 0)
		return -1;
	bind_text(st, 1, ap_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		ret = sl_fail(sl, rc, err, "count");
	st_done(st);
	return ret;
}

/* ---- the user registry ------------------------------------------------------ */

/* Blob column into a fixed buffer: -1 if longer than `cap` (corruption or
 * a manual edit).  NULL and empty give length 0. */
static int
col_blob(sqlite3_stmt *st, int i, unsigned char *buf, size_t cap, size_t *len)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	*len = 0;
	if (p == NULL || n == 0)
		return 0;
	if (n > cap)
		return -1;
	memcpy(buf, p, n);
	*len = n;
	return 0;
}

static int
row_to_device(sqlite3_stmt *st, struct store_device *d, struct store_err *err)
{
	size_t klen = 0;

	if (col_text(st, 0, d->sd_device_id, sizeof(d->sd_device_id)) != 0 ||
	    col_text(st, 1, d->sd_msisdn, sizeof(d->sd_msisdn)) != 0 ||
	    col_blob(st, 2, d->sd_auth_spki, sizeof(d->sd_auth_spki), &d->sd_auth_spki_len) != 0 ||
	    col_blob(st, 3, d->sd_e2e_key, sizeof(d->sd_e2e_key), &klen) != 0 ||
	    klen != sizeof(d->sd_e2e_key) ||
	    col_text(st, 4, d->sd_push_token, sizeof(d->sd_push_token)) != 0) {
		OPENSSL_cleanse(d, sizeof(*d));
		return store_err_set(err, 900, "corrupt device record");
	}
	d->sd_state = sqlite3_column_int(st, 5);
	d->sd_created_ms = sqlite3_column_int64(st, 6);
	return 0;
}

static int
row_to_key(sqlite3_stmt *st, struct store_key *k, struct store_err *err)
{
	size_t fplen = 0;

	if (col_text(st, 0, k->sk_key_id, sizeof(k->sk_key_id)) != 0 ||
	    col_text(st, 1, k->sk_group, sizeof(k->sk_group)) != 0 ||
	    col_text(st, 2, k->sk_msisdn, sizeof(k->sk_msisdn)) != 0 ||
	    col_text(st, 3, k->sk_device_id, sizeof(k->sk_device_id)) != 0 ||
	    col_text(st, 5, k->sk_profiles, sizeof(k->sk_profiles)) != 0 ||
	    col_blob(st, 8, k->sk_cert, sizeof(k->sk_cert), &k->sk_cert_len) != 0 ||
	    col_text(st, 9, k->sk_cert_serial, sizeof(k->sk_cert_serial)) != 0 ||
	    col_blob(st, 12, k->sk_spki_fp, sizeof(k->sk_spki_fp), &fplen) != 0 ||
	    (fplen != 0 && fplen != sizeof(k->sk_spki_fp))) {
		memset(k, 0, sizeof(*k));
		return store_err_set(err, 900, "corrupt key record");
	}
	k->sk_purpose = (enum store_key_purpose)sqlite3_column_int(st, 4);
	k->sk_has_pin = sqlite3_column_int(st, 6) != 0;
	k->sk_state = (enum store_key_state)sqlite3_column_int(st, 7);
	k->sk_created_ms = sqlite3_column_int64(st, 10);
	k->sk_updated_ms = sqlite3_column_int64(st, 11);
	return 0;
}

/* The SPKI fingerprint: NULL in the database, all zero in the record,
 * when unknown (the partial unique index skips NULLs). */
static bool
fp_known(const unsigned char fp[32])
{
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < 32; i++)
		acc |= fp[i];
	return acc != 0;
}

/* "" is stored as NULL (absent). */
static int
bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	return bind_text(st, i, s[0] != '\0' ? s : NULL);
}

/* A refused registry write: the rules the schema holds are the caller's
 * 101 (what store.h promises), anything else is the database's 900. */
static int
reg_refused(struct sl *sl, int rc, struct store_err *err, const char *what)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return store_err_set(err, 101, "%s: no such user or device", what);
	case SQLITE_CONSTRAINT_UNIQUE:
		/* the fingerprint is checked first; this is the backstop */
		if (strstr(sqlite3_errmsg(sl->sl_db), "spki_fp") != NULL)
			return store_err_set(err, 407, "%s: public key already registered", what);
		return store_err_set(err, 101, "%s: key group already registered on the device",
				     what);
	case SQLITE_CONSTRAINT_TRIGGER:
		/* the trigger's own text: a constant of the schema, no data */
		return store_err_set(err, 101, "%s: %s", what, sqlite3_errmsg(sl->sl_db));
	default:
		return sl_fail(sl, rc, err, what);
	}
}

/* Run the bound write `st` of a registry put: 0, or -1 (the writer rolls
 * the put's savepoint back; it commits the group). */
static int
reg_write(struct sl *sl, sqlite3_stmt *st, struct store_err *err, const char *what)
{
	int rc = sqlite3_step(st);

	st_done(st);
	if (rc != SQLITE_DONE)
		return reg_refused(sl, rc, err, what);
	if (sqlite3_changes(sl->sl_db) != 1)
		/* the upsert's owner guard (checked before: a race is
		 * impossible under the write lock, but say so if it happens) */
		return store_err_set(err, 101, "%s: record belongs to another user", what);
	return 0;
}

/* The arguments of a registry put, run by the writer. */
struct reg_args {
	const void *rec;
	int64_t now_ms;
};

/* The parameters S_USER_PUT and S_USER_UPDATE share: ?1 MSISDN, ?3 name,
 * ?4 the time, ?5..?9 the identity fields. */
static void
bind_user_identity(sqlite3_stmt *st, const struct store_user *u, int64_t now_ms)
{
	bind_text(st, 1, u->su_msisdn);
	bind_opt(st, 3, u->su_name);
	sqlite3_bind_int64(st, 4, now_ms);
	bind_opt(st, 5, u->su_given_name);
	bind_opt(st, 6, u->su_surname);
	bind_opt(st, 7, u->su_id_number);
	bind_opt(st, 8, u->su_country);
	bind_opt(st, 9, u->su_lang);
}

static int
run_user_put(struct sl *sl, void *arg, struct store_err *err)
{
	const struct reg_args *a = arg;
	const struct store_user *u = a->rec;
	sqlite3_stmt *st = sl->sl_st[S_USER_PUT];

	bind_user_identity(st, u, a->now_ms);
	sqlite3_bind_int(st, 2, (int)u->su_state);
	return reg_write(sl, st, err, "user");
}

static int
sl_user_put(void *impl, const struct store_user *u, int64_t now_ms, struct store_err *err)
{
	struct reg_args a = { u, now_ms };

	return sl_submit(impl, run_user_put, &a, err);
}

/* Same text in a column and a string (NULL column: false). */
static bool
col_is(sqlite3_stmt *st, int i, const char *s)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL && strcmp((const char *)t, s) == 0;
}

/* The rules of a registry put, read inside its write transaction (the
 * writer's BEGIN IMMEDIATE: nobody can add a record between the check and
 * the write): step the context query `st`, bound by the caller, whose one
 * row starts with "the user exists", and let `rules` judge the rest of it
 * against the record `rec`: 0, or -1 (the caller's 101, or a database
 * failure; the writer rolls the put's savepoint back). */
typedef int (*reg_rules_fn)(sqlite3_stmt *st, const void *rec, struct store_err *err);

static int
reg_check(struct sl *sl, sqlite3_stmt *st, reg_rules_fn rules, const void *rec,
	  struct store_err *err, const char *what)
{
	int rc = sqlite3_step(st), ret = -1;

	if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0)
		store_err_set(err, 101, "%s: no such user", what);
	else if (rc == SQLITE_ROW)
		ret = rules(st, rec, err);
	st_done(st);
	if (rc != SQLITE_ROW)
		ret = sl_fail(sl, rc, err, what);
	return ret;
}

/* S_DEVICE_CTX: (user exists), device's owner (or NULL), user's devices. */
static int
device_rules(sqlite3_stmt *st, const void *rec, struct store_err *err)
{
	const struct store_device *d = rec;

	if (sqlite3_column_type(st, 1) != SQLITE_NULL && !col_is(st, 1, d->sd_msisdn))
		return store_err_set(err, 101, "device: registered to another user");
	if (sqlite3_column_type(st, 1) == SQLITE_NULL &&
	    sqlite3_column_int64(st, 2) >= MSSP_STORE_MAX_USER_DEVICES)
		return store_err_set(err, 101, "device: the user has %d devices already",
				     MSSP_STORE_MAX_USER_DEVICES);
	return 0;
}

static int
run_device_put(struct sl *sl, void *arg, struct store_err *err)
{
	const struct reg_args *a = arg;
	const struct store_device *d = a->rec;
	int64_t now_ms = a->now_ms;
	sqlite3_stmt *st = sl->sl_st[S_DEVICE_CTX];

	bind_text(st, 1, d->sd_msisdn);
	bind_text(st, 2, d->sd_device_id);
	if (reg_check(sl, st, device_rules, d, err, "device") != 0)
		return -1;
	st = sl->sl_st[S_DEVICE_PUT];
	bind_text(st, 1, d->sd_device_id);
	bind_text(st, 2, d->sd_msisdn);
	sqlite3_bind_blob(st, 3, d->sd_auth_spki, (int)d->sd_auth_spki_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, d->sd_e2e_key, (int)sizeof(d->sd_e2e_key), SQLITE_STATIC);
	bind_opt(st, 5, d->sd_push_token);
	sqlite3_bind_int(st, 6, d->sd_state);
	sqlite3_bind_int64(st, 7, now_ms);
	return reg_write(sl, st, err, "device");
}

static int
sl_device_put(void *impl, const struct store_device *d, int64_t now_ms, struct store_err *err)
{
	struct reg_args a = { d, now_ms };

	return sl_submit(impl, run_device_put, &a, err);
}

/* S_KEY_CTX: (user exists), device's owner (or NULL), key's owner (or
 * NULL), user's keys. */
static int
key_rules(sqlite3_stmt *st, const void *rec, struct store_err *err)
{
	const struct store_key *k = rec;

	if (sqlite3_column_type(st, 1) == SQLITE_NULL)
		return store_err_set(err, 101, "key: no such device");
	if (!col_is(st, 1, k->sk_msisdn))
		return store_err_set(err, 101, "key: the device belongs to another user");
	if (sqlite3_column_type(st, 2) != SQLITE_NULL && !col_is(st, 2, k->sk_msisdn))
		return store_err_set(err, 101, "key: registered to another user");
	if (sqlite3_column_type(st, 2) == SQLITE_NULL &&
	    sqlite3_column_int64(st, 3) >= MSSP_STORE_MAX_USER_KEYS)
		return store_err_set(err, 101, "key: the user has %d keys already",
				     MSSP_STORE_MAX_USER_KEYS);
	/* K-07: one public key, one registration (the unique index is the
	 * backstop; this names the reason) */
	if (sqlite3_column_int(st, 4) != 0)
		return store_err_set(err, 407, "key: public key already registered");
	return 0;
}

static int
run_key_put(struct sl *sl, void *arg, struct store_err *err)
{
	const struct reg_args *a = arg;
	const struct store_key *k = a->rec;
	int64_t now_ms = a->now_ms;
	sqlite3_stmt *st = sl->sl_st[S_KEY_CTX];

	bind_text(st, 1, k->sk_msisdn);
	bind_text(st, 2, k->sk_device_id);
	bind_text(st, 3, k->sk_key_id);
	if (fp_known(k->sk_spki_fp))
		sqlite3_bind_blob(st, 4, k->sk_spki_fp, (int)sizeof(k->sk_spki_fp), SQLITE_STATIC);
	if (reg_check(sl, st, key_rules, k, err, "key") != 0)
		return -1;
	st = sl->sl_st[S_KEY_PUT];
	bind_text(st, 1, k->sk_key_id);
	bind_text(st, 2, k->sk_group);
	bind_text(st, 3, k->sk_msisdn);
	bind_text(st, 4, k->sk_device_id);
	sqlite3_bind_int(st, 5, (int)k->sk_purpose);
	bind_text(st, 6, k->sk_profiles);
	sqlite3_bind_int(st, 7, k->sk_has_pin ? 1 : 0);
	sqlite3_bind_int(st, 8, (int)k->sk_state);
	if (k->sk_cert_len > 0) /* else NULL: no certificate */
		sqlite3_bind_blob(st, 9, k->sk_cert, (int)k->sk_cert_len, SQLITE_STATIC);
	bind_opt(st, 10, k->sk_cert_serial);
	sqlite3_bind_int64(st, 11, now_ms);
	if (fp_known(k->sk_spki_fp))
		sqlite3_bind_blob(st, 12, k->sk_spki_fp, (int)sizeof(k->sk_spki_fp), SQLITE_STATIC);
	return reg_write(sl, st, err, "key");
}

static int
sl_key_put(void *impl, const struct store_key *k, int64_t now_ms, struct store_err *err)
{
	struct reg_args a = { k, now_ms };

	return sl_submit(impl, run_key_put, &a, err);
}

static int
row_to_user(sqlite3_stmt *st, struct store_user *u, struct store_err *err)
{
	if (col_text(st, 0, u->su_msisdn, sizeof(u->su_msisdn)) != 0 ||
	    col_text(st, 2, u->su_name, sizeof(u->su_name)) != 0 ||
	    col_text(st, 5, u->su_given_name, sizeof(u->su_given_name)) != 0 ||
	    col_text(st, 6, u->su_surname, sizeof(u->su_surname)) != 0 ||
	    col_text(st, 7, u->su_id_number, sizeof(u->su_id_number)) != 0 ||
	    col_text(st, 8, u->su_country, sizeof(u->su_country)) != 0 ||
	    col_text(st, 9, u->su_lang, sizeof(u->su_lang)) != 0) {
		memset(u, 0, sizeof(*u));
		return store_err_set(err, 900, "corrupt user record");
	}
	u->su_state = (enum store_user_state)sqlite3_column_int(st, 1);
	u->su_created_ms = sqlite3_column_int64(st, 3);
	u->su_updated_ms = sqlite3_column_int64(st, 4);
	return 0;
}

/* Row readers for sl_reg_get and sl_user_list: row i into the array out. */
typedef int (*reg_fill_fn)(sqlite3_stmt *st, void *out, size_t i, struct store_err *err);

static int
fill_user(sqlite3_stmt *st, void *out, size_t i, struct store_err *err)
{
	return row_to_user(st, (struct store_user *)out + i, err);
}

static int
fill_device(sqlite3_stmt *st, void *out, size_t i, struct store_err *err)
{
	return row_to_device(st, (struct store_device *)out + i, err);
}

static int
fill_key(sqlite3_stmt *st, void *out, size_t i, struct store_err *err)
{
	return row_to_key(st, (struct store_key *)out + i, err);
}

/* One registry record by its id (statement `which`, ?1): read by `fill`
 * into *out, or `missing_status` with `missing` when there is none. */
static int
sl_reg_get(struct sl *sl, enum sl_stmt which, const char *id, reg_fill_fn fill, void *out,
	   int missing_status, const char *missing, const char *what, struct store_err *err)
{
	sqlite3_stmt *st = sl->sl_st[which];
	int rc, ret = -1;

	if (sl_ready(sl, false, err) != 0)
		return -1;
	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = fill(st, out, 0, err);
	else if (rc == SQLITE_DONE)
		store_err_set(err, missing_status, "%s", missing);
	else
		sl_fail(sl, rc, err, what);
	st_done(st);
	return ret;
}

static int
sl_user_get(void *impl, const char *msisdn, struct store_user *out, struct store_err *err)
{
	return sl_reg_get(impl, S_USER_GET, msisdn, fill_user, out, 105, "unknown user", "user",
			  err);
}

static int
sl_device_get(void *impl, const char *device_id, struct store_device *out, struct store_err *err)
{
	return sl_reg_get(impl, S_DEVICE_GET, device_id, fill_device, out, 101, "no such device",
			  "device", err);
}

static int
sl_key_get(void *impl, const char *key_id, struct store_key *out, struct store_err *err)
{
	return sl_reg_get(impl, S_KEY_GET, key_id, fill_key, out, 101, "no such key", "key", err);
}

/* A user's devices or keys: one statement (one snapshot), a user row
 * LEFT JOINed to its records.  No row: unknown user; one row with a NULL
 * id: a user without any.  `fill` reads row i into the caller's array. */
static int
sl_user_list(struct sl *sl, enum sl_stmt which, const char *msisdn, size_t max, size_t *n,
	     reg_fill_fn fill, void *out, struct store_err *err)
{
	sqlite3_stmt *st = sl->sl_st[which];
	bool user = false;
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0)
		return -1;
	bind_text(st, 1, msisdn);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		user = true;
		if (sqlite3_column_type(st, 0) == SQLITE_NULL || *n >= max)
			break; /* none, or the caller's array is full */
		if (fill(st, out, *n, err) != 0) {
			ret = -1;
			break;
		}
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "list");
	else if (ret == 0 && !user)
		ret = store_err_set(err, 105, "unknown user");
	st_done(st);
	return ret;
}

static int
sl_user_devices(void *impl, const char *msisdn, struct store_device *out, size_t max, size_t *n,
		struct store_err *err)
{
	return sl_user_list(impl, S_USER_DEVICES, msisdn, max, n, fill_device, out, err);
}

static int
sl_user_keys(void *impl, const char *msisdn, struct store_key *out, size_t max, size_t *n,
	     struct store_err *err)
{
	return sl_user_list(impl, S_USER_KEYS, msisdn, max, n, fill_key, out, err);
}

struct key_state_args {
	const char *key_id;
	enum store_key_state state;
	int64_t now_ms;
};

static int
run_key_set_state(struct sl *sl, void *arg, struct store_err *err)
{
	const struct key_state_args *a = arg;
	sqlite3_stmt *st = sl->sl_st[S_KEY_STATE];
	int rc;

	bind_text(st, 1, a->key_id);
	sqlite3_bind_int(st, 2, (int)a->state);
	sqlite3_bind_int64(st, 3, a->now_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_TRIGGER) {
		/* the trigger's own text (a constant of the schema): a revoked
		 * key, or activating a key whose device was deleted */
		store_err_set(err, 101, "key state: %s", sqlite3_errmsg(sl->sl_db));
		st_done(st);
		return -1;
	}
	st_done(st);
	if (rc != SQLITE_DONE)
		return sl_fail(sl, rc, err, "key state");
	if (sqlite3_changes(sl->sl_db) != 1)
		return store_err_set(err, 101, "no such key");
	return 0;
}

static int
sl_key_set_state(void *impl, const char *key_id, enum store_key_state state, int64_t now_ms,
		 struct store_err *err)
{
	struct key_state_args a = { key_id, state, now_ms };

	return sl_submit(impl, run_key_set_state, &a, err);
}

struct user_cas_args {
	const struct store_user *u;   /* store_user_update: the identity  */
	const char *msisdn;
	enum store_user_state state;  /* store_user_set_state             */
	int64_t expect_ms;	      /* 0: any                           */
	int64_t now_ms;
};

/* Under the write lock: the user's current updated_ms compared with the
 * caller's (0 = any).  0, or -1 with 105 (gone) / CONFLICT (changed). */
static int
user_cas_check(struct sl *sl, const struct user_cas_args *a, struct store_err *err)
{
	sqlite3_stmt *st = sl_stmt(sl, S_USER_VERSION, err);
	int64_t cur = 0;
	int rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, a->msisdn);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		cur = sqlite3_column_int64(st, 0);
	st_done(st);
	if (rc == SQLITE_DONE)
		return store_err_set(err, 105, "unknown user");
	if (rc != SQLITE_ROW)
		return sl_fail(sl, rc, err, "user version");
	if (a->expect_ms != 0 && cur != a->expect_ms)
		return store_err_set(err, STORE_STATUS_CONFLICT, "user changed");
	return 0;
}

static int
run_user_update(struct sl *sl, void *arg, struct store_err *err)
{
	const struct user_cas_args *a = arg;
	const struct store_user *u = a->u;
	sqlite3_stmt *st;

	if (user_cas_check(sl, a, err) != 0 || (st = sl_stmt(sl, S_USER_UPDATE, err)) == NULL)
		return -1;
	bind_user_identity(st, u, a->now_ms);
	return reg_write(sl, st, err, "user");
}

static int
sl_user_update(void *impl, const struct store_user *u, int64_t expect_updated_ms, int64_t now_ms,
	       struct store_err *err)
{
	struct user_cas_args a = { u, u->su_msisdn, 0, expect_updated_ms, now_ms };

	return sl_submit(impl, run_user_update, &a, err);
}

static int
run_user_set_state(struct sl *sl, void *arg, struct store_err *err)
{
	const struct user_cas_args *a = arg;
	sqlite3_stmt *st;

	if (user_cas_check(sl, a, err) != 0 || (st = sl_stmt(sl, S_USER_STATE, err)) == NULL)
		return -1;
	bind_text(st, 1, a->msisdn);
	sqlite3_bind_int(st, 2, (int)a->state);
	sqlite3_bind_int64(st, 3, a->now_ms);
	return reg_write(sl, st, err, "user state");
}

static int
sl_user_set_state(void *impl, const char *msisdn, enum store_user_state state,
		  int64_t expect_updated_ms, int64_t now_ms, struct store_err *err)
{
	struct user_cas_args a = { NULL, msisdn, state, expect_updated_ms, now_ms };

	return sl_submit(impl, run_user_set_state, &a, err);
}

/* ---- registry administration (issue 5) ---------------------------------------- */

/* '%' + `text` with LIKE's metacharacters escaped + '%': the caller's text
 * is matched literally, never as a pattern ("50%" finds "50%", not "500").
 * The escape character is '\', as the statements' ESCAPE clauses say.
 * NULL on memory. */
static char *
like_pattern(const char *text)
{
	size_t len = strlen(text), i, o = 0;
	char *p = malloc(2 * len + 3);

	if (p == NULL)
		return NULL;
	p[o++] = '%';
	for (i = 0; i < len; i++) {
		if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
			p[o++] = '\\';
		p[o++] = text[i];
	}
	p[o++] = '%';
	p[o] = '\0';
	return p;
}

static int
sl_users_list(void *impl, const struct store_user_query *q, struct store_user *out, size_t max,
	      size_t *n, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	char *pat = NULL;
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0 || (st = sl_stmt(sl, S_USER_LIST, err)) == NULL)
		return -1;
	if (q->uq_text != NULL && (pat = like_pattern(q->uq_text)) == NULL)
		return store_err_set(err, 900, "out of memory");
	/* every MSISDN starts with '+' and is longer: "" precedes them all */
	bind_text(st, 1, q->uq_after != NULL ? q->uq_after : "");
	bind_text(st, 2, q->uq_msisdn_prefix);
	bind_text(st, 3, pat);
	sqlite3_bind_int(st, 4, q->uq_state);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= max || row_to_user(st, &out[*n], err) != 0) {
			if (*n >= max)
				store_err_set(err, 900, "unexpected list result");
			ret = -1;
			break;
		}
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "user list");
	st_done(st);
	free(pat);
	return ret;
}

/* Step the bound statement `which` of a write to its end: 0, or -1. */
static int
run_stmt(struct sl *sl, enum sl_stmt which, struct store_err *err, const char *what)
{
	sqlite3_stmt *st = sl->sl_st[which]; /* bound: prepared by sl_stmt */
	int rc = sqlite3_step(st), ret = 0;

	if (rc != SQLITE_DONE) {
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			/* a rule of the schema (a constant text, no data) */
			ret = store_err_set(err, 900, "%s refused by the database: %s", what,
					    sqlite3_errmsg(sl->sl_db));
		else
			ret = sl_fail(sl, rc, err, what);
	}
	st_done(st);
	return ret;
}

/* Write statement `which` with ?1 = `id`, to its end: 0, or -1. */
static int
run_stmt_id(struct sl *sl, enum sl_stmt which, const char *id, struct store_err *err,
	    const char *what)
{
	sqlite3_stmt *st = sl_stmt(sl, which, err);

	if (st == NULL)
		return -1;
	bind_text(st, 1, id);
	return run_stmt(sl, which, err, what);
}

struct del_args {
	const char *id;
	int64_t now_ms;
};

static int
run_user_delete(struct sl *sl, void *arg, struct store_err *err)
{
	const struct del_args *a = arg;
	sqlite3_stmt *st = sl_stmt(sl, S_USER_DEL_CTX, err);
	int rc, user = 0, busy = 0;

	if (st == NULL)
		return -1;
	/* under the write lock: no transaction can start between the check
	 * and the delete (a create takes the same lock) */
	bind_text(st, 1, a->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		user = sqlite3_column_int(st, 0);
		busy = sqlite3_column_int(st, 1);
	}
	st_done(st);
	if (rc != SQLITE_ROW)
		return sl_fail(sl, rc, err, "user delete");
	if (!user)
		return store_err_set(err, 105, "unknown user");
	if (busy)
		return store_err_set(err, 406, "the user has an outstanding transaction");
	/* keys, then devices (their triggers), then the user (the foreign
	 * keys); transactions are history and stay */
	if (run_stmt_id(sl, S_USER_DEL_KEYS, a->id, err, "user delete") != 0 ||
	    run_stmt_id(sl, S_USER_DEL_DEVICES, a->id, err, "user delete") != 0 ||
	    run_stmt_id(sl, S_USER_DEL, a->id, err, "user delete") != 0)
		return -1;
	if (sqlite3_changes(sl->sl_db) != 1)
		return store_err_set(err, 900, "unexpected user delete result");
	return 0;
}

static int
sl_user_delete(void *impl, const char *msisdn, int64_t now_ms, struct store_err *err)
{
	struct del_args a = { msisdn, now_ms };

	return sl_submit(impl, run_user_delete, &a, err);
}

static int
run_device_delete(struct sl *sl, void *arg, struct store_err *err)
{
	const struct del_args *a = arg;
	sqlite3_stmt *st = sl_stmt(sl, S_DEVICE_OWNER, err);
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	int rc, bad = 0;

	if (st == NULL)
		return -1;
	bind_text(st, 1, a->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		bad = col_text(st, 0, msisdn, sizeof(msisdn));
	st_done(st);
	if (rc == SQLITE_DONE)
		return store_err_set(err, 101, "no such device");
	if (rc != SQLITE_ROW)
		return sl_fail(sl, rc, err, "device delete");
	if (bad)
		return store_err_set(err, 900, "corrupt device record");
	/* ACTIVE -> DISABLED; REVOKED and DISABLED ones stay as they are */
	if ((st = sl_stmt(sl, S_DEVICE_DISABLE_KEYS, err)) == NULL)
		return -1;
	bind_text(st, 1, a->id);
	sqlite3_bind_int64(st, 2, a->now_ms);
	bind_text(st, 3, msisdn);
	if (run_stmt(sl, S_DEVICE_DISABLE_KEYS, err, "device delete") != 0)
		return -1;
	if (run_stmt_id(sl, S_DEVICE_DEL, a->id, err, "device delete") != 0)
		return -1;
	if (sqlite3_changes(sl->sl_db) != 1)
		return store_err_set(err, 900, "unexpected device delete result");
	return 0;
}

static int
sl_device_delete(void *impl, const char *device_id, int64_t now_ms, struct store_err *err)
{
	struct del_args a = { device_id, now_ms };

	return sl_submit(impl, run_device_delete, &a, err);
}

static int
sl_counts(void *impl, struct store_counts *out, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (sl_ready(sl, false, err) != 0 || (st = sl_stmt(sl, S_COUNTS, err)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->sc_users = (uint64_t)sqlite3_column_int64(st, 0);
		out->sc_users_suspended = (uint64_t)sqlite3_column_int64(st, 1);
		out->sc_devices = (uint64_t)sqlite3_column_int64(st, 2);
		out->sc_keys = (uint64_t)sqlite3_column_int64(st, 3);
		out->sc_keys_active = (uint64_t)sqlite3_column_int64(st, 4);
		out->sc_tx_open = (uint64_t)sqlite3_column_int64(st, 5);
	} else {
		ret = sl_fail(sl, rc, err, "counts");
	}
	st_done(st);
	return ret;
}

static int
sl_key_page(void *impl, int64_t after_ms, const char *after_id, struct store_key *out, size_t max,
	    size_t *n, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0 || (st = sl_stmt(sl, S_KEY_PAGE, err)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after_ms);
	bind_text(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= max) {
			ret = store_err_set(err, 900, "unexpected scan result");
			break;
		}
		if (row_to_key(st, &out[*n], err) != 0) {
			ret = -1;
			break;
		}
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "key scan");
	st_done(st);
	return ret;
}

static int
sl_tx_list_user(void *impl, const char *msisdn, struct store_tx *out, size_t max, size_t *n,
		struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0 || (st = sl_stmt(sl, S_TX_LIST_USER, err)) == NULL)
		return -1;
	bind_text(st, 1, msisdn);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	sqlite3_bind_int(st, 9, 0); /* no request, no answer */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= max) {
			ret = store_err_set(err, 900, "unexpected list result");
			break;
		}
		if (row_to_tx(st, &out[*n], err) != 0) {
			ret = -1;
			break;
		}
		/* a list of many: the signatures stay in the database */
		free(out[*n].tx_signature);
		out[*n].tx_signature = NULL;
		out[*n].tx_signature_len = 0;
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "transaction list");
	st_done(st);
	return ret;
}

/* ---- records ------------------------------------------------------------------- */

static int
row_to_rec(sqlite3_stmt *st, struct store_rec *r, struct store_err *err)
{
	store_rec_clear(r);
	if (col_text(st, 0, r->sr_kind, sizeof(r->sr_kind)) != 0 ||
	    col_text(st, 1, r->sr_name, sizeof(r->sr_name)) != 0 ||
	    col_text(st, 2, r->sr_owner, sizeof(r->sr_owner)) != 0) {
		store_rec_clear(r);
		return store_err_set(err, 900, "corrupt record");
	}
	r->sr_state = sqlite3_column_int(st, 3);
	r->sr_version = (uint64_t)sqlite3_column_int64(st, 4);
	r->sr_created_ms = sqlite3_column_int64(st, 5);
	r->sr_updated_ms = sqlite3_column_int64(st, 6);
	r->sr_expires_ms = sqlite3_column_int64(st, 7);
	if (col_dup(st, 8, MSSP_STORE_MAX_REC_BODY, &r->sr_body, &r->sr_body_len) != 0 ||
	    r->sr_body == NULL) {
		store_rec_clear(r);
		return store_err_set(err, 900, "cannot load the record");
	}
	return 0;
}

/* One record by (kind, name) into *out: 1 found, 0 not, -1 error. */
static int
rec_read(struct sl *sl, const char *kind, const char *name, struct store_rec *out,
	 struct store_err *err)
{
	sqlite3_stmt *st = sl_stmt(sl, S_REC_GET, err);
	int rc, ret;

	if (st == NULL)
		return -1;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = row_to_rec(st, out, err) == 0 ? 1 : -1;
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = sl_fail(sl, rc, err, "record");
	st_done(st);
	return ret;
}

/* The stored version of (kind, name): 1 found, 0 not, -1 error. */
static int
rec_version(struct sl *sl, const char *kind, const char *name, uint64_t *version,
	    struct store_err *err)
{
	sqlite3_stmt *st = sl_stmt(sl, S_REC_VERSION, err);
	int rc, ret;

	if (st == NULL)
		return -1;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(st, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = sl_fail(sl, rc, err, "record");
	}
	st_done(st);
	return ret;
}

/* The kind's generation + 1, in the write's own savepoint: whoever sees
 * the write sees the new generation, and a refused write bumps nothing. */
static int
rec_bump(struct sl *sl, const char *kind, struct store_err *err)
{
	return run_stmt_id(sl, S_REC_GEN_BUMP, kind, err, "record generation");
}

struct rec_put_args {
	const struct store_rec *r;
	uint64_t expect;
	int64_t now_ms;
	struct store_rec *out;
};

static int
run_rec_put(struct sl *sl, void *arg, struct store_err *err)
{
	const struct rec_put_args *a = arg;
	const struct store_rec *r = a->r;
	uint64_t cur = 0;
	sqlite3_stmt *st;
	int found;

	/* The compare of the compare-and-set, under the write lock. */
	found = rec_version(sl, r->sr_kind, r->sr_name, &cur, err);
	if (found < 0)
		return -1;
	if (found && a->expect == STORE_REC_NEW)
		return store_err_set(err, STORE_STATUS_CONFLICT, "exists");
	if (!found && a->expect != STORE_REC_NEW && a->expect != STORE_REC_ANY)
		return store_err_set(err, STORE_STATUS_CONFLICT, "missing");
	if (found && a->expect != STORE_REC_ANY && a->expect != cur)
		return store_err_set(err, STORE_STATUS_CONFLICT, "changed");
	if ((st = sl_stmt(sl, found ? S_REC_UPDATE : S_REC_INSERT, err)) == NULL)
		return -1;
	bind_text(st, 1, r->sr_kind);
	bind_text(st, 2, r->sr_name);
	bind_text(st, 3, r->sr_owner);
	sqlite3_bind_int(st, 4, r->sr_state);
	sqlite3_bind_int64(st, 5, a->now_ms);
	sqlite3_bind_int64(st, 6, r->sr_expires_ms);
	sqlite3_bind_text(st, 7, r->sr_body, (int)r->sr_body_len, SQLITE_STATIC);
	if (found)
		sqlite3_bind_int64(st, 8, (sqlite3_int64)cur);
	if (run_stmt(sl, found ? S_REC_UPDATE : S_REC_INSERT, err, "record") != 0)
		return -1;
	if (sqlite3_changes(sl->sl_db) != 1)
		return store_err_set(err, 900, "unexpected record write result");
	if (rec_bump(sl, r->sr_kind, err) != 0)
		return -1;
	if (a->out == NULL)
		return 0;
	found = rec_read(sl, r->sr_kind, r->sr_name, a->out, err);
	if (found == 0)
		store_err_set(err, 900, "record vanished");
	return found == 1 ? 0 : -1;
}

static int
sl_rec_put(void *impl, const struct store_rec *r, uint64_t expect_version, int64_t now_ms,
	   struct store_rec *out, struct store_err *err)
{
	struct rec_put_args a = { r, expect_version, now_ms, out };
	int rc = sl_submit(impl, run_rec_put, &a, err);

	/* a group that did not commit: what was read in it is not stored */
	if (rc != 0)
		store_rec_clear(out);
	return rc;
}

static int
sl_rec_get(void *impl, const char *kind, const char *name, struct store_rec *out,
	   struct store_err *err)
{
	struct sl *sl = impl;
	int r;

	if (sl_ready(sl, false, err) != 0)
		return -1;
	r = rec_read(sl, kind, name, out, err);
	if (r == 0)
		return store_err_set(err, 101, "no such record");
	return r == 1 ? 0 : -1;
}

struct rec_del_args {
	const char *kind, *name;
	uint64_t expect;
};

static int
run_rec_delete(struct sl *sl, void *arg, struct store_err *err)
{
	const struct rec_del_args *a = arg;
	sqlite3_stmt *st;
	uint64_t cur = 0;
	int found;

	found = rec_version(sl, a->kind, a->name, &cur, err);
	if (found < 0)
		return -1;
	if (!found)
		return store_err_set(err, 101, "no such record");
	if (a->expect != STORE_REC_ANY && a->expect != cur)
		return store_err_set(err, STORE_STATUS_CONFLICT, "changed");
	if ((st = sl_stmt(sl, S_REC_DELETE, err)) == NULL)
		return -1;
	bind_text(st, 1, a->kind);
	bind_text(st, 2, a->name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cur);
	if (run_stmt(sl, S_REC_DELETE, err, "record delete") != 0)
		return -1;
	if (sqlite3_changes(sl->sl_db) != 1)
		return store_err_set(err, 900, "unexpected record delete result");
	return rec_bump(sl, a->kind, err);
}

static int
sl_rec_delete(void *impl, const char *kind, const char *name, uint64_t expect_version,
	      int64_t now_ms, struct store_err *err)
{
	struct rec_del_args a = { kind, name, expect_version };

	(void)now_ms; /* a deleted record keeps no time; the audit log does */
	return sl_submit(impl, run_rec_delete, &a, err);
}

static int
sl_rec_list(void *impl, const char *kind, const char *owner, int state, const char *after,
	    struct store_rec *out, size_t max, size_t *n, struct store_err *err)
{
	struct sl *sl = impl;
	enum sl_stmt which;
	sqlite3_stmt *st;
	int rc, ret = 0;

	*n = 0;
	if (sl_ready(sl, false, err) != 0)
		return -1;
	/* one statement per filter combination, so that each uses its
	 * index ("?4 IS NULL OR owner = ?4" would scan the kind) */
	if (owner != NULL)
		which = state != -1 ? S_REC_LIST_BOTH : S_REC_LIST_OWNER;
	else
		which = state != -1 ? S_REC_LIST_STATE : S_REC_LIST_ANY;
	if ((st = sl_stmt(sl, which, err)) == NULL)
		return -1;
	bind_text(st, 1, kind);
	bind_text(st, 2, after != NULL ? after : ""); /* names are never "" */
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	if (owner != NULL)
		bind_text(st, 4, owner);
	if (state != -1)
		sqlite3_bind_int(st, 5, state);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n >= max) {
			ret = store_err_set(err, 900, "unexpected list result");
			break;
		}
		if (row_to_rec(st, &out[*n], err) != 0) {
			ret = -1;
			break;
		}
		(*n)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "record list");
	st_done(st);
	return ret;
}

static int
sl_rec_generation(void *impl, const char *kind, uint64_t *gen, struct store_err *err)
{
	struct sl *sl = impl;
	sqlite3_stmt *st;
	int rc, ret = 0;

	*gen = 0;
	if (sl_ready(sl, false, err) != 0 || (st = sl_stmt(sl, S_REC_GEN, err)) == NULL)
		return -1;
	bind_text(st, 1, kind);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*gen = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		ret = sl_fail(sl, rc, err, "record generation");
	st_done(st);
	return ret;
}

const struct store_ops store_sqlite_ops = {
	.so_name = "sqlite",
	.so_open = sl_open,
	.so_close = sl_close,
	.so_health = sl_health,
	.so_create = sl_create,
	.so_get = sl_get,
	.so_transition = sl_transition,
	.so_receipt = sl_receipt,
	.so_expire_batch = sl_expire_batch,
	.so_open_page = sl_open_page,
	.so_count_open = sl_count_open,
	.so_user_put = sl_user_put,
	.so_device_put = sl_device_put,
	.so_key_put = sl_key_put,
	.so_user_get = sl_user_get,
	.so_device_get = sl_device_get,
	.so_key_get = sl_key_get,
	.so_user_keys = sl_user_keys,
	.so_user_devices = sl_user_devices,
	.so_key_set_state = sl_key_set_state,
	.so_user_list = sl_users_list,
	.so_user_delete = sl_user_delete,
	.so_device_delete = sl_device_delete,
	.so_counts = sl_counts,
	.so_key_page = sl_key_page,
	.so_tx_list_user = sl_tx_list_user,
	.so_rec_put = sl_rec_put,
	.so_rec_get = sl_rec_get,
	.so_rec_delete = sl_rec_delete,
	.so_rec_list = sl_rec_list,
	.so_rec_generation = sl_rec_generation,
	.so_user_update = sl_user_update,
	.so_user_set_state = sl_user_set_state,
	.so_set_peer_trans_id = sl_set_peer_trans_id,
};
