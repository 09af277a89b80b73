#!/usr/bin/env bash
# Builds (build) or briefly runs (run) every fuzz target with cargo-fuzz.
# cargo-fuzz is installed from crates.io into $GUARDIAN_CACHE/tools once. It needs nightly
# features: the nightly toolchain if rustup has one, else the stable one with RUSTC_BOOTSTRAP.
# FUZZ_SECONDS: seconds per target for `run` (default 30); FUZZ_RUNS instead: executions per
# target (the issue's bar is 10000000), and the line libFuzzer prints at the end says how many
# ran in how long. FUZZ_TARGETS: a space-separated subset (default every target).
# FUZZ_SANITIZER: address (cargo-fuzz's default) or none (several times the executions per
# second; the decoders are safe Rust, so the fuzzer looks for panics, overflows and hangs).
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
sanitizer=(--sanitizer "${FUZZ_SANITIZER:-address}")
export CARGO_TARGET_DIR="$GUARDIAN_CACHE/fuzz-target"
cd "$root"
case "${1:-build}" in
  build) "${fuzz[@]}" build "${sanitizer[@]}" ;;
  run)
    "${fuzz[@]}" build "${sanitizer[@]}"
    if [ -n "${FUZZ_RUNS:-}" ]; then
      limit=(-runs="$FUZZ_RUNS")
      what="$FUZZ_RUNS runs"
    else
      limit=(-max_total_time="${FUZZ_SECONDS:-30}")
      what="${FUZZ_SECONDS:-30} s"
    fi
    for t in ${FUZZ_TARGETS:-$("${fuzz[@]}" list)}; do
      log "fuzzing $t for $what"
      "${fuzz[@]}" run "${sanitizer[@]}" "$t" -- "${limit[@]}" -rss_limit_mb=1024 -print_final_stats=1 2>&1 \
        | grep -E '^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY)|panicked' || true
    done ;;
  *) die "usage: scripts/fuzz.sh build|run" ;;
esac
