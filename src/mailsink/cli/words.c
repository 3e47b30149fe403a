/*
 * words.c - the two small languages inside mailsink's settings: exec commands split into
 * argv like a shell would split words (but with no expansion at all, and no shell), and
 * listen addresses ADDR:PORT / [V6]:PORT. Pure functions; any thread.
 */
#include "mailsink/cli/config.h"
#include "mailsink/cli/words.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- command strings ---------------------------------------------------------------- */

typedef struct words {
    char **v;
    size_t n;
} words;

static int
words_push(words *w, char *s)
{
    char **v = realloc(w->v, (w->n + 2) * sizeof *v);

    if (!v)
        return -1;
    w->v = v;
    w->v[w->n++] = s;
    w->v[w->n] = NULL;
    return 0;
}

/* One word starting at *pp into out (room for all of the rest). POSIX shell quoting:
   '...' is literal; in "..." a backslash escapes only " \ $ ` and newline; outside
   quotes it escapes anything; backslash-newline joins lines. */
static const char *
split_word(const char **pp, char *out)
{
    const char *p = *pp;
    size_t n = 0;

    while (*p && !strchr(" \t\n\r\f\v", *p)) {
        if (*p == '\'') {
            const char *close = strchr(p + 1, '\'');
            if (!close)
                return "unbalanced single quote";
            memcpy(out + n, p + 1, (size_t)(close - p - 1));
            n += (size_t)(close - p - 1);
            p = close + 1;
        } else if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1])) {
                    if (p[1] != '\n')
                        out[n++] = p[1];
                    p += 2;
                } else {
                    out[n++] = *p++;
                }
            }
            if (!*p)
                return "unbalanced double quote";
            p++;
        } else if (*p == '\\') {
            if (!p[1])
                return "backslash at the end";
            if (p[1] != '\n')
                out[n++] = p[1];
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return NULL;
}

char **
config_split_argv(const char *cmd, char *err, size_t errsize)
{
    words w = {0};
    const char *p = cmd, *why = NULL;
    size_t len = strlen(cmd);

    if (errsize)
        err[0] = '\0';
    for (;;) {
        char *word;
        /* blanks, and backslash-newlines, which the shell drops entirely */
        while (*p && (strchr(" \t\n\r\f\v", *p) || (p[0] == '\\' && p[1] == '\n')))
            p += *p == '\\' ? 2 : 1;
        if (!*p)
            break;
        if (!(word = malloc(len + 1))) {
            why = "out of memory";
            break;
        }
        why = split_word(&p, word);
        if (!why && words_push(&w, word) < 0)
            why = "out of memory";
        if (why) {
            free(word);
            break;
        }
    }
    if (!why && w.n == 0)
        why = "empty command";
    if (why) {
        if (errsize)
            snprintf(err, errsize, "%s", why);
        config_free_argv(w.v);
        return NULL;
    }
    return w.v;
}

void
config_free_argv(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* ---- listen addresses --------------------------------------------------------------- */

/* A name to resolve ("localhost"): letters, digits, dots and hyphens. */
static bool
host_is_name(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static const char *
listen_host(const char *s, size_t n, bool bracketed)
{
    char buf[256];
    unsigned char bin[16];

    if (n == 0)
        return "missing address before the port";
    if (n >= sizeof buf)
        return "address too long";
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (bracketed)
        return inet_pton(AF_INET6, buf, bin) == 1 ? NULL : "bad IPv6 address in brackets";
    if (strspn(buf, "0123456789.") == n)
        return inet_pton(AF_INET, buf, bin) == 1 ? NULL : "bad IPv4 address";
    return host_is_name(buf, n) ? NULL : "bad host name";
}

/* 0..65535 in decimal, nothing else. */
static int
words_port(const char *s, unsigned *out)
{
    unsigned v = 0;
    if (!*s || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > 65535)
        return -1;
    *out = v;
    return 0;
}

const char *
config_listen_reason(const char *s, char **addr, char **port)
{
    const char *host = s, *colon, *why;
    size_t hlen;
    bool bracketed = s[0] == '[';
    unsigned n;

    *addr = *port = NULL;
    if (bracketed) {
        const char *close = strchr(s, ']');
        if (!close)
            return "missing ']' after the IPv6 address";
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close[1] != ':')
            return "missing port (use [ADDR]:PORT)";
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return "missing port (use ADDR:PORT)";
        if (memchr(s, ':', (size_t)(colon - s)))
            return "IPv6 addresses go in brackets, as in [::1]:1025";
        hlen = (size_t)(colon - s);
    }
    if ((why = listen_host(host, hlen, bracketed)))
        return why;
    if (colon[1] == '\0')
        return "missing port";
    if (words_port(colon + 1, &n) != 0)
        return "bad port (0 to 65535)";
    *addr = malloc(hlen + 1);
    *port = malloc(6);
    if (*port)
        snprintf(*port, 6, "%u", n);
    if (!*addr || !*port) {
        free(*addr);
        free(*port);
        *addr = *port = NULL;
        return "out of memory";
    }
    memcpy(*addr, host, hlen);
    (*addr)[hlen] = '\0';
    return NULL;
}

int
config_parse_listen(const char *s, char **addr, char **port)
{
    return config_listen_reason(s, addr, port) ? -1 : 0;
}
