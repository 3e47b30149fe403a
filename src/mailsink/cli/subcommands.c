/*
 * subcommands.c - list, show, raw, delete and wait over a reader handle on the store.
 *
 * Everything printed that came from a message or a client (addresses, headers, names,
 * the snippet) is untrusted: in text output, control characters, C1 controls and bidi
 * overrides become '?' so that a message cannot move the cursor, retitle the terminal or
 * reorder what the reader sees; JSON output is valid UTF-8 (invalid bytes become
 * U+FFFD) with Jansson's escaping. raw is the exception: it prints the stored bytes
 * exactly, because that is its job.
 */
#include "mailsink/cli/subcommands.h"

#include "mailsink/store/store.h"

#include <smtpd.h>

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

/* ---- text that came from a message -------------------------------------------------- */

/* One UTF-8 sequence at p: its length, or 0 when invalid (overlong, surrogate, beyond
   U+10FFFF, cut short). */
static size_t
utf8_next(const unsigned char *p, uint32_t *cp)
{
    uint32_t c = p[0], min;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        c &= 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

/* What a terminal would act on instead of showing: C0 and C1 controls, DEL, and the
   bidi embeddings, overrides and isolates ("Trojan Source", CVE-2021-42574). */
static bool
cp_is_unsafe(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Columns s takes once made safe (one per code point: good enough for a table). */
static size_t
text_cols(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cols = 0;
    uint32_t c;

    while (*p) {
        size_t n = utf8_next(p, &c);
        p += n ? n : 1;
        cols++;
    }
    return cols;
}

/* Print at most max columns of s, made safe. */
static void
text_emit(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c;

    for (size_t cols = 0; *p && cols < max; cols++) {
        size_t n = utf8_next(p, &c);
        if (n == 0 || cp_is_unsafe(c)) {
            fputc('?', f);
            p += n ? n : 1;
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
}

/* A table cell: s made safe, cut to width with "..." and, with pad, padded to it.
   width 0: all of s. */
static void
text_cell(FILE *f, const char *s, size_t width, bool pad)
{
    size_t cols;

    s = s ? s : "";
    cols = text_cols(s);
    if (width == 0) {
        text_emit(f, s, cols);
        return;
    }
    if (cols > width && width > 3) {
        text_emit(f, s, width - 3);
        fputs("...", f);
        return;
    }
    text_emit(f, s, width);
    for (; pad && cols < width; cols++)
        fputc(' ', f);
}

/* A JSON string for s: Jansson refuses invalid UTF-8, and a message may hold any bytes,
   so those become U+FFFD. NULL only when out of memory. */
static json_t *
json_text(const char *s)
{
    const unsigned char *p;
    json_t *j;
    char *fixed;
    size_t n = 0;
    uint32_t c;

    s = s ? s : "";
    if ((j = json_string(s)))
        return j;
    if (!(fixed = malloc(3 * strlen(s) + 1))) /* each bad byte grows to 3 */
        return NULL;
    for (p = (const unsigned char *)s; *p;) {
        size_t k = utf8_next(p, &c);
        if (k == 0) {
            memcpy(fixed + n, "\xEF\xBF\xBD", 3);
            n += 3;
            p++;
        } else {
            memcpy(fixed + n, p, k);
            n += k;
            p += k;
        }
    }
    fixed[n] = '\0';
    j = json_string(fixed);
    free(fixed);
    return j;
}

/* s split at sep into a JSON array of strings ("" gives []). */
static json_t *
json_split(const char *s, const char *sep)
{
    json_t *a = json_array();
    size_t seplen = strlen(sep);

    s = s ? s : "";
    while (a && *s) {
        const char *end = strstr(s, sep);
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char *part = strndup(s, len);
        if (!part || json_array_append_new(a, json_text(part)) < 0) {
            free(part);
            json_decref(a);
            return NULL;
        }
        free(part);
        s += len;
        if (end)
            s += seplen;
    }
    return a;
}

/* ---- facts ------------------------------------------------------------------------ */

/* RFC 3339 in UTC, with milliseconds or without. */
static void
time_format(int64_t ms, bool frac, char *buf, size_t size)
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    time_t t;
    struct tm tm;
    size_t n;

    if (rem < 0) {
        rem += 1000;
        sec--;
    }
    t = (time_t)sec;
    if (!gmtime_r(&t, &tm) || (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(buf, size, "?");
        return;
    }
    if (frac)
        snprintf(buf + n, size - n, ".%03dZ", (int)rem);
    else
        snprintf(buf + n, size - n, "Z");
}

static json_t *
findings_json(unsigned bits)
{
    json_t *a = json_array();
    char unknown[32];

    for (unsigned b = 0; a && b < 32; b++) {
        const char *name;
        if (!(bits & (1u << b)))
            continue;
        name = smtpd_finding_name(1u << b);
        if (!name) { /* a newer library's finding: still say that something was seen */
            snprintf(unknown, sizeof unknown, "finding-%u", b);
            name = unknown;
        }
        if (json_array_append_new(a, json_string(name)) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static void
findings_print(FILE *f, unsigned bits)
{
    bool first = true;

    for (unsigned b = 0; b < 32; b++) {
        const char *name;
        if (!(bits & (1u << b)))
            continue;
        name = smtpd_finding_name(1u << b);
        fprintf(f, "%s", first ? "" : ", ");
        if (name)
            fputs(name, f);
        else
            fprintf(f, "finding-%u", b);
        first = false;
    }
    fputs(first ? "none\n" : "\n", f);
}

/* A fact that may be missing: null rather than "", so that a test can tell "no TLS"
   from a value. */
static json_t *
json_text_or_null(const char *s)
{
    return s && *s ? json_text(s) : json_null();
}

static json_t *
row_json(const store_row *r)
{
    const mime_summary *m = &r->summary;
    json_t *o = json_object();
    char when[48];
    int bad = 0;

    time_format(r->received_ms, true, when, sizeof when);
    bad |= json_object_set_new(o, "id", json_text(r->id));
    bad |= json_object_set_new(o, "received", json_string(when));
    bad |= json_object_set_new(o, "sender", json_text(r->sender));
    bad |= json_object_set_new(o, "recipients", json_split(r->rcpts, ", "));
    bad |= json_object_set_new(o, "client", json_text(r->client_addr));
    bad |= json_object_set_new(o, "helo", json_text(r->helo));
    bad |= json_object_set_new(o, "tls_version", json_text_or_null(r->tls_version));
    bad |= json_object_set_new(o, "tls_cipher", json_text_or_null(r->tls_cipher));
    bad |= json_object_set_new(o, "tls_peer", json_text_or_null(r->tls_peer));
    bad |= json_object_set_new(o, "auth_user", json_text_or_null(r->auth_user));
    bad |= json_object_set_new(o, "from", json_text(m->from));
    bad |= json_object_set_new(o, "to", json_text(m->to));
    bad |= json_object_set_new(o, "cc", json_text(m->cc));
    bad |= json_object_set_new(o, "reply_to", json_text(m->reply_to));
    bad |= json_object_set_new(o, "subject", json_text(m->subject));
    bad |= json_object_set_new(o, "date", json_text(m->date));
    bad |= json_object_set_new(o, "message_id", json_text(m->message_id));
    bad |= json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    bad |= json_object_set_new(o, "read", json_boolean(r->read));
    bad |= json_object_set_new(o, "findings", findings_json(r->findings));
    bad |= json_object_set_new(o, "attachments", json_integer(m->attachments));
    bad |= json_object_set_new(o, "attachment_names", json_split(m->attachment_names, "\n"));
    bad |= json_object_set_new(o, "snippet", json_text(m->snippet));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* JSON on stdout, one value and a newline. */
static int
json_print(json_t *j)
{
    if (!j) {
        fprintf(stderr, "mailsink: out of memory\n");
        return EXIT_RUNTIME;
    }
    if (json_dumpf(j, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF) {
        json_decref(j);
        fprintf(stderr, "mailsink: cannot write to stdout\n");
        return EXIT_RUNTIME;
    }
    json_decref(j);
    return EXIT_OK;
}

static int
stdout_flush(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mailsink: cannot write to stdout: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* ---- the store ------------------------------------------------------------------------ */

/* The subcommands read a database the server wrote; they never create one (a reader that
   created an empty file would hide a wrong --db). */
static store *
store_open_existing(const config *c, char *err, size_t errsize)
{
    if (access(c->db_path, F_OK) != 0) {
        if (errno == ENOENT)
            snprintf(err, errsize, "no database at %s (no mail stored yet, or another --db?)",
                     c->db_path);
        else
            snprintf(err, errsize, "cannot open database %s: %s", c->db_path, strerror(errno));
        return NULL;
    }
    return store_open(c->db_path, STORE_READER, err, errsize);
}

static bool
db_is_memory(const config *c)
{
    if (strcmp(c->db_path, ":memory:") != 0)
        return false;
    fprintf(stderr, "mailsink: no database with --db :memory:\n");
    return true;
}

static store *
store_open_or_say(const config *c)
{
    char err[512];
    store *st = store_open_existing(c, err, sizeof err);

    if (!st)
        fprintf(stderr, "mailsink: %s\n", err);
    return st;
}

static void
no_message(const char *id)
{
    fputs("mailsink: no message ", stderr);
    text_cell(stderr, id, 0, false);
    fputc('\n', stderr);
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct list_ctx {
    json_t *array; /* --json */
    bool header_done;
    bool failed;
} list_ctx;

static bool
list_row_cb(const store_row *r, void *arg)
{
    list_ctx *x = arg;
    const mime_summary *m = &r->summary;
    /* the header From is what a person recognises; the envelope when there is none */
    const char *from = m->from && *m->from ? m->from : r->sender && *r->sender ? r->sender : "<>";
    char when[48];

    if (x->array) {
        if (json_array_append_new(x->array, row_json(r)) < 0)
            x->failed = true;
        return !x->failed;
    }
    if (!x->header_done) {
        printf("%-18s  %-20s  %-28s  %-28s  %s\n", "ID", "RECEIVED", "FROM", "TO", "SUBJECT");
        x->header_done = true;
    }
    time_format(r->received_ms, false, when, sizeof when);
    text_cell(stdout, r->id, 18, true);
    printf("  %-20s  ", when);
    text_cell(stdout, from, 28, true);
    fputs("  ", stdout);
    text_cell(stdout, m->to && *m->to ? m->to : r->rcpts, 28, true);
    fputs("  ", stdout);
    text_cell(stdout, m->subject, 60, false);
    fputc('\n', stdout);
    return !ferror(stdout);
}

static int
cmd_list(const config *c, store *st)
{
    list_ctx x = {0};
    long n;

    if (c->json && !(x.array = json_array())) {
        fprintf(stderr, "mailsink: out of memory\n");
        return EXIT_RUNTIME;
    }
    n = store_list(st, c->arg, 0, list_row_cb, &x); /* limit 0: all (sqlite.c) */
    if (n < 0 || x.failed) {
        json_decref(x.array);
        if (c->arg && *c->arg)
            fprintf(stderr,
                    "mailsink: list: cannot search for '%s' in %s (not a valid "
                    "search?)\n",
                    c->arg, c->db_path);
        else
            fprintf(stderr, "mailsink: list: cannot read %s\n", c->db_path);
        return EXIT_RUNTIME;
    }
    if (x.array)
        return json_print(x.array);
    return stdout_flush();
}

/* ---- show ------------------------------------------------------------------------------ */

static void
show_field(const char *label, const char *value, bool always)
{
    if (!value || !*value) {
        if (always)
            printf("%s\n", label);
        return;
    }
    printf("%-13s", label);
    text_cell(stdout, value, 0, false);
    fputc('\n', stdout);
}

static void
show_attachments(const mime_summary *m)
{
    const char *names = m->attachment_names ? m->attachment_names : "";

    printf("%-13s%u", "Attachments:", m->attachments);
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, "\n");
        char *one = strndup(p, len);
        fputs(p == names ? ": " : ", ", stdout);
        text_cell(stdout, one ? one : "?", 0, false);
        free(one);
        p += len;
        if (*p == '\n')
            p++;
    }
    fputc('\n', stdout);
}

/* "TLS: TLSv1.3, TLS_AES_256_GCM_SHA384" or "TLS: none"; the client certificate and
   the AUTH user only when there was one. */
static void
show_tls_auth(const store_row *r)
{
    bool tls = r->tls_version && *r->tls_version;

    printf("%-13s", "TLS:");
    if (tls) {
        text_cell(stdout, r->tls_version, 0, false);
        if (r->tls_cipher && *r->tls_cipher) {
            fputs(", ", stdout);
            text_cell(stdout, r->tls_cipher, 0, false);
        }
        fputc('\n', stdout);
    } else {
        fputs("none\n", stdout);
    }
    show_field("Client cert:", r->tls_peer, false);
    show_field("AUTH user:", r->auth_user, false);
}

static void
show_text(const store_row *r)
{
    const mime_summary *m = &r->summary;
    char when[48];

    time_format(r->received_ms, true, when, sizeof when);
    show_field("ID:", r->id, true);
    show_field("Received:", when, true);
    show_field("Sender:", r->sender && *r->sender ? r->sender : "<>", true);
    show_field("Recipients:", r->rcpts, true);
    show_field("Client:", r->client_addr, true);
    show_field("HELO:", r->helo, false);
    show_tls_auth(r);
    printf("%-13s%zu octets\n", "Size:", r->size);
    printf("%-13s", "Findings:");
    findings_print(stdout, r->findings);
    fputc('\n', stdout);
    show_field("From:", m->from, true);
    show_field("To:", m->to, true);
    show_field("Cc:", m->cc, false);
    show_field("Reply-To:", m->reply_to, false);
    show_field("Subject:", m->subject, true);
    show_field("Date:", m->date, false);
    show_field("Message-ID:", m->message_id, false);
    show_attachments(m);
    if (m->snippet && *m->snippet) {
        fputc('\n', stdout);
        text_cell(stdout, m->snippet, 0, false);
        fputc('\n', stdout);
    }
}

static int
cmd_show(const config *c, store *st)
{
    store_row r;
    int rc;

    memset(&r, 0, sizeof r);
    if (store_get(st, c->arg, &r) < 0) {
        no_message(c->arg);
        return EXIT_RUNTIME;
    }
    if (c->json) {
        rc = json_print(row_json(&r));
    } else {
        show_text(&r);
        rc = stdout_flush();
    }
    store_row_cleanup(&r);
    return rc;
}

/* ---- raw, delete ----------------------------------------------------------------------- */

static int
cmd_raw(const config *c, store *st)
{
    char *data = NULL;
    size_t len = 0, put;

    if (store_get_raw(st, c->arg, &data, &len) < 0) {
        no_message(c->arg);
        return EXIT_RUNTIME;
    }
    put = fwrite(data, 1, len, stdout);
    free(data);
    if (stdout_flush() != EXIT_OK)
        return EXIT_RUNTIME;
    if (put != len) { /* a short write that left no error flag: still not the message */
        fprintf(stderr, "mailsink: raw: wrote %zu of %zu octets\n", put, len);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int
cmd_delete(const config *c, store *st)
{
    if (c->all) {
        if (store_delete_all(st) < 0) {
            fprintf(stderr, "mailsink: delete: cannot delete from %s\n", c->db_path);
            return EXIT_RUNTIME;
        }
        return EXIT_OK;
    }
    if (store_delete(st, c->arg) < 0) {
        no_message(c->arg);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* ---- wait ------------------------------------------------------------------------------ */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL); /* a signal cutting it short only makes the next poll earlier */
}

static void
wait_timed_out(const config *c, long seen, const char *why)
{
    fprintf(stderr, "mailsink: wait: timed out after %u s: ", c->wait_timeout_s);
    if (seen < 0)
        fprintf(stderr, "%s\n", why);
    else
        fprintf(stderr, "%ld of %u message%s%s%s%s%s%s%s\n", seen, c->wait_count,
                c->wait_count == 1 ? "" : "s", c->wait_to ? " to '" : "",
                c->wait_to ? c->wait_to : "", c->wait_to ? "'" : "",
                c->wait_subject ? " with subject '" : "", c->wait_subject ? c->wait_subject : "",
                c->wait_subject ? "'" : "");
}

/* Poll every 100 ms. The server may not have created the database yet, or may be
   migrating it, so failing to open or count is retried until the deadline. */
static int
cmd_wait(const config *c)
{
    const int64_t deadline = now_ms() + (int64_t)c->wait_timeout_s * 1000;
    store *st = NULL;
    char why[512] = "";
    long seen = -1;
    int rc;

    for (;;) {
        if (!st)
            st = store_open_existing(c, why, sizeof why);
        if (st) {
            long n = store_count_matching(st, c->wait_to, c->wait_subject);
            if (n >= (long)c->wait_count) {
                rc = EXIT_OK;
                break;
            }
            if (n < 0) { /* a fresh handle next time */
                snprintf(why, sizeof why, "cannot count messages in %s", c->db_path);
                store_close(st);
                st = NULL;
            }
            seen = n;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            wait_timed_out(c, seen, why);
            rc = EXIT_RUNTIME;
            break;
        }
        sleep_ms(left < 100 ? left : 100);
    }
    if (st)
        store_close(st);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int
subcommands_run(const config *c)
{
    store *st;
    int rc = EXIT_CONFIG;

    if (c->command == CONFIG_CMD_SERVE || c->command == CONFIG_CMD_HELP ||
        c->command == CONFIG_CMD_VERSION) {
        fprintf(stderr, "mailsink: internal error: not a subcommand\n");
        return EXIT_CONFIG;
    }
    if (db_is_memory(c))
        return EXIT_CONFIG;
    if (c->command == CONFIG_CMD_WAIT)
        return cmd_wait(c);
    if (!(st = store_open_or_say(c)))
        return EXIT_RUNTIME;
    switch (c->command) {
    case CONFIG_CMD_LIST:
        rc = cmd_list(c, st);
        break;
    case CONFIG_CMD_SHOW:
        rc = cmd_show(c, st);
        break;
    case CONFIG_CMD_RAW:
        rc = cmd_raw(c, st);
        break;
    case CONFIG_CMD_DELETE:
        rc = cmd_delete(c, st);
        break;
    case CONFIG_CMD_WAIT:
    case CONFIG_CMD_SERVE:
    case CONFIG_CMD_HELP:
    case CONFIG_CMD_VERSION:
        break;
    }
    store_close(st);
    return rc;
}
