/*
 * sqlite_internal.h - what the SQLite store's two files share: the handle, the row
 * query, and the helpers both use. sqlite.c opens, migrates, writes and reads single
 * messages (the schema is described there); sqlite_query.c compiles search queries and
 * runs the HTTP API's queries and bulk changes. Same threading as store.h.
 */
#ifndef MAILSINK_STORE_SQLITE_INTERNAL_H
#define MAILSINK_STORE_SQLITE_INTERNAL_H

#include "mailsink/store/store.h"

#include <sqlite3.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite_checkpointer sqlite_checkpointer;

/* One statement of a connection's cache (sqlite_stmts.c); sql NULL: an empty slot. */
enum { SQLITE_STMT_CACHE = 16 };
typedef struct sqlite_cached_stmt {
    char *sql;
    sqlite3_stmt *stmt;
    bool busy;         /* handed out by sqlite_stmt_get, not yet put back */
    uint64_t last_use; /* the least recently used one makes room */
} sqlite_cached_stmt;

struct store {
    sqlite3 *db;
    sqlite_checkpointer *checkpointer; /* the writer's WAL checkpoints (sqlite_checkpoint.c) */
    char *path;
    store_mode mode;
    int schema; /* the schema this handle reads: a reader may see an older one until
                   the writer has migrated it (2 has tls_peer, 3 the tags and counts) */
    bool temp;  /* ":memory:": path is a temporary file that store_close deletes */
    /* the writer's hot path, prepared once (NULL in readers) */
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *put_msg;
    sqlite3_stmt *put_fts_pending; /* one message's text into temp.fts_pending */
    sqlite3_stmt *put_fts;         /* the whole batch from temp.fts_pending into FTS5 */
    sqlite3_stmt *clear_fts_pending;
    sqlite3_stmt *put_raw;
    sqlite3_stmt *put_tag;
    sqlite3_stmt *put_msg_tag;
    /* the read queries' statements, kept prepared (sqlite_stmts.c) */
    sqlite_cached_stmt cache[SQLITE_STMT_CACHE];
    uint64_t cache_clock;
};

/* What store_row needs, in the order sqlite_row_fill reads it; peer is "tls_peer", or
   "NULL" on a database of schema 1; tags the tag names of schema 3, or "''" before. */
#define SQLITE_ROW_SELECT(peer, tags)                                                              \
    "SELECT seq, received_ms, findings, size, read, attachments,"                                  \
    " id, sender, (SELECT group_concat(value, ', ') FROM json_each(messages.rcpts)),"              \
    " client_addr, helo, from_addr, to_addr, cc_addr, reply_to, subject, date_hdr,"                \
    " message_id, snippet, attachment_names, tls_version, tls_cipher, " peer ", auth_user, " tags  \
    ", rcpts FROM messages"
/* A row's tag names, "\n"-separated, sorted (group_concat keeps the subquery's order). */
#define SQLITE_ROW_TAGS                                                                            \
    "(SELECT group_concat(name, char(10)) FROM (SELECT t.name FROM message_tags mt"                \
    " JOIN tags t ON t.id = mt.tag_id WHERE mt.seq = messages.seq ORDER BY t.name))"
/* The row query with tail appended, for the schema of st. */
#define SQLITE_ROWS(st, tail)                                                                      \
    ((st)->schema >= 3   ? SQLITE_ROW_SELECT("tls_peer", SQLITE_ROW_TAGS) tail                     \
     : (st)->schema >= 2 ? SQLITE_ROW_SELECT("tls_peer", "''") tail                                \
                         : SQLITE_ROW_SELECT("NULL", "''") tail)

/* Tagging a message: create the tag (?1 name), then link it (?1 seq, ?2 name). */
extern const char sqlite_put_tag_sql[];
extern const char sqlite_put_msg_tag_sql[];

/* Steps a statement that returns no rows and resets it; SQLITE_OK or the error. */
int sqlite_step_done(sqlite3_stmt *stmt);
/* Trims white space around *name (moving it); the trimmed length (0: no tag). */
size_t sqlite_tag_trim(const char **name);
/* Links message seq to tag name with the two statements above; SQLITE_OK or the error. */
int sqlite_tag_add(sqlite3_stmt *put_tag, sqlite3_stmt *put_msg_tag, int64_t seq, const char *name);
/* A malloc'd copy of a text column ("" for NULL); NULL when out of memory. */
char *sqlite_col_dup(sqlite3_stmt *stmt, int col);
/* Steps a SQLITE_ROWS query, passing rows to cb until it returns false; rows or -1. */
long sqlite_rows_run(sqlite3_stmt *stmt, bool (*cb)(const store_row *row, void *ctx), void *ctx);
/* Whether a search word has something the FTS tokenizer indexes. */
bool sqlite_fts_term_is_useful(const char *t, size_t n);
/* Appends [" AND "]"t"* to out at len (room: 2n + 8); the new length, not terminated. */
size_t sqlite_fts_term(char *out, size_t len, const char *t, size_t n);
/* PRAGMA user_version into *version; 0 or -1 (err may be NULL). */
int sqlite_user_version(store *st, int *version, char *err, size_t errsize);

/* sqlite_stmts.c: a prepared statement for sql (from the connection's cache when it has
   one that is not in use), reset and without bindings; NULL on error. Give it back with
   sqlite_stmt_put (which takes any statement: one not from the cache is finalized), and
   sqlite_stmt_cache_clear finalizes the cache before the connection closes. */
sqlite3_stmt *sqlite_stmt_get(store *st, const char *sql);
void sqlite_stmt_put(store *st, sqlite3_stmt *stmt);
void sqlite_stmt_cache_clear(store *st);
/* sqlite_checkpoint.c: run the writer's WAL checkpoints on a thread of their own (0, or
   -1 and the writer keeps SQLite's automatic checkpoints); stop it before closing. */
int sqlite_checkpointer_start(store *st);
void sqlite_checkpointer_stop(store *st);

#endif
