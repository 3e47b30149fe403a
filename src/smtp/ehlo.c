/* ehlo.c - the EHLO reply: our name and the extensions this server offers. */
#include "smtp/session.h"

#include <stdio.h>

#include "core/buf.h"

/* Append str to b unless an earlier append failed; the first failure is kept. */
static void
ehlo_add(buf *b, int *rc, const char *str)
{
    if (*rc == BUF_OK)
        *rc = buf_append_str(b, str);
}

bool
ehlo_reply(smtpd_session *s)
{
    const smtpd_options *o = s->env->opts;
    char line[96];
    buf b;
    buf_init(&b, 1024);
    /* RFC 5321 4.1.1.1: the first line names us; one extension keyword per line */
    int rc = buf_printf(&b, "%s\n", o->hostname);
    if (o->pipelining)
        ehlo_add(&b, &rc, "PIPELINING\n");                          /* RFC 2920 */
    snprintf(line, sizeof line, "SIZE %zu\n", o->max_message_size); /* RFC 1870 */
    ehlo_add(&b, &rc, line);
    if (s->env->tls_available && !s->tls)
        ehlo_add(&b, &rc, "STARTTLS\n"); /* RFC 3207 4.2: not again once TLS is on */
    if (sasl_is_offered(s)) {
        char mechs[64];
        sasl_mech_list(s, mechs, sizeof mechs);
        if (mechs[0]) {
            snprintf(line, sizeof line, "AUTH %s\n", mechs); /* RFC 4954 3 */
            ehlo_add(&b, &rc, line);
        }
    }
    if (o->enhanced_status_codes)
        ehlo_add(&b, &rc, "ENHANCEDSTATUSCODES\n"); /* RFC 2034 */
    ehlo_add(&b, &rc, "8BITMIME");                  /* RFC 6152 */
    if (o->smtputf8)
        ehlo_add(&b, &rc, "\nSMTPUTF8"); /* RFC 6531 */
    /* A list with a line missing would hide an extension (STARTTLS, AUTH) that is there.
       RFC 2034 3: no enhanced code on the EHLO reply itself. */
    if (rc != BUF_OK)
        session_reply(s, 451, "4.3.0", "Error: out of memory");
    else
        session_reply(s, 250, NULL, "%s", buf_str(&b));
    buf_cleanup(&b);
    return rc == BUF_OK;
}
