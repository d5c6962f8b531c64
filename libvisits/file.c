/* file.c: reading and validating the counter file; the operator's set. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int visits__read_fd(int fd, uint64_t *value_out, struct stat *st_out, visits_prev *raw)
{
    char buf[VISITS_MAX_FILE_SIZE + 1];
    size_t len = 0;
    struct stat st;

    if (visits__sys.fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return VISITS_ENOTREG;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    while (len < sizeof(buf)) {
        ssize_t n = visits__read(fd, buf + len, sizeof(buf) - len);
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (raw != NULL) {
        raw->len = len < VISITS_MAX_FILE_SIZE ? len : VISITS_MAX_FILE_SIZE;
        memcpy(raw->bytes, buf, raw->len);
    }
    if (st_out != NULL)
        *st_out = st;
    return len > VISITS_MAX_FILE_SIZE ? VISITS_ECORRUPT : visits_parse(buf, len, value_out);
}

int visits__read_at(int dirfd, const char *name, uint64_t *value_out, int *exists_out,
                    struct stat *st_out, visits_prev *raw)
{
    int fd, err;

    /* O_NONBLOCK: a FIFO at the path must not hang the open; O_NOFOLLOW: the path was
     * resolved at open, a link appearing later is refused rather than followed. */
    fd = visits__openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0) {
        if (errno != ENOENT)
            return -errno;
        *value_out = 0;
        *exists_out = 0;
        return 0;
    }
    err = visits__read_fd(fd, value_out, st_out, raw);
    if (err == 0)
        *exists_out = 1;
    visits__close(fd);
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
        visits__close(dirfd);
    }
    visits__loc_free(&loc);
    if (err != 0)
        return err;
    *value_out = value;
    if (exists_out != NULL)
        *exists_out = exists;
    return 0;
}

#define MARKER_MAX 64

static int marker_name(const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, ".%s.set", name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int visits__marker_read(int dirfd, const char *name, uint64_t *value, uint64_t *token)
{
    char path[NAME_MAX + 1], buf[MARKER_MAX + 1], *sp, *end;
    ssize_t len = 0, n;
    int fd;

    if (marker_name(name, path, sizeof(path)) != 0)
        return -ENOENT;
    if ((fd = visits__openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0)) < 0)
        return -ENOENT;
    while (len < MARKER_MAX && (n = visits__read(fd, buf + len, (size_t)(MARKER_MAX - len))) > 0)
        len += n;
    visits__close(fd);
    buf[len] = '\0';
    /* "<value> <16 hex digits>\n", nothing else */
    if ((sp = memchr(buf, ' ', (size_t)len)) == NULL ||
        visits_parse(buf, (size_t)(sp - buf), value) != 0)
        return -ENOENT;
    if (strlen(sp + 1) != 17 || sp[17] != '\n')
        return -ENOENT;
    *token = 0;
    for (end = sp + 1; end < sp + 17; end++) {
        unsigned d = (unsigned char)*end;
        d = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : 16;
        if (d == 16)
            return -ENOENT;
        *token = *token << 4 | d;
    }
    return *token != 0 ? 0 : -ENOENT;
}

int visits__marker_write(int dirfd, const char *name, uint64_t value)
{
    char path[NAME_MAX + 1], buf[MARKER_MAX];
    uint64_t token = 0;
    int fd, len, err = 0;

    if (marker_name(name, path, sizeof(path)) != 0)
        return -ENAMETOOLONG;
    if (getrandom(&token, sizeof(token), GRND_NONBLOCK) != (ssize_t)sizeof(token)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        token =
            (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid();
    }
    token |= 1; /* never 0 */
    len = snprintf(buf, sizeof(buf), "%llu %016llx\n", (unsigned long long)value,
                   (unsigned long long)token);
    fd = visits__openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    if (visits__write(fd, buf, (size_t)len) != len)
        err = -EIO;
    visits__close(fd);
    return err;
}

/* Under the writers' lock: what the file holds now (valid, corrupt or missing). */
static int read_previous(const struct visits__target *t, visits_prev *prev)
{
    uint64_t old = 0;

    memset(prev, 0, sizeof(*prev));
    if (t->fd < 0) {
        prev->state = -ENOENT;
        return 0;
    }
    prev->state = visits__read_fd(t->fd, &old, NULL, prev);
    if (prev->state != 0 && prev->state != VISITS_ECORRUPT)
        return prev->state; /* not a file we may replace: directory, FIFO, unreadable */
    prev->value = old;
    if (prev->state != VISITS_ECORRUPT)
        prev->len = 0;
    return 0;
}

int visits_set_file(const char *path, uint64_t value, const visits_options *opts,
                    visits_prev *prev_out)
{
    struct visits__loc loc;
    struct visits__target t;
    visits_prev prev;
    uint64_t retries = 0;
    int dirfd = -1, fatal = 0, err;

    /* the mode of a new file: the options' (every layout has it), or the default */
    mode_t mode = opts != NULL ? (mode_t)opts->mode : 0644;

    if (mode > 07777)
        return VISITS_EINVAL;
    if ((err = visits__resolve(path, &loc)) != 0)
        return err;
    if ((err = visits__check_name(loc.name)) != 0 || (err = visits__open_dir(&loc, &dirfd)) != 0)
        goto Exit;
    if ((err = visits__lock_target(dirfd, loc.name, &t, &retries)) != 0)
        goto Exit;
    /* The marker first: a handle that sees the new value finds the marker naming it. */
    if ((err = read_previous(&t, &prev)) == 0)
        visits__marker_write(dirfd, loc.name, value);
    if (err == 0) {
        err = visits__replace(dirfd, loc.name, value, mode,
                              t.fd < 0 ? -1 : (int)(t.st.st_mode & 07777), &fatal);
    }
    visits__unlock_target(dirfd, &t);
    if (err == 0)
        visits__remove_stale_temps(dirfd, loc.name);
Exit:
    if (dirfd >= 0)
        visits__close(dirfd);
    visits__loc_free(&loc);
    if (err == 0 && prev_out != NULL)
        *prev_out = prev;
    return err;
}
