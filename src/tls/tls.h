/*
 * tls.h - OpenSSL for libsmtpd's I/O layer: the server context (TLS 1.2 and 1.3 only,
 * from PEM files or the embedder's SSL_CTX), wrapping a connection's bufferevent in a
 * TLS filter (after STARTTLS, or at once for implicit TLS), and the facts of a finished
 * handshake. Runs on the server's I/O thread (context creation before start).
 */
#ifndef TLS_TLS_H
#define TLS_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

/* A server context from PEM files; NULL with a message in err. */
SSL_CTX *tls_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errsize);

/* A TLS filter over under (taking it over: freeing the filter frees it), as the server
   side of a handshake that starts now. NULL when out of memory. */
struct bufferevent *tls_wrap(struct event_base *base, struct bufferevent *under, SSL_CTX *ctx);

typedef struct tls_facts {
    char version[32]; /* "TLSv1.3" */
    char cipher[96];
    char *peer; /* the client certificate's subject (malloc'd) or NULL */
} tls_facts;

/* After the handshake. The caller frees facts->peer. */
void tls_get_facts(struct bufferevent *bev, tls_facts *facts);

/* Why the handshake failed (for the transcript), and clear the error queue so nothing
   is left for the next connection on this thread. */
void tls_take_error(struct bufferevent *bev, char *out, size_t size);

#endif
