/* ingest.c - the store writer thread: batches, commits, then releases the 250s; see
   ingest.h. */
#include "mailsink/ingest.h"

#include "mailsink/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Enough to amortise one fsync over many messages, small enough to answer promptly. */
#define INGEST_BATCH_MAX 256
/* How often age-based pruning runs when no mail arrives. */
#define INGEST_IDLE_WAKE_S 1

struct ingest {
    store *st;
    exporter *ex;
    ingest_limits lim;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ingest_item *head, *tail;
    size_t queued_bytes;
    bool stopping;
    ingest_stored_fn on_stored;
    void *stored_ctx;
};

static char *
ingest_dup(const char *s)
{
    return strdup(s ? s : "");
}

ingest_item *
ingest_item_new(smtpd_session *s, const smtpd_message *m)
{
    ingest_item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    it->srv = smtpd_session_server(s);
    it->ticket = smtpd_session_ticket(s);
    it->received_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    it->findings = m->findings;
    it->trace_size = m->trace_size;
    it->raw_len = m->size;
    it->id = ingest_dup(m->id);
    it->sender = ingest_dup(m->sender);
    it->client_addr = ingest_dup(smtpd_session_client_addr(s));
    it->helo = ingest_dup(smtpd_session_helo(s));
    const char *facts[] = {smtpd_session_tls_version(s), smtpd_session_tls_cipher(s),
                           smtpd_session_tls_peer(s), smtpd_session_auth_user(s)};
    char **copies[] = {&it->tls_version, &it->tls_cipher, &it->tls_peer, &it->auth_user};
    for (size_t i = 0; i < 4; i++)
        if (facts[i] && !(*copies[i] = strdup(facts[i])))
            goto fail;
    it->raw = malloc(m->size ? m->size : 1);
    it->rcpts = calloc(m->rcpt_count ? m->rcpt_count : 1, sizeof *it->rcpts);
    if (!it->id || !it->sender || !it->client_addr || !it->helo || !it->raw || !it->rcpts)
        goto fail;
    memcpy(it->raw, m->data, m->size);
    for (size_t i = 0; i < m->rcpt_count; i++) {
        it->rcpts[i] = strdup(m->rcpts[i]);
        if (!it->rcpts[i])
            goto fail;
        it->rcpt_count++;
    }
    return it;
fail:
    ingest_item_free(it);
    return NULL;
}

ingest_item *
ingest_item_new_local(const char *id, const char *sender, const char *const *rcpts,
                      size_t rcpt_count, const char *raw, size_t raw_len, const char *client_addr,
                      const char *const *tags, size_t tag_count, ingest_done_fn on_done,
                      void *done_ctx)
{
    ingest_item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    it->received_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    it->on_done = on_done;
    it->done_ctx = done_ctx;
    it->raw_len = raw_len;
    it->id = ingest_dup(id);
    it->sender = ingest_dup(sender);
    it->client_addr = ingest_dup(client_addr);
    it->helo = ingest_dup("");
    it->raw = malloc(raw_len ? raw_len : 1);
    it->rcpts = calloc(rcpt_count ? rcpt_count : 1, sizeof *it->rcpts);
    it->tags = calloc(tag_count ? tag_count : 1, sizeof *it->tags);
    if (!it->id || !it->sender || !it->client_addr || !it->helo || !it->raw || !it->rcpts ||
        !it->tags)
        goto fail;
    memcpy(it->raw, raw, raw_len);
    for (size_t i = 0; i < rcpt_count; i++) {
        if (!(it->rcpts[i] = strdup(rcpts[i])))
            goto fail;
        it->rcpt_count++;
    }
    for (size_t i = 0; i < tag_count; i++) {
        if (!(it->tags[i] = strdup(tags[i])))
            goto fail;
        it->tag_count++;
    }
    return it;
fail:
    ingest_item_free(it);
    return NULL;
}

void
ingest_item_free(ingest_item *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->tag_count; i++)
        free(it->tags[i]);
    free(it->tags);
    for (size_t i = 0; i < it->rcpt_count; i++)
        free(it->rcpts[i]);
    free(it->rcpts);
    free(it->id);
    free(it->sender);
    free(it->client_addr);
    free(it->helo);
    free(it->tls_version);
    free(it->tls_cipher);
    free(it->tls_peer);
    free(it->auth_user);
    free(it->raw);
    free(it);
}

int
ingest_enqueue(ingest *in, ingest_item *it)
{
    pthread_mutex_lock(&in->lock);
    /* an empty queue takes any message, so a cap below the largest message (and its
       trace header) delays mail instead of refusing it for good */
    if (in->stopping ||
        (in->head != NULL && in->queued_bytes + it->raw_len > in->lim.max_queue_bytes)) {
        pthread_mutex_unlock(&in->lock);
        return -1;
    }
    it->next = NULL;
    if (in->tail)
        in->tail->next = it;
    else
        in->head = it;
    in->tail = it;
    in->queued_bytes += it->raw_len;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->lock);
    return 0;
}

/* Take up to INGEST_BATCH_MAX items; waits for work. NULL when stopping and empty. */
static ingest_item *
ingest_take_batch(ingest *in, size_t *count)
{
    pthread_mutex_lock(&in->lock);
    while (!in->head && !in->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += INGEST_IDLE_WAKE_S;
        if (pthread_cond_timedwait(&in->cond, &in->lock, &until) == ETIMEDOUT)
            break;
    }
    ingest_item *batch = in->head, *last = NULL;
    size_t n = 0;
    for (ingest_item *it = in->head; it && n < INGEST_BATCH_MAX; it = it->next) {
        in->queued_bytes -= it->raw_len;
        last = it;
        n++;
    }
    if (last) {
        in->head = last->next;
        if (!in->head)
            in->tail = NULL;
        last->next = NULL;
    }
    pthread_mutex_unlock(&in->lock);
    *count = n;
    return n ? batch : NULL;
}

void
ingest_on_stored(ingest *in, ingest_stored_fn fn, void *ctx)
{
    pthread_mutex_lock(&in->lock);
    in->on_stored = fn;
    in->stored_ctx = ctx;
    pthread_mutex_unlock(&in->lock);
}

/* Tell the listener (the HTTP server's live events) which ids were just committed. */
static void
ingest_notify_stored(ingest *in, ingest_item *batch, size_t n)
{
    pthread_mutex_lock(&in->lock);
    ingest_stored_fn fn = in->on_stored;
    void *ctx = in->stored_ctx;
    pthread_mutex_unlock(&in->lock);
    const char **ids = fn ? malloc(n * sizeof *ids) : NULL;
    if (!ids)
        return;
    size_t i = 0;
    for (ingest_item *it = batch; it && i < n; it = it->next)
        ids[i++] = it->id;
    fn(ctx, ids, i);
    free(ids);
}

/* Write one batch; then release every item's pending answer by the outcome. */
static void
ingest_write_batch(ingest *in, ingest_item *batch, size_t n)
{
    store_msg *msgs = calloc(n, sizeof *msgs);
    mime_summary *sums = calloc(n, sizeof *sums);
    char err[256] = "out of memory";
    int rc = -1;
    if (msgs && sums) {
        size_t i = 0;
        for (ingest_item *it = batch; it; it = it->next, i++) {
            /* the summary is of the client's message, without our trace headers */
            mime_summarize(it->raw + it->trace_size, it->raw_len - it->trace_size, &sums[i]);
            msgs[i] = (store_msg){.id = it->id,
                                  .received_ms = it->received_ms,
                                  .sender = it->sender,
                                  .rcpts = (const char *const *)it->rcpts,
                                  .rcpt_count = it->rcpt_count,
                                  .client_addr = it->client_addr,
                                  .helo = it->helo,
                                  .findings = it->findings,
                                  .raw = it->raw,
                                  .raw_len = it->raw_len,
                                  .trace_size = it->trace_size,
                                  .summary = &sums[i],
                                  .tls_version = it->tls_version,
                                  .tls_cipher = it->tls_cipher,
                                  .tls_peer = it->tls_peer,
                                  .auth_user = it->auth_user,
                                  .tags = (const char *const *)it->tags,
                                  .tag_count = it->tag_count};
        }
        rc = store_put_batch(in->st, msgs, n, err, sizeof err);
    }
    if (rc != 0)
        log_msg(LOG_ERROR, "cannot store %zu message(s): %s", n, err);
    for (ingest_item *it = batch; it; it = it->next) {
        if (rc == 0 && in->ex &&
            export_write(in->ex, it->id, it->sender, it->received_ms, it->raw, it->raw_len, err,
                         sizeof err) != 0)
            log_msg(LOG_ERROR, "export of %s: %s", it->id, err);
        if (!it->srv) { /* not from SMTP: its owner answers */
            if (it->on_done)
                it->on_done(it->done_ctx, it->id, rc);
            continue;
        }
        /* RFC 5321 4.1.1.4, 6.1: the 250 leaves only now that the message is committed */
        if (rc == 0)
            smtpd_server_complete(it->srv, it->ticket, SMTPD_ACCEPT, 0, NULL, NULL);
        else if (rc == STORE_EFULL) /* RFC 3463 4.3.1: mail system full */
            smtpd_server_complete(it->srv, it->ticket, SMTPD_TEMPFAIL, 452, "4.3.1",
                                  "Insufficient system storage");
        else
            smtpd_server_complete(it->srv, it->ticket, SMTPD_TEMPFAIL, 451, "4.3.0",
                                  "Error: cannot store the message now, try again later");
    }
    if (rc == 0)
        ingest_notify_stored(in, batch, n);
    for (size_t i = 0; sums && i < n; i++)
        mime_summary_cleanup(&sums[i]);
    free(sums);
    free(msgs);
}

static void
ingest_prune(ingest *in)
{
    if (!in->lim.max_messages && !in->lim.max_age_s)
        return;
    int64_t older = 0;
    if (in->lim.max_age_s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        older = ((int64_t)ts.tv_sec - (int64_t)in->lim.max_age_s) * 1000;
    }
    if (store_prune(in->st, in->lim.max_messages, older) < 0)
        log_msg(LOG_WARN, "pruning failed");
}

static void *
ingest_main(void *arg)
{
    ingest *in = arg;
    for (;;) {
        size_t n = 0;
        ingest_item *batch = ingest_take_batch(in, &n);
        if (batch) {
            ingest_write_batch(in, batch, n);
            while (batch) {
                ingest_item *next = batch->next;
                ingest_item_free(batch);
                batch = next;
            }
        }
        ingest_prune(in);
        pthread_mutex_lock(&in->lock);
        bool done = in->stopping && !in->head;
        pthread_mutex_unlock(&in->lock);
        if (done)
            return NULL;
    }
}

ingest *
ingest_start(store *st, exporter *ex, const ingest_limits *lim)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->st = st;
    in->ex = ex;
    in->lim = *lim;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    if (pthread_create(&in->thread, NULL, ingest_main, in) != 0) {
        pthread_cond_destroy(&in->cond);
        pthread_mutex_destroy(&in->lock);
        free(in);
        return NULL;
    }
    return in;
}

void
ingest_stop(ingest *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    in->stopping = true;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->lock);
    pthread_join(in->thread, NULL);
    pthread_cond_destroy(&in->cond);
    pthread_mutex_destroy(&in->lock);
    free(in);
}
