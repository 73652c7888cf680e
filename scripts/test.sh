#!/usr/bin/env bash
# `make test`: installs what the tests need, builds the test binaries, then runs them, and prints
# how long each part and the whole took. The integration tests (one binary, tests/integration.rs)
# run TEST_THREADS at a time: most of a test is waiting on nix, a registry or podman, so more
# tests than cores keep the cores busy. gc_root is a binary of its own, which cargo runs alone.
# Usage: scripts/test.sh [FILTER...]   (from make test; arguments go to the test binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Tests at once (docs/tests.md#running-them). A few tests bound how long a run may take (10 to
# 60 s, for a stall or an interrupt); their bounds hold at this many on 2 cores.
threads=${TEST_THREADS:-8}

start=$SECONDS
phase() { printf 'make test: %s in %d s\n' "$1" $((SECONDS - $2)); }

make --no-print-directory setup test-tools
t=$SECONDS
# The offline Nix of the tests, and podman's configuration for the local registries.
export NIX_REMOTE=local NIX_CONF_DIR=$PWD/fixtures CONTAINERS_CONF=$PWD/fixtures/containers.conf
cargo test --release --no-run
phase "built" "$t"
t=$SECONDS
status=0
cargo test --release -- --test-threads="$threads" "$@" || status=$?
phase "ran the tests ($threads at once)" "$t"
phase "$( ((status == 0)) && echo passed || echo FAILED), all told" "$start"
exit "$status"
