/* sys.c: the system call seam. Every call on the counter's files goes through
 * visits__sys so that tests can make it fail (visits_testing_syscall), and through the
 * wrappers here, which retry EINTR and keep the library's descriptors off 0, 1 and 2. */
#include "visits_int.h"
#include "visits_testing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int visits__libc_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    return openat(dirfd, path, flags, mode);
}

struct visits__sys visits__sys = {
#define VISITS__SYS_INIT(ret, name, params, dflt) .name = dflt,
    VISITS__SYSCALLS(VISITS__SYS_INIT)
#undef VISITS__SYS_INIT
};

/* The one place where EINTR is retried: expr is evaluated again while it fails with it. */
#define RETRY_EINTR(type, expr)                                                                    \
    do {                                                                                           \
        type rc_;                                                                                  \
        while ((rc_ = (expr)) < 0 && errno == EINTR)                                               \
            ;                                                                                      \
        return rc_;                                                                                \
    } while (0)

/*
 * A descriptor the library keeps must not be 0, 1 or 2: a process started with those
 * closed (some supervisors do that) would later print into the counter's files. Like
 * SQLite's robust_open: move it to 3 or above, and leave /dev/null in the low slot so
 * that the process's standard stream does not land on the next file opened either.
 */
static int keep_off_stdio(int fd)
{
    int moved, nul;

    if (fd < 0 || fd > 2)
        return fd;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) {
        int saved = errno;
        visits__sys.close(fd);
        errno = saved;
        return -1;
    }
    nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0 && nul != fd) {
        dup2(nul, fd); /* replaces our file in the low slot; not close-on-exec */
        close(nul);
    } else if (nul < 0) {
        visits__sys.close(fd);
    }
    /* nul == fd cannot happen: fd is still open here */
    return moved;
}

int visits__openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd;

    while ((fd = visits__sys.openat(dirfd, path, flags | O_CLOEXEC, mode)) < 0 && errno == EINTR)
        ;
    return keep_off_stdio(fd);
}

int visits__dupfd(int fd)
{
    RETRY_EINTR(int, fcntl(fd, F_DUPFD_CLOEXEC, 3));
}

ssize_t visits__read(int fd, void *buf, size_t len)
{
    RETRY_EINTR(ssize_t, visits__sys.read(fd, buf, len));
}

ssize_t visits__write(int fd, const void *buf, size_t len)
{
    RETRY_EINTR(ssize_t, visits__sys.write(fd, buf, len));
}

int visits__fsync(int fd)
{
    RETRY_EINTR(int, visits__sys.fsync(fd));
}

int visits__flock(int fd, int op)
{
    RETRY_EINTR(int, visits__sys.flock(fd, op));
}

int visits__close(int fd)
{
    return visits__sys.close(fd);
}

/* Function and object pointers share one representation on every platform POSIX
 * supports (dlsym relies on it); the memcpy keeps -Wpedantic quiet about it. */
#define VISITS__SYS_SWAP(ret, field, params, dflt)                                                 \
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
    VISITS__SYSCALLS(VISITS__SYS_SWAP)
    return NULL;
}
