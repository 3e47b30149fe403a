/*
 * mime_message.c - a stored message read with GMime 3 for the HTTP API (see
 * mime_message.h): Mailpit's Message object, the decoded headers, one part's bytes,
 * address lists, and HTML turned into text.
 *
 * The message is hostile. Every string handed to Jansson is valid UTF-8 first (Jansson
 * refuses anything else), every walk over the input is linear, and nothing here keeps
 * more than a small constant factor of the input in memory.
 */
#include "mailsink/mime_message.h"
#include "mailsink/mime.h"

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers --------------------------------------------------------------- */

/* A JSON string of s, made valid UTF-8 if it is not (NULL -> ""). NULL when out of
   memory. */
static json_t *
mm_str(const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (g_utf8_validate(s, (gssize)n, NULL))
        return json_stringn(s, n);
    char *v = mime_utf8_dup(s, n);
    json_t *j = v ? json_string(v) : NULL;
    free(v);
    return j;
}

/* obj[key] = s; -1 when out of memory. */
static int
mm_set_str(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, mm_str(s));
}

/* Control characters in a name (a file name goes into an HTTP header) become spaces. */
static void
mm_no_controls(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            *s = ' ';
}

/* The media type as "type/subtype" in lower case, or application/octet-stream when
   GMime kept something that is not a pair of RFC 2045 tokens. g_free() it. */
static char *
mm_media_type(GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    static const char tspecials[] = "()<>@,;:\\\"/[]?=";
    bool ok = type && sub && *type && *sub;
    for (const char *p = type; ok && *p; p++)
        ok = *p > ' ' && *p < 0x7F && strchr(tspecials, *p) == NULL;
    for (const char *p = sub; ok && *p; p++)
        ok = *p > ' ' && *p < 0x7F && strchr(tspecials, *p) == NULL;
    if (!ok)
        return g_strdup("application/octet-stream");
    char *both = g_strconcat(type, "/", sub, NULL);
    char *lower = g_ascii_strdown(both, -1);
    g_free(both);
    return lower;
}

/* The decoded bytes of a leaf (transfer encoding undone; an attached message as it is
   written). g_byte_array_unref() it. */
static GByteArray *
mm_leaf_bytes(GMimeObject *leaf)
{
    GMimeStream *mem = g_mime_stream_mem_new();
    if (GMIME_IS_PART(leaf)) {
        GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(leaf));
        if (content != NULL)
            g_mime_data_wrapper_write_to_stream(content, mem);
    } else if (GMIME_IS_MESSAGE_PART(leaf)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(leaf));
        GMimeFormatOptions *crlf = g_mime_format_options_new();
        g_mime_format_options_set_newline_format(crlf, GMIME_NEWLINE_FORMAT_DOS);
        if (m != NULL) /* as it came over SMTP: CRLF line ends */
            g_mime_object_write_to_stream(GMIME_OBJECT(m), crlf, mem);
        g_mime_format_options_free(crlf);
    }
    /* the stream frees what it owns even while referenced elsewhere: take it over */
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_object_unref(mem);
    return bytes;
}

/* ---- HTML to text ---------------------------------------------------------------- */

/* The text being written: whitespace is only remembered, and written as one space or
   up to two line breaks when the next visible character comes, so runs collapse and
   the text never starts or ends with blanks. */
typedef struct html_out {
    GString *text;
    bool space;   /* whitespace since the last visible character */
    int newlines; /* line breaks owed (at most 2: a paragraph) */
    int pre;      /* inside <pre>: whitespace kept as it is */
    bool head;    /* inside <head>: nothing shown */
} html_out;

/* Visible text: first the whitespace owed, then s. */
static void
html_emit(html_out *o, const char *s, size_t n)
{
    if (n == 0 || o->head)
        return;
    if (o->text->len > 0 && o->newlines > 0)
        g_string_append_len(o->text, "\n\n", o->newlines > 2 ? 2 : o->newlines);
    else if (o->text->len > 0 && o->space)
        g_string_append_c(o->text, ' ');
    o->newlines = 0;
    o->space = false;
    g_string_append_len(o->text, s, (gssize)n);
}

static void
html_break(html_out *o, int lines)
{
    if (o->newlines < lines)
        o->newlines = lines;
}

static bool
html_is_space(unsigned char c)
{
    return c <= ' ' || c == 0x7F; /* control characters show as nothing but a gap */
}

/* Plain text up to the next tag or entity; returns where it stopped. */
static const char *
html_text(html_out *o, const char *p, const char *end)
{
    while (p < end && *p != '<' && *p != '&') {
        if (html_is_space((unsigned char)*p)) {
            if (o->pre && (*p == ' ' || *p == '\t' || *p == '\n'))
                html_emit(o, *p == '\n' ? "\n" : " ", 1);
            else
                o->space = true;
            p++;
            continue;
        }
        const char *q = p;
        while (q < end && *q != '<' && *q != '&' && !html_is_space((unsigned char)*q))
            q++;
        html_emit(o, p, (size_t)(q - p));
        p = q;
    }
    return p;
}

typedef struct html_entity {
    const char *name;
    const char *text; /* "" = nothing, " " = whitespace */
} html_entity;

/* The named references mail actually uses (HTML names are case-sensitive). */
static const html_entity html_entities[] = {
    {"amp", "&"},         {"lt", "<"},          {"gt", ">"},          {"quot", "\""},
    {"apos", "'"},        {"AMP", "&"},         {"LT", "<"},          {"GT", ">"},
    {"QUOT", "\""},       {"nbsp", " "},        {"ensp", " "},        {"emsp", " "},
    {"thinsp", " "},      {"shy", ""},          {"zwnj", ""},         {"zwj", ""},
    {"copy", "\u00A9"},   {"reg", "\u00AE"},    {"trade", "\u2122"},  {"hellip", "\u2026"},
    {"mdash", "\u2014"},  {"ndash", "\u2013"},  {"lsquo", "\u2018"},  {"rsquo", "\u2019"},
    {"sbquo", "\u201A"},  {"ldquo", "\u201C"},  {"rdquo", "\u201D"},  {"bdquo", "\u201E"},
    {"laquo", "\u00AB"},  {"raquo", "\u00BB"},  {"lsaquo", "\u2039"}, {"rsaquo", "\u203A"},
    {"bull", "\u2022"},   {"middot", "\u00B7"}, {"euro", "\u20AC"},   {"pound", "\u00A3"},
    {"yen", "\u00A5"},    {"cent", "\u00A2"},   {"deg", "\u00B0"},    {"plusmn", "\u00B1"},
    {"times", "\u00D7"},  {"divide", "\u00F7"}, {"frac12", "\u00BD"}, {"frac14", "\u00BC"},
    {"frac34", "\u00BE"}, {"sect", "\u00A7"},   {"para", "\u00B6"},   {"iexcl", "\u00A1"},
    {"iquest", "\u00BF"}, {"dagger", "\u2020"}, {"hearts", "\u2665"}, {"larr", "\u2190"},
    {"rarr", "\u2192"},   {"uarr", "\u2191"},   {"darr", "\u2193"},   {"micro", "\u00B5"},
    {"auml", "\u00E4"},   {"ouml", "\u00F6"},   {"uuml", "\u00FC"},   {"Auml", "\u00C4"},
    {"Ouml", "\u00D6"},   {"Uuml", "\u00DC"},   {"szlig", "\u00DF"},  {"euml", "\u00EB"},
    {"iuml", "\u00EF"},   {"aacute", "\u00E1"}, {"eacute", "\u00E9"}, {"iacute", "\u00ED"},
    {"oacute", "\u00F3"}, {"uacute", "\u00FA"}, {"Aacute", "\u00C1"}, {"Eacute", "\u00C9"},
    {"agrave", "\u00E0"}, {"egrave", "\u00E8"}, {"ugrave", "\u00F9"}, {"Agrave", "\u00C0"},
    {"Egrave", "\u00C8"}, {"acirc", "\u00E2"},  {"ecirc", "\u00EA"},  {"ocirc", "\u00F4"},
    {"icirc", "\u00EE"},  {"ucirc", "\u00FB"},  {"ccedil", "\u00E7"}, {"Ccedil", "\u00C7"},
    {"ntilde", "\u00F1"}, {"Ntilde", "\u00D1"}, {"aring", "\u00E5"},  {"Aring", "\u00C5"},
    {"aelig", "\u00E6"},  {"AElig", "\u00C6"},  {"oslash", "\u00F8"}, {"Oslash", "\u00D8"},
    {"otilde", "\u00F5"}, {"atilde", "\u00E3"}, {"ordf", "\u00AA"},   {"ordm", "\u00BA"},
    {"sup2", "\u00B2"},   {"sup3", "\u00B3"},   {"not", "\u00AC"},    {"check", "\u2713"},
};

/* HTML5 reads &#128; to &#159; as Windows-1252, as mail written on Windows means them. */
static const uint16_t html_cp1252[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

/* &#NNN; or &#xHHH; at p ('&', p[1] == '#'); NULL when it is not one. */
static const char *
html_numeric(html_out *o, const char *p, const char *end)
{
    bool hex = p + 2 < end && (p[2] == 'x' || p[2] == 'X');
    const char *d = p + (hex ? 3 : 2);
    const char *q = d;
    unsigned long cp = 0;
    for (; q < end && (hex ? g_ascii_isxdigit(*q) : g_ascii_isdigit(*q)); q++) {
        cp = cp * (hex ? 16 : 10) + (unsigned long)g_ascii_xdigit_value(*q);
        if (cp > 0x10FFFF)
            cp = 0x110000; /* stays out of range however many digits follow */
    }
    if (q == d)
        return NULL;
    if (q < end && *q == ';')
        q++;
    if (cp >= 0x80 && cp <= 0x9F)
        cp = html_cp1252[cp - 0x80];
    else if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x20 || cp == 0x7F || cp == 0xA0 || cp == ' ') {
        o->space = true;
        return q;
    }
    char utf8[8];
    html_emit(o, utf8, (size_t)g_unichar_to_utf8((gunichar)cp, utf8));
    return q;
}

/* The entity at p ('&'); returns where the text continues. Unknown ones stay as text. */
static const char *
html_entity_at(html_out *o, const char *p, const char *end)
{
    if (p + 1 < end && p[1] == '#') {
        const char *q = html_numeric(o, p, end);
        if (q != NULL)
            return q;
    }
    const char *name = p + 1;
    size_t n = 0;
    while (name + n < end && n < 8 && g_ascii_isalnum(name[n]))
        n++;
    if (n > 0 && name + n < end && name[n] == ';') {
        for (size_t i = 0; i < G_N_ELEMENTS(html_entities); i++) {
            const html_entity *e = &html_entities[i];
            if (strlen(e->name) != n || memcmp(e->name, name, n) != 0)
                continue;
            if (strcmp(e->text, " ") == 0 && !o->pre)
                o->space = true;
            else
                html_emit(o, e->text, strlen(e->text));
            return name + n + 1;
        }
    }
    html_emit(o, "&", 1);
    return p + 1;
}

static bool
html_name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && g_ascii_strncasecmp(name, want, n) == 0;
}

static bool
html_name_in(const char *name, size_t n, const char *const *set)
{
    for (; *set != NULL; set++)
        if (html_name_is(name, n, *set))
            return true;
    return false;
}

/* The end of the tag whose attributes start at p: past its '>', or end. A quoted
   attribute value may hold '>'; quotes count only right after '='. */
static const char *
html_tag_end(const char *p, const char *end)
{
    while (p < end) {
        if (*p == '>')
            return p + 1;
        if (*p != '=') {
            p++;
            continue;
        }
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p < end && (*p == '"' || *p == '\'')) {
            const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
            if (close == NULL)
                return end; /* never closed: the rest is inside the tag */
            p = close + 1;
        }
    }
    return end;
}

/* Past "</name ...>" for the raw-text element name (script, style...), or end when it
   is never closed, as a browser would show nothing of the rest either. */
static const char *
html_skip_raw(const char *p, const char *end, const char *name, size_t n)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL)
            return end;
        if ((size_t)(end - lt) > n + 2 && lt[1] == '/' &&
            g_ascii_strncasecmp(lt + 2, name, n) == 0 && !g_ascii_isalnum(lt[2 + n]))
            return html_tag_end(lt + 2 + n, end);
        p = lt + 1;
    }
    return end;
}

static const char *const html_raw_tags[] = {"script", "style", "title", "template", "xmp", NULL};
static const char *const html_para_tags[] = {
    "p",    "h1",      "h2",     "h3",       "h4",         "h5",      "h6",     "table",
    "ul",   "ol",      "dl",     "pre",      "section",    "article", "header", "footer",
    "form", "address", "figure", "fieldset", "blockquote", NULL};
static const char *const html_line_tags[] = {
    "br", "div", "tr", "li", "dt", "dd", "hr", "caption", "center", "nav", "aside", "main", NULL};

/* A start or end tag named name[0..n); returns where the text continues. */
static const char *
html_element(html_out *o, const char *name, size_t n, bool closing, const char *end)
{
    const char *after = html_tag_end(name + n, end);
    if (html_name_is(name, n, "head")) {
        o->head = !closing;
    } else if (html_name_is(name, n, "body")) {
        o->head = false;
    } else if (html_name_in(name, n, html_para_tags)) {
        html_break(o, 2);
        if (html_name_is(name, n, "pre"))
            o->pre = closing ? (o->pre > 0 ? o->pre - 1 : 0) : o->pre + 1;
    } else if (html_name_in(name, n, html_line_tags)) {
        html_break(o, 1);
    } else if (html_name_is(name, n, "td") || html_name_is(name, n, "th")) {
        o->space = true;
    } else if (!closing && html_name_in(name, n, html_raw_tags) && after[-1] == '>' &&
               after[-2] != '/') {
        return html_skip_raw(after, end, name, n);
    }
    return after;
}

/* The markup at p ('<'); returns where the text continues. */
static const char *
html_markup(html_out *o, const char *p, const char *end)
{
    size_t left = (size_t)(end - p);
    if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
        const char *q = g_strstr_len(p + 4, (gssize)(left - 4), "-->");
        return q ? q + 3 : end;
    }
    if (left >= 2 && (p[1] == '!' || p[1] == '?')) { /* <!DOCTYPE>, <?xml?>, <![CDATA[ */
        const char *q = memchr(p, '>', left);
        return q ? q + 1 : end;
    }
    bool closing = left >= 2 && p[1] == '/';
    const char *name = p + (closing ? 2 : 1);
    if (name >= end || !g_ascii_isalpha(*name)) {
        html_emit(o, "<", 1); /* a lone '<' in text */
        return p + 1;
    }
    size_t n = 0;
    while (name + n < end && (g_ascii_isalnum(name[n]) || name[n] == '-' || name[n] == ':'))
        n++;
    return html_element(o, name, n, closing, end);
}

char *
mime_html_to_text(const char *html, size_t len)
{
    html_out o = {.text = g_string_sized_new(len / 2 + 16)}; /* text is seldom longer */
    const char *p = html ? html : "";
    const char *end = p + (html ? len : 0);
    while (p < end) {
        if (*p == '<')
            p = html_markup(&o, p, end);
        else if (*p == '&')
            p = html_entity_at(&o, p, end);
        else
            p = html_text(&o, p, end);
    }
    /* valid UTF-8 (the input may not have been), and malloc'd as mime_message.h says */
    char *v = mime_utf8_dup(o.text->str, o.text->len);
    g_string_free(o.text, TRUE);
    return v;
}

/* ---- headers --------------------------------------------------------------------- */

/* Go's textproto canonical form, as Mailpit shows names: "message-id" -> "Message-Id".
   A name with a byte that is not a token character stays as it is. */
static char *
mm_canonical_name(const char *name)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    char *c = mime_utf8_dup(name, strlen(name));
    if (c == NULL)
        return NULL;
    for (const char *p = c; *p; p++)
        if (!g_ascii_isalnum(*p) && strchr(extra, *p) == NULL)
            return c;
    bool upper = true;
    for (char *p = c; *p; p++) {
        *p = upper ? g_ascii_toupper(*p) : g_ascii_tolower(*p);
        upper = *p == '-';
    }
    return c;
}

/* A header's value as a reader wants it: unfolded (each line break and the blanks
   around it become one space, as Go's textproto does), trimmed, RFC 2047 words decoded,
   valid UTF-8. malloc'd; NULL when out of memory. */
static char *
mm_header_value(const char *raw)
{
    size_t n = raw ? strlen(raw) : 0;
    char *flat = g_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] != '\r' && raw[i] != '\n') {
            flat[k++] = raw[i];
            continue;
        }
        while (k > 0 && (flat[k - 1] == ' ' || flat[k - 1] == '\t'))
            k--;
        while (i + 1 < n && (raw[i + 1] == '\r' || raw[i + 1] == '\n' || raw[i + 1] == ' ' ||
                             raw[i + 1] == '\t'))
            i++;
        if (k > 0)
            flat[k++] = ' ';
    }
    while (k > 0 && (flat[k - 1] == ' ' || flat[k - 1] == '\t'))
        k--;
    flat[k] = '\0';
    const char *start = flat;
    while (*start == ' ' || *start == '\t')
        start++;
    char *decoded = g_mime_utils_header_decode_text(NULL, start);
    const char *v = decoded ? decoded : start;
    char *out = mime_utf8_dup(v, strlen(v));
    g_free(decoded);
    g_free(flat);
    return out;
}

/* The first header called name (message headers, then the top-level part's Content-*
   ones), decoded; "" when absent. malloc'd; NULL when out of memory. */
static char *
mm_header(GMimeMessage *msg, const char *name)
{
    const char *raw = NULL;
    if (msg == NULL)
        return mm_header_value(NULL);
    GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    GMimeHeader *h = list ? g_mime_header_list_get_header(list, name) : NULL;
    if (h == NULL && g_mime_message_get_mime_part(msg) != NULL) {
        list = g_mime_object_get_header_list(g_mime_message_get_mime_part(msg));
        h = list ? g_mime_header_list_get_header(list, name) : NULL;
    }
    if (h != NULL)
        raw = g_mime_header_get_raw_value(h);
    return mm_header_value(raw);
}

static int
mm_headers_add(json_t *all, GMimeHeaderList *list)
{
    int count = list ? g_mime_header_list_get_count(list) : 0;
    for (int i = 0; i < count; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
        const char *name = h ? g_mime_header_get_name(h) : NULL;
        if (name == NULL || *name == '\0')
            continue;
        char *key = mm_canonical_name(name);
        char *value = mm_header_value(g_mime_header_get_raw_value(h));
        json_t *arr = key ? json_object_get(all, key) : NULL;
        int rc = key && value ? 0 : -1;
        if (rc == 0 && arr == NULL) {
            arr = json_array();
            rc = json_object_set_new(all, key, arr);
        }
        if (rc == 0)
            rc = json_array_append_new(arr, mm_str(value));
        free(key);
        free(value);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int
mm_strcmp_cb(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The same object with its keys inserted in sorted order (Jansson keeps insertion order,
   so the JSON comes out sorted however it is dumped). Steals obj. */
static json_t *
mm_sorted(json_t *obj)
{
    size_t n = json_object_size(obj);
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    json_t *out = json_object();
    if (keys == NULL || out == NULL)
        goto fail;
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) keys[i++] = key;
    qsort(keys, n, sizeof(*keys), mm_strcmp_cb);
    for (i = 0; i < n; i++)
        if (json_object_set(out, keys[i], json_object_get(obj, keys[i])) != 0)
            goto fail;
    free(keys);
    json_decref(obj);
    return out;
fail:
    free(keys);
    json_decref(out);
    json_decref(obj);
    return NULL;
}

json_t *
mime_headers_json(const char *data, size_t len)
{
    json_t *all = json_object();
    if (all == NULL)
        return NULL;
    GMimeMessage *msg = mime_parse(data, len);
    int rc = 0;
    if (msg != NULL) {
        /* GMime keeps the Content-* headers with the top-level part, not the message */
        rc = mm_headers_add(all, g_mime_object_get_header_list(GMIME_OBJECT(msg)));
        GMimeObject *root = g_mime_message_get_mime_part(msg);
        if (rc == 0 && root != NULL)
            rc = mm_headers_add(all, g_mime_object_get_header_list(root));
        g_object_unref(msg);
    }
    if (rc != 0) {
        json_decref(all);
        return NULL;
    }
    return mm_sorted(all);
}

/* ---- addresses ------------------------------------------------------------------- */

static int
mm_address_add(json_t *arr, InternetAddress *a, int depth)
{
    if (INTERNET_ADDRESS_IS_GROUP(a)) { /* "team: a@x, b@y;" lists its members */
        InternetAddressList *members =
            internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
        int n = members && depth < 4 ? internet_address_list_length(members) : 0;
        for (int i = 0; i < n; i++)
            if (mm_address_add(arr, internet_address_list_get_address(members, i), depth + 1))
                return -1;
        return 0;
    }
    if (!INTERNET_ADDRESS_IS_MAILBOX(a))
        return 0;
    const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
    const char *name = internet_address_get_name(a);
    if ((addr == NULL || *addr == '\0') && (name == NULL || *name == '\0'))
        return 0;
    json_t *o = json_object();
    if (o == NULL || mm_set_str(o, "Name", name) || mm_set_str(o, "Address", addr)) {
        json_decref(o);
        return -1;
    }
    return json_array_append_new(arr, o);
}

static json_t *
mm_address_array(InternetAddressList *list)
{
    json_t *arr = json_array();
    int n = list && arr ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n; i++) {
        if (mm_address_add(arr, internet_address_list_get_address(list, i), 0) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *
mime_address_list_json(const char *list)
{
    if (list == NULL || *list == '\0')
        return json_array();
    mime_init();
    InternetAddressList *parsed = internet_address_list_parse(NULL, list);
    json_t *arr = mm_address_array(parsed);
    if (parsed != NULL)
        g_object_unref(parsed);
    return arr;
}

/* ---- List-Unsubscribe (RFC 2369, RFC 8058) --------------------------------------- */

typedef struct mm_unsub {
    json_t *links;
    GString *errors;
    bool mailto;
    bool http;
} mm_unsub;

static void
mm_unsub_error(mm_unsub *u, const char *what, size_t n, const char *why)
{
    if (u->errors->len > 0)
        g_string_append(u->errors, ", ");
    g_string_append_c(u->errors, '"');
    g_string_append_len(u->errors, what, (gssize)n);
    g_string_append_printf(u->errors, "\" %s", why);
}

/* One <link>: at most one mailto: and one http(s):// link, without spaces. */
static int
mm_unsub_link(mm_unsub *u, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (g_ascii_isspace(s[i])) {
            mm_unsub_error(u, s, n, "should not contain spaces");
            return 0;
        }
    bool mailto = n > 7 && g_ascii_strncasecmp(s, "mailto:", 7) == 0 && g_ascii_isalnum(s[7]);
    size_t scheme = n > 7 && g_ascii_strncasecmp(s, "http://", 7) == 0    ? 7
                    : n > 8 && g_ascii_strncasecmp(s, "https://", 8) == 0 ? 8
                                                                          : 0;
    bool http = scheme > 0 && g_ascii_isalnum(s[scheme]);
    if (!mailto && !http) {
        mm_unsub_error(u, s, n, "should start with either http(s):// or mailto:");
        return 0;
    }
    bool *seen = mailto ? &u->mailto : &u->http;
    if (*seen) {
        mm_unsub_error(u, s, n,
                       mailto ? "should only contain one mailto:"
                              : "should only contain one "
                                "HTTP link");
        return 0;
    }
    *seen = true;
    json_t *j = json_stringn(s, n);
    return j ? json_array_append_new(u->links, j) : -1;
}

/* Comments "(...)" removed and blanks trimmed, as the checks below want the value. */
static GString *
mm_unsub_clean(const char *v)
{
    GString *s = g_string_new(NULL);
    int depth = 0;
    for (const char *p = v; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        else if (depth == 0)
            g_string_append_c(s, *p);
    }
    size_t start = 0;
    while (start < s->len && g_ascii_isspace(s->str[start]))
        start++;
    g_string_erase(s, 0, (gssize)start);
    while (s->len > 0 && g_ascii_isspace(s->str[s->len - 1]))
        g_string_truncate(s, s->len - 1);
    return s;
}

/* Splits "<a>, <b>" and checks each link; a malformed list gives no links at all. */
static int
mm_unsub_parse(mm_unsub *u, const char *v)
{
    GString *s = mm_unsub_clean(v);
    const char *p = s->str, *end = s->str + s->len;
    int rc = 0;
    if (strchr(p, '<') == NULL || strchr(p, '>') == NULL) {
        mm_unsub_error(u, p, s->len, "no valid unsubscribe links found");
        goto out;
    }
    if (s->len < 2 || p[0] != '<' || end[-1] != '>') {
        mm_unsub_error(u, p, s->len, "should be enclosed in <>");
        goto out;
    }
    json_t *found = json_array(); /* the links, checked once the list proved well formed */
    while (found != NULL && p < end) {
        const char *close = *p == '<' ? memchr(p + 1, '>', (size_t)(end - p - 1)) : NULL;
        if (close == NULL) {
            mm_unsub_error(u, s->str, s->len,
                           "<> should be split with a comma and optional spaces");
            json_array_clear(found);
            break;
        }
        if (json_array_append_new(found, json_stringn(p + 1, (size_t)(close - p - 1))) != 0)
            rc = -1;
        for (p = close + 1; p < end && g_ascii_isspace(*p); p++)
            ;
        if (p < end && *p != ',') {
            mm_unsub_error(u, s->str, s->len,
                           "<> should be split with a comma and optional spaces");
            json_array_clear(found);
            break;
        }
        if (p < end) /* a comma, then the next link (a stray comma fails above) */
            for (p++; p < end && g_ascii_isspace(*p); p++)
                ;
    }
    if (found == NULL || rc != 0) {
        rc = -1;
    } else if (json_array_size(found) > 2) {
        mm_unsub_error(u, s->str, s->len,
                       "should include a maximum of one email and one HTTP link");
    } else {
        size_t i;
        json_t *link;
        json_array_foreach(found, i, link)
        {
            if (json_string_value(link) && rc == 0)
                rc = mm_unsub_link(u, json_string_value(link), json_string_length(link));
        }
    }
    json_decref(found);
out:
    g_string_free(s, TRUE);
    return rc;
}

static json_t *
mm_list_unsubscribe(GMimeMessage *msg)
{
    char *header = mm_header(msg, "List-Unsubscribe");
    char *post = header && *header ? mm_header(msg, "List-Unsubscribe-Post") : strdup("");
    mm_unsub u = {.links = json_array(), .errors = g_string_new(NULL)};
    json_t *o = json_object();
    int rc = header && post && u.links && o ? 0 : -1;
    if (rc == 0 && *header)
        rc = mm_unsub_parse(&u, header);
    if (rc == 0)
        rc = mm_set_str(o, "Header", header) | mm_set_str(o, "Errors", u.errors->str) |
             json_object_set(o, "Links", u.links) | mm_set_str(o, "HeaderPost", post);
    json_decref(u.links);
    g_string_free(u.errors, TRUE);
    free(header);
    free(post);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- parts ----------------------------------------------------------------------- */

/* What one walk over the leaves finds: the body parts and the listed ones. */
typedef struct mm_walk {
    GPtrArray *plain;  /* text/plain bodies, in order */
    GMimeObject *html; /* the first text/html body */
    json_t *inline_;   /* Attachment objects */
    json_t *attached;
    bool oom;
} mm_walk;

static void
mm_hex(const unsigned char *md, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* {MD5, SHA1, SHA256} of the decoded bytes, lower-case hex ("" for a digest OpenSSL
   refuses, as MD5 under a FIPS provider). */
static json_t *
mm_checksums(const GByteArray *bytes)
{
    static const char *const names[] = {"MD5", "SHA1", "SHA256"};
    const EVP_MD *mds[] = {EVP_md5(), EVP_sha1(), EVP_sha256()};
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < G_N_ELEMENTS(names); i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
        if (mds[i] != NULL && EVP_Digest(bytes->data, bytes->len, md, &n, mds[i], NULL) == 1)
            mm_hex(md, n, hex);
        if (mm_set_str(o, names[i], hex) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* A leaf's file name as shown: decoded, valid UTF-8, no control characters. malloc'd
   ("" when it has none); NULL when out of memory. */
static char *
mm_part_name(GMimeObject *leaf)
{
    const char *name = mime_part_name(leaf);
    char *v = mime_utf8_dup(name, name ? strlen(name) : 0);
    if (v != NULL)
        mm_no_controls(v);
    return v;
}

/* Mailpit's Attachment object. */
static json_t *
mm_attachment_json(GMimeObject *leaf, const char *part_id)
{
    GByteArray *bytes = mm_leaf_bytes(leaf);
    char *name = mm_part_name(leaf);
    char *type = mm_media_type(leaf);
    const char *cid = g_mime_object_get_content_id(leaf);
    json_t *o = json_object();
    int rc = o && name ? 0 : -1;
    if (rc == 0) /* an unnamed inline image is known by its Content-ID, as in Mailpit */
        rc = mm_set_str(o, "PartID", part_id) |
             mm_set_str(o, "FileName", *name || cid == NULL ? name : cid) |
             mm_set_str(o, "ContentType", type) | mm_set_str(o, "ContentID", cid) |
             json_object_set_new(o, "Size", json_integer((json_int_t)bytes->len)) |
             json_object_set_new(o, "Checksums", mm_checksums(bytes));
    g_byte_array_unref(bytes);
    free(name);
    g_free(type);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int
mm_walk_cb(GMimeObject *leaf, const char *part_id, mime_part_kind kind, void *user)
{
    mm_walk *w = user;
    json_t *list = NULL;
    switch (kind) {
    case MIME_PART_BODY:
        if (g_mime_content_type_is_type(g_mime_object_get_content_type(leaf), "text", "plain"))
            g_ptr_array_add(w->plain, leaf);
        else if (w->html == NULL)
            w->html = leaf;
        return 0;
    case MIME_PART_INLINE:
        list = w->inline_;
        break;
    case MIME_PART_ATTACHMENT:
        list = w->attached;
        break;
    case MIME_PART_OTHER:
        return 0;
    }
    if (list != NULL && json_array_append_new(list, mm_attachment_json(leaf, part_id)) != 0)
        w->oom = true;
    return 0;
}

/* Walks msg; lists is false when only the bodies are wanted. */
static void
mm_walk_message(GMimeMessage *msg, mm_walk *w, bool lists)
{
    memset(w, 0, sizeof(*w));
    w->plain = g_ptr_array_new();
    if (lists) {
        w->inline_ = json_array();
        w->attached = json_array();
        w->oom = w->inline_ == NULL || w->attached == NULL;
    }
    mime_leaves_foreach(msg, mm_walk_cb, w);
}

static void
mm_walk_cleanup(mm_walk *w)
{
    g_ptr_array_free(w->plain, TRUE);
    json_decref(w->inline_);
    json_decref(w->attached);
}

/* The Text as Mailpit shows it: in a multipart/alternative message the first text/plain
   part; otherwise every text/plain body, joined by "\n--\n"; without any, the HTML as
   text. A message GMime could not parse is all text. malloc'd; NULL when out of memory. */
static char *
mm_text(GMimeMessage *msg, const mm_walk *w, const char *data, size_t len)
{
    if (msg == NULL)
        return mime_utf8_dup(data, len);
    GMimeObject *root = g_mime_message_get_mime_part(msg);
    bool alternative = root && g_mime_content_type_is_type(g_mime_object_get_content_type(root),
                                                           "multipart", "alternative");
    if (w->plain->len == 0) {
        char *html = w->html ? mime_part_utf8(w->html) : NULL;
        char *text = html ? mime_html_to_text(html, strlen(html)) : calloc(1, 1);
        free(html);
        return text;
    }
    GString *all = g_string_new(NULL);
    for (guint i = 0; i < (alternative ? 1 : w->plain->len); i++) {
        char *t = mime_part_utf8(g_ptr_array_index(w->plain, i));
        if (i > 0)
            g_string_append(all, "\n--\n");
        g_string_append(all, t ? t : "");
        free(t);
    }
    char *text = mime_utf8_dup(all->str, all->len);
    g_string_free(all, TRUE);
    return text;
}

/* The Message-ID or Return-Path value as Mailpit gives it: decoded, without the < >. */
static char *
mm_header_bare(GMimeMessage *msg, const char *name)
{
    char *v = mm_header(msg, name);
    if (v == NULL)
        return NULL;
    size_t start = strspn(v, "<>"), n = strlen(v);
    while (n > start && (v[n - 1] == '<' || v[n - 1] == '>'))
        n--;
    memmove(v, v + start, n - start);
    v[n - start] = '\0';
    return v;
}

/* RFC 3339 of the Date header ("Z" for UTC, as Go writes it), "" when absent or
   unreadable. g_free() it. */
static char *
mm_date(GMimeMessage *msg)
{
    GDateTime *d = msg ? g_mime_message_get_date(msg) : NULL;
    if (d == NULL)
        return g_strdup("");
    char *base = g_date_time_format(d, "%Y-%m-%dT%H:%M:%S");
    GTimeSpan off = g_date_time_get_utc_offset(d) / G_TIME_SPAN_MINUTE;
    char *out;
    if (base == NULL)
        out = g_strdup("");
    else if (off == 0)
        out = g_strconcat(base, "Z", NULL);
    else
        out =
            g_strdup_printf("%s%c%02d:%02d", base, off < 0 ? '-' : '+',
                            (int)((off < 0 ? -off : off) / 60), (int)((off < 0 ? -off : off) % 60));
    g_free(base);
    return out;
}

/* The From address object; a From header that holds no address gives its text as the
   Name (Mailpit does the same); null when there is no From. */
static json_t *
mm_from(GMimeMessage *msg)
{
    json_t *all = msg ? mm_address_array(g_mime_message_get_from(msg)) : json_array();
    if (all == NULL)
        return NULL;
    json_t *first = json_array_get(all, 0);
    json_t *from = first ? json_incref(first) : NULL;
    json_decref(all);
    if (from != NULL)
        return from;
    char *raw = mm_header(msg, "From");
    if (raw == NULL)
        return NULL;
    if (*raw == '\0') {
        free(raw);
        return json_null();
    }
    from = json_object();
    if (from == NULL || mm_set_str(from, "Name", raw) || mm_set_str(from, "Address", "")) {
        json_decref(from);
        from = NULL;
    }
    free(raw);
    return from;
}

/* obj[key] = s, taking s (malloc'd); -1 when s is NULL (out of memory). */
static int
mm_set_take(json_t *obj, const char *key, char *s)
{
    int rc = s ? mm_set_str(obj, key, s) : -1;
    free(s);
    return rc;
}

static int
mm_set_addresses(json_t *m, GMimeMessage *msg)
{
    const struct {
        const char *key;
        GMimeAddressType type;
    } lists[] = {{"To", GMIME_ADDRESS_TYPE_TO},
                 {"Cc", GMIME_ADDRESS_TYPE_CC},
                 {"Bcc", GMIME_ADDRESS_TYPE_BCC},
                 {"ReplyTo", GMIME_ADDRESS_TYPE_REPLY_TO}};
    int rc = json_object_set_new(m, "From", mm_from(msg));
    for (size_t i = 0; i < G_N_ELEMENTS(lists); i++)
        rc |= json_object_set_new(
            m, lists[i].key,
            msg ? mm_address_array(g_mime_message_get_addresses(msg, lists[i].type))
                : json_array());
    return rc;
}

json_t *
mime_message_json(const char *data, size_t len)
{
    if (data == NULL) {
        data = "";
        len = 0;
    }
    json_t *m = json_object();
    if (m == NULL)
        return NULL;
    GMimeMessage *msg = mime_parse(data, len);
    mm_walk w;
    mm_walk_message(msg, &w, true);
    char *date = mm_date(msg);
    char *html = w.html ? mime_part_utf8(w.html) : strdup("");

    int rc = w.oom ? -1 : 0;
    rc |= mm_set_take(m, "MessageID", mm_header_bare(msg, "Message-ID"));
    rc |= mm_set_addresses(m, msg);
    rc |= mm_set_take(m, "ReturnPath", mm_header_bare(msg, "Return-Path"));
    rc |= mm_set_take(m, "Subject", mm_header(msg, "Subject"));
    rc |= mm_set_str(m, "Date", date);
    rc |= json_object_set_new(m, "ListUnsubscribe", mm_list_unsubscribe(msg));
    rc |= mm_set_take(m, "Text", mm_text(msg, &w, data, len));
    rc |= html ? mm_set_str(m, "HTML", html) : -1;
    rc |= json_object_set_new(m, "Size", json_integer((json_int_t)len));
    rc |= json_object_set(m, "Inline", w.inline_);
    rc |= json_object_set(m, "Attachments", w.attached);

    free(html);
    g_free(date);
    mm_walk_cleanup(&w);
    if (msg != NULL)
        g_object_unref(msg);
    if (rc != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* ---- one part -------------------------------------------------------------------- */

typedef struct mm_find {
    const char *part_id;
    mime_part_data *out;
    int rc; /* 0 found, -1 not (yet) */
} mm_find;

/* "type/subtype", with the charset of a text part (only when it is a plain token, since
   the value goes into an HTTP header). g_free() it. */
static char *
mm_content_type(GMimeObject *leaf)
{
    char *type = mm_media_type(leaf);
    const char *charset = g_mime_object_get_content_type_parameter(leaf, "charset");
    bool ok = charset != NULL && *charset != '\0' && strlen(charset) < 64 &&
              g_str_has_prefix(type, "text/");
    for (const char *p = charset; ok && *p; p++)
        ok = g_ascii_isalnum(*p) || strchr("-_.:+", *p) != NULL;
    if (!ok)
        return type;
    char *full = g_strconcat(type, "; charset=", charset, NULL);
    g_free(type);
    return full;
}

/* Fills out from malloc'd-able pieces; -1 when out of memory (out cleaned). */
static int
mm_part_fill(mime_part_data *out, const void *content, size_t size, const char *type, char *name,
             int is_attachment)
{
    memset(out, 0, sizeof(*out));
    out->content = malloc(size + 1);
    out->content_type = strdup(type);
    out->file_name = name;
    if (out->content == NULL || out->content_type == NULL || out->file_name == NULL) {
        mime_part_data_cleanup(out);
        return -1;
    }
    if (size > 0)
        memcpy(out->content, content, size);
    out->content[size] = '\0'; /* handy for text; size is the truth */
    out->size = size;
    out->is_attachment = is_attachment;
    return 0;
}

static int
mm_find_cb(GMimeObject *leaf, const char *part_id, mime_part_kind kind, void *user)
{
    mm_find *f = user;
    if (strcmp(part_id, f->part_id) != 0)
        return 0;
    GByteArray *bytes = mm_leaf_bytes(leaf);
    char *type = mm_content_type(leaf);
    f->rc = mm_part_fill(f->out, bytes->data, bytes->len, type, mm_part_name(leaf),
                         kind == MIME_PART_ATTACHMENT);
    g_free(type);
    g_byte_array_unref(bytes);
    return 1;
}

int
mime_part_get(const char *data, size_t len, const char *part_id, mime_part_data *out)
{
    memset(out, 0, sizeof(*out));
    if (part_id == NULL || *part_id == '\0' || strlen(part_id) > 700)
        return -1;
    GMimeMessage *msg = mime_parse(data, len);
    if (msg == NULL)
        return -1;
    mm_find f = {.part_id = part_id, .out = out, .rc = -1};
    mime_leaves_foreach(msg, mm_find_cb, &f);
    g_object_unref(msg);
    return f.rc;
}

int
mime_body_get(const char *data, size_t len, int html, mime_part_data *out)
{
    memset(out, 0, sizeof(*out));
    if (data == NULL) {
        data = "";
        len = 0;
    }
    GMimeMessage *msg = mime_parse(data, len);
    mm_walk w;
    mm_walk_message(msg, &w, false);
    char *text = NULL;
    int rc = -1;
    if (html && w.html != NULL)
        text = mime_part_utf8(w.html);
    else if (!html && (w.plain->len > 0 || w.html != NULL || (msg == NULL && len > 0)))
        text = mm_text(msg, &w, data, len);
    if (text != NULL)
        rc = mm_part_fill(out, text, strlen(text),
                          html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
                          strdup(""), 0);
    free(text);
    mm_walk_cleanup(&w);
    if (msg != NULL)
        g_object_unref(msg);
    return rc;
}

void
mime_part_data_cleanup(mime_part_data *p)
{
    if (p == NULL)
        return;
    free(p->content);
    free(p->content_type);
    free(p->file_name);
    memset(p, 0, sizeof(*p));
}
