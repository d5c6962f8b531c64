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
 * them. There is no global or per-handle "last error".
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

/* Version: these macros are the single source (CMake reads them). */
#define VISITS_VERSION_MAJOR 0
#define VISITS_VERSION_MINOR 1
#define VISITS_VERSION_PATCH 0
#define VISITS_VERSION_STRING "0.1.0"
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
    XX(ESYMLOOP, -20007, "too many levels of symbolic links")

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

/* The largest file the library accepts as a counter (longer files are corrupt). */
#define VISITS_MAX_FILE_SIZE 32

typedef enum visits_sync_mode {
    /* Default. visits_incr()/visits_add() return after the new value is on disk
     * (temp written and fsynced, renamed, directory fsynced). Concurrent callers share
     * write cycles (group commit). */
    VISITS_SYNC_ALWAYS = 0,
    /* visits_incr()/visits_add() return at once with the new value; a background thread
     * writes it within interval_ms, and visits_close() writes what is left. A crash may
     * lose up to interval_ms of increments; the file is still never corrupt. */
    VISITS_SYNC_INTERVAL = 1
} visits_sync_mode;

typedef struct visits_options {
    visits_sync_mode sync; /* VISITS_SYNC_ALWAYS (default) or VISITS_SYNC_INTERVAL */
    unsigned interval_ms;  /* VISITS_SYNC_INTERVAL period; 1..3600000, default 1000 */
    unsigned mode;         /* permission bits of a newly created file, default 0644; the
                              process umask applies. An existing file keeps its mode. */
} visits_options;

/* Fill *opts with the defaults. Always start from this: new fields may be added. */
VISITS_API void visits_options_init(visits_options *opts);

/* Opaque counter handle. */
typedef struct visits_counter visits_counter;

/*
 * Open the counter stored at path and store a new handle in *out (NULL on error).
 * opts may be NULL for the defaults.
 *
 * - A missing file reads as 0 and is created by the first increment; its parent
 *   directory must exist (VISITS_ENODIR otherwise).
 * - A corrupt file fails with VISITS_ECORRUPT and is left untouched. A directory, FIFO
 *   or other non-regular file at path fails with VISITS_ENOTREG.
 * - Symlinks: if path (or a link it leads to) is a symbolic link, it is followed once at
 *   open; the counter is the final target, and writes replace that file in its own
 *   directory, so the link stays a link. A dangling link names the file to create.
 * - A sibling lock file ".<name>.lock" is created next to the target (the directory
 *   must be writable). Regular files ".<name>.tmp-<suffix>" (temps left there by a crash)
 *   are removed, best effort. The target's name may have at most 237 bytes, so that its
 *   temps fit in NAME_MAX (-ENAMETOOLONG otherwise).
 *
 * Thread safety: the handle may be used by any number of threads at once (but not
 * concurrently with visits_close()). Several handles, in this or other processes, may
 * share one file: increments are serialised by an advisory lock and never lost.
 */
VISITS_API int visits_open(const char *path, const visits_options *opts, visits_counter **out);

/* visits_add(c, 1, value_out). */
VISITS_API int visits_incr(visits_counter *c, uint64_t *value_out);

/*
 * Add n (may be 0) to the counter. On success *value_out (nullable) is the value just
 * after this addition. In VISITS_SYNC_ALWAYS mode success means the value is durable.
 *
 * On a write error (e.g. -ENOSPC, -EACCES, -EXDEV) nothing is added, the file keeps its
 * old value and no temp file is left. If an fsync fails (e.g. -EIO) the outcome of that
 * write is unknown and the handle is failed: every later visits_add() returns
 * VISITS_EFAILED until the counter is reopened; visits_read() still works.
 * Returns VISITS_EOVERFLOW (nothing added) if the value would exceed UINT64_MAX, and
 * VISITS_ECORRUPT if another program corrupted the file meanwhile.
 * In VISITS_SYNC_INTERVAL mode the latest background write error is returned until a
 * write succeeds again; increments that got that error are not counted.
 */
VISITS_API int visits_add(visits_counter *c, uint64_t n, uint64_t *value_out);

/*
 * The current value: the file's value (re-read, so writes by other processes are seen)
 * plus increments this handle has acknowledged but not yet written (interval mode).
 * Never waits for a write cycle in progress: then it returns the last value this handle
 * knows, which is never lower than one it has returned.
 */
VISITS_API int visits_read(visits_counter *c, uint64_t *value_out);

/* The path given to visits_open() (owned by the handle). */
VISITS_API const char *visits_path(const visits_counter *c);

/* Counters of the work a handle has done, for metrics. */
typedef struct visits_stats {
    uint64_t cycles;         /* write cycles completed successfully */
    uint64_t cycles_failed;  /* write cycles that returned an error */
    uint64_t increments;     /* visits_add() calls made durable by those cycles */
    uint64_t cycle_ns_total; /* summed duration of the successful cycles */
    uint64_t cycle_ns_last;  /* duration of the latest successful cycle */
    uint64_t batch_max;      /* largest number of calls one cycle carried */
    int failed;              /* 1 if the handle is failed (see visits_add) */
    int last_error;          /* the latest cycle's result: 0 or a negative code */
} visits_stats;

/* Copy the handle's counters into *out. Thread-safe; never touches the disk. */
VISITS_API int visits_get_stats(visits_counter *c, visits_stats *out);

/*
 * Write pending increments (interval mode), release the handle and its files. NULL is a
 * no-op returning 0. Returns the result of the final write: an error means pending
 * increments may be lost (and VISITS_EFAILED that the handle had failed). The handle is
 * freed in every case.
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
 * held (a corrupt file included), under the cross-process lock. *prev_out (nullable)
 * says what was replaced. Handles open on the file see the new value at their next
 * write or read. opts (nullable) gives the mode of a new file.
 */
VISITS_API int visits_set_file(const char *path, uint64_t value, const visits_options *opts,
                               visits_prev *prev_out);

#ifdef __cplusplus
}
#endif

#endif /* VISITS_H */
