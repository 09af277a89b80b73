#!/usr/bin/env bash
# Installs everything the build, tests and demo need, idempotently: a second run with
# everything present changes nothing and needs no network.
#
# Each step is a script in scripts/setup.d/, run in name order. Later features add their own
# step (GStreamer packages, the OpenVINO wheel, the detector model, an S3 server) beside the
# others. Run one step by name: scripts/setup.sh 10-debian-packages
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
mkdir -p "$GUARDIAN_CACHE"

steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
  for f in "$here"/setup.d/*.sh; do steps+=("$(basename "$f" .sh)"); done
fi
for step in "${steps[@]}"; do
  script="$here/setup.d/$step.sh"
  [ -f "$script" ] || die "no set-up step $step (see scripts/setup.d/)"
  bash "$script"
done
