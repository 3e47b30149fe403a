/* options.c - defaults, names and validation of smtpd_options; see options.h. */
#include "smtp/options.h"

#include "core/str.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

SMTPD_API const char *
smtpd_strerror(int err)
{
    switch (err) {
    case SMTPD_OK:
        return "success";
    case SMTPD_EINVAL:
        return "invalid argument";
    case SMTPD_ENOMEM:
        return "out of memory";
    case SMTPD_EADDR:
        return "bad address";
    case SMTPD_EBIND:
        return "cannot listen on address";
    case SMTPD_ESTATE:
        return "not allowed in the server's state";
    case SMTPD_ENOENT:
        return "no such option or session";
    case SMTPD_ESYS:
        return "system error";
    case SMTPD_ERANGE:
        return "value out of range";
    }
    return "unknown error";
}

SMTPD_API void
smtpd_options_init(smtpd_options *o)
{
    memset(o, 0, sizeof *o);
    o->hostname = NULL;
    o->banner = NULL;
    o->max_message_size = 10240000; /* Postfix message_size_limit */
    o->max_recipients = 100;        /* RFC 5321 4.5.3.1.8 */
    o->max_command_line = 512;      /* 4.5.3.1.4 */
    o->max_text_line = 1000;        /* 4.5.3.1.6 */
    o->command_timeout_ms = 300000; /* 4.5.3.2.7: at least 5 minutes */
    o->data_timeout_ms = 180000;    /* 4.5.3.2.5: data block, 3 minutes */
    o->max_errors = 20;             /* Postfix smtpd_hard_error_limit */
    o->max_junk = 100;              /* Postfix smtpd_junk_command_limit */
    o->max_sessions = 1000;
    o->max_pending_input = 262144;
    o->bare_lf = SMTPD_BARE_LF_REJECT;
    o->enhanced_status_codes = 1;
    o->smtputf8 = 1;
    o->pipelining = 1;
    o->vrfy = 1;
    o->stop_grace_ms = 5000;
    o->tls_timeout_ms = 30000;
    o->max_sessions_per_ip = 1000;
    o->max_buffered_data = (size_t)256 << 20;
}

/* OPT_STR is a token (no spaces: hostnames); OPT_TEXT may hold spaces (banner, paths). */
typedef enum opt_kind { OPT_STR, OPT_TEXT, OPT_SIZE, OPT_UINT, OPT_BOOL, OPT_BARE } opt_kind;

typedef struct opt_row {
    const char *name;
    opt_kind kind;
    size_t offset;
    unsigned long long min, max;
} opt_row;

#define ROW(n, k, field, lo, hi)                                                                   \
    {                                                                                              \
        n, k, offsetof(smtpd_options, field), lo, hi                                               \
    }
static const opt_row opt_table[] = {
    ROW("hostname", OPT_STR, hostname, 0, 0),
    ROW("banner", OPT_TEXT, banner, 0, 0),
    ROW("max-message-size", OPT_SIZE, max_message_size, 1024, (unsigned long long)1 << 40),
    ROW("max-recipients", OPT_UINT, max_recipients, 1, 1000000),
    ROW("max-command-line", OPT_UINT, max_command_line, 512, 4000),
    ROW("max-text-line", OPT_UINT, max_text_line, 80, 1000000),
    ROW("command-timeout", OPT_UINT, command_timeout_ms, 10, 86400000),
    ROW("data-timeout", OPT_UINT, data_timeout_ms, 10, 86400000),
    ROW("max-errors", OPT_UINT, max_errors, 1, 1000000),
    ROW("max-junk", OPT_UINT, max_junk, 1, 1000000),
    ROW("max-sessions", OPT_UINT, max_sessions, 1, 1000000),
    ROW("max-pending-input", OPT_SIZE, max_pending_input, 4096, (unsigned long long)1 << 30),
    ROW("bare-lf", OPT_BARE, bare_lf, 0, 0),
    ROW("enhanced-status-codes", OPT_BOOL, enhanced_status_codes, 0, 1),
    ROW("smtputf8", OPT_BOOL, smtputf8, 0, 1),
    ROW("pipelining", OPT_BOOL, pipelining, 0, 1),
    ROW("vrfy", OPT_BOOL, vrfy, 0, 1),
    ROW("stop-grace", OPT_UINT, stop_grace_ms, 0, 86400000),
    ROW("tls-cert", OPT_TEXT, tls_cert_file, 0, 0),
    ROW("tls-key", OPT_TEXT, tls_key_file, 0, 0),
    ROW("tls-timeout", OPT_UINT, tls_timeout_ms, 10, 86400000),
    ROW("require-tls", OPT_BOOL, require_tls, 0, 1),
    ROW("allow-insecure-auth", OPT_BOOL, allow_insecure_auth, 0, 1),
    ROW("auth-required", OPT_BOOL, auth_required, 0, 1),
    ROW("auth-mechanisms", OPT_TEXT, auth_mechanisms, 0, 0),
    ROW("max-sessions-per-ip", OPT_UINT, max_sessions_per_ip, 1, 1000000),
    ROW("max-buffered-data", OPT_SIZE, max_buffered_data, 1024, (unsigned long long)1 << 40),
};
#undef ROW

static const char *const bare_names[] = {"reject", "normalize", "accept"};

static const opt_row *
options_find(const char *name)
{
    for (size_t i = 0; i < sizeof opt_table / sizeof opt_table[0]; i++)
        if (str_ieq(opt_table[i].name, name))
            return &opt_table[i];
    return NULL;
}

/* A hostname must be safe in replies and headers: printable, no spaces. */
static int
options_check_token(const char *s, int allow_space)
{
    if (!s)
        return SMTPD_OK;
    if (!*s || strlen(s) > 255)
        return SMTPD_EINVAL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 32 || *p == 127 || (*p == ' ' && !allow_space))
            return SMTPD_EINVAL;
    return SMTPD_OK;
}

int
options_validate(const smtpd_options *o)
{
    for (size_t i = 0; i < sizeof opt_table / sizeof opt_table[0]; i++) {
        const opt_row *r = &opt_table[i];
        const char *base = (const char *)o + r->offset;
        unsigned long long v = 0;
        switch (r->kind) {
        case OPT_STR:
        case OPT_TEXT: {
            const char *s;
            memcpy(&s, base, sizeof s);
            if (options_check_token(s, r->kind == OPT_TEXT))
                return SMTPD_EINVAL;
            continue;
        }
        case OPT_SIZE: {
            size_t z;
            memcpy(&z, base, sizeof z);
            v = z;
            break;
        }
        case OPT_UINT: {
            unsigned u;
            memcpy(&u, base, sizeof u);
            v = u;
            break;
        }
        case OPT_BOOL: {
            int b;
            memcpy(&b, base, sizeof b);
            v = (unsigned long long)(b != 0);
            break;
        }
        case OPT_BARE:
            if (o->bare_lf != SMTPD_BARE_LF_REJECT && o->bare_lf != SMTPD_BARE_LF_NORMALIZE &&
                o->bare_lf != SMTPD_BARE_LF_ACCEPT)
                return SMTPD_EINVAL;
            continue;
        }
        if (v < r->min || v > r->max)
            return SMTPD_EINVAL;
    }
    return SMTPD_OK;
}

int
options_set(smtpd_options *o, const char *name, const char *value)
{
    const opt_row *r = options_find(name);
    if (!r)
        return SMTPD_ENOENT;
    if (!value)
        return SMTPD_EINVAL;
    char *base = (char *)o + r->offset;
    uint64_t v = 0;
    switch (r->kind) {
    case OPT_STR:
    case OPT_TEXT: {
        if (options_check_token(value, r->kind == OPT_TEXT))
            return SMTPD_EINVAL;
        char *copy = str_dup(value);
        if (!copy)
            return SMTPD_ENOMEM;
        char *old;
        memcpy(&old, base, sizeof old);
        free(old);
        memcpy(base, &copy, sizeof copy);
        return SMTPD_OK;
    }
    case OPT_BOOL: {
        int b;
        if (!str_parse_bool(value, &b))
            return SMTPD_EINVAL;
        memcpy(base, &b, sizeof b);
        return SMTPD_OK;
    }
    case OPT_BARE:
        for (int i = 0; i < 3; i++) {
            if (str_ieq(value, bare_names[i])) {
                o->bare_lf = (smtpd_bare_lf)i;
                return SMTPD_OK;
            }
        }
        return SMTPD_EINVAL;
    case OPT_SIZE:
    case OPT_UINT:
        if (!str_parse_u64(value, strlen(value), &v) || v < r->min || v > r->max)
            return SMTPD_EINVAL;
        break;
    }
    if (r->kind == OPT_SIZE) {
        size_t z = (size_t)v;
        memcpy(base, &z, sizeof z);
    } else {
        unsigned u = (unsigned)v;
        memcpy(base, &u, sizeof u);
    }
    return SMTPD_OK;
}

int
options_get(const smtpd_options *o, const char *name, char *out, size_t size)
{
    const opt_row *r = options_find(name);
    if (!r)
        return SMTPD_ENOENT;
    const char *base = (const char *)o + r->offset;
    int n = 0;
    switch (r->kind) {
    case OPT_STR:
    case OPT_TEXT: {
        const char *s;
        memcpy(&s, base, sizeof s);
        n = snprintf(out, size, "%s", s ? s : "");
        break;
    }
    case OPT_SIZE: {
        size_t z;
        memcpy(&z, base, sizeof z);
        n = snprintf(out, size, "%zu", z);
        break;
    }
    case OPT_UINT: {
        unsigned u;
        memcpy(&u, base, sizeof u);
        n = snprintf(out, size, "%u", u);
        break;
    }
    case OPT_BOOL: {
        int b;
        memcpy(&b, base, sizeof b);
        n = snprintf(out, size, "%d", b != 0);
        break;
    }
    case OPT_BARE:
        n = snprintf(out, size, "%s", bare_names[o->bare_lf]);
        break;
    }
    return (n < 0 || (size_t)n >= size) ? SMTPD_ERANGE : SMTPD_OK;
}

int
options_copy(smtpd_options *dst, const smtpd_options *src)
{
    smtpd_options def;
    if (!src) {
        smtpd_options_init(&def);
        src = &def;
    }
    *dst = *src;
    dst->hostname = NULL;
    dst->banner = NULL;
    dst->tls_cert_file = dst->tls_key_file = dst->auth_mechanisms = NULL;
    if ((src->tls_cert_file && !(dst->tls_cert_file = str_dup(src->tls_cert_file))) ||
        (src->tls_key_file && !(dst->tls_key_file = str_dup(src->tls_key_file))) ||
        (src->auth_mechanisms && !(dst->auth_mechanisms = str_dup(src->auth_mechanisms)))) {
        options_cleanup(dst);
        return SMTPD_ENOMEM;
    }
    char host[256];
    const char *h = src->hostname;
    if (!h) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        h = host;
    }
    dst->hostname = str_dup(h);
    dst->banner = str_dup(src->banner ? src->banner : "ESMTP");
    if (!dst->hostname || !dst->banner) {
        options_cleanup(dst);
        return SMTPD_ENOMEM;
    }
    int rc = options_validate(dst);
    if (rc != SMTPD_OK)
        options_cleanup(dst);
    return rc;
}

void
options_cleanup(smtpd_options *o)
{
    free((char *)o->hostname);
    free((char *)o->banner);
    free((char *)o->tls_cert_file);
    free((char *)o->tls_key_file);
    free((char *)o->auth_mechanisms);
    o->hostname = NULL;
    o->banner = NULL;
    o->tls_cert_file = o->tls_key_file = o->auth_mechanisms = NULL;
}
