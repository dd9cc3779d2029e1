/* jsonscan.h -- check a JSON text and measure it, without building anything.
 *
 * json-c builds a tree whose size depends on the shape of the text more than
 * on its length: 3 bytes of "{}," cost json-c about 800 bytes, so 8 MB of
 * empty objects take 2 GB.  A process that must stay within its memory
 * whatever a site sends walks the text first with jsonscan_value, which
 * checks its syntax and counts what json-c would allocate, and refuses a
 * text whose estimate (jsonscan_estimate) is over its limit before json-c
 * sees it.  The crawler also uses the walk to cut a thread into its posts
 * and parse them one at a time.
 *
 * The walk is iterative (no recursion, JSONSCAN_MAX_DEPTH levels at most)
 * and as lenient as json-c's default tokener: raw control characters in
 * strings, and NaN, Infinity and -Infinity, pass; anything else that is not
 * RFC 8259 JSON is refused with the byte offset where it goes wrong.
 */
#ifndef IMGFEED_JSONSCAN_H
#define IMGFEED_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define JSONSCAN_MAX_DEPTH 64

/* What a text holds, for the estimate. */
typedef struct jsonscan_cost {
    uint64_t objects, arrays;  /* containers */
    uint64_t members;          /* members of objects */
    uint64_t elements;         /* elements of arrays */
    uint64_t scalars;          /* strings, numbers, true, false, null */
    uint64_t string_bytes;     /* bytes inside strings (keys too) */
    uint64_t control_bytes;    /* of which raw control characters (printed as \u00XX) */
    uint64_t text_bytes;       /* bytes of the values walked */
} jsonscan_cost;

/* Walk one JSON value of S (LEN bytes) starting at *POS, after any white
 * space, and set *POS to the byte after it.  Adds what it saw to *COST when
 * COST is not NULL.  Returns 0, or -1 with a reason in WHY ("not JSON:
 * expected ':' at byte 17", "not JSON: truncated, the text ends inside a
 * value") and *POS where it stopped. */
int jsonscan_value(const char *s, size_t len, size_t *pos, jsonscan_cost *cost, char *why, size_t whylen);

/* Skip white space from *POS; returns the byte there, or -1 at the end. */
int jsonscan_skip_space(const char *s, size_t len, size_t *pos);

/* The most json-c needs to print the tree of a text of that cost again:
 * the text, every raw control character as its six-byte escape, in a
 * buffer that grows by doubling. */
uint64_t jsonscan_print_estimate(const jsonscan_cost *cost);

/* Bytes json-c 0.16 allocates for a tree of that cost, from the sizes
 * measured on x86-64 (an empty object 775 bytes, a member 235, an array
 * 150, a number in an array 72), rounded up: test_jsonscan checks that it
 * stays above what json-c really takes. */
uint64_t jsonscan_estimate(const jsonscan_cost *cost);

/* Check, measure and parse a body that must be one JSON object: the syntax
 * walk above, json-c's tree estimated and refused above MAX_TREE (0: no
 * limit), then json-c's parse.  WHAT names the document in a refusal ("a
 * Listing": "not a Listing: the body does not start with '{' (HTML?)") and
 * DOC in a "too complex" one ("the listing").  A new object the caller
 * puts, or NULL with the reason in WHY. */
json_object *jsonscan_parse_object(const char *body, size_t len, uint64_t max_tree, const char *what, const char *doc,
                                   char *why, size_t whylen);

/* --- a document a piece at a time (a thread's posts, a listing's children) ---
 *
 * Check the whole body once with jsonscan_body, find the members wanted
 * with jsonscan_member and walk their values with jsonscan_value; then
 * measure each piece (jsonscan_fits) and parse it alone
 * (jsonscan_parse_span), so that one piece's tree is in memory at a time. */

/* BODY (LEN bytes) holds one JSON value, with only white space around it.
 * Adds what it holds to *COST when COST is not NULL.  0, or -1 with WHY. */
int jsonscan_body(const char *body, size_t len, jsonscan_cost *cost, char *why, size_t whylen);
/* The value of member KEY of the object at S[START] ('{'), in a text that
 * jsonscan accepted: its byte range [*VSTART, *VEND), the last one when the
 * key repeats (as json-c takes it).  false when there is no such member. */
bool jsonscan_member(const char *s, size_t len, size_t start, const char *key, size_t *vstart, size_t *vend);
/* The same for the N members KEYS in one walk of the object: VSTART[k] and
 * VEND[k] for KEYS[k], both 0 when it has no such member. */
void jsonscan_members(const char *s, size_t len, size_t start, const char *const *keys, size_t n, size_t *vstart,
                      size_t *vend);
/* Whether the tree of a text of COST fits in MAX_TREE bytes (0: no limit),
 * with PRINTED the text printed again too (an item); else WHY names WHAT
 * ("posts[3] is too complex to parse: ... --max-parse-memory"). */
bool jsonscan_fits(const jsonscan_cost *cost, uint64_t max_tree, bool printed, const char *what, char *why,
                   size_t whylen);
/* json-c's tree of the value in TEXT (LEN bytes), which jsonscan accepted
 * already; NULL with WHY naming WHAT (json-c is stricter in places: it
 * nests 32 levels at most). */
json_object *jsonscan_parse_span(const char *text, size_t len, const char *what, char *why, size_t whylen);
/* The whole BODY as one tree: jsonscan_body, jsonscan_fits (PRINTED: the
 * tree printed again too) against MAX_TREE for "the body", then
 * jsonscan_parse_span.  A new reference, or NULL with WHY. */
json_object *jsonscan_parse_body(const char *body, size_t len, uint64_t max_tree, bool printed, char *why,
                                 size_t whylen);
/* Walk the elements of the array whose '[' is at S[*POS], in a text that
 * jsonscan accepted: each call moves *POS past the next element, sets
 * [*ES, *EE) to its bytes and, when COST is not NULL, *COST to what it
 * holds (counted afresh); false when there is none left.  Start with *POS
 * at the '['. */
bool jsonscan_element(const char *s, size_t len, size_t *pos, size_t *es, size_t *ee, jsonscan_cost *cost);

#endif
