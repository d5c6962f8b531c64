/*
 * server.h: internals of visits-server shared between its files.
 *
 * main.c owns the configuration, the listener, the threads and the signals; routes.c owns
 * the route table and the handlers; committer.c owns the counter and the only thread that
 * writes it; metrics.c and accesslog.c observe every request; log.c owns stdout and
 * the thread that writes the access log to it; cluster.c answers /cluster by asking the
 * peers that peers.c finds (json.c reads their answers). Event-loop threads never touch
 * the disk nor stdout: they hand visits to the committer and get the values back through
 * h2o's multithread queue, and hand their log lines to the log writer.
 */
#ifndef VISITS_SERVER_H
#define VISITS_SERVER_H

#include "clock.h"
#include "committer.h"
#include "config.h"
#include "json.h"
#include "peers.h"
#include "resolver.h"
#include "routes.h"
#include "histogram.h"
#include "log.h"
#include "text.h"

#include <h2o.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <visits.h>

/* ---- router.c ------------------------------------------------------------------------ */
struct server;
/* Registers the single catch-all handler and the access logger on hostconf. */
void routes_register(struct server *srv, h2o_hostconf_t *hostconf);
/* The committer's reply callback (data: the worker): answers a counted visit. */
void routes_on_visit(struct committer_visit *v, void *data);

/* ---- cluster.c ----------------------------------------------------------------------- */
enum peer_outcome {
    PEER_OK,
    PEER_TIMEOUT,
    PEER_CONNECT_ERROR,
    PEER_IO_ERROR,
    PEER_BAD_STATUS,
    PEER_BAD_BODY,
    PEER_TOO_LARGE,
    PEER_CANCELLED,
    PEER_OUTCOME_COUNT
};
#define PEER_BODY_MAX 4096       /* a /visits answer is under 300 bytes */
#define CLUSTER_MAX_IN_FLIGHT 64 /* /cluster requests one event loop serves at once */
extern const char *const peer_outcome_names[PEER_OUTCOME_COUNT];
struct cluster_worker;
struct worker;
/* Per event loop, in its thread: the HTTP client context and the peer resolver. */
int cluster_worker_init(struct worker *w);
/* GET or HEAD /cluster. */
void cluster_handle(h2o_req_t *req);

/* ---- metrics.c ----------------------------------------------------------------------- */
#define METRICS_STATUS_COUNT 12
struct thread_metrics {
    /* Written only by the owning event loop, read by any (relaxed atomics). */
    atomic_uint_fast64_t requests[ROUTE_COUNT + 1][METHOD_COUNT][METRICS_STATUS_COUNT];
    struct histogram duration[ROUTE_COUNT + 1];             /* ns */
    atomic_uint_fast64_t peer_requests[PEER_OUTCOME_COUNT]; /* /cluster's requests to peers */
    struct resolver_counts dns;                             /* lookups of peer names */
};
void metrics_observe(struct thread_metrics *m, int route, int method, int status,
                     uint64_t duration_ns);
/* Renders the Prometheus text exposition of the whole server. */
void metrics_render(struct server *srv, struct strbuf *sb);

/* ---- accesslog.c --------------------------------------------------------------------- */
#define ACCESSLOG_FLUSH_AT 4000 /* below PIPE_BUF: one write(2) is one atomic chunk */
#define ACCESSLOG_LINE_MAX 8192
struct accesslog {
    char buf[ACCESSLOG_FLUSH_AT + ACCESSLOG_LINE_MAX];
    size_t len;
    size_t lines; /* in buf */
};
/* Formats one request line into the worker's buffer (flushing when full). */
void accesslog_request(struct accesslog *log, h2o_req_t *req, int status, uint64_t duration_ns);
/* Hands the buffered lines to the log writer (or drops them, counted). Never blocks. */
void accesslog_flush(struct accesslog *log);

/* ---- main.c -------------------------------------------------------------------------- */
struct worker {
    struct server *srv;
    size_t index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    struct committer_loop *visits;     /* where visits come back from the committer */
    h2o_multithread_receiver_t wakeup; /* pokes from the main thread */
    int stopping;
    uint64_t stop_deadline_ms;
    struct thread_metrics metrics;
    struct accesslog log;
    time_t page_second; /* the HTML page's time, formatted once a second */
    char page_when[32];
    struct cluster_worker *cluster; /* /cluster's state on this loop (cluster.c) */
};

struct server {
    struct server_config cfg;
    h2o_globalconf_t globalconf;
    struct committer *committer;
    struct worker **workers;
    size_t nworkers;
    int listen_fd;
    unsigned port; /* effective port */
    atomic_int stopping;
    double start_time;     /* seconds since the epoch */
    char *pod_json;        /* the pod name escaped for JSON */
    char *pod_html;        /* ... and for HTML */
    const char *page_tail; /* the HTML page after the visit line (routes.c) */
};

/* The worker whose event loop runs ctx. */
struct worker *worker_of(h2o_context_t *ctx);

#endif /* VISITS_SERVER_H */
