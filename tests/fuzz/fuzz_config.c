/*
 * fuzz_config.c - the --config file parser (src/mailsink/cli/config.c: "key = value"
 * lines, comments, repeated list keys, every value syntax: sizes, durations, counts,
 * words, listen addresses, booleans) fed arbitrary file contents.
 *
 * Input layout: [0] which command line goes with the file (bits 0-1: none, a subcommand
 * "list", a flag overriding a file key, the file named by MAILSINK_CONFIG instead of
 * --config), then the file's bytes. The file is a memfd (no disk, no temporary file to
 * clean up), named to config_load as /proc/self/fd/N.
 *
 * Invariants: config_load returns 0 (defaults filled, no message) or -1 with one
 * non-empty message; config_cleanup frees everything (LeakSanitizer); a file that
 * parsed parses again to the same settings (the parser keeps no state between loads).
 */
#define _GNU_SOURCE
#include "mailsink/cli/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_check.h"

static int memfd = -1;
static char path[64];

static int
load(config *c, uint8_t mode, char *err, size_t errsize)
{
    char flag[96];
    snprintf(flag, sizeof flag, "--config=%s", path);
    char env_cfg[96];
    snprintf(env_cfg, sizeof env_cfg, "MAILSINK_CONFIG=%s", path);
    char *envp[3] = {"HOME=/nonexistent", NULL, NULL};
    char *argv[6] = {"mailsink", NULL};
    int argc = 1;
    switch (mode & 3) {
    case 0:
        argv[argc++] = flag;
        break;
    case 1:
        argv[argc++] = flag;
        argv[argc++] = "list";
        argv[argc++] = "--json";
        break;
    case 2:
        argv[argc++] = "--max-recipients=7";
        argv[argc++] = "--config";
        argv[argc++] = path;
        break;
    default:
        envp[1] = env_cfg;
        break;
    }
    argv[argc] = NULL;
    return config_load(c, argc, argv, envp, err, errsize);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    if (memfd < 0) {
        memfd = memfd_create("fuzz_config", 0);
        CHECK(memfd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    }
    CHECK(ftruncate(memfd, 0) == 0);
    CHECK(pwrite(memfd, data + 1, size - 1, 0) == (ssize_t)(size - 1));

    config c, again;
    char err[512], err2[512];
    int rc = load(&c, data[0], err, sizeof err);
    if (rc == 0) {
        CHECK(err[0] == '\0');
        CHECK(c.smtp.count >= 1 && c.bare_lf && c.db_path);
        if ((data[0] & 3) == 2)
            CHECK(c.max_recipients == 7); /* the command line wins over the file */
        CHECK(load(&again, data[0], err2, sizeof err2) == 0);
        CHECK(again.smtp.count == c.smtp.count && again.max_message_size == c.max_message_size &&
              again.max_recipients == c.max_recipients && again.max_age_s == c.max_age_s &&
              strcmp(again.bare_lf, c.bare_lf) == 0 && strcmp(again.db_path, c.db_path) == 0);
        for (size_t i = 0; i < c.smtp.count; i++)
            CHECK(strcmp(c.smtp.items[i], again.smtp.items[i]) == 0);
        config_cleanup(&again);
    } else {
        CHECK(rc == -1 && err[0] != '\0');
        CHECK(strchr(err, '\n') == NULL); /* one line: a file's lines never carry one */
    }
    config_cleanup(&c);
    return 0;
}
