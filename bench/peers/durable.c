/*
 * bench/peers/durable: durable increments per second of one counter with N concurrent
 * writers (threads), for one system per run. bench/peers/durable.py runs it for every
 * system and writer count, with Redis through redis-benchmark, and makes the tables.
 *
 *   durable SYSTEM WRITERS SECONDS DIR
 *   durable --version      (libvisits and SQLite versions)
 *
 * SYSTEM:
 *   libvisits  one handle in `always` mode shared by the threads (group commit)
 *   naive      the careful one-at-a-time replace (temp, write, fsync, rename, directory
 *              fsync), serialised by a mutex so that N writers never lose an increment
 *   sqlite     one connection per thread; WAL, synchronous=FULL; each increment is
 *              `UPDATE counter SET v = v + 1` in its own (autocommit) transaction
 *
 * Prints one line: "SYSTEM WRITERS INCR_PER_S CYCLES_PER_S MEAN_BATCH FINAL_VALUE"
 * (cycles and batch are libvisits' visits_get_stats; "-" for the others), and for
 * libvisits then "cycles=C cycle_us=MEAN gathers=G vain=V": the write cycles and their
 * mean duration, the cycles that waited for callers to join, and how many of those waits
 * ended by their deadline. The counter files are created fresh in DIR (which must exist)
 * and removed afterwards. GATHER_US in the environment sets visits_options.gather_us
 * (default: the library's).
 */
#include <visits.h>

#ifdef VISITS_BENCH_SQLITE
#include <sqlite3.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_WRITERS 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path, const char *reason)
{
    fprintf(stderr, "durable: %s: %s: %s\n", what, path, reason);
    exit(1);
}

struct bench {
    const char *dir;
    char path[4096];
    double end;
    atomic_long ops;
    atomic_int ready; /* writers set up; the clock starts when all are */
    int writers;
    /* libvisits */
    visits_counter *c;
    /* naive */
    pthread_mutex_t mu;
    uint64_t naive_value;
    int dirfd;
};

static void wait_start(struct bench *b)
{
    atomic_fetch_add(&b->ready, 1);
    while (atomic_load(&b->ready) < b->writers + 1)
        usleep(100);
}

static void *libvisits_writer(void *arg)
{
    struct bench *b = arg;
    long ops = 0;
    int err;

    wait_start(b);
    while (now_s() < b->end) {
        if ((err = visits_incr(b->c, NULL)) != 0)
            die("visits_incr", b->path, visits_strerror(err));
        ops++;
    }
    atomic_fetch_add(&b->ops, ops);
    return NULL;
}

/* One durable replace: what a careful program does without batching. */
static void naive_replace(struct bench *b, uint64_t value)
{
    char tmp[4200], buf[32];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", value), fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", b->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)len) != len || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, b->path) != 0 || fsync(b->dirfd) != 0)
        die("naive replace", b->path, strerror(errno));
}

static void *naive_writer(void *arg)
{
    struct bench *b = arg;
    long ops = 0;

    wait_start(b);
    while (now_s() < b->end) {
        pthread_mutex_lock(&b->mu);
        naive_replace(b, ++b->naive_value);
        pthread_mutex_unlock(&b->mu);
        ops++;
    }
    atomic_fetch_add(&b->ops, ops);
    return NULL;
}

#ifdef VISITS_BENCH_SQLITE
static void sqlite_exec(sqlite3 *db, const char *path, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "durable: sqlite %s: %s: %s\n", path, sql, msg ? msg : "?");
        exit(1);
    }
}

static sqlite3 *sqlite_connect(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        die("sqlite3_open", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_busy_timeout(db, 600000);
    sqlite_exec(db, path, "PRAGMA journal_mode=WAL");
    sqlite_exec(db, path, "PRAGMA synchronous=FULL");
    return db;
}

static void *sqlite_writer(void *arg)
{
    struct bench *b = arg;
    sqlite3 *db = sqlite_connect(b->path);
    sqlite3_stmt *st;
    long ops = 0;

    if (sqlite3_prepare_v2(db, "UPDATE counter SET v = v + 1 WHERE id = 1", -1, &st, NULL) !=
        SQLITE_OK)
        die("sqlite3_prepare", b->path, sqlite3_errmsg(db));
    wait_start(b);
    while (now_s() < b->end) {
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            die("UPDATE", b->path, sqlite3_errmsg(db));
        sqlite3_reset(st);
        ops++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    atomic_fetch_add(&b->ops, ops);
    return NULL;
}

static uint64_t sqlite_setup(struct bench *b, int create)
{
    sqlite3 *db = sqlite_connect(b->path);
    sqlite3_stmt *st;
    uint64_t v = 0;

    if (create)
        sqlite_exec(db, b->path,
                    "CREATE TABLE counter(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
                    "INSERT INTO counter VALUES (1, 0)");
    if (sqlite3_prepare_v2(db, "SELECT v FROM counter WHERE id = 1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        die("SELECT", b->path, sqlite3_errmsg(db));
    v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}
#endif

/* The counter and its side files (lock, WAL, shared memory, temp). */
static void remove_files(const struct bench *b)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", ".tmp"};
    char p[4200];
    size_t i;

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", b->path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/.bench-libvisits.lock", b->dir);
    unlink(p);
}

int main(int argc, char **argv)
{
    static struct bench b;
    static pthread_t tids[MAX_WRITERS];
    void *(*fn)(void *) = NULL;
    const char *sys;
    double seconds, start, elapsed;
    uint64_t final = 0;
    visits_stats st;
    int i, err;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
#ifdef VISITS_BENCH_SQLITE
        printf("libvisits %s, SQLite %s\n", visits_version_string(), sqlite3_libversion());
#else
        printf("libvisits %s, no SQLite\n", visits_version_string());
#endif
        return 0;
    }
    if (argc != 5) {
        fputs("usage: durable libvisits|naive|sqlite WRITERS SECONDS DIR\n", stderr);
        return 2;
    }
    sys = argv[1];
    b.writers = atoi(argv[2]);
    seconds = atof(argv[3]);
    b.dir = argv[4];
    if (b.writers < 1 || b.writers > MAX_WRITERS || seconds <= 0) {
        fprintf(stderr, "durable: WRITERS must be 1..%d and SECONDS > 0\n", MAX_WRITERS);
        return 2;
    }
    memset(&st, 0, sizeof(st));
    snprintf(b.path, sizeof(b.path), "%s/bench-%s", b.dir, sys);
    remove_files(&b);
    if (strcmp(sys, "libvisits") == 0) {
        visits_options opts;
        visits_options_init(&opts);
        if (getenv("GATHER_US") != NULL)
            opts.gather_us = (unsigned)atoi(getenv("GATHER_US"));
        if ((err = visits_open(b.path, &opts, &b.c)) != 0)
            die("visits_open", b.path, visits_strerror(err));
        fn = libvisits_writer;
    } else if (strcmp(sys, "naive") == 0) {
        if ((b.dirfd = open(b.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            die("open", b.dir, strerror(errno));
        pthread_mutex_init(&b.mu, NULL);
        fn = naive_writer;
    } else if (strcmp(sys, "sqlite") == 0) {
#ifdef VISITS_BENCH_SQLITE
        sqlite_setup(&b, 1);
        fn = sqlite_writer;
#else
        die("sqlite", b.path, "built without libsqlite3-dev");
#endif
    } else {
        fprintf(stderr, "durable: unknown system '%s'\n", sys);
        return 2;
    }

    for (i = 0; i < b.writers; i++)
        if ((err = pthread_create(&tids[i], NULL, fn, &b)) != 0)
            die("pthread_create", sys, strerror(err));
    /* writers are set up (SQLite connections opened); start the clock for all at once */
    while (atomic_load(&b.ready) < b.writers)
        usleep(100);
    start = now_s();
    b.end = start + seconds;
    atomic_fetch_add(&b.ready, 1);
    for (i = 0; i < b.writers; i++)
        pthread_join(tids[i], NULL);
    elapsed = now_s() - start;

    if (b.c != NULL) {
        visits_get_stats(b.c, &st);
        if ((err = visits_close(b.c)) != 0)
            die("visits_close", b.path, visits_strerror(err));
        if ((err = visits_read_file(b.path, &final, NULL)) != 0)
            die("visits_read_file", b.path, visits_strerror(err));
    } else if (fn == naive_writer) {
        final = b.naive_value;
        close(b.dirfd);
    }
#ifdef VISITS_BENCH_SQLITE
    else
        final = sqlite_setup(&b, 0);
#endif
    if (final != (uint64_t)atomic_load(&b.ops)) {
        fprintf(stderr, "durable: %s: final value %" PRIu64 " but %ld increments returned\n",
                b.path, final, atomic_load(&b.ops));
        return 1;
    }
    remove_files(&b);
    if (fn == libvisits_writer)
        printf("%s %d %.1f %.1f %.2f %" PRIu64 " cycles=%" PRIu64 " cycle_us=%.1f gathers=%" PRIu64
               " vain=%" PRIu64 "\n",
               sys, b.writers, (double)atomic_load(&b.ops) / elapsed, (double)st.cycles / elapsed,
               st.cycles ? (double)st.increments / (double)st.cycles : 0.0, final, st.cycles,
               st.cycles ? (double)st.cycle_ns_total / (double)st.cycles / 1000.0 : 0.0, st.gathers,
               st.gathers_vain);
    else
        printf("%s %d %.1f - - %" PRIu64 "\n", sys, b.writers,
               (double)atomic_load(&b.ops) / elapsed, final);
    return 0;
}
