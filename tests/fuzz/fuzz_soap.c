/*
 * fuzz_soap.c - libFuzzer target for the SOAP codec (src/mss/soap.c) and,
 * through the round-trip oracle, the validator and the JSON codec.
 * Every input is decoded twice: as an AP endpoint reads it (flags 0, the
 * shared oracle of fuzz_codec.h), and as a mesh endpoint reads it
 * (MSS_SOAP_ROAMING), where a decoded TS 102 207 RoamingHeader must
 * survive encode -> decode unchanged.
 * Corpus: tests/fuzz/corpus/soap/ (plus the shared ETSI samples and the
 * message corpus, added by scripts/fuzz.sh).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mss_soap_init();
	return 0;
}

static int
str_same(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static int
roam_equal(const struct mss_roam_hdr *a, const struct mss_roam_hdr *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->n != b->n || !str_same(a->home_mssp, b->home_mssp))
		return 0;
	for (i = 0; i < a->n; i++) {
		const struct mss_roam_entry *x = &a->entry[i], *y = &b->entry[i];

		if (x->major != y->major || x->minor != y->minor || x->timeout_s != y->timeout_s ||
		    x->role != y->role || !str_same(x->instant, y->instant) ||
		    !str_same(x->re_trans_id, y->re_trans_id) || !str_same(x->sender_id, y->sender_id))
			return 0;
	}
	return 1;
}

/* True when `m` without its header does not survive encode -> decode
 * either: then a refusal was not the header's fault.  (The element cap,
 * which the header's elements count towards, is excused by the caller.) */
static int
body_refused(struct mss_msg *m)
{
	struct mss_roam_hdr *h = m->roam;
	struct mss_err err;
	struct mss_msg *again;
	struct mss_buf b;
	int refused;

	m->roam = NULL;
	mss_buf_init(&b, 8 * MSSP_HTTP_MAX_BODY);
	refused = mss_soap_encode(m, m->soap == MSS_SOAP_11 ? MSS_SOAP_11 : MSS_SOAP_12, &b, &err) != 0;
	if (!refused) {
		again = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
		refused = again == NULL;
		mss_msg_free(again);
	}
	mss_buf_free(&b);
	m->roam = h;
	return refused;
}

/* The mesh reading: a RoamingHeader that decodes is within the caps, is
 * written back (requests, responses, notifications: faults carry none)
 * and reads back equal, and the same bytes are a MustUnderstand fault at
 * a node without the flag. */
static void
fuzz_roaming(const uint8_t *data, size_t size, const struct mss_msg *plain)
{
	struct mss_err err;
	struct mss_msg *m, *again;
	struct mss_buf b;

	m = mss_soap_decode((const char *)data, size, MSS_SOAP_ROAMING, &err);
	if (m == NULL) {
		if (err.kind == MSS_E_NONE)
			abort();
		if (err.code == 780 && err.kind != MSS_E_STATUS)
			abort();
		fuzz_sink += (size_t)err.code;
		return;
	}
	/* the flag changes the header only: the same body either way */
	if (plain != NULL && !mss_msg_equal(plain, m))
		abort();
	if (m->roam == NULL || m->type == MSS_FAULT) {
		if (m->roam != NULL && (m->roam->n < 1 || m->roam->n > MSSP_MESH_MAX_HOPS))
			abort();
		mss_msg_free(m);
		return;
	}
	if (m->roam->n < 1 || m->roam->n > MSSP_MESH_MAX_HOPS)
		abort();
	mss_buf_init(&b, 8 * MSSP_HTTP_MAX_BODY);
	if (mss_soap_encode(m, m->soap == MSS_SOAP_11 ? MSS_SOAP_11 : MSS_SOAP_12, &b, &err) != 0)
		abort(); /* a decoded header is always one the encoder accepts */
	again = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), MSS_SOAP_ROAMING, &err);
	if (again == NULL) {
		/* as in fuzz_codec.h: the size cap, or a body field that does
		 * not survive re-encoding; never the header */
		if (!(err.kind == MSS_E_HTTP && mss_buf_len(&b) > MSSP_HTTP_MAX_BODY) &&
		    err.code != MSS_WRONG_PARAM)
			abort();
		if (err.kind == MSS_E_STATUS && strcmp(err.detail, "Too many XML elements") != 0 &&
		    !body_refused(m))
			abort();
	} else if (!mss_msg_equal(m, again) || !roam_equal(m->roam, again->roam)) {
		abort();
	} else {
		/* the same bytes at a node without the flag */
		mss_msg_free(again);
		again = mss_soap_decode(mss_buf_str(&b), mss_buf_len(&b), 0, &err);
		if (again != NULL || err.kind != MSS_E_MUST_UNDERSTAND)
			abort();
	}
	fuzz_sink += mss_buf_len(&b);
	mss_buf_free(&b);
	mss_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mss_err err;
	struct mss_msg *m;

	m = mss_soap_decode((const char *)data, size, 0, &err);
	if (m == NULL) {
		if (err.kind == MSS_E_NONE)
			abort(); /* a refusal always says why */
		fuzz_sink += (size_t)err.code;
	} else {
		fuzz_check_message(m);
	}
	fuzz_roaming(data, size, m);
	mss_msg_free(m);
	return 0;
}
