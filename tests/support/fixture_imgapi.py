"""fixture_imgapi.py -- random-image API sites for the fixture server
(fixture_server.py): kinds nekos_best, waifu_pics, waifu_im, catboys.

A site S of kind K lives under /imgapi/S: its api base is
http://<host>/imgapi/S, so each kind's default template reaches

  GET /imgapi/S/C?amount=N                      (nekos_best)
        {"results": [N entries {"artist_name", "artist_href", "source_url",
        "url", "dimensions"}]}
  POST /imgapi/S/many/sfw/C                     (waifu_pics)
        body {"exclude": [url, …]} (or none): {"files": [up to 30 urls]},
        pool images whose file name no excluded url has; [] once none is left
  GET /imgapi/S/images?IncludedTags=C&PageSize=N (waifu_im, the 2025 API)
        {"items": [N entries {"id", "url", "width", "height", "artists": [..],
        "tags": [{"slug": C}]}], "pageNumber": 1}
  GET /imgapi/S/C                               (catboys)
        {"url", "artist", "artist_url", "source_url", "error": "none"}
  GET /imgapi/S/i/NAME.png
        the picture of NAME (png_make of "imgapi/S/NAME").

A generated category C has a pool of n images (deterministic from its
seed); each answer is a random sample (without replacement inside one
answer) of min(N, n) of them, drawn from (seed, the category's request
number), so repeats across answers are the rule once most were seen.
Image k of C: file name "<seed>-C-<k>.png" (waifu_im: id seed*100000+k,
file "<id>.png").  Category "recorded" of a nekos_best site answers
nekos.best/doc-sample-neko-2023-2025.json, of a waifu_im site
waifu.im/doc-sample-search-200.json, byte for byte (from --fixtures).

Control API (a bad argument answers 400 with the reason):

  GET /_control/imgapi/site?name=S&kind=K     a new site.  {"site", "api"}
  GET /_control/imgapi/cat?site=S&cat=C[&n=N][&seed=K][&nsfw=1]
        generated category C of N (30) images, seed K (1); nsfw=1: waifu_im
        entries say "isNsfw": true.
  GET /_control/imgapi/cat?site=S&cat=C&dir=/abs/path[&nsfw=1]
        category C whose pool is the given pictures, the files of that folder
        (read again by a new request: a grown folder grows the pool), sorted
        by name, served byte for byte at /imgapi/S/i/<file name> (names
        [A-Za-z0-9_.-], unique within the site; waifu_im: <digits>.<ext>, the
        digits its id).  Answer k of AMOUNT holds pool entries k*AMOUNT ...
        (k+1)*AMOUNT-1, modulo the pool, at most the pool once: the whole pool
        when AMOUNT covers it.  Entries carry the files' real width and
        height.  With dir=, C may be any name of 1 to 64 bytes without '/',
        '.', '#', '*', '%' or control characters (spaces, UTF-8: what a crawler
        accepts as a board name); the API routes take it percent-encoded.
  GET /_control/imgapi/fault?site=S[&cat=C][&status=CODE][&retry_after=S]
                            [&body=html|types|huge|badurl][&count=N]
        the next N answers (all until cleared) of S (of C only when given)
        answer CODE, or 200 with body html (an HTML page), types (entries of
        the wrong types), huge (10000 entries), badurl (url not a string).
        Without status or body the fault is cleared.
  GET /_control/imgapi/expect?site=S&cat=C
        {"items": {"<_id>": "<url>"}}: every pool image, urls with this Host.
  GET /_control/imgapi/counts?site=S[&cat=C]
        {"counts": {"<unix second>": n}, "by_status": {...}, "requests": n,
         "by_cat": {C: n}, "excludes": {C: [the length of each exclude list]}}
"""

import json
import random
import re
import threading

import fixture_server as fs

KINDS = ("nekos_best", "waifu_pics", "waifu_im", "catboys")
SITE_RE = re.compile(r"[a-z0-9_-]+\Z")
CAT_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
GIVEN_CAT_RE = re.compile(r"[^/.#*%\x00-\x1f\x7f]+\Z")
RECORDED = {"nekos_best": "nekos.best/doc-sample-neko-2023-2025.json",
            "waifu_im": "waifu.im/doc-sample-search-200.json"}
LOCK = threading.Lock()
SITES = {}
FIXTURES = [fs.DEFAULT_FIXTURES]


def setup(args):
    if getattr(args, "fixtures", None):
        FIXTURES[0] = args.fixtures


class Site:
    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.cats = {}
        self.counts, self.by_status, self.by_cat = {}, {}, {}
        self.requests = 0
        self.faults = {}
        self.files = {}  # file name -> path of the given pictures of its categories


class Cat:
    def __init__(self, name, seed, n, nsfw=False, files=None):
        self.name, self.seed, self.n = name, seed, n
        self.nsfw = nsfw
        self.files = files  # given pictures: [(name, path)], or None (generated)
        self.asked = 0
        self.excludes = []  # waifu_pics: the length of each request's exclude list


def image(site, cat, k, base):
    """(_id, entry) of image k."""
    img = "%s/imgapi/%s/i/" % (base, site.name)
    r = random.Random("%d/%s/%d" % (cat.seed, cat.name, k))
    w, h = 100 + r.randrange(900), 100 + r.randrange(900)
    if site.kind == "waifu_im":
        iid = cat.seed * 100000 + k
        url = img + "%d.png" % iid
        return str(iid), {"id": iid, "url": url, "width": w, "height": h, "isNsfw": cat.nsfw,
                          "source": "https://example.org/art/%d" % iid,
                          "artists": [{"id": r.randrange(1000), "name": "artist %d" % r.randrange(50)}],
                          "tags": [{"id": 1, "name": cat.name, "slug": cat.name}]}
    fname = "%d-%s-%d.png" % (cat.seed, cat.name, k)
    url = img + fname
    if site.kind == "nekos_best":
        return fname, {"artist_name": "artist %d" % r.randrange(50), "artist_href": "https://example.org/u/%d" % k,
                       "source_url": "https://example.org/a/%d" % k, "url": url,
                       "dimensions": {"width": w, "height": h}}
    if site.kind == "catboys":
        return fname, {"url": url, "artist": "artist %d" % r.randrange(50), "artist_url": "none",
                       "source_url": "none", "error": "none"}
    return fname, {"url": url}


def given_image(site, cat, name, path, base):
    """(_id, entry) of the given picture NAME of CAT (the file at PATH)."""
    url = "%s/imgapi/%s/i/%s" % (base, site.name, name)
    got = fs.given_read(path)
    w, h = (got[1], got[2]) if got else (0, 0)
    stem = name.split(".", 1)[0]
    if site.kind == "waifu_im":
        iid = int(stem)
        return str(iid), {"id": iid, "url": url, "width": w, "height": h, "isNsfw": cat.nsfw,
                          "source": "https://example.org/art/%d" % iid,
                          "artists": [{"id": iid % 1000, "name": "artist %d" % (iid % 50)}],
                          "tags": [{"id": 1, "name": cat.name, "slug": cat.name}]}
    if site.kind == "nekos_best":
        return name, {"artist_name": "artist %s" % stem, "artist_href": "https://example.org/u/%s" % stem,
                      "source_url": "https://example.org/a/%s" % stem, "url": url,
                      "dimensions": {"width": w, "height": h}}
    if site.kind == "catboys":
        return name, {"url": url, "artist": "artist %s" % stem, "artist_url": "none", "source_url": "none",
                      "error": "none"}
    return name, {"url": url}


def answer(site, cat, amount, base, exclude):
    """A random answer of AMOUNT images of CAT, none whose _id is in EXCLUDE
    (given pictures: the next AMOUNT of the pool, in order)."""
    if cat.files is not None:
        n = len(cat.files)
        ks = [(cat.asked * amount + i) % n for i in range(min(amount + len(exclude), n))]
        cat.asked += 1
        entries = [e for iid, e in (given_image(site, cat, cat.files[k][0], cat.files[k][1], base) for k in ks)
                   if iid not in exclude][:amount]
    else:
        r = random.Random("%d/%s/ask%d" % (cat.seed, cat.name, cat.asked))
        cat.asked += 1
        ks = r.sample(range(cat.n), min(amount + len(exclude), cat.n))
        entries = [e for iid, e in (image(site, cat, k, base) for k in ks) if iid not in exclude][:amount]
    if site.kind == "nekos_best":
        return {"results": entries}
    if site.kind == "waifu_im":
        return {"items": entries, "pageNumber": 1, "totalPages": 1, "totalCount": len(entries)}
    if site.kind == "waifu_pics":
        return {"files": [e["url"] for e in entries]}
    return entries[0]


def exclude_of(req):
    """The file names of a waifu_pics POST's exclude list; None when the body is not one."""
    body = getattr(req, "body", b"") or b"{}"
    try:
        ex = json.loads(body).get("exclude", [])
    except (ValueError, AttributeError):
        return None
    if not isinstance(ex, list) or not all(isinstance(u, str) for u in ex):
        return None
    return {u.rsplit("/", 1)[-1] for u in ex}


def fault_body(kind, which):
    if which == "html":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", "text/html"
    key = {"nekos_best": "results", "waifu_im": "items"}.get(kind)
    if which == "types":
        obj = {key: [1, "x", None]} if key else {"url": 5}
    elif which == "badurl":
        obj = {key: [{"url": ["https://x/a.png"], "id": 1}]} if key else {"url": {"a": 1}}
    else:  # huge
        ents = [{"url": "https://h/%d.png" % i, "id": i} for i in range(10000)]
        obj = {key: ents} if key else {"files": [e["url"] for e in ents]}
    return json.dumps(obj).encode(), "application/json"


def route_api(req, match, query):
    name, rest = match.group(1), fs.unquote(match.group(2))
    base = fs.host_base(req)
    with LOCK:
        site = SITES.get(name)
        if site is None:
            req.reply(404, b"not found\n")
            return
        catname, amount, exclude = None, 1, set()
        if site.kind == "waifu_im":
            if rest == "images":
                catname = fs.arg(query, "IncludedTags")
                amount = int(fs.arg(query, "PageSize", "1") or 1)
        elif site.kind == "waifu_pics":
            if rest.startswith("many/sfw/") and req.command == "POST":
                catname, amount, exclude = rest[9:], 30, exclude_of(req)
                if exclude is None:
                    req.reply(400, b'{"message": "exclude must be a list of urls"}', "application/json")
                    return
        else:
            catname = rest
            if site.kind == "nekos_best":
                amount = int(fs.arg(query, "amount", "1") or 1)
        amount = max(1, min(amount, 100))
        second = int(req.entry["t"])
        site.counts[second] = site.counts.get(second, 0) + 1
        site.requests += 1
        site.by_cat[catname or ""] = site.by_cat.get(catname or "", 0) + 1
        fault = fs.take_fault(site.faults, catname, req.entry)
        headers = {}
        code, ctype = 200, "application/json"
        cat = site.cats.get(catname or "")
        if cat is not None:
            if site.kind == "waifu_pics":
                cat.excludes.append(len(exclude))
            body = json.dumps(answer(site, cat, amount, base, exclude)).encode()
        elif catname == "recorded" and site.kind in RECORDED:
            with open("%s/%s" % (FIXTURES[0], RECORDED[site.kind]), "rb") as f:
                body = f.read()
        else:
            code, body = 404, b'{"error": "not found"}'
        failed = fs.status_fault(fault, headers)
        if failed:
            code, body, ctype = failed
        elif fault and fault["body"]:
            body, ctype = fault_body(site.kind, fault["body"])
        site.by_status[str(code)] = site.by_status.get(str(code), 0) + 1
    req.reply(code, body, ctype, headers)


def route_image(req, match, query):
    with LOCK:
        site = SITES.get(match.group(1))
        path = site.files.get(match.group(2) + ".png") if site else None
    if path is not None:
        route_given(req, match, query)
        return
    fs.reply_png(req, SITES, LOCK, match.group(1), "imgapi/%s/%s" % (match.group(1), match.group(2)))


def route_given(req, match, query):
    """A given picture of a site, byte for byte."""
    name = match.group(2) if match.group(2).find(".") >= 0 else match.group(2) + ".png"
    with LOCK:
        site = SITES.get(match.group(1))
        path = site.files.get(name) if site else None
    got = fs.given_read(path) if path else None
    if got is None:
        req.reply(404, b"not found\n")
        return
    req.reply(200, got[0], got[3])


def need_site(query):
    return fs.control_need(SITES, query, "site", "site")


number = fs.control_number


control = fs.control_route(LOCK)


@control
def control_site(req, query):
    name, kind = fs.arg(query, "name") or "", fs.arg(query, "kind") or ""
    if not SITE_RE.match(name):
        raise fs.ControlError("bad site name")
    if kind not in KINDS:
        raise fs.ControlError("kind must be one of %s" % ", ".join(KINDS))
    SITES[name] = Site(name, kind)
    return {"site": name, "api": "%s/imgapi/%s" % (fs.host_base(req), name)}


@control
def control_cat(req, query):
    site = need_site(query)
    name = fs.arg(query, "cat") or ""
    folder = fs.arg(query, "dir")
    nsfw = fs.arg(query, "nsfw") == "1"
    if folder is None:
        if not CAT_RE.match(name):
            raise fs.ControlError("bad category name")
        site.cats[name] = Cat(name, number(query, "seed", 1, 0, 9999), number(query, "n", 30, 1, 100000), nsfw)
        return {"cat": name, "n": site.cats[name].n}
    if not GIVEN_CAT_RE.match(name) or len(name.encode()) > 64:
        raise fs.ControlError("bad category name")
    files = fs.given_files(folder)
    if not files:
        raise fs.ControlError("no files in %s" % folder)
    for fname, path in files:
        if site.kind == "waifu_im" and not re.match(r"[0-9]{1,15}\.", fname):
            raise fs.ControlError("waifu_im pictures are named <digits>.<ext>, not %r" % fname)
        if site.files.get(fname, path) != path:
            raise fs.ControlError("file name %r is given twice on site %s" % (fname, site.name))
    for fname, path in files:
        site.files[fname] = path
    site.cats[name] = Cat(name, 0, len(files), nsfw, files)
    return {"cat": name, "n": len(files), "files": [fname for fname, _ in files]}


@control
def control_fault(req, query):
    site = need_site(query)
    status, body = number(query, "status", None, 100, 599), fs.arg(query, "body")
    if body not in (None, "html", "types", "huge", "badurl"):
        raise fs.ControlError("body must be html, types, huge or badurl")
    cat = fs.arg(query, "cat")
    if status is None and body is None:
        site.faults.pop(cat, None)
        return {"cleared": True}
    site.faults[cat] = {"status": status, "body": body,
                        "retry_after": number(query, "retry_after", None, 0, 86400),
                        "count": number(query, "count", None, 1, 1000000)}
    return {"fault": True}


@control
def control_expect(req, query):
    site = need_site(query)
    cat = site.cats.get(fs.arg(query, "cat") or "")
    if cat is None:
        raise fs.ControlError("no generated category")
    base = fs.host_base(req)
    items = {}
    for k in range(cat.n):
        if cat.files is not None:
            iid, e = given_image(site, cat, cat.files[k][0], cat.files[k][1], base)
        else:
            iid, e = image(site, cat, k, base)
        items[iid] = e["url"]
    return {"items": items}


@control
def control_counts(req, query):
    site = need_site(query)
    return {"counts": {str(k): v for k, v in sorted(site.counts.items())}, "by_status": dict(site.by_status),
            "requests": site.requests, "by_cat": dict(site.by_cat),
            "excludes": {name: list(cat.excludes) for name, cat in site.cats.items()}}


ROUTES = [
    ("GET", r"/_control/imgapi/site", control_site),
    ("GET", r"/_control/imgapi/cat", control_cat),
    ("GET", r"/_control/imgapi/fault", control_fault),
    ("GET", r"/_control/imgapi/expect", control_expect),
    ("GET", r"/_control/imgapi/counts", control_counts),
    ("GET", r"/imgapi/([a-z0-9_-]+)/i/([A-Za-z0-9_-]+)\.png", route_image),
    ("GET", r"/imgapi/([a-z0-9_-]+)/i/([A-Za-z0-9_-][A-Za-z0-9_.-]*)", route_given),
    ("GET", r"/imgapi/([a-z0-9_-]+)/([A-Za-z0-9_-]+)", route_api),
    ("POST", r"/imgapi/([a-z0-9_-]+)/(many/sfw/[A-Za-z0-9_-]+)", route_api),
    # categories of given pictures with other characters, percent-encoded
    ("GET", r"/imgapi/([a-z0-9_-]+)/((?:[A-Za-z0-9_~!$&'()+,;=:@-]|%[0-9A-Fa-f]{2})+)", route_api),
]
