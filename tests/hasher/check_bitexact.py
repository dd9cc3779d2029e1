#!/usr/bin/python3
"""check_bitexact.py -- imgfeed-hasher's hashes against Python's imagehash, bit for bit.

Usage: check_bitexact.py IMGFEED_HASHER [--also HASHER]... [--keep DIR]

Builds the test image set (make_images.py) in a temporary directory, then for
hash sizes 8, 12 (the archive's) and 16 runs `imgfeed-hasher hash --hash-size N`
and the reference (imagehash_ref.py: imagehash's four functions under Debian's
Pillow, numpy, scipy and pywt) on every file, and compares every field the
reference gives: size, checksums, format, width, height, the four hashes in
both encodings and the colour summary (rgb_mean and brightness as their
three-decimal texts, which must be the same characters, and the 24 bins of
rgb_hist, against Pillow's ImageStat and histogram()).  A file Pillow
refuses must be refused by imgfeed too.  Each --also HASHER (the hasher built
on a test variant of the hash library: the portable code alone, AVX2 without
AVX-512 VNNI) is held to the same reference on the same files, so that every
code path a CPU may pick is checked on whatever machine runs the test.

The target is every bit equal on every image.  A difference that remains has
to be listed in KNOWN below, by file name, with its cause (docs/internals.md,
"Bit-identical to imagehash", lists the same); any other difference fails the test, and so does a KNOWN entry
that no longer differs, so the list stays true.

Must run under Debian's /usr/bin/python3 (it has Pillow, numpy, scipy, pywt).
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (8, 12, 16)
COLOUR_FIELDS = ("rgb_mean", "brightness", "rgb_hist")

# file name -> why it differs.  Empty: every image matches.
KNOWN = {}


def run_lines(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 1):
        sys.exit("%s failed with status %d:\n%s" % (cmd[0], proc.returncode, proc.stderr))
    out = {}
    for line in proc.stdout.splitlines():
        obj = json.loads(line, parse_float=str)  # numbers with decimals compared as written
        out[os.path.basename(obj["file"])] = obj
    return out


def compare(name, ours, ref):
    """The fields where OURS differs from REF, as 'field: ours != ref' strings."""
    if "error" in ref or "error" in ours:
        if ("error" in ref) != ("error" in ours):
            return ["error: ours %r, Pillow %r" % (ours.get("error"), ref.get("error"))]
        return []
    diffs = []
    for key, want in ref.items():
        if key == "file":
            continue
        got = ours.get(key)
        if got != want:
            diffs.append("%s: %r != %r" % (key, got, want))
    return diffs


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    hashers, keep = [args.pop(0)], None
    while args:
        opt = args.pop(0)
        if opt in ("--also", "--keep") and args:
            if opt == "--also":
                hashers.append(args.pop(0))
            else:
                keep = args.pop(0)
        else:
            sys.exit(__doc__)
    workdir = keep or tempfile.mkdtemp(prefix="imgfeed-bitexact.")
    subprocess.run([sys.executable, os.path.join(HERE, "make_images.py"), workdir], check=True)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(workdir) for f in fs)
    print("%d files in %s" % (len(files), workdir))

    unexpected, known_seen, compared, coloured = [], set(), 0, 0
    for size in SIZES:
        ref = run_lines([sys.executable, os.path.join(HERE, "imagehash_ref.py"),
                         "--hash-size", str(size)] + files)
        for hasher in hashers:
            ours = run_lines([hasher, "hash", "--hash-size", str(size)] + files)
            who = os.path.basename(hasher)
            for name in sorted(ref):
                if name not in ours:
                    unexpected.append("%s (size %d, %s): no output" % (name, size, who))
                    continue
                compared += 1
                if "error" not in ref[name]:
                    missing = [f for f in COLOUR_FIELDS if f not in ref[name]]
                    if missing:
                        sys.exit("the reference gave no %s for %s" % (", ".join(missing), name))
                    coloured += 1
                diffs = compare(name, ours[name], ref[name])
                if not diffs:
                    continue
                if name in KNOWN:
                    known_seen.add(name)
                    print("known difference, %s (size %d, %s): %s" % (name, size, who, KNOWN[name]))
                    continue
                for d in diffs:
                    unexpected.append("%s (size %d, %s): %s" % (name, size, who, d))

    stale = sorted(set(KNOWN) - known_seen)
    for name in stale:
        unexpected.append("%s is in KNOWN but now matches: remove it (and from docs/internals.md)" % name)
    print("%d comparisons (%d with the colour summary), %d unexpected differences, %d known"
          % (compared, coloured, len(unexpected), len(known_seen)))
    for line in unexpected:
        print("MISMATCH " + line)
    if not keep:
        subprocess.run(["rm", "-rf", workdir])
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
