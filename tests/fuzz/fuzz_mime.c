/*
 * fuzz_mime.c - stored messages are whatever a client sent: every reader of mime.h and
 * mime_message.h takes the input as a message (summary, Message object, headers, parts
 * "1", "2.1", "0" and one taken from the input, both bodies), as an address list and as
 * HTML; and when the input is a JSON object, mime_build_send takes it as a send request
 * and what it builds is read back. Invariants: no crash, leak or hang, every string
 * valid UTF-8, part data complete, a built message with CRLF line ends only.
 *
 * Inputs over 256 KiB are skipped: the readers are linear, and big inputs only slow the
 * search down.
 */
#include "mailsink/mime.h"
#include "mailsink/mime_build.h"
#include "mailsink/mime_message.h"

#include <glib.h>
#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static int
utf8_ok(const char *s)
{
    return s != NULL && g_utf8_validate(s, -1, NULL);
}

static void
fuzz_summary(const char *d, size_t size)
{
    mime_summary s;
    if (mime_summarize(d, size, &s) != 0)
        return; /* out of memory only */
    const char *fields[] = {s.from, s.to,         s.cc,      s.reply_to, s.subject,
                            s.date, s.message_id, s.snippet, s.text,     s.attachment_names};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        CHECK(utf8_ok(fields[i]));
    CHECK(g_utf8_strlen(s.snippet, -1) <= 200);
    mime_summary_cleanup(&s);
}

/* A JSON value must serialize (Jansson checks nothing it already holds). */
static void
fuzz_json(json_t *j)
{
    CHECK(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    json_decref(j);
}

static void
fuzz_part(const char *d, size_t size, const char *id)
{
    mime_part_data p;
    if (mime_part_get(d, size, id, &p) != 0) {
        CHECK(p.content == NULL && p.content_type == NULL && p.file_name == NULL);
        return;
    }
    CHECK(p.content != NULL && p.content_type != NULL && p.file_name != NULL);
    CHECK(*p.content_type != '\0' && strpbrk(p.content_type, "\r\n") == NULL);
    CHECK(utf8_ok(p.file_name) && strpbrk(p.file_name, "\r\n") == NULL);
    CHECK(p.content[p.size] == '\0');
    mime_part_data_cleanup(&p);
}

static void
fuzz_bodies(const char *d, size_t size)
{
    for (int html = 0; html <= 1; html++) {
        mime_part_data p;
        if (mime_body_get(d, size, html, &p) != 0)
            continue;
        CHECK(utf8_ok(p.content) && strlen(p.content) == p.size);
        mime_part_data_cleanup(&p);
    }
}

/* The input as a send request, when it is a JSON object. */
static void
fuzz_build(const char *d, size_t size)
{
    json_t *req = json_loadb(d, size, JSON_ALLOW_NUL, NULL);
    if (req == NULL)
        return;
    mime_built b;
    char err[128];
    if (mime_build_send(req, "fuzz.example", &b, err, sizeof err) == 0) {
        CHECK(b.data != NULL && b.sender != NULL && b.rcpt_count > 0);
        for (size_t i = 0; i < b.len; i++) {
            unsigned char c = (unsigned char)b.data[i];
            CHECK(c != 0); /* 8-bit only in an address (SMTPUTF8); the rest is encoded */
            CHECK(c != '\n' || (i > 0 && b.data[i - 1] == '\r'));
            CHECK(c != '\r' || (i + 1 < b.len && b.data[i + 1] == '\n'));
        }
        fuzz_json(mime_message_json(b.data, b.len));
    } else {
        CHECK(b.data == NULL && *err != '\0' && strlen(err) < sizeof err);
    }
    mime_built_cleanup(&b);
    json_decref(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    mime_init();
    const char *d = (const char *)data;

    fuzz_summary(d, size);
    fuzz_json(mime_message_json(d, size));
    fuzz_json(mime_headers_json(d, size));

    /* part ids: two of the usual ones, chosen by the input's last octet (each id parses
       the message again: all seven on every input made this target 1.6 times slower),
       and the input's first line as one (garbage mostly) */
    static const char *const ids[] = {"1", "2", "1.1", "2.1", "1.2.1", "0", ""};
    enum { N_IDS = sizeof(ids) / sizeof(ids[0]) };
    size_t pick = size > 0 ? data[size - 1] : 0;
    fuzz_part(d, size, ids[pick % N_IDS]);
    fuzz_part(d, size, ids[(pick + 1 + pick / N_IDS % (N_IDS - 1)) % N_IDS]);
    char *z = g_strndup(d, size); /* up to the first NUL */
    z[strcspn(z, "\r\n")] = '\0';
    if (strlen(z) <= 32)
        fuzz_part(d, size, z);
    g_free(z);
    fuzz_bodies(d, size);

    z = g_strndup(d, size);
    json_t *list = mime_address_list_json(z);
    CHECK(json_is_array(list));
    fuzz_json(list);
    g_free(z);

    char *text = mime_html_to_text(d, size);
    CHECK(utf8_ok(text));
    free(text);

    if (size > 0 && data[0] == '{')
        fuzz_build(d, size);
    return 0;
}
