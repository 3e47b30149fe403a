/*
 * fuzz_cli.c - mailsink's command line (src/mailsink/cli/config.c, cli/words.c):
 * config_load with arbitrary argv and MAILSINK_* environment, then the word splitter
 * and listen-address parser on what it accepted (as main does with --*-exec and
 * --smtp), and on raw input pieces.
 *
 * Input layout: NUL-separated strings. Those before the first empty string are argv[1..]
 * (argv[0] is "mailsink"); those after it are the environment, where a string without
 * '=' gets "MAILSINK_" prefixed and "=" appended to its first ':' (so "PORT:1" becomes
 * MAILSINK_PORT=1), which saves the fuzzer spelling the prefix. HOME=/nonexistent is
 * always set (the default database path; nothing is created by config_load).
 *
 * config_load never exits (it returns -1 with a message); invariants: on success the
 * defaults are filled (a listener, bare-lf, a database path), the message is empty; on
 * failure it is one non-empty line; config_cleanup frees everything (LeakSanitizer).
 */
#include "mailsink/cli/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define MAX_ITEMS 64

static void
split_and_check(const char *cmd)
{
    char err[256];
    char **argv = config_split_argv(cmd, err, sizeof err);
    if (argv) {
        for (char **a = argv; *a; a++)
            CHECK(strlen(*a) <= strlen(cmd));
        config_free_argv(argv);
    } else {
        CHECK(err[0] != '\0');
    }
}

static void
listen_check(const char *s)
{
    char *addr = NULL, *port = NULL;
    if (config_parse_listen(s, &addr, &port) == 0) {
        CHECK(addr && port && *port);
        unsigned long p = strtoul(port, NULL, 10);
        CHECK(p <= 65535);
    }
    free(addr);
    free(port);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';

    char *argv[MAX_ITEMS + 2], *envp[MAX_ITEMS + 2], *owned[MAX_ITEMS];
    int argc = 0, envc = 0, nowned = 0;
    argv[argc++] = "mailsink";
    envp[envc++] = "HOME=/nonexistent";
    bool in_env = false;
    for (char *p = copy; p <= copy + size && argc < MAX_ITEMS && envc < MAX_ITEMS;) {
        size_t len = strlen(p);
        if (len == 0 && !in_env) {
            in_env = true;
        } else if (in_env && len) {
            if (strchr(p, '=')) {
                envp[envc++] = p;
            } else {
                char *e = malloc(len + 10);
                if (!e)
                    break;
                snprintf(e, len + 10, "MAILSINK_%s", p);
                char *colon = strchr(e, ':');
                if (colon)
                    *colon = '=';
                envp[envc++] = owned[nowned++] = e;
            }
        } else if (!in_env) {
            argv[argc++] = p;
        }
        p += len + 1;
    }
    argv[argc] = NULL;
    envp[envc] = NULL;

    config c;
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = config_load(&c, argc, argv, envp, err, sizeof err);
    if (rc == 0) {
        CHECK(err[0] == '\0');
        if (c.command != CONFIG_CMD_HELP && c.command != CONFIG_CMD_VERSION) {
            CHECK(c.smtp.count >= 1 && c.bare_lf && c.db_path);
            for (size_t i = 0; i < c.smtp.count; i++)
                listen_check(c.smtp.items[i]);
            const char *execs[] = {c.deliver_exec, c.validate_host_exec, c.validate_sender_exec,
                                   c.validate_recipient_exec};
            for (size_t i = 0; i < sizeof execs / sizeof execs[0]; i++)
                if (execs[i])
                    split_and_check(execs[i]);
        }
    } else {
        CHECK(rc == -1);
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        /* one line, unless the user's own words carried a newline into it */
        bool newline_given = false;
        for (int i = 0; i < argc; i++)
            newline_given |= strchr(argv[i], '\n') != NULL;
        for (int i = 0; i < envc; i++)
            newline_given |= strchr(envp[i], '\n') != NULL;
        CHECK(newline_given || strchr(err, '\n') == NULL);
    }
    config_cleanup(&c);

    /* the small languages on raw pieces too */
    for (int i = 1; i < argc; i++) {
        split_and_check(argv[i]);
        listen_check(argv[i]);
    }
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    free(copy);
    return 0;
}
