/*
 * peers.h - open sessions per client address, for max-sessions-per-ip. One shared entry
 * per address (not per connection), freed when its last connection closes, so many idle
 * connections from one host cost nothing extra. Only the server's I/O thread touches it.
 */
#ifndef NET_PEERS_H
#define NET_PEERS_H

#include <stddef.h>

typedef struct peers_entry {
    struct peers_entry *next;
    unsigned count; /* open sessions from this address */
    char addr[];    /* the client address as text, as sessions report it */
} peers_entry;

typedef struct peers_map {
    peers_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;    /* distinct addresses */
} peers_map;

void peers_init(peers_map *m);
void peers_cleanup(peers_map *m);
/* One more session from addr: its entry (count included), or NULL when out of memory. */
peers_entry *peers_add(peers_map *m, const char *addr);
/* The session from e's address closed; e is freed with its last session. */
void peers_release(peers_map *m, peers_entry *e);

#endif
