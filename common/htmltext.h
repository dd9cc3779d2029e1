/* htmltext.h -- HTML text as plain text: entities decoded, tags dropped.
 *
 * Sites send HTML in places (4chan's "com", LynxChan's "markdown"): the
 * crawler decodes its entities to find the links a comment names, and the
 * live view shows a comment as plain text.  One decoder for both:
 * htmltext_entity reads the named entities &amp; &quot; &apos; &lt; &gt;
 * &nbsp; and numeric ones (&#955; &#x3bb;) that end with ';' and name a
 * character (not NUL, not a surrogate, at most U+10FFFF); anything else is
 * not an entity and stays text.
 */
#ifndef IMGFEED_HTMLTEXT_H
#define IMGFEED_HTMLTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* Append the UTF-8 form of code point CP to B. */
void htmltext_put_utf8(sbuf *b, uint32_t cp);

/* S[0] is '&': append the character of the entity there to B and return
 * the entity's length, or return 0 (nothing appended) when it is none. */
size_t htmltext_entity(const char *s, size_t n, sbuf *b);

/* The LEN bytes of HTML at HTML as plain text, a new string: <br> and </p>
 * become a line break, other tags (and a tag cut short at the end) are
 * dropped, entities decoded. */
char *htmltext_plain(const char *html, size_t len);

#endif
