/*
 * exec.c - the hook programs: a fixed pool of worker threads takes jobs from one queue
 * (mutex + condvar); each job is posix_spawnp with an argv vector (no shell ever sees
 * envelope data, OpenSMTPD CVE-2020-7247), the message fed on a pipe and the first line
 * of stdout kept, all under one deadline after which the child's process group is killed.
 *
 * Workers block every signal: process signals go to the main thread, and a SIGPIPE from
 * writing to a child that stopped reading stays pending on the worker (where we consume
 * it) instead of killing the process, whatever the process-wide disposition is.
 */
/* Only for posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): without it a child
   inherits every descriptor someone else left open without close-on-exec (ones our own
   parent passed us, say). Everything else here is POSIX 2008, and the code builds and
   works without it. */
#define _GNU_SOURCE 1

#include "mailsink/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(_GNU_SOURCE) && defined(__GLIBC__) &&                                                  \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define EXEC_HAVE_CLOSEFROM 1
#endif

extern char **environ;

#define EXEC_LINE_MAX (sizeof(((exec_result *)0)->first_line) - 1)
#define EXEC_WRITE_CHUNK 65536
/* How often a running child is checked for exit while its stdout stays open (a
   grandchild may hold stdout after the child itself has exited). */
#define EXEC_POLL_MS 100
/* Jobs (and their stdin octets) that may wait for a worker. */
#define EXEC_QUEUE_MAX 1024
#define EXEC_QUEUE_MAX_BYTES ((size_t)256 << 20)
#define EXEC_IDLE_MS 5
/* Reads per wakeup, so a child that writes without pause cannot keep us past the
   deadline check. */
#define EXEC_READS_PER_STEP 256

typedef struct exec_job {
    struct exec_job *next;
    char **argv;
    char **extra_env; /* NULL when none */
    char *in;
    size_t in_len;
    exec_done_cb done;
    void *ctx;
} exec_job;

struct exec_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    exec_job *head, *tail;
    size_t queued;       /* jobs waiting for a worker */
    size_t queued_bytes; /* their stdin octets */
    bool stopping;
    unsigned timeout_s;
    char **env; /* environ as it was at exec_pool_new */
    size_t env_count;
    pthread_t *threads;
    unsigned nthreads;
};

/* The child's side of a job as seen from the worker. */
typedef struct exec_io {
    int in_fd;  /* write end of the child's stdin; -1 once all is written or refused */
    int out_fd; /* read end of the child's stdout; -1 at EOF */
    const char *in;
    size_t in_len, in_off;
    char line[EXEC_LINE_MAX + 1];
    size_t line_len;
    bool line_done, line_cut;
} exec_io;

/* Without pipe2 (not in POSIX 2008) a pipe is made close-on-exec in a second step; this
   lock keeps our own spawns out of that window so no child inherits another job's pipe. */
static pthread_mutex_t exec_spawn_mu = PTHREAD_MUTEX_INITIALIZER;

static void
exec_strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

static char **
exec_strv_dup(char *const v[])
{
    size_t n = 0;
    while (v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            exec_strv_free(out);
            return NULL;
        }
    }
    return out;
}

static void
exec_job_free(exec_job *job)
{
    if (!job)
        return;
    exec_strv_free(job->argv);
    exec_strv_free(job->extra_env);
    free(job->in);
    free(job);
}

static void
exec_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Close-on-exec, and never 0-2: if the process runs with a standard fd closed, a pipe
   end landing there would be overwritten by the child's own dup2 onto 0 or 1. */
static int
exec_fd_prepare(int *fd)
{
    if (*fd < 3) {
        int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            return -1;
        close(*fd);
        *fd = moved;
        return 0;
    }
    return fcntl(*fd, F_SETFD, FD_CLOEXEC);
}

static int
exec_pipe(int fds[2])
{
    if (pipe(fds) < 0) {
        fds[0] = fds[1] = -1;
        return -1;
    }
    if (exec_fd_prepare(&fds[0]) < 0 || exec_fd_prepare(&fds[1]) < 0) {
        exec_close(&fds[0]);
        exec_close(&fds[1]);
        return -1;
    }
    return 0;
}

static bool
exec_env_overridden(const char *entry, char *const extra[])
{
    size_t nlen = strcspn(entry, "=");
    for (size_t i = 0; extra && extra[i]; i++)
        if (strncmp(extra[i], entry, nlen) == 0 && extra[i][nlen] == '=')
            return true;
    return false;
}

/* The inherited environment, minus the names the job sets itself (so the child sees one
   MAILSINK_SENDER, ours), plus the job's. Pointers only; the strings stay where they are. */
static char **
exec_env_build(const exec_pool *p, const exec_job *job)
{
    size_t extra = 0;
    while (job->extra_env && job->extra_env[extra])
        extra++;
    char **envp = calloc(p->env_count + extra + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < p->env_count; i++)
        if (!exec_env_overridden(p->env[i], job->extra_env))
            envp[n++] = p->env[i];
    for (size_t i = 0; i < extra; i++)
        if (strchr(job->extra_env[i], '='))
            envp[n++] = job->extra_env[i];
    envp[n] = NULL;
    return envp;
}

/* The child gets default SIGPIPE (libsmtpd ignores it, and an ignored signal survives
   exec), an empty signal mask (ours blocks everything), and its own process group so
   the deadline kill reaches whatever it started. */
static int
exec_spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr, int in_fd, int out_fd)
{
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    int rc = in_fd >= 0 ? posix_spawn_file_actions_adddup2(fa, in_fd, 0)
                        : posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, out_fd, 1);
#ifdef EXEC_HAVE_CLOSEFROM
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &def);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETPGROUP);
    return rc;
}

/* Start the child; on success io holds our ends of its pipes (non-blocking). */
static int
exec_spawn(const exec_pool *p, const exec_job *job, exec_io *io, pid_t *pid)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char **envp = exec_env_build(p, job);
    if (!envp)
        return -1;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out_env;
    if (posix_spawnattr_init(&attr) != 0)
        goto out_fa;

    pthread_mutex_lock(&exec_spawn_mu);
    if ((job->in_len == 0 || exec_pipe(in_pipe) == 0) && exec_pipe(out_pipe) == 0 &&
        exec_spawn_setup(&fa, &attr, in_pipe[0], out_pipe[1]) == 0 &&
        posix_spawnp(pid, job->argv[0], &fa, &attr, job->argv, envp) == 0)
        rc = 0;
    pthread_mutex_unlock(&exec_spawn_mu);

    exec_close(&in_pipe[0]);
    exec_close(&out_pipe[1]);
    if (rc == 0) {
        io->in_fd = in_pipe[1];
        io->out_fd = out_pipe[0];
        if ((io->in_fd >= 0 && fcntl(io->in_fd, F_SETFL, O_NONBLOCK) < 0) ||
            fcntl(io->out_fd, F_SETFL, O_NONBLOCK) < 0) {
            /* Blocking ends would still work within the deadline only by luck; kill. */
            kill(-*pid, SIGKILL);
            while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                ;
            exec_close(&io->in_fd);
            exec_close(&io->out_fd);
            rc = -1;
        }
    } else {
        exec_close(&in_pipe[1]);
        exec_close(&out_pipe[0]);
    }
    posix_spawnattr_destroy(&attr);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_env:
    free(envp);
    return rc;
}

/* The EPIPE's SIGPIPE is pending on this thread (workers block it): take it off so it
   can never be delivered later. */
static void
exec_sigpipe_consume(void)
{
    sigset_t pending, pipe_only;
    struct timespec zero = {0, 0};
    if (sigpending(&pending) != 0 || !sigismember(&pending, SIGPIPE))
        return;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
        ;
}

static void
exec_io_write(exec_io *io)
{
    while (io->in_fd >= 0 && io->in_off < io->in_len) {
        size_t n = io->in_len - io->in_off;
        if (n > EXEC_WRITE_CHUNK)
            n = EXEC_WRITE_CHUNK;
        ssize_t w = write(io->in_fd, io->in + io->in_off, n);
        if (w > 0) {
            io->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EPIPE: the child exited or closed stdin without reading it all. Not an error
           of ours; its exit status says what it thought of the message. */
        if (w < 0 && errno == EPIPE)
            exec_sigpipe_consume();
        exec_close(&io->in_fd);
    }
    /* All written: close so the child sees end of file. */
    exec_close(&io->in_fd);
}

/* Keep the first line, without control characters, at most EXEC_LINE_MAX bytes; the
   rest of the output is read only so that the child never blocks on a full pipe. */
static void
exec_io_take(exec_io *io, const char *data, size_t n)
{
    for (size_t i = 0; i < n && !io->line_done; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\n')
            io->line_done = true;
        else if (c < 0x20 || c == 0x7f)
            continue;
        else if (io->line_len < EXEC_LINE_MAX)
            io->line[io->line_len++] = (char)c;
        else
            io->line_cut = true;
    }
}

/* Read what is there. max_reads bounds the drain after the child has exited, when a
   grandchild could keep the pipe busy forever. */
static void
exec_io_read(exec_io *io, unsigned max_reads)
{
    char buf[4096];
    while (io->out_fd >= 0 && max_reads-- > 0) {
        ssize_t r = read(io->out_fd, buf, sizeof buf);
        if (r > 0) {
            exec_io_take(io, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        exec_close(&io->out_fd);
    }
}

static void
exec_io_step(exec_io *io, long left_ms)
{
    struct pollfd fds[2];
    nfds_t n = 0;
    int in_idx = -1, out_idx = -1;
    if (io->in_fd >= 0) {
        in_idx = (int)n;
        fds[n++] = (struct pollfd){.fd = io->in_fd, .events = POLLOUT};
    }
    if (io->out_fd >= 0) {
        out_idx = (int)n;
        fds[n++] = (struct pollfd){.fd = io->out_fd, .events = POLLIN};
    }
    long cap = n > 0 ? EXEC_POLL_MS : EXEC_IDLE_MS;
    int timeout = (int)(left_ms < cap ? left_ms : cap);
    int r = poll(n > 0 ? fds : NULL, n, timeout);
    if (r <= 0)
        return;
    if (in_idx >= 0 && fds[in_idx].revents) {
        /* POLLERR/POLLHUP: the read end is gone; write() reports it as EPIPE. */
        exec_io_write(io);
    }
    if (out_idx >= 0 && fds[out_idx].revents)
        exec_io_read(io, EXEC_READS_PER_STEP);
}

static long
exec_ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(deadline->tv_sec - now.tv_sec) * 1000 +
           (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Feed, read and wait until the child is reaped or the deadline passes; always reaps. */
static int
exec_supervise(pid_t pid, exec_io *io, const struct timespec *deadline)
{
    int st = 0;
    exec_io_write(io);
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            exec_io_read(io, 64);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        if (r < 0 && errno != EINTR)
            return -1; /* ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN) */
        long left = exec_ms_left(deadline);
        if (left <= 0)
            break;
        exec_io_step(io, left);
    }
    /* The whole group: a script's own children die with it and release our pipes. The
       leader is not reaped yet, so its pid (= the group id) cannot have been reused. */
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

/* Cut a truncated line back to a UTF-8 character boundary, so a reply built from it
   never ends in half a character. */
static void
exec_line_trim_utf8(exec_io *io)
{
    size_t i = io->line_len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)io->line[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)io->line[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && back < need)
        io->line_len = i - 1;
}

static void
exec_job_run(const exec_pool *p, const exec_job *job, exec_result *res)
{
    exec_io io = {.in_fd = -1, .out_fd = -1, .in = job->in, .in_len = job->in_len};
    struct timespec deadline;
    pid_t pid;
    res->status = -1;
    res->first_line[0] = '\0';
    /* The deadline counts from the start of the program, not from queueing. */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)p->timeout_s;
    if (exec_spawn(p, job, &io, &pid) != 0)
        return;
    res->status = exec_supervise(pid, &io, &deadline);
    exec_close(&io.in_fd);
    exec_close(&io.out_fd);
    if (io.line_cut)
        exec_line_trim_utf8(&io);
    memcpy(res->first_line, io.line, io.line_len);
    res->first_line[io.line_len] = '\0';
}

static void *
exec_worker(void *arg)
{
    exec_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        exec_job *job = p->head;
        if (job) {
            p->head = job->next;
            if (!p->head)
                p->tail = NULL;
            p->queued--;
            p->queued_bytes -= job->in_len;
        }
        pthread_mutex_unlock(&p->mu);
        if (!job)
            return NULL; /* stopping and the queue is empty */
        exec_result res;
        exec_job_run(p, job, &res);
        job->done(&res, job->ctx);
        exec_job_free(job);
    }
}

static void
exec_pool_stop(exec_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

exec_pool *
exec_pool_new(unsigned workers, unsigned timeout_s)
{
    exec_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    /* Every wait has a deadline (rule 5): 0 does not mean "forever". */
    p->timeout_s = timeout_s > 0 ? timeout_s : 1;
    if (workers == 0)
        workers = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    /* A snapshot, so workers never read environ while another thread might setenv. */
    p->env = exec_strv_dup(environ ? environ : (char *[]){NULL});
    p->threads = calloc(workers, sizeof *p->threads);
    if (!p->env || !p->threads)
        goto fail;
    while (p->env[p->env_count])
        p->env_count++;

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, exec_worker, p) != 0)
            break;
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->nthreads == workers)
        return p;
fail:
    exec_pool_free(p);
    return NULL;
}

void
exec_pool_free(exec_pool *p)
{
    if (!p)
        return;
    exec_pool_stop(p);
    /* Workers leave only with an empty queue; anything here was never started. */
    while (p->head) {
        exec_job *job = p->head;
        p->head = job->next;
        exec_job_free(job);
    }
    exec_strv_free(p->env);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int
exec_pool_run(exec_pool *p, char *const argv[], char *const extra_env[], const char *stdin_data,
              size_t stdin_len, exec_done_cb done, void *ctx)
{
    if (!p || !argv || !argv[0] || !done)
        return -1;
    exec_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->done = done;
    job->ctx = ctx;
    job->argv = exec_strv_dup(argv);
    job->extra_env = extra_env ? exec_strv_dup(extra_env) : NULL;
    if (stdin_data && stdin_len > 0) {
        job->in = malloc(stdin_len);
        if (job->in) {
            memcpy(job->in, stdin_data, stdin_len);
            job->in_len = stdin_len;
        }
    }
    if (!job->argv || (extra_env && !job->extra_env) || (stdin_data && stdin_len > 0 && !job->in)) {
        exec_job_free(job);
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    /* clients that hand over mail faster than the programs take it must not grow our
       memory: past the bounds the hook answers 451 and the client retries later */
    bool refused = p->stopping || p->queued >= EXEC_QUEUE_MAX ||
                   p->queued_bytes + job->in_len > EXEC_QUEUE_MAX_BYTES;
    if (!refused) {
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->queued++;
        p->queued_bytes += job->in_len;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (refused)
        exec_job_free(job);
    return refused ? -1 : 0;
}
