#!/usr/bin/env python3
"""Counts the work tract 0.23's TreeEnsembleClassifier does per input row.

tract lays every TreeEnsembleClassifier out as one `leaves` table [n_leaf_rows, 2] (trees in
order, nodes by id) and, for each tree a row reaches leaf `l`, reads that leaf's rows with
`leaves.outer_iter().skip(l.start).take(l.end - l.start)`. ndarray's AxisIter has no `nth`, so
`skip(start)` steps one row view at a time: the cost of one lookup is `start`, the leaf's
position in the whole ensemble. This script replays that layout and sums, per input row,
the branch nodes visited, the rows skipped and the rows read.

    python3 scripts/tree_ensemble_cost.py MODEL.onnx [--rows 64] [--trees-per-node K]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def layout(attrs: dict, trees: list[int]):
    """Replays tract's ordering for `trees`: per tree its nodes by id, a leaf's rows in the
    order tract appends them. Returns {(tree, node): (start_row, end_row)} and branch info."""
    chosen = set(trees)
    nodes = sorted(
        (t, n, i) for i, (t, n) in enumerate(zip(attrs["nodes_treeids"], attrs["nodes_nodeids"]))
        if t in chosen
    )
    leaf_rows: dict[tuple[int, int], int] = {}
    for t, n in zip(attrs["class_treeids"], attrs["class_nodeids"]):
        if t in chosen:
            leaf_rows[(t, n)] = leaf_rows.get((t, n), 0) + 1
    spans, branches, row = {}, {}, 0
    for t, n, i in nodes:
        mode = attrs["nodes_modes"][i]
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode == "LEAF":
            count = leaf_rows.get((t, n), 0)
            spans[(t, n)] = (row, row + count)
            row += count
        else:
            branches[(t, n)] = (mode, attrs["nodes_featureids"][i], attrs["nodes_values"][i],
                                attrs["nodes_truenodeids"][i], attrs["nodes_falsenodeids"][i])
    return spans, branches, row


_CMP = {"BRANCH_LEQ": np.less_equal, "BRANCH_LT": np.less, "BRANCH_GTE": np.greater_equal,
        "BRANCH_GT": np.greater, "BRANCH_EQ": np.equal, "BRANCH_NEQ": np.not_equal}


def cost(attrs: dict, x: np.ndarray, trees_per_node: int) -> dict:
    """Mean per-row counts of visited branches, skipped rows and read rows."""
    all_trees = sorted(set(attrs["nodes_treeids"]))
    visited = skipped = read = 0
    total_rows = 0
    for c in range(0, len(all_trees), trees_per_node):
        trees = all_trees[c:c + trees_per_node]
        spans, branches, n_rows = layout(attrs, trees)
        total_rows = max(total_rows, n_rows)
        for row in x:
            for t in trees:
                n = 0
                while (t, n) in branches:
                    mode, feat, value, t_id, f_id = branches[(t, n)]
                    n = t_id if _CMP[mode](row[feat], value) else f_id
                    visited += 1
                start, end = spans[(t, n)]
                skipped += start
                read += end - start
    rows = len(x)
    return {"branches": visited / rows, "skipped_rows": skipped / rows, "read_rows": read / rows,
            "largest_leaf_table": total_rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--rows", type=int, default=64, help="random input rows to average")
    parser.add_argument("--trees-per-node", type=int, default=0,
                        help="simulate the split rewrite (0 = the model as is)")
    args = parser.parse_args()
    model = onnx.load(str(args.model))
    for node in model.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = _attrs(node)
        n_trees = len(set(attrs["nodes_treeids"]))
        width = max(attrs["nodes_featureids"]) + 1
        x = np.random.default_rng(0).normal(0, 2, size=(args.rows, width)).astype(np.float32)
        per = args.trees_per_node or n_trees
        c = cost(attrs, x, per)
        print(f"{node.name or 'TreeEnsembleClassifier'}: {n_trees} trees, "
              f"{len(attrs['class_ids'])} leaf rows, {per} trees per node")
        print(f"  per input row: {c['branches']:.0f} branch nodes visited, "
              f"{c['skipped_rows']:.0f} leaf rows skipped one by one, "
              f"{c['read_rows']:.0f} leaf rows read (largest leaf table "
              f"{c['largest_leaf_table']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
