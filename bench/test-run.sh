#!/usr/bin/env bash
# Times the test run of two commits' `make test` back to back, on the same machine: each commit is
# exported (`git archive`) to target/test-run/<commit>/, its test binaries and the tests' verifier
# built first (not timed), then its tests run as its own `make test` runs them (timed), old then
# new; prints both times and the ratio (new / old). It checks the time a newcomer waits for
# `make test` once it is built (docs/benchmarks.md#make-test).
#
# Usage: bench/test-run.sh [OLD [NEW]]   (commits; default: 84e1d3d, before the test run was
#   made parallel, and HEAD). Run from a checkout of nixpush after `make setup`.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export PATH="$HOME/.cargo/bin:$PATH"
old=$(git rev-parse --short "${1:-84e1d3d}^{commit}")
new=$(git rev-parse --short "${2:-HEAD}^{commit}")
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR
work=$PWD/target/test-run
verifier=$PWD/target/sigstore-verify

prepare() {
  local dir=$work/$1
  # Built by an earlier invocation: kept (`rm -rf target/test-run` to build again).
  [[ -e $dir/.prepared ]] && return
  rm -rf "$dir"
  mkdir -p "$dir/target"
  git archive "$1" | tar -x -C "$dir"
  # The tests' Python tools, as `make setup` made them here.
  ln -s "$PWD/target/test-venv" "$dir/target/test-venv"
  # The tests' verifier as `make test-tools` builds it: its dependencies from this checkout's
  # build (only its own crate is compiled again, under the new path).
  if [[ -d $verifier ]]; then cp -a "$verifier" "$dir/target/"; fi
  (cd "$dir" &&
    cargo build --release --locked --quiet --manifest-path tests/sigstore-verify/Cargo.toml \
      --target-dir target/sigstore-verify &&
    cargo test --release --locked --no-run --quiet)
  touch "$dir/.prepared"
}

run() {
  local dir=$work/$1 start=$SECONDS status=0
  printf 'test-run: %s, load average %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
  (
    cd "$dir"
    export NIX_REMOTE=local NIX_CONF_DIR=$dir/fixtures CONTAINERS_CONF=$dir/fixtures/containers.conf
    if [[ -x scripts/test.sh ]]; then
      NIXPUSH_TEST_BUILT=1 scripts/test.sh
    else
      cargo test --release --no-fail-fast
    fi
  ) >"$work/$1.log" 2>&1 || status=$?
  echo $((SECONDS - start)) "$status"
}

for c in "$old" "$new"; do prepare "$c"; done
read -r old_s old_status < <(run "$old")
read -r new_s new_status < <(run "$new")
printf '| the tests, once built | %s s (%s, exit %s) | %s s (%s, exit %s) | %sx |\n' \
  "$old_s" "$old" "$old_status" "$new_s" "$new" "$new_status" \
  "$(awk -v a="$new_s" -v b="$old_s" 'BEGIN { printf "%.2f", a / b }')"
