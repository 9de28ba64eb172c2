/*
 * app.h - the logic of the reference phone app (mss-phone), without I/O:
 * its configuration files, the device's side of the AFE protocol
 * (roles/afe.h), the end-to-end session (pki/e2e.h, E2E_ROLE_APP), the
 * app messages inside it (mss/appmsg.h), prompts, answers kept until
 * acknowledged, and the demo users' behaviour (docs/internals/datadir.md).
 *
 * Why a library module: src/cmd/mss-phone only wires sockets, timers and
 * the terminal to this; everything that decides something is here, where a
 * unit test can drive it with real keys, a real keystore and a real e2e
 * session on the other side (tests/unit/test_phone_app.c).
 *
 * A device (struct phone_dev) lives as long as the program: its keystore
 * stays open (and locked), its prompts and unacknowledged answers survive
 * reconnections.  Each WebSocket connection is announced with
 * phone_dev_connected / phone_dev_disconnected; text frames received go to
 * phone_dev_frame; frames to send come out through phone_dev_ops.po_send.
 *
 * Threads: none; a device is used by one thread.
 * Ownership: see each function.  Secrets (channel key, session keys, the
 * demo PIN, the device key) stay inside the device and are wiped by
 * phone_dev_free; PINs passed in are borrowed and never kept.
 */
#ifndef MSSP_PHONE_APP_H
#define MSSP_PHONE_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/e2e.h"
#include "util/limits.h"

#define PHONE_ERR_MAX 256

/* Errors: generic text for the operator, never a secret or peer bytes. */
struct phone_err {
	char pe_msg[PHONE_ERR_MAX];
};

/* ---- DIR/phones/phone.conf --------------------------------------------- */

struct phone_conf {
	char pc_afe_addr[MSSP_PHONE_MAX_ADDR + 1];  /* numeric IPv4/IPv6      */
	uint16_t pc_afe_port;
	char pc_afe_host[MSSP_PHONE_MAX_HOST + 1];  /* checked against the
						     * AFE's certificate      */
	char pc_ca[MSSP_PHONE_MAX_PATH + 1];	    /* resolved against the
						     * file's directory       */
	char pc_push_addr[MSSP_PHONE_MAX_ADDR + 1]; /* default 127.0.0.1      */
	uint16_t pc_push_port;			    /* 0 (default): no push   */
};

/* Read phone.conf (util/config, strict).  afe_addr, afe_port, afe_host and
 * ca are required.  0, or -1 with err. */
int phone_conf_load(const char *path, struct phone_conf *out, struct phone_err *err);

/* ---- DIR/phones/<msisdn>/device.conf ----------------------------------- */

struct phone_device_conf {
	char dc_id[MSSP_KEYSTORE_MAX_ID + 1];
	char dc_msisdn[MSSP_STORE_MAX_MSISDN + 1];
	unsigned char dc_channel_key[E2E_KEY_LEN];  /* secret                 */
	char dc_pin[MSSP_KEYSTORE_PIN_MAX_LEN + 1]; /* demo PIN; "" if none  */
	char dc_puk[MSSP_KEYSTORE_PUK_LEN + 1];	    /* demo PUK (keygen and
						     * unblock jobs); "" if none */
	int dc_demo_action;			    /* enum phone_demo_action
						     * from `demo_action`, 0
						     * when absent (then the
						     * number decides)       */
};

/* Parse device.conf text (borrowed): id, msisdn, channel_key (base64 of
 * exactly 32 bytes) required, pin optional (digits), puk optional
 * (exactly MSSP_KEYSTORE_PUK_LEN digits).  0, or -1 with err (and `out`
 * wiped). */
int phone_device_conf_parse(const char *text, size_t len, struct phone_device_conf *out,
			    struct phone_err *err);
/* The same from a file (at most MSSP_PHONE_MAX_FILE bytes). */
int phone_device_conf_load(const char *path, struct phone_device_conf *out,
			   struct phone_err *err);
void phone_device_conf_wipe(struct phone_device_conf *c);

/* ---- small pure helpers ------------------------------------------------- */

/* What `mss-phone --demo` does with a prompt for `msisdn` (datadir.md). */
enum phone_demo_action {
	PHONE_DEMO_SIGN = 1,	/* sign (PIN from device.conf if the group has
				 * one); whatever the keystore says is the
				 * answer (402, 403, 404 ...)                 */
	PHONE_DEMO_REFUSE,	/* answer 401 USER_CANCEL                     */
	PHONE_DEMO_IGNORE,	/* never answer                               */
	PHONE_DEMO_SIGN_OTHER,	/* sign other data: verification fails (503)  */
};
enum phone_demo_action phone_demo_action(const char *msisdn);
/* "sign", "refuse", "ignore", "sign_other" (device.conf `demo_action`,
 * written by msspd init for demo users, so a demo user keeps its
 * behaviour under any --demo-prefix); 0 for anything else. */
int phone_demo_action_parse(const char *name);

/* The wire status of a failed ks_sign (err.status): 402, 403, 404 and 422
 * pass through; anything else (KS_STATUS_WRONG_PIN included: the caller
 * handles it before when it can ask again) is 900. */
int phone_answer_status(int ks_status);

/* Reconnect back-off: the next base delay after `cur_ms` (0: the first,
 * MSSP_PHONE_BACKOFF_MIN_MS; then doubling, capped at
 * MSSP_PHONE_BACKOFF_MAX_MS), and the delay to wait for a base with
 * +/- MSSP_PHONE_JITTER_PCT jitter drawn from `rnd` (so that many devices
 * that lost the AFE together do not come back together). */
unsigned phone_backoff_next(unsigned cur_ms);
unsigned phone_backoff_jitter(unsigned base_ms, uint32_t rnd);

/* Copy `in` into out (cap >= 1 bytes, always NUL-terminated, truncated)
 * so that it is safe to print.  token: one log-line field, every byte
 * outside 0x21..0x7e becomes '?'.  Otherwise terminal text: C0 and C1
 * controls and DEL become '?' (no escape sequences from a peer reach the
 * terminal), '\n' is kept, other UTF-8 is kept. */
void phone_sanitize(const char *in, char *out, size_t cap, bool token);

/* ---- recent nonces ------------------------------------------------------ */

/* A capped set of recent strings: when full, the oldest is forgotten.
 * Storage grows with use (a bench device sees few nonces). */
struct phone_nonces;
struct phone_nonces *phone_nonces_new(size_t cap); /* NULL on memory */
/* Add `nonce` (copied).  1 when it was new, 0 when already present, -1 on
 * memory shortage. */
int phone_nonces_add(struct phone_nonces *s, const char *nonce);
bool phone_nonces_has(const struct phone_nonces *s, const char *nonce);
size_t phone_nonces_count(const struct phone_nonces *s);
void phone_nonces_free(struct phone_nonces *s); /* accepts NULL */

/* ---- AFE frames (roles/afe.h) -------------------------------------------- */

enum phone_frame_type {
	PHONE_FRAME_CHALLENGE = 1,
	PHONE_FRAME_READY,
	PHONE_FRAME_E2E,
};

struct phone_frame {
	enum phone_frame_type pf_type;
	unsigned char pf_challenge[E2E_CHALLENGE_LEN];
	unsigned char *pf_blob; /* E2E: malloc'ed (phone_frame_clear) */
	size_t pf_blob_len;
};

/* Parse one frame from the AFE (strict: exact members, exact lengths).
 * 0, or -1 with err. */
int phone_frame_parse(const uint8_t *msg, size_t len, struct phone_frame *f,
		      struct phone_err *err);
void phone_frame_clear(struct phone_frame *f);

/* PIN and PUK formats the phone asks for and writes (digits; a PIN of
 * MSSP_KEYSTORE_PIN_MIN_LEN..MSSP_KEYSTORE_PIN_MAX_LEN, a PUK of exactly
 * MSSP_KEYSTORE_PUK_LEN), so that a typo is caught before the keystore
 * refuses it for good. */
bool phone_pin_ok(const char *pin);
bool phone_puk_ok(const char *puk);

/* ---- device activation (docs/internals/me.md "Device binding") ----------
 *
 * The device's side of the activation protocol on the AFE WebSocket:
 *   app -> AFE  {"t":"activate","m":MSISDN,"n":b64(app nonce)}
 *   AFE -> app  {"t":"activate_hello","n":b64(home nonce),"b":b64(home SPKI)}
 *   app -> AFE  {"t":"activate_proof","k":b64(device SPKI),"b":b64(app
 *                binding SPKI),"s":b64(ECDSA over T),"p":b64(HMAC(h,T||"app"))}
 *   AFE -> app  {"t":"activated","d":DEVICE_ID,"p":b64(HMAC(h,T||"home"||id))}
 * then the AFE closes with 1000 (or 4001 for any refusal).  No I/O here:
 * frames in and out as text, the files written by phone_activation_save.
 * The code's hash, the private keys and the channel key are wiped by
 * phone_activation_free. */

struct phone_activation;
struct ks_params;

/* Normalise a typed activation code: spaces and dashes dropped, then
 * exactly MSSP_REG_ACTIVATION_DIGITS digits.  0, or -1. */
int phone_activation_code_normalize(const char *in, char out[MSSP_REG_ACTIVATION_DIGITS + 1]);

/* A new activation for `msisdn` ("+" and digits) with `code` (any form
 * phone_activation_code_normalize accepts; borrowed, never kept): fresh
 * device key and app binding key (P-256) and app nonce.  NULL with err. */
struct phone_activation *phone_activation_new(const char *msisdn, const char *code,
					      struct phone_err *err);
void phone_activation_free(struct phone_activation *a); /* wipes; NULL ok */

/* The first frame ("activate"), malloc'ed text (free()).  0 or -1. */
int phone_activation_start(struct phone_activation *a, char **frame, size_t *len,
			   struct phone_err *err);

enum phone_act_result {
	PHONE_ACT_NONE = 0, /* nothing to do (the AFE's "challenge", which an
			     * activating device does not answer)            */
	PHONE_ACT_SEND = 1, /* *out holds the frame to send (activate_proof) */
	PHONE_ACT_DONE,	    /* "activated" verified: the device id and channel
			     * key are known; save, then expect close 1000   */
};
/* One text frame from the AFE.  PHONE_ACT_NONE, PHONE_ACT_SEND (with
 * *out, free()), PHONE_ACT_DONE, or -1 with err (out of order, malformed, a home proof
 * that does not verify: the other end does not know the code). */
int phone_activation_frame(struct phone_activation *a, const uint8_t *msg, size_t len,
			   char **out, size_t *outlen, struct phone_err *err);
/* After PHONE_ACT_DONE: the device id the platform gave (borrowed). */
const char *phone_activation_device_id(const struct phone_activation *a);

/* After PHONE_ACT_DONE: write `phones_dir`/<msisdn>/ with device.key (PEM
 * PKCS#8, 0600), device.conf (id, msisdn, channel_key, and the demo `pin`
 * / `puk` when not NULL; 0600) and an empty keystore (ks_create with
 * `kp`, NULL: defaults).  Everything is written in a temporary directory
 * beside it and renamed into place, so a failure leaves nothing half
 * written.  An existing directory is refused unless `force` (then it is
 * replaced, also by rename).  0, or -1 with err. */
int phone_activation_save(struct phone_activation *a, const char *phones_dir, const char *pin,
			  const char *puk, bool force, const struct ks_params *kp,
			  struct phone_err *err);

/* ---- a device ------------------------------------------------------------ */

struct phone_dev;

/* A registration job that needs the user (or the demo table): a key to
 * generate with a PIN, or a PIN to unblock.  Borrowed from the device
 * until answered. */
struct phone_job {
	const char *pj_job;	   /* job id (as received: sanitize to print)  */
	bool pj_unblock;	   /* false: keygen                            */
	const char *pj_key;	   /* key group id                             */
	const char *pj_purpose;	   /* keygen: "authn" / "sign"                 */
	bool pj_pin;		   /* keygen: the new key has a PIN (ask a new
				    * PIN and the PUK)                         */
	bool pj_exists;		   /* keygen: the key was generated before and
				    * its answer lost: only its PIN is needed
				    * for a new CSR (never a second key)       */
	unsigned pj_puk_tries;	   /* unblock: PUK tries left                  */
};

/* A prompt as shown to the user; borrowed from the device until it is
 * answered or withdrawn. */
struct phone_prompt {
	const char *pp_nonce;
	const char *pp_key;	    /* key group id                          */
	const char *pp_ap_name;
	const char *pp_dtbd;	    /* as received: sanitize before printing */
	const char *pp_dtbd_mime;
	bool pp_has_pin;	    /* the keystore's group needs a PIN      */
	unsigned pp_pin_tries;	    /* tries left                            */
	int pp_key_status;	    /* 0: usable; 402/403 blocked, 404 no
				     * such group in the keystore            */
};

struct phone_dev_ops {
	/* Send one text frame to the AFE (borrowed for the call).  0, or -1
	 * (the connection is going away: nothing is lost, answers stay until
	 * acknowledged). */
	int (*po_send)(void *arg, const char *text, size_t len);
	/* One log line (no newline), of the forms in mss-phone.md. */
	void (*po_event)(void *arg, const char *line);
	/* A new prompt: the caller answers it later with phone_dev_sign /
	 * phone_dev_refuse / phone_dev_demo (or never). */
	void (*po_prompt)(void *arg, const struct phone_prompt *p);
	/* A prompt went away without the user (cancel, ack).  May be NULL. */
	void (*po_withdraw)(void *arg, const char *nonce);
	/* The AP's receipt text (borrowed, unsanitized).  May be NULL. */
	void (*po_receipt)(void *arg, const char *nonce, const char *message);
	/* A warning for the operator (stderr).  May be NULL. */
	void (*po_warn)(void *arg, const char *msg);
	/* A keygen or unblock job waits for phone_dev_job_keygen /
	 * phone_dev_job_unblock / phone_dev_job_refuse / phone_dev_job_demo.
	 * May be NULL: the demo answer is given at once. */
	void (*po_job)(void *arg, const struct phone_job *j);
};

/* Open the device in directory `dir` (device.conf, device.key, keystore:
 * all must be there and valid; the keystore stays open and locked).
 * `ops` and `arg` are borrowed for the device's life.  NULL with err. */
struct phone_dev *phone_dev_open(const char *dir, const struct phone_dev_ops *ops, void *arg,
				 struct phone_err *err);
void phone_dev_free(struct phone_dev *d); /* wipes; accepts NULL */

const char *phone_dev_id(const struct phone_dev *d);
const char *phone_dev_msisdn(const struct phone_dev *d);

/* A WebSocket to the AFE is open: expect a challenge.  A new connection
 * always starts from scratch (fresh app nonce, no session). */
void phone_dev_connected(struct phone_dev *d);
/* The connection ended: session keys wiped. */
void phone_dev_disconnected(struct phone_dev *d);
/* True after "ready" on the current connection. */
bool phone_dev_is_ready(const struct phone_dev *d);

/* One text frame from the AFE.  0, or -1 with err when the connection
 * must be closed (protocol violation, our own failure).  A blob that does
 * not open or decode is dropped with a warning: the AFE cannot forge one,
 * so closing would only let it cut us off more cheaply. */
int phone_dev_frame(struct phone_dev *d, const uint8_t *msg, size_t len, struct phone_err *err);

/* The prompt `nonce` if it is still pending, else NULL. */
const struct phone_prompt *phone_dev_prompt(struct phone_dev *d, const char *nonce);
size_t phone_dev_pending(const struct phone_dev *d); /* prompts waiting */
size_t phone_dev_unacked(const struct phone_dev *d); /* answers kept    */

/* Flags of phone_dev_sign. */
#define PHONE_SIGN_RETRY_PIN 0x1u  /* a wrong PIN with tries left is not final:
				    * return KS_STATUS_WRONG_PIN, keep the
				    * prompt (the user types it again)        */
#define PHONE_SIGN_OTHER_DATA 0x2u /* demo: sign the DTBS with bytes appended */

/* Answer the pending prompt `nonce` by signing its DTBS with its key group
 * (CMS SignedData, SHA-256, content attached) and `pin` (borrowed; NULL for
 * a PIN-less group).  The answer (500 with the CMS, or the refusal status)
 * is kept until acknowledged and sent now if a session is up.
 * Returns 0 when answered, KS_STATUS_WRONG_PIN (with PHONE_SIGN_RETRY_PIN,
 * prompt kept), or -1 when there is no such prompt / no memory. */
int phone_dev_sign(struct phone_dev *d, const char *nonce, const char *pin, unsigned flags);
/* Answer with a refusal status: 401 USER_CANCEL, 402, 403, 404, 422 or
 * 900 (-1 for any other status, the prompt stays).  0 or -1. */
int phone_dev_refuse(struct phone_dev *d, const char *nonce, int status);
/* Answer as the demo table says for this device (may do nothing).  0 or
 * -1 as phone_dev_sign. */
int phone_dev_demo(struct phone_dev *d, const char *nonce);

/* ---- registration jobs (mss/appmsg.h keygen, cert, unblock, job_ack) ----
 *
 * Every job answer ({"t":"job_answer","job":J,"status":S[,"csr"]}) is kept
 * until HomeMSSP's job_ack, re-sent after every HELLO, and re-sent
 * instead of doing the job again when the same job comes back: a job is
 * never done twice (no second key, no second PUK attempt).  Statuses:
 *   keygen   0 with the CSR; 101 the keystore refuses the group (full,
 *            group id in use by a certified key, bad PIN/PUK format);
 *            401 the user cancelled; 900 our failure (no demo PIN/PUK)
 *   cert     0; 101 not the group's key or bad DER; 404 no such group; 900
 *   unblock  0; 401 cancelled; 403 PUK blocked (for ever); 404 no such
 *            group; 101 a PIN-less group; 900 (a wrong demo PUK: a bug)
 * Event lines: "JOB <msisdn> <job> <type> <key>", "JOB_ANSWER <msisdn>
 * <job> <status>", "JOB_ACK <msisdn> <job>". */

/* The pending job `job` (waiting for the user), else NULL. */
const struct phone_job *phone_dev_job(struct phone_dev *d, const char *job);
size_t phone_dev_jobs_pending(const struct phone_dev *d);
size_t phone_dev_jobs_unacked(const struct phone_dev *d); /* answers kept */

/* Answer a pending keygen job: generate the key (with `pin` and `puk`,
 * both NULL for a PIN-less key; for pj_exists only `pin`) and answer the
 * CSR, or the refusal.  0 when answered; KS_STATUS_WRONG_PIN (pj_exists,
 * tries left, job kept); -1 no such job or memory. */
int phone_dev_job_keygen(struct phone_dev *d, const char *job, const char *pin, const char *puk);
/* Flag of phone_dev_job_unblock: a wrong PUK with tries left is not
 * final (KS_STATUS_WRONG_PUK returned, the job kept). */
#define PHONE_JOB_RETRY_PUK 0x1u
/* Answer a pending unblock job with the PUK and the new PIN.  0 when
 * answered; KS_STATUS_WRONG_PUK (with PHONE_JOB_RETRY_PUK); -1. */
int phone_dev_job_unblock(struct phone_dev *d, const char *job, const char *puk,
			  const char *new_pin, unsigned flags);
/* Answer with a refusal (401, or any 100..999).  0 or -1. */
int phone_dev_job_refuse(struct phone_dev *d, const char *job, int status);
/* The demo answer: the PIN and PUK of device.conf (900 when missing). */
int phone_dev_job_demo(struct phone_dev *d, const char *job);

#endif
