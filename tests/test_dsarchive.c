/* test_dsarchive.c -- the test archive of tests/support/dsarchive.c, checked
 * against itself: its truth.json against the archive's rows, by SQL.
 *
 * dsa_fill runs the real crawler, hasher and archiver on the generated
 * sites; then every picture of the truth must be exactly one row of its
 * table with exactly one `_img` entry, of the truth's sha1, width, height and
 * format, and no other row may be in the exchange's tables; the save dir must
 * hold every file (its name's sha1 is its bytes'); copies must be what their
 * variant says (the same bytes as the original; resized and recompressed
 * within 10 bits of phash, by the archive's own hashes; different groups more
 * than 24 apart); NSFW rows say so, labels arrive as they were given.  Then
 * dsa_grow adds round 2 and the same checks run again, with the round-1
 * entries unchanged.  A second fill in another folder must write the same
 * bytes (the same sha1 list).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "dsarchive.h"
#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "xalloc.h"

#define NEAR_MAX 10 /* resized and recompressed copies: phash distance at most */
#define FAR_MIN 25  /* different source pictures: at least */

static dsarchive A, B;
static char *dir_a, *dir_b;

static int setup(void **state) {
    (void)state;
    dir_a = testenv_tmpdir("dsarchive-a");
    dir_b = testenv_tmpdir("dsarchive-b");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    dsa_release(&A);
    dsa_release(&B);
    pgtest_close();
    testenv_rmtree(dir_a);
    testenv_rmtree(dir_b);
    free(dir_a);
    free(dir_b);
    return 0;
}

static const char *str(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("truth entry without %s: %s", key, json_object_to_json_string(o));
    return json_object_get_string(v);
}

static int64_t num(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("truth entry without %s: %s", key, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

/* The pictures array of truth.json (a new reference). */
static json_object *read_truth(const dsarchive *a) {
    json_object *top = json_object_from_file(a->truth_path), *pics;
    if (!top || !json_object_object_get_ex(top, "pictures", &pics)) fail_msg("cannot read %s", a->truth_path);
    json_object_get(pics);
    json_object_put(top);
    return pics;
}

static int phash_distance(const char *x, const char *y) {
    unsigned char a[32], b[32];
    int na = EVP_DecodeBlock(a, (const unsigned char *)x, (int)strlen(x));
    int nb = EVP_DecodeBlock(b, (const unsigned char *)y, (int)strlen(y));
    if (na != 18 + 0 * nb || nb != 18) fail_msg("phash %s / %s is not 144 bits", x, y);
    int d = 0;
    for (int i = 0; i < 18; i++)
        d += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

static char *file_sha1(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    fclose(f);
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    char *hex = xmalloc(41);
    for (unsigned i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

/* Every check of the header comment, on round ROUND's truth. */
static void check(const dsarchive *a, int round) {
    json_object *pics = read_truth(a);
    size_t n = json_object_array_length(pics);
    assert_int_equal(n, a->pictures);
    char **phash = xcalloc(n, sizeof *phash);
    json_object *seen = json_object_new_object();
    size_t rounds[3] = {0}, variants = 0, nsfw = 0, odd = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(pics, i);
        const char *table = str(p, "table"), *id = str(p, "id");
        char *key = xasprintf("%s/%s", table, id);
        if (json_object_object_get_ex(seen, key, NULL)) fail_msg("%s is twice in the truth", key);
        json_object_object_add(seen, key, NULL);
        free(key);
        assert_int_equal(num(p, "image"), 0);
        int64_t r = num(p, "round");
        assert_true(r >= 1 && r <= round);
        rounds[r]++;
        /* the row: one _img entry, the truth's */
        char *sql = xasprintf("SELECT jsonb_array_length(data->'_img'), data->'_img'->0->>'sha1', "
                              "(data->'_img'->0->>'width'), (data->'_img'->0->>'height'), data->'_img'->0->>'format', "
                              "data->'_img'->0->>'phash', data->'_urls'->>0, data->>'_board', data->>'_chan', "
                              "data->>'isNsfw', (data->'_img'->0->>'url') FROM \"%s\" WHERE id = $1",
                              table);
        const char *v[] = {id};
        PGresult *res = pgtest_query(sql, 1, v);
        free(sql);
        if (PQntuples(res) != 1) fail_msg("%s %s: %d rows", table, id, PQntuples(res));
        if (strcmp(PQgetvalue(res, 0, 0), "1") != 0 || strcmp(PQgetvalue(res, 0, 10), "0") != 0)
            fail_msg("%s %s: %s _img entries, url %s", table, id, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 10));
        assert_string_equal(PQgetvalue(res, 0, 1), str(p, "sha1"));
        assert_int_equal(atoll(PQgetvalue(res, 0, 2)), num(p, "width"));
        assert_int_equal(atoll(PQgetvalue(res, 0, 3)), num(p, "height"));
        assert_string_equal(PQgetvalue(res, 0, 4), str(p, "format"));
        assert_string_equal(PQgetvalue(res, 0, 6), str(p, "url"));
        assert_string_equal(PQgetvalue(res, 0, 7), str(p, "label"));
        assert_string_equal(PQgetvalue(res, 0, 8), str(p, "site"));
        bool is_nsfw = json_object_get_boolean(json_object_object_get(p, "nsfw"));
        if (strcmp(str(p, "kind"), "waifu_im") == 0)
            assert_string_equal(PQgetvalue(res, 0, 9), is_nsfw ? "true" : "false");
        else
            assert_false(is_nsfw);
        nsfw += is_nsfw;
        odd += strcmp(str(p, "label"), DSA_LABEL_ODD) == 0;
        phash[i] = xstrdup(PQgetvalue(res, 0, 5));
        PQclear(res);
        /* the save dir's file */
        const char *sha1 = str(p, "sha1");
        char *path = xasprintf("%s/%.2s/%.2s/%s.%s", a->save_dir, sha1, sha1 + 2, sha1,
                               strcmp(str(p, "format"), "jpeg") == 0 ? "jpg" : "png");
        char *got = file_sha1(path);
        if (!got || strcmp(got, sha1) != 0) fail_msg("save dir: %s is %s", path, got ? got : "missing");
        free(got);
        free(path);
    }
    /* no row that the truth does not know */
    char *prefix = xasprintf("%s_", a->exchange);
    const char *pv[] = {prefix};
    PGresult *tabs =
        pgtest_query("SELECT relname FROM pg_class WHERE relkind = 'r' AND starts_with(relname, $1)", 1, pv);
    long rows = 0;
    for (int t = 0; t < PQntuples(tabs); t++)
        rows += pgtest_count(PQgetvalue(tabs, t, 0));
    PQclear(tabs);
    free(prefix);
    assert_int_equal(rows, (long)n);
    /* the variants, by the archive's own phashes */
    int nearest_far = 1000, farthest_near = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(pics, i);
        const char *variant = str(p, "variant");
        if (strcmp(variant, "original") == 0) continue;
        variants++;
        size_t o = 0;
        while (o < n && !(num(json_object_array_get_idx(pics, o), "group") == num(p, "group") &&
                          strcmp(str(json_object_array_get_idx(pics, o), "variant"), "original") == 0))
            o++;
        if (o == n)
            fail_msg("%s %s: no original of group %lld", str(p, "table"), str(p, "id"), (long long)num(p, "group"));
        json_object *orig = json_object_array_get_idx(pics, o);
        bool same_label = strcmp(str(p, "label"), str(orig, "label")) == 0;
        if (strcmp(variant, "exact_copy") == 0 || strcmp(variant, "other_label") == 0) {
            assert_string_equal(str(p, "sha1"), str(orig, "sha1"));
            if (same_label != (strcmp(variant, "exact_copy") == 0))
                fail_msg("%s %s: %s under label %s, the original under %s", str(p, "table"), str(p, "id"), variant,
                         str(p, "label"), str(orig, "label"));
        } else if (strcmp(variant, "resized") == 0 || strcmp(variant, "recompressed") == 0) {
            assert_string_not_equal(str(p, "sha1"), str(orig, "sha1"));
            int d = phash_distance(phash[i], phash[o]);
            if (d > farthest_near) farthest_near = d;
            if (d > NEAR_MAX)
                fail_msg("%s %s: %s copy at phash distance %d", str(p, "table"), str(p, "id"), variant, d);
            if (strcmp(variant, "resized") == 0 && num(p, "width") >= num(orig, "width"))
                fail_msg("%s %s: resized to %lld from %lld", str(p, "table"), str(p, "id"), (long long)num(p, "width"),
                         (long long)num(orig, "width"));
        } else {
            fail_msg("unknown variant %s", variant);
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            json_object *x = json_object_array_get_idx(pics, i), *y = json_object_array_get_idx(pics, j);
            if (num(x, "group") == num(y, "group")) continue;
            int d = phash_distance(phash[i], phash[j]);
            if (d < nearest_far) nearest_far = d;
            if (d < FAR_MIN)
                fail_msg("groups %lld and %lld at phash distance %d", (long long)num(x, "group"),
                         (long long)num(y, "group"), d);
        }
    assert_true(variants >= 10);
    assert_true(nsfw >= 1);
    assert_true(odd >= 1);
    if (round == 2) assert_true(rounds[2] >= 5);
    fprintf(stderr,
            "round %d: %zu pictures (%zu of round 1, %zu of round 2), %zu copies, %zu nsfw; copies within %d bits, "
            "groups %d bits apart at least\n",
            round, n, rounds[1], rounds[2], variants, nsfw, farthest_near, nearest_far);
    for (size_t i = 0; i < n; i++)
        free(phash[i]);
    free(phash);
    json_object_put(seen);
    json_object_put(pics);
}

/* The sha1 of each entry of A's truth, in order, as one string. */
static char *sha1_list(const dsarchive *a, int round) {
    json_object *pics = read_truth(a);
    size_t n = json_object_array_length(pics), len = 0;
    char *out = xcalloc(n * 41 + 1, 1);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(pics, i);
        if (num(p, "round") > round) continue;
        len += (size_t)snprintf(out + len, 42, "%s\n", str(p, "sha1"));
    }
    json_object_put(pics);
    return out;
}

static void test_dsarchive(void **state) {
    (void)state;
    assert_int_equal(dsa_fill(&A, dir_a), 0);
    check(&A, 1);
    char *first = sha1_list(&A, 1);
    json_object *before = read_truth(&A);
    assert_int_equal(dsa_grow(&A), 0);
    check(&A, 2);
    /* round 1 as it was, round 2 after it */
    json_object *after = read_truth(&A);
    for (size_t i = 0; i < json_object_array_length(before); i++)
        if (!json_object_equal(json_object_array_get_idx(before, i), json_object_array_get_idx(after, i)))
            fail_msg("round 1's entry %zu changed: %s", i,
                     json_object_to_json_string(json_object_array_get_idx(after, i)));
    json_object_put(before);
    json_object_put(after);
    char *grown = sha1_list(&A, 1);
    assert_string_equal(first, grown);
    /* the same bytes in another fill */
    assert_int_equal(dsa_fill(&B, dir_b), 0);
    char *again = sha1_list(&B, 1);
    assert_string_equal(first, again);
    check(&B, 1);
    free(first);
    free(grown);
    free(again);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dsarchive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
