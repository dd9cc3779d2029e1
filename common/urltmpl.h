/* urltmpl.h -- percent-encoding and URL templates, one copy for everybody.
 *
 * urltmpl_percent_encode keeps the unreserved characters of RFC 3986
 * (A-Z a-z 0-9 - _ . ~) and writes every other byte as %XX, upper-case hex
 * (a UTF-8 character is its bytes, each encoded).  urltmpl_expand fills a
 * template such as "{api}/{board}/thread/{no}.json" from a table of
 * variables in one pass: a value put in is never scanned again, so a board
 * named "{no}" stays itself.  The crawler's sites file templates, the AMQP
 * URL shown in logs and any new source kind's endpoints use these.
 */
#ifndef IMGFEED_URLTMPL_H
#define IMGFEED_URLTMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

/* One variable of a template: {NAME} becomes VALUE, percent-encoded when
 * ENCODE.  VALUE NULL: the placeholder is left as it is. */
typedef struct urltmpl_var {
    const char *name;
    const char *value;
    bool encode;
} urltmpl_var;

/* S percent-encoded, a new string the caller frees (S NULL: NULL). */
char *urltmpl_percent_encode(const char *s);
/* Append S percent-encoded to OUT. */
void urltmpl_percent_encode_to(sbuf *out, const char *s);
/* Append the LEN bytes at S to OUT with every %XX (either case of hex)
 * decoded; other bytes are copied.  0, or -1 at a '%' not followed by two
 * hex digits or one that decodes to NUL (OUT then holds what came before). */
int urltmpl_percent_decode_to(sbuf *out, const char *s, size_t len);

/* TMPL with every {name} of VARS (N of them) replaced; unknown
 * placeholders, those whose value is NULL and a '{' without its '}' are
 * kept as they are.  A new string the caller frees (TMPL NULL: NULL).
 * Out of memory aborts (xalloc). */
char *urltmpl_expand(const char *tmpl, const urltmpl_var *vars, size_t n);

#endif
