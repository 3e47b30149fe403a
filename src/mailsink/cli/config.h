/*
 * config.h - mailsink's configuration: every setting a user can make, with its default,
 * read from (lowest to highest precedence) built-in defaults, a config file
 * (--config FILE, "key = value" lines), MAILSINK_* environment variables and the command
 * line. The key of a setting is its long flag without the dashes ("max-message-size");
 * its environment variable is MAILSINK_ plus the key in upper case with '_' for '-'
 * (MAILSINK_MAX_MESSAGE_SIZE). Repeatable settings (smtp, accept-rcpt, ...) take a
 * comma-separated list in the environment and repeat in the file.
 *
 * Owned by main; read-only once loaded. Strings are owned by the config
 * (config_cleanup frees them).
 */
#ifndef MAILSINK_CONFIG_H
#define MAILSINK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct config_strings {
    char **items;
    size_t count;
} config_strings;

typedef enum config_log_format { CONFIG_LOG_TEXT = 0, CONFIG_LOG_JSON } config_log_format;

/* What the command line asked for. */
typedef enum config_command {
    CONFIG_CMD_SERVE = 0, /* no subcommand: run the server */
    CONFIG_CMD_LIST,      /* mailsink list [--json] [QUERY] */
    CONFIG_CMD_SHOW,      /* mailsink show ID */
    CONFIG_CMD_RAW,       /* mailsink raw ID */
    CONFIG_CMD_DELETE,    /* mailsink delete ID | --all */
    CONFIG_CMD_WAIT,      /* mailsink wait [--to ADDR] [--subject TEXT] [--count N]
                             [--timeout SECONDS] */
    CONFIG_CMD_HELP,      /* --help: usage printed, exit 0 */
    CONFIG_CMD_VERSION    /* --version */
} config_command;

typedef struct config {
    config_command command;

    /* listeners: "ADDR:PORT", "[v6]:PORT"; default one, 127.0.0.1:1025 */
    config_strings smtp;             /* --smtp (repeatable) */
    char *db_path;                   /* --db; default $XDG_DATA_HOME/mailsink/mailsink.db
                                        (fallback ~/.local/share/...); ":memory:" = none */
    char *hostname;                  /* --hostname; NULL = the library's default */
    size_t max_message_size;         /* --max-message-size; 10240000 (accepts k/M/G suffix) */
    unsigned max_recipients;         /* --max-recipients; 100 */
    unsigned max_connections;        /* --max-connections; 1000 (libsmtpd's max-sessions) */
    unsigned max_connections_per_ip; /* --max-connections-per-ip; 0 = as max_connections
                                        (a catcher's clients mostly share 127.0.0.1) */
    size_t max_buffered_data;        /* --max-buffered-data; 256M (libsmtpd's option) */
    size_t max_queued_data;          /* --max-queued-data; 512M: accepted messages waiting
                                        for the store writer (ingest's queue cap) */
    uint64_t max_messages;           /* --max-messages; 0 = keep all */
    uint64_t max_age_s;              /* --max-age DURATION ("30d", "12h", "90m", "3600s",
                                        or seconds); 0 = keep all */
    unsigned command_timeout_s;      /* --command-timeout SECONDS; 300 */
    unsigned data_timeout_s;         /* --data-timeout SECONDS; 180 */
    unsigned stop_grace_s;           /* --stop-grace SECONDS; 10 */
    char *bare_lf;                   /* --bare-lf reject|normalize|accept; "reject" */
    int verbose;                     /* -v: session transcripts to stderr */
    config_log_format log_format;    /* --log-format text|json; text */

    /* the seed's hooks as programs (no shell; argv split by config_split_argv) */
    char *deliver_exec;            /* --deliver-exec CMD */
    char *validate_host_exec;      /* --validate-host-exec CMD */
    char *validate_sender_exec;    /* --validate-sender-exec CMD */
    char *validate_recipient_exec; /* --validate-recipient-exec CMD */
    unsigned exec_timeout_s;       /* --exec-timeout SECONDS; 30 */

    /* built-in rules (globs, case-insensitive; CIDR for hosts) */
    config_strings accept_rcpt, reject_rcpt, accept_sender, reject_sender;
    config_strings allow_host, deny_host;

    /* exports beside the database */
    char *maildir; /* --maildir DIR */
    char *mbox;    /* --mbox FILE */
    char *eml_dir; /* --eml-dir DIR */

    /* TLS and AUTH */
    config_strings smtps;     /* --smtps ADDR:PORT (repeatable): implicit TLS listeners;
                                 none by default (1465 in the examples) */
    char *tls_cert;           /* --tls-cert FILE (PEM, chain allowed) */
    char *tls_key;            /* --tls-key FILE (PEM) */
    bool tls_self_signed;     /* --tls-self-signed: make (once) and use a key and
                                 certificate for the hostname, kept in the data directory */
    bool require_tls;         /* --require-tls: MAIL before STARTTLS gets 530 */
    bool allow_insecure_auth; /* --allow-insecure-auth: AUTH without TLS */
    bool auth_accept_any;     /* --auth-accept-any: any user and password, recorded */
    char *auth_file;          /* --auth-file FILE: "user:password" lines ({SHA256} too) */
    bool auth_required;       /* --auth-required: MAIL without AUTH gets 530 */

    /* HTTP: REST API, live events, web UI */
    char *http;           /* --http ADDR:PORT; "127.0.0.1:8025"; "none" = off */
    char *http_auth_file; /* --http-auth-file FILE: basic auth, "user:{SHA256}hex" or
                             "user:password" lines (the --auth-file format) */
    char *http_tls_cert;  /* --http-tls-cert FILE (PEM): serve HTTPS */
    char *http_tls_key;   /* --http-tls-key FILE */
    char *webroot;        /* --webroot PATH: serve under /PATH/ behind a proxy; "/" */
    char *api_cors;       /* --api-cors ORIGIN: Access-Control-Allow-Origin; NULL = none */
    char *ui_label;       /* --ui-label TEXT: WebUIConfiguration.Label; NULL = none */
    size_t max_send_size; /* --max-send-size: POST /api/v1/send body cap (413 beyond);
                             defaults to max-message-size * 4/3 + 64 KiB (base64) */

    char *config_file; /* --config FILE */

    /* subcommand arguments */
    bool json;               /* list --json, show --json */
    bool all;                /* delete --all */
    char *arg;               /* the ID (show/raw/delete) or QUERY (list) */
    char *wait_to;           /* wait --to */
    char *wait_subject;      /* wait --subject */
    unsigned wait_count;     /* wait --count; 1 */
    unsigned wait_timeout_s; /* wait --timeout; 30 */
} config;

/*
 * Fill c from defaults, the config file, the environment (envp: NULL-terminated
 * "NAME=value" strings, normally `environ`) and argv. On error returns -1 with one clear
 * message naming the problem in err ("unknown flag --foo", "--max-recipients: not a
 * number: 'x'", "config file /x: line 3: unknown key 'foo'"); main prints it and exits 2.
 */
int config_load(config *c, int argc, char **argv, char **envp, char *err, size_t errsize);
void config_cleanup(config *c);

/* The usage text for --help. */
const char *config_usage(void);

/*
 * Split a command string into argv like a shell would split words, without any shell:
 * whitespace separates, single and double quotes group, backslash escapes; no
 * expansion of any kind ($, `, *, ~ are literal). Returns a NULL-terminated array
 * (free with config_free_argv) or NULL with a message in err.
 */
char **config_split_argv(const char *cmd, char *err, size_t errsize);
void config_free_argv(char **argv);

/* Parse "ADDR:PORT" / "[V6]:PORT" into freshly allocated addr and port. -1 on error. */
int config_parse_listen(const char *s, char **addr, char **port);

#endif
