/* seenset.h -- the ids a board has published, bounded, oldest forgotten first.
 *
 * The image APIs answer random images and reddit's listings overlap: a kind
 * remembers the _id of every item it published so that a repeat is never
 * published twice.  A seenset holds at most `max` ids; adding one more
 * forgets the oldest.  Lookups and adds take O(1) (a hash table over a ring
 * of ids).  Memory follows the ids held, not max: the ring doubles as it
 * fills, and a set of 100,000 ids costs a few MB.  In the state file it is
 * a JSON array of strings, oldest first.
 *
 * Ownership: seenset_new returns a set freed with seenset_free; ids are
 * copied.
 */
#ifndef IMGFEED_SEENSET_H
#define IMGFEED_SEENSET_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

typedef struct seenset seenset;

seenset *seenset_new(size_t max);
void seenset_free(seenset *s);
bool seenset_has(const seenset *s, const char *id);
/* Add ID (no-op when present); past max ids the oldest is forgotten. */
void seenset_add(seenset *s, const char *id);
size_t seenset_count(const seenset *s);
/* The I-th oldest id (I < seenset_count), the set's own. */
const char *seenset_id(const seenset *s, size_t i);
/* The ids, oldest first: a new json array. */
json_object *seenset_to_json(const seenset *s);
/* Add the ids of json array A (strings), in order.  0, or -1 with WHY when
 * A is not an array of strings. */
int seenset_from_json(seenset *s, json_object *a, char *why, size_t whylen);

#endif
