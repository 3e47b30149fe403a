/*
 * listener.c - listening sockets: bound and listening at smtpd_server_listen (so a port
 * in use is reported at once and port 0 is known before starting), then handed to
 * libevent's evconnlistener when the server starts. When accept fails for lack of file
 * descriptors the listener pauses briefly instead of spinning at 100 % CPU.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTENER_EMFILE_PAUSE_MS 100

static int
listener_port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int
listener_bind(smtpd_server *srv, const char *addr, const char *port, bool implicit_tls)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int gai = getaddrinfo(addr, port, &hints, &res);
    if (gai != 0 || !res) {
        server_set_error(srv, "bad listen address %s port %s: %s", addr, port, gai_strerror(gai));
        return SMTPD_EADDR;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        server_set_error(srv, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return SMTPD_ESYS;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        server_set_error(srv, "cannot listen on %s port %s: %s", addr, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return SMTPD_EBIND;
    }
    freeaddrinfo(res);
    listener *l = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof *l);
    if (!l) {
        close(fd);
        return SMTPD_ENOMEM;
    }
    srv->listeners = l;
    l[srv->nlisteners].fd = fd;
    l[srv->nlisteners].port = listener_port_of(fd);
    l[srv->nlisteners].lev = NULL;
    l[srv->nlisteners].resume = NULL;
    l[srv->nlisteners].implicit_tls = implicit_tls;
    srv->nlisteners++;
    return SMTPD_OK;
}

static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    (void)salen;
    smtpd_server *srv = arg;
    /* Replies are small and each one is awaited: without TCP_NODELAY, Nagle holds a
       reply written while the previous one is unacknowledged until the client's delayed
       ACK (~40 ms), e.g. the 250s and 354 that follow a pipelined final dot. Replies
       produced by one read are still written together (the bufferevent flushes once per
       loop turn). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool implicit_tls = false;
    for (size_t i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].lev == lev)
            implicit_tls = srv->listeners[i].implicit_tls;
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    conn_accept(srv, fd, host, port, implicit_tls);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listener *l = arg;
    if (l->lev)
        evconnlistener_enable(l->lev);
}

/* accept() failed: out of descriptors (EMFILE/ENFILE) would fire again at once, so
   pause this listener for a moment; the kernel keeps the queue meanwhile. */
static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
    smtpd_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        listener *l = &srv->listeners[i];
        if (l->lev == lev) {
            evconnlistener_disable(lev);
            struct timeval tv = {0, LISTENER_EMFILE_PAUSE_MS * 1000};
            event_add(l->resume, &tv);
        }
    }
}

int
listener_attach_all(smtpd_server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        listener *l = &srv->listeners[i];
        l->lev = evconnlistener_new(srv->base, listener_accept_cb, srv,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
        l->resume = evtimer_new(srv->base, listener_resume_cb, l);
        if (!l->lev || !l->resume) {
            server_set_error(srv, "cannot watch listening socket");
            return SMTPD_ENOMEM;
        }
        evconnlistener_set_error_cb(l->lev, listener_error_cb);
    }
    return SMTPD_OK;
}

void
listener_close_all(smtpd_server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        listener *l = &srv->listeners[i];
        if (l->resume)
            event_free(l->resume);
        if (l->lev)
            evconnlistener_free(l->lev); /* closes the fd */
        else if (l->fd >= 0)
            close(l->fd);
        l->lev = NULL;
        l->resume = NULL;
        l->fd = -1;
    }
}
