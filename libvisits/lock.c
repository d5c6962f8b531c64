/*
 * lock.c: the writers' lock across processes, and the removal of stale temps.
 *
 * A write cycle locks the counter file itself (flock on its current inode), then checks
 * that the path still names that inode: every write renames a new inode into place, so a
 * writer that waited for the lock on the old one finds it replaced and locks the new one.
 * Meanwhile the directory is locked shared; a writer that finds the file missing locks
 * the directory exclusively before creating it, so that it waits for any writer still
 * holding the lock of a file deleted under it (that writer's rename brings the file
 * back). Nothing here depends on a separate lock file, so no other program can break the
 * lock by deleting one.
 *
 * Temps are owned by their writer through a lock on the temp itself; the sweep removes
 * only temps whose lock it can take (their writer died), whenever it runs.
 */
#include "visits_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int visits__temp_prefix(const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, ".%s.tmp-", name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

int visits__check_name(const char *name)
{
    char tmp[NAME_MAX + 1];

    /* Every writer checks first: refuse a name whose temps (prefix + 12 characters) would
     * not fit, rather than hand out a handle whose every write fails. */
    return visits__temp_prefix(name, tmp, sizeof(tmp) - VISITS__TEMP_SUFFIX_LEN) < 0 ? -ENAMETOOLONG
                                                                                     : 0;
}

static int same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int visits__lock_target(int dirfd, const char *name, struct visits__target *t, uint64_t *retries)
{
    const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
    struct stat at_path;
    int err;

    for (;;) {
        t->fd = -1;
        t->dir_lock = LOCK_SH;
        if (visits__flock(dirfd, LOCK_SH) != 0)
            return -errno;
        t->fd = visits__openat(dirfd, name, flags, 0);
        if (t->fd < 0 && errno == ENOENT) {
            /* Creating: wait for every writer of this directory (one may hold the lock of
             * a file deleted under it), then look again. */
            t->dir_lock = LOCK_EX;
            if (visits__flock(dirfd, LOCK_EX) != 0) {
                err = -errno;
                visits__flock(dirfd, LOCK_UN);
                return err;
            }
            t->fd = visits__openat(dirfd, name, flags, 0);
            if (t->fd < 0 && errno == ENOENT)
                return 0; /* missing, and nobody else can create it now */
        }
        if (t->fd < 0) {
            err = -errno;
            visits__flock(dirfd, LOCK_UN);
            return err;
        }
        if (visits__flock(t->fd, LOCK_EX) != 0 || visits__sys.fstat(t->fd, &t->st) != 0) {
            err = -errno;
            visits__unlock_target(dirfd, t);
            return err;
        }
        if (visits__sys.fstatat(dirfd, name, &at_path, AT_SYMLINK_NOFOLLOW) == 0 &&
            same_inode(&at_path, &t->st))
            return 0;
        /* Replaced (or deleted) while we waited for its lock: lock what is there now. */
        visits__unlock_target(dirfd, t);
        (*retries)++;
    }
}

void visits__unlock_target(int dirfd, struct visits__target *t)
{
    if (t->fd >= 0)
        visits__close(t->fd); /* releases its flock */
    t->fd = -1;
    visits__flock(dirfd, LOCK_UN);
}

/* Removes dirfd/name if it is a regular file that nobody holds a lock on. */
static void remove_if_abandoned(int dirfd, const char *name)
{
    struct stat held, at_path;
    int fd = visits__openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);

    if (fd < 0)
        return;
    /* A live writer holds its temp's lock from creation to rename; a dead one's lock went
     * with its process. Check the name still names the file we locked before unlinking. */
    if (visits__sys.flock(fd, LOCK_EX | LOCK_NB) == 0 && visits__sys.fstat(fd, &held) == 0 &&
        S_ISREG(held.st_mode) &&
        visits__sys.fstatat(dirfd, name, &at_path, AT_SYMLINK_NOFOLLOW) == 0 &&
        same_inode(&held, &at_path))
        visits__sys.unlinkat(dirfd, name, 0);
    visits__close(fd);
}

void visits__remove_stale_temps(int dirfd, const char *name)
{
    char prefix[NAME_MAX + 1];
    int len = visits__temp_prefix(name, prefix, sizeof(prefix));
    struct dirent *ent;
    DIR *dir;
    int fd;

    /* Housekeeping only: a temp that cannot be removed now is harmless (it is never read)
     * and the next open tries again, so nothing here fails the caller. */
    if (len < 0)
        return;
    /* fdopendir takes ownership of its fd: give it a fresh one on the same directory. */
    if ((fd = visits__openat(dirfd, ".", O_RDONLY | O_DIRECTORY, 0)) < 0)
        return;
    if ((dir = fdopendir(fd)) == NULL) {
        visits__close(fd);
        return;
    }
    while ((ent = readdir(dir)) != NULL) {
        if (strncmp(ent->d_name, prefix, (size_t)len) != 0 || ent->d_name[len] == '\0')
            continue;
        /* Only regular files are ours: a directory or link with such a name is left. */
        if (ent->d_type != DT_REG && ent->d_type != DT_UNKNOWN)
            continue;
        remove_if_abandoned(dirfd, ent->d_name);
    }
    closedir(dir);
}
