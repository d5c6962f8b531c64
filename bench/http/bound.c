/*
 * bench/http/bound.c: the least work an HTTP/1.1 server can do per durable visit, as the
 * upper bound that visits-server is measured against in bench/http/run.sh.
 *
 * Raw epoll loops (one per thread, sockets always polled for reading, no re-arming) count
 * the requests in what they read and queue them; one committer thread adds each whole
 * queue with one visits_add() (libvisits, `always`: one durable write cycle per batch) and
 * hands the batch back through an eventfd; the loop then writes one fixed response per
 * request. No parsing beyond the end of the headers, no routing, no logging, no metrics.
 * It is a measuring stick, not a server: loopback only, no bodies, no timeouts.
 *
 * usage: bound PORT COUNTER-PATH [THREADS]   (SIGTERM ends it; the counter is on disk)
 */
#include <visits.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 8192
#define MAX_LOOPS 64

struct loop {
    int ep, efd;
    pthread_mutex_t mu; /* answers handed back by the committer */
    int *answers;
    size_t nanswers;
};

struct visit {
    int fd, loop;
};

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 6\r\n\r\nvisit\n";
static struct loop loops[MAX_LOOPS];
static int nloops, listen_fd;
static visits_counter *counter;
static unsigned char tail[MAX_FD][3]; /* last bytes read per connection (split "\r\n\r\n") */

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cv = PTHREAD_COND_INITIALIZER;
static struct visit queue[MAX_FD * 4];
static size_t queued;

static void die(const char *what, int err)
{
    fprintf(stderr, "bound: %s: %s\n", what, strerror(err));
    exit(1);
}

static void *committer_main(void *arg)
{
    static struct visit batch[sizeof(queue) / sizeof(queue[0])];
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue_mu);
        while (queued == 0)
            pthread_cond_wait(&queue_cv, &queue_mu);
        size_t n = queued;
        memcpy(batch, queue, n * sizeof(batch[0]));
        queued = 0;
        pthread_mutex_unlock(&queue_mu);

        uint64_t value;
        int err = visits_add(counter, n, &value);
        if (err != 0) {
            fprintf(stderr, "bound: visits_add: %s\n", visits_strerror(err));
            exit(1);
        }
        for (int l = 0; l < nloops; l++) {
            size_t before;
            pthread_mutex_lock(&loops[l].mu);
            before = loops[l].nanswers;
            for (size_t i = 0; i < n; i++)
                if (batch[i].loop == l)
                    loops[l].answers[loops[l].nanswers++] = batch[i].fd;
            pthread_mutex_unlock(&loops[l].mu);
            uint64_t one = 1;
            if (loops[l].nanswers != before && write(loops[l].efd, &one, sizeof(one)) < 0)
                die("eventfd write", errno);
        }
    }
    return NULL;
}

/* Requests completed by these bytes: each "\r\n\r\n" ends one (no bodies). */
static int count_requests(int fd, const char *buf, size_t len)
{
    unsigned char *t = tail[fd];
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n' && t[0] == '\r' && t[1] == '\n' && t[2] == '\r')
            n++;
        t[0] = t[1];
        t[1] = t[2];
        t[2] = c;
    }
    return n;
}

static void on_readable(int me, int fd)
{
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r <= 0) {
        if (r == 0 || errno != EAGAIN)
            close(fd);
        return;
    }
    int n = count_requests(fd, buf, (size_t)r);
    if (n == 0)
        return;
    pthread_mutex_lock(&queue_mu);
    int wake = queued == 0;
    if (queued + (size_t)n > sizeof(queue) / sizeof(queue[0])) /* never with wrk's load */
        die("too many visits queued (clients pipeline more than this bound handles)", ENOBUFS);
    for (int i = 0; i < n; i++)
        queue[queued++] = (struct visit){fd, me};
    pthread_mutex_unlock(&queue_mu);
    if (wake)
        pthread_cond_signal(&queue_cv);
}

static void answer(struct loop *l, int *fds)
{
    uint64_t x;
    if (read(l->efd, &x, sizeof(x)) < 0 && errno != EAGAIN)
        die("eventfd read", errno);
    pthread_mutex_lock(&l->mu);
    size_t n = l->nanswers;
    memcpy(fds, l->answers, n * sizeof(fds[0]));
    l->nanswers = 0;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) /* 90 bytes into an idle socket: never partial here */
        if (write(fds[i], response, sizeof(response) - 1) != (ssize_t)(sizeof(response) - 1))
            shutdown(fds[i], SHUT_RDWR);
}

static void *loop_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct loop *l = &loops[me];
    struct epoll_event events[256];
    int *fds = malloc(sizeof(queue) / sizeof(queue[0]) * sizeof(int));
    if (fds == NULL)
        die("malloc", ENOMEM);
    for (;;) {
        int n = epoll_wait(l->ep, events, 256, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd, c;
            if (fd == l->efd) {
                answer(l, fds);
                continue;
            }
            if (fd != listen_fd) {
                on_readable(me, fd);
                continue;
            }
            while ((c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                int one = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                if (c >= MAX_FD) {
                    close(c);
                    continue;
                }
                memset(tail[c], 0, sizeof(tail[c]));
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c, &ev) != 0)
                    die("epoll_ctl", errno);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: bound PORT COUNTER-PATH [THREADS]\n");
        return 2;
    }
    long threads = argc == 4 ? strtol(argv[3], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    nloops = threads < 1 ? 1 : threads > MAX_LOOPS ? MAX_LOOPS : (int)threads;
    int err = visits_open(argv[2], NULL, &counter);
    if (err != 0) {
        fprintf(stderr, "bound: %s: %s\n", argv[2], visits_strerror(err));
        return 1;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)strtol(argv[1], NULL, 10)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(listen_fd, 1024))
        die(argv[1], errno);

    for (int i = 0; i < nloops; i++) {
        struct loop *l = &loops[i];
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listen_fd};
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        l->answers = malloc(sizeof(queue) / sizeof(queue[0]) * sizeof(int));
        if (l->ep < 0 || l->efd < 0 || l->answers == NULL)
            die("loop set-up", errno);
        struct epoll_event eev = {.events = EPOLLIN, .data.fd = l->efd};
        pthread_mutex_init(&l->mu, NULL);
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, listen_fd, &lev) ||
            epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &eev))
            die("epoll_ctl", errno);
    }
    pthread_t tid;
    if ((err = pthread_create(&tid, NULL, committer_main, NULL)) != 0)
        die("pthread_create", err);
    for (int i = 1; i < nloops; i++)
        if ((err = pthread_create(&tid, NULL, loop_main, (void *)(intptr_t)i)) != 0)
            die("pthread_create", err);
    loop_main((void *)(intptr_t)0);
    return 0;
}
