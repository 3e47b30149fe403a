/*
 * sink.c - the benchmark's "library alone" server: libsmtpd accepting every sender and
 * recipient and discarding each message, like Postfix's smtp-sink. What it costs is what
 * the library costs: the protocol, the DATA decoder and the I/O, with no store behind.
 *
 * usage: sink [-o name=value]... [ADDR [PORT]]   (default 127.0.0.1 1025; 0 = any port)
 * Prints "listening on ADDR:PORT" once it accepts; SIGINT/SIGTERM stop it (exit 0).
 */
#include <smtpd.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Only the message's existence matters: the bytes are already counted by the library. */
static smtpd_verdict
sink_deliver_cb(smtpd_session *s, const smtpd_message *msg, void *user)
{
    (void)s;
    (void)msg;
    (void)user;
    return SMTPD_ACCEPT;
}

typedef struct sink_stopper {
    smtpd_server *srv;
    sigset_t set;
} sink_stopper;

/* Stop from ordinary thread context: smtpd_server_stop is not async-signal-safe. */
static void *
sink_stopper_main(void *arg)
{
    sink_stopper *st = arg;
    int sig;
    if (sigwait(&st->set, &sig) == 0)
        smtpd_server_stop(st->srv, 0);
    return NULL;
}

static int
sink_configure(smtpd_server *srv, const char *arg)
{
    char name[128];
    const char *eq = strchr(arg, '=');
    if (!eq || eq - arg >= (long)sizeof name) {
        fprintf(stderr, "sink: -o %s: expected name=value\n", arg);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    if (smtpd_server_configure(srv, name, eq + 1) != 0) {
        fprintf(stderr, "sink: -o %s: %s\n", arg, smtpd_server_errmsg(srv));
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    smtpd_hooks hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.on_deliver = sink_deliver_cb;
    smtpd_server *srv = smtpd_server_new(NULL, &hooks, NULL);
    if (!srv)
        return 1;
    int opt, status = 2;
    while ((opt = getopt(argc, argv, "o:")) != -1) {
        if (opt != 'o' || sink_configure(srv, optarg) != 0) {
            fprintf(stderr, "usage: sink [-o name=value]... [ADDR [PORT]]\n");
            goto out;
        }
    }
    const char *addr = optind < argc ? argv[optind] : "127.0.0.1";
    const char *port = optind + 1 < argc ? argv[optind + 1] : "1025";
    status = 1;
    if (smtpd_server_listen(srv, addr, port) != 0) {
        fprintf(stderr, "sink: listen on %s:%s: %s\n", addr, port, smtpd_server_errmsg(srv));
        goto out;
    }
    sink_stopper st = {.srv = srv};
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    pthread_t stopper;
    if (pthread_create(&stopper, NULL, sink_stopper_main, &st) != 0)
        goto out;
    pthread_detach(stopper);
    printf("listening on %s:%d\n", addr, smtpd_server_bound_port(srv, 0));
    fflush(stdout);
    status = smtpd_server_run(srv) == 0 ? 0 : 1;
out:
    smtpd_server_free(srv);
    return status;
}
