/*
 * mime_build.h - build a message from Mailpit's SendRequest (POST /api/v1/send) with
 * GMime, as a client's message would arrive: headers, text and/or HTML alternatives,
 * attachments (inline ones, with a ContentID, in a multipart/related), and the envelope
 * it would have had.
 */
#ifndef MAILSINK_MIME_BUILD_H
#define MAILSINK_MIME_BUILD_H

#include <jansson.h>

#include <stddef.h>

typedef struct mime_built {
    char *data; /* the message, CRLF line ends */
    size_t len;
    char *sender; /* From.Email: the envelope sender */
    char **rcpts; /* To, Cc and Bcc addresses in that order, duplicates dropped */
    size_t rcpt_count;
    char **tags; /* the request's Tags */
    size_t tag_count;
} mime_built;

/*
 * req: the parsed JSON body. Fields: From {Email, Name} (required, Email a valid
 * address), To, Cc, ReplyTo (arrays of {Email, Name}), Bcc (array of address strings;
 * envelope only, never a header), Subject, Text, HTML, Headers (object name -> string;
 * names RFC 5322 field names; may not override To/From/Cc/Bcc/Reply-To/Sender/
 * Return-Path/Received/Date/Subject/MIME-Version/Content-*, nor X-Tags when Tags are
 * given; a Message-Id replaces the generated one), Tags (array of strings, also written
 * as X-Tags as Mailpit does), Attachments (array of {Content (base64, a "data:...,"
 * prefix allowed), Filename, ContentType (sniffed when absent), ContentID}). At least
 * one recipient; at most 1000 recipients and 1000 of each list. No CR or LF in anything
 * that becomes a header. Adds Date (now), a Message-Id (@hostname) and MIME-Version.
 * Text and HTML line ends become CRLF. 0, or -1 with Mailpit's kind of message in err
 * ("From.Email is required", "invalid To address: x", "cannot overwrite header:
 * \"Subject\"", "Attachments[0].Content is not base64"); out is then empty.
 */
int mime_build_send(const json_t *req, const char *hostname, mime_built *out, char *err,
                    size_t errsize);
void mime_built_cleanup(mime_built *b);

#endif
