"""TIFF movies: one frame per page, any compression tifffile/imagecodecs decode (none, LZW, zlib, ...).

Frames are returned as stored: row 0 is the top row of the TIFF page (TIFF is top-down, MRC is shown
bottom-up; the gain check in core/gain.py catches an orientation mismatch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from tomoforge.errors import ParseError
from tomoforge.io.atomic import atomic_path

TIFF_SUFFIXES = (".tif", ".tiff")


def _open(path: Path) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(path)
    except FileNotFoundError:
        raise ParseError("file not found", path=path, expected="an existing TIFF movie") from None
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise ParseError(f"not a readable TIFF ({err})", path=path, expected="a TIFF movie") from None


def _page_shapes(path: Path, tif: tifffile.TiffFile) -> list[tuple[int, int]]:
    try:
        pages = list(tif.pages)
    except (tifffile.TiffFileError, ValueError, OSError) as err:  # damaged IFD chain (truncated file)
        raise ParseError(f"corrupted TIFF structure ({err})", path=path, expected="a complete TIFF movie") from None
    shapes = []
    for i, page in enumerate(pages):
        shape = tuple(page.shape)
        if len(shape) == 3 and len(pages) == 1:  # one page holding all frames as separate planes
            return [shape[1:]] * shape[0]
        if len(shape) != 2:
            raise ParseError(f"page {i} has shape {shape}", path=path, expected="grey-level 2D frames")
        shapes.append(shape)
    if not shapes:
        raise ParseError("no pages", path=path, expected="at least one frame")
    if len(set(shapes)) > 1:
        odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
        raise ParseError(f"frame {odd} has shape {shapes[odd]} but frame 0 has {shapes[0]}", path=path,
                         expected="frames of equal shape")
    return shapes


def tiff_movie_shape(path: str | Path) -> tuple[int, int, int]:
    """(n_frames, h, w) without decoding the pixels."""
    path = Path(path)
    with _open(path) as tif:
        shapes = _page_shapes(path, tif)
    return (len(shapes), *shapes[0])


def read_tiff_movie(path: str | Path, frames: slice | None = None) -> np.ndarray:
    """All frames (or ``frames``, a slice of page indices) as a float32 array (n, h, w)."""
    path = Path(path)
    with _open(path) as tif:
        shapes = _page_shapes(path, tif)
        index = range(len(shapes))[frames] if frames is not None else range(len(shapes))
        out = np.empty((len(index), *shapes[0]), dtype=np.float32)
        planes = len(tif.pages) == 1 and len(shapes) > 1
        for k, i in enumerate(index):
            try:
                out[k] = tif.pages[0].asarray()[i] if planes else tif.pages[i].asarray()
            except Exception as err:  # decoder errors come in many types (imagecodecs, zlib, ...)
                raise ParseError(f"cannot decode frame {i} ({type(err).__name__}: {err})", path=path,
                                 expected="a complete TIFF movie") from None
    return out


def write_tiff_movie(path: str | Path, frames, *, compression: str | None = "lzw", dtype=None) -> Path:
    """Write frames (n, h, w) as a multi-page TIFF, atomically; LZW by default.

    ``dtype`` converts before writing (movies are usually uint8 / uint16 counts); default keeps it.
    """
    path = Path(path)
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    data = np.asarray(frames)
    if dtype is not None:
        data = data.astype(dtype)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"write_tiff_movie needs (n, h, w) frames, got shape {data.shape}")
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp) as writer:
        for frame in data:  # one page per frame, as cameras write them
            writer.write(np.ascontiguousarray(frame), compression=compression, photometric="minisblack",
                         contiguous=False)
    return path


__all__ = ["TIFF_SUFFIXES", "read_tiff_movie", "tiff_movie_shape", "write_tiff_movie"]
