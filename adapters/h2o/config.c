/*
 * config.c: flags and environment variables of visits-server (the flag wins).
 *
 * Each setting has a setter that checks and stores one value: 0, or -1 with the value and
 * what was expected in err; config_parse names the flag or variable it came from.
 */
#include "config.h"

#include "log.h"
#include "routes.h"
#include "text.h"

#include <h2o/version.h>

#include <arpa/inet.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEFAULT_PORT 8080
#define DEFAULT_BIND "0.0.0.0"
#define DEFAULT_DATA_DIR "/data"
#define MAX_THREADS 256
#define MAX_INTERVAL_MS 3600000u
#define MAX_CONNECTIONS 1000000u
#define FDS_BASE 32u        /* stdio, listener, counter, lock, temp, directory, log, resolver */
#define FDS_PER_THREAD 8u   /* listener's duplicate, epoll, wake-up pipes, ... of each loop */
#define FDS_PER_PEER 2u     /* a /cluster or sync connection to each peer, and slack */
#define DNS_PEERS_GUESS 64u /* --peers-dns: the peers a headless Service may list */
#define DEFAULT_PEER_TIMEOUT_MS 500
#define DEFAULT_STALL_MS 2000
#define MAX_STALL_MS 600000
#define MAX_PEER_TIMEOUT_MS 60000

/* A CPU limit of the cgroup (a container's "resources.limits.cpu"), rounded up; 0 if
 * none. cgroup v2 "cpu.max" holds "QUOTA PERIOD" or "max PERIOD"; v1 has two files. */
static unsigned cgroup_cpu_limit(void)
{
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f != NULL) {
        if (fscanf(f, "%lld %lld", &quota, &period) != 2)
            quota = -1;
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r")) != NULL) {
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r")) != NULL) {
            if (fscanf(f, "%lld", &period) != 1)
                period = 0;
            fclose(f);
        }
    }
    if (quota <= 0 || period <= 0)
        return 0;
    return (unsigned)((quota + period - 1) / period);
}

static unsigned cpu_count(void)
{
    unsigned n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        n = (unsigned)CPU_COUNT(&set);
    if (n == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (unsigned)online : 1;
    }
    unsigned limit = cgroup_cpu_limit();
    return limit != 0 && limit < n ? limit : n;
}

/* The default for the usage text: this process's limit, CPU-count threads, no peers. */
static unsigned default_max_connections(unsigned threads)
{
    struct server_config cfg;
    struct rlimit rl;
    memset(&cfg, 0, sizeof(cfg));
    cfg.threads = threads;
    return config_default_max_connections(
        &cfg, getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < UINT_MAX ? (unsigned)rl.rlim_cur
                                                                           : UINT_MAX);
}

static void usage(FILE *out)
{
    unsigned cpus = cpu_count();
    fprintf(out,
            "Usage: " SERVER_NAME " [OPTIONS]\n"
            "Serve a durable visit counter over HTTP (the counter is DIR/visits).\n"
            "\n"
            "Options (each has an environment variable; the flag wins):\n"
            "  --port N          PORT             TCP port; 0 picks a free one (default %d)\n"
            "  --bind ADDR       VISITS_BIND      IPv4 or IPv6 address to listen on (default %s)\n"
            "  --data-dir DIR    VISITS_DATA_DIR  directory of the counter file (default %s)\n"
            "  --threads N       VISITS_THREADS   event-loop threads, 1..%d (default: CPU count,\n"
            "                                     CPU limit of the cgroup included; here %u)\n"
            "  --sync MODE       VISITS_SYNC      always | interval:MS (default always)\n"
            "  --stall-ms N      VISITS_STALL_MS  a write running longer makes /ready 503,\n"
            "                                     100..%d ms (default %d)\n"
            "  --pod-name NAME   POD_NAME         name shown in responses (default: hostname)\n"
            "  --peers LIST      VISITS_PEERS     the peers /cluster asks: HOST:PORT,...\n"
            "                                     (IPv6 as [ADDR]:PORT; default none)\n"
            "  --peers-dns NAME:PORT              every address of NAME is a peer, e.g. a\n"
            "                    VISITS_PEERS_DNS headless Service (default none)\n"
            "  --peer-timeout-ms N                how long /cluster waits for the peers,\n"
            "                    VISITS_PEER_TIMEOUT_MS  1..%d ms (default %d)\n"
            "  --http2[=on|off]  VISITS_HTTP2     accept HTTP/2 over cleartext (h2c, prior\n"
            "                                     knowledge or Upgrade) (default off)\n"
            "  --max-connections N                client connections open at once, 1..1000000\n"
            "                    VISITS_MAX_CONNECTIONS  (default: what RLIMIT_NOFILE leaves;\n"
            "                                     here %u); more wait to be accepted\n"
            "  --log-format FMT                   text | json: every line on stdout and stderr\n"
            "                    VISITS_LOG_FORMAT  as text or as one JSON object (default text)\n"
            "  --print-routes    print the route table (path, methods, purpose) and exit\n"
            "  --help            print this help and exit\n"
            "  --version         print the version and exit\n"
            "\n"
            "--sync always answers GET / after the new value is on disk; interval:MS answers\n"
            "at once and writes within MS milliseconds (and at shutdown).\n"
            "GET /cluster shows every pod's count and the total: this server's own and each\n"
            "peer's GET /visits (this server among the peers is not counted twice).\n"
            "\n"
            "Routes:\n",
            DEFAULT_PORT, DEFAULT_BIND, DEFAULT_DATA_DIR, MAX_THREADS, cpus, MAX_STALL_MS,
            DEFAULT_STALL_MS, MAX_PEER_TIMEOUT_MS, DEFAULT_PEER_TIMEOUT_MS,
            default_max_connections(cpus));
    routes_print(out, "  ", 9);
    fprintf(out, "\nSIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGPWR: finish in-flight requests,\n"
                 "flush, exit 0. SIGUSR1, SIGUSR2, SIGALRM and other signals that would end the\n"
                 "process are logged and ignored.\n"
                 "Exit status: 0 on success, 1 when the server cannot start or run, 2 on bad "
                 "usage.\n");
}

static int invalid(char *err, size_t errsize, const char *value, const char *expected)
{
    snprintf(err, errsize, "invalid value '%s' (expected %s)", value, expected);
    return -1;
}

/* Strict decimal in [min, max]: digits only, no sign, no spaces. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (*s == '\0' || strlen(s) > 10)
        return -1;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int set_port(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long n;
    if (parse_uint(v, 0, 65535, &n) != 0)
        return invalid(err, errsize, v, "a port number 0..65535");
    cfg->port = (unsigned)n;
    return 0;
}

static int set_bind(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned char addr[16];
    if (strlen(v) >= sizeof(cfg->bind) ||
        (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1))
        return invalid(err, errsize, v, "a numeric IPv4 or IPv6 address, e.g. 0.0.0.0 or ::1");
    strcpy(cfg->bind, v);
    return 0;
}

static int set_data_dir(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    size_t len = strlen(v);
    if (len == 0 || len > PATH_MAX - sizeof("/visits"))
        return invalid(err, errsize, v, "a directory path");
    char *dir = strdup(v);
    if (dir == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    free(cfg->data_dir);
    cfg->data_dir = dir;
    return 0;
}

static int set_threads(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long n;
    if (parse_uint(v, 1, MAX_THREADS, &n) != 0)
        return invalid(err, errsize, v, "a number of threads 1..256");
    cfg->threads = (unsigned)n;
    return 0;
}

static int set_sync(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long ms;
    if (strcmp(v, "always") == 0) {
        cfg->opts.sync = VISITS_SYNC_ALWAYS;
    } else if (strncmp(v, "interval:", 9) == 0 && parse_uint(v + 9, 1, MAX_INTERVAL_MS, &ms) == 0) {
        cfg->opts.sync = VISITS_SYNC_INTERVAL;
        cfg->opts.interval_ms = (unsigned)ms;
    } else {
        return invalid(err, errsize, v, "always or interval:MS with MS in 1..3600000");
    }
    return 0;
}

/* A name shown in JSON and in the UTF-8 HTML pages: valid UTF-8 (so that "café" stays
 * "café" in both) without control characters. */
static int set_pod_name(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    size_t len = strlen(v), bad = 0;
    int32_t control = -1;
    char shown[4 * 80 + 1], why[64] = "";
    if (len == 0 || len >= sizeof(cfg->pod_name)) {
        snprintf(why, sizeof(why), ": %zu bytes", len);
    } else if (!utf8_printable(v, len, &bad, &control)) {
        if (control >= 0)
            snprintf(why, sizeof(why), ": the character at byte %zu is U+%04X, a control character",
                     bad + 1, (unsigned)control);
        else
            snprintf(why, sizeof(why), ": byte %zu (0x%02x) is not valid UTF-8 there", bad + 1,
                     (unsigned)(unsigned char)v[bad]);
    } else {
        memcpy(cfg->pod_name, v, len + 1);
        return 0;
    }
    /* The value as it would appear in a log, cut at 80 bytes. */
    *format_logsafe(shown, shown + sizeof(shown) - 1, v, len < 80 ? len : 80) = '\0';
    snprintf(err, errsize,
             "invalid value '%s%s' (expected 1..253 bytes of UTF-8 text without control "
             "characters%s)",
             shown, len > 80 ? "..." : "", why);
    return -1;
}

static int set_peer_list(struct server_config *cfg, const char *v, int dns, char *err,
                         size_t errsize)
{
    char why[400];
    struct peer_source *list;
    size_t n;
    if (peers_parse(v, dns, &list, &n, why, sizeof(why)) != 0) {
        snprintf(err, errsize, "invalid value '%s': %s (expected %s)", v, why,
                 dns ? "NAME:PORT" : "HOST:PORT[,HOST:PORT...]");
        return -1;
    }
    if (dns) {
        memset(&cfg->peers_dns, 0, sizeof(cfg->peers_dns));
        if (n == 1)
            cfg->peers_dns = list[0];
        free(list);
    } else {
        free(cfg->peers);
        cfg->peers = list;
        cfg->npeers = n;
    }
    return 0;
}

static int set_peers(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    return set_peer_list(cfg, v, 0, err, errsize);
}

static int set_peers_dns(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    return set_peer_list(cfg, v, 1, err, errsize);
}

static int set_max_connections(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long n;
    if (parse_uint(v, 1, MAX_CONNECTIONS, &n) != 0)
        return invalid(err, errsize, v, "a number of connections 1..1000000");
    cfg->max_connections = (unsigned)n;
    return 0;
}

unsigned config_default_max_connections(const struct server_config *cfg, unsigned nofile)
{
    unsigned peers = (unsigned)cfg->npeers + (cfg->peers_dns.host[0] != '\0' ? DNS_PEERS_GUESS : 0);
    unsigned long long reserve = FDS_BASE + (unsigned long long)FDS_PER_THREAD * cfg->threads +
                                 (unsigned long long)FDS_PER_PEER * peers;
    unsigned long long n = nofile > reserve + 16 ? nofile - reserve : nofile / 2;
    if (n < 1)
        n = 1;
    return n > MAX_CONNECTIONS ? MAX_CONNECTIONS : (unsigned)n;
}

/* A switch: --http2 alone turns it on; --http2=on|off and the variable take 1, 0, on,
 * off, true, false, yes, no. */
static int set_http2(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    static const char *const on[] = {"1", "on", "true", "yes"}, *const off[] = {"0", "off", "false",
                                                                                "no"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, on[i]) == 0 || strcasecmp(v, off[i]) == 0) {
            cfg->http2 = strcasecmp(v, on[i]) == 0;
            return 0;
        }
    }
    return invalid(err, errsize, v, "on or off");
}

static int set_peer_timeout(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long n;
    if (parse_uint(v, 1, MAX_PEER_TIMEOUT_MS, &n) != 0)
        return invalid(err, errsize, v, "milliseconds 1..60000");
    cfg->peer_timeout_ms = (unsigned)n;
    return 0;
}

static int set_stall(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    unsigned long n;
    if (parse_uint(v, 100, MAX_STALL_MS, &n) != 0)
        return invalid(err, errsize, v, "milliseconds 100..600000");
    cfg->stall_ms = (unsigned)n;
    return 0;
}

static int set_log_format(struct server_config *cfg, const char *v, char *err, size_t errsize)
{
    if (strcmp(v, "text") == 0)
        cfg->log_format = LOG_TEXT;
    else if (strcmp(v, "json") == 0)
        cfg->log_format = LOG_JSON;
    else
        return invalid(err, errsize, v, "text or json");
    return 0;
}

typedef int (*setter)(struct server_config *, const char *value, char *err, size_t errsize);
static const struct option_def {
    const char *flag;
    const char *env;
    setter set;
} options[] = {
    {"--port", "PORT", set_port},
    {"--bind", "VISITS_BIND", set_bind},
    {"--data-dir", "VISITS_DATA_DIR", set_data_dir},
    {"--threads", "VISITS_THREADS", set_threads},
    {"--sync", "VISITS_SYNC", set_sync},
    {"--stall-ms", "VISITS_STALL_MS", set_stall},
    {"--pod-name", "POD_NAME", set_pod_name},
    {"--peers", "VISITS_PEERS", set_peers},
    {"--peers-dns", "VISITS_PEERS_DNS", set_peers_dns},
    {"--peer-timeout-ms", "VISITS_PEER_TIMEOUT_MS", set_peer_timeout},
    {"--http2", "VISITS_HTTP2", set_http2},
    {"--max-connections", "VISITS_MAX_CONNECTIONS", set_max_connections},
    {"--log-format", "VISITS_LOG_FORMAT", set_log_format},
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static int set_defaults(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = DEFAULT_PORT;
    strcpy(cfg->bind, DEFAULT_BIND);
    cfg->threads = cpu_count();
    if (cfg->threads > MAX_THREADS)
        cfg->threads = MAX_THREADS;
    visits_options_init(&cfg->opts);
    cfg->peer_timeout_ms = DEFAULT_PEER_TIMEOUT_MS;
    cfg->stall_ms = DEFAULT_STALL_MS;
    if (gethostname(cfg->pod_name, sizeof(cfg->pod_name)) != 0 || cfg->pod_name[0] == '\0')
        strcpy(cfg->pod_name, "unknown");
    cfg->pod_name[sizeof(cfg->pod_name) - 1] = '\0';
    cfg->data_dir = strdup(DEFAULT_DATA_DIR);
    return cfg->data_dir != NULL ? 0 : -1;
}

/* The counter's path from the data directory. */
static int set_counter_path(struct server_config *cfg)
{
    size_t len = strlen(cfg->data_dir);
    while (len > 1 && cfg->data_dir[len - 1] == '/')
        cfg->data_dir[--len] = '\0';
    cfg->counter_path = malloc(len + sizeof("/visits"));
    if (cfg->counter_path == NULL)
        return -1;
    sprintf(cfg->counter_path, "%s%s", cfg->data_dir,
            strcmp(cfg->data_dir, "/") == 0 ? "visits" : "/visits");
    return 0;
}

/* The option argv[*i] names, and its value (taken from the next argument or after '=');
 * NUM_OPTIONS when it names none. */
static size_t find_option(int argc, char **argv, int *i, const char **value)
{
    const char *arg = argv[*i];
    for (size_t j = 0; j < NUM_OPTIONS; j++) {
        size_t flen = strlen(options[j].flag);
        if (strcmp(arg, options[j].flag) == 0) {
            if (options[j].set == set_http2) /* a switch: no value follows */
                *value = "on";
            else
                *value = *i + 1 < argc ? argv[++*i] : NULL;
            return j;
        }
        if (strncmp(arg, options[j].flag, flen) == 0 && arg[flen] == '=') {
            *value = arg + flen + 1;
            return j;
        }
    }
    return NUM_OPTIONS;
}

/* The log format before anything else, so that the errors about the other values are
 * written in it: the last valid --log-format, else a valid VISITS_LOG_FORMAT. An invalid
 * value is left for config_parse to report in its turn (in text). */
static void early_log_format(struct server_config *cfg, int argc, char **argv)
{
    char err[256];
    const char *flag = NULL, *value = NULL;
    for (int i = 1; i < argc; i++) {
        size_t opt = find_option(argc, argv, &i, &value);
        if (opt < NUM_OPTIONS && options[opt].set == set_log_format && value != NULL)
            flag = value;
    }
    const char *v = flag != NULL ? flag : getenv("VISITS_LOG_FORMAT");
    if (v != NULL && set_log_format(cfg, v, err, sizeof(err)) == 0)
        log_configure(cfg->log_format, cfg->pod_name);
}

int config_parse(struct server_config *cfg, int argc, char **argv)
{
    int given[NUM_OPTIONS] = {0};
    char err[1024];
    if (set_defaults(cfg) != 0) {
        log_error("out of memory");
        return 2;
    }
    early_log_format(cfg, argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            printf(SERVER_NAME " %s (libvisits %s, libh2o %s)\n", VISITS_VERSION_STRING,
                   visits_version_string(), H2O_VERSION);
            return 0;
        }
        if (strcmp(arg, "--print-routes") == 0) {
            routes_print(stdout, "", 0);
            return 0;
        }
        size_t opt = find_option(argc, argv, &i, &value);
        if (opt == NUM_OPTIONS) {
            log_error("unknown option '%s' (see --help)", arg);
            return 2;
        }
        if (value == NULL) {
            log_error("%s: missing value (see --help)", arg);
            return 2;
        }
        if (options[opt].set(cfg, value, err, sizeof(err)) != 0) {
            log_error("%s: %s", options[opt].flag, err);
            return 2;
        }
        given[opt] = 1;
    }
    /* The environment fills in what no flag gave (a flag wins, even over a bad value). */
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (!given[i] && v != NULL && options[i].set(cfg, v, err, sizeof(err)) != 0) {
            log_error("%s: %s", options[i].env, err);
            return 2;
        }
    }
    struct rlimit rl;
    cfg->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < UINT_MAX
                      ? (unsigned)rl.rlim_cur
                      : UINT_MAX;
    if (cfg->max_connections == 0)
        cfg->max_connections = config_default_max_connections(cfg, cfg->nofile);
    if (set_counter_path(cfg) != 0) {
        log_error("out of memory");
        return 2;
    }
    log_configure(cfg->log_format, cfg->pod_name);
    return CONFIG_RUN;
}

void config_free(struct server_config *cfg)
{
    free(cfg->data_dir);
    free(cfg->counter_path);
    free(cfg->peers);
    cfg->data_dir = cfg->counter_path = NULL;
    cfg->peers = NULL;
    cfg->npeers = 0;
}

const char *config_sync_name(const struct server_config *cfg, char *buf, size_t size)
{
    if (cfg->opts.sync == VISITS_SYNC_ALWAYS)
        snprintf(buf, size, "always");
    else
        snprintf(buf, size, "interval:%u", cfg->opts.interval_ms);
    return buf;
}
