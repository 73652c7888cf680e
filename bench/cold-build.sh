#!/usr/bin/env bash
# Times a cold build of two commits of nixpush back to back, on the same machine, from the same
# downloaded crates (fetched first, then built --offline), each in a fresh target directory, and
# prints both times and the ratio (new / old). It checks the build speed a newcomer sees
# (docs/benchmarks.md#cold-build).
#
# Usage: bench/cold-build.sh [OLD [NEW]]       (commits; run from a checkout of nixpush)
#   OLD   default: the commit before the build was sped up (the parent of this branch on main:
#         `git merge-base main HEAD`, or HEAD~1 with no main branch)
#   NEW   default: HEAD
#   BUILD=test (default) builds what `make test` builds: `cargo test --release --workspace --no-run`;
#   BUILD=demo builds what `make demo` builds: `cargo build --release`.
# Each commit is exported (`git archive`) to target/cold-build/<commit>/ and built there, so
# nothing of the working tree or its target directory is reused. Both builds run with the same
# environment; whatever else runs on the machine is shown (load average) before each.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export PATH="$HOME/.cargo/bin:$PATH"

old=${1:-$(git merge-base main HEAD 2>/dev/null || git rev-parse HEAD~1)}
new=${2:-HEAD}
old=$(git rev-parse --short "$old^{commit}")
new=$(git rev-parse --short "$new^{commit}")
case ${BUILD:-test} in
  test) build=(cargo test --release --workspace --locked --offline --no-run) ;;
  demo) build=(cargo build --release --locked --offline) ;;
  *) echo "cold-build: BUILD is test or demo" >&2; exit 2 ;;
esac
# No cache or wrapper in between: a newcomer has none.
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR CARGO_INCREMENTAL

work=$PWD/target/cold-build
mkdir -p "$work"
for c in "$old" "$new"; do
  rm -rf "${work:?}/$c"
  mkdir -p "$work/$c"
  git archive "$c" | tar -x -C "$work/$c"
  # The same downloaded crates for both: fetched now, the builds below are offline.
  (cd "$work/$c" && cargo fetch --locked -q)
done

declare -A seconds
for c in "$old" "$new"; do
  echo "cold-build: $c: ${build[*]} (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  start=$(date +%s.%N)
  (cd "$work/$c" && CARGO_TARGET_DIR="$work/$c/target" "${build[@]}" 2>"$work/$c.log") || {
    tail -20 "$work/$c.log" >&2
    exit 1
  }
  seconds[$c]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  printf 'cold-build: %s built in %.0f s\n' "$c" "${seconds[$c]}"
done

printf '%-10s %8s\n' commit seconds
printf '%-10s %8.0f\n' "$old" "${seconds[$old]}" "$new" "${seconds[$new]}"
printf 'ratio %s/%s: %.2fx (%s, %s cores)\n' "$new" "$old" \
  "$(awk -v a="${seconds[$new]}" -v b="${seconds[$old]}" 'BEGIN { print a / b }')" \
  "${BUILD:-test}" "$(nproc)"
rm -rf "${work:?}/$old/target" "${work:?}/$new/target"
