"""``tomogram-postprocess``: slab-wise trim / rotate / flip / 8-bit equal the in-memory operations."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from tomoforge.core.reconstruct.postprocess import flip_axes, rotate_x_90, trim_volume
from tomoforge.errors import ParamError
from tomoforge.io.mrc import write_mrc
from tomoforge.model import Tomogram
from tomoforge.steps.base import InputArtifact, Unit, UnitContext
from tomoforge.steps.tomogram_postprocess import TomogramPostprocess, TomogramPostprocessParams


def _setup(tmp_path):
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(12, 20, 16, generator=g)
    write_mrc(tmp_path / "t.mrc", vol, 4.0)
    write_mrc(tmp_path / "h1.mrc", vol * 2, 4.0)
    tomo = Tomogram(ts_id="TS_01", path=str(tmp_path / "t.mrc"), half1_path=str(tmp_path / "h1.mrc"),
                    pixel_size_a=4.0, shape_zyx=(12, 20, 16))
    (tmp_path / "tomo.json").write_text(tomo.model_dump_json())
    art = InputArtifact(1, "tomogram", "TS_01", "Tomogram", str(tmp_path / "tomo.json"))
    return vol, Unit(key="TS_01", inputs={"tomogram": [art]})


def _run(tmp_path, unit, **params):
    res = TomogramPostprocess().run_unit(TomogramPostprocessParams(**params), unit,
                                         UnitContext(job_dir=tmp_path / "job", unit_key="TS_01"))
    (art,) = res.artifacts
    return Tomogram.model_validate_json(open(art.path).read())


def test_reorient_float_and_halves(tmp_path):
    vol, unit = _setup(tmp_path)
    out = _run(tmp_path, unit, trim_z=(2, 10), trim_x=(1, 15), rotate_x_turns=-1, flip="x", max_slab_mb=0.001)
    want = flip_axes(rotate_x_90(trim_volume(vol, z=(2, 10), x=(1, 15)), -1), "x")
    with mrcfile.open(out.path) as m:
        np.testing.assert_array_equal(m.data, want.numpy())
        assert float(m.voxel_size.x) == pytest.approx(4.0)
    assert out.shape_zyx == tuple(want.shape)
    with mrcfile.open(out.half1_path) as m:
        np.testing.assert_allclose(m.data, 2 * want.numpy())


def test_8bit_and_bad_trim(tmp_path):
    vol, unit = _setup(tmp_path)
    out = _run(tmp_path, unit, output="int8", normalise="mean_sd", n_sd=3.0)
    with mrcfile.open(out.path) as m:
        assert m.header.mode == 0
        data = m.data.astype(np.float32)
    assert np.corrcoef(data.ravel(), vol.numpy().ravel())[0, 1] > 0.95
    with pytest.raises(ParamError, match="trim"):
        _run(tmp_path, unit, trim_z=(5, 40))
