"""fixture_reddit.py -- reddit sites for the fixture server (fixture_server.py).

A site S lives under /reddit/S: its api base is http://<host>/reddit/S, so the
crawler's template {api}/r/{board}/new.json?limit=100&raw_json=1 reaches

  GET /reddit/S/r/B/new.json[?limit=N][&after=t3_X][&before=t3_X][&raw_json=1]
        a Listing of subreddit B, newest first, at most limit (25 by default,
        100 at most) t3 children: after= those older than X, before= the limit
        ones just newer than X; an X unknown or deleted answers an empty
        listing (reddit's before does that for a removed submission).
        data.after is the last child's name when older ones exist, data.before
        the first child's when newer ones exist, else null.  Without
        raw_json=1, & < > in strings are escaped as &amp; &lt; &gt;, as
        reddit does.  Subreddits "all" and "popular" of every site serve the
        recorded listings of --fixtures (reddit/r-all-new-limit100-2016.json,
        reddit/r-popular-hot-galleries.json) byte for byte to a request
        without after/before, and an empty listing to one with them.
  GET /reddit/S/i/NAME.png
        the picture of NAME (png_make of "reddit/S/NAME"): generated
        submissions, their gallery items and previews point here.

A generated subreddit is deterministic from its seed: submission k (0 the
oldest) has id base36(10^8 + seed * 10^5 + k), created a minute after k-1.
Of every submission, by a draw from (seed, k): about 30% are pictures
(url /reddit/S/i/<id>.png, a preview with & in its query), 15% galleries of
2-4 pictures (media_metadata "image/png", gallery_data in a shuffled order),
20% self posts with two links in selftext (markdown and bare, & in one),
the rest links elsewhere without preview; about 20% over_18, a few removed
("[removed]", removed_by_category).  The crawler's site takes
file_url = http://<host>/reddit/S/i/{tim}{ext} so gallery pictures come here.

Control API (a bad argument answers 400 with the reason):

  GET /_control/reddit/site?name=S[&ratelimit=N[&reset=W]]
        a new site S replacing any of that name; ratelimit=N: every answer has
        X-Ratelimit-Used, -Remaining and -Reset headers, for windows of W
        seconds (600) aligned on the clock holding N requests (ratelimit=1:
        600 a window, as reddit's).
        &oauth=ID:SECRET[&ttl=T]: app-only OAuth as reddit's: POST
        /reddit/S/api/v1/access_token with Basic ID:SECRET and
        grant_type=client_credentials answers {"access_token": "tok-N",
        "token_type": "bearer", "expires_in": T (3600)}; the listings then
        answer 401 unless "Authorization: bearer <a token not expired>".
        {"site", "api", "file_url"}
  GET /_control/reddit/revoke?site=S
        every token taken so far is refused from now on (401), as reddit
        does with a token it revoked before its expiry.  {"revoked": n}
  GET /_control/reddit/sub?site=S&sub=B[&n=N][&seed=K]
        generated subreddit B ([A-Za-z0-9_]+) of N (50) submissions, seed K (1).
        {"sub", "n", "newest"}
  GET /_control/reddit/add?site=S&sub=B[&n=K]
        K (1) new submissions on top.  {"added": [ids]}
  GET /_control/reddit/delete?site=S&sub=B&id=X
        submission X removed from the listing (before=t3_X answers empty).
  GET /_control/reddit/fault?site=S[&sub=B][&status=CODE][&retry_after=S]
                            [&body=html|half|types|huge][&entries=N][&count=N]
        the next N listing requests (all until cleared without count=) of S
        (of sub B only when given; a fault of B replaces the site's for B)
        answer CODE ("status CODE", Retry-After: S when given), or 200 with
        body: html (an HTML page), half (the first half of the real body),
        types (a Listing whose fields have the wrong types), huge (a Listing
        of entries= (10000) children).  Without status or body, the fault
        is cleared.
  GET /_control/reddit/expect?site=S&sub=B
        what a crawler should publish of B, deleted ones included:
        {"items": {id: {"urls": [...], "files": n, "over_18", "deleted"}}}
        (urls as the crawler makes them, with this request's Host)
  GET /_control/reddit/counts?site=S
        {"counts": {"<unix second>": n}, "by_status": {...}, "requests": n}
"""

import base64
import json
import random
import re
import threading
import time
import zlib

import fixture_server as fs

SITE_RE = re.compile(r"[a-z0-9_-]+\Z")
SUB_RE = re.compile(r"[A-Za-z0-9_]+\Z")
RECORDED = {"all": "reddit/r-all-new-limit100-2016.json", "popular": "reddit/r-popular-hot-galleries.json"}
LOCK = threading.Lock()
SITES = {}
FIXTURES = [fs.DEFAULT_FIXTURES]


def setup(args):
    if getattr(args, "fixtures", None):
        FIXTURES[0] = args.fixtures


def b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class Site:
    def __init__(self, name, ratelimit, window=600):
        self.name = name
        self.ratelimit = ratelimit  # requests a window; 0: no X-Ratelimit headers
        self.window = window
        self.oauth = None  # "id:secret" when the site wants OAuth
        self.ttl = 3600
        self.tokens = {}  # token -> expiry (time.time())
        self.unauthorized = 0
        self.window_at = None
        self.window_used = 0
        self.subs = {}
        self.counts = {}
        self.by_status = {}
        self.requests = 0
        self.faults = {}  # sub (None: every sub) -> fault
        self.recorded = {}


class Sub:
    def __init__(self, name, seed, n):
        self.name = name
        self.seed = seed
        self.n = 0
        self.deleted = set()
        self.t0 = int(time.time()) - 60 * n - 60
        self.add(n)

    def add(self, k):
        ids = [self.sid(i) for i in range(self.n, self.n + k)]
        self.n += k
        return ids

    def sid(self, k):
        return b36(10 ** 8 + self.seed * 10 ** 5 + k)

    def listed(self):
        """Indexes listed, newest first."""
        return [k for k in range(self.n - 1, -1, -1) if self.sid(k) not in self.deleted]


def draw(sub, k):
    r = random.Random("%d/%s/%d" % (sub.seed, sub.name, k))
    x = r.random()
    kind = "image" if x < 0.30 else "gallery" if x < 0.45 else "self" if x < 0.65 else "link"
    return r, kind


def submission(site, sub, k, base):
    """(data dict, expected urls, files) of submission k; base is http://host."""
    r, kind = draw(sub, k)
    sid = sub.sid(k)
    img = "%s/reddit/%s/i/" % (base, site.name)
    d = {"id": sid, "name": "t3_" + sid, "subreddit": sub.name, "title": "Submission %s <%d> & co" % (sid, k),
         "author": "user%d" % r.randrange(100), "created_utc": float(sub.t0 + 60 * k),
         "over_18": r.random() < 0.2, "is_self": kind == "self", "selftext": "", "score": r.randrange(1000),
         "permalink": "/r/%s/comments/%s/s/" % (sub.name, sid), "post_hint": None}
    urls, files = [], 0
    if kind == "image":
        d["url"] = img + sid + ".png"
        d["post_hint"] = "image"
        prev = img + sid + "p.png?width=640&s=" + b36(zlib.crc32(sid.encode()))
        d["preview"] = {"images": [{"source": {"url": prev, "width": 640, "height": 480}, "resolutions": []}],
                        "enabled": True}
        urls, files = [d["url"]], 1
    elif kind == "gallery":
        m = 2 + r.randrange(3)
        mids = ["%sm%d" % (sid, j) for j in range(m)]
        order = mids[:]
        r.shuffle(order)
        d["url"] = "https://www.reddit.com/gallery/" + sid
        d["is_gallery"] = True
        d["media_metadata"] = {mid: {"status": "valid", "e": "Image", "m": "image/png",
                                     "s": {"x": 640, "y": 480, "u": img + mid + ".png?width=640&s=1"}}
                               for mid in mids}
        d["gallery_data"] = {"items": [{"media_id": mid, "id": 1000 + j} for j, mid in enumerate(order)]}
        urls, files = [img + mid + ".png" for mid in order], m
    elif kind == "self":
        a = "https://example.org/%s/a?x=1&y=2" % sid
        b = "https://example.net/%s" % sid
        d["selftext"] = "Look at [this](%s) and %s, please." % (a, b)
        d["url"] = "https://www.reddit.com" + d["permalink"]
        urls = [a, b]
    else:
        d["url"] = "https://example.com/link/%s" % sid
    if r.random() < 0.05:
        d["removed_by_category"] = "moderator"
        if kind == "self":
            d["selftext"] = "[removed]"
            urls = []
    return d, urls, files


def escape(obj):
    """Reddit's escaping without raw_json=1: & < > in every string."""
    if isinstance(obj, str):
        return obj.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(obj, list):
        return [escape(v) for v in obj]
    if isinstance(obj, dict):
        return {k: escape(v) for k, v in obj.items()}
    return obj


def listing(children, after, before):
    return {"kind": "Listing", "data": {"after": after, "dist": len(children), "modhash": "", "geo_filter": "",
                                        "children": children, "before": before}}


def page(site, sub, query, base):
    limit = max(1, min(100, int(fs.arg(query, "limit", "25") or 25)))
    order = sub.listed()
    ids = [sub.sid(k) for k in order]
    after, before = fs.arg(query, "after"), fs.arg(query, "before")
    if after or before:
        cur = (after or before)[3:] if (after or before).startswith("t3_") else None
        if cur not in ids:
            return listing([], None, None)
        at = ids.index(cur)
        if after:
            lo, hi = at + 1, min(len(ids), at + 1 + limit)
        else:
            lo, hi = max(0, at - limit), at
    else:
        lo, hi = 0, min(len(ids), limit)
    chosen = order[lo:hi]
    children = [{"kind": "t3", "data": submission(site, sub, k, base)[0]} for k in chosen]
    out = listing(children, "t3_" + ids[hi - 1] if chosen and hi < len(ids) else None,
                  "t3_" + ids[lo] if chosen and lo > 0 else None)
    return out if fs.arg(query, "raw_json") == "1" else escape(out)


def recorded(site, name):
    body = site.recorded.get(name)
    if body is None:
        with open("%s/%s" % (FIXTURES[0], RECORDED[name]), "rb") as f:
            body = site.recorded[name] = f.read()
    return body


def fault_body(kind, entries, real):
    if kind == "html":
        return b"<!doctype html><html><body><h1>whoa there, pardner!</h1></body></html>", "text/html"
    if kind == "half":
        return real[: len(real) // 2], "application/json"
    if kind == "types":
        kids = [{"kind": "t3", "data": {"id": 12345, "url": {"no": 1}}},
                {"kind": "t3", "data": {"id": "typesok", "url": ["x"], "selftext": 7,
                                        "media_metadata": [], "gallery_data": {"items": 3},
                                        "preview": {"images": [{"source": {"url": 5}}]}}},
                {"kind": "t3", "data": "nope"}, 17]
        return json.dumps({"kind": "Listing", "data": {"after": 5, "before": [], "children": kids}}).encode(), \
            "application/json"
    kids = ",".join('{"kind":"t3","data":{"id":"h%s","url":"https://example.com/%d"}}' % (b36(i), i)
                    for i in range(entries))
    return ('{"kind":"Listing","data":{"after":null,"before":null,"children":[%s]}}' % kids).encode(), \
        "application/json"


def route_listing(req, match, query):
    name, subname = match.group(1), match.group(2)
    base = fs.host_base(req)
    with LOCK:
        site = SITES.get(name)
        if site is None:
            req.reply(404, b"not found\n")
            return
        second = int(req.entry["t"])
        site.counts[second] = site.counts.get(second, 0) + 1
        site.requests += 1
        if site.oauth:
            auth = req.headers.get("Authorization") or ""
            tok = auth[7:] if auth.lower().startswith("bearer ") else None
            if tok not in site.tokens or site.tokens[tok] < time.time():
                site.unauthorized += 1
                req.reply(401, b'{"message": "Unauthorized", "error": 401}', "application/json")
                return
        headers = {}
        if site.ratelimit:
            now = int(req.entry["t"])
            if site.window_at != now // site.window:
                site.window_at, site.window_used = now // site.window, 0
            site.window_used += 1
            headers = {"X-Ratelimit-Used": str(site.window_used),
                       "X-Ratelimit-Remaining": "%.1f" % max(0, site.ratelimit - site.window_used),
                       "X-Ratelimit-Reset": str(site.window - now % site.window)}
        fault = fs.take_fault(site.faults, subname, req.entry)
        sub = site.subs.get(subname)
        code, ctype = 200, "application/json; charset=UTF-8"
        if sub is not None:
            body = json.dumps(page(site, sub, query, base)).encode()
        elif subname in RECORDED:
            if fs.arg(query, "after") or fs.arg(query, "before"):
                body = json.dumps(listing([], None, None)).encode()
            else:
                body = recorded(site, subname)
        else:
            code, body, ctype = 404, b'{"message": "Not Found", "error": 404}', "application/json"
        failed = fs.status_fault(fault, headers)
        if failed:
            code, body, ctype = failed
        elif fault and fault["body"]:
            body, ctype = fault_body(fault["body"], fault["entries"], body)
        site.by_status[str(code)] = site.by_status.get(str(code), 0) + 1
    req.reply(code, body, ctype, headers)


def route_image(req, match, query):
    fs.reply_png(req, SITES, LOCK, match.group(1), "reddit/%s/%s" % (match.group(1), match.group(2)))


def need_site(query):
    return fs.control_need(SITES, query, "site", "site")


def need_sub(site, query):
    return fs.control_need(site.subs, query, "sub", "generated subreddit")


number = fs.control_number


control = fs.control_route(LOCK)


base_of = fs.host_base


@control
def control_site(req, query):
    name = fs.arg(query, "name") or ""
    if not SITE_RE.match(name):
        raise fs.ControlError("bad site name %r" % name)
    limit = int(fs.arg(query, "ratelimit") or 0)
    site = SITES[name] = Site(name, 600 if limit == 1 else limit, int(fs.arg(query, "reset") or 600))
    site.oauth = fs.arg(query, "oauth")
    site.ttl = int(fs.arg(query, "ttl") or 3600)
    api = "%s/reddit/%s" % (base_of(req), name)
    return {"site": name, "api": api, "file_url": api + "/i/{tim}{ext}"}


@control
def control_revoke(req, query):
    site = need_site(query)
    for tok in site.tokens:
        site.tokens[tok] = 0
    return {"revoked": len(site.tokens)}


@control
def control_sub(req, query):
    site = need_site(query)
    name = fs.arg(query, "sub") or ""
    if not SUB_RE.match(name) or name in RECORDED:
        raise fs.ControlError("bad subreddit name %r" % name)
    sub = Sub(name, number(query, "seed", 1, 0, 9999), number(query, "n", 50, 0, 90000))
    site.subs[name] = sub
    return {"sub": name, "n": sub.n, "newest": sub.sid(sub.n - 1) if sub.n else None}


@control
def control_add(req, query):
    sub = need_sub(need_site(query), query)
    return {"added": sub.add(number(query, "n", 1, 0, 10000))}


@control
def control_delete(req, query):
    sub = need_sub(need_site(query), query)
    sid = fs.arg(query, "id") or ""
    if sid not in [sub.sid(k) for k in range(sub.n)]:
        raise fs.ControlError("no submission %r" % sid)
    sub.deleted.add(sid)
    return {"deleted": sid}


@control
def control_fault(req, query):
    site = need_site(query)
    status = number(query, "status", 0, 0, 599)
    body = fs.arg(query, "body")
    if body not in (None, "html", "half", "types", "huge"):
        raise fs.ControlError("body must be html, half, types or huge")
    sub = fs.arg(query, "sub")
    if not status and not body:
        site.faults.pop(sub, None)
        return {"cleared": True}
    ra = fs.arg(query, "retry_after")
    fault = site.faults[sub] = {"sub": sub, "status": status, "body": body,
                  "retry_after": int(ra) if ra is not None else None,
                  "entries": number(query, "entries", 10000, 0, 200000),
                  "count": number(query, "count", None, 1, 1000000) if fs.arg(query, "count") else None}
    return {"fault": dict(fault)}


@control
def control_expect(req, query):
    site = need_site(query)
    sub = need_sub(site, query)
    items = {}
    for k in range(sub.n):
        d, urls, files = submission(site, sub, k, base_of(req))
        items[d["id"]] = {"urls": urls, "files": files, "over_18": d["over_18"],
                          "deleted": d["id"] in sub.deleted}
    return {"items": items}


@control
def control_counts(req, query):
    site = need_site(query)
    return {"counts": {str(k): v for k, v in sorted(site.counts.items())}, "by_status": dict(site.by_status),
            "requests": site.requests, "tokens": len(site.tokens), "unauthorized": site.unauthorized}


def route_token(req, match, query):
    """reddit's app-only OAuth: a token for the client's Basic credentials."""
    with LOCK:
        site = SITES.get(match.group(1))
        if site is None or not site.oauth:
            req.reply(404, b"not found\n")
            return
        auth = req.headers.get("Authorization") or ""
        want = "Basic " + base64.b64encode(site.oauth.encode()).decode()
        if auth != want or b"grant_type=client_credentials" not in getattr(req, "body", b""):
            req.reply(401, b'{"message": "Unauthorized", "error": 401}', "application/json")
            return
        tok = "tok-%d" % (len(site.tokens) + 1)
        site.tokens[tok] = time.time() + site.ttl
        body = json.dumps({"access_token": tok, "token_type": "bearer", "expires_in": site.ttl,
                           "scope": "*"}).encode()
    req.reply(200, body, "application/json")


ROUTES = [
    ("GET", r"/_control/reddit/site", control_site),
    ("GET", r"/_control/reddit/revoke", control_revoke),
    ("GET", r"/_control/reddit/sub", control_sub),
    ("GET", r"/_control/reddit/add", control_add),
    ("GET", r"/_control/reddit/delete", control_delete),
    ("GET", r"/_control/reddit/fault", control_fault),
    ("GET", r"/_control/reddit/expect", control_expect),
    ("GET", r"/_control/reddit/counts", control_counts),
    ("GET", r"/reddit/([a-z0-9_-]+)/r/([A-Za-z0-9_]+)/new\.json", route_listing),
    ("POST", r"/reddit/([a-z0-9_-]+)/api/v1/access_token", route_token),
    ("GET", r"/reddit/([a-z0-9_-]+)/i/([A-Za-z0-9_-]+)\.png", route_image),
]
