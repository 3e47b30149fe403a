/*
 * server.c - the HTTP server (http.h): its thread and event_base, the listener, HTTPS,
 * basic auth, --webroot, CORS, the route table, the reply and request helpers of
 * internal.h, and the one way other threads reach the HTTP thread (a queue of calls
 * drained by a user event).
 *
 * Threads: http_start/http_stop on main's thread; http_stored and http_run_on_thread
 * from any thread; everything else on the HTTP thread, which alone touches evhttp, the
 * reader store handle and the handlers' state.
 *
 * Content-Security-Policy of the web UI (static.c sends it with every UI file; the UI
 * engineer writes the pages to fit it): no inline script or style, nothing from other
 * origins; data: images (icons); message HTML is shown from /view/ in a frame of our
 * own origin (frame-src 'self'), sandboxed by the page.
 */
#include "mailsink/http/http.h"
#include "mailsink/auth_file.h"
#include "mailsink/cli/config.h"
#include "mailsink/http/internal.h"
#include "mailsink/http/server_parts.h"
#include "mailsink/log.h"

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HTTP_CSP_UI                                                                                \
    "default-src 'self'; frame-src 'self'; img-src 'self' data:; style-src 'self'; "               \
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; "              \
    "form-action 'self'"

#define HTTP_MAX_HEADERS ((ev_ssize_t)64 << 10) /* request line and headers */
#define HTTP_TIMEOUT_S 60                       /* reading a request, writing a reply */
#define HTTP_MAX_PARAMS 64                      /* query parameters per request */
#define HTTP_MAX_QUEUED_IDS 100000              /* stored ids waiting for the HTTP thread */
#define HTTP_STOP_FLUSH_MS 200                  /* at stop, time for the last replies to leave */
#define HTTP_BODY_SLACK 4                       /* bodies up to 4 x --max-send-size are read */
#define HTTP_MAX_API_BODY (1 << 20)             /* any body but /send's (~40,000 IDs) */

typedef struct http_call {
    void (*fn)(void *);
    void *arg;
    bool on_stack; /* the caller's, not malloc'd (http_detach_ingest) */
    struct http_call *next;
} http_call;

struct http_server {
    http_ctx ctx;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    SSL_CTX *ssl;
    auth_file *auth;
    struct event *wake; /* made active by other threads: drain the queues */
    pthread_t thread;
    bool thread_started;
    char bound[80]; /* "127.0.0.1:8025", "[::1]:8025" */

    pthread_mutex_t mu; /* guards what follows */
    bool stopping;
    http_call *calls, *calls_tail;
    char **ids; /* stored, not yet announced */
    size_t nids, capids, dropped;
};

/* ---- replies ------------------------------------------------------------------------- */

void
http_send_buffer(struct evhttp_request *req, int status, const char *reason, struct evbuffer *body)
{
    /* libevent 2.1 sends whatever body it is given, HEAD or not; a HEAD answered with a
       body desynchronises a keep-alive connection (the body is read as the next reply).
       So a HEAD gets the GET's headers with the length the body would have, and none. */
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        char len[32];
        snprintf(len, sizeof len, "%zu", body ? evbuffer_get_length(body) : (size_t)0);
        evhttp_remove_header(out, "Content-Length");
        evhttp_add_header(out, "Content-Length", len);
        body = NULL;
    }
    evhttp_send_reply(req, status, reason, body);
}

void
http_reply_bytes(http_req *r, int status, const char *content_type, const void *data, size_t len,
                 const char *const *headers)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    struct evbuffer *body = evbuffer_new();

    if (content_type) {
        evhttp_remove_header(out, "Content-Type");
        evhttp_add_header(out, "Content-Type", content_type);
    }
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        evhttp_add_header(out, headers[i], headers[i + 1]);
    if (!body || (len && evbuffer_add(body, data, len) != 0)) {
        if (body)
            evbuffer_free(body);
        evhttp_send_error(r->req, 500, "Out of memory");
        return;
    }
    http_send_buffer(r->req, status, NULL, body);
    evbuffer_free(body);
}

void
http_reply_json(http_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (!text) {
        http_reply_text(r, 500, "out of memory");
        return;
    }
    http_reply_bytes(r, status, "application/json; charset=utf-8", text, strlen(text), NULL);
    free(text);
}

void
http_reply_text(http_req *r, int status, const char *text)
{
    http_reply_bytes(r, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

void
http_reply_ok(http_req *r)
{
    http_reply_text(r, 200, "ok");
}

void
http_reply_error(http_req *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        snprintf(msg, sizeof msg, "error");
    va_end(ap);
    http_reply_text(r, status, msg);
}

/* ---- request helpers ------------------------------------------------------------------ */

const char *
http_param(http_req *r, const char *name)
{
    return r->query ? evhttp_find_header(r->query, name) : NULL;
}

int
http_param_size(http_req *r, const char *name, size_t def, size_t *out)
{
    const char *v = http_param(r, name);
    char *end;
    unsigned long long n;

    if (!v || !*v) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno == ERANGE || n > SIZE_MAX) {
        http_reply_error(r, 400, "invalid %s", name);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

json_t *
http_body_json(http_req *r, bool *empty)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = in ? evbuffer_get_length(in) : 0;
    const unsigned char *p = len ? evbuffer_pullup(in, -1) : NULL;
    size_t i = 0;

    while (p && i < len && strchr(" \t\r\n", p[i]) && p[i])
        i++;
    *empty = i == len;
    if (*empty)
        return NULL;
    return json_loadb((const char *)p, len, 0, NULL);
}

const char *
http_client_addr(http_req *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    char *addr = NULL;
    ev_uint16_t port = 0;

    if (!conn)
        return "";
    evhttp_connection_get_peer(conn, &addr, &port);
    return addr ? addr : "";
}

int
http_parse_search(http_req *r, const char *q, search_query *out)
{
    char err[256];

    if (search_parse(q ? q : "", http_param(r, "tz"), out, err, sizeof err) != 0) {
        http_reply_error(r, 400, "%s", err);
        return -1;
    }
    return 0;
}

/* ---- headers ------------------------------------------------------------------------- */

static void
server_headers_common(struct evhttp_request *req)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);

    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
}

void
http_headers_ui(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                      HTTP_CSP_UI);
}

/* ---- the query string ------------------------------------------------------------------ */

/* Our own parser rather than evhttp_parse_query_str: that one refuses "?embed" (no '=')
   outright. A decoded NUL would silently cut a value short, so it is refused. */
static int
server_parse_query(const char *qs, struct evkeyvalq *out)
{
    char *copy = strdup(qs ? qs : ""), *p, *next;
    int rc = 0, count = 0;

    if (!copy)
        return -1;
    for (p = copy; p && *p; p = next) {
        next = strchr(p, '&');
        if (next)
            *next++ = '\0';
        if (!*p)
            continue;
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        size_t klen = 0, vlen = 0;
        char *k = evhttp_uridecode(p, 1, &klen);
        char *v = evhttp_uridecode(eq ? eq + 1 : "", 1, &vlen);
        if (!k || !v || strlen(k) != klen || strlen(v) != vlen || ++count > HTTP_MAX_PARAMS)
            rc = -1;
        else if (*k)
            evhttp_add_header(out, k, v);
        free(k);
        free(v);
        if (rc)
            break;
    }
    free(copy);
    return rc;
}

/* ---- basic auth -------------------------------------------------------------------------- */

/* RFC 7617: "Basic " base64(user ":" password). 1 when it names a user of the file. */
static int
server_auth_ok(const http_server *h, struct evhttp_request *req)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    unsigned char *dec;
    size_t len;
    int ok = 0;

    if (!v || strncasecmp(v, "Basic ", 6) != 0)
        return 0;
    v += 6;
    while (*v == ' ')
        v++;
    len = strlen(v);
    if (len == 0 || len % 4 != 0 || len > 4096 || !(dec = malloc(len / 4 * 3 + 1)))
        return 0;
    int n = EVP_DecodeBlock(dec, (const unsigned char *)v, (int)len);
    if (n >= 0) {
        n -= (v[len - 1] == '=') + (v[len - 2] == '='); /* DecodeBlock counts padding */
        dec[n] = '\0';
        char *colon = memchr(dec, ':', (size_t)n);
        if (colon && strlen((char *)dec) == (size_t)n) {
            *colon = '\0';
            ok = auth_file_check_password(h->auth, (char *)dec, colon + 1);
        }
        OPENSSL_cleanse(dec, (size_t)n);
    }
    free(dec);
    return ok;
}

/* ---- the route table ------------------------------------------------------------------- */

enum {
    M_GET = EVHTTP_REQ_GET,
    M_HEAD = EVHTTP_REQ_HEAD,
    M_POST = EVHTTP_REQ_POST,
    M_PUT = EVHTTP_REQ_PUT,
    M_DELETE = EVHTTP_REQ_DELETE,
};

typedef struct route {
    unsigned methods; /* M_GET also allows HEAD unless no_head */
    bool no_head;     /* streams and held requests: GET only */
    const char *pattern;
    void (*fn)(http_req *r);
} route;

static const route routes[] = {
    {M_GET, false, "/api/v1/messages", api_messages_list},
    {M_PUT, false, "/api/v1/messages", api_messages_read},
    {M_DELETE, false, "/api/v1/messages", api_messages_delete},
    {M_GET, false, "/api/v1/search", api_search},
    {M_DELETE, false, "/api/v1/search", api_search_delete},
    {M_GET, false, "/api/v1/tags", api_tags_list},
    {M_PUT, false, "/api/v1/tags", api_tags_set},
    {M_GET, false, "/api/v1/message/{ID}", api_message},
    {M_GET, false, "/api/v1/message/{ID}/headers", api_message_headers},
    {M_GET, false, "/api/v1/message/{ID}/raw", api_message_raw},
    {M_GET, false, "/api/v1/message/{ID}/part/{PartID}", api_message_part},
    {M_GET, false, "/api/v1/message/{ID}/envelope", api_message_envelope},
    {M_POST, false, "/api/v1/send", api_send},
    {M_GET, false, "/api/v1/info", api_info},
    {M_GET, false, "/api/v1/webui", api_webui},
    {M_GET, false, "/api/v1/openapi", api_openapi},
    {M_GET, true, "/api/v1/wait", api_wait},
    {M_GET, true, "/api/events", api_events},
    {M_GET, false, "/livez", api_health},
    {M_GET, false, "/readyz", api_health},
    {M_GET, false, "/view/{ID}.html", api_view_html},
    {M_GET, false, "/view/{ID}.txt", api_view_text},
};
#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

typedef struct route_match {
    char *id, *part; /* URL-decoded captures, malloc'd */
} route_match;

/* One placeholder: the path's characters up to the next '/' (or, when the pattern goes
   on inside the segment, up to that literal suffix: "{ID}.html"), decoded. An empty
   capture, a decoded NUL or '/' do not match. */
static bool
route_capture(const char **pp, const char **pathp, char **out)
{
    const char *p = *pp, *path = *pathp, *close = strchr(p, '}');
    const char *lit = close + 1, *lit_end = lit + strcspn(lit, "/{");
    size_t seg = strcspn(path, "/"), litlen = (size_t)(lit_end - lit);

    if (seg <= litlen || memcmp(path + seg - litlen, lit, litlen) != 0)
        return false;
    size_t raw_len = seg - litlen, dlen = 0;
    char *raw = strndup(path, raw_len);
    char *dec = raw ? evhttp_uridecode(raw, 0, &dlen) : NULL;
    free(raw);
    if (!dec || dlen == 0 || strlen(dec) != dlen || strchr(dec, '/')) {
        free(dec);
        return false;
    }
    *out = dec;
    *pp = lit_end;
    *pathp = path + seg;
    return true;
}

static bool
route_match_path(const char *pattern, const char *path, route_match *m)
{
    const char *p = pattern;

    memset(m, 0, sizeof *m);
    while (*p) {
        if (*p == '{') {
            char **slot = strncmp(p, "{ID}", 4) == 0 ? &m->id : &m->part;
            if (!route_capture(&p, &path, slot))
                goto no;
        } else if (*p++ != *path++) {
            goto no;
        }
    }
    if (*path == '\0')
        return true;
no:
    free(m->id);
    free(m->part);
    memset(m, 0, sizeof *m);
    return false;
}

static bool
route_allows(const route *rt, enum evhttp_cmd_type method)
{
    if (method == EVHTTP_REQ_HEAD && !rt->no_head)
        method = EVHTTP_REQ_GET;
    return (rt->methods & (unsigned)method) != 0;
}

/* "GET, HEAD, PUT" for the routes whose pattern matches path (none: 0). */
static size_t
route_allow_header(const char *path, char *buf, size_t size)
{
    static const struct {
        unsigned m;
        const char *name;
    } names[] = {{M_GET, "GET"}, {M_POST, "POST"}, {M_PUT, "PUT"}, {M_DELETE, "DELETE"}};
    unsigned all = 0;
    bool head = false;
    size_t matched = 0;
    route_match m;

    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!route_match_path(routes[i].pattern, path, &m))
            continue;
        free(m.id);
        free(m.part);
        all |= routes[i].methods;
        head = head || ((routes[i].methods & M_GET) && !routes[i].no_head);
        matched++;
    }
    buf[0] = '\0';
    for (size_t i = 0, n = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(all & names[i].m))
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s", n ? ", " : "", names[i].name,
                              names[i].m == M_GET && head ? ", HEAD" : "");
    }
    return matched;
}

/* ---- the router ------------------------------------------------------------------------- */

static bool
server_is_api(const char *path)
{
    return strncmp(path, "/api/", 5) == 0;
}

/* CORS (--api-cors) on /api/: the origin on every reply; a preflight OPTIONS gets 200. */
static bool
server_cors(http_server *h, struct evhttp_request *req, const char *path)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    const char *origin = h->ctx.cfg->api_cors;

    if (!origin || !server_is_api(path))
        return false;
    evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
    if (strcmp(origin, "*") != 0)
        evhttp_add_header(out, "Vary", "Origin");
    if (evhttp_request_get_command(req) != EVHTTP_REQ_OPTIONS)
        return false;
    evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS");
    evhttp_add_header(out, "Access-Control-Allow-Headers",
                      "Authorization, Content-Type, Accept, X-Requested-With");
    evhttp_add_header(out, "Access-Control-Max-Age", "600");
    evhttp_send_reply(req, 200, "OK", NULL);
    return true;
}

static void
server_plain(struct evhttp_request *req, int status, const char *text)
{
    http_req r = {.req = req};
    http_reply_text(&r, status, text);
}

/* "/a/../b", "/./x", "/.." : no route has such segments, and the UI's files are looked
   up by exact name, but a dot segment in a request is a probe or a broken client. */
/* RFC 9112 6.3: a request framed by two Content-Lengths, or by Content-Length and
   Transfer-Encoding, is an error. libevent takes the first header it finds, and the rest
   of the body would be read as a second request on the connection: a request that a
   proxy in front framed differently would be smuggled past it. */
static bool
server_has_ambiguous_framing(struct evhttp_request *req)
{
    unsigned lengths = 0, encodings = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
    {
        if (evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0)
            lengths++;
        else if (evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0)
            encodings++;
    }
    return lengths > 1 || encodings > 1 || (lengths && encodings);
}

static bool
server_has_dot_segment(const char *path)
{
    for (const char *p = path; (p = strstr(p, "/.")); p++) {
        size_t n = p[2] == '.' ? 3 : 2;
        if (p[n] == '/' || p[n] == '\0')
            return true;
    }
    return false;
}

/* Path below the webroot ("/api/v1/info"), or NULL after answering (404 outside the
   root, a redirect for the root without its slash). */
static const char *
server_strip_webroot(http_server *h, struct evhttp_request *req, const char *path)
{
    const char *root = h->ctx.webroot;
    size_t n = strlen(root);

    if (n == 1)
        return path;
    if (strncmp(path, root, n) == 0)
        return path + n - 1;
    if (strncmp(path, root, n - 1) == 0 && path[n - 1] == '\0') {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", root);
        server_plain(req, 301, root);
        return NULL;
    }
    server_plain(req, 404, "not found");
    return NULL;
}

static void
server_dispatch(http_server *h, struct evhttp_request *req, const char *path,
                struct evkeyvalq *query)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    http_req r = {.req = req, .ctx = &h->ctx, .path = path, .query = query};
    route_match m;
    char allow[96];

    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!route_allows(&routes[i], method) || !route_match_path(routes[i].pattern, path, &m))
            continue;
        r.id = m.id;
        r.part = m.part;
        /* bodies up to HTTP_BODY_SLACK x --max-send-size are read so that /send can refuse
           a message too large with its own JSON 413; every other body is a small JSON
           list of IDs or tags, and parsing a large one into a Jansson tree would cost
           many times its size in memory */
        if (routes[i].fn != api_send &&
            evbuffer_get_length(evhttp_request_get_input_buffer(req)) > HTTP_MAX_API_BODY)
            http_reply_error(&r, 413, "request body too large (at most %d octets)",
                             HTTP_MAX_API_BODY);
        else
            routes[i].fn(&r);
        free(m.id);
        free(m.part);
        return;
    }
    if (route_allow_header(path, allow, sizeof allow) > 0 || server_is_api(path)) {
        if (!allow[0]) {
            server_plain(req, 404, "not found");
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        server_plain(req, 405, "method not allowed");
        return;
    }
    if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD) {
        http_static(&r);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    server_plain(req, 405, "method not allowed");
}

static bool
server_is_health(const char *path)
{
    return strcmp(path, "/livez") == 0 || strcmp(path, "/readyz") == 0;
}

static void
server_request_cb(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq query;

    TAILQ_INIT(&query);
    server_headers_common(req);
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    pthread_mutex_unlock(&h->mu);
    if (stopping) { /* the streams and waiters were ended: hold nothing new */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        server_plain(req, 503, "server stopping");
        return;
    }
    if (server_has_ambiguous_framing(req)) {
        /* and close: what follows on this connection cannot be trusted to be a request */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        server_plain(req, 400, "ambiguous message framing");
        return;
    }
    if (!path || path[0] != '/' || server_has_dot_segment(path)) {
        server_plain(req, 400, "bad request target");
        return;
    }
    if (!(path = server_strip_webroot(h, req, path)))
        return;
    if (server_cors(h, req, path))
        return;
    if (h->auth && !server_is_health(path) && !server_auth_ok(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"mailsink\", charset=\"UTF-8\"");
        server_plain(req, 401, "unauthorized");
        return;
    }
    if (server_parse_query(evhttp_uri_get_query(uri), &query) != 0) {
        server_plain(req, 400, "bad query string");
    } else if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD, POST, PUT, DELETE, OPTIONS");
        server_plain(req, server_is_api(path) ? 204 : 405, "");
    } else {
        server_dispatch(h, req, path, &query);
    }
    evhttp_clear_headers(&query);
}

/* ---- calls from other threads ----------------------------------------------------------- */

static int
server_queue_call(http_server *h, http_call *c)
{
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    if (h->calls_tail)
        h->calls_tail->next = c;
    else
        h->calls = c;
    h->calls_tail = c;
    pthread_mutex_unlock(&h->mu);
    event_active(h->wake, EV_READ, 0);
    return 0;
}

int
http_run_on_thread(http_ctx *ctx, void (*fn)(void *), void *arg)
{
    http_server *h = (http_server *)ctx; /* ctx is the first member */
    http_call *c = malloc(sizeof *c);

    if (!c)
        return -1;
    *c = (http_call){.fn = fn, .arg = arg};
    if (server_queue_call(h, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

void
http_stored(void *arg, const char *const *ids, size_t n)
{
    http_server *h = arg;

    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n && !h->stopping; i++) {
        if (h->nids == h->capids && h->nids < HTTP_MAX_QUEUED_IDS) {
            size_t cap = h->capids ? 2 * h->capids : 64;
            char **grown = realloc(h->ids, cap * sizeof *grown);
            if (grown) {
                h->ids = grown;
                h->capids = cap;
            }
        }
        char *copy = h->nids < h->capids ? strdup(ids[i]) : NULL;
        if (copy)
            h->ids[h->nids++] = copy;
        else
            h->dropped++; /* still counted and still wakes the waiters */
    }
    pthread_mutex_unlock(&h->mu);
    event_active(h->wake, EV_READ, 0);
}

/* The user event: run the queued calls, announce stored messages; at stop, end the
   streams and waiters and let the loop end once the last replies had time to leave. */
static void
server_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    http_server *h = arg;
    (void)fd;
    (void)what;

    pthread_mutex_lock(&h->mu);
    http_call *calls = h->calls;
    char **ids = h->ids;
    size_t nids = h->nids, dropped = h->dropped;
    bool stopping = h->stopping;
    h->calls = h->calls_tail = NULL;
    h->ids = NULL;
    h->nids = h->capids = h->dropped = 0;
    pthread_mutex_unlock(&h->mu);

    while (calls) {
        http_call *next = calls->next;
        bool on_stack = calls->on_stack;
        calls->fn(calls->arg); /* may free an on_stack call's owner's frame: not touched */
        if (!on_stack)
            free(calls);
        calls = next;
    }
    if (nids || dropped)
        http_events_stored(&h->ctx, ids, nids, dropped);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    if (stopping) {
        http_events_end_all(h->ctx.events);
        http_waiters_end_all(h->ctx.waiters);
        if (h->sock)
            evhttp_del_accept_socket(h->http, h->sock);
        h->sock = NULL;
        event_base_loopexit(h->ctx.base, &(struct timeval){0, HTTP_STOP_FLUSH_MS * 1000});
    }
}

static void *
server_thread_main(void *arg)
{
    http_server *h = arg;

    event_base_loop(h->ctx.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

static pthread_once_t server_threads_once = PTHREAD_ONCE_INIT;
static int server_threads_rc;

static void
server_threads_init(void)
{
    server_threads_rc = evthread_use_pthreads();
}

static struct bufferevent *
server_tls_bev_cb(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);

    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static int
server_tls_load(http_server *h, const config *c, char *err, size_t errsize)
{
    char why[256] = "";

    if (!c->http_tls_cert)
        return 0;
    ERR_clear_error();
    if (!(h->ssl = SSL_CTX_new(TLS_server_method())) ||
        !SSL_CTX_set_min_proto_version(h->ssl, TLS1_2_VERSION)) {
        snprintf(err, errsize, "--http-tls-cert: cannot set up TLS");
        return -1;
    }
    SSL_CTX_set_options(h->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(h->ssl, c->http_tls_cert) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        snprintf(err, errsize, "--http-tls-cert %.300s: %s", c->http_tls_cert, why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(h->ssl, c->http_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(h->ssl) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        snprintf(err, errsize, "--http-tls-key %.300s: %s", c->http_tls_key, why);
        return -1;
    }
    return 0;
}

static int
server_auth_load(http_server *h, const config *c, char *err, size_t errsize)
{
    char why[512];

    if (!c->http_auth_file)
        return 0;
    if (!(h->auth = auth_file_load(c->http_auth_file, why, sizeof why))) {
        /* the loader names its flag --auth-file; this is the HTTP one */
        const char *rest = strncmp(why, "--auth-file ", 12) == 0 ? why + 12 : why;
        snprintf(err, errsize, "--http-auth-file %s", rest);
        return -1;
    }
    return 0;
}

static int
server_bind(http_server *h, const config *c, char *err, size_t errsize)
{
    char *addr = NULL, *port = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int rc = -1;

    if (config_parse_listen(c->http, &addr, &port) != 0) {
        snprintf(err, errsize, "--http %s: bad address", c->http);
        goto out;
    }
    h->sock = evhttp_bind_socket_with_handle(h->http, addr, (ev_uint16_t)strtoul(port, NULL, 10));
    if (!h->sock) {
        int e = errno;
        snprintf(err, errsize, "--http %s: %s", c->http, e ? strerror(e) : "cannot listen");
        goto out;
    }
    int fd = evhttp_bound_socket_get_fd(h->sock);
    /* Replies leave as soon as they are written: without TCP_NODELAY the last segment of
       a reply larger than one segment waits ~40 ms for a keep-alive client's delayed ACK
       (found by bench/http_latency.py). Linux hands it on to the accepted sockets;
       evhttp offers no hook on them. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errsize, "--http %s: %s", c->http, strerror(errno));
        goto out;
    }
    unsigned p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    bool v6 = strchr(addr, ':') != NULL;
    snprintf(h->bound, sizeof h->bound, "%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "", p);
    rc = 0;
out:
    free(addr);
    free(port);
    return rc;
}

static size_t
server_body_cap(size_t max_send)
{
    size_t cap = max_send < SIZE_MAX / HTTP_BODY_SLACK ? max_send * HTTP_BODY_SLACK : SIZE_MAX;
    cap = cap > ((size_t)1 << 20) ? cap : (size_t)1 << 20;
    return cap < (size_t)INT64_MAX ? cap : (size_t)INT64_MAX;
}

static int
server_setup_http(http_server *h, const config *c)
{
    if (!(h->http = evhttp_new(h->ctx.base)))
        return -1;
    evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS);
    /* Bodies a little over --max-send-size are still read, so that the handler refuses
       them in its own words (POST /api/v1/send: 413 with a JSON error, which clients
       parse); far beyond, evhttp refuses them itself (413, its HTML page) unread. */
    evhttp_set_max_body_size(h->http, (ev_ssize_t)server_body_cap(c->max_send_size));
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_default_content_type(h->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(h->http, server_request_cb, h);
    if (h->ssl)
        evhttp_set_bevcb(h->http, server_tls_bev_cb, h->ssl);
    return 0;
}

/* Everything that can fail, in the calling thread: nothing is served before it all
   worked. */
static int
server_open(http_server *h, const config *c, const char *db_path, char *err, size_t errsize)
{
    pthread_once(&server_threads_once, server_threads_init);
    if (server_threads_rc != 0) {
        snprintf(err, errsize, "--http: libevent has no thread support");
        return -1;
    }
    if (server_auth_load(h, c, err, errsize) != 0 || server_tls_load(h, c, err, errsize) != 0)
        return -1;
    if (!(h->ctx.st = store_open(db_path, STORE_READER, err, errsize)))
        return -1;
    if (!(h->ctx.base = event_base_new()) || server_setup_http(h, c) != 0 ||
        !(h->wake = event_new(h->ctx.base, -1, 0, server_wake_cb, h))) {
        snprintf(err, errsize, "--http: cannot set up the event loop");
        return -1;
    }
    if (server_bind(h, c, err, errsize) != 0)
        return -1;
    if (!(h->ctx.events = http_events_new(&h->ctx)) ||
        !(h->ctx.waiters = http_waiters_new(&h->ctx))) {
        snprintf(err, errsize, "--http: out of memory");
        return -1;
    }
    return 0;
}

static void
server_free(http_server *h)
{
    if (!h)
        return;
    /* the streams and waiters were ended by the loop; evhttp_free closes what is left */
    if (h->http)
        evhttp_free(h->http);
    http_waiters_free(h->ctx.waiters);
    http_events_free(h->ctx.events);
    if (h->wake)
        event_free(h->wake);
    if (h->ctx.base)
        event_base_free(h->ctx.base);
    store_close(h->ctx.st);
    SSL_CTX_free(h->ssl);
    auth_file_free(h->auth);
    for (size_t i = 0; i < h->nids; i++)
        free(h->ids[i]);
    free(h->ids);
    while (h->calls) { /* only when the thread never ran */
        http_call *next = h->calls->next;
        if (!h->calls->on_stack)
            free(h->calls);
        h->calls = next;
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

http_server *
http_start(const config *c, const char *db_path, ingest *in, char *err, size_t errsize)
{
    http_server *h = calloc(1, sizeof *h);

    if (!h) {
        snprintf(err, errsize, "--http: out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->ctx.cfg = c;
    h->ctx.ingest = in;
    h->ctx.webroot = c->webroot ? c->webroot : "/";
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h->ctx.stats.started_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (server_open(h, c, db_path, err, errsize) != 0) {
        server_free(h);
        return NULL;
    }
    if (pthread_create(&h->thread, NULL, server_thread_main, h) != 0) {
        snprintf(err, errsize, "--http: cannot start its thread");
        server_free(h);
        return NULL;
    }
    h->thread_started = true;
    return h;
}

const char *
http_bound(const http_server *h)
{
    return h->bound;
}

typedef struct server_detach {
    http_server *h;
    http_call call;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
} server_detach;

static void
server_detach_run(void *arg)
{
    server_detach *d = arg;

    d->h->ctx.ingest = NULL;
    pthread_mutex_lock(&d->mu);
    d->done = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void
http_detach_ingest(http_server *h)
{
    server_detach d = {.h = h, .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

    if (!h)
        return;
    d.call = (http_call){.fn = server_detach_run, .arg = &d, .on_stack = true};
    if (server_queue_call(h, &d.call) != 0)
        return; /* http_stop has begun: no handler runs any more */
    pthread_mutex_lock(&d.mu);
    while (!d.done)
        pthread_cond_wait(&d.cond, &d.mu);
    pthread_mutex_unlock(&d.mu);
    pthread_cond_destroy(&d.cond);
    pthread_mutex_destroy(&d.mu);
}

void
http_stop(http_server *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_mutex_unlock(&h->mu);
    event_active(h->wake, EV_READ, 0);
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    server_free(h);
}
