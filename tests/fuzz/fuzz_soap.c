/*
 * fuzz_soap.c - libFuzzer target for the SOAP codec (src/mss/soap.c) and,
 * through the round-trip oracle, the validator and the JSON codec.
 * Corpus: tests/fuzz/corpus/soap/ (plus the shared ETSI samples and the
 * message corpus, added by scripts/fuzz.sh).
 */
#include <stdint.h>

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
		return 0;
	}
	fuzz_check_message(m);
	mss_msg_free(m);
	return 0;
}
