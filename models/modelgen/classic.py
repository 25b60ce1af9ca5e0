"""scikit-learn models trained on a fixed synthetic dataset and exported with skl2onnx."""

from __future__ import annotations

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

N_FEATURES = 16
N_CLASSES = 3
# ai.onnx.ml 3 keeps the classic TreeEnsembleClassifier / LinearClassifier attributes that
# tract parses (ai.onnx.ml 5 would emit the newer TreeEnsemble op, which tract lacks).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# Few, shallow trees: tract 0.23's TreeEnsembleClassifier is quadratic in the ensemble's
# leaf count (see docs/tract-tree-ensembles.md), so the test forest stays small.
FOREST_TREES = 16
FOREST_DEPTH = 6


def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (train_x, train_y, held_out_x) as float32 / int64, fixed seed."""
    x, y = make_classification(
        n_samples=1200, n_features=N_FEATURES, n_informative=8, n_redundant=4,
        n_classes=N_CLASSES, class_sep=1.2, random_state=1234,
    )
    x = x.astype(np.float32)
    return x[:1000], y[:1000].astype(np.int64), x[1000:]


def _export(estimator, sample: np.ndarray, name: str) -> onnx.ModelProto:
    model = to_onnx(
        estimator, sample[:1], target_opset=TARGET_OPSET,
        options={id(estimator): {"zipmap": False}}, final_types=None,
    )
    model.graph.name = name
    # skl2onnx lists the default domain twice; keep one import per domain.
    imports = {(o.domain, o.version) for o in model.opset_import}
    del model.opset_import[:]
    for domain, version in sorted(imports):
        model.opset_import.add(domain=domain, version=version)
    # Symbolic batch named `batch` (skl2onnx leaves it unnamed) so the SDK can bind it.
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    onnx.checker.check_model(model, full_check=True)
    return model


def logistic_regression() -> onnx.ModelProto:
    """Multinomial logistic regression: `input` [batch, 16] → `label`, `probabilities`."""
    x, y, _ = dataset()
    clf = LogisticRegression(max_iter=500).fit(x, y)
    return _export(clf, x, "logreg")


def random_forest() -> onnx.ModelProto:
    """16-tree, depth-6 random forest: `input` [batch, 16] → `label`, `probabilities`."""
    x, y, _ = dataset()
    clf = RandomForestClassifier(
        n_estimators=FOREST_TREES, max_depth=FOREST_DEPTH, random_state=1234, n_jobs=1
    ).fit(x, y)
    return _export(clf, x, "random_forest")
