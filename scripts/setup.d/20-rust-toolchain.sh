#!/usr/bin/env bash
# The Rust toolchain's components the checks use (rustfmt, clippy). The toolchain itself
# comes with the machine; this only adds components that are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
command -v cargo >/dev/null || die "cargo is not on PATH: install the Rust toolchain (1.95)"
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "adding rustup component $c"
    rustup component add "$c" >/dev/null
  fi
done
