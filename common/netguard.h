/* netguard.h -- the private-address guard: which addresses downloads may reach.
 *
 * The URLs a program such as the hasher downloads come from the web, so
 * anyone can point it at http://127.0.0.1:15672/ or a cloud metadata
 * service.  The guard refuses every address that is not on the public
 * internet: loopback, the private networks (10/8, 172.16/12, 192.168/16),
 * carrier-grade NAT (100.64/10), link-local (169.254/16, fe80::/10),
 * multicast, unspecified, reserved and documentation ranges, IPv6
 * unique-local (fc00::/7) and everything outside the global unicast
 * 2000::/3, and the IPv4 addresses hidden inside IPv6 (IPv4-mapped
 * ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4
 * 2002::/16), which are judged as the IPv4 address they carry.
 *
 * It judges socket addresses, not host names: fetch.c asks it from curl's
 * open-socket callback, so the address checked is the one about to be
 * connected, after DNS resolution and for every redirect hop.  A guard made
 * with allow_private permits everything; networks added with
 * netguard_allow_list ("--allow-net 10.1.0.0/16,fd00::/8") are permitted
 * despite it.  IPv4 networks match IPv4-mapped IPv6 addresses too.
 *
 * A guard is immutable once set up, so any number of threads may ask it at
 * once.  netguard_new returns an object the caller frees with netguard_free.
 */
#ifndef IMGFEED_NETGUARD_H
#define IMGFEED_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct netguard netguard;

netguard *netguard_new(bool allow_private);
void netguard_free(netguard *g);

/* Permit the networks of LIST, CIDRs separated by commas ("127.0.0.2/32",
 * "fd00::/8"; a bare address is a /32 or /128), despite the guard.  Returns
 * 0, or -1 with the reason in ERR, having added none of them. */
int netguard_allow_list(netguard *g, const char *list, char *err, size_t errlen);

/* Validator for the --allow-net setting (config.h's check signature). */
bool netguard_check_list(const char *value, char *why, size_t whylen);

/* What kind of non-public address ADDR is ("loopback", "private",
 * "link-local", ...), or NULL when it is a public address.  Addresses of
 * families other than IPv4 and IPv6 are "not an internet address". */
const char *netguard_classify(const struct sockaddr *addr);

/* True when a connection to ADDR is permitted.  Otherwise false, with WHY
 * set to the address and its kind: "127.0.0.1 (loopback)". */
bool netguard_permits(const netguard *g, const struct sockaddr *addr, char *why, size_t whylen);

#endif
