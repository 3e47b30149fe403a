/* sessions.c - session id -> connection map (chained hash); see sessions.h. */
#include "net/sessions.h"

#include <stdlib.h>

static size_t
sessions_slot(const sessions_map *m, uint64_t id)
{
    /* ids are sequential, so a multiplicative hash spreads them */
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (m->nbuckets - 1);
}

void
sessions_init(sessions_map *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void
sessions_cleanup(sessions_map *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        sessions_entry *e = m->buckets[i];
        while (e) {
            sessions_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    sessions_init(m);
}

static int
sessions_grow(sessions_map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
    sessions_entry **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    sessions_map grown = {b, n, m->count};
    for (size_t i = 0; i < m->nbuckets; i++) {
        sessions_entry *e = m->buckets[i];
        while (e) {
            sessions_entry *next = e->next;
            size_t slot = sessions_slot(&grown, e->id);
            e->next = b[slot];
            b[slot] = e;
            e = next;
        }
    }
    free(m->buckets);
    *m = grown;
    return 0;
}

int
sessions_put(sessions_map *m, uint64_t id, struct conn *c)
{
    if (m->count >= m->nbuckets && sessions_grow(m) != 0)
        return -1;
    sessions_entry *e = malloc(sizeof *e);
    if (!e)
        return -1;
    size_t slot = sessions_slot(m, id);
    e->id = id;
    e->conn = c;
    e->next = m->buckets[slot];
    m->buckets[slot] = e;
    m->count++;
    return 0;
}

struct conn *
sessions_get(const sessions_map *m, uint64_t id)
{
    if (!m->nbuckets)
        return NULL;
    for (sessions_entry *e = m->buckets[sessions_slot(m, id)]; e; e = e->next)
        if (e->id == id)
            return e->conn;
    return NULL;
}

void
sessions_remove(sessions_map *m, uint64_t id)
{
    if (!m->nbuckets)
        return;
    sessions_entry **pp = &m->buckets[sessions_slot(m, id)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            sessions_entry *e = *pp;
            *pp = e->next;
            free(e);
            m->count--;
            return;
        }
    }
}

size_t
sessions_snapshot(const sessions_map *m, struct conn **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nbuckets && n < max; i++)
        for (sessions_entry *e = m->buckets[i]; e && n < max; e = e->next)
            out[n++] = e->conn;
    return n;
}
