/* test_htmltext.c -- HTML text as plain text (common/htmltext.h): a table
 * of inputs and the exact text they give, entities that are not entities
 * kept as text, tags cut short dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htmltext.h"

static void test_plain(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"a<br>b<br/>c<BR />d", "a\nb\nc\nd"},
        {"<p>one</p><p>two</p>", "one\ntwo\n"},
        {"<span class=\"quote\">&gt;quoted</span>", ">quoted"},
        {"&amp;&lt;&gt;&quot;&apos;&nbsp;", "&<>\"' "},
        {"&#955;&#x3bb;&#X3BB;", "\xce\xbb\xce\xbb\xce\xbb"},
        {"&#128512;", "\xf0\x9f\x98\x80"},
        {"&unknown; &#0; &#xd800; &#x110000; &amp &", "&unknown; &#0; &#xd800; &#x110000; &amp &"},
        {"a<b>b</b>c<unclosed", "abc"},
        {"&lt;script&gt;x&lt;/script&gt;", "<script>x</script>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = htmltext_plain(cases[i].in, strlen(cases[i].in));
        if (strcmp(got, cases[i].out) != 0) fail_msg("case %zu: \"%s\", not \"%s\"", i, got, cases[i].out);
        free(got);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plain)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
