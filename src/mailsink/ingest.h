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

/* One message on its way to the store: owned copies of everything. */
typedef struct ingest_item {
    smtpd_server *srv;
    smtpd_ticket ticket;
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
void ingest_item_free(ingest_item *it);

typedef struct ingest_limits {
    uint64_t max_messages;  /* 0: keep all */
    uint64_t max_age_s;     /* 0: keep all */
    size_t max_queue_bytes; /* queued raw octets before enqueue refuses */
} ingest_limits;

/* Start the writer thread on st (which it owns from now on until ingest_stop). ex may
   be NULL. NULL on failure. */
ingest *ingest_start(store *st, exporter *ex, const ingest_limits *lim);

/* Queue an item (ownership passes). -1 when the queue is full or stopping: the caller
   answers the client itself (and still owns the item). */
int ingest_enqueue(ingest *in, ingest_item *it);

/* Write what is queued, stop the thread and free the ingest (not the store). */
void ingest_stop(ingest *in);

#endif
