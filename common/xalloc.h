/* xalloc.h -- allocation that cannot fail.
 *
 * imgfeed decides out-of-memory once: these wrappers log the size that could
 * not be had and abort.  Code that can recover from a failed allocation (a
 * huge image, say) calls malloc itself and checks the result.
 */
#ifndef IMGFEED_XALLOC_H
#define IMGFEED_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
