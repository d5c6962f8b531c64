/*
 * resolver.h: the addresses of the peers, resolved for one event loop and shared by the
 * /cluster requests it serves. Everything runs on that loop; nothing blocks.
 */
#ifndef VISITS_RESOLVER_H
#define VISITS_RESOLVER_H

#include "peers.h"

#include <h2o.h>
#include <stdatomic.h>

struct peer_target {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    uint16_t port;
    char host[46];  /* numeric address */
    char label[56]; /* "10.1.2.3:8080" or "[fd00::1]:8080" */
    int self;       /* one of this server's own addresses and its port */
};
struct peer_problem {
    char label[PEER_HOST_MAX + 8]; /* "NAME:PORT" that did not resolve */
    char error[PEER_HOST_MAX + 80];
};
struct peer_list {
    struct peer_target *targets; /* unique addresses, at most PEERS_MAX */
    size_t ntargets;
    struct peer_problem *problems;
    size_t nproblems;
};

struct resolver_config {
    const struct peer_source *sources; /* --peers entries, then the --peers-dns name */
    size_t nsources;
    const char *bind;         /* this server's address (a wildcard: all of the host's) ... */
    unsigned port;            /* ... and port: a peer there is this server itself */
    unsigned peer_timeout_ms; /* requests wait for names half of it at most */
};
/* Lookups of names, counted by the loop, read by any thread. */
struct resolver_counts {
    atomic_uint_fast64_t ok, failed;
};

struct resolve_wait {
    h2o_linklist_t link;
    void (*cb)(struct resolve_wait *wait, const struct peer_list *list);
};
struct resolver;

/* The loop's thread. cfg and counts must outlive the resolver, which lives as long as the
 * loop. Aborts when out of memory, as libh2o does. */
struct resolver *resolver_create(h2o_loop_t *loop, h2o_multithread_receiver_t *getaddr_receiver,
                                 const struct resolver_config *cfg, struct resolver_counts *counts);
/* The current peer list (valid until control returns to the event loop), or NULL when
 * names must be resolved first: then wait->cb gets it later on this loop, unless
 * resolver_cancel(wait) is called before. Never blocks. */
const struct peer_list *resolver_get(struct resolver *r, struct resolve_wait *wait);
void resolver_cancel(struct resolve_wait *wait);

#endif /* VISITS_RESOLVER_H */
