#!/usr/bin/env bash
# `make test`: installs what the tests need, builds the test binaries, then runs them, and prints
# how long each part and the whole took. The integration tests (one binary, tests/integration.rs)
# run TEST_THREADS at a time: most of a test is waiting on nix, a registry or podman, so more
# tests than cores keep the cores busy, the slowest started first. gc_root is a binary of its own,
# run alone at the end.
# Usage: scripts/test.sh [FILTER...]   (from make test; arguments go to the test binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Tests at once (docs/tests.md#running-them). A few tests bound how long a run may take (10 to
# 60 s, for a stall or an interrupt); their bounds hold at this many on 2 cores.
threads=${TEST_THREADS:-8}

start=$SECONDS
phase() { printf 'make test: %s in %d s\n' "$1" $((SECONDS - $2)); }

# NIXPUSH_TEST_BUILT=1 (bench/test-run.sh): set up and built already, only the run is timed.
if [[ -z ${NIXPUSH_TEST_BUILT:-} ]]; then
  make --no-print-directory setup test-tools
fi
t=$SECONDS
# The offline Nix of the tests, and podman's configuration for the local registries.
export NIX_REMOTE=local NIX_CONF_DIR=$PWD/fixtures CONTAINERS_CONF=$PWD/fixtures/containers.conf
cargo test --release --workspace --no-run
phase "built" "$t"
t=$SECONDS
status=0
if (($# > 0)); then
  cargo test --release --workspace -- --test-threads="$threads" "$@" || status=$?
else
  # libtest starts tests in name order, so the slowest integration tests (seeded faults at one
  # in three, five and ten, up to a minute each; the leak check of every failure) would start
  # last and end the run alone. They start first, FIRST_THREADS at a time, beside the rest.
  first=(resilience:: hostile::no_password_is_ever_printed)
  first_threads=${FIRST_THREADS:-2}
  cargo test --release --test integration -- --test-threads="$first_threads" "${first[@]}" \
    > >(sed 's/^/[first] /') 2>&1 &
  first_pid=$!
  skips=()
  for f in "${first[@]}"; do skips+=(--skip "$f"); done
  cargo test --release --workspace --lib --bins --test integration -- \
    --test-threads=$((threads - first_threads)) "${skips[@]}" || status=$?
  wait "$first_pid" || status=$?
  # gc_root collects the store's garbage: alone, once nothing else is running.
  cargo test --release --test gc_root || status=$?
fi
phase "ran the tests ($threads at once)" "$t"
phase "$( ((status == 0)) && echo passed || echo FAILED), all told" "$start"
exit "$status"
