/* peers.h: the peers of GET /cluster as --peers and --peers-dns give them. */
#ifndef VISITS_PEERS_H
#define VISITS_PEERS_H

#include <stddef.h>
#include <stdint.h>

#define PEERS_MAX 64      /* addresses one /cluster request queries */
#define PEER_HOST_MAX 253 /* a DNS name */

struct peer_source {
    char host[PEER_HOST_MAX + 1]; /* IPv4, IPv6 (no brackets) or a DNS name */
    uint16_t port;
    int every_address; /* --peers-dns: every address of the name is a peer */
    int numeric;       /* host is an IP address: nothing to resolve */
};

/* Parses "HOST:PORT[,HOST:PORT...]" (IPv6 as "[ADDR]:PORT"; every_address 0, at most
 * PEERS_MAX) or one "NAME:PORT" (every_address 1) into a malloc'd array; "" gives none.
 * Returns 0, or -1 with the offending entry and the reason in err. */
int peers_parse(const char *spec, int every_address, struct peer_source **out, size_t *count,
                char *err, size_t errsize);

#endif /* VISITS_PEERS_H */
