"""Read MNIST from local files: the four IDX files (plain or gzipped) or a Keras-style ``mnist.npz``.

IDX layout (big-endian): a 4-byte magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` uint32
sizes, then the data. MNIST's images are ``0x00000803`` (uint8, 3 dims: n, rows, cols) and its
labels ``0x00000801`` (uint8, 1 dim: n). Nothing here downloads anything.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
# (role, file name, magic), in the order mnist() returns them.
FILES = (
    ("x_train", "train-images-idx3-ubyte", IMAGES_MAGIC),
    ("y_train", "train-labels-idx1-ubyte", LABELS_MAGIC),
    ("x_test", "t10k-images-idx3-ubyte", IMAGES_MAGIC),
    ("y_test", "t10k-labels-idx1-ubyte", LABELS_MAGIC),
)
NPZ_NAME = "mnist.npz"


def read_idx(file: Path, magic: int) -> np.ndarray:
    """One IDX file as a uint8 array of the shape its header gives; ``.gz`` files are decompressed."""
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as f:
                raw = f.read()
        else:
            raw = file.read_bytes()
    except (EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{file}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4:
        raise ValueError(f"{file}: truncated IDX header, expected at least 4 bytes, the file holds {len(raw)}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"{file}: wrong IDX magic number, expected 0x{magic:08x} ({magic}), found 0x{found:08x} ({found})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{file}: truncated IDX header, expected {header} bytes, the file holds {len(raw)}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected, actual = math.prod(dims), len(raw) - header
    if actual != expected:
        what = "truncated data" if actual < expected else "trailing bytes"
        raise ValueError(f"{file}: {what}, the header gives shape {dims} so expected {expected} bytes of data, found {actual}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def scale(images: np.ndarray, dtype: Any) -> np.ndarray:
    """(N, rows, cols) grey levels 0..255 to (N, rows·cols) floats in [0, 1]; floats pass as they are."""
    flat = images.reshape(images.shape[0], -1)
    return flat / np.dtype(dtype).type(255) if np.issubdtype(flat.dtype, np.integer) else flat.astype(dtype)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` as raw arrays from a folder of IDX files or an npz."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a folder or an .npz file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    names = ", ".join(f"{name}[.gz]" for _, name, _ in FILES)
    if not path.exists():
        raise FileNotFoundError(
            f"`path` {str(path)!r} does not exist; expected a folder holding the MNIST IDX files ({names}) or an {NPZ_NAME} file"
        )
    if path.is_file():
        return load_npz(path)
    found = [_find(path, name) for _, name, _ in FILES]
    if any(f is None for f in found):
        if (path / NPZ_NAME).is_file():
            return load_npz(path / NPZ_NAME)
        missing = ", ".join(f"{name}[.gz]" for (_, name, _), f in zip(FILES, found) if f is None)
        raise FileNotFoundError(
            f"MNIST files missing in folder {str(path)!r}: {missing}; it needs all four IDX files "
            f"(each may be gzipped, .gz) or an {NPZ_NAME} file"
        )
    files = [f for f in found if f is not None]  # all four exist here
    arrays = [read_idx(f, magic) for f, (_, _, magic) in zip(files, FILES)]
    for i in (0, 2):
        _check_pair(arrays[i], arrays[i + 1], str(files[i]), str(files[i + 1]))
    return arrays[0], arrays[1], arrays[2], arrays[3]


def load_npz(file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The arrays ``x_train, y_train, x_test, y_test`` of an npz archive (no pickle allowed)."""
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{file}: not an .npz archive; expected a zip of the arrays x_train, y_train, x_test, y_test")
    try:
        with np.load(file, allow_pickle=False) as data:
            missing = [role for role, _, _ in FILES if role not in data.files]
            if missing:
                raise ValueError(
                    f"{file}: missing arrays {missing}; expected keys x_train, y_train, x_test, y_test, "
                    f"found {sorted(data.files)}"
                )
            arrays = tuple(data[role] for role, _, _ in FILES)
    except (OSError, EOFError, zipfile.BadZipFile) as e:  # a damaged archive
        raise ValueError(f"{file}: damaged .npz archive ({e})") from None
    for i in (0, 2):
        role_x, role_y = FILES[i][0], FILES[i + 1][0]
        _check_pair(arrays[i], arrays[i + 1], f"{file}[{role_x}]", f"{file}[{role_y}]")
    return arrays


def _check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    if images.ndim < 1 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"image and label counts disagree: {images_name} holds images of shape {images.shape}, "
            f"{labels_name} holds labels of shape {labels.shape}; expected n images and n labels"
        )
