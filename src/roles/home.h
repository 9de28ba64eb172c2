/*
 * home.h - HomeMSSP: chooses the user's key by signature profile, sends
 * the prompt to the user's device over the app channel (AFE, end-to-end
 * protected), takes the answer, verifies the signature against the
 * registered certificate and the DTBS, and records the outcome.
 *
 * Everything that touches the store runs on the node's worker pool (the
 * functions marked "pool thread" take the pool thread's store handle).
 * The outcome of every transaction that HomeMSSP finalises is reported to
 * the AE through on_final (on a pool thread, after the commit).
 *
 * Device sessions: when a device authenticates at the AFE, HomeMSSP loads
 * its channel key, starts an E2E session (HELLO) and (re)sends the prompts
 * still waiting for that device; the app de-duplicates prompts by nonce,
 * so a re-send never shows the user a second prompt.  Prompts for an
 * offline device wait (at most MSSP_HOME_MAX_PENDING per device) and the
 * device is woken through the push provider.
 *
 * Answers: recorded (ANSWERED, with the raw answer) BEFORE they are
 * acknowledged to the app, then verified and finalised (COMPLETED / FAILED).
 * A late or replayed answer (unknown nonce, transaction final) is
 * acknowledged with the final status and discarded.
 *
 * Registration jobs (docs/internals/me.md "Key generation on the phone"),
 * with a struct reg set (home_set_reg): every MSSP_HOME_JOB_POLL_MS (a
 * small poller thread hands one delivery round at a time to the pool), and
 * at once when a device comes online, reg_jobs_to_deliver() for the
 * devices with a live E2E session here; each job goes out as its app
 * message (keygen, cert, unblock: home_job_message) and REQUESTED / SENT
 * jobs are marked with reg_job_sent().  A job is not sent twice on one
 * session within MSSP_HOME_JOB_RESEND_MS.  A job_answer from the phone is
 * given to reg_job_answer(); "job_ack" goes back only once that returned 0
 * (durable before acknowledged) or said the job is unknown or gone (404 /
 * 410: nothing left to record, the phone may forget it).  Any other
 * failure: no ack, the phone re-sends on its next session.
 */
#ifndef MSSP_ROLES_HOME_H
#define MSSP_ROLES_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mss/msg.h"
#include "mss/status.h"
#include "store/store.h"

struct home;
struct pool;
struct afe;
struct store;

/* Called on a pool thread after a transaction became final (tx borrowed,
 * without request/answer). */
typedef void (*home_final_fn)(void *arg, struct store *st, const struct store_tx *tx);

struct home_conf {
	const char *hc_user_ca_cert;	/* PEM: the CA that issues user certs */
	struct pool *hc_pool;
	home_final_fn hc_on_final;
	void *hc_arg;
};

struct home *home_new(const struct home_conf *c, char *err, size_t errlen);
/* The AFE to send through (after afe_new); the AFE's ops come from
 * home_afe_ops(). */
void home_set_afe(struct home *h, struct afe *a);
/* Who hears about final transactions (before anything runs). */
void home_set_final(struct home *h, home_final_fn fn, void *arg);
const struct afe_ops *home_afe_ops(void);
/* The registration module (borrowed; NULL: no job delivery and no key
 * check before signing).  A non-NULL reg starts the job poller; set it
 * once, after home_set_afe and before the AFE serves. */
struct reg;
void home_set_reg(struct home *h, struct reg *r);
/* Stop the job poller and wait for a delivery round in flight (call it
 * before pool_stop; home_free calls it too).  Idempotent; accepts NULL. */
void home_stop(struct home *h);
void home_free(struct home *h);

/* What the AE resolved for a signature request (pool thread). */
struct home_choice {
	struct store_key hk_key;	/* the key chosen                    */
	char hk_profile[MSSP_PROFILE_MAX_URI + 1]; /* its profile, canonical */
};

/* Choose the key for `req` (pool thread): what the user will see (102 /
 * FiCom 1021 when there is no text to show: a hash or binary DTBS needs a
 * DataToBeDisplayed, P-02), the user (105 unknown, 403 suspended), the
 * keys that satisfy the requested profile under the comparison AND whose
 * profile the AP may use (`ap`, NULL: no restriction; an allowed entry
 * covers a key profile it satisfies exactly) (109 none fits; 404 the user
 * has no key for that operation at all), the key state (501 revoked
 * certificate, 404 disabled, 422 no certificate), and with a struct reg
 * set the key material (reg_key_usable: a key that fails the key checks,
 * e.g. a weak RSA key, is refused like a disabled one, 404).  0 with
 * `out`, or -1 with err. */
struct conf_ap;
int home_select(struct home *h, struct store *st, const struct mss_signature_req *req,
		const struct conf_ap *ap, struct home_choice *out, struct mss_err *err);

/* The text the user is shown for `req`: DataToBeDisplayed, or else the
 * DTBS when it is text (base64 text decoded).  Never empty.  malloc'ed
 * (free); -1 with 102/1021 (nothing showable) or 107/101. */
int home_display_text(const struct mss_signature_req *req, char **out, struct mss_err *err);

/* "+" followed by the digits of an MSISDN as the AP wrote it (with or
 * without "+"; the validator checked the rest): the store's form. */
void home_msisdn(const char *in, char *out, size_t cap);

/* Start the user interaction of a committed ACCEPTED transaction (pool
 * thread): CAS to PROMPT_SENT with a fresh nonce (committed first), then
 * the prompt goes to the device.  `req` is the decoded request.  On a CAS
 * conflict (another worker did it) nothing happens.  0, or -1 with err
 * (the caller fails the transaction). */
int home_prompt(struct home *h, struct store *st, const struct store_tx *tx,
		const struct mss_signature_req *req, struct mss_err *err);

/* Withdraw the prompt of a transaction that ended without an answer
 * (expired 208, pre-empted 401): tells the app to drop it.  Any thread. */
void home_withdraw(struct home *h, const struct store_tx *tx, int status);

/* Deliver an AP's receipt text to the device that signed (pool thread;
 * best effort: a device offline now does not get it). */
void home_receipt(struct home *h, struct store *st, const struct store_tx *tx, const char *text);

/* Recovery (pool thread), for one non-final transaction found at start:
 * ACCEPTED -> prompt; PROMPT_SENT -> keep waiting (the prompt is queued
 * again for the device, which de-duplicates by nonce); ANSWERED -> verify
 * the stored answer and finalise. */
void home_recover(struct home *h, struct store *st, const struct store_tx *tx);

/* The DTBS bytes of a request as the device signs them (UTF-8 text, or
 * the decoded base64).  malloc'ed (free); -1 with 101 on bad data. */
int home_dtbs_bytes(const struct mss_signature_req *req, uint8_t **out, size_t *len,
		    struct mss_err *err);

/* The app message (mss/appmsg.h) that delivers `j`: "keygen" for a
 * keygen job not yet issued, "cert" (certificate and chain) for an ISSUED
 * one, "unblock" for an unblock job.  Compact JSON, malloc'ed (free);
 * 0, or -1 with 101 (unknown kind, an ISSUED job without certificate) /
 * 900.  Any thread. */
struct reg_job;
int home_job_message(const struct reg_job *j, char **txt, size_t *len, struct mss_err *err);

struct home_stats {
	uint64_t hs_prompts;
	uint64_t hs_answers;
	uint64_t hs_verified;
	uint64_t hs_invalid;
	uint64_t hs_late;
	uint64_t hs_pending;	/* gauge: prompts waiting for offline devices */
	uint64_t hs_jobs_sent;	/* job messages handed to the AFE      */
	uint64_t hs_jobs_acked; /* job answers recorded and acknowledged */
};
void home_get_stats(struct home *h, struct home_stats *out);

#endif
