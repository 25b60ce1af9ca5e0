#!/usr/bin/env python3
"""Rewrites each ai.onnx.ml TreeEnsembleClassifier into several smaller ones whose scores
are summed, so that tract 0.23's per-lookup cost (linear in the node's total leaf rows, see
docs/tract-tree-ensembles.md) stays small.

    python3 scripts/split_tree_ensemble.py IN.onnx OUT.onnx [--trees-per-node 1] [--check]

The rewritten graph computes the same function: every chunk runs with post_transform NONE and
no base values; the chunk scores are added with `Sum`, then the base values, the original
post transform (NONE, SOFTMAX or LOGISTIC) and the label (ArgMax, first maximum, looked up in
the class labels) are applied once. Only standard ONNX ops and TreeEnsembleClassifier are used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

NODE_ATTRS = [
    "nodes_falsenodeids", "nodes_featureids", "nodes_hitrates", "nodes_missing_value_tracks_true",
    "nodes_modes", "nodes_nodeids", "nodes_treeids", "nodes_truenodeids", "nodes_values",
]
LEAF_ATTRS = ["class_ids", "class_nodeids", "class_treeids", "class_weights"]
UNSUPPORTED = ["nodes_values_as_tensor", "class_weights_as_tensor", "base_values_as_tensor",
               "nodes_hitrates_as_tensor"]


class SplitError(ValueError):
    """The node uses a feature this rewrite does not handle."""


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _chunk_attrs(attrs: dict, trees: list[int]) -> dict:
    """The node and leaf attributes of `trees`, with tree ids renumbered from 0."""
    renumber = {t: i for i, t in enumerate(trees)}
    out = {}
    for prefix, tree_key, keys in (("nodes", "nodes_treeids", NODE_ATTRS),
                                   ("class", "class_treeids", LEAF_ATTRS)):
        tree_ids = attrs[tree_key]
        keep = [i for i, t in enumerate(tree_ids) if t in renumber]
        for key in keys:
            if key not in attrs:
                continue
            values = [attrs[key][i] for i in keep]
            if key == tree_key:
                values = [renumber[v] for v in values]
            out[key] = values
        if not keep:
            raise SplitError(f"{prefix}: no entries for trees {trees}")
    return out


def split_node(node: onnx.NodeProto, trees_per_node: int, prefix: str) -> list[onnx.NodeProto]:
    """The replacement nodes for one TreeEnsembleClassifier."""
    attrs = _attrs(node)
    for key in UNSUPPORTED:
        if key in attrs:
            raise SplitError(f"{key} is not supported")
    labels_int = attrs.get("classlabels_int64s")
    labels_str = attrs.get("classlabels_strings")
    labels = labels_int if labels_int is not None else labels_str
    if labels is None:
        raise SplitError("no class labels")
    if len(labels) < 3 and all(c == 0 for c in attrs["class_ids"]):
        raise SplitError("binary single-score layout is not supported")
    post = attrs.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else post
    if post not in ("NONE", "SOFTMAX", "LOGISTIC"):
        raise SplitError(f"post_transform {post} is not supported")

    all_trees = sorted(set(attrs["nodes_treeids"]))
    chunks = [all_trees[i:i + trees_per_node] for i in range(0, len(all_trees), trees_per_node)]
    label_out, score_out = node.output[0], node.output[1]
    nodes, partials = [], []
    common = {"post_transform": "NONE"}
    if labels_int is not None:
        common["classlabels_int64s"] = list(labels_int)
    else:
        common["classlabels_strings"] = [s.decode() if isinstance(s, bytes) else s
                                         for s in labels_str]
    for i, trees in enumerate(chunks):
        chunk = dict(common)
        chunk.update(_chunk_attrs(attrs, trees))
        chunk["nodes_modes"] = [m.decode() if isinstance(m, bytes) else m
                                for m in chunk["nodes_modes"]]
        outs = [f"{prefix}_label_{i}", f"{prefix}_scores_{i}"]
        nodes.append(helper.make_node("TreeEnsembleClassifier", [node.input[0]], outs,
                                      name=f"{prefix}_chunk_{i}", domain="ai.onnx.ml", **chunk))
        partials.append(outs[1])

    scores = f"{prefix}_sum"
    nodes.append(helper.make_node("Sum", partials, [scores], name=f"{prefix}_sum"))
    if attrs.get("base_values"):
        base = helper.make_tensor(f"{prefix}_base", onnx.TensorProto.FLOAT,
                                  [1, len(attrs["base_values"])], attrs["base_values"])
        nodes.append(helper.make_node("Constant", [], [f"{prefix}_base_c"], value=base))
        nodes.append(helper.make_node("Add", [scores, f"{prefix}_base_c"], [f"{prefix}_based"]))
        scores = f"{prefix}_based"
    if post == "SOFTMAX":
        nodes.append(helper.make_node("Softmax", [scores], [score_out], axis=1))
    elif post == "LOGISTIC":
        nodes.append(helper.make_node("Sigmoid", [scores], [score_out]))
    else:
        nodes.append(helper.make_node("Identity", [scores], [score_out]))

    labels_t = (numpy_helper.from_array(np.array(labels_int, np.int64), f"{prefix}_labels")
                if labels_int is not None else
                helper.make_tensor(f"{prefix}_labels", onnx.TensorProto.STRING, [len(labels)],
                                   list(labels_str)))
    nodes.append(helper.make_node("Constant", [], [f"{prefix}_labels_c"], value=labels_t))
    nodes.append(helper.make_node("ArgMax", [score_out], [f"{prefix}_argmax"], axis=1,
                                  keepdims=0, select_last_index=0))
    nodes.append(helper.make_node("Gather", [f"{prefix}_labels_c", f"{prefix}_argmax"],
                                  [label_out], axis=0))
    return nodes


def split_model(model: onnx.ModelProto, trees_per_node: int) -> onnx.ModelProto:
    """A copy of `model` with every TreeEnsembleClassifier split into chunks of trees."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    new_nodes = []
    for i, node in enumerate(out.graph.node):
        if node.op_type == "TreeEnsembleClassifier" and node.domain == "ai.onnx.ml":
            new_nodes.extend(split_node(node, trees_per_node, f"tec{i}"))
        else:
            new_nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in out.opset_import):
        raise SplitError("the rewrite needs default-domain opset >= 13")
    onnx.checker.check_model(out, full_check=True)
    return out


def check_same(original: bytes, rewritten: bytes, n_rows: int = 2000, seed: int = 0) -> None:
    """Runs both models in ONNX Runtime on random rows; labels equal, scores within 1e-6."""
    import onnxruntime as ort

    a = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"])
    inp = a.get_inputs()[0]
    width = inp.shape[1]
    x = np.random.default_rng(seed).normal(0, 2, size=(n_rows, width)).astype(np.float32)
    ya, yb = a.run(None, {inp.name: x}), b.run(None, {inp.name: x})
    dev = float(np.abs(ya[1] - yb[1]).max())
    if dev > 1e-6:
        raise SplitError(f"scores differ by {dev}")
    # Random forests produce exact ties (e.g. 0.49 / 0.49) that summation order breaks
    # either way; a label may differ only where the two best scores are that close.
    top2 = np.sort(ya[1], axis=1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0]) <= 1e-5
    differ = ya[0] != yb[0]
    if np.any(differ & ~near_tie):
        raise SplitError(f"labels differ on {int((differ & ~near_tie).sum())} non-tied rows")
    print(f"check: {n_rows} rows, max score deviation {dev:.2e}, labels equal except "
          f"{int(differ.sum())} rows whose two best scores tie within 1e-5")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--trees-per-node", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="compare both in ONNX Runtime")
    args = parser.parse_args()
    if args.trees_per_node < 1:
        parser.error("--trees-per-node must be at least 1")
    original = args.input.read_bytes()
    rewritten = split_model(onnx.load_from_string(original), args.trees_per_node)
    data = rewritten.SerializeToString()
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")
    if args.check:
        check_same(original, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
