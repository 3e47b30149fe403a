/*
 * words.h - internal to cli/: the listen-address check that config.c's validation and
 * config_parse_listen share. See words.c.
 */
#ifndef MAILSINK_CLI_WORDS_H
#define MAILSINK_CLI_WORDS_H

/* NULL when s is a good ADDR:PORT / [V6]:PORT (then *addr and *port are malloc'd), else
   why not ("missing port (use ADDR:PORT)"). */
const char *config_listen_reason(const char *s, char **addr, char **port);

#endif
