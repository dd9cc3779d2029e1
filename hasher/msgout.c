/* msgout.c -- one message's output: `_img` spliced into the items' texts,
 * then gathered under --max-message.
 *
 * Each item's output text is written into one scratch buffer (the text it
 * came with but its closing brace, `,"_img":[...]`, the brace) and handed
 * to an outbox of the message's routing key, which copies it and opens a
 * new message whenever the next item would take the open one past the
 * limit (common/outbox.c).  The outbox's messages, sealed in the order they
 * were opened, are the parts; how many items each holds tells which items
 * a refused part carried.
 */
#include "msgout.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"
#include "xalloc.h"

#define MSGOUT_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Whether any item of ITEMS came with an `_img` of its own. */
static bool msgout_any_img(json_object *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (json_object_object_get_ex(json_object_array_get_idx(items, i), "_img", NULL)) return true;
    return false;
}

/* The items as json-c prints them, before they get `_img`: their received
 * texts when the delivered text could not be cut (items_parse accepted it,
 * so this does not happen). */
static void msgout_print_received(msgout *out, json_object *items) {
    sbuf r = {0};
    size_t *off = xmalloc((out->nitems ? out->nitems : 1) * sizeof *off);
    for (size_t i = 0; i < out->nitems; i++) {
        size_t len = 0;
        const char *text =
            json_object_to_json_string_length(json_object_array_get_idx(items, i), MSGOUT_JSON_FLAGS, &len);
        off[i] = r.len;
        sbuf_add(&r, text, len);
        out->received[i].len = len;
    }
    sbuf_addc(&r, '\0');
    for (size_t i = 0; i < out->nitems; i++)
        out->received[i].text = r.p + off[i];
    out->received_copy = r.p;
    free(off);
}

/* Item I with its `_img` (IMG, consumed) into SCRATCH (emptied first):
 * spliced into its received text, or printed by json-c. */
static void msgout_item_text(msgout *out, size_t i, json_object *items, json_object *img, bool splice, sbuf *scratch) {
    scratch->len = 0;
    if (splice) {
        size_t img_len = 0;
        const char *img_text = json_object_to_json_string_length(img, MSGOUT_JSON_FLAGS, &img_len);
        const char *key = items_span_is_empty(out->received[i]) ? "\"_img\":" : ",\"_img\":";
        sbuf_add(scratch, out->received[i].text, out->received[i].len - 1); /* all but its '}' */
        sbuf_add(scratch, key, strlen(key));
        sbuf_add(scratch, img_text, img_len);
        sbuf_addc(scratch, '}');
        json_object_put(img);
    } else {
        json_object *item = json_object_array_get_idx(items, i);
        json_object_object_add(item, "_img", img); /* replaces one of its own */
        size_t len = 0;
        const char *text = json_object_to_json_string_length(item, MSGOUT_JSON_FLAGS, &len);
        sbuf_add(scratch, text, len); /* json-c escapes a NUL byte: the text holds none */
    }
}

void msgout_build(msgout *out, const char *routing_key, const char *text, size_t text_len, json_object *items,
                  json_object **imgs, uint64_t max_message) {
    memset(out, 0, sizeof *out);
    size_t n = json_object_array_length(items), slots = n ? n : 1;
    out->nitems = n;
    out->received = xcalloc(slots, sizeof *out->received);
    out->out_len = xcalloc(slots, sizeof *out->out_len);
    bool cut = items_split(text, text_len, out->received, n) == n;
    if (!cut) msgout_print_received(out, items);
    bool splice = cut && !msgout_any_img(items, n);

    outbox_init(&out->box, (size_t)max_message);
    sbuf scratch = {0};
    for (size_t i = 0; i < n; i++) {
        msgout_item_text(out, i, items, imgs[i], splice, &scratch);
        imgs[i] = NULL;
        out->out_len[i] = scratch.len;
        outbox_add(&out->box, routing_key, scratch.p, scratch.len);
    }
    free(scratch.p);

    out->nmsgs = outbox_ready(&out->box, true, &out->msgs, NULL);
    out->first = xcalloc(out->nmsgs + 1, sizeof *out->first);
    for (size_t k = 0; k < out->nmsgs; k++)
        out->first[k + 1] = out->first[k] + out->box.v[k].items;
}

void msgout_release(msgout *out) {
    outbox_release(&out->box);
    free(out->first);
    free(out->out_len);
    free(out->received);
    free(out->received_copy);
    memset(out, 0, sizeof *out);
}

char *msgout_received(const msgout *out, size_t i, size_t *len) {
    items_span item = out->received[i];
    char *body = xmalloc(item.len + 3);
    body[0] = '[';
    memcpy(body + 1, item.text, item.len);
    body[item.len + 1] = ']';
    body[item.len + 2] = '\0';
    *len = item.len + 2;
    return body;
}
