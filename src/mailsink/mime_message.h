/*
 * mime_message.h - a stored message read with GMime for the HTTP API: the full message
 * as Mailpit's "Message" object, its headers, one part's bytes, and address lists. Like
 * mime.h it never trusts the message: malformed MIME gives what can be found. Any thread
 * (after mime_init).
 */
#ifndef MAILSINK_MIME_MESSAGE_H
#define MAILSINK_MIME_MESSAGE_H

#include <jansson.h>

#include <stddef.h>

/*
 * Mailpit's Message object for data (the whole stored message, trace headers included)
 * with every field the MIME gives: MessageID, From (Address object, or null when there
 * is no From), To, Cc, Bcc (the Bcc header if any), ReplyTo (arrays, [] when absent),
 * ReturnPath (the Return-Path header's address, "" if none), Subject, Date (RFC 3339 of
 * the Date header, "" when absent or unreadable), ListUnsubscribe {Header, Links,
 * Errors, HeaderPost}, Text, HTML, Size (len), Inline and Attachments (arrays of
 * Attachment objects: PartID, FileName, ContentType, ContentID, Size, Checksums {MD5,
 * SHA1, SHA256}). The caller adds ID, Tags, Username and fixes Date/Bcc/ReturnPath from
 * the envelope. Text and HTML are decoded to UTF-8 from the body parts (text/plain or
 * text/html, not Content-Disposition attachment, no file name): Text as Mailpit gives it,
 * the first text/plain body of a multipart/alternative message, else every text/plain
 * body joined by "\n--\n", else the HTML converted to text; HTML the first text/html
 * body. A message without any header is all Text.
 *
 * Part ids (PartID, mime_part_get) are Mailpit's, i.e. the enmime library's: the
 * children of the top-level multipart are "1", "2", ...; the children of a nested
 * multipart numbered P are "P.1", "P.2", ... So multipart/mixed [multipart/alternative
 * [text, html], attachment] numbers the alternatives "1.1" and "1.2" and the attachment
 * "2". A message that is not multipart has one part, "1". Multiparts themselves ("0" in
 * enmime) and the inside of an attached message/rfc822 have no id of their own here.
 *
 * Which list a part goes to (mime.h, mime_part_kind): Inline holds the parts with
 * Content-Disposition inline or a Content-ID (images of a multipart/related) that are
 * not bodies; Attachments the parts with disposition attachment, a file name, or
 * message/rfc822 (their number is mime_summary.attachments). FileName falls back to the
 * ContentID, as in Mailpit. Size and Checksums are of the decoded bytes. NULL when out
 * of memory.
 */
json_t *mime_message_json(const char *data, size_t len);

/* The headers of the top-level message: object of canonical name ("Message-Id",
   "Content-Type", "X-Mailer") -> array of values (decoded RFC 2047, unfolded) in order
   of appearance; keys sorted. NULL when out of memory. */
json_t *mime_headers_json(const char *data, size_t len);

/* One part's decoded content, for /part/{PartID} and /view/{ID}.html|.txt. */
typedef struct mime_part_data {
    char *content; /* decoded (base64/qp undone), not charset-converted */
    size_t size;
    char *content_type; /* "text/html; charset=utf-8", "image/png" (never "") */
    char *file_name;    /* decoded, control characters made spaces, or "" */
    int is_attachment;  /* Content-Disposition: attachment (or a named non-text part) */
} mime_part_data;

/* The leaf part numbered part_id (any kind, bodies included). 0, or -1 when there is
   no such part ("0", "", garbage) or out of memory. */
int mime_part_get(const char *data, size_t len, const char *part_id, mime_part_data *out);
/* The HTML (html != 0) or the Text exactly as mime_message_json gives them (so the text
   of an HTML-only message is its HTML as text), converted to UTF-8, content_type
   "text/html; charset=utf-8" or "text/plain; charset=utf-8". 0, or -1 when the message
   has no such body (or out of memory). */
int mime_body_get(const char *data, size_t len, int html, mime_part_data *out);
void mime_part_data_cleanup(mime_part_data *p);

/* Parse an address list in any header form ("A <a@x>, \"B, b\" <b@y>", or GMime's display
   form as mime.h stores it) into an array of {"Name", "Address"} objects, [] for ""
   or NULL. NULL only when out of memory. */
json_t *mime_address_list_json(const char *list);

/* HTML to readable text (tags dropped, script/style/head content dropped, entities
   decoded, whitespace collapsed, block elements become line breaks). malloc'd UTF-8, or
   NULL when out of memory. */
char *mime_html_to_text(const char *html, size_t len);

#endif
