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
 * address), To, Cc, ReplyTo (arrays of {Email, Name}), Bcc (array of address strings),
 * Subject, Text, HTML, Headers (object name -> string; may not override From/To/Cc/
 * Subject/Date/Message-Id/MIME-Version/Content-*), Tags (array of strings), Attachments
 * (array of {Content (base64), Filename, ContentType, ContentID}). At least one
 * recipient. Adds Date (now) and a Message-Id (@hostname). 0, or -1 with Mailpit's kind
 * of message in err ("From.Email is required", "invalid To address 'x'",
 * "Attachments[0].Content is not base64").
 */
int mime_build_send(const json_t *req, const char *hostname, mime_built *out, char *err,
                    size_t errsize);
void mime_built_cleanup(mime_built *b);

#endif
