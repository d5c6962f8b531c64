/*
 * signals.h: what visits-server does with each signal.
 *
 * No signal that can be caught ends the process at once: those whose default would end it
 * either stop the server gracefully (finish in-flight requests, flush the counter, exit 0)
 * or are ignored, so that no acknowledged visit is ever lost to a signal:
 *   - stop: SIGTERM, SIGINT, SIGHUP (the terminal went away; there is no configuration
 *     to reload), SIGQUIT, SIGXCPU (the CPU-time limit: SIGKILL follows at the hard
 *     limit), SIGPWR (power failing);
 *   - ignored, with a log line: SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPOLL,
 *     SIGSTKFLT and the real-time signals SIGRTMIN..SIGRTMAX;
 *   - ignored silently: SIGPIPE (a client gone while we write; the write fails with
 *     EPIPE), SIGXFSZ (a write past the file-size limit fails with EFBIG instead).
 * Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP) keep their default:
 * the process cannot go on safely and dumps core; SIGKILL and SIGSTOP cannot be caught.
 */
#ifndef VISITS_SIGNALS_H
#define VISITS_SIGNALS_H

#include <signal.h>
#include <stddef.h>

/* Call before any thread starts: blocks every signal that signals_wait takes (the threads
 * inherit the mask) and ignores SIGPIPE and SIGXFSZ. */
void signals_block(void);
/* Waits for the next signal that signals_block blocked; 1 if it stops the server, 0 if
 * it is to be ignored (logged by the caller). */
int signals_wait(int *sig);
/* "SIGTERM", "SIGRTMIN+3" ... into buf. */
const char *signals_name(int sig, char *buf, size_t size);

#endif /* VISITS_SIGNALS_H */
