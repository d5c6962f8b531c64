/* volume.c: DATA_DIR/volume-id, read or made once. */
#include "volume.h"

#include "slotid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORRUPT_FIX                                                                                \
    "refusing to start; restore the file (the other pods keep this volume's slot as "              \
    "POD.VOLUMEID: GET /cluster on one of them, or 'visitsctl slots' on its data directory, "      \
    "shows it) with: printf '%%s\\n' VOLUMEID > %s. Do not delete it: a new id would count "       \
    "this volume's visits a second time"

/* 0 and the id, -ENOENT when there is no file, another -errno, or 1 when it is corrupt. */
static int read_id(int dirfd, char id[17])
{
    char buf[64];
    int fd = openat(dirfd, VOLUME_ID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    ssize_t n;
    size_t len = 0;
    while ((n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        len += (size_t)n;
        if (len == sizeof(buf))
            break;
    }
    close(fd);
    if (len == SLOT_VOLUME_LEN + 1 && buf[SLOT_VOLUME_LEN] == '\n')
        len--;
    if (!slot_volume_valid(buf, len))
        return 1;
    memcpy(id, buf, SLOT_VOLUME_LEN);
    id[SLOT_VOLUME_LEN] = '\0';
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes a new id and links it to the name: 0, -EEXIST (someone else made one first), or
 * another -errno with what failed in *what. */
static int create_id(int dirfd, char id[17], const char **what)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[SLOT_VOLUME_LEN / 2];
    char tmp[64], line[SLOT_VOLUME_LEN + 1];
    ssize_t got;
    while ((got = getrandom(rnd, sizeof(rnd), 0)) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(rnd)) {
        *what = "getrandom";
        return got < 0 ? -errno : -EIO;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        line[2 * i] = hex[rnd[i] >> 4];
        line[2 * i + 1] = hex[rnd[i] & 15];
    }
    line[SLOT_VOLUME_LEN] = '\n';
    snprintf(tmp, sizeof(tmp), "." VOLUME_ID_FILE ".tmp-%ld", (long)getpid());
    unlinkat(dirfd, tmp, 0); /* ours from an earlier run that died: same pid, same name */
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    int err = 0;
    if (fd < 0) {
        *what = "create a temp file";
        return -errno;
    }
    if ((err = write_all(fd, line, sizeof(line))) != 0)
        *what = "write";
    else if (fsync(fd) != 0)
        *what = "fsync", err = -errno;
    if (close(fd) != 0 && err == 0)
        *what = "close", err = -errno;
    if (err == 0 && linkat(dirfd, tmp, dirfd, VOLUME_ID_FILE, 0) != 0) {
        err = -errno;
        *what = "link";
    }
    unlinkat(dirfd, tmp, 0);
    if (err == 0 && fsync(dirfd) != 0) {
        *what = "fsync the directory";
        err = -errno;
    }
    if (err == 0) {
        memcpy(id, line, SLOT_VOLUME_LEN);
        id[SLOT_VOLUME_LEN] = '\0';
    }
    return err;
}

int volume_id_load(const char *data_dir, char id[17], int *created, char *err, size_t errsize)
{
    const char *sep = data_dir[strlen(data_dir) - 1] == '/' ? "" : "/";
    char path[4200];
    snprintf(path, sizeof(path), "%s%s" VOLUME_ID_FILE, data_dir, sep);
    if (created != NULL)
        *created = 0;
    int dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errsize, "%s: cannot open the data directory: %s", data_dir, strerror(errno));
        return -1;
    }
    int rc = read_id(dirfd, id);
    if (rc == -ENOENT) {
        const char *what = "";
        rc = create_id(dirfd, id, &what);
        if (rc == -EEXIST) { /* another process made it first: that one is the id */
            rc = read_id(dirfd, id);
        } else if (rc == 0) {
            if (created != NULL)
                *created = 1;
        } else {
            snprintf(err, errsize, "%s: cannot make the volume id (%s): %s", path, what,
                     strerror(-rc));
            close(dirfd);
            return -1;
        }
    }
    close(dirfd);
    if (rc == 1) {
        snprintf(
            err, errsize,
            "%s: corrupt volume id (expected 16 lowercase hex digits and a newline): " CORRUPT_FIX,
            path, path);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errsize, "%s: cannot read the volume id: %s", path, strerror(-rc));
        return -1;
    }
    return 0;
}
