/*
 * internal.h - what the HTTP server's files share: the server's state, one request as
 * the handlers see it, the reply helpers and the handlers the router calls. Everything
 * here runs on the HTTP thread (except http_events_post, see below).
 *
 * Files: server.c (thread, listener, TLS, basic auth, --webroot, CORS, the route table),
 * static.c (the embedded web UI), events.c (server-sent events), wait.c (GET
 * /api/v1/wait), api_json.c (summary objects), api_messages.c (list, search, delete,
 * read, tags), api_message.c (one message, headers, raw, parts, /view), api_send.c,
 * api_info.c (info, webui, health, openapi).
 */
#ifndef MAILSINK_HTTP_INTERNAL_H
#define MAILSINK_HTTP_INTERNAL_H

#include "mailsink/cli/config.h"
#include "mailsink/ingest.h"
#include "mailsink/search.h"
#include "mailsink/store/store.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct http_events http_events;
typedef struct http_waiters http_waiters;

/* Counters for /api/v1/info's RuntimeStats; the SMTP ones are counted by the store's
   view (messages committed) since the HTTP side has no access to the sessions. */
typedef struct http_stats {
    int64_t started_ms;
    uint64_t messages_deleted;
    uint64_t smtp_accepted; /* messages stored while this server ran */
    uint64_t smtp_accepted_size;
} http_stats;

typedef struct http_ctx {
    const config *cfg;
    store *st; /* this thread's own reader handle */
    ingest *ingest;
    struct event_base *base;
    http_events *events;
    http_waiters *waiters;
    const char *webroot; /* "/" or "/prefix/" (always starts and ends with '/') */
    http_stats stats;
} http_ctx;

/* One request as a handler sees it. */
typedef struct http_req {
    struct evhttp_request *req;
    http_ctx *ctx;
    const char *path;        /* below the webroot, starting with '/': "/api/v1/messages" */
    const char *id;          /* the {ID} of the route, URL-decoded ("latest" as given), or NULL */
    const char *part;        /* the {PartID}, or NULL */
    struct evkeyvalq *query; /* the decoded query string */
} http_req;

/* ---- replies (each sends exactly one reply; the handler returns right after) ---- */

/* JSON body (steals the reference), Content-Type application/json; charset=utf-8. */
void http_reply_json(http_req *r, int status, json_t *body);
/* Plain text body, Content-Type text/plain; charset=utf-8. */
void http_reply_text(http_req *r, int status, const char *text);
/* 200 "ok": what Mailpit answers to a PUT or DELETE that worked. */
void http_reply_ok(http_req *r);
/* Plain-text error with printf-style reason: 400 bad parameter, 404 unknown id, ... */
void http_reply_error(http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Bytes with the given Content-Type and extra headers (NULL-terminated name, value
   pairs, may be NULL), e.g. Content-Disposition for attachments. */
void http_reply_bytes(http_req *r, int status, const char *content_type, const void *data,
                      size_t len, const char *const *headers);

/* Send body (may be NULL; not freed) with status: every reply goes through here so that
   a HEAD request gets the headers and Content-Length but no body. */
void http_send_buffer(struct evhttp_request *req, int status, const char *reason,
                      struct evbuffer *body);

/* ---- request helpers ---- */

/* The query parameter, or NULL when absent. */
const char *http_param(http_req *r, const char *name);
/* An unsigned integer parameter: def when absent; -1 (after replying 400 "invalid
   NAME") when it is not a number. */
int http_param_size(http_req *r, const char *name, size_t def, size_t *out);
/* The request body as JSON. Sets *empty when there is no body (or only whitespace) and
   returns NULL; on invalid JSON returns NULL with *empty false and does not reply. */
json_t *http_body_json(http_req *r, bool *empty);
/* The peer's address ("127.0.0.1"). */
const char *http_client_addr(http_req *r);
/* A search query from the "query" and "tz" parameters (q NULL/"" = every message is
   left to the caller). -1 after replying 400 with the parser's reason. */
int http_parse_search(http_req *r, const char *q, search_query *out);

/* ---- the handlers the route table calls (method already checked by the router) ---- */

/* api_messages.c */
void api_messages_list(http_req *r);   /* GET /api/v1/messages */
void api_messages_read(http_req *r);   /* PUT /api/v1/messages */
void api_messages_delete(http_req *r); /* DELETE /api/v1/messages */
void api_search(http_req *r);          /* GET /api/v1/search */
void api_search_delete(http_req *r);   /* DELETE /api/v1/search */
void api_tags_list(http_req *r);       /* GET /api/v1/tags */
void api_tags_set(http_req *r);        /* PUT /api/v1/tags */
/* api_message.c */
void api_message(http_req *r);          /* GET /api/v1/message/{ID} (marks it read) */
void api_message_headers(http_req *r);  /* GET /api/v1/message/{ID}/headers */
void api_message_raw(http_req *r);      /* GET /api/v1/message/{ID}/raw */
void api_message_part(http_req *r);     /* GET /api/v1/message/{ID}/part/{PartID} */
void api_message_envelope(http_req *r); /* GET /api/v1/message/{ID}/envelope: our addition:
                                          sender, recipients, client, HELO, TLS, AUTH,
                                          findings */
void api_view_html(http_req *r);        /* GET /view/{ID}.html */
void api_view_text(http_req *r);        /* GET /view/{ID}.txt */
/* api_send.c */
void api_send(http_req *r); /* POST /api/v1/send (answers later, after the commit) */
/* api_info.c */
void api_info(http_req *r);    /* GET /api/v1/info */
void api_webui(http_req *r);   /* GET /api/v1/webui */
void api_health(http_req *r);  /* GET /livez, /readyz */
void api_openapi(http_req *r); /* GET /api/v1/openapi */
/* wait.c */
void api_wait(http_req *r); /* GET /api/v1/wait?query=&timeout=&count= */
/* events.c */
void api_events(http_req *r); /* GET /api/events (text/event-stream) */
/* static.c */
void http_static(http_req *r); /* GET anything else: the web UI's files */

/* ---- shared by the handlers ---- */

/* api_json.c: Mailpit's MessageSummary for a stored row (NULL when out of memory). */
json_t *api_summary_json(const store_row *row);
/* api_json.c: the id a handler should use for r->id: resolves "latest" (with the
   request's ?query=) to the newest message's id. malloc'd; NULL after replying 404
   (or 400 for a bad query). */
char *api_resolve_id(http_req *r);

/* events.c: live events to every open /api/events stream. type: "new", "delete",
   "update", "stats"; data: the JSON payload (stolen). HTTP thread only. */
void http_events_broadcast(http_ctx *ctx, const char *type, json_t *data);
/* events.c: after messages were deleted or changed by the API: send "stats" (mailbox
   total/unread) to the streams, coalesced. HTTP thread only. */
void http_events_stats_changed(http_ctx *ctx);

/* server.c: run fn(arg) on the HTTP thread, soon, in the order of the calls. Any thread
   may call it (e.g. api_send's on_done on the ingest thread, to send the reply). Every
   call that returned 0 is run on the HTTP thread before http_stop frees the server
   (evhttp and pending requests still exist then). Returns -1 once http_stop has begun
   or when memory is short: then fn is never called and the caller still owns arg. */
int http_run_on_thread(http_ctx *ctx, void (*fn)(void *), void *arg);

/* wait.c: re-check waiting requests (after new messages were stored). HTTP thread. */
void http_waiters_check(http_ctx *ctx);

/* embedded web files (generated at build time from src/mailsink/web/ by
   cmake/embed_web.cmake) */
typedef struct web_file {
    const char *path; /* "/index.html", "/app.js", "/openapi.json" */
    const char *content_type;
    const unsigned char *data;
    size_t size;
} web_file;
extern const web_file web_files[];
extern const size_t web_files_count;

#endif
