/*
 * cluster.h: GET /cluster, every pod's count and the total.
 *
 * The event loop that takes the request asks every peer for its GET /visits at once and
 * answers when all of them have answered or failed, or when --peer-timeout-ms has passed
 * since the request arrived, whichever comes first; peers that did not answer in time are
 * reported as errors and the answer says "complete":false. This server's own count comes
 * from memory, never over the network. Nothing here counts a visit or touches the disk.
 */
#ifndef VISITS_CLUSTER_H
#define VISITS_CLUSTER_H

#include "committer.h"
#include "peers.h"
#include "text.h"

#include <h2o.h>

struct cluster_config {
    struct committer *committer;
    const char *pod_name;
    const struct peer_source *peers; /* --peers */
    size_t npeers;
    const struct peer_source *peers_dns; /* --peers-dns, or NULL */
    const char *bind;                    /* where this server listens */
    unsigned port;
    unsigned peer_timeout_ms;
};

/* The handler of "/cluster", created on pathconf (see router.h). */
h2o_handler_t *cluster_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg);
/* Any thread: appends visits_peer_requests_total and visits_peer_dns_lookups_total, summed
 * over the event loops (Prometheus text). */
void cluster_metrics(h2o_handler_t *cluster, struct strbuf *sb);

#endif /* VISITS_CLUSTER_H */
