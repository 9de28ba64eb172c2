/*
 * appmsg.h - the messages of the app channel between HomeMSSP and the
 * phone app, as they travel INSIDE the end-to-end protection (pki/e2e.h):
 * compact JSON objects, one per sealed blob, with a "t" member naming the
 * type.  The AFE never sees them in the clear.
 *
 *   sign     HomeMSSP -> app   a prompt: show DTBD, ask OK or the PIN, sign
 *            {"t":"sign","nonce":N,"ap":AP display name,"ap_id":AP_ID,
 *             "key":key group id,"profile":URI,"pin":true|false,
 *             "dtbd":text,"dtbd_mime":"text/plain","dtbs":base64,
 *             "dtbs_mime":"text/plain"|"application/octet-stream",
 *             "deadline":ms since epoch,"lang":"en","event":"","nospam":""}
 *   answer   app -> HomeMSSP   the user's answer to one prompt
 *            {"t":"answer","nonce":N,"status":500,"cms":base64 DER}
 *            status 500 with the CMS SignedData (attached content = DTBS);
 *            otherwise the refusal: 401 USER_CANCEL, 402 PIN_NR_BLOCKED,
 *            403 CARD_BLOCKED, 404 NO_KEY_FOUND, 422 NO_CERT_FOUND, 900
 *   ack      HomeMSSP -> app   the answer is recorded (the app may forget
 *            it; until then it re-sends it on every new session)
 *            {"t":"ack","nonce":N,"status":final code or 0}
 *   cancel   HomeMSSP -> app   withdraw a prompt (208 expired, 401
 *            superseded by a newer request)  {"t":"cancel","nonce":N,
 *            "status":208}
 *   receipt  HomeMSSP -> app   the AP's receipt text for a transaction
 *            {"t":"receipt","nonce":N,"message":text}
 *
 *
 * Registration jobs (issue 5, docs/internals/me.md "Key generation"):
 *   keygen     HomeMSSP -> app  {"t":"keygen","job":J,"key":group,
 *              "purpose":"authn"|"sign","profiles":[URI,...],"pin":bool,
 *              "alg":"ec-p256"}
 *   cert       HomeMSSP -> app  {"t":"cert","job":J,"key":group,
 *              "cert":base64 DER,"chain":[base64 DER,...]}
 *   unblock    HomeMSSP -> app  {"t":"unblock","job":J,"key":group}
 *   job_answer app -> HomeMSSP  {"t":"job_answer","job":J,"status":0|code}
 *              plus "csr":base64 DER for a keygen answer with status 0
 *   job_ack    HomeMSSP -> app  {"t":"job_ack","job":J}
 * "profiles" and "chain" are the only non-scalar members: arrays of
 * strings (at most MSSP_KEYSTORE_MAX_PROFILES / MSSP_KEYSTORE_MAX_CHAIN);
 * anything nested deeper is refused unparsed.
 *
 * The nonce is the transaction's correlation nonce (store.h PROMPT_SENT):
 * the app treats a second "sign" with a nonce it has already seen as the
 * same prompt (it never asks the user twice), which makes re-sending after
 * a reconnect safe.
 *
 * Decoding is strict: unknown members, wrong types, missing required
 * members, over-long values and invalid base64 are refused (101).
 * Errors: struct mss_err (status.h).
 * Ownership: heap members belong to the struct (appmsg_clear).
 */
#ifndef MSSP_MSS_APPMSG_H
#define MSSP_MSS_APPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mss/status.h"
#include "util/limits.h"

enum appmsg_type {
	APPMSG_SIGN = 1,
	APPMSG_ANSWER,
	APPMSG_ACK,
	APPMSG_CANCEL,
	APPMSG_RECEIPT,
	APPMSG_KEYGEN,
	APPMSG_CERT,
	APPMSG_UNBLOCK,
	APPMSG_JOB_ANSWER,
	APPMSG_JOB_ACK,
};

struct appmsg {
	enum appmsg_type am_type;
	char am_nonce[MSSP_STORE_MAX_NONCE + 1];
	/* sign */
	char am_ap_name[MSSP_APPMSG_MAX_TEXT + 1];
	char am_ap_id[MSSP_STORE_MAX_AP_ID + 1];
	char am_key[MSSP_KEYSTORE_MAX_ID + 1];
	char am_profile[MSSP_PROFILE_MAX_URI + 1];
	bool am_pin;
	char *am_dtbd;			/* UTF-8 text, NUL-terminated      */
	char am_dtbd_mime[MSSP_APPMSG_MAX_MIME + 1];
	uint8_t *am_dtbs;		/* bytes to sign                   */
	size_t am_dtbs_len;
	char am_dtbs_mime[MSSP_APPMSG_MAX_MIME + 1];
	int64_t am_deadline_ms;
	char am_lang[8];
	char am_event[MSSP_MSG_MAX_EVENTID + 1];
	char am_nospam[MSSP_MSG_MAX_NOSPAM + 1];
	/* answer, ack, cancel */
	int am_status;
	uint8_t *am_cms;		/* answer with 500: DER            */
	size_t am_cms_len;
	/* receipt */
	char *am_message;		/* UTF-8 text                      */
	/* registration jobs (am_key is the group, am_pin the PIN flag,
	 * am_status the job_answer status: 0 = done) */
	char am_job[32];
	char am_purpose[8];		/* "authn" / "sign"                */
	char am_profiles[MSSP_KEYSTORE_MAX_PROFILES][MSSP_PROFILE_MAX_URI + 1];
	size_t am_nprofiles;
	char am_alg[16];		/* "ec-p256"                       */
	uint8_t *am_der;		/* cert: the certificate; job_answer:
					 * the CSR (both DER, heap)        */
	size_t am_der_len;
	uint8_t *am_chain[MSSP_KEYSTORE_MAX_CHAIN]; /* cert: DER, heap   */
	size_t am_chain_len[MSSP_KEYSTORE_MAX_CHAIN];
	size_t am_nchain;
};

/* Free heap members and zero the struct.  Accepts NULL. */
void appmsg_clear(struct appmsg *m);

/* Compact JSON text (malloc'ed, NUL-terminated; free()).  0, or -1 with
 * 900 (missing required member for the type, memory). */
int appmsg_encode(const struct appmsg *m, char **out, size_t *len, struct mss_err *err);

/* Parse one message (at most MSSP_E2E_MAX_PLAIN bytes) into a zeroed or
 * cleared struct.  0, or -1 with 101 (the struct is cleared). */
int appmsg_decode(const uint8_t *in, size_t len, struct appmsg *m, struct mss_err *err);

const char *appmsg_type_name(enum appmsg_type t); /* "sign", ... */

#endif
