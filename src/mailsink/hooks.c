/*
 * hooks.c - mailsink's libsmtpd hooks: the built-in rules, the seed's hooks as programs
 * (run on the exec pool, answered later through smtpd_server_complete), the hand-over of
 * each message to the store writer, and -v transcripts. Runs on the server's I/O thread:
 * nothing here blocks.
 */
#include "mailsink/app.h"

#include "mailsink/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pending hook answered by a program: what to say for which exit status. */
typedef struct exec_job {
    smtpd_server *srv;
    smtpd_ticket ticket;
    int reject_code;        /* 550 for the host, 553 for sender/recipient */
    const char *reject_enh; /* NULL for the connect-time reply */
    ingest *ingest;         /* deliver only: where the message goes on exit 0 */
    ingest_item *item;      /* deliver only */
} exec_job;

static const char exec_unavailable[] = "Error: the hook program failed, try again later";
static const char queue_full[] = "Error: too much mail queued, try later";

/* A validate-*-exec program finished (on an exec worker thread). */
static void
hooks_validate_done_cb(const exec_result *r, void *ctx)
{
    exec_job *job = ctx;
    if (r->status == 0)
        smtpd_server_complete(job->srv, job->ticket, SMTPD_ACCEPT, 0, NULL, NULL);
    else if (r->status < 0)
        smtpd_server_complete(job->srv, job->ticket, SMTPD_TEMPFAIL, 451, "4.3.0",
                              exec_unavailable);
    else if (!job->reject_enh) /* the host: libsmtpd says "550 Access denied: <text>" */
        smtpd_server_complete(job->srv, job->ticket, SMTPD_REJECT, 0, NULL,
                              r->first_line[0] ? r->first_line : NULL);
    else if (r->first_line[0])
        smtpd_server_complete(job->srv, job->ticket, SMTPD_REJECT, job->reject_code,
                              job->reject_enh, r->first_line);
    else
        smtpd_server_complete(job->srv, job->ticket, SMTPD_REJECT, 0, NULL, NULL);
    free(job);
}

/* Run argv plus one argument (the value under judgement) and answer PENDING. The value
   is an argv entry, never part of a command line: no shell ever sees it. */
static smtpd_verdict
hooks_run_validate(smtpd_session *s, app *a, char **argv, const char *value, int code,
                   const char *enh)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **full = calloc(n + 2, sizeof *full);
    exec_job *job = calloc(1, sizeof *job);
    char env_addr[128];
    snprintf(env_addr, sizeof env_addr, "MAILSINK_CLIENT_ADDR=%s", smtpd_session_client_addr(s));
    char *env[] = {env_addr, NULL};
    if (!full || !job) {
        free(full);
        free(job);
        return SMTPD_TEMPFAIL;
    }
    memcpy(full, argv, n * sizeof *full);
    full[n] = (char *)value;
    job->srv = smtpd_session_server(s);
    job->ticket = smtpd_session_ticket(s);
    job->reject_code = code;
    job->reject_enh = enh;
    int rc = exec_pool_run(a->exec, full, env, NULL, 0, hooks_validate_done_cb, job);
    free(full);
    if (rc != 0) {
        free(job);
        return SMTPD_TEMPFAIL;
    }
    return SMTPD_PENDING;
}

static smtpd_verdict
hooks_on_connect(smtpd_session *s, void *user)
{
    app *a = user;
    const char *addr = smtpd_session_client_addr(s);
    if (!policy_host_allowed(a->policy, addr)) {
        smtpd_session_set_reply(s, 0, NULL, "host not allowed");
        return SMTPD_REJECT;
    }
    if (a->host_argv)
        return hooks_run_validate(s, a, a->host_argv, addr, 550, NULL);
    return SMTPD_ACCEPT;
}

static smtpd_verdict
hooks_on_mail(smtpd_session *s, const char *sender, void *user)
{
    app *a = user;
    if (!policy_sender_allowed(a->policy, sender))
        return SMTPD_REJECT; /* the seed's 553 */
    if (a->sender_argv)
        return hooks_run_validate(s, a, a->sender_argv, sender, 553, "5.7.1");
    return SMTPD_ACCEPT;
}

static smtpd_verdict
hooks_on_rcpt(smtpd_session *s, const char *rcpt, void *user)
{
    app *a = user;
    if (!policy_rcpt_allowed(a->policy, rcpt))
        return SMTPD_REJECT;
    if (a->rcpt_argv)
        return hooks_run_validate(s, a, a->rcpt_argv, rcpt, 553, "5.7.1");
    return SMTPD_ACCEPT;
}

/* The deliver program finished: exit 0 -> store (250 after commit); 75 (EX_TEMPFAIL)
   -> 451; anything else -> 554. */
static void
hooks_deliver_done_cb(const exec_result *r, void *ctx)
{
    exec_job *job = ctx;
    if (r->status == 0 && ingest_enqueue(job->ingest, job->item) == 0) {
        free(job);
        return;
    }
    if (r->status == 0) /* the program took it; the store's queue did not */
        smtpd_server_complete(job->srv, job->ticket, SMTPD_TEMPFAIL, 451, "4.3.0", queue_full);
    else if (r->status == 75 || r->status < 0)
        smtpd_server_complete(job->srv, job->ticket, SMTPD_TEMPFAIL, 451, "4.3.0",
                              r->status == 75 && r->first_line[0] ? r->first_line
                                                                  : exec_unavailable);
    else
        smtpd_server_complete(job->srv, job->ticket, SMTPD_REJECT, 554, "5.7.1",
                              r->first_line[0] ? r->first_line
                                               : "Delivery refused by the deliver program");
    ingest_item_free(job->item);
    free(job);
}

static void
hooks_free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* MAILSINK_SENDER, MAILSINK_RECIPIENTS (comma-separated), MAILSINK_ID,
   MAILSINK_CLIENT_ADDR, MAILSINK_HELO: values in the environment, never in a command. */
static char **
hooks_deliver_env(const ingest_item *it)
{
    char **env = calloc(6, sizeof *env);
    if (!env)
        return NULL;
    size_t rlen = sizeof "MAILSINK_RECIPIENTS=";
    for (size_t i = 0; i < it->rcpt_count; i++)
        rlen += strlen(it->rcpts[i]) + 1;
    if (!(env[0] = malloc(rlen)))
        goto fail;
    size_t off = (size_t)snprintf(env[0], rlen, "MAILSINK_RECIPIENTS=");
    for (size_t i = 0; i < it->rcpt_count; i++)
        off += (size_t)snprintf(env[0] + off, rlen - off, "%s%s", i ? "," : "", it->rcpts[i]);
    const char *names[] = {"MAILSINK_SENDER", "MAILSINK_ID", "MAILSINK_CLIENT_ADDR",
                           "MAILSINK_HELO"};
    const char *values[] = {it->sender, it->id, it->client_addr, it->helo};
    for (size_t i = 0; i < 4; i++) {
        size_t len = strlen(names[i]) + strlen(values[i]) + 2;
        if (!(env[i + 1] = malloc(len)))
            goto fail;
        snprintf(env[i + 1], len, "%s=%s", names[i], values[i]);
    }
    return env;
fail:
    hooks_free_env(env);
    return NULL;
}

static smtpd_verdict
hooks_on_deliver(smtpd_session *s, const smtpd_message *m, void *user)
{
    app *a = user;
    ingest_item *it = ingest_item_new(s, m);
    if (!it)
        return SMTPD_TEMPFAIL;
    if (!a->deliver_argv) {
        if (ingest_enqueue(a->ingest, it) == 0)
            return SMTPD_PENDING; /* completed by the ingest thread after COMMIT */
        ingest_item_free(it);
        smtpd_session_set_reply(s, 451, "4.3.0", queue_full);
        return SMTPD_TEMPFAIL;
    }
    exec_job *job = calloc(1, sizeof *job);
    char **env = hooks_deliver_env(it);
    int rc = -1;
    if (job && env) {
        job->srv = smtpd_session_server(s);
        job->ticket = it->ticket;
        job->ingest = a->ingest;
        job->item = it;
        rc = exec_pool_run(a->exec, a->deliver_argv, env, it->raw, it->raw_len,
                           hooks_deliver_done_cb, job);
    }
    hooks_free_env(env);
    if (rc == 0)
        return SMTPD_PENDING;
    free(job);
    ingest_item_free(it);
    return SMTPD_TEMPFAIL;
}

static void
hooks_on_log(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    (void)user;
    if (!log_is_verbose())
        return;
    char d = dir == SMTPD_LOG_IN ? '<' : dir == SMTPD_LOG_OUT ? '>' : '-';
    log_transcript(smtpd_session_id(s), d, line, len);
}

/* AUTH: --auth-accept-any takes anyone (the user is recorded), --auth-file checks. */
static smtpd_verdict
hooks_on_auth(smtpd_session *s, const smtpd_auth *auth, void *user)
{
    app *a = user;
    if (a->cfg->auth_accept_any)
        return SMTPD_ACCEPT;
    return a->auth && auth_file_check(a->auth, s, auth) ? SMTPD_ACCEPT : SMTPD_REJECT;
}

void
app_hooks(smtpd_hooks *h, const config *c)
{
    memset(h, 0, sizeof *h);
    if (c->auth_accept_any || c->auth_file)
        h->on_auth = hooks_on_auth; /* without it libsmtpd offers no AUTH */
    h->on_connect = hooks_on_connect;
    h->on_mail = hooks_on_mail;
    h->on_rcpt = hooks_on_rcpt;
    h->on_deliver = hooks_on_deliver;
    h->on_log = hooks_on_log;
}
