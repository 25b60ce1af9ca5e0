"""Golden outputs from ONNX Runtime (CPUExecutionProvider) and byte-stable .npz/.npy files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def session(model_bytes: bytes, optimized: bool = True, threads: int = 1) -> ort.InferenceSession:
    """A single-threaded CPU session; `optimized=False` disables every graph rewrite."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, names: list[str], arrays: list[np.ndarray],
        outputs: list[str]) -> list[np.ndarray]:
    """Runs `sess` with inputs in manifest order, returns outputs in manifest order."""
    return sess.run(outputs, dict(zip(names, arrays)))


def max_deviation(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
    """(max abs diff, max relative diff) over float outputs; integer outputs must match."""
    abs_dev, rel_dev = 0.0, 0.0
    for x, y in zip(a, b):
        if not np.issubdtype(x.dtype, np.floating):
            if not np.array_equal(x, y):
                raise ValueError("integer outputs differ between ORT optimization levels")
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        abs_dev = max(abs_dev, float(d.max(initial=0.0)))
        rel = d / np.maximum(np.abs(y.astype(np.float64)), 1e-6)
        rel_dev = max(rel_dev, float(rel.max(initial=0.0)))
    return abs_dev, rel_dev


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # np.ascontiguousarray would turn a 0-d array (Silero's `sr`) into shape (1,).
    array = array if array.flags.c_contiguous else array.copy(order="C")
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_npy(path: Path, array: np.ndarray) -> None:
    """Writes one array as .npy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_npy_bytes(array))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes a compressed .npz whose bytes depend only on the arrays (fixed zip timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, _npy_bytes(arrays[name]))
    path.write_bytes(buf.getvalue())


def golden_arrays(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """`input_<i>` / `output_<i>` keys in manifest order."""
    arrays = {f"input_{i}": a for i, a in enumerate(inputs)}
    arrays.update({f"output_{i}": a for i, a in enumerate(outputs)})
    return arrays
