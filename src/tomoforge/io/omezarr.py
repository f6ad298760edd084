"""OME-Zarr (OME-NGFF 0.4) multiscale tomograms in Å, as copick and the cryoET data portal use them.

Layout: a zarr v2 group with ``multiscales`` metadata (axes z, y, x in ``angstrom``), arrays ``0``, ``1``,
... each a 2x mean-pooled copy of the previous level, with ``coordinateTransformations`` ``scale`` equal
to the voxel size of the level (as copick writes; no translation).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError


def downsample_2x(volume: np.ndarray) -> np.ndarray:
    """Mean over 2x2x2 blocks (odd edges dropped) ``(d, h, w) -> (d//2, h//2, w//2)``."""
    d, h, w = (s // 2 * 2 for s in volume.shape)
    v = volume[:d, :h, :w].astype(np.float32)
    return v.reshape(d // 2, 2, h // 2, 2, w // 2, 2).mean(axis=(1, 3, 5))


def multiscales_metadata(pixel_size_a: float, n_levels: int, name: str = "tomogram") -> dict:
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [pixel_size_a * 2 ** k] * 3}]} for k in range(n_levels)]
    return {"multiscales": [{"version": "0.4", "name": name,
                             "axes": [{"name": a, "type": "space", "unit": "angstrom"} for a in "zyx"],
                             "datasets": datasets, "metadata": {"method": "mean 2x2x2", "writer": "tomoforge"}}]}


def write_omezarr(path: str | Path, volume, pixel_size_a: float, *, n_levels: int = 3,
                  chunks: tuple[int, int, int] = (64, 64, 64), name: str = "tomogram") -> Path:
    """Write a ``(d, h, w)`` volume and its 2x pyramid. Written beside and renamed, so a reader never sees
    a half-written store."""
    import zarr

    path = Path(path)
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError(f"volume must be (d, h, w), got shape {vol.shape}")
    tmp = path.with_name(f".{path.name}.part")
    if tmp.exists():
        shutil.rmtree(tmp)
    g = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    levels = [vol]
    while len(levels) < n_levels and min(levels[-1].shape) >= 2:
        levels.append(downsample_2x(levels[-1]))
    for k, lv in enumerate(levels):
        g.create_array(str(k), data=lv, chunks=tuple(min(c, s) for c, s in zip(chunks, lv.shape, strict=True)))
    g.attrs.update(multiscales_metadata(pixel_size_a, len(levels), name))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def read_omezarr(path: str | Path, level: int = 0) -> tuple[np.ndarray, float]:
    """(volume ``(d, h, w)`` float32, voxel size Å) of one pyramid level."""
    import zarr

    path = Path(path)
    try:
        g = zarr.open_group(str(path), mode="r")
        ms = g.attrs["multiscales"][0]
        ds = ms["datasets"][level]
        units = {a.get("unit") for a in ms.get("axes", []) if isinstance(a, dict)}
        scale = next(t["scale"] for t in ds["coordinateTransformations"] if t.get("type") == "scale")
        arr = np.asarray(g[ds["path"]][...])
    except (KeyError, IndexError, StopIteration, TypeError, ValueError, FileNotFoundError) as err:
        raise ParseError(f"not an OME-Zarr multiscale image ({type(err).__name__}: {err})", path=path,
                         expected="OME-NGFF multiscales metadata") from None
    pix = float(scale[-1])
    if units & {"nanometer"}:
        pix *= 10.0
    if arr.ndim != 3:
        raise ParseError(f"level {level} has {arr.ndim} dimensions", path=path, expected="3 (z, y, x)")
    return arr, pix
