/*
 * conn.c - one client connection: a bufferevent that feeds a session and writes its
 * replies.
 *
 * Input is fed as it arrives; while a hook is pending the session consumes nothing and
 * reading stops once max-pending-input octets wait (conn_flush), so pipelined input
 * waits, bounded. Replies are written after each batch of input is processed
 * (RFC 2920 3.2: flush when the input buffer is emptied). A client that does not read
 * its replies stops being read once max-pending-input octets of replies wait, and is
 * dropped when its replies wait longer than the timeout.
 *
 * Every wait for the client has a deadline (smtp-rules.md rule 5), not a timeout that
 * each octet restarts: a command line must arrive whole within command-timeout, and
 * message content keeps its deadline only while it comes at CONN_MIN_DATA_RATE or faster
 * (as Postfix's smtpd_per_request_deadline with smtpd_min_data_rate). Otherwise a client
 * sending one octet a second would hold its session forever. The deadline is enforced
 * with the bufferevent's timeouts (libevent's monotonic clock), set to what is left.
 */
#include "net/server.h"

#include "tls/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a closing connection may take to write its last reply. */
#define CONN_LINGER_MS 5000
/* Octets per second of message content that keep the data deadline where it is. */
#define CONN_MIN_DATA_RATE 500

typedef struct conn {
    smtpd_server *srv;
    smtpd_session *sess;
    peers_entry *peer;        /* this client address's session count */
    struct bufferevent *bev;  /* the socket, or the TLS filter over it */
    bool closing;             /* the session is over; free once the output is written */
    bool handshaking;         /* a TLS handshake runs: no reading, no greeting yet */
    bool greeted;             /* session_start (or the refusal) happened */
    bool eof;                 /* the client half-closed: answer what it sent, then close */
    uint64_t deadline_ms;     /* CLOCK_MONOTONIC; 0: the next flush starts a new wait */
    uint64_t deadline_wait;   /* session_wait_count when the deadline was set */
    size_t fed;               /* octets the session consumed since the last flush */
    struct event *reaper;     /* under TLS: waits for the socket's output to drain */
    unsigned reaper_ticks;    /* closing: bounded by CONN_LINGER_MS */
    uint64_t unread_since_ms; /* not read for unread replies since (TLS); 0: reading */
    unsigned busy;            /* inside a libevent call that may run our callbacks */
    bool dead;                /* conn_free came while busy: free when it returns */
} conn;

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static bool conn_start_tls(conn *c);

static void
conn_free(conn *c)
{
    if (c->busy) {
        c->dead = true; /* the caller up the stack still uses c: it frees it */
        return;
    }
    smtpd_server *srv = c->srv;
    if (c->reaper)
        event_free(c->reaper);
    sessions_remove(&srv->sessions, c->sess->id);
    peers_release(&srv->peers, c->peer);
    session_free(c->sess);
    bufferevent_free(c->bev);
    free(c);
    atomic_fetch_sub(&srv->nsessions, 1);
    server_conn_closed(srv);
}

static void
conn_set_timeout(conn *c, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static uint64_t
conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Move the deadline by what the session consumed, and arm the timeouts with what is left
   of it. */
static void
conn_arm_deadline(conn *c)
{
    uint64_t now = conn_now_ms();
    uint64_t full = now + session_timeout_ms(c->sess);
    bool data = session_in_data(c->sess);
    uint64_t wait = session_wait_count(c->sess);
    if (!c->deadline_ms || wait != c->deadline_wait) {
        /* a new wait began since: a line was taken (the rest of the input may hold the
           start of the next one) or the state changed (e.g. content, then commands, then
           the next content, all in one pipelined batch) */
        c->deadline_ms = full;
    } else if (data) {
        uint64_t more = c->deadline_ms + (uint64_t)c->fed * 1000 / CONN_MIN_DATA_RATE;
        c->deadline_ms = more < full ? more : full;
    } else if (!session_line_started(c->sess)) {
        c->deadline_ms = full; /* between commands: the next one gets the whole time */
    }
    c->deadline_wait = wait;
    c->fed = 0;
    uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 1;
    conn_set_timeout(c, (unsigned)left);
}

/* Octets written by the session but not yet sent: under TLS, the filter hands its output
   on to the socket's bufferevent at once, so both buffers count. */
static size_t
conn_unsent(conn *c)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

static bool conn_try_close(conn *c);

static void conn_process(conn *c);

/* The reaper timer: under TLS the filter's write callback only tells when the filter
   drained, not the socket under it, so a closing connection and one whose reading is
   held back for unread replies look at the socket again every 10 ms. */
static void
conn_reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->closing)
        conn_try_close(c);
    else
        conn_process(c);
}

static void
conn_reaper_arm(conn *c)
{
    if (!c->reaper)
        c->reaper = evtimer_new(c->srv->base, conn_reaper_cb, c);
    struct timeval tv = {0, 10000};
    if (c->reaper)
        evtimer_add(c->reaper, &tv);
}

/* Closing: free once everything is sent (the linger timeout bounds the wait). Returns
   false when the connection was freed. */
static bool
conn_try_close(conn *c)
{
    if (conn_unsent(c) == 0) {
        conn_free(c);
        return false;
    }
    if (bufferevent_get_underlying(c->bev)) {
        /* the filter's write callback only tells when the filter drained: look again,
           for at most the linger time (a peer that reads nothing must not keep us) */
        if (++c->reaper_ticks > CONN_LINGER_MS / 10) {
            conn_free(c);
            return false;
        }
        conn_reaper_arm(c);
    }
    return true;
}

/* Write what the session queued; returns false when the connection was freed. */
static bool
conn_flush(conn *c)
{
    buf *out = session_output(c->sess);
    if (out->len) {
        /* under TLS a failed write can run conn_event_cb, and so conn_free, from inside */
        c->busy++;
        int rc = bufferevent_write(c->bev, out->data, out->len);
        c->busy--;
        buf_clear(out);
        if (c->dead) {
            conn_free(c);
            return false;
        }
        if (rc != 0) {
            /* out of memory: the reply is lost, and a client waiting for it would wait
               until its own timeout; closing tells it at once */
            static const char why[] = "out of memory: a reply could not be queued";
            session_log(c->sess, SMTPD_LOG_INFO, why, sizeof why - 1);
            conn_free(c);
            return false;
        }
    }
    if (session_tls_requested(c->sess) && !c->handshaking && !session_is_closing(c->sess)) {
        /* the 220 is queued in plaintext before the handshake starts */
        if (conn_start_tls(c))
            return true;
        conn_free(c);
        return false;
    }
    if (c->handshaking)
        return true;
    if (session_is_closing(c->sess)) {
        if (!c->closing) {
            c->closing = true;
            bufferevent_disable(c->bev, EV_READ);
            bufferevent_enable(c->bev, EV_WRITE); /* arms the linger timeout */
            conn_set_timeout(c, CONN_LINGER_MS);
        }
        return conn_try_close(c);
    }
    /* a client that does not read its replies is not read either (under TLS the
       replies wait in the socket's buffer, so count both); and input the session cannot
       take now (a hook is pending) stops reading at max-pending-input. That is libevent's
       read high-water mark done here: bufferevent_setwatermark cannot report a failed
       allocation and crashes on it (libevent 2.1 dereferences the NULL callback entry). */
    size_t held = evbuffer_get_length(bufferevent_get_input(c->bev));
    bool unread = conn_unsent(c) > c->srv->opts.max_pending_input;
    if (unread || held >= c->srv->opts.max_pending_input)
        bufferevent_disable(c->bev, EV_READ);
    else if (!c->eof) /* after EOF the socket stays readable: reading again would spin */
        bufferevent_enable(c->bev, EV_READ);
    if (unread && bufferevent_get_underlying(c->bev)) {
        /* under TLS nothing else wakes us when the socket drains (conn_reaper_cb), and
           no timeout is armed meanwhile: the client gets command-timeout to read */
        uint64_t now = conn_now_ms();
        if (!c->unread_since_ms)
            c->unread_since_ms = now;
        if (now - c->unread_since_ms > c->srv->opts.command_timeout_ms) {
            static const char why[] = "timeout: the client reads no replies";
            session_log(c->sess, SMTPD_LOG_INFO, why, sizeof why - 1);
            conn_free(c);
            return false;
        }
        conn_reaper_arm(c);
    } else {
        c->unread_since_ms = 0;
    }
    if (session_is_blocked(c->sess)) {
        /* the client waits for our answer: only writing may time out; the wait for
           its next input starts afresh once we answered */
        struct timeval tv = {CONN_LINGER_MS / 1000 * 60, 0};
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        c->deadline_ms = 0;
        c->fed = 0;
    } else {
        conn_arm_deadline(c);
    }
    return true;
}

/* Feed everything that is buffered and can be consumed now, then write the replies. */
static void
conn_process(conn *c)
{
    struct evbuffer *input = bufferevent_get_input(c->bev);
    /* fed even while a hook is pending: the session consumes nothing then, but notes a
       client that talks before the greeting */
    while (!c->closing && !session_is_closing(c->sess)) {
        size_t len = evbuffer_get_length(input);
        if (len == 0)
            break;
        /* one contiguous view, so a pipelined group is judged as a whole; the input is
           bounded by max-pending-input (conn_flush stops reading there) */
        const char *data = (const char *)evbuffer_pullup(input, -1);
        if (!data) {
            /* out of memory joining the input: nothing can be read any more */
            static const char why[] = "out of memory: the input could not be read";
            session_log(c->sess, SMTPD_LOG_INFO, why, sizeof why - 1);
            conn_free(c);
            return;
        }
        size_t used = session_feed(c->sess, data, len, time(NULL));
        evbuffer_drain(input, used);
        c->fed += used;
        if (used == 0)
            break;
    }
    /* after a half-close, the session ends once everything it was sent is answered
       (a pending hook may still answer first) */
    if (c->eof && !session_is_blocked(c->sess) && !session_is_closing(c->sess))
        session_eof(c->sess);
    conn_flush(c);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn *c = arg;
    /* all written: close if over, else read again (and handle input held meanwhile) */
    if (c->closing) {
        conn_try_close(c);
        return;
    }
    conn_process(c);
}

/* Before the greeting: refuse when over max-sessions, max-sessions-per-ip or stopping,
   else on_connect. */
static void
conn_greet(conn *c)
{
    c->greeted = true;
    int state = atomic_load(&c->srv->state);
    if (state != SERVER_RUNNING || atomic_load(&c->srv->nsessions) > c->srv->opts.max_sessions)
        session_refuse_busy(c->sess);
    else if (c->peer->count > c->srv->opts.max_sessions_per_ip)
        session_refuse_peer(c->sess);
    else
        session_start(c->sess, time(NULL));
}

/* The handshake is done: tell the session, and greet an implicit-TLS client now. */
static void
conn_tls_connected(conn *c)
{
    c->handshaking = false;
    tls_facts f;
    tls_get_facts(c->bev, &f);
    session_tls_done(c->sess, f.version, f.cipher, f.peer);
    free(f.peer);
    /* implicit TLS: greet unless on_tls refused the session or has not answered yet
       (then conn_complete greets) */
    if (!c->greeted && !session_is_closing(c->sess) && !session_is_blocked(c->sess))
        conn_greet(c);
    conn_process(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        conn_tls_connected(c);
        return;
    }
    if (c->handshaking && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))) {
        /* a failed handshake ends this connection only */
        char why[160];
        tls_take_error(c->bev, why, sizeof why);
        session_log(c->sess, SMTPD_LOG_INFO, why, strlen(why));
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->closing) {
            conn_free(c); /* the client did not take its last reply in time */
            return;
        }
        if (what & BEV_EVENT_WRITING) {
            /* the client takes none of its replies (libevent has stopped writing now):
               a 421 would not reach it either */
            static const char why[] = "timeout: the client reads no replies";
            session_log(c->sess, SMTPD_LOG_INFO, why, sizeof why - 1);
            conn_free(c);
            return;
        }
        session_timeout(c->sess);
        conn_flush(c);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        session_eof(c->sess);
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* a half-close: the client may still read the replies to what it sent */
        c->eof = true;
        conn_process(c);
    }
}

void
conn_accept(smtpd_server *srv, int fd, const char *addr, int port, bool implicit_tls)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    uint64_t id = ++srv->next_session_id;
    c->sess = session_new(&srv->env, id, addr, port);
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->peer = peers_add(&srv->peers, addr);
    if (!c->sess || !c->bev || !c->peer || sessions_put(&srv->sessions, id, c) != 0) {
        if (c->peer)
            peers_release(&srv->peers, c->peer);
        session_free(c->sess);
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        free(c);
        return;
    }
    atomic_fetch_add(&srv->nsessions, 1);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (implicit_tls && srv->ssl_ctx) {
        /* RFC 8314 3.3: the handshake first, then the greeting */
        if (!conn_start_tls(c))
            conn_free(c);
        return;
    }
    conn_greet(c);
    conn_flush(c);
}

/* Put the connection under TLS. Whatever the client sent after STARTTLS and before the
   handshake is dropped unread (RFC 3207 4.2, CVE-2011-0411). */
static bool
conn_start_tls(conn *c)
{
    struct evbuffer *input = bufferevent_get_input(c->bev);
    evbuffer_drain(input, evbuffer_get_length(input));
    /* the filter's timeouts rule from now on; the socket's own (what was left of the
       plaintext deadline) would otherwise cut the TLS session at its first pause */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    struct bufferevent *tls = tls_wrap(c->srv->base, c->bev, c->srv->ssl_ctx);
    if (!tls)
        return false; /* out of memory: nothing sensible can be said any more */
    c->bev = tls;
    c->handshaking = true;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_set_timeout(c, c->srv->opts.tls_timeout_ms);
    return true;
}

void
conn_complete(conn *c, const completion *done)
{
    if (session_complete(c->sess, done->ticket.seq, done->verdict, done->code,
                         done->enhanced[0] ? done->enhanced : NULL, done->text,
                         time(NULL)) == SMTPD_ENOENT)
        return;
    if (!c->greeted && !c->handshaking && !session_is_closing(c->sess) &&
        !session_is_blocked(c->sess))
        conn_greet(c); /* implicit TLS: on_tls answered later */
    conn_process(c);
}

void
conn_shutdown(conn *c)
{
    if (c->handshaking) {
        conn_free(c); /* nothing can be said before the handshake is over */
        return;
    }
    session_shutdown(c->sess);
    conn_flush(c);
}

void
conn_abort(conn *c)
{
    conn_free(c);
}
