/*
 * mreg.h - MReg (Methics MSS_Registration over SOAP) on the ME listener:
 * POST /soap/services/MSS_RegistrationPort, SOAP 1.1 or 1.2, roles admin
 * and ra (docs/internals/me.md "MReg", protocol.md §11).
 *
 * Each RegistrationInput names a target (MobileUser/MSISDN or
 * SimCard/MSISDN) and operations; each operation becomes one reg_call
 * (so the role table, validation and the audit record are reg's).  Names
 * match with or without a "prefix:" (mids:, kiuru:):
 *
 *   GetMobileUser        user.get         -> msisdn givenName surName
 *                                            Language hetu Country name state
 *   ListMobileUsers      user.list        (q = target MSISDN prefix, or
 *                                            parameters q state after limit)
 *                                         -> one "msisdn" per user
 *   CreateMobileUser     user.create      msisdn|MSISDN givenName surName
 *                                         Language hetu Country (name)
 *   UpdateMobileUser     user.update      the same but msisdn
 *   DeactivateMobileUser user.suspend     ReactivateMobileUser user.resume
 *   DeleteMobileUser     user.delete
 *   ActivateMobileUser   activation.create -> ActivationCode, Expires
 *   GetCertificates      cert.list        -> per certificate its scalar
 *                                            members (serial first)
 *   RevokeCertificate    cert.revoke      serial, reason
 *   UnblockPin           pin.unblock      keyId -> job
 * Parameter names are matched case-insensitively.  Each OperationOutput
 * carries Name (as sent), its Parameters and Status/OperationStatusCode
 * 100 or reg's code (with reg's generic message); the response's
 * StatusCode is 100 when every operation succeeded, else the first
 * failure's code.  All MregResponses go into one RegistrationOutput (the
 * codec's StatusDetail holds one), with InputId when there is one input.
 *
 * A body that does not decode or validate, another message than
 * MSS_RegistrationReq, more than MSSP_MREG_MAX_INPUTS inputs or a role
 * other than admin/ra is a SOAP fault (mss_fault_from_err), HTTP 500.
 *
 * Secrets: an ActivateMobileUser answer carries the activation code; the
 * reg answer, the message arena and (in me.c) the encoded body are
 * wiped before they are freed.
 *
 * Threads: pool threads (the store handle of the calling thread).
 * Ownership: inputs borrowed; outputs as stated per function.
 */
#ifndef MSSP_ROLES_MREG_H
#define MSSP_ROLES_MREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mss/msg.h"
#include "roles/reg.h"
#include "util/buf.h"

struct store;

/* Handle one request body.  `soap11_hint`: the request's media type was
 * text/xml (the fault version when the envelope cannot be read).
 * `mssp_id` (may be NULL) goes into MSSP_Info.  Appends the answer to
 * `out` (mss_buf_init'ed by the caller, cap MSSP_SRV_MAX_RESPONSE) and
 * sets *http_status (200, or 500 with a fault).  The content type is
 * MREG_CONTENT_TYPE for both SOAP versions (what the tested clients
 * parse, as the AE answers). */
#define MREG_CONTENT_TYPE "text/xml; charset=utf-8"
void mreg_handle(struct reg *r, struct store *st, const struct reg_actor *who,
		 const char *body, size_t len, bool soap11_hint, const char *mssp_id,
		 int64_t now_ms, struct mss_buf *out, int *http_status);

/* ---- the mapping, separable for tests ----------------------------------- */

enum mreg_kind {
	MREG_GET_USER = 1,
	MREG_LIST_USERS,
	MREG_CREATE_USER,
	MREG_UPDATE_USER,
	MREG_DEACTIVATE_USER,
	MREG_REACTIVATE_USER,
	MREG_DELETE_USER,
	MREG_ACTIVATE_USER,
	MREG_GET_CERTIFICATES,
	MREG_REVOKE_CERTIFICATE,
	MREG_UNBLOCK_PIN,
};

/* One operation as a reg request.  rq.rq_arg / rq_arg2 point into
 * mc_arg / mc_arg2; rq_body / rq_query are owned (mreg_call_clear). */
struct mreg_call {
	enum mreg_kind mc_kind;
	struct reg_request mc_rq;
	char mc_arg[MSSP_STORE_MAX_REC_NAME + 1];
	char mc_arg2[MSSP_STORE_MAX_REC_NAME + 1];
};

/* Map operation `op` for target MSISDN `msisdn` (may be NULL or "").
 * 0, or -1 with e (400/101: unknown operation, a missing parameter). */
int mreg_map(const struct mss_mreg_operation *op, const char *msisdn, struct mreg_call *out,
	     struct reg_err *e);
void mreg_call_clear(struct mreg_call *c);

/* Append the output Parameters of a successful call (reg's answer `res`)
 * to `params` (a list of struct mss_mreg_param * in msg's arena).  0, or
 * -1 on memory. */
int mreg_outputs(struct mss_msg *msg, enum mreg_kind kind, json_t *res,
		 struct mss_list *params);

/* Wipe, in place, the activation code of a reg answer (the string member
 * "code" of activation.create's object; anything else is left alone):
 * called on an answer before json_decref, so that the code, shown once,
 * does not stay in freed memory (OPENSSL_cleanse).  Accepts NULL.  The ME
 * uses it for the JSON API as well. */
void mreg_wipe_code(json_t *res);

#endif
