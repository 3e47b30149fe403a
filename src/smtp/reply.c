/* reply.c - the one SMTP reply formatter; see reply.h. */
#include "smtp/reply.h"

#include <stdio.h>
#include <string.h>

bool
reply_code_is_valid(int code)
{
    return code >= 200 && code <= 599;
}

/* RFC 3463 2: class "." subject "." detail; class 2, 4 or 5, subject 1-3 digits,
   detail 1-3 digits. */
bool
reply_enhanced_is_valid(const char *s, int code)
{
    if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    if (s[0] - '0' != code / 100)
        return false;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4)
            p++, digits++;
        if (digits == 0 || digits > 3)
            return false;
        if (part == 0 && *p++ != '.')
            return false;
    }
    return *p == '\0';
}

int
reply_format(buf *out, int code, const char *enhanced, const char *text,
             void (*line_cb)(void *ctx, const char *line, size_t len), void *ctx)
{
    const char *p = text ? text : "";
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t tlen = nl ? (size_t)(nl - p) : strlen(p);
        bool last = nl == NULL || nl[1] == '\0';
        char line[REPLY_MAX_LINE];
        int n = snprintf(line, sizeof line, "%03d%c%s%s", code, last ? ' ' : '-',
                         enhanced ? enhanced : "", enhanced && (tlen || !last) ? " " : "");
        if (n < 0 || (size_t)n >= sizeof line)
            return BUF_EFULL;
        size_t len = (size_t)n;
        /* Room for the text, leaving two octets for CRLF within the 512 limit. */
        size_t room = sizeof line - 2 - len;
        if (tlen > room) {
            /* cut on a character boundary: never send a broken UTF-8 sequence */
            tlen = room;
            while (tlen > 0 && ((unsigned char)p[tlen] & 0xc0) == 0x80)
                tlen--;
        }
        for (size_t i = 0; i < tlen; i++) {
            unsigned char c = (unsigned char)p[i];
            line[len++] = (c < 32 && c != '\t') || c == 127 ? '?' : (char)c;
        }
        /* 4.2: "Reply-code [ SP textstring ]": no SP without text on the last line;
           except an empty AUTH challenge, which RFC 4954 4 writes as "334 " */
        if (tlen == 0 && line[len - 1] == ' ' && code != 334)
            len--;
        if (line_cb)
            line_cb(ctx, line, len);
        line[len++] = '\r';
        line[len++] = '\n';
        int rc = buf_append(out, line, len);
        if (rc != BUF_OK)
            return rc;
        if (last)
            return BUF_OK;
        p = nl + 1;
    }
}
