/*
 * sasl.c - AUTH (RFC 4954) with the mechanisms PLAIN (RFC 4616), LOGIN and CRAM-MD5
 * (RFC 2195), inside the pure engine: the session feeds continuation lines here while an
 * exchange runs; the on_auth hook judges the credentials (now or later, PENDING).
 * Passwords never reach a transcript and are wiped before they are freed.
 */
#include "core/base64.h"
#include "core/str.h"
#include "smtp/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sasl_all_mechs[] = {"PLAIN", "LOGIN", "CRAM-MD5"};

static void
sasl_free_secret(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void
sasl_reset(smtpd_session *s)
{
    sasl_free_secret(&s->sasl.authzid);
    sasl_free_secret(&s->sasl.user);
    sasl_free_secret(&s->sasl.password);
    sasl_free_secret(&s->sasl.cram_digest);
    OPENSSL_cleanse(s->sasl.challenge, sizeof s->sasl.challenge);
    memset(&s->sasl, 0, sizeof s->sasl);
}

/* Is mech among the configured mechanisms? */
static bool
sasl_mech_enabled(const smtpd_session *s, const char *mech)
{
    const char *list = s->env->opts->auth_mechanisms;
    if (!list)
        return true;
    size_t n = strlen(mech);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == n && str_ieqn(p, mech, n))
            return true;
        p += len;
    }
    return false;
}

bool
sasl_is_offered(const smtpd_session *s)
{
    return s->env->hooks->on_auth && (s->tls || s->env->opts->allow_insecure_auth);
}

/* The mechanisms for the EHLO line, space-separated. */
void
sasl_mech_list(const smtpd_session *s, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof sasl_all_mechs / sizeof sasl_all_mechs[0]; i++) {
        if (!sasl_mech_enabled(s, sasl_all_mechs[i]))
            continue;
        int n = snprintf(out + o, size - o, "%s%s", o ? " " : "", sasl_all_mechs[i]);
        if (n < 0 || (size_t)n >= size - o)
            break;
        o += (size_t)n;
    }
}

static void
sasl_fail(smtpd_session *s, int code, const char *enh, const char *text)
{
    sasl_reset(s);
    session_error(s, code, enh, "%s", text);
}

/* Decode one base64 response; NULL (after replying 501) when it is not base64. */
static char *
sasl_decode(smtpd_session *s, const char *b64, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len / 4 * 3 + 1);
    long n = out ? base64_decode(b64, len, out) : -1;
    if (n < 0) {
        free(out);
        sasl_fail(s, 501, "5.5.2", "Error: invalid base64 data");
        return NULL;
    }
    *outlen = (size_t)n;
    return (char *)out;
}

/* All credentials are in: ask the hook. */
static void
sasl_ask(smtpd_session *s)
{
    if (s->sasl.malformed) {
        /* a credential cut at an embedded NUL must never pass for the real one */
        sasl_fail(s, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    smtpd_auth a = {s->sasl.mech, s->sasl.authzid ? s->sasl.authzid : "", s->sasl.user,
                    s->sasl.password};
    session_hook_begin(s, WAIT_AUTH);
    smtpd_verdict v = s->env->hooks->on_auth(s, &a, s->env->user);
    if (!session_hook_end(s, v))
        sasl_finish(s, v);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd */
static void
sasl_plain(smtpd_session *s, const char *b64, size_t len)
{
    size_t n;
    char *d = sasl_decode(s, b64, len, &n);
    if (!d)
        return;
    const char *nul1 = memchr(d, '\0', n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - d)) : NULL;
    if (!nul2 || nul2 == nul1 + 1) { /* no second NUL, or an empty authcid */
        OPENSSL_cleanse(d, n);
        free(d);
        sasl_fail(s, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    s->sasl.authzid = str_dup(d);
    s->sasl.user = str_dup(nul1 + 1);
    size_t pwlen = n - (size_t)(nul2 + 1 - d);
    s->sasl.password = str_ndup(nul2 + 1, pwlen);
    s->sasl.malformed = pwlen == 0 || memchr(nul2 + 1, '\0', pwlen) != NULL;
    OPENSSL_cleanse(d, n);
    free(d);
    if (!s->sasl.authzid || !s->sasl.user || !s->sasl.password) {
        sasl_fail(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    sasl_ask(s);
}

/* RFC 2195: the client answers "user SP hex-digest". */
static void
sasl_cram(smtpd_session *s, const char *b64, size_t len)
{
    size_t n;
    char *d = sasl_decode(s, b64, len, &n);
    if (!d)
        return;
    char *sp = memchr(d, ' ', n);
    while (sp && memchr(sp + 1, ' ', n - (size_t)(sp + 1 - d)))
        sp = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - d));
    if (!sp || sp == d || strlen(sp + 1) != 32 || memchr(d, '\0', n)) {
        free(d);
        sasl_fail(s, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    *sp = '\0';
    s->sasl.user = str_dup(d);
    s->sasl.cram_digest = str_dup(sp + 1);
    free(d);
    if (!s->sasl.user || !s->sasl.cram_digest) {
        sasl_fail(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    sasl_ask(s);
}

static void
sasl_cram_challenge(smtpd_session *s)
{
    unsigned char rnd[8];
    unsigned long long r = 0;
    if (RAND_bytes(rnd, sizeof rnd) == 1)
        memcpy(&r, rnd, sizeof r);
    /* RFC 2195 2: a unique, msg-id-like string, never used twice */
    snprintf(s->sasl.challenge, sizeof s->sasl.challenge, "<%llu.%lld@%s>", r, (long long)s->now,
             s->env->opts->hostname);
    char b64[sizeof s->sasl.challenge * 2];
    base64_encode(s->sasl.challenge, strlen(s->sasl.challenge), b64);
    s->sasl.stage = SASL_CRAM;
    session_reply(s, 334, NULL, "%s", b64);
}

/* Checks before any exchange starts; false after replying. */
static bool
sasl_may_start(smtpd_session *s, const char *args)
{
    if (!s->env->hooks->on_auth) {
        session_error(s, 502, "5.5.1", "Error: command not implemented");
        return false;
    }
    if (!s->helo) {
        session_error(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return false;
    }
    if (!s->tls && !s->env->opts->allow_insecure_auth) {
        session_error(s, 538, "5.7.11",
                      "Encryption required for requested authentication mechanism");
        return false;
    }
    if (s->auth_user) {
        session_error(s, 503, "5.5.1", "Error: already authenticated");
        return false;
    }
    if (s->tx.active) {
        session_error(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return false;
    }
    if (!*args) {
        session_error(s, 501, "5.5.4", "Syntax: AUTH mechanism");
        return false;
    }
    return true;
}

void
sasl_start(smtpd_session *s, const char *args)
{
    if (!sasl_may_start(s, args))
        return;
    size_t mlen = strcspn(args, " ");
    const char *initial = args[mlen] ? args + mlen + 1 : NULL;
    sasl_reset(s);
    for (size_t i = 0; i < sizeof sasl_all_mechs / sizeof sasl_all_mechs[0]; i++) {
        const char *m = sasl_all_mechs[i];
        if (mlen == strlen(m) && str_ieqn(args, m, mlen) && sasl_mech_enabled(s, m)) {
            snprintf(s->sasl.mech, sizeof s->sasl.mech, "%s", m);
            break;
        }
    }
    if (!s->sasl.mech[0]) {
        session_error(s, 504, "5.5.4", "Unrecognized authentication type");
        return;
    }
    if (initial && strcmp(s->sasl.mech, "CRAM-MD5") == 0) {
        /* RFC 2195: the server speaks first; an initial response is a protocol error */
        sasl_fail(s, 501, "5.5.4", "Syntax: AUTH CRAM-MD5 takes no initial response");
        return;
    }
    if (strcmp(s->sasl.mech, "CRAM-MD5") == 0) {
        sasl_cram_challenge(s);
    } else if (initial) {
        /* RFC 4954 4: "=" is an empty initial response */
        sasl_input(s, strcmp(initial, "=") == 0 ? "" : initial,
                   strcmp(initial, "=") == 0 ? 0 : strlen(initial));
        return;
    } else if (strcmp(s->sasl.mech, "PLAIN") == 0) {
        s->sasl.stage = SASL_PLAIN;
        session_reply(s, 334, NULL, "%s", "");
    } else {
        s->sasl.stage = SASL_LOGIN_USER;
        session_reply(s, 334, NULL, "VXNlcm5hbWU6"); /* "Username:" */
    }
}

/* A response line, or the initial response (then stage is still NONE). */
void
sasl_input(smtpd_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        /* RFC 4954 4: the client cancels; the server MUST reject with 501 */
        sasl_fail(s, 501, "5.7.0", "Authentication cancelled");
        return;
    }
    if (strcmp(s->sasl.mech, "PLAIN") == 0) {
        sasl_plain(s, line, len);
    } else if (strcmp(s->sasl.mech, "CRAM-MD5") == 0) {
        sasl_cram(s, line, len);
    } else if (s->sasl.stage != SASL_LOGIN_PASS) {
        size_t n;
        char *user = sasl_decode(s, line, len, &n);
        if (!user)
            return;
        s->sasl.user = user;
        s->sasl.malformed = memchr(user, '\0', n) != NULL;
        s->sasl.stage = SASL_LOGIN_PASS;
        session_reply(s, 334, NULL, "UGFzc3dvcmQ6"); /* "Password:" */
    } else {
        size_t n;
        char *pw = sasl_decode(s, line, len, &n);
        if (!pw)
            return;
        s->sasl.password = pw;
        if (memchr(pw, '\0', n))
            s->sasl.malformed = true;
        sasl_ask(s);
    }
}

void
sasl_finish(smtpd_session *s, smtpd_verdict v)
{
    int code = session_verdict_reply(s, v, 235, "2.7.0", "Authentication successful", 535, "5.7.8",
                                     "Authentication credentials invalid");
    if (code == 235) {
        s->auth_user = s->sasl.user;
        s->sasl.user = NULL;
    } else if (code / 100 == 5 && ++s->errors >= s->env->opts->max_errors &&
               !session_is_closing(s)) {
        /* RFC 4954 does not count failures; Postfix does, against password guessing */
        session_reply(s, 421, "4.7.0", "%s Error: too many errors", s->env->opts->hostname);
    }
    sasl_reset(s);
}

static int
sasl_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* compare the same number of octets whatever the lengths, so timing tells nothing */
    int same = CRYPTO_memcmp(a, la == lb ? b : a, la) == 0;
    return same && la == lb;
}

SMTPD_API int
smtpd_auth_check_password(smtpd_session *s, const smtpd_auth *auth, const char *password)
{
    if (!s || !auth || !password || s->waiting != WAIT_AUTH)
        return 0;
    if (s->sasl.password)
        return sasl_equal(s->sasl.password, password);
    if (!s->sasl.cram_digest)
        return 0;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_md5(), password, (int)strlen(password), (const unsigned char *)s->sasl.challenge,
              strlen(s->sasl.challenge), mac, &maclen))
        return 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    char given[33];
    snprintf(given, sizeof given, "%s", s->sasl.cram_digest);
    for (char *p = given; *p; p++)
        *p = (*p >= 'A' && *p <= 'F') ? (char)(*p - 'A' + 'a') : *p;
    return sasl_equal(hex, given);
}
