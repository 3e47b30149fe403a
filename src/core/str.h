/*
 * str.h - string helpers that know nothing of mail: ASCII case, strict UTF-8, number
 * parsing with overflow checks, glob-free comparisons. Pure functions; any thread.
 */
#ifndef CORE_STR_H
#define CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASCII-only case-insensitive comparisons (locale-independent). */
bool str_ieq(const char *a, const char *b);
bool str_ieqn(const char *a, const char *b, size_t n);
bool str_has_iprefix(const char *s, const char *prefix);
char str_ascii_upper(char c);

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing over U+10FFFF. */
bool str_is_utf8(const char *s, size_t len);
/* Any byte >= 0x80 in s[0..len). */
bool str_has_8bit(const char *s, size_t len);

/* Parse an unsigned decimal of 1..20 digits and nothing else; false on overflow. */
bool str_parse_u64(const char *s, size_t len, uint64_t *out);
/* Parse a boolean word: 1/0, yes/no, true/false, on/off (case-insensitive). */
bool str_parse_bool(const char *s, int *out);

/* Duplicate; NULL in, NULL out (and NULL when out of memory). */
char *str_dup(const char *s);
char *str_ndup(const char *s, size_t n);

#endif
