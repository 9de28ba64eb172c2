/*
 * fuzz_audit.c - libFuzzer target for the audit log verifier
 * (src/store/audit.c, audit_verify_file and audit_read): the parser that
 * reads a log file an attacker may have edited at will (P-05), so it must
 * survive any bytes and always give a verdict.
 *
 * The input is split at the first 0x00 byte: before it the log file, after
 * it the head file (no 0x00: no head).  A head that has the head's shape
 * (a JSON object with "hash", "node", "seq" and maybe "next") is re-signed
 * with a key of this harness, in the form its members say (with "next":
 * the current form; without: the old one), so that the checks after the
 * signature - the head's entry, the committed "next" entry (review F2) -
 * are reached too; other heads are written as they are.  Oracle, abort()
 * when broken:
 *   - verify never fails with -1 on a readable file (it reports problems,
 *     it does not give up);
 *   - 0 (intact) only with no problem counted; 1 only with at least one
 *     problem reported; 0 with a head only when the head is ok;
 *   - audit_read either reads or fails with 900, never anything else.
 * Corpus: tests/fuzz/corpus/audit/, logs written by the real appender,
 * edited the ways the tamper tests edit them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "store/audit.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char logp[128], headp[128], pubp[128];
static EVP_PKEY *key;
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

/* The head, re-signed with the harness key when it has a head's members
 * (audit.h: the bytes signed); NULL when it has not.  Heap. */
static char *
head_resign(const uint8_t *p, size_t n)
{
	json_error_t je;
	json_t *o = json_loadb((const char *)p, n, 0, &je);
	json_t *hash = json_object_get(o, "hash"), *node = json_object_get(o, "node");
	json_t *seq = json_object_get(o, "seq"), *next = json_object_get(o, "next");
	unsigned char sig[128], b64[256];
	char tbs[512], *out = NULL;
	size_t sl = sizeof(sig);
	int tl;
	EVP_MD_CTX *c;

	if (!json_is_string(hash) || !json_is_string(node) || !json_is_integer(seq) ||
	    (next != NULL && !json_is_string(next))) {
		json_decref(o);
		return NULL;
	}
	if (next != NULL)
		tl = snprintf(tbs, sizeof(tbs), "mssp-audit-head-v2%c%s%c%lld%c%s%c%s", 0,
			      json_string_value(node), 0, (long long)json_integer_value(seq), 0,
			      json_string_value(hash), 0, json_string_value(next));
	else
		tl = snprintf(tbs, sizeof(tbs), "mssp-audit-head-v1%c%s%c%lld%c%s", 0,
			      json_string_value(node), 0, (long long)json_integer_value(seq), 0,
			      json_string_value(hash));
	c = EVP_MD_CTX_new();
	if (tl > 0 && (size_t)tl < sizeof(tbs) && c != NULL &&
	    EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(c, sig, &sl, (unsigned char *)tbs, (size_t)tl) == 1) {
		EVP_EncodeBlock(b64, sig, (int)sl);
		json_object_set_new(o, "sig", json_string((char *)b64));
		out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	}
	EVP_MD_CTX_free(c);
	json_decref(o);
	return out;
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
		snprintf(pubp, sizeof pubp, "%s/audit.pub", dir);
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		FILE *f = fopen(pubp, "w");
		if (!key || !f || PEM_write_PUBKEY(f, key) != 1 || fclose(f) != 0)
			abort();
	}
	const uint8_t *z = memchr(data, 0, size);
	size_t loglen = z ? (size_t)(z - data) : size;
	if (write_file(logp, data, loglen) != 0)
		abort();
	unlink(headp);
	char *signed_head = z ? head_resign(z + 1, size - loglen - 1) : NULL;
	if (signed_head && write_file(headp, (const uint8_t *)signed_head, strlen(signed_head)) != 0)
		abort();
	if (z && !signed_head && write_file(headp, z + 1, size - loglen - 1) != 0)
		abort();
	free(signed_head);

	struct audit_verify_result res;
	struct store_err err;
	size_t problems = 0;
	memset(&res, 0, sizeof res);
	int rc = audit_verify_file(logp, z ? headp : NULL, z ? pubp : NULL, count_problem,
				   &problems, &res, &err);
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
	if (rc == 0 && z && !res.av_head_ok)
		abort();

	size_t lines = 0;
	if (audit_read(logp, 0, MSSP_STORE_MAX_LIST, count_line, &lines, &err) != 0 &&
	    err.status != 900)
		abort();
	return 0;
}
