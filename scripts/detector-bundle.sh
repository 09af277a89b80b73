#!/usr/bin/env bash
# The detector bundle an installed edge carries: the models set-up made and the part of
# OpenVINO the CPU needs, laid out as the edge looks for them under
# /usr/lib/private-ai-guardian (edge/src/detect/locate.rs):
#
#   OUT/models/<model>/{*.xml,*.bin,model.json}
#   OUT/openvino/libopenvino_c.so.N, libopenvino.so.N, the CPU plugin, the IR frontend, TBB, hwloc
#
# Usage: scripts/detector-bundle.sh OUT   (after scripts/setup.sh)
# Then: `guardian-vm package edge --format iso --detector OUT ...` puts it on the seed, or
# for a systemd install: cp -a OUT/. /usr/lib/private-ai-guardian/
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
out="${1:?usage: scripts/detector-bundle.sh OUT}"
envfile="$GUARDIAN_CACHE/openvino.env"
[ -f "$envfile" ] || die "$envfile missing: run scripts/setup.sh first"
# shellcheck disable=SC1090
. "$envfile"
[ -d "$GUARDIAN_CACHE/models" ] || die "no models in $GUARDIAN_CACHE/models: run scripts/setup.sh first"

mkdir -p "$out/models" "$out/openvino"
for m in "$GUARDIAN_CACHE"/models/*/; do
  name=$(basename "$m")
  ls "$m"/*.xml >/dev/null 2>&1 || continue
  mkdir -p "$out/models/$name"
  cp "$m"/*.xml "$m"/*.bin "$m"/model.json "$out/models/$name/"
done
libs="$OPENVINO_LIB_DIR"
shopt -s nullglob
for f in "$libs"/libopenvino.so.* "$libs"/libopenvino_c.so.* "$libs"/libopenvino_intel_cpu_plugin.so \
  "$libs"/libopenvino_ir_frontend.so.* "$libs"/libtbb*.so.* "$libs"/libhwloc.so.*; do
  cp -a "$f" "$out/openvino/"
done
[ -n "$(ls "$out"/openvino/libopenvino_c.so.* 2>/dev/null)" ] || die "no libopenvino_c.so.* in $libs"
log "detector bundle in $out ($(du -sh "$out" | cut -f1))"
