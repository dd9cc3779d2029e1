/* pixbuf.c -- large pixel buffers on huge pages (ih_pixbuf_*; pixbuf.h
 * says why).
 *
 * posix_memalign() to a huge-page boundary with the size rounded up to
 * whole huge pages, then madvise(MADV_HUGEPAGE): with the kernel's
 * transparent huge pages in "madvise" mode (Debian's default) that is what
 * lets a fault map 2 MiB at once.  A failed madvise (no THP, an old
 * kernel) leaves ordinary pages, which is only slower.
 */
#include "pixbuf.h"

#include <stdlib.h>
#include <sys/mman.h>

uint64_t ih_pixbuf_bytes(uint64_t bytes) {
    if (bytes < IH_PIXBUF_HUGE) return bytes;
    return (bytes + IH_PIXBUF_PAGE - 1) / IH_PIXBUF_PAGE * IH_PIXBUF_PAGE;
}

void *ih_pixbuf_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes < IH_PIXBUF_HUGE) return malloc(bytes);
    size_t rounded = (size_t)ih_pixbuf_bytes(bytes);
    if (rounded < bytes) return NULL; /* overflow */
    void *p = NULL;
    if (posix_memalign(&p, IH_PIXBUF_PAGE, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}
