/* test_str.c - ASCII case, strict UTF-8, number and boolean parsing (src/core/str.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/str.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
test_case_helpers(void **state)
{
    (void)state;
    assert_int_equal(str_ascii_upper('a'), 'A');
    assert_int_equal(str_ascii_upper('z'), 'Z');
    assert_int_equal(str_ascii_upper('A'), 'A');
    assert_int_equal(str_ascii_upper('@'), '@');
    assert_int_equal(str_ascii_upper('{'), '{');
    assert_int_equal(str_ascii_upper((char)0xe9), (char)0xe9); /* no locale games */

    assert_true(str_ieq("Mail", "mAIL"));
    assert_true(str_ieq("", ""));
    assert_false(str_ieq("MAIL", "MAILX"));
    assert_false(str_ieq("MAILX", "MAIL"));
    assert_false(str_ieq("[", "{")); /* '[' + 32 == '{' must not compare equal */
    assert_false(str_ieq("@", "`"));

    assert_true(str_ieqn("HELOX", "heloY", 4));
    assert_false(str_ieqn("HELOX", "heloY", 5));
    assert_true(str_ieqn("ab", "AB", 10)); /* stops at the common NUL */
    assert_false(str_ieqn("ab", "ABC", 10));
    assert_true(str_ieqn("x", "y", 0));

    assert_true(str_has_iprefix("postmaster@x", "POSTMASTER"));
    assert_true(str_has_iprefix("abc", ""));
    assert_false(str_has_iprefix("post", "postmaster"));
    assert_false(str_has_iprefix("postmistress", "postmaster"));
}

typedef struct utf8_case {
    const char *s;
    size_t len; /* 0: strlen */
    bool ok;
    const char *why;
} utf8_case;

static void
test_utf8_table(void **state)
{
    (void)state;
    static const utf8_case cases[] = {
        {"", 0, true, "empty"},
        {"plain ascii", 0, true, "ascii"},
        {"\x7f", 0, true, "DEL is ASCII"},
        {"caf\xc3\xa9", 0, true, "2-byte e-acute"},
        {"\xc2\x80", 0, true, "smallest 2-byte U+0080"},
        {"\xdf\xbf", 0, true, "largest 2-byte U+07FF"},
        {"\xe0\xa0\x80", 0, true, "smallest 3-byte U+0800"},
        {"\xe2\x82\xac", 0, true, "euro sign"},
        {"\xed\x9f\xbf", 0, true, "U+D7FF just below surrogates"},
        {"\xee\x80\x80", 0, true, "U+E000 just above surrogates"},
        {"\xef\xbf\xbf", 0, true, "U+FFFF"},
        {"\xf0\x90\x80\x80", 0, true, "smallest 4-byte U+10000"},
        {"\xf0\x9f\x98\x80", 0, true, "emoji"},
        {"\xf4\x8f\xbf\xbf", 0, true, "U+10FFFF, the last code point"},
        {"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80", 0, true, "cyrillic word"},
        /* overlongs */
        {"\xc0\x80", 0, false, "overlong NUL (C0 80)"},
        {"\xc0\xaf", 0, false, "overlong '/' (C0 AF)"},
        {"\xc1\xbf", 0, false, "overlong 2-byte C1"},
        {"\xe0\x80\x80", 0, false, "overlong 3-byte NUL"},
        {"\xe0\x9f\xbf", 0, false, "overlong 3-byte U+07FF"},
        {"\xf0\x80\x80\x80", 0, false, "overlong 4-byte NUL"},
        {"\xf0\x8f\xbf\xbf", 0, false, "overlong 4-byte U+FFFF"},
        /* surrogates */
        {"\xed\xa0\x80", 0, false, "U+D800 high surrogate"},
        {"\xed\xbf\xbf", 0, false, "U+DFFF low surrogate"},
        {"\xed\xa0\xbd\xed\xb8\x80", 0, false, "CESU-8 surrogate pair"},
        /* beyond U+10FFFF */
        {"\xf4\x90\x80\x80", 0, false, "U+110000"},
        {"\xf5\x80\x80\x80", 0, false, "F5 lead"},
        {"\xf7\xbf\xbf\xbf", 0, false, "F7 lead"},
        {"\xf8\x88\x80\x80\x80", 0, false, "5-byte form"},
        {"\xfc\x84\x80\x80\x80\x80", 0, false, "6-byte form"},
        {"\xfe", 0, false, "FE"},
        {"\xff", 0, false, "FF"},
        /* bad continuation / truncation */
        {"\x80", 0, false, "lone continuation"},
        {"a\xbf", 0, false, "continuation after ASCII"},
        {"\xc3", 0, false, "truncated 2-byte at end"},
        {"\xe2\x82", 0, false, "truncated 3-byte at end"},
        {"\xf0\x9f\x98", 0, false, "truncated 4-byte at end"},
        {"\xc3(", 0, false, "2-byte lead then ASCII"},
        {"\xe2(\xa1", 0, false, "3-byte lead, bad second"},
        {"\xe2\x82(", 0, false, "3-byte lead, bad third"},
        {"\xf0\x9f(\x80", 0, false, "4-byte lead, bad third"},
        {"\xc3\xa9\xa9", 0, false, "one continuation too many"},
        /* lengths are honoured: NUL is ASCII, bytes past len are not read */
        {"a\0b", 3, true, "embedded NUL counts as ASCII"},
        {"\xc3\xa9", 1, false, "len cuts a sequence"},
        {"ok\xff", 2, true, "bad byte past len is ignored"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const utf8_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->s);
        bool got = str_is_utf8(c->s, len);
        if (got != c->ok)
            fail_msg("str_is_utf8 case %zu (%s): expected %d got %d", i, c->why, c->ok, got);
    }
}

/* Every code point from U+0000 to U+10FFFF encodes to valid UTF-8 except surrogates. */
static size_t
encode_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void
test_utf8_every_code_point(void **state)
{
    (void)state;
    char enc[4];
    size_t bad = 0;
    for (unsigned cp = 0; cp <= 0x10ffff; cp++) {
        size_t n = encode_utf8(cp, enc);
        bool expect = !(cp >= 0xd800 && cp <= 0xdfff);
        if (str_is_utf8(enc, n) != expect) {
            if (bad++ < 5)
                print_error("code point U+%04X: expected %d\n", cp, expect);
        }
        /* every proper prefix of a multi-byte sequence is invalid */
        for (size_t k = 1; k < n; k++)
            if (str_is_utf8(enc, k))
                bad++;
    }
    assert_int_equal(bad, 0);
}

static void
test_has_8bit(void **state)
{
    (void)state;
    assert_false(str_has_8bit("", 0));
    assert_false(str_has_8bit("hello\x7f\x01", 7));
    assert_true(str_has_8bit("hello\x80", 6));
    assert_true(str_has_8bit("\xff", 1));
    assert_false(str_has_8bit("abc\xff", 3)); /* only within len */
    char big[4096];
    memset(big, 'a', sizeof big);
    assert_false(str_has_8bit(big, sizeof big));
    big[4095] = (char)0x80;
    assert_true(str_has_8bit(big, sizeof big));
}

typedef struct u64_case {
    const char *s;
    bool ok;
    uint64_t v;
} u64_case;

static void
test_parse_u64_table(void **state)
{
    (void)state;
    static const u64_case cases[] = {
        {"0", true, 0},
        {"7", true, 7},
        {"1024", true, 1024},
        {"007", true, 7},
        {"4294967296", true, 4294967296ull},
        {"18446744073709551615", true, UINT64_MAX}, /* 20 digits, the max */
        {"18446744073709551614", true, UINT64_MAX - 1},
        {"18446744073709551616", false, 0}, /* max + 1, 20 digits */
        {"18446744073709551619", false, 0},
        {"18446744073709551620", false, 0},
        {"19999999999999999999", false, 0},
        {"99999999999999999999", false, 0},  /* 20 nines */
        {"00000000000000000001", true, 1},   /* 20 digits with zeros */
        {"000000000000000000001", false, 0}, /* 21 digits: over the length limit */
        {"184467440737095516150", false, 0},
        {"", false, 0},
        {"-1", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1a", false, 0},
        {"0x10", false, 0},
        {"1.5", false, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t v = 12345;
        bool ok = str_parse_u64(cases[i].s, strlen(cases[i].s), &v);
        if (ok != cases[i].ok)
            fail_msg("str_parse_u64(\"%s\"): expected %d got %d", cases[i].s, cases[i].ok, ok);
        if (ok && v != cases[i].v)
            fail_msg("str_parse_u64(\"%s\"): value %llu", cases[i].s, (unsigned long long)v);
        if (!ok && v != 12345)
            fail_msg("str_parse_u64(\"%s\") wrote its output on failure", cases[i].s);
    }
    /* len limits the parse: "123" of "1234" */
    uint64_t v = 0;
    assert_true(str_parse_u64("1234", 3, &v));
    assert_int_equal(v, 123);
    assert_false(str_parse_u64("1234", 0, &v));
}

static void
test_parse_bool(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
        int v;
    } cases[] = {
        {"1", true, 1},       {"0", true, 0},     {"yes", true, 1},    {"no", true, 0},
        {"true", true, 1},    {"false", true, 0}, {"on", true, 1},     {"off", true, 0},
        {"YES", true, 1},     {"False", true, 0}, {"ON", true, 1},     {"oFf", true, 0},
        {"", false, 0},       {"2", false, 0},    {"y", false, 0},     {"n", false, 0},
        {"yes ", false, 0},   {" no", false, 0},  {"truex", false, 0}, {"10", false, 0},
        {"enable", false, 0}, {"-1", false, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int v = 42;
        bool ok = str_parse_bool(cases[i].s, &v);
        if (ok != cases[i].ok)
            fail_msg("str_parse_bool(\"%s\"): expected %d got %d", cases[i].s, cases[i].ok, ok);
        if (ok && v != cases[i].v)
            fail_msg("str_parse_bool(\"%s\"): value %d", cases[i].s, v);
        if (!ok && v != 42)
            fail_msg("str_parse_bool(\"%s\") wrote its output on failure", cases[i].s);
    }
}

static void
test_dup(void **state)
{
    (void)state;
    assert_null(str_dup(NULL));
    assert_null(str_ndup(NULL, 3));
    char *p = str_dup("hello");
    assert_string_equal(p, "hello");
    free(p);
    p = str_ndup("hello", 3);
    assert_string_equal(p, "hel");
    free(p);
    p = str_ndup("a\0b", 3); /* copies n bytes, NUL-terminates after them */
    assert_memory_equal(p, "a\0b\0", 4);
    free(p);
    p = str_dup("");
    assert_string_equal(p, "");
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_helpers),
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_every_code_point),
        cmocka_unit_test(test_has_8bit),
        cmocka_unit_test(test_parse_u64_table),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_dup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
