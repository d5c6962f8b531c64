/* visits_int.h: internals of libvisits shared between its files. Not installed. */
#ifndef VISITS_INT_H
#define VISITS_INT_H

#include "visits.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- system call seam (sys.c) --------------------------------------------------------
 * Every system call on the counter's files goes through the table visits__sys, so tests
 * can make any of them fail on demand, against the shared library too (see
 * visits_testing.h). One row per call: XX(return type, name, parameters, default).
 * The table, its defaults and the swap by name are all generated from these rows.
 * Entries have the libc signatures and errno conventions; the library calls them only
 * through the wrappers below, which retry EINTR (one place) and keep descriptors off
 * 0, 1 and 2. */
#define VISITS__SYSCALLS(XX)                                                                       \
    XX(int, openat, (int dirfd, const char *path, int flags, mode_t mode), visits__libc_openat)    \
    XX(ssize_t, read, (int fd, void *buf, size_t len), read)                                       \
    XX(ssize_t, write, (int fd, const void *buf, size_t len), write)                               \
    XX(int, fsync, (int fd), fsync)                                                                \
    XX(int, fchmod, (int fd, mode_t mode), fchmod)                                                 \
    XX(int, fstat, (int fd, struct stat *st), fstat)                                               \
    XX(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags), fstatat)           \
    XX(int, renameat, (int olddirfd, const char *oldpath, int newdirfd, const char *newpath),      \
       renameat)                                                                                   \
    XX(int, unlinkat, (int dirfd, const char *path, int flags), unlinkat)                          \
    XX(int, close, (int fd), close)                                                                \
    XX(int, flock, (int fd, int op), flock)                                                        \
    XX(ssize_t, readlink, (const char *path, char *buf, size_t len), readlink)                     \
    XX(int, faccessat, (int dirfd, const char *path, int mode, int flags), faccessat)

struct visits__sys {
#define VISITS__SYS_FIELD(ret, name, params, dflt) ret(*name) params;
    VISITS__SYSCALLS(VISITS__SYS_FIELD)
#undef VISITS__SYS_FIELD
};
extern struct visits__sys visits__sys;

int visits__libc_openat(int dirfd, const char *path, int flags, mode_t mode);

/* The wrappers: -1 and errno like libc, EINTR retried (close is never retried: the
 * descriptor is gone either way). Descriptors returned are >= 3 and close-on-exec. */
int visits__openat(int dirfd, const char *path, int flags, mode_t mode);
int visits__dupfd(int fd);
ssize_t visits__read(int fd, void *buf, size_t len);
ssize_t visits__write(int fd, const void *buf, size_t len);
int visits__fsync(int fd);
int visits__flock(int fd, int op);
int visits__close(int fd);

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
/* 1 if loc->dir still names the directory open as dirfd, 0 if it names another one or
 * nothing, or a negative code when it cannot be told. */
int visits__same_dir(const struct visits__loc *loc, int dirfd);

/* ---- file.c: reading the target --------------------------------------------------------
 * Reads and parses the counter open as fd (from offset 0). *st_out gets its stat. With
 * raw (nullable) the bytes read are copied out for reporting (up to VISITS_MAX_FILE_SIZE). */
int visits__read_fd(int fd, uint64_t *value_out, struct stat *st_out, visits_prev *raw);
/* Opens and reads dirfd/name. Missing: *value_out = 0, *exists_out = 0. */
int visits__read_at(int dirfd, const char *name, uint64_t *value_out, int *exists_out,
                    struct stat *st_out, visits_prev *raw);

/* The operator's last visits_set_file() on dirfd/name: ".<name>.set" holds
 * "<value> <token>\n". Handles follow a file that went below what they know only when
 * such a marker they have not seen before names exactly the file's value. Reading gives
 * 0, or -ENOENT when there is no valid marker. Writing is best effort (not durable): a
 * missing or torn marker only means the set is taken for a rollback. */
int visits__marker_read(int dirfd, const char *name, uint64_t *value, uint64_t *token);
int visits__marker_write(int dirfd, const char *name, uint64_t value);
/* 1 when the file's value (below what the handle knows) is an operator's set that the
 * handle has not followed yet (*token is then updated), else 0. */
int visits__follow_set(int dirfd, const char *name, uint64_t file_value, uint64_t *token);

/* ---- replace.c: the durable replace ----------------------------------------------------
 * Replaces dirfd/name with value: unique temp ".<name>.tmp-XXXXXX" (O_CREAT|O_EXCL|
 * O_NOFOLLOW|O_CLOEXEC, created with create_mode so the umask applies) that this writer
 * holds a lock on until it is renamed, full write, fchmod(keep_mode) when keep_mode >= 0,
 * fsync, rename, fsync(dirfd). A temp deleted by another program before the rename is
 * made again (a few times). On any error before the rename the temp is unlinked and the
 * target untouched. *fatal_out is set to 1 when an fsync (or the close after it) failed:
 * the outcome is then unknown and the caller must fail the handle. */
int visits__replace(int dirfd, const char *name, uint64_t value, mode_t create_mode, int keep_mode,
                    int *fatal_out);

/* ---- lock.c --------------------------------------------------------------------------- */
/* What a writer holds during one read-modify-write of dirfd/name. */
struct visits__target {
    int fd;       /* the counter file, flock'ed exclusively; -1 when it does not exist */
    int dir_lock; /* LOCK_SH (file exists) or LOCK_EX (creating it) held on dirfd */
    struct stat st;
};
/* Locks the counter file (or, when it is missing, its directory exclusively) and checks
 * that the locked file is the one at the path, retrying (and counting in *retries) when
 * another writer replaced it meanwhile. 0 or a negative code (nothing held then). */
int visits__lock_target(int dirfd, const char *name, struct visits__target *t, uint64_t *retries);
void visits__unlock_target(int dirfd, struct visits__target *t);
/* Removes regular files ".<name>.tmp-?*" in dirfd that no live writer holds, best effort. */
void visits__remove_stale_temps(int dirfd, const char *name);
/* Characters of random suffix after the temp prefix. */
#define VISITS__TEMP_SUFFIX_LEN 12
/* The temp-name prefix ".<name>.tmp-" into buf; returns its length or -ENAMETOOLONG. */
int visits__temp_prefix(const char *name, char *buf, size_t size);
/* -ENAMETOOLONG when the temps of name would not fit NAME_MAX, else 0. */
int visits__check_name(const char *name);

/* ---- commit.c: operations, write cycles and the committer thread ------------------------ */
enum visits__op_kind { VISITS__OP_ADD, VISITS__OP_RAISE };

/* One queued visits_add/visits_raise (blocking: on the caller's stack; async: malloc'd). */
struct visits__op {
    struct visits__op *next;
    int kind;       /* enum visits__op_kind */
    uint64_t n;     /* add: the amount; raise: the floor */
    uint64_t value; /* result: the value just after this operation */
    int err;
    sem_t done;        /* a blocking caller waits on it; the committer posts it after the cycle */
    visits_done_cb cb; /* NULL: a blocking caller waits for done */
    void *arg;
};

/* An interval-mode transform of the value: x -> max(x + add, floor). Composes. */
struct visits__xform {
    uint64_t add;
    uint64_t floor;
};

/* x -> max(x + add, floor), or VISITS_EOVERFLOW (cycle.c). */
int visits__xform_apply(const struct visits__xform *x, uint64_t base, uint64_t *out);
/* first becomes "first, then second". */
void visits__xform_then(struct visits__xform *first, const struct visits__xform *second);

struct visits_counter {
    char *path;     /* as given to visits_open */
    char *abs_path; /* ... made absolute at open (the working directory may change) */
    struct visits__loc loc;
    int dirfd;
    mode_t create_mode;
    visits_options opts;

    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t commit_cv; /* wakes the committer: work queued, or stop (monotonic) */
    pthread_cond_t io_cv;     /* the files became free (io_busy cleared) */
    uint64_t known;           /* highest value written or read: never counted below */
    int had_file;             /* the file existed when last seen */
    uint64_t set_token;       /* the operator's set marker last followed (0: none) */
    /* always mode: operations waiting for the next cycle */
    struct visits__op *queue, *queue_tail;
    uint64_t queue_len;
    /* interval mode: acknowledged but not yet written, and in the running cycle */
    struct visits__xform pending, inflight;
    uint64_t pending_calls;
    struct visits__op *ready, *ready_tail; /* async ops whose callback is due */
    int io_busy;                           /* a cycle or a reopen uses the files (one at a time) */
    uint64_t io_started;                   /* ... since (CLOCK_MONOTONIC ns) */
    int failed;            /* sticky after an fsync failure, until visits_reopen() */
    int failed_error;      /* the error that failed it */
    int last_error;        /* latest cycle result (interval mode reports it) */
    int stopping;          /* close() asked the committer to finish and stop */
    int final_tried;       /* interval mode: the write at close was attempted */
    int committer_idle;    /* the committer waits on commit_cv with nothing to do */
    int committer_started; /* (set before the thread runs, read by close) */
    pthread_t committer;   /* runs write cycles and every callback */
    uint64_t want;         /* a submit wakes a gathering committer at this queue_len */
    uint64_t expect;       /* gather: operations likely to arrive soon */
    uint64_t gather_until; /* ... waited for no later than this */
    unsigned skip_gathers; /* cycles left that start without gathering */
    int stale_fd;          /* -1, or a replaced file a lone caller left to the committer */
    visits_stats stats;
};

uint64_t visits__now_ns(void);
/* Starts the committer thread of a fresh handle. */
int visits__committer_start(visits_counter *c);
/* close(): completes everything queued, stops the thread; the final result. */
int visits__committer_stop(visits_counter *c);
/* Queues op (blocking callers wait; async ones return). */
int visits__submit(visits_counter *c, struct visits__op *op);
/* Claims the files for I/O outside a cycle (reopen): waits for a running cycle. */
void visits__io_claim(visits_counter *c);
void visits__io_release(visits_counter *c);

#endif /* VISITS_INT_H */
