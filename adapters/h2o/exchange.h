/*
 * exchange.h: the exchange of slots between the pods. One thread with its own event loop
 * asks every peer for its GET /slots every --sync-peers-ms, all peers of a round at once
 * (each bounded by --peer-timeout-ms), and merges what they hold: replicas are raised
 * (replicas.h), and when a peer holds this pod's own slot higher than its counter (a
 * volume restored from an older copy), the counter is raised to that value. Peers are
 * found as --peers and --peers-dns say (resolver.h); one that turns out to be this server
 * is left out.
 *
 * Recovery: from its start until every peer has answered once, or --recover-ms has
 * passed, the exchange holds readiness off ("recovering the count from peers"), so that
 * a pod whose volume went back in time turns ready only with its count raised again.
 */
#ifndef VISITS_EXCHANGE_H
#define VISITS_EXCHANGE_H

#include "committer.h"
#include "peers.h"
#include "replicas.h"
#include "slotid.h"
#include "text.h"

#include <stddef.h>
#include <stdint.h>

struct exchange_config {
    struct committer *committer; /* the own slot's counter */
    struct replicas *replicas;
    const char *pod_name;
    const struct peer_source *peers; /* --peers */
    size_t npeers;
    const struct peer_source *peers_dns; /* --peers-dns, or NULL */
    const char *bind;                    /* where this server listens: a peer there is itself */
    unsigned port;
    unsigned peer_timeout_ms; /* one peer's answer, at most */
    unsigned sync_ms;         /* a round every ... */
    unsigned recover_ms;      /* readiness waits for the first answers this long at most */
};

struct exchange;

/* Copies cfg; holds readiness off until the recovery ends (when there are peers and
 * recover_ms is not 0). Aborts when out of memory, as libh2o does. */
struct exchange *exchange_create(const struct exchange_config *cfg);
/* Starts the thread (call with the signals of the process blocked). 0 or -errno. */
int exchange_start(struct exchange *x);
/* Stops the thread: a round under way is cancelled (nothing more is merged). Gives up
 * waiting at deadline_ms (CLOCK_MONOTONIC). */
void exchange_stop(struct exchange *x, uint64_t deadline_ms);

/* A peer as the last round saw it: an address (or a name that did not resolve). */
struct exchange_peer {
    char address[PEER_HOST_MAX + 8];
    char pod[SLOT_POD_MAX + 1];     /* "" until it has answered */
    int ok;                         /* it answered the last round */
    char error[PEER_HOST_MAX + 80]; /* otherwise: why not */
    uint64_t last_ok_ms;            /* CLOCK_MONOTONIC of its last answer; 0: none since start */
    int unresolved;                 /* a name that gave no address */
};
/* A pod that has answered since this server started. */
struct exchange_pod {
    char pod[SLOT_POD_MAX + 1];
    uint64_t last_ok_ms;
    int answered; /* in the last round */
};
struct exchange_view {
    uint64_t rounds;        /* rounds finished */
    uint64_t last_round_ms; /* CLOCK_MONOTONIC end of the last one (0: none yet) */
    int recovering;
    struct exchange_peer *peers; /* malloc'd */
    size_t npeers;
    struct exchange_pod *pods; /* malloc'd */
    size_t npods;
};
/* Any thread: a copy of the state of the last round. 0 or -ENOMEM. */
int exchange_view(struct exchange *x, struct exchange_view *out);
void exchange_view_free(struct exchange_view *v);

/* Any thread: appends visits_peer_sync_rounds_total, visits_peer_requests_total,
 * visits_peer_dns_lookups_total and visits_cluster_stalest_slot_age_seconds (Prometheus
 * text). */
void exchange_metrics(struct exchange *x, struct strbuf *sb);

#endif /* VISITS_EXCHANGE_H */
