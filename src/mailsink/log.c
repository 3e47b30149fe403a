/* log.c - diagnostics and transcripts on stderr, text or JSON; see log.h. */
#include "mailsink/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_json;
static int log_verbose;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = {"error", "warn", "info"};

void
log_init(int json, int verbose)
{
    log_json = json;
    log_verbose = verbose;
}

int
log_is_verbose(void)
{
    return log_verbose;
}

static void
log_timestamp(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Write one JSON object as one line. Takes the reference. */
static void
log_write_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(obj);
    if (!s)
        return;
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s\n", s);
    pthread_mutex_unlock(&log_lock);
    free(s);
}

void
log_msg(log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (log_json) {
        char ts[40];
        log_timestamp(ts, sizeof ts);
        log_write_json(
            json_pack("{s:s, s:s, s:s}", "time", ts, "level", log_level_names[level], "msg", text));
        return;
    }
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "mailsink: %s%s\n", level == LOG_ERROR ? "error: " : "", text);
    pthread_mutex_unlock(&log_lock);
}

void
log_transcript(uint64_t session, char dir, const char *line, size_t len)
{
    /* client bytes are shown, never interpreted: controls become '?' */
    char safe[1024];
    size_t n = len < sizeof safe - 1 ? len : sizeof safe - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        safe[i] = (c < 32 || c == 127) ? '?' : (char)c;
    }
    safe[n] = '\0';
    if (log_json) {
        char ts[40];
        log_timestamp(ts, sizeof ts);
        const char *d = dir == '<' ? "in" : dir == '>' ? "out" : "info";
        json_t *obj = json_pack("{s:s, s:s, s:I, s:s, s:s}", "time", ts, "level", "debug",
                                "session", (json_int_t)session, "dir", d, "line", safe);
        if (!obj) /* not UTF-8: Jansson refuses it; show the line as a note */
            obj = json_pack("{s:s, s:s, s:I, s:s, s:s}", "time", ts, "level", "debug", "session",
                            (json_int_t)session, "dir", d, "line", "(not UTF-8)");
        if (obj)
            log_write_json(obj);
        return;
    }
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "mailsink: %llu %c %s\n", (unsigned long long)session, dir, safe);
    pthread_mutex_unlock(&log_lock);
}
