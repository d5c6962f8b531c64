/* reqstats.c: per-loop request counters, summed when scraped. */
#include "reqstats.h"

#include "histogram.h"
#include "routes.h"

#include <h2o.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define STATUS_COUNT 13 /* the codes below, then "other" */
static const int status_codes[STATUS_COUNT - 1] = {200, 304, 400, 404, 405, 408,
                                                   413, 414, 431, 500, 503, 507};
static const struct histogram_bounds durations = {
    .n = 11,
    .le = {100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
           100000000, 500000000},
    .unit = 1000000000, /* ns, exported as seconds */
};

/* Written by its loop only. */
struct reqstats_loop {
    atomic_uint_fast64_t requests[ROUTE_COUNT + 1][METHOD_COUNT][STATUS_COUNT];
    struct histogram duration[ROUTE_COUNT + 1];
    struct reqstats_loop *next; /* set before it is published, then never changed */
};

struct reqstats {
    _Atomic(struct reqstats_loop *) loops; /* newest first */
};

struct reqstats *reqstats_create(void)
{
    struct reqstats *s = h2o_mem_alloc(sizeof(*s));
    atomic_init(&s->loops, NULL);
    return s;
}

struct reqstats_loop *reqstats_loop(struct reqstats *s)
{
    struct reqstats_loop *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->next = atomic_load(&s->loops);
    while (!atomic_compare_exchange_weak(&s->loops, &l->next, l))
        ;
    return l;
}

static int status_index(int status)
{
    for (int i = 0; i < STATUS_COUNT - 1; i++)
        if (status_codes[i] == status)
            return i;
    return STATUS_COUNT - 1;
}

void reqstats_observe(struct reqstats_loop *l, int route, int method, int status,
                      uint64_t duration_ns)
{
    counter_add(&l->requests[route][method][status_index(status)], 1);
    histogram_observe(&l->duration[route], &durations, duration_ns);
}

static void render_requests(struct reqstats *s, struct strbuf *sb)
{
    strbuf_puts(sb, "# HELP visits_http_requests_total HTTP requests answered, by route "
                    "(\"unknown\" for no route), method and status.\n"
                    "# TYPE visits_http_requests_total counter\n");
    for (int r = 0; r <= ROUTE_COUNT; r++) {
        for (int m = 0; m < METHOD_COUNT; m++) {
            for (int st = 0; st < STATUS_COUNT; st++) {
                uint64_t n = 0;
                for (struct reqstats_loop *l = atomic_load(&s->loops); l != NULL; l = l->next)
                    n += counter_get(&l->requests[r][m][st]);
                if (n == 0)
                    continue;
                char status[8];
                if (st < STATUS_COUNT - 1)
                    snprintf(status, sizeof(status), "%d", status_codes[st]);
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

static void render_durations(struct reqstats *s, struct strbuf *sb)
{
    strbuf_puts(sb, "# HELP visits_http_request_duration_seconds Time from the start of a "
                    "request to the end of its response, by route.\n"
                    "# TYPE visits_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= ROUTE_COUNT; r++) {
        struct histogram_total t = {0};
        for (struct reqstats_loop *l = atomic_load(&s->loops); l != NULL; l = l->next)
            histogram_read(&t, &l->duration[r]);
        if (r == ROUTE_NONE && histogram_count(&t) == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_label(r));
        histogram_render(sb, "visits_http_request_duration_seconds", labels, &durations, &t);
    }
}

void reqstats_render(struct reqstats *s, struct strbuf *sb)
{
    render_requests(s, sb);
    render_durations(s, sb);
}
