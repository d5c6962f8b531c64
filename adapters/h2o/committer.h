/*
 * committer.h: the counter, and the one thread that writes it.
 *
 * Event loops hand it visits and get each visit's own value back on the loop that
 * submitted it; the value, the readiness and the metrics can be read from any thread
 * without waiting for the disk. How visits are queued, batched and written is the
 * committer's own business: nothing outside committer.c depends on it.
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
    int err;        /* in the reply: 0, or why it was not counted (-errno or VISITS_E*) */
    /* the committer's own */
    h2o_multithread_message_t super;
    struct committer_visit *next;  /* queue */
    struct committer_visit *chain; /* more replies for the same loop, in one message */
    struct committer_loop *loop;
};

/* Runs on the event loop that submitted v, once per visit, in the order of the values;
 * it may free v. */
typedef void (*committer_reply_cb)(struct committer_visit *v, void *data);

/* Opens the counter and reads its value. 0, or the error (-errno or VISITS_E*). */
int committer_open(struct committer **out, const char *path, const visits_options *opts);
/* Starts the thread (call with the signals of the process blocked). 0 or -errno. */
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
/* Appends the committer's metrics (Prometheus text): cycles, batches, failures, reopens,
 * readiness. */
void committer_metrics(struct committer *c, struct strbuf *sb);

/* Hold readiness off with a reason ("recovering the count from peers") until released. */
void committer_hold_ready(struct committer *c, const char *reason);
void committer_release_ready(struct committer *c);
/* Blocking (not on an event loop): durably raise the counter to at least floor. 0 or error. */
int committer_raise(struct committer *c, uint64_t floor, uint64_t *value_out);

/* After the event loops stopped: stops the thread once the queue is drained and closes
 * the counter (flushing interval mode). Gives up waiting at deadline_ms (CLOCK_MONOTONIC)
 * and returns -ETIMEDOUT; otherwise 0 or the error of the final write, and the final
 * value in *final_value. */
int committer_stop(struct committer *c, uint64_t deadline_ms, uint64_t *final_value);

#endif /* VISITS_COMMITTER_H */
