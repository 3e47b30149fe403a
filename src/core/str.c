/* str.c - string helpers; see str.h. */
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

char
str_ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

bool
str_ieqn(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (str_ascii_upper(a[i]) != str_ascii_upper(b[i]))
            return false;
        if (a[i] == '\0')
            return true;
    }
    return true;
}

bool
str_ieq(const char *a, const char *b)
{
    size_t la = strlen(a);
    return la == strlen(b) && str_ieqn(a, b, la);
}

bool
str_has_iprefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strlen(s) >= n && str_ieqn(s, prefix, n);
}

bool
str_has_8bit(const char *s, size_t len)
{
    /* Written as a plain loop over bytes so the compiler can vectorise it. */
    unsigned char acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x80) != 0;
}

bool
str_is_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* continuation byte, overlong 2-byte lead, or > U+10FFFF lead */
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool
str_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool
str_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (str_ieq(s, yes[i])) {
            *out = 1;
            return true;
        }
        if (str_ieq(s, no[i])) {
            *out = 0;
            return true;
        }
    }
    return false;
}

char *
str_ndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
str_dup(const char *s)
{
    return s ? str_ndup(s, strlen(s)) : NULL;
}
