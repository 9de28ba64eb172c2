/*
 * fuzz_audit.c - libFuzzer target for the audit log verifier
 * (src/store/audit.c, audit_verify_file and audit_read): the parser that
 * reads a log file an attacker may have edited at will (P-05), so it must
 * survive any bytes and always give a verdict.
 *
 * The input is split at the first 0x00 byte: before it the log file, after
 * it the head file (no 0x00: no head).  Oracle, abort() when broken:
 *   - verify never fails with -1 on a readable file (it reports problems,
 *     it does not give up);
 *   - 0 (intact) only with no problem counted; 1 only with at least one
 *     problem reported;
 *   - audit_read either reads or fails with 900, never anything else.
 * Corpus: tests/fuzz/corpus/audit/, logs written by the real appender,
 * edited the ways the tamper tests edit them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/audit.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char logp[128], headp[128];
static volatile size_t sink;

static void
count_problem(void *arg, const struct audit_problem *p)
{
	size_t *n = arg;
	(*n)++;
	sink += strlen(p->ap_msg) + strlen(audit_problem_name(p->ap_kind));
}

static int
count_line(void *arg, uint64_t seq, const char *line, size_t len)
{
	size_t *n = arg;
	(*n)++;
	sink += seq + len + (len ? (unsigned char)line[0] : 0);
	return 0;
}

static int
write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = n ? fwrite(p, 1, n, f) : 0;
	return fclose(f) == 0 && w == n ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/fuzz-audit.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(logp, sizeof logp, "%s/node1.log", dir);
		snprintf(headp, sizeof headp, "%s/node1.head", dir);
	}
	const uint8_t *z = memchr(data, 0, size);
	size_t loglen = z ? (size_t)(z - data) : size;
	if (write_file(logp, data, loglen) != 0)
		abort();
	unlink(headp);
	if (z && write_file(headp, z + 1, size - loglen - 1) != 0)
		abort();

	struct audit_verify_result res;
	struct store_err err;
	size_t problems = 0;
	memset(&res, 0, sizeof res);
	int rc = audit_verify_file(logp, z ? headp : NULL, NULL, count_problem, &problems, &res,
				   &err);
	if (rc < 0) {
		/* a readable file always gets a verdict */
		fprintf(stderr, "verify gave up: %d %s\n", err.status, err.detail);
		abort();
	}
	/* (a warning, such as no head for an empty log, reaches the callback
	 * without counting as a problem) */
	if (rc == 0 && res.av_problems != 0)
		abort();
	if (rc == 1 && problems == 0)
		abort();

	size_t lines = 0;
	if (audit_read(logp, 0, MSSP_STORE_MAX_LIST, count_line, &lines, &err) != 0 &&
	    err.status != 900)
		abort();
	return 0;
}
