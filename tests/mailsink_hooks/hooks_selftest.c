/*
 * hooks_selftest.c - self-test of mailsink's built-in rules (policy.c), hook programs
 * (exec.c) and file exports (store/export.c), without a server. Built by hand:
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
 *      -fsanitize=address,undefined -g -Iinclude -Isrc src/mailsink/policy.c \
 *      src/mailsink/exec.c src/mailsink/store/export.c \
 *      tests/mailsink_hooks/hooks_selftest.c -o hooks_selftest -pthread
 *
 * Needs /bin/sh, /bin/echo, coreutils and /usr/bin/python3 (for the mailbox module
 * check). Prints "hooks selftest: N passed, M failed" and exits non-zero on failure.
 */
#include "mailsink/exec.h"
#include "mailsink/policy.h"
#include "mailsink/store/export.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define STRS(...)                                                                                  \
    ((config_strings){.items = (char *[]){__VA_ARGS__},                                            \
                      .count = sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)})

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- policy ---------------------------------------------------------------------- */

static void
test_policy_hosts(void)
{
    char err[256];
    config c = {0};
    c.allow_host = STRS("127.0.0.0/8", "::1/128", "2001:db8::/32", "192.168.1.7");
    c.deny_host = STRS("127.0.0.5", "2001:db8:dead::/48");
    policy *p = policy_new(&c, err, sizeof err);
    CHECK(p != NULL, "%s", err);
    if (!p)
        return;
    CHECK(policy_host_allowed(p, "127.0.0.1"), "v4 in /8");
    CHECK(policy_host_allowed(p, "127.255.255.255"), "v4 end of /8");
    CHECK(!policy_host_allowed(p, "128.0.0.1"), "v4 outside");
    CHECK(!policy_host_allowed(p, "10.0.0.1"), "v4 outside");
    CHECK(policy_host_allowed(p, "192.168.1.7"), "bare v4 = /32");
    CHECK(!policy_host_allowed(p, "192.168.1.8"), "bare v4 = /32");
    CHECK(policy_host_allowed(p, "::1"), "v6 /128");
    CHECK(!policy_host_allowed(p, "::2"), "v6 /128");
    CHECK(policy_host_allowed(p, "2001:db8:1::9"), "v6 /32");
    CHECK(!policy_host_allowed(p, "2001:db9::1"), "v6 outside /32");
    CHECK(!policy_host_allowed(p, "127.0.0.5"), "deny wins over allow");
    CHECK(!policy_host_allowed(p, "2001:db8:dead:1::1"), "v6 deny wins");
    CHECK(policy_host_allowed(p, "::ffff:127.0.0.9"), "mapped matches v4 allow");
    CHECK(!policy_host_allowed(p, "::ffff:127.0.0.5"), "mapped matches v4 deny");
    CHECK(!policy_host_allowed(p, "::ffff:10.0.0.1"), "mapped outside");
    CHECK(policy_host_allowed(p, "::1%lo"), "zone ignored");
    CHECK(!policy_host_allowed(p, "not-an-address"), "unreadable with allow list");
    CHECK(!policy_host_allowed(p, NULL), "NULL with allow list");
    policy_free(p);

    config d = {0};
    d.deny_host = STRS("::ffff:10.0.0.0/104", "0.0.0.0/0");
    config e = {0};
    e.deny_host = STRS("10.1.2.3/8");
    policy *pd = policy_new(&d, err, sizeof err), *pe = policy_new(&e, err, sizeof err);
    CHECK(pd && pe, "%s", err);
    if (pd && pe) {
        CHECK(!policy_host_allowed(pd, "10.9.9.9"), "mapped rule /104 = v4 /8");
        CHECK(!policy_host_allowed(pd, "8.8.8.8"), "0/0 matches every v4");
        CHECK(policy_host_allowed(pd, "::1"), "v4 0/0 does not match v6");
        CHECK(policy_host_allowed(pd, "unix-socket"), "unreadable, deny only");
        CHECK(!policy_host_allowed(pe, "10.200.0.1"), "host bits ignored");
        CHECK(policy_host_allowed(pe, "11.0.0.1"), "host bits ignored");
    }
    policy_free(pd);
    policy_free(pe);
}

static void
test_policy_bad_cidr(void)
{
    static const char *bad[] = {
        "10.0.0.0/33", "::1/129", "1.2.3.4/",    "/8", "1.2.3.4/ 8", "1.2.3.4/+8",
        "1.2.3.4/-1",  "1.2.3",   "example.com", "",   "1.2.3.4/8x", "::1/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        config c = {0};
        c.deny_host = STRS((char *)bad[i]);
        policy *p = policy_new(&c, err, sizeof err);
        char want[128];
        snprintf(want, sizeof want, "--deny-host: bad CIDR '%s'", bad[i]);
        CHECK(p == NULL && strcmp(err, want) == 0, "'%s' -> '%s'", bad[i], err);
        policy_free(p);
    }
    char err[256] = "";
    config c = {0};
    c.allow_host = STRS("127.0.0.1", "nope/8");
    policy *p = policy_new(&c, err, sizeof err);
    CHECK(p == NULL && strstr(err, "--allow-host") && strstr(err, "'nope/8'"), "%s", err);
    policy_free(p);
}

static void
test_policy_globs(void)
{
    char err[256];
    config none = {0};
    policy *p = policy_new(&none, err, sizeof err);
    CHECK(p && policy_host_allowed(p, "1.2.3.4") && policy_sender_allowed(p, "") &&
              policy_rcpt_allowed(p, "x@y"),
          "no rules allow everything");
    policy_free(p);

    config c = {0};
    c.accept_rcpt = STRS("*@example.com", "postmaster");
    c.reject_rcpt = STRS("bad*@example.com", "[0-9]*@*");
    c.accept_sender = STRS("*@Trusted.ORG", "<>");
    c.reject_sender = STRS("spam@trusted.org");
    p = policy_new(&c, err, sizeof err);
    CHECK(p != NULL, "%s", err);
    if (!p)
        return;
    CHECK(policy_rcpt_allowed(p, "bob@example.com"), "accept glob");
    CHECK(policy_rcpt_allowed(p, "Bob@EXAMPLE.Com"), "case-insensitive");
    CHECK(policy_rcpt_allowed(p, "POSTMASTER"), "case-insensitive exact");
    CHECK(!policy_rcpt_allowed(p, "bob@example.org"), "not in accept list");
    CHECK(!policy_rcpt_allowed(p, "badguy@example.com"), "reject wins over accept");
    CHECK(!policy_rcpt_allowed(p, "BADGUY@example.com"), "reject is case-insensitive");
    CHECK(!policy_rcpt_allowed(p, "1bob@example.com"), "reject class");
    CHECK(policy_sender_allowed(p, "alice@trusted.org"), "sender accept");
    CHECK(!policy_sender_allowed(p, "SPAM@Trusted.org"), "sender reject wins");
    CHECK(!policy_sender_allowed(p, "alice@other.org"), "sender not accepted");
    CHECK(policy_sender_allowed(p, ""), "null sender as <>");
    policy_free(p);

    config r = {0};
    r.reject_sender = STRS("<>");
    p = policy_new(&r, err, sizeof err);
    CHECK(p && !policy_sender_allowed(p, "") && policy_sender_allowed(p, "a@b"),
          "reject null sender");
    policy_free(p);

    /* The policy keeps its own copies: the config may go first. */
    char *pat = strdup("*@keep.test");
    config k = {0};
    k.accept_rcpt = (config_strings){.items = &pat, .count = 1};
    p = policy_new(&k, err, sizeof err);
    free(pat);
    CHECK(p && policy_rcpt_allowed(p, "x@keep.test") && !policy_rcpt_allowed(p, "x@y"),
          "patterns copied");
    policy_free(p);
}

/* ---- exec ------------------------------------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    exec_result r;
} waiter;

static void
waiter_cb(const exec_result *r, void *ctx)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->r = *r;
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void
waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void
waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void
waiter_cleanup(waiter *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* Run one job to the end; elapsed (may be NULL) gets the seconds it took. */
static exec_result
run1(exec_pool *p, char *const argv[], char *const env[], const char *in, size_t in_len,
     double *elapsed)
{
    waiter w;
    waiter_init(&w);
    double t0 = now_s();
    exec_result r = {.status = -2};
    if (exec_pool_run(p, argv, env, in, in_len, waiter_cb, &w) == 0) {
        waiter_wait(&w, 1);
        r = w.r;
    }
    if (elapsed)
        *elapsed = now_s() - t0;
    waiter_cleanup(&w);
    return r;
}

#define SH(script) ((char *[]){"sh", "-c", script, NULL})

static int
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void
test_exec_status_and_output(exec_pool *p)
{
    exec_result r;
    r = run1(p, SH("exit 0"), NULL, NULL, 0, NULL);
    CHECK(r.status == 0 && r.first_line[0] == '\0', "exit 0: %d '%s'", r.status, r.first_line);
    r = run1(p, SH("exit 75"), NULL, NULL, 0, NULL);
    CHECK(r.status == 75, "exit 75: %d", r.status);
    r = run1(p, SH("exit 1"), NULL, NULL, 0, NULL);
    CHECK(r.status == 1, "exit 1: %d", r.status);
    r = run1(p, SH("printf 'Not here, go away\\nsecond line\\n'; exit 1"), NULL, NULL, 0, NULL);
    CHECK(r.status == 1 && strcmp(r.first_line, "Not here, go away") == 0, "'%s'", r.first_line);
    r = run1(p, SH("printf 'a\\tb\\001c\\177d\\r\\nx'"), NULL, NULL, 0, NULL);
    CHECK(strcmp(r.first_line, "abcd") == 0, "controls stripped: '%s'", r.first_line);
    r = run1(p, SH("printf 'no newline at all'"), NULL, NULL, 0, NULL);
    CHECK(strcmp(r.first_line, "no newline at all") == 0, "'%s'", r.first_line);
    r = run1(p, SH("head -c 100000 /dev/zero | tr '\\000' x; echo; echo more"), NULL, NULL, 0,
             NULL);
    CHECK(r.status == 0 && strlen(r.first_line) == 511 && r.first_line[510] == 'x',
          "long line cut at 511: %zu", strlen(r.first_line));
    r = run1(p, SH("printf '%0510d' 0 | tr 0 x; printf '\\303\\251tail\\n'"), NULL, NULL, 0, NULL);
    CHECK(strlen(r.first_line) == 510, "cut on a UTF-8 boundary: %zu", strlen(r.first_line));
    r = run1(p, SH("kill -9 $$"), NULL, NULL, 0, NULL);
    CHECK(r.status == -1, "killed by a signal: %d", r.status);
    r = run1(p, (char *[]){"mailsink-selftest-no-such-program", NULL}, NULL, NULL, 0, NULL);
    CHECK(r.status == -1, "not found: %d", r.status);
    r = run1(p, (char *[]){"/nonexistent/dir/prog", NULL}, NULL, NULL, 0, NULL);
    CHECK(r.status == -1, "absolute path not found: %d", r.status);
    r = run1(p, SH("read line; echo \"got $line\""), NULL, "hello\r\nrest\r\n", 13, NULL);
    CHECK(r.status == 0 && strcmp(r.first_line, "got hello") == 0, "stdin: '%s'", r.first_line);
    r = run1(p, SH("if read x; then echo data; else echo eof; fi"), NULL, NULL, 0, NULL);
    CHECK(strcmp(r.first_line, "eof") == 0, "no stdin = /dev/null: '%s'", r.first_line);
}

static void
test_exec_stdin(exec_pool *p)
{
    size_t big = 8u << 20;
    char *data = malloc(big);
    if (!data) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < big; i++)
        data[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
    double t;
    exec_result r = run1(p, SH("echo ignored; exit 3"), NULL, data, big, &t);
    CHECK(r.status == 3 && strcmp(r.first_line, "ignored") == 0 && t < 2.0,
          "child ignoring 8 MiB stdin: %d '%s' %.2fs", r.status, r.first_line, t);
    r = run1(p, SH("head -c 10 >/dev/null; echo early"), NULL, data, big, &t);
    CHECK(r.status == 0 && strcmp(r.first_line, "early") == 0 && t < 2.0,
          "child reading 10 bytes then exiting: %d '%s' %.2fs", r.status, r.first_line, t);
    r = run1(p, (char *[]){"cat", NULL}, NULL, data, big, &t);
    CHECK(r.status == 0 && strlen(r.first_line) == 63 && t < 3.0,
          "cat echoes 8 MiB back (stdin and stdout both full): %d %zu %.2fs", r.status,
          strlen(r.first_line), t);
    r = run1(p, SH("exec 0<&-; sleep 0.2; echo closed"), NULL, data, big, &t);
    CHECK(r.status == 0 && strcmp(r.first_line, "closed") == 0, "child closing stdin: '%s'",
          r.first_line);
    free(data);
}

static void
test_exec_deadline(void)
{
    exec_pool *p = exec_pool_new(2, 1);
    CHECK(p != NULL, "pool");
    if (!p)
        return;
    double t;
    exec_result r = run1(p, (char *[]){"sleep", "30", NULL}, NULL, NULL, 0, &t);
    CHECK(r.status == -1 && t >= 0.9 && t < 2.0, "sleep 30 killed at 1 s: %d %.2fs", r.status, t);
    /* A script's own children die too (process group), and our pipe is not held. */
    r = run1(p, SH("sleep 30 & echo $!; wait"), NULL, NULL, 0, &t);
    CHECK(r.status == -1 && t < 2.0, "script killed: %d %.2fs", r.status, t);
    long gpid = strtol(r.first_line, NULL, 10);
    if (gpid > 0) {
        usleep(100000);
        char path[64], stat[256] = "";
        snprintf(path, sizeof path, "/proc/%ld/stat", gpid);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(stat, sizeof stat, f))
                stat[0] = '\0';
            fclose(f);
        }
        const char *close_paren = strrchr(stat, ')');
        /* Gone, or a zombie waiting for a reaper that is not us. */
        CHECK(!f || (close_paren && close_paren[2] == 'Z'), "grandchild killed: %s", stat);
    } else {
        CHECK(0, "no grandchild pid: '%s'", r.first_line);
    }
    /* A child that exits while a grandchild keeps its stdout open is done at its exit. */
    r = run1(p, SH("sleep 3 & echo done"), NULL, NULL, 0, &t);
    CHECK(r.status == 0 && strcmp(r.first_line, "done") == 0 && t < 0.9,
          "background grandchild does not hold us: %d '%s' %.2fs", r.status, r.first_line, t);
    exec_pool_free(p);
}

static void
test_exec_no_shell(exec_pool *p)
{
    char path[3][64], arg[3][128];
    const char *open_[3] = {"$(touch ", "`touch ", "; touch "}, *close_[3] = {")", "`", ""};
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "/tmp/PWNED_%ld_%d", (long)getpid(), i);
        unlink(path[i]);
        snprintf(arg[i], sizeof arg[i], "%s%s%s", open_[i], path[i], close_[i]);
        exec_result r = run1(p, (char *[]){"/bin/echo", arg[i], NULL}, NULL, NULL, 0, NULL);
        CHECK(r.status == 0 && strcmp(r.first_line, arg[i]) == 0, "literal argv: '%s'",
              r.first_line);
        CHECK(access(path[i], F_OK) != 0, "argv ran a shell: %s exists", path[i]);
    }
    char env[200], epath[64];
    snprintf(epath, sizeof epath, "/tmp/PWNED_%ld_env", (long)getpid());
    unlink(epath);
    snprintf(env, sizeof env, "MAILSINK_SENDER=<$(touch %s)@x>`touch %s`", epath, epath);
    exec_result r =
        run1(p, SH("printf '%s\\n' \"$MAILSINK_SENDER\""), (char *[]){env, NULL}, NULL, 0, NULL);
    CHECK(strcmp(r.first_line, strchr(env, '=') + 1) == 0, "env literal: '%s'", r.first_line);
    CHECK(access(epath, F_OK) != 0, "env value ran: %s exists", epath);
}

static void
test_exec_env_and_fds(exec_pool *p)
{
    exec_result r =
        run1(p,
             SH("printf '%s %s %s\\n' \"$MAILSINK_SELFTEST\" \"$MAILSINK_INHERITED\" "
                "\"$(env | grep -c '^MAILSINK_SELFTEST=')\""),
             (char *[]){"MAILSINK_SELFTEST=new", "MAILSINK_ID=X1", NULL}, NULL, 0, NULL);
    CHECK(strcmp(r.first_line, "new yes 1") == 0, "env override + inherit: '%s'", r.first_line);

    /* The child starts with default SIGPIPE and nothing blocked, although we ignore
       SIGPIPE (as libsmtpd does) and the workers block everything. */
    r = run1(p, SH("grep -E '^Sig(Ign|Blk)' /proc/self/status | tr '\\n' ' '; echo"), NULL, NULL, 0,
             NULL);
    const char *ign = strstr(r.first_line, "SigIgn:"), *blk = strstr(r.first_line, "SigBlk:");
    if (ign && blk) {
        unsigned long long ig = strtoull(ign + 7, NULL, 16), bl = strtoull(blk + 7, NULL, 16);
        CHECK(!(ig & (1ull << (SIGPIPE - 1))) && bl == 0, "child signals: '%s'", r.first_line);
    }

    /* While another job holds its pipes, a child sees only 0-2 (and ls's own dir fd),
       even when this process has descriptors open without close-on-exec. */
    int leak = dup(0); /* dup: FD_CLOEXEC is not set on the new descriptor */
    waiter w;
    waiter_init(&w);
    static char in[1 << 20];
    memset(in, 'x', sizeof in);
    CHECK(exec_pool_run(p, SH("sleep 0.5"), NULL, in, sizeof in, waiter_cb, &w) == 0, "run");
    usleep(100000);
    r = run1(p, (char *[]){"ls", "-m", "/proc/self/fd", NULL}, NULL, "stdin", 5, NULL);
    CHECK(strcmp(r.first_line, "0, 1, 2, 3") == 0, "child fds: '%s'", r.first_line);
    waiter_wait(&w, 1);
    waiter_cleanup(&w);
    if (leak >= 0)
        close(leak);
}

static void
test_exec_pool(void)
{
    exec_pool *p = exec_pool_new(4, 5);
    waiter w;
    waiter_init(&w);
    double t0 = now_s();
    for (int i = 0; i < 12; i++)
        CHECK(exec_pool_run(p, SH("sleep 0.3"), NULL, NULL, 0, waiter_cb, &w) == 0, "run");
    waiter_wait(&w, 12);
    double t = now_s() - t0;
    CHECK(t < 2.0, "12 x 0.3 s on 4 workers took %.2fs", t);
    exec_pool_free(p);
    waiter_cleanup(&w);

    /* exec_pool_free finishes what was queued before returning. */
    p = exec_pool_new(2, 5);
    waiter_init(&w);
    for (int i = 0; i < 6; i++)
        CHECK(exec_pool_run(p, SH("sleep 0.1; exit 7"), NULL, "x", 1, waiter_cb, &w) == 0, "run");
    exec_pool_free(p);
    CHECK(w.done == 6 && w.r.status == 7, "free drains the queue: %d done", w.done);
    waiter_cleanup(&w);
    exec_pool_free(NULL);
}

static void
test_exec(void)
{
    setenv("MAILSINK_SELFTEST", "old", 1);
    setenv("MAILSINK_INHERITED", "yes", 1);
    int fds_before = count_fds();
    exec_pool *p = exec_pool_new(3, 5);
    CHECK(p != NULL, "pool");
    if (!p)
        return;
    test_exec_status_and_output(p);
    test_exec_stdin(p);
    test_exec_no_shell(p);
    test_exec_env_and_fds(p);
    exec_pool_free(p);
    test_exec_deadline();
    test_exec_pool();
    CHECK(count_fds() == fds_before, "fd leak: %d before, %d after", fds_before, count_fds());
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "a child was left unreaped");
}

/* ---- export ---------------------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *grown = realloc(data, cap + 1);
            if (!grown)
                break;
            data = grown;
        }
        size_t r = fread(data + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (data)
        data[n] = '\0';
    *len = n;
    return data;
}

/* Entries of dir, not counting "." and "..". */
static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static const char *msg_id[3] = {"MSGAAA1", "MSGBBB2", "MSGCCC3"};
static const char *msg_sender[3] = {"alice@example.com", "", "odd sender@x"};
static const int64_t msg_ms[3] = {1700000000123, 0, 86400000};
static const char *msg_raw[3] = {
    "Received: from x\r\nSubject: first\r\nFrom: a@example.com\r\n\r\nHello.\r\n",
    "Subject: second\r\n\r\nFrom me\r\n>From quoted\r\nFrom\r\nFromage\r\n.\r\n",
    "Subject: third\r\n\r\nno final newline",
};

static void
check_python_mailbox(const char *md, const char *mbox)
{
    static const char script[] =
        "import mailbox, sys\n"
        "md = sorted(m['subject'] for m in mailbox.Maildir(sys.argv[1], factory=None))\n"
        "mb = [m['subject'] for m in mailbox.mbox(sys.argv[2])]\n"
        "body = mailbox.mbox(sys.argv[2])[1].get_payload()\n"
        "ok = (md == ['first', 'second', 'third'] and mb == ['first', 'second', 'third']\n"
        "      and body.startswith('>From me\\n>>From quoted\\nFrom\\n'))\n"
        "print('ok' if ok else 'bad %r %r %r' % (md, mb, body))\n";
    exec_pool *p = exec_pool_new(1, 30);
    exec_result r = run1(
        p, (char *[]){"/usr/bin/python3", "-c", (char *)script, (char *)md, (char *)mbox, NULL},
        NULL, NULL, 0, NULL);
    exec_pool_free(p);
    CHECK(r.status == 0 && strcmp(r.first_line, "ok") == 0, "python mailbox: %d '%s'", r.status,
          r.first_line);
}

static void
check_mbox(const char *mbox)
{
    size_t len = 0;
    char *m = slurp(mbox, &len);
    CHECK(m != NULL, "read %s", mbox);
    if (!m)
        return;
    int froms = 0;
    for (size_t i = 0; i < len; i++)
        if ((i == 0 || m[i - 1] == '\n') && strncmp(m + i, "From ", 5) == 0)
            froms++;
    CHECK(froms == 3, "mbox has %d From lines", froms);
    const char *first = "From alice@example.com Tue Nov 14 22:13:20 2023\nReceived: ";
    CHECK(strncmp(m, first, strlen(first)) == 0, "first From line: %.60s", m);
    CHECK(strstr(m, "\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\n") != NULL, "null sender");
    CHECK(strstr(m, "\nFrom odd_sender@x Fri Jan  2 00:00:00 1970\n") != NULL, "odd sender");
    CHECK(strstr(m, "\n\n>From me\n>>From quoted\nFrom\nFromage\n.\n\n") != NULL,
          "From quoting: %s", m);
    CHECK(memchr(m, '\r', len) == NULL, "CRLF converted");
    const char *tail = "no final newline\n\n";
    CHECK(len > strlen(tail) && strcmp(m + len - strlen(tail), tail) == 0, "final newline added");
    free(m);
}

static void
check_one_dir_file(const char *dir, const char *id, const char *raw)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512] = "";
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, id))
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    size_t len = 0;
    char *got = path[0] ? slurp(path, &len) : NULL;
    CHECK(got && len == strlen(raw) && memcmp(got, raw, len) == 0, "%s: bytes differ", path);
    free(got);
}

static void
test_export(void)
{
    char base[] = "/tmp/mailsink_hooks.XXXXXX", md[128], mbox[128], eml[128], err[512];
    if (!mkdtemp(base)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(md, sizeof md, "%s/maildir", base);
    snprintf(mbox, sizeof mbox, "%s/sub/dir/mbox", base);
    snprintf(eml, sizeof eml, "%s/eml", base);
    exporter *ex = export_open(md, mbox, eml, err, sizeof err);
    CHECK(ex != NULL, "export_open: %s", err);
    if (!ex)
        return;
    for (int i = 0; i < 3; i++)
        CHECK(export_write(ex, msg_id[i], msg_sender[i], msg_ms[i], msg_raw[i], strlen(msg_raw[i]),
                           err, sizeof err) == 0,
              "export_write: %s", err);
    static const char *bad[] = {"../evil", "a/b", "", ".hidden", "x y", "id\n", "$(x)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(export_write(ex, bad[i], "a@b", 0, "x", 1, err, sizeof err) == -1 && err[0],
              "bad id '%s' accepted", bad[i]);
    }
    CHECK(export_write(ex, NULL, "a@b", 0, "x", 1, err, sizeof err) == -1, "NULL id");
    export_close(ex);

    char sub[160];
    const char *subs[] = {"new", "cur", "tmp"};
    const int want[] = {3, 0, 0};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", md, subs[i]);
        struct stat st;
        CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700, "%s mode", sub);
        CHECK(count_entries(sub) == want[i], "%s has %d", sub, count_entries(sub));
    }
    snprintf(sub, sizeof sub, "%s/new", md);
    for (int i = 0; i < 3; i++)
        check_one_dir_file(sub, msg_id[i], msg_raw[i]);
    CHECK(count_entries(eml) == 3, "eml dir has %d (no temporary files)", count_entries(eml));
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.eml", msg_id[i]);
        check_one_dir_file(eml, name, msg_raw[i]);
    }
    check_mbox(mbox);
    check_python_mailbox(md, mbox);

    ex = export_open(NULL, NULL, NULL, err, sizeof err);
    CHECK(ex && export_write(ex, "A", "", 0, "x", 1, err, sizeof err) == 0, "no targets");
    export_close(ex);
    export_close(NULL);
    ex = export_open("/proc/mailsink-no/md", NULL, NULL, err, sizeof err);
    CHECK(!ex && strncmp(err, "--maildir /proc/mailsink-no/md: ", 32) == 0, "err: %s", err);
    ex = export_open(NULL, "/proc/mailsink-no/mbox", NULL, err, sizeof err);
    CHECK(!ex && strncmp(err, "--mbox /proc/mailsink-no/mbox: ", 31) == 0, "err: %s", err);

    char cmd_rm[] = "rm";
    char *rm[] = {cmd_rm, "-rf", base, NULL};
    exec_pool *p = exec_pool_new(1, 10);
    run1(p, rm, NULL, NULL, 0, NULL);
    exec_pool_free(p);
}

int
main(void)
{
    /* As libsmtpd does: the exec module must cope with EPIPE instead of dying. */
    signal(SIGPIPE, SIG_IGN);
    test_policy_hosts();
    test_policy_bad_cidr();
    test_policy_globs();
    test_exec();
    test_export();
    printf("hooks selftest: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
