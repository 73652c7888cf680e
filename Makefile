# Entry points for building, testing and demoing nixpush.
# `make` alone lists the targets.

# cargo from rustup usually lives in ~/.cargo/bin.
export PATH := $(HOME)/.cargo/bin:$(PATH)

REGISTRY_PORT ?= 5000

# Nix runs single-user against the local store, offline, with the
# repository's own nix.conf.
NIX_ENV = NIX_REMOTE=local NIX_CONF_DIR=$(CURDIR)/fixtures

.DEFAULT_GOAL := help
.PHONY: help setup build test test-tools lint bench demo registry-start registry-stop clean

help:
	@echo "Targets:"
	@echo "  setup           install the system packages (apt) and check for cargo"
	@echo "  build           cargo build --release"
	@echo "  test            setup, build, then every test (side by side), with the total time"
	@echo "  test-tools      build the tests' own signature verifier (tests/sigstore-verify)"
	@echo "  lint            cargo fmt --check, cargo clippy (warnings are errors), cargo package"
	@echo "  bench           benchmark against a skopeo baseline (minutes; needs ~10 GiB of disk)"
	@echo "  demo            build, start a local registry on :5000 and push the demo flake"
	@echo "  registry-start  start the local registry on 127.0.0.1:$(REGISTRY_PORT)"
	@echo "  registry-stop   stop the local registry started by registry-start or demo"
	@echo "  clean           cargo clean"

setup:
	bash scripts/setup.sh

build:
	cargo build --release

# The tests' independent cosign verifier, on sigstore-rs: its own crate and lock file, built
# once into its own target directory (the tests run target/sigstore-verify/release/...).
SIGSTORE_VERIFY = tests/sigstore-verify/Cargo.toml

test-tools:
	cargo build --release --locked --manifest-path $(SIGSTORE_VERIFY) --target-dir target/sigstore-verify

# Setup, the build, then the tests side by side (TEST_THREADS at once, 8 unless set); prints the
# time of each part and the total.
test:
	bash scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo fmt --manifest-path $(SIGSTORE_VERIFY) -- --check
	cargo clippy --locked --manifest-path $(SIGSTORE_VERIFY) --target-dir target/sigstore-verify -- -D warnings
	bash scripts/check-tests-doc.sh
	# The crates as they would be published (nixpush and nixpush-layer, the one resolving the
	# other locally): their metadata, and the files they hold (no test suite).
	cargo package --workspace --locked --no-verify --allow-dirty --quiet

bench: setup build
	$(NIX_ENV) python3 bench/bench.py $(BENCH_ARGS)

demo:
	bash scripts/demo.sh

registry-start:
	bash scripts/registry.sh start $(REGISTRY_PORT)

registry-stop:
	bash scripts/registry.sh stop $(REGISTRY_PORT)

clean:
	cargo clean
