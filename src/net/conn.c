/*
 * conn.c - one client connection: a bufferevent that feeds a session and writes its
 * replies.
 *
 * Input is fed as it arrives; while a hook is pending the session consumes nothing and
 * the bufferevent's read high-water mark (max-pending-input) stops reading, so pipelined
 * input waits, bounded. Replies are written after each batch of input is processed
 * (RFC 2920 3.2: flush when the input buffer is emptied). A client that does not read
 * its replies stops being read once max-pending-input octets of replies wait. Timeouts
 * are the bufferevent's, on libevent's monotonic clock.
 */
#include "net/server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a closing connection may take to write its last reply. */
#define CONN_LINGER_MS 5000

typedef struct conn {
    smtpd_server *srv;
    smtpd_session *sess;
    struct bufferevent *bev;
    bool closing; /* the session is over; free once the output is written */
} conn;

static void
conn_free(conn *c)
{
    smtpd_server *srv = c->srv;
    sessions_remove(&srv->sessions, c->sess->id);
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

/* Write what the session queued; returns false when the connection was freed. */
static bool
conn_flush(conn *c)
{
    buf *out = session_output(c->sess);
    if (out->len) {
        bufferevent_write(c->bev, out->data, out->len);
        buf_clear(out);
    }
    struct evbuffer *output = bufferevent_get_output(c->bev);
    if (session_is_closing(c->sess)) {
        if (!c->closing) {
            c->closing = true;
            bufferevent_disable(c->bev, EV_READ);
            conn_set_timeout(c, CONN_LINGER_MS);
        }
        if (evbuffer_get_length(output) == 0) {
            conn_free(c);
            return false;
        }
        return true;
    }
    /* a client that does not read its replies is not read either */
    if (evbuffer_get_length(output) > c->srv->opts.max_pending_input)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
    conn_set_timeout(c, session_timeout_ms(c->sess));
    if (session_is_blocked(c->sess)) {
        /* the client waits for our answer: only writing may time out */
        struct timeval tv = {CONN_LINGER_MS / 1000 * 60, 0};
        bufferevent_set_timeouts(c->bev, NULL, &tv);
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
           bounded by the read high-water mark */
        const char *data = (const char *)evbuffer_pullup(input, -1);
        size_t used = session_feed(c->sess, data, len, time(NULL));
        evbuffer_drain(input, used);
        if (used == 0)
            break;
    }
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
        conn_free(c);
        return;
    }
    conn_process(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->closing) {
            conn_free(c); /* the client did not take its last reply in time */
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
        session_eof(c->sess);
        conn_flush(c);
    }
}

void
conn_accept(smtpd_server *srv, int fd, const char *addr, int port)
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
    if (!c->sess || !c->bev || sessions_put(&srv->sessions, id, c) != 0) {
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
    bufferevent_setwatermark(c->bev, EV_READ, 0, srv->opts.max_pending_input);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    int state = atomic_load(&srv->state);
    if (state != SERVER_RUNNING || atomic_load(&srv->nsessions) > srv->opts.max_sessions)
        session_refuse_busy(c->sess);
    else
        session_start(c->sess, time(NULL));
    conn_flush(c);
}

void
conn_complete(conn *c, const completion *done)
{
    if (session_complete(c->sess, done->ticket.seq, done->verdict, done->code,
                         done->enhanced[0] ? done->enhanced : NULL, done->text,
                         time(NULL)) == SMTPD_ENOENT)
        return;
    conn_process(c);
}

void
conn_shutdown(conn *c)
{
    session_shutdown(c->sess);
    conn_flush(c);
}

void
conn_abort(conn *c)
{
    conn_free(c);
}
