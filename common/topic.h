/* topic.h -- AMQP topic binding keys: checked, and matched against routing
 * keys as RabbitMQ's topic exchange matches them.
 *
 * A routing key is words separated by dots ("4chan.post.g"); in a binding
 * key a word "*" stands for exactly one word and "#" for zero or more
 * ("4chan.*.g", "reddit.#").  A consumer that filters what it already took
 * from its queue (the live view filters per viewer) must agree with the
 * broker to the letter, so the match is RabbitMQ's: '*' and '#' are special
 * only as whole words, and the matching is a dynamic programme over words,
 * never a backtracking search that a hostile "#.#.#.#…" could make slow.
 *
 * topic_check is the rule of docs/design.md for a binding key a user sends:
 * 1 to 255 bytes of [A-Za-z0-9_*#.-].
 */
#ifndef IMGFEED_TOPIC_H
#define IMGFEED_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define TOPIC_MAX 255

/* KEY is a binding key a user may give (see the top).  false with WHY. */
bool topic_check(const char *key, char *why, size_t whylen);

/* Whether routing key KEY matches binding key PATTERN. */
bool topic_match(const char *pattern, const char *key);

/* Cuts the comma-separated LIST (NULL: empty) into OUT, NULL-terminated, at
 * most MAX entries (OUT holds MAX + 1), blanks around each trimmed, empty
 * ones skipped, each checked by topic_check.  The strings live in *STORE, a
 * copy the caller frees, set even on failure.  0, or -1 with WHY naming the
 * setting WHAT ("--topics: ..."). */
int topic_split_list(const char *list, const char **out, size_t max, char **store, const char *what, char *why,
                     size_t whylen);

#endif
