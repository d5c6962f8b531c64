/* listener.c: accepting connections, up to the limit, without spinning when accept fails. */
#include "listener.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define ACCEPT_BATCH 16 /* connections taken per wake-up of a loop, for the other loops */
#define LIMIT_POLL_MS 20
#define LOG_EVERY_MS 10000 /* an episode that begins sooner after a logged one is not logged */
static const unsigned backoff_ms[] = {10, 20, 40, 80, 160, 320, 640, 1000};
#define STEPS (sizeof(backoff_ms) / sizeof(backoff_ms[0]))

enum { RUNNING, PAUSED_AT_LIMIT, PAUSED_FAILING };

struct listener_shared {
    unsigned max;
    atomic_uint open;
    atomic_uint_fast64_t waited; /* connections accepted after waiting (the metric) */
    pthread_mutex_t mu;          /* the episode below, for its log lines */
    int episode;                 /* connections wait: at the limit, or accept failing */
    int announced;               /* ... and its beginning was logged */
    uint64_t since;              /* ms, when it began */
    uint64_t waited_start;       /* waited, when it began */
    uint64_t logged_at;          /* ms, the last beginning logged */
};

struct listener {
    struct listener_shared *sh;
    h2o_accept_ctx_t *accept_ctx;
    struct guard_loop *guard;
    h2o_socket_t *sock;
    int state;
    int catching_up; /* accepting what waited in the queue; ends when the queue is empty */
    unsigned step;   /* of backoff_ms, while accept fails */
    h2o_timeout_t waits[STEPS]; /* after accept failed */
    h2o_timeout_t limit_poll;   /* at the limit, for the other loops' connections */
    h2o_timeout_entry_t retry;
    int stopped;
};

static void on_accept(h2o_socket_t *sock, const char *err);

/* ---- episodes, logged once when they begin and once when they end -------------------- */

/* Connections wait. Logged unless another episode was logged in the last LOG_EVERY_MS
 * (a server that hovers at its limit would log two lines per connection). */
static void episode_begin(struct listener_shared *sh, int failing, int err)
{
    pthread_mutex_lock(&sh->mu);
    uint64_t now = clock_mono_ms();
    if (!sh->episode) {
        sh->episode = 1;
        sh->since = now;
        sh->waited_start = atomic_load(&sh->waited);
        sh->announced = sh->logged_at == 0 || now - sh->logged_at >= LOG_EVERY_MS;
        if (sh->announced) {
            sh->logged_at = now;
            if (failing)
                log_error("cannot accept connections: %s (%u connections open); new "
                          "connections wait in the kernel's queue, retrying in 10 ms to 1 s "
                          "(lower --max-connections, or raise the open-files limit)",
                          strerror(err), atomic_load(&sh->open));
            else
                log_info("connections: %u open, the limit (--max-connections); new "
                         "connections wait in the kernel's queue until some close",
                         sh->max);
        }
    }
    pthread_mutex_unlock(&sh->mu);
}

/* A loop found the queue empty: whatever waited has been taken. */
static void episode_end(struct listener_shared *sh)
{
    pthread_mutex_lock(&sh->mu);
    if (sh->episode && atomic_load(&sh->open) < sh->max) {
        if (sh->announced)
            log_info("connections: accepting at once again after %" PRIu64 " ms; %" PRIu64
                     " connections waited (visits_connections_refused_total)",
                     clock_mono_ms() - sh->since,
                     (uint64_t)atomic_load(&sh->waited) - sh->waited_start);
        sh->episode = 0;
    }
    pthread_mutex_unlock(&sh->mu);
}

/* ---- pausing -------------------------------------------------------------------------- */

static void resume(struct listener *l)
{
    if (l->stopped || l->state == RUNNING)
        return;
    h2o_timeout_unlink(&l->retry);
    l->state = RUNNING;
    h2o_socket_read_start(l->sock, on_accept); /* the loop says so if connections wait */
}

static void pause_accepting(struct listener *l, int state, int err)
{
    h2o_socket_read_stop(l->sock);
    l->state = state;
    l->catching_up = 1;
    h2o_timeout_t *wait = &l->limit_poll;
    if (state == PAUSED_FAILING) {
        wait = &l->waits[l->step];
        if (l->step + 1 < STEPS)
            l->step++;
    }
    h2o_timeout_unlink(&l->retry);
    h2o_timeout_link(l->accept_ctx->ctx->loop, wait, &l->retry);
    episode_begin(l->sh, state == PAUSED_FAILING, err);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    struct listener *l = H2O_STRUCT_FROM_MEMBER(struct listener, retry, entry);
    if (l->stopped)
        return;
    if (l->state == PAUSED_AT_LIMIT && atomic_load(&l->sh->open) >= l->sh->max) {
        h2o_timeout_link(l->accept_ctx->ctx->loop, &l->limit_poll, &l->retry);
        return;
    }
    resume(l);
}

/* A connection of this loop closed (libh2o closed its socket). */
static void on_conn_close(void *data)
{
    struct listener *l = data;
    atomic_fetch_sub(&l->sh->open, 1);
    if (l->state == PAUSED_AT_LIMIT)
        resume(l);
}

/* ---- accepting ------------------------------------------------------------------------ */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct listener *l = listener->data;
    struct listener_shared *sh = l->sh;
    if (err != NULL || l->stopped)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        /* Take a slot before accepting, so that the loops together never exceed max. */
        if (atomic_fetch_add(&sh->open, 1) >= sh->max) {
            atomic_fetch_sub(&sh->open, 1);
            pause_accepting(l, PAUSED_AT_LIMIT, 0);
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            int e = errno;
            atomic_fetch_sub(&sh->open, 1);
            if (e == EAGAIN || e == EWOULDBLOCK) {
                if (l->catching_up) {
                    l->catching_up = 0;
                    episode_end(sh);
                }
                return;
            }
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                pause_accepting(l, PAUSED_FAILING, e);
                return;
            }
            continue; /* that connection is gone (ECONNABORTED, EPERM...): the next */
        }
        l->step = 0;
        if (l->catching_up)
            atomic_fetch_add(&sh->waited, 1);
        guard_attach(l->guard, sock, on_conn_close, l);
        h2o_accept(l->accept_ctx, sock);
    }
}

struct listener_shared *listener_shared_create(unsigned max_connections)
{
    struct listener_shared *sh = h2o_mem_alloc(sizeof(*sh));
    memset(sh, 0, sizeof(*sh));
    sh->max = max_connections;
    pthread_mutex_init(&sh->mu, NULL);
    return sh;
}

struct listener *listener_start(struct listener_shared *sh, h2o_accept_ctx_t *accept_ctx,
                                struct guard_loop *guard, int fd)
{
    struct listener *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->sh = sh;
    l->accept_ctx = accept_ctx;
    l->guard = guard;
    for (size_t i = 0; i < STEPS; i++)
        h2o_timeout_init(accept_ctx->ctx->loop, &l->waits[i], backoff_ms[i]);
    h2o_timeout_init(accept_ctx->ctx->loop, &l->limit_poll, LIMIT_POLL_MS);
    l->retry.cb = on_retry;
    l->sock = h2o_evloop_socket_create(accept_ctx->ctx->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return l;
}

void listener_stop(struct listener *l)
{
    if (l->stopped)
        return;
    l->stopped = 1;
    h2o_timeout_unlink(&l->retry);
    if (l->state == RUNNING)
        h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    l->sock = NULL;
}

unsigned listener_open_connections(struct listener_shared *sh)
{
    return atomic_load(&sh->open);
}

void listener_metrics(struct listener_shared *sh, struct strbuf *sb)
{
    strbuf_printf(sb,
                  "# HELP visits_connections_refused_total Client connections the server could "
                  "not take when they arrived (at --max-connections, or out of descriptors): "
                  "each waited in the kernel's accept queue while the listener was paused.\n"
                  "# TYPE visits_connections_refused_total counter\n"
                  "visits_connections_refused_total %" PRIu64 "\n",
                  (uint64_t)atomic_load(&sh->waited));
}
