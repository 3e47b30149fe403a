/*
 * exec.h - running the seed's hooks as programs (--deliver-exec, --validate-*-exec)
 * without ever involving a shell: argv is given as a vector, envelope data goes in as
 * separate argv entries or environment variables, the message on stdin. A small pool of
 * worker threads runs them so that the server's I/O thread never blocks; each job has a
 * deadline after which the child is killed (SIGKILL) and reaped. No zombies, no fd leaks
 * (every fd but 0-2 is close-on-exec or closed in the child).
 */
#ifndef MAILSINK_EXEC_H
#define MAILSINK_EXEC_H

#include <stddef.h>

typedef struct exec_pool exec_pool;

typedef struct exec_result {
    int status;           /* the exit status 0..255; -1: could not start, killed at the
                             deadline, or died by a signal */
    char first_line[512]; /* the first line of the child's stdout, without newline,
                             control characters removed ("" when none) */
} exec_result;

/* Called once per job, on a worker thread. */
typedef void (*exec_done_cb)(const exec_result *r, void *ctx);

/* workers: threads (and so programs running at once); timeout_s: deadline per job,
   counted from when the job starts (0 is taken as 1 s). The environment children inherit
   is a snapshot taken here. Closing every inherited fd but 0-2 in the child relies on
   glibc >= 2.34 (posix_spawn_file_actions_addclosefrom_np); our own fds are
   close-on-exec in any case. */
exec_pool *exec_pool_new(unsigned workers, unsigned timeout_s);
/* Finish the queued and running jobs (each within its deadline), then free. */
void exec_pool_free(exec_pool *p);

/*
 * Queue a job (at most 1024 jobs or 256 MiB of stdin wait at once; past that -1, and
 * the caller answers 451): argv (NULL-terminated; argv[0] searched in PATH), extra_env
 * (NULL-terminated "NAME=value" strings added to the inherited environment; may be
 * NULL), stdin_data/stdin_len (may be NULL/0: stdin is /dev/null). Everything is
 * copied. Returns 0, or -1 when out of memory or the queue is full (done is then not
 * called).
 */
int exec_pool_run(exec_pool *p, char *const argv[], char *const extra_env[], const char *stdin_data,
                  size_t stdin_len, exec_done_cb done, void *ctx);

#endif
