#include "mss/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mss/msg.h"

#define S MSS_CLASS_SENDER
#define R MSS_CLASS_RECEIVER
#define OK MSS_CLASS_SUCCESS

/* protocol.md §6.  Texts are ours (generic, English); names are the
 * reference deployments' so that Laverca's ErrorCodes and the Swisscom
 * scripts recognise them. */
static const struct mss_status_info status_table[] = {
	{ 100, "REQUEST_OK", "Request accepted", OK, false },
	{ 101, "WRONG_PARAM", "Error among the arguments of the request", S, false },
	{ 102, "MISSING_PARAM", "An argument in the request is missing", S, false },
	{ 103, "WRONG_DATA_LENGTH", "The data to be signed or displayed is too large", S, false },
	{ 104, "UNAUTHORIZED_ACCESS", "The application provider is not authorized", S, false },
	{ 105, "UNKNOWN_CLIENT", "Unknown mobile user", S, false },
	{ 107, "INAPPROPRIATE_DATA", "The data is not acceptable", S, false },
	{ 108, "INCOMPATIBLE_INTERFACE", "Message version not supported", S, false },
	{ 109, "UNSUPPORTED_PROFILE", "Signature profile not supported", S, false },
	{ 208, "EXPIRED_TRANSACTION", "Transaction expired", R, false },
	{ 209, "OTA_ERROR", "The mobile device could not be reached", R, false },
	{ 401, "USER_CANCEL", "User cancelled the request", S, false },
	{ 402, "PIN_NR_BLOCKED", "PIN blocked", S, false },
	{ 403, "CARD_BLOCKED", "Signature device blocked or inactive", S, false },
	{ 404, "NO_KEY_FOUND", "No active key for the request", S, false },
	{ 405, "NO_URL_FOUND", "No URL found", R, false },
	{ 406, "PB_SIGNATURE_PROCESS", "A signature process is already in progress", S, false },
	{ 407, "REGISTRATION_NOK", "Registration failed", S, false },
	{ 422, "NO_CERT_FOUND", "No valid certificate", S, false },
	{ 423, "CRL_PB", "Certificate revocation list problem", R, false },
	{ 424, "CRL_EXPIRED", "Certificate revocation list expired", R, false },
	{ 425, "ERROR_CERTIFICATE", "Certificate error", R, false },
	{ 450, "GEOFENCING_POLICY_VIOLATION", "Geofencing policy violation", S, false },
	{ 500, "SIGNATURE", "Signature created", OK, false },
	{ 501, "REVOKED_CERTIFICATE", "Signer certificate revoked", S, false },
	{ 502, "VALID_SIGNATURE", "Signature created and validated", OK, false },
	{ 503, "INVALID_SIGNATURE", "Signature failed validation", S, false },
	{ 504, "OUTSTANDING_TRANSACTION", "Transaction not finished yet", OK, false },
	{ 505, "CONSTRAINT_MISMATCH", "Result does not meet the request constraints", S, false },
	{ 900, "INTERNAL_ERROR", "Internal error", R, false },
	/* FiCom second-level codes (nested subcode). */
	{ 1011, "INVALID_NOSPAMCODE", "Invalid no-spam code", S, false },
	{ 1012, "MISSING_NOSPAMCODE", "Missing no-spam code", S, false },
	{ 1013, "ILLEGAL_MESSAGINGMODE", "Illegal messaging mode", S, false },
	{ 1014, "UNKNOWN_ADDITIONALSERVICE", "Unknown additional service", S, false },
	{ 1015, "DATATOBEDISPLAYED_NOT_SUPPORTED", "DataToBeDisplayed not supported", S, false },
	{ 1016, "UNSUPPORTED_MIMETYPE_OR_ENCODING", "Unsupported MimeType or Encoding", S, false },
	{ 1017, "MSS_FORMAT_UNSUPPORTED", "MSS_Format not supported", S, false },
	{ 1021, "DTBD_MISSING", "DataToBeDisplayed missing", S, false },
	{ 1041, "USER_DISABLED_SIGNATUREPROFILE", "User disabled the signature profile", S, false },
	{ 1042, "USER_DISABLED_ADDITIONALSERVICE", "User disabled the additional service", S, false },
	{ 1043, "SERVICE_SUSPENDED", "Service suspended", S, false },
	{ 1051, "MALFORMATTED_USER_IDENTIFIER", "Malformed user identifier", S, false },
	{ 1052, "USER_IDENTIFIER_DOES_NOT_EXIST", "User identifier does not exist", S, false },
	{ 1053, "UNREGISTERED_USER", "Unregistered user", S, false },
	{ 1054, "INCOMPATIBLE_SIM_CARD", "Incompatible SIM card", S, false },
	{ 2081, "SERVER_TIMEOUT", "Server timeout", R, false },
	{ 2082, "USER_TIMEOUT", "User timeout", R, false },
	{ 2091, "UNKNOWN_OTA_ERROR", "Unknown OTA error", R, false },
	{ 2092, "CARD_NOT_FOUND", "Card not found", R, false },
	{ 2093, "ME_COMMUNICATION_ERROR", "Mobile equipment communication error", R, false },
	{ 2094, "INVALID_CAPABILITIES", "Invalid capabilities", R, false },
	{ 4011, "USER_CANCEL", "User cancelled the request", S, false },
	{ 4012, "INCORRECT_POP", "Incorrect proof of possession", S, false },
	{ 4013, "POSTPONED_SIGNATURE", "Signature postponed", S, false },
	{ 4021, "PIN_BLOCKED", "PIN blocked", S, false },
	{ 4031, "CARD_PUK_BLOCKED", "PUK blocked", S, false },
	{ 4032, "CARD_PIN_BLOCKED", "PIN blocked", S, false },
	{ 4041, "REQUESTED_KEY_NOT_FOUND", "Requested key not found", S, false },
	{ 4042, "INCORRECT_KEY_USAGE", "Incorrect key usage", S, false },
	{ 4071, "REGISTRATION_ERROR", "Registration failed", S, false },
	{ 4072, "REGISTRATION_ERROR", "Registration failed on the server", R, false },
	{ 4073, "REGISTRATION_ERROR", "Registration failed on the SIM", R, false },
	{ 9001, "UNKNOWN_INTERNAL_ERROR", "Unknown internal error", R, false },
	{ 9002, "SERVER_ERROR", "Server error", R, false },
	{ 9003, "SIM_APPLICATION_ERROR", "SIM application error", R, false },
	{ 9004, "SIM_CONFIGURATION_ERROR", "SIM configuration error", R, false },
	{ 9005, "DTBD_MISSING", "DataToBeDisplayed missing", S, false },
	{ 9006, "INVALID_KEY_LENGTH", "Invalid key length", S, false },
	{ 9007, "INVALID_HASH_TYPE", "Invalid hash type", S, false },
	{ 9008, "INVALID_KEY_ALGORITHM", "Invalid key algorithm", S, false },
	/* TS 102 207 roaming codes. */
	{ 701, "ROAMING_HEADER_BLOCK_IS_MISSING", "Roaming header block is missing", S, true },
	{ 702, "IDENTITY_ISSUER_HEADER_IS_MISSING", "Identity issuer header is missing", S, true },
	{ 703, "HOME_MSSP_HEADER_BLOCK_IS_MISSING", "Home MSSP header block is missing", S, true },
	{ 710, "APPROPRIATE_INPUT_INFO_IS_MISSING", "Appropriate input information is missing", S, true },
	{ 720, "VALIDITY_DATE_OF_TXN_HAS_EXPIRED", "Validity date of the transaction has expired", S, true },
	{ 750, "UNABLE_TO_PROVIDE_RE_SERVICES", "Unable to provide routing services", R, true },
	{ 760, "UNABLE_TO_PROVIDE_II_SERVICES", "Unable to provide identity issuer services", R, true },
	{ 770, "UNABLE_TO_PROVIDE_VE_SERVICES", "Unable to provide verifying services", R, true },
	{ 780, "UNABLE_TO_PROVIDE_SERVICES", "Unable to provide services", R, true },
};

const struct mss_status_info *
mss_status_lookup(int code)
{
	size_t i;

	for (i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++)
		if (status_table[i].code == code)
			return &status_table[i];
	return NULL;
}

const char *
mss_status_name(int code)
{
	const struct mss_status_info *si = mss_status_lookup(code);

	return si ? si->name : "UNKNOWN";
}

const struct mss_status_info *
mss_status_table(unsigned *count)
{
	*count = (unsigned)(sizeof(status_table) / sizeof(status_table[0]));
	return status_table;
}

static void
err_detail(struct mss_err *e, const char *detail)
{
	snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
}

int
mss_err_set(struct mss_err *e, int code, int subcode, const char *detail)
{
	e->kind = MSS_E_STATUS;
	e->code = code;
	e->subcode = subcode;
	err_detail(e, detail);
	return -1;
}

int
mss_err_setf(struct mss_err *e, int code, int subcode, const char *fmt, ...)
{
	va_list ap;

	e->kind = MSS_E_STATUS;
	e->code = code;
	e->subcode = subcode;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -1;
}

int
mss_err_http(struct mss_err *e, int http_status, const char *detail)
{
	e->kind = MSS_E_HTTP;
	e->code = http_status;
	e->subcode = 0;
	err_detail(e, detail);
	return -1;
}

int
mss_err_soap(struct mss_err *e, enum mss_err_kind kind, const char *detail)
{
	e->kind = kind;
	e->code = 0;
	e->subcode = 0;
	err_detail(e, detail);
	return -1;
}

void
mss_err_clear(struct mss_err *e)
{
	memset(e, 0, sizeof(*e));
}

void
mss_fault_from_err(const struct mss_err *e, struct mss_fault *f)
{
	const struct mss_status_info *si;

	memset(f, 0, sizeof(*f));
	f->http_status = 500;
	f->subcode_ns = MSS_NS;
	f->detail = e->detail;
	switch (e->kind) {
	case MSS_E_VERSION_MISMATCH:
		f->code_value = "VersionMismatch";
		f->reason = "VersionMismatch";
		return;
	case MSS_E_MUST_UNDERSTAND:
		f->code_value = "MustUnderstand";
		f->reason = "MustUnderstand";
		return;
	case MSS_E_HTTP:
		f->http_status = e->code;
		f->code_value = "Sender";
		f->reason = "HTTP";
		return;
	case MSS_E_STATUS:
		si = mss_status_lookup(e->code);
		/* A success code is never an error: treat as internal. */
		if (si != NULL && si->cls != MSS_CLASS_SUCCESS && e->code < 1000)
			break;
		/* FALLTHROUGH */
	case MSS_E_NONE:
	default:
		si = mss_status_lookup(MSS_INTERNAL_ERROR);
		f->code = MSS_INTERNAL_ERROR;
		f->code_value = "Receiver";
		f->reason = si->name;
		if (f->detail == NULL || f->detail[0] == '\0' || e->kind != MSS_E_STATUS)
			f->detail = si->text;
		return;
	}
	f->code = e->code;
	f->subcode = e->subcode;
	f->code_value = si->cls == MSS_CLASS_RECEIVER ? "Receiver" : "Sender";
	f->subcode_ns = si->roaming ? MSS_NS_ROAM : MSS_NS;
	f->reason = si->name;
	if (f->detail[0] == '\0')
		f->detail = si->text;
}
