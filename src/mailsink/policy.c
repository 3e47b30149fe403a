/*
 * policy.c - the built-in rules: CIDR lists for the client address, glob lists for the
 * envelope. Everything is compiled once in policy_new and only read afterwards, so the
 * checks need no lock.
 */
#include "mailsink/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct policy_net {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
    unsigned prefix;  /* bits that must match */
} policy_net;

typedef struct policy_nets {
    policy_net *items;
    size_t count;
} policy_nets;

typedef struct policy_globs {
    char **items;
    size_t count;
} policy_globs;

struct policy {
    policy_nets allow_host, deny_host;
    policy_globs accept_sender, reject_sender, accept_rcpt, reject_rcpt;
};

static const uint8_t policy_v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An address is compared in one form only: "::ffff:1.2.3.4" is the IPv4 host 1.2.3.4
   (that is how a dual-stack listener reports IPv4 clients), so rules are written once. */
static bool
policy_addr_parse(const char *s, policy_net *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, s, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, s, out->addr) != 1)
        return false;
    out->family = AF_INET6;
    out->prefix = 128;
    if (memcmp(out->addr, policy_v4mapped_prefix, sizeof policy_v4mapped_prefix) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix = 32;
    }
    return true;
}

/* Only plain decimal digits: "/08" is fine, "/+8", "/ 8", "/-1" and "/" are not. */
static bool
policy_prefix_parse(const char *s, unsigned max, unsigned *out)
{
    if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static void
policy_net_mask(policy_net *n)
{
    size_t nbytes = n->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned bit = (unsigned)i * 8;
        if (bit >= n->prefix)
            n->addr[i] = 0;
        else if (n->prefix - bit < 8)
            n->addr[i] &= (uint8_t)(0xff00u >> (n->prefix - bit));
    }
}

static bool
policy_cidr_parse(const char *s, policy_net *out)
{
    /* INET6_ADDRSTRLEN covers the longest textual address, including the dotted form. */
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    /* Parsed without the mapped-to-IPv4 folding first, so "::ffff:0:0/96" keeps its
       meaning (all IPv4 hosts) once folded below. */
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    else
        return false;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash && !policy_prefix_parse(slash + 1, max, &out->prefix))
        return false;

    if (out->family == AF_INET6 && out->prefix >= 96 &&
        memcmp(out->addr, policy_v4mapped_prefix, sizeof policy_v4mapped_prefix) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    /* Host bits are ignored rather than refused: "10.1.2.3/8" means 10.0.0.0/8. */
    policy_net_mask(out);
    return true;
}

static bool
policy_net_contains(const policy_net *net, const policy_net *a)
{
    if (net->family != a->family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, a->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a->addr[full] & mask) == net->addr[full];
}

static int
policy_nets_compile(policy_nets *out, const config_strings *in, const char *flag, char *err,
                    size_t errsize)
{
    if (in->count == 0)
        return 0;
    out->items = calloc(in->count, sizeof *out->items);
    if (!out->items) {
        snprintf(err, errsize, "%s: out of memory", flag);
        return -1;
    }
    for (size_t i = 0; i < in->count; i++) {
        if (!in->items[i] || !policy_cidr_parse(in->items[i], &out->items[i])) {
            snprintf(err, errsize, "%s: bad CIDR '%s'", flag, in->items[i] ? in->items[i] : "");
            return -1;
        }
        out->count++;
    }
    return 0;
}

static void
policy_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* The patterns are copied: the policy may outlive the config it was built from. */
static int
policy_globs_compile(policy_globs *out, const config_strings *in, const char *flag, char *err,
                     size_t errsize)
{
    if (in->count == 0)
        return 0;
    out->items = calloc(in->count, sizeof *out->items);
    if (!out->items)
        goto nomem;
    for (size_t i = 0; i < in->count; i++) {
        const char *pat = in->items[i] ? in->items[i] : "";
        size_t len = strlen(pat);
        out->items[i] = malloc(len + 1);
        if (!out->items[i])
            goto nomem;
        memcpy(out->items[i], pat, len + 1);
        policy_ascii_lower(out->items[i]);
        out->count++;
    }
    return 0;
nomem:
    snprintf(err, errsize, "%s: out of memory", flag);
    return -1;
}

static void
policy_globs_free(policy_globs *g)
{
    for (size_t i = 0; i < g->count; i++)
        free(g->items[i]);
    free(g->items);
}

policy *
policy_new(const config *c, char *err, size_t errsize)
{
    policy *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (policy_nets_compile(&p->allow_host, &c->allow_host, "--allow-host", err, errsize) ||
        policy_nets_compile(&p->deny_host, &c->deny_host, "--deny-host", err, errsize) ||
        policy_globs_compile(&p->accept_sender, &c->accept_sender, "--accept-sender", err,
                             errsize) ||
        policy_globs_compile(&p->reject_sender, &c->reject_sender, "--reject-sender", err,
                             errsize) ||
        policy_globs_compile(&p->accept_rcpt, &c->accept_rcpt, "--accept-rcpt", err, errsize) ||
        policy_globs_compile(&p->reject_rcpt, &c->reject_rcpt, "--reject-rcpt", err, errsize)) {
        policy_free(p);
        return NULL;
    }
    return p;
}

void
policy_free(policy *p)
{
    if (!p)
        return;
    free(p->allow_host.items);
    free(p->deny_host.items);
    policy_globs_free(&p->accept_sender);
    policy_globs_free(&p->reject_sender);
    policy_globs_free(&p->accept_rcpt);
    policy_globs_free(&p->reject_rcpt);
    free(p);
}

static bool
policy_nets_match(const policy_nets *nets, const policy_net *a)
{
    for (size_t i = 0; i < nets->count; i++)
        if (policy_net_contains(&nets->items[i], a))
            return true;
    return false;
}

bool
policy_host_allowed(const policy *p, const char *addr)
{
    policy_net a;
    char host[INET6_ADDRSTRLEN + 1];
    /* A scoped address ("fe80::1%eth0") is judged by its address; the zone is local. */
    size_t hlen = addr ? strcspn(addr, "%") : 0;
    bool parsed = false;
    if (addr && hlen < sizeof host) {
        memcpy(host, addr, hlen);
        host[hlen] = '\0';
        parsed = policy_addr_parse(host, &a);
    }
    /* An address we cannot read matches no rule: it passes only when no allow list
       exists (a UNIX socket peer, say, with only --deny-host rules). */
    if (!parsed)
        return p->allow_host.count == 0;
    if (policy_nets_match(&p->deny_host, &a))
        return false;
    return p->allow_host.count == 0 || policy_nets_match(&p->allow_host, &a);
}

/* Case-insensitive because domains are and people type local parts in whatever case.
   FNM_CASEFOLD is not in POSIX 2008, so both sides are folded to ASCII lower case
   instead (the patterns once, in policy_new): locale-independent, as domains are. No
   FNM_PATHNAME, so '*' also crosses '/' and '.'. */
static bool
policy_globs_match(const policy_globs *g, const char *folded)
{
    for (size_t i = 0; i < g->count; i++)
        if (fnmatch(g->items[i], folded, 0) == 0)
            return true;
    return false;
}

/* The null sender is tried as "" and as "<>", so "--reject-sender '<>'" works too. */
static bool
policy_value_match(const policy_globs *g, const char *folded)
{
    if (policy_globs_match(g, folded))
        return true;
    return folded[0] == '\0' && policy_globs_match(g, "<>");
}

static bool
policy_value_allowed(const policy_globs *accept, const policy_globs *reject, const char *value)
{
    if (accept->count == 0 && reject->count == 0)
        return true;
    if (!value)
        value = "";
    /* Paths are under 512 octets (RFC 5321 4.5.3.1.3 caps them at 256); the heap is for
       whatever else a caller may pass. Out of memory refuses: a rule is never skipped. */
    char small[512], *folded = small;
    size_t len = strlen(value);
    if (len >= sizeof small && !(folded = malloc(len + 1)))
        return false;
    memcpy(folded, value, len + 1);
    policy_ascii_lower(folded);
    bool ok = !policy_value_match(reject, folded) &&
              (accept->count == 0 || policy_value_match(accept, folded));
    if (folded != small)
        free(folded);
    return ok;
}

bool
policy_sender_allowed(const policy *p, const char *sender)
{
    return policy_value_allowed(&p->accept_sender, &p->reject_sender, sender);
}

bool
policy_rcpt_allowed(const policy *p, const char *rcpt)
{
    return policy_value_allowed(&p->accept_rcpt, &p->reject_rcpt, rcpt);
}
