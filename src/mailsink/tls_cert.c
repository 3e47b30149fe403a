/*
 * tls_cert.c - the self-signed certificate of --tls-self-signed (tls_cert.h), with
 * OpenSSL 3's EVP and X509 APIs.
 *
 * The subjectAltName is built from GENERAL_NAME objects, never from a configuration
 * string: a hostname with a ',' in it must not become a second name.
 */
#include "mailsink/tls_cert.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TLS_CERT_NAME "tls-self-signed"
#define TLS_CERT_DAYS 365
#define TLS_CERT_BACKDATE_S 3600  /* a client whose clock is a little behind */
#define TLS_CERT_MIN_LEFT_S 86400 /* renew when less than this is left */
#define TLS_CERT_CN_MAX 64        /* RFC 5280 ub-common-name */
#define TLS_CERT_SERIAL_OCTETS 16 /* 128 bits, CA/B Forum asks for at least 64 */

static void tls_cert_errf(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tls_cert_errf(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;

    if (!err || errsize == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, errsize, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
}

/* The last OpenSSL error as text (and the queue emptied), for a message. */
static const char *
tls_cert_ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, size, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

#define SSL_REASON() tls_cert_ssl_reason((char[160]){0}, 160)

static char *
tls_cert_path(const char *dir, const char *suffix)
{
    size_t n = strlen(dir) + sizeof("/" TLS_CERT_NAME) + strlen(suffix);
    char *p = malloc(n);

    if (p && snprintf(p, n, "%s/%s%s", dir, TLS_CERT_NAME, suffix) >= (int)n) {
        free(p); /* cannot happen: n counts every octet */
        return NULL;
    }
    return p;
}

/* mkdir -p with mode 0700 for what is created: the key will live here. */
static int
tls_cert_mkdirs(const char *dir)
{
    char *p = strdup(dir);
    int rc = 0;

    if (!p)
        return -1;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* The address in hostname ("192.0.2.1", "::1", "[::1]", "[IPv6:::1]") copied into buf,
   or NULL when it is a name. */
static const char *
tls_cert_host_ip(const char *hostname, char *buf, size_t size)
{
    size_t n = strlen(hostname);
    unsigned char bin[16];

    if (n >= 2 && hostname[0] == '[' && hostname[n - 1] == ']') {
        hostname++;
        n -= 2;
        if (n > 5 && strncmp(hostname, "IPv6:", 5) == 0) {
            hostname += 5;
            n -= 5;
        }
    }
    if (n >= size)
        return NULL;
    memcpy(buf, hostname, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
        return buf;
    return NULL;
}

/* A name a certificate can carry as dNSName (an IA5String) and a client can match. */
static bool
tls_cert_host_is_ok(const char *h)
{
    size_t n = strlen(h);

    if (n == 0 || n > 253)
        return false;
    for (const unsigned char *p = (const unsigned char *)h; *p; p++)
        if (*p <= ' ' || *p >= 127)
            return false;
    return true;
}

/* ---- fingerprints -------------------------------------------------------------------- */

static int
tls_cert_fp_of(X509 *cert, char *out, size_t outsize)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789ABCDEF";

    if (!X509_digest(cert, EVP_sha256(), md, &len) || len == 0 || outsize < (size_t)len * 3)
        return -1;
    for (unsigned i = 0; i < len; i++) {
        out[3 * i] = hex[md[i] >> 4];
        out[3 * i + 1] = hex[md[i] & 15];
        out[3 * i + 2] = i + 1 < len ? ':' : '\0';
    }
    return 0;
}

static X509 *
tls_cert_load(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (!f)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *
tls_cert_load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (!f)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int
tls_cert_fingerprint(const char *cert_path, char *out, size_t outsize)
{
    X509 *x = tls_cert_load(cert_path);
    int rc = x ? tls_cert_fp_of(x, out, outsize) : -1;

    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ---- reuse --------------------------------------------------------------------------- */

/* The pair on disk is one we can keep serving: the key is the certificate's, the
   certificate names the host and has more than a day left. */
static bool
tls_cert_is_reusable(const char *cert_path, const char *key_path, const char *hostname,
                     const char *ip)
{
    X509 *x = tls_cert_load(cert_path);
    EVP_PKEY *k = x ? tls_cert_load_key(key_path) : NULL;
    time_t soon = time(NULL) + TLS_CERT_MIN_LEFT_S;
    bool ok = false;

    if (!x || !k || X509_check_private_key(x, k) != 1)
        goto out;
    if (ip ? X509_check_ip_asc(x, ip, 0) != 1 : X509_check_host(x, hostname, 0, 0, NULL) != 1)
        goto out;
    ok = X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
         X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error(); /* a missing or stale pair is not an error, just a reason to renew */
    return ok;
}

/* ---- making one ---------------------------------------------------------------------- */

static int
tls_cert_san_add(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *s = NULL;

    if (!g)
        return -1;
    if (type == GEN_IPADD) {
        s = a2i_IPADDRESS(value);
    } else if ((s = ASN1_IA5STRING_new()) && !ASN1_STRING_set(s, value, -1)) {
        ASN1_STRING_free(s);
        s = NULL;
    }
    if (!s) {
        GENERAL_NAME_free(g);
        return -1;
    }
    GENERAL_NAME_set0_value(g, type, s);
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return -1;
    }
    return 0;
}

/* DNS:hostname, or IP:address; and the loopback addresses for a local name, so that
   clients connecting to 127.0.0.1 or ::1 can verify too. */
static int
tls_cert_add_san(X509 *x, const char *hostname, const char *ip)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    bool local = ip != NULL || strcmp(hostname, "localhost") == 0;
    int rc = -1;

    if (!gens)
        return -1;
    if (ip ? tls_cert_san_add(gens, GEN_IPADD, ip) : tls_cert_san_add(gens, GEN_DNS, hostname))
        goto out;
    if (local && (!ip || strcmp(ip, "127.0.0.1") != 0) &&
        tls_cert_san_add(gens, GEN_IPADD, "127.0.0.1") < 0)
        goto out;
    if (local && (!ip || strcmp(ip, "::1") != 0) && tls_cert_san_add(gens, GEN_IPADD, "::1") < 0)
        goto out;
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The fixed extensions: fixed text, so the configuration syntax is safe here. */
static int
tls_cert_add_exts(X509 *x)
{
    static const struct {
        int nid;
        const char *value;
    } exts[] = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
        {NID_subject_key_identifier, "hash"},
    };
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        int ok = e && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        if (!ok)
            return -1;
    }
    return 0;
}

/* A positive, non-zero serial of TLS_CERT_SERIAL_OCTETS random octets. */
static int
tls_cert_set_serial(X509 *x)
{
    unsigned char r[TLS_CERT_SERIAL_OCTETS];
    BIGNUM *bn;
    ASN1_INTEGER *serial = NULL;
    int rc = -1;

    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    r[0] &= 0x7F;         /* DER INTEGER: positive */
    r[sizeof r - 1] |= 1; /* and never zero */
    if ((bn = BN_bin2bn(r, sizeof r, NULL)) && (serial = BN_to_ASN1_INTEGER(bn, NULL)) &&
        X509_set_serialNumber(x, serial) == 1)
        rc = 0;
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

static int
tls_cert_set_name(X509 *x, const char *hostname)
{
    X509_NAME *name = X509_get_subject_name(x);
    /* a longer name does not fit CN; clients match the subjectAltName anyway */
    const char *cn = strlen(hostname) <= TLS_CERT_CN_MAX ? hostname : "mailsink";

    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"mailsink (self-signed)", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
        return -1;
    return X509_set_issuer_name(x, name) == 1 ? 0 : -1;
}

static X509 *
tls_cert_make(EVP_PKEY *key, const char *hostname, const char *ip)
{
    X509 *x = X509_new();

    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || tls_cert_set_serial(x) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -TLS_CERT_BACKDATE_S) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)TLS_CERT_DAYS * 86400) ||
        tls_cert_set_name(x, hostname) < 0 || X509_set_pubkey(x, key) != 1 ||
        tls_cert_add_exts(x) < 0 || tls_cert_add_san(x, hostname, ip) < 0 ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- writing ------------------------------------------------------------------------- */

typedef int (*tls_cert_writer)(FILE *f, void *obj);

static int
tls_cert_write_key_cb(FILE *f, void *obj)
{
    return PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL) == 1 ? 0 : -1;
}

static int
tls_cert_write_x509_cb(FILE *f, void *obj)
{
    return PEM_write_X509(f, obj) == 1 ? 0 : -1;
}

/* Write path whole or not at all: a temporary file beside it (mode before any content),
   synced, then renamed over it. */
static int
tls_cert_write(const char *dir, const char *path, mode_t mode, tls_cert_writer write_cb, void *obj,
               char *err, size_t errsize)
{
    size_t n = strlen(dir) + sizeof("/." TLS_CERT_NAME ".XXXXXX");
    char *tmp = malloc(n);
    FILE *f = NULL;
    int fd = -1, e = 0;

    if (!tmp) {
        tls_cert_errf(err, errsize, "--tls-self-signed: out of memory");
        return -1;
    }
    snprintf(tmp, n, "%s/.%s.XXXXXX", dir, TLS_CERT_NAME);
    if ((fd = mkstemp(tmp)) < 0) {
        e = errno;
        goto fail;
    }
    if (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w"))) {
        e = errno;
        close(fd);
        goto fail_unlink;
    }
    if (write_cb(f, obj) < 0) {
        tls_cert_errf(err, errsize, "--tls-self-signed: cannot write %s: %s", path, SSL_REASON());
        fclose(f);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        e = errno;
        fclose(f);
        goto fail_unlink;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        e = errno;
        goto fail_unlink;
    }
    free(tmp);
    return 0;
fail_unlink:
    unlink(tmp);
fail:
    tls_cert_errf(err, errsize, "--tls-self-signed: cannot write %s: %s", path,
                  strerror(e ? e : EIO));
    free(tmp);
    return -1;
}

/* The renames reach the disk only with the directory. */
static void
tls_cert_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd); /* best effort: the files themselves are synced */
        close(fd);
    }
}

/* Serialises two mailsinks on one directory; released by closing the descriptor. */
static int
tls_cert_lock(const char *dir, char *err, size_t errsize)
{
    char *path = tls_cert_path(dir, ".lock");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd;

    if (!path) {
        tls_cert_errf(err, errsize, "--tls-self-signed: out of memory");
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int e = errno;
    while (fd >= 0 && fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR)
            continue;
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        tls_cert_errf(err, errsize, "--tls-self-signed: cannot lock %s: %s", path, strerror(e));
    free(path);
    return fd;
}

static int
tls_cert_generate(const char *dir, const char *hostname, const char *ip, const char *cert_path,
                  const char *key_path, char *fp, size_t fpsize, char *err, size_t errsize)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? tls_cert_make(key, hostname, ip) : NULL;
    int rc = -1;

    if (!x) {
        tls_cert_errf(err, errsize, "--tls-self-signed: cannot make a certificate for %s: %s",
                      hostname, SSL_REASON());
        goto out;
    }
    /* the key first: a crash between the renames leaves a pair that does not match,
       which the next start notices and replaces */
    if (tls_cert_write(dir, key_path, 0600, tls_cert_write_key_cb, key, err, errsize) < 0 ||
        tls_cert_write(dir, cert_path, 0644, tls_cert_write_x509_cb, x, err, errsize) < 0)
        goto out;
    tls_cert_sync_dir(dir);
    if (tls_cert_fp_of(x, fp, fpsize) < 0) {
        tls_cert_errf(err, errsize, "--tls-self-signed: fingerprint buffer too small");
        goto out;
    }
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int
tls_cert_self_signed(const char *dir, const char *hostname, char **cert_path, char **key_path,
                     char *fp, size_t fpsize, char *err, size_t errsize)
{
    char ipbuf[INET6_ADDRSTRLEN + 8];
    const char *ip;
    char *cert = NULL, *key = NULL;
    int lock = -1, rc = -1;

    *cert_path = *key_path = NULL;
    if (!hostname || !tls_cert_host_is_ok(hostname)) {
        tls_cert_errf(err, errsize,
                      "--tls-self-signed: the hostname '%s' cannot be put in a certificate "
                      "(ASCII, no spaces; see --hostname)",
                      hostname ? hostname : "");
        return -1;
    }
    ip = tls_cert_host_ip(hostname, ipbuf, sizeof ipbuf);
    if (!(cert = tls_cert_path(dir, ".crt")) || !(key = tls_cert_path(dir, ".key"))) {
        tls_cert_errf(err, errsize, "--tls-self-signed: out of memory");
        goto out;
    }
    if (tls_cert_mkdirs(dir) != 0) {
        tls_cert_errf(err, errsize, "--tls-self-signed: cannot make directory %s: %s", dir,
                      strerror(errno));
        goto out;
    }
    if ((lock = tls_cert_lock(dir, err, errsize)) < 0)
        goto out;
    if (tls_cert_is_reusable(cert, key, hostname, ip)) {
        if (tls_cert_fingerprint(cert, fp, fpsize) < 0) {
            tls_cert_errf(err, errsize, "--tls-self-signed: cannot read %s", cert);
            goto out;
        }
    } else if (tls_cert_generate(dir, hostname, ip, cert, key, fp, fpsize, err, errsize) < 0) {
        goto out;
    }
    *cert_path = cert;
    *key_path = key;
    cert = key = NULL;
    rc = 0;
out:
    if (lock >= 0)
        close(lock);
    free(cert);
    free(key);
    return rc;
}
