#!/usr/bin/env bash
# crawl_memory.sh -- imgfeed-crawler's peak memory on the worst bodies its
# settings let through.
#
# Usage: bash bench/crawl_memory.sh [SITES]   (default 2: crawled at once, as
#        the default sites file has; CRAWLER_OPTS adds options, e.g.
#        "--max-body 64MiB")
#
# What bounds the crawler's memory (docs/benchmarks.md): per site crawled at
# once, the body in hand (--max-body), the json-c tree of one document or,
# in a thread, of one post (--max-parse-memory, estimated from the text's
# shape before json-c sees it), and the messages being gathered (about three
# --max-message).  This script makes bodies that push each of those to its
# limit under the settings given, serves them from the fixture server's
# /files/, and crawls each with SITES sites at once (all of them asking for
# the same hostile board) under /usr/bin/time -v, with its own RabbitMQ
# (tests/lib/servers.sh).  The cases, for --max-body B and --max-parse-memory T
# (defaults 32 MiB and 64 MiB):
#   posts        a thread of B of ordinary posts (about 250 bytes each):
#                every post published, a message at a time
#   tiny-posts   a thread of B of {"no":N} (9 bytes a post; json-c would take
#                100 times that, were the thread parsed whole)
#   long-post    a thread of one post whose comment is as long as T lets it
#                be parsed and printed again (or B), published alone or, over
#                --max-message, passed over
#   control-post the same, of raw control characters (printed six times as
#                long)
#   complex-post a thread of one post with members enough for a json-c tree
#                just under T
#   complex-list threads.json with one thread and beside it empty objects
#                enough for a tree just under T
# and prints, per case, the posts published, the refusals logged and the
# peak RSS against the bound the docs give.  Traffic: loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SITES=${1:-2}
read -r -a CRAWLER_OPTS <<<"${CRAWLER_OPTS:-}"
BENCH=crawl_memory.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[[ $SITES =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/crawl_memory.sh [SITES]" >&2; exit 2; }

bench_build imgfeed-crawler
CRAWLER=$BUILD/crawler/imgfeed-crawler
"$CRAWLER" --help >/dev/null
# The settings in force, as the crawler reads them (defaults unless CRAWLER_OPTS).
setting() { # setting NAME DEFAULT_BYTES
    local i v=$2
    for ((i = 0; i < ${#CRAWLER_OPTS[@]}; i++)); do
        [[ ${CRAWLER_OPTS[i]} == "--$1" ]] && v=$("$PY" -c '
import re, sys
m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)(i?B)?", sys.argv[1])
print(int(m.group(1)) * {"": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])' "${CRAWLER_OPTS[i + 1]}")
    done
    echo "$v"
}
MAX_BODY=$(setting max-body $((32 << 20)))
MAX_TREE=$(setting max-parse-memory $((64 << 20)))
MAX_MESSAGE=$(setting max-message $((16 << 20)))

bench_start_servers
mkdir -p "$WORK/files"
"$PY" - "$WORK/files" "$MAX_BODY" "$MAX_TREE" <<'PYEOF'
import json, os, sys
out, body, tree = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
room = body - 4096  # under --max-body, with room for the frame

def write(name, text):
    with open(os.path.join(out, name), "w") as f:
        f.write(text)

def threads(extra=""):
    return '[{"page":1,"threads":[{"no":1,"last_modified":1700000000}]%s}]' % extra

# posts: ordinary posts, a comment with a link each, until B is filled.
parts, size, no = [], 10, 1
while True:
    com = "reply number %d with a link https://example.org/%d.png and some words" % (no, no)
    p = json.dumps({"no": no, "resto": 0 if no == 1 else 1, "now": "01/01/26(Thu)00:00:00", "name": "Anonymous",
                    "com": com, "time": 1700000000 + no}, separators=(",", ":"))
    if size + len(p) + 1 > room:
        break
    parts.append(p)
    size += len(p) + 1
    no += 1
write("posts-threads.json", threads())
write("posts-thread-1.json", '{"posts":[' + ",".join(parts) + "]}")

# tiny-posts: {"no":N} until B is filled.
parts, size, no = [], 10, 1
while size < room - 24:
    p = '{"no":%d}' % no
    parts.append(p)
    size += len(p) + 1
    no += 1
write("tiny-posts-threads.json", threads())
write("tiny-posts-thread-1.json", '{"posts":[' + ",".join(parts) + "]}")

# long-post: one post whose comment fills B, or as much of it as T lets
# be parsed and printed (jsonscan: the string once in the tree, twice in the
# print buffer); control-post: the same with raw control characters, which
# json-c prints as six-byte escapes.
n = min(room - 64, int(tree * 0.97 / 3))
write("long-post-threads.json", threads())
write("long-post-thread-1.json", '{"posts":[{"no":1,"resto":0,"com":"' + "x" * n + '"}]}')
n = min(room - 64, int(tree * 0.97 / 13))
write("control-post-threads.json", threads())
write("control-post-thread-1.json", '{"posts":[{"no":1,"resto":0,"com":"' + "\x01" * n + '"}]}')

# complex-post: members of 1-digit values until the estimate nears T
# (jsonscan: 176 + 80 bytes a member plus its key's bytes), within B.
members, est, i = [], 800 + 16 + 2 * (176 + 80), 0
while True:
    key = "%x" % i
    cost = 176 + 80 + len(key)
    if est + cost > tree * 0.9:
        break
    members.append('"%s":1' % key)
    est += cost
    i += 1
write("complex-post-threads.json", threads())
write("complex-post-thread-1.json", '{"posts":[{"no":1,"resto":0,' + ",".join(members) + "}]}")

# complex-list: empty objects beside the thread list until the estimate nears T.
n = int(tree * 0.97 / (800 + 16))
write("complex-list-threads.json", threads(',"junk":[' + ",".join(["{}"] * n) + "]"))
write("complex-list-thread-1.json", '{"posts":[{"no":1,"resto":0,"com":"the one thread"}]}')
PYEOF
bench_start_fixture 64 "$WORK/files"

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB"
echo "settings:  --max-body $((MAX_BODY >> 20)) MiB, --max-parse-memory $((MAX_TREE >> 20)) MiB, --max-message $((MAX_MESSAGE >> 20)) MiB; $SITES sites at once"
BOUND_MB=$("$PY" -c "print(round((12e6 + $SITES * (1.5 * $MAX_BODY + $MAX_TREE + 3 * $MAX_MESSAGE)) / 1e6))")
echo "bound:     12 MB + sites x (1.5 x max-body + max-parse-memory + 3 x max-message) = $BOUND_MB MB"
echo
printf '%-13s %10s %9s %9s %12s\n' case body posts refused "peak RSS"
for c in posts tiny-posts long-post control-post complex-post complex-list; do
    sites=
    for s in $(seq "$SITES"); do
        sites+="${sites:+,}{\"name\": \"s$s\", \"kind\": \"4chan\", \"api\": \"$BASE\", \"boards\": [\"g\"], \"rps\": 1000000,
          \"threads_url\": \"$BASE/files/$c-threads.json\", \"thread_url\": \"$BASE/files/$c-thread-{no}.json\"}"
    done
    echo "{\"user_agent\": \"imgfeed-bench/1 (bench/crawl_memory.sh)\", \"sites\": [$sites]}" >"$WORK/sites.json"
    rm -rf "$WORK/state"
    /usr/bin/time -v -o "$WORK/$c.time" "$CRAWLER" --once --sites "$WORK/sites.json" --state-dir "$WORK/state" \
        --exchange "mem$RANDOM" --amqp-url "$IMGFEED_AMQP_URL" "${CRAWLER_OPTS[@]}" >"$WORK/$c.log" 2>&1 ||
        { tail -n 20 "$WORK/$c.log" >&2; echo "$BENCH: the crawler failed on $c" >&2; exit 1; }
    rss=$(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 * 1024 / 1e6 }' "$WORK/$c.time")
    posts=$(grep -E 's[0-9]+: [0-9]+ requests \(' "$WORK/$c.log" | sed -E 's/.* ([0-9]+) posts published in.*/\1/' |
        awk '{ s += $1 } END { print s + 0 }')
    refused=$(grep -c 'refused for good and passed over\|too complex' "$WORK/$c.log" || true)
    size=$(stat -c %s "$WORK/files/$c-thread-1.json")
    [[ $c == complex-list ]] && size=$(stat -c %s "$WORK/files/$c-threads.json")
    printf '%-13s %8.1fMB %9s %9s %9s MB\n' "$c" "$(awk -v b="$size" 'BEGIN { print b / 1e6 }')" "$posts" "$refused" "$rss"
    rabbitmqctl list_queues name -q 2>/dev/null | grep -E '^mem[0-9]+\.hasher$' | while read -r qn; do
        rabbitmqctl delete_queue "$qn" >/dev/null
    done
done
