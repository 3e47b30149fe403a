/*
 * test_mime_message.c - reading stored messages for the HTTP API (mime_message.h) and
 * the summary's snippet (mime.h): real message shapes, encodings, broken MIME, no
 * headers at all, and hostile HTML of 1 MiB.
 */
#include "mailsink/mime.h"
#include "mailsink/mime_message.h"

#include <jansson.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "json_path.h"

/* "hello": checked with md5sum, sha1sum and sha256sum */
#define HELLO_MD5 "5d41402abc4b2a76b9719d911017c592"
#define HELLO_SHA1 "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
#define HELLO_SHA256 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

/* mixed [alternative [text (qp, latin-1), related [html, image by cid]], pdf, message] */
static const char msg_tree[] =
    "Return-Path: <bounce@example.org>\r\n"
    "Received: from client.example by mailsink;\r\n"
    "\tMon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.org>\r\n"
    "To: bob@example.net, \"Doe, Jane\" <jane@example.net>\r\n"
    "Cc: team: carol@example.net, dave@example.net;\r\n"
    "Reply-To: noreply@example.org\r\n"
    "Subject: Quarterly\r\n"
    " report =?ISO-8859-1?Q?f=FCr?= you\r\n"
    "Date: Tue, 2 Jan 2024 10:52:37 +0200\r\n"
    "Message-ID: <tree@example.org>\r\n"
    "X-Mailer: one\r\n"
    "x-mailer: two\r\n"
    "MIME-Version: 1.0\r\n"
    "List-Unsubscribe: <mailto:unsub@example.org?subject=stop>,\r\n"
    " <https://example.org/unsub/1>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
    "\r\n"
    "--YY\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Hallo W=FCrld, the plain part.\r\n"
    "--YY\r\n"
    "Content-Type: multipart/related; boundary=\"ZZ\"\r\n"
    "\r\n"
    "--ZZ\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><head><title>T</title></head><body><p>Hello <b>HTML</b> &amp; "
    "<img src=\"cid:logo@x\"></p></body></html>\r\n"
    "--ZZ\r\n"
    "Content-Type: image/png\r\n"
    "Content-ID: <logo@x>\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "aGVsbG8=\r\n"
    "--ZZ--\r\n"
    "--YY--\r\n"
    "--XX\r\n"
    "Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "aGVs\r\n"
    "bG8=\r\n"
    "--XX\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=\"fwd.eml\"\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "From: inner@example.org\r\n"
    "\r\n"
    "inner body\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

/* ---- helpers ----------------------------------------------------------------------- */

static int
utf8_is_valid(const char *s)
{
    json_t *j = json_string(s); /* Jansson refuses invalid UTF-8 */
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

/* ---- the Message object ------------------------------------------------------------ */

static void
test_tree_message(void **state)
{
    (void)state;
    json_t *m = mime_message_json(msg_tree, sizeof(msg_tree) - 1);
    assert_non_null(m);
    assert_str_at(m, "MessageID", "tree@example.org");
    assert_str_at(m, "From.Name", "J\xc3\xb6rg");
    assert_str_at(m, "From.Address", "joerg@example.org");
    assert_str_at(m, "To.0.Address", "bob@example.net");
    assert_str_at(m, "To.1.Name", "Doe, Jane");
    assert_str_at(m, "Cc.1.Address", "dave@example.net"); /* group members listed */
    assert_str_at(m, "ReplyTo.0.Address", "noreply@example.org");
    assert_int_equal(json_array_size(json_object_get(m, "Bcc")), 0);
    assert_str_at(m, "ReturnPath", "bounce@example.org");
    assert_str_at(m, "Subject", "Quarterly report f\xc3\xbcr you");
    assert_str_at(m, "Date", "2024-01-02T10:52:37+02:00");
    assert_str_at(m, "Text", "Hallo W\xc3\xbcrld, the plain part.");
    assert_non_null(strstr(str_at(m, "HTML"), "<b>HTML</b> &amp;"));
    assert_int_equal(json_integer_value(json_object_get(m, "Size")), sizeof(msg_tree) - 1);

    /* the image of the multipart/related is Inline, known by its Content-ID */
    json_t *in = json_object_get(m, "Inline");
    assert_int_equal(json_array_size(in), 1);
    assert_str_at(in, "0.PartID", "1.2.2");
    assert_str_at(in, "0.FileName", "logo@x");
    assert_str_at(in, "0.ContentID", "logo@x");
    assert_str_at(in, "0.ContentType", "image/png");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(in, 0), "Size")), 5);
    assert_str_at(in, "0.Checksums.SHA256", HELLO_SHA256);

    json_t *at = json_object_get(m, "Attachments");
    assert_int_equal(json_array_size(at), 2);
    assert_str_at(at, "0.PartID", "2");
    assert_str_at(at, "0.FileName", "r\xc3\xa9sum\xc3\xa9.pdf");
    assert_str_at(at, "0.ContentType", "application/pdf");
    assert_str_at(at, "0.ContentID", "");
    assert_str_at(at, "0.Checksums.MD5", HELLO_MD5);
    assert_str_at(at, "0.Checksums.SHA1", HELLO_SHA1);
    assert_str_at(at, "0.Checksums.SHA256", HELLO_SHA256);
    assert_str_at(at, "1.PartID", "3");
    assert_str_at(at, "1.FileName", "fwd.eml");
    assert_str_at(at, "1.ContentType", "message/rfc822");

    json_t *lu = json_object_get(m, "ListUnsubscribe");
    assert_str_at(lu, "Links.0", "mailto:unsub@example.org?subject=stop");
    assert_str_at(lu, "Links.1", "https://example.org/unsub/1");
    assert_str_at(lu, "Errors", "");
    assert_str_at(lu, "HeaderPost", "List-Unsubscribe=One-Click");
    json_decref(m);
}

static void
test_tree_parts(void **state)
{
    (void)state;
    mime_part_data p;
    assert_int_equal(mime_part_get(msg_tree, sizeof(msg_tree) - 1, "2", &p), 0);
    assert_int_equal(p.size, 5);
    assert_memory_equal(p.content, "hello", 5);
    assert_string_equal(p.content_type, "application/pdf");
    assert_string_equal(p.file_name, "r\xc3\xa9sum\xc3\xa9.pdf");
    assert_true(p.is_attachment);
    mime_part_data_cleanup(&p);

    assert_int_equal(mime_part_get(msg_tree, sizeof(msg_tree) - 1, "1.2.2", &p), 0);
    assert_string_equal(p.content_type, "image/png");
    assert_false(p.is_attachment);
    mime_part_data_cleanup(&p);

    /* a body part keeps its bytes and its charset (no conversion) */
    assert_int_equal(mime_part_get(msg_tree, sizeof(msg_tree) - 1, "1.1", &p), 0);
    assert_string_equal(p.content_type, "text/plain; charset=iso-8859-1");
    assert_memory_equal(p.content, "Hallo W\xfcrld,", 12);
    mime_part_data_cleanup(&p);

    /* the attached message, as it came (CRLF), which parses on its own */
    assert_int_equal(mime_part_get(msg_tree, sizeof(msg_tree) - 1, "3", &p), 0);
    assert_string_equal(p.content, "Subject: inner\r\nFrom: inner@example.org\r\n\r\ninner body");
    json_t *inner = mime_message_json(p.content, p.size);
    assert_str_at(inner, "Subject", "inner");
    json_decref(inner);
    mime_part_data_cleanup(&p);

    /* multiparts and what does not exist have no part */
    const char *none[] = {"0", "1", "1.2", "4", "", "1.1.1", "abc", "2.", ".2", "-1", "1.0"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        if (mime_part_get(msg_tree, sizeof(msg_tree) - 1, none[i], &p) != -1)
            fail_msg("part [%s] found", none[i]);
        assert_null(p.content);
    }
    assert_int_equal(mime_part_get(msg_tree, sizeof(msg_tree) - 1, NULL, &p), -1);
}

static void
test_tree_summary_and_bodies(void **state)
{
    (void)state;
    mime_summary s;
    assert_int_equal(mime_summarize(msg_tree, sizeof(msg_tree) - 1, &s), 0);
    /* the snippet is of the HTML as text, as in Mailpit; the index keeps the text part */
    assert_string_equal(s.snippet, "Hello HTML &");
    assert_non_null(strstr(s.text, "the plain part"));
    assert_int_equal(s.attachments, 2);
    assert_string_equal(s.attachment_names, "r\xc3\xa9sum\xc3\xa9.pdf\nfwd.eml");
    mime_summary_cleanup(&s);

    mime_part_data p;
    assert_int_equal(mime_body_get(msg_tree, sizeof(msg_tree) - 1, 1, &p), 0);
    assert_string_equal(p.content_type, "text/html; charset=utf-8");
    assert_non_null(strstr(p.content, "<b>HTML</b>"));
    mime_part_data_cleanup(&p);
    assert_int_equal(mime_body_get(msg_tree, sizeof(msg_tree) - 1, 0, &p), 0);
    assert_string_equal(p.content, "Hallo W\xc3\xbcrld, the plain part.");
    assert_string_equal(p.content_type, "text/plain; charset=utf-8");
    mime_part_data_cleanup(&p);
}

static void
test_headers(void **state)
{
    (void)state;
    json_t *h = mime_headers_json(msg_tree, sizeof(msg_tree) - 1);
    assert_non_null(h);
    /* canonical names, values in order, both spellings in one key */
    assert_str_at(h, "X-Mailer.0", "one");
    assert_str_at(h, "X-Mailer.1", "two");
    assert_str_at(h, "Message-Id.0", "<tree@example.org>");
    assert_str_at(h, "Mime-Version.0", "1.0");
    assert_str_at(h, "Content-Type.0", "multipart/mixed; boundary=\"XX\"");
    assert_str_at(h, "Subject.0", "Quarterly report f\xc3\xbcr you"); /* unfolded, decoded */
    assert_str_at(h, "Received.0",
                  "from client.example by mailsink; Mon, 1 Jan 2024 00:00:00 +0000");
    assert_null(json_object_get(h, "x-mailer"));
    /* keys sorted */
    const char *key, *prev = "";
    json_t *v;
    json_object_foreach(h, key, v)
    {
        assert_true(strcmp(prev, key) < 0);
        prev = key;
    }
    json_decref(h);

    h = mime_headers_json("", 0);
    assert_non_null(h);
    assert_int_equal(json_object_size(h), 0);
    json_decref(h);
}

/* ---- encodings -------------------------------------------------------------------- */

static void
test_subject_charsets(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *subject;
    } cases[] = {
        {"Subject: =?ISO-2022-JP?B?GyRCJEskWyRzJDQbKEI=?=\r\n\r\nx",
         "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93\xe3\x81\x94"},
        {"Subject: =?iso-8859-1?b?Q2Fm6Q==?= au lait\r\n\r\nx", "Caf\xc3\xa9 au lait"},
        {"Subject: raw Caf\xe9\r\n\r\nx", "raw Caf\xc3\xa9"}, /* 8-bit latin-1, no MIME */
        {"Subject: =?utf-8?q?broken\r\n\r\nx", "=?utf-8?q?broken"},
        {"Subject: =?x-nonsense?q?abc?=\r\n\r\nx", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *m = mime_message_json(cases[i].msg, strlen(cases[i].msg));
        assert_non_null(m);
        const char *got = str_at(m, "Subject");
        assert_non_null(got);
        assert_true(utf8_is_valid(got));
        if (cases[i].subject != NULL && strcmp(got, cases[i].subject) != 0)
            fail_msg("case %zu: subject [%s]", i, got);
        json_decref(m);
    }
}

static void
test_body_charsets(void **state)
{
    (void)state;
    static const char latin[] = "Content-Type: text/plain; charset=windows-1252\r\n"
                                "Content-Transfer-Encoding: 8bit\r\n\r\n"
                                "\x93quoted\x94 \x80 5\r\n";
    json_t *m = mime_message_json(latin, sizeof(latin) - 1);
    assert_str_at(m, "Text", "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac 5\r\n");
    json_decref(m);

    /* a charset nobody knows, 8-bit bytes, a NUL: still valid UTF-8 */
    static const char odd[] = "Content-Type: text/plain; charset=x-made-up\r\n\r\n"
                              "a\xff\xfe\x00z\r\n";
    m = mime_message_json(odd, sizeof(odd) - 1);
    assert_non_null(m);
    assert_true(utf8_is_valid(str_at(m, "Text")));
    assert_non_null(strchr(str_at(m, "Text"), 'z'));
    json_decref(m);

    /* base64 UTF-8 HTML only: Text is the HTML as text */
    static const char html[] =
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "PHA+SMOpbGxvPC9wPjxwPndvcmxkPC9wPg==\r\n"; /* <p>Héllo</p><p>world</p> */
    m = mime_message_json(html, sizeof(html) - 1);
    assert_str_at(m, "HTML", "<p>H\xc3\xa9llo</p><p>world</p>");
    assert_str_at(m, "Text", "H\xc3\xa9llo\n\nworld");
    json_decref(m);
    mime_part_data p;
    assert_int_equal(mime_body_get(html, sizeof(html) - 1, 0, &p), 0);
    assert_string_equal(p.content, "H\xc3\xa9llo\n\nworld");
    mime_part_data_cleanup(&p);
    assert_int_equal(mime_part_get(html, sizeof(html) - 1, "1", &p), 0); /* single part: "1" */
    assert_string_equal(p.content_type, "text/html; charset=utf-8");
    mime_part_data_cleanup(&p);
}

/* ---- broken and odd messages ------------------------------------------------------ */

static void
test_broken_mime(void **state)
{
    (void)state;
    static const char *const msgs[] = {
        /* boundary parameter missing */
        "Content-Type: multipart/mixed\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n",
        /* the closing boundary never comes */
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n"
        "\r\nstill here\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64",
        /* no boundary line at all */
        "Content-Type: multipart/alternative; boundary=\"QQ\"\r\n\r\njust text\r\n",
        /* headers only */
        "Subject: only headers\r\n",
        /* garbage header lines and a bad Date */
        "Subject: x\r\n: no name\r\nDate: yesterday-ish\r\nFrom: <<<>>>\r\n\r\nbody\r\n",
        /* a part with no headers */
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno headers\r\n--b--\r\n",
        /* an HTML part with headers and no body at all (found by fuzz_mime: the Message
           object was NULL) */
        ("From n-ce@\r\nContent-Type: multipart/rela\x01\x04d; boundary=ZZ\r\n\r\n--ZZ\r\n"
         "Content-Type: text/html\r\n--ZZ\n"),
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t len = strlen(msgs[i]);
        json_t *m = mime_message_json(msgs[i], len);
        assert_non_null(m);
        assert_non_null(str_at(m, "Text"));
        assert_non_null(json_object_get(m, "Attachments"));
        json_decref(m);
        json_t *h = mime_headers_json(msgs[i], len);
        assert_non_null(h);
        json_decref(h);
        mime_part_data p;
        for (const char *const *id = (const char *const[]){"1", "2", "1.1", "0", NULL}; *id; id++)
            if (mime_part_get(msgs[i], len, *id, &p) == 0)
                mime_part_data_cleanup(&p);
    }
    json_t *m = mime_message_json(msgs[1], strlen(msgs[1]));
    assert_str_at(m, "Text", "still here");
    assert_str_at(m, "Attachments.0.FileName", "a.pdf");
    json_decref(m);

    m = mime_message_json(msgs[6], strlen(msgs[6]));
    assert_str_at(m, "HTML", "");
    json_decref(m);

    m = mime_message_json(msgs[4], strlen(msgs[4]));
    assert_str_at(m, "Date", ""); /* unreadable: the caller uses the received time */
    json_decref(m);
}

static void
test_no_headers(void **state)
{
    (void)state;
    static const char raw[] = "this is not a message\r\njust <b>words</b>\r\n";
    json_t *m = mime_message_json(raw, sizeof(raw) - 1);
    assert_non_null(m);
    assert_true(json_is_null(json_object_get(m, "From")));
    assert_str_at(m, "Text", raw);
    assert_str_at(m, "HTML", "");
    assert_str_at(m, "Subject", "");
    assert_str_at(m, "MessageID", "");
    assert_int_equal(json_array_size(json_object_get(m, "To")), 0);
    json_decref(m);

    mime_part_data p;
    assert_int_equal(mime_part_get(raw, sizeof(raw) - 1, "1", &p), -1);
    assert_int_equal(mime_body_get(raw, sizeof(raw) - 1, 1, &p), -1);
    assert_int_equal(mime_body_get(raw, sizeof(raw) - 1, 0, &p), 0);
    assert_string_equal(p.content, raw);
    mime_part_data_cleanup(&p);

    m = mime_message_json(NULL, 0);
    assert_non_null(m);
    json_decref(m);
    assert_int_equal(mime_body_get("", 0, 0, &p), -1);
}

static void
test_inline_rules(void **state)
{
    (void)state;
    /* inline disposition with a name but no Content-ID: Inline; a named part without a
       disposition: Attachment; an unnamed text/calendar: neither; a text part with
       disposition attachment: Attachment */
    static const char msg[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                              "--b\r\nContent-Type: text/plain\r\n\r\nbody one\r\n"
                              "--b\r\nContent-Type: image/jpeg\r\n"
                              "Content-Disposition: inline; filename=photo.jpg\r\n\r\nJPEG\r\n"
                              "--b\r\nContent-Type: application/zip; name=z.zip\r\n\r\nPK\r\n"
                              "--b\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n"
                              "--b\r\nContent-Type: text/plain\r\n"
                              "Content-Disposition: attachment\r\n\r\nnotes\r\n"
                              "--b\r\nContent-Type: text/plain\r\n\r\nbody two\r\n"
                              "--b--\r\n";
    json_t *m = mime_message_json(msg, sizeof(msg) - 1);
    assert_str_at(m, "Inline.0.FileName", "photo.jpg");
    assert_str_at(m, "Inline.0.PartID", "2");
    assert_int_equal(json_array_size(json_object_get(m, "Inline")), 1);
    assert_int_equal(json_array_size(json_object_get(m, "Attachments")), 2);
    assert_str_at(m, "Attachments.0.PartID", "3");
    assert_str_at(m, "Attachments.1.PartID", "5");
    assert_str_at(m, "Attachments.1.FileName", "");
    /* multipart/mixed: every text body, joined as Mailpit joins them */
    assert_str_at(m, "Text", "body one\n--\nbody two");
    json_decref(m);

    mime_summary s;
    assert_int_equal(mime_summarize(msg, sizeof(msg) - 1, &s), 0);
    assert_int_equal(s.attachments, 2);
    assert_string_equal(s.attachment_names, "z.zip");
    mime_summary_cleanup(&s);
}

/* Nested 100 deep: parts past 64 levels are not reached, nothing crashes. */
static void
test_deep_nesting(void **state)
{
    (void)state;
    size_t cap = 100 * 80 + 200, len = 0;
    char *msg = malloc(cap);
    assert_non_null(msg);
    for (int i = 0; i < 100; i++)
        len +=
            (size_t)snprintf(msg + len, cap - len,
                             "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    len += (size_t)snprintf(msg + len, cap - len, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    json_t *m = mime_message_json(msg, len);
    assert_non_null(m);
    json_decref(m);
    mime_part_data p;
    assert_int_equal(mime_part_get(msg, len, "1.1.1", &p), -1);
    free(msg);
}

/* ---- addresses and List-Unsubscribe ---------------------------------------------- */

static void
test_address_list(void **state)
{
    (void)state;
    json_t *a = mime_address_list_json("A <a@x.org>, \"B, b\" <b@y.org>, c@z.org, "
                                       "=?utf-8?q?J=C3=B6rg?= <j@x.org>, grp: d@w.org;");
    assert_int_equal(json_array_size(a), 5);
    assert_str_at(a, "0.Name", "A");
    assert_str_at(a, "0.Address", "a@x.org");
    assert_str_at(a, "1.Name", "B, b");
    assert_str_at(a, "2.Name", "");
    assert_str_at(a, "2.Address", "c@z.org");
    assert_str_at(a, "3.Name", "J\xc3\xb6rg");
    assert_str_at(a, "4.Address", "d@w.org");
    json_decref(a);

    /* the display form mime_summary keeps (decoded UTF-8, quoted where needed) */
    a = mime_address_list_json("\"M\xc3\xbcller, Hans\" <hans@example.com>, \xe6\x97\xa5 <n@x.jp>");
    assert_int_equal(json_array_size(a), 2);
    assert_str_at(a, "0.Name", "M\xc3\xbcller, Hans");
    assert_str_at(a, "0.Address", "hans@example.com");
    assert_str_at(a, "1.Name", "\xe6\x97\xa5");
    json_decref(a);

    const char *empty[] = {"", "undisclosed-recipients:;"};
    for (size_t i = 0; i < 2; i++) {
        a = mime_address_list_json(empty[i]);
        assert_int_equal(json_array_size(a), 0);
        json_decref(a);
    }
    a = mime_address_list_json(NULL);
    assert_true(json_is_array(a));
    json_decref(a);
    a = mime_address_list_json("\xff\xfe <<< ,,, @@ \"unclosed");
    assert_true(json_is_array(a));
    json_decref(a);
}

static void
test_list_unsubscribe(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        size_t links;
        const char *error; /* a piece of Errors, or "" for none */
    } cases[] = {
        {"<https://x.org/u>", 1, ""},
        {"<mailto:u@x.org> (comment), <http://x.org/u>", 2, ""},
        {"https://x.org/u", 0, "no valid unsubscribe links"},
        {"junk <https://x.org/u>", 0, "enclosed in <>"},
        {"<https://x.org/a> <https://x.org/b>", 0, "split with a comma"},
        {"<mailto:a@x>, <mailto:b@x>", 1, "only contain one mailto"},
        {"<ftp://x.org/u>", 0, "should start with"},
        {"<https://x.org/a b>", 0, "should not contain spaces"},
        {"<a:1>, <b:2>, <c:3>", 0, "maximum of one email and one HTTP link"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "List-Unsubscribe: %s\r\nSubject: x\r\n\r\nbody",
                 cases[i].header);
        json_t *m = mime_message_json(msg, strlen(msg));
        json_t *lu = json_object_get(m, "ListUnsubscribe");
        assert_non_null(lu);
        assert_str_at(lu, "Header", cases[i].header);
        const char *err = str_at(lu, "Errors");
        if (json_array_size(json_object_get(lu, "Links")) != cases[i].links ||
            (*cases[i].error == '\0' ? *err != '\0' : strstr(err, cases[i].error) == NULL))
            fail_msg("case %zu: %zu links, errors [%s]", i,
                     json_array_size(json_object_get(lu, "Links")), err);
        json_decref(m);
    }
}

/* ---- HTML to text ----------------------------------------------------------------- */

static void
test_html_to_text(void **state)
{
    (void)state;
    static const struct {
        const char *html;
        const char *text;
    } cases[] = {
        {"<p>Tom &amp; Jerry &lt;3&nbsp;caf&#233; &#x263A; &quot;x&quot; &#39;y&#39;</p>",
         "Tom & Jerry <3 caf\xc3\xa9 \xe2\x98\xba \"x\" 'y'"},
        {"<html><head><title>hidden</title><style>p{}</style><meta x></head>"
         "<body>shown<script>alert('</p>')</script> end</body></html>",
         "shown end"},
        {"a<br>b<div>c</div>d<p>e</p>f", "a\nb\nc\nd\n\ne\n\nf"},
        {"  lots   of \r\n\t space  ", "lots of space"},
        {"x < y && y > z &unknown; &#0; &#xD800; &#150; &#99999999999;",
         "x < y && y > z &unknown; \xef\xbf\xbd \xef\xbf\xbd \xe2\x80\x93 \xef\xbf\xbd"},
        {"<a href=\"x>y\" title='>'>link</a><!-- <p>gone</p> -->!", "link!"},
        {"<pre>  two\n  lines</pre>after", "  two\n  lines\n\nafter"},
        {"<table><tr><td>a</td><td>b</td></tr></table>", "a b"},
        {"<SCRIPT type=x>bad()</SCRIPT >ok<STYLE>x</style>", "ok"},
        {"<script>never closed", ""},
        {"<!-- never closed", ""},
        {"<a href=\"never closed>text", ""},
        {"\xff\xfe<b>bad \xc3 utf8</b>", NULL},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = mime_html_to_text(cases[i].html, strlen(cases[i].html));
        assert_non_null(t);
        assert_true(utf8_is_valid(t));
        if (cases[i].text != NULL && strcmp(t, cases[i].text) != 0)
            fail_msg("case %zu: [%s]", i, t);
        free(t);
    }
    /* a NUL in the middle does not end the text */
    char *t = mime_html_to_text("a\0b", 3);
    assert_string_equal(t, "a b");
    free(t);
}

static double
seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 1 MiB of hostile HTML of each kind: each finishes in linear time (generous bound for
   sanitizer builds; quadratic work would take minutes) and gives sane text. */
static void
test_html_huge(void **state)
{
    (void)state;
    static const char *const units[] = {"<p>word &amp; <b>bold</b></p>\n",
                                        "<style>",
                                        "<script>",
                                        "<a href=\"",
                                        "&#",
                                        "&#x",
                                        "<!--",
                                        "<",
                                        "&amp",
                                        "<title>x</title>",
                                        "</p>",
                                        "<p class=a b='c' d=\"e\">",
                                        "<head>",
                                        "\xff"};
    const size_t size = 1024 * 1024;
    char *html = malloc(size + 1);
    assert_non_null(html);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t n = strlen(units[u]), len = 0;
        while (len + n <= size) {
            memcpy(html + len, units[u], n);
            len += n;
        }
        html[len] = '\0';
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char *t = mime_html_to_text(html, len);
        double secs = seconds_since(&t0);
        assert_non_null(t);
        assert_true(strlen(t) <= 3 * len + 16);
        if (secs > 5.0)
            fail_msg("unit [%s]: %.1f s", units[u], secs);
        if (u == 0)
            assert_int_equal(strncmp(t, "word & bold\n\nword & bold", 24), 0);
        free(t);
    }
    /* and as a message: the snippet comes out of it */
    static const char head[] = "Content-Type: text/html\r\n\r\n";
    memcpy(html, head, sizeof(head) - 1);
    mime_summary s;
    assert_int_equal(mime_summarize(html, size, &s), 0);
    assert_true(strlen(s.snippet) <= 4 * 200);
    mime_summary_cleanup(&s);
    free(html);
}

int
main(void)
{
    mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_message),
        cmocka_unit_test(test_tree_parts),
        cmocka_unit_test(test_tree_summary_and_bodies),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_subject_charsets),
        cmocka_unit_test(test_body_charsets),
        cmocka_unit_test(test_broken_mime),
        cmocka_unit_test(test_no_headers),
        cmocka_unit_test(test_inline_rules),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_address_list),
        cmocka_unit_test(test_list_unsubscribe),
        cmocka_unit_test(test_html_to_text),
        cmocka_unit_test(test_html_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
