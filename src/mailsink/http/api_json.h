/*
 * api_json.h - small JSON and text helpers the API handlers (api_*.c) share beyond what
 * internal.h declares: times in RFC 3339, tag lists, envelope Bcc, events. HTTP thread
 * (the pure ones any thread).
 */
#ifndef MAILSINK_HTTP_API_JSON_H
#define MAILSINK_HTTP_API_JSON_H

#include "mailsink/http/internal.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* Unix ms as RFC 3339 in UTC with milliseconds: "2026-11-25T17:30:00.123Z". */
#define API_TIME_SIZE 32
void api_time_format(int64_t ms, char buf[API_TIME_SIZE]);

/* A JSON string for s (NULL = ""), whatever its bytes: invalid UTF-8 (a raw 8-bit header,
   say) becomes U+FFFD instead of making Jansson refuse the whole object. NULL on OOM. */
json_t *api_string(const char *s);

/* A store_row's tags ("a\nb", "" = none) as a JSON array of strings. NULL on OOM. */
json_t *api_tags_json(const char *tags);

/* An address list header value as an array of Address objects ([] for NULL/""); NULL
   on OOM. */
json_t *api_addresses_json(const char *list);

/* The envelope recipients (rcpts_json: a JSON array of strings) that appear in none of
   the Address arrays in `seen` (NULL entries skipped; compared case-insensitively), as
   Address objects with an empty Name: Mailpit's Bcc. NULL on OOM. */
json_t *api_envelope_bcc_json(const char *rcpts_json, const json_t *const *seen, size_t nseen);

/* The JSON array of strings in rcpts_json ([] when unreadable). NULL on OOM. */
json_t *api_rcpts_json(const char *rcpts_json);

/* Live events for one message: "delete" {"ID"}, "update" {"ID", "Read"} or {"ID",
   "Tags"}. The payloads the web UI reads. */
void api_event_delete(http_ctx *ctx, const char *id);
void api_event_read(http_ctx *ctx, const char *id, bool read);

#endif
