/* replace.c: the durable replace: temp, write, fsync, rename, fsync the directory. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = visits__sys.write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
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
        fd = visits__sys.openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                mode);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int visits__replace(int dirfd, const char *name, uint64_t value, mode_t create_mode, int keep_mode,
                    int *fatal_out)
{
    char tmp[NAME_MAX + 1], buf[VISITS__FORMAT_MAX];
    size_t len = visits__format(value, buf);
    int fd = -1, err;

    *fatal_out = 0;
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
    if (visits__sys.fsync(fd) != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages: the data
         * cannot be trusted and retrying could report a false success. */
        err = -errno;
        *fatal_out = 1;
        goto Error;
    }
    err = visits__sys.close(fd);
    fd = -1;
    if (err != 0) {
        err = -errno;
        *fatal_out = 1;
        goto Error;
    }
    if (visits__sys.renameat(dirfd, tmp, dirfd, name) != 0) {
        err = -errno;
        goto Error;
    }
    if (visits__sys.fsync(dirfd) != 0) {
        /* The rename happened, but whether it survives a crash is unknown. */
        *fatal_out = 1;
        return -errno;
    }
    return 0;

Error:
    if (fd >= 0)
        visits__sys.close(fd);
    visits__sys.unlinkat(dirfd, tmp, 0);
    return err;
}
