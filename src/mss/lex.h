/*
 * lex.h - lexical checks of the XML Schema types TS 102 204 uses.
 *
 * Both codecs call mss_lex_check() on every scalar they read, so a value
 * that is not, say, an xs:NCName is refused in SOAP and in JSON alike
 * (bad-inputs J-10: same verdict on both paths).  Semantic rules (what an
 * MSISDN looks like, which versions are supported) live in validate.c.
 */
#ifndef MSSP_MSS_LEX_H
#define MSSP_MSS_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "mss/msg.h"

/* 0 when `s` (NUL-terminated UTF-8) is a valid lexical form of `xt`, -1
 * otherwise.  `s` MUST already have had the schema white-space facet
 * applied (mss_lex_normalize). */
int mss_lex_check(enum mss_xtype xt, const char *s);

/* What both codecs call on every scalar they read: applies the white-space
 * facet to `s` in place, then mss_lex_check().  With `lenient_base64`, a
 * base64 field is only checked for control characters: responses (read by
 * AP-side tools, which decode and verify the signature themselves) keep
 * what the peer sent, so the placeholder samples of the reference clients
 * still decode; requests reaching the platform are always checked strictly.
 * 0 or -1. */
int mss_lex_check_field(enum mss_xtype xt, char *s, bool lenient_base64);

/* Apply the XML Schema white-space facet in place: xs:string keeps
 * everything; base64 drops all XML white space; every other type trims
 * leading and trailing white space (collapse, since none of them may
 * contain inner spaces).  Returns the new length. */
size_t mss_lex_normalize(enum mss_xtype xt, char *s);

/* True if `s` contains a C0 control other than TAB/LF/CR, DEL, or a C1
 * control (U+0080..U+009F).  Such characters are refused in every text
 * field (bad-inputs J-02, X-14). */
bool mss_lex_has_controls(const char *s);

/* Strict UTF-8 (no overlong forms, no surrogates, max U+10FFFF). */
bool mss_lex_utf8_valid(const char *s, size_t len);

/* Parse an xs:dateTime; on success fill seconds since the epoch (UTC) and
 * whether a time zone was given.  -1 when not a dateTime. */
int mss_lex_datetime(const char *s, long long *epoch, bool *has_tz);

/* Decode standard base64 (no white space, padding required) into `out`
 * (capacity `cap`).  With `out` NULL only validates and counts, still
 * refusing more than `cap` bytes.  Returns the decoded length, or -1. */
long mss_lex_base64_decode(const char *s, unsigned char *out, size_t cap);

#endif
