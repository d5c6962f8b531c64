/* config.h: visits-server's settings, from its flags and environment variables. */
#ifndef VISITS_CONFIG_H
#define VISITS_CONFIG_H

#include "log.h"
#include "peers.h"

#include <stddef.h>
#include <visits.h>

struct server_config {
    char bind[64];       /* numeric IPv4 or IPv6 address */
    unsigned port;       /* 0: the kernel picks a free port */
    char *data_dir;      /* malloc'd */
    char *counter_path;  /* malloc'd: data_dir + "/visits" */
    unsigned threads;    /* event-loop threads */
    visits_options opts; /* sync mode and interval */
    unsigned stall_ms;   /* --stall-ms: a longer write cycle makes the server not ready */
    char pod_name[254];
    struct peer_source *peers; /* malloc'd: --peers */
    size_t npeers;
    struct peer_source peers_dns; /* --peers-dns; host "" when not given */
    unsigned peer_timeout_ms;     /* --peer-timeout-ms */
    int http2;                    /* --http2: h2c (prior knowledge and Upgrade) on */
    unsigned max_connections;     /* --max-connections; 0 until config_parse derives it */
    unsigned nofile;              /* RLIMIT_NOFILE (soft) at start, for the startup line */
    enum log_format log_format;   /* --log-format */
};

enum { CONFIG_RUN = -1 };
/* Fills cfg from the environment, then argv (flags win). Returns CONFIG_RUN to go on, or
 * an exit status (0 after --help/--version/--print-routes, 2 after a usage error, with
 * a one-line reason printed on stderr). Sets the log format and pod name of log.c
 * (log_configure): the format first, so that the errors about other values are written in
 * it. */
int config_parse(struct server_config *cfg, int argc, char **argv);
void config_free(struct server_config *cfg);
/* The --max-connections default: the descriptors RLIMIT_NOFILE leaves once the server's
 * own (stdio, listener, event loops, counter, log, resolver) and the peers' are set
 * aside. */
unsigned config_default_max_connections(const struct server_config *cfg, unsigned nofile);
/* "always" or "interval:MS" into buf. */
const char *config_sync_name(const struct server_config *cfg, char *buf, size_t size);

#endif /* VISITS_CONFIG_H */
