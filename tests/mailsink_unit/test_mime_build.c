/*
 * test_mime_build.c - POST /api/v1/send requests built into messages (mime_build.h):
 * the round trip through mime_message_json gives back what was sent, checksums match
 * OpenSSL's, and every kind of bad request is refused with a reason (header injection
 * above all).
 */
#include "mailsink/mime.h"
#include "mailsink/mime_build.h"
#include "mailsink/mime_message.h"

#include <jansson.h>
#include <openssl/evp.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_path.h"

static json_t *
parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("test JSON: %s: %s", e.text, text);
    return j;
}

/* Hex digest by OpenSSL, to compare with what mime_message_json says. */
static void
digest_hex(const EVP_MD *md, const void *data, size_t len, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(data, len, d, &n, md, NULL), 1);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
assert_checksums(const json_t *att, const void *data, size_t len)
{
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    digest_hex(EVP_md5(), data, len, hex);
    assert_str_at(att, "Checksums.MD5", hex);
    digest_hex(EVP_sha1(), data, len, hex);
    assert_str_at(att, "Checksums.SHA1", hex);
    digest_hex(EVP_sha256(), data, len, hex);
    assert_str_at(att, "Checksums.SHA256", hex);
    assert_int_equal(json_integer_value(json_object_get(att, "Size")), len);
}

/* The built message is 7-bit clean with CRLF line ends only. */
static void
assert_wire_clean(const mime_built *b)
{
    for (size_t i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->data[i];
        if (c >= 0x80 || c == 0)
            fail_msg("byte 0x%02x at %zu", c, i);
        if (c == '\n' && (i == 0 || b->data[i - 1] != '\r'))
            fail_msg("bare LF at %zu", i);
        if (c == '\r' && (i + 1 == b->len || b->data[i + 1] != '\n'))
            fail_msg("bare CR at %zu", i);
    }
}

/* The header block of the built message (up to the blank line). */
static char *
header_block(const mime_built *b)
{
    const char *end = strstr(b->data, "\r\n\r\n");
    assert_non_null(end);
    return strndup(b->data, (size_t)(end - b->data) + 2);
}

/* ---- round trips ------------------------------------------------------------------ */

static void
test_round_trip(void **state)
{
    (void)state;
    /* a tiny PNG header and a text file, base64 of "\x89PNG\r\n\x1a\n" and "hello" */
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    json_t *req = parse(
        "{\"From\": {\"Email\": \"sender@example.org\", \"Name\": \"J\\u00f6rg \\u00c4rger\"},"
        " \"To\": [{\"Email\": \"to1@example.net\", \"Name\": \"Doe, Jane\"},"
        "          {\"Email\": \"to2@example.net\"}],"
        " \"Cc\": [{\"Email\": \"cc@example.net\", \"Name\": \"\\u65e5\\u672c\"}],"
        " \"Bcc\": [\"hidden@example.net\", \"TO1@example.net\"],"
        " \"ReplyTo\": [{\"Email\": \"reply@example.org\"}],"
        " \"Subject\": \"Gr\\u00fc\\u00dfe \\u2013 a long subject that GMime will have to fold "
        "somewhere because it is longer than seventy-eight characters\","
        " \"Text\": \"Hello\\r\\nW\\u00f6rld\\r\\n\","
        " \"HTML\": \"<p>Hello <img src=\\\"cid:logo\\\"></p>\","
        " \"Headers\": {\"X-Campaign\": \"spring \\u00e9t\\u00e9\", \"Message-Id\": "
        "\"<mine@example.org>\"},"
        " \"Tags\": [\"alpha\", \"beta gamma\"],"
        " \"Attachments\": ["
        "   {\"Content\": \"aGVsbG8=\", \"Filename\": \"r\\u00e9sum\\u00e9 (1).txt\","
        "    \"ContentType\": \"text/plain\"},"
        "   {\"Content\": \"data:image/png;base64,iVBORw0KGgo=\", \"Filename\": \"logo.png\","
        "    \"ContentID\": \"logo\"},"
        "   {\"Content\": \"iVBORw0K\\r\\nGgo=\", \"Filename\": \"sniffed\"}]}");
    mime_built b;
    char err[256];
    if (mime_build_send(req, "mail.example.org", &b, err, sizeof err) != 0)
        fail_msg("build: %s", err);
    assert_wire_clean(&b);

    /* the envelope: To, Cc, Bcc in order, duplicates (any case) dropped */
    assert_string_equal(b.sender, "sender@example.org");
    assert_int_equal(b.rcpt_count, 4);
    assert_string_equal(b.rcpts[0], "to1@example.net");
    assert_string_equal(b.rcpts[1], "to2@example.net");
    assert_string_equal(b.rcpts[2], "cc@example.net");
    assert_string_equal(b.rcpts[3], "hidden@example.net");
    assert_int_equal(b.tag_count, 2);
    assert_string_equal(b.tags[1], "beta gamma");

    char *head = header_block(&b);
    assert_null(strstr(head, "hidden@")); /* Bcc is blind */
    assert_non_null(strstr(head, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(head, "\r\nDate: "));
    assert_non_null(strstr(head, "X-Tags: alpha, beta gamma\r\n"));
    free(head);

    json_t *m = mime_message_json(b.data, b.len);
    assert_non_null(m);
    assert_str_at(m, "MessageID", "mine@example.org");
    assert_str_at(m, "From.Name", "J\xc3\xb6rg \xc3\x84rger");
    assert_str_at(m, "From.Address", "sender@example.org");
    assert_str_at(m, "To.0.Name", "Doe, Jane");
    assert_str_at(m, "To.1.Address", "to2@example.net");
    assert_str_at(m, "Cc.0.Name", "\xe6\x97\xa5\xe6\x9c\xac");
    assert_str_at(m, "ReplyTo.0.Address", "reply@example.org");
    assert_int_equal(json_array_size(json_object_get(m, "Bcc")), 0);
    assert_str_at(m, "Subject",
                  "Gr\xc3\xbc\xc3\x9f"
                  "e \xe2\x80\x93 a long subject that GMime will have to fold "
                  "somewhere because it is longer than seventy-eight characters");
    assert_str_at(m, "Text", "Hello\r\nW\xc3\xb6rld\r\n");
    assert_str_at(m, "HTML", "<p>Hello <img src=\"cid:logo\"></p>");
    assert_int_equal(json_integer_value(json_object_get(m, "Size")), b.len);

    json_t *in = json_object_get(m, "Inline");
    assert_int_equal(json_array_size(in), 1);
    assert_str_at(in, "0.FileName", "logo.png");
    assert_str_at(in, "0.ContentID", "logo");
    assert_str_at(in, "0.ContentType", "image/png");
    assert_checksums(json_array_get(in, 0), png, sizeof png);

    json_t *at = json_object_get(m, "Attachments");
    assert_int_equal(json_array_size(at), 2);
    assert_str_at(at, "0.FileName", "r\xc3\xa9sum\xc3\xa9 (1).txt");
    assert_str_at(at, "0.ContentType", "text/plain");
    assert_checksums(json_array_get(at, 0), "hello", 5);
    assert_str_at(at, "1.FileName", "sniffed");
    assert_str_at(at, "1.ContentType", "image/png"); /* sniffed from the bytes */
    assert_checksums(json_array_get(at, 1), png, sizeof png);

    /* mixed [related [alternative [text, html], logo], txt, png] */
    assert_str_at(in, "0.PartID", "1.2");
    assert_str_at(at, "0.PartID", "2");
    assert_str_at(at, "1.PartID", "3");
    mime_part_data p;
    assert_int_equal(mime_part_get(b.data, b.len, "1.1.2", &p), 0);
    assert_string_equal(p.content_type, "text/html; charset=utf-8");
    mime_part_data_cleanup(&p);
    assert_int_equal(mime_part_get(b.data, b.len, "3", &p), 0);
    assert_memory_equal(p.content, png, sizeof png);
    assert_string_equal(p.file_name, "sniffed");
    assert_true(p.is_attachment);
    mime_part_data_cleanup(&p);

    json_t *h = mime_headers_json(b.data, b.len);
    assert_str_at(h, "X-Campaign.0", "spring \xc3\xa9t\xc3\xa9");
    json_decref(h);

    json_decref(m);
    mime_built_cleanup(&b);
    mime_built_cleanup(&b); /* twice is harmless */
    json_decref(req);
}

static void
test_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *body; /* the request's fields besides From and To */
        const char *content_type;
        const char *text;
        const char *html;
    } cases[] = {
        /* a single-part body ends with the message's last line break, as over SMTP */
        {"\"Text\": \"just text\"", "text/plain", "just text\r\n", ""},
        {"\"HTML\": \"<b>bold</b> move\"", "text/html", "bold move", "<b>bold</b> move\r\n"},
        {"\"Subject\": \"nothing else\"", "text/plain", "", ""},
        {"\"Text\": \"t\", \"HTML\": \"<i>h</i>\"", "multipart/alternative", "t", "<i>h</i>"},
        {"\"Text\": \"t\", \"Attachments\": [{\"Content\": \"\", \"Filename\": \"empty\"}]",
         "multipart/mixed", "t", ""},
        {"\"Text\": \"a\\nb\\rc\"", "text/plain", "a\r\nb\r\nc\r\n", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"From\": {\"Email\": \"a@example.org\"}, \"To\": [{\"Email\": "
                 "\"b@example.org\"}], %s}",
                 cases[i].body);
        json_t *req = parse(text);
        mime_built b;
        char err[256];
        if (mime_build_send(req, NULL, &b, err, sizeof err) != 0)
            fail_msg("case %zu: %s", i, err);
        assert_wire_clean(&b);
        json_t *h = mime_headers_json(b.data, b.len);
        const char *ct = str_at(h, "Content-Type.0");
        if (ct == NULL || strncmp(ct, cases[i].content_type, strlen(cases[i].content_type)) != 0)
            fail_msg("case %zu: Content-Type %s", i, ct ? ct : "(none)");
        assert_non_null(strstr(str_at(h, "Message-Id.0"), "@localhost>"));
        json_t *m = mime_message_json(b.data, b.len);
        assert_str_at(m, "Text", cases[i].text);
        assert_str_at(m, "HTML", cases[i].html);
        json_decref(m);
        json_decref(h);
        mime_built_cleanup(&b);
        json_decref(req);
    }
}

/* ---- refusals --------------------------------------------------------------------- */

static void
test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *error; /* a piece of the error message */
    } cases[] = {
        {"[]", "JSON object"},
        {"{}", "From.Email is required"},
        {"{\"From\": \"a@example.org\", \"To\": [{\"Email\": \"b@example.org\"}]}",
         "From.Email is required"},
        {"{\"From\": {\"Email\": \"not an address\"}, \"To\": [{\"Email\": \"b@x.org\"}]}",
         "invalid From address: not an address"},
        {"{\"From\": {\"Email\": \"a@x.org\"}}", "at least one recipient"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": []}", "at least one recipient"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"x\"}]}",
         "invalid To address: x"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": {\"Email\": \"b@x.org\"}}",
         "To must be an array"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"Cc\": [{\"Email\": \"<b@x.org>\"}]}",
         "invalid Cc address"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"Bcc\": [\"b@x.org\", 7]}", "invalid Bcc address"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"ReplyTo\": [{\"Email\": \"r@@x\"}]}",
         "invalid Reply-To address"},
        /* header injection, every way in */
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Subject\": \"hi\\r\\nBcc: victim@x.org\"}",
         "Subject must not contain a line break"},
        {"{\"From\": {\"Email\": \"a@x.org\", \"Name\": \"A\\nB\"}, \"To\": [{\"Email\": "
         "\"b@x.org\"}]}",
         "From Name must not contain a line break"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\", \"Name\": "
         "\"x\\r\"}]}",
         "To Name must not contain a line break"},
        {"{\"From\": {\"Email\": \"a@x.org\\r\\nX: y\"}, \"To\": [{\"Email\": \"b@x.org\"}]}",
         "invalid From address"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"X-A\": \"1\\r\\nBcc: v@x.org\"}}",
         "X-A must not contain a line break"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"X-A\\r\\nBcc\": \"v@x.org\"}}",
         "invalid header name"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"X A\": \"1\"}}",
         "invalid header name"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"X:A\": \"1\"}}",
         "invalid header name"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"subject\": \"1\"}}",
         "cannot overwrite header: \"subject\""},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"Content-Transfer-Encoding\": \"base64\"}}",
         "cannot overwrite header"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Tags\": [\"t\"], \"Headers\": {\"X-Tags\": \"u\"}}",
         "cannot overwrite header: \"X-Tags\""},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"X-A\": 5}}",
         "must be a string"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": [\"X-A: 1\"]}",
         "Headers must be an object"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Headers\": {\"Message-Id\": \"<a b>\"}}",
         "invalid Message-Id"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Tags\": [\"a\\nb\"]}",
         "Tags[0]"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Text\": 5}",
         "Text must be a string"},
        /* attachments */
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"not base64!\"}]}",
         "Attachments[0].Content is not base64"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"aGVsbG8\"}]}",
         "Attachments[0].Content is not base64"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"aG=sbG8=\"}]}",
         "Attachments[0].Content is not base64"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"aGVsbG8=\", \"ContentType\": \"nonsense\"}]}",
         "ContentType is invalid"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"aGVsbG8=\", \"Filename\": \"a\\r\\nb\"}]}",
         "Filename must not contain a line break"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [{\"Content\": \"aGVsbG8=\", \"ContentID\": \"<a> <b>\"}]}",
         "ContentID is invalid"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": {}}",
         "Attachments must be an array"},
        {"{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}], "
         "\"Attachments\": [\"aGVsbG8=\"]}",
         "Attachments[0] must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *req = parse(cases[i].json);
        mime_built b;
        char err[256] = "unset";
        int rc = mime_build_send(req, "h", &b, err, sizeof err);
        if (rc != -1 || strstr(err, cases[i].error) == NULL)
            fail_msg("case %zu: rc %d, error [%s], want [%s]", i, rc, err, cases[i].error);
        assert_null(b.data);
        assert_null(b.rcpts);
        mime_built_cleanup(&b);
        json_decref(req);
    }
    /* a NULL error buffer is allowed */
    mime_built b;
    assert_int_equal(mime_build_send(NULL, "h", &b, NULL, 0), -1);
}

static void
test_limits(void **state)
{
    (void)state;
    /* 1001 distinct recipients: refused; 1000 plus duplicates: fine */
    for (int n = 1000; n <= 1001; n++) {
        json_t *req = parse("{\"From\": {\"Email\": \"a@x.org\"}}");
        json_t *to = json_array();
        json_t *bcc = json_array();
        for (int i = 0; i < n; i++) {
            char addr[64];
            snprintf(addr, sizeof addr, "user%d@example.org", i);
            if (i < 500) {
                json_t *o = json_object();
                json_object_set_new(o, "Email", json_string(addr));
                json_array_append_new(to, o);
            }
            json_array_append_new(bcc, json_string(addr)); /* the first 500 twice */
        }
        json_object_set_new(req, "To", to);
        json_object_set_new(req, "Bcc", bcc);
        mime_built b;
        char err[256] = "";
        int rc = mime_build_send(req, "h", &b, err, sizeof err);
        if (n == 1000) {
            assert_int_equal(rc, 0);
            assert_int_equal(b.rcpt_count, 1000);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "too many recipients"));
        }
        mime_built_cleanup(&b);
        json_decref(req);
    }
    /* 1001 attachments */
    json_t *req = parse("{\"From\": {\"Email\": \"a@x.org\"}, \"To\": [{\"Email\": \"b@x.org\"}]}");
    json_t *atts = json_array();
    for (int i = 0; i < 1001; i++)
        json_array_append_new(atts, parse("{\"Content\": \"aGVsbG8=\"}"));
    json_object_set_new(req, "Attachments", atts);
    mime_built b;
    char err[256] = "";
    assert_int_equal(mime_build_send(req, "h", &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many Attachments"));
    json_decref(req);

    /* a long error subject is cut, not overflowed */
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    req = parse("{\"From\": {\"Email\": \"a@x.org\"}}");
    json_t *to = json_array();
    json_t *o = json_object();
    json_object_set_new(o, "Email", json_string(big));
    json_array_append_new(to, o);
    json_object_set_new(req, "To", to);
    char small[32];
    assert_int_equal(mime_build_send(req, "h", &b, small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    json_decref(req);
}

int
main(void)
{
    mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
