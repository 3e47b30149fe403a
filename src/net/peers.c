/* peers.c - open sessions per client address (chained hash); see peers.h. */
#include "net/peers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t
peers_slot(const peers_map *m, const char *addr)
{
    /* FNV-1a: addresses are short and not chosen by the peer beyond its own address */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return (size_t)(h >> 32) & (m->nbuckets - 1);
}

void
peers_init(peers_map *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void
peers_cleanup(peers_map *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        peers_entry *e = m->buckets[i];
        while (e) {
            peers_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    peers_init(m);
}

static int
peers_grow(peers_map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
    peers_entry **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    peers_map grown = {b, n, m->count};
    for (size_t i = 0; i < m->nbuckets; i++) {
        peers_entry *e = m->buckets[i];
        while (e) {
            peers_entry *next = e->next;
            size_t slot = peers_slot(&grown, e->addr);
            e->next = b[slot];
            b[slot] = e;
            e = next;
        }
    }
    free(m->buckets);
    *m = grown;
    return 0;
}

peers_entry *
peers_add(peers_map *m, const char *addr)
{
    if (m->nbuckets) {
        for (peers_entry *e = m->buckets[peers_slot(m, addr)]; e; e = e->next) {
            if (strcmp(e->addr, addr) == 0) {
                e->count++;
                return e;
            }
        }
    }
    if (m->count >= m->nbuckets && peers_grow(m) != 0)
        return NULL;
    size_t len = strlen(addr);
    peers_entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->addr, addr, len + 1);
    e->count = 1;
    size_t slot = peers_slot(m, addr);
    e->next = m->buckets[slot];
    m->buckets[slot] = e;
    m->count++;
    return e;
}

void
peers_release(peers_map *m, peers_entry *e)
{
    if (--e->count > 0)
        return;
    for (peers_entry **pp = &m->buckets[peers_slot(m, e->addr)]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            free(e);
            m->count--;
            return;
        }
    }
}
