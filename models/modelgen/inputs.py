"""Fixed-seed inputs that look like what each model sees in an app.

Every function takes a `seed` and a `batch` and returns arrays whose first axis is the batch.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
VAD_CHUNK = 512
VAD_CONTEXT = 64


def speech_like(seed: int, n_samples: int) -> np.ndarray:
    """A voiced, speech-like waveform in [-1, 1]: harmonics of a gliding pitch, an envelope
    at syllable rate and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SAMPLE_RATE
    f0 = rng.uniform(100.0, 220.0) * (1.0 + 0.05 * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, np.pi))
    wave = 0.3 * envelope * voice / 3.0 + 0.01 * rng.standard_normal(n_samples)
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def vad_chunks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two consecutive model inputs [1, 64 + 512] as the Silero wrapper builds them: the
    previous chunk's last 64 samples (zeros at the start) followed by 512 new samples."""
    wave = speech_like(seed, 2 * VAD_CHUNK)
    first = np.concatenate([np.zeros(VAD_CONTEXT, np.float32), wave[:VAD_CHUNK]])
    second = wave[VAD_CHUNK - VAD_CONTEXT:]
    return first[None, :], second[None, :]


_SNIPPETS = [
    b"import os\nimport sys\n\n\ndef main(argv):\n    for arg in argv[1:]:\n"
    b"        print(os.path.basename(arg))\n    return 0\n",
    b'{"id": 17, "name": "sensor", "values": [0.5, 1.25, 3.0], "ok": true}\n',
    b"<!DOCTYPE html>\n<html><head><title>Notes</title></head>\n<body><p>Hello</p></body></html>\n",
    b"fn main() {\n    let xs: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", xs);\n}\n",
    b"# Title\n\nSome *markdown* text with a [link](https://example.invalid).\n\n- a\n- b\n",
]


def file_bytes(seed: int) -> bytes:
    """Synthetic file content: repeated source/markup snippets, or random binary."""
    rng = np.random.default_rng(seed)
    kind = seed % (len(_SNIPPETS) + 1)
    if kind == len(_SNIPPETS):
        return rng.integers(0, 256, size=int(rng.integers(1500, 6000)), dtype=np.uint8).tobytes()
    return _SNIPPETS[kind] * int(rng.integers(3, 60))


def magika_features(content: bytes, beg: int = 1024, end: int = 1024, pad: int = 256) -> np.ndarray:
    """Magika v3 features: first `beg` bytes after lstrip (padded after), last `end` bytes
    after rstrip (padded before); the whole file is stripped when it fits one 4096-byte block."""
    block = 4096
    head = content[:block]
    head = head.strip() if len(content) <= block else head.lstrip()
    tail = content[-block:]
    tail = tail.strip() if len(content) <= block else tail.rstrip()
    beg_ints = list(head[:beg]) + [pad] * max(0, beg - len(head))
    end_ints = [pad] * max(0, end - len(tail)) + list(tail[-end:])
    return np.array(beg_ints + end_ints, dtype=np.int32)


def magika_batch(seed: int, batch: int) -> np.ndarray:
    """[batch, 2048] int32 byte features of synthetic files."""
    return np.stack([magika_features(file_bytes(seed + i)) for i in range(batch)])


def _normalize_paddle(image: np.ndarray) -> np.ndarray:
    """HWC uint8 → CHW float32 in [-1, 1], as rapidocr feeds PaddleOCR models."""
    return ((image.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


def document_image(seed: int, height: int, width: int) -> np.ndarray:
    """A light page with dark, glyph-like strokes along text lines, HWC uint8."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 235, dtype=np.float32)
    page += rng.normal(0.0, 4.0, size=page.shape)
    y = int(rng.integers(6, 16))
    while y + 10 < height:
        line_h = int(rng.integers(8, 14))
        x = int(rng.integers(4, 20))
        stop = int(rng.integers(width // 2, width - 4))
        while x + 4 < stop:
            glyph_w = int(rng.integers(3, 8))
            ink = rng.uniform(10, 60)
            mask = rng.random((line_h, glyph_w)) < 0.55
            page[y:y + line_h, x:x + glyph_w][mask] = ink
            x += glyph_w + int(rng.integers(1, 4)) + (6 if rng.random() < 0.15 else 0)
        y += line_h + int(rng.integers(6, 14))
    return np.clip(page, 0, 255).astype(np.uint8)


def ocr_det_batch(seed: int, batch: int, size: int = 160) -> np.ndarray:
    """[batch, 3, size, size] normalized document images for the PP-OCR detector."""
    return np.stack([_normalize_paddle(document_image(seed + i, size, size)) for i in range(batch)])


def ocr_cls_batch(seed: int, batch: int) -> np.ndarray:
    """[batch, 3, 48, 192] normalized single text-line crops for the PP-OCR angle classifier;
    every other crop is upside down."""
    crops = []
    for i in range(batch):
        line = document_image(seed + i, 48, 192)
        if i % 2 == 1:
            line = line[::-1, ::-1]
        crops.append(_normalize_paddle(line))
    return np.stack(crops)


def natural_image_batch(seed: int, batch: int, size: int = 160) -> np.ndarray:
    """[batch, 3, size, size] smooth, photo-like images, ImageNet-normalized."""
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    out = []
    for i in range(batch):
        rng = np.random.default_rng(seed + i)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        img = np.zeros((3, size, size), np.float32)
        for c in range(3):
            img[c] = rng.uniform(0.2, 0.6) + 0.2 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img += blob[None] * rng.uniform(-0.4, 0.4, size=(3, 1, 1)).astype(np.float32)
        img += rng.normal(0, 0.02, size=img.shape)
        img = np.round(np.clip(img, 0, 1) * 255.0) / 255.0  # 8-bit, like a decoded photo
        out.append(((img - mean) / std).astype(np.float32))
    return np.stack(out)


def token_batch(seed: int, batch: int, seq: int = 32, vocab: int = 1024) -> np.ndarray:
    """[batch, seq] int64 token ids with a Zipf-like frequency profile (0 is never used)."""
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, size=(batch, seq)) % (vocab - 1) + 1
    return ids.astype(np.int64)
