/*
 * metrics.c: GET /metrics. Every part of the server renders its own series (the
 * committer, the requests, the cluster view); this adds the count, the log's drops and
 * the build.
 */
#include "metrics.h"

#include "cluster.h"
#include "log.h"
#include "respond.h"

#include <inttypes.h>

struct metrics_handler {
    h2o_handler_t super;
    struct metrics_config cfg;
};

static void render(const struct metrics_config *cfg, struct strbuf *sb)
{
    strbuf_printf(sb,
                  "# HELP visits_total Value of the visit counter (visits counted so far).\n"
                  "# TYPE visits_total counter\n"
                  "visits_total %" PRIu64 "\n",
                  committer_value(cfg->committer));
    reqstats_render(cfg->requests, sb);
    committer_metrics(cfg->committer, sb);
    keeper_metrics(cfg->keeper, sb);
    cluster_metrics(cfg->cluster, sb);
    listener_metrics(cfg->connections, sb);
    strbuf_printf(sb,
                  "# HELP visits_access_log_dropped_lines_total Access-log lines not written "
                  "to stdout: the queue was full (stdout not read fast enough) or the write "
                  "failed.\n"
                  "# TYPE visits_access_log_dropped_lines_total counter\n"
                  "visits_access_log_dropped_lines_total %" PRIu64 "\n",
                  log_dropped_lines());
    strbuf_printf(sb,
                  "# HELP visits_build_info Versions of visits-server, libvisits and libh2o.\n"
                  "# TYPE visits_build_info gauge\n"
                  "visits_build_info{version=\"%s\",libvisits=\"%s\",libh2o=\"%s\","
                  "sync=\"%s\"} 1\n"
                  "# HELP process_start_time_seconds Start time of the process since the "
                  "epoch.\n"
                  "# TYPE process_start_time_seconds gauge\n"
                  "process_start_time_seconds %.3f\n",
                  VISITS_VERSION_STRING, visits_version_string(), H2O_VERSION, cfg->sync,
                  cfg->start_time);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct strbuf *sb = respond_scratch();
    render(&((struct metrics_handler *)self)->cfg, sb);
    respond_sb(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", sb);
    return 0;
}

h2o_handler_t *metrics_register(h2o_pathconf_t *pathconf, const struct metrics_config *cfg)
{
    struct metrics_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->cfg = *cfg;
    h->cfg.sync = h2o_strdup(NULL, cfg->sync, SIZE_MAX).base;
    h->super.on_req = on_req;
    return &h->super;
}
