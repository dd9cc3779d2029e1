#!/usr/bin/env bash
# export.sh -- how fast imgfeed-export writes the archive out, and in how much memory.
#
# Usage: bash bench/export.sh [N]        (N archive rows, default 1000000)
#
# Starts its own RabbitMQ and PostgreSQL (tests/lib/servers.sh via bench/lib.sh,
# in a temporary directory, removed at exit), installs archiver/schema.sql and
# makes two archives the archiver's way (imgfeed_ensure_table: id, archived_on,
# data jsonb), filled by generate_series SQL with realistic items over 30 days
# of archived_on: 80 % 4chan posts (the 4chan fields, _urls, one _img entry
# with size, format, checksums, the four hashes and the colour summary:
# rgb_mean, brightness, rgb_hist), 20 % nekos_best images, about 1.1 KB of
# JSON a row:
#   small   N/10 rows (exchange bsmall)
#   big     N rows    (exchange bbig)
# The secondary indexes (board/time btree, _img GIN) are dropped for the
# load: the export never reads them.  Then, for each archive:
#   ndjson        `imgfeed-export ndjson` into an empty folder: rows/s (wall),
#                 its CPU seconds, PostgreSQL's CPU meanwhile, peak RSS
#                 (/usr/bin/time -v), the output's size and ratio
#   ndjson again  a rerun that finds every day unchanged (the fingerprint scan)
# Goal: peak memory independent of the archive's size (small vs big).
# bench_dataset: images/s of `imgfeed-export dataset` and its peak memory, at
# both sizes without files (--missing list), and on the small archive with a
# save dir of real files (hard-linked), then rerun (see the function).
# LEVEL (default 3) and PART_BYTES (default 64MiB) go to the export.
# Builds Release binaries in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
LEVEL=${LEVEL:-3}
PART_BYTES=${PART_BYTES:-64MiB}
BENCH=export.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[[ $N =~ ^[1-9][0-9]*$ && $N -ge 1000 ]] || { echo "usage: bench/export.sh [N >= 1000]" >&2; exit 2; }
for tool in "$PGBIN/psql" /usr/bin/time /usr/lib/rabbitmq/bin/rabbitmq-server; do
    [[ -x $tool ]] || { echo "export.sh: $tool missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
done

bench_build imgfeed-export
EXPORT=$BUILD/export/imgfeed-export
bench_start_servers
psql -f "$ROOT/archiver/schema.sql" >/dev/null 2>&1

# One _img entry as the hasher writes it (hash size 12: 18-byte hashes,
# base64), with the colour summary; G numbers the picture.
psql <<'SQL'
CREATE FUNCTION bench_b64(seed text, n int) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT encode(substr(decode(md5(seed) || md5(seed || 'x'), 'hex'), 1, n), 'base64') $$;
CREATE FUNCTION bench_img(g bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_array(jsonb_build_object(
    'url', 0, 'size', 50000 + g % 950000, 'width', 640 + g % 1280, 'height', 480 + g % 720, 'format', 'jpeg',
    'crc32', lpad(to_hex(g), 8, '0'), 'md5', md5(g::text), 'sha1', md5(g::text) || substr(md5(g::text || 's'), 1, 8),
    'ahash', bench_b64(g || 'a', 18), 'dhash', bench_b64(g || 'd', 18), 'phash', bench_b64(g || 'p', 18),
    'whash', bench_b64(g || 'w', 18),
    'rgb_mean', jsonb_build_array(round((g % 256) + 0.254, 3), round((g * 7 % 256) + 0.5, 3), round((g * 13 % 256) + 0.125, 3)),
    'brightness', round((g * 3 % 256) + 0.375, 3),
    'rgb_hist', jsonb_build_array(g % 9973, g % 8887, g % 7919, g % 6007, g % 5003, g % 4001, g % 3001, g % 2003,
                                  g % 9967, g % 8863, g % 7907, g % 6011, g % 5009, g % 4003, g % 3011, g % 2011,
                                  g % 9949, g % 8861, g % 7901, g % 6029, g % 5011, g % 4007, g % 3019, g % 2017)))
$$;
SQL

# make_archive EXCHANGE ROWS
make_archive() {
    local ex=$1 rows=$2 posts images
    posts=$((rows * 8 / 10))
    images=$((rows - posts))
    psql -o /dev/null -c "SELECT imgfeed_ensure_table('${ex}_4chan_post', '$ex', '4chan.post'),
                    imgfeed_ensure_table('${ex}_nekos_best_image', '$ex', 'nekos_best.image')"
    psql -c "DROP INDEX ${ex}_4chan_post_board_posted, ${ex}_4chan_post_img,
                        ${ex}_nekos_best_image_board_posted, ${ex}_nekos_best_image_img"
    psql -c "INSERT INTO ${ex}_4chan_post (id, archived_on, data)
      SELECT d->>'_id', timestamptz '2026-11-01 00:00+00' + g * (30 * 86400.0 / $posts) * interval '1 second', d FROM (
        SELECT g, jsonb_build_object('_id', '4chan.post.' || (g % 4) || '.' || g,
          '_board', (ARRAY['a', 'c', 'w', 'wg'])[1 + g % 4], '_site', '4chan', '_kind', '4chan',
          'no', 500000000 + g, 'resto', 500000000 + g - g % 40, 'time', 1761955200 + g / 30,
          'now', '11/01/26(Sat)00:00:00', 'name', 'Anonymous', 'com', 'reply &gt;&gt;' || (500000000 + g - 1) ||
          '<br>' || md5(g::text) || ' lorem ipsum dolor sit amet, consectetur adipiscing elit ' || (g % 1000),
          'filename', 'image_' || g, 'ext', '.jpg', 'w', 1280, 'h', 720, 'tn_w', 250, 'tn_h', 140,
          'tim', 1761955200000 + g, 'md5', bench_b64(g::text, 16), 'fsize', 50000 + g % 950000,
          '_crawled_at', 1761955260 + g / 30, '_urls', jsonb_build_array('https://i.4cdn.org/a/' || (1761955200000 + g) || '.jpg'),
          '_img', bench_img(g)) AS d
        FROM generate_series(1, $posts) g) s"
    psql -c "INSERT INTO ${ex}_nekos_best_image (id, archived_on, data)
      SELECT d->>'_id', timestamptz '2026-11-01 00:00+00' + g * (30 * 86400.0 / $images) * interval '1 second', d FROM (
        SELECT g, jsonb_build_object('_id', 'nekos_best.' || g, '_board', 'neko', '_site', 'nekos_best',
          '_kind', 'nekos_best', 'artist_name', 'artist ' || (g % 5000), 'artist_href', 'https://www.pixiv.net/users/' || g % 5000,
          'source_url', 'https://www.pixiv.net/artworks/' || (90000000 + g), 'url', 'https://nekos.best/api/v2/neko/' || md5(g::text) || '.png',
          '_crawled_at', 1761955260 + g, '_urls', jsonb_build_array('https://nekos.best/api/v2/neko/' || md5(g::text) || '.png'),
          '_img', bench_img(g + 100000000)) AS d
        FROM generate_series(1, $images) g) s"
    psql -c "VACUUM ANALYZE ${ex}_4chan_post" -c "VACUUM ANALYZE ${ex}_nekos_best_image"
}

# export_run LABEL EXCHANGE OUT: one export, timed; prints a row of the table
export_run() {
    local label=$1 ex=$2 out=$3 t0 t1 pg0 pg1 rss cpu rows bytes text
    pg0=$(pg_cpu)
    t0=$(now)
    /usr/bin/time -v -o "$WORK/time.txt" "$EXPORT" ndjson --pg "$IMGFEED_PG" --exchange "$ex" --out "$out" \
        --level "$LEVEL" --part-bytes "$PART_BYTES" --log-level warn >"$WORK/stats.json"
    t1=$(now)
    pg1=$(pg_cpu)
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/time.txt")
    rows=$(sed 's/.*"rows":\([0-9]*\).*/\1/' "$WORK/stats.json")
    bytes=$(sed 's/.*"bytes":\([0-9]*\).*/\1/' "$WORK/stats.json")
    text=$(sed 's/.*"text_bytes":\([0-9]*\).*/\1/' "$WORK/stats.json")
    awk -v l="$label" -v r="$rows" -v w="$(sub "$t1" "$t0")" -v c="$cpu" -v p="$(sub "$pg1" "$pg0")" -v m="$rss" \
        -v b="$bytes" -v t="$text" 'BEGIN {
        printf "%-22s %10d %8.2f %10.0f %8.2f %8.2f %8.0f %9.1f %6.1f\n", l, r, w, (w > 0 ? r / w : 0), c, p, m / 1024,
               b / 1048576, (b > 0 ? t / b : 0) }'
}

# dataset_run LABEL EXCHANGE OUT [ARGS...]: one `imgfeed-export dataset`, timed; a row of the table
dataset_run() {
    local label=$1 ex=$2 out=$3 t0 t1 pg0 pg1
    shift 3
    pg0=$(pg_cpu)
    t0=$(now)
    /usr/bin/time -v -o "$WORK/dtime.txt" "$EXPORT" dataset --pg "$IMGFEED_PG" --exchange "$ex" --out "$out" \
        --nsfw --log-level info "$@" 2>"$WORK/dataset.log" || { tail -5 "$WORK/dataset.log"; return 1; }
    t1=$(now)
    pg1=$(pg_cpu)
    "$PY" - "$out/summary.json" "$WORK/dtime.txt" "$WORK/dataset.log" "$label" "$(sub "$t1" "$t0")" \
        "$(sub "$pg1" "$pg0")" <<'PY'
import json, re, sys
summary, timef, logf, label, wall, pg = sys.argv[1:]
s = json.load(open(summary))
t = open(timef).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + \
      float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
m = re.search(r"catalog (\d+) bytes", open(logf).read())
images = s["counts"]["candidates"]
wall = float(wall)
print("%-24s %9d %9d %8.2f %9.0f %8.2f %8.2f %8.0f %9.1f" % (label, images, s["total"], wall,
      images / wall if wall > 0 else 0, cpu, float(pg), rss / 1024, int(m.group(1)) / 1048576 if m else 0))
PY
}

# savedir_fill EXCHANGE DIR: give every picture of EXCHANGE a real file in the save dir DIR (the
# hasher's layout): its bytes are "imgfeed bench picture <table> <id>\n", its sha1 and size go into
# the row (pgcrypto's digest) in place of the generated ones.
savedir_fill() {
    local ex=$1 dir=$2 t
    psql -q -c "CREATE EXTENSION IF NOT EXISTS pgcrypto"
    for t in $(psql -At -c "SELECT name FROM imgfeed_tables WHERE exchange = '$ex' ORDER BY 1"); do
        psql -q -c "UPDATE $t SET data = jsonb_set(jsonb_set(data, '{_img,0,sha1}', to_jsonb(encode(digest(c, 'sha1'),
            'hex'))), '{_img,0,size}', to_jsonb(octet_length(c))) FROM (SELECT id AS cid,
            'imgfeed bench picture $t ' || id || E'\\n' AS c FROM $t) f WHERE id = f.cid"
        psql -At -F ' ' -c "SELECT data->'_img'->0->>'sha1', '$t', id FROM $t" | "$PY" -c '
import os, sys
root = sys.argv[1]
for line in sys.stdin:
    sha1, table, ident = line.rstrip("\n").split(" ", 2)
    d = os.path.join(root, sha1[:2], sha1[2:4])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, sha1 + ".jpg"), "w") as f:
        f.write("imgfeed bench picture %s %s\n" % (table, ident))
' "$dir"
    done
}

bench_dataset() {
    # images/s of `imgfeed-export dataset` (every row, --nsfw: 4chan's /wg/ counts too) over the
    # same archives, with peak memory.  The generated rows' sha1s name no real file, so:
    #   "no files"   --missing list, no save dir: everything but the files (reading both passes,
    #                parsing, the catalog and the groups, the manifest), every picture listed
    #                missing -- the rate and memory at both sizes;
    #   "files"      the small archive after savedir_fill: every picture has its file in a save
    #                dir, checked (sha1) and hard-linked into the set; then a rerun that finds
    #                every file in place.
    echo "imgfeed-export dataset ($(nproc) cores; wall-clock figures need a quiet machine)"
    printf "%-24s %9s %9s %8s %9s %8s %8s %8s %9s\n" run images placed wall_s images/s cpu_s pg_cpu_s rss_MiB \
        catalog_MiB
    dataset_run "small ($SMALL), no files" bsmall "$WORK/ds-small" --missing list
    dataset_run "big ($N), no files" bbig "$WORK/ds-big" --missing list
    echo "filling a save dir with the small archive's $SMALL files ..."
    savedir_fill bsmall "$WORK/save"
    dataset_run "small, files linked" bsmall "$WORK/ds-small-files" --save-dir "$WORK/save"
    dataset_run "small, files again" bsmall "$WORK/ds-small-files" --save-dir "$WORK/save"
}

SMALL=$((N / 10))
echo "building the archives: $SMALL rows (bsmall), $N rows (bbig) ..."
t0=$(now)
make_archive bsmall "$SMALL"
make_archive bbig "$N"
echo "built in $(sub "$(now)" "$t0") s; table sizes: $(psql -c "SELECT string_agg(relname || ' ' ||
    pg_size_pretty(pg_total_relation_size(oid)), ', ' ORDER BY relname) FROM pg_class
    WHERE relname ~ '^b(small|big)_' AND relkind = 'r'")"
echo
echo "imgfeed-export ndjson, level $LEVEL, part-bytes $PART_BYTES ($(nproc) cores; wall-clock figures need a quiet machine)"
printf "%-22s %10s %8s %10s %8s %8s %8s %9s %6s\n" run rows wall_s rows/s cpu_s pg_cpu_s rss_MiB out_MiB ratio
export_run "small ($SMALL)" bsmall "$WORK/out-small"
export_run "small again" bsmall "$WORK/out-small"
export_run "big ($N)" bbig "$WORK/out-big"
export_run "big again" bbig "$WORK/out-big"
echo
echo "parts of the big export: $(find "$WORK/out-big" -name 'part-*.ndjson.zst' | wc -l) in $(find "$WORK/out-big" -name 'date=*' | wc -l) day folders"
echo
bench_dataset
