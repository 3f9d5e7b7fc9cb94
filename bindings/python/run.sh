#!/usr/bin/env bash
# The Python binding end to end: formats and lints its crate (it is outside the Cargo workspace), builds fake-pod,
# creates a fresh virtual environment under the target directory, `pip install`s the package (maturin builds the
# abi3 wheel from source) with pinned pytest and httpx, and runs the tests. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
# The extension's own target directory, kept between runs so that pip rebuilds only what changed.
native_target="$target/python"
venv="$target/python-venv"
python="${PYTHON:-python3}"

echo "== rustfmt and clippy (bindings/python)"
cargo fmt --manifest-path "$here/Cargo.toml" -- --check
CARGO_TARGET_DIR="$native_target" nice -n 10 cargo clippy --quiet --locked --manifest-path "$here/Cargo.toml" \
    --all-targets -- -D warnings

echo "== fake-pod"
nice -n 10 cargo build --quiet --locked -p symphony-auth-testkit --bin fake-pod

echo "== pip install ./bindings/python in a new virtual environment"
rm -rf "$venv"
"$python" -m venv "$venv"
# The dev profile (rsa and crypto-bigint are optimised in it all the same) builds in about half the time of the
# release one that a plain `pip install` uses; the tests do not need optimised code.
CARGO_TARGET_DIR="$native_target" nice -n 10 "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --config-settings=build-args=--profile=dev ./bindings/python pytest==9.2.0 httpx==0.28.1

echo "== pytest"
FAKE_POD="$target/debug/fake-pod" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/tests"
