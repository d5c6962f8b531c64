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

/* How every line is written: text (the default), or one JSON object per line. */
enum log_format { LOG_TEXT, LOG_JSON };
/* The format of every line from now on, and the pod name that every JSON line carries.
 * Called while no other thread logs (config_parse calls it). */
void log_configure(enum log_format format, const char *pod);
enum log_format log_format(void);
/* The pod name as the inside of a JSON string (format_json_utf8), NUL-terminated; its length
 * in *len. */
const char *log_pod_json(size_t *len);
/* Writes the CLOCK_REALTIME time ns at p as the "time" of a JSON line, RFC 3339 in UTC
 * with milliseconds ("2025-11-23T04:30:00.123Z", LOG_TIME_LEN bytes); returns the end. Any
 * thread; the part up to the seconds is kept per thread, so it costs one gmtime_r a second. */
#define LOG_TIME_LEN 24
char *log_time(char *p, uint64_t ns);

/* One line on stdout (log_info) or stderr (log_error), each written whole. Text:
 * "visits-server: " and the message. JSON: {"time":...,"level":"info" or "error",
 * "msg":the message,"pod":...}. */
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
