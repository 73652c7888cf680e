#!/usr/bin/env python3
"""Checks one pushed layer blob against the reference writer in layer_tar.py.

Reads a layer blob (gzip, or an uncompressed tar), finds which store paths it holds (in the
order their entries appear), writes the reference tar for those paths with
layer_tar.archive_paths_to, and prints one JSON object ("expected" is null for
a layer that holds no store path, such as the generated root filesystem):

  {"diff_id": "sha256:<hex of the blob's uncompressed bytes>",
   "expected": "sha256:<hex of the reference tar>",
   "paths": ["/nix/store/...", ...]}

The caller asserts diff_id == expected (the bytes are exactly the reference
bytes) and that the paths of all layers together are the image's closure.

Usage: python3 tests/oracle/check_layer.py BLOB [--mtime N --uid N --gid N --uname S --gname S]
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
    parser.add_argument("blob")
    parser.add_argument("--mtime", type=int, default=1)
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    parser.add_argument("--uname", default="root")
    parser.add_argument("--gname", default="root")
    args = parser.parse_args()

    with open(args.blob, "rb") as f:
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
    print(json.dumps({"diff_id": diff_id, "expected": expected, "paths": paths}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
