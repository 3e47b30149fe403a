/*
 * parse.h - SMTP syntax, sans I/O: paths (RFC 5321 4.1.2), domains and address
 * literals, ESMTP parameters (keyword[=value]), xtext (RFC 3461 4). Pure functions over
 * one command line; the session decides what the results mean. Any thread.
 */
#ifndef SMTP_PARSE_H
#define SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.1-3 */
#define PARSE_MAX_LOCAL 64
#define PARSE_MAX_DOMAIN 255
#define PARSE_MAX_PATH 256
#define PARSE_MAX_PARAMS 16

typedef enum parse_status {
    PARSE_OK = 0,
    PARSE_ESYNTAX, /* not "FROM:<path>" / "TO:<path>" at all */
    PARSE_EADDR,   /* the path is malformed or too long */
    PARSE_EPARAM   /* an ESMTP parameter is malformed or repeated */
} parse_status;

typedef struct parse_param {
    const char *key;   /* points into the parsed line copy; NUL-terminated */
    const char *value; /* NULL when the parameter has no "=" */
} parse_param;

/* The result of parsing "FROM:<path> params" or "TO:<path> params". */
typedef struct parse_path {
    char addr[PARSE_MAX_PATH + 1]; /* mailbox without <>, source route dropped; "" for <> */
    bool is_null;                  /* the path was <> */
    bool is_8bit;                  /* non-ASCII octets in the address */
    bool had_space;                /* spaces around the colon (a finding) */
    bool no_brackets;              /* no < > around the path (a finding) */
    bool had_route;                /* an @a,@b: source route was present (ignored) */
    size_t nparams;
    parse_param params[PARSE_MAX_PARAMS];
    char line[4096]; /* private copy of the arguments that params point into */
} parse_path;

/*
 * Parse the argument of MAIL or RCPT. prefix is "FROM:" or "TO:". allow_null is true for
 * a reverse-path (MAIL): it allows <>; false for a forward-path (RCPT), which instead
 * allows the bare <Postmaster>. UTF-8 addresses parse (is_8bit tells; the caller checks
 * SMTPUTF8 was declared).
 */
parse_status parse_path_arg(const char *arg, const char *prefix, bool allow_null, parse_path *out);

/* A domain (labels of letters, digits, hyphens; UTF-8 U-labels allowed) or an address
   literal [1.2.3.4] / [IPv6:...] / [tag:text]. */
bool parse_is_domain_or_literal(const char *s, size_t len);

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
bool parse_is_esmtp_keyword(const char *s);
/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 3.3) */
bool parse_is_esmtp_value(const char *s);

/*
 * Decode xtext (RFC 3461 4: "+" HEXCHAR HEXCHAR for octets outside 33..126 and "+", "=")
 * into out (at most outsize-1 octets, NUL-terminated). Returns the decoded length, or -1
 * for malformed xtext, a decoded NUL or control octet, or no room.
 */
long parse_xtext_decode(const char *in, char *out, size_t outsize);

/* Does addr name the postmaster: "postmaster" or "postmaster@<host>", any case. */
bool parse_is_postmaster(const char *addr, const char *host);

#endif
