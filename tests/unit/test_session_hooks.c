/* test_session_hooks.c - the SMTP session engine driven directly: pipelining (the same
   bytes out for any split of the input), hook verdicts and replies, PENDING answers
   completed with session_complete, limits (recipients, errors, junk), timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "session_fixture.h"

/* ---------------------------------------------------------------------------------- */
/* Pipelining: one call or byte by byte, the same bytes out                            */
/* ---------------------------------------------------------------------------------- */

static const char pipelined_session[] =
    "EHLO client.example\r\n"
    "MAIL FROM:<a@example.com> BODY=8BITMIME\r\n"
    "RCPT TO:<b@example.com>\r\n"
    "RCPT TO:<bad@example.com>\r\n"
    "RCPT TO:<c@example.com>\r\n"
    "DATA\r\n" HEADERS "Subject: pipelined\r\n\r\n..one\r\ntwo\r\n.\r\n"
    "MAIL FROM:<d@example.com>\r\n"
    "RSET\r\n"
    "NOOP\r\n"
    "BOGUS\r\n"
    "QUIT\r\n"
    "NOOP\r\n";

static const char pipelined_replies[] = GREETING EHLO_REPLY OK_MAIL OK_RCPT
    "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n" OK_RCPT GO_AHEAD
    "250 2.0.0 " ID0 " Message accepted for delivery\r\n" OK_MAIL "250 2.0.0 Ok\r\n"
    "250 2.0.0 Ok\r\n500 5.5.1 Error: command not recognized\r\n" BYE;

/* Feed the session in pieces of the given sizes (cycled); returns the output. */
static void
run_pipelined(const size_t *sizes, size_t nsizes, buf *replies, buf *message, size_t *consumed)
{
    fx *f = fx_new();
    f->rcpt_reject_prefix = "bad";
    fx_start(f);
    buf_append_str(replies, take(f));
    size_t len = sizeof pipelined_session - 1, pos = 0, k = 0;
    *consumed = 0;
    while (pos < len) {
        size_t piece = sizes[k++ % nsizes];
        if (piece > len - pos)
            piece = len - pos;
        size_t used = session_feed(f->s, pipelined_session + pos, piece, NOW);
        *consumed += used;
        buf_append_str(replies, take(f));
        if (session_is_closing(f->s))
            break;
        /* the caller keeps what was not consumed and feeds it again with more */
        assert_int_equal(used, piece);
        pos += piece;
    }
    buf_append(message, f->msg.data ? f->msg.data : "", f->msg.len);
    fx_free(f);
}

static void
test_pipelining_same_output_any_split(void **state)
{
    (void)state;
    size_t whole_size = sizeof pipelined_session;
    const size_t one[] = {1};
    const size_t odd[] = {3, 7, 1, 13};
    const size_t mid[] = {64};
    struct {
        const size_t *sizes;
        size_t n;
    } runs[] = {{&whole_size, 1}, {one, 1}, {odd, 4}, {mid, 1}};
    buf ref_replies, ref_msg;
    buf_init(&ref_replies, 1 << 20);
    buf_init(&ref_msg, 1 << 20);
    size_t ref_consumed;
    run_pipelined(runs[0].sizes, runs[0].n, &ref_replies, &ref_msg, &ref_consumed);
    assert_string_equal(buf_str(&ref_replies), pipelined_replies);
    /* consumption stops right after QUIT: the trailing NOOP is not read */
    assert_int_equal(ref_consumed, sizeof pipelined_session - 1 - strlen("NOOP\r\n"));
    assert_non_null(strstr(buf_str(&ref_msg), "\r\n\r\n.one\r\ntwo\r\n"));
    for (size_t r = 1; r < sizeof runs / sizeof runs[0]; r++) {
        buf replies, msg;
        buf_init(&replies, 1 << 20);
        buf_init(&msg, 1 << 20);
        size_t consumed;
        run_pipelined(runs[r].sizes, runs[r].n, &replies, &msg, &consumed);
        if (strcmp(buf_str(&replies), buf_str(&ref_replies)) != 0)
            fail_msg("run %zu: replies differ:\n%s", r, buf_str(&replies));
        assert_int_equal(msg.len, ref_msg.len);
        assert_memory_equal(msg.data, ref_msg.data, msg.len);
        assert_int_equal(consumed, ref_consumed);
        buf_cleanup(&replies);
        buf_cleanup(&msg);
    }
    /* every two-piece split point gives the same bytes */
    for (size_t cut = 1; cut < sizeof pipelined_session - 1; cut++) {
        size_t sizes[2] = {cut, sizeof pipelined_session};
        buf replies, msg;
        buf_init(&replies, 1 << 20);
        buf_init(&msg, 1 << 20);
        size_t consumed;
        run_pipelined(sizes, 2, &replies, &msg, &consumed);
        if (strcmp(buf_str(&replies), buf_str(&ref_replies)) != 0 || msg.len != ref_msg.len ||
            memcmp(buf_str(&msg), buf_str(&ref_msg), msg.len) != 0)
            fail_msg("cut at %zu: output differs", cut);
        buf_cleanup(&replies);
        buf_cleanup(&msg);
    }
    buf_cleanup(&ref_replies);
    buf_cleanup(&ref_msg);
}

static void
test_pipelining_findings(void **state)
{
    (void)state;
    /* MAIL, RCPT, RCPT, DATA in one write is proper pipelining */
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                OK_MAIL OK_RCPT GO_AHEAD);
    assert_int_equal(smtpd_session_findings(f->s), 0);
    fx_free(f);

    /* anything after EHLO in the same write is not */
    f = fx_ready();
    send_expect(f, "EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n", EHLO_REPLY OK_MAIL);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_BAD_PIPELINING);
    fx_free(f);

    /* nor after DATA (the content must wait for the 354) */
    f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n",
                OK_MAIL OK_RCPT GO_AHEAD);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_BAD_PIPELINING);
    fx_free(f);

    /* nor after NOOP */
    f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "NOOP\r\nNOOP\r\n", "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_BAD_PIPELINING);
    fx_free(f);

    /* HELO clients may not pipeline at all */
    f = fx_ready();
    send_expect(f, "HELO c.example\r\n", "250 test.example\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n", OK_MAIL OK_RCPT);
    assert_int_equal(smtpd_session_findings(f->s),
                     SMTPD_FINDING_BAD_PIPELINING | SMTPD_FINDING_HELO_NOT_EHLO);
    fx_free(f);

    /* nor may anyone when PIPELINING is not offered */
    f = fx_new();
    f->opts.pipelining = 0;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n",
                "250-test.example\r\n250-SIZE 10240000\r\n250-ENHANCEDSTATUSCODES\r\n"
                "250-8BITMIME\r\n250 SMTPUTF8\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n", OK_MAIL OK_RCPT);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_BAD_PIPELINING);
    fx_free(f);
}

/* ---------------------------------------------------------------------------------- */
/* Hooks: verdicts, replies, PENDING                                                   */
/* ---------------------------------------------------------------------------------- */

static void
test_hook_verdict_replies(void **state)
{
    (void)state;
    fx *f = fx_ready();
    f->helo.v = SMTPD_REJECT;
    send_expect(f, "EHLO c.example\r\n",
                "550 5.7.1 Requested action not taken: rejected by policy\r\n");
    assert_null(smtpd_session_helo(f->s));
    f->helo.v = SMTPD_TEMPFAIL;
    send_expect(f, "EHLO c.example\r\n",
                "451 4.3.0 Requested action aborted: local error in processing\r\n");
    f->helo.v = SMTPD_ACCEPT;
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);

    f->mail.v = SMTPD_REJECT;
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_null(smtpd_session_sender(f->s));
    f->mail.v = SMTPD_TEMPFAIL;
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "451 4.3.0 Requested action aborted: local error in processing\r\n");
    f->mail.v = SMTPD_REJECT;
    f->mail.code = 550;
    f->mail.enh = "5.7.1";
    f->mail.text = "Sender blocked\nContact postmaster";
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "550-5.7.1 Sender blocked\r\n550 5.7.1 Contact postmaster\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_OK);
    /* a reply without an enhanced code gets a fitting one */
    f->mail.enh = NULL;
    f->mail.text = "nope";
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", "550 5.0.0 nope\r\n");
    f->mail.code = 451;
    f->mail.v = SMTPD_TEMPFAIL;
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", "451 4.0.0 nope\r\n");
    /* text only: the default code of the verdict */
    f->mail.code = 0;
    f->mail = (hook_rule){SMTPD_ACCEPT, 0, NULL, NULL};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);

    f->rcpt.v = SMTPD_REJECT;
    send_expect(f, "RCPT TO:<b@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    f->rcpt = (hook_rule){SMTPD_REJECT, 550, "5.1.1", "No such user"};
    send_expect(f, "RCPT TO:<b@example.com>\r\n", "550 5.1.1 No such user\r\n");
    f->rcpt = (hook_rule){SMTPD_ACCEPT, 0, NULL, NULL};
    send_expect(f, "RCPT TO:<b@example.com>\r\n", OK_RCPT);

    f->data.v = SMTPD_REJECT;
    send_expect(f, "DATA\r\n", "550 5.7.1 Requested action not taken: rejected by policy\r\n");
    assert_false(session_in_data(f->s));
    f->data.v = SMTPD_TEMPFAIL;
    send_expect(f, "DATA\r\n", "451 4.3.0 Requested action aborted: local error in processing\r\n");
    f->data.v = SMTPD_ACCEPT;
    send_expect(f, "DATA\r\n", GO_AHEAD);
    f->deliver.v = SMTPD_TEMPFAIL;
    send_expect(f, HEADERS "\r\n.\r\n",
                "451 4.3.0 Requested action aborted: local error in processing\r\n");
    assert_int_equal(f->delivered, 1);

    /* hook rejections are policy, not client errors: they never add up to a 421 */
    assert_int_equal(f->s->errors, 0);
    fx_free(f);
}

static void
test_hook_disconnect(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    f->mail.v = SMTPD_DISCONNECT;
    assert_int_equal(feed(f, "MAIL FROM:<a@example.com>\r\nNOOP\r\n"), 27);
    assert_string_equal(take(f), "421 4.7.0 test.example Closing connection\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);

    /* a hook's own 421 closes too */
    f = fx_ready();
    f->helo = (hook_rule){SMTPD_REJECT, 421, "4.7.1", "go away"};
    send_expect(f, "EHLO c.example\r\n", "421 4.7.1 go away\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);
}

static void
test_connect_verdicts(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->connect.v = SMTPD_REJECT;
    fx_start(f);
    assert_string_equal(take(f), "550 Access denied: not allowed\r\n");
    send_expect(f, "EHLO c.example\r\n", "503 5.7.0 Error: access denied, only QUIT allowed\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "503 5.7.0 Error: access denied, only QUIT allowed\r\n");
    send_expect(f, "QUIT\r\n", BYE);
    assert_string_equal(buf_str(&f->events), "connect 192.0.2.9:4321\n");
    fx_free(f);

    /* a text without a code keeps the seed's form */
    f = fx_new();
    f->connect = (hook_rule){SMTPD_REJECT, 0, NULL, "you are listed"};
    fx_start(f);
    assert_string_equal(take(f), "550 Access denied: you are listed\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_OK);
    fx_free(f);

    f = fx_new();
    f->connect.v = SMTPD_TEMPFAIL;
    fx_start(f);
    assert_string_equal(take(f), "421 4.3.2 test.example Service not available\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);

    f = fx_new();
    f->connect.v = SMTPD_DISCONNECT;
    fx_start(f);
    assert_string_equal(take(f), "421 4.7.0 test.example Closing connection\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);

    /* too many sessions: refused without asking on_connect */
    f = fx_new();
    smtpd_options wanted = f->opts;
    assert_int_equal(options_copy(&f->opts, &wanted), SMTPD_OK);
    f->env.opts = &f->opts;
    f->env.hooks = &f->hooks;
    f->env.user = f;
    f->s = session_new(&f->env, 7, "192.0.2.10", 1);
    session_refuse_busy(f->s);
    assert_string_equal(take(f), "421 4.7.0 test.example Error: too many connections\r\n");
    assert_true(session_is_closing(f->s));
    assert_string_equal(buf_str(&f->events), "");
    fx_free(f);
    /* on_close is only called for sessions that were connected */
}

static void
test_connect_reject_with_text(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->connect = (hook_rule){SMTPD_REJECT, 554, NULL, "No SMTP service here"};
    fx_start(f);
    /* the code is the hook's, the form stays the seed's */
    assert_string_equal(take(f), "554 Access denied: No SMTP service here\r\n");
    fx_free(f);
}

static void
test_set_reply_validation(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    /* outside a hook */
    assert_int_equal(smtpd_session_set_reply(f->s, 550, NULL, "x"), SMTPD_ESTATE);
    /* a bad code or an enhanced code of the wrong class is refused; the default stays */
    f->mail = (hook_rule){SMTPD_REJECT, 650, NULL, "bad code"};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_EINVAL);
    f->mail = (hook_rule){SMTPD_REJECT, 550, "4.1.1", "wrong class"};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_EINVAL);
    f->mail = (hook_rule){SMTPD_REJECT, 550, "5.1.1x", "bad enhanced"};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_EINVAL);
    /* CR in a hook's text cannot inject a reply line */
    f->mail = (hook_rule){SMTPD_REJECT, 550, "5.7.1", "a\r\n250 2.0.0 fake"};
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", "550-5.7.1 a?\r\n550 5.7.1 250 2.0.0 fake\r\n");
    assert_int_equal(f->set_reply_rc, SMTPD_OK);
    fx_free(f);
}

static void
test_postmaster_never_asks(void **state)
{
    (void)state;
    fx *f = fx_ready();
    f->rcpt.v = SMTPD_REJECT;
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<Postmaster>\r\n", OK_RCPT);
    send_expect(f, "RCPT TO:<postmaster@TEST.example>\r\n", OK_RCPT);
    send_expect(f, "RCPT TO:<postmaster@other.example>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    send_expect(f, "RCPT TO:<b@example.com>\r\n",
                "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_int_equal(smtpd_session_rcpt_count(f->s), 2);
    assert_string_equal(buf_str(&f->events),
                        "connect 192.0.2.9:4321\nhelo c.example\nmail <a@example.com>\n"
                        "rcpt <postmaster@other.example>\nrcpt <b@example.com>\n");
    fx_free(f);
}

static void
test_pending_rcpt(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    f->rcpt.v = SMTPD_PENDING;
    static const char group[] = "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n";
    size_t first = strlen("RCPT TO:<b@example.com>\r\n");
    assert_int_equal(session_feed(f->s, group, sizeof group - 1, NOW), first);
    assert_true(session_is_blocked(f->s));
    assert_string_equal(take(f), "");
    assert_int_equal(f->tickets, 1);
    assert_int_equal(f->ticket.session_id, 42);
    /* input is not consumed while blocked */
    assert_int_equal(session_feed(f->s, group + first, sizeof group - 1 - first, NOW), 0);
    assert_int_equal(f->tickets, 1);
    /* a wrong ticket is refused and changes nothing */
    assert_int_equal(session_complete(f->s, f->ticket.seq + 1, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                     SMTPD_ENOENT);
    assert_int_equal(session_complete(f->s, f->ticket.seq - 1, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                     SMTPD_ENOENT);
    /* PENDING is no answer */
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_PENDING, 0, NULL, NULL, NOW),
                     SMTPD_ENOENT);
    assert_true(session_is_blocked(f->s));
    assert_string_equal(take(f), "");
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                     SMTPD_OK);
    assert_false(session_is_blocked(f->s));
    assert_string_equal(take(f), OK_RCPT);
    /* the same ticket cannot complete twice */
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                     SMTPD_ENOENT);
    assert_string_equal(take(f), "");
    /* the second RCPT pends too, and is refused with a custom reply */
    size_t second = strlen("RCPT TO:<c@example.com>\r\n");
    assert_int_equal(session_feed(f->s, group + first, sizeof group - 1 - first, NOW), second);
    assert_int_equal(f->tickets, 2);
    assert_int_equal(
        session_complete(f->s, f->ticket.seq, SMTPD_REJECT, 550, "5.1.1", "No such user", NOW),
        SMTPD_OK);
    assert_string_equal(take(f), "550 5.1.1 No such user\r\n");
    assert_int_equal(smtpd_session_rcpt_count(f->s), 1);
    assert_string_equal(smtpd_session_rcpt(f->s, 0), "b@example.com");
    send_expect(f, group + first + second, GO_AHEAD);
    fx_free(f);
}

static void
test_pending_every_hook(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->connect.v = SMTPD_PENDING;
    f->helo.v = SMTPD_PENDING;
    f->mail.v = SMTPD_PENDING;
    f->data.v = SMTPD_PENDING;
    f->deliver.v = SMTPD_PENDING;
    fx_start(f);
    assert_string_equal(take(f), "");
    assert_true(session_is_blocked(f->s));
    /* an early talker: nothing is read before the greeting */
    static const char all[] = "EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
                              "RCPT TO:<b@example.com>\r\nDATA\r\n" HEADERS "\r\nhi\r\n.\r\n"
                              "QUIT\r\n";
    size_t pos = 0, len = sizeof all - 1;
    assert_int_equal(session_feed(f->s, all, len, NOW), 0);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_EARLY_TALKER);
    const char *want[] = {GREETING,
                          EHLO_REPLY,
                          OK_MAIL,
                          OK_RCPT GO_AHEAD,
                          "250 2.0.0 " ID0 " Message accepted for delivery\r\n",
                          BYE};
    size_t steps = 0;
    for (;;) {
        if (session_is_blocked(f->s)) {
            uint64_t seq = f->ticket.seq;
            assert_int_equal(session_complete(f->s, seq, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                             SMTPD_OK);
        }
        assert_true(steps < ARRAY_LEN(want));
        const char *got = take(f);
        if (strcmp(got, want[steps]) != 0)
            fail_msg("step %zu: want [%s] got [%s]", steps, want[steps], got);
        steps++;
        if (session_is_closing(f->s))
            break;
        pos += session_feed(f->s, all + pos, len - pos, NOW);
    }
    assert_int_equal(steps, ARRAY_LEN(want));
    assert_int_equal(pos, len);
    assert_int_equal(f->tickets, 5);
    assert_int_equal(f->delivered, 1);
    fx_free(f);
}

static void
test_pending_complete_with_verdicts(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    f->mail.v = SMTPD_PENDING;
    assert_int_equal(feed(f, "MAIL FROM:<a@example.com>\r\n"), 27);
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_TEMPFAIL, 0, NULL, NULL, NOW),
                     SMTPD_OK);
    assert_string_equal(take(f),
                        "451 4.3.0 Requested action aborted: local error in processing\r\n");
    assert_null(smtpd_session_sender(f->s));
    assert_int_equal(feed(f, "MAIL FROM:<a@example.com>\r\n"), 27);
    /* an invalid reply is reported, the verdict still answers with its default */
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_REJECT, 700, NULL, "x", NOW),
                     SMTPD_EINVAL);
    assert_string_equal(take(f),
                        "553 5.7.1 Requested action not taken: mailbox name not allowed\r\n");
    assert_false(session_is_blocked(f->s));
    assert_int_equal(feed(f, "MAIL FROM:<a@example.com>\r\n"), 27);
    assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_DISCONNECT, 0, NULL, NULL, NOW),
                     SMTPD_OK);
    assert_string_equal(take(f), "421 4.7.0 test.example Closing connection\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);

    /* a session freed while a hook is pending: the answer has nowhere to go, no leak */
    f = fx_ready();
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    f->mail.v = SMTPD_PENDING;
    assert_int_equal(feed(f, "MAIL FROM:<a@example.com>\r\n"), 27);
    assert_true(session_is_blocked(f->s));
    fx_free(f);
}

/* ---------------------------------------------------------------------------------- */
/* Limits                                                                              */
/* ---------------------------------------------------------------------------------- */

static void
test_recipient_limit(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.max_recipients = 3;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f,
                "RCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\n"
                "RCPT TO:<r3@example.com>\r\nRCPT TO:<r4@example.com>\r\n"
                "RCPT TO:<postmaster>\r\n",
                OK_RCPT OK_RCPT OK_RCPT "452 4.5.3 Error: too many recipients\r\n"
                                        "452 4.5.3 Error: too many recipients\r\n");
    assert_int_equal(smtpd_session_rcpt_count(f->s), 3);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    assert_string_equal(f->rcpts, "<r1@example.com>,<r2@example.com>,<r3@example.com>");
    /* 452 is not an error toward max-errors; the next transaction starts from zero */
    assert_int_equal(f->s->errors, 0);
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
    send_expect(f, "RCPT TO:<r5@example.com>\r\n", OK_RCPT);
    fx_free(f);
}

static void
test_max_errors(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.max_errors = 3;
    fx_start(f);
    take(f);
    send_expect(f, "BOGUS\r\n", "500 5.5.1 Error: command not recognized\r\n");
    send_expect(f, "MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n");
    send_expect(f, "NOOP\r\n", "250 2.0.0 Ok\r\n");
    assert_int_equal(feed(f, "BOGUS\r\nNOOP\r\n"), 7);
    assert_string_equal(take(f), "500 5.5.1 Error: command not recognized\r\n"
                                 "421 4.7.0 test.example Error: too many errors\r\n");
    assert_true(session_is_closing(f->s));
    assert_int_equal(feed(f, "NOOP\r\n"), 0);
    assert_string_equal(take(f), "");
    fx_free(f);

    /* every kind of client error counts: syntax, order, line, parameters, size */
    f = fx_new();
    f->opts.max_errors = 6;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n");
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "RCPT TO:<a@example.com>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
    send_expect(f, "NOOP\n\r\n", "500 5.5.2 Error: bad character in command\r\n");
    send_expect(f, "MAIL FROM:<a@example.com> X=1\r\n", "555 5.5.4 Unsupported option: X\r\n");
    send_expect(f, "MAIL FROM:<a@example.com> SIZE=99999999999\r\n",
                "552 5.3.4 Message size exceeds fixed limit\r\n");
    send_expect(f, "MAIL FROM:<\xc3\xa9@example.com>\r\n",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n"
                "421 4.7.0 test.example Error: too many errors\r\n");
    fx_free(f);
}

static void
test_max_junk(void **state)
{
    (void)state;
    fx *f = fx_new();
    f->opts.max_junk = 3;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY); /* the first EHLO is not junk */
    send_expect(f, "NOOP\r\nRSET\r\n", "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
    assert_int_equal(feed(f, "VRFY x\r\nNOOP\r\n"), 8);
    assert_string_equal(take(f), "252 2.0.0 Cannot VRFY user, but will accept message and "
                                 "attempt delivery\r\n421 4.7.0 test.example Error: too many "
                                 "commands\r\n");
    assert_true(session_is_closing(f->s));
    fx_free(f);

    /* a second EHLO counts too */
    f = fx_new();
    f->opts.max_junk = 2;
    fx_start(f);
    take(f);
    send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
    send_expect(f, "HELP\r\n",
                "214-2.0.0 Commands supported:\r\n"
                "214 2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
    send_expect(f, "EHLO c.example\r\n",
                EHLO_REPLY "421 4.7.0 test.example Error: too many commands\r\n");
    fx_free(f);
}

static void
test_timeout_shutdown_eof(void **state)
{
    (void)state;
    fx *f = fx_ready();
    session_timeout(f->s);
    assert_string_equal(take(f), "421 4.4.2 test.example Error: timeout exceeded\r\n");
    assert_true(session_is_closing(f->s));
    session_timeout(f->s); /* once only */
    session_shutdown(f->s);
    assert_string_equal(take(f), "");
    session_eof(f->s);
    assert_int_equal(smtpd_session_findings(f->s) & SMTPD_FINDING_NO_QUIT, 0);
    fx_free(f);

    f = fx_ready();
    session_shutdown(f->s);
    assert_string_equal(take(f), "421 4.3.2 test.example Service shutting down\r\n");
    fx_free(f);

    f = fx_ready();
    envelope(f, "a@example.com", "b@example.com");
    send_expect(f, "DATA\r\nhalf a mess", GO_AHEAD);
    session_eof(f->s);
    assert_true(session_is_closing(f->s));
    assert_int_equal(smtpd_session_findings(f->s) & SMTPD_FINDING_NO_QUIT, SMTPD_FINDING_NO_QUIT);
    assert_string_equal(take(f), "");
    assert_int_equal(f->delivered, 0);
    buf_clear(&f->events);
    session_free(f->s);
    f->s = NULL;
    assert_string_equal(buf_str(&f->events), "reset\nclose\n");
    fx_free(f);
}

static void
test_findings_in_envelope(void **state)
{
    (void)state;
    fx *f = fx_ready();
    send_expect(f, "EHLO not_a_domain!\r\n", EHLO_REPLY);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_HELO_NOT_DOMAIN);
    send_expect(f, "MAIL FROM: <a@example.com>\r\n", OK_MAIL);
    assert_int_equal(smtpd_session_findings(f->s),
                     SMTPD_FINDING_HELO_NOT_DOMAIN | SMTPD_FINDING_SPACE_IN_PATH);
    send_expect(f, "RCPT TO:b@example.com\r\n", OK_RCPT);
    assert_int_equal(smtpd_session_findings(f->s), SMTPD_FINDING_HELO_NOT_DOMAIN |
                                                       SMTPD_FINDING_SPACE_IN_PATH |
                                                       SMTPD_FINDING_NO_ANGLE_BRACKETS);
    send_expect(f, "DATA\r\n", GO_AHEAD);
    send_expect(f, HEADERS "\r\n.\r\n", "250 2.0.0 " ID0 " Message accepted for delivery\r\n");
    /* session findings travel with the message */
    assert_int_equal(f->findings, SMTPD_FINDING_HELO_NOT_DOMAIN | SMTPD_FINDING_SPACE_IN_PATH |
                                      SMTPD_FINDING_NO_ANGLE_BRACKETS);
    for (unsigned bit = 1; bit <= SMTPD_FINDING_NO_QUIT; bit <<= 1)
        assert_non_null(smtpd_finding_name(bit));
    assert_string_equal(smtpd_finding_name(SMTPD_FINDING_BARE_LF), "bare-lf");
    assert_null(smtpd_finding_name(SMTPD_FINDING_NO_QUIT << 1));
    assert_null(smtpd_finding_name(3));
    fx_free(f);
}

/* A pending answer that arrives after the session was closed (timeout, shutdown, the
   client's close) must not add a reply after the 421: that was the last word.
   Regression: "250 2.1.5 Ok" followed the 421 (found by this test, fixed 1d6373e). */
static void
test_complete_after_close_sends_nothing(void **state)
{
    (void)state;
    for (int how = 0; how < 3; how++) {
        fx *f = fx_ready();
        send_expect(f, "EHLO c.example\r\n", EHLO_REPLY);
        send_expect(f, "MAIL FROM:<a@example.com>\r\n", OK_MAIL);
        f->rcpt.v = SMTPD_PENDING;
        assert_int_equal(feed(f, "RCPT TO:<b@example.com>\r\n"), 25);
        assert_true(session_is_blocked(f->s));
        if (how == 0) {
            session_timeout(f->s);
            assert_string_equal(take(f), "421 4.4.2 test.example Error: timeout exceeded\r\n");
        } else if (how == 1) {
            session_shutdown(f->s);
            assert_string_equal(take(f), "421 4.3.2 test.example Service shutting down\r\n");
        } else {
            session_eof(f->s);
            assert_string_equal(take(f), "");
        }
        assert_true(session_is_closing(f->s));
        assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                         SMTPD_OK);
        assert_string_equal(take(f), "");
        assert_false(session_is_blocked(f->s));
        assert_int_equal(smtpd_session_rcpt_count(f->s), 0);
        /* the ticket is used up */
        assert_int_equal(session_complete(f->s, f->ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, NOW),
                         SMTPD_ENOENT);
        fx_free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelining_same_output_any_split),
        cmocka_unit_test(test_pipelining_findings),
        cmocka_unit_test(test_hook_verdict_replies),
        cmocka_unit_test(test_hook_disconnect),
        cmocka_unit_test(test_connect_verdicts),
        cmocka_unit_test(test_connect_reject_with_text),
        cmocka_unit_test(test_set_reply_validation),
        cmocka_unit_test(test_postmaster_never_asks),
        cmocka_unit_test(test_pending_rcpt),
        cmocka_unit_test(test_pending_every_hook),
        cmocka_unit_test(test_pending_complete_with_verdicts),
        cmocka_unit_test(test_recipient_limit),
        cmocka_unit_test(test_max_errors),
        cmocka_unit_test(test_max_junk),
        cmocka_unit_test(test_timeout_shutdown_eof),
        cmocka_unit_test(test_findings_in_envelope),
        cmocka_unit_test(test_complete_after_close_sends_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
