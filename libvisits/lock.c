/* lock.c: the cross-process lock file and the removal of stale temps. */
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

int visits__lock_open(int dirfd, const char *name, mode_t mode, int *lockfd_out)
{
    char lockname[NAME_MAX + 1];
    int n = snprintf(lockname, sizeof(lockname), ".%s.lock", name);
    int fd;

    char tmp[NAME_MAX + 1];

    /* Every writer comes here first: refuse a name whose temps (prefix + 12 characters)
     * would not fit, rather than hand out a handle whose every write fails. */
    if (n < 0 || (size_t)n >= sizeof(lockname) ||
        visits__temp_prefix(name, tmp, sizeof(tmp) - VISITS__TEMP_SUFFIX_LEN) < 0)
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
    if ((fd = visits__sys.openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)) < 0)
        return;
    if ((dir = fdopendir(fd)) == NULL) {
        visits__sys.close(fd);
        return;
    }
    while ((ent = readdir(dir)) != NULL) {
        struct stat st;
        if (strncmp(ent->d_name, prefix, (size_t)len) != 0 || ent->d_name[len] == '\0')
            continue;
        /* Only regular files are ours: a directory or link with such a name is left. */
        if (ent->d_type != DT_REG &&
            (ent->d_type != DT_UNKNOWN ||
             visits__sys.fstatat(dirfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
             !S_ISREG(st.st_mode)))
            continue;
        visits__sys.unlinkat(dirfd, ent->d_name, 0);
    }
    closedir(dir);
}
