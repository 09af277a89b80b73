#!/usr/bin/env bash
# OpenVINO for the detector: a venv at $GUARDIAN_CACHE/venv-openvino with the pinned `openvino`
# wheel (it ships libopenvino_c.so.<ver>, the CPU plugin, the TF/ONNX/TFLite/IR frontends and
# benchmark_app) and what scripts/models/convert_nanodet.py needs (tensorboard's TF proto classes
# and protobuf, installed with --no-deps: TensorFlow itself is not needed).
#
# Writes $GUARDIAN_CACHE/openvino.env (KEY=value lines; `. file` in shell, `include` in make):
#   OPENVINO_LIB            absolute path of libopenvino_c.so.<ver> (openvino_sys::library::load_from)
#   OPENVINO_LIB_DIR        the wheel's libs/ folder, which also holds an unversioned libopenvino_c.so
#                           symlink (for LD_LIBRARY_PATH-style loading)
#   OPENVINO_BENCHMARK_APP  the benchmark_app of the venv
#   OPENVINO_PYTHON         the venv's python (model conversion and checks)
#   OPENVINO_VERSION        the wheel's version
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"

OPENVINO_VERSION=2026.4.1
# libopenvino_c.so.<this>: the wheel's library soname suffix.
OPENVINO_SOVER=2641
# The rest is pinned so that a conversion is reproducible.
REQUIREMENTS=("openvino==$OPENVINO_VERSION" "numpy==2.4.6" "openvino-telemetry==2025.2.0")
NODEPS=("tensorboard==2.21.0" "protobuf==7.36.2")

venv="$GUARDIAN_CACHE/venv-openvino"
stamp="$venv/.guardian-requirements"
want="${REQUIREMENTS[*]} --no-deps ${NODEPS[*]}"
envfile="$GUARDIAN_CACHE/openvino.env"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null \
    || die "/usr/bin/python3 cannot make a venv: install python3-venv (scripts/setup.sh 40-gstreamer)"
  log "installing OpenVINO $OPENVINO_VERSION into $venv (about 100 MB, 10-60 s)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv" || die "could not create the venv $venv"
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input)
  "${pip[@]}" "${REQUIREMENTS[@]}" || die "pip install ${REQUIREMENTS[*]} failed"
  "${pip[@]}" --no-deps "${NODEPS[@]}" || die "pip install --no-deps ${NODEPS[*]} failed"
  "$venv/bin/python" - <<'PY' || die "the OpenVINO venv does not work (see above)"
import openvino as ov
from tensorboard.compat.proto import graph_pb2  # noqa: F401  (the converter's TF protos)
devices = ov.Core().available_devices
assert "CPU" in devices, f"OpenVINO sees no CPU device: {devices}"
PY
  printf '%s\n' "$want" >"$stamp"
fi

libs=$(echo "$venv"/lib/python3*/site-packages/openvino/libs)
lib="$libs/libopenvino_c.so.$OPENVINO_SOVER"
[ -f "$lib" ] || die "$lib not found: has the wheel's soname changed? (update OPENVINO_SOVER)"
# A relative symlink in the same folder: the loader finds the plugins beside the library.
if [ "$(readlink "$libs/libopenvino_c.so" 2>/dev/null)" != "libopenvino_c.so.$OPENVINO_SOVER" ]; then
  ln -sfn "libopenvino_c.so.$OPENVINO_SOVER" "$libs/libopenvino_c.so"
fi
[ -x "$venv/bin/benchmark_app" ] || die "$venv/bin/benchmark_app missing from the openvino wheel"

content="OPENVINO_VERSION=$OPENVINO_VERSION
OPENVINO_LIB=$lib
OPENVINO_LIB_DIR=$libs
OPENVINO_BENCHMARK_APP=$venv/bin/benchmark_app
OPENVINO_PYTHON=$venv/bin/python"
if [ "$(cat "$envfile" 2>/dev/null)" != "$content" ]; then
  printf '%s\n' "$content" >"$envfile.tmp" && mv "$envfile.tmp" "$envfile"
fi
