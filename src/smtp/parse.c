/* parse.c - paths, domains, ESMTP parameters and xtext; see parse.h. */
#include "smtp/parse.h"

#include "core/str.h"

#include <string.h>

static bool
parse_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
parse_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 5322 atext, plus any UTF-8 octet (RFC 6531 3.3 extends atext). */
static bool
parse_is_atext(unsigned char c)
{
    return parse_is_alpha(c) || parse_is_digit(c) || c >= 0x80 ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* One label: Let-dig [Ldh-str], i.e. no leading or trailing hyphen (RFC 5321 4.1.2). */
static bool
parse_is_label(const char *s, size_t len)
{
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(parse_is_alpha(c) || parse_is_digit(c) || c == '-' || c >= 0x80))
            return false;
    }
    return s[0] != '-' && s[len - 1] != '-';
}

static bool
parse_is_ipv4(const char *s, size_t len)
{
    int parts = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && parse_is_digit((unsigned char)s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255)
            return false;
        parts++;
        if (i == len)
            break;
        if (s[i] != '.' || parts == 4)
            return false;
        i++;
        if (i == len)
            return false;
    }
    return parts == 4;
}

/* IPv6 literal content after "IPv6:" (RFC 5321 4.1.3): hex groups, one "::", and an
   optional trailing IPv4 part. */
static bool
parse_is_ipv6(const char *s, size_t len)
{
    int groups = 0;
    bool compressed = false;
    size_t i = 0;
    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        compressed = true;
        i = 2;
    } else if (len >= 1 && s[0] == ':') {
        return false;
    }
    while (i < len) {
        size_t start = i;
        while (i < len && i - start < 4 && strchr("0123456789abcdefABCDEF", s[i]) && s[i])
            i++;
        if (i < len && s[i] == '.') {
            /* embedded IPv4 takes the last two groups */
            if (!parse_is_ipv4(s + start, len - start))
                return false;
            groups += 2;
            i = len;
            break;
        }
        if (i == start)
            return false;
        groups++;
        if (i == len)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < len && s[i] == ':') {
            if (compressed)
                return false;
            compressed = true;
            i++;
        } else if (i == len) {
            return false;
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

static bool
parse_is_literal(const char *s, size_t len)
{
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return false;
    s++;
    len -= 2;
    if (len >= 5 && str_ieqn(s, "IPv6:", 5))
        return parse_is_ipv6(s + 5, len - 5);
    if (parse_is_ipv4(s, len))
        return true;
    /* General-address-literal = Standardized-tag ":" 1*dcontent */
    const char *colon = memchr(s, ':', len);
    if (!colon || colon == s || (size_t)(colon - s) + 1 == len)
        return false;
    for (const char *p = s; p < colon; p++)
        if (!(parse_is_alpha((unsigned char)*p) || parse_is_digit((unsigned char)*p) || *p == '-'))
            return false;
    /* dcontent is %d33-90 / %d94-126; '<', '>' and '"' are refused as well, so that a
       path reads the same with and without its brackets (no tag registered with IANA
       needs them) */
    for (const char *p = colon + 1; p < s + len; p++)
        if (*p < 33 || *p > 126 || strchr("[]\\<>\"", *p))
            return false;
    return true;
}

bool
parse_is_domain_or_literal(const char *s, size_t len)
{
    if (len == 0 || len > PARSE_MAX_DOMAIN)
        return false;
    if (s[0] == '[')
        return parse_is_literal(s, len);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!parse_is_label(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2). */
static bool
parse_is_local_part(const char *s, size_t len)
{
    if (len == 0 || len > PARSE_MAX_LOCAL)
        return false;
    if (s[0] == '"') {
        if (len < 2 || s[len - 1] != '"')
            return false;
        for (size_t i = 1; i < len - 1; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                i++;
                if (i >= len - 1 || s[i] < 32 || s[i] > 126)
                    return false;
            } else if (c == '"' || (c < 32) || c == 127) {
                return false;
            }
        }
        return true;
    }
    bool prev_dot = true; /* no leading dot */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (prev_dot)
                return false;
            prev_dot = true;
        } else if (parse_is_atext((unsigned char)s[i])) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    return !prev_dot;
}

/* Find the '@' that separates local part and domain: the last one outside quotes. */
static const char *
parse_find_at(const char *s, size_t len)
{
    const char *at = NULL;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (quoted && s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == '@')
            at = s + i;
    }
    return at;
}

/* Skip an "@a,@b:" source route (RFC 5321 4.1.2: MUST accept, SHOULD ignore). */
static bool
parse_skip_route(const char **s, size_t *len, bool *had_route)
{
    if (*len == 0 || (*s)[0] != '@')
        return true;
    const char *colon = memchr(*s, ':', *len);
    if (!colon)
        return false;
    const char *p = *s;
    while (p < colon) {
        if (*p != '@')
            return false;
        p++;
        const char *end = p;
        while (end < colon && *end != ',')
            end++;
        if (!parse_is_domain_or_literal(p, (size_t)(end - p)))
            return false;
        if (end + 1 == colon)
            return false; /* "@a,:" has an empty hop */
        p = end < colon ? end + 1 : end;
    }
    *had_route = true;
    *len -= (size_t)(colon + 1 - *s);
    *s = colon + 1;
    return true;
}

bool
parse_is_esmtp_keyword(const char *s)
{
    if (!parse_is_alpha((unsigned char)s[0]) && !parse_is_digit((unsigned char)s[0]))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!parse_is_alpha((unsigned char)*p) && !parse_is_digit((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

bool
parse_is_esmtp_value(const char *s)
{
    if (*s == '\0')
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (*p >= 0x80)
            continue;
        if (*p < 33 || *p > 126 || *p == '=')
            return false;
    }
    return str_is_utf8(s, n);
}

/* Split "K=V K2 K3=V3" (already copied into out->line) into out->params. */
static parse_status
parse_params(char *p, parse_path *out)
{
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (out->nparams == PARSE_MAX_PARAMS)
            return PARSE_EPARAM;
        char *key = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
        char *eq = strchr(key, '=');
        if (eq)
            *eq = '\0';
        if (!parse_is_esmtp_keyword(key) || (eq && !parse_is_esmtp_value(eq + 1)))
            return PARSE_EPARAM;
        for (size_t i = 0; i < out->nparams; i++)
            if (str_ieq(out->params[i].key, key))
                return PARSE_EPARAM;
        out->params[out->nparams].key = key;
        out->params[out->nparams].value = eq ? eq + 1 : NULL;
        out->nparams++;
    }
    return PARSE_OK;
}

/* Check the mailbox between the brackets and copy it to out->addr. */
static parse_status
parse_mailbox(const char *s, size_t len, bool allow_null, parse_path *out)
{
    if (len > PARSE_MAX_PATH)
        return PARSE_EADDR;
    if (!parse_skip_route(&s, &len, &out->had_route))
        return PARSE_EADDR;
    if (len == 0) {
        if (!allow_null || out->had_route)
            return PARSE_EADDR;
        out->is_null = true;
        out->addr[0] = '\0';
        return PARSE_OK;
    }
    const char *at = parse_find_at(s, len);
    if (at) {
        if (!parse_is_local_part(s, (size_t)(at - s)) ||
            !parse_is_domain_or_literal(at + 1, len - (size_t)(at - s) - 1))
            return PARSE_EADDR;
    } else if (allow_null || len != 10 || !str_ieqn(s, "postmaster", 10)) {
        /* RFC 5321 4.1.1.3, 4.5.1: only the forward-path <Postmaster> may come without
           a domain; a reverse-path (MAIL, the one that allows <>) always has one */
        return PARSE_EADDR;
    }
    if (!str_is_utf8(s, len))
        return PARSE_EADDR;
    out->is_8bit = str_has_8bit(s, len);
    memcpy(out->addr, s, len);
    out->addr[len] = '\0';
    return PARSE_OK;
}

parse_status
parse_path_arg(const char *arg, const char *prefix, bool allow_null, parse_path *out)
{
    memset(out, 0, offsetof(parse_path, line));
    out->line[0] = '\0';
    size_t plen = strlen(prefix) - 1; /* without the colon */
    if (!str_ieqn(arg, prefix, plen))
        return PARSE_ESYNTAX;
    const char *p = arg + plen;
    while (*p == ' ')
        p++, out->had_space = true;
    if (*p != ':')
        return PARSE_ESYNTAX;
    p++;
    while (*p == ' ')
        p++, out->had_space = true;
    if (*p == '\0')
        return PARSE_ESYNTAX;

    const char *start, *end, *rest;
    if (*p == '<') {
        start = p + 1;
        /* the closing bracket: the first '>' outside a quoted local part */
        bool quoted = false;
        const char *q = start;
        for (; *q; q++) {
            if (quoted && *q == '\\' && q[1]) {
                q++;
                continue;
            }
            if (*q == '"')
                quoted = !quoted;
            else if (!quoted && *q == '>')
                break;
        }
        if (*q != '>')
            return PARSE_EADDR;
        end = q;
        rest = q + 1;
        if (*rest && *rest != ' ')
            return PARSE_EADDR;
    } else {
        out->no_brackets = true;
        start = p;
        end = p + strcspn(p, " ");
        rest = end;
    }
    parse_status st = parse_mailbox(start, (size_t)(end - start), allow_null, out);
    if (st != PARSE_OK)
        return st;
    size_t rlen = strlen(rest);
    if (rlen >= sizeof(out->line))
        return PARSE_EPARAM;
    memcpy(out->line, rest, rlen + 1);
    return parse_params(out->line, out);
}

static int
parse_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* RFC 3461 4: hexchar is upper case only */
}

long
parse_xtext_decode(const char *in, char *out, size_t outsize)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            int hi = parse_hexval(p[1]);
            int lo = hi < 0 ? -1 : parse_hexval(p[2]);
            if (lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
            if (c < 32 || c == 127)
                return -1; /* no NUL or controls may hide in xtext (CVE-2020-28026) */
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        if (n + 1 >= outsize)
            return -1;
        out[n++] = (char)c;
    }
    if (outsize == 0)
        return -1;
    out[n] = '\0';
    return (long)n;
}

bool
parse_is_postmaster(const char *addr, const char *host)
{
    if (!str_has_iprefix(addr, "postmaster"))
        return false;
    const char *rest = addr + 10;
    return *rest == '\0' || (*rest == '@' && host && str_ieq(rest + 1, host));
}
