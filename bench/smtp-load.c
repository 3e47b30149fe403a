/*
 * smtp-load.c - the benchmark's own SMTP load generator: many connections on one
 * libevent loop, optional PIPELINING (RFC 2920), message size and count as flags, every
 * reply checked. Postfix's smtp-source is the reference load, but it waits for each reply
 * before the next command; this one can send MAIL, RCPT and DATA in one write and the
 * next transaction together with the final dot, which is how fast clients talk.
 *
 *   smtp-load --port 1025 [--host 127.0.0.1] [--sessions 20] [--messages 10000]
 *             [--size 1024] [--per-connection 0] [--pipelining] [--timeout 120] [--json]
 *
 * --per-connection N: messages per connection before QUIT and a new connection (0 = as
 * many as it takes, i.e. one long connection per session). Bounded: stops after
 * --messages, or --timeout seconds, or the first unexpected reply (exit 1).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a connection waits for: the reply it expects next, in order. */
typedef enum load_expect {
    LOAD_GREETING, /* 220 */
    LOAD_EHLO,     /* 250 (multi-line) */
    LOAD_MAIL,     /* 250 */
    LOAD_RCPT,     /* 250 */
    LOAD_DATA,     /* 354 */
    LOAD_DOT,      /* 250 */
    LOAD_QUIT,     /* 221 */
} load_expect;

static const char *const load_expect_names[] = {"greeting", "EHLO", "MAIL", "RCPT",
                                                "DATA",     "dot",  "QUIT"};
static const int load_expect_codes[] = {220, 250, 250, 250, 354, 250, 221};

typedef struct load_options {
    const char *host;
    int port;
    unsigned sessions;
    unsigned long messages;
    size_t size;
    unsigned long per_connection;
    bool pipelining;
    unsigned timeout_s;
    bool json;
} load_options;

typedef struct load_run load_run;

/* One session: one connection at a time, reconnecting after --per-connection messages. */
typedef struct load_conn {
    load_run *run;
    struct bufferevent *bev;
    /* replies still owed, oldest first (a pipelined group has at most 4 in flight) */
    load_expect owed[8];
    unsigned owed_head, owed_count;
    unsigned long sent_here; /* transactions started on this connection */
    bool closing;
} load_conn;

struct load_run {
    load_options opt;
    struct event_base *base;
    struct sockaddr_storage addr;
    int addr_len;
    char *body; /* the message, dot-stuffed, ending in CRLF.CRLF */
    size_t body_len;
    unsigned long started;   /* transactions begun (MAIL sent) */
    unsigned long delivered; /* 250 after the dot */
    unsigned long connections;
    unsigned active;
    int failed; /* first failure ends the run */
    char failure[256];
};

static void load_conn_open(load_run *run, load_conn *c);

static void
load_fail(load_run *run, const char *what, const char *detail)
{
    if (!run->failed) {
        run->failed = 1;
        snprintf(run->failure, sizeof run->failure, "%s%s", what, detail);
    }
    event_base_loopbreak(run->base);
}

/* Build one message of about `size` octets: headers, then 76-character lines. None
   starts with '.', so no dot-stuffing is needed. */
static int
load_make_body(load_run *run)
{
    size_t size = run->opt.size < 256 ? 256 : run->opt.size;
    run->body = malloc(size + 128);
    if (!run->body)
        return -1;
    int n = snprintf(run->body, size + 128,
                     "From: load <load@example.com>\r\nTo: sink <sink@example.com>\r\n"
                     "Subject: smtp-load message\r\nMessage-ID: <load@example.com>\r\n"
                     "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n");
    size_t len = (size_t)n;
    for (size_t line = 0; len + 78 + 5 <= size; line++) {
        for (size_t i = 0; i < 76; i++)
            run->body[len + i] = (char)('a' + (line + i) % 26);
        len += 76;
        run->body[len++] = '\r';
        run->body[len++] = '\n';
    }
    memcpy(run->body + len, ".\r\n", 3);
    run->body_len = len + 3;
    return 0;
}

static void
load_owe(load_conn *c, load_expect e)
{
    c->owed[(c->owed_head + c->owed_count) % 8] = e;
    c->owed_count++;
}

/* Start a transaction, or QUIT when this connection or the run has done its share. */
static void
load_next(load_conn *c, struct evbuffer *out)
{
    load_run *run = c->run;
    bool run_done = run->started >= run->opt.messages;
    bool conn_done = run->opt.per_connection && c->sent_here >= run->opt.per_connection;
    if (run_done || conn_done) {
        evbuffer_add(out, "QUIT\r\n", 6);
        load_owe(c, LOAD_QUIT);
        return;
    }
    run->started++;
    c->sent_here++;
    evbuffer_add_printf(out, "MAIL FROM:<load@example.com>\r\n");
    load_owe(c, LOAD_MAIL);
    if (!run->opt.pipelining)
        return;
    evbuffer_add_printf(out, "RCPT TO:<sink@example.com>\r\nDATA\r\n");
    load_owe(c, LOAD_RCPT);
    load_owe(c, LOAD_DATA);
}

/* A reply line arrived for what c waited for: send what comes next. */
static void
load_on_reply(load_conn *c, load_expect e)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    switch (e) {
    case LOAD_GREETING:
        evbuffer_add(out, "EHLO load.example.com\r\n", 23);
        load_owe(c, LOAD_EHLO);
        break;
    case LOAD_EHLO:
        load_next(c, out);
        break;
    case LOAD_MAIL:
        if (!c->run->opt.pipelining) {
            evbuffer_add(out, "RCPT TO:<sink@example.com>\r\n", 28);
            load_owe(c, LOAD_RCPT);
        }
        break;
    case LOAD_RCPT:
        if (!c->run->opt.pipelining) {
            evbuffer_add(out, "DATA\r\n", 6);
            load_owe(c, LOAD_DATA);
        }
        break;
    case LOAD_DATA:
        evbuffer_add_reference(out, c->run->body, c->run->body_len, NULL, NULL);
        load_owe(c, LOAD_DOT);
        /* RFC 2920 3.1: the next transaction may follow the final dot at once */
        if (c->run->opt.pipelining)
            load_next(c, out);
        break;
    case LOAD_DOT:
        c->run->delivered++;
        if (!c->run->opt.pipelining)
            load_next(c, out);
        break;
    case LOAD_QUIT:
        c->closing = true;
        break;
    }
}

static void
load_read_cb(struct bufferevent *bev, void *arg)
{
    load_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t n;
    while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
        if (c->owed_count == 0) {
            free(line);
            load_fail(c->run, "a reply nobody waited for", "");
            return;
        }
        load_expect e = c->owed[c->owed_head];
        int code = n >= 3 ? atoi(line) : 0;
        bool last = n < 4 || line[3] != '-';
        if (code != load_expect_codes[e]) {
            char detail[200];
            snprintf(detail, sizeof detail, "%s: %.150s", load_expect_names[e], line);
            free(line);
            load_fail(c->run, "unexpected reply to ", detail);
            return;
        }
        free(line);
        if (!last)
            continue;
        c->owed_head = (c->owed_head + 1) % 8;
        c->owed_count--;
        load_on_reply(c, e);
        if (c->closing)
            break;
    }
    if (c->closing) {
        load_run *run = c->run;
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (run->started < run->opt.messages && !run->failed)
            load_conn_open(run, c); /* the next connection of this session */
        else if (--run->active == 0)
            event_base_loopbreak(run->base);
    }
}

static void
load_event_cb(struct bufferevent *bev, short what, void *arg)
{
    load_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* a command or a body's last segment must not wait for the server's ACK */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    load_fail(c->run, "connection ", (what & BEV_EVENT_EOF) ? "closed by the server" : "error");
}

static void
load_conn_open(load_run *run, load_conn *c)
{
    c->owed_head = c->owed_count = 0;
    c->sent_here = 0;
    c->closing = false;
    c->bev = bufferevent_socket_new(run->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        load_fail(run, "cannot create a connection", "");
        return;
    }
    bufferevent_setcb(c->bev, load_read_cb, NULL, load_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    load_owe(c, LOAD_GREETING);
    run->connections++;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&run->addr, run->addr_len) != 0)
        load_fail(run, "cannot connect: ", strerror(errno));
}

static void
load_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    load_fail(arg, "timed out", "");
}

static void
load_usage(void)
{
    fputs("usage: smtp-load --port PORT [--host 127.0.0.1] [--sessions 20] [--messages "
          "10000]\n                 [--size 1024] [--per-connection 0] [--pipelining] "
          "[--timeout 120] [--json]\n",
          stderr);
}

static int
load_parse(int argc, char **argv, load_options *o)
{
    *o = (load_options){
        .host = "127.0.0.1", .sessions = 20, .messages = 10000, .size = 1024, .timeout_s = 120};
    static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"sessions", required_argument, NULL, 's'},
                                             {"messages", required_argument, NULL, 'm'},
                                             {"size", required_argument, NULL, 'z'},
                                             {"per-connection", required_argument, NULL, 'c'},
                                             {"pipelining", no_argument, NULL, 'P'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        /* every option with an argument is a number, except --host */
        bool numeric = optarg && ch != 'h';
        unsigned long v = numeric ? strtoul(optarg, &end, 10) : 0;
        if (numeric && (*optarg == '\0' || *end != '\0' || *optarg == '-')) {
            fprintf(stderr, "smtp-load: not a number: '%s'\n", optarg);
            return -1;
        }
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = (int)v;
            break;
        case 's':
            o->sessions = (unsigned)v;
            break;
        case 'm':
            o->messages = v;
            break;
        case 'z':
            o->size = v;
            break;
        case 'c':
            o->per_connection = v;
            break;
        case 'P':
            o->pipelining = true;
            break;
        case 't':
            o->timeout_s = (unsigned)v;
            break;
        case 'j':
            o->json = true;
            break;
        default:
            load_usage();
            return -1;
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->sessions == 0 || o->sessions > 100000 ||
        o->messages == 0 || o->size > ((size_t)1 << 30) || o->timeout_s == 0) {
        load_usage();
        return -1;
    }
    return 0;
}

static double
load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    load_run run = {0};
    if (load_parse(argc, argv, &run.opt) != 0)
        return 2;
    run.addr_len = (int)sizeof run.addr;
    char hostport[300];
    snprintf(hostport, sizeof hostport, strchr(run.opt.host, ':') ? "[%s]:%d" : "%s:%d",
             run.opt.host, run.opt.port);
    if (evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&run.addr, &run.addr_len) != 0) {
        fprintf(stderr, "smtp-load: bad address %s\n", hostport);
        return 2;
    }
    if (load_make_body(&run) != 0 || !(run.base = event_base_new()))
        return 1;
    unsigned sessions = run.opt.sessions;
    if (sessions > run.opt.messages)
        sessions = (unsigned)run.opt.messages;
    load_conn *conns = calloc(sessions, sizeof *conns);
    if (!conns)
        return 1;
    struct timeval tv = {.tv_sec = run.opt.timeout_s};
    struct event *deadline = evtimer_new(run.base, load_timeout_cb, &run);
    evtimer_add(deadline, &tv);
    double t0 = load_now();
    run.active = sessions;
    for (unsigned i = 0; i < sessions && !run.failed; i++) {
        conns[i].run = &run;
        load_conn_open(&run, &conns[i]);
    }
    if (!run.failed)
        event_base_dispatch(run.base);
    double secs = load_now() - t0;
    for (unsigned i = 0; i < sessions; i++)
        if (conns[i].bev)
            bufferevent_free(conns[i].bev);
    event_free(deadline);
    event_base_free(run.base);
    free(conns);
    free(run.body);
    double rate = secs > 0 ? (double)run.delivered / secs : 0;
    if (run.opt.json)
        printf("{\"delivered\": %lu, \"connections\": %lu, \"seconds\": %.3f, "
               "\"messages_per_second\": %.1f, \"pipelining\": %s, \"error\": \"%s\"}\n",
               run.delivered, run.connections, secs, rate, run.opt.pipelining ? "true" : "false",
               run.failed ? "failed" : "");
    else
        printf("smtp-load: %lu messages in %.3f s over %lu connections: %.1f msg/s%s\n",
               run.delivered, secs, run.connections, rate,
               run.opt.pipelining ? " (pipelining)" : "");
    if (run.failed) {
        fprintf(stderr, "smtp-load: %s\n", run.failure);
        return 1;
    }
    return run.delivered == run.opt.messages ? 0 : 1;
}
