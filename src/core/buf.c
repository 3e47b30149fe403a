/* buf.c - growable byte buffer with a hard cap; see buf.h. */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void
buf_cleanup(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void
buf_clear(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Make room for len + extra bytes plus the NUL. */
static int
buf_reserve(buf *b, size_t extra)
{
    if (extra > b->cap - b->len || b->len > b->cap)
        return BUF_EFULL;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return BUF_OK;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need)
        n = n > ((size_t)-1) / 2 ? need : n * 2;
    if (n > b->cap + 1)
        n = b->cap + 1;
    char *p = realloc(b->data, n);
    if (!p)
        return BUF_ENOMEM;
    b->data = p;
    b->alloc = n;
    return BUF_OK;
}

int
buf_presize(buf *b, size_t n)
{
    if (n > b->cap)
        n = b->cap;
    if (n + 1 <= b->alloc)
        return BUF_OK;
    char *p = realloc(b->data, n + 1);
    if (!p)
        return BUF_ENOMEM;
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->alloc = n + 1;
    return BUF_OK;
}

int
buf_append(buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc != BUF_OK)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int
buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BUF_ENOMEM;
    int rc = buf_reserve(b, (size_t)n);
    if (rc != BUF_OK)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return BUF_OK;
}

int
buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void
buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *
buf_detach(buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}

const char *
buf_str(const buf *b)
{
    return b->data ? b->data : "";
}
