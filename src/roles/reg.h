/*
 * reg.h - the registration and administration operations behind the ME
 * (docs/internals/me.md): one entry point, reg_call(), that every front
 * end uses (the JSON API and the console through roles/me, MReg SOAP
 * through roles/mreg, msspctl's local mode), so that authorization by
 * role, dual control, validation and the audit record happen in ONE place;
 * and the internal steps other roles drive: device activation (AFE), job
 * delivery (HomeMSSP), job processing (ME: the CA), the key-material scan.
 *
 * Data: users, devices and keys are store registry rows (store.h); APs,
 * accounts, signature and registration profiles, approvals, activation
 * codes and jobs are store records (kind "ap", "account", "sigprof",
 * "regprof", "approval", "activation", "job") whose JSON bodies this
 * module defines, validates and alone writes.
 *
 * Calling context: every function that takes a struct store runs on a
 * worker thread (util/pool) with that thread's store handle: it may block
 * on the disk, the CA lock and the audit file lock.
 *
 * Errors: 0 / -1 with struct reg_err: `status` is the HTTP status the ME
 * answers (400, 403, 404, 409, 410, 422, 500, 503), `code` the TS 102 204 /
 * FiCom code MReg answers (101, 104, 105, 407, 900, ...): reg_err_set()
 * keeps the pair consistent.  `msg` is generic (names the rule, never
 * echoes input or key material).  This is the one place where registration
 * failures get their answer codes.
 *
 * JSON ownership (jansson): inputs (`rq_body`, `rq_query`) are borrowed;
 * ap.create and ap.update wipe the "rest_password" and "api_key" strings
 * of `rq_body` after use (secrets: do not reuse the body);
 * `*out` is a new reference the caller json_decref()s.
 *
 * Threads: a struct reg is shared by all threads (CA access under an
 * internal mutex; the audit handle is thread-safe).
 */
#ifndef MSSP_ROLES_REG_H
#define MSSP_ROLES_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pki/e2e.h"
#include "store/store.h"
#include "util/limits.h"

struct store;
struct audit;
struct pki_ca;
struct reg;

#define REG_ERR_MSG_MAX 200

struct reg_err {
	int status;		  /* HTTP status                          */
	int code;		  /* ETSI / FiCom code                    */
	char msg[REG_ERR_MSG_MAX];
};

/* The pairs used (status, code):
 *   REG_E_BAD        400 101  malformed or invalid input
 *   REG_E_FORBIDDEN  403 104  role may not; AP cert on ME; self-approval
 *   REG_E_NOUSER     404 105  unknown mobile user
 *   REG_E_NOTFOUND   404 101  unknown AP, key, job, profile, ...
 *   REG_E_CONFLICT   409 101  exists already; changed meanwhile; user has
 *                             an outstanding transaction
 *   REG_E_GONE       410 101  activation code or approval expired / used
 *   REG_E_KEY        422 407  key or CSR refused (K-rows), FiCom 4072
 *   REG_E_INTERNAL   500 900
 *   REG_E_UNAVAIL    503 900  the CA key is not in this process, ...   */
enum reg_errkind {
	REG_E_BAD = 1,
	REG_E_FORBIDDEN,
	REG_E_NOUSER,
	REG_E_NOTFOUND,
	REG_E_CONFLICT,
	REG_E_GONE,
	REG_E_KEY,
	REG_E_INTERNAL,
	REG_E_UNAVAIL,
};
/* Fill e (status, code from the kind; printf-style message); returns -1. */
int reg_err_set(struct reg_err *e, enum reg_errkind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

enum reg_role {
	REG_ROLE_NONE = 0,
	REG_ROLE_ADMIN = 1,
	REG_ROLE_RA = 2,
	REG_ROLE_AUDITOR = 3,
	REG_ROLE_SYSTEM = 4, /* internal callers (init, jobs); never an account */
};
const char *reg_role_name(enum reg_role r); /* "admin", "ra", "auditor", "system" */
int reg_role_parse(const char *s, enum reg_role *out); /* 0 or -1 */

/* Who asks.  ra_fp is the SHA-256 of the client certificate (dual
 * control compares it too); all-zero for REG_ROLE_SYSTEM. */
struct reg_actor {
	char ra_name[65];
	enum reg_role ra_role;
	unsigned char ra_fp[32];
};

/* ---- Operations ------------------------------------------------------ */

enum reg_op {
	REG_OP_SESSION = 0,	/* GET  /session                               */
	REG_OP_STATS,		/* GET  /stats (the ME adds /metrics counters) */
	REG_OP_USER_LIST,	/* GET  /users            query q,state,after,limit */
	REG_OP_USER_CREATE,	/* POST /users            body                  */
	REG_OP_USER_GET,	/* GET  /users/{arg}                            */
	REG_OP_USER_UPDATE,	/* PUT  /users/{arg}      body                  */
	REG_OP_USER_SUSPEND,	/* POST /users/{arg}/suspend                    */
	REG_OP_USER_RESUME,	/* POST /users/{arg}/resume                     */
	REG_OP_USER_DELETE,	/* DELETE /users/{arg}                          */
	REG_OP_ACTIVATION_CREATE, /* POST /users/{arg}/activation               */
	REG_OP_DEVICE_DELETE,	/* DELETE /users/{arg}/devices/{arg2}           */
	REG_OP_KEY_REQUEST,	/* POST /users/{arg}/keys body                  */
	REG_OP_PIN_UNBLOCK,	/* POST /users/{arg}/keys/{arg2}/unblock        */
	REG_OP_JOB_GET,		/* GET  /jobs/{arg}                             */
	REG_OP_CERT_LIST,	/* GET  /certificates     query msisdn          */
	REG_OP_CERT_REVOKE,	/* POST /certificates/{arg}/revoke body reason  */
	REG_OP_AP_LIST,		/* GET  /aps                                    */
	REG_OP_AP_GET,		/* GET  /aps/{arg}                              */
	REG_OP_AP_CREATE,	/* POST /aps              body   (dual)         */
	REG_OP_AP_UPDATE,	/* PUT  /aps/{arg}        body   (dual if trust) */
	REG_OP_AP_SUSPEND,	/* POST /aps/{arg}/suspend                      */
	REG_OP_AP_RESUME,	/* POST /aps/{arg}/resume                       */
	REG_OP_AP_DELETE,	/* DELETE /aps/{arg}             (dual)         */
	REG_OP_SIGPROF_LIST,	/* GET  /profiles/signature                     */
	REG_OP_SIGPROF_PUT,	/* PUT  /profiles/signature/{arg} body          */
	REG_OP_REGPROF_LIST,	/* GET  /profiles/registration                  */
	REG_OP_REGPROF_PUT,	/* PUT  /profiles/registration/{arg} body       */
	REG_OP_ACCOUNT_LIST,	/* GET  /accounts                               */
	REG_OP_ACCOUNT_CREATE,	/* POST /accounts         body   (dual)         */
	REG_OP_ACCOUNT_DELETE,	/* DELETE /accounts/{arg}        (dual)         */
	REG_OP_APPROVAL_LIST,	/* GET  /approvals                              */
	REG_OP_APPROVAL_APPROVE,/* POST /approvals/{arg}/approve                */
	REG_OP_APPROVAL_REJECT, /* POST /approvals/{arg}/reject                 */
	REG_OP_AUDIT_LIST,	/* GET  /audit            query after,limit     */
	REG_OP_AUDIT_VERIFY,	/* GET  /audit/verify                           */
	REG_OP_KEYS_SCAN,	/* POST /keys/scan                              */
	/* The mesh (docs/internals/mesh.md): peer MSSPs and the routing
	 * table, record kinds "peer" and "route" (roles/meshconf.h shapes). */
	REG_OP_PEER_LIST,	/* GET  /peers                                  */
	REG_OP_PEER_GET,	/* GET  /peers/{arg}                            */
	REG_OP_PEER_PUT,	/* POST /peers body, PUT /peers/{arg} body:
				 * create (dual) or update (dual if url,
				 * cert_sha256, ca_file or profiles change)    */
	REG_OP_PEER_DELETE,	/* DELETE /peers/{arg}  (dual; 409 while routed) */
	REG_OP_ROUTE_LIST,	/* GET  /routes                                 */
	REG_OP_ROUTE_PUT,	/* POST /routes body, PUT /routes/{arg} body    */
	REG_OP_ROUTE_DELETE,	/* DELETE /routes/{arg}                         */
	REG_OP_COUNT
};

/* The op's stable name ("user.create"): the audit action, the log. */
const char *reg_op_name(enum reg_op op);
/* The role table (me.md): may `role` call `op` at all? */
bool reg_op_allowed(enum reg_op op, enum reg_role role);
/* Does the op change anything (the ME requires the CSRF token)? */
bool reg_op_mutates(enum reg_op op);

struct reg_request {
	enum reg_op rq_op;
	const char *rq_arg;	/* first path argument (decoded), or NULL    */
	const char *rq_arg2;	/* second path argument, or NULL             */
	json_t *rq_body;	/* request body (object) or NULL             */
	json_t *rq_query;	/* query parameters: object of strings, or NULL */
};

/* Outcomes of reg_call besides 0 / -1. */
#define REG_PENDING 1 /* dual control: an approval was created (202)     */
#define REG_CREATED 2 /* a new object (201)                              */
#define REG_ACCEPTED 3 /* asynchronous work started: jobs (202)          */

/* Run one operation for `who`: role check (403, audited "refused"),
 * dual control for an admin's dual op (REG_PENDING with {"approval":ID,
 * "state":"pending"}), validation, the operation, ONE audit record with
 * the outcome (ok / refused / failed / pending).  Read-only ops are not
 * audited except audit.list / audit.verify (who read the audit log).
 * Returns 0, REG_CREATED, REG_ACCEPTED or REG_PENDING with *out (a JSON
 * value, never NULL on success), or -1 with e. */
int reg_call(struct reg *r, struct store *st, const struct reg_actor *who,
	     const struct reg_request *rq, int64_t now_ms, json_t **out, struct reg_err *e);

/* ---- Setup ------------------------------------------------------------ */

struct reg_conf {
	const char *rc_node;		/* node id (audit, job ids)           */
	const char *rc_data_dir;	/* DIR: ca/, audit/, keys/            */
	struct audit *rc_audit;		/* borrowed, required                 */
	struct pki_ca *rc_ca;		/* borrowed; NULL in a process without
					 * the ME role (then ops that need the
					 * CA answer 503, jobs wait)          */
	/* Called (any thread) after the AP table changed in the store: the
	 * AE of this process reloads at once.  May be NULL. */
	void (*rc_on_ap_change)(void *arg);
	void *rc_arg;
	/* The node's admin /metrics URL for REG_OP_STATS, or NULL. */
	const char *rc_metrics_url;
	/* This node's MSSP_ID ([ae] mssp_id), or NULL: a route may name it
	 * (a local exception inside a foreign prefix) and no peer may be
	 * it.  Without it, routes name configured peers only. */
	const char *rc_mssp_id;
};

struct reg;
/* Borrowing everything in `c` for the life of the reg.  Loads
 * DIR/keys/compromised.txt when present (K-06).  NULL with err (900). */
struct reg *reg_new(const struct reg_conf *c, struct reg_err *e);
void reg_free(struct reg *r); /* accepts NULL */
struct audit *reg_audit(struct reg *r);

/* Write one audit record for something not done through reg_call
 * (auth.refused, me.start, ...).  Best effort: a failure is logged. */
void reg_audit_event(struct reg *r, const struct reg_actor *who, const char *action,
		     const char *target, const char *outcome, const char *detail, int64_t now_ms);

/* ---- Accounts (the ME's authentication) ------------------------------- */

/* The account of a client certificate fingerprint: 0 with `out` (name,
 * role, fp), or -1 with 403 (unknown, disabled, or the fingerprint is an
 * AP's: separation of duties; e->msg says which, for the audit). */
int reg_account_by_fp(struct reg *r, struct store *st, const unsigned char fp[32],
		      struct reg_actor *out, struct reg_err *e);
/* Seed an account without dual control (msspd init only). */
int reg_account_seed(struct reg *r, struct store *st, const char *name, enum reg_role role,
		     const unsigned char fp[32], int64_t now_ms, struct reg_err *e);

/* ---- APs (the AE's table) ---------------------------------------------- */

/* Every AP record as a JSON array of AP objects (me.md shape), for
 * conf_aps_from_json (roles/conf.h).  *gen = the AP generation read in
 * the same transaction scope (a later change bumps it). */
int reg_ap_table(struct store *st, json_t **out, uint64_t *gen, struct reg_err *e);
/* Seed without dual control (msspd init). `ap` is an AP object. */
int reg_ap_seed(struct reg *r, struct store *st, json_t *ap, int64_t now_ms, struct reg_err *e);
/* Seed a signature / registration profile (msspd init). */
int reg_profile_seed(struct reg *r, struct store *st, bool registration, json_t *prof,
		     int64_t now_ms, struct reg_err *e);

/* ---- Device activation (AFE, docs/internals/me.md) --------------------- */

struct reg_activation {
	const char *av_msisdn;			/* as the phone sent it          */
	const uint8_t *av_transcript;		/* T (e2e_activation_transcript) */
	size_t av_transcript_len;
	uint8_t av_app_mac[32];			/* HMAC(h, T || "app")           */
	const uint8_t *av_device_spki;		/* the device key, SPKI DER      */
	size_t av_device_spki_len;
	const uint8_t *av_device_sig;		/* ECDSA over T by the device key */
	size_t av_device_sig_len;
	const uint8_t *av_channel_key;		/* E2E_KEY_LEN: derived by the AFE */
	const char *av_device_id;		/* the id the AFE chose for the
						 * channel-key derivation         */
};
/* Check and consume the user's activation code, bind the device (store
 * device record with the channel key), audit device.bind.  On success
 * home_mac = HMAC(h, T || "home" || device_id).  A try is reserved
 * (compare-and-set, fail-closed) BEFORE the MAC is compared; the last try
 * locks the code.  Refusals: no open code for the number (none, used,
 * expired, locked, older than the user record) is -1 with REG_E_GONE and
 * NO audit record (only a log line and the AFE's counter: anyone can ask
 * for any number); a wrong MAC, a bad key or a bad signature is -1 with
 * REG_E_FORBIDDEN, audited.  The phone gets one generic refusal for
 * both. */
int reg_activate(struct reg *r, struct store *st, const struct reg_activation *a, int64_t now_ms,
		 uint8_t home_mac[32], struct reg_err *e);
/* A fresh device id ("d" + 24 hex) for an activation. */
void reg_new_device_id(char out[MSSP_KEYSTORE_MAX_ID + 1]);

/* ---- Jobs (HomeMSSP delivers, the ME processes) ------------------------ */

enum reg_job_state {
	REG_JOB_REQUESTED = 1,
	REG_JOB_SENT = 2,
	REG_JOB_ANSWERED = 3,
	REG_JOB_ISSUED = 4,
	REG_JOB_DONE = 5,
	REG_JOB_FAILED = 6,
	REG_JOB_EXPIRED = 7,
};
const char *reg_job_state_name(int st); /* "requested", ... */

/* A job as HomeMSSP needs it to build the app message. */
struct reg_job {
	char rj_id[32];
	char rj_kind[16];		  /* "keygen" or "unblock"             */
	int rj_state;
	char rj_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	char rj_device[MSSP_KEYSTORE_MAX_ID + 1];
	char rj_group[MSSP_KEYSTORE_MAX_ID + 1];
	char rj_purpose[8];		  /* "authn" / "sign"                  */
	char rj_profiles[MSSP_KEYSTORE_MAX_PROFILES][MSSP_PROFILE_MAX_URI + 1];
	size_t rj_nprofiles;
	bool rj_pin;
	char rj_alg[16];		  /* "ec-p256"                         */
	int64_t rj_updated_ms;
	/* ISSUED keygen jobs: the certificate and chain to install (DER). */
	uint8_t *rj_cert;		  /* heap (reg_job_clear)              */
	size_t rj_cert_len;
	uint8_t *rj_chain[MSSP_KEYSTORE_MAX_CHAIN];
	size_t rj_chain_len[MSSP_KEYSTORE_MAX_CHAIN];
	size_t rj_nchain;
};
void reg_job_clear(struct reg_job *j);

/* Jobs HomeMSSP has to send now, for the devices `online(device_id)`
 * says are connected here: REQUESTED ones, SENT ones not answered for
 * MSSP_HOME_JOB_RESEND_MS, ISSUED ones (the certificate).  At most
 * `max`; *n filled (reg_job_clear each).  Expires overdue jobs on the way
 * (MSSP_REG_JOB_TTL_S). */
int reg_jobs_to_deliver(struct reg *r, struct store *st, bool (*online)(void *, const char *),
			void *arg, struct reg_job *out, size_t max, size_t *n, int64_t now_ms,
			struct reg_err *e);
/* REQUESTED -> SENT (or a re-send: SENT stays SENT with a new time); an
 * ISSUED job records when its certificate was sent (re-sent after
 * MSSP_HOME_JOB_RESEND_MS, not every poll). */
int reg_job_sent(struct reg *r, struct store *st, const char *job_id, int64_t now_ms,
		 struct reg_err *e);
/* The phone's job_answer from device `device_id` (it must be the job's
 * device: else REG_E_FORBIDDEN).  keygen: status 0 with the CSR DER ->
 * ANSWERED (the CSR kept for the ME); status != 0 -> FAILED.  cert
 * (job ISSUED): status 0 -> DONE, else FAILED (the key stays in the
 * store).  unblock: 0 -> DONE, else FAILED with the status.  An answer
 * for a job already past that step is accepted again without change
 * (the phone re-sends until acknowledged): 0.  Audited job.<state>. */
int reg_job_answer(struct reg *r, struct store *st, const char *device_id, const char *job_id,
		   int status, const uint8_t *csr, size_t csr_len, int64_t now_ms,
		   struct reg_err *e);
/* ME side (needs the CA): every ANSWERED keygen job -> CSR check (strict
 * DER, PoP, policy), keycheck (K-01..K-07 with the registered set and
 * the compromised list), certificate from the CA under the profile's
 * cert_profile with the user's identity, store_key_put (ACTIVE, with
 * certificate and SPKI fingerprint) -> ISSUED; a refusal -> FAILED with
 * 407 and the verdict name.  *n = jobs handled.  0, or -1 (900). */
int reg_jobs_process(struct reg *r, struct store *st, int64_t now_ms, size_t *n,
		     struct reg_err *e);

/* ---- Key-material scan (me.md) ----------------------------------------- */

/* Scan every registered key; `out` gets {"keys":N,"rsa":N,"hits":[{"key_id",
 * "msisdn","verdict","action"}...],"crl":bool}.  Each hit: with the CA in
 * this process the certificate is revoked (keyCompromise), the key REVOKED
 * and one CRL issued after the scan; without it the key is DISABLED
 * ("revocation pending").  The user is SUSPENDED (state only).  Audited
 * keys.scan.hit each.  Also reachable as REG_OP_KEYS_SCAN. */
int reg_keys_scan(struct reg *r, struct store *st, const struct reg_actor *who, int64_t now_ms,
		  json_t **out, struct reg_err *e);

/* HomeMSSP before signing with an RSA key (EC keys: always true without
 * work): does the key's certificate pass the key checks?  Cached per
 * (key_id, serial).  Thread-safe. */
bool reg_key_usable(struct reg *r, const struct store_key *k);

/* ---- Publication for relying parties (roles/pkipub, me.md) -------------- */

/* reg_pki_ocsp returned an OCSP error response (see there). */
#define REG_OCSP_ERROR 1

/* Answer a DER OCSPRequest (RFC 6960; `req` borrowed, at most
 * MSSP_CA_MAX_OCSP_REQ bytes) with pki_ca_ocsp_respond under the CA lock;
 * the responder re-reads the CA database first, so a revocation made by
 * another process on the same directory is answered at once.
 *   0               *resp is a successful, signed OCSPResponse;
 *   REG_OCSP_ERROR  *resp is an OCSP error response, a valid answer to
 *                   send as well; e says why: 400 malformedRequest,
 *                   404 unauthorized (no CertID of this CA), 500
 *                   internalError (logged);
 *   -1              nothing to send: 503 without the CA in this process,
 *                   500 when not even an error response could be built.
 * *resp (DER, *resp_len bytes) is the caller's: OPENSSL_free.  Thread-safe;
 * no store access (any thread, a pool thread in practice: it may wait for
 * the CA lock and the disk). */
int reg_pki_ocsp(struct reg *r, const uint8_t *req, size_t len, uint8_t **resp,
		 size_t *resp_len, struct reg_err *e);

/* The current CRL as DER (*der: OPENSSL_free), read from DIR/ca/crl.pem
 * (the CA of rc_ca lives in DIR/ca).  A new CRL is issued first, under the
 * CA lock, when the file is missing, unreadable or not a CRL, when less
 * than a quarter of its validity (nextUpdate - thisUpdate) is left, or
 * when the CA database holds a revocation the CRL does not list (a re-issue
 * that failed after a revocation; looked at only when ca.db changed since
 * the last look).  Without the CA in this process a current file is served
 * as it is, else 503.  0, or -1 with e (503, 500).  Thread-safe, as
 * reg_pki_ocsp. */
int reg_pki_crl(struct reg *r, uint8_t **der, size_t *len, struct reg_err *e);

#endif
