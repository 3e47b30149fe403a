/*
 * mime.h - what mailsink reads out of a message with GMime: the decoded headers the list
 * and search need, a text snippet, the decoded text for the full-text index, and the
 * attachments. Never trusts the message: malformed MIME gives what can be found, never
 * an error. Any thread (after mime_init).
 */
#ifndef MAILSINK_MIME_H
#define MAILSINK_MIME_H

#include <stddef.h>

typedef struct mime_summary {
    char *from; /* decoded, as displayed: "Name <addr>" (or "" when absent) */
    char *to;   /* decoded, comma-separated */
    char *cc;
    char *reply_to;
    char *subject;        /* decoded (RFC 2047) */
    char *date;           /* the Date header as found */
    char *message_id;     /* without < > */
    char *snippet;        /* about 200 characters, whitespace collapsed: of the HTML converted to
                             text when there is HTML (as Mailpit), else of the text part */
    char *text;           /* decoded text of the text/plain (else HTML stripped) parts, for search;
                             at most 1 MiB */
    unsigned attachments; /* MIME_PART_ATTACHMENT parts (Mailpit's count) */
    char *attachment_names; /* file names joined by "\n" ("" when none) */
} mime_summary;

/* Initialise GMime once per process (idempotent, thread-safe). */
void mime_init(void);

/* Parse data (a whole message, trace headers included or not). Every field of out is
   set (empty strings when absent); 0, or -1 when out of memory. */
int mime_summarize(const char *data, size_t len, mime_summary *out);
void mime_summary_cleanup(mime_summary *s);

/* ---- shared by mime.c, mime_message.c and mime_build.c ------------------------------
   GMime types appear only as incomplete structs so that the rest of mailsink, which
   includes this header through store.h, does not see GLib. */
struct _GMimeMessage;
struct _GMimeObject;

/* A malloc'd valid UTF-8 copy of s[0..len) (NULL -> ""): NULs become spaces, 8-bit text
   that is not UTF-8 is read as GMime reads raw 8-bit headers (its fallback charsets,
   then Latin-1), anything left invalid becomes U+FFFD. NULL only when out of memory. */
char *mime_utf8_dup(const char *s, size_t len);

/* data parsed as a message (g_object_unref it), or NULL when GMime finds no header at
   all (then the whole of data is body text). */
struct _GMimeMessage *mime_parse(const char *data, size_t len);

/* What a leaf (non-multipart) part is to a reader, as Mailpit sorts them. */
typedef enum mime_part_kind {
    MIME_PART_BODY,       /* text/plain or text/html, not an attachment, no file name */
    MIME_PART_INLINE,     /* Content-Disposition inline, or a Content-ID (not attachment) */
    MIME_PART_ATTACHMENT, /* disposition attachment, a file name, or message/rfc822 */
    MIME_PART_OTHER,      /* anything else (an unnamed text/calendar): listed nowhere */
} mime_part_kind;

/*
 * Calls cb for every leaf part of msg in document order with its part id, numbered as
 * Mailpit (enmime) numbers them: the children of the top-level multipart are "1", "2",
 * ...; the children of a nested multipart with id P are "P.1", "P.2", ...; a message
 * that is not multipart has one leaf, "1". Multiparts themselves and the inside of an
 * attached message/rfc822 are not visited (Mailpit does not number them either), nor
 * anything nested deeper than 64 multiparts. Stops at the first non-zero return of cb
 * and returns it; 0 when every leaf was visited. part_id is valid during the call only.
 */
typedef int (*mime_leaf_cb)(struct _GMimeObject *leaf, const char *part_id, mime_part_kind kind,
                            void *user);
int mime_leaves_foreach(struct _GMimeMessage *msg, mime_leaf_cb cb, void *user);

/* A leaf's file name (Content-Disposition filename, else Content-Type name; RFC 2231 and
   2047 decoded; valid until the part is freed), or NULL when it has none. */
const char *mime_part_name(struct _GMimeObject *leaf);

/* A text leaf's content: transfer encoding undone, converted from its charset to UTF-8
   (valid UTF-8 whatever the input; "" when it has no content). malloc'd; NULL only when
   out of memory. */
char *mime_part_utf8(struct _GMimeObject *leaf);

#endif
