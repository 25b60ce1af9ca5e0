"""Freezes a graph's `If` nodes for fixed input shapes and fixed input values.

tract 0.23 analyses *both* branches of an ONNX `If` even when the condition is a known
constant, and translates a shape-dependent `If` to `IfThenElse`, which requires both branches
to produce the same output shape. Silero VAD breaks both rules (its 8 kHz branch cannot be
analysed with a 16 kHz chunk; its squeeze-if-batch-is-1 `If`s give [1, 128] vs [1, 128, 1]),
so the model is frozen here for one configuration: inputs get concrete shapes, some inputs
get fixed values, and every `If` is replaced by the branch it takes, repeatedly, until none is
left. Branch choice is observed with ONNX Runtime on several random inputs of the fixed shapes
(plus the fixed values) and must not depend on the random ones. Inputs with fixed values stay
graph inputs, so the frozen model keeps the original signature; callers must feed (or pin)
exactly those values.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


class FoldError(ValueError):
    """An `If` condition depends on input values, or the frozen graph is invalid."""


def _fix_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> None:
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[value.name]:
                dims.add().dim_value = d


def _condition_values(model: onnx.ModelProto, conds: list[str], shapes: dict[str, list[int]],
                      values: dict[str, np.ndarray], trials: int = 3) -> dict[str, bool]:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in conds:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.BOOL, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    seen: dict[str, set[bool]] = {name: set() for name in conds}
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        feeds = {name: rng.standard_normal(shape).astype(np.float32) * 0.3
                 for name, shape in shapes.items()}
        feeds.update(values)
        for name, value in zip(conds, sess.run(conds, feeds)):
            seen[name].add(bool(np.asarray(value).reshape(-1)[0]))
    if any(len(v) != 1 for v in seen.values()):
        raise FoldError("an If condition depends on input values")
    return {name: v.pop() for name, v in seen.items()}


def _inline(graph: onnx.GraphProto, index: int, branch: onnx.GraphProto) -> None:
    node = graph.node[index]
    body = list(branch.node)
    graph.initializer.extend(branch.initializer)
    for out_name, branch_out in zip(node.output, branch.output):
        body.append(helper.make_node("Identity", [branch_out.name], [out_name],
                                     name=f"{node.name}_{out_name}_inlined"))
    del graph.node[index]
    for offset, new in enumerate(body):
        graph.node.insert(index + offset, new)


def _prune_dead_nodes(graph: onnx.GraphProto) -> None:
    """Drops nodes none of whose outputs is used (the old conditions, for one)."""
    while True:
        used = {o.name for o in graph.output}
        for node in graph.node:
            used.update(node.input)
        dead = [i for i, n in enumerate(graph.node) if not any(o in used for o in n.output)]
        if not dead:
            return
        for i in reversed(dead):
            del graph.node[i]


def freeze_ifs(model_bytes: bytes, shapes: dict[str, list[int]],
               values: dict[str, np.ndarray]) -> bytes:
    """The model with fixed input shapes and no `If` node, valid for inputs of `shapes` and
    for exactly the given `values` of the other inputs."""
    model = onnx.load_from_string(model_bytes)
    for _ in range(64):
        ifs = [i for i, n in enumerate(model.graph.node) if n.op_type == "If"]
        if not ifs:
            break
        conds = _condition_values(model, [model.graph.node[i].input[0] for i in ifs], shapes,
                                  values)
        for i in reversed(ifs):
            node = model.graph.node[i]
            branches = {a.name: a.g for a in node.attribute}
            taken = branches["then_branch"] if conds[node.input[0]] else branches["else_branch"]
            _inline(model.graph, i, taken)
    else:
        raise FoldError("If nesting deeper than 64 levels")
    # Shapes are fixed only once the Ifs are gone: ONNX shape inference rejects the branch
    # that the fixed shapes rule out (Silero's 8 kHz branch with a 16 kHz chunk).
    _fix_shapes(model, shapes)
    _prune_dead_nodes(model.graph)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
