/*
 * cluster.h: the two routes of the cluster's count. GET /cluster answers the total and
 * every pod's count from this pod's own copy (its counter and its replicas, refreshed by
 * the exchange): no request waits for a peer. GET /slots answers the slots this pod holds,
 * for the peers' exchange. Neither counts a visit or touches the disk.
 */
#ifndef VISITS_CLUSTER_H
#define VISITS_CLUSTER_H

#include "committer.h"
#include "exchange.h"
#include "replicas.h"
#include "text.h"

#include <h2o.h>

struct cluster_config {
    struct committer *committer; /* the own slot's value */
    struct replicas *replicas;
    struct exchange *exchange;
    const char *pod_name;
};

/* The handlers of "/cluster" and "/slots", created on pathconf (see router.h). */
h2o_handler_t *cluster_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg);
h2o_handler_t *cluster_slots_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg);
/* Any thread: appends visits_cluster_slots, visits_cluster_total,
 * visits_cluster_replica_write_failures_total and the exchange's series (Prometheus text).
 * cluster is the handler of "/cluster". */
void cluster_metrics(h2o_handler_t *cluster, struct strbuf *sb);

#endif /* VISITS_CLUSTER_H */
