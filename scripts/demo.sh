#!/usr/bin/env bash
# Shows nixpush end to end on one machine: builds it, starts a local
# registry on 127.0.0.1:5000, pushes the demo flake's app as an OCI image,
# and prints commands to inspect and run the pushed image.
# The registry is left running so the image can be pulled afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
PATH="$HOME/.cargo/bin:$PATH"

registry=127.0.0.1:5000
image=$registry/demo/app:v1

bash scripts/setup.sh

echo "==> cargo build --release"
cargo build --release

echo "==> starting the local registry"
bash scripts/registry.sh start 5000

for f in fixtures/nix.conf fixtures/demo/flake.nix; do
  if [[ ! -f $f ]]; then
    echo "demo: $f is missing" >&2
    exit 1
  fi
done

# Nix runs single-user against the local store, offline, with the
# repository's nix.conf.
export NIX_REMOTE=local
export NIX_CONF_DIR=$repo/fixtures

# A plain ./fixtures/demo flake inside this git repository would make nix
# see only files tracked by git, so a fresh or locally edited checkout
# could fail or build stale files; a path: flake takes the directory as is.
installable="path:$repo/fixtures/demo#app"

echo "==> nixpush $installable $image --entrypoint bin/app"
out=$(target/release/nixpush "$installable" "$image" --entrypoint bin/app)
pushed=$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)
if [[ $pushed != "$registry/demo/app@sha256:"* ]]; then
  echo "demo: expected nixpush to print $registry/demo/app@sha256:..., got:" >&2
  printf '%s\n' "$out" >&2
  exit 1
fi

cat <<EOF

Pushed: $pushed

Try:
  target/release/nixpush inspect $image
  skopeo inspect --tls-verify=false docker://$image
  CONTAINERS_CONF=$repo/fixtures/containers.conf podman run --rm --tls-verify=false $image

The registry keeps running; stop it with: make registry-stop
EOF
