/* tablename.h -- the archive table of a routing key.
 *
 * design.md, "The archive": one table per exchange, site and type, named
 * <exchange>_<site>_<type>: the routing key without its last segment (the
 * board), dots made underscores, lower-cased, every byte outside [a-z0-9_]
 * made an underscore.  A name longer than PostgreSQL's 63 bytes keeps its
 * first 54 bytes and ends in "_" and 8 hex digits of a hash of the whole
 * name, so two long keys do not share a table by accident.  The result is
 * harmless on its own, and the SQL quotes it anyway.
 */
#ifndef IMGFEED_TABLENAME_H
#define IMGFEED_TABLENAME_H

#include <stdbool.h>
#include <stddef.h>

#define TABLENAME_MAX 63 /* PostgreSQL's NAMEDATALEN - 1 */

/* The table of ROUTING_KEY under EXCHANGE into OUT (TABLENAME_MAX + 1
 * bytes).  False, with the reason in WHY, when the key has no dot or an
 * empty site or type: then it names no table. */
bool tablename_from_key(const char *exchange, const char *routing_key, char *out, char *why, size_t whylen);

#endif
