/*
 * committer.h: the counter, between the event loops and libvisits.
 *
 * Event loops hand it visits and get each visit's own value back on the loop that
 * submitted it, once durable (always) or accepted (interval); the library groups the
 * visits of all loops into write cycles. The value, the readiness and the metrics can be
 * read from any thread without waiting for the disk. A keeper thread reopens the counter
 * after failures, follows its path and watches for stalled writes.
 */
#ifndef VISITS_COMMITTER_H
#define VISITS_COMMITTER_H

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
/* Starts the keeper thread (call with the signals of the process blocked). 0 or -errno. */
int committer_start(struct committer *c);

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
struct committer_view {
    int ready;        /* 1 when the last write succeeded and no shutdown is under way */
    char reason[256]; /* why not ready */
};
void committer_view(struct committer *c, struct committer_view *out);
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
/* Appends the committer's metrics (Prometheus text): cycles, batches, failures, reopens,
 * stalls, changes found behind the server, readiness. */
void committer_metrics(struct committer *c, struct strbuf *sb);

/* After the event loops stopped: stops the keeper, then closes the counter, which writes
 * what is queued (interval mode: the acknowledged visits). Gives up waiting at
 * deadline_ms (CLOCK_MONOTONIC) and returns -ETIMEDOUT; otherwise 0 or the error of the
 * final write, and the final value in *final_value. */
int committer_stop(struct committer *c, uint64_t deadline_ms, uint64_t *final_value);

#endif /* VISITS_COMMITTER_H */
