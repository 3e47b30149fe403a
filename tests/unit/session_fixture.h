/* session_fixture.h - the fixture of test_session.c and test_session_hooks.c: a session
   on a session_env with recording hooks (scripted verdicts, custom replies, PENDING
   tickets), driven with bytes and compared reply by reply. Header-only; every function
   is static inline so each test file uses what it needs. */
#ifndef TESTS_UNIT_SESSION_FIXTURE_H
#define TESTS_UNIT_SESSION_FIXTURE_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "smtp/options.h"
#include "smtp/session.h"
#include "smtp/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NOW ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define NOW_DATE "Tue, 14 Nov 2023 22:13:20 +0000"
#define HOST "test.example"
#define ID0 "TST0000000001"
#define ID1 "TST0000000002"

#define EHLO_REPLY                                                                                 \
    "250-test.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"                                  \
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
#define GREETING "220 test.example ESMTP\r\n"
#define OK_MAIL "250 2.1.0 Ok\r\n"
#define OK_RCPT "250 2.1.5 Ok\r\n"
#define GO_AHEAD "354 End data with <CR><LF>.<CR><LF>\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define HEADERS "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@c.example>\r\n"

/* What one hook does when called. */
typedef struct hook_rule {
    smtpd_verdict v;
    int code; /* with text: smtpd_session_set_reply(code, enh, text) before returning */
    const char *enh;
    const char *text;
} hook_rule;

typedef struct fx {
    smtpd_options opts;
    smtpd_hooks hooks;
    session_env env;
    smtpd_session *s;

    hook_rule connect, helo, mail, rcpt, data, chunk, deliver;
    const char *rcpt_reject_prefix; /* rcpt addresses starting with this get REJECT */
    int set_reply_rc;               /* what the last set_reply returned */

    buf events; /* "mail <a@b>\n" ... */
    buf chunks; /* on_data_chunk pieces, concatenated */
    buf out;    /* replies taken from the session so far */
    smtpd_ticket ticket;
    int tickets;

    /* the last delivered message */
    int delivered;
    buf msg;
    size_t trace_size;
    unsigned findings;
    char id[32];
    char sender[300];
    char rcpts[1024];
    size_t rcpt_count;
    int body8, utf8;
    int closes, resets;
} fx;

static inline void ev(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void
ev(fx *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(buf_vprintf(&f->events, fmt, ap), BUF_OK);
    va_end(ap);
}

static inline smtpd_verdict
apply(fx *f, smtpd_session *s, const hook_rule *r)
{
    if (r->code || r->text)
        f->set_reply_rc = smtpd_session_set_reply(s, r->code, r->enh, r->text);
    if (r->v == SMTPD_PENDING) {
        f->ticket = smtpd_session_ticket(s);
        f->tickets++;
    }
    return r->v;
}

static inline smtpd_verdict
on_connect_cb(smtpd_session *s, void *user)
{
    fx *f = user;
    ev(f, "connect %s:%d\n", smtpd_session_client_addr(s), smtpd_session_client_port(s));
    return apply(f, s, &f->connect);
}

static inline smtpd_verdict
on_helo_cb(smtpd_session *s, const char *name, void *user)
{
    fx *f = user;
    ev(f, "helo %s\n", name);
    return apply(f, s, &f->helo);
}

static inline smtpd_verdict
on_mail_cb(smtpd_session *s, const char *sender, void *user)
{
    fx *f = user;
    ev(f, "mail <%s>\n", sender);
    return apply(f, s, &f->mail);
}

static inline smtpd_verdict
on_rcpt_cb(smtpd_session *s, const char *rcpt, void *user)
{
    fx *f = user;
    ev(f, "rcpt <%s>\n", rcpt);
    /* the sender of the transaction is visible while recipients are asked */
    assert_non_null(smtpd_session_sender(s));
    if (f->rcpt_reject_prefix &&
        strncmp(rcpt, f->rcpt_reject_prefix, strlen(f->rcpt_reject_prefix)) == 0)
        return SMTPD_REJECT;
    return apply(f, s, &f->rcpt);
}

static inline smtpd_verdict
on_data_cb(smtpd_session *s, void *user)
{
    fx *f = user;
    ev(f, "data %zu\n", smtpd_session_rcpt_count(s));
    return apply(f, s, &f->data);
}

static inline smtpd_verdict
on_chunk_cb(smtpd_session *s, const char *data, size_t len, void *user)
{
    fx *f = user;
    assert_int_equal(buf_append(&f->chunks, data, len), BUF_OK);
    return apply(f, s, &f->chunk);
}

static inline smtpd_verdict
on_deliver_cb(smtpd_session *s, const smtpd_message *m, void *user)
{
    fx *f = user;
    f->delivered++;
    ev(f, "deliver %s\n", m->id);
    buf_clear(&f->msg);
    assert_int_equal(buf_append(&f->msg, m->data, m->size), BUF_OK);
    f->trace_size = m->trace_size;
    f->findings = m->findings;
    snprintf(f->id, sizeof f->id, "%s", m->id);
    snprintf(f->sender, sizeof f->sender, "%s", m->sender);
    f->rcpts[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < m->rcpt_count; i++)
        n += (size_t)snprintf(f->rcpts + n, sizeof f->rcpts - n, "%s<%s>", i ? "," : "",
                              m->rcpts[i]);
    f->rcpt_count = m->rcpt_count;
    f->body8 = m->body_8bitmime;
    f->utf8 = m->smtputf8;
    return apply(f, s, &f->deliver);
}

static inline void
on_reset_cb(smtpd_session *s, void *user)
{
    (void)s;
    fx *f = user;
    f->resets++;
    ev(f, "reset\n");
}

static inline void
on_close_cb(smtpd_session *s, void *user)
{
    (void)s;
    fx *f = user;
    f->closes++;
    ev(f, "close\n");
}

/* Set up with the defaults (hostname test.example); tweak f->opts before fx_start. */
static inline fx *
fx_new(void)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    smtpd_options o;
    smtpd_options_init(&o);
    o.hostname = HOST;
    f->opts = o; /* the options fx_start copies */
    f->hooks.on_connect = on_connect_cb;
    f->hooks.on_helo = on_helo_cb;
    f->hooks.on_mail = on_mail_cb;
    f->hooks.on_rcpt = on_rcpt_cb;
    f->hooks.on_data = on_data_cb;
    f->hooks.on_deliver = on_deliver_cb;
    f->hooks.on_reset = on_reset_cb;
    f->hooks.on_close = on_close_cb;
    buf_init(&f->events, 1 << 20);
    buf_init(&f->chunks, 64 << 20);
    buf_init(&f->out, 64 << 20);
    buf_init(&f->msg, 64 << 20);
    return f;
}

static inline void
fx_start(fx *f)
{
    smtpd_options wanted = f->opts;
    assert_int_equal(options_copy(&f->opts, &wanted), SMTPD_OK);
    f->env.opts = &f->opts;
    f->env.hooks = &f->hooks;
    f->env.user = f;
    f->env.server = NULL;
    snprintf(f->env.id_prefix, sizeof f->env.id_prefix, "TST");
    atomic_init(&f->env.next_msg_id, 1);
    f->s = session_new(&f->env, 42, "192.0.2.9", 4321);
    assert_non_null(f->s);
    session_start(f->s, NOW);
}

static inline void
fx_free(fx *f)
{
    session_free(f->s);
    options_cleanup(&f->opts);
    buf_cleanup(&f->events);
    buf_cleanup(&f->chunks);
    buf_cleanup(&f->out);
    buf_cleanup(&f->msg);
    free(f);
}

/* Everything the session has queued since the last call, as a string. */
static inline const char *
take(fx *f)
{
    buf *o = session_output(f->s);
    buf_clear(&f->out);
    assert_int_equal(buf_append(&f->out, o->data ? o->data : "", o->len), BUF_OK);
    buf_consume(o, o->len);
    return buf_str(&f->out);
}

/* Feed all of text; returns what the session consumed. */
static inline size_t
feed(fx *f, const char *text)
{
    return session_feed(f->s, text, strlen(text), NOW);
}

/* Feed text, which the session must take whole, and compare the replies. */
static inline void
send_expect(fx *f, const char *text, const char *want)
{
    size_t n = strlen(text);
    size_t used = session_feed(f->s, text, n, NOW);
    const char *got = take(f);
    if (used != n || strcmp(got, want) != 0)
        fail_msg("sent [%s]\n consumed %zu of %zu\n want [%s]\n got  [%s]", text, used, n, want,
                 got);
}

static inline fx *
fx_ready(void)
{
    fx *f = fx_new();
    fx_start(f);
    assert_string_equal(take(f), GREETING);
    return f;
}

/* EHLO, MAIL, RCPT: ready for DATA. */
static inline void
envelope(fx *f, const char *from, const char *to)
{
    char line[600];
    send_expect(f, "EHLO client.example\r\n", EHLO_REPLY);
    snprintf(line, sizeof line, "MAIL FROM:<%s>\r\n", from);
    send_expect(f, line, OK_MAIL);
    snprintf(line, sizeof line, "RCPT TO:<%s>\r\n", to);
    send_expect(f, line, OK_RCPT);
}

#endif
