/*
 * reply.h - the one SMTP reply formatter (RFC 5321 4.2). Every reply the library sends is
 * built here: three-digit code, optional enhanced code (RFC 2034/3463), one line or a
 * multi-line reply ("code-" on all lines but the last), CR/LF/NUL in the text made
 * harmless, each line kept within 512 octets (4.5.3.1.5). Pure; any thread.
 */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include "core/buf.h"

#include <stdbool.h>

#define REPLY_MAX_LINE 512

/*
 * Append the reply to out. text may hold several lines separated by '\n'; enhanced may
 * be NULL (then none is sent). Calls line_cb (if not NULL) once per line, without CRLF,
 * for transcripts. Returns a BUF_* code.
 */
int reply_format(buf *out, int code, const char *enhanced, const char *text,
                 void (*line_cb)(void *ctx, const char *line, size_t len), void *ctx);

/* Is code a valid reply code (200..599, RFC 5321 4.2)? */
bool reply_code_is_valid(int code);
/* Is s "class.subject.detail" whose class matches the reply code's first digit? */
bool reply_enhanced_is_valid(const char *s, int code);

#endif
