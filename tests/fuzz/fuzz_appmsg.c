/*
 * fuzz_appmsg.c - libFuzzer target for the app channel's JSON messages
 * (src/mss/appmsg.c, appmsg_decode / appmsg_encode): the plaintext inside
 * the end-to-end protection, which HomeMSSP and the phone decode from each
 * other.
 *
 * Round-trip oracle, abort() when broken:
 *   - a refusal is 101 with a detail text, and leaves the struct cleared
 *     (all zero: no heap member left behind);
 *   - an accepted message encodes (the encoder runs the same checks, so it
 *     must never refuse what the decoder accepted), within
 *     MSSP_E2E_MAX_PLAIN;
 *   - the encoding decodes again to a struct equal field by field;
 *   - encoding that second struct gives the same bytes as the first
 *     encoding (compact, sorted keys: one message has one text).
 * Corpus: tests/fuzz/corpus/appmsg/, one message of each type as HomeMSSP
 * and the phone write them, plus a few near misses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mss/appmsg.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static bool
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if ((a == NULL) != (b == NULL) || alen != blen)
		return false;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

static bool
text_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The registration-job members (issue 5). */
static bool
jobs_eq(const struct appmsg *a, const struct appmsg *b)
{
	if (!text_eq(a->am_job, b->am_job) || !text_eq(a->am_purpose, b->am_purpose) ||
	    !text_eq(a->am_alg, b->am_alg) || a->am_nprofiles != b->am_nprofiles ||
	    a->am_nchain != b->am_nchain ||
	    !bytes_eq(a->am_der, a->am_der_len, b->am_der, b->am_der_len))
		return false;
	for (size_t i = 0; i < a->am_nprofiles && i < MSSP_KEYSTORE_MAX_PROFILES; i++)
		if (!text_eq(a->am_profiles[i], b->am_profiles[i]))
			return false;
	for (size_t i = 0; i < a->am_nchain && i < MSSP_KEYSTORE_MAX_CHAIN; i++)
		if (!bytes_eq(a->am_chain[i], a->am_chain_len[i], b->am_chain[i], b->am_chain_len[i]))
			return false;
	return true;
}

/* Field by field (the fixed arrays up to their NUL: bytes after it are
 * not part of the value). */
static bool
msg_eq(const struct appmsg *a, const struct appmsg *b)
{
	return a->am_type == b->am_type && text_eq(a->am_nonce, b->am_nonce) &&
	       text_eq(a->am_ap_name, b->am_ap_name) && text_eq(a->am_ap_id, b->am_ap_id) &&
	       text_eq(a->am_key, b->am_key) && text_eq(a->am_profile, b->am_profile) &&
	       a->am_pin == b->am_pin && text_eq(a->am_dtbd, b->am_dtbd) &&
	       text_eq(a->am_dtbd_mime, b->am_dtbd_mime) &&
	       bytes_eq(a->am_dtbs, a->am_dtbs_len, b->am_dtbs, b->am_dtbs_len) &&
	       text_eq(a->am_dtbs_mime, b->am_dtbs_mime) &&
	       a->am_deadline_ms == b->am_deadline_ms && text_eq(a->am_lang, b->am_lang) &&
	       text_eq(a->am_event, b->am_event) && text_eq(a->am_nospam, b->am_nospam) &&
	       a->am_status == b->am_status &&
	       bytes_eq(a->am_cms, a->am_cms_len, b->am_cms, b->am_cms_len) &&
	       text_eq(a->am_message, b->am_message) && jobs_eq(a, b);
}

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct appmsg m1, m2;
	struct mss_err err;
	char *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;

	memset(&m1, 0, sizeof(m1));
	if (appmsg_decode(data, size, &m1, &err) != 0) {
		if (err.code != MSS_WRONG_PARAM || err.detail[0] == '\0' ||
		    !all_zero(&m1, sizeof(m1)))
			abort();
		sink += strlen(err.detail);
		return 0;
	}
	sink += strlen(appmsg_type_name(m1.am_type));
	if (appmsg_encode(&m1, &e1, &l1, &err) != 0)
		abort(); /* the decoder accepted it: the encoder must too */
	if (e1 == NULL || l1 == 0 || l1 > MSSP_E2E_MAX_PLAIN || strlen(e1) != l1)
		abort();

	memset(&m2, 0, sizeof(m2));
	if (appmsg_decode((const uint8_t *)e1, l1, &m2, &err) != 0)
		abort(); /* our own encoding refused */
	if (!msg_eq(&m1, &m2))
		abort();
	if (appmsg_encode(&m2, &e2, &l2, &err) != 0)
		abort();
	if (l1 != l2 || memcmp(e1, e2, l1) != 0)
		abort(); /* not a fixed point */

	sink += l1;
	free(e1);
	free(e2);
	appmsg_clear(&m1);
	appmsg_clear(&m2);
	if (!all_zero(&m1, sizeof(m1)))
		abort();
	return 0;
}
