/*
 * keeper.h: the thread that looks after the counter: reopens it after failures, follows
 * its path, tells what changed behind the server and a write that stalls.
 */
#ifndef VISITS_KEEPER_H
#define VISITS_KEEPER_H

#include "committer.h"
#include "text.h"

#include <stdint.h>

struct keeper;

/* For the counter of c (its handle, path and readiness). 0 or -ENOMEM. */
int keeper_create(struct keeper **out, struct committer *c);
/* Starts the thread (call with the signals of the process blocked). 0 or -errno. */
int keeper_start(struct keeper *k);
/* Stops the thread, waiting until deadline_ms (CLOCK_MONOTONIC) at most: a probe in flight
 * on a disk that hangs is left behind (-ETIMEDOUT). */
int keeper_stop(struct keeper *k, uint64_t deadline_ms);
/* visits_commit_failures_total, visits_reopens_total, visits_file_events_total{event}. */
void keeper_metrics(struct keeper *k, struct strbuf *sb);

#endif /* VISITS_KEEPER_H */
