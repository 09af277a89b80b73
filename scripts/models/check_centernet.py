#!/usr/bin/env python3
"""Checks the CenterNet IR made by convert_centernet.py on real photographs, and writes reference
detections for the Rust tests.

Run with the OpenVINO venv's python (see $GUARDIAN_CACHE/openvino.env, OPENVINO_PYTHON).

    check_centernet.py --model-dir DIR --photos DIR [--write-reference]
        Self-test: astronaut.png and camera.png must each give a person; uniform images
        (black, grey, white) must give nothing. With --write-reference, writes
        DIR/reference.json (the detections) and PHOTOS/<name>-512x512.rgb (the exact input bytes).
    check_centernet.py --model-dir DIR --image FILE [--expect person|none]
        Detections on any image GStreamer can decode (PNG, JPEG, ...).

Images are made into the model's input with GStreamer exactly as check_nanodet.py does (a plain
bilinear stretch to 512x512).

Decoding mirrors edge/src/detect/centernet.rs: the peaks (3x3 maxima, picked in the graph) that
score at least --min-score (0.3), the best 100 (convert_centernet.decode); box = (4x - left,
4y - top, 4x + right, 4y + bottom) from the sizes head, divided by the input size, clamped to the
frame; class through model.json's class_to_coco; then per-class greedy NMS (a box is dropped
when its IoU with a kept box of the same class exceeds 0.5).
"""

import json
import os

import numpy as np
import openvino as ov

import checks
from check_nanodet import iou_of
from convert_centernet import decode

MIN_SCORE = 0.3


def fail(msg):
    checks.fail("check_centernet", msg)


class CenterNet:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("kind") != "centernet":
            fail(f"{model_dir}/model.json is of kind {self.meta.get('kind')!r}, not centernet")
        core = ov.Core()
        model = core.read_model(os.path.join(model_dir, self.meta["ir"]))
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})
        self.request = self.compiled.create_infer_request()
        self.w, self.h = self.meta["width"], self.meta["height"]
        self.labels = self.meta["labels"]
        self.to_coco = self.meta["class_to_coco"]

    def raw(self, rgb):
        assert rgb.shape == (self.h, self.w, 3) and rgb.dtype == np.uint8, rgb.shape
        self.request.infer({self.meta["input"]["name"]: rgb[np.newaxis]})
        peaks = self.request.get_tensor(self.meta["peaks"]["name"]).data[0]
        sizes = self.request.get_tensor(self.meta["sizes"]["name"]).data[0]
        return peaks.copy(), sizes.copy()

    def detect(self, rgb, min_score=MIN_SCORE, iou=0.5):
        dets = []
        peaks, sizes = self.raw(rgb)
        rows = decode(peaks, sizes, min_score, self.meta["max_detections"], self.meta["stride"])
        for row, (x0, y0, x1, y1, score, cls) in enumerate(rows):
            if score < min_score:
                continue
            c = int(round(cls))
            if not 0 <= c < len(self.to_coco):
                continue
            box = np.clip([x0 / self.w, y0 / self.h, x1 / self.w, y1 / self.h], 0.0, 1.0)
            dets.append({"class": self.to_coco[c], "score": float(score), "box": box.tolist(), "row": row})
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


if __name__ == "__main__":
    checks.main("check_centernet", __doc__, CenterNet, MIN_SCORE, f"the 512x512 photo as it is; min score {MIN_SCORE}, per-class NMS IoU 0.5")
