#!/usr/bin/env bash
# Checks that include/symphony_auth.h is what cbindgen generates from src/ now, and fails when it is stale.
# `--write` regenerates it instead. Installs the pinned cbindgen when it is missing or another version.
set -euo pipefail

CBINDGEN_VERSION=0.29.4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

cbindgen="$(command -v cbindgen || true)"
if [[ -z $cbindgen ]] || [[ "$("$cbindgen" --version)" != "cbindgen $CBINDGEN_VERSION" ]]; then
    echo "check-header: installing cbindgen $CBINDGEN_VERSION" >&2
    nice -n 10 cargo install --quiet --locked "cbindgen@$CBINDGEN_VERSION" >&2
    cbindgen="${CARGO_HOME:-$HOME/.cargo}/bin/cbindgen"
fi

generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT
(cd "$here" && "$cbindgen" --quiet --config cbindgen.toml --crate symphony-auth-c --output "$generated")

if [[ ${1:-} == --write ]]; then
    cp "$generated" "$here/include/symphony_auth.h"
    echo "check-header: wrote bindings/c/include/symphony_auth.h"
    exit 0
fi
if ! diff -u "$here/include/symphony_auth.h" "$generated"; then
    echo "check-header: bindings/c/include/symphony_auth.h is stale; run bindings/c/check-header.sh --write" >&2
    exit 1
fi
echo "check-header: bindings/c/include/symphony_auth.h is current"
