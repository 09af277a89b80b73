#!/usr/bin/python3
"""Renders the scenes of edge/tools/scenes.py offline, as raw frames with their ground truth, for
the detector's recall benchmark (which feeds the frames to the detector).

    edge/tools/render-scenes.py --out DIR [--width 640] [--height 360] [--fps 5] [--scene NAME ...]

Run with Debian's /usr/bin/python3 (numpy); the photos come from scripts/setup.sh 56-scene-photos.
Without --scene it renders every scene of the catalogue. Per scene it writes:

    DIR/NAME.rgb   the frames concatenated, each WIDTH x HEIGHT packed RGB (3 bytes a pixel, rows
                   top to bottom, no padding); frame i shows scene time i / FPS
    DIR/NAME.json  {"scene", "description", "width", "height", "fps", "frames", "duration_s",
                    "appearances": [{"actor", "kind" (person|car), "cutout", "start_s", "end_s",
                                     "height_frac", "visible_frac"}, ...],
                    "stamp"}

An actor is in frame i when start_s <= i / FPS < end_s (entirely inside the frame; visible_frac
is the least fraction of it that no foreground covers). "stamp" is a SHA-256 over the scene's
spec, scenes.py, the photos it uses and the size and rate: a scene whose JSON already holds the
current stamp (and whose .rgb has the right size) is skipped. Both files are written under
temporary names and renamed, the JSON last. One line per scene on stdout: "rendered NAME FRAMES
frames SECS s" or "current NAME".
"""

import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402 (beside this file)


def stamp(scene, width, height, fps):
    return hashlib.sha256(f"{scenes.stamp(scene)} {width}x{height}@{fps}".encode()).hexdigest()


def is_current(out, scene, width, height, fps, want):
    """Whether DIR/NAME.json has stamp `want` and DIR/NAME.rgb the size it says."""
    try:
        with open(os.path.join(out, scene.name + ".json")) as f:
            meta = json.load(f)
        size = os.path.getsize(os.path.join(out, scene.name + ".rgb"))
    except (OSError, ValueError):
        return False
    return meta.get("stamp") == want and size == meta["frames"] * width * height * 3


def render(out, scene, width, height, fps, want):
    """Writes DIR/NAME.rgb then DIR/NAME.json; returns the number of frames."""
    frames = int(round(scene.duration * fps))
    renderer = scenes.Renderer(scene, width, height)
    rgb, meta = os.path.join(out, scene.name + ".rgb"), os.path.join(out, scene.name + ".json")
    with open(rgb + ".tmp", "wb") as f:
        for i in range(frames):
            f.write(renderer.frame(i / fps).data)
    os.replace(rgb + ".tmp", rgb)
    doc = {"scene": scene.name, "description": scene.description, "width": width, "height": height,
           "fps": fps, "frames": frames, "duration_s": scene.duration,
           "appearances": scenes.appearances(scene), "stamp": want}
    with open(meta + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(meta + ".tmp", meta)
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for NAME.rgb and NAME.json (made if missing)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=int, default=5)
    ap.add_argument("--scene", action="append", choices=list(scenes.SCENES),
                    help="render this scene (repeatable; default: all)")
    a = ap.parse_args()
    if a.width < 16 or a.height < 16 or not 1 <= a.fps <= 60:
        ap.error("want --width and --height at least 16 and --fps 1..60")
    os.makedirs(a.out, exist_ok=True)
    try:
        for name in a.scene or list(scenes.SCENES):
            scene = scenes.SCENES[name]
            want = stamp(scene, a.width, a.height, a.fps)
            if is_current(a.out, scene, a.width, a.height, a.fps, want):
                print(f"current {name}", flush=True)
                continue
            started = time.monotonic()
            frames = render(a.out, scene, a.width, a.height, a.fps, want)
            print(f"rendered {name} {frames} frames {time.monotonic() - started:.1f} s", flush=True)
    except RuntimeError as e:  # a photo missing
        sys.exit(f"render-scenes: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
