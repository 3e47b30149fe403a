/*
 * sqlite_stmts.c - statements kept prepared on a connection between calls, found again
 * by their SQL text.
 *
 * The HTTP API's reads are small: a page of 50 summaries, the mailbox counts, one
 * message. Preparing their statements cost more than running them (a third of the HTTP
 * thread's time listing messages, most of it SQLite's parser and its allocations), and
 * the same few texts come back on every request: the search conditions bind their
 * values as parameters, so a text only differs by the shape of the query. A small cache
 * per connection keeps the last SQLITE_STMT_CACHE of them.
 *
 * A statement handed out is busy until it comes back through sqlite_stmt_put, which
 * resets it (ending its read transaction, so a cached statement never holds a snapshot
 * or blocks a checkpoint) and clears its bindings. A text already busy (one query nested
 * in another) is prepared again into another slot; only when every slot is busy, or the
 * text is longer than SQLITE_STMT_CACHE_SQL_MAX (a search of many terms: rare, and a
 * large statement to keep), is the statement used once and finalized by put. Same
 * threading as the store handle: one thread at a time.
 */
#include "mailsink/store/sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

enum { SQLITE_STMT_CACHE_SQL_MAX = 4096 };

sqlite3_stmt *
sqlite_stmt_get(store *st, const char *sql)
{
    sqlite_cached_stmt *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < SQLITE_STMT_CACHE; i++) {
        sqlite_cached_stmt *c = &st->cache[i];
        if (c->sql == NULL) {
            if (free_slot == NULL)
                free_slot = c;
            continue;
        }
        if (c->busy)
            continue;
        if (strcmp(c->sql, sql) == 0) {
            c->busy = true;
            c->last_use = ++st->cache_clock;
            return c->stmt;
        }
        if (oldest == NULL || c->last_use < oldest->last_use)
            oldest = c;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    sqlite_cached_stmt *slot = free_slot ? free_slot : oldest;
    char *copy = slot && strlen(sql) <= SQLITE_STMT_CACHE_SQL_MAX ? strdup(sql) : NULL;
    if (copy == NULL)
        return stmt; /* not kept (see above, or out of memory): finalized by put */
    if (slot->sql != NULL) {
        sqlite3_finalize(slot->stmt);
        free(slot->sql);
    }
    *slot = (sqlite_cached_stmt){copy, stmt, true, ++st->cache_clock};
    return stmt;
}

void
sqlite_stmt_put(store *st, sqlite3_stmt *stmt)
{
    if (stmt == NULL)
        return;
    for (size_t i = 0; i < SQLITE_STMT_CACHE; i++) {
        sqlite_cached_stmt *c = &st->cache[i];
        if (c->sql != NULL && c->stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            c->busy = false;
            return;
        }
    }
    sqlite3_finalize(stmt);
}

void
sqlite_stmt_cache_clear(store *st)
{
    for (size_t i = 0; i < SQLITE_STMT_CACHE; i++) {
        sqlite_cached_stmt *c = &st->cache[i];
        sqlite3_finalize(c->stmt);
        free(c->sql);
        *c = (sqlite_cached_stmt){0};
    }
}
