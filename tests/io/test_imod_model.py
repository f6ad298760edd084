"""IMOD binary models: every real .fid/.mod/.seed/.3dmod read; write -> read exact; landmark model layout."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import imod_model as im

CASES = {
    # relative path: (image size, [(contours, points) per object (first 3)], has SIZE)
    "imod/IMOD_tutorial_BB_finalFiles/BBa.fid": ((512, 512, 61), [(25, 1525)], False),
    "imod/IMOD_tutorial_BB_finalFiles/BBa.seed": ((512, 512, 61), [(25, 25)], False),
    "imod/IMOD_tutorial_BB_finalFiles/BBa.3dmod": ((512, 512, 61), [(14, 14), (11, 11)], False),
    "imod/models/two_contour_example.mod": ((128, 128, 128), [(2, 25)], False),
    "imod/models/multiple_objects_example.mod": ((956, 924, 300), [(0, 0), (1, 3), (1, 3)], False),
    "imod/models/point_sizes_example.mod": ((1314, 1298, 100), [(1, 4), (3, 9), (1, 5)], True),
    "imod/models/slicer_angle_example.mod": ((956, 924, 500), [(4, 4)], False),
    "imod/models/meshed_curvature_example.mod": ((221, 91, 256), [(11, 655), (11, 521)], False),
}


def test_every_real_model_is_covered(realdata):
    found = {str(p.relative_to(realdata)) for p in (realdata / "imod").rglob("*")
             if p.suffix in (".fid", ".mod", ".seed", ".3dmod")}
    assert found == set(CASES)


@pytest.mark.parametrize("rel", sorted(CASES))
def test_read_real_model(realdata, rel):
    size, objs, has_size = CASES[rel]
    m = im.read_model(realdata / rel)
    assert m.image_size_xyz == size
    got = [(len(o.contours), sum(len(c.points) for c in o.contours)) for o in m.objects]
    assert got[:len(objs)] == objs
    assert any(c.sizes is not None for o in m.objects for c in o.contours) == has_size
    for o in m.objects:
        for c in o.contours:
            assert c.points.shape[1] == 3 and np.all(np.isfinite(c.points))


def test_fid_is_a_landmark_model(realdata):
    m = im.read_model(realdata / "imod/IMOD_tutorial_BB_finalFiles/BBa.fid")
    beads = im.fiducial_points(m)
    assert len(beads) == 25
    for b in beads:  # one point per view (0..60), x,y inside the 512x512 image
        assert sorted(b[:, 2].round().astype(int).tolist()) == list(range(61))
        assert np.all((b[:, :2] > 0) & (b[:, :2] < 512))
    seed = im.fiducial_points(im.read_model(realdata / "imod/IMOD_tutorial_BB_finalFiles/BBa.seed"))
    assert len(seed) == 25 and all(len(s) == 1 for s in seed)
    # the seed points lie on one view and the tracked beads pass within a few pixels of them
    z0 = seed[0][0, 2]
    for s, b in zip(seed, beads, strict=True):
        assert round(float(s[0, 2])) == round(float(z0)) == 30
        at = b[np.argmin(np.abs(b[:, 2] - z0))]
        assert np.hypot(*(at[:2] - s[0, :2])) < 5.0


def test_first_contour_values_from_bytes(realdata):
    p = realdata / "imod/models/two_contour_example.mod"
    data = p.read_bytes()
    k = data.index(b"CONT")
    n = struct.unpack(">i", data[k + 4:k + 8])[0]
    raw = np.frombuffer(data[k + 20:k + 20 + 12 * n], dtype=">f4").reshape(n, 3)
    m = im.read_model(p)
    assert np.array_equal(m.objects[0].contours[0].points, raw)
    assert m.pixel_size == pytest.approx(0.448)


@pytest.mark.parametrize("rel", sorted(CASES))
def test_write_read_exact(realdata, tmp_path, rel):
    m = im.read_model(realdata / rel)
    im.write_model(tmp_path / "x.mod", m)
    b = im.read_model(tmp_path / "x.mod")
    assert b.image_size_xyz == m.image_size_xyz and b.pixel_size == m.pixel_size
    assert len(b.objects) == len(m.objects) and b.skipped_chunks == []
    for oa, ob in zip(m.objects, b.objects, strict=True):
        assert (oa.flags, oa.color_rgb, oa.point_size) == (ob.flags, ob.color_rgb, ob.point_size)
        for ca, cb in zip(oa.contours, ob.contours, strict=True):
            assert np.array_equal(ca.points, cb.points) and ca.flags == cb.flags
            assert (ca.sizes is None and cb.sizes is None) or np.array_equal(ca.sizes, cb.sizes)


def test_write_fiducial_model(tmp_path):
    rng = np.random.default_rng(1)
    beads = [np.column_stack([rng.uniform(0, 500, 41), rng.uniform(0, 400, 41), np.arange(41)]) for _ in range(6)]
    m = im.fiducial_model(beads, (512, 420, 41), pixel_size=2.5)
    im.write_model(tmp_path / "ts.fid", m)
    data = (tmp_path / "ts.fid").read_bytes()
    assert data[:8] == b"IMODV1.2" and data.endswith(b"IEOF") and data.count(b"CONT") == 6
    back = im.read_model(tmp_path / "ts.fid")
    assert back.image_size_xyz == (512, 420, 41)
    o = back.objects[0]
    assert o.flags & im.OBJ_OPEN and all(c.flags & im.CONT_WILD for c in o.contours)
    for b, c in zip(beads, im.fiducial_points(back), strict=True):
        assert np.array_equal(c, b.astype(np.float32))


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d[:100], "file ends inside"),
    (lambda d: b"XXXX" + d[4:], "not an IMOD binary model"),
    (lambda d: d[:-4] + b"ab\x00d", "bad chunk id"),
])
def test_bad_models(realdata, tmp_path, mutate, msg):
    data = (realdata / "imod/models/two_contour_example.mod").read_bytes()
    p = tmp_path / "bad.mod"
    p.write_bytes(mutate(data))
    with pytest.raises(ParseError, match=msg):
        im.read_model(p)
