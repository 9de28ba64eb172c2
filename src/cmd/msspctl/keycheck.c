/*
 * keycheck.c - msspctl keycheck: run the registration key-quality checks
 * (src/pki/keycheck, security.md P-24) over key, certificate and CSR files.
 *
 *   msspctl keycheck [--policy TEXT]... [--known FILE] [--compromised FILE] FILE...
 *   msspctl keycheck --fingerprint FILE...
 *
 * One line per file on stdout: "FILE: ok" or "FILE: refused: CHECK: REASON"
 * (with --fingerprint: "HEX  FILE", the format --known reads).  Exit 0 if
 * every key passed, 1 if any was refused or could not be parsed, 2 on a
 * usage error or an unreadable file (reported on stderr; the other files
 * are still checked).  Argument handling and printing only.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "cmd/msspctl/ctl.h"
#include "pki/keycheck.h"
#include "pki/pki.h"

#define KC_EXIT_REFUSED 1
#define KC_EXIT_USAGE 2

static void
usage(FILE *f)
{
	fputs("usage: msspctl keycheck [--policy TEXT]... [--known FILE] [--compromised FILE] FILE...\n"
	      "       msspctl keycheck --fingerprint FILE...\n"
	      "\n"
	      "Checks each public key, private key (its public part only), certificate or\n"
	      "CSR, PEM or DER, as registration does: key type, RSA size, exponent, small\n"
	      "factors, perfect powers, Fermat, ROCA, prime modulus, EC curve and point.\n"
	      "  --policy TEXT       crypto policy settings, e.g. \"rsa_min_bits=3072 curves=P-256\"\n"
	      "  --known FILE        SHA-256 SPKI fingerprints already registered (hex, one a\n"
	      "                      line): a key among them is refused as a duplicate\n"
	      "  --compromised FILE  the same for keys known to be compromised\n"
	      "  --fingerprint       only print each key's fingerprint (\"HEX  FILE\")\n"
	      "Exit: 0 all passed, 1 a key was refused, 2 usage error or unreadable file.\n",
	      f);
}

/* 0 passed, 1 refused, 2 unreadable. */
static int
one_file(const char *path, const struct pki_policy *pol, const struct pki_keycheck_sets *sets, bool fp_only)
{
	unsigned char fp[PKI_KEYCHECK_FP_LEN];
	char hex[PKI_KEYCHECK_FP_HEX + 1];
	enum pki_keycheck_verdict v;
	struct pki_err err = { 0 };
	EVP_PKEY *key;
	int rc;

	key = pki_keycheck_load_file(path, &v, &err);
	if (key == NULL) {
		if (v == PKI_KEYCHECK_UNREADABLE) {
			fprintf(stderr, "msspctl keycheck: %s: %s\n", path, err.detail);
			return KC_EXIT_USAGE;
		}
		printf("%s: refused: %s: %s\n", path, pki_keycheck_verdict_name(v), err.detail);
		return KC_EXIT_REFUSED;
	}
	if (fp_only) {
		rc = pki_keycheck_fingerprint(key, fp, &err);
		if (rc == 0) {
			pki_keycheck_fp_hex(fp, hex);
			printf("%s  %s\n", hex, path);
		} else {
			fprintf(stderr, "msspctl keycheck: %s: %s\n", path, err.detail);
			rc = KC_EXIT_USAGE;
		}
		EVP_PKEY_free(key);
		return rc;
	}
	if (pki_keycheck_pkey(key, pol, sets, &v, &err) == 0) {
		printf("%s: ok\n", path);
		rc = 0;
	} else {
		printf("%s: refused: %s: %s\n", path, pki_keycheck_verdict_name(v), err.detail);
		rc = v == PKI_KEYCHECK_INTERNAL ? KC_EXIT_USAGE : KC_EXIT_REFUSED;
	}
	EVP_PKEY_free(key);
	return rc;
}

int
ctl_keycheck(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "known", required_argument, NULL, 'k' },
		{ "compromised", required_argument, NULL, 'c' },
		{ "fingerprint", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pki_keycheck_known known, compromised;
	struct pki_keycheck_sets sets = { NULL, NULL };
	struct pki_policy pol;
	struct pki_err err = { 0 };
	const char *known_path = NULL, *compromised_path = NULL;
	bool fp_only = false;
	int c, i, r, status = 0;

	pki_policy_default(&pol);
	pki_keycheck_known_init(&known);
	pki_keycheck_known_init(&compromised);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (pki_policy_parse(&pol, optarg, &err) != 0) {
				fprintf(stderr, "msspctl keycheck: --policy: %s\n", err.detail);
				status = KC_EXIT_USAGE;
				goto out;
			}
			break;
		case 'k':
			known_path = optarg;
			break;
		case 'c':
			compromised_path = optarg;
			break;
		case 'f':
			fp_only = true;
			break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			usage(stderr);
			status = KC_EXIT_USAGE;
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		status = KC_EXIT_USAGE;
		goto out;
	}
	if (known_path != NULL) {
		if (pki_keycheck_known_load(&known, known_path, &err) != 0) {
			fprintf(stderr, "msspctl keycheck: %s: %s\n", known_path, err.detail);
			status = KC_EXIT_USAGE;
			goto out;
		}
		sets.ks_registered = &known;
	}
	if (compromised_path != NULL) {
		if (pki_keycheck_known_load(&compromised, compromised_path, &err) != 0) {
			fprintf(stderr, "msspctl keycheck: %s: %s\n", compromised_path, err.detail);
			status = KC_EXIT_USAGE;
			goto out;
		}
		sets.ks_compromised = &compromised;
	}
	for (i = optind; i < argc; i++) {
		r = one_file(argv[i], &pol, &sets, fp_only);
		if (r > status)
			status = r;
	}
out:
	fflush(stdout);
	pki_keycheck_known_free(&known);
	pki_keycheck_known_free(&compromised);
	return status;
}
