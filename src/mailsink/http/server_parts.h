/*
 * server_parts.h - private to server.c, events.c, wait.c and static.c: the life of the
 * parts whose state server.c creates and frees, and what server.c tells them. Every
 * function here runs on the HTTP thread (or, for _new/_free, on the thread that owns
 * the stopped event loop).
 */
#ifndef MAILSINK_HTTP_SERVER_PARTS_H
#define MAILSINK_HTTP_SERVER_PARTS_H

#include "mailsink/http/internal.h"

#include <stdbool.h>
#include <stddef.h>

/* events.c: the open /api/events streams. NULL when out of memory. */
http_events *http_events_new(http_ctx *ctx);
/* Ends every stream (their clients see the end of the reply) and stops the timers; the
   streams' connections are left to evhttp. */
void http_events_end_all(http_events *ev);
void http_events_free(http_events *ev);

/* events.c: the ingest thread stored these messages (oldest first): count them for
   RuntimeStats, push "new" (and a coalesced "stats") to the streams, re-check waiters.
   more_dropped: further ids were dropped because the queue was full (counted only). */
void http_events_stored(http_ctx *ctx, char *const *ids, size_t n, size_t more_dropped);

/* wait.c: the requests held by GET /api/v1/wait. NULL when out of memory. */
http_waiters *http_waiters_new(http_ctx *ctx);
/* Answers every held request with 503 (the server is stopping). */
void http_waiters_end_all(http_waiters *w);
void http_waiters_free(http_waiters *w);

/* server.c: the security headers every reply carries, plus the strict
   Content-Security-Policy of the web UI's pages (static.c). */
void http_headers_ui(struct evhttp_request *req);

#endif
