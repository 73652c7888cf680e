#!/usr/bin/env python3
"""Two nixpush binaries side by side on the same pushes: what a change of build settings (the
release profile, a dependency's optimisation) costs a push. Each shape is pushed by both
binaries, alternating (A, B, A, B, ...), each push to a fresh registry from an empty cache;
prints the medians and the ratio B/A.

Usage: python3 bench/binaries.py A B [--runs 5]   (A, B: nixpush binaries; run via `make`'s Nix
environment, as bench.py is: NIX_REMOTE=local NIX_CONF_DIR=fixtures)

Shapes: the cold push of bench.py (500 MiB, 101 paths, gzip), the same with zstd, the
60,000-file layer (gzip), the unchanged re-push (the keyring lookup, the argument parser and
the manifest comparison; no blob moves), and a publish from a binary cache (a 300 MiB closure
of two store paths as zstd NARs in a `file://` cache, not in the local store: each NAR read,
decompressed, hashed and checked as it streams).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the registry, the Nix environment and the timer)
import from_cache  # noqa: E402  (signing keys, deleting a closure from the local store)


def push(binary, installable, env, host, extra, cache=None):
    own = cache or tempfile.mkdtemp(prefix="nixpush-bench-cache-")
    t, _, _ = bench.nixpush([f"{host}/ab/app:v1", *extra], env, own, binary=binary,
                            installable=installable)
    return t, own


def shape_runs(binary, shape, env):
    installable, extra, repush = shape
    reg = bench.Registry()
    cache = None
    try:
        t, cache = push(binary, installable, env, reg.host, extra)
        if repush:
            t, _ = push(binary, installable, env, reg.host, extra, cache)
        return t
    finally:
        reg.stop()
        if cache:
            shutil.rmtree(cache, ignore_errors=True)


def binary_cache(work):
    """A signed zstd `file://` cache holding a 300 MiB closure that the local store does not:
    returns (its top store path, the arguments that publish it from the cache)."""
    nix_env = bench.nix_env()
    secret, public = from_cache.keys(work, nix_env)
    cache = os.path.join(work, "cache")
    # A size and variant no other benchmark builds: these paths are deleted.
    top = from_cache.zstd_file_cache(bench.build_with, bench.bench_env(1, 300, 2), nix_env,
                                     secret, cache)
    return top, ["--substituter", f"file://{cache}", "--trusted-public-key", public,
                 "--system", "x86_64-linux"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = bench.bench_env(100, 500, 0)
    bench.build_with(env)
    small = bench.nix_env()
    subprocess.run(["nix", "build", "--no-link", bench.SMALLFILES], env=small, check=True)
    shapes = {
        "cold push, 500 MiB, 101 paths, gzip": (bench.BENCH_FLAKE, [], False),
        "cold push, 500 MiB, 101 paths, zstd": (bench.BENCH_FLAKE, ["--compression", "zstd"], False),
        "60,000 small files, gzip": (bench.SMALLFILES, [], False),
        "unchanged re-push": (bench.BENCH_FLAKE, [], True),
    }
    work = tempfile.mkdtemp(prefix="nixpush-bench-binaries-")
    cached, substitute = binary_cache(work)
    shapes["publish from a binary cache, 300 MiB, zstd NARs"] = (cached, substitute, False)
    print(f"A = {args.a}\nB = {args.b}\n{args.runs} runs each, alternating; medians")
    print(f"| shape | A | B | B/A |\n| --- | --- | --- | --- |")
    for name, shape in shapes.items():
        e = env if shape[0] == bench.BENCH_FLAKE else small
        times = {"a": [], "b": []}
        for _ in range(args.runs):
            for which in ("a", "b"):
                times[which].append(shape_runs(getattr(args, which), shape, e))
        a, b = bench.median(times["a"]), bench.median(times["b"])
        print(f"| {name} | {a:.3f} s | {b:.3f} s | {b / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
