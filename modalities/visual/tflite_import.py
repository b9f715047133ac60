"""Read a small convolutional TFLite graph into an op list and torch-layout weights.

Only what MediaPipe's BlazeFace detectors use is understood: ``CONV_2D``,
``DEPTHWISE_CONV_2D``, ``ADD``, ``RELU``, ``PAD``, ``MAX_POOL_2D``, ``RESHAPE``,
``CONCATENATION`` and ``DEQUANTIZE`` of float16 constants. Anything else raises
ValueError naming the op, so an unknown graph is refused rather than run wrong.

The result is what :class:`dfstream.modalities.visual.graph_net.GraphNet` runs: ``ops``, a
list of dicts (``op``, ``inputs``, ``output`` and the op's settings), and
``tensors``, float32 weights already in torch's layout (convolution kernels
``(out, in / groups, kh, kw)``). Tensors are named by the graph's own tensor
names. The FlatBuffer schema comes from the ``tflite`` package (Apache-2.0).
"""

from __future__ import annotations

import numpy as np

PADDING = {0: "same", 1: "valid"}
ACTIVATION = {0: None, 1: "relu"}
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}


def read_tflite(data: bytes) -> tuple[list[dict], dict[str, np.ndarray], list[str], list[str]]:
    """``(ops, tensors, inputs, outputs)`` of the first subgraph of a ``.tflite`` file's bytes.

    ``inputs`` and ``outputs`` name the graph's input and output tensors.
    Raises ValueError on an op or option this reader does not know.
    """
    import tflite  # the schema; only needed when importing a model

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def name(index: int) -> str:
        return graph.Tensors(index).Name().decode()

    def constant(index: int) -> np.ndarray | None:
        tensor = graph.Tensors(index)
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw.size == 0:
            return None
        if tensor.Type() not in _DTYPES:
            raise ValueError(f"tensor {name(index)!r} has TFLite type {tensor.Type()}, not float32/float16/int32")
        return np.frombuffer(raw.tobytes(), _DTYPES[tensor.Type()]).reshape(tensor.ShapeAsNumpy())

    def options(op, cls):
        table = op.BuiltinOptions()
        parsed = cls()
        parsed.Init(table.Bytes, table.Pos)
        return parsed

    consts: dict[str, np.ndarray] = {}
    for i in range(graph.TensorsLength()):
        value = constant(i)
        if value is not None:
            consts[name(i)] = value
    ops: list[dict] = []
    tensors: dict[str, np.ndarray] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        ins = [name(j) for j in op.InputsAsNumpy() if j >= 0]
        out = name(int(op.OutputsAsNumpy()[0]))
        if kind == "DEQUANTIZE":
            consts[out] = consts[ins[0]].astype(np.float32)
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            opt = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            if opt.DilationHFactor() != 1 or opt.DilationWFactor() != 1:
                raise ValueError(f"{kind} {out!r}: dilation is not supported")
            kernel = consts[ins[1]].astype(np.float32)  # (O, kh, kw, I) or (1, kh, kw, C * m)
            weight = kernel.transpose(3, 0, 1, 2) if depthwise else kernel.transpose(0, 3, 1, 2)
            groups = int(weight.shape[0] // opt.DepthMultiplier()) if depthwise else 1
            tensors[ins[1]] = np.ascontiguousarray(weight)
            tensors[ins[2]] = consts[ins[2]].astype(np.float32)
            ops.append(
                {
                    "op": "conv",
                    "inputs": [ins[0]],
                    "output": out,
                    "weight": ins[1],
                    "bias": ins[2],
                    "stride": [opt.StrideH(), opt.StrideW()],
                    "padding": _padding(opt.Padding()),
                    "groups": groups,
                    "activation": _activation(opt.FusedActivationFunction()),
                }
            )
        elif kind == "MAX_POOL_2D":
            opt = options(op, tflite.Pool2DOptions)
            ops.append(
                {
                    "op": "max_pool",
                    "inputs": ins,
                    "output": out,
                    "kernel": [opt.FilterHeight(), opt.FilterWidth()],
                    "stride": [opt.StrideH(), opt.StrideW()],
                    "padding": _padding(opt.Padding()),
                    "activation": _activation(opt.FusedActivationFunction()),
                }
            )
        elif kind == "ADD":
            opt = options(op, tflite.AddOptions)
            ops.append(
                {"op": "add", "inputs": ins, "output": out, "activation": _activation(opt.FusedActivationFunction())}
            )
        elif kind == "RELU":
            ops.append({"op": "relu", "inputs": ins, "output": out})
        elif kind == "PAD":
            pads = consts[ins[1]].astype(int).tolist()  # NHWC rows of (before, after)
            if pads[0] != [0, 0]:
                raise ValueError(f"PAD {out!r} pads the batch axis")
            ops.append({"op": "pad", "inputs": [ins[0]], "output": out, "nhwc": pads[1:]})
        elif kind == "RESHAPE":
            shape = graph.Tensors(int(op.OutputsAsNumpy()[0])).ShapeAsNumpy().astype(int).tolist()
            ops.append({"op": "reshape", "inputs": [ins[0]], "output": out, "shape": shape[1:]})
        elif kind == "CONCATENATION":
            opt = options(op, tflite.ConcatenationOptions)
            ops.append(
                {
                    "op": "concat",
                    "inputs": ins,
                    "output": out,
                    "axis": int(opt.Axis()),
                    "activation": _activation(opt.FusedActivationFunction()),
                }
            )
        else:
            raise ValueError(f"TFLite op {kind} ({out!r}) is not supported by this reader")
    inputs = [name(j) for j in graph.InputsAsNumpy()]
    outputs = [name(j) for j in graph.OutputsAsNumpy()]
    return ops, tensors, inputs, outputs


def _padding(code: int) -> str:
    if code not in PADDING:
        raise ValueError(f"unknown TFLite padding {code}")
    return PADDING[code]


def _activation(code: int) -> str | None:
    if code not in ACTIVATION:
        raise ValueError(f"fused activation {code} is not supported (only none and relu)")
    return ACTIVATION[code]
