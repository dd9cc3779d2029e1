/* main.c -- imgfeed-crawler: polls image boards and publishes their posts.
 *
 * The crawler reads the sites file (sites.h), polls each board within the
 * site's rate limit and publishes every new post to the exchange E.raw,
 * keeping what it has published under --state-dir so that it resumes after
 * a crash (crawler.c).  Its settings table and the rest of its main are
 * crawler_main's (program.c), in the library the tests link.
 */
#include "crawler.h"

int main(int argc, char **argv) { return crawler_main(argc, argv); }
