/*
 * api_messages.c - the mailbox as a whole: list, search, delete, mark read and tags
 * (Mailpit's /api/v1/messages, /api/v1/search and /api/v1/tags). After every change the
 * open /api/events streams learn which messages went ("delete") or changed ("update"),
 * then the new counters ("stats").
 */
#include "mailsink/http/api_json.h"

#include <event2/buffer.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A page being written: the rows as MessageSummary objects, serialised one by one into
   out (a list of every message is large: no tree of all of them is ever built). A
   failure is remembered so the handler answers 500 instead of a list that silently
   lacks messages. */
typedef struct api_page {
    struct evbuffer *out;
    size_t count;
    bool failed;
} api_page;

static bool
api_messages_row_cb(const store_row *row, void *ctx)
{
    api_page *page = ctx;
    json_t *s = api_summary_json(row);
    char *text = s ? json_dumps(s, JSON_COMPACT) : NULL;
    json_decref(s);
    if (!text || (page->count && evbuffer_add(page->out, ",", 1) < 0) ||
        evbuffer_add(page->out, text, strlen(text)) < 0) {
        free(text);
        page->failed = true;
        return false;
    }
    free(text);
    page->count++;
    return true;
}

static bool
api_messages_tag_cb(const char *tag, long count, void *ctx)
{
    (void)count;
    return json_array_append_new(ctx, api_string(tag)) == 0;
}

/* All tags in use as a JSON array, or NULL on error. */
static json_t *
api_messages_all_tags(http_ctx *ctx)
{
    json_t *tags = json_array();
    if (tags && store_tags(ctx->st, api_messages_tag_cb, tags) < 0) {
        json_decref(tags);
        return NULL;
    }
    return tags;
}

/*
 * Answer a MessagesSummary: one page of the messages matching q (NULL = all). total and
 * unread always count the mailbox; messages_count and messages_unread the matches.
 */
static void
api_messages_page(http_req *r, const search_query *q)
{
    size_t start, limit;
    if (http_param_size(r, "start", 0, &start) < 0 || http_param_size(r, "limit", 50, &limit) < 0)
        return;
    /* past any real mailbox, and still a JSON integer when echoed back */
    if (start > (size_t)INT64_MAX)
        start = (size_t)INT64_MAX;
    http_ctx *ctx = r->ctx;
    store_counts box, match;
    if (store_mailbox_counts(ctx->st, &box) < 0 ||
        (q ? store_search_counts(ctx->st, q, &match) : store_mailbox_counts(ctx->st, &match)) < 0) {
        http_reply_error(r, 500, "cannot read the store");
        return;
    }
    api_page page = {.out = evbuffer_new()};
    json_t *tags = api_messages_all_tags(ctx);
    char *tags_text = tags ? json_dumps(tags, JSON_COMPACT) : NULL;
    json_decref(tags);
    /* MessagesSummary; "count" (this page's length) comes last, once it is known */
    if (!page.out || !tags_text ||
        evbuffer_add_printf(page.out,
                            "{\"total\":%ld,\"unread\":%ld,\"messages_count\":%ld,"
                            "\"messages_unread\":%ld,\"start\":%zu,\"tags\":%s,\"messages\":[",
                            box.total, box.unread, match.total, match.unread, start,
                            tags_text) < 0 ||
        store_search(ctx->st, q, start, limit, api_messages_row_cb, &page) < 0 || page.failed ||
        evbuffer_add_printf(page.out, "],\"count\":%zu}", page.count) < 0) {
        http_reply_error(r, 500, "cannot read the store");
        goto out;
    }
    size_t len = evbuffer_get_length(page.out);
    const unsigned char *data = evbuffer_pullup(page.out, -1);
    if (!data)
        http_reply_error(r, 500, "out of memory");
    else
        http_reply_bytes(r, 200, "application/json; charset=utf-8", data, len, NULL);
out:
    free(tags_text);
    if (page.out)
        evbuffer_free(page.out);
}

void
api_messages_list(http_req *r)
{
    api_messages_page(r, NULL);
}

/* The required "query" parameter parsed into q; -1 after replying 400. */
static int
api_messages_query(http_req *r, search_query *q)
{
    const char *s = http_param(r, "query");
    if (!s || !*s) {
        http_reply_error(r, 400, "query is required");
        return -1;
    }
    return http_parse_search(r, s, q);
}

void
api_search(http_req *r)
{
    search_query q = {0};
    if (api_messages_query(r, &q) < 0)
        return;
    api_messages_page(r, &q);
    search_query_free(&q);
}

/* ---- changes ---- */

/* Per-id "delete" events for one request, capped like the read/tag updates below: a
   delete of 100,000 messages would queue megabytes into every event stream (and get
   them dropped as slow readers). Past the cap the coalesced "stats" event tells open
   pages the mailbox shrank, and they fetch their page again. */
#define API_MESSAGES_DELETE_EVENTS_MAX 1000

typedef struct api_messages_deleted {
    http_ctx *ctx;
    size_t announced;
} api_messages_deleted;

static void
api_messages_deleted_cb(const char *id, void *arg)
{
    api_messages_deleted *d = arg;
    if (d->announced < API_MESSAGES_DELETE_EVENTS_MAX) {
        d->announced++;
        api_event_delete(d->ctx, id);
    }
}

/* Delete ids (n > 0), else those matching q (NULL = all); answer ok and tell the
   streams. */
static void
api_messages_delete_and_reply(http_req *r, const char *const *ids, size_t n, const search_query *q)
{
    http_ctx *ctx = r->ctx;
    api_messages_deleted d = {ctx, 0};
    long deleted = store_delete_matching(ctx->st, ids, n, q, api_messages_deleted_cb, &d);
    if (deleted < 0) {
        http_reply_error(r, 500, "cannot delete: the store failed");
        return;
    }
    ctx->stats.messages_deleted += (uint64_t)deleted;
    if (deleted > 0)
        http_events_stats_changed(ctx);
    http_reply_ok(r);
}

/*
 * The string array body[key] as a malloc'd vector of borrowed strings (valid while body
 * lives). Absent or null: *n = 0. -1 after replying 400 when it is not an array of
 * strings.
 */
static int
api_messages_ids(http_req *r, const json_t *body, const char *key, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const json_t *arr = json_is_object(body) ? json_object_get(body, key) : NULL;
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        http_reply_error(r, 400, "%s must be an array of strings", key);
        return -1;
    }
    size_t count = json_array_size(arr);
    if (count == 0)
        return 0;
    const char **v = calloc(count, sizeof *v);
    if (!v) {
        http_reply_error(r, 500, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        v[i] = json_string_value(json_array_get(arr, i));
        if (!v[i]) {
            free(v);
            http_reply_error(r, 400, "%s must be an array of strings", key);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

void
api_messages_delete(http_req *r)
{
    /* Behaviour 1: no body, an empty one or invalid JSON deletes every message (the npm
       clients send DELETE without a body). */
    bool empty;
    json_t *body = http_body_json(r, &empty);
    const char **ids = NULL;
    size_t n = 0;
    if (body && api_messages_ids(r, body, "IDs", &ids, &n) < 0)
        goto out;
    api_messages_delete_and_reply(r, ids, n, NULL);
out:
    free(ids);
    json_decref(body);
}

void
api_search_delete(http_req *r)
{
    search_query q = {0};
    if (api_messages_query(r, &q) < 0)
        return;
    api_messages_delete_and_reply(r, NULL, 0, &q);
    search_query_free(&q);
}

/* The JSON body of a PUT, which must be an object; NULL after replying 400. */
static json_t *
api_messages_put_body(http_req *r)
{
    bool empty;
    json_t *body = http_body_json(r, &empty);
    if (!body) {
        http_reply_error(r, 400, empty ? "a JSON body is required" : "invalid JSON body");
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        http_reply_error(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return body;
}

/* "update" events of one request name at most this many messages (by search or all: the
   newest, what open pages show); beyond, the UI has the stats event. A request may list
   a million IDs; its events stay bounded. */
#define API_MESSAGES_EVENT_MAX 1000

static bool
api_messages_id_cb(const store_row *row, void *ctx)
{
    return json_array_append_new(ctx, api_string(row->id)) == 0;
}

/*
 * The ids (newest first, at most API_MESSAGES_EVENT_MAX) of the messages matching q (NULL
 * = all) whose read flag is not `read` yet: q with one more term, is:unread or is:read.
 * NULL when that cannot be found out (then no per-message events are sent).
 */
static json_t *
api_messages_changing(http_ctx *ctx, const search_query *q, bool read)
{
    size_t count = q ? q->count : 0;
    search_term *terms = calloc(count + 1, sizeof *terms);
    json_t *ids = json_array();
    if (!terms || !ids)
        goto fail;
    if (count)
        memcpy(terms, q->terms, count * sizeof *terms); /* borrowed values, not freed */
    terms[count].field = read ? SEARCH_IS_UNREAD : SEARCH_IS_READ;
    search_query q2 = {.terms = terms, .count = count + 1};
    if (store_search(ctx->st, &q2, 0, API_MESSAGES_EVENT_MAX, api_messages_id_cb, ids) < 0)
        goto fail;
    free(terms);
    return ids;
fail:
    free(terms);
    json_decref(ids);
    return NULL;
}

void
api_messages_read(http_req *r)
{
    json_t *body = api_messages_put_body(r);
    if (!body)
        return;
    const char **ids = NULL;
    size_t n = 0;
    search_query q = {0};
    bool use_q = false;
    json_t *changing = NULL;
    const json_t *jread = json_object_get(body, "Read");
    const json_t *jsearch = json_object_get(body, "Search");
    if (jread && !json_is_boolean(jread) && !json_is_null(jread)) {
        http_reply_error(r, 400, "Read must be true or false");
        goto out;
    }
    if (jsearch && !json_is_string(jsearch) && !json_is_null(jsearch)) {
        http_reply_error(r, 400, "Search must be a string");
        goto out;
    }
    if (api_messages_ids(r, body, "IDs", &ids, &n) < 0)
        goto out;
    /* Mailpit: IDs, else Search, else every message; Read absent means false */
    bool read = json_is_true(jread);
    const char *search = json_string_value(jsearch);
    if (n == 0 && search && *search) {
        if (http_parse_search(r, search, &q) < 0)
            goto out;
        use_q = true;
    }
    http_ctx *ctx = r->ctx;
    /* by search or all: learn first which (newest) messages will change, for events */
    changing = n == 0 ? api_messages_changing(ctx, use_q ? &q : NULL, read) : NULL;
    long changed = store_set_read(ctx->st, ids, n, use_q ? &q : NULL, read);
    if (changed < 0) {
        http_reply_error(r, 500, "cannot update: the store failed");
        goto out;
    }
    for (size_t i = 0; i < n && i < API_MESSAGES_EVENT_MAX && changed > 0; i++)
        api_event_read(ctx, ids[i], read);
    size_t k;
    json_t *v;
    json_array_foreach(changing, k, v) api_event_read(ctx, json_string_value(v), read);
    if (changed > 0)
        http_events_stats_changed(ctx);
    http_reply_ok(r);
out:
    json_decref(changing);
    search_query_free(&q);
    free(ids);
    json_decref(body);
}

/* ---- tags ---- */

void
api_tags_list(http_req *r)
{
    json_t *tags = api_messages_all_tags(r->ctx);
    if (!tags) {
        http_reply_error(r, 500, "cannot read the store");
        return;
    }
    http_reply_json(r, 200, tags);
}

/* Tell the streams the new tags of each listed message, as the store now has them. */
static void
api_tags_events(http_ctx *ctx, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n && i < API_MESSAGES_EVENT_MAX; i++) {
        store_row row;
        if (store_get(ctx->st, ids[i], &row) < 0)
            continue;
        json_t *data =
            json_pack("{s:o,s:o}", "ID", api_string(row.id), "Tags", api_tags_json(row.tags));
        if (data)
            http_events_broadcast(ctx, "update", data);
        store_row_cleanup(&row);
    }
}

void
api_tags_set(http_req *r)
{
    json_t *body = api_messages_put_body(r);
    if (!body)
        return;
    const char **ids = NULL, **tags = NULL;
    size_t n = 0, ntags = 0;
    if (api_messages_ids(r, body, "IDs", &ids, &n) < 0 ||
        api_messages_ids(r, body, "Tags", &tags, &ntags) < 0)
        goto out;
    if (n > 0) {
        long changed = store_set_tags(r->ctx->st, ids, n, tags, ntags);
        if (changed < 0) {
            http_reply_error(r, 500, "cannot set tags: the store failed");
            goto out;
        }
        if (changed > 0) {
            api_tags_events(r->ctx, ids, n);
            http_events_stats_changed(r->ctx);
        }
    }
    http_reply_ok(r);
out:
    free(ids);
    free(tags);
    json_decref(body);
}
