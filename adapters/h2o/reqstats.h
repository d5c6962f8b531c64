/*
 * reqstats.h: the metrics of the HTTP requests: how many were answered, by route, method
 * and status, and how long they took. Each event loop counts its own requests; a scrape
 * sums the loops.
 */
#ifndef VISITS_REQSTATS_H
#define VISITS_REQSTATS_H

#include "text.h"

#include <stdint.h>

struct reqstats;
struct reqstats_loop;

/* Aborts when out of memory, as libh2o does. */
struct reqstats *reqstats_create(void);
/* An event loop's thread, once: the counters it writes. */
struct reqstats_loop *reqstats_loop(struct reqstats *s);
/* The loop's thread: one request answered. route: enum route_id or ROUTE_NONE; method:
 * enum method_id. */
void reqstats_observe(struct reqstats_loop *l, int route, int method, int status,
                      uint64_t duration_ns);
/* Any thread: appends visits_http_requests_total and visits_http_request_duration_seconds
 * (Prometheus text). */
void reqstats_render(struct reqstats *s, struct strbuf *sb);

#endif /* VISITS_REQSTATS_H */
