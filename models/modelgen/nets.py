"""Neural networks written with the `onnx` helper API and fixed-seed random weights.

No training framework is involved: the graphs are written node by node so that every op is a
plain, standard ONNX op that tract imports (and that can be written to NNEF).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
PRODUCER = "edgekeep-modelgen"


class GraphBuilder:
    """Accumulates nodes and initializers with unique, readable names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def name(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self.name(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [out], name=self.name(f"n_{op_type.lower()}"), **attrs)
        )
        return out

    def model(self, name: str, inputs, outputs, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER,
            producer_version="1",
            doc_string=doc,
        )
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


# --- MobileNet-class CNN -------------------------------------------------------------------

CNN_SIZE = 160
CNN_CLASSES = 10
# (out_channels, stride) of each depthwise-separable block, MobileNet v1 style, width 0.5.
CNN_BLOCKS = [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]


def _conv_bn_relu6(
    g: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int, groups: int
) -> str:
    fan_in = (c_in // groups) * k * k
    w = (g.rng.standard_normal((c_out, c_in // groups, k, k)) * np.sqrt(2.0 / fan_in)).astype(
        np.float32
    )
    y = g.op(
        "Conv",
        [x, g.const("conv_w", w)],
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[k // 2] * 4,
        group=groups,
    )
    gamma = (1.0 + 0.1 * g.rng.standard_normal(c_out)).astype(np.float32)
    beta = (0.1 * g.rng.standard_normal(c_out)).astype(np.float32)
    mean = (0.1 * g.rng.standard_normal(c_out)).astype(np.float32)
    var = (1.0 + 0.1 * g.rng.random(c_out)).astype(np.float32)
    y = g.op(
        "BatchNormalization",
        [y, g.const("bn_gamma", gamma), g.const("bn_beta", beta), g.const("bn_mean", mean),
         g.const("bn_var", var)],
        epsilon=1e-5,
    )
    lo = g.const("relu6_min", np.array(0.0, dtype=np.float32))
    hi = g.const("relu6_max", np.array(6.0, dtype=np.float32))
    return g.op("Clip", [y, lo, hi])


def mobilenet(seed: int = 7) -> onnx.ModelProto:
    """MobileNet v1-style classifier, input `image` [batch, 3, 160, 160] (normalized RGB).

    Outputs `logits` [batch, 10] and `embedding` [batch, 512], the globally pooled features.
    """
    g = GraphBuilder(np.random.default_rng(seed))
    x = _conv_bn_relu6(g, "image", 3, 16, 3, 2, 1)
    c = 16
    for c_out, stride in CNN_BLOCKS:
        x = _conv_bn_relu6(g, x, c, c, 3, stride, c)  # depthwise
        x = _conv_bn_relu6(g, x, c, c_out, 1, 1, 1)  # pointwise
        c = c_out
    pooled = g.op("GlobalAveragePool", [x])
    embedding = g.op("Flatten", [pooled], out="embedding", axis=1)
    w = (g.rng.standard_normal((c, CNN_CLASSES)) * np.sqrt(1.0 / c)).astype(np.float32)
    b = (0.01 * g.rng.standard_normal(CNN_CLASSES)).astype(np.float32)
    g.op("Gemm", [embedding, g.const("fc_w", w), g.const("fc_b", b)], out="logits")
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                           ["batch", 3, CNN_SIZE, CNN_SIZE])]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CNN_CLASSES]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", c]),
    ]
    return g.model("mobilenet_tiny", inputs, outputs,
                   "MobileNet v1-style CNN (width 0.5, 160x160), fixed-seed random weights.")


# --- Transformer encoder -------------------------------------------------------------------

TX_VOCAB = 1024
TX_MAX_SEQ = 128
TX_DIM = 128
TX_HEADS = 4
TX_FFN = 256
TX_LAYERS = 2
TX_CLASSES = 4


def _dense(g: GraphBuilder, x: str, d_in: int, d_out: int) -> str:
    w = (g.rng.standard_normal((d_in, d_out)) * np.sqrt(1.0 / d_in)).astype(np.float32)
    b = (0.02 * g.rng.standard_normal(d_out)).astype(np.float32)
    return g.op("Add", [g.op("MatMul", [x, g.const("dense_w", w)]), g.const("dense_b", b)])


def _layer_norm(g: GraphBuilder, x: str, d: int) -> str:
    gamma = (1.0 + 0.05 * g.rng.standard_normal(d)).astype(np.float32)
    beta = (0.05 * g.rng.standard_normal(d)).astype(np.float32)
    return g.op(
        "LayerNormalization", [x, g.const("ln_gamma", gamma), g.const("ln_beta", beta)],
        axis=-1, epsilon=1e-5,
    )


def _gelu_tanh(g: GraphBuilder, x: str) -> str:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the NNEF-expressible GELU."""
    f = lambda v: g.const("gelu_c", np.array(v, dtype=np.float32))  # noqa: E731
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Add", [x, g.op("Mul", [cube, f(0.044715)])])
    t = g.op("Tanh", [g.op("Mul", [inner, f(float(np.sqrt(2.0 / np.pi)))])])
    return g.op("Mul", [g.op("Mul", [x, f(0.5)]), g.op("Add", [t, f(1.0)])])


def _attention(g: GraphBuilder, x: str) -> str:
    dh = TX_DIM // TX_HEADS
    split = g.const("heads_shape", np.array([0, 0, TX_HEADS, dh], dtype=np.int64))
    merge = g.const("merge_shape", np.array([0, 0, TX_DIM], dtype=np.int64))

    def heads(t: str, perm: list[int]) -> str:
        return g.op("Transpose", [g.op("Reshape", [t, split])], perm=perm)

    q = heads(_dense(g, x, TX_DIM, TX_DIM), [0, 2, 1, 3])  # [b, h, s, dh]
    k = heads(_dense(g, x, TX_DIM, TX_DIM), [0, 2, 3, 1])  # [b, h, dh, s]
    v = heads(_dense(g, x, TX_DIM, TX_DIM), [0, 2, 1, 3])  # [b, h, s, dh]
    scale = g.const("attn_scale", np.array(1.0 / np.sqrt(dh), dtype=np.float32))
    scores = g.op("Mul", [g.op("MatMul", [q, k]), scale])
    probs = g.op("Softmax", [scores], axis=-1)
    ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    return _dense(g, g.op("Reshape", [ctx, merge]), TX_DIM, TX_DIM)


def transformer(seed: int = 11) -> onnx.ModelProto:
    """Pre-norm transformer encoder over token ids `input_ids` [batch, seq] (int64).

    Outputs `logits` [batch, 4] and `embedding` [batch, 128], the layer-normed mean over
    positions. Symbolic `batch` and `seq` (seq at most 128).
    """
    g = GraphBuilder(np.random.default_rng(seed))
    tok = (0.1 * g.rng.standard_normal((TX_VOCAB, TX_DIM))).astype(np.float32)
    pos = (0.1 * g.rng.standard_normal((TX_MAX_SEQ, TX_DIM))).astype(np.float32)
    x = g.op("Gather", [g.const("tok_emb", tok), "input_ids"], axis=0)
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    zero = g.const("zero", np.array([0], dtype=np.int64))
    pos_rows = g.op("Slice", [g.const("pos_emb", pos), zero, seq_len, zero])
    x = g.op("Add", [x, pos_rows])
    for _ in range(TX_LAYERS):
        x = g.op("Add", [x, _attention(g, _layer_norm(g, x, TX_DIM))])
        h = _gelu_tanh(g, _dense(g, _layer_norm(g, x, TX_DIM), TX_DIM, TX_FFN))
        x = g.op("Add", [x, _dense(g, h, TX_FFN, TX_DIM)])
    pooled = g.op("ReduceMean", [_layer_norm(g, x, TX_DIM)], axes=[1], keepdims=0)
    g.nodes.append(helper.make_node("Identity", [pooled], ["embedding"], name="n_embedding"))
    w = (g.rng.standard_normal((TX_DIM, TX_CLASSES)) * np.sqrt(1.0 / TX_DIM)).astype(np.float32)
    b = (0.01 * g.rng.standard_normal(TX_CLASSES)).astype(np.float32)
    g.op("Gemm", ["embedding", g.const("cls_w", w), g.const("cls_b", b)], out="logits")
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", TX_CLASSES]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", TX_DIM]),
    ]
    return g.model("transformer_tiny", inputs, outputs,
                   "2-layer pre-norm transformer encoder (d=128, 4 heads, tanh-GELU MLP), "
                   "fixed-seed random weights.")
