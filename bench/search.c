/* search.c -- bench_search: the reverse image search index against a
 * brute-force scan and PostgreSQL, for bench/search.sh.
 *
 *   bench_search gen --model FILE --n N --out DIR [--seed S] [--zipf A] [--no-copy]
 *   bench_search index --dir DIR [--set variant|real|random] [--mode 0..4] [--no-scan]
 *   bench_search load --pg CONNINFO --exchange E --dir DIR
 *   bench_search pg --pg CONNINFO --table T --dir DIR [--count C]
 *
 * (--set, --mode and --no-scan narrow the index's measurement, for
 * profiling; --no-copy leaves out the COPY text.)
 *
 * gen: N images of 144-bit phash and dhash from the model of
 * bench/search_real.py (MODEL): the real images (originals and their
 * variants, with their own hashes, digests and sizes), then synthetic
 * groups until N: a group's size s is drawn from a Zipf law on 1..1000,
 * P(s) proportional to s^-A (A = --zipf, default 2.5); its centre's phash
 * and dhash are drawn bit by bit with the measured frequencies of ones;
 * each member is the centre with d_p and d_d distinct bits flipped, (d_p,
 * d_d) one of the measured (phash, dhash) distances between a real original
 * and one of its variants, drawn uniformly.  The images are then shuffled
 * (reposts come at any time), and image i of the shuffled order is the
 * archive item b.<i> (zero-padded, so that the ids sort as the images).
 * Writes DIR/phash.bin and DIR/dhash.bin (N records of 18 bytes, the `_img`
 * bytes), the queries DIR/q_variant.bin (1000: a fresh member of a random
 * synthetic group, drawn as members are, not in the index), DIR/q_real.bin
 * (the real query variants of the model, not in the index) and
 * DIR/q_random.bin (200 uniformly random hashes), and DIR/items.copy, the
 * items as PostgreSQL COPY text (id, data) for an archive table.  Everything
 * follows from the seed (default 16) and N.
 *
 * index (run it under taskset -c 0): builds a hindex of DIR/phash.bin and
 * answers every query of each set five ways -- top-10 within 21 bits (the
 * service's default), top-10 unbounded, every hash within 8, 12 and 16 bits
 * -- by hindex_search, then the same by a brute-force scan of the same
 * hashes as one contiguous array (POPCNT on 64-bit words, -O3 like the
 * index; a max-heap of the k best for top-k); compares every answer
 * (mismatches must be 0) and prints p50, p99 and mean of each query's CPU
 * time (the thread's clock, which the other tenants of a shared machine
 * disturb less than wall time; the index's wall-clock p50 and p99 beside,
 * and every figure on a RESULT line), the index's memory per hash, and
 * DIR/answers.txt for load and pg to compare with.
 *
 * load: loader_run of the archive tables of exchange E into a catalog, as
 * imgfeed-search does at start: seconds, rows/s, the process's CPU, its
 * resident memory and catalog_get_stats after the load; then catalog_search
 * (phash, k 10, max distance 21: the service's path, ties ordered by table
 * and id) for every query, timed, and compared with the index's answers.
 *
 * pg: PostgreSQL's scan of table T over imgfeed_images, as docs/querying.md
 * writes it, for the first C (default 5) variant queries: the top 10 by
 * imgfeed_hamming, and every image within 12 bits; timed and
 * compared with the index's answers; and the plan's parallel workers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "hindex.h"
#include "loader.h"
#include "log.h"
#include "xalloc.h"

#define HB 18   /* bytes of a 144-bit hash */
#define BITS 144
#define ZIPF_MAX 1000
#define NREAL_MAX 100000

#if defined(__x86_64__) && defined(__GNUC__)
#define SCAN_TARGET __attribute__((target("popcnt")))
#else
#define SCAN_TARGET
#endif

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_search: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time of this thread: a query's own cost, which the other tenants of
 * a shared machine disturb less than its wall time. */
static double thread_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

/* VmRSS or VmHWM of this process, in kB. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

/* --- xoshiro256** --- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rnd(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static double rnd_unit(rng *r) { return (double)(rnd(r) >> 11) * 0x1.0p-53; }

static uint64_t rnd_below(rng *r, uint64_t n) { return (uint64_t)(rnd_unit(r) * (double)n); }

/* --- hashes --- */

static void bits_draw(rng *r, const double *freq, unsigned char *h) {
    memset(h, 0, HB);
    for (int i = 0; i < BITS; i++)
        if (rnd_unit(r) < freq[i]) h[i / 8] |= (unsigned char)(0x80u >> (i % 8));
}

/* H with D distinct random bits flipped. */
static void bits_flip(rng *r, unsigned char *h, int d) {
    int pos[BITS];
    for (int i = 0; i < BITS; i++)
        pos[i] = i;
    for (int t = 0; t < d && t < BITS; t++) {
        int j = t + (int)rnd_below(r, (uint64_t)(BITS - t));
        int b = pos[j];
        pos[j] = pos[t];
        pos[t] = b;
        h[b / 8] ^= (unsigned char)(0x80u >> (b % 8));
    }
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64(const unsigned char *p, size_t n, char *out) {
    char *w = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *w++ = b64chars[v >> 18 & 63];
        *w++ = b64chars[v >> 12 & 63];
        *w++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *w = '\0';
    return out;
}

static int b64val(int c) {
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

/* Decodes the base64 of an 18-byte hash. */
static bool unb64_hash(const char *s, unsigned char *out) {
    if (strlen(s) != 24) return false;
    for (size_t i = 0; i < 6; i++) {
        uint32_t v = 0;
        for (int j = 0; j < 4; j++) {
            int c = b64val(s[4 * i + (size_t)j]);
            if (c < 0) return false;
            v = v << 6 | (uint32_t)c;
        }
        out[3 * i] = (unsigned char)(v >> 16);
        out[3 * i + 1] = (unsigned char)(v >> 8);
        out[3 * i + 2] = (unsigned char)v;
    }
    return true;
}

static char *hex(const unsigned char *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
    return out;
}

/* --- files --- */

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = xmalloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) die("%s: short read", path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) die("%s: cannot write", path);
}

static char *path_in(const char *dir, const char *name) { return xasprintf("%s/%s", dir, name); }

/* --- gen --- */

typedef struct real_image {
    int group;
    unsigned char phash[HB], dhash[HB];
    char sha1[41], md5[33], format[16], crc32[9], ahash[32], whash[32];
    long size, width, height;
} real_image;

typedef struct model {
    double pfreq[BITS], dfreq[BITS];
    int (*dist)[2];
    size_t ndist;
    real_image *real;
    size_t nreal;
    unsigned char *queries; /* phash of each query variant */
    size_t nqueries;
} model;

static void read_freq(char *rest, double *out, const char *path) {
    char *s = rest;
    for (int i = 0; i < BITS; i++) {
        char *end;
        out[i] = strtod(s, &end);
        if (end == s) die("%s: a frequency line has fewer than %d values", path, BITS);
        s = end;
    }
}

static void read_model(const char *path, model *m) {
    FILE *f = fopen(path, "r");
    if (!f) die("%s: %s", path, strerror(errno));
    memset(m, 0, sizeof *m);
    char line[4096];
    size_t dcap = 0, rcap = 0, qcap = 0;
    int have = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "pfreq ", 6) == 0) {
            read_freq(line + 6, m->pfreq, path);
            have |= 1;
        } else if (strncmp(line, "dfreq ", 6) == 0) {
            read_freq(line + 6, m->dfreq, path);
            have |= 2;
        } else if (strncmp(line, "dist ", 5) == 0) {
            if (m->ndist == dcap) m->dist = xrealloc(m->dist, (dcap = dcap ? 2 * dcap : 256) * sizeof *m->dist);
            if (sscanf(line + 5, "%d %d", &m->dist[m->ndist][0], &m->dist[m->ndist][1]) != 2) die("%s: bad dist", path);
            m->ndist++;
        } else if (strncmp(line, "real ", 5) == 0) {
            if (m->nreal == rcap) m->real = xrealloc(m->real, (rcap = rcap ? 2 * rcap : 256) * sizeof *m->real);
            real_image *r = &m->real[m->nreal];
            char kind[32], ph[64], dh[64];
            if (sscanf(line + 5, "%d %31s %63s %63s %40s %32s %ld %ld %ld %15s %8s %31s %31s", &r->group, kind, ph, dh,
                       r->sha1, r->md5, &r->size, &r->width, &r->height, r->format, r->crc32, r->ahash, r->whash) != 13 ||
                !unb64_hash(ph, r->phash) || !unb64_hash(dh, r->dhash))
                die("%s: bad real line: %s", path, line);
            if (++m->nreal > NREAL_MAX) die("%s: too many real images", path);
        } else if (strncmp(line, "query ", 6) == 0) {
            if (m->nqueries == qcap) m->queries = xrealloc(m->queries, (qcap = qcap ? 2 * qcap : 256) * HB);
            int g;
            char ph[64];
            if (sscanf(line + 6, "%d %63s", &g, ph) != 2 || !unb64_hash(ph, m->queries + m->nqueries * HB))
                die("%s: bad query line", path);
            m->nqueries++;
        }
    }
    fclose(f);
    if (have != 3 || !m->ndist || !m->nreal) die("%s: not a model of bench/search_real.py", path);
}

/* The COPY row of image P: id TAB data. */
static void write_item(FILE *f, size_t p, int width, uint64_t seed, const unsigned char *ph, const unsigned char *dh,
                       const real_image *real) {
    char id[32], b_ph[32], b_dh[32], b_ah[32], b_wh[32], sha1[41], md5[33], crc[9];
    snprintf(id, sizeof id, "b.%0*zu", width & 15, p); /* width 8..10 */
    long size, w, h;
    const char *format;
    if (real) {
        size = real->size;
        w = real->width;
        h = real->height;
        format = real->format;
        strcpy(sha1, real->sha1);
        strcpy(md5, real->md5);
        strcpy(crc, real->crc32);
        strcpy(b_ah, real->ahash);
        strcpy(b_wh, real->whash);
    } else {
        static const int sizes[][2] = {{1920, 1080}, {1280, 720}, {800, 600}, {1024, 768}, {2560, 1440},
                                       {720, 1280}, {500, 500},   {640, 480}, {1200, 1600}, {3000, 2000}};
        rng r;
        rng_seed(&r, seed ^ (0x5851f42d4c957f2dull * (p + 1)));
        unsigned char bytes[20 + 16 + 4 + 18 + 8];
        for (size_t i = 0; i < sizeof bytes; i++)
            bytes[i] = (unsigned char)rnd(&r);
        hex(bytes, 20, sha1);
        hex(bytes + 20, 16, md5);
        hex(bytes + 36, 4, crc);
        b64(bytes + 40, 18, b_ah);
        b64(bytes + 58, 8, b_wh);
        const int *s = sizes[rnd_below(&r, sizeof sizes / sizeof sizes[0])];
        w = s[0];
        h = s[1];
        size = 20000 + (long)rnd_below(&r, 2000000);
        format = "jpeg";
    }
    b64(ph, HB, b_ph);
    b64(dh, HB, b_dh);
    fprintf(f,
            "%s\t{\"_v\":1,\"_id\":\"%s\",\"_chan\":\"bench\",\"_board\":\"b\",\"_type\":\"image\","
            "\"_crawled_at\":%zu,\"_urls\":[\"https://i.bench.invalid/b/%s.%s\"],\"_files\":1,"
            "\"_img\":[{\"url\":0,\"size\":%ld,\"width\":%ld,\"height\":%ld,\"format\":\"%s\",\"crc32\":\"%s\","
            "\"md5\":\"%s\",\"sha1\":\"%s\",\"ahash\":\"%s\",\"dhash\":\"%s\",\"phash\":\"%s\",\"whash\":\"%s\"}]}\n",
            id, id, (size_t)1764547200 + p / 64, id + 2, strcmp(format, "jpeg") == 0 ? "jpg" : format, size, w, h,
            format, crc, md5, sha1, b_ah, b_dh, b_ph, b_wh);
}

static int id_width(size_t n) {
    int w = 1;
    for (size_t v = n > 0 ? n - 1 : 0; v >= 10; v /= 10)
        w++;
    return w < 8 ? 8 : w;
}

static int cmd_gen(int argc, char **argv) {
    const char *model_path = NULL, *out = NULL;
    size_t n = 0;
    uint64_t seed = 16;
    double zipf = 2.5;
    size_t nvariant = 1000, nrandom = 200;
    bool copy = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-copy") == 0) {
            copy = false;
            continue;
        }
        if (!v) die("gen: %s needs a value", a);
        i++;
        if (strcmp(a, "--model") == 0) model_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--n") == 0) n = strtoull(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0) seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--zipf") == 0) zipf = strtod(v, NULL);
        else if (strcmp(a, "--variant-queries") == 0) nvariant = strtoull(v, NULL, 10);
        else if (strcmp(a, "--random-queries") == 0) nrandom = strtoull(v, NULL, 10);
        else die("gen: unknown option %s", a);
    }
    if (!model_path || !out || n == 0 || n > UINT32_MAX - 1) die("gen: --model FILE --n N --out DIR are required");
    model m;
    read_model(model_path, &m);
    if (m.nreal > n) die("gen: N (%zu) is below the real images (%zu)", n, m.nreal);

    double t0 = now_s();
    rng r;
    rng_seed(&r, seed);
    unsigned char *ph = xmalloc(n * HB), *dh = xmalloc(n * HB);
    /* Creation order first: the real images, then the synthetic groups. */
    for (size_t i = 0; i < m.nreal; i++) {
        memcpy(ph + i * HB, m.real[i].phash, HB);
        memcpy(dh + i * HB, m.real[i].dhash, HB);
    }
    double cdf[ZIPF_MAX + 1];
    cdf[0] = 0;
    for (int s = 1; s <= ZIPF_MAX; s++)
        cdf[s] = cdf[s - 1] + pow(s, -zipf);
    size_t groups = 0, gcap = 0, singletons = 0, big_groups = 0, big_images = 0, max_size = 0;
    size_t by_size[ZIPF_MAX + 1] = {0};
    unsigned char *centres = NULL;
    for (size_t c = m.nreal; c < n;) {
        double u = rnd_unit(&r) * cdf[ZIPF_MAX];
        size_t lo = 1, hi = ZIPF_MAX;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] >= u) hi = mid;
            else lo = mid + 1;
        }
        size_t size = lo < n - c ? lo : n - c;
        if (groups == gcap) centres = xrealloc(centres, (gcap = gcap ? 2 * gcap : 65536) * HB);
        unsigned char *pc = centres + groups * HB, dc[HB];
        bits_draw(&r, m.pfreq, pc);
        bits_draw(&r, m.dfreq, dc);
        for (size_t j = 0; j < size; j++, c++) {
            const int *d = m.dist[rnd_below(&r, m.ndist)];
            memcpy(ph + c * HB, pc, HB);
            memcpy(dh + c * HB, dc, HB);
            bits_flip(&r, ph + c * HB, d[0]);
            bits_flip(&r, dh + c * HB, d[1]);
        }
        groups++;
        by_size[size]++;
        if (size == 1) singletons++;
        if (size >= 100) {
            big_groups++;
            big_images += size;
        }
        if (size > max_size) max_size = size;
    }
    /* Shuffle: position[c] of each image in creation order. */
    uint32_t *pos = xmalloc(n * sizeof *pos);
    for (size_t i = 0; i < n; i++)
        pos[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd_below(&r, i + 1);
        uint32_t t = pos[i];
        pos[i] = pos[j];
        pos[j] = t;
    }
    unsigned char *sph = xmalloc(n * HB), *sdh = xmalloc(n * HB);
    for (size_t c = 0; c < n; c++) {
        memcpy(sph + (size_t)pos[c] * HB, ph + c * HB, HB);
        memcpy(sdh + (size_t)pos[c] * HB, dh + c * HB, HB);
    }
    free(ph);
    free(dh);
    /* The real image at each position, if any. */
    const real_image **real_at = xcalloc(n, sizeof *real_at);
    for (size_t i = 0; i < m.nreal; i++)
        real_at[pos[i]] = &m.real[i];
    free(pos);

    /* Queries. */
    rng qr;
    rng_seed(&qr, seed * 1000003 + 7);
    unsigned char *qv = xmalloc((nvariant ? nvariant : 1) * HB), *qrand = xmalloc((nrandom ? nrandom : 1) * HB);
    for (size_t i = 0; i < nvariant && groups; i++) {
        size_t g = rnd_below(&qr, groups);
        memcpy(qv + i * HB, centres + g * HB, HB);
        bits_flip(&qr, qv + i * HB, m.dist[rnd_below(&qr, m.ndist)][0]);
    }
    for (size_t i = 0; i < nrandom; i++)
        for (size_t b = 0; b < HB; b++)
            qrand[i * HB + b] = (unsigned char)rnd(&qr);
    free(centres);

    char *p;
    write_file(p = path_in(out, "phash.bin"), sph, n * HB), free(p);
    write_file(p = path_in(out, "dhash.bin"), sdh, n * HB), free(p);
    write_file(p = path_in(out, "q_variant.bin"), qv, nvariant * HB), free(p);
    write_file(p = path_in(out, "q_real.bin"), m.queries, m.nqueries * HB), free(p);
    write_file(p = path_in(out, "q_random.bin"), qrand, nrandom * HB), free(p);
    double t1 = now_s();
    if (copy) {
        p = path_in(out, "items.copy");
        FILE *f = fopen(p, "w");
        if (!f) die("%s: %s", p, strerror(errno));
        setvbuf(f, NULL, _IOFBF, 1 << 20);
        int width = id_width(n);
        for (size_t i = 0; i < n; i++)
            write_item(f, i, width, seed, sph + i * HB, sdh + i * HB, real_at[i]);
        if (fclose(f) != 0) die("%s: cannot write", p);
        free(p);
    }
    double t2 = now_s();

    size_t synth = n - m.nreal, two_to_9 = 0, ten_to_99 = 0;
    for (size_t s = 2; s <= ZIPF_MAX; s++) {
        if (s < 10) two_to_9 += by_size[s] * s;
        else if (s < 100) ten_to_99 += by_size[s] * s;
    }
    printf("gen: %zu images: %zu real (%zu groups of an original and its variants), %zu synthetic in %zu groups\n", n,
           m.nreal, m.nreal ? (size_t)m.real[m.nreal - 1].group + 1 : 0, synth, groups);
    printf("gen: group sizes Zipf s^-%.2f on 1..%d: %.1f%% of the groups are singletons, %.1f%% of the synthetic "
           "images; images in groups of 2-9 %.1f%%, 10-99 %.1f%%, 100+ %.1f%% (%zu groups); largest %zu; mean %.2f\n",
           zipf, ZIPF_MAX, 100.0 * (double)singletons / (double)groups, 100.0 * (double)singletons / (double)synth,
           100.0 * (double)two_to_9 / (double)synth, 100.0 * (double)ten_to_99 / (double)synth,
           100.0 * (double)big_images / (double)synth, big_groups, max_size, (double)synth / (double)groups);
    printf("gen: member distances from %zu measured (phash, dhash) pairs; queries: %zu variant, %zu real, %zu random; "
           "hashes in %.1f s, COPY text in %.1f s\n",
           m.ndist, nvariant, m.nqueries, nrandom, t1 - t0, t2 - t1);
    free(sph);
    free(sdh);
    free(real_at);
    free(qv);
    free(qrand);
    return 0;
}

/* --- the brute-force scan --- */

typedef struct scan_set {
    const unsigned char *hs;
    size_t n;
} scan_set;

static bool hit_less(const hindex_hit *a, const hindex_hit *b) {
    return a->distance != b->distance ? a->distance < b->distance : a->ref < b->ref;
}

static int hit_cmp(const void *a, const void *b) {
    const hindex_hit *x = a, *y = b;
    return hit_less(x, y) ? -1 : hit_less(y, x) ? 1 : 0;
}

/* The Hamming distance of the 144-bit hash at P (8 + 8 + 2 bytes) to the query's words Q0, Q1, Q2. */
SCAN_TARGET __attribute__((always_inline)) static inline int scan_distance(const unsigned char *p, uint64_t q0,
                                                                         uint64_t q1, uint16_t q2) {
    uint64_t a, b;
    uint16_t c;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    memcpy(&c, p + 16, 2);
    return __builtin_popcountll(a ^ q0) + __builtin_popcountll(b ^ q1) + __builtin_popcount((unsigned)(c ^ q2));
}

/* The K nearest within MAXD (K 0: every one), nearest first, ties by
 * position: the hindex's order with NULL for its tie order. */
SCAN_TARGET __attribute__((noinline)) static size_t scan_query(const scan_set *s, const unsigned char *q, int maxd,
                                                               size_t k, hindex_hit **out) {
    uint64_t q0, q1;
    uint16_t q2;
    memcpy(&q0, q, 8);
    memcpy(&q1, q + 8, 8);
    memcpy(&q2, q + 16, 2);
    const unsigned char *p = s->hs;
    size_t n = s->n, nh = 0, cap = k ? k : 256;
    hindex_hit *h = xmalloc(cap * sizeof *h);
    int bound = maxd;
    if (k) {
        /* A max-heap of the k best by (distance, position): a later hash at the
         * worst kept distance comes after it, so only a nearer one gets in. */
        for (size_t i = 0; i < n; i++, p += HB) {
            int d = scan_distance(p, q0, q1, q2);
            if (d > bound) continue;
            hindex_hit x = {(uint32_t)i, d};
            size_t at;
            if (nh < k) {
                at = nh++;
                while (at > 0 && hit_less(&h[(at - 1) / 2], &x)) {
                    h[at] = h[(at - 1) / 2];
                    at = (at - 1) / 2;
                }
                h[at] = x;
            } else {
                at = 0;
                for (;;) {
                    size_t l = 2 * at + 1, w = at;
                    const hindex_hit *wv = &x;
                    if (l < nh && hit_less(wv, &h[l])) w = l, wv = &h[l];
                    if (l + 1 < nh && hit_less(wv, &h[l + 1])) w = l + 1, wv = &h[l + 1];
                    if (w == at) break;
                    h[at] = h[w];
                    at = w;
                }
                h[at] = x;
            }
            if (nh == k) bound = h[0].distance - 1;
        }
        qsort(h, nh, sizeof *h, hit_cmp);
    } else {
        for (size_t i = 0; i < n; i++, p += HB) {
            int d = scan_distance(p, q0, q1, q2);
            if (d > bound) continue;
            if (nh == cap) h = xrealloc(h, (cap *= 2) * sizeof *h);
            h[nh++] = (hindex_hit){(uint32_t)i, d};
        }
        /* Counting sort by distance: positions stay in order within one. */
        size_t count[BITS + 2] = {0};
        for (size_t i = 0; i < nh; i++)
            count[h[i].distance + 1]++;
        for (int d = 0; d <= BITS; d++)
            count[d + 1] += count[d];
        hindex_hit *sorted = xmalloc((nh ? nh : 1) * sizeof *sorted);
        for (size_t i = 0; i < nh; i++)
            sorted[count[h[i].distance]++] = h[i];
        free(h);
        h = sorted;
    }
    if (!nh) {
        free(h);
        h = NULL;
    }
    *out = h;
    return nh;
}

/* --- index --- */

typedef struct qset {
    const char *name, *file;
    unsigned char *q;
    size_t n;
} qset;

typedef struct mode {
    const char *name, *tag;
    size_t k;
    int radius;
} mode;

static const mode modes[] = {
    {"top-10 <= 21", "k10r21", 10, 21}, {"top-10", "k10", 10, BITS}, {"radius 8", "r8", 0, 8},
    {"radius 12", "r12", 0, 12},        {"radius 16", "r16", 0, 16},
};
#define NMODES (sizeof modes / sizeof modes[0])

static qset sets[] = {
    {"variant", "q_variant.bin", NULL, 0},
    {"real", "q_real.bin", NULL, 0},
    {"random", "q_random.bin", NULL, 0},
};
#define NSETS (sizeof sets / sizeof sets[0])

static void load_sets(const char *dir) {
    for (size_t i = 0; i < NSETS; i++) {
        char *p = path_in(dir, sets[i].file);
        size_t len;
        sets[i].q = read_file(p, &len);
        sets[i].n = len / HB;
        free(p);
    }
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct summary {
    double p50, p99, mean, max;
} summary;

/* Nearest-rank percentiles of V (N values, sorted in place). */
static summary summarize(double *v, size_t n) {
    summary s = {0};
    if (!n) return s;
    qsort(v, n, sizeof *v, dbl_cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.p50 = v[(size_t)ceil(0.50 * (double)n) - 1];
    s.p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
    s.mean = sum / (double)n;
    s.max = v[n - 1];
    return s;
}

static bool same_hits(const hindex_hit *a, size_t na, const hindex_hit *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].ref != b[i].ref || a[i].distance != b[i].distance) return false;
    return true;
}

static void write_answer(FILE *f, const char *set, size_t qi, const char *tag, const hindex_hit *h, size_t n) {
    fprintf(f, "%s %zu %s %zu", set, qi, tag, n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " %u:%d", h[i].ref, h[i].distance);
    fputc('\n', f);
}

static int cmd_index(int argc, char **argv) {
    const char *dir = NULL, *only_set = NULL;
    int only_mode = -1;
    bool scan = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-scan") == 0) {
            scan = false;
            continue;
        }
        if (i + 1 >= argc) die("index: %s needs a value", argv[i]);
        if (strcmp(argv[i], "--dir") == 0) dir = argv[++i];
        else if (strcmp(argv[i], "--set") == 0) only_set = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0) only_mode = atoi(argv[++i]);
        else die("index: unknown option %s", argv[i]);
    }
    if (!dir) die("index: --dir DIR is required");
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("popcnt")) die("index: this CPU has no POPCNT instruction");
#endif
    char *p = path_in(dir, "phash.bin");
    size_t len;
    unsigned char *hs = read_file(p, &len);
    free(p);
    size_t n = len / HB;
    load_sets(dir);

    double t0 = now_s(), c0 = cpu_s();
    hindex *x = hindex_new(HB, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        hindex_add(x, hs + i * HB, (uint32_t)i);
    hindex_build(x);
    double t1 = now_s(), c1 = cpu_s();
    size_t mem = hindex_memory(x);
    printf("index: %zu hashes of 144 bits; built in %.2f s (%.2f CPU-s); hindex_memory %.1f MB = %.2f bytes a hash "
           "(goal <= 64)\n",
           n, t1 - t0, c1 - c0, (double)mem / 1e6, (double)mem / (double)hindex_count(x));
    printf("index: brute-force scan: the same %zu hashes in one array of %.1f MB, POPCNT on 64-bit words, -O3\n", n,
           (double)len / 1e6);
    printf("index: query times in ms of the thread's CPU time (p50 / p99 / mean; wall-clock times on the RESULT lines); "
           "scan/index = the scan's time over the index's\n\n");
    printf("%-8s %-13s %6s | %-26s | %-26s | %-17s | %-17s | %s\n", "queries", "mode", "hits",
           "index p50 / p99 / mean", "scan p50 / p99 / mean", "scan/index p50,p99", "index wall p50,p99",
           "index: walked (scanned), mean candidates, mismatches");

    scan_set ss = {hs, n};
    p = path_in(dir, "answers.txt");
    FILE *ans = fopen(p, "w");
    if (!ans) die("%s: %s", p, strerror(errno));
    free(p);
    size_t total_mismatch = 0;
    for (size_t si = 0; si < NSETS; si++) {
        qset *qs = &sets[si];
        if (!qs->n || (only_set && strcmp(only_set, qs->name) != 0)) continue;
        double *ti = xmalloc(qs->n * sizeof *ti), *ts = xmalloc(qs->n * sizeof *ts);
        double *wi = xmalloc(qs->n * sizeof *wi), *ws = xmalloc(qs->n * sizeof *ws);
        hindex_hit **got = xmalloc(qs->n * sizeof *got);
        size_t *ngot = xmalloc(qs->n * sizeof *ngot);
        for (size_t mi = 0; mi < NMODES; mi++) {
            const mode *md = &modes[mi];
            if (only_mode >= 0 && (size_t)only_mode != mi) continue;
            size_t scanned = 0;
            double cand = 0, hits = 0;
            for (size_t i = 0; i < qs->n; i++) {
                hindex_trace tr;
                double a = now_s(), ac = thread_cpu_s();
                ngot[i] = hindex_search(x, qs->q + i * HB, md->radius, md->k, &got[i], &tr);
                ti[i] = (thread_cpu_s() - ac) * 1e3;
                wi[i] = (now_s() - a) * 1e3;
                scanned += tr.scanned;
                cand += (double)tr.candidates;
                hits += (double)ngot[i];
            }
            size_t mismatch = 0;
            for (size_t i = 0; i < qs->n; i++) {
                ts[i] = ws[i] = 0;
                if (!scan) continue;
                hindex_hit *h;
                double a = now_s(), ac = thread_cpu_s();
                size_t nh = scan_query(&ss, qs->q + i * HB, md->radius, md->k, &h);
                ts[i] = (thread_cpu_s() - ac) * 1e3;
                ws[i] = (now_s() - a) * 1e3;
                if (!same_hits(got[i], ngot[i], h, nh)) mismatch++;
                free(h);
            }
            for (size_t i = 0; i < qs->n; i++) {
                if (mi == 0 || mi == 1 || mi == 3) write_answer(ans, qs->name, i, md->tag, got[i], ngot[i]);
                free(got[i]);
            }
            total_mismatch += mismatch;
            summary a = summarize(ti, qs->n), b = summarize(ts, qs->n);
            summary aw = summarize(wi, qs->n), bw = summarize(ws, qs->n);
            printf("%-8s %-13s %6.1f | %7.3f / %7.3f / %7.3f | %7.2f / %7.2f / %7.2f | %7.1fx %7.1fx | %7.3f %8.3f | "
                   "%zu (%zu), %.0f, %zu\n",
                   qs->name, md->name, hits / (double)qs->n, a.p50, a.p99, a.mean, b.p50, b.p99, b.mean, b.p50 / a.p50,
                   b.p99 / a.p99, aw.p50, aw.p99, qs->n - scanned, scanned, cand / (double)qs->n, mismatch);
            printf("RESULT set=%s mode=%s n=%zu index_p50=%.4f index_p99=%.4f index_mean=%.4f index_max=%.4f "
                   "scan_p50=%.3f scan_p99=%.3f scan_mean=%.3f scanned=%zu candidates=%.0f hits=%.1f mismatches=%zu "
                   "wall_index_p50=%.4f wall_index_p99=%.4f wall_scan_p50=%.3f wall_scan_p99=%.3f\n",
                   qs->name, md->tag, qs->n, a.p50, a.p99, a.mean, a.max, b.p50, b.p99, b.mean, scanned,
                   cand / (double)qs->n, hits / (double)qs->n, mismatch, aw.p50, aw.p99, bw.p50, bw.p99);
            fflush(stdout);
        }
        free(ti);
        free(ts);
        free(wi);
        free(ws);
        free(got);
        free(ngot);
    }
    fclose(ans);
    printf("\nindex: mismatches against the scan, every query and mode: %zu\n", total_mismatch);
    hindex_free(x);
    free(hs);
    return total_mismatch ? 1 : 0;
}

/* --- answers, for load and pg --- */

typedef struct answer {
    char set[16], tag[16];
    size_t qi, n;
    hindex_hit *h;
} answer;

static answer *answers;
static size_t nanswers;

static void load_answers(const char *dir) {
    char *p = path_in(dir, "answers.txt");
    FILE *f = fopen(p, "r");
    if (!f) die("%s: %s (run bench_search index first)", p, strerror(errno));
    free(p);
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (nanswers == cap) answers = xrealloc(answers, (cap = cap ? 2 * cap : 1024) * sizeof *answers);
        answer *a = &answers[nanswers++];
        int off = 0;
        if (sscanf(line, "%15s %zu %15s %zu%n", a->set, &a->qi, a->tag, &a->n, &off) != 4) die("answers.txt: bad line");
        a->h = xmalloc((a->n ? a->n : 1) * sizeof *a->h);
        char *s = line + off;
        for (size_t i = 0; i < a->n; i++) {
            char *end;
            a->h[i].ref = (uint32_t)strtoul(s, &end, 10);
            a->h[i].distance = (int)strtol(end + 1, &s, 10);
        }
    }
    free(line);
    fclose(f);
}

static const answer *find_answer(const char *set, size_t qi, const char *tag) {
    for (size_t i = 0; i < nanswers; i++)
        if (answers[i].qi == qi && strcmp(answers[i].set, set) == 0 && strcmp(answers[i].tag, tag) == 0)
            return &answers[i];
    die("no answer for %s %zu %s", set, qi, tag);
}

/* The position of archive item "b.<digits>". */
static uint32_t position_of(const char *id) {
    if (strncmp(id, "b.", 2) != 0) return UINT32_MAX;
    return (uint32_t)strtoul(id + 2, NULL, 10);
}

/* --- load --- */

static int cmd_load(int argc, char **argv) {
    const char *pg = NULL, *exchange = "chan", *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pg") == 0) pg = argv[i + 1];
        else if (strcmp(argv[i], "--exchange") == 0) exchange = argv[i + 1];
        else if (strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
        else die("load: unknown option %s", argv[i]);
    }
    if (!pg || !dir) die("load: --pg CONNINFO --dir DIR are required");
    load_sets(dir);
    load_answers(dir);
    long rss0 = status_kb("VmRSS");
    catalog *c = catalog_new();
    loader_progress prog;
    atomic_init(&prog.tables, 0);
    atomic_init(&prog.rows, 0);
    atomic_init(&prog.items, 0);
    atomic_init(&prog.bad_fields, 0);
    char why[512];
    double t0 = now_s(), c0 = cpu_s();
    if (loader_run(pg, exchange, c, &prog, why, sizeof why) != 0) die("load: %s", why);
    double t1 = now_s(), c1 = cpu_s();
    long rss = status_kb("VmRSS"), hwm = status_kb("VmHWM");
    catalog_stats st;
    catalog_get_stats(c, &st);
    uint64_t rows = atomic_load(&prog.rows);
    printf("load: %" PRIu64 " rows (%" PRIu64 " items, %" PRIu64 " tables, %" PRIu64 " bad fields) in %.1f s = %.0f "
           "rows/s; this process's CPU %.1f s (goal: 10 M rows in under 120 s)\n",
           rows, (uint64_t)atomic_load(&prog.items), (uint64_t)atomic_load(&prog.tables),
           (uint64_t)atomic_load(&prog.bad_fields), t1 - t0, (double)rows / (t1 - t0), c1 - c0);
    double img = (double)st.images;
    printf("load: catalog: %" PRIu64 " images, %" PRIu64 " phash, %" PRIu64 " dhash, %" PRIu64 " sha1, %" PRIu64
           " md5\n",
           st.images, st.hashed[CATALOG_PHASH], st.hashed[CATALOG_DHASH], st.hashed[CATALOG_SHA1],
           st.hashed[CATALOG_MD5]);
    printf("load: memory per image: index_bytes %.1f (phash and dhash indexes; phash alone %.1f), catalog_bytes %.1f, "
           "together %.1f; process RSS %.1f (%.0f MB; %.0f MB before the load), peak RSS %.1f (%.0f MB)\n",
           (double)st.index_bytes / img, (double)st.index_bytes / 2 / img, (double)st.catalog_bytes / img,
           (double)(st.index_bytes + st.catalog_bytes) / img, (double)(rss - rss0) * 1024 / img, (double)rss / 1024,
           (double)rss0 / 1024, (double)hwm * 1024 / img, (double)hwm / 1024);
    printf("RESULT load rows=%" PRIu64 " seconds=%.2f rows_per_s=%.0f cpu=%.2f index_bytes=%" PRIu64
           " catalog_bytes=%" PRIu64 " rss_kb=%ld rss0_kb=%ld hwm_kb=%ld images=%" PRIu64 "\n",
           rows, t1 - t0, (double)rows / (t1 - t0), c1 - c0, st.index_bytes, st.catalog_bytes, rss, rss0, hwm,
           st.images);

    /* The service's path: catalog_search, ties by table and id. */
    size_t mismatch = 0;
    for (size_t si = 0; si < NSETS; si++) {
        qset *qs = &sets[si];
        if (!qs->n) continue;
        double *t = xmalloc(qs->n * sizeof *t), *w = xmalloc(qs->n * sizeof *w);
        for (size_t i = 0; i < qs->n; i++) {
            catalog_hit *h;
            double a = now_s(), ac = thread_cpu_s();
            size_t nh = catalog_search(c, CATALOG_PHASH, qs->q + i * HB, HB, 21, 10, &h, NULL);
            t[i] = (thread_cpu_s() - ac) * 1e3;
            w[i] = (now_s() - a) * 1e3;
            const answer *ans = find_answer(qs->name, i, "k10r21");
            bool same = nh == ans->n;
            for (size_t j = 0; same && j < nh; j++)
                same = position_of(h[j].id) == ans->h[j].ref && h[j].distance == ans->h[j].distance;
            mismatch += !same;
            free(h);
        }
        summary s = summarize(t, qs->n), sw = summarize(w, qs->n);
        printf("load: catalog_search top-10 <= 21, %-8s CPU p50 %.3f ms, p99 %.3f ms, mean %.3f ms (wall p50 %.3f, "
               "p99 %.3f)\n",
               qs->name, s.p50, s.p99, s.mean, sw.p50, sw.p99);
        printf("RESULT catalog set=%s p50=%.4f p99=%.4f mean=%.4f wall_p50=%.4f wall_p99=%.4f\n", qs->name, s.p50,
               s.p99, s.mean, sw.p50, sw.p99);
        free(t);
        free(w);
    }
    printf("load: catalog_search answers that differ from the index's: %zu\n", mismatch);
    catalog_free(c);
    return mismatch ? 1 : 0;
}

/* --- pg --- */

static double pg_query(PGconn *conn, const char *sql, const char *param, PGresult **out) {
    const char *params[1] = {param};
    double a = now_s();
    PGresult *r = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    double t = now_s() - a;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) die("pg: %s", PQresultErrorMessage(r));
    *out = r;
    return t;
}

static bool same_rows(PGresult *r, const answer *a) {
    if ((size_t)PQntuples(r) != a->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (atoi(PQgetvalue(r, (int)i, 0)) != a->h[i].distance || position_of(PQgetvalue(r, (int)i, 1)) != a->h[i].ref)
            return false;
    return true;
}

static int cmd_pg(int argc, char **argv) {
    const char *pg = NULL, *table = NULL, *dir = NULL;
    size_t count = 5;
    int radius = 12;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pg") == 0) pg = argv[i + 1];
        else if (strcmp(argv[i], "--table") == 0) table = argv[i + 1];
        else if (strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) count = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--radius") == 0) radius = atoi(argv[i + 1]);
        else die("pg: unknown option %s", argv[i]);
    }
    if (!pg || !table || !dir) die("pg: --pg CONNINFO --table T --dir DIR are required");
    if (radius != 12) die("pg: the index's answers are kept for radius 12 only");
    load_sets(dir);
    load_answers(dir);
    PGconn *conn = PQconnectdb(pg);
    if (PQstatus(conn) != CONNECTION_OK) die("pg: %s", PQerrorMessage(conn));
    char *top = xasprintf("SELECT imgfeed_hamming(i.phash, $1) AS distance, p.id, i.n\n"
                          "FROM %s AS p, imgfeed_images(p.data) AS i\n"
                          "ORDER BY distance, p.id, i.n\nLIMIT 10",
                          table);
    char *within = xasprintf("SELECT imgfeed_hamming(i.phash, $1) AS distance, p.id, i.n\n"
                             "FROM %s AS p, imgfeed_images(p.data) AS i\n"
                             "WHERE imgfeed_hamming(i.phash, $1) <= %d\nORDER BY distance, p.id, i.n",
                             table, radius);
    printf("pg: top 10:\n%s\n", top);
    printf("pg: within %d:\n%s\n", radius, within);
    const qset *qs = &sets[0];
    if (count > qs->n) count = qs->n;
    char b[32];
    /* The plan, and the workers it ran with. */
    char *explain = xasprintf("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) %s", top);
    PGresult *r;
    pg_query(conn, explain, b64(qs->q, HB, b), &r);
    printf("pg: plan of the top 10 (EXPLAIN ANALYZE):\n");
    for (int i = 0; i < PQntuples(r); i++)
        printf("  %s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    free(explain);
    double *tt = xmalloc((count ? count : 1) * sizeof *tt), *tw = xmalloc((count ? count : 1) * sizeof *tw);
    size_t mismatch = 0;
    for (size_t i = 0; i < count; i++) {
        b64(qs->q + i * HB, HB, b);
        tt[i] = pg_query(conn, top, b, &r);
        bool ok1 = same_rows(r, find_answer(qs->name, i, "k10"));
        PQclear(r);
        tw[i] = pg_query(conn, within, b, &r);
        const answer *a12 = find_answer(qs->name, i, "r12");
        bool ok2 = same_rows(r, a12);
        PQclear(r);
        mismatch += !ok1 + !ok2;
        printf("pg: query %zu (%s): top 10 %.2f s (%s), within %d %.2f s, %zu rows (%s)\n", i, b, tt[i],
               ok1 ? "same as the index" : "DIFFERS from the index", radius, tw[i], a12->n,
               ok2 ? "same" : "DIFFERS");
        fflush(stdout);
    }
    summary s1 = summarize(tt, count), s2 = summarize(tw, count);
    printf("pg: top 10 median %.2f s (mean %.2f, max %.2f); within %d median %.2f s (mean %.2f); answers that differ "
           "from the index's: %zu\n",
           s1.p50, s1.mean, s1.max, radius, s2.p50, s2.mean, mismatch);
    printf("RESULT pg top10_p50=%.3f top10_mean=%.3f within_p50=%.3f within_mean=%.3f mismatches=%zu\n", s1.p50,
           s1.mean, s2.p50, s2.mean, mismatch);
    PQfinish(conn);
    free(top);
    free(within);
    free(tt);
    free(tw);
    return mismatch ? 1 : 0;
}

int main(int argc, char **argv) {
    log_set_program("bench_search");
    if (argc >= 2 && strcmp(argv[1], "gen") == 0) return cmd_gen(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "index") == 0) return cmd_index(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "load") == 0) return cmd_load(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "pg") == 0) return cmd_pg(argc - 1, argv + 1);
    fprintf(stderr, "usage: bench_search gen|index|load|pg [OPTION]... (see bench/search.c)\n");
    return 2;
}
