/* metrics.h: GET /metrics, the Prometheus text exposition (format 0.0.4) of the server. */
#ifndef VISITS_METRICS_H
#define VISITS_METRICS_H

#include "committer.h"
#include "keeper.h"
#include "listener.h"
#include "reqstats.h"

#include <h2o.h>

struct metrics_config {
    struct committer *committer;
    struct keeper *keeper; /* reopens, failed probes, changes behind the server */
    struct reqstats *requests;
    h2o_handler_t *cluster;              /* the peers' metrics (cluster.h) */
    const char *sync;                    /* "always" or "interval:MS" */
    double start_time;                   /* seconds since the epoch */
    struct listener_shared *connections; /* visits_connections_refused_total */
};

/* The handler of "/metrics", created on pathconf (see router.h). */
h2o_handler_t *metrics_register(h2o_pathconf_t *pathconf, const struct metrics_config *cfg);

#endif /* VISITS_METRICS_H */
