/*
 * commit.c: operations, group commit and the committer thread.
 *
 * Every operation (visits_add/visits_raise, blocking or asynchronous) is queued on the
 * handle. In always mode one write cycle carries everything queued when it starts
 * (group commit); while it runs, further operations queue for the next one. The
 * committer thread runs the cycles and every asynchronous callback; a blocking caller
 * that finds itself alone with nothing running writes its own cycle, sparing two thread
 * switches. A blocking caller sleeps on its own semaphore, which the committer posts
 * after it has released the handle's mutex: the callers a cycle answers wake one by one
 * without contending for the mutex first (a shared condition variable would wake them all
 * into the mutex, which costs each an extra sleep and wake-up under load).
 *
 * The file a cycle replaced is closed only after the cycle's callers are answered: the
 * last close frees its inode, which on some disks waits for a discard (about 0.14 ms per
 * cycle on the VM of docs/benchmarks.md, a sixth of the cycle). A lone caller that wrote
 * its own cycle leaves it to the idle committer.
 *
 * Gathering: the callers a cycle answers usually come back with their next operation
 * within a fraction of a cycle. Starting the next cycle at once with only those that
 * arrived meanwhile splits them into two groups that alternate, each waiting two
 * cycles. So the committer waits until as many operations are queued as the last cycle
 * carried plus those queued during it, but no longer than the last cycle took (and at
 * most opts.gather_us). Under light load the first arrival meets that and nothing waits.
 * Gathering pays only while callers come back faster than a cycle takes; a wait that
 * ends by its deadline turns it off for GATHER_SKIP cycles, after which it is tried again.
 *
 * In interval mode operations are acknowledged at once against the value acknowledged so
 * far; the committer writes the accumulated transform every interval_ms and at close.
 */
#include "cycle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GATHER_SKIP 8

uint64_t visits__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec to_timespec(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

static int on_committer(const visits_counter *c)
{
    return c->committer_started && pthread_equal(pthread_self(), c->committer);
}

static void append(struct visits__op **head, struct visits__op **tail, struct visits__op *op)
{
    op->next = NULL;
    if (*tail != NULL)
        (*tail)->next = op;
    else
        *head = op;
    *tail = op;
}

/* Operations a cycle has finished, completed once mu is released: blocking callers to
 * wake and asynchronous callbacks to run, each list in queue order. */
struct finished {
    struct visits__op *wake, *wake_tail;
    struct visits__op *async, *async_tail;
    int stale_fd; /* -1, or the replaced file, to close last */
};

/* Wakes the blocking callers, runs the callbacks, then closes the replaced file (mu not
 * held). A woken caller may return and free its operation at once: read next before
 * posting. */
static void complete(struct finished *f)
{
    while (f->wake != NULL) {
        struct visits__op *op = f->wake;
        f->wake = op->next;
        sem_post(&op->done);
    }
    while (f->async != NULL) {
        struct visits__op *op = f->async;
        f->async = op->next;
        op->cb(op->arg, op->err, op->err == 0 ? op->value : 0);
        free(op);
    }
    /* Plain close(), not the seam: this runs after the callers have returned, when a test
     * may be swapping the seam's entries, and its result does not matter. */
    if (f->stale_fd >= 0)
        close(f->stale_fd);
    f->stale_fd = -1;
}

void visits__io_claim(visits_counter *c)
{
    while (c->io_busy)
        pthread_cond_wait(&c->io_cv, &c->mu);
    c->io_busy = 1;
    c->io_started = visits__now_ns();
}

void visits__io_release(visits_counter *c)
{
    c->io_busy = 0;
    c->io_started = 0;
    pthread_cond_broadcast(&c->io_cv);
    if ((c->queue != NULL || c->pending_calls > 0 || c->stopping) && c->committer_idle)
        pthread_cond_signal(&c->commit_cv);
}

/* Records a cycle's outcome in the handle (mu held). */
static void account(visits_counter *c, const struct visits__cycle *cy, int err, uint64_t calls,
                    uint64_t elapsed)
{
    c->stats.lock_retries += cy->lock_retries;
    if (cy->dir_changed) {
        int old = c->dirfd;
        c->dirfd = cy->new_dirfd;
        c->stats.dir_changed++;
        visits__close(old);
    }
    c->last_error = err;
    if (err == 0) {
        if (!cy->existed && c->had_file)
            c->stats.recreated++;
        else if (cy->set_followed)
            c->stats.sets_followed++;
        else if (cy->existed && cy->file_value < cy->known)
            c->stats.rolled_back++;
        if (cy->value > c->known || cy->set_followed)
            c->known = cy->value;
        c->set_token = cy->set_token;
        c->had_file = cy->existed || cy->wrote;
        c->stats.cycles++;
        c->stats.cycle_ns_total += elapsed;
        c->stats.cycle_ns_last = elapsed;
        if (calls > c->stats.batch_max)
            c->stats.batch_max = calls;
    } else if (err != VISITS_EFAILED) {
        c->stats.cycles_failed++;
        if (cy->fatal) {
            c->failed = 1;
            c->failed_error = err;
        }
    }
}

/* Runs the next cycle for everything queued (always mode) or pending (interval mode).
 * Called with mu held and the files free; releases mu during the I/O so that further
 * operations can queue meanwhile. The batch's operations are appended to *f (the caller
 * completes them without mu). */
static void run_cycle(visits_counter *c, struct finished *f)
{
    struct visits__cycle cy;
    struct visits__op *batch = c->queue;
    uint64_t calls, t0, elapsed;
    int err;

    memset(&cy, 0, sizeof(cy));
    cy.new_dirfd = -1;
    cy.stale_fd = -1;
    cy.known = c->known;
    cy.set_token = c->set_token;
    if (c->opts.sync == VISITS_SYNC_ALWAYS) {
        cy.batch = batch;
        calls = c->queue_len;
        c->queue = c->queue_tail = NULL;
        c->queue_len = 0;
    } else {
        cy.xform = c->inflight = c->pending;
        calls = c->pending_calls;
        c->pending = (struct visits__xform){0, 0};
        c->pending_calls = 0;
    }
    visits__io_claim(c);
    pthread_mutex_unlock(&c->mu);

    t0 = visits__now_ns();
    /* A handle failed by an earlier cycle writes nothing more; its callers learn why. */
    err = c->failed ? VISITS_EFAILED : visits__write_cycle(c, &cy);
    elapsed = visits__now_ns() - t0;

    if (c->opts.on_cycle != NULL && err != VISITS_EFAILED) {
        visits_cycle_info info = {calls, elapsed, err == 0 ? cy.value : 0, err};
        c->opts.on_cycle(c->opts.cycle_arg, &info);
    }
    pthread_mutex_lock(&c->mu);
    account(c, &cy, err, calls, elapsed);
    f->stale_fd = cy.stale_fd;
    if (c->opts.sync == VISITS_SYNC_INTERVAL) {
        if (err == 0)
            c->stats.increments += calls;
        else if (!c->failed) {
            /* Acknowledged already: keep them, before what queued meanwhile. */
            struct visits__xform later = c->pending;
            c->pending = c->inflight;
            visits__xform_then(&c->pending, &later);
            c->pending_calls += calls;
        }
        c->inflight = (struct visits__xform){0, 0};
    }
    for (struct visits__op *op = batch, *next; op != NULL; op = next) {
        next = op->next;
        if (err != 0)
            op->err = err;
        else if (op->err == 0)
            c->stats.increments++;
        if (op->cb != NULL)
            append(&f->async, &f->async_tail, op);
        else
            append(&f->wake, &f->wake_tail, op);
    }
    if (c->opts.sync == VISITS_SYNC_ALWAYS) {
        c->expect = calls + c->queue_len;
        c->gather_until = visits__now_ns() + (elapsed < (uint64_t)c->opts.gather_us * 1000u
                                                  ? elapsed
                                                  : (uint64_t)c->opts.gather_us * 1000u);
    }
    visits__io_release(c);
}

/* Always mode, before a cycle: wait briefly for the callers of the last one (see top). */
static void gather(visits_counter *c)
{
    if (c->opts.gather_us == 0 || c->stopping || c->queue_len >= c->expect)
        return;
    if (c->skip_gathers > 0) {
        c->skip_gathers--;
        return;
    }
    struct timespec ts = to_timespec(c->gather_until);
    c->want = c->expect;
    c->stats.gathers++;
    while (c->queue_len < c->want && !c->stopping && visits__now_ns() < c->gather_until &&
           pthread_cond_timedwait(&c->commit_cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    if (c->queue_len < c->want && !c->stopping) {
        c->stats.gathers_vain++;
        c->skip_gathers = GATHER_SKIP;
    }
    c->want = UINT64_MAX;
}

/* Work for the committer now: always mode, anything queued; interval mode, the period
 * passed (or close asked) with something pending. */
static int has_cycle(const visits_counter *c, uint64_t now, uint64_t deadline)
{
    if (c->io_busy)
        return 0;
    if (c->opts.sync == VISITS_SYNC_ALWAYS)
        return c->queue != NULL;
    if (c->pending_calls == 0 || c->failed)
        return 0;
    return c->stopping ? !c->final_tried : now >= deadline;
}

static void *committer_main(void *arg)
{
    visits_counter *c = arg;
    uint64_t period = (uint64_t)c->opts.interval_ms * 1000000u;
    uint64_t deadline = visits__now_ns() + period;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        struct finished f = {.stale_fd = -1};
        uint64_t now = visits__now_ns();

        if (c->stale_fd >= 0) { /* left by a lone caller (see visits__submit) */
            f.stale_fd = c->stale_fd;
            c->stale_fd = -1;
        } else if (c->ready != NULL) {
            f.async = c->ready;
            f.async_tail = c->ready_tail;
            c->ready = c->ready_tail = NULL;
        } else if (has_cycle(c, now, deadline)) {
            if (c->opts.sync == VISITS_SYNC_ALWAYS)
                gather(c);
            if (!c->io_busy) { /* a reopen may have claimed the files while we waited */
                c->final_tried = c->stopping;
                run_cycle(c, &f);
            }
            if (c->opts.sync == VISITS_SYNC_INTERVAL)
                deadline = visits__now_ns() + period;
        } else if (c->stopping && !c->io_busy && c->queue == NULL) {
            break; /* interval mode: the final write was tried (or there is none) */
        } else {
            if (c->pending_calls == 0 && now >= deadline)
                deadline = now + period; /* the next increment waits one period */
            c->committer_idle = 1;
            if (c->opts.sync == VISITS_SYNC_INTERVAL && c->pending_calls > 0) {
                struct timespec ts = to_timespec(deadline);
                pthread_cond_timedwait(&c->commit_cv, &c->mu, &ts);
            } else {
                pthread_cond_wait(&c->commit_cv, &c->mu);
            }
            c->committer_idle = 0;
        }
        if (f.wake != NULL || f.async != NULL || f.stale_fd >= 0) {
            pthread_mutex_unlock(&c->mu);
            complete(&f);
            pthread_mutex_lock(&c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int visits__committer_start(visits_counter *c)
{
    int rc;

    c->want = UINT64_MAX;
    c->committer_started = 1;
    if ((rc = pthread_create(&c->committer, NULL, committer_main, c)) != 0) {
        c->committer_started = 0;
        return -rc;
    }
    return 0;
}

int visits__committer_stop(visits_counter *c)
{
    int err;

    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->commit_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->committer_started)
        pthread_join(c->committer, NULL);
    c->committer_started = 0;
    pthread_mutex_lock(&c->mu);
    err = c->failed ? VISITS_EFAILED : c->pending_calls > 0 ? c->last_error : 0;
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* Interval mode: acknowledge op at once against what is acknowledged so far. */
static int accept_now(visits_counter *c, struct visits__op *op)
{
    struct visits__xform step = {0, 0};
    uint64_t acked, value;
    int err;

    if ((err = c->last_error) != 0)
        return err; /* a background write fails: refuse until one succeeds again */
    if (visits__xform_apply(&c->inflight, c->known, &acked) != 0 ||
        visits__xform_apply(&c->pending, acked, &acked) != 0)
        return VISITS_EOVERFLOW;
    if (op->kind == VISITS__OP_ADD)
        step.add = op->n;
    else
        step.floor = op->n;
    if ((err = visits__xform_apply(&step, acked, &value)) != 0)
        return err;
    visits__xform_then(&c->pending, &step);
    c->pending_calls++;
    op->value = value;
    return 0;
}

int visits__submit(visits_counter *c, struct visits__op *op)
{
    struct finished f = {.stale_fd = -1};
    int blocking = op->cb == NULL; /* once queued, an asynchronous op is the committer's */
    int err = 0;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        err = VISITS_ECLOSING;
        goto Refuse;
    }
    if (blocking && on_committer(c)) {
        err = VISITS_EDEADLK;
        goto Refuse;
    }
    if (c->failed || c->opts.sync == VISITS_SYNC_INTERVAL) {
        op->err = c->failed ? VISITS_EFAILED : accept_now(c, op);
        if (op->err == 0 && c->pending_calls == 1 && c->committer_idle)
            pthread_cond_signal(&c->commit_cv); /* the interval starts: arm the deadline */
        if (op->cb == NULL) {
            err = op->err;
            goto Refuse; /* answered at once */
        }
        append(&c->ready, &c->ready_tail, op); /* the committer calls back, never this thread */
        if (c->committer_idle)
            pthread_cond_signal(&c->commit_cv);
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    append(&c->queue, &c->queue_tail, op);
    c->queue_len++;
    if (blocking && c->queue == op && !c->io_busy && c->expect <= 1) {
        /* Alone, nothing running, and the last cycle carried one caller (or none): write
         * it here, sparing two thread switches. With more callers about, the committer
         * gathers them instead (a caller writing alone would split them in two groups).
         * The committer is idle, or completing the last cycle without the files (closing
         * the file it replaced, for one): it finds them busy and waits. */
        run_cycle(c, &f); /* the batch is op alone: f.wake = op */
        if (f.stale_fd >= 0 && c->stale_fd < 0) {
            c->stale_fd = f.stale_fd; /* the committer frees it while this caller goes on */
            f.stale_fd = -1;
            if (c->committer_idle)
                pthread_cond_signal(&c->commit_cv);
        }
    } else if (c->committer_idle || c->queue_len >= c->want) {
        pthread_cond_signal(&c->commit_cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (!blocking)
        return 0;
    complete(&f);
    while (sem_wait(&op->done) != 0) /* only EINTR */
        ;
    return op->err;

Refuse:
    pthread_mutex_unlock(&c->mu);
    return err;
}
