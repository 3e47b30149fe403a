/*
 * static.c - the embedded web UI (web_files, generated from src/mailsink/web/ at build
 * time). "/" is "/index.html"; an unknown path without a file extension is a route of
 * the single-page UI and gets index.html too; any other unknown path is 404.
 *
 * index.html learns where it is served: every "{{WEBROOT}}" in it becomes the webroot
 * ("/" or "/prefix/"; --webroot allows only URL-safe characters, so nothing needs
 * escaping). The UI's files are revalidated on every use (Cache-Control: no-cache) with
 * an ETag: a new build is seen at once, an unchanged file costs a 304.
 *
 * HTTP thread only.
 */
#include "mailsink/http/internal.h"
#include "mailsink/http/server_parts.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATIC_PLACEHOLDER "{{WEBROOT}}"

static const web_file *
static_find(const char *path)
{
    for (size_t i = 0; i < web_files_count; i++)
        if (web_files[i].size && strcmp(web_files[i].path, path) == 0)
            return &web_files[i];
    return NULL;
}

/* FNV-1a: the ETag only has to change when the bytes do. */
static uint64_t
static_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The first placeholder in [p, end), or NULL (memmem is a GNU extension). */
static const char *
static_placeholder(const char *p, const char *end)
{
    const size_t n = sizeof STATIC_PLACEHOLDER - 1;

    for (; (size_t)(end - p) >= n; p++) {
        p = memchr(p, '{', (size_t)(end - p) - n + 1);
        if (!p)
            return NULL;
        if (memcmp(p, STATIC_PLACEHOLDER, n) == 0)
            return p;
    }
    return NULL;
}

/* The file's bytes as served: index.html with the placeholder replaced. */
static struct evbuffer *
static_body(const web_file *f, const char *webroot)
{
    struct evbuffer *b = evbuffer_new();
    const char *p = (const char *)f->data, *end = p + f->size;
    const size_t plen = sizeof STATIC_PLACEHOLDER - 1;

    if (!b)
        return NULL;
    if (strcmp(f->path, "/index.html") != 0) {
        evbuffer_add_reference(b, f->data, f->size, NULL, NULL);
        return b;
    }
    while (p < end) {
        const char *hit = static_placeholder(p, end);
        size_t n = hit ? (size_t)(hit - p) : (size_t)(end - p);
        evbuffer_add(b, p, n);
        if (!hit)
            break;
        evbuffer_add(b, webroot, strlen(webroot));
        p = hit + plen;
    }
    return b;
}

/* "/app.js" has an extension; "/message/abc" (a UI route) has not. */
static bool
static_is_route(const char *path)
{
    const char *last = strrchr(path, '/');
    return !strchr(last ? last : path, '.');
}

void
http_static(http_req *r)
{
    const char *path = strcmp(r->path, "/") == 0 ? "/index.html" : r->path;
    const web_file *f = static_find(path);
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    char etag[40];

    if (!f && static_is_route(path))
        f = static_find("/index.html");
    if (!f) {
        http_reply_text(r, 404, "not found");
        return;
    }
    struct evbuffer *body = static_body(f, r->ctx->webroot);
    if (!body) {
        http_reply_text(r, 500, "out of memory");
        return;
    }
    size_t len = evbuffer_get_length(body);
    uint64_t h = static_hash(14695981039346656037ull, evbuffer_pullup(body, -1), len);
    snprintf(etag, sizeof etag, "\"%016" PRIx64 "\"", h);
    http_headers_ui(r->req);
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "ETag", etag);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
    if (inm && strstr(inm, etag)) {
        evhttp_send_reply(r->req, 304, "Not Modified", NULL);
    } else {
        evhttp_remove_header(out, "Content-Type");
        evhttp_add_header(out, "Content-Type", f->content_type);
        http_send_buffer(r->req, 200, "OK", body);
    }
    evbuffer_free(body);
}
