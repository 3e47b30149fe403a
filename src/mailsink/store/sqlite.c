/*
 * sqlite.c - store.h on SQLite (3.35+ for the built-in JSON functions; FTS5 required).
 *
 * Durability: WAL with synchronous=NORMAL. A COMMIT is in the WAL file (the OS has it)
 * before store_put_batch returns, so it survives a crash or SIGKILL of the process; an OS
 * crash or power loss may lose the last commits. synchronous=FULL would close that gap at
 * the price of an fsync per batch; nothing asks for it yet.
 *
 * Schema (migrations 1 and 2; PRAGMA user_version counts the migrations applied):
 *  - messages: one row per acknowledged message. seq (AUTOINCREMENT, so never reused, not
 *    even after delete-all) is the insertion order and what "newest" means: the wall
 *    clock may jump, seq does not. rcpts is a JSON array of the envelope recipients.
 *    tls_version, tls_cipher, tls_peer (the client certificate's subject) and auth_user
 *    are NULL for a session without TLS or AUTH; read and tags (empty = none) belong to
 *    the HTTP API. The *_addr columns are GMime's display form ("Name" <addr>, ...),
 *    which parses back into Name/Address pairs. raw is the last column of migration 1 so
 *    that reading the summary never walks the raw message's overflow pages. tls_peer
 *    (migration 2) comes after it, as ALTER TABLE can only append: reading it walks
 *    those pages, but only for a message whose client sent a certificate (NULL is
 *    known from the record header), which is rare enough not to rebuild the table.
 *  - messages_fts: FTS5 over subject, addresses (envelope and header), the decoded text
 *    and the attachment names, rowid = messages.seq. It keeps its own copy of the text
 *    (which no other column holds); a trigger removes a message's entry whenever the row
 *    is deleted, by whatever statement, so delete and prune cannot leave it stale.
 *
 * Handles: one thread at a time each (SQLITE_OPEN_NOMUTEX). The writer creates, migrates
 * and checks the database; readers never create or migrate, and refuse a schema newer
 * than this code. Readers may delete (mailsink delete), which SQLite serialises with the
 * writer through the busy timeout.
 */
#include "mailsink/store/store.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How long a statement waits for another connection's lock before SQLITE_BUSY: long
   enough to ride out a reader's delete or a checkpoint, far below the 10 minutes a client
   waits for its reply to the final dot (RFC 5321 4.5.3.2.6). */
#define STORE_BUSY_TIMEOUT_MS 5000

/* Migrations, oldest first: the schema is version N once the first N have run. Append a
   string to change the schema; never edit one that has shipped. */
static const char *const sqlite_migrations[] = {
    /* 1: messages, full-text index */
    "CREATE TABLE messages ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " received_ms INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " rcpts TEXT NOT NULL DEFAULT '[]',"
    " client_addr TEXT NOT NULL DEFAULT '',"
    " helo TEXT,"
    " tls_version TEXT,"
    " tls_cipher TEXT,"
    " auth_user TEXT,"
    " findings INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL,"
    " trace_size INTEGER NOT NULL DEFAULT 0,"
    " read INTEGER NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '',"
    " from_addr TEXT NOT NULL DEFAULT '',"
    " to_addr TEXT NOT NULL DEFAULT '',"
    " cc_addr TEXT NOT NULL DEFAULT '',"
    " reply_to TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " date_hdr TEXT NOT NULL DEFAULT '',"
    " message_id TEXT NOT NULL DEFAULT '',"
    " snippet TEXT NOT NULL DEFAULT '',"
    " attachments INTEGER NOT NULL DEFAULT 0,"
    " attachment_names TEXT NOT NULL DEFAULT '',"
    " raw BLOB NOT NULL);"
    "CREATE INDEX messages_received ON messages(received_ms);"
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    " subject, addresses, body, attachment_names,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " DELETE FROM messages_fts WHERE rowid = old.seq;"
    " END;",
    /* 2: the client certificate's subject */
    "ALTER TABLE messages ADD COLUMN tls_peer TEXT;",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0])))

struct store {
    sqlite3 *db;
    char *path;
    store_mode mode;
    bool has_tls_peer; /* schema 2 or later: a reader may see a database of schema 1
                          until the writer has migrated it */
    /* the writer's hot path, prepared once (NULL in readers) */
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *put_msg;
    sqlite3_stmt *put_fts;
};

static const char sqlite_put_msg_sql[] =
    "INSERT INTO messages (id, received_ms, sender, rcpts, client_addr, helo, findings, size,"
    " trace_size, from_addr, to_addr, cc_addr, reply_to, subject, date_hdr, message_id,"
    " snippet, attachments, attachment_names, raw, tls_version, tls_cipher, tls_peer,"
    " auth_user)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

/* The addresses come from the row just written, so the index sees exactly what is
   stored; only the text (kept nowhere else) is bound. */
static const char sqlite_put_fts_sql[] =
    "INSERT INTO messages_fts (rowid, subject, addresses, body, attachment_names)"
    " SELECT seq, subject, sender || ' ' || rcpts || ' ' || from_addr || ' ' || to_addr"
    " || ' ' || cc_addr || ' ' || reply_to, ?2, attachment_names"
    " FROM messages WHERE seq = ?1";

/* What store_row needs, in the order sqlite_row_fill reads it; peer is "tls_peer", or
   "NULL" on a database of schema 1. */
#define SQLITE_ROW_SELECT(peer)                                                                    \
    "SELECT seq, received_ms, findings, size, read, attachments,"                                  \
    " id, sender, (SELECT group_concat(value, ', ') FROM json_each(messages.rcpts)),"              \
    " client_addr, helo, from_addr, to_addr, cc_addr, reply_to, subject, date_hdr,"                \
    " message_id, snippet, attachment_names, tls_version, tls_cipher, " peer ", auth_user"         \
    " FROM messages"
/* The row query with tail appended, for the schema of st. */
#define SQLITE_ROWS(st, tail)                                                                      \
    ((st)->has_tls_peer ? SQLITE_ROW_SELECT("tls_peer") tail : SQLITE_ROW_SELECT("NULL") tail)

/* "latest" means the newest message wherever an id is taken (as in Mailpit's API). */
#define SQLITE_BY_ID " WHERE id = ?1"
#define SQLITE_LATEST " ORDER BY seq DESC LIMIT 1"

__attribute__((format(printf, 3, 4))) static void
sqlite_errf(char *err, size_t errsize, const char *fmt, ...)
{
    if (err == NULL || errsize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
    /* a truncated message is still the best we have: keep it */
}

static bool
sqlite_is_latest(const char *id)
{
    return strcmp(id, "latest") == 0;
}

static void
sqlite_finalize_all(store *st)
{
    sqlite3_stmt **stmts[] = {&st->begin, &st->commit, &st->rollback, &st->put_msg, &st->put_fts};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        sqlite3_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
}

void
store_close(store *st)
{
    if (st == NULL)
        return;
    sqlite_finalize_all(st);
    /* close_v2 would defer the close past a leaked statement; plain close reports it, and
       there is none: every statement is finalized before its function returns */
    sqlite3_close(st->db);
    free(st->path);
    free(st);
}

/* ---- opening ---------------------------------------------------------------------- */

/* An error from the first statements on a new handle: NOTADB and CORRUPT mean the file,
   not the program, is the problem, and the message says so. */
static void
sqlite_open_err(store *st, int rc, const char *what, char *err, size_t errsize)
{
    const char *msg = sqlite3_errmsg(st->db);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        sqlite_errf(err, errsize, "database %s is corrupt: %s", st->path, msg);
    else
        sqlite_errf(err, errsize, "database %s: %s: %s", st->path, what, msg);
}

/* Runs sql, which returns one row of one text or integer column, into out. */
static int
sqlite_pragma(store *st, const char *sql, char *out, size_t outsize, char *err, size_t errsize)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(stmt, 0);
            snprintf(out, outsize, "%s", v ? (const char *)v : "");
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            out[0] = '\0';
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        sqlite_open_err(st, rc, sql, err, errsize);
    sqlite3_finalize(stmt);
    return rc == SQLITE_OK ? 0 : -1;
}

static int
sqlite_exec(store *st, const char *sql, char *err, size_t errsize)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite_open_err(st, rc, sql, err, errsize);
        return -1;
    }
    return 0;
}

static int
sqlite_user_version(store *st, int *version, char *err, size_t errsize)
{
    char v[32];
    if (sqlite_pragma(st, "PRAGMA user_version", v, sizeof(v), err, errsize) != 0)
        return -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 0 || n > 1000000) {
        sqlite_errf(err, errsize, "database %s: bad user_version '%s'", st->path, v);
        return -1;
    }
    *version = (int)n;
    return 0;
}

static int
sqlite_check_version(store *st, int version, char *err, size_t errsize)
{
    if (version > STORE_SCHEMA_VERSION) {
        sqlite_errf(err, errsize,
                    "database %s has schema version %d; this mailsink knows up to %d "
                    "(written by a newer mailsink?)",
                    st->path, version, STORE_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

/* Brings the schema up to date in one transaction: IMMEDIATE, so two writers starting
   together cannot both run the same migration. */
static int
sqlite_migrate(store *st, char *err, size_t errsize)
{
    int version;
    if (sqlite_exec(st, "BEGIN IMMEDIATE", err, errsize) != 0)
        return -1;
    if (sqlite_user_version(st, &version, err, errsize) != 0 ||
        sqlite_check_version(st, version, err, errsize) != 0)
        goto fail;
    for (int i = version; i < STORE_SCHEMA_VERSION; i++) {
        if (sqlite3_exec(st->db, sqlite_migrations[i], NULL, NULL, NULL) != SQLITE_OK) {
            sqlite_errf(err, errsize, "database %s: migration %d: %s", st->path, i + 1,
                        sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    if (version < STORE_SCHEMA_VERSION) {
        char sql[64]; /* PRAGMA takes no bound parameters */
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        if (sqlite_exec(st, sql, err, errsize) != 0)
            goto fail;
    }
    if (sqlite_exec(st, "COMMIT", err, errsize) != 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int
sqlite_quick_check(store *st, char *err, size_t errsize)
{
    char result[256];
    if (sqlite_pragma(st, "PRAGMA quick_check(1)", result, sizeof(result), err, errsize) != 0)
        return -1;
    if (strcmp(result, "ok") != 0) {
        sqlite_errf(err, errsize, "database %s is corrupt: %s", st->path, result);
        return -1;
    }
    return 0;
}

static int
sqlite_prepare(store *st, const char *sql, sqlite3_stmt **stmt, char *err, size_t errsize)
{
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
    if (rc != SQLITE_OK) {
        sqlite_open_err(st, rc, "prepare", err, errsize);
        return -1;
    }
    return 0;
}

/* The writer's setup: WAL (checked: without it readers would block the writer), the
   integrity check, the schema, the statements of the hot path. */
static int
sqlite_open_writer(store *st, bool memory, char *err, size_t errsize)
{
    char mode[32];
    if (sqlite_pragma(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err, errsize) != 0)
        return -1;
    if (!memory && strcmp(mode, "wal") != 0) {
        sqlite_errf(err, errsize, "database %s: cannot use WAL (journal mode stays '%s')", st->path,
                    mode);
        return -1;
    }
    if (sqlite_exec(st, "PRAGMA synchronous = NORMAL", err, errsize) != 0 ||
        sqlite_quick_check(st, err, errsize) != 0 || sqlite_migrate(st, err, errsize) != 0)
        return -1;
    st->has_tls_peer = true;
    if (sqlite_prepare(st, "BEGIN IMMEDIATE", &st->begin, err, errsize) != 0 ||
        sqlite_prepare(st, "COMMIT", &st->commit, err, errsize) != 0 ||
        sqlite_prepare(st, "ROLLBACK", &st->rollback, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_msg_sql, &st->put_msg, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_fts_sql, &st->put_fts, err, errsize) != 0)
        return -1;
    return 0;
}

static int
sqlite_open_reader(store *st, char *err, size_t errsize)
{
    int version;
    if (sqlite_exec(st, "PRAGMA synchronous = NORMAL", err, errsize) != 0 ||
        sqlite_user_version(st, &version, err, errsize) != 0 ||
        sqlite_check_version(st, version, err, errsize) != 0)
        return -1;
    if (version == 0) {
        sqlite_errf(err, errsize, "database %s has no mailsink schema", st->path);
        return -1;
    }
    /* Versions below ours are accepted: the writer migrates them on start, and until
       then the queries here must only use what that version has. */
    st->has_tls_peer = version >= 2;
    return 0;
}

store *
store_open(const char *path, store_mode mode, char *err, size_t errsize)
{
    bool memory = strcmp(path, ":memory:") == 0;
    if (mode == STORE_READER) {
        struct stat sb;
        if (memory || *path == '\0') {
            sqlite_errf(err, errsize, "a reader needs a database file, not '%s'", path);
            return NULL;
        }
        if (stat(path, &sb) != 0 && errno == ENOENT) {
            sqlite_errf(err, errsize, "no database at %s", path);
            return NULL;
        }
    }
    store *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->path = strdup(path)) == NULL) {
        sqlite_errf(err, errsize, "cannot open database %s: out of memory", path);
        free(st);
        return NULL;
    }
    st->mode = mode;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (mode == STORE_WRITER)
        flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        sqlite_errf(err, errsize, "cannot open database %s: %s", path,
                    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    if (sqlite_exec(st, "PRAGMA foreign_keys = ON", err, errsize) != 0)
        goto fail;
    rc = mode == STORE_WRITER ? sqlite_open_writer(st, memory, err, errsize)
                              : sqlite_open_reader(st, err, errsize);
    if (rc != 0)
        goto fail;
    return st;
fail:
    store_close(st);
    return NULL;
}

/* ---- writing ---------------------------------------------------------------------- */

/* rcpts as a JSON array: a recipient may hold any octet but CR/LF/NUL (quoted local
   parts), and JSON keeps them apart without a separator that could occur in one. Only
   '"', '\\' and control characters are escaped; other octets pass as they are. */
static char *
sqlite_json_array(const char *const *v, size_t n)
{
    size_t size = 3; /* [ ] NUL */
    for (size_t i = 0; i < n; i++) {
        size += 3; /* "", */
        for (const unsigned char *p = (const unsigned char *)(v[i] ? v[i] : ""); *p; p++)
            size += *p == '"' || *p == '\\' ? 2 : *p < 0x20 ? 6 : 1;
    }
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    out[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out[len++] = ',';
        out[len++] = '"';
        for (const unsigned char *p = (const unsigned char *)(v[i] ? v[i] : ""); *p; p++) {
            if (*p == '"' || *p == '\\') {
                out[len++] = '\\';
                out[len++] = (char)*p;
            } else if (*p < 0x20) {
                len += (size_t)snprintf(out + len, size - len, "\\u%04x", *p);
            } else {
                out[len++] = (char)*p;
            }
        }
        out[len++] = '"';
    }
    out[len++] = ']';
    out[len] = '\0';
    return out;
}

static int
sqlite_bind_str(sqlite3_stmt *stmt, int i, const char *s)
{
    return sqlite3_bind_text(stmt, i, s ? s : "", -1, SQLITE_STATIC);
}

/* Binds one message to put_msg; rcpts_json must outlive the step. */
static int
sqlite_bind_msg(sqlite3_stmt *s, const store_msg *m, const char *rcpts_json)
{
    static const mime_summary none;
    const mime_summary *sum = m->summary ? m->summary : &none;
    int rc = SQLITE_OK;
    rc |= sqlite_bind_str(s, 1, m->id);
    rc |= sqlite3_bind_int64(s, 2, m->received_ms);
    rc |= sqlite_bind_str(s, 3, m->sender);
    rc |= sqlite_bind_str(s, 4, rcpts_json);
    rc |= sqlite_bind_str(s, 5, m->client_addr);
    rc |= m->helo ? sqlite_bind_str(s, 6, m->helo) : sqlite3_bind_null(s, 6);
    rc |= sqlite3_bind_int64(s, 7, (sqlite3_int64)m->findings);
    rc |= sqlite3_bind_int64(s, 8, (sqlite3_int64)m->raw_len);
    rc |= sqlite3_bind_int64(s, 9, (sqlite3_int64)m->trace_size);
    rc |= sqlite_bind_str(s, 10, sum->from);
    rc |= sqlite_bind_str(s, 11, sum->to);
    rc |= sqlite_bind_str(s, 12, sum->cc);
    rc |= sqlite_bind_str(s, 13, sum->reply_to);
    rc |= sqlite_bind_str(s, 14, sum->subject);
    rc |= sqlite_bind_str(s, 15, sum->date);
    rc |= sqlite_bind_str(s, 16, sum->message_id);
    rc |= sqlite_bind_str(s, 17, sum->snippet);
    rc |= sqlite3_bind_int64(s, 18, (sqlite3_int64)sum->attachments);
    rc |= sqlite_bind_str(s, 19, sum->attachment_names);
    /* a NULL pointer would bind SQL NULL; an empty message is an empty blob */
    if (m->raw_len == 0)
        rc |= sqlite3_bind_zeroblob(s, 20, 0);
    else
        rc |= sqlite3_bind_blob64(s, 20, m->raw, m->raw_len, SQLITE_STATIC);
    /* NULL stays NULL: "no TLS" is not an empty cipher name */
    const char *const tls_auth[] = {m->tls_version, m->tls_cipher, m->tls_peer, m->auth_user};
    for (int i = 0; i < (int)(sizeof(tls_auth) / sizeof(tls_auth[0])); i++)
        rc |= tls_auth[i] ? sqlite_bind_str(s, 21 + i, tls_auth[i]) : sqlite3_bind_null(s, 21 + i);
    return rc;
}

/* Steps a statement that returns no rows and leaves it ready for the next use. */
static int
sqlite_step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
sqlite_put_one(store *st, const store_msg *m, char *err, size_t errsize)
{
    if (m->id == NULL || (m->rcpt_count > 0 && m->rcpts == NULL)) {
        sqlite_errf(err, errsize, "message without id or recipients");
        return -1;
    }
    char *rcpts = sqlite_json_array(m->rcpts, m->rcpt_count);
    if (rcpts == NULL) {
        sqlite_errf(err, errsize, "message %s: out of memory", m->id);
        return -1;
    }
    int rc = sqlite_bind_msg(st->put_msg, m, rcpts);
    rc = rc == SQLITE_OK ? sqlite_step_done(st->put_msg) : rc;
    if (rc == SQLITE_OK) {
        const char *text = m->summary && m->summary->text ? m->summary->text : "";
        sqlite3_bind_int64(st->put_fts, 1, sqlite3_last_insert_rowid(st->db));
        sqlite3_bind_text(st->put_fts, 2, text, -1, SQLITE_STATIC);
        rc = sqlite_step_done(st->put_fts);
    }
    sqlite3_reset(st->put_msg);
    sqlite3_clear_bindings(st->put_msg);
    free(rcpts);
    if (rc != SQLITE_OK) {
        /* SQLITE_FULL's message is "database or disk is full", which is what to say */
        sqlite_errf(err, errsize, "store message %s: %s", m->id, sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

int
store_put_batch(store *st, const store_msg *msgs, size_t n, char *err, size_t errsize)
{
    if (st->mode != STORE_WRITER) {
        sqlite_errf(err, errsize, "database %s: opened for reading", st->path);
        return -1;
    }
    if (sqlite_step_done(st->begin) != SQLITE_OK) {
        sqlite_errf(err, errsize, "begin: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (sqlite_put_one(st, &msgs[i], err, errsize) != 0)
            goto fail;
    if (sqlite_step_done(st->commit) != SQLITE_OK) {
        sqlite_errf(err, errsize, "commit: %s", sqlite3_errmsg(st->db));
        goto fail;
    }
    return 0;
fail:;
    /* read before the rollback, which would reset it */
    int full = (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_FULL;
    /* SQLite may have rolled back already (SQLITE_FULL, IOERR); else nothing of the batch
       may stay: the caller answers 4xx for every message in it */
    if (!sqlite3_get_autocommit(st->db))
        sqlite_step_done(st->rollback);
    return full ? STORE_EFULL : -1;
}

/* ---- deleting --------------------------------------------------------------------- */

/* Runs one DELETE with up to one int64 parameter; the number of rows, or -1. */
static long
sqlite_delete_where(store *st, const char *sql, const int64_t *param)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    if (param != NULL)
        sqlite3_bind_int64(stmt, 1, *param);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? (long)sqlite3_changes64(st->db) : -1;
}

long
store_prune(store *st, uint64_t max_messages, int64_t older_than_ms)
{
    if (max_messages == 0 && older_than_ms <= 0)
        return 0;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    long total = 0;
    if (older_than_ms > 0) {
        long n =
            sqlite_delete_where(st, "DELETE FROM messages WHERE received_ms < ?1", &older_than_ms);
        total = n < 0 ? -1 : total + n;
    }
    if (max_messages > 0 && total >= 0) {
        /* by seq, not received_ms: "oldest" is the order of arrival even across clock
           jumps; with max or fewer rows the subquery is NULL and nothing matches */
        int64_t keep = max_messages > INT64_MAX ? INT64_MAX : (int64_t)max_messages;
        long n = sqlite_delete_where(st,
                                     "DELETE FROM messages WHERE seq <= (SELECT seq FROM "
                                     "messages ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                                     &keep);
        total = n < 0 ? -1 : total + n;
    }
    if (total < 0 || sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        if (!sqlite3_get_autocommit(st->db))
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return total;
}

int
store_delete(store *st, const char *id)
{
    const char *sql = sqlite_is_latest(id)
                          ? "DELETE FROM messages WHERE seq = (SELECT max(seq) FROM messages)"
                          : "DELETE FROM messages WHERE id = ?1";
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    if (!sqlite_is_latest(id))
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE && sqlite3_changes64(st->db) > 0 ? 0 : -1;
}

long
store_delete_all(store *st)
{
    /* the FTS trigger makes this row by row, which is what keeps the index right */
    return sqlite_delete_where(st, "DELETE FROM messages", NULL);
}

/* ---- reading ---------------------------------------------------------------------- */

/* A malloc'd copy of a text column; NULL becomes "" so callers can print any field. */
static char *
sqlite_col_dup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);
    size_t n = s ? (size_t)sqlite3_column_bytes(stmt, col) : 0;
    char *out = malloc(n + 1);
    if (out != NULL) {
        if (n > 0)
            memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* Fills row from the current row of a SQLITE_ROW_SELECT statement. The text for the
   index is not read here (it can be 1 MiB): "" unless store_get loads it. */
static int
sqlite_row_fill(sqlite3_stmt *s, store_row *row)
{
    memset(row, 0, sizeof(*row));
    mime_summary *sum = &row->summary;
    row->seq = sqlite3_column_int64(s, 0);
    row->received_ms = sqlite3_column_int64(s, 1);
    row->findings = (unsigned)sqlite3_column_int64(s, 2);
    row->size = (size_t)sqlite3_column_int64(s, 3);
    row->read = sqlite3_column_int64(s, 4) != 0;
    sum->attachments = (unsigned)sqlite3_column_int64(s, 5);
    /* the text columns follow, in this order */
    char **texts[] = {&row->id,          &row->sender,
                      &row->rcpts,       &row->client_addr,
                      &row->helo,        &sum->from,
                      &sum->to,          &sum->cc,
                      &sum->reply_to,    &sum->subject,
                      &sum->date,        &sum->message_id,
                      &sum->snippet,     &sum->attachment_names,
                      &row->tls_version, &row->tls_cipher,
                      &row->tls_peer,    &row->auth_user};
    bool ok = true;
    for (int i = 0; i < (int)(sizeof(texts) / sizeof(texts[0])); i++)
        ok = (*texts[i] = sqlite_col_dup(s, 6 + i)) != NULL && ok;
    sum->text = calloc(1, 1);
    if (!ok || sum->text == NULL) {
        store_row_cleanup(row);
        return -1;
    }
    return 0;
}

void
store_row_cleanup(store_row *row)
{
    if (row == NULL)
        return;
    free(row->id);
    free(row->sender);
    free(row->rcpts);
    free(row->client_addr);
    free(row->helo);
    free(row->tls_version);
    free(row->tls_cipher);
    free(row->tls_peer);
    free(row->auth_user);
    mime_summary_cleanup(&row->summary);
    memset(row, 0, sizeof(*row));
}

/* True when a user's search word has something the unicode61 tokenizer indexes (ASCII
   letters and digits, or any non-ASCII character); a word of only punctuation would make
   an empty phrase, which matches nothing and would empty the whole AND. */
static bool
sqlite_fts_term_is_useful(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
            return true;
    }
    return false;
}

/* Appends "term"* to out: a string literal (internal quotes doubled) can never be FTS5
   syntax, whatever the user typed, and the trailing * makes each word a prefix, which
   is closer to the "contains" that Mailpit users expect than whole-token matching. */
static size_t
sqlite_fts_term(char *out, size_t len, const char *t, size_t n)
{
    if (len > 0) {
        memcpy(out + len, " AND ", 5);
        len += 5;
    }
    out[len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '"')
            out[len++] = '"';
        out[len++] = t[i];
    }
    out[len++] = '"';
    out[len++] = '*';
    return len;
}

/* The FTS5 query for a user's search: words, or "quoted phrases", all required. Returns
   malloc'd text ("" when no word is searchable), NULL when out of memory. */
static char *
sqlite_fts_query(const char *q)
{
    size_t qlen = strlen(q);
    /* each term grows to at most 2n+3 plus " AND ", and terms are at least one octet
       with a separator between them: 6*qlen+8 always suffices */
    char *out = malloc(6 * qlen + 8);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    const char *p = q;
    while (*p != '\0') {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
            continue;
        }
        const char *t = p;
        size_t n;
        if (*p == '"') {
            t = ++p;
            n = strcspn(p, "\"");
            p += n + (p[n] == '"');
        } else {
            n = strcspn(p, " \t\r\n");
            p += n;
        }
        if (sqlite_fts_term_is_useful(t, n))
            len = sqlite_fts_term(out, len, t, n);
    }
    out[len] = '\0';
    return out;
}

static bool
sqlite_query_is_blank(const char *q)
{
    return q == NULL || q[strspn(q, " \t\r\n")] == '\0';
}

long
store_list(store *st, const char *query, size_t limit, bool (*cb)(const store_row *row, void *ctx),
           void *ctx)
{
    char *fts = NULL;
    bool search = !sqlite_query_is_blank(query);
    if (search) {
        if ((fts = sqlite_fts_query(query)) == NULL)
            return -1;
        if (*fts == '\0') { /* nothing searchable: nothing matches */
            free(fts);
            return 0;
        }
    }
    const char *sql = search ? SQLITE_ROWS(st, " WHERE seq IN (SELECT rowid FROM messages_fts"
                                               " WHERE messages_fts MATCH ?1)"
                                               " ORDER BY seq DESC LIMIT ?2")
                             : SQLITE_ROWS(st, " ORDER BY seq DESC LIMIT ?2");
    sqlite3_stmt *stmt = NULL;
    long seen = -1;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    if (search)
        sqlite3_bind_text(stmt, 1, fts, -1, SQLITE_STATIC);
    /* limit 0 = all, as in Mailpit's ?limit=0; LIMIT -1 is SQLite's "no limit" */
    sqlite3_bind_int64(stmt, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
    seen = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        store_row row;
        if (sqlite_row_fill(stmt, &row) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        seen++;
        bool more = cb(&row, ctx);
        store_row_cleanup(&row);
        if (!more) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        seen = -1;
out:
    sqlite3_finalize(stmt);
    free(fts);
    return seen;
}

/* The FTS copy of the decoded text, for store_get: the only place it is kept. */
static int
sqlite_load_text(store *st, store_row *row)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT body FROM messages_fts WHERE rowid = ?1", -1, &stmt,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, row->seq);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            char *text = sqlite_col_dup(stmt, 0);
            if (text != NULL) {
                free(row->summary.text);
                row->summary.text = text;
            }
            rc = text ? SQLITE_OK : SQLITE_NOMEM;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK; /* no index entry: the text stays "" */
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_OK ? 0 : -1;
}

/* The row of message id (or the newest for "latest"), stepped onto; NULL when there is
   none or on error. The caller finalizes it. */
static sqlite3_stmt *
sqlite_find(store *st, const char *id, const char *sql_by_id, const char *sql_latest)
{
    bool latest = sqlite_is_latest(id);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, latest ? sql_latest : sql_by_id, -1, &stmt, NULL) != SQLITE_OK)
        return NULL;
    if (!latest)
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

int
store_get(store *st, const char *id, store_row *row)
{
    memset(row, 0, sizeof(*row));
    sqlite3_stmt *stmt =
        sqlite_find(st, id, SQLITE_ROWS(st, SQLITE_BY_ID), SQLITE_ROWS(st, SQLITE_LATEST));
    if (stmt == NULL)
        return -1;
    int rc = sqlite_row_fill(stmt, row);
    sqlite3_finalize(stmt);
    /* two statements, two snapshots: a message deleted in between comes back without
       its text, which is harmless */
    if (rc == 0 && sqlite_load_text(st, row) != 0) {
        store_row_cleanup(row);
        rc = -1;
    }
    return rc;
}

int
store_get_raw(store *st, const char *id, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    sqlite3_stmt *stmt = sqlite_find(st, id, "SELECT raw FROM messages" SQLITE_BY_ID,
                                     "SELECT raw FROM messages" SQLITE_LATEST);
    if (stmt == NULL)
        return -1;
    /* blob before bytes, as sqlite3.h advises; NULL for a zero-length blob */
    const void *blob = sqlite3_column_blob(stmt, 0);
    size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
    char *copy = blob != NULL || n == 0 ? malloc(n + 1) : NULL; /* else out of memory */
    if (copy != NULL) {
        if (n > 0)
            memcpy(copy, blob, n);
        copy[n] = '\0'; /* for callers that print it */
        *data = copy;
        *len = n;
    }
    sqlite3_finalize(stmt);
    return copy != NULL ? 0 : -1;
}

/* Runs a SELECT count(*) with up to two text parameters (NULL binds SQL NULL). */
static long
sqlite_count(store *st, const char *sql, const char *p1, const char *p2)
{
    sqlite3_stmt *stmt = NULL;
    long n = -1;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    if (p1 != NULL)
        sqlite3_bind_text(stmt, 1, p1, -1, SQLITE_STATIC);
    if (p2 != NULL)
        sqlite3_bind_text(stmt, 2, p2, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(stmt, 0);
out:
    sqlite3_finalize(stmt);
    return n;
}

long
store_count_matching(store *st, const char *to, const char *subject)
{
    /* instr() rather than LIKE: no wildcard in what the user typed needs escaping.
       lower() folds ASCII only, which is what addresses need. */
    return sqlite_count(st,
                        "SELECT count(*) FROM messages WHERE"
                        " (?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(messages.rcpts)"
                        "  WHERE instr(lower(value), lower(?1)) > 0))"
                        " AND (?2 IS NULL OR instr(lower(subject), lower(?2)) > 0)",
                        to, subject);
}

long
store_count(store *st)
{
    return sqlite_count(st, "SELECT count(*) FROM messages", NULL, NULL);
}
