/*
 * validate.h - the checks every message passes after decoding and before
 * any business logic: one validator for SOAP and JSON alike, so the same
 * logical request always earns the same answer (bad-inputs J-10).
 *
 * What is checked here needs nothing but the message itself: required
 * fields, supported versions, MSISDN syntax, messaging mode, TimeOut range,
 * data encodings and lengths, what may be displayed to a user, signature
 * profile syntax, MSS_Format and AdditionalService URIs.  What needs the
 * platform's state (is the AP allowed, does the user exist, is the Instant
 * fresh, is the AP_TransID new) belongs to the AE.
 */
#ifndef MSSP_MSS_VALIDATE_H
#define MSSP_MSS_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "mss/msg.h"
#include "mss/status.h"

/* 0 when `msg` passes, -1 with `err` set (the code the AP must get).
 * Messages decoded from JSON (msg->soap == MSS_SOAP_NONE) may omit what the
 * Kiuru REST API lets clients omit (versions, MSSP_Info, parts of AP_Info;
 * fields flagged MSS_F_JOPT); the REST gateway fills those in. */
int mss_validate(const struct mss_msg *msg, struct mss_err *err);

/* MSISDN syntax: optional '+', then 6..15 digits, the first not 0
 * (E.164 without the national trunk prefix).  No spaces, no Unicode
 * digits, no "00" international prefix (bad-inputs ). */
bool mss_msisdn_valid(const char *msisdn);

/* Text a user will be shown: 0 if acceptable, -1 with err set to 107 for
 * control, bidi or invisible characters or 103 when longer than the
 * display allows in GSM 03.38 (239) or, if any character is outside it,
 * UCS-2 (119). */
int mss_display_text_check(const char *text, struct mss_err *err);

#endif
