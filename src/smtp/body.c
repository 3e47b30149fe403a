/* body.c - the DATA decoder; see body.h. */
#include "smtp/body.h"

#include "core/str.h"

#include <string.h>

void
body_init(body *b, smtpd_bare_lf mode, size_t max_text_line, bool declared_8bit, body_sink_cb sink,
          void *sink_ctx)
{
    memset(b, 0, sizeof *b);
    b->bare_mode = mode;
    b->max_text_line = max_text_line;
    b->declared_8bit = declared_8bit;
    b->sink = sink;
    b->sink_ctx = sink_ctx;
    /* The CRLF that ended the DATA command starts the first line (4.1.1.4). */
    b->state = BODY_BOL;
}

bool
body_is_done(const body *b)
{
    return b->state == BODY_DONE;
}

static void
body_emit(body *b, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (!b->declared_8bit && !(b->findings & SMTPD_FINDING_8BIT_UNDECLARED) && str_has_8bit(p, n))
        b->findings |= SMTPD_FINDING_8BIT_UNDECLARED;
    b->size += n;
    b->sink(b->sink_ctx, p, n);
}

/* Count octets of the current line and note a line over the text-line limit. */
static void
body_count_line(body *b, size_t n)
{
    b->line_len += n;
    /* RFC 5321 4.5.3.1.6: 1000 octets including the CRLF */
    if (b->line_len + 2 > b->max_text_line) {
        b->findings |= SMTPD_FINDING_LONG_LINE;
        /* Lines far past the limit are refused, as large providers do; nothing is
           buffered per line, so this guards the stored mail, not our memory. */
        if (b->line_len + 2 > 8 * b->max_text_line)
            b->line_over_cap = true;
    }
}

/* A CR or LF that is not part of CRLF: note it and store it by mode. The line does not
   end here as far as SMTP is concerned, so the state stays "inside a line". */
static void
body_bare(body *b, char c)
{
    b->findings |= c == '\n' ? SMTPD_FINDING_BARE_LF : SMTPD_FINDING_BARE_CR;
    b->bare_seen = true;
    switch (b->bare_mode) {
    case SMTPD_BARE_LF_NORMALIZE:
        body_emit(b, "\r\n", 2);
        b->line_len = 0;
        break;
    case SMTPD_BARE_LF_REJECT:
    case SMTPD_BARE_LF_ACCEPT:
        body_emit(b, &c, 1);
        body_count_line(b, 1);
        break;
    }
    b->state = BODY_MID;
}

/* From at (the start of a line) on, the complete lines of this piece that end in CRLF,
   do not start with "." and hold no other CR: they pass unchanged, so the caller emits
   them in one span with the line before (one sink call per run of lines, not per line:
   at 100 KiB a profile of the library had ~1,300 calls per message). Lengths are still
   counted line by line. Returns the end of the run. */
static size_t
body_plain_lines(body *b, const char *p, size_t n, size_t at)
{
    while (at < n && p[at] != '.') {
        const char *lf = memchr(p + at, '\n', n - at);
        if (lf == NULL)
            break; /* an incomplete line: the caller's next step takes it */
        size_t len = (size_t)(lf - (p + at)); /* octets before the LF */
        if (len == 0 || p[at + len - 1] != '\r' || memchr(p + at, '\r', len - 1) != NULL)
            break; /* a bare LF or a bare CR: the caller's next step handles it */
        body_count_line(b, len - 1);
        b->line_len = 0;
        at += len + 1;
    }
    return at;
}

/* Inside a line: emit everything up to the next CR or LF in one span, and the CRLF with
   it when both are in this piece. Returns octets consumed. */
static size_t
body_scan_mid(body *b, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t span = lf ? (size_t)(lf - p) : n;
    const char *cr = memchr(p, '\r', span);
    if (cr && (size_t)(cr - p) + 1 < span) {
        /* a CR inside the line, not before the LF: bare CR */
        size_t k = (size_t)(cr - p);
        body_emit(b, p, k);
        body_count_line(b, k);
        body_bare(b, '\r');
        return k + 1;
    }
    if (!lf) {
        /* no line end in this piece; a CR at the very end waits for the next piece */
        size_t k = (cr && (size_t)(cr - p) + 1 == n) ? n - 1 : n;
        body_emit(b, p, k);
        body_count_line(b, k);
        if (k < n)
            b->state = BODY_CR;
        return n;
    }
    if (cr) {
        /* CR directly before LF: one line, emitted with its CRLF, and with it the
           complete lines after it that need nothing done */
        body_count_line(b, span - 1);
        b->line_len = 0;
        size_t end = body_plain_lines(b, p, n, span + 1);
        body_emit(b, p, end);
        b->state = BODY_BOL;
        return end;
    }
    /* an LF with no CR before it */
    body_emit(b, p, span);
    body_count_line(b, span);
    body_bare(b, '\n');
    return span + 1;
}

size_t
body_feed(body *b, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && b->state != BODY_DONE) {
        char c = p[i];
        switch (b->state) {
        case BODY_BOL:
            if (c == '.') {
                b->state = BODY_DOT;
                i++;
            } else {
                b->state = BODY_MID;
            }
            break;
        case BODY_DOT:
            if (c == '\r') {
                b->state = BODY_DOT_CR;
                i++;
            } else {
                /* 4.5.2: a line starting with "." and more characters loses that dot */
                b->state = BODY_MID;
            }
            break;
        case BODY_DOT_CR:
            if (c == '\n') {
                b->state = BODY_DONE;
                i++;
            } else {
                /* "." then a bare CR: the dot is stuffing, the CR is bare */
                body_bare(b, '\r');
            }
            break;
        case BODY_CR:
            if (c == '\n') {
                body_emit(b, "\r\n", 2);
                b->line_len = 0;
                b->state = BODY_BOL;
                i++;
            } else {
                body_bare(b, '\r');
            }
            break;
        case BODY_MID:
            i += body_scan_mid(b, p + i, n - i);
            break;
        case BODY_DONE:
            break;
        }
    }
    return i;
}
