/* test_hashmem.c -- ih_describe_working_bytes() bounds what hashing a file
 * takes.
 *
 * The hasher reserves ih_describe_working_bytes() of its memory budget before
 * a file is hashed (hasher/consumer.c), so the estimate must not fall short of
 * what decoding and hashing really allocate.  This test counts every
 * allocation: it defines malloc, calloc, realloc, free and the aligned
 * variants over glibc's own (__libc_malloc, ...), so libjpeg, libpng,
 * libwebp, libtiff, libgd and our code are all counted, and takes the peak
 * of the bytes held while ih_describe() runs.  Each file is described
 * once before it is measured: the first call of a size fills resample.c's
 * process-wide filter cache (at most 4 MiB, a fixed cost of the process,
 * not of a file).  Files: the whole test image set (tests/hasher/
 * make_images.py: every format and damage), the larger pictures of
 * make_large_images.py beside this file (where the per-pixel parts show)
 * and the AVIF and HEIC samples beside it too.  For the large
 * ones the estimate must also stay useful: at most twice the peak plus
 * 1 MiB.
 *
 * Under AddressSanitizer the counting cannot be installed (ASan owns
 * malloc), so there the test is skipped; the plain build runs it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "imghash/imghash.h"
#include "testenv.h"

#define PYTHON "/usr/bin/python3"

#ifndef __SANITIZE_ADDRESS__
#define HASHMEM_COUNTING 1

/* --- the counting allocator --- */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *ptr);

static atomic_long held, peak;

static void count(long delta) {
    long now = atomic_fetch_add(&held, delta) + delta;
    long top = atomic_load(&peak);
    while (now > top && !atomic_compare_exchange_weak(&peak, &top, now)) {
    }
}

static void *counted(void *p) {
    if (p) count((long)malloc_usable_size(p));
    return p;
}

void *malloc(size_t size) { return counted(__libc_malloc(size)); }
void *calloc(size_t n, size_t size) { return counted(__libc_calloc(n, size)); }
void *memalign(size_t alignment, size_t size) { return counted(__libc_memalign(alignment, size)); }
void *aligned_alloc(size_t alignment, size_t size) { return counted(__libc_memalign(alignment, size)); }
void *valloc(size_t size) { return counted(__libc_memalign(4096, size)); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    void *p = counted(__libc_memalign(alignment, size));
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p) {
    if (p) count(-(long)malloc_usable_size(p));
    __libc_free(p);
}

void *realloc(void *old, size_t size) {
    long before = old ? (long)malloc_usable_size(old) : 0;
    void *p = __libc_realloc(old, size);
    if (p) {
        count((long)malloc_usable_size(p) - before);
    } else if (old && size == 0) {
        count(-before);
    }
    return p;
}

/* --- the files --- */

static int run(const char *cmd) {
    int status = system(cmd);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

/* Runs SCRIPT (a path in the source tree) with OUTDIR under /usr/bin/python3. */
static void run_python(const char *script, const char *outdir) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, PYTHON " '%s/%s' '%s' >/dev/null 2>&1", testenv_source_dir(), script, outdir);
    if (run(cmd) != 0) fail_msg("%s failed: %s", script, cmd);
}

#endif

static char *dir;

static int make_sets(void **state) {
    (void)state;
#ifdef HASHMEM_COUNTING
    dir = testenv_tmpdir("hashmem");
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/set", dir);
    run_python("tests/hasher/make_images.py", sub);
    snprintf(sub, sizeof sub, "%s/large", dir);
    run_python("imghash/tests/make_large_images.py", sub);
#endif
    return 0;
}

static int remove_sets(void **state) {
    (void)state;
    int rc = dir ? testenv_rmtree(dir) : 0;
    free(dir);
    return rc;
}

#ifdef HASHMEM_COUNTING
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    if (size && fread(data, 1, (size_t)size, f) != (size_t)size) fail_msg("cannot read %s", path);
    fclose(f);
    *len = (size_t)size;
    return data;
}

typedef struct tally {
    int files;
    double worst_ratio; /* estimate / peak, of the large files */
    const char *worst;
} tally;

/* The peak of the bytes held while DATA is described, over what was held
 * before. */
static long measure(const unsigned char *data, size_t len, const ih_options *o) {
    json_object *entry = json_object_new_object();
    long before = atomic_load(&held);
    atomic_store(&peak, before);
    ih_describe(entry, data, len, o, NULL);
    long top = atomic_load(&peak) - before;
    json_object_put(entry);
    return top;
}

/* Every file under PATH: the estimate at least the peak; with LARGE, at
 * most twice it plus 1 MiB. */
static void check_dir(const char *path, bool large, tally *t) {
    DIR *d = opendir(path);
    if (!d) fail_msg("cannot open %s: %s", path, strerror(errno));
    ih_options o;
    ih_options_init(&o);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(e->d_name);
        if (n > 4 && (strcmp(e->d_name + n - 4, ".pgm") == 0 || strcmp(e->d_name + n - 4, ".err") == 0)) continue;
        char file[2048];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        size_t len;
        unsigned char *data = slurp(file, &len);
        uint64_t estimate = ih_describe_working_bytes(data, len, &o);
        measure(data, len, &o); /* the filter cache */
        long top = measure(data, len, &o);
        if (top > 0 && (uint64_t)top > estimate)
            fail_msg("%s: hashing took %ld bytes, ih_describe_working_bytes said %llu", file, top,
                     (unsigned long long)estimate);
        if (large) {
            if (estimate > 2 * (uint64_t)top + (1u << 20))
                fail_msg("%s: ih_describe_working_bytes says %llu for a peak of %ld: too far off to be of use", file,
                         (unsigned long long)estimate, top);
            double ratio = top > 0 ? (double)estimate / (double)top : 0;
            if (ratio > t->worst_ratio) t->worst_ratio = ratio;
        }
        t->files++;
        free(data);
    }
    closedir(d);
}
#endif

static void test_estimate_bounds_peak(void **state) {
    (void)state;
#ifndef HASHMEM_COUNTING
    print_message("skipped: AddressSanitizer owns malloc, so allocations cannot be counted here\n");
    skip();
#else
    tally t = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/large", dir);
    check_dir(path, true, &t);
    int large = t.files;
    snprintf(path, sizeof path, "%s/set", dir);
    check_dir(path, false, &t);
    fprintf(stderr,
            "hashmem: %d files within their estimate; for the %d large ones the estimate is at most %.2f times "
            "the peak\n",
            t.files, large, t.worst_ratio);
    assert_true(large >= 20);
    assert_true(t.files > 300);
#endif
}

/* The samples that only libheif and libavif read. */
static void test_heif_and_avif(void **state) {
    (void)state;
#ifndef HASHMEM_COUNTING
    skip();
#else
    ih_options o;
    ih_options_init(&o);
    static const char *const names[] = {"gradient_64x48.avif", "gradient_64x48.heic"};
    for (size_t i = 0; i < 2; i++) {
        char file[1024];
        snprintf(file, sizeof file, "%s/imghash/tests/%s", testenv_source_dir(), names[i]);
        size_t len;
        unsigned char *data = slurp(file, &len);
        uint64_t estimate = ih_describe_working_bytes(data, len, &o);
        measure(data, len, &o);
        long top = measure(data, len, &o);
        if ((uint64_t)top > estimate) fail_msg("%s: %ld bytes, estimate %llu", file, top, (unsigned long long)estimate);
        free(data);
    }
#endif
}

/* What is not an image costs only the fixed part; what is refused from its
 * header (too many pixels) costs nothing to decode. */
static void test_not_decoded(void **state) {
    (void)state;
    ih_options o;
    ih_options_init(&o);
    static const unsigned char html[] = "<!doctype html>";
    assert_true(ih_describe_working_bytes(html, sizeof html - 1, &o) <= 64 * 1024);
    assert_true(ih_describe_working_bytes((const unsigned char *)"", 0, &o) <= 64 * 1024);
    /* a PNG header of 30000 x 30000, over the default max_pixels */
    unsigned char png[33] = {0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0,    0, 0, 13, 'I', 'H', 'D',
                             'R',  0,   0,   0x75, 0x30, 0,    0,    0x75, 0x30, 8, 0, 0,  0,   0};
    assert_true(ih_describe_working_bytes(png, sizeof png, &o) <= 64 * 1024);
    o.max_pixels = 0; /* no limit: then its 900 megapixels are counted */
    assert_true(ih_describe_working_bytes(png, sizeof png, &o) >= 900000000ull);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_bounds_peak),
        cmocka_unit_test(test_heif_and_avif),
        cmocka_unit_test(test_not_decoded),
    };
    return cmocka_run_group_tests(tests, make_sets, remove_sets);
}
