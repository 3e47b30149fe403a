/*
 * fuzz_http.c - mailsink's HTTP API as a client sees it: the real server
 * (src/mailsink/http/server.c, the api_*.c handlers, events, wait, the embedded UI) on
 * its own thread, exactly as http_start runs it for mailsink, against a real temporary
 * SQLite store with a few messages (and the real store writer, so POST /api/v1/send
 * stores what it builds). Each input is the bytes of one TCP connection to it on
 * 127.0.0.1: any number of requests (request lines, query strings, ids, search syntax,
 * headers, JSON bodies of PUT /api/v1/messages, PUT /api/v1/tags, DELETE
 * /api/v1/messages, POST /api/v1/send), then the client's half-close.
 *
 * The client reads every reply until the server closes (bounded: a stream such as
 * /api/events or a held /api/v1/wait is dropped after 50 ms of silence, which also
 * covers the server's handling of clients that vanish). Invariants: the server answers
 * with HTTP/1.x status lines and never crashes, leaks or trips a sanitizer; it keeps
 * serving (each input gets a fresh connection, accepted within a second). The store is
 * topped up with the seed messages when a DELETE emptied it, so that later inputs find
 * messages to read; --max-messages bounds what /send adds.
 */
#define _GNU_SOURCE
#include "mailsink/cli/config.h"
#include "mailsink/http/http.h"
#include "mailsink/ingest.h"
#include "mailsink/mime.h"
#include "mailsink/store/store.h"

#include <arpa/inet.h>
#include <openssl/rand.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
#include "fuzz_check.h"

#define IDLE_MS 50    /* silence after which a reply stream is given up */
#define TOTAL_MS 2000 /* one input's connection at most */
#define FZ_MAX_INPUT 65536

static struct {
    char dir[64];
    char db[128];
    config cfg;
    store *writer;
    store *reader; /* the harness's own handle: counts, top-ups */
    ingest *in;
    http_server *http;
    struct sockaddr_in addr;
    unsigned long seeded; /* ids handed out so far */
    atomic_int pending;   /* seed messages not yet committed */
} fz;

static const char *const seed_raw[] = {
    "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: plain hello\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <p1@example.com>\r\n\r\n"
    "Hello Bob,\r\nsee you at 10.\r\n",

    "From: \"Shop\" <news@shop.example>\r\nTo: Carol <carol@example.org>, dave@example.net\r\n"
    "Cc: eve@example.com\r\nSubject: =?UTF-8?B?w6ljaGFudGlsbG9u?=\r\n"
    "Date: Wed, 15 Nov 2023 08:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
    "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n"
    "--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>html <b>part</b><img src=\"cid:img1\"></p>\r\n--b2--\r\n"
    "--b1\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n"
    "Content-Disposition: inline; filename=\"dot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "==\r\n"
    "--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: "
    "base64\r\n\r\n"
    "JVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n",

    "From: <root@localhost>\r\nTo: undisclosed-recipients:;\r\nSubject: no date, 8bit \xc3\xa9\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
    "quoted-printable\r\n"
    "\r\ncaf=E9 =\r\nsoft break\r\n",
};
static const char *const seed_tags[] = {"Work", "urgent"};

static void
seed_done(void *ctx, const char *id, int rc)
{
    (void)ctx;
    (void)id;
    (void)rc;
    atomic_fetch_sub(&fz.pending, 1);
}

/* Queue the seed messages with fresh ids and wait (bounded) until they are committed. */
static void
seed_store(void)
{
    size_t n = sizeof seed_raw / sizeof seed_raw[0];
    atomic_store(&fz.pending, (int)n);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "FuzzSeed%06lu", ++fz.seeded);
        const char *rcpts[] = {"bob@example.com", "carol@example.org"};
        ingest_item *it =
            ingest_item_new_local(id, i == 2 ? "" : "alice@example.com", rcpts, i == 1 ? 2 : 1,
                                  seed_raw[i], strlen(seed_raw[i]), "127.0.0.1",
                                  i == 1 ? seed_tags : NULL, i == 1 ? 2 : 0, seed_done, NULL);
        CHECK(it != NULL);
        if (ingest_enqueue(fz.in, it) != 0) {
            ingest_item_free(it);
            atomic_fetch_sub(&fz.pending, 1);
        }
    }
    for (int i = 0; i < 5000 && atomic_load(&fz.pending) > 0; i++)
        usleep(1000);
    CHECK(atomic_load(&fz.pending) == 0);
}

static void
fz_cleanup(void)
{
    if (fz.http) {
        http_detach_ingest(fz.http);
        ingest_stop(fz.in);
        http_stop(fz.http);
        store_close(fz.reader);
        store_close(fz.writer);
        config_cleanup(&fz.cfg);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz_http: could not remove %s\n", fz.dir);
    }
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    /* the database in memory-backed /dev/shm where there is one: SQLite's syncs on a
       disk cost milliseconds per writing request */
    const char *tmp = getenv("FUZZ_HTTP_DIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz.dir, sizeof fz.dir, "%s/fuzz_http.XXXXXX", tmp);
    CHECK(mkdtemp(fz.dir) != NULL);
    snprintf(fz.db, sizeof fz.db, "%s/mailsink.db", fz.dir);

    /* the configuration as mailsink's own command line makes it */
    char *args[] = {"mailsink",
                    "--db",
                    fz.db,
                    "--http",
                    "127.0.0.1:0",
                    "--max-messages",
                    "40",
                    "--max-send-size",
                    "65536",
                    "--api-cors",
                    "https://ui.example",
                    "--ui-label",
                    "fuzz",
                    NULL};
    char *envp[] = {"HOME=/nonexistent", NULL};
    if (config_load(&fz.cfg, (int)(sizeof args / sizeof args[0]) - 1, args, envp, err,
                    sizeof err) != 0) {
        fprintf(stderr, "fuzz_http: config: %s\n", err);
        abort();
    }
    mime_init();
    /* OpenSSL's random generator set up on this thread, not lazily on the HTTP thread,
       whose thread-local part nothing frees at its exit (LeakSanitizer would report it) */
    unsigned char rnd[8];
    CHECK(RAND_bytes(rnd, sizeof rnd) == 1);
    fz.writer = store_open(fz.db, STORE_WRITER, err, sizeof err);
    CHECK(fz.writer != NULL);
    ingest_limits lim = {fz.cfg.max_messages, 0, 16 << 20};
    fz.in = ingest_start(fz.writer, NULL, &lim);
    CHECK(fz.in != NULL);
    fz.http = http_start(&fz.cfg, store_path(fz.writer), fz.in, err, sizeof err);
    if (!fz.http) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    ingest_on_stored(fz.in, http_stored, fz.http);
    fz.reader = store_open(fz.db, STORE_READER, err, sizeof err);
    CHECK(fz.reader != NULL);

    const char *bound = http_bound(fz.http);
    const char *colon = strrchr(bound, ':');
    CHECK(colon != NULL);
    memset(&fz.addr, 0, sizeof fz.addr);
    fz.addr.sin_family = AF_INET;
    fz.addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    fz.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    seed_store();
    atexit(fz_cleanup);
    return 0;
}

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Check what came back: replies start with an HTTP/1.x status line. */
static void
check_replies(const char *r, size_t n)
{
    if (n == 0)
        return;
    if (getenv("FUZZ_HTTP_TRACE"))
        fprintf(stderr, "%.*s\n", (int)n, r);
    CHECK(n >= 5 && memcmp(r, "HTTP/", 5) == 0);
    /* the version is libevent's echo of the request's (it prints "HTTP/-1.1" for a
       version number that overflows its parser), so only the status code is checked */
    const char *sp = memchr(r, ' ', n < 64 ? n : 64);
    if (sp && (size_t)(sp - r) + 4 < n)
        CHECK(sp[1] >= '1' && sp[1] <= '5' && sp[2] >= '0' && sp[2] <= '9' && sp[3] >= '0' &&
              sp[3] <= '9');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FZ_MAX_INPUT)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&fz.addr, sizeof fz.addr);
    while (rc != 0 && errno == EINTR);
    CHECK(rc == 0); /* the server still listens */

    static char reply[1 << 16];
    size_t reply_len = 0, sent = 0;
    bool shut = false;
    long start = now_ms(), last = start;
    for (;;) {
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        struct pollfd p = {fd, POLLIN | (sent < size ? POLLOUT : 0), 0};
        long t = now_ms();
        if (t - start > TOTAL_MS || (shut && t - last > IDLE_MS))
            break;
        int r = poll(&p, 1, IDLE_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sent += (size_t)w;
                last = now_ms();
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                break; /* the server closed on us (e.g. a refused request) */
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0) {
                size_t room = sizeof reply - reply_len;
                size_t take = (size_t)n < room ? (size_t)n : room;
                memcpy(reply + reply_len, buf, take);
                reply_len += take;
                last = now_ms();
            }
        }
    }
    close(fd);
    if (getenv("FUZZ_HTTP_TIMES"))
        fprintf(stderr, "fuzz_http: %zu bytes in, %zu out, %ld ms\n", size, reply_len,
                now_ms() - start);
    check_replies(reply, reply_len);

    /* a DELETE may have emptied the store: bring the seed messages back */
    if (store_count(fz.reader) < 2)
        seed_store();
    return 0;
}
