/*
 * sqlite_query.c - the HTTP API's side of the SQLite store (store.h): search queries
 * (search.h) compiled to SQL, paging, counts, latest, read flags, deletes and tags.
 *
 * A query becomes one WHERE over the messages table whose values are all bound
 * parameters: words go to the FTS5 index as quoted prefix phrases, field filters are
 * LIKE '%value%' ESCAPE '\' (ASCII case-insensitive), flags and numbers plain
 * comparisons. Counting and the first page use the counters and indexes of migration 3
 * (see sqlite.c); a filter over the summary columns scans the messages table (about
 * 100 ms at 100,000 messages, the size of the table rows deciding).
 */
#include "mailsink/store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the HTTP API: search queries compiled to SQL ---------------------------------- */

/* How many rows one statement of a bulk change (mark read, delete by query) touches:
   each chunk is its own transaction, so the ingest thread's batches get the write lock
   in between instead of waiting out a delete of a million rows (its busy timeout is
   STORE_BUSY_TIMEOUT_MS). */
#define STORE_CHUNK_ROWS 2000
/* ids per transaction when the caller lists them */
#define STORE_CHUNK_IDS 500

/* SQL text that grows; oom remembers a failed allocation so the caller checks once. */
typedef struct sqlite_sql {
    char *s;
    size_t len, cap;
    bool oom;
} sqlite_sql;

static void
sqlite_sql_addn(sqlite_sql *b, const char *text, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void
sqlite_sql_add(sqlite_sql *b, const char *text)
{
    sqlite_sql_addn(b, text, strlen(text));
}

/* Appends fmt with every "%d" replaced by the parameter ?param. */
static void
sqlite_sql_param(sqlite_sql *b, const char *fmt, int param)
{
    char num[16];
    snprintf(num, sizeof(num), "?%d", param);
    const char *pct;
    while ((pct = strstr(fmt, "%d")) != NULL) {
        sqlite_sql_addn(b, fmt, (size_t)(pct - fmt));
        sqlite_sql_add(b, num);
        fmt = pct + 2;
    }
    sqlite_sql_add(b, fmt);
}

/* A value bound to parameter ?(index + 1) of a compiled condition. */
typedef struct sqlite_param {
    char *text; /* malloc'd; NULL for a number */
    int64_t number;
} sqlite_param;

/* A search_query as one SQL condition over the messages table, with its values apart:
   nothing the user typed is ever part of the SQL text. */
typedef struct sqlite_where {
    sqlite_sql sql; /* "1" when every message matches */
    sqlite_param *params;
    int nparams, capparams;
} sqlite_where;

static void
sqlite_where_cleanup(sqlite_where *w)
{
    for (int i = 0; i < w->nparams; i++)
        free(w->params[i].text);
    free(w->params);
    free(w->sql.s);
    memset(w, 0, sizeof(*w));
}

/* Adds a parameter (taking text, which may be NULL for a number); its number, or -1 when
   out of memory (text freed). */
static int
sqlite_where_add(sqlite_where *w, char *text, int64_t number)
{
    if (w->nparams == w->capparams) {
        int cap = w->capparams ? 2 * w->capparams : 8;
        sqlite_param *p = realloc(w->params, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            free(text);
            return -1;
        }
        w->params = p;
        w->capparams = cap;
    }
    w->params[w->nparams] = (sqlite_param){.text = text, .number = number};
    return ++w->nparams;
}

/* v as the pattern of LIKE '%v%' ESCAPE '\': the user's %, _ and \ match themselves.
   json: v as it appears inside the JSON text of the rcpts column (as sqlite_json_array
   writes it), so a LIKE over that text finds it. malloc'd, NULL when out of memory. */
static char *sqlite_like_pattern(const char *v, bool json);

/* A text parameter (taking text; NULL means its allocation failed): its number, or -1. */
static int
sqlite_where_text(sqlite_where *w, char *text)
{
    return text != NULL ? sqlite_where_add(w, text, 0) : -1;
}

static char *
sqlite_like_pattern(const char *v, bool json)
{
    size_t n = strlen(v);
    char *out = malloc(12 * n + 3); /* a control octet: \u00xx, each of 6 escaped */
    if (out == NULL)
        return NULL;
    size_t len = 0;
    out[len++] = '%';
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char enc[8];
        if (json && (*p == '"' || *p == '\\'))
            snprintf(enc, sizeof(enc), "\\%c", *p);
        else if (json && *p < 0x20)
            snprintf(enc, sizeof(enc), "\\u%04x", *p);
        else
            snprintf(enc, sizeof(enc), "%c", *p);
        for (const char *e = enc; *e; e++) {
            if (*e == '%' || *e == '_' || *e == '\\')
                out[len++] = '\\';
            out[len++] = *e;
        }
    }
    out[len++] = '%';
    out[len] = '\0';
    return out;
}

/* The condition of one filter term (not SEARCH_TEXT), not negated, into b; -1 when out
   of memory. schema: tags exist from 3 on (an older database has none to match). */
static int
sqlite_term_sql(sqlite_where *w, sqlite_sql *b, const search_term *t, int schema)
{
    const char *v = t->value ? t->value : "";
    const char *like = NULL; /* a one-column "contains" filter */
    int p, p2;
    switch (t->field) {
    case SEARCH_TEXT: /* never here: the caller compiles all text terms together */
        return -1;
    case SEARCH_FROM:
        like = "from_addr LIKE %d ESCAPE '\\'";
        break;
    case SEARCH_CC:
        like = "cc_addr LIKE %d ESCAPE '\\'";
        break;
    case SEARCH_REPLY_TO:
        like = "reply_to LIKE %d ESCAPE '\\'";
        break;
    case SEARCH_SUBJECT:
        like = "subject LIKE %d ESCAPE '\\'";
        break;
    case SEARCH_MESSAGE_ID:
        like = "message_id LIKE %d ESCAPE '\\'";
        break;
    case SEARCH_TO:
        if ((p = sqlite_where_text(w, sqlite_like_pattern(v, false))) < 0 ||
            (p2 = sqlite_where_text(w, sqlite_like_pattern(v, true))) < 0)
            return -1;
        sqlite_sql_param(b, "(to_addr LIKE %d ESCAPE '\\'", p);
        sqlite_sql_param(b, " OR rcpts LIKE %d ESCAPE '\\')", p2);
        return 0;
    case SEARCH_BCC:
        /* an envelope recipient the To and Cc headers do not name, as a bare address in
           their ", "-separated list or as <address> */
        if ((p = sqlite_where_text(w, sqlite_like_pattern(v, false))) < 0 ||
            (p2 = sqlite_where_text(w, sqlite_like_pattern(v, true))) < 0)
            return -1;
        /* the LIKE over the JSON text first: it spares json_each (ten times dearer) the
           rows that cannot match */
        sqlite_sql_param(b, "(rcpts LIKE %d ESCAPE '\\' AND ", p2);
        sqlite_sql_param(b,
                         "EXISTS (SELECT 1 FROM json_each(messages.rcpts) r"
                         " WHERE r.value LIKE %d ESCAPE '\\'"
                         " AND instr(lower(', ' || messages.to_addr || ', ' || messages.cc_addr"
                         " || ','), lower(', ' || r.value || ',')) = 0"
                         " AND instr(lower(messages.to_addr || ' ' || messages.cc_addr),"
                         " lower('<' || r.value || '>')) = 0))",
                         p);
        return 0;
    case SEARCH_TAG: {
        if (schema < 3) {
            sqlite_sql_add(b, "0");
            return 0;
        }
        size_t n = sqlite_tag_trim(&v);
        if ((p = sqlite_where_text(w, strndup(v, n))) < 0)
            return -1;
        sqlite_sql_param(b,
                         "seq IN (SELECT mt.seq FROM tags t JOIN message_tags mt"
                         " ON mt.tag_id = t.id WHERE t.name = %d)",
                         p);
        return 0;
    }
    case SEARCH_IS_READ:
        sqlite_sql_add(b, "read <> 0");
        return 0;
    case SEARCH_IS_UNREAD:
        sqlite_sql_add(b, "read = 0"); /* as written in messages_unread's WHERE */
        return 0;
    case SEARCH_IS_TAGGED:
        sqlite_sql_add(b, schema < 3 ? "0"
                                     : "EXISTS (SELECT 1 FROM message_tags mt"
                                       " WHERE mt.seq = messages.seq)");
        return 0;
    case SEARCH_HAS_ATTACHMENT:
        sqlite_sql_add(b, "attachments > 0");
        return 0;
    case SEARCH_BEFORE:
        like = "received_ms < %d";
        break;
    case SEARCH_AFTER:
        like = "received_ms >= %d";
        break;
    case SEARCH_LARGER:
        like = "size > %d";
        break;
    case SEARCH_SMALLER:
        like = "size < %d";
        break;
    }
    bool numeric = t->field == SEARCH_BEFORE || t->field == SEARCH_AFTER ||
                   t->field == SEARCH_LARGER || t->field == SEARCH_SMALLER;
    p = numeric ? sqlite_where_add(w, NULL, t->number)
                : sqlite_where_text(w, sqlite_like_pattern(v, false));
    if (p < 0)
        return -1;
    /* "%d" in like stands for the parameter: LIKE ?3 */
    sqlite_sql_param(b, like, p);
    return 0;
}

/* units[lo, hi) joined by AND as a balanced tree: a left-deep chain of n terms is n
   deep, and SQLite refuses expressions deeper than 1000; this is log2(n) deep. */
static void
sqlite_where_and(sqlite_sql *out, char *const *units, size_t lo, size_t hi)
{
    if (hi - lo == 1) {
        sqlite_sql_add(out, units[lo]);
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    sqlite_sql_add(out, "(");
    sqlite_where_and(out, units, lo, mid);
    sqlite_sql_add(out, " AND ");
    sqlite_where_and(out, units, mid, hi);
    sqlite_sql_add(out, ")");
}

/* One term as a unit of the AND, into *unit (malloc'd); 0, -1 when out of memory, 1 when
   the term adds no condition. Text terms here are the negated ones: their own MATCH. */
static int
sqlite_where_unit(sqlite_where *w, const search_term *t, int schema, char **unit)
{
    sqlite_sql b = {0};
    *unit = NULL;
    if (t->field == SEARCH_TEXT) {
        const char *v = t->value ? t->value : "";
        size_t n = strlen(v);
        if (!sqlite_fts_term_is_useful(v, n))
            return 1; /* "not nothing": every message */
        char *fts = malloc(2 * n + 8);
        if (fts == NULL)
            return -1;
        fts[sqlite_fts_term(fts, 0, v, n)] = '\0';
        int p = sqlite_where_text(w, fts);
        if (p < 0)
            return -1;
        sqlite_sql_param(&b,
                         "NOT (seq IN (SELECT rowid FROM messages_fts"
                         " WHERE messages_fts MATCH %d))",
                         p);
    } else {
        if (t->negated)
            sqlite_sql_add(&b, "NOT (");
        if (sqlite_term_sql(w, &b, t, schema) != 0)
            b.oom = true;
        if (t->negated)
            sqlite_sql_add(&b, ")");
    }
    if (b.oom) {
        free(b.s);
        return -1;
    }
    *unit = b.s;
    return 0;
}

/* The positive text terms as one FTS5 query ("a"* AND "b"*), malloc'd: "" when there is
   none; *none set when one of them has nothing the tokenizer indexes (it matches nothing,
   and so does the whole AND, as in store_list). NULL when out of memory. */
static char *
sqlite_where_fts(const search_query *q, bool *none)
{
    size_t size = 1;
    for (size_t i = 0; i < q->count; i++)
        if (q->terms[i].field == SEARCH_TEXT && !q->terms[i].negated && q->terms[i].value)
            size += 2 * strlen(q->terms[i].value) + 8;
    char *fts = malloc(size);
    if (fts == NULL)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < q->count; i++) {
        const search_term *t = &q->terms[i];
        if (t->field != SEARCH_TEXT || t->negated)
            continue;
        const char *v = t->value ? t->value : "";
        size_t n = strlen(v);
        if (sqlite_fts_term_is_useful(v, n))
            len = sqlite_fts_term(fts, len, v, n);
        else
            *none = true;
    }
    fts[len] = '\0';
    return fts;
}

/* Compiles q (NULL or no terms: every message) into w: every term's condition joined by
   AND, negated ones wrapped in NOT (...). 0, or -1 when out of memory (w cleaned up). */
static int
sqlite_where_compile(sqlite_where *w, const search_query *q, int schema)
{
    memset(w, 0, sizeof(*w));
    size_t count = q != NULL ? q->count : 0;
    char **units = calloc(count + 1, sizeof(*units));
    char *fts = NULL;
    bool none = false;
    size_t nunits = 0;
    int rc = -1;
    if (units == NULL || (fts = count > 0 ? sqlite_where_fts(q, &none) : calloc(1, 1)) == NULL)
        goto out;
    for (size_t i = 0; i < count; i++) {
        const search_term *t = &q->terms[i];
        if (t->field == SEARCH_TEXT && !t->negated)
            continue;
        int r = sqlite_where_unit(w, t, schema, &units[nunits]);
        if (r < 0)
            goto out;
        nunits += r == 0;
    }
    if (*fts != '\0') {
        int p = sqlite_where_text(w, fts);
        fts = NULL; /* the parameter owns it now, or it is freed */
        sqlite_sql b = {0};
        if (p > 0)
            sqlite_sql_param(&b,
                             "seq IN (SELECT rowid FROM messages_fts"
                             " WHERE messages_fts MATCH %d)",
                             p);
        if (p < 0 || b.oom) {
            free(b.s);
            goto out;
        }
        units[nunits++] = b.s;
    }
    if (none)
        sqlite_sql_add(&w->sql, "0");
    else if (nunits == 0)
        sqlite_sql_add(&w->sql, "1");
    else
        sqlite_where_and(&w->sql, units, 0, nunits);
    rc = w->sql.oom ? -1 : 0;
out:
    for (size_t i = 0; units != NULL && i < nunits; i++)
        free(units[i]);
    free(units);
    free(fts);
    if (rc != 0)
        sqlite_where_cleanup(w);
    return rc;
}

/* Prepares head + " WHERE (" + condition + ")" + tail and binds the condition's values
   (?1, ?2, ...). Only tail may use named parameters (":limit", bound by the caller): a
   named one before the condition would take number 1 and collide with its ?1. NULL on
   error; give the statement back with sqlite_stmt_put. */
static sqlite3_stmt *
sqlite_where_prepare(store *st, const char *head, const sqlite_where *w, const char *tail)
{
    sqlite_sql b = {0};
    sqlite_sql_add(&b, head);
    sqlite_sql_add(&b, " WHERE (");
    sqlite_sql_add(&b, w->sql.s);
    sqlite_sql_add(&b, ")");
    sqlite_sql_add(&b, tail);
    sqlite3_stmt *stmt = b.oom ? NULL : sqlite_stmt_get(st, b.s);
    if (stmt != NULL) {
        for (int i = 0; i < w->nparams; i++) {
            const sqlite_param *p = &w->params[i];
            if (p->text != NULL)
                sqlite3_bind_text(stmt, i + 1, p->text, -1, SQLITE_STATIC);
            else
                sqlite3_bind_int64(stmt, i + 1, p->number);
        }
    }
    free(b.s);
    return stmt;
}

static void
sqlite_bind_named(sqlite3_stmt *stmt, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(stmt, name);
    if (i > 0)
        sqlite3_bind_int64(stmt, i, v);
}

/* size_t to SQLite's int64 (LIMIT, OFFSET), saturating. */
static int64_t
sqlite_i64(size_t n)
{
    return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* ---- the HTTP API: reading --------------------------------------------------------- */

/* A statement returning one row of two integers into a and b (b may be NULL); it is
   given back (sqlite_stmt_put) afterwards. */
static int
sqlite_two_ints(store *st, sqlite3_stmt *stmt, long *a, long *b)
{
    int rc = stmt != NULL ? sqlite3_step(stmt) : SQLITE_ERROR;
    if (rc == SQLITE_ROW) {
        *a = (long)sqlite3_column_int64(stmt, 0);
        if (b != NULL)
            *b = (long)sqlite3_column_int64(stmt, 1);
    }
    sqlite_stmt_put(st, stmt);
    return rc == SQLITE_ROW ? 0 : -1;
}

int
store_mailbox_counts(store *st, store_counts *out)
{
    out->total = out->unread = 0;
    /* before migration 3 (a reader ahead of the writer) there is no counter: count */
    const char *sql = st->schema >= 3 ? "SELECT total, unread FROM mailbox_counts"
                                      : "SELECT count(*), coalesce(sum(read = 0), 0) FROM messages";
    return sqlite_two_ints(st, sqlite_stmt_get(st, sql), &out->total, &out->unread);
}

static bool
sqlite_query_is_all(const search_query *q)
{
    return q == NULL || q->count == 0;
}

long
store_search(store *st, const search_query *q, size_t start, size_t limit,
             bool (*cb)(const store_row *row, void *ctx), void *ctx)
{
    sqlite_where w;
    if (sqlite_where_compile(&w, q, st->schema) != 0)
        return -1;
    /* OFFSET walks the skipped rows: cheap for the first pages, linear in start (about
       10 ms per 100,000 rows skipped in list order) */
    sqlite3_stmt *stmt = sqlite_where_prepare(st, SQLITE_ROWS(st, ""), &w,
                                              " ORDER BY seq DESC LIMIT :limit OFFSET :start");
    long seen = -1;
    if (stmt != NULL) {
        sqlite_bind_named(stmt, ":limit", limit == 0 ? -1 : sqlite_i64(limit));
        sqlite_bind_named(stmt, ":start", sqlite_i64(start));
        seen = sqlite_rows_run(stmt, cb, ctx);
    }
    sqlite_stmt_put(st, stmt);
    sqlite_where_cleanup(&w);
    return seen;
}

int
store_search_counts(store *st, const search_query *q, store_counts *out)
{
    if (sqlite_query_is_all(q))
        return store_mailbox_counts(st, out);
    out->total = out->unread = 0;
    sqlite_where w;
    if (sqlite_where_compile(&w, q, st->schema) != 0)
        return -1;
    if (strcmp(w.sql.s, "1") == 0) { /* terms that add no condition ("-!!!") */
        sqlite_where_cleanup(&w);
        return store_mailbox_counts(st, out);
    }
    sqlite3_stmt *stmt = sqlite_where_prepare(
        st, "SELECT count(*), coalesce(sum(read = 0), 0) FROM messages", &w, "");
    int rc = sqlite_two_ints(st, stmt, &out->total, &out->unread);
    sqlite_where_cleanup(&w);
    return rc;
}

char *
store_latest_id(store *st, const search_query *q)
{
    sqlite_where w;
    if (sqlite_where_compile(&w, q, st->schema) != 0)
        return NULL;
    sqlite3_stmt *stmt =
        sqlite_where_prepare(st, "SELECT id FROM messages", &w, " ORDER BY seq DESC LIMIT 1");
    char *id = NULL;
    if (stmt != NULL && sqlite3_step(stmt) == SQLITE_ROW)
        id = sqlite_col_dup(stmt, 0);
    sqlite_stmt_put(st, stmt);
    sqlite_where_cleanup(&w);
    return id;
}

long
store_tags(store *st, bool (*cb)(const char *tag, long count, void *ctx), void *ctx)
{
    if (st->schema < 3)
        return 0; /* no tags before migration 3 */
    sqlite3_stmt *stmt =
        sqlite_stmt_get(st, "SELECT name, count FROM tags WHERE count > 0 ORDER BY name");
    if (stmt == NULL)
        return -1;
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(stmt, 0);
        n++;
        if (!cb(name ? (const char *)name : "", (long)sqlite3_column_int64(stmt, 1), ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite_stmt_put(st, stmt);
    return rc == SQLITE_DONE ? n : -1;
}

int64_t
store_file_size(store *st)
{
    /* pages in use, WAL included: what the file holds once checkpointed; a reader of a
       :memory: store cannot tell its file is temporary, so the writer does not either */
    long pages, page_size;
    sqlite3_stmt *stmt =
        sqlite_stmt_get(st, "SELECT * FROM pragma_page_count(), pragma_page_size()");
    if (sqlite_two_ints(st, stmt, &pages, &page_size) != 0)
        return -1;
    return (int64_t)pages * page_size;
}

int64_t
store_change_counter(store *st)
{
    /* data_version moves when another connection commits; our own changes (triggers'
       included) are in total_changes. Both only grow, and so does the sum. */
    long version;
    if (sqlite_two_ints(st, sqlite_stmt_get(st, "PRAGMA data_version"), &version, NULL) != 0)
        return -1;
    return (int64_t)version + (int64_t)sqlite3_total_changes64(st->db);
}

/* ---- the HTTP API: changing -------------------------------------------------------- */

static int
sqlite_begin(store *st)
{
    return sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* COMMIT when ok, else (or when COMMIT fails) ROLLBACK; 0 once committed. */
static int
sqlite_end(store *st, bool ok)
{
    if (ok && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Runs stmt (one id parameter, ?1) for each listed id, STORE_CHUNK_IDS per transaction;
   done[i] is set for each id that changed a row (done may be NULL). Returns the number
   of rows changed, or -1 (earlier chunks stay committed). */
static long
sqlite_each_id(store *st, sqlite3_stmt *stmt, const char *const *ids, size_t n, bool *done)
{
    long changed = 0;
    for (size_t i = 0; i < n;) {
        if (sqlite_begin(st) != 0)
            return -1;
        bool ok = true;
        size_t first = i;
        for (size_t k = 0; ok && k < STORE_CHUNK_IDS && i < n; k++, i++) {
            if (ids[i] == NULL)
                continue;
            sqlite3_bind_text(stmt, 1, ids[i], -1, SQLITE_STATIC);
            ok = sqlite3_step(stmt) == SQLITE_DONE;
            sqlite3_reset(stmt);
            long c = ok ? (long)sqlite3_changes64(st->db) : 0;
            changed += c;
            if (done != NULL)
                done[i] = c > 0;
        }
        if (sqlite_end(st, ok) != 0) {
            for (size_t j = first; done != NULL && j < i; j++)
                done[j] = false; /* rolled back */
            return -1;
        }
    }
    return changed;
}

/* Runs a chunked bulk change: stmt changes at most STORE_CHUNK_ROWS matching rows with
   seq below :cursor, newest first, and returns (RETURNING) seq and, for deletes, id.
   Each chunk commits on its own (see STORE_CHUNK_ROWS); the next continues below the
   last, so rows that arrive meanwhile are never touched. cb gets each id after its
   chunk committed. Returns the rows changed, or -1. */
static long
sqlite_chunked(sqlite3_stmt *stmt, void (*cb)(const char *id, void *ctx), void *ctx)
{
    long total = 0;
    int64_t cursor = INT64_MAX;
    char **ids = cb != NULL ? calloc(STORE_CHUNK_ROWS, sizeof(*ids)) : NULL;
    if (cb != NULL && ids == NULL)
        return -1;
    for (;;) {
        sqlite_bind_named(stmt, ":cursor", cursor);
        sqlite_bind_named(stmt, ":chunk", STORE_CHUNK_ROWS);
        size_t n = 0;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            int64_t seq = sqlite3_column_int64(stmt, 0);
            cursor = seq < cursor ? seq : cursor;
            if (ids != NULL && n < STORE_CHUNK_ROWS)
                ids[n] = sqlite_col_dup(stmt, 1); /* NULL when out of memory: not told */
            n++;
        }
        sqlite3_reset(stmt);
        for (size_t i = 0; ids != NULL && i < n && i < STORE_CHUNK_ROWS; i++) {
            if (rc == SQLITE_DONE && ids[i] != NULL)
                cb(ids[i], ctx);
            free(ids[i]);
            ids[i] = NULL;
        }
        if (rc != SQLITE_DONE) {
            total = -1;
            break;
        }
        total += (long)n;
        if (n < STORE_CHUNK_ROWS)
            break; /* the chunk found every match left below the cursor */
    }
    free(ids);
    return total;
}

long
store_set_read(store *st, const char *const *ids, size_t n, const search_query *q, bool read)
{
    long changed = -1;
    if (n > 0) {
        sqlite3_stmt *stmt = NULL;
        const char *sql = read ? "UPDATE messages SET read = 1 WHERE id = ?1 AND read = 0"
                               : "UPDATE messages SET read = 0 WHERE id = ?1 AND read <> 0";
        if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) == SQLITE_OK)
            changed = sqlite_each_id(st, stmt, ids, n, NULL);
        sqlite3_finalize(stmt);
        return changed;
    }
    sqlite_where w;
    if (sqlite_where_compile(&w, q, st->schema) != 0)
        return -1;
    /* literal flags, not parameters: "read = 0" is what lets the partial index
       messages_unread find the rows to mark read */
    sqlite3_stmt *stmt = sqlite_where_prepare(
        st,
        read ? "UPDATE messages SET read = 1 WHERE seq IN (SELECT seq FROM messages"
             : "UPDATE messages SET read = 0 WHERE seq IN (SELECT seq FROM messages",
        &w,
        read ? " AND read = 0 AND seq < :cursor ORDER BY seq DESC LIMIT :chunk) RETURNING seq"
             : " AND read <> 0 AND seq < :cursor ORDER BY seq DESC LIMIT :chunk) RETURNING seq");
    if (stmt != NULL)
        changed = sqlite_chunked(stmt, NULL, NULL);
    sqlite_stmt_put(st, stmt);
    sqlite_where_cleanup(&w);
    return changed;
}

long
store_delete_matching(store *st, const char *const *ids, size_t n, const search_query *q,
                      void (*cb)(const char *id, void *ctx), void *ctx)
{
    long deleted = -1;
    if (n > 0) {
        sqlite3_stmt *stmt = NULL;
        bool *done = calloc(n, sizeof(*done));
        if (done != NULL && sqlite3_prepare_v2(st->db, "DELETE FROM messages WHERE id = ?1", -1,
                                               &stmt, NULL) == SQLITE_OK)
            deleted = sqlite_each_id(st, stmt, ids, n, done);
        sqlite3_finalize(stmt);
        /* told after the commit; on an error, what was committed before it is told too */
        for (size_t i = 0; cb != NULL && done != NULL && i < n; i++)
            if (done[i])
                cb(ids[i], ctx);
        free(done);
        return deleted;
    }
    sqlite_where w;
    if (sqlite_where_compile(&w, q, st->schema) != 0)
        return -1;
    /* the FTS, counts and tags triggers run for each row, keeping them in step */
    sqlite3_stmt *stmt = sqlite_where_prepare(
        st, "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages", &w,
        " AND seq < :cursor ORDER BY seq DESC LIMIT :chunk) RETURNING seq, id");
    if (stmt != NULL)
        deleted = sqlite_chunked(stmt, cb, ctx);
    sqlite_stmt_put(st, stmt);
    sqlite_where_cleanup(&w);
    return deleted;
}

/* The statements store_set_tags needs. */
typedef struct sqlite_tagger {
    sqlite3_stmt *find;  /* ?1 id -> seq, current tags */
    sqlite3_stmt *clear; /* ?1 seq */
    sqlite3_stmt *put_tag;
    sqlite3_stmt *put_msg_tag;
} sqlite_tagger;

/* Replaces the tags of message id; *changed when its tag list differs afterwards.
   SQLITE_OK (also for an unknown id) or the error. */
static int
sqlite_tags_replace(sqlite_tagger *tg, const char *id, const char *const *tags, size_t ntags,
                    bool *changed)
{
    *changed = false;
    sqlite3_bind_text(tg->find, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(tg->find);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(tg->find);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    int64_t seq = sqlite3_column_int64(tg->find, 0);
    char *before = sqlite_col_dup(tg->find, 1);
    sqlite3_reset(tg->find);
    if (before == NULL)
        return SQLITE_NOMEM;
    sqlite3_bind_int64(tg->clear, 1, seq);
    rc = sqlite_step_done(tg->clear);
    for (size_t i = 0; rc == SQLITE_OK && i < ntags; i++)
        rc = sqlite_tag_add(tg->put_tag, tg->put_msg_tag, seq, tags[i]);
    if (rc == SQLITE_OK && (rc = sqlite3_step(tg->find)) == SQLITE_ROW) {
        const unsigned char *after = sqlite3_column_text(tg->find, 1);
        *changed = strcmp(before, after ? (const char *)after : "") != 0;
        rc = SQLITE_OK;
    }
    sqlite3_reset(tg->find);
    free(before);
    return rc;
}

long
store_set_tags(store *st, const char *const *ids, size_t n, const char *const *tags, size_t ntags)
{
    if (st->schema < 3 || (ntags > 0 && tags == NULL))
        return -1;
    sqlite_tagger tg = {0};
    long changed = -1;
    sqlite3 *db = st->db;
    if (sqlite3_prepare_v2(db, "SELECT seq, " SQLITE_ROW_TAGS " FROM messages WHERE id = ?1", -1,
                           &tg.find, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM message_tags WHERE seq = ?1", -1, &tg.clear, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, sqlite_put_tag_sql, -1, &tg.put_tag, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sqlite_put_msg_tag_sql, -1, &tg.put_msg_tag, NULL) != SQLITE_OK)
        goto out;
    changed = 0;
    for (size_t i = 0; i < n && changed >= 0;) {
        if (sqlite_begin(st) != 0) {
            changed = -1;
            break;
        }
        int rc = SQLITE_OK;
        for (size_t k = 0; rc == SQLITE_OK && k < STORE_CHUNK_IDS && i < n; k++, i++) {
            bool c = false;
            if (ids[i] != NULL)
                rc = sqlite_tags_replace(&tg, ids[i], tags, ntags, &c);
            changed += c;
        }
        if (sqlite_end(st, rc == SQLITE_OK) != 0)
            changed = -1;
    }
out:
    sqlite3_finalize(tg.find);
    sqlite3_finalize(tg.clear);
    sqlite3_finalize(tg.put_tag);
    sqlite3_finalize(tg.put_msg_tag);
    return changed;
}
