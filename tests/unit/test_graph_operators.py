"""Each allow-listed operator, in the forms exporters rarely emit, against onnxruntime.

Every case is a small ONNX graph written with onnx.helper; importing it runs the translation and
compares every intermediate value with onnxruntime (capacity/graphs/verify.py), so a case passes
only if our torch operator computes what the ONNX operator computes. The logits are then checked
at a batch size the verification did not use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.models import build_model

RNG = np.random.default_rng(0)


def weights(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def model(nodes, input_shape, initializers=None, opset=17, output="y"):
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(array, name) for name, array in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def flat(source: str, output: str = "y"):
    return helper.make_node("Flatten", [source], [output], axis=1)


N = helper.make_node
CASES = {
    "conv asymmetric pads": model(
        [N("Conv", ["x", "w"], ["c"], pads=[0, 1, 1, 2]), flat("c")], [2, 5, 5], {"w": weights(3, 2, 3, 3)}
    ),
    "conv SAME_UPPER stride 2": model(
        [N("Conv", ["x", "w", "b"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]), flat("c")],
        [2, 6, 5],
        {"w": weights(3, 2, 3, 2), "b": weights(3)},
    ),
    "conv SAME_LOWER": model(
        [N("Conv", ["x", "w"], ["c"], auto_pad="SAME_LOWER"), flat("c")], [2, 4, 4], {"w": weights(2, 2, 2, 2)}
    ),
    "conv dilated grouped": model(
        [N("Conv", ["x", "w"], ["c"], dilations=[2, 2], group=2, pads=[2, 2, 2, 2]), flat("c")],
        [4, 6, 6],
        {"w": weights(6, 2, 3, 3)},
    ),
    "conv1d": model(
        [N("Conv", ["x", "w"], ["c"], pads=[1, 1], strides=[2]), flat("c")], [3, 9], {"w": weights(4, 3, 3)}
    ),
    "conv3d": model(
        [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1, 1, 1]), flat("c")], [2, 3, 3, 3], {"w": weights(2, 2, 3, 3, 3)}
    ),
    "conv transpose": model(
        [
            N("ConvTranspose", ["x", "w", "b"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
            flat("c"),
        ],
        [3, 4, 4],
        {"w": weights(3, 2, 3, 3), "b": weights(2)},
    ),
    "gemm transA alpha beta": model(
        [N("Transpose", ["x"], ["t"], perm=[1, 0]), N("Gemm", ["t", "w", "b"], ["y"], transA=1, alpha=0.5, beta=2.0)],
        [6],
        {"w": weights(6, 4), "b": weights(1, 4)},
    ),
    "matmul of activations": model(
        [
            N("Reshape", ["x", "s"], ["r"]),
            N("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
            N("MatMul", ["r", "t"], ["m"]),
            flat("m"),
        ],
        [12],
        {"s": ints(0, 3, 4)},
    ),
    "matmul with bias on 3-d input": model(
        [N("Reshape", ["x", "s"], ["r"]), N("MatMul", ["r", "w"], ["m"]), N("Add", ["m", "b"], ["a"]), flat("a")],
        [12],
        {"s": ints(-1, 3, 4), "w": weights(4, 5), "b": weights(5)},
    ),
    "split input and concat": model(
        [N("Split", ["x", "parts"], ["a", "b"], axis=1), N("Concat", ["b", "a"], ["y"], axis=1)],
        [7],
        {"parts": ints(3, 4)},
    ),
    "split num_outputs (opset 18)": model(
        [N("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3), N("Sum", ["a", "b", "c"], ["y"])], [9], opset=18
    ),
    "slice steps": model(
        [N("Slice", ["x", "s", "e", "a", "st"], ["y"])], [10], {"s": ints(1), "e": ints(9), "a": ints(1), "st": ints(3)}
    ),
    "slice negative step": model(
        [N("Slice", ["x", "s", "e", "a", "st"], ["y"])],
        [10],
        {"s": ints(-2), "e": ints(-100), "a": ints(1), "st": ints(-2)},
    ),
    "slice negative step from before the start": model(
        [
            N("Slice", ["x", "s", "e", "a", "st"], ["d"]),
            N("Shape", ["x"], ["shape"]),
            N("Slice", ["shape", "s", "e", "zero", "st"], ["first"]),
            N("Concat", ["first", "minus"], ["target"], axis=0),
            N("Reshape", ["x", "target"], ["r"]),
            N("Concat", ["d", "r"], ["y"], axis=1),
        ],
        [10],
        {"s": ints(-100), "e": ints(-200), "a": ints(1), "st": ints(-1), "zero": ints(0), "minus": ints(-1)},
    ),
    "slice attributes (opset 9)": model([N("Slice", ["x"], ["y"], starts=[2], ends=[7], axes=[1])], [10], opset=9),
    "pad reflect": model(
        [N("Pad", ["x", "p"], ["q"], mode="reflect"), flat("q")], [2, 4, 4], {"p": ints(0, 0, 1, 2, 0, 0, 2, 1)}
    ),
    "pad edge": model(
        [N("Pad", ["x", "p"], ["q"], mode="edge"), flat("q")], [2, 3, 3], {"p": ints(0, 0, 1, 1, 0, 0, 1, 1)}
    ),
    "pad constant value (opset 9 attributes)": model(
        [N("Pad", ["x"], ["q"], pads=[0, 1, 0, 2], value=1.5), flat("q")], [3], opset=9
    ),
    "tile and expand": model(
        [
            N("Tile", ["x", "r"], ["t"]),
            N("Unsqueeze", ["t", "ax"], ["u"]),
            N("Expand", ["u", "shape"], ["e"]),
            flat("e"),
        ],
        [3],
        {"r": ints(1, 2), "ax": ints(1), "shape": ints(1, 2, 1)},
    ),
    "where equal less": model(
        [
            N("Less", ["x", "zero"], ["neg"]),
            N("Where", ["neg", "zero", "x"], ["r"]),
            N("Equal", ["mask", "one"], ["m"]),
            N("Where", ["m", "r", "x"], ["y"]),
        ],
        [4],
        {"zero": np.zeros(1, np.float32), "mask": ints(1, 0, 1, 0), "one": ints(1)},
    ),
    "lrn": model([N("LRN", ["x"], ["l"], size=3, alpha=0.01, beta=0.75, bias=2.0), flat("l")], [5, 2, 2]),
    "average pool counting pads, ceil": model(
        [
            N(
                "AveragePool",
                ["x"],
                ["p"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                count_include_pad=1,
                ceil_mode=1,
            ),
            flat("p"),
        ],
        [2, 6, 6],
    ),
    "average pool excluding pads": model(
        [N("AveragePool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), flat("p")], [2, 4, 4]
    ),
    "max pool dilated ceil": model(
        [N("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 2], ceil_mode=1), flat("p")],
        [2, 7, 7],
    ),
    "max pool asymmetric pads": model(
        [N("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[0, 0, 2, 1]), flat("p")], [1, 5, 5]
    ),
    "global pools": model(
        [
            N("GlobalMaxPool", ["x"], ["a"]),
            N("GlobalAveragePool", ["x"], ["b"]),
            N("Add", ["a", "b"], ["c"]),
            flat("c"),
        ],
        [3, 4, 4],
    ),
    "softmax coerced (opset 11)": model(
        [N("Reshape", ["x", "s"], ["r"]), N("Softmax", ["r"], ["p"], axis=1), flat("p")],
        [12],
        {"s": ints(0, 3, 4)},
        opset=11,
    ),
    "log softmax": model([N("LogSoftmax", ["x"], ["y"], axis=-1)], [6]),
    "clip attributes (opset 10)": model([N("Clip", ["x"], ["y"], min=-0.5, max=0.5)], [6], opset=10),
    "clip inputs": model(
        [N("Clip", ["x", "lo", "hi"], ["y"])],
        [6],
        {"lo": np.asarray(-0.3, np.float32), "hi": np.asarray(0.2, np.float32)},
    ),
    "squeeze unsqueeze (opset 11 attributes)": model(
        [N("Unsqueeze", ["x"], ["u"], axes=[1, 3]), N("Squeeze", ["u"], ["y"], axes=[1, 3])], [5], opset=11
    ),
    "reduce mean axes input (opset 18)": model(
        [N("ReduceMean", ["x", "ax"], ["m"], keepdims=1), flat("m")], [3, 4, 5], {"ax": ints(2, 3)}, opset=18
    ),
    "reduce sum and max": model(
        [
            N("ReduceSum", ["x", "ax"], ["s"], keepdims=0),
            N("ReduceMax", ["x"], ["m"], axes=[2], keepdims=0),
            N("Add", ["s", "m"], ["y"]),
        ],
        [3, 4],
        {"ax": ints(2)},
    ),
    "prelu per channel": model([N("PRelu", ["x", "slope"], ["p"]), flat("p")], [3, 2, 2], {"slope": weights(3, 1, 1)}),
    "activations": model(
        [
            N("HardSwish", ["x"], ["a"]),
            N("HardSigmoid", ["a"], ["b"], alpha=0.3),
            N("Elu", ["b"], ["c"]),
            N("Selu", ["c"], ["d"]),
            N("Softplus", ["d"], ["e"]),
            N("Gelu", ["e"], ["f"], approximate="tanh"),
            N("Softsign", ["f"], ["g"]),
            N("LeakyRelu", ["g"], ["y"], alpha=0.2),
        ],
        [7],
        opset=20,
    ),
    "erf pow sqrt reciprocal exp log": model(
        [
            N("Erf", ["x"], ["a"]),
            N("Pow", ["a", "two"], ["b"]),
            N("Sqrt", ["b"], ["c"]),
            N("Add", ["c", "one"], ["d"]),
            N("Reciprocal", ["d"], ["e"]),
            N("Exp", ["e"], ["f"]),
            N("Log", ["f"], ["g"]),
            N("Neg", ["g"], ["h"]),
            N("Abs", ["h"], ["y"]),
        ],
        [5],
        {"two": np.asarray(2.0, np.float32), "one": np.asarray(1.0, np.float32)},
    ),
    "gather 2-d and negative indices": model(
        [N("Gather", ["x", "i"], ["g"], axis=1), flat("g")], [6], {"i": ints(-1, 0, 2, 2).reshape(2, 2)}
    ),
    "dropout ratio attribute (opset 7)": model([N("Dropout", ["x"], ["y"], ratio=0.3)], [4], opset=7),
    "dropout ratio input": model([N("Dropout", ["x", "r"], ["y"])], [4], {"r": np.asarray(0.3, np.float32)}),
    "cast and constants": model(
        [
            N("Constant", [], ["k"], value_float=3.0),
            N("Constant", [], ["s"], value_ints=[0, -1]),
            N("Mul", ["x", "k"], ["m"]),
            N("Cast", ["m"], ["c"], to=TensorProto.FLOAT),
            N("Reshape", ["c", "s"], ["y"]),
        ],
        [2, 3],
    ),
    "constant of shape as data": model(
        [
            N("Shape", ["x"], ["sh"]),
            N("ConstantOfShape", ["sh"], ["z"], value=numpy_helper.from_array(np.asarray([0.5], np.float32))),
            N("Add", ["x", "z"], ["y"]),
        ],
        [4],
    ),
    "range gather": model(
        [N("Range", ["a", "b", "d"], ["idx"]), N("Gather", ["x", "idx"], ["y"], axis=1)],
        [6],
        {"a": ints(1)[0], "b": ints(5)[0], "d": ints(2)[0]},
    ),
    "batch norm rank 2 and 3": model(
        [
            N("BatchNormalization", ["x", "g", "bb", "mu", "var"], ["n"], epsilon=1e-3),
            N("Unsqueeze", ["n", "ax"], ["u"]),
            N("BatchNormalization", ["u", "g2", "bb2", "mu2", "var2"], ["m"]),
            flat("m"),
        ],
        [4],
        {
            "g": weights(4),
            "bb": weights(4),
            "mu": weights(4),
            "var": np.abs(weights(4)) + 0.5,
            "ax": ints(2),
            "g2": weights(4),
            "bb2": weights(4),
            "mu2": weights(4),
            "var2": np.abs(weights(4)) + 0.5,
        },
    ),
    "layer norm over channels and space": model(
        [N("LayerNormalization", ["x", "g", "b"], ["l"], axis=1), flat("l")],
        [2, 3, 3],
        {"g": weights(2, 3, 3), "b": weights(2, 3, 3)},
    ),
    "variadic max min": model(
        [N("Relu", ["x"], ["r"]), N("Max", ["x", "r", "c"], ["a"]), N("Min", ["a", "c"], ["y"])], [4], {"c": weights(4)}
    ),
    "identity chain to the output": model(
        [N("Identity", ["x"], ["a"]), N("Relu", ["a"], ["b"]), N("Identity", ["b"], ["y"])], [3]
    ),
    "shape arithmetic with div and mod": model(
        [
            N("Shape", ["x"], ["sh"]),
            N("Gather", ["sh", "one"], ["n"], axis=0),
            N("Div", ["n", "two"], ["h"]),
            N("Mod", ["n", "two"], ["r"]),
            N("Add", ["h", "r"], ["k"]),
            N("Unsqueeze", ["k", "zero"], ["k1"]),
            N("Concat", ["minus", "k1", "two1"], ["target"], axis=0),
            N("Reshape", ["x", "target"], ["q"]),
            flat("q"),
        ],
        [8],
        {"one": ints(1)[0], "two": ints(2)[0], "zero": ints(0), "minus": ints(-1), "two1": ints(2)},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_operator_computes_what_onnxruntime_computes(name, tmp_path):
    path = tmp_path / "case.onnx"
    path.write_bytes(CASES[name].SerializeToString())
    checkpoint = load_checkpoint(path)  # raises, naming the node, at the first value that differs
    verification = checkpoint.onnx.verification
    assert verification.evaluator.startswith("onnxruntime")
    assert verification.max_scaled_difference < 1e-5
    network = build_model(checkpoint.architecture)
    network.load_state_dict(checkpoint.state_dict)
    logits = network.eval()(torch.randn(7, *checkpoint.architecture.input_shape))
    assert logits.shape == (7, checkpoint.architecture.num_classes) and torch.isfinite(logits).all()
