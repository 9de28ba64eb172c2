/*
 * hex.c - see hex.h.
 */
#include "util/hex.h"

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int
hex_decode(const char *hex, size_t len, uint8_t *out, size_t n, bool lower_only)
{
	if (len != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit((unsigned char)hex[2 * i]);
		int lo = hex_digit((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0 ||
		    (lower_only && ((hex[2 * i] >= 'A' && hex[2 * i] <= 'F') ||
				    (hex[2 * i + 1] >= 'A' && hex[2 * i + 1] <= 'F'))))
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
