/*
 * sqlite.c - store.h on SQLite (3.35+ for the built-in JSON functions; FTS5 required).
 *
 * Durability: WAL with synchronous=NORMAL. A COMMIT is in the WAL file (the OS has it)
 * before store_put_batch returns, so it survives a crash or SIGKILL of the process; an OS
 * crash or power loss may lose the last commits. synchronous=FULL would close that gap at
 * the price of an fsync per batch; nothing asks for it yet.
 *
 * Schema (migrations 1 to 3; PRAGMA user_version counts the migrations applied):
 *  - messages: one row per acknowledged message. seq (AUTOINCREMENT, so never reused, not
 *    even after delete-all) is the insertion order and what "newest" means: the wall
 *    clock may jump, seq does not. rcpts is a JSON array of the envelope recipients.
 *    tls_version, tls_cipher, tls_peer (the client certificate's subject) and auth_user
 *    are NULL for a session without TLS or AUTH; read and tags (empty = none) belong to
 *    the HTTP API. The *_addr columns are GMime's display form ("Name" <addr>, ...),
 *    which parses back into Name/Address pairs. Up to schema 2 the raw message was its
 *    last column; migration 3 moved it out (below). tls_peer came with migration 2.
 *  - messages_fts: FTS5 over subject, addresses (envelope and header), the decoded text
 *    and the attachment names, rowid = messages.seq. It keeps its own copy of the text
 *    (which no other column holds); a trigger removes a message's entry whenever the row
 *    is deleted, by whatever statement, so delete and prune cannot leave it stale.
 *  - mailbox_counts (migration 3): one row, total and unread, kept by triggers on
 *    messages, so that the counts every API list answer carries cost nothing at a
 *    million messages. messages_unread is a partial index of the unread rows (is:unread,
 *    "mark all read").
 *  - tags and message_tags (migration 3): a tag's name is unique case-insensitively
 *    (COLLATE NOCASE, ASCII), and the spelling that created it is the one shown; count is
 *    kept by triggers (GET /api/v1/tags and every list answer read it), and a tag whose
 *    count drops to 0 is removed. Deleting a message removes its tags by trigger. The
 *    messages.tags column of migration 1 is no longer used (it was never written).
 *  - message_raw (migration 3): the raw message by seq, deleted with its row by trigger.
 *    In the messages row, the first ~4 KB of every message sat on the table's pages
 *    (SQLite keeps a blob's head local), so a scan of 100,000 rows for a filter read
 *    some 300 MB; without it a row is a few hundred bytes.
 *
 * Handles: one thread at a time each (SQLITE_OPEN_NOMUTEX). The writer creates, migrates
 * and checks the database; readers never create or migrate, and refuse a schema newer
 * than this code. Readers may delete (mailsink delete), which SQLite serialises with the
 * writer through the busy timeout.
 */
#include "mailsink/store/sqlite_internal.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    /* 3: the HTTP API: mailbox counts, unread index, tags */
    "CREATE TABLE mailbox_counts ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " total INTEGER NOT NULL,"
    " unread INTEGER NOT NULL);"
    "INSERT INTO mailbox_counts SELECT 1, count(*), coalesce(sum(read = 0), 0) FROM messages;"
    "CREATE TRIGGER messages_counts_insert AFTER INSERT ON messages BEGIN"
    " UPDATE mailbox_counts SET total = total + 1, unread = unread + (new.read = 0);"
    " END;"
    "CREATE TRIGGER messages_counts_delete AFTER DELETE ON messages BEGIN"
    " UPDATE mailbox_counts SET total = total - 1, unread = unread - (old.read = 0);"
    " END;"
    "CREATE TRIGGER messages_counts_read AFTER UPDATE OF read ON messages"
    " WHEN (old.read = 0) IS NOT (new.read = 0) BEGIN"
    " UPDATE mailbox_counts SET unread = unread + (new.read = 0) - (old.read = 0);"
    " END;"
    "CREATE INDEX messages_unread ON messages(seq, read) WHERE read = 0;"
    "CREATE TABLE tags ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " count INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE message_tags ("
    " seq INTEGER NOT NULL,"
    " tag_id INTEGER NOT NULL,"
    " PRIMARY KEY (seq, tag_id)) WITHOUT ROWID;"
    "CREATE INDEX message_tags_tag ON message_tags(tag_id, seq);"
    "CREATE TRIGGER message_tags_insert AFTER INSERT ON message_tags BEGIN"
    " UPDATE tags SET count = count + 1 WHERE id = new.tag_id;"
    " END;"
    "CREATE TRIGGER message_tags_delete AFTER DELETE ON message_tags BEGIN"
    " UPDATE tags SET count = count - 1 WHERE id = old.tag_id;"
    " DELETE FROM tags WHERE id = old.tag_id AND count <= 0;"
    " END;"
    "CREATE TRIGGER messages_tags_delete AFTER DELETE ON messages BEGIN"
    " DELETE FROM message_tags WHERE seq = old.seq;"
    " END;"
    "CREATE TABLE message_raw ("
    " seq INTEGER PRIMARY KEY,"
    " raw BLOB NOT NULL);"
    "INSERT INTO message_raw (seq, raw) SELECT seq, raw FROM messages;"
    "ALTER TABLE messages DROP COLUMN raw;"
    "CREATE TRIGGER messages_raw_delete AFTER DELETE ON messages BEGIN"
    " DELETE FROM message_raw WHERE seq = old.seq;"
    " END;",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0])))

static const char sqlite_put_msg_sql[] =
    "INSERT INTO messages (id, received_ms, sender, rcpts, client_addr, helo, findings, size,"
    " trace_size, from_addr, to_addr, cc_addr, reply_to, subject, date_hdr, message_id,"
    " snippet, attachments, attachment_names, tls_version, tls_cipher, tls_peer, auth_user)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23)";
static const char sqlite_put_raw_sql[] = "INSERT INTO message_raw (seq, raw) VALUES (?1, ?2)";

/* The full-text index gets a whole batch in one statement. FTS5 (as of SQLite 3.40)
   writes its pending terms out as a new segment at every statement savepoint, and an
   INSERT into a virtual table always opens one: indexing message by message made a
   segment per message, and the merging of those cost more than the rest of the store
   (a profile at 1 KiB showed 12% of the ingest thread in savepoints alone). So each
   message's text waits in a temporary table (in memory, part of the same transaction)
   and one INSERT ... SELECT indexes the batch. The addresses come from the rows just
   written, so the index sees exactly what is stored. */
static const char sqlite_fts_pending_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS fts_pending (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)";
static const char sqlite_put_fts_pending_sql[] =
    "INSERT INTO temp.fts_pending (seq, body) VALUES (?1, ?2)";
static const char sqlite_put_fts_sql[] =
    "INSERT INTO messages_fts (rowid, subject, addresses, body, attachment_names)"
    " SELECT m.seq, m.subject, m.sender || ' ' || m.rcpts || ' ' || m.from_addr || ' ' ||"
    " m.to_addr || ' ' || m.cc_addr || ' ' || m.reply_to, p.body, m.attachment_names"
    " FROM temp.fts_pending p JOIN messages m ON m.seq = p.seq ORDER BY p.seq";
static const char sqlite_clear_fts_pending_sql[] = "DELETE FROM temp.fts_pending";

/* A tag is created on first use; the spelling that created it stays. The message's link
   to it is kept once, whatever spelling the duplicate has (the name compares NOCASE). */
const char sqlite_put_tag_sql[] = "INSERT OR IGNORE INTO tags (name) VALUES (?1)";
const char sqlite_put_msg_tag_sql[] =
    "INSERT OR IGNORE INTO message_tags (seq, tag_id) SELECT ?1, id FROM tags WHERE name = ?2";

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
    sqlite3_stmt **stmts[] = {
        &st->begin,   &st->commit,          &st->rollback,          &st->put_msg,
        &st->put_fts, &st->put_fts_pending, &st->clear_fts_pending, &st->put_raw,
        &st->put_tag, &st->put_msg_tag};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        sqlite3_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
}

/* Removes a temporary database and the WAL and shared-memory files beside it (a reader
   still open keeps them until it closes; unlinking under it is harmless on POSIX). */
static void
sqlite_temp_remove(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char name[4096];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        int n = snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
        if (n > 0 && (size_t)n < sizeof(name))
            unlink(name);
    }
}

/* ":memory:" is a file of our own under $TMPDIR (else /tmp), so that a reader (the HTTP
   server's) opens it by path as any database. mkstemp makes it 0600: mail is private. A
   process killed before store_close leaves the file behind. */
static int
sqlite_temp_file(store *st, char *err, size_t errsize)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    size_t n = strlen(dir) + sizeof("/mailsink-XXXXXX.db");
    char *path = malloc(n);
    if (path == NULL) {
        sqlite_errf(err, errsize, "cannot open database :memory:: out of memory");
        return -1;
    }
    /* mkstemp wants the X's last; the suffix-less name is what SQLite opens */
    snprintf(path, n, "%s/mailsink-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        sqlite_errf(err, errsize, "cannot create a temporary database in %s: %s", dir,
                    strerror(errno));
        free(path);
        return -1;
    }
    close(fd);
    st->path = path;
    st->temp = true;
    return 0;
}

void
store_close(store *st)
{
    if (st == NULL)
        return;
    sqlite_checkpointer_stop(st);
    sqlite_finalize_all(st);
    sqlite_stmt_cache_clear(st);
    /* close_v2 would defer the close past a leaked statement; plain close reports it, and
       there is none: the cached ones are finalized just above, every other before its
       function returns */
    sqlite3_close(st->db);
    if (st->temp)
        sqlite_temp_remove(st->path);
    free(st->path);
    free(st);
}

const char *
store_path(const store *st)
{
    return st->path;
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

int
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
sqlite_open_writer(store *st, char *err, size_t errsize)
{
    char mode[32];
    if (sqlite_pragma(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err, errsize) != 0)
        return -1;
    if (strcmp(mode, "wal") != 0) {
        sqlite_errf(err, errsize, "database %s: cannot use WAL (journal mode stays '%s')", st->path,
                    mode);
        return -1;
    }
    /* a temporary database dies with the process anyway: no syncing for it */
    const char *sync = st->temp ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = NORMAL";
    if (sqlite_exec(st, sync, err, errsize) != 0 || sqlite_quick_check(st, err, errsize) != 0 ||
        sqlite_migrate(st, err, errsize) != 0 ||
        sqlite_exec(st, "PRAGMA temp_store = MEMORY", err, errsize) != 0 ||
        sqlite_exec(st, sqlite_fts_pending_sql, err, errsize) != 0)
        return -1;
    /* without the thread (out of resources) SQLite's own checkpoints in COMMIT remain */
    if (sqlite_checkpointer_start(st) != 0)
        sqlite3_wal_autocheckpoint(st->db, 1000);
    st->schema = STORE_SCHEMA_VERSION;
    if (sqlite_prepare(st, "BEGIN IMMEDIATE", &st->begin, err, errsize) != 0 ||
        sqlite_prepare(st, "COMMIT", &st->commit, err, errsize) != 0 ||
        sqlite_prepare(st, "ROLLBACK", &st->rollback, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_msg_sql, &st->put_msg, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_fts_sql, &st->put_fts, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_fts_pending_sql, &st->put_fts_pending, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_clear_fts_pending_sql, &st->clear_fts_pending, err, errsize) !=
            0 ||
        sqlite_prepare(st, sqlite_put_raw_sql, &st->put_raw, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_tag_sql, &st->put_tag, err, errsize) != 0 ||
        sqlite_prepare(st, sqlite_put_msg_tag_sql, &st->put_msg_tag, err, errsize) != 0)
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
    st->schema = version;
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
    if (st == NULL) {
        sqlite_errf(err, errsize, "cannot open database %s: out of memory", path);
        return NULL;
    }
    st->mode = mode;
    if (memory ? sqlite_temp_file(st, err, errsize) != 0 : (st->path = strdup(path)) == NULL) {
        if (!memory)
            sqlite_errf(err, errsize, "cannot open database %s: out of memory", path);
        free(st);
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (mode == STORE_WRITER)
        flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(st->path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        sqlite_errf(err, errsize, "cannot open database %s: %s", st->path,
                    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Readers: 32 MiB of page cache (SQLite's default is 2 MiB): the summary rows of
       100,000 messages fit, so the scans of a search filter stay in memory. The writer
       only appends and reads back little (index pages on the right edge), and growing a
       cache costs a malloc per page: at 32 MiB a fresh writer was still growing it after
       20,000 messages (5% of its CPU at 1 KiB, in sqlite3BtreeInsert's mallocs); 8 MiB
       measured 10% less CPU per message at 1 KiB, the same at 100 KiB, 25 MiB less RSS. */
    const char *cache =
        mode == STORE_WRITER ? "PRAGMA cache_size = -8192" : "PRAGMA cache_size = -32768";
    if (sqlite_exec(st, "PRAGMA foreign_keys = ON", err, errsize) != 0 ||
        sqlite_exec(st, cache, err, errsize) != 0)
        goto fail;
    rc = mode == STORE_WRITER ? sqlite_open_writer(st, err, errsize)
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
    /* NULL stays NULL: "no TLS" is not an empty cipher name */
    const char *const tls_auth[] = {m->tls_version, m->tls_cipher, m->tls_peer, m->auth_user};
    for (int i = 0; i < (int)(sizeof(tls_auth) / sizeof(tls_auth[0])); i++)
        rc |= tls_auth[i] ? sqlite_bind_str(s, 20 + i, tls_auth[i]) : sqlite3_bind_null(s, 20 + i);
    return rc;
}

/* Binds the raw message of seq to put_raw. */
static int
sqlite_bind_raw(sqlite3_stmt *s, int64_t seq, const store_msg *m)
{
    int rc = sqlite3_bind_int64(s, 1, seq);
    /* a NULL pointer would bind SQL NULL; an empty message is an empty blob */
    if (m->raw_len == 0)
        rc |= sqlite3_bind_zeroblob(s, 2, 0);
    else
        rc |= sqlite3_bind_blob64(s, 2, m->raw, m->raw_len, SQLITE_STATIC);
    return rc;
}

/* Steps a statement that returns no rows and leaves it ready for the next use. */
int
sqlite_step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Tag names are trimmed of white space at both ends; an empty one is no tag. Returns
   the length of the trimmed name starting at *name (moved past the leading space). */
size_t
sqlite_tag_trim(const char **name)
{
    const char *s = *name ? *name : "";
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    *name = s;
    return n;
}

/* Links message seq to tag name (creating the tag on first use) with the two statements
   of sqlite_put_tag_sql and sqlite_put_msg_tag_sql. SQLITE_OK or the error. */
int
sqlite_tag_add(sqlite3_stmt *put_tag, sqlite3_stmt *put_msg_tag, int64_t seq, const char *name)
{
    size_t n = sqlite_tag_trim(&name);
    if (n == 0)
        return SQLITE_OK;
    /* rows list tags joined by "\n": a control character inside a name becomes a space */
    char *copy = NULL;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] >= 0x20)
            continue;
        if (copy == NULL && (copy = malloc(n)) == NULL)
            return SQLITE_NOMEM;
        if (copy != name) {
            memcpy(copy, name, n);
            name = copy;
        }
        copy[i] = ' ';
    }
    sqlite3_bind_text64(put_tag, 1, name, n, SQLITE_STATIC, SQLITE_UTF8);
    int rc = sqlite_step_done(put_tag);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(put_msg_tag, 1, seq);
        sqlite3_bind_text64(put_msg_tag, 2, name, n, SQLITE_STATIC, SQLITE_UTF8);
        rc = sqlite_step_done(put_msg_tag);
    }
    free(copy);
    return rc;
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
    int64_t seq = sqlite3_last_insert_rowid(st->db);
    if (rc == SQLITE_OK) {
        rc = sqlite_bind_raw(st->put_raw, seq, m);
        rc = rc == SQLITE_OK ? sqlite_step_done(st->put_raw) : rc;
    }
    if (rc == SQLITE_OK) {
        const char *text = m->summary && m->summary->text ? m->summary->text : "";
        sqlite3_bind_int64(st->put_fts_pending, 1, seq);
        sqlite3_bind_text(st->put_fts_pending, 2, text, -1, SQLITE_STATIC);
        rc = sqlite_step_done(st->put_fts_pending);
    }
    for (size_t i = 0; rc == SQLITE_OK && m->tags != NULL && i < m->tag_count; i++)
        rc = sqlite_tag_add(st->put_tag, st->put_msg_tag, seq, m->tags[i]);
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
    /* the batch's text into the full-text index in one statement (see sqlite_put_fts_sql) */
    if (sqlite_step_done(st->put_fts) != SQLITE_OK ||
        sqlite_step_done(st->clear_fts_pending) != SQLITE_OK) {
        sqlite_errf(err, errsize, "full-text index: %s", sqlite3_errmsg(st->db));
        goto fail;
    }
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
char *
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
                      &row->tls_peer,    &row->auth_user,
                      &row->tags,        &row->rcpts_json};
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
    free(row->tags);
    free(row->rcpts_json);
    mime_summary_cleanup(&row->summary);
    memset(row, 0, sizeof(*row));
}

/* True when a user's search word has something the unicode61 tokenizer indexes (ASCII
   letters and digits, or any non-ASCII character); a word of only punctuation would make
   an empty phrase, which matches nothing and would empty the whole AND. */
bool
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
size_t
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

/* Steps a row query, passing each row to cb until it returns false. Rows passed, or -1. */
long
sqlite_rows_run(sqlite3_stmt *stmt, bool (*cb)(const store_row *row, void *ctx), void *ctx)
{
    long seen = 0;
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
    return rc == SQLITE_DONE ? seen : -1;
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
    sqlite3_stmt *stmt = sqlite_stmt_get(st, sql);
    long seen = -1;
    if (stmt == NULL)
        goto out;
    if (search)
        sqlite3_bind_text(stmt, 1, fts, -1, SQLITE_STATIC);
    /* limit 0 = all, as in Mailpit's ?limit=0; LIMIT -1 is SQLite's "no limit" */
    sqlite3_bind_int64(stmt, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
    seen = sqlite_rows_run(stmt, cb, ctx);
out:
    sqlite_stmt_put(st, stmt);
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
    /* a reader opened before the writer's migration 3 moved raw into message_raw */
    int version;
    if (st->schema < 3 && sqlite_user_version(st, &version, NULL, 0) == 0 && version >= 3 &&
        version <= STORE_SCHEMA_VERSION)
        st->schema = version;
    sqlite3_stmt *stmt =
        st->schema >= 3
            ? sqlite_find(st, id,
                          "SELECT raw FROM message_raw WHERE seq ="
                          " (SELECT seq FROM messages WHERE id = ?1)",
                          "SELECT raw FROM message_raw WHERE seq = (SELECT max(seq) FROM messages)")
            : sqlite_find(st, id, "SELECT raw FROM messages" SQLITE_BY_ID,
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
    sqlite3_stmt *stmt = sqlite_stmt_get(st, sql);
    long n = -1;
    if (stmt == NULL)
        goto out;
    if (p1 != NULL)
        sqlite3_bind_text(stmt, 1, p1, -1, SQLITE_STATIC);
    if (p2 != NULL)
        sqlite3_bind_text(stmt, 2, p2, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(stmt, 0);
out:
    sqlite_stmt_put(st, stmt);
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
