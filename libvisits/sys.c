/* sys.c: the system call seam. Every call on the counter's files goes through
 * visits__sys so that tests can make it fail (visits_testing_syscall). */
#include "visits_int.h"
#include "visits_testing.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    return openat(dirfd, path, flags, mode);
}

struct visits__sys visits__sys = {
    .openat = sys_openat,
    .read = read,
    .write = write,
    .fsync = fsync,
    .fchmod = fchmod,
    .fstat = fstat,
    .fstatat = fstatat,
    .renameat = renameat,
    .unlinkat = unlinkat,
    .close = close,
    .flock = flock,
    .readlink = readlink,
};

/* Name, slot in visits__sys, and the libc default, one row per call. */
#define VISITS_SYS_MAP(XX)                                                                         \
    XX(openat, sys_openat)                                                                         \
    XX(read, read)                                                                                 \
    XX(write, write)                                                                               \
    XX(fsync, fsync)                                                                               \
    XX(fchmod, fchmod)                                                                             \
    XX(fstat, fstat)                                                                               \
    XX(fstatat, fstatat)                                                                           \
    XX(renameat, renameat)                                                                         \
    XX(unlinkat, unlinkat)                                                                         \
    XX(close, close)                                                                               \
    XX(flock, flock)                                                                               \
    XX(readlink, readlink)

/* Function and object pointers share one representation on every platform POSIX
 * supports (dlsym relies on it); the memcpy keeps -Wpedantic quiet about it. */
#define VISITS_SYS_SWAP(field, dflt)                                                               \
    if (strcmp(name, #field) == 0) {                                                               \
        void *prev;                                                                                \
        __typeof__(visits__sys.field) next = dflt;                                                 \
        memcpy(&prev, &visits__sys.field, sizeof(prev));                                           \
        if (fn != NULL)                                                                            \
            memcpy(&next, &fn, sizeof(next));                                                      \
        visits__sys.field = next;                                                                  \
        return prev;                                                                               \
    }

VISITS_API void *visits_testing_syscall(const char *name, void *fn)
{
    if (name == NULL)
        return NULL;
    VISITS_SYS_MAP(VISITS_SYS_SWAP)
    return NULL;
}
