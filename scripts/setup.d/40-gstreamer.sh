#!/usr/bin/env bash
# GStreamer (build headers, runtime plugins, the RTSP server for the camera stand-in), ffmpeg and
# python3-venv: the Debian packages in scripts/packages/video.txt. Then checks that every
# GStreamer element the edge and its tests use is really there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/lib.sh"
ensure_debian_packages "$here/packages/video.txt"

missing=()
for element in rtspsrc rtph264depay rtph264pay h264parse avdec_h264 x264enc mp4mux appsrc appsink \
  videorate videoscale videoconvert jpegenc v4l2src videotestsrc tee queue filesink; do
  gst-inspect-1.0 --exists "$element" || missing+=("$element")
done
[ ${#missing[@]} -eq 0 ] \
  || die "GStreamer elements missing after install: ${missing[*]} (see scripts/packages/video.txt; try rm -rf ~/.cache/gstreamer-1.0)"
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' 2>/dev/null \
  || die "/usr/bin/python3 cannot import GstRtspServer (gir1.2-gst-rtsp-server-1.0, python3-gi)"
