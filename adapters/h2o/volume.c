/* volume.c: DATA_DIR/volume-id and DATA_DIR/slot-id, each made once and never rewritten. */
#include "volume.h"

#include "slotid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define VOLUME_FIX                                                                                 \
    "restore the file (the other pods keep this volume's slot as POD.VOLUMEID: GET /cluster "      \
    "on one of them, or 'visitsctl slots' on its data directory, shows it) with: printf "          \
    "'%%s\\n' VOLUMEID > %s. Do not delete it: a new id would count this volume's visits a "       \
    "second time"

/* Reads dirfd/name (at most size - 1 bytes) into buf, NUL-terminated: its length, or
 * -errno (-ENOENT when missing, -EFBIG when longer). */
static ssize_t read_small(int dirfd, const char *name, char *buf, size_t size)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == size) {
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
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

/* Makes dirfd/name with the len bytes of data, unless it exists: a temp file, written and
 * fsynced, linked to the name (link never replaces a file another process made meanwhile),
 * the directory fsynced. 0, -EEXIST, or another -errno with what failed in *what. */
static int write_once(int dirfd, const char *name, const char *data, size_t len, const char **what)
{
    char tmp[64];
    snprintf(tmp, sizeof(tmp), ".%s.tmp-%ld", name, (long)getpid());
    unlinkat(dirfd, tmp, 0); /* ours from an earlier run that died: same pid, same name */
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    int err = 0;
    if (fd < 0) {
        *what = "create a temp file";
        return -errno;
    }
    if ((err = write_all(fd, data, len)) != 0)
        *what = "write";
    else if (fsync(fd) != 0)
        *what = "fsync", err = -errno;
    if (close(fd) != 0 && err == 0)
        *what = "close", err = -errno;
    if (err == 0 && linkat(dirfd, tmp, dirfd, name, 0) != 0) {
        err = -errno;
        *what = "link";
    }
    unlinkat(dirfd, tmp, 0);
    if (err == 0 && fsync(dirfd) != 0) {
        *what = "fsync the directory";
        err = -errno;
    }
    return err;
}

static int new_id(char line[SLOT_VOLUME_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[SLOT_VOLUME_LEN / 2];
    ssize_t got;
    while ((got = getrandom(rnd, sizeof(rnd), 0)) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(rnd))
        return got < 0 ? -errno : -EIO;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        line[2 * i] = hex[rnd[i] >> 4];
        line[2 * i + 1] = hex[rnd[i] & 15];
    }
    line[SLOT_VOLUME_LEN] = '\n';
    return 0;
}

/* DATA_DIR/volume-id into id: 0, or -1 with the message. */
static int load_volume(int dirfd, const char *path, char id[17], int *created, char *err,
                       size_t errsize)
{
    char buf[64];
    ssize_t len = read_small(dirfd, VOLUME_ID_FILE, buf, sizeof(buf));
    if (len == -ENOENT) {
        char line[SLOT_VOLUME_LEN + 1];
        const char *what = "getrandom";
        int rc = new_id(line);
        if (rc == 0)
            rc = write_once(dirfd, VOLUME_ID_FILE, line, sizeof(line), &what);
        if (rc == 0) {
            memcpy(id, line, SLOT_VOLUME_LEN);
            id[SLOT_VOLUME_LEN] = '\0';
            *created = 1;
            return 0;
        }
        if (rc != -EEXIST) { /* EEXIST: another process made it first; that one is the id */
            snprintf(err, errsize, "%s: cannot make the volume id (%s): %s", path, what,
                     strerror(-rc));
            return -1;
        }
        len = read_small(dirfd, VOLUME_ID_FILE, buf, sizeof(buf));
    }
    if (len < 0 && len != -EFBIG) {
        snprintf(err, errsize, "%s: cannot read the volume id: %s", path, strerror((int)-len));
        return -1;
    }
    if (len == SLOT_VOLUME_LEN + 1 && buf[SLOT_VOLUME_LEN] == '\n')
        len--;
    if (len < 0 || !slot_volume_valid(buf, (size_t)len)) {
        snprintf(err, errsize,
                 "%s: corrupt volume id (expected 16 lowercase hex digits and a newline): "
                 "refusing to start; " VOLUME_FIX,
                 path, path);
        return -1;
    }
    memcpy(id, buf, SLOT_VOLUME_LEN);
    id[SLOT_VOLUME_LEN] = '\0';
    return 0;
}

/* DATA_DIR/slot-id: the slot this volume counts in, into own; made with the slot of pod when
 * missing. 0, or -1 with the message. */
static int pin_slot(int dirfd, const char *path, const char *pod, const char *volume,
                    char own[SLOT_ID_MAX + 1], char *err, size_t errsize)
{
    char line[SLOT_ID_MAX + 2], buf[SLOT_ID_MAX + 8], vol[SLOT_VOLUME_LEN + 1], why[200];
    ssize_t len = read_small(dirfd, SLOT_ID_FILE, buf, sizeof(buf));
    if (len == -ENOENT) {
        if (slot_id_make(pod, volume, own) != 0) {
            snprintf(err, errsize, "pod name '%s' cannot name a slot", pod);
            return -1;
        }
        const char *what = "";
        size_t n = (size_t)snprintf(line, sizeof(line), "%s\n", own);
        int rc = write_once(dirfd, SLOT_ID_FILE, line, n, &what);
        if (rc == 0)
            return 0;
        if (rc != -EEXIST) {
            snprintf(err, errsize, "%s: cannot record the slot id (%s): %s", path, what,
                     strerror(-rc));
            return -1;
        }
        len = read_small(dirfd, SLOT_ID_FILE, buf, sizeof(buf));
    }
    if (len < 0 && len != -EFBIG) {
        snprintf(err, errsize, "%s: cannot read the slot id: %s", path, strerror((int)-len));
        return -1;
    }
    if (len < 2 || buf[len - 1] != '\n' ||
        slot_id_parse(buf, (size_t)len - 1, NULL, vol, why, sizeof(why)) != 0 ||
        strcmp(vol, volume) != 0) {
        snprintf(err, errsize,
                 "%s: corrupt slot id (expected POD.%s and a newline, POD the pod that first "
                 "counted on this volume): refusing to start; write it again, e.g. printf "
                 "'%%s\\n' POD.%s > %s",
                 path, volume, volume, path);
        return -1;
    }
    memcpy(own, buf, (size_t)len - 1);
    own[len - 1] = '\0';
    return 0;
}

int volume_load(const char *data_dir, const char *pod, char id[17], char own[SLOT_ID_MAX + 1],
                int *created, char *err, size_t errsize)
{
    const char *sep = data_dir[strlen(data_dir) - 1] == '/' ? "" : "/";
    char vpath[4200], spath[4200];
    snprintf(vpath, sizeof(vpath), "%s%s" VOLUME_ID_FILE, data_dir, sep);
    snprintf(spath, sizeof(spath), "%s%s" SLOT_ID_FILE, data_dir, sep);
    *created = 0;
    int dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errsize, "%s: cannot open the data directory: %s", data_dir, strerror(errno));
        return -1;
    }
    int rc = load_volume(dirfd, vpath, id, created, err, errsize);
    if (rc == 0)
        rc = pin_slot(dirfd, spath, pod, id, own, err, errsize);
    close(dirfd);
    return rc;
}
