"""Write a volume to MRC slab by slab (Y ranges), atomically, with bounded memory.

Reconstruction produces ``(d, y1-y0, w)`` slabs; in the file (z slowest) such a slab is ``d`` separate runs
of ``(y1-y0) * w`` values, written with ``os.pwrite`` so no page of the output stays mapped. The file is
created under a temporary name and renamed when complete (io.atomic); header statistics are accumulated
from the slabs and written at the end.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import mrcfile
import numpy as np

from tomoforge.io.atomic import atomic_path

_MODES = {np.dtype(np.float32): 2, np.dtype(np.int8): 0, np.dtype(np.uint8): 6, np.dtype(np.int16): 1}


class MrcSlabWriter:
    """Context manager: ``with MrcSlabWriter(path, (d, h, w), voxel_size_a) as w: w.write_slab(y0, y1, s)``.

    dtype: float32 (mode 2), int8 (mode 0), int16 (mode 1) or uint8 (stored as mode 6, uint16, because
    MRC mode 0 is signed in the 2014 standard). Every row must be written exactly once before closing;
    otherwise the file is discarded and ValueError raised.
    """

    def __init__(self, path: str | Path, shape_zyx: tuple[int, int, int], voxel_size_a: float,
                 dtype=np.float32, label: str = "tomoforge reconstruct"):
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape_zyx)
        self.voxel_size_a = float(voxel_size_a)
        self.dtype = np.dtype(dtype)
        if self.dtype not in _MODES:
            raise ValueError(f"unsupported MRC dtype {self.dtype}")
        self.file_dtype = np.dtype(np.uint16) if self.dtype == np.uint8 else self.dtype
        self.label = label
        self._rows = np.zeros(self.shape[1], dtype=bool)
        self._stats = [math.inf, -math.inf, 0.0, 0.0]  # min, max, sum, sum of squares

    def __enter__(self) -> MrcSlabWriter:
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        # Header (and a sparse file of the full size) via mrcfile's memory-mapped creation.
        with mrcfile.new_mmap(self._tmp, shape=self.shape, mrc_mode=_MODES[np.dtype(self.file_dtype)],
                              overwrite=True) as m:
            m.voxel_size = self.voxel_size_a
            m.header.label[0] = self.label.encode()[:80]
            m.header.nlabl = 1
            self._offset = m.header.nbytes + m.extended_header.nbytes
            self._byteorder = m.header.mode.dtype.byteorder
        self._fd = os.open(self._tmp, os.O_RDWR)
        return self

    def write_slab(self, y0: int, y1: int, slab) -> None:
        """Write rows ``y0:y1`` of every section; ``slab`` is ``(d, y1-y0, w)`` (numpy or torch)."""
        if hasattr(slab, "detach"):
            slab = slab.detach().cpu().numpy()
        d, h, w = self.shape
        if slab.shape != (d, y1 - y0, w):
            raise ValueError(f"slab shape {slab.shape} != {(d, y1 - y0, w)}")
        data = np.ascontiguousarray(slab, dtype=self.file_dtype)
        if self._byteorder == ">":
            data = data.byteswap().view(data.dtype.newbyteorder(">"))
        st = self._stats
        st[0] = min(st[0], float(data.min()))
        st[1] = max(st[1], float(data.max()))
        st[2] += float(data.sum(dtype=np.float64))
        st[3] += float(np.square(data, dtype=np.float64).sum())
        item = self.file_dtype.itemsize
        for z in range(d):
            os.pwrite(self._fd, data[z].tobytes(), self._offset + ((z * h + y0) * w) * item)
        self._rows[y0:y1] = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        os.close(self._fd)
        if exc_type is None and not self._rows.all():
            missing = int((~self._rows).sum())
            exc = ValueError(f"{self.path}: {missing} rows were never written")
            self._ctx.__exit__(ValueError, exc, None)
            raise exc
        if exc_type is None:
            n = math.prod(self.shape)
            mean = self._stats[2] / n
            rms = math.sqrt(max(self._stats[3] / n - mean * mean, 0.0))
            with mrcfile.mmap(self._tmp, mode="r+") as m:
                m.header.dmin, m.header.dmax, m.header.dmean, m.header.rms = (
                    self._stats[0], self._stats[1], mean, rms)
        return bool(self._ctx.__exit__(exc_type, exc, tb))
