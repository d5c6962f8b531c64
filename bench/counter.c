/*
 * bench/counter: durable increments per second on one handle in `always` mode at 1, 8
 * and 64 threads, side by side with the naive sequence (temp write, fsync, rename,
 * directory fsync, one at a time) on the same disk in the same run.
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
    static const int threads[] = {1, 8, 64};
    char path[4096];
    double naive;
    size_t i;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("mkdir", dir, -errno);
    snprintf(path, sizeof(path), "%s/visits", dir);
    printf("libvisits %s, dir %s, %.1f s per row\n\n", visits_version_string(), dir, seconds);
    naive = naive_loop(dir, seconds);
    printf("%-30s %8s %12s %10s %12s %10s\n", "what", "threads", "incr/s", "vs naive", "cycles/s",
           "mean batch");
    printf("%-30s %8d %12.0f %9.2fx %12.0f %10.2f\n", "naive replace, one at a time", 1, naive, 1.0,
           naive, 1.0);
    for (i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
        visits_stats st;
        double rate = library_run(path, threads[i], seconds, &st);
        double cycles = (double)st.cycles / seconds;
        printf("%-30s %8d %12.0f %9.2fx %12.0f %10.2f\n", "libvisits always (group commit)",
               threads[i], rate, rate / naive, cycles,
               st.cycles ? (double)st.increments / (double)st.cycles : 0.0);
    }
    printf("\ntargets: 1 thread >= 0.90x naive, 64 threads >= 20x naive\n");
    return 0;
}
