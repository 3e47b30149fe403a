/*
 * app.h - what the running mailsink server is made of, shared by main.c (which builds
 * and tears it down) and hooks.c (libsmtpd's hooks: the rules, the exec hooks and the
 * hand-over to the store writer). Read-only while the server runs.
 */
#ifndef MAILSINK_APP_H
#define MAILSINK_APP_H

#include "mailsink/auth_file.h"
#include "mailsink/cli/config.h"
#include "mailsink/exec.h"
#include "mailsink/ingest.h"
#include "mailsink/policy.h"

#include <smtpd.h>

typedef struct app {
    const config *cfg;
    policy *policy;
    exec_pool *exec; /* NULL when no exec hook is configured */
    ingest *ingest;
    char **deliver_argv; /* split --deliver-exec, or NULL */
    char **host_argv;    /* --validate-host-exec */
    char **sender_argv;  /* --validate-sender-exec */
    char **rcpt_argv;    /* --validate-recipient-exec */
    auth_file *auth;     /* --auth-file, or NULL */
} app;

/* Fill h with mailsink's hooks for the configuration; they expect the app as user
   pointer. */
void app_hooks(smtpd_hooks *h, const config *c);

#endif
