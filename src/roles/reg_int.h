/*
 * reg_int.h - private to the reg module (src/roles/reg.c and
 * src/roles/reg_enrol.c): the layout of struct reg and the functions one
 * file provides to the other.  Nothing outside these two files includes it.
 *
 *   reg.c        reg_call (dispatcher, role table, dual control, audit of
 *                every call), users, devices (delete), certificates, APs,
 *                profiles, accounts, approvals, audit ops, stats, seeding.
 *   reg_enrol.c  device activation, jobs (key generation, PIN unblock),
 *                the key-material scan, reg_key_usable.
 */
#ifndef MSSP_ROLES_REG_INT_H
#define MSSP_ROLES_REG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "pki/keycheck.h"
#include "roles/reg.h"

struct reg_enrol; /* reg_enrol.c's private state (key-usable cache, ...) */

struct reg {
	char r_node[65];
	char *r_data_dir;
	struct audit *r_audit;		/* borrowed                        */
	struct pki_ca *r_ca;		/* borrowed, may be NULL           */
	pthread_mutex_t r_ca_lock;	/* pki_ca is not thread-safe       */
	void (*r_on_ap_change)(void *arg);
	void *r_arg;
	char *r_metrics_url;		/* or NULL                         */
	char *r_mssp_id;		/* rc_mssp_id copied, or NULL      */
	struct pki_keycheck_known r_compromised; /* sealed; empty if no file */
	struct reg_enrol *r_enrol;	/* reg_enrol.c                     */
	atomic_bool r_apfp_ready;	/* reg.c: the AP fingerprint index
					 * is known complete (apfp_ready)  */
	/* reg_pki_crl (under r_ca_lock): ca.db as it was (r_crl_db) when
	 * crl.pem as it was (r_crl_file) was found to list every revocation
	 * in it; r_crl_seen false: not looked yet */
	bool r_crl_seen;
	struct stat r_crl_db, r_crl_file;
};

/* ---- provided by reg_enrol.c, called by reg.c ------------------------- */

/* reg_new / reg_free call these last / first. */
int reg_enrol_init(struct reg *r, struct reg_err *e);
void reg_enrol_free(struct reg *r);

/* REG_OP_KEY_REQUEST: body {"registration_profile":NAME,"device":ID?}
 * (device: the user's only active device when omitted; 400 when the user
 * has several and none is named, 409 when none).  Creates one keygen job
 * per key group of the profile (groups the user already holds an ACTIVE
 * key for are refused: 409).  Returns REG_ACCEPTED with
 * {"jobs":[{"job":ID,"group":G,"state":"requested"}...]}. */
int reg_op_key_request(struct reg *r, struct store *st, const struct reg_actor *who,
		       const char *msisdn, json_t *body, int64_t now_ms, json_t **out,
		       struct reg_err *e);
/* REG_OP_PIN_UNBLOCK: an unblock job for the key's group on its device.
 * REG_ACCEPTED with {"job":ID,"state":"requested"}. */
int reg_op_pin_unblock(struct reg *r, struct store *st, const struct reg_actor *who,
		       const char *msisdn, const char *key_id, int64_t now_ms, json_t **out,
		       struct reg_err *e);
/* REG_OP_JOB_GET: {"job","kind","state","msisdn","device","group",
 * "status","detail","created","updated","cert_serial"?}. */
int reg_op_job_get(struct reg *r, struct store *st, const char *job_id, json_t **out,
		   struct reg_err *e);
/* Call after a certificate was revoked with reason keyCompromise
 * (cert.revoke; the key scan does it itself): the key's fingerprint
 * tombstone (record kind "keyfp", written by reg_enrol.c when a key is
 * issued and never deleted) is marked compromised, so the key is refused
 * for good as a device key at activation and named "compromised" (K-06)
 * if it is ever offered for a certificate again.  Without the call such a
 * key is still never certified again (any tombstone refuses it: K-07),
 * only under the verdict "duplicate".  Best effort: a failure is logged.
 * User and device delete need no call (tombstones outlive them). */
void reg_enrol_key_compromised(struct reg *r, struct store *st, const struct store_key *k,
			       int64_t now_ms);
/* Tests only (test_reg_enrol): `fn` runs between the key scan's two
 * passes, to change the registry there as a concurrent writer could.
 * NULL removes it. */
void reg_enrol_scan_hook(struct reg *r, void (*fn)(void *arg, struct store *st), void *arg);
/* The user's jobs (newest first, at most 20) as a JSON array, for the
 * user detail. */
int reg_user_jobs(struct reg *r, struct store *st, const char *msisdn, json_t **out,
		  struct reg_err *e);

/* ---- provided by reg.c, called by reg_enrol.c ------------------------- */

/* The registration profile `name` (its validated JSON body, a new
 * reference).  404 unknown. */
int reg_regprof_get(struct store *st, const char *name, json_t **out, struct reg_err *e);
/* Store the time as ISO 8601 UTC with milliseconds ("...Z"). */
void reg_iso_time(int64_t ms, char out[32]);
/* Normalise an MSISDN as the API accepts it ("+" optional, digits,
 * separators ' ' and '-' refused): "+digits" into out.  0, or -1 with 400. */
int reg_msisdn_norm(const char *in, char out[MSSP_STORE_MAX_MSISDN + 1], struct reg_err *e);
/* Index a certificate issued for key `key_id` by its serial (hex, any
 * case, leading zeros allowed): the record "certserial"/<canonical serial>
 * {"key_id"} that cert.revoke reads instead of scanning every key.  Call
 * it right after the key with the certificate is stored (a failure is the
 * caller's to log: a key without an index record is still found, by the
 * scan).  0, or -1 with e (400 bad arguments, 500 store). */
int reg_index_cert_serial(struct store *st, const char *serial, const char *key_id,
			  int64_t now_ms, struct reg_err *e);
/* Map a store error to a reg error (101 -> 404 NOTFOUND when `notfound`,
 * else 400; 105 -> NOUSER; 406 -> CONFLICT; 407 -> KEY; CONFLICT ->
 * CONFLICT; 900 -> INTERNAL). */
int reg_from_store(struct reg_err *e, const struct store_err *se, bool notfound);

#endif
