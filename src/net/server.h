/*
 * server.h - the inside of an smtpd_server, shared by the files of src/net: server.c
 * (the public functions), listener.c (sockets and accepting) and conn.c (one connection:
 * a bufferevent feeding a session).
 *
 * Threads: everything here belongs to the server's I/O thread once it runs, except what
 * `lock` guards (the queue of completions and the stop request), which other threads
 * fill and wake the I/O thread for.
 */
#ifndef NET_SERVER_H
#define NET_SERVER_H

#include "net/peers.h"
#include "net/sessions.h"
#include "smtp/session.h"

#include <smtpd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct event_base;
struct event;
struct evconnlistener;
typedef struct ssl_ctx_st SSL_CTX;

typedef enum server_state {
    SERVER_NEW = 0, /* configuring, listening sockets may be bound */
    SERVER_RUNNING,
    SERVER_STOPPING, /* listeners closed, sessions finishing */
    SERVER_STOPPED
} server_state;

typedef struct listener {
    int fd;
    int port;
    bool implicit_tls; /* RFC 8314: the handshake comes before the greeting */
    struct evconnlistener *lev;
    struct event *resume; /* re-enables accepting after EMFILE */
} listener;

/* Answers kept without a node when allocating one fails (smtpd_server_complete). */
#define SERVER_SPARE_COMPLETIONS 64

/* A completion from another thread, waiting for the I/O thread. */
typedef struct completion {
    smtpd_ticket ticket;
    smtpd_verdict verdict;
    int code;
    char enhanced[16];
    char *text;
    struct completion *next;
} completion;

struct smtpd_server {
    smtpd_options opts;
    smtpd_hooks hooks;
    session_env env;
    char errmsg[256];

    listener *listeners;
    size_t nlisteners;
    SSL_CTX *ssl_ctx; /* NULL: no TLS */

    struct event_base *base;
    bool own_base;
    bool attached;
    pthread_t thread;
    bool thread_running;
    _Atomic int state; /* server_state */

    sessions_map sessions; /* id -> conn */
    peers_map peers;       /* client address -> open sessions, for max-sessions-per-ip */
    _Atomic size_t nsessions;
    uint64_t next_session_id;

    pthread_mutex_t lock; /* guards the fields below */
    completion *done_head, *done_tail;
    /* completions whose node could not be allocated, kept here (without their text) so
       that a lack of memory never leaves a session waiting for good */
    completion done_spare[SERVER_SPARE_COMPLETIONS];
    size_t done_nspare;
    bool stop_requested;
    int stop_grace_ms;

    struct event *wakeup;
    struct event *grace_timer;
};

/* server.c */
void server_set_error(smtpd_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A connection closed; ends the loop when stopping and it was the last one. */
void server_conn_closed(smtpd_server *srv);

/* listener.c */
int listener_bind(smtpd_server *srv, const char *addr, const char *port, bool implicit_tls);
int listener_attach_all(smtpd_server *srv);
void listener_close_all(smtpd_server *srv);

/* conn.c */
struct conn;
void conn_accept(smtpd_server *srv, int fd, const char *addr, int port, bool implicit_tls);
/* Continue a session after a completion: run the hook result, feed held input. */
void conn_complete(struct conn *c, const completion *done);
/* Grace period over: 421 and close once written. */
void conn_shutdown(struct conn *c);
/* Free at once, writing nothing (the server is being freed). */
void conn_abort(struct conn *c);

#endif
