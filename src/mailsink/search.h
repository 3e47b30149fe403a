/*
 * search.h - Mailpit's search syntax, parsed into terms the store turns into SQL.
 *
 *   words and "quoted phrases"   match anywhere: addresses, subject, text, file names
 *   from: to: cc: bcc: reply-to: subject: message-id: tag:   that field contains VALUE
 *   is:read is:unread is:tagged has:attachment(s)
 *   before:DATE after:DATE      DATE = YYYY-MM-DD (midnight in the tz) or RFC 3339
 *   larger:SIZE smaller:SIZE    SIZE = bytes, or with k/m/g (1024-based; case-insensitive)
 *   a leading - or ! negates a term; terms combine with AND; values with spaces are
 *   quoted (subject:"weekly report"); filter names are case-insensitive.
 *
 * A word that only looks like a filter ("foo:bar" with an unknown name) is a plain word.
 * Pure: no I/O, no globals, any thread. The parser never fails on odd input: what it
 * cannot read as a filter it searches as text; only an unreadable DATE/SIZE value, an
 * unknown tz or more than SEARCH_MAX_TERMS terms is an error (the API answers 400 with
 * err). search.c's opening comment lists the finer choices (quotes, empty values, DST).
 */
#ifndef MAILSINK_SEARCH_H
#define MAILSINK_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More terms than this is an error: each becomes SQL, and no person types so many. */
#define SEARCH_MAX_TERMS 100

typedef enum search_field {
    SEARCH_TEXT,       /* a plain word or phrase: value */
    SEARCH_FROM,       /* value */
    SEARCH_TO,         /* value (To header and envelope recipients) */
    SEARCH_CC,         /* value */
    SEARCH_BCC,        /* value (envelope recipients not in To/Cc) */
    SEARCH_REPLY_TO,   /* value */
    SEARCH_SUBJECT,    /* value */
    SEARCH_MESSAGE_ID, /* value (without < >) */
    SEARCH_TAG,        /* value: exact tag name, case-insensitive */
    SEARCH_IS_READ,
    SEARCH_IS_UNREAD,
    SEARCH_IS_TAGGED,
    SEARCH_HAS_ATTACHMENT,
    SEARCH_BEFORE,  /* number: Unix ms; received before it */
    SEARCH_AFTER,   /* number: Unix ms; received at or after it */
    SEARCH_LARGER,  /* number: bytes; size > number */
    SEARCH_SMALLER, /* number: bytes; size < number */
} search_field;

typedef struct search_term {
    search_field field;
    bool negated; /* leading - or ! */
    char *value;  /* unquoted, NUL-terminated, never empty for fields that take text;
                     NULL for the others */
    int64_t number;
} search_term;

typedef struct search_query {
    search_term *terms;
    size_t count; /* 0: matches every message */
} search_query;

/*
 * Parse q (NUL-terminated, any bytes) into out. tz: NULL/"" for UTC, else an IANA name
 * ("Europe/Berlin", read from /usr/share/zoneinfo) or a numeric offset ("+02:00",
 * "-0530"); it says which midnight a bare before:/after: date means. Returns 0, or -1
 * with a message in err ("before: not a date: 'x'", "unknown time zone 'x'").
 */
int search_parse(const char *q, const char *tz, search_query *out, char *err, size_t errsize);
void search_query_free(search_query *q);

/*
 * The offset from UTC in seconds of zone tz at Unix time t (seconds). 0 on success, -1
 * for an unknown zone. Thread-safe (reads the TZif file itself; never touches TZ).
 */
int search_tz_offset(const char *tz, int64_t t, int32_t *offset_s);

#endif
