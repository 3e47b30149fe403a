/*
 * sessions.h - the open connections of one server, by session id. Work that finishes
 * later (pending hooks, store commits) finds its session here by id and drops its result
 * when the session is gone. Only the server's I/O thread touches it.
 */
#ifndef NET_SESSIONS_H
#define NET_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

struct conn;

typedef struct sessions_entry {
    uint64_t id;
    struct conn *conn;
    struct sessions_entry *next;
} sessions_entry;

typedef struct sessions_map {
    sessions_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} sessions_map;

void sessions_init(sessions_map *m);
void sessions_cleanup(sessions_map *m);
/* 0, or -1 when out of memory. */
int sessions_put(sessions_map *m, uint64_t id, struct conn *c);
struct conn *sessions_get(const sessions_map *m, uint64_t id);
void sessions_remove(sessions_map *m, uint64_t id);
/* Copy up to max connections into out (for shutdown, which frees while walking). */
size_t sessions_snapshot(const sessions_map *m, struct conn **out, size_t max);

#endif
