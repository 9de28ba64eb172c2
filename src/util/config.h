/*
 * config.h - the configuration file: a small, strict INI dialect.
 *
 *   # a comment (only at the start of a line, so values may hold '#')
 *   [section]            or   [section "name"]   (e.g. [ap "http://demo.ap/"])
 *   key = value          (value: the rest of the line, blanks trimmed)
 *
 * Strict, because a configuration mistake must never silently weaken the
 * platform (bad-inputs F-11: an invalid configuration is refused whole):
 * unknown sections or keys (checked against the caller's schema), a key
 * twice in one section, a key outside any section, a malformed line,
 * control characters, invalid UTF-8, too many lines/sections/keys or too
 * long a line are all errors that name the line number - never the value,
 * which may be secret.
 *
 * Ownership: a struct cfg owns every string it hands out; they live until
 * cfg_free().  The configuration is immutable once loaded: reloading builds
 * a new struct cfg and swaps it (F-11).
 */
#ifndef MSSP_UTIL_CONFIG_H
#define MSSP_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CFG_ERR_MAX 160

struct cfg_err {
	unsigned line;		/* 0 when not about one line */
	char msg[CFG_ERR_MAX];
};

struct cfg;

/* What a section may contain.  `keys` ends with NULL.  A section type
 * with `named` set is written [type "name"] and may appear several times
 * (once per name); otherwise [type] appears at most once. */
struct cfg_section_schema {
	const char *type;
	bool named;
	const char *const *keys;
};

/* Parse `len` bytes (borrowed).  With `schema` (n entries) every section
 * and key must be declared there.  NULL with err on any error. */
struct cfg *cfg_parse(const char *text, size_t len, const struct cfg_section_schema *schema,
		      size_t n, struct cfg_err *err);
/* Read and parse a file (at most MSSP_CFG_MAX_BYTES). */
struct cfg *cfg_load(const char *path, const struct cfg_section_schema *schema, size_t n,
		     struct cfg_err *err);
void cfg_free(struct cfg *c); /* accepts NULL */

/* Sections in file order: count, and type/name of the i-th (name NULL for
 * an unnamed section).  Strings borrowed from `c`. */
size_t cfg_section_count(const struct cfg *c);
const char *cfg_section_type(const struct cfg *c, size_t i);
const char *cfg_section_name(const struct cfg *c, size_t i);
/* Index of section type[/name] (name NULL for unnamed), or -1. */
int cfg_section_find(const struct cfg *c, const char *type, const char *name);

/* The value of `key` in section `sec` (an index), or NULL if absent. */
const char *cfg_get(const struct cfg *c, int sec, const char *key);
/* Typed access: absent gives `def` (0 returned); present but not of the
 * type or outside [min, max] gives -1 with err naming the line. */
int cfg_get_uint(const struct cfg *c, int sec, const char *key, unsigned long def,
		 unsigned long min, unsigned long max, unsigned long *out, struct cfg_err *err);
int cfg_get_bool(const struct cfg *c, int sec, const char *key, bool def, bool *out,
		 struct cfg_err *err);
/* The line a key was read from (for messages), 0 if absent. */
unsigned cfg_line(const struct cfg *c, int sec, const char *key);

#endif
