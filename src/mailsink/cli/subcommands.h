/*
 * subcommands.h - the commands test scripts run against the database while the server
 * runs (or after): list, show, raw, delete and wait. Each opens its own reader handle on
 * the store (store.h), prints to stdout, reports problems on stderr ("mailsink: ...")
 * and returns the process exit status. Main thread only.
 */
#ifndef MAILSINK_SUBCOMMANDS_H
#define MAILSINK_SUBCOMMANDS_H

#include "mailsink/cli/config.h"

/*
 * Run c->command (CONFIG_CMD_LIST, _SHOW, _RAW, _DELETE or _WAIT) with the settings of c
 * (db_path, json, all, arg, wait_*). Returns the exit status: 0 success; 1 no database,
 * no such message, a store error or wait timed out; 2 a configuration that cannot work
 * (--db :memory:, or a command that is not a subcommand).
 */
int subcommands_run(const config *c);

#endif
