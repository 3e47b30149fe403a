/*
 * config.c - loads the settings of config.h from defaults, a config file, MAILSINK_*
 * environment variables and the command line, in that order, so that a later source
 * wins. One table describes every setting (name, kind, field, range, help): the file,
 * the environment, argv and --help all read it, so a setting cannot exist in one place
 * and be missing from another.
 *
 * argv is read twice: once for its shape (which flags, which subcommand, --config,
 * --help) before anything else, so that --help works even with a broken config file and
 * --config is known before the file is read; and once more, last, to apply the values.
 */
#include "mailsink/cli/config.h"
#include "mailsink/cli/words.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum opt_kind {
    K_STRING,     /* char *, replaced */
    K_LIST,       /* config_strings, repeatable */
    K_NUMBER,     /* decimal */
    K_SIZE,       /* decimal with an optional k/M/G */
    K_DURATION,   /* 30d, 12h, 90m, 45s, 1h30m or bare seconds */
    K_BARE_LF,    /* reject|normalize|accept, kept as the word */
    K_LOG_FORMAT, /* text|json */
    K_COUNT,      /* -v: counted on argv, a number or yes/no elsewhere */
    K_FLAG,       /* --json, --all: no value */
    K_BOOL,       /* --require-tls: no value on argv, yes/no elsewhere */
    K_CONFIG,
    K_HELP,
    K_VERSION
} opt_kind;

typedef enum opt_check {
    C_NONE,
    C_NONEMPTY,
    C_LISTEN,
    C_EXEC,
    C_TOKEN,
    C_HTTP,    /* a listen address or "none" */
    C_WEBROOT, /* URL path characters only, no "..": normalised to "/x/" at the end */
    C_TEXT     /* no control characters (the value goes into replies) */
} opt_check;

#define CMD(x) (1u << (x))

typedef struct opt {
    const char *section; /* starts a group in --help */
    const char *name;    /* long flag, config file key, environment name */
    char short_name;
    opt_kind kind;
    opt_check check;
    unsigned cmds; /* 0: a setting (file, environment, argv); else the subcommands
                      whose flag it is (argv only) */
    size_t off, size;
    uint64_t min, max;
    const char *metavar;
    const char *help;
} opt;

#define FIELD(f) .off = offsetof(config, f), .size = sizeof(((config *)0)->f)
#define DAY 86400u

/* Ranges follow libsmtpd's own option ranges (src/smtp/options.c) so that a value we
   accept is never refused later by smtpd_server_configure. Kept as a table, a few rows
   per setting, rather than clang-format's one field per line. */
/* clang-format off */
static const opt opts[] = {
    {.section = "Server:", .name = "smtp", .kind = K_LIST, .check = C_LISTEN, FIELD(smtp),
     .metavar = "ADDR:PORT",
     .help = "listen for SMTP here; repeatable; IPv6 as [::1]:1025 (default 127.0.0.1:1025)"},
    {.name = "db", .kind = K_STRING, .check = C_NONEMPTY, FIELD(db_path), .metavar = "PATH",
     .help = "SQLite database; :memory: keeps nothing "
             "(default $XDG_DATA_HOME/mailsink/mailsink.db)"},
    {.name = "hostname", .kind = K_STRING, .check = C_TOKEN, FIELD(hostname),
     .metavar = "NAME", .help = "name in the greeting and trace headers (default: the host's)"},
    {.name = "max-message-size", .kind = K_SIZE, FIELD(max_message_size), .min = 1024,
     .max = (uint64_t)1 << 40, .metavar = "SIZE",
     .help = "largest message in octets; k, M, G suffixes (default 10240000)"},
    {.name = "max-recipients", .kind = K_NUMBER, FIELD(max_recipients), .min = 1,
     .max = 1000000, .metavar = "N", .help = "recipients per message (default 100)"},
    {.name = "max-connections", .kind = K_NUMBER, FIELD(max_connections), .min = 1,
     .max = 1000000, .metavar = "N",
     .help = "open SMTP connections; more get 421 4.7.0 (default 1000)"},
    {.name = "max-connections-per-ip", .kind = K_NUMBER, FIELD(max_connections_per_ip),
     .min = 1, .max = 1000000, .metavar = "N",
     .help = "open SMTP connections from one client address; more get 421 4.7.0 "
             "(default: as --max-connections)"},
    {.name = "max-buffered-data", .kind = K_SIZE, FIELD(max_buffered_data), .min = 1024,
     .max = (uint64_t)1 << 40, .metavar = "SIZE",
     .help = "message octets all SMTP sessions together hold in memory; past it a message "
             "gets 452 4.3.1 (default 256M; never below max-message-size)"},
    {.name = "max-queued-data", .kind = K_SIZE, FIELD(max_queued_data), .min = 1024,
     .max = (uint64_t)1 << 40, .metavar = "SIZE",
     .help = "octets of received messages waiting for a slow or locked database; past it a "
             "message gets 451 4.3.0 at once (default 512M)"},
    {.name = "command-timeout", .kind = K_DURATION, FIELD(command_timeout_s), .min = 1,
     .max = DAY, .metavar = "SECONDS", .help = "a whole command line must arrive within this (default 300)"},
    {.name = "data-timeout", .kind = K_DURATION, FIELD(data_timeout_s), .min = 1, .max = DAY,
     .metavar = "SECONDS", .help = "the deadline for message content, moved on while it comes at 500 octets/s or "
             "more (default 180)"},
    {.name = "stop-grace", .kind = K_DURATION, FIELD(stop_grace_s), .min = 0, .max = DAY,
     .metavar = "SECONDS",
     .help = "on SIGTERM/SIGINT, let sessions finish this long, then 421 (default 10)"},
    {.name = "bare-lf", .kind = K_BARE_LF, FIELD(bare_lf), .metavar = "reject|normalize|accept",
     .help = "what to do with a bare LF or CR in message data (default reject)"},

    {.section = "Storage:", .name = "max-messages", .kind = K_NUMBER, FIELD(max_messages),
     .min = 0, .max = 1000000000000ull, .metavar = "N",
     .help = "keep at most N messages, pruning the oldest; 0 keeps all (default 0)"},
    {.name = "max-age", .kind = K_DURATION, FIELD(max_age_s), .min = 0,
     .max = 100ull * 366 * DAY, .metavar = "DURATION",
     .help = "prune messages older than this (30d, 12h, 90m, 45s, seconds); "
             "0 keeps all (default 0)"},
    {.name = "maildir", .kind = K_STRING, .check = C_NONEMPTY, FIELD(maildir),
     .metavar = "DIR", .help = "also deliver each message into this Maildir"},
    {.name = "mbox", .kind = K_STRING, .check = C_NONEMPTY, FIELD(mbox), .metavar = "FILE",
     .help = "also append each message to this mbox (mboxrd)"},
    {.name = "eml-dir", .kind = K_STRING, .check = C_NONEMPTY, FIELD(eml_dir),
     .metavar = "DIR", .help = "also write each message as DIR/ID.eml"},

    {.section = "Hooks (CMD is split into words like a shell would, but no shell runs and "
                "nothing is expanded):",
     .name = "deliver-exec", .kind = K_STRING, .check = C_EXEC, FIELD(deliver_exec),
     .metavar = "CMD",
     .help = "run CMD per message, message on stdin; exit 0: 250, 75: 451, other: 554"},
    {.name = "validate-host-exec", .kind = K_STRING, .check = C_EXEC,
     FIELD(validate_host_exec), .metavar = "CMD",
     .help = "run CMD with the client address; non-zero exit: 550"},
    {.name = "validate-sender-exec", .kind = K_STRING, .check = C_EXEC,
     FIELD(validate_sender_exec), .metavar = "CMD",
     .help = "run CMD with the envelope sender; non-zero exit: 553"},
    {.name = "validate-recipient-exec", .kind = K_STRING, .check = C_EXEC,
     FIELD(validate_recipient_exec), .metavar = "CMD",
     .help = "run CMD with each recipient; non-zero exit: 553"},
    {.name = "exec-timeout", .kind = K_DURATION, FIELD(exec_timeout_s), .min = 1, .max = DAY,
     .metavar = "SECONDS", .help = "kill a hook program after this long (default 30)"},

    {.section = "Rules (repeatable; globs are case-insensitive; a reject rule wins; with "
                "accept rules, a value must match one):",
     .name = "accept-rcpt", .kind = K_LIST, .check = C_NONEMPTY, FIELD(accept_rcpt),
     .metavar = "GLOB", .help = "accept only recipients matching"},
    {.name = "reject-rcpt", .kind = K_LIST, .check = C_NONEMPTY, FIELD(reject_rcpt),
     .metavar = "GLOB", .help = "reject recipients matching"},
    {.name = "accept-sender", .kind = K_LIST, .check = C_NONEMPTY, FIELD(accept_sender),
     .metavar = "GLOB", .help = "accept only senders matching"},
    {.name = "reject-sender", .kind = K_LIST, .check = C_NONEMPTY, FIELD(reject_sender),
     .metavar = "GLOB", .help = "reject senders matching"},
    {.name = "allow-host", .kind = K_LIST, .check = C_NONEMPTY, FIELD(allow_host),
     .metavar = "CIDR", .help = "accept only clients in this network"},
    {.name = "deny-host", .kind = K_LIST, .check = C_NONEMPTY, FIELD(deny_host),
     .metavar = "CIDR", .help = "refuse clients in this network"},

    {.section = "TLS and AUTH (without TLS, AUTH gets 538 unless --allow-insecure-auth):",
     .name = "smtps", .kind = K_LIST, .check = C_LISTEN, FIELD(smtps), .metavar = "ADDR:PORT",
     .help = "also listen for implicit TLS (RFC 8314) here, e.g. 127.0.0.1:1465; repeatable; "
             "needs a certificate (default none)"},
    {.name = "tls-cert", .kind = K_STRING, .check = C_NONEMPTY, FIELD(tls_cert),
     .metavar = "FILE", .help = "PEM certificate (chain allowed) for STARTTLS and --smtps; "
                                "with --tls-key"},
    {.name = "tls-key", .kind = K_STRING, .check = C_NONEMPTY, FIELD(tls_key),
     .metavar = "FILE", .help = "PEM private key of --tls-cert"},
    {.name = "tls-self-signed", .kind = K_BOOL, FIELD(tls_self_signed),
     .help = "make (once) a key and certificate for the hostname in the data directory and "
             "log its SHA-256 fingerprint"},
    {.name = "require-tls", .kind = K_BOOL, FIELD(require_tls),
     .help = "MAIL before STARTTLS gets 530 5.7.0"},
    {.name = "allow-insecure-auth", .kind = K_BOOL, FIELD(allow_insecure_auth),
     .help = "offer and accept AUTH without TLS"},
    {.name = "auth-accept-any", .kind = K_BOOL, FIELD(auth_accept_any),
     .help = "offer AUTH and accept any user and password (the user is recorded)"},
    {.name = "auth-file", .kind = K_STRING, .check = C_NONEMPTY, FIELD(auth_file),
     .metavar = "FILE",
     .help = "offer AUTH, checking \"user:password\" lines ({SHA256}hex too; see mailsink(1))"},
    {.name = "auth-required", .kind = K_BOOL, FIELD(auth_required),
     .help = "MAIL without AUTH gets 530 5.7.0; needs --auth-accept-any or --auth-file"},

    {.section = "HTTP (the REST API, live events and the web UI):",
     .name = "http", .kind = K_STRING, .check = C_HTTP, FIELD(http), .metavar = "ADDR:PORT",
     .help = "serve HTTP here; IPv6 as [::1]:8025; none turns it off "
             "(default 127.0.0.1:8025)"},
    {.name = "http-auth-file", .kind = K_STRING, .check = C_NONEMPTY, FIELD(http_auth_file),
     .metavar = "FILE",
     .help = "require HTTP basic auth, checking \"user:password\" lines (the --auth-file "
             "format); /livez and /readyz stay open"},
    {.name = "http-tls-cert", .kind = K_STRING, .check = C_NONEMPTY, FIELD(http_tls_cert),
     .metavar = "FILE", .help = "serve HTTPS with this PEM certificate; with --http-tls-key"},
    {.name = "http-tls-key", .kind = K_STRING, .check = C_NONEMPTY, FIELD(http_tls_key),
     .metavar = "FILE", .help = "PEM private key of --http-tls-cert"},
    {.name = "webroot", .kind = K_STRING, .check = C_WEBROOT, FIELD(webroot), .metavar = "PATH",
     .help = "serve everything under /PATH/ (behind a proxy); other paths get 404 "
             "(default /)"},
    {.name = "api-cors", .kind = K_STRING, .check = C_TEXT, FIELD(api_cors),
     .metavar = "ORIGIN",
     .help = "send Access-Control-Allow-Origin: ORIGIN on /api/ replies and answer "
             "preflight requests (* for any)"},
    {.name = "ui-label", .kind = K_STRING, .check = C_TEXT, FIELD(ui_label), .metavar = "TEXT",
     .help = "a label shown in the web UI (to tell instances apart)"},
    {.name = "max-send-size", .kind = K_SIZE, FIELD(max_send_size), .min = 1024,
     .max = (uint64_t)1 << 40, .metavar = "SIZE",
     .help = "largest POST /api/v1/send body; k, M, G suffixes (default "
             "max-message-size * 4/3 + 64k)"},

    {.section = "Logging:", .name = "verbose", .short_name = 'v', .kind = K_COUNT,
     FIELD(verbose), .min = 0, .max = 9, .help = "session transcripts on stderr"},
    {.name = "log-format", .kind = K_LOG_FORMAT, FIELD(log_format), .metavar = "text|json",
     .help = "diagnostics as text or one JSON object per line (default text)"},

    {.section = "Program:", .name = "config", .kind = K_CONFIG, .metavar = "FILE",
     .help = "read settings from FILE (\"key = value\" lines; see below)"},
    {.name = "help", .short_name = 'h', .kind = K_HELP, .help = "print this help and exit"},
    {.name = "version", .kind = K_VERSION, .help = "print the version and exit"},

    {.section = "Command options:", .name = "json", .kind = K_FLAG,
     .cmds = CMD(CONFIG_CMD_LIST) | CMD(CONFIG_CMD_SHOW), FIELD(json),
     .help = "list, show: print JSON"},
    {.name = "all", .kind = K_FLAG, .cmds = CMD(CONFIG_CMD_DELETE), FIELD(all),
     .help = "delete: every message"},
    {.name = "to", .kind = K_STRING, .check = C_NONEMPTY, .cmds = CMD(CONFIG_CMD_WAIT),
     FIELD(wait_to), .metavar = "ADDR", .help = "wait: for a recipient containing ADDR"},
    {.name = "subject", .kind = K_STRING, .check = C_NONEMPTY, .cmds = CMD(CONFIG_CMD_WAIT),
     FIELD(wait_subject), .metavar = "TEXT", .help = "wait: for a subject containing TEXT"},
    {.name = "count", .kind = K_NUMBER, .cmds = CMD(CONFIG_CMD_WAIT), FIELD(wait_count),
     .min = 1, .max = 1000000, .metavar = "N", .help = "wait: for N such messages (default 1)"},
    {.name = "timeout", .kind = K_DURATION, .cmds = CMD(CONFIG_CMD_WAIT),
     FIELD(wait_timeout_s), .min = 0, .max = DAY, .metavar = "SECONDS",
     .help = "wait: give up after this long, exit 1 (default 30)"},
};
/* clang-format on */
#define OPT_COUNT (sizeof opts / sizeof opts[0])

static const char *const bare_lf_words[] = {"reject", "normalize", "accept", NULL};
static const char *const log_format_words[] = {"text", "json", NULL};

/* The subcommand words, indexed by config_command. */
static const char *const command_words[] = {
    [CONFIG_CMD_LIST] = "list",     [CONFIG_CMD_SHOW] = "show", [CONFIG_CMD_RAW] = "raw",
    [CONFIG_CMD_DELETE] = "delete", [CONFIG_CMD_WAIT] = "wait",
};
#define COMMAND_WORDS (sizeof command_words / sizeof command_words[0])

typedef struct loader {
    config *c;
    char *err;
    size_t errsize;
    bool touched[OPT_COUNT]; /* by the source being read: its first value of a list or
                                counter replaces what a lower source set */
} loader;

static int loader_fail(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
loader_fail(loader *L, const char *fmt, ...)
{
    va_list ap;

    if (L->errsize == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(L->err, L->errsize, fmt, ap); /* a truncated message is still a message */
    va_end(ap);
    return -1;
}

/* A value as it appears in an error message: bounded, control characters made visible,
   so that a stray escape sequence in a file cannot garble the terminal. */
static const char *
value_show(const char *v, char *buf, size_t size)
{
    size_t n = 0;

    for (; *v && n + 4 < size; v++)
        buf[n++] = ((unsigned char)*v < 32 || *v == 127) ? '?' : *v;
    if (*v && n >= 3) {
        buf[n - 3] = buf[n - 2] = buf[n - 1] = '.';
    }
    buf[n] = '\0';
    return buf;
}

#define SHOW(v) value_show((v), (char[72]){0}, 72)

static int
strings_add(config_strings *l, const char *s)
{
    char *copy = strdup(s);
    char **items;

    if (!copy)
        return -1;
    items = realloc(l->items, (l->count + 1) * sizeof *items);
    if (!items) {
        free(copy);
        return -1;
    }
    items[l->count++] = copy;
    l->items = items;
    return 0;
}

static void
strings_clear(config_strings *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Decimal digits only: strtoull alone would take "-1", " 7" and "0x10". */
static int
parse_digits(const char *s, uint64_t *out, const char **end)
{
    char *e;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    *end = e;
    return 0;
}

static int
mul_check(uint64_t *v, uint64_t by)
{
    if (by != 0 && *v > UINT64_MAX / by)
        return -1;
    *v *= by;
    return 0;
}

/* Sizes are binary, as in most servers' size settings: 10M = 10485760 octets. */
static int
parse_size(const char *s, uint64_t *out)
{
    const char *e;
    uint64_t v;

    if (parse_digits(s, &v, &e) < 0)
        return -1;
    if (*e != '\0') {
        uint64_t by;
        switch (*e) {
        case 'k':
        case 'K':
            by = (uint64_t)1 << 10;
            break;
        case 'm':
        case 'M':
            by = (uint64_t)1 << 20;
            break;
        case 'g':
        case 'G':
            by = (uint64_t)1 << 30;
            break;
        default:
            return -1;
        }
        if (e[1] != '\0' || mul_check(&v, by) < 0)
            return -1;
    }
    *out = v;
    return 0;
}

/* Bare seconds, or a sequence of number+unit: "30d", "1h30m", "45s". */
static int
parse_duration(const char *s, uint64_t *out)
{
    uint64_t total = 0;
    const char *e;
    uint64_t v;

    if (parse_digits(s, &v, &e) < 0)
        return -1;
    if (*e == '\0') {
        *out = v;
        return 0;
    }
    for (;;) {
        uint64_t by;
        switch (*e) {
        case 's':
        case 'S':
            by = 1;
            break;
        case 'm':
        case 'M':
            by = 60;
            break;
        case 'h':
        case 'H':
            by = 3600;
            break;
        case 'd':
        case 'D':
            by = 86400;
            break;
        case 'w':
        case 'W':
            by = 7 * 86400;
            break;
        default:
            return -1;
        }
        if (mul_check(&v, by) < 0 || total > UINT64_MAX - v)
            return -1;
        total += v;
        if (*++e == '\0')
            break;
        if (parse_digits(e, &v, &e) < 0 || *e == '\0')
            return -1;
    }
    *out = total;
    return 0;
}

static int
parse_word(const char *s, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    return -1;
}

static void
field_set_uint(config *c, const opt *o, uint64_t v)
{
    char *p = (char *)c + o->off;

    if (o->size == sizeof(unsigned)) {
        unsigned x = (unsigned)v; /* the range check kept v within unsigned */
        memcpy(p, &x, sizeof x);
    } else if (o->size == sizeof(uint64_t)) {
        uint64_t x = v;
        memcpy(p, &x, sizeof x);
    }
}

/* The largest value the field can hold, so "max-recipients = 5000000000" is out of range
   instead of wrapped. */
static uint64_t
field_max(const opt *o)
{
    uint64_t cap = o->size >= sizeof(uint64_t) ? UINT64_MAX : UINT32_MAX;

    return o->max < cap ? o->max : cap;
}

static int
apply_number(loader *L, const opt *o, const char *v, const char *where)
{
    uint64_t n;
    int bad;

    switch (o->kind) {
    case K_SIZE:
        bad = parse_size(v, &n);
        if (bad)
            return loader_fail(L, "%s: not a size: '%s' (octets, optionally with k, M or G)", where,
                               SHOW(v));
        break;
    case K_DURATION:
        bad = parse_duration(v, &n);
        if (bad)
            return loader_fail(L, "%s: not a duration: '%s' (seconds, or like 30d, 12h, 90m, 45s)",
                               where, SHOW(v));
        break;
    default: {
        const char *e;
        bad = parse_digits(v, &n, &e) < 0 || *e != '\0';
        if (bad)
            return loader_fail(L, "%s: not a number: '%s'", where, SHOW(v));
        break;
    }
    }
    if (n < o->min || n > field_max(o))
        return loader_fail(L, "%s: '%s' is out of range (%llu to %llu)", where, SHOW(v),
                           (unsigned long long)o->min, (unsigned long long)field_max(o));
    field_set_uint(L->c, o, n);
    return 0;
}

/* A host name goes into the greeting and the Received header: printable, no spaces,
   as libsmtpd requires. */
static bool
token_is_ok(const char *s)
{
    if (strlen(s) > 255)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 127)
            return false;
    return true;
}

/* --webroot: it becomes part of every URL and of the page, so only the characters a
   URL path needs unescaped; ".." segments would make prefix stripping ambiguous. */
static bool
webroot_is_ok(const char *s)
{
    if (strlen(s) > 200)
        return false;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/", *p))
            return false;
    for (const char *p = s; (p = strstr(p, "..")); p++)
        if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return false;
    return true;
}

static int
apply_check(loader *L, const opt *o, const char *v, const char *where)
{
    char why[256];

    switch (o->check) {
    case C_NONE:
    case C_NONEMPTY: /* emptiness is refused for every kind in opt_apply */
        return 0;
    case C_TOKEN:
        if (!token_is_ok(v))
            return loader_fail(L, "%s: bad host name '%s' (printable, no spaces, at most 255)",
                               where, SHOW(v));
        return 0;
    case C_LISTEN: {
        char *addr = NULL, *port = NULL;
        const char *reason = config_listen_reason(v, &addr, &port);
        free(addr);
        free(port);
        if (reason)
            return loader_fail(L, "%s: bad address '%s': %s", where, SHOW(v), reason);
        return 0;
    }
    case C_HTTP:
        if (strcmp(v, "none") == 0)
            return 0;
        return apply_check(L, &(opt){.check = C_LISTEN}, v, where);
    case C_WEBROOT:
        if (!webroot_is_ok(v))
            return loader_fail(L,
                               "%s: bad path '%s' (letters, digits and - . _ ~ / only, "
                               "no \"..\")",
                               where, SHOW(v));
        return 0;
    case C_TEXT:
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
            if (*p < ' ' || *p == 127)
                return loader_fail(L, "%s: control character in '%s'", where, SHOW(v));
        if (strlen(v) > 200)
            return loader_fail(L, "%s: longer than 200 characters", where);
        return 0;
    case C_EXEC: {
        char **argv = config_split_argv(v, why, sizeof why);
        if (!argv)
            return loader_fail(L, "%s: %s in '%s'", where, why, SHOW(v));
        config_free_argv(argv);
        return 0;
    }
    }
    return 0;
}

static int
apply_string(loader *L, const opt *o, const char *v, const char *where)
{
    char *copy;
    char **field = (char **)((char *)L->c + o->off);
    size_t i = (size_t)(o - opts);

    if (apply_check(L, o, v, where) < 0)
        return -1;
    if (o->kind == K_LIST) {
        config_strings *l = (config_strings *)((char *)L->c + o->off);
        if (!L->touched[i])
            strings_clear(l);
        L->touched[i] = true;
        if (strings_add(l, v) < 0)
            return loader_fail(L, "out of memory");
        return 0;
    }
    copy = strdup(v);
    if (!copy)
        return loader_fail(L, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

/* 1 for yes/true/on/1, 0 for no/false/off/0, -1 for anything else. */
static int
parse_yes_no(const char *v)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(v, yes[i]) == 0)
            return 1;
        if (strcmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* A switch: present on the command line means yes; a file or the environment says
   which ("require-tls = yes", "MAILSINK_REQUIRE_TLS=0"). */
static int
apply_bool(loader *L, const opt *o, const char *v, const char *where)
{
    int yes = v ? parse_yes_no(v) : 1;
    bool b = yes == 1;

    if (yes < 0)
        return loader_fail(L, "%s: '%s' is not yes or no", where, SHOW(v));
    memcpy((char *)L->c + o->off, &b, sizeof b);
    return 0;
}

/* verbose: each -v on the command line counts; a file or the environment says how
   much ("verbose = 1", "MAILSINK_VERBOSE=yes"). */
static int
apply_count(loader *L, const opt *o, const char *v, const char *where)
{
    size_t i = (size_t)(o - opts);
    const char *e;
    uint64_t n;

    if (!L->touched[i])
        L->c->verbose = 0;
    L->touched[i] = true;
    if (!v) {
        if (L->c->verbose < (int)o->max)
            L->c->verbose++;
        return 0;
    }
    int yes = parse_yes_no(v);
    if (yes >= 0)
        n = (uint64_t)yes;
    else if (parse_digits(v, &n, &e) < 0 || *e != '\0' || n > o->max)
        return loader_fail(L, "%s: '%s' is not yes, no or a level 0 to %llu", where, SHOW(v),
                           (unsigned long long)o->max);
    L->c->verbose = (int)n;
    return 0;
}

static int
apply_word(loader *L, const opt *o, const char *v, const char *where)
{
    const char *const *words = o->kind == K_BARE_LF ? bare_lf_words : log_format_words;
    int w = parse_word(v, words);

    if (w < 0)
        return loader_fail(L, "%s: '%s' is not one of %s", where, SHOW(v), o->metavar);
    if (o->kind == K_LOG_FORMAT) {
        L->c->log_format = w == 1 ? CONFIG_LOG_JSON : CONFIG_LOG_TEXT;
        return 0;
    }
    return apply_string(L, o, words[w], where);
}

/* Set one option from one source. v is NULL only for argv flags without a value. */
static int
opt_apply(loader *L, const opt *o, const char *v, const char *where)
{
    if (v && *v == '\0')
        return loader_fail(L, "%s: empty value", where);
    switch (o->kind) {
    case K_STRING:
    case K_LIST:
        return apply_string(L, o, v, where);
    case K_NUMBER:
    case K_SIZE:
    case K_DURATION:
        return apply_number(L, o, v, where);
    case K_BARE_LF:
    case K_LOG_FORMAT:
        return apply_word(L, o, v, where);
    case K_COUNT:
        return apply_count(L, o, v, where);
    case K_BOOL:
        return apply_bool(L, o, v, where);
    case K_FLAG: {
        bool yes = true;
        memcpy((char *)L->c + o->off, &yes, sizeof yes);
        return 0;
    }
    case K_CONFIG: /* read before everything else (config_load) */
    case K_HELP:
    case K_VERSION:
        return 0;
    }
    return 0;
}

static bool
opt_takes_value(const opt *o)
{
    switch (o->kind) {
    case K_COUNT:
    case K_FLAG:
    case K_BOOL:
    case K_HELP:
    case K_VERSION:
        return false;
    case K_STRING:
    case K_LIST:
    case K_NUMBER:
    case K_SIZE:
    case K_DURATION:
    case K_BARE_LF:
    case K_LOG_FORMAT:
    case K_CONFIG:
        return true;
    }
    return true;
}

/* A setting can come from a file or the environment; a subcommand's flag, --config,
   --help and --version only from argv. */
static bool
opt_is_setting(const opt *o)
{
    return o->cmds == 0 && o->kind != K_CONFIG && o->kind != K_HELP && o->kind != K_VERSION;
}

static const opt *
opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* ---- the config file ------------------------------------------------------------- */

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int
file_line(loader *L, const char *path, unsigned lineno, char *line)
{
    char *s = trim(line), *eq, *key, *value;
    const opt *o;
    char where[512];

    if (*s == '\0' || *s == '#')
        return 0;
    eq = strchr(s, '=');
    if (!eq)
        return loader_fail(L, "config file %s: line %u: expected 'key = value', got '%s'", path,
                           lineno, SHOW(s));
    *eq = '\0';
    key = trim(s);
    value = trim(eq + 1);
    o = opt_find(key, strlen(key));
    if (o && o->kind == K_CONFIG)
        return loader_fail(L, "config file %s: line %u: 'config' cannot be set in a config file",
                           path, lineno);
    if (!o || !opt_is_setting(o))
        return loader_fail(L, "config file %s: line %u: unknown key '%s'", path, lineno, SHOW(key));
    snprintf(where, sizeof where, "config file %s: line %u: %s", path, lineno, key);
    return opt_apply(L, o, value, where);
}

static int
file_load(loader *L, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    if (!f)
        return loader_fail(L, "config file %s: %s", path, strerror(errno));
    memset(L->touched, 0, sizeof L->touched);
    errno = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (file_line(L, path, ++lineno, line) < 0) {
            rc = -1;
            goto out;
        }
        errno = 0;
    }
    if (ferror(f))
        rc = loader_fail(L, "config file %s: %s", path, strerror(errno ? errno : EIO));
out:
    free(line);
    fclose(f);
    return rc;
}

/* ---- the environment --------------------------------------------------------------- */

static const char *
env_get(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* MAILSINK_MAX_MESSAGE_SIZE for max-message-size. */
static void
env_name(const opt *o, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "MAILSINK_");

    for (const char *p = o->name; *p && n + 1 < size; p++)
        buf[n++] = *p == '-' ? '_' : (char)(*p - ('a' <= *p && *p <= 'z' ? 'a' - 'A' : 0));
    buf[n] = '\0';
}

/* Repeatable settings take a comma-separated list in one variable. */
static int
env_apply_list(loader *L, const opt *o, const char *v, const char *name)
{
    char *copy = strdup(v), *p, *next;
    int rc = 0;

    if (!copy)
        return loader_fail(L, "out of memory");
    for (p = copy; p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        p = trim(p);
        if (*p && (rc = opt_apply(L, o, p, name)) < 0)
            break;
    }
    free(copy);
    return rc;
}

/* Unknown MAILSINK_* variables are ignored: the exec hooks' own MAILSINK_SENDER and
   friends are in the environment of any mailsink a hook program runs. An empty variable
   counts as unset, as shells make it easy to export one by accident. */
static int
env_load(loader *L, char **envp)
{
    char name[64];

    memset(L->touched, 0, sizeof L->touched);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const opt *o = &opts[i];
        const char *v;

        if (!opt_is_setting(o))
            continue;
        env_name(o, name, sizeof name);
        v = env_get(envp, name);
        if (!v || !*v)
            continue;
        int rc = o->kind == K_LIST ? env_apply_list(L, o, v, name) : opt_apply(L, o, v, name);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- the command line -------------------------------------------------------------- */

typedef struct cmd_item {
    const opt *o;
    const char *value; /* NULL for flags without a value */
} cmd_item;

typedef struct cmdline {
    cmd_item *items;
    size_t n, cap;
    const char **pos; /* the subcommand's arguments */
    size_t npos;
    config_command cmd;
    const char *config_path;
    bool stop; /* --help or --version: nothing else matters */
} cmdline;

static int
cmdline_item(loader *L, cmdline *cl, const opt *o, const char *value)
{
    if (o->kind == K_HELP || o->kind == K_VERSION) {
        cl->cmd = o->kind == K_HELP ? CONFIG_CMD_HELP : CONFIG_CMD_VERSION;
        cl->stop = true;
        return 0;
    }
    if (o->kind == K_CONFIG) {
        if (*value == '\0')
            return loader_fail(L, "--config: empty value");
        cl->config_path = value;
    }
    if (cl->n == cl->cap) {
        /* "-vvv" is one argument but three items, so argc is no bound */
        size_t cap = cl->cap ? 2 * cl->cap : 16;
        cmd_item *items = realloc(cl->items, cap * sizeof *items);
        if (!items)
            return loader_fail(L, "out of memory");
        cl->items = items;
        cl->cap = cap;
    }
    cl->items[cl->n].o = o;
    cl->items[cl->n].value = value;
    cl->n++;
    return 0;
}

static int
cmdline_positional(loader *L, cmdline *cl, const char *a)
{
    if (cl->cmd == CONFIG_CMD_SERVE) {
        for (size_t w = 0; w < COMMAND_WORDS; w++)
            if (command_words[w] && strcmp(a, command_words[w]) == 0) {
                cl->cmd = (config_command)w;
                return 0;
            }
        return loader_fail(L, "unknown command '%s' (expected list, show, raw, delete or wait)",
                           SHOW(a));
    }
    cl->pos[cl->npos++] = a;
    return 0;
}

/* "--name value" or "--name=value"; *i advances past a separate value. */
static int
cmdline_long(loader *L, cmdline *cl, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '='), *value = NULL;
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const opt *o = opt_find(name, len);

    if (!o)
        return loader_fail(L, "unknown flag --%.*s (see --help)", (int)(len > 64 ? 64 : len), name);
    if (opt_takes_value(o)) {
        if (eq)
            value = eq + 1;
        else if (*i + 1 < argc)
            value = argv[++*i];
        else
            return loader_fail(L, "--%s needs a value (%s)", o->name, o->metavar);
    } else if (eq) {
        return loader_fail(L, "--%s takes no value", o->name);
    }
    return cmdline_item(L, cl, o, value);
}

/* "-v", "-vv", "-h": none of the short flags takes a value. */
static int
cmdline_short(loader *L, cmdline *cl, const char *a)
{
    for (const char *p = a + 1; *p && !cl->stop; p++) {
        const opt *o = NULL;
        for (size_t k = 0; k < OPT_COUNT && !o; k++)
            if (opts[k].short_name == *p)
                o = &opts[k];
        if (!o)
            return loader_fail(L, "unknown flag -%c (see --help)", *p);
        if (cmdline_item(L, cl, o, NULL) < 0)
            return -1;
    }
    return 0;
}

static void
cmds_names(unsigned mask, char *buf, size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t w = 0; w < COMMAND_WORDS; w++) {
        if (!command_words[w] || !(mask & CMD(w)))
            continue;
        int k = snprintf(buf + n, size - n, "%s%s", n ? " or " : "", command_words[w]);
        if (k < 0 || (size_t)k >= size - n)
            return;
        n += (size_t)k;
    }
}

/* Read argv's shape: which options with which values, which subcommand and its
   arguments. GNU style: options may come before or after the subcommand; "--" ends
   them. */
static int
cmdline_parse(loader *L, cmdline *cl, int argc, char **argv)
{
    bool only_pos = false;
    char names[64];

    cl->pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *cl->pos);
    if (!cl->pos)
        return loader_fail(L, "out of memory");
    for (int i = 1; i < argc && !cl->stop; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (only_pos || a[0] != '-' || a[1] == '\0')
            rc = cmdline_positional(L, cl, a);
        else if (strcmp(a, "--") == 0)
            only_pos = true;
        else if (a[1] == '-')
            rc = cmdline_long(L, cl, argc, argv, &i);
        else
            rc = cmdline_short(L, cl, a);
        if (rc < 0)
            return -1;
    }
    if (cl->stop)
        return 0;
    for (size_t k = 0; k < cl->n; k++) {
        const opt *o = cl->items[k].o;
        if (o->cmds && !(o->cmds & CMD(cl->cmd))) {
            cmds_names(o->cmds, names, sizeof names);
            return loader_fail(L, "--%s only goes with %s", o->name, names);
        }
    }
    return 0;
}

static int
cmdline_apply(loader *L, const cmdline *cl)
{
    char where[80];

    memset(L->touched, 0, sizeof L->touched);
    for (size_t k = 0; k < cl->n; k++) {
        snprintf(where, sizeof where, "--%s", cl->items[k].o->name);
        if (opt_apply(L, cl->items[k].o, cl->items[k].value, where) < 0)
            return -1;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------------- */

static void
config_defaults(config *c)
{
    c->max_message_size = 10240000;
    c->max_recipients = 100;
    c->max_connections = 1000;
    c->max_buffered_data = (size_t)256 << 20;
    c->max_queued_data = (size_t)512 << 20;
    c->command_timeout_s = 300; /* RFC 5321 4.5.3.2.7 */
    c->data_timeout_s = 180;    /* RFC 5321 4.5.3.2.5 */
    c->stop_grace_s = 10;
    c->exec_timeout_s = 30;
    c->log_format = CONFIG_LOG_TEXT;
    c->wait_count = 1;
    c->wait_timeout_s = 30;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
str_printf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(s = malloc((size_t)n + 1)))
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* XDG Base Directory: XDG_DATA_HOME counts only when absolute. */
static int
default_db_path(loader *L, char **envp)
{
    const char *xdg = env_get(envp, "XDG_DATA_HOME");
    const char *home = env_get(envp, "HOME");

    if (xdg && xdg[0] == '/')
        L->c->db_path = str_printf("%s/mailsink/mailsink.db", xdg);
    else if (home && home[0] == '/')
        L->c->db_path = str_printf("%s/.local/share/mailsink/mailsink.db", home);
    else
        return loader_fail(L, "no place for the database: neither XDG_DATA_HOME nor HOME is "
                              "an absolute path (use --db PATH)");
    return L->c->db_path ? 0 : loader_fail(L, "out of memory");
}

/* What the subcommand needs, once every source is in. */
static int
arity_check(loader *L, const cmdline *cl)
{
    config *c = L->c;
    const char *word =
        cl->cmd < COMMAND_WORDS && command_words[cl->cmd] ? command_words[cl->cmd] : "mailsink";
    size_t want_max = 0;

    switch (cl->cmd) {
    case CONFIG_CMD_SHOW:
    case CONFIG_CMD_RAW:
        if (cl->npos == 0)
            return loader_fail(L, "%s: needs a message ID", word);
        want_max = 1;
        break;
    case CONFIG_CMD_DELETE:
        if (cl->npos == 0 && !c->all)
            return loader_fail(L, "delete: needs a message ID or --all");
        if (cl->npos > 0 && c->all)
            return loader_fail(L, "delete: give a message ID or --all, not both");
        want_max = 1;
        break;
    case CONFIG_CMD_LIST:
        want_max = 1;
        break;
    case CONFIG_CMD_SERVE:
    case CONFIG_CMD_WAIT:
    case CONFIG_CMD_HELP:
    case CONFIG_CMD_VERSION:
        break;
    }
    if (cl->npos > want_max)
        return loader_fail(L, "%s: unexpected argument '%s'%s", word, SHOW(cl->pos[want_max]),
                           cl->cmd == CONFIG_CMD_LIST ? " (quote a QUERY of several words)" : "");
    if (cl->npos > 0 && !(c->arg = strdup(cl->pos[0])))
        return loader_fail(L, "out of memory");
    return 0;
}

/* A file the server will read at start-up: checked now, so that a typo is a
   configuration error (exit 2) rather than a failure once the listeners are up. */
static int
file_check_readable(loader *L, const char *flag, const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return loader_fail(L, "%s: cannot read %s: %s", flag, path, strerror(errno));
    int e = fstat(fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    close(fd);
    if (e)
        return loader_fail(L, "%s: cannot read %s: %s", flag, path, strerror(e));
    return 0;
}

#define TLS_HOW "give --tls-cert and --tls-key, or --tls-self-signed"

/* The TLS and AUTH settings that only make sense together, once every source is in.
   Their files are checked only for the server: the subcommands never read them. */
static int
tls_auth_check(loader *L, const cmdline *cl)
{
    const config *c = L->c;
    bool tls = c->tls_cert || c->tls_self_signed;

    if (c->tls_cert && !c->tls_key)
        return loader_fail(L, "--tls-cert needs --tls-key");
    if (c->tls_key && !c->tls_cert)
        return loader_fail(L, "--tls-key needs --tls-cert");
    if (c->tls_self_signed && c->tls_cert)
        return loader_fail(L, "--tls-self-signed conflicts with --tls-cert (use one or the other)");
    if (c->smtps.count > 0 && !tls)
        return loader_fail(L, "--smtps needs a certificate: " TLS_HOW);
    if (c->require_tls && !tls)
        return loader_fail(L, "--require-tls needs a certificate: " TLS_HOW);
    if (c->auth_accept_any && c->auth_file)
        return loader_fail(L, "--auth-file conflicts with --auth-accept-any (use one or the "
                              "other)");
    if (c->auth_required && !c->auth_accept_any && !c->auth_file)
        return loader_fail(L, "--auth-required needs --auth-accept-any or --auth-file");
    if (cl->cmd != CONFIG_CMD_SERVE)
        return 0;
    if (c->tls_cert && (file_check_readable(L, "--tls-cert", c->tls_cert) < 0 ||
                        file_check_readable(L, "--tls-key", c->tls_key) < 0))
        return -1;
    if (c->auth_file && file_check_readable(L, "--auth-file", c->auth_file) < 0)
        return -1;
    return 0;
}

/* "x", "/x", "x/", "//x//y/" all become "/x/" or "/x/y/": the router compares
   prefixes, so one spelling. */
static char *
webroot_normalise(const char *v)
{
    size_t n = strlen(v);
    char *out = malloc(n + 3), *o = out;

    if (!out)
        return NULL;
    *o++ = '/';
    for (const char *p = v; *p; p++)
        if (*p != '/' || o[-1] != '/')
            *o++ = *p;
    if (o[-1] != '/')
        *o++ = '/';
    *o = '\0';
    return out;
}

/* The HTTP settings that depend on each other or on other settings. */
static int
http_check(loader *L, const cmdline *cl)
{
    config *c = L->c;

    if (c->http_tls_cert && !c->http_tls_key)
        return loader_fail(L, "--http-tls-cert needs --http-tls-key");
    if (c->http_tls_key && !c->http_tls_cert)
        return loader_fail(L, "--http-tls-key needs --http-tls-cert");
    if (!c->http && !(c->http = strdup("127.0.0.1:8025")))
        return loader_fail(L, "out of memory");
    char *root = webroot_normalise(c->webroot ? c->webroot : "/");
    if (!root)
        return loader_fail(L, "out of memory");
    free(c->webroot);
    c->webroot = root;
    if (c->max_send_size == 0) {
        uint64_t m = (uint64_t)c->max_message_size;
        c->max_send_size = (size_t)(m / 3 * 4 + 4 + ((uint64_t)64 << 10));
    }
    if (cl->cmd != CONFIG_CMD_SERVE || strcmp(c->http, "none") == 0)
        return 0;
    if (c->http_tls_cert && (file_check_readable(L, "--http-tls-cert", c->http_tls_cert) < 0 ||
                             file_check_readable(L, "--http-tls-key", c->http_tls_key) < 0))
        return -1;
    if (c->http_auth_file && file_check_readable(L, "--http-auth-file", c->http_auth_file) < 0)
        return -1;
    return 0;
}

static int
config_finish(loader *L, const cmdline *cl, char **envp)
{
    config *c = L->c;

    if (tls_auth_check(L, cl) < 0 || http_check(L, cl) < 0)
        return -1;

    if (c->smtp.count == 0 && strings_add(&c->smtp, "127.0.0.1:1025") < 0)
        return loader_fail(L, "out of memory");
    if (!c->bare_lf && !(c->bare_lf = strdup("reject")))
        return loader_fail(L, "out of memory");
    if (!c->db_path && default_db_path(L, envp) < 0)
        return -1;
    return arity_check(L, cl);
}

int
config_load(config *c, int argc, char **argv, char **envp, char *err, size_t errsize)
{
    loader L = {.c = c, .err = err, .errsize = errsize};
    cmdline cl = {0};
    const char *path;
    int rc = -1;

    memset(c, 0, sizeof *c);
    if (errsize)
        err[0] = '\0';
    if (cmdline_parse(&L, &cl, argc, argv) < 0)
        goto out;
    c->command = cl.cmd;
    if (cl.stop) {
        rc = 0;
        goto out;
    }
    config_defaults(c);
    path = cl.config_path ? cl.config_path : env_get(envp, "MAILSINK_CONFIG");
    if (path && *path) {
        if (!(c->config_file = strdup(path))) {
            loader_fail(&L, "out of memory");
            goto out;
        }
        if (file_load(&L, path) < 0)
            goto out;
    }
    if (env_load(&L, envp) < 0 || cmdline_apply(&L, &cl) < 0 || config_finish(&L, &cl, envp) < 0)
        goto out;
    rc = 0;
out:
    free(cl.items);
    free(cl.pos);
    if (rc < 0) {
        config_cleanup(c);
        c->command = CONFIG_CMD_SERVE;
    }
    return rc;
}

void
config_cleanup(config *c)
{
    if (!c)
        return;
    char **strings[] = {&c->db_path,
                        &c->hostname,
                        &c->bare_lf,
                        &c->deliver_exec,
                        &c->validate_host_exec,
                        &c->validate_sender_exec,
                        &c->validate_recipient_exec,
                        &c->maildir,
                        &c->mbox,
                        &c->eml_dir,
                        &c->config_file,
                        &c->arg,
                        &c->wait_to,
                        &c->wait_subject,
                        &c->tls_cert,
                        &c->tls_key,
                        &c->auth_file,
                        &c->http,
                        &c->http_auth_file,
                        &c->http_tls_cert,
                        &c->http_tls_key,
                        &c->webroot,
                        &c->api_cors,
                        &c->ui_label};
    config_strings *lists[] = {&c->smtp,          &c->accept_rcpt,   &c->reject_rcpt,
                               &c->accept_sender, &c->reject_sender, &c->allow_host,
                               &c->deny_host,     &c->smtps};

    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        strings_clear(lists[i]);
}

/* ---- --help ------------------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t size, len;
    size_t col;
} text;

static void
text_put(text *t, const char *s, size_t n)
{
    if (t->len + n >= t->size)
        n = t->len + 1 < t->size ? t->size - t->len - 1 : 0; /* cut; the buffer is sized
                                                                 for the table */
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    for (size_t i = 0; i < n; i++)
        t->col = s[i] == '\n' ? 0 : t->col + 1;
}

/* Word-wrap s at 79 columns, continuation lines indented to `indent`. */
static void
text_wrap(text *t, const char *s, size_t indent)
{
    static const char spaces[] = "                                        ";

    while (*s) {
        size_t w = strcspn(s, " ");
        if (t->col > indent && t->col + 1 + w > 79) {
            text_put(t, "\n", 1);
            text_put(t, spaces, indent < sizeof spaces - 1 ? indent : sizeof spaces - 1);
        } else if (t->col > indent) {
            text_put(t, " ", 1);
        }
        text_put(t, s, w);
        s += w;
        while (*s == ' ')
            s++;
    }
    text_put(t, "\n", 1);
}

static void
usage_option(text *t, const opt *o)
{
    char left[80];
    static const char spaces[] = "                                        ";
    const size_t indent = 32;

    if (o->section) {
        text_put(t, "\n", 1);
        text_wrap(t, o->section, 2);
    }
    if (o->short_name)
        snprintf(left, sizeof left, "  -%c, --%s%s%s", o->short_name, o->name,
                 o->metavar ? " " : "", o->metavar ? o->metavar : "");
    else
        snprintf(left, sizeof left, "      --%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
    text_put(t, left, strlen(left));
    if (t->col + 2 > indent) {
        text_put(t, "\n", 1);
        text_put(t, spaces, indent);
    } else {
        text_put(t, spaces, indent - t->col);
    }
    text_wrap(t, o->help, indent);
}

static void
usage_build(text *t)
{
    static const char head[] =
        "Usage: mailsink [OPTION]...                  run the SMTP server\n"
        "       mailsink [OPTION]... COMMAND [ARG]... look at the stored mail\n"
        "\n"
        "Catches mail for testing software: listens for SMTP, stores every message in\n"
        "SQLite and acknowledges it only once stored.\n"
        "\n"
        "Commands:\n"
        "  list [--json] [QUERY]    messages, newest first; QUERY searches the text\n"
        "  show [--json] ID         one message's envelope, headers and findings\n"
        "  raw ID                   the message exactly as stored\n"
        "  delete ID | --all        delete one message or all\n"
        "  wait [--to ADDR] [--subject TEXT] [--count N] [--timeout SECONDS]\n"
        "                           until matching mail is stored (exit 0) or time is up\n"
        "                           (exit 1)\n";

    text_put(t, head, sizeof head - 1);
    for (size_t i = 0; i < OPT_COUNT; i++)
        usage_option(t, &opts[i]);
    text_put(t, "\n", 1);
    text_wrap(t,
              "Every setting can also come from the environment as MAILSINK_ and its name in "
              "upper case with _ for - (MAILSINK_MAX_AGE=30d; repeatable ones "
              "comma-separated), or from the --config file (or MAILSINK_CONFIG) as "
              "\"name = value\" lines (max-age = 30d; repeat the line for repeatable ones). "
              "The command line wins over the environment, which wins over the file.",
              0);
    text_put(t, "\n", 1);
    text_wrap(t,
              "Exit status: 0 success, 1 runtime error, message not found or wait timed out, "
              "2 bad configuration. See mailsink(1).",
              0);
}

/* Built on the first call (main calls it once, from one thread); the text is long
   enough that ISO C does not promise to compile it as one literal. */
const char *
config_usage(void)
{
    static char buf[16384];
    text t = {.buf = buf, .size = sizeof buf};

    if (!buf[0])
        usage_build(&t);
    return buf;
}
