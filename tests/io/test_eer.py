"""EER: writer/reader round trip through tifffile+imagecodecs, grouping, seed 003's dose arithmetic."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
import tifffile

from tomoforge.errors import ParamError, ParseError
from tomoforge.io.eer import (
    eer_frames_per_group,
    eer_shape,
    encode_eer_frame,
    group_bounds,
    read_eer,
    write_eer,
)


def test_seed_003_arithmetic():
    # N_frames = 0.5 / (3.5 * 1.91^2 / 308) = 12 ; with 350 frames 13.7 -> 14
    assert eer_frames_per_group(308, 3.5, 1.91, 0.5) == 12
    assert eer_frames_per_group(350, 3.5, 1.91, 0.5) == 14
    assert eer_frames_per_group(10, 100.0, 2.0, 0.5) == 1  # clamped
    assert eer_frames_per_group(10, 0.01, 1.0, 0.5) == 10
    with pytest.raises(ParamError):
        eer_frames_per_group(308, 0.0, 1.91)


def test_group_bounds():
    assert group_bounds(308, 12)[-1] == (288, 300) and len(group_bounds(308, 12)) == 25
    assert group_bounds(5, 12) == [(0, 5)]


@pytest.mark.parametrize("skip_bits", [7, 8])
@pytest.mark.parametrize("density", [0.0, 0.002, 0.05, 0.6])
def test_encoder_matches_imagecodecs_decoder(skip_bits, density):
    rng = np.random.default_rng(int(density * 1000) + skip_bits)
    frame = (rng.random((300, 257)) < density).astype(np.uint8)
    frame[-1, -1] = density > 0.5
    decoded = imagecodecs.eer_decode(encode_eer_frame(frame, skip_bits), frame.shape, skip_bits, 2, 2)
    np.testing.assert_array_equal(decoded.astype(np.uint8), frame)


def test_round_trip_and_grouping(tmp_path):
    rng = np.random.default_rng(3)
    raw = (rng.random((30, 40, 36)) < 0.03).astype(np.uint8)
    path = write_eer(tmp_path / "m.eer", raw)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_eer and tif.pages[0].compression == 65001
    assert eer_shape(path) == (30, 40, 36)
    np.testing.assert_array_equal(read_eer(path), raw)
    g = read_eer(path, frames_per_group=7)  # 4 groups, 2 raw frames dropped
    assert g.shape == (4, 40, 36) and g.dtype == np.float32
    np.testing.assert_array_equal(g[3], raw[21:28].sum(0))
    # dose target: 3 e/A2 per tilt at 1 A/px over 30 frames = 0.1 e/px/frame -> 0.5 e/px = 5 frames
    d = read_eer(path, dose_per_tilt_e_per_a2=3.0, pixel_size_a=1.0, target_e_per_px=0.5)
    assert d.shape == (6, 40, 36)
    np.testing.assert_array_equal(d.sum(0), raw.sum(0))


def test_bad_eer(tmp_path):
    raw = (np.random.default_rng(0).random((3, 16, 16)) < 0.1).astype(np.uint8)
    good = write_eer(tmp_path / "g.eer", raw).read_bytes()
    (tmp_path / "cut.eer").write_bytes(good[:200])
    with pytest.raises(ParseError, match="cut.eer"):
        read_eer(tmp_path / "cut.eer")
    tifffile.imwrite(tmp_path / "plain.eer", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ParseError, match="plain.eer: field 'Compression'"):
        read_eer(tmp_path / "plain.eer")
    with pytest.raises(ParamError, match="dose per tilt"):
        read_eer(tmp_path / "g.eer", target_e_per_px=0.5)
