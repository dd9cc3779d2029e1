/* seenlog.h -- the ids a board published, remembered across kill -9 at the
 * cost of the new ids only.
 *
 * The image APIs and reddit remember the _id of every item they published
 * (a seenset, bounded, oldest forgotten first) so that a repeat is never
 * published twice.  Rewriting every id remembered after each poll costs
 * O(ids) a commit, megabytes for a category of 100,000; a seenlog instead
 * keeps them in a journal beside the board's state file, "<state>.seen":
 * one id a line, percent-encoded (urltmpl.h), oldest first.
 *
 * A poll marks the ids it emits as pending (seenlog_pend); seenlog_has
 * answers for pending and committed ids alike.  Once the broker confirmed
 * them, seenlog_commit appends their lines and fdatasyncs the journal (the
 * directory too when the journal was just made); seenlog_drop forgets them.
 * When the journal holds more than twice `max` lines, or ids were imported,
 * the commit compacts it instead: the remembered ids are written to
 * "<journal>.tmp", fsynced and renamed over it, and the directory fsynced.
 *
 * Reading it back: a last line without its '\n' was cut by a crash before
 * its commit returned, so it is cut off the file; a line that does not
 * decode fails the open (the crawler then refuses to start rather than
 * publish a board again).  Memory follows the ids held (seenset.h).
 *
 * Ownership: seenlog_open returns a log closed with seenlog_close; ids are
 * copied.
 */
#ifndef IMGFEED_SEENLOG_H
#define IMGFEED_SEENLOG_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

typedef struct seenlog seenlog;

/* The journal of the board whose state file is STATE_PATH, at most MAX ids:
 * read it if it exists.  NULL with WHY when it cannot be read. */
seenlog *seenlog_open(const char *state_path, size_t max, char *why, size_t whylen);
void seenlog_close(seenlog *l);

/* Add the ids of json array A (strings, oldest first: the "seen" of a state
 * file written before the journal existed) as committed; the next commit
 * writes them into the journal.  0, or -1 with WHY. */
int seenlog_import(seenlog *l, json_object *a, char *why, size_t whylen);

/* ID was published: committed, or pending since the last commit or drop. */
bool seenlog_has(const seenlog *l, const char *id);
/* ID was emitted: pending until seenlog_commit or seenlog_drop. */
void seenlog_pend(seenlog *l, const char *id);
size_t seenlog_pending(const seenlog *l);
/* The pending ids are confirmed: remember them and write them down (see the
 * top).  0, or -1 with WHY (they are remembered all the same). */
int seenlog_commit(seenlog *l, char *why, size_t whylen);
/* The pending ids were not confirmed: forget them. */
void seenlog_drop(seenlog *l);

/* Ids remembered (committed). */
size_t seenlog_count(const seenlog *l);
/* The journal's path. */
const char *seenlog_path(const seenlog *l);

#endif
