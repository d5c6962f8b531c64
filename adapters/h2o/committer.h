/*
 * committer.h: the counter, between the event loops and libvisits.
 *
 * Event loops hand it visits and get each visit's own value back on the loop that
 * submitted it, once durable (always) or accepted (interval); the library groups the
 * visits of all loops into write cycles. The value, the readiness and the metrics can be
 * read from any thread without waiting for the disk (readiness.h); the keeper (keeper.h)
 * reopens the counter after failures and follows its path.
 */
#ifndef VISITS_COMMITTER_H
#define VISITS_COMMITTER_H

#include "readiness.h"
#include "text.h"

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>
#include <visits.h>

struct committer;
struct committer_loop; /* one event loop's end of the committer */

/* A visit on its way to the counter and back. The caller's memory (embed it): the
 * caller leaves it alone from committer_submit until its reply callback. */
struct committer_visit {
    uint64_t value; /* in the reply: this visit's own count */
    int err;        /* in the reply: 0, or why it was not counted (-errno or VISITS_E*;
                       VISITS_EOVERFLOW: the counter is at its maximum, a lasting state) */
    /* the committer's own */
    h2o_multithread_message_t super;
    struct committer_loop *loop;
};

/* Runs on the event loop that submitted v, once per visit, in the order of the values;
 * it may free v. */
typedef void (*committer_reply_cb)(struct committer_visit *v, void *data);

/* Opens the counter and reads its value. A write cycle that runs longer than stall_ms
 * makes the counter not ready while it lasts. 0, or the error (-errno or VISITS_E*). */
int committer_open(struct committer **out, const char *path, const visits_options *opts,
                   unsigned stall_ms);

/* An event loop's thread, once, before its first visit: replies come back through ctx's
 * multithread queue to cb(visit, data). Aborts when out of memory, as libh2o does. */
struct committer_loop *committer_attach(struct committer *c, h2o_context_t *ctx,
                                        committer_reply_cb cb, void *data);
/* The loop's thread: queues one visit. Never blocks on the disk. */
void committer_submit(struct committer_loop *l, struct committer_visit *v);
/* The loop's thread: visits submitted whose reply has not run yet. */
size_t committer_pending(const struct committer_loop *l);

/* Any thread, never blocking: the last value known, committed (always) or acknowledged
 * (interval). */
uint64_t committer_value(struct committer *c);
/* Any thread, never blocking: ready or why not (readiness.h). */
void committer_view(struct committer *c, struct readiness_view *out);
/* Marks the counter not ready ("shutting down"). */
void committer_set_draining(struct committer *c);
/* Holds readiness off with a reason (e.g. "recovering the count from peers") until
 * released. Any thread. */
void committer_hold_ready(struct committer *c, const char *reason);
void committer_release_ready(struct committer *c);
/* Any thread, without waiting: 1 (and the reason) while readiness is held, else 0. Visits
 * are refused meanwhile: a count being restored must not take visits that the restore
 * could then absorb. */
int committer_held(struct committer *c, char *reason, size_t size);
/* Blocking, never on an event loop: durably raises the counter to at least floor; the
 * value after it in *value_out (nullable). 0 or the error. */
int committer_raise(struct committer *c, uint64_t floor, uint64_t *value_out);
/* Appends the committer's metrics (Prometheus text): write cycles, batches, readiness. */
void committer_metrics(struct committer *c, struct strbuf *sb);
/* Write cycles that failed (the keeper adds its failed probes). */
uint64_t committer_cycle_failures(struct committer *c);

/* For the keeper: the library handle, the path, the sync mode and the readiness; and a
 * value it read (raised into committer_value, or set lower after an operator's set). */
visits_counter *committer_counter(struct committer *c);
const char *committer_path(const struct committer *c);
visits_sync_mode committer_sync(const struct committer *c);
struct readiness *committer_readiness(struct committer *c);
void committer_saw_value(struct committer *c, uint64_t v, int may_lower);

/* After the event loops and the keeper stopped: closes the counter, which writes what is
 * queued (interval mode: the acknowledged visits). Gives up waiting at
 * deadline_ms (CLOCK_MONOTONIC) and returns -ETIMEDOUT; otherwise 0 or the error of the
 * final write, and the final value in *final_value. */
int committer_stop(struct committer *c, uint64_t deadline_ms, uint64_t *final_value);

#endif /* VISITS_COMMITTER_H */
