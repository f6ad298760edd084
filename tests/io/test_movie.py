"""Movie dispatch by suffix: MRC, TIFF, EER behind one reader."""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io.eer import write_eer
from tomoforge.io.movie import MOVIE_READERS, group_frames, movie_frame_count, movie_shape, read_movie
from tomoforge.io.mrc import write_mrc
from tomoforge.io.tiff import write_tiff_movie


def test_all_formats_read_the_same(tmp_path):
    rng = np.random.default_rng(5)
    frames = (rng.random((8, 20, 24)) < 0.2).astype(np.uint8)
    paths = [write_mrc(tmp_path / "a.mrc", frames, 1.0), write_mrc(tmp_path / "a.mrcs", frames, 1.0),
             write_tiff_movie(tmp_path / "a.tif", frames), write_tiff_movie(tmp_path / "a.tiff", frames),
             write_eer(tmp_path / "a.eer", frames)]
    assert {p.suffix for p in paths} == set(MOVIE_READERS)
    for p in paths:
        assert movie_shape(p) == (8, 20, 24) and movie_frame_count(p) == 8
        np.testing.assert_array_equal(read_movie(p), frames)
        grouped = read_movie(p, frames_per_group=3)
        assert grouped.shape == (2, 20, 24)
        np.testing.assert_array_equal(grouped[1], frames[3:6].sum(0))


def test_unknown_suffix_and_unequal(tmp_path):
    (tmp_path / "m.dm4").write_bytes(b"x")
    with pytest.raises(ParseError, match=r"m.dm4: unknown movie format '.dm4'"):
        read_movie(tmp_path / "m.dm4")
    import tifffile

    with tifffile.TiffWriter(tmp_path / "u.tif") as w:
        w.write(np.zeros((8, 8), np.uint8))
        w.write(np.zeros((8, 9), np.uint8))
    with pytest.raises(ParseError, match="frames of equal shape"):
        read_movie(tmp_path / "u.tif")


def test_group_frames():
    f = np.arange(5 * 2 * 2, dtype=np.float32).reshape(5, 2, 2)
    g = group_frames(f, 2)
    assert g.shape == (2, 2, 2)
    np.testing.assert_array_equal(g[1], f[2] + f[3])
