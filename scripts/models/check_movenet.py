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

import json
import os

import numpy as np
import openvino as ov

import checks
from check_nanodet import iou_of

MIN_SCORE = 0.25


def fail(msg):
    checks.fail("check_movenet", msg)


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


if __name__ == "__main__":
    checks.main("check_movenet", __doc__, MoveNet, MIN_SCORE, f"the 512x512 photo stretched; min score {MIN_SCORE}, NMS IoU 0.5")
