/*
 * fuzz_codec.h - the oracle shared by the SOAP and JSON fuzz targets.
 *
 * A message that decodes must validate or be refused with a defined code;
 * its SOAP and JSON encodings must decode again to an equal message (when
 * the message has a SOAP form at all).  Any broken property abort()s, so
 * the fuzzer reports it as a crash.
 */
#ifndef MSSP_FUZZ_CODEC_H
#define MSSP_FUZZ_CODEC_H

#include <stdlib.h>

#include "mss/json.h"
#include "mss/soap.h"
#include "mss/validate.h"
#include "util/limits.h"

static volatile size_t fuzz_sink;

static void
fuzz_check_message(struct mss_msg *m)
{
	struct mss_err err;
	struct mss_buf b;
	struct mss_msg *again;
	int rc;

	rc = mss_validate(m, &err);
	if (rc != 0 && (err.kind != MSS_E_STATUS || mss_status_lookup(err.code) == NULL))
		abort();
	fuzz_sink += (size_t)rc + err.detail[0];

	mss_buf_init(&b, 8 * MSSP_HTTP_MAX_BODY);
	if (mss_json_encode(m, &b, &err) != 0)
		abort(); /* every decoded message has a JSON form */
	again = mss_json_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
	if (again == NULL) {
		/* only the size cap may refuse our own output */
		if (!(err.kind == MSS_E_HTTP && mss_buf_len(&b) > MSSP_HTTP_MAX_BODY))
			abort();
	} else if (!mss_msg_equal(m, again)) {
		abort();
	}
	mss_msg_free(again);
	fuzz_sink += mss_buf_len(&b);
	mss_buf_free(&b);

	mss_buf_init(&b, 8 * MSSP_HTTP_MAX_BODY);
	if (mss_soap_encode(m, m->soap == MSS_SOAP_11 ? MSS_SOAP_11 : MSS_SOAP_12, &b, &err) == 0) {
		again = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
		if (again == NULL) {
			if (!(err.kind == MSS_E_HTTP && mss_buf_len(&b) > MSSP_HTTP_MAX_BODY) &&
			    err.code != MSS_WRONG_PARAM)
				abort();
		} else if (!mss_msg_equal(m, again)) {
			abort();
		}
		mss_msg_free(again);
	}
	fuzz_sink += mss_buf_len(&b);
	mss_buf_free(&b);
}

#endif
