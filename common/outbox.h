/* outbox.h -- items gathered into messages that stay under a size limit.
 *
 * A publisher (the crawler; any stage that makes items) adds each item's
 * JSON text under its routing key.  Items of one key go into one open
 * message, a JSON array "[a,b,…]", until the next item would take it past
 * max_bytes: then that message is sealed and a new one opened.  So no
 * message is longer than max_bytes unless one item alone is (that message
 * holds just the item, and mq_publish refuses it as too long), and items
 * keep their order within a key.
 *
 * The owner publishes what is ready (outbox_ready: the sealed messages, or
 * every message) and then forgets it (outbox_done).  Publishing the sealed
 * messages as soon as there are some keeps a huge thread's memory at about
 * two messages per key, whatever its size.
 *
 * Ownership: the outbox copies the texts; the mq_message views that
 * outbox_ready hands out belong to the outbox and stay valid until
 * outbox_done or outbox_release.
 */
#ifndef IMGFEED_OUTBOX_H
#define IMGFEED_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "mq.h"
#include "sbuf.h"

typedef struct outbox_msg {
    char *routing_key;
    sbuf body;    /* "[a,b" while open, "[a,b]" once sealed */
    size_t items;
    bool sealed;
} outbox_msg;

typedef struct outbox {
    size_t max_bytes; /* 0: no limit */
    outbox_msg *v;    /* in the order they were opened */
    size_t n, cap;
    size_t items;     /* items held, in every message */
    size_t sealed_bytes;
    mq_message *ready; /* handed out by outbox_ready */
    size_t nready, ready_cap;
    size_t ready_items;
} outbox;

/* An empty outbox whose messages stay under MAX_BYTES (0: no limit). */
void outbox_init(outbox *o, size_t max_bytes);
/* Free every message.  The outbox may be initialised again. */
void outbox_release(outbox *o);

/* Append the item TEXT (LEN bytes of JSON, an object) under KEY. */
void outbox_add(outbox *o, const char *key, const char *text, size_t len);

/* The messages to publish, in order: the sealed ones, and with ALL the
 * open ones too (sealed first).  *MSGS points at their mq_message views,
 * *ITEMS (may be NULL) is set to the items they hold.  Returns how many. */
size_t outbox_ready(outbox *o, bool all, mq_message **msgs, size_t *items);
/* Forget the messages of the last outbox_ready (published, or refused for
 * good). */
void outbox_done(outbox *o);
/* Forget everything (a publish that cannot be done now: it is made again). */
void outbox_clear(outbox *o);

#endif
