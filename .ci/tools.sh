#!/usr/bin/env bash
# The tools CI needs beyond the Rust toolchain, at pinned versions, built from the package registry with their own
# lockfiles. A newcomer runs it once; `.ci/run` runs it too and it installs only what is missing or at another
# version. Both build in a few minutes on two cores, the first time only.
set -euo pipefail

CARGO_DENY_VERSION=0.20.2
CARGO_FUZZ_VERSION=0.13.2

# `cargo install` of `crate` at `version`, unless `command --version` already prints that version.
install() {
    local crate=$1 version=$2
    if command -v "$crate" >/dev/null 2>&1 && "$crate" --version 2>/dev/null | grep -qw "$version"; then
        echo "$crate $version: installed"
        return
    fi
    echo "$crate $version: installing"
    cargo install --locked "$crate" --version "$version"
}

install cargo-deny "$CARGO_DENY_VERSION"
install cargo-fuzz "$CARGO_FUZZ_VERSION"
