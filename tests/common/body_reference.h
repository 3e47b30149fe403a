/*
 * body_reference.h - a byte-at-a-time DATA decoder written from RFC 5321 4.1.1.4 / 4.5.2
 * and the body.h contract, with the whole input in view: the oracle the bulk scanner in
 * src/smtp/body.c is checked against, by the unit tests (tests/unit/test_body.c) and the
 * fuzz target (tests/fuzz/fuzz_body.c). Static functions, for one translation unit each.
 * The caller frees r->out with buf_cleanup.
 */
#ifndef TESTS_BODY_REFERENCE_H
#define TESTS_BODY_REFERENCE_H

#include "core/buf.h"
#include "smtp/body.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* The reference: RFC 5321 4.1.1.4 / 4.5.2 and body.h, one octet at a time, with the whole
   input in view. Only meaningful when the data ends within the input. */
typedef struct ref {
    buf out;
    size_t consumed;
    bool done;
    unsigned findings;
    bool over_cap;
    bool failed; /* out of memory in the reference itself */
} ref;

static void
ref_emit(ref *r, const char *p, size_t n, bool decl8, size_t *line_len, size_t max_line, bool count)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80 && !decl8)
            r->findings |= SMTPD_FINDING_8BIT_UNDECLARED;
    if (buf_append(&r->out, p, n) != BUF_OK)
        r->failed = true;
    if (count) {
        *line_len += n;
        if (*line_len + 2 > max_line) {
            r->findings |= SMTPD_FINDING_LONG_LINE;
            if (*line_len + 2 > 8 * max_line)
                r->over_cap = true;
        }
    }
}

static void
ref_decode(const char *p, size_t n, smtpd_bare_lf mode, size_t max_line, bool decl8, ref *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 2 * n + 16);
    size_t i = 0, line_len = 0;
    bool bol = true;
    while (i < n) {
        if (bol && p[i] == '.') {
            if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
                r->done = true;
                i += 3;
                break;
            }
            i++; /* the stuffing dot */
            if (i == n)
                break;
        }
        bol = false;
        char c = p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
            ref_emit(r, "\r\n", 2, decl8, &line_len, max_line, false);
            line_len = 0;
            bol = true;
            i += 2;
        } else if (c == '\r' || c == '\n') {
            r->findings |= c == '\n' ? SMTPD_FINDING_BARE_LF : SMTPD_FINDING_BARE_CR;
            if (mode == SMTPD_BARE_LF_NORMALIZE) {
                ref_emit(r, "\r\n", 2, decl8, &line_len, max_line, false);
                line_len = 0;
            } else {
                ref_emit(r, &c, 1, decl8, &line_len, max_line, true);
            }
            i++;
        } else {
            ref_emit(r, &c, 1, decl8, &line_len, max_line, true);
            i++;
        }
    }
    r->consumed = i;
}

#endif
