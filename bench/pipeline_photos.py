#!/usr/bin/python3
"""pipeline_photos.py -- the photo site of bench/pipeline.sh (PICTURES=photos).

Usage: pipeline_photos.py BASE SITE BOARDS ROOT SHA1_OUT CACHE [SOURCE_DIR]

Takes the generated boards of the fixture server at BASE (site SITE, boards
b1..bBOARDS: their threads.json and every thread's JSON, 4chan's fields and
text as the fixture writes them) and makes a static copy of the site under
ROOT for bench_media to serve, with a photo for every file:

  ROOT/site/<board>/threads.json        as the fixture serves it
  ROOT/site/<board>/thread/<no>.json    the thread, each file's "ext" now
                                        ".jpg" and its "md5", "fsize", "w"
                                        and "h" those of its photo
  ROOT/media/<board>/<tim>.jpg          the photo

and one line "<board>.<no> <sha1 hex>" per file in SHA1_OUT.

The photos are what boards serve: JPEGs of 0.3 to 2 megapixels, made from
Debian's wallpapers (package mate-backgrounds, /usr/share/backgrounds/mate,
as bench/make_corpus.py does), each a different crop at one of the sizes
of SIZES, baseline or (every fifth) progressive, quality 85 to 95, and each
with its own bytes and pixels (the crop moves by a pixel or more from one
photo to the next, and a small block carries the photo's number), so that
nothing downstream can take one for another.  Photo k is the same file in
every run (deterministic); it is kept in CACHE/<k>.jpg and made again only
when missing, so that only the first run pays for the encoding.
"""
import base64
import hashlib
import http.client
import io
import json
import os
import sys

from PIL import Image, ImageDraw

from make_corpus import sources  # the wallpapers, as the hasher bench finds them

# (width, height): 0.31 to 1.92 megapixels, landscape and portrait, weighted
# toward the middle, as a board's mix of screenshots, phone photos and art.
SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (768, 1024), (1280, 960), (1200, 1200),
         (1600, 900), (1024, 1280), (1600, 1200))
CACHE_VERSION = "1"
BASE_COVER = (1700, 1300)  # each source scaled once to cover this, the largest size with room to move


class Photos:
    """Photo k on demand, from the cache or made (and cached)."""

    def __init__(self, cache, source_dir):
        self.cache = os.path.join(cache, "v" + CACHE_VERSION)
        os.makedirs(self.cache, exist_ok=True)
        self.source_dir = source_dir
        self.srcs = None
        self.bases = {}  # source index -> the source, RGB, scaled to cover BASE_COVER

    def base(self, s):
        if self.srcs is None:
            self.srcs = sources(self.source_dir)
            if not self.srcs:
                sys.exit("pipeline_photos.py: no images under %s: apt-get install mate-backgrounds" %
                         self.source_dir)
        s %= len(self.srcs)
        if s not in self.bases:
            im = Image.open(self.srcs[s]).convert("RGB")
            scale = max(BASE_COVER[0] / im.width, BASE_COVER[1] / im.height)
            self.bases[s] = im.resize((max(BASE_COVER[0], round(im.width * scale)),
                                       max(BASE_COVER[1], round(im.height * scale))), Image.LANCZOS)
        return self.bases[s]

    def get(self, k):
        path = os.path.join(self.cache, "%d.jpg" % k)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            pass
        w, h = SIZES[(k * 7) % len(SIZES)]
        base = self.base(k)
        # A window of the photo's proportions, 60 to 100% of the largest
        # that fits, at an offset and a size that change with k.
        fit = min(base.width / w, base.height / h)
        f = fit * (0.6 + 0.4 * ((k * 37) % 101) / 100)
        cw, ch = max(1, round(w * f)), max(1, round(h * f))
        x = (k * 131) % (base.width - cw + 1)
        y = (k * 71) % (base.height - ch + 1)
        im = base.resize((w, h), Image.BICUBIC, box=(x, y, x + cw, y + ch))
        # The photo's number as a block of 32 cells, black or white, in a corner.
        draw = ImageDraw.Draw(im)
        for bit in range(32):
            c = 255 if (k >> bit) & 1 else 0
            cx = 4 + (bit % 8) * 4
            cy = 4 + (bit // 8) * 4
            draw.rectangle((cx, cy, cx + 3, cy + 3), fill=(c, c, c))
        tmp = path + ".tmp"
        im.save(tmp, "JPEG", quality=85 + k % 11, progressive=(k % 5 == 4))
        os.replace(tmp, path)
        with open(path, "rb") as f:
            return f.read()


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    base_url, site, boards, root, sha1_out, cache = sys.argv[1:7]
    source_dir = sys.argv[7] if len(sys.argv) > 7 else "/usr/share/backgrounds/mate"
    boards = int(boards)
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))

    def get(path):
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit("pipeline_photos.py: GET %s: %d" % (path, r.status))
        return body

    photos = Photos(cache, source_dir)
    k = 0
    with open(sha1_out, "w") as out:
        for b in range(1, boards + 1):
            board = "b%d" % b
            os.makedirs(os.path.join(root, "site", board, "thread"))
            os.makedirs(os.path.join(root, "media", board))
            listing = get("/%s/%s/threads.json" % (site, board))
            with open(os.path.join(root, "site", board, "threads.json"), "wb") as f:
                f.write(listing)
            for page in json.loads(listing):
                for th in page["threads"]:
                    no = th["no"]
                    thread = json.loads(get("/%s/%s/thread/%d.json" % (site, board, no)))
                    for p in thread["posts"]:
                        if "tim" not in p or p.get("ext") in (None, "deleted"):
                            continue
                        body = photos.get(k)
                        k += 1
                        with Image.open(io.BytesIO(body)) as im:
                            w, h = im.size
                        p["ext"] = ".jpg"
                        p["md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
                        p["fsize"] = len(body)
                        p["w"], p["h"] = w, h
                        with open(os.path.join(root, "media", board, "%s.jpg" % p["tim"]), "wb") as f:
                            f.write(body)
                        out.write("%s.%d %s\n" % (board, p["no"], hashlib.sha1(body).hexdigest()))
                    with open(os.path.join(root, "site", board, "thread", "%d.json" % no), "w") as f:
                        json.dump(thread, f, separators=(",", ":"))
    print(k)


if __name__ == "__main__":
    main()
