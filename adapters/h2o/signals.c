/* signals.c: the signals the main thread waits for, and their names. */
#include "signals.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGPWR};
static const int ignored_signals[] = {SIGUSR1, SIGUSR2, SIGALRM,  SIGVTALRM,
                                      SIGPROF, SIGPOLL, SIGSTKFLT};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static sigset_t waited; /* written once, before any thread starts */

void signals_block(void)
{
    sigemptyset(&waited);
    for (size_t i = 0; i < COUNT(stop_signals); i++)
        sigaddset(&waited, stop_signals[i]);
    for (size_t i = 0; i < COUNT(ignored_signals); i++)
        sigaddset(&waited, ignored_signals[i]);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(&waited, s);
    pthread_sigmask(SIG_BLOCK, &waited, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}

int signals_wait(int *sig)
{
    while (sigwait(&waited, sig) != 0)
        ;
    for (size_t i = 0; i < COUNT(stop_signals); i++)
        if (*sig == stop_signals[i])
            return 1;
    return 0;
}

const char *signals_name(int sig, char *buf, size_t size)
{
    const char *abbrev = sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
    if (abbrev != NULL)
        snprintf(buf, size, "SIG%s", abbrev);
    else if (sig == SIGRTMIN)
        snprintf(buf, size, "SIGRTMIN");
    else if (sig > SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, size, "signal %d", sig);
    return buf;
}
