"""mdoc parser conformance (real SerialEM / Tomo5 files) and writer round trips."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import pytest

from tomoforge.errors import ParseError
from tomoforge.io.mdoc import parse_mdoc_datetime, parse_mdoc_text, read_mdoc, write_mdoc

MDOCS = ["serialem_EMPIAR-10164_TS_01.mrc.mdoc", "serialem_frameset_multiple.mdoc", "serialem_frameset_single.mdoc",
         "serialem_montage_multiple_sections.mdoc", "serialem_montage_section.mdoc",
         "tomo5_Position_12_CryoBoost.mdoc"]


def _raw_sections(text: str) -> list[tuple[str, int, dict[str, str]]]:
    """Independent, naive reading of the file text: (kind, index, {key: value}) per bracket section."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        m = re.fullmatch(r"\[(\w+) = (-?\d+)\]", line)
        if m:
            out.append((m.group(1), int(m.group(2)), {}))
        elif out and "=" in line and not line.startswith("["):
            k, v = line.split("=", 1)
            out[-1][2][k.strip()] = v.strip()
    return out


def test_every_real_mdoc_parses_and_matches_its_text(realdata):
    files = sorted((realdata / "mdoc").glob("*.mdoc"))
    assert {f.name for f in files} >= set(MDOCS)
    for f in files:
        text = f.read_bytes().decode()
        mdoc = read_mdoc(f)
        raw = _raw_sections(text)
        assert [(s.kind, s.index) for s in mdoc.sections] == [(k, i) for k, i, _ in raw], f.name
        assert mdoc.crlf == ("\r\n" in text)
        for s, (_, _, fields) in zip(mdoc.sections, raw, strict=True):
            assert s.fields == fields, f.name
            if "TiltAngle" in fields:
                assert s.tilt_angle_deg == pytest.approx(float(fields["TiltAngle"]))
            if "ExposureDose" in fields:
                assert s.exposure_dose_e_per_a2 == pytest.approx(float(fields["ExposureDose"]))
            if fields.get("DateTime"):
                assert s.date_time is not None and s.date_time.strftime("%H:%M:%S") in fields["DateTime"]


def test_ts01_values(realdata):
    path = realdata / "mdoc" / "serialem_EMPIAR-10164_TS_01.mrc.mdoc"
    mdoc = read_mdoc(path)
    z = mdoc.z_sections
    assert len(z) == 41 and [s.index for s in z] == list(range(41))
    assert mdoc.pixel_spacing_a == pytest.approx(5.4)
    assert mdoc.image_file == "TS_01.mrc" and mdoc.image_size_xy == (924, 958) and mdoc.data_mode == 1
    assert mdoc.tilt_axis_deg == pytest.approx(85.3)
    assert mdoc.crlf
    angles = sorted(round(s.tilt_angle_deg) for s in z)
    assert angles == list(range(-60, 61, 3))  # 3 degree step, +-60
    assert all(s.exposure_dose_e_per_a2 == 0 for s in z)  # dose not recorded
    assert z[0].date_time == datetime(2015, 11, 30, 15, 21, 38)
    assert z[40].date_time == datetime(2015, 11, 30, 16, 6, 45)
    assert z[1].sub_frame_path == r"D:\DATA\Flo\HGK149_20151130\frames\TS_01_001_3.0.mrc"
    assert z[1].sub_frame_name == "TS_01_001_3.0.mrc"
    assert z[0].num_sub_frames == 8 and z[0].magnification == 105000
    assert z[0].target_defocus_um == -4 and z[0].rotation_angle_deg == pytest.approx(175.3)
    # dose-symmetric: in time order, |angle| never decreases by more than one step, and signs alternate in pairs
    by_time = sorted(z, key=lambda s: s.date_time)
    seq = [round(s.tilt_angle_deg) for s in by_time]
    assert seq[:7] == [0, 3, -3, -6, 6, 9, -9]
    assert max(abs(a) for a in seq[:11]) == 15


def test_tomo5_values(realdata):
    mdoc = read_mdoc(realdata / "mdoc" / "tomo5_Position_12_CryoBoost.mdoc")
    assert mdoc.tilt_axis_deg == pytest.approx(-174.23)
    assert mdoc.image_size_xy == (4096, 4096)  # "4096 4096 " with a trailing space
    assert mdoc.voltage_kv == 300 and mdoc.data_mode == 6
    s0 = mdoc.z_sections[0]
    assert s0.fields["CameraLength"] == "NaN" and s0.camera_length is None
    assert s0.fields["ChannelName"] == "" and s0.channel_name is None
    assert s0.stage_position == (pytest.approx(440.20), pytest.approx(-722.52))
    assert s0.frame_doses_and_number == [(pytest.approx(2.07), 1)]
    assert s0.sub_frame_name == "Position_12_001_-10.00_20231020_234209_EER.eer"
    assert [s.prior_record_dose_e_per_a2 for s in mdoc.z_sections] == pytest.approx([0, 2.07, 4.14, 6.21, 8.27, 10.34])
    assert len(mdoc.titles) == 2


def test_frameset_and_montage(realdata):
    single = read_mdoc(realdata / "mdoc" / "serialem_frameset_single.mdoc")
    assert single.z_sections == [] and len(single.frame_sets) == 1
    assert single.titles[0].startswith("SerialEM: UMass_Krios")  # 'T = ' without brackets
    assert single.voltage_kv == 300
    fs = single.frame_sets[0]
    assert fs.num_sub_frames == 12 and fs.frame_doses_and_number == [(pytest.approx(0.63824), 12)]
    assert fs.fields["GainReference"].endswith(".dm4")
    multi = read_mdoc(realdata / "mdoc" / "serialem_frameset_multiple.mdoc")
    assert len(multi.frame_sets) == 1 and len(multi.z_sections) == 20
    assert multi.z_sections[1].fields["FrameTSStartEndFrames"] == "22 34"
    mont = read_mdoc(realdata / "mdoc" / "serialem_montage_multiple_sections.mdoc")
    assert mont.montage and len(mont.mont_sections) == 10 and len(mont.z_sections) == 90
    assert mont.z_sections[1].piece_coordinates == (0, 1758, 0)
    mont1 = read_mdoc(realdata / "mdoc" / "serialem_montage_section.mdoc")
    assert not mont1.crlf and mont1.tilt_axis_deg == pytest.approx(-86.7)


def test_agrees_with_mdocfile_package(realdata):
    mdocfile = pytest.importorskip("mdocfile")
    for name in MDOCS:
        path = realdata / "mdoc" / name
        ours = read_mdoc(path)
        theirs = mdocfile.read(path)
        assert len(ours.sections) == len(theirs), name  # one row per section of any kind
        for s, (_, row) in zip(ours.sections, theirs.iterrows(), strict=True):
            if row.get("TiltAngle") is not None and not (isinstance(row["TiltAngle"], float)
                                                         and math.isnan(row["TiltAngle"])):
                assert s.tilt_angle_deg == pytest.approx(float(row["TiltAngle"])), name
            if isinstance(row.get("DateTime"), str):
                assert s.date_time_text == row["DateTime"].strip(), name
            sub = row.get("SubFramePath")
            if sub is not None and not (isinstance(sub, float) and math.isnan(sub)):
                assert s.sub_frame_name == Path(str(sub).replace("\\", "/")).name, name


def test_writer_round_trip_and_syntax(tmp_path):
    sections = [
        {"TiltAngle": float(a), "ExposureDose": 3.0, "PixelSpacing": 2.0, "TargetDefocus": -4.0,
         "SubFramePath": rf"X:\data\frames\TS_01_{i:03d}_{a:.1f}.tif", "NumSubFrames": 6,
         "DateTime": datetime(2015, 11, 30, 15, 20 + i, 5), "FrameDosesAndNumber": [(0.5, 6)],
         "ImageShift": (0.1, -0.25)}
        for i, a in enumerate([0, 3, -3])
    ]
    path = write_mdoc(tmp_path / "TS_01.mrc.mdoc", {"PixelSpacing": 2.0, "Voltage": 300, "ImageFile": "TS_01.mrc",
                                                    "ImageSize": (64, 48), "DataMode": 1}, sections,
                      tilt_axis_deg=85.3)
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode()
    assert "PixelSpacing = 2\r\n" in text and "[ZValue = 0]\r\n" in text
    assert "DateTime = 30-Nov-15  15:21:05" in text
    assert "SubFramePath = X:\\data\\frames\\TS_01_002_-3.0.tif" in text
    assert re.search(r"\[T = SerialEM: .*\]", text)
    mdoc = read_mdoc(path)
    assert mdoc.tilt_axis_deg == pytest.approx(85.3) and mdoc.image_size_xy == (64, 48)
    assert [s.tilt_angle_deg for s in mdoc.z_sections] == [0, 3, -3]
    assert mdoc.z_sections[2].date_time == datetime(2015, 11, 30, 15, 22, 5)
    assert mdoc.z_sections[2].sub_frame_name == "TS_01_002_-3.0.tif"
    assert mdoc.z_sections[0].frame_doses_and_number == [(0.5, 6)]
    assert mdoc.z_sections[0].image_shift == (0.1, -0.25)
    # the reference parser reads our output too
    mdocfile = pytest.importorskip("mdocfile")
    df = mdocfile.read(path)
    assert list(df["TiltAngle"]) == [0, 3, -3]
    lf = write_mdoc(tmp_path / "lf.mdoc", {"PixelSpacing": 1.0}, sections[:1], crlf=False)
    assert b"\r" not in lf.read_bytes()


def test_dates_and_bad_lines(tmp_path):
    assert parse_mdoc_datetime("30-Nov-15  15:26:23") == datetime(2015, 11, 30, 15, 26, 23)
    assert parse_mdoc_datetime("08-Oct-2021 07:47:29") == datetime(2021, 10, 8, 7, 47, 29)
    assert parse_mdoc_datetime("yesterday") is None
    with pytest.raises(ParseError, match=r"x\.mdoc:3.*Key = value"):
        parse_mdoc_text("PixelSpacing = 1\n[ZValue = 0]\nthis is not a key value line\n", "x.mdoc")
    with pytest.raises(ParseError, match=r"x\.mdoc:2.*TiltAngle"):
        parse_mdoc_text("[ZValue = 0]\nTiltAngle = abc\n", "x.mdoc")
    with pytest.raises(ParseError, match="missing.mdoc.*not found"):
        read_mdoc(tmp_path / "missing.mdoc")
