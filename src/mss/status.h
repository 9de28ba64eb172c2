/*
 * status.h - TS 102 204 / 207 status codes, the mss layer's error type, and
 * the ONE function that turns an internal error into the answer on the
 * wire (style.md habit 3).
 *
 * Every function of src/mss that can fail fills a struct mss_err supplied by
 * the caller and returns -1 (or NULL).  The detail text in it is generic and
 * never contains attacker input (bad-inputs rule 3); it is safe to send to
 * the AP and to log.
 */
#ifndef MSSP_MSS_STATUS_H
#define MSSP_MSS_STATUS_H

#include <stdbool.h>

/* First-level codes (protocol.md §6). */
enum {
	MSS_REQUEST_OK = 100,
	MSS_WRONG_PARAM = 101,
	MSS_MISSING_PARAM = 102,
	MSS_WRONG_DATA_LENGTH = 103,
	MSS_UNAUTHORIZED_ACCESS = 104,
	MSS_UNKNOWN_CLIENT = 105,
	MSS_INAPPROPRIATE_DATA = 107,
	MSS_INCOMPATIBLE_INTERFACE = 108,
	MSS_UNSUPPORTED_PROFILE = 109,
	MSS_EXPIRED_TRANSACTION = 208,
	MSS_OTA_ERROR = 209,
	MSS_USER_CANCEL = 401,
	MSS_PIN_NR_BLOCKED = 402,
	MSS_CARD_BLOCKED = 403,
	MSS_NO_KEY_FOUND = 404,
	MSS_NO_URL_FOUND = 405,
	MSS_PB_SIGNATURE_PROCESS = 406,
	MSS_REGISTRATION_NOK = 407,
	MSS_NO_CERT_FOUND = 422,
	MSS_CRL_PB = 423,
	MSS_CRL_EXPIRED = 424,
	MSS_ERROR_CERTIFICATE = 425,
	MSS_GEOFENCING_POLICY_VIOLATION = 450,
	MSS_SIGNATURE = 500,
	MSS_REVOKED_CERTIFICATE = 501,
	MSS_VALID_SIGNATURE = 502,
	MSS_INVALID_SIGNATURE = 503,
	MSS_OUTSTANDING_TRANSACTION = 504,
	MSS_CONSTRAINT_MISMATCH = 505,
	MSS_INTERNAL_ERROR = 900,
};

/* FiCom second-level codes used by the validator. */
enum {
	MSS_SUB_INVALID_NOSPAMCODE = 1011,
	MSS_SUB_MISSING_NOSPAMCODE = 1012,
	MSS_SUB_ILLEGAL_MESSAGINGMODE = 1013,
	MSS_SUB_UNKNOWN_ADDITIONALSERVICE = 1014,
	MSS_SUB_DTBD_NOT_SUPPORTED = 1015,
	MSS_SUB_UNSUPPORTED_MIMETYPE_OR_ENCODING = 1016,
	MSS_SUB_MSS_FORMAT_UNSUPPORTED = 1017,
	MSS_SUB_DTBD_MISSING = 1021,
	MSS_SUB_MALFORMATTED_USER_IDENTIFIER = 1051,
};

enum mss_status_class {
	MSS_CLASS_SUCCESS,	/* 100, 500, 502, 504: carried in Status     */
	MSS_CLASS_SENDER,	/* the AP's request is at fault              */
	MSS_CLASS_RECEIVER,	/* the platform or a party behind it failed  */
};

struct mss_status_info {
	int code;
	const char *name;	/* "WRONG_PARAM": Reason text and StatusMessage */
	const char *text;	/* generic human text, the default Detail        */
	enum mss_status_class cls;
	bool roaming;		/* TS 102 207 code (subcode namespace differs)   */
};

/* Table entry for `code`, or NULL if the code is not defined. */
const struct mss_status_info *mss_status_lookup(int code);
/* Name of `code`, "UNKNOWN" if not defined. */
const char *mss_status_name(int code);
/* The whole table, for tests and documentation. */
const struct mss_status_info *mss_status_table(unsigned *count);

/* What went wrong, at the wire's granularity. */
enum mss_err_kind {
	MSS_E_NONE,
	MSS_E_STATUS,		 /* a TS 102 204/207 code: fault _NNN       */
	MSS_E_VERSION_MISMATCH,	 /* SOAP env:VersionMismatch                */
	MSS_E_MUST_UNDERSTAND,	 /* SOAP env:MustUnderstand                 */
	MSS_E_HTTP,		 /* refused before SOAP/JSON: HTTP status   */
};

#define MSS_ERR_DETAIL_MAX 160

struct mss_err {
	enum mss_err_kind kind;
	int code;	/* ETSI code (MSS_E_STATUS) or HTTP status (MSS_E_HTTP) */
	int subcode;	/* FiCom second-level code, 0 if none               */
	char detail[MSS_ERR_DETAIL_MAX];
};

/* Fill `e`; `detail` is a constant or formatted text that MUST NOT contain
 * input bytes.  Always returns -1 so callers can `return mss_err_set(...)`. */
int mss_err_set(struct mss_err *e, int code, int subcode, const char *detail);
int mss_err_setf(struct mss_err *e, int code, int subcode, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int mss_err_http(struct mss_err *e, int http_status, const char *detail);
int mss_err_soap(struct mss_err *e, enum mss_err_kind kind, const char *detail);
void mss_err_clear(struct mss_err *e);

/* The answer a client gets for an error. */
struct mss_fault {
	int http_status;	/* 500 for SOAP/JSON faults, or the HTTP refusal */
	const char *code_value;	/* "Sender" / "Receiver" / "VersionMismatch" / "MustUnderstand" */
	int code;		/* 101 ... (0 for VersionMismatch/MustUnderstand) */
	int subcode;		/* FiCom second-level code or 0                   */
	const char *subcode_ns;	/* TS 102 204 or TS 102 207 namespace            */
	const char *reason;	/* code name                                      */
	const char *detail;	/* borrowed from the error                        */
};

/* THE mapping from an internal error to the ETSI/HTTP answer.  `f` borrows
 * strings from `e` and static tables; keep `e` alive while `f` is used.
 * Unknown or unset errors become 900 INTERNAL_ERROR (never a success). */
void mss_fault_from_err(const struct mss_err *e, struct mss_fault *f);

#endif
