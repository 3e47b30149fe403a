/*
 * options.h - smtpd_options by name: the table behind smtpd_server_configure and
 * smtpd_server_cget, and validation. The string options of an options struct handled
 * here are owned copies (options_copy makes them, options_cleanup frees them).
 */
#ifndef SMTP_OPTIONS_H
#define SMTP_OPTIONS_H

#include <smtpd.h>

/* Deep-copy src (or the defaults when NULL) into dst, resolving a NULL hostname with
   gethostname(). Returns SMTPD_OK, SMTPD_ENOMEM or SMTPD_EINVAL. */
int options_copy(smtpd_options *dst, const smtpd_options *src);
void options_cleanup(smtpd_options *o);

/* Set or read one option by name. SMTPD_ENOENT for an unknown name, SMTPD_EINVAL for a
   value that does not parse or is out of range. */
int options_set(smtpd_options *o, const char *name, const char *value);
int options_get(const smtpd_options *o, const char *name, char *out, size_t size);

/* Check ranges (e.g. max-command-line within 512..4000). */
int options_validate(const smtpd_options *o);

#endif
