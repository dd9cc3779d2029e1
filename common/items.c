/* items.c -- a message body is a JSON array of objects with a string _id.
 *
 * json-c's strict tokenizer decides what is JSON; whitespace may follow the
 * value, anything else after it is refused (json-c alone would stop at the
 * end of the first value and ignore the rest).  items_split walks the bytes
 * once, outside and inside strings; the body has passed the strict parser,
 * so the walk can rely on balanced brackets and well-formed escapes, but it
 * still checks what it relies on and fails rather than read past the end.
 * See items.h.
 */
#include "items.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

json_object *items_parse(const char *body, size_t len, char *why, size_t whylen) {
    if (len > INT32_MAX) {
        snprintf(why, whylen, "not JSON: %zu bytes is too long", len);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (obj && end < len && body[end] && strchr(" \t\r\n", body[end]))
        end++;
    if (!obj || jerr != json_tokener_success) {
        snprintf(why, whylen, "not JSON: %s",
                 jerr == json_tokener_continue ? "unexpected end of the text" : json_tokener_error_desc(jerr));
        goto fail;
    }
    if (end != len) {
        snprintf(why, whylen, "not JSON: text after the value at byte %zu", end);
        goto fail;
    }
    if (!json_object_is_type(obj, json_type_array)) {
        snprintf(why, whylen, "not a JSON array of items");
        goto fail;
    }
    for (size_t i = 0; i < json_object_array_length(obj); i++) {
        json_object *item = json_object_array_get_idx(obj, i), *id = NULL;
        if (!json_object_is_type(item, json_type_object)) {
            snprintf(why, whylen, "item %zu is not an object", i);
            goto fail;
        }
        if (!json_object_object_get_ex(item, "_id", &id) || !json_object_is_type(id, json_type_string)) {
            snprintf(why, whylen, "item %zu has no string _id", i);
            goto fail;
        }
    }
    return obj;
fail:
    json_object_put(obj);
    return NULL;
}

size_t items_split(const char *body, size_t len, items_span *spans, size_t max) {
    size_t depth = 0, n = 0, start = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (depth == 0 && c != '[') return (size_t)-1;
            if (depth == 1) {
                if (c != '{') return (size_t)-1;
                start = i;
            }
            depth++;
            break;
        case ']':
        case '}':
            if (depth == 0) return (size_t)-1;
            depth--;
            if (depth == 1) {
                if (n < max) spans[n] = (items_span){body + start, i + 1 - start};
                n++;
            }
            break;
        default:
            break;
        }
    }
    return depth == 0 && !in_string ? n : (size_t)-1;
}

bool items_span_is_empty(items_span span) {
    for (size_t i = 1; i + 1 < span.len; i++)
        if (!strchr(" \t\r\n", span.text[i])) return false;
    return true;
}

metrics_series *items_received_metric(void) {
    return metrics_get(metrics_counter("imgfeed_items_received_total", "items taken from the program's queue", NULL));
}
