/*
 * buf.h - a growable byte buffer with a hard cap (in the spirit of curl's dynbuf).
 *
 * Nothing a client sends may grow memory without bound, so every buffer is created with
 * a cap taken from an option, and an append that would pass it fails with BUF_EFULL and
 * leaves the buffer as it was. The contents are always NUL-terminated (not counted in
 * len) so text can be handed to C string functions. Owned by whoever embeds the struct;
 * not thread-safe.
 */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define BUF_OK 0
#define BUF_EFULL (-1)  /* the cap would be passed */
#define BUF_ENOMEM (-2) /* realloc failed */

typedef struct buf {
    char *data; /* NULL until the first append; then always NUL-terminated */
    size_t len;
    size_t alloc;
    size_t cap; /* the most len may ever be */
} buf;

void buf_init(buf *b, size_t cap);
void buf_cleanup(buf *b);
/* Forget the contents, keep the memory (and the cap). */
void buf_clear(buf *b);
int buf_append(buf *b, const void *data, size_t len);
/* Allocate room for n octets in one step (at most the cap) when the size to come is
   known, instead of doubling up to it; appends still grow past it. BUF_OK or
   BUF_ENOMEM. */
int buf_presize(buf *b, size_t n);
int buf_append_str(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Remove the first n bytes. */
void buf_consume(buf *b, size_t n);
/* Hand the memory to the caller (free() it); the buffer becomes empty. */
char *buf_detach(buf *b, size_t *len);
/* The contents as a string: "" when empty, never NULL. */
const char *buf_str(const buf *b);

#endif
