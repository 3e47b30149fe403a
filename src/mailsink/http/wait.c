/*
 * wait.c - GET /api/v1/wait?query=Q&timeout=S&count=N (our addition to Mailpit's API):
 * answers as soon as at least N (default 1) messages match the search Q (every message
 * when Q is empty), with the same MessagesSummary as GET /api/v1/search (api_search
 * builds it, reading query, start, limit and tz itself; without Q, api_messages_list). Until then
 * the request is held and re-checked after every stored batch; after S seconds (default 30, at most
 * 300) it gets 408 with a plain-text reason.
 *
 * Bounded: at most WAIT_MAX waiters (503 beyond). A client that goes away is noticed
 * through the connection's close callback, which frees its waiter. Re-checks run at most
 * every WAIT_CHECK_MS: each one is a count per waiter, and under steady SMTP load a
 * batch is stored every few milliseconds.
 *
 * HTTP thread only.
 */
#include "mailsink/http/internal.h"
#include "mailsink/http/server_parts.h"

#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MAX 1024
#define WAIT_DEFAULT_S 30
#define WAIT_MAX_S 300
#define WAIT_MAX_COUNT 1000000
#define WAIT_CHECK_MS 50

typedef struct wait_one {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    http_waiters *w;
    search_query q;
    size_t count;
    unsigned timeout_s;
    struct evkeyvalq query; /* a copy: api_search reads the parameters when it answers */
    struct event *timer;
    struct wait_one *prev, *next;
} wait_one;

struct http_waiters {
    http_ctx *ctx;
    wait_one *head;
    size_t count;
    struct event *check; /* one-shot: the coalesced re-check */
};

static void
wait_unlink_free(wait_one *one)
{
    http_waiters *w = one->w;

    if (one->prev)
        one->prev->next = one->next;
    else
        w->head = one->next;
    if (one->next)
        one->next->prev = one->prev;
    w->count--;
    if (one->timer)
        event_free(one->timer);
    search_query_free(&one->q);
    evhttp_clear_headers(&one->query);
    free(one);
}

/* The MessagesSummary: GET /api/v1/search's, or for an empty query (which /search
   refuses, as Mailpit does) GET /api/v1/messages's, which is the same object. */
static void
wait_answer(http_req *r)
{
    const char *q = http_param(r, "query");

    if (q && *q)
        api_search(r);
    else
        api_messages_list(r);
}

/* The waiter leaves the list and its request gets its answer (or none, when the
   client is gone: then evhttp frees the request). */
static void
wait_finish(wait_one *one, bool satisfied)
{
    struct evhttp_request *req = one->req;
    http_req r = {.req = req, .ctx = one->w->ctx, .path = "/api/v1/wait", .query = &one->query};
    unsigned secs = one->timeout_s;
    size_t count = one->count;

    evhttp_connection_set_closecb(one->conn, NULL, NULL);
    if (satisfied) {
        wait_answer(&r);
    } else {
        http_reply_error(&r, 408, "timeout: fewer than %zu matching message%s after %u s", count,
                         count == 1 ? "" : "s", secs);
    }
    wait_unlink_free(one);
}

/* The client went away: libevent 2.1 detached our unanswered request from the
   connection and leaves it to us (see events_close_cb). */
static void
wait_close_cb(struct evhttp_connection *conn, void *arg)
{
    wait_one *one = arg;
    (void)conn;

    if (!evhttp_request_get_connection(one->req))
        evhttp_request_free(one->req);
    wait_unlink_free(one);
}

static void
wait_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wait_finish(arg, false);
}

/* 1 when enough messages match, 0 when not yet, -1 on a store error. */
static int
wait_is_met(http_ctx *ctx, const search_query *q, size_t count)
{
    store_counts c;

    if (store_search_counts(ctx->st, q, &c) != 0)
        return -1;
    return c.total >= 0 && (size_t)c.total >= count;
}

static void
wait_check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_waiters *w = arg;
    wait_one *one, *next;

    for (one = w->head; one; one = next) {
        next = one->next;
        if (wait_is_met(w->ctx, &one->q, one->count) == 1)
            wait_finish(one, true);
    }
}

void
http_waiters_check(http_ctx *ctx)
{
    http_waiters *w = ctx->waiters;

    if (!w || !w->head)
        return;
    if (!w->check && !(w->check = evtimer_new(ctx->base, wait_check_cb, w))) {
        wait_check_cb(-1, 0, w); /* no timer: check now rather than never */
        return;
    }
    if (!evtimer_pending(w->check, NULL)) {
        struct timeval tv = {0, WAIT_CHECK_MS * 1000};
        evtimer_add(w->check, &tv);
    }
}

static int
wait_params(http_req *r, size_t *count, unsigned *timeout_s)
{
    size_t n, t;

    if (http_param_size(r, "count", 1, &n) != 0 ||
        http_param_size(r, "timeout", WAIT_DEFAULT_S, &t) != 0)
        return -1;
    if (n < 1 || n > WAIT_MAX_COUNT) {
        http_reply_error(r, 400, "invalid count: 1 to %d", WAIT_MAX_COUNT);
        return -1;
    }
    if (t > WAIT_MAX_S) {
        http_reply_error(r, 400, "invalid timeout: at most %d seconds", WAIT_MAX_S);
        return -1;
    }
    *count = n;
    *timeout_s = (unsigned)t;
    return 0;
}

static int
wait_copy_query(struct evkeyvalq *dst, const struct evkeyvalq *src)
{
    const struct evkeyval *kv;

    TAILQ_INIT(dst);
    if (!src)
        return 0;
    TAILQ_FOREACH(kv, src, next)
    {
        if (evhttp_add_header(dst, kv->key, kv->value) != 0)
            return -1;
    }
    return 0;
}

/* Hold the request: NULL after answering 503. */
static wait_one *
wait_hold(http_req *r, search_query *q, size_t count, unsigned timeout_s)
{
    http_waiters *w = r->ctx->waiters;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    wait_one *one = NULL;

    if (!w || !conn || w->count >= WAIT_MAX) {
        http_reply_text(r, 503, "too many waiting requests");
        return NULL;
    }
    if (!(one = calloc(1, sizeof *one)))
        goto fail;
    *one = (wait_one){.req = r->req,
                      .conn = conn,
                      .w = w,
                      .q = *q,
                      .count = count,
                      .timeout_s = timeout_s,
                      .next = w->head};
    *q = (search_query){0}; /* the waiter owns it now */
    if (wait_copy_query(&one->query, r->query) != 0 ||
        !(one->timer = evtimer_new(r->ctx->base, wait_timer_cb, one)))
        goto fail;
    if (w->head)
        w->head->prev = one;
    w->head = one;
    w->count++;
    struct timeval tv = {(time_t)timeout_s, 0};
    evtimer_add(one->timer, &tv);
    evhttp_connection_set_closecb(conn, wait_close_cb, one);
    return one;
fail:
    if (one) {
        search_query_free(&one->q);
        evhttp_clear_headers(&one->query);
        if (one->timer)
            event_free(one->timer);
        free(one);
    }
    http_reply_text(r, 503, "out of memory");
    return NULL;
}

void
api_wait(http_req *r)
{
    search_query q = {0};
    size_t count;
    unsigned timeout_s;

    if (wait_params(r, &count, &timeout_s) != 0 ||
        http_parse_search(r, http_param(r, "query"), &q) != 0)
        return;
    int met = wait_is_met(r->ctx, &q, count);
    if (met < 0) {
        http_reply_text(r, 500, "cannot read the store");
    } else if (met == 1) {
        wait_answer(r);
    } else if (timeout_s == 0) {
        http_reply_error(r, 408, "timeout: fewer than %zu matching message%s", count,
                         count == 1 ? "" : "s");
    } else {
        wait_hold(r, &q, count, timeout_s);
    }
    search_query_free(&q);
}

http_waiters *
http_waiters_new(http_ctx *ctx)
{
    http_waiters *w = calloc(1, sizeof *w);

    if (w)
        w->ctx = ctx;
    return w;
}

void
http_waiters_end_all(http_waiters *w)
{
    while (w && w->head) {
        wait_one *one = w->head;
        http_req r = {.req = one->req, .ctx = w->ctx};
        evhttp_connection_set_closecb(one->conn, NULL, NULL);
        http_reply_text(&r, 503, "server stopping");
        wait_unlink_free(one);
    }
}

void
http_waiters_free(http_waiters *w)
{
    http_waiters_end_all(w);
    if (w && w->check)
        event_free(w->check);
    free(w);
}
