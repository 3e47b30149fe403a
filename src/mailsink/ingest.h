/*
 * ingest.h - the store writer. The deliver hook (on an I/O thread) copies each message
 * into an ingest_item and answers PENDING; the ingest thread takes the queued items,
 * parses their summaries, writes them in one transaction, and only after COMMIT
 * completes each item's pending answer, so the client's 250 means "committed". When the
 * commit fails, every item of the batch gets a 451 and nothing of it is visible.
 *
 * Threads: ingest_enqueue from any thread; everything else from the owner (main).
 */
#ifndef MAILSINK_INGEST_H
#define MAILSINK_INGEST_H

#include "mailsink/store/export.h"
#include "mailsink/store/store.h"

#include <smtpd.h>

#include <stdint.h>

typedef struct ingest ingest;

/* How a message that did not come over SMTP (POST /api/v1/send) learns its fate, on the
   ingest thread after the commit (or its failure): rc 0 = stored, STORE_EFULL, -1. */
typedef void (*ingest_done_fn)(void *ctx, const char *id, int rc);

/* One message on its way to the store: owned copies of everything. */
typedef struct ingest_item {
    smtpd_server *srv; /* NULL for a message from elsewhere: then on_done is called */
    smtpd_ticket ticket;
    ingest_done_fn on_done;
    void *done_ctx;
    char **tags; /* tags to store with it (malloc'd strings), or NULL */
    size_t tag_count;
    char *id;
    int64_t received_ms;
    char *sender;
    char **rcpts;
    size_t rcpt_count;
    char *client_addr;
    char *helo;
    char *tls_version; /* NULL without TLS */
    char *tls_cipher;
    char *tls_peer;
    char *auth_user; /* NULL without AUTH */
    unsigned findings;
    char *raw;
    size_t raw_len;
    size_t trace_size;
    struct ingest_item *next;
} ingest_item;

/* Copy what the store needs from a deliver hook's arguments (on the I/O thread, during
   the hook). NULL when out of memory. */
ingest_item *ingest_item_new(smtpd_session *s, const smtpd_message *m);
/* An item for a message from elsewhere (the HTTP API): copies id, sender, rcpts, raw and
   tags; client_addr as given (e.g. the HTTP client's address); no trace headers. NULL
   when out of memory. */
ingest_item *ingest_item_new_local(const char *id, const char *sender, const char *const *rcpts,
                                   size_t rcpt_count, const char *raw, size_t raw_len,
                                   const char *client_addr, const char *const *tags,
                                   size_t tag_count, ingest_done_fn on_done, void *done_ctx);
void ingest_item_free(ingest_item *it);

typedef struct ingest_limits {
    uint64_t max_messages;  /* 0: keep all */
    uint64_t max_age_s;     /* 0: keep all */
    size_t max_queue_bytes; /* queued raw octets before enqueue refuses */
} ingest_limits;

/* Start the writer thread on st (which it owns from now on until ingest_stop). ex may
   be NULL. NULL on failure. */
ingest *ingest_start(store *st, exporter *ex, const ingest_limits *lim);

/* Called on the ingest thread after each committed batch with the ids stored, oldest
   first (the HTTP server's live "new" events and waiters). Set before traffic starts;
   the callback must not block. */
typedef void (*ingest_stored_fn)(void *ctx, const char *const *ids, size_t n);
void ingest_on_stored(ingest *in, ingest_stored_fn fn, void *ctx);

/* Queue an item (ownership passes). -1 when the queue is full or stopping: the caller
   answers the client itself (and still owns the item). */
int ingest_enqueue(ingest *in, ingest_item *it);

/* Write what is queued, stop the thread and free the ingest (not the store). */
void ingest_stop(ingest *in);

#endif
