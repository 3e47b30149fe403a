/* test_buf.c - the capped byte buffer (src/core/buf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static void
test_empty_buffer_is_empty_string(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 16);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 16);
    assert_string_equal(buf_str(&b), "");
    buf_clear(&b); /* clearing a never-used buffer is harmless */
    assert_null(b.data);
    buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
    buf_cleanup(&b); /* twice is harmless */
    assert_null(b.data);
}

static void
test_append_and_nul_termination(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append(&b, "abc", 3), BUF_OK);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[3], '\0');
    assert_int_equal(buf_append_str(&b, "def"), BUF_OK);
    assert_string_equal(buf_str(&b), "abcdef");
    assert_int_equal(buf_append(&b, "x\0y", 3), BUF_OK); /* binary data is kept */
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abcdefx\0y", 10);
    assert_int_equal(buf_append(&b, NULL, 0), BUF_OK); /* zero-length append */
    assert_int_equal(b.len, 9);
    buf_cleanup(&b);
}

static void
test_append_exactly_to_cap(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345678", 8), BUF_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal(buf_str(&b), "12345678");
    assert_true(b.alloc >= 9);
    assert_int_equal(buf_append(&b, "", 0), BUF_OK);
    assert_int_equal(buf_append(&b, "9", 1), BUF_EFULL);
    assert_int_equal(b.len, 8);
    buf_cleanup(&b);
}

static void
test_append_over_cap_leaves_buffer_intact(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append_str(&b, "hello"), BUF_OK);
    assert_int_equal(buf_append_str(&b, "world!"), BUF_EFULL); /* 11 > 10 */
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "hello");
    assert_int_equal(buf_printf(&b, "%s", "123456"), BUF_EFULL);
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "hello");
    /* a huge length must not wrap around the cap check */
    assert_int_equal(buf_append(&b, "x", (size_t)-1), BUF_EFULL);
    assert_int_equal(buf_append(&b, "x", (size_t)-1 - 3), BUF_EFULL);
    assert_string_equal(buf_str(&b), "hello");
    assert_int_equal(buf_append_str(&b, "world"), BUF_OK); /* exactly 10 */
    assert_string_equal(buf_str(&b), "helloworld");
    buf_cleanup(&b);
}

static void
test_zero_cap_refuses_everything(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "a", 1), BUF_EFULL);
    assert_int_equal(buf_printf(&b, "%d", 1), BUF_EFULL);
    assert_string_equal(buf_str(&b), "");
    /* an empty append into a zero-cap buffer is fine and yields "" */
    assert_int_equal(buf_append(&b, "", 0), BUF_OK);
    assert_string_equal(buf_str(&b), "");
    buf_cleanup(&b);
}

static void
test_growth_many_appends(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append(&b, "0123456789", 10), BUF_OK);
    assert_int_equal(b.len, 100000);
    assert_true(b.alloc <= 100001); /* never allocates past the cap */
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], '0' + (int)(i % 10));
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(buf_append(&b, "x", 1), BUF_EFULL);
    buf_cleanup(&b);
}

static void
test_printf(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_printf(&b, "%d-%s-%zu", 42, "x", (size_t)7), BUF_OK);
    assert_string_equal(buf_str(&b), "42-x-7");
    assert_int_equal(buf_printf(&b, "|%05u", 12u), BUF_OK);
    assert_string_equal(buf_str(&b), "42-x-7|00012");
    assert_int_equal(b.len, 12);
    assert_int_equal(buf_printf(&b, "%s", ""), BUF_OK);
    assert_int_equal(b.len, 12);
    buf_cleanup(&b);

    /* printf that fits exactly */
    buf_init(&b, 5);
    assert_int_equal(buf_printf(&b, "%s", "abcde"), BUF_OK);
    assert_string_equal(buf_str(&b), "abcde");
    assert_int_equal(buf_printf(&b, "%c", 'f'), BUF_EFULL);
    assert_string_equal(buf_str(&b), "abcde");
    buf_cleanup(&b);
}

static void
test_printf_long_output(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 4096);
    char big[3001];
    memset(big, 'q', 3000);
    big[3000] = '\0';
    assert_int_equal(buf_printf(&b, "<%s>", big), BUF_OK);
    assert_int_equal(b.len, 3002);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[3001], '>');
    assert_int_equal(b.data[3002], '\0');
    assert_int_equal(buf_printf(&b, "%s", big), BUF_EFULL);
    assert_int_equal(b.len, 3002);
    buf_cleanup(&b);
}

static void
test_consume(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_append_str(&b, "abcdefgh"), BUF_OK);
    buf_consume(&b, 0);
    assert_string_equal(buf_str(&b), "abcdefgh");
    buf_consume(&b, 3);
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "defgh");
    buf_consume(&b, 4);
    assert_string_equal(buf_str(&b), "h");
    buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_append_str(&b, "xy"), BUF_OK);
    buf_consume(&b, 100); /* more than len */
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    /* consuming frees room under the cap */
    buf_cleanup(&b);
    buf_init(&b, 4);
    assert_int_equal(buf_append_str(&b, "abcd"), BUF_OK);
    assert_int_equal(buf_append_str(&b, "e"), BUF_EFULL);
    buf_consume(&b, 2);
    assert_int_equal(buf_append_str(&b, "ef"), BUF_OK);
    assert_string_equal(buf_str(&b), "cdef");
    buf_cleanup(&b);
}

static void
test_clear_keeps_cap_and_memory(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 6);
    assert_int_equal(buf_append_str(&b, "abcdef"), BUF_OK);
    char *mem = b.data;
    buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, mem);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(b.cap, 6);
    assert_int_equal(buf_append_str(&b, "1234567"), BUF_EFULL);
    assert_int_equal(buf_append_str(&b, "123456"), BUF_OK);
    buf_cleanup(&b);
    /* cleanup keeps the cap too: the buffer can be used again */
    assert_int_equal(buf_append_str(&b, "xyz"), BUF_OK);
    assert_string_equal(buf_str(&b), "xyz");
    buf_cleanup(&b);
}

static void
test_detach(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_append_str(&b, "payload"), BUF_OK);
    size_t len = 0;
    char *p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 7);
    assert_string_equal(p, "payload");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.alloc, 0);
    assert_string_equal(buf_str(&b), "");
    free(p);

    /* the buffer is usable again after a detach */
    assert_int_equal(buf_append_str(&b, "again"), BUF_OK);
    p = buf_detach(&b, NULL);
    assert_string_equal(p, "again");
    free(p);

    /* detaching an empty buffer gives an empty, freeable string */
    len = 99;
    p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
    buf_cleanup(&b);
}

/* presize allocates once (capped at the cap) and changes nothing visible; appends up
   to it do not reallocate, and past it the buffer still grows. */
static void
test_presize(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1000);
    assert_int_equal(buf_presize(&b, 5000), BUF_OK);
    assert_int_equal(b.alloc, 1001); /* capped: cap + NUL */
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);

    buf_init(&b, 100000);
    assert_int_equal(buf_append(&b, "ab", 2), BUF_OK);
    assert_int_equal(buf_presize(&b, 4096), BUF_OK);
    char *at = b.data;
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), BUF_OK);
    assert_ptr_equal(b.data, at); /* 4002 + NUL fit: no realloc */
    assert_int_equal(buf_append(&b, chunk, sizeof chunk), BUF_OK);
    assert_int_equal(b.len, 5002);
    assert_memory_equal(b.data, "abxx", 4);
    assert_int_equal(buf_presize(&b, 10), BUF_OK); /* smaller than held: nothing */
    assert_int_equal(b.len, 5002);
    buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buffer_is_empty_string),
        cmocka_unit_test(test_append_and_nul_termination),
        cmocka_unit_test(test_append_exactly_to_cap),
        cmocka_unit_test(test_append_over_cap_leaves_buffer_intact),
        cmocka_unit_test(test_zero_cap_refuses_everything),
        cmocka_unit_test(test_growth_many_appends),
        cmocka_unit_test(test_presize),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_long_output),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_clear_keeps_cap_and_memory),
        cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
