#!/usr/bin/env python3
"""test_fixture_boards.py -- the image boards of tests/support/fixture_server.py.

Starts the fixture server (with the same interpreter) and checks, with
urllib, what the crawler's tests rely on: sites and generated boards of both
kinds, the threads.json pages, thread JSON, pictures whose md5 is the post's,
Last-Modified and 304, changes between two crawls, faults, the recorded
boards served byte for byte, boards and image-API categories of given
pictures (?dir=), and the request counts.  A few seconds.

    python3 tests/test_fixture_boards.py           the checks
    python3 tests/test_fixture_boards.py --bench   also measure how many
        threads a second the server serves (100 boards x 150 threads x 50 posts)

Standard library only, any Python >= 3.9.  Exits non-zero on the first failure.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "support", "fixture_server.py")
FIXTURES = os.path.join(HERE, "fixtures", "real")
BASE = None
SERVER_PID = 0


def start():
    global BASE, SERVER_PID
    proc = subprocess.Popen([sys.executable, SERVER, "--fixtures", FIXTURES], stdout=subprocess.PIPE)
    SERVER_PID = proc.pid
    port = int(proc.stdout.readline())
    BASE = "http://127.0.0.1:%d" % port
    return proc


def get(path, headers=None):
    """(status, headers, body) of GET path."""
    req = urllib.request.Request(BASE + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def control(what):
    status, _, body = get("/_control/" + what)
    check(status == 200, "control %s: %d %s" % (what, status, body[:200]))
    return json.loads(body)


def get_json(path):
    status, headers, body = get(path)
    check(status == 200, "GET %s: %d" % (path, status))
    return headers, json.loads(body), body


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def png_size(body):
    check(body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR", "not a PNG")
    return struct.unpack(">II", body[16:24])


def httpdate_ts(value):
    import email.utils

    return email.utils.mktime_tz(email.utils.parsedate_tz(value))


def md5b64(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def files_of(post):
    """(tim, ext, md5, w, h, fsize) of a post's files, extra_files included."""
    out = []
    for f in [post] + list(post.get("extra_files") or []):
        if f.get("tim") not in (None, "") and f.get("ext") not in (None, "deleted"):
            out.append((str(f["tim"]), f["ext"], f["md5"], f["w"], f["h"], f["fsize"]))
    return out


# --- generated boards ---


def check_board(site, kind, board, nthreads, nposts, images):
    urls = control("chan/site?name=%s&kind=%s" % (site, kind))["urls"]
    made = control("chan/board?site=%s&board=%s&threads=%d&posts=%d&images=%d&seed=7"
                   % (site, board, nthreads, nposts, images))
    check(made["threads"] == nthreads and made["posts"] == nposts, "board answer %r" % made)
    headers, pages, raw = get_json("/%s/%s/threads.json" % (site, board))
    first = 1 if kind == "4chan" else 0
    check([p["page"] for p in pages] == list(range(first, first + (nthreads + 14) // 15)), "page numbers")
    check([len(p["threads"]) for p in pages] == [15] * (nthreads // 15) + ([nthreads % 15] if nthreads % 15 else []),
          "15 threads a page")
    if kind == "4chan":
        check(raw.startswith(b'[{"page":1,"threads":[{"no":'), "4chan page layout")
        check(all(set(t) == {"no", "last_modified", "replies"} for p in pages for t in p["threads"]), "4chan entries")
    else:
        check(raw.startswith(b'[{"threads":[{"no":') and b'"page":0}' in raw, "vichan page layout")
        check(all(set(t) == {"no", "last_modified"} for p in pages for t in p["threads"]), "vichan entries")
    entries = [t for p in pages for t in p["threads"]]
    check(httpdate_ts(headers["Last-Modified"]) == max(t["last_modified"] for t in entries), "board Last-Modified")
    check([t["last_modified"] for t in entries] == sorted((t["last_modified"] for t in entries), reverse=True),
          "threads by last bump")
    nfiles = 0
    seen_extra = False
    text = b""
    for entry in entries:
        path = urls["thread"].format(board=board, no=entry["no"])
        headers, thread, raw = get_json(path)
        text += raw
        posts = thread["posts"]
        check(len(posts) == nposts, "%s: %d posts" % (path, len(posts)))
        check(posts[0]["no"] == entry["no"] and posts[0]["resto"] == 0, "OP")
        check(all(p["resto"] == entry["no"] for p in posts[1:]), "resto")
        check([p["no"] for p in posts] == sorted(set(p["no"] for p in posts)), "post numbers increase")
        check([p["time"] for p in posts] == sorted(p["time"] for p in posts), "times increase")
        lm = max(p["time"] for p in posts)
        check(entry["last_modified"] == lm == httpdate_ts(headers["Last-Modified"]), "%s last_modified" % path)
        if kind == "4chan":
            check(entry["replies"] == nposts - 1 and posts[0]["replies"] == nposts - 1, "replies")
            check(all(re.match(r"\d\d/\d\d/\d\d\(\w\w\w\)\d\d:\d\d:\d\d\Z", p["now"]) for p in posts), "now")
            check(time.strftime("%m/%d/%y(%a)%H:%M:%S", time.gmtime(posts[0]["time"])) == posts[0]["now"], "now")
        else:
            check(posts[0]["last_modified"] == lm, "vichan OP last_modified")
        with_file = [p for p in posts if "tim" in p]
        if images:
            check("tim" in posts[0], "the OP has a file")
            check(abs(len(with_file) - 1 - (nposts - 1) * images / 10.0) <= 2, "%d of 10 posts with a file" % images)
        for p in with_file:
            if kind == "4chan":
                check(isinstance(p["tim"], int) and len(str(p["tim"])) == 13, "4chan tim %r" % p["tim"])
                check(p["tim"] // 1000 == p["time"], "tim in the post's second")
            else:
                check(re.match(r"\d{13}-\d\Z", p["tim"]) is not None, "vichan tim %r" % p["tim"])
            seen_extra = seen_extra or bool(p.get("extra_files"))
            for tim, ext, md5, w, h, fsize in files_of(p):
                url = urls["file"].format(board=board, tim=tim, ext=ext)
                status, fh, body = get(url)
                check(status == 200 and fh["Content-Type"] == "image/png", "GET %s: %d" % (url, status))
                check(int(fh["Content-Length"]) == len(body) == fsize, "%s size" % url)
                check(md5b64(body) == md5, "%s md5" % url)
                check(png_size(body) == (w, h), "%s dimensions" % url)
                nfiles += 1
    check(nfiles > 0 or not images, "files served")
    if kind == "4chan":
        check(b'class=\\"quotelink\\">&gt;&gt;' in text and b"<wbr>" in text and b"<br>" in text, "4chan com HTML")
        check(b"\\/" in text and b"\\u" in text, "4chan JSON escapes")
    else:
        check(b"highlightReply(" in text and b"<br/>" in text and b'rel=\\"nofollow\\"' in text, "vichan com HTML")
        check(seen_extra or images < 10, "vichan extra_files")
    return urls, entries, nfiles


def check_changes(site, kind, board, urls, entries, nposts):
    thread_url = lambda no: urls["thread"].format(board=board, no=no)  # noqa: E731
    listing = "/%s/%s/threads.json" % (site, board)
    # 304 for a matching If-Modified-Since, 200 for an older one
    victim = entries[-1]["no"]
    status, headers, _ = get(thread_url(victim))
    lm = headers["Last-Modified"]
    check(get(thread_url(victim), {"If-Modified-Since": lm})[0] == 304, "thread 304")
    older = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(httpdate_ts(lm) - 1))
    check(get(thread_url(victim), {"If-Modified-Since": older})[0] == 200, "thread 200 since before")
    board_lm = get(listing)[1]["Last-Modified"]
    check(get(listing, {"If-Modified-Since": board_lm})[0] == 304, "threads.json 304")
    # two changes in the same second: Last-Modified strictly increasing
    stamps = []
    for _ in range(2):
        changed = control("chan/thread?site=%s&board=%s&no=%d&add=2" % (site, board, victim))
        stamps.append(changed["last_modified"])
    check(stamps[0] > httpdate_ts(board_lm) and stamps[1] > stamps[0], "stamps %r after %s" % (stamps, board_lm))
    status, headers, body = get(thread_url(victim), {"If-Modified-Since": lm})
    check(status == 200 and httpdate_ts(headers["Last-Modified"]) == stamps[1], "changed thread 200")
    posts = json.loads(body)["posts"]
    check(len(posts) == nposts + 4 and posts[-1]["time"] == stamps[1], "added posts")
    check([p["no"] for p in posts] == sorted(set(p["no"] for p in posts)), "added numbers increase")
    status, headers, body = get(listing, {"If-Modified-Since": board_lm})
    check(status == 200 and httpdate_ts(headers["Last-Modified"]) == stamps[1], "changed threads.json 200")
    first = json.loads(body)[0]["threads"][0]
    check(first["no"] == victim and first["last_modified"] == stamps[1], "bumped to the top: %r" % first)
    # a deleted file: gone from the post, 404 at its URL
    post = next(p for p in posts[1:] if "tim" in p)
    file_url = urls["file"].format(board=board, tim=post["tim"], ext=post["ext"])
    check(get(file_url)[0] == 200, "file before deletion")
    control("chan/thread?site=%s&board=%s&no=%d&filedeleted=%d" % (site, board, victim, post["no"]))
    after = next(p for p in get_json(thread_url(victim))[1]["posts"] if p["no"] == post["no"])
    if kind == "4chan":
        check(after.get("filedeleted") == 1 and "tim" not in after and "ext" not in after, "4chan filedeleted")
    else:
        check(after["ext"] == "deleted" and after["tim"] == "", "vichan deleted file")
    check(get(file_url)[0] == 404, "deleted file 404")
    # sticky: first in threads.json
    other = entries[3]["no"]
    control("chan/thread?site=%s&board=%s&no=%d&sticky=1" % (site, board, other))
    check(json.loads(get(listing)[2])[0]["threads"][0]["no"] == other, "sticky first")
    check(get_json(thread_url(other))[1]["posts"][0]["sticky"] == 1, "sticky OP")
    # deleted: 404 and gone from threads.json
    gone = entries[5]["no"]
    control("chan/thread?site=%s&board=%s&no=%d&delete=1" % (site, board, gone))
    check(get(thread_url(gone))[0] == 404, "deleted thread 404")
    listed = [t["no"] for p in json.loads(get(listing)[2]) for t in p["threads"]]
    check(gone not in listed and len(listed) == len(entries) - 1, "deleted thread unlisted")


def check_faults(site, board, urls, entries):
    path = urls["thread"].format(board=board, no=entries[0]["no"])
    good = get(path)[2]
    control("chan/fault?site=%s&path=%s&status=404&count=1" % (site, path))
    check(get(path)[0] == 404 and get(path)[0] == 200, "404 once")
    control("chan/fault?site=%s&path=/%s/&status=429&retry_after=7&count=2" % (site, board))
    for _ in range(2):
        status, headers, _ = get(path)
        check(status == 429 and headers["Retry-After"] == "7", "429 with Retry-After")
    check(get(path)[0] == 200, "after two 429")
    control("chan/fault?site=%s&status=500" % site)
    check(get(path)[0] == 500 and get("/%s/%s/threads.json" % (site, board))[0] == 500, "500 until cleared")
    control("chan/fault?site=%s&clear=1" % site)
    check(get(path)[0] == 200, "cleared")
    control("chan/fault?site=%s&path=%s&delay=0.3&count=1" % (site, path))
    t = time.monotonic()
    status, _, body = get(path)
    check(status == 200 and body == good and time.monotonic() - t >= 0.3, "delayed")
    lm = get(path)[1]["Last-Modified"]
    control("chan/fault?site=%s&path=%s&broken=1&count=1" % (site, path))
    status, headers, body = get(path, {"If-Modified-Since": lm})  # broken answers 200 all the same
    check(status == 200 and good.startswith(body) and 0 < len(body) < len(good), "broken body")
    try:
        json.loads(body)
        check(False, "broken JSON parsed")
    except ValueError:
        pass
    check(get(path)[2] == good, "whole again")
    faults = control("chan/info?site=%s" % site)["faults"]
    check(faults == [], "no faults left: %r" % faults)


# --- recorded boards ---


def check_recorded():
    control("chan/recorded?site=rec")
    for board, names in (("g", ["g-thread-41704783.json", "g-thread-41703336-webm-gif.json",
                                "g-thread-41693287-filedeleted.json", "g-thread-39894014-sticky.json"]),
                         ("v", ["v-thread-393603295.json"])):
        headers, pages, _ = get_json("/rec/%s/threads.json" % board)
        entries = {t["no"]: t for p in pages for t in p["threads"]}
        check(pages[0]["page"] == 1, "recorded 4chan page 1")
        for name in names:
            with open(os.path.join(FIXTURES, "4chan", name), "rb") as f:
                recorded = f.read()
            posts = json.loads(recorded)["posts"]
            no = posts[0]["no"]
            check(entries.pop(no)["last_modified"] == max(p["time"] for p in posts), "%s last_modified" % name)
            status, th, body = get("/rec/%s/thread/%d.json" % (board, no))
            check(status == 200 and body == recorded, "%s byte for byte" % name)
            check(get("/rec/%s/thread/%d.json" % (board, no), {"If-Modified-Since": th["Last-Modified"]})[0] == 304,
                  "recorded 304")
            p = next(p for p in posts if "tim" in p)
            status, fh, body = get("/rec/media/%s/%d%s" % (board, p["tim"], p["ext"]))
            check(status == 200 and png_size(body) and fh["Content-Type"] == "image/png", "recorded picture")
        check(entries == {}, "exactly the recorded threads")
    check(json.loads(get("/rec/g/threads.json")[2])[0]["threads"][0]["no"] == 39894014, "the sticky first")
    # the vichan site: lainchan /λ/ as /lambda/
    control("chan/recorded?site=lain&kind=vichan")
    with open(os.path.join(FIXTURES, "vichan", "lainchan-lambda-threads.json"), "rb") as f:
        listing = f.read()
    with open(os.path.join(FIXTURES, "vichan", "lainchan-lambda-thread-30364.json"), "rb") as f:
        thread = f.read()
    status, headers, body = get("/lain/lambda/threads.json")
    check(status == 200 and body == listing, "lainchan threads.json byte for byte")
    entries = [t for p in json.loads(listing) for t in p["threads"]]
    check(httpdate_ts(headers["Last-Modified"]) == max(t["last_modified"] for t in entries), "lainchan Last-Modified")
    check(get("/lain/lambda/res/30364.json")[2] == thread, "lainchan thread byte for byte")
    check(get("/lain/lambda/res/42742.json")[0] == 404, "a listed thread we do not have: 404")
    status, _, body = get("/lain/lambda/src/1646887159530-0.png")
    check(status == 200 and png_size(body), "lainchan picture")
    # a change re-renders: the new posts, the thread bumped below the stickies
    changed = control("chan/thread?site=lain&board=lambda&no=30364&add=1")
    posts = get_json("/lain/lambda/res/30364.json")[1]["posts"]
    check(len(posts) == 14 and posts[-1]["no"] > 44897 and posts[0]["last_modified"] == changed["last_modified"],
          "lainchan thread changed")
    order = [t["no"] for p in json.loads(get("/lain/lambda/threads.json")[2]) for t in p["threads"]]
    check(order[:4] == [42742, 43852, 1, 30364] and len(order) == len(entries), "lainchan listing changed")


def check_log_and_counts(site, expected_min):
    log = control("log?prefix=/%s/" % site)["entries"]
    counts = control("counts?prefix=/%s/" % site)["counts"]
    chan = control("chan/counts?site=%s" % site)
    check(sum(counts.values()) == len(log) >= expected_min, "counts %d, log %d" % (sum(counts.values()), len(log)))
    check(chan["counts"] == counts, "chan counts %r != %r" % (chan["counts"], counts))
    check(all(e["status"] is not None for e in log), "statuses logged")
    check(any(e["status"] == 304 and "If-Modified-Since" in e["headers"] for e in log), "If-Modified-Since logged")
    check(any(e.get("fault", {}).get("status") == 429 for e in log), "faults logged")
    check(sum(chan["by_status"].values()) == len(log) and chan["by_status"].get("304"), "by_status")


def tiny_png(w, h, shade):
    """A gray PNG of w x h, made here with zlib (not by the server)."""
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes([shade]) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tiny_jpeg(w, h):
    """The start of a JPEG (SOI, APP0, SOF0): enough for the server to read its size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def check_given():
    """Boards and categories of given pictures (?dir=): the files byte for
    byte with their real sizes and md5; asked again, only new files are new."""
    import tempfile
    from urllib.parse import quote

    with tempfile.TemporaryDirectory() as d:
        files = {"a1.png": tiny_png(30, 20, 10), "a2.jpg": tiny_jpeg(640, 480), "a3.png": tiny_png(7, 9, 200)}
        for name, body in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(body)
        for site, kind in (("gfc", "4chan"), ("gvc", "vichan")):
            control("chan/site?name=%s&kind=%s" % (site, kind))
            out = control("chan/board?site=%s&board=g&dir=%s&per_thread=2" % (site, quote(d)))
            check(sorted(out["posted"]) == sorted(files) and len(out["added"]) == 3, "%s: posted %r" % (kind, out))
            check(out["threads"] == 2, "%s: 3 files, 2 a thread: %d threads" % (kind, out["threads"]))
            lm = out["last_modified"]
            seen = {}
            for a in out["added"]:
                th = "thread" if kind == "4chan" else "res"
                _, body, _ = get_json("/%s/g/%s/%d.json" % (site, th, a["thread"]))
                post = [p for p in body["posts"] if p["no"] == a["no"]][0]
                status, headers, data = get(a["path"])
                want = files[a["file"]]
                check(status == 200 and data == want, "%s: %s served as given" % (kind, a["file"]))
                check(post["md5"] == md5b64(want) and post["fsize"] == len(want), "%s: md5 and fsize" % kind)
                check(str(post["tim"]) == a["tim"] and post["ext"] == "." + a["file"].split(".")[1], "tim, ext")
                wh = (640, 480) if a["file"].endswith(".jpg") else png_size(want)
                check((post["w"], post["h"]) == tuple(wh), "%s: %s is %dx%d" % (kind, a["file"], post["w"], post["h"]))
                seen[a["file"]] = a["no"]
            with open(os.path.join(d, "b1.png"), "wb") as f:
                f.write(tiny_png(5, 5, 99))
            again = control("chan/board?site=%s&board=g&dir=%s" % (site, quote(d)))
            check([a["file"] for a in again["added"]] == ["b1.png"], "%s: only the new file is new" % kind)
            check({f: v["no"] for f, v in again["posted"].items() if f in seen} == seen, "%s: old posts kept" % kind)
            check(again["last_modified"] > lm and again["threads"] == 3, "%s: a new thread, later" % kind)
            os.unlink(os.path.join(d, "b1.png"))
        check(get("/_control/chan/board?site=gfc&board=h&dir=relative/path")[0] == 400, "dir must be absolute")
        control("imgapi/site?name=gapi&kind=nekos_best")
        cat = "a cat \u00fc"
        out = control("imgapi/cat?site=gapi&cat=%s&dir=%s" % (quote(cat), quote(d)))
        check(out["files"] == sorted(files), "imgapi: the pool is the folder, sorted")
        _, body, _ = get_json("/imgapi/gapi/%s?amount=2" % quote(cat))
        check([e["url"].rsplit("/", 1)[1] for e in body["results"]] == ["a1.png", "a2.jpg"], "the first 2")
        check(body["results"][1]["dimensions"] == {"width": 640, "height": 480}, "real dimensions")
        _, body, _ = get_json("/imgapi/gapi/%s?amount=2" % quote(cat))
        check([e["url"].rsplit("/", 1)[1] for e in body["results"]] == ["a3.png", "a1.png"], "then the next 2")
        for name, want in files.items():
            status, _, data = get("/imgapi/gapi/i/" + name)
            check(status == 200 and data == want, "imgapi: %s served as given" % name)
        check(get("/_control/imgapi/cat?site=gapi&cat=x.y&dir=%s" % quote(d))[0] == 400, "no dots in a category")
        control("imgapi/site?name=gim&kind=waifu_im")
        check(get("/_control/imgapi/cat?site=gim&cat=x&dir=%s" % quote(d))[0] == 400, "waifu_im names are ids")


def check_names():
    check(get("/_control/chan/site?name=status&kind=4chan")[0] == 400, "a site may not hide /status/")
    check(get("/_control/chan/site?name=Bad.Name")[0] == 400, "site names are [a-z0-9_-]+")
    check(get("/_control/chan/site?name=x&kind=lynxchan")[0] == 400, "unknown kind")
    check(get("/_control/chan/board?site=nosuch&board=g")[0] == 400, "unknown site")
    check(get("/nosuch/g/threads.json")[0] == 404, "unknown site 404")
    check(get("/status/404")[0] == 404 and get("/ok")[0] == 200, "the other routes still answer")


def main():
    proc = start()
    try:
        t = time.monotonic()
        check_names()
        for site, kind, images in (("fc", "4chan", 3), ("vc", "vichan", 10)):
            urls, entries, nfiles = check_board(site, kind, "g", 20, 7, images)
            check_changes(site, kind, "g", urls, entries, 7)
            check_faults(site, "g", urls, entries)
            check_log_and_counts(site, len(entries) + nfiles)
            print("ok %s: %d threads, %d files" % (kind, len(entries), nfiles))
        check_recorded()
        print("ok recorded 4chan and vichan")
        check_given()
        print("ok boards and categories of given pictures")
        print("all good in %.1f s" % (time.monotonic() - t))
        if "--bench" in sys.argv:
            bench()
    finally:
        proc.terminate()
        proc.wait()


# --- throughput ---


def fetch_all(port, paths, out):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    size = 0
    for p in paths:
        conn.request("GET", p)
        r = conn.getresponse()
        size += len(r.read())
        if r.status != 200:
            raise AssertionError("GET %s: %d" % (p, r.status))
    conn.close()
    out.append(size)


def cpu_seconds(pid):
    """User + system CPU time of process pid (Linux), or 0."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def timed(port, paths, clients):
    """(requests a second, MB a second, server CPU microseconds a request)."""
    chunks = [paths[i::clients] for i in range(clients)]
    out = []
    threads = [threading.Thread(target=fetch_all, args=(port, c, out)) for c in chunks]
    cpu = cpu_seconds(SERVER_PID)
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.monotonic() - t
    return len(paths) / dt, sum(out) / dt / 1e6, (cpu_seconds(SERVER_PID) - cpu) / len(paths) * 1e6


def bench():
    port = int(BASE.rsplit(":", 1)[1])
    t = time.monotonic()
    control("chan/site?name=bench&kind=4chan")
    for b in range(100):
        control("chan/board?site=bench&board=b%d&threads=150&posts=50" % b)
    print("bench: 100 boards x 150 threads x 50 posts made in %.2f s" % (time.monotonic() - t))
    paths = []
    for b in range(100):
        pages = json.loads(get("/bench/b%d/threads.json" % b)[2])
        paths += ["/bench/b%d/thread/%d.json" % (b, t["no"]) for p in pages for t in p["threads"]]
    first, second = paths[:4000], paths[4000:8000]
    runs = [("1 client, threads never served before", first, 1),
            ("1 client, the same threads again (cached)", first, 1),
            ("4 clients, threads never served before", second, 4)]
    for what, batch, clients in runs:
        rate, mb, cpu = timed(port, batch, clients)
        print("bench: %s: %.0f threads/s (%.1f MB/s), server CPU %.0f us a thread" % (what, rate, mb, cpu))
    files = []
    for p in first[:300]:
        for post in json.loads(get(p)[2])["posts"]:
            if "tim" in post:
                files.append("/bench/media/%s/%d%s" % (p.split("/")[2], post["tim"], post["ext"]))
    rate, mb, cpu = timed(port, files, 1)
    print("bench: 1 client, %d pictures: %.0f files/s, server CPU %.0f us a file" % (len(files), rate, cpu))
    t = time.monotonic()
    for b in range(100, 110):
        control("chan/board?site=bench&board=b%d&threads=150&posts=50&prerender=1" % b)
    print("bench: prerender=1: %.2f ms a thread" % ((time.monotonic() - t) / 1500 * 1000))
    try:
        with open("/proc/%d/status" % SERVER_PID) as f:
            rss = [line.split()[1] for line in f if line.startswith("VmRSS:")][0]
        print("bench: server RSS %d MB" % (int(rss) // 1024))
    except (OSError, IndexError):
        pass

if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL: %s" % e)
        sys.exit(1)
