/* test_decode.c -- format detection and the decoders, against Pillow.
 *
 * The group setup builds the image set (tests/hasher/make_images.py) in a
 * temporary directory and Pillow's gray image of every file (gray_ref.py
 * beside this file, under Debian's /usr/bin/python3).  Then:
 *   - every file decodes to Pillow's width, height and gray bytes exactly,
 *     or fails where Pillow fails (the cut_ and bad_ files);
 *   - ih_decode_dimensions() agrees with Pillow's size;
 *   - each bad_ file fails with the right reason, and the bombs fail in a
 *     fresh process whose peak RSS stays small;
 *   - a file cut at any byte either fails or gives the whole image, never
 *     a partial one; damaged copies (flipped bits, cut) agree with Pillow
 *     too, and never crash (the sanitizer build);
 *   - four threads decoding the set at once get the same results;
 *   - the pixel limit, and AVIF/HEIF through libgd (no Pillow reference:
 *     close to the source image, right size, safe in threads).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "imghash/imghash.h"
#include "testenv.h"
#include "xalloc.h"

#define PYTHON "/usr/bin/python3"
#define TESTS_DIR "imghash/tests"                      /* in the source tree */
#define IMAGE_SET_SCRIPT "tests/hasher/make_images.py" /* shared with check_bitexact.py */
#define MAX_PIXELS (128ull * 1000 * 1000)
#define BOMB_RSS_LIMIT_KB (100 * 1024)

/* One file of the set with Pillow's verdict. */
typedef struct ref_file {
    char *name;
    unsigned char *data;
    size_t len;
    bool ok;             /* Pillow decoded it */
    int width, height;   /* when ok */
    unsigned char *gray; /* when ok, width * height bytes */
    char *pillow_error;  /* when not ok */
} ref_file;

typedef struct ref_set {
    char dir[256];
    ref_file *files;
    size_t count;
} ref_set;

static ref_set set;

/* --- files --- */

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        fclose(f);
        return NULL;
    }
    unsigned char *buf = xmalloc((size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Parses a binary PGM; false if malformed. */
static bool parse_pgm(const unsigned char *buf, size_t len, int *width, int *height, const unsigned char **pixels) {
    int fields[3], n = 0;
    size_t at = 2;
    if (len < 2 || buf[0] != 'P' || buf[1] != '5') return false;
    while (n < 3) {
        while (at < len && (buf[at] == ' ' || buf[at] == '\n' || buf[at] == '\r' || buf[at] == '\t'))
            at++;
        if (at >= len || buf[at] < '0' || buf[at] > '9') return false;
        int v = 0;
        while (at < len && buf[at] >= '0' && buf[at] <= '9')
            v = v * 10 + (buf[at++] - '0');
        fields[n++] = v;
    }
    at++; /* the single whitespace byte before the pixels */
    *width = fields[0];
    *height = fields[1];
    *pixels = buf + at;
    return fields[2] == 255 && len - at == (size_t)fields[0] * (size_t)fields[1];
}

static void load_reference(ref_file *file, const char *refdir) {
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s.pgm", refdir, file->name);
    unsigned char *pgm = slurp(path, &len);
    if (pgm) {
        const unsigned char *pixels = NULL;
        if (!parse_pgm(pgm, len, &file->width, &file->height, &pixels)) fail_msg("bad reference %s", path);
        file->ok = true;
        file->gray = xmalloc((size_t)file->width * (size_t)file->height + 1);
        memcpy(file->gray, pixels, (size_t)file->width * (size_t)file->height);
        free(pgm);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.err", refdir, file->name);
    file->pillow_error = (char *)slurp(path, &len);
    if (!file->pillow_error) fail_msg("no reference for %s", file->name);
}

static int run(const char *cmd) {
    int status = system(cmd);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const ref_file *)a)->name, ((const ref_file *)b)->name);
}

/* Runs SCRIPT (a path in the source tree) with ARGS under /usr/bin/python3. */
static void run_python(const char *script, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, PYTHON " '%s/%s' %s >/dev/null 2>&1", testenv_source_dir(), script, args);
    if (run(cmd) != 0) fail_msg("%s failed: %s", script, cmd);
}

/* Every file of IMAGES with Pillow's verdict from gray_ref.py, sorted. */
static void load_set(ref_set *rs, const char *images) {
    char args[1024], refdir[512];
    snprintf(refdir, sizeof refdir, "%s.ref", images);
    snprintf(args, sizeof args, "'%s' '%s'", images, refdir);
    run_python(TESTS_DIR "/gray_ref.py", args);
    DIR *d = opendir(images);
    assert_non_null(d);
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (rs->count == cap) rs->files = xrealloc(rs->files, (cap = cap ? 2 * cap : 256) * sizeof *rs->files);
        ref_file *file = &rs->files[rs->count++];
        memset(file, 0, sizeof *file);
        file->name = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(rs->files, rs->count, sizeof *rs->files, by_name);
    for (size_t i = 0; i < rs->count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", images, rs->files[i].name);
        rs->files[i].data = slurp(path, &rs->files[i].len);
        assert_non_null(rs->files[i].data);
        load_reference(&rs->files[i], refdir);
    }
}

static void free_set(ref_set *rs) {
    for (size_t i = 0; i < rs->count; i++) {
        free(rs->files[i].name);
        free(rs->files[i].data);
        free(rs->files[i].gray);
        free(rs->files[i].pillow_error);
    }
    free(rs->files);
    rs->files = NULL;
    rs->count = 0;
}

static int setup_set(void **state) {
    (void)state;
    snprintf(set.dir, sizeof set.dir, "/tmp/imgfeed-decode.XXXXXX");
    if (!mkdtemp(set.dir)) fail_msg("mkdtemp: %s", strerror(errno));
    if (run(PYTHON " -c 'import PIL, numpy' 2>/dev/null") != 0)
        fail_msg(PYTHON " lacks Pillow or numpy: apt-get install python3-pil python3-numpy");
    char images[512], args[1024];
    snprintf(images, sizeof images, "%s/images", set.dir);
    snprintf(args, sizeof args, "'%s'", images);
    run_python(IMAGE_SET_SCRIPT, args);
    load_set(&set, images);
    assert_true(set.count > 300);
    return 0;
}

static int teardown_set(void **state) {
    (void)state;
    free_set(&set);
    if (getenv("IMGFEED_TEST_KEEP")) { /* for a look at the files */
        print_message("kept %s\n", set.dir);
        return 0;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", set.dir);
    run(cmd);
    return 0;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static const ref_file *find_file(const char *name) {
    for (size_t i = 0; i < set.count; i++)
        if (strcmp(set.files[i].name, name) == 0) return &set.files[i];
    fail_msg("%s is not in the image set", name);
    return NULL;
}

/* Decodes FILE and describes any disagreement with Pillow into WHY; true
 * when they agree. */
static bool agrees(const ref_file *file, char *why, size_t why_len) {
    ih_gray gray;
    char err[IH_DECODE_ERROR_MAX];
    ih_format format = ih_format_detect(file->data, file->len);
    int status = ih_decode_gray(file->data, file->len, format, MAX_PIXELS, &gray, err);
    why[0] = '\0';
    if (status < 0 && (gray.pixels || gray.width || gray.height)) {
        snprintf(why, why_len, "failed but left pixels");
    } else if (status < 0 && file->ok) {
        snprintf(why, why_len, "we fail (%s), Pillow decodes it", err);
    } else if (status == 0 && !file->ok) {
        snprintf(why, why_len, "we decode it, Pillow fails: %s", file->pillow_error);
    } else if (status == 0 && (gray.width != file->width || gray.height != file->height)) {
        snprintf(why, why_len, "size %dx%d, Pillow %dx%d", gray.width, gray.height, file->width, file->height);
    } else if (status == 0) {
        size_t n = (size_t)gray.width * (size_t)gray.height, differ = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (gray.pixels[i] != file->gray[i] && differ++ == 0) first = i;
        if (differ)
            snprintf(why, why_len, "%zu of %zu pixels differ, first at %zu: %d, Pillow %d", differ, n, first,
                     gray.pixels[first], file->gray[first]);
    }
    ih_gray_release(&gray);
    return why[0] == '\0';
}

/* --- detection --- */

static void test_detect(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        ih_format format;
    } table[] = {
        {"\xff\xd8\xff\xe0\0\x10JFIF", 10, IH_FORMAT_JPEG},
        {"\xff\xd8\xff", 3, IH_FORMAT_JPEG},
        {"\xff\xd8", 2, IH_FORMAT_UNKNOWN},
        {"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, IH_FORMAT_PNG},
        {"\x89PNG\r\n\x1a", 7, IH_FORMAT_UNKNOWN},
        {"GIF87a\x01\0\x01\0", 10, IH_FORMAT_GIF},
        {"GIF89a", 6, IH_FORMAT_GIF},
        {"GIF88a", 6, IH_FORMAT_UNKNOWN},
        {"RIFF\x24\0\0\0WEBPVP8 ", 16, IH_FORMAT_WEBP},
        {"RIFF\x24\0\0\0WAVEfmt ", 16, IH_FORMAT_UNKNOWN},
        {"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", 18, IH_FORMAT_BMP},
        {"BM\x36\0\0\0\0\0\0\0\x1a\0\0\0\x0c\0\0\0", 18, IH_FORMAT_BMP},
        {"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x7c\0\0\0", 18, IH_FORMAT_BMP},
        {"BMW: the car, not the format....", 32, IH_FORMAT_UNKNOWN},
        {"II*\0\x08\0\0\0", 8, IH_FORMAT_TIFF},
        {"MM\0*\0\0\0\x08", 8, IH_FORMAT_TIFF},
        {"\0\0\0\x1c"
         "ftypavif\0\0\0\0avifmif1miaf",
         28, IH_FORMAT_AVIF},
        {"\0\0\0\x18"
         "ftypmif1\0\0\0\0mif1avif",
         24, IH_FORMAT_AVIF},
        {"\0\0\0\x18"
         "ftypavis\0\0\0\0avismsf1",
         24, IH_FORMAT_AVIF},
        {"\0\0\0\x18"
         "ftypheic\0\0\0\0mif1heic",
         24, IH_FORMAT_HEIF},
        {"\0\0\0\x14"
         "ftypmif1\0\0\0\0mif1",
         20, IH_FORMAT_HEIF},
        {"\0\0\0\x18"
         "ftypheix\0\0\0\0heixmif1",
         24, IH_FORMAT_HEIF},
        {"\0\0\0\x20"
         "ftypisom\0\0\x02\0isomiso2avc1mp41",
         32, IH_FORMAT_MP4},
        {"\0\0\0\x18"
         "ftypmp42\0\0\0\0mp42isom",
         24, IH_FORMAT_MP4},
        {"\0\0\0\x1c"
         "ftypM4V \0\0\0\x01M4V M4A mp42",
         28, IH_FORMAT_MP4},
        {"\0\0\0\x14"
         "ftypqt  \0\0\0\0qt  ",
         20, IH_FORMAT_MP4},
        {"\0\0\0\x08"
         "ftypisom",
         12, IH_FORMAT_UNKNOWN},
        {"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", 16, IH_FORMAT_WEBM},
        {"\x1a\x45\xdf\xa3\x01\0\0\0\0\0\0\x1f\x42\x82\x88matroska", 24, IH_FORMAT_WEBM},
        {"<!DOCTYPE html><html>", 21, IH_FORMAT_UNKNOWN},
        {"%PDF-1.7", 8, IH_FORMAT_UNKNOWN},
        {"", 0, IH_FORMAT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ih_format got = ih_format_detect((const unsigned char *)table[i].bytes, table[i].len);
        if (got != table[i].format)
            fail_msg("row %zu: %s, expected %s", i, ih_format_name(got), ih_format_name(table[i].format));
    }
    assert_int_equal(ih_format_detect(NULL, 0), IH_FORMAT_UNKNOWN);
}

static void test_names(void **state) {
    (void)state;
    static const struct {
        ih_format format;
        const char *name, *ext;
        bool video;
    } table[] = {
        {IH_FORMAT_JPEG, "jpeg", "jpg", false},       {IH_FORMAT_PNG, "png", "png", false},
        {IH_FORMAT_GIF, "gif", "gif", false},         {IH_FORMAT_WEBP, "webp", "webp", false},
        {IH_FORMAT_BMP, "bmp", "bmp", false},         {IH_FORMAT_TIFF, "tiff", "tiff", false},
        {IH_FORMAT_AVIF, "avif", "avif", false},      {IH_FORMAT_HEIF, "heif", "heic", false},
        {IH_FORMAT_WEBM, "webm", "webm", true},       {IH_FORMAT_MP4, "mp4", "mp4", true},
        {IH_FORMAT_UNKNOWN, "unknown", "bin", false},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        assert_string_equal(ih_format_name(table[i].format), table[i].name);
        assert_string_equal(ih_format_extension(table[i].format), table[i].ext);
        assert_int_equal(ih_format_is_video(table[i].format), table[i].video);
    }
}

/* --- the image set against Pillow --- */

static void test_matches_pillow(void **state) {
    (void)state;
    size_t mismatches = 0, decoded = 0;
    for (size_t i = 0; i < set.count; i++) {
        char why[512];
        if (set.files[i].ok) decoded++;
        if (!agrees(&set.files[i], why, sizeof why)) {
            print_message("MISMATCH %s: %s\n", set.files[i].name, why);
            mismatches++;
        }
    }
    print_message("%zu files (%zu decoded by Pillow), %zu mismatches\n", set.count, decoded, mismatches);
    assert_int_equal(mismatches, 0);
}

static void test_dimensions(void **state) {
    (void)state;
    for (size_t i = 0; i < set.count; i++) {
        const ref_file *file = &set.files[i];
        if (!file->ok) continue;
        int w, h;
        char err[IH_DECODE_ERROR_MAX];
        if (ih_decode_dimensions(file->data, file->len, ih_format_detect(file->data, file->len), &w, &h, err) < 0)
            fail_msg("%s: %s", file->name, err);
        if (w != file->width || h != file->height)
            fail_msg("%s: %dx%d, Pillow %dx%d", file->name, w, h, file->width, file->height);
    }
}

/* --- bad files --- */

static void expect_error(const char *name, const char *prefix) {
    const ref_file *file = find_file(name);
    ih_gray gray;
    char err[IH_DECODE_ERROR_MAX];
    assert_false(file->ok);
    ih_format format = ih_format_detect(file->data, file->len);
    assert_int_equal(ih_decode_gray(file->data, file->len, format, MAX_PIXELS, &gray, err), -1);
    assert_null(gray.pixels);
    assert_int_equal(gray.width, 0);
    if (!starts_with(err, prefix)) fail_msg("%s: \"%s\", expected \"%s...\"", name, err, prefix);
}

static void test_bad_files(void **state) {
    (void)state;
    expect_error("bad_truncated_baseline.jpg", "truncated image");
    expect_error("bad_truncated_progressive.jpg", "truncated image");
    expect_error("bad_truncated.png", "truncated image");
    expect_error("bad_truncated_interlaced.png", "truncated image");
    expect_error("bad_truncated.gif", "truncated image");
    expect_error("bad_truncated.webp", "truncated image");
    expect_error("bad_truncated.bmp", "truncated image");
    expect_error("bad_empty.jpg", "not an image");
    expect_error("bad_html.jpg", "not an image");
    assert_int_equal(ih_format_detect(find_file("bad_html.jpg")->data, find_file("bad_html.jpg")->len),
                     IH_FORMAT_UNKNOWN);
    expect_error("bad_png_header_30000x30000.png", "too many pixels: 30000x30000 is over 128000000");
    expect_error("bad_png_bomb_20000x20000_gray1.png", "too many pixels: 20000x20000");
    expect_error("bad_png_bomb_20000x20000_gray8.png", "too many pixels: 20000x20000");
    expect_error("bad_jpeg_header_60000x60000.jpg", "too many pixels: 60000x60000");
    expect_error("bad_gif_screen_65535x65535.gif", "too many pixels: 65535x65535");
    expect_error("bad_bmp_header_30000x30000.bmp", "too many pixels: 30000x30000");

    /* Every bad_ file is refused; videos and unknown formats say "not an image". */
    for (size_t i = 0; i < set.count; i++)
        if (starts_with(set.files[i].name, "bad_")) assert_false(set.files[i].ok);
    ih_gray gray;
    char err[IH_DECODE_ERROR_MAX];
    const unsigned char webm[] = "\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm";
    assert_int_equal(ih_decode_gray(webm, sizeof webm - 1, IH_FORMAT_WEBM, MAX_PIXELS, &gray, err), -1);
    assert_string_equal(err, "not an image");
    assert_int_equal(ih_decode_gray(webm, 0, IH_FORMAT_JPEG, MAX_PIXELS, &gray, err), -1);
    assert_string_equal(err, "not an image");
}

/* This process's peak resident set in KB (VmHWM: unlike getrusage's
 * ru_maxrss, it does not carry over the peak of the process that forked
 * us). */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* Runs this program again as `test_decode --decode FILE`, in a fresh
 * process, and returns its peak RSS in KB; *REFUSED tells whether the
 * decode failed with "too many pixels". */
static long decode_in_child(const char *path, bool *refused) {
    char self[1024], cmd[2300], answer[64] = "";
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' --decode '%s'", self, path);
    FILE *child = popen(cmd, "r");
    assert_non_null(child);
    if (!fgets(answer, sizeof answer, child)) answer[0] = '\0';
    assert_int_equal(pclose(child), 0);
    int status = -1;
    long rss = -1;
    if (sscanf(answer, "%d %ld", &status, &rss) != 2) fail_msg("no answer from %s", cmd);
    *refused = status == 0;
    return rss;
}

static void test_bombs_low_memory(void **state) {
    (void)state;
    static const char *const bombs[] = {"bad_png_header_30000x30000.png",     "bad_png_bomb_20000x20000_gray1.png",
                                        "bad_png_bomb_20000x20000_gray8.png", "bad_jpeg_header_60000x60000.jpg",
                                        "bad_gif_screen_65535x65535.gif",     "bad_bmp_header_30000x30000.bmp"};
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        char path[1024];
        bool refused;
        snprintf(path, sizeof path, "%s/images/%s", set.dir, bombs[i]);
        long rss = decode_in_child(path, &refused);
        print_message("%s: %s, peak RSS %ld KB\n", bombs[i], refused ? "refused" : "NOT refused", rss);
        if (!refused) fail_msg("%s was not refused as too many pixels", bombs[i]);
        if (rss < 0 || rss > BOMB_RSS_LIMIT_KB) fail_msg("%s: peak RSS %ld KB", bombs[i], rss);
    }
}

/* The child of decode_in_child(): prints "<0 if refused> <peak RSS KB>". */
static int decode_main(const char *path) {
    size_t len;
    unsigned char *data = slurp(path, &len);
    if (!data) return 2;
    ih_gray gray;
    char err[IH_DECODE_ERROR_MAX];
    int status = ih_decode_gray(data, len, ih_format_detect(data, len), MAX_PIXELS, &gray, err);
    free(data);
    ih_gray_release(&gray);
    printf("%d %ld\n", status < 0 && starts_with(err, "too many pixels") ? 0 : 1, peak_rss_kb());
    return 0;
}

/* --- truncation and damage --- */

/* Every prefix of the file either fails or gives the whole image. */
static void check_every_prefix(const ref_file *file) {
    ih_gray whole, part;
    char err[IH_DECODE_ERROR_MAX];
    ih_format format = ih_format_detect(file->data, file->len);
    assert_int_equal(ih_decode_gray(file->data, file->len, format, MAX_PIXELS, &whole, err), 0);
    size_t successes = 0;
    for (size_t n = 0; n < file->len; n++) {
        if (ih_decode_gray(file->data, n, ih_format_detect(file->data, n), MAX_PIXELS, &part, err) < 0) {
            assert_null(part.pixels);
            assert_true(err[0] != '\0');
            continue;
        }
        successes++;
        if (part.width != whole.width || part.height != whole.height ||
            memcmp(part.pixels, whole.pixels, (size_t)whole.width * (size_t)whole.height) != 0)
            fail_msg("%s cut to %zu of %zu bytes decodes to a different image", file->name, n, file->len);
        ih_gray_release(&part);
    }
    print_message("%s: %zu prefixes, %zu decode whole\n", file->name, file->len, successes);
    ih_gray_release(&whole);
}

static void test_truncation_never_partial(void **state) {
    (void)state;
    static const char *const names[] = {
        "jpeg_420_baseline_flat_64x48.jpg",
        "jpeg_444_progressive_photo_7x5.jpg",
        "jpeg_cmyk_photo_7x5.jpg",
        "png_rgb_flat_64x48.png",
        "png_rgb8_interlaced_33x17.png",
        "png_pal2_short_plte_interlaced_7x5.png",
        "gif_offset_interlaced_20x30.gif",
        "gif_flat_64x48.gif",
        "webp_lossy_alpha_photo_7x5.webp",
        "webp_lossless_flat_64x48.webp",
        "bmp_8_palette_photo_7x5.bmp",
        "bmp_rle8_37x23.bmp",
        "bmp_rle4_37x23.bmp",
        "bmp_16_565_bitfields_37x23.bmp",
        "tiff_rgb_photo_7x5.tiff",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_every_prefix(find_file(names[i]));
}

/* Damaged copies of the small valid files: a few flipped bits near the
 * start, near the end or anywhere, sometimes cut short too.  Pillow is the
 * reference again, except for TIFF, where libtiff and Pillow's own TIFF
 * reader part ways on damage (the sanitizer build still checks it). */
static void write_damaged(const char *dir, const ref_file *file, int variant, unsigned *seed) {
    unsigned char *copy = xmalloc(file->len);
    memcpy(copy, file->data, file->len);
    size_t len = file->len;
    int where = variant % 3;
    for (int k = 0; k <= variant % 3; k++) {
        *seed = *seed * 1103515245u + 12345u;
        size_t span = where == 0 ? 120 : where == 1 ? 80 : len;
        if (span > len - 8) span = len - 8;
        size_t at = where == 1 ? len - 1 - (*seed >> 4) % span : 8 + (*seed >> 4) % span;
        copy[at] ^= (unsigned char)(1u << (*seed % 8));
    }
    if (variant >= 3) len = len / 2 + (*seed >> 3) % (len / 2);
    char path[1024];
    snprintf(path, sizeof path, "%s/%d_%s", dir, variant, file->name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(copy, 1, len, f), len);
    fclose(f);
    free(copy);
}

static void test_damage_agrees_with_pillow(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/damaged", set.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    unsigned seed = 12345;
    for (size_t i = 0; i < set.count; i++) {
        const ref_file *file = &set.files[i];
        if (!file->ok || file->len > 20000 || file->len < 32 || starts_with(file->name, "cut_") ||
            starts_with(file->name, "damaged_"))
            continue;
        for (int variant = 0; variant < 4; variant++)
            write_damaged(dir, file, variant, &seed);
    }
    ref_set damaged = {0};
    load_set(&damaged, dir);
    size_t mismatches = 0, decoded = 0;
    for (size_t i = 0; i < damaged.count; i++) {
        char why[512];
        bool same = agrees(&damaged.files[i], why, sizeof why);
        decoded += damaged.files[i].ok;
        if (same || strstr(damaged.files[i].name, "_tiff_")) continue;
        print_message("MISMATCH %s: %s\n", damaged.files[i].name, why);
        mismatches++;
    }
    print_message("%zu damaged files (%zu decoded by Pillow), %zu mismatches\n", damaged.count, decoded, mismatches);
    free_set(&damaged);
    assert_int_equal(mismatches, 0);
}

/* --- threads --- */

typedef struct thread_job {
    size_t start;
    size_t mismatches;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *job = arg;
    for (size_t k = 0; k < set.count; k++) {
        const ref_file *file = &set.files[(job->start + k) % set.count];
        char why[512];
        if (starts_with(file->name, "bad_png_bomb")) continue;
        if (!agrees(file, why, sizeof why)) job->mismatches++;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t threads[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){.start = (size_t)i * set.count / 4};
        assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].mismatches, 0);
    }
}

/* --- limits --- */

static void test_max_pixels(void **state) {
    (void)state;
    static const char *const names[] = {
        "jpeg_420_baseline_photo_640x480.jpg", "png_rgb_photo_640x480.png", "gif_photo_640x480.gif",
        "webp_lossy_photo_640x480.webp",       "bmp_24_photo_640x480.bmp",  "tiff_rgb_photo_640x480.tiff"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ref_file *file = find_file(names[i]);
        ih_format format = ih_format_detect(file->data, file->len);
        ih_gray gray;
        char err[IH_DECODE_ERROR_MAX];
        assert_int_equal(ih_decode_gray(file->data, file->len, format, 640 * 480 - 1, &gray, err), -1);
        assert_string_equal(err, "too many pixels: 640x480 is over 307199");
        assert_null(gray.pixels);
        assert_int_equal(ih_decode_gray(file->data, file->len, format, 640 * 480, &gray, err), 0);
        ih_gray_release(&gray);
        assert_int_equal(ih_decode_gray(file->data, file->len, format, 0, &gray, err), 0); /* 0: no limit */
        assert_int_equal(gray.width, 640);
        ih_gray_release(&gray);
        assert_null(gray.pixels);
        ih_gray_release(&gray); /* releasing a zeroed image is fine */
    }
}

/* --- AVIF and HEIF through libgd: no Pillow reference, so the gray must be
 * close to the source and the header size right.  The two files in
 * tests/hasher were written by libgd (gdImageAvifPtr, gdImageHeifPtr; its
 * encoders leak, so the test does not run them) from a 64x48 image whose
 * pixel (x, y) is (4x, 5y, 128). --- */

typedef struct libgd_file {
    ih_format format;
    unsigned char *data;
    size_t len;
} libgd_file;

static libgd_file libgd_files[2];

static void load_libgd_files(void) {
    static const char *const names[] = {"gradient_64x48.avif", "gradient_64x48.heic"};
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/" TESTS_DIR "/%s", testenv_source_dir(), names[i]);
        libgd_files[i].data = slurp(path, &libgd_files[i].len);
        if (!libgd_files[i].data) fail_msg("cannot read %s", path);
        libgd_files[i].format = i == 0 ? IH_FORMAT_AVIF : IH_FORMAT_HEIF;
    }
}

/* Mean distance from the source's gray, or -1 if the decode failed. */
static long libgd_distance(const libgd_file *file) {
    ih_gray gray;
    char err[IH_DECODE_ERROR_MAX];
    if (ih_decode_gray(file->data, file->len, file->format, MAX_PIXELS, &gray, err) < 0) return -1;
    long total = 0;
    for (int y = 0; y < 48 && gray.width == 64 && gray.height == 48; y++)
        for (int x = 0; x < 64; x++) {
            long want = (x * 4 * 19595 + y * 5 * 38470 + 128 * 7471 + 0x8000) >> 16;
            total += labs((long)gray.pixels[y * 64 + x] - want);
        }
    bool right_size = gray.width == 64 && gray.height == 48;
    ih_gray_release(&gray);
    return right_size ? total / (64 * 48) : -1;
}

static void test_avif_heif(void **state) {
    (void)state;
    load_libgd_files();
    for (int i = 0; i < 2; i++) {
        const libgd_file *file = &libgd_files[i];
        assert_int_equal(ih_format_detect(file->data, file->len), file->format);
        int w, h;
        char err[IH_DECODE_ERROR_MAX];
        if (ih_decode_dimensions(file->data, file->len, file->format, &w, &h, err) < 0) fail_msg("%s", err);
        assert_int_equal(w, 64);
        assert_int_equal(h, 48);
        long distance = libgd_distance(file);
        print_message("%s: mean distance from the source %ld\n", ih_format_name(file->format), distance);
        assert_true(distance >= 0 && distance < 4); /* lossy, but close */
        ih_gray gray;
        assert_int_equal(ih_decode_gray(file->data, file->len, file->format, 64 * 48 - 1, &gray, err), -1);
        assert_string_equal(err, "too many pixels: 64x48 is over 3071");
        for (size_t n = 0; n < file->len; n += 7) {
            if (ih_decode_gray(file->data, n, file->format, MAX_PIXELS, &gray, err) == 0) {
                assert_int_equal(gray.width, 64);
                ih_gray_release(&gray);
            }
        }
    }
}

static void *libgd_thread(void *arg) {
    long *bad = arg;
    for (int round = 0; round < 20; round++)
        if (libgd_distance(&libgd_files[round % 2]) < 0) ++*bad;
    return NULL;
}

/* libgd, libheif and libtiff have process-wide state: decode at once. */
static void test_avif_heif_threads(void **state) {
    (void)state;
    pthread_t threads[4];
    long bad[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, libgd_thread, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(bad[i], 0);
    }
    for (int i = 0; i < 2; i++)
        free(libgd_files[i].data);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--decode") == 0) return decode_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bombs_low_memory),
        cmocka_unit_test(test_matches_pillow),
        cmocka_unit_test(test_dimensions),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_max_pixels),
        cmocka_unit_test(test_truncation_never_partial),
        cmocka_unit_test(test_damage_agrees_with_pillow),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_avif_heif),
        cmocka_unit_test(test_avif_heif_threads),
    };
    return cmocka_run_group_tests(tests, setup_set, teardown_set);
}
