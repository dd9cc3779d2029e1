/* pixbuf.h -- large pixel buffers on huge pages (ih_pixbuf_*).
 *
 * A 24-megapixel photo needs a 24 MB gray image and resampling buffers of
 * several megabytes.  Fresh memory costs a page fault per 4 KiB page on
 * first touch, and on a virtual machine a fault costs several
 * microseconds: thousands of them took as long as a third of decoding the
 * photo.  ih_pixbuf_alloc() gives a buffer of IH_PIXBUF_HUGE bytes or more
 * 2 MiB aligned and asks the kernel for transparent huge pages on it
 * (madvise MADV_HUGEPAGE, which the kernel may ignore), so that it faults
 * once per 2 MiB; smaller buffers are plain malloc().
 *
 * Owner: the caller, who frees the buffer with free().  Thread-safe.
 */
#ifndef IH_PIXBUF_H
#define IH_PIXBUF_H

#include <stddef.h>
#include <stdint.h>

#define IH_PIXBUF_HUGE (4u * 1024 * 1024)
#define IH_PIXBUF_PAGE (2u * 1024 * 1024)

/* BYTES (at least 1) of uninitialised memory, or NULL without memory. */
void *ih_pixbuf_alloc(size_t bytes);

/* What ih_pixbuf_alloc(BYTES) may take: BYTES rounded up to a huge page
 * when it gets huge pages, for the callers' memory estimates. */
uint64_t ih_pixbuf_bytes(uint64_t bytes);

#endif
