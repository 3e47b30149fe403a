/*
 * commands.c - the SMTP command table (RFC 5321 4.1.1) and what each command does.
 *
 * One row per verb with its flags; every command that asks a hook is split in two: the
 * part before the hook (syntax and order checks) and commands_finish, which runs when
 * the hook answered, at once or later through session_complete. Replies follow
 * docs/replies.md.
 */
#include "core/str.h"
#include "smtp/parse.h"
#include "smtp/session.h"
#include "smtp/trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    CMD_ENDS_GROUP = 1 << 0, /* RFC 2920 3.1: may only be last in a pipelined group */
    CMD_JUNK = 1 << 1,       /* counts toward max-junk */
    CMD_NO_ARGS = 1 << 2     /* arguments get 501 (4.3.2 "SHOULD return a 501") */
};

typedef struct command {
    const char *verb;
    unsigned flags;
    void (*run)(smtpd_session *s, const char *args);
    const char *syntax; /* for the 501 of CMD_NO_ARGS */
} command;

static const char rejected_mailbox[] = "Requested action not taken: mailbox name not allowed";
static const char rejected_policy[] = "Requested action not taken: rejected by policy";

/* The hooks that judge one string: on_helo, on_mail, on_rcpt. */
typedef smtpd_verdict (*commands_value_hook)(smtpd_session *s, const char *value, void *user);

/* Keep value as the candidate, ask the hook (none = ACCEPT) and finish the command when
   the hook answered at once; a PENDING answer finishes in session_complete. */
static void
commands_ask(smtpd_session *s, session_wait kind, commands_value_hook hook, const char *value)
{
    s->cand.value = str_dup(value);
    if (!s->cand.value) {
        session_reply(s, 451, "4.3.0", "Error: out of memory");
        return;
    }
    session_hook_begin(s, kind);
    smtpd_verdict v = hook ? hook(s, s->cand.value, s->env->user) : SMTPD_ACCEPT;
    if (!session_hook_end(s, v))
        commands_finish(s, kind, v);
}

/* ---------------------------------------------------------------------------------- */
/* Greeting, HELO, EHLO                                                               */
/* ---------------------------------------------------------------------------------- */

static void
commands_finish_connect(smtpd_session *s, smtpd_verdict v)
{
    const smtpd_options *o = s->env->opts;
    const session_hook_reply *hr = &s->hook_reply;
    switch (v) {
    case SMTPD_ACCEPT:
        session_set_state(s, SESSION_COMMAND);
        session_reply(s, 220, NULL, "%s %s", o->hostname, o->banner);
        return;
    case SMTPD_REJECT:
        /* the seed: "550 Access denied: <text>", then only QUIT */
        session_set_state(s, SESSION_DENIED);
        session_reply(s, hr->code ? hr->code : 550, NULL, "Access denied: %s",
                      hr->text ? hr->text : "not allowed");
        return;
    case SMTPD_TEMPFAIL:
        session_reply(s, 421, "4.3.2", "%s Service not available", o->hostname);
        return;
    case SMTPD_DISCONNECT:
    case SMTPD_PENDING:
        break;
    }
    session_reply(s, 421, "4.7.0", "%s Closing connection", o->hostname);
}

static void
commands_helo_common(smtpd_session *s, const char *args, bool esmtp)
{
    if (!*args) {
        session_error(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    if (!parse_is_domain_or_literal(args, strlen(args)))
        s->findings |= SMTPD_FINDING_HELO_NOT_DOMAIN;
    s->cand.esmtp = esmtp;
    commands_ask(s, WAIT_HELO, s->env->hooks->on_helo, args);
}

static void
commands_finish_helo(smtpd_session *s, smtpd_verdict v)
{
    int hook_code = s->hook_reply.code;
    if (v == SMTPD_ACCEPT && (hook_code == 0 || hook_code / 100 == 2)) {
        /* 4.1.4: a new EHLO resets the transaction exactly as RSET does */
        session_tx_reset(s);
        free(s->helo);
        s->helo = s->cand.value;
        s->cand.value = NULL;
        s->esmtp = s->cand.esmtp;
        if (!s->esmtp)
            s->findings |= SMTPD_FINDING_HELO_NOT_EHLO;
        if (s->esmtp) {
            if (!ehlo_reply(s)) { /* the client was told 451: it has not said EHLO yet */
                free(s->helo);
                s->helo = NULL;
                s->esmtp = false;
            }
        } else
            session_reply(s, 250, NULL, "%s", s->env->opts->hostname);
        return;
    }
    /* a refused EHLO leaves the state as it was (4.1.4) */
    session_verdict_reply(s, v, 250, NULL, "", 550, "5.7.1", rejected_policy);
}

static void
cmd_helo(smtpd_session *s, const char *args)
{
    commands_helo_common(s, args, false);
}

static void
cmd_ehlo(smtpd_session *s, const char *args)
{
    commands_helo_common(s, args, true);
}

/* ---------------------------------------------------------------------------------- */
/* MAIL and RCPT                                                                      */
/* ---------------------------------------------------------------------------------- */

/* Report a path that did not parse; returns true when it did. */
static bool
commands_path_ok(smtpd_session *s, parse_status st, bool mail)
{
    switch (st) {
    case PARSE_OK:
        return true;
    case PARSE_ESYNTAX:
        session_error(s, 501, "5.5.4", "Syntax: %s",
                      mail ? "MAIL FROM:<address>" : "RCPT TO:<address>");
        return false;
    case PARSE_EADDR:
        if (mail)
            session_error(s, 501, "5.1.7", "Bad sender address syntax");
        else
            session_error(s, 501, "5.1.3", "Bad recipient address syntax");
        return false;
    case PARSE_EPARAM:
        session_error(s, 501, "5.5.4", "Bad parameter syntax");
        return false;
    }
    return false;
}

static void
commands_note_path(smtpd_session *s, const parse_path *p)
{
    if (p->had_space)
        s->findings |= SMTPD_FINDING_SPACE_IN_PATH;
    if (p->no_brackets)
        s->findings |= SMTPD_FINDING_NO_ANGLE_BRACKETS;
}

/* The MAIL parameters we know (RFC 1870, 6152, 6531). Returns false after replying. */
static bool
commands_mail_params(smtpd_session *s, const parse_path *p)
{
    const smtpd_options *o = s->env->opts;
    for (size_t i = 0; i < p->nparams; i++) {
        const char *k = p->params[i].key, *v = p->params[i].value;
        if (str_ieq(k, "SIZE")) {
            uint64_t size;
            if (!v || !str_parse_u64(v, strlen(v), &size)) {
                session_error(s, 501, "5.5.4", "Bad parameter syntax");
                return false;
            }
            if (size > o->max_message_size) {
                session_error(s, 552, "5.3.4", "Message size exceeds fixed limit");
                return false;
            }
            if (size > session_msg_budget_free(s)) {
                /* RFC 1870 6.1: the size fits the limit but not now (other sessions'
                   messages hold max-buffered-data) */
                session_reply(s, 452, "4.3.1", "Insufficient system storage");
                return false;
            }
        } else if (str_ieq(k, "BODY")) {
            if (!v || !(str_ieq(v, "7BIT") || str_ieq(v, "8BITMIME"))) {
                session_error(s, 501, "5.5.4", "Bad parameter syntax");
                return false;
            }
            s->cand.body8 = str_ieq(v, "8BITMIME");
        } else if (str_ieq(k, "AUTH") && s->env->hooks->on_auth) {
            /* RFC 4954 5: AUTH=<mailbox> in xtext, or <>; we trust no client's claim, so
               it is checked and then treated as AUTH=<>. Without AUTH support it is an
               unknown parameter (555, as Postfix) */
            char decoded[PARSE_MAX_PATH + 3];
            if (!v ||
                (strcmp(v, "<>") != 0 && parse_xtext_decode(v, decoded, sizeof decoded) < 0)) {
                session_error(s, 501, "5.5.4", "Bad parameter syntax");
                return false;
            }
        } else if (str_ieq(k, "SMTPUTF8") && o->smtputf8) {
            if (v) {
                session_error(s, 501, "5.5.4", "Bad parameter syntax");
                return false;
            }
            s->cand.smtputf8 = true;
        } else {
            session_error(s, 555, "5.5.4", "Unsupported option: %s", k);
            return false;
        }
    }
    return true;
}

static void
cmd_mail(smtpd_session *s, const char *args)
{
    if (!s->helo) {
        session_error(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (s->tx.active) {
        session_error(s, 503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    if (s->env->opts->require_tls && !s->tls) {
        session_error(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    if (s->env->opts->auth_required && !s->auth_user) {
        session_error(s, 530, "5.7.0", "Authentication required");
        return;
    }
    parse_path p;
    if (!commands_path_ok(s, parse_path_arg(args, "FROM:", true, &p), true))
        return;
    commands_note_path(s, &p);
    s->cand.body8 = s->cand.smtputf8 = false;
    if (!commands_mail_params(s, &p))
        return;
    if (p.is_8bit && !s->cand.smtputf8) {
        session_error(s, 553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
        return;
    }
    commands_ask(s, WAIT_MAIL, s->env->hooks->on_mail, p.addr);
}

static void
commands_finish_mail(smtpd_session *s, smtpd_verdict v)
{
    int code = session_verdict_reply(s, v, 250, "2.1.0", "Ok", 553, "5.7.1", rejected_mailbox);
    if (code / 100 != 2)
        return;
    s->tx.active = true;
    s->tx.sender = s->cand.value;
    s->cand.value = NULL;
    s->tx.body_8bitmime = s->cand.body8;
    s->tx.smtputf8 = s->cand.smtputf8;
}

static void
cmd_rcpt(smtpd_session *s, const char *args)
{
    if (!s->tx.active) {
        session_error(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    parse_path p;
    if (!commands_path_ok(s, parse_path_arg(args, "TO:", false, &p), false))
        return;
    commands_note_path(s, &p);
    if (p.nparams) {
        session_error(s, 555, "5.5.4", "Unsupported option: %s", p.params[0].key);
        return;
    }
    if (p.is_8bit && !s->tx.smtputf8) {
        session_error(s, 553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
        return;
    }
    if (s->tx.nrcpts >= s->env->opts->max_recipients) {
        /* 4.5.3.1.10: 452, and the recipients so far stay */
        session_reply(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    /* room for this recipient now, so that a 250 can never be followed by a lost one */
    char **r = realloc(s->tx.rcpts, (s->tx.nrcpts + 1) * sizeof *r);
    if (!r) {
        session_reply(s, 451, "4.3.0", "Error: out of memory");
        return;
    }
    s->tx.rcpts = r;
    /* 4.5.1: postmaster MUST be accepted, so the hook is not asked */
    bool postmaster = parse_is_postmaster(p.addr, s->env->opts->hostname);
    commands_ask(s, WAIT_RCPT, postmaster ? NULL : s->env->hooks->on_rcpt, p.addr);
}

static void
commands_finish_rcpt(smtpd_session *s, smtpd_verdict v)
{
    int code = session_verdict_reply(s, v, 250, "2.1.5", "Ok", 553, "5.7.1", rejected_mailbox);
    if (code / 100 != 2)
        return;
    s->tx.rcpts[s->tx.nrcpts++] = s->cand.value; /* cmd_rcpt made the room */
    s->cand.value = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* DATA                                                                               */
/* ---------------------------------------------------------------------------------- */

static void
cmd_data(smtpd_session *s, const char *args)
{
    (void)args;
    s->group_ended = true;
    if (!s->tx.active) {
        session_error(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (s->tx.nrcpts == 0) {
        session_error(s, 503, "5.5.1", "Error: need RCPT command");
        return;
    }
    if (session_msg_budget_free(s) < session_msg_budget_reserve(s)) {
        /* max-buffered-data is (nearly) used up by other sessions' messages. RFC 5321
           4.3.2 lists 452 for DATA; the transaction stays for a retry. */
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
        return;
    }
    session_hook_begin(s, WAIT_DATA);
    const smtpd_hooks *h = s->env->hooks;
    smtpd_verdict v = h->on_data ? h->on_data(s, s->env->user) : SMTPD_ACCEPT;
    if (!session_hook_end(s, v))
        commands_finish(s, WAIT_DATA, v);
}

/* The body decoder hands over content here: keep it (within the cap) and stream it to
   on_data_chunk. */
static void
commands_body_sink(void *ctx, const char *data, size_t len)
{
    smtpd_session *s = ctx;
    if (s->body.size > s->env->opts->max_message_size && !s->msg_too_big) {
        s->msg_too_big = true;
        session_msg_release(s); /* refused at the end anyway: hold nothing meanwhile */
    }
    if (!s->msg_too_big && !s->msg_nomem) {
        /* octets past what this message already holds of the budget (presized) */
        size_t after = s->msg.len + len;
        bool room = after <= s->msg_budgeted || session_msg_budget_take(s, after - s->msg_budgeted);
        int rc = room ? buf_append(&s->msg, data, len) : BUF_ENOMEM;
        if (rc == BUF_EFULL) {
            s->msg_too_big = true;
            session_msg_release(s);
        } else if (rc != BUF_OK) {
            /* out of memory, or all sessions together hold max-buffered-data: drop what
               this message holds now, read the rest and answer 452 at the end */
            s->msg_nomem = true;
            session_msg_release(s);
        }
    }
    const smtpd_hooks *h = s->env->hooks;
    if (h->on_data_chunk && !s->chunk_failed && !s->msg_too_big) {
        session_hook_begin(s, WAIT_DATA);
        smtpd_verdict v = h->on_data_chunk(s, data, len, s->env->user);
        s->in_hook = false;
        s->waiting = WAIT_NONE;
        if (v != SMTPD_ACCEPT) {
            s->chunk_failed = true;
            s->chunk_verdict = v == SMTPD_PENDING ? SMTPD_TEMPFAIL : (int)v;
        }
    }
}

static void
commands_finish_data(smtpd_session *s, smtpd_verdict v)
{
    int code = session_verdict_reply(s, v, 354, NULL, "End data with <CR><LF>.<CR><LF>", 550,
                                     "5.7.1", rejected_policy);
    if (code != 354)
        return;
    session_env *env = s->env;
    uint64_t n = atomic_fetch_add(&env->next_msg_id, 1);
    snprintf(s->tx.id, sizeof s->tx.id, "%s%010" PRIX64, env->id_prefix, n);
    trace_info t = {
        .sender = s->tx.sender,
        .helo = s->helo,
        .client_addr = s->client_addr,
        .host = env->opts->hostname,
        .id = s->tx.id,
        .for_rcpt = s->tx.nrcpts == 1 ? s->tx.rcpts[0] : NULL,
        .esmtp = s->esmtp,
        .smtputf8 = s->tx.smtputf8,
        .now = s->now,
        .tls_version = s->tls_version,
        .tls_cipher = s->tls_cipher,
        .auth_user = s->auth_user,
    };
    /* the trace headers are at most a few KiB: helo, sender and recipient are capped */
    buf_init(&s->msg, env->opts->max_message_size + 8192);
    /* only a size this session already sent, and taken from the budget like the content
       it makes room for: a size a client merely declares could make many sessions
       reserve memory they never fill */
    if (s->msg_size_hint && session_msg_budget_take(s, s->msg_size_hint + 1024))
        (void)buf_presize(&s->msg, s->msg_size_hint + 1024);
    if (trace_append(&s->msg, &t) != BUF_OK)
        s->msg_nomem = true;
    s->tx.trace_size = s->msg.len;
    body_init(&s->body, env->opts->bare_lf, env->opts->max_text_line, s->tx.body_8bitmime,
              commands_body_sink, s);
    session_set_state(s, SESSION_DATA);
}

/* RFC 5322 3.6: note a message without Date: or Message-ID: in its header section. */
static unsigned
commands_scan_headers(const char *p, size_t n)
{
    bool date = false, msgid = false;
    size_t i = 0;
    while (i < n) {
        const char *line = p + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        if (len == 0 || (len == 1 && line[0] == '\r'))
            break; /* the empty line ends the header section */
        if (len >= 5 && str_ieqn(line, "Date:", 5))
            date = true;
        else if (len >= 11 && str_ieqn(line, "Message-ID:", 11))
            msgid = true;
        i += len + 1;
    }
    return (date ? 0u : SMTPD_FINDING_NO_DATE) | (msgid ? 0u : SMTPD_FINDING_NO_MESSAGE_ID);
}

void
commands_end_of_data(smtpd_session *s)
{
    session_set_state(s, SESSION_COMMAND);
    s->tx.findings |= s->body.findings;
    if (s->msg_too_big || s->body.size > s->env->opts->max_message_size) {
        /* RFC 1870 6.3: read to the end, then refuse */
        session_error(s, 552, "5.3.4", "Message size exceeds fixed limit");
        session_tx_reset(s);
        return;
    }
    if (s->body.line_over_cap) {
        session_error(s, 552, "5.3.4", "Message refused: line too long");
        session_tx_reset(s);
        return;
    }
    if (s->body.bare_seen && s->env->opts->bare_lf == SMTPD_BARE_LF_REJECT) {
        session_error(s, 550, "5.5.2", "Message refused: bare <CR> or <LF> in data");
        session_tx_reset(s);
        return;
    }
    if (s->msg_nomem) {
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
        session_tx_reset(s);
        return;
    }
    if (s->chunk_failed) {
        session_verdict_reply(s, (smtpd_verdict)s->chunk_verdict, 250, "2.0.0", "Ok", 554, "5.7.1",
                              rejected_policy);
        session_tx_reset(s);
        return;
    }
    s->msg_size_hint = s->msg.len;
    s->tx.findings |=
        commands_scan_headers(s->msg.data + s->tx.trace_size, s->msg.len - s->tx.trace_size);
    smtpd_message m = {
        .id = s->tx.id,
        .sender = s->tx.sender,
        .rcpts = (const char *const *)s->tx.rcpts,
        .rcpt_count = s->tx.nrcpts,
        .data = s->msg.data,
        .size = s->msg.len,
        .trace_size = s->tx.trace_size,
        .findings = s->findings | s->tx.findings,
        .body_8bitmime = s->tx.body_8bitmime,
        .smtputf8 = s->tx.smtputf8,
    };
    session_hook_begin(s, WAIT_DELIVER);
    const smtpd_hooks *h = s->env->hooks;
    smtpd_verdict v = h->on_deliver ? h->on_deliver(s, &m, s->env->user) : SMTPD_ACCEPT;
    if (!session_hook_end(s, v))
        commands_finish(s, WAIT_DELIVER, v);
}

static void
commands_finish_deliver(smtpd_session *s, smtpd_verdict v)
{
    char ok[96];
    snprintf(ok, sizeof ok, "%s Message accepted for delivery", s->tx.id);
    session_verdict_reply(s, v, 250, "2.0.0", ok, 554, "5.7.1", rejected_policy);
    /* after the final dot the transaction is over, whatever the answer (4.1.1.4) */
    session_tx_reset(s);
}

/* ---------------------------------------------------------------------------------- */
/* RSET, NOOP, QUIT, VRFY, EXPN, HELP                                                 */
/* ---------------------------------------------------------------------------------- */

static void
cmd_rset(smtpd_session *s, const char *args)
{
    (void)args;
    session_tx_reset(s);
    session_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(smtpd_session *s, const char *args)
{
    (void)args; /* 4.1.1.9: NOOP may carry a string, which is ignored */
    session_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(smtpd_session *s, const char *args)
{
    (void)args;
    session_reply(s, 221, "2.0.0", "Bye");
}

static void
cmd_vrfy(smtpd_session *s, const char *args)
{
    if (!s->env->opts->vrfy) {
        session_error(s, 502, "5.5.1", "VRFY command is disabled");
        return;
    }
    if (!*args) {
        session_error(s, 501, "5.5.4", "Syntax: VRFY address");
        return;
    }
    /* 3.5.3: 252 when we will accept mail for it but cannot verify */
    session_reply(s, 252, "2.0.0",
                  "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_expn(smtpd_session *s, const char *args)
{
    (void)args;
    session_error(s, 502, "5.5.1", "EXPN command is not supported");
}

static void
cmd_help(smtpd_session *s, const char *args)
{
    (void)args;
    session_reply(s, 214, "2.0.0",
                  "Commands supported:\nHELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

/* ---------------------------------------------------------------------------------- */
/* STARTTLS (RFC 3207) and AUTH (RFC 4954, sasl.c)                                    */
/* ---------------------------------------------------------------------------------- */

static void
cmd_starttls(smtpd_session *s, const char *args)
{
    (void)args;
    if (!s->env->tls_available) {
        session_error(s, 502, "5.5.1", "Error: command not implemented");
        return;
    }
    if (s->tls) {
        session_error(s, 554, "5.5.1", "Error: TLS already active");
        return;
    }
    session_reply(s, 220, "2.0.0", "Ready to start TLS");
    /* from here the session reads nothing until the I/O layer finished the handshake
       (and dropped whatever plaintext followed this command: CVE-2011-0411) */
    s->tls_requested = true;
}

static void
cmd_auth(smtpd_session *s, const char *args)
{
    sasl_start(s, args);
}

static const command command_table[] = {
    {"HELO", CMD_ENDS_GROUP, cmd_helo, NULL},
    {"EHLO", CMD_ENDS_GROUP, cmd_ehlo, NULL},
    {"MAIL", 0, cmd_mail, NULL},
    {"RCPT", 0, cmd_rcpt, NULL},
    {"DATA", CMD_ENDS_GROUP | CMD_NO_ARGS, cmd_data, "DATA"},
    {"RSET", CMD_JUNK | CMD_NO_ARGS, cmd_rset, "RSET"},
    {"NOOP", CMD_ENDS_GROUP | CMD_JUNK, cmd_noop, NULL},
    {"QUIT", CMD_ENDS_GROUP | CMD_NO_ARGS, cmd_quit, "QUIT"},
    {"VRFY", CMD_ENDS_GROUP | CMD_JUNK, cmd_vrfy, NULL},
    {"EXPN", CMD_ENDS_GROUP | CMD_JUNK, cmd_expn, NULL},
    {"HELP", CMD_ENDS_GROUP | CMD_JUNK, cmd_help, NULL},
    {"STARTTLS", CMD_ENDS_GROUP | CMD_NO_ARGS, cmd_starttls, "STARTTLS"},
    {"AUTH", CMD_ENDS_GROUP, cmd_auth, NULL},
};

/* Transcripts never show credentials: "AUTH PLAIN <initial response>" is logged with
   "***" in place of the response. */
static void
commands_log(smtpd_session *s, const char *line, size_t len, size_t vlen)
{
    if (vlen == 4 && str_ieqn(line, "AUTH", 4)) {
        const char *mech = line + 4 + strspn(line + 4, " ");
        size_t mlen = strcspn(mech, " ");
        if (mech[mlen]) {
            char masked[64];
            int n = snprintf(masked, sizeof masked, "AUTH %.*s ***", (int)(mlen < 32 ? mlen : 32),
                             mech);
            session_log(s, SMTPD_LOG_IN, masked, (size_t)n);
            return;
        }
    }
    session_log(s, SMTPD_LOG_IN, line, len);
}

void
commands_run(smtpd_session *s, const char *line, size_t len)
{
    size_t vlen = strcspn(line, " ");
    commands_log(s, line, len, vlen);
    const char *args = line + vlen;
    while (*args == ' ')
        args++;
    /* trailing spaces are tolerated (many clients send "RSET ") */
    char argbuf[4096];
    size_t alen = strlen(args);
    while (alen && args[alen - 1] == ' ')
        alen--;
    if (alen >= sizeof argbuf)
        alen = sizeof argbuf - 1;
    memcpy(argbuf, args, alen);
    argbuf[alen] = '\0';

    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof command_table / sizeof command_table[0]; i++) {
        if (vlen == strlen(command_table[i].verb) && str_ieqn(line, command_table[i].verb, vlen)) {
            cmd = &command_table[i];
            break;
        }
    }
    if (s->state == SESSION_DENIED) {
        /* the seed: after "550 Access denied" only QUIT */
        if (cmd && cmd->run == cmd_quit)
            cmd_quit(s, argbuf);
        else
            session_error(s, 503, "5.7.0", "Error: access denied, only QUIT allowed");
        return;
    }
    if (!cmd) {
        session_error(s, 500, "5.5.1", "Error: command not recognized");
        return;
    }
    if (cmd->flags & CMD_ENDS_GROUP)
        s->group_ended = true;
    if ((cmd->flags & CMD_NO_ARGS) && argbuf[0]) {
        session_error(s, 501, "5.5.4", "Syntax: %s", cmd->syntax);
        return;
    }
    /* a second HELO/EHLO is junk too (Postfix smtpd_junk_command_limit) */
    bool junk = (cmd->flags & CMD_JUNK) ||
                ((cmd->run == cmd_helo || cmd->run == cmd_ehlo) && s->helo != NULL);
    cmd->run(s, argbuf);
    if (junk && ++s->junk >= s->env->opts->max_junk && s->state != SESSION_CLOSING &&
        !session_is_blocked(s))
        session_reply(s, 421, "4.7.0", "%s Error: too many commands", s->env->opts->hostname);
}

void
commands_finish(smtpd_session *s, session_wait kind, smtpd_verdict v)
{
    switch (kind) {
    case WAIT_CONNECT:
        commands_finish_connect(s, v);
        break;
    case WAIT_HELO:
        commands_finish_helo(s, v);
        break;
    case WAIT_MAIL:
        commands_finish_mail(s, v);
        break;
    case WAIT_RCPT:
        commands_finish_rcpt(s, v);
        break;
    case WAIT_DATA:
        commands_finish_data(s, v);
        break;
    case WAIT_DELIVER:
        commands_finish_deliver(s, v);
        break;
    case WAIT_AUTH:
        sasl_finish(s, v);
        break;
    case WAIT_TLS:
        /* only a refusal needs a word: the client speaks first after the handshake */
        if (v == SMTPD_REJECT || v == SMTPD_DISCONNECT || v == SMTPD_TEMPFAIL)
            session_reply(s, 421, "4.7.0", "%s TLS session refused", s->env->opts->hostname);
        break;
    case WAIT_NONE:
        break;
    }
    free(s->cand.value);
    s->cand.value = NULL;
}
