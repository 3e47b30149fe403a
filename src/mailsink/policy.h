/*
 * policy.h - mailsink's built-in rules, for people who don't write programs:
 * --allow-host/--deny-host CIDR, --accept-sender/--reject-sender and
 * --accept-rcpt/--reject-rcpt globs (fnmatch, case-insensitive). A reject rule that
 * matches always wins; when accept rules exist, a value must match one of them.
 * Case folding is ASCII only. The null sender is "" and also matches the pattern "<>".
 * An address that does not parse matches no host rule (so it is refused only when an
 * allow list exists). Read-only after policy_new: any thread.
 */
#ifndef MAILSINK_POLICY_H
#define MAILSINK_POLICY_H

#include "mailsink/cli/config.h"

#include <stdbool.h>

typedef struct policy policy;

/* Compile the rules of c. NULL with a message in err for a bad CIDR
   ("--deny-host: bad CIDR '10.0.0.0/33'") or out of memory. */
policy *policy_new(const config *c, char *err, size_t errsize);
void policy_free(policy *p);

/* addr as libsmtpd gives it ("127.0.0.1", "::1"; IPv4-mapped IPv6 matches IPv4 rules). */
bool policy_host_allowed(const policy *p, const char *addr);
bool policy_sender_allowed(const policy *p, const char *sender); /* "" = null sender */
bool policy_rcpt_allowed(const policy *p, const char *rcpt);

#endif
