/*
 * committer.c: the one thread that writes the counter.
 *
 * Event loops queue visits (committer_submit); the committer takes everything queued,
 * adds it with one visits_add() (one durable write cycle in always mode), gives each
 * visit its own value (v-n+1 .. v, in queue order) and sends it back to its loop through
 * h2o's multithread queue, one message per loop and batch, where committer_loop hands
 * each visit to the loop's callback. While a cycle runs, new visits pile up for the next
 * one.
 *
 * After a failed write the counter is not ready (GET /ready answers 503 with the reason);
 * a handle that the library marks failed (fsync error) is closed and reopened with
 * backoff. Probes (an add of 0) run with backoff while idle, so readiness comes back by
 * itself when the disk accepts writes again.
 */
#include "committer.h"

#include "clock.h"
#include "histogram.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_MS 1000        /* idle re-read of the counter (external changes, stats) */
#define BACKOFF_MIN_MS 50      /* first retry after a failure */
#define BACKOFF_MAX_MS 2000    /* slowest retry */
#define GATHER_MAX_NS 1000000u /* longest wait for a batch to fill (see gather()) */
#define GATHER_SKIP 8          /* cycles started at once after a gather waited in vain */
#define REPLY_GROUPS 16        /* event loops answered with one message each per batch */

static const struct histogram_bounds commit_bounds = {
    .n = 12,
    .le = {100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
           100000000, 250000000, 1000000000},
    .unit = 1000000000, /* ns, exported as seconds */
};
static const struct histogram_bounds batch_bounds = {
    .n = 11,
    .le = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
    .unit = 1,
};

struct committer {
    char *path;
    visits_options opts;
    visits_counter *counter; /* committer thread only once started */
    pthread_t tid;
    int started;

    pthread_mutex_t mu; /* queue */
    pthread_cond_t cv;
    struct committer_visit *head, *tail;
    size_t queued;
    size_t want; /* submit wakes the committer when queued reaches this (or at 1) */
    int stop;

    atomic_uint_fast64_t value; /* last committed (always) / acknowledged (interval) */

    pthread_mutex_t state_mu; /* readiness and cached stats; never held across I/O */
    int write_ok;
    int draining;
    char reason[200];
    int held; /* committer_hold_ready() (stub until the lead's committer lands) */
    char held_reason[128];
    visits_stats stats; /* library counters of the current handle, plus closed ones */
    visits_stats closed_stats;

    /* committer thread only */
    int last_err;
    uint64_t backoff_ms;
    uint64_t next_probe_ms;
    uint64_t next_refresh_ms;
    size_t expect;            /* visits likely to arrive soon (see gather()) */
    uint64_t gather_until_ns; /* ... but wait for them no longer than this */
    unsigned skip_gathers;    /* cycles left that start without gathering */
    int reopened;             /* the handle was reopened since the last success */

    /* metrics: written by the committer thread only */
    struct histogram commit_ns; /* time of one visits_add() of a batch */
    struct histogram batch;     /* visits in one batch */
    atomic_uint_fast64_t failures;
    atomic_uint_fast64_t reopens;
};

struct committer_loop {
    struct committer *c;
    h2o_multithread_receiver_t replies;
    committer_reply_cb cb;
    void *data;
    size_t pending;
};

int committer_open(struct committer **out, const char *path, const visits_options *opts)
{
    *out = NULL;
    struct committer *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->opts = *opts;
    int err = visits_open(path, opts, &c->counter);
    uint64_t v = 0;
    if (err == 0)
        err = visits_read(c->counter, &v);
    if (err != 0) {
        visits_close(c->counter);
        free(c->path);
        free(c);
        return err;
    }
    atomic_init(&c->value, v);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->state_mu, NULL);
    c->write_ok = 1;
    c->backoff_ms = BACKOFF_MIN_MS;
    visits_get_stats(c->counter, &c->stats);
    *out = c;
    return 0;
}

uint64_t committer_value(struct committer *c)
{
    return atomic_load_explicit(&c->value, memory_order_acquire);
}

void committer_view(struct committer *c, struct committer_view *out)
{
    pthread_mutex_lock(&c->state_mu);
    out->ready = c->write_ok && !c->draining && !c->held;
    if (c->draining)
        snprintf(out->reason, sizeof(out->reason), "shutting down");
    else if (c->held && c->write_ok)
        snprintf(out->reason, sizeof(out->reason), "%s", c->held_reason);
    else
        snprintf(out->reason, sizeof(out->reason), "%s", c->write_ok ? "" : c->reason);
    pthread_mutex_unlock(&c->state_mu);
}

void committer_set_draining(struct committer *c)
{
    pthread_mutex_lock(&c->state_mu);
    c->draining = 1;
    pthread_mutex_unlock(&c->state_mu);
}

/* ---- an event loop's end -------------------------------------------------------------- */

static void on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct committer_loop *l = H2O_STRUCT_FROM_MEMBER(struct committer_loop, replies, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct committer_visit *v =
            H2O_STRUCT_FROM_MEMBER(struct committer_visit, super.link, messages->next);
        h2o_linklist_unlink(&v->super.link);
        while (v != NULL) {
            struct committer_visit *chain = v->chain;
            l->pending--;
            l->cb(v, l->data);
            v = chain;
        }
    }
}

struct committer_loop *committer_attach(struct committer *c, h2o_context_t *ctx,
                                        committer_reply_cb cb, void *data)
{
    struct committer_loop *l = h2o_mem_alloc(sizeof(*l));
    *l = (struct committer_loop){c, {0}, cb, data, 0};
    h2o_multithread_register_receiver(ctx->queue, &l->replies, on_replies);
    return l;
}

void committer_submit(struct committer_loop *l, struct committer_visit *v)
{
    struct committer *c = l->c;
    v->loop = l;
    v->next = NULL;
    l->pending++;
    pthread_mutex_lock(&c->mu);
    if (c->tail != NULL)
        c->tail->next = v;
    else
        c->head = v;
    c->tail = v;
    c->queued++;
    int wake = c->queued == 1 || c->queued >= c->want;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        pthread_cond_signal(&c->cv);
}

size_t committer_pending(const struct committer_loop *l)
{
    return l->pending;
}

/* ---- the committer thread ------------------------------------------------------------- */

static void cache_stats(struct committer *c)
{
    visits_stats st;
    if (c->counter == NULL || visits_get_stats(c->counter, &st) != 0)
        return;
    pthread_mutex_lock(&c->state_mu);
    c->stats = st;
    pthread_mutex_unlock(&c->state_mu);
}

static void set_state(struct committer *c, int ok, int err)
{
    pthread_mutex_lock(&c->state_mu);
    int was_ok = c->write_ok;
    c->write_ok = ok;
    if (!ok)
        snprintf(c->reason, sizeof(c->reason), "counter write failed: %s: %s", c->path,
                 visits_strerror(err));
    pthread_mutex_unlock(&c->state_mu);
    if (was_ok && !ok)
        log_error("%s: write failed: %s; GET / answers 503 and /ready is not ready until a "
                  "write succeeds again",
                  c->path, visits_strerror(err));
    else if (!was_ok && ok)
        log_info("%s: writes succeed again%s; ready", c->path,
                 c->reopened ? " (counter reopened)" : "");
    if (ok)
        c->reopened = 0;
}

static void close_failed_handle(struct committer *c)
{
    visits_stats st;
    if (visits_get_stats(c->counter, &st) == 0) {
        pthread_mutex_lock(&c->state_mu);
        c->closed_stats.cycles += st.cycles;
        c->closed_stats.cycles_failed += st.cycles_failed;
        c->closed_stats.increments += st.increments;
        c->closed_stats.cycle_ns_total += st.cycle_ns_total;
        if (st.batch_max > c->closed_stats.batch_max)
            c->closed_stats.batch_max = st.batch_max;
        memset(&c->stats, 0, sizeof(c->stats));
        pthread_mutex_unlock(&c->state_mu);
    }
    visits_close(c->counter); /* the handle's error is known: the one that failed it */
    c->counter = NULL;
    if (c->last_err == 0) /* once per failure episode */
        log_error("%s: the counter handle failed (the outcome of the write is unknown); "
                  "closed it, reopening with backoff%s",
                  c->path,
                  c->opts.sync == VISITS_SYNC_INTERVAL
                      ? "; acknowledged visits not yet written are lost"
                      : "");
}

/* Opens the counter if a failed handle was closed; respects the backoff. */
static int ensure_open(struct committer *c, uint64_t now)
{
    if (c->counter != NULL)
        return 0;
    if (now < c->next_probe_ms)
        return c->last_err != 0 ? c->last_err : VISITS_EFAILED;
    counter_add(&c->reopens, 1);
    int err = visits_open(c->path, &c->opts, &c->counter);
    if (err == 0)
        c->reopened = 1;
    return err;
}

/* Bookkeeping after a write attempt (err) that left the counter at v on success. */
static void after_write(struct committer *c, int err, uint64_t v, uint64_t now)
{
    if (err == 0) {
        atomic_store_explicit(&c->value, v, memory_order_release);
        c->backoff_ms = BACKOFF_MIN_MS;
        set_state(c, 1, 0);
    } else {
        counter_add(&c->failures, 1);
        set_state(c, 0, err);
        visits_stats st;
        if (c->counter != NULL &&
            (err == VISITS_EFAILED || (visits_get_stats(c->counter, &st) == 0 && st.failed)))
            close_failed_handle(c);
        c->next_probe_ms = now + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
    c->last_err = err;
    cache_stats(c);
}

static void commit(struct committer *c, struct committer_visit *batch, size_t n)
{
    uint64_t t0 = clock_mono_ns();
    uint64_t v = 0;
    int err = ensure_open(c, t0 / 1000000u);
    if (err == 0) {
        err = visits_add(c->counter, n, &v);
        histogram_observe(&c->commit_ns, &commit_bounds, clock_mono_ns() - t0);
        histogram_observe(&c->batch, &batch_bounds, n);
    }
    after_write(c, err, v, clock_mono_ms());
    /* Values in queue order; then one message per event loop carries its whole chain
     * (one lock and at most one wake-up per loop and batch, not per visit). */
    struct reply_group {
        struct committer_loop *to;
        struct committer_visit *head, *tail;
    } loops[REPLY_GROUPS];
    size_t nloops = 0;
    uint64_t next = err == 0 ? v - n + 1 : 0;
    for (struct committer_visit *w = batch, *following; w != NULL; w = following) {
        following = w->next;
        w->err = err;
        w->value = err == 0 ? next++ : 0;
        w->chain = NULL;
        size_t i = 0;
        while (i < nloops && loops[i].to != w->loop)
            i++;
        if (i == nloops && nloops < REPLY_GROUPS)
            loops[nloops++] = (struct reply_group){w->loop, w, w};
        else if (i < nloops)
            loops[i].tail = loops[i].tail->chain = w;
        else /* more loops than slots */
            h2o_multithread_send_message(&w->loop->replies, &w->super);
    }
    for (size_t i = 0; i < nloops; i++) /* each chain belongs to its loop once sent */
        h2o_multithread_send_message(&loops[i].to->replies, &loops[i].head->super);
}

/* Idle work: probe after a failure, otherwise re-read the value and the stats. */
static void tick(struct committer *c)
{
    uint64_t now = clock_mono_ms();
    if (c->last_err != 0) {
        if (now < c->next_probe_ms)
            return;
        uint64_t v = 0;
        int err = ensure_open(c, now);
        if (err == 0)
            err = visits_add(c->counter, 0, &v);
        after_write(c, err, v, clock_mono_ms());
        return;
    }
    uint64_t v;
    if (c->counter != NULL && visits_read(c->counter, &v) == 0)
        atomic_store_explicit(&c->value, v, memory_order_release);
    cache_stats(c);
    if (c->opts.sync == VISITS_SYNC_INTERVAL && c->stats.last_error != 0)
        after_write(c, c->stats.last_error, 0, now); /* the background write failed */
    c->next_refresh_ms = now + REFRESH_MS;
}

/*
 * Group commit gathers: the clients answered by a cycle usually come back with their next
 * visit within a fraction of a cycle. Starting the next cycle at once with only the
 * visits that arrived meanwhile splits the clients into two groups that alternate, each
 * waiting for two cycles. So, in always mode, the next cycle waits (with c->mu held by the
 * caller) until as many visits are queued as the last cycle carried plus those queued
 * during it, but never longer than the last cycle took (1 ms at most). Under light
 * load the expectation is met by the first visit and nothing waits; when a burst ends,
 * one cycle may wait that long in vain.
 *
 * Gathering pays only while the clients come back faster than a cycle takes. When they
 * do not (many connections, a fast disk), a gather ends by its timeout with the disk idle
 * all along, and starting at once does better: the two groups then alternate, each one's
 * turnaround overlapping the other's cycle (bench/http with a 100 us fsync: +15-20% at 64
 * connections). So a gather that waited in vain turns gathering off for the next
 * GATHER_SKIP cycles, after which it is tried again.
 */
static void gather(struct committer *c)
{
    if (c->opts.sync != VISITS_SYNC_ALWAYS || c->queued >= c->expect)
        return;
    if (c->skip_gathers > 0) {
        c->skip_gathers--;
        return;
    }
    uint64_t until = c->gather_until_ns;
    struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
    c->want = c->expect;
    while (c->queued < c->want && !c->stop && clock_mono_ns() < until &&
           pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    if (c->queued < c->want && !c->stop)
        c->skip_gathers = GATHER_SKIP;
    c->want = SIZE_MAX;
}

static void *committer_main(void *arg)
{
    struct committer *c = arg;
    pthread_setname_np(pthread_self(), "visits-commit"); /* as top -H and ps -L show it */
    c->next_refresh_ms = clock_mono_ms() + REFRESH_MS;
    pthread_mutex_lock(&c->mu);
    c->want = SIZE_MAX;
    for (;;) {
        if (c->head == NULL && !c->stop) {
            uint64_t wake = c->last_err != 0 ? c->next_probe_ms : c->next_refresh_ms;
            struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000};
            while (c->head == NULL && !c->stop &&
                   pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
                ;
        }
        if (c->head != NULL && !c->stop)
            gather(c);
        struct committer_visit *batch = c->head;
        size_t n = c->queued;
        int stop = c->stop;
        c->head = c->tail = NULL;
        c->queued = 0;
        pthread_mutex_unlock(&c->mu);
        uint64_t t0 = clock_mono_ns();
        if (batch != NULL)
            commit(c, batch, n);
        else if (!stop)
            tick(c);
        uint64_t t1 = clock_mono_ns(), took = t1 - t0;
        pthread_mutex_lock(&c->mu);
        if (batch != NULL) {
            c->expect = n + c->queued;
            c->gather_until_ns = t1 + (took < GATHER_MAX_NS ? took : GATHER_MAX_NS);
        }
        if (stop && c->head == NULL)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int committer_start(struct committer *c)
{
    int err = pthread_create(&c->tid, NULL, committer_main, c);
    if (err != 0)
        return -err;
    c->started = 1;
    return 0;
}

int committer_stop(struct committer *c, uint64_t deadline_ms, uint64_t *final_value)
{
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_mutex_unlock(&c->mu);
        pthread_cond_signal(&c->cv);
        struct timespec ts = clock_real_deadline(deadline_ms, 0);
        if (pthread_timedjoin_np(c->tid, NULL, &ts) != 0)
            return -ETIMEDOUT;
        c->started = 0;
    }
    int err = visits_close(c->counter);
    c->counter = NULL;
    *final_value = committer_value(c);
    return err;
}

/* ---- metrics -------------------------------------------------------------------------- */

void committer_metrics(struct committer *c, struct strbuf *sb)
{
    struct histogram_total commits = {0}, batches = {0};
    histogram_read(&commits, &c->commit_ns);
    histogram_read(&batches, &c->batch);
    strbuf_puts(sb, "# HELP visits_commit_duration_seconds Time of one visits_add() of a batch "
                    "by the committer (a durable write cycle in always mode).\n"
                    "# TYPE visits_commit_duration_seconds histogram\n");
    histogram_render(sb, "visits_commit_duration_seconds", NULL, &commit_bounds, &commits);
    strbuf_puts(sb, "# HELP visits_commit_batch_size Visits carried by one commit.\n"
                    "# TYPE visits_commit_batch_size histogram\n");
    histogram_render(sb, "visits_commit_batch_size", NULL, &batch_bounds, &batches);

    pthread_mutex_lock(&c->state_mu);
    visits_stats st = c->stats, closed = c->closed_stats;
    int ready = c->write_ok && !c->draining && !c->held;
    pthread_mutex_unlock(&c->state_mu);
    strbuf_printf(
        sb,
        "# HELP visits_commit_failures_total Commits and probes that returned an error.\n"
        "# TYPE visits_commit_failures_total counter\n"
        "visits_commit_failures_total %" PRIu64 "\n"
        "# HELP visits_reopens_total Attempts to reopen the counter after a failure.\n"
        "# TYPE visits_reopens_total counter\n"
        "visits_reopens_total %" PRIu64 "\n"
        "# HELP visits_write_cycles_total Durable write cycles completed by libvisits.\n"
        "# TYPE visits_write_cycles_total counter\n"
        "visits_write_cycles_total %" PRIu64 "\n"
        "# HELP visits_write_cycles_failed_total Write cycles of libvisits that failed.\n"
        "# TYPE visits_write_cycles_failed_total counter\n"
        "visits_write_cycles_failed_total %" PRIu64 "\n"
        "# HELP visits_write_cycle_seconds_total Time spent in successful write cycles.\n"
        "# TYPE visits_write_cycle_seconds_total counter\n"
        "visits_write_cycle_seconds_total %.9f\n"
        "# HELP visits_ready 1 when the counter is writable and the server is not stopping.\n"
        "# TYPE visits_ready gauge\n"
        "visits_ready %d\n",
        counter_get(&c->failures), counter_get(&c->reopens), st.cycles + closed.cycles,
        st.cycles_failed + closed.cycles_failed,
        (double)(st.cycle_ns_total + closed.cycle_ns_total) / 1e9, ready);
}

/* ---- stubs of the lead's committer API (issue 15 uses them; replaced at the merge) ------ */

void committer_hold_ready(struct committer *c, const char *reason)
{
    pthread_mutex_lock(&c->state_mu);
    c->held = 1;
    snprintf(c->held_reason, sizeof(c->held_reason), "%s", reason);
    pthread_mutex_unlock(&c->state_mu);
}

void committer_release_ready(struct committer *c)
{
    pthread_mutex_lock(&c->state_mu);
    c->held = 0;
    pthread_mutex_unlock(&c->state_mu);
}

/* A handle of its own: the committer thread's handle re-reads the file under the lock at
 * its next write and counts on from the raised value. */
int committer_raise(struct committer *c, uint64_t floor, uint64_t *value_out)
{
    visits_counter *h = NULL;
    uint64_t v = 0;
    int err = visits_open(c->path, &c->opts, &h);
    if (err == 0)
        err = visits_raise(h, floor, &v);
    int cerr = visits_close(h);
    if (err == 0)
        err = cerr;
    if (err != 0)
        return err;
    uint64_t old = atomic_load_explicit(&c->value, memory_order_acquire);
    while (old < v && !atomic_compare_exchange_weak(&c->value, &old, v))
        ;
    if (value_out != NULL)
        *value_out = v;
    return 0;
}
