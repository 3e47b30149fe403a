/* test_reply.c - the one reply formatter (src/smtp/reply.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/str.h"
#include "smtp/reply.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Format one reply into a fresh buffer and compare the bytes. */
static void
expect_reply(int code, const char *enh, const char *text, const char *want)
{
    buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(reply_format(&b, code, enh, text, NULL, NULL), BUF_OK);
    if (strcmp(buf_str(&b), want) != 0)
        fail_msg("reply %d/%s/[%s]:\n want [%s]\n got  [%s]", code, enh ? enh : "-",
                 text ? text : "(null)", want, buf_str(&b));
    buf_cleanup(&b);
}

static void
test_single_line(void **state)
{
    (void)state;
    expect_reply(250, NULL, "Ok", "250 Ok\r\n");
    expect_reply(250, "2.0.0", "Ok", "250 2.0.0 Ok\r\n");
    expect_reply(220, NULL, "mx.example ESMTP", "220 mx.example ESMTP\r\n");
    expect_reply(553, "5.7.1", "Requested action not taken: mailbox name not allowed",
                 "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    expect_reply(354, NULL, "End data with <CR><LF>.<CR><LF>",
                 "354 End data with <CR><LF>.<CR><LF>\r\n");
    expect_reply(250, "2.0.0", "", "250 2.0.0\r\n"); /* no dangling space */
    expect_reply(250, "2.0.0", NULL, "250 2.0.0\r\n");
    expect_reply(599, NULL, "x", "599 x\r\n");
    expect_reply(200, NULL, "x", "200 x\r\n");
    expect_reply(250, NULL, "caf\xc3\xa9", "250 caf\xc3\xa9\r\n"); /* UTF-8 passes */
    expect_reply(250, NULL, "a\tb", "250 a\tb\r\n");               /* HT is allowed text */
}

static void
test_multi_line(void **state)
{
    (void)state;
    expect_reply(250, NULL, "a\nb\nc", "250-a\r\n250-b\r\n250 c\r\n");
    expect_reply(250, "2.0.0", "a\nb\nc", "250-2.0.0 a\r\n250-2.0.0 b\r\n250 2.0.0 c\r\n");
    expect_reply(214, "2.0.0", "Commands supported:\nHELO EHLO",
                 "214-2.0.0 Commands supported:\r\n214 2.0.0 HELO EHLO\r\n");
    /* a trailing newline does not add an empty last line */
    expect_reply(250, NULL, "a\n", "250 a\r\n");
    expect_reply(250, NULL, "a\nb\n", "250-a\r\n250 b\r\n");
    /* empty lines inside are kept as lines */
    expect_reply(250, NULL, "a\n\nb", "250-a\r\n250-\r\n250 b\r\n");
    expect_reply(250, "2.0.0", "a\n\nb", "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n");
    expect_reply(451, "4.3.0", "\nx", "451-4.3.0\r\n451 4.3.0 x\r\n");
    /* EHLO-style reply */
    expect_reply(250, NULL, "mx.example\nPIPELINING\nSIZE 10240000\n8BITMIME",
                 "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n");
}

static void
test_many_lines(void **state)
{
    (void)state;
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%sline%d", i ? "\n" : "", i);
    buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(reply_format(&b, 550, "5.0.0", text, NULL, NULL), BUF_OK);
    /* 99 continuation lines, one final line */
    size_t dash = 0, space = 0;
    for (const char *p = buf_str(&b); *p;) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        assert_true(e - p >= 4);
        assert_memory_equal(p, "550", 3);
        if (p[3] == '-')
            dash++;
        else if (p[3] == ' ')
            space++;
        else
            fail_msg("bad separator");
        p = e + 2;
    }
    assert_int_equal(dash, 99);
    assert_int_equal(space, 1);
    assert_non_null(strstr(buf_str(&b), "550-5.0.0 line0\r\n"));
    assert_non_null(strstr(buf_str(&b), "550 5.0.0 line99\r\n"));
    buf_cleanup(&b);
}

static void
test_control_characters_replaced(void **state)
{
    (void)state;
    expect_reply(550, NULL, "a\rb", "550 a?b\r\n");
    expect_reply(550, NULL,
                 "a\x01"
                 "b\x1f"
                 "c\x7f"
                 "d\x1b[31m",
                 "550 a?b?c?d?[31m\r\n");
    expect_reply(550, "5.0.0", "evil\r\n250 ok", "550-5.0.0 evil?\r\n550 5.0.0 250 ok\r\n");
    expect_reply(550, NULL, "\r", "550 ?\r\n");
    /* a bare CR can never reach the output, whatever the text */
    buf b;
    buf_init(&b, 1 << 20);
    char text[256];
    for (int i = 1; i < 256; i++)
        text[i - 1] = (char)i;
    text[255] = '\0';
    assert_int_equal(reply_format(&b, 250, NULL, text, NULL, NULL), BUF_OK);
    /* text holds one '\n' (octet 10): exactly two lines, and every CR is part of a CRLF */
    const char *s = buf_str(&b);
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            assert_true(i + 1 < b.len && s[i + 1] == '\n');
            lines++;
        } else if (c == '\n') {
            assert_true(i > 0 && s[i - 1] == '\r');
        } else if (c < 32) {
            assert_int_equal(c, '\t');
        } else {
            assert_int_not_equal(c, 127);
        }
    }
    assert_int_equal(lines, 2);
    assert_memory_equal(s, "250-????????\t\r\n250 ", 19);
    buf_cleanup(&b);
}

static void
test_line_cap_512(void **state)
{
    (void)state;
    char text[2000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    buf b;
    buf_init(&b, 1 << 20);

    assert_int_equal(reply_format(&b, 250, NULL, text, NULL, NULL), BUF_OK);
    assert_int_equal(b.len, REPLY_MAX_LINE); /* 4 + 506 + CRLF */
    assert_memory_equal(b.data, "250 xxx", 7);
    assert_memory_equal(b.data + 508, "xx\r\n", 4);
    buf_clear(&b);

    assert_int_equal(reply_format(&b, 250, "2.0.0", text, NULL, NULL), BUF_OK);
    assert_int_equal(b.len, REPLY_MAX_LINE);
    assert_memory_equal(b.data, "250 2.0.0 xxx", 13);
    assert_memory_equal(b.data + 510, "\r\n", 2);
    buf_clear(&b);

    /* exactly at the limit: 506 octets of text fit, untouched */
    text[506] = '\0';
    assert_int_equal(reply_format(&b, 250, NULL, text, NULL, NULL), BUF_OK);
    assert_int_equal(b.len, 512);
    buf_clear(&b);
    text[506] = 'x';

    /* every line of a multi-line reply is capped on its own */
    text[700] = '\n';
    text[1500] = '\0';
    assert_int_equal(reply_format(&b, 550, "5.0.0", text, NULL, NULL), BUF_OK);
    assert_int_equal(b.len, 2 * REPLY_MAX_LINE);
    assert_memory_equal(b.data, "550-5.0.0 xx", 12);
    assert_memory_equal(b.data + 512, "550 5.0.0 xx", 12);
    assert_memory_equal(b.data + 1022, "\r\n", 2);
    buf_cleanup(&b);
}

typedef struct line_log {
    int calls;
    char lines[8][600];
    size_t lens[8];
} line_log;

static void
line_cb(void *ctx, const char *line, size_t len)
{
    line_log *l = ctx;
    if (l->calls < 8) {
        memcpy(l->lines[l->calls], line, len);
        l->lines[l->calls][len] = '\0';
        l->lens[l->calls] = len;
    }
    l->calls++;
}

static void
test_line_callback(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 4096);
    line_log l = {0};
    assert_int_equal(reply_format(&b, 250, "2.0.0", "one\ntwo\rx", line_cb, &l), BUF_OK);
    assert_int_equal(l.calls, 2);
    assert_string_equal(l.lines[0], "250-2.0.0 one");
    assert_int_equal(l.lens[0], 13);
    assert_string_equal(l.lines[1], "250 2.0.0 two?x");
    assert_string_equal(buf_str(&b), "250-2.0.0 one\r\n250 2.0.0 two?x\r\n");
    buf_cleanup(&b);
}

static void
test_output_buffer_full(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append_str(&b, "keep"), BUF_OK);
    assert_int_equal(reply_format(&b, 250, "2.0.0", "Ok", NULL, NULL), BUF_EFULL);
    assert_string_equal(buf_str(&b), "keep"); /* a single line that does not fit is not cut */
    buf_cleanup(&b);
    buf_init(&b, 8);
    assert_int_equal(reply_format(&b, 250, NULL, "Ok", NULL, NULL), BUF_OK);
    assert_string_equal(buf_str(&b), "250 Ok\r\n");
    buf_cleanup(&b);
}

/* RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
   Reply-code [ SP textstring ] CRLF -- the SP comes only with text.
   Regression: "550 \r\n" (found by this test, fixed 79786da). */
static void
test_empty_text_no_trailing_space(void **state)
{
    (void)state;
    expect_reply(550, NULL, "", "550\r\n");
    expect_reply(550, NULL, NULL, "550\r\n");
    expect_reply(250, NULL, "a\n", "250 a\r\n");
    expect_reply(250, NULL, "a\n\n", "250-a\r\n250\r\n");
}

/* Cutting a line at 512 octets must not split a UTF-8 sequence: the library refuses
   invalid UTF-8 from clients and should not send it either. */
static void
test_cap_does_not_split_utf8(void **state)
{
    (void)state;
    char text[1200];
    size_t n = 0;
    text[n++] = 'x'; /* shift so a 2-octet sequence straddles the cut */
    while (n + 2 < sizeof text) {
        text[n++] = (char)0xc3;
        text[n++] = (char)0xa9;
    }
    text[n] = '\0';
    buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(reply_format(&b, 550, NULL, text, NULL, NULL), BUF_OK);
    assert_true(b.len <= REPLY_MAX_LINE);
    /* Regression: the cut left a dangling 0xC3 (found by this test, fixed 79786da) */
    assert_true(str_is_utf8(b.data, b.len));
    assert_true(b.len >= REPLY_MAX_LINE - 1); /* at most the partial character is dropped */
    assert_memory_equal(b.data + b.len - 4, "\xc3\xa9\r\n", 4);
    buf_cleanup(&b);
}

static void
test_code_validation(void **state)
{
    (void)state;
    assert_true(reply_code_is_valid(200));
    assert_true(reply_code_is_valid(250));
    assert_true(reply_code_is_valid(421));
    assert_true(reply_code_is_valid(599));
    assert_false(reply_code_is_valid(199));
    assert_false(reply_code_is_valid(600));
    assert_false(reply_code_is_valid(0));
    assert_false(reply_code_is_valid(-250));
    assert_false(reply_code_is_valid(2500));
}

static void
test_enhanced_validation(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int code;
        bool ok;
    } cases[] = {
        {"2.0.0", 250, true},     {"2.1.5", 250, true},     {"5.7.1", 550, true},
        {"4.3.0", 451, true},     {"5.1.10", 550, true},    {"5.123.123", 554, true},
        {"4.4.2", 421, true},     {"2.0.0", 200, true},     {"5.0.0", 599, true},
        {"5.1234.1", 550, false}, {"5.1.1234", 550, false}, {"3.0.0", 354, false},
        {"5.0.0", 250, false},    {"2.0.0", 550, false},    {"4.0.0", 550, false},
        {"2.0", 250, false},      {"2..0", 250, false},     {"2.0.", 250, false},
        {"2.0.0.", 250, false},   {"2.0.0.0", 250, false},  {"2.0.0 ", 250, false},
        {" 2.0.0", 250, false},   {"", 250, false},         {"2", 250, false},
        {"2.a.0", 250, false},    {"2.0.a", 250, false},    {"x.0.0", 250, false},
        {"25.0.0", 250, false},   {"2.0.0x", 250, false},   {"2-0-0", 250, false},
        {"1.0.0", 150, false},    {"6.0.0", 650, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = reply_enhanced_is_valid(cases[i].s, cases[i].code);
        if (got != cases[i].ok)
            fail_msg("reply_enhanced_is_valid(\"%s\", %d): expected %d", cases[i].s, cases[i].code,
                     cases[i].ok);
    }
    assert_false(reply_enhanced_is_valid(NULL, 250));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_multi_line),
        cmocka_unit_test(test_many_lines),
        cmocka_unit_test(test_control_characters_replaced),
        cmocka_unit_test(test_line_cap_512),
        cmocka_unit_test(test_line_callback),
        cmocka_unit_test(test_output_buffer_full),
        cmocka_unit_test(test_empty_text_no_trailing_space),
        cmocka_unit_test(test_cap_does_not_split_utf8),
        cmocka_unit_test(test_code_validation),
        cmocka_unit_test(test_enhanced_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
