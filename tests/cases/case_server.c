/*
 * case_server.c - the server side of the protocol cases in tests/cases (the .case files).
 *
 * It embeds libsmtpd through the public header only, the way an application does, and
 * writes every hook call to an events file that test_cases.py compares with the case.
 *
 * Usage:
 *   case_server [--opt NAME=VALUE]... [--hook SPEC]... [--auth USER:PASS]... [--log]
 *               [--listen-tls] --events FILE
 *
 *   --opt NAME=VALUE  smtpd_server_configure(NAME, VALUE); on error: message, exit 2.
 *                     Before the --opt values, hostname is set to "mx.example" so
 *                     replies are predictable; "--opt hostname=..." overrides it.
 *   --hook SPEC       a verdict rule (below); rules are tried in order, first match wins,
 *                     no match answers ACCEPT.
 *   --auth USER:PASS  a credential (repeatable; PASS is the rest after the first ':').
 *                     Any --auth, or any auth: rule, sets the on_auth hook (without it
 *                     the library offers no AUTH). on_auth without a matching auth: rule
 *                     "checks": ACCEPT when a credential has exactly this user and
 *                     smtpd_auth_check_password(s, auth, PASS) is 1, else REJECT.
 *   --listen-tls      also listen for implicit TLS (smtpd_server_listen_tls) on
 *                     127.0.0.1 port 0; needs tls-cert/tls-key through --opt.
 *   --log             also record the on_log transcript (events log-in/log-out/log-info).
 *   --events FILE     the events file (truncated at start).
 *
 * on_tls is always set (it records the tls event; tls: rules may refuse).
 *
 * It listens on 127.0.0.1 port 0, starts the server in its own thread, prints
 * "PORT <n>" (with --listen-tls "PORT <n> TLSPORT <m>") on stdout, then waits until stdin reaches
 * EOF (or SIGTERM), completes every queued pending answer, calls smtpd_server_stop(srv, 1000) and
 * smtpd_server_free, and exits 0. SIGPIPE is ignored, as an embedding application does.
 *
 * Hook SPEC:  STAGE:VERDICT[/MS]:GLOB[:CODE:ENHANCED:TEXT]
 *   STAGE     connect | helo | mail | rcpt | data | chunk | deliver | auth | tls
 *   VERDICT   accept | reject | tempfail | disconnect, and for auth also check (the
 *             password check of --auth, decided during the hook). With /MS the hook
 *             answers SMTPD_PENDING and a worker thread calls smtpd_server_complete with
 *             VERDICT (and the reply, if given) MS milliseconds later.
 *   GLOB      matched case-insensitively ('*' any run, '?' one octet) against:
 *             connect: the client address; helo: the HELO/EHLO argument; mail: the
 *             sender (without < >, "" for <>); rcpt: the recipient; data, deliver: the
 *             sender; chunk: the data piece; auth: the user (authentication identity);
 *             tls: the TLS version ("TLSv1.3"). GLOB cannot contain ':'.
 *   CODE:ENHANCED:TEXT  an optional reply, set with smtpd_session_set_reply before the
 *             verdict (or given to smtpd_server_complete). ENHANCED may be empty (NULL).
 *             TEXT is the rest of the SPEC (it may contain ':'); "\n" in it is a newline.
 *   Examples: mail:reject:*@bad.example     rcpt:tempfail:*     deliver:accept/300
 *             rcpt:reject:nobody@*:550:5.1.1:no such user     auth:check/300:*
 *             auth:tempfail:slow*:454:4.7.0:try later     tls:disconnect:TLSv1.2
 *
 * Events, one line each (strings escaped: control octets and '\' as \xNN):
 *   connect ADDR                   (ADDR plus " port=N" if the client port is not > 0)
 *   helo NAME
 *   mail <SENDER>
 *   rcpt <RCPT>
 *   data from=<SENDER> rcpts=N helo=NAME esmtp=0|1
 *   deliver from=<S> to=<R1>,<R2> bodylen=N size=N tracelen=N findings=a,b|- 8bitmime=0|1
 *           smtputf8=0|1 id=ID
 *   trace BASE64                   (the trace headers: data[0 .. trace_size))
 *   body BASE64                    (the message after the trace headers)
 *   chunks same|differ|overflow    (the on_data_chunk pieces, joined, against body)
 *   reset
 *   close findings=a,b|-          (smtpd_session_findings at on_close)
 *   pending STAGE                  (the hook answered PENDING)
 *   set-reply-error RC             (smtpd_session_set_reply refused the rule's reply)
 *   complete-error STAGE RC        (smtpd_server_complete did not return 0)
 *   log-in LINE / log-out LINE / log-info LINE   (with --log)
 *   auth mech=M authzid=Z user=U password=P check=0|1|-
 *                                  (on_auth; password "(null)" for CRAM-MD5; check: the
 *                                  smtpd_auth_check_password result against the --auth
 *                                  credential of this user, "-" when there is none)
 *   tls version=V cipher=C peer=P  (on_tls; peer "(null)" without a client certificate)
 *   facts tls=V cipher=C peer=P auth=U
 *                                  (in on_helo, on_mail and after each deliver's chunks
 *                                  line: smtpd_session_tls_version/_cipher/_peer and
 *                                  smtpd_session_auth_user; "-" for NULL)
 */
#include <smtpd.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum stage {
    ST_CONNECT,
    ST_HELO,
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_CHUNK,
    ST_DELIVER,
    ST_AUTH,
    ST_TLS,
    ST_COUNT
};

static const char *const stage_names[ST_COUNT] = {"connect", "helo",    "mail", "rcpt", "data",
                                                  "chunk",   "deliver", "auth", "tls"};

struct rule {
    enum stage stage;
    smtpd_verdict verdict;
    long pending_ms; /* -1: answer at once */
    int check;       /* auth: the password check decides the verdict */
    char *glob;
    int code;       /* 0: no reply of our own */
    char *enhanced; /* NULL: none */
    char *text;
};

struct job {
    struct job *next;
    struct timespec due;
    smtpd_ticket ticket;
    const struct rule *rule;
    smtpd_verdict verdict; /* the rule's, or the password check's for "check" */
};

struct cred {
    char *user;
    char *pass;
};

/* Per-session state: the on_data_chunk pieces of the current message. */
#define CHUNK_CAP (64u * 1024u * 1024u)
struct sess {
    unsigned char *buf;
    size_t len;
    size_t cap;
    int overflow;
};

struct ctx {
    FILE *events;
    pthread_mutex_t ev_lock;
    struct rule *rules;
    size_t nrules;
    int log;
    struct cred *creds;
    size_t ncreds;
    int has_auth; /* --auth or an auth: rule: set on_auth */
    int listen_tls;
    smtpd_server *srv;
    /* the worker that completes pending answers */
    pthread_mutex_t job_lock;
    pthread_cond_t job_cond;
    struct job *jobs;
    int quit;
};

static volatile sig_atomic_t got_term;

static void
on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

/* ---------------------------------------------------------------------------------- */
/* Events                                                                              */
/* ---------------------------------------------------------------------------------- */

static void ev_printf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ev_printf(struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&c->ev_lock);
    va_start(ap, fmt);
    vfprintf(c->events, fmt, ap);
    va_end(ap);
    fputc('\n', c->events);
    fflush(c->events);
    pthread_mutex_unlock(&c->ev_lock);
}

/* Write s (len octets) escaped into a new string: control octets, DEL and '\' as \xNN. */
static char *
esc(const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(len * 4 + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

static char *
esc_str(const char *s)
{
    return esc(s != NULL ? s : "(null)", strlen(s != NULL ? s : "(null)"));
}

static char *
base64(const unsigned char *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;

    if (out == NULL)
        return NULL;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* The names of the finding bits, comma separated, "-" for none. */
static void
findings_str(unsigned f, char *buf, size_t size)
{
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned bit = 1; bit != 0 && o + 1 < size; bit <<= 1) {
        const char *name;
        char tmp[16];
        int n;

        if ((f & bit) == 0)
            continue;
        name = smtpd_finding_name(bit);
        if (name == NULL) {
            snprintf(tmp, sizeof(tmp), "0x%x", bit);
            name = tmp;
        }
        n = snprintf(buf + o, size - o, "%s%s", o > 0 ? "," : "", name);
        if (n < 0 || (size_t)n >= size - o)
            break;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, size, "-");
}

/* ---------------------------------------------------------------------------------- */
/* Rules                                                                               */
/* ---------------------------------------------------------------------------------- */

static int
lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Case-insensitive glob: '*' any run of octets, '?' one octet. Iterative, no recursion. */
static int
glob_match(const char *pat, const char *s, size_t len)
{
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    size_t plen = strlen(pat);

    while (i < len) {
        if (p < plen && pat[p] == '*') {
            star_p = p++;
            star_i = i;
        } else if (p < plen &&
                   (pat[p] == '?' || lower((unsigned char)pat[p]) == lower((unsigned char)s[i]))) {
            p++;
            i++;
        } else if (star_p != (size_t)-1) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return 0;
        }
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

static char *
dup_range(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d == NULL) {
        fprintf(stderr, "case_server: out of memory\n");
        exit(2);
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Parse a decimal number in [min, max] from s..end; -1 on error. */
static long
parse_num(const char *s, size_t len, long min, long max)
{
    char buf[24];
    char *end;
    long v;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

static int
parse_rule(const char *spec, struct rule *r)
{
    const char *p = spec, *colon, *slash;
    size_t n;

    memset(r, 0, sizeof(*r));
    r->pending_ms = -1;

    colon = strchr(p, ':');
    if (colon == NULL)
        return -1;
    n = (size_t)(colon - p);
    r->stage = ST_COUNT;
    for (int i = 0; i < ST_COUNT; i++)
        if (strlen(stage_names[i]) == n && memcmp(p, stage_names[i], n) == 0)
            r->stage = (enum stage)i;
    if (r->stage == ST_COUNT)
        return -1;

    p = colon + 1;
    colon = strchr(p, ':');
    if (colon == NULL)
        colon = p + strlen(p);
    slash = memchr(p, '/', (size_t)(colon - p));
    n = (size_t)((slash != NULL ? slash : colon) - p);
    if (n == 6 && memcmp(p, "accept", n) == 0)
        r->verdict = SMTPD_ACCEPT;
    else if (n == 6 && memcmp(p, "reject", n) == 0)
        r->verdict = SMTPD_REJECT;
    else if (n == 8 && memcmp(p, "tempfail", n) == 0)
        r->verdict = SMTPD_TEMPFAIL;
    else if (n == 10 && memcmp(p, "disconnect", n) == 0)
        r->verdict = SMTPD_DISCONNECT;
    else if (n == 5 && memcmp(p, "check", n) == 0 && r->stage == ST_AUTH)
        r->check = 1;
    else
        return -1;
    if (slash != NULL) {
        r->pending_ms = parse_num(slash + 1, (size_t)(colon - slash - 1), 0, 60000);
        if (r->pending_ms < 0)
            return -1;
    }
    if (*colon == '\0') {
        r->glob = dup_range("*", 1);
        return 0;
    }

    p = colon + 1;
    colon = strchr(p, ':');
    if (colon == NULL) {
        r->glob = dup_range(p, strlen(p));
        return 0;
    }
    r->glob = dup_range(p, (size_t)(colon - p));

    p = colon + 1;
    colon = strchr(p, ':');
    if (colon == NULL)
        return -1;
    r->code = (int)parse_num(p, (size_t)(colon - p), 0, 999);
    if (r->code < 0)
        return -1;

    p = colon + 1;
    colon = strchr(p, ':');
    if (colon == NULL)
        return -1;
    if (colon > p)
        r->enhanced = dup_range(p, (size_t)(colon - p));

    /* TEXT: the rest, with "\n" turned into a newline */
    p = colon + 1;
    n = strlen(p);
    r->text = dup_range(p, n);
    {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '\\' && i + 1 < n && p[i + 1] == 'n') {
                r->text[o++] = '\n';
                i++;
            } else {
                r->text[o++] = p[i];
            }
        }
        r->text[o] = '\0';
    }
    return 0;
}

static const struct rule *
find_rule(struct ctx *c, enum stage st, const char *subject, size_t len)
{
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].stage == st && glob_match(c->rules[i].glob, subject, len))
            return &c->rules[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* The worker that completes pending answers                                           */
/* ---------------------------------------------------------------------------------- */

static void
queue_job(struct ctx *c, smtpd_ticket t, const struct rule *r, smtpd_verdict v)
{
    struct job *j = calloc(1, sizeof(*j)), **pp;

    if (j == NULL) {
        fprintf(stderr, "case_server: out of memory\n");
        exit(2);
    }
    j->ticket = t;
    j->rule = r;
    j->verdict = v;
    clock_gettime(CLOCK_MONOTONIC, &j->due);
    j->due.tv_sec += r->pending_ms / 1000;
    j->due.tv_nsec += (r->pending_ms % 1000) * 1000000L;
    if (j->due.tv_nsec >= 1000000000L) {
        j->due.tv_sec++;
        j->due.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->job_lock);
    /* keep the list ordered by due time; equal times keep their order */
    for (pp = &c->jobs; *pp != NULL; pp = &(*pp)->next) {
        struct job *o = *pp;
        if (o->due.tv_sec > j->due.tv_sec ||
            (o->due.tv_sec == j->due.tv_sec && o->due.tv_nsec > j->due.tv_nsec))
            break;
    }
    j->next = *pp;
    *pp = j;
    pthread_cond_signal(&c->job_cond);
    pthread_mutex_unlock(&c->job_lock);
}

static int
ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *
worker_main(void *arg)
{
    struct ctx *c = arg;

    pthread_mutex_lock(&c->job_lock);
    for (;;) {
        struct timespec now;
        struct job *j = c->jobs;

        if (j == NULL) {
            if (c->quit)
                break;
            pthread_cond_wait(&c->job_cond, &c->job_lock);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ts_before(&now, &j->due)) {
            pthread_cond_timedwait(&c->job_cond, &c->job_lock, &j->due);
            continue;
        }
        c->jobs = j->next;
        pthread_mutex_unlock(&c->job_lock);
        {
            const struct rule *r = j->rule;
            int rc =
                smtpd_server_complete(c->srv, j->ticket, j->verdict, r->code, r->enhanced, r->text);
            if (rc != 0)
                ev_printf(c, "complete-error %s %d", stage_names[r->stage], rc);
        }
        free(j);
        pthread_mutex_lock(&c->job_lock);
    }
    pthread_mutex_unlock(&c->job_lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Hooks                                                                               */
/* ---------------------------------------------------------------------------------- */

static struct sess *
sess_get(smtpd_session *s)
{
    struct sess *ss = smtpd_session_get_user(s);

    if (ss == NULL) {
        ss = calloc(1, sizeof(*ss));
        if (ss == NULL) {
            fprintf(stderr, "case_server: out of memory\n");
            exit(2);
        }
        smtpd_session_set_user(s, ss);
    }
    return ss;
}

/* Answer a hook call by the rules: a verdict now, or PENDING and a verdict later. */
static smtpd_verdict
decide(struct ctx *c, smtpd_session *s, enum stage st, const char *subject, size_t len)
{
    const struct rule *r = find_rule(c, st, subject, len);

    if (r == NULL)
        return SMTPD_ACCEPT;
    if (r->pending_ms >= 0) {
        smtpd_ticket t = smtpd_session_ticket(s);
        ev_printf(c, "pending %s", stage_names[st]);
        queue_job(c, t, r, r->verdict);
        return SMTPD_PENDING;
    }
    if (r->code != 0) {
        int rc = smtpd_session_set_reply(s, r->code, r->enhanced, r->text);
        if (rc != 0)
            ev_printf(c, "set-reply-error %d", rc);
    }
    return r->verdict;
}

/* "facts tls=V cipher=C peer=P auth=U" for the session, into buf. */
static void
facts_str(smtpd_session *s, char *buf, size_t size)
{
    const char *v[4];
    char *e[4];

    v[0] = smtpd_session_tls_version(s);
    v[1] = smtpd_session_tls_cipher(s);
    v[2] = smtpd_session_tls_peer(s);
    v[3] = smtpd_session_auth_user(s);
    for (int i = 0; i < 4; i++)
        e[i] = v[i] != NULL ? esc_str(v[i]) : NULL;
    snprintf(buf, size, "facts tls=%s cipher=%s peer=%s auth=%s", e[0] != NULL ? e[0] : "-",
             e[1] != NULL ? e[1] : "-", e[2] != NULL ? e[2] : "-", e[3] != NULL ? e[3] : "-");
    for (int i = 0; i < 4; i++)
        free(e[i]);
    /* is_tls must agree with the version */
    if ((smtpd_session_is_tls(s) != 0) != (v[0] != NULL))
        snprintf(buf, size, "facts-error is_tls=%d version=%s", smtpd_session_is_tls(s),
                 v[0] != NULL ? "set" : "NULL");
}

static void
ev_facts(struct ctx *c, smtpd_session *s)
{
    char buf[2048];

    facts_str(s, buf, sizeof(buf));
    ev_printf(c, "%s", buf);
}

static smtpd_verdict
on_connect_cb(smtpd_session *s, void *user)
{
    struct ctx *c = user;
    const char *addr = smtpd_session_client_addr(s);
    char *e = esc_str(addr);
    int port = smtpd_session_client_port(s);

    (void)sess_get(s);
    if (port > 0)
        ev_printf(c, "connect %s", e != NULL ? e : "?");
    else
        ev_printf(c, "connect %s port=%d", e != NULL ? e : "?", port);
    free(e);
    return decide(c, s, ST_CONNECT, addr != NULL ? addr : "", addr != NULL ? strlen(addr) : 0);
}

static smtpd_verdict
on_helo_cb(smtpd_session *s, const char *name, void *user)
{
    struct ctx *c = user;
    char *e = esc_str(name);

    ev_printf(c, "helo %s", e != NULL ? e : "?");
    free(e);
    ev_facts(c, s);
    return decide(c, s, ST_HELO, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
}

static smtpd_verdict
on_mail_cb(smtpd_session *s, const char *sender, void *user)
{
    struct ctx *c = user;
    char *e = esc_str(sender);

    ev_printf(c, "mail <%s>", e != NULL ? e : "?");
    free(e);
    ev_facts(c, s);
    return decide(c, s, ST_MAIL, sender != NULL ? sender : "", sender != NULL ? strlen(sender) : 0);
}

static smtpd_verdict
on_rcpt_cb(smtpd_session *s, const char *rcpt, void *user)
{
    struct ctx *c = user;
    char *e = esc_str(rcpt);

    ev_printf(c, "rcpt <%s>", e != NULL ? e : "?");
    free(e);
    return decide(c, s, ST_RCPT, rcpt != NULL ? rcpt : "", rcpt != NULL ? strlen(rcpt) : 0);
}

static smtpd_verdict
on_data_cb(smtpd_session *s, void *user)
{
    struct ctx *c = user;
    struct sess *ss = sess_get(s);
    const char *sender = smtpd_session_sender(s);
    char *es = esc_str(sender), *eh = esc_str(smtpd_session_helo(s));

    ss->len = 0;
    ss->overflow = 0;
    ev_printf(c, "data from=<%s> rcpts=%zu helo=%s esmtp=%d", es != NULL ? es : "?",
              smtpd_session_rcpt_count(s), eh != NULL ? eh : "?", smtpd_session_is_esmtp(s));
    free(es);
    free(eh);
    return decide(c, s, ST_DATA, sender != NULL ? sender : "", sender != NULL ? strlen(sender) : 0);
}

static smtpd_verdict
on_data_chunk_cb(smtpd_session *s, const char *data, size_t len, void *user)
{
    struct ctx *c = user;
    struct sess *ss = sess_get(s);

    if (!ss->overflow && len > 0) {
        if (ss->len + len > CHUNK_CAP) {
            ss->overflow = 1;
        } else {
            if (ss->len + len > ss->cap) {
                size_t ncap = ss->cap != 0 ? ss->cap : 4096;
                unsigned char *nb;
                while (ncap < ss->len + len)
                    ncap *= 2;
                nb = realloc(ss->buf, ncap);
                if (nb == NULL) {
                    fprintf(stderr, "case_server: out of memory\n");
                    exit(2);
                }
                ss->buf = nb;
                ss->cap = ncap;
            }
            memcpy(ss->buf + ss->len, data, len);
            ss->len += len;
        }
    }
    return decide(c, s, ST_CHUNK, data != NULL ? data : "", data != NULL ? len : 0);
}

static smtpd_verdict
on_deliver_cb(smtpd_session *s, const smtpd_message *msg, void *user)
{
    struct ctx *c = user;
    struct sess *ss = sess_get(s);
    char findings[512], facts[2048], *to, *es, *eid, *trace, *body;
    size_t tolen = 1, o = 0, bodylen = 0, tracelen = msg->trace_size;
    const char *chunks;

    if (tracelen > msg->size)
        tracelen = msg->size; /* reported as tracelen > size below; keep reads in bounds */
    bodylen = msg->size - tracelen;

    for (size_t i = 0; i < msg->rcpt_count; i++)
        tolen += strlen(msg->rcpts[i]) * 4 + 3;
    to = malloc(tolen);
    if (to == NULL) {
        fprintf(stderr, "case_server: out of memory\n");
        exit(2);
    }
    to[0] = '\0';
    for (size_t i = 0; i < msg->rcpt_count; i++) {
        char *e = esc_str(msg->rcpts[i]);
        int n = snprintf(to + o, tolen - o, "%s<%s>", i > 0 ? "," : "", e != NULL ? e : "?");
        free(e);
        if (n < 0 || (size_t)n >= tolen - o)
            break;
        o += (size_t)n;
    }
    findings_str(msg->findings, findings, sizeof(findings));
    es = esc_str(msg->sender);
    eid = esc_str(msg->id);
    trace = base64((const unsigned char *)msg->data, tracelen);
    body = base64((const unsigned char *)msg->data + tracelen, bodylen);

    if (ss->overflow)
        chunks = "overflow";
    else if (ss->len == bodylen &&
             (bodylen == 0 || memcmp(ss->buf, msg->data + tracelen, bodylen) == 0))
        chunks = "same";
    else
        chunks = "differ";
    facts_str(s, facts, sizeof(facts));

    pthread_mutex_lock(&c->ev_lock); /* the five lines stay together */
    fprintf(c->events,
            "deliver from=<%s> to=%s bodylen=%zu size=%zu tracelen=%zu findings=%s "
            "8bitmime=%d smtputf8=%d id=%s\n",
            es != NULL ? es : "?", to, bodylen, msg->size, msg->trace_size, findings,
            msg->body_8bitmime, msg->smtputf8, eid != NULL ? eid : "?");
    fprintf(c->events, "trace %s\nbody %s\nchunks %s\n%s\n", trace != NULL ? trace : "?",
            body != NULL ? body : "?", chunks, facts);
    fflush(c->events);
    pthread_mutex_unlock(&c->ev_lock);

    free(to);
    free(es);
    free(eid);
    free(trace);
    free(body);
    ss->len = 0;
    return decide(c, s, ST_DELIVER, msg->sender != NULL ? msg->sender : "",
                  msg->sender != NULL ? strlen(msg->sender) : 0);
}

static smtpd_verdict
on_auth_cb(smtpd_session *s, const smtpd_auth *auth, void *user)
{
    struct ctx *c = user;
    const char *u = auth->user != NULL ? auth->user : "";
    const struct cred *cr = NULL;
    const struct rule *r;
    char *em = esc_str(auth->mechanism), *ez = esc_str(auth->authzid), *eu = esc_str(auth->user),
         *ep = esc_str(auth->password);
    int check = -1;
    smtpd_verdict v;

    for (size_t i = 0; i < c->ncreds; i++)
        if (strcmp(c->creds[i].user, u) == 0) {
            cr = &c->creds[i];
            break;
        }
    if (cr != NULL)
        check = smtpd_auth_check_password(s, auth, cr->pass);
    if (check == -1)
        ev_printf(c, "auth mech=%s authzid=%s user=%s password=%s check=-", em ? em : "?",
                  ez ? ez : "?", eu ? eu : "?", ep ? ep : "?");
    else
        ev_printf(c, "auth mech=%s authzid=%s user=%s password=%s check=%d", em ? em : "?",
                  ez ? ez : "?", eu ? eu : "?", ep ? ep : "?", check);
    free(em);
    free(ez);
    free(eu);
    free(ep);

    r = find_rule(c, ST_AUTH, u, strlen(u));
    if (r == NULL || r->check)
        v = check == 1 ? SMTPD_ACCEPT : SMTPD_REJECT;
    else
        v = r->verdict;
    if (r == NULL)
        return v;
    if (r->pending_ms >= 0) {
        smtpd_ticket t = smtpd_session_ticket(s);
        ev_printf(c, "pending auth");
        queue_job(c, t, r, v);
        return SMTPD_PENDING;
    }
    if (r->code != 0) {
        int rc = smtpd_session_set_reply(s, r->code, r->enhanced, r->text);
        if (rc != 0)
            ev_printf(c, "set-reply-error %d", rc);
    }
    return v;
}

static smtpd_verdict
on_tls_cb(smtpd_session *s, void *user)
{
    struct ctx *c = user;
    const char *ver = smtpd_session_tls_version(s);
    char *ev = esc_str(ver), *ec = esc_str(smtpd_session_tls_cipher(s)),
         *ep = esc_str(smtpd_session_tls_peer(s));

    ev_printf(c, "tls version=%s cipher=%s peer=%s", ev ? ev : "?", ec ? ec : "?", ep ? ep : "?");
    free(ev);
    free(ec);
    free(ep);
    return decide(c, s, ST_TLS, ver != NULL ? ver : "", ver != NULL ? strlen(ver) : 0);
}

static void
on_reset_cb(smtpd_session *s, void *user)
{
    (void)s;
    ev_printf(user, "reset");
}

static void
on_close_cb(smtpd_session *s, void *user)
{
    struct ctx *c = user;
    struct sess *ss = smtpd_session_get_user(s);
    char findings[512];

    findings_str(smtpd_session_findings(s), findings, sizeof(findings));
    ev_printf(c, "close findings=%s", findings);
    if (ss != NULL) {
        free(ss->buf);
        free(ss);
        smtpd_session_set_user(s, NULL);
    }
}

static void
on_log_cb(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user)
{
    struct ctx *c = user;
    const char *tag = "log-info";
    char *e;

    (void)s;
    if (!c->log)
        return;
    switch (dir) {
    case SMTPD_LOG_IN:
        tag = "log-in";
        break;
    case SMTPD_LOG_OUT:
        tag = "log-out";
        break;
    case SMTPD_LOG_INFO:
        tag = "log-info";
        break;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    e = esc(line != NULL ? line : "", line != NULL ? len : 0);
    ev_printf(c, "%s %s", tag, e != NULL ? e : "?");
    free(e);
}

/* ---------------------------------------------------------------------------------- */
/* main                                                                                */
/* ---------------------------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr, "usage: case_server [--opt NAME=VALUE]... [--hook SPEC]... "
                    "[--auth USER:PASS]... [--log] [--listen-tls] --events FILE\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static struct ctx c;
    smtpd_hooks hooks;
    const char *events_path = NULL;
    pthread_t worker;
    pthread_condattr_t ca;
    struct sigaction sa;
    int rc, port, tls_port = -1;

    c.rules = calloc((size_t)argc, sizeof(*c.rules));
    c.creds = calloc((size_t)argc, sizeof(*c.creds));
    if (c.rules == NULL || c.creds == NULL)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events_path = argv[++i];
        } else if (strcmp(argv[i], "--hook") == 0 && i + 1 < argc) {
            if (parse_rule(argv[++i], &c.rules[c.nrules]) != 0) {
                fprintf(stderr, "case_server: bad hook spec: %s\n", argv[i]);
                return 2;
            }
            if (c.rules[c.nrules].stage == ST_AUTH)
                c.has_auth = 1;
            c.nrules++;
        } else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc) {
            const char *colon = strchr(argv[++i], ':');
            if (colon == NULL) {
                fprintf(stderr, "case_server: --auth wants USER:PASS: %s\n", argv[i]);
                return 2;
            }
            c.creds[c.ncreds].user = dup_range(argv[i], (size_t)(colon - argv[i]));
            c.creds[c.ncreds].pass = dup_range(colon + 1, strlen(colon + 1));
            c.ncreds++;
            c.has_auth = 1;
        } else if (strcmp(argv[i], "--listen-tls") == 0) {
            c.listen_tls = 1;
        } else if (strcmp(argv[i], "--opt") == 0 && i + 1 < argc) {
            i++; /* applied below, once the server exists */
        } else if (strcmp(argv[i], "--log") == 0) {
            c.log = 1;
        } else {
            usage();
        }
    }
    if (events_path == NULL)
        usage();
    c.events = fopen(events_path, "w");
    if (c.events == NULL) {
        fprintf(stderr, "case_server: %s: %s\n", events_path, strerror(errno));
        return 2;
    }
    pthread_mutex_init(&c.ev_lock, NULL);
    pthread_mutex_init(&c.job_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c.job_cond, &ca);
    pthread_condattr_destroy(&ca);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_term; /* no SA_RESTART: the read of stdin returns EINTR */
    sigaction(SIGTERM, &sa, NULL);

    memset(&hooks, 0, sizeof(hooks));
    hooks.on_connect = on_connect_cb;
    hooks.on_helo = on_helo_cb;
    hooks.on_mail = on_mail_cb;
    hooks.on_rcpt = on_rcpt_cb;
    hooks.on_data = on_data_cb;
    hooks.on_data_chunk = on_data_chunk_cb;
    hooks.on_deliver = on_deliver_cb;
    hooks.on_reset = on_reset_cb;
    hooks.on_close = on_close_cb;
    hooks.on_log = on_log_cb;
    hooks.on_tls = on_tls_cb;
    if (c.has_auth)
        hooks.on_auth = on_auth_cb;

    c.srv = smtpd_server_new(NULL, &hooks, &c);
    if (c.srv == NULL) {
        fprintf(stderr, "case_server: smtpd_server_new failed\n");
        return 2;
    }
    rc = smtpd_server_configure(c.srv, "hostname", "mx.example");
    if (rc != 0) {
        fprintf(stderr, "case_server: hostname: %s: %s\n", smtpd_strerror(rc),
                smtpd_server_errmsg(c.srv));
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        char *eq, *name;

        if (strcmp(argv[i], "--opt") != 0) {
            if (strcmp(argv[i], "--events") == 0 || strcmp(argv[i], "--hook") == 0 ||
                strcmp(argv[i], "--auth") == 0)
                i++;
            continue;
        }
        i++;
        eq = strchr(argv[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "case_server: --opt wants NAME=VALUE: %s\n", argv[i]);
            return 2;
        }
        name = dup_range(argv[i], (size_t)(eq - argv[i]));
        rc = smtpd_server_configure(c.srv, name, eq + 1);
        if (rc != 0) {
            fprintf(stderr, "case_server: option %s: %s: %s\n", argv[i], smtpd_strerror(rc),
                    smtpd_server_errmsg(c.srv));
            free(name);
            return 2;
        }
        free(name);
    }

    rc = smtpd_server_listen(c.srv, "127.0.0.1", "0");
    if (rc != 0) {
        fprintf(stderr, "case_server: listen: %s: %s\n", smtpd_strerror(rc),
                smtpd_server_errmsg(c.srv));
        return 2;
    }
    if (c.listen_tls) {
        rc = smtpd_server_listen_tls(c.srv, "127.0.0.1", "0");
        if (rc != 0) {
            fprintf(stderr, "case_server: listen-tls: %s: %s\n", smtpd_strerror(rc),
                    smtpd_server_errmsg(c.srv));
            return 2;
        }
        tls_port = smtpd_server_bound_port(c.srv, 1);
    }
    port = smtpd_server_bound_port(c.srv, 0);
    if (port <= 0 || (c.listen_tls && tls_port <= 0)) {
        fprintf(stderr, "case_server: no bound port\n");
        return 2;
    }
    if (pthread_create(&worker, NULL, worker_main, &c) != 0) {
        fprintf(stderr, "case_server: pthread_create failed\n");
        return 2;
    }
    rc = smtpd_server_start(c.srv);
    if (rc != 0) {
        fprintf(stderr, "case_server: start: %s: %s\n", smtpd_strerror(rc),
                smtpd_server_errmsg(c.srv));
        return 2;
    }
    if (c.listen_tls)
        printf("PORT %d TLSPORT %d\n", port, tls_port);
    else
        printf("PORT %d\n", port);
    fflush(stdout);

    while (!got_term) {
        char buf[256];
        ssize_t n = read(0, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }

    /* finish every queued pending answer, then stop */
    pthread_mutex_lock(&c.job_lock);
    c.quit = 1;
    pthread_cond_signal(&c.job_cond);
    pthread_mutex_unlock(&c.job_lock);
    pthread_join(worker, NULL);

    rc = smtpd_server_stop(c.srv, 1000);
    if (rc != 0)
        fprintf(stderr, "case_server: stop: %s\n", smtpd_strerror(rc));
    smtpd_server_free(c.srv);

    for (size_t i = 0; i < c.nrules; i++) {
        free(c.rules[i].glob);
        free(c.rules[i].enhanced);
        free(c.rules[i].text);
    }
    free(c.rules);
    for (size_t i = 0; i < c.ncreds; i++) {
        free(c.creds[i].user);
        free(c.creds[i].pass);
    }
    free(c.creds);
    pthread_cond_destroy(&c.job_cond);
    pthread_mutex_destroy(&c.job_lock);
    pthread_mutex_destroy(&c.ev_lock);
    fclose(c.events);
    return rc != 0 ? 1 : 0;
}
