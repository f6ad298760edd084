"""CTF model: wavelength, conventions against torch_ctf, canonical form, equiphase mapping."""

from __future__ import annotations

import math

import pytest
import torch
from tests.core.ctf.synth import peer_ctf

from tomoforge.core.ctf.model import (
    CtfParams,
    Optics,
    canonical_params,
    ctf_1d,
    ctf_2d,
    ctf_phase,
    defocus_at_azimuth,
    electron_wavelength_a,
    equiphase_s2,
)


def test_wavelength_known_values():
    assert electron_wavelength_a(300) == pytest.approx(0.019687, abs=2e-6)
    assert electron_wavelength_a(200) == pytest.approx(0.025079, abs=2e-6)
    assert electron_wavelength_a(100) == pytest.approx(0.037013, abs=2e-6)


@pytest.mark.parametrize("du,dv,angle,ps,amp,kv", [
    (25000, 21000, 35.0, 0.0, 0.07, 300), (12000, 11000, -60.0, 45.0, 0.1, 200), (40000, 40000, 0.0, 90.0, 0.0, 300)])
def test_ctf_2d_matches_torch_ctf(du, dv, angle, ps, amp, kv):
    ours = ctf_2d((96, 128), 1.3, CtfParams(du, dv, angle, ps), Optics(kv, 2.7, amp), dtype=torch.float64)
    theirs = peer_ctf((96, 128), 1.3, du, dv, angle, voltage_kv=kv, amp=amp, ps_deg=ps)
    assert ours.shape == theirs.shape == (96, 65)
    assert (ours - theirs).abs().max() < 2e-3


def test_astigmatism_angle_points_at_u():
    az = torch.tensor([math.radians(30.0), math.radians(120.0)], dtype=torch.float64)
    d = defocus_at_azimuth(30000.0, 20000.0, 30.0, az)
    assert d.tolist() == pytest.approx([30000.0, 20000.0])


def test_canonical_params_swaps_and_wraps():
    p = canonical_params(20000, 30000, 10.0)
    assert (p.defocus_u_a, p.defocus_v_a, p.astigmatism_angle_deg) == (30000, 20000, pytest.approx(100.0 - 180.0))
    assert canonical_params(3, 1, 270.0).astigmatism_angle_deg == pytest.approx(90.0)
    assert canonical_params(3, 1, -90.0).astigmatism_angle_deg == pytest.approx(90.0)
    # The canonical form describes the same CTF.
    a = ctf_2d((64, 64), 2.0, CtfParams(20000, 30000, 10.0), Optics())
    b = ctf_2d((64, 64), 2.0, p, Optics())
    assert (a - b).abs().max() < 1e-4


def test_first_zero_of_ctf_1d():
    o = Optics(300, 0.0, 0.0)
    df = 20000.0
    s0 = 1 / math.sqrt(o.wavelength_a * df)  # pi lam df s^2 = pi
    v = ctf_1d(torch.tensor([0.999 * s0, 1.001 * s0], dtype=torch.float64), df, o)
    assert v[0] > 0 > v[1]


def test_equiphase_s2_matches_phase():
    o = Optics()
    s2 = torch.linspace(1e-4, 0.04, 50, dtype=torch.float64)
    u = equiphase_s2(s2, 20000.0, 25000.0, o)
    assert torch.allclose(ctf_phase(u, 25000.0, o), ctf_phase(s2, 20000.0, o), atol=1e-6)
    assert torch.allclose(equiphase_s2(s2, 20000.0, 20000.0, o), s2)


def test_params_rotated_and_shifted():
    p = CtfParams(30000, 28000, 80.0, 5.0)
    assert p.rotated(20.0).astigmatism_angle_deg == pytest.approx(-80.0)
    assert p.shifted(500).defocus_mean_a == pytest.approx(29500.0)
