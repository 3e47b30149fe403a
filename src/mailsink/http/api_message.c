/*
 * api_message.c - one message: Mailpit's Message object, its headers, the raw source,
 * one part, the HTML and text bodies alone (/view/{ID}.html|.txt) and our envelope.
 *
 * Message content is hostile by assumption. Nothing here is ever served in a way that
 * lets it run as our origin: every body or part carries a Content-Security-Policy with
 * "sandbox" (an opaque origin, no scripts), so even a text/html or image/svg+xml part
 * opened directly in a tab cannot read the API. (server.c adds X-Content-Type-Options:
 * nosniff to every reply.)
 */
#include "mailsink/http/api_json.h"

#include "mailsink/mime_message.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <smtpd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parts and raw source: no scripts, no plugins, no loads, an opaque origin. */
#define API_PART_CSP "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"

/* One message loaded for a handler. */
typedef struct api_msg {
    char *id;
    store_row row;
    bool have_row;
    char *raw;
    size_t len;
} api_msg;

static void
api_msg_cleanup(api_msg *m)
{
    free(m->id);
    if (m->have_row)
        store_row_cleanup(&m->row);
    free(m->raw);
}

/* Resolve r->id and read its row (and the raw message when need_raw). 0, or -1 after
   replying (404 unknown id, 400 bad ?query=). */
static int
api_msg_load(http_req *r, api_msg *m, bool need_raw)
{
    memset(m, 0, sizeof *m);
    if (!(m->id = api_resolve_id(r)))
        return -1;
    if (store_get(r->ctx->st, m->id, &m->row) < 0) {
        http_reply_error(r, 404, "message not found");
        return -1;
    }
    m->have_row = true;
    if (need_raw && store_get_raw(r->ctx->st, m->id, &m->raw, &m->len) < 0) {
        /* deleted between the two reads */
        http_reply_error(r, 404, "message not found");
        return -1;
    }
    return 0;
}

/* ---- GET /api/v1/message/{ID} ---- */

/* What the stored envelope adds to mime_message_json's object. false on OOM. */
static bool
api_message_complete(json_t *msg, const api_msg *m)
{
    const store_row *row = &m->row;
    if (json_object_set_new(msg, "ID", api_string(row->id)) < 0 ||
        json_object_set_new(msg, "Tags", api_tags_json(row->tags)) < 0 ||
        json_object_set_new(msg, "Username", api_string(row->auth_user)) < 0 ||
        json_object_set_new(msg, "ReturnPath", api_string(row->sender)) < 0)
        return false;
    /* as in the summary: without a From header, the envelope sender */
    if (!json_is_object(json_object_get(msg, "From")) &&
        json_object_set_new(
            msg, "From", json_pack("{s:s,s:o}", "Name", "", "Address", api_string(row->sender))) <
            0)
        return false;
    /* the Bcc header when there is one, else the envelope recipients not in To/Cc
       (Mailpit adds that Bcc header on SMTP; we store what the client sent) */
    if (json_array_size(json_object_get(msg, "Bcc")) == 0) {
        const json_t *seen[] = {json_object_get(msg, "To"), json_object_get(msg, "Cc")};
        if (json_object_set_new(msg, "Bcc", api_envelope_bcc_json(row->rcpts_json, seen, 2)) < 0)
            return false;
    }
    const char *date = json_string_value(json_object_get(msg, "Date"));
    if (!date || !*date) {
        char received[API_TIME_SIZE];
        api_time_format(row->received_ms, received);
        if (json_object_set_new(msg, "Date", json_string(received)) < 0)
            return false;
    }
    return true;
}

void
api_message(http_req *r)
{
    api_msg m;
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    json_t *msg = mime_message_json(m.raw, m.len);
    if (!msg || !api_message_complete(msg, &m)) {
        json_decref(msg);
        http_reply_error(r, 500, "out of memory");
        goto out;
    }
    /* behaviour 3: reading a message marks it read (a HEAD request reads nothing) */
    if (!m.row.read && evhttp_request_get_command(r->req) != EVHTTP_REQ_HEAD) {
        const char *ids[] = {m.id};
        if (store_set_read(r->ctx->st, ids, 1, NULL, true) > 0) {
            api_event_read(r->ctx, m.id, true);
            http_events_stats_changed(r->ctx);
        }
    }
    http_reply_json(r, 200, msg);
out:
    api_msg_cleanup(&m);
}

void
api_message_headers(http_req *r)
{
    api_msg m;
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    json_t *h = mime_headers_json(m.raw, m.len);
    if (!h)
        http_reply_error(r, 500, "out of memory");
    else
        http_reply_json(r, 200, h);
out:
    api_msg_cleanup(&m);
}

/* ---- raw source and parts ---- */

/*
 * Content-Disposition for a file name from a message (RFC 6266): an ASCII fallback in
 * filename="..." with anything risky replaced by '_', and the real name (UTF-8) in
 * filename*=UTF-8''... percent-encoded. No byte of the name reaches the header raw, so
 * no quote, CR or LF can end it. The name is cut at 200 octets (on a UTF-8 boundary).
 */
static void
api_message_disposition(char *buf, size_t size, const char *type, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) {
        snprintf(buf, size, "%s", type);
        return;
    }
    if (n > 200) {
        n = 200;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--;
    }
    char ascii[201], enc[601];
    size_t a = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool plain = c > 0x20 && c < 0x7f && !strchr("\"\\/%;*'", c);
        ascii[a++] = plain || c == ' ' ? (char)c : '_';
        /* RFC 5987 attr-char is sent as is; everything else as %XX */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("!#$&+-.^_`|~", c)) {
            enc[e++] = (char)c;
        } else {
            snprintf(enc + e, sizeof enc - e, "%%%02X", c);
            e += 3;
        }
    }
    ascii[a] = '\0';
    enc[e] = '\0';
    snprintf(buf, size, "%s; filename=\"%s\"; filename*=UTF-8''%s", type, ascii, enc);
}

/* The part's Content-Type if it is plain printable ASCII (it comes from the message),
   else application/octet-stream. */
static const char *
api_message_safe_type(const char *type)
{
    if (!type || !*type || strlen(type) > 200)
        return "application/octet-stream";
    for (const char *p = type; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return "application/octet-stream";
    return type;
}

void
api_message_raw(http_req *r)
{
    api_msg m;
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    /* text/plain like Mailpit; ?dl=1 downloads it as ID.eml */
    const char *dl = http_param(r, "dl");
    char disp[1024], name[256];
    snprintf(name, sizeof name, "%s.eml", m.id);
    api_message_disposition(disp, sizeof disp, dl && strcmp(dl, "1") == 0 ? "attachment" : "inline",
                            name);
    const char *headers[] = {"Content-Disposition", disp, "Content-Security-Policy", API_PART_CSP,
                             NULL};
    http_reply_bytes(r, 200, "text/plain; charset=utf-8", m.raw, m.len, headers);
out:
    api_msg_cleanup(&m);
}

void
api_message_part(http_req *r)
{
    api_msg m;
    mime_part_data pd = {0};
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    if (!r->part || mime_part_get(m.raw, m.len, r->part, &pd) < 0) {
        http_reply_error(r, 404, "part not found");
        goto out;
    }
    /* A text/html (or SVG) part keeps its type, so that the UI can show it, but the
       sandbox CSP gives it an opaque origin and no scripts when opened directly:
       attachments also come as downloads (Content-Disposition: attachment). */
    char disp[1024];
    api_message_disposition(disp, sizeof disp, pd.is_attachment ? "attachment" : "inline",
                            pd.file_name);
    const char *headers[] = {"Content-Disposition", disp, "Content-Security-Policy", API_PART_CSP,
                             NULL};
    http_reply_bytes(r, 200, api_message_safe_type(pd.content_type), pd.content, pd.size, headers);
out:
    mime_part_data_cleanup(&pd);
    api_msg_cleanup(&m);
}

/* ---- /view/{ID}.html and .txt ---- */

/* Whether c may follow a cid: reference's value (quote, space, closing bracket...). */
static bool
api_view_cid_end(char c)
{
    return c == '\0' || strchr("\"' \t\r\n)>;&", c) != NULL;
}

/* The PartID of the inline part or attachment whose ContentID is cid[0..n), or NULL. */
static const char *
api_view_cid_part(const json_t *msg, const char *cid, size_t n)
{
    const char *lists[] = {"Inline", "Attachments"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        const json_t *a;
        json_array_foreach(json_object_get(msg, lists[l]), i, a)
        {
            const char *id = json_string_value(json_object_get(a, "ContentID"));
            if (id && *id && strlen(id) == n && strncasecmp(id, cid, n) == 0)
                return json_string_value(json_object_get(a, "PartID"));
        }
    }
    return NULL;
}

/* Where in html the end of the first "<NAME" tag is (just past its '>'), or 0. */
static size_t
api_view_after_tag(const char *html, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n + 1 < len; i++) {
        if (html[i] != '<' || strncasecmp(html + i + 1, name, n) != 0)
            continue;
        char c = html[i + 1 + n];
        if (c != '>' && c != ' ' && c != '\t' && c != '\r' && c != '\n')
            continue;
        const char *gt = memchr(html + i, '>', len - i);
        return gt ? (size_t)(gt - html) + 1 : 0;
    }
    return 0;
}

/* Where <base target="_blank"> goes: into the head, else after <html> or the doctype
   (never before the doctype, which would switch the page to quirks mode). */
static size_t
api_view_base_at(const char *html, size_t len)
{
    size_t at = api_view_after_tag(html, len, "head");
    if (!at)
        at = api_view_after_tag(html, len, "html");
    if (!at)
        at = api_view_after_tag(html, len, "!doctype");
    return at;
}

/* cid: references looked up at most (each costs a walk over the parts): a hostile
   message cannot make the rewrite quadratic */
#define API_VIEW_CID_MAX 1000
#define API_VIEW_CID_LEN 256 /* octets of a cid: reference looked at */

/*
 * The HTML with every cid:CONTENT-ID that names one of the message's parts replaced by
 * that part's URL on this server (as Mailpit does), so inline images show in the frame.
 * With embed, a <base target="_blank"> in the head: links open outside the UI's frame.
 */
static struct evbuffer *
api_view_rewrite(http_req *r, const api_msg *m, const char *html, size_t len, bool embed)
{
    struct evbuffer *out = evbuffer_new();
    json_t *msg = NULL; /* parsed at the first cid: (most HTML has none) */
    char *eid = evhttp_encode_uri(m->id);
    if (!out || !eid)
        goto fail;
    size_t done = 0, lookups = 0;
    if (embed) {
        done = api_view_base_at(html, len);
        if (evbuffer_add(out, html, done) < 0 ||
            evbuffer_add_printf(out, "<base target=\"_blank\">") < 0)
            goto fail;
    }
    for (size_t i = done; i + 4 <= len && lookups < API_VIEW_CID_MAX; i++) {
        if (strncasecmp(html + i, "cid:", 4) != 0)
            continue;
        lookups++;
        /* a Content-ID is short: scanning at most API_VIEW_CID_LEN octets keeps a body of
           "cid:cid:cid:..." linear (each lookup would otherwise scan to the end) */
        size_t v = i + 4, end = v;
        while (end < len && end - v < API_VIEW_CID_LEN && !api_view_cid_end(html[end]))
            end++;
        if (!msg && !(msg = mime_message_json(m->raw, m->len)))
            goto fail;
        const char *part = api_view_cid_part(msg, html + v, end - v);
        if (!part) {
            i = end - 1; /* what was scanned is not searched again */
            continue;
        }
        if (evbuffer_add(out, html + done, i - done) < 0 ||
            evbuffer_add_printf(out, "%sapi/v1/message/%s/part/%s", r->ctx->webroot, eid, part) < 0)
            goto fail;
        done = end;
        i = end - 1;
    }
    if (evbuffer_add(out, html + done, len - done) < 0)
        goto fail;
    json_decref(msg);
    free(eid);
    return out;
fail:
    if (out)
        evbuffer_free(out);
    json_decref(msg);
    free(eid);
    return NULL;
}

void
api_view_html(http_req *r)
{
    api_msg m;
    mime_part_data pd = {0};
    struct evbuffer *body = NULL;
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    if (mime_body_get(m.raw, m.len, 1, &pd) < 0) {
        http_reply_error(r, 404, "message has no HTML part");
        goto out;
    }
    const char *embed_p = http_param(r, "embed"), *remote_p = http_param(r, "remote");
    bool embed = embed_p && strcmp(embed_p, "1") == 0;
    bool remote = remote_p && strcmp(remote_p, "1") == 0;
    if (!(body = api_view_rewrite(r, &m, pd.content, pd.size, embed))) {
        http_reply_error(r, 500, "out of memory");
        goto out;
    }
    /* Shown in the UI's sandboxed iframe, and safe when opened alone: no scripts, no
       plugins, an opaque origin (sandbox); images only inline (data:, our own part URLs)
       unless the user asked for remote ones (?remote=1); links may open a new tab only
       in the UI (embed=1), never from within the frame itself. */
    char csp[512];
    snprintf(csp, sizeof csp,
             "default-src 'none'; img-src 'self' data: cid:%s; style-src 'unsafe-inline'; "
             "font-src data:; sandbox%s",
             remote ? " http: https:" : "",
             embed ? " allow-popups allow-popups-to-escape-sandbox" : "");
    const char *headers[] = {"Content-Security-Policy", csp, NULL};
    size_t n = evbuffer_get_length(body);
    const unsigned char *data = evbuffer_pullup(body, -1);
    http_reply_bytes(r, 200, "text/html; charset=utf-8", data ? (const void *)data : "", n,
                     headers);
out:
    if (body)
        evbuffer_free(body);
    mime_part_data_cleanup(&pd);
    api_msg_cleanup(&m);
}

void
api_view_text(http_req *r)
{
    api_msg m;
    mime_part_data pd = {0};
    char *text = NULL;
    if (api_msg_load(r, &m, true) < 0)
        goto out;
    const char *data;
    size_t n;
    if (mime_body_get(m.raw, m.len, 0, &pd) == 0) {
        data = pd.content;
        n = pd.size;
    } else if (mime_body_get(m.raw, m.len, 1, &pd) == 0) {
        /* no text part: the HTML as text, as the Message object's Text */
        if (!(text = mime_html_to_text(pd.content, pd.size))) {
            http_reply_error(r, 500, "out of memory");
            goto out;
        }
        data = text;
        n = strlen(text);
    } else {
        http_reply_error(r, 404, "message has no text part");
        goto out;
    }
    const char *headers[] = {"Content-Security-Policy", API_PART_CSP, NULL};
    http_reply_bytes(r, 200, "text/plain; charset=utf-8", data, n, headers);
out:
    free(text);
    mime_part_data_cleanup(&pd);
    api_msg_cleanup(&m);
}

/* ---- GET /api/v1/message/{ID}/envelope (ours) ---- */

static json_t *
api_envelope_findings(unsigned findings)
{
    json_t *arr = json_array();
    for (unsigned bit = 0; arr && bit < 32; bit++) {
        const char *name = smtpd_finding_name(1u << bit);
        if ((findings & (1u << bit)) && name && json_array_append_new(arr, json_string(name)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void
api_message_envelope(http_req *r)
{
    api_msg m;
    if (api_msg_load(r, &m, false) < 0)
        goto out;
    const store_row *row = &m.row;
    char received[API_TIME_SIZE];
    api_time_format(row->received_ms, received);
    json_t *tls = json_null();
    if (row->tls_version && *row->tls_version)
        tls = json_pack("{s:o,s:o,s:o}", "Version", api_string(row->tls_version), "Cipher",
                        api_string(row->tls_cipher), "Peer", api_string(row->tls_peer));
    json_t *env =
        json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s}", "ID", api_string(row->id), "Sender",
                  api_string(row->sender), "Recipients", api_rcpts_json(row->rcpts_json),
                  "ClientAddr", api_string(row->client_addr), "Helo", api_string(row->helo), "TLS",
                  tls, "AuthUser", api_string(row->auth_user), "Findings",
                  api_envelope_findings(row->findings), "Received", received);
    if (!env)
        http_reply_error(r, 500, "out of memory");
    else
        http_reply_json(r, 200, env);
out:
    api_msg_cleanup(&m);
}
