/*
 * sqlite_checkpoint.c - WAL checkpoints off the writer's thread.
 *
 * In WAL mode every committed page is written twice: into the WAL at COMMIT, and later
 * into the database file by a checkpoint. SQLite's default runs that checkpoint inside
 * the COMMIT that pushes the WAL past 1000 pages, on the writer's thread: at 100 KiB per
 * message a profile showed the ingest thread spending 18% of its time there, while the
 * clients waited for their 250s. Here the writer only notices that the WAL has grown
 * (sqlite3_wal_hook) and wakes a thread with its own connection, which runs PASSIVE
 * checkpoints: they copy what no reader still needs and never take the writer's lock, so
 * commits go on meanwhile.
 *
 * The WAL starts over from its beginning only when a write transaction begins with every
 * frame already copied, which under steady load a thread running behind the writer never
 * sees: the WAL would grow without end (it reached 470 MB in a minute at 100 KiB per
 * message). So when the WAL passes CHECKPOINT_CATCH_UP_PAGES the writer, idle between
 * its commit and its next batch, copies the rest itself: little, since the thread has
 * already copied most of it, and afterwards the next batch starts the WAL over.
 *
 * Durability does not change: a COMMIT is in the WAL before store_put_batch returns,
 * whether or not it has been checkpointed yet.
 */
#include "mailsink/store/sqlite_internal.h"

#include <pthread.h>
#include <stdlib.h>

/* Pages in the WAL before a checkpoint is asked for: SQLite's own default threshold. */
#define CHECKPOINT_PAGES 1000
/* Past this the writer finishes the checkpoint itself (see checkpoint_wal_hook). */
#define CHECKPOINT_CATCH_UP_PAGES (16 * CHECKPOINT_PAGES)

struct sqlite_checkpointer {
    sqlite3 *db; /* the checkpointer's own connection */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool wanted;
    bool stopping;
};

static void *
checkpoint_main(void *arg)
{
    sqlite_checkpointer *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->wanted && !c->stopping)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->stopping)
            break;
        c->wanted = false;
        pthread_mutex_unlock(&c->lock);
        /* PASSIVE: copies what it can without waiting for anyone; a busy database just
           means trying again at the next wake-up */
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* The writer's wal hook: runs after each of its commits with the WAL's size in pages. */
static int
checkpoint_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)name;
    sqlite_checkpointer *c = arg;
    if (pages >= CHECKPOINT_CATCH_UP_PAGES) {
        /* busy when the thread is mid-checkpoint: then the next commit tries again */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&c->lock);
        c->wanted = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
    return SQLITE_OK;
}

int
sqlite_checkpointer_start(store *st)
{
    sqlite_checkpointer *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    if (sqlite3_open_v2(st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    sqlite3_busy_timeout(c->db, 100);
    /* SQLite (3.40) opens a connection's WAL only when it first reads the database; until
       then sqlite3_wal_checkpoint_v2 returns SQLITE_OK having copied nothing, and every
       checkpoint fell to the writer's catch-up (31% of the ingest thread at 100 KiB) */
    if (sqlite3_exec(c->db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    /* sqlite3_wal_hook replaces the automatic checkpoint (wal_autocheckpoint) */
    sqlite3_wal_hook(st->db, checkpoint_wal_hook, c);
    st->checkpointer = c;
    return 0;
}

void
sqlite_checkpointer_stop(store *st)
{
    sqlite_checkpointer *c = st->checkpointer;
    if (!c)
        return;
    sqlite3_wal_hook(st->db, NULL, NULL);
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    sqlite3_close(c->db);
    free(c);
    st->checkpointer = NULL;
}
