/*
 * auth_file.c - --auth-file (auth_file.h): load "user:password" lines, check AUTH.
 *
 * Unsalted SHA-256 is what the issue asks for and all a test setup needs (keeping real
 * passwords out of a file in a repository); it is no defence for a leaked file, and the
 * man page says so.
 */
#include "mailsink/auth_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_SHA256_LEN 32

typedef struct auth_entry {
    char *user;
    char *password; /* plain entries; NULL for {SHA256} */
    unsigned char sha256[AUTH_SHA256_LEN];
    unsigned line;
} auth_entry;

struct auth_file {
    auth_entry *entries;
    size_t count, cap;
    auth_entry dummy; /* what an unknown user is checked against, to cost the same */
};

static void auth_file_errf(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
auth_file_errf(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;

    if (!err || errsize == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, errsize, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
}

static void
auth_entry_cleanup(auth_entry *e)
{
    if (e->password) {
        OPENSSL_cleanse(e->password, strlen(e->password));
        free(e->password);
    }
    free(e->user);
    OPENSSL_cleanse(e->sha256, sizeof e->sha256);
    memset(e, 0, sizeof *e);
}

void
auth_file_free(auth_file *af)
{
    if (!af)
        return;
    for (size_t i = 0; i < af->count; i++)
        auth_entry_cleanup(&af->entries[i]);
    auth_entry_cleanup(&af->dummy);
    free(af->entries);
    free(af);
}

size_t
auth_file_count(const auth_file *af)
{
    return af ? af->count : 0;
}

static int
auth_sha256(const char *s, unsigned char out[AUTH_SHA256_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL) != 1 || n != AUTH_SHA256_LEN)
        return -1;
    return 0;
}

static int
auth_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
auth_hex_decode(const char *hex, unsigned char out[AUTH_SHA256_LEN])
{
    if (strlen(hex) != 2 * AUTH_SHA256_LEN)
        return -1;
    for (size_t i = 0; i < AUTH_SHA256_LEN; i++) {
        int hi = auth_hex_value(hex[2 * i]), lo = auth_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* "{NAME}" at the start of pw, NAME of letters, digits and '-': its length (without
   the braces) and *rest after it; 0 when pw does not start with a scheme. */
static size_t
auth_scheme(const char *pw, const char **rest)
{
    size_t n;

    if (pw[0] != '{')
        return 0;
    n = strspn(pw + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0 || pw[1 + n] != '}')
        return 0;
    *rest = pw + n + 2;
    return n;
}

/* The password part of one line into e. */
static int
auth_entry_password(auth_entry *e, const char *pw, const char *path, unsigned lineno, char *err,
                    size_t errsize)
{
    const char *rest = pw;
    size_t n = auth_scheme(pw, &rest);

    if (n == 6 && strncasecmp(pw + 1, "SHA256", 6) == 0) {
        if (auth_hex_decode(rest, e->sha256) < 0) {
            auth_file_errf(err, errsize, "--auth-file %s: line %u: {SHA256} needs 64 hex digits",
                           path, lineno);
            return -1;
        }
        return 0;
    }
    if (n == 5 && strncasecmp(pw + 1, "PLAIN", 5) == 0)
        pw = rest;
    else if (n > 0) {
        auth_file_errf(err, errsize,
                       "--auth-file %s: line %u: unknown password scheme {%.*s} (use a plain "
                       "password, {PLAIN} or {SHA256})",
                       path, lineno, (int)(n > 32 ? 32 : n), pw + 1);
        return -1;
    }
    if (!(e->password = strdup(pw))) {
        auth_file_errf(err, errsize, "--auth-file %s: out of memory", path);
        return -1;
    }
    return 0;
}

static bool
auth_user_is_ok(const char *u)
{
    if (*u == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return false;
    return true;
}

/* One line, its end of line already cut. 0 also for a comment or a blank line. */
static int
auth_file_line(auth_file *af, char *line, const char *path, unsigned lineno, char *err,
               size_t errsize)
{
    const char *s = line + strspn(line, " \t");
    char *colon;
    auth_entry e = {.line = lineno};

    if (*s == '\0' || *s == '#')
        return 0;
    if (!(colon = strchr(line, ':'))) {
        auth_file_errf(err, errsize, "--auth-file %s: line %u: expected user:password", path,
                       lineno);
        return -1;
    }
    *colon = '\0';
    if (!auth_user_is_ok(line)) {
        auth_file_errf(err, errsize,
                       "--auth-file %s: line %u: empty user name, or one with control "
                       "characters",
                       path, lineno);
        return -1;
    }
    for (size_t i = 0; i < af->count; i++)
        if (strcmp(af->entries[i].user, line) == 0) {
            auth_file_errf(err, errsize,
                           "--auth-file %s: line %u: user '%s' again (first "
                           "on line %u)",
                           path, lineno, line, af->entries[i].line);
            return -1;
        }
    if (!(e.user = strdup(line))) {
        auth_file_errf(err, errsize, "--auth-file %s: out of memory", path);
        return -1;
    }
    if (auth_entry_password(&e, colon + 1, path, lineno, err, errsize) < 0)
        goto fail;
    if (af->count == af->cap) {
        size_t cap = af->cap ? 2 * af->cap : 16;
        auth_entry *v = realloc(af->entries, cap * sizeof *v);
        if (!v) {
            auth_file_errf(err, errsize, "--auth-file %s: out of memory", path);
            goto fail;
        }
        af->entries = v;
        af->cap = cap;
    }
    af->entries[af->count++] = e;
    return 0;
fail:
    auth_entry_cleanup(&e);
    return -1;
}

/* A random plain password nobody can know, for unknown users. */
static int
auth_file_make_dummy(auth_file *af)
{
    unsigned char r[16];
    static const char hex[] = "0123456789abcdef";

    if (RAND_bytes(r, sizeof r) != 1 || !(af->dummy.password = malloc(2 * sizeof r + 1)))
        return -1;
    for (size_t i = 0; i < sizeof r; i++) {
        af->dummy.password[2 * i] = hex[r[i] >> 4];
        af->dummy.password[2 * i + 1] = hex[r[i] & 15];
    }
    af->dummy.password[2 * sizeof r] = '\0';
    OPENSSL_cleanse(r, sizeof r);
    return 0;
}

static int
auth_file_read(auth_file *af, FILE *f, const char *path, char *err, size_t errsize)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0;

    errno = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (memchr(line, '\0', (size_t)len)) {
            auth_file_errf(err, errsize, "--auth-file %s: line %u: NUL byte", path, lineno);
            rc = -1;
        } else {
            rc = auth_file_line(af, line, path, lineno, err, errsize);
        }
        errno = 0;
    }
    if (rc == 0 && ferror(f)) {
        auth_file_errf(err, errsize, "--auth-file %s: %s", path, strerror(errno ? errno : EIO));
        rc = -1;
    }
    if (line) {
        OPENSSL_cleanse(line, cap); /* it held passwords */
        free(line);
    }
    return rc;
}

auth_file *
auth_file_load(const char *path, char *err, size_t errsize)
{
    auth_file *af = calloc(1, sizeof *af);
    FILE *f = NULL;

    if (!af || auth_file_make_dummy(af) < 0) {
        auth_file_errf(err, errsize, "--auth-file %s: out of memory", path);
        goto fail;
    }
    if (!(f = fopen(path, "r"))) {
        auth_file_errf(err, errsize, "--auth-file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (auth_file_read(af, f, path, err, errsize) < 0)
        goto fail;
    if (af->count == 0) {
        auth_file_errf(err, errsize, "--auth-file %s: no users (expected user:password lines)",
                       path);
        goto fail;
    }
    fclose(f);
    return af;
fail:
    if (f)
        fclose(f);
    auth_file_free(af);
    return NULL;
}

int
auth_file_check(const auth_file *af, smtpd_session *s, const smtpd_auth *auth)
{
    const auth_entry *found = NULL, *e;
    unsigned char md[AUTH_SHA256_LEN];
    int ok;

    if (!af || !auth || !auth->user)
        return 0;
    /* the whole list every time: how far the match is tells nothing either */
    for (size_t i = 0; i < af->count; i++)
        if (strcmp(af->entries[i].user, auth->user) == 0)
            found = &af->entries[i];
    e = found ? found : &af->dummy;
    if (e->password) {
        ok = smtpd_auth_check_password(s, auth, e->password);
    } else {
        /* {SHA256}: only a mechanism that hands over the password can be checked */
        ok = auth->password && auth_sha256(auth->password, md) == 0 &&
             CRYPTO_memcmp(md, e->sha256, sizeof md) == 0;
        OPENSSL_cleanse(md, sizeof md);
    }
    /* RFC 4616 2: acting for another identity needs a policy; mailsink has none */
    if (auth->authzid && *auth->authzid && strcmp(auth->authzid, auth->user) != 0)
        ok = 0;
    return found && ok ? 1 : 0;
}

int
auth_file_check_password(const auth_file *af, const char *user, const char *password)
{
    const auth_entry *found = NULL, *e;
    unsigned char given[AUTH_SHA256_LEN], want[AUTH_SHA256_LEN];
    int ok;

    if (!af || !user || !password)
        return 0;
    for (size_t i = 0; i < af->count; i++)
        if (strcmp(af->entries[i].user, user) == 0)
            found = &af->entries[i];
    e = found ? found : &af->dummy;
    if (e->password) {
        ok = auth_sha256(e->password, want) == 0;
    } else {
        memcpy(want, e->sha256, sizeof want);
        ok = 1;
    }
    ok = ok && auth_sha256(password, given) == 0 && CRYPTO_memcmp(given, want, sizeof given) == 0;
    OPENSSL_cleanse(given, sizeof given);
    OPENSSL_cleanse(want, sizeof want);
    return found && ok ? 1 : 0;
}
