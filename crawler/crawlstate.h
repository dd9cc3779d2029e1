/* crawlstate.h -- what a thread-shaped kind remembers of a board, on disk.
 *
 * One file a board, <state-dir>/<site>/<board>.json (the board name
 * percent-encoded), holding the threads.json Last-Modified and, for every
 * thread still listed, what was last seen of it: its last_modified and reply
 * count from threads.json, the Last-Modified of its JSON, and the highest
 * post number published.  A thread that answered 404 stays as a tombstone
 * while threads.json still lists it unchanged, so it is not asked for again
 * and again; threads no longer listed are forgotten, so the file stays as
 * small as the board.
 *
 * The file is the board's statefile (statefile.h), saved atomically; the
 * thread-shaped kinds (4chan, vichan: src_chan.c) keep this state in it.
 * They save only after the broker has confirmed the posts the new state
 * counts as published, so a kill -9 can only make them publish again what
 * was not yet saved.
 *
 * Ownership: a crawlstate_board owns its strings and array;
 * crawlstate_release frees them.
 */
#ifndef IMGFEED_CRAWLSTATE_H
#define IMGFEED_CRAWLSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRAWLSTATE_HTTP_DATE 40 /* room for an HTTP date ("Sat, 02 May 2014 14:33:35 GMT") */

typedef struct crawlstate_thread {
    int64_t no;
    int64_t last_modified; /* from threads.json when last handled; -1: none given */
    int64_t replies;       /* likewise; -1: none given */
    int64_t last_post;     /* highest post number published; 0: none */
    char http_lm[CRAWLSTATE_HTTP_DATE]; /* Last-Modified of its JSON; "": none */
    bool gone;             /* answered 404 */
} crawlstate_thread;

typedef struct crawlstate_board {
    char *path;
    char threads_lm[CRAWLSTATE_HTTP_DATE]; /* Last-Modified of threads.json; "": none */
    crawlstate_thread *threads;            /* sorted by no */
    size_t n, cap;
} crawlstate_board;

/* Load the state of SITE's BOARD under DIR (creating DIR/SITE): an empty
 * state when there is no file yet.  Returns 0, or -1 with WHY when the file
 * exists but cannot be read (then the crawler refuses to start rather than
 * publish the whole board again). */
int crawlstate_load(crawlstate_board *b, const char *dir, const char *site, const char *board, char *why,
                    size_t whylen);
/* Write the state atomically (see the top).  0, or -1 with WHY. */
int crawlstate_save(const crawlstate_board *b, char *why, size_t whylen);
void crawlstate_release(crawlstate_board *b);

/* The thread NO, or NULL. */
crawlstate_thread *crawlstate_find(crawlstate_board *b, int64_t no);
/* The thread NO, added (zeroed, last_modified and replies -1) if new.  The
 * pointer is valid until the next add or retain. */
crawlstate_thread *crawlstate_get(crawlstate_board *b, int64_t no);
/* Forget every thread whose number is not among LISTED[0..n) (any order). */
void crawlstate_retain(crawlstate_board *b, const int64_t *listed, size_t n);

#endif
