/*
 * metrics.c: per-thread request counters and the Prometheus text exposition (format
 * 0.0.4). Each event loop writes only its own struct thread_metrics; a scrape sums them.
 */
#include "server.h"

#include <inttypes.h>
#include <string.h>

static const int status_codes[METRICS_STATUS_COUNT - 1] = {200, 304, 400, 404, 405, 408,
                                                           413, 414, 431, 500, 503};
static const struct histogram_bounds duration_ns = {11,
                                                    {100000, 250000, 500000, 1000000, 2500000,
                                                     5000000, 10000000, 25000000, 50000000,
                                                     100000000, 500000000},
                                                    1000000000};

static int status_index(int status)
{
    for (int i = 0; i < METRICS_STATUS_COUNT - 1; i++)
        if (status_codes[i] == status)
            return i;
    return METRICS_STATUS_COUNT - 1;
}

void metrics_observe(struct thread_metrics *m, int route, int method, int status, uint64_t duration)
{
    counter_add(&m->requests[route][method][status_index(status)], 1);
    histogram_observe(&m->duration[route], &duration_ns, duration);
}

static void render_requests(struct server *srv, struct strbuf *sb)
{
    strbuf_puts(sb, "# HELP visits_http_requests_total HTTP requests answered, by route "
                    "(\"unknown\" for no route), method and status.\n"
                    "# TYPE visits_http_requests_total counter\n");
    for (int r = 0; r <= ROUTE_COUNT; r++) {
        for (int m = 0; m < METHOD_COUNT; m++) {
            for (int s = 0; s < METRICS_STATUS_COUNT; s++) {
                uint64_t n = 0;
                for (size_t w = 0; w < srv->nworkers; w++)
                    n += counter_get(&srv->workers[w]->metrics.requests[r][m][s]);
                if (n == 0)
                    continue;
                char status[8];
                if (s < METRICS_STATUS_COUNT - 1)
                    snprintf(status, sizeof(status), "%d", status_codes[s]);
                else
                    snprintf(status, sizeof(status), "other");
                strbuf_printf(sb,
                              "visits_http_requests_total{route=\"%s\",method=\"%s\","
                              "status=\"%s\"} %" PRIu64 "\n",
                              route_label(r), method_name(m), status, n);
            }
        }
    }
}

static void render_durations(struct server *srv, struct strbuf *sb)
{
    strbuf_puts(sb, "# HELP visits_http_request_duration_seconds Time from the start of a "
                    "request to the end of its response, by route.\n"
                    "# TYPE visits_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= ROUTE_COUNT; r++) {
        struct histogram_total t = {0};
        for (size_t w = 0; w < srv->nworkers; w++)
            histogram_read(&t, &srv->workers[w]->metrics.duration[r]);
        if (r == ROUTE_COUNT && histogram_count(&t) == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_label(r));
        histogram_render(sb, "visits_http_request_duration_seconds", labels, &duration_ns, &t);
    }
}

static void render_peers(struct server *srv, struct strbuf *sb)
{
    strbuf_puts(sb, "# HELP visits_peer_requests_total Requests of GET /cluster to the peers' "
                    "/visits, by outcome.\n"
                    "# TYPE visits_peer_requests_total counter\n");
    for (int o = 0; o < PEER_OUTCOME_COUNT; o++) {
        uint64_t n = 0;
        for (size_t w = 0; w < srv->nworkers; w++)
            n += counter_get(&srv->workers[w]->metrics.peer_requests[o]);
        strbuf_printf(sb, "visits_peer_requests_total{outcome=\"%s\"} %" PRIu64 "\n",
                      peer_outcome_names[o], n);
    }
    uint64_t ok = 0, failed = 0;
    for (size_t w = 0; w < srv->nworkers; w++) {
        ok += counter_get(&srv->workers[w]->metrics.dns.ok);
        failed += counter_get(&srv->workers[w]->metrics.dns.failed);
    }
    strbuf_printf(sb,
                  "# HELP visits_peer_dns_lookups_total Resolutions of peer names (--peers, "
                  "--peers-dns), by result.\n"
                  "# TYPE visits_peer_dns_lookups_total counter\n"
                  "visits_peer_dns_lookups_total{result=\"ok\"} %" PRIu64 "\n"
                  "visits_peer_dns_lookups_total{result=\"error\"} %" PRIu64 "\n",
                  ok, failed);
}

void metrics_render(struct server *srv, struct strbuf *sb)
{
    strbuf_printf(sb,
                  "# HELP visits_total Value of the visit counter (visits counted so far).\n"
                  "# TYPE visits_total counter\n"
                  "visits_total %" PRIu64 "\n",
                  committer_value(srv->committer));
    render_requests(srv, sb);
    render_durations(srv, sb);
    committer_metrics(srv->committer, sb);
    render_peers(srv, sb);
    strbuf_printf(sb,
                  "# HELP visits_access_log_dropped_lines_total Access-log lines not written "
                  "to stdout: the queue was full (stdout not read fast enough) or the write "
                  "failed.\n"
                  "# TYPE visits_access_log_dropped_lines_total counter\n"
                  "visits_access_log_dropped_lines_total %" PRIu64 "\n",
                  log_dropped_lines());
    char sync[32];
    strbuf_printf(sb,
                  "# HELP visits_build_info Versions of visits-server, libvisits and libh2o.\n"
                  "# TYPE visits_build_info gauge\n"
                  "visits_build_info{version=\"%s\",libvisits=\"%s\",libh2o=\"%s\","
                  "sync=\"%s\"} 1\n"
                  "# HELP process_start_time_seconds Start time of the process since the "
                  "epoch.\n"
                  "# TYPE process_start_time_seconds gauge\n"
                  "process_start_time_seconds %.3f\n",
                  VISITS_VERSION_STRING, visits_version_string(), H2O_VERSION,
                  config_sync_name(&srv->cfg, sync, sizeof(sync)), srv->start_time);
}
