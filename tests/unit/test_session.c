/* test_session.c - the SMTP session engine driven directly (src/smtp/session.c,
   commands.c, ehlo.c): bytes in, reply bytes and hook calls out. No sockets, no clock.
   Commands, replies, framing, DATA, trace headers, resets, transcript. Hooks, PENDING,
   pipelining and limits are in test_session_hooks.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "session_fixture.h"

/* ---------------------------------------------------------------------------------- */
/* Greeting, EHLO, HELO, QUIT                                                          */
/* ---------------------------------------------------------------------------------- */

static void
test_greeting_and_quit(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_start(f);
    assert_string_equal(take(f), GREETING);
    assert_string_equal(buf_str(&f->events), "connect 192.0.2.9:4321\n");
    assert_false(session_is_closing(f->s));
    assert_int_equal(session_timeout_ms(f->s), 300000);
    send_expect(f, "QUIT\r\n", BYE);
    assert_true(session_is_closing(f->s));
    assert_int_equal(feed(f, "NOOP\r\n"), 0); /* nothing is read after 221 */
    assert_string_equal(take(f), "");
    session_eof(f->s);
    assert_int_equal(smtpd_session_findings(f->s) & SMTPD_FINDING_NO_QUIT, 0);
    fx_free(f);
}

static void
test_banner_option(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.banner = "Mail sink ready";
    fx_start(f);
    assert_string_equal(take(f), "220 test.example Mail sink ready\r\n");
    fx_free(f);
}

static void
test_ehlo_and_helo_replies(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO client.example\r\n", EHLO_REPLY);
    assert_string_equal(smtpd_session_helo(f->s), "client.example");
    assert_true(smtpd_session_is_esmtp(f->s));
    send_expect(f, "HELO other.example\r\n", "250 test.example\r\n");
    assert_string_equal(smtpd_session_helo(f->s), "other.example");
    assert_false(smtpd_session_is_esmtp(f->s));
    send_expect(f, "EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n");
    send_expect(f, "HELO\r\n", "501 5.5.4 Syntax: HELO hostname\r\n");
    send_expect(f, "helo   \r\n", "501 5.5.4 Syntax: HELO hostname\r\n");
    send_expect(f, "ehlo [192.0.2.1]\r\n", EHLO_REPLY);
    assert_string_equal(buf_str(&f->events), "connect 192.0.2.9:4321\nhelo client.example\n"
                                             "helo other.example\nhelo [192.0.2.1]\n");
    fx_free(f);

    /* options drop PIPELINING, ENHANCEDSTATUSCODES and SMTPUTF8; SIZE is the real limit */
    f = fx_new();
    f->opts.pipelining = 0;
    f->opts.enhanced_status_codes = 0;
    f->opts.smtputf8 = 0;
    f->opts.max_message_size = 5000;
    fx_start(f);
    assert_string_equal(take(f), GREETING);
    send_expect(f, "EHLO c.example\r\n", "250-test.example\r\n250-SIZE 5000\r\n250 8BITMIME\r\n");
    /* and with enhanced codes off no reply carries one */
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", "250 Ok\r\n");
    send_expect(f, "NOOP\r\n", "250 Ok\r\n");
    send_expect(f, "BOGUS\r\n", "500 Error: command not recognized\r\n");
    fx_free(f);
}

/* ---------------------------------------------------------------------------------- */
/* The state machine                                                                   */
/* ---------------------------------------------------------------------------------- */

static void
test_state_machine_503s(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n");
    send_expect(f, "RCPT TO:<a@b.example>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "RCPT TO:<a@b.example>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", OK_MAIL);
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", "503 5.5.1 Error: nested MAIL command\r\n");
    send_expect(f, "DATA\r\n", "503 5.5.1 Error: need RCPT command\r\n");
    send_expect(f, "RCPT TO:<c@d.example>\r\n", OK_RCPT);
    send_expect(f, "DATA now\r\n", "501 5.5.4 Syntax: DATA\r\n");
    send_expect(f, "RSET now\r\n", "501 5.5.4 Syntax: RSET\r\n");
    send_expect(f, "QUIT now\r\n", "501 5.5.4 Syntax: QUIT\r\n");
    /* the transaction survived the syntax errors */
    assert_string_equal(smtpd_session_sender(f->s), "a@b.example");
    assert_int_equal(smtpd_session_rcpt_count(f->s), 1);
    assert_string_equal(smtpd_session_rcpt(f->s, 0), "c@d.example");
    assert_null(smtpd_session_rcpt(f->s, 1));
    send_expect(f, "DATA\r\n", GO_AHEAD);
    assert_true(session_in_data(f->s));
    assert_int_equal(session_timeout_ms(f->s), 180000);
    send_expect(f, HEADERS "\r\nbody\r\n.\r\n",
                "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_false(session_in_data(f->s));
    fx_free(f);
}

static void
test_other_commands(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "NOOP\r\n", "250 2.0.0 Ok\r\n");
    send_expect(f, "NOOP anything at all\r\n", "250 2.0.0 Ok\r\n");
    send_expect(f, "RSET\r\n", "250 2.0.0 Ok\r\n");
    send_expect(f, "RSET \r\n", "250 2.0.0 Ok\r\n"); /* trailing space tolerated */
    send_expect(f, "VRFY someone\r\n",
                "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
    send_expect(f, "VRFY\r\n", "501 5.5.4 Syntax: VRFY address\r\n");
    send_expect(f, "EXPN list\r\n", "502 5.5.1 EXPN command is not supported\r\n");
    /* RFC 2034: the enhanced code is on every line of a multi-line reply */
    send_expect(f, "HELP\r\n",
                "214-2.0.0 Commands supported:\r\n"
                "214 2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
    send_expect(f, "BOGUS\r\n", "500 5.5.1 Error: command not recognized\r\n");
    send_expect(f, "MAILX FROM:<a@b.example>\r\n", "500 5.5.1 Error: command not recognized\r\n");
    send_expect(f, "\r\n", "500 5.5.1 Error: command not recognized\r\n");
    send_expect(f, "noop\r\n", "250 2.0.0 Ok\r\n");
    send_expect(f, "NoOp\r\n", "250 2.0.0 Ok\r\n");
    fx_free(f);

    f = fx_new();
    f->opts.vrfy = 0;
    fx_start(f);
    take(f);
    send_expect(f, "VRFY someone\r\n", "502 5.5.1 VRFY command is disabled\r\n");
    fx_free(f);
}

static void
test_mail_rcpt_syntax_replies(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    send_expect(f, "MAIL TO:<a@b.example>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    send_expect(f, "MAIL FROM:<a@@b>\r\n", "501 5.1.7 Bad sender address syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> FOO=1\r\n", "555 5.5.4 Unsupported option: FOO\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n",
                "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SIZE=abc\r\n", "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SIZE\r\n", "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SIZE=99999999999999999999\r\n",
                "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n",
                "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> BODY\r\n", "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SMTPUTF8=yes\r\n",
                "501 5.5.4 Bad parameter syntax\r\n");
    send_expect(f, "MAIL FROM:<j\xc3\xb6rg@b.example>\r\n",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    assert_string_equal(buf_str(&f->events), "connect 192.0.2.9:4321\nhelo c.example\n");
    send_expect(f, "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8 BODY=8bitmime\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<\xc3\xa9@d.example>\r\n", OK_RCPT);
    send_expect(f, "RCPT\r\n", "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    send_expect(f, "RCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
    send_expect(f, "RCPT TO:<b@d.example> NOTIFY=NEVER\r\n",
                "555 5.5.4 Unsupported option: NOTIFY\r\n");
    send_expect(f, "RSET\r\n", "250 2.0.0 Ok\r\n");
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<\xc3\xa9@d.example>\r\n",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    send_expect(f, "MAIL FROM:<a@b.example>\r\n", "503 5.5.1 Error: nested MAIL command\r\n");
    fx_free(f);

    /* with smtputf8 off the parameter is unknown */
    f = fx_new();
    f->opts.smtputf8 = 0;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n",
                "250-test.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                "250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
    send_expect(f, "MAIL FROM:<a@b.example> SMTPUTF8\r\n",
                "555 5.5.4 Unsupported option: SMTPUTF8\r\n");
    fx_free(f);
}

static void
test_command_line_framing(void **state)
{
    (void)state;
    fx *f = fx_ready();
    /* CRLF split over two feeds */
    assert_int_equal(feed(f, "NOOP\r"), 5);
    assert_string_equal(take(f), "");
    send_expect(f, "\n", "250 2.0.0 Ok\r\n");
    /* a bare LF does not end a command line; the line is refused at its CRLF */
    send_expect(f, "NOOP\nNOOP\r\n", "500 5.5.2 Error: bad character in command\r\n");
    send_expect(f, "NO\rOP\r\n", "500 5.5.2 Error: bad character in command\r\n");
    send_expect(f, "NOOP\r\r\n", "500 5.5.2 Error: bad character in command\r\n");
    const char nul[] = "NO\0OP\r\n";
    assert_int_equal(session_feed(f->s, nul, sizeof nul - 1, NOW), sizeof nul - 1);
    assert_string_equal(take(f), "500 5.5.2 Error: bad character in command\r\n");
    send_expect(f, "NOOP \xc3\r\n", "500 5.5.2 Error: bad UTF-8 syntax\r\n");
    send_expect(f, "NOOP \xc0\xaf\r\n", "500 5.5.2 Error: bad UTF-8 syntax\r\n");
    send_expect(f, "NOOP caf\xc3\xa9\r\n", "250 2.0.0 Ok\r\n");

    /* RFC 5321 4.5.3.1.4: 512 octets with CRLF */
    char line[2000];
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', 505);
    memcpy(line + 510, "\r\n", 3); /* 512 with CRLF */
    send_expect(f, line, "250 2.0.0 Ok\r\n");
    memset(line + 5, 'x', 506);
    memcpy(line + 511, "\r\n", 3); /* 513 */
    send_expect(f, line, "500 5.5.2 Error: line too long\r\n");
    memset(line + 5, 'x', 1500);
    memcpy(line + 1505, "\r\n", 3); /* far over: discarded to the CRLF */
    send_expect(f, line, "500 5.5.2 Error: line too long\r\n");
    send_expect(f, "NOOP\r\n", "250 2.0.0 Ok\r\n");
    /* the overlong line arriving in pieces is discarded the same way */
    memset(line, 'y', 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(session_feed(f->s, line, 1000, NOW), 1000);
    assert_string_equal(take(f), "");
    send_expect(f, "\r\n", "500 5.5.2 Error: line too long\r\n");

    /* MAIL and RCPT get room for their parameters beyond 512 */
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    int n = snprintf(line, sizeof line, "MAIL FROM:<a@b.example> X=");
    memset(line + n, 'v', 540 - (size_t)n);
    memcpy(line + 540, "\r\n", 3);
    send_expect(f, line, "555 5.5.4 Unsupported option: X\r\n");
    fx_free(f);
}

/* ---------------------------------------------------------------------------------- */
/* A whole transaction, trace headers, envelope resets                                 */
/* ---------------------------------------------------------------------------------- */

static void
test_delivery_and_trace_headers(void **state)
{
    (void)state;
    char date[64];
    trace_format_date(NOW, date, sizeof date);
    assert_string_equal(date, NOW_DATE);

    fx *f = fx_ready();
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n",
                "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    static const char trace[] = "Return-Path: <a@example.com>\r\n"
                                "Received: from client.example ([192.0.2.9])\r\n"
                                "\tby test.example (libsmtpd) with ESMTP id " ID0 "\r\n"
                                "\tfor <b@example.com>; " NOW_DATE "\r\n";
    static const char content[] = HEADERS "Subject: hi\r\n\r\n.dot\r\nbody\r\n";
    assert_int_equal(f->delivered, 1);
    assert_int_equal(f->trace_size, sizeof trace - 1);
    assert_int_equal(f->msg.len, sizeof trace - 1 + sizeof content - 1);
    assert_memory_equal(f->msg.data, trace, sizeof trace - 1);
    assert_string_equal(f->msg.data + f->trace_size, content);
    assert_string_equal(f->id, ID0);
    assert_string_equal(f->sender, "a@example.com");
    assert_string_equal(f->rcpts, "<b@example.com>");
    assert_int_equal(f->findings, 0);
    assert_int_equal(f->body8, 0);
    assert_int_equal(f->utf8, 0);
    assert_string_equal(buf_str(&f->events),
                        "connect 192.0.2.9:4321\nhelo client.example\nmail <a@example.com>\n"
                        "rcpt <b@example.com>\ndata 1\ndeliver " ID0 "\nreset\n");

    /* the second message: next id, several recipients (no "for"), null sender */
    send_expect(f, "MAIL FROM:<>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<x@example.com>\r\n", OK_RCPT);
    send_expect(f, "RCPT TO:<y@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, ".\r\n", "250 2.0.0 " ID1 " Message accepted for delivery\r\n");
    static const char trace2[] =
        "Return-Path: <>\r\n"
        "Received: from client.example ([192.0.2.9])\r\n"
        "\tby test.example (libsmtpd) with ESMTP id " ID1 "; " NOW_DATE "\r\n";
    assert_int_equal(f->delivered, 2);
    assert_int_equal(f->msg.len, sizeof trace2 - 1);
    assert_int_equal(f->trace_size, sizeof trace2 - 1);
    assert_memory_equal(f->msg.data, trace2, sizeof trace2 - 1);
    assert_string_equal(f->sender, "");
    assert_string_equal(f->rcpts, "<x@example.com>,<y@example.com>");
    /* an empty message has no Date: and no Message-ID: */
    assert_int_equal(f->findings, SMTPD_FINDING_NO_DATE | SMTPD_FINDING_NO_MESSAGE_ID);
    fx_free(f);
}

static void
test_trace_protocols(void **state)
{
    (void)state;
    /* HELO: "with SMTP" and a helo-not-ehlo finding */
    fx *f = fx_ready();
    send_expect(f, "HELO client.example\r\n", "250 test.example\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\nx\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_non_null(strstr(f->msg.data, "(libsmtpd) with SMTP id " ID0 "\r\n"));
    assert_int_equal(f->findings, SMTPD_FINDING_HELO_NOT_EHLO);
    fx_free(f);

    /* SMTPUTF8: "with UTF8SMTP"; BODY=8BITMIME: no 8-bit finding */
    f = fx_ready();
    send_expect(f, "EHLO client.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<\xc3\xa9@example.com> SMTPUTF8 BODY=8BITMIME\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n",
                "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_non_null(strstr(f->msg.data, "Return-Path: <\xc3\xa9@example.com>\r\n"));
    assert_non_null(strstr(f->msg.data, "(libsmtpd) with UTF8SMTP id " ID0 "\r\n"));
    assert_int_equal(f->body8, 1);
    assert_int_equal(f->utf8, 1);
    assert_int_equal(f->findings, 0);
    fx_free(f);

    /* a HELO name full of syntax is made harmless in the Received header */
    f = fx_ready();
    send_expect(f, "EHLO evil(name);[x]\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<\"a>b\"@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_non_null(strstr(f->msg.data, "Received: from evil?name???x? ([192.0.2.9])\r\n"));
    /* a '>' can only be inside a quoted local part, which stays intact */
    assert_non_null(strstr(f->msg.data, "Return-Path: <\"a>b\"@example.com>\r\n"));
    assert_int_equal(f->findings, SMTPD_FINDING_HELO_NOT_DOMAIN);
    fx_free(f);
}

static void
test_envelope_reset(void **state)
{
    (void)state;
    fx *f = fx_ready();
    /* after the final dot */
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_null(smtpd_session_sender(f->s));
    assert_int_equal(smtpd_session_rcpt_count(f->s), 0);
    assert_int_equal(f->resets, 1);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n");

    /* after RSET */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "RSET\r\n", "250 2.0.0 Ok\r\n");
    assert_int_equal(f->resets, 2);
    assert_null(smtpd_session_sender(f->s));
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "RSET\r\n", "250 2.0.0 Ok\r\n");
    assert_int_equal(f->resets, 2); /* nothing to reset: no on_reset */

    /* after EHLO (RFC 5321 4.1.4) */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "EHLO again.example\r\n", EHLO_REPLY);
    assert_int_equal(f->resets, 3);
    send_expect(f, "DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "MAIL FROM:<c@example.com>\r\n", OK_MAIL); /* not nested */

    /* after HELO too */
    send_expect(f, "HELO again.example\r\n", "250 test.example\r\n");
    assert_int_equal(f->resets, 4);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");

    /* a refused EHLO leaves the transaction as it was */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    f->helo.v = SMTPD_REJECT;
    send_expect(f, "EHLO third.example\r\n",
                "550 5.7.1 Requested action not taken: rejected by policy\r\n");
    assert_int_equal(f->resets, 4);
    assert_string_equal(smtpd_session_sender(f->s), "a@example.com");
    assert_string_equal(smtpd_session_helo(f->s), "again.example");
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);

    /* a failed message resets the envelope too */
    send_expect(f, "DATA\r\n", GO_AHEAD);
    f->deliver.v = SMTPD_REJECT;
    send_expect(f, HEADERS "\r\n.\r\n",
                "554 5.7.1 Requested action not taken: rejected by policy\r\n");
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    assert_int_equal(f->resets, 5);

    /* freeing the session with an open transaction resets it, then closes */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    buf_clear(&f->events);
    session_free(f->s);
    f->s = NULL;
    assert_string_equal(buf_str(&f->events), "reset\nclose\n");
    assert_int_equal(f->closes, 1);
    session_free(NULL);
    fx_free(f);
}

/* The findings of one message do not leak into the next. */
static void
test_findings_per_message(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.bare_lf = SMTPD_BARE_LF_ACCEPT;
    f->opts.max_text_line = 80;
    fx_start(f);
    take(f);
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    char text[400];
    int n = snprintf(text, sizeof text, HEADERS "\r\nbare\nlf \xff ");
    memset(text + n, 'L', 100);
    memcpy(text + n + 100, "\r\n.\r\n", 6);
    send_expect(f, text, "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_int_equal(f->findings, SMTPD_FINDING_BARE_LF | SMTPD_FINDING_8BIT_UNDECLARED |
                                      SMTPD_FINDING_LONG_LINE);
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, "Subject: clean\r\n\r\nok\r\n.\r\n",
                "250 2.0.0 " ID1 " Message accepted for delivery\r\n");
    assert_int_equal(f->findings, SMTPD_FINDING_NO_DATE | SMTPD_FINDING_NO_MESSAGE_ID);
    fx_free(f);
}

/* ---------------------------------------------------------------------------------- */
/* DATA: bare CR/LF modes, size, long lines, chunk hook                                */
/* ---------------------------------------------------------------------------------- */

static void
run_bare(smtpd_bare_lf mode, const char *want_reply, const char *want_content,
         unsigned want_findings)
{
    fx *f = fx_new();
    f->opts.bare_lf = mode;
    fx_start(f);
    take(f);
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\none\ntwo\rthree\n.\nfour\r\n.\r\n", want_reply);
    if (want_content) {
        assert_int_equal(f->delivered, 1);
        assert_string_equal(f->msg.data + f->trace_size, want_content);
        assert_int_equal(f->findings, want_findings);
    } else {
        assert_int_equal(f->delivered, 0);
    }
    /* the session goes on: the smuggled ".\n" did not end the data early */
    send_expect(f, "NOOP\r\n", "250 2.0.0 Ok\r\n");
    fx_free(f);
}

static void
test_bare_lf_modes(void **state)
{
    (void)state;
    run_bare(SMTPD_BARE_LF_REJECT, "550 5.5.2 Message refused: bare <CR> or <LF> in data\r\n", NULL,
             0);
    run_bare(SMTPD_BARE_LF_NORMALIZE, "250 2.0.0 " ID0 " Message accepted for delivery\r\n",
             HEADERS "\r\none\r\ntwo\r\nthree\r\n.\r\nfour\r\n",
             SMTPD_FINDING_BARE_LF | SMTPD_FINDING_BARE_CR);
    run_bare(SMTPD_BARE_LF_ACCEPT, "250 2.0.0 " ID0 " Message accepted for delivery\r\n",
             HEADERS "\r\none\ntwo\rthree\n.\nfour\r\n",
             SMTPD_FINDING_BARE_LF | SMTPD_FINDING_BARE_CR);
}

static void
test_message_size(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.max_message_size = 1024;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n",
                "250-test.example\r\n250-PIPELINING\r\n250-SIZE 1024\r\n"
                "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                "250 SMTPUTF8\r\n");
    send_expect(f, "MAIL FROM:<a@example.com> SIZE=1025\r\n",
                "552 5.3.4 Message size exceeds fixed limit\r\n");
    send_expect(f, "MAIL FROM:<a@example.com> SIZE=1024\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    /* exactly 1024 octets of content are fine */
    char text[4000];
    memset(text, 'x', 1022);
    memcpy(text + 1022, "\r\n.\r\n", 6);
    send_expect(f, text, "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_int_equal(f->msg.len - f->trace_size, 1024);
    /* 1025 are not: the rest is read, the reply comes after the dot */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    memset(text, 'x', 1023);
    memcpy(text + 1023, "\r\n.\r\n", 6);
    send_expect(f, text, "552 5.3.4 Message size exceeds fixed limit\r\n");
    assert_int_equal(f->delivered, 1);
    /* far over, in pieces: nothing until the dot */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    memset(text, 'y', sizeof text);
    for (int i = 0; i < 10; i++) {
        text[998] = '\r';
        text[999] = '\n';
        assert_int_equal(session_feed(f->s, text, 1000, NOW), 1000);
        assert_string_equal(take(f), "");
    }
    send_expect(f, ".\r\n", "552 5.3.4 Message size exceeds fixed limit\r\n");
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    assert_int_equal(f->delivered, 1);
    fx_free(f);
}

static void
test_long_and_huge_lines(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.max_text_line = 100;
    fx_start(f);
    take(f);
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    static char text[2000];
    int n = snprintf(text, sizeof text, HEADERS "\r\n");
    memset(text + n, 'z', 99);
    memcpy(text + n + 99, "\r\n.\r\n", 6);
    send_expect(f, text, "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_int_equal(f->findings, SMTPD_FINDING_LONG_LINE);
    /* 8 x 100 octets with CRLF is still a finding only, 801 fails the message */
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    memset(text + n, 'z', 798);
    memcpy(text + n + 798, "\r\n.\r\n", 6);
    send_expect(f, text, "250 2.0.0 " ID1 " Message accepted for delivery\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    memset(text + n, 'z', 799);
    memcpy(text + n + 799, "\r\nshort\r\n.\r\n", 13);
    send_expect(f, text, "552 5.3.4 Message refused: line too long\r\n");
    assert_int_equal(f->delivered, 2);
    fx_free(f);
}

static void
test_data_chunk_hook(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->hooks.on_data_chunk = on_chunk_cb;
    fx_start(f);
    take(f);
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\n", GO_AHEAD);
    static const char wire[] = HEADERS "\r\n..stuffed\r\nline\r\n.\r\n";
    /* in three pieces */
    assert_int_equal(session_feed(f->s, wire, 10, NOW), 10);
    assert_int_equal(session_feed(f->s, wire + 10, 50, NOW), 50);
    send_expect(f, wire + 60, "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_string_equal(buf_str(&f->chunks), HEADERS "\r\n.stuffed\r\nline\r\n");
    assert_string_equal(f->msg.data + f->trace_size, buf_str(&f->chunks));

    /* a chunk REJECT fails the message at the dot, with the hook's reply */
    buf_clear(&f->chunks);
    f->chunk.v = SMTPD_REJECT;
    f->chunk.code = 550;
    f->chunk.enh = "5.7.0";
    f->chunk.text = "content refused";
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    assert_int_equal(feed(f, "one\r\n"), 5);
    assert_string_equal(take(f), "");
    assert_int_equal(feed(f, "two\r\n"), 5);
    send_expect(f, ".\r\n", "550 5.7.0 content refused\r\n");
    assert_string_equal(buf_str(&f->chunks), "one\r\n"); /* not asked again after failing */
    assert_int_equal(f->delivered, 1);

    /* TEMPFAIL without a reply: 451; PENDING is not allowed: treated as TEMPFAIL */
    f->chunk = (hook_rule){SMTPD_TEMPFAIL, 0, NULL, NULL};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, "x\r\n.\r\n",
                "451 4.3.0 Requested action aborted: local error in processing\r\n");
    f->chunk.v = SMTPD_PENDING;
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, "x\r\n.\r\n",
                "451 4.3.0 Requested action aborted: local error in processing\r\n");
    assert_false(session_is_blocked(f->s));
    send_expect(f, "NOOP\r\n", "250 2.0.0 Ok\r\n");
    assert_int_equal(f->delivered, 1);
    fx_free(f);
}

static void
on_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    (void)s;
    fx *f = user;
    /* a transcript line never carries its CRLF */
    assert_null(memchr(line, '\n', len));
    ev(f, "%c %.*s\n",
       dir == SMTPD_LOG_IN    ? '<'
       : dir == SMTPD_LOG_OUT ? '>'
                              : '*',
       (int)len, line);
}

static void
test_log_transcript(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->hooks = (smtpd_hooks){0};
    f->hooks.on_log = on_log_cb;
    fx_start(f);
    assert_string_equal(take(f), GREETING);
    send_expect(f, "EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n", EHLO_REPLY OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\nDATA\r\n", OK_RCPT GO_AHEAD);
    send_expect(f, "secret content\r\n.\r\nBOGUS\r\n",
                "250 2.0.0 " ID0 " Message accepted for delivery\r\n"
                "500 5.5.1 Error: command not recognized\r\n");
    assert_string_equal(buf_str(&f->events),
                        "* state connecting -> command\n"
                        "> 220 test.example ESMTP\n"
                        "< EHLO c.example\n"
                        "> 250-test.example\n> 250-PIPELINING\n> 250-SIZE 10240000\n"
                        "> 250-ENHANCEDSTATUSCODES\n> 250-8BITMIME\n> 250 SMTPUTF8\n"
                        "< MAIL FROM:<a@example.com>\n> 250 2.1.0 Ok\n"
                        "< RCPT TO:<b@example.com>\n> 250 2.1.5 Ok\n"
                        "< DATA\n> 354 End data with <CR><LF>.<CR><LF>\n"
                        "* state command -> data\n"
                        "* state data -> command\n"
                        "> 250 2.0.0 " ID0 " Message accepted for delivery\n"
                        "< BOGUS\n> 500 5.5.1 Error: command not recognized\n");
    fx_free(f);
}

static void
test_trace_literals_and_ipv6(void **state)
{
    (void)state;
    fx *f = fx_new();
    smtpd_options wanted = f->opts;
    assert_int_equal(options_copy(&f->opts, &wanted), SMTPD_OK);
    f->env.opts = &f->opts;
    f->env.hooks = &f->hooks;
    f->env.user = f;
    snprintf(f->env.id_prefix, sizeof f->env.id_prefix, "TST");
    atomic_init(&f->env.next_msg_id, 1);
    f->s = session_new(&f->env, 1, "2001:db8::25", 2525);
    session_start(f->s, NOW);
    assert_string_equal(take(f), GREETING);
    send_expect(f, "EHLO [IPv6:2001:db8::25]\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@[192.0.2.1]>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    static const char trace[] = "Return-Path: <a@[192.0.2.1]>\r\n"
                                "Received: from [IPv6:2001:db8::25] ([IPv6:2001:db8::25])\r\n"
                                "\tby test.example (libsmtpd) with ESMTP id " ID0 "\r\n"
                                "\tfor <b@example.com>; " NOW_DATE "\r\n";
    assert_int_equal(f->trace_size, sizeof trace - 1);
    assert_memory_equal(f->msg.data, trace, sizeof trace - 1);
    assert_int_equal(f->findings, 0);
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_and_quit),
        cmocka_unit_test(test_banner_option),
        cmocka_unit_test(test_ehlo_and_helo_replies),
        cmocka_unit_test(test_state_machine_503s),
        cmocka_unit_test(test_other_commands),
        cmocka_unit_test(test_mail_rcpt_syntax_replies),
        cmocka_unit_test(test_command_line_framing),
        cmocka_unit_test(test_delivery_and_trace_headers),
        cmocka_unit_test(test_trace_protocols),
        cmocka_unit_test(test_envelope_reset),
        cmocka_unit_test(test_findings_per_message),
        cmocka_unit_test(test_bare_lf_modes),
        cmocka_unit_test(test_message_size),
        cmocka_unit_test(test_long_and_huge_lines),
        cmocka_unit_test(test_data_chunk_hook),
        cmocka_unit_test(test_log_transcript),
        cmocka_unit_test(test_trace_literals_and_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
