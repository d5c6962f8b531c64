/*
 * committer.c: the bridge between the event loops and libvisits.
 *
 * A visit goes to the library with visits_add_async(); the library's committer thread
 * groups the visits of all loops into write cycles and calls back once each is durable
 * (always) or accepted (interval), in order; the callback hands the visit back to the
 * loop that submitted it through h2o's multithread queue. No thread of the server waits
 * for the disk on a visit's way, and the server has no committer thread of its own.
 *
 * The outcome of every visit feeds the readiness (readiness.c); the keeper (keeper.c)
 * reopens the counter after failures and follows its path.
 */
#include "committer.h"

#include "clock.h"
#include "histogram.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    visits_counter *counter;
    struct readiness *readiness;
    atomic_uint_fast64_t value; /* the highest value handed out or read */
    /* written by the library's committer thread (the cycle hook) */
    struct histogram commit_ns;
    struct histogram batch;
    atomic_uint_fast64_t cycle_failures;
};

struct committer_loop {
    struct committer *c;
    h2o_multithread_receiver_t replies;
    committer_reply_cb cb;
    void *data;
    size_t pending;
};

/* The library's committer thread, after every write cycle. */
static void on_cycle(void *arg, const visits_cycle_info *info)
{
    struct committer *c = arg;
    histogram_observe(&c->commit_ns, &commit_bounds, info->ns);
    histogram_observe(&c->batch, &batch_bounds, info->ops);
    if (info->err != 0 && info->err != VISITS_EOVERFLOW)
        counter_add(&c->cycle_failures, 1);
}

int committer_open(struct committer **out, const char *path, const visits_options *opts,
                   unsigned stall_ms)
{
    *out = NULL;
    struct committer *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->opts = *opts;
    c->opts.on_cycle = on_cycle;
    c->opts.cycle_arg = c;
    uint64_t v = 0;
    int err = visits_open(path, &c->opts, &c->counter);
    if (err == 0)
        err = visits_read(c->counter, &v);
    if (err == 0 && (c->readiness = readiness_create(c->path, stall_ms, c->counter)) == NULL)
        err = -ENOMEM;
    if (err != 0) {
        visits_close(c->counter);
        free(c->path);
        free(c);
        return err;
    }
    atomic_init(&c->value, v);
    *out = c;
    return 0;
}

uint64_t committer_value(struct committer *c)
{
    return atomic_load_explicit(&c->value, memory_order_acquire);
}

void committer_saw_value(struct committer *c, uint64_t v, int may_lower)
{
    if (may_lower) {
        atomic_store_explicit(&c->value, v, memory_order_release);
        return;
    }
    uint64_t cur = atomic_load_explicit(&c->value, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(
                          &c->value, &cur, v, memory_order_release, memory_order_relaxed))
        ;
}

visits_counter *committer_counter(struct committer *c)
{
    return c->counter;
}

const char *committer_path(const struct committer *c)
{
    return c->path;
}

visits_sync_mode committer_sync(const struct committer *c)
{
    return c->opts.sync;
}

struct readiness *committer_readiness(struct committer *c)
{
    return c->readiness;
}

/* ---- readiness, for the modules above ------------------------------------------------- */

void committer_view(struct committer *c, struct readiness_view *out)
{
    readiness_view(c->readiness, out);
}

void committer_set_draining(struct committer *c)
{
    readiness_set_draining(c->readiness);
}

void committer_hold_ready(struct committer *c, const char *reason)
{
    readiness_hold(c->readiness, reason);
}

void committer_release_ready(struct committer *c)
{
    readiness_release(c->readiness);
}

int committer_held(struct committer *c, char *reason, size_t size)
{
    return readiness_held(c->readiness, reason, size);
}

/* ---- the bridge ------------------------------------------------------------------------ */

/* The library's committer thread, once per visit, in order: back to the visit's loop. */
static void on_done(void *arg, int err, uint64_t value)
{
    struct committer_visit *v = arg;
    struct committer *c = v->loop->c;
    v->err = err;
    v->value = value;
    if (err == 0)
        committer_saw_value(c, value, 0);
    readiness_note(c->readiness, err, "");
    visits_stats st;
    if (err != 0 && err != VISITS_EOVERFLOW && visits_get_stats(c->counter, &st) == 0 && st.failed)
        readiness_handle_failed(c->readiness, c->opts.sync == VISITS_SYNC_INTERVAL);
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

size_t committer_pending(const struct committer_loop *l)
{
    return l->pending;
}

int committer_raise(struct committer *c, uint64_t floor, uint64_t *value_out)
{
    uint64_t v = 0;
    int err = visits_raise(c->counter, floor, &v);
    if (err == 0) {
        committer_saw_value(c, v, 0);
        if (value_out != NULL)
            *value_out = v;
    }
    readiness_note(c->readiness, err, "");
    return err;
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
    /* visits_close writes what is queued (interval mode: acknowledged visits) and runs the
     * last callbacks; a disk that hangs must not hold the exit past the deadline. */
    static struct closer cl; /* outlives a thread left behind at the deadline */
    cl.counter = c->counter;
    pthread_t tid;
    if (pthread_create(&tid, NULL, closer_main, &cl) != 0) {
        closer_main(&cl);
    } else {
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
    strbuf_printf(sb,
                  "# HELP visits_write_cycles_total Durable write cycles completed by "
                  "libvisits.\n"
                  "# TYPE visits_write_cycles_total counter\n"
                  "visits_write_cycles_total %" PRIu64 "\n"
                  "# HELP visits_write_cycles_failed_total Write cycles of libvisits that "
                  "failed.\n"
                  "# TYPE visits_write_cycles_failed_total counter\n"
                  "visits_write_cycles_failed_total %" PRIu64 "\n"
                  "# HELP visits_write_cycle_seconds_total Time spent in successful write "
                  "cycles.\n"
                  "# TYPE visits_write_cycle_seconds_total counter\n"
                  "visits_write_cycle_seconds_total %.9f\n",
                  st.cycles, st.cycles_failed, (double)st.cycle_ns_total / 1e9);
    readiness_metrics(c->readiness, sb);
}

uint64_t committer_cycle_failures(struct committer *c)
{
    return counter_get(&c->cycle_failures);
}
