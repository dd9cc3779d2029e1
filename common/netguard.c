/* netguard.c -- the private-address guard (see netguard.h).
 *
 * Every address is first brought to one 16-byte form: IPv4 a.b.c.d becomes
 * the IPv4-mapped ::ffff:a.b.c.d, so that one prefix match serves both
 * families and an IPv4 network given to --allow-net also covers the mapped
 * form of its addresses.  The ranges refused are two ordered tables, one of
 * IPv4 networks (stored in the mapped form) and one of IPv6 networks, parsed
 * from their usual text once per process; the first range that contains an
 * address names its kind.  IPv6 forms that carry an IPv4 address (mapped,
 * NAT64, 6to4) are judged by the IPv4 table alone, and an IPv6 address that
 * no range names is still refused unless it is global unicast (2000::/3).
 */
#include "netguard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A network in the 16-byte form: addr with its first prefix bits. */
typedef struct netguard_net {
    unsigned char addr[16];
    int prefix;
} netguard_net;

struct netguard {
    bool allow_private;
    netguard_net *allowed;
    size_t nallowed;
};

/* A refused range: its CIDR as written, and the kind reported. */
typedef struct netguard_range {
    const char *cidr;
    const char *kind;
} netguard_range;

static const netguard_range netguard_v4_ranges[] = {
    {"0.0.0.0/8", "unspecified"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared address space (carrier-grade NAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "reserved (IETF protocol assignments)"},
    {"192.0.2.0/24", "documentation"},
    {"192.88.99.0/24", "reserved (6to4 relay anycast)"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "reserved (benchmarking)"},
    {"198.51.100.0/24", "documentation"},
    {"203.0.113.0/24", "documentation"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"}, /* 255.255.255.255, broadcast, is in it */
};

static const netguard_range netguard_v6_ranges[] = {
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"::/96", "reserved (IPv4-compatible)"},
    {"64:ff9b:1::/48", "reserved (local-use NAT64)"},
    {"100::/64", "reserved (discard-only)"},
    {"2001:db8::/32", "documentation"},
    {"3fff::/20", "documentation"},
    {"2001::/23", "reserved (IETF protocol assignments)"},
    {"fc00::/7", "unique local"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local"},
    {"ff00::/8", "multicast"},
};

#define NETGUARD_NV4 (sizeof netguard_v4_ranges / sizeof netguard_v4_ranges[0])
#define NETGUARD_NV6 (sizeof netguard_v6_ranges / sizeof netguard_v6_ranges[0])

static netguard_net netguard_v4_nets[NETGUARD_NV4];
static netguard_net netguard_v6_nets[NETGUARD_NV6];
static netguard_net netguard_mapped_net, netguard_nat64_net, netguard_6to4_net, netguard_global_net;
static pthread_once_t netguard_once = PTHREAD_ONCE_INIT;

/* --- networks --- */

/* The address of an IPv4 address in the 16-byte form. */
static void netguard_map_v4(const unsigned char v4[4], unsigned char out[16]) {
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

static void netguard_mask(netguard_net *n) {
    for (int bit = n->prefix; bit < 128; bit++)
        n->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
}

/* Parse "a.b.c.d[/n]" or "x::y[/n]" into *out.  False on anything else. */
static bool netguard_parse_cidr(const char *text, size_t len, netguard_net *out) {
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        *slash = '\0';
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3) return false;
        prefix = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p)) return false;
            prefix = prefix * 10 + (*p - '0');
        }
    }
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) == 1) {
        if (prefix > 32) return false;
        netguard_map_v4(v4, out->addr);
        out->prefix = 96 + (prefix < 0 ? 32 : (int)prefix);
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        if (prefix > 128) return false;
        out->prefix = prefix < 0 ? 128 : (int)prefix;
    } else {
        return false;
    }
    netguard_mask(out);
    return true;
}

static bool netguard_contains(const netguard_net *n, const unsigned char addr[16]) {
    int full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, addr, (size_t)full) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (addr[full] & mask) == n->addr[full];
}

static void netguard_parse_tables(void) {
    for (size_t i = 0; i < NETGUARD_NV4; i++)
        netguard_parse_cidr(netguard_v4_ranges[i].cidr, strlen(netguard_v4_ranges[i].cidr), &netguard_v4_nets[i]);
    for (size_t i = 0; i < NETGUARD_NV6; i++)
        netguard_parse_cidr(netguard_v6_ranges[i].cidr, strlen(netguard_v6_ranges[i].cidr), &netguard_v6_nets[i]);
    netguard_parse_cidr("::ffff:0:0/96", 13, &netguard_mapped_net);
    netguard_parse_cidr("64:ff9b::/96", 12, &netguard_nat64_net);
    netguard_parse_cidr("2002::/16", 9, &netguard_6to4_net);
    netguard_parse_cidr("2000::/3", 8, &netguard_global_net);
}

/* --- classifying --- */

/* ADDR is in the mapped form. */
static const char *netguard_classify_v4(const unsigned char addr[16]) {
    for (size_t i = 0; i < NETGUARD_NV4; i++)
        if (netguard_contains(&netguard_v4_nets[i], addr)) return netguard_v4_ranges[i].kind;
    return NULL;
}

static const char *netguard_classify_v6(const unsigned char addr[16]) {
    unsigned char inner[16];
    if (netguard_contains(&netguard_mapped_net, addr)) return netguard_classify_v4(addr);
    if (netguard_contains(&netguard_nat64_net, addr)) {
        netguard_map_v4(addr + 12, inner);
        return netguard_classify_v4(inner);
    }
    if (netguard_contains(&netguard_6to4_net, addr)) {
        netguard_map_v4(addr + 2, inner);
        return netguard_classify_v4(inner);
    }
    for (size_t i = 0; i < NETGUARD_NV6; i++)
        if (netguard_contains(&netguard_v6_nets[i], addr)) return netguard_v6_ranges[i].kind;
    if (!netguard_contains(&netguard_global_net, addr)) return "reserved";
    return NULL;
}

/* ADDR in the 16-byte form; false for families other than IPv4 and IPv6. */
static bool netguard_normalize(const struct sockaddr *addr, unsigned char out[16]) {
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        netguard_map_v4((const unsigned char *)&in->sin_addr, out);
        return true;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        memcpy(out, &in6->sin6_addr, 16);
        return true;
    }
    return false;
}

const char *netguard_classify(const struct sockaddr *addr) {
    pthread_once(&netguard_once, netguard_parse_tables);
    unsigned char a[16];
    if (!netguard_normalize(addr, a)) return "not an internet address";
    return netguard_classify_v6(a);
}

/* --- the guard --- */

netguard *netguard_new(bool allow_private) {
    pthread_once(&netguard_once, netguard_parse_tables);
    netguard *g = xcalloc(1, sizeof *g);
    g->allow_private = allow_private;
    return g;
}

void netguard_free(netguard *g) {
    if (!g) return;
    free(g->allowed);
    free(g);
}

/* Parse LIST into a new array of networks (*out, *n); -1 with ERR. */
static int netguard_parse_list(const char *list, netguard_net **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    if (!list || !*list) return 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    netguard_net *nets = xcalloc(cap, sizeof *nets);
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (!netguard_parse_cidr(p, len, &nets[*n])) {
            snprintf(err, errlen, "is not a list of networks such as 10.1.0.0/16,fd00::/8: cannot read '%.*s'",
                     (int)(len > 64 ? 64 : len), p);
            free(nets);
            *n = 0;
            return -1;
        }
        (*n)++;
        if (!end) break;
        p = end + 1;
    }
    *out = nets;
    return 0;
}

int netguard_allow_list(netguard *g, const char *list, char *err, size_t errlen) {
    netguard_net *nets;
    size_t n;
    if (netguard_parse_list(list, &nets, &n, err, errlen) != 0) return -1;
    g->allowed = xrealloc(g->allowed, (g->nallowed + n + 1) * sizeof *g->allowed);
    if (n) memcpy(g->allowed + g->nallowed, nets, n * sizeof *nets);
    g->nallowed += n;
    free(nets);
    return 0;
}

bool netguard_check_list(const char *value, char *why, size_t whylen) {
    pthread_once(&netguard_once, netguard_parse_tables);
    netguard_net *nets;
    size_t n;
    if (netguard_parse_list(value, &nets, &n, why, whylen) != 0) return false;
    free(nets);
    return true;
}

/* The address as text, for messages. */
static void netguard_format(const struct sockaddr *addr, char *buf, size_t len) {
    const void *raw = NULL;
    if (addr->sa_family == AF_INET) raw = &((const struct sockaddr_in *)addr)->sin_addr;
    if (addr->sa_family == AF_INET6) raw = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    if (!raw || !inet_ntop(addr->sa_family, raw, buf, (socklen_t)len))
        snprintf(buf, len, "address family %d", addr->sa_family);
}

bool netguard_permits(const netguard *g, const struct sockaddr *addr, char *why, size_t whylen) {
    if (g->allow_private) return true;
    const char *kind = netguard_classify(addr);
    if (!kind) return true;
    unsigned char a[16];
    if (netguard_normalize(addr, a)) {
        for (size_t i = 0; i < g->nallowed; i++)
            if (netguard_contains(&g->allowed[i], a)) return true;
    }
    char text[INET6_ADDRSTRLEN + 32];
    netguard_format(addr, text, sizeof text);
    snprintf(why, whylen, "%s (%s)", text, kind);
    return false;
}
