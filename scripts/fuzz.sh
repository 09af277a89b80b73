#!/usr/bin/env bash
# Builds (build) or briefly runs (run) every fuzz target with cargo-fuzz.
# cargo-fuzz is installed from crates.io into $GUARDIAN_CACHE/tools once. It needs nightly
# features: the nightly toolchain if rustup has one, else the stable one with RUSTC_BOOTSTRAP.
# FUZZ_SECONDS: seconds per target for `run` (default 30).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
root="$(cd "$here/.." && pwd)"
tools="$GUARDIAN_CACHE/tools"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  log "installing cargo-fuzz into $tools (once, a few minutes)"
  cargo install --quiet --locked --root "$tools" cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
export CARGO_TARGET_DIR="$GUARDIAN_CACHE/fuzz-target"
cd "$root"
case "${1:-build}" in
  build) "${fuzz[@]}" build ;;
  run)
    "${fuzz[@]}" build
    for t in $("${fuzz[@]}" list); do
      log "fuzzing $t for ${FUZZ_SECONDS:-30} s"
      "${fuzz[@]}" run "$t" -- -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=1024 2>&1 \
        | grep -E '^(#[0-9]+ *DONE|Done|==[0-9]+==|SUMMARY)' || true
    done ;;
  *) die "usage: scripts/fuzz.sh build|run" ;;
esac
