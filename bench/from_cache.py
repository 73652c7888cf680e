"""Publishing straight from a binary cache (nixpush STORE_PATH --substituter URL), measured by
bench.py against what a user does without it: `nix copy --from` the cache into the local store,
then a push from the local store. Each run starts from a cache that `nix copy --to` wrote (xz,
Nix's default, signed), served over HTTP by Python's http.server, and from a local store that
does not hold the closure.

Also measured: the NAR bytes an unchanged re-push downloads from the cache (an empty nixpush
cache, the tag already naming the image: narinfos only), and nixpush's peak RSS publishing one
1 GiB store path from a (zstd) cache.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CacheServer:
    """tests/cache_server.py (Python's http.server) over a cache directory, its access log in a
    file."""

    def __init__(self, directory, port):
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="nixpush-bench-http-"), "access.log")
        self.log = open(self.log_path, "w")
        self.dir = directory
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tests", "cache_server.py"), str(port), directory],
            stdout=self.log, stderr=self.log,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 15
        while time.time() < deadline:
            if subprocess.run(["curl", "-sf", "-o", "/dev/null", f"{self.url}/nix-cache-info"]).returncode == 0:
                return
            time.sleep(0.05)
        raise SystemExit("the cache's HTTP server did not start")

    def nar_bytes(self):
        """Bytes of the NAR files requested so far (GETs of nar/...)."""
        with open(self.log_path, errors="replace") as f:
            names = re.findall(r'"GET /(nar/[^ ]+) HTTP', f.read())
        return sum(os.path.getsize(os.path.join(self.dir, n)) for n in names)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def keys(work, nix_env):
    secret = os.path.join(work, "secret-key")
    with open(secret, "wb") as f:
        subprocess.run(["nix", "key", "generate-secret", "--key-name", "bench-1"], env=nix_env,
                       check=True, stdout=f)
    with open(secret, "rb") as f:
        public = subprocess.run(["nix", "key", "convert-secret-to-public"], env=nix_env,
                                check=True, stdin=f, stdout=subprocess.PIPE).stdout.decode().strip()
    return secret, public


def delete(closure, nix_env):
    subprocess.run(["nix-store", "--delete"] + closure, env=nix_env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    left = [p for p in closure if os.path.lexists(p)]
    if left:
        raise SystemExit(f"could not delete {left[0]} from the local store")


def bench_from_cache(ctx, runs, mib, rss_mib):
    """Medians of (publish from the cache, nix copy --from + local push, its nix copy part) and
    the unchanged re-push's (seconds, NAR bytes), (peak RSS KiB, seconds) for one rss_mib store
    path from a zstd cache, and the highest peak RSS of the publishes from the xz cache. `ctx`
    carries bench.py's helpers."""
    work = tempfile.mkdtemp(prefix="nixpush-bench-from-cache-")
    nix_env = ctx.nix_env()
    secret, public = keys(work, nix_env)
    # Sizes no other part of the benchmark builds: these paths are deleted and fetched back.
    env = ctx.bench_env(ctx.paths, mib, 1)
    _, closure = ctx.build_with(env)
    top = closure_top(closure, env)
    cache_dir = os.path.join(work, "cache")
    subprocess.run(["nix", "copy", "--to", f"file://{cache_dir}?secret-key={secret}", top],
                   env=nix_env, check=True, stderr=subprocess.DEVNULL)
    server = CacheServer(cache_dir, ctx.free_port())
    from_cache, baseline, copy_part, repush, repush_nar, xz_rss = [], [], [], [], [], []
    substitute = ["--substituter", server.url, "--trusted-public-key", public,
                  "--system", "x86_64-linux"]
    try:
        for _ in range(runs):
            delete(closure, nix_env)
            reg = ctx.Registry()
            npc = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            try:
                t, peak, _ = ctx.timed([ctx.NIXPUSH, "-q", top, f"{reg.host}/cache/app:v1"] + substitute,
                                       ctx.with_cache(nix_env, npc), sample_rss=True)
                from_cache.append(t)
                xz_rss.append(peak)
                fresh = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
                before = server.nar_bytes()
                t, _, _ = ctx.timed([ctx.NIXPUSH, "-q", top, f"{reg.host}/cache/app:v1"] + substitute,
                                    ctx.with_cache(nix_env, fresh))
                repush.append(t)
                repush_nar.append(server.nar_bytes() - before)
                shutil.rmtree(fresh)
            finally:
                reg.stop()
                shutil.rmtree(npc, ignore_errors=True)
            assert not any(os.path.lexists(p) for p in closure), "publishing wrote to the local store"
            reg = ctx.Registry()
            npc = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            try:
                t0 = time.monotonic()
                subprocess.run(["nix", "copy", "--from", server.url, "--option", "trusted-public-keys",
                                public, top], env=nix_env, check=True, stderr=subprocess.DEVNULL)
                copied = time.monotonic() - t0
                ctx.timed([ctx.NIXPUSH, "-q", top, f"{reg.host}/local/app:v1"],
                          ctx.with_cache(nix_env, npc))
                baseline.append(time.monotonic() - t0)
                copy_part.append(copied)
            finally:
                reg.stop()
                shutil.rmtree(npc, ignore_errors=True)
    finally:
        server.stop()

    # Peak RSS: one store path of rss_mib MiB, from a zstd cache read as file://.
    rss_cache = os.path.join(work, "rss-cache")
    rss_top = zstd_file_cache(ctx.build_with, ctx.bench_env(1, rss_mib, 1), nix_env, secret,
                              rss_cache)
    reg = ctx.Registry()
    npc = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
    try:
        t, peak, _ = ctx.timed([ctx.NIXPUSH, "-q", rss_top, f"{reg.host}/rss/cache:v1",
                                "--substituter", f"file://{rss_cache}", "--trusted-public-key", public,
                                "--system", "x86_64-linux"],
                               ctx.with_cache(nix_env, npc), sample_rss=True)
    finally:
        reg.stop()
        shutil.rmtree(npc, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    m = ctx.median
    return (m(from_cache), m(baseline), m(copy_part), m(repush), max(repush_nar), (peak, t),
            max(xz_rss))


def zstd_file_cache(build_with, env, nix_env, secret, directory):
    """Builds the bench closure `env` describes, writes it signed with `secret` to a zstd
    `file://` cache in `directory`, and deletes it from the local store; returns its top path."""
    _, closure = build_with(env)
    top = closure_top(closure, env)
    subprocess.run(["nix", "copy", "--to", f"file://{directory}?secret-key={secret}&compression=zstd",
                    top], env=nix_env, check=True, stderr=subprocess.DEVNULL)
    delete(closure, nix_env)
    return top


def closure_top(closure, env):
    """The top of a bench closure: the path no other refers to (the app)."""
    for p in closure:
        if p.endswith("-app"):
            return p
    # A single-path closure (the RSS case) is its own top.
    if len(closure) == 1:
        return closure[0]
    raise SystemExit(f"no top path in {closure[:3]}")
