/*
 * log.h - mailsink's diagnostics on stderr, as text ("mailsink: ...") or as one JSON
 * object per line (--log-format json), and the session transcripts of -v. Any thread:
 * each line is written with one fwrite under a lock, so lines never interleave.
 */
#ifndef MAILSINK_LOG_H
#define MAILSINK_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO } log_level;

void log_init(int json, int verbose);
int log_is_verbose(void);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One transcript line of a session: dir is '<' (client), '>' (server) or '-' (note). */
void log_transcript(uint64_t session, char dir, const char *line, size_t len);

#endif
