"""OME-Zarr multiscale tomograms: exact round trip of level 0, pyramid sizes and Å scales."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import omezarr


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(24, 40, 36)).astype(np.float32)
    omezarr.write_omezarr(tmp_path / "t.zarr", vol, 13.48, n_levels=3, chunks=(16, 16, 16))
    back, pix = omezarr.read_omezarr(tmp_path / "t.zarr")
    assert np.array_equal(back, vol) and pix == 13.48
    l1, p1 = omezarr.read_omezarr(tmp_path / "t.zarr", 1)
    assert l1.shape == (12, 20, 18) and p1 == pytest.approx(26.96)
    np.testing.assert_allclose(l1[0, 0, 0], vol[:2, :2, :2].mean(), rtol=1e-6)
    l2, p2 = omezarr.read_omezarr(tmp_path / "t.zarr", 2)
    assert l2.shape == (6, 10, 9) and p2 == pytest.approx(53.92)
    meta = json.loads((tmp_path / "t.zarr" / ".zattrs").read_text())["multiscales"][0]
    assert [a["unit"] for a in meta["axes"]] == ["angstrom"] * 3 and meta["version"] == "0.4"


def test_not_omezarr(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    with pytest.raises(ParseError):
        omezarr.read_omezarr(tmp_path / "x.zarr")
