/* test_parse.c - paths, domains, literals, ESMTP parameters, xtext, postmaster
   (src/smtp/parse.c). Mostly golden tables: input -> expected result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp/parse.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum {
    F_NULL = 1 << 0,
    F_8BIT = 1 << 1,
    F_SPACE = 1 << 2,
    F_NOBR = 1 << 3,
    F_ROUTE = 1 << 4,
};

typedef struct path_case {
    const char *prefix;
    bool allow_null;
    const char *in;
    parse_status st;
    const char *addr; /* when PARSE_OK */
    unsigned flags;   /* when PARSE_OK */
    size_t nparams;   /* when PARSE_OK */
} path_case;

#define FROM(in, st, addr, flags, np)                                                              \
    {                                                                                              \
        "FROM:", true, in, st, addr, flags, np                                                     \
    }
#define TO(in, st, addr, flags, np)                                                                \
    {                                                                                              \
        "TO:", false, in, st, addr, flags, np                                                      \
    }
#define BAD_FROM(in, st)                                                                           \
    {                                                                                              \
        "FROM:", true, in, st, NULL, 0, 0                                                          \
    }
#define BAD_TO(in, st)                                                                             \
    {                                                                                              \
        "TO:", false, in, st, NULL, 0, 0                                                           \
    }

static const char *
status_name(parse_status st)
{
    switch (st) {
    case PARSE_OK:
        return "OK";
    case PARSE_ESYNTAX:
        return "ESYNTAX";
    case PARSE_EADDR:
        return "EADDR";
    case PARSE_EPARAM:
        return "EPARAM";
    }
    return "?";
}

static unsigned
path_flags(const parse_path *p)
{
    return (p->is_null ? F_NULL : 0u) | (p->is_8bit ? F_8BIT : 0u) | (p->had_space ? F_SPACE : 0u) |
           (p->no_brackets ? F_NOBR : 0u) | (p->had_route ? F_ROUTE : 0u);
}

static void
run_path_table(const path_case *cases, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        const path_case *c = &cases[i];
        parse_path p;
        parse_status st = parse_path_arg(c->in, c->prefix, c->allow_null, &p);
        if (st != c->st) {
            print_error("case %zu [%s%s]: expected %s, got %s\n", i, c->prefix, c->in,
                        status_name(c->st), status_name(st));
            failures++;
            continue;
        }
        if (st != PARSE_OK)
            continue;
        if (strcmp(p.addr, c->addr) != 0) {
            print_error("case %zu [%s]: addr expected \"%s\", got \"%s\"\n", i, c->in, c->addr,
                        p.addr);
            failures++;
        }
        if (path_flags(&p) != c->flags) {
            print_error("case %zu [%s]: flags expected 0x%x, got 0x%x\n", i, c->in, c->flags,
                        path_flags(&p));
            failures++;
        }
        if (p.nparams != c->nparams) {
            print_error("case %zu [%s]: nparams expected %zu, got %zu\n", i, c->in, c->nparams,
                        p.nparams);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void
test_paths_basic(void **state)
{
    (void)state;
    static const path_case cases[] = {
        FROM("FROM:<a@example.com>", PARSE_OK, "a@example.com", 0, 0),
        FROM("from:<a@example.com>", PARSE_OK, "a@example.com", 0, 0),
        FROM("FrOm:<User.Name+tag@Example.COM>", PARSE_OK, "User.Name+tag@Example.COM", 0, 0),
        FROM("FROM:<!#$%&'*+-/=?^_`{|}~@example.com>", PARSE_OK, "!#$%&'*+-/=?^_`{|}~@example.com",
             0, 0),
        FROM("FROM:<a@localhost>", PARSE_OK, "a@localhost", 0, 0),
        FROM("FROM:<a@b.c> ", PARSE_OK, "a@b.c", 0, 0), /* trailing space */
        /* null sender */
        FROM("FROM:<>", PARSE_OK, "", F_NULL, 0),
        FROM("FROM:<> BODY=8BITMIME", PARSE_OK, "", F_NULL, 1),
        FROM("FROM: <>", PARSE_OK, "", F_NULL | F_SPACE, 0), BAD_TO("TO:<>", PARSE_EADDR),
        BAD_FROM("FROM:<>>", PARSE_EADDR), BAD_FROM("FROM:<<>>", PARSE_EADDR),
        /* spaces around the colon are tolerated and noted */
        FROM("FROM: <a@b.c>", PARSE_OK, "a@b.c", F_SPACE, 0),
        FROM("FROM :<a@b.c>", PARSE_OK, "a@b.c", F_SPACE, 0),
        FROM("FROM  :  <a@b.c>", PARSE_OK, "a@b.c", F_SPACE, 0),
        TO("TO: <a@b.c>", PARSE_OK, "a@b.c", F_SPACE, 0),
        /* missing brackets are tolerated and noted */
        FROM("FROM:a@b.c", PARSE_OK, "a@b.c", F_NOBR, 0),
        FROM("FROM:a@b.c SIZE=10", PARSE_OK, "a@b.c", F_NOBR, 1),
        FROM("FROM: a@b.c", PARSE_OK, "a@b.c", F_NOBR | F_SPACE, 0),
        BAD_FROM("FROM:<a@b.c", PARSE_EADDR), BAD_FROM("FROM:a@b.c>", PARSE_EADDR),
        BAD_FROM("FROM:<a@b.c>x", PARSE_EADDR), /* junk right after '>' */
        BAD_FROM("FROM:<a@b.c>>", PARSE_EADDR), BAD_FROM("FROM:<<a@b.c>", PARSE_EADDR),
        /* not FROM:/TO: at all */
        BAD_FROM("FROM:", PARSE_ESYNTAX), BAD_FROM("FROM:   ", PARSE_ESYNTAX),
        BAD_FROM("FROM", PARSE_ESYNTAX), BAD_FROM("", PARSE_ESYNTAX),
        BAD_FROM("FRO:<a@b.c>", PARSE_ESYNTAX), BAD_FROM("FROM<a@b.c>", PARSE_ESYNTAX),
        BAD_FROM("FROM=<a@b.c>", PARSE_ESYNTAX), BAD_FROM("FROMX:<a@b.c>", PARSE_ESYNTAX),
        BAD_FROM("TO:<a@b.c>", PARSE_ESYNTAX), BAD_TO("FROM:<a@b.c>", PARSE_ESYNTAX),
        BAD_TO("T:<a@b.c>", PARSE_ESYNTAX),
        /* malformed mailboxes */
        BAD_FROM("FROM:<a>", PARSE_EADDR), BAD_FROM("FROM:<@b.c>", PARSE_EADDR),
        BAD_FROM("FROM:<a@>", PARSE_EADDR), BAD_FROM("FROM:<a@@b.c>", PARSE_EADDR),
        BAD_FROM("FROM:<a@b@c.d>", PARSE_EADDR), BAD_FROM("FROM:<a b@c.d>", PARSE_EADDR),
        BAD_FROM("FROM:<a@b c.d>", PARSE_EADDR), BAD_FROM("FROM:<a..b@c.d>", PARSE_EADDR),
        BAD_FROM("FROM:<.a@c.d>", PARSE_EADDR), BAD_FROM("FROM:<a.@c.d>", PARSE_EADDR),
        BAD_FROM("FROM:<a(b)@c.d>", PARSE_EADDR), BAD_FROM("FROM:<a,b@c.d>", PARSE_EADDR),
        BAD_FROM("FROM:<a\\b@c.d>", PARSE_EADDR), BAD_FROM("FROM:<a@-b.c>", PARSE_EADDR),
        BAD_FROM("FROM:<a@b-.c>", PARSE_EADDR), BAD_FROM("FROM:<a@b..c>", PARSE_EADDR),
        BAD_FROM("FROM:<a@.b.c>", PARSE_EADDR), BAD_FROM("FROM:<a@b.c.>", PARSE_EADDR),
        BAD_FROM("FROM:<a@b_c.d>", PARSE_EADDR), BAD_FROM("FROM:<a@b.c:25>", PARSE_EADDR),
        FROM("FROM:<a@b-c.d>", PARSE_OK, "a@b-c.d", 0, 0),
        FROM("FROM:<a@1.2.3.4>", PARSE_OK, "a@1.2.3.4", 0, 0), /* digits are a domain */
    };
    run_path_table(cases, ARRAY_LEN(cases));
}

static void
test_paths_routes_and_quotes(void **state)
{
    (void)state;
    static const path_case cases[] = {
        /* RFC 5321 4.1.2: source routes are accepted and dropped */
        FROM("FROM:<@a,@b:u@d.example>", PARSE_OK, "u@d.example", F_ROUTE, 0),
        FROM("FROM:<@a.example:u@d.example>", PARSE_OK, "u@d.example", F_ROUTE, 0),
        FROM("FROM:<@a,@b,@c:u@d> SIZE=5", PARSE_OK, "u@d", F_ROUTE, 1),
        TO("TO:<@relay.example:b@c.example>", PARSE_OK, "b@c.example", F_ROUTE, 0),
        BAD_FROM("FROM:<@a,@b:>", PARSE_EADDR), /* a route to nothing */
        BAD_FROM("FROM:<@a:>", PARSE_EADDR),
        BAD_FROM("FROM:<@a,@b u@d>", PARSE_EADDR),
        BAD_FROM("FROM:<@a,u@d>", PARSE_EADDR), /* no colon */
        BAD_FROM("FROM:<@:u@d>", PARSE_EADDR),
        BAD_FROM("FROM:<@a,b:u@d>", PARSE_EADDR), /* second hop lacks '@' */
        BAD_FROM("FROM:<@a,,@b:u@d>", PARSE_EADDR),
        BAD_FROM("FROM:<@-a:u@d>", PARSE_EADDR),
        /* quoted local parts */
        FROM("FROM:<\"john doe\"@example.com>", PARSE_OK, "\"john doe\"@example.com", 0, 0),
        FROM("FROM:<\"a>b\"@example.com>", PARSE_OK, "\"a>b\"@example.com", 0, 0),
        FROM("FROM:<\"a@b\"@example.com>", PARSE_OK, "\"a@b\"@example.com", 0, 0),
        FROM("FROM:<\"a\\\"b\"@example.com>", PARSE_OK, "\"a\\\"b\"@example.com", 0, 0),
        FROM("FROM:<\"a\\>\"@example.com>", PARSE_OK, "\"a\\>\"@example.com", 0, 0),
        FROM("FROM:<\"a\\\\\"@example.com>", PARSE_OK, "\"a\\\\\"@example.com", 0, 0),
        FROM("FROM:<\"<>\"@example.com> SIZE=1", PARSE_OK, "\"<>\"@example.com", 0, 1),
        FROM("FROM:<\"a..b\"@example.com>", PARSE_OK, "\"a..b\"@example.com", 0, 0),
        FROM("FROM:<\"\"@example.com>", PARSE_OK, "\"\"@example.com", 0, 0),
        FROM("FROM:<@r:\"x y\"@example.com>", PARSE_OK, "\"x y\"@example.com", F_ROUTE, 0),
        BAD_FROM("FROM:<\"unterminated@example.com>", PARSE_EADDR),
        BAD_FROM("FROM:<\"a\"b@example.com>", PARSE_EADDR),
        BAD_FROM("FROM:<a\"b\"@example.com>", PARSE_EADDR),
        BAD_FROM("FROM:<\"a\\\"@example.com>", PARSE_EADDR),  /* the escape eats the quote */
        BAD_FROM("FROM:<\"a\tb\"@example.com>", PARSE_EADDR), /* control in quotes */
        BAD_FROM("FROM:<\"a\x7f\"@example.com>", PARSE_EADDR),
        BAD_FROM("FROM:<\"a\\\x01\"@example.com>", PARSE_EADDR), /* escaped control */
        BAD_FROM("FROM:<\"a\"@example.com", PARSE_EADDR),
    };
    run_path_table(cases, ARRAY_LEN(cases));
}

static void
test_paths_literals(void **state)
{
    (void)state;
    static const path_case cases[] = {
        FROM("FROM:<a@[192.0.2.1]>", PARSE_OK, "a@[192.0.2.1]", 0, 0),
        FROM("FROM:<a@[0.0.0.0]>", PARSE_OK, "a@[0.0.0.0]", 0, 0),
        FROM("FROM:<a@[255.255.255.255]>", PARSE_OK, "a@[255.255.255.255]", 0, 0),
        FROM("FROM:<a@[IPv6:2001:db8::1]>", PARSE_OK, "a@[IPv6:2001:db8::1]", 0, 0),
        FROM("FROM:<a@[ipv6:2001:DB8::1]>", PARSE_OK, "a@[ipv6:2001:DB8::1]", 0, 0),
        FROM("FROM:<a@[IPv6:::1]>", PARSE_OK, "a@[IPv6:::1]", 0, 0),
        FROM("FROM:<a@[IPv6:::]>", PARSE_OK, "a@[IPv6:::]", 0, 0),
        FROM("FROM:<a@[IPv6:fe80::]>", PARSE_OK, "a@[IPv6:fe80::]", 0, 0),
        FROM("FROM:<a@[IPv6:1:2:3:4:5:6:7:8]>", PARSE_OK, "a@[IPv6:1:2:3:4:5:6:7:8]", 0, 0),
        FROM("FROM:<a@[IPv6:::ffff:192.0.2.1]>", PARSE_OK, "a@[IPv6:::ffff:192.0.2.1]", 0, 0),
        FROM("FROM:<a@[IPv6:1:2:3:4:5:6:192.0.2.1]>", PARSE_OK, "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", 0,
             0),
        FROM("FROM:<a@[x-tag:any.text!here]>", PARSE_OK, "a@[x-tag:any.text!here]", 0, 0),
        TO("TO:<b@[10.0.0.1]>", PARSE_OK, "b@[10.0.0.1]", 0, 0),
        BAD_FROM("FROM:<a@[192.0.2.256]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[192.0.2]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[192.0.2.1.5]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[192.0.2.]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[.192.0.2.1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[1922.0.2.1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[192.0.2.1>", PARSE_EADDR),
        BAD_FROM("FROM:<a@192.0.2.1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:1:2:3:4:5:6:7]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:1::2::3]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6::::1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6::1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:1:]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:gggg::1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:12345::1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:::ffff:192.0.2.256]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[IPv6:::192.0.2.1:1]>", PARSE_EADDR),
        BAD_FROM("FROM:<a@[:text]>", PARSE_EADDR),    /* empty tag */
        BAD_FROM("FROM:<a@[tag:]>", PARSE_EADDR),     /* empty content */
        BAD_FROM("FROM:<a@[ta_g:x]>", PARSE_EADDR),   /* bad tag */
        BAD_FROM("FROM:<a@[tag:a b]>", PARSE_EADDR),  /* space in dcontent */
        BAD_FROM("FROM:<a@[tag:a\\b]>", PARSE_EADDR), /* backslash in dcontent */
        BAD_FROM("FROM:<a@[tag:a[b]>", PARSE_EADDR),
    };
    run_path_table(cases, ARRAY_LEN(cases));
}

static void
test_paths_utf8(void **state)
{
    (void)state;
    static const path_case cases[] = {
        FROM("FROM:<j\xc3\xb6rg@example.com>", PARSE_OK, "j\xc3\xb6rg@example.com", F_8BIT, 0),
        FROM("FROM:<user@\xc3\xa9xample.com>", PARSE_OK, "user@\xc3\xa9xample.com", F_8BIT, 0),
        FROM("FROM:<\xd0\xbf\xd0\xb5\xd1\x82\xd1\x8f@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5"
             "\xd1\x80.\xd1\x80\xd1\x84> SMTPUTF8",
             PARSE_OK,
             "\xd0\xbf\xd0\xb5\xd1\x82\xd1\x8f@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80."
             "\xd1\x80\xd1\x84",
             F_8BIT, 1),
        FROM("FROM:<\"\xc3\xa9 x\"@example.com>", PARSE_OK, "\"\xc3\xa9 x\"@example.com", F_8BIT,
             0),
        TO("TO:<\xe2\x82\xac@example.com>", PARSE_OK, "\xe2\x82\xac@example.com", F_8BIT, 0),
        BAD_FROM("FROM:<j\xc3rg@example.com>", PARSE_EADDR),       /* truncated */
        BAD_FROM("FROM:<j\xc0\xafrg@example.com>", PARSE_EADDR),   /* overlong */
        BAD_FROM("FROM:<x\xed\xa0\x80@example.com>", PARSE_EADDR), /* surrogate */
        BAD_FROM("FROM:<x@ex\xff.com>", PARSE_EADDR),              /* invalid in domain */
        BAD_FROM("FROM:<x@ex\xf4\x90\x80\x80.com>", PARSE_EADDR),  /* > U+10FFFF */
    };
    run_path_table(cases, ARRAY_LEN(cases));
}

/* Build "<prefix><local>@<domain>>" with repeated characters. */
static void
make_path(char *out, size_t size, const char *prefix, size_t local_len, size_t domain_len)
{
    size_t n = 0;
    n += (size_t)snprintf(out + n, size - n, "%s<", prefix);
    for (size_t i = 0; i < local_len; i++)
        out[n++] = 'l';
    out[n++] = '@';
    /* labels of 63 octets joined by dots, up to domain_len */
    size_t label = 0;
    for (size_t i = 0; i < domain_len; i++) {
        if (label == 63 && i + 1 < domain_len) {
            out[n++] = '.';
            label = 0;
        } else {
            out[n++] = 'd';
            label++;
        }
    }
    out[n++] = '>';
    out[n] = '\0';
    assert_true(n < size);
}

static void
test_paths_lengths(void **state)
{
    (void)state;
    char in[1024];
    parse_path p;

    /* RFC 5321 4.5.3.1.1: local part up to 64 octets */
    make_path(in, sizeof in, "FROM:", 64, 11);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_OK);
    assert_int_equal(strlen(p.addr), 64 + 1 + 11);
    make_path(in, sizeof in, "FROM:", 65, 11);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);

    /* quoted local part: the quotes count */
    snprintf(in, sizeof in, "TO:<\"%062d\"@x.example>", 0);
    assert_int_equal(parse_path_arg(in, "TO:", false, &p), PARSE_OK);
    snprintf(in, sizeof in, "TO:<\"%063d\"@x.example>", 0);
    assert_int_equal(parse_path_arg(in, "TO:", false, &p), PARSE_EADDR);

    /* a label is at most 63 octets */
    snprintf(in, sizeof in, "FROM:<a@%063d.example>", 0);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_OK);
    snprintf(in, sizeof in, "FROM:<a@%064d.example>", 0);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);

    /* the whole mailbox: 1 + 1 + 254 = 256 fits the buffer; one more is refused */
    make_path(in, sizeof in, "FROM:", 1, 254);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_OK);
    assert_int_equal(strlen(p.addr), 256);
    make_path(in, sizeof in, "FROM:", 2, 254);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);
    make_path(in, sizeof in, "FROM:", 1, 256); /* domain over 255 */
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);
    make_path(in, sizeof in, "FROM:", 64, 300);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);

    /* a long source route counts toward the path */
    char route[400];
    size_t n = 0;
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(route + n, sizeof route - n, "%s@r%d.example", i ? "," : "", i);
    snprintf(in, sizeof in, "FROM:<%s:a@b.example>", route);
    assert_int_equal(parse_path_arg(in, "FROM:", true, &p), PARSE_EADDR);

    /* parameters longer than the private copy are refused, not truncated */
    char huge[5000];
    n = (size_t)snprintf(huge, sizeof huge, "FROM:<a@b.c> X=");
    memset(huge + n, 'v', sizeof huge - n - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(parse_path_arg(huge, "FROM:", true, &p), PARSE_EPARAM);
}

static void
test_postmaster_paths(void **state)
{
    (void)state;
    static const path_case cases[] = {
        TO("TO:<postmaster>", PARSE_OK, "postmaster", 0, 0),
        TO("TO:<Postmaster>", PARSE_OK, "Postmaster", 0, 0),
        TO("TO:<POSTMASTER>", PARSE_OK, "POSTMASTER", 0, 0),
        TO("TO:<postmaster@mx.example>", PARSE_OK, "postmaster@mx.example", 0, 0),
        TO("TO:postmaster", PARSE_OK, "postmaster", F_NOBR, 0),
        BAD_TO("TO:<postmasterx>", PARSE_EADDR),
        BAD_TO("TO:<postmaste>", PARSE_EADDR),
        BAD_TO("TO:<abuse>", PARSE_EADDR),
        TO("TO:<@r.example:postmaster>", PARSE_OK, "postmaster", F_ROUTE, 0),
    };
    run_path_table(cases, ARRAY_LEN(cases));
}

/* RFC 5321 4.1.1.2 / 4.1.2: the reverse-path is "<>" or a Mailbox, and a Mailbox always
   has a domain. Only RCPT TO:<Postmaster> may come without one (4.5.1).
   Regression: MAIL FROM:<postmaster> was accepted (found by this test, fixed 79786da). */
static void
test_mail_from_bare_postmaster_refused(void **state)
{
    (void)state;
    parse_path p;
    assert_int_equal(parse_path_arg("FROM:<postmaster>", "FROM:", true, &p), PARSE_EADDR);
    assert_int_equal(parse_path_arg("FROM:postmaster", "FROM:", true, &p), PARSE_EADDR);
    assert_int_equal(parse_path_arg("FROM:<@r.example:postmaster>", "FROM:", true, &p),
                     PARSE_EADDR);
    assert_int_equal(parse_path_arg("FROM:<postmaster@mx.example>", "FROM:", true, &p), PARSE_OK);
}

/* RFC 5321 4.1.2: A-d-l = At-domain *( "," At-domain ): no empty hop after a comma.
   Regression: "@a," was accepted (found by this test, fixed 79786da). */
static void
test_route_trailing_comma_refused(void **state)
{
    (void)state;
    parse_path p;
    assert_int_equal(parse_path_arg("FROM:<@a.example,:u@d.example>", "FROM:", true, &p),
                     PARSE_EADDR);
    assert_int_equal(parse_path_arg("TO:<@a.example,@b.example,:u@d.example>", "TO:", false, &p),
                     PARSE_EADDR);
}

typedef struct param_case {
    const char *in;
    parse_status st;
    const char *keys; /* "K=V|K2|K3=V3" as parsed, when PARSE_OK */
} param_case;

static void
test_params_table(void **state)
{
    (void)state;
    static const param_case cases[] = {
        {"FROM:<a@b.c> SIZE=100", PARSE_OK, "SIZE=100"},
        {"FROM:<a@b.c> SMTPUTF8", PARSE_OK, "SMTPUTF8"},
        {"FROM:<a@b.c> SIZE=1 BODY=8BITMIME SMTPUTF8", PARSE_OK, "SIZE=1|BODY=8BITMIME|SMTPUTF8"},
        {"FROM:<a@b.c>   SIZE=1    BODY=7BIT  ", PARSE_OK, "SIZE=1|BODY=7BIT"},
        {"FROM:<a@b.c> X-Y=1 9Z", PARSE_OK, "X-Y=1|9Z"},
        {"FROM:<a@b.c> ENVID=abc+2Bdef", PARSE_OK, "ENVID=abc+2Bdef"},
        {"FROM:<a@b.c> AUTH=<>", PARSE_OK, "AUTH=<>"},
        {"FROM:<a@b.c> X=\xc3\xa9t\xc3\xa9", PARSE_OK, "X=\xc3\xa9t\xc3\xa9"},
        {"FROM:<a@b.c> X=!~", PARSE_OK, "X=!~"},
        /* keyword syntax */
        {"FROM:<a@b.c> =1", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> -X=1", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X_Y=1", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X.Y", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> S\xc3\xa9", PARSE_EPARAM, NULL},
        /* value syntax */
        {"FROM:<a@b.c> SIZE=", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> A=B=C", PARSE_EPARAM, NULL}, /* '=' is not esmtp-value */
        {"FROM:<a@b.c> A==", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X=a\tb", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X=a\x01", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X=a\x7f", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X=\xc3", PARSE_EPARAM, NULL},         /* truncated UTF-8 */
        {"FROM:<a@b.c> X=\xed\xa0\x80", PARSE_EPARAM, NULL}, /* surrogate */
        /* duplicates, compared case-insensitively, with or without values */
        {"FROM:<a@b.c> SIZE=1 SIZE=2", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> SIZE=1 size=1", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> BODY=7BIT Body", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> smtputf8 SMTPUTF8", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X-A X-B X-a", PARSE_EPARAM, NULL},
        {"FROM:<a@b.c> X-A X-AB", PARSE_OK, "X-A|X-AB"},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        parse_path p;
        parse_status st = parse_path_arg(cases[i].in, "FROM:", true, &p);
        if (st != cases[i].st) {
            print_error("param case %zu [%s]: expected %s got %s\n", i, cases[i].in,
                        status_name(cases[i].st), status_name(st));
            failures++;
            continue;
        }
        if (st != PARSE_OK)
            continue;
        char got[256];
        size_t n = 0;
        got[0] = '\0';
        for (size_t k = 0; k < p.nparams; k++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%s%s%s", k ? "|" : "",
                                  p.params[k].key, p.params[k].value ? "=" : "",
                                  p.params[k].value ? p.params[k].value : "");
        if (strcmp(got, cases[i].keys) != 0) {
            print_error("param case %zu [%s]: expected %s got %s\n", i, cases[i].in, cases[i].keys,
                        got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void
test_params_count_limit(void **state)
{
    (void)state;
    char in[1024];
    parse_path p;
    size_t n = (size_t)snprintf(in, sizeof in, "TO:<a@b.c>");
    for (int i = 0; i < PARSE_MAX_PARAMS; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, " P%d=%d", i, i);
    assert_int_equal(parse_path_arg(in, "TO:", false, &p), PARSE_OK);
    assert_int_equal(p.nparams, PARSE_MAX_PARAMS);
    assert_string_equal(p.params[0].key, "P0");
    assert_string_equal(p.params[0].value, "0");
    assert_string_equal(p.params[15].key, "P15");
    assert_string_equal(p.params[15].value, "15");
    snprintf(in + n, sizeof in - n, " P16");
    assert_int_equal(parse_path_arg(in, "TO:", false, &p), PARSE_EPARAM);
}

static void
test_parse_reuses_struct_cleanly(void **state)
{
    (void)state;
    parse_path p;
    assert_int_equal(parse_path_arg("FROM: a@b.c SIZE=1 BODY=7BIT", "FROM:", true, &p), PARSE_OK);
    assert_int_equal(p.nparams, 2);
    assert_true(p.had_space && p.no_brackets);
    /* a second parse into the same struct starts from scratch */
    assert_int_equal(parse_path_arg("FROM:<>", "FROM:", true, &p), PARSE_OK);
    assert_int_equal(p.nparams, 0);
    assert_false(p.had_space);
    assert_false(p.no_brackets);
    assert_true(p.is_null);
    assert_string_equal(p.addr, "");
}

static void
test_keyword_and_value_predicates(void **state)
{
    (void)state;
    assert_true(parse_is_esmtp_keyword("SIZE"));
    assert_true(parse_is_esmtp_keyword("X-FOO-1"));
    assert_true(parse_is_esmtp_keyword("1X"));
    assert_true(parse_is_esmtp_keyword("x"));
    assert_false(parse_is_esmtp_keyword(""));
    assert_false(parse_is_esmtp_keyword("-X"));
    assert_false(parse_is_esmtp_keyword("X Y"));
    assert_false(parse_is_esmtp_keyword("X=Y"));
    assert_false(parse_is_esmtp_keyword("X_Y"));

    assert_true(parse_is_esmtp_value("8BITMIME"));
    assert_true(parse_is_esmtp_value("!"));
    assert_true(parse_is_esmtp_value("~<>"));
    assert_true(parse_is_esmtp_value("\xc3\xa9"));
    assert_false(parse_is_esmtp_value(""));
    assert_false(parse_is_esmtp_value("a=b"));
    assert_false(parse_is_esmtp_value("a b"));
    assert_false(parse_is_esmtp_value("\x7f"));
    assert_false(parse_is_esmtp_value("\xff"));
    assert_false(parse_is_esmtp_value("\xc3"));
}

typedef struct xtext_case {
    const char *in;
    size_t outsize;
    long rc;
    const char *out; /* when rc >= 0 */
} xtext_case;

static void
test_xtext_table(void **state)
{
    (void)state;
    static const xtext_case cases[] = {
        {"", 1, 0, ""},
        {"abc", 16, 3, "abc"},
        {"a+2Bb", 16, 3, "a+b"},
        {"+3D", 16, 1, "="},
        {"+2B+3D", 16, 2, "+="},
        {"+20", 16, 1, " "},
        {"+7E", 16, 1, "~"},
        {"+C3+A9", 16, 2, "\xc3\xa9"},
        {"+FF", 16, 1, "\xff"},
        {"!~<>", 16, 4, "!~<>"},
        {"rfc822;a@b.c", 32, 12, "rfc822;a@b.c"},
        /* malformed */
        {"+2b", 16, -1, NULL}, /* hex is upper case only (RFC 3461 4) */
        {"+c3", 16, -1, NULL},
        {"+00", 16, -1, NULL}, /* no NUL */
        {"a+00b", 16, -1, NULL},
        {"+0A", 16, -1, NULL}, /* no controls */
        {"+0D+0A", 16, -1, NULL},
        {"+1F", 16, -1, NULL},
        {"+7F", 16, -1, NULL},
        {"+", 16, -1, NULL}, /* truncated */
        {"+4", 16, -1, NULL},
        {"ab+", 16, -1, NULL},
        {"ab+A", 16, -1, NULL},
        {"+GG", 16, -1, NULL},
        {"+G0", 16, -1, NULL},
        {"+0G", 16, -1, NULL},
        {"a=b", 16, -1, NULL}, /* raw "=" */
        {"a b", 16, -1, NULL}, /* raw space */
        {"a\tb", 16, -1, NULL},
        {"a\x7f", 16, -1, NULL},
        {"\xc3\xa9", 16, -1, NULL}, /* raw 8-bit */
        /* room */
        {"abcd", 5, 4, "abcd"},
        {"abcd", 4, -1, NULL},
        {"+41+42", 3, 2, "AB"},
        {"+41+42", 2, -1, NULL},
        {"", 0, -1, NULL},
        {"a", 0, -1, NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const xtext_case *c = &cases[i];
        char out[64];
        memset(out, 'Z', sizeof out);
        long rc = parse_xtext_decode(c->in, out, c->outsize);
        if (rc != c->rc) {
            print_error("xtext case %zu [%s] outsize %zu: expected %ld got %ld\n", i, c->in,
                        c->outsize, c->rc, rc);
            failures++;
            continue;
        }
        if (rc >= 0 && (memcmp(out, c->out, (size_t)rc + 1) != 0)) {
            print_error("xtext case %zu [%s]: wrong output\n", i, c->in);
            failures++;
        }
        if (c->outsize < sizeof out && out[c->outsize] != 'Z') {
            print_error("xtext case %zu [%s]: wrote past outsize\n", i, c->in);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void
test_postmaster_detection(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        const char *host;
        bool is;
    } cases[] = {
        {"postmaster", "mx.example", true},
        {"POSTMASTER", "mx.example", true},
        {"PostMaster", NULL, true},
        {"postmaster@mx.example", "mx.example", true},
        {"PostMaster@MX.Example", "mx.example", true},
        {"postmaster@mx.example", "MX.EXAMPLE", true},
        {"postmaster@other.example", "mx.example", false},
        {"postmaster@mx.example.org", "mx.example", false},
        {"postmaster@mx", "mx.example", false},
        {"postmaster@", "mx.example", false},
        {"postmaster@mx.example", NULL, false},
        {"postmasterx", "mx.example", false},
        {"postmaster.x@mx.example", "mx.example", false},
        {"xpostmaster", "mx.example", false},
        {"post", "mx.example", false},
        {"", "mx.example", false},
        {"\"postmaster\"@mx.example", "mx.example", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = parse_is_postmaster(cases[i].addr, cases[i].host);
        if (got != cases[i].is)
            fail_msg("parse_is_postmaster(\"%s\", %s): expected %d", cases[i].addr,
                     cases[i].host ? cases[i].host : "NULL", cases[i].is);
    }
}

static void
test_domain_or_literal(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"example.com", true},
        {"localhost", true},
        {"a", true},
        {"a-b.c-d.e", true},
        {"xn--bcher-kva.example", true},
        {"b\xc3\xbc"
         "cher.example",
         true}, /* U-label (RFC 6531) */
        {"123.example", true},
        {"[192.0.2.1]", true},
        {"[IPv6:::1]", true},
        {"[IPV6:2001:DB8::1]", true},
        {"[x-tag:text]", true},
        {"", false},
        {".", false},
        {"example.com.", false},
        {".example.com", false},
        {"ex..ample", false},
        {"-example.com", false},
        {"example-.com", false},
        {"exa mple.com", false},
        {"exa_mple.com", false},
        {"example.com:25", false},
        {"[192.0.2.1", false},
        {"192.0.2.1]", false},
        {"[]", false},
        {"[192.0.2.1]x", false},
        {"x[192.0.2.1]", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = parse_is_domain_or_literal(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok)
            fail_msg("parse_is_domain_or_literal(\"%s\"): expected %d", cases[i].s, cases[i].ok);
    }
    /* lengths: labels of 63, total of 255 */
    char d[300];
    memset(d, 'a', 63);
    assert_true(parse_is_domain_or_literal(d, 63));
    memset(d, 'a', 64);
    assert_false(parse_is_domain_or_literal(d, 64));
    /* 4 labels: 63+1+63+1+63+1+63 = 255 */
    memset(d, 'a', sizeof d);
    d[63] = d[127] = d[191] = '.';
    assert_true(parse_is_domain_or_literal(d, 255));
    d[255] = '.';
    d[256] = 'b';
    assert_false(parse_is_domain_or_literal(d, 257));
    /* len is honoured: a prefix of a valid name */
    assert_true(parse_is_domain_or_literal("example.com", 7));
    assert_false(parse_is_domain_or_literal("example.com", 8)); /* "example." */
}

/* RFC 5321 4.1.3: General-address-literal = Standardized-tag ":" 1*dcontent, and
   dcontent (%d33-90 / %d94-126) includes '>', '<' and '"'. Inside < > the first '>' (or
   a '"' opening a quoted run) would end the path early, so the parser refuses these
   octets in a literal, and a path must parse the same with or without brackets.
   Regression: accepted bare, refused bracketed (found by fuzz_parse, fixed d48bb03). */
static void
test_general_literal_brackets(void **state)
{
    (void)state;
    static const char *const addrs[] = {"a@[x:>]", "a@[x:\"]", "a@[x:<>]",
                                        "a@[x:<]", "a@[x:y]",  "a@[x:a@b]"};
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        char bare[64], bracketed[64];
        snprintf(bare, sizeof bare, "FROM:%s", addrs[i]);
        snprintf(bracketed, sizeof bracketed, "FROM:<%s>", addrs[i]);
        parse_path p;
        parse_status st_bare = parse_path_arg(bare, "FROM:", true, &p);
        parse_status st_br = parse_path_arg(bracketed, "FROM:", true, &p);
        if (st_bare != st_br)
            fail_msg("%s: without brackets %s, with brackets %s", addrs[i], status_name(st_bare),
                     status_name(st_br));
    }
    parse_path p;
    assert_int_equal(parse_path_arg("FROM:<a@[x:>]>", "FROM:", true, &p), PARSE_EADDR);
    assert_int_equal(parse_path_arg("FROM:a@[x:>]", "FROM:", true, &p), PARSE_EADDR);
    assert_int_equal(parse_path_arg("FROM:<a@[x:y]>", "FROM:", true, &p), PARSE_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_basic),
        cmocka_unit_test(test_paths_routes_and_quotes),
        cmocka_unit_test(test_paths_literals),
        cmocka_unit_test(test_paths_utf8),
        cmocka_unit_test(test_paths_lengths),
        cmocka_unit_test(test_postmaster_paths),
        cmocka_unit_test(test_mail_from_bare_postmaster_refused),
        cmocka_unit_test(test_route_trailing_comma_refused),
        cmocka_unit_test(test_general_literal_brackets),
        cmocka_unit_test(test_params_table),
        cmocka_unit_test(test_params_count_limit),
        cmocka_unit_test(test_parse_reuses_struct_cleanly),
        cmocka_unit_test(test_keyword_and_value_predicates),
        cmocka_unit_test(test_xtext_table),
        cmocka_unit_test(test_postmaster_detection),
        cmocka_unit_test(test_domain_or_literal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
