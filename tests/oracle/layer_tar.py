#!/usr/bin/env python3
"""Reference writer for the bytes of one nixpush image layer.

This is the test oracle that pins layer bytes independently of nixpush's own
tar writer. nixpush builds layers itself (in Rust), and an image is only
reproducible if the same store paths always give byte-identical layer tars,
hence identical diff_ids and digests. Comparing nixpush against its own earlier
output would only catch changes, not mistakes; this script produces the
expected bytes a second, independent way: with Python's tarfile module, in the
same way nixpkgs' pkgs/build-support/docker/stream_layered_image.py
(`archive_paths_to`) writes the layers of dockerTools.streamLayeredImage. A
layer nixpush writes for a list of store paths must hash to what this prints.

The rules it follows:

* `tarfile.open(fileobj=..., mode="w|")`: stream mode, default (PAX) format,
  default encoding; the archive ends with two zero blocks and is padded to a
  multiple of tarfile.RECORDSIZE (10240 bytes).
* First two entries: directories "/nix/" and "/nix/store/" (mode 0o755; 0o555
  with --nix-dirs-mode 555, as nixpkgs wrote them from mid 2020 until its conf
  gained uid/gid in early 2024), with the mtime/uid/gid/uname/gname below
  applied to them too.
* Then for each store path, in the order given: a store path that is a symlink
  is just that entry; otherwise the path itself and everything below it
  (`path.glob("**/*")`, which does not descend into symlinked directories),
  sorted as pathlib.Path objects, i.e. component by component.
* Each entry comes from `tar.gettarinfo()` with its name made absolute again.
  A hard link (second and later names of an inode) becomes a regular file with
  its full content. mtime, uid, gid, uname and gname are overridden.

Usage:
  python3 tests/oracle/layer_tar.py [--mtime N] [--uid N] [--gid N]
      [--uname S] [--gname S] [--nix-dirs-mode OCTAL] [--out FILE] STORE_PATH...

Prints one line, `sha256:<hex>`: the digest of the whole uncompressed tar
(the layer's diff_id). With --out, the tar is also written to FILE.

Python 3.11, standard library only. The bytes depend on tarfile's and
pathlib's behaviour, so pinned digests assume the interpreter they were made
with.
"""

import argparse
import hashlib
import itertools
import pathlib
import sys
import tarfile


class HashingWriter:
    """A write-only stream that hashes everything and optionally copies it."""

    def __init__(self, out=None):
        self.digest = hashlib.sha256()
        self.out = out

    def write(self, data):
        self.digest.update(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)


def archive_paths_to(obj, paths, mtime, uid, gid, uname, gname, nix_dirs_mode=0o755):
    """Writes the layer tar for `paths` (store paths, in order) to `obj`."""

    def append_root(ti):
        # gettarinfo strips the leading "/"; layer entries are absolute.
        ti.name = "/" + ti.name
        return ti

    def apply_filters(ti):
        ti.mtime = mtime
        ti.uid = uid
        ti.gid = gid
        ti.uname = uname
        ti.gname = gname
        return ti

    def root_dir(name):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = nix_dirs_mode
        return ti

    with tarfile.open(fileobj=obj, mode="w|") as tar:
        tar.addfile(apply_filters(root_dir("/nix")))
        tar.addfile(apply_filters(root_dir("/nix/store")))

        for path in paths:
            path = pathlib.Path(path)
            if path.is_symlink():
                files = [path]
            else:
                files = itertools.chain([path], path.glob("**/*"))

            for filename in sorted(files):
                ti = append_root(tar.gettarinfo(filename))

                # Hard links are stored as regular files with their content.
                if ti.islnk():
                    ti.type = tarfile.REGTYPE
                    ti.linkname = ""
                    ti.size = filename.stat().st_size

                ti = apply_filters(ti)
                if ti.isfile():
                    with open(filename, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write the reference layer tar for store paths and print "
        "its sha256 (the layer's diff_id)."
    )
    parser.add_argument("--mtime", type=int, default=1,
                        help="mtime of every entry (default: 1)")
    parser.add_argument("--uid", type=int, default=0,
                        help="uid of every entry (default: 0)")
    parser.add_argument("--gid", type=int, default=0,
                        help="gid of every entry (default: 0)")
    parser.add_argument("--uname", default="root",
                        help="user name of every entry (default: root)")
    parser.add_argument("--gname", default="root",
                        help="group name of every entry (default: root)")
    parser.add_argument("--nix-dirs-mode", type=lambda s: int(s, 8), default=0o755,
                        help="mode of the /nix and /nix/store entries, octal (default: 755)")
    parser.add_argument("--out", metavar="FILE",
                        help="also write the uncompressed tar to FILE")
    parser.add_argument("paths", nargs="+", metavar="STORE_PATH",
                        help="store paths, in layer order")
    args = parser.parse_args(argv)

    for p in args.paths:
        if not pathlib.Path(p).is_absolute():
            parser.error(f"not an absolute store path: {p}")
        if not (pathlib.Path(p).exists() or pathlib.Path(p).is_symlink()):
            parser.error(f"no such store path: {p}")

    def write(out):
        writer = HashingWriter(out)
        archive_paths_to(writer, args.paths, args.mtime, args.uid, args.gid,
                         args.uname, args.gname, args.nix_dirs_mode)
        return writer.digest.hexdigest()

    if args.out is None:
        digest = write(None)
    else:
        with open(args.out, "wb") as out:
            digest = write(out)

    print(f"sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
