/*
 * mime.h - what mailsink reads out of a message with GMime: the decoded headers the list
 * and search need, a text snippet, the decoded text for the full-text index, and the
 * attachments. Never trusts the message: malformed MIME gives what can be found, never
 * an error. Any thread (after mime_init).
 */
#ifndef MAILSINK_MIME_H
#define MAILSINK_MIME_H

#include <stddef.h>

typedef struct mime_summary {
    char *from; /* decoded, as displayed: "Name <addr>" (or "" when absent) */
    char *to;   /* decoded, comma-separated */
    char *cc;
    char *reply_to;
    char *subject;    /* decoded (RFC 2047) */
    char *date;       /* the Date header as found */
    char *message_id; /* without < > */
    char *snippet;    /* about 200 characters of text, whitespace collapsed */
    char *text;       /* decoded text of the text/plain (else HTML stripped) parts, for search;
                         at most 1 MiB */
    unsigned attachments;
    char *attachment_names; /* file names joined by "\n" ("" when none) */
} mime_summary;

/* Initialise GMime once per process (idempotent, thread-safe). */
void mime_init(void);

/* Parse data (a whole message, trace headers included or not). Every field of out is
   set (empty strings when absent); 0, or -1 when out of memory. */
int mime_summarize(const char *data, size_t len, mime_summary *out);
void mime_summary_cleanup(mime_summary *s);

#endif
