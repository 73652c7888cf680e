"""A fleet update, measured in bytes (bench.py's fleet row): version 1 of a 50 MB store path of
300 files, then version 2, rebuilt under a new hash with one file changed (fixtures/demo
`fleet-v1`, `fleet-v2`), pushed with `--compression zstd:chunked` and with gzip. A node
(podman with a store of its own, overlay, containers/storage's partial pulls on) pulls v1, then
v2; the registry's access log says how many bytes of v2's changed layer it served. Bytes, not
seconds: the same on every run, so one run is enough.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Node:
    """podman with a store of its own and partial pulls on."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nixpush-bench-node-")
        self.conf = os.path.join(self.dir, "storage.conf")
        with open(self.conf, "w") as f:
            f.write(
                f'[storage]\ndriver = "overlay"\ngraphroot = "{self.dir}/store"\n'
                f'runroot = "{self.dir}/run"\n[storage.options]\n'
                'pull_options = {enable_partial_images = "true", use_hard_links = "false", '
                'ostree_repos = ""}\n'
            )

    def podman(self, *args):
        env = dict(os.environ, CONTAINERS_STORAGE_CONF=self.conf,
                   CONTAINERS_CONF=os.path.join(REPO, "fixtures", "containers.conf"))
        return subprocess.run(["podman", *args], env=env, check=True, capture_output=True)

    def close(self):
        for args in (["rmi", "--all", "--force"], ["system", "reset", "--force"]):
            try:
                self.podman(*args)
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def served(log_path, digest):
    """Body bytes the registry's access log shows for GETs of blob `digest`."""
    pattern = re.compile(r'"GET /v2/[^ ]*/blobs/' + re.escape(digest) + r' HTTP/1.1" \d+ (\d+)')
    with open(log_path) as f:
        return sum(int(m.group(1)) for m in map(pattern.search, f) if m)


def bench_fleet(ctx):
    """(bytes for v2's layer with zstd:chunked, its size, bytes with gzip, its size)."""
    env = ctx.nix_env()
    fixture = f"path:{REPO}/fixtures/demo"
    paths = {}
    for version in ("1", "2"):
        out = subprocess.run(["nix", "build", "--no-link", "--json",
                              f"{fixture}#fleet-v{version}"], env=env, check=True,
                             capture_output=True, text=True).stdout
        paths[version] = json.loads(out)[0]["outputs"]["out"]
    reg = ctx.Registry()
    results = []
    try:
        for compression in ("zstd:chunked", "gzip"):
            repo = "fleet/" + compression.replace(":", "-")
            node = Node()
            cache = tempfile.mkdtemp(prefix="nixpush-bench-cache-")
            try:
                layer = None
                for version in ("1", "2"):
                    image = f"{reg.host}/{repo}:{version}"
                    subprocess.run(
                        [ctx.NIXPUSH, f"{fixture}#fleet-v{version}", image, "--compression",
                         compression, "--quiet"],
                        env=dict(env, NIXPUSH_CACHE_DIR=cache), check=True,
                        stdout=subprocess.DEVNULL)
                    node.podman("pull", "--tls-verify=false", image)
                    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                                          f"docker://{image}"], check=True, capture_output=True,
                                         text=True).stdout
                    layer = ctx.big_layer(out)
                digest, size = layer
                results.append((served(reg.log_path, digest), size))
            finally:
                node.close()
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        reg.stop()
    (chunked, chunked_size), (gzip, gzip_size) = results
    return chunked, chunked_size, gzip, gzip_size
