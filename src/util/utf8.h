/*
 * utf8.h - strict UTF-8 validation (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF.  One implementation for every layer
 * (the message lexer, the ME's inputs, the audit log, key checks).
 *
 * Thread-safe, no state.
 */
#ifndef MSSP_UTIL_UTF8_H
#define MSSP_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Is s[0..len) well-formed UTF-8?  (NUL bytes are U+0000: valid here;
 * callers that refuse controls check them themselves.) */
bool utf8_valid(const char *s, size_t len);

/* 1..max bytes, each visible ASCII (0x21..0x7e): the store's record names,
 * identifiers and URIs as the ME and the mesh accept them. */
bool ascii_visible(const char *s, size_t max);

#endif
