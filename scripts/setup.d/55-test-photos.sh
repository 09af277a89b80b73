#!/usr/bin/env bash
# Test photographs with people, for the detector's tests and the camera stand-in:
# scikit-image's astronaut.png (public domain) and camera.png (the cameraman, CC0), taken out of
# the scikit-image wheel (downloaded once, kept in $GUARDIAN_CACHE/downloads) without installing
# it. Result: $GUARDIAN_CACHE/photos/{astronaut,camera}.png (512x512; camera.png is grayscale).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

SKIMAGE_VERSION=0.26.0
declare -A SHA256=(
  [astronaut.png]=88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
  [camera.png]=b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a
)
photos="$GUARDIAN_CACHE/photos"
downloads="$GUARDIAN_CACHE/downloads"

have_all() {
  local f
  for f in "${!SHA256[@]}"; do
    [ -f "$photos/$f" ] || return 1
  done
}
if have_all; then
  exit 0
fi

mkdir -p "$photos" "$downloads"
shopt -s nullglob
wheels=("$downloads"/scikit_image-"$SKIMAGE_VERSION"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  pip="$GUARDIAN_CACHE/venv-openvino/bin/pip"
  [ -x "$pip" ] || die "no pip at $pip: run scripts/setup.sh 50-openvino first"
  log "downloading the scikit-image $SKIMAGE_VERSION wheel for its test photos (14 MB)"
  tmp=$(mktemp -d "$downloads/.skimage.XXXXXX")
  "$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp" "scikit-image==$SKIMAGE_VERSION" || { rm -rf "$tmp"; die "pip download scikit-image==$SKIMAGE_VERSION failed"; }
  mv "$tmp"/scikit_image-*.whl "$downloads"/ && rm -rf "$tmp"
  wheels=("$downloads"/scikit_image-"$SKIMAGE_VERSION"-*.whl)
  [ ${#wheels[@]} -gt 0 ] || die "pip download left no scikit-image $SKIMAGE_VERSION wheel"
fi
wheel="${wheels[0]}"

/usr/bin/python3 - "$wheel" "$photos" "${!SHA256[@]}" <<'PY' || die "could not extract the photos from $wheel"
import os, sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        data = z.read("skimage/data/" + name)
        tmp = os.path.join(out, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(out, name))
PY
for f in "${!SHA256[@]}"; do
  echo "${SHA256[$f]}  $photos/$f" | sha256sum --check --status \
    || { rm -f "$photos/$f"; die "$f from $wheel has an unexpected SHA-256 (removed it)"; }
done
log "test photos in $photos"
