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
    char *auth_user; /* "" without AUTH */
    mime_summary summary;
} store_row;

typedef enum store_mode { STORE_WRITER, STORE_READER } store_mode;

/*
 * Open (and for the writer create and migrate) the database at path; ":memory:" is a
 * private in-memory database (writer only). Returns NULL with a message in err
 * ("cannot open database /x: unable to open database file", "database /x is corrupt").
 * The writer runs PRAGMA integrity_check (quick_check) on open.
 */
store *store_open(const char *path, store_mode mode, char *err, size_t errsize);
void store_close(store *st);

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

#endif
