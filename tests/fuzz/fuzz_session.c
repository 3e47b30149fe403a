/*
 * fuzz_session.c - the whole SMTP engine fed arbitrary bytes.
 *
 * Input layout:
 *   [0]     options: bits 0-1 bare-lf mode, 2 small limits, 3 no PIPELINING, 4 no enhanced
 *           codes, 5 no SMTPUTF8, 6 no VRFY, 7 on_data_chunk hook
 *   [1]     driver: bits 0-2 number of extra cuts, 3-4 how the session ends (eof, timeout,
 *           shutdown, free), 5 IPv6 client, 6 refused as busy, 7 on_log hook
 *   [2..9]  verdict script: each hook call and each completion takes the next byte; so
 *           does each moment the session is blocked on a PENDING answer with bytes
 *           still to feed: the answer comes at once, or after the rest of the piece was
 *           offered to the blocked session (it must take none of it), or never (the
 *           connection ends first, one of four ways, and the late answer is dropped);
 *           completions come with a clock some seconds later
 *   then 2 bytes per cut (a position in the client bytes), then the client bytes.
 *
 * Invariants checked: every output line ends in CRLF and holds no other CR or LF; lines
 * start with a code 200-599 and ' ' or '-'; a multi-line reply keeps its code; lines are
 * at most 512 octets; nothing follows a final 221/421 and the session is then closing;
 * output is bounded by the input; session_feed only stops early when blocked or closing;
 * completions with a wrong ticket are refused, a right one unblocks; delivered messages
 * have a well-formed trace and respect the limits and the bare-lf mode; on_data_chunk
 * saw exactly the delivered content; with on_log, every command line gets exactly one
 * reply.
 */
#include "core/buf.h"
#include "core/str.h"
#include "smtp/options.h"
#include "smtp/session.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define SCRIPT_LEN 8
#define HEADER_LEN (2 + SCRIPT_LEN)

typedef struct fz {
    const uint8_t *script;
    size_t script_pos;
    smtpd_options *opts;
    bool chunk_hook;
    buf chunks;
    bool chunks_ok;
    smtpd_ticket ticket;
    bool have_ticket;
    size_t out_total;
    size_t out_limit;
    bool final_seen; /* a final 221/421 line was sent */
    int multi_code;  /* code of an open multi-line reply, or 0 */
    size_t awaiting; /* command lines logged without their final reply yet */
} fz;

static uint8_t
fz_next(fz *z)
{
    uint8_t b = z->script[z->script_pos % SCRIPT_LEN];
    /* vary over time so a short script does not repeat exactly */
    b ^= (uint8_t)((z->script_pos / SCRIPT_LEN) * 0x3b);
    z->script_pos++;
    return b;
}

static const int reply_codes[] = {250, 421, 451, 550, 554, 221, 700, 199};
static const char *const reply_enh[] = {NULL,     "5.1.1", "4.2.0", "2.0.0",
                                        "5.1.1x", "5.0.0", "4.7.1", ""};
static const char *const reply_text[] = {
    "custom",
    "two\nlines",
    "ctl\r\x01\x7f\x1b",
    NULL,
    "",
    "\n\n\n",
    "caf\xc3\xa9",
    "a very long line xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "\xc3\xa9\xc3\xa9\xc3\xa9 end"};

/* A hook's answer from the script. allow_pending: the hook may answer PENDING. */
static smtpd_verdict
fz_verdict(fz *z, smtpd_session *s, bool allow_pending)
{
    uint8_t b = fz_next(z);
    switch (b & 7) {
    case 0:
    case 1:
    case 2:
        return SMTPD_ACCEPT;
    case 3:
        return SMTPD_REJECT;
    case 4:
        return SMTPD_TEMPFAIL;
    case 5:
        if (!allow_pending)
            return SMTPD_PENDING; /* on_data_chunk: not allowed, must be survivable */
        z->ticket = smtpd_session_ticket(s);
        z->have_ticket = true;
        CHECK(z->ticket.session_id == smtpd_session_id(s));
        return SMTPD_PENDING;
    case 6: {
        uint8_t c = fz_next(z);
        int rc = smtpd_session_set_reply(s, reply_codes[c & 7], reply_enh[(c >> 3) & 7],
                                         reply_text[(b >> 3) & 7]);
        CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
        return (c >> 6) == 0 ? SMTPD_ACCEPT : (c >> 6) == 1 ? SMTPD_TEMPFAIL : SMTPD_REJECT;
    }
    default:
        return (b >> 3) == 0x1f ? SMTPD_DISCONNECT : SMTPD_ACCEPT;
    }
}

static bool
fz_has_bare(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            return true;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return true;
    }
    return false;
}

static smtpd_verdict
on_connect_cb(smtpd_session *s, void *user)
{
    return fz_verdict(user, s, true);
}

static smtpd_verdict
on_helo_cb(smtpd_session *s, const char *name, void *user)
{
    CHECK(name && *name);
    return fz_verdict(user, s, true);
}

static smtpd_verdict
on_mail_cb(smtpd_session *s, const char *sender, void *user)
{
    CHECK(str_is_utf8(sender, strlen(sender)));
    CHECK(strlen(sender) <= 256);
    return fz_verdict(user, s, true);
}

static smtpd_verdict
on_rcpt_cb(smtpd_session *s, const char *rcpt, void *user)
{
    fz *z = user;
    CHECK(*rcpt && str_is_utf8(rcpt, strlen(rcpt)));
    CHECK(smtpd_session_sender(s) != NULL);
    CHECK(smtpd_session_rcpt_count(s) < z->opts->max_recipients);
    return fz_verdict(z, s, true);
}

static smtpd_verdict
on_data_cb(smtpd_session *s, void *user)
{
    fz *z = user;
    CHECK(smtpd_session_rcpt_count(s) >= 1);
    buf_clear(&z->chunks);
    z->chunks_ok = true;
    return fz_verdict(z, s, true);
}

static smtpd_verdict
on_chunk_cb(smtpd_session *s, const char *data, size_t len, void *user)
{
    fz *z = user;
    CHECK(len > 0);
    if (buf_append(&z->chunks, data, len) != BUF_OK)
        z->chunks_ok = false;
    return fz_verdict(z, s, false);
}

static smtpd_verdict
on_deliver_cb(smtpd_session *s, const smtpd_message *m, void *user)
{
    fz *z = user;
    const smtpd_options *o = z->opts;
    CHECK(m->id && *m->id);
    CHECK(m->rcpt_count >= 1 && m->rcpt_count <= o->max_recipients);
    CHECK(m->trace_size <= m->size);
    CHECK(m->size - m->trace_size <= o->max_message_size);
    CHECK(str_is_utf8(m->sender, strlen(m->sender)));
    for (size_t i = 0; i < m->rcpt_count; i++)
        CHECK(m->rcpts[i] && str_is_utf8(m->rcpts[i], strlen(m->rcpts[i])));
    /* the trace: Return-Path then Received, CRLF lines, folded with a tab, nothing bare */
    const char *t = m->data;
    CHECK(m->trace_size > 30 && memcmp(t, "Return-Path: <", 14) == 0);
    CHECK(!fz_has_bare(t, m->trace_size));
    CHECK(memcmp(t + m->trace_size - 2, "\r\n", 2) == 0);
    for (size_t i = 0; i + 2 < m->trace_size; i++) {
        if (t[i] == '\n')
            CHECK(t[i + 1] == '\t' || memcmp(t + i + 1, "Received: ", 10) == 0);
        CHECK((unsigned char)t[i] >= 32 || t[i] == '\r' || t[i] == '\n' || t[i] == '\t');
    }
    const char *content = m->data + m->trace_size;
    size_t clen = m->size - m->trace_size;
    if (o->bare_lf == SMTPD_BARE_LF_REJECT)
        CHECK(!(m->findings & (SMTPD_FINDING_BARE_LF | SMTPD_FINDING_BARE_CR)));
    if (o->bare_lf != SMTPD_BARE_LF_ACCEPT)
        CHECK(!fz_has_bare(content, clen));
    if (!(m->findings & (SMTPD_FINDING_BARE_LF | SMTPD_FINDING_BARE_CR)))
        CHECK(!fz_has_bare(content, clen));
    if (m->body_8bitmime)
        CHECK(!(m->findings & SMTPD_FINDING_8BIT_UNDECLARED));
    if (z->chunk_hook && z->chunks_ok)
        CHECK(z->chunks.len == clen && memcmp(buf_str(&z->chunks), content, clen) == 0);
    CHECK((m->findings & ~((SMTPD_FINDING_NO_QUIT << 1) - 1)) == 0);
    return fz_verdict(z, s, true);
}

/* The transcript: every command line (IN) gets exactly one final reply line (OUT). */
static void
on_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    (void)s;
    fz *z = user;
    CHECK(line != NULL);
    CHECK(memchr(line, '\n', len) == NULL);
    switch (dir) {
    case SMTPD_LOG_IN:
        z->awaiting++;
        break;
    case SMTPD_LOG_OUT:
        CHECK(len >= 3 && len <= 510);
        CHECK(memchr(line, '\r', len) == NULL);
        if ((len == 3 || line[3] == ' ') && z->awaiting > 0)
            z->awaiting--;
        break;
    case SMTPD_LOG_INFO:
        break;
    }
}

/* Check and remove the queued output. */
static void
fz_drain(fz *z, smtpd_session *s)
{
    buf *out = session_output(s);
    const char *p = out->data;
    size_t n = out->len;
    /* FUZZ_SESSION_TRACE=1 ./fuzz_session crash-file: show the replies */
    static int trace = -1;
    if (trace < 0)
        trace = getenv("FUZZ_SESSION_TRACE") != NULL;
    if (trace && n)
        fprintf(stderr, "S: %.*s", (int)n, p);
    z->out_total += n;
    CHECK(z->out_total <= z->out_limit);
    size_t i = 0;
    while (i < n) {
        const char *crlf = NULL;
        for (size_t k = i; k + 1 < n; k++) {
            if (p[k] == '\r' || p[k] == '\n') {
                CHECK(p[k] == '\r' && p[k + 1] == '\n'); /* nothing bare */
                crlf = p + k;
                break;
            }
        }
        CHECK(crlf != NULL); /* every line ends in CRLF */
        size_t len = (size_t)(crlf - (p + i)) + 2;
        const char *l = p + i;
        CHECK(len <= 512);
        CHECK(len >= 5);
        CHECK(!z->final_seen); /* nothing after a final 221/421 */
        CHECK(l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' &&
              l[2] <= '9');
        /* RFC 5321 4.2: Reply-code [ SP textstring ] CRLF, or "code-" on all but the last */
        CHECK(l[3] == ' ' || l[3] == '-' || (l[3] == '\r' && len == 5));
        int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        if (z->multi_code)
            CHECK(code == z->multi_code);
        z->multi_code = l[3] == '-' ? code : 0;
        if (l[3] != '-' && (code == 221 || code == 421))
            z->final_seen = true;
        i += len;
    }
    CHECK(z->multi_code == 0); /* replies are queued whole */
    if (z->final_seen)
        CHECK(session_is_closing(s));
    buf_consume(out, n);
}

static void
fz_complete(fz *z, smtpd_session *s, time_t now)
{
    CHECK(z->have_ticket);
    smtpd_ticket t = z->ticket;
    CHECK(session_complete(s, t.seq + 1, SMTPD_ACCEPT, 0, NULL, NULL, now) == SMTPD_ENOENT);
    CHECK(session_complete(s, t.seq, SMTPD_PENDING, 0, NULL, NULL, now) == SMTPD_ENOENT);
    CHECK(session_is_blocked(s));
    uint8_t b = fz_next(z);
    smtpd_verdict v = (b & 3) == 0 ? SMTPD_REJECT : (b & 3) == 1 ? SMTPD_TEMPFAIL : SMTPD_ACCEPT;
    if (b == 0xff)
        v = SMTPD_DISCONNECT;
    int code = 0;
    const char *enh = NULL, *text = NULL;
    if (b & 4) {
        code = reply_codes[(b >> 3) & 7];
        enh = reply_enh[(b >> 5) & 7];
        text = reply_text[(b >> 2) & 7];
    }
    int rc = session_complete(s, t.seq, v, code, enh, text, now);
    CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
    CHECK(!session_is_blocked(s));
    CHECK(session_complete(s, t.seq, SMTPD_ACCEPT, 0, NULL, NULL, now) == SMTPD_ENOENT);
    z->have_ticket = false;
    fz_drain(z, s);
    CHECK(z->awaiting == 0);
}

static int
cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_LEN)
        return 0;
    uint8_t ctrl = data[0], drv = data[1];
    fz z;
    memset(&z, 0, sizeof z);
    z.script = data + 2;
    const uint8_t *p = data + HEADER_LEN;
    size_t n = size - HEADER_LEN;

    /* cut points */
    size_t ncuts = drv & 7, cuts[9];
    size_t k = 0;
    for (; k < ncuts && n >= 2; k++) {
        cuts[k] = ((size_t)p[0] << 8) | p[1];
        p += 2;
        n -= 2;
    }
    ncuts = k;
    for (k = 0; k < ncuts; k++)
        cuts[k] %= n + 1;
    qsort(cuts, ncuts, sizeof cuts[0], cmp_size);
    cuts[ncuts] = n;

    smtpd_options want;
    smtpd_options_init(&want);
    want.hostname = "fuzz.example";
    want.bare_lf = (smtpd_bare_lf)((ctrl & 3) % 3);
    if (ctrl & 4) {
        want.max_message_size = 1024;
        want.max_recipients = 2;
        want.max_errors = 3;
        want.max_junk = 3;
        want.max_text_line = 80;
    }
    want.pipelining = !(ctrl & 8);
    want.enhanced_status_codes = !(ctrl & 16);
    want.smtputf8 = !(ctrl & 32);
    want.vrfy = !(ctrl & 64);
    smtpd_options opts;
    CHECK(options_copy(&opts, &want) == SMTPD_OK);

    z.opts = &opts;
    z.chunk_hook = (ctrl & 128) != 0;
    buf_init(&z.chunks, opts.max_message_size + 16);
    z.out_limit = 1024 * (size + 8);

    smtpd_hooks hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.on_connect = on_connect_cb;
    hooks.on_helo = on_helo_cb;
    hooks.on_mail = on_mail_cb;
    hooks.on_rcpt = on_rcpt_cb;
    hooks.on_data = on_data_cb;
    hooks.on_deliver = on_deliver_cb;
    if (z.chunk_hook)
        hooks.on_data_chunk = on_chunk_cb;
    if (drv & 128)
        hooks.on_log = on_log_cb;

    session_env env;
    memset(&env, 0, sizeof env);
    env.opts = &opts;
    env.hooks = &hooks;
    env.user = &z;
    snprintf(env.id_prefix, sizeof env.id_prefix, "FZ");
    atomic_init(&env.next_msg_id, 1);

    const time_t now = 1700000000;
    smtpd_session *s = session_new(&env, 1, (drv & 32) ? "2001:db8::1" : "192.0.2.1", 25);
    CHECK(s != NULL);
    if (drv & 64)
        session_refuse_busy(s);
    else
        session_start(s, now);
    fz_drain(&z, s);

    size_t start = 0;
    bool end_pending = false;
    for (k = 0; k <= ncuts && !session_is_closing(s) && !end_pending; k++) {
        const char *piece = (const char *)p + start;
        size_t plen = cuts[k] - start, pos = 0;
        start = cuts[k];
        while (pos < plen && !session_is_closing(s)) {
            if (session_is_blocked(s)) {
                /* what the I/O layer may see while an answer is pending, by the script:
                   more bytes (read, but fed to a blocked session they are not taken),
                   the connection's end (the answer then comes too late), or nothing */
                uint8_t w = fz_next(&z);
                if ((w & 3) == 1) {
                    CHECK(session_feed(s, piece + pos, plen - pos, now) == 0);
                    CHECK(session_output(s)->len == 0);
                    CHECK(session_is_blocked(s));
                } else if ((w & 3) == 2 && (w & 4)) {
                    end_pending = true;
                    break;
                }
                fz_complete(&z, s, now + (w >> 4)); /* some seconds later, or none */
            }
            size_t used = session_feed(s, piece + pos, plen - pos, now);
            CHECK(used <= plen - pos);
            pos += used;
            fz_drain(&z, s);
            /* the session only stops early while blocked or closing */
            if (pos < plen)
                CHECK(session_is_blocked(s) || session_is_closing(s));
            /* one reply per command, unless its answer is pending */
            if (!session_is_blocked(s))
                CHECK(z.awaiting == 0);
        }
    }
    /* answer what is still pending (or, with an odd script byte, let the session end
       first: the late answer must then be dropped), then end one of four ways */
    bool late =
        session_is_blocked(s) && !session_is_closing(s) && (end_pending || (fz_next(&z) & 1));
    if (session_is_blocked(s) && !session_is_closing(s) && !late)
        fz_complete(&z, s, now);
    switch ((drv >> 3) & 3) {
    case 0:
        session_eof(s);
        CHECK(session_is_closing(s));
        break;
    case 1:
        session_timeout(s);
        CHECK(session_is_closing(s));
        break;
    case 2:
        session_shutdown(s);
        CHECK(session_is_closing(s));
        break;
    default:
        break;
    }
    fz_drain(&z, s);
    if (late) {
        CHECK(z.have_ticket);
        bool was_closing = session_is_closing(s);
        int rc = session_complete(s, z.ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, now);
        CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
        CHECK(!session_is_blocked(s));
        if (was_closing)
            CHECK(session_output(s)->len == 0); /* nothing after the last word */
        fz_drain(&z, s);
    }
    /* a closing session reads nothing more */
    bool closing = session_is_closing(s);
    size_t extra = session_feed(s, "NOOP\r\n", 6, now);
    if (closing)
        CHECK(extra == 0);
    CHECK((smtpd_session_findings(s) & ~((SMTPD_FINDING_NO_QUIT << 1) - 1)) == 0);
    session_free(s);
    buf_cleanup(&z.chunks);
    options_cleanup(&opts);
    return 0;
}
