/*
 * hex.h - hexadecimal text for fingerprints, tokens and serials: one
 * encoder and one strict decoder, so every module spells a byte string the
 * same way (lower case out; in, either case unless the caller insists).
 *
 * Thread-safe, no state.  Buffers are the caller's.
 */
#ifndef MSSP_UTIL_HEX_H
#define MSSP_UTIL_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* `n` bytes as 2n lower-case hex digits and a NUL into `out`
 * (2n + 1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Exactly 2 * n hex digits (`len` must equal 2 * n; upper case refused
 * when `lower_only`) into n bytes.  0, or -1 (wrong length or a non-hex
 * character; `out` is then unspecified). */
int hex_decode(const char *hex, size_t len, uint8_t *out, size_t n, bool lower_only);

#endif
