"""copick picks JSON (provenance, exact round trip) and neuroglancer state."""

from __future__ import annotations

import json

import pytest

from tomoforge.errors import ParseError
from tomoforge.io import copick
from tomoforge.model import Coordinates3D, Particle


def _picks():
    ps = [Particle(x_a=10.5 * k, y_a=200.25, z_a=-3.0 + k, rot_deg=10.0 * k, tilt_deg=35.0, psi_deg=-70.0 + k,
                   score=0.5 + 0.1 * k) for k in range(4)]
    return Coordinates3D(ts_id="TS_01", particles=ps, pixel_size_a=10.0, user_id="alice", session_id="7")


def test_round_trip(tmp_path):
    c = _picks()
    copick.write_copick_picks(tmp_path / "p.json", c, "ribosome", voxel_spacing_a=10.0)
    d = json.loads((tmp_path / "p.json").read_text())
    assert (d["user_id"], d["session_id"], d["run_name"], d["pickable_object_name"], d["unit"]) == \
        ("alice", "7", "TS_01", "ribosome", "angstrom")
    assert len(d["points"][0]["transformation_"]) == 4
    name, back = copick.read_copick_picks(tmp_path / "p.json")
    assert name == "ribosome" and back.pixel_size_a == 10.0 and back.user_id == "alice"
    for a, b in zip(c.particles, back.particles, strict=True):
        assert (a.x_a, a.y_a, a.z_a, a.score) == (b.x_a, b.y_a, b.z_a, b.score)
        assert (a.rot_deg, a.tilt_deg, a.psi_deg) == pytest.approx((b.rot_deg, b.tilt_deg, b.psi_deg), abs=1e-9)


def test_neuroglancer(tmp_path):
    copick.write_neuroglancer_state(tmp_path / "ng.json", "zarr://http://host/t.zarr", 10.0,
                                    {"ribosome": _picks()}, shape_zyx=(100, 200, 300))
    s = json.loads((tmp_path / "ng.json").read_text())
    assert s["dimensions"]["x"] == [pytest.approx(1e-9), "m"]
    img, ann = s["layers"]
    assert img["source"].startswith("zarr://") and len(ann["annotations"]) == 4
    assert ann["annotations"][1]["point"] == pytest.approx([1.05, 20.025, -0.2])


def test_bad_picks(tmp_path):
    p = tmp_path / "p.json"
    p.write_text('{"points": [{"location": {"x": 1}}]}')
    with pytest.raises(ParseError, match="point 0"):
        copick.read_copick_picks(p)
