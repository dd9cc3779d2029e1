#!/usr/bin/env bash
# disk_full.sh -- imgfeed-export ndjson on an output that fills up.
#
#   disk_full.sh EXPORT PG EXCHANGE OUT EXPECTED SKIP_TABLE
#
# Where the machine lets us (root with CAP_SYS_ADMIN: `unshare -m` works),
# OUT is a 512 KiB tmpfs in a private mount namespace, so the export meets a
# real ENOSPC; elsewhere (a container without it) the export runs under
# RLIMIT_FSIZE with SIGXFSZ ignored, so that a write past 200 kB fails with
# EFBIG.  Either way: exit status 4 with the reason, no hidden leftover, every
# visible part whole and right (read_ndjson.py --partial); then, with room
# (the tmpfs grown, or no limit), a rerun exits 0 and the export equals the
# archive (EXPECTED, the test's SQL rows, less SKIP_TABLE's).  Prints
# "ok - disk full (MODE)" and exits 0, or says what failed and exits 1.
set -u
exp=$1 pg=$2 ex=$3 out=$4 expected=$5 skip=$6
reader=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/read_ndjson.py
want=$out.expected
grep -v "^$skip	" "$expected" >"$want"
tables="${ex}_[!b]*,${ex}_bignum_item"
mkdir -p "$out"
export exp pg ex out want tables reader

scenario() {
    local mode=$1 rc reason
    fail() { echo "not ok - disk full ($mode): $*"; exit 1; }
    run() { "$exp" ndjson --pg "$pg" --exchange "$ex" --out "$out" --tables "$tables" --part-bytes 16M "$@"; }
    if [[ $mode == tmpfs ]]; then
        mount -t tmpfs -o size=512k tmpfs "$out" || fail "cannot mount a tmpfs"
        run >"$out.log1" 2>&1; rc=$?
        reason="No space left on device"
    else
        (trap '' XFSZ; exec prlimit --fsize=200000 -- "$exp" ndjson --pg "$pg" --exchange "$ex" --out "$out" \
            --tables "$tables" --part-bytes 16M) >"$out.log1" 2>&1; rc=$?
        reason="File too large"
    fi
    cat "$out.log1"
    [[ $rc == 4 ]] || fail "exit status $rc, expected 4"
    grep -q "cannot write .*: $reason; nothing is left half-written" "$out.log1" || fail "no clear message"
    left=$(find "$out" -name '.*' ! -name .imgfeed-export.lock)
    [[ -z $left ]] || fail "leftovers: $left"
    for f in $(find "$out" -name 'part-*'); do zstd -tq "$f" || fail "$f is broken"; done
    /usr/bin/python3 "$reader" "$out" "$want" --partial || fail "the parts written are not right"
    [[ $mode == tmpfs ]] && { mount -o remount,size=256m "$out" || fail "cannot grow the tmpfs"; }
    run >"$out.log2" 2>&1; rc=$?
    [[ $rc == 0 ]] || { cat "$out.log2"; fail "the rerun exited $rc"; }
    /usr/bin/python3 "$reader" "$out" "$want" || fail "the rerun's export is not the archive"
    echo "ok - disk full ($mode): exit 4, '$reason', nothing half-written, the rerun finished"
}

if unshare -m sh -c "mount -t tmpfs -o size=4k tmpfs '$out'" 2>/dev/null; then
    unshare -m bash -c "$(declare -f scenario); scenario tmpfs"
else
    echo "# no private mount namespace here (unshare -m refused): RLIMIT_FSIZE instead of a full tmpfs"
    scenario fsize
fi
