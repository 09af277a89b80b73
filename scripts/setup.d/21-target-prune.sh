#!/usr/bin/env bash
# Keeps the shared cargo target folder from filling the disk. Every clone at a new path (CI
# makes one per run) gets its own incremental caches for the workspace's crates, several GB
# each; nothing reads them again once that clone is gone. Removes incremental session
# folders not touched for a day, and browser-test screenshots older than a week. Compiled
# dependencies (what makes a cold build fast) are kept.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
target="${CARGO_TARGET_DIR:-$GUARDIAN_CACHE/target}"
for profile in release debug; do
  inc="$target/$profile/incremental"
  [ -d "$inc" ] || continue
  find "$inc" -mindepth 1 -maxdepth 1 -type d -mtime +0 -exec rm -rf {} + 2>/dev/null || true
done
if [ -d "$target/web-artifacts" ]; then
  find "$target/web-artifacts" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} + 2>/dev/null || true
fi
