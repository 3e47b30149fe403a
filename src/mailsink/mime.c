/*
 * mime.c - the summary of a message, read with GMime 3 (see mime.h).
 *
 * Everything here treats the message as hostile: GMime parses whatever it is given, and
 * every string that leaves this file is valid UTF-8 (invalid bytes become U+FFFD), so the
 * store, the FTS index and later the JSON API never see anything else. Strings are copied
 * into malloc'd memory so that mime_summary_cleanup() can free them with free().
 */
#include "mailsink/mime.h"
#include "mailsink/mime_message.h"

#include <gmime/gmime.h>

#include <iconv.h>
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

/* The converters GMime's 8-bit guesser (g_mime_utils_decode_8bit) opens for every
   header or name that is not UTF-8. glibc unloads a gconv module when its last
   descriptor closes, so without these each such string cost a dlopen and a dlclose (an
   munmap, a TLB shootdown on every core): 25 % of fuzz_mime's time. One descriptor each,
   held for the life of the process, keeps the modules loaded; never used, never closed
   (volatile: only ever written, an optimizer would drop the array and the descriptors
   would look leaked). */
static const char *const mime_pinned_charsets[] = {"ISO-8859-1", "ISO-2022-JP"};
static iconv_t volatile mime_pinned[sizeof mime_pinned_charsets / sizeof mime_pinned_charsets[0]];

static void
mime_init_once(void)
{
    g_mime_init();
    for (size_t i = 0; i < sizeof mime_pinned / sizeof mime_pinned[0]; i++)
        mime_pinned[i] = iconv_open("UTF-8", mime_pinned_charsets[i]); /* (iconv_t)-1: no loss */
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

/* 8-bit text that is not UTF-8 is first decoded the way GMime decodes raw 8-bit headers,
   which reads most legacy mail correctly (see mime.h). */
char *
mime_utf8_dup(const char *s, size_t len)
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
        return mime_utf8_dup("", 0);
    /* encode=FALSE: decoded names, quoted where RFC 5322 needs it, so the string parses
       back into Name/Address pairs with internet_address_list_parse() */
    char *s = internet_address_list_to_string(list, NULL, FALSE);
    char *out = mime_utf8_dup(s, s ? strlen(s) : 0);
    g_free(s);
    return out;
}

/* A header's value as found, with surrounding whitespace trimmed. */
static char *
mime_header_raw(GMimeObject *obj, const char *name)
{
    const char *v = g_mime_object_get_header(obj, name);
    if (v == NULL)
        return mime_utf8_dup("", 0);
    while (g_ascii_isspace(*v))
        v++;
    size_t n = strlen(v);
    while (n > 0 && g_ascii_isspace(v[n - 1]))
        n--;
    return mime_utf8_dup(v, n);
}

static char *
mime_message_id(GMimeMessage *msg)
{
    const char *id = g_mime_message_get_message_id(msg);
    if (id != NULL && *id != '\0')
        return mime_utf8_dup(id, strlen(id));
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

/* ---- the MIME tree --------------------------------------------------------------- */

enum {
    MIME_DEPTH_MAX = 64,   /* mime.h: leaves nested deeper are not visited */
    MIME_PART_ID_MAX = 768 /* 64 levels of up to 10 digits and a dot, and a NUL */
};

/* Done here rather than with g_mime_text_part_get_text() because that returns a C
   string, and a NUL in the body would cut the text short. */
char *
mime_part_utf8(GMimeObject *leaf)
{
    GMimeDataWrapper *content =
        GMIME_IS_PART(leaf) ? g_mime_part_get_content(GMIME_PART(leaf)) : NULL;
    if (content == NULL) /* a part with headers and no body at all */
        return mime_utf8_dup("", 0);
    GMimeStream *mem = g_mime_stream_mem_new();
    GMimeStream *filtered = g_mime_stream_filter_new(mem);
    const char *charset = g_mime_object_get_content_type_parameter(leaf, "charset");
    GMimeFilter *conv = charset ? g_mime_filter_charset_new(charset, "UTF-8") : NULL;
    if (conv != NULL) { /* NULL for a charset iconv does not know: keep the bytes */
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), conv);
        g_object_unref(conv);
    }
    g_mime_data_wrapper_write_to_stream(content, filtered);
    g_mime_stream_flush(filtered);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    char *text = mime_utf8_dup((const char *)bytes->data, bytes->len);
    g_object_unref(filtered);
    g_object_unref(mem);
    return text;
}

const char *
mime_part_name(GMimeObject *leaf)
{
    const char *name;
    if (GMIME_IS_PART(leaf)) {
        name = g_mime_part_get_filename(GMIME_PART(leaf)); /* RFC 2231/2047 decoded */
    } else {                                               /* message/rfc822 */
        name = g_mime_object_get_content_disposition_parameter(leaf, "filename");
        if (name == NULL)
            name = g_mime_object_get_content_type_parameter(leaf, "name");
    }
    return name != NULL && *name != '\0' ? name : NULL;
}

static mime_part_kind
mime_part_classify(GMimeObject *leaf)
{
    const char *disp = g_mime_object_get_disposition(leaf);
    bool attached = disp != NULL && g_ascii_strcasecmp(disp, "attachment") == 0;
    bool inline_ = disp != NULL && g_ascii_strcasecmp(disp, "inline") == 0;
    bool named = mime_part_name(leaf) != NULL;
    GMimeContentType *ct = g_mime_object_get_content_type(leaf);
    bool text = g_mime_content_type_is_type(ct, "text", "plain") ||
                g_mime_content_type_is_type(ct, "text", "html");

    if (text && !attached && !named && GMIME_IS_PART(leaf))
        return MIME_PART_BODY;
    if (attached)
        return MIME_PART_ATTACHMENT;
    /* an image the HTML refers to by cid: (multipart/related), or a part the sender
       marked inline: Mailpit lists those under Inline, not Attachments */
    if (inline_ || g_mime_object_get_content_id(leaf) != NULL)
        return MIME_PART_INLINE;
    if (named || GMIME_IS_MESSAGE_PART(leaf))
        return MIME_PART_ATTACHMENT;
    return MIME_PART_OTHER;
}

typedef struct mime_leaves {
    mime_leaf_cb cb;
    void *user;
    char id[MIME_PART_ID_MAX];
} mime_leaves;

/* id[0..idlen) is obj's own id (empty for the top-level multipart). */
static int
mime_leaves_walk(mime_leaves *w, GMimeObject *obj, size_t idlen, int depth)
{
    if (!GMIME_IS_MULTIPART(obj)) {
        if (idlen == 0) /* a message that is not multipart: its body is "1" */
            memcpy(w->id, "1", 2);
        return w->cb(obj, w->id, mime_part_classify(obj), w->user);
    }
    if (depth >= MIME_DEPTH_MAX)
        return 0;
    int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
    for (int i = 0; i < n; i++) {
        int k = snprintf(w->id + idlen, sizeof(w->id) - idlen, "%s%d", idlen ? "." : "", i + 1);
        if (k < 0 || (size_t)k >= sizeof(w->id) - idlen)
            return 0; /* cannot happen within MIME_DEPTH_MAX */
        GMimeObject *child = g_mime_multipart_get_part(GMIME_MULTIPART(obj), i);
        int rc = child ? mime_leaves_walk(w, child, idlen + (size_t)k, depth + 1) : 0;
        if (rc != 0)
            return rc;
    }
    w->id[idlen] = '\0';
    return 0;
}

int
mime_leaves_foreach(GMimeMessage *msg, mime_leaf_cb cb, void *user)
{
    GMimeObject *root = msg ? g_mime_message_get_mime_part(msg) : NULL;
    if (root == NULL)
        return 0;
    mime_leaves w = {.cb = cb, .user = user};
    return mime_leaves_walk(&w, root, 0, 0);
}

GMimeMessage *
mime_parse(const char *data, size_t len)
{
    mime_init();
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data ? data : "", data ? len : 0);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    return msg;
}

static void
mime_add_name(mime_walk *w, const char *name)
{
    if (name == NULL)
        return;
    char *v = mime_utf8_dup(name, strlen(name));
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

/* Every text/plain body goes to the index; every text/html body too, as text. */
static void
mime_body_part(mime_walk *w, GMimeObject *obj)
{
    bool plain = g_mime_content_type_is_type(g_mime_object_get_content_type(obj), "text", "plain");
    char *t = mime_part_utf8(obj);
    if (t == NULL)
        return;
    mime_buf *b = plain ? &w->plain : &w->html;
    if (b->len > 0)
        mime_buf_putc(b, '\n');
    if (plain) {
        mime_buf_append(b, t, strlen(t));
    } else {
        char *h = mime_html_to_text(t, strlen(t));
        if (h == NULL)
            b->oom = true;
        else
            mime_buf_append(b, h, strlen(h));
        free(h);
    }
    free(t);
}

static int
mime_walk_cb(GMimeObject *leaf, const char *part_id, mime_part_kind kind, void *data)
{
    mime_walk *w = data;
    (void)part_id;
    switch (kind) {
    case MIME_PART_BODY:
        mime_body_part(w, leaf);
        break;
    case MIME_PART_ATTACHMENT: /* Mailpit's summary counts attachments only */
        w->attachments++;
        mime_add_name(w, mime_part_name(leaf));
        break;
    case MIME_PART_INLINE:
    case MIME_PART_OTHER:
        break;
    }
    return 0;
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
    char *v = mime_utf8_dup(data, len < MIME_TEXT_MAX ? len : MIME_TEXT_MAX);
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
    out->subject = mime_utf8_dup(subject, subject ? strlen(subject) : 0);
    out->date = mime_header_raw(obj, "Date");
    out->message_id = mime_message_id(msg);

    mime_walk w;
    mime_buf_init(&w.plain, MIME_TEXT_MAX);
    mime_buf_init(&w.html, MIME_TEXT_MAX);
    mime_buf_init(&w.names, MIME_TEXT_MAX);
    w.attachments = 0;
    mime_leaves_foreach(msg, mime_walk_cb, &w);

    /* the index wants the words as written, so the text part first; the snippet shows
       what a reader sees first, so the HTML when there is some (as Mailpit does) */
    bool use_plain = w.plain.len > 0;
    if (!w.plain.oom && !w.html.oom)
        out->snippet = mime_snippet(w.html.len > 0 ? w.html.data
                                    : w.plain.data ? w.plain.data
                                                   : "");
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

    GMimeMessage *msg = mime_parse(data, len);
    int rc;
    if (msg != NULL) {
        rc = mime_summarize_message(msg, out);
        g_object_unref(msg);
    } else {
        rc = mime_summarize_unparsed(data, len, out);
        if (rc == 0 && out->text != NULL)
            out->snippet = mime_snippet(out->text);
    }
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
