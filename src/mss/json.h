/*
 * json.h - the Kiuru JSON mirror of TS 102 204 messages.
 *
 * One JSON object per message whose single top-level key is the SOAP
 * element name (`MSS_SignatureReq`, ..., or `Fault`).  Attributes and
 * elements become members of the same names, every scalar is a JSON string
 * (except the few booleans of the Methics profile-query extension), an
 * mssURI is a plain string, AdditionalService payloads are {"Value": ...},
 * and service responses sit at the message level (`ServiceResponses`).
 * The same descriptor tables as the SOAP codec drive it (msg.h), so both
 * encodings accept exactly the same content.
 *
 * Reading is strict: duplicate keys, unknown keys, wrong JSON types, bad
 * UTF-8, NUL and control characters, trailing bytes, a BOM and depth or
 * size beyond the caps are refused with 101 (bad-inputs J-01..J-09).
 * Writing is compact with keys sorted, as the reference deployment does
 * (the Swisscom scripts read `"Key":"value"` pairs and take the last
 * `"Value"` of the line as the status).
 */
#ifndef MSSP_MSS_JSON_H
#define MSSP_MSS_JSON_H

#include <stddef.h>

#include "mss/msg.h"
#include "mss/status.h"
#include "util/buf.h"

enum {
	/* Server side: only requests; responses and faults give 101. */
	MSS_JSON_REQUESTS_ONLY = 1 << 0,
};

/* Decode `len` bytes (borrowed).  New message (mss_msg_free) or NULL with
 * `err` set. */
struct mss_msg *mss_json_decode(const char *buf, size_t len, unsigned flags,
				struct mss_err *err);

/* Append the compact JSON form of `msg` to `out`.  0, or -1 with err set. */
int mss_json_encode(const struct mss_msg *msg, struct mss_buf *out,
		    struct mss_err *err);

/* Append the Kiuru REST fault object for `f`.  0 or -1 on overflow. */
int mss_json_encode_fault(const struct mss_fault *f, struct mss_buf *out);

#endif
