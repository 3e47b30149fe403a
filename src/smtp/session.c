/* session.c - the session life cycle, input framing, replies and hook plumbing; the
   commands themselves are in commands.c. See session.h. */
#include "smtp/session.h"

#include "core/str.h"
#include "smtp/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 4954 4: an AUTH command or response line may be 12288 octets */
#define SESSION_MAX_AUTH_LINE 12288

/* Output is bounded by how much input we accept per feed, but a hard cap keeps a client
   that never reads its replies from growing memory (the I/O layer also stops reading). */
#define SESSION_OUT_CAP (4u << 20)

const char *
session_state_str(session_state st)
{
    switch (st) {
    case SESSION_CONNECTING:
        return "connecting";
    case SESSION_COMMAND:
        return "command";
    case SESSION_DATA:
        return "data";
    case SESSION_DENIED:
        return "denied";
    case SESSION_CLOSING:
        return "closing";
    }
    return "?";
}

smtpd_session *
session_new(session_env *env, uint64_t id, const char *client_addr, int client_port)
{
    smtpd_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->env = env;
    s->id = id;
    snprintf(s->client_addr, sizeof s->client_addr, "%s", client_addr ? client_addr : "");
    s->client_port = client_port;
    /* the largest line any command may send: AUTH (RFC 4954 4: 12288 octets); each
       command's own limit is checked when its line is complete */
    buf_init(&s->line, SESSION_MAX_AUTH_LINE > env->opts->max_command_line + 64
                           ? SESSION_MAX_AUTH_LINE
                           : env->opts->max_command_line + 64);
    buf_init(&s->msg, 0);
    buf_init(&s->out, SESSION_OUT_CAP);
    s->state = SESSION_CONNECTING;
    return s;
}

static void
session_clear_hook_reply(smtpd_session *s)
{
    free(s->hook_reply.text);
    memset(&s->hook_reply, 0, sizeof s->hook_reply);
}

static void
session_clear_candidate(smtpd_session *s)
{
    free(s->cand.value);
    memset(&s->cand, 0, sizeof s->cand);
}

void
session_free(smtpd_session *s)
{
    if (!s)
        return;
    session_tx_reset(s);
    const smtpd_hooks *h = s->env->hooks;
    if (s->connected && h->on_close)
        h->on_close(s, s->env->user);
    free(s->helo);
    free(s->tls_version);
    free(s->tls_cipher);
    free(s->tls_peer);
    free(s->auth_user);
    sasl_reset(s);
    session_clear_hook_reply(s);
    session_clear_candidate(s);
    buf_cleanup(&s->line);
    session_msg_release(s);
    buf_cleanup(&s->out);
    free(s);
}

void
session_set_state(smtpd_session *s, session_state st)
{
    if (s->state == st)
        return;
    s->waits++;
    if (s->env->hooks->on_log) {
        char note[80];
        int n = snprintf(note, sizeof note, "state %s -> %s", session_state_str(s->state),
                         session_state_str(st));
        session_log(s, SMTPD_LOG_INFO, note, (size_t)n);
    }
    s->state = st;
}

void
session_log(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len)
{
    if (s->env->hooks->on_log)
        s->env->hooks->on_log(s, dir, line, len, s->env->user);
}

static void
session_log_out_cb(void *ctx, const char *line, size_t len)
{
    session_log(ctx, SMTPD_LOG_OUT, line, len);
}

__attribute__((format(printf, 4, 0))) static void
session_vreply(smtpd_session *s, int code, const char *enhanced, const char *fmt, va_list ap)
{
    /* RFC 2034: enhanced codes only when offered (and never on the greeting/EHLO) */
    const char *enh = s->env->opts->enhanced_status_codes ? enhanced : NULL;
    char small[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    int rc;
    if (n >= 0 && (size_t)n < sizeof small) {
        rc = reply_format(&s->out, code, enh, small, session_log_out_cb, s);
    } else {
        /* a hook's long multi-line text; reply_format caps each line at 512 octets */
        buf text;
        buf_init(&text, 100 * REPLY_MAX_LINE);
        buf_vprintf(&text, fmt, ap);
        rc = reply_format(&s->out, code, enh, buf_str(&text), session_log_out_cb, s);
        buf_cleanup(&text);
    }
    if (rc != BUF_OK) {
        /* The client has not read megabytes of replies: it gets no more. */
        session_set_state(s, SESSION_CLOSING);
        return;
    }
    if (code == 221 || code == 421)
        session_set_state(s, SESSION_CLOSING);
}

void
session_reply(smtpd_session *s, int code, const char *enhanced, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_vreply(s, code, enhanced, fmt, ap);
    va_end(ap);
}

void
session_error(smtpd_session *s, int code, const char *enhanced, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_vreply(s, code, enhanced, fmt, ap);
    va_end(ap);
    if (++s->errors >= s->env->opts->max_errors && s->state != SESSION_CLOSING)
        session_reply(s, 421, "4.7.0", "%s Error: too many errors", s->env->opts->hostname);
}

void
session_tx_reset(smtpd_session *s)
{
    bool had = s->tx.active;
    free(s->tx.sender);
    for (size_t i = 0; i < s->tx.nrcpts; i++)
        free(s->tx.rcpts[i]);
    free(s->tx.rcpts);
    memset(&s->tx, 0, sizeof s->tx);
    session_msg_release(s);
    s->msg_too_big = s->msg_nomem = s->chunk_failed = false;
    if (had && s->env->hooks->on_reset)
        s->env->hooks->on_reset(s, s->env->user);
}

void
session_hook_begin(smtpd_session *s, session_wait kind)
{
    session_clear_hook_reply(s);
    s->in_hook = true;
    s->waiting = kind;
    s->wait_seq = ++s->seq_counter;
}

bool
session_hook_end(smtpd_session *s, smtpd_verdict v)
{
    s->in_hook = false;
    if (v == SMTPD_PENDING)
        return true;
    s->waiting = WAIT_NONE;
    return false;
}

int
session_verdict_reply(smtpd_session *s, smtpd_verdict v, int ok_code, const char *ok_enh,
                      const char *ok_text, int rej_code, const char *rej_enh, const char *rej_text)
{
    const session_hook_reply *hr = &s->hook_reply;
    if (hr->code) {
        const char *enh = hr->enhanced[0] ? hr->enhanced : NULL;
        if (!enh) {
            /* a fitting enhanced code when the hook gave none (RFC 3463 3.1, x.0.0) */
            enh = hr->code >= 500 ? "5.0.0" : hr->code >= 400 ? "4.0.0" : "2.0.0";
        }
        /* a code without text (or whose text could not be kept, out of memory): the
           verdict's own text */
        const char *text = hr->text            ? hr->text
                           : v == SMTPD_ACCEPT ? ok_text
                           : v == SMTPD_REJECT ? rej_text
                           : v == SMTPD_TEMPFAIL
                               ? "Requested action aborted: local error in processing"
                               : "Closing connection";
        session_reply(s, hr->code, enh, "%s", text);
        return hr->code;
    }
    const char *text = hr->text; /* text without a code: keep the default code */
    switch (v) {
    case SMTPD_ACCEPT:
        session_reply(s, ok_code, ok_enh, "%s", text ? text : ok_text);
        return ok_code;
    case SMTPD_REJECT:
        session_reply(s, rej_code, rej_enh, "%s", text ? text : rej_text);
        return rej_code;
    case SMTPD_TEMPFAIL:
        session_reply(s, 451, "4.3.0", "%s",
                      text ? text : "Requested action aborted: local error in processing");
        return 451;
    case SMTPD_DISCONNECT:
    case SMTPD_PENDING:
        break;
    }
    session_reply(s, 421, "4.7.0", "%s %s", s->env->opts->hostname,
                  text ? text : "Closing connection");
    return 421;
}

void
session_start(smtpd_session *s, time_t now)
{
    s->now = now;
    s->connected = true;
    const smtpd_hooks *h = s->env->hooks;
    session_hook_begin(s, WAIT_CONNECT);
    smtpd_verdict v = h->on_connect ? h->on_connect(s, s->env->user) : SMTPD_ACCEPT;
    if (!session_hook_end(s, v))
        commands_finish(s, WAIT_CONNECT, v);
}

/* The budget never goes below one message of the largest size plus its trace headers,
   so a lone large message is always taken. */
static size_t
session_msg_budget(const smtpd_session *s)
{
    size_t one = s->env->opts->max_message_size + 8192;
    size_t limit = s->env->opts->max_buffered_data;
    return limit > one ? limit : one;
}

bool
session_msg_budget_take(smtpd_session *s, size_t len)
{
    size_t before = atomic_fetch_add(&s->env->buffered, len);
    if (before + len > session_msg_budget(s)) {
        atomic_fetch_sub(&s->env->buffered, len);
        return false;
    }
    s->msg_budgeted += len;
    return true;
}

size_t
session_msg_budget_reserve(const smtpd_session *s)
{
    size_t budget = session_msg_budget(s);
    return budget < 65536 ? budget : 65536;
}

size_t
session_msg_budget_free(const smtpd_session *s)
{
    size_t used = atomic_load(&s->env->buffered), limit = session_msg_budget(s);
    return used < limit ? limit - used : 0;
}

void
session_msg_release(smtpd_session *s)
{
    atomic_fetch_sub(&s->env->buffered, s->msg_budgeted);
    s->msg_budgeted = 0;
    buf_cleanup(&s->msg);
}

void
session_refuse_busy(smtpd_session *s)
{
    session_reply(s, 421, "4.7.0", "%s Error: too many connections", s->env->opts->hostname);
}

void
session_refuse_peer(smtpd_session *s)
{
    session_reply(s, 421, "4.7.0", "%s Error: too many connections from %s", s->env->opts->hostname,
                  s->client_addr);
}

bool
session_is_blocked(const smtpd_session *s)
{
    return s->waiting != WAIT_NONE || s->tls_requested;
}

bool
session_tls_requested(const smtpd_session *s)
{
    return s->tls_requested;
}

static char *
session_dup_or_null(const char *v)
{
    return v ? str_dup(v) : NULL;
}

void
session_tls_done(smtpd_session *s, const char *version, const char *cipher, const char *peer)
{
    /* RFC 3207 4.2: "discard any knowledge obtained from the client"; nothing it sent in
       plaintext after STARTTLS was read (the I/O layer dropped it) */
    session_tx_reset(s);
    sasl_reset(s);
    free(s->helo);
    free(s->auth_user);
    s->helo = NULL;
    s->auth_user = NULL;
    s->esmtp = false;
    buf_clear(&s->line);
    s->line_overflow = s->line_nomem = s->line_bad_char = s->line_last_cr = false;
    s->tls_requested = false;
    s->tls = true;
    free(s->tls_version);
    free(s->tls_cipher);
    free(s->tls_peer);
    s->tls_version = session_dup_or_null(version);
    s->tls_cipher = session_dup_or_null(cipher);
    s->tls_peer = session_dup_or_null(peer);
    const smtpd_hooks *h = s->env->hooks;
    if (!h->on_tls)
        return;
    session_hook_begin(s, WAIT_TLS);
    smtpd_verdict v = h->on_tls(s, s->env->user);
    if (!session_hook_end(s, v))
        commands_finish(s, WAIT_TLS, v);
}

bool
session_is_closing(const smtpd_session *s)
{
    return s->state == SESSION_CLOSING;
}

bool
session_in_data(const smtpd_session *s)
{
    return s->state == SESSION_DATA;
}

uint64_t
session_wait_count(const smtpd_session *s)
{
    return s->waits;
}

bool
session_line_started(const smtpd_session *s)
{
    return s->line.len > 0 || s->line_overflow || s->line_bad_char || s->line_last_cr;
}

unsigned
session_timeout_ms(const smtpd_session *s)
{
    return s->state == SESSION_DATA ? s->env->opts->data_timeout_ms
                                    : s->env->opts->command_timeout_ms;
}

buf *
session_output(smtpd_session *s)
{
    return &s->out;
}

/* A command line refused before it is parsed goes to the transcript as it came, except
   an AUTH line: its initial response is a credential (commands_log masks the ones that
   are parsed; found by fuzz_sasl). */
static void
session_log_refused(smtpd_session *s, const char *line, size_t len)
{
    if (len >= 4 && str_ieqn(line, "AUTH", 4))
        session_log(s, SMTPD_LOG_IN, "AUTH ***", 8);
    else
        session_log(s, SMTPD_LOG_IN, line, len);
}

/* A complete line arrived (CRLF stripped). */
static void
session_line_done(smtpd_session *s)
{
    s->waits++;
    const char *line = buf_str(&s->line);
    size_t len = s->line.len;
    bool overflow = s->line_overflow, bad = s->line_bad_char, nomem = s->line_nomem;
    s->line_overflow = s->line_bad_char = s->line_nomem = false;
    if (nomem) {
        /* not the client's fault: no error counted, and it may try again */
        if (s->sasl.stage != SASL_NONE)
            sasl_reset(s);
        session_reply(s, 451, "4.3.0", "Error: out of memory");
        buf_clear(&s->line);
        return;
    }
    /* RFC 5321 4.5.3.1.4: 512 octets incl. CRLF; MAIL/RCPT get the extension room */
    if (s->sasl.stage != SASL_NONE) {
        /* an AUTH response: never logged, never parsed as a command */
        session_log(s, SMTPD_LOG_IN, "***", 3);
        if (overflow) {
            sasl_reset(s);
            session_error(s, 500, "5.5.6", "Authentication Exchange line is too long");
        } else if (bad) {
            sasl_reset(s);
            session_error(s, 501, "5.5.2", "Error: invalid base64 data");
        } else {
            sasl_input(s, line, len);
        }
        buf_clear(&s->line);
        return;
    }
    /* RFC 5321 4.5.3.1.4: 512 octets; MAIL and RCPT get room for the parameters of
       RFC 1870 and RFC 6531; AUTH the 12288 of RFC 4954 4 */
    size_t limit = s->env->opts->max_command_line;
    if (len >= 4 && (str_ieqn(line, "MAIL", 4) || str_ieqn(line, "RCPT", 4)))
        limit += 64;
    else if (len >= 5 && str_ieqn(line, "AUTH ", 5))
        limit = SESSION_MAX_AUTH_LINE;
    if (len + 2 > limit)
        overflow = true;
    if (overflow) {
        session_log_refused(s, line, len);
        session_error(s, 500, "5.5.2", "Error: line too long");
    } else if (bad || memchr(line, '\0', len)) {
        session_log_refused(s, line, len);
        session_error(s, 500, "5.5.2", "Error: bad character in command");
    } else if (!str_is_utf8(line, len)) {
        session_log_refused(s, line, len);
        session_error(s, 500, "5.5.2", "Error: bad UTF-8 syntax");
    } else {
        commands_run(s, line, len);
    }
    buf_clear(&s->line);
}

/* Command mode: gather bytes up to a CRLF (a bare LF does not end the line, 2.3.8). */
static size_t
session_feed_line(smtpd_session *s, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t span = lf ? (size_t)(lf - p) : n;
    if (span) {
        int rc = s->line_overflow ? BUF_OK : buf_append(&s->line, p, span);
        if (rc != BUF_OK) {
            s->line_overflow = true; /* keep no more of this line */
            s->line_nomem = rc == BUF_ENOMEM;
        }
        s->line_last_cr = p[span - 1] == '\r';
    }
    if (!lf)
        return n;
    if (!s->line_last_cr) {
        /* a bare LF inside the command line: keep reading to the real CRLF */
        s->line_bad_char = true;
        return span + 1;
    }
    s->line_last_cr = false;
    if (!s->line_overflow && s->line.len > 0) {
        s->line.len--; /* the CR */
        s->line.data[s->line.len] = '\0';
    }
    if (memchr(buf_str(&s->line), '\r', s->line.len))
        s->line_bad_char = true; /* a bare CR inside the line */
    session_line_done(s);
    return span + 1;
}

size_t
session_feed(smtpd_session *s, const char *p, size_t n, time_t now)
{
    s->now = now;
    size_t i = 0;
    if (n && s->state == SESSION_CONNECTING)
        s->findings |= SMTPD_FINDING_EARLY_TALKER;
    while (i < n && !session_is_blocked(s) && s->state != SESSION_CLOSING &&
           s->state != SESSION_CONNECTING) {
        s->group_ended = false;
        if (s->state == SESSION_DATA) {
            i += body_feed(&s->body, p + i, n - i);
            if (body_is_done(&s->body))
                commands_end_of_data(s);
            continue;
        }
        i += session_feed_line(s, p + i, n - i);
        /* RFC 2920 3.1: after a command that must end a group, nothing may follow
           before our reply; without PIPELINING nothing may follow any command. */
        if (i < n && s->line.len == 0 && (s->group_ended || !s->esmtp || !s->env->opts->pipelining))
            s->findings |= SMTPD_FINDING_BAD_PIPELINING;
    }
    return i;
}

void
session_eof(smtpd_session *s)
{
    if (s->state != SESSION_CLOSING)
        s->findings |= SMTPD_FINDING_NO_QUIT;
    session_log(s, SMTPD_LOG_INFO, "client closed the connection", 28);
    session_set_state(s, SESSION_CLOSING);
}

void
session_timeout(smtpd_session *s)
{
    if (s->state == SESSION_CLOSING)
        return;
    session_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->env->opts->hostname);
}

void
session_shutdown(smtpd_session *s)
{
    if (s->state == SESSION_CLOSING)
        return;
    session_reply(s, 421, "4.3.2", "%s Service shutting down", s->env->opts->hostname);
}

static int
session_store_reply(smtpd_session *s, int code, const char *enhanced, const char *text)
{
    if (code && !reply_code_is_valid(code))
        return SMTPD_EINVAL;
    if (enhanced && !reply_enhanced_is_valid(enhanced, code ? code : 500))
        return SMTPD_EINVAL;
    char *copy = NULL;
    if (text) {
        /* keep it to what a reply can carry: 100 lines of 512 octets */
        copy = str_ndup(text, strnlen(text, 100 * REPLY_MAX_LINE));
        if (!copy)
            return SMTPD_ENOMEM;
    }
    session_clear_hook_reply(s);
    s->hook_reply.code = code;
    if (enhanced && code)
        snprintf(s->hook_reply.enhanced, sizeof s->hook_reply.enhanced, "%s", enhanced);
    s->hook_reply.text = copy;
    return SMTPD_OK;
}

int
session_complete(smtpd_session *s, uint64_t seq, smtpd_verdict v, int code, const char *enhanced,
                 const char *text, time_t now)
{
    if (s->waiting == WAIT_NONE || seq != s->wait_seq || v == SMTPD_PENDING)
        return SMTPD_ENOENT;
    if (s->state == SESSION_CLOSING) {
        /* a 421 (timeout, shutdown) or the client's close came first: that was the
           last word, the late answer is dropped */
        s->waiting = WAIT_NONE;
        free(s->cand.value);
        s->cand.value = NULL;
        return SMTPD_OK;
    }
    int rc = session_store_reply(s, code, enhanced, text);
    if (rc != SMTPD_OK)
        session_clear_hook_reply(s);
    s->now = now;
    session_wait kind = s->waiting;
    s->waiting = WAIT_NONE;
    commands_finish(s, kind, v);
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* The public session functions, for hooks.                                           */
/* ---------------------------------------------------------------------------------- */

SMTPD_API int
smtpd_session_set_reply(smtpd_session *s, int code, const char *enhanced, const char *text)
{
    if (!s || !s->in_hook)
        return SMTPD_ESTATE;
    return session_store_reply(s, code, enhanced, text);
}

SMTPD_API smtpd_ticket
smtpd_session_ticket(smtpd_session *s)
{
    smtpd_ticket t = {s->id, s->wait_seq};
    return t;
}

SMTPD_API uint64_t
smtpd_session_id(const smtpd_session *s)
{
    return s->id;
}

SMTPD_API smtpd_server *
smtpd_session_server(const smtpd_session *s)
{
    return s->env->server;
}

SMTPD_API const char *
smtpd_session_client_addr(const smtpd_session *s)
{
    return s->client_addr;
}

SMTPD_API int
smtpd_session_client_port(const smtpd_session *s)
{
    return s->client_port;
}

SMTPD_API const char *
smtpd_session_helo(const smtpd_session *s)
{
    return s->helo;
}

SMTPD_API int
smtpd_session_is_esmtp(const smtpd_session *s)
{
    return s->esmtp;
}

SMTPD_API const char *
smtpd_session_sender(const smtpd_session *s)
{
    return s->tx.active ? s->tx.sender : NULL;
}

SMTPD_API size_t
smtpd_session_rcpt_count(const smtpd_session *s)
{
    return s->tx.nrcpts;
}

SMTPD_API const char *
smtpd_session_rcpt(const smtpd_session *s, size_t i)
{
    return i < s->tx.nrcpts ? s->tx.rcpts[i] : NULL;
}

SMTPD_API unsigned
smtpd_session_findings(const smtpd_session *s)
{
    return s->findings | s->tx.findings;
}

SMTPD_API int
smtpd_session_is_tls(const smtpd_session *s)
{
    return s->tls;
}

SMTPD_API const char *
smtpd_session_tls_version(const smtpd_session *s)
{
    return s->tls_version;
}

SMTPD_API const char *
smtpd_session_tls_cipher(const smtpd_session *s)
{
    return s->tls_cipher;
}

SMTPD_API const char *
smtpd_session_tls_peer(const smtpd_session *s)
{
    return s->tls_peer;
}

SMTPD_API const char *
smtpd_session_auth_user(const smtpd_session *s)
{
    return s->auth_user;
}

SMTPD_API void
smtpd_session_set_user(smtpd_session *s, void *data)
{
    s->user_data = data;
}

SMTPD_API void *
smtpd_session_get_user(const smtpd_session *s)
{
    return s->user_data;
}
