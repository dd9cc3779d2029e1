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
                                      "headers", "conn", "status", ...}]}
  GET /_control/counts[?prefix=/p]  {"counts": {"<unix second>": n, ...}}
  GET /_control/bytes?key=k         {"key", "done", "bytes"} of a /endless or /huge stream
  GET /_control/reset               forget the log, counters and byte counts
  GET /_control/ping                {"ok": true}

Resources:
  /ok                               200 "ok\\n"
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
  /files/NAME                       200 with the bytes of file NAME of --files DIR, 404 if none

/slow, /huge, /endless, /redirect and /status/CODE also answer with a file name
appended (/slow/x.jpg, /status/404/a.png): the hasher downloads only URLs whose
path ends in a picture or video extension.
"""

import argparse
import email.utils
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


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


def arg(query, name, default=None):
    values = query.get(name)
    return values[0] if values else default


# --- resources ---


def route_ok(req, match, query):
    req.reply(200, b"ok\n")


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
    req.reply(200, body, "application/octet-stream")


def route_loop(req, match, query):
    req.reply(302, b"", headers={"Location": "/loop/" + ("b" if match.group(1) == "a" else "a")})


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
]
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
    args = parser.parse_args()
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
