/* msgout.h -- what the hasher publishes for one message: its items with
 * `_img`, in messages under --max-message.
 *
 * msgout_build() appends each item's `_img` array to the item's text as it
 * came (every digit and key kept as the crawler wrote them; json-c prints
 * an item again only when the text cannot be cut into the parsed items, or
 * the item came with an `_img` of its own, which is replaced), and gathers
 * the items, in order, into messages of at most MAX_MESSAGE bytes with
 * common/outbox.h, the one mechanism every publisher cuts its messages
 * with.  All the items go in one message when they fit, the usual case (a
 * message of no items gives no message: there is nothing to pass on).  An
 * item that alone is longer than MAX_MESSAGE is a message of its own, which
 * mq_publish refuses (MQ_REFUSED); msgout_received gives that item back as
 * it was received, for E.dead.
 *
 * Ownership: a msgout is the caller's memory, filled by msgout_build and
 * emptied by msgout_release; it owns its messages and texts, except the
 * received TEXT, which must outlive it.  The `_img` arrays given to it are
 * consumed.
 */
#ifndef IMGFEED_MSGOUT_H
#define IMGFEED_MSGOUT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "items.h"
#include "mq.h"
#include "outbox.h"

typedef struct msgout {
    size_t nitems;
    mq_message *msgs; /* nmsgs messages to publish (views into box), routing key ROUTING_KEY */
    size_t nmsgs;
    size_t *first;        /* first[k], first[k + 1]: the items of message k (nmsgs + 1 entries) */
    size_t *out_len;      /* each item's published text, `_img` included */
    items_span *received; /* each item's text as received */
    char *received_copy;  /* json-c's print of the items, when the received text could not be cut */
    outbox box;
} msgout;

/* Fill OUT from the message TEXT (TEXT_LEN bytes, as delivered, of routing
 * key ROUTING_KEY) whose parsed ITEMS (items_parse) get IMGS[i] as item i's
 * `_img` (one array per item, each consumed; ITEMS may gain `_img`
 * members).  MAX_MESSAGE 0: no limit, one message. */
void msgout_build(msgout *out, const char *routing_key, const char *text, size_t text_len, json_object *items,
                  json_object **imgs, uint64_t max_message);
void msgout_release(msgout *out);

/* Item I as received, alone in an array ("[{...}]"), the message E.dead
 * keeps for it; *LEN its length.  The caller frees it. */
char *msgout_received(const msgout *out, size_t i, size_t *len);

#endif
