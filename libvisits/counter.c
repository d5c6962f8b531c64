/* counter.c: the handle, its committer thread and group commit. */
#include "visits_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A caller of visits_add() waiting for the cycle that carries its increment. */
struct visits__waiter {
    struct visits__waiter *next;
    uint64_t n;
    uint64_t value; /* result: the value just after this caller's increment */
    int err;
    int done;
};

#define INTERVAL_MAX_MS 3600000u

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void visits_options_init(visits_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->sync = VISITS_SYNC_ALWAYS;
    opts->interval_ms = 1000;
    opts->mode = 0644;
}

/* value + pending + inflight, or 0 with *overflow set if that exceeds UINT64_MAX. */
static uint64_t total_queued(const visits_counter *c, int *overflow)
{
    uint64_t q = c->pending + c->inflight; /* each add was checked: no wrap here */

    *overflow = q > UINT64_MAX - c->value;
    return *overflow ? 0 : c->value + q;
}

/* Near UINT64_MAX not every caller of a batch may fit: admit them in turn while they do
 * and refuse the others with VISITS_EOVERFLOW (nothing added for them). Returns the sum
 * admitted. */
static uint64_t admit(struct visits__waiter *batch, uint64_t room)
{
    struct visits__waiter *w;
    uint64_t sum = 0;

    for (w = batch; w != NULL; w = w->next) {
        if (w->n > room - sum)
            w->err = VISITS_EOVERFLOW;
        else
            sum += w->n;
    }
    return sum;
}

/* One write cycle, the lock held across processes: re-read the file (another process
 * may have written it), add *n, replace. *n may shrink when some callers do not fit. */
static int write_cycle(visits_counter *c, struct visits__waiter *batch, uint64_t *n,
                       uint64_t *base_out, int *fatal)
{
    struct stat st;
    uint64_t base = 0;
    int exists, err, unlock_err, skip = 0;

    *fatal = 0;
    if ((err = visits__lock(c->lockfd)) != 0)
        return err;
    err = visits__read_at(c->dirfd, c->loc.name, &base, &exists, &st, NULL);
    if (err == 0 && *n > UINT64_MAX - base) {
        if (batch == NULL)
            err = VISITS_EOVERFLOW; /* interval mode: the sum is all or nothing */
        else if ((*n = admit(batch, UINT64_MAX - base)) == 0)
            skip = 1; /* nobody fits: leave the file as it is */
    }
    if (err == 0 && !skip)
        err = visits__replace(c->dirfd, c->loc.name, base + *n, c->create_mode,
                              exists ? (int)(st.st_mode & 07777) : -1, fatal);
    unlock_err = visits__unlock(c->lockfd);
    if (err == 0)
        err = unlock_err;
    *base_out = base;
    return err;
}

/* Runs the next cycle for everything queued. Called with c->mu held and no cycle
 * running; releases c->mu during the I/O so further callers can queue meanwhile. */
static void run_cycle(visits_counter *c)
{
    struct visits__waiter *batch = c->queue, *w;
    uint64_t gen = c->gen++, n = c->pending, queued = n, calls = c->queue_calls, base = 0;
    uint64_t t0, elapsed;
    int err, fatal = 0;

    c->queue = NULL;
    c->queue_calls = 0;
    c->pending = 0;
    c->inflight = n;
    c->cycle_running = 1;
    pthread_mutex_unlock(&c->mu);

    t0 = now_ns();
    /* A handle failed by an earlier cycle writes nothing more; its waiters learn why. */
    err = c->failed ? VISITS_EFAILED : write_cycle(c, batch, &n, &base, &fatal);
    elapsed = now_ns() - t0;

    pthread_mutex_lock(&c->mu);
    c->cycle_running = 0;
    c->inflight = 0;
    c->last_error = err;
    if (err == 0) {
        c->value = base + n;
        c->stats.cycles++;
        c->stats.cycle_ns_total += elapsed;
        c->stats.cycle_ns_last = elapsed;
        if (calls > c->stats.batch_max)
            c->stats.batch_max = calls;
    } else if (err != VISITS_EFAILED) {
        c->stats.cycles_failed++;
        if (fatal)
            c->failed = 1;
        else if (c->opts.sync == VISITS_SYNC_INTERVAL) {
            /* Acknowledged already: keep them for the next attempt. */
            c->pending += queued;
            c->queue_calls += calls;
        }
    }
    if (err == 0 && batch == NULL)
        c->stats.increments += calls; /* interval mode */
    for (w = batch; w != NULL; w = w->next) {
        w->done = 1;
        if (err == 0 && w->err != 0)
            continue; /* refused by admit() */
        base += w->n;
        w->value = base;
        w->err = err;
        if (err == 0)
            c->stats.increments++;
    }
    /* Only this batch's waiters wake; the next batch's keep sleeping. */
    pthread_cond_broadcast(&c->done_cv[gen & 1]);
    if (c->queue != NULL && c->committer_idle)
        pthread_cond_signal(&c->commit_cv); /* callers queued behind a caller-run cycle */
}

/* Work for the committer: always mode, anyone queued; interval mode, the period passed
 * with something pending. */
static int has_work(const visits_counter *c, uint64_t now, uint64_t deadline)
{
    if (c->cycle_running || (c->failed && c->queue == NULL))
        return 0;
    if (c->opts.sync == VISITS_SYNC_ALWAYS)
        return c->queue != NULL;
    return c->pending > 0 && now >= deadline;
}

/* The committer thread: while a cycle runs, callers queue and wait, and the committer
 * starts the next cycle for all of them the moment the previous one ends (group commit).
 * A caller that finds nothing running writes its cycle itself. */
static void *committer_main(void *arg)
{
    visits_counter *c = arg;
    uint64_t period = (uint64_t)c->opts.interval_ms * 1000000u;
    uint64_t deadline = now_ns() + period;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        uint64_t now = now_ns();
        if (has_work(c, now, deadline)) {
            run_cycle(c);
            if (c->opts.sync == VISITS_SYNC_INTERVAL)
                deadline = now_ns() + period;
            continue;
        }
        if (c->stopping)
            break;
        c->committer_idle = 1;
        if (c->opts.sync == VISITS_SYNC_INTERVAL) {
            struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
            if (now >= deadline)
                deadline = now + period;
            pthread_cond_timedwait(&c->commit_cv, &c->mu, &ts);
        } else
            pthread_cond_wait(&c->commit_cv, &c->mu);
        c->committer_idle = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int check_options(const visits_options *o)
{
    if (o->sync != VISITS_SYNC_ALWAYS && o->sync != VISITS_SYNC_INTERVAL)
        return VISITS_EINVAL;
    if (o->sync == VISITS_SYNC_INTERVAL &&
        (o->interval_ms == 0 || o->interval_ms > INTERVAL_MAX_MS))
        return VISITS_EINVAL;
    return o->mode > 07777 ? VISITS_EINVAL : 0;
}

static int init_sync(visits_counter *c)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_mutex_init(&c->mu, NULL)) != 0)
        return -rc;
    if ((rc = pthread_cond_init(&c->done_cv[0], NULL)) != 0)
        goto Mutex;
    if ((rc = pthread_cond_init(&c->done_cv[1], NULL)) != 0)
        goto Cond0;
    if ((rc = pthread_condattr_init(&attr)) != 0)
        goto Cond;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&c->commit_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc == 0)
        return 0;
Cond:
    pthread_cond_destroy(&c->done_cv[1]);
Cond0:
    pthread_cond_destroy(&c->done_cv[0]);
Mutex:
    pthread_mutex_destroy(&c->mu);
    return -rc;
}

static void destroy_sync(visits_counter *c)
{
    pthread_cond_destroy(&c->commit_cv);
    pthread_cond_destroy(&c->done_cv[1]);
    pthread_cond_destroy(&c->done_cv[0]);
    pthread_mutex_destroy(&c->mu);
}

static void free_counter(visits_counter *c)
{
    if (c->lockfd >= 0)
        visits__sys.close(c->lockfd);
    if (c->dirfd >= 0)
        visits__sys.close(c->dirfd);
    visits__loc_free(&c->loc);
    free(c->path);
    free(c);
}

/* Under the lock: clear a crash's temps, then read and validate the current value. */
static int load(visits_counter *c)
{
    int exists, err;

    if ((err = visits__lock(c->lockfd)) != 0)
        return err;
    visits__remove_stale_temps(c->dirfd, c->loc.name);
    err = visits__read_at(c->dirfd, c->loc.name, &c->value, &exists, NULL, NULL);
    visits__unlock(c->lockfd);
    return err;
}

int visits_open(const char *path, const visits_options *opts, visits_counter **out)
{
    visits_counter *c;
    int err;

    if (out == NULL)
        return VISITS_EINVAL;
    *out = NULL;
    if (path == NULL)
        return VISITS_EINVAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    c->dirfd = c->lockfd = -1;
    if (opts != NULL)
        c->opts = *opts;
    else
        visits_options_init(&c->opts);
    c->create_mode = (mode_t)c->opts.mode;
    if ((err = check_options(&c->opts)) != 0)
        goto Error;
    if ((c->path = strdup(path)) == NULL) {
        err = -ENOMEM;
        goto Error;
    }
    if ((err = visits__resolve(path, &c->loc)) != 0 ||
        (err = visits__open_dir(&c->loc, &c->dirfd)) != 0 ||
        (err = visits__lock_open(c->dirfd, c->loc.name, c->create_mode, &c->lockfd)) != 0 ||
        (err = load(c)) != 0 || (err = init_sync(c)) != 0)
        goto Error;
    {
        int rc = pthread_create(&c->committer, NULL, committer_main, c);
        if (rc != 0) {
            destroy_sync(c);
            err = -rc;
            goto Error;
        }
        c->committer_started = 1;
    }
    *out = c;
    return 0;

Error:
    free_counter(c);
    return err;
}

int visits_incr(visits_counter *c, uint64_t *value_out)
{
    return visits_add(c, 1, value_out);
}

int visits_add(visits_counter *c, uint64_t n, uint64_t *value_out)
{
    struct visits__waiter w = {NULL, n, 0, 0, 0};
    uint64_t total;
    int overflow, err;

    if (c == NULL)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    total = total_queued(c, &overflow);
    if (c->failed)
        err = VISITS_EFAILED;
    else if (c->opts.sync == VISITS_SYNC_ALWAYS && n > UINT64_MAX - (c->pending + c->inflight))
        err = VISITS_EOVERFLOW; /* the cycle checks against the file's current value */
    else if (c->opts.sync == VISITS_SYNC_INTERVAL && (overflow || n > UINT64_MAX - total))
        err = VISITS_EOVERFLOW;
    else if (c->opts.sync == VISITS_SYNC_INTERVAL) {
        /* Acknowledge at once; the committer writes it. A background error is reported
         * (and this increment refused) until a write succeeds again. */
        if ((err = c->last_error) == 0) {
            c->pending += n;
            c->queue_calls++;
            w.value = total + n;
        }
    } else {
        uint64_t gen = c->gen;
        w.next = c->queue;
        c->queue = &w;
        c->pending += n;
        c->queue_calls++;
        if (!c->cycle_running && c->committer_idle)
            run_cycle(c); /* nobody is writing: run it here, sparing two thread switches */
        else if (c->committer_idle)
            pthread_cond_signal(&c->commit_cv);
        while (!w.done)
            pthread_cond_wait(&c->done_cv[gen & 1], &c->mu);
        err = w.err;
    }
    pthread_mutex_unlock(&c->mu);
    if (err == 0 && value_out != NULL)
        *value_out = w.value;
    return err;
}

int visits_read(visits_counter *c, uint64_t *value_out)
{
    uint64_t value;
    int exists, overflow, err = 0;

    if (c == NULL || value_out == NULL)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    if (!c->cycle_running) {
        /* No cycle of ours can start while we hold mu, and other processes replace the
         * file atomically: the read sees a whole value. */
        err = visits__read_at(c->dirfd, c->loc.name, &value, &exists, NULL, NULL);
        if (err == 0)
            c->value = value;
    }
    if (c->opts.sync == VISITS_SYNC_INTERVAL) {
        /* acknowledged increments count even before the committer writes them */
        value = total_queued(c, &overflow);
        if (overflow)
            value = UINT64_MAX;
    } else
        value = c->value;
    pthread_mutex_unlock(&c->mu);
    if (err == 0)
        *value_out = value;
    return err;
}

const char *visits_path(const visits_counter *c)
{
    return c != NULL ? c->path : NULL;
}

int visits_get_stats(visits_counter *c, visits_stats *out)
{
    if (c == NULL || out == NULL)
        return VISITS_EINVAL;
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->failed = c->failed;
    out->last_error = c->last_error;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int visits_close(visits_counter *c)
{
    int err = 0;

    if (c == NULL)
        return 0;
    if (c->committer_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = 1;
        pthread_cond_signal(&c->commit_cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->committer, NULL);
    }
    pthread_mutex_lock(&c->mu);
    while (c->cycle_running) /* the running batch is generation gen - 1 */
        pthread_cond_wait(&c->done_cv[(c->gen - 1) & 1], &c->mu);
    if (!c->failed && c->pending > 0) {
        run_cycle(c); /* interval mode: what was acknowledged but not yet written */
        err = c->last_error;
    }
    if (c->failed)
        err = VISITS_EFAILED;
    pthread_mutex_unlock(&c->mu);

    destroy_sync(c);
    free_counter(c);
    return err;
}
