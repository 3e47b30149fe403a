/*
 * main.c - the mailsink program: read the configuration, open the store, start libsmtpd
 * with mailsink's hooks, serve until SIGTERM/SIGINT, then stop accepting, let sessions
 * finish within the grace period, write what is queued and exit 0.
 *
 * Exit status: 0 after a clean stop, 1 for a failure at run time, 2 for bad
 * configuration (then nothing was started: every check happens before the first
 * listener accepts). Subcommands (list, show, ...) are in cli/subcommands.c.
 */
#include "mailsink/app.h"
#include "mailsink/cli/config.h"
#include "mailsink/cli/subcommands.h"
#include "mailsink/http/http.h"
#include "mailsink/log.h"
#include "mailsink/mime.h"
#include "mailsink/store/export.h"
#include "mailsink/store/store.h"
#include "mailsink/tls_cert.h"

#include <smtpd.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define EXEC_WORKERS 4

/* mkdir -p for the database's directory (mode 0700: the mail is private). */
static int
main_make_parent_dir(const char *path, char *err, size_t errsize)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, errsize, "--db: path too long");
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errsize, "--db: cannot create directory %.300s: %s", dir, strerror(errno));
    return -1;
}

/* Split every configured exec command once, at start. */
static int
main_split_execs(app *a, const config *c, char *err, size_t errsize)
{
    struct {
        const char *cmd;
        char ***argv;
    } execs[] = {{c->deliver_exec, &a->deliver_argv},
                 {c->validate_host_exec, &a->host_argv},
                 {c->validate_sender_exec, &a->sender_argv},
                 {c->validate_recipient_exec, &a->rcpt_argv}};
    for (size_t i = 0; i < sizeof execs / sizeof execs[0]; i++) {
        if (!execs[i].cmd)
            continue;
        *execs[i].argv = config_split_argv(execs[i].cmd, err, errsize);
        if (!*execs[i].argv)
            return -1;
        if (!a->exec && !(a->exec = exec_pool_new(EXEC_WORKERS, c->exec_timeout_s))) {
            snprintf(err, errsize, "cannot start the exec workers");
            return -1;
        }
    }
    return 0;
}

/* The certificate the server uses: --tls-cert/--tls-key, or the --tls-self-signed pair
   kept beside the database. */
typedef struct main_tls {
    char *cert;
    char *key;
    char fingerprint[TLS_CERT_FINGERPRINT_SIZE];
} main_tls;

/* Where mailsink keeps its files: beside the database, else the default data dir. */
static void
main_data_dir(const config *c, char *out, size_t size)
{
    if (strcmp(c->db_path, ":memory:") != 0) {
        snprintf(out, size, "%s", c->db_path);
        char *slash = strrchr(out, '/');
        if (slash && slash != out)
            *slash = '\0';
        else
            snprintf(out, size, "%s", slash ? "/" : ".");
        return;
    }
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') /* the XDG spec: relative values are to be ignored */
        snprintf(out, size, "%s/mailsink", xdg);
    else
        snprintf(out, size, "%s/.local/share/mailsink", home && *home ? home : ".");
}

static int
main_prepare_tls(const config *c, main_tls *t, char *err, size_t errsize)
{
    if (c->tls_self_signed) {
        char dir[PATH_MAX], host[256];
        main_data_dir(c, dir, sizeof dir);
        if (c->hostname)
            snprintf(host, sizeof host, "%s", c->hostname);
        else if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        return tls_cert_self_signed(dir, host, &t->cert, &t->key, t->fingerprint,
                                    sizeof t->fingerprint, err, errsize);
    }
    if (!c->tls_cert)
        return 0;
    t->cert = strdup(c->tls_cert);
    t->key = strdup(c->tls_key ? c->tls_key : "");
    if (!t->cert || !t->key ||
        tls_cert_fingerprint(t->cert, t->fingerprint, sizeof t->fingerprint) != 0) {
        snprintf(err, errsize, "--tls-cert %.300s: no certificate in the file", c->tls_cert);
        return -1;
    }
    return 0;
}

/* Listen on every --smtp (plain) and --smtps (implicit TLS) address, in that order. */
static int
main_listen_all(const config *c, smtpd_server *srv, char *err, size_t errsize)
{
    const config_strings *lists[] = {&c->smtp, &c->smtps};
    const char *flags[] = {"--smtp", "--smtps"};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < lists[k]->count; i++) {
            char *addr = NULL, *port = NULL;
            int rc = config_parse_listen(lists[k]->items[i], &addr, &port);
            if (rc == 0)
                rc = k ? smtpd_server_listen_tls(srv, addr, port)
                       : smtpd_server_listen(srv, addr, port);
            free(addr);
            free(port);
            if (rc != 0) {
                snprintf(err, errsize, "%s %s: %s", flags[k], lists[k]->items[i],
                         rc == -1 ? "bad address" : smtpd_server_errmsg(srv));
                return -1;
            }
        }
    }
    return 0;
}

/* libsmtpd's options from mailsink's configuration. */
static smtpd_server *
main_new_server(const config *c, app *a, const main_tls *t, char *err, size_t errsize)
{
    smtpd_options o;
    smtpd_options_init(&o);
    o.hostname = c->hostname;
    o.max_message_size = c->max_message_size;
    o.max_recipients = c->max_recipients;
    o.max_sessions = c->max_connections;
    o.max_sessions_per_ip =
        c->max_connections_per_ip ? c->max_connections_per_ip : c->max_connections;
    o.max_buffered_data = c->max_buffered_data;
    o.command_timeout_ms = c->command_timeout_s * 1000u;
    o.data_timeout_ms = c->data_timeout_s * 1000u;
    o.stop_grace_ms = c->stop_grace_s * 1000u;
    o.tls_cert_file = t->cert;
    o.tls_key_file = t->key;
    o.require_tls = c->require_tls;
    o.allow_insecure_auth = c->allow_insecure_auth;
    o.auth_required = c->auth_required;
    smtpd_hooks hooks;
    app_hooks(&hooks, c);
    smtpd_server *srv = smtpd_server_new(&o, &hooks, a);
    if (!srv) {
        snprintf(err, errsize, "invalid server options (--hostname, limits)");
        return NULL;
    }
    if (smtpd_server_configure(srv, "bare-lf", c->bare_lf) != SMTPD_OK) {
        snprintf(err, errsize, "--bare-lf: %s", smtpd_server_errmsg(srv));
        smtpd_server_free(srv);
        return NULL;
    }
    if (main_listen_all(c, srv, err, errsize) != 0) {
        smtpd_server_free(srv);
        return NULL;
    }
    return srv;
}

/* The order matters: programs still running may hand messages to the writer, and the
   writer completes answers on the (stopped, not yet freed) server. */
static void
main_app_cleanup(app *a, smtpd_server *srv, http_server *http)
{
    exec_pool_free(a->exec);  /* finishes running programs first */
    http_detach_ingest(http); /* no more POST /api/v1/send into the writer */
    ingest_stop(a->ingest);   /* writes what is queued; api_send's answers go to HTTP */
    http_stop(http);          /* sends those answers, ends streams and waiters */
    smtpd_server_free(srv);
    policy_free(a->policy);
    config_free_argv(a->deliver_argv);
    config_free_argv(a->host_argv);
    config_free_argv(a->sender_argv);
    config_free_argv(a->rcpt_argv);
    auth_file_free(a->auth);
}

static void
main_announce(const config *c, const app *a, smtpd_server *srv, const main_tls *t,
              const http_server *http)
{
    size_t index = 0;
    const config_strings *lists[] = {&c->smtp, &c->smtps};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < lists[k]->count; i++, index++) {
            char *addr = NULL, *port = NULL;
            const char *tls = k ? " (implicit TLS)" : "";
            int bound = smtpd_server_bound_port(srv, index);
            if (config_parse_listen(lists[k]->items[i], &addr, &port) == 0) {
                log_msg(LOG_INFO, "listening on %s%s%s:%d%s", strchr(addr, ':') ? "[" : "", addr,
                        strchr(addr, ':') ? "]" : "", bound, tls);
            } else {
                /* out of memory (the text parsed at start-up): the line still comes, from
                   the text as given, as whoever waits for it needs the port */
                const char *item = lists[k]->items[i], *colon = strrchr(item, ':');
                int host_len = colon ? (int)(colon - item) : (int)strlen(item);
                log_msg(LOG_INFO, "listening on %.*s:%d%s", host_len, item, bound, tls);
            }
            free(addr);
            free(port);
        }
    }
    if (t->cert)
        log_msg(LOG_INFO, "TLS certificate %s, SHA-256 fingerprint %s", t->cert, t->fingerprint);
    if (a->auth)
        log_msg(LOG_INFO, "AUTH: %zu user(s) from %s", auth_file_count(a->auth), c->auth_file);
    else if (c->auth_accept_any)
        log_msg(LOG_INFO, "AUTH: any user and password accepted (and recorded)");
    /* tests read this line (tests/mailsink/mslib.py): keep its shape */
    if (http)
        log_msg(LOG_INFO, "HTTP on %s://%s%s", c->http_tls_cert ? "https" : "http",
                http_bound(http), c->webroot ? c->webroot : "/");
    log_msg(LOG_INFO, "database %s", c->db_path);
}

/* Everything checked and opened; serve until a signal. */
static int
main_serve_until_signal(const config *c, const app *a, smtpd_server *srv, const main_tls *t,
                        const http_server *http, const sigset_t *sigs)
{
    if (smtpd_server_start(srv) != SMTPD_OK) {
        /* nothing was served: a certificate that does not load is bad configuration */
        log_msg(LOG_ERROR, "%s", smtpd_server_errmsg(srv));
        return 2;
    }
    main_announce(c, a, srv, t, http);
    int sig = 0;
    sigwait(sigs, &sig);
    log_msg(LOG_INFO, "%s: stopping (grace %u s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            c->stop_grace_s);
    smtpd_server_stop(srv, (int)(c->stop_grace_s * 1000u));
    return 0;
}

static int
main_serve(const config *c)
{
    char err[512] = "";
    app a = {.cfg = c};
    store *st = NULL;
    exporter *ex = NULL;
    smtpd_server *srv = NULL;
    http_server *http = NULL;
    main_tls tls = {0};
    int status = 2;

    /* the signals are waited for by this thread; every thread started below inherits
       the mask, so none of them is interrupted */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* a file size limit (ulimit -f) must fail the write with EFBIG, which the store
       answers with a 4xx, not kill the process and every session with it */
    signal(SIGXFSZ, SIG_IGN);

    mime_init();
    if (strcmp(c->db_path, ":memory:") != 0 &&
        main_make_parent_dir(c->db_path, err, sizeof err) != 0)
        goto out;
    if (!(st = store_open(c->db_path, STORE_WRITER, err, sizeof err)))
        goto out;
    if (!(ex = export_open(c->maildir, c->mbox, c->eml_dir, err, sizeof err)))
        goto out;
    if (!(a.policy = policy_new(c, err, sizeof err)))
        goto out;
    if (main_split_execs(&a, c, err, sizeof err) != 0)
        goto out;
    if (c->auth_file && !(a.auth = auth_file_load(c->auth_file, err, sizeof err)))
        goto out;
    if (main_prepare_tls(c, &tls, err, sizeof err) != 0)
        goto out;
    if (!(srv = main_new_server(c, &a, &tls, err, sizeof err)))
        goto out;
    ingest_limits lim = {c->max_messages, c->max_age_s, c->max_queued_data};
    if (!(a.ingest = ingest_start(st, ex, &lim))) {
        snprintf(err, sizeof err, "cannot start the store writer");
        goto out;
    }
    if (strcmp(c->http, "none") != 0) {
        if (!(http = http_start(c, store_path(st), a.ingest, err, sizeof err)))
            goto out;
        ingest_on_stored(a.ingest, http_stored, http);
    }
    status = main_serve_until_signal(c, &a, srv, &tls, http, &sigs);
out:
    if (status == 2 && err[0])
        log_msg(LOG_ERROR, "%s", err);
    main_app_cleanup(&a, srv, http);
    export_close(ex);
    store_close(st);
    free(tls.cert);
    free(tls.key);
    return status;
}

int
main(int argc, char **argv)
{
    config c;
    char err[512];
    if (config_load(&c, argc, argv, environ, err, sizeof err) != 0) {
        fprintf(stderr, "mailsink: %s\n", err);
        config_cleanup(&c);
        return 2;
    }
    log_init(c.log_format == CONFIG_LOG_JSON, c.verbose);
    int status = 0;
    switch (c.command) {
    case CONFIG_CMD_HELP:
        fputs(config_usage(), stdout);
        break;
    case CONFIG_CMD_VERSION:
        printf("mailsink %s (libsmtpd %s)\n", SMTPD_VERSION_STRING, SMTPD_VERSION_STRING);
        break;
    case CONFIG_CMD_SERVE:
        status = main_serve(&c);
        break;
    case CONFIG_CMD_LIST:
    case CONFIG_CMD_SHOW:
    case CONFIG_CMD_RAW:
    case CONFIG_CMD_DELETE:
    case CONFIG_CMD_WAIT:
        status = subcommands_run(&c);
        break;
    }
    config_cleanup(&c);
    return status;
}
