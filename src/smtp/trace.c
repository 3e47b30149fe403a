/* trace.c - Return-Path and Received headers; see trace.h. */
#include "smtp/trace.h"

#include "smtp/parse.h"

#include <stdio.h>
#include <string.h>

void
trace_format_date(time_t t, char *out, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, size, "Thu, 1 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(out, size, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Append s with every control octet (and, where it would break the syntax, the
   delimiters) replaced, so nothing from the client can start a new header line. */
static int
trace_append_safe(buf *out, const char *s, const char *also_bad)
{
    if (!s)
        return BUF_OK;
    char tmp[512];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c < 32 || c == 127 || (also_bad && strchr(also_bad, c)))
            c = '?';
        tmp[n++] = (char)c;
        if (n == sizeof tmp) {
            int rc = buf_append(out, tmp, n);
            if (rc != BUF_OK)
                return rc;
            n = 0;
        }
    }
    return buf_append(out, tmp, n);
}

int
trace_append(buf *out, const trace_info *t)
{
    char date[64];
    trace_format_date(t->now, date, sizeof date);
    /* RFC 3848 / RFC 6531 4.3: SMTP, ESMTP, UTF8SMTP, with S for TLS and A for AUTH */
    bool tls = t->tls_version != NULL, auth = t->auth_user != NULL;
    char with[16];
    snprintf(with, sizeof with, "%s%s%s",
             t->smtputf8                 ? "UTF8SMTP"
             : (t->esmtp || tls || auth) ? "ESMTP"
                                         : "SMTP",
             tls ? "S" : "", auth ? "A" : "");
    int rc = BUF_OK;
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((rc = (expr)) != BUF_OK)                                                               \
            return rc;                                                                             \
    } while (0)
    TRY(buf_append_str(out, "Return-Path: <"));
    /* paths were checked by the parser: a '>' can only be inside a quoted local part */
    TRY(trace_append_safe(out, t->sender, NULL));
    TRY(buf_append_str(out, ">\r\nReceived: from "));
    /* 4.4 From-domain: the EHLO argument, an address literal included; brackets only
       survive when they form a valid literal */
    const char *helo = t->helo && *t->helo ? t->helo : "unknown";
    bool literal = helo[0] == '[' && parse_is_domain_or_literal(helo, strlen(helo));
    TRY(trace_append_safe(out, helo, literal ? "();" : "()[];"));
    /* 4.1.3: an IPv6 address literal carries the "IPv6:" tag */
    TRY(buf_printf(out, " ([%s%s])\r\n", strchr(t->client_addr, ':') ? "IPv6:" : "",
                   t->client_addr));
    if (tls) {
        TRY(buf_append_str(out, "\t(using "));
        TRY(trace_append_safe(out, t->tls_version, "()"));
        TRY(buf_append_str(out, " with cipher "));
        TRY(trace_append_safe(out, t->tls_cipher ? t->tls_cipher : "unknown", "()"));
        TRY(buf_append_str(out, ")\r\n"));
    }
    if (auth) {
        TRY(buf_append_str(out, "\t(Authenticated sender: "));
        TRY(trace_append_safe(out, t->auth_user, "()"));
        TRY(buf_append_str(out, ")\r\n"));
    }
    TRY(buf_append_str(out, "\tby "));
    TRY(trace_append_safe(out, t->host, "()[];"));
    TRY(buf_printf(out, " (libsmtpd) with %s id %s", with, t->id));
    if (t->for_rcpt) {
        TRY(buf_append_str(out, "\r\n\tfor <"));
        TRY(trace_append_safe(out, t->for_rcpt, NULL));
        TRY(buf_append_str(out, ">"));
    }
    TRY(buf_printf(out, "; %s\r\n", date));
#undef TRY
    return rc;
}
