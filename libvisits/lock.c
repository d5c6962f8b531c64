/* lock.c: the cross-process lock file and the removal of stale temps. */
#include "visits_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int visits__temp_prefix(const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, ".%s.tmp-", name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

int visits__lock_open(int dirfd, const char *name, mode_t mode, int *lockfd_out)
{
    char lockname[NAME_MAX + 1];
    int n = snprintf(lockname, sizeof(lockname), ".%s.lock", name);
    int fd;

    if (n < 0 || (size_t)n >= sizeof(lockname))
        return -ENAMETOOLONG;
    /* The lock is a sibling file, never the target: rename replaces the target's inode,
     * so a lock on it would not exclude a process that opened the new one. */
    fd = visits__sys.openat(dirfd, lockname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    *lockfd_out = fd;
    return 0;
}

int visits__lock(int lockfd)
{
    while (visits__sys.flock(lockfd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int visits__unlock(int lockfd)
{
    return visits__sys.flock(lockfd, LOCK_UN) != 0 ? -errno : 0;
}

int visits__remove_stale_temps(int dirfd, const char *name)
{
    char prefix[NAME_MAX + 1];
    int len = visits__temp_prefix(name, prefix, sizeof(prefix));
    int fd, err = 0;
    struct dirent *ent;
    DIR *dir;

    if (len < 0)
        return len;
    /* fdopendir takes ownership of its fd: give it a fresh one on the same directory. */
    if ((fd = visits__sys.openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)) < 0)
        return -errno;
    if ((dir = fdopendir(fd)) == NULL) {
        err = -errno;
        visits__sys.close(fd);
        return err;
    }
    while ((errno = 0, ent = readdir(dir)) != NULL) {
        if (strncmp(ent->d_name, prefix, (size_t)len) != 0 || ent->d_name[len] == '\0')
            continue;
        if (visits__sys.unlinkat(dirfd, ent->d_name, 0) != 0 && errno != ENOENT) {
            err = -errno;
            break;
        }
    }
    if (err == 0 && errno != 0)
        err = -errno;
    closedir(dir);
    return err;
}
