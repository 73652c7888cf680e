#!/usr/bin/env python3
"""Reference writer for the image config of a dockerTools image, as nixpkgs'
pkgs/build-support/docker/stream_layered_image.py writes it.

The config digest of a dockerTools image is the image ID `docker load` prints
for the tarball nixpkgs builds, so nixpush must push these very bytes. This
script derives them a second, independent way, in Python like nixpkgs itself,
from the conf.json alone:

* Layers, bottom first: a base image's (conf `from_image`: a docker-archive,
  gzipped or not; its manifest.json's first image, its layers zipped with its
  config's diff_ids), then one per `store_layers` entry (diff_id: the layer tar
  of layer_tar.py, under the conf's mtime/uid/gid/uname/gname, and with the
  /nix entries of mode 0o555 for a conf that has none of those keys, the shape
  nixpkgs had before 2024), then the customisation layer (its `checksum`).
* `created`: `datetime.fromisoformat(conf["created"]).isoformat()` (a trailing
  `Z` read as UTC, as Python 3.11 does); for a conf without mtime, files are
  dated `created`.
* Config: `config["Env"]` is the base's Env followed by the conf's, one entry
  per name at its first place with its last value (a dict), appended to
  `config` when the conf had none; nothing else of the base is kept.
* `json.dumps(image, indent=4)` of created, architecture, os ("linux"),
  config, rootfs (diff_ids, type), history (created, comment `store paths:`
  and the repr of the layer's paths; a base layer names its member).

Usage: python3 tests/oracle/nixpkgs_config.py CONF_JSON [--out FILE]
Prints `sha256:<hex>` of the config bytes (the image ID).
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layer_tar  # noqa: E402


def layer_diff_id(paths, mtime, uid, gid, uname, gname, nix_dirs_mode):
    writer = layer_tar.HashingWriter()
    layer_tar.archive_paths_to(writer, paths, mtime, uid, gid, uname, gname, nix_dirs_mode)
    return "sha256:" + writer.digest.hexdigest()


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("conf")
    p.add_argument("--out")
    args = p.parse_args(argv)
    with open(args.conf) as f:
        conf = json.load(f)

    created = parse_time(conf["created"])
    mtime = int(parse_time(conf.get("mtime", conf["created"])).timestamp())
    current = any(k in conf for k in ("uid", "gid", "uname", "gname", "mtime"))
    owner = (
        int(conf.get("uid", 0)),
        int(conf.get("gid", 0)),
        conf.get("uname", "root"),
        conf.get("gname", "root"),
    )
    nix_dirs_mode = 0o755 if current else 0o555

    diff_ids, comments = [], []
    config = conf["config"]
    if conf.get("from_image"):
        with tarfile.open(conf["from_image"]) as base:
            manifest = json.load(base.extractfile("manifest.json"))[0]
            base_config = json.load(base.extractfile(manifest["Config"]))
        for member, diff_id in zip(manifest["Layers"], base_config["rootfs"]["diff_ids"]):
            diff_ids.append(diff_id)
            comments.append([member])
        env = base_config.get("config", {}).get("Env", []) + config.get("Env", [])
        if env:
            config["Env"] = list({e.split("=", 1)[0]: e for e in env}.values())
    for paths in conf["store_layers"]:
        diff_ids.append(layer_diff_id(paths, mtime, *owner, nix_dirs_mode))
        comments.append(paths)
    with open(os.path.join(conf["customisation_layer"], "checksum")) as f:
        diff_ids.append("sha256:" + f.read().strip())
    comments.append([conf["customisation_layer"]])

    image = {
        "created": created.isoformat(),
        "architecture": conf["architecture"],
        "os": "linux",
        "config": config,
        "rootfs": {"diff_ids": diff_ids, "type": "layers"},
        "history": [
            {"created": created.isoformat(), "comment": f"store paths: {c}"} for c in comments
        ],
    }
    data = json.dumps(image, indent=4).encode("utf-8")
    if args.out:
        with open(args.out, "wb") as f:
            f.write(data)
    print("sha256:" + hashlib.sha256(data).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
