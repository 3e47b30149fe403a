/*
 * json_path.h - the mailsink unit tests' way to look into a Jansson tree: str_at(obj,
 * "Attachments.0.FileName") follows object keys and array indexes, and assert_str_at
 * fails the cmocka test with both values when it differs. Include after <cmocka.h>.
 */
#ifndef MAILSINK_TESTS_JSON_PATH_H
#define MAILSINK_TESTS_JSON_PATH_H

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The string at a dotted path ("a.b.0.c"), or NULL when any step is missing. */
static const char *
str_at(const json_t *obj, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = obj;
    for (char *tok = buf, *dot; tok != NULL && cur != NULL; tok = dot ? dot + 1 : NULL) {
        dot = strchr(tok, '.');
        if (dot)
            *dot = '\0';
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
                                 : json_object_get(cur, tok);
    }
    return json_string_value(cur);
}

static void
assert_str_at(const json_t *obj, const char *path, const char *want)
{
    const char *got = str_at(obj, path);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got [%s], want [%s]", path, got ? got : "(none)", want);
}

#endif
