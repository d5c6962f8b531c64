/* path.c: where the counter lives after following symlinks. */
#include "visits_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LINKS 40

/* Splits path into a malloc'd directory and last component. */
static int split(const char *path, struct visits__loc *loc)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    size_t dirlen = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));

    if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return VISITS_EINVAL;
    loc->name = strdup(name);
    loc->dir = malloc(dirlen + 1);
    if (loc->name == NULL || loc->dir == NULL) {
        visits__loc_free(loc);
        return -ENOMEM;
    }
    if (slash == NULL)
        memcpy(loc->dir, ".", 2);
    else {
        memcpy(loc->dir, path, dirlen);
        loc->dir[dirlen] = '\0';
    }
    return 0;
}

/* A link's target relative to the directory holding the link. */
static char *join_link(const struct visits__loc *at, const char *target)
{
    size_t dlen, tlen = strlen(target);
    char *out;

    if (target[0] == '/')
        return strdup(target);
    dlen = strlen(at->dir);
    out = malloc(dlen + 1 + tlen + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, at->dir, dlen);
    out[dlen] = '/';
    memcpy(out + dlen + 1, target, tlen + 1);
    return out;
}

int visits__resolve(const char *path, struct visits__loc *loc)
{
    char *cur;
    int hops, err;

    loc->dir = loc->name = NULL;
    if (path == NULL || *path == '\0')
        return VISITS_EINVAL;
    if ((cur = strdup(path)) == NULL)
        return -ENOMEM;
    for (hops = 0;; hops++) {
        struct stat st;
        char target[PATH_MAX];
        ssize_t n;
        char *next;

        if ((err = split(cur, loc)) != 0)
            break;
        if (visits__sys.fstatat(AT_FDCWD, cur, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            err = errno == ENOENT ? 0 : -errno; /* a missing file is created later */
            break;
        }
        if (!S_ISLNK(st.st_mode))
            break;
        if (hops == MAX_LINKS) {
            err = VISITS_ESYMLOOP;
            break;
        }
        n = visits__sys.readlink(cur, target, sizeof(target) - 1);
        if (n < 0) {
            err = -errno;
            break;
        }
        target[n] = '\0';
        next = join_link(loc, target);
        visits__loc_free(loc);
        free(cur);
        if ((cur = next) == NULL)
            return -ENOMEM;
    }
    free(cur);
    if (err != 0)
        visits__loc_free(loc);
    return err;
}

void visits__loc_free(struct visits__loc *loc)
{
    free(loc->dir);
    free(loc->name);
    loc->dir = loc->name = NULL;
}

int visits__open_dir(const struct visits__loc *loc, int *dirfd_out)
{
    int fd = visits__openat(AT_FDCWD, loc->dir, O_RDONLY | O_DIRECTORY, 0);

    if (fd < 0)
        return errno == ENOENT ? VISITS_ENODIR : -errno;
    *dirfd_out = fd;
    return 0;
}

int visits__same_dir(const struct visits__loc *loc, int dirfd)
{
    struct stat at_path, held;

    if (visits__sys.fstat(dirfd, &held) != 0)
        return -errno;
    if (visits__sys.fstatat(AT_FDCWD, loc->dir, &at_path, 0) != 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    return at_path.st_dev == held.st_dev && at_path.st_ino == held.st_ino;
}
