/*
 * validate - an SMTP server that accepts mail only from some senders to some recipients.
 *
 * It shows the tcllib smtpd's validate hooks on libsmtpd:
 *   - on_mail accepts senders matching a pattern (fnmatch, default *@example.com and
 *     *@example.org) and the null sender; a sender in a .invalid domain gets a reply of
 *     our own (smtpd_session_set_reply); every other sender gets the seed's 553.
 *   - on_rcpt does not decide at once: it hands the recipient to a worker thread, as a
 *     real server would ask a directory or database, and answers SMTPD_PENDING. The worker
 *     looks the address up in the list given with -r (default: alice@example.com,
 *     bob@example.com, carol@example.org) and completes the ticket with
 *     smtpd_server_complete(): ACCEPT, or REJECT with the seed's 553. The postmaster
 *     never gets here: the library accepts it by itself.
 *   - on_deliver prints each message the way catch does (see catch.c for the framing).
 *
 * usage: validate [-v] [-o name=value]... [-s PATTERN]... [-r RCPT]... [-d MS] [ADDR [PORT]]
 *   -s  accept senders matching PATTERN (replaces the default patterns)
 *   -r  accept mail to RCPT (replaces the default recipients)
 *   -d  the worker's simulated lookup time per recipient, in milliseconds (default 0)
 *   the rest as in catch: -o server option, -v transcript on stderr, ADDR 127.0.0.1,
 *   PORT 1025 (0 = any free port); prints "listening on ADDR:PORT"; SIGINT/SIGTERM exit 0.
 *
 * The plumbing (options, signals, message printing) repeats catch.c so that each example
 * reads on its own.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <smtpd.h>

/* One recipient waiting for the worker. */
struct lookup {
    struct lookup *next;
    smtpd_ticket ticket; /* names the pending RCPT; the session may be gone by the answer */
    char *rcpt;          /* a copy: the hook's string dies when the hook returns */
};

struct validate_app {
    smtpd_server *srv;
    FILE *out;
    int verbose;
    const char **senders; /* fnmatch patterns, domains in lower case */
    size_t nsenders;
    const char **rcpts; /* accepted recipients */
    size_t nrcpts;
    unsigned delay_ms;

    /* The worker's queue. Hooks push on the I/O thread, the worker pops. Its length is
       bounded by the library: a session with a pending RCPT reads no further command,
       so there is at most one entry per open session (max-sessions). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lookup *head, **tail;
    int quit;
};

struct validate_stopper {
    smtpd_server *srv;
    sigset_t set; /* SIGINT, SIGTERM: stop the server; SIGUSR1: just end the thread */
};

static const char *const validate_default_senders[] = {"*@example.com", "*@example.org"};
static const char *const validate_default_rcpts[] = {"alice@example.com", "bob@example.com",
                                                     "carol@example.org"};

static void
validate_usage(void)
{
    fprintf(stderr, "usage: validate [-v] [-o name=value]... [-s PATTERN]... [-r RCPT]... "
                    "[-d MS] [ADDR [PORT]]\n");
}

/*
 * Does sender match one of the patterns? RFC 5321 2.4: the domain is case-insensitive
 * but the local part is not, so only the domain is folded to lower case (the patterns
 * are written in lower case) before fnmatch; "Alice@Example.COM" matches *@example.com.
 */
static int
validate_sender_is_allowed(const struct validate_app *app, const char *sender)
{
    char buf[1024];
    const char *at = strrchr(sender, '@');
    size_t len = strlen(sender), i;

    if (at == NULL || len >= sizeof buf) /* RFC 5321 4.5.3.1.3: paths are <= 256 octets */
        return 0;
    memcpy(buf, sender, len + 1);
    for (i = (size_t)(at - sender); i < len; i++)
        if (buf[i] >= 'A' && buf[i] <= 'Z')
            buf[i] = (char)(buf[i] - 'A' + 'a');
    for (i = 0; i < app->nsenders; i++)
        if (fnmatch(app->senders[i], buf, 0) == 0)
            return 1;
    return 0;
}

/* Two addresses are the same mailbox: local parts equal, domains equal in any case. */
static int
validate_addr_is_equal(const char *a, const char *b)
{
    const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');

    if (at_a == NULL || at_b == NULL)
        return at_a == at_b && strcmp(a, b) == 0;
    return at_a - a == at_b - b && memcmp(a, b, (size_t)(at_a - a)) == 0 &&
           strcasecmp(at_a, at_b) == 0;
}

static smtpd_verdict
validate_mail_cb(smtpd_session *s, const char *sender, void *user)
{
    const struct validate_app *app = user;
    size_t len = strlen(sender);

    /* RFC 5321 4.5.5: the null sender carries bounces, which must always be accepted. */
    if (len == 0 || validate_sender_is_allowed(app, sender))
        return SMTPD_ACCEPT;
    /* RFC 2606: .invalid can never exist, so no reply could ever reach this sender.
       Say so in our own words instead of the generic 553. */
    if (len > 8 && strcasecmp(sender + len - 8, ".invalid") == 0) {
        smtpd_session_set_reply(s, 550, "5.1.8",
                                "Sender address rejected: domain .invalid cannot receive mail");
        return SMTPD_REJECT;
    }
    return SMTPD_REJECT; /* the seed's 553 5.7.1 */
}

/*
 * RCPT: queue the lookup and answer later. The library holds this session (and its
 * pipelined commands) until smtpd_server_complete, and keeps replies in order.
 */
static smtpd_verdict
validate_rcpt_cb(smtpd_session *s, const char *rcpt, void *user)
{
    struct validate_app *app = user;
    struct lookup *lk = malloc(sizeof *lk);

    if (lk == NULL || (lk->rcpt = strdup(rcpt)) == NULL) {
        free(lk);
        return SMTPD_TEMPFAIL; /* 451: the client will try again later */
    }
    lk->next = NULL;
    lk->ticket = smtpd_session_ticket(s); /* before returning PENDING, as the API asks */
    pthread_mutex_lock(&app->lock);
    *app->tail = lk;
    app->tail = &lk->next;
    pthread_cond_signal(&app->cond);
    pthread_mutex_unlock(&app->lock);
    return SMTPD_PENDING;
}

/* Print a message exactly as catch does; see catch.c for why it is done this way. */
static smtpd_verdict
validate_deliver_cb(smtpd_session *s, const smtpd_message *msg, void *user)
{
    FILE *out = ((struct validate_app *)user)->out;
    size_t i;
    unsigned bit;
    int any = 0;

    (void)s;
    fprintf(out, "=== message %s from <%s> to ", msg->id, msg->sender);
    for (i = 0; i < msg->rcpt_count; i++)
        fprintf(out, "%s<%s>", i ? "," : "", msg->rcpts[i]);
    fprintf(out, " size %zu trace %zu utf8 %d 8bitmime %d findings ", msg->size, msg->trace_size,
            msg->smtputf8 ? 1 : 0, msg->body_8bitmime ? 1 : 0);
    for (bit = 1; bit != 0; bit <<= 1) {
        const char *name = (msg->findings & bit) ? smtpd_finding_name(bit) : NULL;

        if (name) {
            fprintf(out, "%s%s", any ? "," : "", name);
            any = 1;
        }
    }
    fprintf(out, "%s\n", any ? "" : "-");
    if (fwrite(msg->data, 1, msg->size, out) != msg->size || fputs("=== end\n", out) == EOF ||
        fflush(out) == EOF)
        return SMTPD_TEMPFAIL;
    return SMTPD_ACCEPT;
}

static void
validate_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    static const char *const arrow[] = {"<-", "->", "--"};
    int n = len > 4096 ? 4096 : (int)len;

    if (!((struct validate_app *)user)->verbose)
        return;
    fprintf(stderr, "validate: %llu %s %.*s\n", (unsigned long long)smtpd_session_id(s), arrow[dir],
            n, line);
}

/*
 * The worker: the slow part of a real server (a directory lookup). It may block as
 * long as it likes, because it is not the I/O thread. It ends when told to and the
 * queue is empty; answers for sessions that are gone come back SMTPD_ENOENT and are
 * simply dropped.
 */
static void *
validate_worker_main(void *arg)
{
    struct validate_app *app = arg;

    for (;;) {
        struct lookup *lk;
        smtpd_verdict verdict = SMTPD_REJECT;
        size_t i;

        pthread_mutex_lock(&app->lock);
        while (app->head == NULL && !app->quit)
            pthread_cond_wait(&app->cond, &app->lock);
        lk = app->head;
        if (lk != NULL) {
            app->head = lk->next;
            if (app->head == NULL)
                app->tail = &app->head;
        }
        pthread_mutex_unlock(&app->lock);
        if (lk == NULL)
            return NULL; /* quit, and nothing left */

        if (app->delay_ms > 0) {
            struct timespec ts = {(time_t)(app->delay_ms / 1000),
                                  (long)(app->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        for (i = 0; i < app->nrcpts; i++)
            if (validate_addr_is_equal(lk->rcpt, app->rcpts[i]))
                verdict = SMTPD_ACCEPT;
        /* code 0: the default reply for the verdict, 250 2.1.5 or the seed's 553 5.7.1. */
        smtpd_server_complete(app->srv, lk->ticket, verdict, 0, NULL, NULL);
        free(lk->rcpt);
        free(lk);
    }
}

/* See catch.c: SIGINT and SIGTERM are taken by sigwait in this thread. */
static void *
validate_stopper_main(void *arg)
{
    struct validate_stopper *st = arg;
    int sig;

    if (sigwait(&st->set, &sig) == 0 && sig != SIGUSR1)
        smtpd_server_stop(st->srv, -1);
    return NULL;
}

static int
validate_configure(smtpd_server *srv, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char name[128];
    int n, rc;

    if (eq == NULL) {
        fprintf(stderr, "validate: -o %s: expected name=value\n", arg);
        return -1;
    }
    n = snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    if (n < 0 || (size_t)n >= sizeof name) {
        fprintf(stderr, "validate: -o %s: name too long\n", arg);
        return -1;
    }
    rc = smtpd_server_configure(srv, name, eq + 1);
    if (rc != 0) {
        fprintf(stderr, "validate: -o %s: %s: %s\n", arg, smtpd_strerror(rc),
                smtpd_server_errmsg(srv));
        return -1;
    }
    return 0;
}

/* -d: a number of milliseconds, at most a minute (strtoul with its end and errno checks). */
static int
validate_parse_ms(const char *s, unsigned *ms)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > 60000)
        return -1;
    *ms = (unsigned)v;
    return 0;
}

/* Collect the -s and -r arguments. argv outlives the server, so pointers suffice. */
static int
validate_parse_args(struct validate_app *app, int argc, char **argv, const char **addr,
                    const char **port)
{
    int opt;

    while ((opt = getopt(argc, argv, "vo:s:r:d:")) != -1) {
        switch (opt) {
        case 'v':
            app->verbose = 1;
            break;
        case 'o':
            if (validate_configure(app->srv, optarg) != 0)
                return -1;
            break;
        case 's':
            app->senders[app->nsenders++] = optarg;
            break;
        case 'r':
            app->rcpts[app->nrcpts++] = optarg;
            break;
        case 'd':
            if (validate_parse_ms(optarg, &app->delay_ms) == 0)
                break;
            fprintf(stderr, "validate: -d %s: expected 0..60000\n", optarg);
            return -1;
        default:
            validate_usage();
            return -1;
        }
    }
    if (argc - optind > 2) {
        validate_usage();
        return -1;
    }
    if (optind < argc)
        *addr = argv[optind];
    if (optind + 1 < argc)
        *port = argv[optind + 1];
    if (app->nsenders == 0) {
        app->nsenders = sizeof validate_default_senders / sizeof validate_default_senders[0];
        memcpy(app->senders, validate_default_senders, sizeof validate_default_senders);
    }
    if (app->nrcpts == 0) {
        app->nrcpts = sizeof validate_default_rcpts / sizeof validate_default_rcpts[0];
        memcpy(app->rcpts, validate_default_rcpts, sizeof validate_default_rcpts);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *port = "1025";
    struct validate_app app;
    struct validate_stopper st;
    smtpd_hooks hooks;
    pthread_t worker, stopper;
    int rc, status = 2, have_worker = 0;

    memset(&app, 0, sizeof app);
    app.out = stdout;
    app.tail = &app.head;
    pthread_mutex_init(&app.lock, NULL);
    pthread_cond_init(&app.cond, NULL);
    /* At most one pattern or recipient per argument, plus room for the defaults. */
    app.senders = calloc((size_t)argc + 3, sizeof *app.senders);
    app.rcpts = calloc((size_t)argc + 3, sizeof *app.rcpts);

    memset(&hooks, 0, sizeof hooks);
    hooks.on_mail = validate_mail_cb;
    hooks.on_rcpt = validate_rcpt_cb;
    hooks.on_deliver = validate_deliver_cb;
    hooks.on_log = validate_log_cb;
    app.srv = smtpd_server_new(NULL, &hooks, &app);
    if (app.srv == NULL || app.senders == NULL || app.rcpts == NULL) {
        fprintf(stderr, "validate: out of memory\n");
        status = 1;
        goto out;
    }
    if (validate_parse_args(&app, argc, argv, &addr, &port) != 0)
        goto out;

    status = 1;
    rc = smtpd_server_listen(app.srv, addr, port);
    if (rc != 0) {
        fprintf(stderr, "validate: listen on %s:%s: %s: %s\n", addr, port, smtpd_strerror(rc),
                smtpd_server_errmsg(app.srv));
        goto out;
    }

    /* Block the stop signals before the first thread, so all threads inherit the mask. */
    st.srv = app.srv;
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGUSR1);
    rc = pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    if (rc == 0)
        rc = pthread_create(&worker, NULL, validate_worker_main, &app);
    if (rc != 0) {
        fprintf(stderr, "validate: worker thread: %s\n", strerror(rc));
        goto out;
    }
    have_worker = 1;
    rc = pthread_create(&stopper, NULL, validate_stopper_main, &st);
    if (rc != 0) {
        fprintf(stderr, "validate: signal thread: %s\n", strerror(rc));
        goto out;
    }

    printf("listening on %s:%d\n", addr, smtpd_server_bound_port(app.srv, 0));
    fflush(stdout);

    rc = smtpd_server_run(app.srv);
    if (rc != 0)
        fprintf(stderr, "validate: %s: %s\n", smtpd_strerror(rc), smtpd_server_errmsg(app.srv));
    else
        status = 0;
    pthread_kill(stopper, SIGUSR1);
    pthread_join(stopper, NULL);

out:
    /* The worker outlives smtpd_server_run: sessions waiting for it during the stop
       grace needed their answers. It must end before the server is freed. */
    if (have_worker) {
        pthread_mutex_lock(&app.lock);
        app.quit = 1;
        pthread_cond_signal(&app.cond);
        pthread_mutex_unlock(&app.lock);
        pthread_join(worker, NULL);
    }
    smtpd_server_free(app.srv);
    pthread_cond_destroy(&app.cond);
    pthread_mutex_destroy(&app.lock);
    free(app.senders);
    free(app.rcpts);
    return status;
}
