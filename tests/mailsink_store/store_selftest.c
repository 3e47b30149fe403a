/*
 * store_selftest.c - the SQLite store (src/mailsink/store/sqlite.c) and the MIME summary
 * (src/mailsink/mime.c) against a real database file in a temporary directory: batches,
 * search with hostile queries, byte-exact raw, pruning, deletes keeping the FTS index
 * consistent, a reader beside the writer, disk full and a locked store (nothing of a
 * failed batch visible), corrupt and too-new databases refused, the TLS and AUTH facts
 * kept, schema-1 and schema-2 databases read as they are and migrated by the writer; and
 * the HTTP API's queries (sqlite_query.c): paging, every search filter with negation and
 * combinations, counts, latest, read flags, tags, deletes by ids/query/all in chunks
 * with the FTS index, counters and tags kept in step, ":memory:" as a temporary file.
 *
 * Standalone (no cmocka); build by hand, e.g. from the repository root:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fsanitize=address,undefined \
 *      -Isrc -Iinclude $(pkg-config --cflags gmime-3.0 jansson | sed 's/-I/-isystem /g') \
 *      tests/mailsink_store/store_selftest.c src/mailsink/store/sqlite.c \
 *      src/mailsink/store/sqlite_query.c src/mailsink/mime.c src/mailsink/mime_message.c \
 *      $(pkg-config --libs sqlite3 gmime-3.0 jansson openssl) -lpthread
 * Exit status 0 when every check passed.
 */
#include "mailsink/mime.h"
#include "mailsink/store/store.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...) check((cond), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 4, 5))) static bool
check(bool ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        passed++;
        return true;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

/* ---- messages --------------------------------------------------------------------- */

static const char msg_multipart[] =
    "Return-Path: <alice@example.org>\r\n"
    "Received: from client.example (client.example [192.0.2.1]) by mailsink; "
    "Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: \"M\xc3\xbcller, Hans\" <hans@example.com>\r\n"
    "To: bob@example.net, \"=?UTF-8?B?SsO8cmdlbg==?=\" <j@example.net>\r\n"
    "Cc: carol@example.net\r\n"
    "Reply-To: noreply@example.com\r\n"
    "Subject: Quarterly invoice\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    "Message-ID: <part1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "--XX\r\n"
    "Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
    "\r\n"
    "--YY\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Hallo   W=FCrld,\r\n"
    "\r\n"
    "  please find the zebrafish report attached.\r\n"
    "--YY\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>Hallo W&uuml;rld</p>\r\n"
    "--YY--\r\n"
    "--XX\r\n"
    "Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0=\r\n"
    "--XX\r\n"
    "Content-Type: image/png; name=\"logo.png\"\r\n"
    "Content-Disposition: inline\r\n"
    "Content-ID: <logo@x>\r\n"
    "\r\n"
    "AAAA\r\n"
    "--XX--\r\n";

static const char msg_encoded[] =
    "From: =?ISO-8859-1?Q?J=E9r=F4me?= <jerome@example.fr>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    "Message-ID: broken id without brackets\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><head><title>hidden</title><style>p{color:red}</style></head>\r\n"
    "<body><p>Tom &amp; Jerry &lt;3&nbsp;caf&#233; &#x263A; &quot;x&quot; &#39;y&#39;</p>"
    "<script>alert(1)</script><div>end</div></body></html>\r\n";

/* Not MIME, not even headers: binary junk with NULs, 8-bit and CR/LF mixed in. */
static const char msg_junk[] = "\x00\x01\xff\xfe junk \r\n\x80\x81 more\n\r\x00 bytes\r\n";

/* ---- helpers ---------------------------------------------------------------------- */

static sqlite3 *captured_db; /* the first connection opened since it was reset */

/* An auto extension runs for every new connection: the test's way to reach the
   writer's own handle (to shrink its max_page_count or its busy timeout) through
   SQLite's public API, without a test hook in the store. The writer opens its
   checkpointer's connection after its own, so the first one opened is kept (reset
   captured_db to NULL before an open to capture that open's handle). */
static int
capture_db_cb(sqlite3 *db, const char **errmsg, const struct sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    if (captured_db == NULL)
        captured_db = db;
    return SQLITE_OK;
}

static char *
path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* One text value from a separate connection, for checks the store API cannot make. */
static char *
side_query(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char *out = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        out = strdup(v ? (const char *)v : "");
    } else {
        fprintf(stderr, "side query '%s': %s\n", sql, db ? sqlite3_errmsg(db) : "no db");
        out = strdup("(error)");
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

static bool
side_query_is(const char *path, const char *sql, const char *want)
{
    char *got = side_query(path, sql);
    bool ok = CHECK(strcmp(got, want) == 0, "%s: got '%s', want '%s'", sql, got, want);
    free(got);
    return ok;
}

typedef struct fixture {
    mime_summary sums[3];
    store_msg msgs[3];
    const char *rcpts[3][2];
    char ids[3][32];
} fixture;

static void
fixture_init(fixture *f, const char *prefix)
{
    static const char *const raws[] = {msg_multipart, msg_encoded, msg_junk};
    static const size_t lens[] = {sizeof(msg_multipart) - 1, sizeof(msg_encoded) - 1,
                                  sizeof(msg_junk) - 1};
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 3; i++) {
        snprintf(f->ids[i], sizeof(f->ids[i]), "%s%d", prefix, i);
        CHECK(mime_summarize(raws[i], lens[i], &f->sums[i]) == 0, "summarize %d", i);
        f->rcpts[i][0] = "Bob@Example.NET";
        f->rcpts[i][1] = i == 2 ? "\"odd \\\" quote\"@example.org" : "carol@example.net";
        f->msgs[i] = (store_msg){.id = f->ids[i],
                                 .received_ms = 1700000000000 + i * 1000,
                                 .sender = i == 1 ? "" : "alice@example.org",
                                 .rcpts = f->rcpts[i],
                                 .rcpt_count = 2,
                                 .client_addr = "192.0.2.1",
                                 .helo = i == 2 ? NULL : "client.example",
                                 .findings = (unsigned)i,
                                 .raw = raws[i],
                                 .raw_len = lens[i],
                                 .trace_size = 10,
                                 .summary = &f->sums[i]};
    }
    /* TLS with a client certificate and AUTH; AUTH without TLS; neither */
    f->msgs[0].tls_version = "TLSv1.3";
    f->msgs[0].tls_cipher = "TLS_AES_256_GCM_SHA384";
    f->msgs[0].tls_peer = "CN=client.example,O=Test\\, Inc.";
    f->msgs[0].auth_user = "alice";
    f->msgs[1].auth_user = "\xc3\xb6zg\xc3\xbcr";
}

static void
fixture_cleanup(fixture *f)
{
    for (int i = 0; i < 3; i++)
        mime_summary_cleanup(&f->sums[i]);
}

/* ---- MIME ------------------------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool
utf8_is_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n, min;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, min = 0x10000;
        } else {
            return false;
        }
        unsigned cp = c & (0x3F >> n);
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

static bool
summary_is_sane(const mime_summary *s)
{
    const char *f[] = {s->from, s->to,         s->cc,      s->reply_to, s->subject,
                       s->date, s->message_id, s->snippet, s->text,     s->attachment_names};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i] == NULL || !utf8_is_valid(f[i]))
            return false;
    return strlen(s->text) <= 1024 * 1024;
}

/* Garbage in every shape: random bytes, the test messages with bytes flipped and cut
   short, a megabyte header line, deep nesting. Nothing may crash (ASan watches), every
   field must be valid UTF-8. */
static void
test_mime_garbage(void)
{
    unsigned seed = 12345;
    char buf[4096];
    bool sane = true;
    for (int round = 0; round < 300; round++) {
        const char *base = round % 2 ? msg_multipart : msg_encoded;
        size_t len = strlen(base);
        memcpy(buf, base, len);
        for (int k = 0; k < 1 + round % 40; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = (char)(seed >> 16);
        }
        if (round % 3 == 0)
            len = (seed >> 4) % len;
        mime_summary s;
        if (mime_summarize(buf, len, &s) != 0 || !summary_is_sane(&s))
            sane = false;
        mime_summary_cleanup(&s);
    }
    CHECK(sane, "mutated messages summarize to sane fields");

    size_t big = 3 * 1024 * 1024;
    char *huge = malloc(big);
    if (huge == NULL)
        abort();
    memcpy(huge, "Subject: ", 9);
    memset(huge + 9, 'A', big / 2);
    static const char ct[] = "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n";
    static const char part[] = "--b\r\nContent-Type: text/plain\r\n\r\n\xe9\xe9\r\n";
    size_t at = 9 + big / 2;
    memcpy(huge + at, ct, sizeof(ct) - 1);
    at += sizeof(ct) - 1;
    while (at + sizeof(part) < big) { /* many parts, the last one never closed */
        memcpy(huge + at, part, sizeof(part) - 1);
        at += sizeof(part) - 1;
    }
    mime_summary s;
    CHECK(mime_summarize(huge, at, &s) == 0 && summary_is_sane(&s), "huge header and body");
    CHECK(strlen(s.subject) == big / 2, "long subject kept: %zu", strlen(s.subject));
    mime_summary_cleanup(&s);

    /* HTML of nothing but unclosed invisible elements: linear, not quadratic, time */
    static const char html_head[] = "Content-Type: text/html\r\n\r\n";
    memcpy(huge, html_head, sizeof(html_head) - 1);
    for (at = sizeof(html_head) - 1; at + 8 < big; at += 7)
        memcpy(huge + at, at % 2 ? "<style>" : "<title>", 7);
    time_t t0 = time(NULL);
    CHECK(mime_summarize(huge, at, &s) == 0 && *s.text == '\0', "unclosed <style>: %.20s", s.text);
    CHECK(time(NULL) - t0 < 10, "unclosed <style> took %lds", (long)(time(NULL) - t0));
    mime_summary_cleanup(&s);
    free(huge);
}

static void
test_mime(void)
{
    mime_summary s;
    CHECK(mime_summarize(msg_multipart, sizeof(msg_multipart) - 1, &s) == 0, "multipart");
    CHECK(strcmp(s.from, "\"M\xc3\xbcller, Hans\" <hans@example.com>") == 0, "from: %s", s.from);
    CHECK(strcmp(s.to, "bob@example.net, J\xc3\xbcrgen <j@example.net>") == 0, "to: %s", s.to);
    CHECK(strcmp(s.reply_to, "noreply@example.com") == 0, "reply-to: %s", s.reply_to);
    CHECK(strcmp(s.date, "Mon, 1 Jan 2024 10:00:00 +0100") == 0, "date: %s", s.date);
    CHECK(strcmp(s.message_id, "part1@example.com") == 0, "message-id: %s", s.message_id);
    /* from the HTML part when there is one, as Mailpit does */
    CHECK(strncmp(s.snippet, "Hallo W\xc3\xbcrld", 12) == 0, "snippet: %s", s.snippet);
    CHECK(strstr(s.text, "zebrafish") != NULL, "text: %s", s.text);
    CHECK(s.attachments == 1, "attachments %u (inline image with Content-ID excluded)",
          s.attachments);
    CHECK(strcmp(s.attachment_names, "r\xc3\xa9sum\xc3\xa9.pdf") == 0, "names: %s",
          s.attachment_names);
    mime_summary_cleanup(&s);

    CHECK(mime_summarize(msg_encoded, sizeof(msg_encoded) - 1, &s) == 0, "encoded");
    CHECK(strcmp(s.subject, "Gr\xc3\xbc\xc3\x9f"
                            "e aus K\xc3\xb6ln") == 0,
          "subject: %s", s.subject);
    CHECK(strcmp(s.from, "J\xc3\xa9r\xc3\xb4me <jerome@example.fr>") == 0, "from: %s", s.from);
    CHECK(strcmp(s.snippet, "Tom & Jerry <3 caf\xc3\xa9 \xe2\x98\xba \"x\" 'y' end") == 0,
          "html snippet: [%s]", s.snippet);
    CHECK(strstr(s.text, "hidden") == NULL && strstr(s.text, "alert") == NULL,
          "head/script dropped: %s", s.text);
    CHECK(strcmp(s.message_id, "broken id without brackets") == 0, "id: %s", s.message_id);
    mime_summary_cleanup(&s);

    CHECK(mime_summarize(msg_junk, sizeof(msg_junk) - 1, &s) == 0, "junk");
    CHECK(s.from && s.to && s.cc && s.reply_to && s.subject && s.date && s.message_id &&
              s.snippet && s.text && s.attachment_names,
          "junk: no NULL field");
    CHECK(strstr(s.text, "more") != NULL && strstr(s.text, "bytes") != NULL,
          "junk text kept past NULs: %s", s.text);
    CHECK(utf8_is_valid(s.text), "junk text is UTF-8");
    mime_summary_cleanup(&s);

    CHECK(mime_summarize("", 0, &s) == 0 && *s.text == '\0' && *s.subject == '\0', "empty");
    mime_summary_cleanup(&s);
}

/* ---- the store -------------------------------------------------------------------- */

typedef struct collected {
    int n;
    char ids[16][32];
    char rcpts[16][128];
    char peers[16][128];
} collected;

static bool
collect_cb(const store_row *row, void *ctx)
{
    collected *c = ctx;
    if (c->n < 16) {
        snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", row->id);
        snprintf(c->rcpts[c->n], sizeof(c->rcpts[0]), "%s", row->rcpts);
        snprintf(c->peers[c->n], sizeof(c->peers[0]), "%s|%s|%s|%s", row->tls_version,
                 row->tls_cipher, row->tls_peer, row->auth_user);
    }
    c->n++;
    return true;
}

static bool
stop_cb(const store_row *row, void *ctx)
{
    (void)row;
    (void)ctx;
    return false;
}

static long
search(store *st, const char *q, collected *c)
{
    memset(c, 0, sizeof(*c));
    return store_list(st, q, 0, collect_cb, c);
}

static void
test_put_list_search(store *st, fixture *f)
{
    char err[256] = "";
    CHECK(store_put_batch(st, f->msgs, 3, err, sizeof(err)) == 0, "put batch: %s", err);
    CHECK(store_count(st) == 3, "count 3");

    collected c;
    CHECK(search(st, NULL, &c) == 3 && c.n == 3, "list all: %d", c.n);
    CHECK(strcmp(c.ids[0], "m2") == 0 && strcmp(c.ids[2], "m0") == 0, "newest first: %s..%s",
          c.ids[0], c.ids[2]);
    CHECK(strcmp(c.rcpts[2], "Bob@Example.NET, carol@example.net") == 0, "rcpts: %s", c.rcpts[2]);
    CHECK(strcmp(c.rcpts[0], "Bob@Example.NET, \"odd \\\" quote\"@example.org") == 0,
          "rcpt with quotes survives JSON: %s", c.rcpts[0]);
    CHECK(strcmp(c.peers[2], "TLSv1.3|TLS_AES_256_GCM_SHA384|CN=client.example,O=Test\\, "
                             "Inc.|alice") == 0 &&
              strcmp(c.peers[0], "|||") == 0,
          "list rows carry TLS and AUTH: %s / %s", c.peers[2], c.peers[0]);
    CHECK(store_list(st, "", 2, collect_cb, memset(&c, 0, sizeof(c))) == 2, "limit 2");
    CHECK(store_list(st, NULL, 0, stop_cb, NULL) == 1, "callback stops the list");

    static const struct {
        const char *q;
        int want; /* -1: any count, but no error */
        const char *first;
    } searches[] = {
        {"zebrafish", 1, "m0"},
        {"zebra", 1, "m0"},
        {"koln", 1, "m1"},
        {"Köln Grüße", 1, "m1"},
        {"resume", 1, "m0"},
        {"hans@example.com", 1, "m0"},
        {"bob@example.net", 3, "m2"},
        {"\"Tom & Jerry\"", 1, "m1"},
        {"junk bytes", 1, "m2"},
        {"zebrafish koln", 0, NULL},
        {"quarterly", 1, "m0"},
        {"   ", 3, "m2"},
        {"\"a AND (b", 0, NULL},
        {"\"", 0, NULL},
        {"\"\"", 0, NULL},
        {"*", 0, NULL},
        {"NEAR(a b)", -1, NULL},
        {"subject:invoice", 0, NULL}, /* filters are the HTTP layer's; here a phrase */
        {"-foo", 0, NULL},
        {"a OR b", -1, NULL},
        {"^x", -1, NULL},
        {"'", 0, NULL},
        {"\\", 0, NULL},
        {"(((", 0, NULL},
        {"{subject}: x", -1, NULL},
        {"zebra\"fish", 0, NULL},
        {"\"unterminated zeb", 0, NULL},
        {"AND", 0, NULL},
        {"OR NOT", 0, NULL},
        {"\x80\xff", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(searches) / sizeof(searches[0]); i++) {
        long n = search(st, searches[i].q, &c);
        if (!CHECK(n >= 0, "search [%s] errored", searches[i].q) || searches[i].want < 0)
            continue;
        CHECK(n == searches[i].want, "search [%s]: %ld hits, want %d", searches[i].q, n,
              searches[i].want);
        if (searches[i].first != NULL && n > 0)
            CHECK(strcmp(c.ids[0], searches[i].first) == 0, "search [%s]: first %s", searches[i].q,
                  c.ids[0]);
    }
}

static void
test_get(store *st)
{
    store_row row;
    CHECK(store_get(st, "m0", &row) == 0, "get m0");
    CHECK(strcmp(row.summary.subject, "Quarterly invoice") == 0, "subject %s", row.summary.subject);
    CHECK(strcmp(row.sender, "alice@example.org") == 0 && strcmp(row.helo, "client.example") == 0,
          "envelope");
    CHECK(row.size == sizeof(msg_multipart) - 1 && row.findings == 0 && !row.read, "size");
    CHECK(row.received_ms == 1700000000000 && row.seq > 0, "received");
    CHECK(strstr(row.summary.text, "zebrafish") != NULL, "get loads the text");
    CHECK(row.summary.attachments == 1, "attachments");
    CHECK(strcmp(row.tls_version, "TLSv1.3") == 0 &&
              strcmp(row.tls_cipher, "TLS_AES_256_GCM_SHA384") == 0,
          "tls: %s %s", row.tls_version, row.tls_cipher);
    CHECK(strcmp(row.tls_peer, "CN=client.example,O=Test\\, Inc.") == 0, "peer: %s", row.tls_peer);
    CHECK(strcmp(row.auth_user, "alice") == 0, "auth user: %s", row.auth_user);
    store_row_cleanup(&row);

    CHECK(store_get(st, "m1", &row) == 0, "get m1");
    CHECK(strcmp(row.auth_user, "\xc3\xb6zg\xc3\xbcr") == 0 && *row.tls_version == '\0' &&
              *row.tls_cipher == '\0' && *row.tls_peer == '\0',
          "AUTH without TLS: '%s' '%s'", row.auth_user, row.tls_version);
    store_row_cleanup(&row);

    CHECK(store_get(st, "latest", &row) == 0 && strcmp(row.id, "m2") == 0, "latest");
    CHECK(strcmp(row.helo, "") == 0 && row.findings == 2, "NULL helo reads as \"\"");
    CHECK(*row.tls_version == '\0' && *row.tls_cipher == '\0' && *row.tls_peer == '\0' &&
              *row.auth_user == '\0',
          "no TLS, no AUTH: all \"\"");
    store_row_cleanup(&row);
    CHECK(store_get(st, "nope", &row) == -1, "unknown id");
    store_row_cleanup(&row);

    static const char *const raws[] = {msg_multipart, msg_encoded, msg_junk};
    static const size_t lens[] = {sizeof(msg_multipart) - 1, sizeof(msg_encoded) - 1,
                                  sizeof(msg_junk) - 1};
    for (int i = 0; i < 3; i++) {
        char id[8], *data;
        size_t len;
        snprintf(id, sizeof(id), "m%d", i);
        CHECK(store_get_raw(st, id, &data, &len) == 0, "raw %s", id);
        CHECK(len == lens[i] && memcmp(data, raws[i], len) == 0, "raw %s byte-exact", id);
        free(data);
    }
    char *data;
    size_t len;
    CHECK(store_get_raw(st, "nope", &data, &len) == -1 && data == NULL, "raw unknown");

    CHECK(store_count_matching(st, NULL, NULL) == 3, "match all");
    CHECK(store_count_matching(st, "bob@EXAMPLE", NULL) == 3, "to, case-insensitive");
    CHECK(store_count_matching(st, "odd \\\" quote", NULL) == 1, "to with quote");
    CHECK(store_count_matching(st, "carol", "INVOICE") == 1, "to and subject");
    CHECK(store_count_matching(st, "%", NULL) == 0, "%% is no wildcard");
    CHECK(store_count_matching(st, NULL, "_") == 0, "_ is no wildcard");
    CHECK(store_count_matching(st, "nobody", NULL) == 0, "no recipient");
}

/* A batch that fails leaves nothing behind: a duplicate id in the middle, a full disk, a
   store locked by another process. After each, the store works again. */
static void
test_batch_failures(store *st, sqlite3 *db, const char *path)
{
    fixture f;
    fixture_init(&f, "dup");
    snprintf(f.ids[2], sizeof(f.ids[2]), "m1"); /* already stored */
    char err[256] = "";
    long before = store_count(st);
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == -1, "duplicate id fails");
    CHECK(strstr(err, "UNIQUE") != NULL, "duplicate: %s", err);
    CHECK(store_count(st) == before, "nothing of the failed batch visible");

    /* disk full: no page may be added beyond what the file has now */
    snprintf(f.ids[2], sizeof(f.ids[2]), "dup2");
    size_t big = 2 * 1024 * 1024;
    char *raw = calloc(1, big);
    f.msgs[1].raw = raw;
    f.msgs[1].raw_len = big;
    sqlite3_exec(db, "PRAGMA max_page_count = 1", NULL, NULL, NULL); /* clamps to current */
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == STORE_EFULL, "disk full fails");
    CHECK(strstr(err, "database or disk is full") != NULL, "disk full: %s", err);
    CHECK(store_count(st) == before, "nothing visible after disk full");
    sqlite3_exec(db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL);
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == 0, "recovers: %s", err);
    CHECK(store_count(st) == before + 3, "batch after disk full stored");
    free(raw);

    /* locked: another connection holds the write lock past our busy timeout */
    sqlite3 *other = NULL;
    sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL);
    CHECK(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK, "lock");
    sqlite3_busy_timeout(db, 50);
    snprintf(f.ids[0], sizeof(f.ids[0]), "lock0");
    snprintf(f.ids[1], sizeof(f.ids[1]), "lock1");
    snprintf(f.ids[2], sizeof(f.ids[2]), "lock2");
    f.msgs[1].raw = msg_encoded;
    f.msgs[1].raw_len = sizeof(msg_encoded) - 1;
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == -1, "locked store fails");
    CHECK(strstr(err, "locked") != NULL, "locked: %s", err);
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    sqlite3_busy_timeout(db, 5000);
    CHECK(store_count(st) == before + 3, "nothing visible after lock");
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == 0, "after lock: %s", err);

    CHECK(store_delete_all(st) == before + 6, "delete all");
    fixture_cleanup(&f);
}

typedef struct reader_ctx {
    const char *path;
    volatile bool stop;
    int errors;
    long reads;
    char err[256];
} reader_ctx;

/* A reader on its own handle, polling while the writer commits batches: in WAL mode it
   must never see an error or a partial batch (counts are multiples of 3). */
static void *
reader_thread(void *arg)
{
    reader_ctx *r = arg;
    store *rd = store_open(r->path, STORE_READER, r->err, sizeof(r->err));
    if (rd == NULL) {
        r->errors++;
        return NULL;
    }
    while (!r->stop) {
        long n = store_count(rd);
        collected c;
        long l = search(rd, "zebrafish", &c);
        if (n < 0 || n % 3 != 0 || l < 0)
            r->errors++;
        r->reads++;
    }
    store_close(rd);
    return NULL;
}

static void
test_concurrent_reader(store *st, const char *path)
{
    reader_ctx r = {.path = path};
    pthread_t t;
    pthread_create(&t, NULL, reader_thread, &r);
    char err[256] = "";
    int failures = 0;
    for (int b = 0; b < 30; b++) {
        fixture f;
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "c%d-", b);
        fixture_init(&f, prefix);
        failures += store_put_batch(st, f.msgs, 3, err, sizeof(err)) != 0;
        fixture_cleanup(&f);
    }
    r.stop = true;
    pthread_join(t, NULL);
    CHECK(failures == 0, "writer beside reader: %s", err);
    CHECK(r.errors == 0 && r.reads > 0, "reader: %d errors in %ld reads %s", r.errors, r.reads,
          r.err);

    store *rd = store_open(path, STORE_READER, err, sizeof(err));
    CHECK(rd != NULL, "reader open: %s", err);
    CHECK(store_count(rd) == 90, "reader sees 90");
    CHECK(store_delete(rd, "c0-0") == 0, "reader deletes");
    CHECK(store_count(st) == 89, "writer sees the reader's delete");
    store_close(rd);
}

static void
test_prune_delete(store *st, const char *path)
{
    long n = store_count(st);
    CHECK(store_prune(st, 2, 0) == n - 2, "prune to 2");
    CHECK(store_count(st) == 2, "2 left");
    collected c;
    search(st, NULL, &c);
    CHECK(c.n == 2 && strcmp(c.ids[0], "c29-2") == 0 && strcmp(c.ids[1], "c29-1") == 0,
          "the newest stay: %s %s", c.ids[0], c.ids[1]);
    side_query_is(path, "SELECT count(*) FROM messages_fts", "2");
    CHECK(store_prune(st, 2, 0) == 0, "prune at the limit deletes nothing");
    CHECK(store_prune(st, 0, 1700000001500) == 1, "prune by age");
    char *raw = NULL;
    size_t raw_len;
    CHECK(store_count(st) == 1 && store_get_raw(st, "c29-2", &raw, &raw_len) == 0,
          "the younger stays");
    free(raw);

    fixture f;
    fixture_init(&f, "d");
    char err[256];
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == 0, "put: %s", err);
    fixture_cleanup(&f);
    CHECK(store_delete(st, "d1") == 0 && store_delete(st, "d1") == -1, "delete once");
    CHECK(store_delete(st, "latest") == 0 && store_get(st, "d2", &(store_row){0}) == -1,
          "delete latest");
    CHECK(search(st, "koln", &c) == 0, "deleted message gone from search");
    side_query_is(path, "SELECT count(*) FROM messages_fts", "2");
    side_query_is(path,
                  "SELECT count(*) FROM messages_fts WHERE rowid NOT IN "
                  "(SELECT seq FROM messages)",
                  "0");
    CHECK(store_delete_all(st) == 2 && store_count(st) == 0, "delete all");
    side_query_is(path, "SELECT count(*) FROM messages_fts", "0");
    CHECK(store_delete(st, "latest") == -1, "delete latest of none");
}

static void
test_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    CHECK(sqlite3_exec(db, "INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')", NULL,
                       NULL, NULL) == SQLITE_OK,
          "fts integrity-check: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    side_query_is(path, "PRAGMA integrity_check", "ok");
    side_query_is(path, "PRAGMA user_version", "3");
    side_query_is(path, "PRAGMA journal_mode", "wal");
}

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0)
        abort();
}

static bool
open_fails(const char *path, store_mode mode, const char *want)
{
    char err[512] = "";
    store *st = store_open(path, mode, err, sizeof(err));
    store_close(st);
    return CHECK(st == NULL && strstr(err, want) != NULL, "open %s: want '%s', got '%s'", path,
                 want, st ? "(opened)" : err);
}

/* Databases that must be refused, each with a message that names the problem. */
static void
test_refusals(const char *dir, const char *good)
{
    char *missing = path_in(dir, "missing.db");
    open_fails(missing, STORE_READER, "no database at");
    CHECK(access(missing, F_OK) != 0, "a reader creates no file");
    open_fails(":memory:", STORE_READER, "needs a database file");
    char *nodir = path_in(dir, "no/such/dir.db");
    open_fails(nodir, STORE_WRITER, "cannot open database");

    char *junk = path_in(dir, "junk.db");
    static const char text[] = "this is not an SQLite database, just text. padding padding "
                               "padding padding padding padding padding padding padding\n";
    write_file(junk, text, sizeof(text) - 1);
    open_fails(junk, STORE_WRITER, "is corrupt");
    open_fails(junk, STORE_READER, "is corrupt");

    char *empty = path_in(dir, "empty.db");
    sqlite3 *db = NULL;
    sqlite3_open(empty, &db);
    sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
    sqlite3_close(db);
    open_fails(empty, STORE_READER, "no mailsink schema");

    /* a newer mailsink's database: refused by reader and writer alike, unchanged */
    sqlite3_open(good, &db);
    sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL);
    open_fails(good, STORE_READER, "schema version 7");
    open_fails(good, STORE_WRITER, "schema version 7");
    sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL);
    sqlite3_close(db);
    free(missing);
    free(nodir);
    free(junk);
    free(empty);
}

/* A real database with pages overwritten in the middle: quick_check finds it. */
static void
test_corrupt_pages(const char *dir)
{
    char *path = path_in(dir, "damaged.db");
    char err[256] = "";
    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    fixture f;
    for (int b = 0; st != NULL && b < 20; b++) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "x%d-", b);
        fixture_init(&f, prefix);
        store_put_batch(st, f.msgs, 3, err, sizeof(err));
        fixture_cleanup(&f);
    }
    store_close(st); /* checkpoints: everything is in the main file now */
    int fd = open(path, O_WRONLY);
    char junk[4096];
    memset(junk, 0x5A, sizeof(junk));
    for (off_t page = 2; page < 12; page++)
        if (pwrite(fd, junk, sizeof(junk), page * 4096) != (ssize_t)sizeof(junk))
            abort();
    close(fd);
    open_fails(path, STORE_WRITER, "is corrupt");
    free(path);
}

/* Migration 1 exactly as it shipped: the database of a mailsink before TLS and AUTH. */
/* clang-format off */
static const char schema_v1[] =
    "CREATE TABLE messages ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " received_ms INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " rcpts TEXT NOT NULL DEFAULT '[]',"
    " client_addr TEXT NOT NULL DEFAULT '',"
    " helo TEXT,"
    " tls_version TEXT,"
    " tls_cipher TEXT,"
    " auth_user TEXT,"
    " findings INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL,"
    " trace_size INTEGER NOT NULL DEFAULT 0,"
    " read INTEGER NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '',"
    " from_addr TEXT NOT NULL DEFAULT '',"
    " to_addr TEXT NOT NULL DEFAULT '',"
    " cc_addr TEXT NOT NULL DEFAULT '',"
    " reply_to TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " date_hdr TEXT NOT NULL DEFAULT '',"
    " message_id TEXT NOT NULL DEFAULT '',"
    " snippet TEXT NOT NULL DEFAULT '',"
    " attachments INTEGER NOT NULL DEFAULT 0,"
    " attachment_names TEXT NOT NULL DEFAULT '',"
    " raw BLOB NOT NULL);"
    "CREATE INDEX messages_received ON messages(received_ms);"
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    " subject, addresses, body, attachment_names,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " DELETE FROM messages_fts WHERE rowid = old.seq;"
    " END;";
/* Migration 2 exactly as it shipped. */
static const char schema_v2[] = "ALTER TABLE messages ADD COLUMN tls_peer TEXT;";
/* clang-format on */

static void
exec_ok(sqlite3 *db, const char *sql)
{
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%.60s: %s", sql,
          sqlite3_errmsg(db));
}

/* A schema-1 database: readers take it as it is (no tls_peer yet), the writer migrates
   it to 2, keeping its rows; a reader opened before the migration goes on working. */
static void
test_migrate_v1(const char *dir)
{
    char *path = path_in(dir, "v1.db");
    char err[256] = "";
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "create v1");
    exec_ok(db, "PRAGMA journal_mode = WAL");
    exec_ok(db, schema_v1);
    exec_ok(db, "INSERT INTO messages (id, received_ms, sender, rcpts, client_addr, size, raw,"
                " tls_version, tls_cipher, auth_user, subject) VALUES ('old1', 1600000000000,"
                " 'a@x.example', '[\"b@y.example\"]', '192.0.2.9', 3, X'616263', 'TLSv1.2',"
                " 'ECDHE-RSA-AES128-GCM-SHA256', 'olduser', 'old subject')");
    exec_ok(db, "PRAGMA user_version = 1");
    sqlite3_close(db);

    store *old_rd = store_open(path, STORE_READER, err, sizeof(err));
    CHECK(old_rd != NULL, "reader on schema 1: %s", err);
    store_row row;
    if (old_rd != NULL) {
        CHECK(store_get(old_rd, "old1", &row) == 0 && strcmp(row.tls_version, "TLSv1.2") == 0 &&
                  strcmp(row.auth_user, "olduser") == 0 && *row.tls_peer == '\0' &&
                  strcmp(row.summary.subject, "old subject") == 0,
              "schema-1 row through a reader");
        store_row_cleanup(&row);
        collected c;
        CHECK(search(old_rd, NULL, &c) == 1 && strcmp(c.ids[0], "old1") == 0, "schema-1 list");
    }
    side_query_is(path, "PRAGMA user_version", "1"); /* readers never migrate */

    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    if (!CHECK(st != NULL, "writer migrates schema 1: %s", err))
        goto out;
    side_query_is(path, "PRAGMA user_version", "3");
    side_query_is(
        path, "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'tls_peer'", "1");
    side_query_is(path, "SELECT quote(tls_peer) || auth_user FROM messages WHERE id = 'old1'",
                  "NULLolduser");
    fixture f;
    fixture_init(&f, "new");
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == 0, "put after migration: %s", err);
    fixture_cleanup(&f);
    side_query_is(path, "SELECT tls_peer FROM messages WHERE id = 'new0'",
                  "CN=client.example,O=Test\\, Inc.");
    /* no TLS is NULL in the database, not "": "" would be a TLS version nobody has */
    side_query_is(path,
                  "SELECT count(*) FROM messages WHERE id = 'new2' AND tls_version IS NULL AND"
                  " tls_cipher IS NULL AND tls_peer IS NULL AND auth_user IS NULL",
                  "1");
    CHECK(store_get(st, "new0", &row) == 0 &&
              strcmp(row.tls_peer, "CN=client.example,O=Test\\, Inc.") == 0,
          "peer after migration");
    store_row_cleanup(&row);
    CHECK(store_get(st, "old1", &row) == 0 && strcmp(row.auth_user, "olduser") == 0 &&
              *row.tls_peer == '\0',
          "old row after migration");
    store_row_cleanup(&row);
    if (old_rd != NULL) {
        CHECK(store_get(old_rd, "new0", &row) == 0 && strcmp(row.auth_user, "alice") == 0,
              "a reader from before the migration reads new rows");
        store_row_cleanup(&row);
    }
    store_close(st);

    st = store_open(path, STORE_WRITER, err, sizeof(err));
    CHECK(st != NULL && store_count(st) == 4, "reopen after migration: %s", err);
    store_close(st);
    side_query_is(path, "PRAGMA user_version", "3");
out:
    store_close(old_rd);
    free(path);
}

static void
test_memory(void)
{
    char err[256] = "";
    store *st = store_open(":memory:", STORE_WRITER, err, sizeof(err));
    if (!CHECK(st != NULL, "memory: %s", err))
        return;
    fixture f;
    fixture_init(&f, "mem");
    CHECK(store_put_batch(st, f.msgs, 3, err, sizeof(err)) == 0, "memory put: %s", err);
    collected c;
    CHECK(search(st, "zebrafish", &c) == 1 && strcmp(c.ids[0], "mem0") == 0, "memory search");
    CHECK(store_prune(st, 1, 0) == 2 && store_count(st) == 1, "memory prune");

    /* the least a message can be: no octets, no recipients, no summary */
    store_msg empty = {.id = "empty", .sender = "", .client_addr = ""};
    CHECK(store_put_batch(st, &empty, 1, err, sizeof(err)) == 0, "empty message: %s", err);
    char *raw = NULL;
    size_t len = 1;
    CHECK(store_get_raw(st, "latest", &raw, &len) == 0 && raw != NULL && len == 0, "empty raw");
    free(raw);
    store_row row;
    CHECK(store_get(st, "empty", &row) == 0 && *row.rcpts == '\0' && *row.summary.text == '\0',
          "empty row");
    store_row_cleanup(&row);
    fixture_cleanup(&f);

    /* ":memory:" is a temporary file that a reader opens by path, gone after close */
    char *tmp = strdup(store_path(st));
    CHECK(tmp != NULL && strcmp(tmp, ":memory:") != 0 && access(tmp, F_OK) == 0,
          "memory store's file: %s", tmp ? tmp : "(null)");
    CHECK(store_file_size(st) > 0, "memory store's size: its file's");
    store *rd = store_open(tmp, STORE_READER, err, sizeof(err));
    CHECK(rd != NULL && store_count(rd) == 2, "reader on the memory store: %s", err);
    store_close(rd);
    store_close(st);
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", tmp);
    CHECK(access(tmp, F_OK) != 0 && access(wal, F_OK) != 0, "temporary file removed: %s", tmp);
    free(tmp);
}

/* ---- the HTTP API's queries ------------------------------------------------------- */

/* A message for the API tests: a summary made by hand (no MIME needed), raw of size
   octets. */
typedef struct api_msg {
    const char *id;
    int64_t received_ms;
    const char *from, *to, *cc, *reply_to, *subject, *message_id, *text;
    unsigned attachments;
    size_t size;
    const char *rcpts[3];
    const char *tags[3];
} api_msg;

static const api_msg api_msgs[] = {
    {"a1",
     1000,
     "Alice <alice@example.com>",
     "bob@example.net",
     "",
     "",
     "Weekly report",
     "w1@example.com",
     "zebrafish numbers",
     0,
     100,
     {"bob@example.net"},
     {NULL}},
    {"a2",
     2000,
     "Bob <bob@example.net>",
     "Carol <carol@example.org>",
     "dave@example.org",
     "noreply@example.net",
     "Invoice 50% off_now",
     "inv2@example.net",
     "invoice attached",
     1,
     2000,
     {"carol@example.org", "Dave@Example.org", "secret@hidden.example"},
     {"Billing", " urgent ", "billing"}},
    {"a3",
     3000,
     "alice@example.com",
     "eve@example.com",
     "",
     "",
     "Re: weekly REPORT",
     "r3@x",
     "nothing here",
     2,
     50,
     {"eve@example.com", "\"odd \\\" quote\"@example.org"},
     {"BILLING"}},
    {"a4",
     4000,
     "frank@example.com",
     "frank@example.com",
     "",
     "",
     "back\\slash",
     "",
     "",
     0,
     5000,
     {"frank@example.com"},
     {NULL}},
};
#define API_N (sizeof(api_msgs) / sizeof(api_msgs[0]))

static void
api_put(store *st, const api_msg *m, size_t n)
{
    static char raw[8192];
    memset(raw, 'x', sizeof(raw));
    mime_summary *sums = calloc(n, sizeof(*sums));
    store_msg *msgs = calloc(n, sizeof(*msgs));
    if (sums == NULL || msgs == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        sums[i] = (mime_summary){.from = (char *)m[i].from,
                                 .to = (char *)m[i].to,
                                 .cc = (char *)m[i].cc,
                                 .reply_to = (char *)m[i].reply_to,
                                 .subject = (char *)m[i].subject,
                                 .date = "",
                                 .message_id = (char *)m[i].message_id,
                                 .snippet = "",
                                 .text = (char *)m[i].text,
                                 .attachments = m[i].attachments,
                                 .attachment_names = ""};
        size_t nr = 0, nt = 0;
        while (nr < 3 && m[i].rcpts[nr] != NULL)
            nr++;
        while (nt < 3 && m[i].tags[nt] != NULL)
            nt++;
        msgs[i] = (store_msg){.id = m[i].id,
                              .received_ms = m[i].received_ms,
                              .sender = "s@example.com",
                              .rcpts = m[i].rcpts,
                              .rcpt_count = nr,
                              .client_addr = "192.0.2.1",
                              .raw = raw,
                              .raw_len = m[i].size,
                              .summary = &sums[i],
                              .tags = nt > 0 ? m[i].tags : NULL,
                              .tag_count = nt};
    }
    char err[256] = "";
    CHECK(store_put_batch(st, msgs, n, err, sizeof(err)) == 0, "api put: %s", err);
    free(sums);
    free(msgs);
}

/* Builds a query by hand (the parser is search.c's business): "field:value" pairs. */
typedef struct qb {
    search_term terms[8];
    search_query q;
} qb;

static search_query *
qb_make(qb *b, size_t n, const search_term *terms)
{
    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < n && i < 8; i++)
        b->terms[i] = terms[i];
    b->q.terms = b->terms;
    b->q.count = n;
    return &b->q;
}
#define Q(b, ...)                                                                                  \
    qb_make((b), sizeof((search_term[]){__VA_ARGS__}) / sizeof(search_term),                       \
            (search_term[]){__VA_ARGS__})
#define T(f, v)                                                                                    \
    {                                                                                              \
        .field = (f), .value = (char *)(v)                                                         \
    }
#define NT(f, v)                                                                                   \
    {                                                                                              \
        .field = (f), .value = (char *)(v), .negated = true                                        \
    }
#define TN(f, n)                                                                                   \
    {                                                                                              \
        .field = (f), .number = (n)                                                                \
    }

typedef struct ids_seen {
    int n;
    char ids[512]; /* "a4 a3 ..." */
    char tags[8][64];
    char rcpts_json[8][160];
} ids_seen;

static bool
ids_cb(const store_row *row, void *ctx)
{
    ids_seen *s = ctx;
    size_t len = strlen(s->ids);
    snprintf(s->ids + len, sizeof(s->ids) - len, "%s%s", len ? " " : "", row->id);
    if (s->n < 8) {
        snprintf(s->tags[s->n], sizeof(s->tags[0]), "%s", row->tags);
        snprintf(s->rcpts_json[s->n], sizeof(s->rcpts_json[0]), "%s", row->rcpts_json);
    }
    s->n++;
    return true;
}

/* The ids store_search returns, space-separated, newest first ("-1" on error). */
static const char *
api_ids(store *st, const search_query *q, size_t start, size_t limit, ids_seen *s)
{
    memset(s, 0, sizeof(*s));
    long n = store_search(st, q, start, limit, ids_cb, s);
    if (n < 0)
        snprintf(s->ids, sizeof(s->ids), "-1");
    else if (n != s->n)
        snprintf(s->ids, sizeof(s->ids), "count mismatch");
    return s->ids;
}

#define SEARCH_IS(st, q, want)                                                                     \
    do {                                                                                           \
        ids_seen s_;                                                                               \
        const char *got_ = api_ids((st), (q), 0, 0, &s_);                                          \
        CHECK(strcmp(got_, (want)) == 0, "search at line %d: got '%s', want '%s'", __LINE__, got_, \
              (want));                                                                             \
    } while (0)

static void
test_api_search(store *st)
{
    qb b;
    ids_seen s;
    /* paging: newest first, start beyond the end, limit 0 = all */
    CHECK(strcmp(api_ids(st, NULL, 0, 0, &s), "a4 a3 a2 a1") == 0, "all: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, 1, 2, &s), "a3 a2") == 0, "start 1 limit 2: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, 2, 5, &s), "a2 a1") == 0, "limit past the end: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, 3, 0, &s), "a1") == 0, "start 3, limit 0: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, 4, 10, &s), "") == 0, "start at the end: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, 1000, 0, &s), "") == 0, "start beyond: %s", s.ids);
    CHECK(strcmp(api_ids(st, NULL, SIZE_MAX, SIZE_MAX, &s), "") == 0, "SIZE_MAX: %s", s.ids);
    CHECK(strcmp(api_ids(st, &(search_query){0}, 0, 1, &s), "a4") == 0, "count 0, limit 1");
    CHECK(store_search(st, NULL, 0, 0, stop_cb, NULL) == 1, "callback stops the search");

    /* row fields the API needs */
    api_ids(st, NULL, 0, 0, &s);
    CHECK(strcmp(s.tags[2], "Billing\nurgent") == 0, "a2 tags: [%s]", s.tags[2]);
    CHECK(strcmp(s.tags[1], "Billing") == 0, "a3's BILLING is the tag Billing: [%s]", s.tags[1]);
    CHECK(strcmp(s.tags[0], "") == 0, "a4 no tags: [%s]", s.tags[0]);
    CHECK(strcmp(s.rcpts_json[2],
                 "[\"carol@example.org\",\"Dave@Example.org\",\"secret@hidden.example\"]") == 0,
          "rcpts_json: %s", s.rcpts_json[2]);

    SEARCH_IS(st, Q(&b, T(SEARCH_FROM, "alice")), "a3 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_FROM, "ALICE@EXAMPLE")), "a3 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_TO, "carol")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_TO, "secret@hidden")), "a2");  /* envelope only */
    SEARCH_IS(st, Q(&b, T(SEARCH_TO, "odd \\\" quote")), "a3"); /* escaped in the JSON */
    SEARCH_IS(st, Q(&b, T(SEARCH_TO, "odd \" quote")), "");     /* the \ is part of it */
    SEARCH_IS(st, Q(&b, T(SEARCH_TO, "\",\"")), "");            /* no JSON syntax */
    SEARCH_IS(st, Q(&b, T(SEARCH_CC, "DAVE")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "secret")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "carol")), ""); /* in To */
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "dave")), "");  /* in Cc, other case */
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "odd")), "a3"); /* not in To */
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "eve")), "");   /* bare address in To */
    SEARCH_IS(st, Q(&b, T(SEARCH_BCC, "example")), "a3 a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_REPLY_TO, "noreply")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "report")), "a3 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "re: weekly")), "a3");
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "%")), "a2");  /* literal, not a wildcard */
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "_")), "a2");  /* literal, not a wildcard */
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "\\")), "a4"); /* the escape character itself */
    SEARCH_IS(st, Q(&b, T(SEARCH_SUBJECT, "'; DROP TABLE messages; --")), "");
    SEARCH_IS(st, Q(&b, T(SEARCH_MESSAGE_ID, "inv2")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_TAG, "billing")), "a3 a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_TAG, "URGENT")), "a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_TAG, "bill")), ""); /* exact, not contains */
    SEARCH_IS(st, Q(&b, T(SEARCH_TAG, "%")), "");
    SEARCH_IS(st, Q(&b, T(SEARCH_IS_TAGGED, NULL)), "a3 a2");
    SEARCH_IS(st, Q(&b, T(SEARCH_IS_UNREAD, NULL)), "a4 a3 a2 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_IS_READ, NULL)), "");
    SEARCH_IS(st, Q(&b, T(SEARCH_HAS_ATTACHMENT, NULL)), "a3 a2");
    SEARCH_IS(st, Q(&b, TN(SEARCH_BEFORE, 2000)), "a1");
    SEARCH_IS(st, Q(&b, TN(SEARCH_AFTER, 2000)), "a4 a3 a2");
    SEARCH_IS(st, Q(&b, TN(SEARCH_LARGER, 2000)), "a4");
    SEARCH_IS(st, Q(&b, TN(SEARCH_SMALLER, 100)), "a3");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "zebrafish")), "a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "ZEBRA")), "a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "invoice attached")), "a2"); /* a phrase */
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "attached invoice")), "");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "frank")), "a4"); /* addresses are indexed */
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "\"a OR b*")), "");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "!!!")), ""); /* nothing searchable */
    SEARCH_IS(st, Q(&b, NT(SEARCH_TEXT, "!!!")), "a4 a3 a2 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "zebrafish"), T(SEARCH_TEXT, "!!!")), "");
    /* negation, and combinations */
    SEARCH_IS(st, Q(&b, NT(SEARCH_FROM, "alice")), "a4 a2");
    SEARCH_IS(st, Q(&b, NT(SEARCH_HAS_ATTACHMENT, NULL)), "a4 a1");
    SEARCH_IS(st, Q(&b, NT(SEARCH_TEXT, "zebrafish")), "a4 a3 a2");
    SEARCH_IS(st, Q(&b, NT(SEARCH_TAG, "billing")), "a4 a1");
    SEARCH_IS(st, Q(&b, NT(SEARCH_IS_TAGGED, NULL)), "a4 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_FROM, "alice"), T(SEARCH_SUBJECT, "weekly")), "a3 a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_FROM, "alice"), T(SEARCH_HAS_ATTACHMENT, NULL)), "a3");
    SEARCH_IS(st, Q(&b, T(SEARCH_FROM, "alice"), NT(SEARCH_TEXT, "zebrafish")), "a3");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "numbers"), T(SEARCH_TEXT, "zebrafish")), "a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "numbers"), NT(SEARCH_TEXT, "zebrafish")), "");
    SEARCH_IS(st, Q(&b, TN(SEARCH_AFTER, 2000), TN(SEARCH_BEFORE, 4000), NT(SEARCH_TAG, "urgent")),
              "a3");
    /* paging a search */
    CHECK(strcmp(api_ids(st, Q(&b, TN(SEARCH_AFTER, 0)), 1, 2, &s), "a3 a2") == 0,
          "search page: %s", s.ids);

    /* thousands of terms: no "expression tree too large" */
    size_t many = 3000;
    search_term *terms = calloc(many, sizeof(*terms));
    if (terms == NULL)
        abort();
    for (size_t i = 0; i < many; i++)
        terms[i] = (search_term){.field = i % 3 == 0   ? SEARCH_FROM
                                          : i % 3 == 1 ? SEARCH_TEXT
                                                       : SEARCH_IS_UNREAD,
                                 .value = i % 3 == 2 ? NULL : (char *)"alice",
                                 .negated = false};
    search_query mq = {terms, many};
    SEARCH_IS(st, &mq, "a3 a1");
    for (size_t i = 0; i < many; i++)
        terms[i] = (search_term){.field = SEARCH_TEXT, .value = (char *)"zzz", .negated = true};
    SEARCH_IS(st, &mq, "a4 a3 a2 a1");
    free(terms);

    /* counts and latest */
    store_counts c;
    CHECK(store_mailbox_counts(st, &c) == 0 && c.total == 4 && c.unread == 4, "mailbox %ld/%ld",
          c.total, c.unread);
    CHECK(store_search_counts(st, Q(&b, T(SEARCH_HAS_ATTACHMENT, NULL)), &c) == 0 && c.total == 2 &&
              c.unread == 2,
          "search counts %ld/%ld", c.total, c.unread);
    CHECK(store_search_counts(st, NULL, &c) == 0 && c.total == 4, "counts of all");
    CHECK(store_search_counts(st, Q(&b, T(SEARCH_TEXT, "?")), &c) == 0 && c.total == 0,
          "counts of nothing");
    CHECK(store_search_counts(st, Q(&b, NT(SEARCH_TEXT, "?")), &c) == 0 && c.total == 4 &&
              c.unread == 4,
          "counts of not nothing");
    char *id = store_latest_id(st, NULL);
    CHECK(id != NULL && strcmp(id, "a4") == 0, "latest %s", id ? id : "(null)");
    free(id);
    id = store_latest_id(st, Q(&b, T(SEARCH_FROM, "bob")));
    CHECK(id != NULL && strcmp(id, "a2") == 0, "latest from bob %s", id ? id : "(null)");
    free(id);
    CHECK(store_latest_id(st, Q(&b, T(SEARCH_FROM, "nobody"))) == NULL, "latest of none");
}

static void
test_api_read(store *st, const char *path)
{
    qb b;
    store_counts c;
    int64_t v0 = store_change_counter(st);
    store *rd = store_open(path, STORE_READER, (char[256]){0}, 256);
    CHECK(rd != NULL, "reader");
    int64_t r0 = store_change_counter(rd);
    CHECK(v0 >= 0 && r0 >= 0, "change counters %lld %lld", (long long)v0, (long long)r0);

    const char *ids[] = {"a1", "nope", "a1", NULL};
    CHECK(store_set_read(st, ids, 4, NULL, true) == 1, "read a1 once");
    CHECK(store_change_counter(st) > v0, "own change counted");
    CHECK(store_change_counter(rd) > r0, "the reader sees the writer's commit");
    CHECK(store_mailbox_counts(st, &c) == 0 && c.total == 4 && c.unread == 3, "unread 3: %ld",
          c.unread);
    SEARCH_IS(st, Q(&b, T(SEARCH_IS_READ, NULL)), "a1");
    SEARCH_IS(st, Q(&b, T(SEARCH_IS_UNREAD, NULL)), "a4 a3 a2");
    CHECK(store_search_counts(st, Q(&b, T(SEARCH_FROM, "alice")), &c) == 0 && c.total == 2 &&
              c.unread == 1,
          "search counts with one read: %ld/%ld", c.total, c.unread);
    CHECK(store_set_read(st, NULL, 0, Q(&b, T(SEARCH_FROM, "alice")), true) == 1,
          "read by query: only a3 changes");
    CHECK(store_set_read(rd, NULL, 0, NULL, true) == 2, "a reader marks all read");
    CHECK(store_mailbox_counts(st, &c) == 0 && c.unread == 0, "unread 0: %ld", c.unread);
    int64_t v1 = store_change_counter(st);
    CHECK(v1 > v0, "the writer sees the reader's commit");
    CHECK(store_set_read(st, NULL, 0, &(search_query){0}, true) == 0, "nothing left to read");
    CHECK(store_set_read(st, NULL, 0, NULL, false) == 4, "all unread");
    CHECK(store_mailbox_counts(rd, &c) == 0 && c.unread == 4, "reader: unread 4");
    CHECK(store_set_read(st, (const char *[]){"a2"}, 1, NULL, false) == 0, "already unread");
    CHECK(store_set_read(st, NULL, 0, Q(&b, T(SEARCH_TEXT, "!")), true) == 0, "query of none");
    store_close(rd);
}

typedef struct tag_list {
    char text[512]; /* "name=count name=count" */
} tag_list;

static bool
tag_cb(const char *tag, long count, void *ctx)
{
    tag_list *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s%s=%ld", len ? " " : "", tag, count);
    return true;
}

static const char *
tags_now(store *st, tag_list *l)
{
    memset(l, 0, sizeof(*l));
    if (store_tags(st, tag_cb, l) < 0)
        snprintf(l->text, sizeof(l->text), "-1");
    return l->text;
}

static void
test_api_tags(store *st, const char *path)
{
    tag_list l;
    store_row row;
    CHECK(strcmp(tags_now(st, &l), "Billing=2 urgent=1") == 0, "tags: %s", l.text);
    const char *a1[] = {"a1"};
    const char *t1[] = {"  zeta ", "Alpha", "alpha", "", " \t ", "two\nlines"};
    CHECK(store_set_tags(st, a1, 1, t1, 6) == 1, "tag a1");
    CHECK(store_get(st, "a1", &row) == 0 && strcmp(row.tags, "Alpha\ntwo lines\nzeta") == 0,
          "a1 tags: [%s]", row.tags);
    store_row_cleanup(&row);
    CHECK(strcmp(tags_now(st, &l), "Alpha=1 Billing=2 two lines=1 urgent=1 zeta=1") == 0,
          "tags: %s", l.text);
    CHECK(store_set_tags(st, a1, 1, t1, 6) == 0, "same tags again: no change");
    CHECK(store_set_tags(st, (const char *[]){"nope"}, 1, t1, 6) == 0, "unknown id");
    const char *t2[] = {"BILLING"};
    const char *a12[] = {"a1", "a2", "a9"};
    CHECK(store_set_tags(st, a12, 3, t2, 1) == 2, "replace on a1 and a2");
    CHECK(strcmp(tags_now(st, &l), "Billing=3") == 0, "old tags gone: %s", l.text);
    CHECK(store_set_tags(st, a12, 3, NULL, 0) == 2, "clear");
    CHECK(strcmp(tags_now(st, &l), "Billing=1") == 0, "cleared: %s", l.text);
    /* a tag nobody has any more is gone; the next spelling is the new name */
    CHECK(store_set_tags(st, (const char *[]){"a3"}, 1, (const char *[]){"billing"}, 1) == 1,
          "rename by case");
    CHECK(strcmp(tags_now(st, &l), "billing=1") == 0, "renamed: %s", l.text);
    side_query_is(path, "SELECT count(*) FROM tags", "1");
    /* put a2 back as it was for the delete tests */
    CHECK(store_set_tags(st, (const char *[]){"a2"}, 1, (const char *[]){"Urgent", "billing"}, 2) ==
              1,
          "a2 retagged");
}

typedef struct deleted {
    int n;
    char ids[256];
} deleted;

static void
deleted_cb(const char *id, void *ctx)
{
    deleted *d = ctx;
    size_t len = strlen(d->ids);
    snprintf(d->ids + len, sizeof(d->ids) - len, "%s%s", len ? " " : "", id);
    d->n++;
}

/* The FTS index, counters and tag links agree with the messages. */
static void
api_consistent(const char *path, const char *total)
{
    side_query_is(path, "SELECT count(*) FROM messages", total);
    side_query_is(path, "SELECT count(*) FROM messages_fts", total);
    side_query_is(path, "SELECT total FROM mailbox_counts", total);
    side_query_is(path,
                  "SELECT (SELECT unread FROM mailbox_counts) ="
                  " (SELECT count(*) FROM messages WHERE read = 0)",
                  "1");
    side_query_is(
        path, "SELECT count(*) FROM message_tags WHERE seq NOT IN (SELECT seq FROM messages)", "0");
    side_query_is(path,
                  "SELECT count(*) FROM tags WHERE count <>"
                  " (SELECT count(*) FROM message_tags WHERE tag_id = tags.id) OR count <= 0",
                  "0");
}

static void
test_api_delete(store *st, const char *path)
{
    qb b;
    deleted d = {0};
    tag_list l;
    api_consistent(path, "4");
    CHECK(store_delete_matching(st, (const char *[]){"a1", "nope", "a1"}, 3, NULL, deleted_cb,
                                &d) == 1 &&
              strcmp(d.ids, "a1") == 0,
          "delete by id: %s", d.ids);
    api_consistent(path, "3");
    SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "zebrafish")), "");
    memset(&d, 0, sizeof(d));
    CHECK(store_delete_matching(st, NULL, 0, Q(&b, T(SEARCH_TAG, "URGENT")), deleted_cb, &d) == 1 &&
              strcmp(d.ids, "a2") == 0,
          "delete by tag: %s", d.ids);
    api_consistent(path, "2");
    CHECK(strcmp(tags_now(st, &l), "billing=1") == 0, "tags after delete: %s", l.text);
    memset(&d, 0, sizeof(d));
    CHECK(store_delete_matching(st, NULL, 0, Q(&b, T(SEARCH_TEXT, "nothing")), deleted_cb, &d) ==
                  1 &&
              strcmp(d.ids, "a3") == 0,
          "delete by text: %s", d.ids);
    api_consistent(path, "1");
    CHECK(strcmp(tags_now(st, &l), "") == 0, "no tags left: %s", l.text);
    CHECK(store_delete_matching(st, NULL, 0, Q(&b, T(SEARCH_FROM, "nobody")), NULL, NULL) == 0,
          "delete none");
    memset(&d, 0, sizeof(d));
    CHECK(store_delete_matching(st, NULL, 0, NULL, deleted_cb, &d) == 1 && strcmp(d.ids, "a4") == 0,
          "delete all: %s", d.ids);
    api_consistent(path, "0");
    store_counts c;
    CHECK(store_mailbox_counts(st, &c) == 0 && c.total == 0 && c.unread == 0, "empty counts");
    CHECK(store_latest_id(st, NULL) == NULL, "no latest");
}

/* A search run from inside the row callback of the same search on the same handle. */
typedef struct nested_ctx {
    store *st;
    const search_query *q;
    int outer, inner_ok;
} nested_ctx;

static bool
nested_cb(const store_row *row, void *ctx)
{
    (void)row;
    nested_ctx *n = ctx;
    ids_seen s;
    n->outer++;
    n->inner_ok += strcmp(api_ids(n->st, n->q, 0, 0, &s), "a4 a3 a2 a1") == 0;
    return true;
}

/* The read statements are kept prepared between calls (sqlite_stmts.c): a kept one holds
   no snapshot (later commits show, a TRUNCATE checkpoint is not blocked), the same query
   nested in itself gets a statement of its own, and more query shapes than the cache
   holds, over and over, answer as a fresh handle does. */
static void
test_api_stmt_cache(store *st, const char *path)
{
    char err[256] = "";
    store *rd = store_open(path, STORE_READER, err, sizeof(err));
    if (!CHECK(rd != NULL, "cache reader: %s", err))
        return;
    ids_seen s;
    store_counts c0, c1;
    CHECK(store_mailbox_counts(rd, &c0) == 0 && c0.total == (long)API_N, "counts %ld", c0.total);
    CHECK(strcmp(api_ids(rd, NULL, 0, 0, &s), "a4 a3 a2 a1") == 0, "list: %s", s.ids);
    side_query_is(path, "PRAGMA wal_checkpoint(TRUNCATE)", "0"); /* busy = 0 */
    api_msg m = api_msgs[0];
    m.id = "cache1";
    m.received_ms = 99999;
    api_put(st, &m, 1);
    CHECK(store_mailbox_counts(rd, &c1) == 0 && c1.total == c0.total + 1,
          "a kept statement sees the next commit: %ld -> %ld", c0.total, c1.total);
    CHECK(strcmp(api_ids(rd, NULL, 0, 0, &s), "cache1 a4 a3 a2 a1") == 0, "list after: %s", s.ids);
    CHECK(store_delete_matching(st, (const char *[]){"cache1"}, 1, NULL, NULL, NULL) == 1,
          "cache1 deleted");

    nested_ctx n = {rd, NULL, 0, 0};
    CHECK(store_search(rd, NULL, 0, 0, nested_cb, &n) == 4 && n.outer == 4 && n.inner_ok == 4,
          "nested: %d rows, %d inner lists right", n.outer, n.inner_ok);

    /* from:, subject: and to: terms each add a condition of their own (text terms would
       merge into one MATCH), so k = 1..8 of them make 24 texts; the second round binds
       other values, which match other messages */
    static const search_field fields[] = {SEARCH_FROM, SEARCH_SUBJECT, SEARCH_TO};
    static const char *const values[2][3] = {{"alice", "report", "example.com"},
                                             {"example.com", "invoice", "carol"}};
    int shapes = 0, same = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t f = 0; f < 3; f++) {
            for (size_t k = 1; k <= 8; k++) { /* 24 shapes > SQLITE_STMT_CACHE */
                search_term terms[8];
                for (size_t i = 0; i < k; i++)
                    terms[i] = (search_term){.field = fields[f], .value = (char *)values[round][f]};
                qb b;
                const search_query *q = qb_make(&b, k, terms);
                store *fresh = store_open(path, STORE_READER, err, sizeof(err));
                ids_seen want;
                if (fresh != NULL)
                    api_ids(fresh, q, 0, 0, &want);
                store_close(fresh);
                shapes++;
                same += fresh != NULL && strcmp(api_ids(rd, q, 0, 0, &s), want.ids) == 0 &&
                        strcmp(want.ids, "") != 0 && strcmp(want.ids, "-1") != 0;
            }
        }
    }
    CHECK(same == shapes, "%d of %d query shapes answer as on a fresh handle", same, shapes);
    store_close(rd);
}

static int bulk_seen;
static void
bulk_cb(const char *id, void *ctx)
{
    (void)ctx;
    bulk_seen += id != NULL;
}

typedef struct lister_ctx {
    const char *path;
    volatile bool stop;
    int errors;
    long reads;
} lister_ctx;

static bool
count_cb(const store_row *row, void *ctx)
{
    (void)row;
    (*(long *)ctx)++;
    return true;
}

/* The HTTP API's list on its own handle while another deletes in chunks: never an
   error, never more than a page, counts that only go down. */
static void *
lister_thread(void *arg)
{
    lister_ctx *l = arg;
    char err[256];
    store *rd = store_open(l->path, STORE_READER, err, sizeof(err));
    if (rd == NULL) {
        l->errors++;
        return NULL;
    }
    long last = -1;
    while (!l->stop || l->reads == 0) {
        long rows = 0;
        store_counts c;
        if (store_search(rd, NULL, 10, 50, count_cb, &rows) < 0 || rows > 50 ||
            store_mailbox_counts(rd, &c) != 0 || (last >= 0 && c.total > last))
            l->errors++;
        last = c.total;
        l->reads++;
    }
    store_close(rd);
    return NULL;
}

/* More rows than one chunk of a bulk change (STORE_CHUNK_ROWS, 2000). */
static void
test_api_bulk(store *st, const char *path)
{
    enum { N = 4500 };
    api_msg *m = calloc(N, sizeof(*m));
    char(*ids)[16] = calloc(N, sizeof(*ids));
    if (m == NULL || ids == NULL)
        abort();
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "bulk%d", i);
        m[i] = api_msgs[i % 2];
        m[i].id = ids[i];
        m[i].received_ms = 10000 + i;
    }
    api_put(st, m, N);
    qb b;
    store_counts c;
    CHECK(store_set_read(st, NULL, 0, NULL, true) == N, "bulk read all");
    CHECK(store_mailbox_counts(st, &c) == 0 && c.total == N && c.unread == 0, "bulk counts");
    CHECK(store_set_read(st, NULL, 0, Q(&b, T(SEARCH_FROM, "bob")), false) == N / 2,
          "bulk unread half");
    CHECK(store_search_counts(st, Q(&b, T(SEARCH_IS_UNREAD, NULL)), &c) == 0 && c.total == N / 2 &&
              c.unread == N / 2,
          "bulk unread count %ld", c.total);
    bulk_seen = 0;
    CHECK(store_delete_matching(st, NULL, 0, Q(&b, T(SEARCH_TEXT, "zebrafish")), bulk_cb, NULL) ==
                  N / 2 + N % 2 &&
              bulk_seen == N / 2 + N % 2,
          "bulk delete by text: %d told", bulk_seen);
    char want[16];
    snprintf(want, sizeof(want), "%d", N / 2);
    api_consistent(path, want);
    bulk_seen = 0;
    lister_ctx lc = {.path = path};
    pthread_t t;
    pthread_create(&t, NULL, lister_thread, &lc);
    CHECK(store_delete_matching(st, NULL, 0, NULL, bulk_cb, NULL) == N / 2 && bulk_seen == N / 2,
          "bulk delete all");
    lc.stop = true;
    pthread_join(t, NULL);
    CHECK(lc.errors == 0 && lc.reads > 0, "listing beside the delete: %d errors in %ld reads",
          lc.errors, lc.reads);
    api_consistent(path, "0");
    free(m);
    free(ids);
}

static void
test_api(const char *dir)
{
    char *path = path_in(dir, "api.db");
    char err[256] = "";
    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    if (!CHECK(st != NULL, "api open: %s", err)) {
        free(path);
        return;
    }
    CHECK(strcmp(store_path(st), path) == 0, "store_path: %s", store_path(st));
    int64_t changes = store_change_counter(st);
    api_put(st, api_msgs, API_N);
    CHECK(store_change_counter(st) > changes, "the writer's own puts counted");
    CHECK(store_file_size(st) > 0, "file size %lld", (long long)store_file_size(st));
    test_api_search(st);
    test_api_stmt_cache(st, path);
    test_api_read(st, path);
    test_api_tags(st, path);
    test_api_delete(st, path);
    test_api_bulk(st, path);
    store_close(st);
    free(path);
}

/* A schema-2 database (the release before the HTTP API) as it was: migrated to 3 by the
   writer, keeping its messages, with counts that match them. */
static void
test_migrate_v2(const char *dir)
{
    char *path = path_in(dir, "v2.db");
    char err[256] = "";
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "create v2");
    exec_ok(db, "PRAGMA journal_mode = WAL");
    exec_ok(db, schema_v1);
    exec_ok(db, schema_v2);
    exec_ok(db, "INSERT INTO messages (id, received_ms, sender, rcpts, client_addr, size, raw,"
                " subject, read, tls_peer) VALUES"
                " ('o1', 1, 'a@x', '[\"b@y\"]', '', 3, X'616263', 'first', 1, 'CN=x'),"
                " ('o2', 2, 'a@x', '[\"c@y\"]', '', 3, X'616263', 'second', 0, NULL)");
    exec_ok(db, "INSERT INTO messages_fts (rowid, subject, addresses, body, attachment_names)"
                " SELECT seq, subject, sender, 'old body', '' FROM messages");
    exec_ok(db, "PRAGMA user_version = 2");
    sqlite3_close(db);

    store *rd = store_open(path, STORE_READER, err, sizeof(err));
    CHECK(rd != NULL, "reader on schema 2: %s", err);
    store_counts c;
    tag_list l;
    qb b;
    if (rd != NULL) {
        CHECK(store_mailbox_counts(rd, &c) == 0 && c.total == 2 && c.unread == 1,
              "schema-2 counts without the counter: %ld/%ld", c.total, c.unread);
        SEARCH_IS(rd, Q(&b, T(SEARCH_IS_TAGGED, NULL)), "");
        SEARCH_IS(rd, Q(&b, T(SEARCH_SUBJECT, "first")), "o1");
        CHECK(strcmp(tags_now(rd, &l), "") == 0, "no tags on schema 2");
    }
    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    if (CHECK(st != NULL, "writer migrates schema 2: %s", err)) {
        side_query_is(path, "PRAGMA user_version", "3");
        CHECK(store_mailbox_counts(st, &c) == 0 && c.total == 2 && c.unread == 1,
              "migrated counts: %ld/%ld", c.total, c.unread);
        SEARCH_IS(st, Q(&b, T(SEARCH_TEXT, "old body")), "o2 o1");
        SEARCH_IS(st, Q(&b, T(SEARCH_IS_READ, NULL)), "o1");
        CHECK(store_set_tags(st, (const char *[]){"o1"}, 1, (const char *[]){"kept"}, 1) == 1,
              "tag a migrated message");
        SEARCH_IS(st, Q(&b, T(SEARCH_TAG, "kept")), "o1");
        api_consistent(path, "2");
        char *raw = NULL;
        size_t len = 0;
        CHECK(store_get_raw(st, "o1", &raw, &len) == 0 && len == 3 && memcmp(raw, "abc", 3) == 0,
              "raw moved by the migration");
        free(raw);
        side_query_is(path, "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'raw'",
                      "0");
        store_close(st);
    }
    if (rd != NULL) { /* opened before the migration: goes on as schema 2 */
        SEARCH_IS(rd, Q(&b, T(SEARCH_SUBJECT, "second")), "o2");
        char *raw = NULL;
        size_t len = 0;
        CHECK(store_get_raw(rd, "latest", &raw, &len) == 0 && len == 3 &&
                  memcmp(raw, "abc", 3) == 0,
              "a reader from before the migration finds raw in its new place");
        free(raw);
    }
    store_close(rd);
    free(path);
}

/* The checkpointer thread copies the WAL into the database file while the writer is
   idle: past 1000 WAL pages and far below the writer's own catch-up (16,000 pages), the
   main file must grow without another commit. Its connection once did nothing (SQLite
   opens a connection's WAL only on its first read), and every checkpoint fell to the
   writer. */
static void
test_checkpointer(const char *dir)
{
    char *path = path_in(dir, "checkpoint.db");
    char err[256] = "";
    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    if (!CHECK(st != NULL, "open for the checkpointer: %s", err)) {
        free(path);
        return;
    }
    enum { RAW = 1024 * 1024, MESSAGES = 6 }; /* 6 MiB: some 1,500 pages of 4 KiB */
    char *raw = malloc(RAW);
    if (raw == NULL)
        abort();
    memset(raw, 'x', RAW);
    const char *rcpt = "bob@example.net";
    bool stored = true;
    for (int i = 0; i < MESSAGES; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ckpt%d", i);
        store_msg m = {.id = id,
                       .received_ms = 1700000000000,
                       .sender = "a@example.org",
                       .rcpts = &rcpt,
                       .rcpt_count = 1,
                       .client_addr = "192.0.2.1",
                       .raw = raw,
                       .raw_len = RAW};
        stored = store_put_batch(st, &m, 1, err, sizeof(err)) == 0 && stored;
    }
    CHECK(stored, "store 6 MiB: %s", err);
    struct stat sb = {0};
    for (int i = 0; i < 100 && (stat(path, &sb) != 0 || sb.st_size < (off_t)RAW * 4); i++)
        usleep(50 * 1000); /* at most 5 s */
    CHECK(sb.st_size >= (off_t)RAW * 4, "the thread checkpointed: database file %lld octets",
          (long long)sb.st_size);
    store_close(st);
    free(raw);
    free(path);
}

int
main(void)
{
    char dir[] = "/tmp/store_selftest.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    mime_init();
    sqlite3_auto_extension((void (*)(void))capture_db_cb);
    test_mime();
    test_mime_garbage();

    char *path = path_in(dir, "mail.db");
    char err[256] = "";
    captured_db = NULL;
    store *st = store_open(path, STORE_WRITER, err, sizeof(err));
    sqlite3 *db = captured_db;
    if (!CHECK(st != NULL, "open writer: %s", err))
        return 1;
    fixture f;
    fixture_init(&f, "m");
    test_put_list_search(st, &f);
    test_get(st);
    fixture_cleanup(&f);
    test_batch_failures(st, db, path);
    test_concurrent_reader(st, path);
    test_prune_delete(st, path);
    store_close(st);

    /* reopening runs no migration twice and keeps what is there */
    st = store_open(path, STORE_WRITER, err, sizeof(err));
    CHECK(st != NULL && store_count(st) == 0, "reopen: %s", err);
    store_close(st);
    test_integrity(path);
    test_refusals(dir, path);
    test_corrupt_pages(dir);
    test_migrate_v1(dir);
    test_migrate_v2(dir);
    test_api(dir);
    test_checkpointer(dir);
    test_memory();
    sqlite3_reset_auto_extension();

    printf("store selftest: %d passed, %d failed\n", passed, failed);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(path);
    return failed == 0 ? 0 : 1;
}
