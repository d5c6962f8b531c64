/*
 * fault_fsync.c: a preloadable shim for the server's failure tests. When the environment
 * names a trigger file in VISITS_FAULT_FSYNC, every fsync libvisits makes fails with EIO
 * while that file exists (the library's fault-injection seam, visits_testing_syscall, is
 * used; nothing else in the process is touched). Deleting the file heals the "disk".
 * VISITS_FAULT_FSYNC_DELAY_MS=N makes every such fsync take N ms more (a slow disk).
 * VISITS_FAULT_FSYNC_STALL=FILE makes every fsync wait while FILE exists (a disk that
 * hangs, for 60 s at most), then go on normally.
 */
#include "visits_testing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *trigger;
static const char *stall;
static long delay_ms;
static int (*real_fsync)(int);

static int faulty_fsync(int fd)
{
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    for (int waited = 0; stall != NULL && waited < 6000 && access(stall, F_OK) == 0; waited++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (trigger != NULL && access(trigger, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    return real_fsync != NULL ? real_fsync(fd) : fsync(fd);
}

__attribute__((constructor)) static void install(void)
{
    const char *delay = getenv("VISITS_FAULT_FSYNC_DELAY_MS");
    trigger = getenv("VISITS_FAULT_FSYNC");
    stall = getenv("VISITS_FAULT_FSYNC_STALL");
    delay_ms = delay != NULL ? strtol(delay, NULL, 10) : 0;
    if ((trigger == NULL || trigger[0] == '\0') && (stall == NULL || stall[0] == '\0') &&
        delay_ms <= 0)
        return;
    int (*fn)(int) = faulty_fsync;
    void *as_ptr, *prev;
    memcpy(&as_ptr, &fn, sizeof(as_ptr)); /* function <-> object pointer, as dlsym does */
    prev = visits_testing_syscall("fsync", as_ptr);
    memcpy(&real_fsync, &prev, sizeof(prev));
}
