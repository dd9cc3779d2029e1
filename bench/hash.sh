#!/usr/bin/env bash
# hash.sh -- how fast imgfeed-hasher hashes, against Python and against decoding alone.
#
# Usage: bench/hash.sh DIR      (make a DIR with: /usr/bin/python3 bench/make_corpus.py DIR)
#
# Times three things over the image files of DIR, on one core (taskset -c 0),
# in the same run, with hyperfine:
#   imgfeed       imgfeed-hasher hash: size, crc32, md5, sha1, width, height and
#                 ahash, dhash, phash (12) and whash (8) of every file
#   python        the same seven values the way chan_feed computed them: one
#                 Image.open, the four imagehash functions, the checksums
#                 (tests/hasher/imagehash_ref.py under Debian's Pillow/numpy/scipy/pywt)
#   djpeg         libjpeg-turbo's djpeg decoding each JPEG to /dev/null: the floor,
#                 since no exact hash can skip decoding (compared with imgfeed
#                 on the JPEGs alone, then separately on the typical JPEGs and
#                 on the large ones: those of 6000x4000 = 24 megapixels or more)
# and prints the ratios, then imgfeed's peak memory on the largest file.
# Builds a Release imgfeed-hasher in build/bench unless IMGFEED_HASHER names one.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: bench/hash.sh DIR (see bench/make_corpus.py)}
RUNS=${RUNS:-5}
PY=/usr/bin/python3

for tool in hyperfine djpeg taskset; do
    command -v "$tool" >/dev/null || { echo "hash.sh: $tool missing: apt-get install hyperfine libjpeg-turbo-progs util-linux" >&2; exit 2; }
done

HASHER=${IMGFEED_HASHER:-}
if [[ -z $HASHER ]]; then
    cmake -S "$ROOT" -B "$ROOT/build/bench" -DCMAKE_BUILD_TYPE=Release -DIMGFEED_TESTS=OFF >/dev/null
    cmake --build "$ROOT/build/bench" --target imgfeed-hasher -j"$(nproc)" >/dev/null
    HASHER=$ROOT/build/bench/hasher/imgfeed-hasher
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
find "$DIR" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.gif' -o -iname '*.webp' \) | sort >"$WORK/all"
grep -iE '\.jpe?g$' "$WORK/all" >"$WORK/jpeg" || true
# Typical (under 24 megapixels) and large JPEGs, by their header.
"$PY" - "$WORK/jpeg" "$WORK/typical" "$WORK/large" <<'PYEOF'
import sys
from PIL import Image
src, typical, large = sys.argv[1:4]
with open(typical, "w") as t, open(large, "w") as l:
    for path in open(src).read().splitlines():
        w, h = Image.open(path).size
        (l if w * h >= 24_000_000 else t).write(path + "\n")
PYEOF
[[ -s $WORK/all ]] || { echo "hash.sh: no images in $DIR" >&2; exit 2; }
[[ -s $WORK/jpeg ]] || { echo "hash.sh: no JPEGs in $DIR" >&2; exit 2; }
echo "$(wc -l <"$WORK/all") files ($(wc -l <"$WORK/jpeg") JPEGs: $(wc -l <"$WORK/typical") typical, $(wc -l <"$WORK/large") large), $(du -sh "$DIR" | cut -f1) in $DIR"

# One small script per command, so that hyperfine times only what it names.
printf '#!/bin/sh\nxargs -d "\\n" -a %s %s hash >/dev/null\n' "$WORK/all" "$HASHER" >"$WORK/imgfeed.sh"
for set in jpeg typical large; do
    printf '#!/bin/sh\nxargs -d "\\n" -a %s %s hash >/dev/null\n' "$WORK/$set" "$HASHER" >"$WORK/imgfeed-$set.sh"
    printf '#!/bin/sh\nwhile IFS= read -r f; do djpeg -outfile /dev/null "$f"; done <%s\n' "$WORK/$set" >"$WORK/djpeg-$set.sh"
done
printf '#!/bin/sh\nxargs -d "\\n" -a %s %s %s >/dev/null\n' "$WORK/all" "$PY" "$ROOT/tests/hasher/imagehash_ref.py" >"$WORK/python.sh"
chmod +x "$WORK"/*.sh

taskset -c 0 hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/times.json" \
    -n imgfeed "$WORK/imgfeed.sh" -n python "$WORK/python.sh" \
    -n imgfeed-jpeg "$WORK/imgfeed-jpeg.sh" -n djpeg "$WORK/djpeg-jpeg.sh" \
    -n imgfeed-typical "$WORK/imgfeed-typical.sh" -n djpeg-typical "$WORK/djpeg-typical.sh" \
    -n imgfeed-large "$WORK/imgfeed-large.sh" -n djpeg-large "$WORK/djpeg-large.sh"

"$PY" - "$WORK/times.json" <<'PYEOF'
import json, sys
t = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print()
print("imgfeed / python       %.2fx the time (python takes %.1fx imgfeed's)" % (t["imgfeed"] / t["python"], t["python"] / t["imgfeed"]))
for name, label in (("jpeg", "all JPEGs"), ("typical", "typical JPEGs"), ("large", "large JPEGs")):
    print("imgfeed / djpeg, %-13s %.2fx the time of decoding alone (goal: <= 1.5x)"
          % (label, t["imgfeed-" + name] / t["djpeg" if name == "jpeg" else "djpeg-" + name]))
PYEOF

largest=$(xargs -d '\n' -a "$WORK/all" ls -S | head -1)
peak=$( { /usr/bin/time -v "$HASHER" hash "$largest" >/dev/null; } 2>&1 | awk -F': ' '/Maximum resident/ {print $2}')
echo "peak memory hashing $(basename "$largest"): $((peak / 1024)) MiB"
