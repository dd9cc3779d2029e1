/* test_savedir.c -- hasher/savedir.c: sha1-named files under --save-dir.
 *
 * Each test works in its own mkdtemp directory and removes it.  Crash
 * safety itself (fsync, rename) cannot be shown without pulling the plug;
 * what is checked is the visible contract: the final name only ever holds
 * the whole file, no temporary file is left, and a present file is not
 * written again.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "savedir.h"
#include "testenv.h"
#include "xalloc.h"

#define SHA1_A "5d6151241dfb5c65cb3f736f22b4cda978cc1cd0"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    char *buf = xmalloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Entries of DIR other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void test_path(void **state) {
    (void)state;
    char *p = savedir_path("/data", SHA1_A, "jpg");
    assert_string_equal(p, "/data/5d/61/" SHA1_A ".jpg");
    free(p);
}

static void test_store_once(void **state) {
    (void)state;
    char *root = testenv_tmpdir("savedir");
    char *dir = xasprintf("%s/new/deeper", root);
    char err[SAVEDIR_ERROR_MAX];
    assert_int_equal(savedir_prepare(dir, err), 0);
    assert_int_equal(savedir_prepare(dir, err), 0); /* present already: fine */

    static const unsigned char data[] = "\x89PNG not really, but bytes are bytes";
    bool written = false;
    assert_int_equal(savedir_store(dir, SHA1_A, "png", data, sizeof data - 1, &written, err), 0);
    assert_true(written);
    char *path = savedir_path(dir, SHA1_A, "png");
    size_t len;
    char *back = read_file(path, &len);
    assert_int_equal(len, sizeof data - 1);
    assert_memory_equal(back, data, len);
    free(back);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(before.st_mode & 0777, 0644);

    /* Stored again: left alone. */
    static const unsigned char other[] = "different bytes under the same name";
    assert_int_equal(savedir_store(dir, SHA1_A, "png", other, sizeof other - 1, &written, err), 0);
    assert_false(written);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    back = read_file(path, &len);
    assert_memory_equal(back, data, sizeof data - 1);
    free(back);

    /* Only the final file is in its directory: no temporary left. */
    char *leaf = xasprintf("%s/5d/61", dir);
    assert_int_equal(count_entries(leaf), 1);
    free(leaf);
    free(path);
    free(dir);
    assert_int_equal(testenv_rmtree(root), 0);
    free(root);
}

static void test_failures(void **state) {
    (void)state;
    char *root = testenv_tmpdir("savedir");
    char *file = xasprintf("%s/plain-file", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char err[SAVEDIR_ERROR_MAX];
    assert_int_equal(savedir_prepare(file, err), -1);
    assert_non_null(strstr(err, file));
    char *under = xasprintf("%s/sub", file);
    assert_int_equal(savedir_prepare(under, err), -1);
    assert_non_null(strstr(err, "Not a directory"));

    /* The level directory is taken by a file: the store fails, with the path. */
    char *dir = xasprintf("%s/d", root);
    assert_int_equal(savedir_prepare(dir, err), 0);
    char *blocker = xasprintf("%s/5d", dir);
    f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    bool written = true;
    assert_int_equal(savedir_store(dir, SHA1_A, "gif", (const unsigned char *)"x", 1, &written, err), -1);
    assert_false(written);
    assert_non_null(strstr(err, blocker));
    assert_int_equal(savedir_store(dir, "not-a-sha1", "gif", (const unsigned char *)"x", 1, NULL, err), -1);

    free(blocker);
    free(dir);
    free(under);
    free(file);
    assert_int_equal(testenv_rmtree(root), 0);
    free(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_store_once),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
