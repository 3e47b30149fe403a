/*
 * body.h - the DATA decoder (RFC 5321 4.1.1.4, 4.5.2): dot-unstuffing and end of data,
 * streaming over any fragmentation of the input.
 *
 * Data ends only at CRLF "." CRLF; a bare CR or bare LF never ends a line here, so a
 * "<LF>.<LF>" or "<LF>.<CR><LF>" inside the data is content, not an end (SMTP
 * smuggling). Bare CR/LF are noted as findings and, by mode, kept, normalised to CRLF, or
 * make the message fail at the real end. The input is scanned in bulk with memchr, line
 * by line, never byte by byte through a state function; the decoded content goes to a
 * sink callback in spans, a run of lines that need no change being one span. Owned by
 * the session; not thread-safe.
 */
#ifndef SMTP_BODY_H
#define SMTP_BODY_H

#include <smtpd.h>

#include <stdbool.h>
#include <stddef.h>

typedef void (*body_sink_cb)(void *ctx, const char *data, size_t len);

typedef enum body_state {
    BODY_BOL = 0, /* at the start of a line (after CRLF) */
    BODY_MID,     /* inside a line */
    BODY_CR,      /* inside a line, just after a CR */
    BODY_DOT,     /* a "." at the start of a line */
    BODY_DOT_CR,  /* "." CR at the start of a line */
    BODY_DONE     /* CRLF.CRLF seen */
} body_state;

typedef struct body {
    /* settings */
    smtpd_bare_lf bare_mode;
    size_t max_text_line; /* octets incl. CRLF; longer lines are a finding */
    bool declared_8bit;   /* BODY=8BITMIME: 8-bit octets are no finding */
    body_sink_cb sink;
    void *sink_ctx;
    /* results */
    size_t size;        /* octets given to the sink */
    unsigned findings;  /* smtpd_finding bits */
    bool bare_seen;     /* a bare CR or LF (for bare-lf=reject) */
    bool line_over_cap; /* a line over 8 times max_text_line: the message fails */
    /* scanner state */
    body_state state;
    size_t line_len;
} body;

void body_init(body *b, smtpd_bare_lf mode, size_t max_text_line, bool declared_8bit,
               body_sink_cb sink, void *sink_ctx);

/* Decode up to len octets; returns how many were consumed. Consumption stops right after
   the final CRLF.CRLF (then body_is_done). */
size_t body_feed(body *b, const char *data, size_t len);

bool body_is_done(const body *b);

#endif
