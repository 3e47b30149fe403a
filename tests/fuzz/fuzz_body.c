/*
 * fuzz_body.c - the DATA decoder, differential: one feed against the same bytes split
 * into pieces (and byte by byte for short inputs) must give identical output, findings
 * and consumption; and both against a byte-at-a-time reference decoder when the data
 * ends.
 *
 * Input: [0] bits 0-1 bare-lf mode, bit 2 BODY=8BITMIME; [1] max text line (3..258);
 * [2] number of cuts (low 3 bits), then 2 bytes per cut; then the data after "DATA".
 */
#include "core/buf.h"
#include "smtp/body.h"

#include "../common/body_reference.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

typedef struct run {
    buf out;
    size_t consumed;
    bool done;
    unsigned findings;
    bool bare_seen;
    bool over_cap;
    size_t size;
} run;

static void
sink_cb(void *ctx, const char *p, size_t n)
{
    run *r = ctx;
    CHECK(n > 0);
    CHECK(buf_append(&r->out, p, n) == BUF_OK);
}

static void
decode(const char *p, size_t n, smtpd_bare_lf mode, size_t max_line, bool decl8, const size_t *cuts,
       size_t ncuts, run *r)
{
    memset(r, 0, sizeof *r);
    /* normalize turns 1 octet into 2 */
    buf_init(&r->out, 2 * n + 16);
    body b;
    body_init(&b, mode, max_line, decl8, sink_cb, r);
    size_t start = 0;
    for (size_t k = 0; k <= ncuts && !body_is_done(&b); k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t used = body_feed(&b, p + start, end - start);
        CHECK(used <= end - start);
        if (!body_is_done(&b))
            CHECK(used == end - start);
        r->consumed += used;
        start = end;
    }
    r->done = body_is_done(&b);
    if (r->done)
        CHECK(body_feed(&b, "x\r\n", 3) == 0);
    r->findings = b.findings;
    r->bare_seen = b.bare_seen;
    r->over_cap = b.line_over_cap;
    r->size = b.size;
    CHECK(r->size == r->out.len);
}

static void
same(const run *a, const run *b)
{
    CHECK(a->out.len == b->out.len);
    CHECK(memcmp(buf_str(&a->out), buf_str(&b->out), a->out.len) == 0);
    CHECK(a->consumed == b->consumed);
    CHECK(a->done == b->done);
    CHECK(a->findings == b->findings);
    CHECK(a->bare_seen == b->bare_seen);
    CHECK(a->over_cap == b->over_cap);
    CHECK(a->size == b->size);
}

static int
cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    smtpd_bare_lf mode = (smtpd_bare_lf)((data[0] & 3) % 3);
    bool decl8 = (data[0] & 4) != 0;
    size_t max_line = 3 + (size_t)data[1];
    size_t ncuts = data[2] & 7;
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    size_t cuts[8];
    size_t k = 0;
    for (; k < ncuts && n >= 2; k++) {
        cuts[k] = ((size_t)p[0] << 8) | p[1];
        p += 2;
        n -= 2;
    }
    ncuts = k;
    for (k = 0; k < ncuts; k++)
        cuts[k] %= n + 1;
    qsort(cuts, ncuts, sizeof cuts[0], cmp_size);

    /* an exact-size copy so ASan sees any read past the piece */
    char *in = malloc(n ? n : 1);
    CHECK(in != NULL);
    memcpy(in, p, n);

    run whole, split;
    decode(in, n, mode, max_line, decl8, NULL, 0, &whole);
    decode(in, n, mode, max_line, decl8, cuts, ncuts, &split);
    same(&whole, &split);
    buf_cleanup(&split.out);
    if (n <= 2048) {
        size_t *bytes = malloc((n ? n : 1) * sizeof *bytes);
        CHECK(bytes != NULL);
        for (k = 0; k + 1 < n; k++)
            bytes[k] = k + 1;
        run bb;
        decode(in, n, mode, max_line, decl8, bytes, n ? n - 1 : 0, &bb);
        same(&whole, &bb);
        buf_cleanup(&bb.out);
        free(bytes);
    }

    /* findings and output agree with the mode */
    CHECK(whole.bare_seen ==
          ((whole.findings & (SMTPD_FINDING_BARE_LF | SMTPD_FINDING_BARE_CR)) != 0));
    if (decl8)
        CHECK(!(whole.findings & SMTPD_FINDING_8BIT_UNDECLARED));
    if (whole.over_cap)
        CHECK(whole.findings & SMTPD_FINDING_LONG_LINE);
    if (!whole.done)
        CHECK(whole.consumed == n);

    ref r;
    ref_decode(in, n, mode, max_line, decl8, &r);
    CHECK(!r.failed);
    CHECK(r.done == whole.done);
    if (r.done) {
        CHECK(r.consumed == whole.consumed);
        CHECK(r.out.len == whole.out.len);
        CHECK(memcmp(buf_str(&r.out), buf_str(&whole.out), r.out.len) == 0);
        CHECK(r.findings == whole.findings);
        CHECK(r.over_cap == whole.over_cap);
        /* with no bare CR/LF left in the output, stuffing it again and adding the end
           gives back the same content */
        const char *o = buf_str(&whole.out);
        size_t olen = whole.out.len;
        bool bare = false;
        for (size_t i = 0; i < olen; i++)
            if ((o[i] == '\r' && (i + 1 == olen || o[i + 1] != '\n')) ||
                (o[i] == '\n' && (i == 0 || o[i - 1] != '\r')))
                bare = true;
        if (mode == SMTPD_BARE_LF_NORMALIZE)
            CHECK(!bare);
        if (!bare && (olen == 0 || (olen >= 2 && o[olen - 2] == '\r' && o[olen - 1] == '\n'))) {
            buf st;
            buf_init(&st, 2 * olen + 8);
            bool bol = true;
            for (size_t i = 0; i < olen; i++) {
                if (bol && o[i] == '.')
                    CHECK(buf_append(&st, ".", 1) == BUF_OK);
                CHECK(buf_append(&st, o + i, 1) == BUF_OK);
                bol = o[i] == '\n';
            }
            CHECK(buf_append(&st, ".\r\n", 3) == BUF_OK);
            run again;
            decode(buf_str(&st), st.len, mode, 1u << 30, true, NULL, 0, &again);
            CHECK(again.done && again.consumed == st.len);
            CHECK(again.out.len == olen && memcmp(buf_str(&again.out), o, olen) == 0);
            buf_cleanup(&again.out);
            buf_cleanup(&st);
        }
    }
    buf_cleanup(&r.out);
    buf_cleanup(&whole.out);
    free(in);
    return 0;
}
