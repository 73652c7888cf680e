#!/usr/bin/env python3
"""What an image archive (docker save's format, plain, gzipped or zstd) says, read
with Python's tarfile, independently of nixpush's reader: the image ID (the
sha256 of its config member, which `docker load` prints), the sha256 of each
layer member as it is (its diff_id when the member is an uncompressed tar),
the diff_ids its config lists, and its RepoTags.

Usage: python3 tests/oracle/archive_facts.py ARCHIVE   (prints one JSON object)
"""

import hashlib
import io
import json
import subprocess
import sys
import tarfile


def open_archive(path):
    """tarfile reads plain and gzipped archives; a zstd one goes through the zstd tool."""
    with open(path, "rb") as f:
        zstd = f.read(4) == b"\x28\xb5\x2f\xfd"
    if zstd:
        data = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        return tarfile.open(fileobj=io.BytesIO(data))
    return tarfile.open(path)


def main(path):
    with open_archive(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.extractfile(manifest["Config"]).read()
        layers = []
        for name in manifest["Layers"]:
            member = tar.getmember(name)
            while member.issym() or member.islnk():
                # skopeo's legacy `<id>/layer.tar` entries are links to `<hex>.tar`.
                target = member.linkname
                if member.issym():
                    target = "/".join(name.split("/")[:-1] + [target]).lstrip("/")
                    parts = []
                    for p in target.split("/"):
                        if p == "..":
                            parts.pop()
                        elif p not in ("", "."):
                            parts.append(p)
                    target = "/".join(parts)
                member = tar.getmember(target)
            layers.append("sha256:" + hashlib.sha256(tar.extractfile(member).read()).hexdigest())
    print(json.dumps({
        "image_id": "sha256:" + hashlib.sha256(config).hexdigest(),
        "layer_digests": layers,
        "diff_ids": json.loads(config)["rootfs"]["diff_ids"],
        "repo_tags": manifest.get("RepoTags") or [],
    }))


if __name__ == "__main__":
    main(sys.argv[1])
