#!/usr/bin/env bash
# The owner's web app (web/): its npm packages, installed with `npm ci` from the pinned
# web/package-lock.json into $GUARDIAN_CACHE/web/npm-<first 16 hex of the lock's SHA-256>/
# (web/node_modules is a symlink to it; npm's cache is $GUARDIAN_CACHE/web/npm-cache), and
# the bundle, built by web/build.mjs (esbuild) into $GUARDIAN_CACHE/web/dist, which the
# guardian-web crate embeds. The bundle is rebuilt only when web/src/**, the lock or
# build.mjs changed (a stamp beside it). A second run with everything present does nothing
# and needs no network. Needs node and npm (nodejs, npm in scripts/packages/debian.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
web="$repo/web"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# node and npm: a NodeSource nodejs provides npm itself (and conflicts with Debian's npm
# package), so Debian's npm is installed only when no npm is on PATH.
if ! command -v node >/dev/null; then
  list=$(mktemp) && printf 'nodejs\n' >"$list" && ensure_debian_packages "$list"; rm -f "$list"
fi
if ! command -v npm >/dev/null; then
  list=$(mktemp) && printf 'npm\n' >"$list" && ensure_debian_packages "$list"; rm -f "$list"
fi
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the web app"

[ -f "$web/package-lock.json" ] || die "$web/package-lock.json is missing"
lock_hash=$(sha256sum "$web/package-lock.json" | cut -c1-16)
base="$GUARDIAN_CACHE/web"
modules="$base/npm-$lock_hash"
mkdir -p "$base"

# The npm packages, once per lock.
if [ ! -f "$modules/.complete" ]; then
  log "installing the web app's npm packages (npm ci) into $modules"
  tmp=$(mktemp -d "$base/.npm-$lock_hash.XXXXXX")
  cp "$web/package.json" "$web/package-lock.json" "$tmp/"
  # No install scripts: nothing here needs one (esbuild finds its binary in its
  # @esbuild/<platform> package; playwright-core has none and downloads no browser).
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
      --cache "$base/npm-cache" >/dev/null) \
    || { rm -rf "$tmp"; die "npm ci failed for web/package-lock.json"; }
  touch "$tmp/.complete"
  if [ -f "$modules/.complete" ]; then
    rm -rf "$tmp" # another run made it meanwhile
  else
    rm -rf "$modules"
    mv "$tmp" "$modules"
  fi
fi

# web/node_modules -> the installed packages (an earlier real folder is replaced).
link="$web/node_modules"
if [ "$(readlink "$link" 2>/dev/null)" != "$modules/node_modules" ]; then
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    rm -rf "$link"
  fi
  ln -sfn "$modules/node_modules" "$link"
fi

# The bundle, when its inputs changed.
dist="$base/dist"
stamp_file="$base/dist.stamp"
stamp=$(cd "$repo" && {
  find web/src -type f -print0 | sort -z | xargs -0 sha256sum
  sha256sum web/package-lock.json web/build.mjs
} | sha256sum | cut -c1-64)
if [ -f "$dist/index.html" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
log "building the web app into $dist"
node "$web/build.mjs" "$dist" >&2 || die "the web app's build failed (node web/build.mjs)"
printf '%s\n' "$stamp" >"$stamp_file.tmp" && mv "$stamp_file.tmp" "$stamp_file"
