/*
 * bench/http/fsync_delay.c: an LD_PRELOAD shim that makes every fsync() and fdatasync()
 * take FSYNC_DELAY_US microseconds (sleeping, no CPU) after the real call. On tmpfs, where
 * the real calls return at once, it stands in for a disk with that flush latency, so
 * run.sh can show how always mode scales with the disk's durable cycle:
 *
 *   LD_PRELOAD=$PWD/build/bench/libfsync-delay.so FSYNC_DELAY_US=100 \
 *       BENCH_DIR=/dev/shm bench/http/run.sh
 *
 * A measuring aid for benchmarks only; nothing durable runs under it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_us(void)
{
    static long cached = -1;
    if (cached < 0) {
        const char *s = getenv("FSYNC_DELAY_US");
        cached = s != NULL ? strtol(s, NULL, 10) : 0;
    }
    return cached;
}

/* Calls libc's `name` on fd, then waits as the disk would; the call's errno is kept. */
static int call_then_wait(int (**real)(int), const char *name, int fd)
{
    if (*real == NULL)
        *(void **)real = dlsym(RTLD_NEXT, name);
    int r = (*real)(fd), saved = errno;
    long us = delay_us();
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (us > 0 && nanosleep(&ts, &ts) != 0)
        ;
    errno = saved;
    return r;
}

int fsync(int fd)
{
    static int (*real)(int);
    return call_then_wait(&real, "fsync", fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    return call_then_wait(&real, "fdatasync", fd);
}
