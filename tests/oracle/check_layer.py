#!/usr/bin/env python3
"""Checks pushed layer blobs against the reference writer in layer_tar.py.

Reads each layer blob (gzip, or an uncompressed tar), finds which store paths it holds (in the
order their entries appear), writes the reference tar for those paths with
layer_tar.archive_paths_to, and prints one JSON object per blob, one per line, in the order
given ("expected" is null for a layer that holds no store path, such as the generated root
filesystem). One process checks them all: a hundred-layer image costs one Python start.

  {"diff_id": "sha256:<hex of the blob's uncompressed bytes>",
   "expected": "sha256:<hex of the reference tar>",
   "paths": ["/nix/store/...", ...]}

The caller asserts diff_id == expected (the bytes are exactly the reference
bytes) and that the paths of all layers together are the image's closure.

Usage: python3 tests/oracle/check_layer.py BLOB... [--mtime N --uid N --gid N --uname S --gname S]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layer_tar  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("blobs", nargs="+")
    parser.add_argument("--mtime", type=int, default=1)
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    parser.add_argument("--uname", default="root")
    parser.add_argument("--gname", default="root")
    args = parser.parse_args()
    for blob in args.blobs:
        print(json.dumps(check(blob, args)))
    return 0


def check(blob, args):
    """The findings for one blob."""
    with open(blob, "rb") as f:
        raw = f.read()
    # gzip layers are decompressed here; an uncompressed tar is read as it is.
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()

    paths = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar:
            parts = member.name.strip("/").split("/")
            if len(parts) >= 3 and parts[0] == "nix" and parts[1] == "store":
                top = "/nix/store/" + parts[2]
                if not paths or paths[-1] != top:
                    paths.append(top)

    expected = None
    if paths:
        writer = layer_tar.HashingWriter()
        layer_tar.archive_paths_to(writer, paths, args.mtime, args.uid,
                                   args.gid, args.uname, args.gname)
        expected = "sha256:" + writer.digest.hexdigest()
    return {"diff_id": diff_id, "expected": expected, "paths": paths}


if __name__ == "__main__":
    sys.exit(main())
