"""fixture_lynxchan.py -- LynxChan sites for the fixture server (fixture_server.py).

A site S lives under /lynxchan/S: its api base is http://<host>/lynxchan/S, so
the crawler's templates {api}/{board}/catalog.json and
{api}/{board}/res/{no}.json reach

  GET /lynxchan/S/B/catalog.json
        an array of thread objects (threadId, subject, message, markdown,
        postCount: replies, fileCount, page, locked, pinned, cyclic, autoSage,
        lastBump: the ISO date of the newest post), newest bump first, with
        Last-Modified (the board's latest change); 304 to an
        If-Modified-Since at or after it.
  GET /lynxchan/S/B/res/N.json
        the thread object: the OP's fields, files[] ({originalName, path
        "/.media/<hash>.png", thumb, mime, size, width, height}) and posts[]
        (postId, creation, name, message, markdown, files[]), with
        Last-Modified (the thread's latest change) and 304 as above; 404
        (an HTML page, as LynxChan answers) for a deleted or unknown thread.
  GET /lynxchan/S/.media/NAME
        a PNG (png_make of "lynxchan/S/NAME"), whatever NAME's extension.

A generated board is deterministic from its seed: thread k (0 the oldest) has
the OP and posts-1 replies; ids are consecutive from seed * 100000 + 1, the OP
first.  The OP has one file; of the replies, by a draw from (seed, board, id),
about 30% have one file and 10% two; about 20% have a link
https://example.org/<id>?a=1&b=2 in message and as an <a href> in markdown
(the same URL: it must appear once), and every reply quotes the OP with a
relative quote link (no URL).  Board "polru" of a recorded site serves
lynxchan/endchan-polru-thread-867082-trimmed.json byte for byte as thread
867082, listed in a generated catalog (lastBump: its newest post).

Control API (a bad argument answers 400 with the reason):

  GET /_control/lynxchan/site?name=S            a new empty site S.  {"site", "api"}
  GET /_control/lynxchan/recorded?name=S        a site S with the recorded board polru.
  GET /_control/lynxchan/board?site=S&board=B[&threads=T][&posts=P][&seed=N]
        generated board B ([A-Za-z0-9_-]+) of T (5) threads of P (10) posts.
        {"board", "threads": [ids]}
  GET /_control/lynxchan/thread?site=S&board=B&no=N[&add=K][&sage=1][&delete=1]
        K new replies to thread N (sage=1: they do not change lastBump, only
        postCount), or the thread deleted (404, out of the catalog).  Each
        change takes a stamp max(now, last + 1) of the board's clock.
        {"no", "added": [ids], "deleted"}
  GET /_control/lynxchan/fault?site=S[&path=P][&status=CODE][&retry_after=S]
                              [&body=html|half|types|huge|badurl][&count=N]
        the next N requests (all until cleared, without status and body) of S
        whose path under /lynxchan/S starts with P (default: every catalog
        and thread) answer CODE ("status CODE", Retry-After: S when given),
        or 200 with: html (an HTML page), half (the first half of the real
        body), types (threadId strings, files not an array), huge (a catalog
        of 10,000 copies of the board's first thread; a thread: 10,000
        replies without postId), badurl (the real body with every files[].path
        replaced by a number: no file URL may be published).
  GET /_control/lynxchan/expect?site=S&board=B
        {"items": {"<board>.<id>": {"type", "urls", "files", "deleted"}}} of every
        generated thread, deleted ones too, URLs as the crawler makes them with
        this request's Host.
  GET /_control/lynxchan/counts?site=S
        {"counts": {"<unix second>": n}, "by_status": {...}, "requests": n}
"""

import email.utils
import json
import random
import re
import threading
import time

import fixture_server as fs

SITE_RE = re.compile(r"[a-z0-9_-]+\Z")
BOARD_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
RECORDED_FILE = "lynxchan/endchan-polru-thread-867082-trimmed.json"
LOCK = threading.Lock()
SITES = {}
FIXTURES = [fs.DEFAULT_FIXTURES]
NOT_FOUND = b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>"


def setup(args):
    if getattr(args, "fixtures", None):
        FIXTURES[0] = args.fixtures


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"


def parse_iso(s):
    return email.utils.mktime_tz(email.utils.parsedate_tz(time.strftime(
        "%a, %d %b %Y %H:%M:%S GMT", time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))))


class Site:
    def __init__(self, name):
        self.name = name
        self.boards = {}
        self.counts = {}
        self.by_status = {}
        self.requests = 0
        self.faults = []


class Board:
    def __init__(self, name, seed):
        self.name = name
        self.seed = seed
        self.next_id = seed * 100000 + 1
        self.threads = {}  # id -> Thread
        self.clock = 0
        self.stamp = 0

    def tick(self):
        self.clock = max(int(time.time()), self.clock + 1)
        self.stamp = self.clock
        return self.clock


class Thread:
    def __init__(self, tid):
        self.id = tid
        self.posts = []  # (id, creation unix s, sage)
        self.stamp = 0
        self.deleted = False
        self.recorded = None  # bytes of a recorded thread
        self.bump = 0
        self.nposts = 0
        self.nfiles = 0


def draw(board, pid):
    r = random.Random("%d/%s/%d" % (board.seed, board.name, pid))
    x = r.random()
    nfiles = 1 if x < 0.3 else 2 if x < 0.4 else 0
    link = r.random() < 0.2
    return nfiles, link


def post_files(site, board, pid, op, base):
    nfiles = 1 if op else draw(board, pid)[0]
    files, urls = [], []
    for j in range(nfiles):
        h = "%032x" % (pid * 7919 + j * 104729)
        path = "/.media/%s-imagepng.png" % h
        files.append({"originalName": "pic%d_%d.png" % (pid, j), "path": path, "thumb": "/.media/t_" + h,
                      "mime": "image/png", "size": 1000 + pid % 997, "width": 64, "height": 48})
        urls.append("%s/lynxchan/%s%s" % (base, site.name, path))
    return files, urls


def post_text(board, tid, pid, op):
    link = (not op) and draw(board, pid)[1]
    url = "https://example.org/%d?a=1&b=2" % pid
    if op:
        return "Thread %d & <co>" % pid, "Thread %d &amp; &lt;co&gt;" % pid, []
    msg = ">>%d reply %d" % (tid, pid)
    md = '<a class="quoteLink" href="/%s/res/%d.html#%d">&gt;&gt;%d</a> reply %d' % (board.name, tid, tid, tid, pid)
    if link:
        msg += " see " + url
        md += ' see <a href="%s">%s</a>' % (url.replace("&", "&amp;"), url.replace("&", "&amp;"))
    return msg, md, [url] if link else []


def thread_obj(site, board, th, base):
    """(object, {item id: expect}) of a generated thread."""
    expect = {}
    pid0, t0, _ = th.posts[0]
    files, urls = post_files(site, board, pid0, True, base)
    msg, md, links = post_text(board, th.id, pid0, True)
    obj = {"signedRole": None, "id": "%06x" % (pid0 % 0xffffff), "name": "Anonymous", "email": None,
           "boardUri": board.name, "threadId": th.id, "subject": "Subject %d" % th.id, "markdown": md,
           "message": msg, "creation": iso(t0), "locked": False, "pinned": False, "cyclic": False,
           "autoSage": False, "files": files, "posts": []}
    expect["%s.%d" % (board.name, th.id)] = {"type": "thread", "urls": urls + links, "files": len(urls)}
    for pid, t, _ in th.posts[1:]:
        files, urls = post_files(site, board, pid, False, base)
        msg, md, links = post_text(board, th.id, pid, False)
        obj["posts"].append({"name": "Anonymous", "signedRole": None, "email": None, "id": None, "subject": None,
                             "markdown": md, "message": msg, "creation": iso(t), "files": files, "postId": pid})
        expect["%s.%d" % (board.name, pid)] = {"type": "post", "urls": urls + links, "files": len(urls)}
    return obj, expect


def refresh(th):
    th.nposts = len(th.posts) - 1
    th.bump = max([t for _, t, sage in th.posts if not sage] or [th.posts[0][1]])


def add_posts(board, th, k, t, sage=False):
    ids = []
    for _ in range(k):
        ids.append(board.next_id)
        th.posts.append((board.next_id, t, sage))
        board.next_id += 1
    refresh(th)
    return ids


def make_board(name, seed, nthreads, nposts):
    b = Board(name, seed)
    now = int(time.time())
    t = now - 60 - nthreads * nposts * 5
    for _ in range(nthreads):
        th = Thread(b.next_id)
        for _ in range(nposts):
            th.posts.append((b.next_id, t, False))
            b.next_id += 1
            t += 5
        refresh(th)
        th.stamp = t
        b.threads[th.id] = th
    b.clock = b.stamp = t
    return b


def recorded_board():
    with open("%s/%s" % (FIXTURES[0], RECORDED_FILE), "rb") as f:
        body = f.read()
    d = json.loads(body)
    b = Board("polru", 0)
    th = Thread(d["threadId"])
    th.recorded = body
    th.posts = [(d["threadId"], parse_iso(d["creation"]), False)] + \
        [(p["postId"], parse_iso(p["creation"]), False) for p in d["posts"]]
    refresh(th)
    th.nfiles = len(d["files"]) + sum(len(p["files"]) for p in d["posts"])
    th.stamp = th.bump
    b.threads[th.id] = th
    b.clock = b.stamp = th.stamp
    return b


def catalog(board):
    live = sorted((th for th in board.threads.values() if not th.deleted), key=lambda th: (-th.bump, -th.id))
    out = []
    for i, th in enumerate(live):
        out.append({"message": "thread %d" % th.id, "threadId": th.id, "postCount": th.nposts,
                    "fileCount": th.nfiles or None, "page": 1 + i // 10, "subject": "Subject %d" % th.id,
                    "locked": False, "pinned": False, "cyclic": False, "autoSage": False,
                    "lastBump": iso(th.bump), "thumb": None, "mime": None})
    return out


def fresh(req, stamp):
    ims = req.headers.get("If-Modified-Since")
    if not ims:
        return False
    parsed = email.utils.parsedate_tz(ims)
    return parsed is not None and email.utils.mktime_tz(parsed) >= stamp


def fault_for(site, path):
    for f in site.faults:
        if path.startswith(f["path"]):
            if f["count"] is not None:
                f["count"] -= 1
                if f["count"] <= 0:
                    site.faults.remove(f)
            return f
    return None


def strip_paths(obj):
    for f in obj.get("files") or []:
        f["path"] = 12345
    for p in obj.get("posts") or []:
        strip_paths(p)
    return obj


def fault_body(kind, real, is_catalog, board):
    if kind == "html":
        return b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
    if kind == "half":
        return real[: len(real) // 2], "application/json"
    if kind == "types":
        if is_catalog:
            return json.dumps([{"threadId": "1", "lastBump": 5}, {"threadId": [2]}]).encode(), "application/json"
        return json.dumps({"threadId": 1, "files": "x", "posts": [{"postId": "2"}]}).encode(), "application/json"
    if kind == "huge":
        if is_catalog:
            first = catalog(board)[:1] or [{"threadId": 1}]
            return ("[" + ",".join([json.dumps(first[0])] * 10000) + "]").encode(), "application/json"
        return ('{"threadId": 1, "posts": [' + ",".join(['{"message": "x"}'] * 10000) + "]}").encode(), \
            "application/json"
    return json.dumps(strip_paths(json.loads(real))).encode(), "application/json"


def route_doc(req, match, query):
    name, bname, rest = match.group(1), match.group(2), match.group(3)
    base = fs.host_base(req)
    headers = {}
    with LOCK:
        site = SITES.get(name)
        if site is None:
            req.reply(404, NOT_FOUND, "text/html")
            return
        second = int(req.entry["t"])
        site.counts[second] = site.counts.get(second, 0) + 1
        site.requests += 1
        board = site.boards.get(bname)
        is_catalog = rest == "catalog.json"
        code, body, ctype, stamp = 404, NOT_FOUND, "text/html", None
        if board is not None and is_catalog:
            code, body, ctype, stamp = 200, json.dumps(catalog(board)).encode(), "application/json", board.stamp
        elif board is not None:
            th = board.threads.get(int(rest[4:-5]))
            if th is not None and not th.deleted:
                stamp = th.stamp
                body = th.recorded if th.recorded is not None else \
                    json.dumps(thread_obj(site, board, th, base)[0], ensure_ascii=False).encode()
                code, ctype = 200, "application/json"
        fault = fault_for(site, "/%s/%s" % (bname, rest))
        if fault:
            req.entry["fault"] = {k: fault[k] for k in ("status", "retry_after", "body") if fault[k]}
        if fault and fault["status"]:
            code, body, ctype = fault["status"], ("status %d\n" % fault["status"]).encode(), "text/plain"
            if fault["retry_after"] is not None:
                headers["Retry-After"] = str(fault["retry_after"])
        elif fault and fault["body"] and code == 200:
            body, ctype = fault_body(fault["body"], body, is_catalog, board)
        elif code == 200:
            headers["Last-Modified"] = email.utils.formatdate(stamp, usegmt=True)
            if fresh(req, stamp):
                code, body = 304, b""
        site.by_status[str(code)] = site.by_status.get(str(code), 0) + 1
    req.reply(code, body, ctype, headers)


def route_media(req, match, query):
    fs.reply_png(req, SITES, LOCK, match.group(1), "lynxchan/%s/%s" % (match.group(1), match.group(2)),
                 NOT_FOUND, "text/html")


def need_site(query):
    return fs.control_need(SITES, query, "site", "site")


def need_board(site, query):
    return fs.control_need(site.boards, query, "board", "board")


number = fs.control_number


control = fs.control_route(LOCK)


base_of = fs.host_base


def new_site(req, query):
    name = fs.arg(query, "name") or ""
    if not SITE_RE.match(name):
        raise fs.ControlError("bad site name %r" % name)
    SITES[name] = Site(name)
    return SITES[name], {"site": name, "api": "%s/lynxchan/%s" % (base_of(req), name)}


@control
def control_site(req, query):
    return new_site(req, query)[1]


@control
def control_recorded(req, query):
    site, out = new_site(req, query)
    site.boards["polru"] = recorded_board()
    return out


@control
def control_board(req, query):
    site = need_site(query)
    name = fs.arg(query, "board") or ""
    if not BOARD_RE.match(name):
        raise fs.ControlError("bad board name %r" % name)
    b = make_board(name, number(query, "seed", 1, 0, 9999), number(query, "threads", 5, 0, 10000),
                   number(query, "posts", 10, 1, 10000))
    site.boards[name] = b
    return {"board": name, "threads": sorted(b.threads)}


@control
def control_thread(req, query):
    board = need_board(need_site(query), query)
    th = board.threads.get(number(query, "no", 0, 0, 10 ** 12))
    if th is None:
        raise fs.ControlError("no thread %r" % fs.arg(query, "no"))
    stamp = board.tick()
    th.stamp = stamp
    out = {"no": th.id, "added": [], "deleted": False}
    if fs.arg(query, "delete") == "1":
        th.deleted = True
        out["deleted"] = True
    elif th.recorded is not None:
        raise fs.ControlError("a recorded thread can only be deleted")
    else:
        out["added"] = add_posts(board, th, number(query, "add", 1, 0, 10000), stamp, fs.arg(query, "sage") == "1")
    return out


@control
def control_fault(req, query):
    site = need_site(query)
    status = number(query, "status", 0, 0, 599)
    body = fs.arg(query, "body")
    if body not in (None, "html", "half", "types", "huge", "badurl"):
        raise fs.ControlError("body must be html, half, types, huge or badurl")
    path = fs.arg(query, "path") or "/"
    if not status and not body:
        site.faults = [f for f in site.faults if f["path"] != path]
        return {"cleared": True}
    ra = fs.arg(query, "retry_after")
    fault = {"path": path, "status": status, "body": body, "retry_after": int(ra) if ra is not None else None,
             "count": number(query, "count", None, 1, 1000000) if fs.arg(query, "count") else None}
    site.faults.insert(0, fault)
    return {"fault": dict(fault)}


@control
def control_expect(req, query):
    site = need_site(query)
    board = need_board(site, query)
    items = {}
    for th in board.threads.values():
        if th.recorded is not None:
            continue
        for k, v in thread_obj(site, board, th, base_of(req))[1].items():
            v["deleted"] = th.deleted
            items[k] = v
    return {"items": items}


@control
def control_counts(req, query):
    site = need_site(query)
    return {"counts": {str(k): v for k, v in sorted(site.counts.items())}, "by_status": dict(site.by_status),
            "requests": site.requests}


ROUTES = [
    ("GET", r"/_control/lynxchan/site", control_site),
    ("GET", r"/_control/lynxchan/recorded", control_recorded),
    ("GET", r"/_control/lynxchan/board", control_board),
    ("GET", r"/_control/lynxchan/thread", control_thread),
    ("GET", r"/_control/lynxchan/fault", control_fault),
    ("GET", r"/_control/lynxchan/expect", control_expect),
    ("GET", r"/_control/lynxchan/counts", control_counts),
    ("GET", r"/lynxchan/([a-z0-9_-]+)/\.media/([A-Za-z0-9_.-]+)", route_media),
    ("GET", r"/lynxchan/([a-z0-9_-]+)/([A-Za-z0-9_-]+)/(catalog\.json|res/[0-9]{1,15}\.json)", route_doc),
]
