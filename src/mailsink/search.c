/*
 * search.c - Mailpit's search syntax into search_query terms, and the time zone
 * arithmetic that before:/after: need.
 *
 * Choices where Mailpit's documentation leaves room (tests/mailsink_unit/test_search.c
 * pins each of them):
 * - Tokens are split at ASCII whitespace and control bytes. A '"' toggles quoting
 *   anywhere in a token and is removed; a lone quote runs to the end of the query.
 *   Backslash is an ordinary byte. Inside quotes, control bytes become spaces.
 * - A filter is "name:value" where the name is written before any quote; so
 *   subject:"a b" is a filter and "subject:a b" is a phrase. Unknown names (addressed:,
 *   has:inline, foo:bar) and unknown is:/has: values are plain words of the whole token.
 * - A leading unquoted - or ! negates; a lone - or ! (or -"") is ignored.
 * - Values and words are trimmed; a known filter whose value is then empty (from:,
 *   subject:"", before:) is ignored, so no text term ever has an empty value.
 *   message-id: drops one pair of < >. Bytes that are not UTF-8 become U+FFFD.
 * - DATE: YYYY-MM-DD or YYYY/MM/DD (local midnight in tz; after: means "from the start
 *   of that day", before: "before that day started"), MM/DD/YYYY as Mailpit reads it,
 *   and a time "THH:MM[:SS[.frac]]" (T, t or a space) with an optional Z or +-HH[:]MM
 *   offset; without an offset the time is local to tz. A local time skipped by a DST
 *   change counts with the offset before the change (02:30 -> 03:30), one that happens
 *   twice means the first.
 * - SIZE: digits with an optional fraction, then optional b, k/kb/kib, m/mb/mib or
 *   g/gb/gib (1024-based, any case, one optional space). Above 2^53 is an error.
 * - At most SEARCH_MAX_TERMS terms (the store turns each into SQL).
 * - Zones: NULL, "", UTC, Z, GMT; numeric +-HH[[:]MM] up to 23:59 (a leading space counts
 *   as '+': URL decoding turns '+' into one); or an IANA name read
 *   from /usr/share/zoneinfo (TZif v1 or v2+ 64-bit data). After the last transition the
 *   footer's POSIX TZ rule applies; if it cannot be read, the last transition's offset.
 *   Leap-second ("right/") zones are refused.
 */
#include "mailsink/search.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEARCH_ZONEINFO "/usr/share/zoneinfo"
#define SEARCH_TZIF_MAX (256 * 1024) /* real TZif files are under 4 KiB */
#define SEARCH_NUMBER_MAX ((int64_t)1 << 53)
#define SEARCH_ERR_VALUE_MAX 64 /* bytes of a bad value quoted back in an error */

/* ---- small helpers ---- */

static bool
search_is_sep(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

static char
search_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive: a[0..n) equals the whole of b */
static bool
search_ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (search_lower(a[i]) != search_lower(b[i]))
            return false;
    return true;
}

static void search_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
search_err(char *err, size_t errsize, const char *fmt, ...)
{
    if (!err || errsize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap); /* a cut message is still a message */
    va_end(ap);
}

static int64_t
search_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

/* ---- UTF-8: values go to SQL, JSON and error texts, which all want valid UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if it is not one. */
static size_t
search_utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* no overlong forms, no surrogates, nothing above U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* A copy of s[0..n) with every byte that is not part of valid UTF-8 as U+FFFD. */
static char *
search_utf8_dup(const char *s, size_t n)
{
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = search_utf8_len((const unsigned char *)s + i, n - i);
        if (len == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
    return out;
}

/* At most SEARCH_ERR_VALUE_MAX bytes of s for an error text, valid UTF-8; free it. */
static char *
search_err_value(const char *s)
{
    size_t n = strlen(s);
    char *clean = search_utf8_dup(s, n > SEARCH_ERR_VALUE_MAX ? SEARCH_ERR_VALUE_MAX : n);
    if (!clean)
        return NULL;
    size_t len = strlen(clean);
    if (len > SEARCH_ERR_VALUE_MAX) { /* U+FFFD made it longer */
        len = SEARCH_ERR_VALUE_MAX;
        while (len > 0 && ((unsigned char)clean[len] & 0xc0) == 0x80)
            len--;
        clean[len] = '\0';
    }
    return clean;
}

/* ---- the proleptic Gregorian calendar (days since 1970-01-01) ---- */

static bool
search_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
search_month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && search_is_leap(y) ? 29 : days[m - 1];
}

/* Counting years from March makes the leap day the last day of a year, so every month
   length but February's is a fixed pattern of 400-year eras. */
static int64_t
search_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = search_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = m > 2 ? m - 3 : m + 9;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t
search_year_of_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = search_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10); /* January and February belong to the next */
}

/* ---- POSIX TZ strings (the TZif footer, RFC 8536 3.3) ---- */

typedef struct tz_rule {
    char kind; /* 'J': a = 1..365 without Feb 29; 'N': a = 0..365; 'M': month a, week b, day c */
    int a, b, c;
    int32_t time; /* seconds after local midnight, -167h..167h */
} tz_rule;

typedef struct tz_posix {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_rule start, end;
} tz_posix;

static bool
search_num(const char **p, int maxdigits, long max, long *out)
{
    long v = 0;
    int n = 0;
    while (n < maxdigits && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0 && v <= max;
}

/* exactly min..max digits */
static bool
search_digits(const char **p, int min, int max, long *out)
{
    const char *start = *p;
    if (!search_num(p, max, 999999, out))
        return false;
    return *p - start >= min;
}

static bool
tz_posix_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        s++;
        while (*s && *s != '>')
            s++;
        if (*s != '>' || s - *p < 4)
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]]; hours up to maxh. */
static bool
tz_posix_time(const char **p, long maxh, int32_t *out)
{
    int sign = 1;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    long h, m = 0, s = 0;
    if (!search_num(p, 3, maxh, &h))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!search_num(p, 2, 59, &m))
            return false;
        if (**p == ':') {
            (*p)++;
            if (!search_num(p, 2, 59, &s))
                return false;
        }
    }
    *out = (int32_t)(sign * (h * 3600 + m * 60 + s));
    return true;
}

static bool
tz_posix_rule(const char **p, tz_rule *r)
{
    long a = 0, b = 0, c = 0;
    if (**p == 'J') {
        (*p)++;
        r->kind = 'J';
        if (!search_num(p, 3, 365, &a) || a < 1)
            return false;
    } else if (**p == 'M') {
        (*p)++;
        r->kind = 'M';
        if (!search_num(p, 2, 12, &a) || a < 1 || *(*p)++ != '.' || !search_num(p, 1, 5, &b) ||
            b < 1 || *(*p)++ != '.' || !search_num(p, 1, 6, &c))
            return false;
    } else {
        r->kind = 'N';
        if (!search_num(p, 3, 365, &a))
            return false;
    }
    r->a = (int)a;
    r->b = (int)b;
    r->c = (int)c;
    r->time = 7200; /* POSIX: 02:00 unless given */
    if (**p == '/') {
        (*p)++;
        return tz_posix_time(p, 167, &r->time);
    }
    return true;
}

static bool
tz_posix_parse(const char *s, tz_posix *tp)
{
    int32_t off;
    memset(tp, 0, sizeof *tp);
    if (!tz_posix_name(&s) || !tz_posix_time(&s, 24, &off))
        return false;
    tp->std_off = -off; /* POSIX counts west of UTC */
    if (*s == '\0')
        return true;
    if (!tz_posix_name(&s))
        return false;
    tp->dst_off = tp->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!tz_posix_time(&s, 24, &off))
            return false;
        tp->dst_off = -off;
    }
    if (*s == '\0') /* DST without rules: not in real footers; keep standard time */
        return true;
    if (*s++ != ',' || !tz_posix_rule(&s, &tp->start) || *s++ != ',' ||
        !tz_posix_rule(&s, &tp->end) || *s != '\0')
        return false;
    tp->has_dst = true;
    return true;
}

/* The day (since 1970) on which rule r falls in year y. */
static int64_t
tz_rule_day(const tz_rule *r, int64_t y)
{
    int64_t jan1 = search_days_from_civil(y, 1, 1);
    switch (r->kind) {
    case 'J': /* Feb 29 is never counted, so day 60 is always March 1 */
        return jan1 + r->a - 1 + (search_is_leap(y) && r->a >= 60);
    case 'N':
        return jan1 + r->a;
    default: {
        int64_t first = search_days_from_civil(y, r->a, 1);
        int64_t wday = (first % 7 + 11) % 7; /* 1970-01-01 was a Thursday */
        int64_t day = 1 + (r->c - wday + 7) % 7 + 7 * (r->b - 1);
        while (day > search_month_days(y, r->a))
            day -= 7; /* week 5 means the last one */
        return first + day - 1;
    }
    }
}

static int32_t
tz_posix_offset(const tz_posix *tp, int64_t t)
{
    if (!tp->has_dst)
        return tp->std_off;
    int64_t y = search_year_of_days(search_floor_div(t + tp->std_off, 86400));
    /* the start time is written in standard time, the end time in daylight time */
    int64_t start = tz_rule_day(&tp->start, y) * 86400 + tp->start.time - tp->std_off;
    int64_t end = tz_rule_day(&tp->end, y) * 86400 + tp->end.time - tp->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? tp->dst_off : tp->std_off;
}

/* ---- zones: fixed offsets and TZif files (RFC 8536) ---- */

typedef struct tz_zone {
    int32_t fixed;    /* the offset when offsets is NULL */
    int64_t *times;   /* transition instants, ascending */
    uint8_t *types;   /* per transition: index into offsets */
    int32_t *offsets; /* per local time type: seconds east of UTC */
    size_t ntimes, ntypes;
    bool has_footer;
    tz_posix footer;
} tz_zone;

static void
tz_zone_free(tz_zone *z)
{
    free(z->times);
    free(z->types);
    free(z->offsets);
    memset(z, 0, sizeof *z);
}

static uint32_t
tzif_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
tzif_be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)tzif_be32(p) << 32 | tzif_be32(p + 4));
}

enum { TZIF_ISUT, TZIF_ISSTD, TZIF_LEAP, TZIF_TIME, TZIF_TYPE, TZIF_CHAR };

/* The header at *off: its six counts, and the size of the data block after it. */
static bool
tzif_header(const uint8_t *d, size_t len, size_t off, size_t tsize, uint32_t c[6], size_t *block)
{
    if (len - off < 44 || memcmp(d + off, "TZif", 4) != 0)
        return false;
    for (int i = 0; i < 6; i++)
        c[i] = tzif_be32(d + off + 20 + 4 * i);
    /* counts are at most 2^32, so these sums cannot overflow a 64-bit size_t */
    *block = (size_t)c[TZIF_TIME] * (tsize + 1) + (size_t)c[TZIF_TYPE] * 6 + c[TZIF_CHAR] +
             (size_t)c[TZIF_LEAP] * (tsize + 4) + c[TZIF_ISSTD] + c[TZIF_ISUT];
    return c[TZIF_TYPE] >= 1 && c[TZIF_TYPE] <= 256 && *block <= len - off - 44;
}

static bool
tzif_read_data(tz_zone *z, const uint8_t *d, const uint32_t c[6], size_t tsize)
{
    z->ntimes = c[TZIF_TIME];
    z->ntypes = c[TZIF_TYPE];
    z->times = malloc((z->ntimes ? z->ntimes : 1) * sizeof *z->times);
    z->types = malloc(z->ntimes ? z->ntimes : 1);
    z->offsets = malloc(z->ntypes * sizeof *z->offsets);
    if (!z->times || !z->types || !z->offsets)
        return false;
    for (size_t i = 0; i < z->ntimes; i++) {
        const uint8_t *p = d + i * tsize;
        z->times[i] = tsize == 8 ? tzif_be64(p) : (int32_t)tzif_be32(p);
        if (i > 0 && z->times[i] <= z->times[i - 1])
            return false;
    }
    d += z->ntimes * tsize;
    for (size_t i = 0; i < z->ntimes; i++) {
        z->types[i] = d[i];
        if (d[i] >= z->ntypes)
            return false;
    }
    d += z->ntimes;
    for (size_t i = 0; i < z->ntypes; i++) {
        int32_t off = (int32_t)tzif_be32(d + 6 * i);
        if (off < -26 * 3600 || off > 26 * 3600) /* RFC 8536 3.2: about -25h..26h */
            return false;
        z->offsets[i] = off;
    }
    return true;
}

static bool
tzif_parse(tz_zone *z, const uint8_t *d, size_t len)
{
    uint32_t c[6];
    size_t block;
    if (!tzif_header(d, len, 0, 4, c, &block))
        return false;
    if (d[4] == '\0') /* version 1: 32-bit data only, no footer */
        return tzif_read_data(z, d + 44, c, 4);
    size_t off = 44 + block;
    if (!tzif_header(d, len, off, 8, c, &block) || !tzif_read_data(z, d + off + 44, c, 8))
        return false;
    /* the footer: "\n" POSIX-TZ "\n"; an unreadable one just is not used */
    const char *f = (const char *)d + off + 44 + block;
    size_t flen = len - (off + 44 + block);
    if (flen >= 2 && f[0] == '\n') {
        const char *nl = memchr(f + 1, '\n', flen - 1);
        char tzs[128];
        if (nl && (size_t)(nl - f - 1) < sizeof tzs) {
            memcpy(tzs, f + 1, (size_t)(nl - f - 1));
            tzs[nl - f - 1] = '\0';
            z->has_footer = tzs[0] != '\0' && tz_posix_parse(tzs, &z->footer);
        }
    }
    return true;
}

/* Whole file, at most SEARCH_TZIF_MAX bytes; NULL if it is not a small regular file. */
static uint8_t *
tzif_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SEARCH_TZIF_MAX)
        goto out;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out;
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    *len = n;
out:
    close(fd);
    return buf;
}

/* IANA names only: no way out of the zoneinfo directory, no odd files in it. */
static bool
tz_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '/' || s[n - 1] == '/' || strstr(s, "..") || strstr(s, "//") ||
        strncmp(s, "right/", 6) == 0)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/* "+02:00", "-0530", "+05": seconds east of UTC. */
static bool
tz_numeric(const char *s, int32_t *out)
{
    int sign = *s == '-' ? -1 : 1;
    long h, m = 0;
    s++;
    if (!search_num(&s, 2, 23, &h))
        return false;
    if (*s == ':' && !s[1])
        return false;
    if (*s == ':')
        s++;
    if (*s && (!search_digits(&s, 2, 2, &m) || m > 59 || *s))
        return false;
    *out = (int32_t)(sign * (h * 3600 + m * 60));
    return true;
}

static int
tz_zone_load(const char *tz, tz_zone *z)
{
    memset(z, 0, sizeof *z);
    if (!tz || !*tz || search_ieq(tz, strlen(tz), "UTC") || search_ieq(tz, strlen(tz), "Z") ||
        search_ieq(tz, strlen(tz), "GMT"))
        return 0;
    /* " 02:00" is "+02:00" after a URL query decoded its '+' as a space */
    if (tz[0] == '+' || tz[0] == '-' || (tz[0] == ' ' && tz[1] >= '0' && tz[1] <= '9'))
        return tz_numeric(tz, &z->fixed) ? 0 : -1;
    if (!tz_name_is_valid(tz))
        return -1;
    char path[sizeof SEARCH_ZONEINFO + 130];
    snprintf(path, sizeof path, "%s/%s", SEARCH_ZONEINFO, tz); /* fits: name <= 128 */
    size_t len = 0;
    uint8_t *data = tzif_slurp(path, &len);
    bool ok = data && tzif_parse(z, data, len);
    free(data);
    if (!ok) {
        tz_zone_free(z);
        return -1;
    }
    return 0;
}

static int32_t
tz_zone_offset(const tz_zone *z, int64_t t)
{
    if (!z->offsets)
        return z->fixed;
    if (z->ntimes == 0 || t >= z->times[z->ntimes - 1]) {
        if (z->has_footer) {
            /* beyond any calendar anyone searches; keeps the rule arithmetic in range */
            const int64_t lim = (int64_t)1 << 50;
            return tz_posix_offset(&z->footer, t < -lim ? -lim : t > lim ? lim : t);
        }
        return z->offsets[z->ntimes ? z->types[z->ntimes - 1] : 0];
    }
    if (t < z->times[0])
        return z->offsets[0];          /* RFC 8536 3.2: time type 0 before the first transition */
    size_t lo = 0, hi = z->ntimes - 1; /* times[lo] <= t < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->offsets[z->types[lo]];
}

/*
 * The UTC instant of a local wall-clock time. The offsets a day and a bit either side
 * cover every candidate (offsets stay within 26 h); of those that fit, the largest is the
 * earliest instant (a repeated hour means its first pass). None fits in a skipped hour:
 * then the offset from before the change, which moves the time past the gap.
 */
static int64_t
tz_zone_local_to_utc(const tz_zone *z, int64_t local)
{
    int32_t before = tz_zone_offset(z, local - 27 * 3600);
    int32_t after = tz_zone_offset(z, local + 27 * 3600);
    int32_t cand[4] = {before, after, tz_zone_offset(z, local - before),
                       tz_zone_offset(z, local - after)};
    bool found = false;
    int32_t best = before;
    for (int i = 0; i < 4; i++) {
        if (tz_zone_offset(z, local - cand[i]) == cand[i] && (!found || cand[i] > best)) {
            best = cand[i];
            found = true;
        }
    }
    return local - best;
}

/* ---- DATE and SIZE values ---- */

static bool
search_ymd(const char **p, long *y, long *m, long *d)
{
    const char *s = *p;
    if (search_digits(&s, 4, 4, y) && (*s == '-' || *s == '/')) {
        char sep = *s++;
        if (!search_digits(&s, 1, 2, m) || *s++ != sep || !search_digits(&s, 1, 2, d))
            return false;
    } else { /* MM/DD/YYYY, the US order Mailpit documents */
        s = *p;
        if (!search_digits(&s, 1, 2, m) || *s++ != '/' || !search_digits(&s, 1, 2, d) ||
            *s++ != '/' || !search_digits(&s, 4, 4, y))
            return false;
    }
    if (*m < 1 || *m > 12 || *d < 1 || *d > search_month_days(*y, (int)*m))
        return false;
    *p = s;
    return true;
}

/* [T ]HH:MM[:SS[.frac]] -> seconds and milliseconds */
static bool
search_hms(const char **p, int64_t *secs, int64_t *ms)
{
    const char *s = *p;
    long h, mi, sec = 0;
    if (!search_digits(&s, 2, 2, &h) || h > 23 || *s++ != ':' || !search_digits(&s, 2, 2, &mi) ||
        mi > 59)
        return false;
    *ms = 0;
    if (*s == ':') {
        s++;
        if (!search_digits(&s, 2, 2, &sec) || sec > 60) /* 60: a leap second */
            return false;
        if (*s == '.' || *s == ',') {
            s++;
            if (*s < '0' || *s > '9')
                return false;
            for (int scale = 100; *s >= '0' && *s <= '9'; s++, scale /= 10)
                *ms += (*s - '0') * scale;
        }
    }
    *secs = h * 3600 + mi * 60 + sec;
    *p = s;
    return true;
}

/* Unix ms of DATE; a date or time without an offset is local to zone z. */
static bool
search_date(const char *s, const tz_zone *z, int64_t *out)
{
    long y, m, d;
    int64_t secs = 0, ms = 0;
    if (!search_ymd(&s, &y, &m, &d))
        return false;
    int64_t day = search_days_from_civil(y, (int)m, (int)d) * 86400;
    if (*s == '\0') {
        *out = tz_zone_local_to_utc(z, day) * 1000;
        return true;
    }
    if (*s != 'T' && *s != 't' && *s != ' ')
        return false;
    s++;
    if (!search_hms(&s, &secs, &ms))
        return false;
    if (*s == '\0') {
        *out = tz_zone_local_to_utc(z, day + secs) * 1000 + ms;
        return true;
    }
    int32_t off = 0;
    if (!((*s == 'Z' || *s == 'z') && s[1] == '\0') &&
        !((*s == '+' || *s == '-') && tz_numeric(s, &off)))
        return false;
    *out = (day + secs - off) * 1000 + ms;
    return true;
}

static int64_t
search_size_unit(const char *u)
{
    static const struct {
        const char *name;
        int64_t mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1024},
                 {"kb", 1024},
                 {"kib", 1024},
                 {"m", 1024 * 1024},
                 {"mb", 1 << 20},
                 {"mib", 1 << 20},
                 {"g", (int64_t)1 << 30},
                 {"gb", (int64_t)1 << 30},
                 {"gib", (int64_t)1 << 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (search_ieq(u, strlen(u), units[i].name))
            return units[i].mult;
    return 0;
}

/* 0 ok, -1 not a size, -2 too large */
static int
search_size(const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0, scale = 1;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        whole = whole * 10 + (*s - '0');
        if (whole > SEARCH_NUMBER_MAX)
            return -2;
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (scale < 1000000000) { /* digits past a billionth change nothing */
                frac = frac * 10 + (*s - '0');
                scale *= 10;
            }
        }
    }
    if (*s == ' ')
        s++;
    int64_t mult = search_size_unit(s);
    if (mult == 0)
        return -1;
    if (whole > SEARCH_NUMBER_MAX / mult)
        return -2;
    /* frac < scale <= 1e9 and mult <= 2^30: the product fits */
    int64_t v = whole * mult + frac * mult / scale;
    if (v > SEARCH_NUMBER_MAX)
        return -2;
    *out = v;
    return 0;
}

/* ---- terms ---- */

typedef enum search_kind { KIND_TEXT, KIND_FLAG, KIND_DATE, KIND_SIZE } search_kind;

static const struct {
    const char *name;
    search_field field;
    search_kind kind;
} search_filters[] = {
    {"from", SEARCH_FROM, KIND_TEXT},
    {"to", SEARCH_TO, KIND_TEXT},
    {"cc", SEARCH_CC, KIND_TEXT},
    {"bcc", SEARCH_BCC, KIND_TEXT},
    {"reply-to", SEARCH_REPLY_TO, KIND_TEXT},
    {"subject", SEARCH_SUBJECT, KIND_TEXT},
    {"message-id", SEARCH_MESSAGE_ID, KIND_TEXT},
    {"tag", SEARCH_TAG, KIND_TEXT},
    {"is", SEARCH_IS_READ, KIND_FLAG},
    {"has", SEARCH_HAS_ATTACHMENT, KIND_FLAG},
    {"before", SEARCH_BEFORE, KIND_DATE},
    {"after", SEARCH_AFTER, KIND_DATE},
    {"larger", SEARCH_LARGER, KIND_SIZE},
    {"smaller", SEARCH_SMALLER, KIND_SIZE},
};

static const struct {
    const char *name; /* "is" or "has" */
    const char *value;
    search_field field;
} search_flags[] = {
    {"is", "read", SEARCH_IS_READ},
    {"is", "unread", SEARCH_IS_UNREAD},
    {"is", "tagged", SEARCH_IS_TAGGED},
    {"has", "attachment", SEARCH_HAS_ATTACHMENT},
    {"has", "attachments", SEARCH_HAS_ATTACHMENT},
};

typedef struct search_parser {
    search_query *out;
    size_t cap;
    const tz_zone *zone;
    char *err;
    size_t errsize;
} search_parser;

static int
search_add(search_parser *ps, search_field field, bool negated, const char *value, int64_t number)
{
    search_query *q = ps->out;
    if (q->count == SEARCH_MAX_TERMS) {
        search_err(ps->err, ps->errsize, "too many search terms (at most %d)", SEARCH_MAX_TERMS);
        return -1;
    }
    if (q->count == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 8;
        search_term *terms = realloc(q->terms, cap * sizeof *terms);
        if (!terms)
            goto oom;
        q->terms = terms;
        ps->cap = cap;
    }
    search_term *t = &q->terms[q->count];
    t->field = field;
    t->negated = negated;
    t->number = number;
    t->value = NULL;
    if (value && !(t->value = search_utf8_dup(value, strlen(value))))
        goto oom;
    q->count++;
    return 0;
oom:
    search_err(ps->err, ps->errsize, "out of memory");
    return -1;
}

/* Drops leading and trailing spaces in place. */
static char *
search_trim(char *s)
{
    while (*s && search_is_sep((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && search_is_sep((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int
search_add_number(search_parser *ps, search_field field, bool negated, const char *name,
                  const char *value, bool is_date)
{
    int64_t number = 0;
    int rc =
        is_date ? (search_date(value, ps->zone, &number) ? 0 : -1) : search_size(value, &number);
    if (rc == 0)
        return search_add(ps, field, negated, NULL, number);
    char *shown = search_err_value(value);
    search_err(ps->err, ps->errsize, "%s: %s: '%s'", name,
               is_date    ? "not a date"
               : rc == -2 ? "size too large"
                          : "not a size",
               shown ? shown : "");
    free(shown);
    return -1;
}

/* A "name:value" token with a known name. The whole token is word when is:/has: has a
   value we do not know. */
static int
search_add_filter(search_parser *ps, size_t f, bool negated, char *word, size_t namelen)
{
    char *value = search_trim(word + namelen + 1);
    if (*value == '\0')
        return 0;
    switch (search_filters[f].kind) {
    case KIND_TEXT:
        if (search_filters[f].field == SEARCH_MESSAGE_ID && value[0] == '<' &&
            value[strlen(value) - 1] == '>') {
            value[strlen(value) - 1] = '\0';
            value = search_trim(value + 1);
            if (*value == '\0')
                return 0;
        }
        return search_add(ps, search_filters[f].field, negated, value, 0);
    case KIND_FLAG:
        for (size_t i = 0; i < sizeof search_flags / sizeof search_flags[0]; i++)
            if (search_ieq(word, namelen, search_flags[i].name) &&
                search_ieq(value, strlen(value), search_flags[i].value))
                return search_add(ps, search_flags[i].field, negated, NULL, 0);
        return search_add(ps, SEARCH_TEXT, negated, search_trim(word), 0);
    case KIND_DATE:
    case KIND_SIZE:
        return search_add_number(ps, search_filters[f].field, negated, search_filters[f].name,
                                 value, search_filters[f].kind == KIND_DATE);
    }
    return 0;
}

/*
 * One token: text[0..len) with its quotes taken out; first_quote is where the first quoted
 * part began (SIZE_MAX: none), colon the first ':' before it (SIZE_MAX: none).
 */
static int
search_add_token(search_parser *ps, char *text, size_t first_quote, size_t colon)
{
    bool negated = false;
    if (first_quote != 0 && (text[0] == '-' || text[0] == '!')) {
        negated = true;
        text++;
        colon = colon == SIZE_MAX ? colon : colon - 1;
    }
    if (colon != SIZE_MAX && colon > 0) {
        for (size_t f = 0; f < sizeof search_filters / sizeof search_filters[0]; f++)
            if (search_ieq(text, colon, search_filters[f].name))
                return search_add_filter(ps, f, negated, text, colon);
    }
    char *word = search_trim(text);
    return *word ? search_add(ps, SEARCH_TEXT, negated, word, 0) : 0;
}

static int
search_tokens(search_parser *ps, const char *p, char *buf)
{
    for (;;) {
        while (*p && search_is_sep((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        size_t n = 0, first_quote = SIZE_MAX, colon = SIZE_MAX;
        bool quoted = false;
        for (; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"') {
                if (first_quote == SIZE_MAX)
                    first_quote = n;
                quoted = !quoted;
                continue;
            }
            if (search_is_sep(c)) {
                if (!quoted)
                    break;
                c = ' ';
            }
            if (c == ':' && colon == SIZE_MAX && first_quote == SIZE_MAX)
                colon = n;
            buf[n++] = (char)c;
        }
        buf[n] = '\0';
        if (n > 0 && search_add_token(ps, buf, first_quote, colon) < 0)
            return -1;
    }
}

int
search_parse(const char *q, const char *tz, search_query *out, char *err, size_t errsize)
{
    if (err && errsize)
        err[0] = '\0';
    if (!out) {
        search_err(err, errsize, "no query to fill");
        return -1;
    }
    out->terms = NULL;
    out->count = 0;
    tz_zone zone;
    if (tz_zone_load(tz, &zone) < 0) {
        char *shown = search_err_value(tz);
        search_err(err, errsize, "unknown time zone '%s'", shown ? shown : "");
        free(shown);
        return -1;
    }
    if (!q)
        q = "";
    int rc = -1;
    char *buf = malloc(strlen(q) + 1); /* a token is never longer than the query */
    if (!buf) {
        search_err(err, errsize, "out of memory");
    } else {
        search_parser ps = {.out = out, .zone = &zone, .err = err, .errsize = errsize};
        rc = search_tokens(&ps, q, buf);
    }
    free(buf);
    tz_zone_free(&zone);
    if (rc < 0)
        search_query_free(out);
    return rc;
}

void
search_query_free(search_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->count; i++)
        free(q->terms[i].value);
    free(q->terms);
    q->terms = NULL;
    q->count = 0;
}

int
search_tz_offset(const char *tz, int64_t t, int32_t *offset_s)
{
    tz_zone zone;
    if (tz_zone_load(tz, &zone) < 0)
        return -1;
    int32_t off = tz_zone_offset(&zone, t);
    tz_zone_free(&zone);
    if (offset_s)
        *offset_s = off;
    return 0;
}
