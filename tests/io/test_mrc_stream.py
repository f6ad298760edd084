"""Slab-wise MRC writing: same bytes of data as a whole-volume write, atomic on failure."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from tomoforge.io.mrc_stream import MrcSlabWriter


def test_slabs_in_any_order_give_the_volume(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(5, 13, 7)).astype(np.float32)
    path = tmp_path / "t.mrc"
    with MrcSlabWriter(path, vol.shape, voxel_size_a=2.5) as w:
        for y0, y1 in [(8, 13), (0, 3), (3, 8)]:
            w.write_slab(y0, y1, vol[:, y0:y1])
    with mrcfile.open(path) as m:
        np.testing.assert_array_equal(m.data, vol)
        assert m.voxel_size.x == pytest.approx(2.5)
        assert m.header.dmax == pytest.approx(vol.max())
        assert m.header.dmean == pytest.approx(vol.mean(), abs=1e-6)


def test_incomplete_volume_leaves_no_file(tmp_path):
    path = tmp_path / "t.mrc"
    with pytest.raises(ValueError, match="never written"), MrcSlabWriter(path, (2, 4, 3), 1.0) as w:
        w.write_slab(0, 2, np.zeros((2, 2, 3), np.float32))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_int8_mode0(tmp_path):
    vol = np.arange(-60, 60, dtype=np.int8).reshape(2, 6, 10)
    with MrcSlabWriter(tmp_path / "b.mrc", vol.shape, 1.0, dtype=np.int8) as w:
        w.write_slab(0, 6, vol)
    with mrcfile.open(tmp_path / "b.mrc") as m:
        assert m.header.mode == 0
        np.testing.assert_array_equal(m.data, vol)
