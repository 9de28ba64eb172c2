/*
 * fuzz_keystore.c - libFuzzer target for the keystore file parser
 * (src/phone/keystore.c, ks_load_bytes).
 *
 * A keystore file is only ever interpreted after its SHA-256 checksum line
 * matched, so random bytes would almost never get past that line.  Each
 * input is therefore parsed twice: as the whole file (exercising the
 * checksum and trailer checks), and as a body to which the harness appends
 * a correct checksum line (exercising the strict JSON parser, the base64,
 * key and certificate decoding behind it, as a hostile editor of the file
 * could).  Invariants, abort() when broken:
 *   - a refused file gives status 900 and a detail text;
 *   - an accepted file re-serializes, the result parses again, and
 *     serializing that gives the same bytes (a fixed point);
 *   - the read-only API works on what was accepted (count, info, find,
 *     public key), and a PIN-less group's key either decrypts to a key
 *     matching its public key or is refused (never a crash).
 * PIN wrappings are not tried: scrypt at the file's cost is far too slow
 * for fuzzing, and GCM is OpenSSL's.
 *
 * The harness includes keystore.c itself so that it can reach the parser's
 * static functions; scripts/fuzz.sh does not link src/phone/ (see
 * docs/internals/keystore.md).  Corpus: tests/fuzz/corpus/keystore/, file
 * bodies whose wrapped keys were replaced by random bytes (no key material).
 */
#include "phone/keystore.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static struct ks *
fresh(void)
{
	struct ks *ks = OPENSSL_zalloc(sizeof(*ks));

	if (ks == NULL)
		abort();
	ks->k_lock_fd = -1;
	return ks;
}

static void
drop(struct ks *ks)
{
	ks_close(ks); /* k_lock_fd is -1: nothing to unlock */
}

static void
exercise(struct ks *ks)
{
	struct ks_group_info gi;
	struct pki_err err;

	for (size_t i = 0; i < ks_count(ks); i++) {
		struct ks_group *g = ks->k_groups[i];
		EVP_PKEY *pub;

		if (ks_group_info(ks, i, &gi, &err) != 0)
			abort();
		sink += gi.gi_nprofiles + gi.gi_pin_tries + (size_t)gi.gi_state;
		if (ks_find(ks, gi.gi_purpose, gi.gi_nprofiles ? gi.gi_profiles[0] : NULL, &err) == NULL)
			abort();
		pub = ks_public_key(ks, gi.gi_id, &err);
		if (pub == NULL)
			abort();
		EVP_PKEY_free(pub);
		if (!g->g_has_pin) {
			size_t derlen = 0;
			unsigned char *der = unwrap(ks, g, KS_WRAP_DEVICE, NULL, &g->g_wrap_dev, &derlen);

			if (der != NULL) {
				EVP_PKEY *k = der_to_key(g, der, derlen);

				sink += k != NULL;
				EVP_PKEY_free(k);
				OPENSSL_clear_free(der, derlen);
			}
		}
	}
	pki_err_clear_openssl();
}

static void
check(const unsigned char *img, size_t len)
{
	struct pki_err err;
	struct ks *a = fresh(), *b;
	unsigned char *s1, *s2;
	size_t l1 = 0, l2 = 0;

	memset(&err, 0, sizeof(err));
	if (ks_load_bytes(a, img, len, &err) != 0) {
		if (err.status != 900 || err.detail[0] == '\0' || a->k_ngroups != 0)
			abort();
		drop(a);
		return;
	}
	exercise(a);
	s1 = ks_serialize(a, &l1);
	if (s1 == NULL)
		abort();
	b = fresh();
	if (ks_load_bytes(b, s1, l1, &err) != 0)
		abort();
	s2 = ks_serialize(b, &l2);
	if (s2 == NULL || l1 != l2 || memcmp(s1, s2, l1) != 0)
		abort();
	OPENSSL_clear_free(s1, l1);
	OPENSSL_clear_free(s2, l2);
	drop(a);
	drop(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char dg[KS_SHA256_LEN], *img;
	size_t body, total;

	if (size > MSSP_KEYSTORE_MAX_FILE)
		return 0;
	check(data, size);

	/* the same bytes as a body, with a valid checksum line */
	body = size + (size == 0 || data[size - 1] != '\n');
	total = body + KS_TRAILER_LEN;
	img = malloc(total);
	if (img == NULL)
		return 0;
	if (size > 0)
		memcpy(img, data, size);
	img[body - 1] = '\n';
	if (sha256(img, body, dg) != 0)
		abort();
	memcpy(img + body, KS_TRAILER_PREFIX, sizeof(KS_TRAILER_PREFIX) - 1);
	hex_lower(dg, sizeof(dg), (char *)img + body + sizeof(KS_TRAILER_PREFIX) - 1);
	img[total - 1] = '\n';
	check(img, total);
	free(img);
	return 0;
}
