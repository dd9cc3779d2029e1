#!/usr/bin/env bash
# hash.sh -- how fast imgfeed-hasher hashes, against Python and against decoding alone.
#
# Usage: bench/hash.sh DIR      (make a DIR with: /usr/bin/python3 bench/make_corpus.py DIR)
#
# Times three things over the image files of DIR, on one core (taskset -c 0),
# in the same run, with hyperfine, each as one process started once over its
# whole list of files, each printing one line per file (to /dev/null):
#   imgfeed       imgfeed-hasher hash: size, crc32, md5, sha1, width, height and
#                 ahash, dhash, phash (12) and whash (8) of every file
#   python        the same seven values the way chan_feed computed them: one
#                 Image.open, the four imagehash functions, the checksums
#                 (tests/hasher/imagehash_ref.py under Debian's Pillow/numpy/scipy/pywt)
#   floor         bench_jpegfloor (bench/jpegfloor.c): every JPEG read into
#                 memory and decoded with libjpeg-turbo at the settings the
#                 hasher's decoder uses (Pillow's), nothing else: the floor,
#                 since no exact hash can skip decoding (compared with imgfeed
#                 on the JPEGs alone, then separately on each class of JPEGs
#                 by the header's size: small, under 0.1 megapixels; typical,
#                 0.1 to 24; large, 24 megapixels (6000x4000) or more)
# and prints each one's mean, median and CPU (user + system) time and files
# per second, the ratios of the mean times and of the CPU times against the
# goals (imgfeed-hasher with every value, the colour summary included, at
# most 1.3x the floor on typical JPEGs and 1.5x on small and large ones),
# then imgfeed's peak memory on the largest file.
#
#   RUNS=N               hyperfine runs of each command (default 5, after one warmup)
#   IMGFEED_BUILD=DIR    an existing build directory to build the two programs
#                        in (default: a Release build in build/bench)
#   IMGFEED_HASHER=PATH, IMGFEED_JPEGFLOOR=PATH
#                        use these programs as they are, building neither
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: bench/hash.sh DIR (see bench/make_corpus.py)}
RUNS=${RUNS:-5}
PY=/usr/bin/python3

for tool in hyperfine taskset; do
    command -v "$tool" >/dev/null || { echo "hash.sh: $tool missing: apt-get install hyperfine util-linux" >&2; exit 2; }
done

HASHER=${IMGFEED_HASHER:-}
FLOOR=${IMGFEED_JPEGFLOOR:-}
if [[ -z $HASHER || -z $FLOOR ]]; then
    BUILD=${IMGFEED_BUILD:-$ROOT/build/bench}
    if [[ -z ${IMGFEED_BUILD:-} ]]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DIMGFEED_TESTS=OFF >/dev/null
    fi
    cmake --build "$BUILD" --target imgfeed-hasher bench_jpegfloor -j"$(nproc)" >/dev/null
    HASHER=${HASHER:-$BUILD/hasher/imgfeed-hasher}
    FLOOR=${FLOOR:-$BUILD/bench/bench_jpegfloor}
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
find "$DIR" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.gif' -o -iname '*.webp' \) | sort >"$WORK/all"
grep -iE '\.jpe?g$' "$WORK/all" >"$WORK/jpeg" || true
# Small (under 0.1 megapixels), typical and large (24 megapixels or more)
# JPEGs, by their header.
"$PY" - "$WORK/jpeg" "$WORK/small" "$WORK/typical" "$WORK/large" <<'PYEOF'
import sys
from PIL import Image
src, small, typical, large = sys.argv[1:5]
with open(small, "w") as s, open(typical, "w") as t, open(large, "w") as l:
    for path in open(src).read().splitlines():
        w, h = Image.open(path).size
        (s if w * h < 100_000 else l if w * h >= 24_000_000 else t).write(path + "\n")
PYEOF
[[ -s $WORK/all ]] || { echo "hash.sh: no images in $DIR" >&2; exit 2; }
[[ -s $WORK/jpeg ]] || { echo "hash.sh: no JPEGs in $DIR" >&2; exit 2; }
echo "$(wc -l <"$WORK/all") files ($(wc -l <"$WORK/jpeg") JPEGs: $(wc -l <"$WORK/small") small, $(wc -l <"$WORK/typical") typical, $(wc -l <"$WORK/large") large), $(du -sh "$DIR" | cut -f1) in $DIR"

# One small script per command, so that hyperfine times only what it names:
# bash reads the list and execs the program once over all of its files.
run_script() { # run_script NAME LIST PROGRAM ARGS...
    local name=$1 list=$2
    shift 2
    printf '#!/bin/bash\nmapfile -t files <%q\nexec' "$list" >"$WORK/$name.sh"
    printf ' %q' "$@" >>"$WORK/$name.sh"
    # shellcheck disable=SC2016 # expanded by the script, not here
    printf ' "${files[@]}" >/dev/null\n' >>"$WORK/$name.sh"
    chmod +x "$WORK/$name.sh"
}
run_script imgfeed "$WORK/all" "$HASHER" hash
run_script python "$WORK/all" "$PY" "$ROOT/tests/hasher/imagehash_ref.py"
for set in jpeg small typical large; do
    run_script "imgfeed-$set" "$WORK/$set" "$HASHER" hash
    run_script "floor-$set" "$WORK/$set" "$FLOOR"
done
# Both sides must succeed on every file, or the times compare different work.
for script in imgfeed python floor-jpeg; do
    "$WORK/$script.sh" || { echo "hash.sh: $script failed on some file of $DIR" >&2; exit 1; }
done

# Each class of JPEGs apart, where DIR has it.
commands=(-n imgfeed "$WORK/imgfeed.sh" -n python "$WORK/python.sh"
          -n imgfeed-jpeg "$WORK/imgfeed-jpeg.sh" -n floor-jpeg "$WORK/floor-jpeg.sh")
for set in small typical large; do
    [[ -s $WORK/$set ]] && commands+=(-n "imgfeed-$set" "$WORK/imgfeed-$set.sh" -n "floor-$set" "$WORK/floor-$set.sh")
done
taskset -c 0 hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/times.json" "${commands[@]}"

"$PY" - "$WORK/times.json" "$WORK" <<'PYEOF'
import json, os, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
count = {name: len(open(os.path.join(sys.argv[2], name)).read().splitlines())
         for name in ("all", "jpeg", "small", "typical", "large")}
t = {name: r["mean"] for name, r in results.items()}
cpu = {name: r["user"] + r["system"] for name, r in results.items()}
print()
print("%-16s %6s %9s %9s %9s %9s" % ("command", "files", "mean s", "median s", "CPU s", "files/s"))
for name in results:
    n = count["all" if name in ("imgfeed", "python") else name.split("-")[1]]
    print("%-16s %6d %9.3f %9.3f %9.3f %9.1f" % (name, n, t[name], results[name]["median"], cpu[name], n / t[name]))
print()
print("imgfeed / python       %.2fx the time, %.2fx the CPU (python takes %.1fx imgfeed's time)"
      % (t["imgfeed"] / t["python"], cpu["imgfeed"] / cpu["python"], t["python"] / t["imgfeed"]))
GOALS = {"jpeg": None, "small": 1.5, "typical": 1.3, "large": 1.5}
for name, label in (("jpeg", "all JPEGs"), ("small", "small JPEGs"), ("typical", "typical JPEGs"),
                    ("large", "large JPEGs")):
    if "floor-" + name not in t:
        continue
    rt, rc = t["imgfeed-" + name] / t["floor-" + name], cpu["imgfeed-" + name] / cpu["floor-" + name]
    goal = GOALS[name]
    verdict = "" if goal is None else "  (goal <= %.1fx: %s)" % (goal, "met" if max(rt, rc) <= goal else
                                                                "met on CPU only" if rc <= goal else "MISSED")
    print("imgfeed / floor, %-13s %.2fx the time, %.2fx the CPU of decoding alone%s" % (label, rt, rc, verdict))
PYEOF

largest=$(xargs -d '\n' -a "$WORK/all" ls -S 2>/dev/null | head -1 || true) # ls dies of SIGPIPE: not a failure
peak=$( { /usr/bin/time -v "$HASHER" hash "$largest" >/dev/null; } 2>&1 | awk -F': ' '/Maximum resident/ {print $2}')
echo "peak memory hashing $(basename "$largest"): $((peak / 1024)) MiB"
