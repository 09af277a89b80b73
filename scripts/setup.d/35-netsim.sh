#!/usr/bin/env bash
# Debian packages of the network simulation harness (scripts/packages/netsim.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
ensure_debian_packages "$here/packages/netsim.txt"
