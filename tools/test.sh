#!/usr/bin/env bash
# The whole test suite, as README's second command and CI run it. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
cargo --version

step "format"
cargo fmt --all -- --check

step "native tests (release, CPU)"
cargo test --release --locked

step "wasm32 library build (web features)"
cargo build --release --locked --lib --target wasm32-unknown-unknown --no-default-features --features web
