#!/usr/bin/env bash
# Ceph packages for the one-node cluster whose radosgw is the tests' real S3 server
# (scripts/radosgw.sh boots it). Listed in scripts/packages/radosgw.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
ensure_debian_packages "$here/packages/radosgw.txt"
# The Debian packages start nothing we use (no systemd here), but make sure the binaries the
# script calls are really there.
for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen curl; do
  command -v "$tool" >/dev/null || die "$tool missing after installing scripts/packages/radosgw.txt"
done
