/*
 * pki.c - the pki layer's error helpers and crypto policy.
 */
#include "pki/pki.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

int
pki_err_set(struct pki_err *e, int status, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->status = status;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -1;
}

void
pki_err_clear_openssl(void)
{
	ERR_clear_error();
}

void
pki_policy_default(struct pki_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->pp_rsa_min_bits = 2048;
	p->pp_rsa_max_bits = 8192;
	p->pp_digests = PKI_MD_SHA256 | PKI_MD_SHA384 | PKI_MD_SHA512;
	p->pp_curves = PKI_CURVE_P256 | PKI_CURVE_P384 | PKI_CURVE_P521;
	p->pp_rsa_paddings = PKI_PAD_PKCS1 | PKI_PAD_PSS;
	p->pp_allow_rsa = true;
	p->pp_allow_ec = true;
}

struct name_bit {
	const char *name;
	unsigned bit;
};

static const struct name_bit digest_names[] = {
	{ "sha1", PKI_MD_SHA1 },     { "sha224", PKI_MD_SHA224 }, { "sha256", PKI_MD_SHA256 },
	{ "sha384", PKI_MD_SHA384 }, { "sha512", PKI_MD_SHA512 },
};
static const struct name_bit curve_names[] = {
	{ "P-256", PKI_CURVE_P256 }, { "P-384", PKI_CURVE_P384 }, { "P-521", PKI_CURVE_P521 },
};
static const struct name_bit padding_names[] = {
	{ "pkcs1", PKI_PAD_PKCS1 }, { "pss", PKI_PAD_PSS },
};

/* "a,b,c" -> bits; -1 on an unknown name. */
static int
parse_list(const char *v, size_t vlen, const struct name_bit *names, size_t n, unsigned *out)
{
	size_t i, len;
	const char *p = v, *end = v + vlen, *comma;
	unsigned bits = 0;

	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		len = (size_t)((comma ? comma : end) - p);
		for (i = 0; i < n; i++)
			if (strlen(names[i].name) == len && strncasecmp(names[i].name, p, len) == 0)
				break;
		if (i == n)
			return -1;
		bits |= names[i].bit;
		p += len + (comma ? 1 : 0);
	}
	*out = bits;
	return 0;
}

static int
parse_uint(const char *v, size_t vlen, unsigned max, unsigned *out)
{
	unsigned long x = 0;
	size_t i;

	if (vlen == 0 || vlen > 6)
		return -1;
	for (i = 0; i < vlen; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	if (x > max)
		return -1;
	*out = (unsigned)x;
	return 0;
}

static int
parse_onoff(const char *v, size_t vlen, bool *out)
{
	if (vlen == 2 && strncmp(v, "on", 2) == 0)
		*out = true;
	else if (vlen == 3 && strncmp(v, "off", 3) == 0)
		*out = false;
	else
		return -1;
	return 0;
}

int
pki_policy_parse(struct pki_policy *p, const char *text, struct pki_err *err)
{
	struct pki_policy np = *p;
	const char *s = text, *tok_end, *eq;
	size_t klen, vlen;
	int rc;

	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		for (tok_end = s; *tok_end && *tok_end != ' ' && *tok_end != '\t' && *tok_end != '\n'; tok_end++)
			;
		eq = memchr(s, '=', (size_t)(tok_end - s));
		if (eq == NULL)
			return pki_err_set(err, 101, "crypto policy: expected key=value");
		klen = (size_t)(eq - s);
		vlen = (size_t)(tok_end - eq - 1);
#define KEY(k) (klen == strlen(k) && strncmp(s, k, klen) == 0)
		if (KEY("rsa_min_bits"))
			rc = parse_uint(eq + 1, vlen, 16384, &np.pp_rsa_min_bits);
		else if (KEY("rsa_max_bits"))
			rc = parse_uint(eq + 1, vlen, 16384, &np.pp_rsa_max_bits);
		else if (KEY("digests"))
			rc = parse_list(eq + 1, vlen, digest_names, 5, &np.pp_digests);
		else if (KEY("curves"))
			rc = parse_list(eq + 1, vlen, curve_names, 3, &np.pp_curves);
		else if (KEY("rsa_padding"))
			rc = parse_list(eq + 1, vlen, padding_names, 2, &np.pp_rsa_paddings);
		else if (KEY("rsa"))
			rc = parse_onoff(eq + 1, vlen, &np.pp_allow_rsa);
		else if (KEY("ec"))
			rc = parse_onoff(eq + 1, vlen, &np.pp_allow_ec);
		else
			return pki_err_set(err, 101, "crypto policy: unknown setting");
#undef KEY
		if (rc != 0)
			return pki_err_set(err, 101, "crypto policy: invalid value");
		s = tok_end;
	}
	if (np.pp_rsa_min_bits > np.pp_rsa_max_bits)
		return pki_err_set(err, 101, "crypto policy: rsa_min_bits above rsa_max_bits");
	*p = np;
	return 0;
}

int
pki_policy_check_digest(const struct pki_policy *p, int md_nid, struct pki_err *err)
{
	unsigned bit;

	switch (md_nid) {
	case NID_sha1: bit = PKI_MD_SHA1; break;
	case NID_sha224: bit = PKI_MD_SHA224; break;
	case NID_sha256: bit = PKI_MD_SHA256; break;
	case NID_sha384: bit = PKI_MD_SHA384; break;
	case NID_sha512: bit = PKI_MD_SHA512; break;
	default: bit = 0; break;
	}
	if ((p->pp_digests & bit) == 0)
		return pki_err_set(err, 503, "Digest algorithm not allowed by the crypto policy");
	return 0;
}

int
pki_policy_check_key(const struct pki_policy *p, const void *evp_pkey, struct pki_err *err)
{
	const EVP_PKEY *k = evp_pkey;
	char curve[64];
	size_t len = 0;
	int bits;

	if (k == NULL)
		return pki_err_set(err, 503, "No key");
	if (EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "RSA-PSS")) {
		bits = EVP_PKEY_get_bits(k);
		if (!p->pp_allow_rsa)
			return pki_err_set(err, 503, "RSA keys not allowed by the crypto policy");
		if (bits < (int)p->pp_rsa_min_bits || bits > (int)p->pp_rsa_max_bits)
			return pki_err_set(err, 503, "RSA key size %d not allowed by the crypto policy", bits);
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		unsigned bit = 0;

		if (!p->pp_allow_ec)
			return pki_err_set(err, 503, "EC keys not allowed by the crypto policy");
		if (!EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof(curve), &len))
			return pki_err_set(err, 503, "EC key without a named curve");
		if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
			bit = PKI_CURVE_P256;
		else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
			bit = PKI_CURVE_P384;
		else if (strcmp(curve, "secp521r1") == 0 || strcmp(curve, "P-521") == 0)
			bit = PKI_CURVE_P521;
		if ((p->pp_curves & bit) == 0)
			return pki_err_set(err, 503, "Curve not allowed by the crypto policy");
		return 0;
	}
	return pki_err_set(err, 503, "Key type not allowed by the crypto policy");
}
