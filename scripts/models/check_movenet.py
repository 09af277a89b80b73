#!/usr/bin/env python3
"""Checks the MoveNet MultiPose IR made by convert_movenet.py on real photographs, and writes
reference detections for the Rust tests.

Run with the OpenVINO venv's python (see $GUARDIAN_CACHE/openvino.env, OPENVINO_PYTHON).

    check_movenet.py --model-dir DIR --photos DIR [--write-reference]
        Self-test: astronaut.png and camera.png must each give a person; uniform images
        (black, grey, white) must give nothing. With --write-reference, writes
        DIR/reference.json (the detections) and PHOTOS/<name>-256x256.rgb (the exact input bytes).
    check_movenet.py --model-dir DIR --image FILE [--expect person|none]
        Detections on any image GStreamer can decode (PNG, JPEG, ...).

Images are made into the model's input with GStreamer exactly as check_nanodet.py does (a plain
bilinear stretch to 256x256).

Decoding mirrors edge/src/detect/movenet.rs: each of the six rows whose person score (value 55)
is at least --min-score (0.25) is a person, COCO class 0 through model.json's class_to_coco; its
box is (xmin, ymin, xmax, ymax) = values (52, 51, 54, 53), already fractions of the input,
clamped to 0..1 (an empty box is dropped); then greedy NMS (a box is dropped when its IoU with a
kept one exceeds 0.5).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import openvino as ov

from check_nanodet import iou_of, load_rgb

MIN_SCORE = 0.25


def fail(msg):
    print(f"check_movenet: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class MoveNet:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("kind") != "movenet":
            fail(f"{model_dir}/model.json is of kind {self.meta.get('kind')!r}, not movenet")
        core = ov.Core()
        model = core.read_model(os.path.join(model_dir, self.meta["ir"]))
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})
        self.request = self.compiled.create_infer_request()
        self.w, self.h = self.meta["width"], self.meta["height"]
        self.labels = self.meta["labels"]
        self.to_coco = self.meta["class_to_coco"]
        self.row, self.box = self.meta["row_values"], self.meta["box_offset"]

    def raw(self, rgb):
        assert rgb.shape == (self.h, self.w, 3) and rgb.dtype == np.uint8, rgb.shape
        self.request.infer({self.meta["input"]["name"]: rgb[np.newaxis]})
        return self.request.get_tensor(self.meta["output"]["name"]).data.reshape(-1, self.row).copy()

    def detect(self, rgb, min_score=MIN_SCORE, iou=0.5):
        dets = []
        for slot, r in enumerate(self.raw(rgb)):
            ymin, xmin, ymax, xmax, score = (float(v) for v in r[self.box:self.box + 5])
            if score < min_score:
                continue
            box = np.clip([xmin, ymin, xmax, ymax], 0.0, 1.0)
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            dets.append({"class": self.to_coco[0], "score": score, "box": box.tolist(), "slot": slot})
        dets.sort(key=lambda d: -d["score"])
        kept = []
        for d in dets:
            if all(k["class"] != d["class"] or iou_of(k["box"], d["box"]) <= iou for k in kept):
                kept.append(d)
        for d in kept:
            d["label"] = "person"
            d["box_px"] = [round(v * s, 2) for v, s in zip(d["box"], (self.w, self.h, self.w, self.h))]
            d["box"] = [round(v, 5) for v in d["box"]]
            d["score"] = round(d["score"], 4)
        return kept


def show(name, dets, size):
    print(f"{name}: {len(dets)} detection(s)")
    for d in dets:
        x0, y0, x1, y1 = d["box_px"]
        print(f"  {d['label']:<12} {d['score']:.4f}  box({size} px) x0={x0:.1f} y0={y0:.1f} x1={x1:.1f} y1={y1:.1f}"
              f"  (slot {d['slot']})")


def self_test(det, photos, model_dir, write_reference):
    size = f"{det.w}x{det.h}"
    reference = {
        "how": f"GStreamer: decodebin ! videoconvert ! video/x-raw,format=RGB ! videoscale (bilinear) ! "
               f"{size} RGB: the 512x512 photo stretched; min score {MIN_SCORE}, NMS IoU 0.5",
        "openvino": ov.get_version(),
        "min_score": MIN_SCORE,
        "nms_iou": 0.5,
        "photos": {},
    }
    for name in ("astronaut.png", "camera.png"):
        rgb = load_rgb(os.path.join(photos, name), det.w, det.h)
        dets = det.detect(rgb)
        show(name, dets, size)
        if not [d for d in dets if d["label"] == "person"]:
            fail(f"no person found in {name}")
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
            fail(f"a uniform {label} image gave detections")
    if write_reference:
        tmp = os.path.join(model_dir, ".reference.json.tmp")
        with open(tmp, "w") as f:
            json.dump(reference, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(model_dir, "reference.json"))
    print("check_movenet: OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--photos", help="folder with astronaut.png and camera.png (self-test)")
    ap.add_argument("--write-reference", action="store_true")
    ap.add_argument("--image", help="an image file to run the detector on")
    ap.add_argument("--expect", choices=["person", "none"], help="with --image: fail unless this holds")
    ap.add_argument("--min-score", type=float, default=MIN_SCORE)
    ap.add_argument("--json", action="store_true", help="with --image: print the detections as JSON")
    a = ap.parse_args()
    det = MoveNet(a.model_dir)
    if a.image:
        dets = det.detect(load_rgb(a.image, det.w, det.h), min_score=a.min_score)
        if a.json:
            print(json.dumps(dets))
        else:
            show(a.image, dets, f"{det.w}x{det.h}")
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
