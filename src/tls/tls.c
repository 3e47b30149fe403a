/* tls.c - server TLS contexts and connection wrapping; see tls.h. */
#include "tls/tls.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any client certificate is welcome: we only record who it claims to be. */
static int
tls_accept_any_cert_cb(int preverify, X509_STORE_CTX *store)
{
    (void)preverify;
    (void)store;
    return 1;
}

/* Our rules for a context we make: TLS 1.2 or newer, a client certificate asked for. */
static void
tls_ctx_harden(SSL_CTX *ctx)
{
    /* issue 4 / RFC 8996: TLS 1.0 and 1.1 are refused */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_accept_any_cert_cb);
    /* the client certificate is only read during the handshake; no session cache keeps
       state between connections */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

SSL_CTX *
tls_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errsize)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errsize, "cannot create a TLS context");
        return NULL;
    }
    tls_ctx_harden(ctx);
    const char *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        what = "cannot load the certificate";
    else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        what = "cannot load the private key";
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "the private key does not match the certificate";
    if (what) {
        char reason[160];
        ERR_error_string_n(ERR_peek_last_error(), reason, sizeof reason);
        ERR_clear_error();
        snprintf(err, errsize, "%s (%s, %s): %s", what, cert_file, key_file, reason);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct bufferevent *
tls_wrap(struct event_base *base, struct bufferevent *under, SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_filter_new(
        base, under, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* a peer that closes without close_notify is not an error for a mail session */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

void
tls_get_facts(struct bufferevent *bev, tls_facts *f)
{
    memset(f, 0, sizeof *f);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (!ssl)
        return;
    snprintf(f->version, sizeof f->version, "%s", SSL_get_version(ssl));
    snprintf(f->cipher, sizeof f->cipher, "%s", SSL_get_cipher_name(ssl));
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer)
        return;
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem && X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
        char *data;
        long n = BIO_get_mem_data(mem, &data);
        if (n > 0 && (f->peer = malloc((size_t)n + 1))) {
            memcpy(f->peer, data, (size_t)n);
            f->peer[n] = '\0';
        }
    }
    BIO_free(mem);
    X509_free(peer);
}

void
tls_take_error(struct bufferevent *bev, char *out, size_t size)
{
    unsigned long e, last = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, out, size);
    else
        snprintf(out, size, "connection closed during the TLS handshake");
    ERR_clear_error();
}
