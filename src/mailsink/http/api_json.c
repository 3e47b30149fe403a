/*
 * api_json.c - the JSON the handlers share: Mailpit's MessageSummary for a stored row,
 * the resolution of the "latest" id, and the helpers of api_json.h.
 */
#include "mailsink/http/api_json.h"

#include "mailsink/mime_message.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void
api_time_format(int64_t ms, char buf[API_TIME_SIZE])
{
    /* floor division so that times before 1970 still print a valid date */
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, API_TIME_SIZE, "1970-01-01T00:00:00.000Z");
        return;
    }
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, API_TIME_SIZE, "%s.%03dZ", date, (int)frac);
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 when it is not one. */
static size_t
api_json_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* no overlong forms, no surrogates, nothing past U+10FFFF */
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

static json_t *
api_json_stringn(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    /* invalid UTF-8: replace each bad byte by U+FFFD (3 bytes) */
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = api_json_utf8_len(p + i, n - i);
        if (len == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, p + i, len);
            o += len;
            i += len;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

json_t *
api_string(const char *s)
{
    return api_json_stringn(s ? s : "", s ? strlen(s) : 0);
}

json_t *
api_tags_json(const char *tags)
{
    json_t *arr = json_array();
    if (!arr || !tags)
        return arr;
    const char *p = tags;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0 && json_array_append_new(arr, api_json_stringn(p, n)) < 0) {
            json_decref(arr);
            return NULL;
        }
        p += n + (nl ? 1 : 0);
    }
    return arr;
}

json_t *
api_addresses_json(const char *list)
{
    /* most Cc and Reply-To are empty: no parser for those (lists of 100k rows) */
    if (!list || !*list)
        return json_array();
    return mime_address_list_json(list);
}

json_t *
api_rcpts_json(const char *rcpts_json)
{
    json_t *arr = rcpts_json && *rcpts_json ? json_loads(rcpts_json, 0, NULL) : NULL;
    if (arr && json_is_array(arr))
        return arr;
    json_decref(arr);
    return json_array();
}

/* Whether addr is the Address of one of the objects in the arrays of seen. */
static bool
api_json_address_seen(const char *addr, const json_t *const *seen, size_t nseen)
{
    for (size_t i = 0; i < nseen; i++) {
        size_t k;
        const json_t *a;
        json_array_foreach(seen[i], k, a)
        {
            const char *s = json_string_value(json_object_get(a, "Address"));
            if (s && strcasecmp(s, addr) == 0)
                return true;
        }
    }
    return false;
}

json_t *
api_envelope_bcc_json(const char *rcpts_json, const json_t *const *seen, size_t nseen)
{
    json_t *rcpts = api_rcpts_json(rcpts_json);
    json_t *out = json_array();
    if (!rcpts || !out)
        goto fail;
    size_t i;
    json_t *v;
    json_array_foreach(rcpts, i, v)
    {
        const char *addr = json_string_value(v);
        const json_t *mine = out;
        /* the envelope may name one address twice; list it once */
        if (!addr || !*addr || api_json_address_seen(addr, seen, nseen) ||
            api_json_address_seen(addr, &mine, 1))
            continue;
        if (json_array_append_new(
                out, json_pack("{s:s,s:o}", "Name", "", "Address", api_string(addr))) < 0)
            goto fail;
    }
    json_decref(rcpts);
    return out;
fail:
    json_decref(rcpts);
    json_decref(out);
    return NULL;
}

/* The From Address: the header's first address, else the envelope sender. */
static json_t *
api_json_from(const store_row *row)
{
    json_t *list = api_addresses_json(row->summary.from);
    json_t *first = json_array_get(list, 0);
    if (first) {
        json_incref(first);
        json_decref(list);
        return first;
    }
    json_decref(list);
    return json_pack("{s:s,s:o}", "Name", "", "Address", api_string(row->sender));
}

/* Add key: value (stolen) to obj; false when value is NULL (out of memory). */
static bool
api_json_set(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0;
}

json_t *
api_summary_json(const store_row *row)
{
    json_t *o = json_object();
    json_t *to = api_addresses_json(row->summary.to);
    json_t *cc = api_addresses_json(row->summary.cc);
    if (!o || !to || !cc)
        goto fail;
    const json_t *seen[] = {to, cc};
    char created[API_TIME_SIZE];
    api_time_format(row->received_ms, created);
    /* each value is made only when its turn comes (api_json_set consumes it, also on
       failure); to/cc get one more reference for the Bcc comparison */
    bool ok = api_json_set(o, "ID", api_string(row->id)) &&
              api_json_set(o, "MessageID", api_string(row->summary.message_id)) &&
              api_json_set(o, "Read", json_boolean(row->read)) &&
              api_json_set(o, "From", api_json_from(row)) &&
              api_json_set(o, "To", json_incref(to)) && api_json_set(o, "Cc", json_incref(cc)) &&
              api_json_set(o, "Bcc", api_envelope_bcc_json(row->rcpts_json, seen, 2)) &&
              api_json_set(o, "ReplyTo", api_addresses_json(row->summary.reply_to)) &&
              api_json_set(o, "Subject", api_string(row->summary.subject)) &&
              api_json_set(o, "Created", json_string(created)) &&
              api_json_set(o, "Username", api_string(row->auth_user)) &&
              api_json_set(o, "Tags", api_tags_json(row->tags)) &&
              api_json_set(o, "Size", json_integer((json_int_t)row->size)) &&
              api_json_set(o, "Attachments", json_integer(row->summary.attachments)) &&
              api_json_set(o, "Snippet", api_string(row->summary.snippet));
    json_decref(to);
    json_decref(cc);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
fail:
    json_decref(o);
    json_decref(to);
    json_decref(cc);
    return NULL;
}

char *
api_resolve_id(http_req *r)
{
    if (!r->id || !*r->id) {
        http_reply_error(r, 404, "message not found");
        return NULL;
    }
    if (strcmp(r->id, "latest") != 0) {
        char *id = strdup(r->id);
        if (!id)
            http_reply_error(r, 500, "out of memory");
        return id;
    }
    const char *q = http_param(r, "query");
    search_query sq = {0};
    if (q && *q && http_parse_search(r, q, &sq) < 0)
        return NULL;
    char *id = store_latest_id(r->ctx->st, q && *q ? &sq : NULL);
    search_query_free(&sq);
    if (!id)
        http_reply_error(r, 404, "message not found");
    return id;
}

void
api_event_delete(http_ctx *ctx, const char *id)
{
    json_t *data = json_pack("{s:o}", "ID", api_string(id));
    if (data)
        http_events_broadcast(ctx, "delete", data);
}

void
api_event_read(http_ctx *ctx, const char *id, bool read)
{
    json_t *data = json_pack("{s:o,s:b}", "ID", api_string(id), "Read", read);
    if (data)
        http_events_broadcast(ctx, "update", data);
}
