#!/usr/bin/env bash
# test_cli.sh -- the programs' command lines: --help, --version, and the
# one-line error with exit status 2 on an unknown flag or a bad value.
# Usage: test_cli.sh PROGRAM...
set -u
failures=0
check() { # check DESCRIPTION CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok - $what"; else echo "not ok - $what"; failures=$((failures + 1)); fi
}
for prog in "$@"; do
    name=$(basename "$prog")
    out=$("$prog" --help); status=$?
    check "$name --help exits 0" test $status -eq 0
    check "$name --help shows usage" grep -q "^Usage: $name" <<<"$out"
    for flag in --amqp-url --exchange --log-level --log-format; do
        check "$name --help lists $flag" grep -q -- "$flag" <<<"$out"
    done
    check "$name --help names IMGFEED_AMQP_URL" grep -q "env IMGFEED_AMQP_URL" <<<"$out"
    out=$("$prog" --version); status=$?
    check "$name --version" test $status -eq 0 -a -n "$out"
    out=$("$prog" --bogus 2>&1 >/dev/null); status=$?
    check "$name --bogus exits 2" test $status -eq 2
    check "$name --bogus says so in one line" test "$out" = "$name: unknown option '--bogus' (see --help)"
    out=$("$prog" stray 2>&1 >/dev/null); status=$?
    check "$name with a stray word exits 2" test $status -eq 2
    check "$name with a stray word says so" test "$out" = "$name: unexpected argument 'stray' (see --help)"
    out=$("$prog" --log-level=loud 2>&1 >/dev/null); status=$?
    check "$name bad --log-level exits 2" test $status -eq 2
    check "$name bad --log-level names the flag" grep -q -- "--log-level: 'loud'" <<<"$out"
    out=$(IMGFEED_AMQP_HEARTBEAT=often "$prog" 2>&1 >/dev/null); status=$?
    check "$name bad IMGFEED_AMQP_HEARTBEAT exits 2" test $status -eq 2
    check "$name bad environment names the variable" grep -q "IMGFEED_AMQP_HEARTBEAT: 'often'" <<<"$out"
    out=$(IMGFEED_LOG_LEVEL=warn "$prog" --help); status=$?
    check "$name --help ignores the environment" test $status -eq 0
done
# imgfeed-hasher hash: the exit status says whether every file was hashed.
for prog in "$@"; do
    [[ $(basename "$prog") == imgfeed-hasher ]] || continue
    tmp=$(mktemp -d)
    printf '<html></html>' >"$tmp/page.jpg"
    "$prog" hash >/dev/null 2>&1; status=$?
    check "hash without FILE exits 2" test $status -eq 2
    "$prog" hash --hash-size 7 "$tmp/page.jpg" >/dev/null 2>&1; status=$?
    check "hash --hash-size 7 (unsupported) exits 2" test $status -eq 2
    out=$("$prog" hash "$tmp/page.jpg" "$tmp/missing.png"); status=$?
    check "hash of files that fail exits 1" test $status -eq 1
    check "hash prints one line per file" test "$(wc -l <<<"$out")" -eq 2
    check "an HTML page is not an image" grep -q '"file":"[^"]*page.jpg".*"error":"not an image"' <<<"$out"
    check "a missing file says why" grep -q '"error":"cannot read: No such file or directory"' <<<"$out"
    out=$("$prog" hash --max-bytes 4 "$tmp/page.jpg"); status=$?
    check "hash --max-bytes refuses a larger file" grep -q '"error":"too large"' <<<"$out"
    rm -rf "$tmp"
done
# imgfeed-archiver --init-db: a database that cannot be reached is an error, said plainly.
for prog in "$@"; do
    [[ $(basename "$prog") == imgfeed-archiver ]] || continue
    out=$("$prog" --init-db --pg 'host=127.0.0.1 port=1 connect_timeout=2' 2>&1); status=$?
    check "--init-db without a database exits 1" test $status -eq 1
    check "--init-db says it cannot connect" grep -q "cannot connect to PostgreSQL" <<<"$out"
done
# imgfeed-search query and dupes: their own command lines.
for prog in "$@"; do
    [[ $(basename "$prog") == imgfeed-search ]] || continue
    out=$("$prog" query 2>&1 >/dev/null); status=$?
    check "query without FILE exits 2" test $status -eq 2
    check "query without FILE says so" grep -q "^imgfeed-search query: .*FILE" <<<"$out"
    out=$("$prog" query --help); status=$?
    check "query --help exits 0" test $status -eq 0
    check "query --help shows usage" grep -q "^Usage: imgfeed-search query" <<<"$out"
    check "query --help lists --server" grep -q -- "--server" <<<"$out"
    out=$("$prog" query --bogus x.jpg 2>&1 >/dev/null); status=$?
    check "query --bogus exits 2" test $status -eq 2
    check "query --bogus says so in one line" test "$out" = "imgfeed-search query: unknown option '--bogus' (see --help)"
    out=$("$prog" dupes --help); status=$?
    check "dupes --help exits 0" test $status -eq 0
    check "dupes --help shows usage" grep -q "^Usage: imgfeed-search dupes" <<<"$out"
    check "dupes --help lists --max-distance" grep -q -- "--max-distance" <<<"$out"
    out=$("$prog" dupes --bogus 2>&1 >/dev/null); status=$?
    check "dupes --bogus exits 2" test $status -eq 2
    check "dupes --bogus says so in one line" test "$out" = "imgfeed-search dupes: unknown option '--bogus' (see --help)"
    out=$("$prog" --listen 2>&1 >/dev/null); status=$?
    check "--listen without a value exits 2" test $status -eq 2
done
echo "$((failures == 0 ? 1 : 0)) suites passed, $failures checks failed"
exit $((failures > 0))
