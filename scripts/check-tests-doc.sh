#!/usr/bin/env bash
# Checks that docs/tests.md has a row for every test under tests/ (a function marked #[test] or
# #[tokio::test], other attributes such as #[ignore] between it and the fn allowed), and no row
# for a test that is gone. A row reads: | behaviour | `FILE.rs` | `test_name` |
# Usage: scripts/check-tests-doc.sh   (from the repository's root; exit 1 on any difference)
set -euo pipefail
cd "$(dirname "$0")/.."

tests=$(for f in $(find tests -name '*.rs' | sort); do
  awk -v f="${f#tests/}" '
    /^[[:space:]]*#\[(tokio::)?test(\(.*\))?\]/ { marked = 1; next }
    marked && /^[[:space:]]*#\[/ { next }
    marked && match($0, /fn [a-z_0-9]+/) { print f " " substr($0, RSTART + 3, RLENGTH - 3) }
    { marked = 0 }' "$f"
done | sort)
rows=$(sed -n 's/^|.*| `\([a-z_0-9]*\.rs\)` | `\([a-z_0-9]*\)` |$/\1 \2/p' docs/tests.md | sort -u)

missing=$(comm -23 <(echo "$tests") <(echo "$rows"))
stale=$(comm -13 <(echo "$tests") <(echo "$rows"))
[[ -n $missing ]] && printf 'not in docs/tests.md:\n%s\n' "$missing"
[[ -n $stale ]] && printf 'in docs/tests.md but no such test:\n%s\n' "$stale"
[[ -z $missing && -z $stale ]] || exit 1
echo "docs/tests.md names all $(echo "$tests" | wc -l) tests"
