"""CTFFIND outputs: the real _avrot.txt; CTFFIND 4/5 main text written and read back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import ctffind
from tomoforge.model.ctf import CtfEstimate


def test_avrot_real(realdata):
    a = ctffind.read_avrot(realdata / "ctf/ctffind4.1.14_avrot_mmm_CTF_0.txt")
    assert a.n_micrographs == 1 and len(a.header) == 5
    f = a.frequency_per_a[0]
    assert f.size == 363 and f[0] == 0.0 and f[1] == pytest.approx(0.000049)
    assert f[1] == pytest.approx(1 / (512 * 40.0), abs=1e-6)   # box 512 px at 40 Å/px (header)
    assert np.all(np.diff(f) > 0)
    assert a.rotavg[0][0] == pytest.approx(2.052496) and a.ctf_fit[0][0] == pytest.approx(0.07)
    assert all(len(x[0]) == 363 for x in (a.rotavg_no_astig, a.cross_correlation, a.noise_2sigma))


@pytest.mark.parametrize("v5", [False, True])
def test_main_output_round_trip(tmp_path, v5):
    ests = [CtfEstimate(defocus_u_a=21000.5 + k, defocus_v_a=20500.25, astigmatism_angle_deg=12.5 * k,
                        phase_shift_deg=0.0, fit_score=0.25, fit_resolution_a=6.5) for k in range(3)]
    kw = dict(tilt_axis_deg=[85.0] * 3, tilt_deg=[-3.0, 0.0, 3.0], thickness_a=[1500.0] * 3) if v5 else {}
    ctffind.write_ctffind(tmp_path / "d.txt", ests, pixel_size_a=1.35, ctffind5=v5, **kw)
    out = ctffind.read_ctffind(tmp_path / "d.txt")
    assert out.pixel_size_a == pytest.approx(1.35) and out.voltage_kv == 300.0
    assert [r.micrograph for r in out.rows] == [1, 2, 3]
    for r, e in zip(out.rows, ests, strict=True):
        assert r.ctf.defocus_u_a == pytest.approx(e.defocus_u_a, abs=1e-6)
        assert r.ctf.astigmatism_angle_deg == pytest.approx(e.astigmatism_angle_deg, abs=1e-6)
        assert r.ctf.fit_resolution_a == pytest.approx(6.5)
    if v5:
        assert out.rows[0].tilt_deg == pytest.approx(-3.0) and out.rows[2].thickness_a == pytest.approx(1500)


def test_ctffind4_text_as_written_by_ctffind(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(
        "# Output from CTFFind version 4.1.14, run on 2023-02-02 15:13:07\n"
        "# Input file: test_img.mrc ; Number of micrographs: 1\n"
        "# Pixel size: 1.000 Angstroms ; acceleration voltage: 200.0 keV ; spherical aberration: 2.26 mm ;"
        " amplitude contrast: 0.07\n"
        "# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; #4 - azimuth of "
        "astigmatism; #5 - additional phase shift [radians]; #6 - cross correlation; #7 - spacing (in "
        "Angstroms) up to which CTF rings were fit successfully\n"
        "1.000000 9982.502930 9972.502930 10.000000 1.570796 0.565683 1.980663\n")
    out = ctffind.read_ctffind(p)
    assert out.version == "4.1.14" and out.cs_mm == pytest.approx(2.26) and out.voltage_kv == 200.0
    c = out.rows[0].ctf
    assert c.defocus_v_a == pytest.approx(9972.50293) and c.phase_shift_deg == pytest.approx(90.0, abs=1e-4)
    assert c.fit_score == pytest.approx(0.565683)


def test_bad_ctffind(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("1 2 3\n")
    with pytest.raises(ParseError, match="Columns"):
        ctffind.read_ctffind(p)
