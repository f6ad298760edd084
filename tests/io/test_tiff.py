"""TIFF movies: LZW/zlib/none, unequal frames, damaged files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tomoforge.errors import ParseError
from tomoforge.io.tiff import read_tiff_movie, tiff_movie_shape, write_tiff_movie


@pytest.mark.parametrize("compression", ["lzw", "zlib", None])
def test_round_trip(tmp_path, compression):
    rng = np.random.default_rng(1)
    frames = rng.poisson(2.0, size=(5, 24, 30)).astype(np.uint8)
    path = write_tiff_movie(tmp_path / "m.tif", frames, compression=compression)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 5
        assert tif.pages[0].compression == {"lzw": 5, "zlib": 8, None: 1}[compression]
    back = read_tiff_movie(path)
    assert back.dtype == np.float32 and back.shape == (5, 24, 30)
    np.testing.assert_array_equal(back, frames)
    assert tiff_movie_shape(path) == (5, 24, 30)
    np.testing.assert_array_equal(read_tiff_movie(path, slice(1, 3)), frames[1:3])


def test_single_page_planes_and_real_imagej_tiff(tmp_path, realdata):
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    tifffile.imwrite(tmp_path / "p.tif", frames, compression="zlib", photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_tiff_movie(tmp_path / "p.tif"), frames)
    real = realdata / "images" / "cylindra_13pf_MT_tomogram_subvolume.tif"
    data = read_tiff_movie(real)
    np.testing.assert_array_equal(data, tifffile.imread(real).astype(np.float32).reshape(data.shape))


def test_unequal_frames_and_damage(tmp_path):
    with tifffile.TiffWriter(tmp_path / "u.tif") as w:
        w.write(np.zeros((8, 8), np.uint8))
        w.write(np.zeros((6, 8), np.uint8))
    with pytest.raises(ParseError, match=r"u.tif: frame 1 has shape \(6, 8\) but frame 0 has \(8, 8\)"):
        read_tiff_movie(tmp_path / "u.tif")
    good = write_tiff_movie(tmp_path / "g.tif", np.ones((3, 16, 16), np.uint8)).read_bytes()
    for i, cut in enumerate([300, len(good) - 200]):
        (tmp_path / f"c{i}.tif").write_bytes(good[:cut])
        with pytest.raises(ParseError, match=f"c{i}.tif"):
            read_tiff_movie(tmp_path / f"c{i}.tif")
    (tmp_path / "x.tif").write_text("hello")
    with pytest.raises(ParseError, match="x.tif: not a readable TIFF"):
        tiff_movie_shape(tmp_path / "x.tif")
