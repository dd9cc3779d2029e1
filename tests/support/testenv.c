/* testenv.c -- environment lookups shared by the tests. */
#include "testenv.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#include <cmocka.h>

const char *testenv_require(const char *name) {
    const char *value = getenv(name);
    if (!value || !*value) {
        fail_msg("%s is not set: run the suite with tests/run.sh, which starts the servers", name);
    }
    return value;
}

const char *testenv_source_dir(void) { return testenv_require("IMGFEED_SOURCE_DIR"); }
const char *testenv_binary_dir(void) { return testenv_require("IMGFEED_BINARY_DIR"); }

int testenv_servers(const char *command) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "bash '%s' %s '%s' >&2", testenv_require("IMGFEED_TEST_SERVERS"), command,
             testenv_require("IMGFEED_TEST_RUNDIR"));
    int status = system(cmd);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

char *testenv_tmpdir(const char *name) {
    char *dir = xasprintf("/tmp/imgfeed-%s.XXXXXX", name);
    if (!mkdtemp(dir)) fail_msg("cannot create a directory %s: %s", dir, strerror(errno));
    return dir;
}

int testenv_rmtree(const char *dir) {
    char *cmd = xasprintf("rm -rf '%s'", dir);
    int status = system(cmd);
    free(cmd);
    if (status == 0) return 0;
    fprintf(stderr, "cannot remove %s\n", dir);
    return -1;
}

int testenv_log_begin(void) {
    char path[] = "/tmp/imgfeed-test-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    log_set_fd(fd);
    return fd;
}

char *testenv_log_end(int fd) {
    log_set_fd(2);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = xmalloc((size_t)size + 1);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(fd);
    return text;
}

int testenv_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail_msg("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot bind a loopback port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}
