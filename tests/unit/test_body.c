/* test_body.c - the DATA decoder (src/smtp/body.c): dot-unstuffing, the end of data,
   bare CR/LF handling, findings, and above all: any split of the input into pieces gives
   the same result as one feed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "smtp/body.h"

#include "../common/body_reference.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define END "\r\n.\r\n"

/* The decoder's result: what it gave the sink and what it noted. */
typedef struct result {
    buf out;
    size_t consumed;
    bool done;
    unsigned findings;
    bool bare_seen;
    size_t size;
    size_t sink_calls;
    bool empty_sink_call;
} result;

static void
sink_cb(void *ctx, const char *data, size_t len)
{
    result *r = ctx;
    r->sink_calls++;
    if (len == 0)
        r->empty_sink_call = true;
    assert_int_equal(buf_append(&r->out, data, len), BUF_OK);
}

static void
result_init(result *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 1 << 20);
}

/* Decode in, cut at the given split points (ascending, within len). Like the session, a
   piece is fed until the decoder is done; once done, nothing more is fed. */
static void
decode_split(const char *in, size_t len, smtpd_bare_lf mode, size_t max_line, bool decl8,
             const size_t *splits, size_t nsplits, result *r)
{
    result_init(r);
    body b;
    body_init(&b, mode, max_line, decl8, sink_cb, r);
    size_t start = 0;
    for (size_t k = 0; k <= nsplits && !body_is_done(&b); k++) {
        size_t end = k < nsplits ? splits[k] : len;
        size_t used = body_feed(&b, in + start, end - start);
        r->consumed += used;
        if (!body_is_done(&b))
            assert_int_equal(used, end - start); /* it only stops early at the end */
        start = end;
    }
    r->done = body_is_done(&b);
    r->findings = b.findings;
    r->bare_seen = b.bare_seen;
    r->size = b.size;
    /* fed after the end, nothing more is taken */
    if (r->done)
        assert_int_equal(body_feed(&b, "more\r\n", 6), 0);
}

static void
decode(const char *in, size_t len, smtpd_bare_lf mode, result *r)
{
    decode_split(in, len, mode, 1000, false, NULL, 0, r);
}

static bool
result_equal(const result *a, const result *b)
{
    return a->out.len == b->out.len &&
           memcmp(buf_str(&a->out), buf_str(&b->out), a->out.len) == 0 &&
           a->consumed == b->consumed && a->done == b->done && a->findings == b->findings &&
           a->bare_seen == b->bare_seen && a->size == b->size;
}

static void
print_escaped(const char *label, const char *s, size_t len)
{
    char tmp[1024];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof tmp; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\r");
        else if (c == '\n')
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\n");
        else if (c < 32 || c >= 127)
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\x%02x", c);
        else
            tmp[n++] = (char)c;
    }
    tmp[n] = '\0';
    print_error("%s[%s]\n", label, tmp);
}

/* ---------------------------------------------------------------------------------- */
/* Golden cases                                                                        */
/* ---------------------------------------------------------------------------------- */

typedef struct body_case {
    const char *in;
    smtpd_bare_lf mode;
    const char *out;
    size_t consumed; /* 0: the whole input */
    bool done;
    unsigned findings;
} body_case;

#define BLF SMTPD_FINDING_BARE_LF
#define BCR SMTPD_FINDING_BARE_CR
#define REJ SMTPD_BARE_LF_REJECT
#define NRM SMTPD_BARE_LF_NORMALIZE
#define ACC SMTPD_BARE_LF_ACCEPT

static const body_case golden[] = {
    /* plain messages and the end of data */
    {"Hello\r\n"
     ".\r\n",
     REJ, "Hello\r\n", 0, true, 0},
    {".\r\n", REJ, "", 0, true, 0}, /* empty message: the DATA CRLF starts the line */
    {"\r\n.\r\n", REJ, "\r\n", 0, true, 0},
    {"a\r\nb\r\n\r\nc\r\n.\r\n", REJ, "a\r\nb\r\n\r\nc\r\n", 0, true, 0},
    {"a\r\n.\r\nMAIL FROM:<x@y>\r\n", REJ, "a\r\n", 6, true, 0}, /* stops right after */
    {".\r\nQUIT\r\n", REJ, "", 3, true, 0},
    {"a\r\n.\r\n.\r\n", REJ, "a\r\n", 6, true, 0},
    /* not yet at the end */
    {"a\r\n", REJ, "a\r\n", 0, false, 0},
    {"a\r\n.", REJ, "a\r\n", 0, false, 0},
    {"a\r\n.\r", REJ, "a\r\n", 0, false, 0},
    {"a\r", REJ, "a", 0, false, 0},
    {"", REJ, "", 0, false, 0},
    /* dot-unstuffing (RFC 5321 4.5.2) */
    {"..\r\n.\r\n", REJ, ".\r\n", 0, true, 0},
    {"..leading\r\n.\r\n", REJ, ".leading\r\n", 0, true, 0},
    {"...\r\n.\r\n", REJ, "..\r\n", 0, true, 0},
    {".x\r\n.\r\n", REJ, "x\r\n", 0, true, 0}, /* a lone stuffing dot is dropped too */
    {". \r\n.\r\n", REJ, " \r\n", 0, true, 0},
    {"a\r\n..\r\nb\r\n.\r\n", REJ, "a\r\n.\r\nb\r\n", 0, true, 0},
    {"a.\r\n.b\r\n.\r\n", REJ, "a.\r\nb\r\n", 0, true, 0}, /* only at line start */
    {"a\r\n. \r\n.\r\n", REJ, "a\r\n \r\n", 0, true, 0},
    {"a\r\n.\r\r\n.\r\n", ACC, "a\r\n\r\r\n", 0, true, BCR}, /* ".<CR><CR><LF>" */
    /* smuggling: only CRLF.CRLF ends the data */
    {"a\n.\nb\r\n.\r\n", ACC, "a\n.\nb\r\n", 0, true, BLF},
    {"a\n.\nb\r\n.\r\n", NRM, "a\r\n.\r\nb\r\n", 0, true, BLF},
    {"a\n.\nb\r\n.\r\n", REJ, "a\n.\nb\r\n", 0, true, BLF},
    {"a\n.\r\nb\r\n.\r\n", ACC, "a\n.\r\nb\r\n", 0, true, BLF},
    {"a\n.\r\nb\r\n.\r\n", NRM, "a\r\n.\r\nb\r\n", 0, true, BLF},
    {"a\r.\r\nb\r\n.\r\n", ACC, "a\r.\r\nb\r\n", 0, true, BCR},
    {"a\r.\r\nb\r\n.\r\n", NRM, "a\r\n.\r\nb\r\n", 0, true, BCR},
    {"a\r\n.\nb\r\n.\r\n", ACC, "a\r\n\nb\r\n", 0, true, BLF}, /* ".<LF>": dot dropped */
    {"a\r\n.\rb\r\n.\r\n", ACC, "a\r\n\rb\r\n", 0, true, BCR},
    {"a\r\n.\rb\r\n.\r\n", NRM, "a\r\n\r\nb\r\n", 0, true, BCR},
    {"a\n.\n", ACC, "a\n.\n", 0, false, BLF},
    {"a\r.\r", ACC, "a\r.", 0, false, BCR},
    {"\n.\r\n", ACC, "\n.\r\n", 0, false, BLF},
    /* bare CR and LF in the three modes */
    {"a\nb\r\n.\r\n", REJ, "a\nb\r\n", 0, true, BLF},
    {"a\nb\r\n.\r\n", ACC, "a\nb\r\n", 0, true, BLF},
    {"a\nb\r\n.\r\n", NRM, "a\r\nb\r\n", 0, true, BLF},
    {"a\rb\r\n.\r\n", REJ, "a\rb\r\n", 0, true, BCR},
    {"a\rb\r\n.\r\n", ACC, "a\rb\r\n", 0, true, BCR},
    {"a\rb\r\n.\r\n", NRM, "a\r\nb\r\n", 0, true, BCR},
    {"a\r\r\n.\r\n", ACC, "a\r\r\n", 0, true, BCR},
    {"a\r\r\n.\r\n", NRM, "a\r\n\r\n", 0, true, BCR},
    {"a\n\r\n.\r\n", NRM, "a\r\n\r\n", 0, true, BLF},
    {"a\r\rb\r\n.\r\n", NRM, "a\r\n\r\nb\r\n", 0, true, BCR},
    {"\n\r\n.\r\n", ACC, "\n\r\n", 0, true, BLF},
    {"\r\r\n.\r\n", ACC, "\r\r\n", 0, true, BCR},
    {"a\n\rb\r\n.\r\n", ACC, "a\n\rb\r\n", 0, true, BLF | BCR},
    {"a\n\rb\r\n.\r\n", NRM, "a\r\n\r\nb\r\n", 0, true, BLF | BCR},
    {"x\n\n\n\r\n.\r\n", NRM, "x\r\n\r\n\r\n\r\n", 0, true, BLF},
};

static const char *
mode_name(smtpd_bare_lf m)
{
    switch (m) {
    case SMTPD_BARE_LF_REJECT:
        return "reject";
    case SMTPD_BARE_LF_NORMALIZE:
        return "normalize";
    case SMTPD_BARE_LF_ACCEPT:
        return "accept";
    }
    return "?";
}

static void
test_golden(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(golden); i++) {
        const body_case *c = &golden[i];
        size_t len = strlen(c->in);
        result r;
        decode(c->in, len, c->mode, &r);
        size_t want_consumed = c->consumed ? c->consumed : len;
        bool bad = r.out.len != strlen(c->out) || memcmp(buf_str(&r.out), c->out, r.out.len) ||
                   r.consumed != want_consumed || r.done != c->done || r.findings != c->findings ||
                   r.bare_seen != ((c->findings & (BLF | BCR)) != 0) || r.size != r.out.len ||
                   r.empty_sink_call;
        if (bad) {
            print_error("golden case %zu (%s): consumed %zu/%zu done %d/%d findings 0x%x/0x%x\n", i,
                        mode_name(c->mode), r.consumed, want_consumed, r.done, c->done, r.findings,
                        c->findings);
            print_escaped("  in   ", c->in, len);
            print_escaped("  want ", c->out, strlen(c->out));
            print_escaped("  got  ", buf_str(&r.out), r.out.len);
            failures++;
        }
        buf_cleanup(&r.out);
    }
    assert_int_equal(failures, 0);
}

/* Every golden input, cut at every byte boundary into two pieces, at every pair of
   boundaries into three, and fed byte by byte, decodes exactly like one feed. */
static void
test_golden_every_split(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(golden); i++) {
        const body_case *c = &golden[i];
        size_t len = strlen(c->in);
        result whole;
        decode(c->in, len, c->mode, &whole);
        for (size_t s1 = 0; s1 <= len; s1++) {
            for (size_t s2 = s1; s2 <= len; s2++) {
                size_t splits[2] = {s1, s2};
                result r;
                decode_split(c->in, len, c->mode, 1000, false, splits, 2, &r);
                if (!result_equal(&whole, &r)) {
                    print_error("golden case %zu split at %zu,%zu differs\n", i, s1, s2);
                    failures++;
                }
                buf_cleanup(&r.out);
            }
        }
        size_t bytes[256];
        assert_true(len <= ARRAY_LEN(bytes));
        for (size_t k = 0; k < len; k++)
            bytes[k] = k + 1;
        result r;
        decode_split(c->in, len, c->mode, 1000, false, bytes, len ? len - 1 : 0, &r);
        if (!result_equal(&whole, &r)) {
            print_error("golden case %zu byte by byte differs\n", i);
            failures++;
        }
        buf_cleanup(&r.out);
        buf_cleanup(&whole.out);
    }
    assert_int_equal(failures, 0);
}

/* A small deterministic generator (no rand(): the same inputs on every run). */
static uint32_t
lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static size_t
gen_input(uint32_t *seed, char *out, size_t max)
{
    static const char alphabet[] = {'\r', '\n', '.', 'a', 'b', '\r', '\n', '.', (char)0xc3, ' '};
    size_t len = lcg(seed) % max;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[lcg(seed) % sizeof alphabet];
    return len;
}

static void
test_random_against_reference(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    int failures = 0;
    char in[64];
    for (int iter = 0; iter < 4000 && failures < 5; iter++) {
        size_t len = gen_input(&seed, in, 40);
        /* make sure the data ends */
        memcpy(in + len, END, 5);
        len += 5;
        smtpd_bare_lf mode = (smtpd_bare_lf)(iter % 3);
        size_t max_line = 4 + (size_t)(iter % 7);
        bool decl8 = (iter / 3) % 2;
        ref want;
        ref_decode(in, len, mode, max_line, decl8, &want);
        assert_true(want.done && !want.failed);
        result got;
        decode_split(in, len, mode, max_line, decl8, NULL, 0, &got);
        bool bad = got.out.len != want.out.len ||
                   memcmp(buf_str(&got.out), buf_str(&want.out), want.out.len) ||
                   got.consumed != want.consumed || got.done != want.done ||
                   got.findings != want.findings;
        if (bad) {
            print_error("random %d (%s, max %zu, 8bit %d): consumed %zu/%zu findings "
                        "0x%x/0x%x\n",
                        iter, mode_name(mode), max_line, decl8, got.consumed, want.consumed,
                        got.findings, want.findings);
            print_escaped("  in   ", in, len);
            print_escaped("  want ", buf_str(&want.out), want.out.len);
            print_escaped("  got  ", buf_str(&got.out), got.out.len);
            failures++;
        }
        /* and every two-piece split, and byte by byte, agree with one feed */
        for (size_t s = 0; s <= len && !bad; s++) {
            result r;
            decode_split(in, len, mode, max_line, decl8, &s, 1, &r);
            if (!result_equal(&got, &r)) {
                print_error("random %d split at %zu differs from one feed\n", iter, s);
                print_escaped("  in   ", in, len);
                failures++;
                bad = true;
            }
            buf_cleanup(&r.out);
        }
        size_t bytes[64];
        for (size_t k = 0; k + 1 < len; k++)
            bytes[k] = k + 1;
        result r;
        decode_split(in, len, mode, max_line, decl8, bytes, len - 1, &r);
        if (!bad && !result_equal(&got, &r)) {
            print_error("random %d byte by byte differs from one feed\n", iter);
            failures++;
        }
        buf_cleanup(&r.out);
        buf_cleanup(&got.out);
        buf_cleanup(&want.out);
    }
    assert_int_equal(failures, 0);
}

/* Inputs that never end (no terminator): all splits agree, and everything is taken. */
static void
test_random_unterminated_splits(void **state)
{
    (void)state;
    uint32_t seed = 777;
    int failures = 0;
    char in[64];
    for (int iter = 0; iter < 3000 && failures < 5; iter++) {
        size_t len = gen_input(&seed, in, 48);
        smtpd_bare_lf mode = (smtpd_bare_lf)(iter % 3);
        result whole;
        decode_split(in, len, mode, 6, false, NULL, 0, &whole);
        for (size_t s1 = 0; s1 <= len; s1 += 1) {
            size_t s2 = s1 + (len - s1) / 2;
            size_t splits[2] = {s1, s2};
            result r;
            decode_split(in, len, mode, 6, false, splits, 2, &r);
            if (!result_equal(&whole, &r)) {
                print_error("unterminated %d split at %zu,%zu differs\n", iter, s1, s2);
                print_escaped("  in   ", in, len);
                failures++;
            }
            buf_cleanup(&r.out);
        }
        if (!whole.done)
            assert_int_equal(whole.consumed, len);
        buf_cleanup(&whole.out);
    }
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------------------------- */
/* Findings: long lines and 8-bit data                                                 */
/* ---------------------------------------------------------------------------------- */

static void
decode_line_of(size_t n, size_t max_line, smtpd_bare_lf mode, result *r)
{
    static char in[5000];
    assert_true(n + 10 < sizeof in);
    memset(in, 'x', n);
    memcpy(in + n, END, 5);
    decode_split(in, n + 5, mode, max_line, false, NULL, 0, r);
}

static void
test_long_line_finding(void **state)
{
    (void)state;
    result r;
    /* RFC 5321 4.5.3.1.6: 1000 octets including the CRLF */
    decode_line_of(998, 1000, REJ, &r);
    assert_int_equal(r.findings, 0);
    assert_int_equal(r.out.len, 1000);
    buf_cleanup(&r.out);
    decode_line_of(999, 1000, REJ, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_LONG_LINE);
    assert_int_equal(r.out.len, 1001);
    buf_cleanup(&r.out);
    decode_line_of(78, 80, REJ, &r);
    assert_int_equal(r.findings, 0);
    buf_cleanup(&r.out);
    decode_line_of(79, 80, REJ, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_LONG_LINE);
    buf_cleanup(&r.out);

    /* a long line split over many feeds is still one long line */
    char in[2000];
    memset(in, 'y', 999);
    memcpy(in + 999, END, 5);
    size_t splits[20];
    for (size_t k = 0; k < 20; k++)
        splits[k] = 50 * (k + 1);
    decode_split(in, 1004, REJ, 1000, false, splits, 20, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_LONG_LINE);
    buf_cleanup(&r.out);
    /* ... and many short lines are not */
    size_t n = 0;
    for (int k = 0; k < 300; k++) {
        memcpy(in + n, "abc\r\n", 5);
        n += 5;
    }
    memcpy(in + n - 2, END, 5);
    decode_split(in, n + 3, REJ, 80, false, NULL, 0, &r);
    assert_true(r.done);
    assert_int_equal(r.findings, 0);
    buf_cleanup(&r.out);

    /* the stuffing dot does not count; the unstuffed line is what is stored */
    memset(in, 'z', 80);
    in[0] = '.';
    memcpy(in + 80, END, 5);
    decode_split(in, 85, REJ, 81, false, NULL, 0, &r); /* 79 octets + CRLF */
    assert_int_equal(r.findings, 0);
    buf_cleanup(&r.out);
    /* bare LF does not end an SMTP line: with accept, the octets on both sides add up */
    memset(in, 'w', 100);
    in[50] = '\n';
    memcpy(in + 100, END, 5);
    decode_split(in, 105, ACC, 80, false, NULL, 0, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_LONG_LINE | BLF);
    buf_cleanup(&r.out);
}

static void
test_8bit_finding(void **state)
{
    (void)state;
    static const char msg[] = "Subject: caf\xc3\xa9\r\n.\r\n";
    result r;
    decode_split(msg, sizeof msg - 1, REJ, 1000, false, NULL, 0, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_8BIT_UNDECLARED);
    assert_string_equal(buf_str(&r.out), "Subject: caf\xc3\xa9\r\n");
    buf_cleanup(&r.out);
    decode_split(msg, sizeof msg - 1, REJ, 1000, true, NULL, 0, &r);
    assert_int_equal(r.findings, 0);
    buf_cleanup(&r.out);
    /* 8-bit octets right after the end do not count: they are not consumed */
    static const char after[] = "plain\r\n.\r\n\xff\xff";
    decode_split(after, sizeof after - 1, REJ, 1000, false, NULL, 0, &r);
    assert_int_equal(r.findings, 0);
    assert_int_equal(r.consumed, sizeof after - 3);
    buf_cleanup(&r.out);
    /* any octet >= 0x80 counts, valid UTF-8 or not; byte by byte too */
    static const char raw[] = "x\x80y\r\n.\r\n";
    size_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    decode_split(raw, sizeof raw - 1, REJ, 1000, false, bytes, 8, &r);
    assert_int_equal(r.findings, SMTPD_FINDING_8BIT_UNDECLARED);
    buf_cleanup(&r.out);
}

/* A big message in odd-sized pieces: content is passed through whole and in order. */
static void
test_big_message_pieces(void **state)
{
    (void)state;
    static char in[200000];
    static char want[200000];
    size_t n = 0, w = 0;
    for (int line = 0; n < sizeof in - 200; line++) {
        /* every 7th content line starts with a dot, which the client doubles */
        char text[64];
        int len = snprintf(text, sizeof text, "%s%d line of text\r\n", line % 7 ? "" : ".", line);
        memcpy(want + w, text, (size_t)len);
        w += (size_t)len;
        if (text[0] == '.')
            in[n++] = '.';
        memcpy(in + n, text, (size_t)len);
        n += (size_t)len;
    }
    memcpy(in + n, ".\r\n", 3);
    n += 3;
    size_t splits[2000];
    size_t ns = 0;
    for (size_t pos = 1; pos < n && ns < ARRAY_LEN(splits); pos += 1 + (pos * 7919) % 251)
        splits[ns++] = pos;
    result r;
    decode_split(in, n, REJ, 1000, false, splits, ns, &r);
    assert_true(r.done);
    assert_int_equal(r.consumed, n);
    assert_int_equal(r.out.len, w);
    assert_memory_equal(buf_str(&r.out), want, w);
    assert_int_equal(r.findings, 0);
    assert_int_equal(r.size, w);
    buf_cleanup(&r.out);
}

static void
test_sink_spans_not_bytes(void **state)
{
    (void)state;
    /* body.h: the input is scanned in bulk, one span per line, not byte by byte */
    static char in[2000];
    memset(in, 'q', 1000);
    memcpy(in + 1000,
           "\r\n"
           "second line\r\n"
           ".\r\n",
           18);
    result r;
    decode_split(in, 1018, REJ, 2000, false, NULL, 0, &r);
    assert_true(r.done);
    assert_true(r.sink_calls <= 3);
    buf_cleanup(&r.out);
}

/* smtpd.h max_text_line: a line over 8 times the limit makes the message fail (the
   decoder notes it; the session refuses at the end). */
static void
test_line_over_cap(void **state)
{
    (void)state;
    static char in[2000];
    for (size_t len = 795; len <= 800; len++) {
        memset(in, 'o', len);
        memcpy(in + len, "\r\n.\r\n", 5);
        body b;
        result r;
        result_init(&r);
        body_init(&b, REJ, 100, false, sink_cb, &r);
        assert_int_equal(body_feed(&b, in, len + 5), len + 5);
        /* 798 octets + CRLF = 800 = 8 x 100 is still allowed */
        assert_int_equal(b.line_over_cap, len + 2 > 800);
        assert_int_equal(b.findings, SMTPD_FINDING_LONG_LINE);
        buf_cleanup(&r.out);
    }
    /* the count spans pieces, and bare LF (not a line end) does not reset it... */
    memset(in, 'o', 1000);
    in[500] = '\n';
    memcpy(in + 1000, "\r\n.\r\n", 5);
    for (int mode = 0; mode < 3; mode++) {
        body b;
        result r;
        result_init(&r);
        body_init(&b, (smtpd_bare_lf)mode, 100, false, sink_cb, &r);
        for (size_t off = 0; off < 1005; off += 67) {
            size_t piece = 1005 - off < 67 ? 1005 - off : 67;
            assert_int_equal(body_feed(&b, in + off, piece), piece);
        }
        assert_true(body_is_done(&b));
        /* ...except in normalize mode, where it is stored as a line end */
        assert_int_equal(b.line_over_cap, mode != SMTPD_BARE_LF_NORMALIZE);
        buf_cleanup(&r.out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_golden_every_split),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_random_unterminated_splits),
        cmocka_unit_test(test_long_line_finding),
        cmocka_unit_test(test_8bit_finding),
        cmocka_unit_test(test_big_message_pieces),
        cmocka_unit_test(test_sink_spans_not_bytes),
        cmocka_unit_test(test_line_over_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
