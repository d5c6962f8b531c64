/*
 * peers.c: who the other pods are, as the flags say: --peers HOST:PORT,... (each entry is
 * one peer: its first address) and --peers-dns NAME:PORT (every address of NAME is a
 * peer: a StatefulSet's headless Service lists one per pod). resolver.c turns them into
 * addresses.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* One "HOST:PORT" (IPv6 as "[ADDR]:PORT") of len bytes into *out. */
static int parse_one(const char *s, size_t len, struct peer_source *out, char *err, size_t errsize)
{
    const char *host = s, *colon;
    size_t hlen;
    memset(out, 0, sizeof(*out));
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || close + 1 >= s + len || close[1] != ':') {
            snprintf(err, errsize, "'%.*s': expected [IPv6]:PORT", (int)len, s);
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (const char *p = s; p < s + len; p++)
            if (*p == ':')
                colon = p;
        if (colon == NULL) {
            snprintf(err, errsize, "'%.*s': no port", (int)len, s);
            return -1;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen > PEER_HOST_MAX) {
        snprintf(err, errsize, "'%.*s': the host must have 1..%d characters", (int)len, s,
                 PEER_HOST_MAX);
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    unsigned char addr[16];
    if (host != s) {
        if (inet_pton(AF_INET6, out->host, addr) != 1) {
            snprintf(err, errsize, "'%.*s': '%s' is not an IPv6 address", (int)len, s, out->host);
            return -1;
        }
        out->numeric = 1;
    } else if (inet_pton(AF_INET, out->host, addr) == 1) {
        out->numeric = 1;
    } else {
        for (size_t i = 0; i < hlen; i++)
            if (!is_name_char(out->host[i])) {
                snprintf(err, errsize,
                         "'%.*s': '%s' is neither an IP address nor a DNS name (IPv6 goes in "
                         "brackets)",
                         (int)len, s, out->host);
                return -1;
            }
    }
    const char *port = colon + 1;
    size_t plen = (size_t)(s + len - port);
    unsigned long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (port[i] < '0' || port[i] > '9' || i >= 5) {
            v = 0;
            break;
        }
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v == 0 || v > 65535) {
        snprintf(err, errsize, "'%.*s': the port must be 1..65535", (int)len, s);
        return -1;
    }
    out->port = (uint16_t)v;
    return 0;
}

int peers_parse(const char *spec, int every_address, struct peer_source **out, size_t *count,
                char *err, size_t errsize)
{
    struct peer_source *list = NULL;
    size_t n = 0;
    *out = NULL;
    *count = 0;
    if (*spec == '\0')
        return 0; /* an empty list: no peers */
    for (const char *p = spec;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == (every_address ? 1 : PEERS_MAX)) {
            snprintf(err, errsize, every_address ? "one NAME:PORT only" : "more than %d peers",
                     PEERS_MAX);
            goto Error;
        }
        struct peer_source *grown = realloc(list, (n + 1) * sizeof(*list));
        if (grown == NULL) {
            snprintf(err, errsize, "out of memory");
            goto Error;
        }
        list = grown;
        if (parse_one(p, len, &list[n], err, errsize) != 0)
            goto Error;
        list[n++].every_address = every_address;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = list;
    *count = n;
    return 0;
Error:
    free(list);
    return -1;
}
