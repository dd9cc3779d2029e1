#!/usr/bin/env python3
"""fixture_server.py -- a local HTTP server that plays the sites in the tests.

Standard library only (Python >= 3.9).  Binds 127.0.0.1 (or --host) on a free port,
prints the port on a line of stdout (and writes it to --port-file when
given), then serves HTTP/1.1 with keep-alive until killed.  It exits by itself
when the process that started it goes away.

Routes live in one table, ROUTES: (method, regular expression on the path,
handler).  A handler receives the request handler, the match and the parsed
query, and answers with req.reply(...) or writes the response itself.  To
serve a new kind of site, write a handler and add a line to the table.

Every request except /_control/* is logged with its arrival time, path,
headers and connection, and counted per wall-clock second.  The control API:

  GET /_control/log[?prefix=/p]     {"entries": [{"t", "mono", "method", "path", "route",
                                      "headers", "conn", "status", ...}]}; an image-board
                                    request that a fault answered also has "fault":
                                    {"status", "retry_after", "delay", "broken"}
  GET /_control/counts[?prefix=/p]  {"counts": {"<unix second>": n, ...}}
  GET /_control/bytes?key=k         {"key", "done", "bytes"} of a /endless or /huge stream
  GET /_control/reset               forget the log, counters and byte counts (the
                                    image boards' counters too, not their sites)
  GET /_control/ping                {"ok": true}

Image boards (see "Image boards" below) are driven by /_control/chan/*.  A
bad argument answers 400 with the reason.

  GET /_control/chan/site?name=S[&kind=4chan|vichan]
                                    a new empty site S (4chan by default), replacing any
                                    site of that name.  S is [a-z0-9_-]+ and not the first
                                    segment of another route (ok, status, files...).
                                    {"site", "kind", "boards", "urls": {"threads", "thread",
                                    "file"}} (URL templates with {board}, {no}, {tim}{ext})
  GET /_control/chan/board?site=S&board=B[&threads=T][&posts=P][&images=K][&seed=N]
                           [&prerender=1]
                                    a generated board B ([A-Za-z0-9_-]+, not "media")
                                    of T threads (10) of P posts (10) each, the OP
                                    included, deterministic from N (1) but for the times:
                                    posts a few seconds apart, threads one after the
                                    other, all ending a minute or so before the request.
                                    The OP has a file, then K (3) of every 10 posts.
                                    Thread bodies are rendered on first request (about
                                    0.4 ms for 50 posts) and cached (--chan-cache-mb);
                                    prerender=1 renders them all now, for benchmarks.
                                    {"site", "board", "threads", "posts", "images",
                                    "first_no", "last_modified", "pages",
                                    "prerender_seconds"}
  GET /_control/chan/board?site=S&board=B&dir=/abs/path[&per_thread=P]
                                    a board of given pictures: the files of that folder
                                    (sorted by name; names [A-Za-z0-9_.-]), one a post,
                                    P (5) posts a thread, served byte for byte (thumbnail
                                    URLs too) with their real w, h, md5, fsize and ext;
                                    post times end at the request.  Asked again for the
                                    same board, the files not posted yet become new
                                    threads (the board's Last-Modified moves on), the
                                    others keep their posts.  {"site", "board", "threads",
                                    "last_modified", "added": [{"file", "no", "thread",
                                    "tim", "ext", "path"}], "posted": {file: {"no", "tim"}}}
  GET /_control/chan/recorded?site=S[&kind=4chan|vichan]
                                    a site of the recorded responses of --fixtures.  4chan:
                                    board g serves the four g-thread-*.json and board v
                                    v-thread-393603295.json byte for byte, with a generated
                                    threads.json listing exactly those (last_modified: the
                                    latest post time).  vichan: board lambda (lainchan's /λ/)
                                    serves lainchan-lambda-threads.json byte for byte, thread
                                    30364 from lainchan-lambda-thread-30364.json, and 404
                                    for the other threads it lists.  Pictures: any tim.
                                    Answers like /_control/chan/site.
  GET /_control/chan/thread?site=S&board=B&no=N[&add=K][&delete=1][&filedeleted=NO]
                           [&sticky=0|1][&closed=0|1]
                                    one change of thread N: K new posts (they bump it), or
                                    gone (404, out of threads.json), or the file of post NO
                                    deleted (4chan: "filedeleted": 1 without file fields;
                                    vichan: "ext": "deleted", "tim": ""; its URL 404), or a
                                    sticky (listed first), or closed.  The change takes a
                                    stamp from the board's clock, max(now, last stamp + 1):
                                    the thread's last_modified and Last-Modified, the
                                    board's Last-Modified.  A changed recorded thread is
                                    served re-serialised.  {"no", "posts", "added": [nos],
                                    "deleted", "last_modified", "board_last_modified",
                                    "version"}
  GET /_control/chan/fault?site=S[&path=P][&status=CODE][&retry_after=S][&delay=S]
                          [&broken=1][&count=N]
                                    the next N requests (all until cleared without count=)
                                    of site S whose path starts with P (the site's whole
                                    path, /S/g/thread/1.json; a P not under /S/ is taken
                                    under it; default /S/) wait delay= seconds, then answer
                                    CODE ("status CODE" text, with Retry-After: S when
                                    given), or 200 with the first half of the real body
                                    (broken=1, Last-Modified kept, If-Modified-Since
                                    ignored), or normally.  The newest matching fault
                                    wins.  {"site", "faults": [{"path", "status", "count",
                                    "retry_after", "delay", "broken", "hits"}]}
  GET /_control/chan/fault?site=S&clear=1[&path=P][&release=1]
                                    forget the site's faults (those of exactly path P);
                                    release=1: the requests they hold answer now
  GET /_control/chan/info?site=S[&board=B[&no=N]]
                                    the site (boards, faults), a board's threads ({"no",
                                    "posts", "last_modified", "sticky", "closed", "deleted",
                                    "recorded", "listed_only", "version"}), or one thread
                                    ({"post_nos", "files": [{"no", "tim", "ext", "md5",
                                    "path"}], ...})
  GET /_control/chan/counts?site=S  {"counts": {"<unix second>": n}, "by_route": {"threads",
                                    "thread", "file", "other"}, "by_status": {"200": n, ...}}
                                    of the site's requests, kept apart from the log (which
                                    stops at 100000 entries)

Resources:
  /ok                               200 "ok\\n"
  GET|POST /echo[?header=V]         {"method", "headers", "body"} of the request, with a
                                    response header X-Echo: V when asked
  /bytes?n=N                        200 with N bytes
  /cond                             Last-Modified and ETag; 304 to a matching
                                    If-None-Match or If-Modified-Since
  /status/CODE[?key=k&fail=N&retry_after=S&retry_after_date=S]
                                    CODE for the first N requests of key (all of
                                    them without fail=), then 200 "ok\\n"; with
                                    Retry-After: S seconds, or an HTTP date S
                                    seconds after the current whole second
                                    (logged as "retry_at", UNIX seconds)
  /endless?key=k                    chunked body that never ends; bytes sent are
                                    recorded under key when the client hangs up
  /huge?key=k                       Content-Length: 1000000000, streamed likewise
  /slow?delay=S                     sleeps S seconds, then 200 "slow\\n"
  /redirect?to=T[&code=C][&abs=1]   C (302) to T as given, or made absolute
  /chain/N                          /chain/N -> chain/N-1 (relative) ... /chain/0: 200
  /loop/a, /loop/b                  redirect to each other forever
  /files/NAME                       200 with the bytes of file NAME of --files DIR (the type from
                                    its extension), 404 if none

/slow, /huge, /endless, /redirect and /status/CODE also answer with a file name
appended (/slow/x.jpg, /status/404/a.png): the hasher downloads only URLs whose
path ends in a picture or video extension.

Image boards: a site is the first segment of the path, made by a control request.
  kind 4chan:
  /S/B/threads.json                 [{"page": 1, "threads": [{"no", "last_modified",
                                    "replies"}, ...]}, {"page": 2, ...}], 15 threads a
                                    page, stickies first, then the last bumped first
  /S/B/thread/NO.json               {"posts": [OP, replies...]}: 4chan's fields (tim a
                                    13-digit integer, md5 base64, now, com in 4chan's
                                    HTML: <br>, quotelinks, <wbr>; JSON with \\/ and \\uXXXX)
  /S/media/B/TIM.EXT                the picture of TIM (TIMs.EXT: its thumbnail)
  kind vichan:
  /S/B/threads.json                 [{"threads": [{"no", "last_modified"}, ...], "page": 0},
                                    ...], as lainchan's (no "replies")
  /S/B/res/NO.json                  {"posts": [...]}: vichan's fields (tim "1646887159530-0",
                                    extra_files, per-post last_modified, UTF-8 JSON)
  /S/B/src/TIM.EXT                  the picture of TIM (/S/B/thumb/TIM.EXT: its thumbnail)
threads.json and thread bodies carry Last-Modified (the board's last change; the
thread's, equal to its last_modified in threads.json) and answer 304 to an
If-Modified-Since at or after it.  Pictures are PNGs whatever EXT, a function
of (board, tim) only, so their md5 is the post's; Last-Modified is the tim's
second.  Unknown sites, boards and threads, deleted threads and files: 404.
"""

import argparse
import base64
import collections
import email.utils
import functools
import hashlib
import json
import mimetypes
import os
import re
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class State:
    """Everything the control API reports, under one lock."""

    LOG_MAX = 100000

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.log = []
        self.counts = {}  # unix second -> requests
        self.failures = {}  # (route, key) -> requests seen
        self.streams = {}  # key -> {"done": bool, "bytes": n}

    def record(self, entry):
        with self.lock:
            if len(self.log) < self.LOG_MAX:
                self.log.append(entry)
            second = int(entry["t"])
            self.counts[second] = self.counts.get(second, 0) + 1

    def next_count(self, route, key):
        """How many requests (route, key) had before this one."""
        with self.lock:
            seen = self.failures.get((route, key), 0)
            self.failures[(route, key)] = seen + 1
            return seen


STATE = State()
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_TS = email.utils.parsedate_to_datetime(LAST_MODIFIED).timestamp()
ETAG = '"v1-abc"'
STREAM_CHUNK = b"x" * 65536
# <repo>/tests/fixtures/real: the recorded responses of real sites (SOURCES.md there)
DEFAULT_FIXTURES = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "real"))


def arg(query, name, default=None):
    values = query.get(name)
    return values[0] if values else default


# --- what the plugins (fixture_<kind>.py) share ---


class ControlError(Exception):
    """A bad control request: answered 400 with the message."""


def control_number(query, name, default, low, high):
    """Integer argument NAME of a control request, from LOW to HIGH; DEFAULT when absent or empty."""
    v = arg(query, name)
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise ControlError("%s must be an integer" % name)
    if not low <= n <= high:
        raise ControlError("%s must be from %d to %d" % (name, low, high))
    return n


def control_need(table, query, key, what):
    """table[argument KEY], or a ControlError naming WHAT."""
    v = table.get(arg(query, key) or "")
    if v is None:
        raise ControlError("no %s %r" % (what, arg(query, key)))
    return v


def control_route(lock):
    """Decorator making fn(req, query) -> JSON-able a route: run under LOCK,
    answered as JSON, or 400 with the reason of a ControlError."""
    def wrap(fn):
        def handler(req, match, query):
            try:
                with lock:
                    out = fn(req, query)
            except ControlError as e:
                req.reply(400, (str(e) + "\n").encode())
                return
            req.reply_json(out)

        handler.__name__ = fn.__name__
        return handler
    return wrap


def take_fault(faults, name, entry):
    """The fault set for NAME (else the site-wide one, key None), one of its
    count used up; noted in the request log ENTRY.  None when there is none."""
    key = name if name in faults else None
    fault = faults.get(key)
    if fault:
        if fault["count"] is not None:
            fault["count"] -= 1
            if fault["count"] <= 0:
                del faults[key]
        entry["fault"] = {k: fault[k] for k in ("status", "retry_after", "body") if fault[k]}
    return fault


def status_fault(fault, headers):
    """(code, body, content type) of a status fault ("status CODE", with
    Retry-After in HEADERS when set), or None when FAULT sets no status."""
    if not fault or not fault["status"]:
        return None
    if fault["retry_after"] is not None:
        headers["Retry-After"] = str(fault["retry_after"])
    return fault["status"], ("status %d\n" % fault["status"]).encode(), "text/plain"

def image_size(data):
    """(width, height) of PNG, GIF or JPEG bytes; (0, 0) when it is none of them."""
    if data[:8] == PNG_SIG and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 2 if marker != 0xFF else 1
                continue
            seglen = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + seglen
    return 0, 0


GIVEN_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\Z")


def given_files(folder):
    """[(name, path)] of the regular files of FOLDER (an absolute path), sorted by name:
    a pool of given pictures.  Raises ControlError when it cannot be one."""
    if not folder or not os.path.isabs(folder):
        raise ControlError("dir must be an absolute path")
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise ControlError("cannot list %s: %s" % (folder, e.strerror))
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if not GIVEN_NAME_RE.match(name) or ".." in name:
            raise ControlError("file name %r in %s is not [A-Za-z0-9_.-]" % (name, folder))
        out.append((name, path))
    return out


def given_read(path):
    """(bytes, width, height, content type) of a given picture file; None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    w, h = image_size(data)
    return data, w, h, mimetypes.guess_type(path)[0] or "application/octet-stream"


def host_base(req):
    """http://<the Host the request named>: URLs as the client reached us."""
    return "http://" + (req.headers.get("Host") or "127.0.0.1")


def reply_png(req, sites, lock, name, key, not_found=b"not found\n", ctype="text/plain"):
    """The generated picture png_make(KEY) of site NAME, 404 when SITES has no NAME."""
    with lock:
        if name not in sites:
            req.reply(404, not_found, ctype)
            return
    with CHAN.lock:
        body, _, _ = png_make(key)
    req.reply(200, body, "image/png")


# --- resources ---


def route_ok(req, match, query):
    req.reply(200, b"ok\n")


def route_echo(req, match, query):
    """What the request was: its method, headers and body, as JSON, with the
    header X-Echo: <value of ?header=> when asked (for clients that keep
    response headers)."""
    body = getattr(req, "body", b"")
    extra = {"X-Echo": query["header"][0]} if "header" in query else None
    out = json.dumps({"method": req.command, "headers": {k: v for k, v in req.headers.items()},
                      "body": body.decode("latin-1")}).encode()
    req.reply(200, out, "application/json", extra)


def route_bytes(req, match, query):
    req.reply(200, b"b" * int(arg(query, "n", "0")), "application/octet-stream")


def route_cond(req, match, query):
    headers = {"Last-Modified": LAST_MODIFIED, "ETag": ETAG}
    inm = req.headers.get("If-None-Match")
    ims = req.headers.get("If-Modified-Since")
    fresh = False
    if inm is not None:
        fresh = ETAG in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    elif ims is not None:
        try:
            fresh = email.utils.parsedate_to_datetime(ims).timestamp() >= LAST_MODIFIED_TS
        except (TypeError, ValueError):
            fresh = False
    if fresh:
        req.reply(304, b"", headers=headers)
    else:
        req.reply(200, b'{"fresh": true}\n', "application/json", headers)


def route_status(req, match, query):
    code = int(match.group(1))
    key = arg(query, "key", "")
    fail = arg(query, "fail")
    if fail is not None and STATE.next_count("status", key) >= int(fail):
        req.reply(200, b"ok\n")
        return
    headers = {}
    if arg(query, "retry_after") is not None:
        headers["Retry-After"] = arg(query, "retry_after")
    if arg(query, "retry_after_date") is not None:
        retry_at = int(time.time()) + int(arg(query, "retry_after_date"))
        headers["Retry-After"] = email.utils.formatdate(retry_at, usegmt=True)
        req.entry["retry_at"] = retry_at
    req.reply(code, ("status %d\n" % code).encode(), headers=headers)


def stream(req, key, chunked, limit=None):
    """Write body bytes until the client hangs up (or limit); record the count."""
    sent = 0
    with STATE.lock:
        STATE.streams[key] = {"done": False, "bytes": 0}
    try:
        while limit is None or sent < limit:
            chunk = STREAM_CHUNK if limit is None else STREAM_CHUNK[: min(len(STREAM_CHUNK), limit - sent)]
            if chunked:
                req.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                req.wfile.write(chunk)
            sent += len(chunk)
            with STATE.lock:
                STATE.streams[key]["bytes"] = sent
    except OSError:
        pass
    finally:
        req.close_connection = True
        with STATE.lock:
            STATE.streams[key] = {"done": True, "bytes": sent}


def route_endless(req, match, query):
    req.begin(200, "application/octet-stream", {"Transfer-Encoding": "chunked"})
    stream(req, arg(query, "key", ""), chunked=True)


def route_huge(req, match, query):
    size = 1000000000
    req.begin(200, "application/octet-stream", {"Content-Length": str(size)})
    stream(req, arg(query, "key", ""), chunked=False, limit=size)


def route_slow(req, match, query):
    time.sleep(float(arg(query, "delay", "5")))
    req.reply(200, b"slow\n")


def route_redirect(req, match, query):
    target = arg(query, "to", "/ok")
    if arg(query, "abs") == "1" and target.startswith("/"):
        target = "http://%s:%d%s" % (req.server.server_address[0], req.server.server_address[1], target)
    req.reply(int(arg(query, "code", "302")), b"", headers={"Location": target})


def route_chain(req, match, query):
    n = int(match.group(1))
    if n == 0:
        req.reply(200, b"end of chain\n")
    else:
        req.reply(302, b"", headers={"Location": "%d" % (n - 1)})


def route_file(req, match, query):
    name = match.group(1)
    root = req.server.files_dir
    if root is None or any(part in ("", ".", "..") for part in name.split("/")):
        req.reply(404, b"not found\n")
        return
    try:
        with open(os.path.join(root, name), "rb") as f:
            body = f.read()
    except OSError:
        req.reply(404, b"not found\n")
        return
    req.reply(200, body, mimetypes.guess_type(name)[0] or "application/octet-stream")


def route_loop(req, match, query):
    req.reply(302, b"", headers={"Location": "/loop/" + ("b" if match.group(1) == "a" else "a")})


# --- image boards (4chan, vichan) ---
#
# A site is a ChanSite of one kind; its boards are generated (threads of
# posts computed from the board's seed, rendered on request and cached by
# (board, thread, version)) or recorded (the files of --fixtures, served byte
# for byte until a control request changes them).  Every change takes a
# stamp from the board's clock, max(now, last stamp + 1), so a changed
# resource always has a Last-Modified strictly greater than any served before.

CHAN_KINDS = ("4chan", "vichan")
CHAN_SITE_RE = re.compile(r"[a-z0-9_-]+\Z")
CHAN_BOARD_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
CHAN_PAGE = 15  # threads a page of threads.json
CHAN_CACHE_MB = 256  # rendered thread bodies kept (--chan-cache-mb): 750,000 posts take 210
CHAN_PNG_CACHE = 20000  # generated pictures kept
CHAN_MAX_POSTS = 20000000  # posts a board may generate
CHAN_RECORDED_4CHAN = {
    "g": [
        "g-thread-41704783.json",
        "g-thread-41703336-webm-gif.json",
        "g-thread-41693287-filedeleted.json",
        "g-thread-39894014-sticky.json",
    ],
    "v": ["v-thread-393603295.json"],
}
CHAN_RECORDED_VICHAN = ("lambda", "lainchan-lambda-threads.json", ["lainchan-lambda-thread-30364.json"])


def chan_mix(x):
    """A 64-bit integer hash (splitmix64's finalizer)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def chan_seed(*parts):
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def chan_httpdate(t):
    return email.utils.formatdate(t, usegmt=True)


class ChanSite:
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.boards = {}
        self.faults = []  # newest last; the newest matching fault wins
        self.counts = {}  # unix second -> requests
        self.by_route = {}  # "threads" | "thread" | "file" | "other" -> requests
        self.by_status = {}  # status -> requests


class ChanBoard:
    uids = 0

    def __init__(self, site, name, seed):
        ChanBoard.uids += 1
        self.uid = ChanBoard.uids
        self.site = site
        self.kind = site.kind
        self.name = name
        self.seed = seed
        self.salt = chan_seed("board", name, seed)
        self.threads = {}  # OP no -> ChanThread
        self.images = 3
        self.page_size = CHAN_PAGE
        self.t0 = 0
        self.step = 1
        self.span = 0  # seconds of one generated thread
        self.next_no = 1
        self.clock = 0  # the last stamp given: the board's Last-Modified
        self.version = 0
        self.deleted_tims = set()
        self.recorded_listing = None  # threads.json bytes served while version == 0
        self.listing_cache = None  # (version, body)
        self.given = None  # a board of given pictures: {tim: path}
        self.given_posted = {}  # file name -> (no, tim) of its post

    def stamp(self):
        self.clock = max(int(time.time()), self.clock + 1)
        self.version += 1
        return self.clock


class ChanThread:
    __slots__ = ("no", "index", "base", "added", "recorded", "posts", "count", "filedeleted", "sticky",
                 "closed", "deleted", "phantom", "last_modified", "bump", "version", "salt")

    def __init__(self, no):
        self.no = no
        self.index = None  # generated: the thread's position on its board
        self.base = 0  # generated: posts computed from the seed
        self.added = []  # (no, time) of the posts added by control requests
        self.recorded = None  # the recorded bytes, served while version == 0
        self.posts = None  # recorded post objects, once changed
        self.count = 0  # posts now
        self.filedeleted = set()
        self.sticky = False
        self.closed = False
        self.deleted = False
        self.phantom = False  # listed by a recorded threads.json, not recorded itself: 404
        self.last_modified = 0
        self.bump = 0
        self.version = 0
        self.salt = 0


class Chan:
    def __init__(self):
        self.lock = threading.Lock()
        self.sites = {}
        self.cache = collections.OrderedDict()  # (board uid, no, version) -> (body, files)
        self.cache_bytes = 0
        self.cache_max = CHAN_CACHE_MB << 20
        self.pngs = collections.OrderedDict()  # "board/tim" -> (bytes, w, h, md5 base64)
        self.layouts = {}  # (w, h, gx, gy) -> (signature + IHDR, IDAT + IEND) of a palette picture
        self.fixtures_dir = None


CHAN = Chan()


# Pictures: PNG files made with zlib and struct, a grid of 2x2 to 6x6 blocks.
# 29 in 32 are palette pictures: the compressed grid is shared by every
# picture of that size and grid, the colours (PLTE) are their own, so each
# costs a few microseconds.  The rest are small RGB, gray or RGBA pictures,
# compressed each time.  A picture depends only on "board/tim".

PNG_SIG = b"\x89PNG\r\n\x1a\n"
PNG_SIZES = (48, 64, 80, 96, 120, 160, 200, 250)


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


PNG_IEND = png_chunk(b"IEND", b"")


def png_grid(w, h, gx, gy, cells, bpp):
    """Raw scanlines of a gx-by-gy grid; cells[i] is the bytes of one pixel of cell i."""
    bw, bh = w // gx, h // gy
    rows = []
    for r in range(gy):
        row = b"\x00" + b"".join(cells[r * gx + c] * (bw if c < gx - 1 else w - bw * (gx - 1)) for c in range(gx))
        rows.append(row * (bh if r < gy - 1 else h - bh * (gy - 1)))
    return b"".join(rows)


def png_make(key):
    """(bytes, w, h) of the picture of key; the caller holds CHAN.lock."""
    d = hashlib.shake_256(key.encode()).digest(120)
    gx, gy = 2 + d[3] % 5, 2 + d[4] % 5
    ncell = gx * gy
    if d[0] % 32 < 29:
        w, h = PNG_SIZES[d[1] & 7], PNG_SIZES[d[2] & 7]
        layout = CHAN.layouts.get((w, h, gx, gy))
        if layout is None:
            raw = png_grid(w, h, gx, gy, [bytes([i]) for i in range(ncell)], 1)
            layout = CHAN.layouts[(w, h, gx, gy)] = (
                PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)),
                png_chunk(b"IDAT", zlib.compress(raw, 9)) + PNG_IEND)
        return layout[0] + png_chunk(b"PLTE", d[8 : 8 + 3 * ncell]) + layout[1], w, h
    w, h = 24 + d[1] % 49, 24 + d[2] % 49
    ctype, bpp = {29: (2, 3), 30: (0, 1), 31: (6, 4)}[d[0] % 32]
    cells = [d[8 + 3 * i : 8 + 3 * i + bpp] if bpp > 1 else d[8 + i : 9 + i] for i in range(ncell)]
    if bpp == 4:
        cells = [c[:3] + bytes([128 + c[3] % 128]) for c in cells]
    raw = png_grid(w, h, gx, gy, cells, bpp)
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
    return PNG_SIG + ihdr + png_chunk(b"IDAT", zlib.compress(raw, 1)) + PNG_IEND, w, h


def chan_png(board, tim):
    """(bytes, w, h, md5 base64) of the picture of board's tim; caller holds CHAN.lock."""
    key = board + "/" + tim
    got = CHAN.pngs.get(key)
    if got is not None:
        CHAN.pngs.move_to_end(key)
        return got
    body, w, h = png_make(key)
    got = (body, w, h, base64.b64encode(hashlib.md5(body).digest()).decode())
    CHAN.pngs[key] = got
    if len(CHAN.pngs) > CHAN_PNG_CACHE:
        CHAN.pngs.popitem(last=False)
    return got


# Post text: pools of lines written once as plain text, escaped at start for
# each kind (4chan: HTML with &#039; and <wbr>, JSON with \uXXXX and \/;
# vichan: HTML, JSON in UTF-8), picked per post by bits of its hash.

CHAN_LINES = [
    "no thread about this? why not?",
    "Was a budget build, added a 280X.",
    "Feels 2011 man.",
    "It's not a bug, it's a feature.",
    "What's your favourite text editor & why?",
    'I\'d rather use "vi" than anything else.',
    "Works on my machine.",
    "Greek ΛΦΩ, Ümlauts and 日本語 in one post",
    "Anyone tried the new kernel? 6.1 < 6.2 in my benchmarks, > 6.0 anyway",
    "☃ snow day, posting from the cabin 😀",
    "bump",
    "this",
    "lurk more",
    "Pattern matching and the pipe operator are nice.",
    "Don't turn this into a flame war.",
    "The regex support is considered a strong point, isn't it?",
    "How do I compile this? make says: *** No rule to make target 'all'.",
    "error 0x80004005 at C:\\Windows\\System32\\drivers",
    "100% agree, 0% regrets",
    "Sure, but what about <script>alert(1)</script>?",
    "tabs\tor spaces",
    "It doesn't need to be only with regard to syntax.",
    "I hardly use them but I love to look at those source codes.",
    "Thinkpads are the only laptops worth buying.",
    "just use a raspberry pi lmao",
    "Switching back to other languages I often find myself missing its elegance.",
]
CHAN_GREEN = [
    ">implying",
    ">2014",
    ">using a system that doesn't support Windows 3.1 applications",
    ">be me",
    ">he doesn't know",
]
CHAN_URLS = [
    "https://www.atlus.co.jp/news/5854/",
    "https://github.com/torvalds/linux/commit/0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
    "http://pastebin.com/cW3JnRBd",
    "https://en.wikipedia.org/wiki/Perceptual_hashing",
    "https://example.org/search?q=imgfeed&page=2",
]
CHAN_SUBJECTS = [
    "Speccy thread",
    "Most beautiful languages?",
    "Desktop thread",
    "Home server general",
    "Shin Megami Tensei",
    "What are you working on?",
    "Thinkpad thread",
    "Ask \"anything\" thread",
]
CHAN_FILENAMES = [
    "Screenshot (32)",
    "speccy",
    "1394259429324",
    "IMG_2041",
    "desktop",
    "A327797B-DD83-414F-B6D2-031A9C76C44B",
    "image",
    "スクリーンショット",
    'file "quoted"',
]
CHAN_NAMES_VICHAN = ["Anonymous", "Lain Iwakura", "Incognito", "Torvalds", "Nell", "Zuse", "Chani", "Tank", "Cypher"]
CHAN_TRIPS = ["!Ep8pui8Vw2", "!!Xk9v2LmQ7aB", "!mlKTi6Xd3s"]


def chan_json(s, kind):
    """s as the inside of a JSON string, the way the kind's site writes it."""
    if kind == "4chan":
        return json.dumps(s)[1:-1].replace("/", "\\/")
    return json.dumps(s, ensure_ascii=False)[1:-1]


def chan_html(s, kind):
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if kind == "4chan":
        s = s.replace('"', "&quot;").replace("'", "&#039;")
    return s


def chan_link(url, kind):
    if kind == "4chan":
        # 4chan breaks long words with <wbr> and makes no links
        u = chan_html(url, kind)
        return "<wbr>".join(u[i : i + 35] for i in range(0, len(u), 35))
    u = chan_html(url, kind)
    return '<a href="%s" rel="nofollow" target="_blank">%s</a>' % (u, u)


def chan_slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:40] or "thread"


class ChanText:
    """The pools, escaped for one kind."""

    def __init__(self, kind):
        j = lambda s: chan_json(s, kind)  # noqa: E731
        self.br = "<br>" if kind == "4chan" else "<br/>"
        self.lines = [j(chan_html(s, kind)) for s in CHAN_LINES]
        self.green = [j('<span class="quote">%s</span>' % chan_html(s, kind)) for s in CHAN_GREEN]
        self.urls = [j(chan_link(u, kind)) for u in CHAN_URLS]
        self.subjects = [j(chan_html(s, kind)) for s in CHAN_SUBJECTS]
        self.slugs = [chan_slug(s) for s in CHAN_SUBJECTS]
        self.filenames = [j(s) for s in CHAN_FILENAMES]
        self.names = [j(s) for s in CHAN_NAMES_VICHAN]
        self.trips = [j(s) for s in CHAN_TRIPS]
        if kind == "4chan":
            self.quote = j('<a href="#p{0}" class="quotelink">&gt;&gt;{0}</a>')
        else:
            self.quote = j('<a onclick="highlightReply(\'{0}\', event);" href="/{1}/res/{2}.html#{0}">&gt;&gt;{0}</a>')


CHAN_TEXT = {kind: ChanText(kind) for kind in CHAN_KINDS}


def chan_com(g, h, i, op, prev, board, with_file):
    """The escaped com of a post, or None (a picture without text)."""
    lines = []
    if i > 0 and h & 3 < 2:
        target = prev if (h >> 2) & 1 else op
        lines.append(g.quote.format(target, board, op))
    if (h >> 3) & 7 == 0:
        lines.append(g.green[(h >> 6) % len(g.green)])
    for k in range((h >> 12) & 3):
        lines.append(g.lines[(h >> (14 + 5 * k)) % len(g.lines)])
    if (h >> 30) & 7 == 0:
        lines.append(g.urls[(h >> 33) % len(g.urls)])
    if not lines:
        if with_file:
            return None
        lines.append(g.lines[(h >> 14) % len(g.lines)])
    return (g.br + g.br if (h >> 36) & 3 == 0 else g.br).join(lines)


def chan_has_file(board, th, i):
    return board.images > 0 and (i == 0 or (i * 7 + th.salt) % 10 < board.images)


def chan_post_time(board, th, i):
    """(no, time, hash) of post i of a generated thread."""
    if i < th.base:
        no = th.no + i
        h = chan_mix(no ^ board.salt)
        return no, board.t0 + th.index * board.span + i * board.step + h % board.step, h
    no, t = th.added[i - th.base]
    return no, t, chan_mix(no ^ board.salt)


def chan_tims(board, no, t, h):
    """The tim (string) of a post's file and, on vichan, of its extra files."""
    ms = t * 1000 + no % 1000  # unique: posts of one board and second have consecutive numbers
    if board.kind == "4chan":
        return [str(ms)]
    extra = 1 + (h >> 51) % 2 if (h >> 48) & 7 == 0 else 0
    return ["%d-%d" % (ms, k) for k in range(1 + extra)]


def chan_file_fields(board, tim, h, k, op):
    """(the file fields of a post as JSON text, its md5 as JSON text, its size)."""
    g = CHAN_TEXT[board.kind]
    body, w, ht, md5 = chan_png(board.name, tim)
    limit = 250 if op else 125
    scale = min(1.0, float(limit) / max(w, ht))
    tw, th = max(1, int(w * scale)), max(1, int(ht * scale))
    fname = g.filenames[(h >> (24 + 3 * k)) % len(g.filenames)]
    if board.kind == "4chan":
        text = '"filename":"%s","ext":".png","w":%d,"h":%d,"tn_w":%d,"tn_h":%d,"tim":%s,' % (fname, w, ht, tw, th, tim)
        return text, md5.replace("/", "\\/"), len(body)
    text = '"tn_h":%d,"tn_w":%d,"h":%d,"w":%d,"fsize":%d,"filename":"%s","ext":".png","tim":"%s","md5":"%s"' % (
        th, tw, ht, w, len(body), fname, tim, md5)
    return text, md5, len(body)


CHAN_DAYS = {}  # day -> "mm\/dd\/yy(Day)"


def chan_now(t):
    """4chan's "now" (in UTC here) as JSON text."""
    day, sec = divmod(t, 86400)
    date = CHAN_DAYS.get(day)
    if date is None:
        date = CHAN_DAYS[day] = time.strftime("%m\\/%d\\/%y(%a)", time.gmtime(t))
    return "%s%02d:%02d:%02d" % (date, sec // 3600, sec // 60 % 60, sec % 60)


def chan_post(board, th, i, no, t, h, prev, op_info=None):
    """One post as JSON text, its files [(no, tim, ext, md5)] and whether it shows a file.

    op_info is None for a reply, else (replies, images) for the opening post."""
    g = CHAN_TEXT[board.kind]
    op = th.no
    with_file = chan_has_file(board, th, i)
    deleted = with_file and no in th.filedeleted
    com = chan_com(g, h, i, op, prev, board.name, with_file)
    files = []
    if board.kind == "4chan":
        out = ['{"no":%d,' % no]
        if op_info is not None and th.sticky:
            out.append('"sticky":1,')
        if op_info is not None and th.closed:
            out.append('"closed":1,')
        out.append('"now":"%s","name":"Anonymous",' % chan_now(t))
        if (h >> 40) & 15 == 0:
            out.append('"trip":"%s",' % g.trips[(h >> 44) % len(g.trips)])
        sub = (h >> 52) % len(g.subjects) if op_info is not None and (h >> 50) & 3 else None
        if sub is not None:
            out.append('"sub":"%s",' % g.subjects[sub])
        if com is not None:
            out.append('"com":"%s",' % com)
        if with_file and not deleted:
            tim = chan_tims(board, no, t, h)[0]
            text, md5, size = chan_file_fields(board, tim, h, 0, op_info is not None)
            out.append('%s"time":%d,"md5":"%s","fsize":%d,"resto":%d' % (
                text, t, md5, size, 0 if op_info is not None else op))
            files.append((no, tim, ".png", md5.replace("\\/", "/")))
        else:
            out.append('"time":%d,"resto":%d' % (t, 0 if op_info is not None else op))
            if deleted:
                out.append(',"filedeleted":1')
        if op_info is not None:
            replies, images = op_info
            slug = g.slugs[sub] if sub is not None else "thread"
            out.append(',"bumplimit":%d,"imagelimit":%d,"semantic_url":"%s","replies":%d,"images":%d,'
                       '"unique_ips":%d' % (replies >= 300, images >= 150, slug, replies, images, 1 + replies * 2 // 3))
        out.append("}")
        return "".join(out), files, with_file and not deleted
    # vichan
    if op_info is not None:
        out = ['{"no":%d,' % no]
        sub = (h >> 52) % len(g.subjects) if (h >> 50) & 3 else None
        if sub is not None:
            out.append('"sub":"%s",' % g.subjects[sub])
    else:
        out = ['{"no":%d,"resto":%d,' % (no, op)]
    if com is not None:
        out.append('"com":"%s",' % com)
    if op_info is None and (h >> 40) & 15 == 1:
        out.append('"email":"sage",')
    out.append('"name":"%s","time":%d,' % (g.names[(h >> 44) % len(g.names)] if (h >> 41) & 1 else "Anonymous", t))
    if op_info is not None:
        out.append('"omitted_posts":0,"omitted_images":0,')
    lm = th.last_modified if op_info is not None else t
    out.append('"sticky":%d,"locked":%d,"cyclical":0,"last_modified":%d' % (
        th.sticky and op_info is not None, th.closed and op_info is not None, lm))
    if with_file:
        tims = chan_tims(board, no, t, h)
        text, md5, size = chan_file_fields(board, tims[0], h, 0, op_info is not None)
        if deleted:
            text = text.replace('"ext":".png","tim":"%s"' % tims[0], '"ext":"deleted","tim":""')
        else:
            files.append((no, tims[0], ".png", md5))
        out.append("," + text)
        if len(tims) > 1 and not deleted:
            extra = []
            for k, tim in enumerate(tims[1:], 1):
                etext, emd5, _ = chan_file_fields(board, tim, h, k, False)
                extra.append("{" + etext + "}")
                files.append((no, tim, ".png", emd5))
            out.append(',"extra_files":[%s]' % ",".join(extra))
    if op_info is not None:
        out.append(',"resto":0')
    out.append("}")
    return "".join(out), files, with_file and not deleted


def chan_recorded_files(posts):
    """[(no, tim, ext, md5)] of the files of recorded posts."""
    files = []
    for p in posts:
        for f in [p] + list(p.get("extra_files") or []):
            if f.get("tim") not in (None, "") and f.get("ext") not in (None, "deleted"):
                files.append((p["no"], str(f["tim"]), f["ext"], f.get("md5")))
    return files


def chan_render(board, th):
    """(body, files) of a thread, from the cache or rendered; caller holds CHAN.lock."""
    key = (board.uid, th.no, th.version)
    got = CHAN.cache.get(key)
    if got is not None:
        CHAN.cache.move_to_end(key)
        return got
    if th.recorded is not None and th.posts is None:
        return th.recorded, None
    parts, files = [], []
    images = 0
    if th.posts is not None:  # a recorded thread, changed
        for p in th.posts:
            if p.get("resto", 0) != 0 and "tim" in p and p.get("ext") != "deleted":
                images += 1
        prev = th.posts[-1]["no"]
        for k, (no, t) in enumerate(th.added):
            text, f, shown = chan_post(board, th, len(th.posts) + k, no, t, chan_mix(no ^ board.salt), prev)
            parts.append(text)
            files.extend(f)
            images += shown
            prev = no
        op = dict(th.posts[0])
        if "replies" in op:
            op["replies"] = th.count - 1
        if "images" in op:
            op["images"] = images
        if board.kind == "vichan":
            op["last_modified"] = th.last_modified
        dump = [json.dumps(p, separators=(",", ":"), ensure_ascii=board.kind == "4chan") for p in [op] + th.posts[1:]]
        if board.kind == "4chan":
            dump = [d.replace("/", "\\/") for d in dump]
        parts = dump + parts
        files[0:0] = chan_recorded_files(th.posts)
    else:
        prev = th.no
        for i in range(1, th.count):
            no, t, h = chan_post_time(board, th, i)
            text, f, shown = chan_post(board, th, i, no, t, h, prev)
            parts.append(text)
            files.extend(f)
            images += shown
            prev = no
        no, t, op_h = chan_post_time(board, th, 0)
        text, f, _ = chan_post(board, th, 0, no, t, op_h, no, (th.count - 1, images))
        parts.insert(0, text)
        files[0:0] = f
    body = ('{"posts":[' + ",".join(parts) + "]}").encode()
    got = (body, files)
    CHAN.cache[key] = got
    CHAN.cache_bytes += len(body)
    while CHAN.cache_bytes > CHAN.cache_max and CHAN.cache:
        CHAN.cache_bytes -= len(CHAN.cache.popitem(last=False)[1][0])
    return got


def chan_listing(board):
    """threads.json of a board; caller holds CHAN.lock."""
    if board.recorded_listing is not None and board.version == 0:
        return board.recorded_listing
    if board.listing_cache is not None and board.listing_cache[0] == board.version:
        return board.listing_cache[1]
    live = sorted((th for th in board.threads.values() if not th.deleted),
                  key=lambda th: (not th.sticky, -th.bump, -th.no))
    pages = []
    first = 1 if board.kind == "4chan" else 0
    for p in range(0, len(live), board.page_size):
        if board.kind == "4chan":
            entries = ['{"no":%d,"last_modified":%d,"replies":%d}' % (th.no, th.last_modified, th.count - 1)
                       for th in live[p : p + board.page_size]]
            pages.append('{"page":%d,"threads":[%s]}' % (first + p // board.page_size, ",".join(entries)))
        else:
            entries = ['{"no":%d,"last_modified":%d}' % (th.no, th.last_modified)
                       for th in live[p : p + board.page_size]]
            pages.append('{"threads":[%s],"page":%d}' % (",".join(entries), first + p // board.page_size))
    body = ("[" + ",".join(pages) + "]").encode()
    board.listing_cache = (board.version, body)
    return body


def chan_file_path(site, board, tim, ext):
    if site.kind == "4chan":
        return "/%s/media/%s/%s%s" % (site.name, board, tim, ext)
    return "/%s/%s/src/%s%s" % (site.name, board, tim, ext)


def chan_templates(site):
    s = "/" + site.name
    if site.kind == "4chan":
        return {"threads": s + "/{board}/threads.json", "thread": s + "/{board}/thread/{no}.json",
                "file": s + "/media/{board}/{tim}{ext}"}
    return {"threads": s + "/{board}/threads.json", "thread": s + "/{board}/res/{no}.json",
            "file": s + "/{board}/src/{tim}{ext}"}


def chan_not_modified(req, lm):
    ims = req.headers.get("If-Modified-Since")
    if ims is None:
        return False
    if ims == chan_httpdate(lm):
        return True
    parsed = email.utils.parsedate_tz(ims)
    return parsed is not None and email.utils.mktime_tz(parsed) >= lm


def chan_take_fault(site, path):
    """The fault that answers this request, if any; caller holds CHAN.lock."""
    for f in reversed(site.faults):
        if path.startswith(f["path"]):
            if f["count"] is not None:
                f["count"] -= 1
                if f["count"] <= 0:
                    site.faults.remove(f)
            f["hits"] += 1
            return dict(f)
    return None


def chan_route(what):
    """A route of a chan site: count it, apply its faults, then serve.

    The wrapped function gets (req, site, match) under CHAN.lock and returns
    (status, body, content type, Last-Modified in UNIX seconds or None)."""

    def wrap(fn):
        @functools.wraps(fn)
        def handler(req, match, query):
            path = req.entry["route"]
            with CHAN.lock:
                site = CHAN.sites.get(match.group(1))
                if site is None:
                    req.reply(404, b"not found\n")
                    return
                second = int(req.entry["t"])
                site.counts[second] = site.counts.get(second, 0) + 1
                site.by_route[what] = site.by_route.get(what, 0) + 1
                fault = chan_take_fault(site, path)
            if fault is not None:
                req.entry["fault"] = {k: fault[k] for k in ("status", "retry_after", "delay", "broken") if fault[k]}
                if fault["delay"]:
                    fault["released"].wait(fault["delay"])
            if fault is not None and fault["status"]:
                headers = {}
                if fault["retry_after"] is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                code, body, ctype, lm = fault["status"], ("status %d\n" % fault["status"]).encode(), "text/plain", None
            else:
                with CHAN.lock:
                    code, body, ctype, lm = fn(req, site, match)
                headers = {"Last-Modified": chan_httpdate(lm)} if lm is not None and code == 200 else {}
                if fault is not None and fault["broken"] and code == 200:
                    body = body[: len(body) // 2]
                elif lm is not None and code == 200 and chan_not_modified(req, lm):
                    code, body = 304, b""
            with CHAN.lock:
                site.by_status[str(code)] = site.by_status.get(str(code), 0) + 1
            req.reply(code, body, ctype, headers)

        return handler

    return wrap


CHAN_404 = (404, b"not found\n", "text/plain", None)


@chan_route("threads")
def route_chan_threads(req, site, match):
    board = site.boards.get(match.group(2))
    if board is None:
        return CHAN_404
    return 200, chan_listing(board), "application/json", board.clock


def chan_thread(req, site, match, kind):
    board = site.boards.get(match.group(2))
    if site.kind != kind or board is None:
        return CHAN_404
    th = board.threads.get(int(match.group(3)))
    if th is None or th.deleted or th.phantom:
        return CHAN_404
    return 200, chan_render(board, th)[0], "application/json", th.last_modified


@chan_route("thread")
def route_chan_thread_4chan(req, site, match):
    return chan_thread(req, site, match, "4chan")


@chan_route("thread")
def route_chan_thread_vichan(req, site, match):
    return chan_thread(req, site, match, "vichan")


def chan_file(req, site, board_name, tim, thumb, kind):
    board = site.boards.get(board_name)
    if site.kind != kind or board is None or tim in board.deleted_tims:
        return CHAN_404
    if board.given is not None:  # the file itself, its thumbnail too
        got = given_read(board.given[tim]) if tim in board.given else None
        if got is None:
            return CHAN_404
        return 200, got[0], got[3], int(tim.split("-")[0]) // 1000
    body, _, _, _ = chan_png(board_name, tim + ("s" if thumb else ""))
    lm = int(tim.split("-")[0]) // 1000
    return 200, body, "image/png", lm if lm > 0 else None


@chan_route("file")
def route_chan_file_4chan(req, site, match):
    return chan_file(req, site, match.group(2), match.group(3), match.group(4) == "s", "4chan")


@chan_route("file")
def route_chan_file_vichan(req, site, match):
    return chan_file(req, site, match.group(2), match.group(4), match.group(3) == "thumb", "vichan")


@chan_route("other")
def route_chan_other(req, site, match):
    return CHAN_404


# --- image boards: control ---


def chan_int(query, name, default=None, low=None, high=None):
    value = arg(query, name)
    if value is None:
        if default is None:
            raise ValueError("missing %s=" % name)
        return default
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        raise ValueError("%s=%s out of range" % (name, value))
    return n


def chan_get_site(query, name="site"):
    site = CHAN.sites.get(arg(query, name, ""))
    if site is None:
        raise KeyError("no site %r" % arg(query, name, ""))
    return site


def chan_get_board(query):
    site = chan_get_site(query)
    board = site.boards.get(arg(query, "board", ""))
    if board is None:
        raise KeyError("no board %r on site %s" % (arg(query, "board", ""), site.name))
    return site, board


def chan_reserved(name):
    """Whether /name/... belongs to another route of the table."""
    for _, pattern, handler in ROUTES:
        if handler.__name__.startswith("route_chan"):
            continue
        head = re.match(r"/([A-Za-z_]+)", pattern)
        if head and head.group(1) == name:
            return True
    return False


def chan_new_site(name, kind):
    if not CHAN_SITE_RE.match(name or "") or chan_reserved(name):
        raise ValueError("bad site name %r" % name)
    if kind not in CHAN_KINDS:
        raise ValueError("kind must be one of %s" % ", ".join(CHAN_KINDS))
    site = ChanSite(name, kind)
    CHAN.sites[name] = site
    return site


def chan_site_json(site):
    return {"site": site.name, "kind": site.kind, "boards": sorted(site.boards), "urls": chan_templates(site)}


def control_chan_site(req, match, query):
    with CHAN.lock:
        site = chan_new_site(arg(query, "name"), arg(query, "kind", "4chan"))
        req.reply_json(chan_site_json(site))


def chan_given_post(board, no, t, op, fname, path, tim, ext, replies):
    """A post of a board of given pictures, as 4chan or vichan writes it (a dict)."""
    got = given_read(path)
    if got is None:
        raise ValueError("cannot read %s" % path)
    data, w, h, _ = got
    limit = 250 if op == no else 125
    scale = min(1.0, float(limit) / max(w, h, 1))
    post = {"no": no}
    if board.kind == "vichan" and op != no:
        post["resto"] = op
    if board.kind == "4chan":
        post["now"] = chan_now(t).replace("\\/", "/")
    post.update({"name": "Anonymous", "com": "picture %s" % fname,
                 "filename": fname.rsplit(".", 1)[0], "ext": ext, "w": w, "h": h,
                 "tn_w": max(1, int(w * scale)), "tn_h": max(1, int(h * scale)),
                 "tim": int(tim) if board.kind == "4chan" else tim, "time": t,
                 "md5": base64.b64encode(hashlib.md5(data).digest()).decode(), "fsize": len(data)})
    if board.kind == "4chan" or op == no:
        post["resto"] = 0 if op == no else op
    if op == no:
        post["replies"], post["images"] = replies, replies
        if board.kind == "vichan":
            post["last_modified"] = t
    return post


def chan_given_board(site, name, folder, per_thread):
    """Make board NAME of SITE a board of the given pictures of FOLDER, one a
    post, PER_THREAD posts a thread; on a board of given pictures already,
    only the files not posted yet, as new threads.  Caller holds CHAN.lock."""
    try:
        files = given_files(folder)
    except ControlError as e:
        raise ValueError(str(e))
    board = site.boards.get(name)
    if board is None or board.given is None:
        board = ChanBoard(site, name, 0)
        board.given = {}
        board.next_no = (10000000 if site.kind == "4chan" else 10000) * (1 + board.salt % 89)
    new = [(f, p) for f, p in files if f not in board.given_posted]
    now = max(int(time.time()), board.clock + 1 + len(new))
    t = now - len(new)  # one second a post, the last a second ago: after every earlier stamp
    added = []
    for start in range(0, len(new), per_thread):
        chunk = new[start : start + per_thread]
        op = board.next_no
        posts = []
        for k, (fname, path) in enumerate(chunk):
            no = board.next_no
            board.next_no += 1
            ext = "." + fname.rsplit(".", 1)[1].lower() if "." in fname else ".png"
            tim = "%d" % (t * 1000 + no % 1000) if site.kind == "4chan" else "%d-0" % (t * 1000 + no % 1000)
            posts.append(chan_given_post(board, no, t, op, fname, path, tim, ext, len(chunk) - 1))
            board.given[tim] = path
            board.given_posted[fname] = (no, tim)
            added.append({"file": fname, "no": no, "thread": op, "tim": tim, "ext": ext,
                          "path": chan_file_path(site, name, tim, ext)})
            t += 1
        dump = json.dumps({"posts": posts}, separators=(",", ":"), ensure_ascii=site.kind == "4chan")
        th = chan_recorded_thread(board, (dump.replace("/", "\\/") if site.kind == "4chan" else dump).encode())
        th.version = 0
        board.next_no += 10
    board.clock = max([th.last_modified for th in board.threads.values()] + [board.clock])
    board.version += 1
    site.boards[name] = board
    return board, added


def control_chan_board(req, match, query):
    with CHAN.lock:
        site = chan_get_site(query)
        name = arg(query, "board", "")
        if not CHAN_BOARD_RE.match(name) or name == "media":
            raise ValueError("bad board name %r" % name)
        if arg(query, "dir") is not None:
            board, added = chan_given_board(site, name, arg(query, "dir"), chan_int(query, "per_thread", 5, 1, 1000))
            req.reply_json({"site": site.name, "board": name, "threads": len(board.threads),
                            "last_modified": board.clock, "added": added,
                            "posted": {f: {"no": no, "tim": tim} for f, (no, tim) in sorted(board.given_posted.items())}})
            return
        nthreads = chan_int(query, "threads", 10, 0, 1000000)
        nposts = chan_int(query, "posts", 10, 1, 1000000)
        if nthreads * nposts > CHAN_MAX_POSTS:
            raise ValueError("more than %d posts" % CHAN_MAX_POSTS)
        board = ChanBoard(site, name, chan_int(query, "seed", 1))
        board.images = chan_int(query, "images", 3, 0, 10)
        board.step = max(2, min(60, 86400 // max(1, nthreads * nposts)))
        board.span = nposts * board.step
        board.t0 = int(time.time()) - nthreads * board.span - 60
        base = (10000000 * (1 + board.salt % 89)) if site.kind == "4chan" else 10000 * (1 + board.salt % 89)
        for t in range(nthreads):
            th = ChanThread(base + t * nposts)
            th.index, th.base, th.count = t, nposts, nposts
            th.salt = chan_mix(th.no ^ board.salt) % 10
            th.last_modified = th.bump = chan_post_time(board, th, nposts - 1)[1]
            board.threads[th.no] = th
        board.next_no = base + nthreads * nposts + 1000
        board.clock = max([th.last_modified for th in board.threads.values()] or [board.t0])
        site.boards[name] = board
        started = time.monotonic()
        if arg(query, "prerender") == "1":
            for th in board.threads.values():
                chan_render(board, th)
        req.reply_json({"site": site.name, "board": name, "threads": nthreads, "posts": nposts,
                        "images": board.images, "first_no": base, "last_modified": board.clock,
                        "pages": (nthreads + CHAN_PAGE - 1) // CHAN_PAGE,
                        "prerender_seconds": round(time.monotonic() - started, 3)})


def chan_read(name):
    path = os.path.join(CHAN.fixtures_dir, name)
    with open(path, "rb") as f:
        return f.read()


def chan_recorded_thread(board, body):
    posts = json.loads(body)["posts"]
    op = posts[0]
    th = ChanThread(op["no"])
    th.recorded = body
    th.count = len(posts)
    th.sticky = bool(op.get("sticky"))
    th.closed = bool(op.get("closed") or op.get("locked"))
    th.last_modified = max([p.get("time", 0) for p in posts] + [p.get("last_modified", 0) for p in posts])
    th.bump = th.last_modified
    board.threads[th.no] = th
    return th


def control_chan_recorded(req, match, query):
    kind = arg(query, "kind", "4chan")
    with CHAN.lock:
        site = chan_new_site(arg(query, "site"), kind)
        try:
            if kind == "4chan":
                for name, files in sorted(CHAN_RECORDED_4CHAN.items()):
                    board = ChanBoard(site, name, 0)
                    for fname in files:
                        chan_recorded_thread(board, chan_read(os.path.join("4chan", fname)))
                    site.boards[name] = board
            else:
                name, listing, files = CHAN_RECORDED_VICHAN
                board = ChanBoard(site, name, 0)
                board.recorded_listing = chan_read(os.path.join("vichan", listing))
                pages = json.loads(board.recorded_listing)
                board.page_size = max(len(p["threads"]) for p in pages)
                entries = [t for p in pages for t in p["threads"]]
                for fname in files:
                    chan_recorded_thread(board, chan_read(os.path.join("vichan", fname)))
                # the threads before the listing's order first goes up are stickies
                rise = [k for k in range(1, len(entries))
                        if entries[k]["last_modified"] > entries[k - 1]["last_modified"]]
                for k, e in enumerate(entries):
                    th = board.threads.get(e["no"])
                    if th is None:
                        th = board.threads[e["no"]] = ChanThread(e["no"])
                        th.phantom = True
                    th.last_modified = max(th.last_modified, e["last_modified"])
                    th.bump = e["last_modified"]
                    th.sticky = th.sticky or bool(rise and k < rise[0])
                site.boards[name] = board
        except (OSError, ValueError, KeyError) as e:
            del CHAN.sites[site.name]
            req.reply(500, ("cannot read the recorded fixtures in %s: %s\n" % (CHAN.fixtures_dir, e)).encode())
            return
        for board in site.boards.values():
            board.clock = max(th.last_modified for th in board.threads.values())
            board.next_no = 1 + max(max([th.no] + [p["no"] for p in json.loads(th.recorded)["posts"]])
                                    if th.recorded is not None else th.no for th in board.threads.values())
        req.reply_json(chan_site_json(site))


def chan_find_post(board, th, no):
    """(index, recorded post object or None, time, hash) of post no of a thread."""
    if th.posts is not None:
        for i, p in enumerate(th.posts):
            if p.get("no") == no:
                return i, p, p.get("time", 0), 0
        first_added = len(th.posts)
    else:
        if th.no <= no < th.no + th.base:
            i = no - th.no
            return (i,) + (None,) + chan_post_time(board, th, i)[1:]
        first_added = th.base
    for k, (n, t) in enumerate(th.added):
        if n == no:
            return first_added + k, None, t, chan_mix(no ^ board.salt)
    raise KeyError("no post %d in thread %d" % (no, th.no))


def chan_delete_file(board, th, no):
    i, p, t, h = chan_find_post(board, th, no)
    if p is None:
        if not chan_has_file(board, th, i) or no in th.filedeleted:
            raise ValueError("post %d has no file" % no)
        th.filedeleted.add(no)
        board.deleted_tims.update(chan_tims(board, no, t, h))
        return
    if "tim" not in p or p.get("ext") == "deleted":
        raise ValueError("post %d has no file" % no)
    board.deleted_tims.add(str(p["tim"]))
    board.deleted_tims.update(str(x.get("tim")) for x in p.get("extra_files", []))
    if board.kind == "4chan":
        for k in ("filename", "ext", "w", "h", "tn_w", "tn_h", "tim", "md5", "fsize", "spoiler", "m_img"):
            p.pop(k, None)
        p["filedeleted"] = 1
    else:
        p["ext"], p["tim"] = "deleted", ""
        p.pop("extra_files", None)


def chan_set_flag(board, th, name, value):
    if name == "sticky":
        th.sticky = value
    else:
        th.closed = value
    if th.posts is not None:
        op = th.posts[0]
        key = name if board.kind == "4chan" or name == "sticky" else "locked"
        if board.kind == "4chan" and not value:
            op.pop(key, None)
        elif board.kind == "4chan" and key not in op:
            # 4chan writes sticky and closed right after no
            items = list(op.items())
            at = 1 + (key == "closed" and "sticky" in op)
            th.posts[0] = dict(items[:at] + [(key, 1)] + items[at:])
        else:
            op[key] = int(value)


def control_chan_thread(req, match, query):
    with CHAN.lock:
        site, board = chan_get_board(query)
        no = chan_int(query, "no")
        th = board.threads.get(no)
        if th is None or th.deleted:
            raise KeyError("no thread %d on /%s/%s/" % (no, site.name, board.name))
        add = chan_int(query, "add", 0, 0, 100000)
        filedeleted = arg(query, "filedeleted")
        flags = [(k, arg(query, k)) for k in ("sticky", "closed") if arg(query, k) is not None]
        delete = arg(query, "delete") == "1"
        if th.phantom and (add or filedeleted is not None or flags):
            raise ValueError("thread %d is only listed, not recorded" % no)
        if not (add or filedeleted is not None or flags or delete):
            raise ValueError("nothing to change: add=, delete=1, filedeleted=, sticky= or closed=")
        unparsed = th.recorded is not None and th.posts is None
        if unparsed:
            th.posts = json.loads(th.recorded)["posts"]
        if filedeleted is not None:
            try:
                chan_delete_file(board, th, int(filedeleted))
            except (KeyError, ValueError):
                if unparsed:
                    th.posts = None
                raise
        stamp = board.stamp()
        for name, value in flags:
            chan_set_flag(board, th, name, value == "1")
        added = []
        for _ in range(add):
            added.append(board.next_no)
            th.added.append((board.next_no, stamp))
            board.next_no += 1
        if add:
            th.count += add
            th.bump = stamp
        th.deleted = delete
        th.last_modified = stamp
        th.version += 1
        req.reply_json({"site": site.name, "board": board.name, "no": no, "posts": th.count, "added": added,
                        "deleted": th.deleted, "last_modified": stamp, "board_last_modified": board.clock,
                        "version": th.version})


def chan_fault_json(f):
    return {k: f[k] for k in ("path", "status", "count", "retry_after", "delay", "broken", "hits")}


def control_chan_fault(req, match, query):
    with CHAN.lock:
        site = chan_get_site(query)
        path = arg(query, "path", "/%s/" % site.name)
        if not (path == "/" + site.name or path.startswith("/%s/" % site.name)):
            path = "/%s/%s" % (site.name, path.lstrip("/"))
        if arg(query, "clear") == "1":
            kept = [f for f in site.faults if arg(query, "path") is not None and f["path"] != path]
            if arg(query, "release") == "1":
                for f in site.faults:
                    if all(f is not k for k in kept):
                        f["released"].set()
            site.faults = kept
        else:
            fault = {
                "path": path,
                "status": chan_int(query, "status", 0, 0, 599),
                "count": chan_int(query, "count", 0, 1) if arg(query, "count") is not None else None,
                "retry_after": arg(query, "retry_after"),
                "delay": float(arg(query, "delay", "0")),
                "broken": arg(query, "broken") == "1",
                "hits": 0,
                "released": threading.Event(),  # set by clear=1&release=1: held requests answer now
            }
            if fault["status"] and fault["status"] < 100:
                raise ValueError("status=%d" % fault["status"])
            if not (fault["status"] or fault["delay"] > 0 or fault["broken"]):
                raise ValueError("a fault needs status=, delay= or broken=1")
            site.faults.append(fault)
        req.reply_json({"site": site.name, "faults": [chan_fault_json(f) for f in site.faults]})


def control_chan_info(req, match, query):
    with CHAN.lock:
        site = chan_get_site(query)
        if arg(query, "board") is None:
            out = chan_site_json(site)
            out["faults"] = [chan_fault_json(f) for f in site.faults]
            out["board_info"] = {b.name: {"threads": sum(not t.deleted and not t.phantom for t in b.threads.values()),
                                          "last_modified": b.clock} for b in site.boards.values()}
            req.reply_json(out)
            return
        site, board = chan_get_board(query)
        if arg(query, "no") is None:
            threads = [{"no": th.no, "posts": th.count, "last_modified": th.last_modified, "sticky": th.sticky,
                        "closed": th.closed, "deleted": th.deleted, "recorded": th.recorded is not None,
                        "listed_only": th.phantom, "version": th.version}
                       for th in sorted(board.threads.values(), key=lambda th: th.no)]
            req.reply_json({"site": site.name, "board": board.name, "kind": board.kind, "last_modified": board.clock,
                            "threads": threads})
            return
        th = board.threads.get(chan_int(query, "no"))
        if th is None or th.phantom:
            raise KeyError("no thread %s" % arg(query, "no"))
        body, files = chan_render(board, th)
        posts = json.loads(body)["posts"]
        if files is None:  # the recorded bytes
            files = chan_recorded_files(posts)
        req.reply_json({"site": site.name, "board": board.name, "no": th.no, "deleted": th.deleted,
                        "last_modified": th.last_modified, "version": th.version,
                        "post_nos": [p["no"] for p in posts],
                        "files": [{"no": n, "tim": tim, "ext": ext, "md5": md5,
                                   "path": chan_file_path(site, board.name, tim, ext)} for n, tim, ext, md5 in files]})


def control_chan_counts(req, match, query):
    with CHAN.lock:
        site = chan_get_site(query)
        req.reply_json({"site": site.name, "counts": {str(k): v for k, v in sorted(site.counts.items())},
                        "by_route": dict(site.by_route), "by_status": dict(site.by_status)})


# --- control API ---


def control_log(req, match, query):
    prefix = arg(query, "prefix", "")
    with STATE.lock:
        entries = [e for e in STATE.log if e["route"].startswith(prefix)]
        req.reply_json({"entries": entries})


def control_counts(req, match, query):
    prefix = arg(query, "prefix")
    with STATE.lock:
        if prefix is None:
            counts = dict(STATE.counts)
        else:
            counts = {}
            for e in STATE.log:
                if e["route"].startswith(prefix):
                    counts[int(e["t"])] = counts.get(int(e["t"]), 0) + 1
        req.reply_json({"counts": {str(k): v for k, v in sorted(counts.items())}})


def control_bytes(req, match, query):
    key = arg(query, "key", "")
    with STATE.lock:
        s = STATE.streams.get(key, {"done": False, "bytes": 0})
        req.reply_json({"key": key, "done": s["done"], "bytes": s["bytes"]})


def control_reset(req, match, query):
    with STATE.lock:
        STATE.reset()
    with CHAN.lock:
        for site in CHAN.sites.values():
            site.counts, site.by_route, site.by_status = {}, {}, {}
    req.reply_json({"ok": True})


def control_ping(req, match, query):
    req.reply_json({"ok": True})


ROUTES = [
    ("GET", r"/_control/log", control_log),
    ("GET", r"/_control/counts", control_counts),
    ("GET", r"/_control/bytes", control_bytes),
    ("GET", r"/_control/reset", control_reset),
    ("GET", r"/_control/ping", control_ping),
    ("GET", r"/ok", route_ok),
    ("GET", r"/echo", route_echo),
    ("POST", r"/echo", route_echo),
    ("GET", r"/bytes", route_bytes),
    ("GET", r"/cond", route_cond),
    ("GET", r"/status/(\d{3})(?:/[^/]+)?", route_status),
    ("GET", r"/endless(?:/[^/]+)?", route_endless),
    ("GET", r"/huge(?:/[^/]+)?", route_huge),
    ("GET", r"/slow(?:/[^/]+)?", route_slow),
    ("GET", r"/redirect(?:/[^/]+)?", route_redirect),
    ("GET", r"/chain/(\d+)", route_chain),
    ("GET", r"/loop/(a|b)", route_loop),
    ("GET", r"/files/(.+)", route_file),
    ("GET", r"/_control/chan/site", control_chan_site),
    ("GET", r"/_control/chan/board", control_chan_board),
    ("GET", r"/_control/chan/recorded", control_chan_recorded),
    ("GET", r"/_control/chan/thread", control_chan_thread),
    ("GET", r"/_control/chan/fault", control_chan_fault),
    ("GET", r"/_control/chan/info", control_chan_info),
    ("GET", r"/_control/chan/counts", control_chan_counts),
    # image boards: last, so that a site never hides a route above
    ("GET", r"/([a-z0-9_-]+)/([A-Za-z0-9_-]+)/threads\.json", route_chan_threads),
    ("GET", r"/([a-z0-9_-]+)/([A-Za-z0-9_-]+)/thread/(\d+)\.json", route_chan_thread_4chan),
    ("GET", r"/([a-z0-9_-]+)/([A-Za-z0-9_-]+)/res/(\d+)\.json", route_chan_thread_vichan),
    ("GET", r"/([a-z0-9_-]+)/media/([A-Za-z0-9_-]+)/(\d+)(s?)\.[A-Za-z0-9]+", route_chan_file_4chan),
    ("GET", r"/([a-z0-9_-]+)/([A-Za-z0-9_-]+)/(src|thumb)/(\d+(?:-\d+)?)\.[A-Za-z0-9]+", route_chan_file_vichan),
    ("GET", r"/([a-z0-9_-]+)/.*", route_chan_other),
]


def load_plugins():
    """Sites of the other source kinds live in modules beside this file,
    fixture_<kind>.py, one a kind.  Each defines ROUTES like the table above
    (its own first path segment, e.g. /reddit/..., and /_control/<kind>/...)
    and may define setup(args), called with the parsed command line; a module
    may import this one ("import fixture_server as fs") for reply helpers,
    png_make and the request log.  Their routes go before the image boards'
    catch-all routes."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    sys.modules.setdefault("fixture_server", sys.modules[__name__])
    mods = []
    for name in sorted(os.listdir(here)):
        if name.startswith("fixture_") and name.endswith(".py") and name != "fixture_server.py":
            mods.append(__import__(name[:-3]))
    at = next(i for i, r in enumerate(ROUTES) if r[2].__name__.startswith("route_chan"))
    for mod in mods:
        ROUTES[at:at] = list(mod.ROUTES)
        at += len(mod.ROUTES)
    return mods


PLUGINS = load_plugins()
COMPILED = [(method, re.compile(pattern + r"\Z"), handler) for method, pattern, handler in ROUTES]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "imgfeed-fixture/1"
    # Headers and body leave in separate writes; with Nagle's algorithm the
    # body would wait for the client's delayed ACK (40 ms) on a kept-alive
    # connection.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        """A POST's body (at most 1 MiB) is in self.body for the handler."""
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > 1 << 20:
            self.entry = {"status": None, "path": self.path}
            self.reply(413, b"body too large\n")
            return
        self.body = self.rfile.read(n) if n else b""
        self.dispatch("POST")

    def dispatch(self, method):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.entry = {
            "t": time.time(),
            "mono": time.monotonic(),
            "method": method,
            "path": self.path,
            "route": parts.path,
            "headers": {k: v for k, v in self.headers.items()},
            "conn": "%s:%d" % self.client_address[:2],
            "status": None,
        }
        if not parts.path.startswith("/_control/"):
            STATE.record(self.entry)
        for m, pattern, handler in COMPILED:
            match = pattern.match(parts.path)
            if match and m == method:
                try:
                    handler(self, match, query)
                except (ValueError, KeyError) as e:
                    self.reply(400, ("bad request: %s\n" % e).encode())
                return
        self.reply(404, b"not found\n")

    def begin(self, code, content_type=None, headers=None):
        self.entry["status"] = code
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def reply(self, code, body, content_type="text/plain", headers=None):
        headers = dict(headers or {})
        if code != 304:
            headers["Content-Length"] = str(len(body))
        self.begin(code, content_type if code != 304 else None, headers)
        if body and code != 304 and self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, obj):
        self.reply(200, json.dumps(obj).encode(), "application/json")

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("fixture: %s\n" % (format % args))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops the SYNs of a burst of connections
    verbose = False
    files_dir = None

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def watch_parent(parent):
    """Exit when the process that started us is gone (a crashed test)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    parser = argparse.ArgumentParser(description="imgfeed's HTTP fixture server")
    parser.add_argument("--port-file", help="write the port here too")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (any of 127/8 works on Linux)")
    parser.add_argument("--files", help="directory served under /files/")
    parser.add_argument("--fixtures", default=DEFAULT_FIXTURES,
                        help="the recorded API responses (4chan/, vichan/) for /_control/chan/recorded")
    parser.add_argument("--chan-cache-mb", type=int, default=CHAN_CACHE_MB,
                        help="MB of rendered image-board threads kept (%d)" % CHAN_CACHE_MB)
    for mod in PLUGINS:
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(parser)
    args = parser.parse_args()
    for mod in PLUGINS:
        if hasattr(mod, "setup"):
            mod.setup(args)
    CHAN.fixtures_dir = args.fixtures
    CHAN.cache_max = args.chan_cache_mb << 20
    server = Server((args.host, 0), Handler)
    server.verbose = args.verbose
    server.files_dir = args.files
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
