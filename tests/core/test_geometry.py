"""The conventions in docs/conventions.md, pinned by numbers: a flipped sign fails here."""

import math

import pytest
import torch

from tomoforge.core import geometry as g


def test_axis_direction_is_ccw_from_plus_y():
    assert g.tilt_axis_direction(0) == pytest.approx((0.0, 1.0))
    assert g.tilt_axis_direction(90) == pytest.approx((-1.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("psi", [-84.2, 0.0, 12.5, 85.3, 175.0])
def test_xf_turns_the_tilt_axis_vertical(psi):
    xf = g.xf_from_parameters(psi)
    c = torch.tensor([50.0, 40.0], dtype=torch.float64)
    axis = torch.tensor(g.tilt_axis_direction(psi), dtype=torch.float64)
    pts = torch.stack([c, c + 10 * axis])
    out = g.apply_xf(xf, pts, c)
    assert out[1, 0] - out[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert out[1, 1] - out[0, 1] == pytest.approx(10.0)
    assert g.xf_rotation_deg(xf).item() == pytest.approx(psi if psi <= 180 else psi - 360)


def test_invert_and_compose():
    xf = g.xf_from_parameters(torch.tensor([10.0, -30.0]), torch.tensor([[3.0, -2.0], [0.5, 7.0]]),
                              torch.tensor([1.02, 0.98]))
    ident = g.compose_xf(xf, g.invert_xf(xf))
    assert torch.allclose(ident[..., :2], torch.eye(2, dtype=torch.float64).expand(2, 2, 2), atol=1e-12)
    assert torch.allclose(ident[..., 2], torch.zeros(2, 2, dtype=torch.float64), atol=1e-12)
    assert g.xf_magnification(xf) == pytest.approx(torch.tensor([1.02, 0.98], dtype=torch.float64))


def test_projection_handedness():
    """A point above the centre (Z > 0) moves to +x at positive tilt, -x at negative tilt."""
    pts = torch.tensor([[0.0, 5.0, 10.0]], dtype=torch.float64)
    xf = g.xf_from_parameters(torch.zeros(2))
    uv = g.project_points(pts, torch.tensor([30.0, -30.0]), xf, (101, 101))
    assert uv[0, 0, 0] - 50 == pytest.approx(10 * math.sin(math.radians(30)))
    assert uv[1, 0, 0] - 50 == pytest.approx(-10 * math.sin(math.radians(30)))
    assert uv[0, 0, 1] - 50 == pytest.approx(5.0)


def test_projection_through_a_rotated_axis():
    """With axis psi, the raw displacement of a Z-offset point is perpendicular to the axis."""
    psi = 30.0
    xf = g.xf_from_parameters(torch.full((1,), psi))
    uv = g.project_points(torch.tensor([[0.0, 0.0, 20.0]], dtype=torch.float64), torch.tensor([45.0]), xf, (64, 64))
    d = uv[0, 0] - torch.tensor([31.5, 31.5], dtype=torch.float64)
    axis = torch.tensor(g.tilt_axis_direction(psi), dtype=torch.float64)
    assert float(d @ axis) == pytest.approx(0.0, abs=1e-9)
    perp = torch.stack([axis[1], -axis[0]])  # aligned +x expressed in raw coordinates
    assert float(d @ perp) == pytest.approx(20 * math.sin(math.radians(45)))


def test_euler_round_trip_and_active_sense():
    angles = torch.tensor([[10.0, 40.0, -70.0], [170.0, 100.0, 20.0]], dtype=torch.float64)
    m = g.euler_zyz_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    assert torch.allclose(g.matrix_to_euler_zyz(m), angles, atol=1e-9)
    rz = g.rotation_z(90.0)
    assert torch.allclose(rz @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    ry = g.rotation_y(90.0)
    assert torch.allclose(ry @ torch.tensor([0.0, 0, 1], dtype=torch.float64),
                          torch.tensor([1.0, 0, 0], dtype=torch.float64), atol=1e-12)
