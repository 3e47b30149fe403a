/*
 * events.c - GET /api/events: live events as server-sent events (text/event-stream;
 * the WHATWG HTML "server-sent events" format). Mailpit pushes the same events over a
 * WebSocket; the payloads match its messages:
 *   event: new     data: MessageSummary (api_summary_json)
 *   event: delete  data: {"ID": "..."}
 *   event: update  data: {"ID": "...", "Read": true} or {"ID": "...", "Tags": [...]}
 *   event: stats   data: {"Total": N, "Unread": N, "Version": "..."}
 * Each data is one line of compact JSON. A comment line ": ping" every 15 s keeps
 * proxies from closing an idle stream and finds dead clients.
 *
 * Bounded: at most EVENTS_MAX_STREAMS streams (503 beyond); a client that does not read
 * (more than EVENTS_MAX_QUEUED octets waiting) is disconnected. A client that goes away
 * is noticed through the connection's close callback, which frees its stream.
 *
 * HTTP thread only.
 */
#include "mailsink/http/internal.h"
#include "mailsink/http/server_parts.h"

#include <smtpd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX_STREAMS 256
#define EVENTS_MAX_QUEUED ((size_t)1 << 20)
#define EVENTS_PING_S 15
#define EVENTS_MAX_NEW_PER_BATCH 1000 /* beyond: counted, "stats" only */

typedef struct events_stream {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    http_events *ev;
    struct events_stream *prev, *next;
} events_stream;

struct http_events {
    http_ctx *ctx;
    events_stream *head;
    size_t count;
    struct event *ping;  /* every EVENTS_PING_S while streams are open */
    struct event *stats; /* one-shot, coalesces "stats" after changes */
};

static void
events_unlink(events_stream *s)
{
    http_events *ev = s->ev;

    if (s->prev)
        s->prev->next = s->next;
    else
        ev->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ev->count--;
    if (ev->count == 0 && ev->ping)
        event_del(ev->ping);
}

/* evhttp is closing the connection (the client went away, or a timeout): forget the
   stream. When the client went away, libevent 2.1 has already detached our unfinished
   request from the connection and leaves it to us: ending it frees it. Otherwise (the
   connection is freed with the request on it) evhttp frees it. */
static void
events_close_cb(struct evhttp_connection *conn, void *arg)
{
    events_stream *s = arg;
    (void)conn;

    if (!evhttp_request_get_connection(s->req))
        evhttp_request_free(s->req);
    events_unlink(s);
    free(s);
}

/* Close a stream whose client does not keep up: free the connection now (the close
   callback is removed first, so it does not run on a stream already freed). */
static void
events_drop(events_stream *s)
{
    struct evhttp_connection *conn = s->conn;

    evhttp_connection_set_closecb(conn, NULL, NULL);
    events_unlink(s);
    free(s);
    evhttp_connection_free(conn);
}

static size_t
events_queued(const events_stream *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Send text to every stream; drop those that are too far behind. */
static void
events_send_all(http_events *ev, const char *text, size_t len)
{
    events_stream *s = ev->head, *next;

    for (; s; s = next) {
        next = s->next;
        if (events_queued(s) + len > EVENTS_MAX_QUEUED) {
            events_drop(s);
            continue;
        }
        struct evbuffer *buf = evbuffer_new();
        if (buf && evbuffer_add(buf, text, len) == 0)
            evhttp_send_reply_chunk(s->req, buf);
        if (buf)
            evbuffer_free(buf);
    }
}

void
http_events_broadcast(http_ctx *ctx, const char *type, json_t *data)
{
    http_events *ev = ctx->events;
    char *json = NULL, *text = NULL;

    if (!ev || !ev->head || !data)
        goto out;
    json = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII);
    size_t need = json ? strlen(type) + strlen(json) + 32 : 0;
    if (!json || !(text = malloc(need)))
        goto out;
    int n = snprintf(text, need, "event: %s\ndata: %s\n\n", type, json);
    if (n > 0 && (size_t)n < need)
        events_send_all(ev, text, (size_t)n);
out:
    free(text);
    free(json);
    json_decref(data);
}

static void
events_stats_cb(evutil_socket_t fd, short what, void *arg)
{
    http_events *ev = arg;
    store_counts c;
    (void)fd;
    (void)what;

    if (!ev->head || store_mailbox_counts(ev->ctx->st, &c) != 0)
        return;
    http_events_broadcast(ev->ctx, "stats",
                          json_pack("{s:I, s:I, s:s}", "Total", (json_int_t)c.total, "Unread",
                                    (json_int_t)c.unread, "Version", SMTPD_VERSION_STRING));
}

void
http_events_stats_changed(http_ctx *ctx)
{
    http_events *ev = ctx->events;

    /* a burst of changes (a batch, a delete of many) makes one "stats" */
    if (ev && ev->head && !event_pending(ev->stats, EV_TIMEOUT, NULL))
        event_add(ev->stats, &(struct timeval){0, 100000});
}

static void
events_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    static const char ping[] = ": ping\n\n";
    (void)fd;
    (void)what;

    events_send_all(arg, ping, sizeof ping - 1);
}

void
api_events(http_req *r)
{
    static const char hello[] = "retry: 2000\n\n";
    http_events *ev = r->ctx->events;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);

    if (!ev || !conn || ev->count >= EVENTS_MAX_STREAMS) {
        http_reply_text(r, 503, "too many event streams");
        return;
    }
    events_stream *s = calloc(1, sizeof *s);
    struct evbuffer *buf = evbuffer_new();
    if (!s || !buf || evbuffer_add(buf, hello, sizeof hello - 1) != 0) {
        free(s);
        if (buf)
            evbuffer_free(buf);
        http_reply_text(r, 503, "out of memory");
        return;
    }
    evhttp_add_header(out, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "X-Accel-Buffering", "no"); /* nginx: do not buffer the stream */
    *s = (events_stream){.req = r->req, .conn = conn, .ev = ev, .next = ev->head};
    if (ev->head)
        ev->head->prev = s;
    ev->head = s;
    if (ev->count++ == 0)
        event_add(ev->ping, &(struct timeval){EVENTS_PING_S, 0});
    evhttp_connection_set_closecb(conn, events_close_cb, s);
    evhttp_send_reply_start(r->req, 200, "OK");
    evhttp_send_reply_chunk(r->req, buf);
    evbuffer_free(buf);
}

void
http_events_stored(http_ctx *ctx, char *const *ids, size_t n, size_t more_dropped)
{
    http_events *ev = ctx->events;
    bool listening = ev && ev->head;

    ctx->stats.smtp_accepted += n + more_dropped;
    for (size_t i = 0; i < n; i++) {
        store_row row;
        if (i >= EVENTS_MAX_NEW_PER_BATCH || store_get(ctx->st, ids[i], &row) != 0)
            continue; /* deleted (or pruned) already, or too many to show one by one */
        ctx->stats.smtp_accepted_size += row.size;
        if (listening)
            http_events_broadcast(ctx, "new", api_summary_json(&row));
        store_row_cleanup(&row);
    }
    http_events_stats_changed(ctx);
    http_waiters_check(ctx);
}

http_events *
http_events_new(http_ctx *ctx)
{
    http_events *ev = calloc(1, sizeof *ev);

    if (!ev)
        return NULL;
    ev->ctx = ctx;
    ev->ping = event_new(ctx->base, -1, EV_PERSIST, events_ping_cb, ev);
    ev->stats = evtimer_new(ctx->base, events_stats_cb, ev);
    if (!ev->ping || !ev->stats) {
        http_events_free(ev);
        return NULL;
    }
    return ev;
}

void
http_events_end_all(http_events *ev)
{
    if (!ev)
        return;
    while (ev->head) {
        events_stream *s = ev->head;
        evhttp_connection_set_closecb(s->conn, NULL, NULL);
        evhttp_send_reply_end(s->req);
        events_unlink(s);
        free(s);
    }
    event_del(ev->ping);
    event_del(ev->stats);
}

void
http_events_free(http_events *ev)
{
    if (!ev)
        return;
    http_events_end_all(ev);
    if (ev->ping)
        event_free(ev->ping);
    if (ev->stats)
        event_free(ev->stats);
    free(ev);
}
