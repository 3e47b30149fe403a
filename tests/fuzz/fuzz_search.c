/*
 * fuzz_search.c - search_parse and search_tz_offset on arbitrary bytes.
 *
 * Input: [0] selects the zone (low 3 bits: one of seven fixed zones, or 7 = the bytes up
 * to the first '\n' are the zone name) and, with bit 3, also asks search_tz_offset for the
 * instant in the next 8 bytes; the rest is the query. Every query is parsed with the zone
 * and without one. Checked: success and failure are reported consistently (err set on
 * failure only, nothing left allocated in out); text terms have a non-empty, trimmed,
 * valid UTF-8 value without quotes, the others none; sizes stay within 0..2^53; at most
 * SEARCH_MAX_TERMS terms; a zone that search_parse refuses is the one search_tz_offset
 * refuses; offsets stay within 26 hours.
 */
#include "mailsink/search.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

/* An independent UTF-8 check: decode each code point and test its range. */
static bool
fuzz_utf8_ok(const unsigned char *s)
{
    while (*s) {
        uint32_t cp;
        int more;
        if (*s < 0x80) {
            s++;
            continue;
        } else if ((*s & 0xe0) == 0xc0) {
            cp = *s & 0x1f;
            more = 1;
        } else if ((*s & 0xf0) == 0xe0) {
            cp = *s & 0x0f;
            more = 2;
        } else if ((*s & 0xf8) == 0xf0) {
            cp = *s & 0x07;
            more = 3;
        } else {
            return false;
        }
        s++;
        for (int i = 0; i < more; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (*s & 0x3f);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}

static bool
fuzz_has_value(search_field f)
{
    switch (f) {
    case SEARCH_TEXT:
    case SEARCH_FROM:
    case SEARCH_TO:
    case SEARCH_CC:
    case SEARCH_BCC:
    case SEARCH_REPLY_TO:
    case SEARCH_SUBJECT:
    case SEARCH_MESSAGE_ID:
    case SEARCH_TAG:
        return true;
    case SEARCH_IS_READ:
    case SEARCH_IS_UNREAD:
    case SEARCH_IS_TAGGED:
    case SEARCH_HAS_ATTACHMENT:
    case SEARCH_BEFORE:
    case SEARCH_AFTER:
    case SEARCH_LARGER:
    case SEARCH_SMALLER:
        return false;
    }
    CHECK(!"unknown field");
    return false;
}

static void
fuzz_check_terms(const search_query *q)
{
    CHECK(q->count <= SEARCH_MAX_TERMS);
    CHECK(q->count == 0 || q->terms != NULL);
    for (size_t i = 0; i < q->count; i++) {
        const search_term *t = &q->terms[i];
        if (fuzz_has_value(t->field)) {
            CHECK(t->value != NULL);
            size_t len = strlen(t->value);
            CHECK(len > 0);
            CHECK(t->value[0] != ' ' && t->value[len - 1] != ' ');
            CHECK(strchr(t->value, '"') == NULL);
            for (size_t j = 0; j < len; j++)
                CHECK((unsigned char)t->value[j] >= 0x20 && t->value[j] != 0x7f);
            CHECK(fuzz_utf8_ok((const unsigned char *)t->value));
        } else {
            CHECK(t->value == NULL);
        }
        if (t->field == SEARCH_LARGER || t->field == SEARCH_SMALLER)
            CHECK(t->number >= 0 && t->number <= ((int64_t)1 << 53));
    }
}

/* Parses q in zone tz into out (the caller frees it); returns whether it succeeded. */
static bool
fuzz_parse(const char *q, const char *tz, search_query *out)
{
    memset(out, 0xa5, sizeof *out); /* the parser must set it whatever it held */
    char err[200];
    int rc = search_parse(q, tz, out, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        CHECK(err[0] == '\0');
        fuzz_check_terms(out);
    } else {
        CHECK(err[0] != '\0');
        CHECK(out->terms == NULL && out->count == 0);
        CHECK(fuzz_utf8_ok((const unsigned char *)err));
    }
    return rc == 0;
}

/* The zone moves dates, nothing else: same terms, same values. */
static void
fuzz_same_but_dates(const search_query *a, const search_query *b)
{
    CHECK(a->count == b->count);
    for (size_t i = 0; i < a->count; i++) {
        const search_term *x = &a->terms[i], *y = &b->terms[i];
        CHECK(x->field == y->field && x->negated == y->negated);
        CHECK((x->value == NULL) == (y->value == NULL));
        CHECK(!x->value || strcmp(x->value, y->value) == 0);
        if (x->field != SEARCH_BEFORE && x->field != SEARCH_AFTER)
            CHECK(x->number == y->number);
        else /* offsets stay within 26 h either way */
            CHECK(x->number - y->number <= 26 * 3600 * 1000LL &&
                  y->number - x->number <= 26 * 3600 * 1000LL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const zones[7] = {
        NULL, "", "Europe/Berlin", "+05:30", "America/St_Johns", "Australia/Sydney", "-0330",
    };
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    char *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *tz = NULL;
    const char *q = buf;
    if ((sel & 7) == 7) {
        char *nl = strchr(buf, '\n');
        tz = buf;
        q = "";
        if (nl) {
            *nl = '\0';
            q = nl + 1;
        }
    } else {
        tz = zones[sel & 7];
    }
    if ((sel & 8) && strlen(q) >= 8) {
        int64_t t;
        memcpy(&t, q, sizeof t);
        int32_t off = 0;
        int rc = search_tz_offset(tz, t, &off);
        CHECK(rc == 0 || rc == -1);
        if (rc == 0)
            CHECK(off >= -26 * 3600 && off <= 26 * 3600);
    }

    search_query in_zone, in_utc, empty;
    bool ok = fuzz_parse(q, tz, &in_zone);
    bool ok_utc = fuzz_parse(q, NULL, &in_utc);
    /* an empty query fails only for a bad zone, and then search_tz_offset agrees */
    bool zone_ok = fuzz_parse("", tz, &empty);
    CHECK(zone_ok == (search_tz_offset(tz, 0, NULL) == 0));
    CHECK(empty.count == 0);
    if (!zone_ok)
        CHECK(!ok);
    else
        CHECK(ok == ok_utc);
    if (ok && ok_utc)
        fuzz_same_but_dates(&in_zone, &in_utc);
    search_query_free(&in_zone);
    search_query_free(&in_utc);
    search_query_free(&empty);
    CHECK(in_zone.terms == NULL && in_zone.count == 0);
    free(buf);
    return 0;
}
