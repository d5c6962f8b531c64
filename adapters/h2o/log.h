/*
 * log.h: the server's lines on stdout and stderr.
 *
 * While the server runs, one thread writes stdout: the event loops hand it the access
 * log, and log_info's lines join the same queue, in order, so that no event loop ever
 * waits for stdout. Before log_start and after log_stop, log_info writes stdout itself.
 */
#ifndef VISITS_LOG_H
#define VISITS_LOG_H

#include <stddef.h>
#include <stdint.h>

#define SERVER_NAME "visits-server" /* the first word of every line the server writes */

/* Bytes of log lines queued for stdout at most: about 40,000 access-log lines, a few
 * seconds of a busy server, before lines are dropped rather than an event loop blocked. */
#define LOG_QUEUE_MAX (4u << 20)

/* One line, "visits-server: " and the message, on stdout (log_info) or stderr
 * (log_error), each written whole. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void log_info(const char *fmt, ...);
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void log_error(const char *fmt, ...);

/* Starts the writer thread (call with the signals of the process blocked). 0 or -errno. */
int log_start(void);
/* Any thread: queues a copy of len bytes holding `lines` whole lines. Never blocks and
 * never writes to stdout: when the queue would exceed LOG_QUEUE_MAX, the lines are dropped
 * and counted (the writer says so on stderr, once per episode). */
void log_submit(const char *data, size_t len, size_t lines);
/* Lines dropped so far (queue full, write error, out of memory). */
uint64_t log_dropped_lines(void);
/* Main thread, after the event loops stopped: writes what is queued until deadline_ms
 * (CLOCK_MONOTONIC), then stops the writer and frees the queue; lines still queued then
 * are reported on stderr as lost. Returns by deadline_ms plus 100 ms even when stdout
 * blocks inside write(2) (the thread is then left to end with the process). */
void log_stop(uint64_t deadline_ms);

#endif /* VISITS_LOG_H */
