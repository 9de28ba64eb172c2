/*
 * fuzz_config.c - libFuzzer target for the configuration parser
 * (src/util/config.c): parse with and without a schema, walk everything
 * that was accepted.  Corpus: tests/fuzz/corpus/config/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static const char *const server_keys[] = { "data_dir", "workers", "debug", NULL };
static const char *const ap_keys[] = { "certificate", "suspended", NULL };
static const struct cfg_section_schema schema[] = {
	{ "server", false, server_keys },
	{ "ap", true, ap_keys },
};

static void
walk(const struct cfg *c)
{
	size_t i;
	unsigned long v = 0;
	bool b = false;
	struct cfg_err err;

	for (i = 0; i < cfg_section_count(c); i++) {
		const char *t = cfg_section_type(c, i), *n = cfg_section_name(c, i);

		if (t == NULL || cfg_section_find(c, t, n) != (int)i)
			abort(); /* sections are unique and found again */
		sink += strlen(t) + (n ? strlen(n) : 0);
		v = 0;
		b = false;
		/* on failure the outputs are left as they were */
		(void)cfg_get_uint(c, (int)i, "workers", 1, 1, 64, &v, &err);
		(void)cfg_get_bool(c, (int)i, "debug", false, &b, &err);
		sink += v + b;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_err err;
	struct cfg *c;

	c = cfg_parse((const char *)data, size, NULL, 0, &err);
	if (c != NULL) {
		walk(c);
		cfg_free(c);
	} else if (err.msg[0] == '\0') {
		abort(); /* a refusal always says why */
	}
	c = cfg_parse((const char *)data, size, schema, 2, &err);
	if (c != NULL) {
		walk(c);
		cfg_free(c);
	}
	return 0;
}
