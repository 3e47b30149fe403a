/*
 * api_info.c - what the server says about itself: /api/v1/info (Mailpit's
 * AppInformation), /api/v1/webui (WebUIConfiguration), the health checks and the
 * OpenAPI document embedded with the web files.
 */
#include "mailsink/http/api_json.h"

#include <smtpd.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Resident memory in bytes from /proc/self/statm (0 where there is none). */
static int64_t
api_info_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (int64_t)(resident * (unsigned long long)page) : 0;
}

static int64_t
api_info_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
api_info_tag_cb(const char *tag, long count, void *ctx)
{
    /* a tag name that is not UTF-8 cannot be a JSON key: it is left out, not an error */
    (void)json_object_set_new(ctx, tag, json_integer(count));
    return true;
}

static json_t *
api_info_runtime(const http_ctx *ctx)
{
    int64_t up = (api_info_now_ms() - ctx->stats.started_ms) / 1000;
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:i,s:i}", "Uptime", (json_int_t)(up > 0 ? up : 0), "Memory",
        (json_int_t)api_info_rss(), "MessagesDeleted", (json_int_t)ctx->stats.messages_deleted,
        "SMTPAccepted", (json_int_t)ctx->stats.smtp_accepted, "SMTPAcceptedSize",
        (json_int_t)ctx->stats.smtp_accepted_size, "SMTPRejected", 0, "SMTPIgnored", 0);
}

void
api_info(http_req *r)
{
    http_ctx *ctx = r->ctx;
    store_counts box;
    json_t *tags = json_object();
    int64_t size = store_file_size(ctx->st);
    if (!tags || store_mailbox_counts(ctx->st, &box) < 0 ||
        store_tags(ctx->st, api_info_tag_cb, tags) < 0) {
        json_decref(tags);
        http_reply_error(r, 500, "cannot read the store");
        return;
    }
    const char *db = ctx->cfg->db_path ? ctx->cfg->db_path : "";
    /* LatestVersion: mailsink never calls out to look one up */
    json_t *info =
        json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:o,s:o}", "Version", SMTPD_VERSION_STRING,
                  "LatestVersion", SMTPD_VERSION_STRING, "Database", api_string(db), "DatabaseSize",
                  (json_int_t)(size > 0 ? size : 0), "Messages", (json_int_t)box.total, "Unread",
                  (json_int_t)box.unread, "Tags", tags, "RuntimeStats", api_info_runtime(ctx));
    if (!info)
        http_reply_error(r, 500, "out of memory");
    else
        http_reply_json(r, 200, info);
}

void
api_webui(http_req *r)
{
    const char *label = r->ctx->cfg->ui_label ? r->ctx->cfg->ui_label : "";
    json_t *relay =
        json_pack("{s:b,s:s,s:s,s:s,s:s,s:s}", "Enabled", 0, "SMTPServer", "", "AllowedRecipients",
                  "", "BlockedRecipients", "", "ReturnPath", "", "OverrideFrom", "");
    json_t *ui = json_pack("{s:o,s:o,s:b,s:b,s:b}", "Label", api_string(label), "MessageRelay",
                           relay, "SpamAssassin", 0, "ChaosEnabled", 0, "DuplicatesIgnored", 0);
    if (!ui)
        http_reply_error(r, 500, "out of memory");
    else
        http_reply_json(r, 200, ui);
}

void
api_health(http_req *r)
{
    http_reply_text(r, 200, "ok");
}

void
api_openapi(http_req *r)
{
    for (size_t i = 0; i < web_files_count; i++) {
        if (strcmp(web_files[i].path, "/openapi.json") == 0) {
            http_reply_bytes(r, 200, "application/json; charset=utf-8", web_files[i].data,
                             web_files[i].size, NULL);
            return;
        }
    }
    http_reply_error(r, 404, "no OpenAPI document in this build");
}
