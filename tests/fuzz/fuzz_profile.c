/*
 * fuzz_profile.c - libFuzzer target for src/mss/profile.c.
 *
 * The input is one SignatureProfile URI.  Besides looking for memory errors
 * it checks the invariants the rest of the server relies on, and abort()s
 * when one breaks:
 *   - a profile EXACT- and MINIMUM-satisfies itself, and is never BETTER
 *     than itself, except a legacy one (opaque: identity in every mode);
 *   - EXACT implies MINIMUM, and BETTER implies MINIMUM;
 *   - the canonical form fits MSSP_PROFILE_MAX_URI, is no longer than the
 *     input, re-parses, is a fixed point, and means the same profile;
 *   - mss_profile_select() returns an index that really satisfies.
 * Corpus: tests/fuzz/corpus/profile/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mss/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed_uris[] = {
	"mss:",
	"mss::sign:loa3",
	"mss::authn:loa2",
	"mss:demo:sign:loa3:app",
	"mss:demo:authn:loa3:app",
	"mss:ficom.fi:authn:loa4:UICC#rsa&2048",
	"mss::sign:loa3.eidas:server?ECC=true&AlgECC=NIST-256",
	"mss:demo:sign:loa4.eidas:se?ECC=true&AlgECC=NIST-256",
	"mss::::sim",
	"http://alauda.mobi/nonRepudiation",
	"http://mid.swisscom.ch/MID/v1/AuthProfile1",
};
#define NFIXED (sizeof(fixed_uris) / sizeof(fixed_uris[0]))

static const enum mss_profile_cmp cmps[] = {
	MSS_CMP_EXACT, MSS_CMP_MINIMUM, MSS_CMP_BETTER,
};

static volatile int sink;

static void check_pair(const struct mss_profile *r, const struct mss_profile *a)
{
	bool s[3];

	for (size_t c = 0; c < 3; c++) {
		s[c] = mss_profile_satisfies(r, a, cmps[c]);
		sink += s[c];
	}
	if ((s[0] || s[2]) && !s[1])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mss_profile fixed[NFIXED], p, q;
	char uri[MSSP_PROFILE_MAX_URI + 64];
	char one[MSSP_PROFILE_MAX_URI + 1], two[MSSP_PROFILE_MAX_URI + 1];
	char err[128];
	json_t *j;
	int idx;

	/* Inputs longer than the cap are still parsed (and must be refused):
	 * keep a little beyond it, NUL-terminated. */
	if (size > sizeof(uri) - 1)
		size = sizeof(uri) - 1;
	memcpy(uri, data, size);
	uri[size] = '\0';

	if (mss_profile_parse(uri, &p, err, sizeof(err)) != 0) {
		if (p.pr_valid || err[0] == '\0')
			abort();
		/* An invalid profile matches nothing. */
		if (mss_profile_satisfies(&p, &p, MSS_CMP_MINIMUM))
			abort();
		return 0;
	}
	for (size_t i = 0; i < NFIXED; i++)
		if (mss_profile_parse(fixed_uris[i], &fixed[i], NULL, 0) != 0)
			abort();

	if (!mss_profile_satisfies(&p, &p, MSS_CMP_EXACT) ||
	    !mss_profile_satisfies(&p, &p, MSS_CMP_MINIMUM) ||
	    mss_profile_satisfies(&p, &p, MSS_CMP_BETTER) != p.pr_legacy)
		abort();
	for (size_t i = 0; i < NFIXED; i++) {
		check_pair(&p, &fixed[i]);
		check_pair(&fixed[i], &p);
	}

	for (size_t c = 0; c < 3; c++) {
		idx = mss_profile_select(&p, 1, fixed, NFIXED, cmps[c]);
		if (idx >= 0 && !mss_profile_satisfies(&p, &fixed[idx], cmps[c]))
			abort();
		idx = mss_profile_select(fixed, NFIXED, &p, 1, cmps[c]);
		sink += idx;
	}

	if (mss_profile_format(&p, one, sizeof(one)) != 0 ||
	    strlen(one) > strlen(uri))
		abort();
	if (mss_profile_parse(one, &q, NULL, 0) != 0 ||
	    mss_profile_format(&q, two, sizeof(two)) != 0 ||
	    strcmp(one, two) != 0 ||
	    !mss_profile_satisfies(&p, &q, MSS_CMP_EXACT) ||
	    !mss_profile_satisfies(&q, &p, MSS_CMP_EXACT))
		abort();

	j = mss_profile_to_json(&p);
	if (j == NULL)
		abort();
	sink += (int)json_object_size(j);
	json_decref(j);
	return 0;
}
