#!/usr/bin/env bash
# The declared MSRV (`rust-version` in Cargo.toml) is checked three ways:
# 1. clippy's `incompatible_msrv` lint (on in the clippy step) refuses standard-library APIs newer than it;
# 2. here: no package in the lockfile's graph declares a newer `rust-version` than the workspace;
# 3. here: when that toolchain is installed (`rustup toolchain install <version> --profile minimal`), the workspace
#    is built with it. Without it, this step says so and does not fail: 1 and 2 do not prove that the code builds.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print({p["rust_version"] for p in json.load(sys.stdin)["packages"]}.pop())')
echo "declared rust-version: $msrv"

cargo metadata --format-version 1 --locked --all-features | python3 -c '
import json, sys
def version(text):
    parts = [int(x) for x in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
msrv = version(sys.argv[1])
newer = []
for package in json.load(sys.stdin)["packages"]:
    declared = package.get("rust_version")
    if declared and version(declared) > msrv:
        newer.append(" ".join([package["name"], package["version"], "needs", declared]))
if newer:
    sys.exit("dependencies newer than the MSRV:\n  " + "\n  ".join(newer))
print("every dependency declares a rust-version at or below it")
' "$msrv"

if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
    cargo "+$msrv" check --workspace --all-targets --all-features --locked
    echo "the workspace builds with $msrv"
else
    echo "NOT VERIFIED: toolchain $msrv is not installed, so the build with it was not tried"
fi
