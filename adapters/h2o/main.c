/*
 * main.c: visits-server's configuration, listener, threads and signals.
 *
 * One listening socket is shared by N event-loop threads (each polls its own dup() of
 * it); the committer thread writes the counter; the log thread writes stdout; the main
 * thread waits for a signal (signals.h) and, for one that stops the server (SIGTERM,
 * SIGINT ...), runs the shutdown: stop accepting, let
 * in-flight requests finish, close idle connections, flush the counter, flush the access
 * log (for STOP_LOG_MS at most), exit 0 (all within 2 s).
 */
#include "accesslog.h"
#include "clock.h"
#include "cluster.h"
#include "committer.h"
#include "keeper.h"
#include "config.h"
#include "exchange.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "replicas.h"
#include "reqstats.h"
#include "respond.h"
#include "router.h"
#include "signals.h"
#include "status.h"
#include "visit.h"

#include <h2o.h>
#include <h2o/hostinfo.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STOP_GRACE_MS 1500 /* in-flight requests get this long after the signal */
#define STOP_LIMIT_MS 1900 /* the counter must be flushed and closed by then */
#define STOP_LOG_MS 500    /* then the access log gets this long if stdout is stuck ... */
#define STOP_EXIT_MS 1950  /* ... but no later than this after the signal */
#define MAX_REQUEST_BODY 16384

/* One event loop and its thread. */
struct worker {
    struct server *srv;
    size_t index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    struct listener *listener;         /* NULL once stopped */
    h2o_multithread_receiver_t wakeup; /* pokes from the main thread */
    int stopping;
    uint64_t stop_deadline_ms;
};

struct server {
    struct server_config cfg;
    h2o_globalconf_t globalconf;
    struct committer *committer;
    struct keeper *keeper;
    struct replicas *replicas; /* the cluster's count: the other slots */
    struct exchange *exchange; /* ... kept up to date with the peers */
    h2o_handler_t *visit;      /* knows the visits a loop still waits for */
    h2o_logger_t *accesslog;   /* flushed by each loop */
    struct listener_shared *connections;
    struct worker *workers;
    size_t nworkers;
    int listen_fd;
    unsigned port;     /* effective port */
    double start_time; /* seconds since the epoch */
    atomic_int stopping;
};

/* Static so that everything the threads hold stays reachable until exit. */
static struct server server;

/* ---- startup checks ------------------------------------------------------------------- */

static int check_data_dir(const struct server_config *cfg)
{
    struct stat st;
    if (stat(cfg->data_dir, &st) != 0) {
        log_error("%s: cannot use the data directory: %s%s", cfg->data_dir, strerror(errno),
                  errno == ENOENT ? " (create it or set --data-dir / VISITS_DATA_DIR)" : "");
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_error("%s: cannot use the data directory: not a directory", cfg->data_dir);
        return -1;
    }
    if (faccessat(AT_FDCWD, cfg->data_dir, W_OK | X_OK, AT_EACCESS) != 0) {
        log_error("%s: data directory is not writable: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_counter(struct server *srv)
{
    const char *path = srv->cfg.counter_path;
    int err = committer_open(&srv->committer, path, &srv->cfg.opts, srv->cfg.stall_ms);
    if (err == 0 && (err = keeper_create(&srv->keeper, srv->committer)) != 0) {
        log_error("%s: cannot open the counter: out of memory", path);
        return -1;
    }
    if (err == VISITS_ECORRUPT)
        log_error("%s: %s: refusing to start; fix it with 'visitsctl set %s N'", path,
                  visits_strerror(err), path);
    else if (err != 0)
        log_error("%s: cannot open the counter: %s: refusing to start", path, visits_strerror(err));
    return err == 0 ? 0 : -1;
}

/* The volume id and the replicas of the other pods' slots (replicas.h). */
static int open_replicas(struct server *srv)
{
    char err[1024];
    if (replicas_open(&srv->replicas, srv->cfg.data_dir, srv->cfg.pod_name, err, sizeof(err)) !=
        0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

static int open_listener(struct server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->cfg.bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)srv->cfg.port);
        len = sizeof(*v4);
    } else {
        inet_pton(AF_INET6, srv->cfg.bind, &v6->sin6_addr); /* validated by config.c */
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)srv->cfg.port);
        len = sizeof(*v6);
    }
    int on = 1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        log_error("cannot listen on %s port %u: %s", srv->cfg.bind, srv->cfg.port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    srv->listen_fd = fd;
    srv->port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    return 0;
}

/* ---- event-loop threads --------------------------------------------------------------- */

static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    (void)messages; /* only NULL messages are sent: they wake the loop, nothing to do */
}

/* Stop accepting, ask HTTP/2 clients to go away, and make every idle connection (HTTP/1
 * waiting for a request, HTTP/2 without streams) time out now; connections with a request
 * in flight close after its response (keep-alive is off once shutdown is requested). */
static void worker_begin_stop(struct worker *w)
{
    if (w->listener != NULL) {
        listener_stop(w->listener);
        w->listener = NULL;
    }
    h2o_context_request_shutdown(&w->ctx);
    w->ctx.http1.req_timeout.timeout = 0;
    w->ctx.http2.idle_timeout.timeout = 0;
    w->stopping = 1;
    w->stop_deadline_ms = clock_mono_ms() + STOP_GRACE_MS;
}

static int worker_idle(struct worker *w)
{
    return visit_pending(w->srv->visit, &w->ctx) == 0 &&
           h2o_linklist_is_empty(&w->ctx.http1._conns) &&
           h2o_linklist_is_empty(&w->ctx.http2._conns);
}

static pthread_barrier_t started;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "visits-loop-%zu", w->index % 1000);
    pthread_setname_np(pthread_self(), name);
    /* Every handler's and logger's per-loop state is made here (on_context_init). */
    h2o_context_init(&w->ctx, h2o_evloop_create(), &w->srv->globalconf);
    h2o_multithread_register_receiver(w->ctx.queue, &w->wakeup, on_wakeup);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->srv->globalconf.hosts;
    int fd = fcntl(w->srv->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        log_error("thread %zu: cannot duplicate the listening socket: %s", w->index,
                  strerror(errno));
        exit(1);
    }
    w->listener =
        listener_start(w->srv->connections, &w->accept_ctx, guard_loop_create(&w->ctx), fd);
    pthread_barrier_wait(&started);

    for (;;) {
        h2o_evloop_run(w->ctx.loop, w->stopping ? 50 : INT32_MAX);
        accesslog_flush(w->srv->accesslog, &w->ctx);
        if (!w->stopping && atomic_load(&w->srv->stopping))
            worker_begin_stop(w);
        if (w->stopping) {
            if (worker_idle(w))
                break;
            if (clock_mono_ms() >= w->stop_deadline_ms) {
                log_error("thread %zu: connections still busy %d ms after the signal; "
                          "closing them",
                          w->index, STOP_GRACE_MS);
                break;
            }
        }
    }
    accesslog_flush(w->srv->accesslog, &w->ctx);
    respond_thread_exit();
    return NULL;
}

static int start_workers(struct server *srv)
{
    srv->workers = calloc(srv->cfg.threads, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return -ENOMEM;
    srv->nworkers = srv->cfg.threads;
    pthread_barrier_init(&started, NULL, srv->cfg.threads + 1);
    for (unsigned i = 0; i < srv->cfg.threads; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        int err = pthread_create(&w->tid, NULL, worker_main, w);
        if (err != 0)
            return -err; /* the caller exits: the threads started stop with the process */
    }
    pthread_barrier_wait(&started);
    return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

/* One path, "/": the router first, then the handler of each route, and the access log. */
static void register_routes(struct server *srv, h2o_pathconf_t *path)
{
    const struct server_config *cfg = &srv->cfg;
    struct router *router = router_register(path);
    struct visit_config visit = {
        .committer = srv->committer,
        .pod_name = cfg->pod_name,
        .counter_path = cfg->counter_path,
    };
    struct exchange_config exchange = {
        .committer = srv->committer,
        .replicas = srv->replicas,
        .pod_name = cfg->pod_name,
        .peers = cfg->peers,
        .npeers = cfg->npeers,
        .peers_dns = cfg->peers_dns.host[0] != '\0' ? &cfg->peers_dns : NULL,
        .bind = cfg->bind,
        .port = srv->port,
        .peer_timeout_ms = cfg->peer_timeout_ms,
        .sync_ms = cfg->sync_peers_ms,
        .recover_ms = cfg->recover_ms,
    };
    srv->exchange = exchange_create(&exchange); /* holds readiness until the recovery */
    struct cluster_config cluster = {
        .committer = srv->committer,
        .replicas = srv->replicas,
        .exchange = srv->exchange,
        .pod_name = cfg->pod_name,
    };
    h2o_handler_t *cluster_handler = cluster_register(path, &cluster);
    char sync[32];
    struct metrics_config metrics = {
        .committer = srv->committer,
        .keeper = srv->keeper,
        .requests = reqstats_create(),
        .cluster = cluster_handler,
        .sync = config_sync_name(cfg, sync, sizeof(sync)),
        .start_time = srv->start_time,
        .connections = srv->connections,
    };
    srv->visit = visit_register(path, &visit);
    router_route(router, ROUTE_ROOT, srv->visit);
    router_route(router, ROUTE_VISITS, visit_count_register(path, &visit));
    router_route(router, ROUTE_CLUSTER, cluster_handler);
    router_route(router, ROUTE_SLOTS, cluster_slots_register(path, &cluster));
    router_route(router, ROUTE_HEALTH, status_health_register(path));
    router_route(router, ROUTE_READY, status_ready_register(path, srv->committer));
    router_route(router, ROUTE_METRICS, metrics_register(path, &metrics));
    srv->accesslog = accesslog_register(path, metrics.requests);
}

static void setup_h2o(struct server *srv)
{
    h2o_config_init(&srv->globalconf);
    srv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT(SERVER_NAME));
    srv->globalconf.max_request_entity_size = MAX_REQUEST_BODY;
    /* HTTP/2 only when asked for (docs/server.md, PROTOCOLS): libh2o 2.2.5's HTTP/2 has
     * known weaknesses (CVE-2023-44487). This switch turns off both h2c with prior
     * knowledge and Upgrade: h2c. */
    srv->globalconf.http1.upgrade_to_http2 = srv->cfg.http2;
    /* Every HTTP/2 request reaches the router at once (libh2o would queue those beyond
     * this, already parsed and held): the guard (guard.h) bounds them itself. */
    srv->globalconf.http2.max_concurrent_requests_per_connection = 100;
    srv->connections = listener_shared_create(srv->cfg.max_connections);
    /* Peer names for the exchange are resolved by libh2o's getaddrinfo threads (one by
     * default; this many at most). */
    h2o_hostinfo_max_threads = srv->cfg.threads < 8 ? srv->cfg.threads : 8;
    h2o_hostconf_t *host =
        h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    register_routes(srv, h2o_config_register_path(host, "/", 0));
}

static void log_startup(struct server *srv)
{
    char sync[32];
    int v6 = strchr(srv->cfg.bind, ':') != NULL;
    log_info("listening on http://%s%s%s:%u (threads %u, sync %s, counter %s = %llu, pod %s, "
             "slot %s%s, version %s, libvisits %s, libh2o %s, max connections %u, http2 %s)",
             v6 ? "[" : "", srv->cfg.bind, v6 ? "]" : "", srv->port, srv->cfg.threads,
             config_sync_name(&srv->cfg, sync, sizeof(sync)), srv->cfg.counter_path,
             (unsigned long long)committer_value(srv->committer), srv->cfg.pod_name,
             replicas_own_id(srv->replicas),
             replicas_new_volume(srv->replicas) ? " (new volume)" : "", VISITS_VERSION_STRING,
             visits_version_string(), H2O_VERSION, srv->cfg.max_connections,
             srv->cfg.http2 ? "on" : "off");
}

static int run_until_signal(struct server *srv)
{
    int sig;
    char name[32];
    while (!signals_wait(&sig))
        log_info("received %s: ignored", signals_name(sig, name, sizeof(name)));
    uint64_t t0 = clock_mono_ms();
    log_info("received %s: stopping (no new connections; in-flight requests finish)",
             signals_name(sig, name, sizeof(name)));
    committer_set_draining(srv->committer);
    exchange_stop(srv->exchange, t0 + STOP_GRACE_MS); /* no raise after this */
    atomic_store(&srv->stopping, 1);
    /* The socket stops listening once this and every thread's duplicate are closed. */
    close(srv->listen_fd);
    for (size_t i = 0; i < srv->nworkers; i++)
        h2o_multithread_send_message(&srv->workers[i].wakeup, NULL);
    for (size_t i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].tid, NULL);

    uint64_t value = 0;
    int rc = 1;
    keeper_stop(srv->keeper, t0 + STOP_LIMIT_MS); /* at the deadline, it is left behind */
    int err = committer_stop(srv->committer, t0 + STOP_LIMIT_MS, &value);
    if (err == -ETIMEDOUT) {
        log_error("%s: the counter was not flushed within %d ms of the signal; exiting",
                  srv->cfg.counter_path, STOP_LIMIT_MS);
    } else if (err != 0) {
        log_error("%s: final write failed: %s; acknowledged visits may be lost",
                  srv->cfg.counter_path, visits_strerror(err));
    } else {
        log_info("stopped after %llu ms: counter %s = %llu flushed; exit 0",
                 (unsigned long long)(clock_mono_ms() - t0), srv->cfg.counter_path,
                 (unsigned long long)value);
        rc = 0;
    }
    /* A stuck stdout costs the lines still queued, never the exit. */
    uint64_t deadline = clock_mono_ms() + STOP_LOG_MS;
    log_stop(deadline < t0 + STOP_EXIT_MS ? deadline : t0 + STOP_EXIT_MS);
    return rc;
}

/* A supervisor may start us with standard descriptors closed: the next files opened
 * would take their numbers, and the access log would go into them. /dev/null fills each
 * closed one first. Returns -1 when that is impossible. */
static int fill_closed_stdio(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int nul = open("/dev/null", O_RDWR);
        if (nul < 0)
            return -1;
        if (nul != fd) { /* cannot happen: fd is the lowest free number */
            dup2(nul, fd);
            close(nul);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct server *srv = &server;
    if (fill_closed_stdio() != 0)
        return 1; /* nowhere to even say so */
    int rc = config_parse(&srv->cfg, argc, argv);
    if (rc != CONFIG_RUN) {
        fflush(stdout);
        config_free(&srv->cfg);
        return rc;
    }
    srv->start_time = (double)clock_real_ns() / 1e9;
    srv->listen_fd = -1;

    /* Signals are taken by sigwait() in this thread only; the threads inherit the mask. */
    signals_block();

    if (check_data_dir(&srv->cfg) != 0 || open_counter(srv) != 0 || open_replicas(srv) != 0 ||
        open_listener(srv) != 0)
        return 1;
    setup_h2o(srv);
    /* From here on the log thread writes the access log and this thread's lines to stdout
     * (it inherits the signal mask). */
    int err = log_start();
    if (err == 0)
        err = keeper_start(srv->keeper);
    if (err == 0)
        err = start_workers(srv);
    if (err == 0)
        err = exchange_start(srv->exchange);
    if (err != 0) {
        log_error("cannot start threads: %s", strerror(-err));
        return 1;
    }
    log_startup(srv);
    rc = run_until_signal(srv);
    return rc;
}
