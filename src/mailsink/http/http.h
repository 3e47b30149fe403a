/*
 * http.h - mailsink's HTTP side: the Mailpit-compatible REST API under /api/v1/, live
 * events at /api/events (server-sent events), the embedded web UI, on libevent's evhttp
 * with its own thread and event_base, reading the store through its own handle (WAL), so
 * nothing here ever blocks SMTP.
 *
 * Threads: http_start/http_stop from main; http_stored (the ingest thread's callback,
 * see ingest_on_stored) from any thread.
 */
#ifndef MAILSINK_HTTP_H
#define MAILSINK_HTTP_H

#include "mailsink/cli/config.h"
#include "mailsink/ingest.h"

#include <stddef.h>

typedef struct http_server http_server;

/*
 * Bind c->http (ADDR:PORT; the caller skips this when it is "none"), load
 * c->http_auth_file and the c->http_tls_cert/key pair, open a reader on c->db_path
 * (for ":memory:", db is the writer's path to share; see main.c), and start serving on
 * a new thread. in: where POST /api/v1/send queues messages. Every check happens before
 * this returns: NULL with one clear message in err ("--http 127.0.0.1:8025: Address
 * already in use").
 */
http_server *http_start(const config *c, const char *db_path, ingest *in, char *err,
                        size_t errsize);

/* The address actually bound ("127.0.0.1:8025"; the port is the real one when 0 was
   asked), for main's "HTTP on http://..." line. */
const char *http_bound(const http_server *h);

/* ingest_stored_fn: messages were committed; push "new" events, wake waiters. */
void http_stored(void *h, const char *const *ids, size_t n);

/* Before ingest_stop: from now on the HTTP thread queues no more messages (POST
   /api/v1/send answers 503), so in may be freed. Returns once that holds. Main's
   thread; the server keeps serving everything else. */
void http_detach_ingest(http_server *h);

/* Stop accepting, end live-event streams and waiters, join the thread, free. */
void http_stop(http_server *h);

#endif
