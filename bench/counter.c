/*
 * bench/counter: durable increments per second on one handle in `always` mode at 1, 16,
 * 64 and 256 threads, side by side with the naive sequence (temp write, fsync, rename,
 * directory fsync, one at a time) on the same disk in the same run, with the group
 * commit's figures from visits_get_stats(): the mean batch (increments per cycle, also
 * over the number of threads), the mean cycle, and the cycles that gathered (waited for
 * the callers of the previous cycle) and of those the waits that ended by their deadline.
 * bench/peers/durable.py runs the same against Redis and SQLite, in rounds.
 *
 * usage: counter [DIR] [SECONDS-PER-ROW]   (DIR is created if missing; default ./bench-data)
 */
#include <visits.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path, int err)
{
    fprintf(stderr, "counter: %s: %s: %s\n", what, path, visits_strerror(err));
    exit(1);
}

/* The reference: what a careful program does without batching. */
static double naive_loop(const char *dir, double seconds)
{
    char path[4096], tmp[4096], buf[32];
    uint64_t value = 0;
    double start = now_s(), end = start + seconds;
    long ops = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        die("open", dir, -errno);
    snprintf(path, sizeof(path), "%s/naive", dir);
    snprintf(tmp, sizeof(tmp), "%s/.naive.tmp", dir);
    while (now_s() < end) {
        int len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)++value);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, (size_t)len) != len || fsync(fd) != 0 || close(fd) != 0 ||
            rename(tmp, path) != 0 || fsync(dfd) != 0)
            die("naive replace", path, -errno);
        ops++;
    }
    close(dfd);
    return (double)ops / (now_s() - start);
}

struct run {
    visits_counter *c;
    double end;
    long ops;
};

static void *worker(void *arg)
{
    struct run *r = arg;
    long ops = 0;
    int err;

    while (now_s() < r->end) {
        if ((err = visits_incr(r->c, NULL)) != 0)
            die("visits_incr", visits_path(r->c), err);
        ops++;
    }
    __atomic_add_fetch(&r->ops, ops, __ATOMIC_RELAXED);
    return NULL;
}

static double library_run(const char *path, int threads, double seconds, visits_stats *st)
{
    pthread_t tids[256];
    struct run r = {NULL, 0, 0};
    double start;
    int i, err;

    if ((err = visits_open(path, NULL, &r.c)) != 0)
        die("visits_open", path, err);
    start = now_s();
    r.end = start + seconds;
    for (i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, worker, &r) != 0)
            die("pthread_create", path, -errno);
    for (i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    visits_get_stats(r.c, st);
    if ((err = visits_close(r.c)) != 0)
        die("visits_close", path, err);
    return (double)r.ops / (now_s() - start);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench-data";
    double seconds = argc > 2 ? atof(argv[2]) : 5.0;
    static const int threads[] = {1, 16, 64, 256};
    char path[4096];
    double naive;
    size_t i;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("mkdir", dir, -errno);
    snprintf(path, sizeof(path), "%s/visits", dir);
    printf("libvisits %s, dir %s, %.1f s per row\n\n", visits_version_string(), dir, seconds);
    naive = naive_loop(dir, seconds);
    printf("%-16s %7s %9s %9s %9s %8s %8s %8s %8s %6s\n", "what", "threads", "incr/s", "vs naive",
           "cycles/s", "batch", "batch/N", "cycle ms", "gathers", "vain");
    printf("%-16s %7d %9.0f %8.2fx %9.0f %8.2f %8.2f %8s %8s %6s\n", "naive replace", 1, naive, 1.0,
           naive, 1.0, 1.0, "-", "-", "-");
    for (i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
        visits_stats st;
        double rate = library_run(path, threads[i], seconds, &st);
        double batch = st.cycles ? (double)st.increments / (double)st.cycles : 0.0;
        printf("%-16s %7d %9.0f %8.2fx %9.0f %8.2f %8.2f %8.2f %8llu %6llu\n", "libvisits always",
               threads[i], rate, rate / naive, (double)st.cycles / seconds, batch,
               batch / threads[i],
               st.cycles ? (double)st.cycle_ns_total / (double)st.cycles / 1e6 : 0.0,
               (unsigned long long)st.gathers, (unsigned long long)st.gathers_vain);
    }
    printf("\ntargets: 1 thread >= 0.90x naive; mean batch >= 0.8 N (N closed-loop threads)\n");
    return 0;
}
