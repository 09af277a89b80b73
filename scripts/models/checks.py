"""What check_centernet.py and check_movenet.py share: printing detections, the self-test on
the test photos (a person on astronaut.png and camera.png, nothing on uniform images, and the
reference detections for the Rust tests), and the command line. Each check gives its model's
detector: an object with `w`, `h` and `detect(rgb, min_score=...)` returning detections as
dicts (label, class, score, box in fractions, box_px, and the output `row` or `slot`).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import openvino as ov

from check_nanodet import load_rgb


def fail(tool, msg):
    print(f"{tool}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def show(name, dets, size):
    print(f"{name}: {len(dets)} detection(s)")
    for d in dets:
        x0, y0, x1, y1 = d["box_px"]
        where = next((f"  ({k} {d[k]})" for k in ("row", "slot") if k in d), "")
        print(f"  {d['label']:<12} {d['score']:.4f}  box({size} px) x0={x0:.1f} y0={y0:.1f} x1={x1:.1f} y1={y1:.1f}"
              f"{where}")


def self_test(tool, det, photos, model_dir, write_reference, min_score, how):
    """`how` says how the inputs were made (kept in reference.json)."""
    size = f"{det.w}x{det.h}"
    reference = {
        "how": f"GStreamer: decodebin ! videoconvert ! video/x-raw,format=RGB ! videoscale (bilinear) ! "
               f"{size} RGB: {how}",
        "openvino": ov.get_version(),
        "min_score": min_score,
        "nms_iou": 0.5,
        "photos": {},
    }
    for name in ("astronaut.png", "camera.png"):
        rgb = load_rgb(os.path.join(photos, name), det.w, det.h)
        dets = det.detect(rgb)
        show(name, dets, size)
        if not [d for d in dets if d["label"] == "person"]:
            fail(tool, f"no person found in {name}")
        raw_name = name.rsplit(".", 1)[0] + f"-{size}.rgb"
        if write_reference:
            tmp = os.path.join(photos, "." + raw_name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(rgb.tobytes())
            os.replace(tmp, os.path.join(photos, raw_name))
        reference["photos"][name] = {
            "input_rgb": raw_name,
            "input_rgb_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
            "detections": dets,
        }
    for label, value in (("black", 0), ("grey", 128), ("white", 255)):
        dets = det.detect(np.full((det.h, det.w, 3), value, np.uint8))
        show(f"uniform {label}", dets, size)
        if dets:
            fail(tool, f"a uniform {label} image gave detections")
    if write_reference:
        tmp = os.path.join(model_dir, ".reference.json.tmp")
        with open(tmp, "w") as f:
            json.dump(reference, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(model_dir, "reference.json"))
    print(f"{tool}: OK")


def main(tool, doc, make_detector, min_score, how):
    """The command line of a check (see its docstring, `doc`)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--photos", help="folder with astronaut.png and camera.png (self-test)")
    ap.add_argument("--write-reference", action="store_true")
    ap.add_argument("--image", help="an image file to run the detector on")
    ap.add_argument("--expect", choices=["person", "none"], help="with --image: fail unless this holds")
    ap.add_argument("--min-score", type=float, default=min_score)
    ap.add_argument("--json", action="store_true", help="with --image: print the detections as JSON")
    a = ap.parse_args()
    det = make_detector(a.model_dir)
    if a.image:
        dets = det.detect(load_rgb(a.image, det.w, det.h), min_score=a.min_score)
        if a.json:
            print(json.dumps(dets))
        else:
            show(a.image, dets, f"{det.w}x{det.h}")
        persons = [d for d in dets if d["label"] == "person"]
        if a.expect == "person" and not persons:
            fail(tool, f"expected a person in {a.image}")
        if a.expect == "none" and dets:
            fail(tool, f"expected no detection in {a.image}")
    elif a.photos:
        self_test(tool, det, a.photos, a.model_dir, a.write_reference, min_score, how)
    else:
        ap.error("give --photos or --image")
