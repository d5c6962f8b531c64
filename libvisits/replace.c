/* replace.c: the durable replace: temp, write, fsync, rename, fsync the directory. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = visits__write(fd, buf, len);
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* a regular file never accepts 0 bytes of a non-empty write */
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A fresh suffix for the temp name: random where the kernel gives it, else time-based. */
static void temp_suffix(char out[VISITS__TEMP_SUFFIX_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[VISITS__TEMP_SUFFIX_LEN];
    size_t i;

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        uint64_t x;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
        for (i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005u + 1442695040888963407u)
            rnd[i] = (unsigned char)(x >> 56);
    }
    for (i = 0; i < sizeof(rnd); i++)
        out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
    out[VISITS__TEMP_SUFFIX_LEN] = '\0';
}

static int create_temp(int dirfd, const char *name, mode_t mode, char *tmp, size_t size,
                       int *fd_out)
{
    int attempt, prefix = visits__temp_prefix(name, tmp, size);

    if (prefix < 0 || (size_t)prefix + VISITS__TEMP_SUFFIX_LEN + 1 > size)
        return -ENAMETOOLONG;
    for (attempt = 0; attempt < 16; attempt++) {
        int fd;
        temp_suffix(tmp + prefix);
        fd = visits__openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
        if (fd < 0) {
            if (errno != EEXIST)
                return -errno;
            continue;
        }
        /* The lock says "a live writer owns this temp" to the sweep of other handles.
         * One may have locked it first (it swept between our open and our lock): then it
         * removes the file, and we take another name. */
        if (visits__sys.flock(fd, LOCK_EX | LOCK_NB) == 0) {
            *fd_out = fd;
            return 0;
        }
        visits__close(fd);
    }
    return -EEXIST;
}

/* How often a temp deleted by another program before its rename is made again. */
#define TEMP_ATTEMPTS 16

/* One attempt; -ENOENT with *vanished set when the temp was gone at the rename. */
static int replace_once(int dirfd, const char *name, const char *buf, size_t len,
                        mode_t create_mode, int keep_mode, int *fatal_out, int *vanished)
{
    char tmp[NAME_MAX + 1];
    int fd = -1, err;

    if ((err = create_temp(dirfd, name, create_mode, tmp, sizeof(tmp), &fd)) != 0)
        return err;
    if ((err = write_all(fd, buf, len)) != 0)
        goto Error;
    /* An existing file keeps its mode; a new one got create_mode minus the umask from
     * openat. Either way the mode is in place before the fsync makes it durable. */
    if (keep_mode >= 0 && visits__sys.fchmod(fd, (mode_t)keep_mode) != 0) {
        err = -errno;
        goto Error;
    }
    if (visits__fsync(fd) != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages: the data
         * cannot be trusted and retrying could report a false success. */
        err = -errno;
        *fatal_out = 1;
        goto Error;
    }
    /* The temp stays open, and so locked against the sweep, until it is renamed. */
    if (visits__sys.renameat(dirfd, tmp, dirfd, name) != 0) {
        err = -errno;
        *vanished = err == -ENOENT &&
                    visits__sys.fstatat(dirfd, tmp, &(struct stat){0}, AT_SYMLINK_NOFOLLOW) != 0;
        goto Error;
    }
    err = visits__close(fd);
    if (err != 0) {
        /* Write errors of some filesystems surface only here: the outcome is unknown. */
        *fatal_out = 1;
        return -errno;
    }
    if (visits__fsync(dirfd) != 0) {
        /* The rename happened, but whether it survives a crash is unknown. */
        *fatal_out = 1;
        return -errno;
    }
    return 0;

Error:
    visits__close(fd);
    visits__sys.unlinkat(dirfd, tmp, 0);
    return err;
}

int visits__replace(int dirfd, const char *name, uint64_t value, mode_t create_mode, int keep_mode,
                    int *fatal_out)
{
    char buf[VISITS__FORMAT_MAX];
    size_t len = visits__format(value, buf);
    int attempt, err = 0;

    *fatal_out = 0;
    for (attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
        int vanished = 0;
        err = replace_once(dirfd, name, buf, len, create_mode, keep_mode, fatal_out, &vanished);
        if (!vanished)
            break;
    }
    return err;
}
