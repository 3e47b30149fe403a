/*
 * mime.c - the summary of a message, read with GMime 3 (see mime.h).
 *
 * Everything here treats the message as hostile: GMime parses whatever it is given, and
 * every string that leaves this file is valid UTF-8 (invalid bytes become U+FFFD), so the
 * store, the FTS index and later the JSON API never see anything else. Strings are copied
 * into malloc'd memory so that mime_summary_cleanup() can free them with free().
 */
#include "mailsink/mime.h"

#include <gmime/gmime.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    MIME_TEXT_MAX = 1024 * 1024, /* mime.h: text for the index is at most 1 MiB */
    MIME_SNIPPET_CHARS = 200,    /* Mailpit's snippet is "about 200 characters" */
};

/* A bounded text buffer: appends past max are cut on a UTF-8 boundary and dropped, so a
   huge body costs at most max octets here. */
typedef struct mime_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool full;
    bool oom;
} mime_buf;

/* What one walk over the MIME tree collects. */
typedef struct mime_walk {
    mime_buf plain; /* text/plain body parts */
    mime_buf html;  /* text/html body parts, tags stripped */
    mime_buf names; /* attachment file names, "\n"-joined */
    unsigned attachments;
} mime_walk;

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void
mime_init_once(void)
{
    g_mime_init();
}

void
mime_init(void)
{
    pthread_once(&mime_once, mime_init_once);
}

static void
mime_buf_init(mime_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static void
mime_buf_append(mime_buf *b, const char *s, size_t n)
{
    if (b->full || b->oom || n == 0)
        return;
    if (n > b->max - b->len) {
        n = b->max - b->len;
        /* never cut a UTF-8 sequence in two: back off to the start of a character */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        b->full = true;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void
mime_buf_putc(mime_buf *b, char c)
{
    mime_buf_append(b, &c, 1);
}

/* Hands the buffer's string over (never NULL unless out of memory). */
static char *
mime_buf_take(mime_buf *b)
{
    char *s = b->data;
    if (b->oom) {
        free(s);
        s = NULL;
    } else if (s == NULL) {
        s = calloc(1, 1);
    }
    memset(b, 0, sizeof(*b));
    return s;
}

/* A malloc'd, valid UTF-8 copy of s (NULL -> ""). 8-bit text that is not UTF-8 is first
   decoded the way GMime decodes raw 8-bit headers (its fallback charsets, then Latin-1),
   which reads most legacy mail correctly; anything left invalid becomes U+FFFD. */
static char *
mime_strdup_valid(const char *s, size_t len)
{
    if (s == NULL) {
        s = "";
        len = 0;
    }
    char *nul_free = NULL;
    char *conv = NULL;
    if (memchr(s, '\0', len) != NULL) { /* a NUL would end the C string early */
        nul_free = g_malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            nul_free[i] = s[i] ? s[i] : ' ';
        nul_free[len] = '\0';
        s = nul_free;
    }
    if (!g_utf8_validate(s, (gssize)len, NULL)) {
        conv = g_mime_utils_decode_8bit(NULL, s, len);
        if (conv == NULL || !g_utf8_validate(conv, -1, NULL)) {
            g_free(conv);
            conv = g_utf8_make_valid(s, (gssize)len);
        }
        s = conv;
        len = strlen(conv);
    }
    char *out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    g_free(nul_free);
    g_free(conv);
    return out;
}

static char *
mime_addresses(InternetAddressList *list)
{
    if (list == NULL || internet_address_list_length(list) == 0)
        return mime_strdup_valid("", 0);
    /* encode=FALSE: decoded names, quoted where RFC 5322 needs it, so the string parses
       back into Name/Address pairs with internet_address_list_parse() */
    char *s = internet_address_list_to_string(list, NULL, FALSE);
    char *out = mime_strdup_valid(s, s ? strlen(s) : 0);
    g_free(s);
    return out;
}

/* A header's value as found, with surrounding whitespace trimmed. */
static char *
mime_header_raw(GMimeObject *obj, const char *name)
{
    const char *v = g_mime_object_get_header(obj, name);
    if (v == NULL)
        return mime_strdup_valid("", 0);
    while (g_ascii_isspace(*v))
        v++;
    size_t n = strlen(v);
    while (n > 0 && g_ascii_isspace(v[n - 1]))
        n--;
    return mime_strdup_valid(v, n);
}

static char *
mime_message_id(GMimeMessage *msg)
{
    const char *id = g_mime_message_get_message_id(msg);
    if (id != NULL && *id != '\0')
        return mime_strdup_valid(id, strlen(id));
    /* GMime returns NULL for an id it cannot parse; keep what is there, minus the < > */
    char *raw = mime_header_raw(GMIME_OBJECT(msg), "Message-ID");
    if (raw == NULL)
        return NULL;
    size_t n = strlen(raw);
    if (n >= 2 && raw[0] == '<' && raw[n - 1] == '>') {
        memmove(raw, raw + 1, n - 2);
        raw[n - 2] = '\0';
    }
    return raw;
}

/* ---- HTML to text ---------------------------------------------------------------- */

/* The index of the tag name in set, or -1. */
static int
mime_tag_index(const char *name, size_t n, const char *const *set)
{
    for (int i = 0; set[i] != NULL; i++)
        if (strlen(set[i]) == n && g_ascii_strncasecmp(name, set[i], n) == 0)
            return i;
    return -1;
}

/* Finds "</name" case-insensitively; NULL when the element is never closed. */
static const char *
mime_find_close(const char *p, const char *name, size_t n)
{
    for (; (p = strchr(p, '<')) != NULL; p++)
        if (p[1] == '/' && g_ascii_strncasecmp(p + 2, name, n) == 0)
            return p;
    return NULL;
}

/* The end of a tag starting at p ('<'), skipping '>' inside quoted attribute values. */
static const char *
mime_tag_end(const char *p)
{
    char quote = 0;
    for (p++; *p != '\0'; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>') {
            return p + 1;
        }
    }
    return p;
}

static const char *const mime_hidden_tags[] = {"script", "style", "head", "title", NULL};

/* Per HTML text: which invisible elements are known to have no closing tag further on.
   Without it every unclosed <style> would search to the end again, and a body of
   thousands of them would take quadratic time. */
typedef struct mime_html {
    bool unclosed[sizeof(mime_hidden_tags) / sizeof(mime_hidden_tags[0])];
} mime_html;

/* Handles the tag at p; returns where the text continues. Block-level tags become a line
   break so words on either side do not run together; invisible elements are dropped. */
static const char *
mime_html_tag(mime_buf *out, mime_html *h, const char *p)
{
    static const char *const blocks[] = {"br", "p",  "div",        "tr", "td",  "th", "li",
                                         "h1", "h2", "h3",         "h4", "h5",  "h6", "table",
                                         "ul", "ol", "blockquote", "hr", "pre", NULL};

    if (strncmp(p, "<!--", 4) == 0) {
        const char *end = strstr(p + 4, "-->");
        return end ? end + 3 : p + strlen(p);
    }
    const char *name = p + 1;
    bool closing = *name == '/';
    if (closing)
        name++;
    size_t n = 0;
    while (g_ascii_isalnum(name[n]))
        n++;
    if (n == 0 && !closing && *name != '!' && *name != '?') {
        mime_buf_putc(out, '<'); /* a lone '<' in text, not a tag */
        return p + 1;
    }
    const char *end = mime_tag_end(p);
    int hidden = closing ? -1 : mime_tag_index(name, n, mime_hidden_tags);
    if (hidden >= 0 && !h->unclosed[hidden]) {
        const char *close = mime_find_close(end, name, n);
        if (close != NULL)
            return mime_tag_end(close);
        h->unclosed[hidden] = true;
    }
    if (mime_tag_index(name, n, blocks) >= 0)
        mime_buf_putc(out, '\n');
    return end;
}

/* Decodes the entity at p ('&'); returns where the text continues. Unknown entities stay
   as they are. */
static const char *
mime_html_entity(mime_buf *out, const char *p)
{
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"&amp;", "&"},  {"&lt;", "<"},   {"&gt;", ">"}, {"&quot;", "\""},
                 {"&apos;", "'"}, {"&nbsp;", " "}, {"&#39;", "'"}};

    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t n = strlen(named[i].name);
        if (g_ascii_strncasecmp(p, named[i].name, n) == 0) {
            mime_buf_append(out, named[i].text, strlen(named[i].text));
            return p + n;
        }
    }
    if (p[1] == '#') {
        bool hex = p[2] == 'x' || p[2] == 'X';
        const char *digits = p + (hex ? 3 : 2);
        char *end = NULL;
        unsigned long cp = strtoul(digits, &end, hex ? 16 : 10);
        if (end != digits && end - digits <= 8 && *end == ';' && g_ascii_isxdigit(*digits)) {
            char utf8[8];
            gunichar c = (gunichar)cp;
            if (cp == 0xA0)
                c = ' ';
            if (c != 0 && g_unichar_validate(c))
                mime_buf_append(out, utf8, (size_t)g_unichar_to_utf8(c, utf8));
            return end + 1;
        }
    }
    mime_buf_putc(out, '&');
    return p + 1;
}

static void
mime_html_strip(mime_buf *out, const char *s)
{
    mime_html h = {{false}};
    const char *p = s;
    while (*p != '\0' && !out->full && !out->oom) {
        if (*p == '<') {
            p = mime_html_tag(out, &h, p);
        } else if (*p == '&') {
            p = mime_html_entity(out, p);
        } else {
            size_t n = strcspn(p, "<&");
            mime_buf_append(out, p, n);
            p += n;
        }
    }
}

/* ---- the MIME tree --------------------------------------------------------------- */

/* The decoded text of a text part as valid UTF-8: transfer encoding undone, converted
   from its declared charset. Done here rather than with g_mime_text_part_get_text()
   because that returns a C string, and a NUL in the body would cut the text short. */
static char *
mime_part_text(GMimeObject *obj)
{
    GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(obj));
    if (content == NULL)
        return NULL;
    GMimeStream *mem = g_mime_stream_mem_new();
    GMimeStream *filtered = g_mime_stream_filter_new(mem);
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    GMimeFilter *conv = charset ? g_mime_filter_charset_new(charset, "UTF-8") : NULL;
    if (conv != NULL) { /* NULL for a charset iconv does not know: keep the bytes */
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), conv);
        g_object_unref(conv);
    }
    g_mime_data_wrapper_write_to_stream(content, filtered);
    g_mime_stream_flush(filtered);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    char *text = mime_strdup_valid((const char *)bytes->data, bytes->len);
    g_object_unref(filtered);
    g_object_unref(mem);
    return text;
}

static void
mime_add_name(mime_walk *w, const char *name)
{
    if (name == NULL || *name == '\0')
        return;
    char *v = mime_strdup_valid(name, strlen(name));
    if (v == NULL) {
        w->names.oom = true;
        return;
    }
    /* names are "\n"-joined, so a name must not contain a line break */
    for (char *c = v; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    if (w->names.len > 0)
        mime_buf_putc(&w->names, '\n');
    mime_buf_append(&w->names, v, strlen(v));
    free(v);
}

static void
mime_body_part(mime_walk *w, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    bool plain = g_mime_content_type_is_type(ct, "text", "plain");
    if (!plain && !g_mime_content_type_is_type(ct, "text", "html"))
        return; /* text/calendar and the like: neither body nor attachment */
    char *t = mime_part_text(obj);
    if (t == NULL)
        return;
    mime_buf *b = plain ? &w->plain : &w->html;
    if (b->len > 0)
        mime_buf_putc(b, '\n');
    if (plain)
        mime_buf_append(b, t, strlen(t));
    else
        mime_html_strip(b, t);
    free(t);
}

static void
mime_walk_cb(GMimeObject *parent, GMimeObject *obj, gpointer data)
{
    mime_walk *w = data;
    (void)parent;
    if (GMIME_IS_MULTIPART(obj))
        return;
    const char *disp = g_mime_object_get_disposition(obj);
    bool attached = disp != NULL && g_ascii_strcasecmp(disp, "attachment") == 0;
    bool inline_ = disp != NULL && g_ascii_strcasecmp(disp, "inline") == 0;
    const char *name;
    if (GMIME_IS_PART(obj)) {
        name = g_mime_part_get_filename(GMIME_PART(obj)); /* RFC 2231/2047 decoded */
    } else {                                              /* message/rfc822 */
        name = g_mime_object_get_content_disposition_parameter(obj, "filename");
        if (name == NULL)
            name = g_mime_object_get_content_type_parameter(obj, "name");
    }
    bool named = name != NULL && *name != '\0';

    if (!attached && !named && GMIME_IS_TEXT_PART(obj)) {
        mime_body_part(w, obj);
        return;
    }
    /* Mailpit lists an inline part with a Content-ID (an image the HTML refers to) under
       Inline, not Attachments; its summary count is of attachments only */
    if (inline_ && g_mime_object_get_content_id(obj) != NULL)
        return;
    if (attached || named) {
        w->attachments++;
        mime_add_name(w, name);
    }
}

/* The snippet: runs of whitespace and control characters collapsed to one space, trimmed, at most
   MIME_SNIPPET_CHARS characters (text is valid UTF-8, so characters are counted by
   their lead bytes). */
static char *
mime_snippet(const char *text)
{
    mime_buf b;
    mime_buf_init(&b, MIME_SNIPPET_CHARS * 4);
    size_t chars = 0;
    bool space = false;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7F) { /* control characters would garble a list view */
            space = b.len > 0;
            continue;
        }
        bool lead = (c & 0xC0) != 0x80;
        if (lead && chars == MIME_SNIPPET_CHARS)
            break;
        if (space && lead) {
            if (chars + 1 == MIME_SNIPPET_CHARS)
                break;
            mime_buf_putc(&b, ' ');
            chars++;
            space = false;
        }
        mime_buf_putc(&b, *p);
        chars += lead;
    }
    return mime_buf_take(&b);
}

/* A message GMime could not parse at all: no headers, all of it is body. */
static int
mime_summarize_unparsed(const char *data, size_t len, mime_summary *out)
{
    char **headers[] = {&out->from,    &out->to,   &out->cc,         &out->reply_to,
                        &out->subject, &out->date, &out->message_id, &out->attachment_names};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        *headers[i] = calloc(1, 1);
    /* more than the cap is never kept, so never convert more than that */
    char *v = mime_strdup_valid(data, len < MIME_TEXT_MAX ? len : MIME_TEXT_MAX);
    if (v == NULL)
        return -1;
    mime_buf b;
    mime_buf_init(&b, MIME_TEXT_MAX);
    mime_buf_append(&b, v, strlen(v));
    free(v);
    out->text = mime_buf_take(&b);
    return 0;
}

static int
mime_summarize_message(GMimeMessage *msg, mime_summary *out)
{
    GMimeObject *obj = GMIME_OBJECT(msg);
    out->from = mime_addresses(g_mime_message_get_from(msg));
    out->to = mime_addresses(g_mime_message_get_to(msg));
    out->cc = mime_addresses(g_mime_message_get_cc(msg));
    out->reply_to = mime_addresses(g_mime_message_get_reply_to(msg));
    const char *subject = g_mime_message_get_subject(msg);
    out->subject = mime_strdup_valid(subject, subject ? strlen(subject) : 0);
    out->date = mime_header_raw(obj, "Date");
    out->message_id = mime_message_id(msg);

    mime_walk w;
    mime_buf_init(&w.plain, MIME_TEXT_MAX);
    mime_buf_init(&w.html, MIME_TEXT_MAX);
    mime_buf_init(&w.names, MIME_TEXT_MAX);
    w.attachments = 0;
    g_mime_message_foreach(msg, mime_walk_cb, &w);

    bool use_plain = w.plain.len > 0;
    out->text = mime_buf_take(use_plain ? &w.plain : &w.html);
    free(mime_buf_take(use_plain ? &w.html : &w.plain));
    out->attachments = w.attachments;
    out->attachment_names = mime_buf_take(&w.names);
    return 0;
}

static bool
mime_summary_is_complete(const mime_summary *s)
{
    return s->from && s->to && s->cc && s->reply_to && s->subject && s->date && s->message_id &&
           s->snippet && s->text && s->attachment_names;
}

int
mime_summarize(const char *data, size_t len, mime_summary *out)
{
    memset(out, 0, sizeof(*out));
    mime_init();
    if (data == NULL) {
        data = "";
        len = 0;
    }

    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);

    int rc;
    if (msg != NULL) {
        rc = mime_summarize_message(msg, out);
        g_object_unref(msg);
    } else {
        rc = mime_summarize_unparsed(data, len, out);
    }
    if (rc == 0 && out->text != NULL)
        out->snippet = mime_snippet(out->text);
    /* every helper returns "" for what is absent, so a NULL left here means malloc failed */
    if (rc != 0 || !mime_summary_is_complete(out)) {
        mime_summary_cleanup(out);
        return -1;
    }
    return 0;
}

void
mime_summary_cleanup(mime_summary *s)
{
    if (s == NULL)
        return;
    free(s->from);
    free(s->to);
    free(s->cc);
    free(s->reply_to);
    free(s->subject);
    free(s->date);
    free(s->message_id);
    free(s->snippet);
    free(s->text);
    free(s->attachment_names);
    memset(s, 0, sizeof(*s));
}
