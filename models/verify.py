#!/usr/bin/env python3
"""Checks that models/ is consistent with manifest.json and that ONNX Runtime still reproduces
every golden within its tolerance.

    python3 models/verify.py [--no-ort]

Per model: the file's size and sha256, the golden keys, dtypes and shapes against the declared
inputs/outputs (symbols bound consistently, the batch symbol to 1 and 8), the per-input .npy
copies, the embedding/state names, and (unless --no-ort) an ONNX Runtime run on the golden
inputs. Exits non-zero on any failure; the last line reads "N passed, N failed".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MAX_TOTAL_BYTES = 30 * 2**20
DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64,
          "i32": np.int32, "i8": np.int8, "u8": np.uint8, "bool": np.bool_}


def check_shape(declared: list, actual: tuple, bound: dict, batch_dim: str | None,
                batch: int) -> str | None:
    """None when `actual` fits `declared`; symbols must bind consistently across one set."""
    if len(declared) != len(actual):
        return f"rank {len(actual)} vs declared {declared}"
    for want, got in zip(declared, actual):
        if isinstance(want, int):
            if want != got:
                return f"shape {actual} vs declared {declared}"
            continue
        if want == batch_dim and got != batch:
            return f"batch {got}, expected {batch}"
        if bound.setdefault(want, got) != got:
            return f"symbol {want} is {got} here and {bound[want]} elsewhere"
    return None


def check_golden(entry: dict, path: Path, batch: int, run_ort) -> list[str]:
    errors = []
    z = np.load(path)
    expected = {f"input_{i}" for i in range(len(entry["inputs"]))}
    expected |= {f"output_{i}" for i in range(len(entry["outputs"]))}
    if set(z.files) != expected:
        return [f"{path.name}: keys {sorted(z.files)} vs {sorted(expected)}"]
    bound: dict = {}
    for kind, specs in (("input", entry["inputs"]), ("output", entry["outputs"])):
        for i, spec in enumerate(specs):
            array = z[f"{kind}_{i}"]
            if array.dtype != DTYPES[spec["dtype"]]:
                errors.append(f"{path.name} {kind}_{i}: dtype {array.dtype} vs {spec['dtype']}")
            problem = check_shape(spec["shape"], array.shape, bound, entry["batch_dim"], batch)
            if problem:
                errors.append(f"{path.name} {kind}_{i}: {problem}")
    if run_ort is not None and not errors:
        inputs = [z[f"input_{i}"] for i in range(len(entry["inputs"]))]
        got = run_ort(entry, inputs)
        tol = entry["tolerance"]
        for i, (g, spec) in enumerate(zip(got, entry["outputs"])):
            want = z[f"output_{i}"]
            if spec["dtype"] in ("f32", "f16", "f64"):
                ok = np.allclose(g, want, rtol=tol["rtol"], atol=tol["atol"])
            else:
                ok = np.array_equal(g, want)
            if not ok:
                errors.append(f"{path.name} output_{i}: ONNX Runtime no longer matches")
    return errors


def check_entry(entry: dict, run_ort) -> list[str]:
    errors = []
    model = HERE / entry["file"]
    if not model.exists():
        return [f"{entry['file']} is missing"]
    data = model.read_bytes()
    if len(data) != entry["bytes"]:
        errors.append(f"size {len(data)} vs manifest {entry['bytes']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        errors.append("sha256 differs from the manifest")
    input_names = [i["name"] for i in entry["inputs"]]
    output_names = [o["name"] for o in entry["outputs"]]
    for name in entry["pinned_inputs"]:
        if name not in input_names:
            errors.append(f"pinned input {name} is not an input")
    if entry["embedding_output"] and entry["embedding_output"] not in output_names:
        errors.append("embedding_output is not an output")
    for pair in entry["state"]:
        if pair["input"] not in input_names or pair["output"] not in output_names:
            errors.append(f"state pair {pair} names unknown tensors")
    if (entry["batch_dim"] is None) != (entry["golden_batch8"] is None):
        errors.append("batch_dim and golden_batch8 must be set together")
    errors += check_golden(entry, HERE / entry["golden"], 1, run_ort)
    if entry["golden_batch8"]:
        errors += check_golden(entry, HERE / entry["golden_batch8"], 8, run_ort)
    z = np.load(HERE / entry["golden"])
    for i in range(len(entry["inputs"])):
        npy = HERE / "golden" / entry["name"] / f"input_{i}.npy"
        if not npy.exists() or not np.array_equal(np.load(npy), z[f"input_{i}"]):
            errors.append(f"{npy.relative_to(HERE)} is missing or differs from the golden")
    return errors


def ort_runner():
    import onnxruntime as ort

    sessions = {}

    def run(entry: dict, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if entry["name"] not in sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sessions[entry["name"]] = ort.InferenceSession(
                str(HERE / entry["file"]), opts, providers=["CPUExecutionProvider"])
        feeds = {spec["name"]: a for spec, a in zip(entry["inputs"], inputs)}
        return sessions[entry["name"]].run([o["name"] for o in entry["outputs"]], feeds)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime re-run")
    args = parser.parse_args()
    manifest = json.loads((HERE / "manifest.json").read_text())
    run_ort = None if args.no_ort else ort_runner()
    passed = failed = 0
    for entry in manifest:
        errors = check_entry(entry, run_ort)
        status = "ok" if not errors else "FAIL"
        print(f"{status:4} {entry['name']}")
        for error in errors:
            print(f"     {error}")
        passed, failed = passed + (not errors), failed + bool(errors)
    total = sum(e["bytes"] for e in manifest)
    if total > MAX_TOTAL_BYTES:
        print(f"FAIL total size {total} exceeds {MAX_TOTAL_BYTES}")
        failed += 1
    names = [e["name"] for e in manifest]
    if len(set(names)) != len(names):
        print("FAIL duplicate model names")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
