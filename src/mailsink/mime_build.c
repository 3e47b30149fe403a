/*
 * mime_build.c - a message from Mailpit's SendRequest, built with GMime 3 (see
 * mime_build.h).
 *
 * The request comes from any HTTP client, so everything is checked before GMime sees
 * it: no CR or LF in anything that ends up in a header (header injection), header names
 * as RFC 5322 defines them, addresses that are addresses, base64 that is base64, and
 * bounded counts. GMime does the encoding (RFC 2047 words for names and subject,
 * RFC 2231 for file names, quoted-printable or base64 bodies) and the line ends are CRLF
 * as on the wire.
 */
#include "mailsink/mime_build.h"
#include "mailsink/mime.h"

#include <gmime/gmime.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    BUILD_MAX_RCPTS = 1000,       /* To + Cc + Bcc */
    BUILD_MAX_LIST = 1000,        /* Reply-To, Tags, Headers, Attachments, each */
    BUILD_MAX_HEADER_NAME = 76,   /* RFC 5322 2.1.1: a line holds the name and more */
    BUILD_MAX_ADDRESS = 320,      /* RFC 5321 4.5.3.1: 64 + @ + 255 */
    BUILD_MAX_HEADER_VALUE = 8192 /* far beyond any real header, well below the body cap */
};

/* What a build holds while it runs: the request's checked pieces and the error. */
typedef struct build {
    char *err;
    size_t errsize;
    GMimeMessage *msg;
    GHashTable *seen; /* recipients already in rcpts, lower-cased */
    GPtrArray *rcpts; /* malloc'd strings */
} build;

static int build_fail(build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the error (first one wins) and returns -1. */
static int
build_fail(build *b, const char *fmt, ...)
{
    if (b->errsize > 0 && b->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, b->errsize, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A short, printable form of s for an error message (it may hold anything). */
static const char *
build_quote(const char *s, char *buf, size_t size)
{
    size_t k = 0;
    const char *p = s ? s : "";
    for (; *p && k + 4 < size; p++)
        buf[k++] = (unsigned char)*p < 0x20 || *p == 0x7F ? '?' : *p;
    if (*p != '\0') { /* cut short */
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* The string at obj[key]: NULL when absent or null, else it must be a string. */
static int
build_opt_string(build *b, const json_t *obj, const char *key, const char *what, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return build_fail(b, "%s must be a string", what);
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v))
        return build_fail(b, "%s must not contain NUL", what);
    return 0;
}

/* A value for a header: no line break (header injection), no NUL, bounded. */
static int
build_header_text(build *b, const char *s, const char *what)
{
    if (s == NULL)
        return 0;
    if (strpbrk(s, "\r\n") != NULL)
        return build_fail(b, "%s must not contain a line break", what);
    if (strlen(s) > BUILD_MAX_HEADER_VALUE)
        return build_fail(b, "%s is too long", what);
    return 0;
}

/* addr-spec, loosely as Go's net/mail accepts it: local@domain, no blanks, controls or
   the specials that would change how the header reads. */
static bool
build_address_is_valid(const char *a)
{
    size_t n = strlen(a);
    const char *at = strrchr(a, '@');
    if (n < 3 || n > BUILD_MAX_ADDRESS || at == NULL || at == a || at[1] == '\0')
        return false;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7F || strchr("<>()[]\\,;:\"", c) != NULL)
            return false;
        if (p != at && c == '@') /* one '@': a quoted local part holding one is not taken */
            return false;
    }
    const char *d = at + 1;
    return d[0] != '.' && a[n - 1] != '.' && strstr(d, "..") == NULL && at[-1] != '.' &&
           a[0] != '.';
}

/* Adds addr to the envelope recipients once (compared without case). */
static int
build_rcpt(build *b, const char *addr)
{
    char *key = g_utf8_strdown(addr, -1);
    if (g_hash_table_contains(b->seen, key)) {
        g_free(key);
        return 0;
    }
    if (b->rcpts->len >= BUILD_MAX_RCPTS) {
        g_free(key);
        return build_fail(b, "too many recipients (at most %d)", BUILD_MAX_RCPTS);
    }
    g_hash_table_add(b->seen, key);
    char *copy = strdup(addr);
    if (copy == NULL)
        return build_fail(b, "out of memory");
    g_ptr_array_add(b->rcpts, copy);
    return 0;
}

/* One {Email, Name} object; label is "To", "Cc", "Reply-To" or "From". */
static int
build_mailbox(build *b, const json_t *o, const char *label, const char **email, const char **name)
{
    char what[32], q[80];
    if (!json_is_object(o))
        return build_fail(b, "%s must hold objects {\"Email\": ..., \"Name\": ...}", label);
    snprintf(what, sizeof what, "%s Email", label);
    if (build_opt_string(b, o, "Email", what, email) != 0)
        return -1;
    snprintf(what, sizeof what, "%s Name", label);
    if (build_opt_string(b, o, "Name", what, name) != 0 || build_header_text(b, *name, what))
        return -1;
    if (*email == NULL || !build_address_is_valid(*email))
        return build_fail(b, "invalid %s address: %s", label,
                          build_quote(*email ? *email : "", q, sizeof q));
    return 0;
}

static int
build_mailboxes(build *b, const json_t *req, const char *key, const char *label,
                GMimeAddressType type, bool envelope)
{
    const json_t *arr = json_object_get(req, key);
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return build_fail(b, "%s must be an array", key);
    if (json_array_size(arr) > BUILD_MAX_LIST)
        return build_fail(b, "too many %s addresses (at most %d)", label, BUILD_MAX_LIST);
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *email, *name;
        if (build_mailbox(b, o, label, &email, &name) != 0)
            return -1;
        g_mime_message_add_mailbox(b->msg, type, name ? name : "", email);
        if (envelope && build_rcpt(b, email) != 0)
            return -1;
    }
    return 0;
}

/* Bcc: plain address strings; envelope only, never a header (it is blind). */
static int
build_bcc(build *b, const json_t *req)
{
    const json_t *arr = json_object_get(req, "Bcc");
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return build_fail(b, "Bcc must be an array of addresses");
    size_t i;
    const json_t *v;
    char q[80];
    json_array_foreach(arr, i, v)
    {
        const char *a = json_string_value(v);
        if (a == NULL || strlen(a) != json_string_length(v) || !build_address_is_valid(a))
            return build_fail(b, "invalid Bcc address: %s", build_quote(a ? a : "", q, sizeof q));
        if (build_rcpt(b, a) != 0)
            return -1;
    }
    return 0;
}

/* ---- headers ----------------------------------------------------------------------- */

/* RFC 5322 3.6.8: a field name is printable US-ASCII except ':'. */
static bool
build_field_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BUILD_MAX_HEADER_NAME)
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == ':')
            return false;
    return true;
}

/* Headers the request sets by its own fields (and Mailpit refuses to overwrite). */
static bool
build_header_is_restricted(const char *name, bool tags)
{
    static const char *const fixed[] = {"To",       "From",        "Cc",       "Bcc",
                                        "Reply-To", "Date",        "Subject",  "MIME-Version",
                                        "Sender",   "Return-Path", "Received", NULL};
    for (int i = 0; fixed[i] != NULL; i++)
        if (g_ascii_strcasecmp(name, fixed[i]) == 0)
            return true;
    return g_ascii_strncasecmp(name, "Content-", 8) == 0 ||
           (tags && g_ascii_strcasecmp(name, "X-Tags") == 0);
}

static int
build_headers(build *b, const json_t *req, bool tags)
{
    const json_t *obj = json_object_get(req, "Headers");
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return build_fail(b, "Headers must be an object of name: value");
    if (json_object_size(obj) > BUILD_MAX_LIST)
        return build_fail(b, "too many Headers (at most %d)", BUILD_MAX_LIST);
    const char *name;
    const json_t *v;
    char q[80];
    json_object_foreach((json_t *)obj, name, v)
    {
        const char *value = json_string_value(v);
        if (!build_field_name_is_valid(name))
            return build_fail(b, "invalid header name: \"%s\"", build_quote(name, q, sizeof q));
        if (build_header_is_restricted(name, tags))
            return build_fail(b, "cannot overwrite header: \"%s\"", name);
        if (value == NULL || strlen(value) != json_string_length(v))
            return build_fail(b, "header \"%s\" must be a string", name);
        if (build_header_text(b, value, name) != 0)
            return -1;
        if (g_ascii_strcasecmp(name, "Message-Id") == 0) {
            /* the sender's own id, e.g. to find the message again; without < > */
            char *id = g_strdup(value);
            g_strstrip(id);
            size_t n = strlen(id);
            const char *bare = id;
            if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
                id[n - 1] = '\0';
                bare = id + 1;
            }
            int ok = *bare != '\0' && strpbrk(bare, " \t<>") == NULL;
            if (ok)
                g_mime_message_set_message_id(b->msg, bare);
            g_free(id);
            if (!ok)
                return build_fail(b, "invalid Message-Id: \"%s\"", build_quote(value, q, sizeof q));
            continue;
        }
        /* GMime encodes non-ASCII text as RFC 2047 words when it writes the header */
        g_mime_object_append_header(GMIME_OBJECT(b->msg), name, value, "utf-8");
    }
    return 0;
}

/* Tags go to the caller and, as Mailpit writes them, into X-Tags. */
static int
build_tags(build *b, const json_t *req, mime_built *out)
{
    const json_t *arr = json_object_get(req, "Tags");
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return build_fail(b, "Tags must be an array of strings");
    size_t n = json_array_size(arr);
    if (n > BUILD_MAX_LIST)
        return build_fail(b, "too many Tags (at most %d)", BUILD_MAX_LIST);
    out->tags = calloc(n ? n : 1, sizeof(*out->tags));
    if (out->tags == NULL)
        return build_fail(b, "out of memory");
    GString *joined = g_string_new(NULL);
    size_t i;
    const json_t *v;
    int rc = 0;
    json_array_foreach(arr, i, v)
    {
        const char *t = json_string_value(v);
        if (t == NULL || strlen(t) != json_string_length(v) || strpbrk(t, "\r\n,") != NULL ||
            strlen(t) > 255) {
            rc = build_fail(b,
                            "Tags[%zu] must be a string of at most 255 characters "
                            "without commas or line breaks",
                            i);
            break;
        }
        if ((out->tags[out->tag_count] = strdup(t)) == NULL) {
            rc = build_fail(b, "out of memory");
            break;
        }
        out->tag_count++;
        g_string_append_printf(joined, "%s%s", joined->len ? ", " : "", t);
    }
    if (rc == 0 && joined->len > 0)
        g_mime_object_append_header(GMIME_OBJECT(b->msg), "X-Tags", joined->str, "utf-8");
    g_string_free(joined, TRUE);
    return rc;
}

/* ---- bodies and attachments ------------------------------------------------------- */

/* A text part. Line ends become CRLF here, the canonical form of text (RFC 2045 6.8),
   so that a base64 body decodes to what a quoted-printable one does. */
static GMimeObject *
build_text_part(const char *subtype, const char *s, size_t len)
{
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    GString *lf = g_string_sized_new(len);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            g_string_append(lf, "\r\n");
            if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
                i++;
        } else {
            g_string_append_c(lf, s[i]);
        }
    }
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(lf->str, lf->len);
    GMimeDataWrapper *content =
        g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(part), content);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
    /* 7bit when it can be, else quoted-printable: no line over 998 octets */
    g_mime_part_set_content_encoding(
        GMIME_PART(part),
        g_mime_part_get_best_content_encoding(GMIME_PART(part), GMIME_ENCODING_CONSTRAINT_7BIT));
    g_object_unref(content);
    g_object_unref(stream);
    g_string_free(lf, TRUE);
    return GMIME_OBJECT(part);
}

/* Strict base64 (RFC 4648 4; line breaks allowed, as Go's decoder allows them): the
   decoded bytes, or NULL. A "data:...;base64," prefix, as browsers make it, is skipped
   (Mailpit does the same). */
static GByteArray *
build_base64(const char *s)
{
    const char *comma = strrchr(s, ',');
    if (comma != NULL)
        s = comma + 1;
    GString *clean = g_string_new(NULL);
    for (const char *p = s; *p; p++) {
        if (*p == '\r' || *p == '\n')
            continue;
        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=') {
            g_string_free(clean, TRUE);
            return NULL;
        }
        g_string_append_c(clean, *p);
    }
    size_t n = clean->len;
    const char *eq = memchr(clean->str, '=', n);
    bool ok = n % 4 == 0 && (eq == NULL || (clean->str + n - eq <= 2 &&
                                            strspn(eq, "=") == (size_t)(clean->str + n - eq)));
    GByteArray *out = NULL;
    if (ok) {
        out = g_byte_array_sized_new((guint)(n / 4 * 3 + 3));
        int state = 0;
        guint save = 0;
        gsize k = g_base64_decode_step(clean->str, n, out->data, &state, &save);
        g_byte_array_set_size(out, (guint)k);
    }
    g_string_free(clean, TRUE);
    return out;
}

/* A Content-Type for bytes the request did not type (as Go's DetectContentType would
   say for the common cases). */
static const char *
build_sniff(const GByteArray *d)
{
    static const struct {
        const char *magic;
        size_t n;
        const char *type;
    } magics[] = {{"\x89PNG\r\n\x1a\n", 8, "image/png"},
                  {"\xFF\xD8\xFF", 3, "image/jpeg"},
                  {"GIF87a", 6, "image/gif"},
                  {"GIF89a", 6, "image/gif"},
                  {"%PDF-", 5, "application/pdf"},
                  {"PK\x03\x04", 4, "application/zip"}};
    for (size_t i = 0; i < G_N_ELEMENTS(magics); i++)
        if (d->len >= magics[i].n && memcmp(d->data, magics[i].magic, magics[i].n) == 0)
            return magics[i].type;
    if (memchr(d->data, '\0', d->len) == NULL &&
        g_utf8_validate((const char *)d->data, (gssize)d->len, NULL))
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

/* One attachment; *is_inline when it has a ContentID (the HTML refers to it). */
static GMimeObject *
build_attachment(build *b, const json_t *a, size_t i, bool *is_inline)
{
    char what[48], q[80];
    const char *content, *filename, *type, *cid;
    if (!json_is_object(a)) {
        build_fail(b, "Attachments[%zu] must be an object", i);
        return NULL;
    }
    snprintf(what, sizeof what, "Attachments[%zu].Filename", i);
    if (build_opt_string(b, a, "Filename", what, &filename) || build_header_text(b, filename, what))
        return NULL;
    snprintf(what, sizeof what, "Attachments[%zu].ContentType", i);
    if (build_opt_string(b, a, "ContentType", what, &type) || build_header_text(b, type, what))
        return NULL;
    snprintf(what, sizeof what, "Attachments[%zu].ContentID", i);
    if (build_opt_string(b, a, "ContentID", what, &cid) || build_header_text(b, cid, what))
        return NULL;
    snprintf(what, sizeof what, "Attachments[%zu].Content", i);
    if (build_opt_string(b, a, "Content", what, &content))
        return NULL;
    GByteArray *bytes = build_base64(content ? content : "");
    if (bytes == NULL) {
        build_fail(b, "Attachments[%zu].Content is not base64", i);
        return NULL;
    }
    GMimeContentType *ct = type && *type ? g_mime_content_type_parse(NULL, type) : NULL;
    if (type && *type && (ct == NULL || strchr(type, '/') == NULL)) {
        if (ct != NULL)
            g_object_unref(ct);
        g_byte_array_unref(bytes);
        build_fail(b, "Attachments[%zu].ContentType is invalid: %s", i,
                   build_quote(type, q, sizeof q));
        return NULL;
    }
    if (ct == NULL)
        ct = g_mime_content_type_parse(NULL, build_sniff(bytes));
    GMimePart *part = g_mime_part_new();
    g_mime_object_set_content_type(GMIME_OBJECT(part), ct);
    g_object_unref(ct);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(bytes); /* takes bytes */
    GMimeDataWrapper *data =
        g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, data);
    g_object_unref(data);
    g_object_unref(stream);
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);

    *is_inline = cid != NULL && *cid != '\0';
    if (*is_inline) {
        char *id = g_strdup(cid);
        g_strstrip(id);
        size_t n = strlen(id);
        const char *bare =
            n >= 2 && id[0] == '<' && id[n - 1] == '>' ? (id[n - 1] = '\0', id + 1) : id;
        if (*bare == '\0' || strpbrk(bare, " \t<>") != NULL) {
            g_free(id);
            g_object_unref(part);
            build_fail(b, "Attachments[%zu].ContentID is invalid: %s", i,
                       build_quote(cid, q, sizeof q));
            return NULL;
        }
        g_mime_object_set_content_id(GMIME_OBJECT(part), bare);
        g_free(id);
    }
    g_mime_object_set_disposition(GMIME_OBJECT(part), *is_inline ? "inline" : "attachment");
    if (filename && *filename)
        g_mime_part_set_filename(part, filename);
    return GMIME_OBJECT(part);
}

/* multipart/subtype holding first, then the parts in extra (first may be NULL). */
static GMimeObject *
build_wrap(const char *subtype, GMimeObject *first, GPtrArray *extra)
{
    GMimeMultipart *mp = g_mime_multipart_new_with_subtype(subtype);
    if (first != NULL) {
        g_mime_multipart_add(mp, first);
        g_object_unref(first);
    }
    for (guint i = 0; i < extra->len; i++)
        g_mime_multipart_add(mp, g_ptr_array_index(extra, i));
    return GMIME_OBJECT(mp);
}

/* The body: text and/or HTML (multipart/alternative when both), inline parts beside the
   HTML in a multipart/related, attachments after it all in a multipart/mixed. */
static int
build_body(build *b, const json_t *req)
{
    const char *text, *html;
    if (build_opt_string(b, req, "Text", "Text", &text) ||
        build_opt_string(b, req, "HTML", "HTML", &html))
        return -1;
    const json_t *arr = json_object_get(req, "Attachments");
    if (arr != NULL && !json_is_null(arr) && !json_is_array(arr))
        return build_fail(b, "Attachments must be an array");
    if (json_array_size(arr) > BUILD_MAX_LIST)
        return build_fail(b, "too many Attachments (at most %d)", BUILD_MAX_LIST);

    GPtrArray *inlines = g_ptr_array_new_with_free_func(g_object_unref);
    GPtrArray *files = g_ptr_array_new_with_free_func(g_object_unref);
    int rc = 0;
    size_t i;
    const json_t *a;
    json_array_foreach(arr, i, a)
    {
        bool is_inline = false;
        GMimeObject *part = build_attachment(b, a, i, &is_inline);
        if (part == NULL) {
            rc = -1;
            break;
        }
        g_ptr_array_add(is_inline ? inlines : files, part);
    }
    if (rc == 0) {
        bool has_text = text && *text, has_html = html && *html;
        GMimeObject *body = NULL;
        if (has_text || !has_html)
            body = build_text_part("plain", text ? text : "", text ? strlen(text) : 0);
        if (has_html) {
            GMimeObject *h = build_text_part("html", html, strlen(html));
            if (body != NULL) {
                GPtrArray *one = g_ptr_array_new_with_free_func(g_object_unref);
                g_ptr_array_add(one, h);
                body = build_wrap("alternative", body, one);
                g_ptr_array_free(one, TRUE);
            } else {
                body = h;
            }
        }
        if (inlines->len > 0)
            body = build_wrap("related", body, inlines);
        if (files->len > 0)
            body = build_wrap("mixed", body, files);
        g_mime_message_set_mime_part(b->msg, body);
        g_object_unref(body);
    }
    g_ptr_array_free(inlines, TRUE);
    g_ptr_array_free(files, TRUE);
    return rc;
}

/* ---- the whole message ------------------------------------------------------------ */

/* A host name fit for a Message-Id: the given one if it is a plain DNS name. */
static const char *
build_host(const char *hostname)
{
    if (hostname == NULL || *hostname == '\0' || strlen(hostname) > 253)
        return "localhost";
    for (const char *p = hostname; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
            return "localhost";
    return hostname;
}

static int
build_from(build *b, const json_t *req, mime_built *out)
{
    const json_t *from = json_object_get(req, "From");
    const char *email = NULL, *name = NULL;
    if (json_is_object(from) && build_opt_string(b, from, "Email", "From.Email", &email) != 0)
        return -1;
    if (email == NULL || *email == '\0')
        return build_fail(b, "From.Email is required");
    if (build_mailbox(b, from, "From", &email, &name) != 0)
        return -1;
    g_mime_message_add_mailbox(b->msg, GMIME_ADDRESS_TYPE_FROM, name ? name : "", email);
    out->sender = strdup(email);
    return out->sender ? 0 : build_fail(b, "out of memory");
}

static int
build_headers_all(build *b, const json_t *req, const char *hostname, mime_built *out)
{
    const char *subject;
    bool tags = json_array_size(json_object_get(req, "Tags")) > 0;
    if (build_from(b, req, out) ||
        build_mailboxes(b, req, "To", "To", GMIME_ADDRESS_TYPE_TO, true) ||
        build_mailboxes(b, req, "Cc", "Cc", GMIME_ADDRESS_TYPE_CC, true) || build_bcc(b, req) ||
        build_mailboxes(b, req, "ReplyTo", "Reply-To", GMIME_ADDRESS_TYPE_REPLY_TO, false))
        return -1;
    if (b->rcpts->len == 0)
        return build_fail(b, "at least one recipient (To, Cc or Bcc) is required");
    if (build_opt_string(b, req, "Subject", "Subject", &subject) ||
        build_header_text(b, subject, "Subject"))
        return -1;
    g_mime_message_set_subject(b->msg, subject ? subject : "", "utf-8");
    GDateTime *now = g_date_time_new_now_local();
    g_mime_message_set_date(b->msg, now);
    g_date_time_unref(now);
    char *id = g_mime_utils_generate_message_id(build_host(hostname));
    g_mime_message_set_message_id(b->msg, id);
    g_free(id);
    g_mime_object_set_header(GMIME_OBJECT(b->msg), "MIME-Version", "1.0", NULL);
    return build_tags(b, req, out) || build_headers(b, req, tags) ? -1 : 0;
}

/* The message as bytes with CRLF line ends. */
static int
build_write(build *b, mime_built *out)
{
    GMimeFormatOptions *opts = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_object_write_to_stream(GMIME_OBJECT(b->msg), opts, mem);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    out->data = malloc(bytes->len + 1);
    if (out->data != NULL) {
        memcpy(out->data, bytes->data, bytes->len);
        out->data[bytes->len] = '\0';
        out->len = bytes->len;
    }
    g_object_unref(mem);
    g_mime_format_options_free(opts);
    return out->data ? 0 : build_fail(b, "out of memory");
}

int
mime_build_send(const json_t *req, const char *hostname, mime_built *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof(*out));
    char dummy[1];
    build b = {.err = err ? err : dummy, .errsize = err ? errsize : sizeof dummy};
    b.err[0] = '\0';
    if (!json_is_object(req))
        return build_fail(&b, "the request must be a JSON object");
    mime_init();
    b.msg = g_mime_message_new(FALSE);
    b.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    b.rcpts = g_ptr_array_new();
    int rc = build_headers_all(&b, req, hostname, out);
    if (rc == 0)
        rc = build_body(&b, req);
    if (rc == 0)
        rc = build_write(&b, out);
    out->rcpts = calloc(b.rcpts->len ? b.rcpts->len : 1, sizeof(*out->rcpts));
    if (out->rcpts != NULL) {
        if (b.rcpts->len > 0)
            memcpy(out->rcpts, b.rcpts->pdata, b.rcpts->len * sizeof(*out->rcpts));
        out->rcpt_count = b.rcpts->len;
    } else {
        for (guint i = 0; i < b.rcpts->len; i++)
            free(g_ptr_array_index(b.rcpts, i));
        rc = build_fail(&b, "out of memory");
    }
    g_ptr_array_free(b.rcpts, TRUE);
    g_hash_table_destroy(b.seen);
    g_object_unref(b.msg);
    if (rc != 0) {
        mime_built_cleanup(out);
        return -1;
    }
    return 0;
}

void
mime_built_cleanup(mime_built *b)
{
    if (b == NULL)
        return;
    free(b->data);
    free(b->sender);
    for (size_t i = 0; i < b->rcpt_count; i++)
        free(b->rcpts[i]);
    free(b->rcpts);
    for (size_t i = 0; i < b->tag_count; i++)
        free(b->tags[i]);
    free(b->tags);
    memset(b, 0, sizeof(*b));
}
