/*
 * visits.h: libvisits, a crash-safe, durable, concurrent 64-bit counter in a plain file.
 *
 * The file holds the value as ASCII decimal followed by "\n" (no sign, no leading zeros
 * except "0"). Readers also accept the value without the newline. Anything else, an empty
 * file included, is corrupt: it is reported as VISITS_ECORRUPT and never modified by the
 * library except through visits_set_file(), the explicit operator command.
 *
 * Every write replaces the file: a temp file in the same directory, full write, fsync,
 * rename over the target, fsync of the directory. A value is acknowledged only after the
 * last step, so no crash, kill or power loss can corrupt the file or lose an acknowledged
 * increment (given a disk that honours fsync).
 *
 * Errors: every function returns 0 on success or a negative code: -errno from the failing
 * system call, or one of the VISITS_E* codes below. visits_strerror() describes any of
 * them and visits_err_name() names it. There is no global or per-handle "last error".
 *
 * Descriptors: the library opens its files with O_CLOEXEC and never leaves one of them on
 * descriptor 0, 1 or 2 (a process started with those closed would otherwise write its
 * standard output into the counter's directory or files).
 */
#ifndef VISITS_H
#define VISITS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols marked VISITS_API are the only ones the shared library exports. */
#if defined(VISITS_BUILDING) && defined(__GNUC__)
#define VISITS_API __attribute__((visibility("default")))
#else
#define VISITS_API
#endif

/* Version: these macros are the single source (CMake reads them). Before 1.0 a minor
 * release may change the ABI; the shared library's SONAME carries major and minor then. */
#define VISITS_VERSION_MAJOR 0
#define VISITS_VERSION_MINOR 2
#define VISITS_VERSION_PATCH 0
#define VISITS_VERSION_STRING "0.2.0"
#define VISITS_VERSION_NUMBER                                                                      \
    (VISITS_VERSION_MAJOR * 10000 + VISITS_VERSION_MINOR * 100 + VISITS_VERSION_PATCH)

/* The version of the library actually loaded, as VISITS_VERSION_NUMBER / _STRING. */
VISITS_API unsigned visits_version(void);
VISITS_API const char *visits_version_string(void);

/*
 * Library error codes. They never collide with -errno values. XX(name, value, message):
 * one table gives the codes and their texts.
 */
#define VISITS_ERRNO_MAP(XX)                                                                       \
    XX(ECORRUPT, -20001, "corrupt counter file (expected a decimal number)")                       \
    XX(EOVERFLOW, -20002, "counter would overflow 18446744073709551615")                           \
    XX(EFAILED, -20003, "counter handle failed after a write error (reopen it)")                   \
    XX(ENOTREG, -20004, "not a regular file")                                                      \
    XX(ENODIR, -20005, "parent directory does not exist")                                          \
    XX(EINVAL, -20006, "invalid argument")                                                         \
    XX(ESYMLOOP, -20007, "too many levels of symbolic links")                                      \
    XX(ECLOSING, -20008, "counter handle is closing")                                              \
    XX(EDEADLK, -20009, "blocking call from the handle's own callback would deadlock")

enum {
#define VISITS_XX_ENUM(name, value, msg) VISITS_##name = value,
    VISITS_ERRNO_MAP(VISITS_XX_ENUM)
#undef VISITS_XX_ENUM
};

/*
 * A static, human-readable description of err (a VISITS_E* code or -errno). Never NULL;
 * thread-safe. Unknown codes give "unknown error".
 */
VISITS_API const char *visits_strerror(int err);

/*
 * A static, stable name of err, usable as a metric label or in a log field: "OK" for 0,
 * "ECORRUPT" etc. for the library's codes, "ENOSPC", "EIO" etc. for -errno values, and
 * "EUNKNOWN" for anything else. Names never change between releases. Never NULL.
 */
VISITS_API const char *visits_err_name(int err);

/* The largest file the library accepts as a counter (longer files are corrupt). */
#define VISITS_MAX_FILE_SIZE 32

typedef enum visits_sync_mode {
    /* Default. visits_add() returns (and visits_add_async() calls back) after the new
     * value is on disk (temp written and fsynced, renamed, directory fsynced). Concurrent
     * callers share write cycles (group commit). */
    VISITS_SYNC_ALWAYS = 0,
    /* visits_add() returns at once with the new value; a background thread writes it
     * within interval_ms, and visits_close() writes what is left. A crash may lose up to
     * interval_ms of increments; the file is still never corrupt. */
    VISITS_SYNC_INTERVAL = 1
} visits_sync_mode;

/* What one write cycle did, for metrics (see visits_options.on_cycle). */
typedef struct visits_cycle_info {
    uint64_t ops;   /* operations the cycle carried */
    uint64_t ns;    /* how long it took (CLOCK_MONOTONIC) */
    uint64_t value; /* the value written, when err is 0 */
    int err;        /* 0 or the error the cycle's operations got */
} visits_cycle_info;
typedef void (*visits_cycle_cb)(void *arg, const visits_cycle_info *info);

/*
 * Options of visits_open(). Always fill them with visits_options_init() first, then change
 * fields: the structure grows at its end in later releases, and its size field tells the
 * library which fields the caller knows (later fields keep their defaults).
 */
typedef struct visits_options {
    size_t size;              /* set by visits_options_init(); do not change */
    visits_sync_mode sync;    /* VISITS_SYNC_ALWAYS (default) or VISITS_SYNC_INTERVAL */
    unsigned interval_ms;     /* VISITS_SYNC_INTERVAL period; 1..3600000, default 1000 */
    unsigned mode;            /* permission bits of a newly created file, default 0644; the
                                 process umask applies. An existing file keeps its mode. */
    unsigned gather_us;       /* always mode: how long a write cycle may wait for the callers
                                 the previous cycle answered to come back with their next
                                 increment, at most (0..100000, default 1000; 0: never wait).
                                 The wait is adaptive: never longer than the previous cycle
                                 took, and skipped for a while after one waited in vain. */
    visits_cycle_cb on_cycle; /* nullable: called after every write cycle that wrote or
                                 failed, with no lock held, by the thread that ran it (the
                                 committer, or a blocking caller writing its own cycle),
                                 before the cycle's callbacks; it must not block */
    void *cycle_arg;          /* its first argument */
} visits_options;

/* Fill *opts with the defaults (a macro: it passes the caller's sizeof). */
#define visits_options_init(opts) visits_options_init_sized((opts), sizeof(*(opts)))
VISITS_API void visits_options_init_sized(visits_options *opts, size_t size);

/* Opaque counter handle. */
typedef struct visits_counter visits_counter;

/*
 * Open the counter stored at path and store a new handle in *out (NULL on error).
 * opts may be NULL for the defaults.
 *
 * - A missing file reads as 0 and is created by the first increment; its parent
 *   directory must exist (VISITS_ENODIR otherwise) and be writable (-EACCES, -EROFS).
 * - A corrupt file fails with VISITS_ECORRUPT and is left untouched. A directory, FIFO
 *   or other non-regular file at path fails with VISITS_ENOTREG.
 * - Symlinks: if path (or a link it leads to) is a symbolic link, it is followed at open
 *   (and again by visits_reopen()); the counter is the final target, and writes replace
 *   that file in its own directory, so the link stays a link. A dangling link names the
 *   file to create.
 * - Temps ".<name>.tmp-<suffix>" left in the directory by a writer that died are removed,
 *   best effort; a temp that a live writer still owns (it holds a lock on it) is never
 *   removed. The target's name may have at most 237 bytes, so that its temps fit in
 *   NAME_MAX (-ENAMETOOLONG otherwise).
 *
 * Locking across processes: a write cycle locks the counter file itself (flock) and then
 * checks that the locked file is still the one at the path, retrying if it is not; the
 * directory is locked shared meanwhile, and exclusively while a missing file is created.
 * So any number of handles, in this and other processes, may share one file and never
 * lose an increment, whatever other programs delete or rename beside it (temps, stray
 * lock files). Local filesystems (ext4, xfs, btrfs, tmpfs) are supported.
 *
 * Thread safety: the handle may be used by any number of threads at once (but not
 * concurrently with visits_close()).
 */
VISITS_API int visits_open(const char *path, const visits_options *opts, visits_counter **out);

/* visits_add(c, 1, value_out). */
VISITS_API int visits_incr(visits_counter *c, uint64_t *value_out);

/*
 * Add n (may be 0) to the counter. On success *value_out (nullable) is the value just
 * after this addition. In VISITS_SYNC_ALWAYS mode success means the value is durable.
 * Blocks until then; concurrent callers share write cycles.
 *
 * On a write error (e.g. -ENOSPC, -EACCES, -EXDEV) nothing is added, the file keeps its
 * old value and no temp file is left. If an fsync fails (e.g. -EIO) the outcome of that
 * write is unknown and the handle is failed: every later visits_add() returns
 * VISITS_EFAILED until visits_reopen() succeeds; visits_read() still works.
 * Returns VISITS_EOVERFLOW (nothing added) if the value would exceed UINT64_MAX, and
 * VISITS_ECORRUPT if another program corrupted the file meanwhile (it is left as is).
 * In VISITS_SYNC_INTERVAL mode the latest background write error is returned until a
 * write succeeds again; increments that got that error are not counted.
 * Called from one of this handle's own callbacks it returns VISITS_EDEADLK.
 *
 * The count never goes back (see "Files that change behind a handle" below).
 */
VISITS_API int visits_add(visits_counter *c, uint64_t n, uint64_t *value_out);

/*
 * Raise the counter to at least floor: the new value is the larger of the current value
 * and floor (never lower). Same durability, locking, group commit and errors as
 * visits_add(); *value_out (nullable) is the value just after this call. A raise that
 * changes nothing still confirms the value is on disk in always mode.
 */
VISITS_API int visits_raise(visits_counter *c, uint64_t floor, uint64_t *value_out);

/*
 * Asynchronous forms, for event loops. They never block on the disk: they queue the
 * operation and return at once.
 *
 * Returns 0 when queued: then cb(arg, err, value) is called exactly once, later, with
 * err 0 and the value just after this operation (as visits_add/visits_raise would return
 * it), or with the error that visits_add/visits_raise would have returned. Returns a
 * negative code when not queued (cb is then never called): VISITS_EINVAL (c or cb NULL),
 * VISITS_ECLOSING (visits_close() has begun), -ENOMEM.
 *
 * When: in always mode once the write cycle that carries the operation has made it
 * durable (or failed); in interval mode as soon as it is accepted, without waiting for
 * the disk. Operations of one handle take effect in the order they were queued (blocking
 * and asynchronous alike), and callbacks run in that same order.
 *
 * Which thread: callbacks run on the handle's own committer thread, one at a time, never
 * inside visits_add_async() itself. A callback should return quickly (the next write
 * cycle waits for it); it may call visits_add_async(), visits_raise_async(),
 * visits_read(), visits_get_stats() and visits_path() on any handle, and blocking calls
 * on other handles; it must not call visits_close() or visits_reopen() on its own handle,
 * and visits_add()/visits_raise() on its own handle return VISITS_EDEADLK.
 *
 * Close: visits_close() first completes every operation already queued (writing them,
 * in always and interval mode) and runs their callbacks; when it returns no callback of
 * the handle runs any more. Operations queued after close began are refused with
 * VISITS_ECLOSING (returned, no callback).
 */
typedef void (*visits_done_cb)(void *arg, int err, uint64_t value);
VISITS_API int visits_add_async(visits_counter *c, uint64_t n, visits_done_cb cb, void *arg);
VISITS_API int visits_raise_async(visits_counter *c, uint64_t floor, visits_done_cb cb, void *arg);

/*
 * The current value: the file's value (re-read, so writes by other processes are seen)
 * plus increments this handle has acknowledged but not yet written (interval mode).
 * Never waits for a write cycle in progress: then it returns the last value this handle
 * knows. Never lower than a value this handle has returned or seen, unless an operator
 * set the counter lower (visits_set_file).
 */
VISITS_API int visits_read(visits_counter *c, uint64_t *value_out);

/*
 * Files that change behind a handle. A handle remembers the highest value it has written
 * or read (its "known" value) and never counts below it, except to follow an operator:
 * - If the file vanished (deleted by an operator, or the directory replaced by an empty
 *   one), the next write creates it from the known value plus the increment, not from 0:
 *   no acknowledged increment is lost. Counted in visits_stats.recreated.
 * - If the file holds less than the known value because it was replaced or restored from
 *   an older snapshot, the next write counts on from the known value (counted in
 *   visits_stats.rolled_back), and visits_read() keeps answering the known value.
 *   Increments that other handles made into such a file before this handle's write are
 *   absorbed by the maximum.
 * - If it holds less because an operator set it with visits_set_file() (which leaves a
 *   marker ".<name>.set" beside it), the handle follows: the set value is the new base,
 *   and in interval mode the increments acknowledged but not yet written are added on
 *   top of it. Counted in visits_stats.sets_followed.
 * - If the path's directory is no longer the one the handle opened (renamed away, or
 *   replaced by a new directory), the next cycle reopens the directory at the path and
 *   writes there, carrying the known value over. Counted in visits_stats.dir_changed.
 * A handle opened after such a change knows only what it reads then. A relative path is
 * taken relative to the working directory at visits_open().
 */

/*
 * Reopen a handle on its path: resolve the path again (symlinks included), open the
 * directory and read the file, keeping the known value; a failed handle (see visits_add)
 * becomes usable again. Operations queued meanwhile wait and then run on the reopened
 * file. Returns 0, or an error with the handle left as it was (failed if it was).
 * Blocking; returns VISITS_EDEADLK from the handle's own callback.
 */
VISITS_API int visits_reopen(visits_counter *c);

/* The path given to visits_open() (owned by the handle). */
VISITS_API const char *visits_path(const visits_counter *c);

/*
 * Counters of the work a handle has done, for metrics and readiness. Like the options,
 * the structure grows at its end; visits_get_stats() (a macro) passes the caller's size
 * and the library fills only that much.
 */
typedef struct visits_stats {
    uint64_t cycles;           /* write cycles completed successfully */
    uint64_t cycles_failed;    /* write cycles that returned an error */
    uint64_t increments;       /* operations made durable by those cycles */
    uint64_t cycle_ns_total;   /* summed duration of the successful cycles */
    uint64_t cycle_ns_last;    /* duration of the latest successful cycle */
    uint64_t batch_max;        /* largest number of operations one cycle carried */
    int failed;                /* 1 if the handle is failed (see visits_add) */
    int last_error;            /* the latest cycle's result: 0 or a negative code */
    int failed_error;          /* with failed: the error that failed the handle */
    int reserved0;             /* 0 */
    uint64_t cycle_running_ns; /* how long the write cycle now running has run (0: none):
                                  a disk that hangs shows here */
    uint64_t known;            /* the highest value this handle has written or read */
    uint64_t recreated;        /* writes that found the file gone and created it again */
    uint64_t rolled_back;      /* writes that found less than the known value */
    uint64_t dir_changed;      /* cycles that found another directory at the path */
    uint64_t sets_followed;    /* operator sets (visits_set_file) followed below the known
                                  value */
    uint64_t lock_retries;     /* locks retaken: the locked file was no longer the one at
                                  the path (another writer replaced it meanwhile) */
    uint64_t reopens;          /* successful visits_reopen() calls */
    uint64_t gathers;          /* cycles that waited for callers to join (always mode) */
    uint64_t gathers_vain;     /* ... of which the wait ended without all of them */
    uint64_t queued;           /* operations waiting for a write cycle now */
} visits_stats;

/* Copy the handle's counters into *out. Thread-safe; never blocks on the disk. */
#define visits_get_stats(c, out) visits_get_stats_sized((c), (out), sizeof(*(out)))
VISITS_API int visits_get_stats_sized(visits_counter *c, visits_stats *out, size_t size);

/*
 * Complete queued operations and write pending increments (interval mode), release the
 * handle and its files. NULL is a no-op returning 0. Returns the result of the final
 * write: an error means pending increments may be lost (and VISITS_EFAILED that the
 * handle had failed). The handle is freed in every case. Must not be called from the
 * handle's own callback nor concurrently with other calls on the handle.
 */
VISITS_API int visits_close(visits_counter *c);

/*
 * Parse a counter file's contents: decimal digits, optionally followed by one "\n",
 * no leading zeros except "0", at most UINT64_MAX. Returns 0 and *value_out, or
 * VISITS_ECORRUPT. Pure and thread-safe.
 */
VISITS_API int visits_parse(const char *buf, size_t len, uint64_t *value_out);

/*
 * Read and validate the counter file at path without opening a handle, taking a lock or
 * writing anything (works on read-only files and directories). A missing file gives 0
 * with *exists_out = 0 (nullable). Symlinks are followed.
 */
VISITS_API int visits_read_file(const char *path, uint64_t *value_out, int *exists_out);

/* What visits_set_file() replaced. */
typedef struct visits_prev {
    int state;      /* 0: a valid value, VISITS_ECORRUPT: corrupt, -ENOENT: no file */
    uint64_t value; /* the old value when state == 0 */
    size_t len;     /* with state == VISITS_ECORRUPT: bytes of the old file, up to 32 */
    char bytes[VISITS_MAX_FILE_SIZE]; /* ...and the first len of them */
} visits_prev;

/*
 * Operator command: durably replace the counter at path with value, whatever the file
 * held (a corrupt file included), under the same lock as the writers. *prev_out
 * (nullable) says what was replaced. Handles open on the file take the new value at their
 * next write or read, also when it is lower than what they knew: the marker
 * ".<name>.set" left beside the file tells them it was the operator (see "Files that
 * change behind a handle"). opts (nullable) gives the mode of a new file.
 */
VISITS_API int visits_set_file(const char *path, uint64_t value, const visits_options *opts,
                               visits_prev *prev_out);

#ifdef __cplusplus
}
#endif

#endif /* VISITS_H */
