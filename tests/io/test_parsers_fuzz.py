"""Fuzzing every parser from the real files: mutated, truncated and garbage inputs either parse or raise
tomoforge's ParseError (naming the file), never another exception, and never hang (hypothesis deadline)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomoforge.errors import ParseError
from tomoforge.io import (
    aretomo,
    ctffind,
    defocus,
    edf,
    imod,
    imod_com,
    imod_log,
    imod_model,
    relion,
    scipion,
    star,
    warp,
)
from tomoforge.io.copick import read_copick_picks

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"

# parser -> real files it reads (relative to realdata); small files only, so examples stay fast
PARSERS = {
    "xf": (imod.read_xf, ["imod/IMOD_BB_tutorial/BBa.xf", "aretomo/aretomo_TS_121_OutImod.xf"]),
    "tlt": (imod.read_tlt, ["imod/IMOD_BB_tutorial/BBa.tlt", "imod/etomo_TS_001/TS_001.rawtlt"]),
    "zfac": (imod.read_zfac, ["imod/IMOD_BB_tutorial/BBa.zfac"]),
    "resid": (imod.read_resid, ["imod/IMOD_BB_tutorial/BBa.resid"]),
    "fidxyz": (imod.read_fid_xyz, ["imod/IMOD_BB_tutorial/BBafid.xyz"]),
    "localxf": (imod.read_local_xf, ["imod/IMOD_BB_tutorial/BBalocal.xf"]),
    "model": (imod_model.read_model, ["imod/models/two_contour_example.mod", "imod/IMOD_tutorial_BB_finalFiles/BBa.seed",
                                      "imod/models/point_sizes_example.mod"]),
    "tiltcom": (imod_com.read_tilt_com, ["imod/IMOD_BB_tutorial/tilta.com"]),
    "newstcom": (imod_com.read_newst_com, ["imod/IMOD_tutorial_BB_finalFiles/newsta.com",
                                           "imod/IMOD_tutorial_BB_finalFiles/prenewsta.com"]),
    "com": (imod_com.read_com, ["imod/IMOD_unittest/aligna.com", "imod/IMOD_BB_tutorial/xcorra.com"]),
    "talog": (imod_log.read_tiltalign_solution, ["imod/taSolution_TS_01.log"]),
    "taangles": (imod_log.read_ta_angles, ["imod/IMOD_tutorial_BB_finalFiles/taAnglesa.log"]),
    "edf": (edf.read_edf, ["imod/etomo_TS_001/TS_001.edf"]),
    "defocus": (defocus.read_defocus, ["ctf/ctfplotter_v2_plain_TS_03.defocus",
                                       "ctf/ctfplotter_v3_flag37_astig_phase_cuton_TS_03.defocus"]),
    "avrot": (ctffind.read_avrot, ["ctf/ctffind4.1.14_avrot_mmm_CTF_0.txt"]),
    "aln": (aretomo.read_aln, ["aretomo/aretomo_local_darkframes.aln", "aretomo/aretomo_v1.2.0_example.aln",
                               "aretomo/aretomo_global_alphaoffset.aln"]),
    "star": (star.read_star, ["relion/relion5_EMPIAR-10164_project/Tomograms/job006/tomograms.star",
                              "relion/relion5_EMPIAR-10164_project/PostProcess/job022/postprocess.star"]),
    "tomograms": (relion.read_tomograms_star, ["relion/relion5_aligntiltseries_aretomo/tomograms.star"]),
    "tiltseries": (relion.read_tilt_series_star,
                   ["relion/relion5_EMPIAR-10164_project/AlignTiltSeries/job005/tilt_series/TS_01.star"]),
    "particles": (relion.read_particles_star, ["relion/warptools_export/particles_2Dstacks.star"]),
    "projmat": (relion.read_projection_matrix_tomograms, ["relion/warptools_export/tomograms_projmatrices.star"]),
    "optset": (relion.read_optimisation_set,
               ["relion/relion5_EMPIAR-10164_project/Class3D/job017/run_it025_optimisation_set.star"]),
    "motion": (relion.read_motion_star,
               ["relion/relion5_EMPIAR-10164_project/MotionCorr/job002/frames/TS_03_019_-30_0.star"]),
    "postprocess": (relion.read_postprocess, ["relion/relion5_EMPIAR-10164_project/PostProcess/job022/postprocess.star"]),
    "pipeline": (relion.read_pipeline, ["relion/relion5_EMPIAR-10164_project/default_pipeline.star"]),
    "jobstar": (relion.read_job_star, ["relion/relion5_job002_job.star"]),
    "ctffind": (ctffind.read_ctffind, []),
    "project": (scipion.read_project_sqlite, ["scipion/spa_project.sqlite"]),
    "warp": (warp.read_warp_xml, ["warp/warptools_EMPIAR-10499_00254_after_import.xml"]),
    "workflow": (scipion.read_workflow_template, ["scipion/imod_automatic_tilt_series_alignment.json.template"]),
    "sqlite": (scipion.read_coordinates3d_sqlite, ["scipion/tomo_SetOfCoordinates3D_coordinates3d.sqlite"]),
    "copick": (read_copick_picks, []),
}

_COPICK = (b'{"pickable_object_name": "ribo", "user_id": "u", "session_id": "1", "run_name": "TS_01",'
           b' "voxel_spacing": 10.0, "unit": "angstrom", "points": [{"location": {"x": 1.0, "y": 2.0, "z": 3.0},'
           b' "transformation_": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]], "instance_id": 0, "score": 1.0}]}')


_CTFFIND = (b"# Output from CTFFind version 4.1.14, run on 2023-02-02 15:13:07\n"
            b"# Pixel size: 1.000 Angstroms ; acceleration voltage: 200.0 keV ; spherical aberration: 2.26 mm ;"
            b" amplitude contrast: 0.07\n# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - "
            b"defocus 2; #4 - azimuth of astigmatism; #5 - additional phase shift [radians]; #6 - cross "
            b"correlation; #7 - spacing (in Angstroms) up to which CTF rings were fit successfully\n"
            b"1.000000 9982.502930 9982.502930 0.000000 0.035256 0.565683 1.980663\n")


def _sources(name: str) -> list[bytes]:
    if name == "copick":
        return [_COPICK]
    if name == "ctffind":
        return [_CTFFIND]
    return [(REALDATA / rel).read_bytes() for rel in PARSERS[name][1]]


@st.composite
def mutated(draw, sources: list[bytes]):
    data = draw(st.sampled_from(sources))
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "lines", "garbage", "token"]))
    if kind == "garbage":
        return draw(st.binary(max_size=600))
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if kind == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, max(0, len(b) - 1)))
            if b:
                b[i] = draw(st.integers(0, 255))
        return bytes(b)
    if kind == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(min_size=1, max_size=40)) + data[i:]
    if kind == "token":
        i = draw(st.integers(0, len(data)))
        tok = draw(st.sampled_from([b" nan ", b" -1 ", b" 1e309 ", b"\t", b"\n", b'"', b"#", b"data_x\n",
                                    b"loop_\n", b"_rlnX ", b"[", b"]", b",", b"99999999999", b"<", b">", b"-"]))
        return data[:i] + tok + data[i:]
    lines = data.split(b"\n")
    op = draw(st.sampled_from(["drop", "dup", "swap"]))
    if len(lines) > 1:
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[j])
        else:
            lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _check(name: str, payload: bytes) -> None:
    reader = PARSERS[name][0]
    suffix = {"model": ".mod", "warp": ".xml", "sqlite": ".sqlite", "project": ".sqlite",
              "copick": ".json"}.get(name, ".txt")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"fuzz{suffix}"
        p.write_bytes(payload)
        try:
            reader(p)
        except ParseError as err:
            assert str(p) in str(err)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_fuzz_parser(name):
    if not REALDATA.is_dir() and name not in ("copick", "ctffind"):
        pytest.skip(f"real-data corpus not found at {REALDATA}")
    sources = _sources(name)
    n = 15 if name in ("sqlite", "model", "project", "pipeline") else 40

    @settings(max_examples=n, deadline=3000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(sources))
    def run(payload):
        _check(name, payload)

    run()
    for src in sources:  # the unmodified file must parse
        _check(name, src)
