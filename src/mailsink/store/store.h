/*
 * store.h - where mailsink keeps messages. The interface the program uses; sqlite.c is
 * the default implementation (PostgreSQL and others plug in beside it later).
 *
 * One writer (the ingest thread) puts batches; any number of readers (the subcommands,
 * later the HTTP server) open their own handle on the same database, safely while the
 * server runs (SQLite WAL). A handle is used by one thread at a time.
 */
#ifndef MAILSINK_STORE_H
#define MAILSINK_STORE_H

#include "mailsink/mime.h"
#include "mailsink/search.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* A message as the ingest thread writes it. All pointers borrowed for the call. */
typedef struct store_msg {
    const char *id;      /* libsmtpd's id, also in the 250 reply */
    int64_t received_ms; /* Unix time in ms */
    const char *sender;  /* "" for the null sender */
    const char *const *rcpts;
    size_t rcpt_count;
    const char *client_addr;
    const char *helo;  /* may be NULL */
    unsigned findings; /* smtpd_finding bits */
    const char *raw;   /* trace headers + message, as libsmtpd handed it */
    size_t raw_len;
    size_t trace_size;           /* octets of raw that are our trace headers */
    const mime_summary *summary; /* parsed with GMime (mime.h) */
    const char *tls_version;     /* "TLSv1.3", or NULL without TLS */
    const char *tls_cipher;      /* or NULL */
    const char *tls_peer;        /* client certificate subject, or NULL */
    const char *auth_user;       /* the AUTH user, or NULL */
    const char *const *tags;     /* tags to start with (POST /api/v1/send), or NULL */
    size_t tag_count;
} store_msg;

/* A stored message's summary, for list and show. Strings owned by the row; NULL
   columns come back as "". summary.text is filled by store_get only ("" in list rows).
   Recipients are stored as a JSON array and returned joined. */
typedef struct store_row {
    int64_t seq; /* insertion order */
    char *id;
    int64_t received_ms;
    char *sender;
    char *rcpts; /* recipients joined with ", " */
    char *client_addr;
    char *helo;
    unsigned findings;
    size_t size; /* octets of the raw message */
    bool read;
    char *tls_version; /* "" without TLS */
    char *tls_cipher;
    char *tls_peer;
    char *auth_user;  /* "" without AUTH */
    char *tags;       /* tag names joined by "\n", sorted case-insensitively; "" = none */
    char *rcpts_json; /* the envelope recipients as a JSON array of strings */
    mime_summary summary;
} store_row;

typedef enum store_mode { STORE_WRITER, STORE_READER } store_mode;

/*
 * Open (and for the writer create and migrate) the database at path; ":memory:" is a
 * database that nothing keeps after store_close (writer only; see store_path). Returns
 * NULL with a message in err
 * ("cannot open database /x: unable to open database file", "database /x is corrupt").
 * The writer runs PRAGMA integrity_check (quick_check) on open.
 */
store *store_open(const char *path, store_mode mode, char *err, size_t errsize);
void store_close(store *st);

/* The path another handle (a STORE_READER, e.g. the HTTP server's) opens to see this
   database. For ":memory:" the writer keeps its messages in a temporary file (under
   $TMPDIR, else /tmp, mode 0600; deleted by store_close, but left behind if the process
   is killed), so that readers work the same way; this returns that file's path. Valid
   until store_close. */
const char *store_path(const store *st);

#define STORE_EFULL (-2) /* the database or the disk is full */

/* Write n messages in one transaction; 0 once COMMIT succeeded, else -1 (or STORE_EFULL)
   and nothing of the batch is visible (err says why). */
int store_put_batch(store *st, const store_msg *msgs, size_t n, char *err, size_t errsize);

/* Delete the oldest messages beyond max_messages (0 = no limit) and those received before
   older_than_ms (0 = none). Returns the number deleted, or -1. */
long store_prune(store *st, uint64_t max_messages, int64_t older_than_ms);

/* Newest first, at most limit rows (0 = all). query: NULL/"" for all, else an FTS5
   search over subject, addresses and text. The callback returns false to stop. Returns
   rows seen, or -1. */
long store_list(store *st, const char *query, size_t limit,
                bool (*cb)(const store_row *row, void *ctx), void *ctx);

/* One message by id ("latest" = the newest). 0, or -1 when not found (or on error). */
int store_get(store *st, const char *id, store_row *row);
/* The raw message (malloc'd, caller frees). 0 or -1. */
int store_get_raw(store *st, const char *id, char **data, size_t *len);
void store_row_cleanup(store_row *row);

/* Delete one message (0; -1 when not found) or all (returns count). A STORE_READER
   handle may delete too (the subcommands do, while the server runs). */
int store_delete(store *st, const char *id);
long store_delete_all(store *st);

/* How many messages have a recipient containing `to` (case-insensitive; NULL = any)
   and a subject containing `subject` (NULL = any). -1 on error. */
long store_count_matching(store *st, const char *to, const char *subject);

/* Number of stored messages, or -1. */
long store_count(store *st);

/* ---- for the HTTP API (any handle; search.h's query, NULL or count 0 = every message) ----
   Rows come newest first (by seq). Every function here is bounded by the rows it touches
   and uses indexes or counters kept by triggers, so that counting and paging stay fast at
   a million messages. */

/* The mailbox: all messages and unread ones. 0, or -1. */
typedef struct store_counts {
    long total;
    long unread;
} store_counts;
int store_mailbox_counts(store *st, store_counts *out);

/* Rows matching q, skipping the first `start`, at most limit (0 = all); cb as in
   store_list (summary.text is ""). Returns rows passed to cb, or -1. */
long store_search(store *st, const search_query *q, size_t start, size_t limit,
                  bool (*cb)(const store_row *row, void *ctx), void *ctx);

/* How many match q, and how many of those are unread. 0, or -1. */
int store_search_counts(store *st, const search_query *q, store_counts *out);

/* The newest message matching q (the API's "latest?query="): its id, malloc'd, or NULL
   when none matches (or on error). */
char *store_latest_id(store *st, const search_query *q);

/* Mark read/unread: the listed ids (n > 0), else the messages matching q (NULL = all).
   Returns the number of rows changed, or -1. Unknown ids are skipped. */
long store_set_read(store *st, const char *const *ids, size_t n, const search_query *q, bool read);

/* Delete the listed ids (n > 0), else the messages matching q (NULL = all). The ids
   actually deleted are passed to cb (may be NULL) for the live "delete" event. Returns
   the number deleted, or -1. */
long store_delete_matching(store *st, const char *const *ids, size_t n, const search_query *q,
                           void (*cb)(const char *id, void *ctx), void *ctx);

/* Replace the tags of the listed messages with tags (ntags 0 = remove all). Tag names
   are trimmed; empty ones dropped; duplicates (case-insensitive) kept once. Returns the
   number of messages changed, or -1. */
long store_set_tags(store *st, const char *const *ids, size_t n, const char *const *tags,
                    size_t ntags);

/* Every tag in use with its message count, sorted case-insensitively; cb returns false
   to stop. Returns the number of tags, or -1. */
long store_tags(store *st, bool (*cb)(const char *tag, long count, void *ctx), void *ctx);

/* The database's size in bytes (the pages in use, those still in the WAL included; for
   :memory: its temporary file's, the same through the writer and a reader), or -1. */
int64_t store_file_size(store *st);

/* Monotonic change counter: grows whenever any connection commits a change to the
   messages (SQLite's PRAGMA data_version for other connections plus this handle's own
   writes). Lets a reader tell cheaply whether to look again. -1 on error. */
int64_t store_change_counter(store *st);

#endif
