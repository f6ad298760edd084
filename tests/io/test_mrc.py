"""MRC reading/writing: real files, all modes as float32, truncated and non-MRC files."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io.mrc import mrc_header_info, open_stack, read_mrc, read_section, write_mrc


def test_real_maps_match_mrcfile(realdata):
    files = sorted((realdata / "images").glob("*.map")) + sorted((realdata / "images").glob("*.mrc*"))
    assert len(files) >= 4
    for f in files:
        data, pixel = read_mrc(f)
        with mrcfile.open(f, permissive=True) as ref:
            expected = np.asarray(ref.data, dtype=np.float32).reshape(data.shape)
            assert pixel == pytest.approx(float(ref.voxel_size.x), rel=1e-5), f.name
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, expected)
    # float16 WarpTools stack (mode 12) and the extended-header EMDB map
    info = mrc_header_info(realdata / "images" / "warptools_2Dstack_Unt_083_000001.mrcs")
    assert info.mode == 12 and info.shape_zyx == (37, 32, 32) and info.pixel_size_a == pytest.approx(12.0)
    info = mrc_header_info(realdata / "images" / "EMD-3001_P21_extheader.map")
    assert info.data_offset == 1024 + 160 and info.shape_zyx == (25, 43, 73)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16, np.float32])
def test_round_trip_modes(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((3, 10, 14)) * 100).astype(dtype)
    path = write_mrc(tmp_path / "a.mrcs", data, 1.35, dtype=dtype)
    back, pixel = read_mrc(path)
    assert back.dtype == np.float32 and pixel == pytest.approx(1.35)
    np.testing.assert_array_equal(back, data.astype(np.float32))
    np.testing.assert_array_equal(read_section(path, 2), data[2].astype(np.float32))
    assert open_stack(path).shape == (3, 10, 14)
    with mrcfile.open(path) as ref:  # a standard reader agrees, and it is flagged as an image stack
        assert ref.is_image_stack()
    with pytest.raises(ParseError, match="section 3 does not exist"):
        read_section(path, 3)


def test_big_endian_and_torch_input(tmp_path):
    torch = pytest.importorskip("torch")
    path = write_mrc(tmp_path / "t.mrc", torch.arange(24.0).reshape(2, 3, 4), 2.0)
    assert read_mrc(path)[0][1, 2, 3] == 23.0
    with mrcfile.new(tmp_path / "be.mrc") as m:
        m.set_data(np.arange(12, dtype=">f4").reshape(1, 3, 4))
        m.voxel_size = 3.0
    data, pixel = read_mrc(tmp_path / "be.mrc")
    np.testing.assert_array_equal(data.ravel(), np.arange(12))
    assert pixel == pytest.approx(3.0)


def test_truncated_and_not_mrc(tmp_path):
    path = write_mrc(tmp_path / "TS_01.st", np.zeros((41, 16, 16), np.float32), 5.4)
    whole = path.read_bytes()
    (tmp_path / "cut.st").write_bytes(whole[: len(whole) - 100])
    with pytest.raises(ParseError) as err:
        read_mrc(tmp_path / "cut.st")
    msg = str(err.value)
    assert "cut.st" in msg and "41x16x16 float32" in msg and str(len(whole)) in msg and str(len(whole) - 100) in msg
    assert "\n" not in msg
    (tmp_path / "short.mrc").write_bytes(whole[:500])
    with pytest.raises(ParseError, match="short.mrc: truncated: 500 bytes"):
        mrc_header_info(tmp_path / "short.mrc")
    (tmp_path / "text.mrc").write_bytes(b"not an mrc file at all " * 100)
    with pytest.raises(ParseError, match="text.mrc"):
        read_mrc(tmp_path / "text.mrc")
    with pytest.raises(ParseError, match="nothere.mrc: file not found"):
        read_mrc(tmp_path / "nothere.mrc")


def test_write_is_atomic(tmp_path):
    final = write_mrc(tmp_path / "x.mrc", np.ones((2, 3, 3), np.float32), 1.0)
    before = final.read_bytes()
    with pytest.raises(ValueError, match="int64"):  # fails inside the writer, after the temp file exists
        write_mrc(final, np.zeros((2, 3, 3)), 1.0, dtype=np.int64)
    assert [p.name for p in tmp_path.iterdir()] == ["x.mrc"] and final.read_bytes() == before


def test_mode0_signedness_follows_imod_flag(tmp_path):
    data = np.array([[[0, 100, 200, 255]]], dtype=np.uint8)
    path = tmp_path / "b.mrc"
    with mrcfile.new(path) as m:
        m.set_data(data.view(np.int8))  # mode 0
    raw = bytearray(path.read_bytes())
    assert read_mrc(path)[0].ravel().tolist() == [0, 100, -56, -1]  # MRC2014: signed
    raw[152:156] = np.int32(1146047817).tobytes()  # IMOD stamp, flags bit 0 clear: unsigned
    raw[156] = 0
    path.write_bytes(bytes(raw))
    assert read_mrc(path)[0].ravel().tolist() == [0, 100, 200, 255]
    raw[156] = 1
    path.write_bytes(bytes(raw))
    assert read_mrc(path)[0].ravel().tolist() == [0, 100, -56, -1]
