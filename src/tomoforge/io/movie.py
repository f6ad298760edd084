"""Movies of any supported format behind one interface, chosen by file suffix.

``read_movie`` returns float32 frames (n, h, w) as stored. ``frames_per_group`` sums consecutive frames
(EER raw frames, or any movie); for EER a target dose per group may be given instead (see io/eer.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError
from tomoforge.io.eer import eer_shape, group_bounds, read_eer
from tomoforge.io.mrc import mrc_header_info, read_mrc
from tomoforge.io.tiff import read_tiff_movie, tiff_movie_shape


def _read_mrc_frames(path: Path, **_) -> np.ndarray:
    return read_mrc(path)[0]


def _read_tiff_frames(path: Path, **_) -> np.ndarray:
    return read_tiff_movie(path)


def _read_eer_frames(path: Path, frames_per_group: int | None = None, **kw) -> np.ndarray:
    return read_eer(path, frames_per_group, **kw)


def _mrc_shape(path: Path) -> tuple[int, int, int]:
    return mrc_header_info(path).shape_zyx


# suffix -> (reader, shape function). The EER reader groups frames itself.
MOVIE_READERS: dict[str, Callable[..., np.ndarray]] = {
    ".mrc": _read_mrc_frames, ".mrcs": _read_mrc_frames,
    ".tif": _read_tiff_frames, ".tiff": _read_tiff_frames,
    ".eer": _read_eer_frames,
}
MOVIE_SHAPES: dict[str, Callable[[Path], tuple[int, int, int]]] = {
    ".mrc": _mrc_shape, ".mrcs": _mrc_shape,
    ".tif": tiff_movie_shape, ".tiff": tiff_movie_shape,
    ".eer": eer_shape,
}
MOVIE_SUFFIXES = tuple(MOVIE_READERS)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MOVIE_READERS:
        raise ParseError(f"unknown movie format '{path.suffix}'", path=path,
                         expected="one of " + ", ".join(MOVIE_SUFFIXES))
    return suffix


def movie_shape(path: str | Path) -> tuple[int, int, int]:
    """(n_frames, h, w) as stored (raw frames for EER), without decoding pixels."""
    path = Path(path)
    return MOVIE_SHAPES[_suffix(path)](path)


def movie_frame_count(path: str | Path) -> int:
    return movie_shape(path)[0]


def group_frames(frames: np.ndarray, frames_per_group: int) -> np.ndarray:
    """Sum consecutive frames (n, h, w) -> (n // k, h, w); the incomplete tail is dropped (see io/eer.py)."""
    bounds = group_bounds(frames.shape[0], frames_per_group)
    return np.stack([frames[a:b].sum(axis=0) for a, b in bounds]).astype(np.float32, copy=False)


def read_movie(path: str | Path, frames_per_group: int | None = None, *,
               dose_per_tilt_e_per_a2: float | None = None, pixel_size_a: float | None = None,
               eer_target_e_per_px: float | None = None) -> np.ndarray:
    """Frames (n, h, w) float32. Frames of unequal shape raise ParseError naming the file."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".eer":
        return MOVIE_READERS[suffix](path, frames_per_group, dose_per_tilt_e_per_a2=dose_per_tilt_e_per_a2,
                                     pixel_size_a=pixel_size_a, target_e_per_px=eer_target_e_per_px)
    frames = MOVIE_READERS[suffix](path)
    if frames.ndim == 2:
        frames = frames[None]
    if frames_per_group and frames_per_group > 1:
        frames = group_frames(frames, frames_per_group)
    return frames


def _read_gain_mrc(path: Path) -> np.ndarray:
    return read_mrc(path)[0]


# Falcon/EER ".gain" files are TIFFs; K2/K3 gains are MRC or TIFF (DM4 is not supported).
GAIN_READERS: dict[str, Callable[[Path], np.ndarray]] = {
    ".mrc": _read_gain_mrc, ".mrcs": _read_gain_mrc,
    ".tif": read_tiff_movie, ".tiff": read_tiff_movie, ".gain": read_tiff_movie,
}


def read_gain_reference(path: str | Path) -> np.ndarray:
    """A gain (or dark) reference as float32 (h, w), exactly as stored (no orientation applied)."""
    path = Path(path)
    reader = GAIN_READERS.get(path.suffix.lower())
    if reader is None:
        raise ParseError(f"unknown gain reference format '{path.suffix}'", path=path,
                         expected="one of " + ", ".join(GAIN_READERS) + " (convert .dm4 with IMOD dm2mrc)")
    data = reader(path)
    if data.shape[0] != 1:
        raise ParseError(f"gain reference has {data.shape[0]} images", path=path, expected="a single 2D image")
    return data[0]


__all__ = ["GAIN_READERS", "MOVIE_READERS", "MOVIE_SUFFIXES", "group_frames", "movie_frame_count", "movie_shape",
           "read_gain_reference", "read_movie"]
