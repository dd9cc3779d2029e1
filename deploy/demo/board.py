#!/usr/bin/env python3
"""board.py -- the image board that `deploy/quickstart.sh --demo` crawls.

It runs the test suite's fixture server (tests/support/fixture_server.py) as a
long-lived local site: one 4chan-like site with generated boards of real PNG
pictures, on 127.0.0.1 only.  Unlike the fixture server under a test, it does
not exit when the process that started it goes away, and it serves a fixed
port so that a restart keeps the URLs the crawler knows.

  board.py --port P --port-file F [--site demo] [--boards pics,art]
           [--threads 10] [--posts 20] [--tick 15] [--journal FILE]

Every --tick seconds (0: never) one thread gets one or two new posts, so that
the pipeline has something new to carry while you watch it (--max-ticks times,
about eight hours at the defaults).  Those additions
are appended to --journal and replayed when the board starts again: the
generated boards are deterministic, so a restarted board has the same posts
with the same numbers as before, and the crawler (which remembers what it
published) sends nothing twice.

The port file is written once the boards exist: its presence means ready.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "support"))

import fixture_server as fx  # noqa: E402


def control(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--port-file", required=True, help="written with the port once the boards are ready")
    p.add_argument("--site", default="demo")
    p.add_argument("--boards", default="pics,art")
    p.add_argument("--threads", type=int, default=10)
    p.add_argument("--posts", type=int, default=20)
    p.add_argument("--tick", type=float, default=15, help="seconds between new posts (0: none)")
    p.add_argument("--max-ticks", type=int, default=2000, help="additions in all, then the board stays as it is")
    p.add_argument("--journal", help="file of the posts added so far, replayed at start")
    args = p.parse_args()

    # The test log of every request is of no use here and would only grow.
    fx.STATE.record = lambda entry: None
    fx.CHAN.fixtures_dir = fx.DEFAULT_FIXTURES
    server = fx.Server(("127.0.0.1", args.port), fx.Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    boards = [b for b in args.boards.split(",") if b]
    control(port, "/_control/chan/site?name=%s&kind=4chan" % args.site)
    threads = {}
    for b in boards:
        control(port, "/_control/chan/board?site=%s&board=%s&threads=%d&posts=%d"
                % (args.site, b, args.threads, args.posts))
        info = control(port, "/_control/chan/info?site=%s&board=%s" % (args.site, b))
        threads[b] = [t["no"] for t in info["threads"]]

    def add(board, no, k):
        control(port, "/_control/chan/thread?site=%s&board=%s&no=%d&add=%d" % (args.site, board, no, k))

    ticks = 0
    if args.journal and os.path.exists(args.journal):
        with open(args.journal) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] in threads:
                    add(parts[0], int(parts[1]), int(parts[2]))
                    ticks += 1

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    sys.stdout.write("board.py: site %s on http://127.0.0.1:%d/%s/ boards %s, %d additions replayed\n"
                     % (args.site, port, args.site, ",".join(boards), ticks))
    sys.stdout.flush()

    while True:
        if args.tick <= 0 or not boards or ticks >= args.max_ticks:
            time.sleep(3600)
            continue
        time.sleep(args.tick)
        # Deterministic choice: the journal alone says what was added.
        board = boards[ticks % len(boards)]
        no = threads[board][(ticks * 7) % len(threads[board])]
        k = 1 + ticks % 2
        add(board, no, k)
        ticks += 1
        if args.journal:
            with open(args.journal, "a") as f:
                f.write("%s %d %d\n" % (board, no, k))


if __name__ == "__main__":
    main()
