#!/usr/bin/env bash
# Puts the RustSec advisory database where deny.toml's `db-path` says, from the offline snapshot (CI cannot reach
# GitHub). cargo-deny looks for the database of its default URL in `<db-path>/advisory-db-3157b0e258782691` and
# needs a git repository there. A refreshed snapshot replaces the copy on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=${ADVISORY_DB_BUNDLE:-../shared/advisory-db/rustsec-advisory-db.bundle}
dir=target/advisory-db/advisory-db-3157b0e258782691

if [ ! -f "$bundle" ]; then
    echo "no advisory database snapshot at $bundle: set ADVISORY_DB_BUNDLE to the bundle's path" >&2
    exit 1
fi
if [ ! -d "$dir/.git" ]; then
    mkdir -p "$(dirname "$dir")"
    git -c init.defaultBranch=main -c advice.detachedHead=false clone --quiet "$bundle" "$dir"
else
    git -C "$dir" fetch --quiet "$(realpath "$bundle")" HEAD
    git -C "$dir" reset --quiet --hard FETCH_HEAD
fi
echo "advisory database: $(git -C "$dir" log -1 --format='%h %cs')"
