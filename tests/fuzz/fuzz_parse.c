/*
 * fuzz_parse.c - the SMTP syntax helpers on arbitrary bytes.
 *
 * Input: [0] selects what to run (several at once), [1] an output size for xtext, the
 * rest is the text. Checked: parse_path_arg results are consistent and round-trip
 * ("FROM:<addr>" parses back to the same addr), parameters are valid and unique;
 * xtext decoding stays in bounds and round-trips through an encoder; domain checks never
 * read past len; str_is_utf8 agrees with an independent decoder; str_parse_u64 agrees
 * with a digit-by-digit reference.
 */
#include "core/str.h"
#include "smtp/parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static void
check_path(const char *text, const char *prefix, bool allow_null)
{
    static parse_path p, q; /* 4 KiB each: keep them off the stack */
    parse_status st = parse_path_arg(text, prefix, allow_null, &p);
    CHECK(st == PARSE_OK || st == PARSE_ESYNTAX || st == PARSE_EADDR || st == PARSE_EPARAM);
    if (st != PARSE_OK)
        return;
    size_t alen = strlen(p.addr);
    CHECK(alen <= PARSE_MAX_PATH);
    CHECK(p.is_null == (alen == 0));
    CHECK(!p.is_null || allow_null);
    CHECK(str_is_utf8(p.addr, alen));
    CHECK(p.is_8bit == str_has_8bit(p.addr, alen));
    for (size_t i = 0; i < alen; i++)
        CHECK((unsigned char)p.addr[i] >= 32 && p.addr[i] != 127);
    if (!p.is_null && !strchr(p.addr, '@'))
        CHECK(!allow_null && str_ieq(p.addr, "postmaster")); /* only RCPT TO:<postmaster> */
    CHECK(p.nparams <= PARSE_MAX_PARAMS);
    for (size_t i = 0; i < p.nparams; i++) {
        CHECK(parse_is_esmtp_keyword(p.params[i].key));
        CHECK(!p.params[i].value || parse_is_esmtp_value(p.params[i].value));
        for (size_t j = 0; j < i; j++)
            CHECK(!str_ieq(p.params[i].key, p.params[j].key));
    }
    /* round trip: the mailbox alone, in brackets, parses to itself (regression:
       regressions/fuzz_parse/general-literal-gt) */
    char again[PARSE_MAX_PATH + 16];
    int n = snprintf(again, sizeof again, "%s<%s>", prefix, p.addr);
    CHECK(n > 0 && (size_t)n < sizeof again);
    CHECK(parse_path_arg(again, prefix, allow_null, &q) == PARSE_OK);
    CHECK(strcmp(q.addr, p.addr) == 0);
    CHECK(q.nparams == 0 && !q.had_space && !q.no_brackets && !q.had_route);
    /* a domain part is a valid domain or literal */
    const char *at = strrchr(p.addr, '@');
    if (at && !p.is_null && p.addr[0] != '"')
        CHECK(parse_is_domain_or_literal(at + 1, strlen(at + 1)));
}

static void
check_xtext(const char *text, size_t outsize)
{
    char out[512];
    memset(out, 0x5a, sizeof out);
    long rc = parse_xtext_decode(text, out, outsize);
    CHECK(rc >= -1);
    if (rc < 0)
        return;
    CHECK((size_t)rc < outsize);
    CHECK(out[rc] == '\0' && strlen(out) == (size_t)rc);
    CHECK(outsize == sizeof out || out[outsize] == 0x5a); /* nothing past outsize */
    for (long i = 0; i < rc; i++)
        CHECK((unsigned char)out[i] >= 32 && out[i] != 127);
    /* re-encode and decode again: the same octets */
    char enc[3 * sizeof out + 1];
    size_t e = 0;
    for (long i = 0; i < rc; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            enc[e++] = (char)c;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            enc[e++] = '+';
            enc[e++] = hex[c >> 4];
            enc[e++] = hex[c & 15];
        }
    }
    enc[e] = '\0';
    char back[sizeof out];
    CHECK(parse_xtext_decode(enc, back, sizeof back) == rc);
    CHECK(memcmp(back, out, (size_t)rc + 1) == 0);
}

/* An independent UTF-8 check: decode, then compare with the shortest encoding. */
static bool
ref_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (shortest != len || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* str_parse_u64 against strtoull: 1..20 digits and nothing else, no overflow. */
static void
check_u64(const uint8_t *s, size_t n)
{
    uint64_t v = 0;
    bool ok = str_parse_u64((const char *)s, n, &v);
    bool ref_ok = n >= 1 && n <= 20;
    for (size_t i = 0; i < n && ref_ok; i++)
        ref_ok = s[i] >= '0' && s[i] <= '9';
    unsigned long long ref = 0;
    if (ref_ok) {
        char digits[21];
        memcpy(digits, s, n);
        digits[n] = '\0';
        errno = 0;
        ref = strtoull(digits, NULL, 10);
        ref_ok = errno != ERANGE;
    }
    CHECK(ok == ref_ok);
    if (ok)
        CHECK(v == ref);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    size_t outsize = data[1] % 513; /* 0..512 */
    const uint8_t *raw = data + 2;
    size_t n = size - 2;

    /* an exact-size copy (no NUL) so ASan sees any read past len */
    uint8_t *exact = malloc(n ? n : 1);
    CHECK(exact != NULL);
    memcpy(exact, raw, n);
    /* and a NUL-terminated copy for the string functions */
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    memcpy(text, raw, n);
    text[n] = '\0';

    if (sel & 1) {
        check_path(text, "FROM:", true);
        check_path(text, "TO:", false);
        /* the same text after the verb prefixes, so the fuzzer need not find them */
        char *with = malloc(n + 8);
        CHECK(with != NULL);
        memcpy(with, (sel & 2) ? "TO:<" : "FROM:<", (sel & 2) ? 4 : 6);
        memcpy(with + ((sel & 2) ? 4 : 6), text, n + 1);
        check_path(with, (sel & 2) ? "TO:" : "FROM:", !(sel & 2));
        free(with);
    }
    if (sel & 4)
        check_xtext(text, outsize);
    if (sel & 8) {
        bool ok = parse_is_domain_or_literal((const char *)exact, n);
        if (ok) {
            CHECK(n >= 1 && n <= PARSE_MAX_DOMAIN);
            if (exact[0] != '[') {
                for (size_t i = 0; i < n; i++)
                    CHECK(exact[i] >= 0x80 || exact[i] == '.' || exact[i] == '-' ||
                          (exact[i] >= '0' && exact[i] <= '9') ||
                          ((exact[i] | 0x20) >= 'a' && (exact[i] | 0x20) <= 'z'));
            } else {
                CHECK(exact[n - 1] == ']');
            }
        }
        (void)parse_is_postmaster(text, "mx.example");
        (void)parse_is_postmaster(text, NULL);
        if (n)
            (void)parse_is_esmtp_keyword(text);
        (void)parse_is_esmtp_value(text);
    }
    if (sel & 16) {
        CHECK(str_is_utf8((const char *)exact, n) == ref_utf8(exact, n));
        bool has8 = false;
        for (size_t i = 0; i < n; i++)
            has8 |= exact[i] >= 0x80;
        CHECK(str_has_8bit((const char *)exact, n) == has8);
    }
    if (sel & 32)
        check_u64(exact, n);
    if (sel & 64) {
        int b = -1;
        if (str_parse_bool(text, &b))
            CHECK(b == 0 || b == 1);
    }
    free(exact);
    free(text);
    return 0;
}
