/* ehlo.c - the EHLO reply: our name and the extensions this server offers. */
#include "smtp/session.h"

#include "core/buf.h"

void
ehlo_reply(smtpd_session *s)
{
    const smtpd_options *o = s->env->opts;
    char text[512];
    buf b;
    buf_init(&b, sizeof text - 1);
    /* RFC 5321 4.1.1.1: the first line names us; one extension keyword per line */
    buf_printf(&b, "%s\n", o->hostname);
    if (o->pipelining)
        buf_append_str(&b, "PIPELINING\n");            /* RFC 2920 */
    buf_printf(&b, "SIZE %zu\n", o->max_message_size); /* RFC 1870: the real limit */
    if (s->env->tls_available && !s->tls)
        buf_append_str(&b, "STARTTLS\n"); /* RFC 3207 4.2: not again once TLS is on */
    if (sasl_is_offered(s)) {
        char mechs[64];
        sasl_mech_list(s, mechs, sizeof mechs);
        if (mechs[0])
            buf_printf(&b, "AUTH %s\n", mechs); /* RFC 4954 3 */
    }
    if (o->enhanced_status_codes)
        buf_append_str(&b, "ENHANCEDSTATUSCODES\n"); /* RFC 2034 */
    buf_append_str(&b, "8BITMIME");                  /* RFC 6152 */
    if (o->smtputf8)
        buf_append_str(&b, "\nSMTPUTF8"); /* RFC 6531 */
    /* RFC 2034 3: no enhanced code on the EHLO reply */
    session_reply(s, 250, NULL, "%s", buf_str(&b));
    buf_cleanup(&b);
}
