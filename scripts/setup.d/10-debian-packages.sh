#!/usr/bin/env bash
# Debian packages listed in scripts/packages/debian.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
ensure_debian_packages "$here/packages/debian.txt"
