#!/usr/bin/env bash
# Mutation testing of the lines a change touches: cargo-mutants on the diff against a base revision, within a time
# bound, so that new or changed logic in symphony-auth-core comes with tests that notice when it breaks. The whole
# crate's results are in mutants.md.
#
#   .ci/mutants-diff.sh [BASE]        BASE defaults to origin/main (the merge base with HEAD is used)
#
# Environment: MUTANTS_MINUTES (time bound, default 30), MUTANTS_PACKAGE (default symphony-auth-core).
# Exit status: 0 every mutant of the changed lines was caught (or none applies); 2 a mutant was missed; 3 a mutant
# made the tests time out; 124 the time bound was reached; other values are cargo-mutants' or this script's errors.
set -euo pipefail
cd "$(dirname "$0")/.."

base="${1:-origin/main}"
minutes="${MUTANTS_MINUTES:-30}"
package="${MUTANTS_PACKAGE:-symphony-auth-core}"
version="27.1.0"

if ! cargo mutants --version 2>/dev/null | grep -qF "$version"; then
  echo "== installing cargo-mutants $version"
  cargo install --locked "cargo-mutants@$version"
fi

merge_base="$(git merge-base "$base" HEAD)"
diff_file="$(mktemp)"
trap 'rm -f "$diff_file"' EXIT
# Committed and uncommitted changes to Rust sources, against where this branch left the base.
git diff "$merge_base" -- '*.rs' >"$diff_file"
if [ ! -s "$diff_file" ]; then
  echo "== no Rust source changed since $base ($merge_base): no mutant to test"
  exit 0
fi

echo "== cargo mutants on the lines changed since $base ($merge_base), at most $minutes min"
status=0
# `--gitignore true`: the scratch copies leave out ignored build output such as fuzz/target, which is large and may
# be changing while they are made.
timeout --foreground "${minutes}m" \
  cargo mutants --in-diff "$diff_file" --package "$package" --all-features --timeout 20 --jobs 1 --no-shuffle --gitignore true \
  || status=$?
case "$status" in
  0) echo "== every mutant of the changed lines was caught" ;;
  124) echo "== time bound of $minutes min reached: test fewer changed lines at once, or raise MUTANTS_MINUTES" >&2 ;;
  *) echo "== cargo mutants exited $status: see mutants.out/missed.txt and mutants.out/timeout.txt" >&2 ;;
esac
exit "$status"
