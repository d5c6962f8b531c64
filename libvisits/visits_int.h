/* visits_int.h: internals of libvisits shared between its files. Not installed. */
#ifndef VISITS_INT_H
#define VISITS_INT_H

#include "visits.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- system call seam (sys.c) --------------------------------------------------------
 * Every system call that touches the counter's files goes through this table, so tests
 * can make any of them fail on demand, against the shared library too (see
 * visits_testing.h). Entries have the libc signatures and errno conventions. */
struct visits__sys {
    int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
    ssize_t (*read)(int fd, void *buf, size_t len);
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*fsync)(int fd);
    int (*fchmod)(int fd, mode_t mode);
    int (*fstat)(int fd, struct stat *st);
    int (*fstatat)(int dirfd, const char *path, struct stat *st, int flags);
    int (*renameat)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
    int (*unlinkat)(int dirfd, const char *path, int flags);
    int (*close)(int fd);
    int (*flock)(int fd, int op);
    ssize_t (*readlink)(const char *path, char *buf, size_t len);
};
extern struct visits__sys visits__sys;

/* ---- parse.c ------------------------------------------------------------------------- */
/* Longest formatted value: 20 digits + "\n" + NUL. */
#define VISITS__FORMAT_MAX 22
/* Writes value as decimal + "\n" into buf (no NUL needed by callers), returns length. */
size_t visits__format(uint64_t value, char buf[VISITS__FORMAT_MAX]);

/* ---- path.c -------------------------------------------------------------------------- */
/* The counter's location after following symlinks: dir + "/" + name. */
struct visits__loc {
    char *dir;  /* malloc'd; "." for a bare name */
    char *name; /* malloc'd; one path component */
};
int visits__resolve(const char *path, struct visits__loc *loc);
void visits__loc_free(struct visits__loc *loc);
/* Opens loc->dir as O_DIRECTORY (VISITS_ENODIR if missing). */
int visits__open_dir(const struct visits__loc *loc, int *dirfd_out);

/* ---- file.c: reading the target --------------------------------------------------------
 * Reads and parses dirfd/name. Missing: *value_out = 0, *exists_out = 0.
 * *st_out (nullable) gets the file's stat when it exists. With raw (nullable) the bytes
 * read are copied out for reporting (up to VISITS_MAX_FILE_SIZE). */
int visits__read_at(int dirfd, const char *name, uint64_t *value_out, int *exists_out,
                    struct stat *st_out, visits_prev *raw);

/* ---- replace.c: the durable replace ----------------------------------------------------
 * Replaces dirfd/name with value: unique temp ".<name>.tmp-XXXXXX" (O_CREAT|O_EXCL|
 * O_NOFOLLOW|O_CLOEXEC, created with create_mode so the umask applies), full write,
 * fchmod(keep_mode) when keep_mode >= 0, fsync, close, rename, fsync(dirfd).
 * On any error before the rename the temp is unlinked and the target untouched.
 * *fatal_out is set to 1 when an fsync (or the close after it) failed: the outcome is
 * then unknown and the caller must fail the handle. */
int visits__replace(int dirfd, const char *name, uint64_t value, mode_t create_mode, int keep_mode,
                    int *fatal_out);

/* ---- lock.c --------------------------------------------------------------------------- */
/* Opens (creating) the lock file ".<name>.lock" in dirfd. */
int visits__lock_open(int dirfd, const char *name, mode_t mode, int *lockfd_out);
int visits__lock(int lockfd); /* exclusive, blocking, EINTR retried */
int visits__unlock(int lockfd);
/* Removes regular files ".<name>.tmp-?*" in dirfd, best effort; call with the lock held. */
void visits__remove_stale_temps(int dirfd, const char *name);
/* Characters of random suffix after the temp prefix. */
#define VISITS__TEMP_SUFFIX_LEN 12
/* The temp-name prefix ".<name>.tmp-" into buf; returns its length or -ENAMETOOLONG. */
int visits__temp_prefix(const char *name, char *buf, size_t size);

/* ---- counter.c: the handle ------------------------------------------------------------ */
struct visits__waiter;

struct visits_counter {
    char *path; /* as given to visits_open */
    struct visits__loc loc;
    int dirfd;
    int lockfd;
    mode_t create_mode;
    visits_options opts;

    pthread_mutex_t mu;           /* guards everything below */
    pthread_cond_t done_cv[2];    /* cycle of generation g ended: done_cv[g & 1] */
    uint64_t gen;                 /* generation of the batch now queueing */
    pthread_cond_t commit_cv;     /* wakes the committer: work queued, or stop (monotonic) */
    uint64_t value;               /* last value known to be in the file */
    uint64_t pending;             /* sum of n queued for the next cycle */
    uint64_t inflight;            /* sum of n in the running cycle */
    struct visits__waiter *queue; /* callers waiting for the next cycle (always mode) */
    uint64_t queue_calls;         /* visits_add calls in the next cycle (both modes) */
    int cycle_running;
    int failed;         /* sticky after an fsync failure */
    int last_error;     /* latest cycle result (interval mode reports it) */
    int stopping;       /* close() asked the committer to stop */
    int committer_idle; /* the committer waits on commit_cv */
    int committer_started;
    pthread_t committer; /* runs every write cycle (both modes) */
    visits_stats stats;
};

#endif /* VISITS_INT_H */
