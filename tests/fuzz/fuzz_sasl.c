/*
 * fuzz_sasl.c - AUTH exchanges (src/auth/sasl.c: PLAIN, LOGIN, CRAM-MD5; base64 in
 * src/core/base64.c) driven through the whole session engine: AUTH commands, initial
 * responses and arbitrary continuation lines, with an on_auth hook answering every
 * verdict (PENDING completed before the next bytes, or left to the session's end).
 *
 * Input layout:
 *   [0]     options: bits 0-1 mechanisms (all, "PLAIN LOGIN", "CRAM-MD5",
 *           "login Cram-md5"), 2 no allow-insecure-auth (then bit 7 decides TLS),
 *           3 auth-required, 4 max-errors 3, 5 no "EHLO fuzz" prefix, 6 on_log hook,
 *           7 the session is marked TLS (session_tls_done)
 *   [1]     driver: bits 0-2 number of extra cuts, 3-4 how the session ends (eof,
 *           timeout, shutdown, free)
 *   [2..9]  verdict script: each hook call and each completion takes the next byte
 *   then 2 bytes per cut (a position in the client bytes), then the client bytes.
 *
 * Invariants: replies are CRLF lines "ddd[ -]text" of at most 512 octets, nothing after
 * a final 221/421; on_auth sees a configured mechanism, a user, a password exactly for
 * PLAIN/LOGIN and no NUL-cut credential; smtpd_auth_check_password agrees with the
 * password given; MAIL under auth-required only after a successful AUTH; the transcript
 * never shows a credential: after a 334 the next logged client line is "***" and an
 * AUTH with an initial response is logged as "AUTH MECH ***".
 */
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

static const char *const mech_sets[] = {NULL, "PLAIN LOGIN", "CRAM-MD5", "login Cram-md5"};

typedef struct fz {
    const uint8_t *script;
    size_t script_pos;
    const smtpd_options *opts;
    smtpd_ticket ticket;
    bool have_ticket;
    bool final_seen;
    int multi_code;
    bool masked_next;       /* a 334 went out: the next client line must be logged as "***" */
    char accepted_user[64]; /* the user on_auth saw last */
    unsigned asked;         /* on_auth calls: every 235 answers one */
    unsigned ok_replies;    /* 235 replies seen */
} fz;

static uint8_t
fz_next(fz *z)
{
    uint8_t b = z->script[z->script_pos % SCRIPT_LEN];
    b ^= (uint8_t)((z->script_pos / SCRIPT_LEN) * 0x3b);
    z->script_pos++;
    return b;
}

static bool
mech_enabled(const fz *z, const char *mech)
{
    const char *list = z->opts->auth_mechanisms;
    if (!list)
        return true;
    size_t n = strlen(mech);
    for (const char *p = list; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (len == n && str_ieqn(p, mech, n))
            return true;
        p += len;
    }
    return false;
}

static smtpd_verdict
on_auth_cb(smtpd_session *s, const smtpd_auth *a, void *user)
{
    fz *z = user;
    CHECK(a && a->mechanism && a->user && a->authzid);
    CHECK(strcmp(a->mechanism, "PLAIN") == 0 || strcmp(a->mechanism, "LOGIN") == 0 ||
          strcmp(a->mechanism, "CRAM-MD5") == 0);
    CHECK(mech_enabled(z, a->mechanism));
    CHECK(smtpd_session_auth_user(s) == NULL);
    if (strcmp(a->mechanism, "CRAM-MD5") == 0) {
        CHECK(a->password == NULL);
        CHECK(*a->user);
        /* the digest is 32 characters; a wrong password never matches */
        CHECK(smtpd_auth_check_password(s, a, "") == 0 ||
              smtpd_auth_check_password(s, a, "x") == 0);
    } else {
        CHECK(a->password != NULL);
        if (strcmp(a->mechanism, "PLAIN") == 0)
            CHECK(*a->user && *a->password); /* empty ones are refused before the hook */
        CHECK(smtpd_auth_check_password(s, a, a->password) == 1);
        char longer[600];
        snprintf(longer, sizeof longer, "%sx", a->password);
        CHECK(smtpd_auth_check_password(s, a, longer) == 0);
        if (*a->password)
            CHECK(smtpd_auth_check_password(s, a, a->password + 1) == 0);
        CHECK(smtpd_auth_check_password(NULL, a, a->password) == 0);
    }
    snprintf(z->accepted_user, sizeof z->accepted_user, "%s", a->user);
    z->asked++;
    uint8_t b = fz_next(z);
    switch (b & 7) {
    case 0:
    case 1:
        return SMTPD_ACCEPT;
    case 2:
        return SMTPD_REJECT;
    case 3:
        return SMTPD_TEMPFAIL;
    case 4:
    case 5:
        z->ticket = smtpd_session_ticket(s);
        z->have_ticket = true;
        return SMTPD_PENDING;
    case 6: {
        int rc = smtpd_session_set_reply(s, (b & 8) ? 535 : 454, (b & 16) ? "5.7.8" : NULL,
                                         (b & 32) ? "go away\r\nnow" : "no");
        CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
        return (b & 64) ? SMTPD_REJECT : SMTPD_ACCEPT;
    }
    default:
        return (b >> 3) == 0x1f ? SMTPD_DISCONNECT : SMTPD_ACCEPT;
    }
}

static smtpd_verdict
on_mail_cb(smtpd_session *s, const char *sender, void *user)
{
    fz *z = user;
    (void)sender;
    if (z->opts->auth_required)
        CHECK(smtpd_session_auth_user(s) != NULL);
    return SMTPD_ACCEPT;
}

static smtpd_verdict
on_deliver_cb(smtpd_session *s, const smtpd_message *m, void *user)
{
    (void)s;
    (void)m;
    (void)user;
    return SMTPD_ACCEPT;
}

/* The transcript must never carry a credential. */
static void
on_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    (void)s;
    fz *z = user;
    CHECK(line != NULL && memchr(line, '\n', len) == NULL);
    if (dir == SMTPD_LOG_OUT) {
        if (len >= 4 && memcmp(line, "334 ", 4) == 0)
            z->masked_next = true;
        return;
    }
    if (dir != SMTPD_LOG_IN)
        return;
    if (z->masked_next) {
        CHECK(len == 3 && memcmp(line, "***", 3) == 0);
        z->masked_next = false;
        return;
    }
    if (len >= 4 && str_ieqn(line, "AUTH", 4) && (len == 4 || line[4] == ' ')) {
        const char *mech = line + 4 + strspn(line + 4, " ");
        size_t mlen = strcspn(mech, " ");
        /* an initial response follows the mechanism: masked, also on a line refused
           before parsing (regressions/fuzz_sasl/auth-plain-*-logged, fixed in cc00081) */
        if (mech[mlen])
            CHECK(len >= 4 && memcmp(line + len - 4, " ***", 4) == 0);
    }
}

static void
fz_drain(fz *z, smtpd_session *s)
{
    buf *out = session_output(s);
    const char *p = out->data;
    size_t n = out->len, i = 0;
    while (i < n) {
        const char *crlf = NULL;
        for (size_t k = i; k + 1 < n; k++) {
            if (p[k] == '\r' || p[k] == '\n') {
                CHECK(p[k] == '\r' && p[k + 1] == '\n');
                crlf = p + k;
                break;
            }
        }
        CHECK(crlf != NULL);
        size_t len = (size_t)(crlf - (p + i)) + 2;
        const char *l = p + i;
        CHECK(len >= 5 && len <= 512);
        CHECK(!z->final_seen);
        CHECK(l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' &&
              l[2] <= '9');
        CHECK(l[3] == ' ' || l[3] == '-' || (l[3] == '\r' && len == 5));
        int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        if (z->multi_code)
            CHECK(code == z->multi_code);
        z->multi_code = l[3] == '-' ? code : 0;
        if (l[3] != '-' && (code == 221 || code == 421))
            z->final_seen = true;
        if (code == 235) /* only a hook's answer authenticates */
            CHECK(++z->ok_replies <= z->asked);
        i += len;
    }
    CHECK(z->multi_code == 0);
    if (z->final_seen)
        CHECK(session_is_closing(s));
    buf_consume(out, n);
    if (smtpd_session_auth_user(s))
        CHECK(strncmp(smtpd_session_auth_user(s), z->accepted_user, sizeof z->accepted_user - 1) ==
              0);
}

static void
fz_complete(fz *z, smtpd_session *s, time_t now)
{
    CHECK(z->have_ticket);
    smtpd_ticket t = z->ticket;
    CHECK(session_complete(s, t.seq + 1, SMTPD_ACCEPT, 0, NULL, NULL, now) == SMTPD_ENOENT);
    uint8_t b = fz_next(z);
    smtpd_verdict v = (b & 3) == 0 ? SMTPD_REJECT : (b & 3) == 1 ? SMTPD_TEMPFAIL : SMTPD_ACCEPT;
    if (b == 0xff)
        v = SMTPD_DISCONNECT;
    int rc = session_complete(s, t.seq, v, (b & 4) ? 535 : 0, NULL, (b & 8) ? "nope" : NULL, now);
    CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
    CHECK(!session_is_blocked(s));
    z->have_ticket = false;
    fz_drain(z, s);
}

static int
cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void
fz_feed(fz *z, smtpd_session *s, const char *p, size_t n, time_t now)
{
    size_t pos = 0;
    while (pos < n && !session_is_closing(s)) {
        if (session_is_blocked(s))
            fz_complete(z, s, now);
        size_t used = session_feed(s, p + pos, n - pos, now);
        CHECK(used <= n - pos);
        pos += used;
        fz_drain(z, s);
        if (pos < n)
            CHECK(session_is_blocked(s) || session_is_closing(s));
    }
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

    size_t ncuts = drv & 7, cuts[9], k = 0;
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
    want.auth_mechanisms = mech_sets[ctrl & 3];
    want.allow_insecure_auth = !(ctrl & 4);
    want.auth_required = (ctrl & 8) != 0;
    if (ctrl & 16)
        want.max_errors = 3;
    smtpd_options opts;
    CHECK(options_copy(&opts, &want) == SMTPD_OK);
    z.opts = &opts;

    smtpd_hooks hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.on_auth = on_auth_cb;
    hooks.on_mail = on_mail_cb;
    hooks.on_deliver = on_deliver_cb;
    if (ctrl & 64)
        hooks.on_log = on_log_cb;

    session_env env;
    memset(&env, 0, sizeof env);
    env.opts = &opts;
    env.hooks = &hooks;
    env.user = &z;
    snprintf(env.id_prefix, sizeof env.id_prefix, "FZ");
    atomic_init(&env.next_msg_id, 1);

    const time_t now = 1700000000;
    smtpd_session *s = session_new(&env, 1, "192.0.2.1", 25);
    CHECK(s != NULL);
    session_start(s, now);
    if (ctrl & 128)
        session_tls_done(s, "TLSv1.3", "TLS_AES_128_GCM_SHA256", NULL);
    fz_drain(&z, s);
    if (!(ctrl & 32))
        fz_feed(&z, s, "EHLO fuzz\r\n", 11, now);

    size_t start = 0;
    for (k = 0; k <= ncuts && !session_is_closing(s); k++) {
        fz_feed(&z, s, (const char *)p + start, cuts[k] - start, now);
        start = cuts[k];
    }
    bool late = session_is_blocked(s) && !session_is_closing(s) && (fz_next(&z) & 1);
    if (session_is_blocked(s) && !session_is_closing(s) && !late)
        fz_complete(&z, s, now);
    switch ((drv >> 3) & 3) {
    case 0:
        session_eof(s);
        break;
    case 1:
        session_timeout(s);
        break;
    case 2:
        session_shutdown(s);
        break;
    default:
        break;
    }
    fz_drain(&z, s);
    if (late) {
        bool was_closing = session_is_closing(s);
        int rc = session_complete(s, z.ticket.seq, SMTPD_ACCEPT, 0, NULL, NULL, now);
        CHECK(rc == SMTPD_OK || rc == SMTPD_EINVAL);
        if (was_closing)
            CHECK(session_output(s)->len == 0);
        fz_drain(&z, s);
    }
    session_free(s);
    options_cleanup(&opts);
    return 0;
}
