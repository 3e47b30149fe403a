/*
 * api_send.c - POST /api/v1/send: build a message from Mailpit's SendRequest and store it
 * the way an SMTP message is stored (the HTTP client's address as ClientAddr). The
 * answer {"ID": ...} leaves only after the store committed it, like SMTP's 250.
 *
 * The commit is reported on the ingest thread; the reply is handed back to the HTTP
 * thread with http_run_on_thread. If the client went away meanwhile, libevent keeps the
 * request (detached from its connection, since we had not answered) and frees it when
 * we reply, so no close callback is needed.
 */
#include "mailsink/http/api_json.h"

#include "mailsink/mime_build.h"

#include <event2/buffer.h>
#include <openssl/rand.h>

#include <stdlib.h>
#include <string.h>

#define API_SEND_ID_LEN 22

/* A send waiting for its commit. */
typedef struct api_send_pending {
    http_ctx *ctx;
    struct evhttp_request *req;
    int rc;
    char id[API_SEND_ID_LEN + 1];
} api_send_pending;

static void
api_send_error(http_req *r, int status, const char *msg)
{
    json_t *body = json_pack("{s:o}", "Error", api_string(msg));
    if (body)
        http_reply_json(r, status, body);
    else
        http_reply_text(r, status, msg);
}

/*
 * A unique id like Mailpit's: 22 base62 characters from OpenSSL's random generator
 * (about 131 bits). Bytes >= 248 are skipped so that every character is equally likely.
 * -1 when the generator fails.
 */
static int
api_send_new_id(char out[API_SEND_ID_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = 0;
    for (int round = 0; round < 16 && n < API_SEND_ID_LEN; round++) {
        unsigned char buf[32];
        if (RAND_bytes(buf, sizeof buf) != 1)
            return -1;
        for (size_t i = 0; i < sizeof buf && n < API_SEND_ID_LEN; i++)
            if (buf[i] < 248)
                out[n++] = alphabet[buf[i] % 62];
    }
    out[n] = '\0';
    return n == API_SEND_ID_LEN ? 0 : -1;
}

/* HTTP thread: the commit's outcome reaches the client. */
static void
api_send_finish(void *arg)
{
    api_send_pending *p = arg;
    http_req r = {.req = p->req, .ctx = p->ctx, .path = "/api/v1/send"};
    if (p->rc == 0) {
        /* (RuntimeStats count it with every other stored message, in http_stored) */
        json_t *body = json_pack("{s:s}", "ID", p->id);
        if (body)
            http_reply_json(&r, 200, body);
        else
            api_send_error(&r, 500, "out of memory");
    } else if (p->rc == STORE_EFULL) {
        api_send_error(&r, 507, "the store is full");
    } else {
        api_send_error(&r, 500, "the message could not be stored");
    }
    free(p);
}

/* Ingest thread, after the commit (or its failure). */
static void
api_send_done_cb(void *ctx, const char *id, int rc)
{
    (void)id;
    api_send_pending *p = ctx;
    p->rc = rc;
    /* -1 only while the server stops: the request dies with it and p, never to be
       touched again, is left (one small block, once) */
    (void)http_run_on_thread(p->ctx, api_send_finish, p);
}

/* Build and queue; 0 once queued (p then belongs to the ingest item), else -1 after
   replying. */
static int
api_send_queue(http_req *r, const json_t *req, api_send_pending *p)
{
    const config *cfg = r->ctx->cfg;
    mime_built b = {0};
    char err[256] = "";
    if (mime_build_send(req, cfg->hostname && *cfg->hostname ? cfg->hostname : "localhost", &b, err,
                        sizeof err) < 0) {
        api_send_error(r, 400, *err ? err : "invalid request");
        mime_built_cleanup(&b);
        return -1;
    }
    if (cfg->max_message_size && b.len > cfg->max_message_size) {
        api_send_error(r, 413, "message too large");
        mime_built_cleanup(&b);
        return -1;
    }
    ingest_item *it = ingest_item_new_local(
        p->id, b.sender, (const char *const *)b.rcpts, b.rcpt_count, b.data, b.len,
        http_client_addr(r), (const char *const *)b.tags, b.tag_count, api_send_done_cb, p);
    mime_built_cleanup(&b);
    if (!it) {
        api_send_error(r, 500, "out of memory");
        return -1;
    }
    if (ingest_enqueue(r->ctx->ingest, it) < 0) {
        ingest_item_free(it);
        api_send_error(r, 503, "the store's queue is full; try again");
        return -1;
    }
    return 0;
}

void
api_send(http_req *r)
{
    const config *cfg = r->ctx->cfg;
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
    if (cfg->max_send_size && len > cfg->max_send_size) {
        api_send_error(r, 413, "request body too large");
        return;
    }
    if (!r->ctx->ingest) {
        api_send_error(r, 503, "sending is not available");
        return;
    }
    bool empty;
    json_t *req = http_body_json(r, &empty);
    if (!req || !json_is_object(req)) {
        api_send_error(r, 400,
                       empty  ? "a JSON body is required"
                       : !req ? "invalid JSON body"
                              : "the body must be a JSON object");
        json_decref(req);
        return;
    }
    api_send_pending *p = calloc(1, sizeof *p);
    if (!p || api_send_new_id(p->id) < 0) {
        api_send_error(r, 500, p ? "no random id" : "out of memory");
        free(p);
        json_decref(req);
        return;
    }
    p->ctx = r->ctx;
    p->req = r->req;
    if (api_send_queue(r, req, p) < 0)
        free(p);
    json_decref(req);
}
