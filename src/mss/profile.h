/*
 * profile.h - signature profiles: parse, order, compare, select.
 *
 * A SignatureProfile names what kind of key the AP wants used: which
 * operation (sign, authn, ...), at which level of assurance, on which kind of
 * secure signature creation device.  This module understands two forms:
 *
 *   - the `mss:` URI scheme (IANA provisional), parsed into its elements:
 *         mss:<brand>:<operation>:<loa>:<sscd>[?k=v&k][#k=v&k]
 *   - legacy http(s) profile URIs (Laverca, Swisscom, FiCom, GSMA), kept as
 *     opaque strings that are equal only to themselves, unless the
 *     configuration maps them to an `mss:` profile with an alias table.
 *
 * The module is sans-I/O and allocation-free (except mss_profile_to_json):
 * struct mss_profile is self-contained (fixed arrays sized from
 * util/limits.h, parameters stored as offsets into its own pool), so it may
 * be copied by assignment or memcpy and needs no free function.
 *
 * Failure convention: int functions return 0 on success and -1 on failure;
 * the optional `err`/`errlen` buffer receives a short English reason that
 * NEVER echoes any part of the input (the input is attacker-controlled and
 * ends up in logs and SOAP faults).  `err` may be NULL or `errlen` 0.
 *
 * Fail-safe: a struct mss_profile that did not come out of a successful
 * mss_profile_parse()/mss_profile_resolve_alias() (for instance one that is
 * zero-initialised, or the output of a failed parse) is "invalid" and never
 * satisfies, nor is satisfied by, anything.
 *
 * Semantics (orders, "any", selection) are explained with their reasons in
 * docs/internals/profile.md.
 */
#ifndef MSSP_MSS_PROFILE_H
#define MSSP_MSS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/limits.h"

/* PKI operation.  ANY (also: empty element) matches every operation. */
enum mss_profile_op {
	MSS_PROFILE_OP_ANY = 0,
	MSS_PROFILE_OP_SIGN,      /* "sign": plain-text signature            */
	MSS_PROFILE_OP_AUTHN,     /* "authn": authentication                 */
	MSS_PROFILE_OP_ENCRYPT,   /* "encrypt": decryption key               */
	MSS_PROFILE_OP_POP,       /* "pop": PKCS#10 proof of possession      */
	MSS_PROFILE_OP_POPO,      /* "popo": CMP/CRMF proof of possession    */
	MSS_PROFILE_OP_CONSENT,   /* "consent"                               */
	MSS_PROFILE_OP_ANONYMOUS, /* "anonymous": restricted-attribute authn */
	MSS_PROFILE_OP_DIGEST,    /* "digest": hash signing                  */
};

/* Level of assurance (ISO/IEC 29115).  The value IS the level number, so
 * levels compare with < and >.  ANY (0) is "not specified". */
enum mss_loa {
	MSS_LOA_ANY = 0,
	MSS_LOA_2 = 2,
	MSS_LOA_3 = 3,
	MSS_LOA_4 = 4,
};

/* Secure signature creation device.  Compare strength with
 * mss_profile_sscd_strength(), never the enum values. */
enum mss_sscd {
	MSS_SSCD_ANY = 0,
	MSS_SSCD_APP,    /* phone app keystore                 (strength 1) */
	MSS_SSCD_SERVER, /* server-side key unlocked by user   (strength 2) */
	MSS_SSCD_SE,     /* removable/integrated secure element (strength 3) */
	MSS_SSCD_SIM,    /* UICC/eSIM; "UICC" parses to this   (strength 3) */
};

/* SignatureProfileComparison of TS 102 204. */
enum mss_profile_cmp {
	MSS_CMP_EXACT = 0,   /* the default when the element is absent */
	MSS_CMP_MINIMUM,
	MSS_CMP_BETTER,
	MSS_CMP_INVALID = -1,
};

/* Marks a key-only parameter ("#rsa") in struct mss_profile_param. */
#define MSS_PROFILE_NO_VALUE UINT16_MAX

/* One ?query or #fragment parameter.  Offsets index pr_pool (offsets, not
 * pointers, so that copying a struct mss_profile stays valid).  Read them
 * with mss_profile_param_name()/mss_profile_param_value(). */
struct mss_profile_param {
	uint16_t pp_name;     /* offset of the decoded, NUL-terminated name  */
	uint16_t pp_value;    /* offset of the decoded value, or NO_VALUE    */
	bool pp_fragment;     /* came from #fragment (else from ?query)      */
};

struct mss_profile {
	bool pr_valid;   /* set last by a successful parse; see fail-safe above */
	bool pr_legacy;  /* opaque http(s) URI: only pr_uri is meaningful       */
	/* The URI exactly as received (always NUL-terminated). */
	char pr_uri[MSSP_PROFILE_MAX_URI + 1];
	/* Percent-decoded, ASCII-lowercased brand (valid UTF-8, no controls);
	 * "" means any. */
	char pr_brand[MSSP_PROFILE_MAX_BRAND + 1];
	enum mss_profile_op pr_op;
	enum mss_loa pr_loa;
	/* Lowercased LoA extension ("eidas" for loa3.eidas); "" = none. */
	char pr_loa_ext[MSSP_PROFILE_MAX_LOA_EXT + 1];
	enum mss_sscd pr_sscd;
	size_t pr_nparams;
	struct mss_profile_param pr_params[MSSP_PROFILE_MAX_EXT];
	char pr_pool[MSSP_PROFILE_MAX_URI + 1];
};

/* A configured mapping from a legacy URI to an `mss:` profile. */
struct mss_profile_alias {
	const char *pa_from; /* legacy URI, matched byte for byte */
	const char *pa_to;   /* `mss:` URI it stands for          */
};

/* The aliases of the demo environment (docs/architecture.md). */
extern const struct mss_profile_alias mss_profile_demo_aliases[];
extern const size_t mss_profile_demo_aliases_count;

/*
 * Parse `uri` into `*out`.  Borrows `uri` (MUST be NUL-terminated when not
 * NULL); `out` MUST NOT be NULL.  On success returns 0 and `*out` is a valid
 * profile.  On failure returns -1, writes a reason to `err`, and leaves
 * `*out` invalid (zeroed).  Rejects: NULL/empty input, more than
 * MSSP_PROFILE_MAX_URI bytes, any byte outside 0x21..0x7e, schemes other than
 * mss/http/https, and every grammar violation listed in
 * docs/internals/profile.md.
 */
int mss_profile_parse(const char *uri, struct mss_profile *out, char *err,
		      size_t errlen);

/* Name and value of parameter `i` (0 <= i < p->pr_nparams); borrowed from
 * `p`, valid while `p` lives.  Value is NULL for a key-only parameter.
 * Both return NULL when `p` is NULL or `i` is out of range. */
const char *mss_profile_param_name(const struct mss_profile *p, size_t i);
const char *mss_profile_param_value(const struct mss_profile *p, size_t i);

/* Parse a SignatureProfileComparison value.  NULL (element absent) gives
 * MSS_CMP_EXACT as TS 102 204 specifies; "exact", "minimum", "better" (exact
 * spelling, as the schema enumerates them) give their value; anything else,
 * including "", gives MSS_CMP_INVALID. */
enum mss_profile_cmp mss_profile_cmp_parse(const char *s);

/* Static names ("sign", "loa3", "sim", "exact" ...); "any" for the ANY
 * values; NULL for a value outside the enum. */
const char *mss_profile_op_name(enum mss_profile_op op);
const char *mss_profile_sscd_name(enum mss_sscd s);
const char *mss_profile_cmp_name(enum mss_profile_cmp c);

/* Strength of a device: APP 1 < SERVER 2 < SE 3 = SIM 3; ANY 0; -1 for a
 * value outside the enum. */
int mss_profile_sscd_strength(enum mss_sscd s);

/*
 * Does the `available` profile (a key the user holds; SHOULD be concrete)
 * satisfy the `requested` one under `cmp`?  Borrows both.  False when either
 * pointer is NULL, either profile is invalid, or `cmp` is not one of the
 * three comparisons.  In every mode: brand and operation must match (ANY on
 * the requested side matches everything, ANY on the available side
 * satisfies only ANY), requested parameters must be present in `available`
 * with equal values, a requested LoA extension must be carried by
 * `available`, and a legacy profile is satisfied only by a byte-equal legacy
 * profile.  Then:
 *   EXACT:   same LoA level and same device (ANY requested: not checked);
 *   MINIMUM: LoA level >= and device strength >=;
 *   BETTER:  as MINIMUM, and strictly greater in at least one dimension
 *            that the request specifies (an ANY dimension is "don't care":
 *            it neither constrains nor counts as an improvement).
 */
bool mss_profile_satisfies(const struct mss_profile *requested,
			   const struct mss_profile *available,
			   enum mss_profile_cmp cmp);

/*
 * Choose the key to use.  Borrows both arrays (each MAY be NULL only when
 * its count is 0).  Returns an index into `available`, or -1 when nothing
 * fits (the caller answers 109 UNSUPPORTED_PROFILE), when nreq or navail is
 * 0 (the caller decides defaults), or when `cmp` is invalid.
 *   EXACT:   for each requested profile in request order, the first
 *            available profile (in availability order) that satisfies it;
 *   MINIMUM: among the available profiles that satisfy at least one
 *            requested profile, the weakest;
 *   BETTER:  among the available profiles that are better than EVERY
 *            requested profile (TS 102 204: "better than all requested"),
 *            the weakest.
 * "Weakest" = lowest LoA level, then lowest device strength, then the
 * earliest in `available` (least privilege: never use a stronger key than
 * the request needs).
 */
int mss_profile_select(const struct mss_profile *requested, size_t nreq,
		       const struct mss_profile *available, size_t navail,
		       enum mss_profile_cmp cmp);

/*
 * Map a legacy URI to the `mss:` profile the configuration aliases it to.
 * Borrows `uri` and `table` (n entries; `table` MAY be NULL when n is 0).
 * `uri` is matched byte for byte against pa_from; the first match wins.
 * Returns 0 with `*out` = the parsed pa_to.  Returns -1 (and `*out`
 * invalid) when no entry matches, or when the matching target is not a valid
 * `mss:` URI (aliases do not chain).  `out` MUST NOT be NULL.
 */
int mss_profile_resolve_alias(const char *uri,
			      const struct mss_profile_alias *table, size_t n,
			      struct mss_profile *out, char *err,
			      size_t errlen);

/*
 * Write the canonical text of `p` into `buf` (len bytes, NUL included).
 * Legacy: the URI as received.  mss: lowercase elements, "" for ANY,
 * trailing ANY elements dropped, "UICC" as "sim", brand and parameters
 * re-encoded with uppercase %XX only where needed.  The canonical text is
 * never longer than the parsed URI, so MSSP_PROFILE_MAX_URI + 1 bytes always
 * suffice.  Returns 0, or -1 (and buf set to "" when len > 0) if `p` is
 * NULL/invalid or the buffer is too small.
 */
int mss_profile_format(const struct mss_profile *p, char *buf, size_t len);

/*
 * Describe `p` as a JSON object (what `msspctl profile parse` prints).
 * Returns a new reference (the caller json_decref()s it), or NULL if `p` is
 * NULL/invalid or memory runs out.  mss: {"uri", "canonical", "legacy":
 * false, "brand", "operation", "loa", "loa_level", "loa_ext", "sscd",
 * "sscd_strength", "params": [{"name", "value", "in": "query"|"fragment"}]};
 * every key is always present and JSON null means "any" (or, for loa_ext and
 * a param value, "none").  Legacy: {"uri", "canonical", "legacy": true}.
 */
json_t *mss_profile_to_json(const struct mss_profile *p);

#endif
