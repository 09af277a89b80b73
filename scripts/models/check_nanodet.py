#!/usr/bin/env python3
"""Checks the NanoDet IR made by convert_nanodet.py on real photographs, and prints reference
detections for the Rust tests.

Run with the OpenVINO venv's python (see $GUARDIAN_CACHE/openvino.env, OPENVINO_PYTHON).

    check_nanodet.py --model-dir DIR --photos DIR [--write-reference]
        Self-test: astronaut.png and camera.png must each give a person; uniform images
        (black, grey, white) must give nothing. With --write-reference, writes
        DIR/reference.json (the detections) and PHOTOS/<name>-416x416.rgb (the exact input bytes).
    check_nanodet.py --model-dir DIR --image FILE [--expect person|none]
        Detections on any image GStreamer can decode (PNG, JPEG, ...).

Images are made into the model's input with GStreamer 1.22 exactly as the edge does:
`decodebin ! videoconvert ! video/x-raw,format=RGB ! videoscale ! video/x-raw,width=416,height=416`
(videoscale's default bilinear method; a plain stretch to 416x416, no letterbox, no crop).

Decoding mirrors edge/src/detect/nanodet.rs: per cell the best class; keep it if its score is at
least --min-score (0.35); box = cell centre ((x+0.5)*s, (y+0.5)*s) minus/plus the distances
(left, top, right, bottom) = expectation of the softmax over the 11 bins times the stride, clamped to
the frame; then per-class greedy NMS (a box is dropped when its IoU with a kept box of the same
class exceeds 0.5).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import openvino as ov


def fail(msg):
    print(f"check_nanodet: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def load_rgb(path, width, height):
    """The image at `path` as u8 RGB [height, width, 3], decoded and stretched by GStreamer."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "frame.rgb")
        cmd = [
            "gst-launch-1.0", "-q",
            "filesrc", f"location={path}", "!", "decodebin", "!",
            "videoconvert", "!", "video/x-raw,format=RGB", "!",
            "videoscale", "!", f"video/x-raw,format=RGB,width={width},height={height}", "!",
            "filesink", f"location={out}",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(out):
            fail(f"GStreamer could not decode {path}: {r.stderr.strip() or r.stdout.strip()}")
        data = open(out, "rb").read()
    # RGB rows of width*3 bytes: GStreamer pads rows to 4 bytes, none needed for 416 (1248 bytes).
    stride = (width * 3 + 3) // 4 * 4
    if len(data) != stride * height:
        fail(f"{path}: decoded {len(data)} bytes, expected one {width}x{height} RGB frame")
    rows = np.frombuffer(data, np.uint8).reshape(height, stride)
    return np.ascontiguousarray(rows[:, : width * 3].reshape(height, width, 3))


class NanoDet:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            self.meta = json.load(f)
        core = ov.Core()
        model = core.read_model(os.path.join(model_dir, self.meta["ir"]))
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})
        self.request = self.compiled.create_infer_request()
        self.w, self.h = self.meta["width"], self.meta["height"]
        self.bins = self.meta["bins"]
        self.labels = self.meta["labels"]

    def raw(self, rgb):
        assert rgb.shape == (self.h, self.w, 3) and rgb.dtype == np.uint8, rgb.shape
        self.request.infer({self.meta["input"]["name"]: rgb[np.newaxis]})
        out = {}
        for lv in self.meta["levels"]:
            scores = self.request.get_tensor(lv["scores"]["name"]).data.reshape(lv["cells"], -1)
            boxes = self.request.get_tensor(lv["boxes"]["name"]).data.reshape(lv["cells"], 4 * self.bins)
            out[lv["stride"]] = (scores.copy(), boxes.copy())
        return out

    def detect(self, rgb, min_score=0.35, iou=0.5):
        dets = []
        for stride, (scores, boxes) in self.raw(rgb).items():
            cols = -(-self.w // stride)
            cls = scores.argmax(axis=1)
            best = scores[np.arange(len(cls)), cls]
            for cell in np.nonzero(best >= min_score)[0]:
                cx = (cell % cols + 0.5) * stride
                cy = (cell // cols + 0.5) * stride
                reg = boxes[cell].reshape(4, self.bins).astype(np.float64)
                e = np.exp(reg - reg.max(axis=1, keepdims=True))
                d = (e / e.sum(axis=1, keepdims=True)) @ np.arange(self.bins) * stride
                box = np.clip([(cx - d[0]) / self.w, (cy - d[1]) / self.h,
                               (cx + d[2]) / self.w, (cy + d[3]) / self.h], 0.0, 1.0)
                dets.append({"class": int(cls[cell]), "score": float(best[cell]), "box": box.tolist(),
                             "stride": stride, "cell": int(cell)})
        dets.sort(key=lambda d: -d["score"])
        kept = []
        for d in dets:
            if all(k["class"] != d["class"] or iou_of(k["box"], d["box"]) <= iou for k in kept):
                kept.append(d)
        for d in kept:
            d["label"] = self.labels[d["class"]]
            d["box_px"] = [round(v * s, 2) for v, s in zip(d["box"], (self.w, self.h, self.w, self.h))]
            d["box"] = [round(v, 5) for v in d["box"]]
            d["score"] = round(d["score"], 4)
        return kept


def iou_of(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else inter / union


def show(name, dets):
    print(f"{name}: {len(dets)} detection(s)")
    for d in dets:
        x0, y0, x1, y1 = d["box_px"]
        print(f"  {d['label']:<12} {d['score']:.4f}  box(416x416 px) x0={x0:.1f} y0={y0:.1f} x1={x1:.1f} y1={y1:.1f}"
              f"  (stride {d['stride']}, cell {d['cell']})")


def self_test(det, photos, model_dir, write_reference):
    reference = {
        "how": "GStreamer 1.22: decodebin ! videoconvert ! video/x-raw,format=RGB ! videoscale (bilinear) ! "
               "416x416 RGB: the 512x512 photo stretched, no letterbox; min score 0.35, per-class NMS IoU 0.5",
        "openvino": ov.get_version(),
        "photos": {},
    }
    for name in ("astronaut.png", "camera.png"):
        path = os.path.join(photos, name)
        rgb = load_rgb(path, det.w, det.h)
        dets = det.detect(rgb)
        show(name, dets)
        persons = [d for d in dets if d["label"] == "person"]
        if not persons:
            fail(f"no person found in {name}")
        raw_name = name.rsplit(".", 1)[0] + f"-{det.w}x{det.h}.rgb"
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
        show(f"uniform {label}", dets)
        if dets:
            fail(f"a uniform {label} image gave detections")
    if write_reference:
        tmp = os.path.join(model_dir, ".reference.json.tmp")
        with open(tmp, "w") as f:
            json.dump(reference, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(model_dir, "reference.json"))
    print("check_nanodet: OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--photos", help="folder with astronaut.png and camera.png (self-test)")
    ap.add_argument("--write-reference", action="store_true")
    ap.add_argument("--image", help="an image file to run the detector on")
    ap.add_argument("--expect", choices=["person", "none"], help="with --image: fail unless this holds")
    ap.add_argument("--min-score", type=float, default=0.35)
    ap.add_argument("--json", action="store_true", help="with --image: print the detections as JSON")
    a = ap.parse_args()
    det = NanoDet(a.model_dir)
    if a.image:
        dets = det.detect(load_rgb(a.image, det.w, det.h), min_score=a.min_score)
        if a.json:
            print(json.dumps(dets))
        else:
            show(a.image, dets)
        persons = [d for d in dets if d["label"] == "person"]
        if a.expect == "person" and not persons:
            fail(f"expected a person in {a.image}")
        if a.expect == "none" and dets:
            fail(f"expected no detection in {a.image}")
    elif a.photos:
        self_test(det, a.photos, a.model_dir, a.write_reference)
    else:
        ap.error("give --photos or --image")


if __name__ == "__main__":
    main()
