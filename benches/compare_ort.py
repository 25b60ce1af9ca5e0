#!/usr/bin/env python3
"""Side-by-side latency of ONNX Runtime and edgekeep on every model in models/manifest.json.

Both sides get the same inputs (the golden inputs, models/golden/<name>/input_<i>.npy), the
same intra-op thread count, the same warmup and the same number of timed runs; the reported
figure is the median (p50). Cold start is "read the model file, create the session, first
result", measured for ONNX Runtime in a fresh Python process (after `import onnxruntime`) and
for edgekeep by the CLI itself.

    .venv/bin/python benches/compare_ort.py --edgekeep target/release/edgekeep
    .venv/bin/python benches/compare_ort.py --ort-only            # before the CLI exists

The edgekeep side runs:
    edgekeep bench MODEL.onnx --input NAME=FILE.npy ... [--pin NAME=FILE.npy] \
        --runs N --warmup W --threads T --json
and reads one JSON object from its stdout (p50_ms, cold_start_ms, ...). The CLI runs with
RUST_LIB_BACKTRACE=0 unless --lib-backtrace is given (see docs/tract-tree-ensembles.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = ROOT / "models" / "manifest.json"

_COLD_CHILD = r"""
import sys, time
import numpy as np
import onnxruntime as ort
path, threads, names, files = sys.argv[1], int(sys.argv[2]), sys.argv[3].split("\x1f"), sys.argv[4].split("\x1f")
feeds = {n: np.load(f) for n, f in zip(names, files)}
start = time.perf_counter()
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
with open(path, "rb") as fh:
    sess = ort.InferenceSession(fh.read(), opts, providers=["CPUExecutionProvider"])
sess.run(None, feeds)
print((time.perf_counter() - start) * 1000.0)
"""


@dataclass
class Timing:
    """Latency summary of one runtime on one model, in milliseconds."""

    p50_ms: float | None = None
    p90_ms: float | None = None
    cold_ms: float | None = None
    error: str | None = None
    raw: dict = field(default_factory=dict)


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def model_inputs(entry: dict, models_dir: Path) -> list[tuple[str, Path]]:
    """(input name, golden .npy path) in manifest order."""
    return [
        (spec["name"], models_dir / "golden" / entry["name"] / f"input_{i}.npy")
        for i, spec in enumerate(entry["inputs"])
    ]


def time_ort(entry: dict, models_dir: Path, threads: int, runs: int, warmup: int) -> Timing:
    """Warm median and cold start of ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    inputs = model_inputs(entry, models_dir)
    feeds = {name: np.load(path) for name, path in inputs}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(models_dir / entry["file"]), opts, providers=["CPUExecutionProvider"]
    )
    for _ in range(warmup):
        sess.run(None, feeds)
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        sess.run(None, feeds)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()

    child = subprocess.run(
        [sys.executable, "-c", _COLD_CHILD, str(models_dir / entry["file"]), str(threads),
         "\x1f".join(n for n, _ in inputs), "\x1f".join(str(p) for _, p in inputs)],
        capture_output=True, text=True, check=False,
    )
    cold = float(child.stdout.strip()) if child.returncode == 0 else None
    return Timing(p50_ms=statistics.median(samples), p90_ms=percentile(samples, 90),
                  cold_ms=cold)


def edgekeep_command(binary: Path, entry: dict, models_dir: Path, threads: int, runs: int,
                     warmup: int) -> list[str]:
    """The CLI invocation for one model; pinned inputs go through --pin."""
    cmd = [str(binary), "bench", str(models_dir / entry["file"])]
    pinned = entry.get("pinned_inputs") or {}
    for name, path in model_inputs(entry, models_dir):
        cmd += ["--pin" if name in pinned else "--input", f"{name}={path}"]
        if name not in pinned:
            shape = np.load(path).shape
            cmd += ["--shape", f"{name}={','.join(str(d) for d in shape)}"]
    cmd += ["--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads), "--json"]
    return cmd


def parse_bench_json(stdout: str) -> dict:
    """The CLI prints one JSON object; tolerate log lines before it."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise


def time_edgekeep(binary: Path, entry: dict, models_dir: Path, threads: int, runs: int,
                  warmup: int, timeout_s: float, lib_backtrace: bool = False) -> Timing:
    """Runs the edgekeep CLI's bench subcommand and reads its JSON."""
    cmd = edgekeep_command(binary, entry, models_dir, threads, runs, warmup)
    env = dict(os.environ)
    if not lib_backtrace:
        # tract builds anyhow errors on hot paths (one per tree per row in tree ensembles);
        # with RUST_BACKTRACE=1 each captures a backtrace. Panics keep theirs.
        env["RUST_LIB_BACKTRACE"] = "0"
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        return Timing(error=f"timeout after {timeout_s:.0f}s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no stderr"])[-1]
        return Timing(error=f"exit {done.returncode}: {last[:120]}")
    try:
        report = parse_bench_json(done.stdout)
    except (json.JSONDecodeError, ValueError):
        return Timing(error="stdout is not the bench JSON")
    return Timing(p50_ms=report.get("p50_ms"), p90_ms=report.get("p90_ms"),
                  cold_ms=report.get("cold_start_ms"), raw=report)


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[tuple[str, Timing, Timing | None]], threads: int, runs: int) -> str:
    """The side-by-side table plus the geometric mean of p50 ratios."""
    lines = [
        f"threads={threads}, runs={runs} (median), inputs = golden inputs",
        "",
        "| model | ORT p50 ms | edgekeep p50 ms | ratio (edgekeep/ORT) | ORT cold ms | edgekeep cold ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for name, ort_t, ek in rows:
        ratio = None
        if ek is not None and ek.p50_ms and ort_t.p50_ms:
            ratio = ek.p50_ms / ort_t.p50_ms
            ratios.append(ratio)
        ek_p50 = "—" if ek is None else (ek.error or fmt(ek.p50_ms))
        ek_cold = "—" if ek is None or ek.error else fmt(ek.cold_ms, 1)
        lines.append(
            f"| {name} | {fmt(ort_t.p50_ms)} | {ek_p50} | {fmt(ratio, 2)} | "
            f"{fmt(ort_t.cold_ms, 1)} | {ek_cold} |"
        )
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        lines += ["", f"Geometric mean of ratios (edgekeep/ORT) over {len(ratios)} models: "
                  f"{geo:.2f}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="ONNX Runtime vs edgekeep, same inputs.")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--edgekeep", type=Path, default=ROOT / "target" / "release" / "edgekeep",
                        help="path to the edgekeep CLI binary")
    parser.add_argument("--ort-only", action="store_true", help="skip the edgekeep side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for one edgekeep bench call")
    parser.add_argument("--json-out", type=Path, help="also write the raw results here")
    parser.add_argument("--lib-backtrace", action="store_true",
                        help="leave RUST_LIB_BACKTRACE alone (default: set it to 0 for the CLI)")
    args = parser.parse_args()

    manifest = json.loads(args.manifest.read_text())
    models_dir = args.manifest.resolve().parent
    if not args.ort_only and not args.edgekeep.exists():
        print(f"edgekeep binary not found at {args.edgekeep}; build it with "
              "`cargo build --release -p edgekeep-cli` or pass --ort-only", file=sys.stderr)
        return 2

    rows = []
    for entry in manifest:
        if args.model and entry["name"] not in args.model:
            continue
        ort_t = time_ort(entry, models_dir, args.threads, args.runs, args.warmup)
        ek = None if args.ort_only else time_edgekeep(
            args.edgekeep, entry, models_dir, args.threads, args.runs, args.warmup,
            args.timeout, args.lib_backtrace)
        print(f"{entry['name']}: ORT p50 {fmt(ort_t.p50_ms)} ms"
              + ("" if ek is None else f", edgekeep {ek.error or fmt(ek.p50_ms) + ' ms'}"),
              file=sys.stderr)
        rows.append((entry["name"], ort_t, ek))

    print(markdown(rows, args.threads, args.runs))
    if args.json_out:
        args.json_out.write_text(json.dumps([
            {"model": name, "ort": vars(o), "edgekeep": None if e is None else vars(e)}
            for name, o, e in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
