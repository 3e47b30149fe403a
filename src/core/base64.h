/*
 * base64.h - RFC 4648 base64, strict: the alphabet, '=' padding only at the end, no
 * whitespace, no characters after the padding. Pure; any thread.
 */
#ifndef CORE_BASE64_H
#define CORE_BASE64_H

#include <stddef.h>

/* Octets needed to encode n octets, including the NUL. */
size_t base64_encoded_size(size_t n);
/* Encode into out (base64_encoded_size(n) octets); returns the length without the NUL. */
size_t base64_encode(const void *in, size_t n, char *out);
/* Decode len characters into out (room for len / 4 * 3 + 1; a NUL is added). Returns the
   decoded length, or -1 for anything that is not strict base64. */
long base64_decode(const char *in, size_t len, unsigned char *out);

#endif
