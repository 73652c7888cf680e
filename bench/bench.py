#!/usr/bin/env python3
"""nixpush benchmark: times whole-process pushes against local docker-registry instances and
prints each result as a median of several runs and as a ratio to a baseline run in the same
invocation.

Measured (see docs/benchmarks.md):
  1. cold push of a synthetic closure (N store paths, half random, half text) to a fresh
     registry, against the baseline a user has today: the same layers written uncompressed as an
     OCI layout on disk (Python tarfile, as dockerTools' stream script writes them), then
     `skopeo copy` to the registry (skopeo compresses on the fly);
  2. re-push of the unchanged image from an empty local cache (a fresh CI runner): time, requests,
     store files opened (traced with strace; must be 0);
  3. push of the next version, which changes only the top store path (a fleet update): time,
     layers and bytes uploaded;
  4. peak RSS of the nixpush process (VmHWM, sampled from /proc) for a 1 GiB and a 4 GiB image;
  5. push of a dockerTools.buildImage-shaped archive (a gzipped docker-archive in the store, two
     layers, half random, half text) against `skopeo copy docker-archive:` of the same archive
     uncompressed (Debian's skopeo 1.9 reads no gzipped docker-archive);
  6. the floor: each cold push also as a ratio to the registry's own ingest of the same blob
     bytes (read back from the registry, then one monolithic PUT per blob by curl, as many at once
     as nixpush's jobs, to a fresh registry);
  7. one big layer of 60,000 small text files (a site-packages shape), gzip against
     `--compression none`, and against its floor;
  8. an unchanged re-push (same machine, the tag already naming the image) against the Nix
     queries it needs, run by hand in the same run: `nix build --json`, the closure query
     (`nix path-info --json --recursive`) and `nix flake metadata`;
  9. publishing from a binary cache (bench/from_cache.py): nixpush STORE_PATH --substituter
     against `nix copy --from` the cache followed by a local push, the NAR bytes of an unchanged
     re-push from the cache, and peak RSS for a 1 GiB path from the cache;
 10. a fleet update (bench/fleet.py): the bytes a node with partial pulls on downloads of a
     50 MB layer rebuilt with one file changed, zstd:chunked against gzip.

Usage: python3 bench/bench.py [--runs 3] [--paths 100] [--mib 500] [--rss-sizes 1024,4096]
                              [--archive-mib 200] [--smallfiles 1] [--cache-mib 300]
                              [--cache-rss-mib 1024] [--only cache|fleet]
Run through `make bench`, which sets the offline Nix configuration.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "oracle"))
sys.path.insert(0, os.path.join(REPO, "fixtures", "demo"))
import layer_tar  # noqa: E402
import make_archive  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402
import from_cache  # noqa: E402

NIXPUSH = os.path.join(REPO, "target", "release", "nixpush")
BENCH_FLAKE = f"path:{REPO}/bench#default"
SMALLFILES = f"path:{REPO}/bench#smallfiles"
# nixpush's default --jobs: twice the cores, 4 to 8; the floor uploads as many blobs at once.
JOBS = min(8, max(4, 2 * (os.cpu_count() or 1)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A fresh docker-registry on a free loopback port, with its own storage."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nixpush-bench-registry-")
        self.port = free_port()
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\nlog:\n  level: warn\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n"
            )
        self.log_path = os.path.join(self.dir, "registry.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", config], stdout=self.log, stderr=self.log
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("docker-registry did not start")

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def requests(self, agent="nixpush/"):
        with open(self.log_path) as f:
            return sum(1 for line in f if agent in line and '" ' in line and "HTTP/1.1" in line)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def nix_env(extra=None):
    env = dict(os.environ)
    env.setdefault("NIX_REMOTE", "local")
    env.setdefault("NIX_CONF_DIR", os.path.join(REPO, "fixtures"))
    env.update(extra or {})
    return env


def bench_env(paths, mib, variant):
    return nix_env({
        "NIXPUSH_BENCH_PATHS": str(paths),
        "NIXPUSH_BENCH_MIB": str(mib),
        "NIXPUSH_BENCH_VARIANT": str(variant),
    })


def timed(cmd, env, sample_rss=False):
    """Runs cmd; returns (seconds, peak RSS in KiB or None, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = None
    if sample_rss:
        status = f"/proc/{proc.pid}/status"
        while proc.poll() is None:
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak or 0, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.02)
    out, err = proc.communicate()
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(err.decode())
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return elapsed, peak, out.decode()


def nixpush(args, env, cache_dir, sample_rss=False, trace=None, binary=NIXPUSH,
            installable=BENCH_FLAKE):
    env = with_cache(env, cache_dir)
    cmd = [binary, "-q", installable] + args + ["--", "--impure"]
    if trace:
        cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace] + cmd
    return timed(cmd, env, sample_rss)


def build(paths, mib, variant):
    """Builds the benchmark closure; returns (seconds spent in nix, closure paths)."""
    env = bench_env(paths, mib, variant)
    t0 = time.monotonic()
    out = subprocess.run(
        ["nix", "build", "--no-link", "--json", "--impure", BENCH_FLAKE],
        env=env, check=True, stdout=subprocess.PIPE,
    ).stdout
    top = json.loads(out)[0]["outputs"]["out"]
    closure = subprocess.run(
        ["nix", "path-info", "--recursive", top], env=env, check=True, stdout=subprocess.PIPE
    ).stdout.decode().split()
    return time.monotonic() - t0, closure


def build_with(env):
    """Builds the benchmark closure `env` describes; returns (seconds, closure paths)."""
    return build(int(env["NIXPUSH_BENCH_PATHS"]), int(env["NIXPUSH_BENCH_MIB"]),
                 env["NIXPUSH_BENCH_VARIANT"])


def with_cache(env, cache_dir):
    env = dict(env)
    env["NIXPUSH_CACHE_DIR"] = cache_dir
    env["DOCKER_CONFIG"] = cache_dir
    return env


def planned_layers(env, host):
    """The store paths of each layer of nixpush's plan (from --dry-run)."""
    _, _, out = timed([NIXPUSH, "-q", "--dry-run", BENCH_FLAKE, f"{host}/plan/x", "--", "--impure"], env)
    layers, current = [], None
    for line in out.splitlines():
        if line.startswith("layer "):
            current = []
            layers.append(current)
        elif line.startswith("  /nix/store/") and current is not None:
            current.append(line.strip())
    return [l for l in layers if l]


def write_oci_layout(layers, directory):
    """The baseline's first step: every layer as an uncompressed tar in an OCI layout."""
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data_or_writer):
        tmp = os.path.join(directory, "tmp")
        with open(tmp, "wb") as f:
            writer = layer_tar.HashingWriter(f)
            if isinstance(data_or_writer, bytes):
                writer.write(data_or_writer)
            else:
                data_or_writer(writer)
        digest = writer.digest.hexdigest()
        os.rename(tmp, os.path.join(blobs, digest))
        return "sha256:" + digest, os.path.getsize(os.path.join(blobs, digest))

    descriptors = []
    for paths in layers:
        digest, size = put(lambda w, p=paths: layer_tar.archive_paths_to(w, p, 1, 0, 0, "root", "root"))
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
    }).encode()
    cdigest, csize = put(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
        "layers": descriptors,
    }).encode()
    mdigest, msize = put(manifest)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)


def baseline(layers, host):
    """Write the OCI layout, then skopeo copy it; returns (total, write, copy) seconds."""
    work = tempfile.mkdtemp(prefix="nixpush-bench-layout-")
    try:
        t0 = time.monotonic()
        write_oci_layout(layers, os.path.join(work, "layout"))
        t1 = time.monotonic()
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
             f"oci:{work}/layout:bench", f"docker://{host}/base/app:v1"],
            check=True,
        )
        t2 = time.monotonic()
        return t2 - t0, t1 - t0, t2 - t1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def manifest_layers(host, repo, tag):
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repo}:{tag}"],
        check=True, stdout=subprocess.PIPE,
    ).stdout
    m = json.loads(out)
    return {l["digest"]: l["size"] for l in m["layers"]}, m["config"]["size"]


def archive_fixture(mib, work):
    """A buildImage-shaped `.tar.gz` of two layers (random bytes, text) added to the store, and
    the same archive uncompressed (for skopeo). Returns (store path, plain archive path)."""
    half = mib * 1024 * 1024 // 2
    random_dir = os.path.join(work, "random")
    text_dir = os.path.join(work, "text")
    os.makedirs(random_dir)
    os.makedirs(text_dir)
    with open(os.path.join(random_dir, "random.bin"), "wb") as f:
        f.write(os.urandom(half))
    with open(os.path.join(text_dir, "text.txt"), "wb") as f:
        line = b"compressible text of the benchmark archive %09d\n"
        n = 0
        while f.tell() < half:
            f.write(line % n)
            n += 1
    gz = os.path.join(work, f"bench-archive-{mib}m.tar.gz")
    args = argparse.Namespace(out=gz, name_tag="bench/archive:v1", env=[], cmd=None,
                              arch="amd64", layers=[random_dir, text_dir])
    make_archive.buildimage(args)
    store = subprocess.run(["nix-store", "--add", gz], env=nix_env(), check=True,
                           capture_output=True, text=True).stdout.strip()
    plain = os.path.join(work, "plain.tar")
    with open(plain, "wb") as out:
        subprocess.run(["gzip", "-dc", gz], stdout=out, check=True)
    return store, plain


def bench_archive(mib, runs):
    """Medians of (nixpush, skopeo) pushing the archive to a fresh registry each time."""
    work = tempfile.mkdtemp(prefix="nixpush-bench-archive-")
    try:
        store, plain = archive_fixture(mib, work)
        ours, theirs = [], []
        for _ in range(runs):
            reg = Registry()
            cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            try:
                env = nix_env({"NIXPUSH_CACHE_DIR": cache, "DOCKER_CONFIG": cache})
                t, _, _ = timed([NIXPUSH, "-q", store, f"{reg.host}/bench/archive:v1"], env)
                ours.append(t)
            finally:
                reg.stop()
                shutil.rmtree(cache, ignore_errors=True)
            reg = Registry()
            try:
                t, _, _ = timed(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                 f"docker-archive:{plain}", f"docker://{reg.host}/bench/archive:v1"],
                                nix_env())
                theirs.append(t)
            finally:
                reg.stop()
        return median(ours), median(theirs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def big_layer(manifest):
    """The digest and size of a manifest's largest layer."""
    layers = json.loads(manifest)["layers"]
    largest = max(layers, key=lambda l: l["size"])
    return largest["digest"], largest["size"]


def median(values):
    return statistics.median(values)


def fetch_blobs(host, repo, tag, work):
    """The image's blobs (layers and config) read back from the registry into files."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repo}:{tag}"],
        check=True, stdout=subprocess.PIPE,
    ).stdout
    m = json.loads(out)
    files = []
    for d in m["layers"] + [m["config"]]:
        path = os.path.join(work, d["digest"].split(":")[1])
        subprocess.run(["curl", "-sf", "-o", path, f"http://{host}/v2/{repo}/blobs/{d['digest']}"],
                       check=True)
        files.append((d["digest"], path))
    return files


def ingest_floor(files):
    """Seconds the registry takes to ingest `files` when handed them whole: one monolithic PUT
    per blob by curl (`-T`, streamed from the file), JOBS at once, to a fresh registry."""
    import concurrent.futures
    import urllib.request
    reg = Registry()
    try:
        def put(item):
            digest, path = item
            req = urllib.request.Request(f"http://{reg.host}/v2/floor/app/blobs/uploads/",
                                         data=b"", method="POST")
            with urllib.request.urlopen(req) as r:
                location = r.headers["Location"]
            sep = "&" if "?" in location else "?"
            subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-T", path,
                            "-H", "Content-Type: application/octet-stream",
                            f"{location}{sep}digest={digest}"], check=True)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
            list(pool.map(put, files))
        return time.monotonic() - t0
    finally:
        reg.stop()


def floor_of(host, repo, tag):
    """The ingest floor of the image under host/repo:tag."""
    work = tempfile.mkdtemp(prefix="nixpush-bench-floor-")
    try:
        return ingest_floor(fetch_blobs(host, repo, tag, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def nix_queries(env):
    """Seconds of the Nix queries an unchanged re-push needs, run one after another."""
    t0 = time.monotonic()
    out = subprocess.run(["nix", "build", "--no-link", "--json", "--impure", BENCH_FLAKE],
                         env=env, check=True, stdout=subprocess.PIPE).stdout
    top = json.loads(out)[0]["outputs"]["out"]
    subprocess.run(["nix", "path-info", "--json", "--recursive", top], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["nix", "flake", "metadata", "--json", f"path:{REPO}/bench"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def bench_smallfiles(runs):
    """Medians of (gzip push, --compression none push, gzip floor) of the 60k-file path."""
    subprocess.run(["nix", "build", "--no-link", SMALLFILES], env=nix_env(), check=True)
    gzip, none, floor = [], [], []
    for _ in range(runs):
        for compression, times in (("gzip", gzip), ("none", none)):
            reg = Registry()
            cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            try:
                env = nix_env({"NIXPUSH_CACHE_DIR": cache, "DOCKER_CONFIG": cache})
                t, _, _ = timed([NIXPUSH, "-q", SMALLFILES, f"{reg.host}/small/app:v1",
                                 "--compression", compression], env)
                times.append(t)
                if compression == "gzip":
                    floor.append(floor_of(reg.host, "small/app", "v1"))
            finally:
                reg.stop()
                shutil.rmtree(cache, ignore_errors=True)
    return median(gzip), median(none), median(floor)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--paths", type=int, default=100)
    ap.add_argument("--mib", type=int, default=500)
    ap.add_argument("--rss-sizes", default="1024,4096")
    ap.add_argument("--archive-mib", type=int, default=200)
    ap.add_argument("--smallfiles", type=int, default=1, help="0 skips the 60k-file shape")
    ap.add_argument("--cache-mib", type=int, default=300,
                    help="size of the closure published from a binary cache; 0 skips it")
    ap.add_argument("--cache-rss-mib", type=int, default=1024)
    ap.add_argument("--only", choices=["cache", "fleet"],
                    help="run only the binary cache rows, or only the fleet row")
    args = ap.parse_args()
    for tool in ("nix", "docker-registry", "skopeo", "strace", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed: run `make setup`")

    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}, {os.uname().sysname} {os.uname().release}")
    if args.only == "cache":
        bench_cache_only(args)
        return
    if args.only == "fleet":
        print()
        print("| measure | zstd:chunked | gzip | ratio |")
        print("| --- | --- | --- | --- |")
        print_fleet_row(fleet.bench_fleet(cache_context(args)))
        return
    nix_time, closure = build(args.paths, args.mib, 1)
    build(args.paths, args.mib, 2)
    # The part spent in nix on a push: evaluating, building (already built) and path-info.
    nix_warm, _ = build(args.paths, args.mib, 1)
    env1 = bench_env(args.paths, args.mib, 1)
    env2 = bench_env(args.paths, args.mib, 2)
    layers = planned_layers(env1, "127.0.0.1:1")
    print(f"closure: {len(closure)} store paths, {args.mib} MiB, {len(layers)} store layers; "
          f"nix eval+build+path-info (warm): {nix_warm:.2f} s")

    cold, cold_floor, base, base_write, base_copy = [], [], [], [], []
    unchanged, queries = [], []
    repush, repush_requests, update, update_layers, update_bytes = [], [], [], [], []
    for run in range(args.runs):
        reg = Registry()
        cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
        try:
            t, _, _ = nixpush([f"{reg.host}/bench/app:v1"], env1, cache)
            cold.append(t)
            cold_floor.append(floor_of(reg.host, "bench/app", "v1"))
            # The same machine again: the tag already names the image.
            t, _, _ = nixpush([f"{reg.host}/bench/app:v1"], env1, cache)
            unchanged.append(t)
            queries.append(nix_queries(env1))
            before = reg.requests()
            fresh = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            t, _, _ = nixpush([f"{reg.host}/bench/app:v1"], env1, fresh)
            repush.append(t)
            repush_requests.append(reg.requests() - before)
            shutil.rmtree(fresh)
            v1_layers, _ = manifest_layers(reg.host, "bench/app", "v1")
            t, _, _ = nixpush([f"{reg.host}/bench/app:v2"], env2, cache)
            update.append(t)
            v2_layers, v2_config = manifest_layers(reg.host, "bench/app", "v2")
            new = {d: s for d, s in v2_layers.items() if d not in v1_layers}
            update_layers.append(len(new))
            update_bytes.append(sum(new.values()) + v2_config)
        finally:
            reg.stop()
            shutil.rmtree(cache, ignore_errors=True)
        reg = Registry()
        try:
            total, write, copy = baseline(layers, reg.host)
            base.append(total)
            base_write.append(write)
            base_copy.append(copy)
        finally:
            reg.stop()
        print(f"run {run + 1}: cold {cold[-1]:.2f} s, baseline {base[-1]:.2f} s, "
              f"re-push {repush[-1]:.3f} s, update {update[-1]:.2f} s", file=sys.stderr)

    # Store files opened by an unchanged re-push from an empty cache (traced once).
    reg = Registry()
    cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
    fresh = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
    try:
        nixpush([f"{reg.host}/bench/app:v1"], env1, cache)
        trace = os.path.join(fresh, "opens")
        nixpush([f"{reg.host}/bench/app:v1"], env1, fresh, trace=trace)
        with open(trace) as f:
            opened = sum(1 for line in f if any(f'"{p}/' in line or f'"{p}"' in line for p in closure))
    finally:
        reg.stop()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(fresh, ignore_errors=True)

    rss = []
    for size in [int(s) for s in args.rss_sizes.split(",") if s]:
        build(args.paths, size, 1)
        reg = Registry()
        cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
        try:
            t, peak, _ = nixpush([f"{reg.host}/rss/app:v1"], bench_env(args.paths, size, 1), cache, sample_rss=True)
            rss.append((size, peak, t))
        finally:
            reg.stop()
            shutil.rmtree(cache, ignore_errors=True)

    archive = bench_archive(args.archive_mib, args.runs) if args.archive_mib else None
    small = bench_smallfiles(args.runs) if args.smallfiles else None
    cached = (from_cache.bench_from_cache(cache_context(args), args.runs, args.cache_mib,
                                          args.cache_rss_mib)
              if args.cache_mib else None)

    m_cold, m_base = median(cold), median(base)
    print()
    print(f"| measure ({args.runs} runs, median) | nixpush | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| cold push, {args.mib} MiB, {len(closure)} paths | {m_cold:.2f} s | {m_base:.2f} s "
          f"(layout {median(base_write):.2f} s + skopeo {median(base_copy):.2f} s) | {m_cold / m_base:.2f}x | <= 0.5x |")
    m_floor = median(cold_floor)
    print(f"| cold push vs the registry's own ingest | {m_cold:.2f} s | {m_floor:.2f} s (curl PUT of the "
          f"same blobs, {JOBS} at once) | {m_cold / m_floor:.2f}x | the floor |")
    print(f"| unchanged re-push (tag names the image) | {median(unchanged):.3f} s | {median(queries):.3f} s "
          f"(nix build --json + path-info + flake metadata) | {median(unchanged) / median(queries):.2f}x | <= 1.6x |")
    print(f"| unchanged re-push, empty cache | {median(repush):.3f} s, {median(repush_requests):.0f} requests, "
          f"{opened} store files opened | {m_base:.2f} s (cold baseline) | {median(repush) / m_base:.3f}x | < 0.5 s, 0 files |")
    print(f"| one-path update | {median(update):.2f} s, {median(update_layers):.0f} layer(s) + config, "
          f"{median(update_bytes) / 1024:.1f} KiB uploaded | {m_cold:.2f} s (cold nixpush) | {median(update) / m_cold:.3f}x | 1 layer |")
    for size, peak, t in rss:
        print(f"| peak RSS, {size} MiB image | {peak / 1024:.1f} MiB ({t:.1f} s) | | "
              f"{peak / rss[0][1]:.2f}x of {rss[0][0]} MiB | < 100 MiB, flat |")
    if archive:
        ours, theirs = archive
        print(f"| buildImage archive, {args.archive_mib} MiB (.tar.gz in the store) | {ours:.2f} s | "
              f"{theirs:.2f} s (skopeo copy docker-archive:, uncompressed) | {ours / theirs:.2f}x | |")
    if small:
        gz, plain, floor = small
        print(f"| 60,000 small files, one layer, gzip | {gz:.2f} s | {plain:.2f} s (--compression none) | "
              f"{gz / plain:.2f}x | <= 1.4x |")
        print(f"| the same, vs the registry's own ingest | {gz:.2f} s | {floor:.2f} s (curl PUT) | "
              f"{gz / floor:.2f}x | the floor |")
    if cached:
        print_cache_rows(args, cached)
    print_fleet_row(fleet.bench_fleet(cache_context(args)))


def print_fleet_row(result):
    chunked, chunked_size, gzip, gzip_size = result
    print(f"| fleet update: bytes a node (partial pulls on) downloads of a 50 MB layer rebuilt "
          f"with one file changed | {chunked / 1e6:.2f} MB of {chunked_size / 1e6:.1f} MB "
          f"(zstd:chunked) | {gzip / 1e6:.2f} MB of {gzip_size / 1e6:.1f} MB (gzip) | "
          f"{chunked / gzip:.4f}x | < 0.05x |")


def cache_context(args):
    """What bench/from_cache.py uses of this file."""
    return argparse.Namespace(
        nix_env=nix_env, bench_env=bench_env, build_with=build_with, with_cache=with_cache,
        Registry=Registry, timed=timed, median=median, free_port=free_port, NIXPUSH=NIXPUSH,
        paths=args.paths, big_layer=big_layer,
    )


def bench_cache_only(args):
    """`--only cache`: the binary cache rows alone."""
    cached = from_cache.bench_from_cache(cache_context(args), args.runs, args.cache_mib,
                                         args.cache_rss_mib)
    print()
    print(f"| measure ({args.runs} runs, median) | nixpush | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print_cache_rows(args, cached)


def print_cache_rows(args, cached):
    ours, theirs, copy, repush, repush_nar, (peak, t), xz_peak = cached
    print(f"| publish from a binary cache (xz, HTTP), {args.cache_mib} MiB, {args.paths} paths | "
          f"{ours:.2f} s | {theirs:.2f} s (nix copy --from {copy:.2f} s + local push) | "
          f"{ours / theirs:.2f}x | < 1x |")
    print(f"| unchanged re-push from the cache, empty nixpush cache | {repush:.3f} s, "
          f"{repush_nar} NAR bytes | | | 0 NAR bytes |")
    print(f"| peak RSS, {args.cache_rss_mib} MiB path from a (zstd) cache | {peak / 1024:.1f} MiB "
          f"({t:.1f} s) | | | < 100 MiB |")
    print(f"| peak RSS, publishing {args.cache_mib} MiB from the xz cache (4 NARs at once) | "
          f"{xz_peak / 1024:.1f} MiB | | | < 100 MiB |")


if __name__ == "__main__":
    main()
