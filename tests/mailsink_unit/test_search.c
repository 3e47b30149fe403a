/* test_search.c - Mailpit's search syntax (src/mailsink/search.c): every filter, negation,
   quoting, empty values, odd bytes, limits, dates in several zones (DST on both sides, a
   zone whose day can start at 01:00, times past the TZif transition table), sizes, the
   error texts, and the zone offsets against glibc's own reading of the same files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mailsink/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *
field_name(search_field f)
{
    switch (f) {
    case SEARCH_TEXT:
        return "text";
    case SEARCH_FROM:
        return "from";
    case SEARCH_TO:
        return "to";
    case SEARCH_CC:
        return "cc";
    case SEARCH_BCC:
        return "bcc";
    case SEARCH_REPLY_TO:
        return "reply-to";
    case SEARCH_SUBJECT:
        return "subject";
    case SEARCH_MESSAGE_ID:
        return "message-id";
    case SEARCH_TAG:
        return "tag";
    case SEARCH_IS_READ:
        return "is:read";
    case SEARCH_IS_UNREAD:
        return "is:unread";
    case SEARCH_IS_TAGGED:
        return "is:tagged";
    case SEARCH_HAS_ATTACHMENT:
        return "has:attachment";
    case SEARCH_BEFORE:
        return "before";
    case SEARCH_AFTER:
        return "after";
    case SEARCH_LARGER:
        return "larger";
    case SEARCH_SMALLER:
        return "smaller";
    }
    return "?";
}

static bool
field_has_value(search_field f)
{
    return f <= SEARCH_TAG;
}

/* "[-]field=value ; ..." and checks what every term must satisfy. */
static void
render(const search_query *q, char *out, size_t outsize)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < q->count; i++) {
        const search_term *t = &q->terms[i];
        if (field_has_value(t->field)) {
            assert_non_null(t->value);
            assert_true(t->value[0] != '\0');
            assert_int_equal(t->number, 0);
        } else {
            assert_null(t->value);
        }
        int w;
        if (field_has_value(t->field))
            w = snprintf(out + n, outsize - n, "%s%s%s=%s", i ? " ; " : "", t->negated ? "-" : "",
                         field_name(t->field), t->value);
        else if (t->field >= SEARCH_BEFORE)
            w = snprintf(out + n, outsize - n, "%s%s%s=%lld", i ? " ; " : "", t->negated ? "-" : "",
                         field_name(t->field), (long long)t->number);
        else
            w = snprintf(out + n, outsize - n, "%s%s%s", i ? " ; " : "", t->negated ? "-" : "",
                         field_name(t->field));
        assert_true(w > 0 && (size_t)w < outsize - n);
        n += (size_t)w;
    }
}

typedef struct parse_case {
    const char *q;
    const char *want; /* rendered terms; NULL: an error */
    const char *err;  /* the error text when want is NULL */
} parse_case;

static void
run_cases(const parse_case *cases, size_t n, const char *tz)
{
    for (size_t i = 0; i < n; i++) {
        search_query q = {0};
        char err[256] = "unset";
        char got[2048];
        int rc = search_parse(cases[i].q, tz, &q, err, sizeof err);
        if (cases[i].want) {
            if (rc != 0)
                fail_msg("'%s': unexpected error '%s'", cases[i].q, err);
            assert_string_equal(err, "");
            render(&q, got, sizeof got);
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("'%s': got '%s', want '%s'", cases[i].q, got, cases[i].want);
        } else {
            if (rc != -1)
                fail_msg("'%s': no error", cases[i].q);
            assert_null(q.terms);
            assert_int_equal(q.count, 0);
            if (strcmp(err, cases[i].err) != 0)
                fail_msg("'%s': error '%s', want '%s'", cases[i].q, err, cases[i].err);
        }
        search_query_free(&q);
    }
}

static void
test_words_and_phrases(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"", "", NULL},
        {"  \t\r\n ", "", NULL},
        {"hello", "text=hello", NULL},
        {"hello  world", "text=hello ; text=world", NULL},
        {"\"hello world\"", "text=hello world", NULL},
        {"\"a  b\" c", "text=a  b ; text=c", NULL},
        {"\" padded \"", "text=padded", NULL},
        {"x\"y z\"w", "text=xy zw", NULL},
        {"\"unterminated phrase", "text=unterminated phrase", NULL},
        {"\"", "", NULL},
        {"\"\" \"  \"", "", NULL},
        {"a\\b", "text=a\\b", NULL},                /* backslash is literal */
        {"\"a\\\" b\"", "text=a\\ ; text=b", NULL}, /* and escapes nothing */
        {"\"a\tb\"", "text=a b", NULL},             /* control bytes in quotes: spaces */
        {"a\x01"
         "b\x7f"
         "c",
         "text=a ; text=b ; text=c", NULL},
        {"foo:bar", "text=foo:bar", NULL},
        {"http://example.com/x", "text=http://example.com/x", NULL},
        {":colon", "text=:colon", NULL},
        {"addressed:bob", "text=addressed:bob", NULL}, /* not an enum value: a word */
        {"\"subject:a b\"", "text=subject:a b", NULL}, /* the name must be unquoted */
        {"sub\"ject:x\"", "text=subject:x", NULL},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

static void
test_filters(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"from:alice@example.com", "from=alice@example.com", NULL},
        {"to:b cc:c bcc:d reply-to:e subject:f message-id:g tag:h",
         "to=b ; cc=c ; bcc=d ; reply-to=e ; subject=f ; message-id=g ; tag=h", NULL},
        {"FROM:Alice Reply-To:X SUBJECT:Hi Tag:Host-1", /* names any case, values kept */
         "from=Alice ; reply-to=X ; subject=Hi ; tag=Host-1", NULL},
        {"subject:\"weekly report\"", "subject=weekly report", NULL},
        {"subject:\"a b\"c", "subject=a bc", NULL},
        {"subject:\"unterminated phrase", "subject=unterminated phrase", NULL},
        {"subject:a:b", "subject=a:b", NULL},
        {"to:\"John Doe <john@example.com>\"", "to=John Doe <john@example.com>", NULL},
        {"message-id:<12345.678@localhost>", "message-id=12345.678@localhost", NULL},
        {"message-id:\"< abc >\"", "message-id=abc", NULL},
        {"message-id:<abc", "message-id=<abc", NULL},
        {"is:read is:unread is:tagged has:attachment has:attachments",
         "is:read ; is:unread ; is:tagged ; has:attachment ; has:attachment", NULL},
        {"IS:READ Has:Attachment is:UnRead", "is:read ; has:attachment ; is:unread", NULL},
        {"is:\"read\"", "is:read", NULL},
        {"is:foo has:inline has:attachmentz",
         "text=is:foo ; text=has:inline ; "
         "text=has:attachmentz",
         NULL},
        {"is:\"foo bar\"", "text=is:foo bar", NULL},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

static void
test_negation(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"-is:read !is:unread", "-is:read ; -is:unread", NULL},
        {"-from:x !subject:\"a b\"", "-from=x ; -subject=a b", NULL},
        {"john !doe", "text=john ; -text=doe", NULL},
        {"-\"a b\" !\"c\"", "-text=a b ; -text=c", NULL},
        {"\"-a\" \"!b\"", "text=-a ; text=!b", NULL}, /* a quoted - is text */
        {"--x !!y -!z", "-text=-x ; -text=!y ; -text=!z", NULL},
        {"- ! -\"\" !\"  \"", "", NULL},
        {"-foo:bar", "-text=foo:bar", NULL},
        {"-is:foo", "-text=is:foo", NULL},
        {"-has:attachment -is:tagged", "-has:attachment ; -is:tagged", NULL},
        {"-larger:1k !before:2024-01-02", "-larger=1024 ; -before=1704153600000", NULL},
        {"-:x", "-text=:x", NULL},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

/* A known filter with nothing after it is ignored: it never becomes an empty value. */
static void
test_empty_values(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"from:", "", NULL},
        {"-from: to: cc: bcc: reply-to: tag:", "", NULL},
        {"subject:\"\"", "", NULL},
        {"subject:\"   \"", "", NULL},
        {"subject:\"", "", NULL},
        {"message-id:<>", "", NULL},
        {"message-id:\"< >\"", "", NULL},
        {"is: has: before: after: larger: smaller:", "", NULL},
        {"before:\"\" larger:\" \"", "", NULL},
        {"from: x", "text=x", NULL},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

static void
test_unicode_and_bad_bytes(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"\xc3\x84pfel subject:\"Diese \xc3\x84pfel\"",
         "text=\xc3\x84pfel ; subject=Diese \xc3\x84pfel", NULL},
        {"\xe2\x82\xac \xf0\x9f\x93\xa7", "text=\xe2\x82\xac ; text=\xf0\x9f\x93\xa7", NULL},
        {"a\xff"
         "b",
         "text=a\xef\xbf\xbd"
         "b",
         NULL},
        {"\xc0\xaf", "text=\xef\xbf\xbd\xef\xbf\xbd", NULL},                 /* overlong */
        {"\xed\xa0\x80", "text=\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL}, /* surrogate */
        {"\xf4\x90\x80\x80", "text=\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL},
        {"x\xe2\x82", "text=x\xef\xbf\xbd\xef\xbf\xbd", NULL}, /* cut short */
        {"from:\x80", "from=\xef\xbf\xbd", NULL},
        {"\xe3\x80\x80", "text=\xe3\x80\x80", NULL}, /* U+3000 is not a separator */
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

static void
test_sizes(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"larger:1024", "larger=1024", NULL},
        {"larger:0", "larger=0", NULL},
        {"larger:100b larger:100B", "larger=100 ; larger=100", NULL},
        {"larger:10k larger:10K larger:10kb larger:10KB larger:10KiB",
         "larger=10240 ; larger=10240 ; larger=10240 ; larger=10240 ; larger=10240", NULL},
        {"smaller:5M smaller:5mb smaller:5MiB",
         "smaller=5242880 ; smaller=5242880 ; smaller=5242880", NULL},
        {"smaller:1.5mb", "smaller=1572864", NULL},
        {"larger:0.5k larger:1.0000000001k", "larger=512 ; larger=1024", NULL},
        {"larger:2g larger:2GB", "larger=2147483648 ; larger=2147483648", NULL},
        {"larger:\"10 kb\"", "larger=10240", NULL},
        {"larger:9007199254740992", "larger=9007199254740992", NULL},
        {"larger:8388608g", "larger=9007199254740992", NULL},
        {"larger:abc", NULL, "larger: not a size: 'abc'"},
        {"smaller:10x", NULL, "smaller: not a size: '10x'"},
        {"larger:-5", NULL, "larger: not a size: '-5'"},
        {"larger:+5", NULL, "larger: not a size: '+5'"},
        {"larger:1.", NULL, "larger: not a size: '1.'"},
        {"larger:.5", NULL, "larger: not a size: '.5'"},
        {"larger:1kbb", NULL, "larger: not a size: '1kbb'"},
        {"larger:\"1  k\"", NULL, "larger: not a size: '1  k'"},
        {"larger:1t", NULL, "larger: not a size: '1t'"},
        {"larger:9007199254740993", NULL, "larger: size too large: '9007199254740993'"},
        {"larger:8388609g", NULL, "larger: size too large: '8388609g'"},
        {"smaller:99999999999999999999999999", NULL,
         "smaller: size too large: '99999999999999999999999999'"},
        {"ok larger:zz", NULL, "larger: not a size: 'zz'"},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

/* A date value in zone tz, as the UTC instant it stands for. */
typedef struct date_case {
    const char *tz;
    const char *value;
    const char *want; /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
} date_case;

static void
format_ms(int64_t ms, char *out, size_t outsize)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    struct tm tm;
    assert_non_null(gmtime_r(&secs, &tm));
    snprintf(out, outsize, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)secs * 1000));
}

static void
test_dates(void **state)
{
    (void)state;
    static const date_case cases[] = {
        {NULL, "2024-01-02", "2024-01-02T00:00:00.000Z"},
        {"", "2024/01/02", "2024-01-02T00:00:00.000Z"},
        {"UTC", "01/02/2024", "2024-01-02T00:00:00.000Z"}, /* Mailpit's US order */
        {"utc", "2024-1-2", "2024-01-02T00:00:00.000Z"},
        {"Z", "2024-02-29", "2024-02-29T00:00:00.000Z"},
        {NULL, "2024-01-02T10:00:00Z", "2024-01-02T10:00:00.000Z"},
        {NULL, "2024-01-02t10:00z", "2024-01-02T10:00:00.000Z"},
        {NULL, "2024-01-02T10:00:00+02:00", "2024-01-02T08:00:00.000Z"},
        {NULL, "2024-01-02T10:00:00.123-0530", "2024-01-02T15:30:00.123Z"},
        {NULL, "2024-01-02T10:00:00.5+05", "2024-01-02T05:00:00.500Z"},
        {NULL, "2024-01-02 10:00", "2024-01-02T10:00:00.000Z"},
        {NULL, "2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000Z"},
        {NULL, "1969-12-31", "1969-12-31T00:00:00.000Z"},
        {NULL, "1900-03-01", "1900-03-01T00:00:00.000Z"},
        {"+05:30", "2024-01-02", "2024-01-01T18:30:00.000Z"},
        {"+0530", "2024-01-02", "2024-01-01T18:30:00.000Z"},
        {"-0530", "2024-01-02", "2024-01-02T05:30:00.000Z"},
        {" 05:30", "2024-01-02", "2024-01-01T18:30:00.000Z"}, /* '+' decoded as space */
        {"-03", "2024-01-02 21:00", "2024-01-03T00:00:00.000Z"},
        {"Asia/Kolkata", "2024-01-02", "2024-01-01T18:30:00.000Z"},
        {"Europe/Berlin", "2024-01-15", "2024-01-14T23:00:00.000Z"},
        {"Europe/Berlin", "2024-07-15", "2024-07-14T22:00:00.000Z"},
        /* the day DST starts (02:00 -> 03:00) still begins at 00:00 CET */
        {"Europe/Berlin", "2024-03-31", "2024-03-30T23:00:00.000Z"},
        {"Europe/Berlin", "2024-04-01", "2024-03-31T22:00:00.000Z"},
        {"Europe/Berlin", "2024-10-27", "2024-10-26T22:00:00.000Z"},
        {"Europe/Berlin", "2024-10-28", "2024-10-27T23:00:00.000Z"},
        {"Europe/Berlin", "2024-03-31 02:30", "2024-03-31T01:30:00.000Z"}, /* skipped */
        {"Europe/Berlin", "2024-10-27 02:30", "2024-10-27T00:30:00.000Z"}, /* twice: first */
        {"Europe/Berlin", "2024-10-27 03:00", "2024-10-27T02:00:00.000Z"},
        {"Europe/Berlin", "2024-07-01T12:00:00Z", "2024-07-01T12:00:00.000Z"},
        {"Europe/Berlin", "2050-07-01", "2050-06-30T22:00:00.000Z"}, /* the footer rule */
        {"Europe/Berlin", "2050-01-01", "2049-12-31T23:00:00.000Z"},
        {"America/St_Johns", "2024-01-15", "2024-01-15T03:30:00.000Z"},
        {"America/St_Johns", "2024-07-15", "2024-07-15T02:30:00.000Z"},
        {"America/St_Johns", "2024-03-10", "2024-03-10T03:30:00.000Z"},
        {"America/St_Johns", "2024-03-11", "2024-03-11T02:30:00.000Z"},
        {"America/St_Johns", "2024-11-03", "2024-11-03T02:30:00.000Z"},
        {"America/St_Johns", "2024-11-04", "2024-11-04T03:30:00.000Z"},
        {"America/St_Johns", "2060-07-15", "2060-07-15T02:30:00.000Z"},
        {"Australia/Sydney", "2050-01-01", "2049-12-31T13:00:00.000Z"},
        {"Australia/Sydney", "2050-07-01", "2050-06-30T14:00:00.000Z"},
        /* DST starts at 24:00 on Saturday: Sunday begins at 01:00 -03 (= 00:00 -04) */
        {"America/Santiago", "2024-09-08", "2024-09-08T04:00:00.000Z"},
        {"America/Santiago", "2060-09-05", "2060-09-05T04:00:00.000Z"},
        {"America/Santiago", "2060-09-06", "2060-09-06T03:00:00.000Z"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char query[128], got[64];
        for (int f = 0; f < 2; f++) {
            snprintf(query, sizeof query, "%s:\"%s\"", f ? "after" : "before", cases[i].value);
            search_query q = {0};
            char err[256];
            if (search_parse(query, cases[i].tz, &q, err, sizeof err) != 0)
                fail_msg("%s in %s: %s", query, cases[i].tz, err);
            assert_int_equal(q.count, 1);
            assert_int_equal(q.terms[0].field, f ? SEARCH_AFTER : SEARCH_BEFORE);
            format_ms(q.terms[0].number, got, sizeof got);
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("%s in %s: got %s, want %s", query, cases[i].tz ? cases[i].tz : "NULL",
                         got, cases[i].want);
            search_query_free(&q);
        }
    }
}

static void
test_bad_dates(void **state)
{
    (void)state;
    static const parse_case cases[] = {
        {"before:yesterday", NULL, "before: not a date: 'yesterday'"},
        {"after:2024-13-01", NULL, "after: not a date: '2024-13-01'"},
        {"after:2024-00-01", NULL, "after: not a date: '2024-00-01'"},
        {"after:2024-02-30", NULL, "after: not a date: '2024-02-30'"},
        {"after:2023-02-29", NULL, "after: not a date: '2023-02-29'"},
        {"after:2024-01-00", NULL, "after: not a date: '2024-01-00'"},
        {"after:24-01-02", NULL, "after: not a date: '24-01-02'"},
        {"after:2024-01/02", NULL, "after: not a date: '2024-01/02'"},
        {"after:02-01-2024", NULL, "after: not a date: '02-01-2024'"},
        {"after:13/01/2024", NULL, "after: not a date: '13/01/2024'"},
        {"before:2024-01-02T", NULL, "before: not a date: '2024-01-02T'"},
        {"before:2024-01-02T25:00", NULL, "before: not a date: '2024-01-02T25:00'"},
        {"before:2024-01-02T10:60", NULL, "before: not a date: '2024-01-02T10:60'"},
        {"before:2024-01-02T10:00:61", NULL, "before: not a date: '2024-01-02T10:00:61'"},
        {"before:2024-01-02T10:00:00.", NULL, "before: not a date: '2024-01-02T10:00:00.'"},
        {"before:2024-01-02T1:00", NULL, "before: not a date: '2024-01-02T1:00'"},
        {"before:2024-01-02T10:00+24:00", NULL, "before: not a date: '2024-01-02T10:00+24:00'"},
        {"before:2024-01-02T10:00+02:", NULL, "before: not a date: '2024-01-02T10:00+02:'"},
        {"before:2024-01-02T10:00Zx", NULL, "before: not a date: '2024-01-02T10:00Zx'"},
        {"before:2024-01-02X", NULL, "before: not a date: '2024-01-02X'"},
        {"before:20240102", NULL, "before: not a date: '20240102'"},
        {"-after:\"2024-01-02  10:00\"", NULL, "after: not a date: '2024-01-02  10:00'"},
        {"before:\xff", NULL, "before: not a date: '\xef\xbf\xbd'"},
    };
    run_cases(cases, ARRAY_LEN(cases), NULL);
}

/* The value quoted back in an error is cut to 64 bytes, on a character boundary. */
static void
test_error_value_cut(void **state)
{
    (void)state;
    char q[300] = "before:";
    memset(q + 7, 'x', 200);
    q[207] = '\0';
    char err[256];
    search_query sq = {0};
    assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "before: not a date: '%.64s'", q + 7);
    assert_string_equal(err, want);

    /* 22 euro signs (66 bytes): 21 fit */
    char q2[128] = "larger:";
    for (int i = 0; i < 22; i++)
        memcpy(q2 + 7 + 3 * i, "\xe2\x82\xac", 4);
    assert_int_equal(search_parse(q2, NULL, &sq, err, sizeof err), -1);
    snprintf(want, sizeof want, "larger: not a size: '%.63s'", q2 + 7);
    assert_string_equal(err, want);

    /* a small or missing err buffer is fine */
    char tiny[8];
    assert_int_equal(search_parse("larger:x", NULL, &sq, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "larger:");
    assert_int_equal(search_parse("larger:x", NULL, &sq, NULL, 0), -1);
    assert_int_equal(search_parse("larger:1", NULL, &sq, NULL, 0), 0);
    search_query_free(&sq);
}

static void
test_bad_zones(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "Mars/Olympus",
        " Europe/Berlin",
        " ",
        " +05",
        "../etc/passwd",
        "/etc/passwd",
        "Europe/../../etc/passwd",
        "Europe",
        "Europe/",
        "Europe//Berlin",
        "zone.tab",
        "leapseconds",
        "tzdata.zi",
        "right/UTC",
        "Europe/Berlin\n",
        "Europe/Berlin ",
        "+25:00",
        "+05:",
        "+5:3",
        "+05:30x",
        "-",
        "+",
        "UTC+1",
        "Europe/Berlin\xff",
    };
    for (size_t i = 0; i < ARRAY_LEN(zones); i++) {
        search_query q = {0};
        char err[256], want[256];
        if (search_parse("after:2024-01-02", zones[i], &q, err, sizeof err) != -1)
            fail_msg("zone '%s' accepted", zones[i]);
        assert_null(q.terms);
        if (strchr(zones[i], '\xff'))
            snprintf(want, sizeof want, "unknown time zone 'Europe/Berlin\xef\xbf\xbd'");
        else
            snprintf(want, sizeof want, "unknown time zone '%s'", zones[i]);
        assert_string_equal(err, want);
        /* an unknown zone is an error even when no date needs it */
        assert_int_equal(search_parse("hello", zones[i], &q, err, sizeof err), -1);
        int32_t off = 123;
        assert_int_equal(search_tz_offset(zones[i], 0, &off), -1);
    }
}

static void
test_tz_offset(void **state)
{
    (void)state;
    static const struct {
        const char *tz;
        int64_t t;
        int32_t want;
    } cases[] = {
        {NULL, 0, 0},
        {"", 1700000000, 0},
        {"UTC", 1700000000, 0},
        {"Z", 1700000000, 0},
        {"GMT", 1700000000, 0},
        {"Etc/UTC", 1700000000, 0},
        {"+05:30", 0, 19800},
        {"-0530", 0, -19800},
        {"+02", 0, 7200},
        {"Etc/GMT+5", 1700000000, -18000},
        {"Europe/Berlin", 1704067200, 3600}, /* 2024-01-01 */
        {"Europe/Berlin", 1719792000, 7200}, /* 2024-07-01 */
        {"Europe/Berlin", 1711846799, 3600}, /* 2024-03-31 00:59:59Z */
        {"Europe/Berlin", 1711846800, 7200}, /* 01:00:00Z: summer time */
        {"Europe/Berlin", 2540246400, 7200}, /* 2050-07-01 */
        {"Europe/Berlin", 2540246400 + 180 * 86400, 3600},
        {"America/St_Johns", 1720000000, -9000}, /* 2024-07-03 */
        {"America/St_Johns", 1704067200, -12600},
        {"Australia/Sydney", 2524608000, 39600}, /* 2050-01-01 */
        {"Australia/Sydney", INT64_MAX, 36000},  /* clamped far future: still a rule */
        {"Australia/Sydney", INT64_MIN, 36292},  /* local mean time before 1895 */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int32_t off = -1;
        assert_int_equal(search_tz_offset(cases[i].tz, cases[i].t, &off), 0);
        if (off != cases[i].want)
            fail_msg("%s at %lld: %d, want %d", cases[i].tz ? cases[i].tz : "NULL",
                     (long long)cases[i].t, off, cases[i].want);
    }
    assert_int_equal(search_tz_offset("Europe/Berlin", 0, NULL), 0);
}

/* glibc reads the same TZif files (and their footers): both must agree everywhere. This
   test alone sets TZ, which is fine in a single-threaded test program. */
static void
test_tz_offset_against_glibc(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "Europe/Berlin",     "America/St_Johns", "Australia/Sydney",    "America/Santiago",
        "Asia/Kolkata",      "Pacific/Chatham",  "America/New_York",    "Europe/Dublin",
        "Africa/Casablanca", "Pacific/Apia",     "Asia/Tehran",         "Antarctica/Troll",
        "America/Godthab",   "Europe/Lisbon",    "Australia/Lord_Howe",
    };
    const char *saved = getenv("TZ");
    char *saved_copy = saved ? strdup(saved) : NULL;
    unsigned long seed = 12345;
    for (size_t z = 0; z < ARRAY_LEN(zones); z++) {
        char tzenv[128];
        snprintf(tzenv, sizeof tzenv, ":%s", zones[z]);
        setenv("TZ", tzenv, 1);
        tzset();
        /* 1902 .. 2200, every 45 to 47 days at a varying time of day */
        for (int64_t t = -2145916800; t < 7258118400; t += 3900000 + (int64_t)(seed % 172800)) {
            seed = seed * 1103515245 + 12345;
            time_t tt = (time_t)t;
            struct tm tm;
            assert_non_null(localtime_r(&tt, &tm));
            int32_t off = 0;
            assert_int_equal(search_tz_offset(zones[z], t, &off), 0);
            if (off != tm.tm_gmtoff)
                fail_msg("%s at %lld: %d, glibc %ld", zones[z], (long long)t, off,
                         (long)tm.tm_gmtoff);
        }
    }
    if (saved_copy)
        setenv("TZ", saved_copy, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved_copy);
}

static void
test_limits(void **state)
{
    (void)state;
    size_t big = 100 * 1024;
    char *q = malloc(2 * big + 16);
    assert_non_null(q);
    search_query sq = {0};
    char err[256];

    /* one 100 KiB word */
    memset(q, 'a', big);
    q[big] = '\0';
    assert_int_equal(search_parse(q, "Europe/Berlin", &sq, err, sizeof err), 0);
    assert_int_equal(sq.count, 1);
    assert_int_equal(strlen(sq.terms[0].value), big);
    search_query_free(&sq);

    /* a 100 KiB phrase with a 100 KiB subject: filter in it */
    q[0] = '"';
    memcpy(q + big / 2, "subject:x y", 11);
    assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), 0);
    assert_int_equal(sq.count, 1);
    assert_int_equal(sq.terms[0].field, SEARCH_TEXT);
    assert_int_equal(strlen(sq.terms[0].value), big - 1);
    search_query_free(&sq);

    /* 100 KiB of quotes, of spaces, of dashes and quotes: nothing */
    static const char *const fillers[] = {"\"", " ", "-\"\" "};
    for (size_t f = 0; f < ARRAY_LEN(fillers); f++) {
        size_t len = strlen(fillers[f]);
        for (size_t i = 0; i + len <= big; i += len)
            memcpy(q + i, fillers[f], len);
        q[big - big % len] = '\0';
        assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), 0);
        assert_int_equal(sq.count, 0);
    }

    /* exactly SEARCH_MAX_TERMS terms, then one more */
    size_t n = 0;
    for (int i = 0; i < SEARCH_MAX_TERMS; i++)
        n += (size_t)snprintf(q + n, 16, "%s ", i % 2 ? "w" : "is:read");
    assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), 0);
    assert_int_equal(sq.count, SEARCH_MAX_TERMS);
    search_query_free(&sq);
    memcpy(q + n, "x", 2);
    assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), -1);
    assert_string_equal(err, "too many search terms (at most 100)");
    assert_null(sq.terms);

    /* 100 KiB of two-byte words: an error, not 50,000 terms */
    for (size_t i = 0; i + 2 <= big; i += 2)
        memcpy(q + i, "a ", 2);
    q[big] = '\0';
    assert_int_equal(search_parse(q, NULL, &sq, err, sizeof err), -1);
    free(q);
}

/* Arbitrary bytes never fail (no date/size filter can come out of these letters) and every
   term keeps the promises of search.h. */
static void
test_random_bytes(void **state)
{
    (void)state;
    static const char alphabet[] = "ab:- !\"\t\xff\xc3\xa4<>frmosubjectisread";
    unsigned long seed = 42;
    char q[200], got[8192];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(seed >> 16) % (sizeof q - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            q[i] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
        }
        q[len] = '\0';
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        search_query sq = {0};
        char err[256];
        if (search_parse(q, NULL, &sq, err, sizeof err) != 0)
            fail_msg("'%s': %s", q, err);
        render(&sq, got, sizeof got);
        for (size_t i = 0; i < sq.count; i++) {
            const char *v = sq.terms[i].value;
            if (v) {
                size_t vl = strlen(v);
                assert_true(v[0] != ' ' && v[vl - 1] != ' ' && !strchr(v, '"'));
                assert_null(strchr(v, '\t'));
            }
        }
        search_query_free(&sq);
    }
}

static void
test_free_is_safe(void **state)
{
    (void)state;
    search_query q = {0};
    search_query_free(&q);
    search_query_free(NULL);
    assert_int_equal(search_parse("from:a b", NULL, &q, NULL, 0), 0);
    search_query_free(&q);
    search_query_free(&q);
    assert_null(q.terms);
    assert_int_equal(q.count, 0);
    assert_int_equal(search_parse(NULL, NULL, &q, NULL, 0), 0);
    assert_int_equal(q.count, 0);
    assert_int_equal(search_parse("x", NULL, NULL, NULL, 0), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_and_phrases),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_negation),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_unicode_and_bad_bytes),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_bad_dates),
        cmocka_unit_test(test_error_value_cut),
        cmocka_unit_test(test_bad_zones),
        cmocka_unit_test(test_tz_offset),
        cmocka_unit_test(test_tz_offset_against_glibc),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_free_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
