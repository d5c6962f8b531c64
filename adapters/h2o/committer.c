/*
 * committer.c: the bridge between the event loops and libvisits, and the counter's keeper.
 *
 * A visit goes to the library with visits_add_async(); the library's committer thread
 * groups the visits of all loops into write cycles and calls back once each is durable
 * (always) or accepted (interval), in order; the callback hands the visit back to the
 * loop that submitted it through h2o's multithread queue. No thread of the server waits
 * for the disk on a visit's way.
 *
 * The keeper thread looks after the counter, never on a visit's path:
 * - readiness: after a failed write the counter is not ready (GET /ready answers 503 with
 *   the reason); the keeper reopens the counter on its path (visits_reopen: the directory
 *   may have been replaced) and probes it with backoff, so readiness comes back by itself
 *   when the disk accepts writes again. A write cycle running longer than --stall-ms makes
 *   the counter not ready while it lasts ("counter write stalled for 3.1 s").
 * - the path: once a second, when idle, it re-reads the value and checks that the data
 *   directory at the path is the one the counter holds; when the path names another
 *   directory now, it reopens there.
 * - what changed behind the server: the library counts files deleted, rolled back or set
 *   by an operator and directories followed; the keeper logs each and exports them.
 * A counter at its maximum is permanent, not a readiness matter: those visits are refused
 * with a clear error and one log line per episode.
 */
#include "committer.h"

#include "clock.h"
#include "histogram.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TICK_MS 100         /* the keeper's period */
#define REFRESH_MS 1000     /* idle re-read of the value and check of the path */
#define BACKOFF_MIN_MS 50   /* first reopen after a failure */
#define BACKOFF_MAX_MS 2000 /* slowest retry */

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

/* The changes behind the server that the library counts, as metric labels. */
enum { EV_RECREATED, EV_ROLLED_BACK, EV_SET, EV_DIR_CHANGED, EV_REOPENED, EV_COUNT };
static const char *const event_names[EV_COUNT] = {"recreated", "rolled_back", "set_followed",
                                                  "dir_changed", "reopened"};

struct committer {
    char *path;
    char *dir; /* the data directory: path's */
    visits_options opts;
    unsigned stall_ms;
    visits_counter *counter;
    atomic_uint_fast64_t value; /* the highest value handed out or read */

    pthread_mutex_t mu;  /* everything below; never held across I/O */
    pthread_cond_t cv;   /* wakes the keeper */
    atomic_int write_ok; /* the last write or probe succeeded (written under mu) */
    int write_err;       /* ... else its error */
    int draining;
    char held[128];           /* readiness held off by another module, with this reason */
    atomic_int holding;       /* held[0] != '\0', read without mu on a visit's path */
    atomic_int overflowing;   /* the counter is at its maximum (written under mu) */
    atomic_int failed_logged; /* the handle's failure was told (once per episode) */
    int stop;
    int keeper_started;
    pthread_t keeper;

    /* a stall: the write cycle that passed --stall-ms, counted once by whoever saw it first
     * (a readiness check or the keeper), told once by the keeper */
    uint64_t stall_cycle; /* 1 + the cycles done before it; 0: none yet */
    int stall_told;

    /* keeper thread only */
    uint64_t backoff_ms;
    uint64_t next_attempt_ms;
    uint64_t next_refresh_ms;
    int stalled; /* told, and its end not yet */
    dev_t dir_dev;
    ino_t dir_ino;
    uint64_t seen[EV_COUNT]; /* the library's counts already logged */

    /* metrics: commit_ns and batch written by the library's committer thread (the cycle
     * hook), the rest by the keeper */
    struct histogram commit_ns;
    struct histogram batch;
    atomic_uint_fast64_t cycle_failures;
    atomic_uint_fast64_t probe_failures;
    atomic_uint_fast64_t reopens;
    atomic_uint_fast64_t stalls;
    atomic_uint_fast64_t events[EV_COUNT];
};

struct committer_loop {
    struct committer *c;
    h2o_multithread_receiver_t replies;
    committer_reply_cb cb;
    void *data;
    size_t pending;
};

static void raise_value(struct committer *c, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(&c->value, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(
                          &c->value, &cur, v, memory_order_release, memory_order_relaxed))
        ;
}

/* The library's committer thread, after every write cycle. */
static void on_cycle(void *arg, const visits_cycle_info *info)
{
    struct committer *c = arg;
    histogram_observe(&c->commit_ns, &commit_bounds, info->ns);
    histogram_observe(&c->batch, &batch_bounds, info->ops);
    if (info->err != 0 && info->err != VISITS_EOVERFLOW)
        counter_add(&c->cycle_failures, 1);
}

static int dir_identity(const char *dir, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

int committer_open(struct committer **out, const char *path, const visits_options *opts,
                   unsigned stall_ms)
{
    *out = NULL;
    struct committer *c = calloc(1, sizeof(*c));
    char *copy = strdup(path);
    if (c == NULL || copy == NULL || (c->path = strdup(path)) == NULL ||
        (c->dir = strdup(dirname(copy))) == NULL) {
        free(copy);
        if (c != NULL) {
            free(c->path);
            free(c);
        }
        return -ENOMEM;
    }
    free(copy);
    c->opts = *opts;
    c->opts.on_cycle = on_cycle;
    c->opts.cycle_arg = c;
    c->stall_ms = stall_ms;
    uint64_t v = 0;
    int err = visits_open(path, &c->opts, &c->counter);
    if (err == 0)
        err = visits_read(c->counter, &v);
    if (err != 0) {
        visits_close(c->counter);
        free(c->dir);
        free(c->path);
        free(c);
        return err;
    }
    atomic_init(&c->value, v);
    dir_identity(c->dir, &c->dir_dev, &c->dir_ino);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    c->write_ok = 1;
    c->backoff_ms = BACKOFF_MIN_MS;
    *out = c;
    return 0;
}

uint64_t committer_value(struct committer *c)
{
    return atomic_load_explicit(&c->value, memory_order_acquire);
}

/* ---- readiness ------------------------------------------------------------------------- */

/* How long the write cycle now running has run, in ms (0: none); counts a stall the first
 * time anyone sees it. Never blocks. */
static uint64_t running_ms(struct committer *c)
{
    visits_stats st;
    if (visits_get_stats(c->counter, &st) != 0)
        return 0;
    uint64_t ms = st.cycle_running_ns / 1000000u;
    if (ms >= c->stall_ms) {
        uint64_t id = st.cycles + st.cycles_failed + 1;
        pthread_mutex_lock(&c->mu);
        if (c->stall_cycle != id) {
            c->stall_cycle = id;
            c->stall_told = 0;
            atomic_fetch_add_explicit(&c->stalls, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return ms;
}

void committer_view(struct committer *c, struct committer_view *out)
{
    uint64_t running = running_ms(c);
    pthread_mutex_lock(&c->mu);
    out->ready = 0;
    if (c->draining)
        snprintf(out->reason, sizeof(out->reason), "shutting down");
    else if (c->held[0] != '\0')
        snprintf(out->reason, sizeof(out->reason), "%s", c->held);
    else if (running >= c->stall_ms)
        snprintf(out->reason, sizeof(out->reason),
                 "counter write stalled for %" PRIu64 ".%" PRIu64 " s: %s", running / 1000,
                 running % 1000 / 100, c->path);
    else if (!c->write_ok)
        snprintf(out->reason, sizeof(out->reason), "counter write failed: %s: %s", c->path,
                 visits_strerror(c->write_err));
    else
        out->ready = 1;
    if (out->ready)
        out->reason[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}

void committer_set_draining(struct committer *c)
{
    pthread_mutex_lock(&c->mu);
    c->draining = 1;
    pthread_mutex_unlock(&c->mu);
}

void committer_hold_ready(struct committer *c, const char *reason)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->held, sizeof(c->held), "%s", reason[0] != '\0' ? reason : "not ready");
    atomic_store(&c->holding, 1);
    pthread_mutex_unlock(&c->mu);
}

void committer_release_ready(struct committer *c)
{
    pthread_mutex_lock(&c->mu);
    c->held[0] = '\0';
    atomic_store(&c->holding, 0);
    pthread_mutex_unlock(&c->mu);
}

/* Any thread: the outcome of a write (a visit's, or a probe's). */
static void note_write(struct committer *c, int err, const char *how)
{
    pthread_mutex_lock(&c->mu);
    int was_ok = c->write_ok, was_overflowing = c->overflowing;
    if (err == VISITS_EOVERFLOW) {
        c->overflowing = 1; /* permanent until an operator acts: not a readiness matter */
    } else if (err == 0) {
        c->write_ok = 1;
        c->overflowing = 0;
    } else {
        c->write_ok = 0;
        c->write_err = err;
        pthread_cond_signal(&c->cv); /* the keeper reopens and probes */
    }
    pthread_mutex_unlock(&c->mu);
    if (err == VISITS_EOVERFLOW && !was_overflowing)
        log_error("%s: the counter is at its maximum (%s); visits are refused until an "
                  "operator lowers it with 'visitsctl set %s N'",
                  c->path, visits_strerror(err), c->path);
    else if (err != 0 && err != VISITS_EOVERFLOW && was_ok)
        log_error("%s: write failed: %s (%s); GET / answers 503 and /ready is not ready until "
                  "a write succeeds again",
                  c->path, visits_strerror(err), visits_err_name(err));
    else if (err == 0 && !was_ok)
        log_info("%s: writes succeed again%s; ready", c->path, how);
    if (err == 0)
        atomic_store(&c->failed_logged, 0);
}

/* ---- the bridge ------------------------------------------------------------------------ */

/* The library's committer thread, once per visit, in order: back to the visit's loop. */
static void on_done(void *arg, int err, uint64_t value)
{
    struct committer_visit *v = arg;
    struct committer *c = v->loop->c;
    v->err = err;
    v->value = value;
    if (err == 0) {
        raise_value(c, value);
        if (!atomic_load_explicit(&c->write_ok, memory_order_relaxed) ||
            atomic_load_explicit(&c->overflowing, memory_order_relaxed))
            note_write(c, 0, "");
    } else {
        note_write(c, err, "");
    }
    h2o_multithread_send_message(&v->loop->replies, &v->super);
}

static void on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct committer_loop *l = H2O_STRUCT_FROM_MEMBER(struct committer_loop, replies, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct committer_visit *v =
            H2O_STRUCT_FROM_MEMBER(struct committer_visit, super.link, messages->next);
        h2o_linklist_unlink(&v->super.link);
        l->pending--;
        l->cb(v, l->data); /* may free v */
    }
}

struct committer_loop *committer_attach(struct committer *c, h2o_context_t *ctx,
                                        committer_reply_cb cb, void *data)
{
    struct committer_loop *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->c = c;
    l->cb = cb;
    l->data = data;
    h2o_multithread_register_receiver(ctx->queue, &l->replies, on_replies);
    return l;
}

void committer_submit(struct committer_loop *l, struct committer_visit *v)
{
    memset(&v->super, 0, sizeof(v->super));
    v->loop = l;
    l->pending++;
    int err = visits_add_async(l->c->counter, 1, on_done, v);
    if (err != 0) { /* not queued (closing, out of memory): answer through the loop too */
        v->err = err;
        v->value = 0;
        h2o_multithread_send_message(&l->replies, &v->super);
    }
}

int committer_held(struct committer *c, char *reason, size_t size)
{
    if (!atomic_load_explicit(&c->holding, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&c->mu);
    int held = c->held[0] != '\0';
    if (held)
        snprintf(reason, size, "%s", c->held);
    pthread_mutex_unlock(&c->mu);
    return held;
}

size_t committer_pending(const struct committer_loop *l)
{
    return l->pending;
}

int committer_raise(struct committer *c, uint64_t floor, uint64_t *value_out)
{
    uint64_t v = 0;
    int err = visits_raise(c->counter, floor, &v);
    if (err == 0) {
        raise_value(c, v);
        if (value_out != NULL)
            *value_out = v;
    }
    note_write(c, err, "");
    return err;
}

/* ---- the keeper ------------------------------------------------------------------------ */

/* Logs and counts what the library saw change behind the server since the last look. */
static void report_events(struct committer *c, const visits_stats *st)
{
    const uint64_t now[EV_COUNT] = {st->recreated, st->rolled_back, st->sets_followed,
                                    st->dir_changed, st->reopens};
    for (int e = 0; e < EV_COUNT; e++) {
        if (now[e] <= c->seen[e])
            continue;
        counter_add(&c->events[e], now[e] - c->seen[e]);
        c->seen[e] = now[e];
        switch (e) {
        case EV_RECREATED:
            log_error("%s: the counter file was gone (deleted, or its directory replaced); "
                      "created it again from the last known value, %" PRIu64 ": nothing lost",
                      c->path, st->known);
            break;
        case EV_ROLLED_BACK:
            log_error("%s: the counter file held less than this server had counted (replaced "
                      "or restored from an older copy); counting on from %" PRIu64,
                      c->path, st->known);
            break;
        case EV_SET:
            log_info("%s: an operator set the counter (visitsctl set); counting on from %" PRIu64,
                     c->path, st->known);
            break;
        case EV_DIR_CHANGED:
            log_error("%s: the data directory %s is another directory now (replaced or "
                      "swapped); writing there, from %" PRIu64,
                      c->path, c->dir, st->known);
            break;
        default:
            break;
        }
    }
}

/* A stalled write cycle: told once, and its end. */
static void watch_stall(struct committer *c)
{
    uint64_t ms = running_ms(c);
    pthread_mutex_lock(&c->mu);
    int tell = c->stall_cycle != 0 && !c->stall_told;
    c->stall_told = 1;
    pthread_mutex_unlock(&c->mu);
    if (tell) {
        c->stalled = 1;
        log_error("%s: counter write stalled for %" PRIu64 " ms or more (the disk does not "
                  "answer); not ready until it completes",
                  c->path, ms > c->stall_ms ? ms : (uint64_t)c->stall_ms);
    }
    if (c->stalled && ms < c->stall_ms) {
        c->stalled = 0;
        log_info("%s: the stalled write completed", c->path);
    }
}

/* After a failure: reopen on the path (the directory may be another one now), then probe
 * with an increment of 0, which writes the file in always mode. Backoff between tries. */
static void recover(struct committer *c, const visits_stats *st, uint64_t now)
{
    if (st->failed && !atomic_exchange(&c->failed_logged, 1)) {
        log_error("%s: the counter handle failed (the outcome of the write is unknown); "
                  "closed it, reopening with backoff%s",
                  c->path,
                  c->opts.sync == VISITS_SYNC_INTERVAL
                      ? "; acknowledged visits not yet written are lost"
                      : "");
    }
    if (now < c->next_attempt_ms)
        return;
    int had_failed = st->failed;
    int err = visits_reopen(c->counter);
    if (err == 0)
        counter_add(&c->reopens, 1);
    uint64_t v = 0;
    if (err == 0)
        err = visits_add(c->counter, 0, &v);
    if (err == 0 && c->opts.sync == VISITS_SYNC_INTERVAL) {
        /* an interval-mode increment is not written yet: ask the library how the
         * background writes fare */
        visits_stats now_st;
        if (visits_get_stats(c->counter, &now_st) == 0)
            err = now_st.last_error;
    }
    if (err == 0) {
        raise_value(c, v);
        c->backoff_ms = BACKOFF_MIN_MS;
        dir_identity(c->dir, &c->dir_dev, &c->dir_ino);
        note_write(c, 0, had_failed ? " (counter reopened)" : "");
        return;
    }
    counter_add(&c->probe_failures, 1);
    pthread_mutex_lock(&c->mu);
    c->write_err = err;
    pthread_mutex_unlock(&c->mu);
    c->next_attempt_ms = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Idle: re-read the value (other processes write too) and check the path still names the
 * directory the counter holds; in interval mode, see how the background writes fare. */
static void refresh(struct committer *c, const visits_stats *st, int sets_followed)
{
    dev_t dev = 0;
    ino_t ino = 0;
    int err = dir_identity(c->dir, &dev, &ino);
    if (err == 0 && (dev != c->dir_dev || ino != c->dir_ino)) {
        log_error("%s: the data directory %s is another directory now; reopening the counter "
                  "there",
                  c->path, c->dir);
        if ((err = visits_reopen(c->counter)) == 0) {
            counter_add(&c->reopens, 1);
            c->dir_dev = dev;
            c->dir_ino = ino;
        }
    }
    uint64_t v;
    if (visits_read(c->counter, &v) == 0) {
        if (sets_followed)
            atomic_store_explicit(&c->value, v, memory_order_release); /* may be lower */
        else
            raise_value(c, v);
    }
    if (c->opts.sync == VISITS_SYNC_INTERVAL && st->last_error != 0)
        note_write(c, st->last_error, "");
    else if (err != 0 && err != -ENOENT)
        note_write(c, err, "");
}

static void *keeper_main(void *arg)
{
    struct committer *c = arg;
    pthread_setname_np(pthread_self(), "visits-keeper"); /* as top -H and ps -L show it */
    c->next_refresh_ms = clock_mono_ms() + REFRESH_MS;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        uint64_t wake = clock_mono_ns() + (uint64_t)TICK_MS * 1000000u;
        struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (c->stop)
            break;
        int ok = c->write_ok;
        pthread_mutex_unlock(&c->mu);

        visits_stats st;
        uint64_t now = clock_mono_ms();
        if (visits_get_stats(c->counter, &st) == 0) {
            int sets_followed = st.sets_followed > c->seen[EV_SET];
            watch_stall(c);
            report_events(c, &st);
            if (!ok)
                recover(c, &st, now);
            else if (now >= c->next_refresh_ms && st.cycle_running_ns == 0) {
                refresh(c, &st, sets_followed);
                c->next_refresh_ms = now + REFRESH_MS;
            }
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int committer_start(struct committer *c)
{
    int err = pthread_create(&c->keeper, NULL, keeper_main, c);
    if (err != 0)
        return -err;
    c->keeper_started = 1;
    return 0;
}

/* ---- stopping -------------------------------------------------------------------------- */

struct closer {
    visits_counter *counter;
    int err;
};

static void *closer_main(void *arg)
{
    struct closer *cl = arg;
    cl->err = visits_close(cl->counter);
    return NULL;
}

int committer_stop(struct committer *c, uint64_t deadline_ms, uint64_t *final_value)
{
    if (c->keeper_started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->keeper, NULL); /* a probe in flight waits for the disk: bounded
                                          below only by the close that follows */
        c->keeper_started = 0;
    }
    /* visits_close writes what is queued (interval mode: acknowledged visits) and runs the
     * last callbacks; a disk that hangs must not hold the exit past the deadline. */
    static struct closer cl; /* outlives a thread left behind at the deadline */
    cl.counter = c->counter;
    pthread_t tid;
    if (pthread_create(&tid, NULL, closer_main, &cl) != 0)
        closer_main(&cl);
    else {
        struct timespec ts = clock_real_deadline(deadline_ms, 0);
        if (pthread_timedjoin_np(tid, NULL, &ts) != 0)
            return -ETIMEDOUT;
    }
    c->counter = NULL;
    *final_value = committer_value(c);
    return cl.err;
}

/* ---- metrics --------------------------------------------------------------------------- */

void committer_metrics(struct committer *c, struct strbuf *sb)
{
    struct histogram_total commits = {0}, batches = {0};
    histogram_read(&commits, &c->commit_ns);
    histogram_read(&batches, &c->batch);
    strbuf_puts(sb, "# HELP visits_commit_duration_seconds Time of one durable write cycle of "
                    "libvisits (a batch of visits; in interval mode a background write).\n"
                    "# TYPE visits_commit_duration_seconds histogram\n");
    histogram_render(sb, "visits_commit_duration_seconds", NULL, &commit_bounds, &commits);
    strbuf_puts(sb, "# HELP visits_commit_batch_size Visits carried by one write cycle.\n"
                    "# TYPE visits_commit_batch_size histogram\n");
    histogram_render(sb, "visits_commit_batch_size", NULL, &batch_bounds, &batches);

    visits_stats st;
    memset(&st, 0, sizeof(st));
    if (c->counter != NULL)
        visits_get_stats(c->counter, &st);
    struct committer_view view;
    committer_view(c, &view);
    strbuf_printf(
        sb,
        "# HELP visits_commit_failures_total Write cycles and recovery probes that failed.\n"
        "# TYPE visits_commit_failures_total counter\n"
        "visits_commit_failures_total %" PRIu64 "\n"
        "# HELP visits_reopens_total Reopens of the counter on its path (after a failure, or "
        "when the data directory was replaced).\n"
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
        "# HELP visits_write_stall_seconds How long the write cycle now running has run (0: "
        "none); past --stall-ms the server is not ready.\n"
        "# TYPE visits_write_stall_seconds gauge\n"
        "visits_write_stall_seconds %.3f\n"
        "# HELP visits_write_stalls_total Write cycles that ran longer than --stall-ms.\n"
        "# TYPE visits_write_stalls_total counter\n"
        "visits_write_stalls_total %" PRIu64 "\n"
        "# HELP visits_ready 1 when the counter is writable and the server is not stopping.\n"
        "# TYPE visits_ready gauge\n"
        "visits_ready %d\n",
        counter_get(&c->cycle_failures) + counter_get(&c->probe_failures), counter_get(&c->reopens),
        st.cycles, st.cycles_failed, (double)st.cycle_ns_total / 1e9,
        (double)st.cycle_running_ns / 1e9, counter_get(&c->stalls), view.ready);
    strbuf_puts(sb, "# HELP visits_file_events_total Changes found behind the server: the "
                    "counter file recreated, rolled back or set by an operator, the data "
                    "directory replaced, the counter reopened.\n"
                    "# TYPE visits_file_events_total counter\n");
    for (int e = 0; e < EV_COUNT; e++)
        strbuf_printf(sb, "visits_file_events_total{event=\"%s\"} %" PRIu64 "\n", event_names[e],
                      counter_get(&c->events[e]));
}
