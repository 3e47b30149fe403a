/*
 * server.c - the public smtpd_server_* functions: life cycle, configuration, the three
 * ways to run (own thread, caller's thread, caller's event_base), stopping with a grace
 * period, and completions of pending hooks arriving from other threads.
 */
#include "net/server.h"

#include "core/str.h"
#include "smtp/options.h"
#include "tls/tls.h"

#include <errno.h>
#include <signal.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static pthread_once_t server_evthread_once = PTHREAD_ONCE_INIT;
static int server_evthread_rc;

/* libevent's locking must be on before any base other threads will wake is made.
   A client may close while we write to it: that must be EPIPE, not a SIGPIPE that kills
   the process, so SIGPIPE is ignored unless the application has its own handler. */
static void
server_evthread_init(void)
{
    server_evthread_rc = evthread_use_pthreads();
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

void
server_set_error(smtpd_server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(srv->errmsg, sizeof srv->errmsg, fmt, ap);
    va_end(ap);
}

/* Crockford base32: ids stay readable and case-insensitive. */
static void
server_make_id_prefix(char *out, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char rnd[8] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* no entropy: fall back to the time and address, still unlikely to repeat */
        uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;
        memcpy(rnd, &x, sizeof rnd);
    }
    for (size_t i = 0; i + 1 < len; i++)
        out[i] = alphabet[rnd[i % sizeof rnd] & 31];
    out[len - 1] = '\0';
}

SMTPD_API smtpd_server *
smtpd_server_new(const smtpd_options *opts, const smtpd_hooks *hooks, void *user)
{
    pthread_once(&server_evthread_once, server_evthread_init);
    if (server_evthread_rc != 0)
        return NULL;
    smtpd_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    if (options_copy(&srv->opts, opts) != SMTPD_OK) {
        free(srv);
        return NULL;
    }
    if (hooks)
        srv->hooks = *hooks;
    srv->env.opts = &srv->opts;
    srv->env.hooks = &srv->hooks;
    srv->env.user = user;
    srv->env.server = srv;
    server_make_id_prefix(srv->env.id_prefix, 7);
    atomic_init(&srv->env.next_msg_id, 1);
    atomic_init(&srv->state, SERVER_NEW);
    atomic_init(&srv->nsessions, 0);
    sessions_init(&srv->sessions);
    peers_init(&srv->peers);
    pthread_mutex_init(&srv->lock, NULL);
    return srv;
}

SMTPD_API const char *
smtpd_server_errmsg(const smtpd_server *srv)
{
    return srv->errmsg;
}

SMTPD_API int
smtpd_server_configure(smtpd_server *srv, const char *name, const char *value)
{
    if (atomic_load(&srv->state) != SERVER_NEW) {
        server_set_error(srv, "configure: the server is already running");
        return SMTPD_ESTATE;
    }
    int rc = options_set(&srv->opts, name, value);
    if (rc == SMTPD_ENOENT)
        server_set_error(srv, "unknown option '%s'", name);
    else if (rc != SMTPD_OK)
        server_set_error(srv, "bad value for option '%s'", name);
    return rc;
}

SMTPD_API int
smtpd_server_cget(smtpd_server *srv, const char *name, char *out, size_t size)
{
    int rc = options_get(&srv->opts, name, out, size);
    if (rc == SMTPD_ENOENT)
        server_set_error(srv, "unknown option '%s'", name);
    return rc;
}

SMTPD_API int
smtpd_server_listen(smtpd_server *srv, const char *addr, const char *port)
{
    if (atomic_load(&srv->state) != SERVER_NEW)
        return SMTPD_ESTATE;
    return listener_bind(srv, addr ? addr : "127.0.0.1", port ? port : "25", false);
}

SMTPD_API int
smtpd_server_listen_tls(smtpd_server *srv, const char *addr, const char *port)
{
    if (atomic_load(&srv->state) != SERVER_NEW)
        return SMTPD_ESTATE;
    return listener_bind(srv, addr ? addr : "127.0.0.1", port ? port : "465", true);
}

SMTPD_API int
smtpd_server_set_ssl_ctx(smtpd_server *srv, struct ssl_ctx_st *ctx)
{
    if (!ctx)
        return SMTPD_EINVAL;
    if (atomic_load(&srv->state) != SERVER_NEW)
        return SMTPD_ESTATE;
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(srv->ssl_ctx);
    srv->ssl_ctx = ctx;
    return SMTPD_OK;
}

/* The TLS context from the tls-cert/tls-key options, unless the embedder gave one. */
static int
server_setup_tls(smtpd_server *srv)
{
    const smtpd_options *o = &srv->opts;
    if (!srv->ssl_ctx && (o->tls_cert_file || o->tls_key_file)) {
        if (!o->tls_cert_file || !o->tls_key_file) {
            server_set_error(srv, "TLS needs both tls-cert and tls-key");
            return SMTPD_EINVAL;
        }
        char err[sizeof srv->errmsg];
        srv->ssl_ctx = tls_ctx_new(o->tls_cert_file, o->tls_key_file, err, sizeof err);
        if (!srv->ssl_ctx) {
            server_set_error(srv, "%s", err);
            return SMTPD_EINVAL;
        }
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].implicit_tls && !srv->ssl_ctx) {
            server_set_error(srv, "an implicit TLS listener needs a certificate");
            return SMTPD_EINVAL;
        }
    }
    srv->env.tls_available = srv->ssl_ctx != NULL;
    return SMTPD_OK;
}

SMTPD_API int
smtpd_server_bound_port(const smtpd_server *srv, size_t index)
{
    return index < srv->nlisteners ? srv->listeners[index].port : -1;
}

SMTPD_API size_t
smtpd_server_session_count(const smtpd_server *srv)
{
    return atomic_load(&srv->nsessions);
}

SMTPD_API int
smtpd_server_is_stopped(const smtpd_server *srv)
{
    return atomic_load(&srv->state) == SERVER_STOPPED;
}

/* The last connection is gone while stopping: the server is done. */
static void
server_finish(smtpd_server *srv)
{
    atomic_store(&srv->state, SERVER_STOPPED);
    if (!srv->attached)
        event_base_loopexit(srv->base, NULL);
}

void
server_conn_closed(smtpd_server *srv)
{
    if (atomic_load(&srv->state) == SERVER_STOPPING && srv->sessions.count == 0)
        server_finish(srv);
}

static void
server_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpd_server *srv = arg;
    size_t n = srv->sessions.count;
    if (n == 0) {
        server_finish(srv);
        return;
    }
    struct conn **all = calloc(n, sizeof *all);
    if (!all)
        return;
    n = sessions_snapshot(&srv->sessions, all, n);
    for (size_t i = 0; i < n; i++)
        conn_shutdown(all[i]); /* may free the conn, and finish the server */
    free(all);
}

static void
server_begin_stop(smtpd_server *srv, int grace_ms)
{
    if (atomic_load(&srv->state) != SERVER_RUNNING)
        return;
    atomic_store(&srv->state, SERVER_STOPPING);
    listener_close_all(srv);
    if (srv->sessions.count == 0) {
        server_finish(srv);
        return;
    }
    struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
    evtimer_add(srv->grace_timer, &tv);
}

/* Runs on the I/O thread when another thread queued completions or a stop. */
static void
server_wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpd_server *srv = arg;
    completion spare[SERVER_SPARE_COMPLETIONS];
    pthread_mutex_lock(&srv->lock);
    completion *list = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    size_t nspare = srv->done_nspare;
    memcpy(spare, srv->done_spare, nspare * sizeof *spare);
    srv->done_nspare = 0;
    bool stop = srv->stop_requested;
    int grace = srv->stop_grace_ms;
    srv->stop_requested = false;
    pthread_mutex_unlock(&srv->lock);
    while (list) {
        completion *next = list->next;
        struct conn *c = sessions_get(&srv->sessions, list->ticket.session_id);
        if (c)
            conn_complete(c, list);
        free(list->text);
        free(list);
        list = next;
    }
    for (size_t i = 0; i < nspare; i++) {
        struct conn *c = sessions_get(&srv->sessions, spare[i].ticket.session_id);
        if (c)
            conn_complete(c, &spare[i]);
    }
    if (stop)
        server_begin_stop(srv, grace);
}

/* Create the events the server needs on its base and watch the listeners. */
static int
server_setup(smtpd_server *srv)
{
    if (srv->nlisteners == 0) {
        server_set_error(srv, "no listening address: call smtpd_server_listen first");
        return SMTPD_ESTATE;
    }
    int rc = server_setup_tls(srv);
    if (rc != SMTPD_OK)
        return rc;
    srv->wakeup = event_new(srv->base, -1, 0, server_wakeup_cb, srv);
    srv->grace_timer = evtimer_new(srv->base, server_grace_cb, srv);
    if (!srv->wakeup || !srv->grace_timer)
        return SMTPD_ENOMEM;
    rc = listener_attach_all(srv);
    if (rc != SMTPD_OK)
        return rc;
    atomic_store(&srv->state, SERVER_RUNNING);
    return SMTPD_OK;
}

static int
server_own_base(smtpd_server *srv)
{
    if (atomic_load(&srv->state) != SERVER_NEW || srv->base) {
        server_set_error(srv, "the server was already started");
        return SMTPD_ESTATE;
    }
    srv->base = event_base_new();
    if (!srv->base) {
        server_set_error(srv, "cannot create an event base");
        return SMTPD_ESYS;
    }
    srv->own_base = true;
    return server_setup(srv);
}

static void *
server_thread_main(void *arg)
{
    smtpd_server *srv = arg;
    event_base_dispatch(srv->base);
    atomic_store(&srv->state, SERVER_STOPPED);
    return NULL;
}

SMTPD_API int
smtpd_server_start(smtpd_server *srv)
{
    int rc = server_own_base(srv);
    if (rc != SMTPD_OK)
        return rc;
    /* the sockets already listen, so connections queue from now on */
    if (pthread_create(&srv->thread, NULL, server_thread_main, srv) != 0) {
        server_set_error(srv, "cannot create the server thread: %s", strerror(errno));
        atomic_store(&srv->state, SERVER_STOPPED);
        return SMTPD_ESYS;
    }
    srv->thread_running = true;
    return SMTPD_OK;
}

SMTPD_API int
smtpd_server_run(smtpd_server *srv)
{
    int rc = server_own_base(srv);
    if (rc != SMTPD_OK)
        return rc;
    event_base_dispatch(srv->base);
    atomic_store(&srv->state, SERVER_STOPPED);
    return SMTPD_OK;
}

SMTPD_API int
smtpd_server_attach(smtpd_server *srv, struct event_base *base)
{
    if (!base)
        return SMTPD_EINVAL;
    if (atomic_load(&srv->state) != SERVER_NEW || srv->base)
        return SMTPD_ESTATE;
    srv->base = base;
    srv->attached = true;
    return server_setup(srv);
}

SMTPD_API int
smtpd_server_stop(smtpd_server *srv, int grace_ms)
{
    int state = atomic_load(&srv->state);
    if (state == SERVER_NEW || !srv->base) {
        atomic_store(&srv->state, SERVER_STOPPED);
        return SMTPD_OK;
    }
    if (grace_ms < 0)
        grace_ms = (int)srv->opts.stop_grace_ms;
    if (state == SERVER_RUNNING) {
        pthread_mutex_lock(&srv->lock);
        srv->stop_requested = true;
        srv->stop_grace_ms = grace_ms;
        pthread_mutex_unlock(&srv->lock);
        event_active(srv->wakeup, EV_READ, 0);
    }
    if (srv->thread_running && !pthread_equal(pthread_self(), srv->thread)) {
        pthread_join(srv->thread, NULL);
        srv->thread_running = false;
    }
    return SMTPD_OK;
}

SMTPD_API int
smtpd_server_complete(smtpd_server *srv, smtpd_ticket ticket, smtpd_verdict verdict, int code,
                      const char *enhanced, const char *text)
{
    if (verdict == SMTPD_PENDING || (int)verdict < 0 || verdict > SMTPD_PENDING)
        return SMTPD_EINVAL;
    if (code && (code < 200 || code > 599))
        return SMTPD_EINVAL;
    if (enhanced && strlen(enhanced) >= sizeof((completion *)0)->enhanced)
        return SMTPD_EINVAL;
    int state = atomic_load(&srv->state);
    if (state == SERVER_STOPPED || state == SERVER_NEW || !srv->wakeup)
        return SMTPD_ENOENT;
    completion answer = {.ticket = ticket, .verdict = verdict, .code = code};
    if (enhanced)
        snprintf(answer.enhanced, sizeof answer.enhanced, "%s", enhanced);
    /* Out of memory, the answer still goes: without its text (the verdict's default
       reply is sent, with the code asked for) and, without a node, from a fixed array.
       An answer dropped here would leave the session waiting with no timeout. */
    completion *c = calloc(1, sizeof *c);
    if (c) {
        *c = answer;
        c->text = text ? str_dup(text) : NULL;
    }
    pthread_mutex_lock(&srv->lock);
    if (c) {
        if (srv->done_tail)
            srv->done_tail->next = c;
        else
            srv->done_head = c;
        srv->done_tail = c;
    } else if (srv->done_nspare < SERVER_SPARE_COMPLETIONS) {
        srv->done_spare[srv->done_nspare++] = answer;
    } else {
        pthread_mutex_unlock(&srv->lock);
        return SMTPD_ENOMEM;
    }
    pthread_mutex_unlock(&srv->lock);
    event_active(srv->wakeup, EV_READ, 0);
    return SMTPD_OK;
}

SMTPD_API void
smtpd_server_free(smtpd_server *srv)
{
    if (!srv)
        return;
    int state = atomic_load(&srv->state);
    if (state == SERVER_RUNNING || state == SERVER_STOPPING) {
        if (srv->thread_running) {
            smtpd_server_stop(srv, 0);
        } else if (srv->own_base || srv->attached) {
            /* run/attach: the loop is not ours to drive; close what is left */
            smtpd_server_stop(srv, 0);
        }
    }
    /* sessions still open (attach mode, or a loop that was not run to the end) are
       closed without a word: there is no loop left to write their replies */
    size_t n = srv->sessions.count;
    struct conn **all = n ? calloc(n, sizeof *all) : NULL;
    if (all) {
        n = sessions_snapshot(&srv->sessions, all, n);
        for (size_t i = 0; i < n; i++)
            conn_abort(all[i]);
        free(all);
    }
    listener_close_all(srv);
    free(srv->listeners);
    if (srv->wakeup)
        event_free(srv->wakeup);
    if (srv->grace_timer)
        event_free(srv->grace_timer);
    sessions_cleanup(&srv->sessions);
    peers_cleanup(&srv->peers);
    if (srv->own_base && srv->base)
        event_base_free(srv->base);
    for (completion *c = srv->done_head; c;) {
        completion *next = c->next;
        free(c->text);
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&srv->lock);
    SSL_CTX_free(srv->ssl_ctx);
    options_cleanup(&srv->opts);
    free(srv);
}
