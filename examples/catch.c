/*
 * catch - an SMTP sink that prints every message it receives.
 *
 * This is the tcllib smtpd's own use case on libsmtpd: accept any sender and any
 * recipient, and hand each message to a deliver hook. The hook writes the message to
 * stdout in a framing that a program (our end-to-end tests) can parse exactly:
 *
 *     === message <id> from <sender> to <rcpt1>,<rcpt2> size <n> trace <t> utf8 <0|1>
 *         8bitmime <0|1> findings <name,name|->            (all on one line)
 *     <exactly n octets: our Return-Path and Received headers (the first t octets),
 *      then the message as the client sent it, after dot-unstuffing>
 *     === end
 *
 * usage: catch [-v] [-o name=value]... [ADDR [PORT]]
 *   ADDR  the address to listen on (default 127.0.0.1)
 *   PORT  the port (default 1025; 0 = any free port)
 *   -o    a server option by its smtpd_server_configure() name: -o max-message-size=1000
 *   -v    print the SMTP transcript on stderr
 *
 * Once it accepts connections it prints "listening on ADDR:PORT" with the real port.
 * SIGINT or SIGTERM stop it: open sessions may finish (the stop-grace option), then it
 * exits 0. Exit status 1 is a runtime error, 2 a usage error.
 *
 * Only the public header is used, as any program embedding the library would.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smtpd.h>

/* What the hooks get as their user pointer. */
struct catch_ctx {
    FILE *out;   /* where messages go */
    int verbose; /* -v: the transcript on stderr */
};

struct catch_stopper {
    smtpd_server *srv;
    sigset_t set; /* SIGINT, SIGTERM: stop the server; SIGUSR1: just end the thread */
};

static void
catch_usage(void)
{
    fprintf(stderr, "usage: catch [-v] [-o name=value]... [ADDR [PORT]]\n");
}

/*
 * The deliver hook. It runs on the server's I/O thread (here the main thread, inside
 * smtpd_server_run), and msg and everything it points to live only during this call, so
 * the message is written out before returning. One fflush per message: a reader sees a
 * message as soon as the client has its 250, never half of one.
 */
static smtpd_verdict
catch_deliver_cb(smtpd_session *s, const smtpd_message *msg, void *user)
{
    FILE *out = ((struct catch_ctx *)user)->out;
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
    /* The data may hold anything, NUL included: write it as octets, not as a string. */
    if (fwrite(msg->data, 1, msg->size, out) != msg->size || fputs("=== end\n", out) == EOF ||
        fflush(out) == EOF) {
        /* Nobody will see this message, so the client must not get a 250 for it. */
        return SMTPD_TEMPFAIL;
    }
    return SMTPD_ACCEPT;
}

/* The transcript, for -v. Lines come without CRLF; DATA content is never logged. */
static void
catch_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    static const char *const arrow[] = {"<-", "->", "--"};
    int n = len > 4096 ? 4096 : (int)len;

    if (!((struct catch_ctx *)user)->verbose)
        return;
    fprintf(stderr, "catch: %llu %s %.*s\n", (unsigned long long)smtpd_session_id(s), arrow[dir], n,
            line);
}

/*
 * The signal thread. SIGINT and SIGTERM are blocked in every thread and taken here with
 * sigwait, so stopping happens in ordinary thread context (smtpd_server_stop is not
 * async-signal-safe, but any thread may call it) and no hook is interrupted by a handler.
 */
static void *
catch_stopper_main(void *arg)
{
    struct catch_stopper *st = arg;
    int sig;

    if (sigwait(&st->set, &sig) == 0 && sig != SIGUSR1)
        smtpd_server_stop(st->srv, -1);
    return NULL;
}

/* Apply one "-o name=value" through the same by-name interface a config file would use. */
static int
catch_configure(smtpd_server *srv, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char name[128];
    int n, rc;

    if (eq == NULL) {
        fprintf(stderr, "catch: -o %s: expected name=value\n", arg);
        return -1;
    }
    n = snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    if (n < 0 || (size_t)n >= sizeof name) {
        fprintf(stderr, "catch: -o %s: name too long\n", arg);
        return -1;
    }
    rc = smtpd_server_configure(srv, name, eq + 1);
    if (rc != 0) {
        fprintf(stderr, "catch: -o %s: %s: %s\n", arg, smtpd_strerror(rc),
                smtpd_server_errmsg(srv));
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *port = "1025";
    struct catch_ctx ctx = {stdout, 0};
    smtpd_hooks hooks;
    smtpd_server *srv;
    struct catch_stopper st;
    pthread_t stopper;
    int opt, rc, status = 2;

    /* The server comes first so that each -o is applied (and checked) as it is read. */
    memset(&hooks, 0, sizeof hooks);
    hooks.on_deliver = catch_deliver_cb; /* every other hook NULL: accept everything */
    hooks.on_log = catch_log_cb;
    srv = smtpd_server_new(NULL, &hooks, &ctx);
    if (srv == NULL) {
        fprintf(stderr, "catch: cannot create the server\n");
        return 1;
    }
    while ((opt = getopt(argc, argv, "vo:")) != -1) {
        switch (opt) {
        case 'v':
            ctx.verbose = 1;
            break;
        case 'o':
            if (catch_configure(srv, optarg) != 0)
                goto out;
            break;
        default:
            catch_usage();
            goto out;
        }
    }
    if (argc - optind > 2) {
        catch_usage();
        goto out;
    }
    if (optind < argc)
        addr = argv[optind];
    if (optind + 1 < argc)
        port = argv[optind + 1];

    status = 1;
    rc = smtpd_server_listen(srv, addr, port);
    if (rc != 0) {
        fprintf(stderr, "catch: listen on %s:%s: %s: %s\n", addr, port, smtpd_strerror(rc),
                smtpd_server_errmsg(srv));
        goto out;
    }

    /*
     * Block the stop signals before any thread exists, so every thread (the library's
     * and ours) inherits the mask and only the signal thread ever receives them.
     */
    st.srv = srv;
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGUSR1);
    rc = pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    if (rc == 0)
        rc = pthread_create(&stopper, NULL, catch_stopper_main, &st);
    if (rc != 0) {
        fprintf(stderr, "catch: signal thread: %s\n", strerror(rc));
        goto out;
    }

    /* The socket already listens: a client connecting now waits in the backlog until
       smtpd_server_run starts, so it is safe to announce the port first. */
    printf("listening on %s:%d\n", addr, smtpd_server_bound_port(srv, 0));
    fflush(stdout);

    rc = smtpd_server_run(srv);
    if (rc != 0)
        fprintf(stderr, "catch: %s: %s\n", smtpd_strerror(rc), smtpd_server_errmsg(srv));
    else
        status = 0;

    /* The server may also end without a signal (an error): wake the signal thread. */
    pthread_kill(stopper, SIGUSR1);
    pthread_join(stopper, NULL);
out:
    smtpd_server_free(srv);
    return status;
}
