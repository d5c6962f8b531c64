/* file.c: reading and validating the counter file; the operator's set. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int visits__read_at(int dirfd, const char *name, uint64_t *value_out, int *exists_out,
                    struct stat *st_out, visits_prev *raw)
{
    char buf[VISITS_MAX_FILE_SIZE + 1];
    size_t len = 0;
    struct stat st;
    int fd, err = 0;

    /* O_NONBLOCK: a FIFO at the path must not hang the open; O_NOFOLLOW: the path was
     * resolved at open, a link appearing later is refused rather than followed. */
    fd = visits__sys.openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno != ENOENT)
            return -errno;
        *value_out = 0;
        *exists_out = 0;
        return 0;
    }
    if (visits__sys.fstat(fd, &st) != 0) {
        err = -errno;
        goto Exit;
    }
    if (!S_ISREG(st.st_mode)) {
        err = VISITS_ENOTREG;
        goto Exit;
    }
    while (len < sizeof(buf)) {
        ssize_t n = visits__sys.read(fd, buf + len, sizeof(buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (raw != NULL) {
        raw->len = len < VISITS_MAX_FILE_SIZE ? len : VISITS_MAX_FILE_SIZE;
        memcpy(raw->bytes, buf, raw->len);
    }
    err = len > VISITS_MAX_FILE_SIZE ? VISITS_ECORRUPT : visits_parse(buf, len, value_out);
    if (err == 0) {
        *exists_out = 1;
        if (st_out != NULL)
            *st_out = st;
    }
Exit:
    visits__sys.close(fd);
    return err;
}

int visits_read_file(const char *path, uint64_t *value_out, int *exists_out)
{
    struct visits__loc loc;
    uint64_t value;
    int dirfd, exists, err;

    if (value_out == NULL)
        return VISITS_EINVAL;
    if ((err = visits__resolve(path, &loc)) != 0)
        return err;
    if ((err = visits__open_dir(&loc, &dirfd)) == 0) {
        err = visits__read_at(dirfd, loc.name, &value, &exists, NULL, NULL);
        visits__sys.close(dirfd);
    }
    visits__loc_free(&loc);
    if (err != 0)
        return err;
    *value_out = value;
    if (exists_out != NULL)
        *exists_out = exists;
    return 0;
}

int visits_set_file(const char *path, uint64_t value, const visits_options *opts,
                    visits_prev *prev_out)
{
    visits_options defaults;
    struct visits__loc loc;
    visits_prev prev;
    struct stat st;
    uint64_t old = 0;
    int dirfd = -1, lockfd = -1, exists = 0, fatal = 0, err;

    if (opts == NULL) {
        visits_options_init(&defaults);
        opts = &defaults;
    }
    memset(&prev, 0, sizeof(prev));
    if ((err = visits__resolve(path, &loc)) != 0)
        return err;
    if ((err = visits__open_dir(&loc, &dirfd)) != 0)
        goto Exit;
    if ((err = visits__lock_open(dirfd, loc.name, (mode_t)opts->mode, &lockfd)) != 0)
        goto Exit;
    if ((err = visits__lock(lockfd)) != 0)
        goto Exit;
    prev.state = visits__read_at(dirfd, loc.name, &old, &exists, &st, &prev);
    if (prev.state == 0 && !exists)
        prev.state = -ENOENT;
    if (prev.state != 0 && prev.state != -ENOENT && prev.state != VISITS_ECORRUPT) {
        err = prev.state; /* not a file we may replace: directory, FIFO, unreadable */
        goto Unlock;
    }
    prev.value = old;
    if (prev.state != VISITS_ECORRUPT)
        prev.len = 0;
    if (prev.state == VISITS_ECORRUPT) {
        /* keep the corrupt file's mode: stat it again, read_at only fills st when valid */
        if (visits__sys.fstatat(dirfd, loc.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            err = -errno;
            goto Unlock;
        }
    }
    err = visits__replace(dirfd, loc.name, value, (mode_t)opts->mode,
                          prev.state == -ENOENT ? -1 : (int)(st.st_mode & 07777), &fatal);
    if (err == 0)
        visits__remove_stale_temps(dirfd, loc.name);
Unlock:
    visits__unlock(lockfd);
Exit:
    if (lockfd >= 0)
        visits__sys.close(lockfd);
    if (dirfd >= 0)
        visits__sys.close(dirfd);
    visits__loc_free(&loc);
    if (err == 0 && prev_out != NULL)
        *prev_out = prev;
    return err;
}
