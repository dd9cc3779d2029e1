/* chanpipe.h -- a generated image board through the whole real pipeline, and
 * the check "every post exactly once in the archive".
 *
 * For tests whose subject is not the pipeline itself but what it runs on (a
 * TLS listener, a broker that blocks publishers, a cluster, a link that
 * goes down): chanpipe_init starts the fixture server (fixture.h) with a
 * generated 4chan-like site "cp" of BOARDS boards b0, b1, ... of THREADS
 * threads of POSTS posts each (the OP and 3 of every 10 posts with a file),
 * writes its sites file, and picks a fresh exchange E.  The programs run as
 * proc.h children from the build tree (proc_start_imgfeed: --exchange E
 * --amqp-heartbeat 5s), each with its fixed arguments, then the caller's
 * ARGS, then chanpipe.common_args (for every program: --amqp-url,
 * --amqp-cacert, --queue-type ...):
 *   crawler   --sites F --state-dir D --retries 1 --batch-size 10
 *             --request-timeout 150s (a held request stays in flight)
 *   hasher    --allow-net 127.0.0.0/8 --threads 2 --rps-per-host 0
 *   archiver  --flush-interval 200ms
 * Without --amqp-url the programs use IMGFEED_AMQP_URL, like mq_admin.h,
 * which the check of E.dead and chanpipe_release use.  The archive is the
 * PostgreSQL of IMGFEED_PG (pgtest.h): tables E_cp_thread and E_cp_post.
 *
 * The post ids expected are read from the fixture (/_control/chan/info) by
 * chanpipe_load, at init and again by the caller after changing the site.
 * Nothing is timed: waits end at a guard deadline that only keeps a broken
 * pipeline from hanging the suite, and then show the programs' logs.  Every
 * failure fails the running cmocka test.
 */
#ifndef IMGFEED_TEST_CHANPIPE_H
#define IMGFEED_TEST_CHANPIPE_H

#include <json-c/json.h>

#include "fixture.h"
#include "proc.h"

#define CHANPIPE_SITE "cp"

typedef struct chanpipe {
    char exchange[64];
    char *dir; /* sites file, crawler state */
    char *sites_file;
    char *state_dir;
    fixture fx;
    proc crawler, hasher, archiver;
    const char *const *common_args; /* NULL-terminated, may be NULL; the caller's */
    /* The caller's, read at each start (NULL: none): an argv prefix the next
     * program starts through (proc_start_imgfeed_in), e.g. deploy/netns.sh's
     * {"/bin/bash", ".../netns.sh", "run", DIR, "w1", NULL}. */
    const char *const *launcher;
    int boards;
    json_object *posts; /* "b<k>.<no>" -> "thread" (an OP) or "post" */
    long files;         /* posts with a file */
} chanpipe;

/* Start the fixture server, generate the site, write the sites file, load
 * the expected posts.  TAG (a letter or two) goes into the exchange name. */
void chanpipe_init(chanpipe *c, const char *tag, int boards, int threads, int posts);
/* The same with the fixture server's options FO (NULL: the defaults), e.g.
 * another address to listen on, which the sites file then names. */
void chanpipe_init_with(chanpipe *c, const fixture_options *fo, const char *tag, int boards, int threads, int posts);
/* Stop every program still running (SIGKILL), the fixture server; delete
 * E's topology and tables, the directory.  Safe after a failed init. */
void chanpipe_release(chanpipe *c);

/* (Re)read the expected posts from the fixture. */
void chanpipe_load(chanpipe *c);
/* Add K posts to every thread of the site (they bump it, as on a real
 * board), then chanpipe_load. */
void chanpipe_add_posts(chanpipe *c, int k);

/* Start a program (ARGS NULL-terminated, may be NULL). */
void chanpipe_crawler(chanpipe *c, const char *const *args);
void chanpipe_hasher(chanpipe *c, const char *const *args);
void chanpipe_archiver(chanpipe *c, const char *const *args);
/* Another hasher, in the caller's P (chanpipe_release does not stop it, and
 * the waits do not watch it). */
void chanpipe_hasher_into(chanpipe *c, proc *p, const char *const *args);

/* Rows of E_cp_thread and E_cp_post together. */
long chanpipe_rows(chanpipe *c);
/* Wait until the archive holds a row for every expected post; fails when the
 * hasher or the archiver exits meanwhile. */
void chanpipe_wait_archived(chanpipe *c);
/* Every expected post exactly once, in the table of its type, no other
 * row; every post with a file has its _img entry with a sha1 and no error;
 * E.dead is empty.  WHAT names the phase in messages. */
void chanpipe_check(chanpipe *c, const char *what);
/* Print the logs of the programs that ran, then fail with the message. */
void chanpipe_fail(chanpipe *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
