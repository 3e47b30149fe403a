/* test_options.c - option defaults, names, parsing, ranges and copies (src/smtp/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp/options.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
test_defaults(void **state)
{
    (void)state;
    smtpd_options o;
    memset(&o, 0xa5, sizeof o);
    smtpd_options_init(&o);
    assert_null(o.hostname);
    assert_null(o.banner);
    assert_int_equal(o.max_message_size, 10240000);
    assert_int_equal(o.max_recipients, 100);
    assert_int_equal(o.max_command_line, 512);
    assert_int_equal(o.max_text_line, 1000);
    assert_int_equal(o.command_timeout_ms, 300000);
    assert_int_equal(o.data_timeout_ms, 180000);
    assert_int_equal(o.max_errors, 20);
    assert_int_equal(o.max_junk, 100);
    assert_int_equal(o.max_sessions, 1000);
    assert_int_equal(o.max_pending_input, 262144);
    assert_int_equal(o.bare_lf, SMTPD_BARE_LF_REJECT);
    assert_int_equal(o.enhanced_status_codes, 1);
    assert_int_equal(o.smtputf8, 1);
    assert_int_equal(o.pipelining, 1);
    assert_int_equal(o.vrfy, 1);
    assert_int_equal(o.stop_grace_ms, 5000);
    assert_int_equal(options_validate(&o), SMTPD_OK);
}

/* Every option by name: the default as a string. */
static void
test_get_defaults_by_name(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
    } rows[] = {
        {"hostname", ""},
        {"banner", ""},
        {"max-message-size", "10240000"},
        {"max-recipients", "100"},
        {"max-command-line", "512"},
        {"max-text-line", "1000"},
        {"command-timeout", "300000"},
        {"data-timeout", "180000"},
        {"max-errors", "20"},
        {"max-junk", "100"},
        {"max-sessions", "1000"},
        {"max-pending-input", "262144"},
        {"bare-lf", "reject"},
        {"enhanced-status-codes", "1"},
        {"smtputf8", "1"},
        {"pipelining", "1"},
        {"vrfy", "1"},
        {"stop-grace", "5000"},
    };
    smtpd_options o;
    smtpd_options_init(&o);
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char out[64];
        int rc = options_get(&o, rows[i].name, out, sizeof out);
        if (rc != SMTPD_OK || strcmp(out, rows[i].value) != 0)
            fail_msg("options_get(%s): rc %d value [%s], want [%s]", rows[i].name, rc, out,
                     rows[i].value);
    }
    char out[8];
    assert_int_equal(options_get(&o, "no-such-option", out, sizeof out), SMTPD_ENOENT);
    assert_int_equal(options_get(&o, "MAX-ERRORS", out, sizeof out), SMTPD_OK); /* any case */
    assert_string_equal(out, "20");
    /* a value that does not fit is reported, not silently cut */
    assert_int_equal(options_get(&o, "max-message-size", out, sizeof out), SMTPD_ERANGE);
    assert_int_equal(options_get(&o, "max-errors", out, 3), SMTPD_OK);
    assert_int_equal(options_get(&o, "max-junk", out, 3), SMTPD_ERANGE);
}

typedef struct set_case {
    const char *name, *value;
    int rc;
    const char *readback; /* when rc == OK */
} set_case;

static void
test_set_table(void **state)
{
    (void)state;
    static const set_case cases[] = {
        {"max-recipients", "1", SMTPD_OK, "1"},
        {"max-recipients", "1000000", SMTPD_OK, "1000000"},
        {"max-recipients", "0", SMTPD_EINVAL, NULL},
        {"max-recipients", "1000001", SMTPD_EINVAL, NULL},
        {"max-recipients", "-1", SMTPD_EINVAL, NULL},
        {"max-recipients", "10x", SMTPD_EINVAL, NULL},
        {"max-recipients", "", SMTPD_EINVAL, NULL},
        {"max-recipients", " 5", SMTPD_EINVAL, NULL},
        {"max-recipients", "99999999999999999999999", SMTPD_EINVAL, NULL},
        {"max-command-line", "511", SMTPD_EINVAL, NULL},
        {"max-command-line", "512", SMTPD_OK, "512"},
        {"max-command-line", "4000", SMTPD_OK, "4000"},
        {"max-command-line", "4001", SMTPD_EINVAL, NULL},
        {"max-text-line", "79", SMTPD_EINVAL, NULL},
        {"max-text-line", "80", SMTPD_OK, "80"},
        {"max-message-size", "1023", SMTPD_EINVAL, NULL},
        {"max-message-size", "1024", SMTPD_OK, "1024"},
        {"max-message-size", "1099511627776", SMTPD_OK, "1099511627776"},
        {"max-message-size", "1099511627777", SMTPD_EINVAL, NULL},
        {"max-pending-input", "4095", SMTPD_EINVAL, NULL},
        {"max-pending-input", "4096", SMTPD_OK, "4096"},
        {"command-timeout", "9", SMTPD_EINVAL, NULL},
        {"command-timeout", "86400000", SMTPD_OK, "86400000"},
        {"command-timeout", "86400001", SMTPD_EINVAL, NULL},
        {"stop-grace", "0", SMTPD_OK, "0"},
        {"max-errors", "0", SMTPD_EINVAL, NULL},
        {"max-junk", "1", SMTPD_OK, "1"},
        {"max-sessions", "0", SMTPD_EINVAL, NULL},
        {"bare-lf", "normalize", SMTPD_OK, "normalize"},
        {"bare-lf", "ACCEPT", SMTPD_OK, "accept"},
        {"bare-lf", "reject", SMTPD_OK, "reject"},
        {"bare-lf", "strip", SMTPD_EINVAL, NULL},
        {"bare-lf", "1", SMTPD_EINVAL, NULL},
        {"pipelining", "no", SMTPD_OK, "0"},
        {"pipelining", "On", SMTPD_OK, "1"},
        {"vrfy", "false", SMTPD_OK, "0"},
        {"smtputf8", "0", SMTPD_OK, "0"},
        {"enhanced-status-codes", "yes", SMTPD_OK, "1"},
        {"vrfy", "maybe", SMTPD_EINVAL, NULL},
        {"vrfy", "2", SMTPD_EINVAL, NULL},
        {"hostname", "mx.example", SMTPD_OK, "mx.example"},
        {"hostname", "mx example", SMTPD_EINVAL, NULL}, /* no space in a hostname */
        {"hostname", "mx\r\n250 x", SMTPD_EINVAL, NULL},
        {"hostname", "", SMTPD_EINVAL, NULL},
        {"banner", "Mail sink ready", SMTPD_OK, "Mail sink ready"},
        {"banner", "bad\rbanner", SMTPD_EINVAL, NULL},
        {"banner", "tab\there", SMTPD_EINVAL, NULL},
        {"no-such-option", "1", SMTPD_ENOENT, NULL},
        {"", "1", SMTPD_ENOENT, NULL},
    };
    smtpd_options o;
    smtpd_options_init(&o);
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const set_case *c = &cases[i];
        char before[300], after[300];
        int known = options_get(&o, c->name, before, sizeof before);
        int rc = options_set(&o, c->name, c->value);
        if (rc != c->rc) {
            print_error("options_set(%s, \"%s\"): rc %d want %d\n", c->name, c->value, rc, c->rc);
            failures++;
            continue;
        }
        if (known != SMTPD_OK)
            continue;
        assert_int_equal(options_get(&o, c->name, after, sizeof after), SMTPD_OK);
        const char *want = rc == SMTPD_OK ? c->readback : before; /* a refused value
                                                                      changes nothing */
        if (strcmp(after, want) != 0) {
            print_error("options_set(%s, \"%s\"): reads back [%s] want [%s]\n", c->name, c->value,
                        after, want);
            failures++;
        }
    }
    assert_int_equal(options_set(&o, "max-errors", NULL), SMTPD_EINVAL);
    assert_int_equal(options_validate(&o), SMTPD_OK);
    options_cleanup(&o); /* frees the copied hostname and banner */
    assert_null(o.hostname);
    assert_null(o.banner);
    options_cleanup(&o);
    assert_int_equal(failures, 0);
}

static void
test_copy(void **state)
{
    (void)state;
    /* NULL: the defaults, a hostname from the system, banner "ESMTP" */
    smtpd_options o;
    assert_int_equal(options_copy(&o, NULL), SMTPD_OK);
    assert_non_null(o.hostname);
    assert_true(strlen(o.hostname) > 0);
    assert_string_equal(o.banner, "ESMTP");
    assert_int_equal(o.max_recipients, 100);
    options_cleanup(&o);

    /* the strings are copies: the caller's may go away */
    smtpd_options src;
    smtpd_options_init(&src);
    char host[] = "mx.example";
    src.hostname = host;
    src.max_errors = 7;
    assert_int_equal(options_copy(&o, &src), SMTPD_OK);
    host[0] = 'X';
    assert_string_equal(o.hostname, "mx.example");
    assert_int_equal(o.max_errors, 7);
    options_cleanup(&o);

    /* invalid options are refused (and nothing leaks) */
    src.max_command_line = 100;
    assert_int_equal(options_copy(&o, &src), SMTPD_EINVAL);
    src.max_command_line = 512;
    src.bare_lf = (smtpd_bare_lf)7;
    assert_int_equal(options_copy(&o, &src), SMTPD_EINVAL);
    src.bare_lf = SMTPD_BARE_LF_ACCEPT;
    src.hostname = "bad host";
    assert_int_equal(options_copy(&o, &src), SMTPD_EINVAL);
    src.hostname = "mx.example";
    src.max_recipients = 0;
    assert_int_equal(options_copy(&o, &src), SMTPD_EINVAL);
}

static void
test_strerror(void **state)
{
    (void)state;
    assert_string_equal(smtpd_strerror(SMTPD_OK), "success");
    static const int codes[] = {SMTPD_EINVAL, SMTPD_ENOMEM, SMTPD_EADDR, SMTPD_EBIND,
                                SMTPD_ESTATE, SMTPD_ENOENT, SMTPD_ESYS,  SMTPD_ERANGE};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        const char *s = smtpd_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, smtpd_strerror(codes[j]));
    }
    assert_string_equal(smtpd_strerror(-99), "unknown error");
    assert_string_equal(smtpd_strerror(1), "unknown error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_get_defaults_by_name),
        cmocka_unit_test(test_set_table), cmocka_unit_test(test_copy),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
