/* test_netguard.c -- common/netguard.c: which addresses downloads may reach.
 *
 * Table-driven: every kind of non-public address in its IPv4 and IPv6
 * forms (mapped, NAT64, 6to4 included) against public ones, then the
 * --allow-net list and its parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netguard.h"

/* A socket address from text, IPv4 or IPv6. */
static void sockaddr_of(const char *text, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
    } else {
        fail_msg("bad address in the table: %s", text);
    }
}

static void test_classify(void **state) {
    (void)state;
    static const struct {
        const char *addr, *kind; /* kind NULL: public */
    } cases[] = {
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"93.184.216.34", NULL},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"10.0.0.1", "private"},
        {"10.255.255.255", "private"},
        {"11.0.0.1", NULL},
        {"100.64.0.1", "shared address space (carrier-grade NAT)"},
        {"100.127.255.255", "shared address space (carrier-grade NAT)"},
        {"100.128.0.1", NULL},
        {"127.0.0.1", "loopback"},
        {"127.0.0.2", "loopback"},
        {"127.255.255.254", "loopback"},
        {"169.254.169.254", "link-local"}, /* cloud metadata */
        {"172.15.255.255", NULL},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"172.32.0.1", NULL},
        {"192.0.2.1", "documentation"},
        {"192.168.1.1", "private"},
        {"192.169.0.1", NULL},
        {"198.18.0.1", "reserved (benchmarking)"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"240.0.0.1", "reserved"},
        {"255.255.255.255", "reserved"},
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"::ffff:127.0.0.1", "loopback"}, /* IPv4-mapped */
        {"::ffff:10.1.2.3", "private"},
        {"::ffff:8.8.8.8", NULL},
        {"::127.0.0.1", "reserved (IPv4-compatible)"},
        {"64:ff9b::7f00:1", "loopback"},  /* NAT64 of 127.0.0.1 */
        {"64:ff9b::808:808", NULL},       /* NAT64 of 8.8.8.8 */
        {"2002:c0a8:0101::1", "private"}, /* 6to4 of 192.168.1.1 */
        {"2002:0808:0808::1", NULL},
        {"fc00::1", "unique local"},
        {"fd12:3456:789a::1", "unique local"},
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
        {"fec0::1", "site-local"},
        {"ff02::1", "multicast"},
        {"2001:db8::1", "documentation"},
        {"100::1", "reserved (discard-only)"},
        {"4000::1", "reserved"}, /* outside 2000::/3 */
        {"2606:4700:4700::1111", NULL},
        {"2a00:1450:4001:800::200e", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss;
        sockaddr_of(cases[i].addr, &ss);
        const char *kind = netguard_classify((struct sockaddr *)&ss);
        if (!cases[i].kind && kind) fail_msg("%s: classified %s, expected public", cases[i].addr, kind);
        if (cases[i].kind && (!kind || strcmp(kind, cases[i].kind) != 0))
            fail_msg("%s: classified %s, expected %s", cases[i].addr, kind ? kind : "public", cases[i].kind);
    }
}

static bool permits(const netguard *g, const char *addr, char *why, size_t whylen) {
    struct sockaddr_storage ss;
    sockaddr_of(addr, &ss);
    return netguard_permits(g, (struct sockaddr *)&ss, why, whylen);
}

static void test_permits(void **state) {
    (void)state;
    char why[128];
    netguard *g = netguard_new(false);
    assert_true(permits(g, "8.8.8.8", why, sizeof why));
    assert_false(permits(g, "127.0.0.1", why, sizeof why));
    assert_string_equal(why, "127.0.0.1 (loopback)");
    assert_false(permits(g, "::ffff:192.168.0.1", why, sizeof why));
    assert_string_equal(why, "::ffff:192.168.0.1 (private)");
    netguard_free(g);

    g = netguard_new(true);
    assert_true(permits(g, "127.0.0.1", why, sizeof why));
    assert_true(permits(g, "fe80::1", why, sizeof why));
    netguard_free(g);

    struct sockaddr unix_addr = {.sa_family = AF_UNIX};
    assert_string_equal(netguard_classify(&unix_addr), "not an internet address");
    netguard_free(NULL);
}

static void test_allow_list(void **state) {
    (void)state;
    char why[128], err[256];
    netguard *g = netguard_new(false);
    assert_int_equal(netguard_allow_list(g, "127.0.0.2/32, 10.1.0.0/16,fd00::/8", err, sizeof err), 0);
    assert_true(permits(g, "127.0.0.2", why, sizeof why));
    assert_true(permits(g, "::ffff:127.0.0.2", why, sizeof why)); /* the mapped form too */
    assert_false(permits(g, "127.0.0.1", why, sizeof why));
    assert_string_equal(why, "127.0.0.1 (loopback)");
    assert_true(permits(g, "10.1.200.3", why, sizeof why));
    assert_false(permits(g, "10.2.0.1", why, sizeof why));
    assert_true(permits(g, "fd00::5", why, sizeof why));
    assert_false(permits(g, "fc00::5", why, sizeof why));
    /* A bare address is one host; host bits of a network are ignored. */
    assert_int_equal(netguard_allow_list(g, "192.168.7.7,172.16.9.9/12", err, sizeof err), 0);
    assert_true(permits(g, "192.168.7.7", why, sizeof why));
    assert_false(permits(g, "192.168.7.8", why, sizeof why));
    assert_true(permits(g, "172.20.0.1", why, sizeof why));
    /* A bad list adds nothing. */
    assert_int_equal(netguard_allow_list(g, "169.254.0.0/16,nonsense", err, sizeof err), -1);
    assert_non_null(strstr(err, "nonsense"));
    assert_false(permits(g, "169.254.1.1", why, sizeof why));
    netguard_free(g);
}

static void test_check_list(void **state) {
    (void)state;
    static const struct {
        const char *value;
        bool ok;
    } cases[] = {
        {"127.0.0.2/32", true},
        {"10.0.0.0/8,fd00::/8", true},
        {"::1", true},
        {"1.2.3.4", true},
        {"", true},
        {"10.0.0.0/33", false},
        {"::/129", false},
        {"10.0.0.0/", false},
        {"10.0.0/8", false},
        {"a,b", false},
        {"10.0.0.0/8,", false},
        {"10.0.0.0/-1", false},
        {"host.example", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256] = "";
        bool ok = netguard_check_list(cases[i].value, why, sizeof why);
        if (ok != cases[i].ok)
            fail_msg("'%s': %s, expected %s (%s)", cases[i].value, ok ? "accepted" : "refused",
                     cases[i].ok ? "accepted" : "refused", why);
        if (!ok) assert_true(why[0] != '\0');
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_permits),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_check_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
