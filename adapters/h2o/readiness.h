/*
 * readiness.h: whether the counter takes visits now, and why not: the last write failed,
 * a write cycle stalls past --stall-ms, another module holds readiness off (the count is
 * being restored from the peers), or the server is stopping. A counter at its maximum is
 * a lasting state of its own, not a readiness matter. Every function may be called from
 * any thread and never waits for the disk.
 */
#ifndef VISITS_READINESS_H
#define VISITS_READINESS_H

#include "text.h"

#include <stdint.h>
#include <visits.h>

struct readiness;

struct readiness_view {
    int ready;        /* 1 when GET /ready answers 200 */
    char reason[256]; /* why not */
};

/* For the counter at path, written through the library handle counter. NULL when out of
 * memory. */
struct readiness *readiness_create(const char *path, unsigned stall_ms, visits_counter *counter);

/* The outcome of a write (a visit's, a probe's, a raise's): 0, an error, or
 * VISITS_EOVERFLOW. Logs the transitions; how ("" or " (counter reopened)") goes into the
 * line that says writes succeed again. */
void readiness_note(struct readiness *r, int err, const char *how);
/* The library failed the handle (an fsync error: the outcome of that write is unknown);
 * told once per episode, which ends when a write succeeds again. */
void readiness_handle_failed(struct readiness *r, int interval);
/* A write failed again while already failing: only the reason changes (no log line). */
void readiness_still_failing(struct readiness *r, int err);
/* 1 while the last write succeeded. */
int readiness_write_ok(struct readiness *r);

void readiness_view(struct readiness *r, struct readiness_view *out);
void readiness_set_draining(struct readiness *r);
void readiness_hold(struct readiness *r, const char *reason);
void readiness_release(struct readiness *r);
/* 1 (and the reason) while held, without taking a lock when not. */
int readiness_held(struct readiness *r, char *reason, size_t size);

/* How long the write cycle now running has run in ms (0: none). A cycle past --stall-ms is
 * counted once, by whoever sees it first. */
uint64_t readiness_running_ms(struct readiness *r);
/* 1 once per stalled cycle, for the line that tells it (the keeper's). */
int readiness_stall_news(struct readiness *r);
unsigned readiness_stall_ms(const struct readiness *r);

/* visits_ready, visits_write_stall_seconds, visits_write_stalls_total. */
void readiness_metrics(struct readiness *r, struct strbuf *sb);

#endif /* VISITS_READINESS_H */
