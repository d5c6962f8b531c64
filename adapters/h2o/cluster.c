/*
 * cluster.c: GET /cluster and GET /slots, answered from memory: the committer's value
 * of the own slot and a copy of the replicas' table (replicas.c), with the state of the
 * last exchange (exchange.c) for /cluster.
 */
#include "cluster.h"

#include "clock.h"
#include "cluster_view.h"
#include "respond.h"
#include "slotwire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct cluster_handler {
    h2o_handler_t super;
    struct cluster_config cfg; /* pod_name owned */
};

static void oom(h2o_req_t *req)
{
    respond_error(req, 500, "Internal Server Error", "out of memory");
}

static int on_cluster(h2o_handler_t *self, h2o_req_t *req)
{
    const struct cluster_config *cfg = &((struct cluster_handler *)self)->cfg;
    struct slotmap replicas;
    struct exchange_view ex;
    struct cluster_view v;
    slotmap_init(&replicas);
    /* the own value last: a visit counted meanwhile is in it, and the replicas only grow */
    if (exchange_view(cfg->exchange, &ex) != 0) {
        oom(req);
        return 0;
    }
    if (ex.recovering) {
        /* a pod that lost its volume knows its old slot only from the peers: until the
         * first exchange its total would be lower than the one it showed before */
        exchange_view_free(&ex);
        respond_header(req, H2O_TOKEN_RETRY_AFTER, "1");
        respond_error(req, 503, "Service Unavailable",
                      "recovering the count from peers: GET /cluster answers once they have "
                      "answered or --recover-ms has passed");
        return 0;
    }
    if (replicas_copy(cfg->replicas, &replicas) != 0 ||
        cluster_view_build(&v, cfg->pod_name, replicas_own_id(cfg->replicas),
                           committer_value(cfg->committer), &replicas, &ex, clock_mono_ms()) != 0) {
        slotmap_free(&replicas);
        exchange_view_free(&ex);
        oom(req);
        return 0;
    }
    struct strbuf *sb = respond_scratch();
    if (respond_negotiate(req, RESPOND_JSON) == RESPOND_HTML) {
        cluster_view_html(sb, &v);
        respond_sb(req, 200, "OK", "text/html; charset=utf-8", sb);
    } else {
        cluster_view_json(sb, &v);
        respond_sb(req, 200, "OK", "application/json", sb);
    }
    cluster_view_free(&v);
    slotmap_free(&replicas);
    exchange_view_free(&ex);
    return 0;
}

static int on_slots(h2o_handler_t *self, h2o_req_t *req)
{
    const struct cluster_config *cfg = &((struct cluster_handler *)self)->cfg;
    struct slotmap replicas;
    slotmap_init(&replicas);
    if (replicas_copy(cfg->replicas, &replicas) != 0) {
        oom(req);
        return 0;
    }
    struct strbuf *sb = respond_scratch();
    slotwire_render(sb, cfg->pod_name, replicas_own_id(cfg->replicas),
                    committer_value(cfg->committer), &replicas);
    respond_sb(req, 200, "OK", "application/json", sb);
    slotmap_free(&replicas);
    return 0;
}

static h2o_handler_t *create(h2o_pathconf_t *pathconf, const struct cluster_config *cfg,
                             int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    struct cluster_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->cfg = *cfg;
    h->cfg.pod_name = h2o_strdup(NULL, cfg->pod_name, SIZE_MAX).base;
    h->super.on_req = on_req;
    return &h->super;
}

h2o_handler_t *cluster_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg)
{
    return create(pathconf, cfg, on_cluster);
}

h2o_handler_t *cluster_slots_register(h2o_pathconf_t *pathconf, const struct cluster_config *cfg)
{
    return create(pathconf, cfg, on_slots);
}

void cluster_metrics(h2o_handler_t *cluster, struct strbuf *sb)
{
    const struct cluster_config *cfg = &((struct cluster_handler *)cluster)->cfg;
    size_t n;
    uint64_t total, failures;
    replicas_counts(cfg->replicas, &n, &total, &failures);
    uint64_t own = committer_value(cfg->committer);
    total = own > UINT64_MAX - total ? UINT64_MAX : total + own;
    strbuf_printf(sb,
                  "# HELP visits_cluster_slots Slots (one per pod and volume) this pod knows, its "
                  "own included.\n"
                  "# TYPE visits_cluster_slots gauge\n"
                  "visits_cluster_slots %zu\n"
                  "# HELP visits_cluster_total Sum of every slot this pod knows: the cluster's "
                  "count as it shows it (never decreases, also across restarts).\n"
                  "# TYPE visits_cluster_total counter\n"
                  "visits_cluster_total %" PRIu64 "\n"
                  "# HELP visits_cluster_replica_write_failures_total Replicas of other pods' "
                  "slots that could not be written (they keep their value).\n"
                  "# TYPE visits_cluster_replica_write_failures_total counter\n"
                  "visits_cluster_replica_write_failures_total %" PRIu64 "\n",
                  n + 1, total, failures);
    exchange_metrics(cfg->exchange, sb);
}
