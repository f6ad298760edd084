"""Strip-based correction: phase flipping, multiplication, aligned-frame astigmatism, NovaCTF slab offsets."""

from __future__ import annotations

import math

import pytest
import torch
from tests.core.ctf.synth import peer_ctf, synth_view

from tomoforge.core.ctf.correct import aligned_ctf_params, correct_ctf_strips, slab_offset_a, strip_width_px
from tomoforge.core.ctf.model import CtfParams, Optics
from tomoforge.core.geometry import apply_xf, xf_from_parameters

PIX = 2.0


def test_phase_flip_of_a_noise_free_view_leaves_abs_ctf():
    n = 256
    img, spec = synth_view(21000, 19000, 35.0, pixel_size_a=PIX, size=n, noise_free=True, bfactor=0.0)
    flipped = correct_ctf_strips(img, CtfParams(21000, 19000, 35.0), PIX, Optics(), tilt_deg=0.0, mode="flip")
    ratio = torch.fft.rfft2(flipped) / torch.fft.rfft2(spec)
    ctf = peer_ctf((n, n), PIX, 21000, 19000, 35.0)
    outside_zeros = ctf.abs() > 0.05
    outside_zeros[0, 0] = False
    # The Nyquist row and column of an even-sized image cannot hold an astigmatic CTF (Hermitian symmetry).
    outside_zeros[n // 2, :] = False
    outside_zeros[:, -1] = False
    rel = (ratio.real - ctf.abs()).abs() / ctf.abs()
    assert rel[outside_zeros].max() < 0.01
    assert ratio.imag[outside_zeros].abs().max() < 0.01


def _tilted_case(n: int, pixel_a: float, tilt: float, defocus_a: float, handedness: int = 1):
    """Each specimen column imaged at its own height (defocus), as in a tilted slab, and the ideal result:
    every column corrected by |CTF| at its own defocus."""
    g = torch.Generator().manual_seed(0)
    ky = torch.fft.fftfreq(n, d=pixel_a, dtype=torch.float64)
    kx = torch.fft.rfftfreq(n, d=pixel_a, dtype=torch.float64)
    damp = torch.exp(-100.0 * (ky[:, None] ** 2 + kx[None] ** 2) / 4)
    spec = torch.fft.irfft2(torch.fft.rfft2(torch.randn(n, n, generator=g, dtype=torch.float64)) * damp, s=(n, n))
    x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    img = torch.zeros(n, n, dtype=torch.float64)
    ideal = torch.zeros(n, n, dtype=torch.float64)
    for i in range(0, n, 4):
        off = float(-handedness * pixel_a * x[i:i + 4].mean() * math.tan(math.radians(tilt)))
        part = torch.zeros(n, n, dtype=torch.float64)
        part[:, i:i + 4] = spec[:, i:i + 4]
        fp, ctf = torch.fft.rfft2(part), peer_ctf((n, n), pixel_a, defocus_a + off, defocus_a + off, 0.0)
        img += torch.fft.irfft2(fp * ctf, s=(n, n))
        ideal += torch.fft.irfft2(fp * ctf.abs(), s=(n, n))
    return img, ideal


def _rel_err(out, ideal, margin: int) -> float:
    inner = (slice(margin, -margin), slice(margin, -margin))  # away from the circular FFT's wrap-around
    return float((out[inner] - ideal[inner]).norm() / ideal[inner].norm())


def test_phase_flip_of_a_tilted_view_follows_the_gradient():
    tilt = 45.0
    img, ideal = _tilted_case(384, PIX, tilt, 15000.0)

    def error(handedness: int) -> float:
        out = correct_ctf_strips(img, CtfParams(15000, 15000), PIX, Optics(), tilt_deg=tilt, mode="flip",
                                 defocus_tolerance_a=50.0, handedness=handedness)
        return _rel_err(out, ideal, 48)

    uncorrected = _rel_err(img, ideal, 48)
    right, wrong = error(1), error(-1)
    assert right < 0.2 and wrong > 1.8 * right and uncorrected > 4 * right, (right, wrong, uncorrected)


def test_cropped_strips_are_as_good_as_whole_image_strips():
    # Correcting each strip on a box around it (plus the CTF's spread) instead of the whole view.
    img, ideal = _tilted_case(512, 4.0, 50.0, 30000.0)
    kw = dict(params=CtfParams(30000, 30000), pixel_size_a=4.0, optics=Optics(), tilt_deg=50.0,
              defocus_tolerance_a=100.0)
    whole = _rel_err(correct_ctf_strips(img, crop=False, **kw), ideal, 96)
    cropped = _rel_err(correct_ctf_strips(img, crop=True, **kw), ideal, 96)
    assert cropped <= 1.05 * whole and cropped < 0.2, (cropped, whole)


def test_multiply_applies_the_ctf():
    n = 128
    spec = torch.randn(n, n, dtype=torch.float64)
    out = correct_ctf_strips(spec, CtfParams(12000, 11000, -20.0, 30.0), PIX, Optics(), 0.0, mode="multiply")
    expected = torch.fft.irfft2(torch.fft.rfft2(spec) * peer_ctf((n, n), PIX, 12000, 11000, -20.0, ps_deg=30.0), s=(n, n))
    assert (out - expected).abs().max() < 1e-3 * expected.abs().max()
    with pytest.raises(ValueError, match="unknown CTF correction mode"):
        correct_ctf_strips(spec, CtfParams(12000, 11000), PIX, Optics(), 0.0, mode="wiener")


def test_astigmatism_turns_with_the_xf():
    psi = 85.0
    xf = xf_from_parameters(psi)
    raw = CtfParams(30000, 28000, 30.0)
    aligned = aligned_ctf_params(raw, xf)
    u = torch.tensor([[math.cos(math.radians(30.0)), math.sin(math.radians(30.0))]], dtype=torch.float64)
    mapped = apply_xf(xf, u, torch.zeros(2, dtype=torch.float64))[0]
    expected = math.degrees(math.atan2(mapped[1], mapped[0]))
    assert ((aligned.astigmatism_angle_deg - expected + 90) % 180 - 90) == pytest.approx(0.0, abs=1e-6)
    assert (aligned.defocus_u_a, aligned.defocus_v_a) == (30000, 28000)


def test_strip_width_from_tolerance():
    assert strip_width_px(0.0, PIX, 200.0, 1000) == 1000
    assert strip_width_px(45.0, PIX, 200.0, 1000) == 100
    assert strip_width_px(89.0, PIX, 1.0, 1000) == 8


def test_slab_offset_is_height_over_cos_tilt():
    assert slab_offset_a(100.0, 60.0, PIX) == pytest.approx(400.0)
    assert slab_offset_a(100.0, 60.0, PIX, handedness=-1) == pytest.approx(-400.0)
    img = torch.randn(128, 128, dtype=torch.float64)
    p = CtfParams(20000, 19000, 10.0)
    a = correct_ctf_strips(img, p, PIX, Optics(), 30.0, defocus_offset_a=400.0)
    b = correct_ctf_strips(img, p.shifted(400.0), PIX, Optics(), 30.0)
    assert torch.allclose(a, b)


def test_raw_frame_correction_matches_the_aligned_one():
    # A raw view whose axis is at 90 deg is the aligned view turned 90 deg counter-clockwise:
    # raw(x', y') = aligned(x, y) with (x', y') = (-y, x), i.e. raw = flip(aligned.T, columns) on a square.
    n = 127
    aligned_img = torch.randn(n, n, dtype=torch.float64)
    raw_img = torch.flip(aligned_img.T, dims=[1])
    aligned_p = CtfParams(20000, 18500, 20.0)
    raw_p = CtfParams(20000, 18500, 110.0)
    xf = xf_from_parameters(90.0)
    assert aligned_ctf_params(raw_p, xf).astigmatism_angle_deg == pytest.approx(20.0)
    a = correct_ctf_strips(aligned_img, aligned_p, PIX, Optics(), 50.0, defocus_tolerance_a=100.0)
    r = correct_ctf_strips(raw_img, raw_p, PIX, Optics(), 50.0, defocus_tolerance_a=100.0, tilt_axis_deg=90.0)
    assert torch.allclose(torch.flip(a.T, dims=[1]), r, atol=1e-6)

