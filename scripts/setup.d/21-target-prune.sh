#!/usr/bin/env bash
# Keeps the shared cargo target folder from filling the disk. Every clone at a new path (CI
# makes one per run) compiles the workspace's crates and tests again under new hashes,
# several GB each; nothing reads them again once that clone is gone. Keeps the two newest
# builds of each workspace target (tools/prune-target.py), removes incremental session
# folders not touched for a day and browser-test screenshots older than a week. Compiled
# registry dependencies (what makes a cold build fast) are kept.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
target="${CARGO_TARGET_DIR:-$GUARDIAN_CACHE/target}"
for profile in release debug; do
  inc="$target/$profile/incremental"
  [ -d "$inc" ] || continue
  find "$inc" -mindepth 1 -maxdepth 1 -type d -mtime +0 -exec rm -rf {} + 2>/dev/null || true
done
names=$(cd "$here/.." && cargo metadata --no-deps --offline --format-version 1 2>/dev/null |
  python3 -c 'import json,sys; print(" ".join(t["name"] for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "custom-build" not in t["kind"]))' ||
  true)
if [ -n "$names" ]; then
  log "$(python3 "$here/tools/prune-target.py" "$target" $names)"
fi
if [ -d "$target/web-artifacts" ]; then
  find "$target/web-artifacts" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} + 2>/dev/null || true
fi
