/*
 * trace.h - the trace headers added to every message: Return-Path (RFC 5321 4.4, at final
 * delivery) and Received (4.4, with RFC 3848 / RFC 6531 protocol names). They are built
 * from client-controlled strings, so CR, LF, NUL and other controls never pass through.
 * Pure; any thread.
 */
#ifndef SMTP_TRACE_H
#define SMTP_TRACE_H

#include "core/buf.h"

#include <stdbool.h>
#include <time.h>

typedef struct trace_info {
    const char *sender;      /* reverse-path without <>, "" for the null sender */
    const char *helo;        /* the EHLO/HELO argument (may be NULL) */
    const char *client_addr; /* from the socket */
    const char *host;        /* our hostname */
    const char *id;          /* message id */
    const char *for_rcpt;    /* the one recipient, or NULL when there are several */
    bool esmtp;
    bool smtputf8;
    time_t now;
    const char *tls_version; /* NULL without TLS */
    const char *tls_cipher;
    const char *auth_user; /* NULL without AUTH */
} trace_info;

/* Append "Return-Path: <...>\r\nReceived: ...\r\n" to out. Returns a BUF_* code. */
int trace_append(buf *out, const trace_info *t);

/* RFC 5322 3.3 date-time in UTC, e.g. "Wed, 25 Nov 2026 14:45:34 +0000". */
void trace_format_date(time_t t, char *out, size_t size);

#endif
