"""TensorFlow.js graph models to OpenVINO, without TensorFlow: the part that convert_nanodet.py and
convert_centernet.py share.

A TF.js graph model's `<name>.json` holds `modelTopology` (a TF GraphDef in JSON) and
`weightsManifest` (where each weight lies in the `.bin` shards and how it is quantised). The
topology is parsed with the TF proto classes that ship in the `tensorboard` wheel, each weight's
Const node is filled from the shards (float16 / uint8 / uint16 weights dequantised as the manifest
says; int64 Consts are stored as int32 by TF.js), and the fused convolutions that OpenVINO's TF
frontend cannot read (`_FusedConv2D`, `FusedDepthwiseConv2dNative`) are split into their plain ops.
OpenVINO's TF frontend then reads the GraphDef.

Imported by the scripts beside it (Python puts a script's own folder first on sys.path).
"""

import json
import os
import sys

import numpy as np
import openvino as ov
from google.protobuf import json_format
from tensorboard.compat.proto import graph_pb2, node_def_pb2, types_pb2

# COCO 2017's 80 detection classes in the contiguous order both models' class indices use (the
# order of edge/src/detect/labels.rs).
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
# TF DataType enum -> numpy dtype, for the Const nodes these models have.
TF_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_UINT8: np.uint8,
}


def prog():
    """The running script's name without `.py`, for messages."""
    return os.path.splitext(os.path.basename(sys.argv[0]))[0]


def fail(msg):
    print(f"{prog()}: error: {msg}", file=sys.stderr)
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


def tfjs_to_graphdef(model_json):
    """The GraphDef of the TF.js graph model `model_json` (its `.bin` shards beside it), with
    every weight filled in, and the model's signature (inputs and outputs by name)."""
    model_dir = os.path.dirname(model_json)
    with open(model_json) as f:
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
    unfused = unfuse(graph)
    print(f"{prog()}: {len(graph.node)} nodes, {filled} weights filled, {unfused} fused convolutions split")
    return graph, model["signature"]


# TF.js's fused convolutions -> the plain op they fuse, and the attributes it keeps.
FUSED = {
    "_FusedConv2D": ("Conv2D", ("T", "strides", "padding", "explicit_paddings", "dilations", "data_format",
                                "use_cudnn_on_gpu")),
    "FusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", ("T", "strides", "padding", "explicit_paddings",
                                                             "dilations", "data_format")),
}
FUSABLE = {"BiasAdd", "Relu", "Relu6"}


def unfuse(graph):
    """Splits each fused convolution (`_FusedConv2D`, `FusedDepthwiseConv2dNative` with the
    fused ops BiasAdd then Relu or Relu6), which OpenVINO's TF frontend has no rule for, into
    the convolution, a BiasAdd and the activation; the last keeps the node's name, so consumers
    are untouched. Returns how many were split."""
    out, split = [], 0
    for n in graph.node:
        if n.op not in FUSED:
            out.append(n)
            continue
        fused = [s.decode() for s in n.attr["fused_ops"].list.s]
        if not fused or fused[0] != "BiasAdd" or not set(fused) <= FUSABLE or len(fused) > 2 or len(n.input) != 3:
            fail(f"{n.op} {n.name}: fused ops {fused} with {len(n.input)} inputs are not supported")
        op, keep = FUSED[n.op]
        conv = node_def_pb2.NodeDef(name=n.name + "/unfused_conv", op=op, input=n.input[:2])
        for k in keep:
            if k in n.attr:
                conv.attr[k].CopyFrom(n.attr[k])
        steps = [conv]
        bias = node_def_pb2.NodeDef(name=n.name + "/unfused_bias", op="BiasAdd", input=[conv.name, n.input[2]])
        for k in ("T", "data_format"):
            if k in n.attr:
                bias.attr[k].CopyFrom(n.attr[k])
        steps.append(bias)
        for act in fused[1:]:
            a = node_def_pb2.NodeDef(name=n.name + f"/unfused_{act.lower()}", op=act, input=[steps[-1].name])
            if "T" in n.attr:
                a.attr["T"].CopyFrom(n.attr["T"])
            steps.append(a)
        steps[-1].name = n.name  # the activation, or the BiasAdd when there is none
        out.extend(steps)
        split += 1
    if split:
        del graph.node[:]
        graph.node.extend(out)
    return split


def read_tfjs(model_json, work_dir):
    """The TF.js graph model `model_json` as an OpenVINO model (through a temporary `.pb` in
    `work_dir`), and its signature."""
    graph, signature = tfjs_to_graphdef(model_json)
    os.makedirs(work_dir, exist_ok=True)
    pb = os.path.join(work_dir, os.path.splitext(os.path.basename(model_json))[0] + ".pb")
    with open(pb, "wb") as f:
        f.write(graph.SerializeToString())
    model = ov.Core().read_model(pb)
    os.remove(pb)
    return model, signature
